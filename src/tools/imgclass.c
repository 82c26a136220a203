/* imgclass: the engine's command-line tool, for people who debug and size
 * models.
 *   imgclass info     MODEL.onnx
 *   imgclass run      MODEL.onnx IN.npy OUT.npy [--threads T]
 *   imgclass bench    MODEL.onnx [--batch N] [--threads T] [--runs R]
 *                     [--instances K] [--profile | --profile-nodes]
 *   imgclass classify MODEL_DIR IMAGE... [--top-k K] [--json] [--threads T]
 *
 * bench with K instances runs K contexts of the one loaded model in K
 * threads at once, as the daemon does, to show that weights are shared.
 *
 * classify answers offline what the daemon would answer for a model folder
 * of its repository: the same config.json, decoding, preprocessing, scoring
 * and labels. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "imgclass/nn.h"
#include "nn/model.h"
#include "classify/classifier.h"
#include "util/file.h"
#include "util/npy.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: imgclass info     MODEL.onnx | --cpu\n"
            "       imgclass run      MODEL.onnx IN.npy OUT.npy [--threads T]\n"
            "       imgclass bench    MODEL.onnx [--batch N] [--threads T] [--runs R] [--instances K] [--profile | --profile-nodes]\n"
            "       imgclass classify MODEL_DIR IMAGE... [--top-k K] [--json] [--threads T]\n");
}

/* usage, and what the commands print where that is not obvious. */
static void help(FILE *f)
{
    usage(f);
    fprintf(f,
            "\n"
            "classify: the daemon's answer for a model folder (its config.json,\n"
            "preprocessing and labels), offline. Per image, the file name and K lines\n"
            "\"  score  index  label\"; with --json, one JSON object per line:\n"
            "{\"image\": FILE, \"predictions\": [{\"label\", \"index\", \"score\"}]}.\n"
            "K defaults to the folder's top_k, T to its threads. Exit status 1 if any\n"
            "image could not be classified (the others are still printed).\n"
            "\n"
            "info --cpu: the CPU features the engine found, the instruction set\n"
            "models load with (IMGCLASS_ISA=avx512|avx2|generic forces a lower one)\n"
            "and the kernels that come with it.\n");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_int(const char *s, int lo, int hi, const char *what, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "imgclass: %s must be an integer in %d..%d, got '%s'\n",
                what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static const char *dims_str(const nn_tensor_info_t *t, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->rank && used < size; d++) {
        if (t->dims[d] < 0)
            used += (size_t)snprintf(buf + used, size - used, "%sN", d ? "," : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld",
                                     d ? "," : "", (long long)t->dims[d]);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

static nn_model_t *load(const char *path, double *ms)
{
    nn_error_t err = {{0}};
    nn_model_t *m;
    double t0 = now_ms();
    int rc = nn_model_load(&m, path, &err);
    if (ms)
        *ms = now_ms() - t0;
    if (rc) {
        fprintf(stderr, "imgclass: %s: %s\n", path, err.msg);
        return NULL;
    }
    return m;
}

static void print_op(const char *op, int count, void *arg)
{
    (void)arg;
    printf("  %-24s %d\n", op, count);
}

static int cmd_cpu(void)
{
    nn_cpu_info_t c;
    nn_error_t err;
    int rc = nn_cpu_info(&c, &err);
    printf("features: avx2 %s, fma %s, avx512f %s, avx512bw %s, avx512vl %s, avx512dq %s, "
           "avx512_vnni %s, avx512_bf16 %s\n",
           c.avx2 ? "yes" : "no", c.fma ? "yes" : "no", c.avx512f ? "yes" : "no",
           c.avx512bw ? "yes" : "no", c.avx512vl ? "yes" : "no", c.avx512dq ? "yes" : "no",
           c.avx512_vnni ? "yes" : "no", c.avx512_bf16 ? "yes" : "no");
    printf("best: %s\n", c.best);
    if (rc) {
        fprintf(stderr, "imgclass: %s\n", err.msg);
        return 1;
    }
    printf("isa: %s%s\nkernels: %s\n", c.isa, c.forced ? " (IMGCLASS_ISA)" : "", c.kernels);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "--cpu") == 0)
        return cmd_cpu();
    if (argc != 1) {
        usage(stderr);
        return 2;
    }
    nn_model_t *m = load(argv[0], NULL);
    if (!m)
        return 1;
    char buf[128];
    nn_model_stats_t s;
    nn_model_stats(m, &s);
    printf("model: %s\nopset: %d\nisa: %s\n", argv[0], s.opset, nn_model_isa(m));
    for (int i = 0; i < nn_model_input_count(m); i++)
        printf("input:  %s float32 %s\n", nn_model_input(m, i)->name,
               dims_str(nn_model_input(m, i), buf, sizeof buf));
    for (int i = 0; i < nn_model_output_count(m); i++)
        printf("output: %s float32 %s\n", nn_model_output(m, i)->name,
               dims_str(nn_model_output(m, i), buf, sizeof buf));
    printf("operators (as in the file):\n");
    nn_model_op_counts(m, print_op, NULL);
    printf("nodes after optimisation: %d\n", s.node_count);
    printf("flops per image: %.3f G\n", s.flops / 1e9);
    printf("weight bytes: %zu (%.2f MiB)\n", s.weight_bytes,
           s.weight_bytes / 1048576.0);
    printf("peak activation bytes per image: %zu (%.2f MiB)\n",
           s.activation_bytes, s.activation_bytes / 1048576.0);
    printf("scratch bytes per image: %zu (%.2f MiB)\n", s.scratch_bytes,
           s.scratch_bytes / 1048576.0);
    nn_model_free(m);
    return 0;
}

/* Checks that an input array fits input 0 and returns its batch size. */
static int check_input(const nn_model_t *m, const npy_array_t *a,
                       const char *path)
{
    const nn_tensor_info_t *in = nn_model_input(m, 0);
    char want[128];
    dims_str(in, want, sizeof want);
    if (a->rank != in->rank) {
        fprintf(stderr, "imgclass: %s has rank %d; the model's input '%s' is %s\n",
                path, a->rank, in->name, want);
        return -1;
    }
    for (int d = 0; d < a->rank; d++) {
        if (in->dims[d] >= 0 && in->dims[d] != a->dims[d]) {
            fprintf(stderr, "imgclass: %s dimension %d is %lld; the model's "
                            "input '%s' is %s\n",
                    path, d, (long long)a->dims[d], in->name, want);
            return -1;
        }
    }
    if (a->rank == 0 || a->dims[0] < 1 || a->dims[0] > 4096) {
        fprintf(stderr, "imgclass: %s: batch size must be 1..4096\n", path);
        return -1;
    }
    return (int)a->dims[0];
}

static int cmd_run(int argc, char **argv)
{
    int threads = 1;
    if (argc == 5 && strcmp(argv[3], "--threads") == 0) {
        if (parse_int(argv[4], 1, 256, "--threads", &threads))
            return 2;
    } else if (argc != 3) {
        usage(stderr);
        return 2;
    }
    nn_model_t *m = load(argv[0], NULL);
    if (!m)
        return 1;
    int rc = 1;
    nn_context_t *ctx = NULL;
    float **outs = NULL;
    char msg[256];
    npy_array_t a;
    if (nn_model_input_count(m) != 1) {
        fprintf(stderr, "imgclass: run supports models with one input; this one has %d\n",
                nn_model_input_count(m));
        nn_model_free(m);
        return 1;
    }
    if (npy_read(argv[1], &a, msg, sizeof msg)) {
        fprintf(stderr, "imgclass: %s: %s\n", argv[1], msg);
        nn_model_free(m);
        return 1;
    }
    int batch = check_input(m, &a, argv[1]);
    if (batch < 0)
        goto out;
    nn_error_t err = {{0}};
    if (nn_context_create(&ctx, m, batch, threads, &err)) {
        fprintf(stderr, "imgclass: %s\n", err.msg);
        goto out;
    }
    int n_out = nn_model_output_count(m);
    outs = calloc((size_t)n_out, sizeof *outs);
    for (int i = 0; outs && i < n_out; i++)
        if (!(outs[i] = malloc(nn_model_output_elems(m, i, batch) * sizeof(float) + 1)))
            goto oom;
    if (!outs)
        goto oom;
    const float *ins[1] = {a.data};
    if (nn_context_run(ctx, batch, ins, outs, &err)) {
        fprintf(stderr, "imgclass: %s\n", err.msg);
        goto out;
    }
    const nn_tensor_info_t *o = nn_model_output(m, 0);
    int64_t dims[NN_MAX_RANK];
    for (int d = 0; d < o->rank; d++)
        dims[d] = o->dims[d] < 0 ? batch : o->dims[d];
    if (npy_write(argv[2], outs[0], o->rank, dims, msg, sizeof msg)) {
        fprintf(stderr, "imgclass: %s\n", msg);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "imgclass: out of memory\n");
out:
    if (outs)
        for (int i = 0; i < nn_model_output_count(m); i++)
            free(outs[i]);
    free(outs);
    nn_context_free(ctx);
    npy_free(&a);
    nn_model_free(m);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One benchmarking instance: its own context, inputs and outputs. */
typedef struct bench_instance {
    const nn_model_t *model;
    int batch, threads, runs;
    int profile; /* print per-operator times instead of timing runs (2:
                    and per graph node) */
    double *lat; /* runs entries */
    int rc;
    nn_error_t err;
} bench_instance_t;

static void *bench_instance_main(void *arg)
{
    bench_instance_t *b = arg;
    const nn_model_t *m = b->model;
    int n_in = nn_model_input_count(m), n_out = nn_model_output_count(m);
    float **ins = calloc((size_t)n_in + 1, sizeof *ins);
    float **outs = calloc((size_t)n_out + 1, sizeof *outs);
    nn_context_t *ctx = NULL;
    b->rc = -NN_ENOMEM;
    snprintf(b->err.msg, sizeof b->err.msg, "out of memory");
    if (!ins || !outs)
        goto out;
    unsigned seed = 12345;
    for (int i = 0; i < n_in; i++) {
        size_t n = nn_model_input_elems(m, i, b->batch);
        if (!(ins[i] = malloc(n * sizeof(float) + 1)))
            goto out;
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            ins[i][k] = (float)((seed >> 9) & 0xffff) / 32768.0f - 1.0f;
        }
    }
    for (int i = 0; i < n_out; i++)
        if (!(outs[i] = malloc(nn_model_output_elems(m, i, b->batch) * sizeof(float) + 1)))
            goto out;
    if ((b->rc = nn_context_create(&ctx, m, b->batch, b->threads, &b->err)))
        goto out;
    if (b->profile) {
        b->rc = nn_context_run(ctx, b->batch, (const float *const *)ins, outs,
                               &b->err);
        if (!b->rc)
            b->rc = nn_context_profile(ctx, b->batch, (const float *const *)ins,
                                       outs, b->runs, b->profile == 2, stdout, &b->err);
        goto out;
    }
    for (int r = -3; r < b->runs; r++) { /* three warm-up runs */
        double t0 = now_ms();
        b->rc = nn_context_run(ctx, b->batch, (const float *const *)ins, outs,
                               &b->err);
        if (b->rc)
            goto out;
        if (r >= 0)
            b->lat[r] = now_ms() - t0;
    }
out:
    for (int i = 0; ins && i < n_in; i++)
        free(ins[i]);
    for (int i = 0; outs && i < n_out; i++)
        free(outs[i]);
    free(ins);
    free(outs);
    nn_context_free(ctx);
    return NULL;
}

static int cmd_bench(int argc, char **argv)
{
    int batch = 1, threads = 1, runs = 20, instances = 1, profile = 0;
    if (argc >= 2 && strcmp(argv[argc - 1], "--profile") == 0) {
        profile = 1;
        argc--;
    } else if (argc >= 2 && strcmp(argv[argc - 1], "--profile-nodes") == 0) {
        profile = 2;
        argc--;
    }
    if (argc < 1 || argc % 2 == 0) {
        usage(stderr);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        int bad;
        if (strcmp(argv[i], "--batch") == 0)
            bad = parse_int(argv[i + 1], 1, 4096, "--batch", &batch);
        else if (strcmp(argv[i], "--threads") == 0)
            bad = parse_int(argv[i + 1], 1, 256, "--threads", &threads);
        else if (strcmp(argv[i], "--runs") == 0)
            bad = parse_int(argv[i + 1], 1, 100000, "--runs", &runs);
        else if (strcmp(argv[i], "--instances") == 0)
            bad = parse_int(argv[i + 1], 1, 64, "--instances", &instances);
        else {
            fprintf(stderr, "imgclass: unknown option '%s'\n", argv[i]);
            bad = 1;
        }
        if (bad)
            return 2;
    }
    double load_ms;
    nn_model_t *m = load(argv[0], &load_ms);
    if (!m)
        return 1;
    int rc = 1, started = 0;
    bench_instance_t *inst = calloc((size_t)instances, sizeof *inst);
    pthread_t *tid = calloc((size_t)instances, sizeof *tid);
    double *lat = calloc((size_t)runs * (size_t)instances, sizeof *lat);
    if (!inst || !tid || !lat) {
        fprintf(stderr, "imgclass: out of memory\n");
        goto out;
    }
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_ms();
    for (int k = 0; k < instances; k++) {
        inst[k] = (bench_instance_t){m, batch, threads, runs, profile,
                                     lat + (size_t)k * runs, 0, {{0}}};
        if (pthread_create(&tid[k], NULL, bench_instance_main, &inst[k]) != 0) {
            fprintf(stderr, "imgclass: cannot start a thread\n");
            break;
        }
        started++;
    }
    for (int k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
    double wall = now_ms() - t0;
    if (started < instances)
        goto out;
    for (int k = 0; k < instances; k++) {
        if (inst[k].rc) {
            fprintf(stderr, "imgclass: %s\n", inst[k].err.msg);
            goto out;
        }
    }
    if (profile) {
        rc = 0;
        goto out;
    }
    int n = runs * instances;
    double total = 0;
    for (int i = 0; i < n; i++)
        total += lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    double median = n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
    double p90 = lat[(int)((n - 1) * 0.9 + 0.5)];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    nn_model_stats_t s;
    nn_model_stats(m, &s);
    printf("model: %s\nbatch: %d\nthreads: %d\ninstances: %d\nruns: %d\n",
           argv[0], batch, threads, instances, runs);
    printf("load_ms: %.2f\nmedian_ms: %.3f\np90_ms: %.3f\nmean_ms: %.3f\n",
           load_ms, median, p90, total / n);
    /* One instance: from the median. Several: what they did together. */
    printf("images_per_s: %.2f\n", instances == 1
                                       ? batch * 1000.0 / median
                                       : (double)batch * n * 1000.0 / wall);
    printf("weight_mb: %.1f\npeak_rss_mb: %.1f\n", s.weight_bytes / 1048576.0,
           ru.ru_maxrss / 1024.0);
    printf("gflop_per_image: %.4f\nisa: %s\n", s.flops / 1e9, nn_model_isa(m));
    /* CPU time per run (warm-up and context set-up included): on a shared
     * VM it leaves out time the hypervisor gave to others, so it compares
     * builds more steadily than wall time does. */
    double cpu = (ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e3 +
                 (ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e3 +
                 (ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e3 +
                 (ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e3;
    printf("cpu_ms_per_run: %.3f\n", cpu / ((runs + 3.0) * instances));
    rc = 0;
out:
    free(inst);
    free(tid);
    free(lat);
    nn_model_free(m);
    return rc;
}

/* ---- classify --------------------------------------------------------------------- */

/* Reads one image file and prepares it into slot, as the daemon's
 * instances do. Returns 0, or -1 with msg. */
static int classify_prepare(const classifier_t *c, const char *path, float *slot,
                            char *msg, size_t msg_size)
{
    void *data;
    size_t size;
    int rc = util_read_file(path, &data, &size);
    if (rc) {
        snprintf(msg, msg_size, "%s", strerror(-rc));
        return -1;
    }
    ic_err_t st = classifier_prepare(c, data, size, slot, msg, msg_size);
    free(data);
    return st == IC_OK ? 0 : -1;
}

/* Prints one image's top k, as text or as one line of JSON shaped like the
 * daemon's result entry. Returns 0, or -1 with msg. */
static int print_result(const classifier_t *c, const char *path, const class_score_t *s,
                        int k, int json, char *msg, size_t msg_size)
{
    if (!json) {
        printf("%s\n", path);
        for (int q = 0; q < k; q++)
            printf("  %.6f  %d  %s\n", (double)s[q].score, s[q].index,
                   c->labels[s[q].index]);
        return 0;
    }
    json_t *preds = json_array();
    for (int q = 0; q < k && preds; q++) {
        json_t *p = json_pack("{s:s, s:i, s:f}", "label", c->labels[s[q].index],
                              "index", s[q].index, "score", (double)s[q].score);
        if (json_array_append_new(preds, p)) {
            json_decref(preds);
            preds = NULL;
        }
    }
    /* "o" takes preds even when the pack fails. */
    json_t *entry = preds ? json_pack("{s:s, s:o}", "image", path, "predictions", preds)
                          : NULL;
    char *text = entry ? json_dumps(entry, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
    json_decref(entry);
    if (!text) {
        snprintf(msg, msg_size, "cannot write the JSON answer (out of memory, or a "
                                "file name or label that is not UTF-8)");
        return -1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int classify_usage(void)
{
    usage(stderr);
    return 2;
}

static int cmd_classify(int argc, char **argv)
{
    int top_k = 0, json = 0, threads = 0, n_pos = 0, options_done = 0;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fprintf(stderr, "imgclass: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || strncmp(a, "--", 2) != 0) {
            pos[n_pos++] = a;
        } else if (strcmp(a, "--") == 0) {
            options_done = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--top-k") == 0 || strcmp(a, "--threads") == 0) {
            int is_k = strcmp(a, "--top-k") == 0;
            if (i + 1 == argc) {
                fprintf(stderr, "imgclass: %s needs a value\n", a);
                free(pos);
                return classify_usage();
            }
            if (parse_int(argv[++i], 1, is_k ? 1000000 : 256, a,
                          is_k ? &top_k : &threads)) {
                free(pos);
                return classify_usage();
            }
        } else {
            fprintf(stderr, "imgclass: unknown option '%s'\n", a);
            free(pos);
            return classify_usage();
        }
    }
    if (n_pos < 2) {
        fprintf(stderr, "imgclass: classify needs a model folder and at least one image\n");
        free(pos);
        return classify_usage();
    }
    const char *dir = pos[0];
    const char **images = pos + 1;
    int n_images = n_pos - 1;

    char msg[1024];
    classifier_t *c;
    const img_limits_t limits = {.min_side = IMG_MIN_SIDE_DEFAULT,
                                 .max_pixels = IMG_MAX_PIXELS_SERVED};
    if (classifier_open(&c, dir, NULL, &limits, msg, sizeof msg) != IC_OK) {
        fprintf(stderr, "imgclass: %s\n", msg);
        free(pos);
        return 1;
    }
    int rc = 1, failed = 0;
    nn_context_t *ctx = NULL;
    float *input = NULL, *output = NULL;
    const char **names = NULL;
    class_score_t *s = NULL;
    if (top_k > c->n_classes) {
        fprintf(stderr, "imgclass: --top-k must be 1..%d (the model's classes)\n",
                c->n_classes);
        rc = 2;
        goto out;
    }
    /* The folder's top_k unless given; the daemon caps it likewise. */
    int k = top_k ? top_k : c->cfg.top_k < c->n_classes ? c->cfg.top_k : c->n_classes;
    if (!threads)
        threads = c->cfg.batching.threads;
    int batch = n_images < c->cfg.batching.max_batch_size ? n_images
                                                          : c->cfg.batching.max_batch_size;
    nn_error_t err = {{0}};
    if (nn_context_create(&ctx, c->nn, batch, threads, &err)) {
        fprintf(stderr, "imgclass: %s\n", err.msg);
        goto out;
    }
    size_t in_elems = c->in_elems, out_elems = c->out_elems;
    input = malloc((size_t)batch * in_elems * sizeof *input);
    output = malloc((size_t)batch * out_elems * sizeof *output);
    names = malloc((size_t)batch * sizeof *names);
    s = malloc((size_t)c->n_classes * sizeof *s);
    if (!input || !output || !names || !s) {
        fprintf(stderr, "imgclass: out of memory\n");
        goto out;
    }
    /* Runs of up to `batch` images that decoded, in the order given. */
    for (int i = 0; i < n_images;) {
        int m = 0;
        for (; i < n_images && m < batch; i++) {
            if (classify_prepare(c, images[i], input + (size_t)m * in_elems, msg,
                                   sizeof msg)) {
                fflush(stdout);
                fprintf(stderr, "imgclass: %s: %s\n", images[i], msg);
                failed = 1;
                continue;
            }
            names[m++] = images[i];
        }
        if (m == 0)
            continue;
        if (classifier_run(ctx, m, input, output, msg, sizeof msg) != IC_OK) {
            fflush(stdout);
            fprintf(stderr, "imgclass: %s\n", msg);
            goto out;
        }
        for (int q = 0; q < m; q++) {
            classifier_rank(c, output + (size_t)q * out_elems, s);
            if (print_result(c, names[q], s, k, json, msg, sizeof msg)) {
                fflush(stdout);
                fprintf(stderr, "imgclass: %s: %s\n", names[q], msg);
                failed = 1;
            }
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "imgclass: cannot write the output: %s\n", strerror(errno));
        goto out;
    }
    rc = failed;
out:
    free(s);
    free(names);
    free(input);
    free(output);
    nn_context_free(ctx);
    classifier_close(c);
    free(pos);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "info") == 0)
        return cmd_info(argc - 2, argv + 2);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    if (strcmp(argv[1], "classify") == 0)
        return cmd_classify(argc - 2, argv + 2);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        help(stdout);
        return 0;
    }
    fprintf(stderr, "imgclass: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
