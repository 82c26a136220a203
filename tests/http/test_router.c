/* The router (src/http/router.c), no socket: a router of test routes for
 * the pattern rules, then the daemon's own route tables (handlers.h),
 * registered in init_service's order (src/server.c), against a table of
 * real requests and against every operation of openapi.yaml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/router.h"
#include "util/testutil.h"

#define GET_HEAD (ROUTE_GET | ROUTE_HEAD)

/* ---- test routes ------------------------------------------------------------------- */

static const route_t test_routes[] = {
    {"/", GET_HEAD, "root", 0, NULL, NULL},
    {"/a/b", GET_HEAD, "ab", 0, NULL, NULL},
    {"/a/{name}", ROUTE_GET, "a_name", 0, NULL, NULL},
    {"/x/{name}:go", ROUTE_POST, "go", 0, NULL, NULL},
    {"/x/{name}", GET_HEAD, "x", 0, NULL, NULL},
    {"/v/{name}/versions/{version}", ROUTE_GET, "ver", 0, NULL, NULL},
    {"/v/{name}/versions/{version}/run", ROUTE_POST, "ver_run", 0, NULL, NULL},
    {"/file-{name}.png", ROUTE_GET, "file", 0, NULL, NULL},
    {"/put", ROUTE_POST | ROUTE_PUT, "put", 0, NULL, NULL},
    {"/opt", ROUTE_OPTIONS, "opt", 0, NULL, NULL},
};
#define N_TEST_ROUTES ((int)(sizeof test_routes / sizeof test_routes[0]))

static void make_test_router(router_t *rt)
{
    memset(rt, 0, sizeof *rt);
    ck_assert_int_eq(router_add(rt, test_routes, N_TEST_ROUTES), IC_OK);
    ck_assert_int_eq(rt->n, N_TEST_ROUTES);
}

/* One request and what it must give: the result, the route's name (NULL
 * for none), the captures and, for ROUTE_NO_METHOD, the Allow text. */
typedef struct expect {
    const char *method, *path;
    route_result_t result;
    const char *route;
    const char *name, *version;
    const char *allow;
} expect_t;

static const char *result_name(route_result_t r)
{
    return r == ROUTE_FOUND ? "FOUND" : r == ROUTE_NO_PATH ? "NO_PATH" : "NO_METHOD";
}

static void check_request(const router_t *rt, const expect_t *e)
{
    route_match_t m;
    memset(&m, 0xa5, sizeof m); /* router_match must set every field */
    route_result_t r = router_match(rt, e->method, e->path, &m);
    ck_assert_msg(r == e->result, "%s %s: %s, expected %s", e->method, e->path, result_name(r),
                  result_name(e->result));
    if (!e->route) {
        ck_assert_msg(m.route == NULL, "%s %s: matched route %s", e->method, e->path,
                      m.route->name);
    } else {
        ck_assert_msg(m.route != NULL, "%s %s: no route", e->method, e->path);
        ck_assert_msg(strcmp(m.route->name, e->route) == 0, "%s %s: route %s, expected %s",
                      e->method, e->path, m.route->name, e->route);
    }
    const char *name = e->name ? e->name : "", *version = e->version ? e->version : "";
    if (r != ROUTE_NO_PATH) {
        ck_assert_msg(strcmp(m.params.name, name) == 0, "%s %s: name '%s', expected '%s'",
                      e->method, e->path, m.params.name, name);
        ck_assert_msg(strcmp(m.params.version, version) == 0,
                      "%s %s: version '%s', expected '%s'", e->method, e->path,
                      m.params.version, version);
    }
    if (r == ROUTE_NO_METHOD) {
        char allow[64];
        router_allow(m.allow, allow, sizeof allow);
        ck_assert_msg(strcmp(allow, e->allow) == 0, "%s %s: Allow '%s', expected '%s'",
                      e->method, e->path, allow, e->allow);
        ck_assert_uint_eq(m.allow, m.route->methods);
    } else {
        ck_assert_uint_eq(m.allow, 0);
    }
}

#define FOUND(meth, path, route, name, version) \
    {meth, path, ROUTE_FOUND, route, name, version, NULL}
#define NO_METHOD(meth, path, route, name, version, allow) \
    {meth, path, ROUTE_NO_METHOD, route, name, version, allow}
#define NO_PATH(meth, path) {meth, path, ROUTE_NO_PATH, NULL, NULL, NULL, NULL}

START_TEST(literal_paths)
{
    router_t rt;
    make_test_router(&rt);
    static const expect_t cases[] = {
        FOUND("GET", "/", "root", NULL, NULL),
        FOUND("HEAD", "/", "root", NULL, NULL),
        FOUND("GET", "/a/b", "ab", NULL, NULL), /* before "/a/{name}": first added wins */
        FOUND("HEAD", "/a/b", "ab", NULL, NULL),
        NO_PATH("GET", "/a/b/"),
        NO_PATH("GET", "/a"),
        NO_PATH("GET", "/A/b"),
        NO_PATH("GET", ""),
        NO_PATH("GET", "//"),
        NO_PATH("GET", "/put/"),
        FOUND("POST", "/put", "put", NULL, NULL),
        FOUND("PUT", "/put", "put", NULL, NULL),
        FOUND("OPTIONS", "/opt", "opt", NULL, NULL),
        NO_METHOD("GET", "/opt", "opt", NULL, NULL, "OPTIONS"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_request(&rt, &cases[i]);
    router_free(&rt);
    ck_assert_ptr_null(rt.routes);
    ck_assert_int_eq(rt.n, 0);
}
END_TEST

START_TEST(captures)
{
    router_t rt;
    make_test_router(&rt);
    static const expect_t cases[] = {
        FOUND("GET", "/a/c", "a_name", "c", NULL),
        FOUND("GET", "/a/b.c", "a_name", "b.c", NULL),
        FOUND("GET", "/a/bb", "a_name", "bb", NULL),
        NO_METHOD("HEAD", "/a/c", "a_name", "c", NULL, "GET"),
        NO_PATH("GET", "/a/"),      /* a capture takes one character at least */
        NO_PATH("GET", "/a/c/d"),   /* and never a '/' */
        FOUND("GET", "/x/cat", "x", "cat", NULL),
        FOUND("HEAD", "/x/cat", "x", "cat", NULL),
        FOUND("GET", "/x/resnet-50_v1.5", "x", "resnet-50_v1.5", NULL),
        FOUND("GET", "/x/%3A", "x", "%3A", NULL),
        /* {name} with a literal suffix in its segment */
        FOUND("POST", "/x/cat:go", "go", "cat", NULL),
        FOUND("POST", "/x/c:a:t:go", "go", "c:a:t", NULL), /* before the suffix, ':' is fine */
        FOUND("POST", "/x/::go", "go", ":", NULL),
        NO_METHOD("GET", "/x/cat:go", "go", "cat", NULL, "POST"),
        NO_PATH("POST", "/x/:go"), /* empty before the suffix; "/x/{name}" takes no ':' */
        NO_PATH("POST", "/x/cat:go/"),
        /* a capture ending its segment takes no ':' */
        NO_PATH("GET", "/x/cat:stop"),
        NO_PATH("GET", "/x/:"),
        NO_PATH("GET", "/x/a:"),
        /* a literal prefix and suffix around the capture */
        FOUND("GET", "/file-cat.png", "file", "cat", NULL),
        FOUND("GET", "/file-a.b.png", "file", "a.b", NULL),
        FOUND("GET", "/file-a:b.png", "file", "a:b", NULL),
        NO_PATH("GET", "/file-.png"),
        NO_PATH("GET", "/file-cat.jpg"),
        NO_PATH("GET", "/file-cat.png/x"),
        /* {version} */
        FOUND("GET", "/v/m/versions/2", "ver", "m", "2"),
        FOUND("GET", "/v/m/versions/2024-01", "ver", "m", "2024-01"),
        FOUND("POST", "/v/m/versions/3/run", "ver_run", "m", "3"),
        NO_METHOD("POST", "/v/m/versions/2", "ver", "m", "2", "GET"),
        NO_PATH("GET", "/v/m/versions/"),
        NO_PATH("GET", "/v/m/versions"),
        NO_PATH("GET", "/v//versions/2"),
        NO_PATH("GET", "/v/m/versions/2:x"),
        NO_PATH("GET", "/v/m/versions/2/run/x"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_request(&rt, &cases[i]);
    router_free(&rt);
}
END_TEST

/* Methods: the route's bits decide; HEAD only where the route allows it;
 * other or unknown methods are ROUTE_NO_METHOD with the route's Allow. */
START_TEST(methods)
{
    router_t rt;
    make_test_router(&rt);
    static const expect_t cases[] = {
        NO_METHOD("DELETE", "/a/b", "ab", NULL, NULL, "GET, HEAD"),
        NO_METHOD("POST", "/a/b", "ab", NULL, NULL, "GET, HEAD"),
        NO_METHOD("PATCH", "/x/cat", "x", "cat", NULL, "GET, HEAD"),
        NO_METHOD("get", "/a/b", "ab", NULL, NULL, "GET, HEAD"), /* methods are case-sensitive */
        NO_METHOD("BREW", "/put", "put", NULL, NULL, "POST, PUT"),
        NO_METHOD("HEAD", "/put", "put", NULL, NULL, "POST, PUT"),
        NO_METHOD("", "/put", "put", NULL, NULL, "POST, PUT"),
        NO_METHOD("GETX", "/", "root", NULL, NULL, "GET, HEAD"),
        NO_PATH("DELETE", "/nope"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_request(&rt, &cases[i]);
    router_free(&rt);
}
END_TEST

/* A capture as long as its buffer allows matches; one more character
 * does not (it is not cut short). */
START_TEST(long_captures)
{
    router_t rt;
    make_test_router(&rt);
    route_params_t p;
    const size_t max_name = sizeof p.name - 1, max_version = sizeof p.version - 1;
    char name[400], path[600];
    route_match_t m;

    memset(name, 'n', max_name);
    name[max_name] = '\0';
    snprintf(path, sizeof path, "/x/%s", name);
    ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_FOUND);
    ck_assert_str_eq(m.params.name, name);
    snprintf(path, sizeof path, "/x/%s:go", name);
    ck_assert_int_eq(router_match(&rt, "POST", path, &m), ROUTE_FOUND);
    ck_assert_str_eq(m.params.name, name);

    memset(name, 'n', max_name + 1);
    name[max_name + 1] = '\0';
    snprintf(path, sizeof path, "/x/%s", name);
    ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_NO_PATH);
    ck_assert_ptr_null(m.route);
    snprintf(path, sizeof path, "/x/%s:go", name);
    ck_assert_int_eq(router_match(&rt, "POST", path, &m), ROUTE_NO_PATH);
    memset(name, 'n', 300);
    name[300] = '\0';
    snprintf(path, sizeof path, "/x/%s", name);
    ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_NO_PATH);

    memset(name, '7', max_version);
    name[max_version] = '\0';
    snprintf(path, sizeof path, "/v/m/versions/%s", name);
    ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_FOUND);
    ck_assert_str_eq(m.params.version, name);
    strcat(name, "7");
    snprintf(path, sizeof path, "/v/m/versions/%s", name);
    ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_NO_PATH);
    router_free(&rt);
}
END_TEST

/* Patterns outside the syntax are refused, and a table with one bad
 * pattern adds none of its routes. */
START_TEST(invalid_patterns)
{
    static const char *const bad[] = {
        "",
        "a/b",
        "x",
        "/x/{nam}",
        "/x/{names}",
        "/x/{name",
        "/x/{",
        "/x/name}",
        "/x/}",
        "/x/{}",
        "/x/{other}",
        "/x/{NAME}",
        "/x/{name}{version}",
        "/x/{name}-{version}",
        "/x/{version}:{name}",
        "/x/{name}/y/{name}{name}",
    };
    router_t rt;
    make_test_router(&rt);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        route_t r[2] = {
            {"/fine/{name}", ROUTE_GET, "fine", 0, NULL, NULL},
            {bad[i], ROUTE_GET, "bad", 0, NULL, NULL},
        };
        ck_assert_msg(router_add(&rt, r, 2) == IC_ECONFIG, "'%s' accepted", bad[i]);
        ck_assert_int_eq(rt.n, N_TEST_ROUTES);
    }
    route_match_t m;
    ck_assert_int_eq(router_match(&rt, "GET", "/fine/x", &m), ROUTE_NO_PATH);

    /* The syntax's corners that are valid. */
    static const route_t good[] = {
        {"/{name}", ROUTE_GET, "g1", 0, NULL, NULL},
        {"/{name}/{version}", ROUTE_GET, "g2", 0, NULL, NULL},
        {"/p{version}s", ROUTE_GET, "g3", 0, NULL, NULL},
        {"/a/{name}:b:c/{version}", ROUTE_GET, "g4", 0, NULL, NULL},
        {"/", ROUTE_GET, "g5", 0, NULL, NULL},
    };
    router_t rt2 = {0};
    ck_assert_int_eq(router_add(&rt2, good, 5), IC_OK);
    ck_assert_int_eq(router_match(&rt2, "GET", "/a/m:b:c/7", &m), ROUTE_FOUND);
    ck_assert_str_eq(m.route->name, "g4");
    ck_assert_str_eq(m.params.name, "m");
    ck_assert_str_eq(m.params.version, "7");
    router_free(&rt2);
    router_free(&rt);
}
END_TEST

/* Many tables, many routes: every one still found, in order. */
START_TEST(many_routes)
{
    static char patterns[100][32];
    static route_t routes[100];
    for (int i = 0; i < 100; i++) {
        snprintf(patterns[i], sizeof patterns[i], "/r%d/{name}", i);
        routes[i] = (route_t){patterns[i], ROUTE_GET, patterns[i], 0, NULL, NULL};
    }
    router_t rt = {0};
    for (int i = 0; i < 100; i += 10)
        ck_assert_int_eq(router_add(&rt, &routes[i], 10), IC_OK);
    ck_assert_int_eq(router_add(&rt, routes, 0), IC_OK);
    ck_assert_int_eq(rt.n, 100);
    for (int i = 0; i < 100; i++) {
        char path[64];
        snprintf(path, sizeof path, "/r%d/m%d", i, i);
        route_match_t m;
        ck_assert_int_eq(router_match(&rt, "GET", path, &m), ROUTE_FOUND);
        ck_assert_ptr_eq(m.route, &routes[i]);
        snprintf(path, sizeof path, "m%d", i);
        ck_assert_str_eq(m.params.name, path);
    }
    router_free(&rt);
}
END_TEST

START_TEST(allow_text)
{
    static const struct {
        unsigned bits;
        const char *text;
    } cases[] = {
        {ROUTE_GET | ROUTE_HEAD, "GET, HEAD"},
        {ROUTE_POST | ROUTE_PUT, "POST, PUT"},
        {ROUTE_POST, "POST"},
        {ROUTE_HEAD, "HEAD"},
        {ROUTE_OPTIONS | ROUTE_GET, "GET, OPTIONS"},
        {ROUTE_GET | ROUTE_HEAD | ROUTE_POST | ROUTE_PUT | ROUTE_OPTIONS,
         "GET, HEAD, POST, PUT, OPTIONS"},
        {0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        memset(buf, 'z', sizeof buf);
        router_allow(cases[i].bits, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].text);
    }
    /* A short buffer gets a prefix, NUL-terminated, and nothing beyond. */
    const char *full = "GET, HEAD, POST, PUT, OPTIONS";
    for (size_t size = 1; size <= strlen(full) + 1; size++) {
        char *buf = malloc(size); /* exact size: ASan sees any overflow */
        ck_assert_ptr_nonnull(buf);
        router_allow(0x1f, buf, size);
        ck_assert_uint_lt(strlen(buf), size);
        ck_assert_msg(strncmp(full, buf, strlen(buf)) == 0, "size %zu: '%s'", size, buf);
        free(buf);
    }
}
END_TEST

/* ---- the daemon's routes -------------------------------------------------------------- */

/* As init_service (src/server.c) does it. */
static void make_api_router(router_t *rt)
{
    memset(rt, 0, sizeof *rt);
    ck_assert_int_eq(v1_routes(rt), IC_OK);
    ck_assert_int_eq(torchserve_routes(rt), IC_OK);
    ck_assert_int_eq(kserve_routes(rt), IC_OK);
    ck_assert_int_eq(prometheus_routes(rt), IC_OK);
}

static const expect_t api_cases[] = {
    /* v1 */
    FOUND("GET", "/healthz", "healthz", NULL, NULL),
    FOUND("HEAD", "/healthz", "healthz", NULL, NULL),
    NO_METHOD("DELETE", "/healthz", "healthz", NULL, NULL, "GET, HEAD"),
    NO_METHOD("POST", "/healthz", "healthz", NULL, NULL, "GET, HEAD"),
    FOUND("GET", "/readyz", "readyz", NULL, NULL),
    FOUND("GET", "/v1/models", "models", NULL, NULL),
    FOUND("HEAD", "/v1/models", "models", NULL, NULL),
    NO_METHOD("POST", "/v1/models", "models", NULL, NULL, "GET, HEAD"),
    NO_METHOD("OPTIONS", "/v1/models", "models", NULL, NULL, "GET, HEAD"), /* CORS preflight */
    FOUND("POST", "/v1/models/m:classify", "classify", "m", NULL),
    FOUND("POST", "/v1/models/fashion-mnist:classify", "classify", "fashion-mnist", NULL),
    NO_METHOD("GET", "/v1/models/m:classify", "classify", "m", NULL, "POST"),
    NO_METHOD("PUT", "/v1/models/m:classify", "classify", "m", NULL, "POST"),
    NO_METHOD("OPTIONS", "/v1/models/m:classify", "classify", "m", NULL, "POST"),
    FOUND("GET", "/v1/models/m/ready", "model_ready", "m", NULL),
    FOUND("GET", "/v1/models/m", "model", "m", NULL),
    FOUND("HEAD", "/v1/models/m", "model", "m", NULL),
    FOUND("GET", "/v1/models/ready", "model", "ready", NULL), /* a model named "ready" */
    FOUND("GET", "/v1/models/resnet50_v1.5", "model", "resnet50_v1.5", NULL),
    NO_METHOD("POST", "/v1/models/m", "model", "m", NULL, "GET, HEAD"),
    NO_METHOD("DELETE", "/v1/models/m", "model", "m", NULL, "GET, HEAD"),
    NO_PATH("GET", "/v1/models/m:predict"),
    NO_PATH("POST", "/v1/models/m:predict"),
    NO_PATH("POST", "/v1/models/:classify"),
    NO_PATH("GET", "/v1/models/"),
    NO_PATH("GET", "/v1/models/m/"),
    NO_PATH("GET", "/v1/models/m/x"),
    NO_PATH("GET", "/v1"),
    NO_PATH("GET", "/v1/"),
    NO_PATH("GET", "/healthz/"),
    /* TorchServe */
    FOUND("POST", "/predictions/m", "predictions", "m", NULL),
    FOUND("PUT", "/predictions/m", "predictions", "m", NULL),
    NO_METHOD("GET", "/predictions/m", "predictions", "m", NULL, "POST, PUT"),
    NO_METHOD("HEAD", "/predictions/m", "predictions", "m", NULL, "POST, PUT"),
    NO_PATH("POST", "/predictions"),
    NO_PATH("POST", "/predictions/"),
    NO_PATH("POST", "/predictions/m/1.0"),
    /* KServe v2 */
    FOUND("GET", "/v2/health/live", "v2_live", NULL, NULL),
    FOUND("GET", "/v2/health/ready", "v2_ready", NULL, NULL),
    FOUND("HEAD", "/v2/health/ready", "v2_ready", NULL, NULL),
    FOUND("GET", "/v2", "v2_server", NULL, NULL),
    NO_METHOD("POST", "/v2", "v2_server", NULL, NULL, "GET, HEAD"),
    FOUND("GET", "/v2/models/m/ready", "v2_model_ready", "m", NULL),
    FOUND("GET", "/v2/models/m/versions/2/ready", "v2_model_ready", "m", "2"),
    FOUND("POST", "/v2/models/m/infer", "v2_infer", "m", NULL),
    FOUND("POST", "/v2/models/m/versions/2/infer", "v2_infer", "m", "2"),
    NO_METHOD("GET", "/v2/models/m/infer", "v2_infer", "m", NULL, "POST"),
    NO_METHOD("PUT", "/v2/models/m/versions/2/infer", "v2_infer", "m", "2", "POST"),
    FOUND("GET", "/v2/models/m", "v2_model", "m", NULL),
    FOUND("GET", "/v2/models/m/versions/2", "v2_model", "m", "2"),
    FOUND("GET", "/v2/models/stats", "v2_model", "stats", NULL),
    FOUND("GET", "/v2/models/m/versions/ready", "v2_model", "m", "ready"),
    NO_METHOD("POST", "/v2/models/m", "v2_model", "m", NULL, "GET, HEAD"),
    NO_PATH("GET", "/v2/"),
    NO_PATH("GET", "/v2/models"),
    NO_PATH("GET", "/v2/health"),
    NO_PATH("GET", "/v2/models/m/stats"),
    NO_PATH("GET", "/v2/models/m/versions"),
    NO_PATH("GET", "/v2/models/m/versions/"),
    NO_PATH("POST", "/v2/models/m/versions/2/infer/x"),
    /* Prometheus */
    FOUND("GET", "/metrics", "metrics", NULL, NULL),
    FOUND("HEAD", "/metrics", "metrics", NULL, NULL),
    NO_METHOD("POST", "/metrics", "metrics", NULL, NULL, "GET, HEAD"),
    NO_PATH("GET", "/metrics/"),
    /* elsewhere */
    NO_PATH("GET", "/nope"),
    NO_PATH("GET", "/"),
    NO_PATH("GET", ""),
    NO_PATH("DELETE", "/nope"),
};

START_TEST(api_requests)
{
    router_t rt;
    make_api_router(&rt);
    for (size_t i = 0; i < sizeof api_cases / sizeof api_cases[0]; i++)
        check_request(&rt, &api_cases[i]);
    router_free(&rt);
}
END_TEST

/* What the request layer reads from a route besides its name. */
START_TEST(api_route_flags)
{
    router_t rt;
    make_api_router(&rt);
    static const struct {
        const char *method, *path;
        unsigned flags;
        int has_body; /* end != NULL: the route takes a body */
    } cases[] = {
        {"GET", "/healthz", ROUTE_OPEN_HEALTH, 0},
        {"GET", "/readyz", ROUTE_OPEN_HEALTH, 0},
        {"GET", "/v1/models", 0, 0},
        {"POST", "/v1/models/m:classify", ROUTE_FORMS, 1},
        {"GET", "/v1/models/m/ready", 0, 0},
        {"GET", "/v1/models/m", 0, 0},
        {"POST", "/predictions/m", ROUTE_FORMS, 1},
        {"GET", "/v2/health/live", ROUTE_KSERVE | ROUTE_OPEN_HEALTH, 0},
        {"GET", "/v2/health/ready", ROUTE_KSERVE | ROUTE_OPEN_HEALTH, 0},
        {"GET", "/v2", ROUTE_KSERVE, 0},
        {"GET", "/v2/models/m/ready", ROUTE_KSERVE | ROUTE_PROBE, 0},
        {"GET", "/v2/models/m/versions/1/ready", ROUTE_KSERVE | ROUTE_PROBE, 0},
        {"POST", "/v2/models/m/infer", ROUTE_KSERVE, 1},
        {"POST", "/v2/models/m/versions/1/infer", ROUTE_KSERVE, 1},
        {"GET", "/v2/models/m", ROUTE_KSERVE, 0},
        {"GET", "/v2/models/m/versions/1", ROUTE_KSERVE, 0},
        {"GET", "/metrics", ROUTE_OPEN_METRICS, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        route_match_t m;
        ck_assert_int_eq(router_match(&rt, cases[i].method, cases[i].path, &m), ROUTE_FOUND);
        ck_assert_msg(m.route->flags == cases[i].flags, "%s %s: flags %#x, expected %#x",
                      cases[i].method, cases[i].path, m.route->flags, cases[i].flags);
        ck_assert_msg((m.route->end != NULL) == cases[i].has_body, "%s %s: end %s",
                      cases[i].method, cases[i].path, m.route->end ? "set" : "NULL");
        ck_assert_ptr_nonnull(m.route->begin);
    }
    router_free(&rt);
}
END_TEST

/* Every operation openapi.yaml documents is routed ({name} -> "m",
 * {version} -> "2"), and each of those paths refuses the methods it does
 * not document (HEAD aside: every GET route also answers HEAD). The file
 * is read line by line: "  /path:" opens a path, "    get:" an operation. */
START_TEST(api_covers_openapi)
{
    FILE *f = fopen("openapi.yaml", "r");
    ck_assert_msg(f != NULL, "openapi.yaml (run from the top of the repository)");
    router_t rt;
    make_api_router(&rt);
    static const struct {
        const char *yaml, *http;
        unsigned bit;
    } ops[] = {{"get", "GET", ROUTE_GET},
               {"post", "POST", ROUTE_POST},
               {"put", "PUT", ROUTE_PUT},
               {"head", "HEAD", ROUTE_HEAD},
               {"options", "OPTIONS", ROUTE_OPTIONS},
               {"delete", "DELETE", 0},
               {"patch", "PATCH", 0}};
    char line[512], path[256] = "";
    unsigned documented = 0;
    int in_paths = 0, n_paths = 0, n_ops = 0;
    /* Checks the path just closed: its methods are exactly the documented
     * ones (plus HEAD with GET). */
#define CLOSE_PATH()                                                                      \
    do {                                                                                  \
        if (path[0]) {                                                                    \
            route_match_t m;                                                              \
            ck_assert_msg(router_match(&rt, "DELETE", path, &m) == ROUTE_NO_METHOD,       \
                          "%s: not routed", path);                                        \
            unsigned want = documented | (documented & ROUTE_GET ? ROUTE_HEAD : 0);       \
            ck_assert_msg(m.allow == want, "%s: methods %#x, openapi.yaml %#x", path,     \
                          m.allow, want);                                                 \
            n_paths++;                                                                    \
        }                                                                                 \
        path[0] = '\0';                                                                   \
        documented = 0;                                                                   \
    } while (0)
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != ' ' && line[0] != '#') { /* a top-level key */
            CLOSE_PATH();
            in_paths = strcmp(line, "paths:") == 0;
            continue;
        }
        if (!in_paths)
            continue;
        size_t len = strlen(line);
        if (strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            CLOSE_PATH();
            /* The template with its parameters filled in. */
            size_t o = 0;
            for (size_t i = 2; i + 1 < len && o + 8 < sizeof path;) {
                if (!strncmp(line + i, "{name}", 6)) {
                    path[o++] = 'm';
                    i += 6;
                } else if (!strncmp(line + i, "{version}", 9)) {
                    path[o++] = '2';
                    i += 9;
                } else {
                    path[o++] = line[i++];
                }
            }
            path[o] = '\0';
            continue;
        }
        for (size_t k = 0; path[0] && k < sizeof ops / sizeof ops[0]; k++) {
            char key[32];
            snprintf(key, sizeof key, "    %s:", ops[k].yaml);
            if (strcmp(line, key) != 0)
                continue;
            route_match_t m;
            route_result_t r = router_match(&rt, ops[k].http, path, &m);
            ck_assert_msg(r == ROUTE_FOUND, "openapi.yaml: %s %s is %s", ops[k].http, path,
                          result_name(r));
            documented |= ops[k].bit;
            n_ops++;
        }
    }
    CLOSE_PATH();
#undef CLOSE_PATH
    fclose(f);
    /* The 17 paths and 18 operations of today's file (a parser gone
     * wrong would check nothing). */
    ck_assert_int_ge(n_paths, 17);
    ck_assert_int_ge(n_ops, 18);
    router_free(&rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, literal_paths);
    tcase_add_test(tc, captures);
    tcase_add_test(tc, methods);
    tcase_add_test(tc, long_captures);
    tcase_add_test(tc, invalid_patterns);
    tcase_add_test(tc, many_routes);
    tcase_add_test(tc, allow_text);
    tcase_add_test(tc, api_requests);
    tcase_add_test(tc, api_route_flags);
    tcase_add_test(tc, api_covers_openapi);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
