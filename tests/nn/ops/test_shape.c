/* Shape and data-movement ops (src/nn/ops/shape.c) against naive references
 * and hand-computed cases, single-threaded and with a pool of 2 threads. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/error.h"
#include "nn/op.h"
#include "nn/pool.h"
#include "util/optest.h"
#include "util/testutil.h"


static int64_t *iota64(size_t n)
{
    int64_t *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (int64_t)i * 7 - 3;
    return x;
}

static int64_t prod(const int64_t *d, int r)
{
    int64_t p = 1;
    for (int i = 0; i < r; i++)
        p *= d[i];
    return p;
}

static nn_pool_t *pool2(void)
{
    nn_pool_t *p = NULL;
    ck_assert_int_eq(nn_pool_create(&p, 2), 0);
    return p;
}

#define I64(...) ((const int64_t[]){__VA_ARGS__})

/* ---- views ---------------------------------------------------------------- */

START_TEST(test_flatten)
{
    uint64_t s = 1;
    float *x = rand_f(2 * 3 * 4 * 5, &s);
    struct {
        int64_t axis;
        int64_t d0, d1;
    } cases[] = {{0, 1, 120}, {1, 2, 60}, {2, 6, 20}, {3, 24, 5},
                 {4, 120, 1}, {-1, 24, 5}, {-4, 1, 120}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int alias = 0; alias < 2; alias++) {
            tc_t *t = tc_new("Flatten", 13, 1);
            tc_attr_i(t, "axis", cases[c].axis);
            tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
            ck_assert_int_eq(tc_prepare(t), 0);
            ck_assert_int_eq(t->call.out_alias, 1);
            tc_shape_is(&t->outs[0], 2, I64(cases[c].d0, cases[c].d1));
            tc_exec(t, NULL, alias);
            ck_assert_mem_eq(t->outs[0].data, x, 120 * sizeof(float));
            tc_free(t);
        }
    }
    tc_t *t = tc_new("Flatten", 13, 1);
    tc_attr_i(t, "axis", 5);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("Flatten", 13, 1);
    tc_attr_i(t, "axis", -5);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    free(x);
}
END_TEST

START_TEST(test_reshape)
{
    int64_t *x = iota64(24);
    struct {
        int64_t shape[4];
        int n, allowzero;
        int rank;
        int64_t out[4];
    } ok[] = {
        {{0, -1}, 2, 0, 2, {2, 12}},
        {{4, -1, 2}, 3, 0, 3, {4, 3, 2}},
        {{24}, 1, 0, 1, {24}},
        {{-1}, 1, 0, 1, {24}},
        {{0, 0, 4}, 3, 0, 3, {2, 3, 4}},
        {{1, 2, 3, 4}, 4, 1, 4, {1, 2, 3, 4}},
        {{2, 0, -1}, 3, 0, 3, {2, 3, 4}},
    };
    for (size_t c = 0; c < sizeof ok / sizeof ok[0]; c++) {
        tc_t *t = tc_new("Reshape", 14, 1);
        if (ok[c].allowzero)
            tc_attr_i(t, "allowzero", 1);
        tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
        tc_in(t, 1, NN_DTYPE_INT64, 1, I64(ok[c].n), ok[c].shape);
        ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
        tc_shape_is(&t->outs[0], ok[c].rank, ok[c].out);
        ck_assert_int_eq(t->outs[0].dtype, NN_DTYPE_INT64);
        tc_exec(t, NULL, 0);
        ck_assert_mem_eq(t->outs[0].data, x, 24 * sizeof(int64_t));
        tc_free(t);
    }
    /* opset < 5: shape attribute */
    tc_t *t = tc_new("Reshape", 4, 1);
    tc_attr_ints(t, "shape", I64(6, -1), 2);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(6, 4));
    tc_free(t);

    /* errors */
    t = tc_new("Reshape", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(5, 5));
    tc_expect_fail(t, NN_ESHAPE, "cannot reshape");
    t = tc_new("Reshape", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(3), I64(-1, 2, -1));
    tc_expect_fail(t, NN_EINVAL, "more than one -1");
    t = tc_new("Reshape", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(5, -1));
    tc_expect_fail(t, NN_ESHAPE, "do not divide");
    t = tc_new("Reshape", 14, 1);
    tc_attr_i(t, "allowzero", 1);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(0, 24));
    tc_expect_fail(t, NN_ESHAPE, NULL);
    t = tc_new("Reshape", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 3, I64(2, 3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), NULL); /* not constant */
    tc_expect_fail(t, NN_EUNSUPPORTED, "constant");
    free(x);
}
END_TEST

START_TEST(test_squeeze_unsqueeze)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    /* squeeze: all ones, attr axes (11), input axes (13), negative */
    tc_t *t = tc_new("Squeeze", 11, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 5, I64(1, 2, 1, 3, 1), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(2, 3));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, x, sizeof x);
    tc_free(t);
    t = tc_new("Squeeze", 11, 1);
    tc_attr_ints(t, "axes", I64(0, -1), 2);
    tc_in(t, 0, NN_DTYPE_FLOAT, 5, I64(1, 2, 1, 3, 1), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 3, I64(2, 1, 3));
    tc_free(t);
    t = tc_new("Squeeze", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 5, I64(1, 2, 1, 3, 1), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(-3));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 4, I64(1, 2, 3, 1));
    tc_free(t);
    t = tc_new("Squeeze", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 5, I64(1, 2, 1, 3, 1), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(1));
    tc_expect_fail(t, NN_ESHAPE, "size 2");
    t = tc_new("Squeeze", 11, 1);
    tc_attr_ints(t, "axes", I64(5), 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 5, I64(1, 2, 1, 3, 1), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");

    /* unsqueeze */
    t = tc_new("Unsqueeze", 11, 1);
    tc_attr_ints(t, "axes", I64(0, 3), 2);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 4, I64(1, 2, 3, 1));
    tc_exec(t, NULL, 1);
    ck_assert_ptr_eq(t->outs[0].data, x);
    tc_free(t);
    t = tc_new("Unsqueeze", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(-1, 1));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 4, I64(2, 1, 3, 1));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, x, sizeof x);
    tc_free(t);
    t = tc_new("Unsqueeze", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(3));
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("Unsqueeze", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(0, -4));
    tc_expect_fail(t, NN_EINVAL, "repeated");
}
END_TEST

START_TEST(test_identity_dropout)
{
    int64_t x[4] = {5, -6, 7, 8};
    tc_t *t = tc_new("Identity", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    ck_assert_int_eq(t->call.out_alias, 1);
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, x, sizeof x);
    tc_free(t);
    t = tc_new("Dropout", 12, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 0, NULL, (float[]){0.5f});
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(2, 2));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, x, sizeof x);
    tc_free(t);
    t = tc_new("Dropout", 13, 2);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), x);
    tc_expect_fail(t, NN_EUNSUPPORTED, "mask");
    /* mask slot present but omitted ("") is fine */
    t = tc_new("Dropout", 13, 2);
    t->outs_ids[1] = -1;
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    t->call.n_out = 1;
    tc_free(t);
}
END_TEST

/* ---- Transpose ------------------------------------------------------------- */

static void naive_transpose(const void *x, void *y, int r, const int64_t *d,
                            const int64_t *perm, size_t es)
{
    int64_t s[NN_MAX_RANK], od[NN_MAX_RANK], n = prod(d, r), st = 1;
    for (int i = r - 1; i >= 0; i--) {
        s[i] = st;
        st *= d[i];
    }
    for (int i = 0; i < r; i++)
        od[i] = d[perm[i]];
    for (int64_t o = 0; o < n; o++) {
        int64_t rem = o, off = 0;
        for (int i = r - 1; i >= 0; i--) {
            off += (rem % od[i]) * s[perm[i]];
            rem /= od[i];
        }
        memcpy((char *)y + o * es, (const char *)x + off * es, es);
    }
}

static void check_transpose(int r, const int64_t *d, const int64_t *perm,
                            nn_dtype_t dt, nn_pool_t *pool)
{
    int64_t n = prod(d, r);
    size_t es = nn_dtype_size(dt);
    uint64_t s = 7;
    void *x = dt == NN_DTYPE_FLOAT ? (void *)rand_f((size_t)n, &s)
                                   : (void *)iota64((size_t)n);
    void *ref = malloc((size_t)n * es + 1);
    naive_transpose(x, ref, r, d, perm, es);
    tc_t *t = tc_new("Transpose", 13, 1);
    if (perm)
        tc_attr_ints(t, "perm", perm, r);
    tc_in(t, 0, dt, r, d, x);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_exec(t, pool, 0);
    ck_assert_msg(memcmp(t->outs[0].data, ref, (size_t)n * es) == 0,
                  "transpose rank %d mismatch", r);
    tc_free(t);
    free(ref);
    free(x);
}

START_TEST(test_transpose)
{
    nn_pool_t *pool = pool2();
    for (int pi = 0; pi < 2; pi++) {
        nn_pool_t *p = pi ? pool : NULL;
        for (int dt = 0; dt < 2; dt++) {
            nn_dtype_t ty = dt ? NN_DTYPE_INT64 : NN_DTYPE_FLOAT;
            check_transpose(2, I64(37, 53), I64(1, 0), ty, p);
            check_transpose(4, I64(2, 64, 56, 56), I64(0, 2, 3, 1), ty, p);
            check_transpose(4, I64(2, 56, 56, 64), I64(0, 3, 1, 2), ty, p);
            check_transpose(4, I64(1, 3, 224, 224), I64(0, 2, 3, 1), ty, p);
            check_transpose(4, I64(2, 5, 7, 3), I64(0, 2, 1, 3), ty, p);
            check_transpose(4, I64(2, 5, 7, 3), I64(3, 2, 1, 0), ty, p);
            check_transpose(3, I64(4, 1, 5), I64(2, 0, 1), ty, p);
            check_transpose(5, I64(2, 3, 4, 5, 6), I64(4, 0, 3, 1, 2), ty, p);
            check_transpose(3, I64(2, 3, 4), I64(0, 1, 2), ty, p);
            check_transpose(1, I64(9), I64(0), ty, p);
            check_transpose(3, I64(2, 0, 4), I64(2, 0, 1), ty, p);
        }
    }
    /* random permutations */
    uint64_t s = 3;
    for (int it = 0; it < 60; it++) {
        int r = 1 + (int)(rng_next(&s) % 6);
        int64_t d[NN_MAX_RANK], perm[NN_MAX_RANK];
        for (int i = 0; i < r; i++) {
            d[i] = 1 + (int64_t)(rng_next(&s) % 6);
            perm[i] = i;
        }
        for (int i = r - 1; i > 0; i--) {
            int j = (int)(rng_next(&s) % (uint64_t)(i + 1));
            int64_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        check_transpose(r, d, perm, it % 2 ? NN_DTYPE_INT64 : NN_DTYPE_FLOAT,
                        it % 3 ? pool : NULL);
    }
    /* default perm = reversed */
    float x[6] = {1, 2, 3, 4, 5, 6};
    tc_t *t = tc_new("Transpose", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(3, 2));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((float[]){1, 4, 2, 5, 3, 6}),
                     sizeof x);
    tc_free(t);
    t = tc_new("Transpose", 13, 1);
    tc_attr_ints(t, "perm", I64(0, 0), 2);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_expect_fail(t, NN_EINVAL, "permutation");
    t = tc_new("Transpose", 13, 1);
    tc_attr_ints(t, "perm", I64(0, 1, 2), 3);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_expect_fail(t, NN_EINVAL, "perm has 3");
    nn_pool_free(pool);
}
END_TEST

/* ---- Concat / Split ------------------------------------------------------- */

START_TEST(test_concat)
{
    /* [2,2] ++ [2,1] ++ [2,0] ++ [2,3] along -1, int64 */
    int64_t a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[6] = {7, 8, 9, 10, 11, 12};
    tc_t *t = tc_new("Concat", 13, 1);
    tc_attr_i(t, "axis", -1);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), a);
    tc_in(t, 1, NN_DTYPE_INT64, 2, I64(2, 1), b);
    tc_in(t, 2, NN_DTYPE_INT64, 2, I64(2, 0), b);
    tc_in(t, 3, NN_DTYPE_INT64, 2, I64(2, 3), c);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(2, 6));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data,
                     ((int64_t[]){1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12}),
                     12 * sizeof(int64_t));
    tc_free(t);
    /* axis 0 */
    t = tc_new("Concat", 11, 1);
    tc_attr_i(t, "axis", 0);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(2, 2), a);
    tc_in(t, 1, NN_DTYPE_INT64, 2, I64(1, 2), b);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(3, 2));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((int64_t[]){1, 2, 3, 4, 5, 6}),
                     6 * sizeof(int64_t));
    tc_free(t);
    /* float, 4-D along channels vs a naive reference */
    uint64_t s = 5;
    float *x = rand_f(2 * 3 * 4 * 5, &s), *y = rand_f(2 * 2 * 4 * 5, &s);
    t = tc_new("Concat", 13, 1);
    tc_attr_i(t, "axis", -3);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 4, I64(2, 2, 4, 5), y);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 4, I64(2, 5, 4, 5));
    tc_exec(t, NULL, 0);
    const float *o = t->outs[0].data;
    for (int n = 0; n < 2; n++)
        for (int ch = 0; ch < 5; ch++)
            for (int k = 0; k < 20; k++) {
                float e = ch < 3 ? x[(n * 3 + ch) * 20 + k]
                                 : y[(n * 2 + ch - 3) * 20 + k];
                ck_assert_float_eq(o[(n * 5 + ch) * 20 + k], e);
            }
    tc_free(t);
    /* large planes, in pieces over two threads; an empty input between */
    {
        const int C1 = 40, C2 = 25, HW = 33 * 37;
        float *u = rand_f((size_t)3 * C1 * HW, &s), *v = rand_f((size_t)3 * C2 * HW, &s);
        nn_pool_t *pool;
        ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
        t = tc_new("Concat", 13, 1);
        tc_attr_i(t, "axis", 1);
        tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(3, C1, 33, 37), u);
        tc_in(t, 1, NN_DTYPE_FLOAT, 4, I64(3, 0, 33, 37), v);
        tc_in(t, 2, NN_DTYPE_FLOAT, 4, I64(3, C2, 33, 37), v);
        ck_assert_int_eq(tc_prepare(t), 0);
        tc_exec(t, pool, 0);
        const float *q = t->outs[0].data;
        for (int n = 0; n < 3; n++)
            for (int ch = 0; ch < C1 + C2; ch++)
                for (int k = 0; k < HW; k++) {
                    float e = ch < C1 ? u[((size_t)n * C1 + ch) * HW + k]
                                      : v[((size_t)n * C2 + ch - C1) * HW + k];
                    ck_assert_float_eq(q[((size_t)n * (C1 + C2) + ch) * HW + k], e);
                }
        tc_free(t);
        nn_pool_free(pool);
        free(u);
        free(v);
    }
    /* errors */
    t = tc_new("Concat", 13, 1);
    tc_attr_i(t, "axis", 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 4, I64(2, 2, 3, 5), y);
    tc_expect_fail(t, NN_ESHAPE, "does not match");
    t = tc_new("Concat", 13, 1);
    tc_attr_i(t, "axis", 4);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, I64(2, 3, 4, 5), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("Concat", 13, 1);
    tc_attr_i(t, "axis", 0);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(2), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), a);
    tc_expect_fail(t, NN_ESHAPE, NULL);
    free(x);
    free(y);
}
END_TEST

static void check_split_out(tc_t *t, const int64_t *x, int64_t rows,
                            int64_t cols, int axis)
{
    /* x is [rows, cols]; outputs split along axis */
    int64_t at = 0;
    for (int k = 0; k < t->call.n_out; k++) {
        const nn_tensor_t *o = &t->outs[k];
        const int64_t *v = o->data;
        for (int64_t i = 0; i < o->dims[0]; i++)
            for (int64_t j = 0; j < o->dims[1]; j++) {
                int64_t src = axis == 0 ? (at + i) * cols + j
                                        : i * cols + at + j;
                ck_assert_int_eq(v[i * o->dims[1] + j], x[src]);
            }
        at += o->dims[axis];
    }
    (void)rows;
}

START_TEST(test_split)
{
    int64_t *x = iota64(6 * 4);
    /* equal split by output count, default axis 0 */
    tc_t *t = tc_new("Split", 13, 3);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    for (int k = 0; k < 3; k++)
        tc_shape_is(&t->outs[k], 2, I64(2, 4));
    tc_exec(t, NULL, 0);
    check_split_out(t, x, 6, 4, 0);
    tc_free(t);
    /* uneven sizes from the attribute (opset 11), negative axis */
    t = tc_new("Split", 11, 3);
    tc_attr_i(t, "axis", -1);
    tc_attr_ints(t, "split", I64(1, 0, 3), 3);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(6, 1));
    tc_shape_is(&t->outs[1], 2, I64(6, 0));
    tc_shape_is(&t->outs[2], 2, I64(6, 3));
    tc_exec(t, NULL, 0);
    check_split_out(t, x, 6, 4, 1);
    tc_free(t);
    /* sizes from the input (opset 13) */
    t = tc_new("Split", 13, 2);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(5, 1));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(5, 4));
    tc_exec(t, NULL, 0);
    check_split_out(t, x, 6, 4, 0);
    tc_free(t);
    /* errors */
    t = tc_new("Split", 13, 2);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(2, 2));
    tc_expect_fail(t, NN_ESHAPE, "sum to 4");
    t = tc_new("Split", 11, 2);
    tc_attr_ints(t, "split", I64(1, 2, 3), 3);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    tc_expect_fail(t, NN_EINVAL, "3 sizes for 2 outputs");
    t = tc_new("Split", 13, 4);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    tc_expect_fail(t, NN_ESHAPE, "equal parts");
    t = tc_new("Split", 13, 2);
    tc_attr_i(t, "axis", 2);
    tc_in(t, 0, NN_DTYPE_INT64, 2, I64(6, 4), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    free(x);
}
END_TEST

/* ---- Slice ---------------------------------------------------------------- */

/* Independent reading of the ONNX rules, one axis. */
static int64_t ref_slice_axis(int64_t dim, int64_t st, int64_t en,
                              int64_t step, int64_t *idx)
{
    double s = (double)st, e = (double)en; /* doubles: no overflow worries */
    if (s < 0)
        s += (double)dim;
    if (e < 0)
        e += (double)dim;
    if (step > 0) {
        s = s < 0 ? 0 : s > dim ? (double)dim : s;
        e = e < 0 ? 0 : e > dim ? (double)dim : e;
    } else {
        s = s < 0 ? 0 : s > dim - 1 ? (double)(dim - 1) : s;
        e = e < -1 ? -1 : e > dim - 1 ? (double)(dim - 1) : e;
    }
    int64_t n = 0;
    for (int64_t i = (int64_t)s; step > 0 ? i < (int64_t)e : i > (int64_t)e;
         i += step) {
        idx[n++] = i;
        if ((step > 0 && i > INT64_MAX - step) ||
            (step < 0 && i < INT64_MIN - step))
            break;
    }
    return n;
}

static void check_slice(int r, const int64_t *d, int n, const int64_t *starts,
                        const int64_t *ends, const int64_t *axes,
                        const int64_t *steps, nn_dtype_t dt, nn_pool_t *pool)
{
    int64_t idx[NN_MAX_RANK][64], od[NN_MAX_RANK];
    for (int i = 0; i < r; i++) {
        od[i] = d[i];
        for (int64_t k = 0; k < d[i]; k++)
            idx[i][k] = k;
    }
    for (int k = 0; k < n; k++) {
        int a = (int)(axes ? (axes[k] < 0 ? axes[k] + r : axes[k]) : k);
        od[a] = ref_slice_axis(d[a], starts[k], ends[k], steps ? steps[k] : 1,
                               idx[a]);
    }
    int64_t total = prod(d, r), ototal = prod(od, r);
    size_t es = nn_dtype_size(dt);
    uint64_t s = 11;
    void *x = dt == NN_DTYPE_FLOAT ? (void *)rand_f((size_t)total, &s)
                                   : (void *)iota64((size_t)total);
    char *ref = malloc((size_t)ototal * es + 1);
    for (int64_t o = 0; o < ototal; o++) {
        int64_t rem = o, off = 0, st = 1;
        for (int i = r - 1; i >= 0; i--) {
            off += idx[i][rem % od[i]] * st;
            rem /= od[i];
            st *= d[i];
        }
        memcpy(ref + o * (int64_t)es, (char *)x + off * (int64_t)es, es);
    }
    tc_t *t = tc_new("Slice", 13, 1);
    tc_in(t, 0, dt, r, d, x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(n), starts);
    tc_in(t, 2, NN_DTYPE_INT64, 1, I64(n), ends);
    if (axes)
        tc_in(t, 3, NN_DTYPE_INT64, 1, I64(n), axes);
    if (steps)
        tc_in(t, 4, NN_DTYPE_INT64, 1, I64(n), steps);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[0], r, od);
    tc_exec(t, pool, 0);
    ck_assert_msg(memcmp(t->outs[0].data, ref, (size_t)ototal * es) == 0,
                  "slice mismatch");
    tc_free(t);
    free(ref);
    free(x);
}

START_TEST(test_slice)
{
    nn_pool_t *pool = pool2();
    const int64_t MX = INT64_MAX, MN = INT64_MIN;
    for (int pi = 0; pi < 2; pi++) {
        nn_pool_t *p = pi ? pool : NULL;
        for (int dt = 0; dt < 2; dt++) {
            nn_dtype_t ty = dt ? NN_DTYPE_INT64 : NN_DTYPE_FLOAT;
            check_slice(2, I64(20, 10), 2, I64(0, 0), I64(3, 10), NULL, NULL,
                        ty, p);
            check_slice(3, I64(20, 10, 5), 2, I64(0, 1), I64(3, 10),
                        I64(0, 1), I64(1, 2), ty, p);
            check_slice(3, I64(20, 10, 5), 2, I64(-1, MX), I64(MN, -MX),
                        I64(-1, 1), I64(-1, -3), ty, p);
            check_slice(2, I64(20, 10), 1, I64(1000), I64(1001), I64(1),
                        I64(1), ty, p);
            check_slice(2, I64(20, 10), 1, I64(-1000), I64(1000), I64(0),
                        NULL, ty, p);
            check_slice(2, I64(20, 10), 1, I64(0), I64(-1), I64(1), NULL, ty,
                        p);
            check_slice(2, I64(20, 10), 1, I64(MX), I64(MN), I64(0), I64(-1),
                        ty, p);
            check_slice(2, I64(20, 10), 1, I64(5), I64(MX), I64(0), I64(MX),
                        ty, p);
            check_slice(4, I64(2, 8, 30, 30), 2, I64(1, 1), I64(MX, MX),
                        I64(2, 3), I64(2, 2), ty, p);
            check_slice(4, I64(2, 8, 30, 30), 1, I64(-1), I64(MN), I64(-2),
                        I64(-1), ty, p);
        }
    }
    /* hand case: spec clamps a too-negative start to 0 for negative steps */
    int64_t v[5] = {0, 1, 2, 3, 4};
    tc_t *t = tc_new("Slice", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(5), v);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(3));
    tc_in(t, 2, NN_DTYPE_INT64, 1, I64(1), I64(MN));
    tc_in(t, 4, NN_DTYPE_INT64, 1, I64(1), I64(-2));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 1, I64(2));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((int64_t[]){3, 1}), 2 * 8);
    tc_free(t);
    /* opset < 10: attributes */
    t = tc_new("Slice", 9, 1);
    tc_attr_ints(t, "starts", I64(1, -2), 2);
    tc_attr_ints(t, "ends", I64(MX, MX), 2);
    tc_attr_ints(t, "axes", I64(-1, 0), 2);
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(3, 4), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(2, 3));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((float[]){5, 6, 7, 9, 10, 11}),
                     6 * sizeof(float));
    tc_free(t);
    /* errors */
    t = tc_new("Slice", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(5), v);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(0));
    tc_in(t, 2, NN_DTYPE_INT64, 1, I64(1), I64(3));
    tc_in(t, 4, NN_DTYPE_INT64, 1, I64(1), I64(0));
    tc_expect_fail(t, NN_EINVAL, "step");
    t = tc_new("Slice", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(5), v);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), I64(0));
    tc_in(t, 2, NN_DTYPE_INT64, 1, I64(1), I64(3));
    tc_in(t, 3, NN_DTYPE_INT64, 1, I64(1), I64(1));
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("Slice", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(5), v);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(1), NULL);
    tc_in(t, 2, NN_DTYPE_INT64, 1, I64(1), I64(3));
    tc_expect_fail(t, NN_EUNSUPPORTED, NULL);
    nn_pool_free(pool);
}
END_TEST

/* ---- Pad ------------------------------------------------------------------ */

static void naive_pad(const float *x, float *y, int r, const int64_t *d,
                      const int64_t *pads, float cv)
{
    int64_t od[NN_MAX_RANK];
    for (int i = 0; i < r; i++)
        od[i] = d[i] + pads[i] + pads[i + r];
    int64_t n = prod(od, r);
    for (int64_t o = 0; o < n; o++) {
        int64_t rem = o, off = 0, st = 1;
        int in = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t ii = rem % od[i] - pads[i];
            rem /= od[i];
            if (ii < 0 || ii >= d[i])
                in = 0;
            off += ii * st;
            st *= d[i];
        }
        y[o] = in ? x[off] : cv;
    }
}

START_TEST(test_pad)
{
    uint64_t s = 9;
    int64_t d[4] = {2, 3, 5, 6};
    float *x = rand_f(180, &s);
    const int64_t cases[][8] = {
        {0, 0, 1, 1, 0, 0, 1, 1},
        {0, 0, 2, 0, 0, 0, 0, 3},
        {0, 1, -1, -2, 1, 0, -2, 1}, /* crop and pad mixed */
        {0, 0, 0, 0, 0, 0, 0, 0},
        {1, 0, 0, -6, 0, 0, 0, 0},   /* crop an axis to zero */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int64_t *pd = cases[c];
        int64_t od[4];
        for (int i = 0; i < 4; i++)
            od[i] = d[i] + pd[i] + pd[i + 4];
        int64_t n = prod(od, 4);
        float *ref = malloc((size_t)(n ? n : 1) * sizeof *ref);
        naive_pad(x, ref, 4, d, pd, 2.5f);
        /* opset 11: pads input + constant_value input */
        tc_t *t = tc_new("Pad", 13, 1);
        tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, x);
        tc_in(t, 1, NN_DTYPE_INT64, 1, I64(8), pd);
        tc_in(t, 2, NN_DTYPE_FLOAT, 0, NULL, (float[]){2.5f});
        ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
        tc_shape_is(&t->outs[0], 4, od);
        /* no padding at all: a view of the input (copied here) */
        ck_assert_int_eq(t->call.out_alias, c == 3);
        tc_exec(t, NULL, 0);
        ck_assert_mem_eq(t->outs[0].data, ref, (size_t)n * sizeof(float));
        tc_free(t);
        /* opset 2: attributes */
        t = tc_new("Pad", 2, 1);
        tc_attr_ints(t, "pads", pd, 8);
        tc_attr_f(t, "value", 2.5f);
        tc_attr_s(t, "mode", "constant");
        tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, x);
        ck_assert_int_eq(tc_prepare(t), 0);
        tc_exec(t, NULL, 0);
        ck_assert_mem_eq(t->outs[0].data, ref, (size_t)n * sizeof(float));
        tc_free(t);
        free(ref);
    }
    /* int64, constant value omitted -> 0 */
    int64_t v[3] = {1, 2, 3};
    tc_t *t = tc_new("Pad", 11, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(3), v);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), I64(2, -1));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((int64_t[]){0, 0, 1, 2}), 4 * 8);
    tc_free(t);
    /* errors */
    t = tc_new("Pad", 11, 1);
    tc_attr_s(t, "mode", "reflect");
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(8), cases[0]);
    tc_expect_fail(t, NN_EUNSUPPORTED, "mode 'reflect' is not supported");
    t = tc_new("Pad", 11, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(6), cases[0]);
    tc_expect_fail(t, NN_EINVAL, "pads must have 8 values, got 6");
    t = tc_new("Pad", 11, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(8), I64(0, 0, 0, -4, 0, 0, 0, -3));
    tc_expect_fail(t, NN_ESHAPE, "below zero");
    free(x);
}
END_TEST

/* ---- Shape ---------------------------------------------------------------- */

START_TEST(test_shape)
{
    int64_t d[4] = {3, 4, 5, 6};
    struct {
        int opset;
        int has_s, has_e;
        int64_t s, e;
        int n;
        int64_t out[4];
    } cases[] = {
        {13, 0, 0, 0, 0, 4, {3, 4, 5, 6}},
        {15, 1, 0, 1, 0, 3, {4, 5, 6}},
        {15, 0, 1, 0, -1, 3, {3, 4, 5}},
        {15, 1, 1, 1, 2, 1, {4}},
        {15, 1, 0, -1, 0, 1, {6}},
        {15, 1, 1, -10, 10, 4, {3, 4, 5, 6}},
        {15, 1, 1, 3, 1, 0, {0}},
        {13, 1, 1, 1, 2, 4, {3, 4, 5, 6}}, /* attributes ignored before 15 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tc_t *t = tc_new("Shape", cases[c].opset, 1);
        if (cases[c].has_s)
            tc_attr_i(t, "start", cases[c].s);
        if (cases[c].has_e)
            tc_attr_i(t, "end", cases[c].e);
        tc_in(t, 0, NN_DTYPE_FLOAT, 4, d, NULL); /* data not needed */
        ck_assert_int_eq(tc_prepare(t), 0);
        tc_shape_is(&t->outs[0], 1, I64(cases[c].n));
        ck_assert_int_eq(t->outs[0].dtype, NN_DTYPE_INT64);
        tc_exec(t, NULL, 0);
        if (cases[c].n)
            ck_assert_mem_eq(t->outs[0].data, cases[c].out,
                             (size_t)cases[c].n * 8);
        tc_free(t);
    }
}
END_TEST

/* ---- Gather --------------------------------------------------------------- */

START_TEST(test_gather)
{
    /* data [3,4] float, axis 0 / 1 / -1, 2-D and negative indices */
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    int64_t ix[4] = {2, -3, 0, -1};
    tc_t *t = tc_new("Gather", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 2, I64(2, 2), ix);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 3, I64(2, 2, 4));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data,
                     ((float[]){8, 9, 10, 11, 0, 1, 2, 3, 0, 1, 2, 3, 8, 9,
                                10, 11}),
                     16 * sizeof(float));
    tc_free(t);
    t = tc_new("Gather", 13, 1);
    tc_attr_i(t, "axis", -1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(3, 4), x);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(3), ((int64_t[]){3, -4, 1}));
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(3, 3));
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data,
                     ((float[]){3, 0, 1, 7, 4, 5, 11, 8, 9}), 9 * 4);
    tc_free(t);
    /* scalar index on int64 data (shape arithmetic): [4] -> [] */
    int64_t sh[4] = {1, 3, 224, 224};
    t = tc_new("Gather", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(4), sh);
    tc_in(t, 1, NN_DTYPE_INT64, 0, NULL, ((int64_t[]){-2}));
    ck_assert_int_eq(tc_prepare(t), 0);
    ck_assert_int_eq(t->outs[0].rank, 0);
    tc_exec(t, NULL, 0);
    ck_assert_int_eq(*(int64_t *)t->outs[0].data, 224);
    tc_free(t);
    /* run-time indices out of range: clamped, never read out of bounds */
    int64_t bad[2] = {7, -9};
    t = tc_new("Gather", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(4), sh);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), NULL);
    ck_assert_int_eq(tc_prepare(t), 0);
    t->ins[1].data = bad;
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((int64_t[]){224, 1}), 16);
    tc_free(t);
    /* errors */
    t = tc_new("Gather", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(4), sh);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), bad);
    tc_expect_fail(t, NN_EINVAL, "index 7 is out of range");
    t = tc_new("Gather", 13, 1);
    tc_attr_i(t, "axis", 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(4), sh);
    tc_in(t, 1, NN_DTYPE_INT64, 1, I64(2), bad);
    tc_expect_fail(t, NN_EINVAL, "axis 1 is out of range");
}
END_TEST

/* ---- Cast ----------------------------------------------------------------- */

START_TEST(test_cast)
{
    float x[5] = {1.9f, -1.9f, 0.0f, 1e20f, -3.0f};
    tc_t *t = tc_new("Cast", 13, 1);
    tc_attr_i(t, "to", 7);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(5), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    ck_assert_int_eq(t->outs[0].dtype, NN_DTYPE_INT64);
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data,
                     ((int64_t[]){1, -1, 0, INT64_MAX, -3}), 5 * 8);
    tc_free(t);
    int64_t v[3] = {-5, 0, 1 << 20};
    t = tc_new("Cast", 13, 1);
    tc_attr_i(t, "to", 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(3), v);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, ((float[]){-5, 0, 1048576}), 12);
    tc_free(t);
    t = tc_new("Cast", 13, 1);
    tc_attr_i(t, "to", 7);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(3), v);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_exec(t, NULL, 0);
    ck_assert_mem_eq(t->outs[0].data, v, sizeof v);
    tc_free(t);
    t = tc_new("Cast", 13, 1);
    tc_attr_i(t, "to", 11);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(5), x);
    tc_expect_fail(t, NN_EUNSUPPORTED, "DOUBLE");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_flatten);
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_squeeze_unsqueeze);
    tcase_add_test(tc, test_identity_dropout);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_pad);
    tcase_add_test(tc, test_shape);
    tcase_add_test(tc, test_gather);
    tcase_add_test(tc, test_cast);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
