/* ONNX model builders for tests (onnxbuild.h). */
#include "onnxbuild.h"

#include <stdlib.h>
#include <string.h>

char *ob_str(const char *s)
{
    char *c = strdup(s);
    ck_assert_ptr_nonnull(c);
    return c;
}

void *ob_zalloc(size_t n)
{
    void *p = calloc(1, n);
    ck_assert_ptr_nonnull(p);
    return p;
}

Onnx__TensorProto *mk_tensor(const char *name, int32_t dtype, int rank,
                                    const int64_t *dims, const void *vals,
                                    size_t n, int raw)
{
    Onnx__TensorProto *t = ob_zalloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = ob_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    for (int i = 0; i < rank; i++)
        OB_PUSH(t->dims, t->n_dims, dims[i]);
    size_t es = dtype == 1 ? 4 : dtype == 6 ? 4 : 8;
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.len = n * es;
        t->raw_data.data = malloc(n * es + 1);
        ck_assert_ptr_nonnull(t->raw_data.data);
        memcpy(t->raw_data.data, vals, n * es);
    } else if (dtype == 1) {
        for (size_t i = 0; i < n; i++)
            OB_PUSH(t->float_data, t->n_float_data, ((const float *)vals)[i]);
    } else if (dtype == 7) {
        for (size_t i = 0; i < n; i++)
            OB_PUSH(t->int64_data, t->n_int64_data, ((const int64_t *)vals)[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            OB_PUSH(t->int32_data, t->n_int32_data, ((const int32_t *)vals)[i]);
    }
    return t;
}

Onnx__StringStringEntryProto *mk_kv(const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = ob_zalloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = ob_str(k);
    e->value = ob_str(v);
    return e;
}

/* dims[i] < 0 -> dim_param "N" */
Onnx__ValueInfoProto *mk_vi(const char *name, int32_t elem, int rank,
                                   const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = ob_zalloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = ob_str(name);
    Onnx__TypeProto *tp = ob_zalloc(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = ob_zalloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = ob_zalloc(sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = ob_zalloc(sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] >= 0) {
                d->value_case =
                    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else {
                d->value_case =
                    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = ob_str("N");
            }
            OB_PUSH(sh->dim, sh->n_dim, d);
        }
        tt->shape = sh;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

Onnx__NodeProto *mk_node(const char *op, const char *name,
                                const char *in0, const char *in1,
                                const char *in2, const char *out)
{
    Onnx__NodeProto *n = ob_zalloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = ob_str(op);
    if (name)
        n->name = ob_str(name);
    const char *ins[3] = {in0, in1, in2};
    for (int i = 0; i < 3; i++)
        if (ins[i])
            OB_PUSH(n->input, n->n_input, ob_str(ins[i]));
    OB_PUSH(n->output, n->n_output, ob_str(out));
    return n;
}

Onnx__AttributeProto *mk_attr(Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = ob_zalloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = ob_str(name);
    a->has_type = 1;
    a->type = type;
    OB_PUSH(n->attribute, n->n_attribute, a);
    return a;
}

void attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a =
        mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void attr_float(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a =
        mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void attr_floats(Onnx__NodeProto *n, const char *name, int k,
                        const float *v)
{
    Onnx__AttributeProto *a =
        mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    for (int i = 0; i < k; i++)
        OB_PUSH(a->floats, a->n_floats, v[i]);
}

void attr_ints(Onnx__NodeProto *n, const char *name, int k,
                      const int64_t *v)
{
    Onnx__AttributeProto *a =
        mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    for (int i = 0; i < k; i++)
        OB_PUSH(a->ints, a->n_ints, v[i]);
}

void attr_string(Onnx__NodeProto *n, const char *name, const char *s)
{
    Onnx__AttributeProto *a =
        mk_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(s);
    a->s.data = (uint8_t *)ob_str(s);
}

Onnx__ModelProto *mk_model(int64_t opset)
{
    Onnx__ModelProto *m = ob_zalloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    Onnx__OperatorSetIdProto *o = ob_zalloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = ob_str("");
    o->has_version = 1;
    o->version = opset;
    OB_PUSH(m->opset_import, m->n_opset_import, o);
    m->graph = ob_zalloc(sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    m->graph->name = ob_str("g");
    return m;
}

uint8_t *ob_pack(const Onnx__ModelProto *m, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(*size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(onnx__model_proto__pack(m, buf), *size);
    return buf;
}

void ob_free(Onnx__ModelProto *m)
{
    onnx__model_proto__free_unpacked(m, NULL);
}
