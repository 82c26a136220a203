/* Loading a served model; see model.h. */
#include "server/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void stat_into(const char *path, model_stamp_t *st, int i)
{
    struct stat sb;
    if (path && stat(path, &sb) == 0) {
        st->mtime[i] = sb.st_mtim.tv_sec;
        st->mtime_ns[i] = sb.st_mtim.tv_nsec;
        st->size[i] = sb.st_size;
        st->ino[i] = sb.st_ino;
    }
}

/* Stamps of dir/config.json and of the files a parsed config names. */
static void stamp_files(const char *dir, const model_config_t *cfg, model_stamp_t *st)
{
    memset(st, 0, sizeof *st);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    stat_into(path, st, 0);
    if (cfg) {
        stat_into(cfg->model_path, st, 1);
        stat_into(cfg->labels_path, st, 2);
    }
}

void model_stamp_read(const char *dir, model_stamp_t *st)
{
    model_config_t cfg;
    char msg[256];
    /* A broken config is a change too; the load will say why. */
    int ok = model_config_load(&cfg, dir, msg, sizeof msg) == 0;
    stamp_files(dir, ok ? &cfg : NULL, st);
    if (ok)
        model_config_free(&cfg);
}

int model_stamp_equal(const model_stamp_t *a, const model_stamp_t *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* One label per line; blank lines are labels too (their index matters). */
static int load_labels(served_model_t *m, char *msg, size_t msg_size)
{
    m->labels = calloc((size_t)m->n_classes, sizeof *m->labels);
    if (!m->labels) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    int n = 0;
    if (m->cfg.labels_path) {
        FILE *f = fopen(m->cfg.labels_path, "r");
        if (!f) {
            snprintf(msg, msg_size, "%s: %s", m->cfg.labels_path, strerror(errno));
            return -1;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (n == m->n_classes) {
                if (len == 0)
                    continue; /* trailing blank lines */
                n++;
                break;
            }
            if (!(m->labels[n++] = strdup(line)))
                break;
        }
        free(line);
        int read_error = ferror(f);
        fclose(f);
        if (read_error || (n > 0 && n <= m->n_classes && !m->labels[n - 1])) {
            snprintf(msg, msg_size, "%s: read failed", m->cfg.labels_path);
            return -1;
        }
        if (n != m->n_classes) {
            snprintf(msg, msg_size,
                     "%s has %s%d labels but the model has %d classes",
                     m->cfg.labels_path, n > m->n_classes ? "more than " : "",
                     n > m->n_classes ? m->n_classes : n, m->n_classes);
            return -1;
        }
        return 0;
    }
    for (; n < m->n_classes; n++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", n);
        if (!(m->labels[n] = strdup(buf))) {
            snprintf(msg, msg_size, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The model must take [N, C, H, W] with C 1 or 3 and give [N, K]. */
static int check_shapes(served_model_t *m, char *msg, size_t msg_size)
{
    if (nn_model_input_count(m->nn) != 1) {
        snprintf(msg, msg_size, "the model must have exactly one input, it has %d",
                 nn_model_input_count(m->nn));
        return -1;
    }
    const nn_tensor_info_t *in = nn_model_input(m->nn, 0);
    const nn_tensor_info_t *out = nn_model_output(m->nn, 0);
    if (in->rank != 4 || (in->dims[1] != 1 && in->dims[1] != 3) ||
        in->dims[2] < 1 || in->dims[3] < 1) {
        snprintf(msg, msg_size,
                 "input '%s' must be [N, 1 or 3, H, W] (NCHW image)", in->name);
        return -1;
    }
    if (in->dims[0] > 1) {
        snprintf(msg, msg_size,
                 "input '%s' has a fixed batch of %lld; export it with a "
                 "dynamic batch axis (or batch 1)", in->name,
                 (long long)in->dims[0]);
        return -1;
    }
    int64_t k = 1;
    for (int i = 1; i < out->rank; i++)
        k *= out->dims[i];
    if (out->rank < 2 || k < 1 || k > 1000000) {
        snprintf(msg, msg_size, "output '%s' must be [N, classes]", out->name);
        return -1;
    }
    m->channels = (int)in->dims[1];
    m->height = (int)in->dims[2];
    m->width = (int)in->dims[3];
    m->n_classes = (int)k;
    const char *op = nn_model_output_op(m->nn, 0);
    m->has_softmax = op && strcmp(op, "Softmax") == 0;
    return 0;
}

int served_model_open(served_model_t **out, const char *dir, const char *name,
                      const img_limits_t *limits, char *msg, size_t msg_size)
{
    *out = NULL;
    served_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name ? name : dir)) || !(m->dir = strdup(dir))) {
        served_model_free(m);
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    int64_t t0 = sched_now_ns();
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(msg, msg_size, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(msg, msg_size,
                 "%s: not a folder (a model folder holds config.json and model.onnx)",
                 dir);
        goto fail;
    }
    if (model_config_load(&m->cfg, m->dir, msg, msg_size))
        goto fail;
    stamp_files(m->dir, &m->cfg, &m->stamp); /* before the files are read */
    nn_error_t err;
    if (nn_model_load(&m->nn, m->cfg.model_path, &err)) {
        /* The engine's message usually names the file already. */
        const char *named = strstr(err.msg, m->cfg.model_path) ? "" : m->cfg.model_path;
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
        int no_config = stat(cfg_path, &sb) != 0;
        snprintf(msg, msg_size, "%s%s%.400s%s", named, *named ? ": " : "", err.msg,
                 no_config ? " (the folder has no config.json, so the model is its "
                             "model.onnx)" : "");
        goto fail;
    }
    char inner[400];
    if (check_shapes(m, inner, sizeof inner)) {
        snprintf(msg, msg_size, "%s: %s", m->cfg.model_path, inner);
        goto fail;
    }
    if (load_labels(m, msg, msg_size))
        goto fail;
    if (pre_config_parse(m->cfg.preprocess, m->width, m->height, m->channels,
                         &m->pre, inner, sizeof inner)) {
        snprintf(msg, msg_size, "%s/config.json: %s", m->dir, inner);
        goto fail;
    }
    m->limits = *limits;
    pre_decode_hint(&m->pre, &m->limits);
    m->load_seconds = (double)(sched_now_ns() - t0) / 1e9;
    *out = m;
    return 0;
fail:
    served_model_free(m);
    return -1;
}

static int by_score_desc(const void *a, const void *b)
{
    const model_score_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

void served_model_rank(const served_model_t *m, const float *out, model_score_t *s)
{
    int n = m->n_classes;
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (out[i] > mx)
            mx = out[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s[i].index = i;
        if (m->has_softmax) {
            s[i].score = out[i];
        } else {
            s[i].score = expf(out[i] - mx);
            sum += s[i].score;
        }
    }
    if (!m->has_softmax && sum > 0)
        for (int i = 0; i < n; i++)
            s[i].score = (float)(s[i].score / sum);
    qsort(s, (size_t)n, sizeof *s, by_score_desc);
}

int served_model_load(served_model_t **out, const char *models_dir,
                      const char *name, const img_limits_t *limits,
                      sched_done_fn done, sched_batch_fn batch, void *owner,
                      char *msg, size_t msg_size)
{
    *out = NULL;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s", models_dir, name) >= (int)sizeof dir) {
        snprintf(msg, msg_size, "model folder path too long");
        return -1;
    }
    served_model_t *m;
    if (served_model_open(&m, dir, name, limits, msg, msg_size))
        return -1;
    int64_t t0 = sched_now_ns();
    m->owner = owner;
    sched_config_t sc = m->cfg.sched;
    sc.limits = m->limits;
    if (sched_create(&m->sched, m->nn, &m->pre, &sc, done, batch, m, msg, msg_size) ||
        sched_warm_up(m->sched, msg, msg_size)) {
        served_model_free(m);
        return -1;
    }
    m->load_seconds += (double)(sched_now_ns() - t0) / 1e9;
    *out = m;
    return 0;
}

void served_model_free(served_model_t *m)
{
    if (!m)
        return;
    sched_free(m->sched);
    for (int i = 0; m->labels && i < m->n_classes; i++)
        free(m->labels[i]);
    free(m->labels);
    nn_model_free(m->nn);
    model_config_free(&m->cfg);
    free(m->name);
    free(m->dir);
    free(m);
}
