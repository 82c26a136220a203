/* The API families, each a module that adds its routes to the router:
 *   v1.c          /v1/models..., classify, /healthz, /readyz
 *   torchserve.c  /predictions/{name}
 *   kserve.c      /v2...: KServe v2 / Open Inference Protocol
 *   prometheus.c  /metrics
 * Each returns IC_OK or IC_ENOMEM. */
#ifndef HTTP_HANDLERS_H
#define HTTP_HANDLERS_H

#include "classify/error.h"
#include "http/router.h"

ic_err_t v1_routes(router_t *rt);
ic_err_t torchserve_routes(router_t *rt);
ic_err_t kserve_routes(router_t *rt);
ic_err_t prometheus_routes(router_t *rt);

#endif
