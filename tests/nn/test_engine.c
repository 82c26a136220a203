/* The engine's API contract: errors as values, graph optimisations really
 * applied, batch limits, and one model shared by concurrent contexts. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgclass/nn.h"
#include "nn/model.h"
#include "nn/nchwc.h"
#include "util/onnxbuild.h"
#include "util/testutil.h"
#include "util/npy.h"

static nn_model_t *load_path(const char *path)
{
    nn_error_t err = {{0}};
    nn_model_t *m;
    ck_assert_msg(nn_model_load(&m, path, &err) == 0, "%s: %s", path, err.msg);
    return m;
}

/* Live nodes of type op. Every node's op, def and op_type must agree,
 * those the optimiser made (Gelu, LayerNormalization) included. */
static int live_ops(const nn_model_t *m, const char *op)
{
    const nn_graph_t *g = nn_model_graph(m);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node_t *node = &g->nodes[i];
        ck_assert_ptr_eq(node->def, nn_op_def(node->op));
        ck_assert_str_eq(node->op_type, node->def->name);
        n += !node->dead && strcmp(node->op_type, op) == 0;
    }
    return n;
}

/* Live MatMul nodes carrying a fused bias (input 2) and activation act. */
static int biased_matmuls(const nn_model_t *m, nn_act_t act)
{
    const nn_graph_t *g = nn_model_graph(m);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const nn_node_t *node = &g->nodes[i];
        n += !node->dead && node->op == NN_OP_MATMUL && node->n_inputs == 3 &&
             node->inputs[2] >= 0 && node->fusion.act == act;
    }
    return n;
}

START_TEST(test_missing_file)
{
    nn_error_t err = {{0}};
    nn_model_t *m = (nn_model_t *)1;
    int rc = nn_model_load(&m, "/nonexistent/model.onnx", &err);
    ck_assert_int_eq(rc, -NN_EIO);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, "/nonexistent/model.onnx"), "%s", err.msg);
    ck_assert_str_eq(nn_strerror(rc), "I/O error");
}
END_TEST

START_TEST(test_garbage)
{
    static const unsigned char junk[] = "this is not a protobuf \xff\xff\xff\xff";
    nn_error_t err = {{0}};
    nn_model_t *m;
    int rc = nn_model_load_buffer(&m, junk, sizeof junk, NULL, &err);
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(m);
    ck_assert_msg(strlen(err.msg) > 0, "no message");
}
END_TEST

START_TEST(test_resnet18_optimised)
{
    char path[512];
    nn_model_t *m = load_path(tu_path(path, sizeof path, "%s/resnet18/model.onnx",
                                      tu_models_dir()));
    /* BatchNorm folded into Conv; Relu and the residual Add fused. */
    ck_assert_int_eq(live_ops(m, "BatchNormalization"), 0);
    ck_assert_int_eq(live_ops(m, "Relu"), 0);
    ck_assert_int_eq(live_ops(m, "Add"), 0);
    /* Where the blocked kernels are, the region of convolutions the
     * Winograd ones do not take (stem, stride-2 layers, downsamples)
     * computes blocked: ResNet-18's products outweigh its reorders. */
    const int blocked = live_ops(m, "NchwcConv");
    ck_assert_int_eq(live_ops(m, "Conv") + blocked, 20);
    if (nn_nchwc_has(nn_model_graph(m)->isa))
        ck_assert_int_ge(blocked, 5);
    else
        ck_assert_int_eq(blocked, 0);
    nn_model_stats_t s;
    nn_model_stats(m, &s);
    /* 11.69 M parameters, the 3x3 layers on maps of 14x14 and more held in
     * Winograd form only: F(2x2, 3x3) at 14x14 (16/9 the size), F(4x4,
     * 3x3) at 28x28 and 56x56 (36/9): 59.32 MB; 1.82 G multiply-adds. */
    ck_assert_msg(s.weight_bytes > 59200000 && s.weight_bytes < 59400000,
                  "weight bytes %zu", s.weight_bytes);
    ck_assert_msg(s.flops > 3.5e9 && s.flops < 3.8e9, "flops %g", s.flops);
    /* The biggest activation is 64x112x112 floats (3.2 MB); the plan must
     * reuse memory instead of summing ~20 MB of activations. */
    ck_assert_msg(s.activation_bytes > 3000000 && s.activation_bytes < 10000000,
                  "activation bytes %zu", s.activation_bytes);
    nn_model_free(m);
}
END_TEST

START_TEST(test_convnext_chains_fused)
{
    char path[512];
    nn_model_t *m = load_path(tu_path(path, sizeof path,
                                      "%s/convnext_tiny/model.onnx",
                                      tu_models_dir()));
    /* PyTorch writes GELU as Div/Erf/Add/Mul/Mul and LayerNorm as nine
     * elementwise nodes at opset 13; both must become single operators. */
    ck_assert_int_eq(live_ops(m, "Erf"), 0);
    ck_assert_int_eq(live_ops(m, "ReduceMean"), 0);
    ck_assert_int_eq(live_ops(m, "Pow"), 0);
    ck_assert_int_eq(live_ops(m, "LayerNormalization"), 23);
    /* Each block's two Linear layers are MatMul + Add(bias): the bias is
     * fused into the MatMul, and the first one's Gelu after it. */
    ck_assert_int_eq(live_ops(m, "Gelu"), 0);
    ck_assert_int_eq(biased_matmuls(m, NN_ACT_GELU), 18);
    ck_assert_int_eq(biased_matmuls(m, NN_ACT_NONE), 18);
    ck_assert_int_eq(live_ops(m, "MatMul"), 36);
    nn_model_free(m);
}
END_TEST

START_TEST(test_densenet_preactivation_fused)
{
    char path[512];
    nn_model_t *m = load_path(tu_path(path, sizeof path, "%s/densenet121/model.onnx",
                                      tu_models_dir()));
    /* Each BatchNormalization -> Relu that no Conv precedes (the dense
     * layers' pre-activation) runs as one pass; the others fold into their
     * Conv, whose Relu it applies. */
    ck_assert_int_eq(live_ops(m, "Relu"), 0);
    ck_assert_int_eq(live_ops(m, "BatchNormalization"), 62);
    nn_model_free(m);
}
END_TEST

START_TEST(test_batch_limits)
{
    char path[512];
    nn_model_t *m = load_path(tu_path(path, sizeof path,
                                      "%s/imagenet/mobilenet_v1_0.25_128.onnx",
                                      tu_shared_dir()));
    ck_assert_int_eq(live_ops(m, "Clip"), 0); /* ReLU6 fused */
    nn_error_t err = {{0}};
    nn_context_t *ctx;
    ck_assert_int_eq(nn_context_create(&ctx, m, 0, 1, &err), -NN_EINVAL);
    ck_assert_int_eq(nn_context_create(&ctx, m, 2, 0, &err), -NN_EINVAL);
    ck_assert_int_eq(nn_context_create(&ctx, m, 2, 1, &err), 0);
    size_t n = nn_model_input_elems(m, 0, 3);
    float *x = calloc(n, sizeof(float));
    float *y = calloc(nn_model_output_elems(m, 0, 3), sizeof(float));
    const float *ins[1] = {x};
    float *outs[1] = {y};
    ck_assert_int_eq(nn_context_run(ctx, 3, ins, outs, &err), -NN_EINVAL);
    ck_assert_msg(strstr(err.msg, "batch 3"), "%s", err.msg);
    ck_assert_int_eq(nn_context_run(ctx, 0, ins, outs, &err), -NN_EINVAL);
    ck_assert_int_eq(nn_context_run(ctx, 2, ins, outs, &err), 0);
    free(x);
    free(y);
    nn_context_free(ctx);
    nn_model_free(m);
}
END_TEST

typedef struct {
    const nn_model_t *model;
    const npy_array_t *in;
    float *out; /* [8 x 1001] */
    int rounds;
    int rc;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    nn_error_t err;
    nn_context_t *ctx;
    if ((w->rc = nn_context_create(&ctx, w->model, 4, 1, &err)))
        return NULL;
    size_t per_image = w->in->count / 8;
    for (int r = 0; r < w->rounds && !w->rc; r++) {
        for (int b = 0; b < 8 && !w->rc; b += 4) {
            const float *ins[1] = {w->in->data + per_image * b};
            float *outs[1] = {w->out + 1001 * b};
            w->rc = nn_context_run(ctx, 4, ins, outs, &err);
        }
    }
    nn_context_free(ctx);
    return NULL;
}

START_TEST(test_concurrent_contexts)
{
    char path[512], msg[256];
    nn_model_t *m = load_path(tu_path(path, sizeof path,
                                      "%s/imagenet/mobilenet_v2_1.0_224.onnx",
                                      tu_shared_dir()));
    npy_array_t in;
    ck_assert_msg(npy_read(tu_path(path, sizeof path, "%s/imagenet/tensors/batch.npy",
                                   tu_shared_dir()),
                           &in, msg, sizeof msg) == 0, "%s", msg);
    float *ref = malloc(8 * 1001 * sizeof(float));
    worker_t one = {m, &in, ref, 1, 0};
    worker(&one);
    ck_assert_int_eq(one.rc, 0);
    enum { N = 3 };
    worker_t w[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker_t){m, &in, malloc(8 * 1001 * sizeof(float)), 2, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_msg(memcmp(w[i].out, ref, 8 * 1001 * sizeof(float)) == 0,
                      "context %d computed different results", i);
        free(w[i].out);
    }
    free(ref);
    npy_free(&in);
    nn_model_free(m);
}
END_TEST

/* Concats written in place (plan.c, place_joins). X [N,4,4,4], Y [N,3,3]:
 *   A = Relu(X), B = 2X, E = Sigmoid(X)
 *   C1 = [A, B], C2 = [A, B, E]     DenseNet's growing concats: at batch 1
 *                                    A, B, E are written into C2's buffer
 *                                    and C1 is a view of its start
 *   G = 2 C1, Rb = Reshape(B)        readers of a view and of a member
 *   F = [X, A, A]                    a graph input and one value twice: copied
 *   K = [C3, E], C3 = [B, A]         a concat of a concat, whose inputs
 *                                    lie in C2 in another order: copied
 *   H = [Relu(Y), Sigmoid(Y)]        the second at 36 bytes: off alignment
 *   J = [Conv1x1(X), Conv3x3(X)]     SqueezeNet's fire module: in place at
 *                                    every batch, the convolutions writing
 *                                    their images apart
 * Outputs C2, G, Rb, F, K, H, J are checked against their definitions at
 * batch 1 (placed), 2 and 3 (J placed: images a thread, and one image at
 * a time; the others copied), and the layout itself at batch 1 and 3. */
static float joins_weight(int i) { return (float)((i * 7) % 11 - 5) / 8.0f; }

static Onnx__ModelProto *joins_model(void)
{
    Onnx__ModelProto *m = mk_model(13);
    Onnx__GraphProto *g = m->graph;
    static const float two = 2.0f;
    static const int64_t flat[2] = {0, -1}, fd[1] = {2};
    OB_PUSH(g->initializer, g->n_initializer, mk_tensor("two", 1, 0, NULL, &two, 1, 0));
    OB_PUSH(g->initializer, g->n_initializer, mk_tensor("flat", 7, 1, fd, flat, 2, 0));
    float w1[16], w3[144];
    for (int i = 0; i < 16; i++)
        w1[i] = joins_weight(i);
    for (int i = 0; i < 144; i++)
        w3[i] = joins_weight(100 + i);
    const int64_t w1d[4] = {4, 4, 1, 1}, w3d[4] = {4, 4, 3, 3};
    OB_PUSH(g->initializer, g->n_initializer, mk_tensor("W1", 1, 4, w1d, w1, 16, 0));
    OB_PUSH(g->initializer, g->n_initializer, mk_tensor("W3", 1, 4, w3d, w3, 144, 0));
    const int64_t xd[4] = {-1, 4, 4, 4}, yd[3] = {-1, 3, 3};
    OB_PUSH(g->input, g->n_input, mk_vi("X", 1, 4, xd));
    OB_PUSH(g->input, g->n_input, mk_vi("Y", 1, 3, yd));
    static const char *const nodes[][5] = {
        /* op, in0, in1, in2, out */
        {"Relu", "X", NULL, NULL, "A"},     {"Mul", "X", "two", NULL, "B"},
        {"Sigmoid", "X", NULL, NULL, "E"},  {"Concat", "A", "B", NULL, "C1"},
        {"Mul", "C1", "two", NULL, "G"},    {"Reshape", "B", "flat", NULL, "Rb"},
        {"Concat", "X", "A", "A", "F"},     {"Concat", "B", "A", NULL, "C3"},
        {"Concat", "C3", "E", NULL, "K"},
        {"Concat", "A", "B", "E", "C2"},    {"Relu", "Y", NULL, NULL, "U"},
        {"Sigmoid", "Y", NULL, NULL, "V"},  {"Concat", "U", "V", NULL, "H"},
        {"Conv", "X", "W1", NULL, "P1"},    {"Conv", "X", "W3", NULL, "P3"},
        {"Concat", "P1", "P3", NULL, "J"},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        Onnx__NodeProto *n = mk_node(nodes[i][0], nodes[i][4], nodes[i][1], nodes[i][2],
                                     nodes[i][3], nodes[i][4]);
        if (strcmp(nodes[i][0], "Concat") == 0)
            attr_int(n, "axis", 1);
        if (strcmp(nodes[i][4], "P3") == 0) {
            static const int64_t pads[4] = {1, 1, 1, 1};
            attr_ints(n, "pads", 4, pads);
        }
        OB_PUSH(g->node, g->n_node, n);
    }
    static const char *const outs[] = {"C2", "G", "Rb", "F", "K", "H", "J"};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        OB_PUSH(g->output, g->n_output, mk_vi(outs[i], 1, -1, NULL));
    return m;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The expected value of output o (0..6, as joins_model lists them) at
 * image n, element i, from the images' inputs x and y. */
static float joins_expected(int o, const float *x, const float *y, int n, int i)
{
    const int X = 64, Y = 9; /* floats of an image's X and Y */
    const float *xn = x + (size_t)n * X, *yn = y + (size_t)n * Y;
    /* A, B, E of X element j */
#define JA(j) (xn[j] > 0 ? xn[j] : 0.0f)
#define JB(j) (2.0f * xn[j])
#define JE(j) sigmoidf(xn[j])
    switch (o) {
    case 0: return i < X ? JA(i) : i < 2 * X ? JB(i - X) : JE(i - 2 * X);
    case 1: return 2.0f * (i < X ? JA(i) : JB(i - X));
    case 2: return JB(i);
    case 3: return i < X ? xn[i] : JA(i % X);
    case 4: return i < X ? JB(i) : i < 2 * X ? JA(i - X) : JE(i - 2 * X);
    case 5: return i < Y ? (yn[i] > 0 ? yn[i] : 0.0f) : sigmoidf(yn[i - Y]);
    }
    /* J: channel m < 4 of the 1x1, else of the 3x3 (pads 1) */
    const int m = i / 16, oy = i / 4 % 4, ox = i % 4;
    float v = 0.0f;
    for (int c = 0; c < 4; c++) {
        if (m < 4) {
            v += joins_weight(m * 4 + c) * xn[c * 16 + oy * 4 + ox];
            continue;
        }
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const int iy = oy + ky - 1, ix = ox + kx - 1;
                if (iy >= 0 && iy < 4 && ix >= 0 && ix < 4)
                    v += joins_weight(100 + (((m - 4) * 4 + c) * 3 + ky) * 3 + kx) *
                         xn[c * 16 + iy * 4 + ix];
            }
    }
    return v;
#undef JA
#undef JB
#undef JE
}

START_TEST(test_concat_in_place)
{
    size_t size;
    Onnx__ModelProto *om = joins_model();
    uint8_t *buf = ob_pack(om, &size);
    ob_free(om);
    nn_error_t err = {{0}};
    nn_model_t *m = NULL;
    ck_assert_msg(nn_model_load_buffer(&m, buf, size, NULL, &err) == 0, "%s", err.msg);
    free(buf);

    /* The layout at batch 1 (everything placed) and 3 (J only). */
    const nn_graph_t *g = nn_model_graph(m);
    for (int batch = 1; batch <= 3; batch += 2) {
        nn_tensor_t in[2];
        memset(in, 0, sizeof in);
        const int64_t xd[4] = {batch, 4, 4, 4}, yd[3] = {batch, 3, 3};
        nn_tensor_set_shape(&in[0], NN_DTYPE_FLOAT, 4, xd);
        nn_tensor_set_shape(&in[1], NN_DTYPE_FLOAT, 3, yd);
        nn_plan_t *plan = NULL;
        ck_assert_msg(nn_plan_create(&plan, g, in, &err) == 0, "%s", err.msg);
        void *arena = aligned_alloc(64, nn_plan_arena_bytes(plan) + 64);
        void *scratch = aligned_alloc(64, nn_plan_scratch_bytes(plan) + 64);
        ck_assert_ptr_nonnull(arena);
        ck_assert_ptr_nonnull(scratch);
        nn_plan_bind(plan, arena, scratch, NULL);
#define AT(name) ((const char *)nn_plan_value(plan, nn_graph_find_value(g, name))->data)
        const size_t img = 64 * sizeof(float);
        ck_assert_ptr_eq(AT("P1"), AT("J"));
        ck_assert_ptr_eq(AT("P3"), AT("J") + img);
        if (batch == 1) {
            ck_assert_ptr_eq(AT("A"), AT("C2"));
            ck_assert_ptr_eq(AT("B"), AT("C2") + img);
            ck_assert_ptr_eq(AT("E"), AT("C2") + 2 * img);
            ck_assert_ptr_eq(AT("C1"), AT("C2"));
            ck_assert_ptr_eq(AT("Rb"), AT("B"));
            ck_assert_ptr_eq(AT("C3"), AT("K"));
            ck_assert_ptr_eq(AT("U"), AT("H"));
            ck_assert_ptr_ne(AT("V"), AT("H") + 9 * sizeof(float)); /* off alignment */
            for (const char *f = AT("F"); f < AT("F") + 3 * img; f++) /* F holds no member */
                ck_assert(f < AT("C2") || f >= AT("C2") + 3 * img);
        } else { /* A, B, E have other readers: copied */
            ck_assert_ptr_ne(AT("A"), AT("C2"));
            ck_assert_ptr_ne(AT("C1"), AT("C2"));
        }
#undef AT
        nn_plan_free(plan);
        free(arena);
        free(scratch);
    }

    /* The values, at every batch. */
    nn_context_t *ctx = NULL;
    ck_assert_msg(nn_context_create(&ctx, m, 3, 2, &err) == 0, "%s", err.msg);
    for (int batch = 1; batch <= 3; batch++) {
        float x[192], y[27];
        for (int i = 0; i < 192; i++)
            x[i] = (float)((i * 37) % 23 - 11) / 4.0f;
        for (int i = 0; i < 27; i++)
            y[i] = (float)((i * 11) % 7 - 3) / 2.0f;
        const int per[7] = {192, 128, 64, 192, 192, 18, 128};
        float *out[7];
        for (int o = 0; o < 7; o++) {
            ck_assert_uint_eq(nn_model_output_elems(m, o, batch), (size_t)(per[o] * batch));
            out[o] = malloc(sizeof(float) * (size_t)(per[o] * batch));
            ck_assert_ptr_nonnull(out[o]);
        }
        const float *ins[2] = {x, y};
        ck_assert_msg(nn_context_run(ctx, batch, ins, out, &err) == 0, "%s", err.msg);
        for (int o = 0; o < 7; o++) {
            for (int n = 0; n < batch; n++)
                for (int i = 0; i < per[o]; i++)
                    ck_assert_msg(fabsf(out[o][n * per[o] + i] - joins_expected(o, x, y, n, i)) <=
                                      1e-5f * (1.0f + fabsf(joins_expected(o, x, y, n, i))),
                                  "batch %d output %d image %d element %d: %g, not %g", batch, o,
                                  n, i, out[o][n * per[o] + i], joins_expected(o, x, y, n, i));
            free(out[o]);
        }
    }
    nn_context_free(ctx);
    nn_model_free(m);
}
END_TEST

/* ---- the blocked layout's regions --------------------------------------------------
 *   C1 = Relu(Conv3x3(X))             3 plain channels, read as they are
 *   P  = MaxPool3x3/1(C1)             a blocked pool
 *   C2 = Conv1x1(P)                   40 channels: a partial last block
 *   D  = Relu(DepthwiseConv3x3(C2))   blocked depthwise, partial block
 *   C3 = Conv3x3(D) + P               the residual Add fused, blocked
 *   K  = Concat(C3, P)                whole blocks joined as they are
 *   C4 = Relu(Conv1x1/2(K))           24 channels, a graph output: reordered
 *   G  = GlobalAveragePool(C4)        reads blocked, writes plain
 * Where the blocked kernels are, the whole body goes blocked with one
 * reorder (C4's); both outputs must equal the AVX2 kernels' (plain) at
 * batches 1 and 3. */
static Onnx__ModelProto *region_model(void)
{
    Onnx__ModelProto *m = mk_model(13);
    Onnx__GraphProto *g = m->graph;
    static const struct {
        const char *name;
        int64_t dims[4];
    } ws[] = {{"W1", {32, 3, 3, 3}}, {"W2", {40, 32, 1, 1}}, {"W3", {32, 40, 3, 3}},
              {"W4", {24, 64, 1, 1}}, {"WD", {40, 1, 3, 3}}};
    for (size_t w = 0; w < sizeof ws / sizeof *ws; w++) {
        const size_t n = (size_t)(ws[w].dims[0] * ws[w].dims[1] * ws[w].dims[2] * ws[w].dims[3]);
        float *v = malloc(n * sizeof *v);
        ck_assert_ptr_nonnull(v);
        for (size_t i = 0; i < n; i++)
            v[i] = (float)((int)((i * 37 + w * 11) % 29) - 14) / (float)(20 * ws[w].dims[1]);
        OB_PUSH(g->initializer, g->n_initializer, mk_tensor(ws[w].name, 1, 4, ws[w].dims, v, n, 0));
        free(v);
    }
    float b2[40];
    for (int i = 0; i < 40; i++)
        b2[i] = (float)(i % 7 - 3) / 10.0f;
    const int64_t bd[1] = {40};
    OB_PUSH(g->initializer, g->n_initializer, mk_tensor("B2", 1, 1, bd, b2, 40, 0));
    const int64_t xd[4] = {-1, 3, 12, 12};
    OB_PUSH(g->input, g->n_input, mk_vi("X", 1, 4, xd));
    static const char *const nodes[][5] = {
        /* op, in0, in1, in2, out */
        {"Conv", "X", "W1", NULL, "A1"},    {"Relu", "A1", NULL, NULL, "C1"},
        {"MaxPool", "C1", NULL, NULL, "P"}, {"Conv", "P", "W2", "B2", "C2"},
        {"Conv", "C2", "WD", NULL, "AD"},   {"Relu", "AD", NULL, NULL, "D"},
        {"Conv", "D", "W3", NULL, "A3"},    {"Add", "A3", "P", NULL, "C3"},
        {"Concat", "C3", "P", NULL, "K"},   {"Conv", "K", "W4", NULL, "A4"},
        {"Relu", "A4", NULL, NULL, "C4"},   {"GlobalAveragePool", "C4", NULL, NULL, "G"},
    };
    static const int64_t pad1[4] = {1, 1, 1, 1}, k3[2] = {3, 3}, s2[2] = {2, 2};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        Onnx__NodeProto *n = mk_node(nodes[i][0], nodes[i][4], nodes[i][1], nodes[i][2],
                                     nodes[i][3], nodes[i][4]);
        const char *out = nodes[i][4];
        if (!strcmp(out, "A1") || !strcmp(out, "A3") || !strcmp(out, "P") || !strcmp(out, "AD"))
            attr_ints(n, "pads", 4, pad1);
        if (!strcmp(out, "AD"))
            attr_int(n, "group", 40);
        if (!strcmp(out, "P"))
            attr_ints(n, "kernel_shape", 2, k3);
        if (!strcmp(out, "A4"))
            attr_ints(n, "strides", 2, s2);
        if (!strcmp(out, "K"))
            attr_int(n, "axis", 1);
        OB_PUSH(g->node, g->n_node, n);
    }
    OB_PUSH(g->output, g->n_output, mk_vi("C4", 1, -1, NULL));
    OB_PUSH(g->output, g->n_output, mk_vi("G", 1, -1, NULL));
    return m;
}

/* region_model loaded for instruction set isa. */
static nn_model_t *load_region_model(const char *isa)
{
    size_t size;
    Onnx__ModelProto *om = region_model();
    uint8_t *buf = ob_pack(om, &size);
    ob_free(om);
    const char *had = getenv("IMGCLASS_ISA");
    char *saved = had ? strdup(had) : NULL;
    setenv("IMGCLASS_ISA", isa, 1);
    nn_error_t err = {{0}};
    nn_model_t *m = NULL;
    const int rc = nn_model_load_buffer(&m, buf, size, NULL, &err);
    if (saved)
        setenv("IMGCLASS_ISA", saved, 1);
    else
        unsetenv("IMGCLASS_ISA");
    free(saved);
    free(buf);
    ck_assert_msg(rc == 0, "%s: %s", isa, err.msg);
    return m;
}

START_TEST(test_blocked_region)
{
    nn_model_t *blocked = load_region_model("avx512"), *plain = load_region_model("avx2");
    if (!nn_nchwc_has(nn_model_graph(blocked)->isa)) {
        printf("test_blocked_region: no AVX-512 here: the plain model only (skipped)\n");
        ck_assert_int_eq(live_ops(blocked, "NchwcConv"), 0);
    } else {
        ck_assert_int_eq(live_ops(blocked, "NchwcConv"), 4);
        ck_assert_int_eq(live_ops(blocked, "Conv"), 0);
        ck_assert_int_eq(live_ops(blocked, "NchwcMaxPool"), 1);
        ck_assert_int_eq(live_ops(blocked, "NchwcDepthwise"), 1);
        ck_assert_int_eq(live_ops(blocked, "NchwcGlobalAveragePool"), 1);
        ck_assert_int_eq(live_ops(blocked, "NchwcReorder"), 1); /* C4, a graph output */
    }
    ck_assert_int_eq(live_ops(plain, "NchwcConv") + live_ops(plain, "NchwcReorder"), 0);
    nn_context_t *cb = NULL, *cp = NULL;
    nn_error_t err = {{0}};
    ck_assert_msg(nn_context_create(&cb, blocked, 3, 2, &err) == 0, "%s", err.msg);
    ck_assert_msg(nn_context_create(&cp, plain, 3, 2, &err) == 0, "%s", err.msg);
    static float x[3 * 3 * 144];
    for (int i = 0; i < 3 * 3 * 144; i++)
        x[i] = (float)((i * 53) % 41 - 20) / 10.0f;
    for (int batch = 1; batch <= 3; batch += 2) {
        const size_t per[2] = {24 * 36, 24};
        float *ob[2], *op[2];
        for (int o = 0; o < 2; o++) {
            ck_assert_uint_eq(nn_model_output_elems(blocked, o, batch), per[o] * batch);
            ob[o] = malloc(sizeof(float) * per[o] * batch);
            op[o] = malloc(sizeof(float) * per[o] * batch);
            ck_assert(ob[o] && op[o]);
        }
        const float *ins[1] = {x};
        ck_assert_msg(nn_context_run(cb, batch, ins, ob, &err) == 0, "%s", err.msg);
        ck_assert_msg(nn_context_run(cp, batch, ins, op, &err) == 0, "%s", err.msg);
        for (int o = 0; o < 2; o++) {
            for (size_t i = 0; i < per[o] * batch; i++)
                ck_assert_msg(fabsf(ob[o][i] - op[o][i]) <= 1e-5f * (1.0f + fabsf(op[o][i])),
                              "batch %d output %d element %zu: %g blocked, %g plain", batch, o,
                              i, ob[o][i], op[o][i]);
            free(ob[o]), free(op[o]);
        }
    }
    nn_context_free(cb);
    nn_context_free(cp);
    nn_model_free(blocked);
    nn_model_free(plain);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_resnet18_optimised);
    tcase_add_test(tc, test_convnext_chains_fused);
    tcase_add_test(tc, test_blocked_region);
    tcase_add_test(tc, test_densenet_preactivation_fused);
    tcase_add_test(tc, test_concat_in_place);
    tu_add_shared_test(tc, test_batch_limits);
    tu_add_shared_test(tc, test_concurrent_contexts);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
