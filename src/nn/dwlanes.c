/* The engine's own AVX-512 depthwise convolution, channels in the lanes;
 * see dwlanes.h. */
#include "dwlanes.h"

#include <math.h>

#include "avx512.h"

#define MAX_MAP_PIXELS 4096 /* and dilated taps' maps: at most 1 MiB a block */
#define ROW_GROUP 8 /* output pixels of a row computed together */

size_t nn_dwlanes_init(nn_dwlanes_t *d, nn_isa_t isa, const nn_dwconv_geom_t *g,
                       int max_outputs)
{
#if defined(__x86_64__)
    if (isa < NN_ISA_AVX512 || g->kh * g->kw > NN_DWLANES_MAX_TAPS || g->pt < 0 ||
        g->pl < 0 || g->Ho <= 0 || g->Wo <= 0)
        return 0;
    d->g = *g;
    d->Hq = (g->Ho - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    d->Wq = (g->Wo - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    if ((long)g->Ho * g->Wo > max_outputs || (long)d->Hq * d->Wq > MAX_MAP_PIXELS)
        return 0;
    /* A row group reads up to ROW_GROUP - 1 pixels (times the stride) past
     * its row: past the map's end on the last row. The outputs take a
     * group's overshoot and the transposition's last 16 pixels. */
    d->map = ((size_t)d->Hq * d->Wq + (size_t)ROW_GROUP * g->sw) * NN_DWLANES_BLOCK;
    d->floats = d->map + ((size_t)g->Ho * g->Wo + 2 * NN_DWLANES_BLOCK) * NN_DWLANES_BLOCK;
    return d->floats;
#else
    (void)d, (void)isa, (void)g;
    return 0;
#endif
}

#if defined(__x86_64__)

/* Channels [0, n) of x (planes of H x W) into the padded map: pixel (iy,
 * ix) at map pixel (iy + pt, ix + pl); pixels the taps never reach are
 * left out. Lanes n to 15 are zero. */
static inline __attribute__((always_inline)) NN_AVX512 void
to_map(const nn_dwlanes_t *d, int n, const float *x, float *map, const int FULL)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int HW = g->H * g->W;
    int iy = 0, ix = 0; /* of the first of the 16 pixels */
    for (int i0 = 0; i0 < HW; i0 += 16) {
        __m512 r[16];
        nn_load_transposed(r, x + i0, (size_t)HW, FULL ? 16 : n, nn_lanes(HW - i0));
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) {
            const int row = iy + g->pt, col = ix + g->pl;
            if (i0 + k < HW && row < d->Hq && col < d->Wq)
                _mm512_store_ps(map + ((size_t)row * d->Wq + col) * 16, r[k]);
            if (++ix == g->W)
                ix = 0, iy++;
        }
    }
}

/* The taps over the map into out, ROW_GROUP pixels of a row at a time
 * (the last group of a row runs on past it: its extra pixels land on the
 * next row's first ones, written again after, or on the slack). KH, KW, S
 * are constants in the common callers (the taps unroll), 0 in the general
 * one. wv: the taps' weights, 16 lanes each. MAX: the window's maximum
 * instead (a max pool; wv unused, bias -inf). */
static inline __attribute__((always_inline)) NN_AVX512 void
taps_body(const nn_dwlanes_t *d, const float *map, const float *wv, __m512 bias, float *out,
          const int KH, const int KW, const int S, const int MAX)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int kh = KH ? KH : g->kh, kw = KW ? KW : g->kw;
    const int sh = S ? S : g->sh, sw = S ? S : g->sw;
    const int dh = KH ? 1 : g->dh, dw = KW ? 1 : g->dw;
    const size_t Wq = (size_t)d->Wq;
    for (int oy = 0; oy < g->Ho; oy++) {
        const float *row = map + (size_t)oy * sh * Wq * 16;
        float *o = out + (size_t)oy * g->Wo * 16;
        for (int ox = 0; ox < g->Wo; ox += ROW_GROUP) {
            __m512 acc[ROW_GROUP];
#pragma GCC unroll 8
            for (int i = 0; i < ROW_GROUP; i++)
                acc[i] = bias;
            const float *s = row + (size_t)ox * sw * 16;
#pragma GCC unroll 7
            for (int ky = 0; ky < kh; ky++) {
#pragma GCC unroll 7
                for (int kx = 0; kx < kw; kx++) {
                    const float *t = s + ((size_t)ky * dh * Wq + (size_t)kx * dw) * 16;
                    if (MAX) {
#pragma GCC unroll 8
                        for (int i = 0; i < ROW_GROUP; i++)
                            acc[i] = nn_max_nan(acc[i], _mm512_load_ps(t + (size_t)i * sw * 16));
                    } else {
                        const __m512 w = _mm512_load_ps(wv + (ky * kw + kx) * 16);
#pragma GCC unroll 8
                        for (int i = 0; i < ROW_GROUP; i++)
                            acc[i] = _mm512_fmadd_ps(_mm512_load_ps(t + (size_t)i * sw * 16),
                                                     w, acc[i]);
                    }
                    /* Tap after tap, all accumulators (see dwconv.c). */
                    __asm__("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]),
                            "+v"(acc[4]), "+v"(acc[5]), "+v"(acc[6]), "+v"(acc[7]));
                }
            }
#pragma GCC unroll 8
            for (int i = 0; i < ROW_GROUP; i++)
                _mm512_store_ps(o + (size_t)(ox + i) * 16, acc[i]);
        }
    }
}

#define TAPS_KERNEL(name, KH, KW, S, MAX)                                                 \
    static NN_AVX512 void name(const nn_dwlanes_t *d, const float *map, const float *wv, \
                               __m512 bias, float *out)                                  \
    {                                                                                     \
        taps_body(d, map, wv, bias, out, KH, KW, S, MAX);                                 \
    }
TAPS_KERNEL(taps_3x3_s1, 3, 3, 1, 0)
TAPS_KERNEL(taps_3x3_s2, 3, 3, 2, 0)
TAPS_KERNEL(taps_5x5_s1, 5, 5, 1, 0)
TAPS_KERNEL(taps_5x5_s2, 5, 5, 2, 0)
TAPS_KERNEL(taps_any, 0, 0, 0, 0)
TAPS_KERNEL(max_3x3_s1, 3, 3, 1, 1)
TAPS_KERNEL(max_3x3_s2, 3, 3, 2, 1)
TAPS_KERNEL(max_any, 0, 0, 0, 1)

typedef void (*taps_fn)(const nn_dwlanes_t *d, const float *map, const float *wv, __m512 bias,
                        float *out);

/* One block: channels [0, n) of x into the map, taps over it, the outputs
 * back into y (with res and the clamp [lo, hi] where clamp). */
static NN_AVX512 void run_block(const nn_dwlanes_t *d, int n, const float *x, taps_fn taps,
                                const float *wv, __m512 bias, float lo, float hi,
                                const float *res, float *y, int clamp, float *scratch)
{
    float *map = scratch, *out = scratch + d->map;
    if (n == 16)
        to_map(d, n, x, map, 1);
    else
        to_map(d, n, x, map, 0);
    taps(d, map, wv, bias, out);
    const int P = d->g.Ho * d->g.Wo;
    nn_lanes_to_planes_any(out, P, (size_t)P, n, lo, hi, res, y, clamp);
}

static NN_AVX512 void block_avx512(const nn_dwlanes_t *d, int n, const float *x,
                                   const float *k, const float *bias, float lo, float hi,
                                   const float *res, float *y, float *scratch)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int ntaps = g->kh * g->kw;
    /* The block's weights, tap by tap, 16 channels each: the channels'
     * rows of taps, 16 taps at a time, transposed. */
    float wv[NN_DWLANES_MAX_TAPS * 16] __attribute__((aligned(64)));
    for (int t0 = 0; t0 < ntaps; t0 += 16) {
        __m512 r[16];
        nn_load_transposed(r, k + t0, (size_t)ntaps, n, nn_lanes(ntaps - t0));
#pragma GCC unroll 16
        for (int t = 0; t < 16; t++)
            _mm512_store_ps(wv + (t0 + t) * 16, r[t]);
    }
    const __m512 vb = bias ? _mm512_maskz_loadu_ps(nn_lanes(n), bias) : _mm512_setzero_ps();
    const int plain = g->kh == g->kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw;
    const taps_fn taps = !plain                       ? taps_any
                         : g->kh == 3 && g->sh == 1 ? taps_3x3_s1
                         : g->kh == 3 && g->sh == 2 ? taps_3x3_s2
                         : g->kh == 5 && g->sh == 1 ? taps_5x5_s1
                         : g->kh == 5 && g->sh == 2 ? taps_5x5_s2
                                                    : taps_any;
    run_block(d, n, x, taps, wv, vb, lo, hi, res, y, 1, scratch);
}

static NN_AVX512 void max_block_avx512(const nn_dwlanes_t *d, int n, const float *x, float *y,
                                       float *scratch)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int plain = g->kh == g->kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw;
    const taps_fn taps = !plain                       ? max_any
                         : g->kh == 3 && g->sh == 1 ? max_3x3_s1
                         : g->kh == 3 && g->sh == 2 ? max_3x3_s2
                                                    : max_any;
    run_block(d, n, x, taps, NULL, _mm512_set1_ps(-INFINITY), 0.0f, 0.0f, NULL, y, 0, scratch);
}

static NN_AVX512 void fill_avx512(const nn_dwlanes_t *d, float *scratch, float v)
{
    const __m512 x = _mm512_set1_ps(v);
    for (size_t i = 0; i < d->map; i += 16)
        _mm512_store_ps(scratch + i, x);
}

#endif

void nn_dwlanes_clear(const nn_dwlanes_t *d, float *scratch, float border)
{
#if defined(__x86_64__)
    fill_avx512(d, scratch, border);
#else
    (void)d, (void)scratch, (void)border;
#endif
}

void nn_dwlanes_max_block(const nn_dwlanes_t *d, int n, const float *x, float *y,
                          float *scratch)
{
#if defined(__x86_64__)
    max_block_avx512(d, n, x, y, scratch);
#else
    (void)d, (void)n, (void)x, (void)y, (void)scratch;
#endif
}

void nn_dwlanes_block(const nn_dwlanes_t *d, int n, const float *x, const float *k,
                      const float *bias, float lo, float hi, const float *res, float *y,
                      float *scratch)
{
#if defined(__x86_64__)
    block_avx512(d, n, x, k, bias, lo, hi, res, y, scratch);
#else
    (void)d, (void)n, (void)x, (void)k, (void)bias, (void)lo, (void)hi, (void)res, (void)y,
        (void)scratch;
#endif
}
