/* The operator table and helpers shared by operators. */
#include "op.h"

#include <string.h>

#include "error.h"

/* Indexed by nn_op_t: entry NN_OP_X describes op X. */
static const nn_op_def_t nn_op_table[] = {
#define NN_OP_ENTRY(onnx, c, e)                                            \
    [NN_OP_##e] = {#onnx, NN_OP_##e, nn_op_##c##_prepare, nn_op_##c##_exec},
    NN_OPS(NN_OP_ENTRY)
#undef NN_OP_ENTRY
};
_Static_assert(sizeof nn_op_table / sizeof nn_op_table[0] == NN_OP_COUNT,
               "the op table and nn_op_t disagree");

const nn_op_def_t *nn_op_find(const char *op_type)
{
    for (int i = 0; i < NN_OP_COUNT; i++)
        if (strcmp(nn_op_table[i].name, op_type) == 0)
            return &nn_op_table[i];
    return NULL;
}

const nn_op_def_t *nn_op_def(nn_op_t op)
{
    return &nn_op_table[op];
}

void nn_node_set_op(nn_node_t *node, nn_op_t op)
{
    node->op = op;
    node->def = &nn_op_table[op];
    node->op_type = nn_op_table[op].name;
}

int nn_need_float(const nn_call_t *call, int i, const char *what,
                  nn_error_t *err)
{
    const nn_tensor_t *t = i < call->n_in ? call->in[i] : NULL;
    if (!t)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "input %d (%s) is missing", i, what);
    if (t->dtype != NN_DTYPE_FLOAT)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "input %d (%s) must be float32, got %s", i, what,
                            nn_dtype_name(t->dtype));
    return 0;
}

int nn_axes_mask(const nn_call_t *call, const int64_t *axes, int n, int rank,
                 int *mask, int *norm, nn_error_t *err)
{
    for (int k = 0; k < n; k++) {
        int a = nn_axis(axes[k], rank);
        if (a < 0)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "axis %lld is out of range for rank %d",
                                (long long)axes[k], rank);
        if (mask[a])
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "axis %lld is repeated", (long long)axes[k]);
        mask[a] = 1;
        if (norm)
            norm[k] = a;
    }
    return 0;
}

int nn_const_ints(const nn_call_t *call, int input, int64_t *vals, int max,
                  const char *what, nn_error_t *err)
{
    const nn_tensor_t *t = input < call->n_in ? call->in[input] : NULL;
    if (!t)
        return nn_node_fail(err, call->node, NN_EINVAL, "input '%s' is missing",
                            what);
    if (!t->data)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "input '%s' must be a constant known when the "
                            "model is compiled", what);
    if (t->rank > 1)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "input '%s' must be 1-D, got rank %d", what, t->rank);
    int64_t n = nn_tensor_elems(t);
    if (n > max)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "input '%s' has %lld values, at most %d supported",
                            what, (long long)n, max);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == NN_DTYPE_INT64)
            vals[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == NN_DTYPE_FLOAT)
            vals[i] = (int64_t)((const float *)t->data)[i];
        else
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "input '%s' must be int64", what);
    }
    return (int)n;
}
