/* Dynamic batching onto the instances of one model.
 *
 * A scheduler owns a bounded FIFO queue of jobs (one job = one image) and
 * `instances` threads, each with its own execution context on the shared,
 * immutable model. An idle instance takes the oldest job, waits at most
 * max_queue_delay_us after that job was queued for more to arrive, takes
 * up to max_batch_size of them, decodes and preprocesses each into its
 * batch buffer, runs the batch once and reports every job through the
 * done callback (on the instance thread).
 *
 * Jobs leave the queue in three other ways, each reported through done
 * as well: sched_cancel (the client went away) and sched_expire (the
 * deadline passed while waiting). sched_free runs what is still queued
 * before it stops, so nothing accepted is lost. A job is reported exactly
 * once. The caller keeps a job's memory alive until then. */
#ifndef SERVER_SCHEDULER_H
#define SERVER_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "imgclass/nn.h"
#include "server/preprocess.h"

typedef enum sched_status {
    SCHED_PENDING = 0,
    SCHED_OK,
    SCHED_EIMAGE,     /* decoding or preprocessing failed: http_status, msg */
    SCHED_TIMEOUT,    /* deadline passed before it ran (504) */
    SCHED_CANCELLED,  /* client went away before it ran */
    SCHED_ESHUTDOWN,  /* scheduler stopped before it ran (503) */
    SCHED_EINFER,     /* the engine failed (500) */
} sched_status_t;

typedef struct sched_job {
    /* Set by the submitter. */
    const uint8_t *data;   /* encoded image, borrowed until done */
    size_t size;
    const float *tensor;   /* or an already preprocessed image (C*H*W
                              floats, borrowed): no decoding */
    int64_t deadline_ns;   /* CLOCK_MONOTONIC; 0 = none */
    float *output;         /* sched_output_elems() floats, caller-owned */
    void *owner;           /* for the done callback */

    /* Set by the scheduler before done is called. */
    sched_status_t status;
    int http_status;       /* for SCHED_EIMAGE: 400, 413 or 415 */
    char msg[256];
    int64_t queued_ns;     /* submitted */
    int64_t started_ns;    /* taken from the queue by an instance */
    int64_t prepare_ns;    /* decoding and preprocessing of this image */
    int64_t infer_ns;      /* the batch's run through the model */
    int64_t finished_ns;
    int batch_size;        /* images in the batch it ran in */

    /* Scheduler's own links. */
    struct sched_job *prev, *next;
    int in_queue;
} sched_job_t;

typedef void (*sched_done_fn)(sched_job_t *job, void *arg);

/* Called on an instance thread after each batch (for metrics). */
typedef void (*sched_batch_fn)(int batch_size, double queue_s_max,
                               double infer_s, void *arg);

typedef struct sched_config {
    int max_batch_size;      /* >= 1 */
    int max_queue_delay_us;  /* >= 0 */
    int instances;           /* >= 1 threads, one context each */
    int threads;             /* intra-op threads per instance */
    int queue_capacity;      /* >= 1 */
    img_limits_t limits;     /* decoding limits (preprocess hint applied) */
} sched_config_t;

typedef struct sched sched_t;

/* Makes the contexts and starts the instance threads. The model, pre and
 * the callbacks' args must outlive the scheduler. Returns 0 or -1 with msg. */
int sched_create(sched_t **out, const nn_model_t *model, const pre_config_t *pre,
                 const sched_config_t *cfg, sched_done_fn done, sched_batch_fn batch,
                 void *arg, char *msg, size_t msg_size);

/* Floats per image of the model's first output. */
size_t sched_output_elems(const sched_t *s);

/* Queues n jobs, all or none: returns 0, or -1 when the queue has no room
 * for all of them (nothing queued; answer 503) or the scheduler stopped. */
int sched_submit(sched_t *s, sched_job_t *const *jobs, int n);

/* Removes the job if it is still queued and reports it SCHED_CANCELLED
 * (returns 1); returns 0 if it is already running or done. */
int sched_cancel(sched_t *s, sched_job_t *job);

/* Reports every queued job whose deadline is before now_ns as
 * SCHED_TIMEOUT. Returns how many. */
int sched_expire(sched_t *s, int64_t now_ns);

/* Jobs waiting in the queue now. */
int sched_queue_depth(sched_t *s);

/* Runs one batch of zeros through every instance (warm-up: plans and
 * arenas are made now, not on the first request). Returns 0 or -1. */
int sched_warm_up(sched_t *s, char *msg, size_t msg_size);

/* Refuses new jobs, lets the instances run every job still queued, joins
 * them and frees everything. */
void sched_free(sched_t *s);

int64_t sched_now_ns(void);

#endif
