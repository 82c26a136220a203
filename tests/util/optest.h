/* A small harness for operator unit tests: builds one node with its
 * attributes and tensors by hand, runs prepare and exec, and checks shapes
 * and refusals. Shared by the tests of every operator family. */
#ifndef OPTEST_H
#define OPTEST_H

#include <check.h>
#include <stdint.h>

#include "nn/error.h"
#include "nn/op.h"
#include "nn/pool.h"

#define TC_MAX 8

typedef struct {
    nn_node_t node;
    nn_attr_t attrs[TC_MAX];
    int outs_ids[TC_MAX];
    nn_tensor_t ins[TC_MAX], outs[TC_MAX];
    nn_tensor_t *inp[TC_MAX], *outp[TC_MAX];
    nn_call_t call;
    nn_error_t err;
    const nn_op_def_t *def;
} tc_t;

tc_t *tc_new(const char *op, int opset, int n_out);
nn_attr_t *tc_attr(tc_t *t, const char *name, nn_attr_type_t type);
void tc_attr_i(tc_t *t, const char *name, int64_t v);
void tc_attr_f(tc_t *t, const char *name, float v);
void tc_attr_s(tc_t *t, const char *name, const char *s);
void tc_attr_ints(tc_t *t, const char *name, const int64_t *v, int n);
/* Input i: data may be NULL (not constant). */
void tc_in(tc_t *t, int i, nn_dtype_t dt, int rank, const int64_t *dims,
           const void *data);
int tc_prepare(tc_t *t);
/* Allocates outputs (unless alias is asked and allowed) and runs exec. */
void tc_exec(tc_t *t, nn_pool_t *pool, int alias);
void tc_free(tc_t *t);
/* prepare must fail with -code and a message containing needle. */
void tc_expect_fail_at(tc_t *t, int code, const char *needle, int line);
void tc_shape_is(const nn_tensor_t *o, int rank, const int64_t *dims);
uint64_t rng_next(uint64_t *s);
/* n floats in [-10, 10] in steps of 0.01 (malloc'd). */
float *rand_f(size_t n, uint64_t *s);

#define tc_expect_fail(t, code, needle)                                    \
    tc_expect_fail_at(t, code, needle, __LINE__)

#endif
