/* Unary activations, PRelu, Clip across opsets and nn_apply_act against
 * scalar references, with and without a 2-thread pool. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/pool.h"
#include "util/optest.h"

/* Output 0 of t as floats. */
static const float *out0(const tc_t *t)
{
    return t->outs[0].data;
}

/* Input i of t: shape dims, values uniform in [-scale, scale] from
 * rand() seeded with seed. */
static float *rand_input(tc_t *t, int i, int rank, const int64_t *dims,
                         unsigned seed, float scale)
{
    float *p = tc_in_alloc(t, i, NN_DTYPE_FLOAT, rank, dims);
    int64_t n = nn_tensor_elems(&t->ins[i]);
    srand(seed);
    for (int64_t k = 0; k < n; k++)
        p[k] = ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f) * scale;
    return p;
}

static float r_relu(float x, float a, float b) { (void)a, (void)b; return x > 0 ? x : 0; }
static float r_leaky(float x, float a, float b) { (void)b; return x >= 0 ? x : a * x; }
static float r_sigmoid(float x, float a, float b) { (void)a, (void)b; return 1.0f / (1.0f + expf(-x)); }
static float r_hsig(float x, float a, float b) { return fmaxf(0.0f, fminf(1.0f, a * x + b)); }
static float r_hswish(float x, float a, float b) { (void)a, (void)b; return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f)); }
static float r_tanh(float x, float a, float b) { (void)a, (void)b; return tanhf(x); }
static float r_erf(float x, float a, float b) { (void)a, (void)b; return erff(x); }
static float r_sqrt(float x, float a, float b) { (void)a, (void)b; return sqrtf(fabsf(x)); }
static float r_clip(float x, float a, float b) { return fminf(fmaxf(x, a), b); }
static float r_silu(float x, float a, float b) { (void)a, (void)b; return x / (1.0f + expf(-x)); }

static const struct {
    const char *name;
    float (*ref)(float, float, float);
    float alpha, beta; /* set as attributes when name has them */
    int attrs;
} unary[] = {
    {"Relu", r_relu, 0, 0, 0},
    {"LeakyRelu", r_leaky, 0.01f, 0, 0},
    {"LeakyRelu", r_leaky, 0.3f, 0, 1},
    {"Sigmoid", r_sigmoid, 0, 0, 0},
    {"HardSigmoid", r_hsig, 0.2f, 0.5f, 0},
    {"HardSigmoid", r_hsig, 0.5f, 0.6f, 2},
    {"HardSwish", r_hswish, 0, 0, 0},
    {"Tanh", r_tanh, 0, 0, 0},
    {"Erf", r_erf, 0, 0, 0},
    {"Sqrt", r_sqrt, 0, 0, 0},
};

static void check_unary(int u, int rank, const int64_t *dims, nn_pool_t *pool)
{
    tc_t *t = tc_new(unary[u].name, 13, 1);
    if (unary[u].attrs >= 1)
        tc_attr_f(t, "alpha", unary[u].alpha);
    if (unary[u].attrs >= 2)
        tc_attr_f(t, "beta", unary[u].beta);
    float *x = rand_input(t, 0, rank, dims, 7, 8.0f);
    int64_t n = nn_tensor_elems(&t->ins[0]);
    if (unary[u].ref == r_sqrt)
        for (int64_t k = 0; k < n; k++)
            x[k] = fabsf(x[k]);
    ck_assert_msg(tc_run(t, pool) == 0, "%s", t->err.msg);
    ck_assert_int_eq(t->outs[0].rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(t->outs[0].dims[i], dims[i]);
    const float *y = out0(t);
    for (int64_t k = 0; k < n; k++) {
        float want = unary[u].ref(x[k], unary[u].alpha, unary[u].beta);
        ck_assert_msg(fabsf(y[k] - want) <= 1e-6f + 1e-5f * fabsf(want),
                      "%s elem %lld x=%g: got %g want %g", unary[u].name,
                      (long long)k, (double)x[k], (double)y[k], (double)want);
    }
    tc_free(t);
}

static void run_unary(nn_pool_t *pool)
{
    const int64_t small[4] = {2, 3, 5, 7}, big[4] = {2, 8, 100, 111};
    for (size_t u = 0; u < sizeof unary / sizeof unary[0]; u++) {
        check_unary((int)u, 4, small, pool);
        check_unary((int)u, 4, big, pool);
        check_unary((int)u, 0, small, pool);
    }
}

START_TEST(test_unary_single)
{
    run_unary(NULL);
}
END_TEST

START_TEST(test_unary_pool2)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    run_unary(pool);
    nn_pool_free(pool);
}
END_TEST

/* Clip: attributes before opset 11, optional inputs from 11 (read in exec,
 * so changing them between runs takes effect). */
START_TEST(test_clip_opsets)
{
    const int64_t d[2] = {4, 50};
    tc_t *t;

    /* opset 6: attributes */
    t = tc_new("Clip", 6, 1);
    tc_attr_f(t, "min", -0.5f);
    tc_attr_f(t, "max", 0.25f);
    float *x = rand_input(t, 0, 2, d, 3, 2.0f);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(out0(t)[k], r_clip(x[k], -0.5f, 0.25f));
    tc_free(t);

    /* opset 6 defaults: no clipping */
    t = tc_new("Clip", 6, 1);
    x = rand_input(t, 0, 2, d, 3, 1e30f);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    ck_assert_mem_eq(t->outs[0].data, x, 200 * sizeof(float));
    tc_free(t);

    /* opset 11: attributes are not used; inputs are */
    t = tc_new("Clip", 11, 1);
    tc_attr_f(t, "min", -0.1f); /* ignored from opset 11 */
    x = rand_input(t, 0, 2, d, 3, 2.0f);
    float *lo = rand_input(t, 1, 0, d, 1, 1.0f);
    float *hi = rand_input(t, 2, 1, (const int64_t[]){1}, 1, 1.0f);
    *lo = -1.0f;
    *hi = 0.5f;
    ck_assert_int_eq(tc_run(t, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(out0(t)[k], r_clip(x[k], -1.0f, 0.5f));
    /* new bound values on the next run, no new prepare */
    *lo = 0.0f;
    *hi = 6.0f;
    tc_exec(t, NULL, 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(out0(t)[k], r_clip(x[k], 0.0f, 6.0f));
    tc_free(t);

    /* opset 13: only max given (min omitted as NULL) */
    t = tc_new("Clip", 13, 1);
    x = rand_input(t, 0, 2, d, 4, 2.0f);
    hi = rand_input(t, 2, 0, d, 1, 1.0f);
    *hi = 0.3f;
    tc_omit(t, 1);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(out0(t)[k], fminf(x[k], 0.3f));
    tc_free(t);

    /* opset 12: only X: identity */
    t = tc_new("Clip", 12, 1);
    x = rand_input(t, 0, 2, d, 4, 2.0f);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    ck_assert_mem_eq(t->outs[0].data, x, 200 * sizeof(float));
    tc_free(t);

    /* ONNX test_clip_example: [-2, 0, 2] clipped to [-1, 1] */
    t = tc_new("Clip", 11, 1);
    x = rand_input(t, 0, 1, (const int64_t[]){3}, 1, 1.0f);
    lo = rand_input(t, 1, 0, d, 1, 1.0f);
    hi = rand_input(t, 2, 0, d, 1, 1.0f);
    x[0] = -2, x[1] = 0, x[2] = 2, *lo = -1, *hi = 1;
    ck_assert_int_eq(tc_run(t, NULL), 0);
    ck_assert_float_eq(out0(t)[0], -1.0f);
    ck_assert_float_eq(out0(t)[1], 0.0f);
    ck_assert_float_eq(out0(t)[2], 1.0f);
    tc_free(t);
}
END_TEST

START_TEST(test_clip_errors)
{
    const int64_t d[2] = {2, 3};
    tc_t *t;
    /* bounds as inputs before opset 11 */
    t = tc_new("Clip", 10, 1);
    rand_input(t, 0, 2, d, 3, 1.0f);
    rand_input(t, 1, 0, d, 1, 1.0f);
    rand_input(t, 2, 0, d, 1, 1.0f);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
    /* non-scalar bound */
    t = tc_new("Clip", 13, 1);
    rand_input(t, 0, 2, d, 3, 1.0f);
    rand_input(t, 1, 1, (const int64_t[]){2}, 1, 1.0f);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "min"));
    tc_free(t);
    /* int64 data */
    t = tc_new("Clip", 13, 1);
    rand_input(t, 0, 2, d, 3, 1.0f);
    t->ins[0].dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "int64"));
    tc_free(t);
}
END_TEST

static void check_prelu(int xr, const int64_t *xd, int sr, const int64_t *sd,
                        nn_pool_t *pool)
{
    tc_t *t = tc_new("PRelu", 9, 1);
    const float *x = rand_input(t, 0, xr, xd, 5, 3.0f);
    const float *s = rand_input(t, 1, sr, sd, 6, 1.0f);
    ck_assert_msg(tc_run(t, pool) == 0, "%s", t->err.msg);
    int64_t n = nn_tensor_elems(&t->ins[0]);
    for (int64_t k = 0; k < n; k++) {
        /* naive broadcast of the slope index */
        int64_t r = k, off = 0, mul = 1;
        for (int i = xr - 1; i >= 0; i--) {
            int64_t idx = r % xd[i];
            r /= xd[i];
            int si = i - (xr - sr);
            if (si >= 0) {
                if (sd[si] != 1)
                    off += idx * mul;
                mul *= sd[si];
            }
        }
        float want = x[k] >= 0 ? x[k] : s[off] * x[k];
        ck_assert_float_eq_tol(out0(t)[k], want, 1e-6f);
    }
    tc_free(t);
}

static void run_prelu(nn_pool_t *pool)
{
    const int64_t x4[4] = {2, 3, 4, 5}, big[4] = {2, 16, 60, 70};
    check_prelu(4, x4, 3, (const int64_t[]){3, 1, 1}, pool);
    check_prelu(4, x4, 1, (const int64_t[]){5}, pool);
    check_prelu(4, x4, 4, x4, pool);
    check_prelu(4, x4, 1, (const int64_t[]){1}, pool);
    check_prelu(4, x4, 0, x4, pool);
    check_prelu(4, x4, 2, (const int64_t[]){4, 1}, pool);
    check_prelu(4, big, 3, (const int64_t[]){16, 1, 1}, pool);
    check_prelu(4, big, 4, (const int64_t[]){1, 16, 1, 70}, pool);
    /* ONNX test_prelu_broadcast: X [3,4,5], slope [5] */
    check_prelu(3, (const int64_t[]){3, 4, 5}, 1, (const int64_t[]){5}, pool);
}

START_TEST(test_prelu)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    run_prelu(NULL);
    run_prelu(pool);
    nn_pool_free(pool);

    /* the slope must broadcast unidirectionally to X */
    tc_t *t = tc_new("PRelu", 9, 1);
    rand_input(t, 0, 2, (const int64_t[]){3, 1}, 1, 1.0f);
    rand_input(t, 1, 1, (const int64_t[]){4}, 1, 1.0f);
    ck_assert_int_eq(tc_run(t, NULL), -NN_ESHAPE);
    tc_free(t);
    t = tc_new("PRelu", 9, 1);
    rand_input(t, 0, 2, (const int64_t[]){3, 1}, 1, 1.0f);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
}
END_TEST

START_TEST(test_apply_act)
{
    enum { N = 1037 };
    float x[N], y[N];
    srand(42);
    for (int k = 0; k < N; k++)
        x[k] = ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f) * 8.0f;
    const struct {
        nn_act_t act;
        float a, b;
    } acts[] = {
        {NN_ACT_NONE, 0, 0},       {NN_ACT_RELU, 0, 0},
        {NN_ACT_CLIP, 0.0f, 6.0f}, {NN_ACT_SIGMOID, 0, 0},
        {NN_ACT_SILU, 0, 0},       {NN_ACT_HARDSWISH, 1.0f / 6.0f, 0.5f},
        {NN_ACT_LEAKY, 0.1f, 0},
    };
    /* with each instruction set's kernels */
    for (int isa = NN_ISA_GENERIC; isa <= (int)tc_isa_best(); isa++)
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        nn_fusion_t f = {acts[i].act, acts[i].a, acts[i].b, -1};
        memcpy(y, x, sizeof x);
        nn_apply_act((nn_isa_t)isa, &f, y, N);
        for (int k = 0; k < N; k++) {
            float v = x[k], want;
            switch (acts[i].act) {
            case NN_ACT_RELU: want = r_relu(v, 0, 0); break;
            case NN_ACT_CLIP: want = r_clip(v, 0.0f, 6.0f); break;
            case NN_ACT_SIGMOID: want = r_sigmoid(v, 0, 0); break;
            case NN_ACT_SILU: want = r_silu(v, 0, 0); break;
            case NN_ACT_HARDSWISH: want = r_hswish(v, 0, 0); break;
            case NN_ACT_LEAKY: want = r_leaky(v, 0.1f, 0); break;
            default: want = v; break;
            }
            ck_assert_msg(fabsf(y[k] - want) <= 1e-6f + 1e-5f * fabsf(want),
                          "%s act %d x=%g: got %g want %g", nn_isa_name((nn_isa_t)isa),
                          (int)acts[i].act, (double)v, (double)y[k], (double)want);
        }
    }
}
END_TEST

/* The vectorised erf against double erf over a dense sweep (both branches
 * and their seam at 0.75, the clamp at 4) and the special values. */
START_TEST(test_erf_accuracy)
{
    const int64_t n = 200001;
    tc_t *t = tc_new("Erf", 13, 1);
    float *x = rand_input(t, 0, 1, &n, 1, 1.0f);
    for (int64_t k = 0; k < n - 5; k++)
        x[k] = -6.0f + 12.0f * (float)k / (float)(n - 6);
    x[n - 5] = NAN;
    x[n - 4] = INFINITY;
    x[n - 3] = -INFINITY;
    x[n - 2] = -0.0f;
    x[n - 1] = 1e-30f;
    ck_assert_int_eq(tc_prepare(t), 0);
    /* every instruction set's kernel to the full accuracy */
    for (int isa = NN_ISA_GENERIC; isa <= (int)tc_isa_best(); isa++) {
        tc_exec_isa(t, NULL, 0, (nn_isa_t)isa);
        const float *y = out0(t);
        const char *name = nn_isa_name((nn_isa_t)isa);
        for (int64_t k = 0; k < n - 5; k++)
            ck_assert_msg(fabs((double)y[k] - erf((double)x[k])) <= 1.6e-7,
                          "%s: erf(%.9g) = %.9g, want %.9g", name, (double)x[k],
                          (double)y[k], erf((double)x[k]));
        ck_assert(isnan(y[n - 5]));
        ck_assert_float_eq(y[n - 4], 1.0f);
        ck_assert_float_eq(y[n - 3], -1.0f);
        ck_assert(y[n - 2] == 0.0f && signbit(y[n - 2]));
        ck_assert_float_eq_tol(y[n - 1], 1.1283792e-30f, 1e-36f);
    }
    tc_free(t);
}
END_TEST

START_TEST(test_errors)
{
    tc_t *t;
    const int64_t d[2] = {2, 3};
    t = tc_new("Relu", 13, 1);
    t->node.name = "act0";
    rand_input(t, 0, 2, d, 1, 1.0f);
    t->ins[0].dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "act0"));
    tc_free(t);
    t = tc_new("Sigmoid", 13, 1);
    rand_input(t, 0, 2, d, 1, 1.0f);
    rand_input(t, 1, 2, d, 1, 1.0f);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
    t = tc_new("Tanh", 13, 1);
    tc_omit(t, 0);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);
}
END_TEST

static Suite *activation_suite(void)
{
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unary_single);
    tcase_add_test(tc, test_unary_pool2);
    tcase_add_test(tc, test_clip_opsets);
    tcase_add_test(tc, test_clip_errors);
    tcase_add_test(tc, test_prelu);
    tcase_add_test(tc, test_apply_act);
    tcase_add_test(tc, test_erf_accuracy);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* The AVX2 kernels fuse multiply-adds (FMA), the baseline ones cannot:
     * their results may differ by this suite's tolerance. */
    tc_isa_tol = 1e-5;
    SRunner *sr = srunner_create(activation_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
