/* Engine internals shared by the public API, the tools and the tests. */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include <stdio.h>

#include "graph.h"
#include "plan.h"

typedef struct nn_load_options {
    /* Graph inputs to turn into constants before optimisation (data is
     * copied): ONNX test cases feed shapes and axes as inputs. */
    int n_consts;
    const char *const *const_names;
    const nn_tensor_t *consts;
    /* Shapes of the remaining run-time inputs for the probe plan, or NULL
     * to use the declared shapes with a symbolic batch of 1. */
    const nn_tensor_t *input_shapes;
    /* Accept int64 inputs and symbolic dimensions other than the batch. */
    int lenient;
} nn_load_options_t;

int nn_model_load_ex(nn_model_t **out, const void *data, size_t size,
                     const char *base_dir, const nn_load_options_t *opt,
                     nn_error_t *err);

/* Reads a whole file into a malloc'd buffer. */
int nn_read_file(const char *path, void **data, size_t *size, nn_error_t *err);

const nn_graph_t *nn_model_graph(const nn_model_t *model);

/* Runs `runs` times and prints to f the time per operator kind (op type
 * with its fusions), slowest first: for finding where a model's time goes.
 * by_node: then one line per graph node that ran, in graph order (index,
 * kind, ms per run, GFLOP/s, node name), to set beside another engine's
 * profile (bench/compare_nodes.sh). */
int nn_context_profile(nn_context_t *ctx, int batch, const float *const *inputs,
                       float *const *outputs, int runs, int by_node, FILE *f,
                       nn_error_t *err);

#endif
