/* The blocked layout's reorders and convolution; see nchwc.h.
 *
 * The convolution's tile is FB blocks of 16 output channels by NP output
 * pixels of a row (FB x NP <= 24 accumulators): per input channel and tap
 * it loads FB weight vectors and broadcasts NP input floats, FB x NP
 * FMAs for FB + NP loads. Input channels go in chunks whose weights stay
 * in L1 while every tile of the call runs them; partial sums wait in y
 * between chunks, and the last chunk adds the residual and clamps. A
 * tile whose pixels reach into the padding (the first and last of a row)
 * masks the broadcasts of the taps that fall outside; a 1x1 stride-1
 * unpadded convolution runs its map as one row, so its tiles never break
 * at a row's end (a 7x7 map is 8 tiles of 6 and one of 1, not 7 x 2). */
#include "nchwc.h"

#include <math.h>
#include <string.h>

#include "avx512.h"

#define TILE_BLOCKS 4   /* FB: output blocks of a tile */
#define TILE_PIXELS 6   /* NP: output pixels of a tile */
#define CHUNK_FLOATS 8192 /* weights of a chunk of input blocks: 32 KiB */

int nn_nchwc_has(nn_isa_t isa)
{
#if defined(__x86_64__)
    return isa >= NN_ISA_AVX512;
#else
    (void)isa;
    return 0;
#endif
}

size_t nn_nchwc_weight_floats(int M, int C, int kh, int kw)
{
    return (size_t)nn_nchwc_blocks(M) * (size_t)nn_nchwc_blocks(C) * (size_t)kh * (size_t)kw *
           NN_NCHWC * NN_NCHWC;
}

void nn_nchwc_pack_weights(const float *w, int M, int C, int kh, int kw, float *dst)
{
    const int CBi = (int)nn_nchwc_blocks(C), taps = kh * kw;
    memset(dst, 0, sizeof(float) * nn_nchwc_weight_floats(M, C, kh, kw));
    for (int m = 0; m < M; m++)
        for (int c = 0; c < C; c++) {
            /* tap t of (m, c) at ((mb CBi + cb) taps + t) 256 + (c % 16) 16 + m % 16 */
            float *d = dst + ((size_t)(m / NN_NCHWC) * CBi + (size_t)(c / NN_NCHWC)) * taps * 256 +
                       (size_t)(c % NN_NCHWC) * NN_NCHWC + (size_t)(m % NN_NCHWC);
            const float *src = w + ((size_t)m * C + c) * taps;
            for (int t = 0; t < taps; t++)
                d[(size_t)t * 256] = src[t];
        }
}

size_t nn_nchwc_dw_weight_floats(int C, int kh, int kw)
{
    return (size_t)nn_nchwc_blocks(C) * (size_t)kh * (size_t)kw * NN_NCHWC;
}

void nn_nchwc_pack_dw_weights(const float *w, int C, int kh, int kw, float *dst)
{
    memset(dst, 0, sizeof(float) * nn_nchwc_dw_weight_floats(C, kh, kw));
    for (int c = 0; c < C; c++)
        for (int t = 0; t < kh * kw; t++)
            dst[((size_t)(c / NN_NCHWC) * kh * kw + t) * NN_NCHWC + c % NN_NCHWC] =
                w[(size_t)c * kh * kw + t];
}

#if defined(__x86_64__)

NN_AVX512 void nn_nchwc_to_blocked(const float *x, int C, size_t HW, float *y, size_t p0,
                                   size_t p1)
{
    for (int cb = 0; cb < (int)nn_nchwc_blocks(C); cb++) {
        const int n = C - cb * NN_NCHWC < NN_NCHWC ? C - cb * NN_NCHWC : NN_NCHWC;
        const float *xb = x + (size_t)cb * NN_NCHWC * HW;
        float *yb = y + (size_t)cb * NN_NCHWC * HW;
        for (size_t p = p0; p < p1; p += 16) {
            const int np = p1 - p < 16 ? (int)(p1 - p) : 16;
            __m512 r[16];
            nn_load_transposed(r, xb + p, HW, n, nn_lanes(np));
            for (int i = 0; i < np; i++)
                _mm512_storeu_ps(yb + (p + i) * NN_NCHWC, r[i]);
        }
    }
}

NN_AVX512 void nn_nchwc_to_planes(const float *x, int C, size_t HW, float *y, size_t p0,
                                  size_t p1)
{
    for (int cb = 0; cb < (int)nn_nchwc_blocks(C); cb++) {
        const int n = C - cb * NN_NCHWC < NN_NCHWC ? C - cb * NN_NCHWC : NN_NCHWC;
        const float *xb = x + (size_t)cb * NN_NCHWC * HW;
        float *yb = y + (size_t)cb * NN_NCHWC * HW;
        for (size_t p = p0; p < p1; p += 16) {
            const int np = p1 - p < 16 ? (int)(p1 - p) : 16;
            __m512 r[16];
            nn_load_transposed(r, xb + p * NN_NCHWC, NN_NCHWC, np, 0xffff);
            for (int c = 0; c < n; c++)
                _mm512_mask_storeu_ps(yb + (size_t)c * HW + p, nn_lanes(np), r[c]);
        }
    }
}

/* What every tile of a call shares. */
typedef struct conv_run {
    const nn_nchwc_conv_t *p;
    const float *x;
    size_t xcs, xps, xjs; /* input floats between blocks, pixels, channels of a block */
    const float *w;       /* the tile's first output block's weights */
    size_t wcs;           /* floats between output blocks' weights */
    float *y;             /* the tile's first output block */
    const float *res;
    size_t ycs;           /* floats between output blocks */
    const float *bias;    /* the tile's first output block's, or NULL */
    int W, Wo;            /* the map's row lengths as tiled (a 1x1 map: one row) */
    int cb0, cb1;         /* the chunk of input blocks */
    int first, last;
} conv_run_t;

/* NP output pixels from (oh, ow0) of FB output blocks over the chunk.
 * EDGE: some taps of some pixels fall in the padding columns. */
static inline __attribute__((always_inline)) NN_AVX512 void
conv_tile(const conv_run_t *r, int oh, int ow0, const int FB, const int NP, const int EDGE)
{
    const nn_nchwc_conv_t *p = r->p;
    const int kh = p->kh, kw = p->kw, sw = p->sw, W = r->W;
    const size_t q0 = (size_t)oh * r->Wo + ow0;
    __m512 acc[TILE_BLOCKS][TILE_PIXELS];
#pragma GCC unroll 4
    for (int f = 0; f < FB; f++) {
        const __m512 b0 = r->bias ? _mm512_loadu_ps(r->bias + 16 * f) : _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int q = 0; q < NP; q++)
            acc[f][q] = r->first ? b0 : _mm512_loadu_ps(r->y + f * r->ycs + (q0 + q) * 16);
    }
    const int ih0 = oh * p->sh - p->pt;
    const int a0 = ih0 < 0 ? -ih0 : 0, a1 = p->H - ih0 < kh ? p->H - ih0 : kh;
    for (int cb = r->cb0; cb < r->cb1; cb++) {
        const int jn = p->C - cb * 16 < 16 ? p->C - cb * 16 : 16;
        const float *xb = r->x + (size_t)cb * r->xcs;
        for (int a = a0; a < a1; a++) {
            const float *xr = xb + (size_t)(ih0 + a) * W * r->xps;
            for (int b = 0; b < kw; b++) {
                const float *wt = r->w + (((size_t)cb * kh + a) * kw + b) * 256;
                size_t off[TILE_PIXELS];
                __mmask16 keep[TILE_PIXELS];
#pragma GCC unroll 8
                for (int q = 0; q < NP; q++) {
                    const int iw = (ow0 + q) * sw - p->pl + b;
                    keep[q] = !EDGE || (iw >= 0 && iw < W) ? 0xffff : 0;
                    off[q] = (size_t)(keep[q] ? iw : 0) * r->xps;
                }
                for (int j = 0; j < jn; j++) {
                    __m512 wv[TILE_BLOCKS];
#pragma GCC unroll 4
                    for (int f = 0; f < FB; f++)
                        wv[f] = _mm512_loadu_ps(wt + f * r->wcs + j * 16);
                    const float *xj = xr + j * r->xjs;
#pragma GCC unroll 8
                    for (int q = 0; q < NP; q++) {
                        __m512 v = _mm512_set1_ps(xj[off[q]]);
                        if (EDGE)
                            v = _mm512_maskz_mov_ps(keep[q], v);
#pragma GCC unroll 4
                        for (int f = 0; f < FB; f++)
                            acc[f][q] = _mm512_fmadd_ps(wv[f], v, acc[f][q]);
                    }
                }
            }
        }
    }
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
#pragma GCC unroll 4
    for (int f = 0; f < FB; f++)
#pragma GCC unroll 8
        for (int q = 0; q < NP; q++) {
            __m512 v = acc[f][q];
            const size_t at = f * r->ycs + (q0 + q) * 16;
            if (r->last && r->res)
                v = _mm512_add_ps(v, _mm512_loadu_ps(r->res + at));
            if (r->last && p->clamp)
                v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            _mm512_storeu_ps(r->y + at, v);
        }
}

/* The tile for FB, NP and EDGE known at run time: each compiled once. */
#define TILE_CASE(FB, NP)                                                  \
    case (FB) * 16 + (NP):                                                 \
        if (edge)                                                          \
            conv_tile(r, oh, ow0, FB, NP, 1);                              \
        else                                                               \
            conv_tile(r, oh, ow0, FB, NP, 0);                              \
        break;
#define TILE_CASES(FB)                                                     \
    TILE_CASE(FB, 1) TILE_CASE(FB, 2) TILE_CASE(FB, 3) TILE_CASE(FB, 4)    \
    TILE_CASE(FB, 5) TILE_CASE(FB, 6)

static NN_AVX512 void conv_tile_any(const conv_run_t *r, int oh, int ow0, int fb, int np,
                                    int edge)
{
    switch (fb * 16 + np) {
        TILE_CASES(1)
        TILE_CASES(2)
        TILE_CASES(3)
        TILE_CASES(4)
    default:
        break;
    }
}

/* Columns [c0, c1) of output row oh, in tiles; those with a pixel outside
 * [in0, in1) (the columns whose taps all fall inside the row) take the
 * masked tile. */
static NN_AVX512 void conv_row(const conv_run_t *r, int oh, int c0, int c1, int fb, int in0,
                               int in1)
{
    for (int ow = c0; ow < c1; ow += TILE_PIXELS) {
        const int np = c1 - ow < TILE_PIXELS ? c1 - ow : TILE_PIXELS;
        conv_tile_any(r, oh, ow, fb, np, ow < in0 || ow + np > in1);
    }
}

NN_AVX512 void nn_nchwc_conv(const nn_nchwc_conv_t *p, const float *x, const float *w,
                             const float *bias, const float *res, float *y, int cb0, int cb1,
                             int64_t q0, int64_t q1, int images, size_t xs, size_t ys)
{
    const int CBi = (int)nn_nchwc_blocks(p->C), taps = p->kh * p->kw;
    /* A 1x1 stride-1 unpadded map is one row of H x W pixels. */
    const int flat = taps == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 && p->pl == 0;
    const size_t HW = (size_t)p->H * p->W, HWo = (size_t)p->Ho * p->Wo;
    conv_run_t r = {
        .p = p,
        .xcs = NN_NCHWC * HW,
        .xps = p->in_blocked ? NN_NCHWC : 1,
        .xjs = p->in_blocked ? 1 : HW,
        .wcs = (size_t)CBi * taps * 256,
        .ycs = NN_NCHWC * HWo,
        .W = flat ? (int)HW : p->W,
        .Wo = flat ? (int)HWo : p->Wo,
    };
    /* Output columns whose taps all fall inside the row. */
    int in0 = (p->pl + p->sw - 1) / p->sw, in1 = (p->W + p->pl - p->kw) / p->sw + 1;
    if (flat)
        in0 = 0, in1 = r.Wo;
    in1 = in1 < in0 ? in0 : in1;
    for (int ob = cb0; ob < cb1; ob += TILE_BLOCKS) {
        const int fb = cb1 - ob < TILE_BLOCKS ? cb1 - ob : TILE_BLOCKS;
        int chunk = CHUNK_FLOATS / (fb * taps * 256);
        chunk = chunk < 1 ? 1 : chunk;
        r.w = w + (size_t)ob * r.wcs;
        r.bias = bias ? bias + (size_t)ob * NN_NCHWC : NULL;
        for (int c0 = 0; c0 < CBi; c0 += chunk) {
            r.cb0 = c0;
            r.cb1 = c0 + chunk < CBi ? c0 + chunk : CBi;
            r.first = c0 == 0;
            r.last = r.cb1 == CBi;
            for (int i = 0; i < images; i++) { /* the chunk's weights serve every image */
                r.x = x + (size_t)i * xs;
                r.y = y + (size_t)i * ys + (size_t)ob * r.ycs;
                r.res = res ? res + (size_t)i * ys + (size_t)ob * r.ycs : NULL;
                if (flat) {
                    conv_row(&r, 0, (int)q0, (int)q1, fb, in0, in1);
                    continue;
                }
                for (int64_t q = q0; q < q1;) {
                    const int oh = (int)(q / p->Wo), c = (int)(q % p->Wo);
                    const int end = q1 - (int64_t)oh * p->Wo < p->Wo
                                        ? (int)(q1 - (int64_t)oh * p->Wo)
                                        : p->Wo;
                    conv_row(&r, oh, c, end, fb, in0, in1);
                    q += end - c;
                }
            }
        }
    }
}

/* The depthwise tile: NP output pixels of row oh from column ow0, each
 * tap one weight vector times one input pixel (16 channels) a pixel.
 * EDGE: some pixels' taps fall in the padding columns; those are left out. */
#define DW_PIXELS 8
static inline __attribute__((always_inline)) NN_AVX512 void
dw_tile(const nn_nchwc_conv_t *p, const float *x, const float *w, __m512 b0, float *y, int oh,
        int ow0, const int NP, const int EDGE)
{
    __m512 acc[DW_PIXELS];
#pragma GCC unroll 8
    for (int q = 0; q < NP; q++)
        acc[q] = b0;
    const int ih0 = oh * p->sh - p->pt;
    const int a0 = ih0 < 0 ? -ih0 : 0, a1 = p->H - ih0 < p->kh ? p->H - ih0 : p->kh;
    for (int a = a0; a < a1; a++) {
        const float *xr = x + (size_t)(ih0 + a) * p->W * NN_NCHWC;
        for (int b = 0; b < p->kw; b++) {
            const __m512 wv = _mm512_loadu_ps(w + ((size_t)a * p->kw + b) * NN_NCHWC);
#pragma GCC unroll 8
            for (int q = 0; q < NP; q++) {
                const int iw = (ow0 + q) * p->sw - p->pl + b;
                if (EDGE && (iw < 0 || iw >= p->W))
                    continue;
                acc[q] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xr + (size_t)iw * NN_NCHWC), acc[q]);
            }
        }
    }
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
#pragma GCC unroll 8
    for (int q = 0; q < NP; q++) {
        __m512 v = acc[q];
        if (p->clamp)
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm512_storeu_ps(y + ((size_t)oh * p->Wo + ow0 + q) * NN_NCHWC, v);
    }
}

#define DW_CASE(NP)                                                        \
    case NP:                                                               \
        if (edge)                                                          \
            dw_tile(p, x, w, b0, y, oh, ow0, NP, 1);                       \
        else                                                               \
            dw_tile(p, x, w, b0, y, oh, ow0, NP, 0);                       \
        break;

static NN_AVX512 void dw_tile_any(const nn_nchwc_conv_t *p, const float *x, const float *w,
                                  __m512 b0, float *y, int oh, int ow0, int np, int edge)
{
    switch (np) {
        DW_CASE(1)
        DW_CASE(2)
        DW_CASE(3)
        DW_CASE(4)
        DW_CASE(5)
        DW_CASE(6)
        DW_CASE(7)
        DW_CASE(8)
    default:
        break;
    }
}

NN_AVX512 void nn_nchwc_dwconv(const nn_nchwc_conv_t *p, const float *x, const float *w,
                               const float *bias, float *y, int oh0, int oh1)
{
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    /* Output columns whose taps all fall inside the row. */
    const int in0 = (p->pl + p->sw - 1) / p->sw;
    int in1 = (p->W + p->pl - p->kw) / p->sw + 1;
    in1 = in1 < in0 ? in0 : in1;
    for (int oh = oh0; oh < oh1; oh++)
        for (int ow = 0; ow < p->Wo; ow += DW_PIXELS) {
            const int np = p->Wo - ow < DW_PIXELS ? p->Wo - ow : DW_PIXELS;
            dw_tile_any(p, x, w, b0, y, oh, ow, np, ow < in0 || ow + np > in1);
        }
}

NN_AVX512 void nn_nchwc_maxpool(const nn_nchwc_pool_t *p, const float *x, float *y, int oh0,
                                int oh1)
{
    for (int oh = oh0; oh < oh1; oh++) {
        const int ih0 = oh * p->sh - p->pt;
        const int a0 = ih0 < 0 ? -ih0 : 0, a1 = p->H - ih0 < p->kh ? p->H - ih0 : p->kh;
        for (int ow = 0; ow < p->Wo; ow++) {
            const int iw0 = ow * p->sw - p->pl;
            const int b0 = iw0 < 0 ? -iw0 : 0, b1 = p->W - iw0 < p->kw ? p->W - iw0 : p->kw;
            __m512 acc = _mm512_set1_ps(-INFINITY);
            for (int a = a0; a < a1; a++) {
                const float *xr = x + (size_t)(ih0 + a) * p->W * NN_NCHWC;
                for (int b = b0; b < b1; b++)
                    acc = nn_max_nan(acc, _mm512_loadu_ps(xr + (size_t)(iw0 + b) * NN_NCHWC));
            }
            _mm512_storeu_ps(y + ((size_t)oh * p->Wo + ow) * NN_NCHWC, acc);
        }
    }
}

NN_AVX512 void nn_nchwc_mean(const float *x, size_t HW, int n, float *y)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t p = 0;
    for (; p + 2 <= HW; p += 2) { /* two sums: half the add chain */
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + p * NN_NCHWC));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + (p + 1) * NN_NCHWC));
    }
    if (p < HW)
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + p * NN_NCHWC));
    const __m512 mean = _mm512_div_ps(_mm512_add_ps(s0, s1), _mm512_set1_ps((float)HW));
    _mm512_mask_storeu_ps(y, nn_lanes(n), mean);
}

#else

void nn_nchwc_dwconv(const nn_nchwc_conv_t *p, const float *x, const float *w, const float *bias,
                     float *y, int oh0, int oh1)
{
    (void)p, (void)x, (void)w, (void)bias, (void)y, (void)oh0, (void)oh1;
}

void nn_nchwc_mean(const float *x, size_t HW, int n, float *y)
{
    (void)x, (void)HW, (void)n, (void)y;
}

void nn_nchwc_maxpool(const nn_nchwc_pool_t *p, const float *x, float *y, int oh0, int oh1)
{
    (void)p, (void)x, (void)y, (void)oh0, (void)oh1;
}

void nn_nchwc_to_blocked(const float *x, int C, size_t HW, float *y, size_t p0, size_t p1)
{
    (void)x, (void)C, (void)HW, (void)y, (void)p0, (void)p1;
}

void nn_nchwc_to_planes(const float *x, int C, size_t HW, float *y, size_t p0, size_t p1)
{
    (void)x, (void)C, (void)HW, (void)y, (void)p0, (void)p1;
}

void nn_nchwc_conv(const nn_nchwc_conv_t *p, const float *x, const float *w, const float *bias,
                   const float *res, float *y, int cb0, int cb1, int64_t q0, int64_t q1,
                   int images, size_t xs, size_t ys)
{
    (void)p, (void)x, (void)w, (void)bias, (void)res, (void)y, (void)cb0, (void)cb1, (void)q0,
        (void)q1, (void)images, (void)xs, (void)ys;
}

#endif
