/* Dynamic batching onto model instances; see scheduler.h.
 *
 * One mutex guards the queue (a doubly linked list, so that cancel and
 * expire unlink from the middle in O(1)). Instances sleep on `ready`; the
 * one that takes the head job waits on the same condition, with a timeout,
 * until the batch is full or the oldest job has waited max_queue_delay_us.
 * Decoding and inference run outside the lock. */
#include "server/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    const nn_model_t *model;
    const pre_config_t *pre;
    sched_config_t cfg;
    sched_done_fn done;
    sched_batch_fn on_batch;
    void *arg;
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

int64_t sched_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

size_t sched_output_elems(const sched_t *s)
{
    return s->out_elems;
}

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
static void finish_unrun(sched_t *s, sched_job_t *j, sched_status_t st,
                         const char *msg)
{
    j->status = st;
    j->finished_ns = sched_now_ns();
    j->started_ns = j->finished_ns;
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    s->done(j, s->arg);
}

int sched_submit(sched_t *s, sched_job_t *const *jobs, int n)
{
    int64_t now = sched_now_ns();
    pthread_mutex_lock(&s->lock);
    if (s->stopping || s->depth + n > s->cfg.queue_capacity) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        jobs[i]->status = SCHED_PENDING;
        jobs[i]->queued_ns = now;
        queue_push(s, jobs[i]);
    }
    pthread_cond_broadcast(&s->ready);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int sched_cancel(sched_t *s, sched_job_t *job)
{
    pthread_mutex_lock(&s->lock);
    int queued = job->in_queue;
    if (queued)
        queue_unlink(s, job);
    pthread_mutex_unlock(&s->lock);
    if (queued)
        finish_unrun(s, job, SCHED_CANCELLED, "client disconnected");
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
        finish_unrun(s, j, SCHED_TIMEOUT,
                     "deadline passed while waiting in the queue");
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
            if (sched_now_ns() >= until)
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
        int64_t now = sched_now_ns();
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

static int decode_and_preprocess(sched_t *s, sched_job_t *j, float *slot)
{
    img_rgb_t img;
    img_status_t st = img_decode(j->data, j->size, &s->cfg.limits, &img,
                                 j->msg, sizeof j->msg);
    if (st != IMG_OK) {
        j->status = SCHED_EIMAGE;
        j->http_status = st == IMG_EFORMAT     ? 415
                         : st == IMG_ETOOLARGE ? 413
                         : st == IMG_ENOMEM    ? 503
                                               : 400;
        return -1;
    }
    int rc = pre_run(s->pre, &img, slot, j->msg, sizeof j->msg);
    img_free(&img);
    if (rc) {
        j->status = SCHED_EIMAGE;
        j->http_status = 400;
        return -1;
    }
    return 0;
}

/* Decodes and preprocesses job j into slot, timing it. Returns 0, or
 * fills the job's error and returns -1. */
static int prepare_image(sched_t *s, sched_job_t *j, float *slot)
{
    if (j->tensor) {
        memcpy(slot, j->tensor, s->in_elems * sizeof *slot);
        return 0;
    }
    int64_t t0 = sched_now_ns();
    int rc = decode_and_preprocess(s, j, slot);
    j->prepare_ns = sched_now_ns() - t0;
    return rc;
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
    int64_t t0 = sched_now_ns();
    nn_error_t err;
    int rc = 0;
    if (m > 0) {
        const float *inputs[1] = {in->input};
        float *outputs[1] = {in->output};
        rc = nn_context_run(in->ctx, m, inputs, outputs, &err);
    }
    int64_t t1 = sched_now_ns();
    double queue_max = 0;
    for (int i = 0; i < m; i++) {
        sched_job_t *j = ok[i];
        j->batch_size = m;
        j->infer_ns = t1 - t0;
        if (rc) {
            j->status = SCHED_EINFER;
            snprintf(j->msg, sizeof j->msg, "inference failed: %.200s", err.msg);
        } else {
            j->status = SCHED_OK;
            memcpy(j->output, in->output + (size_t)i * s->out_elems,
                   s->out_elems * sizeof(float));
        }
        double q = (double)(j->started_ns - j->queued_ns) / 1e9;
        if (q > queue_max)
            queue_max = q;
    }
    if (m > 0 && s->on_batch)
        s->on_batch(m, queue_max, (double)(t1 - t0) / 1e9, s->arg);
    for (int i = 0; i < n; i++) {
        batch[i]->finished_ns = t1;
        s->done(batch[i], s->arg);
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

static int instance_init(sched_t *s, instance_t *in, char *msg, size_t msg_size)
{
    in->s = s;
    nn_error_t err;
    if (nn_context_create(&in->ctx, s->model, s->cfg.max_batch_size,
                          s->cfg.threads, &err)) {
        snprintf(msg, msg_size, "%s", err.msg);
        return -1;
    }
    size_t b = (size_t)s->cfg.max_batch_size;
    in->input = calloc(b * s->in_elems, sizeof(float));
    in->output = calloc(b * s->out_elems, sizeof(float));
    in->batch = calloc(b, sizeof *in->batch);
    in->good = calloc(b, sizeof *in->good);
    in->prepared = calloc(b, sizeof *in->prepared);
    if (!in->input || !in->output || !in->batch || !in->good || !in->prepared) {
        snprintf(msg, msg_size, "out of memory for the batch buffers");
        return -1;
    }
    return 0;
}

int sched_create(sched_t **out, const nn_model_t *model, const pre_config_t *pre,
                 const sched_config_t *cfg, sched_done_fn done, sched_batch_fn batch,
                 void *arg, char *msg, size_t msg_size)
{
    *out = NULL;
    if (cfg->max_batch_size < 1 || cfg->instances < 1 || cfg->threads < 1 ||
        cfg->queue_capacity < 1 || cfg->max_queue_delay_us < 0) {
        snprintf(msg, msg_size, "invalid batching settings");
        return -1;
    }
    if (nn_model_input_count(model) != 1 || nn_model_output_count(model) < 1) {
        snprintf(msg, msg_size, "the model must have one input and an output");
        return -1;
    }
    sched_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    s->model = model;
    s->pre = pre;
    s->cfg = *cfg;
    s->done = done;
    s->on_batch = batch;
    s->arg = arg;
    s->in_elems = nn_model_input_elems(model, 0, 1);
    s->out_elems = nn_model_output_elems(model, 0, 1);
    pthread_condattr_t ca;
    int ok = pthread_mutex_init(&s->lock, NULL) == 0;
    if (!ok) {
        free(s);
        snprintf(msg, msg_size, "pthread_mutex_init failed");
        return -1;
    }
    if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
        pthread_cond_init(&s->ready, &ca)) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        snprintf(msg, msg_size, "pthread_cond_init failed");
        return -1;
    }
    pthread_condattr_destroy(&ca);
    s->inst = calloc((size_t)cfg->instances, sizeof *s->inst);
    if (!s->inst) {
        snprintf(msg, msg_size, "out of memory");
        sched_free(s);
        return -1;
    }
    for (int i = 0; i < cfg->instances; i++) {
        if (instance_init(s, &s->inst[i], msg, msg_size)) {
            sched_free(s);
            return -1;
        }
    }
    for (int i = 0; i < cfg->instances; i++) {
        int rc = pthread_create(&s->inst[i].thread, NULL, instance_main, &s->inst[i]);
        if (rc) {
            snprintf(msg, msg_size, "pthread_create: %s", strerror(rc));
            sched_free(s);
            return -1;
        }
        s->inst[i].started = 1;
    }
    *out = s;
    return 0;
}

int sched_warm_up(sched_t *s, char *msg, size_t msg_size)
{
    /* The instances are idle (nothing was submitted yet) and each context
     * is only used by its thread while running a batch; warm-up happens
     * before the first submit, so using the contexts here is safe. */
    int sizes[2] = {s->cfg.max_batch_size, 1};
    for (int i = 0; i < s->cfg.instances; i++) {
        instance_t *in = &s->inst[i];
        for (int k = 0; k < 2; k++) {
            memset(in->input, 0, (size_t)sizes[k] * s->in_elems * sizeof(float));
            const float *inputs[1] = {in->input};
            float *outputs[1] = {in->output};
            nn_error_t err;
            if (nn_context_run(in->ctx, sizes[k], inputs, outputs, &err)) {
                snprintf(msg, msg_size, "warm-up run failed: %.400s", err.msg);
                return -1;
            }
        }
    }
    return 0;
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
        finish_unrun(s, j, SCHED_ESHUTDOWN, "server shutting down");
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
