/* GET /metrics: the Prometheus text exposition (format 0.0.4). */
#include "http/handlers.h"
#include "http/request.h"

/* Gauges read at scrape time: every model's queue, the process. */
static void refresh_gauges(service_t *svc)
{
    for (int i = 0; i < repo_count(svc->repo); i++) {
        const served_model_t *m = repo_slot(svc->repo, i)->current;
        if (m)
            telemetry_queue(svc->tel, m->c->name, m->c->cfg.version,
                            sched_queue_depth(m->sched), m->c->cfg.batching.queue_capacity);
    }
    telemetry_process(svc->tel, svc->open_requests);
}

static void metrics_begin(request_t *r)
{
    refresh_gauges(r->svc);
    size_t len;
    char *text = telemetry_render(r->svc->tel, &len);
    if (!text) {
        request_fail(r, IC_ENOMEM, "out of memory");
        return;
    }
    request_answer_raw(r, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

static const route_t routes[] = {
    {"/metrics", ROUTE_GET | ROUTE_HEAD, "metrics", ROUTE_OPEN_METRICS, metrics_begin, NULL},
};

ic_err_t prometheus_routes(router_t *rt)
{
    return router_add(rt, routes, 1);
}
