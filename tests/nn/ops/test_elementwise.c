/* Broadcasting binary ops (Add, Sub, Mul, Div, Pow, Sum) against a naive
 * index-by-index reference, with and without a 2-thread pool. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/pool.h"
#include "util/optest.h"

/* Input i of t: shape dims, values from rand() seeded with seed: floats
 * in [-2, 2], int64 in [-20, 20]. */
static void rand_input(tc_t *t, int i, nn_dtype_t dt, int rank,
                       const int64_t *dims, unsigned seed)
{
    void *p = tc_in_alloc(t, i, dt, rank, dims);
    int64_t n = nn_tensor_elems(&t->ins[i]);
    srand(seed);
    for (int64_t k = 0; k < n; k++) {
        if (dt == NN_DTYPE_FLOAT)
            ((float *)p)[k] = (float)rand() / (float)RAND_MAX * 4.0f - 2.0f;
        else
            ((int64_t *)p)[k] = rand() % 41 - 20;
    }
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
} ops[] = {
    {"Add", '+'}, {"Sub", '-'}, {"Mul", '*'}, {"Div", '/'}, {"Pow", '^'},
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
    tc_t *t = tc_new(ops[opi].name, 13, 1);
    rand_input(t, 0, dt, c->ra, c->a, 11);
    rand_input(t, 1, dt, c->rb, c->b, 23);
    if (ops[opi].sym == '^' && dt == NN_DTYPE_FLOAT) {
        /* positive bases keep powf defined */
        float *a = t->ins[0].data;
        for (int64_t k = 0; k < nn_tensor_elems(&t->ins[0]); k++)
            a[k] = fabsf(a[k]) + 0.1f;
    }
    int rc = tc_run(t, pool);
    ck_assert_msg(rc == 0, "%s: %s", ops[opi].name, t->err.msg);
    ck_assert_int_eq(t->outs[0].rank, c->rout);
    ck_assert_int_eq(t->outs[0].dtype, dt);
    for (int i = 0; i < c->rout; i++)
        ck_assert_int_eq(t->outs[0].dims[i], c->out[i]);
    int64_t n = nn_tensor_elems(&t->outs[0]), idx[NN_MAX_RANK];
    for (int64_t k = 0; k < n; k++) {
        ref_unravel(&t->outs[0], k, idx);
        int64_t oa = ref_offset(&t->ins[0], &t->outs[0], idx);
        int64_t ob = ref_offset(&t->ins[1], &t->outs[0], idx);
        if (dt == NN_DTYPE_FLOAT) {
            float want = ref_f(ops[opi].sym, ((float *)t->ins[0].data)[oa],
                               ((float *)t->ins[1].data)[ob]);
            float got = ((float *)t->outs[0].data)[k];
            ck_assert_msg(fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want)),
                          "%s case %d elem %lld: got %g want %g",
                          ops[opi].name, (int)(c - cases), (long long)k,
                          (double)got, (double)want);
        } else {
            int64_t want = ref_i(ops[opi].sym,
                                 ((int64_t *)t->ins[0].data)[oa],
                                 ((int64_t *)t->ins[1].data)[ob]);
            ck_assert_int_eq(((int64_t *)t->outs[0].data)[k], want);
        }
    }
    tc_free(t);
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
        tc_t *t = tc_new("Pow", 13, 1);
        int64_t d[2] = {7, 9};
        rand_input(t, 0, NN_DTYPE_FLOAT, 2, d, 5);
        rand_input(t, 1, NN_DTYPE_FLOAT, 0, d, 5);
        float *a = t->ins[0].data;
        for (int k = 0; k < 63; k++)
            a[k] = fabsf(a[k]) + 0.01f;
        *(float *)t->ins[1].data = exps[e];
        ck_assert_int_eq(tc_run(t, NULL), 0);
        for (int k = 0; k < 63; k++) {
            float want = powf(a[k], exps[e]);
            ck_assert_float_eq_tol(((float *)t->outs[0].data)[k], want,
                                   1e-5f * (1.0f + fabsf(want)));
        }
        tc_free(t);
    }
}
END_TEST

START_TEST(test_int64_div_edges)
{
    tc_t *t = tc_new("Div", 13, 1);
    int64_t d[1] = {6};
    rand_input(t, 0, NN_DTYPE_INT64, 1, d, 1);
    rand_input(t, 1, NN_DTYPE_INT64, 1, d, 1);
    int64_t *a = t->ins[0].data, *b = t->ins[1].data;
    const int64_t av[6] = {7, -7, 7, -7, 5, INT64_MIN};
    const int64_t bv[6] = {2, 2, -2, -2, 0, -1};
    memcpy(a, av, sizeof av);
    memcpy(b, bv, sizeof bv);
    ck_assert_int_eq(tc_run(t, NULL), 0);
    const int64_t *o = t->outs[0].data;
    ck_assert_int_eq(o[0], 3);   /* truncation toward zero, like C */
    ck_assert_int_eq(o[1], -3);
    ck_assert_int_eq(o[2], -3);
    ck_assert_int_eq(o[3], 3);
    ck_assert_int_eq(o[4], 0);   /* division by zero defined as 0 */
    ck_assert_int_eq(o[5], INT64_MIN); /* wraps, no trap */
    tc_free(t);
}
END_TEST

START_TEST(test_sum)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    for (int use_pool = 0; use_pool < 2; use_pool++) {
        /* variadic with broadcasting: [3,1] + [4] + [2,1,1] + [] */
        tc_t *t = tc_new("Sum", 13, 1);
        int64_t d0[2] = {3, 1}, d1[1] = {4}, d2[3] = {2, 1, 1};
        rand_input(t, 0, NN_DTYPE_FLOAT, 2, d0, 1);
        rand_input(t, 1, NN_DTYPE_FLOAT, 1, d1, 2);
        rand_input(t, 2, NN_DTYPE_FLOAT, 3, d2, 3);
        rand_input(t, 3, NN_DTYPE_FLOAT, 0, d2, 4);
        ck_assert_int_eq(tc_run(t, use_pool ? pool : NULL), 0);
        ck_assert_int_eq(t->outs[0].rank, 3);
        ck_assert_int_eq(t->outs[0].dims[0], 2);
        ck_assert_int_eq(t->outs[0].dims[1], 3);
        ck_assert_int_eq(t->outs[0].dims[2], 4);
        const float *x0 = t->ins[0].data, *x1 = t->ins[1].data,
                    *x2 = t->ins[2].data, *x3 = t->ins[3].data;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++) {
                    float want = x0[j] + x1[k] + x2[i] + x3[0];
                    const float *y = t->outs[0].data;
                    ck_assert_float_eq_tol(y[(i * 3 + j) * 4 + k], want, 1e-5f);
                }
        tc_free(t);

        /* single input: a copy; large same-shape inputs: threaded */
        t = tc_new("Sum", 8, 1);
        int64_t d3[2] = {5, 7};
        rand_input(t, 0, NN_DTYPE_FLOAT, 2, d3, 9);
        ck_assert_int_eq(tc_run(t, use_pool ? pool : NULL), 0);
        ck_assert_mem_eq(t->outs[0].data, t->ins[0].data, 35 * sizeof(float));
        tc_free(t);

        t = tc_new("Sum", 13, 1);
        int64_t d4[3] = {8, 100, 100};
        for (int i = 0; i < 3; i++)
            rand_input(t, i, NN_DTYPE_FLOAT, 3, d4, 30 + (unsigned)i);
        ck_assert_int_eq(tc_run(t, use_pool ? pool : NULL), 0);
        for (int k = 0; k < 80000; k++) {
            float want = ((float *)t->ins[0].data)[k] +
                         ((float *)t->ins[1].data)[k] +
                         ((float *)t->ins[2].data)[k];
            ck_assert_float_eq_tol(((float *)t->outs[0].data)[k], want, 1e-5f);
        }
        tc_free(t);
    }
    nn_pool_free(pool);
}
END_TEST

START_TEST(test_errors)
{
    tc_t *t;
    int64_t d1[2] = {3, 4}, d2[2] = {3, 5};

    /* incompatible shapes */
    t = tc_new("Add", 13, 1);
    t->node.name = "n0";
    rand_input(t, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    rand_input(t, 1, NN_DTYPE_FLOAT, 2, d2, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "float32[3,4]"));
    ck_assert_ptr_nonnull(strstr(t->err.msg, "n0"));
    tc_free(t);

    /* mixed dtypes */
    t = tc_new("Mul", 13, 1);
    rand_input(t, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    rand_input(t, 1, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    ck_assert_ptr_nonnull(strstr(t->err.msg, "float32"));
    ck_assert_ptr_nonnull(strstr(t->err.msg, "int64"));
    tc_free(t);

    /* Pow is float only */
    t = tc_new("Pow", 13, 1);
    rand_input(t, 0, NN_DTYPE_INT64, 2, d1, 1);
    rand_input(t, 1, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    tc_free(t);

    /* missing input */
    t = tc_new("Sub", 13, 1);
    rand_input(t, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    tc_omit(t, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EINVAL);
    tc_free(t);

    /* Sum of int64 and mismatched Sum shapes */
    t = tc_new("Sum", 13, 1);
    rand_input(t, 0, NN_DTYPE_FLOAT, 2, d1, 1);
    rand_input(t, 1, NN_DTYPE_FLOAT, 2, d2, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_ESHAPE);
    tc_free(t);
    t = tc_new("Sum", 13, 1);
    rand_input(t, 0, NN_DTYPE_INT64, 2, d1, 1);
    ck_assert_int_eq(tc_run(t, NULL), -NN_EUNSUPPORTED);
    tc_free(t);
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
