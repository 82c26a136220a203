/* imgclass inference engine: public API.
 *
 * A model (nn_model_t) is loaded once from an ONNX file and is immutable
 * afterwards: any number of threads may share it without locks. Each thread
 * that runs the model owns an execution context (nn_context_t), which holds
 * its activation arena and its worker threads; N contexts cost one copy of
 * the weights.
 *
 * Every function that can fail returns 0 or a negative NN_E* code and, when
 * given an nn_error_t, writes a message naming the cause into it. Nothing
 * here exits or aborts on bad input. */
#ifndef IMGCLASS_NN_H
#define IMGCLASS_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NN_MAX_RANK 8

/* Error codes (negated on return). X(name, value, text). */
#define NN_ERRORS(X)                                                   \
    X(NN_EINVAL, 1, "invalid argument")                                \
    X(NN_ENOMEM, 2, "out of memory")                                   \
    X(NN_EIO, 3, "I/O error")                                          \
    X(NN_EFORMAT, 4, "malformed model file")                           \
    X(NN_EUNSUPPORTED, 5, "unsupported model feature")                 \
    X(NN_ESHAPE, 6, "inconsistent shapes")

enum {
#define NN_ERROR_ENUM(name, value, text) name = value,
    NN_ERRORS(NN_ERROR_ENUM)
#undef NN_ERROR_ENUM
};

/* Text for a (negative or positive) NN_E* code. */
const char *nn_strerror(int code);

typedef struct nn_error {
    char msg[512];
} nn_error_t;

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum nn_dtype {
    NN_DTYPE_UNDEFINED = 0,
    NN_DTYPE_FLOAT = 1,
    NN_DTYPE_INT64 = 7,
} nn_dtype_t;

/* A graph input or output as the model declares it. dims[i] == -1 marks a
 * symbolic dimension; the engine supports one, the leading batch axis. */
typedef struct nn_tensor_info {
    const char *name;
    nn_dtype_t dtype;
    int rank;
    int64_t dims[NN_MAX_RANK];
} nn_tensor_info_t;

typedef struct nn_model nn_model_t;
typedef struct nn_context nn_context_t;

/* Loads and compiles an ONNX model. On error, *out is NULL. */
int nn_model_load(nn_model_t **out, const char *path, nn_error_t *err);
/* Same, from bytes in memory; external data is resolved against base_dir
 * (NULL: external data refused). Borrows data. */
int nn_model_load_buffer(nn_model_t **out, const void *data, size_t size,
                         const char *base_dir, nn_error_t *err);
void nn_model_free(nn_model_t *model); /* NULL is a no-op */

int nn_model_input_count(const nn_model_t *model);
int nn_model_output_count(const nn_model_t *model);
const nn_tensor_info_t *nn_model_input(const nn_model_t *model, int i);
const nn_tensor_info_t *nn_model_output(const nn_model_t *model, int i);
/* ONNX op type of the node that computes output i ("Softmax", "Gemm", ...),
 * looking through Reshape, Flatten, Squeeze, Unsqueeze, Identity and
 * Dropout; NULL when the output is a graph input or constant. A server
 * uses it not to apply softmax to probabilities twice. */
const char *nn_model_output_op(const nn_model_t *model, int i);

/* The instruction sets the engine's kernels are built for, in increasing
 * order: each may use what every lower one has. */
typedef enum nn_isa {
    NN_ISA_GENERIC = 0, /* x86-64 baseline (SSE2), or any other CPU */
    NN_ISA_AVX2,        /* AVX2 + FMA (x86-64-v3) */
    NN_ISA_AVX512,      /* AVX-512 F, BW, VL, DQ (x86-64-v4) */
    NN_ISA_COUNT
} nn_isa_t;

/* The instruction set the model's kernels use: "avx512", "avx2" or
 * "generic" (the best the CPU has, or IMGCLASS_ISA's, when it loaded). */
const char *nn_model_isa(const nn_model_t *model);
/* The same as an nn_isa_t, for code beside the engine (preprocessing)
 * that picks its own kernels to match. */
nn_isa_t nn_model_isa_level(const nn_model_t *model);

/* The CPU as the engine sees it. */
typedef struct nn_cpu_info {
    int avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16;
    const char *best;  /* the highest instruction set it can run */
    const char *isa;   /* the one models load with (IMGCLASS_ISA applied) */
    int forced;        /* IMGCLASS_ISA chose it */
    const char *kernels; /* which kernels that instruction set brings */
} nn_cpu_info_t;
/* Fills info. Returns 0, or -NN_EINVAL for an IMGCLASS_ISA that names no
 * instruction set or one the CPU lacks (models then refuse to load too). */
int nn_cpu_info(nn_cpu_info_t *info, nn_error_t *err);

/* Figures for people sizing a model (per image, i.e. at batch 1). */
typedef struct nn_model_stats {
    size_t weight_bytes;     /* constant tensors after folding */
    size_t activation_bytes; /* peak arena bytes per image (memory plan) */
    size_t scratch_bytes;    /* largest per-op workspace at batch 1 */
    double flops;            /* multiply-adds count as two */
    int node_count;          /* nodes executed after optimisation */
    int opset;
} nn_model_stats_t;
void nn_model_stats(const nn_model_t *model, nn_model_stats_t *stats);

/* Operator counts of the original graph, for `imgclass info`: calls fn for
 * each distinct op type with its count, in first-seen order. */
void nn_model_op_counts(const nn_model_t *model,
                        void (*fn)(const char *op, int count, void *arg),
                        void *arg);

/* Makes an execution context able to run up to max_batch images at once,
 * using `threads` threads (the caller's plus threads-1 workers). */
int nn_context_create(nn_context_t **out, const nn_model_t *model,
                      int max_batch, int threads, nn_error_t *err);
void nn_context_free(nn_context_t *ctx); /* NULL is a no-op */

/* Runs `batch` images (1..max_batch). inputs[i] holds the i-th graph input
 * for the whole batch, C order; outputs[i] receives the i-th output. Sizes
 * follow the model's declared shapes with the batch axis set to `batch`. */
int nn_context_run(nn_context_t *ctx, int batch, const float *const *inputs,
                   float *const *outputs, nn_error_t *err);

/* How a batch larger than one pass runs: *pass_images images a pass; when
 * it runs in two stages, the graph node the second starts at (*tail_node,
 * else -1) and the images a pass of that stage (*tail_images, else 0). */
void nn_context_passes(const nn_context_t *ctx, int *pass_images, int *tail_node,
                       int *tail_images);

/* Calls fn(arg, i) for i in [0, n) on the context's threads (the caller's
 * included), returning when all are done: a server preprocesses a batch's
 * images on the threads that will then run it. Not while a run is going
 * on in the same context. */
void nn_context_for_each(nn_context_t *ctx, int n, void (*fn)(void *arg, int i),
                         void *arg);

/* Element count of input/output i for a given batch size. */
size_t nn_model_input_elems(const nn_model_t *model, int i, int batch);
size_t nn_model_output_elems(const nn_model_t *model, int i, int batch);

#ifdef __cplusplus
}
#endif
#endif
