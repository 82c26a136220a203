/* Unary elementwise activations (Relu, LeakyRelu, PRelu, Clip, Sigmoid,
 * HardSigmoid, HardSwish, Tanh, Erf, Sqrt) and nn_apply_act, the activation
 * fused into Conv/Gemm. Loops are kept plain so that gcc vectorizes them. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/error.h"
#include "nn/isa_dispatch.h"
#include "nn/op.h"
#include "nn/ops/args.h"

/* gcc's -O2 cost model ("very cheap") refuses loops of unknown trip
 * count, and with trapping math it will not if-convert the clamps of
 * nn_expf_vec; these are hot loops and nothing here reads FP exception
 * flags, so relax both for this file. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math", "fp-contract=fast")
#endif

typedef enum {
    NN_UN_RELU,
    NN_UN_LEAKY,
    NN_UN_CLIP,
    NN_UN_SIGMOID,
    NN_UN_HARDSIGMOID,
    NN_UN_HARDSWISH,
    NN_UN_TANH,
    NN_UN_ERF,
    NN_UN_SQRT,
    NN_UN_GELU,
} nn_unary_kind_t;

typedef struct nn_unary_params {
    nn_unary_kind_t kind;
    float alpha, beta; /* LeakyRelu alpha; Clip min/max; HardSigmoid a/b */
    int min_input, max_input; /* Clip >= 11: input index of min/max, or -1 */
} nn_unary_params_t;
NN_PARAMS_FIT(nn_unary_params_t);

/* ---- kernels ---------------------------------------------------------------- */

/* Each kernel is a body compiled twice, for x86-64-v3 (AVX2 + FMA, which
 * the polynomials here depend on) and for the x86-64 baseline, and chosen
 * by the call's isa (isa_dispatch.h). */

/* y[i] = EXPR(v) with v = x[i]. In place (y == x, as nn_apply_act does)
 * the loop goes through one pointer: gcc's runtime overlap check would
 * otherwise send identical pointers down the scalar path. */
#define NN_MAP(EXPR)                                                       \
    do {                                                                   \
        if (y == x) {                                                      \
            float *p_ = y;                                                 \
            for (int64_t i = 0; i < n; i++) {                              \
                float v = p_[i];                                           \
                p_[i] = (EXPR);                                            \
            }                                                              \
        } else {                                                           \
            for (int64_t i = 0; i < n; i++) {                              \
                float v = x[i];                                            \
                y[i] = (EXPR);                                             \
            }                                                              \
        }                                                                  \
    } while (0)

static inline float nn_clampf(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

NN_ISA_BODY void nn_relu_body(float *y, const float *x, int64_t n)
{
    NN_MAP(v < 0.0f ? 0.0f : v); /* keeps NaN, like max(x, 0) */
}
NN_ISA_DISPATCH512(nn_relu, (float *y, const float *x, int64_t n), (y, x, n))

/* two selects and no conditional multiply: this form vectorizes */
static inline float nn_leaky1(float v, float alpha)
{
    float pos = v < 0.0f ? 0.0f : v, neg = v < 0.0f ? v : 0.0f;
    return pos + alpha * neg;
}

NN_ISA_BODY void nn_leaky_body(float *y, const float *x, int64_t n, float alpha)
{
    NN_MAP(nn_leaky1(v, alpha));
}
NN_ISA_DISPATCH512(nn_leaky, (float *y, const float *x, int64_t n, float alpha),
                (y, x, n, alpha))

NN_ISA_BODY void nn_clip_body(float *y, const float *x, int64_t n, float lo, float hi)
{
    NN_MAP(nn_clampf(v, lo, hi));
}
NN_ISA_DISPATCH512(nn_clip, (float *y, const float *x, int64_t n, float lo, float hi),
                (y, x, n, lo, hi))

/* expf that gcc can vectorize (libm's cannot be without libmvec and
 * -ffast-math): Cephes' polynomial on a range-reduced argument, the power
 * of two built in the exponent bits. Rounding uses the 1.5*2^23 trick, so
 * no SSE4.1 is needed. Within ~2 ulp of expf on [-87, 88]; the core
 * takes x in that range (or NaN), nn_expf_vec clamps to it first. */
static inline float nn_expf_core(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f + magic;
    float k = t - magic; /* round(x / ln 2) */
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t ti; /* unsigned: NaN bits must not overflow */
    memcpy(&ti, &t, sizeof ti);
    uint32_t bits = (ti - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float nn_expf_vec(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    return nn_expf_core(x);
}

/* exp(-x) goes through a small buffer first: in one loop gcc turns the
 * clamps of nn_expf_vec into extra divisions (bench/README.md, "Engine
 * design notes"). */
#define NN_EXP_BLOCK 256

NN_ISA_BODY void nn_sigmoid_body(float *y, const float *x, int64_t n)
{
    float e[NN_EXP_BLOCK];
    for (int64_t b = 0; b < n; b += NN_EXP_BLOCK) {
        int64_t m = n - b < NN_EXP_BLOCK ? n - b : NN_EXP_BLOCK;
        for (int64_t i = 0; i < m; i++)
            e[i] = nn_expf_vec(-x[b + i]);
        for (int64_t i = 0; i < m; i++)
            y[b + i] = 1.0f / (1.0f + e[i]);
    }
}
NN_ISA_DISPATCH512(nn_sigmoid, (float *y, const float *x, int64_t n), (y, x, n))

NN_ISA_BODY void nn_silu_body(float *y, const float *x, int64_t n)
{
    float e[NN_EXP_BLOCK];
    for (int64_t b = 0; b < n; b += NN_EXP_BLOCK) {
        int64_t m = n - b < NN_EXP_BLOCK ? n - b : NN_EXP_BLOCK;
        for (int64_t i = 0; i < m; i++)
            e[i] = nn_expf_vec(-x[b + i]);
        for (int64_t i = 0; i < m; i++)
            y[b + i] = x[b + i] / (1.0f + e[i]);
    }
}
NN_ISA_DISPATCH512(nn_silu, (float *y, const float *x, int64_t n), (y, x, n))

NN_ISA_BODY void nn_hardsigmoid_body(float *y, const float *x, int64_t n, float alpha,
                                     float beta)
{
    NN_MAP(nn_clampf(alpha * v + beta, 0.0f, 1.0f));
}
NN_ISA_DISPATCH512(nn_hardsigmoid,
                (float *y, const float *x, int64_t n, float alpha, float beta),
                (y, x, n, alpha, beta))

NN_ISA_BODY void nn_hardswish_body(float *y, const float *x, int64_t n, float alpha,
                                   float beta)
{
    NN_MAP(v * nn_clampf(alpha * v + beta, 0.0f, 1.0f));
}
NN_ISA_DISPATCH512(nn_hardswish,
                (float *y, const float *x, int64_t n, float alpha, float beta),
                (y, x, n, alpha, beta))

static void nn_tanh(float *y, const float *x, int64_t n)
{
    NN_MAP(tanhf(v));
}

/* erf that gcc can vectorize, within 1.5e-7 of erf (libm's erff: 6e-8).
 * |x| < 0.75: x * P(x^2); above: 1 - erfc(x) with erfc(x) = t * exp(R(t) -
 * x^2), t = 1 / (1 + x/2) (the Numerical Recipes form). P and R are least
 * squares fits on Chebyshev nodes (fit errors 1e-9 and 1e-10). Both are
 * evaluated and one selected, so the loop has no branch; NaN propagates. */
static inline float nn_erf1(float v)
{
    float a = fabsf(v);
    a = a > 4.0f ? 4.0f : a; /* erf rounds to 1 from 3.92 */
    float s = a * a;
    float p = -6.78725024008244e-04f;
    p = p * s + 5.119881899621315e-03f;
    p = p * s + -2.6837517007892636e-02f;
    p = p * s + 1.1283440261151662e-01f;
    p = p * s + -3.7612624041386244e-01f;
    p = p * s + 1.1283791664527278f;
    p = p * a;
    float t = 1.0f / (1.0f + 0.5f * a);
    float r = -0.10174330979291894f;
    r = r * t + 0.6500131820666355f;
    r = r * t + -1.4103247286729481f;
    r = r * t + 1.0753771599978763f;
    r = r * t + -0.02534365847636469f;
    r = r * t + 1.0852066014035204f;
    r = r * t + -1.27306147516644f;
    float q = 1.0f - t * nn_expf_core(r - s); /* r - s in [-17.3, -1] */
    return copysignf(a < 0.75f ? p : q, v);
}

NN_ISA_BODY void nn_erf_body(float *y, const float *x, int64_t n)
{
    NN_MAP(nn_erf1(v));
}
NN_ISA_DISPATCH512(nn_erf, (float *y, const float *x, int64_t n), (y, x, n))

/* GELU, exact form: x/2 * (1 + erf(x / sqrt(2))). */
NN_ISA_BODY void nn_gelu_body(float *y, const float *x, int64_t n)
{
    NN_MAP(0.5f * v * (1.0f + nn_erf1(v * 0.70710678118654752f)));
}
NN_ISA_DISPATCH512(nn_gelu, (float *y, const float *x, int64_t n), (y, x, n))

static void nn_sqrt(float *y, const float *x, int64_t n)
{
    NN_MAP(sqrtf(v));
}

void nn_apply_act(nn_isa_t isa, const nn_fusion_t *f, float *x, int64_t n)
{
    switch (f->act) {
    case NN_ACT_NONE: break;
    case NN_ACT_RELU: nn_relu(isa, x, x, n); break;
    case NN_ACT_CLIP: nn_clip(isa, x, x, n, f->alpha, f->beta); break;
    case NN_ACT_SIGMOID: nn_sigmoid(isa, x, x, n); break;
    case NN_ACT_SILU: nn_silu(isa, x, x, n); break;
    case NN_ACT_HARDSWISH: nn_hardswish(isa, x, x, n, f->alpha, f->beta); break;
    case NN_ACT_LEAKY: nn_leaky(isa, x, x, n, f->alpha); break;
    case NN_ACT_GELU: nn_gelu(isa, x, x, n); break;
    }
}

/* ---- unary driver --------------------------------------------------------- */

typedef struct nn_unary_job {
    nn_isa_t isa;
    nn_unary_kind_t kind;
    float alpha, beta;
    const float *x;
    float *y;
    int64_t n;
} nn_unary_job_t;

#define NN_UN_BLOCK 16384
#define NN_UN_PAR_MIN 65536

static void nn_unary_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_unary_job_t *j = arg;
    int64_t lo = begin * NN_UN_BLOCK;
    int64_t hi = end * NN_UN_BLOCK < j->n ? end * NN_UN_BLOCK : j->n;
    const float *x = j->x + lo;
    float *y = j->y + lo;
    int64_t n = hi - lo;
    const nn_isa_t isa = j->isa;
    switch (j->kind) {
    case NN_UN_RELU: nn_relu(isa, y, x, n); break;
    case NN_UN_LEAKY: nn_leaky(isa, y, x, n, j->alpha); break;
    case NN_UN_CLIP: nn_clip(isa, y, x, n, j->alpha, j->beta); break;
    case NN_UN_SIGMOID: nn_sigmoid(isa, y, x, n); break;
    case NN_UN_HARDSIGMOID: nn_hardsigmoid(isa, y, x, n, j->alpha, j->beta); break;
    case NN_UN_HARDSWISH: nn_hardswish(isa, y, x, n, j->alpha, j->beta); break;
    case NN_UN_TANH: nn_tanh(y, x, n); break;
    case NN_UN_ERF: nn_erf(isa, y, x, n); break;
    case NN_UN_SQRT: nn_sqrt(y, x, n); break;
    case NN_UN_GELU: nn_gelu(isa, y, x, n); break;
    }
}

/* Checks the float32 data input and sets out[0] to its shape. */
static int nn_unary_shape(nn_call_t *call, nn_error_t *err, int max_in)
{
    if (call->n_in < 1 || call->n_in > max_in || !call->in[0])
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects %s%d input%s, got %d",
                            max_in > 1 ? "1 to " : "", max_in,
                            max_in > 1 ? "s" : "", call->n_in);
    if (call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "expects 1 output");
    int rc = nn_need_float(call, 0, "X", err);
    if (rc)
        return rc;
    nn_tensor_like(call->out[0], call->in[0]);
    return 0;
}

static int nn_unary_prepare(nn_call_t *call, nn_error_t *err,
                            nn_unary_kind_t kind, float alpha, float beta)
{
    int rc = nn_unary_shape(call, err, 1);
    if (rc)
        return rc;
    nn_unary_params_t *p = NN_PARAMS(call, nn_unary_params_t);
    p->kind = kind;
    p->alpha = alpha;
    p->beta = beta;
    p->min_input = p->max_input = -1;
    int64_t n = nn_tensor_elems(call->out[0]);
    int cost = kind == NN_UN_RELU || kind == NN_UN_LEAKY ||
                       kind == NN_UN_CLIP
                   ? 1
                   : 4;
    call->flops = (double)n * cost;
    return 0;
}

static void nn_unary_exec(const nn_call_t *call)
{
    const nn_unary_params_t *p =
        (const nn_unary_params_t *)(const void *)call->params;
    nn_unary_job_t j = {
        .isa = call->isa, .kind = p->kind, .alpha = p->alpha, .beta = p->beta,
        .x = call->in[0]->data, .y = call->out[0]->data,
        .n = nn_tensor_elems(call->out[0]),
    };
    if (p->kind == NN_UN_CLIP) {
        /* min/max inputs may be graph inputs: read them on every run */
        if (p->min_input >= 0)
            j.alpha = *(const float *)call->in[p->min_input]->data;
        if (p->max_input >= 0)
            j.beta = *(const float *)call->in[p->max_input]->data;
    }
    if (j.n <= 0)
        return;
    int64_t blocks = (j.n + NN_UN_BLOCK - 1) / NN_UN_BLOCK;
    if (j.n < NN_UN_PAR_MIN)
        nn_unary_chunk(&j, 0, blocks, 0);
    else
        nn_pool_for(call->pool, blocks, nn_unary_chunk, &j);
}

/* ---- simple ops ----------------------------------------------------------- */

int nn_op_relu_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_RELU, 0, 0);
}
void nn_op_relu_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_leakyrelu_prepare(nn_call_t *call, nn_error_t *err)
{
    float alpha = nn_attr_float(call->node, "alpha", 0.01f);
    return nn_unary_prepare(call, err, NN_UN_LEAKY, alpha, 0);
}
void nn_op_leakyrelu_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_sigmoid_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_SIGMOID, 0, 0);
}
void nn_op_sigmoid_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_hardsigmoid_prepare(nn_call_t *call, nn_error_t *err)
{
    float alpha = nn_attr_float(call->node, "alpha", 0.2f);
    float beta = nn_attr_float(call->node, "beta", 0.5f);
    return nn_unary_prepare(call, err, NN_UN_HARDSIGMOID, alpha, beta);
}
void nn_op_hardsigmoid_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_hardswish_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_HARDSWISH, 1.0f / 6.0f, 0.5f);
}
void nn_op_hardswish_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_tanh_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_TANH, 0, 0);
}
void nn_op_tanh_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_erf_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_ERF, 0, 0);
}
void nn_op_erf_exec(const nn_call_t *call) { nn_unary_exec(call); }

/* Gelu is ONNX's opset-20 operator; the optimiser also forms it from the
 * Div/Erf/Add/Mul/Mul chain that exporters write for earlier opsets. */
int nn_op_gelu_prepare(nn_call_t *call, nn_error_t *err)
{
    const char *approx = nn_attr_string(call->node, "approximate", "none");
    if (strcmp(approx, "none") != 0)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "approximate '%s' is not supported (only 'none')",
                            approx);
    return nn_unary_prepare(call, err, NN_UN_GELU, 0, 0);
}
void nn_op_gelu_exec(const nn_call_t *call) { nn_unary_exec(call); }

int nn_op_sqrt_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_unary_prepare(call, err, NN_UN_SQRT, 0, 0);
}
void nn_op_sqrt_exec(const nn_call_t *call) { nn_unary_exec(call); }

/* ---- Clip ----------------------------------------------------------------- */

int nn_op_clip_prepare(nn_call_t *call, nn_error_t *err)
{
    int opset = call->node ? call->node->opset : 17;
    int rc = nn_unary_shape(call, err, opset >= 11 ? 3 : 1);
    if (rc)
        return rc;
    nn_unary_params_t *p = NN_PARAMS(call, nn_unary_params_t);
    p->kind = NN_UN_CLIP;
    p->alpha = -FLT_MAX;
    p->beta = FLT_MAX;
    p->min_input = p->max_input = -1;
    if (opset < 11) {
        p->alpha = nn_attr_float(call->node, "min", -FLT_MAX);
        p->beta = nn_attr_float(call->node, "max", FLT_MAX);
    } else {
        for (int i = 1; i < call->n_in; i++) {
            const nn_tensor_t *t = call->in[i];
            if (!t)
                continue; /* omitted: no bound */
            const char *what = i == 1 ? "min" : "max";
            int rc = nn_need_float(call, i, what, err);
            if (rc)
                return rc;
            if (nn_tensor_elems(t) != 1)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "input '%s' must be a scalar, got %lld "
                                    "values",
                                    what, (long long)nn_tensor_elems(t));
            if (i == 1)
                p->min_input = 1;
            else
                p->max_input = 2;
        }
    }
    call->flops = (double)nn_tensor_elems(call->out[0]);
    return 0;
}
void nn_op_clip_exec(const nn_call_t *call) { nn_unary_exec(call); }

/* ---- PRelu ---------------------------------------------------------------- */

/* Slope broadcasts unidirectionally to X: X is walked as rows of a
 * collapsed shape whose innermost axis has slope stride 0 or 1. */
typedef struct nn_prelu_job {
    nn_isa_t isa;
    int rank;
    int64_t d[NN_MAX_RANK], s[NN_MAX_RANK]; /* collapsed dims, slope strides */
    const float *x, *slope;
    float *y;
} nn_prelu_job_t;

static void nn_prelu_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_prelu_job_t *j = arg;
    const int outer = j->rank - 1;
    const int64_t inner = j->d[outer];
    const int contig = j->s[outer] != 0;
    for (int64_t row = begin; row < end; row++) {
        int64_t r = row, off = 0;
        for (int k = outer - 1; k >= 0; k--) {
            off += (r % j->d[k]) * j->s[k];
            r /= j->d[k];
        }
        const float *x = j->x + row * inner;
        float *y = j->y + row * inner;
        const float *s = j->slope + off;
        if (contig) {
            for (int64_t i = 0; i < inner; i++) {
                float v = x[i];
                float pos = v < 0.0f ? 0.0f : v, neg = v < 0.0f ? v : 0.0f;
                y[i] = pos + s[i] * neg;
            }
        } else {
            nn_leaky(j->isa, y, x, inner, s[0]);
        }
    }
}

NN_PARAMS_FIT(nn_tensor_t);

int nn_op_prelu_prepare(nn_call_t *call, nn_error_t *err)
{
    if (call->n_in != 2 || !call->in[0] || !call->in[1])
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects 2 inputs (X, slope), got %d", call->n_in);
    int rc = nn_unary_shape(call, err, 2);
    if (rc)
        return rc;
    if ((rc = nn_need_float(call, 1, "slope", err)))
        return rc;
    const nn_tensor_t *x = call->in[0], *s = call->in[1];
    /* Before opset 7 a 1-D slope of length C applies per channel (axis 1);
     * from 7 on it broadcasts numpy-style. Exec reads the slope through
     * this effective shape. */
    nn_tensor_t *eff = NN_PARAMS(call, nn_tensor_t);
    *eff = *s;
    if (call->node->opset < 7 && s->rank == 1 && x->rank >= 2 &&
        s->dims[0] == x->dims[1]) {
        int64_t dims[NN_MAX_RANK];
        dims[0] = s->dims[0];
        for (int i = 1; i < x->rank - 1; i++)
            dims[i] = 1;
        nn_tensor_set_shape(eff, s->dtype, x->rank - 1, dims);
    }
    s = eff;
    nn_tensor_t b;
    b.dtype = NN_DTYPE_FLOAT;
    int ok = nn_broadcast_shape(x, s, &b) == 0 && b.rank == x->rank;
    for (int i = 0; ok && i < x->rank; i++)
        ok = b.dims[i] == x->dims[i];
    if (!ok) {
        char sx[96], ss[96];
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "slope %s does not broadcast to X %s",
                            nn_shape_str(s, ss, sizeof ss),
                            nn_shape_str(x, sx, sizeof sx));
    }
    call->flops = (double)nn_tensor_elems(x);
    return 0;
}

void nn_op_prelu_exec(const nn_call_t *call)
{
    const nn_tensor_t *x = call->in[0];
    const nn_tensor_t *sl = NN_PARAMS(call, const nn_tensor_t);
    int64_t total = nn_tensor_elems(x);
    if (total <= 0)
        return;
    nn_prelu_job_t j = {.isa = call->isa, .x = x->data, .slope = call->in[1]->data,
                        .y = call->out[0]->data};
    /* slope strides aligned right against X, 0 on broadcast axes */
    int64_t st[NN_MAX_RANK], acc = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        int si = i - (x->rank - sl->rank);
        int64_t d = si >= 0 ? sl->dims[si] : 1;
        st[i] = d == 1 ? 0 : acc;
        acc *= d;
    }
    int r = 0; /* collapse, innermost first */
    for (int i = x->rank - 1; i >= 0; i--) {
        if (x->dims[i] == 1)
            continue;
        if (r > 0 && st[i] == j.s[r - 1] * j.d[r - 1]) {
            j.d[r - 1] *= x->dims[i];
            continue;
        }
        j.d[r] = x->dims[i];
        j.s[r] = st[i];
        r++;
    }
    if (r == 0) {
        j.d[0] = 1;
        j.s[0] = 0;
        r = 1;
    }
    for (int i = 0; i < r / 2; i++) {
        int k = r - 1 - i;
        int64_t t = j.d[i];
        j.d[i] = j.d[k], j.d[k] = t;
        t = j.s[i], j.s[i] = j.s[k], j.s[k] = t;
    }
    j.rank = r;
    int64_t rows = total / j.d[r - 1];
    if (total < NN_UN_PAR_MIN || rows < 2)
        nn_prelu_chunk(&j, 0, rows, 0);
    else
        nn_pool_for(call->pool, rows, nn_prelu_chunk, &j);
}
