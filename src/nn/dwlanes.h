/* The engine's own AVX-512 depthwise convolution with the channels in the
 * vector lanes, for small maps (MobileNet's and EfficientNet's 28x28 to
 * 7x7 layers).
 *
 * One plane at a time, a 7x7 map is 4 vectors of outputs behind a padded
 * copy, a compress and a masked store each: the work around the 36
 * multiply-adds costs more than they do. Here a block of 16 channels of
 * one image is transposed, 16 pixels at a time in registers, into a
 * padded map of pixels whose 16 floats are the block's channels (NHWC16,
 * as MLAS and oneDNN keep their activations); each output pixel is then
 * kh x kw aligned loads and multiply-adds, eight pixels of a row
 * together, with no masks and no row ends; the outputs are transposed
 * back into the planes with the residual and the clamp on the way. The
 * layout changes stay inside the call: the rest of the engine keeps its
 * planes. The same layout serves max pools (nn_dwlanes_max_block). */
#ifndef NN_DWLANES_H
#define NN_DWLANES_H

#include <stddef.h>

#include "dwconv.h"

#define NN_DWLANES_BLOCK 16   /* channels a block takes: the vector's lanes */
#define NN_DWLANES_MAX_TAPS 64

/* Largest maps (outputs) each use takes. Depthwise layers and strided
 * pools of at most 16 x 16: on larger ones the kernel runs faster alone,
 * but slower in a model, where a block's 16 planes come from memory
 * written by other layers (EfficientNet-B0 and MobileNetV2 per layer, 2
 * threads, AMD EPYC Zen 5: 14x14 and 7x7 layers 1.3-2.5x faster than
 * planes, 28x28 equal, 56x56 and 112x112 up to 1.3x slower; SqueezeNet's
 * 3x3 stride-2 pool 55x55 -> 27x27 0.09 -> 0.13 ms against pool.c's
 * stride-2 rows). Stride-1 pools up to 32 x 32: GoogLeNet's 3x3 on 28x28
 * at batch 8 ran 1.1 -> 0.8-1.0 ms, on 14x14 0.9 -> 0.45, 7x7 0.9 -> 0.17,
 * against pool.c's whole-plane loops. */
#define NN_DWLANES_MAX_OUTPUTS 256
#define NN_DWLANES_POOL_S1_OUTPUTS 1024

typedef struct nn_dwlanes {
    nn_dwconv_geom_t g;
    int Hq, Wq;       /* padded map the taps reach: rows, pixels a row */
    size_t map;       /* floats of the padded map and its slack */
    size_t floats;    /* floats of a block's scratch: the map, then the outputs */
} nn_dwlanes_t;

/* Fills d and answers the floats of one block's scratch where isa has
 * this kernel for g and g has at most max_outputs outputs (above); 0
 * where not. */
size_t nn_dwlanes_init(nn_dwlanes_t *d, nn_isa_t isa, const nn_dwconv_geom_t *g,
                       int max_outputs);

/* Channels [0, n) of a block (n <= 16) of one image: x, res and y point at
 * the first channel's plane (H x W, and Ho x Wo: consecutive planes), k at
 * its kh x kw taps (consecutive per channel), bias at its bias (NULL:
 * none). y = clamp(conv + bias + res, lo, hi); res NULL: none (it may be
 * y). scratch: d->floats floats, zeroed before the first block it serves
 * (the map's border is never written). */
void nn_dwlanes_block(const nn_dwlanes_t *d, int n, const float *x, const float *k,
                      const float *bias, float lo, float hi, const float *res, float *y,
                      float *scratch);

/* Max pooling in the same layout (g's taps are the window; GoogLeNet's
 * and SqueezeNet's 3x3 pools on maps of 14x14 and below): y = the
 * maximum over each window, a NaN winning; positions in the padding (and
 * past the input in ceil mode) count as -inf. scratch: d->floats floats
 * whose map the caller filled with nn_dwlanes_clear(d, scratch, -INFINITY)
 * before the first block it serves. */
void nn_dwlanes_max_block(const nn_dwlanes_t *d, int n, const float *x, float *y,
                          float *scratch);

/* Sets the padded map of scratch (its first d->map floats) to border. */
void nn_dwlanes_clear(const nn_dwlanes_t *d, float *scratch, float border);

#endif
