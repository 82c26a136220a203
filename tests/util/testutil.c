#include "testutil.h"

#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tu_models_dir(void)
{
    const char *d = getenv("IMGCLASS_MODELS");
    return d && *d ? d : "build-models";
}

const char *tu_shared_dir(void)
{
    const char *d = getenv("IMGCLASS_SHARED");
    return d && *d ? d : "../shared";
}

const char *tu_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

double tu_rel_error(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) /* also catches NaN */
            num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

void tu_topk(const float *x, size_t n, int k, int *idx)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j; t++)
                taken |= idx[t] == (int)i;
            if (!taken && (best < 0 || x[i] > x[best]))
                best = (int)i;
        }
        idx[j] = best;
    }
}

/* ---- SHARED/imagenet ------------------------------------------------------------- */

static int tu_shared_skipped; /* tests not added by tu_add_shared_test */

/* Why SHARED/imagenet is not usable ("not found", ...), or NULL when it is. */
static const char *shared_problem(void)
{
    char path[PATH_MAX];
    struct stat st;
    tu_path(path, sizeof path, "%s/imagenet", tu_shared_dir());
    if (stat(path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? "not found" : strerror(errno);
    if (!S_ISDIR(st.st_mode))
        return "not a folder";
    if (access(path, R_OK | X_OK) != 0)
        return strerror(errno);
    return NULL;
}

int tu_have_shared(void)
{
    return shared_problem() == NULL;
}

void tu_require_shared(void)
{
    const char *why = shared_problem();
    if (!why)
        return;
    printf("SKIP %s: needs %s/imagenet (SHARED=%s): %s\n", program_invocation_short_name,
           tu_shared_dir(), tu_shared_dir(), why);
    fflush(stdout);
    exit(TU_EXIT_SKIP);
}

void tu_count_shared_skip(void)
{
    tu_shared_skipped++;
}

/* ---- the test model repository ---------------------------------------------------- */

#define TU_SHARED_PREFIX "\"../../../../shared/"

static char tu_repo[PATH_MAX];
static pid_t tu_repo_owner;
static int tu_repo_ready;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "testutil: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void remove_repo(void)
{
    if (tu_repo[0] && tu_repo_owner == getpid())
        nftw(tu_repo, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* s as the inside of a JSON string, appended to out (which has room). */
static size_t json_escape(char *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            n += (size_t)sprintf(out + n, "\\%c", c);
        else if (c < 0x20)
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        else
            out[n++] = (char)c;
    }
    return n;
}

/* text with every TU_SHARED_PREFIX replaced by "SHARED/ (malloc'ed). */
static char *rewrite_config(const char *text, size_t size, const char *shared)
{
    size_t plen = strlen(TU_SHARED_PREFIX), count = 0;
    for (const char *p = text; (p = strstr(p, TU_SHARED_PREFIX)); p += plen)
        count++;
    /* Each escaped character takes at most 6 bytes. */
    char *out = malloc(size + count * (6 * strlen(shared) + 2) + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    for (const char *p = text;;) {
        const char *hit = strstr(p, TU_SHARED_PREFIX);
        size_t keep = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(out + n, p, keep);
        n += keep;
        if (!hit)
            break;
        out[n++] = '"';
        n += json_escape(out + n, shared);
        out[n++] = '/';
        p = hit + plen;
    }
    out[n] = '\0';
    return out;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wx");
    ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
    size_t put = fwrite(data, 1, size, f);
    ck_assert_msg(fclose(f) == 0 && put == size, "cannot write %s", path);
}

/* tests/models/<name> into dir/<name>. */
static void copy_model(const char *name, const char *dir, const char *shared)
{
    char src[PATH_MAX], dst[PATH_MAX];
    tu_path(src, sizeof src, "tests/models/%s", name);
    tu_path(dst, sizeof dst, "%s/%s", dir, name);
    ck_assert_msg(mkdir(dst, 0755) == 0, "cannot create %s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    ck_assert_msg(d != NULL, "cannot read %s: %s", src, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        char from[PATH_MAX], to[PATH_MAX];
        tu_path(from, sizeof from, "%s/%s", src, e->d_name);
        tu_path(to, sizeof to, "%s/%s", dst, e->d_name);
        struct stat st;
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue; /* ".", "..": a model folder has only files */
        void *data;
        size_t size;
        int rc = util_read_file(from, &data, &size);
        ck_assert_msg(rc == 0, "cannot read %s: %s", from, strerror(-rc));
        if (strcmp(e->d_name, "config.json") == 0) {
            char *text = realloc(data, size + 1);
            ck_assert_ptr_nonnull(text);
            text[size] = '\0';
            data = rewrite_config(text, size, shared);
            free(text);
            size = strlen(data);
        }
        write_file(to, data, size);
        free(data);
    }
    closedir(d);
}

const char *tu_test_models(void)
{
    if (tu_repo_ready)
        return tu_repo;
    ck_assert_msg(!tu_repo[0], "the test model repository %s could not be made", tu_repo);
    char shared[PATH_MAX], made[PATH_MAX];
    ck_assert_msg(realpath(tu_shared_dir(), shared) != NULL, "SHARED=%s: %s",
                  tu_shared_dir(), strerror(errno));
    const char *tmp = getenv("TMPDIR");
    tu_path(made, sizeof made, "%s/imgclass-models-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(made) != NULL, "cannot create %s: %s", made, strerror(errno));
    ck_assert_msg(realpath(made, tu_repo) != NULL, "%s: %s", made, strerror(errno));
    if (!tu_repo_owner)
        ck_assert_int_eq(atexit(remove_repo), 0);
    tu_repo_owner = getpid();
    DIR *d = opendir("tests/models");
    ck_assert_msg(d != NULL, "cannot read tests/models (run from the repository): %s",
                  strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        char path[PATH_MAX];
        struct stat st;
        if (e->d_name[0] != '.' &&
            stat(tu_path(path, sizeof path, "tests/models/%s", e->d_name), &st) == 0 &&
            S_ISDIR(st.st_mode))
            copy_model(e->d_name, tu_repo, shared);
    }
    closedir(d);
    tu_repo_ready = 1;
    return tu_repo;
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr), ran = srunner_ntests_run(sr);
    srunner_free(sr);
    if (tu_shared_skipped) {
        const char *why = shared_problem();
        printf("SKIP %s (in part): %d of %d tests need %s/imagenet (SHARED=%s): %s; "
               "the other %d ran\n",
               program_invocation_short_name, tu_shared_skipped, tu_shared_skipped + ran,
               tu_shared_dir(), tu_shared_dir(), why ? why : "?", ran);
        fflush(stdout);
        if (!failed)
            return ran ? TU_EXIT_SKIP_PART : TU_EXIT_SKIP;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
