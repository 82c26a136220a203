/* Preprocessing: decoded RGB -> the float tensor a model was trained on.
 *
 * DESIGN: the pipeline is resize -> crop -> normalize, but only the pixels
 * that survive the crop are ever computed: each output pixel of both
 * resamplers depends only on its own row and column coefficients, so
 * restricting the work to the crop window gives the very same values while
 * a 4000-pixel-wide photo costs no more than its 224 kept columns.
 *
 * The antialiased resampler reproduces Pillow's (libImaging/Resample.c,
 * 8 bits per channel): triangle filter widened by the downscale factor,
 * coefficients normalized in double and then rounded to 22-bit fixed
 * point, a horizontal pass rounded to uint8, then a vertical pass rounded
 * to uint8. The same arithmetic gives the same bytes, so torchvision's
 * Resize on a PIL image is matched exactly rather than approximately.
 *
 * The non-antialiased resampler is TensorFlow's bilinear with half-pixel
 * centres (as Coral's reference, see ../shared/imagenet/README.md), in
 * double, rounded half up to uint8: that reproduces images_224 exactly.
 *
 * Normalization goes through a 256-entry table per channel: the input is
 * uint8, so (p * scale - mean) / std has only 256 possible values. */
#include "classify/preprocess.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on model sides and resize_size: keeps every product in int range. */
#define PRE_MAX_SIDE 16384

static int fail(char *msg, size_t msg_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t msg_size, const char *fmt, ...)
{
    if (msg && msg_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- configuration --------------------------------------------------------------- */

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
/* One-channel models: the averages of ImageNet's RGB statistics, the
 * usual choice for grayscale ImageNet training. */
static const float imagenet_gray_mean = 0.449f;
static const float imagenet_gray_std = 0.226f;

/* What the parser saw besides cfg itself, for the cross-key checks. */
typedef struct parse_state {
    pre_config_t *cfg;
    int n_mean, n_std; /* values given (0: default) */
    int crop_given;
} parse_state_t;

typedef int (*key_parser_t)(const json_t *v, parse_state_t *ps, char *msg,
                            size_t msg_size);

/* Index of s in names (NULL-terminated), or -1. */
static int string_choice(const json_t *v, const char *const *names)
{
    if (!json_is_string(v))
        return -1;
    for (int i = 0; names[i]; i++)
        if (strcmp(json_string_value(v), names[i]) == 0)
            return i;
    return -1;
}

static int parse_resize(const json_t *v, parse_state_t *ps, char *msg,
                        size_t msg_size)
{
    static const char *const names[] = {"shorter", "stretch", "none", NULL};
    static const pre_resize_t modes[] = {PRE_RESIZE_SHORTER, PRE_RESIZE_STRETCH,
                                         PRE_RESIZE_NONE};
    int i = string_choice(v, names);
    if (i < 0)
        return fail(msg, msg_size, "preprocess.resize: expected \"shorter\", "
                                   "\"stretch\" or \"none\"");
    ps->cfg->resize = modes[i];
    return 0;
}

static int parse_resize_size(const json_t *v, parse_state_t *ps, char *msg,
                             size_t msg_size)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > PRE_MAX_SIDE)
        return fail(msg, msg_size,
                    "preprocess.resize_size: expected an integer from 1 to %d",
                    PRE_MAX_SIDE);
    ps->cfg->resize_size = (int)json_integer_value(v);
    return 0;
}

static int parse_crop(const json_t *v, parse_state_t *ps, char *msg,
                      size_t msg_size)
{
    static const char *const names[] = {"none", "center", NULL};
    int i = string_choice(v, names);
    if (i < 0)
        return fail(msg, msg_size,
                    "preprocess.crop: expected \"center\" or \"none\"");
    ps->cfg->center_crop = i;
    ps->crop_given = 1;
    return 0;
}

static int parse_antialias(const json_t *v, parse_state_t *ps, char *msg,
                           size_t msg_size)
{
    if (!json_is_boolean(v))
        return fail(msg, msg_size, "preprocess.antialias: expected true or false");
    ps->cfg->antialias = json_is_true(v);
    return 0;
}

static int parse_scale(const json_t *v, parse_state_t *ps, char *msg,
                       size_t msg_size)
{
    double s = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(s > 0) || !isfinite(s))
        return fail(msg, msg_size, "preprocess.scale: expected a positive number");
    ps->cfg->scale = (float)s;
    return 0;
}

/* A number, or an array of 1 or 3 numbers; returns how many were given. */
static int parse_triple(const json_t *v, const char *key, int nonzero,
                        float out[3], char *msg, size_t msg_size)
{
    const json_t *item[3] = {v, v, v};
    int n = 1;
    if (json_is_array(v)) {
        n = (int)json_array_size(v);
        if (n != 1 && n != 3)
            n = 0;
        for (int c = 0; n && c < 3; c++)
            item[c] = json_array_get(v, n == 3 ? (size_t)c : 0);
    }
    for (int c = 0; n && c < 3; c++) {
        double x = json_is_number(item[c]) ? json_number_value(item[c]) : NAN;
        if (!isfinite(x) || (nonzero && x == 0))
            n = 0;
        else
            out[c] = (float)x;
    }
    if (!n)
        return fail(msg, msg_size,
                    "preprocess.%s: expected a %snumber or an array of 3", key,
                    nonzero ? "nonzero " : "");
    return n;
}

static int parse_mean(const json_t *v, parse_state_t *ps, char *msg,
                      size_t msg_size)
{
    ps->n_mean = parse_triple(v, "mean", 0, ps->cfg->mean, msg, msg_size);
    return ps->n_mean < 0 ? -1 : 0;
}

static int parse_std(const json_t *v, parse_state_t *ps, char *msg,
                     size_t msg_size)
{
    ps->n_std = parse_triple(v, "std", 1, ps->cfg->std, msg, msg_size);
    return ps->n_std < 0 ? -1 : 0;
}

static int parse_channel_order(const json_t *v, parse_state_t *ps, char *msg,
                               size_t msg_size)
{
    static const char *const names[] = {"RGB", "BGR", "GRAY", NULL};
    static const pre_channels_t orders[] = {PRE_RGB, PRE_BGR, PRE_GRAY};
    int i = string_choice(v, names);
    if (i < 0)
        return fail(msg, msg_size, "preprocess.channel_order: expected "
                                   "\"RGB\", \"BGR\" or \"GRAY\"");
    ps->cfg->channels = orders[i];
    return 0;
}

static const struct {
    const char *key;
    key_parser_t parse;
} pre_keys[] = {
    {"resize", parse_resize},
    {"resize_size", parse_resize_size},
    {"crop", parse_crop},
    {"antialias", parse_antialias},
    {"scale", parse_scale},
    {"mean", parse_mean},
    {"std", parse_std},
    {"channel_order", parse_channel_order},
};

/* Defaults that do not depend on the "resize" key. */
static void set_defaults(pre_config_t *cfg, int width, int height, int channels)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->isa = NN_ISA_GENERIC; /* a classifier sets its model's */
    cfg->width = width;
    cfg->height = height;
    cfg->resize = PRE_RESIZE_SHORTER;
    cfg->resize_size = (256 * height + 112) / 224; /* 224 -> 256, rounded */
    cfg->scale = 1.0f / 255.0f;
    cfg->channels = channels == 1 ? PRE_GRAY : PRE_RGB;
    for (int c = 0; c < 3; c++) {
        cfg->mean[c] = channels == 1 ? imagenet_gray_mean : imagenet_mean[c];
        cfg->std[c] = channels == 1 ? imagenet_gray_std : imagenet_std[c];
    }
}

/* Combinations that each key alone cannot judge. */
static int check_combination(const parse_state_t *ps, int channels, char *msg,
                             size_t msg_size)
{
    const pre_config_t *cfg = ps->cfg;
    if ((cfg->channels == PRE_GRAY) != (channels == 1))
        return fail(msg, msg_size,
                    "preprocess.channel_order: the model takes %d channel%s",
                    channels, channels == 1 ? " (use \"GRAY\")" : "s");
    if (cfg->channels == PRE_GRAY && (ps->n_mean == 3 || ps->n_std == 3))
        return fail(msg, msg_size, "preprocess.%s: a GRAY model takes one number",
                    ps->n_mean == 3 ? "mean" : "std");
    if (cfg->resize == PRE_RESIZE_SHORTER && !cfg->center_crop)
        return fail(msg, msg_size, "preprocess.crop: resize \"shorter\" keeps "
                                   "the aspect ratio, so it needs \"center\"");
    return 0;
}

static int parse_config(const json_t *obj, int width, int height, int channels,
                        pre_config_t *cfg, char *msg, size_t msg_size)
{
    if (width < 1 || height < 1 || width > PRE_MAX_SIDE || height > PRE_MAX_SIDE)
        return fail(msg, msg_size, "preprocess: model input %dx%d is not supported",
                    width, height);
    if (channels != 1 && channels != 3)
        return fail(msg, msg_size,
                    "preprocess: model takes %d channels (1 or 3 supported)",
                    channels);
    if (obj && !json_is_object(obj))
        return fail(msg, msg_size, "preprocess: expected an object");
    set_defaults(cfg, width, height, channels);
    parse_state_t ps = {cfg, 0, 0, 0};
    /* "resize" first: the crop and antialias defaults follow from it. */
    const json_t *resize = obj ? json_object_get(obj, "resize") : NULL;
    if (resize && parse_resize(resize, &ps, msg, msg_size))
        return -1;
    cfg->center_crop = cfg->resize == PRE_RESIZE_SHORTER;
    cfg->antialias = cfg->resize == PRE_RESIZE_SHORTER;

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        size_t i = 0, n = sizeof pre_keys / sizeof pre_keys[0];
        while (i < n && strcmp(pre_keys[i].key, key) != 0)
            i++;
        if (i == n)
            return fail(msg, msg_size, "preprocess.%s: unknown key", key);
        if (pre_keys[i].parse(v, &ps, msg, msg_size))
            return -1;
    }
    return check_combination(&ps, channels, msg, msg_size);
}

ic_err_t pre_config_parse(const json_t *obj, int width, int height, int channels,
                          pre_config_t *cfg, char *msg, size_t msg_size)
{
    return parse_config(obj, width, height, channels, cfg, msg, msg_size) ? IC_ECONFIG
                                                                          : IC_OK;
}

/* ---- geometry -------------------------------------------------------------------- */

/* Where the output window lies in the resized image. */
typedef struct pre_plan {
    int resized_w, resized_h; /* image size after the resize */
    int x0, y0;               /* crop origin in it (negative: padding) */
    int out_w, out_h;         /* the model input */
} pre_plan_t;

/* torchvision's _compute_resized_output_size: shorter side to size, the
 * longer int(size * long / short), computed in double as Python does. */
static void shorter_side_size(int w, int h, int size, int *rw, int *rh)
{
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int scaled = (int)((double)((long long)size * longer) / shorter);
    *rw = w <= h ? size : scaled;
    *rh = w <= h ? scaled : size;
}

/* Target of a stretch: the model size, or before a center crop the
 * resize_size-high box of the model's aspect ratio. */
static void stretch_size(const pre_config_t *cfg, int *rw, int *rh)
{
    if (!cfg->center_crop) {
        *rw = cfg->width;
        *rh = cfg->height;
        return;
    }
    *rh = cfg->resize_size;
    *rw = (int)lround((double)cfg->resize_size * cfg->width / cfg->height);
}

/* torchvision's CenterCrop offset: int(round((size - crop) / 2.0)) with
 * Python's round-half-to-even, or, when the crop is larger, minus the
 * left/top zero padding (crop - size) // 2. */
static int center_offset(int size, int crop)
{
    if (crop > size)
        return -((crop - size) / 2);
    int d = size - crop, half = d / 2;
    return half + ((d & 1) && (half & 1));
}

static int make_plan(const pre_config_t *cfg, const img_rgb_t *img,
                     pre_plan_t *plan, char *msg, size_t msg_size)
{
    plan->out_w = cfg->width;
    plan->out_h = cfg->height;
    if (cfg->resize == PRE_RESIZE_SHORTER)
        shorter_side_size(img->width, img->height, cfg->resize_size,
                          &plan->resized_w, &plan->resized_h);
    else if (cfg->resize == PRE_RESIZE_STRETCH)
        stretch_size(cfg, &plan->resized_w, &plan->resized_h);
    else {
        plan->resized_w = img->width;
        plan->resized_h = img->height;
        if (img->width < cfg->width || img->height < cfg->height)
            return fail(msg, msg_size,
                        "preprocess: %dx%d image is smaller than the %dx%d "
                        "input and resize is \"none\"", img->width,
                        img->height, cfg->width, cfg->height);
    }
    if (plan->resized_w < 1 || plan->resized_h < 1)
        return fail(msg, msg_size, "preprocess: resize to %dx%d is empty",
                    plan->resized_w, plan->resized_h);
    if (!cfg->center_crop && (plan->resized_w != cfg->width ||
                              plan->resized_h != cfg->height))
        return fail(msg, msg_size,
                    "preprocess: image is %dx%d after the resize, the model "
                    "takes %dx%d and there is no crop", plan->resized_w,
                    plan->resized_h, cfg->width, cfg->height);
    plan->x0 = center_offset(plan->resized_w, cfg->width);
    plan->y0 = center_offset(plan->resized_h, cfg->height);
    return 0;
}

/* Output pixels [first, first + count) of a side of the window that lie in
 * the resized image (the rest is padding). */
typedef struct pre_span {
    int first, count; /* in resized-image coordinates */
    int out_offset;   /* where first lands in the window */
} pre_span_t;

static pre_span_t window_span(int origin, int window, int resized)
{
    int lo = origin < 0 ? 0 : origin;
    int hi = origin + window < resized ? origin + window : resized;
    pre_span_t s = {lo, hi > lo ? hi - lo : 0, lo - origin};
    return s;
}

/* A packed 8-bit image with 1 or 3 channels. */
typedef struct pre_plane {
    int width, height, nch;
    const uint8_t *px;
} pre_plane_t;

/* ---- Pillow's antialiased bilinear ----------------------------------------------- */

#define PIL_PRECISION_BITS (32 - 8 - 2)

/* Fixed-point coefficients of one pass, for the outputs of one span. */
typedef struct pil_coeffs {
    int ksize;
    int *bounds; /* per output: first input, number of taps */
    int32_t *k;  /* per output: ksize coefficients */
} pil_coeffs_t;

static void pil_coeffs_free(pil_coeffs_t *c)
{
    free(c->bounds);
    free(c->k);
}

static double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for outputs
 * [first, first + count) of in_size -> out_size, the same operations in
 * the same order so that the doubles, and thus the rounding, agree. */
static int pil_coeffs_make(int in_size, int out_size, int first, int count,
                           pil_coeffs_t *c)
{
    double scale = (double)(float)in_size / out_size; /* Pillow's box is float */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* triangle support is 1 */
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)(count ? count : 1));
    c->k = malloc(sizeof(int32_t) * (size_t)c->ksize * (size_t)(count ? count : 1));
    double *w = malloc(sizeof(double) * (size_t)c->ksize);
    if (!c->bounds || !c->k || !w) {
        free(w);
        pil_coeffs_free(c);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)i * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax && ww != 0.0 ? w[x] / ww : 0.0;
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PIL_PRECISION_BITS)
                                   : 0.5 + v * (1 << PIL_PRECISION_BITS));
        }
        c->bounds[2 * i] = xmin;
        c->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return 0;
}

static uint8_t pil_clip8(int v)
{
    if (v >= (1 << PIL_PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PIL_PRECISION_BITS);
}

/* One output pixel of the horizontal pass: n taps of nch-byte pixels from
 * p, each channel summed from Pillow's rounding offset and clipped. */
static void pil_h_pixel(const uint8_t *p, int nch, const int32_t *k, int n,
                        uint8_t *out)
{
    int ss0 = 1 << (PIL_PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
    if (nch == 1) {
        for (int j = 0; j < n; j++)
            ss0 += p[j] * k[j];
        out[0] = pil_clip8(ss0);
        return;
    }
    for (int j = 0; j < n; j++, p += 3) {
        ss0 += p[0] * k[j];
        ss1 += p[1] * k[j];
        ss2 += p[2] * k[j];
    }
    out[0] = pil_clip8(ss0);
    out[1] = pil_clip8(ss1);
    out[2] = pil_clip8(ss2);
}

/* One output row of the vertical pass: n taps of rows (stride apart)
 * from col, for bytes [i, len). */
static void pil_v_bytes(const uint8_t *col, size_t stride, size_t i, size_t len,
                        const int32_t *k, int n, uint8_t *out)
{
    for (; i < len; i++) {
        int acc = 1 << (PIL_PRECISION_BITS - 1);
        for (int j = 0; j < n; j++)
            acc += col[(size_t)j * stride + i] * k[j];
        out[i] = pil_clip8(acc);
    }
}

/* AVX2 versions of both passes, taken from NN_ISA_AVX2 up (cfg->isa). The
 * integer sums are exact (the taps are non-negative and sum to one), so
 * adding in another order gives Pillow's very bytes. */
#if defined(__x86_64__)
#include <immintrin.h>

/* pil_clip8 on every lane. */
__attribute__((target("avx2"))) static __m256i pil_clip8_avx2(__m256i v)
{
    v = _mm256_srai_epi32(v, PIL_PRECISION_BITS);
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_setzero_si256()),
                            _mm256_set1_epi32(255));
}

/* RGB rows only: each tap loads 4 bytes, one past its pixel, so the
 * caller keeps the image's final row (where that byte may lie past the
 * end) on the scalar path. Two output pixels per step, one per lane. */
__attribute__((target("avx2"))) static void
pil_h_row_avx2(const uint8_t *in, const pil_coeffs_t *c, int count, uint8_t *t)
{
    const __m256i half = _mm256_set1_epi32(1 << (PIL_PRECISION_BITS - 1));
    int x = 0;
    for (; x + 2 <= count; x += 2, t += 6) {
        const uint8_t *p0 = in + (size_t)c->bounds[2 * x] * 3;
        const uint8_t *p1 = in + (size_t)c->bounds[2 * x + 2] * 3;
        const int32_t *k0 = c->k + (size_t)x * c->ksize, *k1 = k0 + c->ksize;
        int n0 = c->bounds[2 * x + 1], n1 = c->bounds[2 * x + 3];
        /* Both pixels run max(n0, n1) taps: the coefficients past a
         * pixel's own are 0, and its window plus them stays inside the row
         * (plus the one byte), since windows only move right. */
        int n = n0 > n1 ? n0 : n1;
        __m256i acc = half;
        for (int j = 0; j < n; j++, p0 += 3, p1 += 3) {
            int32_t b0, b1;
            memcpy(&b0, p0, 4);
            memcpy(&b1, p1, 4);
            __m256i px = _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, b1, b0));
            /* px holds b0's 4 bytes in lanes 0-3 and b1's in lanes 4-7. */
            /* lane 3 of each half sums a byte of the next pixel: unused */
            __m256i kk = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(k0[j])),
                                                 _mm_set1_epi32(k1[j]), 1);
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, kk));
        }
        int32_t o[8];
        _mm256_storeu_si256((__m256i *)o, pil_clip8_avx2(acc));
        t[0] = (uint8_t)o[0], t[1] = (uint8_t)o[1], t[2] = (uint8_t)o[2];
        t[3] = (uint8_t)o[4], t[4] = (uint8_t)o[5], t[5] = (uint8_t)o[6];
    }
    for (; x < count; x++, t += 3)
        pil_h_pixel(in + (size_t)c->bounds[2 * x] * 3, 3, c->k + (size_t)x * c->ksize,
                    c->bounds[2 * x + 1], t);
}

__attribute__((target("avx2"))) static void
pil_v_row_avx2(const uint8_t *col, size_t stride, size_t len, const int32_t *k, int n,
               uint8_t *out)
{
    const __m256i half = _mm256_set1_epi32(1 << (PIL_PRECISION_BITS - 1));
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256i acc = half;
        const uint8_t *c = col + i;
        for (int j = 0; j < n; j++, c += stride) {
            __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, _mm256_set1_epi32(k[j])));
        }
        __m256i v = pil_clip8_avx2(acc);
        /* 8 x int32 in [0, 255] -> 8 bytes */
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(out + i), _mm_packus_epi16(w, w));
    }
    pil_v_bytes(col, stride, i, len, k, n, out);
}
#endif

/* A row of the horizontal pass. */
static void pil_h_row(nn_isa_t isa, const uint8_t *in, int nch, const pil_coeffs_t *c,
                      int count, int tail_row, uint8_t *t)
{
#if defined(__x86_64__)
    if (nch == 3 && !tail_row && isa >= NN_ISA_AVX2) {
        pil_h_row_avx2(in, c, count, t);
        return;
    }
#else
    (void)isa, (void)tail_row;
#endif
    for (int x = 0; x < count; x++, t += nch)
        pil_h_pixel(in + (size_t)c->bounds[2 * x] * nch, nch, c->k + (size_t)x * c->ksize,
                    c->bounds[2 * x + 1], t);
}

/* One output row of the vertical pass. */
static void pil_v_row(nn_isa_t isa, const uint8_t *col, size_t stride, size_t len,
                      const int32_t *k, int n, uint8_t *out)
{
#if defined(__x86_64__)
    if (isa >= NN_ISA_AVX2) {
        pil_v_row_avx2(col, stride, len, k, n, out);
        return;
    }
#else
    (void)isa;
#endif
    pil_v_bytes(col, stride, 0, len, k, n, out);
}

/* Resizes src to rw x rh (Pillow's two passes) and writes the pixels of
 * spans xs, ys into the window win (win_w wide, zeroed beforehand), with
 * isa's kernels. */
static int pil_resize_window(nn_isa_t isa, const pre_plane_t *src, int rw, int rh,
                             pre_span_t xs, pre_span_t ys, uint8_t *win,
                             int win_w)
{
    const int nch = src->nch;
    pil_coeffs_t cx, cy;
    if (pil_coeffs_make(src->width, rw, xs.first, xs.count, &cx))
        return -1;
    if (pil_coeffs_make(src->height, rh, ys.first, ys.count, &cy)) {
        pil_coeffs_free(&cx);
        return -1;
    }
    /* Horizontal pass on the source rows the kept output rows read. */
    int row0 = cy.bounds[0];
    int rows = cy.bounds[2 * (ys.count - 1)] + cy.bounds[2 * (ys.count - 1) + 1] - row0;
    size_t tmp_stride = (size_t)xs.count * nch;
    uint8_t *tmp = malloc(tmp_stride * (size_t)rows);
    if (!tmp) {
        pil_coeffs_free(&cx);
        pil_coeffs_free(&cy);
        return -1;
    }
    for (int y = 0; y < rows; y++)
        pil_h_row(isa, src->px + (size_t)(row0 + y) * src->width * nch, nch, &cx, xs.count,
                  row0 + y == src->height - 1, tmp + (size_t)y * tmp_stride);
    /* Vertical pass into the window. */
    for (int y = 0; y < ys.count; y++) {
        const uint8_t *col = tmp + (size_t)(cy.bounds[2 * y] - row0) * tmp_stride;
        uint8_t *out = win + ((size_t)(ys.out_offset + y) * win_w + xs.out_offset) * nch;
        pil_v_row(isa, col, tmp_stride, tmp_stride, cy.k + (size_t)y * cy.ksize,
                  cy.bounds[2 * y + 1], out);
    }
    free(tmp);
    pil_coeffs_free(&cx);
    pil_coeffs_free(&cy);
    return 0;
}

/* ---- TensorFlow's bilinear with half-pixel centres ------------------------------- */

/* Source neighbours and weight of one output coordinate, as TFLite's
 * ComputeInterpolationValues. In double: the reference that made
 * images_224 did so, and float32 misses it by a level on ~0.5% of pixels. */
typedef struct tf_tap {
    int lo, hi;
    double frac;
} tf_tap_t;

static tf_tap_t *tf_taps(int in_size, int out_size, pre_span_t s)
{
    tf_tap_t *taps = malloc(sizeof *taps * (size_t)(s.count ? s.count : 1));
    if (!taps)
        return NULL;
    double scale = (double)in_size / out_size;
    for (int i = 0; i < s.count; i++) {
        double src = (s.first + i + 0.5) * scale - 0.5;
        int lo = (int)floor(src), hi = (int)ceil(src);
        taps[i].lo = lo < 0 ? 0 : lo;
        taps[i].hi = hi > in_size - 1 ? in_size - 1 : hi;
        taps[i].frac = src - taps[i].lo;
    }
    return taps;
}

/* Resizes src to rw x rh and writes spans xs, ys into win. The body is
 * compiled twice (below): for AVX2, which rounds with one instruction
 * instead of calling floor(), and for the x86-64 baseline. AVX2 without
 * FMA: no compiler may fuse the sums' products, so both round alike and
 * give the same bytes. */
static inline __attribute__((always_inline)) int
tf_resize_window_body(const pre_plane_t *src, int rw, int rh, pre_span_t xs, pre_span_t ys,
                      uint8_t *win, int win_w)
{
    const int nch = src->nch;
    tf_tap_t *tx = tf_taps(src->width, rw, xs), *ty = tf_taps(src->height, rh, ys);
    if (!tx || !ty) {
        free(tx);
        free(ty);
        return -1;
    }
    size_t stride = (size_t)src->width * nch;
    for (int y = 0; y < ys.count; y++) {
        const uint8_t *r0 = src->px + ty[y].lo * stride;
        const uint8_t *r1 = src->px + ty[y].hi * stride;
        double dy = ty[y].frac;
        uint8_t *out = win + ((size_t)(ys.out_offset + y) * win_w + xs.out_offset) * nch;
        for (int x = 0; x < xs.count; x++) {
            size_t a = (size_t)tx[x].lo * nch, b = (size_t)tx[x].hi * nch;
            double dx = tx[x].frac;
            for (int c = 0; c < nch; c++) {
                double v = r0[a + c] * (1 - dy) * (1 - dx) + r1[a + c] * dy * (1 - dx) +
                           r0[b + c] * (1 - dy) * dx + r1[b + c] * dy * dx;
                v = floor(v + 0.5); /* half up */
                *out++ = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    free(tx);
    free(ty);
    return 0;
}

#if defined(__x86_64__)
__attribute__((target("avx2"), noinline)) static int
tf_resize_window_avx2(const pre_plane_t *src, int rw, int rh, pre_span_t xs, pre_span_t ys,
                      uint8_t *win, int win_w)
{
    return tf_resize_window_body(src, rw, rh, xs, ys, win, win_w);
}
#endif

__attribute__((noinline)) static int
tf_resize_window_generic(const pre_plane_t *src, int rw, int rh, pre_span_t xs,
                         pre_span_t ys, uint8_t *win, int win_w)
{
    return tf_resize_window_body(src, rw, rh, xs, ys, win, win_w);
}

/* The copy isa chooses: AVX2 from NN_ISA_AVX2 up. */
static int tf_resize_window(nn_isa_t isa, const pre_plane_t *src, int rw, int rh,
                            pre_span_t xs, pre_span_t ys, uint8_t *win, int win_w)
{
#if defined(__x86_64__)
    if (isa >= NN_ISA_AVX2)
        return tf_resize_window_avx2(src, rw, rh, xs, ys, win, win_w);
#else
    (void)isa;
#endif
    return tf_resize_window_generic(src, rw, rh, xs, ys, win, win_w);
}

/* ---- the pipeline ---------------------------------------------------------------- */

/* PIL's convert("L"): ITU-R 601 luma in 16-bit fixed point. */
static uint8_t *to_gray(const img_rgb_t *img)
{
    size_t n = (size_t)img->width * img->height;
    uint8_t *g = malloc(n ? n : 1);
    if (!g)
        return NULL;
    const uint8_t *p = img->pixels;
    for (size_t i = 0; i < n; i++, p += 3)
        g[i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    return g;
}

/* The crop window of the resized image, padding zero (as torchvision's
 * pad(fill=0) before a crop larger than the image). */
static int fill_window(const pre_config_t *cfg, const pre_plan_t *plan,
                       const pre_plane_t *src, uint8_t *win)
{
    pre_span_t xs = window_span(plan->x0, plan->out_w, plan->resized_w);
    pre_span_t ys = window_span(plan->y0, plan->out_h, plan->resized_h);
    if (!xs.count || !ys.count)
        return 0; /* all padding */
    if (cfg->resize == PRE_RESIZE_NONE) { /* the window lies in the image */
        size_t row_bytes = (size_t)plan->out_w * src->nch;
        const uint8_t *in = src->px + ((size_t)ys.first * src->width + xs.first) * src->nch;
        for (int y = 0; y < ys.count; y++)
            memcpy(win + y * row_bytes, in + (size_t)y * src->width * src->nch,
                   row_bytes);
        return 0;
    }
    if (cfg->antialias)
        return pil_resize_window(cfg->isa, src, plan->resized_w, plan->resized_h, xs, ys,
                                 win, plan->out_w);
    return tf_resize_window(cfg->isa, src, plan->resized_w, plan->resized_h, xs, ys, win,
                            plan->out_w);
}

/* The window (HWC uint8) -> CHW floats through per-channel tables. */
static void normalize(const pre_config_t *cfg, const uint8_t *win, int nch,
                      size_t n_px, float *out)
{
    int out_ch = cfg->channels == PRE_GRAY ? 1 : 3;
    for (int c = 0; c < out_ch; c++) {
        int src_c = cfg->channels == PRE_BGR ? 2 - c : c;
        float table[256];
        for (int p = 0; p < 256; p++)
            table[p] = ((float)p * cfg->scale - cfg->mean[c]) / cfg->std[c];
        float *o = out + (size_t)c * n_px;
        for (size_t i = 0; i < n_px; i++)
            o[i] = table[win[i * nch + src_c]];
    }
}

static int check_config(const pre_config_t *cfg, const img_rgb_t *img,
                        char *msg, size_t msg_size)
{
    if (!img || !img->pixels || img->width < 1 || img->height < 1)
        return fail(msg, msg_size, "preprocess: empty image");
    if (cfg->width < 1 || cfg->height < 1 || cfg->width > PRE_MAX_SIDE ||
        cfg->height > PRE_MAX_SIDE || cfg->resize_size < 1 ||
        cfg->resize_size > PRE_MAX_SIDE)
        return fail(msg, msg_size, "preprocess: bad sizes in the configuration");
    int n = cfg->channels == PRE_GRAY ? 1 : 3;
    for (int c = 0; c < n; c++)
        if (!(cfg->std[c] != 0) || !isfinite(cfg->std[c]))
            return fail(msg, msg_size, "preprocess: std must be nonzero");
    return 0;
}

ic_err_t pre_run(const pre_config_t *cfg, const img_rgb_t *img, float *out,
                 char *msg, size_t msg_size)
{
    pre_plan_t plan = {0};
    if (check_config(cfg, img, msg, msg_size) ||
        make_plan(cfg, img, &plan, msg, msg_size))
        return IC_EPREPROCESS;
    /* Gray first, as Image.convert("L") before the transforms: one
     * channel to resize instead of three. */
    uint8_t *gray = NULL;
    if (cfg->channels == PRE_GRAY && !(gray = to_gray(img))) {
        fail(msg, msg_size, "preprocess: out of memory");
        return IC_ENOMEM;
    }
    pre_plane_t src = {img->width, img->height, gray ? 1 : 3,
                       gray ? gray : img->pixels};
    size_t n_px = (size_t)plan.out_w * plan.out_h;
    uint8_t *win = calloc(n_px, (size_t)src.nch);
    int rc = win ? fill_window(cfg, &plan, &src, win) : -1;
    if (rc == 0)
        normalize(cfg, win, src.nch, n_px, out);
    free(win);
    free(gray);
    if (rc) {
        fail(msg, msg_size, "preprocess: out of memory");
        return IC_ENOMEM;
    }
    return IC_OK;
}

void pre_decode_hint(const pre_config_t *cfg, img_limits_t *lim)
{
    int w = 0, h = 0;
    if (cfg->resize == PRE_RESIZE_SHORTER)
        w = h = cfg->resize_size;
    else if (cfg->resize == PRE_RESIZE_STRETCH)
        stretch_size(cfg, &w, &h);
    /* resize "none" crops the image as decoded: no shrinking. */
    /* Four times the target: the bound preprocess.h promises. */
    lim->want_width = 4 * w;
    lim->want_height = 4 * h;
}
