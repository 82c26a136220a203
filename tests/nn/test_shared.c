/* Real pretrained ImageNet classifiers from ../shared/imagenet (TFLite
 * MobileNets converted to ONNX: asymmetric pads, Clip as ReLU6, a final
 * Softmax): the main model reproduces ONNX Runtime's answers for
 * tensors/batch.npy within 1e-4 and with the same top-5, at batch 8 and
 * image by image; the other two load and produce probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgclass/nn.h"
#include "util/testutil.h"
#include "util/npy.h"

static nn_model_t *load_shared(const char *file)
{
    char path[512];
    nn_error_t err = {{0}};
    nn_model_t *m;
    ck_assert_msg(nn_model_load(&m, tu_path(path, sizeof path, "%s/imagenet/%s",
                                            tu_shared_dir(), file),
                                &err) == 0,
                  "%s: %s", file, err.msg);
    return m;
}

static void read_npy(const char *file, npy_array_t *a)
{
    char path[512], msg[256];
    ck_assert_msg(npy_read(tu_path(path, sizeof path, "%s/imagenet/%s",
                                   tu_shared_dir(), file),
                           a, msg, sizeof msg) == 0,
                  "%s: %s", file, msg);
}

static void check_rows(const float *got, const float *want, int rows,
                       int classes, int first_row)
{
    for (int r = 0; r < rows; r++) {
        const float *g = got + (size_t)r * classes;
        const float *w = want + (size_t)r * classes;
        double rel = tu_rel_error(g, w, (size_t)classes);
        ck_assert_msg(rel <= 1e-4, "row %d: relative error %.3g", first_row + r,
                      rel);
        int tg[5], tw[5];
        tu_topk(g, (size_t)classes, 5, tg);
        tu_topk(w, (size_t)classes, 5, tw);
        for (int k = 0; k < 5; k++)
            ck_assert_msg(tg[k] == tw[k], "row %d: top-%d is %d, expected %d",
                          first_row + r, k + 1, tg[k], tw[k]);
    }
}

START_TEST(test_main_model_batch_and_single)
{
    nn_model_t *m = load_shared("mobilenet_v2_1.0_224.onnx");
    npy_array_t in, want;
    read_npy("tensors/batch.npy", &in);
    read_npy("tensors/batch.expected.npy", &want);
    ck_assert_int_eq(in.dims[0], 8);
    ck_assert_int_eq(want.dims[1], 1001);
    nn_error_t err = {{0}};
    nn_context_t *ctx;
    ck_assert_msg(nn_context_create(&ctx, m, 8, 2, &err) == 0, "%s", err.msg);
    float *out = malloc(want.count * sizeof(float));
    ck_assert_ptr_nonnull(out);
    const float *ins[1] = {in.data};
    float *outs[1] = {out};
    ck_assert_msg(nn_context_run(ctx, 8, ins, outs, &err) == 0, "%s", err.msg);
    check_rows(out, want.data, 8, 1001, 0);

    /* The same context, image by image (a smaller batch than it was made
     * for), must give the same answers. */
    size_t per_image = in.count / 8;
    for (int b = 0; b < 8; b++) {
        ins[0] = in.data + per_image * b;
        ck_assert_msg(nn_context_run(ctx, 1, ins, outs, &err) == 0, "%s",
                      err.msg);
        check_rows(out, want.data + (size_t)b * 1001, 1, 1001, b);
    }
    free(out);
    nn_context_free(ctx);
    npy_free(&in);
    npy_free(&want);
    nn_model_free(m);
}
END_TEST

static void run_probabilities(const char *file, int size, int classes)
{
    nn_model_t *m = load_shared(file);
    const nn_tensor_info_t *in = nn_model_input(m, 0);
    ck_assert_int_eq(in->rank, 4);
    ck_assert_int_eq(in->dims[2], size);
    ck_assert_int_eq(nn_model_output(m, 0)->dims[1], classes);
    nn_error_t err = {{0}};
    nn_context_t *ctx;
    ck_assert_msg(nn_context_create(&ctx, m, 2, 2, &err) == 0, "%s", err.msg);
    size_t n_in = nn_model_input_elems(m, 0, 2);
    float *x = malloc(n_in * sizeof(float));
    float *y = malloc((size_t)classes * 2 * sizeof(float));
    ck_assert(x && y);
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
    const float *ins[1] = {x};
    float *outs[1] = {y};
    ck_assert_msg(nn_context_run(ctx, 2, ins, outs, &err) == 0, "%s", err.msg);
    for (int b = 0; b < 2; b++) {
        double sum = 0;
        for (int c = 0; c < classes; c++) {
            float p = y[b * classes + c];
            ck_assert_msg(p >= 0 && p <= 1, "%s: probability %g", file, p);
            sum += p;
        }
        ck_assert_msg(fabs(sum - 1.0) < 1e-3, "%s: probabilities sum to %g",
                      file, sum);
    }
    free(x);
    free(y);
    nn_context_free(ctx);
    nn_model_free(m);
}

START_TEST(test_bird_model)
{
    run_probabilities("mobilenet_v2_1.0_224_inat_bird.onnx", 224, 965);
}
END_TEST

START_TEST(test_small_mobilenet_v1)
{
    run_probabilities("mobilenet_v1_0.25_128.onnx", 128, 1001);
}
END_TEST

int main(void)
{
    tu_require_shared();
    Suite *s = suite_create("shared-imagenet");
    TCase *tc = tcase_create("pretrained");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_main_model_batch_and_single);
    tcase_add_test(tc, test_bird_model);
    tcase_add_test(tc, test_small_mobilenet_v1);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
