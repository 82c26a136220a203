/* The service as the HTTP layer sees it: the daemon's parts a request may
 * use, and the life-cycle state that changes what it is answered. The
 * server (src/server.c) owns all of it and fills it in; requests and
 * handlers read it, on the loop thread. */
#ifndef HTTP_SERVICE_H
#define HTTP_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "http/auth.h"
#include "http/router.h"
#include "obs/log.h"
#include "obs/telemetry.h"
#include "serve/inference.h"
#include "serve/repository.h"

#define IMGCLASSD_VERSION "0.2.0"

typedef struct service {
    const server_config_t *cfg;
    const logger_t *log;
    telemetry_t *tel;
    repository_t *repo;
    inference_t *inference;
    auth_t *auth;
    router_t *router;
    uv_loop_t *loop;
    /* Runs libmicrohttpd once more (after a connection is resumed). */
    void (*pump)(void *arg);
    void *pump_arg;

    /* Life cycle: after SIGTERM the service is draining, not ready; new
     * work is still taken for drain_grace_ms, then refused. */
    int draining;
    int64_t drain_start_ns;
    int drain_grace_ms;

    /* Requests. */
    int open_requests;         /* received and not yet finished */
    uint64_t request_counter;  /* for request ids */
    char id_prefix[16];        /* random per process */
} service_t;

/* Whether the service is ready (why: "ready", "draining", or the
 * repository's reason). */
int service_ready(const service_t *s, const char **why);

/* Whether new work is refused: draining for longer than the grace. */
int service_refuses_work(const service_t *s);

#endif
