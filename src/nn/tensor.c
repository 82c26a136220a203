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

const char *nn_dtype_name(nn_dtype_t dtype)
{
    switch (dtype) {
    case NN_DTYPE_FLOAT: return "float32";
    case NN_DTYPE_INT64: return "int64";
    default: return "unknown type";
    }
}

size_t nn_dtype_size(nn_dtype_t dtype)
{
    switch (dtype) {
    case NN_DTYPE_FLOAT: return sizeof(float);
    case NN_DTYPE_INT64: return sizeof(int64_t);
    default: return 0;
    }
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
