/* Image decoding (classify/image.c) and preprocessing (classify/preprocess.c)
 * on the real photos of ../shared/imagenet, on damaged copies of them, and
 * on small images encoded here to reach every PNG type and JPEG colour
 * space. The preprocessing is held to torchvision's own output (computed
 * by tests/tools/torchvision_ref.py) and to the reference TensorFlow resize
 * that made images_224. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "classify/image.h"
#include "classify/preprocess.h"
#include "nn/cpu.h"
#include "util/file.h"
#include "util/npy.h"
#include "util/testutil.h"

/* The photos of ../shared/imagenet/images, each as NAME.jpg and NAME.png. */
static const char *const photos[] = {"bird",      "cat",    "dragonfly",
                                     "grace_hopper", "sunflower", "squat",
                                     "parrot",    "hot_dog"};
#define N_PHOTOS (int)(sizeof photos / sizeof photos[0])

/* ---- files and decoding ---------------------------------------------------------- */

typedef struct blob {
    uint8_t *data;
    size_t size;
} blob_t;

static blob_t read_shared(const char *rel)
{
    char path[1024];
    tu_path(path, sizeof path, "%s/imagenet/%s", tu_shared_dir(), rel);
    blob_t b = {NULL, 0};
    int rc = util_read_file(path, (void **)&b.data, &b.size);
    ck_assert_msg(rc == 0, "cannot read %s: %s", path, strerror(-rc));
    return b;
}

/* Decodes data, which must succeed. */
static img_rgb_t decode_ok(const void *data, size_t size,
                           const img_limits_t *lim, const char *what)
{
    img_rgb_t img;
    char msg[256];
    ic_err_t st = img_decode(data, size, lim, &img, msg, sizeof msg);
    ck_assert_msg(st == IC_OK, "%s: status %d: %s", what, st, msg);
    ck_assert_ptr_nonnull(img.pixels);
    return img;
}

static img_rgb_t decode_photo(const char *name, const char *ext,
                              const img_limits_t *lim)
{
    char rel[256];
    tu_path(rel, sizeof rel, "images/%s.%s", name, ext);
    blob_t b = read_shared(rel);
    img_rgb_t img = decode_ok(b.data, b.size, lim, rel);
    free(b.data);
    return img;
}

/* Decodes data expecting failure with want; checks the message contract. */
static void expect_status(const void *data, size_t size, const img_limits_t *lim,
                          ic_err_t want, const char *prefix, const char *what)
{
    img_rgb_t img;
    char msg[256];
    ic_err_t st = img_decode(data, size, lim, &img, msg, sizeof msg);
    ck_assert_msg(st == want, "%s: status %d, want %d (%s)", what, st, want, msg);
    ck_assert_msg(img.pixels == NULL && img.width == 0 && img.height == 0,
                  "%s: output not zeroed", what);
    ck_assert_msg(msg[0] && !strchr(msg, '\n'), "%s: message '%s'", what, msg);
    if (prefix)
        ck_assert_msg(strncmp(msg, prefix, strlen(prefix)) == 0,
                      "%s: message '%s' lacks '%s'", what, msg, prefix);
}

static double mean_abs_diff_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a[i] - (int)b[i]);
    return n ? s / (double)n : 0;
}

static const uint8_t *pixel(const img_rgb_t *img, int x, int y)
{
    return img->pixels + ((size_t)y * img->width + x) * 3;
}

static void expect_rgb_near(const uint8_t *px, int r, int g, int b, int tol,
                            const char *what)
{
    ck_assert_msg(abs(px[0] - r) <= tol && abs(px[1] - g) <= tol &&
                      abs(px[2] - b) <= tol,
                  "%s: got (%d,%d,%d), want (%d,%d,%d) +-%d", what, px[0],
                  px[1], px[2], r, g, b, tol);
}

/* ---- encoders for generated test images ------------------------------------------ */

/* PNG's CRC-32 (zlib is not linked into the tests). */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Encodes with libspng's encoder; px holds rows in the PNG's own format. */
static blob_t png_encode(struct spng_ihdr ihdr, const void *px, size_t len,
                         struct spng_plte *plte, struct spng_trns *trns)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1), 0);
    ck_assert_int_eq(spng_set_ihdr(ctx, &ihdr), 0);
    if (plte)
        ck_assert_int_eq(spng_set_plte(ctx, plte), 0);
    if (trns)
        ck_assert_int_eq(spng_set_trns(ctx, trns), 0);
    int rc = spng_encode_image(ctx, px, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    ck_assert_msg(rc == 0, "spng_encode_image: %s", spng_strerror(rc));
    blob_t b = {NULL, 0};
    b.data = spng_get_png_buffer(ctx, &b.size, &rc);
    ck_assert_msg(b.data && rc == 0, "spng_get_png_buffer: %s", spng_strerror(rc));
    spng_ctx_free(ctx);
    return b;
}

static struct spng_ihdr png_header(uint32_t w, uint32_t h, int depth, int type)
{
    struct spng_ihdr ihdr = {w, h, (uint8_t)depth, (uint8_t)type, 0, 0, 0};
    return ihdr;
}

/* tjCompress2 into a malloc'ed copy. */
static blob_t jpeg_encode(const uint8_t *px, int w, int h, int pf, int subsamp,
                          int quality)
{
    tjhandle tj = tjInitCompress();
    ck_assert_ptr_nonnull(tj);
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    int rc = tjCompress2(tj, px, w, 0, h, pf, &jpg, &len, subsamp, quality, 0);
    ck_assert_msg(rc == 0, "tjCompress2: %s", tjGetErrorStr2(tj));
    blob_t b = {malloc(len), len};
    ck_assert_ptr_nonnull(b.data);
    memcpy(b.data, jpg, len);
    tjFree(jpg);
    tjDestroy(tj);
    return b;
}

/* Offset of the first marker m (0xFFm) among the JPEG header segments. */
static size_t jpeg_find_marker(const blob_t *b, uint8_t m)
{
    size_t pos = 2;
    while (pos + 4 <= b->size && b->data[pos] == 0xff &&
           b->data[pos + 1] != 0xda) {
        if (b->data[pos + 1] == m)
            return pos;
        pos += 2 + ((size_t)b->data[pos + 2] << 8 | b->data[pos + 3]);
    }
    ck_abort_msg("marker 0x%02x not found", m);
    return 0;
}

/* A copy of jpg with an APP1 segment holding payload right after SOI. */
static blob_t jpeg_insert_app1(const blob_t *jpg, const uint8_t *payload,
                               size_t payload_len)
{
    size_t seg = payload_len + 2;
    ck_assert(seg <= 0xffff);
    blob_t b = {malloc(jpg->size + 2 + seg), jpg->size + 2 + seg};
    ck_assert_ptr_nonnull(b.data);
    uint8_t *p = b.data;
    memcpy(p, jpg->data, 2); /* SOI */
    p += 2;
    *p++ = 0xff;
    *p++ = 0xe1;
    *p++ = (uint8_t)(seg >> 8);
    *p++ = (uint8_t)seg;
    memcpy(p, payload, payload_len);
    memcpy(p + payload_len, jpg->data + 2, jpg->size - 2);
    return b;
}

/* "Exif\0\0" + a 26-byte TIFF block whose IFD0 holds one entry (tag, type,
 * count 1, value); every field can be given wrong on purpose. */
static size_t exif_payload_raw(uint8_t *out, int big_endian, uint16_t magic,
                               uint32_t ifd, uint16_t count, uint16_t tag,
                               uint16_t type, uint16_t orientation)
{
    uint8_t t[26] = {0};
    int le = !big_endian;
#define PUT16(o, v) (le ? (t[o] = (uint8_t)(v), t[(o) + 1] = (uint8_t)((v) >> 8)) \
                        : (t[o] = (uint8_t)((v) >> 8), t[(o) + 1] = (uint8_t)(v)))
    t[0] = t[1] = le ? 'I' : 'M';
    PUT16(2, magic);
    PUT16(4, le ? ifd & 0xffff : ifd >> 16);
    PUT16(6, le ? ifd >> 16 : ifd & 0xffff);
    PUT16(8, count);
    PUT16(10, tag);
    PUT16(12, type);
    PUT16(14, le ? 1 : 0);
    PUT16(16, le ? 0 : 1); /* count 1 as a 32-bit value */
    PUT16(18, orientation);
    /* t[22..25]: next IFD offset 0 */
#undef PUT16
    memcpy(out, "Exif\0\0", 6);
    memcpy(out + 6, t, sizeof t);
    return 6 + sizeof t;
}

/* A well-formed EXIF block with this orientation. */
static size_t exif_payload(uint8_t *out, int big_endian, uint16_t orientation)
{
    return exif_payload_raw(out, big_endian, 42, 8, 1, 0x0112, 3, orientation);
}

/* w x h pixels of nch bytes in four quadrants of the given colours (TL,
 * TR, BL, BR: 4 * nch bytes). */
static uint8_t *quadrants(int w, int h, const uint8_t *colours, int nch)
{
    uint8_t *px = malloc((size_t)w * h * nch);
    ck_assert_ptr_nonnull(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int q = (y >= h / 2) * 2 + (x >= w / 2);
            memcpy(px + ((size_t)y * w + x) * nch, colours + q * nch, (size_t)nch);
        }
    return px;
}

/* ---- sniffing and the real photos ------------------------------------------------ */

START_TEST(sniff)
{
    static const uint8_t jpg[] = {0xff, 0xd8, 0xff, 0xe0};
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ck_assert_int_eq(img_sniff(jpg, sizeof jpg), IMG_FORMAT_JPEG);
    ck_assert_int_eq(img_sniff(png, sizeof png), IMG_FORMAT_PNG);
    ck_assert_int_eq(img_sniff(png, sizeof png - 1), IMG_FORMAT_UNKNOWN);
    ck_assert_int_eq(img_sniff(jpg, 2), IMG_FORMAT_UNKNOWN);
    ck_assert_int_eq(img_sniff("GIF89a", 6), IMG_FORMAT_UNKNOWN);
    ck_assert_int_eq(img_sniff(NULL, 0), IMG_FORMAT_UNKNOWN);
}
END_TEST

/* Every photo decodes in both formats to the same size and nearly the
 * same pixels (the JPEGs are quality-95 copies, or the originals the PNG
 * was decoded from). */
START_TEST(photos_png_and_jpeg_agree)
{
    for (int i = 0; i < N_PHOTOS; i++) {
        img_rgb_t png = decode_photo(photos[i], "png", NULL);
        img_rgb_t jpg = decode_photo(photos[i], "jpg", NULL);
        ck_assert_int_eq(png.width, jpg.width);
        ck_assert_int_eq(png.height, jpg.height);
        double d = mean_abs_diff_u8(png.pixels, jpg.pixels,
                                    (size_t)png.width * png.height * 3);
        printf("decode %-12s %dx%d: PNG vs JPEG mean |diff| %.3f levels\n",
               photos[i], png.width, png.height, d);
        ck_assert_msg(d < 3.0, "%s: PNG and JPEG differ by %.3f", photos[i], d);
        img_free(&png);
        img_free(&jpg);
    }
}
END_TEST

/* ---- damaged and hostile input --------------------------------------------------- */

START_TEST(truncated_files_are_corrupt)
{
    blob_t jpg = read_shared("images/bird.jpg");
    blob_t png = read_shared("images/bird.png");
    expect_status(jpg.data, jpg.size / 2, NULL, IC_EIMAGE_CORRUPT, "JPEG: ", "half JPEG");
    expect_status(jpg.data, 300, NULL, IC_EIMAGE_CORRUPT, "JPEG: ", "JPEG header only");
    expect_status(png.data, png.size / 2, NULL, IC_EIMAGE_CORRUPT, "PNG: ", "half PNG");
    expect_status(png.data, 40, NULL, IC_EIMAGE_CORRUPT, "PNG: ", "PNG header only");
    free(jpg.data);
    free(png.data);
}
END_TEST

/* A copy of b with n junk bytes inserted at offset at. */
static blob_t insert_junk(const blob_t *b, size_t at, size_t n)
{
    blob_t j = {malloc(b->size + n), b->size + n};
    ck_assert_ptr_nonnull(j.data);
    memcpy(j.data, b->data, at);
    for (size_t i = 0; i < n; i++)
        j.data[at + i] = (uint8_t)(0x11 * (i + 1));
    memcpy(j.data + at + n, b->data + at, b->size - at);
    return j;
}

/* libjpeg only warns about junk between segments; it is refused even
 * before the final EOI, where it most often means a scan that lost sync. */
START_TEST(jpeg_extraneous_bytes)
{
    blob_t jpg = read_shared("images/cat.jpg");
    ck_assert(jpg.data[jpg.size - 2] == 0xff && jpg.data[jpg.size - 1] == 0xd9);
    blob_t tail = insert_junk(&jpg, jpg.size - 2, 5);
    expect_status(tail.data, tail.size, NULL, IC_EIMAGE_CORRUPT, "JPEG: ",
                  "junk before EOI");
    blob_t head = insert_junk(&jpg, jpeg_find_marker(&jpg, 0xc4), 5);
    expect_status(head.data, head.size, NULL, IC_EIMAGE_CORRUPT, "JPEG: ",
                  "junk before DHT");
    free(tail.data);
    free(head.data);
    free(jpg.data);
}
END_TEST

/* Offset of the CRC of the first chunk of this type. */
static size_t png_chunk_crc(const blob_t *b, const char *type)
{
    size_t pos = 8;
    while (pos + 12 <= b->size) {
        uint32_t len = (uint32_t)b->data[pos] << 24 | b->data[pos + 1] << 16 |
                       b->data[pos + 2] << 8 | b->data[pos + 3];
        if (memcmp(b->data + pos + 4, type, 4) == 0)
            return pos + 8 + len;
        pos += 12 + (size_t)len;
    }
    ck_abort_msg("no %s chunk", type);
    return 0;
}

START_TEST(png_crc_errors_are_corrupt)
{
    static const char *const chunks[] = {"IHDR", "IDAT", "IEND"};
    blob_t png = read_shared("images/cat.png");
    for (int i = 0; i < 3; i++) {
        size_t at = png_chunk_crc(&png, chunks[i]);
        png.data[at + 1] ^= 0x01;
        expect_status(png.data, png.size, NULL, IC_EIMAGE_CORRUPT, "PNG: ", chunks[i]);
        png.data[at + 1] ^= 0x01;
    }
    img_rgb_t ok = decode_ok(png.data, png.size, NULL, "restored cat.png");
    img_free(&ok);
    free(png.data);
}
END_TEST

START_TEST(garbage_is_not_an_image)
{
    static const char text[] = "<html>definitely not a picture</html>";
    expect_status(text, sizeof text, NULL, IC_EIMAGE_FORMAT, NULL, "text");
    expect_status(text, 0, NULL, IC_EIMAGE_FORMAT, NULL, "empty");
    expect_status(NULL, 0, NULL, IC_EIMAGE_FORMAT, NULL, "NULL");
    /* The right magic followed by junk is a damaged file, not a format. */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    junk[0] = 0xff, junk[1] = 0xd8, junk[2] = 0xff;
    expect_status(junk, sizeof junk, NULL, IC_EIMAGE_CORRUPT, "JPEG: ", "JPEG junk");
    static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(junk, magic, 8);
    expect_status(junk, sizeof junk, NULL, IC_EIMAGE_CORRUPT, "PNG: ", "PNG junk");
}
END_TEST

/* Signature, IHDR of w x h RGB, IEND: no pixel data at all, so decoding
 * that went past the header check would fail as corrupt, not too large. */
static blob_t png_header_only(uint32_t w, uint32_t h)
{
    static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    blob_t b = {malloc(8 + 25 + 12), 8 + 25 + 12};
    ck_assert_ptr_nonnull(b.data);
    uint8_t *p = b.data;
    memcpy(p, magic, 8);
    put_be32(p + 8, 13);
    memcpy(p + 12, "IHDR", 4);
    put_be32(p + 16, w);
    put_be32(p + 20, h);
    memcpy(p + 24, "\x08\x02\x00\x00\x00", 5); /* 8-bit RGB */
    put_be32(p + 29, crc32_png(p + 12, 17));
    put_be32(p + 33, 0);
    memcpy(p + 37, "IEND", 4);
    put_be32(p + 41, crc32_png(p + 37, 4));
    return b;
}

START_TEST(huge_headers_are_refused_before_allocation)
{
    img_limits_t lim = {1, 100ull * 1000 * 1000, 0, 0};
    blob_t png = png_header_only(30000, 30000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_status(png.data, png.size, &lim, IC_EIMAGE_LARGE, "PNG: ", "30000^2 PNG");
    /* No limit given: the built-in default still applies. */
    expect_status(png.data, png.size, NULL, IC_EIMAGE_LARGE, "PNG: ", "default limit");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    ck_assert_msg(ms < 100, "refusing took %.1f ms", ms);
    free(png.data);
    /* Beyond the 65500 per-side cap even with a large pixel budget. */
    png = png_header_only(70000, 1);
    lim.max_pixels = 1ull << 40;
    expect_status(png.data, png.size, &lim, IC_EIMAGE_LARGE, "PNG: ", "70000 wide");
    free(png.data);
    /* A sane header still passes the check and fails on the missing data. */
    png = png_header_only(64, 64);
    expect_status(png.data, png.size, NULL, IC_EIMAGE_CORRUPT, "PNG: ", "no IDAT");
    free(png.data);

    /* A JPEG whose SOF claims 30000 x 30000. */
    uint8_t small[16 * 16 * 3] = {0};
    blob_t jpg = jpeg_encode(small, 16, 16, TJPF_RGB, TJSAMP_420, 90);
    size_t sof = jpeg_find_marker(&jpg, 0xc0);
    jpg.data[sof + 5] = 30000 >> 8, jpg.data[sof + 6] = 30000 & 0xff;
    jpg.data[sof + 7] = 30000 >> 8, jpg.data[sof + 8] = 30000 & 0xff;
    lim.max_pixels = 100ull * 1000 * 1000;
    expect_status(jpg.data, jpg.size, &lim, IC_EIMAGE_LARGE, "JPEG: ", "30000^2 JPEG");
    free(jpg.data);
}
END_TEST

START_TEST(tiny_images_are_too_small)
{
    uint8_t px[3] = {10, 20, 30};
    blob_t png = png_encode(png_header(1, 1, 8, SPNG_COLOR_TYPE_TRUECOLOR), px, 3,
                            NULL, NULL);
    img_limits_t lim = {2, 0, 0, 0};
    expect_status(png.data, png.size, &lim, IC_EIMAGE_SMALL, "PNG: ", "1x1 PNG");
    lim.min_side = 1;
    img_rgb_t img = decode_ok(png.data, png.size, &lim, "1x1 PNG, min_side 1");
    ck_assert(img.width == 1 && img.height == 1 && !memcmp(img.pixels, px, 3));
    img_free(&img);
    free(png.data);

    blob_t jpg = jpeg_encode(px, 1, 1, TJPF_RGB, TJSAMP_444, 90);
    lim.min_side = 2;
    expect_status(jpg.data, jpg.size, &lim, IC_EIMAGE_SMALL, "JPEG: ", "1x1 JPEG");
    free(jpg.data);
}
END_TEST

/* ---- every PNG colour type ------------------------------------------------------- */

#define VW 19 /* odd sizes: rows are not a multiple of anything */
#define VH 7

/* The RGB every variant below must decode to. */
static void variant_rgb(int x, int y, uint8_t rgb[3])
{
    rgb[0] = (uint8_t)(x * 13 + y * 7);
    rgb[1] = (uint8_t)(x * 3 + y * 31 + 5);
    rgb[2] = (uint8_t)(255 - x * 11 - y);
}

static uint8_t variant_gray(int x, int y)
{
    return (uint8_t)(x * 13 + y * 17);
}

static void check_variant(const blob_t *png, int gray, const char *what)
{
    img_rgb_t img = decode_ok(png->data, png->size, NULL, what);
    ck_assert_int_eq(img.width, VW);
    ck_assert_int_eq(img.height, VH);
    for (int y = 0; y < VH; y++)
        for (int x = 0; x < VW; x++) {
            uint8_t want[3];
            variant_rgb(x, y, want);
            if (gray)
                want[0] = want[1] = want[2] = variant_gray(x, y);
            ck_assert_msg(!memcmp(pixel(&img, x, y), want, 3),
                          "%s: pixel (%d,%d) is (%d,%d,%d), want (%d,%d,%d)",
                          what, x, y, pixel(&img, x, y)[0], pixel(&img, x, y)[1],
                          pixel(&img, x, y)[2], want[0], want[1], want[2]);
        }
    img_free(&img);
}

/* Samples of 16-bit PNGs are host-endian for spng's SPNG_FMT_PNG; the
 * low byte is noise that the decoder must drop (PIL keeps the high byte). */
static void put16(uint8_t *p, uint8_t hi, uint8_t noise)
{
    uint16_t v = (uint16_t)(hi << 8 | noise);
    memcpy(p, &v, 2);
}

START_TEST(png_color_types)
{
    uint8_t buf[VW * VH * 8];
    size_t n = VW * VH;
    /* 8-bit RGB, plain and interlaced. */
    for (size_t i = 0; i < n; i++)
        variant_rgb((int)(i % VW), (int)(i / VW), buf + 3 * i);
    struct spng_ihdr ihdr = png_header(VW, VH, 8, SPNG_COLOR_TYPE_TRUECOLOR);
    blob_t b = png_encode(ihdr, buf, n * 3, NULL, NULL);
    check_variant(&b, 0, "RGB8");
    free(b.data);
    ihdr.interlace_method = SPNG_INTERLACE_ADAM7;
    b = png_encode(ihdr, buf, n * 3, NULL, NULL);
    check_variant(&b, 0, "RGB8 interlaced");
    free(b.data);

    /* RGBA8 with varying alpha: alpha is dropped, colours untouched. */
    for (size_t i = 0; i < n; i++) {
        variant_rgb((int)(i % VW), (int)(i / VW), buf + 4 * i);
        buf[4 * i + 3] = (uint8_t)(i * 5);
    }
    b = png_encode(png_header(VW, VH, 8, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA), buf,
                   n * 4, NULL, NULL);
    check_variant(&b, 0, "RGBA8");
    free(b.data);

    /* 16-bit RGB and RGBA. */
    for (size_t i = 0; i < n; i++) {
        uint8_t rgb[3];
        variant_rgb((int)(i % VW), (int)(i / VW), rgb);
        for (int c = 0; c < 4; c++)
            put16(buf + 8 * i + 2 * c, c < 3 ? rgb[c] : 0x80, (uint8_t)(i * 29 + c));
    }
    b = png_encode(png_header(VW, VH, 16, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA), buf,
                   n * 8, NULL, NULL);
    check_variant(&b, 0, "RGBA16");
    free(b.data);
    for (size_t i = 0; i < n; i++) {
        uint8_t rgb[3];
        variant_rgb((int)(i % VW), (int)(i / VW), rgb);
        for (int c = 0; c < 3; c++)
            put16(buf + 6 * i + 2 * c, rgb[c], (uint8_t)(i * 29 + c));
    }
    b = png_encode(png_header(VW, VH, 16, SPNG_COLOR_TYPE_TRUECOLOR), buf, n * 6,
                   NULL, NULL);
    check_variant(&b, 0, "RGB16");
    free(b.data);

    /* Gray 8 and 16, gray + alpha 8. */
    for (size_t i = 0; i < n; i++)
        buf[i] = variant_gray((int)(i % VW), (int)(i / VW));
    b = png_encode(png_header(VW, VH, 8, SPNG_COLOR_TYPE_GRAYSCALE), buf, n, NULL,
                   NULL);
    check_variant(&b, 1, "G8");
    free(b.data);
    for (size_t i = n; i-- > 0;) /* in place, back to front */
        put16(buf + 2 * i, buf[i], (uint8_t)(i * 7));
    b = png_encode(png_header(VW, VH, 16, SPNG_COLOR_TYPE_GRAYSCALE), buf, n * 2,
                   NULL, NULL);
    check_variant(&b, 1, "G16");
    free(b.data);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = variant_gray((int)(i % VW), (int)(i / VW));
        buf[2 * i + 1] = (uint8_t)(255 - i);
    }
    b = png_encode(png_header(VW, VH, 8, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA), buf,
                   n * 2, NULL, NULL);
    check_variant(&b, 1, "GA8");
    free(b.data);

    /* Palette, one entry per pixel, with tRNS (ignored). */
    struct spng_plte plte = {0};
    struct spng_trns trns = {0};
    plte.n_entries = (uint32_t)n;
    trns.n_type3_entries = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        uint8_t rgb[3];
        variant_rgb((int)(i % VW), (int)(i / VW), rgb);
        plte.entries[i].red = rgb[0];
        plte.entries[i].green = rgb[1];
        plte.entries[i].blue = rgb[2];
        trns.type3_alpha[i] = (uint8_t)(i * 3);
        buf[i] = (uint8_t)i;
    }
    b = png_encode(png_header(VW, VH, 8, SPNG_COLOR_TYPE_INDEXED), buf, n, &plte,
                   &trns);
    check_variant(&b, 0, "palette + tRNS");
    free(b.data);
}
END_TEST

/* ---- JPEG colour spaces and orientation ------------------------------------------ */

static const uint8_t quad_rgb[4][3] = {
    {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

/* Centre of quadrant q (0 TL, 1 TR, 2 BL, 3 BR) of img. */
static const uint8_t *quadrant_centre(const img_rgb_t *img, int q)
{
    return pixel(img, img->width / 4 + (q & 1) * img->width / 2,
                 img->height / 4 + (q >> 1) * img->height / 2);
}

START_TEST(jpeg_grayscale)
{
    uint8_t *px = quadrants(32, 32, quad_rgb[0], 3);
    blob_t jpg = jpeg_encode(px, 32, 32, TJPF_RGB, TJSAMP_GRAY, 100);
    img_rgb_t img = decode_ok(jpg.data, jpg.size, NULL, "gray JPEG");
    for (size_t i = 0; i < 32 * 32; i++) {
        const uint8_t *p = img.pixels + 3 * i;
        ck_assert(p[0] == p[1] && p[1] == p[2]);
    }
    for (int q = 0; q < 4; q++) {
        const uint8_t *c = quad_rgb[q];
        int luma = (int)lround(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]);
        expect_rgb_near(quadrant_centre(&img, q), luma, luma, luma, 3, "gray JPEG");
    }
    img_free(&img);
    free(jpg.data);
    free(px);
}
END_TEST

START_TEST(jpeg_cmyk)
{
    /* Stored (Adobe-inverted) CMYK and what PIL's convert("RGB") makes of
     * it: the first one was checked against PIL 9.4 by hand. */
    static const uint8_t stored[4][4] = {
        {245, 55, 225, 215}, {255, 255, 255, 255}, {255, 0, 0, 255}, {128, 128, 128, 0}};
    static const uint8_t want[4][3] = {
        {207, 46, 190}, {255, 255, 255}, {255, 0, 0}, {0, 0, 0}};
    uint8_t *px = quadrants(32, 32, stored[0], 4);
    blob_t jpg = jpeg_encode(px, 32, 32, TJPF_CMYK, TJSAMP_444, 100);
    img_rgb_t img = decode_ok(jpg.data, jpg.size, NULL, "CMYK JPEG");
    ck_assert(img.width == 32 && img.height == 32);
    for (int q = 0; q < 4; q++)
        expect_rgb_near(quadrant_centre(&img, q), want[q][0], want[q][1],
                        want[q][2], 3, "CMYK JPEG");
    img_free(&img);
    free(jpg.data);
    free(px);
}
END_TEST

/* Where each stored quadrant (TL, TR, BL, BR) must appear once upright,
 * for orientations 1..8 (PIL's exif_transpose: 6 turns 90 degrees
 * clockwise, 8 counter-clockwise, 5 and 7 mirror across a diagonal). */
static const int orient_quadrants[9][4] = {
    {0, 0, 0, 0},
    {0, 1, 2, 3}, {1, 0, 3, 2}, {3, 2, 1, 0}, {2, 3, 0, 1},
    {0, 2, 1, 3}, {2, 0, 3, 1}, {3, 1, 2, 0}, {1, 3, 0, 2}};

START_TEST(jpeg_exif_orientation)
{
    uint8_t *px = quadrants(64, 32, quad_rgb[0], 3);
    blob_t jpg = jpeg_encode(px, 64, 32, TJPF_RGB, TJSAMP_444, 100);
    for (int o = 1; o <= 8; o++) {
        uint8_t payload[64];
        size_t len = exif_payload(payload, o % 2, (uint16_t)o);
        blob_t b = jpeg_insert_app1(&jpg, payload, len);
        img_rgb_t img = decode_ok(b.data, b.size, NULL, "EXIF JPEG");
        char what[64];
        snprintf(what, sizeof what, "orientation %d", o);
        ck_assert_int_eq(img.width, o >= 5 ? 32 : 64);
        ck_assert_int_eq(img.height, o >= 5 ? 64 : 32);
        for (int q = 0; q < 4; q++) {
            const uint8_t *c = quad_rgb[orient_quadrants[o][q]];
            expect_rgb_near(quadrant_centre(&img, q), c[0], c[1], c[2], 8, what);
        }
        img_free(&img);
        free(b.data);
    }
    free(jpg.data);
    free(px);
}
END_TEST

/* Broken EXIF blocks are ignored, not trusted and not fatal. */
START_TEST(jpeg_exif_malformed)
{
    uint8_t *px = quadrants(64, 32, quad_rgb[0], 3);
    blob_t jpg = jpeg_encode(px, 64, 32, TJPF_RGB, TJSAMP_444, 100);
    struct {
        uint16_t magic;
        uint32_t ifd;
        uint16_t count, tag, type, orientation;
        size_t cut; /* TIFF bytes kept, 0: all */
    } bad[] = {
        {42, 0xfffffff0u, 1, 0x112, 3, 6, 0}, /* IFD far outside */
        {42, 8, 0xffff, 0x100, 3, 6, 0},      /* entries run off the end */
        {42, 8, 1, 0x112, 3, 9, 0},           /* no such orientation */
        {42, 8, 1, 0x112, 2, 6, 0},           /* ASCII, not a number */
        {43, 8, 1, 0x112, 3, 6, 0},           /* not TIFF */
        {42, 8, 1, 0x112, 3, 6, 16},          /* cut inside the entry */
        {42, 24, 1, 0x112, 3, 6, 0},          /* IFD in the last bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t payload[64];
        size_t len = exif_payload_raw(payload, (int)(i & 1), bad[i].magic,
                                      bad[i].ifd, bad[i].count, bad[i].tag,
                                      bad[i].type, bad[i].orientation);
        if (bad[i].cut)
            len = 6 + bad[i].cut;
        blob_t b = jpeg_insert_app1(&jpg, payload, len);
        img_rgb_t img = decode_ok(b.data, b.size, NULL, "bad EXIF");
        ck_assert_msg(img.width == 64 && img.height == 32, "case %zu rotated", i);
        img_free(&img);
        free(b.data);
    }
    free(jpg.data);
    free(px);
}
END_TEST

/* A 2048x1372 JPEG (bird upscaled 4x) decodes at the smallest DCT scale
 * that still covers the want, measured on the upright image. */
START_TEST(jpeg_scaled_decode)
{
    img_rgb_t bird = decode_photo("bird", "png", NULL);
    int w = bird.width * 4, h = bird.height * 4;
    uint8_t *big = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(big);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(big + ((size_t)y * w + x) * 3, pixel(&bird, x / 4, y / 4), 3);
    blob_t jpg = jpeg_encode(big, w, h, TJPF_RGB, TJSAMP_420, 90);
    free(big);
    struct { int want_w, want_h, orientation, out_w, out_h; } cases[] = {
        {0, 0, 1, 2048, 1372},     /* no want: full size */
        {300, 300, 1, 512, 343},   /* 1/4; 1/8 would be 256x172 */
        {256, 171, 1, 256, 172},   /* 1/8 */
        {1025, 100, 1, 2048, 1372}, /* 1/2 is 1024 wide: too small */
        {300, 0, 1, 2048, 1372},   /* one side without a want: full size */
        /* Orientation 6: upright 1372x2048; 1/4 is 343x512 upright. */
        {300, 500, 6, 343, 512},
        {400, 500, 6, 686, 1024},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t payload[64];
        size_t len = exif_payload(payload, 0, (uint16_t)cases[i].orientation);
        blob_t b = jpeg_insert_app1(&jpg, payload, len);
        img_limits_t lim = {1, 0, cases[i].want_w, cases[i].want_h};
        img_rgb_t img = decode_ok(b.data, b.size, &lim, "big JPEG");
        ck_assert_msg(img.width == cases[i].out_w && img.height == cases[i].out_h,
                      "case %zu: %dx%d, want %dx%d", i, img.width, img.height,
                      cases[i].out_w, cases[i].out_h);
        if (img.width == bird.width && img.height == bird.height) {
            /* DCT scaling by 4 of a 4x upscale gives back the photo. */
            double d = mean_abs_diff_u8(img.pixels, bird.pixels,
                                        (size_t)img.width * img.height * 3);
            printf("scaled decode 1/4 of 4x bird: mean |diff| %.3f levels\n", d);
            ck_assert_msg(d < 3.0, "scaled decode differs by %.3f", d);
        }
        img_free(&img);
        free(b.data);
    }
    free(jpg.data);
    img_free(&bird);
}
END_TEST

/* ---- preprocessing with every instruction set ------------------------------------ */

/* pre_run with the resizers of every instruction set up to the machine's
 * best (cfg->isa aside): all must return the same code and, when they
 * succeed, the same bytes. out and msg keep the best's tensor and message;
 * a disagreement returns -1 with msg saying where. */
static int pre_run_isas(const pre_config_t *cfg, const img_rgb_t *img, float *out,
                        char *msg, size_t msg_size)
{
    nn_cpu_t cpu;
    nn_error_t err;
    (void)nn_cpu_detect(&cpu, &err); /* best is set even if IMGCLASS_ISA is refused */
    size_t n = (size_t)cfg->width * cfg->height * (cfg->channels == PRE_GRAY ? 1 : 3);
    pre_config_t c = *cfg;
    c.isa = cpu.best;
    int rc = pre_run(&c, img, out, msg, msg_size);
    float *low = malloc((n ? n : 1) * sizeof *low);
    ck_assert_ptr_nonnull(low);
    for (int isa = NN_ISA_GENERIC; isa < (int)cpu.best; isa++) {
        char low_msg[256];
        c.isa = (nn_isa_t)isa;
        int low_rc = pre_run(&c, img, low, low_msg, sizeof low_msg);
        size_t at = 0;
        while (rc == 0 && low_rc == 0 && at < n && memcmp(&low[at], &out[at], sizeof *out) == 0)
            at++;
        if (low_rc != rc || (rc == 0 && at < n)) {
            snprintf(msg, msg_size, "preprocess with %s and %s disagrees (code %d and %d, "
                     "element %zu of %zu)", nn_isa_name(c.isa), nn_isa_name(cpu.best),
                     low_rc, rc, at, n);
            rc = -1;
            break;
        }
    }
    free(low);
    return rc;
}

/* ---- preprocessing against torchvision ------------------------------------------- */

typedef struct tv_case {
    const char *name;
    int resize, crop_h, crop_w, channels;
} tv_case_t;

static const tv_case_t tv_cases[] = {
    {"std", 256, 224, 224, 3},  /* the ImageNet pipeline */
    {"rect", 160, 128, 111, 3}, /* non-square crop, odd offsets */
    {"pad", 120, 128, 144, 3},  /* crop taller than the resize: zero padding */
    {"gray", 256, 224, 224, 1}, /* convert("L") */
    {"small", 64, 56, 56, 3},   /* 4x the resize is 256: the 512-pixel JPEGs
                                 * decode at 1/2, so the hint is exercised */
};
#define N_TV_CASES (int)(sizeof tv_cases / sizeof tv_cases[0])

static void tv_config(const tv_case_t *c, pre_config_t *cfg)
{
    char msg[256];
    json_t *obj = json_pack("{s:i}", "resize_size", c->resize);
    ck_assert_ptr_nonnull(obj);
    int rc = pre_config_parse(obj, c->crop_w, c->crop_h, c->channels, cfg, msg,
                              sizeof msg);
    json_decref(obj);
    ck_assert_msg(rc == 0, "%s: %s", c->name, msg);
}

/* The CASE argument of torchvision_ref.py, mean and std from our config. */
static void tv_case_arg(const tv_case_t *c, char *buf, size_t size)
{
    pre_config_t cfg;
    tv_config(c, &cfg);
    if (c->channels == 1)
        snprintf(buf, size, "%s:%d:%d:%d:L:%.9g:%.9g", c->name, c->resize,
                 c->crop_h, c->crop_w, cfg.mean[0], cfg.std[0]);
    else
        snprintf(buf, size, "%s:%d:%d:%d:RGB:%.9g,%.9g,%.9g:%.9g,%.9g,%.9g",
                 c->name, c->resize, c->crop_h, c->crop_w, cfg.mean[0],
                 cfg.mean[1], cfg.mean[2], cfg.std[0], cfg.std[1], cfg.std[2]);
}

/* Runs tests/tools/torchvision_ref.py into dir; returns its exit status. */
static int run_torchvision_ref(const char *dir)
{
    const char *python = getenv("IMGCLASS_PYTHON");
    if (!python || !*python)
        python = "/usr/bin/python3";
    char images[1024], args[N_TV_CASES][128];
    tu_path(images, sizeof images, "%s/imagenet/images", tu_shared_dir());
    char *argv[4 + N_TV_CASES + 1] = {(char *)python,
                                      (char *)"tests/tools/torchvision_ref.py",
                                      (char *)dir, images};
    for (int i = 0; i < N_TV_CASES; i++) {
        tv_case_arg(&tv_cases[i], args[i], sizeof args[i]);
        argv[4 + i] = args[i];
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execv(python, argv);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            unlink(tu_path(path, sizeof path, "%s/%s", dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

typedef struct tv_result {
    double mean_diff, max_diff; /* in ToTensor units (pixel / 255) */
    double hint_mean_diff;      /* same with the decode hint; -1: no shrink */
    char error[256];            /* empty when compared */
} tv_result_t;

/* Mean and max |ours - reference| in ToTensor units. */
static int tv_diff(const pre_config_t *cfg, const img_rgb_t *img,
                   const npy_array_t *ref, double *mean, double *max,
                   char *err, size_t err_size)
{
    size_t n_px = (size_t)cfg->width * cfg->height, n = ref->count;
    float *out = malloc(n * sizeof *out);
    ck_assert_ptr_nonnull(out);
    int rc = pre_run_isas(cfg, img, out, err, err_size);
    double sum = 0;
    *max = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        double d = fabs((double)out[i] - ref->data[i]) * cfg->std[i / n_px];
        sum += d;
        *max = d > *max ? d : *max;
    }
    *mean = sum / (double)n;
    free(out);
    return rc;
}

/* Our pipeline on one photo against torchvision's tensor: decoded at full
 * size as PIL does, and then as the daemon does, with the shrink hint. */
static void tv_compare(const char *dir, const tv_case_t *c, const char *photo,
                       const char *ext, tv_result_t *r)
{
    pre_config_t cfg;
    tv_config(c, &cfg);
    npy_array_t ref;
    char path[1024];
    tu_path(path, sizeof path, "%s/%s-%s.%s.npy", dir, c->name, photo, ext);
    r->hint_mean_diff = -1;
    if (npy_read(path, &ref, r->error, sizeof r->error))
        return;
    if (ref.rank != 3 || ref.dims[0] != c->channels || ref.dims[1] != c->crop_h ||
        ref.dims[2] != c->crop_w) {
        snprintf(r->error, sizeof r->error, "reference has the wrong shape");
        npy_free(&ref);
        return;
    }
    img_rgb_t full = decode_photo(photo, ext, NULL);
    img_limits_t lim = {1, 0, 0, 0};
    pre_decode_hint(&cfg, &lim);
    img_rgb_t hinted = decode_photo(photo, ext, &lim);
    double max;
    if (tv_diff(&cfg, &full, &ref, &r->mean_diff, &r->max_diff, r->error,
                sizeof r->error) == 0 &&
        hinted.width != full.width)
        tv_diff(&cfg, &hinted, &ref, &r->hint_mean_diff, &max, r->error,
                sizeof r->error);
    img_free(&full);
    img_free(&hinted);
    npy_free(&ref);
}

START_TEST(torchvision_pipelines)
{
    char dir[] = "/tmp/test_image.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int status = run_torchvision_ref(dir);
    tv_result_t results[N_TV_CASES][N_PHOTOS * 2];
    memset(results, 0, sizeof results);
    for (int c = 0; status == 0 && c < N_TV_CASES; c++)
        for (int i = 0; i < N_PHOTOS * 2; i++)
            tv_compare(dir, &tv_cases[c], photos[i / 2], i % 2 ? "jpg" : "png",
                       &results[c][i]);
    remove_dir(dir); /* before any assertion can end the test */
    ck_assert_msg(status == 0, "tests/tools/torchvision_ref.py exited with %d "
                  "(the tests run from the repository root; a Python with "
                  "torchvision is $IMGCLASS_PYTHON or /usr/bin/python3)", status);
    double worst = 0, worst_hint = 0;
    for (int c = 0; c < N_TV_CASES; c++)
        for (int i = 0; i < N_PHOTOS * 2; i++) {
            const tv_result_t *r = &results[c][i];
            const char *ext = i % 2 ? "jpg" : "png";
            ck_assert_msg(!r->error[0], "%s %s.%s: %s", tv_cases[c].name,
                          photos[i / 2], ext, r->error);
            printf("torchvision %-4s %-12s %s: mean |diff| %.3g (%.4f/255), "
                   "max %.4f/255", tv_cases[c].name, photos[i / 2], ext,
                   r->mean_diff, r->mean_diff * 255, r->max_diff * 255);
            if (r->hint_mean_diff >= 0)
                printf("; JPEG decoded smaller by the hint: mean %.4f/255",
                       r->hint_mean_diff * 255);
            printf("\n");
            ck_assert_msg(r->mean_diff <= 1.0 / 255, "%s %s.%s: mean |diff| %g",
                          tv_cases[c].name, photos[i / 2], ext, r->mean_diff);
            worst = r->mean_diff > worst ? r->mean_diff : worst;
            /* The decode hint trades exactness for speed on JPEGs over
             * four times the resize (case "small": parrot.jpg moves by
             * 1.17/255); this bounds the trade and catches a broken scaled
             * decode. Sizes the hint does not shrink stay exact above. */
            ck_assert_msg(r->hint_mean_diff <= 1.5 / 255, "%s %s.%s: with the "
                          "hint mean |diff| %g", tv_cases[c].name,
                          photos[i / 2], ext, r->hint_mean_diff);
            if (r->hint_mean_diff > worst_hint)
                worst_hint = r->hint_mean_diff;
        }
    printf("torchvision: worst mean |diff| %.4f/255 (%.4f/255 with the decode "
           "hint)\n", worst * 255, worst_hint * 255);
}
END_TEST

/* ---- preprocessing against the reference TensorFlow resize ----------------------- */

/* images_224 holds the photos stretched to 224x224 by the reference
 * resize; our stretch pipeline on the PNG must give the same pixels. */
START_TEST(tensorflow_stretch_matches_images_224)
{
    json_t *obj = json_loads("{\"resize\": \"stretch\", \"mean\": 128, \"std\": 128,"
                             " \"scale\": 1, \"antialias\": false}", 0, NULL);
    ck_assert_ptr_nonnull(obj);
    pre_config_t cfg;
    char msg[256];
    ck_assert_msg(pre_config_parse(obj, 224, 224, 3, &cfg, msg, sizeof msg) == 0,
                  "%s", msg);
    json_decref(obj);
    ck_assert(!cfg.center_crop && !cfg.antialias);
    float *out = malloc(3 * 224 * 224 * sizeof *out);
    ck_assert_ptr_nonnull(out);
    int worst = 0;
    for (int i = 0; i < N_PHOTOS; i++) {
        img_rgb_t img = decode_photo(photos[i], "png", NULL);
        char rel[256];
        tu_path(rel, sizeof rel, "images_224/%s.png", photos[i]);
        blob_t b = read_shared(rel);
        img_rgb_t ref = decode_ok(b.data, b.size, NULL, rel);
        free(b.data);
        ck_assert(ref.width == 224 && ref.height == 224);
        ck_assert_msg(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0, "%s", msg);
        int max = 0;
        size_t off = 0;
        for (int c = 0; c < 3; c++)
            for (size_t p = 0; p < 224 * 224; p++, off++) {
                double level = out[off] * 128.0 + 128.0;
                int d = (int)lround(fabs(level - ref.pixels[p * 3 + c]));
                max = d > max ? d : max;
            }
        printf("tensorflow %-12s: max |diff| %d levels\n", photos[i], max);
        ck_assert_msg(max <= 1, "%s: max |diff| %d levels", photos[i], max);
        worst = max > worst ? max : worst;
        img_free(&img);
        img_free(&ref);
    }
    printf("tensorflow: worst max |diff| %d levels\n", worst);
    free(out);
}
END_TEST

/* ---- pre_run on small hand-made images ------------------------------------------- */

/* Raw values out: scale 1, mean 0, std 1. */
static pre_config_t raw_config(pre_resize_t resize, int w, int h, int crop,
                               pre_channels_t ch)
{
    pre_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.width = w;
    cfg.height = h;
    cfg.resize = resize;
    cfg.resize_size = h;
    cfg.center_crop = crop;
    cfg.scale = 1;
    cfg.channels = ch;
    for (int c = 0; c < 3; c++)
        cfg.std[c] = 1;
    return cfg;
}

static img_rgb_t ramp_image(int w, int h)
{
    img_rgb_t img = {w, h, malloc((size_t)w * h * 3)};
    ck_assert_ptr_nonnull(img.pixels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img.pixels[((size_t)y * w + x) * 3 + c] = (uint8_t)(x * 10 + y * 50 + c);
    return img;
}

START_TEST(pre_run_layout_and_channels)
{
    img_rgb_t img = ramp_image(5, 4);
    float out[3 * 5 * 4];
    char msg[256];
    /* resize none, crop 3x2 from 5x4: offsets 1, 1, CHW order. */
    pre_config_t cfg = raw_config(PRE_RESIZE_NONE, 3, 2, 1, PRE_RGB);
    ck_assert_msg(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0, "%s", msg);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
                ck_assert_float_eq(out[(c * 2 + y) * 3 + x],
                                   (x + 1) * 10 + (y + 1) * 50 + c);
    /* BGR: channel 0 is blue. */
    cfg.channels = PRE_BGR;
    ck_assert(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0);
    ck_assert_float_eq(out[0], 10 + 50 + 2);
    ck_assert_float_eq(out[2 * 6], 10 + 50 + 0);
    /* GRAY: PIL's luma, one plane. */
    cfg.channels = PRE_GRAY;
    ck_assert(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0);
    const uint8_t *p = img.pixels + (1 * 5 + 1) * 3;
    int luma = (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16;
    ck_assert_float_eq(out[0], luma);
    /* Normalization: (p * scale - mean) / std per channel. */
    cfg = raw_config(PRE_RESIZE_NONE, 5, 4, 0, PRE_RGB);
    cfg.scale = 0.5f;
    cfg.mean[1] = 3;
    cfg.std[1] = 2;
    ck_assert(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0);
    ck_assert_float_eq_tol(out[20 + 7], ((7 % 5) * 10 + 50 + 1) * 0.5f / 2 - 1.5f, 1e-6);
    /* Stretch then crop: to resize_size high in the model's aspect (6x6),
     * then the centre 4x4, the same as a 6x6 stretch cropped by hand. */
    float full[3 * 6 * 6];
    cfg = raw_config(PRE_RESIZE_STRETCH, 6, 6, 0, PRE_RGB);
    cfg.antialias = 1;
    ck_assert(pre_run_isas(&cfg, &img, full, msg, sizeof msg) == 0);
    cfg = raw_config(PRE_RESIZE_STRETCH, 4, 4, 1, PRE_RGB);
    cfg.resize_size = 6;
    cfg.antialias = 1;
    ck_assert(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                ck_assert_float_eq(out[(c * 4 + y) * 4 + x],
                                   full[(c * 6 + y + 1) * 6 + x + 1]);
    /* Resizing to the same size is exact with both resamplers. */
    for (int aa = 0; aa < 2; aa++) {
        cfg = raw_config(PRE_RESIZE_STRETCH, 5, 4, 0, PRE_RGB);
        cfg.antialias = aa;
        ck_assert(pre_run_isas(&cfg, &img, out, msg, sizeof msg) == 0);
        for (int i = 0; i < 20; i++)
            ck_assert_float_eq(out[20 + i], img.pixels[i * 3 + 1]);
    }
    img_free(&img);
}
END_TEST

START_TEST(pre_run_refuses_what_it_cannot_do)
{
    img_rgb_t img = ramp_image(5, 4);
    float out[3 * 8 * 8];
    char msg[256] = "";
    pre_config_t cfg = raw_config(PRE_RESIZE_NONE, 6, 4, 1, PRE_RGB);
    ck_assert_int_eq(pre_run_isas(&cfg, &img, out, msg, sizeof msg), IC_EPREPROCESS);
    ck_assert_msg(strstr(msg, "smaller"), "message '%s'", msg);
    cfg = raw_config(PRE_RESIZE_NONE, 4, 4, 0, PRE_RGB); /* no crop, 5 != 4 */
    ck_assert_int_eq(pre_run_isas(&cfg, &img, out, msg, sizeof msg), IC_EPREPROCESS);
    cfg = raw_config(PRE_RESIZE_STRETCH, 4, 4, 0, PRE_RGB);
    cfg.std[2] = 0;
    ck_assert_int_eq(pre_run_isas(&cfg, &img, out, msg, sizeof msg), IC_EPREPROCESS);
    img_rgb_t empty = {0, 0, NULL};
    cfg.std[2] = 1;
    ck_assert_int_eq(pre_run_isas(&cfg, &empty, out, msg, sizeof msg), IC_EPREPROCESS);
    img_free(&img);
}
END_TEST

START_TEST(decode_hint)
{
    pre_config_t cfg;
    char msg[256];
    img_limits_t lim = {3, 1000, 0, 0};
    ck_assert(pre_config_parse(NULL, 224, 224, 3, &cfg, msg, sizeof msg) == 0);
    pre_decode_hint(&cfg, &lim);
    ck_assert(lim.want_width == 1024 && lim.want_height == 1024);
    ck_assert(lim.min_side == 3 && lim.max_pixels == 1000); /* untouched */
    cfg.resize = PRE_RESIZE_STRETCH;
    cfg.center_crop = 0;
    cfg.width = 160;
    pre_decode_hint(&cfg, &lim);
    ck_assert(lim.want_width == 640 && lim.want_height == 896);
    cfg.resize = PRE_RESIZE_NONE;
    pre_decode_hint(&cfg, &lim);
    ck_assert(lim.want_width == 0 && lim.want_height == 0);
}
END_TEST

/* ---- configuration --------------------------------------------------------------- */

static int parse_text(const char *text, int w, int h, int ch, pre_config_t *cfg,
                      char *msg, size_t msg_size)
{
    json_error_t jerr;
    json_t *obj = text ? json_loads(text, JSON_DECODE_ANY, &jerr) : NULL;
    ck_assert_msg(!text || obj, "bad test JSON %s: %s", text, jerr.text);
    int rc = pre_config_parse(obj, w, h, ch, cfg, msg, msg_size);
    json_decref(obj);
    return rc;
}

static pre_config_t parse_ok(const char *text, int w, int h, int ch)
{
    pre_config_t cfg;
    char msg[256];
    ck_assert_msg(parse_text(text, w, h, ch, &cfg, msg, sizeof msg) == 0,
                  "%s: %s", text ? text : "NULL", msg);
    return cfg;
}

START_TEST(config_defaults)
{
    const char *const texts[] = {NULL, "{}"};
    for (int i = 0; i < 2; i++) {
        pre_config_t cfg = parse_ok(texts[i], 224, 224, 3);
        ck_assert(cfg.width == 224 && cfg.height == 224);
        ck_assert_int_eq(cfg.resize, PRE_RESIZE_SHORTER);
        ck_assert_int_eq(cfg.resize_size, 256);
        ck_assert(cfg.center_crop && cfg.antialias);
        ck_assert_float_eq_tol(cfg.scale, 1 / 255.0, 1e-9);
        ck_assert_float_eq_tol(cfg.mean[0], 0.485, 1e-7);
        ck_assert_float_eq_tol(cfg.mean[2], 0.406, 1e-7);
        ck_assert_float_eq_tol(cfg.std[1], 0.224, 1e-7);
        ck_assert_int_eq(cfg.channels, PRE_RGB);
    }
    pre_config_t cfg = parse_ok(NULL, 128, 128, 1);
    ck_assert_int_eq(cfg.resize_size, 146); /* 256 / 224 * 128 */
    ck_assert_int_eq(cfg.channels, PRE_GRAY);
    ck_assert_float_eq_tol(cfg.mean[0], 0.449, 1e-7);
    ck_assert_float_eq_tol(cfg.std[0], 0.226, 1e-7);
    cfg = parse_ok("{\"resize\": \"stretch\"}", 224, 224, 3);
    ck_assert(cfg.resize == PRE_RESIZE_STRETCH && !cfg.center_crop && !cfg.antialias);
    cfg = parse_ok("{\"resize\": \"none\"}", 224, 224, 3);
    ck_assert(cfg.resize == PRE_RESIZE_NONE && !cfg.center_crop);
}
END_TEST

START_TEST(config_keys)
{
    pre_config_t cfg = parse_ok("{\"resize_size\": 300}", 224, 224, 3);
    ck_assert_int_eq(cfg.resize_size, 300);
    cfg = parse_ok("{\"crop\": \"center\", \"resize\": \"stretch\"}", 224, 224, 3);
    ck_assert(cfg.center_crop && cfg.resize == PRE_RESIZE_STRETCH);
    cfg = parse_ok("{\"resize\": \"stretch\", \"antialias\": true}", 224, 224, 3);
    ck_assert(cfg.antialias);
    cfg = parse_ok("{\"antialias\": false}", 224, 224, 3);
    ck_assert(!cfg.antialias);
    cfg = parse_ok("{\"scale\": 1}", 224, 224, 3);
    ck_assert_float_eq(cfg.scale, 1);
    cfg = parse_ok("{\"mean\": 128, \"std\": [127.5]}", 224, 224, 3);
    for (int c = 0; c < 3; c++)
        ck_assert(cfg.mean[c] == 128 && cfg.std[c] == 127.5f);
    cfg = parse_ok("{\"mean\": [1, 2.5, 3], \"std\": [4, 5, -6]}", 224, 224, 3);
    ck_assert(cfg.mean[0] == 1 && cfg.mean[1] == 2.5f && cfg.mean[2] == 3);
    ck_assert(cfg.std[0] == 4 && cfg.std[1] == 5 && cfg.std[2] == -6);
    cfg = parse_ok("{\"channel_order\": \"BGR\"}", 224, 224, 3);
    ck_assert_int_eq(cfg.channels, PRE_BGR);
    cfg = parse_ok("{\"channel_order\": \"GRAY\", \"mean\": 0.5}", 28, 28, 1);
    ck_assert(cfg.channels == PRE_GRAY && cfg.mean[0] == 0.5f);
}
END_TEST

START_TEST(config_errors)
{
    static const struct { const char *text; int channels; const char *key; } bad[] = {
        {"{\"resize\": \"fit\"}", 3, "preprocess.resize:"},
        {"{\"resize\": 1}", 3, "preprocess.resize:"},
        {"{\"resize_size\": 0}", 3, "preprocess.resize_size:"},
        {"{\"resize_size\": \"256\"}", 3, "preprocess.resize_size:"},
        {"{\"resize_size\": 256.5}", 3, "preprocess.resize_size:"},
        {"{\"resize_size\": 100000}", 3, "preprocess.resize_size:"},
        {"{\"crop\": \"left\"}", 3, "preprocess.crop:"},
        {"{\"crop\": true}", 3, "preprocess.crop:"},
        {"{\"antialias\": 1}", 3, "preprocess.antialias:"},
        {"{\"scale\": 0}", 3, "preprocess.scale:"},
        {"{\"scale\": \"1\"}", 3, "preprocess.scale:"},
        {"{\"mean\": [1, 2]}", 3, "preprocess.mean:"},
        {"{\"mean\": [1, 2, \"3\"]}", 3, "preprocess.mean:"},
        {"{\"mean\": null}", 3, "preprocess.mean:"},
        {"{\"std\": 0}", 3, "preprocess.std:"},
        {"{\"std\": [1, 0, 1]}", 3, "preprocess.std:"},
        {"{\"channel_order\": \"rgb\"}", 3, "preprocess.channel_order:"},
        {"{\"channel_order\": \"GRAY\"}", 3, "preprocess.channel_order:"},
        {"{\"channel_order\": \"RGB\"}", 1, "preprocess.channel_order:"},
        {"{\"mean\": [0.1, 0.2, 0.3]}", 1, "preprocess.mean:"},
        {"{\"crop\": \"none\"}", 3, "preprocess.crop:"}, /* shorter needs a crop */
        {"{\"colour\": \"RGB\"}", 3, "preprocess.colour:"},
        {"[1, 2]", 3, "preprocess:"},
        {"{}", 4, "preprocess:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pre_config_t cfg;
        char msg[256] = "";
        int rc = parse_text(bad[i].text, 224, 224, bad[i].channels, &cfg, msg,
                            sizeof msg);
        ck_assert_msg(rc == IC_ECONFIG, "%s accepted", bad[i].text);
        ck_assert_msg(strncmp(msg, bad[i].key, strlen(bad[i].key)) == 0,
                      "%s: message '%s' does not start with '%s'", bad[i].text,
                      msg, bad[i].key);
    }
    pre_config_t cfg;
    char msg[256];
    ck_assert_int_eq(pre_config_parse(NULL, 0, 224, 3, &cfg, msg, sizeof msg), IC_ECONFIG);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures survive a failing test */
    Suite *s = suite_create("image");
    TCase *dec = tcase_create("decode");
    tcase_set_timeout(dec, 60);
    tcase_add_test(dec, sniff);
    tu_add_shared_test(dec, photos_png_and_jpeg_agree);
    tu_add_shared_test(dec, truncated_files_are_corrupt);
    tu_add_shared_test(dec, jpeg_extraneous_bytes);
    tu_add_shared_test(dec, png_crc_errors_are_corrupt);
    tcase_add_test(dec, garbage_is_not_an_image);
    tcase_add_test(dec, huge_headers_are_refused_before_allocation);
    tcase_add_test(dec, tiny_images_are_too_small);
    tcase_add_test(dec, png_color_types);
    tcase_add_test(dec, jpeg_grayscale);
    tcase_add_test(dec, jpeg_cmyk);
    tcase_add_test(dec, jpeg_exif_orientation);
    tcase_add_test(dec, jpeg_exif_malformed);
    tu_add_shared_test(dec, jpeg_scaled_decode);
    suite_add_tcase(s, dec);

    TCase *pre = tcase_create("preprocess");
    tcase_set_timeout(pre, 120); /* torchvision's import alone takes seconds */
    tu_add_shared_test(pre, torchvision_pipelines);
    tu_add_shared_test(pre, tensorflow_stretch_matches_images_224);
    tcase_add_test(pre, pre_run_layout_and_channels);
    tcase_add_test(pre, pre_run_refuses_what_it_cannot_do);
    tcase_add_test(pre, decode_hint);
    tcase_add_test(pre, config_defaults);
    tcase_add_test(pre, config_keys);
    tcase_add_test(pre, config_errors);
    suite_add_tcase(s, pre);
    return tu_run_suite(s);
}
