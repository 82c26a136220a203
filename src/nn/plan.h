/* Execution plans: the graph compiled for one set of input shapes.
 *
 * Building a plan infers every tensor's shape (op prepare functions), folds
 * everything computable from constants and shapes alone (PyTorch's
 * Shape/Gather/Concat chains), and lays out the remaining activations in one
 * arena, reusing memory between tensors whose lifetimes do not overlap. The
 * inputs of a Concat along the channels are laid out inside its output, so
 * that their producers write them in place and the Concat copies nothing
 * (at batch 1 any producer; on a batch, Convs, which write their images
 * apart). A
 * plan borrows the graph, which must outlive it. A plan is used by one
 * thread at a time. */
#ifndef NN_PLAN_H
#define NN_PLAN_H

#include "graph.h"
#include "op.h"
#include "pool.h"

typedef struct nn_plan nn_plan_t;

/* inputs[i] gives dtype and shape of the graph's i-th run-time input (data
 * ignored). */
int nn_plan_create(nn_plan_t **out, const nn_graph_t *g,
                   const nn_tensor_t *inputs, nn_error_t *err);
/* A plan of part of the graph: nodes [begin, end) (and, before begin, the
 * nodes that fold to constants the part reads), fed the n_in values in_ids
 * (dtype and shape in inputs[i]) at run time and delivering the n_out
 * values out_ids. nn_plan_create is the whole graph, its inputs to its
 * outputs. */
int nn_plan_create_part(nn_plan_t **out, const nn_graph_t *g, int begin, int end,
                        int n_in, const int *in_ids, const nn_tensor_t *inputs, int n_out,
                        const int *out_ids, nn_error_t *err);
void nn_plan_free(nn_plan_t *plan);

/* Where this plan's calls may be cut in two so that the second part (the
 * tail) never holds more than budget bytes of activations at once: the
 * graph node the tail starts at, or -1 when no tail is that small (or the
 * whole plan is). *tail_bytes: the tail's peak at this plan's batch;
 * ids[0, *n_ids): the values the tail reads from before it (graph inputs
 * and activations) and the outputs computed before it, in value order;
 * ids has room for one per graph value. */
int nn_plan_tail(const nn_plan_t *plan, size_t budget, size_t *tail_bytes, int *ids,
                 int *n_ids);

size_t nn_plan_arena_bytes(const nn_plan_t *plan);
size_t nn_plan_scratch_bytes(const nn_plan_t *plan);
double nn_plan_flops(const nn_plan_t *plan);
int nn_plan_call_count(const nn_plan_t *plan);
/* The plan's view of value id v (shape; data if constant or bound). */
const nn_tensor_t *nn_plan_value(const nn_plan_t *plan, int v);
/* Shape and dtype of output i (of the graph, or of the part). */
const nn_tensor_t *nn_plan_output(const nn_plan_t *plan, int i);

/* Binds the arena (arena_bytes, 64-byte aligned), the scratch buffer and
 * the pool used by subsequent runs. */
void nn_plan_bind(nn_plan_t *plan, void *arena, void *scratch, nn_pool_t *pool);

/* Runs the plan: inputs[i] is graph input i's data, outputs[i] receives
 * graph output i (nn_tensor_bytes(nn_plan_output(plan, i)) bytes). */
void nn_plan_run(nn_plan_t *plan, const void *const *inputs,
                 void *const *outputs);

/* Same as nn_plan_run, adding each call's wall time in milliseconds to
 * call_ms[c] (nn_plan_call_count entries), for profiling. */
void nn_plan_run_timed(nn_plan_t *plan, const void *const *inputs,
                       void *const *outputs, double *call_ms);
/* The node behind call c, and its floating-point operations per run. */
const nn_node_t *nn_plan_call_node(const nn_plan_t *plan, int c);
double nn_plan_call_flops(const nn_plan_t *plan, int c);

/* Evaluates one node whose inputs all have data, writing freshly
 * allocated (malloc) outputs into outs[k]; used for constant folding. */
int nn_eval_node(const nn_node_t *node, nn_tensor_t **ins, int n_in,
                 nn_tensor_t *outs, nn_error_t *err);

#endif
