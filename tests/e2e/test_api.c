/* The HTTP API of the real daemon, on a loopback port, with libcurl:
 * every endpoint, every way to send images, every error status provoked
 * by a real bad input, and the pretrained models' expected answers
 * (../shared/imagenet/expected.tsv) over HTTP. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "util/daemon.h"
#include "util/openapi.h"
#include "util/testutil.h"

static td_daemon_t d;

static void setup(void)
{
    static const char *const env[] = {"IMGCLASSD_MAX_BODY_BYTES=4000000", NULL};
    td_start(&d, tu_test_models(), env, 1, 60);
}

static void teardown(void)
{
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
}

static json_t *parse(const td_response_t *r)
{
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    ck_assert_msg(j, "not JSON (%s): %s", je.text, r->body);
    return j;
}

/* Status and, for errors, a JSON body with a message. */
static void expect(const td_response_t *r, long status)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %s", status, r->status,
                  r->body);
    if (status >= 400) {
        json_t *j = parse(r);
        ck_assert_msg(json_is_string(json_object_get(j, "error")), "no error: %s",
                      r->body);
        json_decref(j);
    }
}

static void *shared_file(const char *name, size_t *size)
{
    char p[512];
    void *data = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/%s",
                                      tu_shared_dir(), name), size);
    ck_assert_msg(data, "cannot read %s", p);
    return data;
}

/* Every answer is also checked against openapi.yaml. */
static td_response_t post(const char *path, const char *type, const void *body,
                          size_t size)
{
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "POST", path, type, body, size, NULL, &r), 0);
    td_check_openapi("POST", path, r.status, r.body);
    return r;
}

static td_response_t get(const char *path, const char *extra_header)
{
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "GET", path, NULL, NULL, 0, extra_header, &r), 0);
    td_check_openapi("GET", path, r.status, r.body);
    return r;
}

/* ---- health, models, routing ------------------------------------------------------ */

static void get_expect(const char *path, long status)
{
    td_response_t r = get(path, NULL);
    expect(&r, status);
    json_t *j = parse(&r);
    json_decref(j);
    td_response_free(&r);
}

START_TEST(health_and_models)
{
    get_expect("/healthz", 200);
    get_expect("/readyz", 200);
    get_expect("/v2/health/live", 200);
    get_expect("/v2/health/ready", 200);
    get_expect("/v1/models/mobilenet_v2/ready", 200);
    get_expect("/v2/models/mobilenet_v2/ready", 200);
    get_expect("/v2/models/nope/ready", 400);
    get_expect("/v1/models/nope", 404);
    get_expect("/v1/models/nope/ready", 404);
    get_expect("/nope", 404);

    td_response_t r;
    r = get("/v1/models", NULL);
    expect(&r, 200);
    json_t *j = parse(&r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "models")), 3);
    json_decref(j);
    td_response_free(&r);

    r = get("/v1/models/mobilenet_v2", NULL);
    expect(&r, 200);
    j = parse(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "ready");
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "coral-1");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "classes")), 1001);
    ck_assert(json_is_true(json_object_get(j, "output_is_probability")));
    json_t *shape = json_object_get(json_object_get(j, "input"), "shape");
    ck_assert_int_eq(json_integer_value(json_array_get(shape, 2)), 224);
    json_t *b = json_object_get(j, "batching");
    ck_assert_int_eq(json_integer_value(json_object_get(b, "max_batch_size")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(b, "max_queue_delay_us")), 3000);
    json_decref(j);
    td_response_free(&r);

    /* Wrong method: 405 with Allow. */
    char buf[64];
    r = post("/healthz", "application/json", "{}", 2);
    expect(&r, 405);
    ck_assert_ptr_nonnull(td_header(&r, "Allow", buf, sizeof buf));
    td_response_free(&r);
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models/mobilenet_v2:classify", NULL,
                                NULL, 0, NULL, &r), 0);
    expect(&r, 405);
    td_response_free(&r);

    /* Request ids: the client's is echoed, otherwise one is made. */
    ck_assert_int_eq(td_request(&d, "GET", "/healthz", NULL, NULL, 0,
                                "X-Request-Id: test-1234", &r), 0);
    ck_assert_str_eq(td_header(&r, "X-Request-Id", buf, sizeof buf), "test-1234");
    td_response_free(&r);
    ck_assert_int_eq(td_request(&d, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_ptr_nonnull(td_header(&r, "X-Request-Id", buf, sizeof buf));
    ck_assert_int_gt(strlen(buf), 8);
    td_response_free(&r);
    ck_assert(td_log_contains(&d, "id=test-1234"));
}
END_TEST

/* ---- classification forms --------------------------------------------------------- */

static int top1(const json_t *result)
{
    json_t *p = json_array_get(json_object_get(result, "predictions"), 0);
    return (int)json_integer_value(json_object_get(p, "index"));
}

static void check_sorted(const json_t *result, int k)
{
    json_t *preds = json_object_get(result, "predictions");
    ck_assert_int_eq(json_array_size(preds), k);
    for (int i = 1; i < k; i++)
        ck_assert(json_real_value(json_object_get(json_array_get(preds, i - 1), "score")) >=
                  json_real_value(json_object_get(json_array_get(preds, i), "score")));
    json_t *t = json_object_get(result, "timings");
    ck_assert(json_is_number(json_object_get(t, "queue_ms")));
    ck_assert(json_is_number(json_object_get(t, "inference_ms")));
    ck_assert(json_is_number(json_object_get(t, "total_ms")));
}

START_TEST(classify_forms)
{
    size_t njpg, npng;
    void *jpg = shared_file("cat.jpg", &njpg);
    void *png = shared_file("bird.png", &npng);

    /* Raw JPEG, top_k in the query. */
    td_response_t r = post("/v1/models/mobilenet_v2:classify?top_k=3", "image/jpeg",
                           jpg, njpg);
    expect(&r, 200);
    json_t *j = parse(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "mobilenet_v2");
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), "coral-1");
    json_t *results = json_object_get(j, "results");
    ck_assert_int_eq(json_array_size(results), 1);
    check_sorted(json_array_get(results, 0), 3);
    ck_assert_int_eq(top1(json_array_get(results, 0)), 286); /* Egyptian cat */
    json_decref(j);
    td_response_free(&r);

    /* Raw PNG, default top_k (5). */
    r = post("/v1/models/mobilenet_v2:classify", "image/png", png, npng);
    expect(&r, 200);
    j = parse(&r);
    check_sorted(json_array_get(json_object_get(j, "results"), 0), 5);
    ck_assert_int_eq(top1(json_array_get(json_object_get(j, "results"), 0)), 20);
    json_decref(j);
    td_response_free(&r);

    /* Multipart: several files, results in order. */
    char p1[512], p2[512], p3[512];
    const char *files[3] = {
        tu_path(p1, sizeof p1, "%s/imagenet/images/bird.png", tu_shared_dir()),
        tu_path(p2, sizeof p2, "%s/imagenet/images/cat.jpg", tu_shared_dir()),
        tu_path(p3, sizeof p3, "%s/imagenet/images/parrot.jpg", tu_shared_dir())};
    ck_assert_int_eq(td_post_files(&d, "/v1/models/mobilenet_v2:classify", files, 3,
                                   &r), 0);
    td_check_openapi("POST", "/v1/models/mobilenet_v2:classify", r.status, r.body);
    expect(&r, 200);
    j = parse(&r);
    results = json_object_get(j, "results");
    ck_assert_int_eq(json_array_size(results), 3);
    ck_assert_int_eq(top1(json_array_get(results, 0)), 20);
    ck_assert_int_eq(top1(json_array_get(results, 1)), 286);
    ck_assert_int_eq(top1(json_array_get(results, 2)), 89);
    json_decref(j);
    td_response_free(&r);

    /* JSON with base64 instances and top_k. */
    const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *b64 = malloc(npng / 3 * 4 + 8);
    ck_assert_ptr_nonnull(b64);
    size_t o = 0;
    const unsigned char *s = png;
    for (size_t i = 0; i < npng; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < npng ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < npng ? s[i + 2] : 0);
        b64[o++] = alphabet[v >> 18 & 63];
        b64[o++] = alphabet[v >> 12 & 63];
        b64[o++] = i + 1 < npng ? alphabet[v >> 6 & 63] : '=';
        b64[o++] = i + 2 < npng ? alphabet[v & 63] : '=';
    }
    b64[o] = '\0';
    json_t *req = json_pack("{s:[{s:s},{s:s}], s:i}", "instances", "b64", b64, "b64",
                            b64, "top_k", 2);
    char *text = json_dumps(req, 0);
    r = post("/v1/models/mobilenet_v2:classify", "application/json", text, strlen(text));
    expect(&r, 200);
    j = parse(&r);
    results = json_object_get(j, "results");
    ck_assert_int_eq(json_array_size(results), 2);
    check_sorted(json_array_get(results, 1), 2);
    ck_assert_int_eq(top1(json_array_get(results, 1)), 20);
    json_decref(j);
    td_response_free(&r);
    free(text);
    json_decref(req);
    free(b64);

    /* TorchServe's shortcut: POST and curl -T (PUT), {"label": score}. */
    const char *methods[2] = {"POST", "PUT"};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(td_request(&d, methods[m], "/predictions/mobilenet_v2", NULL,
                                    jpg, njpg, NULL, &r), 0);
        td_check_openapi(methods[m], "/predictions/mobilenet_v2", r.status, r.body);
        expect(&r, 200);
        j = parse(&r);
        ck_assert_int_eq(json_object_size(j), 5);
        ck_assert(json_real_value(json_object_get(j, "Egyptian cat")) > 0.5);
        json_decref(j);
        td_response_free(&r);
    }

    /* A model with logits gets probabilities that sum to about 1. */
    r = post("/v1/models/mobilenet_v1:classify?top_k=1001", "image/jpeg", jpg, njpg);
    expect(&r, 200);
    j = parse(&r);
    json_t *preds = json_object_get(json_array_get(json_object_get(j, "results"), 0),
                                    "predictions");
    double sum = 0;
    for (size_t i = 0; i < json_array_size(preds); i++)
        sum += json_real_value(json_object_get(json_array_get(preds, i), "score"));
    ck_assert_msg(fabs(sum - 1.0) < 1e-3, "scores sum to %g", sum);
    json_decref(j);
    td_response_free(&r);
    free(jpg);
    free(png);
}
END_TEST

/* ---- the shared models' expected answers ------------------------------------------ */

START_TEST(shared_expected)
{
    char p[512];
    size_t n;
    char *tsv = td_read_file(tu_path(p, sizeof p, "%s/imagenet/expected.tsv",
                                     tu_shared_dir()), &n);
    ck_assert_ptr_nonnull(tsv);
    int rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[256], label[256];
        int index;
        double score;
        if (sscanf(line, "%255[^\t]\t%d\t%255[^\t]\t%lf", name, &index, label, &score) != 4)
            continue; /* header */
        size_t size;
        void *img = td_read_file(tu_path(p, sizeof p, "%s/imagenet/%s%s", tu_shared_dir(),
                                         strchr(name, '/') ? "" : "images/", name), &size);
        ck_assert_msg(img, "cannot read %s", p);
        int is_png = strstr(name, ".png") != NULL;
        td_response_t r = post("/v1/models/mobilenet_v2:classify",
                               is_png ? "image/png" : "image/jpeg", img, size);
        expect(&r, 200);
        json_t *j = parse(&r);
        json_t *best = json_array_get(json_object_get(json_array_get(
                                          json_object_get(j, "results"), 0), "predictions"), 0);
        int got = (int)json_integer_value(json_object_get(best, "index"));
        double got_score = json_real_value(json_object_get(best, "score"));
        printf("  %-28s expected %4d %.6f  got %4d %.6f\n", name, index, score, got,
               got_score);
        ck_assert_msg(got == index, "%s: top-1 %d, expected %d", name, got, index);
        ck_assert_str_eq(json_string_value(json_object_get(best, "label")), label);
        ck_assert_msg(fabs(got_score - score) <= (is_png ? 1e-4 : 0.05) + 1e-6,
                      "%s: score %.6f, expected %.6f", name, got_score, score);
        json_decref(j);
        td_response_free(&r);
        free(img);
        rows++;
    }
    ck_assert_int_ge(rows, 16);
    free(tsv);
}
END_TEST

/* ---- bad inputs ------------------------------------------------------------------- */

/* An RGB PNG of w x h gray pixels, encoded by libspng. */
static void *make_png(uint32_t w, uint32_t h, size_t *size)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    ck_assert_ptr_nonnull(ctx);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = w, .height = h, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    ck_assert_int_eq(spng_set_ihdr(ctx, &ihdr), 0);
    size_t n = (size_t)w * h * 3;
    unsigned char *px = malloc(n);
    ck_assert_ptr_nonnull(px);
    memset(px, 128, n);
    ck_assert_int_eq(spng_encode_image(ctx, px, n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
    free(px);
    int err;
    void *out = spng_get_png_buffer(ctx, size, &err);
    ck_assert_ptr_nonnull(out);
    spng_ctx_free(ctx);
    return out;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void post_expect(const char *path, const char *type, const void *body,
                        size_t size, long status)
{
    td_response_t r = post(path, type, body, size);
    expect(&r, status);
    td_response_free(&r);
}

START_TEST(bad_inputs)
{
    const char *url = "/v1/models/mobilenet_v2:classify";
    size_t njpg, npng;
    unsigned char *jpg = shared_file("cat.jpg", &njpg);
    unsigned char *png = shared_file("bird.png", &npng);

    post_expect(url, "image/jpeg", jpg, njpg / 2, 400);        /* truncated JPEG */
    post_expect(url, "image/png", png, npng / 2, 400);         /* truncated PNG */
    unsigned char *bad = malloc(npng);
    ck_assert_ptr_nonnull(bad);
    memcpy(bad, png, npng);
    bad[npng / 2] ^= 0x55;                                     /* IDAT CRC fails */
    post_expect(url, "image/png", bad, npng, 400);
    free(bad);
    post_expect(url, "image/jpeg", "", 0, 400);                /* empty body */
    post_expect(url, "image/jpeg", "GIF89a\x01\x00\x01\x00", 10, 415); /* not JPEG/PNG */
    post_expect(url, "text/plain", jpg, njpg, 415);            /* wrong type */
    post_expect("/v1/models/nope:classify", "image/jpeg", jpg, njpg, 404);
    post_expect(url, "image/jpeg", "\xff\xd8\xff", 3, 400);    /* JPEG magic only */

    size_t ntiny;
    unsigned char *tiny = make_png(1, 1, &ntiny);
    post_expect(url, "image/png", tiny, ntiny, 400);           /* 1x1 image */
    /* A header claiming 30000 x 30000: refused before decoding. */
    put_be32(tiny + 16, 30000);
    put_be32(tiny + 20, 30000);
    put_be32(tiny + 29, crc32_of(tiny + 12, 17));
    post_expect(url, "image/png", tiny, ntiny, 413);
    free(tiny);

    /* Multipart and JSON that do not parse. */
    const char *mp = "--XYZ\r\nContent-Disposition: form-data; name=\"image\"; "
                     "filename=\"a.jpg\"\r\n\r\nabc"; /* never closed */
    post_expect(url, "multipart/form-data; boundary=XYZ", mp, strlen(mp), 400);
    post_expect(url, "multipart/form-data", mp, strlen(mp), 400); /* no boundary */
    post_expect(url, "application/json", "{\"instances\": [", 15, 400);
    post_expect(url, "application/json", "{\"images\": []}", 14, 400);
    post_expect(url, "application/json", "{\"instances\": [{\"b64\": \"@@@\"}]}", 31, 400);

    /* top_k out of range. */
    post_expect("/v1/models/mobilenet_v2:classify?top_k=0", "image/jpeg", jpg, njpg, 400);
    post_expect("/v1/models/mobilenet_v2:classify?top_k=-1", "image/jpeg", jpg, njpg, 400);
    post_expect("/v1/models/mobilenet_v2:classify?top_k=100000", "image/jpeg", jpg, njpg,
                400);
    post_expect("/v1/models/mobilenet_v2:classify?top_k=abc", "image/jpeg", jpg, njpg, 400);

    /* Larger than max_body_bytes (4 MB here). */
    size_t big = 5u << 20;
    char *zeros = calloc(1, big);
    ck_assert_ptr_nonnull(zeros);
    post_expect(url, "image/jpeg", zeros, big, 413);
    free(zeros);

    /* A client that asks "Expect: 100-continue" is refused before it
     * sends the body (no "100 Continue" first). */
    char req[256], reply[4096];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
             "Content-Length: %zu\r\nExpect: 100-continue\r\n\r\n", url, big);
    td_raw_exchange(&d, req, 10000, reply, sizeof reply);
    ck_assert_msg(strncmp(reply, "HTTP/1.1 413 ", 13) == 0, "reply: %s", reply);

    /* After all that, the daemon still answers correctly. */
    td_response_t r = post(url, "image/jpeg", jpg, njpg);
    expect(&r, 200);
    td_response_free(&r);
    free(jpg);
    free(png);
}
END_TEST

/* ---- metrics ---------------------------------------------------------------------- */

START_TEST(metrics_exposition)
{
    size_t n;
    void *jpg = shared_file("cat.jpg", &n);
    td_response_t r = post("/v1/models/mobilenet_v2:classify", "image/jpeg", jpg, n);
    expect(&r, 200);
    td_response_free(&r);
    free(jpg);
    r = get("/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    ck_assert_ptr_nonnull(td_header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_msg(strstr(ct, "version=0.0.4"), "%s", ct);
    ck_assert_double_ge(td_metric(r.body, "imgclassd_images_total{model=\"mobilenet_v2\","
                                          "status=\"ok\"}"), 1);
    ck_assert_double_eq(td_metric(r.body, "imgclassd_model_ready{model=\"mobilenet_v2\"}"), 1);
    ck_assert_double_ge(td_metric(r.body, "imgclassd_batch_size_count{model=\"mobilenet_v2\"}"), 1);
    ck_assert_double_gt(td_metric(r.body, "process_resident_memory_bytes"), 1e6);
    /* promtool (Debian's prometheus package) accepts it. */
    char path[] = "/tmp/imgclassd-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, r.body, r.size), (ssize_t)r.size);
    close(fd);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "promtool check metrics failed (or is missing: make deps)");
    td_response_free(&r);
}
END_TEST

int main(void)
{
    tu_require_shared();
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, health_and_models);
    tcase_add_test(tc, classify_forms);
    tcase_add_test(tc, shared_expected);
    tcase_add_test(tc, bad_inputs);
    tcase_add_test(tc, metrics_exposition);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
