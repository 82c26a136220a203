/* Dynamic batching onto model instances; see scheduler.h.
 *
 * One mutex guards the queue (a doubly linked list, so that cancel and
 * expire unlink from the middle in O(1)). Instances sleep on `ready`; the
 * one that takes the head job waits on the same condition, with a timeout,
 * until the batch is full or the oldest job has waited max_queue_delay_us.
 * Decoding and inference run outside the lock. */
#include "serve/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

typedef struct instance {
    sched_t *s;
    pthread_t thread;
    int started;
    nn_context_t *ctx;
    float *input;   /* max_batch images */
    float *output;  /* max_batch images */
    sched_job_t **batch; /* jobs taken */
    sched_job_t **good;  /* those whose image decoded, in batch order */
    int *prepared;       /* per job: 1 if its image decoded */
} instance_t;

struct sched {
    const classifier_t *c;
    batching_t cfg;
    sched_done_fn done;
    void *done_arg;
    sched_batch_fn on_batch;
    void *batch_arg;
    size_t in_elems, out_elems; /* per image */

    pthread_mutex_t lock;
    pthread_cond_t ready;
    sched_job_t *head, *tail;
    int depth;
    int idle;     /* instances waiting in take_batch */
    int released; /* the queue is what another instance left to share */
    int stopping;

    instance_t *inst;
};

/* ---- queue (lock held) ------------------------------------------------------------ */

static void queue_push(sched_t *s, sched_job_t *j)
{
    j->prev = s->tail;
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    j->in_queue = 1;
    s->depth++;
}

static void queue_unlink(sched_t *s, sched_job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        s->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        s->tail = j->prev;
    j->prev = j->next = NULL;
    j->in_queue = 0;
    s->depth--;
    if (!s->head)
        s->released = 0; /* a share nobody took (cancelled) is over */
}

/* Reports a job that never ran. */
static void finish_unrun(sched_t *s, sched_job_t *j, ic_err_t status)
{
    j->status = status;
    j->finished_ns = clock_now_ns();
    j->started_ns = j->finished_ns;
    snprintf(j->msg, sizeof j->msg, "%s", ic_strerror(status));
    s->done(j, s->done_arg);
}

ic_err_t sched_submit(sched_t *s, sched_job_t *jobs, int n)
{
    int64_t now = clock_now_ns();
    pthread_mutex_lock(&s->lock);
    ic_err_t rc = s->stopping                            ? IC_ESHUTDOWN
                  : s->depth + n > s->cfg.queue_capacity ? IC_EQUEUE_FULL
                                                         : IC_OK;
    for (int i = 0; rc == IC_OK && i < n; i++) {
        jobs[i].status = IC_OK;
        jobs[i].msg[0] = '\0';
        jobs[i].queued_ns = now;
        queue_push(s, &jobs[i]);
    }
    if (rc == IC_OK)
        pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int sched_cancel(sched_t *s, sched_job_t *job)
{
    pthread_mutex_lock(&s->lock);
    int queued = job->in_queue;
    if (queued)
        queue_unlink(s, job);
    pthread_mutex_unlock(&s->lock);
    if (queued)
        finish_unrun(s, job, IC_ECANCELLED);
    return queued;
}

int sched_expire(sched_t *s, int64_t now_ns)
{
    sched_job_t *expired = NULL;
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (sched_job_t *j = s->head, *next; j; j = next) {
        next = j->next;
        if (j->deadline_ns && j->deadline_ns < now_ns) {
            queue_unlink(s, j);
            j->next = expired; /* reuse the link for a private list */
            expired = j;
            n++;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (expired) {
        sched_job_t *j = expired;
        expired = j->next;
        j->next = NULL;
        finish_unrun(s, j, IC_EDEADLINE);
    }
    return n;
}

int sched_queue_depth(sched_t *s)
{
    pthread_mutex_lock(&s->lock);
    int d = s->depth;
    pthread_mutex_unlock(&s->lock);
    return d;
}

/* ---- instances -------------------------------------------------------------------- */

static void abs_time(struct timespec *ts, int64_t mono_ns)
{
    /* The condition variable uses CLOCK_MONOTONIC (see sched_create). */
    ts->tv_sec = (time_t)(mono_ns / 1000000000);
    ts->tv_nsec = (long)(mono_ns % 1000000000);
}

/* Waits for work, then takes up to max_batch_size jobs. Returns the count,
 * 0 only when the scheduler is stopping and the queue is empty: jobs that
 * vanish while it waits (taken by another instance, cancelled, expired)
 * send it back to waiting. */
static int take_batch(sched_t *s, sched_job_t **batch)
{
    pthread_mutex_lock(&s->lock);
    s->idle++;
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->ready, &s->lock);
        if (!s->head) {
            s->idle--;
            pthread_mutex_unlock(&s->lock);
            return 0; /* stopping, nothing left */
        }
        /* Wait for a fuller batch, but never beyond the head job's delay,
         * nor for a share another instance left. */
        while (s->head && !s->stopping && !s->released &&
               s->depth < s->cfg.max_batch_size) {
            int64_t until = s->head->queued_ns +
                            (int64_t)s->cfg.max_queue_delay_us * 1000;
            if (clock_now_ns() >= until)
                break;
            struct timespec ts;
            abs_time(&ts, until);
            if (pthread_cond_timedwait(&s->ready, &s->lock, &ts) == ETIMEDOUT)
                break;
        }
        /* What waits is shared with the other idle instances: 8 requests
         * and two idle instances make two batches of 4 that run side by
         * side, not one of 8 while the other instance looks on. */
        int limit = (s->depth + s->idle - 1) / s->idle;
        if (limit > s->cfg.max_batch_size)
            limit = s->cfg.max_batch_size;
        int shared = limit < s->depth && limit < s->cfg.max_batch_size;
        int n = 0;
        int64_t now = clock_now_ns();
        while (s->head && n < limit) {
            sched_job_t *j = s->head;
            queue_unlink(s, j);
            j->started_ns = now;
            batch[n++] = j;
        }
        s->released = shared && s->head;
        /* Others may be waiting for what is left. */
        if (s->head)
            pthread_cond_signal(&s->ready);
        if (n > 0) {
            s->idle--;
            pthread_mutex_unlock(&s->lock);
            return n;
        }
    }
}

/* Decodes and preprocesses job j into slot, timing it. Returns 0, or
 * sets the job's status and message and returns -1. */
static int prepare_image(sched_t *s, sched_job_t *j, float *slot)
{
    if (j->tensor) {
        memcpy(slot, j->tensor, s->c->in_elems * sizeof *slot);
        return 0;
    }
    int64_t t0 = clock_now_ns();
    j->status = classifier_prepare(s->c, j->data, j->size, slot, j->msg, sizeof j->msg);
    j->prepare_ns = clock_now_ns() - t0;
    return j->status == IC_OK ? 0 : -1;
}

typedef struct prep_job {
    instance_t *in;
    sched_job_t **batch;
    int *ok;
} prep_job_t;

static void prepare_one(void *arg, int i)
{
    prep_job_t *p = arg;
    sched_t *s = p->in->s;
    p->ok[i] = prepare_image(s, p->batch[i], p->in->input + (size_t)i * s->in_elems) == 0;
}

static void run_batch(instance_t *in, sched_job_t **batch, int n)
{
    sched_t *s = in->s;
    /* Decode and preprocess the images on the instance's threads, each
     * into its own slot, then pack those that worked. */
    prep_job_t pj = {in, batch, in->prepared};
    nn_context_for_each(in->ctx, n, prepare_one, &pj);
    sched_job_t **ok = in->good;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!in->prepared[i])
            continue;
        if (m != i)
            memmove(in->input + (size_t)m * s->in_elems, in->input + (size_t)i * s->in_elems,
                    s->in_elems * sizeof(float));
        ok[m++] = batch[i];
    }
    int64_t t0 = clock_now_ns();
    char why[sizeof ok[0]->msg];
    ic_err_t rc = m > 0 ? classifier_run(in->ctx, m, in->input, in->output, why, sizeof why)
                        : IC_OK;
    int64_t t1 = clock_now_ns();
    for (int i = 0; i < m; i++) {
        sched_job_t *j = ok[i];
        j->batch_size = m;
        j->infer_ns = t1 - t0;
        j->status = rc;
        if (rc != IC_OK)
            snprintf(j->msg, sizeof j->msg, "%s", why);
        else
            memcpy(j->output, in->output + (size_t)i * s->out_elems,
                   s->out_elems * sizeof(float));
    }
    if (m > 0 && s->on_batch)
        s->on_batch(m, (double)(t1 - t0) / 1e9, s->batch_arg);
    for (int i = 0; i < n; i++) {
        batch[i]->finished_ns = t1;
        s->done(batch[i], s->done_arg);
    }
}

static void *instance_main(void *arg)
{
    instance_t *in = arg;
    int n;
    while ((n = take_batch(in->s, in->batch)) > 0)
        run_batch(in, in->batch, n);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------- */

static ic_err_t instance_init(sched_t *s, instance_t *in, char *msg, size_t msg_size)
{
    in->s = s;
    nn_error_t err;
    int rc = nn_context_create(&in->ctx, s->c->nn, s->cfg.max_batch_size, s->cfg.threads,
                               &err);
    if (rc) {
        snprintf(msg, msg_size, "%s", err.msg);
        return rc == -NN_ENOMEM ? IC_ENOMEM : IC_EMODEL;
    }
    size_t b = (size_t)s->cfg.max_batch_size;
    in->input = calloc(b * s->in_elems, sizeof(float));
    in->output = calloc(b * s->out_elems, sizeof(float));
    in->batch = calloc(b, sizeof *in->batch);
    in->good = calloc(b, sizeof *in->good);
    in->prepared = calloc(b, sizeof *in->prepared);
    if (!in->input || !in->output || !in->batch || !in->good || !in->prepared) {
        snprintf(msg, msg_size, "out of memory for the batch buffers");
        return IC_ENOMEM;
    }
    return IC_OK;
}

/* The queue's lock and a condition variable on the monotonic clock (the
 * batch delay is measured on it). */
static int sync_init(sched_t *s)
{
    pthread_condattr_t ca;
    if (pthread_mutex_init(&s->lock, NULL))
        return -1;
    int rc = pthread_condattr_init(&ca);
    if (!rc) {
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
             pthread_cond_init(&s->ready, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (rc)
        pthread_mutex_destroy(&s->lock);
    return rc ? -1 : 0;
}

static int valid_batching(const batching_t *b)
{
    return b->max_batch_size >= 1 && b->instances >= 1 && b->threads >= 1 &&
           b->queue_capacity >= 1 && b->max_queue_delay_us >= 0;
}

ic_err_t sched_create(sched_t **out, const classifier_t *c, const batching_t *cfg,
                      sched_done_fn done, void *done_arg, sched_batch_fn batch,
                      void *batch_arg, char *msg, size_t msg_size)
{
    *out = NULL;
    if (!valid_batching(cfg)) {
        snprintf(msg, msg_size, "invalid batching settings");
        return IC_ECONFIG;
    }
    sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    s->c = c;
    s->cfg = *cfg;
    s->done = done;
    s->done_arg = done_arg;
    s->on_batch = batch;
    s->batch_arg = batch_arg;
    s->in_elems = c->in_elems;
    s->out_elems = c->out_elems;
    if (sync_init(s)) {
        free(s);
        snprintf(msg, msg_size, "cannot create the queue's lock");
        return IC_ESYSTEM;
    }
    s->inst = calloc((size_t)cfg->instances, sizeof *s->inst);
    if (!s->inst) {
        snprintf(msg, msg_size, "out of memory");
        sched_free(s);
        return IC_ENOMEM;
    }
    for (int i = 0; i < cfg->instances; i++) {
        ic_err_t rc = instance_init(s, &s->inst[i], msg, msg_size);
        if (rc != IC_OK) {
            sched_free(s);
            return rc;
        }
    }
    for (int i = 0; i < cfg->instances; i++) {
        int rc = pthread_create(&s->inst[i].thread, NULL, instance_main, &s->inst[i]);
        if (rc) {
            snprintf(msg, msg_size, "pthread_create: %s", strerror(rc));
            sched_free(s);
            return IC_ESYSTEM;
        }
        s->inst[i].started = 1;
    }
    *out = s;
    return IC_OK;
}

ic_err_t sched_warm_up(sched_t *s, char *msg, size_t msg_size)
{
    /* Nothing was submitted yet, so the instances are idle and their
     * contexts free to use from here. */
    int sizes[2] = {s->cfg.max_batch_size, 1};
    for (int i = 0; i < s->cfg.instances; i++) {
        instance_t *in = &s->inst[i];
        for (int k = 0; k < 2; k++) {
            memset(in->input, 0, (size_t)sizes[k] * s->in_elems * sizeof(float));
            char why[400];
            if (classifier_run(in->ctx, sizes[k], in->input, in->output, why, sizeof why)) {
                snprintf(msg, msg_size, "warm-up run failed: %s", why);
                return IC_EINFER;
            }
        }
    }
    return IC_OK;
}

void sched_free(sched_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; s->inst && i < s->cfg.instances; i++)
        if (s->inst[i].started)
            pthread_join(s->inst[i].thread, NULL);
    /* Instances drain the queue before they exit (take_batch only returns
     * 0 once it is empty); anything left came after they were gone. */
    while (s->head) {
        sched_job_t *j = s->head;
        queue_unlink(s, j);
        finish_unrun(s, j, IC_ESHUTDOWN);
    }
    for (int i = 0; s->inst && i < s->cfg.instances; i++) {
        nn_context_free(s->inst[i].ctx);
        free(s->inst[i].input);
        free(s->inst[i].output);
        free(s->inst[i].batch);
        free(s->inst[i].good);
        free(s->inst[i].prepared);
    }
    free(s->inst);
    pthread_cond_destroy(&s->ready);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
