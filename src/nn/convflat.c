/* Direct convolution over flat padded planes; see convflat.h. */
#include "convflat.h"

#include "avx512.h"
#include "sgemm.h"

#define COLS 48      /* outputs per tile: three vectors */
#define TILE_ROWS NN_TILE_ROWS /* output channels per tile */

size_t nn_convflat_floats(nn_isa_t isa, const nn_dwconv_geom_t *g, int C)
{
#if defined(__x86_64__)
    /* Not 1x1: no two taps share an input, and with a stride the planes
     * would copy every phase to read one (see convflat.h). */
    if (!nn_sgemm_has(isa) || C < 1 || g->pt < 0 || g->pl < 0 || g->kh * g->kw == 1 ||
        (long)C * g->kh * g->kw > NN_CONVFLAT_MAX_K)
        return 0;
    nn_flat_planes_t l;
    if (!nn_flat_planes(&l, g))
        return 0;
    /* At least a vector a row (a lane mask needs one wrap at most), most
     * lanes valid, and a map large enough to pay for the planes. */
    const long Q = (long)g->Ho * l.Wq;
    if (l.Wq < 16 || 4 * (l.Wq - g->Wo) > l.Wq || Q < NN_CONVFLAT_MIN_OUTPUTS || Q > (1L << 30) / C)
        return 0;
    return (size_t)C * nn_flat_planes_floats(&l);
#else
    (void)isa, (void)g, (void)C;
    return 0;
#endif
}

void nn_convflat_init(nn_convflat_t *f, const nn_dwconv_geom_t *g, int C, int M)
{
    nn_flat_planes(&f->plane, g);
    f->C = C;
    f->M = M;
    f->K = C * g->kh * g->kw;
    f->chan = nn_flat_planes_floats(&f->plane);
    f->Q = g->Ho * f->plane.Wq;
    int k = 0;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < g->kh; ky++)
            for (int kx = 0; kx < g->kw; kx++)
                f->off[k++] = (int)(c * f->chan) + nn_flat_tap(&f->plane, ky, kx);
}

void nn_convflat_pad(const nn_convflat_t *f, int c, const float *x, int iy0, int iy1,
                     float *buf)
{
    nn_flat_pad_rows(&f->plane, x, buf + (size_t)c * f->chan, iy0, iy1);
}

int nn_convflat_dense(const nn_convflat_t *f, int q)
{
    const int Wq = f->plane.Wq, Wo = f->plane.g.Wo;
    const int row = q / Wq, col = q - row * Wq;
    return row * Wo + (col < Wo ? col : Wo);
}

#if defined(__x86_64__)

/* Deepest block of K a tile runs at a time: the strip's rows of the
 * planes for a block (about four lines a row: three unaligned vectors)
 * stay in L1 while every output channel's tile runs on them. Over all of
 * a deep K at once (DenseNet's 128 -> 32 3x3s: K = 1152, 290 KiB of
 * lines), each tile read the strip from L2. */
#define KBLOCK 96
/* Output channels whose partial sums a strip keeps between K blocks (a
 * call's channels are taken this many at a time). */
#define PART_ROWS 256
#define STRIP_RUN 8  /* strips a tile runs on end, K at most RUN_MAX_K */
#define RUN_MAX_K 160 /* ResNet's 7x7 stem: 147 */

/* One tile, K rows [k0, k1): rows valid output channels from a (half
 * panel at k0, k-major with stride NN_SGEMM_MR), NV vectors of outputs
 * from flat position q. The sums start from zero at the first block
 * (else from part) and go to part (TILE_ROWS x COLS) until the last,
 * which stores the outputs. */
static inline __attribute__((always_inline)) NN_AVX512 void
tile_body(const nn_convflat_t *f, const float *buf, const float *a, const float *bias,
          float lo, float hi, int rows, int q, int k0, int k1, float *part, float *y,
          const int NV)
{
    const int first = k0 == 0, last = k1 == f->K;
    __m512 acc[TILE_ROWS][3];
#pragma GCC unroll 8
    for (int r = 0; r < TILE_ROWS; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm512_setzero_ps() : _mm512_load_ps(part + r * COLS + 16 * v);
    const float *b = buf + q;
    for (int k = k0; k < k1; k++) {
        const float *bk = b + f->off[k];
        const __m512 b0 = _mm512_loadu_ps(bk);
        const __m512 b1 = NV > 1 ? _mm512_loadu_ps(bk + 16) : b0;
        const __m512 b2 = NV > 2 ? _mm512_loadu_ps(bk + 32) : b0;
        nn_tile_step(acc, a, b0, b1, b2, NV);
        a += NN_SGEMM_MR;
    }
    if (!last) {
#pragma GCC unroll 8
        for (int r = 0; r < TILE_ROWS; r++)
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++)
                _mm512_store_ps(part + r * COLS + 16 * v, acc[r][v]);
        return;
    }
    const int Wq = f->plane.Wq, Wo = f->plane.g.Wo;
    const size_t P = (size_t)f->plane.g.Ho * Wo;
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) {
        /* The vector's valid lanes: columns before Wo (a row end wraps
         * at most once, Wq >= 16) and positions before Q. */
        const int qv = q + 16 * v;
        const int row = qv / Wq, col = qv - row * Wq;
        __m512i cols = _mm512_add_epi32(_mm512_set1_epi32(col), iota);
        cols = _mm512_mask_sub_epi32(cols, _mm512_cmpge_epi32_mask(cols, _mm512_set1_epi32(Wq)),
                                     cols, _mm512_set1_epi32(Wq));
        __mmask16 m = _mm512_cmplt_epi32_mask(cols, _mm512_set1_epi32(Wo));
        if (f->Q - qv < 16)
            m &= (__mmask16)((1u << (f->Q - qv > 0 ? f->Q - qv : 0)) - 1);
        if (!m)
            continue;
        const int n = __builtin_popcount(m);
        const __mmask16 dense = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        float *d = y + (size_t)row * Wo + (col < Wo ? col : Wo);
#pragma GCC unroll 8
        for (int r = 0; r < TILE_ROWS; r++) {
            if (r >= rows)
                break;
            __m512 x = acc[r][v];
            if (bias)
                x = _mm512_add_ps(x, _mm512_set1_ps(bias[r]));
            x = _mm512_min_ps(_mm512_max_ps(x, vlo), vhi);
            _mm512_mask_storeu_ps(d + r * P, dense, _mm512_maskz_compress_ps(m, x));
        }
    }
}

#define TILE_KERNEL(name, NV)                                                               \
    static NN_AVX512 void name(const nn_convflat_t *f, const float *buf, const float *a,    \
                               const float *bias, float lo, float hi, int rows, int q,      \
                               int k0, int k1, float *part, float *y)                       \
    {                                                                                       \
        tile_body(f, buf, a, bias, lo, hi, rows, q, k0, k1, part, y, NV);                   \
    }
TILE_KERNEL(tile_1, 1)
TILE_KERNEL(tile_2, 2)
TILE_KERNEL(tile_3, 3)

/* Output channels [m, min(m + TILE_ROWS, m1)) at flat outputs [q, min(q +
 * COLS, q1)), K rows [k0, k1) (see tile_body; part: the tile's partial
 * sums). */
static void run_tile(const nn_convflat_t *f, const float *buf, const float *pa,
                     const float *bias, float lo, float hi, int m, int m1, int q, int q1,
                     int k0, int k1, float *part, float *y)
{
    const size_t P = (size_t)f->plane.g.Ho * f->plane.g.Wo;
    const int rows = m1 - m < TILE_ROWS ? m1 - m : TILE_ROWS;
    const int nv = q1 - q >= COLS ? 3 : (q1 - q + 15) / 16;
    const float *a = pa + (size_t)(m / NN_SGEMM_MR) * NN_SGEMM_MR * f->K +
                     (size_t)k0 * NN_SGEMM_MR + m % NN_SGEMM_MR;
    const float *bm = bias ? bias + m : NULL;
    float *ym = y + (size_t)m * P;
    if (nv == 3)
        tile_3(f, buf, a, bm, lo, hi, rows, q, k0, k1, part, ym);
    else if (nv == 2)
        tile_2(f, buf, a, bm, lo, hi, rows, q, k0, k1, part, ym);
    else
        tile_1(f, buf, a, bm, lo, hi, rows, q, k0, k1, part, ym);
}

#endif

void nn_convflat_run(const nn_convflat_t *f, const float *buf, const float *pa,
                     const float *bias, float lo, float hi, int m0, int m1, int q0,
                     int q1, float *y)
{
#if defined(__x86_64__)
    if (q1 > f->Q)
        q1 = f->Q;
    float part[PART_ROWS * COLS] __attribute__((aligned(64)));
    if (f->K <= RUN_MAX_K) {
        /* Shallow products (stems): runs of strips a tile, so that each
         * output channel's row is written STRIP_RUN strips on end rather
         * than 48 floats at a time across all channels (64 write streams
         * at once, more than the prefetchers follow: SqueezeNet's stem at
         * batch 8, 2.3 -> 1.7 ms). The run's plane rows stay in L2. */
        for (int g = q0; g < q1; g += STRIP_RUN * COLS) {
            const int g1 = q1 - g < STRIP_RUN * COLS ? q1 : g + STRIP_RUN * COLS;
            for (int m = m0; m < m1; m += TILE_ROWS)
                for (int q = g; q < g1; q += COLS)
                    run_tile(f, buf, pa, bias, lo, hi, m, m1, q, g1, 0, f->K, part, y);
        }
        return;
    }
    const int blocks = (f->K + KBLOCK - 1) / KBLOCK, kb = (f->K + blocks - 1) / blocks;
    for (int q = q0; q < q1; q += COLS)
        for (int c0 = m0; c0 < m1; c0 += PART_ROWS) {
            const int c1 = m1 - c0 < PART_ROWS ? m1 : c0 + PART_ROWS;
            for (int k0 = 0; k0 < f->K; k0 += kb) {
                const int k1 = f->K - k0 < kb ? f->K : k0 + kb;
                for (int m = c0; m < c1; m += TILE_ROWS)
                    run_tile(f, buf, pa, bias, lo, hi, m, c1, q, q1, k0, k1,
                             part + (size_t)(m - c0) * COLS, y);
            }
        }
#else
    (void)f, (void)buf, (void)pa, (void)bias, (void)lo, (void)hi, (void)m0, (void)m1, (void)q0,
        (void)q1, (void)y;
#endif
}
