/* Test harness for the real daemon: starts build/imgclassd (env IMGCLASSD)
 * on a free loopback port with a model repository, waits until it is
 * ready, and talks to it with libcurl. */
#ifndef TEST_DAEMON_H
#define TEST_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

typedef struct td_daemon {
    pid_t pid;
    int port;
    char log_path[256];
    char base[64]; /* "http://127.0.0.1:PORT" */
} td_daemon_t;

/* Starts the daemon on models_dir with extra environment settings
 * ("IMGCLASSD_DRAIN_GRACE_MS=0", ...; NULL-terminated, may be NULL).
 * Waits up to timeout_s for /healthz, then (if wait_ready) for /readyz.
 * Fails the current check test on error. */
void td_start(td_daemon_t *d, const char *models_dir, const char *const *env,
              int wait_ready, int timeout_s);
/* The same, giving port, listen address and models folder as command-line
 * flags (--port, --listen, --models) instead of environment variables,
 * plus extra arguments (NULL-terminated, may be NULL). */
void td_start_flags(td_daemon_t *d, const char *models_dir, const char *const *env,
                    const char *const *args, int wait_ready, int timeout_s);
/* Sends sig and waits for the exit; returns the exit status (or 128+sig). */
int td_stop(td_daemon_t *d, int sig);
/* 1 if the log contains the text. */
int td_log_contains(const td_daemon_t *d, const char *text);

typedef struct td_response {
    long status;
    char *body;       /* NUL-terminated */
    size_t size;
    char headers[4096];
    int curl_code;    /* CURLcode of the transfer (0: it worked) */
} td_response_t;

/* One request. method "GET"/"POST"/...; content_type may be NULL (no
 * header); extra_header e.g. "X-Request-Id: abc" or NULL. Returns 0, or
 * -1 when the transfer failed (connection refused, ...). */
int td_request(const td_daemon_t *d, const char *method, const char *path,
               const char *content_type, const void *body, size_t size,
               const char *extra_header, td_response_t *out);
/* The same with a transfer timeout in milliseconds (0: 120 s). */
int td_request_ex(const td_daemon_t *d, const char *method, const char *path,
                  const char *content_type, const void *body, size_t size,
                  const char *extra_header, long timeout_ms, td_response_t *out);
/* multipart/form-data with n files under the field "image". */
int td_post_files(const td_daemon_t *d, const char *path, const char *const *files,
                  int n, td_response_t *out);
/* Sends raw bytes on a new connection and reads the reply until the
 * server closes it or timeout_ms passes, NUL-terminated into reply.
 * Returns the bytes read; for what a library client would not send. */
size_t td_raw_exchange(const td_daemon_t *d, const char *request, long timeout_ms,
                       char *reply, size_t size);
void td_response_free(td_response_t *r);
/* Value of a header in r->headers (case-insensitive), copied into buf. */
const char *td_header(const td_response_t *r, const char *name, char *buf, size_t size);

/* A loopback TCP port free right now. */
int td_free_port(void);
void td_sleep_ms(int ms);
/* Writes text to path (fails the test on error). */
void td_write_file(const char *path, const char *text);

/* Whole file into memory (malloc'ed); NULL on error. */
void *td_read_file(const char *path, size_t *size);

/* Value of a Prometheus sample in /metrics text, e.g.
 * "imgclassd_images_total{model=\"m\",status=\"ok\"}"; 0 when absent. */
double td_metric(const char *metrics_text, const char *sample);

#endif
