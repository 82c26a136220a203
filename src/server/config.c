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
} key_def_t;

#define SRV(f) offsetof(server_config_t, f)
static const key_def_t server_keys[] = {
    {"listen", KEY_STRING, SRV(listen), 0, 0},
    {"port", KEY_INT, SRV(port), 0, 65535},
    {"models_dir", KEY_STRING, SRV(models_dir), 0, 0},
    {"max_connections", KEY_INT, SRV(max_connections), 1, 1000000},
    {"connection_timeout_s", KEY_INT, SRV(connection_timeout_s), 1, 86400},
    {"max_body_bytes", KEY_SIZE, SRV(max_body_bytes), 1024, 1LL << 32},
    {"max_image_pixels", KEY_SIZE, SRV(max_image_pixels), 1, 1LL << 32},
    {"min_image_side", KEY_INT, SRV(min_image_side), 1, 65535},
    {"max_images_per_request", KEY_INT, SRV(max_images_per_request), 1, 4096},
    {"drain_grace_ms", KEY_INT, SRV(drain_grace_ms), 0, 3600000},
    {"shutdown_timeout_ms", KEY_INT, SRV(shutdown_timeout_ms), 0, 3600000},
    {"log_requests", KEY_BOOL, SRV(log_requests), 0, 1},
    {"triton_metrics", KEY_BOOL, SRV(triton_metrics), 0, 1},
};
#undef SRV

#define MDL(f) offsetof(model_config_t, f)
static const key_def_t model_keys[] = {
    {"model", KEY_STRING, MDL(model_path), 0, 0},
    {"labels", KEY_STRING, MDL(labels_path), 0, 0},
    {"version", KEY_STRING, MDL(version), 0, 0},
    {"max_batch_size", KEY_INT, MDL(sched.max_batch_size), 1, 1024},
    {"max_queue_delay_us", KEY_INT, MDL(sched.max_queue_delay_us), 0, 10000000},
    {"instances", KEY_INT, MDL(sched.instances), 1, 64},
    {"threads", KEY_INT, MDL(sched.threads), 1, 256},
    {"queue_capacity", KEY_INT, MDL(sched.queue_capacity), 1, 1000000},
    {"top_k", KEY_INT, MDL(top_k), 1, 100000},
    {"timeout_ms", KEY_INT, MDL(timeout_ms), 1, 3600000},
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

static int apply_env(server_config_t *cfg, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < N_KEYS(server_keys); i++) {
        const key_def_t *k = &server_keys[i];
        char var[64] = "IMGCLASSD_";
        size_t at = strlen(var);
        for (const char *c = k->name; *c && at + 1 < sizeof var; c++)
            var[at++] = (char)toupper((unsigned char)*c);
        var[at] = '\0';
        const char *v = getenv(var);
        if (!v)
            continue;
        if (k->type == KEY_STRING) {
            if (!*v) {
                snprintf(msg, msg_size, "%s must not be empty", var);
                return -1;
            }
            if (set_string(cfg, k, v, msg, msg_size))
                return -1;
            continue;
        }
        long long n;
        char *end;
        errno = 0;
        if (k->type == KEY_BOOL && (!strcmp(v, "true") || !strcmp(v, "false"))) {
            n = !strcmp(v, "true");
        } else {
            n = strtoll(v, &end, 10);
            if (errno || end == v || *end) {
                snprintf(msg, msg_size, "%s=\"%s\" is not %s", var, v,
                         k->type == KEY_BOOL ? "true or false" : "an integer");
                return -1;
            }
        }
        if (set_int(cfg, k, n, msg, msg_size)) {
            char inner[200];
            snprintf(inner, sizeof inner, "%s", msg);
            snprintf(msg, msg_size, "%s: %s", var, inner);
            return -1;
        }
    }
    return 0;
}

int server_config_load(server_config_t *cfg, const char *path, char *msg,
                       size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = strdup("0.0.0.0");
    cfg->models_dir = strdup("models");
    if (!cfg->listen || !cfg->models_dir) {
        snprintf(msg, msg_size, "out of memory");
        server_config_free(cfg);
        return -1;
    }
    cfg->port = 8080;
    cfg->max_connections = 1024;
    cfg->connection_timeout_s = 75;
    cfg->max_body_bytes = 32u << 20;
    cfg->max_image_pixels = 50000000;
    cfg->min_image_side = 8;
    cfg->max_images_per_request = 64;
    cfg->drain_grace_ms = 5000;
    cfg->shutdown_timeout_ms = 30000;
    cfg->log_requests = 1;
    if (path) {
        json_t *root;
        char inner[400];
        if (read_json_object(path, 0, &root, msg, msg_size)) {
            server_config_free(cfg);
            return -1;
        }
        int rc = apply_object(cfg, server_keys, N_KEYS(server_keys), root, NULL,
                              inner, sizeof inner);
        json_decref(root);
        if (rc) {
            snprintf(msg, msg_size, "%s: %s", path, inner);
            server_config_free(cfg);
            return -1;
        }
    }
    if (apply_env(cfg, msg, msg_size)) {
        server_config_free(cfg);
        return -1;
    }
    return 0;
}

void server_config_free(server_config_t *cfg)
{
    free(cfg->listen);
    free(cfg->models_dir);
    cfg->listen = cfg->models_dir = NULL;
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
    free(cfg->model_path);
    free(cfg->labels_path);
    free(cfg->version);
    json_decref(cfg->preprocess);
    memset(cfg, 0, sizeof *cfg);
}
