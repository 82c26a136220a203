/* Graph optimisation passes. All rewrite the model's graph in place before
 * it is shared; a pass that does not apply leaves the graph untouched. */
#include "optimize.h"
#include "blocked.h"
#include "convflat.h"
#include "grouplanes.h"
#include "sgemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "graph_edit.h"
#include "op.h"
#include "plan.h"





/* The single live consumer of value v, or NULL. */
static nn_node_t *only_consumer(nn_graph_t *g, const nn_usage_t *u, int v)
{
    if (u->uses[v] != 1 || g->values[v].is_output)
        return NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v)
                return n;
    }
    return NULL;
}

static void replace_uses(nn_graph_t *g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
    }
}

static int drop_identities(nn_graph_t *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if (!nn_is_op(n, NN_OP_IDENTITY) && !nn_is_op(n, NN_OP_DROPOUT))
            continue;
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1)
            continue;
        if (n->n_outputs > 1 || g->values[n->outputs[0]].is_output)
            continue; /* a mask is wanted, or the name must survive */
        if (nn_is_op(n, NN_OP_DROPOUT) && n->n_inputs >= 3 && n->inputs[2] >= 0)
            continue; /* training_mode given: let the op judge it */
        replace_uses(g, n->outputs[0], n->inputs[0]);
        n->dead = 1;
    }
    return 0;
}


static int fold_constants(nn_graph_t *g, nn_error_t *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if (n->dead || n->n_inputs == 0)
            continue;
        int all_const = 1;
        for (int k = 0; k < n->n_inputs && all_const; k++)
            if (n->inputs[k] >= 0 && !g->values[n->inputs[k]].is_const)
                all_const = 0;
        if (!all_const)
            continue;
        nn_tensor_t *ins[n->n_inputs];
        for (int k = 0; k < n->n_inputs; k++)
            ins[k] = n->inputs[k] >= 0 ? &g->values[n->inputs[k]].t : NULL;
        nn_tensor_t outs[n->n_outputs];
        int rc = nn_eval_node(n, ins, n->n_inputs, outs, err);
        if (rc)
            return rc;
        for (int k = 0; k < n->n_outputs; k++) {
            nn_value_t *val = &g->values[n->outputs[k]];
            val->t = outs[k];
            val->is_const = 1;
        }
        n->dead = 1;
    }
    return 0;
}


/* Conv -> BatchNormalization becomes one Conv with scaled weights. */
static int fold_batchnorm(nn_graph_t *g, nn_node_t *conv, nn_node_t *bn,
                          nn_error_t *err)
{
    if (bn->n_inputs != 5 || bn->n_outputs != 1 || conv->n_inputs < 2 ||
        conv->n_inputs > 3 || !nn_const_float(g, conv->inputs[1]))
        return 0;
    for (int k = 1; k < 5; k++)
        if (!nn_const_float(g, bn->inputs[k]))
            return 0;
    if (conv->n_inputs == 3 && conv->inputs[2] >= 0 &&
        !nn_const_float(g, conv->inputs[2]))
        return 0;
    if (nn_attr_int(bn, "training_mode", 0) != 0)
        return 0;
    const nn_tensor_t *w = &g->values[conv->inputs[1]].t;
    int64_t cout = w->rank >= 1 ? w->dims[0] : 0;
    for (int k = 1; k < 5; k++)
        if (nn_tensor_elems(&g->values[bn->inputs[k]].t) != cout)
            return 0;
    if (cout <= 0)
        return 0;
    const float *scale = g->values[bn->inputs[1]].t.data;
    const float *shift = g->values[bn->inputs[2]].t.data;
    const float *mean = g->values[bn->inputs[3]].t.data;
    const float *var = g->values[bn->inputs[4]].t.data;
    const float *bias = conv->n_inputs == 3 && conv->inputs[2] >= 0
                            ? g->values[conv->inputs[2]].t.data
                            : NULL;
    if (bias && nn_tensor_elems(&g->values[conv->inputs[2]].t) != cout)
        return 0;
    float eps = nn_attr_float(bn, "epsilon", 1e-5f);
    int64_t per = nn_tensor_elems(w) / cout;
    float *nw = malloc(nn_tensor_bytes(w));
    float *nb = malloc(sizeof(float) * (size_t)cout);
    if (!nw || !nb) {
        free(nw);
        free(nb);
        return nn_fail(err, NN_ENOMEM, "out of memory folding BatchNormalization");
    }
    const float *wd = w->data;
    for (int64_t c = 0; c < cout; c++) {
        double s = scale[c] / sqrt((double)var[c] + eps);
        for (int64_t j = 0; j < per; j++)
            nw[c * per + j] = (float)(wd[c * per + j] * s);
        nb[c] = (float)(((bias ? bias[c] : 0.0) - mean[c]) * s + shift[c]);
    }
    int64_t bdims[1] = {cout}, wdims[NN_MAX_RANK];
    int wrank = w->rank; /* w dangles once add_const grows the values */
    memcpy(wdims, w->dims, sizeof wdims);
    char name[512];
    snprintf(name, sizeof name, "%s/bn_weight", bn->name);
    int wid = nn_graph_add_const(g, name, NN_DTYPE_FLOAT, wrank, wdims, nw);
    if (wid < 0) {
        free(nb);
        return nn_fail(err, -wid, "out of memory folding BatchNormalization");
    }
    snprintf(name, sizeof name, "%s/bn_bias", bn->name);
    int bid = nn_graph_add_const(g, name, NN_DTYPE_FLOAT, 1, bdims, nb);
    if (bid < 0)
        return nn_fail(err, -bid, "out of memory folding BatchNormalization");
    if (nn_ensure_inputs(conv, 3))
        return nn_fail(err, NN_ENOMEM, "out of memory folding BatchNormalization");
    conv->inputs[1] = wid;
    conv->inputs[2] = bid;
    conv->outputs[0] = bn->outputs[0];
    bn->dead = 1;
    return 1;
}

static int scalar_const(const nn_graph_t *g, const nn_node_t *n, int k,
                        float *out)
{
    if (k >= n->n_inputs || n->inputs[k] < 0)
        return 1; /* absent: keep the default */
    int v = n->inputs[k];
    if (!nn_const_float(g, v) || nn_tensor_elems(&g->values[v].t) != 1)
        return 0;
    *out = *(const float *)g->values[v].t.data;
    return 1;
}

/* Fuses the activation consuming producer's output, if there is one. */
static int fuse_activation(nn_graph_t *g, const nn_usage_t *u, nn_node_t *prod)
{
    int y = prod->outputs[0];
    if (prod->fusion.act != NN_ACT_NONE || g->values[y].is_output)
        return 0;
    nn_fusion_t f = prod->fusion;
    nn_node_t *act = NULL;
    if (u->uses[y] == 1) {
        act = only_consumer(g, u, y);
        if (!act || act->n_outputs != 1)
            return 0;
        if (nn_is_op(act, NN_OP_RELU)) {
            f.act = NN_ACT_RELU;
        } else if (nn_is_op(act, NN_OP_LEAKYRELU)) {
            f.act = NN_ACT_LEAKY;
            f.alpha = nn_attr_float(act, "alpha", 0.01f);
        } else if (nn_is_op(act, NN_OP_HARDSWISH)) {
            f.act = NN_ACT_HARDSWISH;
            f.alpha = 1.0f / 6.0f;
            f.beta = 0.5f;
        } else if (nn_is_op(act, NN_OP_GELU) &&
                   (nn_is_op(prod, NN_OP_MATMUL) || nn_is_op(prod, NN_OP_GEMM))) {
            /* Products apply it per finished block, still in cache. */
            f.act = NN_ACT_GELU;
        } else if (nn_is_op(act, NN_OP_CLIP)) {
            f.act = NN_ACT_CLIP;
            f.alpha = -INFINITY;
            f.beta = INFINITY;
            if (act->opset < 11) {
                f.alpha = nn_attr_float(act, "min", -INFINITY);
                f.beta = nn_attr_float(act, "max", INFINITY);
            } else if (!scalar_const(g, act, 1, &f.alpha) ||
                       !scalar_const(g, act, 2, &f.beta)) {
                return 0;
            }
        } else {
            return 0;
        }
    } else if (u->uses[y] == 2) {
        /* x * sigmoid(x) or x * hardsigmoid(x): the gate and the Mul. */
        nn_node_t *gate = NULL, *mul = NULL;
        for (int i = 0; i < g->n_nodes; i++) {
            nn_node_t *n = &g->nodes[i];
            if (n->dead || n->n_inputs < 1)
                continue;
            if ((nn_is_op(n, NN_OP_SIGMOID) || nn_is_op(n, NN_OP_HARDSIGMOID)) &&
                n->inputs[0] == y)
                gate = n;
            else if (nn_is_op(n, NN_OP_MUL) && n->n_inputs == 2 &&
                     (n->inputs[0] == y || n->inputs[1] == y))
                mul = n;
        }
        if (!gate || !mul || u->uses[gate->outputs[0]] != 1 ||
            g->values[gate->outputs[0]].is_output)
            return 0;
        int other = mul->inputs[0] == y ? mul->inputs[1] : mul->inputs[0];
        if (other != gate->outputs[0])
            return 0;
        if (nn_is_op(gate, NN_OP_SIGMOID)) {
            f.act = NN_ACT_SILU;
        } else {
            f.act = NN_ACT_HARDSWISH;
            f.alpha = nn_attr_float(gate, "alpha", 0.2f);
            f.beta = nn_attr_float(gate, "beta", 0.5f);
        }
        gate->dead = 1;
        act = mul;
    } else {
        return 0;
    }
    prod->fusion = f;
    prod->outputs[0] = act->outputs[0];
    act->dead = 1;
    return 1;
}


/* ---- GELU and LayerNorm written out as elementwise chains ----------------- */

/* The live producer of v, or NULL. */
static nn_node_t *producer_of(nn_graph_t *g, const nn_usage_t *u, int v)
{
    nn_node_t *n = v >= 0 && u->producer[v] >= 0 ? &g->nodes[u->producer[v]]
                                                 : NULL;
    return n && n->n_outputs == 1 ? n : NULL;
}

/* v is a float constant holding one value close to want. */
static int const_near(const nn_graph_t *g, int v, float want)
{
    float x;
    if (!nn_const_float(g, v) || nn_tensor_elems(&g->values[v].t) != 1)
        return 0;
    x = *(const float *)g->values[v].t.data;
    return fabsf(x - want) <= 1e-5f * fabsf(want);
}

/* For a binary node reading `v`, the other operand (or -1). */
static int other_operand(const nn_node_t *n, int v)
{
    if (n->n_inputs != 2)
        return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

/* The consumer of v if it is the only one and of the given op. */
static nn_node_t *next_op(nn_graph_t *g, const nn_usage_t *u, int v, nn_op_t op)
{
    nn_node_t *n = only_consumer(g, u, v);
    return n && nn_is_op(n, op) && n->n_outputs == 1 ? n : NULL;
}

/* Turns node n, which has no attributes, into `op` reading `inputs`, with
 * the given attributes (taken on success); every other node of the pattern
 * is marked dead by the caller. Returns 0 or -NN_ENOMEM (n unchanged). */
static int become(nn_node_t *n, nn_op_t op, const int *inputs, int n_in,
                  nn_attr_t *attrs, int n_attrs)
{
    int *in = malloc(sizeof(int) * (size_t)n_in);
    if (!in || n->n_attrs) {
        free(in);
        return -NN_ENOMEM;
    }
    memcpy(in, inputs, sizeof(int) * (size_t)n_in);
    free(n->inputs);
    n->inputs = in;
    n->n_inputs = n_in;
    nn_node_set_op(n, op);
    free(n->attrs); /* an empty array: the node had no attributes */
    n->attrs = attrs;
    n->n_attrs = n_attrs;
    return 0;
}

/* x / sqrt(2) -> Erf -> + 1 -> x * . -> * 0.5   becomes   Gelu(x). */
static int fuse_gelu(nn_graph_t *g, const nn_usage_t *u, nn_node_t *erf)
{
    nn_node_t *div = producer_of(g, u, erf->inputs[0]);
    if (!div || !nn_is_op(div, NN_OP_DIV) || div->n_inputs != 2 ||
        !const_near(g, div->inputs[1], 1.41421356f) ||
        u->uses[div->outputs[0]] != 1)
        return 0;
    int x = div->inputs[0];
    nn_node_t *add = next_op(g, u, erf->outputs[0], NN_OP_ADD);
    if (!add || !const_near(g, other_operand(add, erf->outputs[0]), 1.0f))
        return 0;
    nn_node_t *mul = next_op(g, u, add->outputs[0], NN_OP_MUL);
    if (!mul || other_operand(mul, add->outputs[0]) != x)
        return 0;
    nn_node_t *half = next_op(g, u, mul->outputs[0], NN_OP_MUL);
    if (!half || !const_near(g, other_operand(half, mul->outputs[0]), 0.5f) ||
        half->n_attrs)
        return 0;
    if (become(half, NN_OP_GELU, &x, 1, NULL, 0))
        return -NN_ENOMEM;
    div->dead = erf->dead = add->dead = mul->dead = 1;
    return 1;
}

static int reduces_last_axis(const nn_node_t *n)
{
    const int64_t *axes;
    return nn_attr_ints(n, "axes", &axes) == 1 && axes[0] == -1 &&
           nn_attr_int(n, "keepdims", 1) == 1 && n->n_inputs == 1;
}

/* mean, x - mean, ^2, mean, + eps, sqrt, divide, * gamma, + beta over the
 * last axis (PyTorch's LayerNorm before opset 17) becomes one
 * LayerNormalization. */
static int fuse_layernorm(nn_graph_t *g, const nn_usage_t *u, nn_node_t *mean)
{
    if (!reduces_last_axis(mean))
        return 0;
    int x = mean->inputs[0];
    nn_node_t *sub = next_op(g, u, mean->outputs[0], NN_OP_SUB);
    if (!sub || sub->n_inputs != 2 || sub->inputs[0] != x)
        return 0;
    int d = sub->outputs[0];
    if (u->uses[d] != 2 || g->values[d].is_output)
        return 0;
    nn_node_t *pow = NULL, *div = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if (nn_is_op(n, NN_OP_POW) && n->n_inputs == 2 && n->inputs[0] == d)
            pow = n;
        else if (nn_is_op(n, NN_OP_DIV) && n->n_inputs == 2 && n->inputs[0] == d)
            div = n;
    }
    if (!pow || !div || !const_near(g, pow->inputs[1], 2.0f))
        return 0;
    nn_node_t *var = next_op(g, u, pow->outputs[0], NN_OP_REDUCEMEAN);
    if (!var || !reduces_last_axis(var))
        return 0;
    nn_node_t *add = next_op(g, u, var->outputs[0], NN_OP_ADD);
    int eps_v = add ? other_operand(add, var->outputs[0]) : -1;
    if (!add || !nn_const_float(g, eps_v) ||
        nn_tensor_elems(&g->values[eps_v].t) != 1)
        return 0;
    float eps = *(const float *)g->values[eps_v].t.data;
    nn_node_t *sqrt = next_op(g, u, add->outputs[0], NN_OP_SQRT);
    if (!sqrt || only_consumer(g, u, sqrt->outputs[0]) != div)
        return 0;
    nn_node_t *scale = next_op(g, u, div->outputs[0], NN_OP_MUL);
    int gamma = scale ? other_operand(scale, div->outputs[0]) : -1;
    if (!scale || !nn_const_float(g, gamma))
        return 0;
    nn_node_t *shift = next_op(g, u, scale->outputs[0], NN_OP_ADD);
    int beta = shift ? other_operand(shift, scale->outputs[0]) : -1;
    if (!shift || !nn_const_float(g, beta) || shift->n_attrs)
        return 0;
    nn_attr_t *attrs = calloc(2, sizeof *attrs);
    char *axis_name = strdup("axis"), *eps_name = strdup("epsilon");
    if (!attrs || !axis_name || !eps_name) {
        free(attrs);
        free(axis_name);
        free(eps_name);
        return -NN_ENOMEM;
    }
    attrs[0] = (nn_attr_t){.name = axis_name, .type = NN_ATTR_INT, .i = -1};
    attrs[1] = (nn_attr_t){.name = eps_name, .type = NN_ATTR_FLOAT, .f = eps};
    int ins[3] = {x, gamma, beta};
    if (become(shift, NN_OP_LAYERNORM, ins, 3, attrs, 2)) {
        free(axis_name);
        free(eps_name);
        free(attrs);
        return -NN_ENOMEM;
    }
    shift->opset = 17; /* the operator's own version */
    mean->dead = sub->dead = pow->dead = var->dead = add->dead = 1;
    sqrt->dead = div->dead = scale->dead = 1;
    return 1;
}

/* Runs both pattern fusions over the graph. */
static int fuse_chains(nn_graph_t *g, nn_error_t *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if ((!nn_is_op(n, NN_OP_ERF) && !nn_is_op(n, NN_OP_REDUCEMEAN)) ||
            n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0)
            continue;
        nn_usage_t u;
        int rc = nn_usage_build(g, &u, err);
        if (rc)
            return rc;
        rc = nn_is_op(n, NN_OP_ERF) ? fuse_gelu(g, &u, n)
                                 : fuse_layernorm(g, &u, n);
        nn_usage_free(&u);
        if (rc < 0)
            return nn_fail(err, -rc, "out of memory optimising the graph");
    }
    return 0;
}

/* Frees constants no live node reads any more (weights replaced by their
 * BatchNorm-folded copies, inputs of folded subgraphs). */
static void release_unused_constants(nn_graph_t *g)
{
    char *used = calloc((size_t)g->n_values + 1, 1);
    if (!used)
        return; /* only an optimisation */
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (!g->nodes[i].dead && g->nodes[i].inputs[k] >= 0)
                used[g->nodes[i].inputs[k]] = 1;
    for (int i = 0; i < g->n_outputs; i++)
        used[g->outputs[i]] = 1;
    for (int v = 0; v < g->n_values; v++) {
        nn_value_t *val = &g->values[v];
        if (val->is_const && !used[v] && val->t.data) {
            free(val->t.data);
            val->t.data = NULL;
        }
    }
    free(used);
}

int nn_optimize(nn_graph_t *g, nn_error_t *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].opset == 0)
            g->nodes[i].opset = g->opset;
        g->nodes[i].fusion.residual = -1;
    }
    int rc = drop_identities(g);
    if (rc == 0)
        rc = fold_constants(g, err);
    if (rc == 0)
        rc = fuse_chains(g, err);
    if (rc)
        return rc;

    nn_usage_t u;
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *n = &g->nodes[i];
        if (nn_is_op(n, NN_OP_BATCHNORM)) {
            /* One that no Conv took (DenseNet's pre-activation): its Relu
             * is applied in the same pass. */
            if ((rc = nn_usage_build(g, &u, err)))
                return rc;
            fuse_activation(g, &u, n);
            nn_usage_free(&u);
            continue;
        }
        if (!nn_is_op(n, NN_OP_CONV) && !nn_is_op(n, NN_OP_GEMM))
            continue;
        if ((rc = nn_usage_build(g, &u, err)))
            return rc;
        nn_node_t *next = nn_is_op(n, NN_OP_CONV)
                              ? only_consumer(g, &u, n->outputs[0])
                              : NULL;
        if (next && nn_is_op(next, NN_OP_BATCHNORM)) {
            rc = fold_batchnorm(g, n, next, err);
            if (rc > 0) {
                nn_usage_free(&u);
                if ((rc = nn_usage_build(g, &u, err)))
                    return rc;
            }
        }
        if (rc >= 0) {
            n = &g->nodes[i]; /* add_const may not move nodes, but be safe */
            fuse_activation(g, &u, n);
            rc = 0;
        }
        nn_usage_free(&u);
        if (rc)
            return rc;
    }
    if ((rc = nn_graph_sort(g, err)))
        return rc;
    release_unused_constants(g);
    return 0;
}


/* Stride-1 3x3 Convs whose output map is large enough get their weights in
 * Winograd form as a fifth input, transformed once here rather than on
 * every run. The input size is fixed but for the batch, so every plan makes
 * the same choice and the original weights, read by this Conv alone, are
 * released. Returns 1 if a Conv changed. */
static int add_winograd_weights(nn_graph_t *g, const nn_tensor_t *const *shapes,
                                nn_error_t *err)
{
    int changed = 0;
    nn_usage_t u;
    int rc = nn_usage_build(g, &u, err);
    if (rc)
        return rc;
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        nn_node_t *n = &g->nodes[i];
        if (!nn_is_op(n, NN_OP_CONV) || n->n_inputs < 2 || n->n_outputs != 1 ||
            (n->n_inputs > 4 && n->inputs[4] >= 0) ||
            !nn_const_float(g, n->inputs[1]) || nn_attr_int(n, "group", 1) != 1)
            continue;
        const int64_t *v;
        int k = nn_attr_ints(n, "strides", &v), ok = 1;
        for (int a = 0; a < k; a++)
            ok &= v[a] == 1;
        k = nn_attr_ints(n, "dilations", &v);
        for (int a = 0; a < k; a++)
            ok &= v[a] == 1;
        int wv = n->inputs[1];
        const nn_tensor_t *w = &g->values[wv].t, *y = shapes[n->outputs[0]];
        if (!ok || w->rank != 4 || w->dims[2] != 3 || w->dims[3] != 3 ||
            w->dims[0] < 16 || w->dims[1] < 16 || !w->data || !y ||
            y->rank != 4 || !nn_conv_winograd_fits(y->dims[2], y->dims[3]) ||
            u.uses[wv] != 1 || g->values[wv].is_output)
            continue;
        /* Few input or output channels on a large map: the direct kernel
         * over flat planes (convflat.h) beats the transforms (EfficientNetV2's
         * 24 -> 24 on 112x112: 0.88 -> 0.65 ms). */
        const int shallow = w->dims[1] * 9 <= NN_CONVFLAT_OVER_WINOGRAD_K ||
                            (w->dims[0] <= NN_CONVFLAT_OVER_WINOGRAD_M &&
                             w->dims[1] * 9 <= NN_CONVFLAT_MAX_K);
        if (nn_sgemm_has(g->isa) && shallow && n->fusion.residual < 0 &&
            y->dims[2] * y->dims[3] >= NN_CONVFLAT_OVER_WINOGRAD_OUTPUTS)
            continue;
        /* Few output or input channels on a small map: grouplanes.h's
         * direct kernel beats the transforms (NN_LANES_OVER_WINOGRAD_M). */
        if ((w->dims[0] <= NN_LANES_OVER_WINOGRAD_M || w->dims[1] <= NN_LANES_OVER_WINOGRAD_C) &&
            nn_grouplanes_suits(g->isa, 1, w->dims[1], w->dims[0], 9, y->dims[2] * y->dims[3]))
            continue;
        const int tile = nn_conv_winograd_tile(y->dims[2], y->dims[3]);
        int64_t dims[3] = {(tile + 2) * (tile + 2), nn_conv_winograd_rows(g->isa, w->dims[0]),
                           w->dims[1]};
        float *t = aligned_alloc(
            64, (sizeof(float) * (size_t)(dims[0] * dims[1] * dims[2]) + 63) / 64 * 64);
        if (!t ||
            nn_conv_winograd_weights(g->isa, tile, w->data, w->dims[0], w->dims[1], t)) {
            free(t);
            rc = nn_fail(err, NN_ENOMEM, "out of memory optimising the graph");
            break;
        }
        char name[512];
        snprintf(name, sizeof name, "%s/winograd_weight", n->name);
        int id = nn_graph_add_const(g, name, NN_DTYPE_FLOAT, 3, dims, t);
        if (id < 0) {
            rc = nn_fail(err, -id, "out of memory optimising the graph");
            break;
        }
        n = &g->nodes[i];
        if (nn_ensure_inputs(n, 5)) {
            rc = nn_fail(err, NN_ENOMEM, "out of memory optimising the graph");
            break;
        }
        n->inputs[4] = id;
        /* Keep W's shape (Conv infers shapes from it), drop its data. */
        free(g->values[wv].t.data);
        g->values[wv].t.data = NULL;
        changed = 1;
    }
    nn_usage_free(&u);
    return rc ? rc : changed;
}

static int same_shape(const nn_tensor_t *a, const nn_tensor_t *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* node, which has taken add's other operand, takes over add's output too;
 * the usage u is rebuilt and the activation after node fused. On failure u
 * is freed. */
static int absorb_add(nn_graph_t *g, nn_usage_t *u, nn_node_t *node, nn_node_t *add,
                      nn_error_t *err)
{
    node->outputs[0] = add->outputs[0];
    add->dead = 1;
    nn_usage_free(u);
    int rc = nn_usage_build(g, u, err);
    if (rc == 0)
        fuse_activation(g, u, node);
    return rc;
}

static int fuse_residuals(nn_graph_t *g, const nn_tensor_t *const *shapes,
                          nn_error_t *err)
{
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *conv = &g->nodes[i];
        if (!nn_is_op(conv, NN_OP_CONV) || conv->fusion.act != NN_ACT_NONE ||
            conv->fusion.residual >= 0 ||
            (conv->n_inputs > 3 && conv->inputs[3] >= 0))
            continue;
        nn_usage_t u;
        int rc = nn_usage_build(g, &u, err);
        if (rc)
            return rc;
        int y = conv->outputs[0];
        nn_node_t *add = only_consumer(g, &u, y);
        if (add && nn_is_op(add, NN_OP_ADD) && add->n_inputs == 2 &&
            add->n_outputs == 1 && add->inputs[0] != add->inputs[1]) {
            int other = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
            if (!g->values[other].is_const && shapes[other] && shapes[y] &&
                same_shape(shapes[other], shapes[y]) &&
                shapes[y]->dtype == NN_DTYPE_FLOAT) {
                if (nn_ensure_inputs(conv, 4)) {
                    nn_usage_free(&u);
                    return nn_fail(err, NN_ENOMEM, "out of memory fusing Add");
                }
                conv->inputs[3] = other;
                conv->fusion.residual = other;
                changed = 1;
                if ((rc = absorb_add(g, &u, conv, add, err)))
                    return rc;
            }
        }
        nn_usage_free(&u);
    }
    if (changed) {
        int rc = nn_graph_sort(g, err);
        if (rc)
            return rc;
    }
    return changed;
}

/* MatMul by constant weights B [K, N] followed by Add of a constant bias
 * over the last axis ([N], [1, N], ...: what exporters write for a Linear
 * layer on a sequence) becomes one MatMul with the bias as a third input,
 * then takes the activation after it (the MLP's Gelu): the product's
 * blocks get bias and activation while still in cache, not two more passes
 * over memory. */
static int fuse_matmul_bias(nn_graph_t *g, const nn_tensor_t *const *shapes,
                            nn_error_t *err)
{
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nn_node_t *mm = &g->nodes[i];
        if (!nn_is_op(mm, NN_OP_MATMUL) || mm->n_inputs != 2 || mm->n_outputs != 1 ||
            !nn_const_float(g, mm->inputs[1]) || g->values[mm->inputs[1]].t.rank != 2)
            continue;
        int y = mm->outputs[0];
        const nn_tensor_t *ys = shapes[y];
        if (!ys || ys->rank < 2 || g->values[y].is_output)
            continue;
        nn_usage_t u;
        int rc = nn_usage_build(g, &u, err);
        if (rc)
            return rc;
        nn_node_t *add = only_consumer(g, &u, y);
        int bias = -1;
        if (add && nn_is_op(add, NN_OP_ADD) && add->n_inputs == 2 && add->n_outputs == 1)
            bias = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
        int fits = bias >= 0 && bias != y && nn_const_float(g, bias);
        if (fits) {
            const nn_tensor_t *b = &g->values[bias].t;
            fits = b->rank >= 1 && b->rank <= ys->rank &&
                   b->dims[b->rank - 1] == ys->dims[ys->rank - 1] &&
                   nn_tensor_elems(b) == ys->dims[ys->rank - 1];
        }
        if (fits) {
            if (nn_ensure_inputs(mm, 3)) {
                nn_usage_free(&u);
                return nn_fail(err, NN_ENOMEM, "out of memory fusing a bias");
            }
            mm->inputs[2] = bias;
            changed = 1;
            if ((rc = absorb_add(g, &u, mm, add, err)))
                return rc;
        }
        nn_usage_free(&u);
    }
    if (changed) {
        int rc = nn_graph_sort(g, err);
        if (rc)
            return rc;
    }
    return changed;
}

/* Conv weights that are multiplied as a matrix are packed once for the
 * engine's own products (sgemm.h), and grouped ones for grouplanes.h's
 * kernel, when the graph's instruction set has them; the Conv takes them
 * as input 5 and W keeps only its shape. Runs
 * last: the passes before change weights. */
static int add_packed_weights(nn_graph_t *g, const nn_tensor_t *const *shapes,
                              nn_error_t *err)
{
    if (!nn_sgemm_has(g->isa))
        return 0;
    int changed = 0;
    nn_usage_t u;
    int rc = nn_usage_build(g, &u, err);
    if (rc)
        return rc;
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        nn_node_t *n = &g->nodes[i];
        if (!nn_is_op(n, NN_OP_CONV) || n->n_inputs < 2 || n->n_outputs != 1 ||
            (n->n_inputs > 4 && n->inputs[4] >= 0) || (n->n_inputs > 5 && n->inputs[5] >= 0) ||
            !nn_const_float(g, n->inputs[1]))
            continue;
        int wv = n->inputs[1];
        const nn_tensor_t *w = &g->values[wv].t;
        const int how = nn_conv_packs(n, w, g->isa, shapes[n->outputs[0]]);
        if (u.uses[wv] != 1 || g->values[wv].is_output || how == NN_CONV_PACK_NONE)
            continue;
        int64_t dims[4];
        const int rank = nn_conv_packed_dims(n, w, how, dims);
        size_t floats = 1;
        for (int d = 0; d < rank; d++)
            floats *= (size_t)dims[d];
        float *t = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (!t) {
            rc = nn_fail(err, NN_ENOMEM, "out of memory optimising the graph");
            break;
        }
        nn_conv_pack_weights(n, w, how, t);
        char name[512];
        snprintf(name, sizeof name, "%s/packed_weight", n->name);
        int id = nn_graph_add_const(g, name, NN_DTYPE_FLOAT, rank, dims, t);
        if (id < 0) {
            rc = nn_fail(err, -id, "out of memory optimising the graph");
            break;
        }
        n = &g->nodes[i];
        if (nn_ensure_inputs(n, 6)) {
            rc = nn_fail(err, NN_ENOMEM, "out of memory optimising the graph");
            break;
        }
        n->inputs[5] = id;
        /* Keep W's shape (Conv infers shapes from it), drop its data. */
        free(g->values[wv].t.data);
        g->values[wv].t.data = NULL;
        changed = 1;
    }
    nn_usage_free(&u);
    return rc ? rc : changed;
}

int nn_optimize_with_shapes(nn_graph_t *g, const nn_tensor_t *const *shapes,
                            nn_error_t *err)
{
    int fused = fuse_residuals(g, shapes, err);
    if (fused < 0)
        return fused;
    int biased = fuse_matmul_bias(g, shapes, err);
    if (biased < 0)
        return biased;
    fused |= biased;
    int wino = add_winograd_weights(g, shapes, err);
    if (wino < 0)
        return wino;
    int blocked = nn_blocked_layout(g, shapes, err);
    if (blocked < 0)
        return blocked;
    wino |= blocked;
    int packed = add_packed_weights(g, shapes, err);
    if (packed < 0)
        return packed;
    return fused || wino || packed;
}
