/* The engine's own products; see sgemm.h.
 *
 * Loop order, for rows [m0, m1): for each panel of columns (when K takes
 * more than one block: as many columns as keep the panel's C in L2), for
 * each block of K (sized so that the A panels it spans, rows x kb, stay
 * in L2), for each group of up to STRIP_GROUP strips of NR columns of
 * B, pack the group's block (kb x NR a strip, zero-padded past N) into the
 * thread's buffer, where it stays in L1 and L2 while every 8-row tile of A
 * runs its microkernel against each strip of the group in turn. C's tiles
 * are revisited once per K block, in L2; A is read once per column panel.
 * The group lets a tile row write (and read its residual from) a run of
 * group x NR columns of each of its rows rather than NR: one strip at a
 * time, a 256-row product touched 768 scattered lines of C (and as many of
 * the residual) a strip, more than the prefetchers follow
 * (bench/README.md, "Intel Xeon (Ice Lake server)"). */
#include "sgemm.h"

#include <math.h>

#include "avx512.h"

#define KC_MAX 256         /* deepest K block: a strip of 48 KiB */
#define STRIP_GROUP 8       /* most strips packed and swept together */
#define KC_MIN 64
#define A_BLOCK_BYTES (512 * 1024) /* A's panels per K block: half of L2 */
#define C_PANEL_BYTES (256 * 1024) /* C revisited by K blocks: a quarter of L2 */

int nn_sgemm_has(nn_isa_t isa)
{
#if defined(__x86_64__)
    return isa >= NN_ISA_AVX512;
#else
    (void)isa;
    return 0;
#endif
}

size_t nn_sgemm_packed_floats(int M, int K)
{
    size_t panels = ((size_t)M + NN_SGEMM_MR - 1) / NN_SGEMM_MR;
    return panels * NN_SGEMM_MR * (size_t)K;
}

#if defined(__x86_64__)
/* One panel (rows valid rows from A, the rest zero), 16 columns of K at a
 * time: 16 row segments loaded, transposed in registers, stored as 16
 * steps of the panel. Element by element (a gather down 16 rows per
 * step) packing ConvNeXt's activations, 256 x 384 at a time, took 60 us
 * on an Intel Xeon Sapphire Rapids, half as long as their product. */
static NN_AVX512 void pack_panel_avx512(const float *A, int lda, int rows, int K, float *dst)
{
    for (int k = 0; k < K; k += 16) {
        const int n = K - k < 16 ? K - k : 16;
        __m512 r[16];
        nn_load_transposed(r, A + k, (size_t)lda, rows, nn_lanes(n));
        float *d = dst + (size_t)k * NN_SGEMM_MR;
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (i < n)
                _mm512_storeu_ps(d + 16 * i, r[i]);
    }
}
#endif

void nn_sgemm_pack_a(const float *A, int lda, int M, int K, float *dst)
{
#if defined(__x86_64__)
    /* Also called where the products are not (tests, weights packed for a
     * kernel of this layout): the vector path only on a CPU that has it. */
    if (__builtin_cpu_supports("avx512f")) {
        for (int m0 = 0; m0 < M; m0 += NN_SGEMM_MR)
            pack_panel_avx512(A + (size_t)m0 * lda, lda, M - m0, K,
                              dst + (size_t)m0 * K);
        return;
    }
#endif
    for (int m0 = 0; m0 < M; m0 += NN_SGEMM_MR)
        for (int k = 0; k < K; k++)
            for (int r = 0; r < NN_SGEMM_MR; r++)
                *dst++ = m0 + r < M ? A[(size_t)(m0 + r) * lda + k] : 0.0f;
}

/* The K block: as deep as keeps rows x kb of A within A_BLOCK_BYTES, and
 * the blocks of one product about equal. */
static int k_block(int rows, int K)
{
    int kc = A_BLOCK_BYTES / (int)sizeof(float) / (rows > 0 ? rows : 1);
    kc = kc < KC_MIN ? KC_MIN : kc > KC_MAX ? KC_MAX : kc;
    if (K <= kc)
        return K;
    int blocks = (K + kc - 1) / kc;
    return (K + blocks - 1) / blocks;
}

#if defined(__x86_64__)

/* The kb x NR strip of B at (k0, n0) with nb valid columns, zero-padded:
 * three masked vector copies a row (a memcpy call per row cost as much as
 * the copy). */
static NN_AVX512 void pack_strip(const float *B, int ldb, int kb, int nb, float *dst)
{
    const __mmask16 m[3] = {nn_lanes(nb), nn_lanes(nb - 16), nn_lanes(nb - 32)};
    for (int k = 0; k < kb; k++) {
        const float *b = B + (size_t)k * ldb;
        _mm512_store_ps(dst, _mm512_maskz_loadu_ps(m[0], b));
        _mm512_store_ps(dst + 16, _mm512_maskz_loadu_ps(m[1], b + 16));
        _mm512_store_ps(dst + 32, _mm512_maskz_loadu_ps(m[2], b + 32));
        dst += NN_SGEMM_NR;
    }
}

#define TILE_ROWS NN_TILE_ROWS /* rows of C per strip tile */

/* One microkernel call: a TILE_ROWS x NR tile (rows valid, nv vectors)
 * over a K block. */
typedef struct tile {
    const float *a;     /* the half panel at the block's first k (stride MR) */
    const float *b;     /* the strip: kb x NR */
    float *c;           /* C at the tile's first row and column */
    const float *bias;  /* at the tile's first row, or NULL */
    const float *cbias; /* at the tile's first column, or NULL */
    const float *res;   /* at the tile's first row and column, or NULL */
    int ldc, ldr, kb, rows;
    int load_c;         /* start from C (a later K block, or accumulate) */
    int last;           /* the last K block: bias, residual, clamp */
    float lo, hi;
    __mmask16 mask[3];  /* valid columns of each vector */
} tile_t;

static inline __attribute__((always_inline)) NN_AVX512 void tile_body(const tile_t *t,
                                                                      const int NV)
{
    __m512 acc[TILE_ROWS][3];
#pragma GCC unroll 8
    for (int r = 0; r < TILE_ROWS; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[r][v] = t->load_c && r < t->rows
                            ? _mm512_maskz_loadu_ps(t->mask[v], t->c + (size_t)r * t->ldc + 16 * v)
                            : _mm512_setzero_ps();
    const float *a = t->a, *b = t->b;
    for (int k = 0; k < t->kb; k++) {
        __m512 b0 = _mm512_load_ps(b);
        __m512 b1 = NV > 1 ? _mm512_load_ps(b + 16) : b0;
        __m512 b2 = NV > 2 ? _mm512_load_ps(b + 32) : b0;
        nn_tile_step(acc, a, b0, b1, b2, NV);
        a += NN_SGEMM_MR;
        b += NN_SGEMM_NR;
    }
    const __m512 lo = _mm512_set1_ps(t->lo), hi = _mm512_set1_ps(t->hi);
#pragma GCC unroll 8
    for (int r = 0; r < TILE_ROWS; r++) {
        if (r >= t->rows)
            break;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            __m512 x = acc[r][v];
            if (t->last) {
                if (t->bias)
                    x = _mm512_add_ps(x, _mm512_set1_ps(t->bias[r]));
                if (t->cbias)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(t->mask[v], t->cbias + 16 * v));
                if (t->res)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(
                                             t->mask[v], t->res + (size_t)r * t->ldr + 16 * v));
                x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
            }
            _mm512_mask_storeu_ps(t->c + (size_t)r * t->ldc + 16 * v, t->mask[v], x);
        }
    }
}

static NN_AVX512 void tile_1(const tile_t *t) { tile_body(t, 1); }
static NN_AVX512 void tile_2(const tile_t *t) { tile_body(t, 2); }
static NN_AVX512 void tile_3(const tile_t *t) { tile_body(t, 3); }

/* One column (N == 1): each panel's MR rows in one vector, a product
 * bound by reading A, which needs no strips. */
static NN_AVX512 void column_avx512(int m0, int m1, int K, const float *pa, const float *B,
                                    int ldb, float *C, int ldc,
                                    const nn_sgemm_epilogue_t *epi)
{
    for (int m = m0; m < m1; m += NN_SGEMM_MR) {
        const float *a = pa + (size_t)(m / NN_SGEMM_MR) * NN_SGEMM_MR * K;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int k = 0;
        for (; k + 1 < K; k += 2) {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_set1_ps(B[(size_t)k * ldb]), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + NN_SGEMM_MR),
                                 _mm512_set1_ps(B[(size_t)(k + 1) * ldb]), s1);
            a += 2 * NN_SGEMM_MR;
        }
        if (k < K)
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a), _mm512_set1_ps(B[(size_t)k * ldb]), s0);
        float y[NN_SGEMM_MR];
        _mm512_storeu_ps(y, _mm512_add_ps(s0, s1));
        int rows = m1 - m < NN_SGEMM_MR ? m1 - m : NN_SGEMM_MR;
        for (int r = 0; r < rows; r++) {
            float *c = C + (size_t)(m + r) * ldc;
            float x = y[r] + (epi->accumulate ? *c : 0.0f);
            if (epi->bias)
                x += epi->bias[m + r];
            if (epi->col_bias)
                x += epi->col_bias[0];
            if (epi->res)
                x += epi->res[(size_t)(m + r) * epi->ldr];
            *c = x < epi->lo ? epi->lo : x > epi->hi ? epi->hi : x;
        }
    }
}

/* ---- narrow products: few columns ------------------------------------------------
 * With few columns per image (7x7 maps: 49, 14x14: 196), 48-column strips
 * would run partly empty lanes and cost a copy of B. Here the vectors run
 * along rows instead: a tile is two panels of A (32 rows, two vectors) by NARROW_NC columns,
 * each column two accumulators, each step two vector loads of A and one
 * broadcast element of B per column, which feeds both. A lone last panel
 * runs the same tile with one vector. The tile is transposed in registers
 * on its way out and stored a row of up to 12 columns at a time (element
 * by element, the store took a third of a 512-deep tile's time). */

#define NARROW_NC 12       /* columns per narrow tile: 2 x 12 accumulators */
/* Products at most this wide take this path (14x14 maps: 196 columns).
 * There the strips cost a copy of B per K block and their last vector
 * runs mostly empty (196 = 4 x 48 + 4); read in place with rows in the
 * lanes, ResNet-50's stride-2 3x3 to 14x14 ran 0.97 -> 0.66 ms on 2
 * threads. On 28x28 maps (784) the strips do as well. */
#define NARROW_MAX_N NN_SGEMM_NARROW_N

typedef struct narrow {
    const float *a;       /* the first panel at the block's first k; the second
                             follows MR * K on */
    const float *b;       /* B at the tile's first column, row stride ldp */
    float *c;             /* C at the tile's first row and column */
    const float *bias, *res;
    const float *cbias;   /* at the tile's first column, or NULL */
    int ldc, ldr, ldp, K, kb, rows, cols, load_c, last;
    float lo, hi;
} narrow_t;

/* NP panels (1 or 2); full: all NARROW_NC columns are there, otherwise
 * only t->cols of them are read (B ends there). */
static inline __attribute__((always_inline)) NN_AVX512 void
narrow_body(const narrow_t *t, const int NP, const int full)
{
    __m512 acc[2][NARROW_NC];
#pragma GCC unroll 12
    for (int j = 0; j < NARROW_NC; j++)
        acc[0][j] = acc[1][j] = _mm512_setzero_ps();
    const float *a0 = t->a, *a1 = NP > 1 ? t->a + (size_t)NN_SGEMM_MR * t->K : t->a;
    const float *b = t->b;
    const int cols = t->cols;
    for (int k = 0; k < t->kb; k++) {
        const __m512 v0 = _mm512_loadu_ps(a0);
        const __m512 v1 = NP > 1 ? _mm512_loadu_ps(a1) : v0;
#pragma GCC unroll 12
        for (int j = 0; j < NARROW_NC; j++)
            if (full || j < cols) {
                const __m512 bj = _mm512_set1_ps(b[j]);
                acc[0][j] = _mm512_fmadd_ps(v0, bj, acc[0][j]);
                if (NP > 1)
                    acc[1][j] = _mm512_fmadd_ps(v1, bj, acc[1][j]);
            }
        a0 += NN_SGEMM_MR;
        a1 += NN_SGEMM_MR;
        b += t->ldp;
    }
    /* Each panel's accumulators (a column of 16 rows each) transposed in
     * registers into rows of up to 16 columns, then stored row by row. */
    const __mmask16 m = (__mmask16)((1u << cols) - 1);
    const __m512 lo = _mm512_set1_ps(t->lo), hi = _mm512_set1_ps(t->hi);
#pragma GCC unroll 2
    for (int p = 0; p < NP; p++) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            r[j] = j < NARROW_NC ? acc[p][j] : _mm512_setzero_ps();
        nn_transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            const int row = p * NN_SGEMM_MR + i;
            if (row >= t->rows)
                break;
            float *c = t->c + (size_t)row * t->ldc;
            __m512 x = r[i];
            if (t->load_c)
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, c));
            if (t->last) {
                if (t->bias)
                    x = _mm512_add_ps(x, _mm512_set1_ps(t->bias[row]));
                if (t->cbias)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, t->cbias));
                if (t->res)
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, t->res + (size_t)row * t->ldr));
                x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
            }
            _mm512_mask_storeu_ps(c, m, x);
        }
    }
}

static NN_AVX512 void narrow_pair(const narrow_t *t) { narrow_body(t, 2, 1); }
static NN_AVX512 void narrow_pair_tail(const narrow_t *t) { narrow_body(t, 2, 0); }
static NN_AVX512 void narrow_one(const narrow_t *t) { narrow_body(t, 1, 1); }
static NN_AVX512 void narrow_one_tail(const narrow_t *t) { narrow_body(t, 1, 0); }

/* B read in place (a narrow product's B is small and its rows
 * contiguous), in blocks of K of at most NARROW_KC: a pair of panels'
 * block (16 KiB) stays in L1 while every column tile and image uses it.
 * Over all of K at once, each tile streamed the pair from L2: on an Intel
 * Xeon (Ice Lake server), one thread, ResNet-50's 512 -> 512 3x3 on 7x7
 * unfolded (K 4608) ran at 46-50 GFLOP/s, 62-63 in blocks of 128
 * (bench/README.md, "Intel Xeon (Ice Lake server)"). */
#define NARROW_KC 128

/* Over columns [kbeg, kend) of A's K (all of them but in nn_sgemm_part). */
static void narrow_product(int m0, int m1, int N, int K, int kbeg, int kend, const float *pa,
                           const float *B, int ldb, float *C, int ldc,
                           const nn_sgemm_epilogue_t *epi, const nn_sgemm_images_t *im)
{
    narrow_t t = {.ldc = ldc, .ldr = epi->ldr, .ldp = ldb, .K = K, .lo = epi->lo,
                  .hi = epi->hi};
    const int depth = kend - kbeg;
    const int blocks = (depth + NARROW_KC - 1) / NARROW_KC, kc = (depth + blocks - 1) / blocks;
    for (int m = m0; m < m1; m += 2 * NN_SGEMM_MR) {
        t.rows = m1 - m < 2 * NN_SGEMM_MR ? m1 - m : 2 * NN_SGEMM_MR;
        t.bias = epi->bias ? epi->bias + m : NULL;
        const int pair = t.rows > NN_SGEMM_MR;
        for (int k0 = kbeg; k0 < kend; k0 += kc) {
            t.a = pa + (size_t)(m / NN_SGEMM_MR) * NN_SGEMM_MR * K + (size_t)k0 * NN_SGEMM_MR;
            t.kb = kend - k0 < kc ? kend - k0 : kc;
            t.load_c = k0 > kbeg || epi->accumulate;
            t.last = k0 + t.kb == kend;
            for (int i = 0; i < im->count; i++) {
                const float *Bi = B + (size_t)i * im->bstride + (size_t)k0 * ldb;
                float *Ci = C + (size_t)i * im->cstride;
                const float *Ri = epi->res ? epi->res + (size_t)i * im->rstride : NULL;
                for (int n0 = 0; n0 < N; n0 += NARROW_NC) {
                    t.b = Bi + n0;
                    t.c = Ci + (size_t)m * ldc + n0;
                    t.res = Ri ? Ri + (size_t)m * epi->ldr + n0 : NULL;
                    t.cbias = epi->col_bias ? epi->col_bias + n0 : NULL;
                    t.cols = N - n0 < NARROW_NC ? N - n0 : NARROW_NC;
                    const int full = t.cols == NARROW_NC;
                    if (pair)
                        (full ? narrow_pair : narrow_pair_tail)(&t);
                    else
                        (full ? narrow_one : narrow_one_tail)(&t);
                }
            }
        }
    }
}

/* Columns [c0, c1) of rows [m0, m1), K blocks of kc outermost: a block's
 * panels of A (rows x kc, sized for L2) serve every strip before the next
 * block is read. */
static NN_AVX512 void panel_avx512(int m0, int m1, int c0, int c1, int K, int kc, const float *pa,
                         const float *B, int ldb, float *C, int ldc,
                         const nn_sgemm_epilogue_t *epi, const nn_sgemm_images_t *im,
                         float *buf)
{
    for (int k0 = 0; k0 < K; k0 += kc) {
        for (int i = 0; i < im->count; i++) { /* the block serves every image */
            tile_t t = {.ldc = ldc, .ldr = epi->ldr, .lo = epi->lo, .hi = epi->hi};
            t.kb = K - k0 < kc ? K - k0 : kc;
            t.load_c = k0 > 0 || epi->accumulate;
            t.last = k0 + t.kb == K;
            const float *Bi = B + (size_t)i * im->bstride;
            float *Ci = C + (size_t)i * im->cstride;
            const float *Ri = epi->res ? epi->res + (size_t)i * im->rstride : NULL;
            /* As many strips a group as the buffer holds at this depth. */
            const int fit = NN_SGEMM_BUFFER_FLOATS / (t.kb * NN_SGEMM_NR);
            const int group = (fit < STRIP_GROUP ? fit : STRIP_GROUP) * NN_SGEMM_NR;
            for (int g0 = c0; g0 < c1; g0 += group) {
                const int g1 = c1 - g0 < group ? c1 : g0 + group;
                for (int n0 = g0; n0 < g1; n0 += NN_SGEMM_NR)
                    pack_strip(Bi + (size_t)k0 * ldb + n0, ldb, t.kb,
                               g1 - n0 < NN_SGEMM_NR ? g1 - n0 : NN_SGEMM_NR,
                               buf + (size_t)(n0 - g0) * t.kb);
                for (int m = m0; m < m1; m += TILE_ROWS) {
                    /* The half of its panel row m starts. */
                    t.a = pa + (size_t)(m / NN_SGEMM_MR) * NN_SGEMM_MR * K +
                          (size_t)k0 * NN_SGEMM_MR + m % NN_SGEMM_MR;
                    t.bias = epi->bias ? epi->bias + m : NULL;
                    t.rows = m1 - m < TILE_ROWS ? m1 - m : TILE_ROWS;
                    for (int n0 = g0; n0 < g1; n0 += NN_SGEMM_NR) {
                        const int nb = g1 - n0 < NN_SGEMM_NR ? g1 - n0 : NN_SGEMM_NR;
                        for (int v = 0; v < 3; v++)
                            t.mask[v] = nn_lanes(nb - 16 * v);
                        t.b = buf + (size_t)(n0 - g0) * t.kb;
                        t.cbias = epi->col_bias ? epi->col_bias + n0 : NULL;
                        t.c = Ci + (size_t)m * ldc + n0;
                        t.res = Ri ? Ri + (size_t)m * epi->ldr + n0 : NULL;
                        if (nb > 32)
                            tile_3(&t);
                        else if (nb > 16)
                            tile_2(&t);
                        else
                            tile_1(&t);
                    }
                }
            }
        }
    }
}

static void product_avx512(int m0, int m1, int N, int K, const float *pa, const float *B,
                           int ldb, float *C, int ldc, const nn_sgemm_epilogue_t *epi,
                           const nn_sgemm_images_t *im, float *buf)
{
    if (N == 1) {
        for (int i = 0; i < im->count; i++) {
            nn_sgemm_epilogue_t e = *epi;
            e.res = epi->res ? epi->res + (size_t)i * im->rstride : NULL;
            column_avx512(m0, m1, K, pa, B + (size_t)i * im->bstride, ldb,
                          C + (size_t)i * im->cstride, ldc, &e);
        }
        return;
    }
    if (N <= NARROW_MAX_N) {
        narrow_product(m0, m1, N, K, 0, K, pa, B, ldb, C, ldc, epi, im);
        return;
    }
    const int kc = k_block(m1 - m0, K);
    /* Column panels outermost, as wide as keeps the panel's C in L2, so
     * that a deep product's K blocks revisit C there, not in L3. */
    int nc = N;
    if (kc < K) {
        nc = C_PANEL_BYTES / (int)sizeof(float) / (m1 - m0) / NN_SGEMM_NR * NN_SGEMM_NR;
        nc = nc < NN_SGEMM_NR ? NN_SGEMM_NR : nc;
    }
    for (int n0 = 0; n0 < N; n0 += nc)
        panel_avx512(m0, m1, n0, N - n0 < nc ? N : n0 + nc, K, kc, pa, B, ldb, C, ldc, epi,
                     im, buf);
}

#endif

void nn_sgemm_images(int m0, int m1, int N, int K, const float *pa, const float *B,
                     int ldb, float *C, int ldc, const nn_sgemm_epilogue_t *epi,
                     const nn_sgemm_images_t *im, float *buf)
{
#if defined(__x86_64__)
    if (m0 < m1 && N > 0 && im->count > 0)
        product_avx512(m0, m1, N, K, pa, B, ldb, C, ldc, epi, im, buf);
#else
    (void)m0, (void)m1, (void)N, (void)K, (void)pa, (void)B, (void)ldb, (void)C, (void)ldc,
        (void)epi, (void)im, (void)buf;
#endif
}

#if defined(__x86_64__)

#define DOT_ROWS 8 /* rows of X per pass over W */
#define DOT_AHEAD 256 /* floats of W prefetched ahead of use */

/* Rows [0, DOT_ROWS) of X (rows past M repeat row 0, their sums unused)
 * against rows [n, n + NW) of W. */
static inline __attribute__((always_inline)) NN_AVX512 void
dots_body(int M, int n, int K, float alpha, const float *X, int ldx, const float *W, int ldw,
          float beta, float *Y, int ldy, const int NW)
{
    __m512 acc[2][DOT_ROWS];
    const float *x[DOT_ROWS];
#pragma GCC unroll 8
    for (int r = 0; r < DOT_ROWS; r++) {
        x[r] = X + (size_t)(r < M ? r : 0) * ldx;
        acc[0][r] = acc[1][r] = _mm512_setzero_ps();
    }
    const float *w0 = W + (size_t)n * ldw, *w1 = NW > 1 ? w0 + ldw : w0;
    for (int k = 0; k < K; k += 16) {
        const __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        /* The weights come cold from memory, two rows at a time: the
         * hardware's prefetch alone left this at half of OpenBLAS's
         * speed, which copies them in one sequential sweep. */
        _mm_prefetch((const char *)(w0 + k + DOT_AHEAD), _MM_HINT_T0);
        if (NW > 1)
            _mm_prefetch((const char *)(w1 + k + DOT_AHEAD), _MM_HINT_T0);
        const __m512 a = _mm512_maskz_loadu_ps(m, w0 + k);
        const __m512 b = NW > 1 ? _mm512_maskz_loadu_ps(m, w1 + k) : a;
#pragma GCC unroll 8
        for (int r = 0; r < DOT_ROWS; r++) {
            const __m512 v = _mm512_maskz_loadu_ps(m, x[r] + k);
            acc[0][r] = _mm512_fmadd_ps(a, v, acc[0][r]);
            if (NW > 1)
                acc[1][r] = _mm512_fmadd_ps(b, v, acc[1][r]);
        }
    }
    /* Constant indices only (unrolled): an accumulator indexed at run
     * time would keep all of them in memory, stored at every step. */
#pragma GCC unroll 8
    for (int r = 0; r < DOT_ROWS; r++) {
        if (r >= M)
            break;
#pragma GCC unroll 2
        for (int c = 0; c < NW; c++) {
            float *y = Y + (size_t)r * ldy + n + c;
            const float s = alpha * _mm512_reduce_add_ps(acc[c][r]);
            *y = beta == 0.0f ? s : s + beta * *y;
        }
    }
}

static NN_AVX512 void dots_pair(int M, int n, int K, float alpha, const float *X, int ldx,
                                const float *W, int ldw, float beta, float *Y, int ldy)
{
    dots_body(M, n, K, alpha, X, ldx, W, ldw, beta, Y, ldy, 2);
}

static NN_AVX512 void dots_one(int M, int n, int K, float alpha, const float *X, int ldx,
                               const float *W, int ldw, float beta, float *Y, int ldy)
{
    dots_body(M, n, K, alpha, X, ldx, W, ldw, beta, Y, ldy, 1);
}

#endif

void nn_sgemm_dots(int M, int N, int K, float alpha, const float *X, int ldx, const float *W,
                   int ldw, float beta, float *Y, int ldy)
{
#if defined(__x86_64__)
    for (int m0 = 0; m0 < M; m0 += DOT_ROWS) {
        const int rows = M - m0 < DOT_ROWS ? M - m0 : DOT_ROWS;
        const float *x = X + (size_t)m0 * ldx;
        float *y = Y + (size_t)m0 * ldy;
        int n = 0;
        for (; n + 2 <= N; n += 2)
            dots_pair(rows, n, K, alpha, x, ldx, W, ldw, beta, y, ldy);
        if (n < N)
            dots_one(rows, n, K, alpha, x, ldx, W, ldw, beta, y, ldy);
    }
#else
    (void)M, (void)N, (void)K, (void)alpha, (void)X, (void)ldx, (void)W, (void)ldw, (void)beta,
        (void)Y, (void)ldy;
#endif
}

void nn_sgemm(int m0, int m1, int N, int K, const float *pa, const float *B, int ldb,
              float *C, int ldc, const nn_sgemm_epilogue_t *epi, float *buf)
{
    const nn_sgemm_images_t one = {.count = 1};
    nn_sgemm_images(m0, m1, N, K, pa, B, ldb, C, ldc, epi, &one, buf);
}

void nn_sgemm_part(int m0, int m1, int N, int K, int k0, int k1, const float *pa,
                   const float *B, int ldb, float *C, int ldc)
{
#if defined(__x86_64__)
    const nn_sgemm_epilogue_t plain = {.lo = -INFINITY, .hi = INFINITY};
    const nn_sgemm_images_t one = {.count = 1};
    if (m0 < m1 && N > 0 && N <= NARROW_MAX_N && k0 < k1)
        narrow_product(m0, m1, N, K, k0, k1, pa, B, ldb, C, ldc, &plain, &one);
#else
    (void)m0, (void)m1, (void)N, (void)K, (void)k0, (void)k1, (void)pa, (void)B, (void)ldb,
        (void)C, (void)ldc;
#endif
}
