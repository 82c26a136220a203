/* The loop and the life cycle; see server.h.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL): its epoll
 * descriptor is watched by a uv_poll_t and its timeouts by a uv_timer_t,
 * and after every MHD_run the timer is re-armed from MHD_get_timeout. The
 * schedulers' threads never touch libmicrohttpd; their jobs come back
 * through the inference module's uv_async_t. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "http/dispatch.h"
#include "http/handlers.h"
#include "util/clock.h"

/* Deadline checks and drain steps run on this period. */
#define TICK_MS 20

/* ---- libmicrohttpd pump ----------------------------------------------------------- */

static void on_mhd_timer(uv_timer_t *t);

static void mhd_pump(void *arg)
{
    server_t *srv = arg;
    if (!srv->mhd)
        return;
    MHD_run(srv->mhd);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(srv->mhd, &ms) == MHD_YES)
        uv_timer_start(&srv->mhd_timer, on_mhd_timer, ms, 0);
    else
        uv_timer_stop(&srv->mhd_timer);
}

static void on_mhd_timer(uv_timer_t *t)
{
    mhd_pump(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    mhd_pump(p->data);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    server_t *srv = cls;
    srv->open_connections += code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    telemetry_open_connections(&srv->tel, srv->open_connections);
}

/* ---- the repository's news -------------------------------------------------------- */

static void on_first_loaded(void *arg)
{
    server_t *srv = arg;
    const char *why;
    if (service_ready(&srv->svc, &why)) {
        log_msg(&srv->log, LOG_INFO, "ready: %d model(s) loaded", repo_count(srv->repo));
        sd_notify(0, "READY=1\nSTATUS=serving");
    } else {
        log_msg(&srv->log, LOG_ERROR, "not ready: %s", why);
        /* systemd still learns that start-up is over. */
        sd_notify(0, "READY=1\nSTATUS=not ready: a model failed to load");
    }
}

static void on_settled(void *arg)
{
    server_t *srv = arg;
    if (srv->reload_notify && !srv->svc.draining) {
        srv->reload_notify = 0;
        sd_notify(0, "READY=1");
    }
}

/* ---- signals and life cycle ------------------------------------------------------- */

static void on_reload(uv_signal_t *h, int sig)
{
    (void)sig;
    server_t *srv = h->data;
    if (srv->svc.draining)
        return;
    log_msg(&srv->log, LOG_INFO, "SIGHUP: reloading the model repository %s",
            srv->cfg.models_dir);
    if (srv->cfg.auth_tokens_file) {
        char msg[512];
        if (auth_load(&srv->auth, srv->cfg.auth_tokens_file, msg, sizeof msg) != IC_OK)
            log_msg(&srv->log, LOG_ERROR, "tokens not reloaded: %s", msg);
        else
            log_msg(&srv->log, LOG_INFO, "%d bearer token(s) loaded", srv->auth.n_tokens);
    }
    sd_notify(0, "RELOADING=1");
    srv->reload_notify = 1;
    repo_scan(srv->repo);
}

static void begin_drain(server_t *srv, int grace_ms)
{
    if (srv->svc.draining)
        return;
    srv->svc.draining = 1;
    srv->svc.drain_start_ns = clock_now_ns();
    srv->svc.drain_grace_ms = grace_ms;
    sd_notify(0, "STOPPING=1");
    log_msg(&srv->log, LOG_INFO,
            "draining: not ready; serving for %d ms, then finishing accepted requests",
            grace_ms);
}

static void on_term(uv_signal_t *h, int sig)
{
    server_t *srv = h->data;
    /* Ctrl-C at a terminal needs no grace period for a balancer. */
    begin_drain(srv, sig == SIGINT ? 0 : srv->cfg.drain_grace_ms);
}

/* Connections the kernel completed but libmicrohttpd had not accepted yet
 * would be reset by close(): their clients may already have sent a
 * request. Accept them here and hand them to libmicrohttpd, which serves
 * them like any other. */
static void adopt_backlog(server_t *srv, int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return; /* never block the loop in accept */
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return; /* EAGAIN: the backlog is empty */
        if (MHD_add_connection(srv->mhd, c, (struct sockaddr *)&ss, len) != MHD_YES)
            log_msg(&srv->log, LOG_ERROR, "could not adopt a pending connection");
    }
}

/* Closes every handle, so that uv_run returns once the loads in flight
 * are over. */
static void stop_everything(server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    log_msg(&srv->log, LOG_INFO, "stopped accepting; all requests answered; shutting down");
    repo_stop(srv->repo);
    uv_timer_stop(&srv->tick);
    uv_timer_stop(&srv->mhd_timer);
    uv_poll_stop(&srv->mhd_poll);
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    uv_close((uv_handle_t *)&srv->tick, NULL);
    uv_close((uv_handle_t *)&srv->mhd_timer, NULL);
    uv_close((uv_handle_t *)&srv->mhd_poll, NULL);
    inference_close(srv->inference);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}

/* A socket filter on the listening socket that drops packets opening a
 * connection (SYN without ACK; the filter sees the TCP header, flags at
 * byte 13): the handshakes already under way still complete, new ones are
 * retried by their clients and then refused. Without it, a connection
 * completed between the last accept and close() would be reset unread.
 * Best effort: where the filter is refused, the window stays (a few
 * microseconds). */
static void drop_new_connections(server_t *srv)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    if (!info || info->listen_fd == MHD_INVALID_SOCKET)
        return;
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),        /* TCP flags */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),     /* SYN | ACK */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* a bare SYN: */
        BPF_STMT(BPF_RET | BPF_K, 0),                  /* dropped */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),        /* the rest kept */
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (setsockopt(info->listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
        log_msg(&srv->log, LOG_WARN, "listening socket: cannot drop new connections: %s",
                strerror(errno));
}

/* After the grace: take no new connections, then (a tick later, when the
 * handshakes under way are done and accepted) close the listening socket,
 * finish what was accepted, stop. */
static void drain_step(server_t *srv, int64_t now)
{
    int64_t elapsed_ms = (now - srv->svc.drain_start_ns) / 1000000;
    if (!srv->syns_dropped && elapsed_ms >= srv->svc.drain_grace_ms) {
        drop_new_connections(srv);
        srv->syns_dropped = 1;
        return;
    }
    if (!srv->quiesced && srv->syns_dropped) {
        /* Connections already open are still served. */
        MHD_socket fd = MHD_quiesce_daemon(srv->mhd);
        if (fd != MHD_INVALID_SOCKET) {
            adopt_backlog(srv, fd);
            close(fd);
        }
        srv->quiesced = 1;
        log_msg(&srv->log, LOG_INFO, "listening socket closed; %d request(s) in flight",
                srv->svc.open_requests);
    }
    if (srv->quiesced && srv->svc.open_requests == 0) {
        stop_everything(srv);
        return;
    }
    if (elapsed_ms >= (int64_t)srv->svc.drain_grace_ms + srv->cfg.shutdown_timeout_ms) {
        log_msg(&srv->log, LOG_ERROR, "shutdown timeout: %d request(s) still in flight; exiting",
                srv->svc.open_requests);
        _exit(1);
    }
}

static void on_tick(uv_timer_t *t)
{
    server_t *srv = t->data;
    int64_t now = clock_now_ns();
    repo_expire(srv->repo, now);
    /* Keep-alives at half the watchdog period, from the loop itself: a
     * stuck loop stops them and systemd restarts the service. */
    if (srv->watchdog_usec_half > 0 &&
        now - srv->last_watchdog_ns >= (int64_t)srv->watchdog_usec_half * 1000) {
        sd_notify(0, "WATCHDOG=1");
        srv->last_watchdog_ns = now;
    }
    if (srv->svc.draining)
        drain_step(srv, now);
}

/* ---- start ------------------------------------------------------------------------ */

static int start_http(server_t *srv, char *msg, size_t msg_size)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, srv->cfg.listen, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)srv->cfg.port);
    } else if (inet_pton(AF_INET6, srv->cfg.listen, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)srv->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(msg, msg_size, "listen: '%s' is not an IPv4 or IPv6 address",
                 srv->cfg.listen);
        return -1;
    }
    srv->mhd = MHD_start_daemon(
        flags, (uint16_t)srv->cfg.port, NULL, NULL, dispatch_access, &srv->svc,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)srv->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)srv->cfg.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(128 * 1024), MHD_OPTION_NOTIFY_COMPLETED, dispatch_completed, &srv->svc,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024U, MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(msg, msg_size, "cannot listen on %s port %d: %s", srv->cfg.listen,
                 srv->cfg.port, errno ? strerror(errno) : "libmicrohttpd failed");
        return -1;
    }
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!ei) {
        snprintf(msg, msg_size, "libmicrohttpd has no epoll descriptor");
        return -1;
    }
    srv->mhd_poll.data = srv;
    if (uv_poll_init(srv->loop, &srv->mhd_poll, ei->epoll_fd) ||
        uv_poll_start(&srv->mhd_poll, UV_READABLE, on_mhd_poll)) {
        snprintf(msg, msg_size, "uv_poll on libmicrohttpd's epoll descriptor failed");
        return -1;
    }
    log_msg(&srv->log, LOG_INFO, "listening on %s port %u", srv->cfg.listen,
            pi ? (unsigned)pi->port : (unsigned)srv->cfg.port);
    return 0;
}

/* Without its repository the daemon could never become ready: say so now
 * rather than wait to be killed by a start-up timeout. */
static int check_models_dir(const char *dir, char *msg, size_t msg_size)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(msg, msg_size, "models_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(msg, msg_size, "models_dir %s: not a folder", dir);
        return -1;
    }
    return 0;
}

static int init_loop(server_t *srv, char *msg, size_t msg_size)
{
    srv->loop = malloc(sizeof *srv->loop);
    if (!srv->loop || uv_loop_init(srv->loop)) {
        free(srv->loop);
        srv->loop = NULL;
        snprintf(msg, msg_size, "uv_loop_init failed");
        return -1;
    }
    uv_timer_init(srv->loop, &srv->mhd_timer);
    uv_timer_init(srv->loop, &srv->tick);
    srv->mhd_timer.data = srv->tick.data = srv;
    uv_signal_init(srv->loop, &srv->sig_term);
    uv_signal_init(srv->loop, &srv->sig_int);
    uv_signal_init(srv->loop, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    if (uv_signal_start(&srv->sig_term, on_term, SIGTERM) ||
        uv_signal_start(&srv->sig_int, on_term, SIGINT) ||
        uv_signal_start(&srv->sig_hup, on_reload, SIGHUP)) {
        snprintf(msg, msg_size, "cannot install signal handlers");
        return -1;
    }
    return 0;
}

/* The repository, the completions and the routes: the service. */
static int init_service(server_t *srv, char *msg, size_t msg_size)
{
    if (inference_create(&srv->inference, srv->loop, &srv->tel) != IC_OK) {
        snprintf(msg, msg_size, "cannot set up the completion queue");
        return -1;
    }
    repo_config_t rc = {
        .models_dir = srv->cfg.models_dir,
        .limits = {.min_side = srv->cfg.min_image_side,
                   .max_pixels = srv->cfg.max_image_pixels},
        .job_done = inference_done,
        .job_done_arg = srv->inference,
        .first_loaded = on_first_loaded,
        .settled = on_settled,
        .arg = srv,
    };
    if (repo_create(&srv->repo, srv->loop, &rc, &srv->log, &srv->tel) != IC_OK ||
        v1_routes(&srv->router) != IC_OK || torchserve_routes(&srv->router) != IC_OK ||
        kserve_routes(&srv->router) != IC_OK || prometheus_routes(&srv->router) != IC_OK) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    service_t *s = &srv->svc;
    s->cfg = &srv->cfg;
    s->log = &srv->log;
    s->tel = &srv->tel;
    s->repo = srv->repo;
    s->inference = srv->inference;
    s->auth = &srv->auth;
    s->router = &srv->router;
    s->loop = srv->loop;
    s->pump = mhd_pump;
    s->pump_arg = srv;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
        rnd = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    snprintf(s->id_prefix, sizeof s->id_prefix, "%08x", rnd);
    return 0;
}

int server_init(server_t *srv, const char *config_path, const config_flag_t *flags,
                int n_flags, char *msg, size_t msg_size)
{
    memset(srv, 0, sizeof *srv);
    if (server_config_load(&srv->cfg, config_path, flags, n_flags, msg, msg_size) != IC_OK)
        return -1;
    logger_init(&srv->log, srv->cfg.log_level, srv->cfg.log_format);
    if (check_models_dir(srv->cfg.models_dir, msg, msg_size))
        return -1;
    if (telemetry_init(&srv->tel, srv->cfg.triton_metrics, IMGCLASSD_VERSION,
                       (int64_t)time(NULL)) != IC_OK) {
        snprintf(msg, msg_size, "out of memory for metrics");
        return -1;
    }
    if (auth_load(&srv->auth, srv->cfg.auth_tokens_file, msg, msg_size) != IC_OK ||
        init_loop(srv, msg, msg_size) || init_service(srv, msg, msg_size) ||
        start_http(srv, msg, msg_size))
        return -1;
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0)
        srv->watchdog_usec_half = (int)(wd_usec / 2);
    uv_timer_start(&srv->tick, on_tick, TICK_MS, TICK_MS);
    return 0;
}

int server_run(server_t *srv)
{
    log_msg(&srv->log, LOG_INFO, "loading models from %s", srv->cfg.models_dir);
    repo_scan(srv->repo);
    mhd_pump(srv);
    return uv_run(srv->loop, UV_RUN_DEFAULT) == 0 ? 0 : 1;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void server_free(server_t *srv)
{
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    /* Models first: their schedulers may still report to the completions. */
    repo_free(srv->repo);
    if (srv->loop) {
        /* Close whatever is still open (an init that failed half way). */
        uv_walk(srv->loop, close_handle, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(srv->loop);
        free(srv->loop);
    }
    inference_free(srv->inference);
    router_free(&srv->router);
    auth_free(&srv->auth);
    telemetry_free(&srv->tel);
    server_config_free(&srv->cfg);
}
