/* Operating the daemon: command-line flags without a config file, --help,
 * refused configurations, bearer tokens, CORS, JSON access logs with
 * trace context, and Triton-compatible metric names. */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/daemon.h"
#include "util/testutil.h"

static const char *bin(void)
{
    return getenv("IMGCLASSD") ? getenv("IMGCLASSD") : "build/imgclassd";
}

/* Runs the daemon with args; returns its exit status and its stderr. */
static int run_capture(const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin(), args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}


START_TEST(flags_and_help)
{
    char out[16384];
    ck_assert_int_eq(run_capture("--help", out, sizeof out), 0);
    const char *flags[] = {"--port", "--models-dir", "--listen", "--max-body-bytes",
                           "--drain-grace-ms", "--log-format", "--auth-tokens-file",
                           "--cors-origins", "IMGCLASSD_PORT"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(out, flags[i]), "--help does not list %s", flags[i]);

    /* A bad setting is refused at start with its name. */
    ck_assert_int_eq(run_capture("--port 70000", out, sizeof out), 1);
    ck_assert_msg(strstr(out, "--port"), "%s", out);
    ck_assert_int_eq(run_capture("--no-such-flag 1", out, sizeof out), 2);
    char path[] = "/tmp/imgclassd-conf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    td_write_file(path, "{\"port\": 8080, \"max_conections\": 10}");
    char args[256];
    snprintf(args, sizeof args, "-c %s", path);
    ck_assert_int_eq(run_capture(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "max_conections"), "%s", out);
    td_write_file(path, "{\"log_format\": \"xml\"}");
    ck_assert_int_eq(run_capture(args, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "log_format"), "%s", out);
    td_write_file(path, "{\"port\": ");
    ck_assert_int_eq(run_capture(args, out, sizeof out), 1);
    unlink(path);

    /* No config file at all: --port and --models are enough. */
    td_daemon_t d;
    td_start_flags(&d, tu_test_models(), NULL, NULL, 1, 60);
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models/mobilenet_v1", NULL, NULL, 0, NULL,
                                &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
}
END_TEST

START_TEST(bearer_tokens)
{
    char path[] = "/tmp/imgclassd-tokens-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    td_write_file(path, "# operators\nsecret-one\n\nsecret-two\n");
    char arg[300];
    snprintf(arg, sizeof arg, "IMGCLASSD_AUTH_TOKENS_FILE=%s", path);
    const char *env[] = {arg, NULL};
    td_daemon_t d;
    td_start(&d, tu_test_models(), env, 1, 60);
    td_response_t r;
    char buf[128];
    /* Models and inference need a token; health and metrics stay open. */
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(td_header(&r, "WWW-Authenticate", buf, sizeof buf));
    td_response_free(&r);
    const char *bad[] = {"Authorization: Bearer secret-on", "Authorization: Bearer secret-one-",
                         "Authorization: Basic c2VjcmV0LW9uZQ==", "Authorization: Bearer "};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(td_request(&d, "POST", "/v1/models/mobilenet_v1:classify",
                                    "image/jpeg", "x", 1, bad[i], &r), 0);
        ck_assert_msg(r.status == 401, "%s: %ld", bad[i], r.status);
        td_response_free(&r);
    }
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models", NULL, NULL, 0,
                                "Authorization: Bearer secret-two", &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    const char *open[] = {"/healthz", "/readyz", "/v2/health/ready", "/metrics"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(td_request(&d, "GET", open[i], NULL, NULL, 0, NULL, &r), 0);
        ck_assert_msg(r.status == 200, "%s: %ld", open[i], r.status);
        td_response_free(&r);
    }
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);

    /* Metrics can be closed too. */
    const char *env2[] = {arg, "IMGCLASSD_AUTH_METRICS=true", NULL};
    td_start(&d, tu_test_models(), env2, 1, 60);
    ck_assert_int_eq(td_request(&d, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(r.status, 401);
    td_response_free(&r);
    ck_assert_int_eq(td_request(&d, "GET", "/metrics", NULL, NULL, 0,
                                "Authorization: Bearer secret-one", &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
    unlink(path);
}
END_TEST

START_TEST(cors)
{
    const char *env[] = {"IMGCLASSD_CORS_ORIGINS=https://a.example, https://b.example", NULL};
    td_daemon_t d;
    td_start(&d, tu_test_models(), env, 1, 60);
    td_response_t r;
    char buf[256];
    ck_assert_int_eq(td_request(&d, "OPTIONS", "/v1/models/mobilenet_v1:classify", NULL,
                                NULL, 0, "Origin: https://b.example", &r), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_str_eq(td_header(&r, "Access-Control-Allow-Origin", buf, sizeof buf),
                     "https://b.example");
    ck_assert_ptr_nonnull(td_header(&r, "Access-Control-Allow-Methods", buf, sizeof buf));
    ck_assert_msg(strstr(td_header(&r, "Access-Control-Allow-Headers", buf, sizeof buf),
                         "Authorization"), "%s", buf);
    td_response_free(&r);
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models", NULL, NULL, 0,
                                "Origin: https://a.example", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(td_header(&r, "Access-Control-Allow-Origin", buf, sizeof buf),
                     "https://a.example");
    td_response_free(&r);
    ck_assert_int_eq(td_request(&d, "GET", "/v1/models", NULL, NULL, 0,
                                "Origin: https://evil.example", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(td_header(&r, "Access-Control-Allow-Origin", buf, sizeof buf));
    td_response_free(&r);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);
}
END_TEST

START_TEST(json_access_log)
{
    const char *env[] = {"IMGCLASSD_LOG_FORMAT=json", "IMGCLASSD_TRITON_METRICS=true", NULL};
    td_daemon_t d;
    td_start(&d, tu_test_models(), env, 1, 60);
    char p[512];
    size_t n;
    void *img = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/cat.jpg",
                                     tu_shared_dir()), &n);
    ck_assert_ptr_nonnull(img);
    td_response_t r;
    const char *tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/mobilenet_v1:classify",
                                "image/jpeg", img, n, tp, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char id[128];
    ck_assert_ptr_nonnull(td_header(&r, "X-Request-Id", id, sizeof id));
    td_response_free(&r);
    free(img);

    /* Triton's names are exported beside ours. */
    ck_assert_int_eq(td_request(&d, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    const char *names[] = {"nv_inference_request_success{model=\"mobilenet_v1\",version=\"1\"}",
                           "nv_inference_count{model=\"mobilenet_v1\",version=\"1\"}",
                           "nv_inference_exec_count{model=\"mobilenet_v1\",version=\"1\"}"};
    for (int i = 0; i < 3; i++)
        ck_assert_msg(td_metric(r.body, names[i]) >= 1, "%s missing", names[i]);
    ck_assert_msg(strstr(r.body, "nv_inference_compute_infer_duration_us"), "no compute us");
    ck_assert_msg(strstr(r.body, "nv_inference_queue_duration_us"), "no queue us");
    ck_assert_msg(strstr(r.body, "nv_inference_request_duration_us"), "no request us");
    ck_assert_msg(strstr(r.body, "nv_inference_pending_request_count"), "no pending");
    ck_assert_msg(strstr(r.body, "nv_inference_request_failure"), "no failure");
    td_response_free(&r);
    ck_assert_int_eq(td_stop(&d, SIGTERM), 0);

    /* Every line of the log is a JSON object; the request's has its fields. */
    size_t size;
    char *log = td_read_file(d.log_path, &size);
    ck_assert_ptr_nonnull(log);
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j, "not a JSON line: %s", line);
        const char *rid = json_string_value(json_object_get(j, "request_id"));
        if (rid && !strcmp(rid, id)) {
            found = 1;
            ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "mobilenet_v1");
            ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
            ck_assert_int_eq(json_integer_value(json_object_get(j, "batch_size")), 1);
            ck_assert(json_is_number(json_object_get(j, "queue_ms")));
            ck_assert(json_is_number(json_object_get(j, "inference_ms")));
            ck_assert_int_gt(json_integer_value(json_object_get(j, "bytes_in")), 1000);
            ck_assert_int_gt(json_integer_value(json_object_get(j, "bytes_out")), 100);
            ck_assert_str_eq(json_string_value(json_object_get(j, "traceparent")),
                             tp + strlen("traceparent: "));
        }
        json_decref(j);
    }
    ck_assert_msg(found, "no access-log line for request %s", id);
    free(log);
}
END_TEST

int main(void)
{
    tu_require_shared();
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, flags_and_help);
    tcase_add_test(tc, bearer_tokens);
    tcase_add_test(tc, cors);
    tcase_add_test(tc, json_access_log);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
