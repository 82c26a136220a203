/* Graph optimisation passes, run once at load on the model's own graph. */
#ifndef NN_OPTIMIZE_H
#define NN_OPTIMIZE_H

#include "graph.h"

/* Shape-independent passes: drop Identity/Dropout, fold constant subgraphs
 * (weights only), turn the Div/Erf/Add/Mul/Mul chain into Gelu and
 * PyTorch's written-out LayerNorm into LayerNormalization, fold
 * BatchNormalization into the Conv before it, fuse the activation after a
 * Conv or Gemm (Relu, LeakyRelu, Clip, Sigmoid*x as SiLU, HardSigmoid*x /
 * HardSwish). Leaves the graph sorted. */
int nn_optimize(nn_graph_t *g, nn_error_t *err);

/* Shape-dependent passes, given shapes[v] of every value from a probe
 * plan: folds `Add(conv_out, other)` into the Conv when `other` has exactly
 * the Conv output's shape (then any activation after the Add), gives
 * stride-1 3x3 Convs on large maps Winograd-transformed weights, puts
 * regions in the blocked layout (blocked.h) and packs the remaining
 * weights for the engine's own products. Returns 1
 * if the graph changed (the probe must be compiled again), 0 if not, or a
 * negative code. */
int nn_optimize_with_shapes(nn_graph_t *g, const nn_tensor_t *const *shapes,
                            nn_error_t *err);

#endif
