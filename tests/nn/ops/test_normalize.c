/* Reductions and normalisations (src/nn/ops/normalize.c) against naive
 * double-precision references, single-threaded and with a pool of 2. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/error.h"
#include "nn/op.h"
#include "nn/pool.h"
#include "util/optest.h"
#include "util/testutil.h"



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

static void expect_close(const float *got, const double *ref, int64_t n,
                         double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        ck_assert_msg(d <= tol * (1.0 + fabs(ref[i])),
                      "%s: element %lld: got %.8g want %.8g", what,
                      (long long)i, (double)got[i], ref[i]);
    }
}

/* ---- ReduceMean ------------------------------------------------------------ */

static void check_reducemean(int r, const int64_t *d, int n,
                             const int64_t *axes, int keep, nn_pool_t *pool)
{
    int64_t total = prod(d, r);
    uint64_t s = 21;
    float *x = rand_f((size_t)total, &s);
    int red[NN_MAX_RANK] = {0};
    for (int k = 0; k < n; k++)
        red[axes[k] < 0 ? axes[k] + r : axes[k]] = 1;
    if (n == 0)
        for (int i = 0; i < r; i++)
            red[i] = 1;
    int64_t od[NN_MAX_RANK], kd[NN_MAX_RANK];
    int orank = 0;
    int64_t nout = 1;
    for (int i = 0; i < r; i++) {
        kd[i] = red[i] ? 1 : d[i];
        nout *= kd[i];
        if (!red[i] || keep)
            od[orank++] = kd[i];
    }
    double *ref = calloc((size_t)nout, sizeof *ref);
    int64_t count = total / nout;
    for (int64_t e = 0; e < total; e++) {
        int64_t rem = e, o = 0, st = 1;
        for (int i = r - 1; i >= 0; i--) {
            int64_t ii = rem % d[i];
            rem /= d[i];
            if (!red[i]) {
                o += ii * st;
                st *= d[i];
            }
        }
        ref[o] += x[e];
    }
    for (int64_t o = 0; o < nout; o++)
        ref[o] /= (double)count;
    tc_t *t = tc_new("ReduceMean", 13, 1);
    if (n >= 0)
        tc_attr_ints(t, "axes", axes, n);
    tc_attr_i(t, "keepdims", keep);
    tc_in(t, 0, NN_DTYPE_FLOAT, r, d, x);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[0], orank, od);
    tc_exec(t, pool, 0);
    expect_close(t->outs[0].data, ref, nout, 1e-5, "ReduceMean");
    tc_free(t);
    free(ref);
    free(x);
}

START_TEST(test_reducemean)
{
    nn_pool_t *pool = pool2();
    for (int pi = 0; pi < 2; pi++) {
        nn_pool_t *p = pi ? pool : NULL;
        for (int keep = 0; keep < 2; keep++) {
            check_reducemean(4, I64(2, 64, 28, 28), 2, I64(2, 3), keep, p);
            check_reducemean(4, I64(2, 64, 28, 28), 2, I64(-1, -2), keep, p);
            check_reducemean(4, I64(2, 64, 28, 28), 1, I64(1), keep, p);
            check_reducemean(4, I64(2, 3, 4, 5), 2, I64(0, 2), keep, p);
            check_reducemean(4, I64(2, 3, 4, 5), 2, I64(1, 3), keep, p);
            check_reducemean(3, I64(3, 1, 5), 1, I64(1), keep, p);
            check_reducemean(3, I64(3, 4, 5), 0, NULL, keep, p); /* all */
            check_reducemean(3, I64(3, 4, 5), 3, I64(0, 1, 2), keep, p);
            check_reducemean(2, I64(300, 300), 1, I64(0), keep, p);
            check_reducemean(1, I64(7), 1, I64(-1), keep, p);
        }
    }
    nn_pool_free(pool);
    /* hand case */
    float x[6] = {1, 2, 3, 4, 5, 6};
    tc_t *t = tc_new("ReduceMean", 13, 1);
    tc_attr_ints(t, "axes", I64(1), 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_shape_is(&t->outs[0], 2, I64(2, 1));
    tc_exec(t, NULL, 0);
    ck_assert_float_eq(((float *)t->outs[0].data)[0], 2.0f);
    ck_assert_float_eq(((float *)t->outs[0].data)[1], 5.0f);
    tc_free(t);
    /* errors */
    t = tc_new("ReduceMean", 13, 1);
    tc_attr_ints(t, "axes", I64(2), 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("ReduceMean", 13, 1);
    tc_attr_ints(t, "axes", I64(1, -1), 2);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_expect_fail(t, NN_EINVAL, "repeated");
    int64_t v[2] = {1, 2};
    t = tc_new("ReduceMean", 13, 1);
    tc_in(t, 0, NN_DTYPE_INT64, 1, I64(2), v);
    tc_expect_fail(t, NN_EUNSUPPORTED, "float32");
}
END_TEST

/* ---- Softmax / LogSoftmax ---------------------------------------------------- */

static void check_softmax(const char *op, int opset, int r, const int64_t *d,
                          int has_axis, int64_t axis, float shift,
                          nn_pool_t *pool)
{
    int is_log = strcmp(op, "LogSoftmax") == 0;
    int64_t total = prod(d, r);
    uint64_t s = 33;
    float *x = rand_f((size_t)total, &s);
    for (int64_t i = 0; i < total; i++)
        x[i] += shift;
    int64_t a = has_axis ? axis : opset < 13 ? 1 : -1;
    if (a < 0)
        a += r;
    int64_t outer = prod(d, (int)a), n, inner;
    if (opset < 13) {
        n = total / outer;
        inner = 1;
    } else {
        n = d[a];
        inner = total / outer / n;
    }
    double *ref = malloc((size_t)total * sizeof *ref);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + o * n * inner + j;
            double m = -INFINITY, sum = 0;
            for (int64_t k = 0; k < n; k++)
                m = fmax(m, xr[k * inner]);
            for (int64_t k = 0; k < n; k++)
                sum += exp(xr[k * inner] - m);
            for (int64_t k = 0; k < n; k++)
                ref[o * n * inner + j + k * inner] =
                    is_log ? xr[k * inner] - m - log(sum)
                           : exp(xr[k * inner] - m) / sum;
        }
    tc_t *t = tc_new(op, opset, 1);
    if (has_axis)
        tc_attr_i(t, "axis", axis);
    tc_in(t, 0, NN_DTYPE_FLOAT, r, d, x);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[0], r, d);
    tc_exec(t, pool, 0);
    expect_close(t->outs[0].data, ref, total, 2e-5, op);
    tc_free(t);
    free(ref);
    free(x);
}

START_TEST(test_softmax)
{
    nn_pool_t *pool = pool2();
    const char *ops[2] = {"Softmax", "LogSoftmax"};
    for (int pi = 0; pi < 2; pi++)
        for (int oi = 0; oi < 2; oi++) {
            nn_pool_t *p = pi ? pool : NULL;
            const char *op = ops[oi];
            /* opset 13: one axis */
            check_softmax(op, 13, 2, I64(4, 1000), 0, 0, 0, p);
            check_softmax(op, 13, 4, I64(2, 3, 4, 5), 1, 1, 0, p);
            check_softmax(op, 13, 4, I64(2, 3, 4, 5), 1, -2, 0, p);
            check_softmax(op, 13, 4, I64(2, 3, 4, 5), 1, 0, 0, p);
            check_softmax(op, 13, 4, I64(2, 21, 40, 40), 1, 1, 0, p);
            check_softmax(op, 13, 3, I64(64, 10, 100), 1, 1, 0, p);
            check_softmax(op, 13, 2, I64(3, 7), 0, 0, 1000.0f, p); /* large */
            /* opset 11: flatten at axis */
            check_softmax(op, 11, 2, I64(4, 1000), 0, 0, 0, p);
            check_softmax(op, 11, 4, I64(2, 3, 4, 5), 0, 0, 0, p);
            check_softmax(op, 11, 4, I64(2, 3, 4, 5), 1, 2, 0, p);
            check_softmax(op, 11, 4, I64(2, 3, 4, 5), 1, -1, 0, p);
            check_softmax(op, 11, 4, I64(2, 3, 4, 5), 1, 0, -1000.0f, p);
        }
    nn_pool_free(pool);
    /* hand case: softmax([0, ln 3]) = [0.25, 0.75] */
    float x[2] = {0.0f, logf(3.0f)};
    tc_t *t = tc_new("Softmax", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(2), x);
    ck_assert_int_eq(tc_prepare(t), 0);
    tc_exec(t, NULL, 0);
    expect_close(t->outs[0].data, (double[]){0.25, 0.75}, 2, 1e-6, "hand");
    tc_free(t);
    t = tc_new("Softmax", 13, 1);
    tc_attr_i(t, "axis", 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(2), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("LogSoftmax", 11, 1);
    tc_attr_i(t, "axis", -3);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(1, 2), x);
    tc_expect_fail(t, NN_EINVAL, "out of range");
}
END_TEST

/* ---- LRN ------------------------------------------------------------------- */

static void check_lrn(int r, const int64_t *d, int64_t size, float alpha,
                      float beta, float bias, int defaults, nn_pool_t *pool)
{
    int64_t total = prod(d, r), C = d[1], hw = total / d[0] / C;
    uint64_t s = 44;
    float *x = rand_f((size_t)total, &s);
    double *ref = malloc((size_t)total * sizeof *ref);
    if (defaults) {
        alpha = 1e-4f;
        beta = 0.75f;
        bias = 1.0f;
    }
    for (int64_t n = 0; n < d[0]; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < hw; k++) {
                double sq = 0;
                int64_t lo = c - (size - 1) / 2, hi = c + size / 2;
                for (int64_t cc = lo; cc <= hi; cc++)
                    if (cc >= 0 && cc < C) {
                        double v = x[(n * C + cc) * hw + k];
                        sq += v * v;
                    }
                int64_t i = (n * C + c) * hw + k;
                ref[i] = x[i] / pow(bias + alpha / (double)size * sq, beta);
            }
    tc_t *t = tc_new("LRN", 13, 1);
    tc_attr_i(t, "size", size);
    if (!defaults) {
        tc_attr_f(t, "alpha", alpha);
        tc_attr_f(t, "beta", beta);
        tc_attr_f(t, "bias", bias);
    }
    tc_in(t, 0, NN_DTYPE_FLOAT, r, d, x);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_exec(t, pool, 0);
    expect_close(t->outs[0].data, ref, total, 1e-5, "LRN");
    tc_free(t);
    free(ref);
    free(x);
}

START_TEST(test_lrn)
{
    nn_pool_t *pool = pool2();
    for (int pi = 0; pi < 2; pi++) {
        nn_pool_t *p = pi ? pool : NULL;
        check_lrn(4, I64(2, 7, 5, 6), 3, 0, 0, 0, 1, p);
        check_lrn(4, I64(2, 7, 5, 6), 5, 0.002f, 0.5f, 2.0f, 0, p);
        check_lrn(4, I64(2, 7, 5, 6), 2, 0.01f, 0.75f, 1.0f, 0, p); /* even */
        check_lrn(4, I64(1, 16, 40, 40), 5, 1e-3f, 0.75f, 1.0f, 0, p);
        check_lrn(3, I64(2, 4, 9), 1, 0.1f, 0.9f, 1.5f, 0, p);
        check_lrn(2, I64(3, 5), 11, 0.1f, 0.9f, 1.5f, 0, p);
    }
    nn_pool_free(pool);
    float x[4] = {1, 2, 3, 4};
    tc_t *t = tc_new("LRN", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(1, 4), x);
    tc_expect_fail(t, NN_EINVAL, "size");
    t = tc_new("LRN", 13, 1);
    tc_attr_i(t, "size", 3);
    tc_in(t, 0, NN_DTYPE_FLOAT, 1, I64(4), x);
    tc_expect_fail(t, NN_EINVAL, "rank 1");
}
END_TEST

/* ---- LayerNormalization ------------------------------------------------------ */

/* n_out 1..3: Y, then the optional Mean and InvStdDev (one per row). */
static void check_layernorm(int r, const int64_t *d, int has_axis,
                            int64_t axis, int with_b, int scalar_scale,
                            int n_out, nn_pool_t *pool)
{
    int64_t total = prod(d, r);
    int64_t a = has_axis ? (axis < 0 ? axis + r : axis) : r - 1;
    int64_t rows = prod(d, (int)a), n = total / rows;
    uint64_t s = 55;
    float *x = rand_f((size_t)total, &s);
    float *sc = rand_f((size_t)n, &s), *b = rand_f((size_t)n, &s);
    float eps = 1e-3f;
    double *ref = malloc((size_t)total * sizeof *ref);
    double *ref_mean = malloc((size_t)rows * sizeof *ref_mean);
    double *ref_inv = malloc((size_t)rows * sizeof *ref_inv);
    ck_assert(ref && ref_mean && ref_inv);
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * n;
        double m = 0, v = 0;
        for (int64_t k = 0; k < n; k++)
            m += xr[k];
        m /= (double)n;
        for (int64_t k = 0; k < n; k++)
            v += (xr[k] - m) * (xr[k] - m);
        v /= (double)n;
        ref_mean[i] = m;
        ref_inv[i] = 1.0 / sqrt(v + eps);
        for (int64_t k = 0; k < n; k++)
            ref[i * n + k] = (xr[k] - m) / sqrt(v + eps) *
                                 sc[scalar_scale ? 0 : k] +
                             (with_b ? b[k] : 0.0);
    }
    tc_t *t = tc_new("LayerNormalization", 17, n_out);
    if (has_axis)
        tc_attr_i(t, "axis", axis);
    tc_attr_f(t, "epsilon", eps);
    tc_in(t, 0, NN_DTYPE_FLOAT, r, d, x);
    if (scalar_scale)
        tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(1), sc);
    else
        tc_in(t, 1, NN_DTYPE_FLOAT, r - (int)a, d + a, sc);
    if (with_b)
        tc_in(t, 2, NN_DTYPE_FLOAT, r - (int)a, d + a, b);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[0], r, d);
    /* Statistics keep the leading axes and set the normalised ones to 1. */
    int64_t sd[NN_MAX_RANK];
    for (int i = 0; i < r; i++)
        sd[i] = i < a ? d[i] : 1;
    for (int k = 1; k < n_out; k++) {
        ck_assert_int_eq(t->outs[k].dtype, NN_DTYPE_FLOAT);
        tc_shape_is(&t->outs[k], r, sd);
    }
    tc_exec(t, pool, 0);
    expect_close(t->outs[0].data, ref, total, 2e-5, "LayerNormalization");
    if (n_out > 1)
        expect_close(t->outs[1].data, ref_mean, rows, 2e-5, "Mean");
    if (n_out > 2)
        expect_close(t->outs[2].data, ref_inv, rows, 2e-5, "InvStdDev");
    tc_free(t);
    free(ref);
    free(ref_mean);
    free(ref_inv);
    free(x);
    free(sc);
    free(b);
}

START_TEST(test_layernorm)
{
    nn_pool_t *pool = pool2();
    for (int pi = 0; pi < 2; pi++) {
        nn_pool_t *p = pi ? pool : NULL;
        check_layernorm(3, I64(2, 197, 384), 0, 0, 1, 0, 1, p);
        check_layernorm(3, I64(2, 197, 384), 1, -1, 0, 0, 3, p);
        check_layernorm(4, I64(2, 3, 4, 5), 1, 1, 1, 0, 3, p);
        check_layernorm(4, I64(2, 3, 4, 5), 1, -2, 1, 0, 2, p);
        check_layernorm(4, I64(2, 3, 4, 5), 1, 0, 0, 0, 3, p);
        check_layernorm(4, I64(2, 3, 4, 5), 1, -4, 1, 0, 2, p);
        check_layernorm(2, I64(5, 8), 1, -1, 0, 1, 3, p);
        check_layernorm(2, I64(5, 8), 1, 0, 1, 0, 3, p);
        check_layernorm(3, I64(2, 3, 5), 1, 2, 1, 0, 3, p);
    }
    nn_pool_free(pool);
    float x[6] = {1, 2, 3, 4, 5, 6}, sc[3] = {1, 1, 1};
    tc_t *t = tc_new("LayerNormalization", 17, 4);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(3), sc);
    tc_expect_fail(t, NN_EINVAL, "outputs");
    t = tc_new("LayerNormalization", 17, 1);
    tc_attr_i(t, "stash_type", 0);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(3), sc);
    tc_expect_fail(t, NN_EUNSUPPORTED, "stash_type");
    t = tc_new("LayerNormalization", 17, 1);
    tc_attr_i(t, "axis", 2);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(3), sc);
    tc_expect_fail(t, NN_EINVAL, "out of range");
    t = tc_new("LayerNormalization", 17, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(2), sc);
    tc_expect_fail(t, NN_ESHAPE, "Scale");
    t = tc_new("LayerNormalization", 17, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_expect_fail(t, NN_EINVAL, "Scale");
}
END_TEST

/* Mean/InvStdDev by hand on a small case, and an empty normalised extent
 * (statistics are 0/0 = NaN, Y is empty). */
START_TEST(test_layernorm_stats)
{
    float x[6] = {1, 2, 3, 4, 4, 4}, sc[3] = {2, 2, 2};
    tc_t *t = tc_new("LayerNormalization", 17, 3);
    tc_attr_f(t, "epsilon", 0.0f);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, I64(2, 3), x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, I64(3), sc);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[1], 2, I64(2, 1));
    tc_shape_is(&t->outs[2], 2, I64(2, 1));
    tc_exec(t, NULL, 0);
    const float *m = t->outs[1].data, *inv = t->outs[2].data;
    const float *y = t->outs[0].data;
    ck_assert_float_eq_tol(m[0], 2.0f, 1e-6f);
    ck_assert_float_eq_tol(m[1], 4.0f, 1e-6f);
    ck_assert_float_eq_tol(inv[0], (float)(1.0 / sqrt(2.0 / 3.0)), 1e-6f);
    ck_assert(isinf(inv[1])); /* zero variance, epsilon 0 */
    ck_assert_float_eq_tol(y[0], (float)(-2.0 / sqrt(2.0 / 3.0)), 1e-5f);
    tc_free(t);

    int64_t ed[2] = {3, 0};
    t = tc_new("LayerNormalization", 17, 3);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ed, x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, ed + 1, sc);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_shape_is(&t->outs[1], 2, I64(3, 1));
    tc_exec(t, NULL, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(isnan(((float *)t->outs[1].data)[i]));
        ck_assert(isnan(((float *)t->outs[2].data)[i]));
    }
    tc_free(t);
}
END_TEST

int main(void)
{
    /* LayerNormalization's copies per instruction set may fuse its
     * multiply-adds (FMA) where the baseline cannot: they differ by
     * rounding. */
    tc_isa_tol = 1e-6;
    Suite *s = suite_create("normalize");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reducemean);
    tcase_add_test(tc, test_softmax);
    tcase_add_test(tc, test_lrn);
    tcase_add_test(tc, test_layernorm);
    tcase_add_test(tc, test_layernorm_stats);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
