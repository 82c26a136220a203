/* Logging on stderr: leveled messages and one access-log line per request,
 * as plain text or as JSON lines (for log shippers). Each line is written
 * with one call so that lines from several threads never interleave. */
#ifndef OBS_LOG_H
#define OBS_LOG_H

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

typedef struct logger {
    log_level_t min;
    int json;
} logger_t;

/* level: "debug".."error"; format: "text" or "json" (unknown: info, text). */
void logger_init(logger_t *lg, const char *level, const char *format);

void log_msg(const logger_t *lg, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct access_entry {
    const char *request_id, *traceparent, *client, *method, *path, *model;
    int status;
    long long bytes_in, bytes_out;
    int images, batch_size; /* batch_size: largest batch an image ran in */
    double queue_ms, inference_ms, duration_ms;
    const char *aborted;    /* NULL, "client" or "error" */
} access_entry_t;

void log_access(const logger_t *lg, const access_entry_t *e);

#endif
