/* Pooling: MaxPool, AveragePool (1-D and 2-D spatial), GlobalAveragePool,
 * GlobalMaxPool. A 1-D pool runs as a 2-D one with height 1. Work is split
 * over (image, channel) planes. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/avx512.h"
#include "nn/dwlanes.h"
#include "nn/error.h"
#include "nn/isa_dispatch.h"
#include "nn/op.h"
#include "nn/ops/args.h"

/* gcc's -O2 cost model ("very cheap") refuses loops of unknown trip count;
 * these are the hot row loops, so ask for the usual one. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#define NN_POOL_MAX_ATTR (1 << 20)

typedef struct nn_pool_params {
    int is_max;
    int count_include_pad;
    int64_t planes;                /* N * C */
    int64_t N, C;
    int lanes;                     /* small max pools: channels in lanes */
    int64_t ih, iw, oh, ow;        /* 1-D: ih = oh = 1 */
    int64_t kh, kw, sh, sw, dh, dw;
    int64_t ph, pw;                /* leading pads */
    int64_t eh, ew;                /* padded extent end: in + trailing pad */
    int global;                    /* one window, the whole map: a global pool */
} nn_pool_params_t;
NN_PARAMS_FIT(nn_pool_params_t);

typedef struct nn_pool_job {
    const void *p; /* nn_pool_params_t or nn_gpool_params_t */
    const float *x;
    float *y;
    nn_isa_t isa;
} nn_pool_job_t;

/* One output element with every bounds check: borders and padding. */
static float nn_pool_one(const nn_pool_params_t *p, const float *x, int64_t oh,
                         int64_t ow)
{
    int64_t h0 = oh * p->sh - p->ph, w0 = ow * p->sw - p->pw;
    float acc = p->is_max ? -INFINITY : 0.0f;
    int64_t valid = 0, inpad = 0;
    for (int64_t kh = 0; kh < p->kh; kh++) {
        int64_t h = h0 + kh * p->dh;
        if (h >= p->eh)
            break;
        if (h < 0 || h >= p->ih) {
            /* count padded positions for count_include_pad */
            for (int64_t kw = 0; kw < p->kw; kw++)
                inpad += w0 + kw * p->dw < p->ew;
            continue;
        }
        const float *row = x + h * p->iw;
        for (int64_t kw = 0; kw < p->kw; kw++) {
            int64_t w = w0 + kw * p->dw;
            if (w < 0 || w >= p->iw) {
                inpad += w < p->ew;
                continue;
            }
            float v = row[w];
            if (p->is_max)
                acc = v > acc || v != v ? v : acc;
            else
                acc += v;
            valid++;
        }
    }
    if (!p->is_max) {
        int64_t div = p->count_include_pad ? valid + inpad : valid;
        acc = div > 0 ? acc / (float)div : 0.0f;
    }
    return acc;
}

/* Longest padded row (and output row) the separable path handles; longer
 * ones take nn_pool_one for every element. */
#define NN_POOL_ROWBUF 2048

/* y[i] = max(y[i], r[i * stride]), NaN propagating like nn_pool_one. The
 * constant strides let the compiler vectorise. */
static inline void nn_max_row(float *restrict y, const float *restrict r,
                              int64_t n, int64_t stride)
{
#define NN_MAX_(v, a) ((v) > (a) || (v) != (v) ? (v) : (a))
    if (stride == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = NN_MAX_(r[i], y[i]);
    } else if (stride == 2) {
        for (int64_t i = 0; i < n; i++)
            y[i] = NN_MAX_(r[2 * i], y[i]);
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] = NN_MAX_(r[i * stride], y[i]);
    }
#undef NN_MAX_
}

static inline void nn_sum_row(float *restrict y, const float *restrict r,
                              int64_t n, int64_t stride)
{
    if (stride == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] += r[i];
    } else if (stride == 2) {
        for (int64_t i = 0; i < n; i++)
            y[i] += r[2 * i];
    } else {
        for (int64_t i = 0; i < n; i++)
            y[i] += r[i * stride];
    }
}

static inline void nn_copy_row(float *restrict y, const float *restrict r,
                               int64_t n, int64_t stride)
{
    if (stride == 1)
        memcpy(y, r, (size_t)n * sizeof *y);
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = r[i * stride];
}

/* Number of window taps along one axis that count for an average: inside
 * the input, or (count_include_pad) inside the padded extent. */
static int64_t nn_pool_taps(int64_t start, int64_t k, int64_t d, int64_t in,
                            int64_t end, int include_pad)
{
    int64_t c = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t h = start + i * d;
        c += include_pad ? h < end : h >= 0 && h < in;
    }
    return c;
}

/* Separable pooling of planes [begin, end): per output row, the kernel's
 * input rows are reduced into a row buffer padded with the identity
 * (-inf or 0), then the buffer is reduced along the row. No bounds checks
 * in the inner loops; an average divides by the product of the per-axis
 * tap counts (a window is a rectangle). */
NN_ISA_BODY void nn_pool_planes_body(const nn_pool_params_t *p, const float *xs,
                                     float *ys, int64_t begin, int64_t end)
{
    float buf[NN_POOL_ROWBUF], inv_w[NN_POOL_ROWBUF];
    const int is_max = p->is_max;
    const float ident = is_max ? -INFINITY : 0.0f;
    const int64_t iw = p->iw, ow = p->ow, pw = p->pw;
    const int64_t used = (ow - 1) * p->sw + (p->kw - 1) * p->dw + 1;
    const int64_t len = used > pw + iw ? used : pw + iw;
    for (int64_t i = 0; i < pw; i++)
        buf[i] = ident;
    for (int64_t i = pw + iw; i < len; i++)
        buf[i] = ident;
    if (!is_max)
        for (int64_t o = 0; o < ow; o++) {
            int64_t c = nn_pool_taps(o * p->sw - pw, p->kw, p->dw, iw, p->ew,
                                     p->count_include_pad);
            inv_w[o] = c > 0 ? 1.0f / (float)c : 0.0f;
        }
    float *mid = buf + pw;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = xs + pl * p->ih * iw;
        float *y = ys + pl * p->oh * ow;
        for (int64_t oh = 0; oh < p->oh; oh++, y += ow) {
            /* vertical: valid kernel rows into mid[0, iw) */
            int64_t h0 = oh * p->sh - p->ph, rows = 0;
            for (int64_t k = 0; k < p->kh; k++) {
                int64_t h = h0 + k * p->dh;
                if (h < 0 || h >= p->ih)
                    continue;
                if (rows++ == 0)
                    memcpy(mid, x + h * iw, (size_t)iw * sizeof *mid);
                else if (is_max)
                    nn_max_row(mid, x + h * iw, iw, 1);
                else
                    nn_sum_row(mid, x + h * iw, iw, 1);
            }
            if (rows == 0)
                for (int64_t i = 0; i < iw; i++)
                    mid[i] = ident;
            /* horizontal */
            nn_copy_row(y, buf, ow, p->sw);
            for (int64_t k = 1; k < p->kw; k++) {
                if (is_max)
                    nn_max_row(y, buf + k * p->dw, ow, p->sw);
                else
                    nn_sum_row(y, buf + k * p->dw, ow, p->sw);
            }
            if (!is_max) {
                int64_t c = nn_pool_taps(h0, p->kh, p->dh, p->ih, p->eh,
                                         p->count_include_pad);
                float inv_h = c > 0 ? 1.0f / (float)c : 0.0f;
                for (int64_t o = 0; o < ow; o++)
                    y[o] *= inv_h * inv_w[o];
            }
        }
    }
}
/* The hot loops, per instruction set (isa_dispatch.h). */
NN_ISA_DISPATCH(nn_pool_planes,
                (const nn_pool_params_t *p, const float *xs, float *ys, int64_t begin,
                 int64_t end),
                (p, xs, ys, begin, end))

/* ---- stride-1 "same" max pools on small planes ----------------------------
 * GoogLeNet's 3x3 pools on 28x28 to 7x7 maps: row by row, each row is a
 * short vector with a scalar tail, and the calls cost more than the
 * maxima. Here the plane is one array: the vertical maxima are a few
 * whole-plane loops (row r's neighbour is r +- W floats away), the
 * horizontal ones too (neighbours +- 1), which are wrong only in the
 * first and last pw columns of each row, then recomputed there. */

#define NN_POOL_PLANE_MAX 4096 /* floats of a plane this path takes */

static int nn_pool_plane_suits(const nn_pool_params_t *p)
{
    return p->is_max && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 &&
           p->kh == 2 * p->ph + 1 && p->kw == 2 * p->pw + 1 && p->oh == p->ih &&
           p->ow == p->iw && p->ih * p->iw <= NN_POOL_PLANE_MAX && p->pw < p->iw;
}

#define NN_MAXF(v, a) ((v) > (a) || (v) != (v) ? (v) : (a)) /* NaN wins */

NN_ISA_BODY void nn_pool_plane_max_body(const nn_pool_params_t *p, const float *xs,
                                        float *ys, int64_t begin, int64_t end)
{
    float v[NN_POOL_PLANE_MAX];
    const int64_t W = p->iw, n = p->ih * p->iw;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = xs + pl * n;
        float *y = ys + pl * n;
        memcpy(v, x, (size_t)n * sizeof *v);
        for (int64_t d = 1; d <= p->ph; d++) { /* rows above and below */
            const int64_t o = d * W;
            for (int64_t i = o; i < n; i++)
                v[i] = NN_MAXF(x[i - o], v[i]);
            for (int64_t i = 0; i + o < n; i++)
                v[i] = NN_MAXF(x[i + o], v[i]);
        }
        memcpy(y, v, (size_t)n * sizeof *y);
        for (int64_t d = 1; d <= p->pw; d++) { /* columns left and right */
            for (int64_t i = d; i < n; i++)
                y[i] = NN_MAXF(v[i - d], y[i]);
            for (int64_t i = 0; i + d < n; i++)
                y[i] = NN_MAXF(v[i + d], y[i]);
        }
        for (int64_t r = 0; p->pw > 0 && r < p->ih; r++) { /* the border columns */
            const float *vr = v + r * W;
            float *yr = y + r * W;
            for (int64_t c = 0; c < W; c++) {
                if (c >= p->pw && c < W - p->pw) { /* the loops got these right */
                    c = W - p->pw - 1;
                    continue;
                }
                int64_t lo = c - p->pw < 0 ? 0 : c - p->pw;
                int64_t hi = c + p->pw >= W ? W - 1 : c + p->pw;
                float m = vr[lo];
                for (int64_t k = lo + 1; k <= hi; k++)
                    m = NN_MAXF(vr[k], m);
                yr[c] = m;
            }
        }
    }
}
NN_ISA_DISPATCH(nn_pool_plane_max,
                (const nn_pool_params_t *p, const float *xs, float *ys, int64_t begin,
                 int64_t end),
                (p, xs, ys, begin, end))

static int nn_pool_separable(const nn_pool_params_t *p)
{
    int64_t used = (p->ow - 1) * p->sw + (p->kw - 1) * p->dw + 1;
    return used <= NN_POOL_ROWBUF && p->pw + p->iw <= NN_POOL_ROWBUF &&
           p->ow <= NN_POOL_ROWBUF;
}

/* ---- stride-2 pools along the row, AVX-512 ------------------------------------
 * ResNet's, GoogLeNet's and SqueezeNet's 3x3 stride-2 max pools and
 * DenseNet's 2x2 stride-2 average pools. The separable loop above reads
 * every second float of the row buffer, which the compiler does one lane
 * at a time; here the buffer is read as whole vectors and split into its
 * even and odd columns by one permute each, so output o's window, columns
 * 2o, 2o + 1 and 2o + 2, is three vectors' maxima (or sums). */

#define NN_POOL_S2_ROWS 16 /* window rows this path takes */

static int nn_pool_s2_suits(nn_isa_t isa, const nn_pool_params_t *p)
{
#if defined(__x86_64__)
    return isa >= NN_ISA_AVX512 && p->sw == 2 && p->dw == 1 && p->kw <= 3 &&
           p->kh <= NN_POOL_S2_ROWS && nn_pool_separable(p);
#else
    (void)isa, (void)p;
    return 0;
#endif
}

#if defined(__x86_64__)

static NN_AVX512 void nn_pool_s2_avx512(const nn_pool_params_t *p, const float *xs,
                                        float *ys, int64_t begin, int64_t end)
{
    /* The padded row: pw identities, the iw column maxima (or sums), then
     * identities as far as the last vector of outputs reads. */
    float buf[2 * NN_POOL_ROWBUF + 64] __attribute__((aligned(64)));
    float inv_w[NN_POOL_ROWBUF + 16];
    const int is_max = p->is_max;
    const int64_t iw = p->iw, ow = p->ow, pw = p->pw, kw = p->kw;
    const int64_t reach = 2 * ((ow + 15) / 16 * 16) + 2;
    const int64_t len = reach > pw + iw ? reach : pw + iw;
    const __m512 ident = _mm512_set1_ps(is_max ? -INFINITY : 0.0f);
    for (int64_t i = 0; i < len; i += 16)
        _mm512_storeu_ps(buf + i, ident);
    if (!is_max)
        for (int64_t o = 0; o < ow; o++) {
            int64_t c = nn_pool_taps(o * 2 - pw, kw, 1, iw, p->ew, p->count_include_pad);
            inv_w[o] = c > 0 ? 1.0f / (float)c : 0.0f;
        }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,
                                          6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    float *mid = buf + pw;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = xs + pl * p->ih * iw;
        float *y = ys + pl * p->oh * ow;
        for (int64_t oh = 0; oh < p->oh; oh++, y += ow) {
            /* vertical: the window's rows inside the input into mid */
            const float *rows[NN_POOL_S2_ROWS];
            int n = 0;
            const int64_t h0 = oh * p->sh - p->ph;
            for (int64_t k = 0; k < p->kh; k++) {
                const int64_t h = h0 + k * p->dh;
                if (h >= 0 && h < p->ih)
                    rows[n++] = x + h * iw;
            }
            for (int64_t i = 0; i < iw; i += 16) {
                const __mmask16 m = iw - i >= 16 ? 0xffff : (__mmask16)((1u << (iw - i)) - 1);
                __m512 v = ident;
                for (int r = 0; r < n; r++) {
                    const __m512 u = _mm512_maskz_loadu_ps(m, rows[r] + i);
                    v = is_max ? (r ? nn_max_nan(v, u) : u) : _mm512_add_ps(v, u);
                }
                _mm512_mask_storeu_ps(mid + i, m, v);
            }
            float inv_h = 1.0f;
            if (!is_max) {
                int64_t c = nn_pool_taps(h0, p->kh, p->dh, p->ih, p->eh, p->count_include_pad);
                inv_h = c > 0 ? 1.0f / (float)c : 0.0f;
            }
            /* horizontal: even and odd columns of 32 floats, and the even
             * ones of the 32 two floats on */
            for (int64_t o = 0; o < ow; o += 16) {
                const float *s = buf + 2 * o;
                const __m512 a = _mm512_loadu_ps(s), b = _mm512_loadu_ps(s + 16);
                __m512 r = _mm512_permutex2var_ps(a, even, b);
                if (kw >= 2) {
                    const __m512 q = _mm512_permutex2var_ps(a, odd, b);
                    r = is_max ? nn_max_nan(r, q) : _mm512_add_ps(r, q);
                }
                if (kw >= 3) {
                    const __m512 q = _mm512_permutex2var_ps(_mm512_loadu_ps(s + 2), even,
                                                            _mm512_loadu_ps(s + 18));
                    r = is_max ? nn_max_nan(r, q) : _mm512_add_ps(r, q);
                }
                const __mmask16 m = ow - o >= 16 ? 0xffff : (__mmask16)((1u << (ow - o)) - 1);
                if (!is_max)
                    r = _mm512_mul_ps(r, _mm512_mul_ps(_mm512_set1_ps(inv_h),
                                                       _mm512_maskz_loadu_ps(m, inv_w + o)));
                _mm512_mask_storeu_ps(y + o, m, r);
            }
        }
    }
}

#endif

static void nn_pool_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_pool_job_t *j = arg;
    const nn_pool_params_t *p = j->p;
    if (nn_pool_plane_suits(p)) {
        nn_pool_plane_max(j->isa, p, j->x, j->y, begin, end);
        return;
    }
#if defined(__x86_64__)
    if (nn_pool_s2_suits(j->isa, p)) {
        nn_pool_s2_avx512(p, j->x, j->y, begin, end);
        return;
    }
#endif
    if (nn_pool_separable(p)) {
        nn_pool_planes(j->isa, p, j->x, j->y, begin, end);
        return;
    }
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = j->x + pl * p->ih * p->iw;
        float *y = j->y + pl * p->oh * p->ow;
        for (int64_t oh = 0; oh < p->oh; oh++)
            for (int64_t ow = 0; ow < p->ow; ow++)
                y[oh * p->ow + ow] = nn_pool_one(p, x, oh, ow);
    }
}

/* ---- small max pools, channels in the lanes (dwlanes.h) ----------------------- */

static nn_dwconv_geom_t nn_pool_geom(const nn_pool_params_t *p)
{
    return (nn_dwconv_geom_t){.H = (int)p->ih, .W = (int)p->iw, .Ho = (int)p->oh,
                              .Wo = (int)p->ow, .kh = (int)p->kh, .kw = (int)p->kw,
                              .sh = (int)p->sh, .sw = (int)p->sw, .dh = (int)p->dh,
                              .dw = (int)p->dw, .pt = (int)p->ph, .pl = (int)p->pw};
}

/* Floats of one block's scratch where a max pool takes the lanes kernel,
 * 0 where not (maps must fit int, as dwlanes' limits make them). */
static size_t nn_pool_lanes_init(nn_dwlanes_t *d, nn_isa_t isa, const nn_pool_params_t *p)
{
    if (!p->is_max || p->ih > 4096 || p->iw > 4096 || p->kh > 64 || p->kw > 64 ||
        p->sh > 64 || p->sw > 64 || p->dh > 64 || p->dw > 64 || p->ph > 64 || p->pw > 64)
        return 0;
    const nn_dwconv_geom_t g = nn_pool_geom(p);
    const int s1 = p->sh == 1 && p->sw == 1;
    return nn_dwlanes_init(d, isa, &g, s1 ? NN_DWLANES_POOL_S1_OUTPUTS : NN_DWLANES_MAX_OUTPUTS);
}

typedef struct nn_pool_lanes_job {
    const nn_pool_params_t *p;
    const nn_dwlanes_t *d;
    const float *x;
    float *y, *scratch;
} nn_pool_lanes_job_t;

/* Items are blocks of 16 channels of one image, image-major (as the
 * depthwise lanes: it % N is the image). */
static void nn_pool_lanes_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_pool_lanes_job_t *j = arg;
    const nn_pool_params_t *p = j->p;
    const size_t HW = (size_t)(p->ih * p->iw), P = (size_t)(p->oh * p->ow);
    float *scratch = j->scratch + (size_t)begin * j->d->floats;
    nn_dwlanes_clear(j->d, scratch, -INFINITY);
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it % p->N, c0 = it / p->N * NN_DWLANES_BLOCK;
        const int cn = (int)(p->C - c0 < NN_DWLANES_BLOCK ? p->C - c0 : NN_DWLANES_BLOCK);
        const size_t plane = (size_t)(n * p->C + c0);
        nn_dwlanes_max_block(j->d, cn, j->x + plane * HW, j->y + plane * P, scratch);
    }
}

static void nn_pool_run(const nn_call_t *call)
{
    const nn_pool_params_t *p =
        (const nn_pool_params_t *)(const void *)call->params;
    if (p->lanes) {
        nn_dwlanes_t d;
        const int64_t blocks = p->N * ((p->C + NN_DWLANES_BLOCK - 1) / NN_DWLANES_BLOCK);
        /* (prepare sized the scratch for the kernels its isa has) */
        const size_t floats = nn_pool_lanes_init(&d, call->isa, p);
        if (floats > 0 && floats * (size_t)blocks * sizeof(float) <= call->scratch_bytes) {
            nn_pool_lanes_job_t j = {p, &d, call->in[0]->data, call->out[0]->data,
                                     call->scratch};
            nn_pool_for(call->pool, blocks, nn_pool_lanes_chunk, &j);
            return;
        }
    }
    nn_pool_job_t j = {p, call->in[0]->data, call->out[0]->data, call->isa};
    double work = (double)p->planes * (double)(p->ih * p->iw);
    if (work < 16384 || p->planes < 2)
        nn_pool_chunk(&j, 0, p->planes, 0);
    else
        nn_pool_for(call->pool, p->planes, nn_pool_chunk, &j);
}

static int nn_pool_check_input(nn_call_t *call, nn_error_t *err)
{
    if (call->n_in != 1 || !call->in[0])
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "expects 1 input, got %d", call->n_in);
    if (call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "expects 1 output");
    return nn_need_float(call, 0, "X", err);
}

/* Reads an ints attribute of exactly `want` values into v, or fills v with
 * def when absent. */
static int nn_pool_ints(const nn_call_t *call, nn_error_t *err,
                        const char *name, int want, int64_t def, int64_t *v)
{
    const int64_t *a;
    int n = nn_attr_ints(call->node, name, &a);
    if (n < 0) {
        for (int i = 0; i < want; i++)
            v[i] = def;
        return 0;
    }
    if (n != want)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "%s must have %d values, got %d", name, want, n);
    for (int i = 0; i < want; i++)
        v[i] = a[i];
    return 0;
}

static int nn_pool_prepare(nn_call_t *call, nn_error_t *err, int is_max)
{
    int rc = nn_pool_check_input(call, err);
    if (rc)
        return rc;
    const nn_node_t *node = call->node;
    int opset = node ? node->opset : 17;
    const nn_tensor_t *x = call->in[0];
    if (x->rank == 5)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "3-D pooling is not supported (input rank 5)");
    if (x->rank != 3 && x->rank != 4)
        return nn_node_fail(err, node, NN_EINVAL,
                            "input must be [N,C,W] or [N,C,H,W], got rank %d",
                            x->rank);
    const int nd = x->rank - 2;
    if (is_max && call->n_out > 1 && call->out[1] &&
        (!node || node->n_outputs < 2 || node->outputs[1] >= 0))
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "the Indices output is not supported (int64 "
                            "indices)");
    if (nn_attr_int(node, "storage_order", 0) != 0)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "storage_order %lld is not supported",
                            (long long)nn_attr_int(node, "storage_order", 0));

    int64_t k[2], s[2], d[2], pads[4];
    if (nn_attr_ints(node, "kernel_shape", NULL) < 0)
        return nn_node_fail(err, node, NN_EINVAL,
                            "kernel_shape attribute is required");
    if ((rc = nn_pool_ints(call, err, "kernel_shape", nd, 1, k)) ||
        (rc = nn_pool_ints(call, err, "strides", nd, 1, s)) ||
        (rc = nn_pool_ints(call, err, "dilations", nd, 1, d)) ||
        (rc = nn_pool_ints(call, err, "pads", 2 * nd, 0, pads)))
        return rc;
    int has_dil = 0;
    for (int i = 0; i < nd; i++) {
        /* The upper bound keeps the shape arithmetic below from
         * overflowing on a hostile model; no real pool comes close. */
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > NN_POOL_MAX_ATTR ||
            s[i] > NN_POOL_MAX_ATTR || d[i] > NN_POOL_MAX_ATTR)
            return nn_node_fail(err, node, NN_EINVAL,
                                "kernel_shape, strides and dilations must be "
                                "in 1..%d", NN_POOL_MAX_ATTR);
        if (pads[i] < 0 || pads[i + nd] < 0 || pads[i] > NN_POOL_MAX_ATTR ||
            pads[i + nd] > NN_POOL_MAX_ATTR)
            return nn_node_fail(err, node, NN_EINVAL,
                                "pads must be in 0..%d", NN_POOL_MAX_ATTR);
        has_dil |= d[i] != 1;
    }
    if (has_dil && !is_max)
        return nn_node_fail(err, node, NN_EUNSUPPORTED,
                            "dilations are not supported by AveragePool "
                            "before opset 19");
    if (has_dil && opset < 10)
        return nn_node_fail(err, node, NN_EINVAL,
                            "dilations require opset 10, model has %d", opset);
    int64_t ceil_mode = nn_attr_int(node, "ceil_mode", 0);
    if (ceil_mode != 0 && ceil_mode != 1)
        return nn_node_fail(err, node, NN_EINVAL,
                            "ceil_mode must be 0 or 1, got %lld",
                            (long long)ceil_mode);
    if (ceil_mode && opset < 10)
        return nn_node_fail(err, node, NN_EINVAL,
                            "ceil_mode requires opset 10, model has %d", opset);
    int64_t cip = is_max ? 0 : nn_attr_int(node, "count_include_pad", 0);
    if (cip != 0 && cip != 1)
        return nn_node_fail(err, node, NN_EINVAL,
                            "count_include_pad must be 0 or 1, got %lld",
                            (long long)cip);
    const char *ap = nn_attr_string(node, "auto_pad", "NOTSET");
    int mode; /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        mode = 0;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        mode = 1;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        mode = 2;
    else if (strcmp(ap, "VALID") == 0)
        mode = 3;
    else
        return nn_node_fail(err, node, NN_EINVAL,
                            "auto_pad '%s' is not supported", ap);

    int64_t out[2], pb[2], pe[2];
    for (int i = 0; i < nd; i++) {
        int64_t in = x->dims[2 + i];
        int64_t ek = (k[i] - 1) * d[i] + 1; /* effective kernel extent */
        if (mode == 1 || mode == 2) {
            out[i] = (in + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + ek - in;
            if (total < 0)
                total = 0;
            pb[i] = mode == 1 ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
        } else {
            pb[i] = mode == 3 ? 0 : pads[i];
            pe[i] = mode == 3 ? 0 : pads[i + nd];
            int64_t span = in + pb[i] + pe[i] - ek;
            if (span < 0) {
                char sx[96];
                return nn_node_fail(err, node, NN_ESHAPE,
                                    "kernel extent %lld exceeds the padded "
                                    "input %s",
                                    (long long)ek,
                                    nn_shape_str(x, sx, sizeof sx));
            }
            if (ceil_mode && mode == 0) {
                out[i] = (span + s[i] - 1) / s[i] + 1;
                /* the last window must start inside the input or the
                 * leading padding (PyTorch/onnxruntime rule) */
                if ((out[i] - 1) * s[i] >= in + pb[i])
                    out[i]--;
            } else {
                out[i] = span / s[i] + 1;
            }
        }
        if (out[i] < 1)
            return nn_node_fail(err, node, NN_ESHAPE,
                                "output size %lld along spatial axis %d",
                                (long long)out[i], i);
    }

    nn_pool_params_t *p = NN_PARAMS(call, nn_pool_params_t);
    memset(p, 0, sizeof *p);
    p->is_max = is_max;
    p->count_include_pad = (int)cip;
    p->planes = x->dims[0] * x->dims[1];
    p->N = x->dims[0];
    p->C = x->dims[1];
    int h = nd - 2; /* index of the height axis; -1 for 1-D */
    int w = nd - 1;
    p->ih = h >= 0 ? x->dims[2 + h] : 1;
    p->oh = h >= 0 ? out[h] : 1;
    p->kh = h >= 0 ? k[h] : 1;
    p->sh = h >= 0 ? s[h] : 1;
    p->dh = h >= 0 ? d[h] : 1;
    p->ph = h >= 0 ? pb[h] : 0;
    p->eh = h >= 0 ? x->dims[2 + h] + pe[h] : 1;
    p->iw = x->dims[2 + w];
    p->ow = out[w];
    p->kw = k[w];
    p->sw = s[w];
    p->dw = d[w];
    p->pw = pb[w];
    p->ew = x->dims[2 + w] + pe[w];

    int64_t od[4] = {x->dims[0], x->dims[1], out[0], nd > 1 ? out[1] : 0};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, x->rank, od);
    call->flops = (double)p->planes * (double)(p->oh * p->ow) *
                  (double)(p->kh * p->kw);
    /* A window over the whole map, unpadded (a 7x7 average pool ending a
     * converted MobileNet): the global pool's plane loop, 5x faster than
     * the windows'. */
    p->global = p->oh == 1 && p->ow == 1 && p->kh == p->ih && p->kw == p->iw && p->ph == 0 &&
                p->pw == 0 && p->eh == p->ih && p->ew == p->iw && p->dh == 1 && p->dw == 1;
    nn_dwlanes_t dl;
    const size_t lanes = p->global ? 0 : nn_pool_lanes_init(&dl, call->isa, p);
    if (lanes > 0 && p->planes > 0) {
        p->lanes = 1;
        const size_t blocks = (size_t)(p->N * ((p->C + NN_DWLANES_BLOCK - 1) / NN_DWLANES_BLOCK));
        call->scratch_bytes = blocks * lanes * sizeof(float);
    }
    return 0;
}

/* ---- global pools --------------------------------------------------------- */

typedef struct nn_gpool_params {
    int is_max;
    int64_t planes, size; /* N*C planes of `size` elements */
} nn_gpool_params_t;
NN_PARAMS_FIT(nn_gpool_params_t);

static void nn_gpool_run(const nn_call_t *call, const nn_gpool_params_t *p);

/* MaxPool and AveragePool: a window over the whole map runs as the global
 * pool. */
static void nn_pool_exec(const nn_call_t *call)
{
    const nn_pool_params_t *p = NN_PARAMS(call, const nn_pool_params_t);
    if (p->global) {
        const nn_gpool_params_t g = {.is_max = p->is_max, .planes = p->planes,
                                     .size = p->ih * p->iw};
        nn_gpool_run(call, &g);
        return;
    }
    nn_pool_run(call);
}

int nn_op_maxpool_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_pool_prepare(call, err, 1);
}
void nn_op_maxpool_exec(const nn_call_t *call) { nn_pool_exec(call); }

int nn_op_avgpool_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_pool_prepare(call, err, 0);
}
void nn_op_avgpool_exec(const nn_call_t *call) { nn_pool_exec(call); }

/* Sum and max of a plane with NN_GPOOL_LANES independent accumulators:
 * a single one would chain every add on the previous (the compiler may not
 * reassociate float sums), this way they form vectors. */
#define NN_GPOOL_LANES 16

NN_ISA_BODY float nn_plane_sum_body(const float *x, int64_t n)
{
    float acc[NN_GPOOL_LANES] = {0};
    int64_t i = 0;
    for (; i + NN_GPOOL_LANES <= n; i += NN_GPOOL_LANES)
        for (int l = 0; l < NN_GPOOL_LANES; l++)
            acc[l] += x[i + l];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i];
    for (int l = 0; l < NN_GPOOL_LANES; l++)
        s += acc[l];
    return s;
}
NN_ISA_DISPATCH_RET(float, nn_plane_sum, (const float *x, int64_t n), (x, n))

NN_ISA_BODY float nn_plane_max_body(const float *x, int64_t n)
{
#define NN_MAX_(v, a) ((v) > (a) || (v) != (v) ? (v) : (a))
    float acc[NN_GPOOL_LANES];
    for (int l = 0; l < NN_GPOOL_LANES; l++)
        acc[l] = -INFINITY;
    int64_t i = 0;
    for (; i + NN_GPOOL_LANES <= n; i += NN_GPOOL_LANES)
        for (int l = 0; l < NN_GPOOL_LANES; l++)
            acc[l] = NN_MAX_(x[i + l], acc[l]);
    float m = -INFINITY;
    for (; i < n; i++)
        m = NN_MAX_(x[i], m);
    for (int l = 0; l < NN_GPOOL_LANES; l++)
        m = NN_MAX_(acc[l], m);
    return m;
#undef NN_MAX_
}
NN_ISA_DISPATCH_RET(float, nn_plane_max, (const float *x, int64_t n), (x, n))

static void nn_gpool_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_pool_job_t *j = arg;
    const nn_gpool_params_t *p = j->p;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *x = j->x + pl * p->size;
        if (p->is_max)
            j->y[pl] = nn_plane_max(j->isa, x, p->size);
        else
            j->y[pl] = p->size > 0 ? nn_plane_sum(j->isa, x, p->size) / (float)p->size
                                   : 0.0f;
    }
}

static int nn_gpool_prepare(nn_call_t *call, nn_error_t *err, int is_max)
{
    int rc = nn_pool_check_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *x = call->in[0];
    if (x->rank < 3)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "input must have rank >= 3, got %d", x->rank);
    nn_gpool_params_t *p = NN_PARAMS(call, nn_gpool_params_t);
    p->is_max = is_max;
    p->planes = x->dims[0] * x->dims[1];
    p->size = 1;
    int64_t od[NN_MAX_RANK];
    od[0] = x->dims[0];
    od[1] = x->dims[1];
    for (int i = 2; i < x->rank; i++) {
        p->size *= x->dims[i];
        od[i] = 1;
    }
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, x->rank, od);
    call->flops = (double)p->planes * (double)p->size;
    return 0;
}

static void nn_gpool_run(const nn_call_t *call, const nn_gpool_params_t *p)
{
    nn_pool_job_t j = {p, call->in[0]->data, call->out[0]->data, call->isa};
    if ((double)p->planes * (double)p->size < 32768 || p->planes < 2)
        nn_gpool_chunk(&j, 0, p->planes, 0);
    else
        nn_pool_for(call->pool, p->planes, nn_gpool_chunk, &j);
}

int nn_op_globalavgpool_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_gpool_prepare(call, err, 0);
}
void nn_op_globalavgpool_exec(const nn_call_t *call)
{
    nn_gpool_run(call, NN_PARAMS(call, const nn_gpool_params_t));
}

int nn_op_globalmaxpool_prepare(nn_call_t *call, nn_error_t *err)
{
    return nn_gpool_prepare(call, err, 1);
}
void nn_op_globalmaxpool_exec(const nn_call_t *call)
{
    nn_gpool_run(call, NN_PARAMS(call, const nn_gpool_params_t));
}
