/* The router: method and path to a route, and nothing else.
 *
 * A route's pattern is literal text with at most one capture per path
 * segment: {name} or {version}, optionally followed by a literal suffix in
 * the same segment ("/v1/models/{name}:classify"). A capture takes one or
 * more characters and never a '/'; a capture that ends its segment takes
 * no ':' either (so "/v1/models/m:classify" is not the model "m:classify").
 * Routes are tried in the order they were added; the first whose pattern
 * matches the path decides. */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include <stddef.h>

#include "classify/error.h"

/* Methods, as a route's bit set. */
enum { ROUTE_GET = 1, ROUTE_HEAD = 2, ROUTE_POST = 4, ROUTE_PUT = 8, ROUTE_OPTIONS = 16 };

/* What the request layer does for a route before its handler runs. */
enum {
    ROUTE_KSERVE = 1,        /* errors in KServe v2's shape {"error": "..."} */
    ROUTE_OPEN_HEALTH = 2,   /* no token needed unless auth_health */
    ROUTE_OPEN_METRICS = 4,  /* no token needed unless auth_metrics */
    ROUTE_PROBE = 8,         /* a readiness probe: "no such model" is 400, not 404 */
    ROUTE_FORMS = 16,        /* multipart/form-data bodies are parsed as forms */
};

typedef struct request request_t;

typedef struct route {
    const char *pattern;
    unsigned methods;           /* ROUTE_GET | ROUTE_HEAD ... */
    const char *name;           /* the route label of the HTTP metrics */
    unsigned flags;             /* ROUTE_KSERVE ... */
    /* With the headers: answers (a GET), refuses, or readies the request
     * for its body. */
    void (*begin)(request_t *r);
    /* With the whole body, for routes that take one (NULL otherwise). */
    void (*end)(request_t *r);
} route_t;

typedef struct route_params {
    char name[160];    /* {name}, "" when the pattern has none */
    char version[64];  /* {version} */
} route_params_t;

typedef enum route_result {
    ROUTE_FOUND,       /* path and method match */
    ROUTE_NO_PATH,     /* no pattern matches the path */
    ROUTE_NO_METHOD,   /* a pattern matches; the method is not allowed */
} route_result_t;

typedef struct route_match {
    const route_t *route;   /* ROUTE_FOUND, ROUTE_NO_METHOD: the route matched */
    route_params_t params;
    unsigned allow;         /* ROUTE_NO_METHOD: the methods the route takes */
} route_match_t;

typedef struct router {
    const route_t **routes;
    int n, cap;
} router_t;

/* Adds n routes (borrowed: static tables). Returns IC_OK, IC_ECONFIG for
 * a pattern outside the syntax above, or IC_ENOMEM. */
ic_err_t router_add(router_t *rt, const route_t *routes, int n);
void router_free(router_t *rt);

/* Matches method ("GET", ...) and path (without the query). */
route_result_t router_match(const router_t *rt, const char *method, const char *path,
                            route_match_t *m);

/* The Allow header for a set of methods: "GET, HEAD", "POST, PUT". */
void router_allow(unsigned methods, char *buf, size_t size);

#endif
