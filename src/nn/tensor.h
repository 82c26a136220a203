/* Tensors inside the engine: an element type, a shape, and (when bound) a
 * pointer to C-order data. A tensor never owns its data: constants belong
 * to the model, activations to a context's arena. */
#ifndef NN_TENSOR_H
#define NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "imgclass/nn.h"

typedef struct nn_tensor {
    nn_dtype_t dtype;
    int rank;
    int64_t dims[NN_MAX_RANK];
    void *data; /* NULL until bound; float * or int64_t * by dtype */
} nn_tensor_t;

/* Product of dims (1 for a scalar). */
int64_t nn_tensor_elems(const nn_tensor_t *t);
/* The name of an ONNX TensorProto.DataType number, for messages: the
 * engine's types as "float32" and "int64", the others as ONNX spells them
 * ("DOUBLE", "FLOAT16"), and "unknown" for a number outside the enum. */
const char *nn_dtype_name(int64_t dtype);
/* Bytes per element of dtype; 0 for a type the engine does not support. */
size_t nn_dtype_size(nn_dtype_t dtype);
/* Byte size of the data (elems * element size). */
size_t nn_tensor_bytes(const nn_tensor_t *t);
/* "float32[1,3,224,224]" into buf, for messages. Returns buf. */
const char *nn_shape_str(const nn_tensor_t *t, char *buf, size_t size);
/* Copies dtype and shape (not data) from src. */
void nn_tensor_like(nn_tensor_t *dst, const nn_tensor_t *src);
/* Sets shape from a dims array (rank <= NN_MAX_RANK). */
void nn_tensor_set_shape(nn_tensor_t *t, nn_dtype_t dtype, int rank,
                         const int64_t *dims);

/* Numpy broadcasting of two shapes into out (dtype left unchanged).
 * Returns 0, or -1 when the shapes are incompatible. */
int nn_broadcast_shape(const nn_tensor_t *a, const nn_tensor_t *b,
                       nn_tensor_t *out);

/* Normalises a possibly negative axis for a given rank; -1 if out of range
 * ([-rank, rank-1] valid; pass rank+1 for insert positions). */
int nn_axis(int64_t axis, int rank);

#endif
