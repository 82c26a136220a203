/* Opening a model folder and running images through it; see
 * classifier.h. */
#include "classify/classifier.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/clock.h"

/* One label per line; blank lines are labels too (their index matters). */
static ic_err_t load_labels(classifier_t *m, char *msg, size_t msg_size)
{
    m->labels = calloc((size_t)m->n_classes, sizeof *m->labels);
    if (!m->labels) {
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    int n = 0;
    if (m->cfg.labels_path) {
        FILE *f = fopen(m->cfg.labels_path, "r");
        if (!f) {
            snprintf(msg, msg_size, "%s: %s", m->cfg.labels_path, strerror(errno));
            return IC_EMODEL;
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
            return IC_EMODEL;
        }
        if (n != m->n_classes) {
            snprintf(msg, msg_size,
                     "%s has %s%d labels but the model has %d classes",
                     m->cfg.labels_path, n > m->n_classes ? "more than " : "",
                     n > m->n_classes ? m->n_classes : n, m->n_classes);
            return IC_EMODEL;
        }
        return IC_OK;
    }
    for (; n < m->n_classes; n++) {
        char buf[32];
        snprintf(buf, sizeof buf, "class_%d", n);
        if (!(m->labels[n] = strdup(buf))) {
            snprintf(msg, msg_size, "out of memory");
            return IC_ENOMEM;
        }
    }
    return IC_OK;
}

/* The model must take [N, C, H, W] with C 1 or 3 and give [N, K]. */
static int check_shapes(classifier_t *m, char *msg, size_t msg_size)
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

/* Opens the folder's parts in order; the first failure returns. */
static ic_err_t open_parts(classifier_t *m, const img_limits_t *limits, char *msg,
                           size_t msg_size)
{
    struct stat sb;
    if (stat(m->dir, &sb) != 0) {
        snprintf(msg, msg_size, "%s: %s", m->dir, strerror(errno));
        return IC_EMODEL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(msg, msg_size,
                 "%s: not a folder (a model folder holds config.json and model.onnx)",
                 m->dir);
        return IC_EMODEL;
    }
    ic_err_t rc = model_config_load(&m->cfg, m->dir, msg, msg_size);
    if (rc != IC_OK)
        return rc;
    model_stamp_files(m->dir, &m->cfg, &m->stamp); /* before the files are read */
    nn_error_t err;
    int nrc = nn_model_load(&m->nn, m->cfg.model_path, &err);
    if (nrc) {
        /* The engine's message usually names the file already. */
        const char *named = strstr(err.msg, m->cfg.model_path) ? "" : m->cfg.model_path;
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", m->dir);
        int no_config = stat(cfg_path, &sb) != 0;
        snprintf(msg, msg_size, "%s%s%.400s%s", named, *named ? ": " : "", err.msg,
                 no_config ? " (the folder has no config.json, so the model is its "
                             "model.onnx)" : "");
        return nrc == -NN_ENOMEM ? IC_ENOMEM : IC_EMODEL;
    }
    char inner[400];
    if (check_shapes(m, inner, sizeof inner)) {
        snprintf(msg, msg_size, "%s: %s", m->cfg.model_path, inner);
        return IC_EMODEL;
    }
    if ((rc = load_labels(m, msg, msg_size)) != IC_OK)
        return rc;
    if (pre_config_parse(m->cfg.preprocess, m->width, m->height, m->channels, &m->pre,
                         inner, sizeof inner) != IC_OK) {
        snprintf(msg, msg_size, "%s/config.json: %s", m->dir, inner);
        return IC_ECONFIG;
    }
    m->pre.isa = nn_model_isa_level(m->nn); /* the model's instruction set */
    m->in_elems = nn_model_input_elems(m->nn, 0, 1);
    m->out_elems = nn_model_output_elems(m->nn, 0, 1);
    m->limits = *limits;
    pre_decode_hint(&m->pre, &m->limits);
    return IC_OK;
}

ic_err_t classifier_open(classifier_t **out, const char *dir, const char *name,
                         const img_limits_t *limits, char *msg, size_t msg_size)
{
    *out = NULL;
    int64_t t0 = clock_now_ns();
    classifier_t *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name ? name : dir)) || !(m->dir = strdup(dir))) {
        classifier_close(m);
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    ic_err_t rc = open_parts(m, limits, msg, msg_size);
    if (rc != IC_OK) {
        classifier_close(m);
        return rc;
    }
    m->open_seconds = (double)(clock_now_ns() - t0) / 1e9;
    *out = m;
    return IC_OK;
}

ic_err_t classifier_prepare(const classifier_t *c, const void *data, size_t size,
                            float *tensor, char *msg, size_t msg_size)
{
    img_rgb_t img;
    ic_err_t rc = img_decode(data, size, &c->limits, &img, msg, msg_size);
    if (rc != IC_OK)
        return rc;
    rc = pre_run(&c->pre, &img, tensor, msg, msg_size);
    img_free(&img);
    return rc;
}

ic_err_t classifier_run(nn_context_t *ctx, int n, const float *inputs, float *outputs,
                        char *msg, size_t msg_size)
{
    const float *ins[1] = {inputs};
    float *outs[1] = {outputs};
    nn_error_t err;
    if (nn_context_run(ctx, n, ins, outs, &err)) {
        snprintf(msg, msg_size, "inference failed: %.200s", err.msg);
        return IC_EINFER;
    }
    return IC_OK;
}

static int by_score_desc(const void *a, const void *b)
{
    const class_score_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

void classifier_rank(const classifier_t *m, const float *out, class_score_t *s)
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

void classifier_close(classifier_t *c)
{
    if (!c)
        return;
    for (int i = 0; c->labels && i < c->n_classes; i++)
        free(c->labels[i]);
    free(c->labels);
    nn_model_free(c->nn);
    model_config_free(&c->cfg);
    free(c->name);
    free(c->dir);
    free(c);
}
