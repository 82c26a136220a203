/* The daemon's settings: defaults, then conf/imgclassd.json (or -c FILE),
 * then IMGCLASSD_* environment variables, then --flags. Parsing is strict:
 * an unknown key or a value of the wrong type or range is an error that
 * names the key. (A model folder's own settings: classify/model_config.h.) */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "classify/error.h"

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
    int log_requests;          /* one access-log line per request, true */
    char *log_format;          /* "text" or "json" */
    char *log_level;           /* "debug", "info", "warn", "error" */
    int triton_metrics;        /* also export Triton's metric names, false */
    char *auth_tokens_file;    /* bearer tokens, one per line; NULL: no auth */
    int auth_health;           /* health endpoints need a token too, false */
    int auth_metrics;          /* /metrics needs a token too, false */
    char *cors_origins;        /* "*" or comma-separated origins; NULL: no CORS */
} server_config_t;

/* A command-line setting: --port 9000 is {"port", "9000"}. */
typedef struct config_flag {
    const char *name;  /* as typed, without the dashes: "port", "models-dir" */
    const char *value;
} config_flag_t;

/* Defaults, then the file (path may be NULL), then the environment
 * (IMGCLASSD_<KEY>: IMGCLASSD_PORT=9000), then the command line. Returns
 * IC_OK, or IC_ECONFIG or IC_ENOMEM with a message that names the field. */
ic_err_t server_config_load(server_config_t *cfg, const char *path,
                            const config_flag_t *flags, int n_flags, char *msg,
                            size_t msg_size);
void server_config_free(server_config_t *cfg);
/* 1 if the flag name is a setting (accepts "models" for "models-dir"). */
int server_config_is_flag(const char *name);
/* Prints every setting: flag, environment variable, default. */
void server_config_usage(FILE *f);

#endif
