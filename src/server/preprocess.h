/* Preprocessing: 8-bit RGB image -> float32 CHW tensor, exactly as a
 * model's training pipeline did it. Two pipelines cover what users meet:
 *
 *   torchvision: Resize(resize_size) of the shorter side, bilinear with
 *     antialiasing as PIL does it (result rounded to uint8), CenterCrop to
 *     the input size, ToTensor (scale 1/255), Normalize(mean, std);
 *   TensorFlow / Coral: stretch the whole image to the input size, bilinear
 *     with half-pixel centres and no antialiasing, rounded to uint8, then
 *     (p - mean) / std with scale 1 (e.g. mean 128, std 128).
 *
 * In both, value = (pixel * scale - mean[c]) / std[c]. Channel order is
 * RGB, BGR, or GRAY (one channel, ITU-R 601 luma as PIL's convert("L")). */
#ifndef SERVER_PREPROCESS_H
#define SERVER_PREPROCESS_H

#include <jansson.h>

#include "server/image.h"

typedef enum pre_resize {
    PRE_RESIZE_SHORTER, /* shorter side to resize_size, keep aspect */
    PRE_RESIZE_STRETCH, /* whole image to width x height */
    PRE_RESIZE_NONE,    /* image must already be width x height (after crop) */
} pre_resize_t;

typedef enum pre_channels { PRE_RGB, PRE_BGR, PRE_GRAY } pre_channels_t;

typedef struct pre_config {
    int width, height;     /* model input (taken from the model) */
    pre_resize_t resize;
    int resize_size;       /* PRE_RESIZE_SHORTER: target of the shorter side */
    int center_crop;       /* 1: center-crop to width x height after resize */
    int antialias;         /* 1: PIL-style antialiased bilinear */
    float scale;           /* applied to the uint8 value first */
    float mean[3], std[3];
    pre_channels_t channels;
} pre_config_t;

/* Fills cfg from a config.json "preprocess" object (NULL: torchvision
 * ImageNet defaults). width, height and the channel count come from the
 * model and are passed in; a GRAY model has channels == 1. Keys:
 *   "resize": "shorter" | "stretch" | "none"   (default "shorter")
 *   "resize_size": int                          (default 256/224 * height)
 *   "crop": "center" | "none"                   (default "center" for
 *                                                shorter, "none" otherwise)
 *   "antialias": bool      (default true for shorter, false for stretch)
 *   "scale": number        (default 1/255)
 *   "mean": [3 numbers] or one number, "std": likewise
 *                          (defaults ImageNet's mean/std)
 *   "channel_order": "RGB" | "BGR" | "GRAY"   (default RGB, GRAY if 1 ch)
 * Unknown keys and bad values are errors (msg says which key). */
int pre_config_parse(const json_t *obj, int width, int height, int channels,
                     pre_config_t *cfg, char *msg, size_t msg_size);

/* The JPEG shrink hint (image.h) that keeps the resize exact enough: the
 * decoded image keeps at least twice the resize target on each side. */
void pre_decode_hint(const pre_config_t *cfg, img_limits_t *lim);

/* Writes channels * height * width floats to out (CHW). Returns 0, or -1
 * with msg when the image cannot be processed (e.g. smaller than the crop
 * with resize "none"). Allocates only temporary buffers. */
int pre_run(const pre_config_t *cfg, const img_rgb_t *img, float *out,
            char *msg, size_t msg_size);

#endif
