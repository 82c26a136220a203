/* The KServe v2 / Open Inference Protocol endpoints of the real daemon,
 * on a loopback port, with libcurl: requests built as the published
 * protocol and Triton's extensions (binary tensor data, classification)
 * describe them, answers checked field by field and byte by byte, and
 * the shared batch of preprocessed images against ONNX Runtime's outputs
 * (../shared/imagenet/tensors). Every answer is also checked against
 * openapi.yaml. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/daemon.h"
#include "util/npy.h"
#include "util/openapi.h"
#include "util/testutil.h"

#define HLEN "Inference-Header-Content-Length"
#define INFER "/v2/models/mobilenet_v2/infer"
#define K 1001 /* mobilenet_v2's classes */

/* One daemon for every test: starting one per test would cost seconds. */
static td_daemon_t d;

static void setup(void)
{
    /* No drain grace: the suite's end need not wait for a balancer. */
    static const char *const env[] = {"IMGCLASSD_DRAIN_GRACE_MS=0", NULL};
    td_start(&d, tu_test_models(), env, 1, 60);
}

static void teardown(void)
{
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
}

/* ---- helpers ---------------------------------------------------------------------- */

/* A growing byte string. */
typedef struct sb {
    char *s;
    size_t len, cap;
} sb_t;

static void sb_add(sb_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        ck_assert_ptr_nonnull(b->s = realloc(b->s, cap));
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    ck_assert(n >= 0 && n < (int)sizeof tmp);
    sb_add(b, tmp, (size_t)n);
}

static void sb_le32(sb_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sb_add(b, x, 4);
}

static uint32_t le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static float le_float(const void *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void sb_floats_le(sb_t *b, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        sb_le32(b, u);
    }
}

static char *base64(const void *data, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *s = data;
    char *o = malloc((n + 2) / 3 * 4 + 1);
    ck_assert_ptr_nonnull(o);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        o[k++] = a[v >> 18 & 63];
        o[k++] = a[v >> 12 & 63];
        o[k++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        o[k++] = i + 2 < n ? a[v & 63] : '=';
    }
    o[k] = '\0';
    return o;
}

static void *image(const char *name, size_t *size)
{
    char p[512];
    void *data = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/%s",
                                      tu_shared_dir(), name), size);
    ck_assert_msg(data, "cannot read %s", p);
    return data;
}

static void load_npy(const char *name, npy_array_t *a)
{
    char p[512], msg[256];
    tu_path(p, sizeof p, "%s/imagenet/tensors/%s", tu_shared_dir(), name);
    ck_assert_msg(npy_read(p, a, msg, sizeof msg) == 0, "%s: %s", p, msg);
}

/* The answer against openapi.yaml (tests/tools/check_openapi.py): a JSON
 * answer's body against the schema of its status; a binary one
 * (application/octet-stream) for its documented Content-Type, and its JSON
 * header, the first Inference-Header-Content-Length bytes, against the
 * same schema as a JSON answer. Headers-only answers (204) have no body. */
static void openapi(const char *method, const char *path, const td_response_t *r)
{
    char ct[128], v[40];
    if (r->status == 204) {
        td_check_openapi(method, path, r->status, r->size ? r->body : NULL);
        return;
    }
    ck_assert_msg(td_header(r, "Content-Type", ct, sizeof ct), "%s %s: no Content-Type",
                  method, path);
    if (strcmp(ct, "application/octet-stream") != 0) {
        ck_assert_str_eq(ct, "application/json");
        td_check_openapi(method, path, r->status, r->body);
        return;
    }
    td_check_openapi_typed(method, path, r->status, r->body, r->size, ct);
    ck_assert_msg(td_header(r, HLEN, v, sizeof v), "%s %s: binary answer without " HLEN,
                  method, path);
    char *end;
    size_t n = strtoul(v, &end, 10);
    ck_assert_msg(*v && !*end && n > 0 && n <= r->size, "bad %s: '%s'", HLEN, v);
    char *header = strndup(r->body, n);
    ck_assert_ptr_nonnull(header);
    td_check_openapi(method, path, r->status, header);
    free(header);
}

/* Any request (header: one extra header line or NULL), its answer checked
 * against openapi.yaml. */
static td_response_t request(const char *method, const char *path, const char *type,
                             const void *body, size_t size, const char *header)
{
    td_response_t r;
    ck_assert_int_eq(td_request(&d, method, path, type, body, size, header, &r), 0);
    openapi(method, path, &r);
    return r;
}

/* POST; json_len > 0 adds Inference-Header-Content-Length. */
static td_response_t post(const char *path, const void *body, size_t size, size_t json_len)
{
    char h[80];
    snprintf(h, sizeof h, HLEN ": %zu", json_len);
    return request("POST", path, json_len ? "application/octet-stream" : "application/json",
                   body, size, json_len ? h : NULL);
}

static td_response_t post_sb(const sb_t *b, size_t json_len)
{
    return post(INFER, b->s, b->len, json_len);
}

static td_response_t get(const char *path)
{
    return request("GET", path, NULL, NULL, 0, NULL);
}

/* The JSON of an answer: the whole body, or its first
 * Inference-Header-Content-Length bytes; *json_len gets its length. */
static json_t *json_part(const td_response_t *r, size_t *json_len)
{
    char v[40];
    size_t n = r->size;
    if (td_header(r, HLEN, v, sizeof v)) {
        char *end;
        n = strtoul(v, &end, 10);
        ck_assert_msg(*v && !*end && n <= r->size, "bad %s: '%s'", HLEN, v);
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, n, 0, &je);
    ck_assert_msg(j, "not JSON (%s): %.300s", je.text, r->body);
    if (json_len)
        *json_len = n;
    return j;
}

static json_t *expect_json(const td_response_t *r, long status)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %.500s", status, r->status,
                  r->body);
    return json_part(r, NULL);
}

/* An error answer is {"error": message} and nothing else (the protocol's
 * $inference_error_response). */
static void expect_error(td_response_t *r, long status)
{
    json_t *j = expect_json(r, status);
    ck_assert_msg(json_object_size(j) == 1 && json_is_string(json_object_get(j, "error")),
                  "not {\"error\": string}: %s", r->body);
    json_decref(j);
    td_response_free(r);
}

static void check_shape(const json_t *shape, int rank, const long *dims)
{
    ck_assert_int_eq(json_array_size(shape), rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(json_integer_value(json_array_get(shape, (size_t)i)), dims[i]);
}

/* The answer's one output, after checking the answer's own fields. */
static json_t *only_output(const json_t *j, const char *id)
{
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_name")), "mobilenet_v2");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_version")), "coral-1");
    if (id)
        ck_assert_str_eq(json_string_value(json_object_get(j, "id")), id);
    json_t *outs = json_object_get(j, "outputs");
    ck_assert_int_eq(json_array_size(outs), 1);
    json_t *o = json_array_get(outs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "output");
    return o;
}

/* FP32 output data from JSON, n numbers into out. */
static void json_floats(const json_t *data, float *out, size_t n)
{
    ck_assert_int_eq(json_array_size(data), n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(data, i);
        ck_assert(json_is_number(v));
        out[i] = (float)json_number_value(v);
    }
}

/* Rows of got against rows first.. of the expected batch output: within
 * 1e-4 (relative, per row) and the same top-5. */
static void compare_rows(const float *got, const npy_array_t *want, int first, int rows)
{
    for (int i = 0; i < rows; i++) {
        const float *g = got + (size_t)i * K, *w = want->data + (size_t)(first + i) * K;
        double e = tu_rel_error(g, w, K);
        ck_assert_msg(e <= 1e-4, "row %d: relative error %g", first + i, e);
        int tg[5], tw[5];
        tu_topk(g, K, 5, tg);
        tu_topk(w, K, 5, tw);
        for (int q = 0; q < 5; q++)
            ck_assert_int_eq(tg[q], tw[q]);
    }
}

/* {"inputs": [{FP32 input of `rows` images from first}]} as JSON text,
 * data flat or nested as the shape. */
static void fp32_request(sb_t *b, const npy_array_t *x, int first, int rows, int nested,
                         const char *extra)
{
    size_t per = 3 * 224 * 224;
    sb_printf(b, "{%s\"inputs\":[{\"name\":\"input\",\"shape\":[%d,3,224,224],"
                 "\"datatype\":\"FP32\",\"data\":[", extra, rows);
    const float *v = x->data + (size_t)first * per;
    /* Elements per image, per channel, per row: a bracket opens where an
     * index starts one and closes where it ends. */
    const size_t spans[3] = {per, 224 * 224, 224};
    for (size_t i = 0; i < (size_t)rows * per; i++) {
        for (int s = 0; nested && s < 3; s++)
            if (i % spans[s] == 0)
                sb_add(b, "[", 1);
        sb_printf(b, "%.9g", (double)v[i]);
        for (int s = 2; nested && s >= 0; s--)
            if ((i + 1) % spans[s] == 0)
                sb_add(b, "]", 1);
        if (i + 1 < (size_t)rows * per)
            sb_add(b, ",", 1);
    }
    sb_printf(b, "]}]}");
}

/* ---- metadata and health ---------------------------------------------------------- */

START_TEST(metadata)
{
    td_response_t r = get("/v2");
    json_t *j = expect_json(&r, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "imgclassd");
    ck_assert(json_is_string(json_object_get(j, "version")));
    json_t *ext = json_object_get(j, "extensions");
    ck_assert_int_eq(json_array_size(ext), 2);
    ck_assert_str_eq(json_string_value(json_array_get(ext, 0)), "binary_tensor_data");
    ck_assert_str_eq(json_string_value(json_array_get(ext, 1)), "classification");
    json_decref(j);
    td_response_free(&r);

    const char *paths[2] = {"/v2/models/mobilenet_v2",
                            "/v2/models/mobilenet_v2/versions/coral-1"};
    for (int p = 0; p < 2; p++) {
        r = get(paths[p]);
        j = expect_json(&r, 200);
        ck_assert_int_eq(json_object_size(j), 5);
        ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "mobilenet_v2");
        json_t *v = json_object_get(j, "versions");
        ck_assert_int_eq(json_array_size(v), 1);
        ck_assert_str_eq(json_string_value(json_array_get(v, 0)), "coral-1");
        ck_assert_str_eq(json_string_value(json_object_get(j, "platform")), "onnx_onnxv1");
        json_t *in = json_object_get(j, "inputs");
        ck_assert_int_eq(json_array_size(in), 1);
        json_t *t = json_array_get(in, 0);
        ck_assert_int_eq(json_object_size(t), 3);
        ck_assert_str_eq(json_string_value(json_object_get(t, "name")), "input");
        ck_assert_str_eq(json_string_value(json_object_get(t, "datatype")), "FP32");
        check_shape(json_object_get(t, "shape"), 4, (const long[]){-1, 3, 224, 224});
        json_t *out = json_object_get(j, "outputs");
        ck_assert_int_eq(json_array_size(out), 1);
        t = json_array_get(out, 0);
        ck_assert_int_eq(json_object_size(t), 3);
        ck_assert_str_eq(json_string_value(json_object_get(t, "name")), "output");
        ck_assert_str_eq(json_string_value(json_object_get(t, "datatype")), "FP32");
        check_shape(json_object_get(t, "shape"), 2, (const long[]){-1, K});
        json_decref(j);
        td_response_free(&r);
    }
    r = get("/v2/models/mobilenet_v1");
    j = expect_json(&r, 200);
    check_shape(json_object_get(json_array_get(json_object_get(j, "inputs"), 0), "shape"),
                4, (const long[]){-1, 3, 128, 128});
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "versions"), 0)),
                     "1"); /* the default version */
    json_decref(j);
    td_response_free(&r);

    r = get("/v2/models/nope");
    expect_error(&r, 404);
    r = get("/v2/models/mobilenet_v2/versions/7");
    expect_error(&r, 404);

    const char *ready[] = {"/v2/health/live", "/v2/health/ready",
                           "/v2/models/mobilenet_v2/ready",
                           "/v2/models/mobilenet_v2/versions/coral-1/ready"};
    for (int i = 0; i < 4; i++) {
        r = get(ready[i]);
        ck_assert_msg(r.status == 200, "%s: %ld", ready[i], r.status);
        td_response_free(&r);
    }
    r = get("/v2/models/mobilenet_v2/versions/7/ready");
    ck_assert_int_eq(r.status, 400);
    td_response_free(&r);
}
END_TEST

/* ---- FP32 ------------------------------------------------------------------------- */

START_TEST(fp32_json)
{
    npy_array_t x, y;
    load_npy("batch.npy", &x);
    load_npy("batch.expected.npy", &y);
    ck_assert_int_eq(x.rank, 4);
    ck_assert_int_eq(x.dims[0], 8);
    ck_assert_int_eq(y.dims[1], K);

    /* The whole batch, flat data. */
    sb_t b = {0};
    fp32_request(&b, &x, 0, 8, 0, "\"id\":\"fp32-json\",");
    td_response_t r = post_sb(&b, 0);
    char ct[128];
    json_t *j = expect_json(&r, 200);
    ck_assert_str_eq(td_header(&r, "Content-Type", ct, sizeof ct), "application/json");
    ck_assert_ptr_null(td_header(&r, HLEN, ct, sizeof ct));
    json_t *o = only_output(j, "fp32-json");
    ck_assert_str_eq(json_string_value(json_object_get(o, "datatype")), "FP32");
    check_shape(json_object_get(o, "shape"), 2, (const long[]){8, K});
    float *got = malloc(8 * K * sizeof *got);
    ck_assert_ptr_nonnull(got);
    json_floats(json_object_get(o, "data"), got, 8 * K);
    compare_rows(got, &y, 0, 8);
    json_decref(j);
    td_response_free(&r);

    /* One image (the cat) nested as its shape, the output named, no id:
     * the answer's id is the request's X-Request-Id. */
    b.len = 0;
    fp32_request(&b, &x, 1, 1, 1, "\"outputs\":[{\"name\":\"output\"}],");
    r = request("POST", "/v2/models/mobilenet_v2/versions/coral-1/infer", "application/json",
                b.s, b.len, "X-Request-Id: kserve-7");
    j = expect_json(&r, 200);
    o = only_output(j, "kserve-7");
    check_shape(json_object_get(o, "shape"), 2, (const long[]){1, K});
    json_floats(json_object_get(o, "data"), got, K);
    compare_rows(got, &y, 1, 1);
    json_decref(j);
    td_response_free(&r);
    free(got);
    free(b.s);
    npy_free(&x);
    npy_free(&y);
}
END_TEST

/* The binary tensor data extension: the input's raw little-endian floats
 * after the JSON header, and the output's in the answer. */
START_TEST(fp32_binary)
{
    npy_array_t x, y;
    load_npy("batch.npy", &x);
    load_npy("batch.expected.npy", &y);
    size_t in_bytes = x.count * 4;
    float *got = malloc(8 * K * sizeof *got);
    ck_assert_ptr_nonnull(got);

    /* Binary request, JSON answer. */
    sb_t b = {0};
    sb_printf(&b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[8,3,224,224],\"datatype\":"
                  "\"FP32\",\"parameters\":{\"binary_data_size\":%zu}}]}", in_bytes);
    size_t hlen = b.len;
    sb_floats_le(&b, x.data, x.count);
    td_response_t r = post_sb(&b, hlen);
    json_t *j = expect_json(&r, 200);
    json_t *o = only_output(j, NULL);
    json_floats(json_object_get(o, "data"), got, 8 * K);
    compare_rows(got, &y, 0, 8);
    json_decref(j);
    td_response_free(&r);

    /* Binary both ways: the output asks for binary_data. */
    b.len = 0;
    sb_printf(&b, "{\"id\":\"bin\",\"inputs\":[{\"name\":\"input\",\"shape\":[8,3,224,224],"
                  "\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":%zu}}],"
                  "\"outputs\":[{\"name\":\"output\",\"parameters\":"
                  "{\"binary_data\":true}}]}",
                  in_bytes);
    hlen = b.len;
    sb_floats_le(&b, x.data, x.count);
    r = post_sb(&b, hlen);
    size_t jlen;
    char ct[128];
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(td_header(&r, "Content-Type", ct, sizeof ct),
                     "application/octet-stream");
    j = json_part(&r, &jlen);
    ck_assert_int_eq(r.size, jlen + 8 * K * 4);
    o = only_output(j, "bin");
    ck_assert_int_eq(json_object_size(o), 4); /* name, datatype, shape, parameters */
    ck_assert_ptr_null(json_object_get(o, "data"));
    ck_assert_str_eq(json_string_value(json_object_get(o, "datatype")), "FP32");
    check_shape(json_object_get(o, "shape"), 2, (const long[]){8, K});
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "parameters"),
                                                        "binary_data_size")), 8 * K * 4);
    for (size_t i = 0; i < 8 * K; i++)
        got[i] = le_float(r.body + jlen + 4 * i);
    compare_rows(got, &y, 0, 8);
    json_decref(j);
    td_response_free(&r);

    /* A JSON request asking for every output in binary (request parameter),
     * and the same with the output's own binary_data false overriding it. */
    for (int override = 0; override < 2; override++) {
        b.len = 0;
        fp32_request(&b, &x, 7, 1, 0,
                     override ? "\"parameters\":{\"binary_data_output\":true},\"outputs\":"
                                "[{\"name\":\"output\",\"parameters\":"
                                "{\"binary_data\":false}}],"
                              : "\"parameters\":{\"binary_data_output\":true},");
        r = post_sb(&b, 0);
        ck_assert_int_eq(r.status, 200);
        j = json_part(&r, &jlen);
        o = only_output(j, NULL);
        if (override) {
            ck_assert_int_eq(jlen, r.size);
            json_floats(json_object_get(o, "data"), got, K);
        } else {
            ck_assert_int_eq(r.size, jlen + K * 4);
            for (size_t i = 0; i < K; i++)
                got[i] = le_float(r.body + jlen + 4 * i);
        }
        compare_rows(got, &y, 7, 1);
        json_decref(j);
        td_response_free(&r);
    }
    free(got);
    free(b.s);
    npy_free(&x);
    npy_free(&y);
}
END_TEST

/* ---- BYTES (encoded images) and classification ------------------------------------ */

static char **read_labels(void)
{
    char p[512];
    size_t n;
    char *text = td_read_file(tu_path(p, sizeof p, "%s/imagenet/imagenet_labels.txt",
                                      tu_shared_dir()), &n);
    ck_assert_ptr_nonnull(text);
    char **labels = calloc(K + 1, sizeof *labels);
    ck_assert_ptr_nonnull(labels);
    labels[0] = text; /* owns the text */
    int i = 0;
    for (char *s = text; *s && i < K; i++) {
        labels[i] = s;
        char *nl = strchr(s, '\n');
        if (!nl)
            break;
        *nl = '\0';
        s = nl + 1;
    }
    return labels;
}

/* "score:index:label" as Triton writes it (score with %f); returns the
 * index and the score. */
static int class_string(const char *s, size_t n, char **labels, double *score)
{
    char buf[512];
    ck_assert(n < sizeof buf);
    memcpy(buf, s, n);
    buf[n] = '\0';
    int index, pos = 0;
    ck_assert_msg(sscanf(buf, "%lf:%d:%n", score, &index, &pos) == 2 && pos > 0,
                  "not score:index:label: %s", buf);
    const char *dot = strchr(buf, '.');
    ck_assert_msg(dot && strspn(dot + 1, "0123456789") == 6, "score not %%f: %s", buf);
    ck_assert(index >= 0 && index < K);
    ck_assert_str_eq(buf + pos, labels[index]);
    return index;
}

START_TEST(bytes_json)
{
    size_t ncat, nbird;
    void *cat = image("cat.jpg", &ncat), *bird = image("bird.png", &nbird);
    char *bcat = base64(cat, ncat), *bbird = base64(bird, nbird);
    char **labels = read_labels();

    /* Classification: the 3 best of each image, as strings. */
    sb_t b = {0};
    sb_printf(&b, "{\"id\":\"b64\",\"inputs\":[{\"name\":\"input\",\"shape\":[2],"
                  "\"datatype\":\"BYTES\",\"data\":[\"");
    sb_add(&b, bcat, strlen(bcat));
    sb_printf(&b, "\",\"");
    sb_add(&b, bbird, strlen(bbird));
    size_t data_end = b.len;
    sb_printf(&b, "\"]}],\"outputs\":[{\"name\":\"output\",\"parameters\":"
                  "{\"classification\":3}}]}");
    td_response_t r = post_sb(&b, 0);
    json_t *j = expect_json(&r, 200);
    json_t *o = only_output(j, "b64");
    ck_assert_str_eq(json_string_value(json_object_get(o, "datatype")), "BYTES");
    check_shape(json_object_get(o, "shape"), 2, (const long[]){2, 3});
    json_t *data = json_object_get(o, "data");
    ck_assert_int_eq(json_array_size(data), 6);
    double scores[6];
    int top[2];
    for (int i = 0; i < 6; i++) {
        json_t *s = json_array_get(data, (size_t)i);
        ck_assert(json_is_string(s));
        int idx = class_string(json_string_value(s), json_string_length(s), labels,
                               &scores[i]);
        if (i % 3 == 0)
            top[i / 3] = idx;
        else
            ck_assert(scores[i] <= scores[i - 1]);
    }
    ck_assert_int_eq(top[0], 286); /* Egyptian cat */
    ck_assert_int_eq(top[1], 20);  /* chickadee */
    json_decref(j);
    td_response_free(&r);

    /* Without classification: the raw FP32 output, whose values the
     * classification scores are (Softmax graph: probabilities). */
    b.len = data_end;
    sb_printf(&b, "\"]}]}");
    r = post_sb(&b, 0);
    j = expect_json(&r, 200);
    o = only_output(j, NULL);
    check_shape(json_object_get(o, "shape"), 2, (const long[]){2, K});
    float raw[2 * K];
    json_floats(json_object_get(o, "data"), raw, 2 * K);
    for (int i = 0; i < 2; i++) {
        int t;
        tu_topk(raw + i * K, K, 1, &t);
        ck_assert_int_eq(t, top[i]);
        ck_assert_msg(fabs(raw[i * K + t] - scores[3 * i]) < 1e-6, "%g vs %g",
                      raw[i * K + t], scores[3 * i]);
    }
    json_decref(j);
    td_response_free(&r);

    /* Shape [N,1], nested data; classification beyond the classes is cut
     * to them (as Triton does). */
    b.len = 0;
    sb_printf(&b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1],\"datatype\":\"BYTES\","
                  "\"data\":[[\"");
    sb_add(&b, bcat, strlen(bcat));
    sb_printf(&b, "\"]]}],\"outputs\":[{\"name\":\"output\",\"parameters\":"
                  "{\"classification\":5000}}]}");
    r = post_sb(&b, 0);
    j = expect_json(&r, 200);
    o = only_output(j, NULL);
    check_shape(json_object_get(o, "shape"), 2, (const long[]){1, K});
    ck_assert_int_eq(json_array_size(json_object_get(o, "data")), K);
    json_decref(j);
    td_response_free(&r);

    free(labels[0]);
    free(labels);
    free(b.s);
    free(bcat);
    free(bbird);
    free(cat);
    free(bird);
}
END_TEST

/* BYTES in the binary part: each image after its 4-byte little-endian
 * length; the classification strings come back the same way. */
START_TEST(bytes_binary)
{
    size_t ncat, nbird;
    void *cat = image("cat.jpg", &ncat), *bird = image("bird.png", &nbird);
    char **labels = read_labels();
    size_t bin = 8 + ncat + nbird;
    sb_t b = {0};
    sb_printf(&b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[2],\"datatype\":\"BYTES\","
                  "\"parameters\":{\"binary_data_size\":%zu}}],\"outputs\":[{\"name\":"
                  "\"output\",\"parameters\":{\"classification\":2,"
                  "\"binary_data\":true}}]}",
              bin);
    size_t hlen = b.len;
    sb_le32(&b, (uint32_t)ncat);
    sb_add(&b, cat, ncat);
    sb_le32(&b, (uint32_t)nbird);
    sb_add(&b, bird, nbird);
    td_response_t r = post_sb(&b, hlen);
    ck_assert_int_eq(r.status, 200);
    size_t jlen;
    json_t *j = json_part(&r, &jlen);
    json_t *o = only_output(j, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "datatype")), "BYTES");
    check_shape(json_object_get(o, "shape"), 2, (const long[]){2, 2});
    ck_assert_ptr_null(json_object_get(o, "data"));
    json_t *params = json_object_get(o, "parameters");
    size_t size = (size_t)json_integer_value(json_object_get(params, "binary_data_size"));
    ck_assert_int_eq(r.size, jlen + size);
    /* Exactly four length-prefixed strings fill the binary part. */
    const char *p = r.body + jlen, *end = p + size;
    int idx[4];
    for (int i = 0; i < 4; i++) {
        ck_assert(end - p >= 4);
        uint32_t n = le32(p);
        ck_assert(n <= (size_t)(end - p - 4));
        double score;
        idx[i] = class_string(p + 4, n, labels, &score);
        p += 4 + n;
    }
    ck_assert_ptr_eq(p, end);
    ck_assert_int_eq(idx[0], 286);
    ck_assert_int_eq(idx[2], 20);
    json_decref(j);
    td_response_free(&r);
    free(labels[0]);
    free(labels);
    free(b.s);
    free(cat);
    free(bird);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------- */

static void bad_json(const char *path, const char *body, long status)
{
    td_response_t r = post(path, body, strlen(body), 0);
    if (r.status != status)
        ck_abort_msg("%s -> %ld, expected %ld: %s", body, r.status, status, r.body);
    expect_error(&r, status);
}

#define IN "{\"name\":\"input\","

START_TEST(errors)
{
    /* Malformed JSON and requests. */
    bad_json(INFER, "{", 400);
    bad_json(INFER, "", 400);
    bad_json(INFER, "[]", 400);
    bad_json(INFER, "{}", 400);
    bad_json(INFER, "{\"inputs\":[]}", 400);
    bad_json(INFER, "{\"inputs\":[1]}", 400);
    bad_json(INFER, "{\"id\":5,\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}," IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}]}", 400);
    /* Wrong datatype, shapes and counts. */
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"INT32\","
                    "\"data\":[1]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224,223],\"datatype\":\"FP32\","
                    "\"data\":[1]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224],\"datatype\":\"FP32\","
                    "\"data\":[1]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[-1,3,224,224],\"datatype\":\"FP32\","
                    "\"data\":[1]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[0,3,224,224],\"datatype\":\"FP32\","
                    "\"data\":[]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224,224],\"datatype\":\"FP32\","
                    "\"data\":[1,2,3,4,5]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224,224],\"datatype\":\"FP32\","
                    "\"data\":[\"1\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224,224],\"datatype\":\"FP32\","
                    "\"data\":[1e300]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,3,224,224],\"datatype\":\"FP32\"}]}",
             400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[2],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1,2],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\",\"AAAA\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[65],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}]}", 413);
    /* Bad base64; good base64 of something that is no image (415, from
     * the worker, naming the element). */
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"!!!!\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"QUJDRA=A\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"QUJDRA=\"]}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"QUJDRA\"]}]}", 415);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"QUJDRA==\"]}]}", 415);
    /* Outputs. */
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}],\"outputs\":[{\"name\":\"prob\"}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}],\"outputs\":[{\"name\":\"output\","
                    "\"parameters\":{\"classification\":0}}]}", 400);
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"data\":[\"AAAA\"]}],\"parameters\":{\"binary_data_output\":1}}",
             400);
    /* Binary data without the header. */
    bad_json(INFER, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                    "\"parameters\":{\"binary_data_size\":4}}]}", 400);
    /* Unknown model and version. */
    const char *ok = "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                     "\"data\":[\"AAAA\"]}]}";
    bad_json("/v2/models/nope/infer", ok, 404);
    bad_json("/v2/models/mobilenet_v2/versions/2/infer", ok, 404);

    /* Binary data that does not add up. */
    sb_t b = {0};
    const char *hdr = "{\"inputs\":[" IN "\"shape\":[1,3,224,224],\"datatype\":\"FP32\","
                      "\"parameters\":{\"binary_data_size\":602112}}]}";
    sb_add(&b, hdr, strlen(hdr));
    size_t hlen = b.len;
    float zeros[1024] = {0};
    while (b.len - hlen < 602112 - 4096)
        sb_add(&b, zeros, sizeof zeros); /* 4 KiB short: truncated */
    td_response_t r = post_sb(&b, hlen);
    expect_error(&r, 400);
    sb_add(&b, zeros, sizeof zeros);
    sb_add(&b, zeros, 8); /* 8 bytes too many */
    r = post_sb(&b, hlen);
    expect_error(&r, 400);
    b.len -= 8;
    r = post_sb(&b, hlen); /* exactly right: zeros classify */
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    r = post_sb(&b, b.len + 1); /* header length beyond the body */
    expect_error(&r, 400);
    r = post_sb(&b, hlen - 1); /* JSON cut short */
    expect_error(&r, 400);

    /* BYTES: a length prefix cut short, a length past the end. */
    b.len = 0;
    sb_printf(&b, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                  "\"parameters\":{\"binary_data_size\":3}}]}");
    hlen = b.len;
    sb_add(&b, "\x05\0\0", 3);
    r = post_sb(&b, hlen);
    expect_error(&r, 400);
    b.len = 0;
    sb_printf(&b, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                  "\"parameters\":{\"binary_data_size\":8}}]}");
    hlen = b.len;
    sb_le32(&b, 5);
    sb_add(&b, "abcd", 4);
    r = post_sb(&b, hlen);
    expect_error(&r, 400);
    free(b.s);

    /* Names and headers echoed in messages: whatever the bytes (here a
     * two-byte character where a message would cut), the error is JSON. */
    b.s = NULL;
    b.len = b.cap = 0;
    sb_printf(&b, "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\",\"data\":"
                  "[\"AAAA\"]}],\"outputs\":[{\"name\":\"");
    for (int i = 0; i < 62; i++)
        sb_add(&b, "a", 1);
    sb_printf(&b, "\xc3\xa9\"}]}");
    r = post_sb(&b, 0);
    expect_error(&r, 400);
    r = request("POST", INFER, "application/octet-stream", b.s, b.len, HLEN ": \xff\xfe");
    expect_error(&r, 400);
    free(b.s);

    /* Wrong method: 405, still the protocol's error shape. */
    r = get(INFER);
    expect_error(&r, 405);
}
END_TEST

/* A model that failed to load has no version to describe: 404. */
START_TEST(unloaded_model)
{
    char dir[] = "/tmp/imgclassd-kserve-XXXXXX", path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(mkdir(tu_path(path, sizeof path, "%s/broken", dir), 0700), 0);
    FILE *f = fopen(tu_path(path, sizeof path, "%s/broken/config.json", dir), "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"model\": \"missing.onnx\"}\n", f);
    fclose(f);
    static const char *const env[] = {"IMGCLASSD_DRAIN_GRACE_MS=0", NULL};
    td_start(&d, dir, env, 0, 30);
    td_response_t r = get("/v2/models/broken");
    expect_error(&r, 404);
    const char *body = "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                       "\"data\":[\"AAAA\"]}]}";
    r = post("/v2/models/broken/infer", body, strlen(body), 0);
    expect_error(&r, 503);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    unlink(path);
    rmdir(tu_path(path, sizeof path, "%s/broken", dir));
    rmdir(dir);
}
END_TEST

/* Authentication and CORS on the /v2 routes: without a valid token, 401
 * in the protocol's error shape with WWW-Authenticate (the health
 * endpoints stay open); an allowed Origin gets the CORS headers on any
 * answer, and a preflight 204. */
START_TEST(auth_cors)
{
    char dir[] = "/tmp/imgclassd-kserve-XXXXXX", models[600], path[600], tokens[600];
    char env_tokens[700], v[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    FILE *f = fopen(tu_path(tokens, sizeof tokens, "%s/tokens", dir), "w");
    ck_assert_ptr_nonnull(f);
    fputs("s3cret\n", f);
    fclose(f);
    /* A model that does not load: these answers need none. */
    ck_assert_int_eq(mkdir(tu_path(models, sizeof models, "%s/models", dir), 0700), 0);
    ck_assert_int_eq(mkdir(tu_path(path, sizeof path, "%s/broken", models), 0700), 0);
    f = fopen(tu_path(path, sizeof path, "%s/broken/config.json", models), "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"model\": \"missing.onnx\"}\n", f);
    fclose(f);
    snprintf(env_tokens, sizeof env_tokens, "IMGCLASSD_AUTH_TOKENS_FILE=%s", tokens);
    const char *const env[] = {"IMGCLASSD_DRAIN_GRACE_MS=0", env_tokens,
                               "IMGCLASSD_CORS_ORIGINS=https://app.example", NULL};
    td_start(&d, models, env, 0, 30);
    const char *auth = "Authorization: Bearer s3cret";
    const char *body = "{\"inputs\":[" IN "\"shape\":[1],\"datatype\":\"BYTES\","
                       "\"data\":[\"AAAA\"]}]}";

    /* No token, a wrong one: 401 {"error"} with WWW-Authenticate. */
    const char *denied[] = {NULL, "Authorization: Bearer nope"};
    for (int i = 0; i < 2; i++) {
        td_response_t r = request("GET", "/v2", NULL, NULL, 0, denied[i]);
        ck_assert_str_eq(td_header(&r, "WWW-Authenticate", v, sizeof v),
                         "Bearer realm=\"imgclassd\"");
        expect_error(&r, 401);
        r = request("POST", "/v2/models/broken/infer", "application/json", body,
                    strlen(body), denied[i]);
        expect_error(&r, 401);
        r = request("GET", "/v2/models/broken/versions/1", NULL, NULL, 0, denied[i]);
        expect_error(&r, 401);
    }
    /* With the token. */
    td_response_t r = request("GET", "/v2", NULL, NULL, 0, auth);
    json_decref(expect_json(&r, 200));
    td_response_free(&r);
    r = request("GET", "/v2/models/broken/versions/1", NULL, NULL, 0, auth);
    expect_error(&r, 404);
    r = request("POST", "/v2/models/broken/infer", "application/json", body, strlen(body),
                auth);
    expect_error(&r, 503);
    /* Health needs no token (auth_health is off). */
    r = request("GET", "/v2/health/live", NULL, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);

    /* CORS: the headers on an error too; a preflight is answered before
     * authentication. */
    r = request("GET", "/v2", NULL, NULL, 0, "Origin: https://app.example");
    ck_assert_str_eq(td_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                     "https://app.example");
    ck_assert_str_eq(td_header(&r, "Vary", v, sizeof v), "Origin");
    ck_assert_str_eq(td_header(&r, "Access-Control-Expose-Headers", v, sizeof v),
                     "X-Request-Id, Inference-Header-Content-Length");
    expect_error(&r, 401);
    r = request("OPTIONS", "/v2/models/broken/infer", NULL, NULL, 0,
                "Origin: https://app.example");
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(td_header(&r, "Access-Control-Allow-Origin", v, sizeof v),
                     "https://app.example");
    ck_assert_ptr_nonnull(strstr(td_header(&r, "Access-Control-Allow-Methods", v, sizeof v),
                                 "POST"));
    td_response_free(&r);
    r = request("GET", "/v2", NULL, NULL, 0, "Origin: https://other.example");
    ck_assert_ptr_null(td_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    expect_error(&r, 401);

    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    unlink(path);
    rmdir(tu_path(path, sizeof path, "%s/broken", models));
    rmdir(models);
    unlink(tokens);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kserve");
    TCase *tc = tcase_create("daemon");
    if (tu_have_shared()) /* the daemon serves the test repository */
        tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tu_add_shared_test(tc, metadata);
    tu_add_shared_test(tc, fp32_json);
    tu_add_shared_test(tc, fp32_binary);
    tu_add_shared_test(tc, bytes_json);
    tu_add_shared_test(tc, bytes_binary);
    tu_add_shared_test(tc, errors);
    suite_add_tcase(s, tc);
    TCase *alone = tcase_create("unloaded");
    tcase_set_timeout(alone, 60);
    tcase_add_test(alone, unloaded_model);
    tcase_add_test(alone, auth_cors);
    suite_add_tcase(s, alone);
    return tu_run_suite(s);
}
