/* A model folder's settings: DIR/config.json (every key optional; see
 * models/README.md), and the stamps that tell a reload whether the
 * folder's files changed. Parsing is strict: an unknown key or a value of
 * the wrong type or range is IC_ECONFIG with a message naming the key. */
#ifndef CLASSIFY_MODEL_CONFIG_H
#define CLASSIFY_MODEL_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "classify/error.h"

/* How the daemon batches a model's requests onto its instances. */
typedef struct batching {
    int max_batch_size;      /* images per run, >= 1 (8) */
    int max_queue_delay_us;  /* wait for a fuller batch at most this (2000) */
    int instances;           /* threads taking batches, one context each (1) */
    int threads;             /* intra-op threads per instance (1) */
    int queue_capacity;      /* images waiting at most; 503 above (64) */
} batching_t;

typedef struct model_config {
    char *model_path;   /* absolute, or relative to the working folder */
    char *labels_path;  /* likewise; NULL when the folder has none */
    char *version;      /* "1" */
    json_t *preprocess; /* the "preprocess" object, or NULL: it is parsed
                           once the model's input size is known */
    batching_t batching;
    int top_k;          /* 5 */
    int timeout_ms;     /* 10000 */
} model_config_t;

/* Reads dir/config.json (absent: every default). model.onnx and
 * labels.txt are the defaults for "model" and "labels" (labels only when
 * the file exists); relative paths are resolved against dir. Returns
 * IC_OK, IC_ECONFIG or IC_ENOMEM, with msg. */
ic_err_t model_config_load(model_config_t *cfg, const char *dir, char *msg,
                           size_t msg_size);
void model_config_free(model_config_t *cfg);

/* Identity of the files a model is made of (config.json, the model, the
 * labels): a reload loads the model again when they differ. */
typedef struct model_stamp {
    time_t mtime[3];
    long mtime_ns[3];
    off_t size[3];
    ino_t ino[3];
} model_stamp_t;

/* Stamps dir/config.json and the files cfg names (cfg NULL: only the
 * config). A missing file stamps as zero, which is a change too. */
void model_stamp_files(const char *dir, const model_config_t *cfg, model_stamp_t *st);
/* The same, parsing dir's config.json to find the files (a broken config
 * stamps as if it named none: the load that follows says why). */
void model_stamp_read(const char *dir, model_stamp_t *st);
int model_stamp_equal(const model_stamp_t *a, const model_stamp_t *b);

#endif
