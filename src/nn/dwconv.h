/* The engine's own AVX-512 depthwise planes: one output plane of a
 * depthwise convolution from its padded input plane (conv.c pads it).
 *
 * The plane's outputs are cut into 16-wide vectors along each row (the
 * last one of a row masked), and four vectors, of one row or of the next
 * rows, are computed together: four independent accumulators keep the
 * multiply-adds from waiting on each other, and a map 7 or 14 wide still
 * runs whole vectors with no scalar tail. Bias, a residual plane and a
 * clamp are applied before the single store. */
#ifndef NN_DWCONV_H
#define NN_DWCONV_H

#include "cpu.h"

typedef struct nn_dwconv_plane {
    const float *xp;  /* padded input plane, Wp floats a row */
    int Wp, Wh;       /* row stride; stride 2: offset of the odd columns */
    int Ho, Wo;       /* output plane */
    int kh, kw, sh, sw, dh, dw;
    const float *k;   /* kh x kw taps */
    float bias, lo, hi;
    const float *res; /* residual plane (Ho x Wo, may be y), or NULL */
    float *y;
} nn_dwconv_plane_t;

/* Whether isa has a kernel for this geometry: stride 1 (any dilation), or
 * stride 2 on de-interleaved rows (even columns, then odd ones Wh floats
 * on; dilation 1 along the row). */
int nn_dwconv_has(nn_isa_t isa, int sw, int dw);

/* One output plane; only where nn_dwconv_has() holds. */
void nn_dwconv_plane(const nn_dwconv_plane_t *a);

/* Flat planes, for small maps (56x56 and below). Rows of 7 or 14 outputs
 * fill a 16-wide vector badly, and copying a plane row by row into its
 * padded slot costs more than the taps on it. Here the padded plane is
 * one flat array of rows Wq floats apart (stride 2: four phase planes,
 * even and odd rows times even and odd columns, so that every tap reads
 * consecutive floats), and the outputs are computed in 16-wide vectors
 * along that array, across row ends: a vector of a 7x7 map covers almost
 * two rows. Each vector's valid lanes (the columns before Wo) are then
 * compressed into the dense output plane. */
#define NN_DWCONV_FLAT_VECTORS 256 /* most vectors a flat plane takes */
#define NN_DWCONV_FLAT_TAPS 64

typedef struct nn_dwconv_geom {
    int H, W, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl;
} nn_dwconv_geom_t;

/* One input channel's flat planes: the layout both flat kernels pad into
 * (this file's depthwise planes and convflat.h's direct convolution). */
typedef struct nn_flat_planes {
    nn_dwconv_geom_t g;
    int Wq, Hq;        /* row stride and rows of a (phase) plane */
    int phases;        /* 1, or 4 for stride 2 */
    size_t stride;     /* floats from one phase plane to the next */
} nn_flat_planes_t;

/* Fills l for g; 0 where g has no flat layout (stride 1, or 2 without
 * dilation, have one). */
int nn_flat_planes(nn_flat_planes_t *l, const nn_dwconv_geom_t *g);

/* Floats of one channel's planes, every phase and the slack past them. */
static inline size_t nn_flat_planes_floats(const nn_flat_planes_t *l)
{
    return (size_t)l->phases * l->stride;
}

/* The float tap (ky, kx) reads for the first output. */
int nn_flat_tap(const nn_flat_planes_t *l, int ky, int kx);

/* Copies the input plane x (H x W) into the planes at buf, whose padding
 * (everything not written here) the caller zeroed once. */
void nn_flat_pad(const nn_flat_planes_t *l, const float *x, float *buf);
/* The same for input rows [iy0, iy1) only. */
void nn_flat_pad_rows(const nn_flat_planes_t *l, const float *x, float *buf, int iy0, int iy1);

/* A depthwise layer's flat layout, tap offsets and per-vector masks, the
 * same for every plane: made once per call. */
typedef struct nn_dwconv_flat {
    nn_flat_planes_t l;
    int taps, nvec;
    int off[NN_DWCONV_FLAT_TAPS];             /* each tap's first float */
    unsigned short mask[NN_DWCONV_FLAT_VECTORS]; /* valid lanes */
    int dst[NN_DWCONV_FLAT_VECTORS];          /* their first output */
} nn_dwconv_flat_t;

/* Floats of a flat padded plane where isa has flat kernels for g and they
 * take fewer vectors than rows do; 0 where not. */
size_t nn_dwconv_flat_floats(nn_isa_t isa, const nn_dwconv_geom_t *g);

/* Fills f for g (nn_dwconv_flat_floats() > 0). */
void nn_dwconv_flat_init(nn_dwconv_flat_t *f, const nn_dwconv_geom_t *g);

/* One output plane from a padded buffer: taps k, then bias, the residual
 * plane res (NULL: none; may be y), clamp to [lo, hi]. */
void nn_dwconv_flat_plane(const nn_dwconv_flat_t *f, const float *buf, const float *k,
                          float bias, float lo, float hi, const float *res, float *y);

/* Strides 1 and 2 straight from the input plane (dilation 1; 3x3, 5x5
 * and, at stride 1, 7x7 taps), no padded copy. The planes above copy
 * each input plane first (at stride 2 de-interleaving it into even and
 * odd columns); on MobileNet's stride-2 layers that copy cost twice the
 * taps (a 56x56 plane, one thread: 0.42-0.60 us, then 0.24 for the taps,
 * on an Intel Xeon Sapphire Rapids). Here each tap's vector of 16
 * outputs is loaded from the input row at the tap's column, lanes in the
 * padding masked off at the load; at stride 2 each pair of taps loads 32
 * consecutive floats and splits them into even and odd columns in
 * registers (one permute a tap). Two output rows are computed together,
 * as they share input rows. Stride 2, the same plane: 0.54 us; 112x112:
 * 4.15 -> 2.17; 28x28: 0.25 -> 0.14. */
#define NN_DWCONV_INPLACE_MAX_WO 256 /* widest output row */
#define NN_DWCONV_INPLACE_VECTORS (NN_DWCONV_INPLACE_MAX_WO / 16)
#define NN_DWCONV_INPLACE_TAPS 7 /* widest row of taps */

/* A layer's geometry and, for each vector of an output row, where each
 * load starts (the input column of its lane 0; < 0: in the padding) and
 * which of its lanes are input columns: the same on every row, so made
 * once per call. Stride 1: one load a tap (start, lo). Stride 2: one
 * pair of loads per pair of taps (2p, 2p + 1) (start, lo, hi). */
typedef struct nn_dwconv_inplace {
    nn_dwconv_geom_t g;
    int nv; /* vectors a row */
    int start[NN_DWCONV_INPLACE_VECTORS][NN_DWCONV_INPLACE_TAPS];
    unsigned short lo[NN_DWCONV_INPLACE_VECTORS][NN_DWCONV_INPLACE_TAPS];
    unsigned short hi[NN_DWCONV_INPLACE_VECTORS][NN_DWCONV_INPLACE_TAPS];
    unsigned short out[NN_DWCONV_INPLACE_VECTORS]; /* valid outputs */
} nn_dwconv_inplace_t;

/* Fills s and answers 1 where isa has this kernel for g (above, with
 * rows of at least min_wo and at most NN_DWCONV_INPLACE_MAX_WO outputs);
 * 0 where not. */
int nn_dwconv_inplace_init(nn_dwconv_inplace_t *s, nn_isa_t isa, const nn_dwconv_geom_t *g,
                           int min_wo);

/* One output plane from the input plane x (H x W): taps k (kh x kw),
 * then bias, the residual plane res (NULL: none; may be y), clamp to
 * [lo, hi]. */
void nn_dwconv_inplace_plane(const nn_dwconv_inplace_t *s, const float *x, const float *k,
                             float bias, float lo, float hi, const float *res, float *y);

#endif
