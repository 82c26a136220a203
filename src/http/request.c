/* A request's life; see request.h. */
#include "http/request.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/status.h"
#include "util/clock.h"

/* ---- life ------------------------------------------------------------------------- */

/* The client's X-Request-Id if it is sane (printable, short), else a new
 * one: the process's random prefix and a counter. */
static void set_id(request_t *r)
{
    const char *given = request_header(r, "X-Request-Id");
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
    snprintf(r->id, sizeof r->id, "%s-%08" PRIx64, r->svc->id_prefix,
             ++r->svc->request_counter);
}

request_t *request_create(service_t *svc, struct MHD_Connection *conn, const char *url,
                          const char *method)
{
    request_t *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(url))) {
        free(r);
        return NULL;
    }
    r->svc = svc;
    r->conn = conn;
    r->start_ns = clock_now_ns();
    snprintf(r->method, sizeof r->method, "%s", method);
    body_init(&r->body, svc->cfg->max_body_bytes, svc->cfg->max_images_per_request);
    set_id(r);
    /* W3C trace context, logged so that access logs join traces. */
    const char *tp = request_header(r, "traceparent");
    if (tp && strlen(tp) < sizeof r->traceparent &&
        strspn(tp, "0123456789abcdef-") == strlen(tp))
        memcpy(r->traceparent, tp, strlen(tp) + 1);
    svc->open_requests++;
    return r;
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
        .model = r->model,
        .status = status,
        .bytes_in = (long long)r->bytes_in,
        .bytes_out = (long long)r->bytes_out,
        .images = r->images,
        .batch_size = r->batch_size,
        .queue_ms = r->queue_ms,
        .inference_ms = r->inference_ms,
        .duration_ms = secs * 1e3,
        .aborted = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? NULL
                   : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? "client"
                                                                : "error",
    };
    log_access(r->svc->log, &e);
}

void request_finish(request_t *r, enum MHD_RequestTerminationCode toe)
{
    service_t *svc = r->svc;
    int status = r->state == REQ_ANSWERED ? r->status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status == 0)
        status = HTTP_CLIENT_CLOSED;
    double secs = (double)(clock_now_ns() - r->start_ns) / 1e9;
    telemetry_http(svc->tel, r->route ? r->route->name : "not_found", status, secs);
    if (r->model && r->inference)
        telemetry_request(svc->tel, r->model, status, secs);
    if (svc->cfg->log_requests)
        log_request(r, status, secs, toe);
    /* A request whose work is out cannot end here: its connection is
     * suspended, and libmicrohttpd does not close suspended connections. */
    if (r->free_handler_state)
        r->free_handler_state(r->handler_state);
    body_free(&r->body);
    free(r->resp);
    free(r->path);
    free(r->model);
    free(r);
    svc->open_requests--;
}

const char *request_header(const request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *request_query(const request_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void request_set_model(request_t *r, const char *name)
{
    /* A copy: requests outlive the repository's slots (a reload may drop
     * one). Without memory only the label is lost. */
    free(r->model);
    r->model = name ? strdup(name) : NULL;
}

void request_note_inference(request_t *r, const infer_t *inf)
{
    r->images = inf->n;
    for (int i = 0; i < inf->n; i++) {
        const sched_job_t *j = &inf->jobs[i];
        double q = (double)(j->started_ns - j->queued_ns) / 1e6;
        double ms = (double)j->infer_ns / 1e6;
        if (j->batch_size > r->batch_size)
            r->batch_size = j->batch_size;
        if (q > r->queue_ms)
            r->queue_ms = q;
        if (ms > r->inference_ms)
            r->inference_ms = ms;
    }
}

/* ---- answers ---------------------------------------------------------------------- */

void request_answer_json(request_t *r, int status, json_t *body)
{
    free(r->resp);
    r->resp = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    r->resp_len = r->resp ? strlen(r->resp) : 0;
    json_decref(body);
    r->content_type = NULL;
    r->status = r->resp || status == 204 ? status : 500;
    r->state = REQ_ANSWERED;
}

void request_answer_raw(request_t *r, int status, char *body, size_t len,
                        const char *content_type)
{
    free(r->resp);
    r->resp = body;
    r->resp_len = len;
    r->content_type = content_type;
    r->status = status;
    r->state = REQ_ANSWERED;
}

static void answer_verror(request_t *r, int status, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Messages echo client input (paths, names): keep them printable
     * ASCII so that they are always valid JSON strings. */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    /* KServe v2 defines its error body as {"error": message}; ours adds
     * the status and the request id. */
    if (r->route && (r->route->flags & ROUTE_KSERVE))
        request_answer_json(r, status, json_pack("{s:s}", "error", msg));
    else
        request_answer_json(r, status, json_pack("{s:s, s:i, s:s}", "error", msg, "code",
                                                 status, "request_id", r->id));
}

void request_answer_error(request_t *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    answer_verror(r, status, fmt, ap);
    va_end(ap);
}

void request_fail(request_t *r, ic_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    answer_verror(r, http_status(err), fmt, ap);
    va_end(ap);
}

static void add_cors_headers(const request_t *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
    if (strcmp(r->cors_origin, "*"))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "X-Request-Id, Inference-Header-Content-Length");
    if (!r->preflight)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            "GET, HEAD, POST, PUT, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, X-Request-Id, traceparent, "
                            "Inference-Header-Content-Length");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
}

/* The response object for the built answer (the body moves into it). */
static struct MHD_Response *make_response(request_t *r)
{
    if (r->resp) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            r->bytes_out = r->resp_len;
            r->resp = NULL; /* libmicrohttpd frees it */
        }
        return resp;
    }
    /* No body: a 204, or an answer that could not be built (no memory). */
    static const char no_memory[] = "{\"error\":\"out of memory\"}";
    const char *body = r->status == 204 ? "" : no_memory;
    r->bytes_out = strlen(body);
    return MHD_create_response_from_buffer(r->bytes_out, (void *)body,
                                           MHD_RESPMEM_PERSISTENT);
}

enum MHD_Result request_send(request_t *r)
{
    struct MHD_Response *resp = make_response(r);
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
    if (r->cors_origin)
        add_cors_headers(r, resp);
    /* While draining, close keep-alive connections after their answer so
     * that a balancer moves them elsewhere before the socket goes away. */
    if (r->svc->draining)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- suspension ------------------------------------------------------------------- */

/* A suspended connection is not watched by libmicrohttpd; this notices
 * the client hanging up, so that the work it left is dropped. */
static void on_client_event(uv_poll_t *p, int status, int events)
{
    request_t *r = p->data;
    if (status < 0 || (events & UV_DISCONNECT)) {
        uv_poll_stop(p);
        if (r->on_hangup)
            r->on_hangup(r->hangup_arg);
    }
}

static void watch_client(request_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    /* Without the watch the request still completes; only an early
     * cancel is lost. */
    uv_poll_t *p = malloc(sizeof *p);
    if (!p)
        return;
    if (uv_poll_init_socket(r->svc->loop, p, ci->connect_fd) != 0) {
        free(p);
        return;
    }
    p->data = r;
    if (uv_poll_start(p, UV_DISCONNECT, on_client_event) != 0) {
        uv_close((uv_handle_t *)p, (uv_close_cb)free);
        return;
    }
    r->watch = p;
}

void request_suspend(request_t *r)
{
    r->state = REQ_WAITING;
    MHD_suspend_connection(r->conn);
    watch_client(r);
}

void request_resume(request_t *r)
{
    if (r->watch) {
        uv_poll_stop(r->watch);
        uv_close((uv_handle_t *)r->watch, (uv_close_cb)free);
        r->watch = NULL;
    }
    MHD_resume_connection(r->conn);
    r->svc->pump(r->svc->pump_arg);
}
