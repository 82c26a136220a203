/* Prometheus metrics: counters, gauges and histograms with labels, and
 * their text exposition (format 0.0.4).
 *
 * Families are declared once at start (name, help, type, label names,
 * bucket bounds); series are created on first use for a label-value set.
 * Updates are lock-free atomics so that workers and the event loop both
 * record without contention; creating a series takes a mutex. */
#ifndef OBS_METRICS_H
#define OBS_METRICS_H

#include <stddef.h>

typedef struct metrics metrics_t;
typedef struct metric_family metric_family_t;
typedef struct metric_series metric_series_t;

typedef enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type_t;

#define METRIC_MAX_LABELS 4

metrics_t *metrics_create(void);
void metrics_free(metrics_t *m);

/* Declares a family. labels: up to METRIC_MAX_LABELS label names, NULL
 * terminated (or NULL for none). buckets: ascending upper bounds of a
 * histogram (+Inf is implicit), n_buckets of them; NULL/0 otherwise.
 * Returns NULL on a bad declaration or no memory.
 *
 * Bad declarations: name not [a-zA-Z_:][a-zA-Z0-9_:]*; a label name not
 * [a-zA-Z_][a-zA-Z0-9_]*, repeated, "le" or starting with "__"; more
 * than METRIC_MAX_LABELS labels; bounds not finite and strictly
 * ascending (a histogram may have none: only +Inf), or bounds given to a
 * counter or gauge; help not UTF-8; a name already declared, or one that
 * clashes with a histogram's samples (h_bucket, h_sum, h_count of h).
 * By convention counter names end in _total (not enforced). help may be
 * NULL or "": then no HELP line is written. Thread-safe, but meant for
 * start-up. The family lives until metrics_free. */
metric_family_t *metrics_family(metrics_t *m, const char *name, const char *help,
                                metric_type_t type, const char *const *labels,
                                const double *buckets, int n_buckets);

/* The series for these label values (as many as the family has labels;
 * values are escaped on output). Created on first use. NULL on no memory,
 * on f NULL, or on a value NULL or not UTF-8 (values may be NULL for a
 * family without labels). Safe from any thread; callers should cache the
 * pointer, valid until metrics_free. */
metric_series_t *metrics_series(metric_family_t *f, const char *const *values);

/* Updates: lock-free, safe from any thread; no-ops on a NULL series or
 * one of the wrong type. A counter ignores a negative or NaN add (it may
 * only go up). A histogram bucket's bound is inclusive (v <= le). */
void metric_add(metric_series_t *s, double v);     /* counter, gauge */
/* Gauge; or a counter kept elsewhere and mirrored here (the process's CPU
 * time), whose caller guarantees it never goes down. */
void metric_set(metric_series_t *s, double v);
/* Leaves the series out of the exposition (a model removed from the
 * repository) until it is updated again. Series are never freed before
 * metrics_free, so pointers held by other threads stay valid. */
void metric_hide(metric_series_t *s);
void metric_observe(metric_series_t *s, double v); /* histogram */
/* Counter, gauge: the value; histogram: the sum of observations; 0 for
 * a NULL series. */
double metric_value(const metric_series_t *s);
/* Histogram: total count of observations (0 for other types or NULL). */
unsigned long long metric_count(const metric_series_t *s);

/* Writes the exposition into a malloc'ed, NUL-terminated buffer (*len
 * bytes without the NUL; len may be NULL). Returns NULL on no memory or
 * m NULL. Families in declaration order, series in creation order; a
 * family without series gives only its HELP and TYPE lines. May run
 * while other threads update: each number is a valid snapshot, a
 * histogram's +Inf bucket always equals its _count, but series may be
 * read at slightly different moments. Numbers: integers up to 2^53
 * without exponent, others in the shortest form that round-trips,
 * +Inf, -Inf, NaN. */
char *metrics_render(metrics_t *m, size_t *len);

#endif
