/* The blocked layout (nchwc.h) in a model's graph: on CPUs with the
 * blocked kernels, regions of dense and depthwise Convs, MaxPools, Concats
 * of whole 16-channel blocks and GlobalAveragePools (which end a region)
 * whose products outweigh the reorders at their borders compute blocked:
 * their ops become the Nchwc ones (ops/nchwc.c), writing blocked twins of
 * their values, and one NchwcReorder gives each value read elsewhere back
 * plain (or takes a plain input in). */
#ifndef NN_BLOCKED_H
#define NN_BLOCKED_H

#include "graph.h"

/* Rewrites g given shapes[v] of every value from a probe plan. Returns 1
 * if the graph changed (sorted again), 0 if not, or a negative code. */
int nn_blocked_layout(nn_graph_t *g, const nn_tensor_t *const *shapes, nn_error_t *err);

#endif
