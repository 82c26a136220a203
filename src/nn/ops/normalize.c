/* Reductions and normalisations: ReduceMean, Softmax, LogSoftmax, LRN,
 * LayerNormalization. float32 only.
 *
 * All of them are "rows" problems: an outer set of independent slices, each
 * normalised on its own, so work is split over the outer dimension with the
 * pool when there is enough of it. Sums are accumulated in double so that
 * long rows (ReduceMean over a whole feature map, LayerNorm over a wide
 * hidden size) do not lose precision. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/error.h"
#include "nn/isa_dispatch.h"
#include "nn/op.h"
#include "nn/ops/args.h"

/* Below this many elements the pool's hand-off costs more than it saves. */
#define NN_NORM_PAR_ELEMS (32 * 1024)

static void nn_norm_for(const nn_call_t *call, int64_t work, int64_t n,
                        nn_pool_fn fn, void *arg)
{
    nn_pool_for(work >= NN_NORM_PAR_ELEMS ? call->pool : NULL, n, fn, arg);
}

static int64_t nn_prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= d[i];
    return p;
}

/* ---- ReduceMean ------------------------------------------------------------
 * Each output element is the mean of a sub-box of the input: the kept axes
 * pick the box's origin, the reduced axes span it. Both sets are coalesced
 * (adjacent axes of the same kind merge), so reducing trailing axes is one
 * contiguous sum per output element. */

typedef struct {
    int nk, nr;                       /* kept / reduced axes after merging */
    int64_t kd[NN_MAX_RANK], ks[NN_MAX_RANK];
    int64_t rd[NN_MAX_RANK], rs[NN_MAX_RANK];
    int64_t count;                    /* elements averaged per output */
    int64_t nout;
} nn_rmean_params_t;
NN_PARAMS_FIT(nn_rmean_params_t);

int nn_op_reducemean_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_float(call, 0, "X", err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    int red[NN_MAX_RANK] = {0};
    const int64_t *axes;
    int n = nn_attr_ints(call->node, "axes", &axes);
    if (call->node->opset >= 18 && call->n_in > 1 && call->in[1])
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "axes as an input (opset 18) are not supported");
    if (n <= 0) {
        for (int i = 0; i < r; i++)
            red[i] = 1;
    } else if ((rc = nn_axes_mask(call, axes, n, r, red, NULL, err))) {
        return rc;
    }
    int keep = (int)nn_attr_int(call->node, "keepdims", 1);
    int64_t od[NN_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < r; i++) {
        if (!red[i])
            od[orank++] = in->dims[i];
        else if (keep)
            od[orank++] = 1;
    }
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, orank, od);

    nn_rmean_params_t *p = NN_PARAMS(call, nn_rmean_params_t);
    memset(p, 0, sizeof *p);
    int64_t st = 1, s[NN_MAX_RANK];
    for (int i = r - 1; i >= 0; i--) {
        s[i] = st;
        st *= in->dims[i];
    }
    p->count = 1;
    p->nout = 1;
    int prev = -1; /* kind of the last axis appended: 0 kept, 1 reduced */
    for (int i = 0; i < r; i++) {
        int64_t d = in->dims[i];
        if (red[i])
            p->count *= d;
        else
            p->nout *= d;
        if (d == 1)
            continue;
        if (red[i]) {
            if (prev == 1) {
                p->rd[p->nr - 1] *= d;
                p->rs[p->nr - 1] = s[i];
            } else {
                p->rd[p->nr] = d;
                p->rs[p->nr++] = s[i];
            }
        } else {
            if (prev == 0) {
                p->kd[p->nk - 1] *= d;
                p->ks[p->nk - 1] = s[i];
            } else {
                p->kd[p->nk] = d;
                p->ks[p->nk++] = s[i];
            }
        }
        prev = red[i];
    }
    if (p->nr == 0) { /* nothing (or only size-1 axes) to reduce */
        p->rd[0] = 1;
        p->rs[0] = 1;
        p->nr = 1;
    }
    call->flops = (double)nn_tensor_elems(in);
    return 0;
}

typedef struct {
    const nn_rmean_params_t *p;
    const float *x;
    float *y;
} nn_rmean_job_t;

static void nn_rmean_run(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_rmean_job_t *job = arg;
    const nn_rmean_params_t *p = job->p;
    int nr = p->nr;
    int64_t len = p->rd[nr - 1], step = p->rs[nr - 1];
    int64_t rows = p->count / (len ? len : 1);
    for (int64_t o = begin; o < end; o++) {
        int64_t base = 0, rem = o;
        for (int i = p->nk - 1; i >= 0; i--) {
            base += (rem % p->kd[i]) * p->ks[i];
            rem /= p->kd[i];
        }
        double total = 0;
        int64_t idx[NN_MAX_RANK] = {0};
        int64_t off = base;
        for (int64_t row = 0; row < rows && len > 0; row++) {
            const float *x = job->x + off;
            float acc = 0;
            if (step == 1)
                for (int64_t k = 0; k < len; k++)
                    acc += x[k];
            else
                for (int64_t k = 0; k < len; k++)
                    acc += x[k * step];
            total += acc;
            for (int i = nr - 2; i >= 0; i--) {
                off += p->rs[i];
                if (++idx[i] < p->rd[i])
                    break;
                off -= idx[i] * p->rs[i];
                idx[i] = 0;
            }
        }
        job->y[o] = (float)(total / (double)p->count);
    }
}

void nn_op_reducemean_exec(const nn_call_t *call)
{
    const nn_rmean_params_t *p = NN_PARAMS(call, const nn_rmean_params_t);
    nn_rmean_job_t job = {p, call->in[0]->data, call->out[0]->data};
    nn_norm_for(call, p->nout * p->count, p->nout, nn_rmean_run, &job);
}

/* ---- Softmax / LogSoftmax --------------------------------------------------
 * View the input as [outer, n, inner] and normalise along n. Before opset
 * 13, n is everything from `axis` on and inner is 1; from 13, n is the one
 * axis. With inner > 1 the columns are processed in blocks so that the
 * running max and sum live on the stack and rows are read contiguously. */

#define NN_SMX_BLOCK 64

typedef struct {
    int64_t outer, n, inner;
    int log;
} nn_softmax_params_t;
NN_PARAMS_FIT(nn_softmax_params_t);

static int nn_softmax_common(nn_call_t *call, nn_error_t *err, int is_log)
{
    int rc = nn_need_float(call, 0, "X", err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    int old = call->node->opset < 13;
    int64_t a = nn_attr_int(call->node, "axis", old ? 1 : -1);
    /* a scalar has no axis; treat it as one row of one element */
    int axis = r == 0 ? 0 : nn_axis(a, r);
    if (r > 0 && axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)a, r);
    nn_softmax_params_t *p = NN_PARAMS(call, nn_softmax_params_t);
    p->outer = nn_prod(in->dims, 0, axis);
    if (r == 0) {
        p->n = 1;
        p->inner = 1;
    } else if (old) {
        p->n = nn_prod(in->dims, axis, r);
        p->inner = 1;
    } else {
        p->n = in->dims[axis];
        p->inner = nn_prod(in->dims, axis + 1, r);
    }
    p->log = is_log;
    nn_tensor_like(call->out[0], in);
    call->flops = 4.0 * (double)nn_tensor_elems(in);
    return 0;
}

typedef struct {
    const nn_softmax_params_t *p;
    const float *x;
    float *y;
    int64_t nblk;
} nn_softmax_job_t;

static void nn_softmax_row(const float *x, float *y, int64_t n, int is_log)
{
    float m = -INFINITY;
    for (int64_t k = 0; k < n; k++)
        m = x[k] > m ? x[k] : m;
    double sum = 0;
    if (is_log) {
        for (int64_t k = 0; k < n; k++)
            sum += expf(x[k] - m);
        /* (x - m) - log(sum): keeps precision when |x| is large */
        float ls = (float)log(sum);
        for (int64_t k = 0; k < n; k++)
            y[k] = (x[k] - m) - ls;
    } else {
        for (int64_t k = 0; k < n; k++) {
            float e = expf(x[k] - m);
            y[k] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int64_t k = 0; k < n; k++)
            y[k] *= inv;
    }
}

static void nn_softmax_run(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_softmax_job_t *job = arg;
    const nn_softmax_params_t *p = job->p;
    int64_t n = p->n, inner = p->inner;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / job->nblk;
        if (inner == 1) {
            nn_softmax_row(job->x + o * n, job->y + o * n, n, p->log);
            continue;
        }
        int64_t c0 = (it % job->nblk) * NN_SMX_BLOCK;
        int64_t b = inner - c0 < NN_SMX_BLOCK ? inner - c0 : NN_SMX_BLOCK;
        const float *x = job->x + o * n * inner + c0;
        float *y = job->y + o * n * inner + c0;
        float m[NN_SMX_BLOCK], s[NN_SMX_BLOCK];
        for (int64_t j = 0; j < b; j++) {
            m[j] = -INFINITY;
            s[j] = 0;
        }
        for (int64_t k = 0; k < n; k++)
            for (int64_t j = 0; j < b; j++)
                m[j] = x[k * inner + j] > m[j] ? x[k * inner + j] : m[j];
        if (p->log) {
            for (int64_t k = 0; k < n; k++)
                for (int64_t j = 0; j < b; j++)
                    s[j] += expf(x[k * inner + j] - m[j]);
            for (int64_t j = 0; j < b; j++)
                s[j] = logf(s[j]);
            for (int64_t k = 0; k < n; k++)
                for (int64_t j = 0; j < b; j++)
                    y[k * inner + j] = (x[k * inner + j] - m[j]) - s[j];
        } else {
            for (int64_t k = 0; k < n; k++)
                for (int64_t j = 0; j < b; j++) {
                    float e = expf(x[k * inner + j] - m[j]);
                    y[k * inner + j] = e;
                    s[j] += e;
                }
            for (int64_t j = 0; j < b; j++)
                s[j] = 1.0f / s[j];
            for (int64_t k = 0; k < n; k++)
                for (int64_t j = 0; j < b; j++)
                    y[k * inner + j] *= s[j];
        }
    }
}

static void nn_softmax_exec_common(const nn_call_t *call)
{
    const nn_softmax_params_t *p = NN_PARAMS(call, const nn_softmax_params_t);
    if (p->n == 0 || p->inner == 0)
        return;
    nn_softmax_job_t job = {p, call->in[0]->data, call->out[0]->data, 1};
    if (p->inner > 1)
        job.nblk = (p->inner + NN_SMX_BLOCK - 1) / NN_SMX_BLOCK;
    nn_norm_for(call, p->outer * p->n * p->inner, p->outer * job.nblk,
                nn_softmax_run, &job);
}

int nn_op_softmax_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_softmax_common(call, err, 0);
}

void nn_op_softmax_exec(const nn_call_t *call) { nn_softmax_exec_common(call); }

int nn_op_logsoftmax_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_softmax_common(call, err, 1);
}

void nn_op_logsoftmax_exec(const nn_call_t *call)
{
    nn_softmax_exec_common(call);
}

/* ---- LRN -------------------------------------------------------------------
 * Across channels: y = x / (bias + alpha/size * sum_{window} x^2)^beta with
 * the window [c - floor((size-1)/2), c + ceil((size-1)/2)] cut to [0, C). */

typedef struct {
    int64_t n, c, plane;
    int64_t lo, hi; /* window offsets below / above c */
    float alpha_n, beta, bias;
} nn_lrn_params_t;
NN_PARAMS_FIT(nn_lrn_params_t);

int nn_op_lrn_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_float(call, 0, "X", err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    if (in->rank < 2)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "input must be [N,C,...], got rank %d", in->rank);
    const nn_attr_t *sz = nn_attr_find(call->node, "size");
    int64_t size = nn_attr_int(call->node, "size", 0);
    if (!sz || size < 1 || size > (1 << 20))
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "attribute 'size' must be an integer in 1..%d",
                            1 << 20);
    nn_lrn_params_t *p = NN_PARAMS(call, nn_lrn_params_t);
    p->n = in->dims[0];
    p->c = in->dims[1];
    p->plane = nn_prod(in->dims, 2, in->rank);
    p->lo = (size - 1) / 2;
    p->hi = size - 1 - p->lo; /* ceil((size-1)/2) */
    p->alpha_n = nn_attr_float(call->node, "alpha", 1e-4f) / (float)size;
    p->beta = nn_attr_float(call->node, "beta", 0.75f);
    p->bias = nn_attr_float(call->node, "bias", 1.0f);
    nn_tensor_like(call->out[0], in);
    call->flops = (double)nn_tensor_elems(in) * (double)(2 * size + 4);
    return 0;
}

typedef struct {
    const nn_lrn_params_t *p;
    const float *x;
    float *y;
} nn_lrn_job_t;

static void nn_lrn_run(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_lrn_job_t *job = arg;
    const nn_lrn_params_t *p = job->p;
    int64_t hw = p->plane;
    for (int64_t it = begin; it < end; it++) {
        int64_t b = it / p->c, c = it % p->c;
        int64_t c0 = c - p->lo < 0 ? 0 : c - p->lo;
        int64_t c1 = c + p->hi > p->c - 1 ? p->c - 1 : c + p->hi;
        const float *xb = job->x + b * p->c * hw;
        float *y = job->y + it * hw;
        /* y holds the square sum first, then the result */
        memset(y, 0, (size_t)hw * sizeof *y);
        for (int64_t cc = c0; cc <= c1; cc++) {
            const float *xc = xb + cc * hw;
            for (int64_t k = 0; k < hw; k++)
                y[k] += xc[k] * xc[k];
        }
        const float *x = xb + c * hw;
        for (int64_t k = 0; k < hw; k++)
            y[k] = x[k] * powf(p->bias + p->alpha_n * y[k], -p->beta);
    }
}

void nn_op_lrn_exec(const nn_call_t *call)
{
    const nn_lrn_params_t *p = NN_PARAMS(call, const nn_lrn_params_t);
    nn_lrn_job_t job = {p, call->in[0]->data, call->out[0]->data};
    nn_norm_for(call, p->n * p->c * p->plane, p->n * p->c, nn_lrn_run, &job);
}

/* ---- LayerNormalization (opset 17) ------------------------------------------
 * Rows = X viewed as [prod(dims[:axis]), prod(dims[axis:])]; Scale and B
 * are either one value per row element or a single value. The optional
 * outputs Mean and InvStdDev hold one value per row, shaped like X with the
 * normalised axes [axis, rank) set to 1. */

typedef struct {
    int64_t rows, n;
    float eps;
    int scale_one, bias_one; /* broadcast a single value */
} nn_lnorm_params_t;
NN_PARAMS_FIT(nn_lnorm_params_t);

int nn_op_layernorm_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_float(call, 0, "X", err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    if (call->n_out < 1 || call->n_out > 3)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects 1 to 3 outputs, got %d", call->n_out);
    int64_t stash = nn_attr_int(call->node, "stash_type", 1);
    if (stash != 1)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "stash_type %lld is not supported",
                            (long long)stash);
    int64_t a = nn_attr_int(call->node, "axis", -1);
    int axis = nn_axis(a, in->rank);
    if (axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)a, in->rank);
    nn_lnorm_params_t *p = NN_PARAMS(call, nn_lnorm_params_t);
    p->rows = nn_prod(in->dims, 0, axis);
    p->n = nn_prod(in->dims, axis, in->rank);
    p->eps = nn_attr_float(call->node, "epsilon", 1e-5f);
    const char *names[2] = {"Scale", "B"};
    int *one[2] = {&p->scale_one, &p->bias_one};
    p->bias_one = 0;
    for (int k = 1; k <= 2; k++) {
        const nn_tensor_t *t = call->n_in > k ? call->in[k] : NULL;
        if (!t) {
            if (k == 1)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "input 'Scale' is missing");
            continue;
        }
        if ((rc = nn_need_float(call, k, names[k - 1], err)))
            return rc;
        int64_t e = nn_tensor_elems(t);
        char buf[128];
        if (e != p->n && e != 1)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "input '%s' %s does not match the %lld "
                                "normalised elements", names[k - 1],
                                nn_shape_str(t, buf, sizeof buf),
                                (long long)p->n);
        *one[k - 1] = e == 1 && p->n != 1;
    }
    nn_tensor_like(call->out[0], in);
    /* Mean and InvStdDev are always shaped, even when nothing reads them:
     * the planner still gives every output a buffer. */
    int64_t rdims[NN_MAX_RANK];
    for (int i = 0; i < in->rank; i++)
        rdims[i] = i < axis ? in->dims[i] : 1;
    for (int k = 1; k < call->n_out; k++)
        if (call->out[k])
            nn_tensor_set_shape(call->out[k], NN_DTYPE_FLOAT, in->rank, rdims);
    call->flops = 8.0 * (double)nn_tensor_elems(in);
    return 0;
}

typedef struct {
    const nn_lnorm_params_t *p;
    const float *x, *scale, *bias;
    float *y;
    float *mean, *inv_std; /* NULL when the output is omitted */
    nn_isa_t isa;
} nn_lnorm_job_t;

/* Lanes of the double sums: independent partial sums the compiler keeps
 * in vectors (one running sum would wait on each addition in turn). */
#define NN_LNORM_LANES 8

/* sum of x[k] (d == 0) or of (x[k] - m)^2 (d == 1), in double. */
static inline __attribute__((always_inline)) double nn_lnorm_sum(const float *x, int64_t n,
                                                                 double m, const int d)
{
    double lane[NN_LNORM_LANES] = {0};
    int64_t k = 0;
    for (; k + NN_LNORM_LANES <= n; k += NN_LNORM_LANES)
        for (int l = 0; l < NN_LNORM_LANES; l++) {
            double v = (double)x[k + l] - m;
            lane[l] += d ? v * v : v;
        }
    double s = 0;
    for (int l = 0; l < NN_LNORM_LANES; l++)
        s += lane[l];
    for (; k < n; k++) {
        double v = (double)x[k] - m;
        s += d ? v * v : v;
    }
    return s;
}

NN_ISA_BODY void nn_lnorm_rows_body(const nn_lnorm_job_t *job, int64_t begin, int64_t end)
{
    const nn_lnorm_params_t *p = job->p;
    const int64_t n = p->n;
    for (int64_t r = begin; r < end; r++) {
        const float *x = job->x + r * n;
        float *y = job->y + r * n;
        double mean = nn_lnorm_sum(x, n, 0.0, 0) / (double)n;
        double sq = nn_lnorm_sum(x, n, mean, 1);
        float inv = (float)(1.0 / sqrt(sq / (double)n + p->eps));
        float m = (float)mean;
        if (job->mean)
            job->mean[r] = m;
        if (job->inv_std)
            job->inv_std[r] = inv;
        if (!p->scale_one && job->bias && !p->bias_one) {
            const float *s = job->scale, *b = job->bias;
            for (int64_t k = 0; k < n; k++)
                y[k] = (x[k] - m) * inv * s[k] + b[k];
        } else {
            for (int64_t k = 0; k < n; k++) {
                float s = job->scale[p->scale_one ? 0 : k];
                float b = job->bias ? job->bias[p->bias_one ? 0 : k] : 0.0f;
                y[k] = (x[k] - m) * inv * s + b;
            }
        }
    }
}
NN_ISA_DISPATCH(nn_lnorm_rows, (const nn_lnorm_job_t *job, int64_t begin, int64_t end),
                (job, begin, end))

static void nn_lnorm_run(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_lnorm_job_t *job = arg;
    nn_lnorm_rows(job->isa, job, begin, end);
}

static float *nn_lnorm_out(const nn_call_t *call, int k)
{
    return call->n_out > k && call->out[k] ? call->out[k]->data : NULL;
}

void nn_op_layernorm_exec(const nn_call_t *call)
{
    const nn_lnorm_params_t *p = NN_PARAMS(call, const nn_lnorm_params_t);
    float *mean = nn_lnorm_out(call, 1), *inv_std = nn_lnorm_out(call, 2);
    if (p->n == 0) {
        /* Statistics of an empty row are 0/0, as in the reference. */
        for (int64_t r = 0; r < p->rows; r++) {
            if (mean)
                mean[r] = NAN;
            if (inv_std)
                inv_std[r] = NAN;
        }
        return;
    }
    const nn_tensor_t *b = call->n_in > 2 ? call->in[2] : NULL;
    nn_lnorm_job_t job = {p,    call->in[0]->data, call->in[1]->data,
                          b ? b->data : NULL,      call->out[0]->data,
                          mean, inv_std, call->isa};
    nn_norm_for(call, p->rows * p->n, p->rows, nn_lnorm_run, &job);
}
