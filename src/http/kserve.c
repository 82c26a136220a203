/* KServe v2 / Open Inference Protocol over REST: server metadata, model
 * metadata and inference, with Triton's binary tensor data and
 * classification extensions.
 *
 * A model takes one input, under the graph's input name, in either form:
 *   FP32  [N, C, H, W]   images already preprocessed (the graph's tensor);
 *   BYTES [N] or [N, 1]  encoded images (JPEG, PNG), base64 strings in JSON
 *                        or 4-byte-length-prefixed in the binary part;
 *                        the workers decode and preprocess them as for
 *                        classify.
 * Model metadata lists the FP32 form only: it is the graph's real tensor,
 * and generic clients (tritonclient, perf_analyzer) send every input
 * listed, so a second, BYTES, input would make them send both. BYTES under
 * the same name is our addition, chosen by the datatype.
 *
 * The one output is the graph's, FP32 [N, ...] exactly as the model
 * computes it; with the output parameter "classification": K it is BYTES
 * [N, K], strings "score:index:label" sorted by the raw output value, as
 * Triton's classification extension does (no softmax added: for a graph
 * that ends in Softmax the score is a probability, otherwise a logit).
 *
 * Everything here runs on the loop thread. The jobs borrow the FP32 input
 * (in kserve_state_t, freed with the request) or the image parts (into
 * the body, or owned buffers that body_free releases). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/status.h"
#include "http/submit.h"
#include "util/base64.h"

#define HEADER_LENGTH "Inference-Header-Content-Length"
/* The protocol's platform name for ONNX models. */
#define PLATFORM "onnx_onnxv1"

/* What an infer request asked for: the request's handler state. */
typedef struct kserve_state {
    work_t work;
    float *tensors;     /* FP32 input [N, C, H, W]: the jobs borrow it */
    char *id;           /* the request's "id", NULL when it gave none */
    int classification; /* K class strings per image; 0: the raw tensor */
    int binary;         /* the output's data goes in the binary part */
} kserve_state_t;

/* An infer request being parsed. */
typedef struct parse {
    request_t *r;
    const classifier_t *m;
    kserve_state_t *st;
    const char *input;     /* the model's input name, for messages */
    int has_bin;           /* Inference-Header-Content-Length was given */
    const uint8_t *bin;    /* the body after the JSON header */
    size_t bin_len, bin_used;
    int n;                 /* images (the batch) */
    char msg[512];
} parse_t;

static ic_err_t fail(parse_t *p, ic_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the message; returns err, for `return fail(...)`. */
static ic_err_t fail(parse_t *p, ic_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    return err;
}

/* ---- metadata --------------------------------------------------------------------- */

static void server_metadata_begin(request_t *r)
{
    request_answer_json(r, 200, json_pack("{s:s, s:s, s:[s, s]}", "name", "imgclassd",
                                      "version", IMGCLASSD_VERSION, "extensions",
                                      "binary_tensor_data", "classification"));
}

/* The output's shape with the batch axis first: -1 (symbolic) or n. */
static json_t *output_shape(const classifier_t *m, json_int_t batch)
{
    const nn_tensor_info_t *t = nn_model_output(m->nn, 0);
    json_t *a = json_array();
    for (int i = 0; a && i < t->rank; i++)
        if (json_array_append_new(a, json_integer(i == 0 ? batch : t->dims[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static void model_metadata(request_t *r, const model_slot_t *slot)
{
    if (!slot->current) {
        /* Inputs and outputs come from the loaded graph: without one there
         * is no version to describe, as for an unknown version. */
        if (slot->loading)
            request_answer_error(r, 404,
                                 "model '%s' is loading: no version is available yet",
                                 slot->name);
        else
            request_answer_error(r, 404, "model '%s' has no version available: %s",
                                 slot->name,
                                 slot->last_error ? slot->last_error : "not loaded");
        return;
    }
    const classifier_t *m = slot->current->c;
    const nn_tensor_info_t *in = nn_model_input(m->nn, 0);
    const nn_tensor_info_t *out = nn_model_output(m->nn, 0);
    request_answer_json(
        r, 200,
        json_pack("{s:s, s:[s], s:s, s:[{s:s, s:s, s:[i, i, i, i]}], s:[{s:s, s:s, s:o}]}",
                  "name", m->name, "versions", m->cfg.version, "platform", PLATFORM,
                  "inputs", "name", in->name, "datatype", "FP32", "shape", -1,
                  m->channels, m->height, m->width, "outputs", "name", out->name,
                  "datatype", "FP32", "shape", output_shape(m, -1)));
}

/* ---- little helpers --------------------------------------------------------------- */

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static void put_le32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

/* The protocol's FP32 is little-endian whatever the host's order. */
static float le_float(const uint8_t *b)
{
    uint32_t u = le32(b);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A client's string fit to echo in a message: cut short, and anything
 * but printable ASCII replaced, since an error body must be valid UTF-8
 * (jansson refuses to build it otherwise) and a cut may split a
 * character. */
static const char *echo(const char *s, char buf[static 64])
{
    size_t i = 0;
    for (; s[i] && i < 63; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static void fmt_shape(const int64_t *dims, int rank, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? "," : "",
                              (long long)dims[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* ---- request: body and parameters ------------------------------------------------- */

/* Splits the body at Inference-Header-Content-Length (binary tensor data
 * extension): the JSON header first, the inputs' raw bytes after it.
 * Without the header the whole body is JSON. */
static ic_err_t split_body(parse_t *p, size_t *json_len)
{
    const body_t *b = &p->r->body;
    *json_len = b->len;
    const char *h = request_header(p->r, HEADER_LENGTH);
    if (!h)
        return IC_OK;
    size_t n = 0, digits = strspn(h, "0123456789");
    if (digits == 0 || h[digits] != '\0' || digits > 15)
        return fail(p, IC_EBODY_MALFORMED, HEADER_LENGTH " must be a byte count, not '%s'",
                    echo(h, (char[64]){0}));
    for (size_t i = 0; i < digits; i++)
        n = n * 10 + (size_t)(h[i] - '0');
    if (n == 0 || n > b->len)
        return fail(p, IC_EBODY_MALFORMED, HEADER_LENGTH " is %zu but the body holds %zu bytes", n,
                    b->len);
    *json_len = n;
    p->has_bin = 1;
    p->bin = b->data + n;
    p->bin_len = b->len - n;
    return IC_OK;
}

/* obj's "parameters": NULL when absent, refused unless an object. */
static ic_err_t get_params(parse_t *p, json_t *obj, const char *where, json_t **params)
{
    *params = json_object_get(obj, "parameters");
    if (*params && !json_is_object(*params))
        return fail(p, IC_EBODY_MALFORMED, "%s: \"parameters\" must be an object", where);
    return IC_OK;
}

/* A boolean parameter; *value is left alone when it is absent. */
static ic_err_t get_bool(parse_t *p, json_t *params, const char *key, const char *where,
                    int *value)
{
    json_t *v = params ? json_object_get(params, key) : NULL;
    if (!v)
        return IC_OK;
    if (!json_is_boolean(v))
        return fail(p, IC_EBODY_MALFORMED, "%s: parameters.%s must be true or false", where, key);
    *value = json_is_true(v);
    return IC_OK;
}

/* The output's parameters: "classification" and "binary_data". */
static ic_err_t output_params(parse_t *p, json_t *o, const char *where)
{
    json_t *params;
    ic_err_t rc = get_params(p, o, where, &params);
    if (rc || (rc = get_bool(p, params, "binary_data", where, &p->st->binary)))
        return rc;
    json_t *c = params ? json_object_get(params, "classification") : NULL;
    if (!c)
        return IC_OK;
    if (!json_is_integer(c) || json_integer_value(c) < 1)
        return fail(p, IC_EBODY_MALFORMED, "%s: parameters.classification must be a positive integer "
                            "(classes per image)", where);
    /* Triton clamps K to the classes there are. */
    json_int_t k = json_integer_value(c);
    p->st->classification = k > p->m->n_classes ? p->m->n_classes : (int)k;
    return IC_OK;
}

/* "outputs": absent or empty means every output (the model has one). */
static ic_err_t parse_outputs(parse_t *p, json_t *outputs)
{
    const char *name = nn_model_output(p->m->nn, 0)->name;
    if (!outputs)
        return IC_OK;
    if (!json_is_array(outputs))
        return fail(p, IC_EBODY_MALFORMED, "\"outputs\" must be an array");
    size_t i;
    json_t *o;
    json_array_foreach(outputs, i, o) {
        char where[32];
        snprintf(where, sizeof where, "outputs[%zu]", i);
        json_t *n = json_is_object(o) ? json_object_get(o, "name") : NULL;
        if (!json_is_string(n))
            return fail(p, IC_EBODY_MALFORMED, "%s must be an object with a string \"name\"", where);
        if (strcmp(json_string_value(n), name) != 0)
            return fail(p, IC_EBODY_MALFORMED, "unknown output '%s': model '%s' has one output, '%s'",
                        echo(json_string_value(n), (char[64]){0}), p->m->name, name);
        if (i > 0)
            return fail(p, IC_EBODY_MALFORMED, "output '%s' is requested twice", name);
        ic_err_t rc = output_params(p, o, where);
        if (rc)
            return rc;
    }
    return IC_OK;
}

/* ---- request: the input ----------------------------------------------------------- */

static ic_err_t parse_shape(parse_t *p, json_t *shape, int64_t *dims, int *rank)
{
    if (!json_is_array(shape) || json_array_size(shape) == 0 ||
        json_array_size(shape) > NN_MAX_RANK)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': shape must be an array of 1 to %d integers",
                    p->input, NN_MAX_RANK);
    size_t i;
    json_t *v;
    json_array_foreach(shape, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > INT32_MAX)
            return fail(p, IC_EBODY_MALFORMED, "input '%s': shape[%zu] must be a non-negative integer",
                        p->input, i);
        dims[i] = json_integer_value(v);
    }
    *rank = (int)json_array_size(shape);
    return IC_OK;
}

static ic_err_t check_batch(parse_t *p, int64_t n)
{
    int max = p->r->svc->cfg->max_images_per_request;
    if (n < 1)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': the batch (shape[0]) is 0; send at least one "
                            "image", p->input);
    if (n > max)
        return fail(p, IC_ETOO_MANY_IMAGES, "input '%s': %lld images; at most %d per request", p->input,
                    (long long)n, max);
    p->n = (int)n;
    return IC_OK;
}

/* The input's slice of the binary part, binary_data_size bytes from where
 * the previous input's ended. */
static ic_err_t take_binary(parse_t *p, json_t *size, const uint8_t **raw, size_t *raw_len)
{
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': parameters.binary_data_size must be a "
                            "non-negative integer", p->input);
    if (!p->has_bin)
        return fail(p, IC_EBODY_MALFORMED, "input '%s' has parameters.binary_data_size but the request "
                            "has no " HEADER_LENGTH " header", p->input);
    json_int_t n = json_integer_value(size);
    if ((uint64_t)n > p->bin_len - p->bin_used)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': binary_data_size %lld is more than the %zu bytes "
                            "left after the JSON header", p->input, (long long)n,
                    p->bin_len - p->bin_used);
    *raw = p->bin + p->bin_used;
    *raw_len = (size_t)n;
    p->bin_used += (size_t)n;
    return IC_OK;
}

/* Numbers of data, flat or nested up to the shape's rank, into out
 * (cap floats); *count gets how many there are, even beyond cap. */
static ic_err_t flatten_numbers(parse_t *p, json_t *a, int depth, int rank, float *out,
                           size_t cap, size_t *count)
{
    if (!json_is_array(a) || depth >= rank)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': data must be an array of numbers, flat or nested "
                            "as the shape", p->input);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (json_is_array(v)) {
            ic_err_t rc = flatten_numbers(p, v, depth + 1, rank, out, cap, count);
            if (rc)
                return rc;
            continue;
        }
        if (!json_is_number(v))
            return fail(p, IC_EBODY_MALFORMED, "input '%s': FP32 data must hold numbers only", p->input);
        float f = (float)json_number_value(v);
        if (!isfinite(f)) /* the double was beyond float's range */
            return fail(p, IC_EBODY_MALFORMED, "input '%s': data element %zu is out of FP32 range",
                        p->input, *count);
        if (*count < cap)
            out[*count] = f;
        (*count)++;
    }
    return IC_OK;
}

static ic_err_t parse_fp32(parse_t *p, const int64_t *dims, int rank, json_t *data,
                      const uint8_t *raw, size_t raw_len)
{
    const classifier_t *m = p->m;
    char shape[160];
    fmt_shape(dims, rank, shape, sizeof shape);
    if (rank != 4 || dims[1] != m->channels || dims[2] != m->height ||
        dims[3] != m->width)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': FP32 shape %s does not match the model's "
                            "[-1,%d,%d,%d]", p->input, shape, m->channels, m->height,
                    m->width);
    ic_err_t rc = check_batch(p, dims[0]);
    if (rc)
        return rc;
    size_t total = (size_t)p->n * m->in_elems;
    float *t = p->st->tensors = malloc(total * sizeof *t);
    if (!t)
        return fail(p, IC_ENOMEM, "out of memory for %zu floats", total);
    if (raw) {
        if (raw_len != total * sizeof *t)
            return fail(p, IC_EBODY_MALFORMED, "input '%s': binary_data_size is %zu bytes; FP32 %s "
                                "takes %zu", p->input, raw_len, shape, total * sizeof *t);
        for (size_t i = 0; i < total; i++)
            t[i] = le_float(raw + 4 * i);
        return IC_OK;
    }
    size_t count = 0;
    if ((rc = flatten_numbers(p, data, 0, rank, t, total, &count)))
        return rc;
    if (count != total)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': data holds %zu numbers; shape %s takes %zu",
                    p->input, count, shape, total);
    return IC_OK;
}

/* Element i of BYTES data in JSON: a base64-encoded image. */
static ic_err_t base64_part(parse_t *p, json_t *s, size_t i)
{
    size_t n = json_string_length(s);
    image_part_t *part = body_new_part(&p->r->body);
    if (!part || !(part->owned = malloc(BASE64_DECODED_MAX(n))))
        return fail(p, IC_ENOMEM, "out of memory");
    long len = base64_decode(json_string_value(s), n, part->owned);
    if (len < 0)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': element %zu is not valid base64", p->input, i);
    part->data = part->owned;
    part->size = (size_t)len;
    return IC_OK;
}

/* Strings of data, flat or nested up to rank; the first p->n become
 * parts, *count gets how many there are. */
static ic_err_t flatten_strings(parse_t *p, json_t *a, int depth, int rank, size_t *count)
{
    if (!json_is_array(a) || depth >= rank)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': data must be an array of base64 strings",
                    p->input);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        ic_err_t rc = IC_OK;
        if (json_is_array(v))
            rc = flatten_strings(p, v, depth + 1, rank, count);
        else if (!json_is_string(v))
            rc = fail(p, IC_EBODY_MALFORMED, "input '%s': BYTES data must hold strings (base64-encoded "
                              "images)", p->input);
        else if (*count < (size_t)p->n)
            rc = base64_part(p, v, *count);
        if (rc)
            return rc;
        if (!json_is_array(v))
            (*count)++;
    }
    return IC_OK;
}

/* BYTES in the binary part: each element a 4-byte little-endian length
 * and that many bytes (Triton's and OVMS's layout). The parts point into
 * the body. */
static ic_err_t split_elements(parse_t *p, const uint8_t *raw, size_t raw_len)
{
    size_t off = 0, n = 0;
    while (off < raw_len) {
        if (raw_len - off < 4)
            return fail(p, IC_EBODY_MALFORMED, "input '%s': the binary data ends inside element %zu's "
                                "4-byte length", p->input, n);
        uint32_t len = le32(raw + off);
        off += 4;
        if (len > raw_len - off)
            return fail(p, IC_EBODY_MALFORMED, "input '%s': element %zu's length %u runs past "
                                "binary_data_size", p->input, n, len);
        if (n < (size_t)p->n) {
            image_part_t *part = body_new_part(&p->r->body);
            if (!part)
                return fail(p, IC_ENOMEM, "out of memory");
            part->data = raw + off;
            part->size = len;
        }
        off += len;
        n++;
    }
    if (n != (size_t)p->n)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': the binary data holds %zu elements; the shape "
                            "says %d", p->input, n, p->n);
    return IC_OK;
}

static ic_err_t parse_bytes(parse_t *p, const int64_t *dims, int rank, json_t *data,
                       const uint8_t *raw, size_t raw_len)
{
    if (rank > 2 || (rank == 2 && dims[1] != 1)) {
        char shape[160];
        fmt_shape(dims, rank, shape, sizeof shape);
        return fail(p, IC_EBODY_MALFORMED, "input '%s': BYTES shape must be [N] or [N,1] (N encoded "
                            "images), not %s", p->input, shape);
    }
    ic_err_t rc = check_batch(p, dims[0]);
    if (rc)
        return rc;
    if (raw)
        return split_elements(p, raw, raw_len);
    size_t count = 0;
    if ((rc = flatten_strings(p, data, 0, rank, &count)))
        return rc;
    if (count != (size_t)p->n)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': data holds %zu string(s); the shape says %d",
                    p->input, count, p->n);
    return IC_OK;
}

static ic_err_t parse_input(parse_t *p, json_t *in)
{
    if (!json_is_object(in))
        return fail(p, IC_EBODY_MALFORMED, "inputs[0] must be an object");
    json_t *name = json_object_get(in, "name");
    json_t *dt = json_object_get(in, "datatype");
    json_t *data = json_object_get(in, "data");
    if (!json_is_string(name))
        return fail(p, IC_EBODY_MALFORMED, "inputs[0].name must be a string");
    if (strcmp(json_string_value(name), p->input) != 0)
        return fail(p, IC_EBODY_MALFORMED, "unknown input '%s': model '%s' takes '%s'",
                    echo(json_string_value(name), (char[64]){0}), p->m->name, p->input);
    if (!json_is_string(dt))
        return fail(p, IC_EBODY_MALFORMED, "input '%s': datatype must be a string", p->input);
    int is_fp32 = strcmp(json_string_value(dt), "FP32") == 0;
    if (!is_fp32 && strcmp(json_string_value(dt), "BYTES") != 0)
        return fail(p, IC_EBODY_MALFORMED, "input '%s': datatype '%s' is not supported; send FP32 "
                            "[N,C,H,W] (preprocessed) or BYTES [N] (encoded images)",
                    p->input, echo(json_string_value(dt), (char[64]){0}));
    int64_t dims[NN_MAX_RANK];
    int rank = 0;
    json_t *params;
    ic_err_t rc = parse_shape(p, json_object_get(in, "shape"), dims, &rank);
    if (rc || (rc = get_params(p, in, "inputs[0]", &params)))
        return rc;
    json_t *size = params ? json_object_get(params, "binary_data_size") : NULL;
    if (size && data)
        return fail(p, IC_EBODY_MALFORMED, "input '%s' has both \"data\" and binary_data_size", p->input);
    if (!size && !data)
        return fail(p, IC_EBODY_MALFORMED, "input '%s' has no \"data\"", p->input);
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (size && (rc = take_binary(p, size, &raw, &raw_len)))
        return rc;
    return is_fp32 ? parse_fp32(p, dims, rank, data, raw, raw_len)
                   : parse_bytes(p, dims, rank, data, raw, raw_len);
}

static ic_err_t parse_request(parse_t *p, json_t *root)
{
    if (!json_is_object(root))
        return fail(p, IC_EBODY_MALFORMED, "the body must be a JSON object {\"inputs\": [...]}");
    json_t *id = json_object_get(root, "id"), *params;
    if (id && !json_is_string(id))
        return fail(p, IC_EBODY_MALFORMED, "\"id\" must be a string");
    if (id && !(p->st->id = strdup(json_string_value(id))))
        return fail(p, IC_ENOMEM, "out of memory");
    const char *where = "the request";
    ic_err_t rc = get_params(p, root, where, &params);
    if (rc || (rc = get_bool(p, params, "binary_data_output", where, &p->st->binary)))
        return rc;
    json_t *inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs))
        return fail(p, IC_EBODY_MALFORMED, "\"inputs\" must be an array");
    if (json_array_size(inputs) != 1)
        return fail(p, IC_EBODY_MALFORMED, "model '%s' takes 1 input ('%s'); the request has %zu",
                    p->m->name, p->input, json_array_size(inputs));
    /* Outputs first: an output's binary_data overrides binary_data_output. */
    if ((rc = parse_outputs(p, json_object_get(root, "outputs"))) ||
        (rc = parse_input(p, json_array_get(inputs, 0))))
        return rc;
    if (p->has_bin && p->bin_used != p->bin_len)
        return fail(p, IC_EBODY_MALFORMED, "the body holds %zu bytes after the JSON header but the "
                            "inputs' binary_data_size add up to %zu", p->bin_len,
                    p->bin_used);
    return IC_OK;
}

static ic_err_t parse_body(parse_t *p)
{
    const body_t *b = &p->r->body;
    if (b->len == 0)
        return fail(p, IC_EBODY_MALFORMED, "empty body: send a v2 inference request {\"inputs\": [...]}");
    size_t json_len;
    ic_err_t rc = split_body(p, &json_len);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_loadb((const char *)b->data, json_len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return json_error_code(&je) == json_error_out_of_memory
                   ? fail(p, IC_ENOMEM, "out of memory parsing the JSON")
                   : fail(p, IC_EBODY_MALFORMED, "invalid JSON at line %d column %d: %s", je.line,
                          je.column, je.text);
    rc = parse_request(p, root);
    json_decref(root);
    return rc;
}

static void kserve_free(void *state)
{
    kserve_state_t *st = state;
    work_release(&st->work);
    free(st->tensors);
    free(st->id);
    free(st);
}

static void infer_answer(request_t *r);

/* POST /v2/models/{name}[/versions/{v}]/infer, with the whole body: the
 * model must be loaded (and be the version named, if any). */
static void infer_end(request_t *r)
{
    served_model_t *sm = submit_model(r);
    if (!sm)
        return;
    if (r->params.version[0] && strcmp(r->params.version, sm->c->cfg.version) != 0) {
        request_fail(r, IC_ENO_MODEL, "model '%s' has no version '%s'", r->params.name,
                     r->params.version);
        return;
    }
    if (r->body.too_large) {
        request_fail(r, IC_EBODY_TOO_LARGE, "the body is larger than %zu bytes",
                     r->body.max_bytes);
        return;
    }
    kserve_state_t *st = calloc(1, sizeof *st);
    if (!st) {
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    r->handler_state = st;
    r->free_handler_state = kserve_free;
    const classifier_t *m = sm->c;
    parse_t p = {.r = r, .m = m, .st = st, .input = nn_model_input(m->nn, 0)->name};
    ic_err_t rc = parse_body(&p);
    if (rc == IC_OK && infer_prepare(&st->work.inf, sm, p.n) != IC_OK)
        rc = fail(&p, IC_ENOMEM, "out of memory");
    if (rc != IC_OK) {
        request_fail(r, rc, "%s", p.msg);
        return;
    }
    for (int i = 0; i < p.n; i++) {
        sched_job_t *j = &st->work.inf.jobs[i];
        if (st->tensors) {
            j->tensor = st->tensors + (size_t)i * m->in_elems;
        } else {
            j->data = r->body.parts[i].data;
            j->size = r->body.parts[i].size;
        }
    }
    work_submit(r, &st->work, infer_answer);
}

/* ---- answer ----------------------------------------------------------------------- */

/* Where an output's elements go: the JSON "data" array or the binary part. */
typedef struct emit {
    json_t *arr;        /* JSON: "data"; NULL for binary */
    uint8_t *bin;       /* binary: the raw bytes */
    size_t len, cap;
    int failed;         /* out of memory, or a value JSON cannot hold */
} emit_t;

static void emit_bytes(emit_t *e, const void *b, size_t n)
{
    if (e->failed)
        return;
    if (n > e->cap - e->len) {
        size_t cap = e->cap ? e->cap : 4096;
        while (cap - e->len < n)
            cap *= 2;
        uint8_t *nb = realloc(e->bin, cap);
        if (!nb) {
            e->failed = 1;
            return;
        }
        e->bin = nb;
        e->cap = cap;
    }
    memcpy(e->bin + e->len, b, n);
    e->len += n;
}

static void emit_float(emit_t *e, float v)
{
    if (e->arr) {
        /* json_real refuses NaN and infinities, which JSON cannot hold. */
        if (!e->failed && json_array_append_new(e->arr, json_real((double)v)))
            e->failed = 1;
        return;
    }
    uint32_t u;
    uint8_t b[4];
    memcpy(&u, &v, sizeof u);
    put_le32(b, u);
    emit_bytes(e, b, sizeof b);
}

/* BYTES element: a JSON string, or a 4-byte length and the bytes. */
static void emit_string(emit_t *e, const char *s)
{
    size_t n = strlen(s);
    if (e->arr) {
        if (!e->failed && json_array_append_new(e->arr, json_stringn(s, n)))
            e->failed = 1;
        return;
    }
    uint8_t b[4];
    put_le32(b, (uint32_t)n);
    emit_bytes(e, b, sizeof b);
    emit_bytes(e, s, n);
}

/* Highest first, NaN last, then by index: a total order for qsort. */
static int by_raw_desc(const void *a, const void *b)
{
    const class_score_t *x = a, *y = b;
    int xn = x->score != x->score, yn = y->score != y->score;
    if (xn != yn)
        return xn - yn;
    if (!xn && x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

/* Triton's classification strings: "%f:index:label" of the K highest raw
 * outputs (std::to_string formats the value as %f). */
static void emit_classes(const infer_t *inf, int k, emit_t *e)
{
    const classifier_t *m = inf->model->c;
    class_score_t *s = malloc((size_t)m->n_classes * sizeof *s);
    if (!s) {
        e->failed = 1;
        return;
    }
    for (int i = 0; i < inf->n && !e->failed; i++) {
        const float *out = inf->outputs + (size_t)i * m->out_elems;
        for (int c = 0; c < m->n_classes; c++)
            s[c] = (class_score_t){out[c], c};
        qsort(s, (size_t)m->n_classes, sizeof *s, by_raw_desc);
        for (int q = 0; q < k && !e->failed; q++) {
            char *str;
            if (asprintf(&str, "%f:%d:%s", (double)s[q].score, s[q].index,
                         m->labels[s[q].index]) < 0) {
                e->failed = 1;
                break;
            }
            emit_string(e, str);
            free(str);
        }
    }
    free(s);
}

/* The response's output: its JSON object, data in e (JSON or binary). */
static json_t *output_json(const kserve_state_t *st, emit_t *e)
{
    const infer_t *inf = &st->work.inf;
    const classifier_t *m = inf->model->c;
    int k = st->classification;
    json_t *shape = k ? json_pack("[i, i]", inf->n, k) : output_shape(m, inf->n);
    json_t *o = json_pack("{s:s, s:s, s:o}", "name", nn_model_output(m->nn, 0)->name,
                          "datatype", k ? "BYTES" : "FP32", "shape", shape);
    if (!o || (!st->binary && !(e->arr = json_array()))) {
        json_decref(o);
        return NULL;
    }
    if (k)
        emit_classes(inf, k, e);
    else
        for (size_t i = 0; i < (size_t)inf->n * m->out_elems; i++)
            emit_float(e, inf->outputs[i]);
    int bad = e->failed;
    if (!bad && st->binary)
        bad = json_object_set_new(
            o, "parameters", json_pack("{s:I}", "binary_data_size", (json_int_t)e->len));
    else if (!bad)
        bad = json_object_set(o, "data", e->arr);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Sends the JSON header alone, or header and binary part (the extension's
 * layout: Inference-Header-Content-Length tells where the JSON ends). */
static void send_body(request_t *r, const kserve_state_t *st, json_t *body, const emit_t *e)
{
    /* 9 significant digits: a float32 comes back bit for bit. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(body);
    size_t len = text ? strlen(text) : 0;
    char *all = text && st->binary ? realloc(text, len + e->len + 1) : text;
    if (!all) {
        free(text);
        request_fail(r, IC_ENOMEM, "out of memory building the answer");
        return;
    }
    if (!st->binary) {
        request_answer_raw(r, 200, all, len, NULL);
        return;
    }
    if (e->len)
        memcpy(all + len, e->bin, e->len);
    snprintf(r->extra_header, sizeof r->extra_header, "%s", HEADER_LENGTH);
    snprintf(r->extra_value, sizeof r->extra_value, "%zu", len);
    request_answer_raw(r, 200, all, len + e->len, "application/octet-stream");
}

static void infer_answer(request_t *r)
{
    const kserve_state_t *st = r->handler_state;
    const infer_t *inf = &st->work.inf;
    const classifier_t *m = inf->model->c;
    const char *input = nn_model_input(m->nn, 0)->name;
    for (int i = 0; i < inf->n; i++) {
        const sched_job_t *j = &inf->jobs[i];
        if (j->status != IC_OK) {
            request_fail(r, j->status, "input '%s' element %d: %s", input, i, j->msg);
            return;
        }
    }
    emit_t e = {0};
    json_t *out = output_json(st, &e);
    json_t *body = out ? json_pack("{s:s, s:s, s:s, s:[o]}", "model_name", m->name,
                                   "model_version", m->cfg.version, "id",
                                   st->id ? st->id : r->id, "outputs", out)
                       : NULL;
    json_decref(e.arr);
    if (!body) {
        /* JSON has no NaN or infinity; the binary extension carries them. */
        request_answer_error(r, 500, "could not build the answer (out of memory, or output "
                                     "values that JSON cannot hold: ask for binary_data)");
    } else {
        send_body(r, st, body, &e);
    }
    free(e.bin);
}

/* ---- health and metadata ---------------------------------------------------------- */

static void live_begin(request_t *r)
{
    request_answer_json(r, 200, json_pack("{s:s, s:b}", "status", "alive", "live", 1));
}

static void ready_begin(request_t *r)
{
    const char *why;
    int ready = service_ready(r->svc, &why);
    request_answer_json(r, ready ? 200 : 400, json_pack("{s:b, s:s}", "ready", ready,
                                                        "status", why));
}

/* The slot the path names, if it is there and has the version named (if
 * any); else NULL with the refusal answered (400 on a probe, else 404). */
static model_slot_t *named_slot(request_t *r)
{
    int no = r->route->flags & ROUTE_PROBE ? 400 : 404;
    model_slot_t *slot = repo_find(r->svc->repo, r->params.name);
    if (!slot) {
        request_answer_error(r, no, "no model named '%s'", r->params.name);
        return NULL;
    }
    request_set_model(r, slot->name);
    const served_model_t *m = slot->current;
    if (r->params.version[0] && m && strcmp(r->params.version, m->c->cfg.version) != 0) {
        request_answer_error(r, no, "model '%s' has no version '%s'", r->params.name,
                             r->params.version);
        return NULL;
    }
    return slot;
}

static void model_begin(request_t *r)
{
    model_slot_t *slot = named_slot(r);
    if (slot)
        model_metadata(r, slot);
}

static void model_ready_begin(request_t *r)
{
    model_slot_t *slot = named_slot(r);
    if (!slot)
        return;
    int ready = slot->current && !r->svc->draining;
    request_answer_json(r, ready ? 200 : 400,
                        json_pack("{s:s, s:b}", "name", slot->name, "ready", ready));
}

#define GET (ROUTE_GET | ROUTE_HEAD)
static const route_t routes[] = {
    {"/v2/health/live", GET, "v2_live", ROUTE_KSERVE | ROUTE_OPEN_HEALTH, live_begin, NULL},
    {"/v2/health/ready", GET, "v2_ready", ROUTE_KSERVE | ROUTE_OPEN_HEALTH, ready_begin,
     NULL},
    {"/v2", GET, "v2_server", ROUTE_KSERVE, server_metadata_begin, NULL},
    {"/v2/models/{name}/ready", GET, "v2_model_ready", ROUTE_KSERVE | ROUTE_PROBE,
     model_ready_begin, NULL},
    {"/v2/models/{name}/versions/{version}/ready", GET, "v2_model_ready",
     ROUTE_KSERVE | ROUTE_PROBE, model_ready_begin, NULL},
    {"/v2/models/{name}/infer", ROUTE_POST, "v2_infer", ROUTE_KSERVE, submit_begin,
     infer_end},
    {"/v2/models/{name}/versions/{version}/infer", ROUTE_POST, "v2_infer", ROUTE_KSERVE,
     submit_begin, infer_end},
    {"/v2/models/{name}", GET, "v2_model", ROUTE_KSERVE, model_begin, NULL},
    {"/v2/models/{name}/versions/{version}", GET, "v2_model", ROUTE_KSERVE, model_begin,
     NULL},
};

ic_err_t kserve_routes(router_t *rt)
{
    return router_add(rt, routes, (int)(sizeof routes / sizeof routes[0]));
}
