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
 * In both, value = (pixel * scale - mean[c]) / std[c], c counting output
 * channels (for BGR, mean[0] is blue's). Channel order is RGB, BGR, or
 * GRAY (one channel, ITU-R 601 luma as PIL's convert("L"), taken before
 * the resize as Image.open(f).convert("L") would; mean[0] and std[0]).
 *
 * The torchvision pipeline reproduces Pillow's resize arithmetic, so on
 * the same decoded pixels the tensor equals torchvision's to float
 * rounding; the TensorFlow one reproduces images_224 of
 * ../shared/imagenet exactly. */
#ifndef CLASSIFY_PREPROCESS_H
#define CLASSIFY_PREPROCESS_H

#include <jansson.h>

#include "classify/error.h"
#include "classify/image.h"
#include "imgclass/nn.h"

typedef enum pre_resize {
    PRE_RESIZE_SHORTER, /* shorter side to resize_size, keep aspect */
    PRE_RESIZE_STRETCH, /* whole image to width x height */
    PRE_RESIZE_NONE,    /* image must already be width x height (after crop) */
} pre_resize_t;

typedef enum pre_channels { PRE_RGB, PRE_BGR, PRE_GRAY } pre_channels_t;

typedef struct pre_config {
    int width, height;     /* model input (taken from the model) */
    pre_resize_t resize;
    int resize_size;       /* PRE_RESIZE_SHORTER: target of the shorter side;
                            * PRE_RESIZE_STRETCH with center_crop: height
                            * stretched to, width in the model's aspect */
    int center_crop;       /* 1: center-crop to width x height after resize
                            * (torchvision's CenterCrop: offsets rounded half
                            * to even, zero padding where the crop is larger;
                            * with PRE_RESIZE_NONE the image must cover it) */
    int antialias;         /* 1: PIL-style antialiased bilinear */
    float scale;           /* applied to the uint8 value first */
    float mean[3], std[3];
    pre_channels_t channels;
    nn_isa_t isa;          /* the resizers' kernels: AVX2 ones from
                            * NN_ISA_AVX2 up. pre_config_parse sets
                            * NN_ISA_GENERIC; a classifier sets its model's
                            * (so IMGCLASS_ISA chooses for both). Every
                            * instruction set gives the same bytes. */
} pre_config_t;

/* Fills cfg from a config.json "preprocess" object (NULL: torchvision
 * ImageNet defaults). width, height and the channel count come from the
 * model and are passed in; a GRAY model has channels == 1. Keys:
 *   "resize": "shorter" | "stretch" | "none"   (default "shorter")
 *   "resize_size": int                          (default 256/224 * height)
 *   "crop": "center" | "none"                   (default "center" for
 *                                                shorter, "none" otherwise)
 *   "antialias": bool      (default true for shorter, false for stretch)
 *   "scale": number > 0    (default 1/255)
 *   "mean": [3 numbers] or one number, "std": likewise, nonzero
 *                          (defaults ImageNet's mean/std; for 1 channel
 *                          their averages 0.449 / 0.226, and a GRAY
 *                          model takes one number)
 *   "channel_order": "RGB" | "BGR" | "GRAY"   (default RGB, GRAY if 1 ch;
 *                          GRAY if and only if the model has 1 channel)
 * "shorter" with "crop": "none" is refused (no fixed output size).
 * Unknown keys and bad values are IC_ECONFIG; msg starts "preprocess.KEY: "
 * (or "preprocess: " for the model's sizes). */
ic_err_t pre_config_parse(const json_t *obj, int width, int height, int channels,
                     pre_config_t *cfg, char *msg, size_t msg_size);

/* The JPEG shrink hint (image.h): the decoded image keeps at least four
 * times the resize target on each side ("none": no shrinking). Sets only
 * want_width and want_height. An image the hint shrinks stays within
 * 1.2/255 (mean) of torchvision's tensor; one it does not shrink matches
 * it exactly (tests/classify/test_image.c holds both). */
void pre_decode_hint(const pre_config_t *cfg, img_limits_t *lim);

/* Writes channels * height * width floats to out (CHW). Returns IC_OK,
 * IC_EPREPROCESS with msg when the image cannot be processed (e.g. smaller
 * than the crop with resize "none"), or IC_ENOMEM. Allocates only
 * temporary buffers. */
ic_err_t pre_run(const pre_config_t *cfg, const img_rgb_t *img, float *out,
                 char *msg, size_t msg_size);

#endif
