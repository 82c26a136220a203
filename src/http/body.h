/* Request bodies and the images in them.
 *
 * A body arrives in pieces. It is kept whole (a raw image, JSON, KServe's
 * header and binary data), or, for a multipart/form-data upload, parsed as
 * it comes by libmicrohttpd's post processor, each file becoming an image
 * part. body_images then turns a whole body into the request's image
 * parts by its Content-Type: a raw JPEG or PNG, a form, or JSON
 * {"instances": [{"b64": "..."}], "top_k": k}.
 *
 * Functions return IC_OK or an ic_err_t with a message in msg. */
#ifndef HTTP_BODY_H
#define HTTP_BODY_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "classify/error.h"

/* One image of a request. */
typedef struct image_part {
    const uint8_t *data;  /* into the body, or owned */
    size_t size;
    uint8_t *owned;       /* freed with the body */
} image_part_t;

typedef struct body {
    size_t max_bytes;     /* a body or an image part larger is refused */
    int max_parts;        /* images per request at most */
    uint8_t *data;        /* the body as it came (not for forms) */
    size_t len, cap;
    int too_large;        /* more than max_bytes came: the rest is dropped */
    struct MHD_PostProcessor *post; /* a form being parsed */
    ic_err_t form_error;  /* the form was refused: IC_OK while it is fine */
    image_part_t *parts;
    int n_parts, cap_parts;
    char top_k[40];       /* the form's top_k field, when given */
    int has_top_k;
} body_t;

void body_init(body_t *b, size_t max_bytes, int max_parts);
void body_free(body_t *b);

/* Starts parsing the connection's multipart/form-data body as a form.
 * Returns IC_OK, or IC_EBODY_MALFORMED (no boundary). */
ic_err_t body_start_form(body_t *b, struct MHD_Connection *conn);

/* A piece of the body, in order. Returns IC_OK, or IC_ENOMEM. A body
 * over max_bytes or a bad form is not an error yet: body_images says so
 * once the whole body is read. */
ic_err_t body_feed(body_t *b, const char *data, size_t size);

/* A piece of a form's field, as the post processor hands it over (see
 * MHD_PostDataIterator): files and parts with an image content type are
 * images, the "top_k" field is kept, other fields are ignored. Returns
 * 0 when the form must stop (b->form_error says why). */
int body_form_field(body_t *b, const char *key, const char *filename,
                    const char *content_type, const char *data, uint64_t off,
                    size_t size);

/* A new, empty part appended to the body's, or NULL without memory. */
image_part_t *body_new_part(body_t *b);

/* The images of the whole body by its Content-Type (the raw image types,
 * application/octet-stream or none; any type when any_type), into
 * b->parts. A JSON body's "top_k" goes into *top_k (-1: out of range; left
 * alone when absent). Returns IC_OK, IC_EBODY_EMPTY, IC_EBODY_MALFORMED,
 * IC_EBODY_TOO_LARGE, IC_EBODY_TYPE, IC_ETOO_MANY_IMAGES, IC_EPARAM (a bad
 * top_k) or IC_ENOMEM. */
ic_err_t body_images(body_t *b, const char *content_type, int any_type, int *top_k,
                     char *msg, size_t msg_size);

#endif
