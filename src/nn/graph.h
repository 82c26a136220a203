/* The model graph as the engine keeps it after loading: values (named
 * tensors), nodes (an op with attributes, reading and writing values), and
 * the constants that back initializers. Immutable once loading finishes. */
#ifndef NN_GRAPH_H
#define NN_GRAPH_H

#include "cpu.h"
#include "op_list.h"
#include "tensor.h"

struct nn_op_def;

typedef enum nn_attr_type {
    NN_ATTR_FLOAT = 1,
    NN_ATTR_INT = 2,
    NN_ATTR_STRING = 3,
    NN_ATTR_TENSOR = 4,
    NN_ATTR_FLOATS = 6,
    NN_ATTR_INTS = 7,
    NN_ATTR_OTHER = 99, /* graphs, sparse tensors, strings lists: unsupported */
} nn_attr_type_t;

typedef struct nn_attr {
    char *name;
    nn_attr_type_t type;
    int64_t i;
    float f;
    char *s;          /* NUL-terminated copy of the bytes */
    int64_t *ints;    /* n entries */
    float *floats;    /* n entries */
    int n;
    nn_tensor_t *tensor; /* data owned by the attribute */
} nn_attr_t;

/* Activation fused into a Conv (or Gemm): applied after bias and residual. */
typedef enum nn_act {
    NN_ACT_NONE = 0,
    NN_ACT_RELU,
    NN_ACT_CLIP,      /* min(max(x, alpha), beta) */
    NN_ACT_SIGMOID,
    NN_ACT_SILU,      /* x * sigmoid(x) */
    NN_ACT_HARDSWISH, /* x * max(0, min(1, alpha*x + beta)) */
    NN_ACT_LEAKY,     /* x < 0 ? alpha*x : x */
    NN_ACT_GELU,      /* x/2 * (1 + erf(x / sqrt(2))): MatMul and Gemm only */
} nn_act_t;

typedef struct nn_fusion {
    nn_act_t act;
    float alpha, beta;
    int residual; /* value id added before the activation, or -1 */
} nn_fusion_t;

/* A value: one named tensor. Constants carry data owned by the model. */
typedef struct nn_value {
    char *name;
    nn_tensor_t t;   /* declared/inferred type and shape; data if constant */
    int is_const;
    int is_input;    /* graph input fed at run time */
    int is_output;   /* graph output */
} nn_value_t;

typedef struct nn_node {
    char *name;           /* ONNX node name, or "<op_type>_<index>" */
    nn_op_t op;           /* what the node computes: decisions test this */
    const struct nn_op_def *def; /* op's table entry (prepare, exec) */
    const char *op_type;  /* op's ONNX name (static), for messages */
    int opset;            /* ai.onnx opset the model imports */
    int n_inputs, n_outputs;
    int *inputs;          /* value ids; -1 for an omitted optional input */
    int *outputs;
    int n_attrs;
    nn_attr_t *attrs;
    nn_fusion_t fusion;
    int dead;             /* removed by an optimisation pass */
} nn_node_t;

typedef struct nn_graph {
    int n_values, cap_values;
    nn_value_t *values;
    int n_nodes, cap_nodes;
    nn_node_t *nodes;     /* in topological order after nn_graph_sort */
    int n_inputs, n_outputs;
    int *inputs;          /* value ids of run-time graph inputs */
    int *outputs;         /* value ids of graph outputs */
    int opset;
    char *base_dir;       /* folder for external data, or NULL */
    nn_isa_t isa;         /* the kernels' instruction set (cpu.h): plans and
                             load-time weight layouts follow it */
} nn_graph_t;

/* Attribute lookup. Absent attributes yield the default. */
const nn_attr_t *nn_attr_find(const nn_node_t *node, const char *name);
int64_t nn_attr_int(const nn_node_t *node, const char *name, int64_t def);
float nn_attr_float(const nn_node_t *node, const char *name, float def);
const char *nn_attr_string(const nn_node_t *node, const char *name,
                           const char *def);
/* Sets *vals and returns the count, or -1 when absent. */
int nn_attr_ints(const nn_node_t *node, const char *name,
                 const int64_t **vals);
int nn_attr_floats(const nn_node_t *node, const char *name,
                   const float **vals);

/* Graph building (used by the loader and the optimiser). Return the new id,
 * or a negative NN_E* code. Names are copied. */
int nn_graph_add_value(nn_graph_t *g, const char *name);
int nn_graph_find_value(const nn_graph_t *g, const char *name);
/* Adds a constant owning `data` (taken; freed with the graph). */
int nn_graph_add_const(nn_graph_t *g, const char *name, nn_dtype_t dtype,
                       int rank, const int64_t *dims, void *data);
void nn_graph_free(nn_graph_t *g);

/* Topological sort of the live nodes (Kahn); fails naming a node on a
 * cycle or an input that nothing produces. */
int nn_graph_sort(nn_graph_t *g, nn_error_t *err);

/* Formats "node 'NAME' (OP): <fmt...>" into err (if not NULL) and
 * returns -code, as nn_fail does. */
int nn_node_fail(nn_error_t *err, const nn_node_t *node, int code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
