/* The instruction sets the engine's kernels are built for, and which one a
 * model runs with: the best the CPU has, or a lower one named by the
 * environment variable IMGCLASS_ISA (avx512, avx2, generic), so that every
 * path can be tested on a machine that has the highest. One binary runs
 * everywhere: kernels for AVX2 and AVX-512 are compiled with per-function
 * target attributes and chosen at run time from this (isa_dispatch.h),
 * never by -march=native. */
#ifndef NN_CPU_H
#define NN_CPU_H

#include "imgclass/nn.h" /* nn_isa_t: the paths, in increasing order */

typedef struct nn_cpu {
    /* What CPUID (and the OS, through XCR0) say the CPU can do. */
    int avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16;
    nn_isa_t best;    /* the highest path the CPU can run */
    nn_isa_t isa;     /* the path chosen: best, or IMGCLASS_ISA's */
    int forced;       /* IMGCLASS_ISA chose it */
} nn_cpu_t;

/* Reads the CPU's features and IMGCLASS_ISA. Returns 0, or -NN_EINVAL
 * when IMGCLASS_ISA names no path or one the CPU cannot run (err says
 * which). */
int nn_cpu_detect(nn_cpu_t *cpu, nn_error_t *err);

/* "generic", "avx2", "avx512". */
const char *nn_isa_name(nn_isa_t isa);
/* One line: the kernels a path brings, for `imgclass info --cpu`. */
const char *nn_isa_kernels(nn_isa_t isa);

#endif
