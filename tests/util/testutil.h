/* Helpers shared by the test programs. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Folder of exported torchvision models (env IMGCLASS_MODELS, default
 * build-models) and of ../shared (env IMGCLASS_SHARED, default ../shared;
 * the Makefile's SHARED). */
const char *tu_models_dir(void);
const char *tu_shared_dir(void);
/* snprintf into a static-free caller buffer, for paths. */
const char *tu_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* max |a-b| / max |b| over n values (0 when b is all zeros and a == b). */
double tu_rel_error(const float *a, const float *b, size_t n);
/* Indices of the k largest values, largest first. */
void tu_topk(const float *x, size_t n, int k, int *idx);

/* ---- tests that need SHARED/imagenet --------------------------------------------
 * The pretrained models, photos and expected answers of SHARED/imagenet are
 * beside CI's clone, not necessarily beside a user's. Without them a test
 * that needs them is skipped, and the suite says so in one line starting
 * with "SKIP" and exits with one of these statuses (tests/run.sh counts
 * them): */
#define TU_EXIT_SKIP 77      /* nothing ran (the automake convention) */
#define TU_EXIT_SKIP_PART 78 /* some tests were skipped; every other one passed */

/* 1 when SHARED/imagenet is a folder this process can read. */
int tu_have_shared(void);
/* For a suite all of whose tests need SHARED/imagenet, first thing in main:
 * without it, prints the SKIP line and exits with TU_EXIT_SKIP. */
void tu_require_shared(void);
/* tcase_add_test for a test that needs SHARED/imagenet: without it the
 * test is not added but counted, and tu_run_suite reports it. */
#define tu_add_shared_test(tc, tf)                                                       \
    do {                                                                                 \
        if (tu_have_shared())                                                            \
            tcase_add_test(tc, tf);                                                      \
        else                                                                             \
            tu_count_shared_skip();                                                      \
    } while (0)
void tu_count_shared_skip(void);

/* A model repository like tests/models (the test repository, read from the
 * current folder, the repository's root) whose configs name SHARED's files
 * by absolute paths, so that it works wherever SHARED is: a folder per
 * model, each with its files copied and every "../../../../shared/" in
 * config.json replaced by tu_shared_dir()'s absolute path. Made once per
 * process in $TMPDIR (default /tmp) and removed when the process that made
 * it exits; a forked test uses its parent's. Fails the current test when it
 * cannot be made (so only where SHARED/imagenet is). */
const char *tu_test_models(void);

/* Runs a suite and returns the process exit status: EXIT_SUCCESS,
 * EXIT_FAILURE, or after tu_add_shared_test skips TU_EXIT_SKIP or
 * TU_EXIT_SKIP_PART (with the SKIP line printed after check's report). */
int tu_run_suite(Suite *s);

#endif
