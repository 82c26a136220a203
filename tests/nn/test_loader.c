/* ONNX loader and graph module tests. Models are built in C with the
 * protobuf-c structs, so no Python is needed. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/graph.h"
#include "nn/onnx_load.h"
#include "nn/op.h"
#include "onnx.pb-c.h"
#include "util/onnxbuild.h"

#define ONNX_DATA "/usr/include/onnx/backend/test/data"

/* Packs, loads and frees the model; returns the load code, the graph in g. */
static int load_model(Onnx__ModelProto *m, const char *base, nn_graph_t *g,
                      nn_error_t *err)
{
    size_t size;
    uint8_t *buf = ob_pack(m, &size);
    ob_free(m);
    memset(g, 0, sizeof *g);
    err->msg[0] = '\0';
    int rc = nn_onnx_load(g, buf, size, base, err);
    free(buf);
    return rc;
}

/* A small valid model:
 *   Relu(Y) -> Z is listed before Conv(X, W, B) -> Y (to exercise sorting),
 *   Constant value_ints -> shape, Reshape(Z, shape) -> R, output R. */
static Onnx__ModelProto *tiny_model(int opset, int raw)
{
    Onnx__ModelProto *m = mk_model(opset);
    Onnx__GraphProto *g = m->graph;
    static const float w[6] = {1, 2, 3, 4, 5, 6};
    static const float b[2] = {0.5f, -0.5f};
    int64_t wd[4] = {2, 3, 1, 1}, bd[1] = {2};
    OB_PUSH(g->initializer, g->n_initializer,
         mk_tensor("W", 1, 4, wd, w, 6, raw));
    OB_PUSH(g->initializer, g->n_initializer,
         mk_tensor("B", 1, 1, bd, b, 2, raw));
    int64_t xd[4] = {-1, 3, 4, 4};
    OB_PUSH(g->input, g->n_input, mk_vi("X", 1, 4, xd));
    /* IR 3 style: an initializer also listed as input */
    OB_PUSH(g->input, g->n_input, mk_vi("W", 1, 4, wd));

    Onnx__NodeProto *relu = mk_node("Relu", NULL, "Y", NULL, NULL, "Z");
    OB_PUSH(g->node, g->n_node, relu);
    Onnx__NodeProto *conv = mk_node("Conv", "conv1", "X", "W", "B", "Y");
    int64_t ks[2] = {1, 1};
    attr_ints(conv, "kernel_shape", 2, ks);
    attr_float(conv, "alpha", 0.25f);
    attr_string(conv, "auto_pad", "NOTSET");
    attr_int(conv, "group", 1);
    OB_PUSH(g->node, g->n_node, conv);
    Onnx__NodeProto *cst = mk_node("Constant", "c", NULL, NULL, NULL, "shape");
    int64_t sv[2] = {-1, 32};
    attr_ints(cst, "value_ints", 2, sv);
    OB_PUSH(g->node, g->n_node, cst);
    OB_PUSH(g->node, g->n_node,
         mk_node("Reshape", "reshape", "Z", "shape", NULL, "R"));
    int64_t rd[2] = {-1, 32};
    OB_PUSH(g->output, g->n_output, mk_vi("R", 1, 2, rd));
    return m;
}

/* ---- graph module ------------------------------------------------------ */

START_TEST(test_graph_values)
{
    nn_graph_t g;
    memset(&g, 0, sizeof g);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "v%d", i);
        ck_assert_int_eq(nn_graph_add_value(&g, name), i);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "v%d", i);
        ck_assert_int_eq(nn_graph_find_value(&g, name), i);
    }
    ck_assert_int_eq(nn_graph_find_value(&g, "nope"), -1);
    ck_assert_int_eq(nn_graph_add_value(&g, "v7"), -NN_EINVAL);
    int64_t dims[2] = {2, 2};
    float *d = malloc(4 * sizeof(float));
    ck_assert_ptr_nonnull(d);
    int id = nn_graph_add_const(&g, "c", NN_DTYPE_FLOAT, 2, dims, d);
    ck_assert_int_eq(id, 5000);
    ck_assert(g.values[id].is_const);
    ck_assert_ptr_eq(g.values[id].t.data, d);
    /* duplicate: the data is still taken (and freed) */
    float *d2 = malloc(sizeof(float));
    ck_assert_ptr_nonnull(d2);
    ck_assert_int_lt(nn_graph_add_const(&g, "c", NN_DTYPE_FLOAT, 0, NULL, d2),
                     0);
    nn_graph_free(&g);
    ck_assert_int_eq(g.n_values, 0);
    ck_assert_ptr_null(g.values);
}
END_TEST

static void add_node(nn_graph_t *g, const char *name, int in, int out)
{
    if (g->n_nodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 8;
        g->nodes = realloc(g->nodes, (size_t)g->cap_nodes * sizeof *g->nodes);
        ck_assert_ptr_nonnull(g->nodes);
    }
    nn_node_t *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->name = ob_str(name);
    nn_node_set_op(n, NN_OP_RELU);
    n->n_inputs = n->n_outputs = 1;
    n->inputs = malloc(sizeof(int));
    n->outputs = malloc(sizeof(int));
    ck_assert_ptr_nonnull(n->inputs);
    ck_assert_ptr_nonnull(n->outputs);
    n->inputs[0] = in;
    n->outputs[0] = out;
}

START_TEST(test_graph_sort)
{
    nn_graph_t g;
    nn_error_t err;
    memset(&g, 0, sizeof g);
    int x = nn_graph_add_value(&g, "x");
    int a = nn_graph_add_value(&g, "a");
    int b = nn_graph_add_value(&g, "b");
    int c = nn_graph_add_value(&g, "c");
    g.values[x].is_input = 1;
    add_node(&g, "n3", b, c);
    add_node(&g, "dead", x, c); /* would produce c twice if it were live */
    add_node(&g, "n2", a, b);
    add_node(&g, "n1", x, a);
    g.nodes[1].dead = 1;
    ck_assert_int_eq(nn_graph_sort(&g, &err), 0);
    ck_assert_int_eq(g.n_nodes, 3);
    ck_assert_str_eq(g.nodes[0].name, "n1");
    ck_assert_str_eq(g.nodes[1].name, "n2");
    ck_assert_str_eq(g.nodes[2].name, "n3");
    /* already sorted: order kept */
    ck_assert_int_eq(nn_graph_sort(&g, &err), 0);
    ck_assert_str_eq(g.nodes[0].name, "n1");
    nn_graph_free(&g);

    /* cycle a -> b -> a, fed from nothing else */
    memset(&g, 0, sizeof g);
    x = nn_graph_add_value(&g, "x");
    a = nn_graph_add_value(&g, "a");
    b = nn_graph_add_value(&g, "b");
    c = nn_graph_add_value(&g, "c");
    g.values[x].is_input = 1;
    add_node(&g, "tail", b, c);
    add_node(&g, "p", a, b);
    add_node(&g, "q", b, a);
    ck_assert_int_eq(nn_graph_sort(&g, &err), -NN_EFORMAT);
    ck_assert_msg(strstr(err.msg, "node 'p'") || strstr(err.msg, "node 'q'"),
                  "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "cycle"));
    nn_graph_free(&g);

    /* input nothing produces */
    memset(&g, 0, sizeof g);
    a = nn_graph_add_value(&g, "ghost");
    b = nn_graph_add_value(&g, "b");
    add_node(&g, "reader", a, b);
    ck_assert_int_eq(nn_graph_sort(&g, &err), -NN_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "node 'reader'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "'ghost'"));
    nn_graph_free(&g);
}
END_TEST

/* ---- loader ------------------------------------------------------------- */

static void check_tiny(const nn_graph_t *g)
{
    ck_assert_int_eq(g->opset, 13);
    ck_assert_int_eq(g->n_inputs, 1);
    const nn_value_t *x = &g->values[g->inputs[0]];
    ck_assert_str_eq(x->name, "X");
    ck_assert(x->is_input && !x->is_const);
    ck_assert_int_eq(x->t.dtype, NN_DTYPE_FLOAT);
    ck_assert_int_eq(x->t.rank, 4);
    ck_assert_int_eq(x->t.dims[0], -1);
    ck_assert_int_eq(x->t.dims[1], 3);
    ck_assert_int_eq(x->t.dims[3], 4);

    int w = nn_graph_find_value(g, "W");
    ck_assert_int_ge(w, 0);
    ck_assert(g->values[w].is_const && !g->values[w].is_input);
    ck_assert_int_eq(g->values[w].t.rank, 4);
    ck_assert_int_eq(g->values[w].t.dims[0], 2);
    const float *wd = g->values[w].t.data;
    ck_assert_float_eq(wd[0], 1);
    ck_assert_float_eq(wd[5], 6);
    int b = nn_graph_find_value(g, "B");
    ck_assert_float_eq(((const float *)g->values[b].t.data)[1], -0.5f);
    int s = nn_graph_find_value(g, "shape");
    ck_assert(g->values[s].is_const);
    ck_assert_int_eq(g->values[s].t.dtype, NN_DTYPE_INT64);
    ck_assert_int_eq(g->values[s].t.rank, 1);
    ck_assert_int_eq(g->values[s].t.dims[0], 2);
    ck_assert_int_eq(((const int64_t *)g->values[s].t.data)[1], 32);

    ck_assert_int_eq(g->n_outputs, 1);
    const nn_value_t *r = &g->values[g->outputs[0]];
    ck_assert_str_eq(r->name, "R");
    ck_assert(r->is_output);
    ck_assert_int_eq(r->t.rank, 2);
    ck_assert_int_eq(r->t.dims[1], 32);

    ck_assert_int_eq(g->n_nodes, 3); /* the Constant became a value */
    const nn_node_t *conv = &g->nodes[0];
    ck_assert_str_eq(conv->name, "conv1");
    ck_assert_str_eq(conv->op_type, "Conv");
    ck_assert_ptr_nonnull(conv->def);
    ck_assert_int_eq(conv->opset, 13);
    ck_assert_int_eq(conv->n_inputs, 3);
    ck_assert_int_eq(conv->inputs[1], w);
    const int64_t *ks;
    ck_assert_int_eq(nn_attr_ints(conv, "kernel_shape", &ks), 2);
    ck_assert_int_eq(ks[1], 1);
    ck_assert_int_eq(nn_attr_int(conv, "group", 7), 1);
    ck_assert_int_eq(nn_attr_int(conv, "missing", 7), 7);
    ck_assert_float_eq(nn_attr_float(conv, "alpha", 1), 0.25f);
    ck_assert_str_eq(nn_attr_string(conv, "auto_pad", "x"), "NOTSET");
    ck_assert_str_eq(nn_attr_string(conv, "nope", "x"), "x");
    ck_assert_int_eq(nn_attr_floats(conv, "kernel_shape", NULL), -1);
    ck_assert_str_eq(g->nodes[1].name, "Relu_0");
    ck_assert_int_eq(g->nodes[1].inputs[0], conv->outputs[0]);
    ck_assert_str_eq(g->nodes[2].name, "reshape");
    ck_assert_int_eq(g->nodes[2].inputs[1], s);
    ck_assert_int_eq(g->nodes[2].outputs[0], g->outputs[0]);
}

START_TEST(test_tiny_model)
{
    for (int raw = 0; raw < 2; raw++) {
        nn_graph_t g;
        nn_error_t err;
        int rc = load_model(tiny_model(13, raw), NULL, &g, &err);
        ck_assert_msg(rc == 0, "raw=%d: %s", raw, err.msg);
        check_tiny(&g);
        ck_assert_ptr_null(g.base_dir);
        nn_graph_free(&g);
    }
}
END_TEST

START_TEST(test_omitted_io)
{
    Onnx__ModelProto *m = mk_model(13);
    Onnx__GraphProto *gp = m->graph;
    int64_t xd[2] = {2, 3};
    OB_PUSH(gp->input, gp->n_input, mk_vi("X", 1, 2, xd));
    float mx = 6;
    OB_PUSH(gp->initializer, gp->n_initializer,
         mk_tensor("max", 1, 0, NULL, &mx, 1, 1));
    OB_PUSH(gp->node, gp->n_node, mk_node("Clip", "clip", "X", "", "max", "C"));
    Onnx__NodeProto *d1 = mk_node("Dropout", "d1", "C", NULL, NULL, "D");
    OB_PUSH(d1->output, d1->n_output, ob_str(""));
    OB_PUSH(gp->node, gp->n_node, d1);
    Onnx__NodeProto *d2 = mk_node("Dropout", "d2", "D", NULL, NULL, "");
    OB_PUSH(d2->output, d2->n_output, ob_str("mask"));
    OB_PUSH(gp->node, gp->n_node, d2);
    OB_PUSH(gp->output, gp->n_output, mk_vi("mask", 1, -1, NULL));
    nn_graph_t g;
    nn_error_t err;
    int rc = load_model(m, NULL, &g, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(g.n_nodes, 3);
    ck_assert_int_eq(g.nodes[0].n_inputs, 3);
    ck_assert_int_eq(g.nodes[0].inputs[1], -1);
    ck_assert_int_eq(g.nodes[0].inputs[2], nn_graph_find_value(&g, "max"));
    ck_assert_int_eq(g.values[g.nodes[0].inputs[2]].t.rank, 0);
    ck_assert_int_eq(g.nodes[1].n_outputs, 1);
    ck_assert_int_eq(g.nodes[2].n_outputs, 2);
    ck_assert_int_ge(g.nodes[2].outputs[0], 0);
    ck_assert_str_eq(g.values[g.nodes[2].outputs[0]].name,
                     "d2:unused_output_0");
    ck_assert_int_eq(g.nodes[2].outputs[1], g.outputs[0]);
    ck_assert_int_eq(g.values[g.outputs[0]].t.rank, 0); /* no shape given */
    nn_graph_free(&g);
}
END_TEST

/* Loads and expects failure with code and a message containing `want`. */
static void expect_fail(Onnx__ModelProto *m, const char *base, int code,
                        const char *want)
{
    nn_graph_t g;
    nn_error_t err;
    int rc = load_model(m, base, &g, &err);
    ck_assert_msg(rc == -code, "rc %d (want %d): %s", rc, -code, err.msg);
    ck_assert_msg(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg,
                  want);
    nn_graph_free(&g);
}

START_TEST(test_refusals)
{
    /* unsupported op */
    Onnx__ModelProto *m = tiny_model(13, 1);
    free(m->graph->node[3]->op_type);
    m->graph->node[3]->op_type = ob_str("FooBar");
    expect_fail(m, NULL, NN_EUNSUPPORTED,
                "node 'reshape' (FooBar): operator not supported");
    /* the optimiser's own ops are not a model's */
    static const char *const internal[] = {"NchwcConv", "NchwcReorder", "NchwcMaxPool"};
    for (size_t i = 0; i < sizeof internal / sizeof *internal; i++) {
        m = tiny_model(13, 1);
        free(m->graph->node[3]->op_type);
        m->graph->node[3]->op_type = ob_str(internal[i]);
        expect_fail(m, NULL, NN_EUNSUPPORTED, "operator not supported");
    }
    /* unnamed unsupported node */
    m = tiny_model(13, 1);
    free(m->graph->node[0]->op_type);
    m->graph->node[0]->op_type = ob_str("Elu");
    expect_fail(m, NULL, NN_EUNSUPPORTED, "node 'Elu_0' (Elu)");
    /* other domain */
    m = tiny_model(13, 1);
    m->graph->node[0]->domain = ob_str("com.microsoft");
    expect_fail(m, NULL, NN_EUNSUPPORTED, "domain 'com.microsoft'");
    /* opsets */
    expect_fail(tiny_model(5, 1), NULL, NN_EUNSUPPORTED, "opset 5");
    expect_fail(tiny_model(18, 1), NULL, NN_EUNSUPPORTED, "opset 18");
    nn_graph_t g;
    nn_error_t err;
    for (int o = 6; o <= 17; o++) {
        int rc = load_model(tiny_model(o, 0), NULL, &g, &err);
        ck_assert_msg(rc == 0, "opset %d: %s", o, err.msg);
        nn_graph_free(&g);
    }
    /* int32 initializer */
    m = tiny_model(13, 1);
    int32_t iv[2] = {1, 2};
    int64_t d1[1] = {2};
    OB_PUSH(m->graph->initializer, m->graph->n_initializer,
         mk_tensor("w", 6, 1, d1, iv, 2, 0));
    expect_fail(m, NULL, NN_EUNSUPPORTED,
                "initializer 'w': dtype INT32 is not supported (float32 and "
                "int64 only)");
    /* raw_data size mismatch */
    m = tiny_model(13, 1);
    m->graph->initializer[0]->raw_data.len -= 1;
    expect_fail(m, NULL, NN_EFORMAT, "initializer 'W': raw_data has 23 bytes");
    /* typed count mismatch */
    m = tiny_model(13, 0);
    m->graph->initializer[1]->n_float_data = 1;
    expect_fail(m, NULL, NN_EFORMAT, "initializer 'B'");
    /* negative / overflowing dims */
    m = tiny_model(13, 1);
    m->graph->initializer[0]->dims[0] = -2;
    expect_fail(m, NULL, NN_EFORMAT, "negative dimension");
    m = tiny_model(13, 1);
    m->graph->initializer[0]->dims[0] = INT64_MAX / 2;
    m->graph->initializer[0]->dims[1] = 4;
    expect_fail(m, NULL, NN_EFORMAT, "too many elements");
    m = tiny_model(13, 1);
    m->graph->initializer[0]->dims[0] = INT64_MAX / 8;
    expect_fail(m, NULL, NN_EFORMAT, "initializer 'W'");
    /* an output produced twice */
    m = tiny_model(13, 1);
    free(m->graph->node[0]->output[0]);
    m->graph->node[0]->output[0] = ob_str("Y");
    expect_fail(m, NULL, NN_EFORMAT, "produced twice");
    /* missing graph */
    m = tiny_model(13, 1);
    onnx__graph_proto__free_unpacked(m->graph, NULL);
    m->graph = NULL;
    expect_fail(m, NULL, NN_EFORMAT, "no graph");
    /* Constant with an unsupported attribute */
    m = tiny_model(13, 1);
    free(m->graph->node[2]->attribute[0]->name);
    m->graph->node[2]->attribute[0]->name = ob_str("sparse_value");
    expect_fail(m, NULL, NN_EUNSUPPORTED,
                "node 'c' (Constant): attribute 'sparse_value'");
    /* input read but never produced */
    m = tiny_model(13, 1);
    free(m->graph->node[3]->input[1]);
    m->graph->node[3]->input[1] = ob_str("ghost");
    expect_fail(m, NULL, NN_EFORMAT, "'ghost'");
    /* cycle */
    m = tiny_model(13, 1);
    free(m->graph->node[1]->input[0]);
    m->graph->node[1]->input[0] = ob_str("Z");
    expect_fail(m, NULL, NN_EFORMAT, "cycle");
    /* graph input with an unsupported dtype, and with too many dims */
    m = tiny_model(13, 1);
    m->graph->input[0]->type->tensor_type->elem_type = 11;
    expect_fail(m, NULL, NN_EUNSUPPORTED, "graph input 'X': dtype DOUBLE");
    m = tiny_model(13, 1);
    int64_t big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    onnx__value_info_proto__free_unpacked(m->graph->input[0], NULL);
    m->graph->input[0] = mk_vi("X", 1, 9, big);
    expect_fail(m, NULL, NN_EUNSUPPORTED, "rank 9");
    /* garbage bytes */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    memset(&g, 0, sizeof g);
    ck_assert_int_eq(nn_onnx_load(&g, junk, sizeof junk, NULL, &err),
                     -NN_EFORMAT);
    nn_graph_free(&g);
    ck_assert_int_lt(nn_onnx_load(&g, NULL, 0, NULL, &err), 0);
    ck_assert_str_ne(err.msg, "");
    nn_graph_free(&g);
}
END_TEST

/* Replaces initializer W's data with an external reference. */
static Onnx__ModelProto *external_model(const char *loc, const char *offset,
                                        const char *length)
{
    Onnx__ModelProto *m = tiny_model(13, 1);
    Onnx__TensorProto *t = m->graph->initializer[0];
    free(t->raw_data.data);
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    OB_PUSH(t->external_data, t->n_external_data, mk_kv("location", loc));
    if (offset)
        OB_PUSH(t->external_data, t->n_external_data, mk_kv("offset", offset));
    if (length)
        OB_PUSH(t->external_data, t->n_external_data, mk_kv("length", length));
    OB_PUSH(t->external_data, t->n_external_data, mk_kv("checksum", "abc"));
    return m;
}

/* Loads a model of one Constant node `n` whose output "y" is the graph's
 * output; returns the load code, the graph in g. */
static int load_constant(Onnx__NodeProto *n, nn_graph_t *g, nn_error_t *err)
{
    Onnx__ModelProto *m = mk_model(13);
    OB_PUSH(m->graph->node, m->graph->n_node, n);
    OB_PUSH(m->graph->output, m->graph->n_output, mk_vi("y", 0, -1, NULL));
    return load_model(m, NULL, g, err);
}

/* The loader is the engine's Constant: each attribute form becomes a
 * constant value, and no node is left. */
START_TEST(test_constant_nodes)
{
    nn_graph_t g;
    nn_error_t err;
    const nn_value_t *v;

    Onnx__NodeProto *n = mk_node("Constant", "c", NULL, NULL, NULL, "y");
    float fl[3] = {1.5f, -2, 3};
    attr_floats(n, "value_floats", 3, fl);
    ck_assert_msg(load_constant(n, &g, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(g.n_nodes, 0);
    v = &g.values[nn_graph_find_value(&g, "y")];
    ck_assert(v->is_const);
    ck_assert_int_eq(v->t.rank, 1);
    ck_assert_int_eq(v->t.dims[0], 3);
    ck_assert_int_eq(v->t.dtype, NN_DTYPE_FLOAT);
    ck_assert_mem_eq(v->t.data, fl, sizeof fl);
    nn_graph_free(&g);

    n = mk_node("Constant", "c", NULL, NULL, NULL, "y");
    attr_int(n, "value_int", -42);
    ck_assert_msg(load_constant(n, &g, &err) == 0, "%s", err.msg);
    v = &g.values[nn_graph_find_value(&g, "y")];
    ck_assert_int_eq(v->t.rank, 0);
    ck_assert_int_eq(v->t.dtype, NN_DTYPE_INT64);
    ck_assert_int_eq(*(int64_t *)v->t.data, -42);
    nn_graph_free(&g);

    n = mk_node("Constant", "c", NULL, NULL, NULL, "y");
    int64_t tv[4] = {1, 2, 3, 4}, td[2] = {2, 2};
    Onnx__AttributeProto *a =
        mk_attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = mk_tensor("", 7, 2, td, tv, 4, 0);
    ck_assert_msg(load_constant(n, &g, &err) == 0, "%s", err.msg);
    v = &g.values[nn_graph_find_value(&g, "y")];
    ck_assert_int_eq(v->t.rank, 2);
    ck_assert_int_eq(v->t.dims[0], 2);
    ck_assert_int_eq(v->t.dims[1], 2);
    ck_assert_mem_eq(v->t.data, tv, sizeof tv);
    nn_graph_free(&g);

    n = mk_node("Constant", "c", NULL, NULL, NULL, "y");
    attr_string(n, "value_string", "x");
    ck_assert_int_eq(load_constant(n, &g, &err), -NN_EUNSUPPORTED);
    nn_graph_free(&g);
}
END_TEST

START_TEST(test_external_data)
{
    char dir[] = "/tmp/test_loader_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    float pad[2] = {99, 99}, w[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_uint_eq(fwrite(pad, sizeof pad, 1, f), 1);
    ck_assert_uint_eq(fwrite(w, sizeof w, 1, f), 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/short.bin", dir);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(w, 20, 1, f), 1);
    fclose(f);

    nn_graph_t g;
    nn_error_t err;
    int rc = load_model(external_model("weights.bin", "8", "24"), dir, &g,
                        &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    check_tiny(&g);
    ck_assert_str_eq(g.base_dir, dir);
    nn_graph_free(&g);
    rc = load_model(external_model("./weights.bin", "8", NULL), dir, &g, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    nn_graph_free(&g);

    expect_fail(external_model("../x", NULL, NULL), dir, NN_EFORMAT, "'../x'");
    expect_fail(external_model("a/../../x", NULL, NULL), dir, NN_EFORMAT,
                "relative path");
    expect_fail(external_model("/etc/passwd", NULL, NULL), dir, NN_EFORMAT,
                "'/etc/passwd'");
    expect_fail(external_model("weights.bin", NULL, NULL), NULL,
                NN_EUNSUPPORTED, "base directory");
    expect_fail(external_model("short.bin", NULL, NULL), dir, NN_EFORMAT,
                "too short");
    expect_fail(external_model("weights.bin", "16", NULL), dir, NN_EFORMAT,
                "too short");
    expect_fail(external_model("weights.bin", "-1", NULL), dir, NN_EFORMAT,
                "offset");
    expect_fail(external_model("weights.bin", "0", "12"), dir, NN_EFORMAT,
                "length");
    expect_fail(external_model("missing.bin", NULL, NULL), dir, NN_EIO,
                "missing.bin");
    expect_fail(external_model(".", NULL, NULL), dir, NN_EFORMAT,
                "not a file");

    snprintf(path, sizeof path, "%s/weights.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/short.bin", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_truncation_and_flips)
{
    size_t size;
    Onnx__ModelProto *m = tiny_model(13, 1);
    uint8_t *buf = ob_pack(m, &size);
    ob_free(m);
    int ok = 0;
    for (size_t len = 0; len < size; len++) {
        /* a copy of exactly len bytes, so ASan sees any over-read */
        uint8_t *cut = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(cut);
        memcpy(cut, buf, len);
        nn_graph_t g;
        nn_error_t err;
        memset(&g, 0, sizeof g);
        err.msg[0] = '\0';
        int rc = nn_onnx_load(&g, cut, len, NULL, &err);
        if (rc == 0)
            ok++;
        else
            ck_assert_msg(err.msg[0], "len %zu: empty message", len);
        nn_graph_free(&g);
        free(cut);
    }
    ck_assert_int_lt(ok, (int)size / 2);

    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t *mut = malloc(size);
    ck_assert_ptr_nonnull(mut);
    /* TEST_LOADER_FUZZ=N runs N mutations instead of 400 (manual soak) */
    const char *soak = getenv("TEST_LOADER_FUZZ");
    int iters = soak ? atoi(soak) : 400;
    for (int iter = 0; iter < iters; iter++) {
        memcpy(mut, buf, size);
        int flips = 1 + (int)(rng_next(&seed) % 3);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)(rng_next(&seed) % size);
            mut[pos] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
            if (rng_next(&seed) % 4 == 0)
                mut[pos] = (uint8_t)rng_next(&seed);
        }
        nn_graph_t g;
        nn_error_t err;
        memset(&g, 0, sizeof g);
        err.msg[0] = '\0';
        int rc = nn_onnx_load(&g, mut, size, NULL, &err);
        if (rc != 0)
            ck_assert_msg(err.msg[0], "iter %d: empty message", iter);
        nn_graph_free(&g);
    }
    free(mut);
    free(buf);
}
END_TEST

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, (size_t)n, 1, f) != 1) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n > 0 ? (size_t)n : 0;
    return buf;
}

START_TEST(test_read_tensor)
{
    size_t size;
    uint8_t *buf = read_file(
        ONNX_DATA "/node/test_relu/test_data_set_0/input_0.pb", &size);
    ck_assert_ptr_nonnull(buf);
    nn_tensor_t t;
    nn_error_t err;
    char *name = NULL;
    int rc = nn_onnx_read_tensor(buf, size, &t, &name, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(t.dtype, NN_DTYPE_FLOAT);
    ck_assert_int_eq(t.rank, 3);
    ck_assert_int_eq(t.dims[0], 3);
    ck_assert_int_eq(t.dims[1], 4);
    ck_assert_int_eq(t.dims[2], 5);
    ck_assert_ptr_nonnull(name);
    ck_assert_str_eq(name, "x");
    free(t.data);
    free(name);
    /* truncated: fails cleanly */
    ck_assert_int_lt(nn_onnx_read_tensor(buf, size - 7, &t, NULL, &err), 0);
    free(buf);

    /* int64 typed fields round trip */
    int64_t v[3] = {5, -6, 7}, d[1] = {3};
    Onnx__TensorProto *tp = mk_tensor("k", 7, 1, d, v, 3, 0);
    size = onnx__tensor_proto__get_packed_size(tp);
    buf = malloc(size);
    ck_assert_ptr_nonnull(buf);
    onnx__tensor_proto__pack(tp, buf);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    ck_assert_int_eq(nn_onnx_read_tensor(buf, size, &t, NULL, &err), 0);
    ck_assert_int_eq(t.dtype, NN_DTYPE_INT64);
    ck_assert_int_eq(((int64_t *)t.data)[1], -6);
    free(t.data);
    free(buf);
}
END_TEST

/* Loads every <root>/<case>/model.onnx: each loads or fails with a message. */
static void load_corpus(const char *root, int *loaded, int *failed)
{
    DIR *d = opendir(root);
    ck_assert_msg(d != NULL, "cannot open %s", root);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char dir[1024], path[1100];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        size_t size;
        uint8_t *buf = read_file(path, &size);
        if (!buf)
            continue;
        nn_graph_t g;
        nn_error_t err;
        memset(&g, 0, sizeof g);
        err.msg[0] = '\0';
        int rc = nn_onnx_load(&g, buf, size, dir, &err);
        if (rc == 0) {
            (*loaded)++;
            ck_assert_int_gt(g.n_outputs, 0);
            for (int i = 0; i < g.n_nodes; i++)
                ck_assert_ptr_nonnull(g.nodes[i].def);
        } else {
            (*failed)++;
            ck_assert_msg(err.msg[0], "%s: empty message", e->d_name);
            if (getenv("TEST_LOADER_VERBOSE"))
                printf("  %s: %s\n", e->d_name, err.msg);
        }
        nn_graph_free(&g);
        free(buf);
    }
    closedir(d);
}

START_TEST(test_pytorch_converted)
{
    int loaded = 0, failed = 0;
    load_corpus(ONNX_DATA "/pytorch-converted", &loaded, &failed);
    printf("pytorch-converted: %d loaded, %d refused\n", loaded, failed);
    ck_assert_int_gt(loaded + failed, 0);
}
END_TEST

START_TEST(test_node_corpus)
{
    int loaded = 0, failed = 0;
    load_corpus(ONNX_DATA "/node", &loaded, &failed);
    load_corpus(ONNX_DATA "/pytorch-operator", &loaded, &failed);
    printf("node + pytorch-operator: %d loaded, %d refused\n", loaded, failed);
    ck_assert_int_gt(loaded, 100);
}
END_TEST

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_graph_values);
    tcase_add_test(tc, test_graph_sort);
    tcase_add_test(tc, test_tiny_model);
    tcase_add_test(tc, test_omitted_io);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_constant_nodes);
    tcase_add_test(tc, test_external_data);
    tcase_add_test(tc, test_truncation_and_flips);
    tcase_add_test(tc, test_read_tensor);
    tcase_add_test(tc, test_pytorch_converted);
    tcase_add_test(tc, test_node_corpus);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loader_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
