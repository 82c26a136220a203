/* ONNX backend conformance runner.
 *
 * Walks the ONNX test data (node, pytorch-converted, pytorch-operator),
 * runs every case whose operators the engine knows, and compares each
 * output with the reference. Each case runs in a forked child with an alarm,
 * so a crash or a hang is reported as that case's failure and the run goes
 * on. Cases using unknown ops are "not applicable"; cases with dtypes other
 * than float32/int64 are skipped; a skip list names the cases that exercise
 * features the engine deliberately does not support.
 *
 *   conformance [--root DIR] [--skips FILE] [-v] [substring...]
 *
 * Last line: "N passed, N failed, N skipped". Exit status 1 on failures. */
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/model.h"
#include "nn/onnx_load.h"
#include "nn/plan.h"
#include "nn/pool.h"
#include "nn/tensor.h"
#include "onnx.pb-c.h"

#define DEFAULT_ROOT "/usr/include/onnx/backend/test/data"
#define CASE_TIMEOUT_S 20
#define ATOL 1e-5
#define RTOL 1e-4
#define MAX_IO 64

/* ---- small helpers ------------------------------------------------------ */

typedef struct strlist {
    char **v;
    int n, cap;
} strlist_t;

static int sl_push(strlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy)
        return -1;
    l->v[l->n++] = copy;
    return 0;
}

static int sl_find(const strlist_t *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return i;
    return -1;
}

static void sl_free(strlist_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's entries starting with prefix (directories only when
 * dirs_only). Returns -1 when dir cannot be opened. */
static int list_dir(const char *dir, const char *prefix, int dirs_only,
                    strlist_t *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' ||
            strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (dirs_only) {
            char path[4096];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
                continue;
        }
        if (sl_push(out, e->d_name)) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return rc;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- case inspection (in the parent) ------------------------------------ */

typedef struct case_info {
    char ops[512];      /* distinct op types joined by '+' */
    strlist_t missing;  /* op types the loader does not accept */
    char dtype[64];     /* first unsupported dtype seen, or "" */
    strlist_t inputs;   /* run-time graph inputs (no initializers), in order */
    int in_types[MAX_IO];
    int n_outputs;
} case_info_t;

static void note_dtype(case_info_t *ci, int t)
{
    if (ci->dtype[0] || t == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
        t == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        return;
    char lower[48];
    const char *n = nn_dtype_name(t);
    size_t i = 0;
    for (; n[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    lower[i] = '\0';
    snprintf(ci->dtype, sizeof ci->dtype, "dtype %s", lower);
}

static void note_value_type(case_info_t *ci, const Onnx__TypeProto *tp,
                            int *elem)
{
    *elem = 0;
    if (!tp)
        return;
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
        if (tp->tensor_type) {
            *elem = tp->tensor_type->elem_type;
            note_dtype(ci, *elem);
        }
        break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
        if (!ci->dtype[0])
            snprintf(ci->dtype, sizeof ci->dtype, "dtype sequence");
        break;
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
        if (!ci->dtype[0])
            snprintf(ci->dtype, sizeof ci->dtype, "dtype map");
        break;
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
        if (!ci->dtype[0])
            snprintf(ci->dtype, sizeof ci->dtype, "dtype optional");
        break;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
        if (!ci->dtype[0])
            snprintf(ci->dtype, sizeof ci->dtype, "dtype sparse tensor");
        break;
    default:
        break;
    }
}

static void note_node(case_info_t *ci, strlist_t *seen,
                      const Onnx__NodeProto *n)
{
    char op[256];
    const char *type = n->op_type ? n->op_type : "";
    int std = !n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
    if (std)
        snprintf(op, sizeof op, "%s", type);
    else
        snprintf(op, sizeof op, "%s:%s", n->domain, type);
    if (sl_find(seen, op) < 0) {
        sl_push(seen, op);
        size_t len = strlen(ci->ops);
        snprintf(ci->ops + len, sizeof ci->ops - len, "%s%s", len ? "+" : "",
                 op);
        if ((!std || !nn_onnx_op_supported(type)) &&
            sl_find(&ci->missing, op) < 0)
            sl_push(&ci->missing, op);
    }
    for (size_t a = 0; a < n->n_attribute; a++) {
        const Onnx__AttributeProto *at = n->attribute[a];
        if (at->t)
            note_dtype(ci, at->t->data_type);
        /* Cast's target type, and anything else naming a dtype */
        if (std && strcmp(type, "Cast") == 0 && at->name &&
            strcmp(at->name, "to") == 0 && at->has_i)
            note_dtype(ci, (int)at->i);
    }
}

/* Parses model.onnx just enough to classify the case. */
static int inspect_case(const char *dir, case_info_t *ci, char *why,
                        size_t why_size)
{
    memset(ci, 0, sizeof *ci);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    void *data;
    size_t size;
    nn_error_t err;
    if (nn_read_file(path, &data, &size, &err)) {
        snprintf(why, why_size, "%s", err.msg);
        return -1;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    if (!m || !m->graph) {
        snprintf(why, why_size, "model.onnx does not parse");
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        return -1;
    }
    const Onnx__GraphProto *g = m->graph;
    strlist_t seen = {0};
    for (size_t i = 0; i < g->n_node; i++)
        note_node(ci, &seen, g->node[i]);
    sl_free(&seen);
    strlist_t inits = {0};
    for (size_t i = 0; i < g->n_initializer; i++) {
        note_dtype(ci, g->initializer[i]->data_type);
        sl_push(&inits, g->initializer[i]->name ? g->initializer[i]->name
                                                : "");
    }
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        if (sl_find(&inits, name) >= 0)
            continue;
        int elem;
        note_value_type(ci, g->input[i]->type, &elem);
        if (ci->inputs.n < MAX_IO)
            ci->in_types[ci->inputs.n] = elem;
        sl_push(&ci->inputs, name);
    }
    sl_free(&inits);
    for (size_t i = 0; i < g->n_output; i++) {
        int elem;
        note_value_type(ci, g->output[i]->type, &elem);
    }
    ci->n_outputs = (int)g->n_output;
    onnx__model_proto__free_unpacked(m, NULL);
    if (ci->inputs.n > MAX_IO || ci->n_outputs > MAX_IO) {
        snprintf(why, why_size, "more than %d inputs or outputs", MAX_IO);
        return -1;
    }
    return 0;
}

static void case_info_free(case_info_t *ci)
{
    sl_free(&ci->missing);
    sl_free(&ci->inputs);
}

/* ---- running one case (in the child) ------------------------------------ */

enum { RES_PASS = 'P', RES_MISMATCH = 'M', RES_UNSUP = 'U', RES_ERROR = 'E' };

typedef struct result {
    int code;
    char msg[1024];
} result_t;

static int set_result(result_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_result(result_t *r, int code, const char *fmt, ...)
{
    r->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return code;
}

typedef struct tensor_set {
    int n;
    nn_tensor_t t[MAX_IO];
} tensor_set_t;

static void tensor_set_free(tensor_set_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->t[i].data);
    s->n = 0;
}

static int read_pb(const char *path, nn_tensor_t *t, nn_error_t *err)
{
    void *data;
    size_t size;
    int rc = nn_read_file(path, &data, &size, err);
    if (rc)
        return rc;
    rc = nn_onnx_read_tensor(data, size, t, NULL, err);
    free(data);
    return rc;
}

static int same_shape(const nn_tensor_t *a, const nn_tensor_t *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d])
            return 0;
    return 1;
}

static int same_tensor(const nn_tensor_t *a, const nn_tensor_t *b)
{
    return same_shape(a, b) &&
           memcmp(a->data, b->data, nn_tensor_bytes(a)) == 0;
}

/* Element-wise comparison; 0 when equal within tolerance. */
static int compare(const nn_tensor_t *got, const nn_tensor_t *want,
                   char *msg, size_t size)
{
    char gs[128], ws[128];
    if (!same_shape(got, want)) {
        snprintf(msg, size, "got %s, want %s",
                 nn_shape_str(got, gs, sizeof gs),
                 nn_shape_str(want, ws, sizeof ws));
        return -1;
    }
    int64_t n = nn_tensor_elems(want);
    int bad = 0;
    int64_t first = -1;
    double fg = 0, fw = 0;
    for (int64_t i = 0; i < n; i++) {
        double g, w;
        int ok;
        if (want->dtype == NN_DTYPE_FLOAT) {
            g = ((const float *)got->data)[i];
            w = ((const float *)want->data)[i];
            if (isnan(w) || isnan(g))
                ok = isnan(w) && isnan(g);
            else if (isinf(w) || isinf(g))
                ok = g == w;
            else
                ok = fabs(g - w) <= ATOL + RTOL * fabs(w);
        } else {
            int64_t gi = ((const int64_t *)got->data)[i];
            int64_t wi = ((const int64_t *)want->data)[i];
            g = (double)gi;
            w = (double)wi;
            ok = gi == wi;
        }
        if (!ok) {
            if (first < 0) {
                first = i;
                fg = g;
                fw = w;
            }
            bad++;
        }
    }
    if (!bad)
        return 0;
    snprintf(msg, size, "%d of %lld elements differ; first at %lld: got %.9g, "
             "want %.9g", bad, (long long)n, (long long)first, fg, fw);
    return -1;
}

/* Compiles a plan for the model, runs it `runs` times with pool, compares
 * every output with want. */
static int run_plan(const nn_model_t *model, const tensor_set_t *feeds,
                    const tensor_set_t *want, nn_pool_t *pool, int runs,
                    const char *where, result_t *r)
{
    const nn_graph_t *g = nn_model_graph(model);
    int n_in = g->n_inputs;
    nn_tensor_t shapes[MAX_IO];
    const void *in_data[MAX_IO];
    void *out_data[MAX_IO] = {0};
    nn_error_t err = {{0}};
    if (n_in > MAX_IO || n_in != feeds->n)
        return set_result(r, RES_ERROR, "%s: graph has %d run-time inputs, "
                          "%d fed", where, n_in, feeds->n);
    if (g->n_outputs != want->n)
        return set_result(r, RES_ERROR, "%s: graph has %d outputs, %d "
                          "expected", where, g->n_outputs, want->n);
    for (int i = 0; i < n_in; i++) {
        shapes[i] = feeds->t[i];
        in_data[i] = feeds->t[i].data;
    }
    nn_plan_t *plan;
    int rc = nn_plan_create(&plan, g, shapes, &err);
    if (rc)
        return set_result(r, rc == -NN_EUNSUPPORTED ? RES_UNSUP : RES_ERROR,
                          "%s: plan: %s", where, err.msg);
    size_t ab = (nn_plan_arena_bytes(plan) + 63) / 64 * 64 + 64;
    size_t sb = (nn_plan_scratch_bytes(plan) + 63) / 64 * 64 + 64;
    void *arena = aligned_alloc(64, ab);
    void *scratch = aligned_alloc(64, sb);
    int ok = arena && scratch;
    for (int i = 0; ok && i < g->n_outputs; i++) {
        size_t bytes = nn_tensor_bytes(nn_plan_output(plan, i));
        ok = (out_data[i] = malloc(bytes + 8)) != NULL;
    }
    if (!ok) {
        set_result(r, RES_ERROR, "%s: out of memory", where);
        goto done;
    }
    /* NaN-filled memory exposes kernels that read what they never wrote. */
    memset(arena, 0xff, ab);
    memset(scratch, 0xff, sb);
    nn_plan_bind(plan, arena, scratch, pool);
    r->code = RES_PASS;
    for (int run = 0; run < runs && r->code == RES_PASS; run++) {
        for (int i = 0; i < g->n_outputs; i++)
            memset(out_data[i], 0xff,
                   nn_tensor_bytes(nn_plan_output(plan, i)));
        nn_plan_run(plan, in_data, out_data);
        for (int i = 0; i < g->n_outputs; i++) {
            nn_tensor_t got = *nn_plan_output(plan, i);
            got.data = out_data[i];
            char msg[512];
            if (compare(&got, &want->t[i], msg, sizeof msg)) {
                set_result(r, RES_MISMATCH, "%s, run %d, output %d ('%s'): "
                           "%s", where, run, i,
                           g->values[g->outputs[i]].name, msg);
                break;
            }
        }
    }
done:
    for (int i = 0; i < g->n_outputs; i++)
        free(out_data[i]);
    free(arena);
    free(scratch);
    nn_plan_free(plan);
    return r->code;
}

static int run_case(const char *dir, const case_info_t *ci, result_t *r)
{
    strlist_t sets = {0};
    nn_model_t *model = NULL;
    void *onnx = NULL;
    size_t onnx_size = 0;
    nn_pool_t *pool = NULL;
    tensor_set_t consts = {0}, feeds = {0}, want = {0};
    tensor_set_t cur_consts = {0}, cur_feeds = {0}; /* of the loaded model */
    const char *const_names[MAX_IO];
    nn_error_t err = {{0}};
    char path[4096];
    set_result(r, RES_PASS, "ok");

    if (list_dir(dir, "test_data_set_", 1, &sets) || sets.n == 0) {
        set_result(r, RES_ERROR, "no test_data_set_* directories");
        goto out;
    }
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (nn_read_file(path, &onnx, &onnx_size, &err)) {
        set_result(r, RES_ERROR, "%s", err.msg);
        goto out;
    }
    if (nn_pool_create(&pool, 2)) {
        set_result(r, RES_ERROR, "cannot create a 2-thread pool");
        goto out;
    }
    for (int s = 0; s < sets.n && r->code == RES_PASS; s++) {
        const char *set = sets.v[s];
        int n_const = 0;
        for (int k = 0; k < ci->inputs.n; k++) {
            snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, set, k);
            nn_tensor_t t;
            if (!file_exists(path)) {
                /* Trailing optional inputs may be left out. */
                if (k > 0)
                    break;
                set_result(r, RES_ERROR, "%s/input_0.pb is missing", set);
                goto out;
            }
            if (read_pb(path, &t, &err)) {
                set_result(r, RES_ERROR, "%s/input_%d.pb: %s", set, k,
                           err.msg);
                goto out;
            }
            if (t.dtype == NN_DTYPE_INT64) {
                const_names[n_const++] = ci->inputs.v[k];
                consts.t[consts.n++] = t;
            } else {
                feeds.t[feeds.n++] = t;
            }
        }
        for (int k = 0; k < ci->n_outputs; k++) {
            snprintf(path, sizeof path, "%s/%s/output_%d.pb", dir, set, k);
            if (read_pb(path, &want.t[want.n], &err)) {
                set_result(r, RES_ERROR, "%s/output_%d.pb: %s", set, k,
                           err.msg);
                goto out;
            }
            want.n++;
        }
        /* Reload only when what was compiled in differs. */
        int reuse = model && consts.n == cur_consts.n &&
                    feeds.n == cur_feeds.n;
        for (int i = 0; reuse && i < consts.n; i++)
            reuse = same_tensor(&consts.t[i], &cur_consts.t[i]);
        for (int i = 0; reuse && i < feeds.n; i++)
            reuse = same_shape(&feeds.t[i], &cur_feeds.t[i]);
        if (!reuse) {
            nn_model_free(model);
            model = NULL;
            nn_load_options_t opt = {
                .n_consts = consts.n,
                .const_names = const_names,
                .consts = consts.t,
                .input_shapes = feeds.t,
                .lenient = 1,
            };
            int rc = nn_model_load_ex(&model, onnx, onnx_size, dir, &opt,
                                      &err);
            if (rc) {
                set_result(r, rc == -NN_EUNSUPPORTED ? RES_UNSUP : RES_ERROR,
                           "load (%s): %s", nn_strerror(rc), err.msg);
                goto out;
            }
        }
        char where[128];
        snprintf(where, sizeof where, "%s, 1 thread", set);
        if (run_plan(model, &feeds, &want, NULL, 1, where, r) != RES_PASS)
            goto out;
        snprintf(where, sizeof where, "%s, 2 threads", set);
        if (run_plan(model, &feeds, &want, pool, 2, where, r) != RES_PASS)
            goto out;
        tensor_set_free(&cur_consts);
        tensor_set_free(&cur_feeds);
        cur_consts = consts;
        cur_feeds = feeds;
        consts.n = 0;
        feeds.n = 0;
        tensor_set_free(&want);
    }
out:
    tensor_set_free(&consts);
    tensor_set_free(&feeds);
    tensor_set_free(&want);
    tensor_set_free(&cur_consts);
    tensor_set_free(&cur_feeds);
    nn_model_free(model);
    nn_pool_free(pool);
    free(onnx);
    sl_free(&sets);
    return r->code;
}

/* Forks, runs the case in the child with a timeout, and collects its
 * one-line result from a pipe. */
static void run_forked(const char *dir, const case_info_t *ci, result_t *r)
{
    int fds[2];
    if (pipe(fds) != 0) {
        set_result(r, RES_ERROR, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        set_result(r, RES_ERROR, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(CASE_TIMEOUT_S);
        /* Our pool does the threading; OpenBLAS threads would compete. */
        openblas_set_num_threads(1);
        result_t res;
        run_case(dir, ci, &res);
        char line[sizeof res.msg + 4];
        int n = snprintf(line, sizeof line, "%c %s\n", res.code, res.msg);
        if (n > (int)sizeof line - 1)
            n = (int)sizeof line - 1;
        ssize_t w = write(fds[1], line, (size_t)n);
        _exit(w == n ? 0 : 3);
    }
    close(fds[1]);
    char buf[2048];
    size_t got = 0;
    for (;;) {
        ssize_t k = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got == sizeof buf - 1)
            break;
    }
    buf[got] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM)
            set_result(r, RES_ERROR, "timed out after %d s", CASE_TIMEOUT_S);
        else
            set_result(r, RES_ERROR, "crashed with signal %d (%s)", sig,
                       strsignal(sig));
        return;
    }
    if (got < 2 || !strchr("PMUE", buf[0])) {
        set_result(r, RES_ERROR, "child exited with status %d and no result",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return;
    }
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    set_result(r, buf[0], "%s", buf + 2);
}

/* ---- bookkeeping -------------------------------------------------------- */

typedef struct skip_entry {
    char *name, *reason;
    int seen;
} skip_entry_t;

typedef struct skips {
    skip_entry_t *v;
    int n;
} skips_t;

static int load_skips(const char *path, skips_t *s)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "conformance: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strlen(p);
        while (len && strchr(" \t\r\n", p[len - 1]))
            p[--len] = '\0';
        if (!len)
            continue;
        char *sep = p + strcspn(p, " \t");
        char *reason = sep;
        if (*sep) {
            *sep = '\0';
            reason = sep + 1;
            while (*reason == ' ' || *reason == '\t')
                reason++;
        }
        if (!*reason) {
            fprintf(stderr, "conformance: %s:%d: '%s' has no reason\n", path,
                    lineno, p);
            fclose(f);
            return -1;
        }
        skip_entry_t *v = realloc(s->v, sizeof *v * (size_t)(s->n + 1));
        if (!v) {
            fclose(f);
            return -1;
        }
        s->v = v;
        v[s->n].name = strdup(p);
        v[s->n].reason = strdup(reason);
        v[s->n].seen = 0;
        if (!v[s->n].name || !v[s->n].reason) {
            free(v[s->n].name);
            free(v[s->n].reason);
            fclose(f);
            return -1;
        }
        s->n++;
    }
    fclose(f);
    return 0;
}

static skip_entry_t *find_skip(skips_t *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

typedef struct counter {
    char *key;
    int a, b, c; /* passed/failed/skipped, or count */
} counter_t;

typedef struct counters {
    counter_t *v;
    int n;
} counters_t;

static counter_t *counter_get(counters_t *cs, const char *key)
{
    for (int i = 0; i < cs->n; i++)
        if (strcmp(cs->v[i].key, key) == 0)
            return &cs->v[i];
    counter_t *v = realloc(cs->v, sizeof *v * (size_t)(cs->n + 1));
    if (!v)
        return NULL;
    cs->v = v;
    char *k = strdup(key);
    if (!k)
        return NULL;
    v[cs->n] = (counter_t){k, 0, 0, 0};
    return &cs->v[cs->n++];
}

static int cmp_counter_key(const void *a, const void *b)
{
    return strcmp(((const counter_t *)a)->key, ((const counter_t *)b)->key);
}

static int cmp_counter_count(const void *a, const void *b)
{
    const counter_t *x = a, *y = b;
    if (x->a != y->a)
        return y->a - x->a;
    return strcmp(x->key, y->key);
}

static void counters_free(counters_t *cs)
{
    for (int i = 0; i < cs->n; i++)
        free(cs->v[i].key);
    free(cs->v);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: conformance [--root DIR] [--skips FILE] [-v] "
                    "[substring...]\n");
}

int main(int argc, char **argv)
{
    const char *root = DEFAULT_ROOT, *skips_path = NULL;
    int verbose = 0;
    strlist_t filters = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[++i];
        } else if (strcmp(argv[i], "--skips") == 0 && i + 1 < argc) {
            skips_path = argv[++i];
        } else if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
        } else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else if (sl_push(&filters, argv[i])) {
            return 2;
        }
    }
    skips_t skips = {0};
    if (skips_path && load_skips(skips_path, &skips))
        return 2;

    /* Case folders: the subfolders of root/node, root/pytorch-converted
     * and root/pytorch-operator, or of root itself when it holds cases. */
    static const char *const suites[] = {"node", "pytorch-converted",
                                         "pytorch-operator"};
    strlist_t dirs = {0}, names = {0};
    int found_suite = 0;
    for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/%s", root, suites[s]);
        strlist_t cases = {0};
        if (list_dir(sdir, "", 1, &cases) == 0)
            found_suite = 1;
        for (int c = 0; c < cases.n; c++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", sdir, cases.v[c]);
            if (sl_push(&dirs, path) || sl_push(&names, cases.v[c]))
                return 2;
        }
        sl_free(&cases);
    }
    if (!found_suite) {
        strlist_t cases = {0};
        if (list_dir(root, "", 1, &cases)) {
            fprintf(stderr, "conformance: cannot read %s\n", root);
            return 2;
        }
        for (int c = 0; c < cases.n; c++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", root, cases.v[c]);
            if (sl_push(&dirs, path) || sl_push(&names, cases.v[c]))
                return 2;
        }
        sl_free(&cases);
    }

    counters_t by_op = {0}, missing = {0};
    int passed = 0, failed = 0, skipped = 0, n_na = 0, unexpected = 0;
    for (int c = 0; c < dirs.n; c++) {
        const char *name = names.v[c];
        int match = filters.n == 0;
        for (int f = 0; f < filters.n && !match; f++)
            match = strstr(name, filters.v[f]) != NULL;
        if (!match)
            continue;
        skip_entry_t *skip = find_skip(&skips, name);
        if (skip)
            skip->seen = 1;
        case_info_t ci;
        memset(&ci, 0, sizeof ci);
        char why[512];
        if (!file_exists(strcat(strcpy(why, dirs.v[c]), "/model.onnx"))) {
            case_info_free(&ci);
            continue; /* not a case folder */
        }
        if (inspect_case(dirs.v[c], &ci, why, sizeof why)) {
            printf("FAILED   %s: %s\n", name, why);
            counter_t *ct = counter_get(&by_op, "?");
            if (ct)
                ct->b++;
            failed++;
            case_info_free(&ci);
            continue;
        }
        if (ci.missing.n) {
            n_na++;
            for (int k = 0; k < ci.missing.n; k++) {
                counter_t *ct = counter_get(&missing, ci.missing.v[k]);
                if (ct)
                    ct->a++;
            }
            if (verbose)
                printf("n/a      %s (%s)\n", name, ci.ops);
            case_info_free(&ci);
            continue;
        }
        counter_t *ct = counter_get(&by_op, ci.ops[0] ? ci.ops : "(none)");
        if (!ct)
            return 2;
        if (ci.dtype[0]) {
            skipped++;
            ct->c++;
            if (verbose)
                printf("skipped  %s: %s\n", name, ci.dtype);
            case_info_free(&ci);
            continue;
        }
        result_t r;
        run_forked(dirs.v[c], &ci, &r);
        if (r.code == RES_PASS) {
            passed++;
            ct->a++;
            if (skip) {
                unexpected++;
                printf("WARNING  %s unexpectedly passed (listed: %s); remove "
                       "it from the skip list\n", name, skip->reason);
            } else if (verbose) {
                printf("passed   %s\n", name);
            }
        } else if (skip && (r.code == RES_UNSUP || r.code == RES_MISMATCH)) {
            skipped++;
            ct->c++;
            if (verbose)
                printf("skipped  %s: %s [%s]\n", name, skip->reason, r.msg);
        } else {
            failed++;
            ct->b++;
            printf("FAILED   %s (%s): %s%s\n", name, ci.ops, r.msg,
                   skip ? " [listed as skipped, but only unsupported-feature "
                          "errors and mismatches may be]"
                        : "");
        }
        fflush(stdout);
        case_info_free(&ci);
    }

    if (by_op.n)
        qsort(by_op.v, (size_t)by_op.n, sizeof *by_op.v, cmp_counter_key);
    int width = 2;
    for (int i = 0; i < by_op.n; i++) {
        int len = (int)strlen(by_op.v[i].key);
        if (len > width)
            width = len;
    }
    if (width > 60)
        width = 60;
    printf("\n%-*s %7s %7s %7s\n", width, "op", "passed", "failed",
           "skipped");
    for (int i = 0; i < by_op.n; i++)
        printf("%-*s %7d %7d %7d\n", width, by_op.v[i].key, by_op.v[i].a,
               by_op.v[i].b, by_op.v[i].c);
    if (missing.n)
        qsort(missing.v, (size_t)missing.n, sizeof *missing.v,
              cmp_counter_count);
    printf("\nnot applicable: %d cases use ops the engine does not "
           "implement", n_na);
    for (int i = 0; i < missing.n; i++)
        printf("%s %s %d", i ? "," : ":", missing.v[i].key, missing.v[i].a);
    printf("\n");
    if (filters.n == 0)
        for (int i = 0; i < skips.n; i++)
            if (!skips.v[i].seen)
                printf("WARNING  skip list names '%s', which is not a test "
                       "case\n", skips.v[i].name);
    if (unexpected)
        printf("WARNING  %d listed cases passed: update the skip list\n",
               unexpected);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);

    counters_free(&by_op);
    counters_free(&missing);
    for (int i = 0; i < skips.n; i++) {
        free(skips.v[i].name);
        free(skips.v[i].reason);
    }
    free(skips.v);
    sl_free(&dirs);
    sl_free(&names);
    sl_free(&filters);
    return failed ? 1 : 0;
}
