/* Who may call: bearer tokens (auth_tokens_file) and CORS origins
 * (cors_origins). */
#ifndef HTTP_AUTH_H
#define HTTP_AUTH_H

#include <stddef.h>

#include "classify/error.h"

typedef struct auth {
    char **tokens; /* NULL when authentication is off */
    int n_tokens;
} auth_t;

/* Reads the tokens, one per line (blank lines and # comments skipped;
 * surrounding blanks trimmed), from path (NULL: authentication off). On
 * an error the tokens held before stay. Returns IC_OK, or IC_ECONFIG (the
 * file cannot be read or holds no token) or IC_ENOMEM with msg. */
ic_err_t auth_load(auth_t *a, const char *path, char *msg, size_t msg_size);
void auth_free(auth_t *a);

/* Whether an Authorization header value ("Bearer TOKEN") carries a valid
 * token; always true when authentication is off. Takes time that depends
 * only on the lengths, not on where the bytes differ. */
int auth_allows(const auth_t *a, const char *authorization);
int auth_enabled(const auth_t *a);

/* The Access-Control-Allow-Origin to answer origin with, given the
 * cors_origins setting ("*" or a comma-separated list; NULL: CORS off):
 * "*", origin itself, or NULL. */
const char *cors_allowed_origin(const char *cors_origins, const char *origin);

#endif
