/* The machine's single-precision FMA peak, measured: independent chains of
 * fused multiply-adds in registers (no memory traffic), per instruction
 * set the CPU has, on 1 thread and on T threads at once.
 *
 *   build/peak_flops [THREADS]      (make build/peak_flops; default 2)
 *
 * Prints one line per instruction set and thread count: GFLOP/s (a
 * multiply-add counts as two), best of 5 runs of about 0.2 s. This is the
 * roofline bench/compare_ort.sh sets each model's achieved GFLOP/s against. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define ITERS 20000000L
#define CHAINS 12 /* enough independent FMAs to cover latency x ports */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct run {
    int isa; /* 2: AVX-512, 1: AVX2+FMA, 0: scalar */
    long iters;
    float sink;
} run_t;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma512(long n)
{
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.9999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma256(long n)
{
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.9999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS; i++)
        s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

static void *worker(void *arg)
{
    run_t *r = arg;
#if defined(__x86_64__)
    r->sink = r->isa == 2 ? fma512(r->iters) : fma256(r->iters);
#else
    r->sink = 0;
#endif
    return NULL;
}

/* GFLOP/s of threads running isa's chains at once, best of 5. */
static double measure(int isa, int threads)
{
    double best = 0;
    const int lanes = isa == 2 ? 16 : 8;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[64];
        run_t runs[64];
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            runs[t] = (run_t){isa, ITERS, 0};
            if (pthread_create(&tid[t], NULL, worker, &runs[t])) {
                perror("pthread_create");
                exit(1);
            }
        }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
        double secs = now_s() - t0;
        double gflops = 2.0 * lanes * CHAINS * (double)ITERS * threads / secs / 1e9;
        if (gflops > best)
            best = gflops;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "usage: peak_flops [THREADS 1..64]\n");
        return 2;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    int isas[2] = {__builtin_cpu_supports("avx512f") ? 2 : -1,
                   __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : -1};
    for (int i = 0; i < 2; i++) {
        if (isas[i] < 0)
            continue;
        const char *name = isas[i] == 2 ? "avx512" : "avx2";
        printf("peak %-6s 1 thread %8.1f GFLOP/s\n", name, measure(isas[i], 1));
        if (threads > 1)
            printf("peak %-6s %d threads %7.1f GFLOP/s\n", name, threads,
                   measure(isas[i], threads));
    }
#else
    printf("peak: no probe for this architecture\n");
#endif
    return 0;
}
