/* Real architectures: torchvision models exported by
 * tools/export_torchvision.py (seeded weights, perturbed BatchNorm
 * statistics, opset 13, symbolic batch) must reproduce PyTorch's own logits
 * at batch 4 and batch 1: relative error <= 1e-4, same top-5. Each model
 * runs once per instruction set the machine has (loaded under
 * IMGCLASS_ISA), one line each with its worst relative error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgclass/nn.h"
#include "nn/cpu.h"
#include "util/testutil.h"
#include "util/npy.h"

static const char *const models[] = {
    "resnet18",       "resnet50",           "mobilenet_v2",
    "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1",
    "shufflenet_v2_x1_0", "densenet121",     "googlenet",
    "regnet_y_400mf", "convnext_tiny",  "efficientnet_v2_s",
    "resnext50_32x4d", "mobilenet_v3_large",
};
#define N_MODELS (int)(sizeof models / sizeof models[0])

/* Returns the worst relative error of the batch's rows. */
static double check_against(nn_model_t *m, const char *name, const char *in_file,
                            const char *want_file, int threads)
{
    char path[512], msg[256];
    npy_array_t in, want;
    ck_assert_msg(npy_read(tu_path(path, sizeof path, "%s/%s/%s",
                                   tu_models_dir(), name, in_file),
                           &in, msg, sizeof msg) == 0,
                  "%s: %s (run `make models`)", name, msg);
    ck_assert_msg(npy_read(tu_path(path, sizeof path, "%s/%s/%s",
                                   tu_models_dir(), name, want_file),
                           &want, msg, sizeof msg) == 0,
                  "%s: %s", name, msg);
    int batch = (int)in.dims[0];
    nn_error_t err = {{0}};
    nn_context_t *ctx;
    ck_assert_msg(nn_context_create(&ctx, m, batch, threads, &err) == 0,
                  "%s: %s", name, err.msg);
    size_t n_out = nn_model_output_elems(m, 0, batch);
    ck_assert_uint_eq(n_out, want.count);
    float *out = malloc(n_out * sizeof(float));
    ck_assert_ptr_nonnull(out);
    const float *ins[1] = {in.data};
    float *outs[1] = {out};
    ck_assert_msg(nn_context_run(ctx, batch, ins, outs, &err) == 0, "%s: %s",
                  name, err.msg);
    size_t classes = n_out / (size_t)batch;
    double worst = 0;
    for (int b = 0; b < batch; b++) {
        const float *got = out + (size_t)b * classes;
        const float *exp = want.data + (size_t)b * classes;
        double rel = tu_rel_error(got, exp, classes);
        worst = rel > worst ? rel : worst;
        ck_assert_msg(rel <= 1e-4, "%s batch %d row %d: relative error %.3g",
                      name, batch, b, rel);
        int tg[5], te[5];
        tu_topk(got, classes, 5, tg);
        tu_topk(exp, classes, 5, te);
        for (int k = 0; k < 5; k++)
            ck_assert_msg(tg[k] == te[k], "%s row %d: top-%d is %d, PyTorch says %d",
                          name, b, k + 1, tg[k], te[k]);
    }
    free(out);
    nn_context_free(ctx);
    npy_free(&in);
    npy_free(&want);
    return worst;
}

/* Test _i: model _i % N_MODELS with instruction set _i / N_MODELS. */
START_TEST(test_model)
{
    const char *name = models[_i % N_MODELS];
    const char *isa = nn_isa_name((nn_isa_t)(_i / N_MODELS));
    char path[512];
    nn_error_t err = {{0}};
    nn_model_t *m;
    /* The instruction set is chosen at load; put back what was there. */
    const char *had = getenv("IMGCLASS_ISA");
    char *saved = had ? strdup(had) : NULL;
    setenv("IMGCLASS_ISA", isa, 1);
    int rc = nn_model_load(&m, tu_path(path, sizeof path, "%s/%s/model.onnx",
                                       tu_models_dir(), name),
                           &err);
    if (saved)
        setenv("IMGCLASS_ISA", saved, 1);
    else
        unsetenv("IMGCLASS_ISA");
    free(saved);
    ck_assert_msg(rc == 0, "%s (%s): %s", name, isa, err.msg);
    ck_assert_str_eq(nn_model_isa(m), isa);
    const nn_tensor_info_t *in = nn_model_input(m, 0);
    ck_assert_int_eq(in->dims[0], -1); /* symbolic batch */
    double e4 = check_against(m, name, "input.npy", "expected.npy", 2);
    double e1 = check_against(m, name, "input1.npy", "expected1.npy", 1);
    printf("%-7s %-20s worst relative error %.3g\n", isa, name, e4 > e1 ? e4 : e1);
    nn_model_free(m);
}
END_TEST

/* A batch larger than a pass, in two stages (see engine.c): groups of
 * tail_images images, the last one short, each image's scores as when it
 * runs alone. Models whose cut holds 2 values (ResNet-50: the block's
 * input and its first branch), 1 with passes of 2 images before it
 * (ResNet-18; the seeded weights of GoogLeNet and MobileNetV3 answer the
 * same for any image), 25 (the concatenated features of DenseNet-121's
 * third block). */
START_TEST(test_stages)
{
    static const char *const staged[] = {"resnet50", "resnet18", "densenet121"};
    const char *name = staged[_i];
    char path[512], msg[256];
    nn_error_t err = {{0}};
    nn_model_t *m;
    ck_assert_msg(nn_model_load(&m, tu_path(path, sizeof path, "%s/%s/model.onnx",
                                            tu_models_dir(), name),
                                &err) == 0,
                  "%s: %s", name, err.msg);
    npy_array_t in;
    ck_assert_msg(npy_read(tu_path(path, sizeof path, "%s/%s/input.npy", tu_models_dir(),
                                   name),
                           &in, msg, sizeof msg) == 0,
                  "%s: %s", name, msg);
    const int batch = 9;
    nn_context_t *big, *one;
    ck_assert_int_eq(nn_context_create(&big, m, batch, 2, &err), 0);
    ck_assert_int_eq(nn_context_create(&one, m, 1, 2, &err), 0);
    int pass, tail_node, tail;
    nn_context_passes(big, &pass, &tail_node, &tail);
    ck_assert_msg(tail_node >= 0 && tail > pass && batch % tail != 0,
                  "%s: passes of %d, tail at node %d of %d images", name, pass, tail_node,
                  tail);
    /* Nine different images: the file's (some hold one image four times)
     * scaled, plus a pattern of each image's own. */
    const size_t img = nn_model_input_elems(m, 0, 1);
    const int have = (int)in.dims[0];
    float *x = malloc(img * batch * sizeof *x);
    const size_t classes = nn_model_output_elems(m, 0, 1);
    float *y = malloc(classes * batch * sizeof *y), *y1 = malloc(classes * sizeof *y1);
    ck_assert(x && y && y1);
    for (int b = 0; b < batch; b++)
        for (size_t k = 0; k < img; k++)
            x[b * img + k] = in.data[(b % have) * img + k] * (1.0f + 0.05f * (float)b) +
                             0.5f * sinf(0.37f * (float)k + (float)b);
    const float *ins[1] = {x};
    float *outs[1] = {y};
    ck_assert_msg(nn_context_run(big, batch, ins, outs, &err) == 0, "%s", err.msg);
    for (int b = 0; b < batch; b++) {
        const float *in1[1] = {x + b * img};
        float *out1[1] = {y1};
        ck_assert_msg(nn_context_run(one, 1, in1, out1, &err) == 0, "%s", err.msg);
        double rel = tu_rel_error(y + b * classes, y1, classes);
        ck_assert_msg(rel <= 1e-5, "%s image %d of %d: relative error %.3g to its own run",
                      name, b, batch, rel);
    }
    printf("%-20s batch %d: passes of %d, then from node %d %d images a pass: as alone\n",
           name, batch, pass, tail_node, tail);
    free(x);
    free(y);
    free(y1);
    npy_free(&in);
    nn_context_free(big);
    nn_context_free(one);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line before a failing test ends */
    nn_cpu_t cpu;
    nn_error_t err;
    (void)nn_cpu_detect(&cpu, &err); /* best is set even if IMGCLASS_ISA is refused */
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("torchvision");
    tcase_set_timeout(tc, 300);
    /* every model with each instruction set up to the machine's best */
    tcase_add_loop_test(tc, test_model, 0, N_MODELS * ((int)cpu.best + 1));
    tcase_add_loop_test(tc, test_stages, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
