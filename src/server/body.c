/* Request bodies: a raw image, multipart/form-data (through libmicrohttpd's
 * post processor) or JSON {"instances": [{"b64": "..."}], "top_k": k}.
 * Whatever the form, the result is the request's list of image parts. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/base64.h"
#include "server/server.h"

int body_append(request_t *r, const char *data, size_t size)
{
    if (r->body_too_large || r->body_len + size > r->srv->cfg.max_body_bytes) {
        r->body_too_large = 1;
        return 0; /* keep reading (and discarding) to answer 413 cleanly */
    }
    if (r->body_len + size > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 64 * 1024;
        while (cap < r->body_len + size)
            cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b)
            return -1;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, size);
    r->body_len += size;
    return 0;
}

image_part_t *body_new_part(request_t *r)
{
    if (r->n_parts == r->cap_parts) {
        int cap = r->cap_parts ? 2 * r->cap_parts : 4;
        image_part_t *p = realloc(r->parts, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        r->parts = p;
        r->cap_parts = cap;
    }
    image_part_t *p = &r->parts[r->n_parts++];
    memset(p, 0, sizeof *p);
    return p;
}

/* ---- multipart -------------------------------------------------------------------- */

/* Called by the post processor for each piece of each field. A part with
 * a filename (or an image content type) is an image; its pieces arrive in
 * order, so a change of key or a new offset 0 starts the next image. */
static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *filename,
                                const char *content_type,
                                const char *transfer_encoding, const char *data,
                                uint64_t off, size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    request_t *r = cls;
    int is_image = filename != NULL ||
                   (content_type && strncasecmp(content_type, "image/", 6) == 0);
    if (!is_image) {
        if (key && strcmp(key, "top_k") == 0) {
            size_t have = off == 0 ? 0 : strlen(r->form_top_k);
            if (have + size >= sizeof r->form_top_k)
                return MHD_NO;
            memcpy(r->form_top_k + have, data, size);
            r->form_top_k[have + size] = '\0';
            r->has_form_top_k = 1;
        }
        return MHD_YES; /* other fields are ignored */
    }
    image_part_t *p = NULL;
    if (off == 0 || r->n_parts == 0) {
        if (r->n_parts >= r->srv->cfg.max_images_per_request) {
            r->post_failed = 413;
            return MHD_NO;
        }
        if (!(p = body_new_part(r)))
            return MHD_NO;
    } else {
        p = &r->parts[r->n_parts - 1];
    }
    if (size == 0)
        return MHD_YES;
    if (p->size + size > r->srv->cfg.max_body_bytes) {
        r->post_failed = 413;
        return MHD_NO;
    }
    uint8_t *b = realloc(p->owned, p->size + size);
    if (!b)
        return MHD_NO;
    memcpy(b + p->size, data, size);
    p->owned = b;
    p->data = b;
    p->size += size;
    return MHD_YES;
}

int body_start_multipart(request_t *r)
{
    r->post = MHD_create_post_processor(r->conn, 64 * 1024, on_field, r);
    return r->post ? 0 : -1;
}

int body_feed_multipart(request_t *r, const char *data, size_t size)
{
    if (r->post_failed)
        return 0;
    if (MHD_post_process(r->post, data, size) != MHD_YES && !r->post_failed)
        r->post_failed = 400;
    return 0;
}

/* ---- JSON with base64 ------------------------------------------------------------- */

static int json_images(request_t *r, char *msg, size_t msg_size)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)r->body, r->body_len,
                              JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(msg, msg_size, "invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return 400;
    }
    int status = 400;
    json_t *inst = json_object_get(root, "instances");
    json_t *tk = json_object_get(root, "top_k");
    if (!json_is_object(root) || !json_is_array(inst) || json_array_size(inst) == 0) {
        snprintf(msg, msg_size,
                 "the body must be {\"instances\": [{\"b64\": \"...\"}, ...]}");
        goto out;
    }
    if (tk) {
        if (!json_is_integer(tk)) {
            snprintf(msg, msg_size, "\"top_k\" must be an integer");
            goto out;
        }
        json_int_t v = json_integer_value(tk);
        /* -1 marks an out-of-range value; api.c answers it with the range. */
        r->top_k = v < 1 ? -1 : v > 1000000000 ? 1000000000 : (int)v;
    }
    if ((int)json_array_size(inst) > r->srv->cfg.max_images_per_request) {
        snprintf(msg, msg_size, "%zu images; at most %d per request",
                 json_array_size(inst), r->srv->cfg.max_images_per_request);
        status = 413;
        goto out;
    }
    size_t i;
    json_t *item;
    json_array_foreach(inst, i, item) {
        json_t *b64 = json_is_object(item) ? json_object_get(item, "b64") : NULL;
        if (!json_is_string(b64)) {
            snprintf(msg, msg_size, "instances[%zu] must be {\"b64\": \"...\"}", i);
            goto out;
        }
        size_t n = json_string_length(b64);
        image_part_t *p = body_new_part(r);
        if (!p || !(p->owned = malloc(BASE64_DECODED_MAX(n)))) {
            snprintf(msg, msg_size, "out of memory");
            status = 503;
            goto out;
        }
        long len = base64_decode(json_string_value(b64), n, p->owned);
        if (len < 0) {
            snprintf(msg, msg_size, "instances[%zu].b64 is not valid base64", i);
            goto out;
        }
        p->data = p->owned;
        p->size = (size_t)len;
    }
    status = 0;
out:
    json_decref(root);
    return status;
}

/* ---- dispatch --------------------------------------------------------------------- */

int body_images(request_t *r, const char *content_type, char *msg, size_t msg_size)
{
    if (r->body_too_large) {
        snprintf(msg, msg_size, "the body is larger than %zu bytes",
                 r->srv->cfg.max_body_bytes);
        return 413;
    }
    if (r->post) {
        if (r->post_failed == 413) {
            snprintf(msg, msg_size, "too many images or an image too large");
            return 413;
        }
        if (r->post_failed || MHD_destroy_post_processor(r->post) != MHD_YES) {
            r->post = NULL;
            snprintf(msg, msg_size, "malformed multipart/form-data body");
            return 400;
        }
        r->post = NULL;
        if (r->n_parts == 0) {
            snprintf(msg, msg_size,
                     "no image in the form (send a file part, e.g. curl -F image=@cat.jpg)");
            return 400;
        }
        return 0;
    }
    if (r->body_len == 0) {
        snprintf(msg, msg_size, "empty body: send an image (image/jpeg or image/png), "
                                "a multipart form or JSON instances");
        return 400;
    }
    char type[128] = "";
    if (content_type) {
        size_t n = strcspn(content_type, ";");
        while (n > 0 && content_type[n - 1] == ' ')
            n--;
        snprintf(type, sizeof type, "%.*s", (int)n, content_type);
    }
    if (strcasecmp(type, "application/json") == 0)
        return json_images(r, msg, msg_size);
    /* The bytes decide between JPEG and PNG (img_sniff); the declared
     * type must only not claim something else. TorchServe's clients send
     * whatever curl -T or --data-binary sets, so that route takes any. */
    if (r->torchserve || type[0] == '\0' || strcasecmp(type, "image/jpeg") == 0 ||
        strcasecmp(type, "image/jpg") == 0 || strcasecmp(type, "image/png") == 0 ||
        strcasecmp(type, "application/octet-stream") == 0) {
        image_part_t *p = body_new_part(r);
        if (!p) {
            snprintf(msg, msg_size, "out of memory");
            return 503;
        }
        p->data = r->body;
        p->size = r->body_len;
        return 0;
    }
    snprintf(msg, msg_size,
             "unsupported Content-Type '%s': use image/jpeg, image/png, "
             "multipart/form-data or application/json", type);
    return 415;
}

void body_free(request_t *r)
{
    if (r->post)
        MHD_destroy_post_processor(r->post);
    for (int i = 0; i < r->n_parts; i++)
        free(r->parts[i].owned);
    free(r->parts);
    free(r->body);
}
