/* imgclassd: the image classification daemon.
 *
 *   imgclassd [-c conf/imgclassd.json]
 *
 * Settings come from the file, then from IMGCLASSD_* environment variables
 * (IMGCLASSD_PORT=9000 overrides "port"). SIGHUP reloads the model
 * repository, SIGTERM drains and exits. See README.md. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: imgclassd [-c CONFIG.json]\n"
               "  -c FILE   server configuration (default: built-in defaults,\n"
               "            overridable by IMGCLASSD_* environment variables)\n"
               "  -h        this help\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "imgclassd: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    /* Lines reach journald or a container log as they are written. */
    setvbuf(stderr, NULL, _IOLBF, 0);
    server_t srv;
    char msg[1024];
    if (server_init(&srv, config, msg, sizeof msg)) {
        log_line("ERROR", "%s", msg);
        server_free(&srv);
        return 1;
    }
    int rc = server_run(&srv);
    server_free(&srv);
    log_line("INFO", "exited");
    return rc;
}
