/* Reading and editing a graph for the optimiser's passes; see graph_edit.h. */
#include "graph_edit.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "op.h"

void nn_usage_free(nn_usage_t *u)
{
    free(u->uses);
    free(u->producer);
}

int nn_usage_build(const nn_graph_t *g, nn_usage_t *u, nn_error_t *err)
{
    u->uses = calloc((size_t)g->n_values + 1, sizeof(int));
    u->producer = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    if (!u->uses || !u->producer) {
        nn_usage_free(u);
        return nn_fail(err, NN_ENOMEM, "out of memory optimising the graph");
    }
    for (int v = 0; v < g->n_values; v++)
        u->producer[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                u->uses[n->inputs[k]]++;
        for (int k = 0; k < n->n_outputs; k++)
            u->producer[n->outputs[k]] = i;
    }
    for (int i = 0; i < g->n_outputs; i++)
        u->uses[g->outputs[i]]++;
    return 0;
}

int nn_is_op(const nn_node_t *n, nn_op_t op)
{
    return !n->dead && n->op == op;
}

int nn_const_float(const nn_graph_t *g, int v)
{
    return v >= 0 && g->values[v].is_const && g->values[v].t.dtype == NN_DTYPE_FLOAT;
}

int nn_ensure_inputs(nn_node_t *n, int count)
{
    if (n->n_inputs >= count)
        return 0;
    int *in = realloc(n->inputs, sizeof(int) * (size_t)count);
    if (!in)
        return -NN_ENOMEM;
    for (int k = n->n_inputs; k < count; k++)
        in[k] = -1;
    n->inputs = in;
    n->n_inputs = count;
    return 0;
}

int nn_add_node(nn_graph_t *g, nn_op_t op, const char *name, const int *inputs, int n_in,
                const int *outputs, int n_out)
{
    if (g->n_nodes == g->cap_nodes) {
        if (g->cap_nodes > INT_MAX / 4)
            return -NN_ENOMEM;
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        nn_node_t *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return -NN_ENOMEM;
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    nn_node_t n = {.opset = g->opset, .n_inputs = n_in, .n_outputs = n_out};
    n.fusion.residual = -1;
    n.name = strdup(name);
    n.inputs = malloc(sizeof(int) * ((size_t)n_in + 1));
    n.outputs = malloc(sizeof(int) * ((size_t)n_out + 1));
    n.attrs = calloc(1, sizeof(nn_attr_t));
    if (!n.name || !n.inputs || !n.outputs || !n.attrs) {
        free(n.name), free(n.inputs), free(n.outputs), free(n.attrs);
        return -NN_ENOMEM;
    }
    memcpy(n.inputs, inputs, sizeof(int) * (size_t)n_in);
    memcpy(n.outputs, outputs, sizeof(int) * (size_t)n_out);
    nn_node_set_op(&n, op);
    g->nodes[g->n_nodes] = n;
    return g->n_nodes++;
}

int nn_add_int_attr(nn_node_t *n, const char *name, int64_t v)
{
    nn_attr_t *a = realloc(n->attrs, sizeof *a * ((size_t)n->n_attrs + 1));
    if (!a)
        return -NN_ENOMEM;
    n->attrs = a;
    a[n->n_attrs] = (nn_attr_t){.name = strdup(name), .type = NN_ATTR_INT, .i = v};
    if (!a[n->n_attrs].name)
        return -NN_ENOMEM;
    n->n_attrs++;
    return 0;
}
