/* The scheduler (src/serve/scheduler.c) on its own: no HTTP, no daemon.
 *
 * Real jobs run through the embedded Fashion-MNIST CNN (models/fashion-mnist,
 * 28x28 gray): tensor jobs (already preprocessed) and encoded-image jobs
 * (PNGs made in memory, garbage and a truncated PNG for the errors). A done
 * callback counts every report per job under a mutex; the test waits on a
 * condition variable with a timeout.
 *
 * Timing: a long max_queue_delay_us keeps jobs queued (an idle instance
 * holds the head job in the queue while it waits for a fuller batch), so
 * cancel, expire, a full queue and sched_free see a known queue. Only the
 * delay test and the two-instance test depend on the clock; both leave
 * generous margins. */
#include <pthread.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "classify/classifier.h"
#include "serve/scheduler.h"
#include "util/clock.h"
#include "util/testutil.h"

#define MODEL_DIR "models/fashion-mnist"
#define MAX_JOBS 16
#define LONG_DELAY_US 10000000 /* 10 s: jobs stay queued for the whole test */
#define WAIT_S 15              /* waiting for reports (ASan on a busy machine) */

/* ---- the model, jobs and their reports ------------------------------------------- */

static classifier_t *open_model(void)
{
    img_limits_t lim = {.min_side = IMG_MIN_SIDE_DEFAULT, .max_pixels = IMG_MAX_PIXELS_SERVED};
    classifier_t *c = NULL;
    char msg[256] = "";
    ic_err_t rc = classifier_open(&c, MODEL_DIR, "fashion", &lim, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "classifier_open(%s): %s: %s", MODEL_DIR, ic_errname(rc), msg);
    ck_assert_int_eq(c->channels, 1);
    ck_assert_int_eq(c->height, 28);
    ck_assert_int_eq(c->width, 28);
    ck_assert_uint_eq(c->in_elems, 28 * 28);
    return c;
}

typedef struct collector {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int reports[MAX_JOBS];     /* done calls per job (index by owner) */
    pthread_t thread[MAX_JOBS];/* the thread that reported it */
    int64_t finished[MAX_JOBS];/* its finished_ns when reported */
    int order[4 * MAX_JOBS];   /* job indices in the order of the reports */
    int done;                  /* done calls in all */
    int batches;               /* batch callbacks */
    int batch_sizes[MAX_JOBS];
    int batch_total;           /* images over every batch */
} collector_t;

static void collector_init(collector_t *col)
{
    memset(col, 0, sizeof *col);
    ck_assert_int_eq(pthread_mutex_init(&col->lock, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&col->cond, NULL), 0);
}

static void collector_destroy(collector_t *col)
{
    pthread_cond_destroy(&col->cond);
    pthread_mutex_destroy(&col->lock);
}

/* A job's owner is its index in the test's array, stored as a pointer. */
static int job_index(const sched_job_t *j)
{
    return (int)(intptr_t)j->owner;
}

static void on_done(sched_job_t *job, void *arg)
{
    collector_t *col = arg;
    pthread_mutex_lock(&col->lock);
    int i = job_index(job);
    if (i >= 0 && i < MAX_JOBS) {
        col->reports[i]++;
        col->thread[i] = pthread_self();
        col->finished[i] = job->finished_ns;
    }
    if (col->done < 4 * MAX_JOBS)
        col->order[col->done] = i;
    col->done++;
    pthread_cond_broadcast(&col->cond);
    pthread_mutex_unlock(&col->lock);
}

static void on_batch(int batch_size, double infer_s, void *arg)
{
    collector_t *col = arg;
    pthread_mutex_lock(&col->lock);
    if (col->batches < MAX_JOBS)
        col->batch_sizes[col->batches] = batch_size;
    col->batches++;
    col->batch_total += batch_size;
    pthread_mutex_unlock(&col->lock);
    (void)infer_s;
}

/* Waits until n jobs were reported in all, at most WAIT_S seconds. */
static int wait_done(collector_t *col, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_S;
    pthread_mutex_lock(&col->lock);
    int rc = 0;
    while (col->done < n && rc == 0)
        rc = pthread_cond_timedwait(&col->cond, &col->lock, &until);
    int done = col->done;
    pthread_mutex_unlock(&col->lock);
    return done >= n;
}

static int reports_of(collector_t *col, int i)
{
    pthread_mutex_lock(&col->lock);
    int n = col->reports[i];
    pthread_mutex_unlock(&col->lock);
    return n;
}

static int done_count(collector_t *col)
{
    pthread_mutex_lock(&col->lock);
    int n = col->done;
    pthread_mutex_unlock(&col->lock);
    return n;
}

/* A fixed pseudo-random tensor per seed, different for every job. */
static float *make_tensor(const classifier_t *c, unsigned seed)
{
    float *t = malloc(c->in_elems * sizeof *t);
    ck_assert_ptr_nonnull(t);
    uint32_t x = 2463534242u ^ (seed * 2654435761u);
    for (size_t i = 0; i < c->in_elems; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        t[i] = (float)(x % 2001) / 1000.0f - 1.0f;
    }
    return t;
}

/* A 28x28 gray PNG, a different picture per seed (free()). */
static uint8_t *make_png(unsigned seed, size_t *size)
{
    uint8_t px[28 * 28];
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            px[y * 28 + x] = (uint8_t)((x * (int)(seed + 3) + y * 7 + (int)seed * 40) & 0xff);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1), 0);
    struct spng_ihdr ihdr = {.width = 28, .height = 28, .bit_depth = 8,
                             .color_type = SPNG_COLOR_TYPE_GRAYSCALE};
    ck_assert_int_eq(spng_set_ihdr(ctx, &ihdr), 0);
    ck_assert_int_eq(spng_encode_image(ctx, px, sizeof px, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE),
                     0);
    int err = 0;
    uint8_t *out = spng_get_png_buffer(ctx, size, &err);
    ck_assert_msg(out != NULL, "spng_get_png_buffer: %s", spng_strerror(err));
    spng_ctx_free(ctx);
    return out;
}

/* The tensor job i ran on: its own, or its image prepared (to free). */
static float *job_tensor(const classifier_t *c, const sched_job_t *j)
{
    float *t = malloc(c->in_elems * sizeof *t);
    ck_assert_ptr_nonnull(t);
    if (j->tensor) {
        memcpy(t, j->tensor, c->in_elems * sizeof *t);
        return t;
    }
    char msg[256];
    ic_err_t rc = classifier_prepare(c, j->data, j->size, t, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "classifier_prepare: %s", msg);
    return t;
}

/* A test's jobs: tensors (or images), outputs and the references. */
typedef struct jobset {
    int n;
    sched_job_t jobs[MAX_JOBS];
    float *tensors[MAX_JOBS];
    uint8_t *images[MAX_JOBS];
    float *outputs[MAX_JOBS];
} jobset_t;

static void jobset_tensors(jobset_t *js, const classifier_t *c, int n, unsigned seed)
{
    memset(js, 0, sizeof *js);
    js->n = n;
    for (int i = 0; i < n; i++) {
        js->tensors[i] = make_tensor(c, seed + (unsigned)i);
        js->outputs[i] = calloc(c->out_elems, sizeof(float));
        ck_assert_ptr_nonnull(js->outputs[i]);
        js->jobs[i].tensor = js->tensors[i];
        js->jobs[i].output = js->outputs[i];
        js->jobs[i].owner = (void *)(intptr_t)i;
    }
}

static void jobset_free(jobset_t *js)
{
    for (int i = 0; i < js->n; i++) {
        free(js->tensors[i]);
        free(js->images[i]);
        free(js->outputs[i]);
    }
    memset(js, 0, sizeof *js);
}

/* Job i was run (its output is checked by check_outputs). */
static void assert_ran(const jobset_t *js, int i)
{
    const sched_job_t *j = &js->jobs[i];
    ck_assert_msg(j->status == IC_OK, "job %d: %s: %s", i, ic_errname(j->status), j->msg);
    ck_assert_int_ge(j->batch_size, 1);
    ck_assert(j->queued_ns > 0);
    ck_assert(j->started_ns >= j->queued_ns);
    ck_assert(j->finished_ns >= j->started_ns);
}

/* Every job that ran has exactly the output classifier_run gives for its
 * tensor on a context of our own. The engine's last bits depend on the
 * batch size (not on the other images), so each batch is rebuilt as it
 * ran: the jobs one instance reported with the same finished_ns, in the
 * order of the reports, those whose image decoded. Also checks that each
 * job's batch_size is the size of that batch. Returns the batches found. */
static int check_outputs(const classifier_t *c, const jobset_t *js, collector_t *col)
{
    pthread_mutex_lock(&col->lock);
    int n = col->done < 4 * MAX_JOBS ? col->done : 4 * MAX_JOBS;
    int order[4 * MAX_JOBS];
    memcpy(order, col->order, sizeof order);
    pthread_mutex_unlock(&col->lock);

    nn_context_t *ctx = NULL;
    nn_error_t err;
    ck_assert_msg(nn_context_create(&ctx, c->nn, MAX_JOBS, 1, &err) == 0, "%s", err.msg);
    float *in = malloc((size_t)MAX_JOBS * c->in_elems * sizeof *in);
    float *out = malloc((size_t)MAX_JOBS * c->out_elems * sizeof *out);
    ck_assert(in && out);
    int taken[4 * MAX_JOBS] = {0}, batches = 0;
    for (int a = 0; a < n; a++) {
        int ia = order[a];
        if (taken[a] || js->jobs[ia].status != IC_OK)
            continue;
        int members[MAX_JOBS], m = 0;
        for (int b = a; b < n; b++) {
            int ib = order[b];
            if (!taken[b] && js->jobs[ib].status == IC_OK &&
                pthread_equal(col->thread[ib], col->thread[ia]) &&
                col->finished[ib] == col->finished[ia]) {
                taken[b] = 1;
                ck_assert_int_lt(m, MAX_JOBS);
                members[m++] = ib;
            }
        }
        for (int k = 0; k < m; k++) {
            float *t = job_tensor(c, &js->jobs[members[k]]);
            memcpy(in + (size_t)k * c->in_elems, t, c->in_elems * sizeof *t);
            free(t);
        }
        char msg[256];
        ic_err_t rc = classifier_run(ctx, m, in, out, msg, sizeof msg);
        ck_assert_msg(rc == IC_OK, "classifier_run: %s", msg);
        for (int k = 0; k < m; k++) {
            int i = members[k];
            ck_assert_msg(js->jobs[i].batch_size == m, "job %d: batch_size %d in a batch of %d",
                          i, js->jobs[i].batch_size, m);
            ck_assert_msg(memcmp(js->outputs[i], out + (size_t)k * c->out_elems,
                                 c->out_elems * sizeof(float)) == 0,
                          "job %d: output differs from classifier_run's", i);
        }
        batches++;
    }
    free(in);
    free(out);
    nn_context_free(ctx);
    return batches;
}

static batching_t batching(int max_batch, int delay_us, int instances, int capacity)
{
    return (batching_t){.max_batch_size = max_batch, .max_queue_delay_us = delay_us,
                        .instances = instances, .threads = 1, .queue_capacity = capacity};
}

static sched_t *create(const classifier_t *c, batching_t b, collector_t *col)
{
    sched_t *s = NULL;
    char msg[256] = "";
    ic_err_t rc = sched_create(&s, c, &b, on_done, col, on_batch, col, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "sched_create: %s: %s", ic_errname(rc), msg);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- tests ------------------------------------------------------------------------ */

/* Jobs submitted one at a time all run, each reported exactly once with
 * classifier_run's output; warm-up first, as the daemon does. */
START_TEST(every_job_reported_once)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, 1000, 2, 64), &col);
    char msg[256] = "";
    ck_assert_msg(sched_warm_up(s, msg, sizeof msg) == IC_OK, "warm-up: %s", msg);

    jobset_t js;
    jobset_tensors(&js, c, 10, 100);
    for (int i = 0; i < js.n; i++)
        ck_assert_int_eq(sched_submit(s, &js.jobs[i], 1), IC_OK);
    ck_assert_msg(wait_done(&col, js.n), "only %d of %d jobs reported", done_count(&col), js.n);
    sleep_ms(50); /* a second report would come now */
    for (int i = 0; i < js.n; i++) {
        ck_assert_int_eq(reports_of(&col, i), 1);
        assert_ran(&js, i);
    }
    ck_assert_int_eq(done_count(&col), js.n);
    ck_assert_int_eq(col.batch_total, js.n);
    ck_assert_int_eq(sched_queue_depth(s), 0);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), col.batches);
    ck_assert_int_eq(done_count(&col), js.n);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* max_batch_size 4 and a long delay: 4 jobs submitted together run as one
 * batch of 4, at once (a full batch does not wait for the delay). */
START_TEST(full_batch_runs_together)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, 5000000, 1, 64), &col);

    jobset_t js;
    jobset_tensors(&js, c, 4, 200);
    ck_assert_int_eq(sched_submit(s, js.jobs, 4), IC_OK);
    ck_assert(wait_done(&col, 4));
    ck_assert_int_eq(col.batches, 1);
    ck_assert_int_eq(col.batch_sizes[0], 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(reports_of(&col, i), 1);
        assert_ran(&js, i);
        ck_assert_int_eq(js.jobs[i].batch_size, 4);
        /* Far from the 5 s delay: nobody waited for it. */
        ck_assert_msg(js.jobs[i].started_ns - js.jobs[i].queued_ns < 2500000000LL,
                      "a full batch waited %lld ns",
                      (long long)(js.jobs[i].started_ns - js.jobs[i].queued_ns));
    }
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Jobs submitted one by one within the delay still make one batch. */
START_TEST(batch_fills_within_delay)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, 5000000, 1, 64), &col);

    jobset_t js;
    jobset_tensors(&js, c, 4, 300);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sched_submit(s, &js.jobs[i], 1), IC_OK);
        sleep_ms(20);
    }
    ck_assert(wait_done(&col, 4));
    ck_assert_int_eq(col.batches, 1);
    ck_assert_int_eq(col.batch_sizes[0], 4);
    for (int i = 0; i < 4; i++)
        assert_ran(&js, i);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* One job alone waits about max_queue_delay_us for company, then runs as
 * a batch of 1. */
START_TEST(lone_job_waits_the_delay)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    const int delay_us = 300000;
    sched_t *s = create(c, batching(4, delay_us, 1, 64), &col);

    jobset_t js;
    jobset_tensors(&js, c, 1, 400);
    ck_assert_int_eq(sched_submit(s, js.jobs, 1), IC_OK);
    ck_assert(wait_done(&col, 1));
    assert_ran(&js, 0);
    int64_t waited = js.jobs[0].started_ns - js.jobs[0].queued_ns;
    ck_assert_msg(waited >= (int64_t)delay_us * 1000, "waited %lld ns, less than the delay",
                  (long long)waited);
    ck_assert_msg(waited < (int64_t)delay_us * 1000 + 2000000000LL,
                  "waited %lld ns, far beyond the delay", (long long)waited);
    ck_assert_int_eq(js.jobs[0].batch_size, 1);
    ck_assert_int_eq(col.batch_sizes[0], 1);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Capacity 3: 4 jobs at once are refused, all of them; with 3 queued one
 * more is refused; done is never called for refused jobs. */
START_TEST(queue_full)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, LONG_DELAY_US, 1, 3), &col);

    jobset_t js;
    jobset_tensors(&js, c, 8, 500);
    /* jobs 0-3: too many at once */
    ck_assert_int_eq(sched_submit(s, &js.jobs[0], 4), IC_EQUEUE_FULL);
    ck_assert_int_eq(sched_queue_depth(s), 0);
    /* jobs 4-6 fit; job 7 does not */
    ck_assert_int_eq(sched_submit(s, &js.jobs[4], 3), IC_OK);
    ck_assert_int_eq(sched_queue_depth(s), 3);
    ck_assert_int_eq(sched_submit(s, &js.jobs[7], 1), IC_EQUEUE_FULL);
    ck_assert_int_eq(sched_queue_depth(s), 3);
    sleep_ms(50);
    ck_assert_int_eq(done_count(&col), 0);

    sched_free(s); /* runs the 3 queued */
    ck_assert_int_eq(done_count(&col), 3);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(reports_of(&col, i), i >= 4 && i <= 6);
    for (int i = 4; i <= 6; i++)
        assert_ran(&js, i);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* A queued job is cancelled (reported IC_ECANCELLED once, on the caller's
 * thread); cancelling it again, or a job that already ran, returns 0. */
START_TEST(cancel_queued)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, LONG_DELAY_US, 1, 16), &col);

    jobset_t js;
    jobset_tensors(&js, c, 7, 600);
    /* Jobs 0-2 wait in the queue (3 < max batch, 10 s delay). */
    ck_assert_int_eq(sched_submit(s, js.jobs, 3), IC_OK);
    ck_assert_int_eq(sched_queue_depth(s), 3);

    ck_assert_int_eq(sched_cancel(s, &js.jobs[1]), 1); /* the middle */
    ck_assert_int_eq(reports_of(&col, 1), 1);
    ck_assert_int_eq(js.jobs[1].status, IC_ECANCELLED);
    ck_assert_str_ne(js.jobs[1].msg, "");
    ck_assert(pthread_equal(col.thread[1], pthread_self()));
    ck_assert_int_eq(sched_queue_depth(s), 2);
    ck_assert_int_eq(sched_cancel(s, &js.jobs[1]), 0); /* already reported */
    ck_assert_int_eq(reports_of(&col, 1), 1);

    ck_assert_int_eq(sched_cancel(s, &js.jobs[0]), 1); /* the head, held by the instance */
    ck_assert_int_eq(js.jobs[0].status, IC_ECANCELLED);
    ck_assert_int_eq(sched_queue_depth(s), 1);

    /* Jobs 3-5 join job 2: a full batch of 4 runs now. */
    ck_assert_int_eq(sched_submit(s, &js.jobs[3], 3), IC_OK);
    ck_assert(wait_done(&col, 6));
    for (int i = 2; i <= 5; i++) {
        assert_ran(&js, i);
        ck_assert_int_eq(js.jobs[i].batch_size, 4);
        ck_assert_int_eq(sched_cancel(s, &js.jobs[i]), 0); /* ran already */
        ck_assert_int_eq(reports_of(&col, i), 1);
    }
    ck_assert_int_eq(sched_cancel(s, &js.jobs[0]), 0);
    /* The outputs of cancelled jobs are untouched. */
    for (size_t k = 0; k < c->out_elems; k++)
        ck_assert(js.outputs[0][k] == 0.0f && js.outputs[1][k] == 0.0f);

    /* The last one waits alone; cancel it, then free: nothing left to run. */
    ck_assert_int_eq(sched_submit(s, &js.jobs[6], 1), IC_OK);
    ck_assert_int_eq(sched_cancel(s, &js.jobs[6]), 1);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    ck_assert_int_eq(done_count(&col), 7);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(reports_of(&col, i), 1);
    ck_assert_int_eq(js.jobs[6].status, IC_ECANCELLED);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Jobs whose deadline passed are reported IC_EDEADLINE and counted; no
 * deadline (0) never expires; the rest still run. */
START_TEST(expire_past_deadlines)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(8, LONG_DELAY_US, 1, 16), &col);

    jobset_t js;
    jobset_tensors(&js, c, 4, 700);
    int64_t now = clock_now_ns();
    js.jobs[0].deadline_ns = now - 1000000;          /* passed (the head) */
    js.jobs[1].deadline_ns = 0;                      /* none */
    js.jobs[2].deadline_ns = now - 1;                /* passed */
    js.jobs[3].deadline_ns = now + 60000000000LL;    /* in a minute */
    ck_assert_int_eq(sched_submit(s, js.jobs, 4), IC_OK);
    ck_assert_int_eq(sched_queue_depth(s), 4);

    ck_assert_int_eq(sched_expire(s, clock_now_ns()), 2);
    ck_assert_int_eq(js.jobs[0].status, IC_EDEADLINE);
    ck_assert_int_eq(js.jobs[2].status, IC_EDEADLINE);
    ck_assert_str_ne(js.jobs[0].msg, "");
    ck_assert_int_eq(reports_of(&col, 0), 1);
    ck_assert_int_eq(reports_of(&col, 2), 1);
    ck_assert_int_eq(sched_queue_depth(s), 2);
    ck_assert_int_eq(sched_expire(s, clock_now_ns()), 0); /* nothing more */

    /* Two minutes on, the job with a deadline goes; the one without stays. */
    ck_assert_int_eq(sched_expire(s, now + 120000000000LL), 1);
    ck_assert_int_eq(js.jobs[3].status, IC_EDEADLINE);
    ck_assert_int_eq(sched_queue_depth(s), 1);
    ck_assert_int_eq(done_count(&col), 3);

    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    ck_assert_int_eq(done_count(&col), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(reports_of(&col, i), 1);
    assert_ran(&js, 1);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Encoded images: good PNGs run with the classifier's own output; garbage
 * is IC_EIMAGE_FORMAT and a truncated PNG IC_EIMAGE_CORRUPT, each with a
 * message, and the batch runs without them. */
START_TEST(bad_image_among_good)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, LONG_DELAY_US, 1, 16), &col);

    jobset_t js;
    memset(&js, 0, sizeof js);
    js.n = 4;
    static const char garbage[] = "this is not an image, just some text bytes";
    for (int i = 0; i < 4; i++) {
        size_t size = 0;
        js.images[i] = make_png((unsigned)i + 1, &size);
        js.outputs[i] = calloc(c->out_elems, sizeof(float));
        ck_assert_ptr_nonnull(js.outputs[i]);
        js.jobs[i].owner = (void *)(intptr_t)i;
        js.jobs[i].output = js.outputs[i];
        js.jobs[i].data = js.images[i];
        js.jobs[i].size = size;
    }
    js.jobs[1].data = (const uint8_t *)garbage;
    js.jobs[1].size = sizeof garbage - 1;
    js.jobs[3].size /= 2; /* cut in the middle of its data */

    ck_assert_int_eq(sched_submit(s, js.jobs, 4), IC_OK);
    ck_assert(wait_done(&col, 4));
    assert_ran(&js, 0);
    assert_ran(&js, 2);
    ck_assert_int_eq(js.jobs[0].batch_size, 2); /* the two good ones */
    ck_assert_int_eq(col.batches, 1);
    ck_assert_int_eq(col.batch_sizes[0], 2);
    ck_assert_msg(js.jobs[1].status == IC_EIMAGE_FORMAT, "garbage: %s",
                  ic_errname(js.jobs[1].status));
    ck_assert_msg(js.jobs[3].status == IC_EIMAGE_CORRUPT, "truncated PNG: %s: %s",
                  ic_errname(js.jobs[3].status), js.jobs[3].msg);
    ck_assert_str_ne(js.jobs[1].msg, "");
    ck_assert_msg(strncmp(js.jobs[3].msg, "PNG: ", 5) == 0, "message: %s", js.jobs[3].msg);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(reports_of(&col, i), 1);
    for (size_t k = 0; k < c->out_elems; k++)
        ck_assert(js.outputs[1][k] == 0.0f && js.outputs[3][k] == 0.0f);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    ck_assert_int_eq(done_count(&col), 4);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* sched_free lets the instances run what is still queued: every job
 * IC_OK, none lost, none reported twice. */
START_TEST(free_runs_queued_jobs)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(4, LONG_DELAY_US, 2, 16), &col);

    jobset_t js;
    jobset_tensors(&js, c, 7, 800);
    /* 4 run at once as a full batch; 3 stay queued behind the delay. */
    ck_assert_int_eq(sched_submit(s, js.jobs, 4), IC_OK);
    ck_assert(wait_done(&col, 4));
    ck_assert_int_eq(sched_submit(s, &js.jobs[4], 3), IC_OK);
    ck_assert_int_eq(sched_queue_depth(s), 3);
    int64_t t0 = clock_now_ns();
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), col.batches);
    ck_assert_msg(clock_now_ns() - t0 < 5000000000LL, "sched_free waited for the delay");
    ck_assert_int_eq(done_count(&col), 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(reports_of(&col, i), 1);
        assert_ran(&js, i);
    }
    ck_assert_int_eq(col.batch_total, 7);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Batching settings out of range are refused before anything starts. */
START_TEST(invalid_settings_refused)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    const batching_t bad[] = {
        {.max_batch_size = 0, .max_queue_delay_us = 0, .instances = 1, .threads = 1,
         .queue_capacity = 1},
        {.max_batch_size = 1, .max_queue_delay_us = -1, .instances = 1, .threads = 1,
         .queue_capacity = 1},
        {.max_batch_size = 1, .max_queue_delay_us = 0, .instances = 0, .threads = 1,
         .queue_capacity = 1},
        {.max_batch_size = 1, .max_queue_delay_us = 0, .instances = 1, .threads = 0,
         .queue_capacity = 1},
        {.max_batch_size = 1, .max_queue_delay_us = 0, .instances = 1, .threads = 1,
         .queue_capacity = 0},
        {.max_batch_size = -4, .max_queue_delay_us = 0, .instances = -1, .threads = 1,
         .queue_capacity = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sched_t *s = (sched_t *)&col; /* must be reset to NULL */
        char msg[256] = "";
        ic_err_t rc = sched_create(&s, c, &bad[i], on_done, &col, NULL, NULL, msg, sizeof msg);
        ck_assert_msg(rc == IC_ECONFIG, "settings %zu: %s", i, ic_errname(rc));
        ck_assert_ptr_null(s);
        ck_assert_str_ne(msg, "");
    }
    /* The smallest valid settings work (no batch callback, no delay). */
    sched_t *s = NULL;
    char msg[256] = "";
    batching_t ok = batching(1, 0, 1, 1);
    ck_assert_int_eq(sched_create(&s, c, &ok, on_done, &col, NULL, NULL, msg, sizeof msg),
                     IC_OK);
    ck_assert_int_eq(sched_warm_up(s, msg, sizeof msg), IC_OK);
    jobset_t js;
    jobset_tensors(&js, c, 1, 900);
    ck_assert_int_eq(sched_submit(s, js.jobs, 1), IC_OK);
    ck_assert(wait_done(&col, 1));
    assert_ran(&js, 0);
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), 1);
    sched_free(NULL);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

/* Two idle instances and 8 jobs at once with max_batch_size 8: what waits
 * is shared, so no batch holds more than 4 (not one batch of 8 while the
 * other instance looks on). Timing: the test sleeps after sched_create so
 * that both instance threads are idle before the jobs arrive; in every
 * interleaving after that, no batch can exceed 4. */
START_TEST(two_instances_share)
{
    classifier_t *c = open_model();
    collector_t col;
    collector_init(&col);
    sched_t *s = create(c, batching(8, LONG_DELAY_US, 2, 16), &col);
    char msg[256] = "";
    ck_assert_msg(sched_warm_up(s, msg, sizeof msg) == IC_OK, "warm-up: %s", msg);
    sleep_ms(500); /* both instances waiting for work */

    jobset_t js;
    jobset_tensors(&js, c, 8, 1000);
    ck_assert_int_eq(sched_submit(s, js.jobs, 8), IC_OK);
    ck_assert(wait_done(&col, 8));
    pthread_mutex_lock(&col.lock);
    int batches = col.batches, total = col.batch_total;
    int sizes[MAX_JOBS];
    memcpy(sizes, col.batch_sizes, sizeof sizes);
    pthread_mutex_unlock(&col.lock);
    ck_assert_int_eq(total, 8);
    ck_assert_int_ge(batches, 2);
    for (int i = 0; i < batches && i < MAX_JOBS; i++)
        ck_assert_msg(sizes[i] >= 1 && sizes[i] <= 4, "a batch of %d", sizes[i]);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(reports_of(&col, i), 1);
        assert_ran(&js, i);
        ck_assert_int_le(js.jobs[i].batch_size, 4);
    }
    sched_free(s);
    ck_assert_int_eq(check_outputs(c, &js, &col), col.batches);
    jobset_free(&js);
    collector_destroy(&col);
    classifier_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("scheduler");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_job_reported_once);
    tcase_add_test(tc, full_batch_runs_together);
    tcase_add_test(tc, batch_fills_within_delay);
    tcase_add_test(tc, lone_job_waits_the_delay);
    tcase_add_test(tc, queue_full);
    tcase_add_test(tc, cancel_queued);
    tcase_add_test(tc, expire_past_deadlines);
    tcase_add_test(tc, bad_image_among_good);
    tcase_add_test(tc, free_runs_queued_jobs);
    tcase_add_test(tc, invalid_settings_refused);
    tcase_add_test(tc, two_instances_share);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
