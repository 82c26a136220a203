/* A served model: one folder of the model repository, loaded.
 *
 * Holds the compiled model (one copy of the weights), its labels, its
 * preprocessing and the scheduler whose instances run it. Loading runs on
 * a libuv worker thread (it may take seconds); everything after that is
 * owned by the event loop, which counts references: a model swapped out
 * by a reload is freed once the last request that uses it is answered. */
#ifndef SERVER_MODEL_H
#define SERVER_MODEL_H

#include <sys/types.h>
#include <time.h>

#include "imgclass/nn.h"
#include "server/config.h"
#include "server/scheduler.h"

/* Files whose change makes a reload load the model again. */
typedef struct model_stamp {
    time_t mtime[3];
    long mtime_ns[3];
    off_t size[3];
    ino_t ino[3];
} model_stamp_t;

typedef struct served_model {
    char *name;
    char *dir;
    model_config_t cfg;
    model_stamp_t stamp;
    nn_model_t *nn;
    pre_config_t pre;
    char **labels;       /* n_classes entries (generated "class_<i>" if absent) */
    int n_classes;
    int has_softmax;     /* the graph's output already is probabilities */
    int channels, height, width;
    img_limits_t limits; /* decoding limits, preprocessing's hint applied */
    sched_t *sched;      /* NULL when only opened (served_model_open) */
    int refs;            /* event loop only */
    void *owner;         /* the server; scheduler callbacks get the model */
    double load_seconds;
} served_model_t;

/* Reads stamps of dir's config.json and of the model and labels files the
 * config names (missing files stamp as zero, which is a change too). */
void model_stamp_read(const char *dir, model_stamp_t *st);
int model_stamp_equal(const model_stamp_t *a, const model_stamp_t *b);

/* Opens model folder dir: config, model (shapes checked), labels,
 * preprocessing and decoding limits: everything but the scheduler. The
 * offline tool (imgclass classify) uses this, so that it decodes,
 * preprocesses and scores exactly as the daemon does. name may be NULL
 * (then the folder's path). */
int served_model_open(served_model_t **out, const char *dir, const char *name,
                      const img_limits_t *limits, char *msg, size_t msg_size);

/* One class's score. */
typedef struct model_score {
    float score;
    int index;
} model_score_t;

/* Scores of one image's output (n_classes floats) into s, sorted by score
 * descending then index: softmax of the logits, or the output itself when
 * the graph already ends in Softmax (never applied twice). */
void served_model_rank(const served_model_t *m, const float *out, model_score_t *s);

/* Loads models_dir/name: config, labels, model, scheduler, warm-up run.
 * The scheduler's callbacks receive the served model as their arg; owner
 * is stored in it for them. */
int served_model_load(served_model_t **out, const char *models_dir,
                      const char *name, const img_limits_t *limits,
                      sched_done_fn done, sched_batch_fn batch, void *owner,
                      char *msg, size_t msg_size);

/* Stops the scheduler (running what is queued) and frees everything. */
void served_model_free(served_model_t *m);

#endif
