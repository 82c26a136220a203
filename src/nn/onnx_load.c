/* ONNX loader: ModelProto (protobuf-c) -> nn_graph_t.
 *
 * Everything in the file is untrusted: every count, dim, size and name is
 * checked before use, and every failure leaves the graph in a state that
 * nn_graph_free can release. */
#include "onnx_load.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "op.h"

typedef struct nn_loader {
    nn_graph_t *g;
    const char *base_dir;
    unsigned char *produced; /* per value id: written by a node */
    size_t n_produced;
    nn_error_t *err;
} nn_loader_t;

static int nn_dtype_ok(int32_t t)
{
    return t == NN_DTYPE_FLOAT || t == NN_DTYPE_INT64;
}

static char *nn_strdup_checked(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- tensors ---------------------------------------------------------------- */

/* Copies little-endian element bytes into host order (src may be dst). */
static void nn_copy_le(void *dst, const void *src, size_t bytes, size_t esize)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    /* element by element through a temporary: src may equal dst */
    const unsigned char *s = src;
    unsigned char *d = dst, tmp[8];
    for (size_t i = 0; i < bytes; i += esize) {
        for (size_t b = 0; b < esize; b++)
            tmp[b] = s[i + esize - 1 - b];
        memcpy(d + i, tmp, esize);
    }
#else
    (void)esize;
    if (bytes && dst != src)
        memcpy(dst, src, bytes);
#endif
}

/* Strict decimal parse of a non-negative 64-bit integer. */
static int nn_parse_u64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* An external-data location must stay inside base_dir: relative, and no
 * ".." component (either separator style, so Windows-made files are
 * checked too). */
static int nn_location_safe(const char *loc)
{
    if (!*loc || loc[0] == '/' || loc[0] == '\\')
        return 0;
    const char *p = loc;
    while (*p) {
        size_t len = strcspn(p, "/\\");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += len;
        if (*p)
            p++;
    }
    return 1;
}

static int nn_read_external(const Onnx__TensorProto *tp, const char *what,
                            const char *base_dir, void *dst, size_t bytes,
                            nn_error_t *err)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e || !e->key)
            continue;
        if (strcmp(e->key, "location") == 0) {
            loc = e->value;
        } else if (strcmp(e->key, "offset") == 0) {
            if (nn_parse_u64(e->value, &offset) < 0)
                return nn_fail(err, NN_EFORMAT,
                               "%s: invalid external data offset '%s'", what,
                               e->value ? e->value : "");
        } else if (strcmp(e->key, "length") == 0) {
            if (nn_parse_u64(e->value, &length) < 0)
                return nn_fail(err, NN_EFORMAT,
                               "%s: invalid external data length '%s'", what,
                               e->value ? e->value : "");
        } /* "checksum" and unknown keys: ignored */
    }
    if (!loc)
        return nn_fail(err, NN_EFORMAT, "%s: external data without a location",
                       what);
    if (!base_dir)
        return nn_fail(err, NN_EUNSUPPORTED,
                       "%s: external data '%s' refused (model loaded without "
                       "a base directory)", what, loc);
    if (!nn_location_safe(loc))
        return nn_fail(err, NN_EFORMAT,
                       "%s: external data location '%s' must be a relative "
                       "path inside the model's folder", what, loc);
    if (length >= 0 && (uint64_t)length != (uint64_t)bytes)
        return nn_fail(err, NN_EFORMAT,
                       "%s: external data length %lld, expected %zu bytes",
                       what, (long long)length, bytes);

    size_t plen = strlen(base_dir) + strlen(loc) + 2;
    char *path = malloc(plen);
    if (!path)
        return nn_fail(err, NN_ENOMEM, "%s: out of memory", what);
    snprintf(path, plen, "%s/%s", base_dir, loc);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = nn_fail(err, NN_EIO, "%s: cannot open external data '%s': %s",
                         what, path, strerror(errno));
        free(path);
        return rc;
    }
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = nn_fail(err, NN_EIO, "%s: cannot stat '%s': %s", what, path,
                     strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = nn_fail(err, NN_EFORMAT, "%s: external data '%s' is not a file",
                     what, path);
        goto out;
    }
    if (st.st_size < offset || (uint64_t)(st.st_size - offset) < bytes) {
        rc = nn_fail(err, NN_EFORMAT,
                     "%s: external data '%s' is too short (%lld bytes, need "
                     "%zu at offset %lld)", what, path, (long long)st.st_size,
                     bytes, (long long)offset);
        goto out;
    }
    size_t done = 0;
    while (done < bytes) {
        size_t chunk = bytes - done;
        if (chunk > (size_t)1 << 30)
            chunk = (size_t)1 << 30;
        ssize_t r = pread(fd, (char *)dst + done, chunk,
                          (off_t)(offset + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = nn_fail(err, NN_EIO, "%s: reading '%s' failed: %s", what, path,
                         r < 0 ? strerror(errno) : "unexpected end of file");
            goto out;
        }
        done += (size_t)r;
    }
out:
    close(fd);
    free(path);
    return rc;
}

/* TensorProto -> nn_tensor_t with malloc'd data. `what` names the tensor in
 * messages ("initializer 'w'"). */
static int nn_tensor_from_proto(const Onnx__TensorProto *tp, const char *what,
                                const char *base_dir, nn_tensor_t *out,
                                nn_error_t *err)
{
    memset(out, 0, sizeof *out);
    int32_t dt = tp->has_data_type ? tp->data_type : 0;
    if (!nn_dtype_ok(dt))
        return nn_fail(err, NN_EUNSUPPORTED,
                       "%s: dtype %s is not supported (float32 and int64 only)",
                       what, nn_dtype_name(dt));
    if (tp->n_dims > NN_MAX_RANK)
        return nn_fail(err, NN_EUNSUPPORTED, "%s: rank %zu exceeds %d", what,
                       tp->n_dims, NN_MAX_RANK);
    size_t esize = nn_dtype_size((nn_dtype_t)dt);
    int64_t elems = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return nn_fail(err, NN_EFORMAT, "%s: negative dimension %lld",
                           what, (long long)d);
        if (d > 0 && elems > INT64_MAX / d)
            return nn_fail(err, NN_EFORMAT, "%s: too many elements", what);
        elems *= d;
    }
    if ((uint64_t)elems > (uint64_t)(PTRDIFF_MAX / (ptrdiff_t)esize))
        return nn_fail(err, NN_EFORMAT, "%s: too many elements", what);
    size_t bytes = (size_t)elems * esize;
    if (tp->segment)
        return nn_fail(err, NN_EUNSUPPORTED, "%s: segmented tensors are not "
                       "supported", what);

    int external = tp->has_data_location &&
                   tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (tp->has_data_location && !external &&
        tp->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
        return nn_fail(err, NN_EFORMAT, "%s: unknown data_location %d", what,
                       (int)tp->data_location);
    /* Check sizes before allocating, so a bogus huge dim fails cleanly. */
    if (!external) {
        if (tp->has_raw_data) {
            if (tp->raw_data.len != bytes)
                return nn_fail(err, NN_EFORMAT,
                               "%s: raw_data has %zu bytes, expected %zu",
                               what, tp->raw_data.len, bytes);
        } else if (dt == NN_DTYPE_FLOAT) {
            if (tp->n_float_data != (uint64_t)elems)
                return nn_fail(err, NN_EFORMAT,
                               "%s: %zu float_data values, expected %lld",
                               what, tp->n_float_data, (long long)elems);
        } else if (tp->n_int64_data != (uint64_t)elems) {
            return nn_fail(err, NN_EFORMAT,
                           "%s: %zu int64_data values, expected %lld", what,
                           tp->n_int64_data, (long long)elems);
        }
    }
    void *data = malloc(bytes ? bytes : 1);
    if (!data)
        return nn_fail(err, NN_ENOMEM, "%s: out of memory (%zu bytes)", what,
                       bytes);
    if (external) {
        int rc = nn_read_external(tp, what, base_dir, data, bytes, err);
        if (rc < 0) {
            free(data);
            return rc;
        }
        nn_copy_le(data, data, bytes, esize);
    } else if (tp->has_raw_data) {
        nn_copy_le(data, tp->raw_data.data, bytes, esize);
    } else if (bytes) {
        memcpy(data, dt == NN_DTYPE_FLOAT ? (const void *)tp->float_data
                                          : (const void *)tp->int64_data,
               bytes);
    }
    out->dtype = (nn_dtype_t)dt;
    out->rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++)
        out->dims[i] = tp->dims[i];
    out->data = data;
    return 0;
}

/* ---- values ------------------------------------------------------------------- */

static int nn_value_get(nn_loader_t *L, const char *name)
{
    int id = nn_graph_find_value(L->g, name);
    if (id >= 0)
        return id;
    id = nn_graph_add_value(L->g, name);
    if (id < 0)
        return nn_fail(L->err, -id, "cannot add value '%s'", name);
    return id;
}

static int nn_is_produced(const nn_loader_t *L, int id)
{
    return (size_t)id < L->n_produced && L->produced[id];
}

static int nn_mark_produced(nn_loader_t *L, int id)
{
    if ((size_t)id >= L->n_produced) {
        size_t n = (size_t)L->g->cap_values > (size_t)id + 1
                       ? (size_t)L->g->cap_values
                       : (size_t)id + 1;
        unsigned char *p = realloc(L->produced, n);
        if (!p)
            return nn_fail(L->err, NN_ENOMEM, "out of memory");
        memset(p + L->n_produced, 0, n - L->n_produced);
        L->produced = p;
        L->n_produced = n;
    }
    L->produced[id] = 1;
    return 0;
}

/* Reads a graph input/output type: dtype and shape (dim_param or missing ->
 * -1). require: inputs need a tensor type with a shape; outputs may leave
 * parts undeclared. */
static int nn_type_from_proto(const Onnx__TypeProto *tp, const char *what,
                              int require, nn_tensor_t *t, nn_error_t *err)
{
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) {
        if (require)
            return nn_fail(err, NN_EUNSUPPORTED, "%s has no type", what);
        return 0;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type)
        return nn_fail(err, NN_EUNSUPPORTED, "%s is not a tensor", what);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int32_t dt = tt->has_elem_type ? tt->elem_type : 0;
    if (!nn_dtype_ok(dt) && (require || dt != 0))
        return nn_fail(err, NN_EUNSUPPORTED,
                       "%s: dtype %s is not supported (float32 and int64 only)",
                       what, nn_dtype_name(dt));
    t->dtype = (nn_dtype_t)dt;
    if (!tt->shape) {
        if (require)
            return nn_fail(err, NN_EUNSUPPORTED, "%s has no shape", what);
        return 0;
    }
    if (tt->shape->n_dim > NN_MAX_RANK)
        return nn_fail(err, NN_EUNSUPPORTED, "%s: rank %zu exceeds %d", what,
                       tt->shape->n_dim, NN_MAX_RANK);
    t->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < t->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d && d->value_case ==
                     ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return nn_fail(err, NN_EFORMAT, "%s: negative dimension %lld",
                               what, (long long)d->dim_value);
            t->dims[i] = d->dim_value;
        } else {
            t->dims[i] = -1;
        }
    }
    return 0;
}

/* ---- nodes ---------------------------------------------------------------------- */

static nn_attr_type_t nn_attr_kind(const Onnx__AttributeProto *ap)
{
    int type = ap->has_type ? (int)ap->type : 0;
    if (type == 0) { /* IR version 1: infer from the field in use */
        if (ap->has_f) type = NN_ATTR_FLOAT;
        else if (ap->has_i) type = NN_ATTR_INT;
        else if (ap->has_s) type = NN_ATTR_STRING;
        else if (ap->t) type = NN_ATTR_TENSOR;
        else if (ap->n_floats) type = NN_ATTR_FLOATS;
        else if (ap->n_ints) type = NN_ATTR_INTS;
    }
    switch (type) {
    case NN_ATTR_FLOAT:
    case NN_ATTR_INT:
    case NN_ATTR_STRING:
    case NN_ATTR_TENSOR:
    case NN_ATTR_FLOATS:
    case NN_ATTR_INTS:
        return (nn_attr_type_t)type;
    default:
        return NN_ATTR_OTHER;
    }
}

static int nn_attr_from_proto(nn_loader_t *L, const nn_node_t *node,
                              nn_attr_t *a, const Onnx__AttributeProto *ap)
{
    nn_error_t *err = L->err;
    if (!ap->name || !*ap->name)
        return nn_node_fail(err, node, NN_EFORMAT, "attribute without a name");
    if (!(a->name = strdup(ap->name)))
        return nn_fail(err, NN_ENOMEM, "out of memory");
    a->type = nn_attr_kind(ap);
    switch (a->type) {
    case NN_ATTR_FLOAT:
        a->f = ap->f;
        break;
    case NN_ATTR_INT:
        a->i = ap->i;
        break;
    case NN_ATTR_STRING:
        if (!(a->s = malloc(ap->s.len + 1)))
            return nn_fail(err, NN_ENOMEM, "out of memory");
        if (ap->s.len)
            memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = '\0';
        a->n = ap->s.len > INT_MAX ? INT_MAX : (int)ap->s.len;
        break;
    case NN_ATTR_FLOATS:
    case NN_ATTR_INTS: {
        int ints = a->type == NN_ATTR_INTS;
        size_t n = ints ? ap->n_ints : ap->n_floats;
        if (n > INT_MAX / 8)
            return nn_node_fail(err, node, NN_EFORMAT,
                                "attribute '%s' has too many values", a->name);
        size_t bytes = n * (ints ? sizeof(int64_t) : sizeof(float));
        void *p = malloc(bytes ? bytes : 1);
        if (!p)
            return nn_fail(err, NN_ENOMEM, "out of memory");
        if (bytes)
            memcpy(p, ints ? (const void *)ap->ints : (const void *)ap->floats,
                   bytes);
        if (ints)
            a->ints = p;
        else
            a->floats = p;
        a->n = (int)n;
        break;
    }
    case NN_ATTR_TENSOR: {
        if (!ap->t) {
            a->type = NN_ATTR_OTHER;
            break;
        }
        int32_t dt = ap->t->has_data_type ? ap->t->data_type : 0;
        if (!nn_dtype_ok(dt)) {
            /* Only ops that read it can tell whether that matters. */
            a->type = NN_ATTR_OTHER;
            break;
        }
        if (!(a->tensor = calloc(1, sizeof *a->tensor)))
            return nn_fail(err, NN_ENOMEM, "out of memory");
        char what[400];
        snprintf(what, sizeof what, "node '%s' (%s): attribute '%s'",
                 node->name, node->op_type, a->name);
        int rc = nn_tensor_from_proto(ap->t, what, L->base_dir, a->tensor, err);
        if (rc < 0)
            return rc;
        break;
    }
    default:
        break;
    }
    return 0;
}

/* Constant node -> constant value named after its output. This is the
 * engine's one implementation of Constant: no Constant node survives
 * loading, so there is no Constant op. */
static int nn_load_constant(nn_loader_t *L, const Onnx__NodeProto *np,
                            const char *name)
{
    nn_error_t *err = L->err;
    nn_node_t tmp = {.name = (char *)name, .op_type = "Constant"};
    if (np->n_output != 1 || !np->output[0][0])
        return nn_node_fail(err, &tmp, NN_EFORMAT, "expected 1 output, got %zu",
                            np->n_output);
    if (np->n_input != 0)
        return nn_node_fail(err, &tmp, NN_EFORMAT, "expected no inputs");
    if (np->n_attribute != 1 || !np->attribute[0]->name)
        return nn_node_fail(err, &tmp, NN_EFORMAT,
                            "expected exactly one attribute, got %zu",
                            np->n_attribute);
    const Onnx__AttributeProto *ap = np->attribute[0];
    nn_attr_type_t kind = nn_attr_kind(ap);
    nn_tensor_t t;
    memset(&t, 0, sizeof t);
    const char *an = ap->name;
    if (strcmp(an, "value") == 0 && kind == NN_ATTR_TENSOR && ap->t) {
        char what[400];
        snprintf(what, sizeof what, "node '%s' (Constant): attribute 'value'",
                 name);
        int rc = nn_tensor_from_proto(ap->t, what, L->base_dir, &t, err);
        if (rc < 0)
            return rc;
    } else if ((strcmp(an, "value_float") == 0 && kind == NN_ATTR_FLOAT) ||
               (strcmp(an, "value_int") == 0 && kind == NN_ATTR_INT)) {
        int is_f = kind == NN_ATTR_FLOAT;
        t.dtype = is_f ? NN_DTYPE_FLOAT : NN_DTYPE_INT64;
        t.rank = 0;
        if (!(t.data = malloc(sizeof(int64_t))))
            return nn_fail(err, NN_ENOMEM, "out of memory");
        if (is_f)
            *(float *)t.data = ap->f;
        else
            *(int64_t *)t.data = ap->i;
    } else if ((strcmp(an, "value_floats") == 0 && kind == NN_ATTR_FLOATS) ||
               (strcmp(an, "value_ints") == 0 && kind == NN_ATTR_INTS)) {
        int is_f = kind == NN_ATTR_FLOATS;
        size_t n = is_f ? ap->n_floats : ap->n_ints;
        if (n > (size_t)INT64_MAX / 8)
            return nn_node_fail(err, &tmp, NN_EFORMAT, "too many values");
        size_t bytes = n * (is_f ? sizeof(float) : sizeof(int64_t));
        t.dtype = is_f ? NN_DTYPE_FLOAT : NN_DTYPE_INT64;
        t.rank = 1;
        t.dims[0] = (int64_t)n;
        if (!(t.data = malloc(bytes ? bytes : 1)))
            return nn_fail(err, NN_ENOMEM, "out of memory");
        if (bytes)
            memcpy(t.data, is_f ? (const void *)ap->floats
                                : (const void *)ap->ints, bytes);
    } else {
        return nn_node_fail(err, &tmp, NN_EUNSUPPORTED,
                            "attribute '%s' is not supported", an);
    }

    const char *out = np->output[0];
    int id = nn_graph_find_value(L->g, out);
    if (id >= 0) {
        nn_value_t *v = &L->g->values[id];
        if (v->is_const || v->is_input || nn_is_produced(L, id)) {
            free(t.data);
            return nn_node_fail(err, &tmp, NN_EFORMAT,
                                "output '%s' is produced twice", out);
        }
        /* Already referenced by an earlier (unsorted) node: fill in place. */
        nn_tensor_set_shape(&v->t, t.dtype, t.rank, t.dims);
        v->t.data = t.data;
        v->is_const = 1;
        return 0;
    }
    id = nn_graph_add_const(L->g, out, t.dtype, t.rank, t.dims, t.data);
    if (id < 0)
        return nn_fail(err, -id, "cannot add constant '%s'", out);
    return 0;
}

static int nn_is_constant(const char *op_type)
{
    return strcmp(op_type, "Constant") == 0;
}

int nn_onnx_op_supported(const char *op_type)
{
    return nn_is_constant(op_type) || nn_op_find(op_type) != NULL;
}

static int nn_add_unused_output(nn_loader_t *L, const nn_node_t *node, int k)
{
    char name[300];
    for (int n = 0; n < 1000; n++) {
        if (n == 0)
            snprintf(name, sizeof name, "%s:unused_output_%d", node->name, k);
        else
            snprintf(name, sizeof name, "%s:unused_output_%d_%d", node->name,
                     k, n);
        if (nn_graph_find_value(L->g, name) < 0)
            return nn_value_get(L, name);
    }
    return nn_node_fail(L->err, node, NN_EFORMAT,
                        "cannot name omitted output %d", k);
}

static int nn_load_node(nn_loader_t *L, const Onnx__NodeProto *np, size_t index)
{
    nn_graph_t *g = L->g;
    nn_error_t *err = L->err;
    const char *op = np->op_type;
    if (!op || !*op)
        return nn_fail(err, NN_EFORMAT, "node %zu has no op_type", index);

    char *name;
    if (np->name && *np->name) {
        name = strdup(np->name);
    } else {
        size_t len = strlen(op) + 24;
        if ((name = malloc(len)))
            snprintf(name, len, "%s_%zu", op, index);
    }
    if (!name)
        return nn_fail(err, NN_ENOMEM, "out of memory");

    int rc = 0;
    if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0) {
        rc = nn_fail(err, NN_EUNSUPPORTED,
                     "node '%s' (%s): domain '%s' is not supported", name, op,
                     np->domain);
        free(name);
        return rc;
    }
    if (nn_is_constant(op)) {
        rc = nn_load_constant(L, np, name);
        free(name);
        return rc;
    }
    const nn_op_def_t *def = nn_op_find(op);
    if (!def) {
        rc = nn_fail(err, NN_EUNSUPPORTED,
                     "node '%s' (%s): operator not supported", name, op);
        free(name);
        return rc;
    }
    if (np->n_input > INT_MAX / 8 || np->n_output > INT_MAX / 8 ||
        np->n_attribute > INT_MAX / 8) {
        rc = nn_fail(err, NN_EFORMAT, "node '%s' (%s): too many inputs, "
                     "outputs or attributes", name, op);
        free(name);
        return rc;
    }

    if (g->n_nodes == g->cap_nodes) {
        if (g->cap_nodes > INT_MAX / 4) {
            free(name);
            return nn_fail(err, NN_ENOMEM, "too many nodes");
        }
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        nn_node_t *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            free(name);
            return nn_fail(err, NN_ENOMEM, "out of memory");
        }
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    /* From here on the node is in the graph: nn_graph_free releases it. */
    nn_node_t *node = &g->nodes[g->n_nodes++];
    memset(node, 0, sizeof *node);
    node->name = name;
    nn_node_set_op(node, def->op);
    node->opset = g->opset;
    node->fusion.residual = -1;

    node->inputs = malloc((np->n_input + 1) * sizeof(int));
    /* trailing "" outputs are just omitted optional outputs */
    size_t n_out = np->n_output;
    while (n_out > 0 && !np->output[n_out - 1][0])
        n_out--;
    node->outputs = malloc((n_out + 1) * sizeof(int));
    node->attrs = calloc(np->n_attribute + 1, sizeof(nn_attr_t));
    if (!node->inputs || !node->outputs || !node->attrs)
        return nn_fail(err, NN_ENOMEM, "out of memory");

    for (size_t i = 0; i < np->n_input; i++) {
        int id = -1;
        if (np->input[i][0] && (id = nn_value_get(L, np->input[i])) < 0)
            return id;
        node->inputs[node->n_inputs++] = id;
    }
    for (size_t i = 0; i < n_out; i++) {
        const char *vn = np->output[i];
        int id;
        if (!vn[0]) {
            /* An omitted output before a used one: give it a private value
             * so that later passes never meet a -1 output. */
            if ((id = nn_add_unused_output(L, node, (int)i)) < 0)
                return id;
        } else {
            id = nn_graph_find_value(g, vn);
            if (id >= 0) {
                const nn_value_t *v = &g->values[id];
                if (v->is_const || v->is_input)
                    return nn_node_fail(err, node, NN_EFORMAT,
                                        "output '%s' is also a %s", vn,
                                        v->is_const ? "constant"
                                                    : "graph input");
                if (nn_is_produced(L, id))
                    return nn_node_fail(err, node, NN_EFORMAT,
                                        "output '%s' is produced twice", vn);
            } else if ((id = nn_value_get(L, vn)) < 0) {
                return id;
            }
        }
        if ((rc = nn_mark_produced(L, id)) < 0)
            return rc;
        node->outputs[node->n_outputs++] = id;
    }
    node->n_attrs = (int)np->n_attribute; /* zeroed entries free cleanly */
    for (size_t i = 0; i < np->n_attribute; i++) {
        if ((rc = nn_attr_from_proto(L, node, &node->attrs[i],
                                     np->attribute[i])) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(node->attrs[j].name, node->attrs[i].name) == 0)
                return nn_node_fail(err, node, NN_EFORMAT,
                                    "attribute '%s' appears twice",
                                    node->attrs[i].name);
    }
    return 0;
}

/* ---- model ------------------------------------------------------------------------ */

static int nn_load_graph(nn_loader_t *L, const Onnx__ModelProto *m)
{
    nn_graph_t *g = L->g;
    nn_error_t *err = L->err;
    int rc;

    int64_t opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0) {
            int64_t v = o->has_version ? o->version : 0;
            if (v > opset)
                opset = v;
        }
    }
    if (opset < 0)
        return nn_fail(err, NN_EUNSUPPORTED,
                       "the model imports no ai.onnx opset");
    if (opset < NN_OPSET_MIN || opset > NN_OPSET_MAX)
        return nn_fail(err, NN_EUNSUPPORTED,
                       "ai.onnx opset %lld is not supported (%d to %d only)",
                       (long long)opset, NN_OPSET_MIN, NN_OPSET_MAX);
    g->opset = (int)opset;

    const Onnx__GraphProto *gp = m->graph;
    if (!gp)
        return nn_fail(err, NN_EFORMAT, "the model has no graph");
    if (gp->n_sparse_initializer)
        return nn_fail(err, NN_EUNSUPPORTED,
                       "sparse initializers are not supported");
    if (gp->n_input > INT_MAX / 8 || gp->n_output > INT_MAX / 8 ||
        gp->n_initializer > INT_MAX / 8 || gp->n_node > INT_MAX / 8)
        return nn_fail(err, NN_EFORMAT, "the graph is too large");

    char what[400];
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name)
            return nn_fail(err, NN_EFORMAT, "initializer %zu has no name", i);
        if (nn_graph_find_value(g, tp->name) >= 0)
            return nn_fail(err, NN_EFORMAT, "initializer '%s' appears twice",
                           tp->name);
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        nn_tensor_t t;
        if ((rc = nn_tensor_from_proto(tp, what, L->base_dir, &t, err)) < 0)
            return rc;
        int id = nn_graph_add_const(g, tp->name, t.dtype, t.rank, t.dims,
                                    t.data);
        if (id < 0)
            return nn_fail(err, -id, "cannot add initializer '%s'", tp->name);
    }

    g->inputs = malloc((gp->n_input + 1) * sizeof(int));
    g->outputs = malloc((gp->n_output + 1) * sizeof(int));
    if (!g->inputs || !g->outputs)
        return nn_fail(err, NN_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name)
            return nn_fail(err, NN_EFORMAT, "graph input %zu has no name", i);
        int id = nn_graph_find_value(g, vi->name);
        if (id >= 0 && g->values[id].is_const)
            continue; /* an initializer listed as input (IR < 4): constant */
        if (id >= 0)
            return nn_fail(err, NN_EFORMAT, "graph input '%s' appears twice",
                           vi->name);
        snprintf(what, sizeof what, "graph input '%s'", vi->name);
        nn_tensor_t t;
        memset(&t, 0, sizeof t);
        if ((rc = nn_type_from_proto(vi->type, what, 1, &t, err)) < 0)
            return rc;
        if ((id = nn_value_get(L, vi->name)) < 0)
            return id;
        nn_tensor_set_shape(&g->values[id].t, t.dtype, t.rank, t.dims);
        g->values[id].is_input = 1;
        g->inputs[g->n_inputs++] = id;
    }

    for (size_t i = 0; i < gp->n_node; i++)
        if ((rc = nn_load_node(L, gp->node[i], i)) < 0)
            return rc;

    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name)
            return nn_fail(err, NN_EFORMAT, "graph output %zu has no name", i);
        int id = nn_graph_find_value(g, vi->name);
        if (id < 0 || !(g->values[id].is_const || g->values[id].is_input ||
                        nn_is_produced(L, id)))
            return nn_fail(err, NN_EFORMAT,
                           "graph output '%s' is not produced by any node",
                           vi->name);
        nn_value_t *v = &g->values[id];
        if (v->is_output)
            return nn_fail(err, NN_EFORMAT, "graph output '%s' appears twice",
                           vi->name);
        snprintf(what, sizeof what, "graph output '%s'", vi->name);
        nn_tensor_t t;
        memset(&t, 0, sizeof t);
        if ((rc = nn_type_from_proto(vi->type, what, 0, &t, err)) < 0)
            return rc;
        /* constants and inputs keep their own type */
        if (!v->is_const && !v->is_input)
            nn_tensor_set_shape(&v->t, t.dtype, t.rank, t.dims);
        v->is_output = 1;
        g->outputs[g->n_outputs++] = id;
    }
    if (g->n_outputs == 0)
        return nn_fail(err, NN_EFORMAT, "the graph has no outputs");

    return nn_graph_sort(g, err);
}

int nn_onnx_load(nn_graph_t *g, const void *data, size_t size,
                 const char *base_dir, nn_error_t *err)
{
    if (!g || (!data && size))
        return nn_fail(err, NN_EINVAL, "nn_onnx_load: invalid arguments");
    static const uint8_t empty[1] = {0};
    Onnx__ModelProto *m =
        onnx__model_proto__unpack(NULL, size, data ? data : empty);
    if (!m)
        return nn_fail(err, NN_EFORMAT,
                       "not an ONNX model (protobuf parsing failed)");
    int rc = 0;
    if (base_dir && !(g->base_dir = strdup(base_dir))) {
        rc = nn_fail(err, NN_ENOMEM, "out of memory");
    } else {
        nn_loader_t L = {.g = g, .base_dir = base_dir, .err = err};
        rc = nn_load_graph(&L, m);
        free(L.produced);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return rc;
}

int nn_onnx_read_tensor(const void *data, size_t size, nn_tensor_t *out,
                        char **name, nn_error_t *err)
{
    if (!out || (!data && size))
        return nn_fail(err, NN_EINVAL, "nn_onnx_read_tensor: invalid arguments");
    memset(out, 0, sizeof *out);
    if (name)
        *name = NULL;
    static const uint8_t empty[1] = {0};
    Onnx__TensorProto *tp =
        onnx__tensor_proto__unpack(NULL, size, data ? data : empty);
    if (!tp)
        return nn_fail(err, NN_EFORMAT,
                       "not a TensorProto (protobuf parsing failed)");
    char what[400];
    snprintf(what, sizeof what, "tensor '%s'", tp->name ? tp->name : "");
    int rc = nn_tensor_from_proto(tp, what, NULL, out, err);
    if (rc == 0 && name && !(*name = nn_strdup_checked(tp->name))) {
        free(out->data);
        memset(out, 0, sizeof *out);
        rc = nn_fail(err, NN_ENOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return rc;
}
