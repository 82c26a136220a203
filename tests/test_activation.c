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

typedef struct harness {
    nn_node_t node;
    nn_attr_t attrs[4];
    nn_call_t call;
    nn_tensor_t in[3];
    nn_tensor_t *inp[3];
    nn_tensor_t out;
    nn_tensor_t *outp[1];
    int outputs[1];
    nn_error_t err;
} harness_t;

typedef int (*prep_fn)(nn_call_t *, nn_error_t *);
typedef void (*exec_fn)(const nn_call_t *);

static void h_init(harness_t *h, const char *op, int opset, int n_in)
{
    memset(h, 0, sizeof *h);
    h->node.name = "act0";
    h->node.op_type = op;
    h->node.opset = opset;
    h->node.n_inputs = n_in;
    h->node.n_outputs = 1;
    h->node.outputs = h->outputs;
    h->node.attrs = h->attrs;
    h->call.node = &h->node;
    h->call.n_in = n_in;
    h->call.in = h->inp;
    h->call.n_out = 1;
    h->call.out = h->outp;
    h->outp[0] = &h->out;
    for (int i = 0; i < n_in; i++)
        h->inp[i] = &h->in[i];
}

static void h_attr_f(harness_t *h, const char *name, float v)
{
    nn_attr_t *a = &h->attrs[h->node.n_attrs++];
    a->name = (char *)name;
    a->type = NN_ATTR_FLOAT;
    a->f = v;
}

static float *h_input(harness_t *h, int i, int rank, const int64_t *dims,
                      unsigned seed, float scale)
{
    nn_tensor_set_shape(&h->in[i], NN_DTYPE_FLOAT, rank, dims);
    int64_t n = nn_tensor_elems(&h->in[i]);
    float *p = malloc((size_t)n * sizeof(float) + 8);
    ck_assert_ptr_nonnull(p);
    srand(seed);
    for (int64_t k = 0; k < n; k++)
        p[k] = ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f) * scale;
    h->in[i].data = p;
    return p;
}

static void h_free(harness_t *h)
{
    for (int i = 0; i < 3; i++)
        free(h->in[i].data);
    free(h->out.data);
}

static int h_run(harness_t *h, prep_fn prep, exec_fn ex, nn_pool_t *pool)
{
    int rc = prep(&h->call, &h->err);
    if (rc)
        return rc;
    h->out.data = malloc(nn_tensor_bytes(&h->out) + 8);
    ck_assert_ptr_nonnull(h->out.data);
    h->call.pool = pool;
    ex(&h->call);
    return 0;
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
    prep_fn prep;
    exec_fn exec;
    float (*ref)(float, float, float);
    float alpha, beta; /* set as attributes when name has them */
    int attrs;
} unary[] = {
    {"Relu", nn_op_relu_prepare, nn_op_relu_exec, r_relu, 0, 0, 0},
    {"LeakyRelu", nn_op_leakyrelu_prepare, nn_op_leakyrelu_exec, r_leaky, 0.01f, 0, 0},
    {"LeakyRelu", nn_op_leakyrelu_prepare, nn_op_leakyrelu_exec, r_leaky, 0.3f, 0, 1},
    {"Sigmoid", nn_op_sigmoid_prepare, nn_op_sigmoid_exec, r_sigmoid, 0, 0, 0},
    {"HardSigmoid", nn_op_hardsigmoid_prepare, nn_op_hardsigmoid_exec, r_hsig, 0.2f, 0.5f, 0},
    {"HardSigmoid", nn_op_hardsigmoid_prepare, nn_op_hardsigmoid_exec, r_hsig, 0.5f, 0.6f, 2},
    {"HardSwish", nn_op_hardswish_prepare, nn_op_hardswish_exec, r_hswish, 0, 0, 0},
    {"Tanh", nn_op_tanh_prepare, nn_op_tanh_exec, r_tanh, 0, 0, 0},
    {"Erf", nn_op_erf_prepare, nn_op_erf_exec, r_erf, 0, 0, 0},
    {"Sqrt", nn_op_sqrt_prepare, nn_op_sqrt_exec, r_sqrt, 0, 0, 0},
};

static void check_unary(int u, int rank, const int64_t *dims, nn_pool_t *pool)
{
    harness_t h;
    h_init(&h, unary[u].name, 13, 1);
    if (unary[u].attrs >= 1)
        h_attr_f(&h, "alpha", unary[u].alpha);
    if (unary[u].attrs >= 2)
        h_attr_f(&h, "beta", unary[u].beta);
    float *x = h_input(&h, 0, rank, dims, 7, 8.0f);
    int64_t n = nn_tensor_elems(&h.in[0]);
    if (unary[u].ref == r_sqrt)
        for (int64_t k = 0; k < n; k++)
            x[k] = fabsf(x[k]);
    ck_assert_msg(h_run(&h, unary[u].prep, unary[u].exec, pool) == 0, "%s",
                  h.err.msg);
    ck_assert_int_eq(h.out.rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(h.out.dims[i], dims[i]);
    const float *y = h.out.data;
    for (int64_t k = 0; k < n; k++) {
        float want = unary[u].ref(x[k], unary[u].alpha, unary[u].beta);
        ck_assert_msg(fabsf(y[k] - want) <= 1e-6f + 1e-5f * fabsf(want),
                      "%s elem %lld x=%g: got %g want %g", unary[u].name,
                      (long long)k, (double)x[k], (double)y[k], (double)want);
    }
    h_free(&h);
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
    harness_t h;

    /* opset 6: attributes */
    h_init(&h, "Clip", 6, 1);
    h_attr_f(&h, "min", -0.5f);
    h_attr_f(&h, "max", 0.25f);
    float *x = h_input(&h, 0, 2, d, 3, 2.0f);
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(((float *)h.out.data)[k], r_clip(x[k], -0.5f, 0.25f));
    h_free(&h);

    /* opset 6 defaults: no clipping */
    h_init(&h, "Clip", 6, 1);
    x = h_input(&h, 0, 2, d, 3, 1e30f);
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    ck_assert_mem_eq(h.out.data, x, 200 * sizeof(float));
    h_free(&h);

    /* opset 11: attributes are not used; inputs are */
    h_init(&h, "Clip", 11, 3);
    h_attr_f(&h, "min", -0.1f); /* ignored from opset 11 */
    x = h_input(&h, 0, 2, d, 3, 2.0f);
    float *lo = h_input(&h, 1, 0, d, 1, 1.0f);
    float *hi = h_input(&h, 2, 1, (const int64_t[]){1}, 1, 1.0f);
    *lo = -1.0f;
    *hi = 0.5f;
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(((float *)h.out.data)[k], r_clip(x[k], -1.0f, 0.5f));
    /* new bound values on the next run, no new prepare */
    *lo = 0.0f;
    *hi = 6.0f;
    nn_op_clip_exec(&h.call);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(((float *)h.out.data)[k], r_clip(x[k], 0.0f, 6.0f));
    h_free(&h);

    /* opset 13: only max given (min omitted as NULL) */
    h_init(&h, "Clip", 13, 3);
    x = h_input(&h, 0, 2, d, 4, 2.0f);
    hi = h_input(&h, 2, 0, d, 1, 1.0f);
    *hi = 0.3f;
    h.inp[1] = NULL;
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    for (int k = 0; k < 200; k++)
        ck_assert_float_eq(((float *)h.out.data)[k], fminf(x[k], 0.3f));
    h_free(&h);

    /* opset 12: only X: identity */
    h_init(&h, "Clip", 12, 1);
    x = h_input(&h, 0, 2, d, 4, 2.0f);
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    ck_assert_mem_eq(h.out.data, x, 200 * sizeof(float));
    h_free(&h);

    /* ONNX test_clip_example: [-2, 0, 2] clipped to [-1, 1] */
    h_init(&h, "Clip", 11, 3);
    x = h_input(&h, 0, 1, (const int64_t[]){3}, 1, 1.0f);
    lo = h_input(&h, 1, 0, d, 1, 1.0f);
    hi = h_input(&h, 2, 0, d, 1, 1.0f);
    x[0] = -2, x[1] = 0, x[2] = 2, *lo = -1, *hi = 1;
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL), 0);
    ck_assert_float_eq(((float *)h.out.data)[0], -1.0f);
    ck_assert_float_eq(((float *)h.out.data)[1], 0.0f);
    ck_assert_float_eq(((float *)h.out.data)[2], 1.0f);
    h_free(&h);
}
END_TEST

START_TEST(test_clip_errors)
{
    const int64_t d[2] = {2, 3};
    harness_t h;
    /* bounds as inputs before opset 11 */
    h_init(&h, "Clip", 10, 3);
    h_input(&h, 0, 2, d, 3, 1.0f);
    h_input(&h, 1, 0, d, 1, 1.0f);
    h_input(&h, 2, 0, d, 1, 1.0f);
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);
    /* non-scalar bound */
    h_init(&h, "Clip", 13, 2);
    h_input(&h, 0, 2, d, 3, 1.0f);
    h_input(&h, 1, 1, (const int64_t[]){2}, 1, 1.0f);
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL),
                     -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "min"));
    h_free(&h);
    /* int64 data */
    h_init(&h, "Clip", 13, 1);
    h_input(&h, 0, 2, d, 3, 1.0f);
    h.in[0].dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(h_run(&h, nn_op_clip_prepare, nn_op_clip_exec, NULL),
                     -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "int64"));
    h_free(&h);
}
END_TEST

static void check_prelu(int xr, const int64_t *xd, int sr, const int64_t *sd,
                        nn_pool_t *pool)
{
    harness_t h;
    h_init(&h, "PRelu", 9, 2);
    const float *x = h_input(&h, 0, xr, xd, 5, 3.0f);
    const float *s = h_input(&h, 1, sr, sd, 6, 1.0f);
    ck_assert_msg(h_run(&h, nn_op_prelu_prepare, nn_op_prelu_exec, pool) == 0,
                  "%s", h.err.msg);
    int64_t n = nn_tensor_elems(&h.in[0]);
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
        ck_assert_float_eq_tol(((float *)h.out.data)[k], want, 1e-6f);
    }
    h_free(&h);
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
    harness_t h;
    h_init(&h, "PRelu", 9, 2);
    h_input(&h, 0, 2, (const int64_t[]){3, 1}, 1, 1.0f);
    h_input(&h, 1, 1, (const int64_t[]){4}, 1, 1.0f);
    ck_assert_int_eq(h_run(&h, nn_op_prelu_prepare, nn_op_prelu_exec, NULL),
                     -NN_ESHAPE);
    h_free(&h);
    h_init(&h, "PRelu", 9, 1);
    h_input(&h, 0, 2, (const int64_t[]){3, 1}, 1, 1.0f);
    ck_assert_int_eq(h_run(&h, nn_op_prelu_prepare, nn_op_prelu_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);
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
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        nn_fusion_t f = {acts[i].act, acts[i].a, acts[i].b, -1};
        memcpy(y, x, sizeof x);
        nn_apply_act(&f, y, N);
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
                          "act %d x=%g: got %g want %g", (int)acts[i].act,
                          (double)v, (double)y[k], (double)want);
        }
    }
}
END_TEST

/* The vectorised erf against double erf over a dense sweep (both branches
 * and their seam at 0.75, the clamp at 4) and the special values. */
START_TEST(test_erf_accuracy)
{
    const int64_t n = 200001;
    harness_t h;
    h_init(&h, "Erf", 13, 1);
    float *x = h_input(&h, 0, 1, &n, 1, 1.0f);
    for (int64_t k = 0; k < n - 5; k++)
        x[k] = -6.0f + 12.0f * (float)k / (float)(n - 6);
    x[n - 5] = NAN;
    x[n - 4] = INFINITY;
    x[n - 3] = -INFINITY;
    x[n - 2] = -0.0f;
    x[n - 1] = 1e-30f;
    ck_assert_int_eq(h_run(&h, nn_op_erf_prepare, nn_op_erf_exec, NULL), 0);
    const float *y = h.out.data;
    for (int64_t k = 0; k < n - 5; k++)
        ck_assert_msg(fabs((double)y[k] - erf((double)x[k])) <= 1.6e-7,
                      "erf(%.9g) = %.9g, want %.9g", (double)x[k],
                      (double)y[k], erf((double)x[k]));
    ck_assert(isnan(y[n - 5]));
    ck_assert_float_eq(y[n - 4], 1.0f);
    ck_assert_float_eq(y[n - 3], -1.0f);
    ck_assert(y[n - 2] == 0.0f && signbit(y[n - 2]));
    ck_assert_float_eq_tol(y[n - 1], 1.1283792e-30f, 1e-36f);
    h_free(&h);
}
END_TEST

START_TEST(test_errors)
{
    harness_t h;
    const int64_t d[2] = {2, 3};
    h_init(&h, "Relu", 13, 1);
    h_input(&h, 0, 2, d, 1, 1.0f);
    h.in[0].dtype = NN_DTYPE_INT64;
    ck_assert_int_eq(h_run(&h, nn_op_relu_prepare, nn_op_relu_exec, NULL),
                     -NN_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "act0"));
    h_free(&h);
    h_init(&h, "Sigmoid", 13, 2);
    h_input(&h, 0, 2, d, 1, 1.0f);
    h_input(&h, 1, 2, d, 1, 1.0f);
    ck_assert_int_eq(h_run(&h, nn_op_sigmoid_prepare, nn_op_sigmoid_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);
    h_init(&h, "Tanh", 13, 1);
    h.inp[0] = NULL;
    ck_assert_int_eq(h_run(&h, nn_op_tanh_prepare, nn_op_tanh_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);
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
    SRunner *sr = srunner_create(activation_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
