/* What the optimiser's passes (optimize.c, blocked.c) share to read and
 * edit a graph: who uses and produces each value, and the small edits. */
#ifndef NN_GRAPH_EDIT_H
#define NN_GRAPH_EDIT_H

#include <stdint.h>

#include "graph.h"

/* Consumers of each value among live nodes; graph outputs count as one. */
typedef struct nn_usage {
    int *uses;     /* per value */
    int *producer; /* node index per value, -1 if none */
} nn_usage_t;

int nn_usage_build(const nn_graph_t *g, nn_usage_t *u, nn_error_t *err);
void nn_usage_free(nn_usage_t *u);

/* n is live and an `op` node. */
int nn_is_op(const nn_node_t *n, nn_op_t op);
/* v is a float constant. */
int nn_const_float(const nn_graph_t *g, int v);
/* n has at least count inputs (the new ones omitted, -1). Returns 0 or
 * -NN_ENOMEM. */
int nn_ensure_inputs(nn_node_t *n, int count);
/* Appends a live `op` node (no attributes, no fusion) named name, reading
 * inputs and writing outputs; node pointers into g may move. Returns its
 * index, or -NN_ENOMEM with g unchanged. Sort the graph after. */
int nn_add_node(nn_graph_t *g, nn_op_t op, const char *name, const int *inputs, int n_in,
                const int *outputs, int n_out);
/* Gives node n the int attribute name = v. Returns 0 or -NN_ENOMEM. */
int nn_add_int_attr(nn_node_t *n, const char *name, int64_t v);

#endif
