/* The engine's own AVX-512 depthwise planes; see dwconv.h. */
#include "dwconv.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#define NN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
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
