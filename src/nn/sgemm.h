/* The engine's own single-precision products for convolutions:
 *
 *   C[M x N] = A[M x K] * B[K x N], then per row m and column n
 *   C = clamp(C + bias[m] + col_bias[n] + R[m][n], lo, hi)
 *
 * A (a layer's weights) is packed once, at load, into panels of
 * NN_SGEMM_MR rows, K-major, zero-padded to whole panels; B (activations,
 * row-major, row stride ldb) is packed as it is used, a group of strips
 * of NN_SGEMM_NR columns and a block of K at a time, into a buffer of the
 * caller's thread. The microkernel keeps an 8 x NR tile of C (half a
 * panel) in registers across a K block and applies bias, residual and
 * clamp before its last store, so each output is written once. Products
 * with few columns (14x14 and 7x7 maps) run along rows instead, B read
 * in place and K in blocks: whole 16-row panels are vectors there.
 *
 * Only the instruction sets nn_sgemm_has() names have these kernels (the
 * others go through OpenBLAS): weights are packed for them at load when
 * the model's instruction set has them, and whatever reads a packing runs
 * them. */
#ifndef NN_SGEMM_H
#define NN_SGEMM_H

#include <stddef.h>

#include "cpu.h"

#define NN_SGEMM_MR 16   /* rows of A per panel (callers split rows by it) */
#define NN_SGEMM_NR 48   /* columns of C per tile: three 16-float vectors */

/* Whether isa has these kernels. */
int nn_sgemm_has(nn_isa_t isa);

/* Floats of A packed (M rows rounded up to whole panels, times K). */
size_t nn_sgemm_packed_floats(int M, int K);

/* Packs A (M x K, row stride lda) into dst (nn_sgemm_packed_floats). */
void nn_sgemm_pack_a(const float *A, int lda, int M, int K, float *dst);

/* Floats of the per-thread buffer nn_sgemm takes (a group of B's strips:
 * 192 KiB, within L2 and well within a thread's stack). */
#define NN_SGEMM_BUFFER_FLOATS (1024 * NN_SGEMM_NR)

/* What is added to each output before it is stored: bias[m] (NULL: none),
 * col_bias[n] (NULL: none), R[m * ldr + n] (NULL: none), then clamped to
 * [lo, hi]. accumulate: C
 * already holds values the product is added to (a residual read in
 * place); R must then be NULL. */
typedef struct nn_sgemm_epilogue {
    const float *bias;
    const float *col_bias; /* cbias[n] added to column n (NULL: none) */
    const float *res;
    int ldr;
    float lo, hi;
    int accumulate;
} nn_sgemm_epilogue_t;

/* Rows [m0, m1) of C (m0 a multiple of NN_SGEMM_MR) and all N columns,
 * from A packed for M rows and K columns (pa) and B. bias and res in epi
 * are indexed by absolute row, C by absolute row too (row stride ldc).
 * buf: NN_SGEMM_BUFFER_FLOATS floats, 64-byte aligned. K >= 1. Only where
 * nn_sgemm_has() holds for the CPU. */
void nn_sgemm(int m0, int m1, int N, int K, const float *pa, const float *B, int ldb,
              float *C, int ldc, const nn_sgemm_epilogue_t *epi, float *buf);

/* Products at most this wide run along rows (the narrow products above). */
#define NN_SGEMM_NARROW_N 208

/* Part of a narrow product (N <= NN_SGEMM_NARROW_N): rows [m0, m1) of
 * A[:, k0:k1] * B[k0:k1, :], stored as they are (no epilogue). pa is A
 * packed for all K columns, B its row 0. Threads that each take a share
 * of a deep product's K (the channels their own core wrote) sum their
 * parts after. */
void nn_sgemm_part(int m0, int m1, int N, int K, int k0, int k1, const float *pa,
                   const float *B, int ldb, float *C, int ldc);

/* Products that share A, one per image: image i reads B + i * bstride,
 * writes C + i * cstride and adds epi's residual at res + i * rstride
 * (bias and col_bias are the same for all). Each block of A serves every
 * image while it is in cache: a layer's weights are read once for the
 * images of a batch, not once per image. */
typedef struct nn_sgemm_images {
    int count;
    size_t bstride, cstride, rstride;
} nn_sgemm_images_t;

void nn_sgemm_images(int m0, int m1, int N, int K, const float *pa, const float *B,
                     int ldb, float *C, int ldc, const nn_sgemm_epilogue_t *epi,
                     const nn_sgemm_images_t *im, float *buf);

/* Few rows against weights stored row by row (a fully connected layer
 * on a small batch, Gemm with transB): Y[m][n] = alpha * sum_k X[m][k] *
 * W[n][k] + beta * Y[m][n] for m < M, n < N. Each row of W is read once
 * for up to 8 rows of X (held in L1), two rows of W at a time; nothing is
 * packed, so the weights stream from memory once. beta 0 ignores what Y
 * held. Only where nn_sgemm_has() holds for the CPU. */
void nn_sgemm_dots(int M, int N, int K, float alpha, const float *X, int ldx, const float *W,
                   int ldw, float beta, float *Y, int ldy);

#endif
