/* Prometheus metrics: exact exposition text, number formatting, refused
 * declarations, concurrent updates, and promtool's verdict on the output
 * (promtool comes with Debian's prometheus package: `make deps`). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "util/testutil.h"

static const char *const NO_LABELS[] = { NULL };

/* Renders m, checks the length, and returns the text (to free). */
static char *render(metrics_t *m)
{
    size_t len = (size_t)-1;
    char *text = metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    return text;
}

/* ---- exact text ---------------------------------------------------------------- */

START_TEST(render_exact)
{
    metrics_t *m = metrics_create();
    ck_assert_ptr_nonnull(m);

    const char *req_labels[] = { "model", "code", NULL };
    metric_family_t *req = metrics_family(m, "req_total", "Requests.\nBy \\ model.",
                                          METRIC_COUNTER, req_labels, NULL, 0);
    metric_family_t *depth = metrics_family(m, "queue_depth", "Queued jobs.",
                                            METRIC_GAUGE, NULL, NULL, 0);
    const char *lat_labels[] = { "model", NULL };
    const double bounds[] = { 0.005, 0.5, 2.5 };
    metric_family_t *lat = metrics_family(m, "latency_seconds", "Latency.",
                                          METRIC_HISTOGRAM, lat_labels, bounds, 3);
    metric_family_t *plain = metrics_family(m, "plain_seconds", NULL,
                                            METRIC_HISTOGRAM, NULL, bounds + 2, 1);
    metric_family_t *idle = metrics_family(m, "idle_total", "Never used.",
                                           METRIC_COUNTER, NULL, NULL, 0);
    ck_assert(req && depth && lat && plain && idle);

    const char *v1[] = { "resnet\"18\"", "200", NULL };
    const char *v2[] = { "a\\b\nc", "500", NULL };
    metric_add(metrics_series(req, v1), 3);
    metric_add(metrics_series(req, v2), 1.5);
    metric_add(metrics_series(req, v1), 1); /* the same series again */

    metric_series_t *d = metrics_series(depth, NULL);
    metric_set(d, 7);
    metric_add(d, -2);

    const char *lv[] = { "x\"y", NULL };
    metric_series_t *h = metrics_series(lat, lv);
    /* Exact binary fractions so the sum prints exactly; 0.5 sits on a
     * bound, which is inclusive. */
    const double obs[] = { 0.00390625, 0.25, 0.5, 2, 8 };
    for (int i = 0; i < 5; i++)
        metric_observe(h, obs[i]);
    metric_observe(metrics_series(plain, NO_LABELS), 3);

    static const char expected[] =
        "# HELP req_total Requests.\\nBy \\\\ model.\n"
        "# TYPE req_total counter\n"
        "req_total{model=\"resnet\\\"18\\\"\",code=\"200\"} 4\n"
        "req_total{model=\"a\\\\b\\nc\",code=\"500\"} 1.5\n"
        "# HELP queue_depth Queued jobs.\n"
        "# TYPE queue_depth gauge\n"
        "queue_depth 5\n"
        "# HELP latency_seconds Latency.\n"
        "# TYPE latency_seconds histogram\n"
        "latency_seconds_bucket{model=\"x\\\"y\",le=\"0.005\"} 1\n"
        "latency_seconds_bucket{model=\"x\\\"y\",le=\"0.5\"} 3\n"
        "latency_seconds_bucket{model=\"x\\\"y\",le=\"2.5\"} 4\n"
        "latency_seconds_bucket{model=\"x\\\"y\",le=\"+Inf\"} 5\n"
        "latency_seconds_sum{model=\"x\\\"y\"} 10.75390625\n"
        "latency_seconds_count{model=\"x\\\"y\"} 5\n"
        "# TYPE plain_seconds histogram\n"
        "plain_seconds_bucket{le=\"2.5\"} 0\n"
        "plain_seconds_bucket{le=\"+Inf\"} 1\n"
        "plain_seconds_sum 3\n"
        "plain_seconds_count 1\n"
        "# HELP idle_total Never used.\n"
        "# TYPE idle_total counter\n";
    char *text = render(m);
    ck_assert_str_eq(text, expected);
    free(text);

    ck_assert_double_eq(metric_value(metrics_series(req, v1)), 4);
    ck_assert_uint_eq(metric_count(h), 5);
    ck_assert_double_eq(metric_value(h), 10.75390625);
    metrics_free(m);
}
END_TEST

START_TEST(render_empty)
{
    metrics_t *m = metrics_create();
    char *text = render(m);
    ck_assert_str_eq(text, "");
    free(text);
    metrics_free(m);
}
END_TEST

/* ---- numbers ------------------------------------------------------------------- */

START_TEST(number_format)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        { 0, "0" },
        { 42, "42" },
        { -7, "-7" },
        { 123456789012, "123456789012" },
        { 0.1, "0.1" },
        { 0.005, "0.005" },
        { -2.5, "-2.5" },
        { 1.0 / 3, "0.3333333333333333" },
        { 1e20, "1e+20" },
        { 1.5e-7, "1.5e-07" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
        { NAN, "NaN" },
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    metrics_t *m = metrics_create();
    const char *labels[] = { "case", NULL };
    metric_family_t *g = metrics_family(m, "g", "Gauge.", METRIC_GAUGE, labels, NULL, 0);
    for (int i = 0; i < n; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        const char *v[] = { id, NULL };
        metric_set(metrics_series(g, v), cases[i].v);
    }
    char *text = render(m);
    for (int i = 0; i < n; i++) {
        char line[80];
        snprintf(line, sizeof line, "\ng{case=\"%d\"} %s\n", i, cases[i].text);
        ck_assert_msg(strstr(text, line), "missing %s in:\n%s", line, text);
        /* Every printed value reads back as the same double. */
        if (!isnan(cases[i].v))
            ck_assert_double_eq(strtod(cases[i].text, NULL), cases[i].v);
    }
    free(text);
    metrics_free(m);
}
END_TEST

/* ---- refused declarations and misuse ------------------------------------------- */

static metric_family_t *counter_with(metrics_t *m, const char *name,
                                     const char *const *labels)
{
    return metrics_family(m, name, "Help.", METRIC_COUNTER, labels, NULL, 0);
}

START_TEST(bad_declarations)
{
    metrics_t *m = metrics_create();
    const char *bad_names[] = { "", "1abc", "a-b", "a b", "é", "a.b", NULL };
    for (int i = 0; bad_names[i]; i++)
        ck_assert_msg(!counter_with(m, bad_names[i], NULL), "accepted %s", bad_names[i]);
    ck_assert_ptr_null(counter_with(m, NULL, NULL));
    ck_assert_ptr_nonnull(counter_with(m, "ns:sub_name9_total", NULL));
    ck_assert_ptr_nonnull(counter_with(m, "_x", NULL));

    const char *bad_labels[][6] = {
        { "le", NULL },           { "__name", NULL },   { "a:b", NULL },
        { "1a", NULL },           { "", NULL },         { "a", "a", NULL },
        { "a", "b", "c", "d", "e", NULL },
    };
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++)
        ck_assert_msg(!counter_with(m, "lab_total", bad_labels[i]), "labels #%zu", i);
    const char *good[] = { "a", "_b", "c9", "D", NULL };
    ck_assert_ptr_nonnull(counter_with(m, "lab_total", good));

    /* Bounds: ascending, finite; none for counters and gauges. */
    const double desc[] = { 1, 0.5 }, dup[] = { 1, 1 }, inf[] = { 1, INFINITY },
                 nan_b[] = { NAN }, ok[] = { 1, 2 };
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, desc, 2));
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, dup, 2));
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, inf, 2));
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, nan_b, 1));
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, ok, -1));
    ck_assert_ptr_null(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, NULL, 2));
    ck_assert_ptr_null(metrics_family(m, "g1", "G.", METRIC_GAUGE, NULL, ok, 2));
    ck_assert_ptr_null(metrics_family(m, "g1", "G.", (metric_type_t)42, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(m, "g1", "\xff", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_nonnull(metrics_family(m, "h1", "H.", METRIC_HISTOGRAM, NULL, ok, 2));

    /* Names already taken, also by a histogram's samples. */
    ck_assert_ptr_null(counter_with(m, "lab_total", NULL));
    ck_assert_ptr_null(metrics_family(m, "h1_count", "G.", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(m, "h1_bucket", "G.", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_nonnull(metrics_family(m, "q_sum", "G.", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(m, "q", "H.", METRIC_HISTOGRAM, NULL, NULL, 0));
    ck_assert_ptr_nonnull(metrics_family(m, "h1_other", "G.", METRIC_GAUGE, NULL, NULL, 0));
    ck_assert_ptr_null(metrics_family(NULL, "x", "X.", METRIC_GAUGE, NULL, NULL, 0));

    /* Label values: present and UTF-8. */
    const char *one[] = { "model", NULL };
    metric_family_t *f = counter_with(m, "one_total", one);
    const char *null_value[] = { NULL };
    const char *bad_utf8[] = { "\xc3(", NULL };
    const char *overlong[] = { "\xc0\xaf", NULL };
    const char *surrogate[] = { "\xed\xa0\x80", NULL };
    const char *utf8[] = { "r\xc3\xa9seau \xe2\x82\xac \xf0\x9f\x98\x80", NULL };
    ck_assert_ptr_null(metrics_series(f, NULL));
    ck_assert_ptr_null(metrics_series(f, null_value));
    ck_assert_ptr_null(metrics_series(f, bad_utf8));
    ck_assert_ptr_null(metrics_series(f, overlong));
    ck_assert_ptr_null(metrics_series(f, surrogate));
    ck_assert_ptr_nonnull(metrics_series(f, utf8));
    metrics_free(m);
}
END_TEST

START_TEST(misuse_is_ignored)
{
    metrics_t *m = metrics_create();
    metric_family_t *c = counter_with(m, "c_total", NULL);
    metric_family_t *g = metrics_family(m, "g", "G.", METRIC_GAUGE, NULL, NULL, 0);
    const double b[] = { 1 };
    metric_family_t *h = metrics_family(m, "h", "H.", METRIC_HISTOGRAM, NULL, b, 1);
    metric_series_t *cs = metrics_series(c, NULL);
    metric_series_t *gs = metrics_series(g, NULL);
    metric_series_t *hs = metrics_series(h, NULL);
    ck_assert(cs && gs && hs);

    metric_add(cs, 2);
    metric_add(cs, -1);  /* counters only go up */
    metric_add(cs, NAN);
    metric_observe(cs, 1);
    ck_assert_double_eq(metric_value(cs), 2);
    ck_assert_uint_eq(metric_count(cs), 0);
    metric_set(cs, 100); /* a counter mirrored from elsewhere */
    ck_assert_double_eq(metric_value(cs), 100);

    metric_observe(gs, 5);
    metric_add(gs, -3);
    ck_assert_double_eq(metric_value(gs), -3);

    metric_add(hs, 5);
    metric_set(hs, 5);
    ck_assert_uint_eq(metric_count(hs), 0);
    ck_assert_double_eq(metric_value(hs), 0);

    /* NULL anywhere is harmless. */
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    ck_assert_double_eq(metric_value(NULL), 0);
    ck_assert_uint_eq(metric_count(NULL), 0);
    ck_assert_ptr_null(metrics_series(NULL, NULL));
    ck_assert_ptr_null(metrics_render(NULL, NULL));
    metrics_free(NULL);

    char *text = metrics_render(m, NULL); /* len is optional */
    ck_assert_ptr_nonnull(text);
    free(text);
    metrics_free(m);
}
END_TEST

/* ---- concurrency --------------------------------------------------------------- */

enum { N_THREADS = 4, N_ADDS = 100000, N_OWN_SERIES = 100 };

typedef struct conc {
    metrics_t *m;
    metric_family_t *counter, *gauge, *hist;
    atomic_int stop; /* tells the renderer the workers are done */
    int renders, bad_renders; /* written by the renderer only */
} conc_t;

typedef struct worker {
    conc_t *c;
    int id;
} worker_t;

/* Bucket bounds 0.005, 0.5, 2.5: one value per bucket and one for +Inf,
 * exact binary fractions so any order of additions gives the same sum. */
static const double CONC_BOUNDS[] = { 0.005, 0.5, 2.5 };
static const double CONC_VALUES[] = { 0.00390625, 0.25, 1, 8 };

static void *conc_worker(void *arg)
{
    const worker_t *w = arg;
    const char *shared[] = { "shared", NULL };
    for (int i = 0; i < N_ADDS; i++) {
        /* Looked up every time (callers would cache) so that lookups race
         * with the creations below. */
        metric_add(metrics_series(w->c->counter, shared), 1);
        metric_add(metrics_series(w->c->gauge, NO_LABELS), 0.5);
        metric_observe(metrics_series(w->c->hist, shared), CONC_VALUES[i % 4]);
        if (i % (N_ADDS / N_OWN_SERIES) == 0) {
            char name[32];
            snprintf(name, sizeof name, "t%d-%d", w->id, i);
            const char *own[] = { name, NULL };
            metric_add(metrics_series(w->c->counter, own), 1);
        }
    }
    return NULL;
}

/* The number after `key` in text, or -1 if key is absent. */
static long long count_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static void *conc_renderer(void *arg)
{
    conc_t *c = arg;
    do {
        char *text = metrics_render(c->m, NULL);
        c->renders++;
        /* Within one series the +Inf bucket and _count always agree. */
        if (!text || count_after(text, "h_bucket{k=\"shared\",le=\"+Inf\"} ") !=
                         count_after(text, "h_count{k=\"shared\"} "))
            c->bad_renders++;
        free(text);
    } while (!atomic_load(&c->stop));
    return NULL;
}

START_TEST(concurrent_updates)
{
    metrics_t *m = metrics_create();
    const char *labels[] = { "k", NULL };
    conc_t c = {
        .m = m,
        .counter = counter_with(m, "c_total", labels),
        .gauge = metrics_family(m, "g", "G.", METRIC_GAUGE, NULL, NULL, 0),
        .hist = metrics_family(m, "h", "H.", METRIC_HISTOGRAM, labels, CONC_BOUNDS, 3),
    };
    ck_assert(c.counter && c.gauge && c.hist);
    atomic_init(&c.stop, 0);

    worker_t workers[N_THREADS];
    pthread_t tid[N_THREADS], rtid;
    ck_assert_int_eq(pthread_create(&rtid, NULL, conc_renderer, &c), 0);
    for (int t = 0; t < N_THREADS; t++) {
        workers[t] = (worker_t){ &c, t };
        ck_assert_int_eq(pthread_create(&tid[t], NULL, conc_worker, &workers[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(tid[t], NULL);
    atomic_store(&c.stop, 1);
    pthread_join(rtid, NULL);
    ck_assert_int_gt(c.renders, 0);
    ck_assert_int_eq(c.bad_renders, 0);

    const long long total = (long long)N_THREADS * N_ADDS;
    const char *key[] = { "shared", NULL };
    ck_assert_double_eq(metric_value(metrics_series(c.counter, key)), (double)total);
    ck_assert_double_eq(metric_value(metrics_series(c.gauge, NULL)), total * 0.5);
    metric_series_t *h = metrics_series(c.hist, key);
    ck_assert_uint_eq(metric_count(h), (unsigned long long)total);
    ck_assert_double_eq(metric_value(h), (total / 4) * (0.00390625 + 0.25 + 1 + 8));

    char *text = render(m);
    /* Cumulative buckets: a quarter of the values in each. */
    ck_assert_int_eq(count_after(text, "h_bucket{k=\"shared\",le=\"0.005\"} "), total / 4);
    ck_assert_int_eq(count_after(text, "h_bucket{k=\"shared\",le=\"0.5\"} "), total / 2);
    ck_assert_int_eq(count_after(text, "h_bucket{k=\"shared\",le=\"2.5\"} "), 3 * total / 4);
    ck_assert_int_eq(count_after(text, "h_bucket{k=\"shared\",le=\"+Inf\"} "), total);
    ck_assert_int_eq(count_after(text, "h_count{k=\"shared\"} "), total);
    ck_assert_ptr_nonnull(strstr(text, "h_sum{k=\"shared\"} 925390.625\n"));
    /* Each thread's own series exist exactly once, each with 1. */
    int own = 0;
    for (const char *p = text; (p = strstr(p, "c_total{k=\"t")); p++) {
        own++;
        ck_assert_ptr_nonnull(strstr(p, "\"} 1\n"));
    }
    ck_assert_int_eq(own, N_THREADS * N_OWN_SERIES);
    free(text);
    metrics_free(m);
}
END_TEST

/* ---- promtool ------------------------------------------------------------------ */

/* A registry shaped like the daemon's, with awkward label values. */
static metrics_t *realistic_registry(void)
{
    metrics_t *m = metrics_create();
    const char *req_l[] = { "model", "code", NULL };
    const char *model_l[] = { "model", NULL };
    const double lat_b[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
    const double size_b[] = { 1024, 16384, 262144, 4194304 };
    metric_family_t *req = metrics_family(m, "imgclassd_requests_total",
                                          "HTTP requests by model and status code.",
                                          METRIC_COUNTER, req_l, NULL, 0);
    metric_family_t *lat = metrics_family(m, "imgclassd_request_duration_seconds",
                                          "Time from request to response.\nPer model.",
                                          METRIC_HISTOGRAM, model_l, lat_b, 11);
    metric_family_t *bytes = metrics_family(m, "imgclassd_request_size_bytes",
                                            "Size of uploaded images.",
                                            METRIC_HISTOGRAM, NULL, size_b, 4);
    metric_family_t *queue = metrics_family(m, "imgclassd_queue_depth",
                                            "Jobs waiting for a worker.",
                                            METRIC_GAUGE, NULL, NULL, 0);
    metric_family_t *score = metrics_family(m, "imgclassd_last_score_ratio",
                                           "Top-1 score of the last request.",
                                           METRIC_GAUGE, model_l, NULL, 0);
    metric_family_t *errs = metrics_family(m, "imgclassd_decode_errors_total",
                                           "Images that failed to decode.",
                                           METRIC_COUNTER, NULL, NULL, 0);
    ck_assert(m && req && lat && bytes && queue && score && errs);

    const char *models[] = { "resnet18", "mobile\"net\" v2", "path\\to\nmodel", "r\xc3\xa9seau" };
    const char *codes[] = { "200", "400", "503" };
    for (int i = 0; i < 4; i++) {
        const char *ml[] = { models[i], NULL };
        for (int j = 0; j < 3; j++) {
            const char *rl[] = { models[i], codes[j], NULL };
            metric_add(metrics_series(req, rl), (i + 1) * (j + 1) * 17.0);
        }
        metric_series_t *h = metrics_series(lat, ml);
        for (int k = 0; k < 50; k++)
            metric_observe(h, 0.001 * (k * k + i));
        metric_set(metrics_series(score, ml), i == 3 ? NAN : 0.1 * (i + 1));
    }
    metric_observe(metrics_series(bytes, NULL), 123456);
    metric_observe(metrics_series(bytes, NULL), 1e7);
    metric_set(metrics_series(queue, NULL), 3);
    return m;
}

static int have_promtool(void)
{
    return system("command -v promtool >/dev/null 2>&1") == 0;
}

START_TEST(promtool_accepts)
{
    ck_assert_msg(have_promtool(),
                  "promtool not found on PATH: run `make deps` (it installs "
                  "Debian's prometheus package, which ships promtool)");
    metrics_t *m = realistic_registry();
    char *text = render(m);
    metrics_free(m);

    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);

    char cmd[128], out[8192];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "promtool check metrics failed (status %d):\n%s\non:\n%s", status,
                  out, text);
    free(text);
}
END_TEST

/* A hidden series leaves the exposition until it is updated again. */
START_TEST(hidden_series)
{
    metrics_t *m = metrics_create();
    ck_assert_ptr_nonnull(m);
    const char *labels[] = {"model", NULL};
    metric_family_t *g = metrics_family(m, "ready", "Ready.", METRIC_GAUGE, labels, NULL, 0);
    const char *a[] = {"a", NULL}, *b[] = {"b", NULL};
    metric_set(metrics_series(g, a), 1);
    metric_set(metrics_series(g, b), 1);
    metric_hide(metrics_series(g, a));
    size_t len;
    char *text = metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_null(strstr(text, "ready{model=\"a\"}"));
    ck_assert_ptr_nonnull(strstr(text, "ready{model=\"b\"} 1"));
    free(text);
    metric_set(metrics_series(g, a), 0);
    text = metrics_render(m, &len);
    ck_assert_ptr_nonnull(strstr(text, "ready{model=\"a\"} 0"));
    free(text);
    metrics_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, render_exact);
    tcase_add_test(tc, render_empty);
    tcase_add_test(tc, number_format);
    tcase_add_test(tc, bad_declarations);
    tcase_add_test(tc, misuse_is_ignored);
    tcase_add_test(tc, concurrent_updates);
    tcase_add_test(tc, hidden_series);
    tcase_add_test(tc, promtool_accepts);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
