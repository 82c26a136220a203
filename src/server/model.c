/* Loading a served model; see model.h. */
#include "server/model.h"

#include <errno.h>
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

int model_stamp_read(const char *dir, model_stamp_t *st)
{
    memset(st, 0, sizeof *st);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    stat_into(path, st, 0);
    model_config_t cfg;
    char msg[256];
    if (model_config_load(&cfg, dir, msg, sizeof msg))
        return 0; /* a broken config is a change too; the load will say why */
    stat_into(cfg.model_path, st, 1);
    stat_into(cfg.labels_path, st, 2);
    model_config_free(&cfg);
    return 0;
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

int served_model_load(served_model_t **out, const char *models_dir,
                      const char *name, const img_limits_t *limits,
                      sched_done_fn done, sched_batch_fn batch, void *owner,
                      char *msg, size_t msg_size)
{
    *out = NULL;
    served_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    m->owner = owner;
    int64_t t0 = sched_now_ns();
    size_t dn = strlen(models_dir) + strlen(name) + 2;
    m->name = strdup(name);
    m->dir = malloc(dn);
    if (!m->name || !m->dir) {
        snprintf(msg, msg_size, "out of memory");
        goto fail;
    }
    snprintf(m->dir, dn, "%s/%s", models_dir, name);
    model_stamp_read(m->dir, &m->stamp);
    if (model_config_load(&m->cfg, m->dir, msg, msg_size))
        goto fail;
    nn_error_t err;
    if (nn_model_load(&m->nn, m->cfg.model_path, &err)) {
        snprintf(msg, msg_size, "%s: %s", m->cfg.model_path, err.msg);
        goto fail;
    }
    if (check_shapes(m, msg, msg_size) || load_labels(m, msg, msg_size))
        goto fail;
    char inner[300];
    if (pre_config_parse(m->cfg.preprocess, m->width, m->height, m->channels,
                         &m->pre, inner, sizeof inner)) {
        snprintf(msg, msg_size, "%s/config.json: preprocess: %s", m->dir, inner);
        goto fail;
    }
    sched_config_t sc = m->cfg.sched;
    sc.limits = *limits;
    pre_decode_hint(&m->pre, &sc.limits);
    if (sched_create(&m->sched, m->nn, &m->pre, &sc, done, batch, m, msg,
                     msg_size))
        goto fail;
    if (sched_warm_up(m->sched, msg, msg_size))
        goto fail;
    m->load_seconds = (double)(sched_now_ns() - t0) / 1e9;
    *out = m;
    return 0;
fail:
    served_model_free(m);
    return -1;
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
