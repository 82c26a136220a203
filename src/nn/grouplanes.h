/* The engine's own AVX-512 grouped convolution, output channels in the
 * vector lanes: ResNeXt's groups of 4 to 32 channels, RegNet's of 8 to 64;
 * and dense convolutions of few input channels on small maps (a group of
 * its own, split into items of one or two output blocks).
 *
 * As im2col and a product per group, a 7x7 group of 32 channels is a
 * 32 x 288 by 288 x 49 product: too small for the product's packing and
 * blocking to pay, and 32 of them a layer (ResNeXt-50's 7x7 and 14x14
 * grouped layers ran at a quarter of ONNX Runtime's speed); conv.c's
 * 8-wide direct kernel for narrow groups reached 50-75 GFLOP/s. Here a
 * group is computed directly: its input planes are copied once into
 * padded planes, and each tile of 16 or 32 output channels x 7 to 14
 * pixels of a row is held in registers while every (input channel, tap)
 * adds one weight vector (16 output channels) times one input pixel
 * broadcast to all lanes. The tiles, pixels of 16 channels, are
 * transposed back into the output planes with the bias, the residual and
 * the clamp. The weights are packed once at load (nn_grouplanes_pack), 16
 * output channels a block, tap after tap. Groups of fewer than 16 output
 * channels leave lanes idle and still run faster than the 8-wide kernel
 * (ResNeXt's 4 on 56x56 0.53-0.62 -> 0.44-0.48 ms, 8 on 28x28 0.38-0.55
 * -> 0.22-0.31 ms; RegNetY-400MF's 8, whole model batch 1 6.45 -> 5.32 ms;
 * 2 threads, AMD EPYC Zen 5). */
#ifndef NN_GROUPLANES_H
#define NN_GROUPLANES_H

#include <stddef.h>

#include "cpu.h"
#include "dwconv.h"

#define NN_GROUPLANES_BLOCK 16  /* output channels a block: the vector's lanes */
#define NN_GROUPLANES_MIN_MG 4  /* narrower groups keep conv.c's grouped kernel */
#define NN_GROUPLANES_MAX_CG 64 /* wider ones stay products (their weights fill L1) */

/* Rows of output an item takes on large maps: as many as keep its padded
 * planes within this many floats (in L2), so that the scratch stays small
 * on any input size and an item computes on what it just copied. Smaller
 * maps are one band. */
#define NN_GROUPLANES_BAND_FLOATS (64 * 1024)

/* Input channels one pass over a band's tiles takes: deeper groups run in
 * passes that add onto the tiles' partial sums, so that the weights and
 * planes a pass reads stay in L2 (ResNet-50's 512 -> 512 3x3s on 7x7,
 * 0.85-0.89 -> 0.80-0.95 ms; 14x14 -> 7x7 stride 2 0.98-1.09 ->
 * 0.95-0.98; 2 threads, Zen 5). */
#define NN_GROUPLANES_PASS_CHANNELS 64

typedef struct nn_grouplanes {
    nn_dwconv_geom_t g;
    int Cg, Mg, taps;
    int band, bands; /* output rows a band takes (the last may take fewer), bands */
    int Hb, Wq;      /* a band's padded planes: rows and columns the taps reach */
    int px[3];       /* pixels a tile of 1 and 2 output blocks takes (px[1], px[2]) */
    size_t plane;    /* floats of one padded plane */
    size_t planes;   /* floats of the group's planes and the slack tiles read */
    size_t out;      /* floats of one output block's tile buffer */
    size_t floats;   /* scratch of one item: planes, then two output blocks */
} nn_grouplanes_t;

/* Whether isa has this kernel for groups of Cg input and Mg output
 * channels (group > 1, not depthwise), or for a dense convolution (group
 * 1) of at most NN_GROUPLANES_DENSE_MAX_CG input channels with taps > 1
 * on a map of at most NN_GROUPLANES_DENSE_MAX_OUTPUTS outputs (outputs <
 * 0: unknown): SqueezeNet's 13x13 expands, DenseNet's and GoogLeNet's
 * 14x14 and 7x7 3x3s, ResNet's 7x7 ones. On larger maps convflat.h's
 * kernel does as well: DenseNet's 128 -> 32 on 56x56 and 28x28, 4.4 and
 * 2.5 ms a block either way in bands of rows (4.2 -> 7.2 and 2.1 -> 3.5
 * before, when each item zeroed and filled 1.7 MB of planes). Decided at load: the kernel works for
 * every map size, stride, dilation and padding. */
/* (ResNet's 512 -> 512 on 7x7: 0.90-0.94 -> 0.80-0.86 ms, ORT 0.80;
 * resnet18 batch 1 11.25 -> 10.75 ms.) */
#define NN_GROUPLANES_DENSE_MAX_CG 512
#define NN_GROUPLANES_DENSE_MAX_OUTPUTS 400
/* Stride-1 3x3s this kernel takes rather than Winograd's (optimize.c):
 * those of at most this many output channels, or input channels
 * (DenseNet's 128 -> 32 on 14x14, 24 layers: 1.38 -> 1.07-1.29 ms at
 * batch 1; GoogLeNet's 16 -> 48 0.045 -> 0.024 ms). */
#define NN_LANES_OVER_WINOGRAD_M 32
#define NN_LANES_OVER_WINOGRAD_C 64
int nn_grouplanes_suits(nn_isa_t isa, long group, long Cg, long Mg, long taps, long outputs);

/* Floats of one group's packed weights, and the packing: w holds the
 * group's Mg x Cg x taps weights (ONNX order); dst gets, per block of 16
 * output channels, per input channel, per tap, the block's 16 weights
 * (zero past Mg). */
size_t nn_grouplanes_weight_floats(int Cg, int Mg, int taps);
void nn_grouplanes_pack(const float *w, int Cg, int Mg, int taps, float *dst);

/* Fills d for one group's geometry and answers the floats of its scratch;
 * 0 where the geometry cannot take it (negative pads). */
size_t nn_grouplanes_init(nn_grouplanes_t *d, const nn_dwconv_geom_t *g, int Cg, int Mg);

/* Output blocks [b0, b1) (of 16 channels; the last may be partial) of
 * band `band` of output rows of one group of one image: x points at its
 * Cg input planes (H x W), w at its packed weights, bias at its Mg biases
 * (NULL: none), res and y at its Mg output planes (res NULL: none; it
 * may be y). y = clamp(conv + bias + res, lo, hi). scratch: d->floats
 * floats, 64-byte aligned, zeroed before the first item it serves (the
 * padding's columns are never written). */
void nn_grouplanes_run(const nn_grouplanes_t *d, const float *x, const float *w,
                       const float *bias, float lo, float hi, const float *res, float *y,
                       float *scratch, int b0, int b1, int band);

#endif
