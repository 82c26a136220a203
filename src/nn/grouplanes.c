/* The engine's own AVX-512 grouped convolution, output channels in the
 * lanes; see grouplanes.h. */
#include "grouplanes.h"

#include <math.h>
#include <string.h>

#include "avx512.h"

#define MAX_PX 14 /* pixels of the widest tile */

int nn_grouplanes_suits(nn_isa_t isa, long group, long Cg, long Mg, long taps, long outputs)
{
#if defined(__x86_64__)
    if (isa < NN_ISA_AVX512 || Cg < 2)
        return 0;
    if (group > 1)
        return Cg <= NN_GROUPLANES_MAX_CG && Mg >= NN_GROUPLANES_MIN_MG;
    return group == 1 && Cg <= NN_GROUPLANES_DENSE_MAX_CG && taps > 1 &&
           Mg >= NN_GROUPLANES_BLOCK && outputs > 0 &&
           outputs <= NN_GROUPLANES_DENSE_MAX_OUTPUTS;
#else
    (void)isa, (void)group, (void)Cg, (void)Mg, (void)taps, (void)outputs;
    return 0;
#endif
}

size_t nn_grouplanes_weight_floats(int Cg, int Mg, int taps)
{
    const size_t blocks = ((size_t)Mg + NN_GROUPLANES_BLOCK - 1) / NN_GROUPLANES_BLOCK;
    return blocks * (size_t)Cg * (size_t)taps * NN_GROUPLANES_BLOCK;
}

void nn_grouplanes_pack(const float *w, int Cg, int Mg, int taps, float *dst)
{
    const int blocks = (Mg + NN_GROUPLANES_BLOCK - 1) / NN_GROUPLANES_BLOCK;
    for (int b = 0; b < blocks; b++)
        for (int c = 0; c < Cg; c++)
            for (int t = 0; t < taps; t++)
                for (int l = 0; l < NN_GROUPLANES_BLOCK; l++) {
                    const int m = b * NN_GROUPLANES_BLOCK + l;
                    *dst++ = m < Mg ? w[((size_t)m * Cg + c) * taps + t] : 0.0f;
                }
}

/* Of the tile widths cands (widest first), the one that computes the
 * fewest pixels past the row's end; the widest of equals. */
static int pick_px(int Wo, const int *cands, int n)
{
    int best = cands[0], cost = (Wo + best - 1) / best * best;
    for (int i = 1; i < n; i++) {
        const int c = (Wo + cands[i] - 1) / cands[i] * cands[i];
        if (c < cost)
            best = cands[i], cost = c;
    }
    return best;
}

size_t nn_grouplanes_init(nn_grouplanes_t *d, const nn_dwconv_geom_t *g, int Cg, int Mg)
{
    if (g->pt < 0 || g->pl < 0 || g->Ho <= 0 || g->Wo <= 0 || Cg <= 0 || Mg <= 0)
        return 0;
    static const int one[] = {14, 8, 7}, two[] = {8, 7};
    memset(d, 0, sizeof *d);
    d->g = *g;
    d->Cg = Cg;
    d->Mg = Mg;
    d->taps = g->kh * g->kw;
    d->Wq = (g->Wo - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const size_t all = (size_t)Cg * d->Wq * ((g->Ho - 1) * g->sh + (g->kh - 1) * g->dh + 1);
    const size_t row = (size_t)Cg * d->Wq * g->sh; /* floats an output row adds */
    d->band = all <= NN_GROUPLANES_BAND_FLOATS ? g->Ho : (int)(NN_GROUPLANES_BAND_FLOATS / row);
    if (d->band < 1)
        d->band = 1;
    if (d->band > g->Ho)
        d->band = g->Ho;
    d->bands = (g->Ho + d->band - 1) / d->band;
    d->Hb = (d->band - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    d->px[1] = pick_px(g->Wo, one, 3);
    d->px[2] = pick_px(g->Wo, two, 2);
    d->plane = (size_t)d->Hb * d->Wq;
    /* A row's last tile reads up to MAX_PX - 1 pixels (times the stride)
     * past the row: on the last row of the last plane, past the planes. */
    d->planes = ((size_t)Cg * d->plane + (size_t)MAX_PX * g->sw + 15) / 16 * 16;
    /* The last tile's overshoot and the transposition's last 16 pixels. */
    d->out = ((size_t)d->band * g->Wo + 2 * 16) * NN_GROUPLANES_BLOCK;
    d->floats = d->planes + 2 * d->out;
    return d->floats;
}

#if defined(__x86_64__)

/* The rows of the group's input planes that band rows from oy0 reach into
 * the padded planes: plane row r holds input row oy0 * sh - pt + r, pixel
 * ix at column ix + pl; what the taps never reach is left out. Rows
 * outside the input are zeroed (another band may have filled them); the
 * columns of the padding are never written, so stay as the caller zeroed
 * them. */
static void to_planes(const nn_grouplanes_t *d, const float *x, float *planes, int oy0)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int Wq = d->Wq, cols = g->W < Wq - g->pl ? g->W : Wq - g->pl;
    if (cols <= 0)
        return;
    for (int c = 0; c < d->Cg; c++) {
        const float *src = x + (size_t)c * g->H * g->W;
        float *dst = planes + (size_t)c * d->plane;
        for (int r = 0; r < d->Hb; r++, dst += Wq) {
            const int iy = oy0 * g->sh - g->pt + r;
            if (iy < 0 || iy >= g->H)
                memset(dst + g->pl, 0, (size_t)cols * sizeof *dst);
            else
                memcpy(dst + g->pl, src + (size_t)iy * g->W, (size_t)cols * sizeof *src);
        }
    }
}

/* Input channels [c0, c1) of tiles of OB output blocks x PX pixels of a
 * row over the padded planes, added onto out (pixels of 16 channels; block
 * o at out + o * d->out) or, for c0 = 0, onto the bias. A row's last tile
 * runs on past the row but stores only the row's pixels (the rest would
 * land on the next row's partial sums). KH, KW, S are constants in the
 * common callers (the taps unroll), 0 in the general one. */
static inline __attribute__((always_inline)) NN_AVX512 void
tiles_body(const nn_grouplanes_t *d, const float *planes, const float *w, const __m512 *bias,
           float *out, int rows, int c0, int c1, const int OB, const int PX, const int KH,
           const int KW, const int S)
{
    const nn_dwconv_geom_t *g = &d->g;
    const int kh = KH ? KH : g->kh, kw = KW ? KW : g->kw;
    const int sh = S ? S : g->sh, sw = S ? S : g->sw;
    const int dh = KH ? 1 : g->dh, dw = KW ? 1 : g->dw;
    const int taps = kh * kw;
    const size_t Wq = (size_t)d->Wq;
    /* floats of one block's weights */
    const size_t wb = (size_t)d->Cg * taps * NN_GROUPLANES_BLOCK;
    for (int oy = 0; oy < rows; oy++) {
        for (int ox = 0; ox < g->Wo; ox += PX) {
            float *o = out + ((size_t)oy * g->Wo + ox) * NN_GROUPLANES_BLOCK;
            const int n = g->Wo - ox < PX ? g->Wo - ox : PX;
            __m512 acc[2][MAX_PX];
#pragma GCC unroll 14
            for (int i = 0; i < PX; i++) {
                acc[0][i] = c0 ? _mm512_load_ps(o + (size_t)i * NN_GROUPLANES_BLOCK) : bias[0];
                if (OB > 1)
                    acc[1][i] = c0 ? _mm512_load_ps(o + d->out + (size_t)i * NN_GROUPLANES_BLOCK)
                                   : bias[1];
            }
            const float *s = planes + (size_t)c0 * d->plane + (size_t)oy * sh * Wq + (size_t)ox * sw;
            const float *wc = w + (size_t)c0 * taps * NN_GROUPLANES_BLOCK;
            for (int c = c0; c < c1; c++, s += d->plane, wc += taps * NN_GROUPLANES_BLOCK) {
#pragma GCC unroll 3
                for (int ky = 0; ky < kh; ky++) {
                    const float *row = s + (size_t)ky * dh * Wq;
#pragma GCC unroll 3
                    for (int kx = 0; kx < kw; kx++) {
                        const float *t = row + (size_t)kx * dw;
                        const float *wt = wc + (size_t)(ky * kw + kx) * NN_GROUPLANES_BLOCK;
                        const __m512 w0 = _mm512_load_ps(wt);
                        const __m512 w1 = OB > 1 ? _mm512_load_ps(wt + wb) : w0;
#pragma GCC unroll 14
                        for (int i = 0; i < PX; i++) {
                            const __m512 v = _mm512_set1_ps(t[(size_t)i * sw]);
                            acc[0][i] = _mm512_fmadd_ps(v, w0, acc[0][i]);
                            if (OB > 1)
                                acc[1][i] = _mm512_fmadd_ps(v, w1, acc[1][i]);
                        }
                    }
                }
            }
#pragma GCC unroll 14
            for (int i = 0; i < PX; i++) {
                if (i >= n)
                    break;
                _mm512_store_ps(o + (size_t)i * NN_GROUPLANES_BLOCK, acc[0][i]);
                if (OB > 1)
                    _mm512_store_ps(o + d->out + (size_t)i * NN_GROUPLANES_BLOCK, acc[1][i]);
            }
        }
    }
}

typedef void (*tiles_fn)(const nn_grouplanes_t *d, const float *planes, const float *w,
                         const __m512 *bias, float *out, int rows, int c0, int c1);

#define TILES(name, OB, PX, KH, KW, S)                                                   \
    static NN_AVX512 void name(const nn_grouplanes_t *d, const float *planes,            \
                               const float *w, const __m512 *bias, float *out, int rows, \
                               int c0, int c1)                                           \
    {                                                                                     \
        tiles_body(d, planes, w, bias, out, rows, c0, c1, OB, PX, KH, KW, S);             \
    }
/* Per geometry: one block x 14, 8 or 7 pixels, two blocks x 8 or 7. */
#define TILES_OF(geom, KH, KW, S)                                                         \
    TILES(geom##_1x14, 1, 14, KH, KW, S)                                                  \
    TILES(geom##_1x8, 1, 8, KH, KW, S)                                                    \
    TILES(geom##_1x7, 1, 7, KH, KW, S)                                                    \
    TILES(geom##_2x8, 2, 8, KH, KW, S)                                                    \
    TILES(geom##_2x7, 2, 7, KH, KW, S)                                                    \
    static tiles_fn geom##_tiles(int ob, int px)                                          \
    {                                                                                     \
        if (ob == 2)                                                                      \
            return px == 8 ? geom##_2x8 : geom##_2x7;                                     \
        return px == 14 ? geom##_1x14 : px == 8 ? geom##_1x8 : geom##_1x7;                \
    }
TILES_OF(k3s1, 3, 3, 1)
TILES_OF(k3s2, 3, 3, 2)
TILES_OF(kany, 0, 0, 0)

static NN_AVX512 void run_avx512(const nn_grouplanes_t *d, const float *x, const float *w,
                                 const float *bias, float lo, float hi, const float *res,
                                 float *y, float *scratch, int b0, int blocks, int band)
{
    const nn_dwconv_geom_t *g = &d->g;
    const size_t P = (size_t)g->Ho * g->Wo;
    const int oy0 = band * d->band;
    const int rows = g->Ho - oy0 < d->band ? g->Ho - oy0 : d->band, Pb = rows * g->Wo;
    const int plain = g->dh == 1 && g->dw == 1 && g->kh == 3 && g->kw == 3 && g->sh == g->sw;
    tiles_fn (*const tiles)(int, int) = plain && g->sh == 1   ? k3s1_tiles
                                        : plain && g->sh == 2 ? k3s2_tiles
                                                              : kany_tiles;
    const int clamp = lo != -INFINITY || hi != INFINITY;
    const size_t wb = (size_t)d->Cg * d->taps * NN_GROUPLANES_BLOCK;
    float *planes = scratch, *out = scratch + d->planes;
    to_planes(d, x, planes, oy0);
    for (int b = b0; b < blocks;) {
        const int ob = blocks - b >= 2 ? 2 : 1;
        __m512 vb[2];
        for (int o = 0; o < ob; o++) {
            const int m0 = (b + o) * NN_GROUPLANES_BLOCK;
            vb[o] = bias ? _mm512_maskz_loadu_ps(nn_lanes(d->Mg - m0), bias + m0)
                         : _mm512_setzero_ps();
        }
        const tiles_fn run = tiles(ob, d->px[ob]);
        for (int c0 = 0; c0 < d->Cg; c0 += NN_GROUPLANES_PASS_CHANNELS) {
            const int c1 = d->Cg - c0 < NN_GROUPLANES_PASS_CHANNELS ? d->Cg
                                                                   : c0 + NN_GROUPLANES_PASS_CHANNELS;
            run(d, planes, w + (size_t)b * wb, vb, out, rows, c0, c1);
        }
        for (int o = 0; o < ob; o++, b++) {
            const int m0 = b * NN_GROUPLANES_BLOCK;
            const int n = d->Mg - m0 < NN_GROUPLANES_BLOCK ? d->Mg - m0 : NN_GROUPLANES_BLOCK;
            const size_t first = (size_t)m0 * P + (size_t)oy0 * g->Wo;
            const float *r = res ? res + first : NULL;
            float *yb = y + first;
            nn_lanes_to_planes_any(out + (size_t)o * d->out, Pb, P, n, lo, hi, r, yb, clamp);
        }
    }
}

#endif

void nn_grouplanes_run(const nn_grouplanes_t *d, const float *x, const float *w,
                       const float *bias, float lo, float hi, const float *res, float *y,
                       float *scratch, int b0, int b1, int band)
{
#if defined(__x86_64__)
    const int blocks = (d->Mg + NN_GROUPLANES_BLOCK - 1) / NN_GROUPLANES_BLOCK;
    run_avx512(d, x, w, bias, lo, hi, res, y, scratch, b0, b1 < blocks ? b1 : blocks, band);
#else
    (void)d, (void)x, (void)w, (void)bias, (void)lo, (void)hi, (void)res, (void)y,
        (void)scratch, (void)b0, (void)b1, (void)band;
#endif
}
