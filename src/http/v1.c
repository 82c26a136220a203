/* The v1 API: classification, the model list and health. See openapi.yaml. */
#include <jansson.h>
#include <string.h>

#include "http/classify.h"
#include "http/handlers.h"
#include "http/status.h"
#include "util/clock.h"

/* ---- classify --------------------------------------------------------------------- */

/* One image's result: its predictions and timings, or its error. */
static json_t *result_json(const classify_t *c, int i, class_score_t *s, int64_t start_ns)
{
    const classifier_t *m = c->work.inf.model->c;
    const sched_job_t *j = &c->work.inf.jobs[i];
    if (j->status != IC_OK)
        return json_pack("{s:s, s:i}", "error", j->msg, "code", http_status(j->status));
    classifier_rank(m, c->work.inf.outputs + (size_t)i * m->out_elems, s);
    json_t *preds = json_array();
    for (int q = 0; q < classify_top_k(c) && preds; q++)
        json_array_append_new(preds, json_pack("{s:s, s:i, s:f}", "label",
                                               m->labels[s[q].index], "index", s[q].index,
                                               "score", (double)s[q].score));
    return json_pack("{s:o, s:{s:f, s:f, s:f, s:f}, s:i}", "predictions", preds, "timings",
                     "queue_ms", (double)(j->started_ns - j->queued_ns) / 1e6,
                     "preprocess_ms", (double)j->prepare_ns / 1e6, "inference_ms",
                     (double)j->infer_ns / 1e6, "total_ms",
                     (double)(clock_now_ns() - start_ns) / 1e6, "batch_size", j->batch_size);
}

/* {"model", "version", "request_id", "results": [...]}; when an image
 * failed, the first failure's status and message too. */
static void classify_answer(request_t *r)
{
    const classify_t *c = classify_of(r);
    const infer_t *inf = &c->work.inf;
    const classifier_t *m = inf->model->c;
    class_score_t *s = malloc((size_t)m->n_classes * sizeof *s);
    json_t *results = json_array();
    if (!s || !results) {
        free(s);
        json_decref(results);
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    const sched_job_t *failed = NULL;
    for (int i = 0; i < inf->n; i++) {
        if (!failed && inf->jobs[i].status != IC_OK)
            failed = &inf->jobs[i];
        json_array_append_new(results, result_json(c, i, s, r->start_ns));
    }
    free(s);
    int status = failed ? http_status(failed->status) : 200;
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "model", m->name, "version",
                             m->cfg.version, "request_id", r->id, "results", results);
    if (body && failed) {
        json_object_set_new(body, "error", json_string(failed->msg));
        json_object_set_new(body, "code", json_integer(status));
    }
    request_answer_json(r, status, body);
}

static void classify_end(request_t *r)
{
    classify_run(r, 0, classify_answer);
}

/* ---- models ----------------------------------------------------------------------- */

static json_t *model_json(const model_slot_t *slot)
{
    const served_model_t *sm = slot->current;
    const char *state = sm ? "ready" : slot->loading ? "loading" : "failed";
    json_t *o = json_pack("{s:s, s:s}", "name", slot->name, "state", state);
    if (!o)
        return NULL;
    if (slot->last_error)
        json_object_set_new(o, "last_error", json_string(slot->last_error));
    if (!sm)
        return o;
    const classifier_t *m = sm->c;
    const batching_t *b = &m->cfg.batching;
    const nn_tensor_info_t *in = nn_model_input(m->nn, 0);
    json_object_set_new(o, "version", json_string(m->cfg.version));
    json_object_set_new(o, "input", json_pack("{s:s, s:[i,i,i,i]}", "name", in->name,
                                              "shape", -1, m->channels, m->height,
                                              m->width));
    json_object_set_new(o, "classes", json_integer(m->n_classes));
    json_object_set_new(o, "output_is_probability", json_boolean(m->has_softmax));
    json_object_set_new(o, "batching",
                        json_pack("{s:i, s:i, s:i, s:i, s:i}", "max_batch_size",
                                  b->max_batch_size, "max_queue_delay_us",
                                  b->max_queue_delay_us, "instances", b->instances,
                                  "threads", b->threads, "queue_capacity",
                                  b->queue_capacity));
    json_object_set_new(o, "top_k", json_integer(m->cfg.top_k));
    json_object_set_new(o, "timeout_ms", json_integer(m->cfg.timeout_ms));
    json_object_set_new(o, "queue_depth", json_integer(sched_queue_depth(sm->sched)));
    return o;
}

static void models_begin(request_t *r)
{
    repository_t *repo = r->svc->repo;
    json_t *arr = json_array();
    for (int i = 0; arr && i < repo_count(repo); i++)
        json_array_append_new(arr, model_json(repo_slot(repo, i)));
    request_answer_json(r, 200, arr ? json_pack("{s:o}", "models", arr) : NULL);
}

/* The slot the path names, or NULL with the 404 answered. */
static model_slot_t *named_slot(request_t *r)
{
    model_slot_t *slot = repo_find(r->svc->repo, r->params.name);
    if (!slot)
        request_fail(r, IC_ENO_MODEL, "no model named '%s'", r->params.name);
    else
        request_set_model(r, slot->name);
    return slot;
}

static void model_begin(request_t *r)
{
    model_slot_t *slot = named_slot(r);
    if (slot)
        request_answer_json(r, 200, model_json(slot));
}

static void model_ready_begin(request_t *r)
{
    model_slot_t *slot = named_slot(r);
    if (!slot)
        return;
    int ready = slot->current && !r->svc->draining;
    request_answer_json(r, ready ? 200 : 503,
                        json_pack("{s:s, s:b}", "name", slot->name, "ready", ready));
}

/* ---- health ----------------------------------------------------------------------- */

static void healthz_begin(request_t *r)
{
    request_answer_json(r, 200, json_pack("{s:s, s:b}", "status", "alive", "live", 1));
}

static void readyz_begin(request_t *r)
{
    const char *why;
    int ready = service_ready(r->svc, &why);
    request_answer_json(r, ready ? 200 : 503,
                        json_pack("{s:s, s:b}", "status", why, "ready", ready));
}

#define GET (ROUTE_GET | ROUTE_HEAD)
static const route_t routes[] = {
    {"/healthz", GET, "healthz", ROUTE_OPEN_HEALTH, healthz_begin, NULL},
    {"/readyz", GET, "readyz", ROUTE_OPEN_HEALTH, readyz_begin, NULL},
    {"/v1/models", GET, "models", 0, models_begin, NULL},
    {"/v1/models/{name}:classify", ROUTE_POST, "classify", ROUTE_FORMS, submit_begin,
     classify_end},
    {"/v1/models/{name}/ready", GET, "model_ready", 0, model_ready_begin, NULL},
    {"/v1/models/{name}", GET, "model", 0, model_begin, NULL},
};

ic_err_t v1_routes(router_t *rt)
{
    return router_add(rt, routes, (int)(sizeof routes / sizeof routes[0]));
}
