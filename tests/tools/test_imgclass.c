/* The imgclass command-line tool, run as a user runs it: info, run and bench
 * on the shared pretrained model, and clear errors for bad arrays; classify
 * on a test model folder against the shared expected answers. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/npy.h"
#include "util/testutil.h"

static const char *tool(void)
{
    const char *t = getenv("IMGCLASS_TOOL");
    return t && *t ? t : "build/imgclass";
}

/* Runs a shell command; returns its exit status and its output (stdout and
 * stderr together) in out. */
static int run(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t size, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n + 6 < sizeof cmd, "command too long");
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(out, 1, size - 1, f);
    out[got] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/imgclass-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *model(char *buf, size_t size)
{
    return tu_path(buf, size, "%s/imagenet/mobilenet_v2_1.0_224.onnx",
                   tu_shared_dir());
}

START_TEST(test_info)
{
    char out[8192], m[512];
    ck_assert_int_eq(run(out, sizeof out, "%s info %s", tool(),
                         model(m, sizeof m)), 0);
    ck_assert_msg(strstr(out, "input:  input float32 [N,3,224,224]"), "%s", out);
    ck_assert_msg(strstr(out, "output: output float32 [N,1001]"), "%s", out);
    ck_assert_msg(strstr(out, "Conv "), "%s", out);
    ck_assert_msg(strstr(out, "flops per image: 0.6"), "%s", out); /* 0.6 G */
    ck_assert_msg(strstr(out, "weight bytes: "), "%s", out);
    ck_assert_msg(strstr(out, "peak activation bytes per image: "), "%s", out);
}
END_TEST

START_TEST(test_run_matches_reference)
{
    char out[4096], m[512], in[512], want_path[512], got_path[512], msg[256];
    tu_path(in, sizeof in, "%s/imagenet/tensors/batch.npy", tu_shared_dir());
    tu_path(want_path, sizeof want_path, "%s/imagenet/tensors/batch.expected.npy",
            tu_shared_dir());
    tu_path(got_path, sizeof got_path, "%s/out.npy", tmpdir);
    ck_assert_msg(run(out, sizeof out, "%s run %s %s %s --threads 2", tool(),
                      model(m, sizeof m), in, got_path) == 0, "%s", out);
    npy_array_t got, want;
    ck_assert_msg(npy_read(got_path, &got, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_msg(npy_read(want_path, &want, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_int_eq(got.rank, 2);
    ck_assert_int_eq(got.dims[0], 8);
    ck_assert_int_eq(got.dims[1], 1001);
    for (int r = 0; r < 8; r++)
        ck_assert(tu_rel_error(got.data + r * 1001, want.data + r * 1001, 1001) <= 1e-4);
    npy_free(&got);
    npy_free(&want);
}
END_TEST

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_run_bad_arrays)
{
    char out[4096], m[512], path[512], dst[512], msg[256];
    model(m, sizeof m);
    tu_path(dst, sizeof dst, "%s/out.npy", tmpdir);
    /* Wrong spatial size. */
    float x[3 * 8 * 8] = {0};
    int64_t dims[4] = {1, 3, 8, 8};
    tu_path(path, sizeof path, "%s/small.npy", tmpdir);
    ck_assert(npy_write(path, x, 4, dims, msg, sizeof msg) == 0);
    ck_assert_int_eq(run(out, sizeof out, "%s run %s %s %s", tool(), m, path, dst), 1);
    ck_assert_msg(strstr(out, "dimension 2 is 8") && strstr(out, "[N,3,224,224]"),
                  "%s", out);
    /* Wrong rank. */
    int64_t flat[1] = {192};
    ck_assert(npy_write(path, x, 1, flat, msg, sizeof msg) == 0);
    ck_assert_int_eq(run(out, sizeof out, "%s run %s %s %s", tool(), m, path, dst), 1);
    ck_assert_msg(strstr(out, "rank 1"), "%s", out);
    /* float64 array. */
    static const char f8[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', "
                             "'fortran_order': False, 'shape': (1,), }";
    char buf[256] = {0};
    memcpy(buf, f8, sizeof f8 - 1);
    memset(buf + sizeof f8 - 1, ' ', 10 + 0x76 - (sizeof f8 - 1));
    buf[10 + 0x76 - 1] = '\n';
    tu_path(path, sizeof path, "%s/f8.npy", tmpdir);
    write_bytes(path, buf, 10 + 0x76 + 8);
    ck_assert_int_eq(run(out, sizeof out, "%s run %s %s %s", tool(), m, path, dst), 1);
    ck_assert_msg(strstr(out, "'<f8'") && strstr(out, "float32"), "%s", out);
    /* Truncated data. */
    tu_path(path, sizeof path, "%s/short.npy", tmpdir);
    write_bytes(path, buf, 10 + 0x76 + 3);
    ck_assert_int_eq(run(out, sizeof out, "%s run %s %s %s", tool(), m, path, dst), 1);
    /* Not a .npy at all, and a missing file. */
    ck_assert_int_eq(run(out, sizeof out, "%s run %s %s %s", tool(), m, m, dst), 1);
    ck_assert_msg(strstr(out, "not a .npy file"), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "%s run %s /nonexistent.npy %s", tool(),
                         m, dst), 1);
    ck_assert_msg(strstr(out, "cannot open"), "%s", out);
    /* A model that is not a model. */
    ck_assert_int_eq(run(out, sizeof out, "%s info %s", tool(), path), 1);
    ck_assert_msg(strlen(out) > 10, "%s", out);
}
END_TEST

START_TEST(test_bench)
{
    char out[4096], m[512];
    ck_assert_msg(run(out, sizeof out, "%s bench %s --batch 2 --threads 2 --runs 3",
                      tool(), model(m, sizeof m)) == 0, "%s", out);
    ck_assert_msg(strstr(out, "median_ms: ") && strstr(out, "p90_ms: ") &&
                  strstr(out, "images_per_s: ") && strstr(out, "peak_rss_mb: ") &&
                  strstr(out, "load_ms: "), "%s", out);
    ck_assert_msg(run(out, sizeof out, "%s bench %s --instances 2 --runs 2", tool(),
                      m) == 0, "%s", out);
    ck_assert_msg(strstr(out, "instances: 2"), "%s", out);
    ck_assert_msg(run(out, sizeof out, "%s bench %s --runs 2 --profile", tool(), m) == 0,
                  "%s", out);
    /* A depthwise layer: plain, or in the blocked layout (AVX-512). */
    ck_assert_msg(strstr(out, "Conv(3x3 dw)+Clip") || strstr(out, "NchwcDepthwise(3x3)+Clip"),
                  "%s", out);
    /* Per node too: the first node's line, a depthwise node's line. */
    static char nodes[65536];
    ck_assert_msg(run(nodes, sizeof nodes, "%s bench %s --runs 2 --profile-nodes", tool(),
                      m) == 0, "%s", nodes);
    const char *by_node = strstr(nodes, "GFLOP/s  name\n");
    ck_assert_msg(by_node && strstr(by_node, "\n    0 ") &&
                  (strstr(by_node, "Conv(3x3 dw)+Clip") ||
                   strstr(by_node, "NchwcDepthwise(3x3)+Clip")),
                  "%s", nodes);
    ck_assert_int_eq(run(out, sizeof out, "%s bench %s --batch 0", tool(), m), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s bench %s --frobnicate 1", tool(), m), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s nonsense", tool()), 2);
}
END_TEST


/* ---- classify ---- */

/* The test model folder: the shared MobileNet v2 with Coral's preprocessing
 * (tests/models/README.md), from the test repository (tu_test_models). */
static const char *classify_model(void)
{
    static char dir[600];
    return tu_path(dir, sizeof dir, "%s/mobilenet_v2", tu_test_models());
}
#define CLASSIFY_MODEL classify_model()
#define OUT_SIZE (256 * 1024)

/* The score lines after the line that is exactly `image` in a classify
 * text output, or NULL. */
static const char *find_entry(const char *out, const char *image)
{
    size_t n = strlen(image);
    for (const char *p = out; (p = strstr(p, image)); p += n)
        if ((p == out || p[-1] == '\n') && p[n] == '\n')
            return p + n + 1;
    return NULL;
}

/* Parses "  score  index  label" at *p and moves *p to the next line.
 * Returns 1, or 0 when the line is not a score line. */
static int score_line(const char **p, double *score, int *index, char *label,
                      size_t label_size)
{
    const char *end = strchr(*p, '\n');
    if (strncmp(*p, "  ", 2) != 0 || !end)
        return 0;
    int used = 0;
    if (sscanf(*p, "  %lf  %d  %n", score, index, &used) != 2 || used == 0)
        return 0;
    size_t len = (size_t)(end - (*p + used));
    if (len >= label_size)
        len = label_size - 1;
    memcpy(label, *p + used, len);
    label[len] = '\0';
    *p = end + 1;
    return 1;
}

typedef struct expected_row {
    char image[512]; /* path to the photo */
    int png;
    int index;
    char label[256];
    double score;
    int top5_index[5];
    double top5_score[5];
} expected_row_t;

/* Reads ../shared/imagenet/expected.tsv; returns the row count. */
static int read_expected(expected_row_t *rows, int max)
{
    char path[512], line[2048];
    tu_path(path, sizeof path, "%s/imagenet/expected.tsv", tu_shared_dir());
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s", path);
    int n = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f) && n < max) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        char *name = strtok(line, "\t"), *idx = strtok(NULL, "\t");
        char *label = strtok(NULL, "\t"), *score = strtok(NULL, "\t");
        char *top5 = strtok(NULL, "\t");
        ck_assert_msg(name && idx && label && score && top5, "bad row in %s", path);
        expected_row_t *r = &rows[n++];
        /* "bird.png" is images/bird.png; "images_224/bird.png" is itself. */
        tu_path(r->image, sizeof r->image, "%s/imagenet/%s%s", tu_shared_dir(),
                strchr(name, '/') ? "" : "images/", name);
        size_t len = strlen(name);
        r->png = len > 4 && strcmp(name + len - 4, ".png") == 0;
        r->index = atoi(idx);
        snprintf(r->label, sizeof r->label, "%s", label);
        r->score = atof(score);
        char *save = NULL, *tok = strtok_r(top5, ",", &save);
        for (int k = 0; k < 5; k++, tok = strtok_r(NULL, ",", &save)) {
            ck_assert_msg(tok && sscanf(tok, "%d:%lf", &r->top5_index[k],
                                        &r->top5_score[k]) == 2,
                          "bad top5 in %s", path);
        }
    }
    fclose(f);
    return n;
}

START_TEST(test_classify_matches_expected)
{
    expected_row_t rows[64];
    int n = read_expected(rows, 64);
    ck_assert_int_ge(n, 16);
    char cmd_images[6000] = "";
    for (int i = 0; i < n; i++) {
        ck_assert(strlen(cmd_images) + strlen(rows[i].image) + 2 < sizeof cmd_images);
        strcat(cmd_images, " ");
        strcat(cmd_images, rows[i].image);
    }
    char *out = malloc(OUT_SIZE);
    ck_assert_ptr_nonnull(out);
    int rc = run(out, OUT_SIZE, "%s classify %s%s", tool(), CLASSIFY_MODEL, cmd_images);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    for (int i = 0; i < n; i++) {
        const expected_row_t *r = &rows[i];
        const char *p = find_entry(out, r->image);
        ck_assert_msg(p != NULL, "no answer for %s in:\n%s", r->image, out);
        double score[5];
        int index[5];
        char label[256];
        /* The folder's top_k, 5; descending scores. */
        for (int k = 0; k < 5; k++) {
            char lb[256];
            ck_assert_msg(score_line(&p, &score[k], &index[k], lb, sizeof lb),
                          "%s: line %d of its answer is not a score line", r->image,
                          k + 1);
            if (k == 0)
                snprintf(label, sizeof label, "%s", lb);
            else
                ck_assert_msg(score[k] <= score[k - 1], "%s: not sorted", r->image);
        }
        ck_assert_msg(strncmp(p, "  ", 2) != 0, "%s: more than 5 classes", r->image);
        ck_assert_msg(index[0] == r->index && strcmp(label, r->label) == 0,
                      "%s: top-1 %d '%s', expected %d '%s'", r->image, index[0],
                      label, r->index, r->label);
        /* PNG with exactly the reference preprocessing: 1e-4; a JPEG is
         * decoded by another libjpeg build (expected.tsv's README). */
        double tol = r->png ? 1e-4 : 0.05;
        ck_assert_msg(fabs(score[0] - r->score) <= tol, "%s: top-1 score %.6f, "
                      "expected %.6f (tolerance %g)", r->image, score[0], r->score, tol);
        /* The whole top 5 of a PNG, position by position; expected.tsv
         * rounds these to 4 decimals, hence the extra 5e-5. Indices are
         * compared where the class is clear of its neighbours. */
        for (int k = 0; r->png && k < 5; k++) {
            ck_assert_msg(fabs(score[k] - r->top5_score[k]) <= 1e-4 + 5e-5,
                          "%s: score %d is %.6f, expected %.4f", r->image, k + 1,
                          score[k], r->top5_score[k]);
            if (r->top5_score[k] >= 1e-3)
                ck_assert_msg(index[k] == r->top5_index[k], "%s: class %d is %d, "
                              "expected %d", r->image, k + 1, index[k],
                              r->top5_index[k]);
        }
    }
    free(out);
}
END_TEST

START_TEST(test_classify_json)
{
    char out[16384], png[512], jpg[512];
    tu_path(png, sizeof png, "%s/imagenet/images/bird.png", tu_shared_dir());
    tu_path(jpg, sizeof jpg, "%s/imagenet/images/cat.jpg", tu_shared_dir());
    int rc = run(out, sizeof out, "%s classify %s --json %s --top-k 3 %s --threads 1",
                 tool(), CLASSIFY_MODEL, png, jpg);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    const char *images[2] = {png, jpg};
    const int want_index[2] = {20, 286};
    const char *want_label[2] = {"chickadee", "Egyptian cat"};
    const double want_score[2] = {0.994465, 0.804524}, tol[2] = {1e-4, 0.05};
    char *line = out;
    for (int i = 0; i < 2; i++) {
        char *end = strchr(line, '\n');
        ck_assert_msg(end != NULL, "%d lines, expected 2:\n%s", i, out);
        *end = '\0';
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        ck_assert_msg(o != NULL, "not JSON (%s): %s", je.text, line);
        ck_assert_msg(json_is_object(o) && json_object_size(o) == 2, "%s", line);
        json_t *img = json_object_get(o, "image");
        ck_assert_msg(json_is_string(img) && strcmp(json_string_value(img), images[i]) == 0,
                      "%s", line);
        json_t *preds = json_object_get(o, "predictions");
        ck_assert_msg(json_is_array(preds) && json_array_size(preds) == 3, "%s", line);
        double prev = 2;
        for (size_t q = 0; q < 3; q++) {
            json_t *p = json_array_get(preds, q);
            json_t *label = json_object_get(p, "label");
            json_t *index = json_object_get(p, "index");
            json_t *score = json_object_get(p, "score");
            ck_assert_msg(json_object_size(p) == 3 && json_is_string(label) &&
                          json_is_integer(index) && json_is_real(score), "%s", line);
            double sc = json_real_value(score);
            ck_assert_msg(sc <= prev && sc >= 0, "%s", line);
            prev = sc;
            if (q == 0) {
                ck_assert_int_eq(json_integer_value(index), want_index[i]);
                ck_assert_str_eq(json_string_value(label), want_label[i]);
                ck_assert_msg(fabs(sc - want_score[i]) <= tol[i], "%s", line);
            }
        }
        json_decref(o);
        line = end + 1;
    }
    ck_assert_msg(*line == '\0', "more than 2 lines:\n%s", line);
}
END_TEST

/* Copies the first `keep` bytes of src to dst. */
static void truncated_copy(const char *src, const char *dst, size_t keep)
{
    FILE *f = fopen(src, "rb");
    ck_assert_msg(f != NULL, "%s", src);
    char *buf = malloc(keep);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, keep, f), keep);
    fclose(f);
    write_bytes(dst, buf, keep);
    free(buf);
}

START_TEST(test_classify_bad_images)
{
    char out[16384], good[512], png[512], jpg[512], src[512], want[1024];
    tu_path(good, sizeof good, "%s/imagenet/images/cat.jpg", tu_shared_dir());
    tu_path(src, sizeof src, "%s/imagenet/images/bird.png", tu_shared_dir());
    tu_path(png, sizeof png, "%s/truncated.png", tmpdir);
    truncated_copy(src, png, 20000);
    tu_path(src, sizeof src, "%s/imagenet/images/bird.jpg", tu_shared_dir());
    tu_path(jpg, sizeof jpg, "%s/truncated.jpg", tmpdir);
    truncated_copy(src, jpg, 8000);
    /* The good image is still classified, between two bad ones. */
    int rc = run(out, sizeof out, "%s classify %s %s %s %s --top-k 1", tool(),
                 CLASSIFY_MODEL, png, good, jpg);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    snprintf(want, sizeof want, "imgclass: %s: PNG: ", png);
    ck_assert_msg(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "imgclass: %s: JPEG: ", jpg);
    ck_assert_msg(strstr(out, want), "%s", out);
    const char *p = find_entry(out, good);
    ck_assert_msg(p && strncmp(p, "  0.8", 4) == 0 && strstr(p, "  286  Egyptian cat\n"),
                  "%s", out);
    ck_assert_msg(!find_entry(out, png) && !find_entry(out, jpg), "%s", out);
    /* A missing file, a file that is no image, a folder: still exit 1. */
    char missing[512], text[512];
    tu_path(missing, sizeof missing, "%s/missing.png", tmpdir);
    tu_path(text, sizeof text, "%s/imagenet/imagenet_labels.txt", tu_shared_dir());
    rc = run(out, sizeof out, "%s classify %s %s %s %s --json", tool(), CLASSIFY_MODEL,
             missing, text, tmpdir);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, out);
    snprintf(want, sizeof want, "imgclass: %s: No such file", missing);
    ck_assert_msg(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "imgclass: %s: ", text);
    ck_assert_msg(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "imgclass: %s: ", tmpdir);
    ck_assert_msg(strstr(out, want), "%s", out);
    ck_assert_msg(!strstr(out, "{"), "%s", out);
}
END_TEST

START_TEST(test_classify_bad_model_and_options)
{
    char out[8192], img[512], want[600];
    tu_path(img, sizeof img, "%s/imagenet/images/cat.jpg", tu_shared_dir());
    /* No such folder; a folder without config.json or model.onnx; a file. */
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s/nonexistent %s", tool(),
                         tmpdir, img), 1);
    snprintf(want, sizeof want, "imgclass: %s/nonexistent: No such file", tmpdir);
    ck_assert_msg(strstr(out, want), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s", tool(), tmpdir, img), 1);
    ck_assert_msg(strstr(out, "model.onnx") && strstr(out, "config.json"), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s", tool(), img, img), 1);
    ck_assert_msg(strstr(out, "not a folder"), "%s", out);
    /* A broken config.json names itself. */
    char cfg[512];
    tu_path(cfg, sizeof cfg, "%s/config.json", tmpdir);
    write_bytes(cfg, "{\"top_k\": 0}", 12);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s", tool(), tmpdir, img), 1);
    ck_assert_msg(strstr(out, "config.json") && strstr(out, "top_k"), "%s", out);
    /* Bad options: usage and 2. */
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s", tool(), CLASSIFY_MODEL), 2);
    ck_assert_msg(strstr(out, "usage:") && strstr(out, "classify MODEL_DIR"), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "%s classify", tool()), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s --top-k 0", tool(),
                         CLASSIFY_MODEL, img), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s --top-k", tool(),
                         CLASSIFY_MODEL, img), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s --threads x", tool(),
                         CLASSIFY_MODEL, img), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s --frobnicate", tool(),
                         CLASSIFY_MODEL, img), 2);
    ck_assert_msg(strstr(out, "--frobnicate"), "%s", out);
    /* More than the model's 1001 classes. */
    ck_assert_int_eq(run(out, sizeof out, "%s classify %s %s --top-k 1002", tool(),
                         CLASSIFY_MODEL, img), 2);
    ck_assert_msg(strstr(out, "1..1001"), "%s", out);
    /* --help describes classify. */
    ck_assert_int_eq(run(out, sizeof out, "%s --help", tool()), 0);
    ck_assert_msg(strstr(out, "classify MODEL_DIR IMAGE...") && strstr(out, "--json"),
                  "%s", out);
}
END_TEST

int main(void)
{
    tu_require_shared();
    Suite *s = suite_create("imgclass");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_run_matches_reference);
    tcase_add_test(tc, test_run_bad_arrays);
    tcase_add_test(tc, test_bench);
    tcase_add_test(tc, test_classify_matches_expected);
    tcase_add_test(tc, test_classify_json);
    tcase_add_test(tc, test_classify_bad_images);
    tcase_add_test(tc, test_classify_bad_model_and_options);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
