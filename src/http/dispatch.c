/* libmicrohttpd's callbacks; see dispatch.h.
 *
 * libmicrohttpd calls dispatch_access several times per request: first
 * with the headers (the request is made and, for the refusals that need
 * no body, answered at once), then with pieces of the body, then once
 * with no data. A handler that sends work out suspends the connection;
 * when it resumes, the next call sends the answer. */
#include "http/dispatch.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/request.h"

static int valid_model_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* Whether a token is needed here: always, but for the health and metrics
 * routes unless auth_health / auth_metrics close them too. */
static int needs_token(const request_t *r)
{
    const server_config_t *cfg = r->svc->cfg;
    unsigned f = r->route->flags;
    if (f & ROUTE_OPEN_HEALTH)
        return cfg->auth_health;
    if (f & ROUTE_OPEN_METRICS)
        return cfg->auth_metrics;
    return 1;
}

static unsigned long long declared_length(const request_t *r)
{
    const char *cl = request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return cl ? strtoull(cl, NULL, 10) : 0;
}

/* The checks every route shares, then the handler's begin. */
static void on_headers(request_t *r, const char *url, const char *method)
{
    route_match_t m;
    route_result_t found = router_match(r->svc->router, method, url, &m);
    r->route = m.route;
    r->params = m.params;
    r->cors_origin = cors_allowed_origin(r->svc->cfg->cors_origins,
                                         request_header(r, "Origin"));
    if (!strcmp(method, "OPTIONS") && r->cors_origin && r->route) {
        r->preflight = 1; /* CORS preflight: headers only */
        request_answer_json(r, 204, NULL);
        return;
    }
    if (found == ROUTE_NO_PATH) {
        request_answer_error(r, 404, "no such endpoint: %s %s", method, url);
        return;
    }
    if (r->params.name[0] && !valid_model_name(r->params.name)) {
        request_answer_error(r, r->route->flags & ROUTE_PROBE ? 400 : 404,
                             "no model named '%s'", r->params.name);
        return;
    }
    if (found == ROUTE_NO_METHOD) {
        router_allow(m.allow, r->allow_buf, sizeof r->allow_buf);
        r->allow = r->allow_buf;
        request_answer_error(r, 405, "%s is not allowed here; use %s", method, r->allow);
        return;
    }
    if (needs_token(r) && !auth_allows(r->svc->auth, request_header(r, "Authorization"))) {
        r->www_authenticate = 1;
        request_answer_error(r, 401,
                             "a valid bearer token is required (Authorization: Bearer ...)");
        return;
    }
    r->route->begin(r);
    if (r->state == REQ_ANSWERED || !r->route->end)
        return;
    if (declared_length(r) > r->svc->cfg->max_body_bytes) {
        request_fail(r, IC_EBODY_TOO_LARGE, "the body is larger than %zu bytes",
                     r->svc->cfg->max_body_bytes);
        return;
    }
    const char *ct = request_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if ((r->route->flags & ROUTE_FORMS) && ct &&
        strncasecmp(ct, "multipart/form-data", 19) == 0 &&
        body_start_form(&r->body, r->conn) != IC_OK)
        request_fail(r, IC_EBODY_MALFORMED, "malformed multipart/form-data header (no boundary?)");
}

/* A body follows the headers (Content-Length > 0 or chunked). */
static int has_body(const request_t *r)
{
    return declared_length(r) > 0 || request_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* A body read and thrown away after a refusal is bounded: beyond
 * 4 x max_body_bytes (declared or sent) the answer goes out and the
 * connection closes. */
static int within_drain_limit(const request_t *r)
{
    unsigned long long limit = 4ull * r->svc->cfg->max_body_bytes;
    return r->bytes_in <= limit && declared_length(r) <= limit;
}

/* Whether a refused request's body is read (and thrown away) before the
 * answer goes out. A client still sending when the server closes gets a
 * connection reset instead of the answer, so it is, unless the client
 * asked "Expect: 100-continue" (it then waits and never sends the body). */
static int drain_before_answer(const request_t *r)
{
    const char *expect = request_header(r, MHD_HTTP_HEADER_EXPECT);
    return !(expect && strcasecmp(expect, "100-continue") == 0) && within_drain_limit(r);
}

enum MHD_Result dispatch_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size,
                                void **con_cls)
{
    (void)version;
    request_t *r = *con_cls;
    if (!r) {
        if (!(r = request_create(cls, conn, url, method)))
            return MHD_NO;
        *con_cls = r;
        on_headers(r, url, method);
        /* A refusal that need not wait for the body goes out now (MHD then
         * closes the connection); anything else is sent on a later call,
         * once the body is read, which keeps the connection alive. */
        if (r->state == REQ_ANSWERED && has_body(r) && !drain_before_answer(r))
            return request_send(r);
        return MHD_YES;
    }
    if (r->state == REQ_ANSWERED) {
        if (*upload_data_size > 0 && drain_before_answer(r)) {
            r->bytes_in += *upload_data_size;
            *upload_data_size = 0;
            return MHD_YES;
        }
        *upload_data_size = 0;
        return request_send(r);
    }
    if (*upload_data_size > 0) {
        r->bytes_in += *upload_data_size;
        ic_err_t rc = body_feed(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        if (rc != IC_OK)
            return MHD_NO;
        if (!within_drain_limit(r)) /* a chunked body that never ends */
            request_fail(r, IC_EBODY_TOO_LARGE, "the body is larger than %zu bytes",
                         r->svc->cfg->max_body_bytes);
        return MHD_YES;
    }
    if (r->state == REQ_WAITING)
        return MHD_YES;
    if (r->route->end)
        r->route->end(r);
    else /* a begin without end answers; this one did not */
        request_answer_error(r, 500, "the handler gave no answer");
    if (r->state == REQ_ANSWERED)
        return request_send(r);
    return MHD_YES;
}

void dispatch_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    request_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    request_finish(r, toe);
}
