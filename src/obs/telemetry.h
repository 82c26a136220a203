/* imgclassd's metrics: the families it exports (imgclassd_*, process_*,
 * and Triton's nv_inference_* when asked for) and one function per event
 * that updates them. Every metric name, label and unit lives here; the
 * modules that observe an event call these with plain values.
 *
 * Updates are safe from any thread (metrics.h); telemetry_render and
 * telemetry_process read /proc and are for the loop thread. */
#ifndef OBS_TELEMETRY_H
#define OBS_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "classify/error.h"
#include "obs/metrics.h"

typedef struct telemetry {
    metrics_t *registry;
    int triton;               /* Triton's names are exported too */
    int64_t start_time_s;     /* process start, Unix time */
    metric_family_t *http_requests, *http_duration, *images, *queue_s, *infer_s, *batch,
        *queue_depth, *queue_capacity, *model_ready, *load_fail, *requests, *request_s,
        *prepare_s, *in_flight, *decoded, *build_info, *open_conns, *process_cpu,
        *process_rss, *process_start, *process_fds;
    metric_family_t *t_success, *t_failure, *t_count, *t_exec, *t_pending, *t_request_us,
        *t_queue_us, *t_compute_us;
} telemetry_t;

/* Declares every family; version goes into imgclassd_build_info. Returns
 * IC_OK or IC_ENOMEM. */
ic_err_t telemetry_init(telemetry_t *t, int triton, const char *version,
                        int64_t start_time_s);
void telemetry_free(telemetry_t *t);

/* An HTTP request answered: its route's name, status and time. */
void telemetry_http(telemetry_t *t, const char *route, int status, double seconds);
/* An inference request answered (as well as telemetry_http). */
void telemetry_request(telemetry_t *t, const char *model, int status, double seconds);
void telemetry_open_connections(telemetry_t *t, int open);

/* One image's way through a model, reported once it is over. */
typedef struct image_report {
    ic_err_t status;
    const char *format;  /* "jpeg", "png", "other"; NULL: a tensor (not decoded) */
    double queue_s;      /* waited in the queue */
    double prepare_s;    /* decoding and preprocessing (0: none) */
    double total_s;      /* from submission to the end */
} image_report_t;
void telemetry_image(telemetry_t *t, const char *model, const char *version,
                     const image_report_t *r);
/* n images refused because the model's queue was full. */
void telemetry_rejected(telemetry_t *t, const char *model, int n);
/* One batch run. */
void telemetry_batch(telemetry_t *t, const char *model, const char *version, int size,
                     double infer_s);

/* The repository's events. model_seen makes a model's series exist before
 * anything happens to it (so that rate() sees a first failure). */
void telemetry_model_seen(telemetry_t *t, const char *model);
void telemetry_model_ready(telemetry_t *t, const char *model, int ready);
void telemetry_model_load_failed(telemetry_t *t, const char *model);
void telemetry_model_removed(telemetry_t *t, const char *model);

/* Gauges read at scrape time: a model's queue, the process. */
void telemetry_queue(telemetry_t *t, const char *model, const char *version, int depth,
                     int capacity);
void telemetry_process(telemetry_t *t, int in_flight_requests);

/* The exposition text (malloc'ed, *len bytes), or NULL without memory. */
char *telemetry_render(telemetry_t *t, size_t *len);

#endif
