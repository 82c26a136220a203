/* The daemon under load and through its life cycle: 64 concurrent clients
 * (answers equal to the engine's own, real batching), SIGTERM under load
 * (nothing accepted is lost), SIGHUP with a broken model (the old one
 * keeps serving), deadlines (504), a full queue (503 + Retry-After) and a
 * client that hangs up (its job is dropped before it runs). */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "imgclass/nn.h"
#include "classify/image.h"
#include "classify/model_config.h"
#include "classify/preprocess.h"
#include "util/daemon.h"
#include "util/testutil.h"

static const char *const photos[] = {"bird.jpg", "cat.jpg", "dragonfly.jpg",
                                     "grace_hopper.jpg", "sunflower.jpg", "squat.jpg",
                                     "parrot.jpg", "hot_dog.jpg"};
#define N_PHOTOS 8

typedef struct photo {
    void *data;
    size_t size;
    int offline_top1; /* the engine's answer, in process */
} photo_t;

static photo_t ph[N_PHOTOS];


/* Reads the photos and computes each one's top-1 with the engine directly
 * (same config, decoder and preprocessing as the daemon's model: the test
 * repository's model `name`). */
static void load_photos(const char *name)
{
    model_config_t mc;
    char msg[512], model_dir[600];
    tu_path(model_dir, sizeof model_dir, "%s/%s", tu_test_models(), name);
    ck_assert_msg(model_config_load(&mc, model_dir, msg, sizeof msg) == 0, "%s", msg);
    nn_model_t *m;
    nn_error_t err;
    ck_assert_msg(nn_model_load(&m, mc.model_path, &err) == 0, "%s", err.msg);
    const nn_tensor_info_t *in = nn_model_input(m, 0);
    pre_config_t pre;
    ck_assert_msg(pre_config_parse(mc.preprocess, (int)in->dims[3], (int)in->dims[2],
                                   (int)in->dims[1], &pre, msg, sizeof msg) == 0,
                  "%s", msg);
    nn_context_t *ctx;
    ck_assert_int_eq(nn_context_create(&ctx, m, 1, 1, &err), 0);
    size_t ni = nn_model_input_elems(m, 0, 1), no = nn_model_output_elems(m, 0, 1);
    float *x = malloc(ni * sizeof *x), *y = malloc(no * sizeof *y);
    ck_assert(x && y);
    for (int i = 0; i < N_PHOTOS; i++) {
        char p[512];
        ph[i].data = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/%s",
                                          tu_shared_dir(), photos[i]), &ph[i].size);
        ck_assert_ptr_nonnull(ph[i].data);
        img_limits_t lim = {.min_side = 8, .max_pixels = 50000000};
        pre_decode_hint(&pre, &lim);
        img_rgb_t img;
        ck_assert_int_eq(img_decode(ph[i].data, ph[i].size, &lim, &img, msg, sizeof msg),
                         IC_OK);
        ck_assert_int_eq(pre_run(&pre, &img, x, msg, sizeof msg), 0);
        img_free(&img);
        const float *ins[1] = {x};
        float *outs[1] = {y};
        ck_assert_int_eq(nn_context_run(ctx, 1, ins, outs, &err), 0);
        int best = 0;
        for (size_t k = 1; k < no; k++)
            if (y[k] > y[best])
                best = (int)k;
        ph[i].offline_top1 = best;
    }
    free(x);
    free(y);
    nn_context_free(ctx);
    nn_model_free(m);
    model_config_free(&mc);
}

static void free_photos(void)
{
    for (int i = 0; i < N_PHOTOS; i++)
        free(ph[i].data);
}

static int answer_top1(const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    if (!j)
        return -1;
    json_t *p = json_array_get(json_object_get(json_array_get(json_object_get(j, "results"), 0),
                                               "predictions"), 0);
    int idx = p ? (int)json_integer_value(json_object_get(p, "index")) : -1;
    json_decref(j);
    return idx;
}

static char *get_metrics(const td_daemon_t *d)
{
    td_response_t r;
    ck_assert_int_eq(td_request(d, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    return r.body;
}

/* ---- 64 concurrent clients -------------------------------------------------------- */

typedef struct client {
    const td_daemon_t *d;
    const char *path;
    int requests;       /* 0: until *stop */
    atomic_int *stop;
    int ok, wrong, refused, lost, other_status;
    int shed; /* 503 after the drain grace period: refused, not lost */
    int seed;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    for (int i = 0; c->requests ? i < c->requests : !atomic_load(c->stop); i++) {
        int k = (c->seed + i) % N_PHOTOS;
        td_response_t r;
        if (td_request(c->d, "POST", c->path, "image/jpeg", ph[k].data, ph[k].size, NULL,
                       &r) != 0) {
            /* Refused connections were never accepted; anything else
             * (reset, empty reply) would be a lost request. */
            if (r.curl_code == CURLE_COULDNT_CONNECT)
                c->refused++;
            else {
                c->lost++;
                fprintf(stderr, "lost: %s\n", curl_easy_strerror(r.curl_code));
            }
        } else if (r.status == 503 && c->stop && strstr(r.body, "shutting down")) {
            c->shed++;
        } else if (r.status != 200) {
            c->other_status++;
            fprintf(stderr, "status %ld: %s\n", r.status, r.body);
        } else if (answer_top1(r.body) == ph[k].offline_top1) {
            c->ok++;
        } else {
            c->wrong++;
        }
        td_response_free(&r);
        if (c->refused)
            break; /* the server is gone */
    }
    return NULL;
}

static void run_clients(client_t *cl, int n)
{
    pthread_t t[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &cl[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

START_TEST(concurrent_clients)
{
    load_photos("mobilenet_v1");
    td_daemon_t d;
    td_start(&d, tu_test_models(), NULL, 1, 60);
    client_t cl[64];
    for (int i = 0; i < 64; i++)
        cl[i] = (client_t){.d = &d, .path = "/v1/models/mobilenet_v1:classify",
                           .requests = 12, .seed = i};
    run_clients(cl, 64);
    int ok = 0;
    for (int i = 0; i < 64; i++) {
        ck_assert_msg(cl[i].wrong == 0 && cl[i].lost == 0 && cl[i].refused == 0 &&
                          cl[i].other_status == 0,
                      "client %d: %d wrong, %d lost, %d refused, %d errors", i,
                      cl[i].wrong, cl[i].lost, cl[i].refused, cl[i].other_status);
        ok += cl[i].ok;
    }
    ck_assert_int_eq(ok, 64 * 12);
    char *m = get_metrics(&d);
    double n = td_metric(m, "imgclassd_batch_size_count{model=\"mobilenet_v1\"}");
    double sum = td_metric(m, "imgclassd_batch_size_sum{model=\"mobilenet_v1\"}");
    double ones = td_metric(m, "imgclassd_batch_size_bucket{model=\"mobilenet_v1\",le=\"1\"}");
    printf("  %d answers, %.0f batches, mean batch %.2f, %.0f batches of one\n", ok, n,
           sum / n, ones);
    ck_assert_double_eq(sum, 64 * 12);
    ck_assert_msg(sum / n > 2.0, "mean batch size %.2f: no real batching", sum / n);
    free(m);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    free_photos();
}
END_TEST

/* ---- SIGTERM under load ----------------------------------------------------------- */

START_TEST(sigterm_under_load)
{
    load_photos("mobilenet_v1");
    td_daemon_t d;
    static const char *const env[] = {"IMGCLASSD_DRAIN_GRACE_MS=800", NULL};
    td_start(&d, tu_test_models(), env, 1, 60);
    atomic_int stop = 0;
    client_t cl[32];
    for (int i = 0; i < 32; i++)
        cl[i] = (client_t){.d = &d, .path = "/v1/models/mobilenet_v1:classify",
                           .stop = &stop, .seed = i};
    pthread_t t[32];
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &cl[i]), 0);
    td_sleep_ms(1500);
    kill(d.pid, SIGTERM);
    /* Readiness drops at once while requests are still served. */
    td_sleep_ms(200);
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "GET", "/readyz", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 503);
    td_response_free(&r);
    int status = td_stop(&d, 0); /* signal 0: just wait for the exit */
    atomic_store(&stop, 1);
    for (int i = 0; i < 32; i++)
        pthread_join(t[i], NULL);
    int ok = 0, lost = 0, refused = 0, bad = 0, shed = 0;
    for (int i = 0; i < 32; i++) {
        ok += cl[i].ok;
        shed += cl[i].shed;
        lost += cl[i].lost;
        refused += cl[i].refused;
        bad += cl[i].wrong + cl[i].other_status;
    }
    printf("  SIGTERM: %d answered, %d lost, %d answered 503 after the grace period, "
           "%d refused after close, %d bad\n", ok, lost, shed, refused, bad);
    ck_assert_int_eq(status, 0);
    ck_assert_int_gt(ok, 32);
    ck_assert_int_eq(lost, 0);
    ck_assert_int_eq(bad, 0);
    ck_assert(td_log_contains(&d, "all requests answered"));
    free_photos();
}
END_TEST

/* ---- a private repository with one small model ------------------------------------ */


static void copy_file(const char *from, const char *to, size_t limit)
{
    size_t n;
    void *data = td_read_file(from, &n);
    ck_assert_msg(data, "cannot read %s", from);
    FILE *f = fopen(to, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(data, 1, n < limit ? n : limit, f);
    ck_assert_int_eq(fclose(f), 0);
    free(data);
}

/* tmp/<pid>/m with a copy of the small shared model and the given settings. */
static void make_repo(char *dir, size_t size, const char *settings, const char *version)
{
    snprintf(dir, size, "/tmp/imgclassd-repo-%d", (int)getpid());
    mkdir(dir, 0755);
    char p[600], q[600], text[2048];
    snprintf(p, sizeof p, "%s/m", dir);
    mkdir(p, 0755);
    copy_file(tu_path(q, sizeof q, "%s/imagenet/mobilenet_v1_0.25_128.onnx", tu_shared_dir()),
              tu_path(p, sizeof p, "%s/m/model.onnx", dir), SIZE_MAX);
    copy_file(tu_path(q, sizeof q, "%s/imagenet/imagenet_labels.txt", tu_shared_dir()),
              tu_path(p, sizeof p, "%s/m/labels.txt", dir), SIZE_MAX);
    snprintf(text, sizeof text,
             "{\"version\": \"%s\", \"preprocess\": {\"resize\": \"stretch\", "
             "\"antialias\": false, \"crop\": \"none\", \"scale\": 1, \"mean\": 128, "
             "\"std\": 128}%s%s}", version, settings[0] ? ", " : "", settings);
    td_write_file(tu_path(p, sizeof p, "%s/m/config.json", dir), text);
}

static void remove_repo(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The shared cat photo (malloc'ed); fails the test when unreadable. */
static void *cat_jpg(size_t *n)
{
    char p[512];
    void *img = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/cat.jpg",
                                     tu_shared_dir()), n);
    ck_assert_msg(img, "cannot read %s", p);
    return img;
}

static const char *model_version(const td_daemon_t *d, char *buf, size_t size)
{
    td_response_t r;
    ck_assert_int_eq(td_request(d, "GET", "/v1/models/m", NULL, NULL, 0, NULL, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    snprintf(buf, size, "%s", json_string_value(json_object_get(j, "version")) ?
             json_string_value(json_object_get(j, "version")) : "");
    json_decref(j);
    td_response_free(&r);
    return buf;
}

START_TEST(sighup_reload)
{
    load_photos("mobilenet_v1");
    char dir[256], p[600], q[600], v[64];
    make_repo(dir, sizeof dir, "", "1");
    td_daemon_t d;
    td_start(&d, dir, NULL, 1, 60);
    ck_assert_str_eq(model_version(&d, v, sizeof v), "1");

    /* A broken model file: the old model keeps answering. */
    copy_file(tu_path(q, sizeof q, "%s/imagenet/mobilenet_v1_0.25_128.onnx", tu_shared_dir()),
              tu_path(p, sizeof p, "%s/m/model.onnx.new", dir), 1000);
    ck_assert_int_eq(rename(p, tu_path(q, sizeof q, "%s/m/model.onnx", dir)), 0);
    kill(d.pid, SIGHUP);
    int failed = 0;
    for (int t = 0; t < 100 && !failed; t++) {
        td_sleep_ms(50);
        char *m = get_metrics(&d);
        failed = td_metric(m, "imgclassd_model_load_failures_total{model=\"m\"}") == 1;
        free(m);
    }
    ck_assert_msg(failed, "the broken model's load failure was not counted");
    ck_assert(td_log_contains(&d, "keeps serving"));
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/m:classify", "image/jpeg",
                                ph[1].data, ph[1].size, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(answer_top1(r.body), ph[1].offline_top1);
    td_response_free(&r);
    ck_assert_str_eq(model_version(&d, v, sizeof v), "1");
    ck_assert_int_eq(td_request(&d, "GET", "/readyz", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);

    /* A good model with a new version is swapped in. */
    remove_repo(dir);
    make_repo(dir, sizeof dir, "", "2");
    kill(d.pid, SIGHUP);
    int swapped = 0;
    for (int t = 0; t < 100 && !swapped; t++) {
        td_sleep_ms(50);
        swapped = strcmp(model_version(&d, v, sizeof v), "2") == 0;
    }
    ck_assert_msg(swapped, "version 2 was not swapped in");
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/m:classify", "image/jpeg",
                                ph[1].data, ph[1].size, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    remove_repo(dir);
    free_photos();
}
END_TEST

/* ---- deadline, full queue, client gone -------------------------------------------- */

START_TEST(deadline_504)
{
    char dir[256];
    /* The batch waits 2 s for company; the deadline is 200 ms. */
    make_repo(dir, sizeof dir, "\"max_batch_size\": 64, \"max_queue_delay_us\": 2000000, "
                               "\"timeout_ms\": 200", "1");
    td_daemon_t d;
    td_start(&d, dir, NULL, 1, 60);
    size_t n;
    void *img = cat_jpg(&n);
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/m:classify", "image/jpeg", img, n,
                                NULL, &r), 0);
    ck_assert_msg(r.status == 504, "%ld %s", r.status, r.body);
    td_response_free(&r);
    char *m = get_metrics(&d);
    ck_assert_double_eq(td_metric(m, "imgclassd_images_total{model=\"m\",status=\"timeout\"}"), 1);
    free(m);
    free(img);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    remove_repo(dir);
}
END_TEST

typedef struct bg_post {
    const td_daemon_t *d;
    void *img;
    size_t n;
    long status;
    int timeout_ms;
} bg_post_t;

static void *bg_post_main(void *arg)
{
    bg_post_t *b = arg;
    td_response_t r;
    if (td_request_ex(b->d, "POST", "/v1/models/m:classify", "image/jpeg", b->img, b->n,
                      NULL, b->timeout_ms, &r) == 0)
        b->status = r.status;
    td_response_free(&r);
    return NULL;
}

/* Two idle instances share a burst: 8 requests make two batches of 4 that
 * run side by side, not one of 8 while the other instance looks on. */
START_TEST(burst_shared_by_instances)
{
    char dir[256];
    make_repo(dir, sizeof dir, "\"max_batch_size\": 8, \"max_queue_delay_us\": 2000000, "
                               "\"instances\": 2, \"threads\": 1", "1");
    td_daemon_t d;
    td_start(&d, dir, NULL, 1, 60);
    size_t n;
    void *img = cat_jpg(&n);
    bg_post_t b[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (bg_post_t){.d = &d, .img = img, .n = n, .timeout_ms = 30000};
        ck_assert_int_eq(pthread_create(&t[i], NULL, bg_post_main, &b[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(b[i].status, 200);
    }
    char *m = get_metrics(&d);
    double batches = td_metric(m, "imgclassd_batch_size_count{model=\"m\"}");
    double upto4 = td_metric(m, "imgclassd_batch_size_bucket{model=\"m\",le=\"4\"}");
    printf("  8 requests, 2 idle instances: %.0f batches, %.0f of them of 4 or fewer\n",
           batches, upto4);
    ck_assert_double_eq(td_metric(m, "imgclassd_batch_size_sum{model=\"m\"}"), 8);
    ck_assert_double_eq(batches, 2);
    ck_assert_double_eq(upto4, 2);
    free(m);
    free(img);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    remove_repo(dir);
}
END_TEST

START_TEST(queue_full_503)
{
    char dir[256];
    make_repo(dir, sizeof dir, "\"max_batch_size\": 8, \"max_queue_delay_us\": 1000000, "
                               "\"queue_capacity\": 1", "1");
    td_daemon_t d;
    td_start(&d, dir, NULL, 1, 60);
    bg_post_t b = {.d = &d};
    b.img = cat_jpg(&b.n);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, bg_post_main, &b), 0);
    td_sleep_ms(300); /* the first image now waits in the queue */
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/m:classify", "image/jpeg", b.img,
                                b.n, NULL, &r), 0);
    char ra[32];
    ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(td_header(&r, "Retry-After", ra, sizeof ra));
    td_response_free(&r);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.status, 200); /* the queued one is served */
    char *m = get_metrics(&d);
    ck_assert_double_eq(td_metric(m, "imgclassd_images_total{model=\"m\",status=\"rejected\"}"), 1);
    free(m);
    free(b.img);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    remove_repo(dir);
}
END_TEST

START_TEST(client_gone_cancelled)
{
    char dir[256];
    make_repo(dir, sizeof dir, "\"max_batch_size\": 8, \"max_queue_delay_us\": 3000000",
              "1");
    td_daemon_t d;
    td_start(&d, dir, NULL, 1, 60);
    bg_post_t b = {.d = &d, .timeout_ms = 300};
    b.img = cat_jpg(&b.n);
    bg_post_main(&b); /* gives up after 300 ms, long before the batch would run */
    ck_assert_int_eq(b.status, 0);
    int cancelled = 0;
    for (int t = 0; t < 20 && !cancelled; t++) {
        td_sleep_ms(50);
        char *m = get_metrics(&d);
        cancelled = td_metric(m, "imgclassd_images_total{model=\"m\",status=\"cancelled\"}") == 1;
        ck_assert_double_eq(td_metric(m, "imgclassd_images_total{model=\"m\",status=\"ok\"}"), 0);
        ck_assert_double_eq(td_metric(m, "imgclassd_queue_depth{model=\"m\"}"), cancelled ? 0 : 1);
        free(m);
    }
    ck_assert_msg(cancelled, "the job of a client that hung up was not cancelled");
    /* The instance that was waiting for that job (until its batch delay
     * ran out) still serves afterwards. */
    td_sleep_ms(3200);
    b.timeout_ms = 20000;
    b.status = 0;
    bg_post_main(&b);
    ck_assert_int_eq(b.status, 200);
    free(b.img);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    remove_repo(dir);
}
END_TEST

int main(void)
{
    tu_require_shared();
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("load");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, concurrent_clients);
    tcase_add_test(tc, sigterm_under_load);
    tcase_add_test(tc, sighup_reload);
    tcase_add_test(tc, deadline_504);
    tcase_add_test(tc, burst_shared_by_instances);
    tcase_add_test(tc, queue_full_503);
    tcase_add_test(tc, client_gone_cancelled);
    suite_add_tcase(s, tc);
    int rc = tu_run_suite(s);
    curl_global_cleanup();
    return rc;
}
