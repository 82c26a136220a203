/* ONNX protobuf -> nn_graph_t. */
#ifndef NN_ONNX_LOAD_H
#define NN_ONNX_LOAD_H

#include <stddef.h>

#include "error.h"
#include "graph.h"

/* The ai.onnx opsets a model may import (the highest it imports counts). */
#define NN_OPSET_MIN 6
#define NN_OPSET_MAX 17

/* Parses a serialized ModelProto into g, which must be zeroed. External
 * tensor data is read from files relative to base_dir (NULL: refused).
 * Supported: ai.onnx opsets NN_OPSET_MIN..NN_OPSET_MAX, float32/int64
 * tensors, the ops of op_list.h and Constant, whose nodes become constants;
 * the nodes end up topologically sorted. Omitted optional inputs ("") are
 * -1; omitted outputs are dropped when trailing, else get a private unused
 * value (never -1). Each node's op, def and op_type are set with
 * nn_node_set_op. On error the graph is left partly filled, for
 * nn_graph_free. */
int nn_onnx_load(nn_graph_t *g, const void *data, size_t size,
                 const char *base_dir, nn_error_t *err);

/* Whether the loader accepts nodes of this ONNX op_type (default domain):
 * the ops of op_list.h, and Constant, which it turns into a constant. */
int nn_onnx_op_supported(const char *op_type);

/* Parses one serialized TensorProto (the input_N.pb / output_N.pb files of
 * ONNX test cases). out->data is malloc'd (the caller frees it); *name, if
 * name is not NULL, receives a malloc'd copy of the tensor name ("" when
 * absent). On error nothing is left allocated. */
int nn_onnx_read_tensor(const void *data, size_t size, nn_tensor_t *out,
                        char **name, nn_error_t *err);

#endif
