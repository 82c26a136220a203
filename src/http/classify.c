/* Classification requests; see classify.h. */
#include "http/classify.h"

#include <stdio.h>
#include <stdlib.h>

static void classify_free(void *state)
{
    classify_t *c = state;
    work_release(&c->work);
    free(c);
}

classify_t *classify_of(request_t *r)
{
    return r->handler_state;
}

int classify_top_k(const classify_t *c)
{
    const classifier_t *m = c->work.inf.model->c;
    int k = c->top_k > 0 ? c->top_k : m->cfg.top_k;
    return k < m->n_classes ? k : m->n_classes;
}

/* top_k from the query or the form, over what the JSON body said. Returns
 * 0, or -1 when it is not an integer in 1..classes. */
static int parse_top_k(request_t *r, classify_t *c, int classes)
{
    const char *q = request_query(r, "top_k");
    if (!q && r->body.has_top_k)
        q = r->body.top_k;
    if (q) {
        char *end;
        long long v = strtoll(q, &end, 10);
        if (end == q || *end)
            return -1;
        c->top_k = v < 1 ? -1 : v > 1000000000 ? 1000000000 : (int)v;
    }
    return c->top_k < 0 || c->top_k > classes ? -1 : 0;
}

void classify_run(request_t *r, int any_type, void (*answer)(request_t *r))
{
    served_model_t *m = submit_model(r);
    if (!m)
        return;
    classify_t *c = calloc(1, sizeof *c);
    if (!c) {
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    r->handler_state = c;
    r->free_handler_state = classify_free;
    char msg[512];
    ic_err_t rc = body_images(&r->body, request_header(r, MHD_HTTP_HEADER_CONTENT_TYPE),
                              any_type, &c->top_k, msg, sizeof msg);
    if (rc != IC_OK) {
        request_fail(r, rc, "%s", msg);
        return;
    }
    if (parse_top_k(r, c, m->c->n_classes)) {
        request_fail(r, IC_EPARAM, "top_k must be an integer from 1 to %d (the model's classes)",
                     m->c->n_classes);
        return;
    }
    int n = r->body.n_parts;
    if (n > r->svc->cfg->max_images_per_request) {
        request_fail(r, IC_ETOO_MANY_IMAGES, "%d images; at most %d per request", n,
                     r->svc->cfg->max_images_per_request);
        return;
    }
    if (infer_prepare(&c->work.inf, m, n) != IC_OK) {
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        c->work.inf.jobs[i].data = r->body.parts[i].data;
        c->work.inf.jobs[i].size = r->body.parts[i].size;
    }
    work_submit(r, &c->work, answer);
}
