/* Dynamic batching of one classifier's images onto its instances.
 *
 * A scheduler owns a bounded FIFO queue of jobs (one job = one image) and
 * `instances` threads, each with its own execution context on the shared,
 * immutable classifier. An idle instance takes the oldest job, waits at
 * most max_queue_delay_us after that job was queued for more to arrive,
 * takes up to max_batch_size of them (sharing what waits with the other
 * idle instances), prepares each image into its batch buffer, runs the
 * batch once and reports every job through the done callback, on the
 * instance thread.
 *
 * Jobs also leave the queue through sched_cancel (the client went away),
 * sched_expire (the deadline passed while waiting) and sched_free (which
 * first lets the instances run what is queued). Every job submitted is
 * reported through done exactly once, with its status set; the submitter
 * keeps a job's memory alive until then, and owns it again from then on.
 * The scheduler knows nothing of HTTP: a job's status is an ic_err_t. */
#ifndef SERVE_SCHEDULER_H
#define SERVE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "classify/classifier.h"
#include "classify/error.h"

typedef struct sched_job {
    /* Set by the submitter. */
    const uint8_t *data;   /* encoded image, borrowed until done */
    size_t size;
    const float *tensor;   /* or an image already preprocessed (in_elems
                              floats, borrowed): nothing to decode */
    int64_t deadline_ns;   /* clock_now_ns() time; 0: none */
    float *output;         /* out_elems floats, the submitter's */
    void *owner;           /* the submitter's, untouched */

    /* Set by the scheduler before done is called. */
    ic_err_t status;       /* IC_OK, an image or preprocessing error,
                              IC_EDEADLINE, IC_ECANCELLED, IC_ESHUTDOWN,
                              IC_EINFER */
    char msg[256];         /* why, when status is not IC_OK */
    int64_t queued_ns;     /* submitted */
    int64_t started_ns;    /* taken by an instance (finished_ns if never) */
    int64_t prepare_ns;    /* decoding and preprocessing took */
    int64_t infer_ns;      /* the batch's run took */
    int64_t finished_ns;
    int batch_size;        /* images in the batch it ran in */

    /* The queue's links, the scheduler's while the job is queued. */
    struct sched_job *prev, *next;
    int in_queue;
    /* A link the receiver of done may use for its own list. */
    struct sched_job *done_next;
} sched_job_t;

/* Called on the thread that finished the job (an instance, or the caller
 * of sched_cancel, sched_expire or sched_free). */
typedef void (*sched_done_fn)(sched_job_t *job, void *arg);

/* Called on an instance thread after each batch run (for metrics). */
typedef void (*sched_batch_fn)(int batch_size, double infer_s, void *arg);

typedef struct sched sched_t;

/* Makes the instances' contexts and buffers and starts their threads.
 * done(job, done_arg) reports each job; batch(..., batch_arg), which may
 * be NULL, each batch run. The classifier and the args must outlive the
 * scheduler. Returns IC_OK, IC_ECONFIG (batching settings out of range),
 * IC_EMODEL, IC_ENOMEM or IC_ESYSTEM, with msg. */
ic_err_t sched_create(sched_t **out, const classifier_t *c, const batching_t *cfg,
                      sched_done_fn done, void *done_arg, sched_batch_fn batch,
                      void *batch_arg, char *msg, size_t msg_size);

/* Runs one batch of zeros of each size the instances will see first (max
 * and 1) through every instance, so that plans and arenas are made now,
 * not on the first request. Only before the first sched_submit. Returns
 * IC_OK or IC_EINFER with msg. */
ic_err_t sched_warm_up(sched_t *s, char *msg, size_t msg_size);

/* Queues the n jobs of the array, all or none, in order. Returns IC_OK,
 * IC_EQUEUE_FULL (no room for all of them) or IC_ESHUTDOWN (sched_free has
 * begun); on an error nothing was queued and done is never called for
 * these jobs. */
ic_err_t sched_submit(sched_t *s, sched_job_t *jobs, int n);

/* Removes the job if it is still queued and reports it IC_ECANCELLED
 * (returns 1); returns 0 when it is already running or reported. */
int sched_cancel(sched_t *s, sched_job_t *job);

/* Reports every queued job whose deadline is before now_ns IC_EDEADLINE.
 * Returns how many. */
int sched_expire(sched_t *s, int64_t now_ns);

/* Jobs waiting in the queue now. */
int sched_queue_depth(sched_t *s);

/* Refuses new jobs, lets the instances run every job still queued, joins
 * them and frees everything. NULL is a no-op. */
void sched_free(sched_t *s);

#endif
