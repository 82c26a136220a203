/* Operators. Each op is a pair of functions:
 *
 *   prepare(call, err): validates attributes against the input shapes,
 *       fills the output tensors' dtype and shape, stores whatever exec will
 *       need in call->params, and sets call->scratch_bytes and call->flops.
 *       Inputs whose data pointer is non-NULL are constant at this point
 *       (weights, or folded shape values): ops that need a value at compile
 *       time (Reshape's shape, Slice's starts...) read it here and fail with
 *       NN_EUNSUPPORTED when it is not constant.
 *   exec(call): computes. Never fails: everything checkable was checked in
 *       prepare. All in/out data pointers are bound; call->scratch points to
 *       scratch_bytes of 64-byte aligned workspace; call->pool may be used
 *       to split the work.
 *
 * prepare runs once per (model, batch size) plan, exec on every run. */
#ifndef NN_OP_H
#define NN_OP_H

#include <stddef.h>

#include "graph.h"
#include "pool.h"

typedef struct nn_call {
    const nn_node_t *node;
    int n_in, n_out;
    nn_tensor_t **in;   /* n_in entries; NULL for omitted optional inputs */
    nn_tensor_t **out;  /* n_out entries */
    size_t scratch_bytes;
    double flops;       /* per run of this call, at the plan's batch */
    void *scratch;
    nn_pool_t *pool;
    nn_isa_t isa;       /* the kernels to use (the graph's; GENERIC when zeroed) */
    int out_alias;      /* set by prepare: out[0] shares in[0]'s data (views) */
    int out_joins;      /* set by prepare: out[0] is in[0], in[1], ... laid end
                         * to end, all of it (1: Concat with nothing before its
                         * axis) or within each index of dimension 0 (2: along
                         * the channels of a batch). The plan may then have the
                         * inputs' producers write them in place; exec copies
                         * only those that are not. */
    int out_strided;    /* set by prepare: exec writes out[0]'s images
                         * out_stride floats apart when the plan sets that */
    size_t out_stride;  /* set by the plan: 0 (out[0] as it is), or the
                         * floats from one image of out[0] to the next */
    /* op-private parameters written by prepare, read by exec */
    _Alignas(16) unsigned char params[768];
} nn_call_t;

typedef int (*nn_prepare_fn)(nn_call_t *call, nn_error_t *err);
typedef void (*nn_exec_fn)(const nn_call_t *call);

typedef struct nn_op_def {
    const char *name; /* ONNX op_type */
    nn_op_t op;       /* its index in the op table */
    nn_prepare_fn prepare;
    nn_exec_fn exec;
} nn_op_def_t;

#define NN_OP_DECLARE(onnx, c, e)                                          \
    int nn_op_##c##_prepare(nn_call_t *call, nn_error_t *err);             \
    void nn_op_##c##_exec(const nn_call_t *call);
NN_OPS(NN_OP_DECLARE)
#undef NN_OP_DECLARE

/* Finds an op by ONNX op_type (default domain); NULL if unsupported. */
const nn_op_def_t *nn_op_find(const char *op_type);
/* The table entry of op (op < NN_OP_COUNT). */
const nn_op_def_t *nn_op_def(nn_op_t op);
/* Makes node an `op` node: sets its op, def and op_type together, so that
 * the three always agree. */
void nn_node_set_op(nn_node_t *node, nn_op_t op);

/* Winograd F(tile x tile, 3x3) weights (tile 2 or 4) for the kernels of
 * isa: w [M,C,3,3] -> u [(tile+2)^2, rows, C], rows from
 * nn_conv_winograd_rows (M; or M rounded up to whole panels, each matrix
 * packed for the engine's own products, where isa has them). The
 * optimiser stores u as a Conv's fifth input; Conv uses it for stride-1
 * 3x3 convolutions on large enough maps, the tile read from u's shape.
 * Returns 0 or -NN_ENOMEM. */
int64_t nn_conv_winograd_rows(nn_isa_t isa, int64_t M);
int nn_conv_winograd_weights(nn_isa_t isa, int tile, const float *w, int64_t M, int64_t C,
                             float *u);
/* Whether an output map of Ho x Wo is worth (and fits) the Winograd path,
 * and the output tile it takes there (2 or 4). */
int nn_conv_winograd_fits(int64_t Ho, int64_t Wo);
int nn_conv_winograd_tile(int64_t Ho, int64_t Wo);

/* How a Conv's weights are packed once at load for isa's kernels (y: its
 * output's shape, NULL where unknown): for nn_sgemm where it multiplies
 * them as a matrix by its input (1x1, or unfolded), in grouplanes.h's
 * layout where its groups (or a shallow dense convolution on a small map)
 * take that kernel; not for depthwise and narrow-group kernels. */
enum { NN_CONV_PACK_NONE, NN_CONV_PACK_SGEMM, NN_CONV_PACK_LANES };
int nn_conv_packs(const nn_node_t *n, const nn_tensor_t *w, nn_isa_t isa,
                  const nn_tensor_t *y);
/* The packed tensor's shape, whose rank tells the layout to Conv (its
 * input 5): [floats] for nn_sgemm_pack_a group after group, [group,
 * blocks of 16 output channels, Cg * taps, 16] for nn_grouplanes_pack.
 * Returns the rank. */
int nn_conv_packed_dims(const nn_node_t *n, const nn_tensor_t *w, int how, int64_t dims[4]);
void nn_conv_pack_weights(const nn_node_t *n, const nn_tensor_t *w, int how, float *dst);

/* The fused activation as a clamp the direct kernels apply in registers:
 * [0, inf) for Relu, [alpha, beta] for Clip, no bound otherwise. Returns 1
 * when the activation is something else, to be applied afterwards. */
int nn_conv_clamp(const nn_fusion_t *f, float *lo, float *hi);

/* Applies a fused activation to n floats in place, with isa's kernels. */
void nn_apply_act(nn_isa_t isa, const nn_fusion_t *f, float *x, int64_t n);

/* Helpers shared by ops. */
#define NN_PARAMS(call, type)                                              \
    ((type *)(void *)(call)->params)
#define NN_PARAMS_FIT(type)                                                \
    _Static_assert(sizeof(type) <= sizeof(((nn_call_t *)0)->params),       \
                   #type " does not fit nn_call_t.params")

#endif
