/* The operators the engine implements, and the op enum generated from
 * their list. A node stores its op as an nn_op_t (set with nn_node_set_op,
 * op.h): passes decide on that enum; the ONNX name is for messages. */
#ifndef NN_OP_LIST_H
#define NN_OP_LIST_H

/* X(OnnxName, c_name, ENUM): the op's ONNX op_type (default domain), its
 * functions nn_op_<c_name>_prepare and nn_op_<c_name>_exec (one file of
 * src/nn/ops/ per family), and its enum value NN_OP_<ENUM>. */
#define NN_OPS(X)                                                          \
    /* conv.c */                                                           \
    X(Conv, conv, CONV)                                                    \
    X(BatchNormalization, batchnorm, BATCHNORM)                            \
    /* gemm.c */                                                           \
    X(Gemm, gemm, GEMM)                                                    \
    X(MatMul, matmul, MATMUL)                                              \
    /* pool.c */                                                           \
    X(MaxPool, maxpool, MAXPOOL)                                           \
    X(AveragePool, avgpool, AVGPOOL)                                       \
    X(GlobalAveragePool, globalavgpool, GLOBALAVGPOOL)                     \
    X(GlobalMaxPool, globalmaxpool, GLOBALMAXPOOL)                         \
    /* activation.c: unary elementwise */                                  \
    X(Relu, relu, RELU)                                                    \
    X(LeakyRelu, leakyrelu, LEAKYRELU)                                     \
    X(PRelu, prelu, PRELU)                                                 \
    X(Clip, clip, CLIP)                                                    \
    X(Sigmoid, sigmoid, SIGMOID)                                           \
    X(HardSigmoid, hardsigmoid, HARDSIGMOID)                               \
    X(HardSwish, hardswish, HARDSWISH)                                     \
    X(Tanh, tanh, TANH)                                                    \
    X(Erf, erf, ERF)                                                       \
    X(Sqrt, sqrt, SQRT)                                                    \
    X(Gelu, gelu, GELU)                                                    \
    /* elementwise.c: broadcasting binary ops */                           \
    X(Add, add, ADD)                                                       \
    X(Sub, sub, SUB)                                                       \
    X(Mul, mul, MUL)                                                       \
    X(Div, div, DIV)                                                       \
    X(Pow, pow, POW)                                                       \
    X(Sum, sum, SUM)                                                       \
    /* normalize.c */                                                      \
    X(ReduceMean, reducemean, REDUCEMEAN)                                  \
    X(Softmax, softmax, SOFTMAX)                                           \
    X(LogSoftmax, logsoftmax, LOGSOFTMAX)                                  \
    X(LRN, lrn, LRN)                                                       \
    X(LayerNormalization, layernorm, LAYERNORM)                            \
    /* shape.c: data movement and shape values */                          \
    X(Flatten, flatten, FLATTEN)                                           \
    X(Reshape, reshape, RESHAPE)                                           \
    X(Transpose, transpose, TRANSPOSE)                                     \
    X(Concat, concat, CONCAT)                                              \
    X(Split, split, SPLIT)                                                 \
    X(Slice, slice, SLICE)                                                 \
    X(Squeeze, squeeze, SQUEEZE)                                           \
    X(Unsqueeze, unsqueeze, UNSQUEEZE)                                     \
    X(Pad, pad, PAD)                                                       \
    X(Identity, identity, IDENTITY)                                        \
    X(Dropout, dropout, DROPOUT)                                           \
    X(Shape, shape, SHAPE)                                                 \
    X(Gather, gather, GATHER)                                              \
    X(Cast, cast, CAST)                                                    \
    /* nchwc.c: the optimiser's, never a model's (nn_op_find skips them) */ \
    X(NchwcReorder, nchwc_reorder, NCHWC_REORDER)                          \
    X(NchwcConv, nchwc_conv, NCHWC_CONV)                                   \
    X(NchwcDepthwise, nchwc_depthwise, NCHWC_DEPTHWISE)                    \
    X(NchwcMaxPool, nchwc_maxpool, NCHWC_MAXPOOL)                          \
    X(NchwcGlobalAveragePool, nchwc_globalavgpool, NCHWC_GLOBALAVGPOOL)

/* The first op the optimiser alone puts in a graph. */
#define NN_OP_FIRST_INTERNAL NN_OP_NCHWC_REORDER

typedef enum nn_op {
#define NN_OP_ENUM(onnx, c, e) NN_OP_##e,
    NN_OPS(NN_OP_ENUM)
#undef NN_OP_ENUM
    NN_OP_COUNT
} nn_op_t;

#endif
