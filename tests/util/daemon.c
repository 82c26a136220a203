/* Test harness for the real daemon; see daemon.h. */
#include "daemon.h"

#include "util/file.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int td_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

void td_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

size_t td_raw_exchange(const td_daemon_t *d, const char *request, long timeout_ms,
                       char *reply, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t len = strlen(request);
    ck_assert_int_eq(write(fd, request, len), (ssize_t)len);
    size_t got = 0;
    for (ssize_t n; got + 1 < size && (n = read(fd, reply + got, size - 1 - got)) > 0;)
        got += (size_t)n;
    reply[got] = 0;
    close(fd);
    return got;
}

static void start(td_daemon_t *d, const char *models_dir, const char *const *env,
                  const char *const *args, int use_flags, int wait_ready, int timeout_s);

void td_start(td_daemon_t *d, const char *models_dir, const char *const *env,
              int wait_ready, int timeout_s)
{
    start(d, models_dir, env, NULL, 0, wait_ready, timeout_s);
}

void td_start_flags(td_daemon_t *d, const char *models_dir, const char *const *env,
                    const char *const *args, int wait_ready, int timeout_s)
{
    start(d, models_dir, env, args, 1, wait_ready, timeout_s);
}

static void start(td_daemon_t *d, const char *models_dir, const char *const *env,
                  const char *const *args, int use_flags, int wait_ready, int timeout_s)
{
    const char *bin = getenv("IMGCLASSD") ? getenv("IMGCLASSD") : "build/imgclassd";
    memset(d, 0, sizeof *d);
    d->port = td_free_port();
    snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
    snprintf(d->log_path, sizeof d->log_path, "/tmp/imgclassd-test-%d-%d.log",
             (int)getpid(), d->port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(d->log_path, "w", stderr);
        if (!f)
            _exit(127);
        char port[32];
        snprintf(port, sizeof port, "%d", d->port);
        unsetenv("NOTIFY_SOCKET");
        const char *argv[64];
        int n = 0;
        argv[n++] = bin;
        if (use_flags) {
            const char *f[] = {"--port", port, "--listen", "127.0.0.1", "--models", models_dir};
            for (int i = 0; i < 6; i++)
                argv[n++] = f[i];
        } else {
            setenv("IMGCLASSD_PORT", port, 1);
            setenv("IMGCLASSD_LISTEN", "127.0.0.1", 1);
            setenv("IMGCLASSD_MODELS_DIR", models_dir, 1);
        }
        for (int i = 0; args && args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    const char *paths[2] = {"/healthz", "/readyz"};
    for (int p = 0; p < (wait_ready ? 2 : 1); p++) {
        int ok = 0;
        for (int t = 0; t < timeout_s * 20 && !ok; t++) {
            td_response_t r;
            if (td_request(d, "GET", paths[p], NULL, NULL, 0, NULL, &r) == 0)
                ok = r.status == 200;
            td_response_free(&r);
            int st;
            if (!ok && waitpid(pid, &st, WNOHANG) == pid)
                ck_abort_msg("imgclassd exited during start-up; see %s", d->log_path);
            if (!ok)
                td_sleep_ms(50);
        }
        ck_assert_msg(ok, "imgclassd did not answer %s in %d s; see %s", paths[p],
                      timeout_s, d->log_path);
    }
}

int td_stop(td_daemon_t *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    if (sig)
        kill(d->pid, sig);
    int st = 0;
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
        ;
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int td_log_contains(const td_daemon_t *d, const char *text)
{
    size_t n;
    char *s = td_read_file(d->log_path, &n);
    int found = s && strstr(s, text) != NULL;
    free(s);
    return found;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    td_response_t *r = arg;
    size_t len = size * n;
    char *b = realloc(r->body, r->size + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->size, p, len);
    r->body = b;
    r->size += len;
    r->body[r->size] = '\0';
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    td_response_t *r = arg;
    size_t len = size * n, have = strlen(r->headers);
    if (have + len < sizeof r->headers) {
        memcpy(r->headers + have, p, len);
        r->headers[have + len] = '\0';
    }
    return len;
}

static int perform(CURL *c, td_response_t *out, long timeout_ms)
{
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 120000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    out->curl_code = (int)rc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (!out->body) {
        out->body = calloc(1, 1);
    }
    /* A server may answer (413) and close before the whole body is sent:
     * curl then reports a send error but has the answer. */
    return rc == CURLE_OK || out->status > 0 ? 0 : -1;
}

int td_request(const td_daemon_t *d, const char *method, const char *path,
               const char *content_type, const void *body, size_t size,
               const char *extra_header, td_response_t *out)
{
    return td_request_ex(d, method, path, content_type, body, size, extra_header, 0,
                         out);
}

int td_request_ex(const td_daemon_t *d, const char *method, const char *path,
                  const char *content_type, const void *body, size_t size,
                  const char *extra_header, long timeout_ms, td_response_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[512], ct[256];
    snprintf(url, sizeof url, "%s%s", d->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *h = NULL;
    /* Without a Content-Type line curl would send its form default. */
    snprintf(ct, sizeof ct, "Content-Type:%s%s", content_type ? " " : "",
             content_type ? content_type : "");
    h = curl_slist_append(h, ct);
    h = curl_slist_append(h, "Expect:");
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    }
    int rc = perform(c, out, timeout_ms);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

int td_post_files(const td_daemon_t *d, const char *path, const char *const *files,
                  int n, td_response_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    char url[512];
    snprintf(url, sizeof url, "%s%s", d->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_mime *mime = curl_mime_init(c);
    for (int i = 0; i < n; i++) {
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, "image");
        curl_mime_filedata(part, files[i]);
    }
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    int rc = perform(c, out, 0);
    curl_slist_free_all(h);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    return rc;
}

void td_response_free(td_response_t *r)
{
    free(r->body);
    r->body = NULL;
}

const char *td_header(const td_response_t *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > n + 1 && strncasecmp(line, name, n) == 0 &&
            line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, size, "%.*s", (int)(end - v), v);
            return buf;
        }
        line = *end ? end + 2 : end;
    }
    return NULL;
}

void td_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

void *td_read_file(const char *path, size_t *size)
{
    void *data;
    if (util_read_file(path, &data, size))
        return NULL;
    /* Callers treat logs and TSV files as strings. */
    char *text = realloc(data, *size + 1);
    if (!text) {
        free(data);
        return NULL;
    }
    text[*size] = '\0';
    return text;
}

double td_metric(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, sample, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return 0;
}
