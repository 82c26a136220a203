/* Submission and completion of inference jobs; see inference.h. */
#include "serve/inference.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

struct inference {
    uv_async_t wake;
    telemetry_t *tel;
    pthread_mutex_t lock;
    sched_job_t *head, *tail; /* finished jobs, oldest first, through done_next */
};

void inference_done(sched_job_t *job, void *arg)
{
    inference_t *q = arg;
    job->done_next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->done_next = job;
    else
        q->head = job;
    q->tail = job;
    pthread_mutex_unlock(&q->lock);
    uv_async_send(&q->wake);
}

/* The image's way through the model, for the metrics. */
static void report(inference_t *q, const sched_job_t *j)
{
    const classifier_t *c = ((const infer_t *)j->owner)->model->c;
    image_report_t r = {
        .status = j->status,
        .queue_s = (double)(j->started_ns - j->queued_ns) / 1e9,
        .prepare_s = (double)j->prepare_ns / 1e9,
        .total_s = (double)(j->finished_ns - j->queued_ns) / 1e9,
    };
    if (!j->tensor) {
        img_format_t f = img_sniff(j->data, j->size);
        r.format = f == IMG_FORMAT_JPEG ? "jpeg" : f == IMG_FORMAT_PNG ? "png" : "other";
    }
    telemetry_image(q->tel, c->name, c->cfg.version, &r);
}

/* Loop thread: everything finished so far, in the order it finished. */
static void on_wake(uv_async_t *a)
{
    inference_t *q = a->data;
    pthread_mutex_lock(&q->lock);
    sched_job_t *j = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (j) {
        sched_job_t *next = j->done_next;
        infer_t *inf = j->owner;
        report(q, j);
        if (++inf->n_done == inf->n)
            inf->done(inf, inf->arg); /* may release inf: j is not touched after */
        j = next;
    }
}

ic_err_t inference_create(inference_t **out, uv_loop_t *loop, telemetry_t *tel)
{
    *out = NULL;
    inference_t *q = calloc(1, sizeof *q);
    if (!q)
        return IC_ENOMEM;
    q->tel = tel;
    if (pthread_mutex_init(&q->lock, NULL)) {
        free(q);
        return IC_ESYSTEM;
    }
    if (uv_async_init(loop, &q->wake, on_wake)) {
        pthread_mutex_destroy(&q->lock);
        free(q);
        return IC_ESYSTEM;
    }
    q->wake.data = q;
    *out = q;
    return IC_OK;
}

void inference_close(inference_t *q)
{
    if (q && !uv_is_closing((uv_handle_t *)&q->wake))
        uv_close((uv_handle_t *)&q->wake, NULL);
}

void inference_free(inference_t *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q);
}

ic_err_t infer_prepare(infer_t *inf, served_model_t *m, int n)
{
    inf->model = m;
    inf->n = n;
    inf->jobs = calloc((size_t)n, sizeof *inf->jobs);
    inf->outputs = malloc((size_t)n * m->c->out_elems * sizeof *inf->outputs);
    return inf->jobs && inf->outputs ? IC_OK : IC_ENOMEM;
}

ic_err_t infer_submit(inference_t *q, infer_t *inf, infer_done_fn done, void *arg)
{
    served_model_t *m = inf->model;
    int64_t deadline = clock_now_ns() + (int64_t)m->c->cfg.timeout_ms * 1000000;
    for (int i = 0; i < inf->n; i++) {
        sched_job_t *j = &inf->jobs[i];
        j->deadline_ns = deadline;
        j->output = inf->outputs + (size_t)i * m->c->out_elems;
        j->owner = inf;
    }
    inf->done = done;
    inf->arg = arg;
    inf->n_done = 0;
    ic_err_t rc = sched_submit(m->sched, inf->jobs, inf->n);
    if (rc == IC_EQUEUE_FULL)
        telemetry_rejected(q->tel, m->c->name, inf->n);
    if (rc != IC_OK)
        return rc;
    repo_ref(m);
    inf->submitted = 1;
    return IC_OK;
}

void infer_cancel(infer_t *inf)
{
    for (int i = 0; inf->submitted && i < inf->n; i++)
        sched_cancel(inf->model->sched, &inf->jobs[i]);
}

void infer_release(infer_t *inf)
{
    if (inf->submitted)
        repo_unref(inf->model);
    free(inf->jobs);
    free(inf->outputs);
    memset(inf, 0, sizeof *inf);
}
