/* Handler-side submission; see submit.h. */
#include "http/submit.h"

#include "http/status.h"

void submit_begin(request_t *r)
{
    r->inference = 1;
    if (!repo_find(r->svc->repo, r->params.name))
        request_fail(r, IC_ENO_MODEL, "no model named '%s'", r->params.name);
}

served_model_t *submit_model(request_t *r)
{
    const char *name = r->params.name;
    if (service_refuses_work(r->svc)) {
        r->retry_after = "1";
        request_fail(r, IC_ESHUTDOWN, "shutting down; send new work elsewhere");
        return NULL;
    }
    model_slot_t *slot = repo_find(r->svc->repo, name);
    request_set_model(r, slot ? slot->name : NULL);
    if (!slot) {
        request_fail(r, IC_ENO_MODEL, "no model named '%s'", name);
        return NULL;
    }
    if (slot->current)
        return slot->current;
    r->retry_after = "5";
    request_fail(r, IC_ENOT_LOADED, "model '%s' is not loaded%s%s", name,
                 slot->last_error ? ": " : " yet", slot->last_error ? slot->last_error : "");
    return NULL;
}

static void work_back(infer_t *inf, void *arg)
{
    work_t *w = arg;
    request_note_inference(w->r, inf);
    w->r->on_hangup = NULL;
    w->answer(w->r);
    request_resume(w->r);
}

static void work_cancel(void *arg)
{
    work_t *w = arg;
    infer_cancel(&w->inf);
}

void work_submit(request_t *r, work_t *w, void (*answer)(request_t *r))
{
    w->r = r;
    w->answer = answer;
    ic_err_t rc = infer_submit(r->svc->inference, &w->inf, work_back, w);
    if (rc == IC_EQUEUE_FULL) {
        r->retry_after = "1";
        request_fail(r, rc, "model '%s' is overloaded (queue full); retry later",
                     w->inf.model->c->name);
        return;
    }
    if (rc != IC_OK) {
        request_fail(r, rc, "%s", ic_strerror(rc));
        return;
    }
    r->on_hangup = work_cancel;
    r->hangup_arg = w;
    request_suspend(r);
}

void work_release(work_t *w)
{
    infer_release(&w->inf);
}
