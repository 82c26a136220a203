/* Readiness and the drain's grace; see service.h. */
#include "http/service.h"

#include "util/clock.h"

int service_ready(const service_t *s, const char **why)
{
    if (s->draining) {
        *why = "draining";
        return 0;
    }
    return repo_ready(s->repo, why);
}

int service_refuses_work(const service_t *s)
{
    return s->draining &&
           (clock_now_ns() - s->drain_start_ns) / 1000000 >= s->drain_grace_ms;
}
