/* imgclassd's metric families and their updates; see telemetry.h. */
#include "obs/telemetry.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const double latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const L_ROUTE_CODE[] = {"route", "code", NULL};
static const char *const L_ROUTE[] = {"route", NULL};
static const char *const L_MODEL[] = {"model", NULL};
static const char *const L_MODEL_STATUS[] = {"model", "status", NULL};
static const char *const L_MODEL_CODE[] = {"model", "code", NULL};
static const char *const L_MODEL_FORMAT[] = {"model", "format", NULL};
static const char *const L_MODEL_VERSION[] = {"model", "version", NULL};
static const char *const L_VERSION[] = {"version", NULL};

/* One family: where its pointer goes and how it is declared. */
typedef struct family_def {
    size_t offset;
    const char *name, *help;
    metric_type_t type;
    const char *const *labels;
    const double *buckets;
    int n_buckets;
} family_def_t;

#define F(field) offsetof(telemetry_t, field)
#define LATENCY latency_buckets, NB(latency_buckets)
/* In exposition order. */
static const family_def_t families[] = {
    {F(http_requests), "imgclassd_http_requests_total",
     "HTTP requests answered, by route and status code.", METRIC_COUNTER, L_ROUTE_CODE,
     NULL, 0},
    {F(http_duration), "imgclassd_http_request_duration_seconds",
     "Time from the request's arrival to its answer.", METRIC_HISTOGRAM, L_ROUTE, LATENCY},
    {F(images), "imgclassd_images_total",
     "Images by outcome: ok, bad_image, timeout, cancelled, rejected (queue full), "
     "shutdown, error.",
     METRIC_COUNTER, L_MODEL_STATUS, NULL, 0},
    {F(queue_s), "imgclassd_queue_duration_seconds",
     "Time an image waited in its model's queue.", METRIC_HISTOGRAM, L_MODEL, LATENCY},
    {F(infer_s), "imgclassd_inference_duration_seconds",
     "Time to run one batch through the model.", METRIC_HISTOGRAM, L_MODEL, LATENCY},
    {F(batch), "imgclassd_batch_size", "Images per batch run.", METRIC_HISTOGRAM, L_MODEL,
     batch_buckets, NB(batch_buckets)},
    {F(queue_depth), "imgclassd_queue_depth", "Images waiting in the model's queue.",
     METRIC_GAUGE, L_MODEL, NULL, 0},
    {F(queue_capacity), "imgclassd_queue_capacity",
     "Images the model's queue holds at most (queue_capacity).", METRIC_GAUGE, L_MODEL,
     NULL, 0},
    {F(model_ready), "imgclassd_model_ready", "1 when the model is loaded and serving.",
     METRIC_GAUGE, L_MODEL, NULL, 0},
    {F(load_fail), "imgclassd_model_load_failures_total",
     "Failed model loads (start-up or reload).", METRIC_COUNTER, L_MODEL, NULL, 0},
    {F(requests), "imgclassd_requests_total",
     "Inference requests answered, by model and status code.", METRIC_COUNTER,
     L_MODEL_CODE, NULL, 0},
    {F(request_s), "imgclassd_request_duration_seconds",
     "Inference request time from arrival to answer, by model.", METRIC_HISTOGRAM,
     L_MODEL, LATENCY},
    {F(prepare_s), "imgclassd_preprocess_duration_seconds",
     "Time to decode and preprocess one image.", METRIC_HISTOGRAM, L_MODEL, LATENCY},
    {F(in_flight), "imgclassd_in_flight_requests", "Requests received and not yet answered.",
     METRIC_GAUGE, NULL, NULL, 0},
    {F(decoded), "imgclassd_images_decoded_total",
     "Images received, by model and format (jpeg, png, other).", METRIC_COUNTER,
     L_MODEL_FORMAT, NULL, 0},
    {F(build_info), "imgclassd_build_info", "Version of the running imgclassd (value 1).",
     METRIC_GAUGE, L_VERSION, NULL, 0},
    {F(open_conns), "imgclassd_open_connections", "Open HTTP connections.", METRIC_GAUGE,
     NULL, NULL, 0},
    {F(process_cpu), "process_cpu_seconds_total",
     "Total user and system CPU time spent in seconds.", METRIC_COUNTER, NULL, NULL, 0},
    {F(process_rss), "process_resident_memory_bytes", "Resident memory size in bytes.",
     METRIC_GAUGE, NULL, NULL, 0},
    {F(process_start), "process_start_time_seconds",
     "Start time of the process since unix epoch in seconds.", METRIC_GAUGE, NULL, NULL, 0},
    {F(process_fds), "process_open_fds", "Number of open file descriptors.", METRIC_GAUGE,
     NULL, NULL, 0},
};

/* Triton's names, so that dashboards made for Triton work unchanged. */
static const family_def_t triton_families[] = {
    {F(t_success), "nv_inference_request_success",
     "Number of successful inference requests, all batch sizes", METRIC_COUNTER,
     L_MODEL_VERSION, NULL, 0},
    {F(t_failure), "nv_inference_request_failure",
     "Number of failed inference requests, all batch sizes", METRIC_COUNTER,
     L_MODEL_VERSION, NULL, 0},
    {F(t_count), "nv_inference_count",
     "Number of inferences performed (does not include cached requests)", METRIC_COUNTER,
     L_MODEL_VERSION, NULL, 0},
    {F(t_exec), "nv_inference_exec_count",
     "Number of model executions performed (does not include cached requests)",
     METRIC_COUNTER, L_MODEL_VERSION, NULL, 0},
    {F(t_pending), "nv_inference_pending_request_count",
     "Instantaneous number of pending requests awaiting execution per-model.",
     METRIC_GAUGE, L_MODEL_VERSION, NULL, 0},
    {F(t_request_us), "nv_inference_request_duration_us",
     "Cumulative inference request duration in microseconds (includes cached requests)",
     METRIC_COUNTER, L_MODEL_VERSION, NULL, 0},
    {F(t_queue_us), "nv_inference_queue_duration_us",
     "Cumulative inference queuing duration in microseconds (includes cached requests)",
     METRIC_COUNTER, L_MODEL_VERSION, NULL, 0},
    {F(t_compute_us), "nv_inference_compute_infer_duration_us",
     "Cumulative compute inference duration in microseconds (does not include cached "
     "requests)",
     METRIC_COUNTER, L_MODEL_VERSION, NULL, 0},
};
#undef F
#undef LATENCY

static int declare(telemetry_t *t, const family_def_t *defs, int n)
{
    for (int i = 0; i < n; i++) {
        const family_def_t *d = &defs[i];
        metric_family_t *f = metrics_family(t->registry, d->name, d->help, d->type,
                                            d->labels, d->buckets, d->n_buckets);
        if (!f)
            return -1;
        *(metric_family_t **)((char *)t + d->offset) = f;
    }
    return 0;
}

ic_err_t telemetry_init(telemetry_t *t, int triton, const char *version,
                        int64_t start_time_s)
{
    memset(t, 0, sizeof *t);
    t->triton = triton;
    t->start_time_s = start_time_s;
    if (!(t->registry = metrics_create()) || declare(t, families, NB(families)) ||
        (triton && declare(t, triton_families, NB(triton_families)))) {
        telemetry_free(t);
        return IC_ENOMEM;
    }
    metric_set(metrics_series(t->build_info, (const char *[]){version, NULL}), 1);
    return IC_OK;
}

void telemetry_free(telemetry_t *t)
{
    metrics_free(t->registry);
    memset(t, 0, sizeof *t);
}

static void add(metric_family_t *f, const char *const *labels, double v)
{
    metric_add(metrics_series(f, labels), v);
}

static void observe(metric_family_t *f, const char *const *labels, double v)
{
    metric_observe(metrics_series(f, labels), v);
}

/* ---- HTTP ------------------------------------------------------------------------- */

void telemetry_http(telemetry_t *t, const char *route, int status, double seconds)
{
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    add(t->http_requests, (const char *[]){route, code, NULL}, 1);
    observe(t->http_duration, (const char *[]){route, NULL}, seconds);
}

void telemetry_request(telemetry_t *t, const char *model, int status, double seconds)
{
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    add(t->requests, (const char *[]){model, code, NULL}, 1);
    observe(t->request_s, (const char *[]){model, NULL}, seconds);
}

void telemetry_open_connections(telemetry_t *t, int open)
{
    metric_set(metrics_series(t->open_conns, NULL), open);
}

/* ---- images and batches ----------------------------------------------------------- */

/* The imgclassd_images_total status of an image's outcome. */
static const char *outcome(ic_err_t status)
{
    switch (status) {
    case IC_OK: return "ok";
    case IC_EIMAGE_FORMAT:
    case IC_EIMAGE_CORRUPT:
    case IC_EIMAGE_SMALL:
    case IC_EIMAGE_LARGE:
    case IC_EPREPROCESS: return "bad_image";
    case IC_EDEADLINE: return "timeout";
    case IC_ECANCELLED: return "cancelled";
    case IC_EQUEUE_FULL: return "rejected";
    case IC_ESHUTDOWN: return "shutdown";
    default: return "error";
    }
}

void telemetry_image(telemetry_t *t, const char *model, const char *version,
                     const image_report_t *r)
{
    const char *const m[] = {model, NULL};
    add(t->images, (const char *[]){model, outcome(r->status), NULL}, 1);
    if (r->status == IC_OK)
        observe(t->queue_s, m, r->queue_s);
    if (r->prepare_s > 0)
        observe(t->prepare_s, m, r->prepare_s);
    if (r->format)
        add(t->decoded, (const char *[]){model, r->format, NULL}, 1);
    if (!t->triton)
        return;
    const char *const mv[] = {model, version, NULL};
    add(r->status == IC_OK ? t->t_success : t->t_failure, mv, 1);
    if (r->status == IC_OK) {
        add(t->t_count, mv, 1);
        add(t->t_queue_us, mv, r->queue_s * 1e6);
        add(t->t_request_us, mv, r->total_s * 1e6);
    }
}

void telemetry_rejected(telemetry_t *t, const char *model, int n)
{
    add(t->images, (const char *[]){model, outcome(IC_EQUEUE_FULL), NULL}, n);
}

void telemetry_batch(telemetry_t *t, const char *model, const char *version, int size,
                     double infer_s)
{
    const char *const m[] = {model, NULL};
    observe(t->batch, m, size);
    observe(t->infer_s, m, infer_s);
    if (t->triton) {
        const char *const mv[] = {model, version, NULL};
        add(t->t_exec, mv, 1);
        add(t->t_compute_us, mv, infer_s * 1e6);
    }
}

/* ---- models ----------------------------------------------------------------------- */

void telemetry_model_seen(telemetry_t *t, const char *model)
{
    add(t->load_fail, (const char *[]){model, NULL}, 0);
}

void telemetry_model_ready(telemetry_t *t, const char *model, int ready)
{
    metric_set(metrics_series(t->model_ready, (const char *[]){model, NULL}), ready);
}

void telemetry_model_load_failed(telemetry_t *t, const char *model)
{
    add(t->load_fail, (const char *[]){model, NULL}, 1);
}

void telemetry_model_removed(telemetry_t *t, const char *model)
{
    const char *const m[] = {model, NULL};
    metric_hide(metrics_series(t->model_ready, m));
    metric_hide(metrics_series(t->queue_depth, m));
    metric_hide(metrics_series(t->queue_capacity, m));
}

/* ---- scrape-time gauges ----------------------------------------------------------- */

void telemetry_queue(telemetry_t *t, const char *model, const char *version, int depth,
                     int capacity)
{
    const char *const m[] = {model, NULL};
    metric_set(metrics_series(t->queue_depth, m), depth);
    metric_set(metrics_series(t->queue_capacity, m), capacity);
    if (t->triton)
        metric_set(metrics_series(t->t_pending, (const char *[]){model, version, NULL}),
                   depth);
}

/* CPU seconds and resident bytes from /proc/self/stat. */
static void read_stat(telemetry_t *t)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return;
    unsigned long utime = 0, stime = 0;
    long rss = 0;
    /* Fields 14, 15 (utime, stime) and 24 (rss) after "pid (comm) ". */
    int n = fscanf(f,
                   "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                   "%lu %lu %*d %*d %*d %*d %*d %*d %*u %*u %ld",
                   &utime, &stime, &rss);
    fclose(f);
    if (n != 3)
        return;
    double tick = (double)sysconf(_SC_CLK_TCK);
    metric_set(metrics_series(t->process_cpu, NULL), (double)(utime + stime) / tick);
    metric_set(metrics_series(t->process_rss, NULL),
               (double)rss * (double)sysconf(_SC_PAGESIZE));
}

static void count_fds(telemetry_t *t)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    metric_set(metrics_series(t->process_fds, NULL), n - 3); /* ".", ".." and d's own */
}

void telemetry_process(telemetry_t *t, int in_flight_requests)
{
    read_stat(t);
    metric_set(metrics_series(t->process_start, NULL), (double)t->start_time_s);
    metric_set(metrics_series(t->in_flight, NULL), in_flight_requests);
    count_fds(t);
}

char *telemetry_render(telemetry_t *t, size_t *len)
{
    return metrics_render(t->registry, len);
}
