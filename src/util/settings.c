/* Table-driven settings; see settings.h. */
#include "util/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int set_int(void *base, const setting_t *k, long long v, char *msg,
                   size_t msg_size)
{
    if (v < k->min || v > k->max) {
        snprintf(msg, msg_size, "\"%s\" must be %lld..%lld, got %lld", k->name, k->min,
                 k->max, v);
        return -1;
    }
    char *p = (char *)base + k->offset;
    if (k->type == SETTING_SIZE)
        *(size_t *)p = (size_t)v;
    else
        *(int *)p = (int)v;
    return 0;
}

/* "a, b or c": the choices, for a message. */
static void list_choices(const char *const *choices, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i == 0 ? ""
                                                           : choices[i + 1] ? ", "
                                                                            : " or ",
                               choices[i]);
}

/* Replaces the string field with a copy of v, if v is one of the choices. */
static int set_string(void *base, const setting_t *k, const char *v, char *msg,
                      size_t msg_size)
{
    if (k->choices) {
        int i = 0;
        while (k->choices[i] && strcmp(k->choices[i], v) != 0)
            i++;
        if (!k->choices[i]) {
            char allowed[200];
            list_choices(k->choices, allowed, sizeof allowed);
            snprintf(msg, msg_size, "\"%s\" must be %s", k->name, allowed);
            return -1;
        }
    }
    char **p = (char **)((char *)base + k->offset);
    char *copy = strdup(v);
    if (!copy) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    free(*p);
    *p = copy;
    return 0;
}

static int set_from_json(void *base, const setting_t *k, const json_t *v, char *msg,
                         size_t msg_size)
{
    switch (k->type) {
    case SETTING_INT:
    case SETTING_SIZE:
        if (!json_is_integer(v))
            break;
        return set_int(base, k, json_integer_value(v), msg, msg_size);
    case SETTING_BOOL:
        if (!json_is_boolean(v))
            break;
        return set_int(base, k, json_is_true(v), msg, msg_size);
    case SETTING_STRING:
        if (!json_is_string(v) || json_string_length(v) == 0)
            break;
        return set_string(base, k, json_string_value(v), msg, msg_size);
    }
    static const char *const expected[] = {"an integer", "an integer", "true or false",
                                           "a non-empty string"};
    snprintf(msg, msg_size, "\"%s\" must be %s", k->name, expected[k->type]);
    return -1;
}

int settings_apply_json(void *base, const setting_t *keys, size_t n, const json_t *obj,
                        const char *skip, char *msg, size_t msg_size)
{
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        if (skip && strcmp(name, skip) == 0)
            continue;
        size_t i = 0;
        while (i < n && strcmp(keys[i].name, name) != 0)
            i++;
        if (i == n) {
            snprintf(msg, msg_size, "unknown key \"%s\"", name);
            return -1;
        }
        if (set_from_json(base, &keys[i], v, msg, msg_size))
            return -1;
    }
    return 0;
}

/* The value of a key as text. Returns 0; 1 with a message that names the
 * source (the text is not a number); or -1 with one the caller prefixes
 * with the source (the value is out of range or not a choice). */
static int set_from_text(void *base, const setting_t *k, const char *v, const char *what,
                         char *msg, size_t msg_size)
{
    if (k->type == SETTING_STRING)
        return set_string(base, k, v, msg, msg_size);
    long long n;
    char *end;
    errno = 0;
    if (k->type == SETTING_BOOL && (!strcmp(v, "true") || !strcmp(v, "false"))) {
        n = !strcmp(v, "true");
    } else {
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || k->type == SETTING_BOOL) {
            snprintf(msg, msg_size, "%s=\"%s\" is not %s", what, v,
                     k->type == SETTING_BOOL ? "true or false" : "an integer");
            return 1; /* names its source already */
        }
    }
    return set_int(base, k, n, msg, msg_size);
}

int settings_apply_text(void *base, const setting_t *k, const char *v, const char *what,
                        char *msg, size_t msg_size)
{
    if (k->type == SETTING_STRING && !*v) {
        snprintf(msg, msg_size, "%s must not be empty", what);
        return -1;
    }
    int rc = set_from_text(base, k, v, what, msg, msg_size);
    if (rc < 0) {
        char inner[300];
        snprintf(inner, sizeof inner, "%s", msg);
        snprintf(msg, msg_size, "%s: %s", what, inner);
    }
    return rc ? -1 : 0;
}

int settings_read_file(const char *path, int optional, json_t **out, char *msg,
                       size_t msg_size)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT)
            return 0;
        snprintf(msg, msg_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        snprintf(msg, msg_size, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(msg, msg_size, "%s: the top level must be a JSON object", path);
        return -1;
    }
    *out = root;
    return 0;
}

void settings_free_strings(void *base, const setting_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].type == SETTING_STRING) {
            char **p = (char **)((char *)base + keys[i].offset);
            free(*p);
            *p = NULL;
        }
}
