/* CPU features and the path a model runs with; see cpu.h. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

static const char *const isa_names[NN_ISA_COUNT] = {"generic", "avx2", "avx512"};

/* Kept true to the kernels' dispatch: the direct kernels (conv's depthwise,
 * grouped and pointwise ones and Winograd transforms, activations,
 * elementwise, pooling) are compiled for the baseline and for AVX2+FMA
 * (isa_dispatch.h; grep NN_ISA_DISPATCH), the resizers of
 * src/classify/preprocess.c for the baseline and AVX2; the AVX2 copies run
 * from NN_ISA_AVX2 up. OpenBLAS picks its own kernels by the CPU:
 * IMGCLASS_ISA does not reach it. */
static const char *const isa_kernels[NN_ISA_COUNT] = {
    [NN_ISA_GENERIC] = "products through OpenBLAS; direct kernels for x86-64 baseline",
    [NN_ISA_AVX2] = "products through OpenBLAS; direct kernels for AVX2+FMA",
    [NN_ISA_AVX512] = "convolution products (1x1, unfolded, Winograd) through the engine's own "
                      "AVX-512 kernels on weights packed at load, other products through "
                      "OpenBLAS; direct kernels for AVX2+FMA",
};

const char *nn_isa_kernels(nn_isa_t isa)
{
    return (unsigned)isa < NN_ISA_COUNT ? isa_kernels[isa] : "?";
}

const char *nn_isa_name(nn_isa_t isa)
{
    return (unsigned)isa < NN_ISA_COUNT ? isa_names[isa] : "?";
}

static void read_features(nn_cpu_t *c)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* The compiler's runtime checks CPUID and that the OS saves the
     * registers (XCR0), so a feature it reports can be used. */
    __builtin_cpu_init();
    c->avx2 = __builtin_cpu_supports("avx2");
    c->fma = __builtin_cpu_supports("fma");
    c->avx512f = __builtin_cpu_supports("avx512f");
    c->avx512bw = __builtin_cpu_supports("avx512bw");
    c->avx512vl = __builtin_cpu_supports("avx512vl");
    c->avx512dq = __builtin_cpu_supports("avx512dq");
    c->avx512_vnni = __builtin_cpu_supports("avx512vnni");
    c->avx512_bf16 = __builtin_cpu_supports("avx512bf16");
#else
    (void)c;
#endif
}

int nn_cpu_detect(nn_cpu_t *cpu, nn_error_t *err)
{
    memset(cpu, 0, sizeof *cpu);
    read_features(cpu);
    cpu->best = cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512dq
                    ? NN_ISA_AVX512
                : cpu->avx2 && cpu->fma ? NN_ISA_AVX2
                                        : NN_ISA_GENERIC;
    cpu->isa = cpu->best;
    const char *want = getenv("IMGCLASS_ISA");
    if (!want || !*want)
        return 0;
    int i = 0;
    while (i < NN_ISA_COUNT && strcmp(want, isa_names[i]) != 0)
        i++;
    if (i == NN_ISA_COUNT)
        return nn_fail(err, NN_EINVAL, "IMGCLASS_ISA=%.32s: expected avx512, avx2 or generic",
                       want);
    if ((nn_isa_t)i > cpu->best)
        return nn_fail(err, NN_EINVAL, "IMGCLASS_ISA=%s: this CPU runs %s at most", want,
                       isa_names[cpu->best]);
    cpu->isa = (nn_isa_t)i;
    cpu->forced = 1;
    return 0;
}
