/* Bearer tokens and CORS; see auth.h. */
#include "http/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void free_tokens(char **tokens, int n)
{
    for (int i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
}

/* Appends line's token (trimmed) unless it is blank or a comment. */
static int add_line(char ***tokens, int *n, char *line, ssize_t len)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                       line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    if (len == 0 || line[0] == '#')
        return 0;
    char **t = realloc(*tokens, (size_t)(*n + 1) * sizeof *t);
    if (!t)
        return -1;
    *tokens = t;
    if (!(t[*n] = strdup(line)))
        return -1;
    (*n)++;
    return 0;
}

ic_err_t auth_load(auth_t *a, const char *path, char *msg, size_t msg_size)
{
    if (!path)
        return IC_OK;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, msg_size, "auth_tokens_file %s: %s", path, strerror(errno));
        return IC_ECONFIG;
    }
    char **tokens = NULL, *line = NULL;
    int n = 0;
    size_t cap = 0;
    ssize_t len;
    ic_err_t rc = IC_OK;
    while (rc == IC_OK && (len = getline(&line, &cap, f)) >= 0)
        if (add_line(&tokens, &n, line, len))
            rc = IC_ENOMEM;
    free(line);
    fclose(f);
    if (rc == IC_ENOMEM)
        snprintf(msg, msg_size, "out of memory reading the tokens");
    else if (n == 0) {
        snprintf(msg, msg_size, "auth_tokens_file %s holds no token", path);
        rc = IC_ECONFIG;
    }
    if (rc != IC_OK) {
        free_tokens(tokens, n);
        return rc;
    }
    auth_free(a);
    a->tokens = tokens;
    a->n_tokens = n;
    return IC_OK;
}

void auth_free(auth_t *a)
{
    free_tokens(a->tokens, a->n_tokens);
    a->tokens = NULL;
    a->n_tokens = 0;
}

int auth_enabled(const auth_t *a)
{
    return a->n_tokens > 0;
}

/* Compares against every token in time that depends only on the lengths,
 * not on where the bytes differ, so that a token cannot be guessed byte by
 * byte from response times. */
static int token_ok(const auth_t *a, const char *given)
{
    size_t gl = strlen(given);
    int match = 0;
    for (int i = 0; i < a->n_tokens; i++) {
        const char *t = a->tokens[i];
        size_t tl = strlen(t);
        unsigned diff = gl != tl;
        for (size_t k = 0; k < tl; k++)
            diff |= (unsigned char)t[k] ^ (unsigned char)(gl ? given[k % gl] : 0);
        match |= diff == 0;
    }
    return match;
}

int auth_allows(const auth_t *a, const char *authorization)
{
    if (!auth_enabled(a))
        return 1;
    return authorization && strncasecmp(authorization, "Bearer ", 7) == 0 &&
           token_ok(a, authorization + 7);
}

const char *cors_allowed_origin(const char *list, const char *origin)
{
    if (!list || !origin)
        return NULL;
    if (!strcmp(list, "*"))
        return "*";
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == n && trimmed > 0 && !strncmp(p, origin, n))
            return origin;
        p += len;
    }
    return NULL;
}
