/* A request's life: made when its headers arrive, answered once (an
 * error, a JSON or raw body), suspended while its images are out, logged
 * and counted when libmicrohttpd is done with it, then freed.
 *
 * Everything here runs on the loop thread. A handler keeps its own state
 * on the request (handler_state, freed with it by free_handler_state) and
 * may register on_hangup to hear of a client that leaves while the
 * request is suspended. */
#ifndef HTTP_REQUEST_H
#define HTTP_REQUEST_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "classify/error.h"
#include "http/body.h"
#include "http/router.h"
#include "http/service.h"
#include "serve/inference.h"

typedef enum request_state {
    REQ_READING,   /* headers or body arriving */
    REQ_WAITING,   /* suspended while its work is out */
    REQ_ANSWERED,  /* the answer is built, to be sent */
} request_state_t;

struct request {
    service_t *svc;
    struct MHD_Connection *conn;
    char id[80];            /* X-Request-Id: the client's, or a new one */
    char method[16];
    char *path;
    char traceparent[64];   /* W3C trace context, "" when none */
    int64_t start_ns;
    size_t bytes_in, bytes_out;
    request_state_t state;

    const route_t *route;   /* NULL: no route */
    route_params_t params;
    body_t body;

    /* The answer. */
    int status;
    char *resp;             /* malloc'ed; JSON unless content_type says */
    size_t resp_len;
    const char *content_type; /* NULL: application/json */
    char extra_header[48], extra_value[32];
    const char *retry_after;
    const char *allow;      /* for a 405 */
    int www_authenticate;   /* for a 401 */
    const char *cors_origin;
    int preflight;
    char allow_buf[40];

    /* For the metrics and the access log. */
    char *model;            /* the model the request is about, once known */
    int inference;          /* counted as an inference request per model */
    int images, batch_size;
    double queue_ms, inference_ms;

    /* The handler's. */
    void *handler_state;
    void (*free_handler_state)(void *state);
    void (*on_hangup)(void *arg); /* the client left while suspended */
    void *hangup_arg;
    uv_poll_t *watch;       /* the client's socket, while suspended */
};

/* Makes a request for a new connection's headers (id, trace context,
 * start time), or NULL without memory. */
request_t *request_create(service_t *svc, struct MHD_Connection *conn, const char *url,
                          const char *method);
/* Counts, logs and frees a request libmicrohttpd is done with; toe says
 * how it ended. */
void request_finish(request_t *r, enum MHD_RequestTerminationCode toe);

/* A request header's value, or NULL. */
const char *request_header(const request_t *r, const char *name);
/* A query argument's value, or NULL. */
const char *request_query(const request_t *r, const char *name);

/* The answers; each replaces any answer built before. body is taken over
 * (json: NULL is a 500 unless status is 204; raw: malloc'ed). */
void request_answer_json(request_t *r, int status, json_t *body);
void request_answer_raw(request_t *r, int status, char *body, size_t len,
                        const char *content_type);
/* {"error": message, "code": status, "request_id": id}, or KServe's
 * {"error": message} on its routes. The message is made printable ASCII. */
void request_answer_error(request_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with the status of an error from below (http/status.h). */
void request_fail(request_t *r, ic_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Queues the built answer on the connection; MHD_NO when that fails. */
enum MHD_Result request_send(request_t *r);

/* Sets the model the request is about, for its metrics and log line. */
void request_set_model(request_t *r, const char *name);
/* Records the images of inf for the access log (after they are back). */
void request_note_inference(request_t *r, const infer_t *inf);

/* Suspends the connection until request_resume; watches the client's
 * socket meanwhile and calls on_hangup(hangup_arg) if it closes. */
void request_suspend(request_t *r);
/* Resumes it (the answer is built): the next call from libmicrohttpd
 * sends it. */
void request_resume(request_t *r);

#endif
