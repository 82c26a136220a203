/* Broadcasting binary ops (Add, Sub, Mul, Div, Pow, Sum) against a naive
 * index-by-index reference, with and without a 2-thread pool. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/pool.h"

typedef struct harness {
    nn_node_t node;
    nn_call_t call;
    nn_tensor_t in[4];
    nn_tensor_t *inp[4];
    nn_tensor_t out;
    nn_tensor_t *outp[1];
    int outputs[1];
    nn_error_t err;
} harness_t;

static void h_init(harness_t *h, const char *op, int opset, int n_in)
{
    memset(h, 0, sizeof *h);
    h->node.name = "n0";
    h->node.op_type = op;
    h->node.opset = opset;
    h->node.n_inputs = n_in;
    h->node.n_outputs = 1;
    h->node.outputs = h->outputs;
    h->call.node = &h->node;
    h->call.n_in = n_in;
    h->call.in = h->inp;
    h->call.n_out = 1;
    h->call.out = h->outp;
    h->outp[0] = &h->out;
    for (int i = 0; i < n_in; i++)
        h->inp[i] = &h->in[i];
}

static void h_input(harness_t *h, int i, nn_dtype_t dt, int rank,
                    const int64_t *dims, unsigned seed)
{
    nn_tensor_set_shape(&h->in[i], dt, rank, dims);
    int64_t n = nn_tensor_elems(&h->in[i]);
    h->in[i].data = malloc(nn_tensor_bytes(&h->in[i]) + 8);
    ck_assert_ptr_nonnull(h->in[i].data);
    srand(seed);
    for (int64_t k = 0; k < n; k++) {
        if (dt == NN_DTYPE_FLOAT)
            ((float *)h->in[i].data)[k] =
                (float)rand() / (float)RAND_MAX * 4.0f - 2.0f;
        else
            ((int64_t *)h->in[i].data)[k] = rand() % 41 - 20;
    }
}

static void h_free(harness_t *h)
{
    for (int i = 0; i < 4; i++)
        free(h->in[i].data);
    free(h->out.data);
}

typedef int (*prep_fn)(nn_call_t *, nn_error_t *);
typedef void (*exec_fn)(const nn_call_t *);

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

/* Offset of the broadcast element of t for output multi-index idx. */
static int64_t ref_offset(const nn_tensor_t *t, const nn_tensor_t *out,
                          const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->rank; i++) {
        int oi = i + out->rank - t->rank;
        int64_t v = t->dims[i] == 1 ? 0 : idx[oi];
        off = off * t->dims[i] + v;
    }
    return off;
}

static void ref_unravel(const nn_tensor_t *out, int64_t k, int64_t *idx)
{
    for (int i = out->rank - 1; i >= 0; i--) {
        idx[i] = k % out->dims[i];
        k /= out->dims[i];
    }
}

static float ref_f(char op, float x, float y)
{
    switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return x / y;
    default: return powf(x, y);
    }
}

static int64_t ref_i(char op, int64_t x, int64_t y)
{
    switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    default: return y == 0 ? 0 : x / y;
    }
}

static const struct {
    const char *name;
    char sym;
    prep_fn prep;
    exec_fn exec;
} ops[] = {
    {"Add", '+', nn_op_add_prepare, nn_op_add_exec},
    {"Sub", '-', nn_op_sub_prepare, nn_op_sub_exec},
    {"Mul", '*', nn_op_mul_prepare, nn_op_mul_exec},
    {"Div", '/', nn_op_div_prepare, nn_op_div_exec},
    {"Pow", '^', nn_op_pow_prepare, nn_op_pow_exec},
};

typedef struct shape_case {
    int ra;
    int64_t a[5];
    int rb;
    int64_t b[5];
    int rout;
    int64_t out[5];
} shape_case_t;

static const shape_case_t cases[] = {
    {4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}},
    {4, {2, 3, 4, 5}, 1, {5}, 4, {2, 3, 4, 5}},
    {4, {2, 3, 4, 5}, 2, {4, 5}, 4, {2, 3, 4, 5}},
    {4, {2, 3, 4, 5}, 4, {1, 3, 1, 1}, 4, {2, 3, 4, 5}},
    {4, {2, 1, 4, 1}, 4, {1, 3, 1, 5}, 4, {2, 3, 4, 5}},
    {4, {2, 3, 4, 5}, 0, {0}, 4, {2, 3, 4, 5}},
    {0, {0}, 4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}},
    {1, {1}, 3, {3, 4, 5}, 3, {3, 4, 5}},
    {3, {3, 1, 1}, 4, {2, 3, 4, 5}, 4, {2, 3, 4, 5}},
    {0, {0}, 0, {0}, 0, {0}},
    {2, {3, 1}, 1, {4}, 2, {3, 4}},
    /* large: exercises the threaded paths */
    {4, {2, 16, 64, 64}, 4, {1, 16, 1, 1}, 4, {2, 16, 64, 64}},
    {4, {2, 16, 64, 64}, 4, {2, 16, 64, 64}, 4, {2, 16, 64, 64}},
    {4, {2, 16, 64, 64}, 0, {0}, 4, {2, 16, 64, 64}},
    {4, {2, 1, 64, 64}, 4, {2, 16, 1, 64}, 4, {2, 16, 64, 64}},
};

static void check_case(const shape_case_t *c, int opi, nn_dtype_t dt,
                       nn_pool_t *pool)
{
    harness_t h;
    h_init(&h, ops[opi].name, 13, 2);
    h_input(&h, 0, dt, c->ra, c->a, 11);
    h_input(&h, 1, dt, c->rb, c->b, 23);
    if (ops[opi].sym == '^' && dt == NN_DTYPE_FLOAT) {
        /* positive bases keep powf defined */
        float *a = h.in[0].data;
        for (int64_t k = 0; k < nn_tensor_elems(&h.in[0]); k++)
            a[k] = fabsf(a[k]) + 0.1f;
    }
    int rc = h_run(&h, ops[opi].prep, ops[opi].exec, pool);
    ck_assert_msg(rc == 0, "%s: %s", ops[opi].name, h.err.msg);
    ck_assert_int_eq(h.out.rank, c->rout);
    ck_assert_int_eq(h.out.dtype, dt);
    for (int i = 0; i < c->rout; i++)
        ck_assert_int_eq(h.out.dims[i], c->out[i]);
    int64_t n = nn_tensor_elems(&h.out), idx[NN_MAX_RANK];
    for (int64_t k = 0; k < n; k++) {
        ref_unravel(&h.out, k, idx);
        int64_t oa = ref_offset(&h.in[0], &h.out, idx);
        int64_t ob = ref_offset(&h.in[1], &h.out, idx);
        if (dt == NN_DTYPE_FLOAT) {
            float want = ref_f(ops[opi].sym, ((float *)h.in[0].data)[oa],
                               ((float *)h.in[1].data)[ob]);
            float got = ((float *)h.out.data)[k];
            ck_assert_msg(fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want)),
                          "%s case %d elem %lld: got %g want %g",
                          ops[opi].name, (int)(c - cases), (long long)k,
                          (double)got, (double)want);
        } else {
            int64_t want = ref_i(ops[opi].sym, ((int64_t *)h.in[0].data)[oa],
                                 ((int64_t *)h.in[1].data)[ob]);
            ck_assert_int_eq(((int64_t *)h.out.data)[k], want);
        }
    }
    h_free(&h);
}

static void run_all(nn_pool_t *pool)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int o = 0; o < 5; o++) {
            check_case(&cases[c], o, NN_DTYPE_FLOAT, pool);
            if (o < 4)
                check_case(&cases[c], o, NN_DTYPE_INT64, pool);
        }
    }
}

START_TEST(test_broadcast_single)
{
    run_all(NULL);
}
END_TEST

START_TEST(test_broadcast_pool2)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    run_all(pool);
    nn_pool_free(pool);
}
END_TEST

/* Pow's special-cased exponents must agree with powf. */
START_TEST(test_pow_scalar_exponents)
{
    const float exps[] = {2.0f, 0.5f, 1.0f, 3.0f, -1.0f};
    for (int e = 0; e < 5; e++) {
        harness_t h;
        h_init(&h, "Pow", 13, 2);
        int64_t d[2] = {7, 9};
        h_input(&h, 0, NN_DTYPE_FLOAT, 2, d, 5);
        h_input(&h, 1, NN_DTYPE_FLOAT, 0, d, 5);
        float *a = h.in[0].data;
        for (int k = 0; k < 63; k++)
            a[k] = fabsf(a[k]) + 0.01f;
        *(float *)h.in[1].data = exps[e];
        ck_assert_int_eq(h_run(&h, nn_op_pow_prepare, nn_op_pow_exec, NULL), 0);
        for (int k = 0; k < 63; k++) {
            float want = powf(a[k], exps[e]);
            ck_assert_float_eq_tol(((float *)h.out.data)[k], want,
                                   1e-5f * (1.0f + fabsf(want)));
        }
        h_free(&h);
    }
}
END_TEST

START_TEST(test_int64_div_edges)
{
    harness_t h;
    h_init(&h, "Div", 13, 2);
    int64_t d[1] = {6};
    h_input(&h, 0, NN_DTYPE_INT64, 1, d, 1);
    h_input(&h, 1, NN_DTYPE_INT64, 1, d, 1);
    int64_t *a = h.in[0].data, *b = h.in[1].data;
    const int64_t av[6] = {7, -7, 7, -7, 5, INT64_MIN};
    const int64_t bv[6] = {2, 2, -2, -2, 0, -1};
    memcpy(a, av, sizeof av);
    memcpy(b, bv, sizeof bv);
    ck_assert_int_eq(h_run(&h, nn_op_div_prepare, nn_op_div_exec, NULL), 0);
    const int64_t *o = h.out.data;
    ck_assert_int_eq(o[0], 3);   /* truncation toward zero, like C */
    ck_assert_int_eq(o[1], -3);
    ck_assert_int_eq(o[2], -3);
    ck_assert_int_eq(o[3], 3);
    ck_assert_int_eq(o[4], 0);   /* division by zero defined as 0 */
    ck_assert_int_eq(o[5], INT64_MIN); /* wraps, no trap */
    h_free(&h);
}
END_TEST

START_TEST(test_sum)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    for (int use_pool = 0; use_pool < 2; use_pool++) {
        /* variadic with broadcasting: [3,1] + [4] + [2,1,1] + [] */
        harness_t h;
        h_init(&h, "Sum", 13, 4);
        int64_t d0[2] = {3, 1}, d1[1] = {4}, d2[3] = {2, 1, 1};
        h_input(&h, 0, NN_DTYPE_FLOAT, 2, d0, 1);
        h_input(&h, 1, NN_DTYPE_FLOAT, 1, d1, 2);
        h_input(&h, 2, NN_DTYPE_FLOAT, 3, d2, 3);
        h_input(&h, 3, NN_DTYPE_FLOAT, 0, d2, 4);
        ck_assert_int_eq(h_run(&h, nn_op_sum_prepare, nn_op_sum_exec,
                               use_pool ? pool : NULL), 0);
        ck_assert_int_eq(h.out.rank, 3);
        ck_assert_int_eq(h.out.dims[0], 2);
        ck_assert_int_eq(h.out.dims[1], 3);
        ck_assert_int_eq(h.out.dims[2], 4);
        const float *x0 = h.in[0].data, *x1 = h.in[1].data,
                    *x2 = h.in[2].data, *x3 = h.in[3].data;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++) {
                    float want = x0[j] + x1[k] + x2[i] + x3[0];
                    ck_assert_float_eq_tol(((float *)h.out.data)[(i * 3 + j) * 4 + k],
                                           want, 1e-5f);
                }
        h_free(&h);

        /* single input: a copy; large same-shape inputs: threaded */
        h_init(&h, "Sum", 8, 1);
        int64_t d3[2] = {5, 7};
        h_input(&h, 0, NN_DTYPE_FLOAT, 2, d3, 9);
        ck_assert_int_eq(h_run(&h, nn_op_sum_prepare, nn_op_sum_exec,
                               use_pool ? pool : NULL), 0);
        ck_assert_mem_eq(h.out.data, h.in[0].data, 35 * sizeof(float));
        h_free(&h);

        h_init(&h, "Sum", 13, 3);
        int64_t d4[3] = {8, 100, 100};
        for (int i = 0; i < 3; i++)
            h_input(&h, i, NN_DTYPE_FLOAT, 3, d4, 30 + (unsigned)i);
        ck_assert_int_eq(h_run(&h, nn_op_sum_prepare, nn_op_sum_exec,
                               use_pool ? pool : NULL), 0);
        for (int k = 0; k < 80000; k++) {
            float want = ((float *)h.in[0].data)[k] + ((float *)h.in[1].data)[k] +
                         ((float *)h.in[2].data)[k];
            ck_assert_float_eq_tol(((float *)h.out.data)[k], want, 1e-5f);
        }
        h_free(&h);
    }
    nn_pool_free(pool);
}
END_TEST

START_TEST(test_errors)
{
    harness_t h;
    int64_t d1[2] = {3, 4}, d2[2] = {3, 5};

    /* incompatible shapes */
    h_init(&h, "Add", 13, 2);
    h_input(&h, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    h_input(&h, 1, NN_DTYPE_FLOAT, 2, d2, 1);
    ck_assert_int_eq(h_run(&h, nn_op_add_prepare, nn_op_add_exec, NULL),
                     -NN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "float32[3,4]"));
    ck_assert_ptr_nonnull(strstr(h.err.msg, "n0"));
    h_free(&h);

    /* mixed dtypes */
    h_init(&h, "Mul", 13, 2);
    h_input(&h, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    h_input(&h, 1, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(h_run(&h, nn_op_mul_prepare, nn_op_mul_exec, NULL),
                     -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(h.err.msg, "float32"));
    ck_assert_ptr_nonnull(strstr(h.err.msg, "int64"));
    h_free(&h);

    /* Pow is float only */
    h_init(&h, "Pow", 13, 2);
    h_input(&h, 0, NN_DTYPE_INT64, 2, d1, 1);
    h_input(&h, 1, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(h_run(&h, nn_op_pow_prepare, nn_op_pow_exec, NULL),
                     -NN_EUNSUPPORTED);
    h_free(&h);

    /* missing input */
    h_init(&h, "Sub", 13, 2);
    h_input(&h, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    h.inp[1] = NULL;
    ck_assert_int_eq(h_run(&h, nn_op_sub_prepare, nn_op_sub_exec, NULL),
                     -NN_EINVAL);
    h_free(&h);

    /* Sum of int64 and mismatched Sum shapes */
    h_init(&h, "Sum", 13, 2);
    h_input(&h, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    h_input(&h, 1, NN_DTYPE_FLOAT, 2, d2, 1);
    ck_assert_int_eq(h_run(&h, nn_op_sum_prepare, nn_op_sum_exec, NULL),
                     -NN_ESHAPE);
    h_free(&h);
    h_init(&h, "Sum", 13, 1);
    h_input(&h, 0, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(h_run(&h, nn_op_sum_prepare, nn_op_sum_exec, NULL),
                     -NN_EUNSUPPORTED);
    h_free(&h);
}
END_TEST

static Suite *elementwise_suite(void)
{
    Suite *s = suite_create("elementwise");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_broadcast_single);
    tcase_add_test(tc, test_broadcast_pool2);
    tcase_add_test(tc, test_pow_scalar_exponents);
    tcase_add_test(tc, test_int64_div_edges);
    tcase_add_test(tc, test_sum);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(elementwise_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
