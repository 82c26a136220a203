/* The model repository: models_dir holds one folder per model; each gets
 * a slot holding the model that serves now.
 *
 * DESIGN: loading a model (parse, optimise, start the instances, warm up)
 * takes seconds, so it runs on libuv's worker threads; everything else,
 * the slots and the reference counts included, belongs to the loop
 * thread. A scan loads new and changed folders beside what serves and
 * swaps each in when it is ready; a failed load leaves the previous
 * version serving. A model swapped out or removed is freed when the last
 * request that holds a reference lets go of it. */
#ifndef SERVE_REPOSITORY_H
#define SERVE_REPOSITORY_H

#include <stdint.h>
#include <uv.h>

#include "classify/classifier.h"
#include "classify/error.h"
#include "obs/log.h"
#include "obs/telemetry.h"
#include "serve/scheduler.h"

typedef struct repository repository_t;

/* A loaded model serving requests: the classifier and its scheduler. */
typedef struct served_model {
    classifier_t *c;
    sched_t *sched;
    repository_t *repo;
    int refs;            /* loop thread only: the slot's and each request's */
    double load_seconds; /* open, instances and warm-up */
} served_model_t;

typedef struct model_slot {
    char *name;
    served_model_t *current; /* NULL while the first load runs, or after it failed */
    char *last_error;        /* the last load's failure, NULL if none */
    int loading;             /* a load is in flight */
    int present;             /* found by the latest scan */
} model_slot_t;

typedef struct repo_config {
    const char *models_dir;  /* borrowed for the repository's life */
    img_limits_t limits;     /* decoding limits of every model */
    /* Every scheduler reports its jobs here (serve/inference.h). */
    sched_done_fn job_done;
    void *job_done_arg;
    /* Called on the loop thread: first_loaded once, when the loads of the
     * first scan are over (whether they worked or not); settled each time
     * the loads in flight are all over and no scan waits for them (after
     * the first scan and after each reload). */
    void (*first_loaded)(void *arg);
    void (*settled)(void *arg);
    void *arg;
} repo_config_t;

/* Makes an empty repository; repo_scan fills it. The loop, log and
 * telemetry must outlive it. Returns IC_OK or IC_ENOMEM. */
ic_err_t repo_create(repository_t **out, uv_loop_t *loop, const repo_config_t *cfg,
                     const logger_t *log, telemetry_t *tel);

/* Reads models_dir: starts loads of new and changed folders, drops the
 * slots of removed ones. A scan while loads are in flight is done again
 * once they are over. */
void repo_scan(repository_t *r);

/* Loads in flight. */
int repo_loading(const repository_t *r);

/* Whether the first scan's loads are over and every model serves (why:
 * "ready", "loading models", "a model failed to load" or "no models"). */
int repo_ready(const repository_t *r, const char **why);

/* The slot named name, or NULL. */
model_slot_t *repo_find(repository_t *r, const char *name);
int repo_count(const repository_t *r);
model_slot_t *repo_slot(repository_t *r, int i);

/* References, loop thread only: a request holds one while its jobs are
 * out; the last unref frees the model (its scheduler runs what is queued
 * first). unref(NULL) is a no-op. */
void repo_ref(served_model_t *m);
void repo_unref(served_model_t *m);

/* Expires queued jobs whose deadline is before now_ns, in every model. */
void repo_expire(repository_t *r, int64_t now_ns);

/* Loads that finish from now on are discarded (the daemon is stopping). */
void repo_stop(repository_t *r);

/* Drops every slot's reference. Loads must be over (uv_run finished). */
void repo_free(repository_t *r);

#endif
