/* The public engine API: models, contexts and runs.
 *
 * DESIGN: loading parses and optimises the graph, then compiles a probe
 * plan at batch 1 to validate every shape and to size the model. A context
 * compiles plans lazily, one per batch size it is asked to run, all bound
 * to one arena and one scratch buffer that grow to the largest plan. The
 * model is never written after load; contexts only read it. */
#include "model.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "onnx_load.h"
#include "optimize.h"
#include "pool.h"
#include "util/file.h"

typedef struct op_count {
    nn_op_t op;
    int count;
} op_count_t;

struct nn_model {
    nn_graph_t g;
    nn_cpu_t cpu;
    nn_tensor_info_t *inputs, *outputs;
    int64_t *input_image_elems, *output_image_elems; /* at batch 1 */
    int batch_symbolic;
    op_count_t *op_counts;
    int n_op_counts;
    nn_model_stats_t stats;
};

/* A batch runs in passes of as many images as keep a pass's peak
 * activations within this many bytes (at least one image a pass), when
 * every graph input is batched: a context's arena then stays about that
 * size whatever max_batch is, and each layer's output is still in cache
 * when the next layer reads it. bench/README.md ("Engine design notes")
 * has the measurements behind the value. */
#define NN_PASS_BYTES ((size_t)8 << 20)

/* Convolutions give each thread whole images where a pass holds a
 * multiple of the threads' count (conv.c, by_image): a pass takes one
 * image a thread where their activations fit in this many bytes, and a
 * pass of more is cut to a multiple of the threads. DenseNet-121 (8 MiB an
 * image) at batch 8 on 2 threads: 38 -> 43 img/s. */
#define NN_PASS_SPLIT_BYTES ((size_t)20 << 20)

/* When a pass holds fewer images than this, the batch runs in two stages
 * instead: the graph's head (large maps) in passes as above, writing the
 * values the rest reads into a buffer of a few images, then the tail, from
 * the first node after which the activations of this many images fit in
 * NN_PASS_BYTES, once for all of them. There a layer's weights serve every
 * image of the stage while they are in cache, and its small maps make
 * products wide enough for whole vectors. bench/README.md has the
 * measurements. */
#define NN_TAIL_MIN_IMAGES 4
/* ... when the tail's weights do not stay in cache from one image to the
 * next anyway (SqueezeNet's 3 MiB: no gain, 6 MiB more memory touched). */
#define NN_TAIL_MIN_WEIGHT_BYTES ((size_t)8 << 20)

/* Per graph node: wall time and operations summed over the plans that ran
 * it (a batch runs several), and how many calls. */
typedef struct nn_profile {
    double *ms, *flops, *call_ms;
    int *calls;
} nn_profile_t;

/* The two stages of a batch (tail_node < 0: none). */
typedef struct nn_stages {
    int tail_node;        /* graph node the tail starts at */
    int tail_max;         /* images per tail pass */
    int n_cut;            /* values the tail reads from before it */
    int *cut_ids;
    int *cut_input;       /* per cut value: graph input index, or -1 */
    size_t *cut_bytes;    /* per cut value: bytes per image */
    void **cut_buf;       /* per cut value the head computes: tail_max images */
    int n_head_out;
    int *head_out_ids;    /* those values, in cut order */
    nn_plan_t **heads;    /* [pass_max + 1], built on first use */
    nn_plan_t **tails;    /* [tail_max + 1] */
} nn_stages_t;

struct nn_context {
    const nn_model_t *model;
    int max_batch;
    int pass_max; /* images per pass (see NN_PASS_BYTES) */
    nn_pool_t *pool;
    nn_plan_t **plans; /* [max_batch + 1], built on first use */
    nn_stages_t st;
    void *arena, *scratch;
    size_t arena_bytes, scratch_bytes;
    nn_profile_t *prof; /* while nn_context_profile runs, else NULL */
};

typedef struct nn_each_job {
    void (*fn)(void *arg, int i);
    void *arg;
} nn_each_job_t;

static void nn_each_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_each_job_t *j = arg;
    for (int64_t i = begin; i < end; i++)
        j->fn(j->arg, (int)i);
}

void nn_context_for_each(nn_context_t *ctx, int n, void (*fn)(void *arg, int i),
                         void *arg)
{
    nn_each_job_t j = {fn, arg};
    nn_pool_for(ctx->pool, n, nn_each_chunk, &j);
}

int nn_read_file(const char *path, void **data, size_t *size, nn_error_t *err)
{
    int rc = util_read_file(path, data, size);
    if (rc == -ENOMEM)
        return nn_fail(err, NN_ENOMEM, "out of memory reading '%s'", path);
    if (rc)
        return nn_fail(err, NN_EIO, "cannot read '%s': %s", path,
                       strerror(-rc));
    return 0;
}

static int count_ops(nn_model_t *m)
{
    m->op_counts = calloc((size_t)m->g.n_nodes + 1, sizeof *m->op_counts);
    if (!m->op_counts)
        return -NN_ENOMEM;
    for (int i = 0; i < m->g.n_nodes; i++) {
        nn_op_t op = m->g.nodes[i].op;
        int k = 0;
        while (k < m->n_op_counts && m->op_counts[k].op != op)
            k++;
        if (k == m->n_op_counts)
            m->op_counts[m->n_op_counts++] = (op_count_t){op, 0};
        m->op_counts[k].count++;
    }
    return 0;
}

/* Turns named graph inputs into constants (data copied). */
static int bind_consts(nn_graph_t *g, const nn_load_options_t *opt,
                       nn_error_t *err)
{
    for (int c = 0; c < opt->n_consts; c++) {
        int v = nn_graph_find_value(g, opt->const_names[c]);
        int pos = -1;
        for (int i = 0; i < g->n_inputs && v >= 0; i++)
            if (g->inputs[i] == v)
                pos = i;
        if (pos < 0)
            return nn_fail(err, NN_EINVAL, "'%s' is not a graph input",
                           opt->const_names[c]);
        const nn_tensor_t *t = &opt->consts[c];
        size_t bytes = nn_tensor_bytes(t);
        void *copy = malloc(bytes ? bytes : 1);
        if (!copy)
            return nn_fail(err, NN_ENOMEM, "out of memory");
        memcpy(copy, t->data, bytes);
        nn_value_t *val = &g->values[v];
        nn_tensor_set_shape(&val->t, t->dtype, t->rank, t->dims);
        val->t.data = copy;
        val->is_const = 1;
        val->is_input = 0;
        memmove(&g->inputs[pos], &g->inputs[pos + 1],
                sizeof(int) * (size_t)(g->n_inputs - pos - 1));
        g->n_inputs--;
    }
    return 0;
}

/* Declared input shapes with the batch axis at `batch`. */
static int input_shapes(const nn_model_t *m, int batch, int lenient,
                        nn_tensor_t *shapes, nn_error_t *err)
{
    for (int i = 0; i < m->g.n_inputs; i++) {
        const nn_value_t *v = &m->g.values[m->g.inputs[i]];
        shapes[i] = v->t;
        shapes[i].data = NULL;
        if (v->t.dtype != NN_DTYPE_FLOAT && !lenient)
            return nn_fail(err, NN_EUNSUPPORTED,
                           "input '%s': only float32 inputs are supported",
                           v->name);
        for (int d = 0; d < v->t.rank; d++) {
            if (v->t.dims[d] >= 0)
                continue;
            if (d != 0 && !lenient)
                return nn_fail(err, NN_EUNSUPPORTED,
                               "input '%s': dimension %d is symbolic; only "
                               "the leading batch dimension may be",
                               v->name, d);
            shapes[i].dims[d] = d == 0 ? batch : 1;
        }
    }
    return 0;
}

static int build_probe(nn_model_t *m, const nn_load_options_t *opt,
                       nn_plan_t **probe, nn_error_t *err)
{
    int n_in = m->g.n_inputs;
    nn_tensor_t shapes[n_in > 0 ? n_in : 1];
    if (opt && opt->input_shapes) {
        for (int i = 0; i < n_in; i++)
            shapes[i] = opt->input_shapes[i];
    } else {
        int rc = input_shapes(m, 1, opt && opt->lenient, shapes, err);
        if (rc)
            return rc;
    }
    return nn_plan_create(probe, &m->g, shapes, err);
}

static int describe(nn_model_t *m, const nn_plan_t *probe)
{
    const nn_graph_t *g = &m->g;
    m->inputs = calloc((size_t)g->n_inputs + 1, sizeof *m->inputs);
    m->outputs = calloc((size_t)g->n_outputs + 1, sizeof *m->outputs);
    m->input_image_elems = calloc((size_t)g->n_inputs + 1, sizeof(int64_t));
    m->output_image_elems = calloc((size_t)g->n_outputs + 1, sizeof(int64_t));
    if (!m->inputs || !m->outputs || !m->input_image_elems ||
        !m->output_image_elems)
        return -NN_ENOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        const nn_value_t *v = &g->values[g->inputs[i]];
        const nn_tensor_t *t = nn_plan_value(probe, g->inputs[i]);
        m->inputs[i] = (nn_tensor_info_t){.name = v->name, .dtype = t->dtype,
                                          .rank = t->rank};
        for (int d = 0; d < t->rank; d++)
            m->inputs[i].dims[d] = v->t.dims[d];
        if (v->t.rank > 0 && v->t.dims[0] < 0)
            m->batch_symbolic = 1;
        m->input_image_elems[i] = nn_tensor_elems(t);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const nn_value_t *v = &g->values[g->outputs[i]];
        const nn_tensor_t *t = nn_plan_output(probe, i);
        m->outputs[i] = (nn_tensor_info_t){.name = v->name, .dtype = t->dtype,
                                           .rank = t->rank};
        for (int d = 0; d < t->rank; d++)
            m->outputs[i].dims[d] = t->dims[d];
        if (m->batch_symbolic && t->rank > 0 && t->dims[0] == 1)
            m->outputs[i].dims[0] = -1;
        m->output_image_elems[i] = nn_tensor_elems(t);
    }
    return 0;
}

/* Bytes of the constants that the live nodes from node `from` on read,
 * each counted once. */
static size_t weight_bytes(const nn_graph_t *g, int from)
{
    size_t total = 0;
    char *seen = calloc((size_t)g->n_values + 1, 1);
    if (!seen)
        return 0;
    for (int i = from; i < g->n_nodes; i++) {
        const nn_node_t *n = &g->nodes[i];
        for (int k = 0; !n->dead && k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v >= 0 && g->values[v].is_const && g->values[v].t.data && !seen[v]) {
                seen[v] = 1;
                total += nn_tensor_bytes(&g->values[v].t);
            }
        }
    }
    free(seen);
    return total;
}

static void compute_stats(nn_model_t *m, const nn_plan_t *probe)
{
    const nn_graph_t *g = &m->g;
    nn_model_stats_t *s = &m->stats;
    s->activation_bytes = nn_plan_arena_bytes(probe);
    s->scratch_bytes = nn_plan_scratch_bytes(probe);
    s->flops = nn_plan_flops(probe);
    s->node_count = nn_plan_call_count(probe);
    s->opset = g->opset;
    /* Weights: constants read by live nodes, each counted once. */
    s->weight_bytes = weight_bytes(g, 0);
}

int nn_model_load_ex(nn_model_t **out, const void *data, size_t size,
                     const char *base_dir, const nn_load_options_t *opt,
                     nn_error_t *err)
{
    *out = NULL;
    nn_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return nn_fail(err, NN_ENOMEM, "out of memory loading the model");
    nn_plan_t *probe = NULL;
    int rc = nn_cpu_detect(&m->cpu, err);
    if (rc == 0)
        rc = nn_onnx_load(&m->g, data, size, base_dir, err);
    m->g.isa = m->cpu.isa;
    if (rc == 0 && (rc = count_ops(m)))
        nn_fail(err, NN_ENOMEM, "out of memory loading the model");
    if (rc == 0 && opt && opt->n_consts)
        rc = bind_consts(&m->g, opt, err);
    if (rc == 0)
        rc = nn_optimize(&m->g, err);
    if (rc == 0)
        rc = build_probe(m, opt, &probe, err);
    if (rc == 0) {
        /* Passes that need shapes, then a second compile if they acted. */
        const nn_tensor_t **shapes =
            calloc((size_t)m->g.n_values + 1, sizeof *shapes);
        if (!shapes) {
            rc = nn_fail(err, NN_ENOMEM, "out of memory loading the model");
        } else {
            for (int v = 0; v < m->g.n_values; v++)
                shapes[v] = nn_plan_value(probe, v);
            rc = nn_optimize_with_shapes(&m->g, shapes, err);
            free(shapes);
            if (rc > 0) {
                nn_plan_free(probe);
                probe = NULL;
                rc = build_probe(m, opt, &probe, err);
            }
        }
    }
    if (rc == 0 && (rc = describe(m, probe)))
        nn_fail(err, NN_ENOMEM, "out of memory loading the model");
    /* The run API moves floats; an int64 output would be read short. */
    for (int i = 0; rc == 0 && !(opt && opt->lenient) && i < m->g.n_outputs; i++)
        if (m->outputs[i].dtype != NN_DTYPE_FLOAT)
            rc = nn_fail(err, NN_EUNSUPPORTED,
                         "output '%s' is int64; only float32 outputs are supported",
                         m->outputs[i].name);
    if (rc == 0)
        compute_stats(m, probe);
    nn_plan_free(probe);
    if (rc) {
        nn_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}


int nn_model_load_buffer(nn_model_t **out, const void *data, size_t size,
                         const char *base_dir, nn_error_t *err)
{
    return nn_model_load_ex(out, data, size, base_dir, NULL, err);
}

int nn_model_load(nn_model_t **out, const char *path, nn_error_t *err)
{
    *out = NULL;
    void *data;
    size_t size;
    int rc = nn_read_file(path, &data, &size, err);
    if (rc)
        return rc;
    char *dir = strdup(path);
    if (!dir) {
        free(data);
        return nn_fail(err, NN_ENOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    else
        strcpy(dir, ".");
    rc = nn_model_load_ex(out, data, size, dir, NULL, err);
    free(dir);
    free(data);
    return rc;
}

void nn_model_free(nn_model_t *m)
{
    if (!m)
        return;
    nn_graph_free(&m->g);
    free(m->inputs);
    free(m->outputs);
    free(m->input_image_elems);
    free(m->output_image_elems);
    free(m->op_counts);
    free(m);
}

const nn_graph_t *nn_model_graph(const nn_model_t *m) { return &m->g; }
int nn_model_input_count(const nn_model_t *m) { return m->g.n_inputs; }
int nn_model_output_count(const nn_model_t *m) { return m->g.n_outputs; }

const nn_tensor_info_t *nn_model_input(const nn_model_t *m, int i)
{
    return i >= 0 && i < m->g.n_inputs ? &m->inputs[i] : NULL;
}

const nn_tensor_info_t *nn_model_output(const nn_model_t *m, int i)
{
    return i >= 0 && i < m->g.n_outputs ? &m->outputs[i] : NULL;
}

/* Ops that only move or relabel values: the output's meaning comes from
 * the op before them. */
static int nn_is_layout_op(nn_op_t op)
{
    switch (op) {
    case NN_OP_RESHAPE:
    case NN_OP_FLATTEN:
    case NN_OP_SQUEEZE:
    case NN_OP_UNSQUEEZE:
    case NN_OP_IDENTITY:
    case NN_OP_DROPOUT:
        return 1;
    default:
        return 0;
    }
}

const char *nn_model_isa(const nn_model_t *m)
{
    return nn_isa_name(m->g.isa);
}

nn_isa_t nn_model_isa_level(const nn_model_t *m)
{
    return m->g.isa;
}

int nn_cpu_info(nn_cpu_info_t *info, nn_error_t *err)
{
    nn_cpu_t c;
    int rc = nn_cpu_detect(&c, err);
    *info = (nn_cpu_info_t){
        .avx2 = c.avx2,
        .fma = c.fma,
        .avx512f = c.avx512f,
        .avx512bw = c.avx512bw,
        .avx512vl = c.avx512vl,
        .avx512dq = c.avx512dq,
        .avx512_vnni = c.avx512_vnni,
        .avx512_bf16 = c.avx512_bf16,
        .best = nn_isa_name(c.best),
        .isa = nn_isa_name(c.isa),
        .forced = c.forced,
        .kernels = nn_isa_kernels(c.isa),
    };
    return rc;
}

const char *nn_model_output_op(const nn_model_t *m, int i)
{
    if (i < 0 || i >= m->g.n_outputs)
        return NULL;
    int value = m->g.outputs[i];
    const char *op = NULL;
    for (int k = m->g.n_nodes - 1; k >= 0; k--) {
        const nn_node_t *n = &m->g.nodes[k];
        if (n->dead || n->n_outputs < 1 || n->outputs[0] != value)
            continue;
        op = n->op_type;
        if (!nn_is_layout_op(n->op) || n->n_inputs < 1)
            break;
        value = n->inputs[0]; /* look through it */
    }
    return op;
}

size_t nn_model_input_elems(const nn_model_t *m, int i, int batch)
{
    return (size_t)m->input_image_elems[i] * (size_t)batch;
}

size_t nn_model_output_elems(const nn_model_t *m, int i, int batch)
{
    return (size_t)m->output_image_elems[i] * (size_t)batch;
}

void nn_model_stats(const nn_model_t *m, nn_model_stats_t *stats)
{
    *stats = m->stats;
}

void nn_model_op_counts(const nn_model_t *m,
                        void (*fn)(const char *op, int count, void *arg),
                        void *arg)
{
    for (int k = 0; k < m->n_op_counts; k++)
        fn(nn_op_def(m->op_counts[k].op)->name, m->op_counts[k].count, arg);
}

/* ---- contexts ---------------------------------------------------------- */

/* Images a pass holds, for act bytes of activations an image. */
static int pass_images(size_t act, int threads, int max_batch)
{
    if (!act)
        return max_batch;
    size_t n = NN_PASS_BYTES / act;
    if (n < (size_t)threads && threads > 1 && act <= NN_PASS_SPLIT_BYTES / (size_t)threads)
        n = (size_t)threads;
    else if (threads > 1 && n > (size_t)threads)
        n -= n % (size_t)threads;
    if (n < 1)
        n = 1;
    return n < (size_t)max_batch ? (int)n : max_batch;
}

/* Rounded up to 64 bytes, never 0: a plan of empty tensors still gets a
 * valid arena pointer. */
static size_t round64(size_t n) { return n ? (n + 63) / 64 * 64 : 64; }

/* Replaces *buf by a 64-byte aligned buffer of need bytes if it holds
 * fewer. Returns 1 if it did, 0 if *buf was big enough, -1 (untouched)
 * when memory runs out. */
static int grow_aligned(void **buf, size_t *have, size_t need)
{
    if (need <= *have)
        return 0;
    void *fresh = aligned_alloc(64, need);
    if (!fresh)
        return -1;
    free(*buf);
    *buf = fresh;
    *have = need;
    return 1;
}

/* Grows arena/scratch to fit plan. Every plan is rebound when either
 * moved, even if the other could not grow, so none keeps a freed pointer. */
static int fit_plan(nn_context_t *c, nn_plan_t *plan, nn_error_t *err)
{
    size_t need_a = round64(nn_plan_arena_bytes(plan));
    size_t need_s = round64(nn_plan_scratch_bytes(plan));
    int rc = 0;
    int moved_a = grow_aligned(&c->arena, &c->arena_bytes, need_a);
    int moved_s =
        moved_a < 0 ? 0 : grow_aligned(&c->scratch, &c->scratch_bytes, need_s);
    if (moved_a < 0)
        rc = nn_fail(err, NN_ENOMEM, "out of memory for %zu activation bytes",
                     need_a);
    else if (moved_s < 0)
        rc = nn_fail(err, NN_ENOMEM, "out of memory for %zu scratch bytes",
                     need_s);
    if (moved_a > 0 || moved_s > 0) {
        for (int b = 0; b <= c->max_batch; b++)
            if (c->plans[b])
                nn_plan_bind(c->plans[b], c->arena, c->scratch, c->pool);
        for (int b = 0; c->st.heads && b <= c->pass_max; b++)
            if (c->st.heads[b])
                nn_plan_bind(c->st.heads[b], c->arena, c->scratch, c->pool);
        for (int b = 0; c->st.tails && b <= c->st.tail_max; b++)
            if (c->st.tails[b])
                nn_plan_bind(c->st.tails[b], c->arena, c->scratch, c->pool);
    }
    if (rc == 0)
        nn_plan_bind(plan, c->arena, c->scratch, c->pool);
    return rc;
}

static int get_plan(nn_context_t *c, int batch, nn_plan_t **out,
                    nn_error_t *err)
{
    if (c->plans[batch]) {
        *out = c->plans[batch];
        return 0;
    }
    const nn_model_t *m = c->model;
    int n_in = m->g.n_inputs;
    nn_tensor_t shapes[n_in > 0 ? n_in : 1];
    int rc = input_shapes(m, batch, 0, shapes, err);
    if (rc)
        return rc;
    nn_plan_t *plan;
    if ((rc = nn_plan_create(&plan, &m->g, shapes, err)))
        return rc;
    for (int i = 0; i < m->g.n_outputs; i++) {
        if (nn_tensor_elems(nn_plan_output(plan, i)) !=
            m->output_image_elems[i] * batch) {
            nn_plan_free(plan);
            return nn_fail(err, NN_EUNSUPPORTED,
                           "output '%s' does not scale with the batch size",
                           m->outputs[i].name);
        }
    }
    c->plans[batch] = plan;
    if ((rc = fit_plan(c, plan, err))) {
        c->plans[batch] = NULL;
        nn_plan_free(plan);
        return rc;
    }
    *out = plan;
    return 0;
}

/* Runs plan, timing each call by graph node while profiling. */
static void run_plan(nn_context_t *c, nn_plan_t *plan, const void *const *in,
                     void *const *out)
{
    nn_profile_t *pf = c->prof;
    if (!pf) {
        nn_plan_run(plan, in, out);
        return;
    }
    const int n = nn_plan_call_count(plan);
    memset(pf->call_ms, 0, sizeof *pf->call_ms * (size_t)n);
    nn_plan_run_timed(plan, in, out, pf->call_ms);
    for (int k = 0; k < n; k++) {
        size_t node = (size_t)(nn_plan_call_node(plan, k) - c->model->g.nodes);
        pf->ms[node] += pf->call_ms[k];
        pf->flops[node] += nn_plan_call_flops(plan, k);
        pf->calls[node]++;
    }
}

/* The head (tail = 0) or tail (tail = 1) of a batch of n images. Each of
 * its outputs must hold n images, image-major: a head's the cut values, a
 * tail's the graph's outputs. */
static int get_stage_plan(nn_context_t *c, int tail, int n, nn_plan_t **out,
                          nn_error_t *err)
{
    nn_stages_t *st = &c->st;
    nn_plan_t **slot = tail ? &st->tails[n] : &st->heads[n];
    if (*slot) {
        *out = *slot;
        return 0;
    }
    const nn_model_t *m = c->model;
    const nn_graph_t *g = &m->g;
    nn_plan_t *one;
    int rc = get_plan(c, 1, &one, err);
    if (rc)
        return rc;
    int n_in = tail ? st->n_cut : g->n_inputs;
    const int *in_ids = tail ? st->cut_ids : g->inputs;
    nn_tensor_t shapes[n_in > 0 ? n_in : 1];
    for (int i = 0; i < n_in; i++) {
        shapes[i] = *nn_plan_value(one, in_ids[i]);
        shapes[i].data = NULL;
        shapes[i].dims[0] = n;
    }
    nn_plan_t *plan;
    rc = tail ? nn_plan_create_part(&plan, g, st->tail_node, g->n_nodes, n_in, in_ids,
                                    shapes, g->n_outputs, g->outputs, err)
              : nn_plan_create_part(&plan, g, 0, st->tail_node, n_in, in_ids, shapes,
                                    st->n_head_out, st->head_out_ids, err);
    if (rc)
        return rc;
    int n_out = tail ? g->n_outputs : st->n_head_out;
    for (int i = 0; i < n_out; i++) {
        const nn_tensor_t *t = nn_plan_output(plan, i);
        const nn_tensor_t *t1 = tail ? nn_plan_output(one, i) /* for one image */
                                     : nn_plan_value(one, st->head_out_ids[i]);
        if (t->rank < 1 || t->dims[0] != n ||
            nn_tensor_bytes(t) != nn_tensor_bytes(t1) * (size_t)n) {
            nn_plan_free(plan);
            return nn_fail(err, NN_EUNSUPPORTED, "a stage's output does not scale with the batch");
        }
    }
    *slot = plan;
    if ((rc = fit_plan(c, plan, err))) {
        *slot = NULL;
        nn_plan_free(plan);
        return rc;
    }
    *out = plan;
    return 0;
}

static void stages_free(nn_stages_t *st, int pass_max)
{
    for (int b = 0; st->heads && b <= pass_max; b++)
        nn_plan_free(st->heads[b]);
    for (int b = 0; st->tails && b <= st->tail_max; b++)
        nn_plan_free(st->tails[b]);
    for (int k = 0; st->cut_buf && k < st->n_cut; k++)
        free(st->cut_buf[k]);
    free(st->heads);
    free(st->tails);
    free(st->cut_buf);
    free(st->cut_ids);
    free(st->cut_input);
    free(st->cut_bytes);
    free(st->head_out_ids);
    *st = (nn_stages_t){.tail_node = -1};
}

/* Sets up two-stage batches where they apply (see NN_TAIL_MIN_IMAGES).
 * Only running out of memory is an error; a graph that cannot be cut runs
 * in passes. */
static int stages_setup(nn_context_t *c, nn_error_t *err)
{
    nn_stages_t *st = &c->st;
    const nn_graph_t *g = &c->model->g;
    if (c->pass_max >= NN_TAIL_MIN_IMAGES || c->max_batch <= c->pass_max)
        return 0;
    nn_plan_t *one;
    int rc = get_plan(c, 1, &one, err);
    if (rc)
        return rc;
    st->cut_ids = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    if (!st->cut_ids)
        return nn_fail(err, NN_ENOMEM, "out of memory");
    size_t tail_bytes = 0;
    st->tail_node = nn_plan_tail(one, NN_PASS_BYTES / NN_TAIL_MIN_IMAGES, &tail_bytes,
                                 st->cut_ids, &st->n_cut);
    size_t fit = tail_bytes ? NN_PASS_BYTES / tail_bytes : 0;
    st->tail_max = fit < (size_t)c->max_batch ? (int)fit : c->max_batch;
    /* A multiple of the threads, as passes (NN_PASS_SPLIT_BYTES). */
    const int threads = nn_pool_threads(c->pool);
    if (threads > 1 && st->tail_max > threads)
        st->tail_max -= st->tail_max % threads;
    if (st->tail_node < 0 || st->tail_max <= c->pass_max ||
        weight_bytes(g, st->tail_node) < NN_TAIL_MIN_WEIGHT_BYTES) {
        stages_free(st, c->pass_max);
        return 0;
    }
    size_t n = (size_t)st->n_cut + 1;
    st->cut_input = malloc(sizeof(int) * n);
    st->cut_bytes = calloc(n, sizeof *st->cut_bytes);
    st->cut_buf = calloc(n, sizeof *st->cut_buf);
    st->head_out_ids = malloc(sizeof(int) * n);
    st->heads = calloc((size_t)c->pass_max + 1, sizeof *st->heads);
    st->tails = calloc((size_t)st->tail_max + 1, sizeof *st->tails);
    int ok = st->cut_input && st->cut_bytes && st->cut_buf && st->head_out_ids &&
             st->heads && st->tails;
    for (int k = 0; ok && k < st->n_cut; k++) {
        int v = st->cut_ids[k];
        const nn_tensor_t *t = nn_plan_value(one, v);
        st->cut_bytes[k] = nn_tensor_bytes(t);
        st->cut_input[k] = -1;
        for (int i = 0; i < g->n_inputs; i++)
            if (g->inputs[i] == v)
                st->cut_input[k] = i;
        if (t->rank < 1 || t->dims[0] != 1) {
            stages_free(st, c->pass_max); /* not image-major: no stages */
            return 0;
        }
        if (st->cut_input[k] >= 0)
            continue;
        st->head_out_ids[st->n_head_out++] = v;
        st->cut_buf[k] = aligned_alloc(64, round64(st->cut_bytes[k] * (size_t)st->tail_max));
        ok = st->cut_buf[k] != NULL;
    }
    nn_plan_t *plan;
    if (ok && (rc = get_stage_plan(c, 1, st->tail_max, &plan, err)) == 0)
        rc = get_stage_plan(c, 0, c->pass_max, &plan, err);
    if (!ok || rc) {
        stages_free(st, c->pass_max);
        if (!ok || rc == -NN_ENOMEM)
            return nn_fail(err, NN_ENOMEM, "out of memory");
    }
    return 0;
}

/* Images [first, first + count) of the batch in passes of up to pass_max:
 * the whole graph (head = 0) or the head of the stages (head = 1), output
 * o of image i written at out[o] + i * out_bytes[o] (i counted from
 * first). */
static int run_passes(nn_context_t *c, int head, int first, int count,
                      const float *const *inputs, int n_out, void *const *out,
                      const size_t *out_bytes, nn_error_t *err)
{
    const nn_model_t *m = c->model;
    const void *in[m->g.n_inputs > 0 ? m->g.n_inputs : 1];
    void *at[n_out > 0 ? n_out : 1];
    for (int done = 0; done < count;) {
        int n = count - done < c->pass_max ? count - done : c->pass_max;
        nn_plan_t *plan;
        int rc = head ? get_stage_plan(c, 0, n, &plan, err) : get_plan(c, n, &plan, err);
        if (rc)
            return rc;
        for (int i = 0; i < m->g.n_inputs; i++)
            in[i] = inputs[i] + (size_t)(first + done) * (size_t)m->input_image_elems[i];
        for (int o = 0; o < n_out; o++)
            at[o] = (char *)out[o] + (size_t)done * out_bytes[o];
        run_plan(c, plan, in, at);
        done += n;
    }
    return 0;
}

/* A batch in two stages: per group of up to tail_max images, the head in
 * passes into the cut buffers, then the tail once. */
static int run_stages(nn_context_t *c, int batch, const float *const *inputs,
                      float *const *outputs, nn_error_t *err)
{
    const nn_model_t *m = c->model;
    const nn_stages_t *st = &c->st;
    const void *cut[st->n_cut > 0 ? st->n_cut : 1];
    void *hout[st->n_head_out > 0 ? st->n_head_out : 1];
    size_t hbytes[st->n_head_out > 0 ? st->n_head_out : 1];
    void *out[m->g.n_outputs > 0 ? m->g.n_outputs : 1];
    for (int k = 0, o = 0; k < st->n_cut; k++)
        if (st->cut_input[k] < 0) {
            hout[o] = st->cut_buf[k];
            hbytes[o++] = st->cut_bytes[k];
        }
    for (int done = 0; done < batch;) {
        const int group = batch - done < st->tail_max ? batch - done : st->tail_max;
        int rc = run_passes(c, 1, done, group, inputs, st->n_head_out, hout, hbytes, err);
        nn_plan_t *plan;
        if (rc || (rc = get_stage_plan(c, 1, group, &plan, err)))
            return rc;
        for (int k = 0; k < st->n_cut; k++) {
            int i = st->cut_input[k];
            cut[k] = i >= 0 ? (const void *)(inputs[i] +
                                             (size_t)done * (size_t)m->input_image_elems[i])
                            : st->cut_buf[k];
        }
        for (int i = 0; i < m->g.n_outputs; i++)
            out[i] = outputs[i] + (size_t)done * (size_t)m->output_image_elems[i];
        run_plan(c, plan, cut, out);
        done += group;
    }
    return 0;
}

/* Whether every input has the symbolic batch axis first, so that a batch
 * splits into passes (an input of fixed shape is shared by the batch). */
static int every_input_batched(const nn_model_t *m)
{
    for (int i = 0; i < m->g.n_inputs; i++) {
        const nn_tensor_t *t = &m->g.values[m->g.inputs[i]].t;
        if (t->rank < 1 || t->dims[0] >= 0)
            return 0;
    }
    return 1;
}

int nn_context_create(nn_context_t **out, const nn_model_t *model,
                      int max_batch, int threads, nn_error_t *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 4096)
        return nn_fail(err, NN_EINVAL, "max_batch must be 1..4096, got %d",
                       max_batch);
    if (threads < 1 || threads > 256)
        return nn_fail(err, NN_EINVAL, "threads must be 1..256, got %d",
                       threads);
    if (!model->batch_symbolic && max_batch != 1) {
        const nn_tensor_info_t *in = &model->inputs[0];
        if (model->g.n_inputs == 0 || in->rank == 0 || in->dims[0] != 1)
            return nn_fail(err, NN_EINVAL,
                           "the model has a fixed batch size; max_batch must be 1");
    }
    /* Our pool threads call OpenBLAS; its own threads would oversubscribe.
     * This is process-wide and idempotent. */
    openblas_set_num_threads(1);
    nn_context_t *c = calloc(1, sizeof *c);
    if (!c)
        return nn_fail(err, NN_ENOMEM, "out of memory");
    c->model = model;
    c->max_batch = max_batch;
    c->plans = calloc((size_t)max_batch + 1, sizeof *c->plans);
    if (!c->plans) {
        free(c);
        return nn_fail(err, NN_ENOMEM, "out of memory");
    }
    int rc = nn_pool_create(&c->pool, threads);
    if (rc) {
        nn_context_free(c);
        return nn_fail(err, NN_ENOMEM, "cannot start %d threads", threads);
    }
    size_t act = model->stats.activation_bytes;
    c->pass_max = every_input_batched(model) ? pass_images(act, threads, max_batch)
                                             : max_batch;
    c->st.tail_node = -1;
    nn_plan_t *plan;
    if ((rc = get_plan(c, c->pass_max, &plan, err)) || (rc = stages_setup(c, err))) {
        nn_context_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void nn_context_free(nn_context_t *c)
{
    if (!c)
        return;
    for (int b = 0; b <= c->max_batch; b++)
        nn_plan_free(c->plans[b]);
    free(c->plans);
    stages_free(&c->st, c->pass_max);
    nn_pool_free(c->pool);
    free(c->arena);
    free(c->scratch);
    free(c);
}

void nn_context_passes(const nn_context_t *c, int *pass_images, int *tail_node,
                       int *tail_images)
{
    *pass_images = c->pass_max;
    *tail_node = c->st.tail_node;
    *tail_images = c->st.tail_node >= 0 ? c->st.tail_max : 0;
}

int nn_context_run(nn_context_t *c, int batch, const float *const *inputs,
                   float *const *outputs, nn_error_t *err)
{
    if (batch < 1 || batch > c->max_batch)
        return nn_fail(err, NN_EINVAL, "batch %d is outside 1..%d", batch,
                       c->max_batch);
    const nn_model_t *m = c->model;
    if (c->st.tail_node >= 0 && batch > c->pass_max)
        return run_stages(c, batch, inputs, outputs, err);
    const int n_out = m->g.n_outputs;
    size_t bytes[n_out > 0 ? n_out : 1];
    for (int i = 0; i < n_out; i++)
        bytes[i] = (size_t)m->output_image_elems[i] * sizeof(float);
    return run_passes(c, 0, 0, batch, inputs, n_out, (void *const *)outputs, bytes, err);
}

/* ---- profiling ----------------------------------------------------------- */

typedef struct prof_row {
    char label[64];
    double ms;
    double flops; /* per run */
    int count;
} prof_row_t;

static int cmp_prof(const void *a, const void *b)
{
    const prof_row_t *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

static void call_label(const nn_graph_t *g, const nn_node_t *n, char *buf, size_t size)
{
    static const char *const acts[] = {"", "+Relu", "+Clip", "+Sigmoid",
                                       "+SiLU", "+HardSwish", "+LeakyRelu", "+Gelu"};
    int a = (int)n->fusion.act;
    char kind[32] = "";
    if (n->op == NN_OP_CONV && n->n_inputs > 1) {
        const nn_tensor_t *w = &g->values[n->inputs[1]].t;
        int64_t group = nn_attr_int(n, "group", 1);
        const int wino = n->n_inputs > 4 && n->inputs[4] >= 0;
        if (w->rank == 4)
            snprintf(kind, sizeof kind, "(%lldx%lld%s)", (long long)w->dims[2],
                     (long long)w->dims[3],
                     group > 1 && w->dims[1] == 1 ? " dw"
                     : group > 1                  ? " grp"
                     : wino                       ? " wino"
                                                  : "");
    } else if ((n->op == NN_OP_NCHWC_CONV || n->op == NN_OP_NCHWC_DEPTHWISE) && n->n_inputs > 1) {
        const nn_tensor_t *w = &g->values[n->inputs[1]].t; /* its shape, kept */
        if (w->rank == 4)
            snprintf(kind, sizeof kind, "(%lldx%lld)", (long long)w->dims[2],
                     (long long)w->dims[3]);
    }
    snprintf(buf, size, "%s%s%s%s", n->op_type, kind,
             n->fusion.residual >= 0 ? "+Add" : "",
             a >= 0 && a < (int)(sizeof acts / sizeof acts[0]) ? acts[a] : "+?");
}

int nn_context_profile(nn_context_t *c, int batch, const float *const *inputs,
                       float *const *outputs, int runs, int by_node, FILE *f,
                       nn_error_t *err)
{
    if (batch < 1 || batch > c->max_batch || runs < 1)
        return nn_fail(err, NN_EINVAL, "bad batch or run count");
    const nn_graph_t *g = &c->model->g;
    const size_t nn = (size_t)g->n_nodes + 1;
    nn_profile_t pf = {calloc(nn, sizeof(double)), calloc(nn, sizeof(double)),
                       calloc(nn, sizeof(double)), calloc(nn, sizeof(int))};
    prof_row_t *rows = calloc(nn, sizeof *rows);
    int rc = 0;
    if (!pf.ms || !pf.flops || !pf.call_ms || !pf.calls || !rows)
        rc = nn_fail(err, NN_ENOMEM, "out of memory");
    /* The passes or stages a run takes, each call timed. */
    c->prof = &pf;
    for (int r = 0; rc == 0 && r < runs; r++)
        rc = nn_context_run(c, batch, inputs, outputs, err);
    c->prof = NULL;
    int n_rows = 0, n_calls = 0;
    double total = 0;
    for (int k = 0; rc == 0 && k < g->n_nodes; k++) {
        if (!pf.calls[k])
            continue;
        char label[64];
        call_label(g, &g->nodes[k], label, sizeof label);
        int i = 0;
        while (i < n_rows && strcmp(rows[i].label, label) != 0)
            i++;
        if (i == n_rows)
            snprintf(rows[n_rows++].label, sizeof rows[0].label, "%s", label);
        rows[i].ms += pf.ms[k] / runs;
        rows[i].flops += pf.flops[k] / runs;
        rows[i].count++;
        total += pf.ms[k] / runs;
        n_calls++;
    }
    qsort(rows, (size_t)n_rows, sizeof *rows, cmp_prof);
    /* GFLOP/s from the nominal operations (a Winograd convolution does
     * fewer multiplications than it is credited with). */
    fprintf(f, "%-32s %6s %10s %6s %8s\n", "operator", "calls", "ms/run", "%", "GFLOP/s");
    for (int i = 0; i < n_rows; i++)
        fprintf(f, "%-32s %6d %10.3f %6.1f %8.1f\n", rows[i].label, rows[i].count,
                rows[i].ms, total > 0 ? 100 * rows[i].ms / total : 0,
                rows[i].ms > 0 ? rows[i].flops / rows[i].ms / 1e6 : 0);
    if (rc == 0)
        fprintf(f, "%-32s %6d %10.3f\n", "total", n_calls, total);
    if (rc == 0 && by_node) {
        fprintf(f, "\n%5s %-32s %10s %8s  %s\n", "node", "operator", "ms/run", "GFLOP/s",
                "name");
        for (int k = 0; k < g->n_nodes; k++) {
            if (!pf.calls[k])
                continue;
            char label[64];
            call_label(g, &g->nodes[k], label, sizeof label);
            fprintf(f, "%5d %-32s %10.3f %8.1f  %s\n", k, label, pf.ms[k] / runs,
                    pf.ms[k] > 0 ? pf.flops[k] / pf.ms[k] / 1e6 : 0, g->nodes[k].name);
        }
    }
    free(pf.ms);
    free(pf.flops);
    free(pf.call_ms);
    free(pf.calls);
    free(rows);
    return rc;
}
