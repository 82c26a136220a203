/* Two builds of src/nn/sgemm.c side by side in one process (bench/ab_sgemm.sh
 * links them with their symbols prefixed A_ and B_), on the products of
 * ResNet-50's 1x1 convolutions, so that a noisy machine slows both alike:
 *
 *   build/ab_sgemm [CALLS]          (default 40 calls a build and shape)
 *
 * Each call runs one build on operands of its own (several images' worth,
 * in turn, so that they come from L3 as in a model, and never the ones
 * the other build just touched), the two builds alternating and their
 * order swapped every round, after a few untimed rounds. Prints per shape the median GFLOP/s of each
 * build (a multiply-add counts as two) and their ratio B / A. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sgemm.h"

#define BUILD_API(P)                                                                       \
    size_t P##nn_sgemm_packed_floats(int M, int K);                                        \
    void P##nn_sgemm_pack_a(const float *A, int lda, int M, int K, float *dst);            \
    void P##nn_sgemm(int m0, int m1, int N, int K, const float *pa, const float *B, int ldb, \
                     float *C, int ldc, const nn_sgemm_epilogue_t *epi, float *buf);
BUILD_API(A_)
BUILD_API(B_)

typedef struct build {
    size_t (*packed_floats)(int M, int K);
    void (*pack_a)(const float *A, int lda, int M, int K, float *dst);
    void (*sgemm)(int m0, int m1, int N, int K, const float *pa, const float *B, int ldb,
                  float *C, int ldc, const nn_sgemm_epilogue_t *epi, float *buf);
} build_t;

static const build_t builds[2] = {
    {A_nn_sgemm_packed_floats, A_nn_sgemm_pack_a, A_nn_sgemm},
    {B_nn_sgemm_packed_floats, B_nn_sgemm_pack_a, B_nn_sgemm},
};

/* C[M x N] = A[M x K] B[K x N], columns of C ld apart (an item of a
 * column split has N < ld), with or without a residual. */
typedef struct shape {
    int K, N, ld, M, res;
    const char *what;
} shape_t;

static const shape_t shapes[] = {
    {64, 3136, 3136, 256, 1, "1x1 64->256 @56 +res"},
    {256, 3136, 3136, 64, 0, "1x1 256->64 @56"},
    {64, 432, 3136, 256, 1, "  its 432-column item"},
    {128, 784, 784, 512, 1, "1x1 128->512 @28 +res"},
    {512, 784, 784, 128, 0, "1x1 512->128 @28"},
    {1024, 196, 196, 256, 0, "1x1 1024->256 @14"},
    {256, 196, 196, 1024, 1, "1x1 256->1024 @14 +res"},
    {2048, 49, 49, 512, 0, "1x1 2048->512 @7"},
    {4608, 49, 49, 512, 0, "3x3 512->512 @7 unfolded"},
    {1152, 392, 392, 128, 0, "3x3/2 128->128 @56 unfolded, half"},
    {256, 392, 392, 512, 0, "1x1/2 256->512 @56 unfolded, half"},
    {2304, 98, 98, 256, 0, "3x3/2 256->256 @28 unfolded, half"},
};

#define IMAGES 4 /* operand sets a build cycles through */
#define WARMUP 4 /* untimed rounds first: the clock ramps, pages fault in */
/* The products' buffer: larger than either build's NN_SGEMM_BUFFER_FLOATS
 * (the two must share sgemm.h's functions and structures, not its sizes). */
#define BUFFER_FLOATS ((size_t)1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *floats(size_t n)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "ab_sgemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(i % 17) * 0.01f - 0.08f;
    return p;
}

/* Median seconds of calls calls of each build on shape s into t[2]. */
static void measure(const shape_t *s, int calls, double t[2])
{
    const size_t a_n = (size_t)s->M * s->K, b_n = (size_t)s->K * s->ld,
                 c_n = (size_t)s->M * s->ld;
    float *A = floats(a_n), *pa[2], *B[2], *C[2], *R[2], *buf[2];
    double *times[2];
    for (int v = 0; v < 2; v++) {
        pa[v] = floats(builds[v].packed_floats(s->M, s->K));
        builds[v].pack_a(A, s->K, s->M, s->K, pa[v]);
        B[v] = floats(IMAGES * b_n);
        C[v] = floats(IMAGES * c_n);
        R[v] = floats(IMAGES * c_n);
        buf[v] = floats(BUFFER_FLOATS);
        times[v] = calloc((size_t)calls, sizeof(double));
        if (!times[v]) {
            fprintf(stderr, "ab_sgemm: out of memory\n");
            exit(1);
        }
    }
    for (int r = -WARMUP; r < calls; r++) /* rounds before 0: not timed */
        for (int q = 0; q < 2; q++) {
            const int v = r & 1 ? 1 - q : q;
            const size_t i = (size_t)(r + WARMUP) % IMAGES;
            const nn_sgemm_epilogue_t e = {.res = s->res ? R[v] + i * c_n : NULL,
                                           .ldr = s->ld, .lo = 0.0f, .hi = 1e30f};
            const double t0 = now_s();
            builds[v].sgemm(0, s->M, s->N, s->K, pa[v], B[v] + i * b_n, s->ld, C[v] + i * c_n,
                            s->ld, &e, buf[v]);
            if (r >= 0)
                times[v][r] = now_s() - t0;
        }
    for (int v = 0; v < 2; v++) {
        qsort(times[v], (size_t)calls, sizeof(double), by_value);
        t[v] = times[v][calls / 2];
        free(pa[v]), free(B[v]), free(C[v]), free(R[v]), free(buf[v]), free(times[v]);
    }
    free(A);
}

int main(int argc, char **argv)
{
    const int calls = argc > 1 ? atoi(argv[1]) : 40;
    if (calls < 1) {
        fprintf(stderr, "usage: ab_sgemm [CALLS]\n");
        return 2;
    }
    printf("%-26s %6s %6s %6s %4s %9s %9s %6s\n", "product", "K", "N", "M", "res", "A GF/s",
           "B GF/s", "B/A");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_t *s = &shapes[i];
        double t[2];
        measure(s, calls, t);
        const double gflop = 2.0 * s->M * s->N * s->K * 1e-9;
        printf("%-26s %6d %6d %6d %4s %9.1f %9.1f %6.2f\n", s->what, s->K, s->N, s->M,
               s->res ? "yes" : "no", gflop / t[0], gflop / t[1], t[0] / t[1]);
    }
    return 0;
}
