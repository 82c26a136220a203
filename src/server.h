/* The daemon's loop and life cycle: one libuv loop drives libmicrohttpd,
 * the model repository's loads, the completions of inference, signals
 * (SIGHUP reloads, SIGTERM and SIGINT drain) and the systemd protocol
 * (ready, reloading, stopping, watchdog). It owns every part of the
 * service and wires them together; nothing below names it. */
#ifndef SERVER_H
#define SERVER_H

#include <microhttpd.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "http/auth.h"
#include "http/router.h"
#include "http/service.h"
#include "obs/log.h"
#include "obs/telemetry.h"
#include "serve/inference.h"
#include "serve/repository.h"

typedef struct server {
    server_config_t cfg;
    logger_t log;
    telemetry_t tel;
    auth_t auth;
    router_t router;
    repository_t *repo;
    inference_t *inference;
    service_t svc;          /* what requests see of all this */

    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;     /* libmicrohttpd's epoll descriptor */
    uv_timer_t mhd_timer;   /* libmicrohttpd's next timeout */
    uv_timer_t tick;        /* deadlines, watchdog, drain steps */
    uv_signal_t sig_term, sig_int, sig_hup;

    int syns_dropped;       /* the listening socket takes no new handshakes */
    int quiesced;           /* the listening socket is closed */
    int stopping;           /* the loop is being closed */
    int reload_notify;      /* READY=1 owed once a reload's loads are over */
    int open_connections;
    int watchdog_usec_half; /* 0: no systemd watchdog */
    int64_t last_watchdog_ns;
} server_t;

/* Reads the settings and makes everything, listening already. Returns 0,
 * or -1 with msg (then server_free). */
int server_init(server_t *srv, const char *config_path, const config_flag_t *flags,
                int n_flags, char *msg, size_t msg_size);
/* Loads the models and serves until drained. Returns the exit status. */
int server_run(server_t *srv);
/* Frees what server_init made, also after it failed half way. */
void server_free(server_t *srv);

#endif
