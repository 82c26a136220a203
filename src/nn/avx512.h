/* What the engine's own AVX-512 kernels share (x86-64 only): the target
 * attribute their functions are compiled with, and the step of the 8 x 48
 * product tile that sgemm.c (packed strips) and convflat.c (flat planes)
 * both run. */
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
#endif

#endif
