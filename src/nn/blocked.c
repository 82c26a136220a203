/* The blocked layout's optimiser pass; see blocked.h. */
#include "blocked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "graph_edit.h"
#include "nchwc.h"
#include "op.h"

/* What a node of a blocked region is. */
enum { BLOCKED_CONV = 1, BLOCKED_DEPTHWISE, BLOCKED_POOL, BLOCKED_CONCAT, BLOCKED_GAP };

/* A clamp (or no activation) is all the blocked kernels fuse. */
static int clamp_act(const nn_node_t *n)
{
    float lo, hi;
    return !nn_conv_clamp(&n->fusion, &lo, &hi);
}

/* n's window is 2-D with explicit pads (or none) and no dilation. */
static int plain_2d_window(const nn_node_t *n)
{
    const int64_t *v;
    int k = nn_attr_ints(n, "dilations", &v);
    for (int a = 0; a < k; a++)
        if (v[a] != 1)
            return 0;
    return strcmp(nn_attr_string(n, "auto_pad", "NOTSET"), "NOTSET") == 0 &&
           ((k = nn_attr_ints(n, "strides", &v)) < 0 || k == 2) &&
           ((k = nn_attr_ints(n, "pads", &v)) < 0 || k == 4);
}

/* Whether Conv n runs blocked: dense 2-D convolutions (group 1, dilation 1,
 * explicit pads) with constant weights of their own and a clamp for an
 * activation, not those that took Winograd's weights. */
static int blocked_conv_suits(const nn_graph_t *g, const nn_usage_t *u, const nn_node_t *n,
                              const nn_tensor_t *const *shapes)
{
    if (!nn_is_op(n, NN_OP_CONV) || n->n_inputs < 2 || n->n_outputs != 1 ||
        (n->n_inputs > 4 && n->inputs[4] >= 0) || (n->n_inputs > 5 && n->inputs[5] >= 0) ||
        !nn_const_float(g, n->inputs[1]) || u->uses[n->inputs[1]] != 1 ||
        g->values[n->inputs[1]].is_output || !g->values[n->inputs[1]].t.data ||
        (n->n_inputs > 2 && n->inputs[2] >= 0 && !nn_const_float(g, n->inputs[2])) ||
        nn_attr_int(n, "group", 1) != 1 || !clamp_act(n) || !plain_2d_window(n))
        return 0;
    const nn_tensor_t *w = &g->values[n->inputs[1]].t, *x = shapes[n->inputs[0]],
                      *y = shapes[n->outputs[0]];
    return w->rank == 4 && x && x->rank == 4 && y && y->rank == 4 &&
           x->dtype == NN_DTYPE_FLOAT && w->dims[2] <= 64 && w->dims[3] <= 64;
}

/* Whether MaxPool n runs blocked: 2-D, one output (no indices), explicit
 * pads, no dilation. */
static int blocked_pool_suits(const nn_node_t *n, const nn_tensor_t *const *shapes)
{
    const int64_t *v;
    if (!nn_is_op(n, NN_OP_MAXPOOL) || n->n_inputs != 1 || n->n_outputs != 1 ||
        nn_attr_int(n, "storage_order", 0) != 0 || !plain_2d_window(n) ||
        nn_attr_ints(n, "kernel_shape", &v) != 2 || v[0] > 64 || v[1] > 64)
        return 0;
    const nn_tensor_t *x = shapes[n->inputs[0]];
    return x && x->rank == 4 && x->dtype == NN_DTYPE_FLOAT;
}

/* A constant of node i's bias (value bv, M floats) padded with zeros to
 * whole blocks. Returns its id or a negative NN_E* code. */
static int padded_bias(nn_graph_t *g, int i, int bv, int M)
{
    const int64_t nb = nn_nchwc_blocks(M) * NN_NCHWC;
    float *b = aligned_alloc(64, ((size_t)nb * sizeof(float) + 63) / 64 * 64);
    if (!b)
        return -NN_ENOMEM;
    memset(b, 0, (size_t)nb * sizeof(float));
    memcpy(b, g->values[bv].t.data, (size_t)M * sizeof(float));
    char name[512];
    snprintf(name, sizeof name, "%s/nchwc_bias", g->nodes[i].name);
    return nn_graph_add_const(g, name, NN_DTYPE_FLOAT, 1, &nb, b);
}

/* Node i becomes a NchwcConv (depthwise: a NchwcDepthwise) writing the
 * new value blk: its weights packed for the kernel and its bias padded to
 * whole blocks as constants (inputs 4 and 2); W keeps its shape only. */
static int make_blocked_conv(nn_graph_t *g, int i, int blk, int depthwise)
{
    nn_node_t *n = &g->nodes[i];
    const int wv = n->inputs[1], bv = n->n_inputs > 2 ? n->inputs[2] : -1;
    const nn_tensor_t *w = &g->values[wv].t;
    const int M = (int)w->dims[0], C = (int)w->dims[1], kh = (int)w->dims[2],
              kw = (int)w->dims[3];
    const size_t floats = depthwise ? nn_nchwc_dw_weight_floats(M, kh, kw)
                                    : nn_nchwc_weight_floats(M, C, kh, kw);
    float *pw = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!pw)
        return -NN_ENOMEM;
    if (depthwise)
        nn_nchwc_pack_dw_weights(w->data, M, kh, kw, pw);
    else
        nn_nchwc_pack_weights(w->data, M, C, kh, kw, pw);
    char name[512];
    snprintf(name, sizeof name, "%s/nchwc_weight", n->name);
    int64_t d = (int64_t)floats;
    const int pid = nn_graph_add_const(g, name, NN_DTYPE_FLOAT, 1, &d, pw);
    if (pid < 0)
        return pid;
    int bid = -1;
    if (bv >= 0 && (bid = padded_bias(g, i, bv, M)) < 0)
        return bid;
    n = &g->nodes[i];
    if (nn_ensure_inputs(n, 5))
        return -NN_ENOMEM;
    n->inputs[2] = bid;
    n->inputs[4] = pid;
    n->n_inputs = 5;
    n->outputs[0] = blk;
    nn_node_set_op(n, depthwise ? NN_OP_NCHWC_DEPTHWISE : NN_OP_NCHWC_CONV);
    free(g->values[wv].t.data);
    g->values[wv].t.data = NULL;
    return 0;
}



/* A NchwcReorder from value `from` to value `to`: to blocked, or back to
 * `channels` channels. Returns 0 or -NN_ENOMEM. */
static int add_reorder(nn_graph_t *g, int from, int to, int to_blocked, int64_t channels)
{
    char name[512];
    snprintf(name, sizeof name, "%s/reorder", g->values[to].name);
    const int id = nn_add_node(g, NN_OP_NCHWC_REORDER, name, &from, 1, &to, 1);
    if (id < 0)
        return id;
    nn_node_t *n = &g->nodes[id];
    int rc = nn_add_int_attr(n, "to_blocked", to_blocked);
    if (rc == 0 && !to_blocked)
        rc = nn_add_int_attr(n, "channels", channels);
    return rc;
}

/* Whether a region node of this kind reads its input k blocked: a Conv its
 * X and residual, a Concat every input, depthwise Convs and the pools
 * their X. */
static int reads_blocked(int kind, int k)
{
    return kind == BLOCKED_CONV ? k == 0 || k == 3 : kind == BLOCKED_CONCAT ? 1 : k == 0;
}

/* Whether its output is blocked (a global pool's [N, C, 1, 1] is plain). */
static int writes_blocked(int kind)
{
    return kind != BLOCKED_GAP;
}

/* Whether Concat n joins a region: along the channels of 4-D values that
 * are whole blocks each, so the blocked values join block after block. */
static int blocked_concat_suits(const nn_graph_t *g, const nn_node_t *n,
                                const nn_tensor_t *const *shapes)
{
    if (!nn_is_op(n, NN_OP_CONCAT) || n->n_outputs != 1 || n->n_inputs < 1 ||
        nn_attr_int(n, "axis", 0) != 1)
        return 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const int v = n->inputs[k];
        const nn_tensor_t *x = v >= 0 ? shapes[v] : NULL;
        if (!x || g->values[v].is_const || x->rank != 4 || x->dtype != NN_DTYPE_FLOAT ||
            x->dims[1] % NN_NCHWC != 0)
            return 0;
    }
    return 1;
}

/* Whether Conv n joins a region as a depthwise convolution: a group a
 * channel, dilation 1, explicit pads, a clamp for an activation, no
 * residual, constant weights of its own. It gains nothing itself (the
 * plain depthwise kernels are as fast) but the reorders around it. */
static int blocked_dw_suits(const nn_graph_t *g, const nn_usage_t *u, const nn_node_t *n,
                            const nn_tensor_t *const *shapes)
{
    if (!nn_is_op(n, NN_OP_CONV) || n->n_inputs < 2 || n->n_outputs != 1 ||
        n->fusion.residual >= 0 || (n->n_inputs > 3 && n->inputs[3] >= 0) ||
        (n->n_inputs > 4 && n->inputs[4] >= 0) || (n->n_inputs > 5 && n->inputs[5] >= 0) ||
        !nn_const_float(g, n->inputs[1]) || u->uses[n->inputs[1]] != 1 ||
        g->values[n->inputs[1]].is_output || !g->values[n->inputs[1]].t.data ||
        (n->n_inputs > 2 && n->inputs[2] >= 0 && !nn_const_float(g, n->inputs[2])) ||
        !clamp_act(n) || !plain_2d_window(n))
        return 0;
    const nn_tensor_t *w = &g->values[n->inputs[1]].t, *x = shapes[n->inputs[0]];
    return w->rank == 4 && w->dims[1] == 1 && w->dims[2] <= 64 && w->dims[3] <= 64 && x &&
           x->rank == 4 && x->dtype == NN_DTYPE_FLOAT && x->dims[1] == w->dims[0] &&
           nn_attr_int(n, "group", 1) == w->dims[0];
}


/* Whether GlobalAveragePool n ends a region: over a 4-D map. */
static int blocked_gap_suits(const nn_node_t *n, const nn_tensor_t *const *shapes)
{
    const nn_tensor_t *x = nn_is_op(n, NN_OP_GLOBALAVGPOOL) && n->n_inputs == 1 &&
                                   n->n_outputs == 1
                               ? shapes[n->inputs[0]]
                               : NULL;
    return x && x->rank == 4 && x->dtype == NN_DTYPE_FLOAT;
}

/* Union-find root of a, path halved. */
static int uf_root(int *up, int a)
{
    while (up[a] != a)
        a = up[a] = up[up[a]];
    return a;
}

/* Of the suitable nodes (cand, their kinds), those whose region pays for
 * its reorders (keep, their kinds): regions are the nodes linked as
 * producer and blocked reader; a region costs a reorder of each plain value
 * it reads (but a first layer's few channels) and of each of its values
 * something else reads plain, and gains the products of its dense Convs.
 * The blocked kernel is about as fast as the plain ones on most shapes and
 * faster on strided and 7x7 ones, and a reorder of a float costs what the
 * blocked products gain on ~1000-2000 FLOPs (Intel Xeon Sapphire Rapids,
 * 2 threads): ResNet-50's region (2200 FLOPs a reordered float) goes
 * blocked, 33.9 -> 33.1 ms at first; ResNeXt-50 (1200: reorders around
 * each grouped 3x3) would lose 1.5%; regions with no reorder at all
 * (SqueezeNet, MobileNetV2) always pay. */
#define BLOCKED_MIN_FLOPS_PER_FLOAT 2000.0
static int blocked_regions(const nn_graph_t *g, const nn_usage_t *u, const nn_tensor_t *const *shapes,
                           const int *cand, int *keep) /* keep may be cand: kinds kept */
{
    const int nn = g->n_nodes;
    int *up = malloc(sizeof(int) * ((size_t)nn + 1));
    int *blocked_reads = calloc((size_t)g->n_values + 1, sizeof(int)); /* per value */
    double *gain = calloc((size_t)nn + 1, sizeof(double)), *cost = calloc((size_t)nn + 1, sizeof(double));
    if (!up || !blocked_reads || !gain || !cost) {
        free(up), free(blocked_reads), free(gain), free(cost);
        return -NN_ENOMEM;
    }
    for (int i = 0; i < nn; i++)
        up[i] = i;
    for (int i = 0; i < nn; i++)
        for (int k = 0; cand[i] && k < g->nodes[i].n_inputs; k++) {
            const int v = g->nodes[i].inputs[k];
            if (v < 0 || !reads_blocked(cand[i], k))
                continue;
            blocked_reads[v]++;
            const int pr = u->producer[v];
            if (pr >= 0 && cand[pr] && writes_blocked(cand[pr]))
                up[uf_root(up, pr)] = uf_root(up, i);
        }
    for (int i = 0; i < nn; i++) {
        if (!cand[i])
            continue;
        const nn_node_t *n = &g->nodes[i];
        const int root = uf_root(up, i), y = n->outputs[0];
        if (cand[i] == BLOCKED_CONV) {
            const nn_tensor_t *w = &g->values[n->inputs[1]].t;
            gain[root] += 2.0 * (double)nn_tensor_elems(shapes[y]) *
                          (double)(w->dims[1] * w->dims[2] * w->dims[3]);
        }
        for (int k = 0; k < n->n_inputs; k++) { /* plain inputs (counted once a reader) */
            const int v = n->inputs[k];
            const int pr = v >= 0 ? u->producer[v] : -1;
            if (v >= 0 && reads_blocked(cand[i], k) &&
                !(pr >= 0 && cand[pr] && writes_blocked(cand[pr])) && shapes[v] &&
                shapes[v]->rank == 4 &&
                !(cand[i] == BLOCKED_CONV && k == 0 && shapes[v]->dims[1] < NN_NCHWC))
                cost[root] += (double)nn_tensor_elems(shapes[v]);
        }
        /* its output, if anything reads it plain (the graph's output too) */
        if (writes_blocked(cand[i]) && u->uses[y] > blocked_reads[y])
            cost[root] += (double)nn_tensor_elems(shapes[y]);
    }
    int any = 0;
    for (int i = 0; i < nn; i++) {
        const int root = uf_root(up, i);
        keep[i] = gain[root] > BLOCKED_MIN_FLOPS_PER_FLOAT * cost[root] ? cand[i] : 0;
        any |= keep[i];
    }
    free(up), free(blocked_reads), free(gain), free(cost);
    return any;
}

/* Each node of a kept region writes a blocked twin of its value (original
 * name + "/nchwc"; a GlobalAveragePool writes its plain value) that the
 * region's nodes after it read; one NchwcReorder gives a value back plain
 * to whatever else reads it (or the graph's output), and one takes in each
 * plain input a region node reads, but the first layer's few channels,
 * which a blocked Conv reads as they are. */
int nn_blocked_layout(nn_graph_t *g, const nn_tensor_t *const *shapes, nn_error_t *err)
{
    if (!nn_nchwc_has(g->isa))
        return 0;
    nn_usage_t u;
    int rc = nn_usage_build(g, &u, err);
    if (rc)
        return rc;
    const int nv = g->n_values, nn = g->n_nodes;
    int *blk = malloc(sizeof(int) * ((size_t)nv + 1));     /* value -> its blocked twin */
    int *plain = malloc(sizeof(int) * ((size_t)nv + 1));   /* value -> reordered to blocked */
    int *conv = calloc((size_t)nn + 1, sizeof(int));
    int changed = 0;
    if (!blk || !plain || !conv) {
        rc = -NN_ENOMEM;
        goto out;
    }
    for (int v = 0; v < nv; v++)
        blk[v] = plain[v] = -1;
    for (int i = 0; i < nn; i++)
        conv[i] = blocked_conv_suits(g, &u, &g->nodes[i], shapes)     ? BLOCKED_CONV
                  : blocked_dw_suits(g, &u, &g->nodes[i], shapes) ? BLOCKED_DEPTHWISE
                  : blocked_pool_suits(&g->nodes[i], shapes)   ? BLOCKED_POOL
                  : blocked_concat_suits(g, &g->nodes[i], shapes) ? BLOCKED_CONCAT
                  : blocked_gap_suits(&g->nodes[i], shapes)       ? BLOCKED_GAP
                                                                  : 0;
    if ((rc = blocked_regions(g, &u, shapes, conv, conv)) <= 0)
        goto out;
    rc = 0;
    for (int i = 0; i < nn && rc == 0; i++) {
        if (!conv[i])
            continue;
        const int y = g->nodes[i].outputs[0];
        changed = 1;
        if (conv[i] == BLOCKED_GAP) { /* reads blocked, writes y as it was */
            nn_node_set_op(&g->nodes[i], NN_OP_NCHWC_GLOBALAVGPOOL);
            rc = nn_add_int_attr(&g->nodes[i], "channels", shapes[g->nodes[i].inputs[0]]->dims[1]);
            continue;
        }
        char name[512];
        snprintf(name, sizeof name, "%s/nchwc", g->values[y].name);
        const int b = nn_graph_add_value(g, name);
        if (b < 0) {
            rc = b;
            break;
        }
        if (conv[i] == BLOCKED_CONV || conv[i] == BLOCKED_DEPTHWISE)
            rc = make_blocked_conv(g, i, b, conv[i] == BLOCKED_DEPTHWISE);
        else
            g->nodes[i].outputs[0] = b;
        if (conv[i] == BLOCKED_POOL)
            nn_node_set_op(&g->nodes[i], NN_OP_NCHWC_MAXPOOL);
        blk[y] = b;
    }
    if (rc || !changed)
        goto out;
    /* Blocked Convs read blocked inputs and residuals; count the readers
     * left to the plain values. */
    int *left = calloc((size_t)nv + 1, sizeof(int));
    if (!left) {
        rc = -NN_ENOMEM;
        goto out;
    }
    for (int i = 0; i < nn; i++) {
        nn_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++) {
            const int v = n->inputs[k];
            if (v < 0 || v >= nv)
                continue;
            if (conv[i] && reads_blocked(conv[i], k) && blk[v] >= 0)
                n->inputs[k] = blk[v];
            else
                left[v]++;
        }
        if (conv[i] == BLOCKED_CONV && n->fusion.residual >= 0)
            n->fusion.residual = n->inputs[3];
    }
    for (int o = 0; o < g->n_outputs; o++)
        left[g->outputs[o]]++;
    for (int v = 0; v < nv && rc == 0; v++)
        if (blk[v] >= 0 && left[v] > 0)
            rc = add_reorder(g, blk[v], v, 0, shapes[v]->dims[1]);
    free(left);
    /* Plain residuals of blocked Convs, and plain inputs of 16 channels
     * or more, reordered once each: a plain input's broadcasts walk one
     * plane per channel, more streams than the prefetchers follow (a 1x1
     * from 64 channels on 56x56 took 0.71 ms so, 0.04 + 0.45 reordered
     * first). The first layer's few channels are read as they are. */
    for (int i = 0; i < nn && rc == 0; i++) {
        for (int k = 0; conv[i] && k < g->nodes[i].n_inputs && rc == 0; k++) {
            nn_node_t *n = &g->nodes[i];
            const int r = n->inputs[k];
            if (r < 0 || r >= nv || !reads_blocked(conv[i], k)) /* none, a twin, or plain */
                continue;
            if (k == 0 && conv[i] == BLOCKED_CONV && shapes[r]->dims[1] < NN_NCHWC)
                continue;
            if (plain[r] < 0) {
                char name[512];
                snprintf(name, sizeof name, "%s/nchwc", g->values[r].name);
                const int b = nn_graph_add_value(g, name);
                if (b < 0 || (rc = add_reorder(g, r, b, 1, 0))) {
                    rc = b < 0 ? b : rc;
                    break;
                }
                plain[r] = b;
            }
            n = &g->nodes[i];
            n->inputs[k] = plain[r];
            if (conv[i] == BLOCKED_CONV && k == 3)
                n->fusion.residual = plain[r];
        }
    }
out:
    free(blk);
    free(plain);
    free(conv);
    nn_usage_free(&u);
    if (rc)
        return nn_fail(err, -rc, "out of memory optimising the graph");
    if (changed && (rc = nn_graph_sort(g, err)))
        return rc;
    return changed;
}
