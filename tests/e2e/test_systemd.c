/* The daemon and systemd's notification protocol, checked from systemd's
 * side: each test binds its own NOTIFY_SOCKET (an AF_UNIX datagram socket,
 * as the service manager does), starts build/imgclassd (env IMGCLASSD) on
 * tests/models (tu_test_models) with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID set, and
 * reads what it sends:
 *   - READY=1 only once the models are loaded (/readyz is 200 when it comes),
 *     or with a "not ready" STATUS when a model fails to load;
 *   - WATCHDOG=1 at least every WATCHDOG_USEC, from the main process only,
 *     and not at all when WATCHDOG_PID names another process;
 *   - SIGHUP: RELOADING=1 then READY=1, and a model added to the repository
 *     is served when that READY=1 comes;
 *   - SIGTERM: STOPPING=1, /readyz 503, then exit status 0.
 * (tests/util/daemon.c unsets NOTIFY_SOCKET, so the daemon is started here.) */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/daemon.h"
#include "util/testutil.h"

#define WATCHDOG_USEC 200000

static const char *bin(void)
{
    return getenv("IMGCLASSD") ? getenv("IMGCLASSD") : "build/imgclassd";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


/* ---- clean-up when a test fails ----------------------------------------------------------
 * A failed assertion ends the test's process at once (check forks one per
 * test and leaves with _exit), so the suite's process cleans up after each
 * test: every temporary folder is made inside g_work, and every daemon
 * started leaves a PID file there until it is stopped. The daemon's log
 * stays in /tmp for the failure message. */

static char g_work[32];

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void work_setup(void)
{
    snprintf(g_work, sizeof g_work, "/tmp/imgclassd-systemd-XXXXXX");
    if (!mkdtemp(g_work)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Kills daemons a failed test left running (their PID files), empties g_work. */
static void work_clean(void)
{
    DIR *dir = opendir(g_work);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        int pid;
        char cmdline[256] = "", path[128];
        if (sscanf(e->d_name, "%d.pid", &pid) != 1 || pid <= 1)
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(cmdline, 1, sizeof cmdline - 1, f);
            cmdline[n] = '\0';
            fclose(f);
        }
        if (strstr(cmdline, "imgclassd")) {
            kill(pid, SIGKILL);
        }
    }
    if (dir)
        closedir(dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", g_work);
    if (system(cmd) != 0)
        fprintf(stderr, "could not empty %s\n", g_work);
}

static void work_teardown(void)
{
    work_clean();
    rm_rf(g_work);
}

static void pid_file(pid_t pid, int create)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%d.pid", g_work, (int)pid);
    if (create) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    } else {
        unlink(path);
    }
}

/* ---- the service manager's end ------------------------------------------------------ */

typedef struct notifier {
    int fd;
    char dir[48];
    char path[64];
} notifier_t;

typedef struct message {
    char text[1024];
    pid_t pid; /* sender, from SCM_CREDENTIALS */
    double t;
} message_t;

static void notifier_open(notifier_t *n)
{
    snprintf(n->dir, sizeof n->dir, "%s/notify-XXXXXX", g_work);
    ck_assert_ptr_nonnull(mkdtemp(n->dir));
    snprintf(n->path, sizeof n->path, "%s/notify", n->dir);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(n->fd, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", n->path);
    ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1; /* the kernel attaches the sender's pid, as for systemd */
    ck_assert_int_eq(setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
}

static void notifier_close(notifier_t *n)
{
    close(n->fd);
    unlink(n->path);
    rmdir(n->dir);
}

/* One datagram within timeout_ms: 1, or 0 on timeout. */
static int notifier_recv(notifier_t *n, int timeout_ms, message_t *m)
{
    struct pollfd p = {.fd = n->fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r <= 0)
        return 0;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct iovec iov = {.iov_base = m->text, .iov_len = sizeof m->text - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                        .msg_controllen = sizeof control};
    ssize_t len = recvmsg(n->fd, &mh, 0);
    ck_assert_int_ge(len, 0);
    m->text[len] = '\0';
    m->t = now_s();
    m->pid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof uc);
            m->pid = uc.pid;
        }
    return 1;
}

/* 1 if the message has the line (e.g. "READY=1"). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

/* ---- the daemon ------------------------------------------------------------------------ */

/* Starts the daemon with NOTIFY_SOCKET; WATCHDOG_PID is the child's own pid,
 * or watchdog_pid when that is not 0. Does not wait. */
static void start(td_daemon_t *d, const notifier_t *n, const char *models_dir,
                  pid_t watchdog_pid, const char *const *env)
{
    memset(d, 0, sizeof *d);
    d->port = td_free_port();
    snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
    snprintf(d->log_path, sizeof d->log_path, "/tmp/imgclassd-test-%d-%d.log", (int)getpid(),
             d->port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen(d->log_path, "w", stderr))
            _exit(127);
        char port[32], wpid[32], wusec[32];
        snprintf(port, sizeof port, "%d", d->port);
        snprintf(wpid, sizeof wpid, "%d", (int)(watchdog_pid ? watchdog_pid : getpid()));
        snprintf(wusec, sizeof wusec, "%d", WATCHDOG_USEC);
        setenv("NOTIFY_SOCKET", n->path, 1);
        setenv("WATCHDOG_USEC", wusec, 1);
        setenv("WATCHDOG_PID", wpid, 1);
        setenv("IMGCLASSD_PORT", port, 1);
        setenv("IMGCLASSD_LISTEN", "127.0.0.1", 1);
        setenv("IMGCLASSD_MODELS_DIR", models_dir, 1);
        setenv("IMGCLASSD_LOG_REQUESTS", "false", 1);
        setenv("IMGCLASSD_DRAIN_GRACE_MS", "300", 1);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execl(bin(), bin(), (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    pid_file(pid, 1);
}

/* SIGTERM (or sig) and the exit status; the log is removed when it is 0. */
static int stop(td_daemon_t *d, int sig)
{
    pid_t pid = d->pid;
    int status = td_stop(d, sig);
    pid_file(pid, 0);
    if (status == 0)
        unlink(d->log_path);
    return status;
}

/* Reads until a message with `line` (WATCHDOG=1 messages are counted and
 * skipped unless line is "WATCHDOG=1"); fails after timeout_s or when the
 * daemon exits. Other messages on the way are appended to `seen`. */
static void expect(notifier_t *n, td_daemon_t *d, const char *line, double timeout_s,
                   message_t *out, char *seen, size_t seen_size, int *watchdogs)
{
    double end = now_s() + timeout_s;
    for (;;) {
        double left = end - now_s();
        ck_assert_msg(left > 0, "no %s within %.1f s (other messages: %s); see %s", line,
                      timeout_s, seen && *seen ? seen : "none", d->log_path);
        int st;
        if (notifier_recv(n, left > 0.1 ? 100 : (int)(left * 1000) + 1, out)) {
            ck_assert_msg(out->pid == d->pid, "message \"%s\" from pid %d, not the daemon's %d",
                          out->text, (int)out->pid, (int)d->pid);
            if (has_line(out->text, line))
                return;
            if (has_line(out->text, "WATCHDOG=1")) {
                if (watchdogs)
                    (*watchdogs)++;
                continue;
            }
            if (seen) {
                size_t have = strlen(seen);
                snprintf(seen + have, seen_size - have, "%s[%s]", have ? " " : "", out->text);
            }
        } else if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            ck_abort_msg("imgclassd exited while waiting for %s; see %s", line, d->log_path);
        }
    }
}

static long get_status(const td_daemon_t *d, const char *path)
{
    td_response_t r;
    long status = td_request_ex(d, "GET", path, NULL, NULL, 0, NULL, 5000, &r) == 0 ? r.status
                                                                                     : -1;
    td_response_free(&r);
    return status;
}

static int add_model_link(const char *repo, const char *name)
{
    char target[1200], link[256];
    snprintf(target, sizeof target, "%s/%s", tu_test_models(), name);
    snprintf(link, sizeof link, "%s/%s", repo, name);
    return symlink(target, link);
}

/* /readyz's status code, and its "status" text into why. */
static long get_readyz(const td_daemon_t *d, char *why, size_t size)
{
    td_response_t r;
    snprintf(why, size, "?");
    if (td_request_ex(d, "GET", "/readyz", NULL, NULL, 0, NULL, 5000, &r) != 0) {
        td_response_free(&r);
        return -1;
    }
    json_t *j = json_loads(r.body, 0, NULL);
    const char *s = json_string_value(json_object_get(j, "status"));
    snprintf(why, size, "%s", s ? s : r.body);
    json_decref(j);
    long status = r.status;
    td_response_free(&r);
    return status;
}

/* GET /v1/models/NAME's "state" (ready, loading, failed), or "absent". */
static void model_state(const td_daemon_t *d, const char *name, char *state, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/models/%s", name);
    td_response_t r;
    snprintf(state, size, "absent");
    if (td_request_ex(d, "GET", path, NULL, NULL, 0, NULL, 5000, &r) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "state"));
        snprintf(state, size, "%s", s ? s : "?");
        json_decref(j);
    }
    td_response_free(&r);
}

/* A model repository: symlinks to the test repository's <name> folders
 * (tu_test_models: tests/models with absolute paths into SHARED). */
static void make_repo(char *dir, size_t size, const char *const *models)
{
    snprintf(dir, size, "%s/repo-XXXXXX", g_work);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; models[i]; i++)
        ck_assert_int_eq(add_model_link(dir, models[i]), 0);
}

static void remove_repo(const char *dir)
{
    rm_rf(dir);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Start, watchdog, reload, stop: the whole life cycle of one daemon. */
START_TEST(life_cycle)
{
    notifier_t n;
    notifier_open(&n);
    td_daemon_t d;
    start(&d, &n, tu_test_models(), 0, NULL);
    message_t m;
    char seen[4096] = "";

    /* READY=1 once every model is loaded, and not before: /readyz answers 200
     * right away, and the message says so. */
    double t0 = now_s();
    expect(&n, &d, "READY=1", 120, &m, seen, sizeof seen, NULL);
    ck_assert_msg(!strstr(seen, "STOPPING=1") && !strstr(seen, "RELOADING=1"),
                  "before READY=1: %s", seen);
    ck_assert_int_eq(get_status(&d, "/readyz"), 200);
    ck_assert_msg(has_line(m.text, "STATUS=serving"), "READY=1 without STATUS=serving: %s",
                  m.text);
    ck_assert(td_log_contains(&d, "ready: "));
    printf("READY=1 after %.2f s\n", m.t - t0);

    /* WATCHDOG=1 from the event loop, at least once per WATCHDOG_USEC. */
    double start_t = now_s(), last = 0, max_gap = 0;
    int count = 0;
    while (now_s() - start_t < 1.0) {
        if (!notifier_recv(&n, 300, &m))
            break;
        ck_assert_msg(has_line(m.text, "WATCHDOG=1"), "unexpected message: %s", m.text);
        ck_assert_int_eq(m.pid, d.pid);
        if (count++ > 0 && m.t - last > max_gap)
            max_gap = m.t - last;
        last = m.t;
    }
    printf("WATCHDOG=1: %d in 1 s, largest gap %.0f ms (WATCHDOG_USEC %d ms)\n", count,
           max_gap * 1000, WATCHDOG_USEC / 1000);
    ck_assert_msg(count >= 3, "only %d WATCHDOG=1 in 1 s", count);
    ck_assert_msg(max_gap * 1e6 < WATCHDOG_USEC, "%.0f ms without WATCHDOG=1", max_gap * 1000);

    /* ...and while a request is being served. */
    char p[512];
    size_t size;
    void *img = td_read_file(tu_path(p, sizeof p, "%s/imagenet/images/cat.jpg",
                                     tu_shared_dir()), &size);
    ck_assert_ptr_nonnull(img);
    td_response_t r;
    ck_assert_int_eq(td_request(&d, "POST", "/v1/models/mobilenet_v2:classify", "image/jpeg",
                                img, size, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    td_response_free(&r);
    free(img);
    int wd = 0;
    seen[0] = '\0';

    /* SIGHUP: RELOADING=1, then READY=1 again, still ready. */
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    expect(&n, &d, "RELOADING=1", 10, &m, seen, sizeof seen, &wd);
    ck_assert_msg(!strstr(seen, "READY=1"), "before RELOADING=1: %s", seen);
    expect(&n, &d, "READY=1", 30, &m, seen, sizeof seen, &wd);
    ck_assert_msg(!strstr(seen, "STOPPING=1"), "between RELOADING=1 and READY=1: %s", seen);
    ck_assert_int_eq(get_status(&d, "/readyz"), 200);
    ck_assert(td_log_contains(&d, "SIGHUP"));

    /* SIGTERM: STOPPING=1, not ready at once, still answering during the
     * grace period, then exit status 0 and no READY=1 after STOPPING=1. */
    ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
    expect(&n, &d, "STOPPING=1", 10, &m, seen, sizeof seen, &wd);
    ck_assert_int_eq(get_status(&d, "/readyz"), 503);
    ck_assert_int_eq(get_status(&d, "/healthz"), 200);
    double t_stop = now_s();
    int after = 0;
    while (notifier_recv(&n, 200, &m)) {
        ck_assert_msg(!has_line(m.text, "READY=1"), "READY=1 after STOPPING=1: %s", m.text);
        after++;
    }
    int status = stop(&d, 0);
    ck_assert_int_eq(status, 0);
    printf("exit 0 %.2f s after STOPPING=1 (%d watchdog messages during the drain)\n",
           now_s() - t_stop, after);
    notifier_close(&n);
}
END_TEST

/* A model added to the repository: after SIGHUP, READY=1 means the reload
 * is complete (as systemd takes it: `systemctl reload` returns then), so the
 * new model answers and the daemon is ready when READY=1 arrives. */
START_TEST(reload_adds_model)
{
    char repo[64];
    const char *models[] = {"mobilenet_v1", NULL};
    make_repo(repo, sizeof repo, models);
    notifier_t n;
    notifier_open(&n);
    td_daemon_t d;
    start(&d, &n, repo, 0, NULL);
    message_t m;
    char seen[4096] = "";
    expect(&n, &d, "READY=1", 120, &m, seen, sizeof seen, NULL);
    ck_assert_int_eq(get_status(&d, "/readyz"), 200);
    char state[64];
    model_state(&d, "mobilenet_v2", state, sizeof state);
    ck_assert_str_eq(state, "absent");

    ck_assert_int_eq(add_model_link(repo, "mobilenet_v2"), 0);
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    expect(&n, &d, "RELOADING=1", 10, &m, seen, sizeof seen, NULL);
    expect(&n, &d, "READY=1", 60, &m, seen, sizeof seen, NULL);
    char why[256];
    long ready = get_readyz(&d, why, sizeof why);
    model_state(&d, "mobilenet_v2", state, sizeof state);
    ck_assert_msg(!strcmp(state, "ready") && ready == 200,
                  "at READY=1 after RELOADING=1 the added model was \"%s\" and /readyz %ld "
                  "(\"%s\"): READY=1 was sent before the reload finished", state, ready, why);
    ck_assert_int_eq(stop(&d, SIGTERM), 0);
    notifier_close(&n);
    remove_repo(repo);
}
END_TEST

/* A model that fails to load: start-up still ends with READY=1 (systemd must
 * not time out), but the STATUS says "not ready" and so does /readyz. */
START_TEST(ready_not_ready)
{
    char repo[64];
    const char *models[] = {"mobilenet_v1", NULL};
    make_repo(repo, sizeof repo, models);
    char p[256];
    snprintf(p, sizeof p, "%s/broken", repo);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/broken/config.json", repo);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"model\": \"missing.onnx\"}\n", f);
    ck_assert_int_eq(fclose(f), 0);
    notifier_t n;
    notifier_open(&n);
    td_daemon_t d;
    start(&d, &n, repo, 0, NULL);
    message_t m;
    char seen[4096] = "";
    expect(&n, &d, "READY=1", 120, &m, seen, sizeof seen, NULL);
    ck_assert_msg(strstr(m.text, "STATUS=not ready"), "READY=1 message: %s", m.text);
    ck_assert_int_eq(get_status(&d, "/readyz"), 503);
    ck_assert_int_eq(get_status(&d, "/v1/models/mobilenet_v1"), 200);
    ck_assert_int_eq(stop(&d, SIGTERM), 0);
    notifier_close(&n);
    remove_repo(repo);
}
END_TEST

/* WATCHDOG_PID names another process: the variables were meant for it, so
 * the daemon sends no WATCHDOG=1 (sd_watchdog_enabled's rule). */
START_TEST(watchdog_other_pid)
{
    notifier_t n;
    notifier_open(&n);
    td_daemon_t d;
    start(&d, &n, tu_test_models(), getpid(), NULL);
    message_t m;
    char seen[4096] = "";
    int wd = 0;
    expect(&n, &d, "READY=1", 120, &m, seen, sizeof seen, &wd);
    double t0 = now_s();
    while (now_s() - t0 < 0.6)
        if (notifier_recv(&n, 100, &m) && has_line(m.text, "WATCHDOG=1"))
            wd++;
    ck_assert_msg(wd == 0, "%d WATCHDOG=1 although WATCHDOG_PID is another process", wd);
    ck_assert_int_eq(stop(&d, SIGTERM), 0);
    notifier_close(&n);
}
END_TEST

/* One test case per test: the unchecked fixture (run by the suite's own
 * process) cleans up after each of them. */
static void add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, work_setup, work_teardown);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

int main(void)
{
    tu_require_shared();
    Suite *s = suite_create("systemd");
    add(s, "life_cycle", life_cycle);
    add(s, "reload_adds_model", reload_adds_model);
    add(s, "ready_not_ready", ready_not_ready);
    add(s, "watchdog_other_pid", watchdog_other_pid);
    return tu_run_suite(s);
}
