/* Tensor shape helpers. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

int64_t nn_tensor_elems(const nn_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

/* Every ONNX TensorProto.DataType, indexed by its number. The engine's own
 * types have the short names its messages use and their element size; the
 * others keep ONNX's spelling and size 0 (not supported). */
static const struct {
    const char *name;
    size_t size;
} nn_dtypes[] = {
    [0] = {"UNDEFINED", 0},
    [NN_DTYPE_FLOAT] = {"float32", sizeof(float)},
    [2] = {"UINT8", 0},
    [3] = {"INT8", 0},
    [4] = {"UINT16", 0},
    [5] = {"INT16", 0},
    [6] = {"INT32", 0},
    [NN_DTYPE_INT64] = {"int64", sizeof(int64_t)},
    [8] = {"STRING", 0},
    [9] = {"BOOL", 0},
    [10] = {"FLOAT16", 0},
    [11] = {"DOUBLE", 0},
    [12] = {"UINT32", 0},
    [13] = {"UINT64", 0},
    [14] = {"COMPLEX64", 0},
    [15] = {"COMPLEX128", 0},
    [16] = {"BFLOAT16", 0},
    [17] = {"FLOAT8E4M3FN", 0},
    [18] = {"FLOAT8E4M3FNUZ", 0},
    [19] = {"FLOAT8E5M2", 0},
    [20] = {"FLOAT8E5M2FNUZ", 0},
    [21] = {"UINT4", 0},
    [22] = {"INT4", 0},
    [23] = {"FLOAT4E2M1", 0},
};
#define NN_N_DTYPES ((int64_t)(sizeof nn_dtypes / sizeof nn_dtypes[0]))

const char *nn_dtype_name(int64_t dtype)
{
    return dtype >= 0 && dtype < NN_N_DTYPES ? nn_dtypes[dtype].name
                                             : "unknown";
}

size_t nn_dtype_size(nn_dtype_t dtype)
{
    int64_t t = dtype;
    return t >= 0 && t < NN_N_DTYPES ? nn_dtypes[t].size : 0;
}

size_t nn_tensor_bytes(const nn_tensor_t *t)
{
    return (size_t)nn_tensor_elems(t) * nn_dtype_size(t->dtype);
}

const char *nn_shape_str(const nn_tensor_t *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%s[", nn_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld",
                                 (long long)t->dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

void nn_tensor_like(nn_tensor_t *dst, const nn_tensor_t *src)
{
    nn_tensor_set_shape(dst, src->dtype, src->rank, src->dims);
}

void nn_tensor_set_shape(nn_tensor_t *t, nn_dtype_t dtype, int rank,
                         const int64_t *dims)
{
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    for (int i = rank; i < NN_MAX_RANK; i++)
        t->dims[i] = 0;
}

int nn_broadcast_shape(const nn_tensor_t *a, const nn_tensor_t *b,
                       nn_tensor_t *out)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[NN_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1;
        int64_t db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return -1;
        dims[i] = da == 1 ? db : da;
    }
    nn_tensor_set_shape(out, out->dtype, rank, dims);
    return 0;
}

int nn_axis(int64_t axis, int rank)
{
    if (axis < -rank || axis >= rank)
        return -1;
    return (int)(axis < 0 ? axis + rank : axis);
}
