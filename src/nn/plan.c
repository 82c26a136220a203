/* Plan building: shape inference, folding, memory planning; and running. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

#define NN_ALIGN 64
/* Larger than any machine this runs on: 1 TiB. */
#define NN_MAX_TENSOR_BYTES (1ull << 40)

enum value_class { VAL_UNUSED = 0, VAL_CONST, VAL_FOLDED, VAL_INPUT, VAL_ACT };

struct nn_plan {
    const nn_graph_t *g;
    int n_values;           /* the graph's count when the plan was made: the
                             * optimiser may add values to it afterwards */
    nn_tensor_t *vals;      /* one per graph value */
    unsigned char *cls;     /* enum value_class per value */
    int *root;              /* owner of the buffer a VAL_ACT value lives in */
    size_t *sub;            /* bytes from its root's start to the value */
    size_t *offset;         /* arena offset for VAL_ACT roots */
    int n_in, n_out;
    int *in_ids, *out_ids;  /* the values fed and delivered at run time */
    int *producer;          /* call index that computes each value, or -1 */
    int n_calls;
    nn_call_t *calls;
    nn_tensor_t **io;       /* storage for every call's in/out pointers */
    size_t arena_bytes, scratch_bytes;
    double flops;
};

static size_t align_up(size_t n)
{
    return (n + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
}

/* Refuses output shapes no machine could hold (or whose size overflows):
 * a hostile model must fail here, not in an allocation or a loop. */
static int check_output(const nn_node_t *node, int k, const nn_tensor_t *t,
                        nn_error_t *err)
{
    if (nn_dtype_size(t->dtype) == 0)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "output %d has an unsupported type", k);
    if (t->rank < 0 || t->rank > NN_MAX_RANK)
        return nn_node_fail(err, node, NN_ESHAPE, "output %d has rank %d", k,
                            t->rank);
    uint64_t bytes = nn_dtype_size(t->dtype);
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 ||
            __builtin_mul_overflow(bytes, (uint64_t)t->dims[i], &bytes) ||
            bytes > NN_MAX_TENSOR_BYTES)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "output %d would have an impossible shape "
                                "(dimension %d is %lld)",
                                k, i, (long long)t->dims[i]);
    }
    return 0;
}

/* Runs prepare + exec on constant inputs into malloc'd outputs. */
int nn_eval_node(const nn_node_t *node, nn_tensor_t **ins, int n_in,
                 nn_tensor_t *outs, nn_error_t *err)
{
    nn_call_t *call = calloc(1, sizeof *call);
    nn_tensor_t **outp = calloc((size_t)node->n_outputs + 1, sizeof *outp);
    if (!call || !outp) {
        free(call);
        free(outp);
        return nn_fail(err, NN_ENOMEM, "out of memory folding constants");
    }
    for (int k = 0; k < node->n_outputs; k++) {
        memset(&outs[k], 0, sizeof outs[k]);
        outp[k] = &outs[k];
    }
    call->node = node;
    call->n_in = n_in;
    call->in = ins;
    call->n_out = node->n_outputs;
    call->out = outp;
    int rc = node->def->prepare(call, err);
    void *scratch = NULL;
    if (rc == 0 && call->scratch_bytes) {
        scratch = aligned_alloc(NN_ALIGN, align_up(call->scratch_bytes));
        if (!scratch)
            rc = nn_fail(err, NN_ENOMEM, "out of memory folding constants");
    }
    for (int k = 0; rc == 0 && k < node->n_outputs; k++)
        rc = check_output(node, k, &outs[k], err);
    for (int k = 0; rc == 0 && k < node->n_outputs; k++) {
        size_t bytes = nn_tensor_bytes(&outs[k]);
        outs[k].data = malloc(bytes ? bytes : 1);
        if (!outs[k].data)
            rc = nn_fail(err, NN_ENOMEM, "out of memory folding constants");
    }
    if (rc == 0) {
        call->scratch = scratch;
        node->def->exec(call);
    } else {
        for (int k = 0; k < node->n_outputs; k++) {
            free(outs[k].data);
            outs[k].data = NULL;
        }
    }
    free(scratch);
    free(outp);
    free(call);
    return rc;
}

void nn_plan_free(nn_plan_t *p)
{
    if (!p)
        return;
    if (p->cls)
        for (int v = 0; v < p->n_values; v++)
            if (p->cls[v] == VAL_FOLDED)
                free(p->vals[v].data);
    free(p->vals);
    free(p->cls);
    free(p->root);
    free(p->sub);
    free(p->offset);
    free(p->calls);
    free(p->io);
    free(p->in_ids);
    free(p->out_ids);
    free(p->producer);
    free(p);
}

/* Node output folding: every input constant (or, for Shape, just known). */
static int node_is_foldable(const nn_plan_t *p, const nn_node_t *n)
{
    if (n->op == NN_OP_SHAPE)
        return n->n_inputs > 0 && n->inputs[0] >= 0 && p->cls[n->inputs[0]] != VAL_UNUSED;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        if (v >= 0 && p->cls[v] != VAL_CONST && p->cls[v] != VAL_FOLDED)
            return 0;
    }
    return 1;
}

static int fold_call(nn_plan_t *p, nn_call_t *call, nn_error_t *err)
{
    const nn_node_t *n = call->node;
    nn_tensor_t outs[n->n_outputs > 0 ? n->n_outputs : 1];
    int rc = nn_eval_node(n, call->in, call->n_in, outs, err);
    if (rc)
        return rc;
    for (int k = 0; k < n->n_outputs; k++) {
        int v = n->outputs[k];
        p->vals[v] = outs[k];
        p->cls[v] = VAL_FOLDED;
    }
    return 0;
}

/* Greedy first-fit by decreasing size over lifetime intervals. */
typedef struct {
    int v;
    int first, last;
    size_t size;
} live_t;

static int cmp_size_desc(const void *a, const void *b)
{
    const live_t *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

/* first[r], last[r]: the calls that first write and last read buffer root r
 * (-1: none); an output lives to the end (n_calls). */
static void lifetimes(const nn_plan_t *p, int *first, int *last)
{
    for (int v = 0; v < p->n_values; v++) {
        first[v] = -1;
        last[v] = -1;
    }
    for (int c = 0; c < p->n_calls; c++) {
        const nn_node_t *n = p->calls[c].node;
        for (int k = 0; k < n->n_outputs; k++) {
            int r = p->root[n->outputs[k]];
            if (first[r] < 0)
                first[r] = c;
            if (last[r] < c)
                last[r] = c;
        }
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v < 0)
                continue;
            int r = p->root[v];
            if (last[r] < c)
                last[r] = c;
        }
    }
    for (int i = 0; i < p->n_out; i++)
        last[p->root[p->out_ids[i]]] = p->n_calls;
}

/* Moves root r's buffer, with every value in it, to bytes at of root to. */
static void move_buffer(nn_plan_t *p, int r, int to, size_t at)
{
    for (int v = 0; v < p->n_values; v++)
        if (p->cls[v] == VAL_ACT && p->root[v] == r) {
            p->root[v] = to;
            p->sub[v] += at;
        }
}

/* Concat call c along the channels of a batch (out_joins 2): an input's
 * images lie a Concat image apart in the output, so only an input whose
 * producer writes its images so (out_strided) and that nothing else reads
 * (uses) moves in, and its producer is told the stride. */
static void join_images(nn_plan_t *p, const nn_call_t *c, const int *uses)
{
    const nn_node_t *n = c->node;
    const int o = n->outputs[0];
    const nn_tensor_t *t = &p->vals[o];
    if (p->cls[o] != VAL_ACT || p->root[o] != o || t->rank < 1 || t->dims[0] < 1)
        return;
    const size_t img = nn_tensor_bytes(t) / (size_t)t->dims[0];
    size_t at = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const int u = n->inputs[i];
        if (u < 0)
            continue;
        const size_t here = at;
        at += nn_tensor_bytes(&p->vals[u]) / (size_t)t->dims[0];
        const int prod = p->producer[u];
        if (uses[u] == 1 && p->cls[u] == VAL_ACT && p->root[u] == u && prod >= 0 &&
            p->calls[prod].out_strided && p->calls[prod].node->outputs[0] == u &&
            p->vals[u].dtype == NN_DTYPE_FLOAT && here % NN_ALIGN == 0 &&
            img % sizeof(float) == 0) {
            move_buffer(p, u, o, here);
            p->calls[prod].out_stride = img / sizeof(float);
        }
    }
}

/* Concat call c whose output is all of its inputs end to end (out_joins
 * 1): a view of them where they already lie so, else each input that is
 * ours, a root, given once and lands aligned moves in. */
static void join_whole(nn_plan_t *p, const nn_call_t *c)
{
    const nn_node_t *n = c->node;
    const int o = n->outputs[0], u0 = n->inputs[0];
    int all = p->cls[o] == VAL_ACT && p->root[o] == o;
    size_t at = 0;
    for (int i = 0; i < n->n_inputs && all; i++) {
        const int u = n->inputs[i];
        all = u >= 0 && p->cls[u] == VAL_ACT && p->root[u] == p->root[u0] &&
              p->root[u] != o && p->sub[u] == p->sub[u0] + at;
        at += all ? nn_tensor_bytes(&p->vals[u]) : 0;
    }
    if (all) {
        move_buffer(p, o, p->root[u0], p->sub[u0]);
        return;
    }
    at = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const int u = n->inputs[i];
        if (u < 0)
            continue;
        const size_t here = p->sub[o] + at;
        at += nn_tensor_bytes(&p->vals[u]);
        int once = 1;
        for (int k = 0; k < n->n_inputs; k++)
            once &= k == i || n->inputs[k] != u;
        if (once && p->cls[u] == VAL_ACT && p->root[u] == u && u != p->root[o] &&
            here % NN_ALIGN == 0)
            move_buffer(p, u, p->root[o], here);
    }
}

/* Concats whose output is their inputs end to end (out_joins): each input
 * computed here moves into the output's buffer, so that its producer
 * writes it in place and the Concat copies nothing (SqueezeNet's fire
 * modules, GoogLeNet's inception arms). Latest first: a DenseNet block's
 * Concats each add one layer's output to the one before, so at batch 1
 * the last one takes every layer's output, and an earlier one, whose
 * inputs then lie end to end in that buffer, becomes a view of them. */
static int place_joins(nn_plan_t *p, nn_error_t *err)
{
    int *uses = calloc((size_t)p->n_values + 1, sizeof *uses);
    if (!uses)
        return nn_fail(err, NN_ENOMEM, "out of memory planning activations");
    for (int c = 0; c < p->n_calls; c++)
        for (int i = 0; i < p->calls[c].node->n_inputs; i++)
            if (p->calls[c].node->inputs[i] >= 0)
                uses[p->calls[c].node->inputs[i]]++;
    for (int i = 0; i < p->n_out; i++)
        uses[p->out_ids[i]]++;
    for (int c = p->n_calls - 1; c >= 0; c--) {
        const nn_call_t *call = &p->calls[c];
        const nn_node_t *n = call->node;
        if (!call->out_joins || n->n_inputs < 1 || n->n_outputs < 1 || n->outputs[0] < 0)
            continue;
        if (call->out_joins == 2)
            join_images(p, call, uses);
        else
            join_whole(p, call);
    }
    free(uses);
    return 0;
}

static int plan_memory(nn_plan_t *p, nn_error_t *err)
{
    int nv = p->n_values;
    int *first = malloc(sizeof(int) * (size_t)nv);
    int *last = malloc(sizeof(int) * (size_t)nv);
    live_t *lv = malloc(sizeof(live_t) * (size_t)nv);
    live_t **placed = malloc(sizeof(live_t *) * (size_t)nv);
    if (!first || !last || !lv || !placed) {
        free(first);
        free(last);
        free(lv);
        free(placed);
        return nn_fail(err, NN_ENOMEM, "out of memory planning activations");
    }
    lifetimes(p, first, last);

    int n_live = 0;
    for (int v = 0; v < nv; v++)
        if (p->cls[v] == VAL_ACT && p->root[v] == v && first[v] >= 0)
            lv[n_live++] = (live_t){v, first[v], last[v],
                                    align_up(nn_tensor_bytes(&p->vals[v]))};
    qsort(lv, (size_t)n_live, sizeof *lv, cmp_size_desc);

    size_t total = 0;
    int n_placed = 0;
    for (int i = 0; i < n_live; i++) {
        live_t *b = &lv[i];
        size_t off = 0;
        /* Lowest offset not overlapping any placed buffer alive meanwhile;
         * placed is kept sorted by offset. */
        for (int j = 0; j < n_placed; j++) {
            live_t *o = placed[j];
            if (o->last < b->first || b->last < o->first)
                continue;
            size_t o_off = p->offset[o->v];
            if (off + b->size <= o_off)
                break;
            if (o_off + o->size > off)
                off = o_off + o->size;
        }
        p->offset[b->v] = off;
        if (off + b->size > total)
            total = off + b->size;
        int pos = n_placed;
        while (pos > 0 && p->offset[placed[pos - 1]->v] > off) {
            placed[pos] = placed[pos - 1];
            pos--;
        }
        placed[pos] = b;
        n_placed++;
    }
    p->arena_bytes = total;
    free(first);
    free(last);
    free(lv);
    free(placed);
    return 0;
}

int nn_plan_create_part(nn_plan_t **out, const nn_graph_t *g, int begin, int end,
                        int n_in, const int *in_ids, const nn_tensor_t *inputs, int n_out,
                        const int *out_ids, nn_error_t *err)
{
    *out = NULL;
    nn_plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return nn_fail(err, NN_ENOMEM, "out of memory compiling the model");
    p->g = g;
    p->n_values = g->n_values;
    int nv = g->n_values;
    size_t n_io = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_io += (size_t)(g->nodes[i].n_inputs + g->nodes[i].n_outputs);
    p->vals = calloc((size_t)nv + 1, sizeof *p->vals);
    p->cls = calloc((size_t)nv + 1, 1);
    p->root = malloc(sizeof(int) * ((size_t)nv + 1));
    p->sub = calloc((size_t)nv + 1, sizeof *p->sub);
    p->offset = calloc((size_t)nv + 1, sizeof *p->offset);
    p->calls = calloc((size_t)g->n_nodes + 1, sizeof *p->calls);
    p->io = calloc(n_io + 1, sizeof *p->io);
    p->in_ids = malloc(sizeof(int) * ((size_t)n_in + 1));
    p->out_ids = malloc(sizeof(int) * ((size_t)n_out + 1));
    p->producer = malloc(sizeof(int) * ((size_t)nv + 1));
    if (!p->vals || !p->cls || !p->root || !p->sub || !p->offset || !p->calls || !p->io ||
        !p->in_ids || !p->out_ids || !p->producer) {
        nn_plan_free(p);
        return nn_fail(err, NN_ENOMEM, "out of memory compiling the model");
    }
    p->n_in = n_in;
    p->n_out = n_out;
    memcpy(p->in_ids, in_ids, sizeof(int) * (size_t)n_in);
    memcpy(p->out_ids, out_ids, sizeof(int) * (size_t)n_out);
    for (int v = 0; v < nv; v++) {
        p->root[v] = v;
        p->producer[v] = -1;
        if (g->values[v].is_const) {
            p->vals[v] = g->values[v].t;
            p->cls[v] = VAL_CONST;
        }
    }
    for (int i = 0; i < n_in; i++) {
        int v = in_ids[i];
        p->vals[v] = inputs[i];
        p->vals[v].data = NULL;
        p->cls[v] = VAL_INPUT;
    }

    int rc = 0;
    size_t io_used = 0;
    for (int i = 0; i < end && rc == 0; i++) {
        const nn_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        /* Before the part: only what folds, for the part's use. */
        if (i < begin && !node_is_foldable(p, n))
            continue;
        nn_call_t *call = &p->calls[p->n_calls];
        call->node = n;
        call->isa = g->isa;
        call->n_in = n->n_inputs;
        call->n_out = n->n_outputs;
        call->in = p->io + io_used;
        call->out = p->io + io_used + n->n_inputs;
        io_used += (size_t)(n->n_inputs + n->n_outputs);
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0) {
                call->in[k] = NULL;
                continue;
            }
            if (p->cls[v] == VAL_UNUSED) {
                rc = nn_node_fail(err, n, NN_EFORMAT,
                                  "input '%s' has no producer",
                                  g->values[v].name);
                break;
            }
            call->in[k] = &p->vals[v];
        }
        if (rc)
            break;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            memset(&p->vals[v], 0, sizeof p->vals[v]);
            call->out[k] = &p->vals[v];
        }
        if (node_is_foldable(p, n)) {
            rc = fold_call(p, call, err);
            memset(call, 0, sizeof *call);
            continue;
        }
        rc = n->def->prepare(call, err);
        if (rc)
            break;
        for (int k = 0; k < n->n_outputs && rc == 0; k++) {
            int v = n->outputs[k];
            rc = check_output(n, k, &p->vals[v], err);
            p->cls[v] = VAL_ACT;
            p->producer[v] = p->n_calls;
        }
        if (rc)
            break;
        /* A view shares its input's buffer when that buffer is ours. */
        if (call->out_alias && call->in[0] && p->cls[n->inputs[0]] == VAL_ACT)
            p->root[n->outputs[0]] = p->root[n->inputs[0]];
        if (call->scratch_bytes > p->scratch_bytes)
            p->scratch_bytes = call->scratch_bytes;
        p->flops += call->flops;
        p->n_calls++;
    }
    for (int i = 0; rc == 0 && i < n_out; i++)
        if (p->cls[out_ids[i]] == VAL_UNUSED)
            rc = nn_fail(err, NN_EFORMAT, "graph output '%s' is never produced",
                         g->values[out_ids[i]].name);
    if (rc == 0)
        rc = place_joins(p, err);
    if (rc == 0)
        rc = plan_memory(p, err);
    if (rc) {
        nn_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int nn_plan_create(nn_plan_t **out, const nn_graph_t *g, const nn_tensor_t *inputs,
                   nn_error_t *err)
{
    return nn_plan_create_part(out, g, 0, g->n_nodes, g->n_inputs, g->inputs, inputs,
                               g->n_outputs, g->outputs, err);
}

int nn_plan_tail(const nn_plan_t *p, size_t budget, size_t *tail_bytes, int *ids,
                 int *n_ids)
{
    const int nv = p->n_values, nc = p->n_calls;
    int *first = malloc(sizeof(int) * ((size_t)nv + 1));
    int *last = malloc(sizeof(int) * ((size_t)nv + 1));
    size_t *peak = calloc((size_t)nc + 2, sizeof *peak);
    int begin = -1;
    *n_ids = 0;
    if (!first || !last || !peak)
        goto done;
    lifetimes(p, first, last);
    /* peak[c]: the most bytes alive at any call from c on */
    for (int c = nc - 1; c >= 0; c--) {
        size_t live = 0;
        for (int v = 0; v < nv; v++)
            if (p->cls[v] == VAL_ACT && p->root[v] == v && first[v] >= 0 && first[v] <= c &&
                c <= last[v])
                live += align_up(nn_tensor_bytes(&p->vals[v]));
        peak[c] = live > peak[c + 1] ? live : peak[c + 1];
    }
    int cs = 1;
    while (cs < nc && peak[cs] > budget)
        cs++;
    if (cs >= nc)
        goto done;
    /* What the calls from cs on read from before them, and the outputs
     * computed before them. */
    char *want = calloc((size_t)nv + 1, 1);
    if (!want)
        goto done;
    for (int c = cs; c < nc; c++) {
        const nn_node_t *n = p->calls[c].node;
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v >= 0 && (p->cls[v] == VAL_INPUT ||
                           (p->cls[v] == VAL_ACT && p->producer[v] < cs)))
                want[v] = 1;
        }
    }
    for (int i = 0; i < p->n_out; i++) {
        int v = p->out_ids[i];
        if (p->cls[v] == VAL_INPUT || (p->cls[v] == VAL_ACT && p->producer[v] < cs))
            want[v] = 1;
    }
    for (int v = 0; v < nv; v++)
        if (want[v])
            ids[(*n_ids)++] = v;
    free(want);
    *tail_bytes = peak[cs];
    begin = (int)(p->calls[cs].node - p->g->nodes);
done:
    free(first);
    free(last);
    free(peak);
    return begin;
}

size_t nn_plan_arena_bytes(const nn_plan_t *p) { return p->arena_bytes; }
size_t nn_plan_scratch_bytes(const nn_plan_t *p) { return p->scratch_bytes; }
double nn_plan_flops(const nn_plan_t *p) { return p->flops; }
int nn_plan_call_count(const nn_plan_t *p) { return p->n_calls; }

const nn_tensor_t *nn_plan_value(const nn_plan_t *p, int v)
{
    return &p->vals[v];
}

const nn_tensor_t *nn_plan_output(const nn_plan_t *p, int i)
{
    return &p->vals[p->out_ids[i]];
}

void nn_plan_bind(nn_plan_t *p, void *arena, void *scratch, nn_pool_t *pool)
{
    for (int v = 0; v < p->n_values; v++)
        if (p->cls[v] == VAL_ACT)
            p->vals[v].data = (char *)arena + p->offset[p->root[v]] + p->sub[v];
    for (int c = 0; c < p->n_calls; c++) {
        p->calls[c].scratch = scratch;
        p->calls[c].pool = pool;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const nn_node_t *nn_plan_call_node(const nn_plan_t *p, int c)
{
    return p->calls[c].node;
}

double nn_plan_call_flops(const nn_plan_t *p, int c)
{
    return p->calls[c].flops;
}

void nn_plan_run_timed(nn_plan_t *p, const void *const *inputs,
                       void *const *outputs, double *call_ms)
{
    for (int i = 0; i < p->n_in; i++)
        p->vals[p->in_ids[i]].data = (void *)inputs[i];
    for (int c = 0; c < p->n_calls; c++) {
        double t0 = call_ms ? now_ms() : 0;
        p->calls[c].node->def->exec(&p->calls[c]);
        if (call_ms)
            call_ms[c] += now_ms() - t0;
    }
    for (int i = 0; i < p->n_out; i++) {
        const nn_tensor_t *t = &p->vals[p->out_ids[i]];
        memcpy(outputs[i], t->data, nn_tensor_bytes(t));
    }
}

void nn_plan_run(nn_plan_t *p, const void *const *inputs, void *const *outputs)
{
    nn_plan_run_timed(p, inputs, outputs, NULL);
}
