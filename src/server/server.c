/* The event loop, libmicrohttpd driven from it, the model repository and
 * the life cycle: start, SIGHUP reload, SIGTERM drain. See server.h.
 *
 * libmicrohttpd runs without threads of its own (MHD_USE_EPOLL): its epoll
 * descriptor is watched by a uv_poll_t and its timeouts by a uv_timer_t,
 * and after every MHD_run the timer is re-armed from MHD_get_timeout.
 * Scheduler threads never touch MHD; they push finished jobs to `done`
 * and wake the loop through a uv_async_t. */
#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* Deadline checks and drain steps run on this period. */
#define TICK_MS 20

/* ---- libmicrohttpd pump ----------------------------------------------------------- */

static void on_mhd_timer(uv_timer_t *t);

static void mhd_pump(server_t *srv)
{
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

void server_resume(server_t *srv, request_t *r)
{
    if (r->watch) {
        uv_poll_stop(r->watch);
        uv_close((uv_handle_t *)r->watch, (uv_close_cb)free);
        r->watch = NULL;
    }
    MHD_resume_connection(r->conn);
    mhd_pump(srv);
}

/* A suspended connection is not watched by MHD; this notices the client
 * hanging up so that its queued jobs are dropped before they run. */
static void on_client_event(uv_poll_t *p, int status, int events)
{
    request_t *r = p->data;
    if (status < 0 || (events & UV_DISCONNECT)) {
        uv_poll_stop(p);
        api_cancel(r->srv, r);
    }
}

void server_watch_disconnect(server_t *srv, request_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    uv_poll_t *p = malloc(sizeof *p);
    if (!p)
        return; /* the request still completes; only early cancel is lost */
    if (uv_poll_init_socket(srv->loop, p, ci->connect_fd) != 0) {
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

/* ---- completions ------------------------------------------------------------------ */

static void on_job_done(sched_job_t *job, void *arg)
{
    served_model_t *m = arg;
    server_t *srv = m->owner;
    pthread_mutex_lock(&srv->done_lock);
    if (srv->n_done == srv->cap_done) {
        int cap = srv->cap_done ? 2 * srv->cap_done : 256;
        sched_job_t **d = realloc(srv->done, (size_t)cap * sizeof *d);
        if (!d) {
            /* Cannot happen silently: without the list the request would
             * hang. The array only grows to the total queue capacity. */
            pthread_mutex_unlock(&srv->done_lock);
            log_msg(&srv->log, LOG_ERROR, "out of memory recording a finished job; aborting");
            abort();
        }
        srv->done = d;
        srv->cap_done = cap;
    }
    srv->done[srv->n_done++] = job;
    pthread_mutex_unlock(&srv->done_lock);
    uv_async_send(&srv->wake);
}

static void on_batch(int n, double queue_s, double infer_s, void *arg)
{
    served_model_t *m = arg;
    server_t *srv = m->owner;
    (void)queue_s; /* per image, recorded by api.c */
    const char *lv[] = {m->name, NULL};
    metric_observe(metrics_series(srv->m_batch, lv), n);
    metric_observe(metrics_series(srv->m_infer_s, lv), infer_s);
    if (srv->cfg.triton_metrics) {
        const char *tv[] = {m->name, m->cfg.version, NULL};
        metric_add(metrics_series(srv->t_exec, tv), 1);
        metric_add(metrics_series(srv->t_compute_us, tv), infer_s * 1e6);
    }
}

static void on_wake(uv_async_t *a)
{
    server_t *srv = a->data;
    for (;;) {
        pthread_mutex_lock(&srv->done_lock);
        int n = srv->n_done;
        sched_job_t *batch[256];
        if (n > 256)
            n = 256;
        memcpy(batch, srv->done, (size_t)n * sizeof *batch);
        memmove(srv->done, srv->done + n, (size_t)(srv->n_done - n) * sizeof *batch);
        srv->n_done -= n;
        pthread_mutex_unlock(&srv->done_lock);
        if (n == 0)
            break;
        for (int i = 0; i < n; i++)
            api_job_finished(srv, batch[i]);
    }
}

/* ---- model repository ------------------------------------------------------------- */

served_model_t *server_find_model(server_t *srv, const char *name, model_slot_t **slot)
{
    for (int i = 0; i < srv->n_slots; i++)
        if (strcmp(srv->slots[i].name, name) == 0) {
            if (slot)
                *slot = &srv->slots[i];
            return srv->slots[i].current;
        }
    if (slot)
        *slot = NULL;
    return NULL;
}

void server_model_unref(server_t *srv, served_model_t *m)
{
    (void)srv;
    if (m && --m->refs == 0) {
        log_msg(&srv->log, LOG_INFO, "model %s version %s unloaded", m->name, m->cfg.version);
        served_model_free(m);
    }
}

int server_ready(const server_t *srv, const char **why)
{
    if (srv->draining) {
        *why = "draining";
        return 0;
    }
    if (!srv->initial_load_done) {
        *why = "loading models";
        return 0;
    }
    for (int i = 0; i < srv->n_slots; i++)
        if (!srv->slots[i].current && !srv->slots[i].loading) {
            *why = "a model failed to load";
            return 0;
        }
    if (srv->n_slots == 0) {
        *why = "no models";
        return 0;
    }
    *why = "ready";
    return 1;
}

typedef struct load_job {
    uv_work_t work;
    server_t *srv;
    char *name;
    img_limits_t limits;
    served_model_t *result;
    char msg[1024];
} load_job_t;

static void load_work(uv_work_t *w)
{
    load_job_t *lj = w->data;
    served_model_load(&lj->result, lj->srv->cfg.models_dir, lj->name, &lj->limits,
                      on_job_done, on_batch, lj->srv, lj->msg, sizeof lj->msg);
}

static void set_model_ready_metric(server_t *srv, const char *name, int ready)
{
    const char *lv[] = {name, NULL};
    metric_set(metrics_series(srv->m_model_ready, lv), ready);
}

static void scan_repository(server_t *srv);

static void finish_initial_load(server_t *srv)
{
    if (srv->initial_load_done || srv->loads_in_flight > 0)
        return;
    srv->initial_load_done = 1;
    const char *why;
    if (server_ready(srv, &why)) {
        log_msg(&srv->log, LOG_INFO, "ready: %d model(s) loaded", srv->n_slots);
        sd_notify(0, "READY=1\nSTATUS=serving");
    } else {
        log_msg(&srv->log, LOG_ERROR, "not ready: %s", why);
        /* systemd still learns that start-up is over. */
        sd_notify(0, "READY=1\nSTATUS=not ready: a model failed to load");
    }
}

static void finish_reload(server_t *srv)
{
    if (srv->reload_notify && srv->loads_in_flight == 0 && !srv->reload_pending &&
        !srv->draining) {
        srv->reload_notify = 0;
        sd_notify(0, "READY=1");
    }
}

static void load_done(uv_work_t *w, int status)
{
    load_job_t *lj = w->data;
    server_t *srv = lj->srv;
    model_slot_t *slot;
    server_find_model(srv, lj->name, &slot);
    srv->loads_in_flight--;
    if (status == UV_ECANCELED && !lj->result)
        snprintf(lj->msg, sizeof lj->msg, "load cancelled");
    if (slot)
        slot->loading = 0;
    if (lj->result && slot && !srv->stopping) {
        served_model_t *old = slot->current;
        lj->result->refs = 1;
        slot->current = lj->result;
        free(slot->last_error);
        slot->last_error = NULL;
        set_model_ready_metric(srv, slot->name, 1);
        log_msg(&srv->log, LOG_INFO, "model %s version %s loaded in %.2f s (%s)", slot->name,
                 lj->result->cfg.version, lj->result->load_seconds,
                 old ? "swapped in" : "new");
        server_model_unref(srv, old);
    } else {
        served_model_free(lj->result);
        if (slot) {
            slot->failures++;
            free(slot->last_error);
            slot->last_error = strdup(lj->msg);
        }
        const char *lv[] = {lj->name, NULL};
        metric_add(metrics_series(srv->m_load_fail, lv), 1);
        if (!slot || !slot->current)
            set_model_ready_metric(srv, lj->name, 0);
        log_msg(&srv->log, LOG_ERROR, "model %s failed to load: %s%s", lj->name, lj->msg,
                 slot && slot->current ? " (the previous version keeps serving)" : "");
    }
    free(lj->name);
    free(lj);
    finish_initial_load(srv);
    if (srv->loads_in_flight == 0 && srv->reload_pending && !srv->stopping) {
        srv->reload_pending = 0;
        scan_repository(srv);
    }
    finish_reload(srv);
}

static int start_load(server_t *srv, model_slot_t *slot)
{
    load_job_t *lj = calloc(1, sizeof *lj);
    if (!lj || !(lj->name = strdup(slot->name))) {
        free(lj);
        log_msg(&srv->log, LOG_ERROR, "out of memory loading model %s", slot->name);
        return -1;
    }
    lj->srv = srv;
    lj->work.data = lj;
    lj->limits = (img_limits_t){.min_side = srv->cfg.min_image_side,
                                .max_pixels = srv->cfg.max_image_pixels};
    if (uv_queue_work(srv->loop, &lj->work, load_work, load_done) != 0) {
        free(lj->name);
        free(lj);
        return -1;
    }
    slot->loading = 1;
    srv->loads_in_flight++;
    return 0;
}

static model_slot_t *add_slot(server_t *srv, const char *name)
{
    if (srv->n_slots == srv->cap_slots) {
        int cap = srv->cap_slots ? 2 * srv->cap_slots : 8;
        model_slot_t *s = realloc(srv->slots, (size_t)cap * sizeof *s);
        if (!s)
            return NULL;
        srv->slots = s;
        srv->cap_slots = cap;
    }
    model_slot_t *s = &srv->slots[srv->n_slots];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name)))
        return NULL;
    srv->n_slots++;
    return s;
}

/* A folder is a model when it holds config.json or model.onnx. */
static int is_model_dir(const char *models_dir, const char *name)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", models_dir, name);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return 0;
    snprintf(path, sizeof path, "%s/%s/config.json", models_dir, name);
    if (stat(path, &sb) == 0)
        return 1;
    snprintf(path, sizeof path, "%s/%s/model.onnx", models_dir, name);
    return stat(path, &sb) == 0;
}

/* Loads new and changed models, drops removed ones. */
static void scan_repository(server_t *srv)
{
    if (srv->loads_in_flight > 0) {
        srv->reload_pending = 1;
        return;
    }
    DIR *d = opendir(srv->cfg.models_dir);
    if (!d) {
        log_msg(&srv->log, LOG_ERROR, "cannot read the model repository %s: %s",
                 srv->cfg.models_dir, strerror(errno));
        return;
    }
    for (int i = 0; i < srv->n_slots; i++)
        srv->slots[i].present = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_model_dir(srv->cfg.models_dir, e->d_name))
            continue;
        model_slot_t *slot;
        served_model_t *cur = server_find_model(srv, e->d_name, &slot);
        if (!slot && !(slot = add_slot(srv, e->d_name))) {
            log_msg(&srv->log, LOG_ERROR, "out of memory adding model %s", e->d_name);
            continue;
        }
        /* Series exist from the start, so that rate() sees a first failure. */
        const char *lv[] = {slot->name, NULL};
        metric_add(metrics_series(srv->m_load_fail, lv), 0);
        if (!slot->current)
            set_model_ready_metric(srv, slot->name, 0);
        slot->present = 1;
        if (cur) {
            model_stamp_t st;
            model_stamp_read(cur->dir, &st);
            if (model_stamp_equal(&st, &cur->stamp))
                continue;
        }
        start_load(srv, slot);
    }
    closedir(d);
    /* Removed folders: stop serving them. */
    for (int i = 0; i < srv->n_slots;) {
        model_slot_t *s = &srv->slots[i];
        if (s->present || s->loading) {
            i++;
            continue;
        }
        log_msg(&srv->log, LOG_INFO, "model %s removed from the repository", s->name);
        const char *lv[] = {s->name, NULL};
        metric_hide(metrics_series(srv->m_model_ready, lv));
        metric_hide(metrics_series(srv->m_queue_depth, lv));
        metric_hide(metrics_series(srv->m_queue_capacity, lv));
        server_model_unref(srv, s->current);
        free(s->name);
        free(s->last_error);
        srv->slots[i] = srv->slots[--srv->n_slots];
    }
    finish_initial_load(srv);
}

/* ---- signals and life cycle ------------------------------------------------------- */

static void stop_everything(server_t *srv);

/* Re-reads the bearer tokens; on a failure the old ones stay. */
static void reload_tokens(server_t *srv)
{
    if (!srv->cfg.auth_tokens_file)
        return;
    char **old = srv->tokens;
    int n_old = srv->n_tokens;
    srv->tokens = NULL;
    srv->n_tokens = 0;
    char msg[512];
    if (api_load_tokens(srv, msg, sizeof msg)) {
        api_free_tokens(srv);
        srv->tokens = old;
        srv->n_tokens = n_old;
        log_msg(&srv->log, LOG_ERROR, "tokens not reloaded: %s", msg);
        return;
    }
    for (int i = 0; i < n_old; i++)
        free(old[i]);
    free(old);
    log_msg(&srv->log, LOG_INFO, "%d bearer token(s) loaded", srv->n_tokens);
}

static void on_reload(uv_signal_t *h, int sig)
{
    (void)sig;
    server_t *srv = h->data;
    if (srv->draining)
        return;
    log_msg(&srv->log, LOG_INFO, "SIGHUP: reloading the model repository %s", srv->cfg.models_dir);
    reload_tokens(srv);
    sd_notify(0, "RELOADING=1");
    srv->reload_notify = 1;
    scan_repository(srv);
    finish_reload(srv);
}

static void begin_drain(server_t *srv, int grace_ms)
{
    if (srv->draining)
        return;
    srv->draining = 1;
    srv->drain_start_ns = sched_now_ns();
    srv->cfg.drain_grace_ms = grace_ms;
    sd_notify(0, "STOPPING=1");
    log_msg(&srv->log, LOG_INFO, "draining: not ready; serving for %d ms, then finishing "
             "accepted requests", grace_ms);
}

static void on_term(uv_signal_t *h, int sig)
{
    server_t *srv = h->data;
    /* Ctrl-C at a terminal needs no grace period for a balancer. */
    begin_drain(srv, sig == SIGINT ? 0 : srv->cfg.drain_grace_ms);
}

/* Connections the kernel completed but MHD had not accepted yet would be
 * reset by close(): their clients may already have sent a request. Accept
 * them here and hand them to MHD, which serves them like any other. */
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

static void on_tick(uv_timer_t *t)
{
    server_t *srv = t->data;
    int64_t now = sched_now_ns();
    for (int i = 0; i < srv->n_slots; i++)
        if (srv->slots[i].current)
            sched_expire(srv->slots[i].current->sched, now);
    /* Keep-alives at half the watchdog period, from the loop itself: a
     * stuck loop stops them and systemd restarts the service. */
    if (srv->watchdog_usec_half > 0 &&
        now - srv->last_watchdog_ns >= (int64_t)srv->watchdog_usec_half * 1000) {
        sd_notify(0, "WATCHDOG=1");
        srv->last_watchdog_ns = now;
    }
    if (!srv->draining)
        return;
    int64_t elapsed_ms = (now - srv->drain_start_ns) / 1000000;
    if (!srv->quiesced && elapsed_ms >= srv->cfg.drain_grace_ms) {
        /* Stop accepting; connections already open are still served. */
        MHD_socket fd = MHD_quiesce_daemon(srv->mhd);
        if (fd != MHD_INVALID_SOCKET) {
            adopt_backlog(srv, fd);
            close(fd);
        }
        srv->quiesced = 1;
        log_msg(&srv->log, LOG_INFO, "listening socket closed; %d request(s) in flight",
                 srv->open_requests);
    }
    if (srv->quiesced && srv->open_requests == 0) {
        stop_everything(srv);
        return;
    }
    if (elapsed_ms >= (int64_t)srv->cfg.drain_grace_ms + srv->cfg.shutdown_timeout_ms) {
        log_msg(&srv->log, LOG_ERROR, "shutdown timeout: %d request(s) still in flight; exiting",
                 srv->open_requests);
        _exit(1);
    }
}

static void stop_everything(server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    log_msg(&srv->log, LOG_INFO, "stopped accepting; all requests answered; shutting down");
    uv_timer_stop(&srv->tick);
    uv_timer_stop(&srv->mhd_timer);
    uv_poll_stop(&srv->mhd_poll);
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    uv_close((uv_handle_t *)&srv->tick, NULL);
    uv_close((uv_handle_t *)&srv->mhd_timer, NULL);
    uv_close((uv_handle_t *)&srv->mhd_poll, NULL);
    uv_close((uv_handle_t *)&srv->wake, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
}

/* ---- start ------------------------------------------------------------------------ */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)c;
    (void)socket_ctx;
    server_t *srv = cls;
    srv->open_connections += code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    metric_set(metrics_series(srv->m_open_conns, NULL), srv->open_connections);
}

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
        flags, (uint16_t)srv->cfg.port, NULL, NULL, api_handle, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)srv->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)srv->cfg.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, api_request_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
        MHD_OPTION_END);
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
    if (uv_poll_init(srv->loop, &srv->mhd_poll, ei->epoll_fd) ||
        uv_poll_start(&srv->mhd_poll, UV_READABLE, on_mhd_poll)) {
        snprintf(msg, msg_size, "uv_poll on libmicrohttpd's epoll descriptor failed");
        return -1;
    }
    srv->mhd_poll.data = srv;
    log_msg(&srv->log, LOG_INFO, "listening on %s port %u", srv->cfg.listen,
             pi ? (unsigned)pi->port : (unsigned)srv->cfg.port);
    return 0;
}

int server_init(server_t *srv, const char *config_path, const config_flag_t *flags,
                int n_flags, char *msg, size_t msg_size)
{
    memset(srv, 0, sizeof *srv);
    if (server_config_load(&srv->cfg, config_path, flags, n_flags, msg, msg_size))
        return -1;
    logger_init(&srv->log, srv->cfg.log_level, srv->cfg.log_format);
    /* Without its repository the daemon could never become ready: say so
     * now rather than wait to be killed by a start-up timeout. */
    struct stat sb;
    if (stat(srv->cfg.models_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(msg, msg_size, "models_dir %s: %s", srv->cfg.models_dir,
                 errno ? strerror(errno) : "not a folder");
        if (stat(srv->cfg.models_dir, &sb) == 0)
            snprintf(msg, msg_size, "models_dir %s: not a folder", srv->cfg.models_dir);
        return -1;
    }
    srv->start_time_s = (int64_t)time(NULL);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
        rnd = (uint32_t)getpid() ^ (uint32_t)srv->start_time_s;
    snprintf(srv->id_prefix, sizeof srv->id_prefix, "%08x", rnd);
    if (pthread_mutex_init(&srv->done_lock, NULL)) {
        snprintf(msg, msg_size, "pthread_mutex_init failed");
        return -1;
    }
    if (!(srv->metrics = metrics_create()) || api_metrics_init(srv)) {
        snprintf(msg, msg_size, "out of memory for metrics");
        return -1;
    }
    if (api_load_tokens(srv, msg, msg_size))
        return -1;
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
    if (uv_async_init(srv->loop, &srv->wake, on_wake)) {
        snprintf(msg, msg_size, "uv_async_init failed");
        return -1;
    }
    srv->wake.data = srv;
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
    if (start_http(srv, msg, msg_size))
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
    scan_repository(srv);
    mhd_pump(srv);
    int rc = uv_run(srv->loop, UV_RUN_DEFAULT);
    return rc == 0 ? 0 : 1;
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
    for (int i = 0; i < srv->n_slots; i++) {
        server_model_unref(srv, srv->slots[i].current);
        free(srv->slots[i].name);
        free(srv->slots[i].last_error);
    }
    free(srv->slots);
    if (srv->loop) {
        /* Close whatever is still open (an init that failed half way). */
        uv_walk(srv->loop, close_handle, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(srv->loop);
        free(srv->loop);
    }
    metrics_free(srv->metrics);
    api_free_tokens(srv);
    free(srv->done);
    pthread_mutex_destroy(&srv->done_lock);
    server_config_free(&srv->cfg);
}
