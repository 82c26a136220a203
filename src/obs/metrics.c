/* Prometheus metrics: see metrics.h.
 *
 * Concurrency: values live in C11 atomics (doubles as their uint64 bit
 * patterns), so updates never lock. Each family's series form a linked list
 * that only grows: a new series is fully built, then published with a
 * release store, so metrics_series() can look up without the mutex. The
 * mutex serializes creation (no duplicate series), the family list and
 * rendering. */
#include "obs/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric_series {
    metric_series_t *_Atomic next; /* release-published, see above */
    metric_family_t *family;
    char *values[METRIC_MAX_LABELS];
    /* Counter/gauge value, or histogram sum: bits of a double. */
    _Atomic uint64_t value;
    atomic_int hidden; /* left out of the exposition until updated again */
    /* Histogram: per-bucket (not cumulative) counts, the last one for
     * +Inf. An observation touches one slot; render adds them up, so the
     * +Inf bucket and _count always agree. */
    _Atomic unsigned long long slots[];
};

struct metric_family {
    metric_family_t *next;
    metrics_t *owner;
    char *name;
    char *help; /* NULL: no HELP line */
    metric_type_t type;
    int n_labels;
    char *labels[METRIC_MAX_LABELS];
    int n_buckets;
    double *buckets;
    metric_series_t *_Atomic series; /* head, release-published */
    metric_series_t *last;           /* under owner->lock */
};

struct metrics {
    pthread_mutex_t lock;
    metric_family_t *families, *last;
};

/* ---- doubles in atomics ------------------------------------------------ */

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double load_double(const _Atomic uint64_t *p)
{
    /* The cast drops const only for older compilers' atomic_load. */
    return from_bits(atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed));
}

static void add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        p, &old, to_bits(from_bits(old) + v), memory_order_relaxed,
        memory_order_relaxed))
        ; /* old was reloaded by the failed exchange */
}

/* ---- validation -------------------------------------------------------- */

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names the same without
 * ':'. Spelled out rather than isalpha() so the locale cannot widen it. */
static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon_ok && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Prometheus refuses a whole scrape whose label values or help are not
 * UTF-8, so bad text is refused here, where the caller can see it. */
static int valid_utf8(const char *str)
{
    static const uint32_t min_cp[] = { 0, 0x80, 0x800, 0x10000 };
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        int n;
        uint32_t cp;
        if (*s < 0x80) {
            s++;
            continue;
        } else if ((*s & 0xE0) == 0xC0) {
            n = 1, cp = *s & 0x1F;
        } else if ((*s & 0xF0) == 0xE0) {
            n = 2, cp = *s & 0x0F;
        } else if ((*s & 0xF8) == 0xF0) {
            n = 3, cp = *s & 0x07;
        } else {
            return 0;
        }
        s++;
        for (int i = 0; i < n; i++, s++) {
            if ((*s & 0xC0) != 0x80) /* also stops at the NUL */
                return 0;
            cp = cp << 6 | (*s & 0x3F);
        }
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0; /* overlong, out of range or a surrogate */
    }
    return 1;
}

/* Number of label names, or -1 if one is bad, repeated or too many. "le"
 * is the histogram bucket label; "__" names are reserved to Prometheus. */
static int count_labels(const char *const *labels)
{
    int n = 0;
    while (labels && labels[n]) {
        const char *l = labels[n];
        if (n == METRIC_MAX_LABELS || !valid_name(l, 0) ||
            strcmp(l, "le") == 0 || strncmp(l, "__", 2) == 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (strcmp(labels[i], l) == 0)
                return -1;
        n++;
    }
    return n;
}

/* Histogram bounds must be finite and strictly ascending (+Inf is
 * implicit); other types take none. */
static int valid_buckets(metric_type_t type, const double *b, int n)
{
    if (n < 0 || (n > 0 && !b))
        return 0;
    if (type != METRIC_HISTOGRAM)
        return n == 0;
    for (int i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return 0;
    return 1;
}

/* Is s the name of one of histogram base's sample series? */
static int is_histogram_part(const char *s, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(s, base, n) != 0)
        return 0;
    s += n;
    return strcmp(s, "_bucket") == 0 || strcmp(s, "_sum") == 0 ||
           strcmp(s, "_count") == 0;
}

/* Two families whose sample names would mix in one exposition. */
static int names_clash(const metric_family_t *f, const char *name,
                       metric_type_t type)
{
    return strcmp(f->name, name) == 0 ||
           (f->type == METRIC_HISTOGRAM && is_histogram_part(name, f->name)) ||
           (type == METRIC_HISTOGRAM && is_histogram_part(f->name, name));
}

/* ---- families ---------------------------------------------------------- */

metrics_t *metrics_create(void)
{
    metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void series_free(metric_series_t *s, int n_labels)
{
    for (int i = 0; i < n_labels; i++)
        free(s->values[i]);
    free(s);
}

static void family_free(metric_family_t *f)
{
    metric_series_t *s = atomic_load_explicit(&f->series, memory_order_relaxed);
    while (s) {
        metric_series_t *next = atomic_load_explicit(&s->next, memory_order_relaxed);
        series_free(s, f->n_labels);
        s = next;
    }
    for (int i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->buckets);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    metric_family_t *f = m->families;
    while (f) {
        metric_family_t *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* A family with copies of the declaration; NULL on no memory. */
static metric_family_t *family_new(metrics_t *m, const char *name,
                                   const char *help, metric_type_t type,
                                   const char *const *labels, int n_labels,
                                   const double *buckets, int n_buckets)
{
    metric_family_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->owner = m;
    f->type = type;
    atomic_init(&f->series, NULL);
    int ok = (f->name = strdup(name)) != NULL;
    if (ok && help && *help)
        ok = (f->help = strdup(help)) != NULL;
    f->n_labels = n_labels; /* slots left NULL by a failure free as no-ops */
    for (int i = 0; ok && i < n_labels; i++)
        ok = (f->labels[i] = strdup(labels[i])) != NULL;
    if (ok && n_buckets > 0) {
        ok = (f->buckets = malloc((size_t)n_buckets * sizeof *buckets)) != NULL;
        if (ok) {
            memcpy(f->buckets, buckets, (size_t)n_buckets * sizeof *buckets);
            f->n_buckets = n_buckets;
        }
    }
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

metric_family_t *metrics_family(metrics_t *m, const char *name, const char *help,
                                metric_type_t type, const char *const *labels,
                                const double *buckets, int n_buckets)
{
    int n_labels = count_labels(labels);
    if (!m || !valid_name(name, 1) || n_labels < 0 ||
        (help && !valid_utf8(help)) ||
        (type != METRIC_COUNTER && type != METRIC_GAUGE &&
         type != METRIC_HISTOGRAM) ||
        !valid_buckets(type, buckets, n_buckets))
        return NULL;

    pthread_mutex_lock(&m->lock);
    metric_family_t *f = NULL;
    int clash = 0;
    for (metric_family_t *g = m->families; g && !clash; g = g->next)
        clash = names_clash(g, name, type);
    if (!clash)
        f = family_new(m, name, help, type, labels, n_labels, buckets, n_buckets);
    if (f) {
        if (m->last)
            m->last->next = f;
        else
            m->families = f;
        m->last = f;
    }
    pthread_mutex_unlock(&m->lock);
    return f;
}

/* ---- series ------------------------------------------------------------ */

static int values_ok(const metric_family_t *f, const char *const *values)
{
    if (f->n_labels > 0 && !values)
        return 0;
    for (int i = 0; i < f->n_labels; i++)
        if (!values[i] || !valid_utf8(values[i]))
            return 0;
    return 1;
}

static metric_series_t *find_series(metric_family_t *f, const char *const *values)
{
    metric_series_t *s = atomic_load_explicit(&f->series, memory_order_acquire);
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        int i = 0;
        while (i < f->n_labels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == f->n_labels)
            return s;
    }
    return NULL;
}

static metric_series_t *series_new(metric_family_t *f, const char *const *values)
{
    int n_slots = f->type == METRIC_HISTOGRAM ? f->n_buckets + 1 : 0;
    metric_series_t *s = calloc(1, sizeof *s + (size_t)n_slots * sizeof s->slots[0]);
    if (!s)
        return NULL;
    s->family = f;
    atomic_init(&s->next, NULL);
    atomic_init(&s->value, to_bits(0.0));
    for (int i = 0; i < n_slots; i++)
        atomic_init(&s->slots[i], 0);
    for (int i = 0; i < f->n_labels; i++) {
        if (!(s->values[i] = strdup(values[i]))) {
            series_free(s, i);
            return NULL;
        }
    }
    return s;
}

metric_series_t *metrics_series(metric_family_t *f, const char *const *values)
{
    if (!f || !values_ok(f, values))
        return NULL;
    metric_series_t *s = find_series(f, values);
    if (s)
        return s;

    pthread_mutex_lock(&f->owner->lock);
    s = find_series(f, values); /* another thread may have just made it */
    if (!s && (s = series_new(f, values))) {
        if (f->last)
            atomic_store_explicit(&f->last->next, s, memory_order_release);
        else
            atomic_store_explicit(&f->series, s, memory_order_release);
        f->last = s;
    }
    pthread_mutex_unlock(&f->owner->lock);
    return s;
}

/* ---- updates ----------------------------------------------------------- */

void metric_add(metric_series_t *s, double v)
{
    if (!s || s->family->type == METRIC_HISTOGRAM)
        return;
    /* A counter only goes up: a decrease (or NaN) would read as a reset. */
    if (s->family->type == METRIC_COUNTER && !(v >= 0))
        return;
    add_double(&s->value, v);
    atomic_store_explicit(&s->hidden, 0, memory_order_relaxed);
}

void metric_set(metric_series_t *s, double v)
{
    if (!s || s->family->type == METRIC_HISTOGRAM)
        return;
    atomic_store_explicit(&s->value, to_bits(v), memory_order_relaxed);
    atomic_store_explicit(&s->hidden, 0, memory_order_relaxed);
}

void metric_hide(metric_series_t *s)
{
    if (s)
        atomic_store_explicit(&s->hidden, 1, memory_order_relaxed);
}

void metric_observe(metric_series_t *s, double v)
{
    if (!s || s->family->type != METRIC_HISTOGRAM)
        return;
    const metric_family_t *f = s->family;
    int i = 0;
    while (i < f->n_buckets && !(v <= f->buckets[i]))
        i++; /* upper bounds are inclusive; NaN lands in +Inf */
    atomic_fetch_add_explicit(&s->slots[i], 1, memory_order_relaxed);
    add_double(&s->value, v);
}

double metric_value(const metric_series_t *s)
{
    return s ? load_double(&s->value) : 0.0;
}

unsigned long long metric_count(const metric_series_t *s)
{
    if (!s || s->family->type != METRIC_HISTOGRAM)
        return 0;
    unsigned long long n = 0;
    for (int i = 0; i <= s->family->n_buckets; i++)
        n += atomic_load_explicit((_Atomic unsigned long long *)&s->slots[i],
                                  memory_order_relaxed);
    return n;
}

/* ---- exposition -------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the result is dropped */
} buf_t;

static void buf_putn(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(buf_t *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

/* Backslash and newline are escaped in help; label values (quoted) also
 * escape the double quote. */
static void buf_escaped(buf_t *b, const char *s, int quoted)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (*s == '"' && quoted)
            buf_puts(b, "\\\"");
        else
            buf_putn(b, s, 1);
    }
}

/* A double as Prometheus (Go's ParseFloat) reads it: integers without an
 * exponent while exact, others in the shortest %g form that reads back
 * as the same double. Assumes the "C" numeric locale (the daemon never
 * calls setlocale). */
static void format_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == trunc(v) && fabs(v) < 9007199254740992.0 /* 2^53 */) {
        snprintf(out, size, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, size, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* name{labels[,le="..."]} value */
static void render_sample(buf_t *b, const metric_series_t *s, const char *suffix,
                          const char *le, const char *value)
{
    const metric_family_t *f = s->family;
    buf_puts(b, f->name);
    buf_puts(b, suffix);
    if (f->n_labels > 0 || le) {
        buf_puts(b, "{");
        for (int i = 0; i < f->n_labels; i++) {
            buf_puts(b, i ? "," : "");
            buf_puts(b, f->labels[i]);
            buf_puts(b, "=\"");
            buf_escaped(b, s->values[i], 1);
            buf_puts(b, "\"");
        }
        if (le) {
            buf_puts(b, f->n_labels ? ",le=\"" : "le=\"");
            buf_puts(b, le);
            buf_puts(b, "\"");
        }
        buf_puts(b, "}");
    }
    buf_puts(b, " ");
    buf_puts(b, value);
    buf_puts(b, "\n");
}

static void render_histogram(buf_t *b, const metric_series_t *s)
{
    const metric_family_t *f = s->family;
    char le[40], num[40];
    unsigned long long total = 0;
    for (int i = 0; i <= f->n_buckets; i++) {
        total += atomic_load_explicit((_Atomic unsigned long long *)&s->slots[i],
                                      memory_order_relaxed);
        if (i < f->n_buckets)
            format_double(le, sizeof le, f->buckets[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(num, sizeof num, "%llu", total);
        render_sample(b, s, "_bucket", le, num);
    }
    format_double(num, sizeof num, load_double(&s->value));
    render_sample(b, s, "_sum", NULL, num);
    snprintf(num, sizeof num, "%llu", total);
    render_sample(b, s, "_count", NULL, num);
}

static void render_family(buf_t *b, const metric_family_t *f)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    if (f->help) {
        buf_puts(b, "# HELP ");
        buf_puts(b, f->name);
        buf_puts(b, " ");
        buf_escaped(b, f->help, 0);
        buf_puts(b, "\n");
    }
    buf_puts(b, "# TYPE ");
    buf_puts(b, f->name);
    buf_puts(b, " ");
    buf_puts(b, type_names[f->type]);
    buf_puts(b, "\n");

    metric_series_t *s = atomic_load_explicit(&f->series, memory_order_acquire);
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        if (atomic_load_explicit(&s->hidden, memory_order_relaxed))
            continue;
        if (f->type == METRIC_HISTOGRAM) {
            render_histogram(b, s);
        } else {
            char num[40];
            format_double(num, sizeof num, load_double(&s->value));
            render_sample(b, s, "", NULL, num);
        }
    }
}

char *metrics_render(metrics_t *m, size_t *len)
{
    if (!m)
        return NULL;
    buf_t b = { 0 };
    buf_putn(&b, "", 0); /* an empty registry still gives a string */
    pthread_mutex_lock(&m->lock);
    for (const metric_family_t *f = m->families; f; f = f->next)
        render_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
