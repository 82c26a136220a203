/* The daemon's settings; see config.h. One table of keys gives every
 * setting's type, range, environment variable, flag and help line. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "classify/image.h"
#include "util/settings.h"

static const char *const log_formats[] = {"text", "json", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

#define SRV(f) offsetof(server_config_t, f)
static const setting_t server_keys[] = {
    SETTING("listen", SETTING_STRING, SRV(listen), 0, 0, "address to bind (IPv4 or IPv6)"),
    SETTING("port", SETTING_INT, SRV(port), 0, 65535, "TCP port (0: any free port)"),
    SETTING("models_dir", SETTING_STRING, SRV(models_dir), 0, 0, "model repository folder"),
    SETTING("max_connections", SETTING_INT, SRV(max_connections), 1, 1000000,
     "open connections at most"),
    SETTING("connection_timeout_s", SETTING_INT, SRV(connection_timeout_s), 1, 86400,
     "idle keep-alive timeout (longer than the balancer's)"),
    SETTING("max_body_bytes", SETTING_SIZE, SRV(max_body_bytes), 1024, 1LL << 32,
     "largest request body (413 above)"),
    SETTING("max_image_pixels", SETTING_SIZE, SRV(max_image_pixels), 1, 1LL << 32,
     "largest image by its header (413 above)"),
    SETTING("min_image_side", SETTING_INT, SRV(min_image_side), 1, 65535,
     "smallest image width or height (400 below)"),
    SETTING("max_images_per_request", SETTING_INT, SRV(max_images_per_request), 1, 4096,
     "images in one request at most"),
    SETTING("drain_grace_ms", SETTING_INT, SRV(drain_grace_ms), 0, 3600000,
     "after SIGTERM: not ready but serving for this long"),
    SETTING("shutdown_timeout_ms", SETTING_INT, SRV(shutdown_timeout_ms), 0, 3600000,
     "then at most this long to answer what was accepted"),
    SETTING("log_requests", SETTING_BOOL, SRV(log_requests), 0, 1, "one access-log line per request"),
    {"log_format", SETTING_STRING, SRV(log_format), 0, 0, "text or json (JSON lines)",
     log_formats},
    {"log_level", SETTING_STRING, SRV(log_level), 0, 0, "debug, info, warn or error",
     log_levels},
    SETTING("triton_metrics", SETTING_BOOL, SRV(triton_metrics), 0, 1,
     "also export Triton's metric names (nv_inference_*)"),
    SETTING("auth_tokens_file", SETTING_STRING, SRV(auth_tokens_file), 0, 0,
     "bearer tokens, one per line (unset: no authentication)"),
    SETTING("auth_health", SETTING_BOOL, SRV(auth_health), 0, 1, "health endpoints need a token too"),
    SETTING("auth_metrics", SETTING_BOOL, SRV(auth_metrics), 0, 1, "/metrics needs a token too"),
    SETTING("cors_origins", SETTING_STRING, SRV(cors_origins), 0, 0,
     "\"*\" or comma-separated origins allowed by CORS (unset: none)"),
};
#undef SRV
#define N_KEYS (sizeof server_keys / sizeof server_keys[0])

static void env_name(const setting_t *k, char *var, size_t size)
{
    size_t at = (size_t)snprintf(var, size, "IMGCLASSD_");
    for (const char *c = k->name; *c && at + 1 < size; c++)
        var[at++] = (char)toupper((unsigned char)*c);
    var[at] = '\0';
}

static void flag_name(const setting_t *k, char *flag, size_t size)
{
    size_t at = 0;
    for (const char *c = k->name; *c && at + 1 < size; c++)
        flag[at++] = *c == '_' ? '-' : *c;
    flag[at] = '\0';
}

static int apply_env(server_config_t *cfg, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        char var[64];
        env_name(&server_keys[i], var, sizeof var);
        const char *v = getenv(var);
        if (v && settings_apply_text(cfg, &server_keys[i], v, var, msg, msg_size))
            return -1;
    }
    return 0;
}

static const setting_t *find_flag(const char *name)
{
    if (!strcmp(name, "models"))
        name = "models-dir";
    for (size_t i = 0; i < N_KEYS; i++) {
        char flag[64];
        flag_name(&server_keys[i], flag, sizeof flag);
        if (!strcmp(flag, name))
            return &server_keys[i];
    }
    return NULL;
}

int server_config_is_flag(const char *name)
{
    return find_flag(name) != NULL;
}

void server_config_usage(FILE *f)
{
    fprintf(f, "settings (config file key / --flag VALUE / environment variable):\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        char flag[64], var[64];
        flag_name(&server_keys[i], flag, sizeof flag);
        env_name(&server_keys[i], var, sizeof var);
        fprintf(f, "  --%-24s %s\n  %-26s %s\n", flag, server_keys[i].help, "", var);
    }
}

static int set_defaults(server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = 8080;
    cfg->max_connections = 1024;
    cfg->connection_timeout_s = 75;
    cfg->max_body_bytes = 32u << 20;
    cfg->max_image_pixels = IMG_MAX_PIXELS_SERVED;
    cfg->min_image_side = IMG_MIN_SIDE_DEFAULT;
    cfg->max_images_per_request = 64;
    cfg->drain_grace_ms = 5000;
    cfg->shutdown_timeout_ms = 30000;
    cfg->log_requests = 1;
    return (cfg->listen = strdup("0.0.0.0")) && (cfg->models_dir = strdup("models")) &&
                   (cfg->log_format = strdup("text")) && (cfg->log_level = strdup("info"))
               ? 0
               : -1;
}

static int apply_file(server_config_t *cfg, const char *path, char *msg, size_t msg_size)
{
    json_t *root;
    if (settings_read_file(path, 0, &root, msg, msg_size))
        return -1;
    char inner[400];
    int rc = settings_apply_json(cfg, server_keys, N_KEYS, root, NULL, inner, sizeof inner);
    json_decref(root);
    if (rc)
        snprintf(msg, msg_size, "%s: %s", path, inner);
    return rc;
}

static int apply_flags(server_config_t *cfg, const config_flag_t *flags, int n_flags,
                       char *msg, size_t msg_size)
{
    for (int i = 0; i < n_flags; i++) {
        const setting_t *k = find_flag(flags[i].name);
        char what[80];
        snprintf(what, sizeof what, "--%s", flags[i].name);
        if (!k) {
            snprintf(msg, msg_size, "unknown option %s", what);
            return -1;
        }
        if (settings_apply_text(cfg, k, flags[i].value, what, msg, msg_size))
            return -1;
    }
    return 0;
}

ic_err_t server_config_load(server_config_t *cfg, const char *path,
                            const config_flag_t *flags, int n_flags, char *msg,
                            size_t msg_size)
{
    if (set_defaults(cfg)) {
        snprintf(msg, msg_size, "out of memory");
        server_config_free(cfg);
        return IC_ENOMEM;
    }
    if ((path && apply_file(cfg, path, msg, msg_size)) || apply_env(cfg, msg, msg_size) ||
        apply_flags(cfg, flags, n_flags, msg, msg_size)) {
        server_config_free(cfg);
        return IC_ECONFIG;
    }
    return IC_OK;
}

void server_config_free(server_config_t *cfg)
{
    settings_free_strings(cfg, server_keys, N_KEYS);
    memset(cfg, 0, sizeof *cfg);
}
