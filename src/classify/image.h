/* Image decoding: JPEG (TurboJPEG) and PNG (libspng) into 8-bit RGB.
 *
 * The daemon's workers call img_decode on the raw upload. The result is
 * always packed RGB (3 bytes per pixel, rows top to bottom), whatever the
 * file held: grayscale is expanded, CMYK converted, alpha dropped, 16-bit
 * samples reduced, palettes expanded, and the JPEG EXIF orientation applied.
 * Errors come back as an ic_err_t and a message; nothing is printed. */
#ifndef CLASSIFY_IMAGE_H
#define CLASSIFY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "classify/error.h"

/* Used when img_limits.max_pixels is 0, so that a forgotten limit cannot
 * let a 100-byte upload claim gigabytes. Sides are also capped at 65500
 * (JPEG's own maximum) whatever the limits say. */
#define IMG_DEFAULT_MAX_PIXELS (100ull * 1000 * 1000)

/* The daemon's defaults for min_image_side and max_image_pixels; the
 * offline tool decodes with the same. */
#define IMG_MIN_SIDE_DEFAULT 8
#define IMG_MAX_PIXELS_SERVED 50000000

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
 * Returns IC_OK, or IC_EIMAGE_FORMAT (neither JPEG nor PNG),
 * IC_EIMAGE_CORRUPT, IC_EIMAGE_SMALL (a side below lim->min_side),
 * IC_EIMAGE_LARGE (more pixels than lim->max_pixels) or IC_ENOMEM.
 * On failure out is zeroed and msg (size msg_size) holds one line saying
 * why, prefixed "JPEG: " or "PNG: ", e.g. "PNG: damaged data: invalid
 * chunk checksum". Any damage the decoder notices is IC_EIMAGE_CORRUPT, even
 * where libjpeg would only warn (a truncated upload is not classified as a
 * half-gray picture), and so is a PNG whose chunks after the image data
 * (through IEND) are cut or fail their CRC. msg may be NULL. */
ic_err_t img_decode(const void *data, size_t size, const img_limits_t *lim,
                        img_rgb_t *out, char *msg, size_t msg_size);

void img_free(img_rgb_t *img);

#endif
