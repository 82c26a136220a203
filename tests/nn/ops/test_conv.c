/* Conv and BatchNormalization against naive references.
 * IMGCLASS_BENCH=1 also times a few typical layers. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/op.h"
#include "nn/sgemm.h"
#include "nn/pool.h"
#include "util/optest.h"
#include "util/testutil.h"

/* OpenBLAS runs single-threaded under our pool (as the engine sets it). */
void openblas_set_num_threads(int n);

static uint64_t tc_rng = 88172645463325252ull;

static float tc_rand(void)
{
    tc_rng ^= tc_rng << 13;
    tc_rng ^= tc_rng >> 7;
    tc_rng ^= tc_rng << 17;
    return (float)((tc_rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static float *tc_alloc_rand(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = tc_rand();
    return p;
}

/* How a model's load would pack t's weights (input 1) for an output of
 * rank dims yd (NULL: unknown). */
static int tc_conv_packs(tc_t *t, int rank, const int64_t *yd)
{
    nn_tensor_t y;
    memset(&y, 0, sizeof y);
    y.rank = rank;
    for (int i = 0; yd && i < rank; i++)
        y.dims[i] = yd[i];
    return nn_conv_packs(&t->node, &t->ins[1], t->call.isa, yd ? &y : NULL);
}

/* Packs t's weights as input 5 (how: nn_conv_packs); the caller frees. */
static float *tc_conv_pack(tc_t *t, int how)
{
    int64_t pd[4];
    const int rank = nn_conv_packed_dims(&t->node, &t->ins[1], how, pd);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)pd[i];
    float *pw = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    ck_assert_ptr_nonnull(pw);
    nn_conv_pack_weights(&t->node, &t->ins[1], how, pw);
    tc_in(t, 5, NN_DTYPE_FLOAT, rank, pd, pw);
    return pw;
}

/* ---- conv cases ----------------------------------------------------------------- */

typedef struct conv_case {
    int ns;            /* spatial dims: 1 or 2 */
    int N, C, H, W, M; /* H ignored for ns == 1 */
    int kh, kw, sh, sw, dh, dw;
    int pads[4];       /* t, l, b, r (2-D) or l, r (1-D, pads[0..1]) */
    const char *auto_pad; /* NULL: attribute absent */
    int group;
    int bias;
    int residual;      /* fused residual + relu */
    int alias;         /* residual shares the output buffer */
    int kernel_attr;   /* pass kernel_shape */
    int winograd;      /* pass Winograd weights (3x3, stride 1): F(2x2, 3x3) for
                        * 1 or 2, F(4x4, 3x3) for 4 */
    int silu;          /* a fused SiLU (run after the kernel's store) */
} conv_case_t;

/* Effective pads and output sizes, computed independently of conv.c. */
static void ref_geometry(const conv_case_t *c, int in, int k, int s, int d,
                         int pb, int pe, int *ob, int *out)
{
    int ext = (k - 1) * d + 1;
    if (!c->auto_pad || strcmp(c->auto_pad, "NOTSET") == 0) {
        *ob = pb;
        *out = (in + pb + pe - ext) / s + 1;
    } else if (strcmp(c->auto_pad, "VALID") == 0) {
        *ob = 0;
        *out = (in - ext) / s + 1;
    } else {
        *out = (in + s - 1) / s;
        int total = (*out - 1) * s + ext - in;
        if (total < 0)
            total = 0;
        *ob = strcmp(c->auto_pad, "SAME_UPPER") == 0 ? total / 2
                                                     : total - total / 2;
    }
}

static void ref_conv(const conv_case_t *c, int H, int W, int kh, int kw,
                     int sh, int sw, int dh, int dw, int pt, int pl, int Ho,
                     int Wo, const float *x, const float *w, const float *b,
                     const float *res, float *y)
{
    int Cg = c->C / c->group, Mg = c->M / c->group;
    for (int n = 0; n < c->N; n++)
        for (int m = 0; m < c->M; m++) {
            int g = m / Mg;
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = b ? b[m] : 0.0;
                    for (int ci = 0; ci < Cg; ci++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++) {
                                int iy = oy * sh - pt + ky * dh;
                                int ix = ox * sw - pl + kx * dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                int cin = g * Cg + ci;
                                acc += (double)x[((size_t)(n * c->C + cin) * H + iy) * W + ix] *
                                       w[((size_t)(m * Cg + ci) * kh + ky) * kw + kx];
                            }
                    size_t o = ((size_t)(n * c->M + m) * Ho + oy) * Wo + ox;
                    if (res) {
                        acc += res[o];
                        if (acc < 0)
                            acc = 0;
                    }
                    y[o] = (float)acc;
                }
        }
}

/* packed: W goes in packed for the engine's own products (input 5, what
 * the optimiser makes where the instruction set has them), and W itself
 * without data, so that the case fails if anything still reads it. */
static void run_conv_case(const conv_case_t *c, nn_pool_t *pool, int packed)
{
    int H = c->ns == 2 ? c->H : 1;
    int kh = c->ns == 2 ? c->kh : 1, sh = c->ns == 2 ? c->sh : 1,
        dh = c->ns == 2 ? c->dh : 1;
    int pt, pl, Ho, Wo;
    if (c->ns == 2) {
        ref_geometry(c, H, kh, sh, dh, c->pads[0], c->pads[2], &pt, &Ho);
        ref_geometry(c, c->W, c->kw, c->sw, c->dw, c->pads[1], c->pads[3], &pl,
                     &Wo);
    } else {
        pt = 0;
        Ho = 1;
        ref_geometry(c, c->W, c->kw, c->sw, c->dw, c->pads[0], c->pads[1], &pl,
                     &Wo);
    }
    int Cg = c->C / c->group;
    int64_t xd[4], wd[4], yd[4], bd[1] = {c->M};
    int rank = c->ns + 2;
    xd[0] = c->N; xd[1] = c->C;
    wd[0] = c->M; wd[1] = Cg;
    yd[0] = c->N; yd[1] = c->M;
    if (c->ns == 2) {
        xd[2] = H; xd[3] = c->W;
        wd[2] = kh; wd[3] = c->kw;
        yd[2] = Ho; yd[3] = Wo;
    } else {
        xd[2] = c->W;
        wd[2] = c->kw;
        yd[2] = Wo;
    }
    size_t nx = (size_t)c->N * c->C * H * c->W;
    size_t nw = (size_t)c->M * Cg * kh * c->kw;
    size_t ny = (size_t)c->N * c->M * Ho * Wo;
    float *x = tc_alloc_rand(nx), *w = tc_alloc_rand(nw),
          *b = tc_alloc_rand((size_t)c->M), *res = tc_alloc_rand(ny),
          *y = tc_alloc_rand(ny), *ref = malloc(ny * sizeof *ref);
    ck_assert_ptr_nonnull(ref);
    if (c->alias)
        memcpy(y, res, ny * sizeof *y);
    ref_conv(c, H, c->W, kh, c->kw, sh, c->sw, dh, c->dw, pt, pl, Ho, Wo, x, w,
             c->bias ? b : NULL, c->residual ? res : NULL, ref);
    if (c->silu)
        for (size_t i = 0; i < ny; i++)
            ref[i] = (float)(ref[i] / (1.0 + exp(-(double)ref[i])));

    tc_t *t = tc_new("Conv", 13, 1);
    int64_t st[2] = {sh, c->sw}, di[2] = {dh, c->dw}, ks[2] = {kh, c->kw};
    int64_t pads[4];
    for (int i = 0; i < 4; i++)
        pads[i] = c->pads[i];
    if (c->ns == 1) {
        st[0] = c->sw; di[0] = c->dw; ks[0] = c->kw;
    }
    tc_attr_ints(t, "strides", st, c->ns);
    tc_attr_ints(t, "dilations", di, c->ns);
    if (!c->auto_pad || strcmp(c->auto_pad, "NOTSET") == 0)
        tc_attr_ints(t, "pads", pads, 2 * c->ns);
    if (c->auto_pad)
        tc_attr_s(t, "auto_pad", c->auto_pad);
    if (c->group != 1)
        tc_attr_i(t, "group", c->group);
    if (c->kernel_attr)
        tc_attr_ints(t, "kernel_shape", ks, c->ns);
    if (c->residual) {
        t->node.fusion.residual = 7;
        t->node.fusion.act = NN_ACT_RELU;
    }
    if (c->silu)
        t->node.fusion.act = NN_ACT_SILU;
    tc_in(t, 0, NN_DTYPE_FLOAT, rank, xd, x);
    tc_in(t, 1, NN_DTYPE_FLOAT, rank, wd, w);
    if (c->bias)
        tc_in(t, 2, NN_DTYPE_FLOAT, 1, bd, b);
    if (c->residual)
        tc_in(t, 3, NN_DTYPE_FLOAT, rank, yd, c->alias ? y : res);
    float *pw = NULL;
    const int how = packed && !c->winograd ? tc_conv_packs(t, rank, yd) : NN_CONV_PACK_NONE;
    if (how != NN_CONV_PACK_NONE) {
        pw = tc_conv_pack(t, how);
        tc_in(t, 1, NN_DTYPE_FLOAT, rank, wd, NULL);
    }
    float *u = NULL;
    if (c->winograd) {
        const int tile = c->winograd == 4 ? 4 : 2;
        int64_t ud[3] = {(tile + 2) * (tile + 2), nn_conv_winograd_rows(t->call.isa, c->M),
                         c->C};
        u = malloc(sizeof(float) * (size_t)(ud[0] * ud[1] * c->C));
        ck_assert_ptr_nonnull(u);
        ck_assert_int_eq(nn_conv_winograd_weights(t->call.isa, tile, w, c->M, c->C, u), 0);
        tc_in(t, 4, NN_DTYPE_FLOAT, 3, ud, u);
    }
    int rc = tc_prepare(t);
    ck_assert_msg(rc == 0, "prepare failed: %s", t->err.msg);
    ck_assert_int_eq(t->outs[0].rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(t->outs[0].dims[i], yd[i]);
    double flops = 2.0 * c->N * c->M * Ho * Wo * Cg * kh * c->kw;
    ck_assert(fabs(t->call.flops - flops) < 0.5);
    tc_out_buffer(t, 0, y);
    tc_exec(t, pool, 0);
    double e = tu_rel_error(y, ref, ny);
    ck_assert_msg(e < 1e-4,
                  "conv N%d C%d H%d W%d M%d k%dx%d s%d,%d d%d,%d g%d "
                  "auto_pad %s threads %d: rel error %g",
                  c->N, c->C, H, c->W, c->M, kh, c->kw, sh, c->sw, dh, c->dw,
                  c->group, c->auto_pad ? c->auto_pad : "-",
                  nn_pool_threads(pool), e);
    tc_free(t);
    free(pw);
    free(u);
    free(x);
    free(w);
    free(b);
    free(res);
    free(y);
    free(ref);
}

static const conv_case_t conv_cases[] = {
    /* ns N  C  H  W  M  kh kw sh sw dh dw pads        auto  g  b  r */
    /* a classifier as a 1x1 Conv on a 1x1 map (sgemv), rows split over
     * threads; with a residual in a separate buffer and in the output */
    {2, 2, 40, 1, 1, 70, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 40, 1, 1, 70, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 1, 40, 1, 1, 70, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, 1, 1, 0, 0, 0},
    {2, 1, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 1, 0, 0},
    {2, 1, 4, 10, 10, 6, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 3, 4, 13, 9, 8, 3, 2, 3, 1, 1, 1, {0, 2, 1, 0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 6, 12, 12, 4, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 2, 1, 0, 0, 0, 0, 0},
    {2, 2, 8, 11, 7, 8, 3, 3, 2, 1, 2, 3, {1, 0, 2, 3}, NULL, 4, 1, 1, 0, 0, 0, 0},
    /* Winograd F(2x2,3x3): odd sizes (partial tiles), asymmetric and no
     * padding, bias, fused residual + relu, the residual aliasing y, batch */
    {2, 1, 16, 17, 13, 24, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0},
    {2, 2, 17, 15, 20, 16, 3, 3, 1, 1, 1, 1, {0, 1, 1, 0}, NULL, 1, 1, 1, 0, 0, 1, 0},
    {2, 1, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, 1, 0, 1, 1, 0, 1, 0},
    {2, 3, 20, 14, 14, 16, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, "SAME_UPPER", 1, 1, 1, 0, 0, 1, 0},
    /* several images on small maps, packed: one product per row block
     * for all of them (pointwise with a residual, aliased too, unfolded
     * stride 2, no bias, rows not a whole panel) */
    {2, 3, 24, 7, 7, 40, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 4, 20, 7, 7, 20, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 1, 0, 0, 0},
    {2, 2, 12, 14, 14, 20, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 3, 16, 9, 9, 33, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 1, 0, 0, 0, 0},
    {2, 5, 8, 4, 3, 200, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* unfolding small maps from a padded plane (stride 1 along rows, at
     * most 16 columns): dilation, asymmetric padding and kernel, a full
     * 16-lane row, vertical stride 2 */
    {2, 2, 6, 7, 7, 20, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 5, 9, 13, 40, 3, 2, 1, 1, 1, 1, {0, 1, 2, 0}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 3, 4, 5, 16, 24, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 2, 6, 11, 7, 16, 3, 3, 2, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* the tiles of several images in one product, the last group short
     * (28x28: 2 images a group with F(2x2), 8 with F(4x4); 60x60: 2) */
    {2, 5, 8, 28, 28, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 1, 0},
    {2, 3, 4, 60, 60, 4, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0, 1, 0},
    /* one image's tiles in passes of tile rows (V and O large next to U),
     * the last pass short: a fused residual + relu over each pass's rows,
     * batch 2; the residual aliasing y, no bias */
    {2, 2, 16, 57, 55, 16, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 1, 0},
    {2, 1, 40, 30, 33, 24, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 1, 1, 0, 1, 0},
    /* depthwise, multiplier 1 and 2 */
    {2, 1, 8, 17, 19, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 8, 1, 0, 0, 0, 0, 0},
    {2, 2, 8, 17, 40, 8, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 8, 1, 1, 0, 0, 0, 0},
    {2, 1, 4, 20, 37, 8, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 4, 0, 0, 0, 0, 0, 0},
    {2, 1, 4, 20, 37, 8, 5, 5, 2, 2, 1, 1, {1, 2, 2, 1}, NULL, 4, 1, 0, 0, 0, 0, 0},
    {2, 1, 5, 23, 41, 5, 3, 3, 3, 3, 2, 2, {2, 3, 1, 0}, NULL, 5, 1, 1, 0, 0, 0, 0},
    {2, 1, 5, 30, 30, 5, 3, 3, 1, 2, 1, 3, {0, 0, 0, 0}, "SAME_UPPER", 5, 1, 0, 0, 0, 0, 0},
    {2, 3, 3, 5, 4, 3, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 3, 1, 1, 1, 0, 0, 0},
    {2, 1, 16, 56, 56, 16, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 16, 1, 1, 0, 0, 0, 0},
    {2, 1, 16, 56, 56, 16, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, NULL, 16, 1, 0, 0, 0, 0, 0},
    /* depthwise read in place (AVX-512, rows of 12 outputs and more),
     * stride 2: pads of 2 on 3x3 (a first output row with one row of
     * taps), rows of 33 outputs (a last vector of one lane) and of exactly
     * 16, 5x5 with multiplier 2, 130-wide rows (9 vectors), an odd number
     * of output rows, left pad 0, a residual; stride 1: 7x7 with uneven
     * pads on 33-wide rows, a map of 2 rows (every row at an edge), 5x5
     * without left padding and with a residual aliasing y, batch 2 */
    {2, 1, 3, 11, 31, 3, 7, 7, 1, 1, 1, 1, {3, 2, 2, 4}, NULL, 3, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 2, 20, 3, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 3, 1, 1, 0, 0, 0, 0},
    {2, 2, 4, 15, 18, 4, 5, 5, 1, 1, 1, 1, {2, 0, 2, 4}, NULL, 4, 0, 1, 1, 0, 0, 0},
    {2, 1, 3, 9, 64, 3, 3, 3, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 3, 1, 0, 0, 0, 0, 0},
    {2, 2, 4, 12, 32, 4, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 4, 0, 1, 1, 0, 0, 0},
    {2, 1, 2, 29, 261, 4, 5, 5, 2, 2, 1, 1, {0, 2, 1, 0}, NULL, 2, 1, 1, 0, 0, 0, 0},
    {2, 1, 3, 26, 25, 3, 5, 5, 2, 2, 1, 1, {1, 0, 2, 2}, NULL, 3, 1, 0, 0, 0, 0, 0},
    /* depthwise 7x7 (ConvNeXt), 7-wide rows, several 16-wide vectors a row */
    {2, 1, 8, 14, 14, 8, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, NULL, 8, 1, 1, 0, 0, 0, 0},
    {2, 2, 8, 7, 7, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 8, 1, 1, 1, 0, 0, 0},
    {2, 1, 8, 33, 70, 16, 5, 5, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 8, 1, 0, 0, 0, 0, 0},
    /* flat depthwise planes (AVX-512, small maps: rows too narrow to read
     * in place, channel multipliers the lanes kernel does not take, or
     * dilation): vectors across row ends, stride 2 through phase planes
     * with the left pad odd and even, 5x5 and 7x7 taps, dilation, a
     * residual (aliased too), multiplier 2 at strides 2 and 1 */
    {2, 1, 3, 17, 19, 6, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 3, 1, 1, 0, 0, 0, 0},
    {2, 1, 2, 9, 9, 4, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 0, 0, 0, 0, 0},
    {2, 2, 6, 14, 14, 6, 5, 5, 2, 2, 1, 1, {2, 2, 2, 2}, NULL, 6, 1, 1, 0, 0, 0, 0},
    {2, 1, 5, 14, 14, 5, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 5, 1, 1, 1, 0, 0, 0},
    {2, 1, 4, 9, 5, 4, 3, 3, 2, 2, 1, 1, {0, 1, 1, 0}, NULL, 4, 1, 0, 0, 0, 0, 0},
    {2, 1, 4, 11, 13, 4, 5, 5, 2, 2, 1, 1, {2, 1, 1, 2}, NULL, 4, 0, 0, 0, 0, 0, 0},
    {2, 2, 3, 28, 28, 6, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 3, 1, 1, 0, 0, 0, 0},
    {2, 1, 4, 7, 7, 4, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, NULL, 4, 1, 1, 1, 0, 0, 0},
    {2, 1, 3, 10, 12, 3, 3, 3, 1, 1, 2, 2, {2, 1, 2, 3}, NULL, 3, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 34, 35, 3, 3, 3, 2, 2, 1, 1, {1, 0, 0, 1}, NULL, 3, 1, 1, 0, 0, 0, 0},
    /* depthwise with channels in the lanes (AVX-512, maps of at most 16x16
     * outputs): whole and partial 16-channel blocks, batch 3, a residual
     * (aliased too), 5x5 stride 2 with odd pads, dilation and 7x7 taps
     * (the general loop), a 1x1 map, an asymmetric kernel, a 1-D map */
    {2, 3, 40, 7, 7, 40, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 40, 1, 1, 1, 0, 0, 0},
    {2, 1, 72, 14, 14, 72, 5, 5, 2, 2, 1, 1, {2, 1, 1, 2}, NULL, 72, 1, 0, 0, 0, 0, 0},
    {2, 2, 20, 9, 11, 20, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 20, 0, 1, 0, 0, 0, 0},
    {2, 1, 24, 7, 7, 24, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, NULL, 24, 1, 0, 0, 0, 0, 0},
    {2, 2, 17, 1, 1, 17, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 17, 1, 1, 0, 0, 0, 0},
    {2, 1, 32, 12, 10, 32, 3, 5, 1, 2, 1, 1, {1, 2, 1, 2}, NULL, 32, 1, 0, 0, 0, 0, 0},
    {1, 2, 33, 1, 50, 33, 1, 5, 1, 1, 1, 1, {2, 2, 0, 0}, NULL, 33, 1, 1, 0, 0, 0, 0},
    /* groups of 16 and more output channels, output channels in the lanes
     * (packed, AVX-512): ResNeXt's 14x14 (stride 1 and 2) and 7x7 (two
     * blocks a tile, batch 2, the residual aliased), 24 channels (a
     * partial block, dilation: the general taps), 48 from 8 (two blocks
     * then one, 5x5 stride 2, uneven pads), tiles past a row's end (13
     * and 40 wide), SAME padding, 1-D; groups of 4 and 8 (idle lanes) */
    {2, 1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 4, 1, 1, 0, 0, 0, 0},
    {2, 1, 64, 28, 28, 64, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 4, 1, 0, 0, 0, 0, 0},
    {2, 2, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 1, 1, 0, 0, 0},
    {2, 1, 48, 9, 11, 48, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, 2, 0, 1, 0, 0, 0, 0},
    {2, 2, 24, 15, 17, 144, 5, 5, 2, 2, 1, 1, {2, 1, 1, 2}, NULL, 3, 1, 0, 0, 0, 0, 0},
    {2, 1, 32, 13, 13, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 1, 0, 0, 0, 0},
    {2, 1, 32, 30, 40, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 0, 0, 0, 0, 0},
    {2, 1, 40, 10, 9, 64, 3, 4, 2, 3, 1, 1, {0}, "SAME_UPPER", 2, 1, 0, 0, 0, 0, 0},
    {1, 2, 32, 1, 30, 32, 1, 5, 1, 1, 1, 1, {2, 2, 0, 0}, NULL, 2, 1, 1, 0, 0, 0, 0},
    {2, 2, 32, 20, 20, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 8, 1, 1, 0, 0, 0, 0},
    {2, 1, 64, 28, 28, 64, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 8, 1, 0, 0, 0, 0, 0},
    /* ... and dense convolutions on small maps, items of two output blocks
     * (SqueezeNet's 13x13 expand), of one (DenseNet's 128 -> 32 on 7x7, a
     * partial last block at stride 2, batch 2), the residual aliased,
     * 300 input channels; passes of 64 input channels over tiles past
     * the row's end (10 wide) */
    {2, 1, 64, 13, 13, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 128, 7, 7, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 2, 20, 14, 15, 40, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 1, 16, 10, 10, 16, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0, 0, 0},
    {2, 1, 300, 7, 7, 40, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 1, 96, 10, 10, 48, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0, 0, 0},
    /* ... a fused SiLU on items of one and two blocks (a partial last one),
     * grouped too; large maps in bands of rows (the last band short), with
     * a residual, stride 2, a SiLU */
    {2, 1, 32, 7, 7, 40, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 1},
    {2, 1, 32, 9, 9, 136, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 1},
    {2, 2, 64, 8, 8, 96, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 0, 0, 0, 0, 1},
    {2, 1, 64, 61, 58, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 1, 1, 0, 0, 0},
    {2, 2, 128, 57, 40, 256, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 2, 0, 0, 0, 0, 0, 1},
    /* shallow products on large maps, direct over flat planes (packed,
     * AVX-512): a stem (3x3 and 7x7 stride 2, odd pads), stride 1 with
     * dilation, output channels not whole tiles, batch 2, the last tile
     * short; a stem of 70 output channels, split by channels on 2 threads */
    {2, 2, 3, 64, 70, 20, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 2, 3, 64, 64, 70, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 61, 67, 24, 7, 7, 2, 2, 1, 1, {3, 2, 2, 3}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 1, 16, 40, 40, 9, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 2, 5, 44, 48, 33, 5, 5, 1, 1, 2, 2, {4, 3, 4, 5}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* ... and deeper products: 360 and 576 multiply-adds an output, 136
     * output channels (a partial last panel) */
    {2, 1, 40, 48, 47, 17, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 40, 48, 47, 136, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 2, 64, 24, 30, 20, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 0, 0, 0, 0, 0, 0},
    /* auto_pad modes */
    {2, 1, 3, 10, 9, 4, 3, 4, 2, 3, 1, 1, {0}, "SAME_UPPER", 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 10, 9, 4, 3, 4, 2, 3, 1, 1, {0}, "SAME_LOWER", 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 10, 9, 4, 3, 4, 2, 3, 1, 1, {0}, "VALID", 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 3, 10, 9, 4, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, "NOTSET", 1, 1, 0, 0, 0, 0, 0},
    /* 1x1: pointwise path, strided 1x1, padded 1x1 */
    {2, 1, 16, 14, 14, 32, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 1, 0, 0},
    {2, 3, 16, 14, 14, 32, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 2, 16, 14, 14, 32, 1, 1, 1, 1, 1, 1, {0}, NULL, 2, 1, 1, 1, 0, 0, 0},
    {2, 1, 16, 14, 14, 32, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 4, 5, 5, 8, 1, 1, 1, 1, 1, 1, {1, 0, 0, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* ... strided and padded 1x1s on maps large enough for the flat planes
     * (which leave 1x1s to unfolding), batch 2, odd sizes */
    {2, 2, 24, 50, 47, 40, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 1, 20, 45, 45, 36, 1, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* small maps with many channels (row split), batch 3 */
    {2, 1, 32, 7, 7, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 3, 32, 7, 7, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 1, 0, 0, 0},
    {2, 3, 64, 7, 7, 128, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 2, 32, 4, 4, 64, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 2, 1, 0, 0, 0, 0, 0},
    {2, 1, 8, 1, 1, 16, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* larger im2col with several column blocks */
    {2, 2, 16, 40, 36, 24, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 1, 3, 64, 64, 16, 7, 7, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* 1-D */
    {1, 1, 3, 0, 20, 4, 0, 3, 0, 1, 0, 1, {1, 1}, NULL, 1, 1, 0, 0, 1, 0, 0},
    {1, 3, 4, 0, 31, 6, 0, 5, 0, 2, 0, 2, {3, 0}, NULL, 2, 1, 1, 0, 0, 0, 0},
    {1, 2, 6, 0, 25, 6, 0, 3, 0, 1, 0, 1, {0}, "SAME_LOWER", 6, 0, 0, 0, 0, 0, 0},
    {1, 1, 8, 0, 50, 16, 0, 1, 0, 1, 0, 1, {0, 0}, NULL, 1, 1, 0, 0, 0, 0, 0},
};

/* Deep 1x1 products on small maps, split along K over the threads
 * (conv.c, nn_conv_deep) where the own products run: K not a whole number
 * of 16-channel blocks a part, rows not a whole panel, a residual + relu
 * (aliasing the output too), no bias, a map just under the narrow limit. */
static const conv_case_t deep_cases[] = {
    {2, 1, 200, 7, 7, 20, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0},
    {2, 1, 576, 14, 14, 96, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 1, 0, 0, 0},
    {2, 1, 300, 13, 15, 40, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 0, 0, 0, 0, 0, 0},
    {2, 1, 1030, 2, 3, 130, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0},
    /* direct over flat planes, padded in bands of rows, one a thread (8
     * threads: bands of 5 or 6 input rows, stride 2: band ends odd and
     * even), K in blocks (360 and 144 deep), 264 output channels (two
     * chunks of partial sums) */
    {2, 1, 40, 45, 47, 24, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
    {2, 2, 16, 34, 30, 264, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0},
};

static void run_all_conv(nn_pool_t *pool)
{
    /* Unpacked, then packed where this machine has the own products. */
    for (int packed = 0; packed <= nn_sgemm_has(tc_isa_best()); packed++)
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
            run_conv_case(&conv_cases[i], pool, packed);
            if (conv_cases[i].winograd) { /* and with F(4x4, 3x3) */
                conv_case_t c4 = conv_cases[i];
                c4.winograd = 4;
                run_conv_case(&c4, pool, packed);
            }
        }
    for (size_t i = 0; i < sizeof deep_cases / sizeof deep_cases[0]; i++)
        run_conv_case(&deep_cases[i], pool, nn_sgemm_has(tc_isa_best()));
}

/* The deep products' parts on more threads: 3 parts, and 4 parts of two
 * row blocks each; the flat planes' bands. */
START_TEST(conv_deep_parts)
{
    static const int threads[] = {3, 8};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        nn_pool_t *pool;
        ck_assert_int_eq(nn_pool_create(&pool, threads[t]), 0);
        for (size_t i = 0; i < sizeof deep_cases / sizeof deep_cases[0]; i++)
            run_conv_case(&deep_cases[i], pool, nn_sgemm_has(tc_isa_best()));
        nn_pool_free(pool);
    }
}
END_TEST

START_TEST(conv_single_thread)
{
    run_all_conv(NULL);
}
END_TEST

START_TEST(conv_two_threads)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    run_all_conv(pool);
    nn_pool_free(pool);
}
END_TEST

/* Random shapes, with and without the pool. */
START_TEST(conv_random)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    static const char *const modes[] = {NULL, "SAME_UPPER", "SAME_LOWER",
                                        "VALID"};
    for (int it = 0; it < 150; it++) {
        conv_case_t c;
        memset(&c, 0, sizeof c);
        c.ns = (tc_rng % 5) == 0 ? 1 : 2;
        int kind = (int)((tc_rand() + 1.0f) * 2.0f); /* 0..3 */
        c.N = 1 + (int)((tc_rand() + 1.0f) * 1.5f);
        c.group = 1;
        int cg = 1 + (int)((tc_rand() + 1.0f) * 4.0f);
        int mg = 1 + (int)((tc_rand() + 1.0f) * 6.0f);
        if (kind == 1) {
            c.group = 1 + (int)((tc_rand() + 1.0f) * 2.0f);
        } else if (kind >= 2) { /* depthwise, multiplier 1 or 2 */
            c.group = 2 + (int)((tc_rand() + 1.0f) * 4.0f);
            cg = 1;
            mg = kind == 2 ? 1 : 2;
        }
        c.C = cg * c.group;
        c.M = mg * c.group;
        c.kh = 1 + (int)((tc_rand() + 1.0f) * 2.0f);
        c.kw = 1 + (int)((tc_rand() + 1.0f) * 2.5f);
        c.sh = 1 + (int)((tc_rand() + 1.0f) * 1.5f);
        c.sw = 1 + (int)((tc_rand() + 1.0f) * 1.5f);
        c.dh = 1 + (tc_rand() > 0.6f);
        c.dw = 1 + (tc_rand() > 0.6f);
        c.auto_pad = modes[(int)((tc_rand() + 1.0f) * 1.99f)];
        for (int i = 0; i < 4; i++)
            c.pads[i] = (int)((tc_rand() + 1.0f) * 1.5f);
        if (c.ns == 1) {
            c.kh = c.sh = c.dh = 1;
            c.pads[2] = c.pads[3] = 0;
        }
        c.H = (c.kh - 1) * c.dh + 1 + (int)((tc_rand() + 1.0f) * 12.0f);
        c.W = (c.kw - 1) * c.dw + 1 + (int)((tc_rand() + 1.0f) * 20.0f);
        c.bias = tc_rand() > 0;
        c.residual = tc_rand() > 0.3f;
        c.alias = c.residual && tc_rand() > 0.5f;
        c.kernel_attr = tc_rand() > 0;
        run_conv_case(&c, it % 2 ? pool : NULL, (it / 2) % 2 && nn_sgemm_has(tc_isa_best()));
    }
    nn_pool_free(pool);
}
END_TEST

/* ---- refused attributes --------------------------------------------------------- */

/* Prepares t on X [xd] and W [wd] of the given rank (no data); returns
 * prepare's code, the message in t->err. */
static int conv_prepare_with(tc_t *t, const int64_t *xd, const int64_t *wd,
                             int rank)
{
    tc_in(t, 0, NN_DTYPE_FLOAT, rank, xd, NULL);
    tc_in(t, 1, NN_DTYPE_FLOAT, rank, wd, NULL);
    return tc_prepare(t);
}

START_TEST(conv_bad_attrs)
{
    int64_t xd[5] = {1, 4, 8, 8, 8}, wd[5] = {6, 4, 3, 3, 3};
    tc_t *t;

    t = tc_new("Conv", 13, 1);
    int64_t pads3[3] = {1, 1, 1};
    tc_attr_ints(t, "pads", pads3, 3);
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_EINVAL);
    ck_assert_msg(strstr(t->err.msg, "pads must have 4 values, got 3"), "%s",
                  t->err.msg);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    wd[1] = 3; /* W expects 3 channels, X has 4 */
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_ESHAPE);
    wd[1] = 4;
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    tc_attr_i(t, "group", 3); /* 3 does not divide 4 */
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_EINVAL);
    ck_assert_msg(strstr(t->err.msg, "group"), "%s", t->err.msg);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    tc_attr_s(t, "auto_pad", "FOO");
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_EUNSUPPORTED);
    ck_assert_msg(strstr(t->err.msg, "FOO"), "%s", t->err.msg);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    int64_t ks[2] = {5, 5};
    tc_attr_ints(t, "kernel_shape", ks, 2);
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_ESHAPE);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    int64_t st0[2] = {0, 1};
    tc_attr_ints(t, "strides", st0, 2);
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 4), -NN_EINVAL);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    ck_assert_int_eq(conv_prepare_with(t, xd, wd, 5), -NN_EUNSUPPORTED);
    ck_assert_msg(strstr(t->err.msg, "3-D convolution is not supported"),
                  "%s", t->err.msg);
    tc_free(t);

    t = tc_new("Conv", 13, 1);
    int64_t xs[4] = {1, 4, 2, 2};
    ck_assert_int_eq(conv_prepare_with(t, xs, wd, 4), -NN_ESHAPE);
    tc_free(t);
}
END_TEST

/* ---- BatchNormalization --------------------------------------------------------- */

/* act: the activation fused after it (NN_ACT_NONE, RELU, CLIP [-0.5, 0.5]
 * or SILU, the last applied after the plane). */
static void run_bn(int rank, const int64_t *dims, nn_act_t act, nn_pool_t *pool)
{
    int64_t C = dims[1];
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    size_t S = n / (size_t)dims[0] / (size_t)C;
    float *x = tc_alloc_rand(n), *y = malloc(n * sizeof *y),
          *ref = malloc(n * sizeof *ref);
    float *sc = tc_alloc_rand((size_t)C), *bb = tc_alloc_rand((size_t)C),
          *mean = tc_alloc_rand((size_t)C), *var = tc_alloc_rand((size_t)C);
    ck_assert(y && ref);
    for (int64_t c = 0; c < C; c++)
        var[c] = var[c] + 1.5f;
    const float eps = 1e-3f;
    for (size_t i = 0; i < n; i++) {
        size_t c = (i / S) % (size_t)C;
        double v = sc[c] * (x[i] - mean[c]) / sqrt((double)var[c] + eps) + bb[c];
        if (act == NN_ACT_RELU)
            v = v < 0 ? 0 : v;
        else if (act == NN_ACT_CLIP)
            v = v < -0.5 ? -0.5 : v > 0.5 ? 0.5 : v;
        else if (act == NN_ACT_SILU)
            v = v / (1.0 + exp(-v));
        ref[i] = (float)v;
    }
    tc_t *t = tc_new("BatchNormalization", 13, 1);
    tc_attr_f(t, "epsilon", eps);
    t->node.fusion.act = act;
    t->node.fusion.alpha = -0.5f;
    t->node.fusion.beta = 0.5f;
    int64_t cd[1] = {C};
    tc_in(t, 0, NN_DTYPE_FLOAT, rank, dims, x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 1, cd, sc);
    tc_in(t, 2, NN_DTYPE_FLOAT, 1, cd, bb);
    tc_in(t, 3, NN_DTYPE_FLOAT, 1, cd, mean);
    tc_in(t, 4, NN_DTYPE_FLOAT, 1, cd, var);
    ck_assert_msg(tc_prepare(t) == 0, "%s", t->err.msg);
    ck_assert_int_eq(t->outs[0].rank, rank);
    tc_out_buffer(t, 0, y);
    tc_exec(t, pool, 0);
    ck_assert(tu_rel_error(y, ref, n) < 1e-5);

    /* training_mode refused */
    tc_attr_i(t, "training_mode", 1);
    ck_assert_int_eq(tc_prepare(t), -NN_EUNSUPPORTED);
    tc_free(t);
    free(x); free(y); free(ref); free(sc); free(bb); free(mean); free(var);
}

START_TEST(batchnorm)
{
    nn_pool_t *pool;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    int64_t d2[2] = {3, 7}, d3[3] = {2, 5, 9}, d4[4] = {2, 16, 33, 31},
            d5[5] = {1, 3, 4, 5, 6};
    static const nn_act_t acts[] = {NN_ACT_NONE, NN_ACT_RELU, NN_ACT_CLIP, NN_ACT_SILU};
    for (int t = 0; t < 2; t++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            nn_pool_t *p = t ? pool : NULL;
            run_bn(2, d2, acts[a], p);
            run_bn(3, d3, acts[a], p);
            run_bn(4, d4, acts[a], p);
            run_bn(5, d5, acts[a], p);
        }
    nn_pool_free(pool);
}
END_TEST

/* ---- micro-benchmark (IMGCLASS_BENCH=1) ---------------------------------------- */

static double tc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench_conv(const char *label, const conv_case_t *c, nn_pool_t *pool)
{
    int H = c->H, W = c->W;
    int Ho = (H + c->pads[0] + c->pads[2] - ((c->kh - 1) * c->dh + 1)) / c->sh + 1;
    int Wo = (W + c->pads[1] + c->pads[3] - ((c->kw - 1) * c->dw + 1)) / c->sw + 1;
    int Cg = c->C / c->group;
    int64_t xd[4] = {c->N, c->C, H, W}, wd[4] = {c->M, Cg, c->kh, c->kw},
            bd[1] = {c->M};
    size_t nx = (size_t)c->N * c->C * H * W, nw = (size_t)c->M * Cg * c->kh * c->kw;
    size_t ny = (size_t)c->N * c->M * Ho * Wo;
    float *x = tc_alloc_rand(nx), *w = tc_alloc_rand(nw), *b = tc_alloc_rand((size_t)c->M),
          *y = tc_alloc_rand(ny);
    tc_t *t = tc_new("Conv", 13, 1);
    int64_t st[2] = {c->sh, c->sw}, pads[4] = {c->pads[0], c->pads[1], c->pads[2], c->pads[3]};
    tc_attr_ints(t, "strides", st, 2);
    tc_attr_ints(t, "pads", pads, 4);
    tc_attr_i(t, "group", c->group);
    t->node.fusion.act = NN_ACT_RELU;
    tc_in(t, 0, NN_DTYPE_FLOAT, 4, xd, x);
    tc_in(t, 1, NN_DTYPE_FLOAT, 4, wd, w);
    tc_in(t, 2, NN_DTYPE_FLOAT, 1, bd, b);
    float *u = NULL, *pw = NULL;
    if (c->winograd) {
        const int tile = c->winograd == 4 ? 4 : 2;
        int64_t ud[3] = {(tile + 2) * (tile + 2), nn_conv_winograd_rows(t->call.isa, c->M),
                         c->C};
        u = malloc(sizeof(float) * (size_t)(ud[0] * ud[1] * c->C));
        ck_assert_ptr_nonnull(u);
        ck_assert_int_eq(nn_conv_winograd_weights(t->call.isa, tile, w, c->M, c->C, u), 0);
        tc_in(t, 4, NN_DTYPE_FLOAT, 3, ud, u);
    } else if (tc_conv_packs(t, 4, NULL) != NN_CONV_PACK_NONE) {
        /* Packed as a model loads it where the own kernels exist. */
        pw = tc_conv_pack(t, tc_conv_packs(t, 4, NULL));
    }
    if (tc_prepare(t) != 0) {
        printf("%s: %s\n", label, t->err.msg);
        tc_free(t);
        free(x); free(w); free(b); free(y); free(u); free(pw);
        return;
    }
    tc_out_buffer(t, 0, y);
    /* Best of many runs: the machine may be shared. The kernels are those
     * models load with (IMGCLASS_ISA chooses). */
    nn_cpu_t cpu;
    nn_error_t err;
    const nn_isa_t isa = nn_cpu_detect(&cpu, &err) == 0 ? cpu.isa : cpu.best;
    tc_exec_isa(t, pool, 0, isa);
    double t0 = tc_now(), best = 1e9;
    while (tc_now() - t0 < 0.4) {
        double t1 = tc_now();
        tc_exec_isa(t, pool, 0, isa);
        double d = tc_now() - t1;
        if (d < best)
            best = d;
    }
    double ms = best * 1e3;

    /* Reference: one plain sgemm of the same size, one thread. */
    int K = Cg * c->kh * c->kw, P = Ho * Wo;
    double gms = 0;
    if (c->group == 1) {
        float *col = tc_alloc_rand((size_t)K * P);
        double gbest = 1e9;
        t0 = tc_now();
        while (tc_now() - t0 < 0.4) {
            double t1 = tc_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->M, P, K,
                        1.0f, w, K, col, P, 0.0f, y, P);
            double d = tc_now() - t1;
            if (d < gbest)
                gbest = d;
        }
        gms = gbest * 1e3;
        free(col);
    }
    printf("bench %-34s %-7s threads %d: %8.3f ms  %6.2f GFLOP/s", label,
           nn_isa_name(isa), nn_pool_threads(pool), ms, t->call.flops / ms * 1e-6);
    if (gms > 0)
        printf("   (plain 1-thread sgemm %.3f ms, %.2f GFLOP/s)", gms,
               t->call.flops / gms * 1e-6);
    printf("\n");
    tc_free(t);
    free(x); free(w); free(b); free(y); free(u); free(pw);
}

/* Not a check: times typical layers when IMGCLASS_BENCH=1. */
START_TEST(conv_bench)
{
    static const struct {
        const char *label;
        conv_case_t c;
    } cases[] = {
        {"densenet 3x3 128->32 @56", {2, 1, 128, 56, 56, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @28", {2, 1, 128, 28, 28, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @14", {2, 1, 128, 14, 14, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @14 b8", {2, 8, 128, 14, 14, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @14 winograd", {2, 1, 128, 14, 14, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"densenet 3x3 128->32 @14 b8 winograd", {2, 8, 128, 14, 14, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"densenet 3x3 128->32 @7", {2, 1, 128, 7, 7, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @7 b8", {2, 8, 128, 7, 7, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @28 b8", {2, 8, 128, 28, 28, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3 256->256 @14 b8 winograd", {2, 8, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"resnet50 3x3 512->512 @7 b8", {2, 8, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1 512->2048 @7 b8", {2, 8, 512, 7, 7, 2048, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1 1024->256 @14 b8", {2, 8, 1024, 14, 14, 256, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1 256->1024 @14 b8", {2, 8, 256, 14, 14, 1024, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 64->384 @14 b8", {2, 8, 64, 14, 14, 384, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 960->160 @7 b8", {2, 8, 960, 7, 7, 160, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 1x1 512->128 @14 b8", {2, 8, 512, 14, 14, 128, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"squeezenet 3x3 64->256 @13 b8", {2, 8, 64, 13, 13, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"squeezenet 1x1 512->64 @13 b8", {2, 8, 512, 13, 13, 64, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"googlenet 1x1 832->384 @7 b8", {2, 8, 832, 7, 7, 384, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet_v3 1x1 16->16 @112 +res", {2, 2, 16, 112, 112, 16, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0}},
        {"mobilenet 1x1 32->16 @112", {2, 2, 32, 112, 112, 16, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 24->144 @56 b2", {2, 2, 24, 56, 56, 144, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet_v3 1x1 72->24 @56 +res", {2, 2, 72, 56, 56, 24, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0}},
        {"resnet50 3x3 64->64 @56", {2, 1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3 64->64 @56 winograd", {2, 1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"resnet50 3x3 256->256 @14 winograd", {2, 1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"resnet50 3x3 64->64 @56 winograd4", {2, 1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 4, 0}},
        {"resnet50 3x3 128->128 @28 winograd", {2, 1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 1, 0}},
        {"resnet50 3x3 128->128 @28 winograd4", {2, 1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 4, 0}},
        {"resnet50 3x3 256->256 @14 winograd4", {2, 1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 4, 0}},
        {"squeezenet 3x3/2 3->64 @224", {2, 1, 3, 224, 224, 64, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"squeezenet 3x3/2 3->64 @224 b8", {2, 8, 3, 224, 224, 64, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 7x7/2 3->64 @224 b8", {2, 8, 3, 224, 224, 64, 7, 7, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 3x3/2 3->32 @224", {2, 1, 3, 224, 224, 32, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 7x7/2 3->64 @224", {2, 1, 3, 224, 224, 64, 7, 7, 2, 2, 1, 1, {3, 3, 3, 3}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1 64->256 @56", {2, 1, 64, 56, 56, 256, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3 128->128 @28", {2, 1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3 256->256 @14", {2, 1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3 512->512 @7", {2, 1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3/2 128->128 @56", {2, 1, 128, 56, 56, 128, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1/2 256->512 @56", {2, 1, 256, 56, 56, 512, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet18 1x1/2 64->128 @56", {2, 1, 64, 56, 56, 128, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"regnet 1x1/2 48->104 @56", {2, 1, 48, 56, 56, 104, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1/2 512->1024 @28", {2, 1, 512, 28, 28, 1024, 1, 1, 2, 2, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 3x3/2 256->256 @28", {2, 1, 256, 28, 28, 256, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"resnet50 1x1 512->2048 @7", {2, 1, 512, 7, 7, 2048, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 16->96 @112", {2, 1, 16, 112, 112, 96, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 144->24 @56", {2, 1, 144, 56, 56, 24, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 24->144 @56", {2, 1, 24, 56, 56, 144, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 64->384 @14", {2, 1, 64, 14, 14, 384, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3 144 @56", {2, 1, 144, 56, 56, 144, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 144, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3/2 144 @56", {2, 1, 144, 56, 56, 144, 3, 3, 2, 2, 1, 1, {0, 0, 1, 1}, NULL, 144, 1, 0, 0, 0, 0, 0}},
        {"efficientnet dw5x5 240 @28", {2, 1, 240, 28, 28, 240, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, 240, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3 32 @112", {2, 1, 32, 112, 112, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 32, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3 960 @7", {2, 1, 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 960, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3 960 @7 b8", {2, 8, 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 960, 1, 0, 0, 0, 0, 0}},
        {"mobilenet dw3x3 384 @14 b8", {2, 8, 384, 14, 14, 384, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 384, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @7 (batch 1)", {2, 1, 128, 7, 7, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"densenet 3x3 128->32 @7 (batch 4)", {2, 4, 128, 7, 7, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 576->96 @14 +res", {2, 1, 576, 14, 14, 96, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0}},
        {"mobilenet 1x1 96->576 @14", {2, 1, 96, 14, 14, 576, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 0, 0, 0, 0, 0}},
        {"mobilenet 1x1 384->64 @14 +res", {2, 1, 384, 14, 14, 64, 1, 1, 1, 1, 1, 1, {0}, NULL, 1, 1, 1, 0, 0, 0, 0}},
        {"regnet grp3x3 104 g13 @28", {2, 1, 104, 28, 28, 104, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, 13, 1, 0, 0, 0, 0, 0}},
    };
    nn_pool_t *pool = NULL;
    ck_assert_int_eq(nn_pool_create(&pool, 2), 0);
    const char *only = getenv("IMGCLASS_BENCH_CASE"); /* a part of the labels to run */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (only && !strstr(cases[i].label, only))
            continue;
        bench_conv(cases[i].label, &cases[i].c, NULL);
        bench_conv(cases[i].label, &cases[i].c, pool);
    }
    nn_pool_free(pool);
}
END_TEST

int main(void)
{
    openblas_set_num_threads(1);
    /* The direct kernels fuse multiply-adds (FMA) with AVX2, not in the
     * baseline: their results may differ by this suite's tolerance. */
    tc_isa_tol = 1e-4;
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 120);
    const char *b = getenv("IMGCLASS_BENCH");
    if (b && *b == '1')
        tcase_add_test(tc, conv_bench);
    tcase_add_test(tc, conv_single_thread);
    tcase_add_test(tc, conv_two_threads);
    tcase_add_test(tc, conv_deep_parts);
    tcase_add_test(tc, conv_random);
    tcase_add_test(tc, conv_bad_attrs);
    tcase_add_test(tc, batchnorm);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
