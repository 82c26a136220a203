/* Image decoding: JPEG through TurboJPEG, PNG through libspng, both into
 * packed 8-bit RGB.
 *
 * DESIGN: uploads are hostile, so every size is checked against the limits
 * from the header alone, before the pixel buffer is allocated, and any
 * damage the decoders notice (a truncated scan, a bad CRC) is an error: a
 * half-decoded image would be classified as if it were the photo. The
 * conversions follow what PIL does, so that models trained on PIL-loaded
 * images see the same pixels: Adobe-inverted CMYK is converted with PIL's
 * formula, 16-bit samples keep their high byte, alpha is dropped (not
 * composited). Unlike a bare PIL Image.open, the EXIF orientation is
 * applied, since a phone photo stored sideways should be classified
 * upright. */
#include "classify/image.h"

#include <spng.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* JPEG cannot be larger (libjpeg's JPEG_MAX_DIMENSION); PNG is held to the
 * same so that w * h * 3 and the row pitch stay far from overflow. */
#define IMG_MAX_SIDE 65500
/* Memory libspng may keep for ancillary chunks (text, ICC profiles...). */
#define PNG_CHUNK_CACHE_LIMIT (8u << 20)

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ---- messages -------------------------------------------------------------------- */

static ic_err_t fail(ic_err_t status, char *msg, size_t msg_size,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ic_err_t fail(ic_err_t status, char *msg, size_t msg_size,
                         const char *fmt, ...)
{
    if (!msg || !msg_size)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_size, fmt, ap);
    va_end(ap);
    /* Library messages end up in logs and HTTP bodies: keep them one line. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return status;
}

img_format_t img_sniff(const void *data, size_t size)
{
    const uint8_t *b = data;
    if (!b)
        return IMG_FORMAT_UNKNOWN;
    if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return IMG_FORMAT_JPEG;
    if (size >= sizeof png_magic && memcmp(b, png_magic, sizeof png_magic) == 0)
        return IMG_FORMAT_PNG;
    return IMG_FORMAT_UNKNOWN;
}

void img_free(img_rgb_t *img)
{
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* The header's size against the caller's limits; called before any pixel
 * buffer exists, so a huge claimed size costs nothing. */
static ic_err_t check_size(const char *fmt_name, long long w, long long h,
                               const img_limits_t *lim, char *msg,
                               size_t msg_size)
{
    if (w < 1 || h < 1)
        return fail(IC_EIMAGE_CORRUPT, msg, msg_size, "%s: empty image (%lldx%lld)",
                    fmt_name, w, h);
    uint64_t max_pixels = lim->max_pixels ? lim->max_pixels
                                          : IMG_DEFAULT_MAX_PIXELS;
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE ||
        (uint64_t)w * (uint64_t)h > max_pixels)
        return fail(IC_EIMAGE_LARGE, msg, msg_size,
                    "%s: %lldx%lld image is larger than the limit of %llu "
                    "pixels (%d per side)", fmt_name, w, h,
                    (unsigned long long)max_pixels, IMG_MAX_SIDE);
    if (w < lim->min_side || h < lim->min_side)
        return fail(IC_EIMAGE_SMALL, msg, msg_size,
                    "%s: %lldx%lld image is smaller than %d pixels per side",
                    fmt_name, w, h, lim->min_side);
    return IC_OK;
}

/* ---- EXIF orientation ------------------------------------------------------------ */

/* A TIFF block (the EXIF payload); every read is checked against len. */
typedef struct tiff_view {
    const uint8_t *p;
    size_t len;
    int little_endian;
} tiff_view_t;

static int tiff_u16(const tiff_view_t *t, size_t off, uint32_t *v)
{
    if (off > t->len || t->len - off < 2)
        return -1;
    const uint8_t *b = t->p + off;
    *v = t->little_endian ? (uint32_t)(b[0] | b[1] << 8)
                          : (uint32_t)(b[0] << 8 | b[1]);
    return 0;
}

static int tiff_u32(const tiff_view_t *t, size_t off, uint32_t *v)
{
    uint32_t a, b;
    if (tiff_u16(t, off, &a) || tiff_u16(t, off + 2, &b))
        return -1;
    *v = t->little_endian ? b << 16 | a : a << 16 | b;
    return 0;
}

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3
#define TIFF_TYPE_LONG 4

/* Orientation tag of IFD0, 1 when absent or malformed (a broken EXIF block
 * is common and harmless: the pixels are elsewhere). */
static int tiff_orientation(const uint8_t *p, size_t len)
{
    tiff_view_t t = {p, len, 0};
    if (len < 8)
        return 1;
    if (p[0] == 'I' && p[1] == 'I')
        t.little_endian = 1;
    else if (!(p[0] == 'M' && p[1] == 'M'))
        return 1;
    uint32_t magic, ifd, count;
    if (tiff_u16(&t, 2, &magic) || magic != 42 || tiff_u32(&t, 4, &ifd) ||
        tiff_u16(&t, ifd, &count))
        return 1;
    for (uint32_t i = 0; i < count; i++) {
        /* ifd <= len < 64 KiB and i < 64 Ki: no overflow in size_t. */
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        uint32_t tag, type, n, value;
        if (tiff_u16(&t, entry, &tag) || tiff_u16(&t, entry + 2, &type) ||
            tiff_u32(&t, entry + 4, &n))
            return 1;
        if (tag != EXIF_TAG_ORIENTATION)
            continue;
        if (n != 1)
            return 1;
        if (type == TIFF_TYPE_SHORT ? tiff_u16(&t, entry + 8, &value)
            : type == TIFF_TYPE_LONG ? tiff_u32(&t, entry + 8, &value)
                                     : -1)
            return 1;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

/* Walks the JPEG markers up to the first scan looking for an APP1 "Exif"
 * segment; returns its orientation (1..8), 1 without one. */
static int jpeg_orientation(const uint8_t *d, size_t n)
{
    size_t pos = 2; /* after SOI */
    while (pos + 4 <= n) {
        if (d[pos] != 0xff)
            return 1; /* lost sync: libjpeg will judge the file */
        uint8_t marker = d[pos + 1];
        if (marker == 0xff) { /* fill byte */
            pos++;
            continue;
        }
        if (marker == 0xda || marker == 0xd9) /* SOS, EOI: no more headers */
            return 1;
        if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
            pos += 2; /* markers without a length */
            continue;
        }
        size_t seg = (size_t)d[pos + 2] << 8 | d[pos + 3]; /* counts itself */
        if (seg < 2 || seg > n - pos - 2)
            return 1;
        const uint8_t *payload = d + pos + 4;
        size_t payload_len = seg - 2;
        if (marker == 0xe1 && payload_len >= 6 &&
            memcmp(payload, "Exif\0\0", 6) == 0)
            return tiff_orientation(payload + 6, payload_len - 6);
        pos += 2 + seg;
    }
    return 1;
}

/* Rewrites img upright. Output pixel (x, y) is input pixel
 * start + x * step_x + y * step_y (in pixels), as PIL's exif_transpose. */
static ic_err_t apply_orientation(img_rgb_t *img, int orientation,
                                      char *msg, size_t msg_size)
{
    if (orientation <= 1 || orientation > 8)
        return IC_OK;
    ptrdiff_t w = img->width, h = img->height;
    ptrdiff_t last_row = (h - 1) * w, start, step_x, step_y;
    switch (orientation) {
    case 2: start = w - 1; step_x = -1; step_y = w; break;             /* mirror */
    case 3: start = last_row + w - 1; step_x = -1; step_y = -w; break; /* 180 */
    case 4: start = last_row; step_x = 1; step_y = -w; break;          /* flip */
    case 5: start = 0; step_x = w; step_y = 1; break;                  /* transpose */
    case 6: start = last_row; step_x = -w; step_y = 1; break;          /* 90 CW */
    case 7: start = last_row + w - 1; step_x = -w; step_y = -1; break; /* transverse */
    default: start = w - 1; step_x = w; step_y = -1; break;            /* 8: 90 CCW */
    }
    int swap = orientation >= 5;
    int out_w = swap ? img->height : img->width;
    int out_h = swap ? img->width : img->height;
    uint8_t *rot = malloc((size_t)out_w * (size_t)out_h * 3);
    if (!rot)
        return fail(IC_ENOMEM, msg, msg_size,
                    "JPEG: out of memory applying the EXIF orientation");
    uint8_t *dst = rot;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *row = img->pixels + 3 * (start + y * step_y);
        for (int x = 0; x < out_w; x++, dst += 3)
            memcpy(dst, row + 3 * x * step_x, 3);
    }
    free(img->pixels);
    img->pixels = rot;
    img->width = out_w;
    img->height = out_h;
    return IC_OK;
}

/* ---- JPEG ------------------------------------------------------------------------ */

/* The smallest of 1/2, 1/4, 1/8 that keeps the oriented image at least
 * want_width x want_height; full size when no want is given. */
static void jpeg_pick_size(int w, int h, int orientation,
                           const img_limits_t *lim, int *out_w, int *out_h)
{
    *out_w = w;
    *out_h = h;
    if (lim->want_width <= 0 || lim->want_height <= 0)
        return;
    /* The want is for the upright image; 5..8 turn it a quarter. */
    int swap = orientation >= 5;
    int want_w = swap ? lim->want_height : lim->want_width;
    int want_h = swap ? lim->want_width : lim->want_height;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num != 1 || (sf[i].denom != 2 && sf[i].denom != 4 &&
                               sf[i].denom != 8))
            continue;
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        if (sw >= want_w && sh >= want_h && sw < *out_w) {
            *out_w = sw;
            *out_h = sh;
        }
    }
}

/* Stored CMYK (Adobe JPEGs store it inverted, and PIL assumes they all
 * do) to RGB as PIL's cmyk2rgb: c = 255 - stored, nk = 255 - k,
 * channel = nk - c * nk / 255 rounded. In place: 4 bytes in, 3 out. */
static void cmyk_to_rgb(uint8_t *px, size_t n)
{
    const uint8_t *in = px;
    uint8_t *out = px;
    for (size_t i = 0; i < n; i++, in += 4, out += 3) {
        int nk = in[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - in[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[c] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

static ic_err_t jpeg_fail(tjhandle tj, const char *what, char *msg,
                              size_t msg_size)
{
    const char *why = tjGetErrorStr2(tj);
    /* libjpeg reports running out of memory as an ordinary error. */
    ic_err_t st = strstr(why, "Insufficient memory") ? IC_ENOMEM
                                                         : IC_EIMAGE_CORRUPT;
    return fail(st, msg, msg_size, "JPEG: %s: %s", what, why);
}

/* 1 if a complete start-of-frame segment (SOF0..SOF15 but DHT, JPG, DAC)
 * lies within the data: walks the marker segments from SOI. */
static int jpeg_has_frame_header(const uint8_t *d, size_t n)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (d[i] != 0xFF)
            return 0;
        uint8_t m = d[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
        if (len < 2 || i + 2 + len > n)
            return 0;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
            return len >= 8;
        if (m == 0xDA || m == 0xD9)
            return 0; /* scan or end before any frame header */
        i += 2 + len;
    }
    return 0;
}

static ic_err_t jpeg_decode_with(tjhandle tj, const uint8_t *data,
                                     size_t size, const img_limits_t *lim,
                                     img_rgb_t *out, char *msg, size_t msg_size)
{
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &subsamp,
                            &colorspace) != 0)
        return jpeg_fail(tj, "bad header", msg, msg_size);
    /* On a file that ends inside its header libjpeg only warns (it fakes
     * an end marker) and TurboJPEG then reports whatever the sizes were. */
    if (tjGetErrorCode(tj) == TJERR_WARNING || !jpeg_has_frame_header(data, size))
        return fail(IC_EIMAGE_CORRUPT, msg, msg_size, "JPEG: truncated header");
    ic_err_t st = check_size("JPEG", w, h, lim, msg, msg_size);
    if (st != IC_OK)
        return st;

    int orientation = jpeg_orientation(data, size);
    int dec_w, dec_h;
    jpeg_pick_size(w, h, orientation, lim, &dec_w, &dec_h);
    /* libjpeg will not convert CMYK to RGB; take CMYK and convert here. */
    int cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t n_px = (size_t)dec_w * (size_t)dec_h;
    uint8_t *px = malloc(n_px * (cmyk ? 4 : 3));
    if (!px)
        return fail(IC_ENOMEM, msg, msg_size,
                    "JPEG: out of memory for %dx%d pixels", dec_w, dec_h);
    /* Warnings too are refused: libjpeg only warns about a truncated file
     * or a damaged scan and fills what it could not read with gray. Even
     * "N extraneous bytes before marker 0xd9", harmless when a camera pads
     * its files, is most often a scan that lost sync (3-byte corruptions
     * of the shared photos: 40% end that way), so it is not excused.
     * LIMITSCANS: a progressive file with thousands of scans is a CPU bomb. */
    if (tjDecompress2(tj, data, (unsigned long)size, px, dec_w, 0, dec_h, pf,
                      TJFLAG_LIMITSCANS) != 0) {
        free(px);
        return jpeg_fail(tj, "damaged data", msg, msg_size);
    }
    if (cmyk)
        cmyk_to_rgb(px, n_px); /* the buffer keeps its 4-byte size: harmless */
    out->width = dec_w;
    out->height = dec_h;
    out->pixels = px;
    return apply_orientation(out, orientation, msg, msg_size);
}

static ic_err_t jpeg_decode(const uint8_t *data, size_t size,
                                const img_limits_t *lim, img_rgb_t *out,
                                char *msg, size_t msg_size)
{
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return fail(IC_ENOMEM, msg, msg_size, "JPEG: cannot create a decoder: %s",
                    tjGetErrorStr2(NULL));
    ic_err_t st = jpeg_decode_with(tj, data, size, lim, out, msg, msg_size);
    tjDestroy(tj);
    return st;
}

/* ---- PNG ------------------------------------------------------------------------- */

static ic_err_t png_fail(int err, const char *what, char *msg,
                             size_t msg_size)
{
    switch (err) {
    case SPNG_EMEM:
        return fail(IC_ENOMEM, msg, msg_size, "PNG: out of memory (%s)", what);
    case SPNG_EUSER_WIDTH:
    case SPNG_EUSER_HEIGHT:
        return fail(IC_EIMAGE_LARGE, msg, msg_size,
                    "PNG: wider or taller than %d pixels", IMG_MAX_SIDE);
    case SPNG_IO_EOF:
    case SPNG_EOF:
        return fail(IC_EIMAGE_CORRUPT, msg, msg_size,
                    "PNG: %s: file is truncated", what);
    default:
        return fail(IC_EIMAGE_CORRUPT, msg, msg_size, "PNG: %s: %s", what,
                    spng_strerror(err));
    }
}

static ic_err_t png_decode_with(spng_ctx *ctx, const uint8_t *data,
                                    size_t size, const img_limits_t *lim,
                                    img_rgb_t *out, char *msg, size_t msg_size)
{
    /* Damage anywhere, even in an ancillary chunk, is refused. */
    int err = spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
    if (!err)
        err = spng_set_image_limits(ctx, IMG_MAX_SIDE, IMG_MAX_SIDE);
    if (!err)
        err = spng_set_chunk_limits(ctx, size, PNG_CHUNK_CACHE_LIMIT);
    if (!err)
        err = spng_set_png_buffer(ctx, data, size);
    if (err)
        return png_fail(err, "setting up the decoder", msg, msg_size);

    struct spng_ihdr ihdr;
    err = spng_get_ihdr(ctx, &ihdr); /* reads the signature and IHDR only */
    if (err)
        return png_fail(err, "bad header", msg, msg_size);
    ic_err_t st = check_size("PNG", ihdr.width, ihdr.height, lim, msg,
                                 msg_size);
    if (st != IC_OK)
        return st;

    /* RGB8 accepts every PNG type and depth: palettes and gray expand,
     * 16-bit keeps the high byte, alpha and tRNS are dropped. */
    size_t len, expect = (size_t)ihdr.width * ihdr.height * 3;
    err = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &len);
    if (err)
        return png_fail(err, "sizing the image", msg, msg_size);
    if (len != expect)
        return fail(IC_EIMAGE_CORRUPT, msg, msg_size,
                    "PNG: decoder wants %zu bytes for %ux%u RGB", len,
                    ihdr.width, ihdr.height);
    uint8_t *px = malloc(len);
    if (!px)
        return fail(IC_ENOMEM, msg, msg_size,
                    "PNG: out of memory for %ux%u pixels", ihdr.width,
                    ihdr.height);
    err = spng_decode_image(ctx, px, len, SPNG_FMT_RGB8, 0);
    /* The chunks after the image data, through IEND: a file cut short or
     * damaged there is refused like a JPEG without its EOI. */
    if (!err)
        err = spng_decode_chunks(ctx);
    if (err) {
        free(px);
        return png_fail(err, "damaged data", msg, msg_size);
    }
    out->width = (int)ihdr.width;
    out->height = (int)ihdr.height;
    out->pixels = px;
    return IC_OK;
}

static ic_err_t png_decode(const uint8_t *data, size_t size,
                               const img_limits_t *lim, img_rgb_t *out,
                               char *msg, size_t msg_size)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return fail(IC_ENOMEM, msg, msg_size, "PNG: cannot create a decoder");
    ic_err_t st = png_decode_with(ctx, data, size, lim, out, msg, msg_size);
    spng_ctx_free(ctx);
    return st;
}

/* ---- entry point ----------------------------------------------------------------- */

ic_err_t img_decode(const void *data, size_t size, const img_limits_t *lim,
                        img_rgb_t *out, char *msg, size_t msg_size)
{
    static const img_limits_t no_limits = {0, 0, 0, 0};
    if (msg && msg_size)
        msg[0] = '\0';
    memset(out, 0, sizeof *out);
    if (!lim)
        lim = &no_limits;
    ic_err_t st;
    switch (img_sniff(data, size)) {
    case IMG_FORMAT_JPEG:
        st = jpeg_decode(data, size, lim, out, msg, msg_size);
        break;
    case IMG_FORMAT_PNG:
        st = png_decode(data, size, lim, out, msg, msg_size);
        break;
    default:
        return fail(IC_EIMAGE_FORMAT, msg, msg_size,
                    "image: not a JPEG or PNG file (%zu bytes)", size);
    }
    if (st != IC_OK)
        img_free(out);
    return st;
}
