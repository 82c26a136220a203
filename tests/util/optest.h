/* The harness for operator unit tests: builds one node with its attributes
 * and tensors by hand, runs prepare and exec, and checks shapes and
 * refusals. Every operator family's suite uses it.
 *
 * tc_exec runs exec once per instruction set the machine has (nn_isa_t,
 * from NN_ISA_GENERIC up to nn_cpu_detect's best, IMGCLASS_ISA aside), the
 * best last: its outputs are the ones the test then checks, and each lower
 * instruction set's outputs must match them (tc_isa_tol), so that every
 * kernel path is tested on the machine that has the highest.
 *
 * A tc_t owns what it allocates (tc_in_alloc inputs, outputs tc_exec
 * allocates, the scratch) and frees it in tc_free; data handed to tc_in or
 * tc_out_buffer stays the caller's. Attribute names, strings and lists are
 * borrowed and must outlive the tc_t. */
#ifndef OPTEST_H
#define OPTEST_H

#include <check.h>
#include <stdint.h>

#include "nn/cpu.h"
#include "nn/error.h"
#include "nn/op.h"
#include "nn/pool.h"

#define TC_MAX 8

typedef struct {
    nn_node_t node;       /* named "n"; set node.name to name it otherwise */
    nn_attr_t attrs[TC_MAX];
    int outs_ids[TC_MAX]; /* node output ids: -1 marks an omitted output */
    nn_tensor_t ins[TC_MAX], outs[TC_MAX];
    nn_tensor_t *inp[TC_MAX], *outp[TC_MAX];
    nn_call_t call;
    nn_error_t err;
    const nn_op_def_t *def;
    void *in_owned[TC_MAX]; /* tc_in_alloc data */
    int out_owned[TC_MAX];  /* outs[k].data allocated by tc_exec */
    void *scratch;
    size_t scratch_size;
    double isa_tol; /* tc_isa_tol when made; a test may change it */
} tc_t;

/* How far the outputs of two instruction sets may be apart: 0 (the
 * default) asks for equal values (NaN where NaN; -0 equals 0), bit for
 * bit in non-float outputs; otherwise, per float output, max |a - b| over
 * max |b| (tu_rel_error's measure) must be at most this. A suite whose
 * kernels round differently per instruction set (FMA) sets it to its own
 * tolerance before running. */
extern double tc_isa_tol;
/* The highest instruction set tc_exec runs (the machine's best). */
nn_isa_t tc_isa_best(void);

/* A node of ONNX type op (which must exist) at opset, with n_out outputs
 * (ids 100, 101, ...), no inputs and no attributes yet. */
tc_t *tc_new(const char *op, int opset, int n_out);
nn_attr_t *tc_attr(tc_t *t, const char *name, nn_attr_type_t type);
void tc_attr_i(tc_t *t, const char *name, int64_t v);
void tc_attr_f(tc_t *t, const char *name, float v);
void tc_attr_s(tc_t *t, const char *name, const char *s);
void tc_attr_ints(tc_t *t, const char *name, const int64_t *v, int n);
/* Input i: data may be NULL (not constant). */
void tc_in(tc_t *t, int i, nn_dtype_t dt, int rank, const int64_t *dims,
           const void *data);
/* Input i with zeroed data owned by t; returns the data to fill. */
void *tc_in_alloc(tc_t *t, int i, nn_dtype_t dt, int rank,
                  const int64_t *dims);
/* Input i omitted (an optional input left out): NULL, yet counted in
 * call.n_in. */
void tc_omit(tc_t *t, int i);
int tc_prepare(tc_t *t);
/* Output k is computed into data (the caller's, at least the output's
 * bytes) instead of a buffer tc_exec allocates. */
void tc_out_buffer(tc_t *t, int k, void *data);
/* Runs exec under every instruction set up to tc_isa_best() and compares
 * their outputs (see the top). Outputs without a buffer get one filled
 * with 0xAB (to catch unwritten elements), or share input 0 when alias is
 * set and prepare asked for it; a second tc_exec reuses the buffers of the
 * first. Before each run the outputs, and the inputs that share their
 * memory, get back what they held before the first. */
void tc_exec(tc_t *t, nn_pool_t *pool, int alias);
/* Runs exec once, with isa's kernels (a benchmark's timed runs). */
void tc_exec_isa(tc_t *t, nn_pool_t *pool, int alias, nn_isa_t isa);
/* tc_prepare, then tc_exec (no alias) if it succeeded; returns prepare's
 * code. */
int tc_run(tc_t *t, nn_pool_t *pool);
void tc_free(tc_t *t);
/* prepare must fail with -code and a message containing needle (if not
 * NULL); frees t. */
void tc_expect_fail_at(tc_t *t, int code, const char *needle, int line);
void tc_shape_is(const nn_tensor_t *o, int rank, const int64_t *dims);
uint64_t rng_next(uint64_t *s);
/* n floats in [-10, 10] in steps of 0.01 (malloc'd). */
float *rand_f(size_t n, uint64_t *s);

#define tc_expect_fail(t, code, needle)                                    \
    tc_expect_fail_at(t, code, needle, __LINE__)

#endif
