/* The operator table: ONNX names, enum values and functions; see op.h. */
#include "op.h"

#include <string.h>

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
    for (int i = 0; i < NN_OP_FIRST_INTERNAL; i++)
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
