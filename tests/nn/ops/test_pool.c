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
#include "util/optest.h"

/* Input 0 of t: shape dims; seed 0 gives 1, 2, 3, ..., another seed values
 * in [-2, 2] from rand(). */
static float *rand_input(tc_t *t, int rank, const int64_t *dims,
                         unsigned seed)
{
    float *p = tc_in_alloc(t, 0, NN_DTYPE_FLOAT, rank, dims);
    int64_t n = nn_tensor_elems(&t->ins[0]);
    srand(seed);
    for (int64_t k = 0; k < n; k++)
        p[k] = seed ? (float)rand() / (float)RAND_MAX * 4.0f - 2.0f
                    : (float)(k + 1); /* seed 0: 1, 2, 3, ... */
    return p;
}

/* Output 0 of t has shape dims and values want. */
static void expect(const tc_t *t, int rank, const int64_t *dims,
                   const float *want)
{
    ck_assert_int_eq(t->outs[0].rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(t->outs[0].dims[i], dims[i]);
    const float *y = t->outs[0].data;
    for (int64_t k = 0; k < nn_tensor_elems(&t->outs[0]); k++)
        ck_assert_msg(fabsf(y[k] - want[k]) <= 1e-5f * (1.0f + fabsf(want[k])),
                      "elem %lld: got %g want %g", (long long)k, (double)y[k],
                      (double)want[k]);
}

/* ---- ONNX conformance values (node/test_*pool*) ----------------------------- */

START_TEST(test_onnx_cases)
{
    const int64_t d44[4] = {1, 1, 4, 4}, d55[4] = {1, 1, 5, 5};
    const int64_t o22[4] = {1, 1, 2, 2}, o33[4] = {1, 1, 3, 3};
    tc_t *t;

    /* test_maxpool_2d_ceil / test_averagepool_2d_ceil */
    t = tc_new("MaxPool", 12, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3, 3}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    rand_input(t, 4, d44, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o22, (const float[]){11, 12, 15, 16});
    tc_free(t);

    t = tc_new("AveragePool", 11, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3, 3}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    rand_input(t, 4, d44, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o22, (const float[]){6, 7.5f, 12, 13.5f});
    tc_free(t);

    /* test_*pool_2d_precomputed_same_upper */
    t = tc_new("MaxPool", 12, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3, 3}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    tc_attr_s(t, "auto_pad", "SAME_UPPER");
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o33, (const float[]){7, 9, 10, 17, 19, 20, 22, 24, 25});
    tc_free(t);

    t = tc_new("AveragePool", 11, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3, 3}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    tc_attr_s(t, "auto_pad", "SAME_UPPER");
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o33,
           (const float[]){4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22});
    tc_free(t);

    /* test_*pool_2d_precomputed_pads (+ count_include_pad) */
    t = tc_new("MaxPool", 12, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){5, 5}, 2);
    tc_attr_ints(t, "pads", (const int64_t[]){2, 2, 2, 2}, 4);
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, d55,
           (const float[]){13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25,
                           25, 25, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25});
    tc_free(t);

    t = tc_new("AveragePool", 11, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){5, 5}, 2);
    tc_attr_ints(t, "pads", (const int64_t[]){2, 2, 2, 2}, 4);
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, d55,
           (const float[]){7, 7.5f, 8, 8.5f, 9, 9.5f, 10, 10.5f, 11,
                           11.5f, 12, 12.5f, 13, 13.5f, 14, 14.5f, 15,
                           15.5f, 16, 16.5f, 17, 17.5f, 18, 18.5f, 19});
    tc_free(t);

    t = tc_new("AveragePool", 11, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){5, 5}, 2);
    tc_attr_ints(t, "pads", (const int64_t[]){2, 2, 2, 2}, 4);
    tc_attr_i(t, "count_include_pad", 1);
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, d55,
           (const float[]){2.52f, 3.6f, 4.8f, 4.08f, 3.24f, 4.56f, 6.4f,
                           8.4f, 7.04f, 5.52f, 7.2f, 10, 13, 10.8f, 8.4f,
                           6.96f, 9.6f, 12.4f, 10.24f, 7.92f, 6.12f, 8.4f,
                           10.8f, 8.88f, 6.84f});
    tc_free(t);

    /* test_*pool_2d_precomputed_strides */
    t = tc_new("MaxPool", 12, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o22, (const float[]){7, 9, 17, 19});
    tc_free(t);

    t = tc_new("AveragePool", 11, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d55, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o22, (const float[]){4, 6, 14, 16});
    tc_free(t);

    /* test_maxpool_2d_dilations */
    t = tc_new("MaxPool", 12, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){1, 1}, 2);
    tc_attr_ints(t, "dilations", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d44, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 4, o22, (const float[]){11, 12, 15, 16});
    tc_free(t);
}
END_TEST

/* ceil_mode edge cases, values from PyTorch (max_pool1d/avg_pool1d). */
START_TEST(test_ceil_mode_torch)
{
    tc_t *t;
    const int64_t d5[3] = {1, 1, 5}, d6[3] = {1, 1, 6};

    /* k2 s2 p1 on 5: the 4th window would start in the end padding: dropped */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 3}, (const float[]){1, 3, 5});
    tc_free(t);

    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    tc_attr_i(t, "count_include_pad", 1);
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 3}, (const float[]){0.5f, 2.5f, 4.5f});
    tc_free(t);

    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 3}, (const float[]){1, 2.5f, 4.5f});
    tc_free(t);

    /* k3 s2 p1 on 6: the last window overhangs the padded input; with
     * count_include_pad the divisor stops at the end padding (6/2) */
    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    tc_attr_i(t, "count_include_pad", 1);
    rand_input(t, 3, d6, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 4}, (const float[]){1, 3, 5, 3});
    tc_free(t);

    /* without ceil_mode: floor */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){3}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    rand_input(t, 3, d6, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 2}, (const float[]){3, 5});
    tc_free(t);
}
END_TEST

/* auto_pad on small hand-computed cases. */
START_TEST(test_auto_pad)
{
    tc_t *t;
    const int64_t d5[3] = {1, 1, 5};
    /* SAME_LOWER, k2 s1 on 5: pad 1 at the start */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_s(t, "auto_pad", "SAME_LOWER");
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 5}, (const float[]){1, 2, 3, 4, 5});
    tc_free(t);
    /* SAME_UPPER, same: pad 1 at the end (avg excludes it) */
    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_s(t, "auto_pad", "SAME_UPPER");
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 5},
           (const float[]){1.5f, 2.5f, 3.5f, 4.5f, 5});
    tc_free(t);
    /* SAME_LOWER avg, count_include_pad: first window is (0 + 1) / 2 */
    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_s(t, "auto_pad", "SAME_LOWER");
    tc_attr_i(t, "count_include_pad", 1);
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 5},
           (const float[]){0.5f, 1.5f, 2.5f, 3.5f, 4.5f});
    tc_free(t);
    /* VALID ignores pads, k2 s2 on 5 -> 2 */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "strides", (const int64_t[]){2}, 1);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1}, 2);
    tc_attr_s(t, "auto_pad", "VALID");
    rand_input(t, 3, d5, 0);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    expect(t, 3, (const int64_t[]){1, 1, 2}, (const float[]){2, 4});
    tc_free(t);
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
    /* stride-1 "same" max pools on whole planes: 3x3, 5x5 wider than
     * half the map, 1-D, a 3x1 window, many planes */
    {1, 2, {2, 8, 7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, {7, 7}},
    {1, 2, {1, 3, 9, 13}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0, {9, 13}},
    {1, 2, {1, 3, 3, 4}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0, {3, 4}},
    {1, 1, {2, 3, 20, 0}, {3, 0}, {1, 0}, {1, 0}, {1, 1, 0, 0}, 0, 0, {20, 0}},
    {1, 2, {1, 4, 6, 5}, {3, 1}, {1, 1}, {1, 1}, {1, 0, 1, 0}, 0, 0, {6, 5}},
    {1, 2, {2, 40, 28, 28}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, 0, {28, 28}},
    /* stride 2 along the row (the AVX-512 permute path): windows 1, 2
     * and 3 wide, padding on both sides, averages with and without the
     * padding counted, ceil_mode, widths that leave vector tails, a
     * window too tall for that path, a dilated one */
    {1, 2, {1, 3, 23, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, 0, {12, 19}},
    {0, 2, {1, 3, 23, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, 1, {12, 19}},
    {0, 2, {1, 3, 23, 37}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, 0, {12, 19}},
    {1, 2, {2, 2, 9, 65}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {5, 33}},
    {0, 2, {2, 2, 9, 65}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0, {4, 32}},
    {1, 2, {1, 2, 8, 35}, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0, {4, 18}},
    {1, 2, {1, 2, 20, 20}, {17, 3}, {1, 2}, {1, 1}, {0, 1, 0, 1}, 0, 0, {4, 10}},
    {1, 2, {1, 2, 20, 20}, {3, 3}, {2, 2}, {2, 1}, {0, 0, 0, 0}, 0, 0, {8, 9}},
    {1, 2, {1, 4, 13, 13}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {6, 6}},
    /* max pools with the channels in the lanes (dwlanes.h): whole and
     * partial blocks of 16 channels, several images, stride 2 with
     * ceil_mode, 5x5, dilated, uneven padding, 2x2 stride 2 */
    {1, 2, {2, 40, 7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, {7, 7}},
    {1, 2, {3, 20, 14, 14}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {7, 7}},
    {1, 2, {2, 17, 13, 13}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, 0, {6, 6}},
    {1, 2, {1, 33, 9, 9}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0, {9, 9}},
    {1, 2, {1, 18, 12, 12}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, 0, 0, {12, 12}},
    {1, 2, {1, 16, 10, 10}, {3, 3}, {1, 1}, {1, 1}, {0, 2, 2, 0}, 0, 0, {10, 10}},
    {1, 2, {2, 16, 14, 14}, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0, {7, 7}},
    {1, 2, {1, 3, 32, 32}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, {32, 32}},
    /* rows longer than the separable path's buffer */
    {1, 1, {1, 2, 5000, 0}, {3, 0}, {1, 0}, {1, 0}, {1, 1, 0, 0}, 0, 0, {5000, 0}},
    {0, 1, {1, 2, 5000, 0}, {3, 0}, {2, 0}, {1, 0}, {1, 1, 0, 0}, 1, 1, {2501, 0}},
    /* one window over the whole map (the global pools' loop): a 7x7
     * average, a 5x3 max, 1-D, many planes; and windows that only look
     * whole (padded, dilated with a stride, counting the padding) */
    {0, 2, {2, 40, 7, 7}, {7, 7}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, 0, {1, 1}},
    {1, 2, {3, 5, 5, 3}, {5, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0, {1, 1}},
    {0, 1, {2, 3, 17, 0}, {17, 0}, {1, 0}, {1, 0}, {0, 0, 0, 0}, 1, 0, {1, 0}},
    {0, 2, {2, 1280, 7, 7}, {7, 7}, {7, 7}, {1, 1}, {0, 0, 0, 0}, 0, 0, {1, 1}},
    {0, 2, {1, 4, 7, 7}, {7, 7}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 1, {3, 3}},
    {1, 2, {1, 4, 7, 7}, {4, 4}, {4, 4}, {2, 2}, {0, 0, 0, 0}, 0, 0, {1, 1}},
    {0, 2, {1, 4, 6, 6}, {7, 7}, {1, 1}, {1, 1}, {1, 1, 0, 0}, 0, 1, {1, 1}},
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
        tc_t *t = tc_new(c->is_max ? "MaxPool" : "AveragePool", 13, 1);
        tc_attr_ints(t, "kernel_shape", c->k, c->nd);
        tc_attr_ints(t, "strides", c->s, c->nd);
        if (c->is_max)
            tc_attr_ints(t, "dilations", c->d, c->nd);
        tc_attr_ints(t, "pads", c->pads, 2 * c->nd);
        tc_attr_i(t, "ceil_mode", c->ceil_mode);
        if (!c->is_max)
            tc_attr_i(t, "count_include_pad", c->cip);
        const float *x = rand_input(t, c->nd + 2, c->dims, 17 + (unsigned)ci);
        int rc = tc_run(t, pool);
        ck_assert_msg(rc == 0, "case %zu: %s", ci, t->err.msg);
        int64_t od[4] = {c->dims[0], c->dims[1], c->out[0], c->out[1]};
        int64_t n = c->dims[0] * c->dims[1] * c->out[0] *
                    (c->nd == 2 ? c->out[1] : 1);
        float *want = malloc((size_t)n * sizeof(float));
        ck_assert_ptr_nonnull(want);
        ref_pool(c, x, want);
        expect(t, c->nd + 2, od, want);
        free(want);
        tc_free(t);
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

/* A NaN anywhere in a window makes that max a NaN, in every kernel
 * (stride-2 vectors, separable rows, whole planes, channels in lanes:
 * 18 channels, a whole block and a partial one), wherever it sits in the
 * window: first, middle or last tap; only there. */
START_TEST(test_max_nan)
{
    static const struct {
        int64_t k, s, pad;
    } shapes[] = {{3, 2, 1}, {2, 2, 0}, {3, 1, 1}, {3, 3, 0}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t H = 9, W = 37, k = shapes[si].k, st = shapes[si].s, pd = shapes[si].pad;
        const int64_t C = 18, dims[4] = {1, C, H, W};
        tc_t *t = tc_new("MaxPool", 13, 1);
        tc_attr_ints(t, "kernel_shape", (const int64_t[]){k, k}, 2);
        tc_attr_ints(t, "strides", (const int64_t[]){st, st}, 2);
        tc_attr_ints(t, "pads", (const int64_t[]){pd, pd, pd, pd}, 4);
        float *x = rand_input(t, 4, dims, 5);
        const int64_t nan_at[][2] = {{0, 0}, {4, 17}, {4, 18}, {8, 36}, {3, 5}};
        for (size_t q = 0; q < sizeof nan_at / sizeof nan_at[0]; q++)
            x[nan_at[q][0] * W + nan_at[q][1]] = NAN; /* plane 0 only */
        ck_assert_int_eq(tc_run(t, NULL), 0);
        const int64_t oh = t->outs[0].dims[2], ow = t->outs[0].dims[3];
        const float *y = t->outs[0].data;
        for (int64_t pl = 0; pl < C; pl++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    int has_nan = 0;
                    for (size_t q = 0; pl == 0 && q < sizeof nan_at / sizeof nan_at[0]; q++) {
                        int64_t r = nan_at[q][0] + pd - i * st, c = nan_at[q][1] + pd - j * st;
                        has_nan |= r >= 0 && r < k && c >= 0 && c < k;
                    }
                    float v = y[(pl * oh + i) * ow + j];
                    ck_assert_msg(has_nan ? isnan(v) : !isnan(v),
                                  "k %lld s %lld: plane %lld (%lld, %lld) = %g", (long long)k,
                                  (long long)st, (long long)pl, (long long)i, (long long)j,
                                  (double)v);
                }
        tc_free(t);
    }
}
END_TEST

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
                tc_t *t = tc_new(is_max ? "GlobalMaxPool"
                                        : "GlobalAveragePool", 13, 1);
                const float *x = rand_input(t, ranks[si], shapes[si], 3);
                int rc = tc_run(t, p ? pool : NULL);
                ck_assert_int_eq(rc, 0);
                int64_t od[5] = {shapes[si][0], shapes[si][1], 1, 1, 1};
                int64_t planes = od[0] * od[1];
                int64_t sz = nn_tensor_elems(&t->ins[0]) / planes;
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
                expect(t, ranks[si], od, want);
                free(want);
                tc_free(t);
            }
    nn_pool_free(pool);

    /* rank 2 is refused */
    tc_t *t = tc_new("GlobalAveragePool", 13, 1);
    rand_input(t, 2, (const int64_t[]){2, 3}, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
}
END_TEST

/* ---- refused attributes ------------------------------------------------------ */

START_TEST(test_errors)
{
    tc_t *t;
    const int64_t d4[4] = {1, 2, 8, 8}, d5[5] = {1, 2, 4, 4, 4};

    /* 3-D pooling */
    t = tc_new("MaxPool", 13, 1);
    t->node.name = "pool0";
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2, 2}, 3);
    rand_input(t, 5, d5, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "3-D"));
    ck_assert_ptr_nonnull(strstr(t->err.msg, "pool0"));
    tc_free(t);

    /* Indices output */
    t = tc_new("MaxPool", 13, 2);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "Indices"));
    tc_free(t);

    /* storage_order */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_i(t, "storage_order", 1);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    tc_free(t);

    /* unknown auto_pad */
    t = tc_new("AveragePool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_s(t, "auto_pad", "FOO");
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "FOO"));
    tc_free(t);

    /* pads count */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "pads", (const int64_t[]){1, 1, 1}, 3);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "pads must have 4 values, got 3"));
    tc_free(t);

    /* missing kernel_shape */
    t = tc_new("MaxPool", 13, 1);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "kernel_shape"));
    tc_free(t);

    /* AveragePool dilations (opset 19 only) */
    t = tc_new("AveragePool", 17, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "dilations", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    tc_free(t);

    /* ceil_mode before opset 10 */
    t = tc_new("MaxPool", 8, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_i(t, "ceil_mode", 1);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);

    /* kernel larger than the padded input */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){9, 2}, 2);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_ESHAPE);
    tc_free(t);

    /* non-positive stride, negative pad */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "strides", (const int64_t[]){0, 1}, 2);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    tc_attr_ints(t, "pads", (const int64_t[]){0, -1, 0, 0}, 4);
    rand_input(t, 4, d4, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);

    /* int64 input */
    t = tc_new("MaxPool", 13, 1);
    tc_attr_ints(t, "kernel_shape", (const int64_t[]){2, 2}, 2);
    rand_input(t, 4, d4, 1);
    t->ins[0].dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    tc_free(t);
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
    tcase_add_test(tc, test_max_nan);
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
