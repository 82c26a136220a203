/* Settings described by a table of keys: each key names a field of a C
 * struct, its type and its range, so that defaults, parsing, range checks,
 * the unknown-key check and messages come from one place. The daemon's
 * settings (src/config.c) and a model folder's config.json
 * (src/classify/model_config.c) are both read this way.
 *
 * Every function returns 0, or -1 with one line in msg that names the key. */
#ifndef UTIL_SETTINGS_H
#define UTIL_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

typedef enum setting_type {
    SETTING_INT,    /* int */
    SETTING_SIZE,   /* size_t */
    SETTING_BOOL,   /* int, 0 or 1 */
    SETTING_STRING, /* char *, malloc'ed, never empty */
} setting_type_t;

typedef struct setting {
    const char *name;     /* JSON key, "max_body_bytes" */
    setting_type_t type;
    size_t offset;        /* of the field in the struct */
    long long min, max;   /* integers: the range allowed */
    const char *help;     /* one line for --help, or NULL */
    const char *const *choices; /* strings: the values allowed (NULL-
                                   terminated), or NULL for any */
} setting_t;

/* A table entry whose string takes any value. */
#define SETTING(name, type, offset, min, max, help) {name, type, offset, min, max, help, NULL}

/* Applies every key of obj to the struct at base. A key not in the table
 * is an error unless it is `skip` (a key the caller reads itself). */
int settings_apply_json(void *base, const setting_t *keys, size_t n, const json_t *obj,
                        const char *skip, char *msg, size_t msg_size);

/* Sets one key from text (an environment variable or a flag); `what` names
 * the source in messages ("IMGCLASSD_PORT", "--port"). Booleans are
 * "true" or "false". */
int settings_apply_text(void *base, const setting_t *key, const char *text,
                        const char *what, char *msg, size_t msg_size);

/* Reads a file holding one JSON object into *out (a new reference). A
 * missing file is not an error when optional (*out is then NULL). */
int settings_read_file(const char *path, int optional, json_t **out, char *msg,
                       size_t msg_size);

/* Frees every string field the table names and zeroes it. */
void settings_free_strings(void *base, const setting_t *keys, size_t n);

#endif
