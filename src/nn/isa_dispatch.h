/* Kernels compiled once per instruction set and chosen by the nn_isa_t a
 * call carries (cpu.h: the best the CPU has, or IMGCLASS_ISA's), rather
 * than by the CPU alone (GCC's target_clones would ignore IMGCLASS_ISA).
 *
 * A kernel is written once, as a body without target attributes:
 *
 *     NN_ISA_BODY void nn_relu_body(float *y, const float *x, int64_t n)
 *     {
 *         ...plain loops or GCC vector types...
 *     }
 *     NN_ISA_DISPATCH(nn_relu, (float *y, const float *x, int64_t n), (y, x, n))
 *
 * NN_ISA_DISPATCH(name, params, args) defines two copies of name##_body:
 *   name##_avx2     built for x86-64-v3 (AVX2 + FMA), for NN_ISA_AVX2 and
 *                   NN_ISA_AVX512 (no AVX-512 direct kernels yet);
 *   name##_generic  built for the x86-64 baseline the file is compiled for;
 * and name(isa, args...) which calls the one isa selects. The body is
 * always inlined, so each copy is compiled (and vectorised) for its own
 * instruction set; GCC and clang both inline a function without target
 * attributes into one with more. The copies are not inlined into their
 * callers: each stays one function (objdump shows name_generic without a
 * ymm register). NN_ISA_DISPATCH_RET(type, ...) does the same for a body
 * returning a value. Off x86-64 there is one copy, the generic one. */
#ifndef NN_ISA_DISPATCH_H
#define NN_ISA_DISPATCH_H

#include "cpu.h"

#define NN_ISA_BODY static inline __attribute__((always_inline))

/* (isa_, params...) from (params...) */
#define NN_ISA_PARAMS_(...) (nn_isa_t isa_, __VA_ARGS__)

#if defined(__x86_64__)
#define NN_ISA_DISPATCH_(type, ret, name, params, args)                    \
    __attribute__((target("arch=x86-64-v3"), noinline)) static type       \
        name##_avx2 params                                                 \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    __attribute__((noinline)) static type name##_generic params            \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    static inline type name NN_ISA_PARAMS_ params                          \
    {                                                                      \
        if (isa_ >= NN_ISA_AVX2)                                           \
            ret name##_avx2 args;                                          \
        else                                                               \
            ret name##_generic args;                                       \
    }
#else
#define NN_ISA_DISPATCH_(type, ret, name, params, args)                    \
    __attribute__((noinline)) static type name##_generic params            \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    static inline type name NN_ISA_PARAMS_ params                          \
    {                                                                      \
        (void)isa_;                                                        \
        ret name##_generic args;                                           \
    }
#endif

/* NN_ISA_DISPATCH512: the same with a third copy, name##_avx512, built
 * for x86-64-v4 (AVX-512F/BW/CD/DQ/VL) and chosen for NN_ISA_AVX512: for
 * the bodies measured faster with 16-float vectors (the activations); in
 * others (pool rows, Winograd transforms) gcc's 512-bit code was slower. */
#if defined(__x86_64__)
#define NN_ISA_DISPATCH512_(type, ret, name, params, args)                 \
    __attribute__((target("arch=x86-64-v4"), noinline)) static type       \
        name##_avx512 params                                               \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    __attribute__((target("arch=x86-64-v3"), noinline)) static type       \
        name##_avx2 params                                                 \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    __attribute__((noinline)) static type name##_generic params            \
    {                                                                      \
        ret name##_body args;                                              \
    }                                                                      \
    static inline type name NN_ISA_PARAMS_ params                          \
    {                                                                      \
        if (isa_ >= NN_ISA_AVX512)                                         \
            ret name##_avx512 args;                                        \
        else if (isa_ >= NN_ISA_AVX2)                                      \
            ret name##_avx2 args;                                          \
        else                                                               \
            ret name##_generic args;                                       \
    }
#else
#define NN_ISA_DISPATCH512_(type, ret, name, params, args)                 \
    NN_ISA_DISPATCH_(type, ret, name, params, args)
#endif

#define NN_ISA_DISPATCH(name, params, args)                                \
    NN_ISA_DISPATCH_(void, , name, params, args)
#define NN_ISA_DISPATCH512(name, params, args)                             \
    NN_ISA_DISPATCH512_(void, , name, params, args)
#define NN_ISA_DISPATCH_RET(type, name, params, args)                      \
    NN_ISA_DISPATCH_(type, return, name, params, args)

#endif
