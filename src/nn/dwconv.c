/* The engine's own AVX-512 depthwise planes; see dwconv.h. */
#include "dwconv.h"

#include "avx512.h"

#include <stdint.h>

int nn_dwconv_has(nn_isa_t isa, int sw, int dw)
{
#if defined(__x86_64__)
    return isa >= NN_ISA_AVX512 && (sw == 1 || (sw == 2 && dw == 1));
#else
    (void)isa, (void)sw, (void)dw;
    return 0;
#endif
}

#if defined(__x86_64__)

#define GROUP 4 /* vectors computed together: independent accumulators */

/* KH, KW, SW are constants in the common callers (the taps unroll), 0 in
 * the general one (read from a). */
static inline __attribute__((always_inline)) NN_AVX512 void
plane_body(const nn_dwconv_plane_t *a, const int KH, const int KW, const int SW)
{
    const int kh = KH ? KH : a->kh, kw = KW ? KW : a->kw, sw = SW ? SW : a->sw;
    const int Wp = a->Wp, Wh = a->Wh, Wo = a->Wo, dh = a->dh, dw = a->dw;
    const int nv = (Wo + 15) / 16; /* vectors a row */
    const int total = a->Ho * nv;
    const int tail = Wo - 16 * (nv - 1);
    const __mmask16 tail_mask = (__mmask16)((1u << tail) - 1);
    const __m512 lo = _mm512_set1_ps(a->lo), hi = _mm512_set1_ps(a->hi);
    const __m512 bias = _mm512_set1_ps(a->bias);
    int oy = 0, v = 0; /* the group's first vector: row, vector in the row */
    for (int it = 0; it < total; it += GROUP) {
        const float *src[GROUP];
        size_t out[GROUP];
        __mmask16 m[GROUP];
        __m512 acc[GROUP];
#pragma GCC unroll 4
        for (int i = 0; i < GROUP; i++) {
            /* Past the end: a repeat of the last vector, masked off. */
            src[i] = a->xp + (size_t)oy * a->sh * Wp + 16 * v;
            out[i] = (size_t)oy * Wo + 16 * v;
            m[i] = it + i >= total ? 0 : v == nv - 1 ? tail_mask : (__mmask16)0xffff;
            acc[i] = bias;
            if (it + i + 1 < total && ++v == nv) /* no division: a counter */
                v = 0, oy++;
        }
#pragma GCC unroll 7
        for (int ky = 0; ky < kh; ky++) {
            const size_t row = (size_t)ky * dh * Wp;
#pragma GCC unroll 7
            for (int kx = 0; kx < kw; kx++) {
                const __m512 w = _mm512_set1_ps(a->k[ky * kw + kx]);
                const size_t off =
                    row + (sw == 1 ? (size_t)kx * dw : (size_t)(kx & 1) * Wh + (kx >> 1));
#pragma GCC unroll 4
                for (int i = 0; i < GROUP; i++)
                    acc[i] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m[i], src[i] + off),
                                             acc[i]);
                /* See flat_body: tap after tap, all accumulators. */
                __asm__("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < GROUP; i++) {
            __m512 x = acc[i];
            if (a->res) /* read before the store: res may be y */
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[i], a->res + out[i]));
            x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
            _mm512_mask_storeu_ps(a->y + out[i], m[i], x);
        }
    }
}

static NN_AVX512 void plane_3x3_s1(const nn_dwconv_plane_t *a) { plane_body(a, 3, 3, 1); }
static NN_AVX512 void plane_3x3_s2(const nn_dwconv_plane_t *a) { plane_body(a, 3, 3, 2); }
static NN_AVX512 void plane_5x5_s1(const nn_dwconv_plane_t *a) { plane_body(a, 5, 5, 1); }
static NN_AVX512 void plane_5x5_s2(const nn_dwconv_plane_t *a) { plane_body(a, 5, 5, 2); }
static NN_AVX512 void plane_7x7_s1(const nn_dwconv_plane_t *a) { plane_body(a, 7, 7, 1); }
static NN_AVX512 void plane_any(const nn_dwconv_plane_t *a) { plane_body(a, 0, 0, 0); }

#endif

/* ---- flat planes ---------------------------------------------------------------- */

int nn_flat_planes(nn_flat_planes_t *l, const nn_dwconv_geom_t *g)
{
    l->g = *g;
    if (g->sh == 1 && g->sw == 1) {
        l->Wq = g->Wo + (g->kw - 1) * g->dw; /* the padded plane the taps reach */
        l->Hq = g->Ho + (g->kh - 1) * g->dh;
        l->phases = 1;
    } else if (g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1) {
        l->Wq = (2 * (g->Wo - 1) + g->kw + 1) / 2; /* a quarter of it */
        l->Hq = (2 * (g->Ho - 1) + g->kh + 1) / 2;
        l->phases = 4;
    } else {
        return 0;
    }
    /* The last vectors of a group read up to 4 vectors and a row of taps
     * past a plane's end. */
    l->stride = (size_t)l->Hq * l->Wq + 64 + (size_t)g->kw * g->dw;
    return 1;
}

int nn_flat_tap(const nn_flat_planes_t *l, int ky, int kx)
{
    if (l->phases == 1)
        return ky * l->g.dh * l->Wq + kx * l->g.dw;
    return (int)(((ky & 1) * 2 + (kx & 1)) * l->stride) + (ky >> 1) * l->Wq + (kx >> 1);
}

size_t nn_dwconv_flat_floats(nn_isa_t isa, const nn_dwconv_geom_t *g)
{
#if defined(__x86_64__)
    nn_flat_planes_t l;
    if (isa < NN_ISA_AVX512 || !nn_flat_planes(&l, g) ||
        g->kh * g->kw > NN_DWCONV_FLAT_TAPS || g->pt < 0 || g->pl < 0)
        return 0;
    const long vectors = ((long)g->Ho * l.Wq + 15) / 16;
    const long row_vectors = (long)g->Ho * ((g->Wo + 15) / 16);
    if (vectors > NN_DWCONV_FLAT_VECTORS || vectors > row_vectors)
        return 0;
    return nn_flat_planes_floats(&l);
#else
    (void)isa, (void)g;
    return 0;
#endif
}

void nn_dwconv_flat_init(nn_dwconv_flat_t *f, const nn_dwconv_geom_t *g)
{
    nn_flat_planes(&f->l, g);
    const int Wq = f->l.Wq;
    f->taps = g->kh * g->kw;
    f->nvec = (g->Ho * Wq + 15) / 16;
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            f->off[ky * g->kw + kx] = nn_flat_tap(&f->l, ky, kx);
    const int total = g->Ho * Wq;
    int row = 0, col = 0; /* of the vector's first lane */
    for (int v = 0; v < f->nvec; v++) {
        f->dst[v] = row * g->Wo + (col < g->Wo ? col : g->Wo);
        unsigned mask = 0;
        for (int i = 0; i < 16; i++) {
            if (16 * v + i < total && col < g->Wo)
                mask |= 1u << i;
            if (++col == Wq)
                col = 0, row++;
        }
        f->mask[v] = (unsigned short)mask;
    }
}

#if defined(__x86_64__)

/* n floats of v (at most 16; lanes past n are zero) to d, cut to room.
 * A whole vector where its zeros may go past n: they land on padding not
 * yet written or on floats a later copy writes (masked stores cost more
 * than the copy on AMD's cores). */
static inline __attribute__((always_inline)) NN_AVX512 void put(float *d, int n, int room,
                                                                int tight, __m512 v)
{
    if (n <= room && !tight)
        _mm512_storeu_ps(d, v);
    else if (room > 0)
        _mm512_mask_storeu_ps(d, nn_lanes(n < room ? n : room), v);
}

static NN_AVX512 void flat_pad_avx512(const nn_flat_planes_t *f, const float *x, float *buf,
                                       int iy0, int iy1)
{
    const nn_dwconv_geom_t *g = &f->g;
    const int W = g->W, Wq = f->Wq;
    if (f->phases == 1) {
        const int n = W < Wq - g->pl ? W : Wq - g->pl;
        for (int iy = iy0; iy < iy1 && n > 0; iy++) {
            const int r = iy + g->pt;
            if (r >= f->Hq)
                break;
            const float *s = x + (size_t)iy * W;
            float *d = buf + (size_t)r * Wq + g->pl;
            /* Whole vectors spill zeros into the next row, which its own
             * copy writes later; not past a band's last row, whose next
             * one another thread may have written. */
            const int tight = iy == iy1 - 1 && iy1 < g->H;
            for (int i = 0; i < n; i += 16) {
                const __mmask16 m = nn_lanes(n - i);
                const __m512 v = _mm512_maskz_loadu_ps(m, s + i);
                if (tight)
                    _mm512_mask_storeu_ps(d + i, m, v);
                else
                    _mm512_storeu_ps(d + i, v);
            }
        }
        return;
    }
    /* Stride 2: input row iy is padded row r, in the phase planes of r's
     * parity; 32 floats at a time split into even and odd columns. */
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,
                                          6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int iy = iy0; iy < iy1; iy++) {
        const int r = iy + g->pt;
        if (r >> 1 >= f->Hq)
            break;
        const float *s = x + (size_t)iy * W;
        float *row = buf + (size_t)((r & 1) * 2) * f->stride + (size_t)(r >> 1) * Wq;
        /* The next row of each phase plane is two input rows on: a band's
         * last two store no spill (see the stride-1 loop). */
        const int tight = iy >= iy1 - 2 && iy1 < g->H;
        for (int ix = 0; ix < W; ix += 32) {
            const int n = W - ix < 32 ? W - ix : 32;
            const __m512 lo = _mm512_maskz_loadu_ps(nn_lanes(n), s + ix);
            const __m512 hi = _mm512_maskz_loadu_ps(nn_lanes(n - 16), s + ix + 16);
            const int ce = ix + g->pl, co = ce + 1; /* padded columns */
            const int ne = (n + 1) / 2, no = n / 2, re = Wq - (ce >> 1), ro = Wq - (co >> 1);
            put(row + (ce & 1) * f->stride + (ce >> 1), ne, re, tight,
                _mm512_permutex2var_ps(lo, even, hi));
            put(row + (co & 1) * f->stride + (co >> 1), no, ro, tight,
                _mm512_permutex2var_ps(lo, odd, hi));
        }
    }
}

/* KH, KW, S are constants in the common callers (dilation 1: every tap
 * at a constant offset from its row's start, the taps unroll, their
 * weights stay in registers), 0 in the general one (f->off). */
static inline __attribute__((always_inline)) NN_AVX512 void
flat_body(const nn_dwconv_flat_t *f, const float *buf, const float *k, float bias, float lo,
          float hi, const float *res, float *y, const int KH, const int KW, const int S)
{
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const size_t Wq = (size_t)f->l.Wq, stride = f->l.stride;
    /* Up to 16 taps' weights stay in registers; more would crowd out the
     * accumulators (gcc then ran each one's taps as one long chain), so
     * those are broadcast from k at each use, and k is hidden from gcc in
     * each iteration so that it does not hoist them all the same. */
    const int IN_REGS = KH * KW <= 16;
    __m512 w[KH && KW && IN_REGS ? KH * KW : 1];
    if (KH && KW && IN_REGS)
        for (int t = 0; t < KH * KW; t++)
            w[t] = _mm512_set1_ps(k[t]);
    for (int v0 = 0; v0 < f->nvec; v0 += GROUP) {
        const float *kv = k;
        __asm__("" : "+r"(kv));
        __m512 acc[GROUP];
#pragma GCC unroll 4
        for (int i = 0; i < GROUP; i++)
            acc[i] = vb;
        const float *src = buf + 16 * v0;
        if (KH && KW) {
#pragma GCC unroll 7
            for (int ky = 0; ky < KH; ky++) {
                /* The row's taps: stride 1, one plane; stride 2, the
                 * even-column and odd-column planes of ky's parity. */
                const float *row = S == 1 ? src + ky * Wq
                                          : src + (ky & 1) * 2 * stride + (ky >> 1) * Wq;
#pragma GCC unroll 7
                for (int kx = 0; kx < KW; kx++) {
                    const float *t = S == 1 ? row + kx : row + (kx & 1) * stride + (kx >> 1);
                    const __m512 wt = IN_REGS ? w[ky * KW + kx] : _mm512_set1_ps(kv[ky * KW + kx]);
#pragma GCC unroll 4
                    for (int i = 0; i < GROUP; i++)
                        acc[i] = _mm512_fmadd_ps(wt, _mm512_loadu_ps(t + 16 * i), acc[i]);
                    /* Tap after tap, all accumulators at once: left to
                     * itself gcc ran each one's taps as a chain of
                     * dependent multiply-adds. */
                    __asm__("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
                }
            }
        } else {
            for (int t = 0; t < f->taps; t++) {
                const __m512 wt = _mm512_set1_ps(kv[t]);
                const float *s = src + f->off[t];
#pragma GCC unroll 4
                for (int i = 0; i < GROUP; i++)
                    acc[i] = _mm512_fmadd_ps(wt, _mm512_loadu_ps(s + 16 * i), acc[i]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < GROUP; i++) {
            const int v = v0 + i;
            if (v >= f->nvec)
                break;
            const __mmask16 m = f->mask[v];
            if (!m)
                continue;
            const __mmask16 dense = nn_lanes(__builtin_popcount(m));
            __m512 x = _mm512_maskz_compress_ps(m, acc[i]);
            if (res) /* read before the store: res may be y */
                x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(dense, res + f->dst[v]));
            x = _mm512_min_ps(_mm512_max_ps(x, vlo), vhi);
            _mm512_mask_storeu_ps(y + f->dst[v], dense, x);
        }
    }
}

#define FLAT_KERNEL(name, KH, KW, S)                                                    \
    static NN_AVX512 void name(const nn_dwconv_flat_t *f, const float *buf, const float *k, \
                               float bias, float lo, float hi, const float *res, float *y) \
    {                                                                                   \
        flat_body(f, buf, k, bias, lo, hi, res, y, KH, KW, S);                          \
    }
FLAT_KERNEL(flat_3x3_s1, 3, 3, 1)
FLAT_KERNEL(flat_3x3_s2, 3, 3, 2)
FLAT_KERNEL(flat_5x5_s1, 5, 5, 1)
FLAT_KERNEL(flat_5x5_s2, 5, 5, 2)
FLAT_KERNEL(flat_any, 0, 0, 0)

#endif

void nn_flat_pad(const nn_flat_planes_t *l, const float *x, float *buf)
{
    nn_flat_pad_rows(l, x, buf, 0, l->g.H);
}

void nn_flat_pad_rows(const nn_flat_planes_t *l, const float *x, float *buf, int iy0, int iy1)
{
#if defined(__x86_64__)
    flat_pad_avx512(l, x, buf, iy0 < 0 ? 0 : iy0, iy1 > l->g.H ? l->g.H : iy1);
#else
    (void)l, (void)x, (void)buf, (void)iy0, (void)iy1;
#endif
}

void nn_dwconv_flat_plane(const nn_dwconv_flat_t *f, const float *buf, const float *k,
                          float bias, float lo, float hi, const float *res, float *y)
{
#if defined(__x86_64__)
    const nn_dwconv_geom_t *g = &f->l.g;
    const int plain = g->dh == 1 && g->dw == 1 && g->kh == g->kw;
    if (plain && g->kh == 3)
        (g->sh == 1 ? flat_3x3_s1 : flat_3x3_s2)(f, buf, k, bias, lo, hi, res, y);
    else if (plain && g->kh == 5)
        (g->sh == 1 ? flat_5x5_s1 : flat_5x5_s2)(f, buf, k, bias, lo, hi, res, y);
    else
        flat_any(f, buf, k, bias, lo, hi, res, y);
#else
    (void)f, (void)buf, (void)k, (void)bias, (void)lo, (void)hi, (void)res, (void)y;
#endif
}

void nn_dwconv_plane(const nn_dwconv_plane_t *a)
{
#if defined(__x86_64__)
    if (a->Ho <= 0 || a->Wo <= 0)
        return;
    const int square = a->kh == a->kw;
    if (square && a->kh == 3 && a->sw == 1)
        plane_3x3_s1(a);
    else if (square && a->kh == 3 && a->sw == 2)
        plane_3x3_s2(a);
    else if (square && a->kh == 5 && a->sw == 1)
        plane_5x5_s1(a);
    else if (square && a->kh == 5 && a->sw == 2)
        plane_5x5_s2(a);
    else if (square && a->kh == 7 && a->sw == 1)
        plane_7x7_s1(a);
    else
        plane_any(a);
#else
    (void)a;
#endif
}

/* ---- read in place (strides 1 and 2) ---------------------------------------------- */

/* Lanes [a, b) of 16 (none where b <= a). */
static unsigned short lanes_between(int a, int b)
{
    a = a < 0 ? 0 : a;
    b = b > 16 ? 16 : b;
    return b <= a ? 0 : (unsigned short)(((1u << b) - 1) & ~((1u << a) - 1));
}

int nn_dwconv_inplace_init(nn_dwconv_inplace_t *s, nn_isa_t isa, const nn_dwconv_geom_t *g,
                           int min_wo)
{
#if defined(__x86_64__)
    const int S = g->sw, K = g->kw;
    if (isa < NN_ISA_AVX512 || g->sh != S || (S != 1 && S != 2) || g->dh != 1 || g->dw != 1 ||
        g->kh != K || (K != 3 && K != 5 && !(S == 1 && K == 7)) || g->pt < 0 || g->pl < 0 ||
        g->pl >= 16 || g->Ho < 1 || g->Wo < min_wo || g->Wo < 1 ||
        g->Wo > NN_DWCONV_INPLACE_MAX_WO)
        return 0;
    s->g = *g;
    s->nv = (g->Wo + 15) / 16;
    for (int v = 0; v < s->nv; v++) {
        s->out[v] = lanes_between(0, g->Wo - 16 * v);
        const int loads = S == 1 ? K : (K + 1) / 2;
        for (int t = 0; t < loads; t++) {
            /* Input column of lane 0: tap t's (stride 1), pair t's first
             * tap's (stride 2). */
            const int c0 = S * 16 * v - g->pl + S * t;
            s->start[v][t] = c0;
            s->lo[v][t] = lanes_between(-c0, g->W - c0);
            s->hi[v][t] = lanes_between(-c0 - 16, g->W - c0 - 16);
        }
    }
    return 1;
#else
    (void)s, (void)isa, (void)g, (void)min_wo;
    return 0;
#endif
}

#if defined(__x86_64__)

/* Row's floats from column start on: an address formed as an integer,
 * since a start left of the row (in the padding) is only read through
 * masked-off lanes. */
static inline const float *column(const float *row, int start)
{
    return (const float *)((uintptr_t)row + (uintptr_t)(intptr_t)start * sizeof(float));
}

/* ROWS (1 or 2) output rows from oy at stride S: they share all but S of
 * their input rows, each loaded once. Stride 1: a load a tap; stride 2: a
 * pair of loads per pair of taps (2l, 2l + 1), split into even and odd
 * columns. EDGE: some rows of taps fall in the padding (skipped). Each
 * output row sums its rows of taps in accumulators of their own, so that
 * its multiply-adds do not wait on each other. */
static inline __attribute__((always_inline)) NN_AVX512 void
inplace_rows(const nn_dwconv_inplace_t *r, const float *x, const float *k, __m512 vb,
             __m512 vlo, __m512 vhi, const float *res, float *y, int oy, const int K,
             const int S, const int ROWS, const int EDGE)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6,
                                          4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5,
                                         3, 1);
    const nn_dwconv_geom_t *g = &r->g;
    const int loads = S == 1 ? K : (K + 1) / 2, iy0 = S * oy - g->pt;
    for (int v = 0; v < r->nv; v++) {
        __m512 a[2][NN_DWCONV_INPLACE_TAPS];
#pragma GCC unroll 2
        for (int h = 0; h < ROWS; h++)
#pragma GCC unroll 7
            for (int ky = 0; ky < K; ky++)
                a[h][ky] = ky ? _mm512_setzero_ps() : vb;
#pragma GCC unroll 8
        for (int t = 0; t < K + S * (ROWS - 1); t++) {
            const int iy = iy0 + t;
            if (EDGE && (iy < 0 || iy >= g->H))
                continue;
            const float *row = x + (size_t)iy * g->W;
#pragma GCC unroll 7
            for (int l = 0; l < loads; l++) {
                const float *at = column(row, r->start[v][l]);
                __m512 in[2];
                in[0] = _mm512_maskz_loadu_ps(r->lo[v][l], at);
                if (S == 2) {
                    const __m512 b = _mm512_maskz_loadu_ps(r->hi[v][l], at + 16);
                    in[1] = _mm512_permutex2var_ps(in[0], odd, b);
                    in[0] = _mm512_permutex2var_ps(in[0], even, b);
                }
#pragma GCC unroll 2
                for (int j = 0; j < S; j++) {
                    const int kx = S * l + j;
#pragma GCC unroll 2
                    for (int h = 0; h < ROWS; h++) {
                        const int ky = t - S * h;
                        if (kx < K && ky >= 0 && ky < K)
                            a[h][ky] = _mm512_fmadd_ps(_mm512_set1_ps(k[ky * K + kx]), in[j],
                                                       a[h][ky]);
                    }
                }
            }
        }
        const __mmask16 m = r->out[v];
#pragma GCC unroll 2
        for (int h = 0; h < ROWS; h++) {
#pragma GCC unroll 7
            for (int ky = 1; ky < K; ky++)
                a[h][0] = _mm512_add_ps(a[h][0], a[h][ky]);
            const size_t at = (size_t)(oy + h) * g->Wo + 16 * v;
            __m512 z = a[h][0];
            if (res) /* read before the store: res may be y */
                z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(m, res + at));
            z = _mm512_min_ps(_mm512_max_ps(z, vlo), vhi);
            _mm512_mask_storeu_ps(y + at, m, z);
        }
    }
}

static inline __attribute__((always_inline)) NN_AVX512 void
inplace_body(const nn_dwconv_inplace_t *r, const float *x, const float *k, float bias, float lo,
             float hi, const float *res, float *y, const int K, const int S)
{
    const nn_dwconv_geom_t *g = &r->g;
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    int oy = 0;
    for (; oy + 1 < g->Ho; oy += 2) {
        const int iy0 = S * oy - g->pt;
        if (iy0 >= 0 && iy0 + K + S <= g->H)
            inplace_rows(r, x, k, vb, vlo, vhi, res, y, oy, K, S, 2, 0);
        else
            inplace_rows(r, x, k, vb, vlo, vhi, res, y, oy, K, S, 2, 1);
    }
    if (oy < g->Ho)
        inplace_rows(r, x, k, vb, vlo, vhi, res, y, oy, K, S, 1, 1);
}

#define INPLACE_KERNEL(name, K, S)                                                      \
    static NN_AVX512 void name(const nn_dwconv_inplace_t *r, const float *x, const float *k, \
                               float bias, float lo, float hi, const float *res, float *y) \
    {                                                                                   \
        inplace_body(r, x, k, bias, lo, hi, res, y, K, S);                              \
    }
INPLACE_KERNEL(s1_3x3, 3, 1)
INPLACE_KERNEL(s1_5x5, 5, 1)
INPLACE_KERNEL(s1_7x7, 7, 1)
INPLACE_KERNEL(s2_3x3, 3, 2)
INPLACE_KERNEL(s2_5x5, 5, 2)

#endif

void nn_dwconv_inplace_plane(const nn_dwconv_inplace_t *s, const float *x, const float *k,
                             float bias, float lo, float hi, const float *res, float *y)
{
#if defined(__x86_64__)
    const int K = s->g.kw;
    if (s->g.sw == 1)
        (K == 3 ? s1_3x3 : K == 5 ? s1_5x5 : s1_7x7)(s, x, k, bias, lo, hi, res, y);
    else
        (K == 3 ? s2_3x3 : s2_5x5)(s, x, k, bias, lo, hi, res, y);
#else
    (void)s, (void)x, (void)k, (void)bias, (void)lo, (void)hi, (void)res, (void)y;
#endif
}
