/* Settings: the daemon's (src/config.c: defaults, file, IMGCLASSD_*
 * environment, flags) and a model folder's (src/classify/model_config.c:
 * config.json, its defaults and paths, the file stamps), both read through
 * the key tables of src/util/settings.c. Files go to mkdtemp folders in
 * /tmp, removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "classify/model_config.h"
#include "config.h"
#include "util/testutil.h"

/* Every setting of server_config_t: key, flag, environment variable. */
static const struct {
    const char *key, *flag, *env;
} KEYS[] = {
    {"listen", "listen", "IMGCLASSD_LISTEN"},
    {"port", "port", "IMGCLASSD_PORT"},
    {"models_dir", "models-dir", "IMGCLASSD_MODELS_DIR"},
    {"max_connections", "max-connections", "IMGCLASSD_MAX_CONNECTIONS"},
    {"connection_timeout_s", "connection-timeout-s", "IMGCLASSD_CONNECTION_TIMEOUT_S"},
    {"max_body_bytes", "max-body-bytes", "IMGCLASSD_MAX_BODY_BYTES"},
    {"max_image_pixels", "max-image-pixels", "IMGCLASSD_MAX_IMAGE_PIXELS"},
    {"min_image_side", "min-image-side", "IMGCLASSD_MIN_IMAGE_SIDE"},
    {"max_images_per_request", "max-images-per-request", "IMGCLASSD_MAX_IMAGES_PER_REQUEST"},
    {"drain_grace_ms", "drain-grace-ms", "IMGCLASSD_DRAIN_GRACE_MS"},
    {"shutdown_timeout_ms", "shutdown-timeout-ms", "IMGCLASSD_SHUTDOWN_TIMEOUT_MS"},
    {"log_requests", "log-requests", "IMGCLASSD_LOG_REQUESTS"},
    {"log_format", "log-format", "IMGCLASSD_LOG_FORMAT"},
    {"log_level", "log-level", "IMGCLASSD_LOG_LEVEL"},
    {"triton_metrics", "triton-metrics", "IMGCLASSD_TRITON_METRICS"},
    {"auth_tokens_file", "auth-tokens-file", "IMGCLASSD_AUTH_TOKENS_FILE"},
    {"auth_health", "auth-health", "IMGCLASSD_AUTH_HEALTH"},
    {"auth_metrics", "auth-metrics", "IMGCLASSD_AUTH_METRICS"},
    {"cors_origins", "cors-origins", "IMGCLASSD_CORS_ORIGINS"},
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

/* ---- a temporary folder ------------------------------------------------------------ */

/* The suite's folder, made and removed by the parent process (so that a
 * test that fails, which skips its teardown, leaves nothing behind), and
 * each test's own folder inside. */
static char basedir[64];
static char tmpdir[96];

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(char *dir)
{
    if (dir[0])
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

static void suite_setup(void)
{
    snprintf(basedir, sizeof basedir, "/tmp/imgclassd-test-config-XXXXXX");
    if (!mkdtemp(basedir)) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

static void suite_teardown(void)
{
    remove_tree(basedir);
}

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/t-XXXXXX", basedir);
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

/* Writes text to tmpdir/name, its path into path; returns path. */
static const char *write_file(char *path, size_t size, const char *name, const char *text)
{
    tu_path(path, size, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* No IMGCLASSD_* variable from the caller's environment. */
static void clear_env(void)
{
    for (size_t i = 0; i < N_KEYS; i++)
        unsetenv(KEYS[i].env);
}

static void setup(void)
{
    clear_env();
    make_tmpdir();
}

static void teardown(void)
{
    clear_env();
    remove_tree(tmpdir);
}

/* ---- the daemon's settings ----------------------------------------------------------- */

START_TEST(server_defaults)
{
    server_config_t cfg;
    char msg[256] = "";
    ic_err_t rc = server_config_load(&cfg, NULL, NULL, 0, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_str_eq(cfg.listen, "0.0.0.0");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.models_dir, "models");
    ck_assert_int_eq(cfg.max_connections, 1024);
    ck_assert_int_eq(cfg.connection_timeout_s, 75);
    ck_assert_uint_eq(cfg.max_body_bytes, 32u << 20);
    ck_assert_uint_eq(cfg.max_image_pixels, 50000000);
    ck_assert_int_eq(cfg.min_image_side, 8);
    ck_assert_int_eq(cfg.max_images_per_request, 64);
    ck_assert_int_eq(cfg.drain_grace_ms, 5000);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 30000);
    ck_assert_int_eq(cfg.log_requests, 1);
    ck_assert_str_eq(cfg.log_format, "text");
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_int_eq(cfg.triton_metrics, 0);
    ck_assert_ptr_null(cfg.auth_tokens_file);
    ck_assert_int_eq(cfg.auth_health, 0);
    ck_assert_int_eq(cfg.auth_metrics, 0);
    ck_assert_ptr_null(cfg.cors_origins);
    server_config_free(&cfg);
    ck_assert_ptr_null(cfg.listen);

    /* The shipped configuration loads, and says what the defaults say. */
    rc = server_config_load(&cfg, "conf/imgclassd.json", NULL, 0, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_uint_eq(cfg.max_body_bytes, 32u << 20);
    server_config_free(&cfg);
}
END_TEST

static const char FULL_FILE[] =
    "{\"listen\": \"127.0.0.1\", \"port\": 9000, \"models_dir\": \"/srv/models\",\n"
    " \"max_connections\": 10, \"connection_timeout_s\": 5, \"max_body_bytes\": 4096,\n"
    " \"max_image_pixels\": 4294967296, \"min_image_side\": 1,\n"
    " \"max_images_per_request\": 4096, \"drain_grace_ms\": 0, \"shutdown_timeout_ms\": 1,\n"
    " \"log_requests\": false, \"log_format\": \"json\", \"log_level\": \"debug\",\n"
    " \"triton_metrics\": true, \"auth_tokens_file\": \"/etc/tokens\",\n"
    " \"auth_health\": true, \"auth_metrics\": true, \"cors_origins\": \"*\"}\n";

START_TEST(server_file)
{
    char path[256];
    write_file(path, sizeof path, "d.json", FULL_FILE);
    server_config_t cfg;
    char msg[256] = "";
    ic_err_t rc = server_config_load(&cfg, path, NULL, 0, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_str_eq(cfg.listen, "127.0.0.1");
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_str_eq(cfg.models_dir, "/srv/models");
    ck_assert_int_eq(cfg.max_connections, 10);
    ck_assert_int_eq(cfg.connection_timeout_s, 5);
    ck_assert_uint_eq(cfg.max_body_bytes, 4096);
    ck_assert_uint_eq(cfg.max_image_pixels, 4294967296ull); /* a size_t beyond int */
    ck_assert_int_eq(cfg.min_image_side, 1);
    ck_assert_int_eq(cfg.max_images_per_request, 4096);
    ck_assert_int_eq(cfg.drain_grace_ms, 0);
    ck_assert_int_eq(cfg.shutdown_timeout_ms, 1);
    ck_assert_int_eq(cfg.log_requests, 0);
    ck_assert_str_eq(cfg.log_format, "json");
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_int_eq(cfg.triton_metrics, 1);
    ck_assert_str_eq(cfg.auth_tokens_file, "/etc/tokens");
    ck_assert_int_eq(cfg.auth_health, 1);
    ck_assert_int_eq(cfg.auth_metrics, 1);
    ck_assert_str_eq(cfg.cors_origins, "*");
    server_config_free(&cfg);

    /* An empty object: every default. */
    write_file(path, sizeof path, "e.json", "{}");
    ck_assert_int_eq(server_config_load(&cfg, path, NULL, 0, msg, sizeof msg), IC_OK);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.listen, "0.0.0.0");
    server_config_free(&cfg);
}
END_TEST

/* Defaults < file < environment < flags, key by key. */
START_TEST(server_precedence)
{
    char path[256];
    write_file(path, sizeof path, "p.json",
               "{\"port\": 9000, \"listen\": \"10.0.0.1\", \"log_requests\": false,"
               " \"max_body_bytes\": 2048, \"models_dir\": \"from-file\"}");
    setenv("IMGCLASSD_PORT", "9100", 1);
    setenv("IMGCLASSD_LISTEN", "::1", 1);
    setenv("IMGCLASSD_LOG_REQUESTS", "true", 1);
    setenv("IMGCLASSD_LOG_FORMAT", "json", 1);
    setenv("IMGCLASSD_MAX_IMAGE_PIXELS", "4000000000", 1); /* size_t, beyond int */
    server_config_t cfg;
    char msg[256] = "";
    ck_assert_int_eq(server_config_load(&cfg, path, NULL, 0, msg, sizeof msg), IC_OK);
    ck_assert_int_eq(cfg.port, 9100);            /* env over file */
    ck_assert_str_eq(cfg.listen, "::1");         /* env over file */
    ck_assert_int_eq(cfg.log_requests, 1);       /* env over file */
    ck_assert_str_eq(cfg.log_format, "json");    /* env over default */
    ck_assert_uint_eq(cfg.max_body_bytes, 2048); /* file over default */
    ck_assert_str_eq(cfg.models_dir, "from-file");
    ck_assert_int_eq(cfg.max_connections, 1024); /* default */
    ck_assert_uint_eq(cfg.max_image_pixels, 4000000000ull);
    server_config_free(&cfg);

    /* Without the file, the environment over the defaults. */
    ck_assert_int_eq(server_config_load(&cfg, NULL, NULL, 0, msg, sizeof msg), IC_OK);
    ck_assert_int_eq(cfg.port, 9100);
    ck_assert_uint_eq(cfg.max_body_bytes, 32u << 20);
    ck_assert_str_eq(cfg.models_dir, "models");
    server_config_free(&cfg);
}
END_TEST

START_TEST(server_flags)
{
    char path[256];
    write_file(path, sizeof path, "f.json", "{\"port\": 9000, \"models_dir\": \"from-file\"}");
    setenv("IMGCLASSD_PORT", "9100", 1);
    setenv("IMGCLASSD_LOG_LEVEL", "warn", 1);
    setenv("IMGCLASSD_MODELS_DIR", "from-env", 1);
    const config_flag_t flags[] = {
        {"port", "9200"},
        {"models", "/from/flag"}, /* the alias of --models-dir */
        {"max-body-bytes", "8192"},
        {"log-requests", "false"},
        {"triton-metrics", "true"},
        {"cors-origins", "https://a.example,https://b.example"},
    };
    server_config_t cfg;
    char msg[256] = "";
    ic_err_t rc = server_config_load(&cfg, path, flags, (int)(sizeof flags / sizeof flags[0]),
                                     msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_int_eq(cfg.port, 9200);                 /* flag over env over file */
    ck_assert_str_eq(cfg.models_dir, "/from/flag");   /* alias, over env and file */
    ck_assert_str_eq(cfg.log_level, "warn");          /* env, no flag */
    ck_assert_uint_eq(cfg.max_body_bytes, 8192);
    ck_assert_int_eq(cfg.log_requests, 0);
    ck_assert_int_eq(cfg.triton_metrics, 1);
    ck_assert_str_eq(cfg.cors_origins, "https://a.example,https://b.example");
    server_config_free(&cfg);

    /* The long name, and the last of two flags wins. */
    const config_flag_t twice[] = {{"models-dir", "first"}, {"models-dir", "second"}};
    ck_assert_int_eq(server_config_load(&cfg, NULL, twice, 2, msg, sizeof msg), IC_OK);
    ck_assert_str_eq(cfg.models_dir, "second");
    server_config_free(&cfg);
}
END_TEST

/* Loading must fail with IC_ECONFIG, a message holding every `want`, and
 * the config freed. */
static void expect_refused(const char *path, const config_flag_t *flags, int n_flags,
                           const char *want1, const char *want2, const char *want3)
{
    server_config_t cfg;
    char msg[512] = "";
    ic_err_t rc = server_config_load(&cfg, path, flags, n_flags, msg, sizeof msg);
    ck_assert_msg(rc == IC_ECONFIG, "accepted (%s); expected a message with '%s'",
                  ic_errname(rc), want1);
    const char *wants[] = {want1, want2, want3};
    for (int i = 0; i < 3; i++)
        ck_assert_msg(!wants[i] || strstr(msg, wants[i]), "message '%s' lacks '%s'", msg,
                      wants[i]);
    ck_assert_ptr_null(cfg.listen); /* freed */
    ck_assert_ptr_null(cfg.models_dir);
}

START_TEST(server_file_refused)
{
    static const struct {
        const char *json, *want1, *want2;
    } cases[] = {
        {"{\"prot\": 80}", "unknown key", "\"prot\""},
        {"{\"port\": \"80\"}", "\"port\"", "an integer"},
        {"{\"port\": 80.5}", "\"port\"", "an integer"},
        {"{\"port\": 65536}", "\"port\"", "0..65535"},
        {"{\"port\": -1}", "\"port\"", "-1"},
        {"{\"max_body_bytes\": 1023}", "\"max_body_bytes\"", "1024.."},
        {"{\"max_image_pixels\": 0}", "\"max_image_pixels\"", NULL},
        {"{\"max_connections\": 0}", "\"max_connections\"", NULL},
        {"{\"log_requests\": 1}", "\"log_requests\"", "true or false"},
        {"{\"log_requests\": \"true\"}", "\"log_requests\"", "true or false"},
        {"{\"listen\": \"\"}", "\"listen\"", "non-empty string"},
        {"{\"listen\": 127}", "\"listen\"", "string"},
        {"{\"cors_origins\": null}", "\"cors_origins\"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        write_file(path, sizeof path, "bad.json", cases[i].json);
        expect_refused(path, NULL, 0, path, cases[i].want1, cases[i].want2);
    }
    /* The file itself: missing, not JSON, not an object, a key twice. */
    char path[256];
    tu_path(path, sizeof path, "%s/missing.json", tmpdir);
    expect_refused(path, NULL, 0, path, "No such file", NULL);
    write_file(path, sizeof path, "broken.json", "{\"port\": 80,\n \"listen\": }");
    expect_refused(path, NULL, 0, path, ":2:", NULL);
    write_file(path, sizeof path, "array.json", "[{\"port\": 80}]");
    expect_refused(path, NULL, 0, path, "JSON object", NULL);
    write_file(path, sizeof path, "twice.json", "{\"port\": 80, \"port\": 81}");
    expect_refused(path, NULL, 0, path, "port", NULL);
}
END_TEST

START_TEST(server_env_refused)
{
    static const struct {
        const char *var, *value, *want;
    } cases[] = {
        {"IMGCLASSD_PORT", "abc", "an integer"},
        {"IMGCLASSD_PORT", "80x", "an integer"},
        {"IMGCLASSD_PORT", "", "an integer"},
        {"IMGCLASSD_PORT", "99999999999999999999", "an integer"}, /* overflows */
        {"IMGCLASSD_PORT", "70000", "0..65535"},
        {"IMGCLASSD_MAX_BODY_BYTES", "-5", "\"max_body_bytes\""},
        {"IMGCLASSD_LOG_REQUESTS", "yes", "true or false"},
        {"IMGCLASSD_LOG_REQUESTS", "1", "true or false"},
        {"IMGCLASSD_LOG_REQUESTS", "TRUE", "true or false"},
        {"IMGCLASSD_AUTH_HEALTH", "", "true or false"},
        {"IMGCLASSD_LISTEN", "", "must not be empty"},
        {"IMGCLASSD_CONNECTION_TIMEOUT_S", "0", "\"connection_timeout_s\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(cases[i].var, cases[i].value, 1);
        expect_refused(NULL, NULL, 0, cases[i].var, cases[i].want, NULL);
        unsetenv(cases[i].var);
    }
    /* A bad variable is refused even when a flag sets the same key. */
    setenv("IMGCLASSD_PORT", "abc", 1);
    const config_flag_t port[] = {{"port", "80"}};
    expect_refused(NULL, port, 1, "IMGCLASSD_PORT", NULL, NULL);
    unsetenv("IMGCLASSD_PORT");
    /* Variables that are no setting are none of the daemon's business. */
    setenv("IMGCLASSD_NO_SUCH_SETTING", "whatever", 1);
    server_config_t cfg;
    char msg[256] = "";
    ck_assert_int_eq(server_config_load(&cfg, NULL, NULL, 0, msg, sizeof msg), IC_OK);
    server_config_free(&cfg);
    unsetenv("IMGCLASSD_NO_SUCH_SETTING");
}
END_TEST

START_TEST(server_flags_refused)
{
    static const struct {
        config_flag_t flag;
        const char *want1, *want2;
    } cases[] = {
        {{"prot", "80"}, "unknown option --prot", NULL},
        {{"models_dir", "x"}, "unknown option --models_dir", NULL},
        {{"port", "eighty"}, "--port", "an integer"},
        {{"port", "65536"}, "--port", "0..65535"},
        {{"max-connections", "0"}, "--max-connections", "\"max_connections\""},
        {{"log-requests", "on"}, "--log-requests", "true or false"},
        {{"models", ""}, "--models", "must not be empty"},
        {{"min-image-side", "8.5"}, "--min-image-side", "an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(NULL, &cases[i].flag, 1, cases[i].want1, cases[i].want2, NULL);
}
END_TEST

/* log_format and log_level take only their listed values, from any source. */
START_TEST(server_log_values_refused)
{
    char path[256];
    write_file(path, sizeof path, "lf.json", "{\"log_format\": \"xml\"}");
    expect_refused(path, NULL, 0, "\"log_format\"", "text", "json");
    write_file(path, sizeof path, "ll.json", "{\"log_level\": \"verbose\"}");
    expect_refused(path, NULL, 0, "\"log_level\"", NULL, NULL);
    setenv("IMGCLASSD_LOG_FORMAT", "JSON", 1); /* case matters */
    expect_refused(NULL, NULL, 0, "\"log_format\"", NULL, NULL);
    unsetenv("IMGCLASSD_LOG_FORMAT");
    const config_flag_t lvl[] = {{"log-level", "trace"}};
    expect_refused(NULL, lvl, 1, "\"log_level\"", NULL, NULL);
    /* A bad file is refused even where a flag overrides the value, as for
     * every other key: the file is wrong either way. */
    write_file(path, sizeof path, "lf2.json", "{\"log_format\": \"xml\"}");
    const config_flag_t fix[] = {{"log-format", "json"}};
    expect_refused(path, fix, 1, "\"log_format\"", path, NULL);
}
END_TEST

/* A bad log value names where it came from (the file, the variable or the
 * flag), as every other bad value does. */
START_TEST(server_log_values_name_the_source)
{
    char path[256];
    write_file(path, sizeof path, "lf.json", "{\"log_format\": \"xml\"}");
    expect_refused(path, NULL, 0, "\"log_format\"", path, NULL);
    setenv("IMGCLASSD_LOG_LEVEL", "verbose", 1);
    expect_refused(NULL, NULL, 0, "\"log_level\"", "IMGCLASSD_LOG_LEVEL", NULL);
    unsetenv("IMGCLASSD_LOG_LEVEL");
    const config_flag_t fmt[] = {{"log-format", "xml"}};
    expect_refused(NULL, fmt, 1, "\"log_format\"", "--log-format", NULL);
}
END_TEST

START_TEST(server_is_flag)
{
    for (size_t i = 0; i < N_KEYS; i++)
        ck_assert_msg(server_config_is_flag(KEYS[i].flag), "--%s", KEYS[i].flag);
    ck_assert(server_config_is_flag("models"));
    static const char *const not_flags[] = {
        "models_dir", "max_body_bytes", "prot", "", "Port", "--port", "model", "models-",
        "IMGCLASSD_PORT", "config", "help",
    };
    for (size_t i = 0; i < sizeof not_flags / sizeof not_flags[0]; i++)
        ck_assert_msg(!server_config_is_flag(not_flags[i]), "'%s' taken as a flag",
                      not_flags[i]);
}
END_TEST

START_TEST(server_usage)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    server_config_usage(f);
    ck_assert_int_eq(fclose(f), 0);
    for (size_t i = 0; i < N_KEYS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s ", KEYS[i].flag);
        ck_assert_msg(strstr(text, flag), "usage lacks %s:\n%s", flag, text);
        ck_assert_msg(strstr(text, KEYS[i].env), "usage lacks %s:\n%s", KEYS[i].env, text);
    }
    /* One flag line and one variable line per setting, nothing else but
     * the heading. */
    int lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, 1 + 2 * (int)N_KEYS);
    free(text);
}
END_TEST

/* ---- a model folder's config.json ------------------------------------------------------ */

START_TEST(model_defaults)
{
    model_config_t cfg;
    char msg[256] = "", want[256];
    ic_err_t rc = model_config_load(&cfg, tmpdir, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_str_eq(cfg.model_path, tu_path(want, sizeof want, "%s/model.onnx", tmpdir));
    ck_assert_ptr_null(cfg.labels_path); /* no labels.txt */
    ck_assert_str_eq(cfg.version, "1");
    ck_assert_ptr_null(cfg.preprocess);
    ck_assert_int_eq(cfg.batching.max_batch_size, 8);
    ck_assert_int_eq(cfg.batching.max_queue_delay_us, 2000);
    ck_assert_int_eq(cfg.batching.instances, 1);
    ck_assert_int_eq(cfg.batching.threads, 1);
    ck_assert_int_eq(cfg.batching.queue_capacity, 64);
    ck_assert_int_eq(cfg.top_k, 5);
    ck_assert_int_eq(cfg.timeout_ms, 10000);
    model_config_free(&cfg);
    ck_assert_ptr_null(cfg.model_path);

    /* labels.txt is picked up once it exists. */
    char path[256];
    write_file(path, sizeof path, "labels.txt", "a\nb\n");
    ck_assert_int_eq(model_config_load(&cfg, tmpdir, msg, sizeof msg), IC_OK);
    ck_assert_str_eq(cfg.labels_path, path);
    model_config_free(&cfg);

    /* An empty config.json is the same as none. */
    write_file(path, sizeof path, "config.json", "{}");
    ck_assert_int_eq(model_config_load(&cfg, tmpdir, msg, sizeof msg), IC_OK);
    ck_assert_str_eq(cfg.model_path, tu_path(want, sizeof want, "%s/model.onnx", tmpdir));
    ck_assert_str_eq(cfg.labels_path, tu_path(want, sizeof want, "%s/labels.txt", tmpdir));
    ck_assert_int_eq(cfg.batching.max_batch_size, 8);
    model_config_free(&cfg);
}
END_TEST

START_TEST(model_keys)
{
    char path[256], want[256];
    write_file(path, sizeof path, "labels.txt", "unused\n");
    write_file(path, sizeof path, "config.json",
               "{\"model\": \"sub/net.onnx\", \"labels\": \"names.txt\", \"version\": \"v2\",\n"
               " \"max_batch_size\": 16, \"max_queue_delay_us\": 0, \"instances\": 2,\n"
               " \"threads\": 3, \"queue_capacity\": 100, \"top_k\": 7, \"timeout_ms\": 250,\n"
               " \"preprocess\": {\"resize\": \"stretch\", \"mean\": 0.5}}");
    model_config_t cfg;
    char msg[256] = "";
    ic_err_t rc = model_config_load(&cfg, tmpdir, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s", msg);
    ck_assert_str_eq(cfg.model_path, tu_path(want, sizeof want, "%s/sub/net.onnx", tmpdir));
    ck_assert_str_eq(cfg.labels_path, tu_path(want, sizeof want, "%s/names.txt", tmpdir));
    ck_assert_str_eq(cfg.version, "v2");
    ck_assert_int_eq(cfg.batching.max_batch_size, 16);
    ck_assert_int_eq(cfg.batching.max_queue_delay_us, 0);
    ck_assert_int_eq(cfg.batching.instances, 2);
    ck_assert_int_eq(cfg.batching.threads, 3);
    ck_assert_int_eq(cfg.batching.queue_capacity, 100);
    ck_assert_int_eq(cfg.top_k, 7);
    ck_assert_int_eq(cfg.timeout_ms, 250);
    ck_assert_ptr_nonnull(cfg.preprocess);
    ck_assert(json_is_object(cfg.preprocess));
    ck_assert_str_eq(json_string_value(json_object_get(cfg.preprocess, "resize")), "stretch");
    model_config_free(&cfg);

    /* Absolute paths stay as they are. */
    write_file(path, sizeof path, "config.json",
               "{\"model\": \"/opt/m/model.onnx\", \"labels\": \"/opt/m/labels.txt\"}");
    ck_assert_int_eq(model_config_load(&cfg, tmpdir, msg, sizeof msg), IC_OK);
    ck_assert_str_eq(cfg.model_path, "/opt/m/model.onnx");
    ck_assert_str_eq(cfg.labels_path, "/opt/m/labels.txt");
    model_config_free(&cfg);

    /* A relative folder: the paths are relative to the working folder. */
    ck_assert_int_eq(model_config_load(&cfg, "models/fashion-mnist", msg, sizeof msg), IC_OK);
    ck_assert_str_eq(cfg.model_path, "models/fashion-mnist/model.onnx");
    ck_assert_str_eq(cfg.labels_path, "models/fashion-mnist/labels.txt");
    ck_assert_int_eq(cfg.batching.max_batch_size, 32);
    ck_assert_int_eq(cfg.top_k, 3);
    model_config_free(&cfg);
}
END_TEST

START_TEST(model_refused)
{
    static const struct {
        const char *json, *want1, *want2;
    } cases[] = {
        {"{\"max_batch\": 4}", "unknown key", "\"max_batch\""},
        {"{\"preprocess\": 3}", "\"preprocess\"", "object"},
        {"{\"preprocess\": [\"resize\"]}", "\"preprocess\"", "object"},
        {"{\"max_batch_size\": \"8\"}", "\"max_batch_size\"", "an integer"},
        {"{\"max_batch_size\": 0}", "\"max_batch_size\"", "1..1024"},
        {"{\"instances\": 65}", "\"instances\"", "1..64"},
        {"{\"max_queue_delay_us\": -1}", "\"max_queue_delay_us\"", NULL},
        {"{\"queue_capacity\": 0}", "\"queue_capacity\"", NULL},
        {"{\"top_k\": 0}", "\"top_k\"", NULL},
        {"{\"timeout_ms\": 3600001}", "\"timeout_ms\"", NULL},
        {"{\"version\": 2}", "\"version\"", "string"},
        {"{\"model\": \"\"}", "\"model\"", "non-empty"},
        {"{\"labels\": false}", "\"labels\"", NULL},
        {"{\"model\": \"m.onnx\",}", "config.json:1:", NULL},
        {"[]", "JSON object", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        write_file(path, sizeof path, "config.json", cases[i].json);
        model_config_t cfg;
        char msg[512] = "";
        ic_err_t rc = model_config_load(&cfg, tmpdir, msg, sizeof msg);
        ck_assert_msg(rc == IC_ECONFIG, "%s: %s", cases[i].json, ic_errname(rc));
        ck_assert_msg(strstr(msg, path), "%s: message '%s' lacks the file", cases[i].json, msg);
        ck_assert_msg(strstr(msg, cases[i].want1), "%s: message '%s' lacks '%s'",
                      cases[i].json, msg, cases[i].want1);
        ck_assert_msg(!cases[i].want2 || strstr(msg, cases[i].want2),
                      "%s: message '%s' lacks '%s'", cases[i].json, msg, cases[i].want2);
        ck_assert_ptr_null(cfg.model_path); /* freed */
        ck_assert_ptr_null(cfg.preprocess);
    }
}
END_TEST

/* ---- stamps ------------------------------------------------------------------------ */

static void set_mtime(const char *path, time_t sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

START_TEST(model_stamps)
{
    char cfg_path[256], model[256], labels[256], tmp[256];
    write_file(cfg_path, sizeof cfg_path, "config.json", "{\"top_k\": 2}");
    write_file(model, sizeof model, "model.onnx", "pretend model");
    write_file(labels, sizeof labels, "labels.txt", "a\nb\n");
    set_mtime(cfg_path, 1000000000);
    set_mtime(model, 1000000000);
    set_mtime(labels, 1000000000);

    model_stamp_t a, b;
    model_stamp_read(tmpdir, &a);
    model_stamp_read(tmpdir, &b);
    ck_assert(model_stamp_equal(&a, &b)); /* nothing changed */

    /* The labels grow. */
    write_file(labels, sizeof labels, "labels.txt", "a\nb\nc\n");
    set_mtime(labels, 1000000000);
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_read(tmpdir, &a);
    ck_assert(model_stamp_equal(&a, &b));

    /* The model replaced by a file of the same size and time (a new inode:
     * written aside, renamed over it). */
    write_file(tmp, sizeof tmp, "model.onnx.new", "pretend MODEL");
    set_mtime(tmp, 1000000000);
    ck_assert_int_eq(rename(tmp, model), 0);
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_read(tmpdir, &a);

    /* config.json touched, same content. */
    set_mtime(cfg_path, 1000000001);
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_read(tmpdir, &a);

    /* The config now names other labels: that file is stamped. */
    write_file(tmp, sizeof tmp, "other.txt", "x\ny\n");
    write_file(cfg_path, sizeof cfg_path, "config.json", "{\"labels\": \"other.txt\"}");
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_read(tmpdir, &a);
    write_file(tmp, sizeof tmp, "other.txt", "x\ny\nz\n");
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_read(tmpdir, &a);
    /* ... and labels.txt is not watched any more. */
    write_file(labels, sizeof labels, "labels.txt", "a\n");
    model_stamp_read(tmpdir, &b);
    ck_assert(model_stamp_equal(&a, &b));

    /* A file removed is a change. */
    ck_assert_int_eq(unlink(model), 0);
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));

    /* A broken config stamps as the config alone, which differs too. */
    model_stamp_read(tmpdir, &a);
    write_file(cfg_path, sizeof cfg_path, "config.json", "{\"labels\": ");
    model_stamp_read(tmpdir, &b);
    ck_assert(!model_stamp_equal(&a, &b));
    model_stamp_t only_config;
    model_stamp_files(tmpdir, NULL, &only_config);
    ck_assert(model_stamp_equal(&b, &only_config));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, server_defaults);
    tcase_add_test(tc, server_file);
    tcase_add_test(tc, server_precedence);
    tcase_add_test(tc, server_flags);
    tcase_add_test(tc, server_file_refused);
    tcase_add_test(tc, server_env_refused);
    tcase_add_test(tc, server_flags_refused);
    tcase_add_test(tc, server_log_values_refused);
    tcase_add_test(tc, server_log_values_name_the_source);
    tcase_add_test(tc, server_is_flag);
    tcase_add_test(tc, server_usage);
    tcase_add_test(tc, model_defaults);
    tcase_add_test(tc, model_keys);
    tcase_add_test(tc, model_refused);
    tcase_add_test(tc, model_stamps);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
