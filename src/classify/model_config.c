/* A model folder's config.json and file stamps; see model_config.h. */
#include "classify/model_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/settings.h"

#define MDL(f) offsetof(model_config_t, f)
static const setting_t model_keys[] = {
    SETTING("model", SETTING_STRING, MDL(model_path), 0, 0, NULL),
    SETTING("labels", SETTING_STRING, MDL(labels_path), 0, 0, NULL),
    SETTING("version", SETTING_STRING, MDL(version), 0, 0, NULL),
    SETTING("max_batch_size", SETTING_INT, MDL(batching.max_batch_size), 1, 1024, NULL),
    SETTING("max_queue_delay_us", SETTING_INT, MDL(batching.max_queue_delay_us), 0, 10000000,
     NULL),
    SETTING("instances", SETTING_INT, MDL(batching.instances), 1, 64, NULL),
    SETTING("threads", SETTING_INT, MDL(batching.threads), 1, 256, NULL),
    SETTING("queue_capacity", SETTING_INT, MDL(batching.queue_capacity), 1, 1000000, NULL),
    SETTING("top_k", SETTING_INT, MDL(top_k), 1, 100000, NULL),
    SETTING("timeout_ms", SETTING_INT, MDL(timeout_ms), 1, 3600000, NULL),
};
#undef MDL
#define N_MODEL_KEYS (sizeof model_keys / sizeof model_keys[0])

/* *p relative to dir unless absolute; replaces it. */
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

/* Applies config.json's keys; "preprocess" is kept for later. */
static ic_err_t apply_file(model_config_t *cfg, const char *path, char *msg,
                           size_t msg_size)
{
    json_t *root;
    if (settings_read_file(path, 1, &root, msg, msg_size))
        return IC_ECONFIG;
    if (!root)
        return IC_OK;
    char inner[400];
    int rc = settings_apply_json(cfg, model_keys, N_MODEL_KEYS, root, "preprocess",
                                 inner, sizeof inner);
    json_t *pre = json_object_get(root, "preprocess");
    if (!rc && pre && !json_is_object(pre)) {
        snprintf(inner, sizeof inner, "\"preprocess\" must be an object");
        rc = -1;
    }
    if (!rc && pre)
        cfg->preprocess = json_incref(pre);
    json_decref(root);
    if (rc) {
        snprintf(msg, msg_size, "%s: %s", path, inner);
        return IC_ECONFIG;
    }
    return IC_OK;
}

static ic_err_t apply_defaults(model_config_t *cfg, const char *dir, char *msg,
                               size_t msg_size)
{
    if (!cfg->model_path && !(cfg->model_path = strdup("model.onnx")))
        goto nomem;
    if (!cfg->version && !(cfg->version = strdup("1")))
        goto nomem;
    if (!cfg->labels_path) {
        /* labels.txt when present; the model still serves without. */
        char lp[4200];
        snprintf(lp, sizeof lp, "%s/labels.txt", dir);
        FILE *f = fopen(lp, "r");
        if (f) {
            fclose(f);
            if (!(cfg->labels_path = strdup("labels.txt")))
                goto nomem;
        }
    }
    if (resolve_path(&cfg->model_path, dir, msg, msg_size) ||
        resolve_path(&cfg->labels_path, dir, msg, msg_size))
        return IC_ENOMEM;
    return IC_OK;
nomem:
    snprintf(msg, msg_size, "out of memory");
    return IC_ENOMEM;
}

ic_err_t model_config_load(model_config_t *cfg, const char *dir, char *msg,
                           size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batching = (batching_t){
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
        return IC_ECONFIG;
    }
    ic_err_t rc = apply_file(cfg, path, msg, msg_size);
    if (rc == IC_OK)
        rc = apply_defaults(cfg, dir, msg, msg_size);
    if (rc != IC_OK)
        model_config_free(cfg);
    return rc;
}

void model_config_free(model_config_t *cfg)
{
    settings_free_strings(cfg, model_keys, N_MODEL_KEYS);
    json_decref(cfg->preprocess);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- stamps ----------------------------------------------------------------------- */

static void stat_into(const char *path, model_stamp_t *st, int i)
{
    struct stat sb;
    if (path && stat(path, &sb) == 0) {
        st->mtime[i] = sb.st_mtim.tv_sec;
        st->mtime_ns[i] = sb.st_mtim.tv_nsec;
        st->size[i] = sb.st_size;
        st->ino[i] = sb.st_ino;
    }
}

void model_stamp_files(const char *dir, const model_config_t *cfg, model_stamp_t *st)
{
    memset(st, 0, sizeof *st);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    stat_into(path, st, 0);
    if (cfg) {
        stat_into(cfg->model_path, st, 1);
        stat_into(cfg->labels_path, st, 2);
    }
}

void model_stamp_read(const char *dir, model_stamp_t *st)
{
    model_config_t cfg;
    char msg[256];
    int ok = model_config_load(&cfg, dir, msg, sizeof msg) == IC_OK;
    model_stamp_files(dir, ok ? &cfg : NULL, st);
    if (ok)
        model_config_free(&cfg);
}

int model_stamp_equal(const model_stamp_t *a, const model_stamp_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}
