/* Method and path to a route; see router.h. */
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", ROUTE_GET}, {"HEAD", ROUTE_HEAD}, {"POST", ROUTE_POST},
    {"PUT", ROUTE_PUT}, {"OPTIONS", ROUTE_OPTIONS},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

static unsigned method_bit(const char *method)
{
    for (size_t i = 0; i < N_METHODS; i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

/* The capture "{name}" or "{version}" at pat: its buffer in p and the
 * pattern after it, or NULL when it is neither. */
static const char *capture_at(const char *pat, route_params_t *p, char **buf, size_t *size)
{
    if (strncmp(pat, "{name}", 6) == 0) {
        *buf = p->name;
        *size = sizeof p->name;
        return pat + 6;
    }
    if (strncmp(pat, "{version}", 9) == 0) {
        *buf = p->version;
        *size = sizeof p->version;
        return pat + 9;
    }
    return NULL;
}

/* Whether path matches pat, filling p's captures. */
static int match_pattern(const char *pat, const char *path, route_params_t *p)
{
    while (*pat) {
        char *buf;
        size_t size;
        const char *after = *pat == '{' ? capture_at(pat, p, &buf, &size) : NULL;
        if (!after) {
            if (*pat++ != *path++)
                return 0;
            continue;
        }
        size_t suffix = strcspn(after, "/");
        size_t seg = strcspn(path, "/");
        if (seg <= suffix || strncmp(path + seg - suffix, after, suffix) != 0)
            return 0;
        size_t n = seg - suffix;
        if (n >= size || (suffix == 0 && memchr(path, ':', n)))
            return 0;
        memcpy(buf, path, n);
        buf[n] = '\0';
        path += seg;
        pat = after + suffix;
    }
    return *path == '\0';
}

/* A pattern is literal text and whole captures, at most one per segment. */
static int valid_pattern(const char *pat)
{
    if (pat[0] != '/')
        return 0;
    int in_segment = 0; /* captures in the current segment */
    route_params_t p;
    char *buf;
    size_t size;
    for (const char *c = pat; *c;) {
        if (*c == '/') {
            in_segment = 0;
            c++;
        } else if (*c == '{') {
            const char *after = capture_at(c, &p, &buf, &size);
            if (!after || in_segment++)
                return 0;
            c = after;
        } else if (*c == '}') {
            return 0;
        } else {
            c++;
        }
    }
    return 1;
}

ic_err_t router_add(router_t *rt, const route_t *routes, int n)
{
    for (int i = 0; i < n; i++)
        if (!valid_pattern(routes[i].pattern))
            return IC_ECONFIG;
    if (rt->n + n > rt->cap) {
        int cap = rt->cap ? rt->cap : 16;
        while (cap < rt->n + n)
            cap *= 2;
        const route_t **r = realloc(rt->routes, (size_t)cap * sizeof *r);
        if (!r)
            return IC_ENOMEM;
        rt->routes = r;
        rt->cap = cap;
    }
    for (int i = 0; i < n; i++)
        rt->routes[rt->n++] = &routes[i];
    return IC_OK;
}

void router_free(router_t *rt)
{
    free(rt->routes);
    memset(rt, 0, sizeof *rt);
}

route_result_t router_match(const router_t *rt, const char *method, const char *path,
                            route_match_t *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < rt->n; i++) {
        route_params_t p = {{0}, {0}};
        if (!match_pattern(rt->routes[i]->pattern, path, &p))
            continue;
        m->route = rt->routes[i];
        m->params = p;
        if (method_bit(method) & m->route->methods)
            return ROUTE_FOUND;
        m->allow = m->route->methods;
        return ROUTE_NO_METHOD;
    }
    return ROUTE_NO_PATH;
}

void router_allow(unsigned bits, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_METHODS && at < size; i++)
        if (bits & methods[i].bit)
            at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "",
                                   methods[i].name);
}
