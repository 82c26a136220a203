/* Checks and reads of an operator call's inputs; see args.h. */
#include "nn/ops/args.h"

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
