/* td_check_openapi: the body into a temporary file, then
 * /usr/bin/python3 tests/tools/check_openapi.py openapi.yaml METHOD PATH
 * STATUS FILE [CONTENT_TYPE], run without a shell (the path may hold any
 * character), with its output captured for the failure message. */
#include "openapi.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define OPENAPI_PYTHON "/usr/bin/python3"
#define OPENAPI_SCRIPT "tests/tools/check_openapi.py"
#define OPENAPI_SPEC "openapi.yaml"

/* Writes all of data to fd; 0 or -1. */
static int write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Runs the checker on the body file; its stdout and stderr go into out
 * (truncated to out_size). Returns its exit status, or -1 with out set
 * when it could not be run. */
static int run_checker(const char *method, const char *path, long status,
                       const char *body_path, const char *content_type, char *out,
                       size_t out_size)
{
    char status_text[24];
    snprintf(status_text, sizeof status_text, "%ld", status);
    int pipefd[2];
    if (pipe(pipefd) != 0) {
        snprintf(out, out_size, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL); /* nothing buffered is written twice by the child */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out, out_size, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        char *const argv[] = {(char *)OPENAPI_PYTHON, (char *)OPENAPI_SCRIPT,
                              (char *)OPENAPI_SPEC,   (char *)method,
                              (char *)path,           status_text,
                              (char *)body_path,      (char *)content_type,
                              NULL};
        execv(OPENAPI_PYTHON, argv);
        fprintf(stderr, "cannot run %s: %s\n", OPENAPI_PYTHON, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        /* Keep what fits; read the rest so that the child never blocks. */
        size_t room = out_size - 1 - len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(out + len, buf, take);
        len += take;
    }
    out[len] = '\0';
    close(pipefd[0]);
    int wstatus;
    while (waitpid(pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            snprintf(out, out_size, "waitpid: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    snprintf(out + len, out_size - len, "%s(killed by signal %d)", len ? "\n" : "",
             WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : -1);
    return -1;
}

void td_check_openapi(const char *method, const char *path, long status,
                      const char *body)
{
    td_check_openapi_typed(method, path, status, body, body ? strlen(body) : 0, NULL);
}

void td_check_openapi_typed(const char *method, const char *path, long status,
                            const char *body, size_t size, const char *content_type)
{
    /* Everything the failure message needs is on the stack: ck_abort_msg
     * does not return, and nothing is left allocated or open before it. */
    char msg[8192];
    char body_path[] = "/tmp/imgclassd-openapi-XXXXXX";
    int fd = mkstemp(body_path);
    if (fd < 0)
        ck_abort_msg("openapi: mkstemp: %s", strerror(errno));
    int wrote = body ? write_all(fd, body, size) : 0;
    int closed = close(fd);
    int rc;
    if (wrote != 0 || closed != 0) {
        snprintf(msg, sizeof msg, "cannot write %s: %s", body_path, strerror(errno));
        rc = -1;
    } else {
        rc = run_checker(method, path, status, body_path, content_type, msg, sizeof msg);
    }
    unlink(body_path);
    if (rc != 0) {
        /* Drop the checker's trailing newline. */
        size_t n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
            msg[--n] = '\0';
        ck_abort_msg("%s %s answered %ld, not as openapi.yaml says (check_openapi.py "
                     "exit %d):\n%s",
                     method, path, status, rc, msg);
    }
}
