/* The blocked layout's ops (nn/nchwc.h), which the optimiser puts in a
 * graph (optimize.c, blocked_layout); no model names them.
 *
 *   NchwcReorder  attribute to_blocked: 1: [N, C, H, W] -> [N, CB, H, W, 16];
 *                 0: back, to the C channels of attribute channels.
 *   NchwcConv     a Conv (group 1, dilation 1, explicit pads) with inputs
 *                 X (blocked, or [N, C, H, W]), W (its shape [M, C, kh, kw];
 *                 the data may be gone), B (CB * 16 floats, zero past M, or
 *                 omitted), the residual (blocked, as the output, or
 *                 omitted), the weights packed by nn_nchwc_pack_weights;
 *                 attributes strides and pads as Conv's; the fused
 *                 activation a clamp (none, Relu, Clip). Writes [N, CB,
 *                 Ho, Wo, 16].
 *   NchwcDepthwise  a depthwise Conv (a group a channel, dilation 1,
 *                 explicit pads), inputs as NchwcConv's but X blocked, W
 *                 [C, 1, kh, kw], no residual, the weights packed by
 *                 nn_nchwc_pack_dw_weights.
 *   NchwcMaxPool  a 2-D MaxPool (dilation 1, explicit pads, ceil_mode 0 or
 *                 1) from blocked X to blocked Y.
 *   NchwcGlobalAveragePool  blocked X to plain [N, C, 1, 1], C the
 *                 attribute channels. */
#include <math.h>
#include <string.h>

#include "nn/error.h"
#include "nn/nchwc.h"
#include "nn/op.h"
#include "nn/ops/args.h"

#define REORDER_PIXELS 512 /* a reorder's work item: pixels of one image */
#define REORDER_BLOCKS 2   /* and blocks of 16 channels */
#define CONV_ITEMS_PER_THREAD 4
#define CONV_BLOCKS 4 /* output blocks of a work item (the kernel's tile) */
#define CONV_ITEM_PIXELS 1024 /* most pixels x images a work item: 256 KiB of sums */

typedef struct reorder_params {
    int to_blocked;
    int C;
    int64_t N, HW, chunks; /* chunks of REORDER_PIXELS per image */
    int64_t groups;        /* of REORDER_BLOCKS blocks per image */
} reorder_params_t;
NN_PARAMS_FIT(reorder_params_t);

int nn_op_nchwc_reorder_prepare(nn_call_t *call, nn_error_t *err)
{
    reorder_params_t *p = NN_PARAMS(call, reorder_params_t);
    const nn_node_t *node = call->node;
    int rc;
    if (call->n_in < 1 || !call->in[0] || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL, "NchwcReorder needs an input");
    if ((rc = nn_need_float(call, 0, "X", err)))
        return rc;
    const nn_tensor_t *X = call->in[0];
    p->to_blocked = (int)nn_attr_int(node, "to_blocked", 1);
    char bx[64];
    if (p->to_blocked) {
        if (X->rank != 4 || X->dims[1] > INT32_MAX)
            return nn_node_fail(err, node, NN_ESHAPE, "input %s must be [N, C, H, W]",
                                nn_shape_str(X, bx, sizeof bx));
        p->C = (int)X->dims[1];
        int64_t d[5] = {X->dims[0], nn_nchwc_blocks(p->C), X->dims[2], X->dims[3], NN_NCHWC};
        nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 5, d);
    } else {
        const int64_t C = nn_attr_int(node, "channels", 0);
        if (X->rank != 5 || X->dims[4] != NN_NCHWC || C < 1 || C > INT32_MAX ||
            nn_nchwc_blocks(C) != X->dims[1])
            return nn_node_fail(err, node, NN_ESHAPE, "input %s is not %lld channels blocked",
                                nn_shape_str(X, bx, sizeof bx), (long long)C);
        p->C = (int)C;
        int64_t d[4] = {X->dims[0], C, X->dims[2], X->dims[3]};
        nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 4, d);
    }
    p->N = X->dims[0];
    p->HW = X->dims[2] * X->dims[3];
    p->chunks = (p->HW + REORDER_PIXELS - 1) / REORDER_PIXELS;
    p->groups = (nn_nchwc_blocks(p->C) + REORDER_BLOCKS - 1) / REORDER_BLOCKS;
    return 0;
}

static void reorder_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_call_t *call = arg;
    const reorder_params_t *p = NN_PARAMS(call, reorder_params_t);
    const size_t image = (size_t)nn_nchwc_blocks(p->C) * NN_NCHWC * (size_t)p->HW;
    const float *x = call->in[0]->data;
    float *y = call->out[0]->data;
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / (p->groups * p->chunks), c = it % p->chunks;
        const int c0 = (int)(it / p->chunks % p->groups) * REORDER_BLOCKS * NN_NCHWC;
        const int nc = p->C - c0 < REORDER_BLOCKS * NN_NCHWC ? p->C - c0 : REORDER_BLOCKS * NN_NCHWC;
        const size_t p0 = (size_t)c * REORDER_PIXELS;
        const size_t p1 = p0 + REORDER_PIXELS < (size_t)p->HW ? p0 + REORDER_PIXELS : (size_t)p->HW;
        /* channel c0 starts at c0 * HW in both layouts (c0 a whole block) */
        const float *xn = x + (size_t)n * (p->to_blocked ? (size_t)p->C * p->HW : image);
        float *yn = y + (size_t)n * (p->to_blocked ? image : (size_t)p->C * p->HW);
        const size_t at = (size_t)c0 * p->HW;
        if (p->to_blocked)
            nn_nchwc_to_blocked(xn + at, nc, (size_t)p->HW, yn + at, p0, p1);
        else
            nn_nchwc_to_planes(xn + at, nc, (size_t)p->HW, yn + at, p0, p1);
    }
}

void nn_op_nchwc_reorder_exec(const nn_call_t *call)
{
    const reorder_params_t *p = NN_PARAMS(call, reorder_params_t);
    nn_pool_for(call->pool, p->N * p->groups * p->chunks, reorder_chunk, (void *)call);
}

typedef struct conv_params {
    nn_nchwc_conv_t k;
    int64_t N;
    int groups;       /* of CONV_BLOCKS output blocks */
    int has_bias, has_res;
} conv_params_t;
NN_PARAMS_FIT(conv_params_t);

/* Conv's strides (2) or pads (4) attribute, or the default when absent. */
static int conv_ints(const nn_call_t *call, const char *name, int n, int64_t def, int64_t *v,
                     nn_error_t *err)
{
    const int64_t *a;
    const int k = nn_attr_ints(call->node, name, &a);
    for (int i = 0; i < n; i++)
        v[i] = k < 0 ? def : i < k ? a[i] : -1;
    for (int i = 0; i < n; i++)
        if (v[i] < 0 || v[i] > 1024 || (def == 1 && v[i] < 1))
            return nn_node_fail(err, call->node, NN_EINVAL, "bad %s", name);
    return 0;
}

/* The clamp of node's fused activation into k: the blocked kernels fuse
 * none, Relu and Clip, nothing else. */
static int fused_clamp(const nn_node_t *node, nn_nchwc_conv_t *k, nn_error_t *err)
{
    if (nn_conv_clamp(&node->fusion, &k->lo, &k->hi))
        return nn_node_fail(err, node, NN_EUNSUPPORTED, "activation is not a clamp");
    k->clamp = node->fusion.act != NN_ACT_NONE;
    return 0;
}

int nn_op_nchwc_conv_prepare(nn_call_t *call, nn_error_t *err)
{
    conv_params_t *p = NN_PARAMS(call, conv_params_t);
    memset(p, 0, sizeof *p);
    const nn_node_t *node = call->node;
    int rc;
    if (call->n_in < 5 || !call->in[0] || !call->in[1] || !call->in[4] || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL, "NchwcConv needs X, W and packed W");
    if ((rc = nn_need_float(call, 0, "X", err)) || (rc = nn_need_float(call, 4, "packed W", err)))
        return rc;
    const nn_tensor_t *X = call->in[0], *Wt = call->in[1], *PW = call->in[4];
    char bx[64], bw[64];
    if (Wt->rank != 4 || Wt->dims[0] > 65536 || Wt->dims[1] > 65536 || Wt->dims[2] > 64 ||
        Wt->dims[3] > 64 || Wt->dims[0] < 1 || Wt->dims[1] < 1 || Wt->dims[2] < 1 ||
        Wt->dims[3] < 1)
        return nn_node_fail(err, node, NN_ESHAPE, "weight %s is not [M, C, kh, kw]",
                            nn_shape_str(Wt, bw, sizeof bw));
    nn_nchwc_conv_t *k = &p->k;
    k->M = (int)Wt->dims[0];
    k->C = (int)Wt->dims[1];
    k->kh = (int)Wt->dims[2];
    k->kw = (int)Wt->dims[3];
    k->in_blocked = X->rank == 5;
    const int64_t xc = k->in_blocked ? nn_nchwc_blocks(k->C) : k->C;
    if ((X->rank != 4 && X->rank != 5) || X->dims[1] != xc ||
        (k->in_blocked && X->dims[4] != NN_NCHWC) || X->dims[2] > INT32_MAX / 64 ||
        X->dims[3] > INT32_MAX / 64)
        return nn_node_fail(err, node, NN_ESHAPE, "input %s does not fit weight %s",
                            nn_shape_str(X, bx, sizeof bx), nn_shape_str(Wt, bw, sizeof bw));
    if (!PW->data ||
        (size_t)nn_tensor_elems(PW) != nn_nchwc_weight_floats(k->M, k->C, k->kh, k->kw))
        return nn_node_fail(err, node, NN_ESHAPE, "packed weight %s does not fit weight %s",
                            nn_shape_str(PW, bx, sizeof bx), nn_shape_str(Wt, bw, sizeof bw));
    int64_t st[2], pads[4];
    if ((rc = conv_ints(call, "strides", 2, 1, st, err)) ||
        (rc = conv_ints(call, "pads", 4, 0, pads, err)))
        return rc;
    k->H = (int)X->dims[2];
    k->W = (int)X->dims[3];
    k->sh = (int)st[0];
    k->sw = (int)st[1];
    k->pt = (int)pads[0];
    k->pl = (int)pads[1];
    const int64_t ho = (k->H + pads[0] + pads[2] - k->kh) / st[0] + 1;
    const int64_t wo = (k->W + pads[1] + pads[3] - k->kw) / st[1] + 1;
    if (k->H + pads[0] + pads[2] < k->kh || k->W + pads[1] + pads[3] < k->kw)
        return nn_node_fail(err, node, NN_ESHAPE, "kernel %s is larger than the padded input %s",
                            nn_shape_str(Wt, bw, sizeof bw), nn_shape_str(X, bx, sizeof bx));
    k->Ho = (int)ho;
    k->Wo = (int)wo;
    const int64_t CBo = nn_nchwc_blocks(k->M);
    int64_t od[5] = {X->dims[0], CBo, ho, wo, NN_NCHWC};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 5, od);
    if (call->n_in > 2 && call->in[2]) {
        if ((rc = nn_need_float(call, 2, "B", err)))
            return rc;
        if (call->in[2]->rank != 1 || call->in[2]->dims[0] != CBo * NN_NCHWC)
            return nn_node_fail(err, node, NN_ESHAPE, "padded bias %s must be [%lld]",
                                nn_shape_str(call->in[2], bw, sizeof bw),
                                (long long)(CBo * NN_NCHWC));
        p->has_bias = 1;
    }
    if (node->fusion.residual >= 0) {
        const nn_tensor_t *R = call->in[3];
        int same = R && R->dtype == NN_DTYPE_FLOAT && R->rank == 5;
        for (int i = 0; same && i < 5; i++)
            same = R->dims[i] == od[i];
        if (!same)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "fused residual must be blocked as the output");
        p->has_res = 1;
    }
    if ((rc = fused_clamp(node, k, err)))
        return rc;
    p->N = X->dims[0];
    p->groups = (int)((CBo + CONV_BLOCKS - 1) / CONV_BLOCKS);
    call->flops = 2.0 * (double)p->N * k->M * k->C * k->kh * k->kw * (double)(ho * wo);
    return 0;
}

typedef struct conv_job {
    const nn_call_t *call;
    int sets, chunks;    /* image sets and pixel chunks */
    int64_t set, chunk;  /* images of a set, output pixels of a chunk */
} conv_job_t;

static void conv_items(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const conv_job_t *j = arg;
    const nn_call_t *call = j->call;
    const conv_params_t *p = NN_PARAMS(call, conv_params_t);
    const nn_nchwc_conv_t *k = &p->k;
    const int CBo = (int)nn_nchwc_blocks(k->M);
    const size_t xi = (size_t)(k->in_blocked ? nn_nchwc_blocks(k->C) * NN_NCHWC : k->C) *
                      (size_t)k->H * k->W,
                 yi = (size_t)CBo * NN_NCHWC * (size_t)k->Ho * k->Wo;
    const float *x = call->in[0]->data, *res = p->has_res ? call->in[3]->data : NULL;
    float *y = call->out[0]->data;
    const int64_t P = (int64_t)k->Ho * k->Wo;
    for (int64_t it = begin; it < end; it++) { /* (set, chunk, group), group fastest */
        const int g = (int)(it % p->groups), c = (int)(it / p->groups % j->chunks);
        const int64_t n0 = it / ((int64_t)p->groups * j->chunks) * j->set;
        const int images = (int)(p->N - n0 < j->set ? p->N - n0 : j->set);
        const int cb0 = g * CONV_BLOCKS, cb1 = cb0 + CONV_BLOCKS < CBo ? cb0 + CONV_BLOCKS : CBo;
        const int64_t q0 = c * j->chunk, q1 = q0 + j->chunk < P ? q0 + j->chunk : P;
        nn_nchwc_conv(k, x + n0 * xi, call->in[4]->data, p->has_bias ? call->in[2]->data : NULL,
                      res ? res + n0 * yi : NULL, y + n0 * yi, cb0, cb1, q0, q1, images, xi, yi);
    }
}

void nn_op_nchwc_conv_exec(const nn_call_t *call)
{
    const conv_params_t *p = NN_PARAMS(call, conv_params_t);
    const nn_nchwc_conv_t *k = &p->k;
    /* Work items: sets of images x chunks of pixels (whole rows, or runs
     * of the kernel's 6-pixel tiles on a 1x1 map) x groups of output
     * blocks: enough for every thread to take a few, and no more pixels
     * than keep an item's partial sums in L2 (they wait there between
     * chunks of input channels); an item's weights serve all its images
     * and pixels. A thread takes the pixels its core wrote (the layer
     * before was cut alike). */
    const int64_t P = (int64_t)k->Ho * k->Wo,
                  want = CONV_ITEMS_PER_THREAD * nn_pool_threads(call->pool);
    int64_t most = CONV_ITEM_PIXELS / P; /* images an item may take */
    most = most < 1 ? 1 : most;
    int64_t sets = (p->N + most - 1) / most;
    const int64_t need = (want + p->groups - 1) / p->groups; /* sets the groups alone want */
    if (sets < need)
        sets = need < p->N ? need : p->N;
    conv_job_t j = {.call = call, .set = (p->N + sets - 1) / sets}; /* as even as they go */
    j.sets = (int)((p->N + j.set - 1) / j.set);
    int64_t chunks = (want + (int64_t)j.sets * p->groups - 1) / ((int64_t)j.sets * p->groups);
    if (chunks < (P + CONV_ITEM_PIXELS - 1) / CONV_ITEM_PIXELS)
        chunks = (P + CONV_ITEM_PIXELS - 1) / CONV_ITEM_PIXELS;
    const int flat = k->kh == 1 && k->kw == 1 && k->sh == 1 && k->sw == 1 && !k->pt && !k->pl;
    const int64_t unit = flat ? 6 : k->Wo, units = (P + unit - 1) / unit;
    chunks = chunks < 1 ? 1 : chunks > units ? units : chunks;
    j.chunk = (units + chunks - 1) / chunks * unit;
    j.chunks = (int)((P + j.chunk - 1) / j.chunk);
    nn_pool_for(call->pool, (int64_t)j.sets * j.chunks * p->groups, conv_items, &j);
}

typedef struct maxpool_params {
    nn_nchwc_pool_t k;
    int64_t planes; /* images x blocks */
} maxpool_params_t;
NN_PARAMS_FIT(maxpool_params_t);

int nn_op_nchwc_maxpool_prepare(nn_call_t *call, nn_error_t *err)
{
    maxpool_params_t *p = NN_PARAMS(call, maxpool_params_t);
    memset(p, 0, sizeof *p);
    const nn_node_t *node = call->node;
    int rc;
    if (call->n_in < 1 || !call->in[0] || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL, "NchwcMaxPool needs an input");
    if ((rc = nn_need_float(call, 0, "X", err)))
        return rc;
    const nn_tensor_t *X = call->in[0];
    char bx[64];
    if (X->rank != 5 || X->dims[4] != NN_NCHWC || X->dims[2] > INT32_MAX / 64 ||
        X->dims[3] > INT32_MAX / 64)
        return nn_node_fail(err, node, NN_ESHAPE, "input %s is not blocked",
                            nn_shape_str(X, bx, sizeof bx));
    int64_t ks[2], st[2], pads[4], out[2];
    if ((rc = conv_ints(call, "kernel_shape", 2, 1, ks, err)) ||
        (rc = conv_ints(call, "strides", 2, 1, st, err)) ||
        (rc = conv_ints(call, "pads", 4, 0, pads, err)))
        return rc;
    const int ceil_mode = nn_attr_int(node, "ceil_mode", 0) != 0;
    for (int i = 0; i < 2; i++) {
        const int64_t in = X->dims[2 + i], span = in + pads[i] + pads[i + 2] - ks[i];
        if (span < 0)
            return nn_node_fail(err, node, NN_ESHAPE, "kernel exceeds the padded input %s",
                                nn_shape_str(X, bx, sizeof bx));
        out[i] = ceil_mode ? (span + st[i] - 1) / st[i] + 1 : span / st[i] + 1;
        if (ceil_mode && (out[i] - 1) * st[i] >= in + pads[i]) /* as the plain pools */
            out[i]--;
    }
    nn_nchwc_pool_t *k = &p->k;
    *k = (nn_nchwc_pool_t){.H = (int)X->dims[2], .W = (int)X->dims[3], .Ho = (int)out[0],
                           .Wo = (int)out[1], .kh = (int)ks[0], .kw = (int)ks[1],
                           .sh = (int)st[0], .sw = (int)st[1], .pt = (int)pads[0],
                           .pl = (int)pads[1]};
    p->planes = X->dims[0] * X->dims[1];
    int64_t od[5] = {X->dims[0], X->dims[1], out[0], out[1], NN_NCHWC};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 5, od);
    return 0;
}

static void maxpool_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_call_t *call = arg;
    const maxpool_params_t *p = NN_PARAMS(call, maxpool_params_t);
    const nn_nchwc_pool_t *k = &p->k;
    const size_t xs = (size_t)k->H * k->W * NN_NCHWC, ys = (size_t)k->Ho * k->Wo * NN_NCHWC;
    for (int64_t it = begin; it < end;) { /* items: output rows of every block plane */
        const int64_t plane = it / k->Ho;
        const int oh0 = (int)(it % k->Ho);
        const int oh1 = end - it < k->Ho - oh0 ? oh0 + (int)(end - it) : k->Ho;
        nn_nchwc_maxpool(k, (const float *)call->in[0]->data + plane * xs,
                         (float *)call->out[0]->data + plane * ys, oh0, oh1);
        it += oh1 - oh0;
    }
}

void nn_op_nchwc_maxpool_exec(const nn_call_t *call)
{
    const maxpool_params_t *p = NN_PARAMS(call, maxpool_params_t);
    nn_pool_for(call->pool, p->planes * p->k.Ho, maxpool_rows, (void *)call);
}

typedef struct gap_params {
    int C;
    int64_t N, CB, HW;
} gap_params_t;
NN_PARAMS_FIT(gap_params_t);

int nn_op_nchwc_globalavgpool_prepare(nn_call_t *call, nn_error_t *err)
{
    gap_params_t *p = NN_PARAMS(call, gap_params_t);
    const nn_node_t *node = call->node;
    int rc;
    if (call->n_in < 1 || !call->in[0] || call->n_out < 1)
        return nn_node_fail(err, node, NN_EINVAL, "NchwcGlobalAveragePool needs an input");
    if ((rc = nn_need_float(call, 0, "X", err)))
        return rc;
    const nn_tensor_t *X = call->in[0];
    const int64_t C = nn_attr_int(node, "channels", 0);
    char bx[64];
    if (X->rank != 5 || X->dims[4] != NN_NCHWC || C < 1 || C > INT32_MAX ||
        nn_nchwc_blocks(C) != X->dims[1] || X->dims[2] * X->dims[3] < 1)
        return nn_node_fail(err, node, NN_ESHAPE, "input %s is not %lld channels blocked",
                            nn_shape_str(X, bx, sizeof bx), (long long)C);
    *p = (gap_params_t){.C = (int)C, .N = X->dims[0], .CB = X->dims[1],
                        .HW = X->dims[2] * X->dims[3]};
    int64_t d[4] = {X->dims[0], C, 1, 1};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 4, d);
    return 0;
}

static void gap_blocks(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_call_t *call = arg;
    const gap_params_t *p = NN_PARAMS(call, gap_params_t);
    for (int64_t it = begin; it < end; it++) { /* items: blocks of every image */
        const int64_t n = it / p->CB, cb = it % p->CB;
        const int c0 = (int)cb * NN_NCHWC;
        nn_nchwc_mean((const float *)call->in[0]->data + (size_t)it * p->HW * NN_NCHWC,
                      (size_t)p->HW, p->C - c0 < NN_NCHWC ? p->C - c0 : NN_NCHWC,
                      (float *)call->out[0]->data + (size_t)n * p->C + c0);
    }
}

void nn_op_nchwc_globalavgpool_exec(const nn_call_t *call)
{
    const gap_params_t *p = NN_PARAMS(call, gap_params_t);
    nn_pool_for(call->pool, p->N * p->CB, gap_blocks, (void *)call);
}

typedef struct dw_params {
    nn_nchwc_conv_t k;
    int64_t N, CB;
    int has_bias;
} dw_params_t;
NN_PARAMS_FIT(dw_params_t);

int nn_op_nchwc_depthwise_prepare(nn_call_t *call, nn_error_t *err)
{
    dw_params_t *p = NN_PARAMS(call, dw_params_t);
    memset(p, 0, sizeof *p);
    const nn_node_t *node = call->node;
    int rc;
    if (call->n_in < 5 || !call->in[0] || !call->in[1] || !call->in[4] || call->n_out < 1 ||
        node->fusion.residual >= 0)
        return nn_node_fail(err, node, NN_EINVAL, "NchwcDepthwise needs X, W and packed W");
    if ((rc = nn_need_float(call, 0, "X", err)) || (rc = nn_need_float(call, 4, "packed W", err)))
        return rc;
    const nn_tensor_t *X = call->in[0], *Wt = call->in[1], *PW = call->in[4];
    char bx[64], bw[64];
    if (Wt->rank != 4 || Wt->dims[1] != 1 || Wt->dims[0] < 1 || Wt->dims[0] > 65536 ||
        Wt->dims[2] < 1 || Wt->dims[2] > 64 || Wt->dims[3] < 1 || Wt->dims[3] > 64 ||
        X->rank != 5 || X->dims[4] != NN_NCHWC || X->dims[1] != nn_nchwc_blocks(Wt->dims[0]) ||
        X->dims[2] > INT32_MAX / 64 || X->dims[3] > INT32_MAX / 64)
        return nn_node_fail(err, node, NN_ESHAPE, "input %s does not fit weight %s",
                            nn_shape_str(X, bx, sizeof bx), nn_shape_str(Wt, bw, sizeof bw));
    nn_nchwc_conv_t *k = &p->k;
    k->C = k->M = (int)Wt->dims[0];
    k->kh = (int)Wt->dims[2];
    k->kw = (int)Wt->dims[3];
    k->in_blocked = 1;
    if (!PW->data || (size_t)nn_tensor_elems(PW) != nn_nchwc_dw_weight_floats(k->C, k->kh, k->kw))
        return nn_node_fail(err, node, NN_ESHAPE, "packed weight %s does not fit weight %s",
                            nn_shape_str(PW, bx, sizeof bx), nn_shape_str(Wt, bw, sizeof bw));
    int64_t st[2], pads[4];
    if ((rc = conv_ints(call, "strides", 2, 1, st, err)) ||
        (rc = conv_ints(call, "pads", 4, 0, pads, err)))
        return rc;
    k->H = (int)X->dims[2];
    k->W = (int)X->dims[3];
    k->sh = (int)st[0];
    k->sw = (int)st[1];
    k->pt = (int)pads[0];
    k->pl = (int)pads[1];
    if (k->H + pads[0] + pads[2] < k->kh || k->W + pads[1] + pads[3] < k->kw)
        return nn_node_fail(err, node, NN_ESHAPE, "kernel %s is larger than the padded input %s",
                            nn_shape_str(Wt, bw, sizeof bw), nn_shape_str(X, bx, sizeof bx));
    k->Ho = (int)((k->H + pads[0] + pads[2] - k->kh) / st[0] + 1);
    k->Wo = (int)((k->W + pads[1] + pads[3] - k->kw) / st[1] + 1);
    p->N = X->dims[0];
    p->CB = X->dims[1];
    if (call->n_in > 2 && call->in[2]) {
        if ((rc = nn_need_float(call, 2, "B", err)))
            return rc;
        if (call->in[2]->rank != 1 || call->in[2]->dims[0] != p->CB * NN_NCHWC)
            return nn_node_fail(err, node, NN_ESHAPE, "padded bias %s must be [%lld]",
                                nn_shape_str(call->in[2], bw, sizeof bw),
                                (long long)(p->CB * NN_NCHWC));
        p->has_bias = 1;
    }
    if ((rc = fused_clamp(node, k, err)))
        return rc;
    int64_t od[5] = {p->N, p->CB, k->Ho, k->Wo, NN_NCHWC};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 5, od);
    call->flops = 2.0 * (double)p->N * k->C * k->kh * k->kw * (double)k->Ho * k->Wo;
    return 0;
}

typedef struct dw_job {
    const nn_call_t *call;
    int64_t rows; /* output rows of an item */
    int64_t chunks; /* items a block plane */
} dw_job_t;

static void dw_items(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const dw_job_t *j = arg;
    const dw_params_t *p = NN_PARAMS(j->call, dw_params_t);
    const nn_nchwc_conv_t *k = &p->k;
    const size_t xs = (size_t)k->H * k->W * NN_NCHWC, ys = (size_t)k->Ho * k->Wo * NN_NCHWC;
    const size_t ws = (size_t)k->kh * k->kw * NN_NCHWC;
    const float *x = j->call->in[0]->data, *w = j->call->in[4]->data;
    const float *bias = p->has_bias ? j->call->in[2]->data : NULL;
    float *y = j->call->out[0]->data;
    for (int64_t it = begin; it < end; it++) { /* (row chunk, image, block): blocks fastest */
        const int64_t plane = it % (p->N * p->CB), c = it / (p->N * p->CB);
        const int64_t cb = plane % p->CB;
        const int oh0 = (int)(c * j->rows);
        const int oh1 = oh0 + j->rows < k->Ho ? (int)(oh0 + j->rows) : k->Ho;
        nn_nchwc_dwconv(k, x + (size_t)plane * xs, w + (size_t)cb * ws,
                        bias ? bias + (size_t)cb * NN_NCHWC : NULL, y + (size_t)plane * ys, oh0,
                        oh1);
    }
}

void nn_op_nchwc_depthwise_exec(const nn_call_t *call)
{
    const dw_params_t *p = NN_PARAMS(call, dw_params_t);
    /* Items: chunks of rows of every block plane, enough for each thread
     * to take a few; a thread takes the same rows of every block, those its
     * core wrote when the layer before was cut by pixels. */
    const int64_t want = CONV_ITEMS_PER_THREAD * nn_pool_threads(call->pool);
    int64_t chunks = (want + p->N * p->CB - 1) / (p->N * p->CB);
    chunks = chunks < 1 ? 1 : chunks > p->k.Ho ? p->k.Ho : chunks;
    dw_job_t j = {.call = call, .rows = (p->k.Ho + chunks - 1) / chunks};
    j.chunks = (p->k.Ho + j.rows - 1) / j.rows;
    nn_pool_for(call->pool, j.chunks * p->N * p->CB, dw_items, &j);
}
