/* Accuracy end to end: the embedded default model (models/fashion-mnist)
 * served by the real daemon classifies all 10,000 Fashion-MNIST test
 * images, each PNG-encoded and sent over HTTP, with the accuracy PyTorch
 * measured for the same model (models/fashion-mnist/eval.json), within
 * 0.1 point. The images come from Debian's dataset-fashion-mnist. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spng.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/daemon.h"
#include "util/testutil.h"

#define DATASET "/usr/share/datasets/fashion-mnist"
#define CLIENTS 16

/* Reads a gzip'ed IDX file; returns its payload after the header. */
static unsigned char *read_idx(const char *path, size_t header, size_t expect)
{
    gzFile f = gzopen(path, "rb");
    ck_assert_msg(f, "cannot open %s (make deps installs dataset-fashion-mnist)", path);
    unsigned char *buf = malloc(header + expect);
    ck_assert_ptr_nonnull(buf);
    int n = gzread(f, buf, (unsigned)(header + expect));
    gzclose(f);
    ck_assert_msg(n == (int)(header + expect), "%s: short read", path);
    unsigned char *data = malloc(expect);
    ck_assert_ptr_nonnull(data);
    memcpy(data, buf + header, expect);
    free(buf);
    return data;
}

static void *encode_gray_png(const unsigned char *px, size_t *size)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    ck_assert_ptr_nonnull(ctx);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {.width = 28, .height = 28, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_GRAYSCALE};
    ck_assert_int_eq(spng_set_ihdr(ctx, &ihdr), 0);
    ck_assert_int_eq(spng_encode_image(ctx, px, 28 * 28, SPNG_FMT_PNG,
                                       SPNG_ENCODE_FINALIZE), 0);
    int err;
    void *out = spng_get_png_buffer(ctx, size, &err);
    ck_assert_ptr_nonnull(out);
    spng_ctx_free(ctx);
    return out;
}

typedef struct work {
    const td_daemon_t *d;
    const unsigned char *images, *labels;
    atomic_int next, correct, failed;
} work_t;

static void *client_main(void *arg)
{
    work_t *w = arg;
    int i;
    while ((i = atomic_fetch_add(&w->next, 1)) < 10000) {
        size_t n;
        void *png = encode_gray_png(w->images + (size_t)i * 784, &n);
        td_response_t r;
        int top1 = -1;
        if (td_request(w->d, "POST", "/v1/models/fashion-mnist:classify?top_k=1",
                       "image/png", png, n, NULL, &r) == 0 && r.status == 200) {
            json_t *j = json_loads(r.body, 0, NULL);
            json_t *p = json_array_get(json_object_get(json_array_get(
                                           json_object_get(j, "results"), 0), "predictions"), 0);
            if (p)
                top1 = (int)json_integer_value(json_object_get(p, "index"));
            json_decref(j);
        }
        if (top1 < 0)
            atomic_fetch_add(&w->failed, 1);
        else if (top1 == w->labels[i])
            atomic_fetch_add(&w->correct, 1);
        td_response_free(&r);
        free(png);
    }
    return NULL;
}

START_TEST(fashion_mnist_over_http)
{
    json_error_t je;
    json_t *eval = json_load_file("models/fashion-mnist/eval.json", 0, &je);
    ck_assert_msg(eval, "models/fashion-mnist/eval.json: %s", je.text);
    double expected = json_real_value(json_object_get(eval, "test_accuracy"));
    ck_assert_double_gt(expected, 0.9);
    json_decref(eval);

    work_t w = {.images = read_idx(DATASET "/t10k-images-idx3-ubyte.gz", 16, 10000 * 784),
                .labels = read_idx(DATASET "/t10k-labels-idx1-ubyte.gz", 8, 10000)};
    td_daemon_t d;
    static const char *const env[] = {"IMGCLASSD_LOG_REQUESTS=false", NULL};
    td_start(&d, "models", env, 1, 60);
    w.d = &d;
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &w), 0);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    double acc = atomic_load(&w.correct) / 10000.0;
    printf("  Fashion-MNIST over HTTP: accuracy %.4f (PyTorch %.4f), %d failed requests\n",
           acc, expected, atomic_load(&w.failed));
    ck_assert_int_eq(atomic_load(&w.failed), 0);
    ck_assert_msg(acc >= 0.90, "accuracy %.4f is below 90%%", acc);
    ck_assert_msg(acc > expected - 0.001 && acc < expected + 0.001,
                  "accuracy %.4f differs from PyTorch's %.4f by more than 0.1 point", acc,
                  expected);
    free((void *)w.images);
    free((void *)w.labels);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("accuracy");
    TCase *tc = tcase_create("fashion-mnist");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, fashion_mnist_over_http);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    curl_global_cleanup();
    return rc;
}
