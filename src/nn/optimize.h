/* Graph optimisation passes, run once at load on the model's own graph. */
#ifndef NN_OPTIMIZE_H
#define NN_OPTIMIZE_H

#include "graph.h"

/* Shape-independent passes: drop Identity/Dropout, fold constant subgraphs
 * (weights only), fold BatchNormalization into the Conv before it, fuse the
 * activation after a Conv or Gemm (Relu, LeakyRelu, Clip, Sigmoid*x as SiLU,
 * HardSigmoid*x / HardSwish). Leaves the graph sorted. */
int nn_optimize(nn_graph_t *g, nn_error_t *err);

/* Shape-dependent pass: folds `Add(conv_out, other)` into the Conv when
 * `other` has exactly the Conv output's shape (then any activation after
 * the Add). shapes[v] gives value v's shape from a probe plan. */
int nn_fuse_residuals(nn_graph_t *g, const nn_tensor_t *const *shapes,
                      nn_error_t *err);

#endif
