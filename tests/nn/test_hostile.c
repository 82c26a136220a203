/* Hostile models: real ONNX test cases, one or two per supported operator,
 * mutated thousands of times in their structure (attribute values, tensor
 * dims, input shapes, op types, wiring) with a fixed seed. Every variant
 * must either fail to load with a message, or load and run to completion:
 * never crash, hang, or read out of bounds (the asan build checks that). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgclass/nn.h"
#include "nn/model.h"
#include "nn/onnx_load.h"
#include "onnx.pb-c.h"
#include "util/testutil.h"

#define CASES_DIR "/usr/include/onnx/backend/test/data/node"

static const char *const cases[] = {
    "test_conv_with_strides_padding", "test_conv_with_autopad_same",
    "test_basic_conv_with_padding", "test_averagepool_2d_pads",
    "test_averagepool_2d_ceil", "test_maxpool_2d_ceil",
    "test_maxpool_2d_dilations", "test_globalmaxpool_precomputed",
    "test_gemm_default_matrix_bias", "test_matmul_3d",
    "test_batchnorm_example", "test_relu", "test_leakyrelu",
    "test_prelu_broadcast", "test_clip", "test_sigmoid", "test_hardsigmoid",
    "test_hardswish", "test_tanh", "test_erf", "test_sqrt", "test_add_bcast",
    "test_sub", "test_mul", "test_div", "test_pow", "test_sum_example",
    "test_reduce_mean_keepdims_example", "test_softmax_axis_1",
    "test_logsoftmax_axis_1", "test_lrn", "test_layer_normalization_4d_axis1",
    "test_flatten_axis1", "test_reshape_reordered_all_dims",
    "test_transpose_all_permutations_0", "test_concat_2d_axis_0",
    "test_split_equal_parts_1d", "test_slice", "test_squeeze",
    "test_unsqueeze_axis_0", "test_constant_pad", "test_shape",
    "test_gather_0", "test_dropout_default", "test_identity",
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])
#define ROUNDS 400

static const char *const op_names[] = {
    "Conv", "MaxPool", "AveragePool", "Gemm", "MatMul", "Relu", "Clip",
    "Softmax", "Reshape", "Transpose", "Concat", "Split", "Slice", "Pad",
    "Gather", "Flatten", "Squeeze", "Unsqueeze", "ReduceMean", "LRN",
    "LayerNormalization", "Add", "PRelu", "BatchNormalization", "Shape", "Cast",
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t interesting(uint64_t *s)
{
    static const int64_t v[] = {0, 1, -1, 2, -2, 3, 5, 7, 64, 1000, 100000,
                                INT32_MAX, INT64_MAX, INT64_MIN, -1000};
    return v[rng_next(s) % (sizeof v / sizeof v[0])];
}

/* One random structural mutation. Only fields that exist are touched, and
 * values stay valid protobuf (the loader's own fuzzing covers bytes). */
static void mutate(Onnx__ModelProto *m, uint64_t *s)
{
    Onnx__GraphProto *g = m->graph;
    if (!g || g->n_node == 0)
        return;
    Onnx__NodeProto *n = g->node[rng_next(s) % g->n_node];
    switch (rng_next(s) % 6) {
    case 0: /* an attribute value */
        if (n->n_attribute) {
            Onnx__AttributeProto *a = n->attribute[rng_next(s) % n->n_attribute];
            if (a->has_i)
                a->i = interesting(s);
            if (a->n_ints)
                a->ints[rng_next(s) % a->n_ints] = interesting(s);
            if (a->n_ints > 1 && rng_next(s) % 3 == 0)
                a->n_ints--;
            if (a->has_f)
                a->f = (float)interesting(s) / 3.0f;
        }
        break;
    case 1: /* an initializer's dims */
        if (g->n_initializer) {
            Onnx__TensorProto *t = g->initializer[rng_next(s) % g->n_initializer];
            if (t->n_dims)
                t->dims[rng_next(s) % t->n_dims] = interesting(s);
        }
        break;
    case 2: /* a graph input's shape */
        if (g->n_input) {
            Onnx__ValueInfoProto *v = g->input[rng_next(s) % g->n_input];
            if (v->type && v->type->tensor_type && v->type->tensor_type->shape) {
                Onnx__TensorShapeProto *sh = v->type->tensor_type->shape;
                if (sh->n_dim) {
                    Onnx__TensorShapeProto__Dimension *d =
                        sh->dim[rng_next(s) % sh->n_dim];
                    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                        d->dim_value = interesting(s) % 40;
                }
                if (sh->n_dim > 1 && rng_next(s) % 4 == 0)
                    protobuf_c_message_free_unpacked(
                        &sh->dim[--sh->n_dim]->base, NULL);
            }
        }
        break;
    case 3: /* another operator with the same attributes and inputs */
        free(n->op_type); /* protobuf-c allocates with malloc */
        n->op_type = strdup(op_names[rng_next(s) % (sizeof op_names / sizeof op_names[0])]);
        ck_assert_ptr_nonnull(n->op_type);
        break;
    case 4: /* drop or swap inputs */
        if (n->n_input > 1 && rng_next(s) % 2) {
            char *t = n->input[0];
            n->input[0] = n->input[1];
            n->input[1] = t;
        } else if (n->n_input) {
            free(n->input[--n->n_input]);
        }
        break;
    default: /* the opset */
        if (m->n_opset_import)
            m->opset_import[0]->version = 6 + (int64_t)(rng_next(s) % 12);
        break;
    }
}

/* The case's int64 inputs (shapes, axes, indices), which the engine needs
 * as constants, as ONNX's test runners feed them. */
typedef struct case_consts {
    int n;
    char *names[8];
    nn_tensor_t values[8];
} case_consts_t;

static void read_consts(const char *name, case_consts_t *c)
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < 8; k++) {
        char path[512];
        void *data;
        size_t size;
        nn_error_t err;
        tu_path(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", CASES_DIR,
                name, k);
        if (nn_read_file(path, &data, &size, &err) != 0)
            break;
        nn_tensor_t t;
        char *tname;
        ck_assert_msg(nn_onnx_read_tensor(data, size, &t, &tname, &err) == 0, "%s",
                      err.msg);
        free(data);
        if (t.dtype == NN_DTYPE_INT64) {
            c->names[c->n] = tname;
            c->values[c->n++] = t;
        } else {
            free(tname);
            free(t.data);
        }
    }
}

static void free_consts(case_consts_t *c)
{
    for (int k = 0; k < c->n; k++) {
        free(c->names[k]);
        free(c->values[k].data);
    }
}

/* Loads a variant and, if it loads, runs it on zeros. Returns 1 if it ran. */
static int try_variant(const uint8_t *buf, size_t len, const case_consts_t *c)
{
    nn_error_t err = {{0}};
    nn_model_t *model;
    nn_load_options_t opt = {.n_consts = c->n,
                             .const_names = (const char *const *)c->names,
                             .consts = c->values};
    if (nn_model_load_ex(&model, buf, len, NULL, &opt, &err) != 0) {
        ck_assert_msg(err.msg[0] != '\0', "failure without a message");
        return 0;
    }
    int ran = 0;
    int n_in = nn_model_input_count(model), n_out = nn_model_output_count(model);
    float *ins[8] = {0}, *outs[8] = {0};
    size_t total = 0;
    for (int i = 0; i < n_in && i < 8; i++)
        total += nn_model_input_elems(model, i, 1);
    nn_context_t *ctx = NULL;
    if (n_in <= 8 && n_out <= 8 && total < (1u << 24) &&
        nn_context_create(&ctx, model, 1, 2, &err) == 0) {
        for (int i = 0; i < n_in; i++) {
            ins[i] = calloc(nn_model_input_elems(model, i, 1) + 1, sizeof(float));
            ck_assert_ptr_nonnull(ins[i]);
        }
        for (int i = 0; i < n_out; i++) {
            outs[i] = calloc(nn_model_output_elems(model, i, 1) + 1, sizeof(float));
            ck_assert_ptr_nonnull(outs[i]);
        }
        ran = nn_context_run(ctx, 1, (const float *const *)ins, outs, &err) == 0;
        for (int i = 0; i < 8; i++) {
            free(ins[i]);
            free(outs[i]);
        }
    }
    nn_context_free(ctx);
    nn_model_free(model);
    return ran;
}

START_TEST(test_mutated_case)
{
    char path[512];
    void *data;
    size_t size;
    nn_error_t err;
    ck_assert_msg(nn_read_file(tu_path(path, sizeof path, "%s/%s/model.onnx",
                                       CASES_DIR, cases[_i]),
                               &data, &size, &err) == 0, "%s", err.msg);
    /* HOSTILE_SEED explores other mutations; the default is fixed. */
    const char *env = getenv("HOSTILE_SEED");
    uint64_t seed = (env ? strtoull(env, NULL, 0) : 0x9e3779b97f4a7c15ull) ^
                    (uint64_t)(_i + 1) * 0x100000001b3ull;
    case_consts_t consts;
    read_consts(cases[_i], &consts);
    int ran = 0;
    for (int r = 0; r < ROUNDS; r++) {
        Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
        ck_assert_ptr_nonnull(m);
        int steps = 1 + (int)(rng_next(&seed) % 3);
        for (int k = 0; k < steps; k++)
            mutate(m, &seed);
        size_t len = onnx__model_proto__get_packed_size(m);
        uint8_t *buf = malloc(len + 1);
        ck_assert_ptr_nonnull(buf);
        onnx__model_proto__pack(m, buf);
        onnx__model_proto__free_unpacked(m, NULL);
        ran += try_variant(buf, len, &consts);
        free(buf);
    }
    free(data);
    free_consts(&consts);
    /* The mutations must leave most variants valid enough to run, or this
     * test would only exercise the loader's refusals. */
    if (getenv("HOSTILE_VERBOSE"))
        printf("%-40s %d/%d variants ran\n", cases[_i], ran, ROUNDS);
    ck_assert_msg(ran > 0, "%s: no variant ran", cases[_i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile-models");
    TCase *tc = tcase_create("mutations");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_mutated_case, 0, N_CASES);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
