/* The model graph: attribute lookups, value table, topological sort.
 *
 * Name lookup uses an open-addressing hash table stored in the same block
 * as g->values, right after its cap_values entries (nn_graph_t has no field
 * for it and the header is shared). So g->values must only be grown through
 * nn_graph_add_value / nn_graph_add_const, and value names must not be
 * changed in place; nn_graph_free releases both with one free(). */
#include "graph.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---- attributes ---------------------------------------------------------- */

const nn_attr_t *nn_attr_find(const nn_node_t *node, const char *name)
{
    if (!node || !name)
        return NULL;
    for (int i = 0; i < node->n_attrs; i++)
        if (node->attrs[i].name && strcmp(node->attrs[i].name, name) == 0)
            return &node->attrs[i];
    return NULL;
}

int64_t nn_attr_int(const nn_node_t *node, const char *name, int64_t def)
{
    const nn_attr_t *a = nn_attr_find(node, name);
    if (!a)
        return def;
    if (a->type == NN_ATTR_INT)
        return a->i;
    if (a->type == NN_ATTR_FLOAT)
        return (int64_t)a->f;
    return def;
}

float nn_attr_float(const nn_node_t *node, const char *name, float def)
{
    const nn_attr_t *a = nn_attr_find(node, name);
    if (!a)
        return def;
    if (a->type == NN_ATTR_FLOAT)
        return a->f;
    if (a->type == NN_ATTR_INT)
        return (float)a->i;
    return def;
}

const char *nn_attr_string(const nn_node_t *node, const char *name,
                           const char *def)
{
    const nn_attr_t *a = nn_attr_find(node, name);
    return a && a->type == NN_ATTR_STRING && a->s ? a->s : def;
}

int nn_attr_ints(const nn_node_t *node, const char *name,
                 const int64_t **vals)
{
    const nn_attr_t *a = nn_attr_find(node, name);
    if (!a || a->type != NN_ATTR_INTS)
        return -1;
    if (vals)
        *vals = a->ints;
    return a->n;
}

int nn_attr_floats(const nn_node_t *node, const char *name,
                   const float **vals)
{
    const nn_attr_t *a = nn_attr_find(node, name);
    if (!a || a->type != NN_ATTR_FLOATS)
        return -1;
    if (vals)
        *vals = a->floats;
    return a->n;
}

/* ---- value table ----------------------------------------------------------- */

/* Hash table trailing the values array: nbuckets (a power of two, at least
 * twice cap_values) slots holding value id + 1, 0 for empty. */
typedef struct nn_vhash {
    size_t nbuckets;
} nn_vhash_t;

static nn_vhash_t *nn_vhash(const nn_graph_t *g)
{
    if (!g->values || g->cap_values <= 0)
        return NULL;
    return (nn_vhash_t *)(void *)(g->values + g->cap_values);
}

static int *nn_vhash_slots(nn_vhash_t *h)
{
    return (int *)(void *)(h + 1);
}

static size_t nn_hash_str(const char *s)
{
    /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29));
}

static void nn_vhash_insert(nn_vhash_t *h, const char *name, int id)
{
    int *slots = nn_vhash_slots(h);
    size_t mask = h->nbuckets - 1;
    for (size_t i = nn_hash_str(name) & mask;; i = (i + 1) & mask) {
        if (slots[i] == 0) {
            slots[i] = id + 1;
            return;
        }
    }
}

int nn_graph_find_value(const nn_graph_t *g, const char *name)
{
    if (!g || !name)
        return -1;
    nn_vhash_t *h = nn_vhash(g);
    if (!h)
        return -1;
    int *slots = nn_vhash_slots(h);
    size_t mask = h->nbuckets - 1;
    for (size_t i = nn_hash_str(name) & mask; slots[i]; i = (i + 1) & mask) {
        int id = slots[i] - 1;
        if (id < g->n_values && strcmp(g->values[id].name, name) == 0)
            return id;
    }
    return -1;
}

static int nn_graph_grow_values(nn_graph_t *g)
{
    if (g->n_values < g->cap_values)
        return 0;
    if (g->cap_values > INT_MAX / 4)
        return -NN_ENOMEM;
    int cap = g->cap_values ? g->cap_values * 2 : 64;
    size_t nbuckets = 1;
    while (nbuckets < (size_t)cap * 2)
        nbuckets *= 2;
    size_t bytes = (size_t)cap * sizeof(nn_value_t) + sizeof(nn_vhash_t) +
                   nbuckets * sizeof(int);
    nn_value_t *v = realloc(g->values, bytes);
    if (!v)
        return -NN_ENOMEM;
    g->values = v;
    g->cap_values = cap;
    /* The old table (if any) was at the old end of the block: rebuild. */
    nn_vhash_t *h = nn_vhash(g);
    h->nbuckets = nbuckets;
    memset(nn_vhash_slots(h), 0, nbuckets * sizeof(int));
    for (int i = 0; i < g->n_values; i++)
        nn_vhash_insert(h, g->values[i].name, i);
    return 0;
}

int nn_graph_add_value(nn_graph_t *g, const char *name)
{
    if (!g || !name)
        return -NN_EINVAL;
    if (nn_graph_find_value(g, name) >= 0)
        return -NN_EINVAL; /* names are unique */
    if (g->n_values == INT_MAX)
        return -NN_ENOMEM;
    int rc = nn_graph_grow_values(g);
    if (rc < 0)
        return rc;
    char *copy = strdup(name);
    if (!copy)
        return -NN_ENOMEM;
    int id = g->n_values++;
    nn_value_t *v = &g->values[id];
    memset(v, 0, sizeof *v);
    v->name = copy;
    nn_vhash_insert(nn_vhash(g), copy, id);
    return id;
}

int nn_graph_add_const(nn_graph_t *g, const char *name, nn_dtype_t dtype,
                       int rank, const int64_t *dims, void *data)
{
    if (!g || rank < 0 || rank > NN_MAX_RANK || (rank > 0 && !dims)) {
        free(data);
        return -NN_EINVAL;
    }
    int id = nn_graph_add_value(g, name);
    if (id < 0) {
        free(data);
        return id;
    }
    nn_value_t *v = &g->values[id];
    nn_tensor_set_shape(&v->t, dtype, rank, dims);
    v->t.data = data;
    v->is_const = 1;
    return id;
}

/* ---- freeing --------------------------------------------------------------- */

static void nn_attr_clear(nn_attr_t *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->tensor) {
        free(a->tensor->data);
        free(a->tensor);
    }
}

/* Frees what a node owns (def and op_type are not owned: they point into
 * the op table). */
static void nn_node_clear(nn_node_t *n)
{
    free(n->name);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs && n->attrs; i++)
        nn_attr_clear(&n->attrs[i]);
    free(n->attrs);
}

void nn_graph_free(nn_graph_t *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values && g->values; i++) {
        free(g->values[i].name);
        if (g->values[i].is_const)
            free(g->values[i].t.data);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes && g->nodes; i++)
        nn_node_clear(&g->nodes[i]);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->base_dir);
    memset(g, 0, sizeof *g);
}

/* ---- topological sort -------------------------------------------------------- */

/* Min-heap of node indices, so an already sorted graph keeps its order. */
static void nn_heap_push(int *heap, int *n, int x)
{
    int i = (*n)++;
    while (i > 0 && heap[(i - 1) / 2] > x) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = x;
}

static int nn_heap_pop(int *heap, int *n)
{
    int top = heap[0], x = heap[--(*n)], i = 0;
    if (*n == 0)
        return top;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap[c + 1] < heap[c])
            c++;
        if (heap[c] >= x)
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
    return top;
}

int nn_graph_sort(nn_graph_t *g, nn_error_t *err)
{
    int n = g->n_nodes, rc = 0;
    int nv = g->n_values;
    int *producer = malloc(((size_t)nv + 1) * sizeof(int));
    int *indeg = calloc((size_t)n + 1, sizeof(int));
    int *edge_start = calloc((size_t)n + 2, sizeof(int));
    int *heap = malloc(((size_t)n + 1) * sizeof(int));
    int *order = malloc(((size_t)n + 1) * sizeof(int));
    int *edges = NULL;
    nn_node_t *sorted = NULL;
    if (!producer || !indeg || !edge_start || !heap || !order) {
        rc = nn_fail(err, NN_ENOMEM, "out of memory sorting the graph");
        goto out;
    }
    for (int v = 0; v < nv; v++)
        producer[v] = -1;

    /* Producers, checking ids and single assignment. */
    for (int i = 0; i < n; i++) {
        const nn_node_t *nd = &g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] < -1 || nd->inputs[k] >= nv) {
                rc = nn_node_fail(err, nd, NN_EINVAL,
                                  "input %d has an invalid value id %d", k,
                                  nd->inputs[k]);
                goto out;
            }
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v == -1)
                continue;
            if (v < -1 || v >= nv) {
                rc = nn_node_fail(err, nd, NN_EINVAL,
                                  "output %d has an invalid value id %d", k, v);
                goto out;
            }
            if (g->values[v].is_const || g->values[v].is_input) {
                rc = nn_node_fail(err, nd, NN_EFORMAT,
                                  "output '%s' is also a %s", g->values[v].name,
                                  g->values[v].is_const ? "constant"
                                                        : "graph input");
                goto out;
            }
            if (producer[v] >= 0) {
                rc = nn_node_fail(err, nd, NN_EFORMAT,
                                  "output '%s' is already produced by node "
                                  "'%s'", g->values[v].name,
                                  g->nodes[producer[v]].name);
                goto out;
            }
            producer[v] = i;
        }
    }

    /* Dependency edges producer -> consumer, in CSR form (one per input). */
    int n_edges = 0;
    for (int i = 0; i < n; i++) {
        const nn_node_t *nd = &g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v < 0 || g->values[v].is_const || g->values[v].is_input)
                continue;
            if (producer[v] < 0) {
                rc = nn_node_fail(err, nd, NN_EFORMAT,
                                  "input '%s' is not produced by any node, nor "
                                  "a constant or a graph input",
                                  g->values[v].name);
                goto out;
            }
            edge_start[producer[v] + 1]++;
            indeg[i]++;
            n_edges++;
        }
    }
    for (int i = 0; i < n; i++)
        edge_start[i + 1] += edge_start[i];
    edges = malloc(((size_t)n_edges + 1) * sizeof(int));
    if (!edges) {
        rc = nn_fail(err, NN_ENOMEM, "out of memory sorting the graph");
        goto out;
    }
    {
        /* heap doubles as the fill cursor before it is used as a heap */
        for (int i = 0; i < n; i++)
            heap[i] = edge_start[i];
        for (int i = 0; i < n; i++) {
            const nn_node_t *nd = &g->nodes[i];
            if (nd->dead)
                continue;
            for (int k = 0; k < nd->n_inputs; k++) {
                int v = nd->inputs[k];
                if (v < 0 || g->values[v].is_const || g->values[v].is_input)
                    continue;
                edges[heap[producer[v]]++] = i;
            }
        }
    }

    int hn = 0, live = 0, done = 0;
    for (int i = 0; i < n; i++) {
        if (g->nodes[i].dead)
            continue;
        live++;
        if (indeg[i] == 0)
            nn_heap_push(heap, &hn, i);
    }
    while (hn > 0) {
        int i = nn_heap_pop(heap, &hn);
        order[done++] = i;
        for (int e = edge_start[i]; e < edge_start[i + 1]; e++)
            if (--indeg[edges[e]] == 0)
                nn_heap_push(heap, &hn, edges[e]);
    }
    if (done < live) {
        /* Every unsorted node has an unsorted predecessor: walking back n
         * steps from one lands on a cycle. */
        int cur = -1;
        for (int i = 0; i < n && cur < 0; i++)
            if (!g->nodes[i].dead && indeg[i] > 0)
                cur = i;
        for (int step = 0; step < n; step++) {
            const nn_node_t *nd = &g->nodes[cur];
            int next = -1;
            for (int k = 0; k < nd->n_inputs && next < 0; k++) {
                int v = nd->inputs[k];
                if (v >= 0 && producer[v] >= 0 && indeg[producer[v]] > 0)
                    next = producer[v];
            }
            if (next < 0)
                break;
            cur = next;
        }
        rc = nn_node_fail(err, &g->nodes[cur], NN_EFORMAT,
                          "the graph has a cycle through this node");
        goto out;
    }

    sorted = malloc(((size_t)live + 1) * sizeof(nn_node_t));
    if (!sorted) {
        rc = nn_fail(err, NN_ENOMEM, "out of memory sorting the graph");
        goto out;
    }
    for (int k = 0; k < live; k++)
        sorted[k] = g->nodes[order[k]];
    for (int i = 0; i < n; i++)
        if (g->nodes[i].dead)
            nn_node_clear(&g->nodes[i]);
    free(g->nodes);
    g->nodes = sorted;
    g->n_nodes = live;
    g->cap_nodes = live + 1;
    sorted = NULL;

out:
    free(producer);
    free(indeg);
    free(edge_start);
    free(heap);
    free(order);
    free(edges);
    free(sorted);
    return rc;
}

int nn_node_fail(nn_error_t *err, const nn_node_t *node, int code,
                 const char *fmt, ...)
{
    if (err) {
        int n = snprintf(err->msg, sizeof err->msg, "node '%s' (%s): ",
                         node && node->name ? node->name : "?",
                         node && node->op_type ? node->op_type : "?");
        if (n < 0)
            n = 0;
        if ((size_t)n < sizeof err->msg) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err->msg + n, sizeof err->msg - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -code;
}
