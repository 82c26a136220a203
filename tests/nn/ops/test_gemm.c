/* Gemm and MatMul against naive references. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/op.h"
#include "nn/pool.h"
#include "util/optest.h"
#include "util/testutil.h"

void openblas_set_num_threads(int n);

static uint64_t tg_rng = 0x9E3779B97F4A7C15ull;

static float tg_rand(void)
{
    tg_rng ^= tg_rng << 13;
    tg_rng ^= tg_rng >> 7;
    tg_rng ^= tg_rng << 17;
    return (float)((tg_rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *tg_alloc_rand(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = tg_rand();
    return p;
}

/* ---- Gemm ------------------------------------------------------------------------ */

/* c_kind: 0 none, 1 [N], 2 [1,N], 3 [M,1], 4 scalar [], 5 [M,N], 6 [1] */
static void run_gemm(int M, int N, int K, int ta, int tb, float alpha,
                     float beta, int c_kind, int relu, nn_pool_t *pool)
{
    int64_t ad[2] = {ta ? K : M, ta ? M : K};
    int64_t bd[2] = {tb ? N : K, tb ? K : N};
    int64_t cd[2];
    int crank;
    size_t nc;
    switch (c_kind) {
    case 1: crank = 1; cd[0] = N; nc = (size_t)N; break;
    case 2: crank = 2; cd[0] = 1; cd[1] = N; nc = (size_t)N; break;
    case 3: crank = 2; cd[0] = M; cd[1] = 1; nc = (size_t)M; break;
    case 4: crank = 0; nc = 1; break;
    case 5: crank = 2; cd[0] = M; cd[1] = N; nc = (size_t)M * N; break;
    case 6: crank = 1; cd[0] = 1; nc = 1; break;
    default: crank = 0; nc = 0; break;
    }
    float *A = tg_alloc_rand((size_t)M * K), *B = tg_alloc_rand((size_t)K * N),
          *C = tg_alloc_rand(nc), *Y = tg_alloc_rand((size_t)M * N),
          *ref = tg_alloc_rand((size_t)M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * M + m] : A[(size_t)m * K + k];
                float b = tb ? B[(size_t)n * K + k] : B[(size_t)k * N + n];
                acc += (double)a * b;
            }
            acc *= alpha;
            if (c_kind) {
                float c;
                switch (c_kind) {
                case 1: case 2: c = C[n]; break;
                case 3: c = C[m]; break;
                case 5: c = C[(size_t)m * N + n]; break;
                default: c = C[0]; break;
                }
                acc += (double)beta * c;
            }
            if (relu && acc < 0)
                acc = 0;
            ref[(size_t)m * N + n] = (float)acc;
        }
    tc_t *t = tc_new("Gemm", 13, 1);
    if (ta)
        tc_attr_i(t, "transA", 1);
    if (tb)
        tc_attr_i(t, "transB", 1);
    if (alpha != 1.0f)
        tc_attr_f(t, "alpha", alpha);
    if (beta != 1.0f)
        tc_attr_f(t, "beta", beta);
    if (relu)
        t->node.fusion.act = NN_ACT_RELU;
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ad, A);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, B);
    if (c_kind)
        tc_in(t, 2, NN_DTYPE_FLOAT, crank, cd, C);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    ck_assert_int_eq(t->outs[0].rank, 2);
    ck_assert_int_eq(t->outs[0].dims[0], M);
    ck_assert_int_eq(t->outs[0].dims[1], N);
    ck_assert(fabs(t->call.flops - 2.0 * M * N * K) < 0.5);
    tc_out_buffer(t, 0, Y);
    tc_exec(t, pool, 0);
    double e = tu_rel_error(Y, ref, (size_t)M * N);
    ck_assert_msg(e < 1e-5, "Gemm M%d N%d K%d ta%d tb%d C%d: rel error %g", M,
                  N, K, ta, tb, c_kind, e);
    tc_free(t);
    free(A); free(B); free(C); free(Y); free(ref);
}

static void gemm_all(nn_pool_t *pool)
{
    static const int shapes[][3] = {
        {1, 1, 1}, {3, 5, 7}, {1, 1000, 512}, {17, 33, 9}, {64, 48, 130},
        {256, 3, 20}, {2, 300, 64},
        /* The own products: several row groups and K blocks, columns
         * split (few rows), narrow and single-panel shapes. */
        {600, 100, 300}, {20, 500, 40}, {49, 200, 700}, {8, 16, 1}, {9, 17, 5},
        /* Dot products (a few rows, B transposed): a batch of 8 through a
         * classifier, two passes of rows, odd columns, K not whole vectors. */
        {8, 301, 1283}, {16, 37, 33}, {13, 2, 17},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int c = 0; c <= 6; c++)
                run_gemm(shapes[s][0], shapes[s][1], shapes[s][2], t & 1,
                         t >> 1, c == 3 ? 0.5f : 1.0f, c == 5 ? -2.0f : 1.0f,
                         c, c == 1, pool);
    run_gemm(40, 30, 20, 0, 1, 1.0f, 0.0f, 5, 0, pool); /* beta 0 ignores C */
}

START_TEST(gemm_single)
{
    gemm_all(NULL);
}
END_TEST

START_TEST(gemm_pool)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    gemm_all(pool);
    nn_pool_free(pool);
}
END_TEST

START_TEST(gemm_errors)
{
    int64_t ad[2] = {3, 4}, bd[2] = {5, 6}, cd[2] = {2, 6};
    tc_t *t = tc_new("Gemm", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ad, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, NULL);
    ck_assert_int_eq(tc_prepare(t), -NN_ESHAPE); /* K */
    tc_free(t);
    bd[0] = 4;
    t = tc_new("Gemm", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ad, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, NULL);
    tc_in(t, 2, NN_DTYPE_FLOAT, 2, cd, NULL);
    ck_assert_int_eq(tc_prepare(t), -NN_ESHAPE); /* C */
    tc_free(t);
    int64_t a3[3] = {1, 3, 4};
    t = tc_new("Gemm", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 3, a3, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, NULL);
    ck_assert_int_eq(tc_prepare(t), -NN_ESHAPE); /* rank */
    tc_free(t);
}
END_TEST

/* ---- MatMul ------------------------------------------------------------------------ */

static void run_matmul(int ra, const int64_t *ad, int rb, const int64_t *bd,
                       nn_pool_t *pool)
{
    /* Promote to rank >= 2 and broadcast batch dims, like numpy. */
    int64_t A2[NN_MAX_RANK], B2[NN_MAX_RANK];
    int pa = ra == 1, pb = rb == 1;
    int ra2 = pa ? 2 : ra, rb2 = pb ? 2 : rb;
    if (pa) { A2[0] = 1; A2[1] = ad[0]; } else memcpy(A2, ad, sizeof(int64_t) * ra);
    if (pb) { B2[0] = bd[0]; B2[1] = 1; } else memcpy(B2, bd, sizeof(int64_t) * rb);
    int M = (int)A2[ra2 - 2], K = (int)A2[ra2 - 1], N = (int)B2[rb2 - 1];
    int br = (ra2 > rb2 ? ra2 : rb2) - 2;
    int64_t bdims[NN_MAX_RANK];
    size_t batches = 1;
    for (int i = 0; i < br; i++) {
        int ia = i - (br - (ra2 - 2)), ib = i - (br - (rb2 - 2));
        int64_t da = ia >= 0 ? A2[ia] : 1, db = ib >= 0 ? B2[ib] : 1;
        bdims[i] = da > db ? da : db;
        batches *= (size_t)bdims[i];
    }
    size_t na = 1, nb = 1;
    for (int i = 0; i < ra; i++) na *= (size_t)ad[i];
    for (int i = 0; i < rb; i++) nb *= (size_t)bd[i];
    float *A = tg_alloc_rand(na), *B = tg_alloc_rand(nb);
    size_t ny = batches * M * N;
    float *Y = tg_alloc_rand(ny), *ref = tg_alloc_rand(ny);
    for (size_t b = 0; b < batches; b++) {
        /* batch index -> offsets in A and B */
        size_t rem = b, ao = 0, bo = 0, sa = 1, sb = 1;
        for (int i = br - 1; i >= 0; i--) {
            size_t idx = rem % (size_t)bdims[i];
            rem /= (size_t)bdims[i];
            int ia = i - (br - (ra2 - 2)), ib = i - (br - (rb2 - 2));
            int64_t da = ia >= 0 ? A2[ia] : 1, db = ib >= 0 ? B2[ib] : 1;
            ao += (da == 1 ? 0 : idx) * sa;
            bo += (db == 1 ? 0 : idx) * sb;
            sa *= (size_t)da;
            sb *= (size_t)db;
        }
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double acc = 0;
                for (int k = 0; k < K; k++)
                    acc += (double)A[ao * M * K + (size_t)m * K + k] *
                           B[bo * K * N + (size_t)k * N + n];
                ref[b * M * N + (size_t)m * N + n] = (float)acc;
            }
    }
    tc_t *t = tc_new("MatMul", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, ra, ad, A);
    tc_in(t, 1, NN_DTYPE_FLOAT, rb, bd, B);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    /* expected output shape */
    int64_t od[NN_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < br; i++)
        od[orank++] = bdims[i];
    if (!pa)
        od[orank++] = M;
    if (!pb)
        od[orank++] = N;
    ck_assert_int_eq(t->outs[0].rank, orank);
    for (int i = 0; i < orank; i++)
        ck_assert_int_eq(t->outs[0].dims[i], od[i]);
    ck_assert(fabs(t->call.flops - 2.0 * batches * M * N * K) < 0.5);
    tc_out_buffer(t, 0, Y);
    tc_exec(t, pool, 0);
    double e = tu_rel_error(Y, ref, ny);
    ck_assert_msg(e < 1e-5, "MatMul rank %d x %d (M%d N%d K%d): rel error %g",
                  ra, rb, M, N, K, e);
    tc_free(t);
    free(A); free(B); free(Y); free(ref);
}

static void matmul_all(nn_pool_t *pool)
{
    { int64_t a[1] = {7}, b[1] = {7}; run_matmul(1, a, 1, b, pool); }
    { int64_t a[1] = {7}, b[2] = {7, 5}; run_matmul(1, a, 2, b, pool); }
    { int64_t a[2] = {4, 7}, b[1] = {7}; run_matmul(2, a, 1, b, pool); }
    { int64_t a[2] = {40, 70}, b[2] = {70, 50}; run_matmul(2, a, 2, b, pool); }
    { int64_t a[2] = {1, 512}, b[2] = {512, 1000}; run_matmul(2, a, 2, b, pool); }
    { int64_t a[3] = {3, 4, 7}, b[2] = {7, 5}; run_matmul(3, a, 2, b, pool); }
    { int64_t a[3] = {3, 64, 70}, b[2] = {70, 50}; run_matmul(3, a, 2, b, pool); }
    { int64_t a[2] = {4, 7}, b[3] = {3, 7, 5}; run_matmul(2, a, 3, b, pool); }
    { int64_t a[4] = {2, 3, 4, 7}, b[4] = {2, 3, 7, 5}; run_matmul(4, a, 4, b, pool); }
    { int64_t a[4] = {2, 1, 4, 7}, b[3] = {3, 7, 5}; run_matmul(4, a, 3, b, pool); }
    { int64_t a[4] = {1, 3, 4, 7}, b[4] = {2, 1, 7, 5}; run_matmul(4, a, 4, b, pool); }
    { int64_t a[3] = {5, 1, 7}, b[1] = {7}; run_matmul(3, a, 1, b, pool); }
    { int64_t a[1] = {7}, b[3] = {4, 7, 6}; run_matmul(1, a, 3, b, pool); }
    { int64_t a[3] = {1, 32, 64}, b[3] = {1, 64, 80}; run_matmul(3, a, 3, b, pool); }
    { int64_t a[3] = {2, 300, 64}, b[3] = {2, 64, 80}; run_matmul(3, a, 3, b, pool); }
    { int64_t a[3] = {3, 300, 70}, b[2] = {70, 130}; run_matmul(3, a, 2, b, pool); }
    { int64_t a[3] = {2, 30, 64}, b[3] = {2, 64, 500}; run_matmul(3, a, 3, b, pool); }
    { int64_t a[2] = {49, 600}, b[2] = {600, 384}; run_matmul(2, a, 2, b, pool); }
}

START_TEST(matmul_single)
{
    matmul_all(NULL);
}
END_TEST

START_TEST(matmul_pool)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    matmul_all(pool);
    nn_pool_free(pool);
}
END_TEST

/* MatMul with a bias over the last axis (input 2, as the optimiser fuses
 * MatMul + Add) and optionally Gelu after it: A [rows, K] x B [K, N]. */
static void run_matmul_bias(int rows, int K, int N, int gelu, nn_pool_t *pool)
{
    float *A = tg_alloc_rand((size_t)rows * K), *B = tg_alloc_rand((size_t)K * N),
          *bias = tg_alloc_rand((size_t)N), *Y = tg_alloc_rand((size_t)rows * N),
          *ref = tg_alloc_rand((size_t)rows * N);
    for (int m = 0; m < rows; m++)
        for (int n = 0; n < N; n++) {
            double acc = bias[n];
            for (int k = 0; k < K; k++)
                acc += (double)A[(size_t)m * K + k] * B[(size_t)k * N + n];
            if (gelu)
                acc = 0.5 * acc * (1.0 + erf(acc / sqrt(2.0)));
            ref[(size_t)m * N + n] = (float)acc;
        }
    int64_t ad[3] = {1, rows, K}, bd[2] = {K, N}, cd[1] = {N};
    tc_t *t = tc_new("MatMul", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 3, ad, A);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, B);
    tc_in(t, 2, NN_DTYPE_FLOAT, 1, cd, bias);
    if (gelu)
        t->node.fusion.act = NN_ACT_GELU;
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    tc_out_buffer(t, 0, Y);
    tc_exec(t, pool, 0);
    double e = tu_rel_error(Y, ref, (size_t)rows * N);
    ck_assert_msg(e < 1e-5, "MatMul+bias%s rows%d N%d K%d: rel error %g",
                  gelu ? "+Gelu" : "", rows, N, K, e);
    tc_free(t);
    free(A); free(B); free(bias); free(Y); free(ref);
}

START_TEST(matmul_bias)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    static const int shapes[][3] = {
        {600, 70, 130}, {49, 600, 384}, {10, 7, 20}, {3, 5, 4}, {300, 300, 40},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int gelu = 0; gelu <= 1; gelu++) {
            run_matmul_bias(shapes[s][0], shapes[s][1], shapes[s][2], gelu, NULL);
            run_matmul_bias(shapes[s][0], shapes[s][1], shapes[s][2], gelu, pool);
        }
    /* A bias that is not one value per column is refused. */
    int64_t ad[2] = {4, 3}, bd[2] = {3, 5}, cd[1] = {4};
    tc_t *t = tc_new("MatMul", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ad, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, NULL);
    tc_in(t, 2, NN_DTYPE_FLOAT, 1, cd, NULL);
    tc_expect_fail_at(t, NN_ESHAPE, "N=5", __LINE__);
    nn_pool_free(pool);
}
END_TEST

START_TEST(matmul_errors)
{
    int64_t ad[2] = {3, 4}, bd[2] = {5, 6};
    tc_t *t = tc_new("MatMul", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 2, ad, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 2, bd, NULL);
    ck_assert_int_eq(tc_prepare(t), -NN_ESHAPE);
    tc_free(t);
    int64_t a3[3] = {2, 3, 4}, b3[3] = {3, 4, 6};
    t = tc_new("MatMul", 13, 1);
    tc_in(t, 0, NN_DTYPE_FLOAT, 3, a3, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, 3, b3, NULL);
    ck_assert_int_eq(tc_prepare(t), -NN_ESHAPE);
    ck_assert_msg(strstr(t->err.msg, "broadcast"), "%s", t->err.msg);
    tc_free(t);
}
END_TEST

int main(void)
{
    openblas_set_num_threads(1);
    /* The own AVX-512 products sum in another order than OpenBLAS: their
     * results may differ by rounding. */
    tc_isa_tol = 1e-5;
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gemm_single);
    tcase_add_test(tc, gemm_pool);
    tcase_add_test(tc, gemm_errors);
    tcase_add_test(tc, matmul_single);
    tcase_add_test(tc, matmul_pool);
    tcase_add_test(tc, matmul_errors);
    tcase_add_test(tc, matmul_bias);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
