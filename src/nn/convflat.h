/* The engine's own direct convolution (AVX-512) for a network's stem (3
 * input channels, 3x3 or 7x7, stride 2) and other
 * convolutions on maps of 512 outputs or more with at most 2304
 * multiply-adds per output (ResNet's stride-2 3x3s).
 *
 * Unfolding these (im2col) writes kh x kw copies of the input, and the
 * product then copies each strip again to pack it: for shallow products
 * (27 deep for a stem) the copies cost as much as the multiply-adds. Here each
 * input channel is padded once into flat planes (dwconv.h: rows Wq floats
 * apart; stride 2, four phase planes), where the input of tap (c, ky, kx)
 * for a run of consecutive outputs is a run of consecutive floats. So row
 * k of the product's right-hand side is a fixed offset into those planes:
 * the microkernel (8 output channels x 48 outputs, the weights packed at
 * load as for nn_sgemm) reads it in place. Outputs are computed along the
 * flat planes, across row ends, and each vector's valid lanes (columns
 * before Wo) are compressed into the dense output rows; bias and clamp
 * are applied before that single store.
 *
 * 1x1 kernels stay with the unfolding paths: their taps share no input,
 * so the planes save nothing, and a stride-2 one would pad all four
 * phase planes to read one of them. ResNet-50's 256 -> 512 on 56x56
 * stride 2 took 1.22 ms here and 0.93 unfolded, ResNet-18's 64 -> 128
 * 0.12 and 0.06 (Intel Xeon Sapphire Rapids, 2 threads). */
#ifndef NN_CONVFLAT_H
#define NN_CONVFLAT_H

#include <stddef.h>

#include "dwconv.h"

#define NN_CONVFLAT_MAX_K 2304 /* deepest product (C x kh x kw) */
#define NN_CONVFLAT_MIN_OUTPUTS 512 /* smaller maps: the unfolding paths do well */
/* Stride-1 3x3 products at most this deep (32 input channels) take this
 * kernel rather than Winograd's, whose products are too shallow there
 * (SqueezeNet's 32 -> 128 on 27x27, batch 8: 2.18 -> 1.35 ms); deeper
 * ones gain more from Winograd's fewer multiplies (128 -> 128 on 28x28,
 * 0.66 ms here, 0.59 with F(4x4, 3x3); 64 -> 64 on 56x56, 1.26 and
 * 0.65). */
#define NN_CONVFLAT_OVER_WINOGRAD_K 288
/* ... and those of at most this many output channels, at any depth this
 * kernel takes: Winograd's transforms of the input cost as much for 32
 * outputs as for 256 (DenseNet's 128 -> 32, 6 layers on 56x56 and 12 on
 * 28x28: batch 1, 5.5 -> 4.3 and 3.2 -> 2.5 ms). */
#define NN_CONVFLAT_OVER_WINOGRAD_M 32
#define NN_CONVFLAT_OVER_WINOGRAD_OUTPUTS 512 /* ... on maps this large */

typedef struct nn_convflat {
    nn_flat_planes_t plane; /* one input channel's flat layout */
    int C, M, K;
    size_t chan;            /* floats of one channel's planes */
    int Q;                  /* outputs along the flat planes (Ho x Wq) */
    int off[NN_CONVFLAT_MAX_K]; /* row k's first float in the planes */
} nn_convflat_t;

/* Floats of one image's padded planes where isa has this kernel and it
 * suits g with C input channels (group 1, stride 1, or 2 without
 * dilation, a deep enough and wide enough map); 0 where not. */
size_t nn_convflat_floats(nn_isa_t isa, const nn_dwconv_geom_t *g, int C);

/* Fills f (nn_convflat_floats() > 0) for M output channels. */
void nn_convflat_init(nn_convflat_t *f, const nn_dwconv_geom_t *g, int C, int M);

/* Pads input rows [iy0, iy1) of channel c of an image (H x W floats at
 * x) into its planes in buf, whose padding the caller zeroed once
 * (nn_convflat_floats floats). */
void nn_convflat_pad(const nn_convflat_t *f, int c, const float *x, int iy0, int iy1,
                     float *buf);

/* Outputs [q0, q1) along the flat planes (q0 a multiple of 48) for
 * output channels [m0, m1) (m0 a multiple of 16) of one image: y (M
 * dense planes of Ho x Wo) = clamp(pa * planes + bias, lo, hi). pa: the
 * weights packed by nn_sgemm_pack_a (M x K); bias NULL: none. */
void nn_convflat_run(const nn_convflat_t *f, const float *buf, const float *pa,
                     const float *bias, float lo, float hi, int m0, int m1, int q0,
                     int q1, float *y);

/* First dense output of flat position q in each output plane. */
int nn_convflat_dense(const nn_convflat_t *f, int q);

#endif
