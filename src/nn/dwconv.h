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

#endif
