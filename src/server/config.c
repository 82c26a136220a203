/* Server and model configuration; see config.h.
 *
 * Both parsers walk a table of keys so that defaults, types, ranges, the
 * unknown-key check and the environment overrides come from one place. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum key_type { KEY_INT, KEY_SIZE, KEY_BOOL, KEY_STRING } key_type_t;

typedef struct key_def {
    const char *name;
    key_type_t type;
    size_t offset;
    long long min, max;
    const char *help; /* server keys: one line for --help */
} key_def_t;

#define SRV(f) offsetof(server_config_t, f)
static const key_def_t server_keys[] = {
    {"listen", KEY_STRING, SRV(listen), 0, 0, "address to bind (IPv4 or IPv6)"},
    {"port", KEY_INT, SRV(port), 0, 65535, "TCP port (0: any free port)"},
    {"models_dir", KEY_STRING, SRV(models_dir), 0, 0, "model repository folder"},
    {"max_connections", KEY_INT, SRV(max_connections), 1, 1000000,
     "open connections at most"},
    {"connection_timeout_s", KEY_INT, SRV(connection_timeout_s), 1, 86400,
     "idle keep-alive timeout (longer than the balancer's)"},
    {"max_body_bytes", KEY_SIZE, SRV(max_body_bytes), 1024, 1LL << 32,
     "largest request body (413 above)"},
    {"max_image_pixels", KEY_SIZE, SRV(max_image_pixels), 1, 1LL << 32,
     "largest image by its header (413 above)"},
    {"min_image_side", KEY_INT, SRV(min_image_side), 1, 65535,
     "smallest image width or height (400 below)"},
    {"max_images_per_request", KEY_INT, SRV(max_images_per_request), 1, 4096,
     "images in one request at most"},
    {"drain_grace_ms", KEY_INT, SRV(drain_grace_ms), 0, 3600000,
     "after SIGTERM: not ready but serving for this long"},
    {"shutdown_timeout_ms", KEY_INT, SRV(shutdown_timeout_ms), 0, 3600000,
     "then at most this long to answer what was accepted"},
    {"log_requests", KEY_BOOL, SRV(log_requests), 0, 1, "one access-log line per request"},
    {"log_format", KEY_STRING, SRV(log_format), 0, 0, "text or json (JSON lines)"},
    {"log_level", KEY_STRING, SRV(log_level), 0, 0, "debug, info, warn or error"},
    {"triton_metrics", KEY_BOOL, SRV(triton_metrics), 0, 1,
     "also export Triton's metric names (nv_inference_*)"},
    {"auth_tokens_file", KEY_STRING, SRV(auth_tokens_file), 0, 0,
     "bearer tokens, one per line (unset: no authentication)"},
    {"auth_health", KEY_BOOL, SRV(auth_health), 0, 1,
     "health endpoints need a token too"},
    {"auth_metrics", KEY_BOOL, SRV(auth_metrics), 0, 1, "/metrics needs a token too"},
    {"cors_origins", KEY_STRING, SRV(cors_origins), 0, 0,
     "\"*\" or comma-separated origins allowed by CORS (unset: none)"},
};
#undef SRV

#define MDL(f) offsetof(model_config_t, f)
static const key_def_t model_keys[] = {
    {"model", KEY_STRING, MDL(model_path), 0, 0, NULL},
    {"labels", KEY_STRING, MDL(labels_path), 0, 0, NULL},
    {"version", KEY_STRING, MDL(version), 0, 0, NULL},
    {"max_batch_size", KEY_INT, MDL(sched.max_batch_size), 1, 1024, NULL},
    {"max_queue_delay_us", KEY_INT, MDL(sched.max_queue_delay_us), 0, 10000000, NULL},
    {"instances", KEY_INT, MDL(sched.instances), 1, 64, NULL},
    {"threads", KEY_INT, MDL(sched.threads), 1, 256, NULL},
    {"queue_capacity", KEY_INT, MDL(sched.queue_capacity), 1, 1000000, NULL},
    {"top_k", KEY_INT, MDL(top_k), 1, 100000, NULL},
    {"timeout_ms", KEY_INT, MDL(timeout_ms), 1, 3600000, NULL},
};
#undef MDL

#define N_KEYS(t) (sizeof(t) / sizeof((t)[0]))

/* Stores v into the field. Strings are copied (the old one freed). */
static int set_int(void *base, const key_def_t *k, long long v, char *msg,
                   size_t msg_size)
{
    if (v < k->min || v > k->max) {
        snprintf(msg, msg_size, "\"%s\" must be %lld..%lld, got %lld", k->name,
                 k->min, k->max, v);
        return -1;
    }
    char *p = (char *)base + k->offset;
    if (k->type == KEY_SIZE)
        *(size_t *)p = (size_t)v;
    else
        *(int *)p = (int)v;
    return 0;
}

static int set_string(void *base, const key_def_t *k, const char *v, char *msg,
                      size_t msg_size)
{
    char **p = (char **)((char *)base + k->offset);
    char *copy = strdup(v);
    if (!copy) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    free(*p);
    *p = copy;
    return 0;
}

static int set_from_json(void *base, const key_def_t *k, const json_t *v,
                         char *msg, size_t msg_size)
{
    switch (k->type) {
    case KEY_INT:
    case KEY_SIZE:
        if (!json_is_integer(v))
            break;
        return set_int(base, k, json_integer_value(v), msg, msg_size);
    case KEY_BOOL:
        if (!json_is_boolean(v))
            break;
        return set_int(base, k, json_is_true(v), msg, msg_size);
    case KEY_STRING:
        if (!json_is_string(v) || json_string_length(v) == 0)
            break;
        return set_string(base, k, json_string_value(v), msg, msg_size);
    }
    static const char *const names[] = {"an integer", "an integer", "true or false",
                                        "a non-empty string"};
    snprintf(msg, msg_size, "\"%s\" must be %s", k->name, names[k->type]);
    return -1;
}

/* Applies every key of obj; unknown keys are errors unless skip matches. */
static int apply_object(void *base, const key_def_t *keys, size_t n,
                        const json_t *obj, const char *skip, char *msg,
                        size_t msg_size)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        if (skip && strcmp(name, skip) == 0)
            continue;
        size_t i = 0;
        while (i < n && strcmp(keys[i].name, name) != 0)
            i++;
        if (i == n) {
            snprintf(msg, msg_size, "unknown key \"%s\"", name);
            return -1;
        }
        if (set_from_json(base, &keys[i], v, msg, msg_size))
            return -1;
    }
    return 0;
}

/* Reads a JSON object file; a missing file is fine when optional. */
static int read_json_object(const char *path, int optional, json_t **out,
                            char *msg, size_t msg_size)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT)
            return 0;
        snprintf(msg, msg_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        snprintf(msg, msg_size, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(msg, msg_size, "%s: the top level must be a JSON object", path);
        return -1;
    }
    *out = root;
    return 0;
}

/* ---- server ----------------------------------------------------------------------- */

/* Sets a key from text (environment or command line); `what` names the
 * source in messages ("IMGCLASSD_PORT", "--port"). */
static int set_from_text(server_config_t *cfg, const key_def_t *k, const char *v,
                         const char *what, char *msg, size_t msg_size)
{
    if (k->type == KEY_STRING) {
        if (!*v) {
            snprintf(msg, msg_size, "%s must not be empty", what);
            return -1;
        }
        return set_string(cfg, k, v, msg, msg_size);
    }
    long long n;
    char *end;
    errno = 0;
    if (k->type == KEY_BOOL && (!strcmp(v, "true") || !strcmp(v, "false"))) {
        n = !strcmp(v, "true");
    } else {
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || k->type == KEY_BOOL) {
            snprintf(msg, msg_size, "%s=\"%s\" is not %s", what, v,
                     k->type == KEY_BOOL ? "true or false" : "an integer");
            return -1;
        }
    }
    if (set_int(cfg, k, n, msg, msg_size)) {
        char inner[200];
        snprintf(inner, sizeof inner, "%s", msg);
        snprintf(msg, msg_size, "%s: %s", what, inner);
        return -1;
    }
    return 0;
}

static void env_name(const key_def_t *k, char *var, size_t size)
{
    size_t at = (size_t)snprintf(var, size, "IMGCLASSD_");
    for (const char *c = k->name; *c && at + 1 < size; c++)
        var[at++] = (char)toupper((unsigned char)*c);
    var[at] = '\0';
}

static void flag_name(const key_def_t *k, char *flag, size_t size)
{
    size_t at = 0;
    for (const char *c = k->name; *c && at + 1 < size; c++)
        flag[at++] = *c == '_' ? '-' : *c;
    flag[at] = '\0';
}

static int apply_env(server_config_t *cfg, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < N_KEYS(server_keys); i++) {
        char var[64];
        env_name(&server_keys[i], var, sizeof var);
        const char *v = getenv(var);
        if (v && set_from_text(cfg, &server_keys[i], v, var, msg, msg_size))
            return -1;
    }
    return 0;
}

static const key_def_t *find_flag(const char *name)
{
    if (!strcmp(name, "models"))
        name = "models-dir";
    for (size_t i = 0; i < N_KEYS(server_keys); i++) {
        char flag[64];
        flag_name(&server_keys[i], flag, sizeof flag);
        if (!strcmp(flag, name))
            return &server_keys[i];
    }
    return NULL;
}

int server_config_is_flag(const char *name)
{
    return find_flag(name) != NULL;
}

void server_config_usage(FILE *f)
{
    fprintf(f, "settings (config file key / --flag VALUE / environment variable):\n");
    for (size_t i = 0; i < N_KEYS(server_keys); i++) {
        char flag[64], var[64];
        flag_name(&server_keys[i], flag, sizeof flag);
        env_name(&server_keys[i], var, sizeof var);
        fprintf(f, "  --%-24s %s\n  %-26s %s\n", flag, server_keys[i].help, "", var);
    }
}

/* Values must make sense together, whatever their source. */
static int check_server(const server_config_t *cfg, char *msg, size_t msg_size)
{
    if (strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json")) {
        snprintf(msg, msg_size, "\"log_format\" must be \"text\" or \"json\"");
        return -1;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(cfg->log_level, levels[i]))
            return 0;
    snprintf(msg, msg_size, "\"log_level\" must be debug, info, warn or error");
    return -1;
}

int server_config_load(server_config_t *cfg, const char *path,
                       const config_flag_t *flags, int n_flags, char *msg,
                       size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = strdup("0.0.0.0");
    cfg->models_dir = strdup("models");
    cfg->log_format = strdup("text");
    cfg->log_level = strdup("info");
    if (!cfg->listen || !cfg->models_dir || !cfg->log_format || !cfg->log_level) {
        snprintf(msg, msg_size, "out of memory");
        server_config_free(cfg);
        return -1;
    }
    cfg->port = 8080;
    cfg->max_connections = 1024;
    cfg->connection_timeout_s = 75;
    cfg->max_body_bytes = 32u << 20;
    cfg->max_image_pixels = SERVER_DEFAULT_MAX_IMAGE_PIXELS;
    cfg->min_image_side = SERVER_DEFAULT_MIN_IMAGE_SIDE;
    cfg->max_images_per_request = 64;
    cfg->drain_grace_ms = 5000;
    cfg->shutdown_timeout_ms = 30000;
    cfg->log_requests = 1;
    int rc = 0;
    if (path) {
        json_t *root;
        char inner[400];
        rc = read_json_object(path, 0, &root, msg, msg_size);
        if (!rc) {
            rc = apply_object(cfg, server_keys, N_KEYS(server_keys), root, NULL, inner,
                              sizeof inner);
            json_decref(root);
            if (rc)
                snprintf(msg, msg_size, "%s: %s", path, inner);
        }
    }
    if (!rc)
        rc = apply_env(cfg, msg, msg_size);
    for (int i = 0; !rc && i < n_flags; i++) {
        const key_def_t *k = find_flag(flags[i].name);
        char what[80];
        snprintf(what, sizeof what, "--%s", flags[i].name);
        if (!k) {
            snprintf(msg, msg_size, "unknown option %s", what);
            rc = -1;
        } else {
            rc = set_from_text(cfg, k, flags[i].value, what, msg, msg_size);
        }
    }
    if (!rc)
        rc = check_server(cfg, msg, msg_size);
    if (rc)
        server_config_free(cfg);
    return rc;
}

/* Frees every string field the key table names, so that a new string
 * setting cannot leak. */
static void free_strings(void *base, const key_def_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].type == KEY_STRING)
            free(*(char **)((char *)base + keys[i].offset));
}

void server_config_free(server_config_t *cfg)
{
    free_strings(cfg, server_keys, N_KEYS(server_keys));
    memset(cfg, 0, sizeof *cfg);
}

/* ---- model ------------------------------------------------------------------------ */

/* path relative to dir unless absolute; replaces *p. */
static int resolve_path(char **p, const char *dir, char *msg, size_t msg_size)
{
    if (!*p || (*p)[0] == '/')
        return 0;
    size_t n = strlen(dir) + strlen(*p) + 2;
    char *full = malloc(n);
    if (!full) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    snprintf(full, n, "%s/%s", dir, *p);
    free(*p);
    *p = full;
    return 0;
}

int model_config_load(model_config_t *cfg, const char *dir, char *msg,
                      size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sched = (sched_config_t){
        .max_batch_size = 8,
        .max_queue_delay_us = 2000,
        .instances = 1,
        .threads = 1,
        .queue_capacity = 64,
    };
    cfg->top_k = 5;
    cfg->timeout_ms = 10000;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path) {
        snprintf(msg, msg_size, "model folder path too long");
        return -1;
    }
    json_t *root;
    if (read_json_object(path, 1, &root, msg, msg_size))
        return -1;
    char inner[400];
    int rc = 0;
    if (root) {
        rc = apply_object(cfg, model_keys, N_KEYS(model_keys), root, "preprocess",
                          inner, sizeof inner);
        json_t *pre = json_object_get(root, "preprocess");
        if (!rc && pre && !json_is_object(pre)) {
            snprintf(inner, sizeof inner, "\"preprocess\" must be an object");
            rc = -1;
        }
        if (!rc && pre)
            cfg->preprocess = json_incref(pre);
        json_decref(root);
        if (rc)
            snprintf(msg, msg_size, "%s: %s", path, inner);
    }
    if (!rc && !cfg->model_path && !(cfg->model_path = strdup("model.onnx")))
        rc = -1, snprintf(msg, msg_size, "out of memory");
    if (!rc && !cfg->version && !(cfg->version = strdup("1")))
        rc = -1, snprintf(msg, msg_size, "out of memory");
    if (!rc && !cfg->labels_path) {
        /* labels.txt when present; the model still serves without. */
        char lp[4200];
        snprintf(lp, sizeof lp, "%s/labels.txt", dir);
        FILE *f = fopen(lp, "r");
        if (f) {
            fclose(f);
            if (!(cfg->labels_path = strdup("labels.txt")))
                rc = -1, snprintf(msg, msg_size, "out of memory");
        }
    }
    if (!rc)
        rc = resolve_path(&cfg->model_path, dir, msg, msg_size);
    if (!rc)
        rc = resolve_path(&cfg->labels_path, dir, msg, msg_size);
    if (rc)
        model_config_free(cfg);
    return rc;
}

void model_config_free(model_config_t *cfg)
{
    free_strings(cfg, model_keys, N_KEYS(model_keys));
    json_decref(cfg->preprocess);
    memset(cfg, 0, sizeof *cfg);
}
