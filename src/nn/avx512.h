/* What the engine's own AVX-512 kernels share (x86-64 only): the target
 * attribute their functions are compiled with, the step of the 8 x 48
 * product tile that sgemm.c (packed strips) and convflat.c (flat planes)
 * both run, a lane mask, a NaN-keeping maximum, a 16 x 16 transpose and
 * the way back from pixels of 16 channels to planes. */
#ifndef NN_AVX512_H
#define NN_AVX512_H

#if defined(__x86_64__)
#include <immintrin.h>

#define NN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

#define NN_TILE_ROWS 8 /* rows of a product tile: half a 16-row packed panel */

/* acc[r][v] += a[r] * b[v] for r < NN_TILE_ROWS and v < NV (1 to 3): one
 * k of the tile, a[] from a packed panel, b[] one row of 16 * NV columns.
 * NV is a constant in the callers, so the unused vectors vanish. */
static inline __attribute__((always_inline)) NN_AVX512 void
nn_tile_step(__m512 acc[NN_TILE_ROWS][3], const float *a, __m512 b0, __m512 b1, __m512 b2,
             const int NV)
{
#pragma GCC unroll 8
    for (int r = 0; r < NN_TILE_ROWS; r++) {
        const __m512 ar = _mm512_set1_ps(a[r]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        if (NV > 1)
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        if (NV > 2)
            acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
    }
}

/* The first n lanes of a vector (none for n <= 0, all for n >= 16). */
static inline __attribute__((always_inline)) NN_AVX512 __mmask16 nn_lanes(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
}

/* max(acc, v), a NaN in either winning (as the scalar pools): maxps
 * answers its second operand when either is a NaN, which loses one in
 * acc. */
static inline __attribute__((always_inline)) NN_AVX512 __m512 nn_max_nan(__m512 acc, __m512 v)
{
    const __m512 m = _mm512_max_ps(acc, v);
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q), acc);
}

/* A 16 x 16 transpose in registers: r[i] lane j becomes r[j] lane i. */
static inline __attribute__((always_inline)) NN_AVX512 void nn_transpose16(__m512 r[16])
{
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* pairs of rows, interleaved per 128 bits */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* quads: in 128-bit lane L, column 4L + j */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* 128-bit lanes of quads 0 and 1, 2 and 3 */
        const int a = (i / 4) * 8 + i % 4;
        t[a] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0x88);
        t[a + 4] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0xdd);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* Rows [0, rows) of 16 (ld floats apart from src, the lanes m of each;
 * the rest zero), transposed: r[j] lane i is row i's float j. */
static inline __attribute__((always_inline)) NN_AVX512 void
nn_load_transposed(__m512 r[16], const float *src, size_t ld, int rows, __mmask16 m)
{
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(m, src + (size_t)i * ld) : _mm512_setzero_ps();
    nn_transpose16(r);
}

/* Pixels of 16 channels (out: P of them, 16 floats each, 64-byte aligned
 * and readable up to 15 pixels past P) back into planes [0, n) of y
 * (stride floats apart), with the residual planes res (as y) added (NULL:
 * none; it may be y) and the clamp [lo, hi] (CLAMP 0: as they are, a NaN
 * kept). FULL and CLAMP are constants in the callers. */
static inline __attribute__((always_inline)) NN_AVX512 void
nn_lanes_to_planes(const float *out, int P, size_t stride, int n, float lo, float hi,
                   const float *res, float *y, const int FULL, const int CLAMP)
{
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int q0 = 0; q0 < P; q0 += 16) {
        const __mmask16 m = nn_lanes(P - q0);
        __m512 r[16];
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++)
            r[k] = _mm512_load_ps(out + (size_t)(q0 + k) * 16);
        nn_transpose16(r);
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) {
            if (!FULL && c >= n)
                break;
            __m512 v = r[c];
            if (res) /* read before the store: res may be y */
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + c * stride + q0));
            if (CLAMP)
                v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
            _mm512_mask_storeu_ps(y + c * stride + q0, m, v);
        }
    }
}

/* The same for n and clamp known only at run time: each of the four
 * variants compiled once. */
static inline NN_AVX512 void nn_lanes_to_planes_any(const float *out, int P, size_t stride, int n,
                                                    float lo, float hi, const float *res,
                                                    float *y, int clamp)
{
    if (n == 16 && clamp)
        nn_lanes_to_planes(out, P, stride, n, lo, hi, res, y, 1, 1);
    else if (n == 16)
        nn_lanes_to_planes(out, P, stride, n, lo, hi, res, y, 1, 0);
    else if (clamp)
        nn_lanes_to_planes(out, P, stride, n, lo, hi, res, y, 0, 1);
    else
        nn_lanes_to_planes(out, P, stride, n, lo, hi, res, y, 0, 0);
}

#endif

#endif
