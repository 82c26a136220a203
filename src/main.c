/* imgclassd: the image classification daemon.
 *
 *   imgclassd [-c conf/imgclassd.json] [--port 8080] [--models ./models] ...
 *
 * Every setting comes from, in increasing priority: its default, the
 * config file, an IMGCLASSD_* environment variable, a --flag. SIGHUP
 * reloads the model repository, SIGTERM drains and exits. See README.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: imgclassd [-c CONFIG.json] [--SETTING VALUE ...]\n"
               "  -c, --config FILE   JSON configuration (see conf/imgclassd.json)\n"
               "  -h, --help          this help\n\n");
    server_config_usage(f);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    config_flag_t *flags = calloc((size_t)argc, sizeof *flags);
    int n_flags = 0;
    logger_t early;
    logger_init(&early, "info", "text");
    if (!flags) {
        log_msg(&early, LOG_ERROR, "out of memory");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(flags);
            return 0;
        } else if (!strncmp(a, "--", 2) && server_config_is_flag(a + 2) && i + 1 < argc) {
            flags[n_flags].name = a + 2;
            flags[n_flags++].value = argv[++i];
        } else {
            fprintf(stderr, "imgclassd: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            free(flags);
            return 2;
        }
    }
    /* Lines reach journald or a container log as they are written. */
    setvbuf(stderr, NULL, _IOLBF, 0);
    server_t srv;
    char msg[1024];
    if (server_init(&srv, config, flags, n_flags, msg, sizeof msg)) {
        log_msg(&early, LOG_ERROR, "%s", msg);
        server_free(&srv);
        free(flags);
        return 1;
    }
    free(flags);
    int rc = server_run(&srv);
    server_free(&srv); /* the logger holds nothing to free */
    log_msg(&srv.log, LOG_INFO, "exited");
    return rc;
}
