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

/* A layer's flat layout and per-vector masks, the same for every plane. */
typedef struct nn_dwconv_flat {
    nn_dwconv_geom_t g;
    int Wq, Hq;        /* row stride and rows of a (phase) plane */
    int phases;        /* 1, or 4 for stride 2 */
    size_t stride;     /* floats from one phase plane to the next */
    int taps, nvec;
    int off[NN_DWCONV_FLAT_TAPS];             /* each tap's first float */
    unsigned short mask[NN_DWCONV_FLAT_VECTORS]; /* valid lanes */
    int dst[NN_DWCONV_FLAT_VECTORS];          /* their first output */
} nn_dwconv_flat_t;

/* Floats of a flat padded plane where isa has flat kernels for g and they
 * take fewer vectors than rows do (stride 1, or stride 2 without
 * dilation); 0 where not. */
size_t nn_dwconv_flat_floats(nn_isa_t isa, const nn_dwconv_geom_t *g);

/* Fills f for g (stride 1, or 2 without dilation). Beyond the sizes
 * nn_dwconv_flat_floats() takes, only the layout (Wq, Hq, phases, stride,
 * nvec): enough for nn_dwconv_flat_pad (convflat.h pads with it). */
void nn_dwconv_flat_init(nn_dwconv_flat_t *f, const nn_dwconv_geom_t *g);

/* Copies the input plane x (H x W) into the flat buffer, whose padding
 * (everything not written here) the caller zeroed once. */
void nn_dwconv_flat_pad(const nn_dwconv_flat_t *f, const float *x, float *buf);

/* One output plane from a padded buffer: taps k, then bias, the residual
 * plane res (NULL: none; may be y), clamp to [lo, hi]. */
void nn_dwconv_flat_plane(const nn_dwconv_flat_t *f, const float *buf, const float *k,
                          float bias, float lo, float hi, const float *res, float *y);

#endif
