/* Broadcasting binary ops: Add, Sub, Mul, Div, Pow and variadic Sum.
 *
 * Every case goes through one mechanism: the two operands are described by
 * strides over the output shape (0 on broadcast axes), size-1 axes are
 * dropped and adjacent axes merged while both operands stay contiguous
 * across them. What remains is an outer loop over "rows" and an inner
 * contiguous loop whose operand strides are 0 or 1, so the same-shape case
 * becomes one flat loop, a scalar operand a scalar-broadcast loop and
 * [N,C,H,W] op [1,C,1,1] a loop over H*W with a per-row constant. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/error.h"
#include "nn/isa_dispatch.h"
#include "nn/op.h"
#include "nn/ops/args.h"

/* gcc's -O2 cost model ("very cheap") refuses loops of unknown trip
 * count; these are the hot elementwise loops, so ask for the usual one. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

typedef enum {
    NN_BIN_ADD,
    NN_BIN_SUB,
    NN_BIN_MUL,
    NN_BIN_DIV,
    NN_BIN_POW,
} nn_bin_kind_t;

typedef struct nn_bin_params {
    nn_bin_kind_t kind;
    nn_dtype_t dtype;
    int b_to_float; /* Pow(float, int64): exponent converted into scratch */
    int b_legacy;   /* opset < 7 broadcast=1: B read through b_view */
    int b_rank;
    int64_t b_dims[NN_MAX_RANK];
} nn_bin_params_t;
NN_PARAMS_FIT(nn_bin_params_t);

/* Collapsed iteration space of one binary step. */
typedef struct nn_bcast {
    int rank; /* >= 1 */
    int64_t d[NN_MAX_RANK];
    int64_t sa[NN_MAX_RANK], sb[NN_MAX_RANK]; /* element strides */
} nn_bcast_t;

/* Strides of t aligned right against an output of rank `rank`, 0 on
 * broadcast axes. */
static void nn_bcast_strides(const nn_tensor_t *t, int rank, int64_t *s)
{
    int64_t st = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int ti = i - (rank - t->rank);
        int64_t d = ti >= 0 ? t->dims[ti] : 1;
        s[i] = d == 1 ? 0 : st;
        st *= d;
    }
}

static void nn_bcast_build(nn_bcast_t *bc, const nn_tensor_t *out,
                           const nn_tensor_t *a, const nn_tensor_t *b)
{
    int64_t sa[NN_MAX_RANK], sb[NN_MAX_RANK];
    nn_bcast_strides(a, out->rank, sa);
    nn_bcast_strides(b, out->rank, sb);
    int r = 0; /* collapsed axes, innermost first */
    for (int i = out->rank - 1; i >= 0; i--) {
        int64_t d = out->dims[i];
        if (d == 1)
            continue;
        if (r > 0 && sa[i] == bc->sa[r - 1] * bc->d[r - 1] &&
            sb[i] == bc->sb[r - 1] * bc->d[r - 1]) {
            bc->d[r - 1] *= d;
            continue;
        }
        bc->d[r] = d;
        bc->sa[r] = sa[i];
        bc->sb[r] = sb[i];
        r++;
    }
    if (r == 0) {
        bc->d[0] = 1;
        bc->sa[0] = bc->sb[0] = 0;
        r = 1;
    }
    /* reverse into outermost-first order */
    for (int i = 0; i < r / 2; i++) {
        int j = r - 1 - i;
        int64_t t;
        t = bc->d[i], bc->d[i] = bc->d[j], bc->d[j] = t;
        t = bc->sa[i], bc->sa[i] = bc->sa[j], bc->sa[j] = t;
        t = bc->sb[i], bc->sb[i] = bc->sb[j], bc->sb[j] = t;
    }
    bc->rank = r;
}

/* ---- inner kernels -------------------------------------------------------- */

/* One loop per operand layout: both contiguous, a scalar, b scalar. Written
 * as plain loops so the compiler vectorizes them. */
#define NN_BIN_LOOPS(T, EXPR)                                              \
    do {                                                                   \
        if (ca && cb) {                                                    \
            for (int64_t i = 0; i < n; i++) {                              \
                T x = a[i], y = b[i];                                      \
                o[i] = (EXPR);                                             \
            }                                                              \
        } else if (cb) {                                                   \
            const T x = a[0];                                              \
            for (int64_t i = 0; i < n; i++) {                              \
                T y = b[i];                                                \
                o[i] = (EXPR);                                             \
            }                                                              \
        } else if (ca) {                                                   \
            const T y = b[0];                                              \
            for (int64_t i = 0; i < n; i++) {                              \
                T x = a[i];                                                \
                o[i] = (EXPR);                                             \
            }                                                              \
        } else {                                                           \
            T x = a[0], y = b[0];                                          \
            T v = (EXPR);                                                  \
            for (int64_t i = 0; i < n; i++)                                \
                o[i] = v;                                                  \
        }                                                                  \
    } while (0)

/* Compiled for AVX2 + FMA and for the baseline, chosen by the call's isa
 * (isa_dispatch.h). */
NN_ISA_BODY void nn_bin_f32_body(nn_bin_kind_t kind, float *o, const float *a,
                                 const float *b, int64_t n, int ca, int cb)
{
    switch (kind) {
    case NN_BIN_ADD: NN_BIN_LOOPS(float, x + y); break;
    case NN_BIN_SUB: NN_BIN_LOOPS(float, x - y); break;
    case NN_BIN_MUL: NN_BIN_LOOPS(float, x * y); break;
    case NN_BIN_DIV: NN_BIN_LOOPS(float, x / y); break;
    case NN_BIN_POW:
        /* common exported exponents without powf */
        if (ca && !cb && b[0] == 2.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = a[i] * a[i];
        } else if (ca && !cb && b[0] == 0.5f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = sqrtf(a[i]);
        } else if (ca && !cb && b[0] == 1.0f) {
            for (int64_t i = 0; i < n; i++)
                o[i] = a[i];
        } else {
            NN_BIN_LOOPS(float, powf(x, y));
        }
        break;
    }
}
NN_ISA_DISPATCH(nn_bin_f32,
                (nn_bin_kind_t kind, float *o, const float *a, const float *b, int64_t n,
                 int ca, int cb),
                (kind, o, a, b, n, ca, cb))

/* Integer arithmetic wraps (through uint64) instead of overflowing, and
 * division by zero yields 0: a malformed model must not crash the engine. */
static inline int64_t nn_i64_add(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x + (uint64_t)y);
}
static inline int64_t nn_i64_sub(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x - (uint64_t)y);
}
static inline int64_t nn_i64_mul(int64_t x, int64_t y)
{
    return (int64_t)((uint64_t)x * (uint64_t)y);
}
static inline int64_t nn_i64_div(int64_t x, int64_t y)
{
    if (y == 0)
        return 0;
    if (y == -1) /* INT64_MIN / -1 traps */
        return (int64_t)(0 - (uint64_t)x);
    return x / y;
}

static void nn_bin_i64(nn_bin_kind_t kind, int64_t *o,
                       const int64_t *a, const int64_t *b, int64_t n, int ca,
                       int cb)
{
    switch (kind) {
    case NN_BIN_ADD: NN_BIN_LOOPS(int64_t, nn_i64_add(x, y)); break;
    case NN_BIN_SUB: NN_BIN_LOOPS(int64_t, nn_i64_sub(x, y)); break;
    case NN_BIN_MUL: NN_BIN_LOOPS(int64_t, nn_i64_mul(x, y)); break;
    case NN_BIN_DIV: NN_BIN_LOOPS(int64_t, nn_i64_div(x, y)); break;
    case NN_BIN_POW: break; /* refused in prepare */
    }
}

/* ---- driver --------------------------------------------------------------- */

typedef struct nn_bin_job {
    nn_isa_t isa;
    const nn_bcast_t *bc;
    nn_bin_kind_t kind;
    nn_dtype_t dtype;
    const void *a, *b;
    void *o;
    int64_t inner; /* bc->d[rank-1] */
    int64_t bpr;   /* blocks per row (splits long rows between threads) */
} nn_bin_job_t;

static void nn_bin_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_bin_job_t *j = arg;
    const nn_bcast_t *bc = j->bc;
    const int outer = bc->rank - 1;
    const int ca = bc->sa[outer] != 0, cb = bc->sb[outer] != 0;
    int64_t row = begin / j->bpr, blk = begin % j->bpr;
    int64_t idx[NN_MAX_RANK], offa = 0, offb = 0;
    {
        int64_t r = row;
        for (int k = outer - 1; k >= 0; k--) {
            idx[k] = r % bc->d[k];
            r /= bc->d[k];
            offa += idx[k] * bc->sa[k];
            offb += idx[k] * bc->sb[k];
        }
    }
    for (int64_t it = begin; it < end; it++) {
        int64_t lo = blk * j->inner / j->bpr;
        int64_t hi = (blk + 1) * j->inner / j->bpr;
        int64_t oo = row * j->inner + lo;
        int64_t ao = offa + (ca ? lo : 0), bo = offb + (cb ? lo : 0);
        if (j->dtype == NN_DTYPE_FLOAT)
            nn_bin_f32(j->isa, j->kind, (float *)j->o + oo, (const float *)j->a + ao,
                       (const float *)j->b + bo, hi - lo, ca, cb);
        else
            nn_bin_i64(j->kind, (int64_t *)j->o + oo,
                       (const int64_t *)j->a + ao, (const int64_t *)j->b + bo,
                       hi - lo, ca, cb);
        if (++blk < j->bpr)
            continue;
        blk = 0;
        row++;
        for (int k = outer - 1; k >= 0; k--) {
            offa += bc->sa[k];
            offb += bc->sb[k];
            if (++idx[k] < bc->d[k])
                break;
            offa -= bc->sa[k] * bc->d[k];
            offb -= bc->sb[k] * bc->d[k];
            idx[k] = 0;
        }
    }
}

/* Below this many elements a step runs on the calling thread only. */
#define NN_BIN_PAR_MIN 32768
#define NN_BIN_BLOCK 8192

/* out = a op b with broadcasting; out's shape is already the result's.
 * Runs on call's pool with call's isa. */
static void nn_bin_run(const nn_call_t *call, nn_bin_kind_t kind,
                       const nn_tensor_t *out, const nn_tensor_t *a,
                       const nn_tensor_t *b)
{
    nn_pool_t *pool = call->pool;
    int64_t total = nn_tensor_elems(out);
    if (total <= 0)
        return;
    nn_bcast_t bc;
    nn_bcast_build(&bc, out, a, b);
    nn_bin_job_t j = {
        .isa = call->isa, .bc = &bc, .kind = kind, .dtype = out->dtype,
        .a = a->data, .b = b->data, .o = out->data,
        .inner = bc.d[bc.rank - 1], .bpr = 1,
    };
    int64_t rows = total / j.inner;
    int threads = nn_pool_threads(pool);
    if (threads <= 1 || total < NN_BIN_PAR_MIN) {
        nn_bin_chunk(&j, 0, rows, 0);
        return;
    }
    /* few long rows (same-shape or scalar operands): split rows too */
    if (rows < 4 * threads && j.inner >= 2 * NN_BIN_BLOCK) {
        j.bpr = j.inner / NN_BIN_BLOCK;
        if (j.bpr > 256)
            j.bpr = 256;
    }
    nn_pool_for(pool, rows * j.bpr, nn_bin_chunk, &j);
}

/* ---- prepare -------------------------------------------------------------- */

static int nn_bin_prepare(nn_call_t *call, nn_error_t *err,
                          nn_bin_kind_t kind, int int64_ok)
{
    if (call->n_in != 2 || !call->in[0] || !call->in[1])
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects 2 inputs, got %d", call->n_in);
    if (call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "expects 1 output");
    const nn_tensor_t *a = call->in[0], *b = call->in[1];
    /* Opsets 1-6: B broadcasts only with broadcast=1, its dims aligned
     * with A's starting at `axis` (default: suffix, as numpy). Exec reads
     * B through the equivalent numpy shape (trailing 1s appended). */
    nn_tensor_t b_view = *b;
    int b_legacy = 0;
    if (call->node->opset < 7 && nn_attr_int(call->node, "broadcast", 0)) {
        int64_t axis = nn_attr_int(call->node, "axis", a->rank - b->rank);
        if (axis < 0)
            axis += a->rank;
        if (axis < 0 || axis + b->rank > a->rank)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "broadcast axis %lld does not fit ranks %d and %d",
                                (long long)axis, a->rank, b->rank);
        int64_t dims[NN_MAX_RANK];
        int rank = a->rank - (int)axis;
        for (int i = 0; i < rank; i++)
            dims[i] = i < b->rank ? b->dims[i] : 1;
        nn_tensor_set_shape(&b_view, b->dtype, rank, dims);
        b = &b_view;
        b_legacy = 1;
    } else if (call->node->opset < 7) {
        int same = a->rank == b->rank;
        for (int i = 0; same && i < a->rank; i++)
            same = a->dims[i] == b->dims[i];
        if (!same)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "before opset 7, inputs of different shapes "
                                "need broadcast=1");
    }
    int b_to_float = kind == NN_BIN_POW && a->dtype == NN_DTYPE_FLOAT &&
                     b->dtype == NN_DTYPE_INT64;
    if (kind == NN_BIN_POW && a->dtype != NN_DTYPE_FLOAT)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "Pow with a %s base is not supported (float32 "
                            "only)",
                            nn_dtype_name(a->dtype));
    if (a->dtype != b->dtype && !b_to_float)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "inputs must have the same type, got %s and %s",
                            nn_dtype_name(a->dtype), nn_dtype_name(b->dtype));
    if (a->dtype != NN_DTYPE_FLOAT &&
        !(int64_ok && a->dtype == NN_DTYPE_INT64))
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "inputs of type %s are not supported%s",
                            nn_dtype_name(a->dtype),
                            int64_ok ? " (float32 or int64 only)"
                                     : " (float32 only)");
    nn_tensor_t *o = call->out[0];
    o->dtype = a->dtype;
    if (nn_broadcast_shape(a, b, o) != 0) {
        char sa[96], sb[96];
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "shapes %s and %s do not broadcast",
                            nn_shape_str(a, sa, sizeof sa),
                            nn_shape_str(b, sb, sizeof sb));
    }
    o->dtype = a->dtype;
    nn_bin_params_t *p = NN_PARAMS(call, nn_bin_params_t);
    p->kind = kind;
    p->dtype = a->dtype;
    p->b_to_float = b_to_float;
    p->b_legacy = b_legacy;
    p->b_rank = b->rank;
    for (int i = 0; i < b->rank; i++)
        p->b_dims[i] = b->dims[i];
    if (b_to_float)
        call->scratch_bytes = (size_t)nn_tensor_elems(b) * sizeof(float);
    call->flops = (double)nn_tensor_elems(o) * (kind == NN_BIN_POW ? 10 : 1);
    return 0;
}

static void nn_bin_exec(const nn_call_t *call)
{
    const nn_bin_params_t *p = (const nn_bin_params_t *)(const void *)call->params;
    nn_tensor_t b_view = *call->in[1];
    if (p->b_legacy)
        nn_tensor_set_shape(&b_view, b_view.dtype, p->b_rank, p->b_dims);
    if (p->b_to_float) {
        nn_tensor_t b = b_view;
        const int64_t *src = b.data;
        float *dst = call->scratch;
        for (int64_t i = 0, n = nn_tensor_elems(&b); i < n; i++)
            dst[i] = (float)src[i];
        b.dtype = NN_DTYPE_FLOAT;
        b.data = dst;
        nn_bin_run(call, p->kind, call->out[0], call->in[0], &b);
        return;
    }
    nn_bin_run(call, p->kind, call->out[0], call->in[0], &b_view);
}

int nn_op_add_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_bin_prepare(call, err, NN_BIN_ADD, 1);
}
void nn_op_add_exec(const nn_call_t *call) { nn_bin_exec(call); }

int nn_op_sub_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_bin_prepare(call, err, NN_BIN_SUB, 1);
}
void nn_op_sub_exec(const nn_call_t *call) { nn_bin_exec(call); }

int nn_op_mul_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_bin_prepare(call, err, NN_BIN_MUL, 1);
}
void nn_op_mul_exec(const nn_call_t *call) { nn_bin_exec(call); }

int nn_op_div_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_bin_prepare(call, err, NN_BIN_DIV, 1);
}
void nn_op_div_exec(const nn_call_t *call) { nn_bin_exec(call); }

int nn_op_pow_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_bin_prepare(call, err, NN_BIN_POW, 0);
}
void nn_op_pow_exec(const nn_call_t *call) { nn_bin_exec(call); }

/* ---- Sum ------------------------------------------------------------------ */

int nn_op_sum_prepare(nn_call_t *call, nn_error_t *err)
{
    if (call->n_in < 1)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects at least 1 input");
    if (call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "expects 1 output");
    nn_tensor_t *o = call->out[0];
    for (int i = 0; i < call->n_in; i++) {
        const nn_tensor_t *t = call->in[i];
        int rc = nn_need_float(call, i, "data", err);
        if (rc)
            return rc;
        if (i == 0) {
            nn_tensor_like(o, t);
        } else if (nn_broadcast_shape(o, t, o) != 0) {
            char sa[96], sb[96];
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "input %d shape %s does not broadcast with %s",
                                i, nn_shape_str(t, sb, sizeof sb),
                                nn_shape_str(o, sa, sizeof sa));
        }
    }
    o->dtype = NN_DTYPE_FLOAT;
    call->flops = (double)nn_tensor_elems(o) * (call->n_in - 1);
    return 0;
}

void nn_op_sum_exec(const nn_call_t *call)
{
    const nn_tensor_t *o = call->out[0];
    if (call->n_in == 1) {
        /* same shape by construction */
        if (o->data != call->in[0]->data)
            memcpy(o->data, call->in[0]->data, nn_tensor_bytes(o));
        return;
    }
    nn_bin_run(call, NN_BIN_ADD, o, call->in[0], call->in[1]);
    for (int i = 2; i < call->n_in; i++)
        nn_bin_run(call, NN_BIN_ADD, o, o, call->in[i]);
}
