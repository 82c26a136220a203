/* Inference submission and completion: a request's images go to a
 * model's scheduler as jobs, and come back, one by one, to the loop
 * thread, where the request's own callback runs once all are back.
 *
 * DESIGN: schedulers finish jobs on their instance threads. inference_done
 * (every scheduler's done callback) links the job into a completion list
 * under a mutex, through the job's own done_next link, so that the
 * completion path allocates nothing and cannot fail, and wakes the loop
 * with uv_async_send (sends coalesce). On the loop thread the whole list
 * is taken by swapping it out under the lock; each job is reported to the
 * telemetry and counted against its request; the last one calls the
 * request's infer_done_fn. A submitter is thus never named by the modules
 * below it: it registers its callback with each submission. */
#ifndef SERVE_INFERENCE_H
#define SERVE_INFERENCE_H

#include <stdint.h>
#include <uv.h>

#include "classify/error.h"
#include "obs/telemetry.h"
#include "serve/repository.h"
#include "serve/scheduler.h"

typedef struct inference inference_t;
typedef struct infer infer_t;

/* Called on the loop thread once every job of the submission is back. */
typedef void (*infer_done_fn)(infer_t *inf, void *arg);

/* One request's images on one model; the caller's memory (zeroed before
 * infer_prepare). */
struct infer {
    served_model_t *model; /* referenced from submission to infer_release */
    sched_job_t *jobs;     /* n; the caller sets each job's input */
    float *outputs;        /* n * out_elems floats, image by image */
    int n, n_done;
    int submitted;
    infer_done_fn done;
    void *arg;
};

/* Makes the completion list and its uv_async_t on loop. Returns IC_OK,
 * IC_ENOMEM or IC_ESYSTEM. */
ic_err_t inference_create(inference_t **out, uv_loop_t *loop, telemetry_t *tel);
/* Closes the async handle; every job must be back (and no scheduler may
 * report another). inference_free frees the rest once the loop has run
 * the close (or never started the handle). NULL is a no-op for both. */
void inference_close(inference_t *q);
void inference_free(inference_t *q);

/* The done callback of every scheduler, arg the inference_t: safe from
 * any thread, allocates nothing. */
void inference_done(sched_job_t *job, void *arg);

/* Allocates n jobs and their outputs for model m. The caller then sets
 * each job's input: data and size (an encoded image) or tensor (in_elems
 * floats), borrowed until done is called. Returns IC_OK or IC_ENOMEM
 * (infer_release frees what was made). */
ic_err_t infer_prepare(infer_t *inf, served_model_t *m, int n);

/* Queues every job on the model with the model's timeout as deadline and
 * takes a reference on it. On IC_OK done(inf, arg) is called later on the
 * loop thread, exactly once; on IC_EQUEUE_FULL or IC_ESHUTDOWN nothing was
 * queued and done is never called. */
ic_err_t infer_submit(inference_t *q, infer_t *inf, infer_done_fn done, void *arg);

/* Drops the jobs still queued (they come back IC_ECANCELLED); those
 * running finish. Loop thread. */
void infer_cancel(infer_t *inf);

/* Frees the jobs and outputs and lets go of the model. Not while jobs
 * are out (after done, or when the submission failed). */
void infer_release(infer_t *inf);

#endif
