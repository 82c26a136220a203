/* The HTTP API: routing, the classify endpoints, health, models and
 * metrics; one JSON answer per request. See openapi.yaml.
 *
 * libmicrohttpd calls api_handle several times per request: first with
 * the headers (a request_t is made and, for the cheap refusals, answered
 * at once), then with pieces of the body, then once with no data, when
 * the request is dispatched. A classify request queues one job per image
 * and suspends its connection; api_job_finished resumes it when the last
 * job is back, and the next call queues the answer. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "server/server.h"

/* ---- metrics ---------------------------------------------------------------------- */

static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

int api_metrics_init(server_t *srv)
{
    metrics_t *m = srv->metrics;
    const char *route_code[] = {"route", "code", NULL};
    const char *route[] = {"route", NULL};
    const char *model[] = {"model", NULL};
    const char *model_status[] = {"model", "status", NULL};
    const char *mv[] = {"model", "version", NULL};
    srv->m_http_requests = metrics_family(m, "imgclassd_http_requests_total",
        "HTTP requests answered, by route and status code.", METRIC_COUNTER,
        route_code, NULL, 0);
    srv->m_http_duration = metrics_family(m, "imgclassd_http_request_duration_seconds",
        "Time from the request's arrival to its answer.", METRIC_HISTOGRAM, route,
        latency_buckets, NB(latency_buckets));
    srv->m_images = metrics_family(m, "imgclassd_images_total",
        "Images by outcome: ok, bad_image, timeout, cancelled, rejected (queue "
        "full), shutdown, error.", METRIC_COUNTER, model_status, NULL, 0);
    srv->m_queue_s = metrics_family(m, "imgclassd_queue_duration_seconds",
        "Time an image waited in its model's queue.", METRIC_HISTOGRAM, model,
        latency_buckets, NB(latency_buckets));
    srv->m_infer_s = metrics_family(m, "imgclassd_inference_duration_seconds",
        "Time to run one batch through the model.", METRIC_HISTOGRAM, model,
        latency_buckets, NB(latency_buckets));
    srv->m_batch = metrics_family(m, "imgclassd_batch_size",
        "Images per batch run.", METRIC_HISTOGRAM, model, batch_buckets,
        NB(batch_buckets));
    srv->m_queue_depth = metrics_family(m, "imgclassd_queue_depth",
        "Images waiting in the model's queue.", METRIC_GAUGE, model, NULL, 0);
    srv->m_queue_capacity = metrics_family(m, "imgclassd_queue_capacity",
        "Images the model's queue holds at most (queue_capacity).", METRIC_GAUGE, model,
        NULL, 0);
    srv->m_model_ready = metrics_family(m, "imgclassd_model_ready",
        "1 when the model is loaded and serving.", METRIC_GAUGE, model, NULL, 0);
    srv->m_load_fail = metrics_family(m, "imgclassd_model_load_failures_total",
        "Failed model loads (start-up or reload).", METRIC_COUNTER, model, NULL, 0);
    srv->m_requests = metrics_family(m, "imgclassd_requests_total",
        "Inference requests answered, by model and status code.", METRIC_COUNTER,
        (const char *[]){"model", "code", NULL}, NULL, 0);
    srv->m_request_s = metrics_family(m, "imgclassd_request_duration_seconds",
        "Inference request time from arrival to answer, by model.", METRIC_HISTOGRAM,
        model, latency_buckets, NB(latency_buckets));
    srv->m_prepare_s = metrics_family(m, "imgclassd_preprocess_duration_seconds",
        "Time to decode and preprocess one image.", METRIC_HISTOGRAM, model,
        latency_buckets, NB(latency_buckets));
    srv->m_in_flight = metrics_family(m, "imgclassd_in_flight_requests",
        "Requests received and not yet answered.", METRIC_GAUGE, NULL, NULL, 0);
    srv->m_decoded = metrics_family(m, "imgclassd_images_decoded_total",
        "Images received, by model and format (jpeg, png, other).", METRIC_COUNTER,
        (const char *[]){"model", "format", NULL}, NULL, 0);
    srv->m_build_info = metrics_family(m, "imgclassd_build_info",
        "Version of the running imgclassd (value 1).", METRIC_GAUGE,
        (const char *[]){"version", NULL}, NULL, 0);
    srv->m_open_conns = metrics_family(m, "imgclassd_open_connections",
        "Open HTTP connections.", METRIC_GAUGE, NULL, NULL, 0);
    srv->m_process_cpu = metrics_family(m, "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", METRIC_COUNTER, NULL,
        NULL, 0);
    srv->m_process_rss = metrics_family(m, "process_resident_memory_bytes",
        "Resident memory size in bytes.", METRIC_GAUGE, NULL, NULL, 0);
    srv->m_process_start = metrics_family(m, "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.", METRIC_GAUGE,
        NULL, NULL, 0);
    srv->m_process_fds = metrics_family(m, "process_open_fds",
        "Number of open file descriptors.", METRIC_GAUGE, NULL, NULL, 0);
    if (!srv->m_http_requests || !srv->m_http_duration || !srv->m_images ||
        !srv->m_queue_s || !srv->m_infer_s || !srv->m_batch || !srv->m_queue_depth || !srv->m_queue_capacity ||
        !srv->m_model_ready || !srv->m_load_fail || !srv->m_open_conns ||
        !srv->m_process_cpu || !srv->m_process_rss || !srv->m_process_start ||
        !srv->m_process_fds || !srv->m_requests || !srv->m_request_s ||
        !srv->m_prepare_s || !srv->m_in_flight || !srv->m_decoded || !srv->m_build_info)
        return -1;
    metric_set(metrics_series(srv->m_build_info, (const char *[]){IMGCLASSD_VERSION, NULL}),
               1);
    if (!srv->cfg.triton_metrics)
        return 0;
    /* Triton's names, so that dashboards made for Triton work unchanged. */
    srv->t_success = metrics_family(m, "nv_inference_request_success",
        "Number of successful inference requests, all batch sizes", METRIC_COUNTER,
        mv, NULL, 0);
    srv->t_failure = metrics_family(m, "nv_inference_request_failure",
        "Number of failed inference requests, all batch sizes", METRIC_COUNTER,
        mv, NULL, 0);
    srv->t_count = metrics_family(m, "nv_inference_count",
        "Number of inferences performed (does not include cached requests)",
        METRIC_COUNTER, mv, NULL, 0);
    srv->t_exec = metrics_family(m, "nv_inference_exec_count",
        "Number of model executions performed (does not include cached requests)",
        METRIC_COUNTER, mv, NULL, 0);
    srv->t_pending = metrics_family(m, "nv_inference_pending_request_count",
        "Instantaneous number of pending requests awaiting execution per-model.",
        METRIC_GAUGE, mv, NULL, 0);
    srv->t_request_us = metrics_family(m, "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds (includes cached "
        "requests)", METRIC_COUNTER, mv, NULL, 0);
    srv->t_queue_us = metrics_family(m, "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds (includes cached "
        "requests)", METRIC_COUNTER, mv, NULL, 0);
    srv->t_compute_us = metrics_family(m, "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds (does not include "
        "cached requests)", METRIC_COUNTER, mv, NULL, 0);
    return srv->t_success && srv->t_failure && srv->t_count && srv->t_exec &&
                   srv->t_pending && srv->t_request_us && srv->t_queue_us &&
                   srv->t_compute_us
               ? 0
               : -1;
}

/* Gauges read at scrape time: queue depths and the process figures. */
static void refresh_gauges(server_t *srv)
{
    for (int i = 0; i < srv->n_slots; i++) {
        served_model_t *m = srv->slots[i].current;
        if (!m)
            continue;
        int depth = sched_queue_depth(m->sched);
        const char *lv[] = {m->name, NULL};
        metric_set(metrics_series(srv->m_queue_depth, lv), depth);
        metric_set(metrics_series(srv->m_queue_capacity, lv), m->cfg.sched.queue_capacity);
        if (srv->cfg.triton_metrics) {
            const char *tv[] = {m->name, m->cfg.version, NULL};
            metric_set(metrics_series(srv->t_pending, tv), depth);
        }
    }
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        unsigned long utime = 0, stime = 0;
        long rss = 0;
        /* Fields 14, 15 (utime, stime) and 24 (rss) after "pid (comm) ". */
        int n = fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%lu %lu %*d %*d %*d %*d %*d %*d %*u %*u %ld",
                       &utime, &stime, &rss);
        fclose(f);
        if (n == 3) {
            double tick = (double)sysconf(_SC_CLK_TCK);
            metric_set(metrics_series(srv->m_process_cpu, NULL),
                       (double)(utime + stime) / tick);
            metric_set(metrics_series(srv->m_process_rss, NULL),
                       (double)rss * (double)sysconf(_SC_PAGESIZE));
        }
    }
    metric_set(metrics_series(srv->m_process_start, NULL), (double)srv->start_time_s);
    metric_set(metrics_series(srv->m_in_flight, NULL), srv->open_requests);
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int n = 0;
        while (readdir(d))
            n++;
        closedir(d);
        metric_set(metrics_series(srv->m_process_fds, NULL), n - 3); /* . .. dir */
    }
}

/* ---- answers ---------------------------------------------------------------------- */

void api_answer_json(request_t *r, int status, json_t *body)
{
    free(r->resp);
    r->resp = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    json_decref(body);
    r->status = r->resp || status == 204 ? status : 500;
    r->state = REQ_ANSWERED;
}

void api_answer_raw(request_t *r, int status, char *body, size_t len,
                    const char *content_type)
{
    free(r->resp);
    r->resp = body;
    r->resp_len = len;
    r->content_type = content_type;
    r->status = status;
    r->state = REQ_ANSWERED;
}

/* KServe v2 defines its error body as {"error": message}; ours adds the
 * status and the request id. */
void api_answer_error(request_t *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages echo client input (paths, names): keep them printable ASCII
     * so that they are always valid JSON strings. */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    if (r->kserve)
        api_answer_json(r, status, json_pack("{s:s}", "error", msg));
    else
        api_answer_json(r, status, json_pack("{s:s, s:i, s:s}", "error", msg, "code",
                                             status, "request_id", r->id));
}

#define answer_json api_answer_json
#define answer_error api_answer_error

/* Queues the built answer. */
static enum MHD_Result send_answer(request_t *r)
{
    const char *body = r->resp          ? r->resp
                       : r->status == 204 ? ""
                                          : "{\"error\":\"out of memory\"}";
    size_t len = r->resp ? r->resp_len : strlen(body);
    r->bytes_out = len;
    struct MHD_Response *resp;
    if (r->resp) {
        resp = MHD_create_response_from_buffer(len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->resp = NULL; /* MHD frees it */
    } else {
        resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (r->status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
    if (r->extra_header[0])
        MHD_add_response_header(resp, r->extra_header, r->extra_value);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (r->retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"imgclassd\"");
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        if (strcmp(r->cors_origin, "*"))
            MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "X-Request-Id, Inference-Header-Content-Length");
        if (r->preflight) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                    "GET, HEAD, POST, PUT, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, X-Request-Id, traceparent, "
                                    "Inference-Header-Content-Length");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
    }
    /* While draining, close keep-alive connections after their answer so
     * that a balancer moves them elsewhere before the socket goes away. */
    if (r->srv->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- request life ----------------------------------------------------------------- */

/* The client's X-Request-Id if it is sane (printable, short), else a new
 * one: a per-process random prefix and a counter. */
static void set_request_id(request_t *r)
{
    const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        int ok = n > 0 && n < sizeof r->id;
        for (size_t i = 0; ok && i < n; i++)
            ok = given[i] > 0x20 && given[i] < 0x7f;
        if (ok) {
            memcpy(r->id, given, n + 1);
            return;
        }
    }
    snprintf(r->id, sizeof r->id, "%s-%08" PRIx64, r->srv->id_prefix,
             ++r->srv->request_counter);
}

static request_t *request_new(server_t *srv, struct MHD_Connection *conn,
                              const char *url, const char *method)
{
    request_t *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(url))) {
        free(r);
        return NULL;
    }
    r->srv = srv;
    r->conn = conn;
    r->start_ns = sched_now_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    set_request_id(r);
    /* W3C trace context, logged so that access logs join traces. */
    const char *tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    if (tp && strlen(tp) < sizeof r->traceparent && strspn(tp, "0123456789abcdef-") == strlen(tp))
        memcpy(r->traceparent, tp, strlen(tp) + 1);
    srv->open_requests++;
    return r;
}

static void request_free(request_t *r)
{
    kserve_free(r);
    body_free(r);
    free(r->jobs);
    free(r->outputs);
    free(r->resp);
    free(r->path);
    free(r->model_label_owned);
    free(r);
}

static void log_request(const request_t *r, int status, double secs,
                        enum MHD_RequestTerminationCode toe)
{
    char client[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, client,
                      sizeof client);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, client,
                      sizeof client);
    }
    access_entry_t e = {
        .request_id = r->id,
        .traceparent = r->traceparent[0] ? r->traceparent : NULL,
        .client = client[0] ? client : NULL,
        .method = r->method,
        .path = r->path,
        .model = r->model_label,
        .status = status,
        .bytes_in = (long long)r->bytes_in,
        .bytes_out = (long long)r->bytes_out,
        .images = r->n_jobs,
        .duration_ms = secs * 1e3,
        .aborted = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL
                   : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client"
                                                                : "error",
    };
    for (int i = 0; i < r->n_jobs; i++) {
        const sched_job_t *j = &r->jobs[i];
        if (j->batch_size > e.batch_size)
            e.batch_size = j->batch_size;
        double q = (double)(j->started_ns - j->queued_ns) / 1e6;
        double inf = (double)j->infer_ns / 1e6;
        e.queue_ms = q > e.queue_ms ? q : e.queue_ms;
        e.inference_ms = inf > e.inference_ms ? inf : e.inference_ms;
    }
    log_access(&r->srv->log, &e);
}

void api_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    server_t *srv = cls;
    request_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    int status = r->state == REQ_ANSWERED ? r->status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status == 0)
        status = 499; /* nginx's "client closed request" */
    double secs = (double)(sched_now_ns() - r->start_ns) / 1e9;
    const char *route = r->route ? r->route : "unknown";
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *lv[] = {route, code, NULL};
    metric_add(metrics_series(srv->m_http_requests, lv), 1);
    const char *rv[] = {route, NULL};
    metric_observe(metrics_series(srv->m_http_duration, rv), secs);
    if (r->model_label && r->inference) {
        const char *mc[] = {r->model_label, code, NULL};
        metric_add(metrics_series(srv->m_requests, mc), 1);
        const char *mv[] = {r->model_label, NULL};
        metric_observe(metrics_series(srv->m_request_s, mv), secs);
    }
    if (srv->cfg.log_requests)
        log_request(r, status, secs, toe);
    /* A request whose jobs are still out cannot end here: its connection
     * is suspended, and MHD does not close suspended connections. */
    if (r->model)
        server_model_unref(srv, r->model);
    srv->open_requests--;
    request_free(r);
}

/* Requests outlive repository slots (a reload may drop one): copy. */
static void set_model_label(request_t *r, const char *name)
{
    free(r->model_label_owned);
    r->model_label_owned = name ? strdup(name) : NULL;
    r->model_label = r->model_label_owned;
}

/* ---- classification --------------------------------------------------------------- */

static const char *job_outcome(const sched_job_t *j)
{
    switch (j->status) {
    case SCHED_OK: return "ok";
    case SCHED_EIMAGE: return "bad_image";
    case SCHED_TIMEOUT: return "timeout";
    case SCHED_CANCELLED: return "cancelled";
    case SCHED_ESHUTDOWN: return "shutdown";
    default: return "error";
    }
}

static int job_http_status(const sched_job_t *j)
{
    switch (j->status) {
    case SCHED_OK: return 200;
    case SCHED_EIMAGE: return j->http_status ? j->http_status : 400;
    case SCHED_TIMEOUT: return 504;
    case SCHED_CANCELLED: return 499;
    case SCHED_ESHUTDOWN: return 503;
    default: return 500;
    }
}

static void build_answer(request_t *r)
{
    served_model_t *m = r->model;
    model_score_t *s = malloc((size_t)m->n_classes * sizeof *s);
    json_t *results = json_array();
    json_t *ts = r->torchserve ? json_array() : NULL;
    if (!s || !results || (r->torchserve && !ts)) {
        free(s);
        json_decref(results);
        json_decref(ts);
        answer_error(r, 503, "out of memory");
        return;
    }
    int status = 200;
    const char *first_error = NULL;
    int k = r->top_k > 0 ? r->top_k : m->cfg.top_k;
    if (k > m->n_classes)
        k = m->n_classes;
    for (int i = 0; i < r->n_jobs; i++) {
        const sched_job_t *j = &r->jobs[i];
        json_t *entry;
        if (j->status != SCHED_OK) {
            if (status == 200) {
                status = job_http_status(j);
                first_error = j->msg;
            }
            entry = json_pack("{s:s, s:i}", "error", j->msg, "code", job_http_status(j));
            json_array_append_new(results, entry);
            if (ts)
                json_array_append_new(ts, json_pack("{s:s}", "error", j->msg));
            continue;
        }
        served_model_rank(m, r->outputs + (size_t)i * sched_output_elems(m->sched), s);
        json_t *preds = json_array();
        json_t *tsobj = ts ? json_object() : NULL;
        for (int q = 0; q < k && preds; q++) {
            json_array_append_new(preds, json_pack("{s:s, s:i, s:f}", "label",
                                                   m->labels[s[q].index], "index",
                                                   s[q].index, "score",
                                                   (double)s[q].score));
            if (tsobj)
                json_object_set_new(tsobj, m->labels[s[q].index],
                                    json_real((double)s[q].score));
        }
        double queue_ms = (double)(j->started_ns - j->queued_ns) / 1e6;
        double prep_ms = (double)j->prepare_ns / 1e6;
        double infer_ms = (double)j->infer_ns / 1e6;
        double total_ms = (double)(sched_now_ns() - r->start_ns) / 1e6;
        entry = json_pack("{s:o, s:{s:f, s:f, s:f, s:f}, s:i}", "predictions", preds,
                          "timings", "queue_ms", queue_ms, "preprocess_ms", prep_ms,
                          "inference_ms", infer_ms, "total_ms", total_ms, "batch_size",
                          j->batch_size);
        json_array_append_new(results, entry);
        if (ts)
            json_array_append_new(ts, tsobj);
    }
    free(s);
    if (ts) {
        json_decref(results);
        if (status != 200) {
            json_decref(ts);
            answer_error(r, status, "%s", first_error);
            return;
        }
        json_t *one = json_incref(json_array_get(ts, 0));
        answer_json(r, 200, json_array_size(ts) == 1 ? one : json_incref(ts));
        if (json_array_size(ts) != 1)
            json_decref(one);
        json_decref(ts);
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "model", m->name, "version",
                             m->cfg.version, "request_id", r->id, "results", results);
    if (body && status != 200) {
        json_object_set_new(body, "error", json_string(first_error));
        json_object_set_new(body, "code", json_integer(status));
    }
    answer_json(r, status, body);
}

void api_job_finished(server_t *srv, sched_job_t *job)
{
    request_t *r = job->owner;
    served_model_t *m = r->model;
    const char *lv[] = {m->name, job_outcome(job), NULL};
    metric_add(metrics_series(srv->m_images, lv), 1);
    const char *mv[] = {m->name, NULL};
    if (job->status == SCHED_OK)
        metric_observe(metrics_series(srv->m_queue_s, mv),
                       (double)(job->started_ns - job->queued_ns) / 1e9);
    if (job->prepare_ns > 0)
        metric_observe(metrics_series(srv->m_prepare_s, mv), (double)job->prepare_ns / 1e9);
    if (!job->tensor) {
        img_format_t fmt = img_sniff(job->data, job->size);
        const char *fv[] = {m->name,
                            fmt == IMG_FORMAT_JPEG  ? "jpeg"
                            : fmt == IMG_FORMAT_PNG ? "png"
                                                    : "other",
                            NULL};
        metric_add(metrics_series(srv->m_decoded, fv), 1);
    }
    if (srv->cfg.triton_metrics) {
        const char *tv[] = {m->name, m->cfg.version, NULL};
        int ok = job->status == SCHED_OK;
        metric_add(metrics_series(ok ? srv->t_success : srv->t_failure, tv), 1);
        if (ok) {
            metric_add(metrics_series(srv->t_count, tv), 1);
            metric_add(metrics_series(srv->t_queue_us, tv),
                       (double)(job->started_ns - job->queued_ns) / 1e3);
            metric_add(metrics_series(srv->t_request_us, tv),
                       (double)(job->finished_ns - job->queued_ns) / 1e3);
        }
    }
    if (++r->n_done < r->n_jobs)
        return;
    if (r->kserve)
        kserve_answer(r);
    else
        build_answer(r);
    server_resume(srv, r);
}

void api_cancel(server_t *srv, request_t *r)
{
    (void)srv;
    for (int i = 0; i < r->n_jobs; i++)
        sched_cancel(r->model->sched, &r->jobs[i]);
}

/* top_k from the query, the form or the JSON body; 0 when not given. */
static int parse_top_k(request_t *r, const served_model_t *m)
{
    const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "top_k");
    if (!q && r->has_form_top_k)
        q = r->form_top_k;
    if (q) {
        char *end;
        long long v = strtoll(q, &end, 10);
        if (end == q || *end)
            return -1;
        r->top_k = v < 1 ? -1 : v > 1000000000 ? 1000000000 : (int)v;
    }
    if (r->top_k < 0 || r->top_k > m->n_classes)
        return -1;
    return 0;
}

/* The model that is to run a request's images, or NULL with the refusal
 * answered: new work after the drain grace, an unknown model, a model not
 * loaded (yet, or after a failed load). */
static served_model_t *model_for_work(request_t *r, const char *name)
{
    server_t *srv = r->srv;
    if (srv->draining && (sched_now_ns() - srv->drain_start_ns) / 1000000 >=
                             srv->cfg.drain_grace_ms) {
        r->retry_after = "1";
        answer_error(r, 503, "shutting down; send new work elsewhere");
        return NULL;
    }
    model_slot_t *slot;
    served_model_t *m = server_find_model(srv, name, &slot);
    set_model_label(r, slot ? slot->name : NULL);
    if (m)
        return m;
    if (!slot) {
        answer_error(r, 404, "no model named '%s'", name);
        return NULL;
    }
    r->retry_after = "5";
    answer_error(r, 503, "model '%s' is not loaded%s%s", name,
                 slot->last_error ? ": " : " yet",
                 slot->last_error ? slot->last_error : "");
    return NULL;
}

static void classify(request_t *r, const char *name)
{
    server_t *srv = r->srv;
    served_model_t *m = model_for_work(r, name);
    if (!m)
        return;
    char msg[512];
    int st = body_images(r, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE),
                         msg, sizeof msg);
    if (st) {
        answer_error(r, st, "%s", msg);
        return;
    }
    if (parse_top_k(r, m)) {
        answer_error(r, 400, "top_k must be an integer from 1 to %d (the model's classes)",
                     m->n_classes);
        return;
    }
    if (r->n_parts > srv->cfg.max_images_per_request) {
        answer_error(r, 413, "%d images; at most %d per request", r->n_parts,
                     srv->cfg.max_images_per_request);
        return;
    }
    api_submit(r, m, r->n_parts, NULL);
}

void api_submit(request_t *r, served_model_t *m, int n, const float *tensors)
{
    server_t *srv = r->srv;
    size_t per = sched_output_elems(m->sched);
    size_t in_elems = nn_model_input_elems(m->nn, 0, 1);
    r->jobs = calloc((size_t)n, sizeof *r->jobs);
    r->outputs = malloc((size_t)n * per * sizeof *r->outputs);
    sched_job_t **ptrs = malloc((size_t)n * sizeof *ptrs);
    if (!r->jobs || !r->outputs || !ptrs) {
        free(ptrs);
        answer_error(r, 503, "out of memory");
        return;
    }
    int64_t deadline = sched_now_ns() + (int64_t)m->cfg.timeout_ms * 1000000;
    for (int i = 0; i < n; i++) {
        sched_job_t *j = &r->jobs[i];
        if (tensors) {
            j->tensor = tensors + (size_t)i * in_elems;
        } else {
            j->data = r->parts[i].data;
            j->size = r->parts[i].size;
        }
        j->deadline_ns = deadline;
        j->output = r->outputs + (size_t)i * per;
        j->owner = r;
        ptrs[i] = j;
    }
    int rc = sched_submit(m->sched, ptrs, n);
    free(ptrs);
    if (rc) {
        const char *lv[] = {m->name, "rejected", NULL};
        metric_add(metrics_series(srv->m_images, lv), n);
        r->retry_after = "1";
        answer_error(r, 503, "model '%s' is overloaded (queue full); retry later", m->name);
        return;
    }
    r->model = m;
    m->refs++;
    r->n_jobs = n;
    r->state = REQ_WAITING;
    MHD_suspend_connection(r->conn);
    server_watch_disconnect(srv, r);
}

/* POST /v2/models/{name}/infer: the model must be loaded (and be the
 * version named, if any); kserve.c reads the body and submits. */
static void infer_v2(request_t *r, const char *name)
{
    served_model_t *m = model_for_work(r, name);
    if (!m)
        return;
    if (r->version[0] && strcmp(r->version, m->cfg.version) != 0) {
        answer_error(r, 404, "model '%s' has no version '%s'", name, r->version);
        return;
    }
    if (r->body_too_large) {
        answer_error(r, 413, "the body is larger than %zu bytes", r->srv->cfg.max_body_bytes);
        return;
    }
    kserve_infer(r, m);
}

/* ---- models and health ------------------------------------------------------------ */

static json_t *model_json(const model_slot_t *slot)
{
    const served_model_t *m = slot->current;
    const char *state = m ? "ready" : slot->loading ? "loading" : "failed";
    json_t *o = json_pack("{s:s, s:s}", "name", slot->name, "state", state);
    if (!o)
        return NULL;
    if (slot->last_error)
        json_object_set_new(o, "last_error", json_string(slot->last_error));
    if (!m)
        return o;
    const nn_tensor_info_t *in = nn_model_input(m->nn, 0);
    json_object_set_new(o, "version", json_string(m->cfg.version));
    json_object_set_new(o, "input", json_pack("{s:s, s:[i,i,i,i]}", "name", in->name,
                                              "shape", -1, m->channels, m->height,
                                              m->width));
    json_object_set_new(o, "classes", json_integer(m->n_classes));
    json_object_set_new(o, "output_is_probability", json_boolean(m->has_softmax));
    json_object_set_new(o, "batching",
                        json_pack("{s:i, s:i, s:i, s:i, s:i}", "max_batch_size",
                                  m->cfg.sched.max_batch_size, "max_queue_delay_us",
                                  m->cfg.sched.max_queue_delay_us, "instances",
                                  m->cfg.sched.instances, "threads",
                                  m->cfg.sched.threads, "queue_capacity",
                                  m->cfg.sched.queue_capacity));
    json_object_set_new(o, "top_k", json_integer(m->cfg.top_k));
    json_object_set_new(o, "timeout_ms", json_integer(m->cfg.timeout_ms));
    json_object_set_new(o, "queue_depth", json_integer(sched_queue_depth(m->sched)));
    return o;
}

static void list_models(request_t *r)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < r->srv->n_slots; i++)
        json_array_append_new(arr, model_json(&r->srv->slots[i]));
    answer_json(r, 200, arr ? json_pack("{s:o}", "models", arr) : NULL);
}

static void show_metrics(request_t *r)
{
    refresh_gauges(r->srv);
    size_t len;
    char *text = metrics_render(r->srv->metrics, &len);
    if (!text) {
        answer_error(r, 503, "out of memory");
        return;
    }
    api_answer_raw(r, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- authentication and CORS ------------------------------------------------------ */

int api_load_tokens(server_t *srv, char *msg, size_t msg_size)
{
    if (!srv->cfg.auth_tokens_file)
        return 0;
    FILE *f = fopen(srv->cfg.auth_tokens_file, "r");
    if (!f) {
        snprintf(msg, msg_size, "auth_tokens_file %s: %s", srv->cfg.auth_tokens_file,
                 strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue; /* blank lines and comments */
        char **t = realloc(srv->tokens, (size_t)(srv->n_tokens + 1) * sizeof *t);
        if (!t || !(t[srv->n_tokens] = strdup(line))) {
            if (t)
                srv->tokens = t;
            snprintf(msg, msg_size, "out of memory reading the tokens");
            rc = -1;
            break;
        }
        srv->tokens = t;
        srv->n_tokens++;
    }
    free(line);
    fclose(f);
    if (!rc && srv->n_tokens == 0) {
        snprintf(msg, msg_size, "auth_tokens_file %s holds no token",
                 srv->cfg.auth_tokens_file);
        rc = -1;
    }
    return rc;
}

void api_free_tokens(server_t *srv)
{
    for (int i = 0; i < srv->n_tokens; i++)
        free(srv->tokens[i]);
    free(srv->tokens);
    srv->tokens = NULL;
    srv->n_tokens = 0;
}

/* Compares against every token in time that depends only on the lengths,
 * not on where the bytes differ, so that a token cannot be guessed byte by
 * byte from response times. */
static int token_ok(const server_t *srv, const char *given)
{
    size_t gl = strlen(given);
    int match = 0;
    for (int i = 0; i < srv->n_tokens; i++) {
        const char *t = srv->tokens[i];
        size_t tl = strlen(t);
        unsigned diff = gl != tl;
        for (size_t k = 0; k < tl; k++)
            diff |= (unsigned char)t[k] ^ (unsigned char)(gl ? given[k % gl] : 0);
        match |= diff == 0;
    }
    return match;
}

static int authorized(request_t *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    return h && strncasecmp(h, "Bearer ", 7) == 0 && token_ok(r->srv, h + 7);
}

/* The Origin header when CORS allows it ("*" or a listed origin). */
static void match_origin(request_t *r)
{
    const char *list = r->srv->cfg.cors_origins;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!list || !origin)
        return;
    if (!strcmp(list, "*")) {
        r->cors_origin = "*";
        return;
    }
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == n && trimmed > 0 && !strncmp(p, origin, n)) {
            r->cors_origin = origin;
            return;
        }
        p += len;
    }
}

/* ---- routing ---------------------------------------------------------------------- */

static int valid_model_name(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* Splits "/prefix/{name}suffix"; returns 1 and the name when it matches. */
static int match(const char *url, const char *prefix, const char *suffix, char *name,
                 size_t name_size)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), ul = strlen(url);
    if (ul <= pl + sl || strncmp(url, prefix, pl) != 0 ||
        strcmp(url + ul - sl, suffix) != 0)
        return 0;
    size_t n = ul - pl - sl;
    if (memchr(url + pl, '/', n) || (sl == 0 && memchr(url + pl, ':', n)) ||
        n >= name_size)
        return 0;
    memcpy(name, url + pl, n);
    name[n] = '\0';
    return 1;
}

typedef enum route_id {
    R_NONE, R_CLASSIFY, R_PREDICTIONS, R_MODELS, R_MODEL, R_MODEL_READY, R_HEALTHZ,
    R_READYZ, R_METRICS, R_V2_LIVE, R_V2_READY, R_V2_MODEL_READY, R_V2_SERVER,
    R_V2_MODEL, R_V2_INFER,
} route_id_t;

static const struct {
    const char *name;
    int post; /* 1: POST, 0: GET/HEAD */
} routes[] = {
    [R_NONE] = {"not_found", 0},       [R_CLASSIFY] = {"classify", 1},
    [R_PREDICTIONS] = {"predictions", 1}, [R_MODELS] = {"models", 0},
    [R_MODEL] = {"model", 0},         [R_MODEL_READY] = {"model_ready", 0},
    [R_HEALTHZ] = {"healthz", 0},     [R_READYZ] = {"readyz", 0},
    [R_METRICS] = {"metrics", 0},     [R_V2_LIVE] = {"v2_live", 0},
    [R_V2_READY] = {"v2_ready", 0},   [R_V2_MODEL_READY] = {"v2_model_ready", 0},
    [R_V2_SERVER] = {"v2_server", 0}, [R_V2_MODEL] = {"v2_model", 0},
    [R_V2_INFER] = {"v2_infer", 1},
};

/* KServe v2 paths may name a version: /v2/models/{name}/versions/{v}/...
 * Splits it off into version (empty when absent) and rewrites the rest
 * without it into buf. */
static const char *strip_version(const char *url, char *buf, size_t size,
                                 char *version, size_t vsize)
{
    version[0] = '\0';
    const char *prefix = "/v2/models/";
    if (strncmp(url, prefix, strlen(prefix)) != 0)
        return url;
    const char *name = url + strlen(prefix);
    const char *v = strstr(name, "/versions/");
    if (!v)
        return url;
    const char *vs = v + strlen("/versions/");
    size_t vl = strcspn(vs, "/");
    if (vl == 0 || vl >= vsize)
        return url;
    memcpy(version, vs, vl);
    version[vl] = '\0';
    snprintf(buf, size, "%.*s%s", (int)(v - url), url, vs + vl);
    return buf;
}

static route_id_t route_of(const char *url, char *name, size_t name_size)
{
    name[0] = '\0';
    if (!strcmp(url, "/healthz")) return R_HEALTHZ;
    if (!strcmp(url, "/readyz")) return R_READYZ;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    if (!strcmp(url, "/v1/models")) return R_MODELS;
    if (!strcmp(url, "/v2/health/live")) return R_V2_LIVE;
    if (!strcmp(url, "/v2/health/ready")) return R_V2_READY;
    if (match(url, "/v1/models/", ":classify", name, name_size)) return R_CLASSIFY;
    if (match(url, "/v1/models/", "/ready", name, name_size)) return R_MODEL_READY;
    if (match(url, "/v1/models/", "", name, name_size)) return R_MODEL;
    if (match(url, "/predictions/", "", name, name_size)) return R_PREDICTIONS;
    if (match(url, "/v2/models/", "/ready", name, name_size)) return R_V2_MODEL_READY;
    if (match(url, "/v2/models/", "/infer", name, name_size)) return R_V2_INFER;
    if (match(url, "/v2/models/", "", name, name_size)) return R_V2_MODEL;
    if (!strcmp(url, "/v2")) return R_V2_SERVER;
    return R_NONE;
}

/* Answers everything but classification. */
static void answer_get(request_t *r, route_id_t id, const char *name)
{
    server_t *srv = r->srv;
    const char *why;
    int ready = server_ready(srv, &why);
    model_slot_t *slot = NULL;
    served_model_t *m = name[0] ? server_find_model(srv, name, &slot) : NULL;
    switch (id) {
    case R_HEALTHZ:
    case R_V2_LIVE:
        answer_json(r, 200, json_pack("{s:s, s:b}", "status", "alive", "live", 1));
        return;
    case R_READYZ:
        answer_json(r, ready ? 200 : 503, json_pack("{s:s, s:b}", "status", why, "ready",
                                                    ready));
        return;
    case R_V2_READY:
        answer_json(r, ready ? 200 : 400, json_pack("{s:b, s:s}", "ready", ready,
                                                    "status", why));
        return;
    case R_METRICS:
        show_metrics(r);
        return;
    case R_MODELS:
        list_models(r);
        return;
    case R_V2_SERVER:
        kserve_server_metadata(r);
        return;
    default:
        break;
    }
    if (!slot) {
        answer_error(r, id == R_V2_MODEL_READY ? 400 : 404, "no model named '%s'", name);
        return;
    }
    set_model_label(r, slot->name);
    if (r->version[0] && m && strcmp(r->version, m->cfg.version) != 0) {
        answer_error(r, id == R_V2_MODEL_READY ? 400 : 404,
                     "model '%s' has no version '%s'", name, r->version);
        return;
    }
    int mready = m && !srv->draining;
    if (id == R_V2_MODEL)
        kserve_model_metadata(r, slot);
    else if (id == R_MODEL)
        answer_json(r, 200, model_json(slot));
    else if (id == R_MODEL_READY)
        answer_json(r, mready ? 200 : 503,
                    json_pack("{s:s, s:b}", "name", slot->name, "ready", mready));
    else /* R_V2_MODEL_READY */
        answer_json(r, mready ? 200 : 400,
                    json_pack("{s:s, s:b}", "name", slot->name, "ready", mready));
}

/* The first call: route, method and the refusals that need no body. */
static void on_headers(request_t *r, const char *url, const char *method)
{
    char name[160], stripped[512], version[64];
    const char *path = strip_version(url, stripped, sizeof stripped, version,
                                     sizeof version);
    route_id_t id = route_of(path, name, sizeof name);
    r->route = routes[id].name;
    r->kserve = id >= R_V2_LIVE;
    snprintf(r->version, sizeof r->version, "%s", version);
    match_origin(r);
    if (!strcmp(method, "OPTIONS") && r->cors_origin && id != R_NONE) {
        r->preflight = 1; /* CORS preflight: headers only */
        answer_json(r, 204, NULL);
        return;
    }
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    /* TorchServe's documented client call is curl -T, a PUT. */
    int is_post = !strcmp(method, "POST") || (id == R_PREDICTIONS && !strcmp(method, "PUT"));
    if (id == R_NONE) {
        answer_error(r, 404, "no such endpoint: %s %s", method, url);
        return;
    }
    if (name[0] && !valid_model_name(name, strlen(name))) {
        answer_error(r, id == R_V2_MODEL_READY ? 400 : 404, "no model named '%s'", name);
        return;
    }
    if (routes[id].post ? !is_post : !is_get) {
        r->allow = id == R_PREDICTIONS ? "POST, PUT" : routes[id].post ? "POST" : "GET, HEAD";
        answer_error(r, 405, "%s is not allowed here; use %s", method, r->allow);
        return;
    }
    int open = id == R_HEALTHZ || id == R_READYZ || id == R_V2_LIVE || id == R_V2_READY
                   ? !r->srv->cfg.auth_health
               : id == R_METRICS ? !r->srv->cfg.auth_metrics
                                 : 0;
    if (r->srv->n_tokens > 0 && !open && !authorized(r)) {
        r->www_authenticate = 1;
        answer_error(r, 401, "a valid bearer token is required (Authorization: Bearer ...)");
        return;
    }
    if (!routes[id].post) {
        answer_get(r, id, name);
        return;
    }
    r->torchserve = id == R_PREDICTIONS;
    r->inference = 1;
    model_slot_t *slot;
    server_find_model(r->srv, name, &slot);
    if (!slot) {
        answer_error(r, 404, "no model named '%s'", name);
        return;
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > r->srv->cfg.max_body_bytes) {
        answer_error(r, 413, "the body is larger than %zu bytes",
                     r->srv->cfg.max_body_bytes);
        return;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!r->kserve && ct && strncasecmp(ct, "multipart/form-data", 19) == 0 &&
        body_start_multipart(r))
        answer_error(r, 400, "malformed multipart/form-data header (no boundary?)");
    snprintf(r->model_name, sizeof r->model_name, "%s", name);
}

/* A body follows the headers (Content-Length > 0 or chunked). */
static int has_body(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return (cl && strtoull(cl, NULL, 10) > 0) || te;
}

/* A body read and thrown away after a refusal is bounded: beyond
 * 4 x max_body_bytes (declared or sent) the answer goes out and the
 * connection closes. */
static int within_drain_limit(const request_t *r)
{
    unsigned long long limit = 4ull * r->srv->cfg.max_body_bytes;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    return r->bytes_in <= limit && (!cl || strtoull(cl, NULL, 10) <= limit);
}

/* Whether a refused request's body is read (and thrown away) before the
 * answer goes out. A client still sending when the server closes gets a
 * connection reset instead of the answer, so it is, unless the client asked
 * "Expect: 100-continue" (it then waits and never sends the body). */
static int drain_before_answer(const request_t *r)
{
    const char *expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
    return !(expect && strcasecmp(expect, "100-continue") == 0) && within_drain_limit(r);
}

enum MHD_Result api_handle(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version,
                           const char *upload_data, size_t *upload_data_size,
                           void **con_cls)
{
    (void)version;
    server_t *srv = cls;
    request_t *r = *con_cls;
    if (!r) {
        if (!(r = request_new(srv, conn, url, method)))
            return MHD_NO;
        *con_cls = r;
        on_headers(r, url, method);
        /* A refusal that need not wait for the body goes out now (MHD then
         * closes the connection); anything else is sent on a later call,
         * once the body is read, which keeps the connection alive. */
        if (r->state == REQ_ANSWERED && has_body(conn) && !drain_before_answer(r))
            return send_answer(r);
        return MHD_YES;
    }
    if (r->state == REQ_ANSWERED) {
        if (*upload_data_size > 0 && drain_before_answer(r)) {
            r->bytes_in += *upload_data_size;
            *upload_data_size = 0;
            return MHD_YES;
        }
        *upload_data_size = 0;
        return send_answer(r);
    }
    if (*upload_data_size > 0) {
        r->bytes_in += *upload_data_size;
        int rc = r->post ? body_feed_multipart(r, upload_data, *upload_data_size)
                         : body_append(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        if (rc)
            return MHD_NO;
        if (!within_drain_limit(r)) /* a chunked body that never ends */
            answer_error(r, 413, "the body is larger than %zu bytes",
                         r->srv->cfg.max_body_bytes);
        return MHD_YES;
    }
    if (r->state == REQ_WAITING)
        return MHD_YES;
    if (r->kserve)
        infer_v2(r, r->model_name);
    else
        classify(r, r->model_name);
    if (r->state == REQ_ANSWERED)
        return send_answer(r);
    return MHD_YES;
}
