/* MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: values from the
 * ONNX conformance data and PyTorch (ceil_mode, auto_pad, pads,
 * count_include_pad, dilations), random cases against a naive reference,
 * with and without a 2-thread pool, and refused attributes. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/pool.h"

typedef struct harness {
    nn_node_t node;
    nn_attr_t attrs[8];
    int64_t ints[8][8];
    nn_call_t call;
    nn_tensor_t in;
    nn_tensor_t *inp[1];
    nn_tensor_t out[2];
    nn_tensor_t *outp[2];
    int outputs[2];
    nn_error_t err;
} harness_t;

typedef int (*prep_fn)(nn_call_t *, nn_error_t *);
typedef void (*exec_fn)(const nn_call_t *);

static void h_init(harness_t *h, const char *op, int opset)
{
    memset(h, 0, sizeof *h);
    h->node.name = "pool0";
    h->node.op_type = op;
    h->node.opset = opset;
    h->node.n_inputs = 1;
    h->node.n_outputs = 1;
    h->node.outputs = h->outputs;
    h->outputs[0] = 1;
    h->outputs[1] = 2;
    h->node.attrs = h->attrs;
    h->call.node = &h->node;
    h->call.n_in = 1;
    h->call.in = h->inp;
    h->call.n_out = 1;
    h->call.out = h->outp;
    h->outp[0] = &h->out[0];
    h->outp[1] = &h->out[1];
    h->inp[0] = &h->in;
}

static void h_ints(harness_t *h, const char *name, int n, const int64_t *v)
{
    int k = h->node.n_attrs++;
    nn_attr_t *a = &h->attrs[k];
    memcpy(h->ints[k], v, (size_t)n * sizeof(int64_t));
    a->name = (char *)name;
    a->type = NN_ATTR_INTS;
    a->ints = h->ints[k];
    a->n = n;
}

static void h_int(harness_t *h, const char *name, int64_t v)
{
    nn_attr_t *a = &h->attrs[h->node.n_attrs++];
    a->name = (char *)name;
    a->type = NN_ATTR_INT;
    a->i = v;
}

static void h_str(harness_t *h, const char *name, const char *v)
{
    nn_attr_t *a = &h->attrs[h->node.n_attrs++];
    a->name = (char *)name;
    a->type = NN_ATTR_STRING;
    a->s = (char *)v;
}

static float *h_input(harness_t *h, int rank, const int64_t *dims,
                      unsigned seed)
{
    nn_tensor_set_shape(&h->in, NN_DTYPE_FLOAT, rank, dims);
    int64_t n = nn_tensor_elems(&h->in);
    float *p = malloc((size_t)n * sizeof(float) + 8);
    ck_assert_ptr_nonnull(p);
    srand(seed);
    for (int64_t k = 0; k < n; k++)
        p[k] = seed ? (float)rand() / (float)RAND_MAX * 4.0f - 2.0f
                    : (float)(k + 1); /* seed 0: 1, 2, 3, ... */
    h->in.data = p;
    return p;
}

static void h_free(harness_t *h)
{
    free(h->in.data);
    free(h->out[0].data);
}

static int h_run(harness_t *h, prep_fn prep, exec_fn ex, nn_pool_t *pool)
{
    int rc = prep(&h->call, &h->err);
    if (rc)
        return rc;
    h->out[0].data = malloc(nn_tensor_bytes(&h->out[0]) + 8);
    ck_assert_ptr_nonnull(h->out[0].data);
    h->call.pool = pool;
    ex(&h->call);
    return 0;
}

static void expect(const harness_t *h, int rank, const int64_t *dims,
                   const float *want)
{
    ck_assert_int_eq(h->out[0].rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(h->out[0].dims[i], dims[i]);
    const float *y = h->out[0].data;
    for (int64_t k = 0; k < nn_tensor_elems(&h->out[0]); k++)
        ck_assert_msg(fabsf(y[k] - want[k]) <= 1e-5f * (1.0f + fabsf(want[k])),
                      "elem %lld: got %g want %g", (long long)k, (double)y[k],
                      (double)want[k]);
}

#define MAXP nn_op_maxpool_prepare, nn_op_maxpool_exec
#define AVGP nn_op_avgpool_prepare, nn_op_avgpool_exec

/* ---- ONNX conformance values (node/test_*pool*) ----------------------------- */

START_TEST(test_onnx_cases)
{
    const int64_t d44[4] = {1, 1, 4, 4}, d55[4] = {1, 1, 5, 5};
    const int64_t o22[4] = {1, 1, 2, 2}, o33[4] = {1, 1, 3, 3};
    harness_t h;

    /* test_maxpool_2d_ceil / test_averagepool_2d_ceil */
    h_init(&h, "MaxPool", 12);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){3, 3});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_int(&h, "ceil_mode", 1);
    h_input(&h, 4, d44, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 4, o22, (const float[]){11, 12, 15, 16});
    h_free(&h);

    h_init(&h, "AveragePool", 11);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){3, 3});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_int(&h, "ceil_mode", 1);
    h_input(&h, 4, d44, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 4, o22, (const float[]){6, 7.5f, 12, 13.5f});
    h_free(&h);

    /* test_*pool_2d_precomputed_same_upper */
    h_init(&h, "MaxPool", 12);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){3, 3});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_str(&h, "auto_pad", "SAME_UPPER");
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 4, o33, (const float[]){7, 9, 10, 17, 19, 20, 22, 24, 25});
    h_free(&h);

    h_init(&h, "AveragePool", 11);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){3, 3});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_str(&h, "auto_pad", "SAME_UPPER");
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 4, o33,
           (const float[]){4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22});
    h_free(&h);

    /* test_*pool_2d_precomputed_pads (+ count_include_pad) */
    h_init(&h, "MaxPool", 12);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){5, 5});
    h_ints(&h, "pads", 4, (const int64_t[]){2, 2, 2, 2});
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 4, d55,
           (const float[]){13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                           25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25});
    h_free(&h);

    h_init(&h, "AveragePool", 11);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){5, 5});
    h_ints(&h, "pads", 4, (const int64_t[]){2, 2, 2, 2});
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 4, d55,
           (const float[]){7, 7.5f, 8, 8.5f, 9, 9.5f, 10, 10.5f, 11,
                           11.5f, 12, 12.5f, 13, 13.5f, 14, 14.5f, 15,
                           15.5f, 16, 16.5f, 17, 17.5f, 18, 18.5f, 19});
    h_free(&h);

    h_init(&h, "AveragePool", 11);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){5, 5});
    h_ints(&h, "pads", 4, (const int64_t[]){2, 2, 2, 2});
    h_int(&h, "count_include_pad", 1);
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 4, d55,
           (const float[]){2.52f, 3.6f, 4.8f, 4.08f, 3.24f, 4.56f, 6.4f,
                           8.4f, 7.04f, 5.52f, 7.2f, 10, 13, 10.8f, 8.4f,
                           6.96f, 9.6f, 12.4f, 10.24f, 7.92f, 6.12f, 8.4f,
                           10.8f, 8.88f, 6.84f});
    h_free(&h);

    /* test_*pool_2d_precomputed_strides */
    h_init(&h, "MaxPool", 12);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 4, o22, (const float[]){7, 9, 17, 19});
    h_free(&h);

    h_init(&h, "AveragePool", 11);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "strides", 2, (const int64_t[]){2, 2});
    h_input(&h, 4, d55, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 4, o22, (const float[]){4, 6, 14, 16});
    h_free(&h);

    /* test_maxpool_2d_dilations */
    h_init(&h, "MaxPool", 12);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "strides", 2, (const int64_t[]){1, 1});
    h_ints(&h, "dilations", 2, (const int64_t[]){2, 2});
    h_input(&h, 4, d44, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 4, o22, (const float[]){11, 12, 15, 16});
    h_free(&h);
}
END_TEST

/* ceil_mode edge cases, values from PyTorch (max_pool1d/avg_pool1d). */
START_TEST(test_ceil_mode_torch)
{
    harness_t h;
    const int64_t d5[3] = {1, 1, 5}, d6[3] = {1, 1, 6};

    /* k2 s2 p1 on 5: the 4th window would start in the end padding: dropped */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_ints(&h, "pads", 2, (const int64_t[]){1, 1});
    h_int(&h, "ceil_mode", 1);
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 3}, (const float[]){1, 3, 5});
    h_free(&h);

    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_ints(&h, "pads", 2, (const int64_t[]){1, 1});
    h_int(&h, "ceil_mode", 1);
    h_int(&h, "count_include_pad", 1);
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 3}, (const float[]){0.5f, 2.5f, 4.5f});
    h_free(&h);

    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_ints(&h, "pads", 2, (const int64_t[]){1, 1});
    h_int(&h, "ceil_mode", 1);
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 3}, (const float[]){1, 2.5f, 4.5f});
    h_free(&h);

    /* k3 s2 p1 on 6: the last window overhangs the padded input; with
     * count_include_pad the divisor stops at the end padding (6/2) */
    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){3});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_ints(&h, "pads", 2, (const int64_t[]){1, 1});
    h_int(&h, "ceil_mode", 1);
    h_int(&h, "count_include_pad", 1);
    h_input(&h, 3, d6, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 4}, (const float[]){1, 3, 5, 3});
    h_free(&h);

    /* without ceil_mode: floor */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){3});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_input(&h, 3, d6, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 2}, (const float[]){3, 5});
    h_free(&h);
}
END_TEST

/* auto_pad on small hand-computed cases. */
START_TEST(test_auto_pad)
{
    harness_t h;
    const int64_t d5[3] = {1, 1, 5};
    /* SAME_LOWER, k2 s1 on 5: pad 1 at the start */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_str(&h, "auto_pad", "SAME_LOWER");
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 5}, (const float[]){1, 2, 3, 4, 5});
    h_free(&h);
    /* SAME_UPPER, same: pad 1 at the end (avg excludes it) */
    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_str(&h, "auto_pad", "SAME_UPPER");
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 5},
           (const float[]){1.5f, 2.5f, 3.5f, 4.5f, 5});
    h_free(&h);
    /* SAME_LOWER avg, count_include_pad: first window is (0 + 1) / 2 */
    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_str(&h, "auto_pad", "SAME_LOWER");
    h_int(&h, "count_include_pad", 1);
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 5},
           (const float[]){0.5f, 1.5f, 2.5f, 3.5f, 4.5f});
    h_free(&h);
    /* VALID ignores pads, k2 s2 on 5 -> 2 */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 1, (const int64_t[]){2});
    h_ints(&h, "strides", 1, (const int64_t[]){2});
    h_ints(&h, "pads", 2, (const int64_t[]){1, 1});
    h_str(&h, "auto_pad", "VALID");
    h_input(&h, 3, d5, 0);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), 0);
    expect(&h, 3, (const int64_t[]){1, 1, 2}, (const float[]){2, 4});
    h_free(&h);
}
END_TEST

/* ---- random cases against a naive reference -------------------------------- */

typedef struct pool_case {
    int is_max, nd;
    int64_t dims[4];
    int64_t k[2], s[2], d[2], pads[4];
    int ceil_mode, cip;
    int64_t out[2];
} pool_case_t;

static const pool_case_t rcases[] = {
    /* max, nd, dims, k, s, d, pads, ceil, cip, expected spatial out */
    {1, 2, {2, 3, 9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 0, {5, 6}},
    {1, 2, {2, 3, 9, 11}, {3, 2}, {2, 3}, {1, 1}, {0, 1, 2, 0}, 1, 0, {5, 4}},
    {1, 2, {1, 4, 10, 10}, {3, 3}, {1, 1}, {2, 3}, {2, 1, 2, 3}, 0, 0, {10, 8}},
    {0, 2, {2, 3, 9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 0, {5, 6}},
    {0, 2, {2, 3, 9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 1, {5, 6}},
    {0, 2, {2, 3, 10, 10}, {3, 3}, {2, 2}, {1, 1}, {1, 0, 1, 0}, 1, 1, {6, 5}},
    {0, 2, {2, 3, 10, 10}, {2, 4}, {3, 2}, {1, 1}, {0, 2, 1, 1}, 1, 0, {4, 6}},
    {1, 1, {3, 2, 17, 0}, {4, 0}, {3, 0}, {2, 0}, {2, 1, 0, 0}, 1, 0, {6, 0}},
    {0, 1, {3, 2, 17, 0}, {4, 0}, {3, 0}, {1, 0}, {2, 1, 0, 0}, 0, 1, {6, 0}},
    /* GoogLeNet's: 3x3 stride 1 pad 1 and stride 2, ceil_mode */
    {1, 2, {1, 8, 14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, 0, {14, 14}},
    {0, 2, {1, 8, 14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, 0, {14, 14}},
    {1, 2, {1, 8, 14, 15}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {7, 8}},
    {1, 2, {1, 16, 112, 112}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {56, 56}},
    /* rows longer than the separable path's buffer */
    {1, 1, {1, 2, 5000, 0}, {3, 0}, {1, 0}, {1, 0}, {1, 1, 0, 0}, 0, 0, {5000, 0}},
    {0, 1, {1, 2, 5000, 0}, {3, 0}, {2, 0}, {1, 0}, {1, 1, 0, 0}, 1, 1, {2501, 0}},
    /* large enough for the threaded path */
    {1, 2, {2, 32, 56, 56}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 0, {28, 28}},
    {0, 2, {2, 32, 56, 56}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0, {28, 28}},
};

static void ref_pool(const pool_case_t *c, const float *x, float *y)
{
    int64_t ih = c->nd == 2 ? c->dims[2] : 1, iw = c->dims[c->nd + 1];
    int64_t oh = c->nd == 2 ? c->out[0] : 1, ow = c->out[c->nd - 1];
    int64_t kh = c->nd == 2 ? c->k[0] : 1, kw = c->k[c->nd - 1];
    int64_t sh = c->nd == 2 ? c->s[0] : 1, sw = c->s[c->nd - 1];
    int64_t dh = c->nd == 2 ? c->d[0] : 1, dw = c->d[c->nd - 1];
    int64_t ph = c->nd == 2 ? c->pads[0] : 0, pw = c->pads[c->nd - 1];
    int64_t eh = c->nd == 2 ? c->pads[2] : 0, ew = c->pads[2 * c->nd - 1];
    for (int64_t pl = 0; pl < c->dims[0] * c->dims[1]; pl++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double acc = c->is_max ? -INFINITY : 0;
                int n = 0, npad = 0;
                for (int64_t a = 0; a < kh; a++)
                    for (int64_t b = 0; b < kw; b++) {
                        int64_t r = i * sh - ph + a * dh;
                        int64_t q = j * sw - pw + b * dw;
                        if (r >= ih + eh || q >= iw + ew)
                            continue; /* beyond the padded input (ceil) */
                        if (r < 0 || r >= ih || q < 0 || q >= iw) {
                            npad++;
                            continue;
                        }
                        float v = x[(pl * ih + r) * iw + q];
                        if (c->is_max)
                            acc = v > acc ? v : acc;
                        else
                            acc += v;
                        n++;
                    }
                if (!c->is_max)
                    acc /= c->cip ? n + npad : n;
                y[(pl * oh + i) * ow + j] = (float)acc;
            }
}

static void run_random(nn_pool_t *pool)
{
    for (size_t ci = 0; ci < sizeof rcases / sizeof rcases[0]; ci++) {
        const pool_case_t *c = &rcases[ci];
        harness_t h;
        h_init(&h, c->is_max ? "MaxPool" : "AveragePool", 13);
        h_ints(&h, "kernel_shape", c->nd, c->k);
        h_ints(&h, "strides", c->nd, c->s);
        if (c->is_max)
            h_ints(&h, "dilations", c->nd, c->d);
        h_ints(&h, "pads", 2 * c->nd, c->pads);
        h_int(&h, "ceil_mode", c->ceil_mode);
        if (!c->is_max)
            h_int(&h, "count_include_pad", c->cip);
        const float *x = h_input(&h, c->nd + 2, c->dims, 17 + (unsigned)ci);
        int rc = c->is_max ? h_run(&h, MAXP, pool) : h_run(&h, AVGP, pool);
        ck_assert_msg(rc == 0, "case %zu: %s", ci, h.err.msg);
        int64_t od[4] = {c->dims[0], c->dims[1], c->out[0], c->out[1]};
        int64_t n = c->dims[0] * c->dims[1] * c->out[0] *
                    (c->nd == 2 ? c->out[1] : 1);
        float *want = malloc((size_t)n * sizeof(float));
        ck_assert_ptr_nonnull(want);
        ref_pool(c, x, want);
        expect(&h, c->nd + 2, od, want);
        free(want);
        h_free(&h);
    }
}

START_TEST(test_random_single)
{
    run_random(NULL);
}
END_TEST

START_TEST(test_random_pool2)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    run_random(pool);
    nn_pool_free(pool);
}
END_TEST

/* ---- global pools ----------------------------------------------------------- */

START_TEST(test_global)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    const int64_t shapes[][5] = {
        {2, 3, 5, 5, 0}, {1, 4, 7, 0, 0}, {2, 2, 3, 4, 5}, {2, 64, 32, 32, 0}};
    const int ranks[] = {4, 3, 5, 4};
    for (int p = 0; p < 2; p++)
        for (int si = 0; si < 4; si++)
            for (int is_max = 0; is_max < 2; is_max++) {
                harness_t h;
                h_init(&h, is_max ? "GlobalMaxPool" : "GlobalAveragePool", 13);
                const float *x = h_input(&h, ranks[si], shapes[si], 3);
                int rc = is_max ? h_run(&h, nn_op_globalmaxpool_prepare,
                                        nn_op_globalmaxpool_exec,
                                        p ? pool : NULL)
                                : h_run(&h, nn_op_globalavgpool_prepare,
                                        nn_op_globalavgpool_exec,
                                        p ? pool : NULL);
                ck_assert_int_eq(rc, 0);
                int64_t od[5] = {shapes[si][0], shapes[si][1], 1, 1, 1};
                int64_t planes = od[0] * od[1];
                int64_t sz = nn_tensor_elems(&h.in) / planes;
                float *want = malloc((size_t)planes * sizeof(float));
                ck_assert_ptr_nonnull(want);
                for (int64_t q = 0; q < planes; q++) {
                    double acc = is_max ? -INFINITY : 0;
                    for (int64_t k = 0; k < sz; k++) {
                        float v = x[q * sz + k];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                    }
                    want[q] = (float)(is_max ? acc : acc / (double)sz);
                }
                expect(&h, ranks[si], od, want);
                free(want);
                h_free(&h);
            }
    nn_pool_free(pool);

    /* rank 2 is refused */
    harness_t h;
    h_init(&h, "GlobalAveragePool", 13);
    h_input(&h, 2, (const int64_t[]){2, 3}, 1);
    ck_assert_int_eq(h_run(&h, nn_op_globalavgpool_prepare,
                           nn_op_globalavgpool_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);
}
END_TEST

/* ---- refused attributes ------------------------------------------------------ */

START_TEST(test_errors)
{
    harness_t h;
    const int64_t d4[4] = {1, 2, 8, 8}, d5[5] = {1, 2, 4, 4, 4};

    /* 3-D pooling */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 3, (const int64_t[]){2, 2, 2});
    h_input(&h, 5, d5, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "3-D"));
    ck_assert_ptr_nonnull(strstr(h.err.msg, "pool0"));
    h_free(&h);

    /* Indices output */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h.node.n_outputs = 2;
    h.call.n_out = 2;
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "Indices"));
    h_free(&h);

    /* storage_order */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_int(&h, "storage_order", 1);
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EUNSUPPORTED);
    h_free(&h);

    /* unknown auto_pad */
    h_init(&h, "AveragePool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_str(&h, "auto_pad", "FOO");
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "FOO"));
    h_free(&h);

    /* pads count */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "pads", 3, (const int64_t[]){1, 1, 1});
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "pads must have 4 values, got 3"));
    h_free(&h);

    /* missing kernel_shape */
    h_init(&h, "MaxPool", 13);
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "kernel_shape"));
    h_free(&h);

    /* AveragePool dilations (opset 19 only) */
    h_init(&h, "AveragePool", 17);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "dilations", 2, (const int64_t[]){2, 2});
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, AVGP, NULL), -NN_EUNSUPPORTED);
    h_free(&h);

    /* ceil_mode before opset 10 */
    h_init(&h, "MaxPool", 8);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_int(&h, "ceil_mode", 1);
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EINVAL);
    h_free(&h);

    /* kernel larger than the padded input */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){9, 2});
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_ESHAPE);
    h_free(&h);

    /* non-positive stride, negative pad */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "strides", 2, (const int64_t[]){0, 1});
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EINVAL);
    h_free(&h);
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_ints(&h, "pads", 4, (const int64_t[]){0, -1, 0, 0});
    h_input(&h, 4, d4, 1);
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EINVAL);
    h_free(&h);

    /* int64 input */
    h_init(&h, "MaxPool", 13);
    h_ints(&h, "kernel_shape", 2, (const int64_t[]){2, 2});
    h_input(&h, 4, d4, 1);
    h.in.dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(h_run(&h, MAXP, NULL), -NN_EUNSUPPORTED);
    h_free(&h);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_onnx_cases);
    tcase_add_test(tc, test_ceil_mode_torch);
    tcase_add_test(tc, test_auto_pad);
    tcase_add_test(tc, test_random_single);
    tcase_add_test(tc, test_random_pool2);
    tcase_add_test(tc, test_global);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
