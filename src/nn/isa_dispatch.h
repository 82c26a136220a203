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

/* One non-inlined copy of body, name##suffix, built with attrs. */
#define NN_ISA_COPY_(attrs, type, ret, name, suffix, body, params, args)     \
    __attribute__((attrs noinline)) static type name##suffix params          \
    {                                                                        \
        ret body args;                                                       \
    }

#if defined(__x86_64__)
#define NN_ISA_V3_ target("arch=x86-64-v3"),
#define NN_ISA_V4_ target("arch=x86-64-v4"),
#define NN_ISA_DISPATCH_(type, ret, name, body, params, args)                \
    NN_ISA_COPY_(NN_ISA_V3_, type, ret, name, _avx2, body, params, args)     \
    NN_ISA_COPY_(, type, ret, name, _generic, body, params, args)            \
    static inline type name NN_ISA_PARAMS_ params                            \
    {                                                                        \
        if (isa_ >= NN_ISA_AVX2)                                             \
            ret name##_avx2 args;                                            \
        else                                                                 \
            ret name##_generic args;                                         \
    }

/* NN_ISA_DISPATCH512: the same with a third copy, name##_avx512, built
 * for x86-64-v4 (AVX-512F/BW/CD/DQ/VL) and chosen for NN_ISA_AVX512: for
 * the bodies measured faster with 16-float vectors (the activations); in
 * others (pool rows, Winograd transforms) gcc's 512-bit code was slower. */
#define NN_ISA_DISPATCH512_(type, ret, name, body, params, args)             \
    NN_ISA_COPY_(NN_ISA_V4_, type, ret, name, _avx512, body, params, args)   \
    NN_ISA_DISPATCH_(type, ret, name##_upto, body, params, args)             \
    static inline type name NN_ISA_PARAMS_ params                            \
    {                                                                        \
        if (isa_ >= NN_ISA_AVX512)                                           \
            ret name##_avx512 args;                                          \
        else                                                                 \
            ret name##_upto NN_ISA_ARGS_ args;                               \
    }
#define NN_ISA_ARGS_(...) (isa_, __VA_ARGS__)
#else
#define NN_ISA_DISPATCH_(type, ret, name, body, params, args)                \
    NN_ISA_COPY_(, type, ret, name, _generic, body, params, args)            \
    static inline type name NN_ISA_PARAMS_ params                            \
    {                                                                        \
        (void)isa_;                                                          \
        ret name##_generic args;                                             \
    }
#define NN_ISA_DISPATCH512_(type, ret, name, body, params, args)             \
    NN_ISA_DISPATCH_(type, ret, name, body, params, args)
#endif

#define NN_ISA_DISPATCH(name, params, args)                                  \
    NN_ISA_DISPATCH_(void, , name, name##_body, params, args)
#define NN_ISA_DISPATCH512(name, params, args)                               \
    NN_ISA_DISPATCH512_(void, , name, name##_body, params, args)
#define NN_ISA_DISPATCH_RET(type, name, params, args)                        \
    NN_ISA_DISPATCH_(type, return, name, name##_body, params, args)

#endif
