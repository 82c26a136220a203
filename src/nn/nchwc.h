/* The blocked activation layout (NCHWc, c = 16) and its convolution, as
 * MLAS (ONNX Runtime) and oneDNN keep activations on AVX-512 CPUs.
 *
 * A blocked tensor of C channels is [N, CB, H, W, 16] with CB = C rounded
 * up to 16 and divided by 16: pixel (h, w) of channel 16 cb + j is at
 * ((n CB + cb) H + h) W + w) 16 + j. Each pixel's 16 channels are one
 * vector, so a convolution keeps output channels in the vector lanes and
 * broadcasts input pixels: no packing of the activations (the engine's
 * NCHW products pack B on every run) and no lanes lost on 7x7 maps. The
 * channels past C in the last block are zero when a convolution or a
 * reorder wrote them and finite in any case (weights past C are zero).
 *
 * The convolution reads a blocked input or a plain NCHW one (the graph's
 * first layer: 3 channels; or the output of a layer that stays in NCHW),
 * and always writes a blocked output, with bias, residual (blocked, as
 * the output) and a clamp (Relu, Clip) applied before the one store. Only
 * where nn_nchwc_has() holds. */
#ifndef NN_NCHWC_H
#define NN_NCHWC_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

#define NN_NCHWC 16

/* Whether isa has the blocked kernels. */
int nn_nchwc_has(nn_isa_t isa);

/* Blocks of 16 for c channels. */
static inline int64_t nn_nchwc_blocks(int64_t c)
{
    return (c + NN_NCHWC - 1) / NN_NCHWC;
}

/* One image: plain planes x [C, HW] into blocked y [CB, HW, 16] (pixels
 * [p0, p1) of every block; channels past C zero), and back. */
void nn_nchwc_to_blocked(const float *x, int C, size_t HW, float *y, size_t p0, size_t p1);
void nn_nchwc_to_planes(const float *x, int C, size_t HW, float *y, size_t p0, size_t p1);

/* A 2-D convolution (group 1, dilation 1) from x to blocked y. */
typedef struct nn_nchwc_conv {
    int C, H, W;        /* input channels and map */
    int M, Ho, Wo;      /* output channels and map */
    int kh, kw, sh, sw; /* kernel, strides */
    int pt, pl;         /* padding before rows and columns */
    int in_blocked;     /* x is blocked (else NCHW planes) */
    int clamp;          /* apply [lo, hi] */
    float lo, hi;
} nn_nchwc_conv_t;

/* Floats of W [M, C, kh, kw] packed for the kernel: [CBo, CBi, kh, kw,
 * 16 input channels, 16 output channels], zero past M and C. */
size_t nn_nchwc_weight_floats(int M, int C, int kh, int kw);
void nn_nchwc_pack_weights(const float *w, int M, int C, int kh, int kw, float *dst);

/* Output channel blocks [cb0, cb1) and output
 * pixels [q0, q1) (row-major over Ho x Wo) of `images` images: x the first
 * image's input, y its blocked output, res its residual (as y; NULL: none;
 * may not be y), the next images xs and ys floats on; bias CBo * 16 floats
 * or NULL. Each chunk of weights serves all the images while in L1. */
void nn_nchwc_conv(const nn_nchwc_conv_t *p, const float *x, const float *w, const float *bias,
                   const float *res, float *y, int cb0, int cb1, int64_t q0, int64_t q1,
                   int images, size_t xs, size_t ys);

/* A depthwise convolution (a group a channel, dilation 1; p's C = M) of
 * blocked x into blocked y, with bias and clamp: weights packed [CB, kh,
 * kw, 16] (zero past C). Output rows [oh0, oh1) of one block's plane: x
 * the block's input plane, w its kh x kw x 16 weights, bias its 16 or
 * NULL. */
size_t nn_nchwc_dw_weight_floats(int C, int kh, int kw);
void nn_nchwc_pack_dw_weights(const float *w, int C, int kh, int kw, float *dst);
void nn_nchwc_dwconv(const nn_nchwc_conv_t *p, const float *x, const float *w, const float *bias,
                     float *y, int oh0, int oh1);

/* A 2-D max pool (dilation 1) of blocked x into blocked y: taps in the
 * padding are left out; a NaN in a window wins, as in the plain pools. */
typedef struct nn_nchwc_pool {
    int H, W, Ho, Wo; /* input and output maps */
    int kh, kw, sh, sw, pt, pl;
} nn_nchwc_pool_t;

/* Output rows [oh0, oh1) of one block's plane: x its H x W x 16 input
 * floats, y its Ho x Wo x 16 output. */
void nn_nchwc_maxpool(const nn_nchwc_pool_t *p, const float *x, float *y, int oh0, int oh1);

/* The mean of each of the n <= 16 channels of one block's plane x (HW
 * pixels) into y[0 .. n). */
void nn_nchwc_mean(const float *x, size_t HW, int n, float *y);

#endif
