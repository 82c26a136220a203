/* Conv (1-D and 2-D) and inference BatchNormalization.
 *
 * prepare picks one of six kernels for a Conv:
 *   - depthwise (one input channel per group): a direct kernel parallel
 *     over (image, input channel) that copies each input plane into a
 *     zero-padded plane reused by the thread, then computes 8 outputs at a
 *     time with the taps unrolled (strides 1 and 2); with AVX-512, rows of
 *     12 outputs and more read in place, 16 at a time (dwconv.h), smaller
 *     maps with channels in the lanes (dwlanes.h);
 *   - grouped with the output channels in the lanes (AVX-512, weights
 *     packed at load: grouplanes.h), parallel over (image, group);
 *   - grouped (at most NN_GROUPED_MAX_WIDTH channels in and out per group,
 *     row stride 1 or 2, no row dilation): the same padded planes,
 *     parallel over (image, group), 8 output channels x 8 pixels at a time;
 *   - Winograd F(2x2, 3x3) for stride-1 3x3 convolutions whose weights the
 *     optimiser stored transformed (input 4);
 *   - pointwise (1x1, stride 1, no padding): the input already is the
 *     product's right operand, y[Mg x P] = W[Mg x Cg] * x[Cg x P];
 *   - im2col for everything else: the input is unfolded into K x P columns
 *     in the scratch, then multiplied.
 * A pointwise or im2col product goes through the register-tiled kernel
 * (nn_pw_suits: large maps with shallow products, narrow groups), through
 * sgemv for a single output column, or through sgemm. exec splits it over
 * the pool by blocks of output columns (each im2col thread unfolding its
 * block into its own slot of the scratch), or, when the map is small next
 * to the weights, by output channels after all threads have unfolded the
 * whole K x P matrix: every thread then packs only its share of W.
 * Bias, the fused residual and the activation are applied to each output
 * block right after it is computed, while it is in cache. */
#include <cblas.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/error.h"
#include "nn/isa_dispatch.h"
#include "nn/op.h"
#include "nn/ops/args.h"
#include "nn/convflat.h"
#include "nn/dwconv.h"
#include "nn/dwlanes.h"
#include "nn/grouplanes.h"
#include "nn/sgemm.h"

/* gcc's -O2 cost model refuses loops of unknown trip count (bias fill,
 * strided im2col copies, BatchNormalization); ask for the usual one. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "fp-contract=fast")
#endif

enum {
    NN_CONV_POINTWISE,
    NN_CONV_IM2COL,
    NN_CONV_DEPTHWISE,
    NN_CONV_GROUPED,
    NN_CONV_GROUPED_LANES,
    NN_CONV_WINOGRAD
};


/* Narrow groups (RegNet's 8 channels) take the direct grouped kernel
 * where grouplanes.h's is not there (below AVX-512). */
#define NN_GROUPED_MAX_WIDTH 16

/* Depthwise rows at least this wide read their input in place
 * (dwconv.h); narrower ones (7 of a vector's 16 lanes) take the lanes
 * kernel. */
#define NN_DWCONV_INPLACE_MIN_WO 12

typedef struct nn_conv_params {
    int kind;
    int N, C, H, W;      /* input; 1-D convolutions use H = 1 */
    int M, Ho, Wo;       /* output channels and spatial size */
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int group, Cg, Mg, K; /* K = Cg * kh * kw */
    int has_bias, has_res;
    int packed;          /* W is input 5, packed for nn_sgemm per group */
    int wino_own;        /* Winograd's U is packed for nn_sgemm (its layout
                            follows the ISA prepare saw, whatever exec's) */
    int Hp, Wp;          /* depthwise: padded input plane */
    int slot;            /* depthwise, grouped: floats of a padded plane's
                            slot (Hp x Wp, or a flat plane, nn_dwconv_flat) */
    int Wh;              /* depthwise stride 2: floats per half row */
    int wt;              /* Winograd: output tile (2: F(2x2,3x3), 4: F(4x4,3x3)) */
    int th, tw;          /* Winograd: rows and columns of output tiles */
    int wgroup;          /* Winograd: images whose tiles share the products */
    int wband;           /* Winograd: tile rows a pass takes (th: all) */
    int images;          /* packed, small map, several images: one product
                            per row block for all of them (nn_conv_images) */
    int flat;            /* packed, shallow, large map: direct over flat
                            planes (nn_conv_flat, convflat.h) */
    int by_image;        /* several images on a small map, small weights:
                            each thread runs whole images (nn_conv_by_image) */
    size_t image_scratch; /* by_image: bytes of one image's scratch slot */
} nn_conv_params_t;

/* The call's params: the convolution as planned, and (by_image) the same
 * for one image, which each thread runs alone. */
typedef struct nn_conv_call_params {
    nn_conv_params_t all, one;
} nn_conv_call_params_t;
NN_PARAMS_FIT(nn_conv_call_params_t);

/* Target bytes of one thread's im2col block (kept in L2). */
#define NN_CONV_BLOCK_BYTES (512 * 1024)

static int nn_wino_usable(const nn_call_t *call, const nn_conv_params_t *p,
                          int64_t P);
static int nn_dw_split(const nn_conv_params_t *p);
static int nn_conv_splits_k(const nn_conv_params_t *p, int64_t P);

static nn_dwconv_geom_t nn_dw_geom(const nn_conv_params_t *p)
{
    return (nn_dwconv_geom_t){.H = p->H, .W = p->W, .Ho = p->Ho, .Wo = p->Wo,
                              .kh = p->kh, .kw = p->kw, .sh = p->sh, .sw = p->sw,
                              .dh = p->dh, .dw = p->dw, .pt = p->pt, .pl = p->pl};
}

/* The direct kernels and the transform loops are bodies compiled for AVX2 +
 * FMA and for the x86-64 baseline, chosen by the call's isa
 * (isa_dispatch.h); the jobs carry it. */

typedef float nn_v8 __attribute__((vector_size(32)));
typedef int32_t nn_v8i __attribute__((vector_size(32)));

/* Loads go through memcpy (unaligned, no aliasing issue); macros rather
 * than functions because passing 32-byte vectors by value changes the ABI
 * in the baseline (non-AVX) copy. */
#define NN_V8_LOAD(v, s) memcpy(&(v), (s), sizeof(v))
/* 8 even elements s[0], s[2], ..., s[14] (reads s[0..14] only). */
#define NN_V8_LOAD_EVEN(v, s)                                              \
    do {                                                                   \
        nn_v8 a_, b_;                                                      \
        NN_V8_LOAD(a_, (s));                                               \
        NN_V8_LOAD(b_, (s) + 7);                                           \
        (v) = __builtin_shufflevector(a_, b_, 0, 2, 4, 6, 9, 11, 13, 15);  \
    } while (0)
/* v = min(max(v, lo), hi) with NaN passing through, like nn_apply_act. */
#define NN_V8_CLAMP(v, lo, hi)                                             \
    do {                                                                   \
        nn_v8i m_ = (v) < (lo);                                            \
        (v) = (nn_v8)(((nn_v8i)(v) & ~m_) | ((nn_v8i)(lo) & m_));          \
        m_ = (v) > (hi);                                                   \
        (v) = (nn_v8)(((nn_v8i)(v) & ~m_) | ((nn_v8i)(hi) & m_));          \
    } while (0)

/* ---- attribute parsing ------------------------------------------------------- */

/* Reads an INTS attribute of exactly n values (default def when absent). */
static int nn_conv_ints(const nn_call_t *call, const char *name, int n,
                        int64_t *out, int64_t def, int64_t minv,
                        nn_error_t *err)
{
    const int64_t *v;
    int cnt = nn_attr_ints(call->node, name, &v);
    if (cnt < 0) {
        if (nn_attr_find(call->node, name))
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "attribute '%s' must be a list of ints", name);
        for (int i = 0; i < n; i++)
            out[i] = def;
        return 0;
    }
    if (cnt != n)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "%s must have %d values, got %d", name, n, cnt);
    for (int i = 0; i < n; i++) {
        if (v[i] < minv || v[i] > 65536)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "%s[%d] = %lld is out of range", name, i,
                                (long long)v[i]);
        out[i] = v[i];
    }
    return 0;
}

/* Narrow groups (RegNet's) take the direct grouped kernel. */
static int nn_conv_narrow_groups(int64_t group, int64_t Cg, int64_t Mg, int64_t sw,
                                 int64_t dw)
{
    return group > 1 && Cg <= NN_GROUPED_MAX_WIDTH && Mg <= NN_GROUPED_MAX_WIDTH &&
           sw <= 2 && dw == 1;
}

/* Groups and channels per group of a Conv with weights w. */
static void nn_conv_groups(const nn_node_t *n, const nn_tensor_t *w, int64_t *group,
                           int64_t *Cg, int64_t *Mg)
{
    *group = nn_attr_int(n, "group", 1);
    *Cg = w->dims[1];
    *Mg = *group >= 1 ? w->dims[0] / *group : 0;
}

int nn_conv_packs(const nn_node_t *n, const nn_tensor_t *w, nn_isa_t isa,
                  const nn_tensor_t *y)
{
    if (w->rank < 3 || w->rank > 4 || !w->data || w->dtype != NN_DTYPE_FLOAT)
        return NN_CONV_PACK_NONE;
    int64_t group, Cg, Mg;
    nn_conv_groups(n, w, &group, &Cg, &Mg);
    if (group < 1 || w->dims[0] % group != 0)
        return NN_CONV_PACK_NONE;
    const int64_t taps = nn_tensor_elems(w) / (w->dims[0] * Cg);
    int64_t outputs = y && y->rank == w->rank ? 1 : -1; /* of one output plane */
    for (int i = 2; outputs > 0 && i < y->rank; i++)
        outputs *= y->dims[i] > 0 ? y->dims[i] : -1;
    if (nn_grouplanes_suits(isa, group, Cg, Mg, taps, outputs))
        return NN_CONV_PACK_LANES;
    if (!nn_sgemm_has(isa))
        return NN_CONV_PACK_NONE;
    const int64_t *v;
    int k = nn_attr_ints(n, "strides", &v);
    int64_t sw = k > 0 ? v[k - 1] : 1;
    k = nn_attr_ints(n, "dilations", &v);
    int64_t dw = k > 0 ? v[k - 1] : 1;
    return !(group > 1 && Cg == 1) && !nn_conv_narrow_groups(group, Cg, Mg, sw, dw)
               ? NN_CONV_PACK_SGEMM
               : NN_CONV_PACK_NONE;
}

int nn_conv_packed_dims(const nn_node_t *n, const nn_tensor_t *w, int how, int64_t dims[4])
{
    int64_t group, Cg, Mg;
    nn_conv_groups(n, w, &group, &Cg, &Mg);
    const int64_t K = nn_tensor_elems(w) / w->dims[0];
    if (how == NN_CONV_PACK_LANES) {
        dims[0] = group;
        dims[1] = (Mg + NN_GROUPLANES_BLOCK - 1) / NN_GROUPLANES_BLOCK;
        dims[2] = K;
        dims[3] = NN_GROUPLANES_BLOCK;
        return 4;
    }
    dims[0] = group * (int64_t)nn_sgemm_packed_floats((int)Mg, (int)K);
    return 1;
}

void nn_conv_pack_weights(const nn_node_t *n, const nn_tensor_t *w, int how, float *dst)
{
    int64_t group, Cg, Mg, dims[4];
    nn_conv_groups(n, w, &group, &Cg, &Mg);
    const int K = (int)(nn_tensor_elems(w) / w->dims[0]);
    const int rank = nn_conv_packed_dims(n, w, how, dims);
    int64_t per = 1; /* floats of one group's packing */
    for (int i = 0; i < rank; i++)
        per *= dims[i];
    per /= group;
    for (int g = 0; g < group; g++) {
        const float *wg = (const float *)w->data + (size_t)g * Mg * K;
        if (how == NN_CONV_PACK_LANES)
            nn_grouplanes_pack(wg, (int)Cg, (int)Mg, (int)(K / Cg), dst + (size_t)g * per);
        else
            nn_sgemm_pack_a(wg, K, (int)Mg, K, dst + (size_t)g * per);
    }
}

/* (image, group, band) triples below which grouplanes.h's kernel splits a
 * group's output channels into items of two blocks. */
#define NN_CONV_LANES_MIN_ITEMS 8

/* How exec cuts a grouplanes.h call on `threads` threads: output blocks
 * an item takes and items a (image, group). On one thread (each of a
 * by-image split's) an item takes a whole band of a group, padding its
 * planes once; on several, where there are fewer (image, group, band)
 * triples than a few a thread (a dense convolution of one image), items
 * of two output blocks (one where there are few), each padding its own
 * copy of the planes. */
static void nn_conv_lanes_split(const nn_conv_params_t *p, const nn_grouplanes_t *gl,
                                int threads, int *chunk, int *items)
{
    const int blocks = (p->Mg + NN_GROUPLANES_BLOCK - 1) / NN_GROUPLANES_BLOCK;
    const int64_t triples = (int64_t)p->N * p->group * gl->bands;
    *chunk = threads < 2 || triples >= NN_CONV_LANES_MIN_ITEMS ? blocks
             : blocks >= NN_CONV_LANES_MIN_ITEMS              ? 2
                                                              : 1;
    *items = (blocks + *chunk - 1) / *chunk * gl->bands;
}

/* Maps this small (14x14 and below) run the products of several images
 * together when the unfolded inputs of all fit this scratch. */
#define NN_IMAGES_MAX_PIXELS 256
#define NN_IMAGES_SCRATCH_BYTES ((size_t)4 << 20)
/* Deep products split along K (nn_conv_deep): parts at most (the
 * scratch holds that many outputs), channels a part takes at least. */
#define NN_CONV_KSPLIT_MAX 4
#define NN_CONV_KSPLIT_MIN_K 64

#define NN_WINO_COLUMNS 384                     /* tile columns a group aims at */
#define NN_WINO_GROUP_BYTES ((size_t)16 << 20) /* scratch a group may take */
/* One image's transformed tiles (V and the products' O) in passes of tile
 * rows whose V and O fit this, where they outweigh the transformed
 * weights U (which every pass reads again) NN_WINO_BAND_OVER_U times and
 * U is packed for the own products (OpenBLAS would pack it again for each
 * pass's 36 products):
 * ResNet-50's 64 -> 64 on 56x56 has 3.6 MB of V and O, 0.6 MB of U.
 * Whole, V and O went through L3 between the three phases
 * (bench/README.md, "Intel Xeon (Ice Lake server)"). */
#define NN_WINO_BAND_BYTES ((size_t)768 << 10)
#define NN_WINO_BAND_OVER_U 4

static int nn_conv_plan_by_image(nn_call_t *call, nn_error_t *err);

int nn_op_conv_prepare(nn_call_t *call, nn_error_t *err)
{
    nn_conv_params_t *p = NN_PARAMS(call, nn_conv_params_t);
    memset(call->params, 0, sizeof(nn_conv_call_params_t));
    const nn_node_t *node = call->node;
    if (call->n_in < 2 || !call->in[0] || !call->in[1] || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL, "Conv needs inputs X and W");
    int rc;
    if ((rc = nn_need_float(call, 0, "X", err)) ||
        (rc = nn_need_float(call, 1, "W", err)))
        return rc;
    const nn_tensor_t *X = call->in[0], *Wt = call->in[1];
    const nn_tensor_t *B = call->n_in > 2 ? call->in[2] : NULL;
    char bx[64], bw[64];
    if (X->rank == 5)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "3-D convolution is not supported");
    if (X->rank != 3 && X->rank != 4)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "Conv input %s must have rank 3 or 4",
                            nn_shape_str(X, bx, sizeof bx));
    if (Wt->rank != X->rank)
        return nn_node_fail(err, node, NN_ESHAPE,
                            "weight %s and input %s ranks differ",
                            nn_shape_str(Wt, bw, sizeof bw),
                            nn_shape_str(X, bx, sizeof bx));
    int ns = X->rank - 2;
    int64_t ks[2], st[2], di[2], pads[4];
    if ((rc = nn_conv_ints(call, "strides", ns, st, 1, 1, err)) ||
        (rc = nn_conv_ints(call, "dilations", ns, di, 1, 1, err)) ||
        (rc = nn_conv_ints(call, "pads", 2 * ns, pads, 0, 0, err)))
        return rc;
    if (nn_attr_find(node, "kernel_shape")) {
        if ((rc = nn_conv_ints(call, "kernel_shape", ns, ks, 1, 1, err)))
            return rc;
        for (int i = 0; i < ns; i++)
            if (ks[i] != Wt->dims[2 + i])
                return nn_node_fail(err, node, NN_ESHAPE,
                                    "kernel_shape[%d] = %lld but weight is %s",
                                    i, (long long)ks[i],
                                    nn_shape_str(Wt, bw, sizeof bw));
    }
    for (int i = 0; i < ns; i++) {
        ks[i] = Wt->dims[2 + i];
        if (ks[i] < 1)
            return nn_node_fail(err, node, NN_ESHAPE, "empty kernel %s",
                                nn_shape_str(Wt, bw, sizeof bw));
    }
    int64_t group = nn_attr_int(node, "group", 1);
    int64_t N = X->dims[0], C = X->dims[1], M = Wt->dims[0];
    if (group < 1 || C % group != 0 || M % group != 0)
        return nn_node_fail(err, node, NN_EINVAL,
                            "group %lld does not divide input channels %lld "
                            "and output channels %lld", (long long)group,
                            (long long)C, (long long)M);
    if (Wt->dims[1] != C / group)
        return nn_node_fail(err, node, NN_ESHAPE,
                            "weight %s expects %lld input channels per group, "
                            "input %s has %lld", nn_shape_str(Wt, bw, sizeof bw),
                            (long long)Wt->dims[1],
                            nn_shape_str(X, bx, sizeof bx),
                            (long long)(C / group));
    if (B) {
        if ((rc = nn_need_float(call, 2, "B", err)))
            return rc;
        if (nn_tensor_elems(B) != M || B->rank != 1)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "bias %s must be [%lld]",
                                nn_shape_str(B, bw, sizeof bw), (long long)M);
    }

    const char *ap = nn_attr_string(node, "auto_pad", "NOTSET");
    int64_t out_sp[2];
    for (int i = 0; i < ns; i++) {
        int64_t in = X->dims[2 + i];
        int64_t ext = (ks[i] - 1) * di[i] + 1;
        if (strcmp(ap, "NOTSET") == 0) {
            out_sp[i] = (in + pads[i] + pads[i + ns] - ext) / st[i] + 1;
            if (in + pads[i] + pads[i + ns] < ext)
                out_sp[i] = 0;
        } else if (strcmp(ap, "VALID") == 0) {
            pads[i] = pads[i + ns] = 0;
            out_sp[i] = in >= ext ? (in - ext) / st[i] + 1 : 0;
        } else if (strcmp(ap, "SAME_UPPER") == 0 ||
                   strcmp(ap, "SAME_LOWER") == 0) {
            out_sp[i] = (in + st[i] - 1) / st[i];
            int64_t total = (out_sp[i] - 1) * st[i] + ext - in;
            if (total < 0)
                total = 0;
            int64_t small = total / 2;
            pads[i] = ap[5] == 'U' ? small : total - small;
            pads[i + ns] = total - pads[i];
        } else {
            return nn_node_fail(err, node, NN_EUNSUPPORTED,
                                "auto_pad '%s' is not supported", ap);
        }
        if (out_sp[i] < 1)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "kernel %s is larger than the padded input %s",
                                nn_shape_str(Wt, bw, sizeof bw),
                                nn_shape_str(X, bx, sizeof bx));
    }

    int64_t odims[4] = {N, M, out_sp[0], ns == 2 ? out_sp[1] : 0};
    int64_t big = N * C * X->dims[2] * (ns == 2 ? X->dims[3] : 1);
    if (big > INT32_MAX || M * out_sp[0] * (ns == 2 ? out_sp[1] : 1) > INT32_MAX)
        return nn_node_fail(err, node, NN_EUNSUPPORTED, "Conv too large");
    p->N = (int)N;
    p->C = (int)C;
    p->M = (int)M;
    p->group = (int)group;
    p->Cg = (int)(C / group);
    p->Mg = (int)(M / group);
    if (ns == 2) {
        p->H = (int)X->dims[2];
        p->W = (int)X->dims[3];
        p->kh = (int)ks[0];
        p->kw = (int)ks[1];
        p->sh = (int)st[0];
        p->sw = (int)st[1];
        p->dh = (int)di[0];
        p->dw = (int)di[1];
        p->pt = (int)pads[0];
        p->pl = (int)pads[1];
        p->Ho = (int)out_sp[0];
        p->Wo = (int)out_sp[1];
    } else {
        p->H = 1;
        p->W = (int)X->dims[2];
        p->kh = p->sh = p->dh = 1;
        p->pt = 0;
        p->kw = (int)ks[0];
        p->sw = (int)st[0];
        p->dw = (int)di[0];
        p->pl = (int)pads[0];
        p->Ho = 1;
        p->Wo = (int)out_sp[0];
    }
    p->K = p->Cg * p->kh * p->kw;
    p->has_bias = B != NULL;
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, X->rank, odims);

    if (node->fusion.residual >= 0) {
        const nn_tensor_t *R = call->n_in > 3 ? call->in[3] : NULL;
        if (!R || R->dtype != NN_DTYPE_FLOAT ||
            nn_tensor_elems(R) != nn_tensor_elems(call->out[0]) ||
            R->rank != X->rank)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "fused residual must be a float tensor of "
                                "the output's shape");
        for (int i = 0; i < R->rank; i++)
            if (R->dims[i] != odims[i])
                return nn_node_fail(err, node, NN_ESHAPE,
                                    "fused residual %s differs from the output",
                                    nn_shape_str(R, bx, sizeof bx));
        p->has_res = 1;
    }

    int64_t P = (int64_t)p->Ho * p->Wo;
    const nn_tensor_t *PW = call->n_in > 5 ? call->in[5] : NULL;
    if (p->group > 1 && p->Cg == 1)
        p->kind = NN_CONV_DEPTHWISE;
    else if (PW && PW->data && PW->rank == 4) /* nn_conv_packed_dims' lanes layout */
        p->kind = NN_CONV_GROUPED_LANES;
    else if (nn_conv_narrow_groups(p->group, p->Cg, p->Mg, p->sw, p->dw))
        p->kind = NN_CONV_GROUPED;
    else if (p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 &&
             p->pt == 0 && p->pl == 0 && pads[ns] == 0 &&
             (ns == 1 || pads[3] == 0))
        p->kind = NN_CONV_POINTWISE;
    else if (nn_wino_usable(call, p, P))
        p->kind = NN_CONV_WINOGRAD;
    else
        p->kind = NN_CONV_IM2COL;
    if (p->kind == NN_CONV_IM2COL)
        call->scratch_bytes = (size_t)p->K * (size_t)P * sizeof(float);
    if (p->kind == NN_CONV_WINOGRAD) {
        p->wino_own = nn_sgemm_has(call->isa);
        p->wt = call->in[4]->dims[0] == 36 ? 4 : 2;
        p->th = (p->Ho + p->wt - 1) / p->wt;
        p->tw = (p->Wo + p->wt - 1) / p->wt;
        size_t nt = (size_t)p->th * p->tw;
        size_t nx = (size_t)(p->wt + 2) * (p->wt + 2);
        size_t image = nx * ((size_t)p->C + (size_t)p->M) * nt * sizeof(float);
        /* Small maps (14x14: 49 tiles) make narrow products: the tiles of
         * a few images go through them together, as many as make at most
         * NN_WINO_COLUMNS columns within NN_WINO_GROUP_BYTES of scratch
         * (larger maps, one image at a time: their scratch stays small). */
        size_t group = NN_WINO_COLUMNS / nt;
        if (group > NN_WINO_GROUP_BYTES / image)
            group = NN_WINO_GROUP_BYTES / image;
        if (group > (size_t)p->N)
            group = (size_t)p->N;
        p->wgroup = group > 1 ? (int)group : 1;
        p->wband = p->th;
        const size_t u = nx * (size_t)p->C * (size_t)p->M * sizeof(float);
        if (p->wino_own && p->wgroup == 1 && image > NN_WINO_BAND_BYTES &&
            image > NN_WINO_BAND_OVER_U * u) {
            const size_t row = image / (size_t)p->th; /* one tile row's share */
            p->wband = NN_WINO_BAND_BYTES / row > 0 ? (int)(NN_WINO_BAND_BYTES / row) : 1;
            image = row * (size_t)p->wband;
        }
        call->scratch_bytes = image * (size_t)p->wgroup;
    } else if (!Wt->data && call->n_in > 4 && call->in[4]) {
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "weights were kept only in Winograd form, which "
                            "this input size cannot use");
    }
    if (p->kind == NN_CONV_GROUPED_LANES) {
        /* The optimiser packed W for grouplanes.h's kernel. */
        nn_grouplanes_t gl;
        const nn_dwconv_geom_t dg = nn_dw_geom(p);
        const size_t floats = nn_grouplanes_init(&gl, &dg, p->Cg, p->Mg);
        int64_t want[4];
        nn_conv_packed_dims(node, Wt, NN_CONV_PACK_LANES, want);
        if (floats == 0 || call->isa < NN_ISA_AVX512 || memcmp(PW->dims, want, sizeof want) != 0)
            return nn_node_fail(err, node, NN_EUNSUPPORTED,
                                "weights were kept only packed for the %s grouped "
                                "kernel, which this convolution cannot use",
                                nn_isa_name(call->isa));
        /* One slot an item (a thread's chunk of items uses its first), for
         * the finest split exec makes. */
        int chunk, items;
        nn_conv_lanes_split(p, &gl, 2, &chunk, &items);
        call->scratch_bytes = (size_t)N * p->group * items * floats * sizeof(float);
    } else if (PW && PW->data) {
        /* The optimiser packed W (nn_conv_packs) for this call's kernels. */
        if ((p->kind != NN_CONV_POINTWISE && p->kind != NN_CONV_IM2COL) ||
            !nn_sgemm_has(call->isa) ||
            nn_tensor_elems(PW) != (int64_t)p->group * (int64_t)nn_sgemm_packed_floats(p->Mg, p->K))
            return nn_node_fail(err, node, NN_EUNSUPPORTED,
                                "weights were kept only packed for the %s products, "
                                "which this convolution cannot use", nn_isa_name(call->isa));
        p->packed = 1;
        /* Small maps of several images: each thread's rows of W serve
         * every image (the unfolded inputs of all of them in scratch). */
        size_t unfolded = p->kind == NN_CONV_IM2COL ? (size_t)p->K * (size_t)P * N * sizeof(float)
                                                   : 0;
        p->images = p->group == 1 && N > 1 && P <= NN_IMAGES_MAX_PIXELS &&
                    unfolded <= NN_IMAGES_SCRATCH_BYTES;
        if (p->images && unfolded > call->scratch_bytes)
            call->scratch_bytes = unfolded;
        const size_t parts = nn_conv_splits_k(p, P)
                                 ? (size_t)NN_CONV_KSPLIT_MAX * p->Mg * P * sizeof(float)
                                 : 0;
        if (parts > call->scratch_bytes)
            call->scratch_bytes = parts;
        /* Shallow products on large maps: no unfolding at all. */
        if (p->kind == NN_CONV_IM2COL && p->group == 1 && !p->has_res && !p->images) {
            const nn_dwconv_geom_t dg = nn_dw_geom(p);
            size_t planes = nn_convflat_floats(call->isa, &dg, p->C) * sizeof(float);
            p->flat = planes > 0;
            if (planes > call->scratch_bytes)
                call->scratch_bytes = planes;
        }
    }
    if (p->kind == NN_CONV_DEPTHWISE || p->kind == NN_CONV_GROUPED) {
        /* Rows and columns the taps reach, the columns rounded up to whole
         * 8-wide output blocks; one padded plane per (image, channel). */
        int64_t wo8 = ((int64_t)p->Wo + 7) / 8 * 8;
        int64_t hp = (int64_t)(p->Ho - 1) * p->sh + (int64_t)(p->kh - 1) * p->dh + 1;
        int64_t wp = (wo8 - 1) * p->sw + (int64_t)(p->kw - 1) * p->dw + 1;
        if (nn_dw_split(p)) /* even, then odd columns: wo8 + (kw-1)/2 each */
            wp = 2 * (wo8 + (p->kw - 1) / 2);
        if (hp * wp > INT32_MAX / 2 || N * C * hp * wp > INT32_MAX)
            return nn_node_fail(err, node, NN_EUNSUPPORTED, "Conv too large");
        p->Hp = (int)hp;
        p->Wp = (int)wp;
        p->Wh = (int)(wp / 2);
        size_t slot = (size_t)(hp * wp);
        if (p->kind == NN_CONV_DEPTHWISE) {
            const nn_dwconv_geom_t dg = nn_dw_geom(p);
            size_t flat = nn_dwconv_flat_floats(call->isa, &dg);
            if (flat > slot)
                slot = flat;
        }
        if (slot > INT32_MAX / 2)
            return nn_node_fail(err, node, NN_EUNSUPPORTED, "Conv too large");
        p->slot = (int)slot;
        call->scratch_bytes = (size_t)N * C * slot * sizeof(float);
        /* Small maps: blocks of 16 channels in the lanes (dwlanes.h), one
         * slot of scratch a block. */
        const nn_dwconv_geom_t dg = nn_dw_geom(p);
        nn_dwlanes_t dl;
        const size_t lanes = p->kind == NN_CONV_DEPTHWISE && p->Mg == 1
                                 ? nn_dwlanes_init(&dl, call->isa, &dg, NN_DWLANES_MAX_OUTPUTS)
                                 : 0;
        const size_t blocks = (size_t)N * ((C + NN_DWLANES_BLOCK - 1) / NN_DWLANES_BLOCK);
        if (lanes * blocks * sizeof(float) > call->scratch_bytes)
            call->scratch_bytes = lanes * blocks * sizeof(float);
    }
    call->flops = 2.0 * (double)N * (double)M * (double)P * (double)p->K;
    return nn_conv_plan_by_image(call, err);
}

/* ---- whole images per thread -----------------------------------------------------
 * A pass of several images (engine.c runs a batch in passes) can give each
 * thread whole images instead of a share of every image: each runs its
 * images alone through the one-image plan, in its own scratch slot, with
 * no traffic between cores and no waiting inside the layer. On small maps
 * with few output channels, splitting one image gave each thread too
 * little (DenseNet's 128 -> 32 3x3s on 7x7 ran slower on two threads
 * than on one); on large ones the layers after read what their own core
 * wrote. */

#define NN_CONV_MAX_INPUTS 8 /* X, W, B, residual, Winograd's U, packed W */

/* The tensors of image n of x (and res, y), as a call for one image sees
 * them: the batch's with the first dimension 1 and the data moved on. */
typedef struct nn_conv_image_call {
    nn_call_t call;
    nn_tensor_t x, y, res;
    nn_tensor_t *in[NN_CONV_MAX_INPUTS], *out[1];
} nn_conv_image_call_t;

static void nn_conv_image_call(nn_conv_image_call_t *c, const nn_call_t *call)
{
    c->call = *call;
    memset(c->in, 0, sizeof c->in);
    for (int i = 0; i < call->n_in && i < NN_CONV_MAX_INPUTS; i++)
        c->in[i] = call->in[i];
    c->x = *call->in[0];
    c->x.dims[0] = 1;
    c->in[0] = &c->x;
    if (call->n_in > 3 && call->in[3]) {
        c->res = *call->in[3];
        c->res.dims[0] = 1;
        c->in[3] = &c->res;
    }
    c->y = *call->out[0];
    c->y.dims[0] = 1;
    c->out[0] = &c->y;
    c->call.in = c->in;
    c->call.out = c->out;
    c->call.pool = NULL;
    c->call.out_stride = 0; /* one image: its own place */
}

static int nn_conv_plan_by_image(nn_call_t *call, nn_error_t *err)
{
    nn_conv_call_params_t *cp = NN_PARAMS(call, nn_conv_call_params_t);
    const nn_conv_params_t *p = &cp->all;
    if (p->N < 2 || call->n_in > NN_CONV_MAX_INPUTS)
        return 0;
    nn_conv_image_call_t one;
    nn_conv_image_call(&one, call);
    one.call.scratch_bytes = 0; /* what one image needs, not the batch's */
    int rc = nn_op_conv_prepare(&one.call, err);
    if (rc)
        return rc;
    cp->one = *NN_PARAMS(&one.call, nn_conv_params_t);
    cp->all.by_image = 1;
    cp->all.image_scratch = (one.call.scratch_bytes + 63) / 64 * 64;
    call->out_strided = 1; /* the images run one at a time then */
    /* Slots for N threads: exec uses one a thread, and splits images only
     * where there are at least as many images as threads. */
    const size_t slots = (size_t)p->N * cp->all.image_scratch;
    if (slots > call->scratch_bytes)
        call->scratch_bytes = slots;
    return 0;
}

/* Images [begin, end) through the one-image plan, in slot tid of the
 * scratch, split over pool (NULL: this thread alone). The output's images
 * lie call->out_stride floats apart where the plan set that. */
static void nn_conv_images_alone(const nn_call_t *call, int64_t begin, int64_t end, int tid,
                                 nn_pool_t *pool)
{
    const nn_conv_call_params_t *cp = NN_PARAMS(call, const nn_conv_call_params_t);
    const nn_conv_params_t *p = &cp->all;
    nn_conv_image_call_t one;
    nn_conv_image_call(&one, call);
    one.call.pool = pool;
    memcpy(one.call.params, &cp->one, sizeof cp->one);
    one.call.scratch = call->scratch ? (char *)call->scratch + (size_t)tid * p->image_scratch
                                     : NULL;
    one.call.scratch_bytes = p->image_scratch;
    const size_t in_img = (size_t)p->C * p->H * p->W, out_img = (size_t)p->M * p->Ho * p->Wo;
    const size_t y_img = call->out_stride ? call->out_stride : out_img;
    for (int64_t n = begin; n < end; n++) {
        one.x.data = (float *)call->in[0]->data + (size_t)n * in_img;
        one.y.data = (float *)call->out[0]->data + (size_t)n * y_img;
        if (call->n_in > 3 && one.call.in[3] == &one.res)
            one.res.data = (float *)call->in[3]->data + (size_t)n * out_img;
        nn_op_conv_exec(&one.call);
    }
}

/* Items are images; a thread's slot serves each of its images in turn. */
static void nn_conv_by_image(void *arg, int64_t begin, int64_t end, int tid)
{
    nn_conv_images_alone(arg, begin, end, tid, NULL);
}

/* ---- im2col + sgemm ------------------------------------------------------------- */

/* Unfolds output columns [p0, p1) of input channels [c0, c1) of one
 * image-group x (Cg planes) into col (K rows, row stride ld, column p0
 * stored at col[0]; channel c's rows start at row c * kh * kw). */
/* ---- unfolding small maps, AVX-512 ---------------------------------------------
 * On 7x7 and 14x14 maps the general loop below copies rows of 7 or 14
 * floats, each with its bounds worked out, and costs as much as the
 * product it feeds when the layer has few output channels (DenseNet's 32).
 * Here a channel's plane is padded once on the stack, and every unfolded
 * row of the output map is one masked load and store. */

#define NN_UNFOLD_PLANE 4096 /* floats of a padded plane this path takes */

/* Rows and columns of the padded plane the taps reach. */
static int nn_unfold_hp(const nn_conv_params_t *p)
{
    return (p->Ho - 1) * p->sh + (p->kh - 1) * p->dh + 1;
}

static int nn_unfold_wp(const nn_conv_params_t *p)
{
    return (p->Wo - 1) + (p->kw - 1) * p->dw + 1;
}

static int nn_unfold_small_suits(nn_isa_t isa, const nn_conv_params_t *p, int p0, int p1)
{
#if defined(__x86_64__)
    return isa >= NN_ISA_AVX512 && p->sw == 1 && p->Wo <= 16 && p0 == 0 &&
           p1 == p->Ho * p->Wo && nn_unfold_hp(p) * nn_unfold_wp(p) <= NN_UNFOLD_PLANE;
#else
    (void)isa, (void)p, (void)p0, (void)p1;
    return 0;
#endif
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))) static void
nn_unfold_small_avx512(const nn_conv_params_t *p, const float *x, float *col, int ld,
                       int c0, int c1)
{
    float pad[NN_UNFOLD_PLANE];
    const int H = p->H, W = p->W, Ho = p->Ho, Wo = p->Wo;
    const int Hp = nn_unfold_hp(p), Wp = nn_unfold_wp(p);
    const __mmask16 m = (__mmask16)((1u << Wo) - 1);
    /* input columns ix = q - pl inside [0, W) for padded column q */
    const int q0 = p->pl > 0 ? p->pl : 0;
    const int q1 = W + p->pl < Wp ? W + p->pl : Wp;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int r = 0; r < Hp; r++) {
            float *dr = pad + r * Wp;
            const int iy = r - p->pt;
            for (int q = 0; q < Wp; q++)
                dr[q] = iy >= 0 && iy < H && q >= q0 && q < q1 ? xc[(size_t)iy * W + q - p->pl]
                                                               : 0.0f;
        }
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                float *dst = col + (size_t)((c * p->kh + ky) * p->kw + kx) * ld;
                const float *src = pad + ky * p->dh * Wp + kx * p->dw;
                for (int oy = 0; oy < Ho; oy++)
                    _mm512_mask_storeu_ps(dst + oy * Wo, m,
                                          _mm512_maskz_loadu_ps(m, src + oy * p->sh * Wp));
            }
    }
}
#endif

static void nn_im2col(nn_isa_t isa, const nn_conv_params_t *p, const float *x, float *col,
                      int ld, int p0, int p1, int c0, int c1)
{
#if defined(__x86_64__)
    if (nn_unfold_small_suits(isa, p, p0, p1)) {
        nn_unfold_small_avx512(p, x, col, ld, c0, c1);
        return;
    }
#else
    (void)isa;
#endif
    const int H = p->H, W = p->W, Wo = p->Wo, sw = p->sw;
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int ky = 0; ky < p->kh; ky++) {
            for (int kx = 0; kx < p->kw; kx++) {
                float *dst = col + (size_t)((c * p->kh + ky) * p->kw + kx) * ld;
                int off = kx * p->dw - p->pl; /* ix = ox * sw + off */
                /* ox range with 0 <= ix < W */
                int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
                int hi = W - 1 - off >= 0 ? (W - 1 - off) / sw + 1 : 0;
                int pos = p0, oy = p0 / Wo, ox = p0 % Wo;
                while (pos < p1) {
                    int end = Wo < ox + (p1 - pos) ? Wo : ox + (p1 - pos);
                    float *d = dst + (pos - p0) - ox; /* indexed by ox */
                    int iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= H) {
                        for (int q = ox; q < end; q++)
                            d[q] = 0.0f;
                    } else {
                        const float *row = xc + (size_t)iy * W + off;
                        int a = lo > ox ? lo : ox;
                        int b = hi < end ? hi : end;
                        if (b < a)
                            b = a;
                        for (int q = ox; q < a && q < end; q++)
                            d[q] = 0.0f;
                        if (sw == 1)
                            memcpy(d + a, row + a, (size_t)(b - a) * sizeof *d);
                        else
                            for (int q = a; q < b; q++)
                                d[q] = row[q * sw];
                        for (int q = b > ox ? b : ox; q < end; q++)
                            d[q] = 0.0f;
                    }
                    pos += end - ox;
                    oy++;
                    ox = 0;
                }
            }
        }
    }
}

typedef struct nn_conv_job {
    const nn_conv_params_t *p;
    const nn_fusion_t *fusion;
    const float *x, *w, *bias, *res;
    const float *pw;  /* W packed (p->packed), group after group */
    float *y;
    float *scratch;
    int cb;      /* columns per block (column split) */
    int nblocks; /* blocks per image */
    int n;       /* image (row split) */
    int g;       /* group (row split) */
    int mgrain;  /* rows per item (row split, K split) */
    int kparts;  /* K split: parts of K, blocks of rows a part */
    int kblocks;
    nn_isa_t isa; /* the call's: which copy of the kernels runs */
    const nn_dwconv_flat_t *dw_flat; /* depthwise on flat planes, or NULL */
    const nn_dwconv_inplace_t *dw_inplace; /* depthwise read in place, or NULL */
    const nn_dwlanes_t *dw_lanes;    /* depthwise, channels in the lanes, or NULL */
    const nn_grouplanes_t *grp_lanes; /* grouped, output channels in the lanes */
    int gl_chunk, gl_items;          /* ... its output blocks an item, items a group */
} nn_conv_job_t;

/* y[i] += r[i] + b (r may be NULL). */
NN_ISA_BODY void nn_conv_add_row_body(float *restrict y, const float *restrict r,
                                      float b, int n)
{
    if (r)
        for (int i = 0; i < n; i++)
            y[i] += r[i] + b;
    else
        for (int i = 0; i < n; i++)
            y[i] += b;
}
NN_ISA_DISPATCH(nn_conv_add_row,
                (float *restrict y, const float *restrict r, float b, int n),
                (y, r, b, n))

int nn_conv_clamp(const nn_fusion_t *f, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (f->act == NN_ACT_RELU)
        *lo = 0.0f;
    else if (f->act == NN_ACT_CLIP)
        *lo = f->alpha, *hi = f->beta;
    return f->act != NN_ACT_NONE && f->act != NN_ACT_RELU && f->act != NN_ACT_CLIP;
}

/* ---- pointwise kernel -----------------------------------------------------------
 * y[m][p] = act(bias[m] + r[m][p] + sum_k w[m][k] * x[k][p]) for a 1x1 Conv,
 * computed in registers 6 rows x 16 columns at a time and stored once.
 * sgemm would zero y, accumulate into it, and leave bias, residual and
 * activation to one more pass: three trips through a large output for a
 * product whose depth K is often only 16 to 160. The x panel of one column
 * tile (K x 16) stays in L1 while every row block reuses it. (The gain
 * over sgemm: bench/README.md, "Engine design notes".) */

#define NN_PW_MR 6
/* On smaller maps (14x14, 7x7) sgemm wins: there the weights, which it
 * packs into cache-sized blocks, outweigh the output. */
#define NN_PW_MIN_PIXELS 512
/* Deeper products (DenseNet's 1x1 convolutions over 256-1024 channels) have
 * an x panel too large for L1; sgemm's packing wins there. */
#define NN_PW_MAX_K 192
/* The same two bounds send an unfolded (im2col) input through it too: a
 * stem's 3x3 or 7x7 over 3 channels (K 27 or 147) on a large map.
 * Grouped convolutions with this many output channels per group or fewer
 * (RegNet: 8) run their unfolded input through this kernel too: sgemm's
 * packing costs more than an 8-row product. */
#define NN_PW_MAX_GROUP_ROWS 16

typedef struct nn_pw_args {
    const float *w;   /* row m0 of the weights, row stride K */
    const float *x;   /* column p0 of the input, row stride ldx */
    const float *r;   /* residual at (m0, p0), row stride ldy, or NULL */
    const float *bias;/* bias of row m0, or NULL */
    float *y;         /* output at (m0, p0), row stride ldy */
    int K, ldx, ldy;
    float lo, hi;     /* clamp applied in registers */
} nn_pw_args_t;

/* One tile of mr (<= NN_PW_MR) rows x n (<= 16) columns at column col. */
static inline __attribute__((always_inline)) void
nn_pw_tile(const nn_pw_args_t *a, int m, int mr, int col, int n)
{
    nn_v8 acc[NN_PW_MR][2] = {{{0}}};
    const float *wr[NN_PW_MR] = {0};
    _Pragma("GCC unroll 6")
    for (int i = 0; i < mr; i++) {
        float b = a->bias ? a->bias[m + i] : 0.0f;
        acc[i][0] = acc[i][1] = (nn_v8){b, b, b, b, b, b, b, b};
        wr[i] = a->w + (size_t)(m + i) * a->K;
    }
    const float *xk = a->x + col;
    if (n == 16) {
        for (int k = 0; k < a->K; k++, xk += a->ldx) {
            nn_v8 x0, x1;
            NN_V8_LOAD(x0, xk);
            NN_V8_LOAD(x1, xk + 8);
            _Pragma("GCC unroll 6")
    for (int i = 0; i < mr; i++) {
                acc[i][0] += wr[i][k] * x0;
                acc[i][1] += wr[i][k] * x1;
            }
        }
    } else {
        for (int k = 0; k < a->K; k++, xk += a->ldx) {
            float t[16] = {0};
            for (int q = 0; q < n; q++)
                t[q] = xk[q];
            nn_v8 x0, x1;
            NN_V8_LOAD(x0, t);
            NN_V8_LOAD(x1, t + 8);
            _Pragma("GCC unroll 6")
    for (int i = 0; i < mr; i++) {
                acc[i][0] += wr[i][k] * x0;
                acc[i][1] += wr[i][k] * x1;
            }
        }
    }
    const nn_v8 lov = {a->lo, a->lo, a->lo, a->lo, a->lo, a->lo, a->lo, a->lo};
    const nn_v8 hiv = {a->hi, a->hi, a->hi, a->hi, a->hi, a->hi, a->hi, a->hi};
    _Pragma("GCC unroll 6")
    for (int i = 0; i < mr; i++) {
        float *yr = a->y + (size_t)(m + i) * a->ldy + col;
        const float *rr = a->r ? a->r + (size_t)(m + i) * a->ldy + col : NULL;
        if (n == 16) {
            if (rr) {
                nn_v8 r0, r1;
                NN_V8_LOAD(r0, rr);
                NN_V8_LOAD(r1, rr + 8);
                acc[i][0] += r0;
                acc[i][1] += r1;
            }
            NN_V8_CLAMP(acc[i][0], lov, hiv);
            NN_V8_CLAMP(acc[i][1], lov, hiv);
            memcpy(yr, &acc[i][0], sizeof acc[i][0]);
            memcpy(yr + 8, &acc[i][1], sizeof acc[i][1]);
        } else {
            float t[16];
            memcpy(t, &acc[i][0], sizeof acc[i][0]);
            memcpy(t + 8, &acc[i][1], sizeof acc[i][1]);
            for (int q = 0; q < n; q++) {
                float v = rr ? t[q] + rr[q] : t[q];
                v = v < a->lo ? a->lo : v;
                yr[q] = v > a->hi ? a->hi : v;
            }
        }
    }
}

/* Rows [0, M) x columns [0, cols) of the product, in tiles. */
NN_ISA_BODY void nn_pw_gemm_body(const nn_pw_args_t *a, int M, int cols)
{
    for (int col = 0; col < cols; col += 16) {
        const int n = cols - col < 16 ? cols - col : 16;
        int m = 0;
        /* 6-row tiles; 8 or 7 rows left go as 4 + 4 or 4 + 3 (grouped
         * convolutions often have 8 channels per group). */
        for (; M - m > 8 || M - m == 6; m += NN_PW_MR)
            nn_pw_tile(a, m, NN_PW_MR, col, n);
        if (M - m >= 7) {
            nn_pw_tile(a, m, 4, col, n);
            m += 4;
        }
        switch (M - m) {
        case 5: nn_pw_tile(a, m, 5, col, n); break;
        case 4: nn_pw_tile(a, m, 4, col, n); break;
        case 3: nn_pw_tile(a, m, 3, col, n); break;
        case 2: nn_pw_tile(a, m, 2, col, n); break;
        case 1: nn_pw_tile(a, m, 1, col, n); break;
        default: break;
        }
    }
}
NN_ISA_DISPATCH(nn_pw_gemm, (const nn_pw_args_t *a, int M, int cols), (a, M, cols))

/* Whether the register-tiled kernel does a block's product (rather than
 * sgemm): large maps with shallow products, and narrow groups. */
static int nn_pw_suits(const nn_conv_params_t *p, int P)
{
    const int large_shallow = P >= NN_PW_MIN_PIXELS && p->K <= NN_PW_MAX_K;
    if (p->kind == NN_CONV_POINTWISE)
        return large_shallow;
    return p->kind == NN_CONV_IM2COL && (large_shallow || p->Mg <= NN_PW_MAX_GROUP_ROWS);
}

/* The epilogue of an own product writing y: bias, the residual r (row
 * stride ldr; one that shares y is in y already, so the product adds onto
 * it), the clamp of the fused activation. Returns whether an activation
 * remains to run on the finished rows. */
static int nn_conv_epilogue(const nn_conv_job_t *j, const float *bias, const float *r,
                            const float *y, int ldr, nn_sgemm_epilogue_t *e)
{
    const int shared = r && r == y;
    *e = (nn_sgemm_epilogue_t){.bias = bias, .res = shared ? NULL : r, .ldr = ldr,
                               .accumulate = shared};
    return nn_conv_clamp(j->fusion, &e->lo, &e->hi);
}

/* Output rows [m0, m1) x columns [p0, p1) of image-group (n, g):
 * y = W * B (+ bias + residual), then the activation. B holds the unfolded
 * (or pointwise: original) input with row stride ldb, column p0 first. */
static void nn_conv_block(const nn_conv_job_t *j, int n, int g, int m0,
                          int m1, int p0, int p1, const float *B, int ldb)
{
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    const int mbase = g * p->Mg;
    const size_t img = (size_t)n * p->M * P;
    float *y = j->y + img + (size_t)mbase * P + p0;
    const float *r = j->res ? j->res + img + (size_t)mbase * P + p0 : NULL;
    const int cols = p1 - p0;
    /* A residual that shares y must be in y before sgemm accumulates onto
     * it; otherwise sgemm writes y fresh and one pass per row, while the
     * row is in L1, adds bias and residual and applies the activation. */
    const int shared = r && r == y;
    if (p->packed) {
        const nn_fusion_t *f = j->fusion;
        float buf[NN_SGEMM_BUFFER_FLOATS] __attribute__((aligned(64)));
        nn_sgemm_epilogue_t e;
        const int post = nn_conv_epilogue(j, j->bias ? j->bias + mbase : NULL, r, y, P, &e);
        const float *pw = j->pw + (size_t)g * nn_sgemm_packed_floats(p->Mg, p->K);
        nn_sgemm(m0, m1, cols, p->K, pw, B, ldb, y, P, &e, buf);
        if (post)
            for (int m = m0; m < m1; m++)
                nn_apply_act(j->isa, f, y + (size_t)m * P, cols);
        return;
    }
    const float *w = j->w + (size_t)(mbase + m0) * p->K;
    if (nn_pw_suits(p, P)) {
        const nn_fusion_t *f = j->fusion;
        float lo, hi;
        const int post = nn_conv_clamp(f, &lo, &hi);
        nn_pw_args_t a = {
            .w = w, .x = B, .K = p->K, .ldx = ldb, .ldy = P,
            .r = r ? r + (size_t)m0 * P : NULL,
            .bias = j->bias ? j->bias + mbase + m0 : NULL,
            .y = y + (size_t)m0 * P,
            .lo = lo,
            .hi = hi,
        };
        nn_pw_gemm(j->isa, &a, m1 - m0, cols);
        if (post)
            for (int m = m0; m < m1; m++)
                nn_apply_act(j->isa, f, y + (size_t)m * P, cols);
        return;
    }
    if (cols == 1) {
        /* One output pixel (a classifier written as a 1x1 Conv on a 1x1
         * map): sgemv reads the weights once, where sgemm would first pack
         * all of them. With beta 0 it may still scale y, which must not
         * hold a NaN. */
        if (!shared)
            for (int m = m0; m < m1; m++)
                y[(size_t)m * P] = 0.0f;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, m1 - m0, p->K, 1.0f, w, p->K, B, ldb,
                    shared ? 1.0f : 0.0f, y + (size_t)m0 * P, P);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, cols,
                    p->K, 1.0f, w, p->K, B, ldb, shared ? 1.0f : 0.0f,
                    y + (size_t)m0 * P, P);
    }
    for (int m = m0; m < m1; m++) {
        float *ym = y + (size_t)m * P;
        const float bv = j->bias ? j->bias[mbase + m] : 0.0f;
        if (r && !shared)
            nn_conv_add_row(j->isa, ym, r + (size_t)m * P, bv, cols);
        else if (bv != 0.0f)
            nn_conv_add_row(j->isa, ym, NULL, bv, cols);
        if (j->fusion->act != NN_ACT_NONE)
            nn_apply_act(j->isa, j->fusion, ym, cols);
    }
}

/* Column split: items are (image, block of cb columns). */
static void nn_conv_cols(void *arg, int64_t begin, int64_t end, int tid)
{
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    const size_t in_img = (size_t)p->C * p->H * p->W;
    const size_t in_grp = (size_t)p->Cg * p->H * p->W;
    float *slot = j->scratch ? j->scratch + (size_t)tid * p->K * j->cb : NULL;
    for (int64_t it = begin; it < end; it++) {
        int n = (int)(it / j->nblocks);
        int p0 = (int)(it % j->nblocks) * j->cb;
        int p1 = p0 + j->cb < P ? p0 + j->cb : P;
        for (int g = 0; g < p->group; g++) {
            const float *x = j->x + n * in_img + g * in_grp;
            if (p->kind == NN_CONV_POINTWISE) {
                nn_conv_block(j, n, g, 0, p->Mg, p0, p1, x + p0, P);
            } else {
                nn_im2col(j->isa, p, x, slot, p1 - p0, p0, p1, 0, p->Cg);
                nn_conv_block(j, n, g, 0, p->Mg, p0, p1, slot, p1 - p0);
            }
        }
    }
}

/* Row split, phase 1: unfold input channels [begin, end) of image-group
 * (n, g) into the shared K x P matrix: each thread writes whole rows, no
 * cache line of another's (the maps are small here). */
static void nn_conv_unfold(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    const float *x = j->x + (size_t)j->n * p->C * p->H * p->W +
                     (size_t)j->g * p->Cg * p->H * p->W;
    nn_im2col(j->isa, p, x, j->scratch, P, 0, P, (int)begin, (int)end);
}

/* Row split, phase 2: items are blocks of mgrain output channels. */
static void nn_conv_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    int m0 = (int)begin * j->mgrain;
    int m1 = (int)end * j->mgrain;
    if (m1 > p->Mg)
        m1 = p->Mg;
    if (m0 >= m1)
        return;
    const float *B = j->scratch;
    if (p->kind == NN_CONV_POINTWISE)
        B = j->x + (size_t)j->n * p->C * P + (size_t)j->g * p->Cg * P;
    nn_conv_block(j, j->n, j->g, m0, m1, 0, P, B, P);
}

/* Images path, phase 1: unfold items (image, input channel) into the
 * scratch, one K x P matrix per image. */
static void nn_conv_unfold_images(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / p->C, c = it % p->C;
        nn_im2col(j->isa, p, j->x + (size_t)n * p->C * p->H * p->W,
                  j->scratch + (size_t)n * p->K * P,
                  P, 0, P, (int)c, (int)c + 1);
    }
}

/* Images path, phase 2: items are blocks of mgrain output channels, each
 * computed for every image while its weights are in cache. */
static void nn_conv_images_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    const int m0 = (int)begin * j->mgrain;
    const int m1 = (int)end * j->mgrain < p->M ? (int)end * j->mgrain : p->M;
    if (m0 >= m1)
        return;
    const size_t out_img = (size_t)p->M * P;
    const nn_fusion_t *f = j->fusion;
    float buf[NN_SGEMM_BUFFER_FLOATS] __attribute__((aligned(64)));
    nn_sgemm_epilogue_t e;
    const int post = nn_conv_epilogue(j, j->bias, j->res, j->y, P, &e);
    const nn_sgemm_images_t im = {
        .count = p->N,
        .bstride = p->kind == NN_CONV_POINTWISE ? (size_t)p->C * P : (size_t)p->K * P,
        .cstride = out_img,
        .rstride = out_img,
    };
    const float *B = p->kind == NN_CONV_POINTWISE ? j->x : j->scratch;
    nn_sgemm_images(m0, m1, P, p->K, j->pw, B, P, j->y, P, &e, &im, buf);
    for (int n = 0; post && n < p->N; n++)
        for (int m = m0; m < m1; m++)
            nn_apply_act(j->isa, f, j->y + n * out_img + (size_t)m * P, P);
}

static void nn_conv_images(nn_conv_job_t *j, nn_pool_t *pool)
{
    const nn_conv_params_t *p = j->p;
    const int nt = nn_pool_threads(pool);
    if (p->kind == NN_CONV_IM2COL)
        nn_pool_for(pool, (int64_t)p->N * p->C, nn_conv_unfold_images, j);
    int grain = (p->M + nt - 1) / nt;
    grain = (grain + NN_SGEMM_MR - 1) / NN_SGEMM_MR * NN_SGEMM_MR;
    j->mgrain = grain;
    nn_pool_for(pool, (p->M + grain - 1) / grain, nn_conv_images_rows, j);
}

/* ---- deep products split along K -------------------------------------------------
 * A 1x1 convolution that folds many channels into few on a small map
 * (MobileNet's and EfficientNet's projections, 576 -> 96 on 14x14) reads
 * an input larger than its weights and its output, written just before by
 * both cores, each a half of the channels (the depthwise layer splits by
 * channels). Split by rows or by columns, each thread read all of it,
 * half from the other core's cache, and two threads ran no faster than
 * one (0.16 ms either way, in MobileNetV2 on an Intel Xeon, Sapphire
 * Rapids). Here each thread multiplies its own share of the channels into
 * a part of the output, and the parts are then summed, with the bias,
 * the residual and the clamp, as the output's one store: 0.10 ms. */

/* One image: on several, such maps go through the images path (each
 * block of weights serving all of them) or whole images a thread. */
static int nn_conv_splits_k(const nn_conv_params_t *p, int64_t P)
{
    return p->kind == NN_CONV_POINTWISE && p->packed && p->group == 1 && p->N == 1 && P > 1 &&
           P <= NN_SGEMM_NARROW_N && p->K >= 4 * p->Mg && p->K >= 2 * NN_CONV_KSPLIT_MIN_K;
}

/* Where part i of n begins: on a 16-channel boundary, those the depthwise
 * layers split their work by (dwlanes.h). */
static int nn_conv_kbound(int K, int i, int n)
{
    return i >= n ? K : (int)((int64_t)K * i / n / 16 * 16);
}

/* Phase 1: items are (part, block of rows), parts outermost
 * so that thread t takes part t: the block's product over the part's
 * channels, into the part's slot of scratch. */
static void nn_conv_kpart(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    for (int64_t it = begin; it < end; it++) {
        const int part = (int)(it / j->kblocks), m0 = (int)(it % j->kblocks) * j->mgrain;
        const int m1 = m0 + j->mgrain < p->Mg ? m0 + j->mgrain : p->Mg;
        nn_sgemm_part(m0, m1, P, p->K, nn_conv_kbound(p->K, part, j->kparts),
                      nn_conv_kbound(p->K, part + 1, j->kparts), j->pw, j->x, P,
                      j->scratch + (size_t)part * p->Mg * P, P);
    }
}

/* y[i] = clamp(the n parts' s[k * stride + i] summed + b + r[i], lo, hi),
 * the clamp as the products' own (a NaN becomes lo); r may be y. */
NN_ISA_BODY void nn_conv_sum_parts_body(float *y, const float *restrict s, size_t stride, int n,
                                        const float *r, float b, float lo, float hi, int cols)
{
    for (int i = 0; i < cols; i++) {
        float v = s[i];
        for (int k = 1; k < n; k++)
            v += s[(size_t)k * stride + i];
        v += b;
        if (r)
            v += r[i];
        v = v > lo ? v : lo;
        y[i] = v < hi ? v : hi;
    }
}
NN_ISA_DISPATCH(nn_conv_sum_parts,
                (float *y, const float *restrict s, size_t stride, int n, const float *r,
                 float b, float lo, float hi, int cols),
                (y, s, stride, n, r, b, lo, hi, cols))

/* Phase 2: items are output rows. */
static void nn_conv_ksum(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const int P = p->Ho * p->Wo;
    float lo, hi;
    const int post = nn_conv_clamp(j->fusion, &lo, &hi);
    for (int64_t m = begin; m < end; m++) {
        const size_t row = (size_t)m * P;
        float *y = j->y + row;
        nn_conv_sum_parts(j->isa, y, j->scratch + (size_t)m * P, (size_t)p->Mg * P, j->kparts,
                          j->res ? j->res + row : NULL, j->bias ? j->bias[m] : 0.0f, lo, hi, P);
        if (post)
            nn_apply_act(j->isa, j->fusion, y, P);
    }
}

/* Parts: one a thread, at most NN_CONV_KSPLIT_MAX (more threads split
 * each part's rows too), each at least NN_CONV_KSPLIT_MIN_K deep. */
static void nn_conv_deep(nn_conv_job_t *j, nn_pool_t *pool, int nt)
{
    const nn_conv_params_t *p = j->p;
    int parts = nt < NN_CONV_KSPLIT_MAX ? nt : NN_CONV_KSPLIT_MAX;
    if (parts > p->K / NN_CONV_KSPLIT_MIN_K)
        parts = p->K / NN_CONV_KSPLIT_MIN_K;
    const int blocks = (nt + parts - 1) / parts;
    int grain = (p->Mg + blocks - 1) / blocks;
    grain = (grain + NN_SGEMM_MR - 1) / NN_SGEMM_MR * NN_SGEMM_MR;
    j->kparts = parts;
    j->mgrain = grain;
    j->kblocks = (p->Mg + grain - 1) / grain;
    nn_pool_for(pool, (int64_t)parts * j->kblocks, nn_conv_kpart, j);
    nn_pool_for(pool, p->Mg, nn_conv_ksum, j);
}

/* ---- depthwise ------------------------------------------------------------------ */

/* The padded plane of one input channel. Stride-2 kernels read it
 * de-interleaved: each padded row holds its even columns, then its odd
 * columns (p->Wh each), so that every tap is a contiguous 8-wide load. */
static int nn_dw_split(const nn_conv_params_t *p)
{
    return p->sw == 2 && p->dw == 1;
}

/* d[i] = s[2 * i] for i < n (vectorised in the AVX2 copy). */
NN_ISA_BODY void nn_dw_gather2_body(float *restrict d, const float *restrict s, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = s[2 * i];
}
NN_ISA_DISPATCH(nn_dw_gather2, (float *restrict d, const float *restrict s, int n),
                (d, s, n))

/* Copies input plane x into the interior of the padded plane xp. The
 * border is zeroed once per chunk (nn_conv_dw) and never written, since
 * every plane of a Conv has the same geometry. */
static void nn_dw_pad(nn_isa_t isa, const nn_conv_params_t *p, const float *x,
                      float *xp)
{
    const int H = p->H, W = p->W, Wp = p->Wp, pl = p->pl;
    int r0 = p->pt > 0 ? p->pt : 0, r1 = p->pt + H;
    if (r1 > p->Hp)
        r1 = p->Hp;
    for (int r = r0; r < r1; r++) {
        const float *s = x + (size_t)(r - p->pt) * W;
        float *d = xp + (size_t)r * Wp;
        if (nn_dw_split(p)) {
            /* Input column ix lands at padded column ix + pl, in the half
             * of its parity: two stride-2 gathers. */
            for (int ix = 0; ix < 2 && ix < W; ix++) {
                int c = ix + pl, at = c >> 1;
                int n = (W - ix + 1) / 2;
                if (n > p->Wh - at)
                    n = p->Wh - at;
                if (n > 0)
                    nn_dw_gather2(isa, d + (c & 1) * p->Wh + at, s + ix, n);
            }
        } else {
            int n = W < Wp - pl ? W : Wp - pl;
            if (n > 0)
                memcpy(d + pl, s, (size_t)n * sizeof *d);
        }
    }
}

/* One output row: y[ox] = clamp(bias + r[ox] + sum_taps k * xp, lo, hi),
 * 8 outputs at a time. sw, kh, kw, dw are constants in the common callers
 * so that the taps unroll (gcc -O2 does not fully unroll them by itself).
 * With sw == 2 the row is de-interleaved (nn_dw_split), odd columns wh
 * floats after the even ones. rr may alias yr: each element is read
 * before it is written. */
static inline __attribute__((always_inline)) void
nn_dw_row(const float *xr, int Wp, int Wh, int Wo, int sw, int kh, int kw,
          int dh, int dw, const float *k, float bias, float lo, float hi,
          const float *rr, float *yr)
{
    const nn_v8 lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    const nn_v8 hiv = {hi, hi, hi, hi, hi, hi, hi, hi};
    for (int ox = 0; ox < Wo; ox += 8) {
        nn_v8 acc = {bias, bias, bias, bias, bias, bias, bias, bias};
        const int n = Wo - ox < 8 ? Wo - ox : 8;
        if (rr) {
            nn_v8 rv = {0};
            if (n == 8)
                NN_V8_LOAD(rv, rr + ox);
            else
                for (int i = 0; i < n; i++)
                    rv[i] = rr[ox + i];
            acc += rv;
        }
        _Pragma("GCC unroll 8")
        for (int ky = 0; ky < kh; ky++) {
            const float *row = xr + (size_t)ky * dh * Wp + ox;
            const float *kr = k + ky * kw;
            _Pragma("GCC unroll 8")
            for (int kx = 0; kx < kw; kx++) {
                nn_v8 v;
                if (sw == 1)
                    NN_V8_LOAD(v, row + kx * dw);
                else /* de-interleaved stride 2 */
                    NN_V8_LOAD(v, row + (kx & 1) * Wh + (kx >> 1));
                acc += kr[kx] * v;
            }
        }
        NN_V8_CLAMP(acc, lov, hiv);
        if (n == 8)
            memcpy(yr + ox, &acc, sizeof acc);
        else
            for (int i = 0; i < n; i++)
                yr[ox + i] = acc[i];
    }
}

/* One output plane from the padded input plane xp, plus bias and the
 * residual plane r (NULL if none; may be y itself), clamped to [lo, hi]. */
NN_ISA_BODY void nn_dw_plane_body(const nn_conv_params_t *p, const float *xp,
                                  const float *k, float bias, float lo, float hi,
                                  const float *r, float *y)
{
    const int Wp = p->Wp, Wh = p->Wh, Wo = p->Wo, kh = p->kh, kw = p->kw;
    const int sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw;
    for (int oy = 0; oy < p->Ho; oy++) {
        const float *xr = xp + (size_t)oy * sh * Wp;
        float *yr = y + (size_t)oy * Wo;
        const float *rr = r ? r + (size_t)oy * Wo : NULL;
        if (sw > 2 || (sw == 2 && dw != 1)) {
            for (int ox = 0; ox < Wo; ox++) {
                float acc = rr ? bias + rr[ox] : bias;
                for (int ky = 0; ky < kh; ky++) {
                    const float *row = xr + (size_t)ky * dh * Wp + (size_t)ox * sw;
                    for (int kx = 0; kx < kw; kx++)
                        acc += k[ky * kw + kx] * row[kx * dw];
                }
                acc = acc < lo ? lo : acc;
                yr[ox] = acc > hi ? hi : acc;
            }
        } else if (kh == 3 && kw == 3 && dw == 1 && sw == 1) {
            nn_dw_row(xr, Wp, Wh, Wo, 1, 3, 3, dh, 1, k, bias, lo, hi, rr, yr);
        } else if (kh == 3 && kw == 3 && dw == 1) {
            nn_dw_row(xr, Wp, Wh, Wo, 2, 3, 3, dh, 1, k, bias, lo, hi, rr, yr);
        } else if (kh == 5 && kw == 5 && dw == 1 && sw == 1) {
            nn_dw_row(xr, Wp, Wh, Wo, 1, 5, 5, dh, 1, k, bias, lo, hi, rr, yr);
        } else if (kh == 5 && kw == 5 && dw == 1) {
            nn_dw_row(xr, Wp, Wh, Wo, 2, 5, 5, dh, 1, k, bias, lo, hi, rr, yr);
        } else {
            nn_dw_row(xr, Wp, Wh, Wo, sw, kh, kw, dh, dw, k, bias, lo, hi, rr, yr);
        }
    }
}
NN_ISA_DISPATCH(nn_dw_plane,
                (const nn_conv_params_t *p, const float *xp, const float *k, float bias,
                 float lo, float hi, const float *r, float *y),
                (p, xp, k, bias, lo, hi, r, y))

/* Items are (image, input channel): pad the plane, then compute its
 * `mult` output channels. A chunk reuses one padded plane (the slot of its
 * first item) so that it stays in cache, and zeroes it once. Relu and
 * Clip are applied in registers, other activations on the finished
 * plane. */
static void nn_conv_dw(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const size_t P = (size_t)p->Ho * p->Wo, HW = (size_t)p->H * p->W;
    const size_t padded = (size_t)p->Hp * p->Wp;
    const int mult = p->Mg; /* output channels per input channel */
    const nn_fusion_t *f = j->fusion;
    float lo, hi;
    const int post = nn_conv_clamp(f, &lo, &hi);
    const nn_dwconv_flat_t *fl = j->dw_flat;
    const nn_dwconv_inplace_t *inplace = j->dw_inplace; /* no padded plane */
    float *xp = inplace ? NULL : j->scratch + (size_t)begin * p->slot;
    if (xp)
        memset(xp, 0, (fl ? nn_flat_planes_floats(&fl->l) : padded) * sizeof *xp);
    for (int64_t it = begin; it < end; it++) {
        int n = (int)(it / p->C), c = (int)(it % p->C);
        const float *x = j->x + ((size_t)n * p->C + c) * HW;
        if (xp && fl)
            nn_flat_pad(&fl->l, x, xp);
        else if (xp)
            nn_dw_pad(j->isa, p, x, xp);
        for (int m = c * mult; m < (c + 1) * mult; m++) {
            float *y = j->y + ((size_t)n * p->M + m) * P;
            const float *r = j->res ? j->res + ((size_t)n * p->M + m) * P : NULL;
            const float *k = j->w + (size_t)m * p->kh * p->kw;
            const float b = j->bias ? j->bias[m] : 0.0f;
            if (inplace) {
                nn_dwconv_inplace_plane(inplace, x, k, b, lo, hi, r, y);
            } else if (fl) {
                nn_dwconv_flat_plane(fl, xp, k, b, lo, hi, r, y);
            } else if (nn_dwconv_has(j->isa, p->sw, p->dw)) {
                const nn_dwconv_plane_t a = {
                    .xp = xp, .Wp = p->Wp, .Wh = p->Wh, .Ho = p->Ho, .Wo = p->Wo,
                    .kh = p->kh, .kw = p->kw, .sh = p->sh, .sw = p->sw, .dh = p->dh,
                    .dw = p->dw, .k = k, .bias = b, .lo = lo, .hi = hi, .res = r, .y = y};
                nn_dwconv_plane(&a);
            } else {
                nn_dw_plane(j->isa, p, xp, k, b, lo, hi, r, y);
            }
            if (post)
                nn_apply_act(j->isa, f, y, (int64_t)P);
        }
    }
}

/* Items are blocks of 16 channels of an image (dwlanes.h), block-major:
 * a thread takes the same channels of every image, those the 1x1
 * convolution before (several images on small maps: split by output
 * channels) wrote on that core. A chunk's blocks share one slot of
 * scratch, zeroed once. */
static void nn_conv_dw_lanes(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const nn_dwlanes_t *d = j->dw_lanes;
    const size_t P = (size_t)p->Ho * p->Wo, HW = (size_t)p->H * p->W;
    float lo, hi;
    const int post = nn_conv_clamp(j->fusion, &lo, &hi);
    float *scratch = j->scratch + (size_t)begin * d->floats;
    memset(scratch, 0, d->floats * sizeof *scratch);
    for (int64_t it = begin; it < end; it++) {
        const int n = (int)(it % p->N), c0 = (int)(it / p->N) * NN_DWLANES_BLOCK;
        const int cn = p->C - c0 < NN_DWLANES_BLOCK ? p->C - c0 : NN_DWLANES_BLOCK;
        const size_t plane = (size_t)n * p->C + c0; /* M == C */
        float *y = j->y + plane * P;
        nn_dwlanes_block(d, cn, j->x + plane * HW, j->w + (size_t)c0 * p->kh * p->kw,
                         j->bias ? j->bias + c0 : NULL, lo, hi,
                         j->res ? j->res + plane * P : NULL, y, scratch);
        if (post)
            nn_apply_act(j->isa, j->fusion, y, (int64_t)(cn * P));
    }
}

/* ---- direct over flat planes (convflat.h) ------------------------------------------ */

typedef struct nn_flat_job {
    const nn_conv_job_t *j;
    nn_convflat_t f;
    int n;      /* image */
    int cb;     /* flat outputs per column block: whole tiles */
    int bands;  /* bands of input rows phase 1 pads */
    float lo, hi;
    int post;   /* an activation after the clamp */
} nn_flat_job_t;

/* Phase 1: items are (band of input rows, input channel) of image n,
 * band-major, padded into scratch: with one band a thread, each pads the
 * rows its core wrote (the layer before split its outputs by columns)
 * and will read (phase 2 splits by columns too). */
static void nn_conv_flat_pad(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_flat_job_t *fj = arg;
    const nn_conv_params_t *p = fj->j->p;
    const size_t HW = (size_t)p->H * p->W;
    for (int64_t it = begin; it < end; it++) {
        const int band = (int)(it / p->C), c = (int)(it % p->C);
        const int iy0 = (int)((int64_t)band * p->H / fj->bands);
        const int iy1 = (int)((int64_t)(band + 1) * p->H / fj->bands);
        nn_convflat_pad(&fj->f, c, fj->j->x + ((size_t)fj->n * p->C + c) * HW, iy0, iy1,
                        fj->j->scratch);
    }
}

/* Output channels [m0, m1) at outputs [q0, q1) along the flat planes of
 * image n, then the activation past the clamp on the dense outputs. */
static void nn_conv_flat_block(const nn_flat_job_t *fj, int m0, int m1, int q0, int q1)
{
    const nn_conv_job_t *j = fj->j;
    const size_t P = (size_t)j->p->Ho * j->p->Wo;
    float *y = j->y + (size_t)fj->n * j->p->M * P;
    nn_convflat_run(&fj->f, j->scratch, j->pw, j->bias, fj->lo, fj->hi, m0, m1, q0, q1, y);
    if (fj->post) {
        const int d0 = nn_convflat_dense(&fj->f, q0), d1 = nn_convflat_dense(&fj->f, q1);
        for (int m = m0; m < m1; m++)
            nn_apply_act(j->isa, j->fusion, y + m * P + d0, d1 - d0);
    }
}

/* Phase 2: items are blocks of outputs along the planes, all channels. */
static void nn_conv_flat_cols(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_flat_job_t *fj = arg;
    for (int64_t b = begin; b < end; b++) {
        const int q0 = (int)b * fj->cb;
        nn_conv_flat_block(fj, 0, fj->j->p->M, q0, q0 + fj->cb < fj->f.Q ? q0 + fj->cb : fj->f.Q);
    }
}

/* Phase 2 for stems: items are blocks of 16 output channels, all
 * outputs (see nn_conv_flat). */
static void nn_conv_flat_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_flat_job_t *fj = arg;
    const int M = fj->j->p->M;
    nn_conv_flat_block(fj, (int)begin * 16, (int)end * 16 < M ? (int)end * 16 : M, 0, fj->f.Q);
}

/* A stem (at most this many input channels) splits its outputs by
 * channels, not by columns: the pool or depthwise layer after it splits
 * by planes, and so reads on each core what that core wrote. */
#define NN_CONVFLAT_STEM_CHANNELS 4

/* Runs the convolution over flat planes; 0 where the call's instruction
 * set has no such kernel (nothing done). */
static int nn_conv_flat(const nn_conv_job_t *j, nn_pool_t *pool)
{
    const nn_conv_params_t *p = j->p;
    nn_flat_job_t fj = {.j = j};
    const nn_dwconv_geom_t dg = nn_dw_geom(p);
    const size_t planes = nn_convflat_floats(j->isa, &dg, p->C);
    if (!planes)
        return 0;
    nn_convflat_init(&fj.f, &dg, p->C, p->M);
    fj.post = nn_conv_clamp(j->fusion, &fj.lo, &fj.hi);
    /* About four blocks a thread, whole tiles of 48. */
    const int nt = nn_pool_threads(pool);
    int cb = (fj.f.Q + 4 * nt - 1) / (4 * nt);
    fj.cb = (cb + 47) / 48 * 48;
    const int blocks = (fj.f.Q + fj.cb - 1) / fj.cb;
    const int row_blocks = (p->M + 15) / 16;
    const int by_rows = p->C <= NN_CONVFLAT_STEM_CHANNELS && row_blocks >= 2 * nt;
    fj.bands = by_rows ? 1 : nt; /* stems: every thread reads every row */
    memset(j->scratch, 0, planes * sizeof(float)); /* the padding, once */
    for (int n = 0; n < p->N; n++) {
        fj.n = n;
        nn_pool_for(pool, (int64_t)fj.bands * p->C, nn_conv_flat_pad, &fj);
        if (by_rows)
            nn_pool_for(pool, row_blocks, nn_conv_flat_rows, &fj);
        else
            nn_pool_for(pool, blocks, nn_conv_flat_cols, &fj);
    }
    return 1;
}

/* ---- grouped (narrow groups) ------------------------------------------------------
 * Each output row segment of 8 pixels is computed for up to 8 output
 * channels of a group at once: one load of an input row segment feeds 8
 * FMAs, against a broadcast weight each. The group's input planes are
 * padded like depthwise ones, so there are no bounds checks. */

/* mt (<= 8) output channels from m, row oy, 8 pixels from ox. */
static inline __attribute__((always_inline)) void
nn_grp_tile(const nn_conv_job_t *j, const float *xp, const float *w,
            const float *bias, const float *r, float *y, int mt, int oy,
            int ox, float lo, float hi)
{
    const nn_conv_params_t *p = j->p;
    const size_t padded = (size_t)p->Hp * p->Wp, P = (size_t)p->Ho * p->Wo;
    const int taps = p->kh * p->kw, n = p->Wo - ox < 8 ? p->Wo - ox : 8;
    nn_v8 acc[8];
    _Pragma("GCC unroll 8")
    for (int o = 0; o < 8; o++)
        acc[o] = (nn_v8){0} + (bias && o < mt ? bias[o] : 0.0f);
    for (int c = 0; c < p->Cg; c++) {
        const float *plane = xp + c * padded + (size_t)oy * p->sh * p->Wp + ox;
        const float *wc = w + (size_t)c * taps;
        for (int ky = 0; ky < p->kh; ky++) {
            const float *row = plane + (size_t)ky * p->dh * p->Wp;
            for (int kx = 0; kx < p->kw; kx++) {
                nn_v8 v;
                if (p->sw == 1)
                    NN_V8_LOAD(v, row + kx);
                else /* de-interleaved stride 2 */
                    NN_V8_LOAD(v, row + (kx & 1) * p->Wh + (kx >> 1));
                const float *wt = wc + ky * p->kw + kx;
                _Pragma("GCC unroll 8")
                for (int o = 0; o < mt; o++)
                    acc[o] += wt[(size_t)o * p->K] * v;
            }
        }
    }
    const nn_v8 lov = {lo, lo, lo, lo, lo, lo, lo, lo};
    const nn_v8 hiv = {hi, hi, hi, hi, hi, hi, hi, hi};
    _Pragma("GCC unroll 8")
    for (int o = 0; o < mt; o++) {
        float *yr = y + o * P + (size_t)oy * p->Wo + ox;
        const float *rr = r ? r + o * P + (size_t)oy * p->Wo + ox : NULL;
        nn_v8 v = acc[o];
        if (n == 8) {
            if (rr) {
                nn_v8 t;
                NN_V8_LOAD(t, rr);
                v += t;
            }
            NN_V8_CLAMP(v, lov, hiv);
            memcpy(yr, &v, sizeof v);
        } else {
            for (int q = 0; q < n; q++) {
                float t = rr ? v[q] + rr[q] : v[q];
                t = t < lo ? lo : t;
                yr[q] = t > hi ? hi : t;
            }
        }
    }
}

/* All output channels of one group: tiles of 8 channels x 8 pixels. */
NN_ISA_BODY void nn_grp_group_body(const nn_conv_job_t *j, const float *xp, int n,
                                   int g, float lo, float hi)
{
    const nn_conv_params_t *p = j->p;
    const size_t P = (size_t)p->Ho * p->Wo;
    for (int m = 0; m < p->Mg; m += 8) {
        const int mt = p->Mg - m < 8 ? p->Mg - m : 8;
        const int oc = g * p->Mg + m;
        const float *w = j->w + (size_t)oc * p->K;
        const float *bias = j->bias ? j->bias + oc : NULL;
        float *y = j->y + ((size_t)n * p->M + oc) * P;
        const float *r = j->res ? j->res + ((size_t)n * p->M + oc) * P : NULL;
        for (int oy = 0; oy < p->Ho; oy++)
            for (int ox = 0; ox < p->Wo; ox += 8) {
                if (mt == 8)
                    nn_grp_tile(j, xp, w, bias, r, y, 8, oy, ox, lo, hi);
                else
                    nn_grp_tile(j, xp, w, bias, r, y, mt, oy, ox, lo, hi);
            }
    }
}
NN_ISA_DISPATCH(nn_grp_group,
                (const nn_conv_job_t *j, const float *xp, int n, int g, float lo,
                 float hi),
                (j, xp, n, g, lo, hi))

/* Items are (image, group). A chunk reuses the padded planes of its
 * first item's slot and zeroes them once, as nn_conv_dw does. */
static void nn_conv_grouped(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const size_t HW = (size_t)p->H * p->W;
    const size_t padded = (size_t)p->Hp * p->Wp;
    const nn_fusion_t *f = j->fusion;
    float lo, hi;
    const int post = nn_conv_clamp(f, &lo, &hi);
    float *xp = j->scratch + (size_t)begin * p->Cg * padded;
    memset(xp, 0, (size_t)p->Cg * padded * sizeof *xp);
    for (int64_t it = begin; it < end; it++) {
        int n = (int)(it / p->group), g = (int)(it % p->group);
        for (int c = 0; c < p->Cg; c++)
            nn_dw_pad(j->isa, p, j->x + ((size_t)n * p->C + (size_t)g * p->Cg + c) * HW,
                      xp + c * padded);
        nn_grp_group(j->isa, j, xp, n, g, lo, hi);
        if (post)
            nn_apply_act(j->isa, f, j->y + ((size_t)n * p->M + (size_t)g * p->Mg) *
                                       p->Ho * p->Wo,
                         (int64_t)p->Mg * p->Ho * p->Wo);
    }
}

/* Items are (image, group, output blocks, band of rows), with weights
 * packed by nn_grouplanes_pack. A chunk reuses the scratch slot of its
 * first item, zeroed once. */
static void nn_conv_grouped_lanes(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_conv_job_t *j = arg;
    const nn_conv_params_t *p = j->p;
    const nn_grouplanes_t *d = j->grp_lanes;
    const size_t HW = (size_t)p->H * p->W, P = (size_t)p->Ho * p->Wo;
    const size_t wg = nn_grouplanes_weight_floats(p->Cg, p->Mg, p->kh * p->kw);
    float lo, hi;
    const int post = nn_conv_clamp(j->fusion, &lo, &hi);
    float *scratch = j->scratch + (size_t)begin * d->floats;
    memset(scratch, 0, d->floats * sizeof *scratch);
    for (int64_t it = begin; it < end; it++) {
        const int64_t ng = it / j->gl_items;
        const int n = (int)(ng / p->group), g = (int)(ng % p->group);
        const int k = (int)(it % j->gl_items), band = k % d->bands;
        const int b0 = k / d->bands * j->gl_chunk, b1 = b0 + j->gl_chunk;
        const size_t out = (size_t)n * p->M + (size_t)g * p->Mg;
        float *y = j->y + out * P;
        nn_grouplanes_run(d, j->x + ((size_t)n * p->C + (size_t)g * p->Cg) * HW,
                          j->pw + (size_t)g * wg, j->bias ? j->bias + (size_t)g * p->Mg : NULL,
                          lo, hi, j->res ? j->res + out * P : NULL, y, scratch, b0, b1, band);
        if (post) {
            const int m0 = b0 * NN_GROUPLANES_BLOCK;
            const int m1 = b1 * NN_GROUPLANES_BLOCK < p->Mg ? b1 * NN_GROUPLANES_BLOCK : p->Mg;
            const int oy0 = band * d->band, rows = p->Ho - oy0 < d->band ? p->Ho - oy0 : d->band;
            for (int m = m0; m < m1; m++)
                nn_apply_act(j->isa, j->fusion, y + (size_t)m * P + (size_t)oy0 * p->Wo,
                             (int64_t)rows * p->Wo);
        }
    }
}

/* ---- exec ------------------------------------------------------------------------ */

/* ---- Winograd F(2x2, 3x3) ---------------------------------------------------
 * Stride-1 3x3 convolutions: a 2x2 output tile costs 16 products per
 * (input, output) channel pair instead of 36. With U = G g G^T (weights,
 * transformed once at load by nn_conv_winograd_weights), V = B^T d B (4x4
 * input tiles) and Y = A^T (U . V) A, the products become 16 GEMMs
 * [M x C] x [C x tiles] (Lavin & Gray, 2015). F(2x2, 3x3) keeps rounding
 * errors at the level of ordinary float sums. Transforms run over whole
 * rows of tiles so that the compiler vectorises them. */

#define NN_WINO_MAX_ROW 1024 /* padded input row, in floats */
#define NN_WINO4_MIN 28       /* F(4x4, 3x3) on maps at least this high and wide */

/* G g G^T of every 3x3 kernel for F(4x4, 3x3): u [36][M][C]. */
static void nn_wino4_transform(const float *w, int64_t M, int64_t C, float *u)
{
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
    };
    for (int64_t m = 0; m < M; m++) {
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (m * C + c) * 9;
            double t[6][3]; /* G g */
            for (int r = 0; r < 6; r++)
                for (int k = 0; k < 3; k++)
                    t[r][k] = G[r][0] * g[k] + G[r][1] * g[3 + k] + G[r][2] * g[6 + k];
            for (int r = 0; r < 6; r++)
                for (int q = 0; q < 6; q++)
                    u[((r * 6 + q) * M + m) * C + c] =
                        (float)(t[r][0] * G[q][0] + t[r][1] * G[q][1] + t[r][2] * G[q][2]);
        }
    }
}

/* G g G^T of every 3x3 kernel: u [16][M][C]. */
static void nn_wino_transform(const float *w, int64_t M, int64_t C, float *u)
{
    for (int64_t m = 0; m < M; m++) {
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (m * C + c) * 9;
            float t[4][3]; /* G g */
            for (int k = 0; k < 3; k++) {
                t[0][k] = g[k];
                t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
                t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
                t[3][k] = g[6 + k];
            }
            for (int r = 0; r < 4; r++) {
                float row[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]),
                                0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
                for (int q = 0; q < 4; q++)
                    u[((r * 4 + q) * M + m) * C + c] = row[q];
            }
        }
    }
}

int64_t nn_conv_winograd_rows(nn_isa_t isa, int64_t M)
{
    return nn_sgemm_has(isa) ? (M + NN_SGEMM_MR - 1) / NN_SGEMM_MR * NN_SGEMM_MR : M;
}

int nn_conv_winograd_weights(nn_isa_t isa, int tile, const float *w, int64_t M, int64_t C,
                             float *u)
{
    const int nx = (tile + 2) * (tile + 2);
    void (*transform)(const float *, int64_t, int64_t, float *) =
        tile == 4 ? nn_wino4_transform : nn_wino_transform;
    if (!nn_sgemm_has(isa)) {
        transform(w, M, C, u);
        return 0;
    }
    float *plain = malloc(sizeof(float) * (size_t)nx * (size_t)(M * C));
    if (!plain)
        return -NN_ENOMEM;
    transform(w, M, C, plain);
    const int64_t rows = nn_conv_winograd_rows(isa, M);
    for (int x = 0; x < nx; x++)
        nn_sgemm_pack_a(plain + (size_t)x * M * C, (int)C, (int)M, (int)C,
                        u + (size_t)x * rows * C);
    free(plain);
    return 0;
}

/* From 14x14 up: on SqueezeNet's 13x13 maps (64 channels in) the
 * unfolded product measured 8% faster for the whole model. */
int nn_conv_winograd_fits(int64_t Ho, int64_t Wo)
{
    return Ho > 1 && Ho * Wo >= 196 && Wo + 6 <= NN_WINO_MAX_ROW &&
           Ho * Wo <= (1 << 22);
}

int nn_conv_winograd_tile(int64_t Ho, int64_t Wo)
{
    return Ho >= NN_WINO4_MIN && Wo >= NN_WINO4_MIN ? 4 : 2;
}

/* Only with weights transformed at load (input 4), whose shape the
 * optimiser chose for this map size: [16, M, C], or, packed for the own
 * products where the call's instruction set has them, [16, M rounded up
 * to whole panels, C]. */
static int nn_wino_usable(const nn_call_t *call, const nn_conv_params_t *p,
                          int64_t P)
{
    (void)P;
    const nn_tensor_t *u = call->n_in > 4 ? call->in[4] : NULL;
    return u && u->data && u->dtype == NN_DTYPE_FLOAT && u->rank == 3 &&
           (u->dims[0] == 16 || u->dims[0] == 36) &&
           u->dims[1] == nn_conv_winograd_rows(call->isa, p->M) &&
           u->dims[2] == p->C &&
           p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 &&
           p->dh == 1 && p->dw == 1 && p->group == 1 &&
           p->W + 4 <= NN_WINO_MAX_ROW && nn_conv_winograd_fits(p->Ho, p->Wo);
}

typedef struct nn_wino_job {
    const nn_conv_params_t *p;
    const nn_fusion_t *fusion;
    const float *x, *u, *bias, *res;
    float *y;
    float *v, *o; /* [NX][C][NT] and [NX][M][NT], NX = (wt + 2)^2 */
    int ti0, ti1; /* the pass's tile rows */
    int nt;       /* tiles of one image in the pass: (ti1 - ti0) x tw */
    int NT;       /* columns of the products: nt per image of the group */
    int n0;       /* the group's first image */
    nn_isa_t isa;
} nn_wino_job_t;

/* Padded input rows y0 - pt .. y0 - pt + n - 1 of plane x, columns -pl ..
 * len - 1 - pl, zero outside the input. */
NN_ISA_BODY void nn_wino_load_rows(const nn_conv_params_t *p, const float *x, int y0,
                                   int n, int len, float rows[][NN_WINO_MAX_ROW])
{
    const int H = p->H, W = p->W, n_copy = W < len - p->pl ? W : len - p->pl;
    for (int r = 0; r < n; r++) {
        int yy = y0 - p->pt + r;
        for (int q = 0; q < len; q++)
            rows[r][q] = 0.0f;
        if (yy >= 0 && yy < H)
            memcpy(rows[r] + p->pl, x + (size_t)yy * W, (size_t)n_copy * sizeof(float));
    }
}

/* Output rows y0 .. y0 + n - 1 (those inside the plane) from yrow, plus
 * the residual plane res if any. */
NN_ISA_BODY void nn_wino_store_rows(const nn_conv_params_t *p,
                                    float yrow[][NN_WINO_MAX_ROW], int y0, int n,
                                    const float *res, float *y)
{
    const int Wo = p->Wo;
    for (int a = 0; a < n && y0 + a < p->Ho; a++) {
        size_t at = (size_t)(y0 + a) * Wo;
        if (res)
            for (int x = 0; x < Wo; x++)
                y[at + x] = yrow[a][x] + res[at + x];
        else
            memcpy(y + at, yrow[a], (size_t)Wo * sizeof(float));
    }
}

/* The fused activation over the output rows of the pass's tile rows. */
static void nn_wino_act_rows(const nn_wino_job_t *j, float *y)
{
    const nn_conv_params_t *p = j->p;
    const int r0 = j->ti0 * p->wt, r1 = j->ti1 * p->wt < p->Ho ? j->ti1 * p->wt : p->Ho;
    if (j->fusion->act != NN_ACT_NONE)
        nn_apply_act(j->isa, j->fusion, y + (size_t)r0 * p->Wo, (int64_t)(r1 - r0) * p->Wo);
}

/* V = B^T d B for the items [b, e) of the group: image it / C, input
 * channel it % C. */
NN_ISA_BODY void nn_wino_input_channels_body(const nn_wino_job_t *j, int64_t b,
                                             int64_t e)
{
    const nn_conv_params_t *p = j->p;
    const int C = p->C, H = p->H, W = p->W, tw = p->tw;
    const int len = 2 * tw + 2; /* padded row: columns -pl .. 2tw+1-pl */
    const size_t stride = (size_t)C * j->NT;
    float rows[4][NN_WINO_MAX_ROW], t[4][NN_WINO_MAX_ROW];
    for (int64_t it = b; it < e; it++) {
        const int64_t g = it / C, c = it % C;
        const float *x = j->x + ((size_t)(j->n0 + g) * C + c) * H * W;
        for (int ti = j->ti0; ti < j->ti1; ti++) {
            nn_wino_load_rows(p, x, 2 * ti, 4, len, rows);
            for (int q = 0; q < len; q++) { /* B^T d, whole rows */
                t[0][q] = rows[0][q] - rows[2][q];
                t[1][q] = rows[1][q] + rows[2][q];
                t[2][q] = rows[2][q] - rows[1][q];
                t[3][q] = rows[1][q] - rows[3][q];
            }
            float *out = j->v + (size_t)c * j->NT + (size_t)(g * j->nt + (ti - j->ti0) * tw);
            for (int r = 0; r < 4; r++) { /* (.) B, stride-2 over tiles */
                const float *tr = t[r];
                float *o0 = out + (size_t)(r * 4 + 0) * stride;
                float *o1 = out + (size_t)(r * 4 + 1) * stride;
                float *o2 = out + (size_t)(r * 4 + 2) * stride;
                float *o3 = out + (size_t)(r * 4 + 3) * stride;
                for (int tj = 0; tj < tw; tj++) {
                    const float *d = tr + 2 * tj;
                    o0[tj] = d[0] - d[2];
                    o1[tj] = d[1] + d[2];
                    o2[tj] = d[2] - d[1];
                    o3[tj] = d[1] - d[3];
                }
            }
        }
    }
}
NN_ISA_DISPATCH(nn_wino_input_channels, (const nn_wino_job_t *j, int64_t b, int64_t e),
                (j, b, e))

/* F(4x4, 3x3): V = B^T d B over 6x6 input tiles. B^T's rows, applied down
 * the columns and then
 * along the rows (stride 4 over tiles), for the items [b, e) of the group
 * (image it / C, input channel it % C):
 *   4 d0 - 5 d2 + d4            -4 d1 - 4 d2 + d3 + d4
 *   4 d1 - 4 d2 - d3 + d4       -2 d1 - d2 + 2 d3 + d4
 *   2 d1 - d2 - 2 d3 + d4        4 d1 - 5 d3 + d5 */
NN_ISA_BODY void nn_wino4_input_channels_body(const nn_wino_job_t *j, int64_t b,
                                              int64_t e)
{
    const nn_conv_params_t *p = j->p;
    const int C = p->C, H = p->H, W = p->W, tw = p->tw;
    const int len = 4 * tw + 2; /* padded row: columns -pl .. 4tw+1-pl */
    const size_t stride = (size_t)C * j->NT;
    float rows[6][NN_WINO_MAX_ROW], t[6][NN_WINO_MAX_ROW];
    for (int64_t it = b; it < e; it++) {
        const int64_t g = it / C, c = it % C;
        const float *x = j->x + ((size_t)(j->n0 + g) * C + c) * H * W;
        for (int ti = j->ti0; ti < j->ti1; ti++) {
            nn_wino_load_rows(p, x, 4 * ti, 6, len, rows);
            for (int q = 0; q < len; q++) { /* B^T d, whole rows */
                const float d0 = rows[0][q], d1 = rows[1][q], d2 = rows[2][q],
                            d3 = rows[3][q], d4 = rows[4][q], d5 = rows[5][q];
                t[0][q] = 4.0f * d0 - 5.0f * d2 + d4;
                t[1][q] = -4.0f * (d1 + d2) + d3 + d4;
                t[2][q] = 4.0f * (d1 - d2) - d3 + d4;
                t[3][q] = 2.0f * (d3 - d1) - d2 + d4;
                t[4][q] = 2.0f * (d1 - d3) - d2 + d4;
                t[5][q] = 4.0f * d1 - 5.0f * d3 + d5;
            }
            float *out = j->v + (size_t)c * j->NT + (size_t)(g * j->nt + (ti - j->ti0) * tw);
            for (int r = 0; r < 6; r++) { /* (.) B, stride-4 over tiles */
                const float *tr = t[r];
                float *o0 = out + (size_t)(r * 6 + 0) * stride;
                float *o1 = out + (size_t)(r * 6 + 1) * stride;
                float *o2 = out + (size_t)(r * 6 + 2) * stride;
                float *o3 = out + (size_t)(r * 6 + 3) * stride;
                float *o4 = out + (size_t)(r * 6 + 4) * stride;
                float *o5 = out + (size_t)(r * 6 + 5) * stride;
                for (int tj = 0; tj < tw; tj++) {
                    const float *d = tr + 4 * tj;
                    o0[tj] = 4.0f * d[0] - 5.0f * d[2] + d[4];
                    o1[tj] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
                    o2[tj] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
                    o3[tj] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
                    o4[tj] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
                    o5[tj] = 4.0f * d[1] - 5.0f * d[3] + d[5];
                }
            }
        }
    }
}
NN_ISA_DISPATCH(nn_wino4_input_channels, (const nn_wino_job_t *j, int64_t b, int64_t e),
                (j, b, e))

static void nn_wino_input(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const nn_wino_job_t *j = arg;
    if (j->p->wt == 4)
        nn_wino4_input_channels(j->isa, j, b, e);
    else
        nn_wino_input_channels(j->isa, j, b, e);
}

/* The 16 (or 36) products [M x C] x [C x NT]: the engine's own, on U
 * packed at load, where the instruction set has them. */
static void nn_wino_gemm(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const nn_wino_job_t *j = arg;
    const int M = j->p->M, C = j->p->C, NT = j->NT;
    if (j->p->wino_own) {
        float buf[NN_SGEMM_BUFFER_FLOATS] __attribute__((aligned(64)));
        const nn_sgemm_epilogue_t none = {.lo = -INFINITY, .hi = INFINITY};
        const size_t per = nn_sgemm_packed_floats(M, C);
        for (int64_t xi = b; xi < e; xi++)
            nn_sgemm(0, M, NT, C, j->u + (size_t)xi * per,
                     j->v + (size_t)xi * C * NT, NT, j->o + (size_t)xi * M * NT, NT, &none,
                     buf);
        return;
    }
    for (int64_t xi = b; xi < e; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, NT, C, 1.0f,
                    j->u + (size_t)xi * M * C, C, j->v + (size_t)xi * C * NT,
                    NT, 0.0f, j->o + (size_t)xi * M * NT, NT);
}

/* Y = A^T m A plus bias, residual and activation, for the items [b, e) of
 * the group: image it / M, output channel it % M. */
NN_ISA_BODY void nn_wino_output_channels_body(const nn_wino_job_t *j, int64_t b,
                                              int64_t e)
{
    const nn_conv_params_t *p = j->p;
    const int M = p->M, Ho = p->Ho, Wo = p->Wo, tw = p->tw;
    const size_t stride = (size_t)M * j->NT;
    float t[2][4][NN_WINO_MAX_ROW / 2], yrow[2][NN_WINO_MAX_ROW];
    for (int64_t it = b; it < e; it++) {
        const int64_t g = it / M, m = it % M;
        size_t plane = ((size_t)(j->n0 + g) * M + m) * Ho * Wo;
        float *y = j->y + plane;
        const float *res = j->res ? j->res + plane : NULL;
        const float bias = j->bias ? j->bias[m] : 0.0f;
        for (int ti = j->ti0; ti < j->ti1; ti++) {
            const float *in = j->o + (size_t)m * j->NT + (size_t)(g * j->nt + (ti - j->ti0) * tw);
            for (int c = 0; c < 4; c++) { /* A^T m, per tile column c */
                const float *q0 = in + (size_t)c * stride;
                const float *q1 = in + (size_t)(4 + c) * stride;
                const float *q2 = in + (size_t)(8 + c) * stride;
                const float *q3 = in + (size_t)(12 + c) * stride;
                for (int tj = 0; tj < tw; tj++) {
                    t[0][c][tj] = q0[tj] + q1[tj] + q2[tj];
                    t[1][c][tj] = q1[tj] - q2[tj] - q3[tj];
                }
            }
            for (int a = 0; a < 2; a++) /* (.) A, interleaved columns */
                for (int tj = 0; tj < tw; tj++) {
                    yrow[a][2 * tj] = t[a][0][tj] + t[a][1][tj] + t[a][2][tj] + bias;
                    yrow[a][2 * tj + 1] = t[a][1][tj] - t[a][2][tj] - t[a][3][tj] + bias;
                }
            nn_wino_store_rows(p, yrow, 2 * ti, 2, res, y);
        }
        nn_wino_act_rows(j, y);
    }
}
NN_ISA_DISPATCH(nn_wino_output_channels, (const nn_wino_job_t *j, int64_t b, int64_t e),
                (j, b, e))

/* F(4x4, 3x3): Y = A^T m A over 6x6 tiles plus bias, residual and
 * activation, for the items [b, e) of the group (image it / M, output
 * channel it % M). A^T's rows:
 *   m0 + m1 + m2 + m3 + m4       m1 - m2 + 2 m3 - 2 m4
 *   m1 + m2 + 4 m3 + 4 m4        m1 - m2 + 8 m3 - 8 m4 + m5 */
NN_ISA_BODY void nn_wino4_output_channels_body(const nn_wino_job_t *j, int64_t b,
                                               int64_t e)
{
    const nn_conv_params_t *p = j->p;
    const int M = p->M, Ho = p->Ho, Wo = p->Wo, tw = p->tw;
    const size_t stride = (size_t)M * j->NT;
    float t[4][6][NN_WINO_MAX_ROW / 4], yrow[4][NN_WINO_MAX_ROW];
    for (int64_t it = b; it < e; it++) {
        const int64_t g = it / M, m = it % M;
        size_t plane = ((size_t)(j->n0 + g) * M + m) * Ho * Wo;
        float *y = j->y + plane;
        const float *res = j->res ? j->res + plane : NULL;
        const float bias = j->bias ? j->bias[m] : 0.0f;
        for (int ti = j->ti0; ti < j->ti1; ti++) {
            const float *in = j->o + (size_t)m * j->NT + (size_t)(g * j->nt + (ti - j->ti0) * tw);
            for (int c = 0; c < 6; c++) { /* A^T m, per tile column c */
                const float *q0 = in + (size_t)c * stride;
                const float *q1 = in + (size_t)(6 + c) * stride;
                const float *q2 = in + (size_t)(12 + c) * stride;
                const float *q3 = in + (size_t)(18 + c) * stride;
                const float *q4 = in + (size_t)(24 + c) * stride;
                const float *q5 = in + (size_t)(30 + c) * stride;
                for (int tj = 0; tj < tw; tj++) {
                    const float s12 = q1[tj] + q2[tj], d12 = q1[tj] - q2[tj];
                    const float s34 = q3[tj] + q4[tj], d34 = q3[tj] - q4[tj];
                    t[0][c][tj] = q0[tj] + s12 + s34;
                    t[1][c][tj] = d12 + 2.0f * d34;
                    t[2][c][tj] = s12 + 4.0f * s34;
                    t[3][c][tj] = d12 + 8.0f * d34 + q5[tj];
                }
            }
            for (int a = 0; a < 4; a++) /* (.) A, interleaved columns */
                for (int tj = 0; tj < tw; tj++) {
                    const float *r0 = &t[a][0][tj];
                    const float m0 = r0[0], m1 = t[a][1][tj], m2 = t[a][2][tj],
                                m3 = t[a][3][tj], m4 = t[a][4][tj], m5 = t[a][5][tj];
                    const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
                    yrow[a][4 * tj] = m0 + s12 + s34 + bias;
                    yrow[a][4 * tj + 1] = d12 + 2.0f * d34 + bias;
                    yrow[a][4 * tj + 2] = s12 + 4.0f * s34 + bias;
                    yrow[a][4 * tj + 3] = d12 + 8.0f * d34 + m5 + bias;
                }
            nn_wino_store_rows(p, yrow, 4 * ti, 4, res, y);
        }
        nn_wino_act_rows(j, y);
    }
}
NN_ISA_DISPATCH(nn_wino4_output_channels, (const nn_wino_job_t *j, int64_t b, int64_t e),
                (j, b, e))

static void nn_wino_output(void *arg, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const nn_wino_job_t *j = arg;
    if (j->p->wt == 4)
        nn_wino4_output_channels(j->isa, j, b, e);
    else
        nn_wino_output_channels(j->isa, j, b, e);
}

static void nn_conv_winograd(const nn_conv_job_t *cj, const float *u,
                             nn_pool_t *pool)
{
    const nn_conv_params_t *p = cj->p;
    const int nx = (p->wt + 2) * (p->wt + 2);
    float *v = cj->scratch;
    float *o = v + (size_t)nx * p->C * p->wband * p->tw * p->wgroup;
    nn_wino_job_t j = {p, cj->fusion, cj->x, u, cj->bias, cj->res, cj->y,
                       v, o, 0, 0, 0, 0, 0, cj->isa};
    for (j.n0 = 0; j.n0 < p->N; j.n0 += p->wgroup) {
        const int group = p->N - j.n0 < p->wgroup ? p->N - j.n0 : p->wgroup;
        for (j.ti0 = 0; j.ti0 < p->th; j.ti0 = j.ti1) {
            j.ti1 = p->th - j.ti0 < p->wband ? p->th : j.ti0 + p->wband;
            j.nt = (j.ti1 - j.ti0) * p->tw;
            j.NT = group * j.nt;
            nn_pool_for(pool, (int64_t)group * p->C, nn_wino_input, &j);
            nn_pool_for(pool, nx, nn_wino_gemm, &j);
            nn_pool_for(pool, (int64_t)group * p->M, nn_wino_output, &j);
        }
    }
}

void nn_op_conv_exec(const nn_call_t *call)
{
    const nn_conv_params_t *p = NN_PARAMS(call, nn_conv_params_t);
    nn_conv_job_t j = {
        .p = p,
        .fusion = &call->node->fusion,
        .x = call->in[0]->data,
        .w = call->in[1]->data,
        .bias = p->has_bias ? call->in[2]->data : NULL,
        .res = p->has_res ? call->in[3]->data : NULL,
        .y = call->out[0]->data,
        .scratch = call->scratch,
        .pw = p->packed || p->kind == NN_CONV_GROUPED_LANES ? call->in[5]->data : NULL,
        .isa = call->isa,
    };
    nn_pool_t *pool = call->pool;
    const int nt = nn_pool_threads(pool);
    const int P = p->Ho * p->Wo;

    /* Whole images a thread, where they share out evenly enough (3 images
     * on 2 threads would leave one idle a third of the time). */
    if (p->by_image && nt > 1 && (p->N % nt == 0 || p->N >= 4 * nt)) {
        nn_pool_for(pool, p->N, nn_conv_by_image, (void *)call);
        return;
    }
    if (call->out_stride) { /* images apart in a Concat's output: one at a time */
        nn_conv_images_alone(call, 0, p->N, 0, pool);
        return;
    }
    if (p->kind == NN_CONV_DEPTHWISE) {
        /* Wide enough rows read in place; then channels in the lanes, the
         * flat layout, padded planes. Each layout's masks and offsets are
         * made once for every plane. */
        const nn_dwconv_geom_t dg = nn_dw_geom(p);
        nn_dwconv_inplace_t inplace;
        nn_dwconv_flat_t fl;
        if (nn_dwconv_inplace_init(&inplace, j.isa, &dg, NN_DWCONV_INPLACE_MIN_WO)) {
            j.dw_inplace = &inplace;
        } else {
            nn_dwlanes_t dl;
            const int64_t blocks =
                (int64_t)p->N * ((p->C + NN_DWLANES_BLOCK - 1) / NN_DWLANES_BLOCK);
            /* (prepare sized the scratch for the kernels its isa has) */
            const size_t lanes =
                p->Mg == 1 ? nn_dwlanes_init(&dl, j.isa, &dg, NN_DWLANES_MAX_OUTPUTS) : 0;
            if (lanes > 0 && lanes * (size_t)blocks * sizeof(float) <= call->scratch_bytes) {
                j.dw_lanes = &dl;
                nn_pool_for(pool, blocks, nn_conv_dw_lanes, &j);
                return;
            }
            const size_t flat = nn_dwconv_flat_floats(j.isa, &dg);
            if (flat > 0 && flat <= (size_t)p->slot) {
                nn_dwconv_flat_init(&fl, &dg);
                j.dw_flat = &fl;
            }
        }
        nn_pool_for(pool, (int64_t)p->N * p->C, nn_conv_dw, &j);
        return;
    }
    if (p->kind == NN_CONV_GROUPED) {
        nn_pool_for(pool, (int64_t)p->N * p->group, nn_conv_grouped, &j);
        return;
    }
    if (p->kind == NN_CONV_GROUPED_LANES) {
        nn_grouplanes_t gl;
        const nn_dwconv_geom_t dg = nn_dw_geom(p);
        nn_grouplanes_init(&gl, &dg, p->Cg, p->Mg);
        j.grp_lanes = &gl;
        nn_conv_lanes_split(p, &gl, nt, &j.gl_chunk, &j.gl_items);
        nn_pool_for(pool, (int64_t)p->N * p->group * j.gl_items, nn_conv_grouped_lanes, &j);
        return;
    }
    if (p->kind == NN_CONV_WINOGRAD) {
        nn_conv_winograd(&j, call->in[4]->data, pool);
        return;
    }
    if (p->images) {
        nn_conv_images(&j, pool);
        return;
    }
    if (p->flat && j.pw && nn_conv_flat(&j, pool))
        return;
    if (nt > 1 && nn_conv_splits_k(p, P)) {
        nn_conv_deep(&j, pool, nt);
        return;
    }
    /* Splitting rows pays when the output map is small next to the
     * weights: each thread then reads only its share of W. (ResNet-50's
     * 1024 -> 256 on 14x14, by columns: each thread read all 1 MB of W;
     * by rows, 6% faster on an Intel Xeon: bench/README.md.) */
    int split_rows = nt > 1 && p->Mg >= 8 * nt &&
                     (P < 32 * nt || (P < 256 && p->Mg >= P));
    if (!split_rows) {
        /* Blocks of about NN_CONV_BLOCK_BYTES of unfolded input (or of
         * output), at least 256 columns so that re-packing W per block
         * stays cheap, and the same number of blocks for every thread. */
        int wide = p->K > p->Mg ? p->K : p->Mg;
        int target = NN_CONV_BLOCK_BYTES / (int)sizeof(float) / wide;
        if (target < 256)
            target = 256;
        int per_thread = (P + nt - 1) / nt;
        int nb = (per_thread + target - 1) / target;
        int cb = (per_thread + nb - 1) / nb;
        /* Whole cache lines per block row (whole strips of the own
         * products, which otherwise run a narrow tail strip per block),
         * unless that would unbalance small maps (196 columns: 112 + 84). */
        const int unit = p->packed ? NN_SGEMM_NR : 16;
        if (per_thread >= 256)
            cb = (cb + unit - 1) / unit * unit;
        /* nt slots of K x cb must fit the K x P scratch. */
        if (p->kind == NN_CONV_IM2COL && cb > P / nt)
            cb = P / nt > 0 ? P / nt : 1;
        if (cb > P)
            cb = P;
        j.cb = cb;
        j.nblocks = (P + cb - 1) / cb;
        /* Fewer columns than threads: the slots would not fit. */
        if (p->kind == NN_CONV_IM2COL && (int64_t)cb * nt > P)
            pool = NULL;
        nn_pool_for(pool, (int64_t)p->N * j.nblocks, nn_conv_cols, &j);
        return;
    }
    int grain = (p->Mg + nt - 1) / nt;
    /* Whole panels of packed W (and whole 4-row tiles otherwise). */
    grain = p->packed ? (grain + NN_SGEMM_MR - 1) / NN_SGEMM_MR * NN_SGEMM_MR
                      : (grain + 3) / 4 * 4;
    j.mgrain = grain;
    int items = (p->Mg + grain - 1) / grain;
    for (int n = 0; n < p->N; n++) {
        for (int g = 0; g < p->group; g++) {
            j.n = n;
            j.g = g;
            if (p->kind == NN_CONV_IM2COL)
                nn_pool_for(pool, p->Cg, nn_conv_unfold, &j);
            nn_pool_for(pool, items, nn_conv_rows, &j);
        }
    }
}

/* ---- BatchNormalization ------------------------------------------------------ */

typedef struct nn_bn_params {
    float eps;
    int64_t N, C, S; /* S: elements per channel per image */
} nn_bn_params_t;
NN_PARAMS_FIT(nn_bn_params_t);

int nn_op_batchnorm_prepare(nn_call_t *call, nn_error_t *err)
{
    nn_bn_params_t *p = NN_PARAMS(call, nn_bn_params_t);
    memset(p, 0, sizeof *p);
    const nn_node_t *node = call->node;
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    if (call->n_in < 5 || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL,
                            "BatchNormalization needs 5 inputs");
    for (int k = 0; k < 5; k++) {
        int rc = nn_need_float(call, k, names[k], err);
        if (rc)
            return rc;
    }
    if (nn_attr_int(node, "training_mode", 0) != 0)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "training_mode=1 is not supported");
    if (node->opset < 9 && nn_attr_int(node, "spatial", 1) != 1)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "spatial=0 is not supported");
    for (int k = 1; k < call->n_out && k < node->n_outputs; k++)
        if (call->out[k] && node->outputs[k] >= 0)
            return nn_node_fail(err, node, NN_EUNSUPPORTED,
                                "training outputs (mean, var...) are not "
                                "supported");
    const nn_tensor_t *X = call->in[0];
    char buf[64];
    if (X->rank < 2)
        return nn_node_fail(err, node, NN_ESHAPE,
                            "input %s must have rank >= 2",
                            nn_shape_str(X, buf, sizeof buf));
    int64_t C = X->dims[1];
    for (int k = 1; k < 5; k++)
        if (call->in[k]->rank != 1 || call->in[k]->dims[0] != C)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "%s %s must be [%lld]", names[k],
                                nn_shape_str(call->in[k], buf, sizeof buf),
                                (long long)C);
    p->eps = nn_attr_float(node, "epsilon", 1e-5f);
    p->N = X->dims[0];
    p->C = C;
    p->S = 1;
    for (int i = 2; i < X->rank; i++)
        p->S *= X->dims[i];
    nn_tensor_like(call->out[0], X);
    call->flops = 2.0 * (double)nn_tensor_elems(X);
    return 0;
}

typedef struct nn_bn_job {
    const nn_bn_params_t *p;
    const float *x, *scale, *bias, *mean, *var;
    float *y;
    const nn_fusion_t *fusion; /* the activation fused after it (DenseNet's
                                * BatchNormalization -> Relu) */
    nn_isa_t isa;
} nn_bn_job_t;

/* y = clamp(x * a + b, lo, hi) over one plane, NaN passing through. */
NN_ISA_BODY void nn_bn_plane_body(float *y, const float *x, int64_t n, float a, float b,
                                  float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * a + b;
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}
NN_ISA_DISPATCH(nn_bn_plane,
                (float *y, const float *x, int64_t n, float a, float b, float lo, float hi),
                (y, x, n, a, b, lo, hi))

/* Items are (image, channel) planes. */
static void nn_bn_planes(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_bn_job_t *j = arg;
    const nn_bn_params_t *p = j->p;
    float lo, hi;
    const int post = nn_conv_clamp(j->fusion, &lo, &hi);
    for (int64_t it = begin; it < end; it++) {
        int64_t c = it % p->C;
        float a = j->scale[c] / sqrtf(j->var[c] + p->eps);
        float b = j->bias[c] - j->mean[c] * a;
        float *y = j->y + it * p->S;
        nn_bn_plane(j->isa, y, j->x + it * p->S, p->S, a, b, lo, hi);
        if (post)
            nn_apply_act(j->isa, j->fusion, y, p->S);
    }
}

void nn_op_batchnorm_exec(const nn_call_t *call)
{
    const nn_bn_params_t *p = NN_PARAMS(call, nn_bn_params_t);
    nn_bn_job_t j = {
        p,
        call->in[0]->data,
        call->in[1]->data,
        call->in[2]->data,
        call->in[3]->data,
        call->in[4]->data,
        call->out[0]->data,
        &call->node->fusion,
        call->isa,
    };
    int64_t items = p->N * p->C;
    /* Small tensors are not worth a hand-off. */
    nn_pool_t *pool = items * p->S < 16384 ? NULL : call->pool;
    nn_pool_for(pool, items, nn_bn_planes, &j);
}
