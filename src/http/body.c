/* Request bodies; see body.h. */
#include "http/body.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/base64.h"

void body_init(body_t *b, size_t max_bytes, int max_parts)
{
    memset(b, 0, sizeof *b);
    b->max_bytes = max_bytes;
    b->max_parts = max_parts;
}

void body_free(body_t *b)
{
    if (b->post)
        MHD_destroy_post_processor(b->post);
    for (int i = 0; i < b->n_parts; i++)
        free(b->parts[i].owned);
    free(b->parts);
    free(b->data);
    memset(b, 0, sizeof *b);
}

image_part_t *body_new_part(body_t *b)
{
    if (b->n_parts == b->cap_parts) {
        int cap = b->cap_parts ? 2 * b->cap_parts : 4;
        image_part_t *p = realloc(b->parts, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        b->parts = p;
        b->cap_parts = cap;
    }
    image_part_t *p = &b->parts[b->n_parts++];
    memset(p, 0, sizeof *p);
    return p;
}

/* ---- forms ------------------------------------------------------------------------ */

/* Stops the form with err; returns 0 for the post processor. */
static int form_fails(body_t *b, ic_err_t err)
{
    if (b->form_error == IC_OK)
        b->form_error = err;
    return 0;
}

/* A piece of the "top_k" field; pieces come in order, off 0 first. */
static int form_top_k(body_t *b, const char *data, uint64_t off, size_t size)
{
    size_t have = off == 0 ? 0 : strlen(b->top_k);
    if (have + size >= sizeof b->top_k)
        return form_fails(b, IC_EBODY_MALFORMED);
    memcpy(b->top_k + have, data, size);
    b->top_k[have + size] = '\0';
    b->has_top_k = 1;
    return 1;
}

int body_form_field(body_t *b, const char *key, const char *filename,
                    const char *content_type, const char *data, uint64_t off,
                    size_t size)
{
    int is_image = filename != NULL ||
                   (content_type && strncasecmp(content_type, "image/", 6) == 0);
    if (!is_image)
        return key && strcmp(key, "top_k") == 0 ? form_top_k(b, data, off, size) : 1;
    /* A file's pieces arrive in order: offset 0 starts the next image. */
    image_part_t *p;
    if (off == 0 || b->n_parts == 0) {
        if (b->n_parts >= b->max_parts)
            return form_fails(b, IC_ETOO_MANY_IMAGES);
        if (!(p = body_new_part(b)))
            return form_fails(b, IC_ENOMEM);
    } else {
        p = &b->parts[b->n_parts - 1];
    }
    if (size == 0)
        return 1;
    if (p->size + size > b->max_bytes)
        return form_fails(b, IC_EBODY_TOO_LARGE);
    uint8_t *grown = realloc(p->owned, p->size + size);
    if (!grown)
        return form_fails(b, IC_ENOMEM);
    memcpy(grown + p->size, data, size);
    p->owned = grown;
    p->data = grown;
    p->size += size;
    return 1;
}

static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    return body_form_field(cls, key, filename, content_type, data, off, size) ? MHD_YES
                                                                             : MHD_NO;
}

ic_err_t body_start_form(body_t *b, struct MHD_Connection *conn)
{
    b->post = MHD_create_post_processor(conn, 64 * 1024, on_form_field, b);
    return b->post ? IC_OK : IC_EBODY_MALFORMED;
}

/* ---- pieces ----------------------------------------------------------------------- */

ic_err_t body_feed(body_t *b, const char *data, size_t size)
{
    if (size == 0)
        return IC_OK;
    if (b->too_large || b->len + size > b->max_bytes) {
        b->too_large = 1; /* keep reading (and dropping) to answer 413 cleanly */
        return IC_OK;
    }
    if (b->post) {
        b->len += size; /* counted, not kept: the form keeps its files */
        if (b->form_error == IC_OK && MHD_post_process(b->post, data, size) != MHD_YES)
            form_fails(b, IC_EBODY_MALFORMED);
        return IC_OK;
    }
    if (b->len + size > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + size)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown)
            return IC_ENOMEM;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, size);
    b->len += size;
    return IC_OK;
}

/* ---- whole bodies ----------------------------------------------------------------- */

/* The form's images, once the whole body went through the post processor. */
static ic_err_t form_images(body_t *b, char *msg, size_t msg_size)
{
    /* Destroying the processor also tells whether the form ended well. */
    int ended = MHD_destroy_post_processor(b->post) == MHD_YES;
    b->post = NULL;
    if (b->form_error == IC_ETOO_MANY_IMAGES || b->form_error == IC_EBODY_TOO_LARGE) {
        snprintf(msg, msg_size, "too many images or an image too large");
        return b->form_error;
    }
    if (b->form_error == IC_ENOMEM) {
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    if (b->form_error != IC_OK || !ended) {
        snprintf(msg, msg_size, "malformed multipart/form-data body");
        return IC_EBODY_MALFORMED;
    }
    if (b->n_parts == 0) {
        snprintf(msg, msg_size,
                 "no image in the form (send a file part, e.g. curl -F image=@cat.jpg)");
        return IC_EBODY_MALFORMED;
    }
    return IC_OK;
}

/* The instances of {"instances": [{"b64": "..."}, ...], "top_k": k}. */
static ic_err_t json_instances(body_t *b, json_t *inst, char *msg, size_t msg_size)
{
    if ((int)json_array_size(inst) > b->max_parts) {
        snprintf(msg, msg_size, "%zu images; at most %d per request", json_array_size(inst),
                 b->max_parts);
        return IC_ETOO_MANY_IMAGES;
    }
    size_t i;
    json_t *item;
    json_array_foreach(inst, i, item) {
        json_t *b64 = json_is_object(item) ? json_object_get(item, "b64") : NULL;
        if (!json_is_string(b64)) {
            snprintf(msg, msg_size, "instances[%zu] must be {\"b64\": \"...\"}", i);
            return IC_EBODY_MALFORMED;
        }
        size_t n = json_string_length(b64);
        image_part_t *p = body_new_part(b);
        if (!p || !(p->owned = malloc(BASE64_DECODED_MAX(n)))) {
            snprintf(msg, msg_size, "out of memory");
            return IC_ENOMEM;
        }
        long len = base64_decode(json_string_value(b64), n, p->owned);
        if (len < 0) {
            snprintf(msg, msg_size, "instances[%zu].b64 is not valid base64", i);
            return IC_EBODY_MALFORMED;
        }
        p->data = p->owned;
        p->size = (size_t)len;
    }
    return IC_OK;
}

static ic_err_t json_images(body_t *b, int *top_k, char *msg, size_t msg_size)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(msg, msg_size, "invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return json_error_code(&je) == json_error_out_of_memory ? IC_ENOMEM
                                                                : IC_EBODY_MALFORMED;
    }
    ic_err_t rc = IC_EBODY_MALFORMED;
    json_t *inst = json_object_get(root, "instances");
    json_t *tk = json_object_get(root, "top_k");
    if (!json_is_object(root) || !json_is_array(inst) || json_array_size(inst) == 0) {
        snprintf(msg, msg_size, "the body must be {\"instances\": [{\"b64\": \"...\"}, ...]}");
    } else if (tk && !json_is_integer(tk)) {
        snprintf(msg, msg_size, "\"top_k\" must be an integer");
        rc = IC_EPARAM;
    } else {
        if (tk) {
            json_int_t v = json_integer_value(tk);
            *top_k = v < 1 ? -1 : v > 1000000000 ? 1000000000 : (int)v;
        }
        rc = json_instances(b, inst, msg, msg_size);
    }
    json_decref(root);
    return rc;
}

/* The media type of a Content-Type value, without parameters. */
static void media_type(const char *content_type, char *type, size_t size)
{
    type[0] = '\0';
    if (!content_type)
        return;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    snprintf(type, size, "%.*s", (int)n, content_type);
}

static int raw_image_type(const char *type)
{
    static const char *const types[] = {"", "image/jpeg", "image/jpg", "image/png",
                                        "application/octet-stream"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(type, types[i]) == 0)
            return 1;
    return 0;
}

ic_err_t body_images(body_t *b, const char *content_type, int any_type, int *top_k,
                     char *msg, size_t msg_size)
{
    if (b->too_large) {
        snprintf(msg, msg_size, "the body is larger than %zu bytes", b->max_bytes);
        return IC_EBODY_TOO_LARGE;
    }
    if (b->post)
        return form_images(b, msg, msg_size);
    if (b->len == 0) {
        snprintf(msg, msg_size, "empty body: send an image (image/jpeg or image/png), "
                                "a multipart form or JSON instances");
        return IC_EBODY_EMPTY;
    }
    char type[128];
    media_type(content_type, type, sizeof type);
    if (strcasecmp(type, "application/json") == 0)
        return json_images(b, top_k, msg, msg_size);
    /* The bytes decide between JPEG and PNG (img_sniff); the declared type
     * must only not claim something else. */
    if (!any_type && !raw_image_type(type)) {
        snprintf(msg, msg_size,
                 "unsupported Content-Type '%s': use image/jpeg, image/png, "
                 "multipart/form-data or application/json",
                 type);
        return IC_EBODY_TYPE;
    }
    image_part_t *p = body_new_part(b);
    if (!p) {
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    p->data = b->data;
    p->size = b->len;
    return IC_OK;
}
