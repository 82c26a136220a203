/* Image decoding: JPEG (TurboJPEG) and PNG (libspng) into 8-bit RGB.
 *
 * The daemon's workers call img_decode on the raw upload. The result is
 * always packed RGB (3 bytes per pixel, rows top to bottom), whatever the
 * file held: grayscale is expanded, CMYK converted, alpha dropped, 16-bit
 * samples reduced, palettes expanded, and the JPEG EXIF orientation applied.
 * Errors come back as a status and a message; nothing is printed. */
#ifndef SERVER_IMAGE_H
#define SERVER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum img_status {
    IMG_OK = 0,
    IMG_EFORMAT,      /* not a JPEG or PNG (HTTP 415) */
    IMG_ECORRUPT,     /* truncated, bad CRC, undecodable (HTTP 400) */
    IMG_ETOOSMALL,    /* smaller than img_limits.min_side (HTTP 400) */
    IMG_ETOOLARGE,    /* more pixels than img_limits.max_pixels (HTTP 413) */
    IMG_ENOMEM,       /* allocation failed (HTTP 500) */
} img_status_t;

/* Used when img_limits.max_pixels is 0, so that a forgotten limit cannot
 * let a 100-byte upload claim gigabytes. Sides are also capped at 65500
 * (JPEG's own maximum) whatever the limits say. */
#define IMG_DEFAULT_MAX_PIXELS (100ull * 1000 * 1000)

typedef struct img_limits {
    int min_side;          /* reject images whose width or height is below */
    uint64_t max_pixels;   /* reject images whose header says more pixels
                            * (checked before any pixel memory is taken;
                            * 0: IMG_DEFAULT_MAX_PIXELS) */
    /* Shrink hint for JPEG: the decoder may decode at 1/2, 1/4 or 1/8
     * scale as long as the result keeps width >= want_width and
     * height >= want_height (either 0: always full size). The want is for
     * the final, EXIF-oriented image. The caller sets this so that the
     * later resize is unaffected (see preprocess.h). min_side and
     * max_pixels apply to the full-size image. */
    int want_width, want_height;
} img_limits_t;

typedef struct img_rgb {
    int width, height;
    uint8_t *pixels;       /* width * height * 3 bytes, malloc'ed */
} img_rgb_t;

typedef enum img_format { IMG_FORMAT_UNKNOWN, IMG_FORMAT_JPEG, IMG_FORMAT_PNG } img_format_t;

/* Format from the leading bytes (magic numbers), not from a Content-Type. */
img_format_t img_sniff(const void *data, size_t size);

/* Decodes data into out (out->pixels owned by the caller, free with
 * img_free). lim may be NULL (no size limits but the defaults, full size).
 * On failure out is zeroed and msg (size msg_size) holds one line saying
 * why, prefixed "JPEG: " or "PNG: ", e.g. "PNG: damaged data: invalid
 * chunk checksum". Any damage the decoder notices is IMG_ECORRUPT, even
 * where libjpeg would only warn (a truncated upload is not classified as a
 * half-gray picture), and so is a PNG whose chunks after the image data
 * (through IEND) are cut or fail their CRC. msg may be NULL. */
img_status_t img_decode(const void *data, size_t size, const img_limits_t *lim,
                        img_rgb_t *out, char *msg, size_t msg_size);

void img_free(img_rgb_t *img);

#endif
