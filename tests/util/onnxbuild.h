/* ONNX models built in C with the protobuf-c structs, for tests that need
 * a model of a given shape without Python. Everything is malloc'd, so
 * that onnx__model_proto__free_unpacked (ob_free) releases a whole model;
 * allocation failures fail the running check test. */
#ifndef ONNXBUILD_H
#define ONNXBUILD_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "onnx.pb-c.h"

/* Appends item to the array arr of n entries. */
#define OB_PUSH(arr, n, item)                                 \
    do {                                                      \
        void *p_ = realloc((arr), ((n) + 1) * sizeof *(arr)); \
        ck_assert_ptr_nonnull(p_);                            \
        (arr) = p_;                                           \
        (arr)[(n)++] = (item);                                \
    } while (0)

char *ob_str(const char *s);    /* strdup */
void *ob_zalloc(size_t n);      /* calloc */

/* A tensor of n values (dtype 1 float, 6 int32, 7 int64), as raw_data
 * when raw, else in the typed field. */
Onnx__TensorProto *mk_tensor(const char *name, int32_t dtype, int rank, const int64_t *dims,
                             const void *vals, size_t n, int raw);
Onnx__StringStringEntryProto *mk_kv(const char *k, const char *v);
/* A value's type: elem type, rank (< 0: none) and dims (< 0: "N"). */
Onnx__ValueInfoProto *mk_vi(const char *name, int32_t elem, int rank, const int64_t *dims);
/* A node of up to three inputs (NULL: none) and one output. */
Onnx__NodeProto *mk_node(const char *op, const char *name, const char *in0, const char *in1,
                         const char *in2, const char *out);
Onnx__AttributeProto *mk_attr(Onnx__NodeProto *n, const char *name,
                              Onnx__AttributeProto__AttributeType type);
void attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
void attr_float(Onnx__NodeProto *n, const char *name, float v);
void attr_floats(Onnx__NodeProto *n, const char *name, int k, const float *v);
void attr_ints(Onnx__NodeProto *n, const char *name, int k, const int64_t *v);
void attr_string(Onnx__NodeProto *n, const char *name, const char *s);
/* An empty graph "g" importing the default domain at opset. */
Onnx__ModelProto *mk_model(int64_t opset);
/* The serialised model (malloc'd, *size bytes). */
uint8_t *ob_pack(const Onnx__ModelProto *m, size_t *size);
void ob_free(Onnx__ModelProto *m);

#endif
