/* A classifier: one model folder opened (config.json, model.onnx,
 * labels.txt, its preprocessing), and the three steps every image goes
 * through, the same in the daemon and in the offline tool:
 *
 *   classifier_prepare   encoded image -> the model's input tensor
 *                        (decode, then preprocess as in training);
 *   classifier_run       a batch of tensors -> the model's outputs, on an
 *                        execution context of the caller's;
 *   classifier_rank      one output -> class scores, best first.
 *
 * An open classifier is immutable: any number of threads may prepare,
 * run (each on its own context) and rank with it at once. This library
 * (src/classify/) does not know HTTP, threads or event loops. */
#ifndef CLASSIFY_CLASSIFIER_H
#define CLASSIFY_CLASSIFIER_H

#include <stddef.h>

#include "classify/error.h"
#include "classify/image.h"
#include "classify/model_config.h"
#include "classify/preprocess.h"
#include "imgclass/nn.h"

typedef struct classifier {
    char *name;          /* as served ("resnet50"), or the folder's path */
    char *dir;
    model_config_t cfg;
    model_stamp_t stamp; /* of the files as they were opened */
    nn_model_t *nn;
    pre_config_t pre;
    char **labels;       /* n_classes entries ("class_<i>" without labels.txt) */
    int n_classes;
    int has_softmax;     /* the graph's output already is probabilities */
    int channels, height, width;
    size_t in_elems;     /* floats of one image's input tensor */
    size_t out_elems;    /* floats of one image's output */
    img_limits_t limits; /* decoding limits, preprocessing's shrink hint applied */
    double open_seconds;
} classifier_t;

/* Opens model folder dir: config, model (its input must be [N, 1 or 3, H,
 * W] with a symbolic or unit batch, its output [N, classes]), labels and
 * preprocessing. name may be NULL (then the folder's path). limits are
 * the decoding limits (the shrink hint is added here). Returns IC_OK,
 * IC_ECONFIG, IC_EMODEL or IC_ENOMEM with one line in msg. */
ic_err_t classifier_open(classifier_t **out, const char *dir, const char *name,
                         const img_limits_t *limits, char *msg, size_t msg_size);
/* NULL is a no-op. */
void classifier_close(classifier_t *c);

/* Decodes one encoded image and writes its in_elems floats to tensor.
 * Returns IC_OK, or an image or preprocessing error (image.h,
 * preprocess.h) with msg. */
ic_err_t classifier_prepare(const classifier_t *c, const void *data, size_t size,
                            float *tensor, char *msg, size_t msg_size);

/* Runs n prepared images (n * in_elems floats) through the model on ctx
 * (a context of the classifier's nn model), writing n * out_elems floats.
 * Returns IC_OK, or IC_EINFER with msg. */
ic_err_t classifier_run(nn_context_t *ctx, int n, const float *inputs, float *outputs,
                        char *msg, size_t msg_size);

/* One class's score. */
typedef struct class_score {
    float score;
    int index;
} class_score_t;

/* Scores of one image's output (out_elems floats) into s (n_classes
 * entries), best first, ties by index: softmax of the logits, or the
 * output itself when the graph already ends in Softmax (never twice). */
void classifier_rank(const classifier_t *c, const float *out, class_score_t *s);

#endif
