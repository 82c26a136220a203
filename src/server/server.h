/* The daemon: one libuv loop driving libmicrohttpd, the model repository,
 * metrics and the process life cycle (ready, reload, drain).
 *
 * server.c owns the loop, MHD's sockets and timers, signals, the model
 * repository and shutdown; api.c turns HTTP requests into responses and
 * jobs; body.c reads request bodies. They share the structures below; no
 * other module sees them. Everything here belongs to the loop thread
 * except `done`, the completion list the scheduler threads push to. */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "server/config.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/model.h"

typedef struct server server_t;

/* A slot of the model repository: the model serving now (or NULL while
 * the first load runs or after it failed). */
typedef struct model_slot {
    char *name;
    served_model_t *current;
    char *last_error;      /* last load failure, NULL if none */
    int loading;           /* a load of this slot is in flight */
    int present;           /* found by the latest repository scan */
    int failures;
} model_slot_t;

/* One image of a request. */
typedef struct image_part {
    const uint8_t *data;   /* into the request body or an owned buffer */
    size_t size;
    uint8_t *owned;        /* freed with the request */
} image_part_t;

typedef enum request_state {
    REQ_READING,   /* body arriving */
    REQ_WAITING,   /* jobs queued, connection suspended */
    REQ_ANSWERED,  /* response built, to be queued */
} request_state_t;

typedef struct request {
    server_t *srv;
    struct MHD_Connection *conn;
    char id[80];
    char method[16];
    char *path;
    char traceparent[64];
    size_t bytes_in, bytes_out;
    int64_t start_ns;
    request_state_t state;

    /* Body. */
    uint8_t *body;
    size_t body_len, body_cap;
    int body_too_large;
    struct MHD_PostProcessor *post;
    int post_failed;
    image_part_t *parts;
    int n_parts, cap_parts;
    char form_top_k[40];   /* top_k given as a form field */
    int has_form_top_k;

    /* Work. */
    char model_name[160];  /* from the URL */
    char version[64];      /* KServe: /versions/{v} in the URL, or empty */
    served_model_t *model; /* referenced while jobs are out */
    int top_k;             /* 0: the model's default; -1: out of range */
    int torchserve;        /* answer in TorchServe's shape */
    int inference;         /* a classify or TorchServe request */
    sched_job_t *jobs;
    float *outputs;
    int n_jobs, n_done;
    uv_poll_t *watch;      /* client disconnect while waiting */

    /* Answer. */
    int status;
    char *resp;            /* body, malloc'ed (JSON text unless content_type) */
    size_t resp_len;
    const char *content_type; /* NULL: application/json */
    char extra_header[48], extra_value[32]; /* e.g. Inference-Header-Content-Length */
    int kserve;            /* KServe v2 request: its error shape and answer */
    void *kserve_state;    /* kserve.c's parsed request, freed with it */
    const char *retry_after;
    const char *cors_origin; /* Access-Control-Allow-Origin to send */
    int preflight;
    int www_authenticate;
    const char *allow;
    const char *model_label; /* for metrics and logs */
    char *model_label_owned; /* model_label's storage */
    const char *route;       /* route name for metrics */
} request_t;

struct server {
    server_config_t cfg;
    logger_t log;
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t mhd_poll;
    uv_timer_t mhd_timer;
    uv_timer_t tick;        /* deadlines, drain */
    uv_async_t wake;        /* completions from the schedulers */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_os_sock_t listen_fd;

    /* Completed jobs, pushed by scheduler threads. */
    pthread_mutex_t done_lock;
    sched_job_t **done;
    int n_done, cap_done;

    model_slot_t *slots;
    int n_slots, cap_slots;
    int loads_in_flight;
    int reload_pending;
    int reload_notify; /* READY=1 owed once the reload's loads finish */
    int initial_load_done;

    /* Life cycle. */
    int draining;           /* SIGTERM seen: not ready */
    int64_t drain_start_ns;
    int quiesced;           /* listening socket closed */
    int stopping;           /* loop is being closed */
    int open_requests;      /* suspended or in flight */
    uint64_t request_counter;
    char id_prefix[16];
    int64_t start_time_s;
    int watchdog_usec_half;
    int64_t last_watchdog_ns;

    /* Metrics. */
    metrics_t *metrics;
    metric_family_t *m_http_requests, *m_http_duration, *m_images, *m_queue_s,
        *m_infer_s, *m_batch, *m_queue_depth, *m_queue_capacity, *m_model_ready, *m_load_fail,
        *m_open_conns, *m_process_cpu, *m_process_rss, *m_process_start,
        *m_process_fds;
    metric_family_t *m_requests, *m_request_s, *m_prepare_s, *m_in_flight,
        *m_decoded, *m_build_info;
    metric_family_t *t_success, *t_failure, *t_count, *t_exec, *t_pending,
        *t_request_us, *t_queue_us, *t_compute_us;
    int open_connections;

    /* Bearer tokens (auth_tokens_file), NULL when authentication is off. */
    char **tokens;
    int n_tokens;
};

#define IMGCLASSD_VERSION "0.2.0"


/* server.c */
int server_init(server_t *srv, const char *config_path, const config_flag_t *flags,
                int n_flags, char *msg, size_t msg_size);
int server_run(server_t *srv);
void server_free(server_t *srv);
served_model_t *server_find_model(server_t *srv, const char *name, model_slot_t **slot);
int server_ready(const server_t *srv, const char **why);
void server_model_unref(server_t *srv, served_model_t *m);
void server_resume(server_t *srv, request_t *r);
void server_watch_disconnect(server_t *srv, request_t *r);

/* api.c */
enum MHD_Result api_handle(void *cls, struct MHD_Connection *conn,
                           const char *url, const char *method,
                           const char *version, const char *upload_data,
                           size_t *upload_data_size, void **con_cls);
void api_request_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls, enum MHD_RequestTerminationCode toe);
void api_job_finished(server_t *srv, sched_job_t *job);
void api_cancel(server_t *srv, request_t *r);
int api_metrics_init(server_t *srv);
/* Reads cfg.auth_tokens_file into srv->tokens. Returns 0 or -1 with msg. */
int api_load_tokens(server_t *srv, char *msg, size_t msg_size);
void api_free_tokens(server_t *srv);

/* Answers (api.c). The body is taken over. */
void api_answer_json(request_t *r, int status, json_t *body);
void api_answer_raw(request_t *r, int status, char *body, size_t len,
                    const char *content_type);
void api_answer_error(request_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Queues n jobs on m (images from r->parts, or preprocessed tensors of
 * C*H*W floats each) and suspends the connection, or answers 503. */
void api_submit(request_t *r, served_model_t *m, int n, const float *tensors);

/* kserve.c: KServe v2 / Open Inference Protocol. */
void kserve_server_metadata(request_t *r);
void kserve_model_metadata(request_t *r, const model_slot_t *slot);
/* POST /v2/models/{name}/infer, with the whole body read. */
void kserve_infer(request_t *r, served_model_t *m);
/* Builds the answer once every job is back. */
void kserve_answer(request_t *r);
void kserve_free(request_t *r);

/* body.c */
image_part_t *body_new_part(request_t *r); /* appended to r->parts; NULL: no memory */
int body_append(request_t *r, const char *data, size_t size);
int body_start_multipart(request_t *r);
int body_feed_multipart(request_t *r, const char *data, size_t size);
/* Splits the body into images by its Content-Type. Returns 0, or an HTTP
 * status with a message in msg. */
int body_images(request_t *r, const char *content_type, char *msg, size_t msg_size);
void body_free(request_t *r);


#endif
