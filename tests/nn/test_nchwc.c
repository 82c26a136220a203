/* The blocked layout's kernels (nn/nchwc.h) against plain references:
 * reorders there and back (partial last blocks zero-filled, pixel ranges),
 * and the convolution on plain and blocked inputs over kernel sizes,
 * strides, paddings, partial channel blocks, several chunks of input
 * blocks, residual and clamps, computed in pieces of output blocks and
 * pixels as the op's work items are; the depthwise convolution over
 * strides, paddings and edge tiles; the max pool over paddings, with a
 * NaN; the global mean. Only on a CPU with AVX-512 (the
 * kernels' only path); elsewhere the cases say they were skipped. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nchwc.h"

static int have_kernels(void)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return 1;
#endif
    printf("test_nchwc: no AVX-512 on this CPU: blocked kernels not run (skipped)\n");
    return 0;
}

static float *randoms(size_t n, unsigned *seed)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    return p;
}

START_TEST(reorders_round_trip)
{
    if (!have_kernels())
        return;
    static const int cs[] = {1, 3, 16, 17, 40};
    static const size_t hws[] = {1, 15, 49, 700};
    unsigned seed = 7;
    for (size_t a = 0; a < sizeof cs / sizeof *cs; a++)
        for (size_t b = 0; b < sizeof hws / sizeof *hws; b++) {
            const int C = cs[a];
            const size_t HW = hws[b], CB = (size_t)nn_nchwc_blocks(C);
            float *x = randoms((size_t)C * HW, &seed), *blk = randoms(CB * 16 * HW, &seed);
            float *back = randoms((size_t)C * HW, &seed);
            const size_t mid = HW / 3;
            nn_nchwc_to_blocked(x, C, HW, blk, 0, mid);
            nn_nchwc_to_blocked(x, C, HW, blk, mid, HW);
            for (size_t cb = 0; cb < CB; cb++)
                for (size_t p = 0; p < HW; p++)
                    for (int j = 0; j < 16; j++) {
                        const int c = (int)cb * 16 + j;
                        const float want = c < C ? x[(size_t)c * HW + p] : 0.0f;
                        ck_assert_msg(blk[(cb * HW + p) * 16 + j] == want,
                                      "C %d HW %zu: channel %d pixel %zu", C, HW, c, p);
                    }
            nn_nchwc_to_planes(blk, C, HW, back, 0, mid);
            nn_nchwc_to_planes(blk, C, HW, back, mid, HW);
            ck_assert_msg(memcmp(x, back, sizeof(float) * (size_t)C * HW) == 0,
                          "C %d HW %zu: not the same planes back", C, HW);
            free(x), free(blk), free(back);
        }
}
END_TEST

typedef struct conv_case {
    int C, H, W, M, kh, kw, s, pad, in_blocked, res, act; /* act: 0 none, 1 relu, 2 clip */
} conv_case_t;

/* Two images, so that a call's weights serve more than one. */
#define IMAGES 2

static void run_conv(const conv_case_t *k, unsigned seed)
{
    const int Ho = (k->H + 2 * k->pad - k->kh) / k->s + 1, Wo = (k->W + 2 * k->pad - k->kw) / k->s + 1;
    const int CBi = (int)nn_nchwc_blocks(k->C), CBo = (int)nn_nchwc_blocks(k->M);
    const size_t HW = (size_t)k->H * k->W, P = (size_t)Ho * Wo;
    const size_t xs = (size_t)k->C * HW, xbs = (size_t)CBi * 16 * HW, ys = (size_t)CBo * 16 * P;
    float *x = randoms(IMAGES * xs, &seed);
    float *w = randoms((size_t)k->M * k->C * k->kh * k->kw, &seed);
    float *bias = randoms((size_t)CBo * 16, &seed), *res = randoms(IMAGES * ys, &seed);
    float *xb = randoms(IMAGES * xbs, &seed);
    float *pw = randoms(nn_nchwc_weight_floats(k->M, k->C, k->kh, k->kw), &seed);
    float *yb = randoms(IMAGES * ys, &seed), *y = randoms((size_t)k->M * P, &seed);
    for (int m = k->M; m < CBo * 16; m++)
        bias[m] = 0.0f;
    for (int n = 0; n < IMAGES; n++)
        nn_nchwc_to_blocked(x + n * xs, k->C, HW, xb + n * xbs, 0, HW);
    nn_nchwc_pack_weights(w, k->M, k->C, k->kh, k->kw, pw);
    const float lo = k->act == 2 ? -0.25f : 0.0f, hi = k->act == 2 ? 0.5f : INFINITY;
    nn_nchwc_conv_t p = {.C = k->C, .H = k->H, .W = k->W, .M = k->M, .Ho = Ho, .Wo = Wo,
                         .kh = k->kh, .kw = k->kw, .sh = k->s, .sw = k->s, .pt = k->pad,
                         .pl = k->pad, .in_blocked = k->in_blocked, .clamp = k->act != 0,
                         .lo = lo, .hi = hi};
    /* In pieces: the first blocks over two pixel ranges, the rest at once;
     * both images a call. */
    const float *xin = k->in_blocked ? xb : x, *r = k->res ? res : NULL;
    const size_t xin_s = k->in_blocked ? xbs : xs;
    const int half = CBo / 2;
    const int64_t third = (int64_t)P / 3;
    if (half > 0) {
        nn_nchwc_conv(&p, xin, pw, bias, r, yb, 0, half, 0, third, IMAGES, xin_s, ys);
        nn_nchwc_conv(&p, xin, pw, bias, r, yb, 0, half, third, (int64_t)P, IMAGES, xin_s, ys);
    }
    nn_nchwc_conv(&p, xin, pw, bias, r, yb, half, CBo, 0, (int64_t)P, IMAGES, xin_s, ys);
    for (int n = 0; n < IMAGES; n++) {
        nn_nchwc_to_planes(yb + n * ys, k->M, P, y, 0, P);
        const float *xn = x + n * xs, *rn = res + n * ys;
        for (int m = 0; m < k->M; m++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    double a = bias[m];
                    for (int c = 0; c < k->C; c++)
                        for (int i = 0; i < k->kh; i++)
                            for (int j = 0; j < k->kw; j++) {
                                const int ih = oh * k->s - k->pad + i, iw = ow * k->s - k->pad + j;
                                if (ih >= 0 && ih < k->H && iw >= 0 && iw < k->W)
                                    a += (double)w[(((size_t)m * k->C + c) * k->kh + i) * k->kw +
                                                   j] *
                                         xn[((size_t)c * k->H + ih) * k->W + iw];
                            }
                    const size_t q = (size_t)oh * Wo + ow;
                    if (k->res)
                        a += rn[((size_t)(m / 16) * P + q) * 16 + m % 16];
                    if (k->act)
                        a = a < lo ? lo : a > hi ? hi : a;
                    const float got = y[(size_t)m * P + q];
                    ck_assert_msg(fabs(got - a) <= 1e-5 * (1.0 + sqrt((double)k->C * k->kh * k->kw)),
                                  "C %d %dx%d M %d k %dx%d s %d pad %d blocked %d: image %d "
                                  "y[%d][%d][%d] %g, want %g",
                                  k->C, k->H, k->W, k->M, k->kh, k->kw, k->s, k->pad,
                                  k->in_blocked, n, m, oh, ow, (double)got, a);
                }
        /* Pad channels of the last output block: bias 0, no weights. */
        for (int m = k->M; m < CBo * 16 && !k->res && k->act != 2; m++)
            for (size_t q = 0; q < P; q++)
                ck_assert_float_eq(yb[n * ys + ((size_t)(m / 16) * P + q) * 16 + m % 16], 0.0f);
    }
    free(x), free(w), free(bias), free(res), free(xb), free(pw), free(yb), free(y);
}

START_TEST(conv_matches_reference)
{
    if (!have_kernels())
        return;
    static const conv_case_t cases[] = {
        /* a first layer: 3 plain channels, 7x7 stride 2 (ResNet's stem) */
        {3, 20, 22, 20, 7, 7, 2, 3, 0, 0, 1},
        {3, 20, 22, 20, 7, 7, 2, 3, 1, 0, 1},
        /* 3x3 stride 1 and 2, partial blocks in and out, edge tiles */
        {17, 9, 11, 33, 3, 3, 1, 1, 1, 1, 1},
        {17, 9, 11, 33, 3, 3, 2, 1, 1, 0, 2},
        {64, 3, 3, 64, 3, 3, 1, 1, 1, 1, 0},
        {16, 2, 2, 16, 3, 3, 1, 1, 1, 0, 0},
        {16, 5, 5, 80, 5, 5, 1, 2, 1, 1, 1},
        {24, 8, 7, 40, 1, 3, 1, 0, 1, 0, 1},
        /* 1x1: one row of the map, plain and blocked, residual; 200
         * channels are 13 blocks, two chunks of input blocks */
        {40, 7, 7, 70, 1, 1, 1, 0, 1, 1, 1},
        {40, 7, 7, 70, 1, 1, 1, 0, 0, 1, 2},
        {200, 6, 9, 36, 1, 1, 1, 0, 1, 1, 1},
        {200, 6, 9, 36, 1, 1, 1, 0, 0, 0, 0},
        /* 1x1 stride 2 (a downsample) and a padded 1x1 */
        {32, 8, 8, 16, 1, 1, 2, 0, 1, 1, 0},
        {32, 5, 6, 48, 1, 1, 1, 1, 1, 0, 1},
        /* 3x3 over several chunks (3 input blocks, one a chunk) */
        {48, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_conv(&cases[i], 11u + (unsigned)i);
}
END_TEST

START_TEST(dwconv_matches_reference)
{
    if (!have_kernels())
        return;
    /* C, H, W, k, stride, pad: MobileNet's 3x3/1 and 3x3/2, a 5x5/2 (pad
     * 2), a partial block, maps narrower than a tile, a row wider than
     * one (edge tiles at both ends) */
    static const int cases[][6] = {{16, 9, 11, 3, 1, 1}, {32, 9, 11, 3, 2, 1}, {20, 10, 13, 5, 2, 2},
                                   {8, 3, 3, 3, 1, 1},   {16, 4, 21, 3, 1, 1}, {16, 7, 7, 7, 1, 3}};
    unsigned seed = 3;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int C = cases[i][0], H = cases[i][1], W = cases[i][2], k = cases[i][3],
                  s = cases[i][4], pad = cases[i][5];
        const int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
        const int CB = (int)nn_nchwc_blocks(C);
        float *x = randoms((size_t)C * H * W, &seed), *w = randoms((size_t)C * k * k, &seed);
        float *xb = randoms((size_t)CB * 16 * H * W, &seed), *bias = randoms((size_t)CB * 16, &seed);
        float *pw = randoms(nn_nchwc_dw_weight_floats(C, k, k), &seed);
        float *yb = randoms((size_t)CB * 16 * Ho * Wo, &seed), *y = randoms((size_t)C * Ho * Wo, &seed);
        nn_nchwc_to_blocked(x, C, (size_t)H * W, xb, 0, (size_t)H * W);
        nn_nchwc_pack_dw_weights(w, C, k, k, pw);
        const nn_nchwc_conv_t p = {.C = C, .M = C, .H = H, .W = W, .Ho = Ho, .Wo = Wo, .kh = k,
                                   .kw = k, .sh = s, .sw = s, .pt = pad, .pl = pad,
                                   .in_blocked = 1, .clamp = 1, .lo = -0.2f, .hi = 0.3f};
        for (int cb = 0; cb < CB; cb++) { /* rows in two calls */
            const size_t xo = (size_t)cb * 16 * H * W, yo = (size_t)cb * 16 * Ho * Wo;
            nn_nchwc_dwconv(&p, xb + xo, pw + (size_t)cb * k * k * 16, bias + cb * 16, yb + yo, 0,
                            Ho / 2);
            nn_nchwc_dwconv(&p, xb + xo, pw + (size_t)cb * k * k * 16, bias + cb * 16, yb + yo,
                            Ho / 2, Ho);
        }
        nn_nchwc_to_planes(yb, C, (size_t)Ho * Wo, y, 0, (size_t)Ho * Wo);
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    double a = bias[c];
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++) {
                            const int ih = oh * s - pad + u, iw = ow * s - pad + v;
                            if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                a += (double)w[((size_t)c * k + u) * k + v] *
                                     x[((size_t)c * H + ih) * W + iw];
                        }
                    a = a < -0.2 ? -0.2 : a > 0.3 ? 0.3 : a;
                    const float got = y[((size_t)c * Ho + oh) * Wo + ow];
                    ck_assert_msg(fabs(got - a) <= 1e-5, "case %zu: y[%d][%d][%d] %g, want %g", i,
                                  c, oh, ow, (double)got, a);
                }
        free(x), free(w), free(xb), free(bias), free(pw), free(yb), free(y);
    }
}
END_TEST

START_TEST(maxpool_matches_reference)
{
    if (!have_kernels())
        return;
    /* H, W, kernel, stride, pad: ResNet's 3x3/2 pad 1, a 2x2/2, a 3x3/1,
     * a window wider than the pad on a tiny map; a NaN must win. */
    static const int cases[][5] = {{9, 11, 3, 2, 1}, {8, 8, 2, 2, 0}, {5, 7, 3, 1, 1}, {2, 3, 3, 1, 2}};
    unsigned seed = 5;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int H = cases[i][0], W = cases[i][1], k = cases[i][2], s = cases[i][3],
                  pad = cases[i][4];
        const int Ho = (H + 2 * pad - k) / s + 1, Wo = (W + 2 * pad - k) / s + 1;
        float *x = randoms((size_t)H * W * 16, &seed), *y = randoms((size_t)Ho * Wo * 16, &seed);
        x[(size_t)(W + 1) * 16 + 3] = NAN; /* pixel (1, 1), channel 3 */
        const nn_nchwc_pool_t p = {.H = H, .W = W, .Ho = Ho, .Wo = Wo, .kh = k, .kw = k,
                                   .sh = s, .sw = s, .pt = pad, .pl = pad};
        nn_nchwc_maxpool(&p, x, y, 0, Ho / 2);
        nn_nchwc_maxpool(&p, x, y, Ho / 2, Ho);
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++)
                for (int j = 0; j < 16; j++) {
                    float want = -INFINITY;
                    int nan = 0;
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++) {
                            const int ih = oh * s - pad + a, iw = ow * s - pad + b;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                continue;
                            const float v = x[((size_t)ih * W + iw) * 16 + j];
                            nan |= isnan(v);
                            want = v > want ? v : want;
                        }
                    const float got = y[((size_t)oh * Wo + ow) * 16 + j];
                    ck_assert_msg(nan ? isnan(got) : got == want,
                                  "case %zu: (%d, %d) channel %d: %g, want %g", i, oh, ow, j,
                                  (double)got, nan ? (double)NAN : (double)want);
                }
        free(x), free(y);
    }
}
END_TEST

START_TEST(mean_matches_reference)
{
    if (!have_kernels())
        return;
    unsigned seed = 9;
    static const size_t hws[] = {1, 2, 49, 169};
    for (size_t i = 0; i < sizeof hws / sizeof *hws; i++)
        for (int n = 1; n <= 16; n += 15) {
            const size_t HW = hws[i];
            float *x = randoms(HW * 16, &seed), y[17];
            y[n] = 42.0f; /* past the n channels: untouched */
            nn_nchwc_mean(x, HW, n, y);
            for (int j = 0; j < n; j++) {
                double want = 0;
                for (size_t p = 0; p < HW; p++)
                    want += x[p * 16 + j];
                want /= (double)HW;
                ck_assert_msg(fabs(y[j] - want) <= 1e-6, "HW %zu channel %d: %g, want %g", HW, j,
                              (double)y[j], want);
            }
            ck_assert_float_eq(y[n], 42.0f);
            free(x);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nchwc");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, reorders_round_trip);
    tcase_add_test(tc, conv_matches_reference);
    tcase_add_test(tc, dwconv_matches_reference);
    tcase_add_test(tc, maxpool_matches_reference);
    tcase_add_test(tc, mean_matches_reference);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
