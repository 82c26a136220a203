/* The imgclass command-line tool, run as a user runs it: info, run and bench
 * on the shared pretrained model, and clear errors for bad arrays. */
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
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
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
    ck_assert_msg(strstr(out, "Conv(3x3 dw)+Clip"), "%s", out);
    ck_assert_int_eq(run(out, sizeof out, "%s bench %s --batch 0", tool(), m), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s bench %s --frobnicate 1", tool(), m), 2);
    ck_assert_int_eq(run(out, sizeof out, "%s nonsense", tool()), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("imgclass");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_run_matches_reference);
    tcase_add_test(tc, test_run_bad_arrays);
    tcase_add_test(tc, test_bench);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
