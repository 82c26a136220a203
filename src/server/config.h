/* Configuration: the server's (conf/imgclassd.json, overridable by
 * IMGCLASSD_* environment variables) and each model's
 * (models/<name>/config.json). Parsing is strict: an unknown key or a
 * value of the wrong type or range is an error that names the key. */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stddef.h>

#include "server/preprocess.h"
#include "server/scheduler.h"

typedef struct server_config {
    char *listen;              /* address to bind, "0.0.0.0" */
    int port;                  /* 8080 */
    char *models_dir;          /* "models" */
    int max_connections;       /* 1024 */
    int connection_timeout_s;  /* idle keep-alive timeout, 75 */
    size_t max_body_bytes;     /* 32 MiB */
    size_t max_image_pixels;   /* 50 megapixels */
    int min_image_side;        /* 8 */
    int max_images_per_request;/* 64 */
    int drain_grace_ms;        /* not ready but serving after SIGTERM, 5000 */
    int shutdown_timeout_ms;   /* then at most this long to finish, 30000 */
    int log_requests;          /* one line per request on stderr, true */
    int triton_metrics;        /* also export Triton's metric names, false */
} server_config_t;

/* Defaults, then the file (path may be NULL), then the environment:
 * IMGCLASSD_LISTEN, IMGCLASSD_PORT, IMGCLASSD_MODELS_DIR, ... (the key in
 * upper case). Returns 0, or -1 with msg. */
int server_config_load(server_config_t *cfg, const char *path, char *msg,
                       size_t msg_size);
void server_config_free(server_config_t *cfg);

typedef struct model_config {
    char *model_path;   /* absolute or relative to the folder, resolved */
    char *labels_path;  /* likewise; NULL when absent */
    char *version;      /* "1" */
    json_t *preprocess; /* the "preprocess" object (parsed later, when the
                           model's input size is known), or NULL */
    sched_config_t sched;
    int top_k;          /* 5 */
    int timeout_ms;     /* 10000 */
} model_config_t;

/* Reads dir/config.json (absent: every default). */
int model_config_load(model_config_t *cfg, const char *dir, char *msg,
                      size_t msg_size);
void model_config_free(model_config_t *cfg);

#endif
