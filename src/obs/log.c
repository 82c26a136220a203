/* Logging; see log.h. */
#include "obs/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void logger_init(logger_t *lg, const char *level, const char *format)
{
    lg->min = LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (level && !strcmp(level, level_names[i]))
            lg->min = (log_level_t)i;
    lg->json = format && !strcmp(format, "json");
}

static void timestamp(char *buf, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* Writes a JSON object as one line and frees it. */
static void emit_json(json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (text) {
        fprintf(stderr, "%s\n", text);
        free(text);
    }
    json_decref(o);
}

void log_msg(const logger_t *lg, log_level_t level, const char *fmt, ...)
{
    if (level < lg->min)
        return;
    char ts[40], line[2048];
    timestamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (lg->json)
        emit_json(json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
                            "msg", line));
    else
        fprintf(stderr, "%s %s %s\n", ts, level_names[level], line);
}

void log_access(const logger_t *lg, const access_entry_t *e)
{
    if (LOG_INFO < lg->min)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    if (lg->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:f}", "ts",
                              ts, "level", "info", "msg", "request", "request_id",
                              e->request_id, "method", e->method, "path", e->path,
                              "status", e->status, "bytes_in", (json_int_t)e->bytes_in,
                              "bytes_out", (json_int_t)e->bytes_out, "duration_ms",
                              e->duration_ms);
        if (o && e->client)
            json_object_set_new(o, "client", json_string(e->client));
        if (o && e->traceparent)
            json_object_set_new(o, "traceparent", json_string(e->traceparent));
        if (o && e->model) {
            json_object_set_new(o, "model", json_string(e->model));
            json_object_set_new(o, "images", json_integer(e->images));
            json_object_set_new(o, "batch_size", json_integer(e->batch_size));
            json_object_set_new(o, "queue_ms", json_real(e->queue_ms));
            json_object_set_new(o, "inference_ms", json_real(e->inference_ms));
        }
        if (o && e->aborted)
            json_object_set_new(o, "aborted", json_string(e->aborted));
        emit_json(o);
        return;
    }
    char model[400] = "";
    if (e->model)
        snprintf(model, sizeof model,
                 " model=%s images=%d batch_size=%d queue_ms=%.1f inference_ms=%.1f",
                 e->model, e->images, e->batch_size, e->queue_ms, e->inference_ms);
    fprintf(stderr,
            "%s info request id=%s method=%s path=%s status=%d bytes_in=%lld "
            "bytes_out=%lld ms=%.1f%s%s%s%s%s%s%s\n",
            ts, e->request_id, e->method, e->path, e->status, e->bytes_in, e->bytes_out,
            e->duration_ms, model, e->client ? " client=" : "", e->client ? e->client : "",
            e->traceparent ? " traceparent=" : "", e->traceparent ? e->traceparent : "",
            e->aborted ? " aborted=" : "", e->aborted ? e->aborted : "");
}
