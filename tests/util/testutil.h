/* Helpers shared by the test programs. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Folder of exported torchvision models (env IMGCLASS_MODELS, default
 * build-models) and of ../shared (env IMGCLASS_SHARED). */
const char *tu_models_dir(void);
const char *tu_shared_dir(void);
/* snprintf into a static-free caller buffer, for paths. */
const char *tu_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* max |a-b| / max |b| over n values (0 when b is all zeros and a == b). */
double tu_rel_error(const float *a, const float *b, size_t n);
/* Indices of the k largest values, largest first. */
void tu_topk(const float *x, size_t n, int k, int *idx);

/* Runs a suite and returns the process exit status. */
int tu_run_suite(Suite *s);

#endif
