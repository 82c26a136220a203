/* TorchServe's inference API: POST or PUT /predictions/{name} with a raw
 * image (curl -T), answered {"label": score, ...} with the top k (a list
 * of those for several images). */
#include <jansson.h>
#include <stdlib.h>

#include "http/classify.h"
#include "http/handlers.h"

/* {label: score} of one image's top k, or NULL without memory. */
static json_t *scores_json(const classify_t *c, int i, class_score_t *s)
{
    const classifier_t *m = c->work.inf.model->c;
    classifier_rank(m, c->work.inf.outputs + (size_t)i * m->out_elems, s);
    json_t *o = json_object();
    for (int q = 0; q < classify_top_k(c) && o; q++)
        json_object_set_new(o, m->labels[s[q].index], json_real((double)s[q].score));
    return o;
}

static void predictions_answer(request_t *r)
{
    const classify_t *c = classify_of(r);
    const infer_t *inf = &c->work.inf;
    for (int i = 0; i < inf->n; i++)
        if (inf->jobs[i].status != IC_OK) {
            request_fail(r, inf->jobs[i].status, "%s", inf->jobs[i].msg);
            return;
        }
    class_score_t *s = malloc((size_t)inf->model->c->n_classes * sizeof *s);
    json_t *all = s ? json_array() : NULL;
    for (int i = 0; all && i < inf->n; i++)
        json_array_append_new(all, scores_json(c, i, s));
    free(s);
    if (!all) {
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    json_t *one = json_incref(json_array_get(all, 0));
    request_answer_json(r, 200, inf->n == 1 ? one : json_incref(all));
    if (inf->n != 1)
        json_decref(one);
    json_decref(all);
}

static void predictions_end(request_t *r)
{
    classify_run(r, 1, predictions_answer);
}

static const route_t routes[] = {
    /* TorchServe's documented client call is curl -T, a PUT. */
    {"/predictions/{name}", ROUTE_POST | ROUTE_PUT, "predictions", ROUTE_FORMS,
     submit_begin, predictions_end},
};

ic_err_t torchserve_routes(router_t *rt)
{
    return router_add(rt, routes, 1);
}
