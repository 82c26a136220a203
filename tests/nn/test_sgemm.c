/* The engine's own products (src/nn/sgemm.c) against a naive reference in
 * double, over the shapes that meet its edges: rows not a whole panel,
 * columns not a whole strip or vector, one column, depths across K
 * blocks, few columns (the narrow tiles), row ranges starting
 * mid-matrix, and every epilogue (bias, residual, clamp, accumulating
 * onto C). Skipped, saying so, on a CPU without an instruction set that
 * has them. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu.h"
#include "nn/sgemm.h"
#include "util/testutil.h"

static nn_isa_t isa;

static uint64_t rng = 88172645463325252ull;

static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((int)(rng % 2001) - 1000) / 1000.0f;
}

static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd();
    return p;
}

typedef struct shape {
    int M, N, K, m0, m1;
    int bias, res, clamp, accumulate;
    int ldb_pad, ldc_pad; /* strides wider than the rows */
    int images;           /* > 1: that many products sharing A (nn_sgemm_images) */
} shape_t;

/* Runs one product and compares every element of C, those outside rows
 * [m0, m1) included (they must be untouched). */
static void check_shape(const shape_t *s)
{
    const int M = s->M, N = s->N, K = s->K, n_img = s->images > 1 ? s->images : 1;
    const int ldb = N + s->ldb_pad, ldc = N + s->ldc_pad;
    /* Images a few floats apart, so that a wrong stride shows. */
    const size_t bstride = (size_t)K * ldb + 5, cstride = (size_t)M * ldc + 3;
    const size_t rstride = (size_t)M * ldc + 7, c_all = cstride * n_img;
    float *A = random_floats((size_t)M * K);
    float *B = random_floats(bstride * n_img);
    float *C = random_floats(c_all);
    float *bias = s->bias ? random_floats((size_t)M) : NULL;
    float *res = s->res ? random_floats(rstride * n_img) : NULL;
    float *want = malloc(c_all * sizeof *want);
    /* aligned_alloc wants a multiple of the alignment. */
    float *pa = aligned_alloc(64, (nn_sgemm_packed_floats(M, K) * sizeof(float) + 63) / 64 * 64);
    float *buf = aligned_alloc(64, NN_SGEMM_BUFFER_FLOATS * sizeof(float));
    ck_assert(want && pa && buf);
    memcpy(want, C, c_all * sizeof *want);
    const float lo = s->clamp ? -0.5f : -INFINITY, hi = s->clamp ? 6.0f : INFINITY;
    for (int i = 0; i < n_img; i++)
        for (int m = s->m0; m < s->m1; m++)
            for (int n = 0; n < N; n++) {
                const float *Bi = B + i * bstride;
                float *Ci = C + i * cstride;
                double acc = s->accumulate ? Ci[(size_t)m * ldc + n] : 0.0;
                for (int k = 0; k < K; k++)
                    acc += (double)A[(size_t)m * K + k] * Bi[(size_t)k * ldb + n];
                if (bias)
                    acc += bias[m];
                if (res)
                    acc += res[i * rstride + (size_t)m * ldc + n];
                want[i * cstride + (size_t)m * ldc + n] =
                    (float)(acc < lo ? lo : acc > hi ? hi : acc);
            }
    nn_sgemm_pack_a(A, K, M, K, pa);
    nn_sgemm_epilogue_t epi = {.bias = bias, .res = res, .ldr = ldc, .lo = lo, .hi = hi,
                               .accumulate = s->accumulate};
    if (s->images > 1) {
        const nn_sgemm_images_t im = {n_img, bstride, cstride, rstride};
        nn_sgemm_images(s->m0, s->m1, N, K, pa, B, ldb, C, ldc, &epi, &im, buf);
    } else {
        nn_sgemm(s->m0, s->m1, N, K, pa, B, ldb, C, ldc, &epi, buf);
    }
    for (size_t e = 0; e < c_all; e++) {
        const int i = (int)(e / cstride), m = (int)(e % cstride / ldc);
        const int n = (int)(e % cstride % ldc);
        float got = C[e], w = want[e];
        /* Sums of K products of values within 1: 1e-6 per term. */
        double tol = m >= s->m0 && m < s->m1 && m < M && n < N ? 1e-6 * (K + 4) : 0.0;
        ck_assert_msg(fabs((double)got - w) <= tol,
                      "M %d N %d K %d rows [%d,%d) bias %d res %d clamp %d acc %d: "
                      "image %d C[%d][%d] = %.7g, want %.7g",
                      M, N, K, s->m0, s->m1, s->bias, s->res, s->clamp, s->accumulate, i,
                      m, n, (double)got, (double)w);
    }
    free(A);
    free(B);
    free(C);
    free(bias);
    free(res);
    free(want);
    free(pa);
    free(buf);
}

START_TEST(shapes_at_the_edges)
{
    static const int Ms[] = {1, 7, 8, 9, 16, 17, 31, 32, 33, 48, 64};
    static const int Ns[] = {1, 2, 15, 16, 17, 33, 47, 48, 49, 97, 200};
    static const int Ks[] = {1, 3, 64, 255, 257, 600};
    int count = 0;
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
            for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) {
                shape_t s = {.M = Ms[a], .N = Ns[b], .K = Ks[c], .m0 = 0, .m1 = Ms[a]};
                check_shape(&s);
                count++;
            }
    printf("  %d shapes\n", count);
}
END_TEST

/* Deep products over many rows and columns: K blocks within column
 * panels (the second panel narrower), with every epilogue term. */
START_TEST(column_panels)
{
    static const shape_t shapes[] = {
        {.M = 320, .N = 250, .K = 600, .m0 = 0, .m1 = 320, .bias = 1, .res = 1, .clamp = 1},
        {.M = 320, .N = 250, .K = 600, .m0 = 16, .m1 = 300, .accumulate = 1},
        {.M = 1024, .N = 100, .K = 1100, .m0 = 0, .m1 = 1024, .bias = 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_shape(&shapes[i]);
}
END_TEST

/* Wide products on shallow K: strips packed and swept in groups, the
 * last group and its last strip partial, with every epilogue term, row
 * ranges and strides, over several images. */
START_TEST(strip_groups)
{
    static const shape_t shapes[] = {
        {.M = 40, .N = 1000, .K = 64, .m0 = 0, .m1 = 40, .bias = 1, .res = 1, .clamp = 1},
        {.M = 24, .N = 777, .K = 130, .m0 = 16, .m1 = 24, .accumulate = 1, .ldb_pad = 7,
         .ldc_pad = 3},
        {.M = 17, .N = 3136, .K = 9, .m0 = 0, .m1 = 17, .res = 1, .images = 2},
        {.M = 33, .N = 400, .K = 256, .m0 = 0, .m1 = 33, .bias = 1, .res = 1, .clamp = 1,
         .ldb_pad = 5, .images = 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_shape(&shapes[i]);
}
END_TEST

/* Products sharing A over several images, on each path: one column,
 * narrow tiles, strips, deep ones in column panels; residuals and C read
 * back at their own strides. */
START_TEST(images)
{
    static const shape_t shapes[] = {
        {.M = 40, .N = 1, .K = 70, .m0 = 0, .m1 = 40, .bias = 1, .res = 1, .images = 3},
        {.M = 70, .N = 49, .K = 300, .m0 = 16, .m1 = 70, .bias = 1, .res = 1, .clamp = 1,
         .images = 4},
        {.M = 33, .N = 49, .K = 20, .m0 = 0, .m1 = 33, .accumulate = 1, .images = 2},
        {.M = 48, .N = 196, .K = 100, .m0 = 0, .m1 = 48, .res = 1, .ldb_pad = 3,
         .ldc_pad = 2, .images = 3},
        {.M = 320, .N = 250, .K = 600, .m0 = 0, .m1 = 320, .bias = 1, .images = 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_shape(&shapes[i]);
}
END_TEST

START_TEST(epilogues)
{
    static const int Ns[] = {1, 20, 100};
    for (int e = 0; e < 16; e++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++) {
            shape_t s = {.M = 19, .N = Ns[b], .K = 300, .m0 = 0, .m1 = 19,
                         .bias = e & 1, .res = !!(e & 2), .clamp = !!(e & 4),
                         .accumulate = !!(e & 8)};
            if (s.res && s.accumulate)
                continue; /* the contract: one or the other */
            check_shape(&s);
        }
}
END_TEST

START_TEST(row_ranges_and_strides)
{
    static const struct {
        int M, m0, m1;
    } r[] = {{40, 16, 40}, {40, 16, 24}, {41, 32, 41}, {41, 0, 8}, {3, 0, 3}, {80, 16, 80}};
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        for (int pad = 0; pad < 2; pad++) {
            shape_t s = {.M = r[i].M, .N = 70, .K = 130, .m0 = r[i].m0, .m1 = r[i].m1,
                         .bias = 1, .res = 1, .clamp = 1, .ldb_pad = 13 * pad,
                         .ldc_pad = 5 * pad};
            check_shape(&s);
            s.N = 1;
            check_shape(&s);
            s.N = 20; /* narrow tiles */
            check_shape(&s);
        }
}
END_TEST

START_TEST(packing_pads_with_zeros)
{
    /* K below, at and across the 16 columns the vector path takes at a
     * time; rows a row stride apart, the last panel partial. */
    static const int Ks[] = {5, 16, 37};
    const int M = 19;
    for (size_t t = 0; t < sizeof Ks / sizeof Ks[0]; t++) {
        const int K = Ks[t], lda = K + 3;
        float A[19 * 40];
        for (int i = 0; i < M * lda; i++)
            A[i] = (float)(i + 1);
        float pa[32 * 37];
        ck_assert_uint_eq(nn_sgemm_packed_floats(M, K), 32 * (size_t)K);
        nn_sgemm_pack_a(A, lda, M, K, pa);
        for (int p = 0; p < 2; p++)
            for (int k = 0; k < K; k++)
                for (int r = 0; r < NN_SGEMM_MR; r++) {
                    int m = p * NN_SGEMM_MR + r;
                    float want = m < M ? A[m * lda + k] : 0.0f;
                    ck_assert_float_eq(pa[(p * K + k) * NN_SGEMM_MR + r], want);
                }
    }
}
END_TEST

int main(void)
{
    nn_cpu_t cpu;
    nn_error_t err;
    if (nn_cpu_detect(&cpu, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    isa = cpu.isa;
    Suite *s = suite_create("sgemm");
    TCase *tc = tcase_create("sgemm");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, packing_pads_with_zeros);
    if (!nn_sgemm_has(isa)) {
        printf("SKIP test_sgemm (in part): the %s instruction set has no own products "
               "(they need avx512); packing checked\n",
               nn_isa_name(isa));
        suite_add_tcase(s, tc);
        int rc = tu_run_suite(s);
        return rc ? rc : 78;
    }
    printf("products on %s\n", nn_isa_name(isa));
    tcase_add_test(tc, shapes_at_the_edges);
    tcase_add_test(tc, column_panels);
    tcase_add_test(tc, strip_groups);
    tcase_add_test(tc, images);
    tcase_add_test(tc, epilogues);
    tcase_add_test(tc, row_ranges_and_strides);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
