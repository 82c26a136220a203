/* Data movement and shape values: Flatten, Reshape, Transpose, Concat,
 * Split, Slice, Squeeze, Unsqueeze, Pad, Identity, Dropout, Shape, Gather,
 * Cast. (Constant nodes never reach an op: the loader makes them
 * constants.)
 *
 * Everything here works on float32 and int64 alike: copies move elements of
 * 4 or 8 bytes. Transpose and Slice share one mechanism: the output is
 * contiguous and the input is read at base + sum(i_d * stride_d); size-1
 * axes are dropped and axes that stay contiguous in the input are merged, so
 * what is left is either rows copied with memcpy, a strided gather, or (when
 * the two innermost output axes are swapped in the input, e.g. NCHW<->NHWC)
 * a tiled 2-D transpose. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/error.h"
#include "nn/op.h"
#include "nn/ops/args.h"

/* Work below this many bytes is not worth waking the pool for. */
#define NN_SHAPE_PAR_BYTES (256 * 1024)

/* Input 0 present with a float32 or int64 type. */
static int nn_need_data_input(const nn_call_t *call, nn_error_t *err)
{
    if (call->n_in < 1 || !call->in[0])
        return nn_node_fail(err, call->node, NN_EINVAL, "input 0 is missing");
    nn_dtype_t dt = call->in[0]->dtype;
    if (dt != NN_DTYPE_FLOAT && dt != NN_DTYPE_INT64)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "input 0 has unsupported type %s",
                            nn_dtype_name(dt));
    return 0;
}

/* An optional output is requested when present and not an empty name. */
static int nn_output_requested(const nn_call_t *call, int k)
{
    if (k >= call->n_out)
        return 0;
    if (call->node && call->node->outputs && k < call->node->n_outputs)
        return call->node->outputs[k] >= 0;
    return call->out[k] != NULL;
}

static void nn_pool_maybe(const nn_call_t *call, size_t bytes, int64_t n,
                          nn_pool_fn fn, void *arg)
{
    nn_pool_for(bytes >= NN_SHAPE_PAR_BYTES ? call->pool : NULL, n, fn, arg);
}

/* ---- views: Identity, Dropout, Flatten, Reshape, Squeeze, Unsqueeze ------ */

static void nn_view_exec(const nn_call_t *call)
{
    const nn_tensor_t *in = call->in[0];
    nn_tensor_t *out = call->out[0];
    if (out->data != in->data)
        memcpy(out->data, in->data, nn_tensor_bytes(out));
}

/* Output 0 = input 0 reshaped to dims. */
static int nn_view_prepare(nn_call_t *call, int rank, const int64_t *dims)
{
    nn_tensor_set_shape(call->out[0], call->in[0]->dtype, rank, dims);
    call->out_alias = 1;
    call->flops = 0;
    return 0;
}

int nn_op_identity_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    return nn_view_prepare(call, call->in[0]->rank, call->in[0]->dims);
}

void nn_op_identity_exec(const nn_call_t *call) { nn_view_exec(call); }

int nn_op_dropout_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    if (nn_output_requested(call, 1))
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "the mask output is not supported (inference "
                            "only)");
    /* opset >= 12: training_mode is input 2; inference needs it false */
    const nn_tensor_t *tm = call->n_in > 2 ? call->in[2] : NULL;
    if (tm) {
        if (!tm->data || nn_tensor_elems(tm) != 1)
            return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                                "training_mode must be a constant scalar");
        int on = tm->dtype == NN_DTYPE_FLOAT ? *(const float *)tm->data != 0
                 : tm->dtype == NN_DTYPE_INT64
                     ? *(const int64_t *)tm->data != 0
                     : 1;
        if (on)
            return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                                "training_mode is not supported");
    }
    return nn_view_prepare(call, call->in[0]->rank, call->in[0]->dims);
}

void nn_op_dropout_exec(const nn_call_t *call) { nn_view_exec(call); }

int nn_op_flatten_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int64_t a = nn_attr_int(call->node, "axis", 1);
    /* Flatten allows axis == rank; negatives count from rank, not rank+1 */
    int axis = a < -in->rank || a > in->rank ? -1
                                              : (int)(a < 0 ? a + in->rank : a);
    if (axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)a, in->rank);
    int64_t dims[2] = {1, 1};
    for (int i = 0; i < in->rank; i++)
        dims[i < axis ? 0 : 1] *= in->dims[i];
    return nn_view_prepare(call, 2, dims);
}

void nn_op_flatten_exec(const nn_call_t *call) { nn_view_exec(call); }

int nn_op_reshape_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int64_t shape[NN_MAX_RANK];
    int n;
    if (call->node->opset < 5) {
        const int64_t *v;
        n = nn_attr_ints(call->node, "shape", &v);
        if (n < 0)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "attribute 'shape' is missing");
        if (n > NN_MAX_RANK)
            return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                                "shape has %d dims, at most %d supported", n,
                                NN_MAX_RANK);
        memcpy(shape, v, (size_t)n * sizeof *v);
    } else {
        n = nn_const_ints(call, 1, shape, NN_MAX_RANK, "shape", err);
        if (n < 0)
            return n;
    }
    int allowzero = (int)nn_attr_int(call->node, "allowzero", 0);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (shape[i] == -1) {
            if (infer >= 0)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "shape has more than one -1");
            infer = i;
            continue;
        }
        if (shape[i] < -1)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "shape has invalid dim %lld",
                                (long long)shape[i]);
        if (shape[i] == 0 && !allowzero) {
            if (i >= in->rank)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "shape dim %d is 0 (copy) but the input "
                                    "has rank %d", i, in->rank);
            shape[i] = in->dims[i];
        }
        if (shape[i] > 0 && known > INT64_MAX / shape[i])
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "shape has too many elements");
        known *= shape[i];
    }
    int64_t total = nn_tensor_elems(in);
    char buf[128];
    if (infer >= 0) {
        if (known == 0 || total % known != 0)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "cannot reshape %s: %lld elements do not "
                                "divide by %lld",
                                nn_shape_str(in, buf, sizeof buf),
                                (long long)total, (long long)known);
        shape[infer] = total / known;
    } else if (known != total) {
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "cannot reshape %s (%lld elements) to %lld "
                            "elements",
                            nn_shape_str(in, buf, sizeof buf),
                            (long long)total, (long long)known);
    }
    return nn_view_prepare(call, n, shape);
}

void nn_op_reshape_exec(const nn_call_t *call) { nn_view_exec(call); }

/* Axes from the attribute (opset < 13) or from constant input 1. Returns the
 * count or -1 when absent; an error code goes to *rc (0 if none). */
static int nn_read_axes(nn_call_t *call, int64_t *axes, int *rc,
                        nn_error_t *err)
{
    *rc = 0;
    if (call->node->opset < 13) {
        const int64_t *v;
        int n = nn_attr_ints(call->node, "axes", &v);
        if (n < 0)
            return -1;
        if (n > NN_MAX_RANK) {
            *rc = nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                               "%d axes, at most %d supported", n,
                               NN_MAX_RANK);
            return 0;
        }
        memcpy(axes, v, (size_t)n * sizeof *v);
        return n;
    }
    if (call->n_in < 2 || !call->in[1])
        return -1;
    int n = nn_const_ints(call, 1, axes, NN_MAX_RANK, "axes", err);
    if (n < 0) {
        *rc = n;
        return 0;
    }
    return n;
}

int nn_op_squeeze_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int64_t axes[NN_MAX_RANK];
    int n = nn_read_axes(call, axes, &rc, err);
    if (rc)
        return rc;
    int drop[NN_MAX_RANK] = {0};
    if (n < 0) {
        for (int i = 0; i < in->rank; i++)
            drop[i] = in->dims[i] == 1;
    } else {
        if ((rc = nn_axes_mask(call, axes, n, in->rank, drop, NULL, err)))
            return rc;
        for (int a = 0; a < in->rank; a++) {
            if (drop[a] && in->dims[a] != 1)
                return nn_node_fail(err, call->node, NN_ESHAPE,
                                    "cannot squeeze axis %d of size %lld", a,
                                    (long long)in->dims[a]);
        }
    }
    int64_t dims[NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < in->rank; i++)
        if (!drop[i])
            dims[r++] = in->dims[i];
    return nn_view_prepare(call, r, dims);
}

void nn_op_squeeze_exec(const nn_call_t *call) { nn_view_exec(call); }

int nn_op_unsqueeze_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int64_t axes[NN_MAX_RANK];
    int n = nn_read_axes(call, axes, &rc, err);
    if (rc)
        return rc;
    if (n < 0)
        return nn_node_fail(err, call->node, NN_EINVAL, "axes are missing");
    int rank = in->rank + n;
    if (rank > NN_MAX_RANK)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "output rank %d exceeds %d", rank, NN_MAX_RANK);
    int ins[NN_MAX_RANK] = {0};
    if ((rc = nn_axes_mask(call, axes, n, rank, ins, NULL, err)))
        return rc;
    int64_t dims[NN_MAX_RANK];
    for (int i = 0, j = 0; i < rank; i++)
        dims[i] = ins[i] ? 1 : in->dims[j++];
    return nn_view_prepare(call, rank, dims);
}

void nn_op_unsqueeze_exec(const nn_call_t *call) { nn_view_exec(call); }

/* ---- strided copy (Transpose, Slice) ------------------------------------ */

typedef struct nn_strided {
    int rank;       /* >= 1 after nn_strided_build */
    int esize;      /* 4 or 8 */
    int tile;       /* the two innermost axes form a 2-D transpose */
    int64_t base;   /* element offset of the first element read */
    int64_t d[NN_MAX_RANK];
    int64_t s[NN_MAX_RANK]; /* input element strides per output axis */
    int64_t total;
} nn_strided_t;

/* Drops size-1 axes and merges output axes that are adjacent in the input. */
static void nn_strided_build(nn_strided_t *st, int rank, const int64_t *d,
                             const int64_t *s, int64_t base, int esize)
{
    st->esize = esize;
    st->base = base;
    st->total = 1;
    int r = 0;
    for (int i = 0; i < rank; i++) {
        st->total *= d[i];
        if (d[i] == 1)
            continue;
        if (r > 0 && st->s[r - 1] == s[i] * d[i]) {
            st->d[r - 1] *= d[i];
            st->s[r - 1] = s[i];
            continue;
        }
        st->d[r] = d[i];
        st->s[r] = s[i];
        r++;
    }
    if (r == 0) {
        st->d[0] = 1;
        st->s[0] = 1;
        r = 1;
    }
    st->rank = r;
    st->tile = r >= 2 && st->s[r - 2] == 1 && st->s[r - 1] != 1 &&
               st->d[r - 1] >= 4 && st->d[r - 2] >= 4;
}

typedef struct {
    const nn_strided_t *st;
    const unsigned char *src;
    unsigned char *dst;
    nn_isa_t isa;
} nn_strided_job_t;

#define NN_COPY_ELEMS(T, dst, src, n, stride)                              \
    do {                                                                   \
        T *d_ = (T *)(void *)(dst);                                        \
        const T *s_ = (const T *)(const void *)(src);                      \
        for (int64_t k_ = 0; k_ < (n); k_++)                               \
            d_[k_] = s_[k_ * (stride)];                                    \
    } while (0)

/* Rows = all output axes but the last. */
static void nn_strided_rows(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_strided_job_t *job = arg;
    const nn_strided_t *st = job->st;
    int r = st->rank;
    int64_t len = st->d[r - 1], step = st->s[r - 1];
    size_t es = (size_t)st->esize;
    int64_t idx[NN_MAX_RANK] = {0};
    int64_t off = st->base, rem = begin;
    for (int i = r - 2; i >= 0; i--) {
        idx[i] = rem % st->d[i];
        rem /= st->d[i];
        off += idx[i] * st->s[i];
    }
    unsigned char *dst = job->dst + (size_t)begin * (size_t)len * es;
    for (int64_t row = begin; row < end; row++) {
        const unsigned char *src = job->src + off * (int64_t)es;
        if (step == 1)
            memcpy(dst, src, (size_t)len * es);
        else if (es == 4)
            NN_COPY_ELEMS(uint32_t, dst, src, len, step);
        else
            NN_COPY_ELEMS(uint64_t, dst, src, len, step);
        dst += (size_t)len * es;
        for (int i = r - 2; i >= 0; i--) {
            off += st->s[i];
            if (++idx[i] < st->d[i])
                break;
            off -= idx[i] * st->s[i];
            idx[i] = 0;
        }
    }
}

#define NN_TILE 32

#if defined(__x86_64__)
#include <immintrin.h>

/* d[r * ld + c] = s[c * ls + r] for r, c < 8: eight row loads, the
 * 8x8 transpose in registers, eight row stores. */
__attribute__((target("avx2"))) static void nn_transpose8(const float *s, int64_t ls,
                                                         float *d, int64_t ld)
{
    __m256 r[8], t[8];
    for (int k = 0; k < 8; k++)
        r[k] = _mm256_loadu_ps(s + k * ls);
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
        r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xee);
        r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xee);
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(d + k * ld, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
        _mm256_storeu_ps(d + (k + 4) * ld, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
    }
}

/* A tile's rows [i0, i1) and columns [j0, j1) of 4-byte elements in 8x8
 * blocks; returns the first row left for the element copy. */
static int64_t nn_tile_blocks(const float *src, int64_t cs, float *dst, int64_t cols,
                              int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    int64_t i = i0;
    if (j1 - j0 < 8)
        return i0;
    for (; i + 8 <= i1; i += 8)
        for (int64_t j = j0; j + 8 <= j1; j += 8)
            nn_transpose8(src + i + j * cs, cs, dst + i * cols + j, cols);
    return i;
}
#endif

/* Items = (outer index, tile row): out[o][i][j] = in[base(o) + i + j*s]. */
static void nn_strided_tiles(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_strided_job_t *job = arg;
    const nn_strided_t *st = job->st;
    int r = st->rank;
    int64_t rows = st->d[r - 2], cols = st->d[r - 1], cs = st->s[r - 1];
    int64_t trows = (rows + NN_TILE - 1) / NN_TILE;
    size_t es = (size_t)st->esize;
    for (int64_t it = begin; it < end; it++) {
        int64_t o = it / trows, i0 = (it % trows) * NN_TILE;
        int64_t off = st->base, rem = o;
        for (int i = r - 3; i >= 0; i--) {
            off += (rem % st->d[i]) * st->s[i];
            rem /= st->d[i];
        }
        int64_t i1 = i0 + NN_TILE < rows ? i0 + NN_TILE : rows;
        for (int64_t j0 = 0; j0 < cols; j0 += NN_TILE) {
            int64_t j1 = j0 + NN_TILE < cols ? j0 + NN_TILE : cols;
            int64_t i = i0;
#if defined(__x86_64__)
            if (es == 4 && job->isa >= NN_ISA_AVX2) {
                /* Whole 8x8 blocks in registers; the columns past the
                 * last whole block, then the rows past it, one by one. */
                const float *sf = (const float *)(const void *)job->src + off;
                float *df = (float *)(void *)job->dst + (size_t)o * rows * cols;
                int64_t jb = j0 + (j1 - j0) / 8 * 8;
                int64_t ib = nn_tile_blocks(sf, cs, df, cols, i0, i1, j0, j1);
                for (int64_t ii = i0; ii < ib && jb < j1; ii++)
                    NN_COPY_ELEMS(uint32_t, df + ii * cols + jb, sf + ii + jb * cs,
                                  j1 - jb, cs);
                i = ib;
            }
#endif
            for (; i < i1; i++) {
                unsigned char *d =
                    job->dst + (size_t)((o * rows + i) * cols + j0) * es;
                const unsigned char *s =
                    job->src + (size_t)(off + i + j0 * cs) * es;
                if (es == 4)
                    NN_COPY_ELEMS(uint32_t, d, s, j1 - j0, cs);
                else
                    NN_COPY_ELEMS(uint64_t, d, s, j1 - j0, cs);
            }
        }
    }
}

static void nn_strided_exec(const nn_call_t *call, const nn_strided_t *st,
                            const void *src, void *dst)
{
    if (st->total == 0)
        return;
    nn_strided_job_t job = {st, src, dst, call->isa};
    size_t bytes = (size_t)st->total * (size_t)st->esize;
    int r = st->rank;
    if (st->tile) {
        int64_t outer = st->total / (st->d[r - 1] * st->d[r - 2]);
        int64_t trows = (st->d[r - 2] + NN_TILE - 1) / NN_TILE;
        nn_pool_maybe(call, bytes, outer * trows, nn_strided_tiles, &job);
    } else {
        nn_pool_maybe(call, bytes, st->total / st->d[r - 1], nn_strided_rows,
                      &job);
    }
}

static void nn_contig_strides(const nn_tensor_t *t, int64_t *s)
{
    int64_t st = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        s[i] = st;
        st *= t->dims[i];
    }
}

/* ---- Transpose ----------------------------------------------------------- */

int nn_op_transpose_prepare(nn_call_t *call, nn_error_t *err)
{
    NN_PARAMS_FIT(nn_strided_t);
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    int64_t perm[NN_MAX_RANK];
    const int64_t *pv;
    int n = nn_attr_ints(call->node, "perm", &pv);
    if (n < 0) {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    } else {
        if (n != r)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "perm has %d values for rank %d", n, r);
        int seen[NN_MAX_RANK] = {0};
        for (int i = 0; i < r; i++) {
            int a = nn_axis(pv[i], r);
            if (a < 0 || seen[a])
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "perm is not a permutation of 0..%d",
                                    r - 1);
            seen[a] = 1;
            perm[i] = a;
        }
    }
    int64_t s[NN_MAX_RANK] = {0}, od[NN_MAX_RANK], os[NN_MAX_RANK];
    nn_contig_strides(in, s);
    for (int i = 0; i < r; i++) {
        od[i] = in->dims[perm[i]];
        os[i] = s[perm[i]];
    }
    nn_tensor_set_shape(call->out[0], in->dtype, r, od);
    nn_strided_build(NN_PARAMS(call, nn_strided_t), r, od, os, 0,
                     (int)nn_dtype_size(in->dtype));
    call->flops = 0;
    return 0;
}

void nn_op_transpose_exec(const nn_call_t *call)
{
    nn_strided_exec(call, NN_PARAMS(call, const nn_strided_t),
                    call->in[0]->data, call->out[0]->data);
}

/* ---- Slice ---------------------------------------------------------------- */

/* ONNX clamping of one axis; returns the output length. */
static int64_t nn_slice_axis(int64_t dim, int64_t start, int64_t end,
                             int64_t step, int64_t *first)
{
    if (start < 0)
        start = start < -dim ? 0 : start + dim; /* no overflow at INT64_MIN */
    if (end < 0)
        end = end < -dim ? -1 : end + dim;
    if (step > 0) {
        if (start > dim)
            start = dim;
        if (end > dim)
            end = dim;
        if (end < 0)
            end = 0;
    } else {
        if (start > dim - 1)
            start = dim - 1;
        if (end > dim - 1)
            end = dim - 1;
    }
    *first = start;
    int64_t len;
    /* written so that a huge |step| cannot overflow */
    if (step > 0)
        len = end > start ? (end - start - 1) / step + 1 : 0;
    else
        len = start > end ? (start - end - 1) / (-step) + 1 : 0;
    return len;
}

int nn_op_slice_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    int64_t starts[NN_MAX_RANK], ends[NN_MAX_RANK], axes[NN_MAX_RANK],
        steps[NN_MAX_RANK];
    int n, na = -1, ns = -1;
    if (call->node->opset < 10) {
        const int64_t *v, *w;
        n = nn_attr_ints(call->node, "starts", &v);
        int ne = nn_attr_ints(call->node, "ends", &w);
        if (n < 0 || ne < 0)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "attributes 'starts' and 'ends' are required");
        if (n != ne)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "starts has %d values, ends %d", n, ne);
        if (n > NN_MAX_RANK)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "%d starts for rank %d", n, r);
        memcpy(starts, v, (size_t)n * sizeof *v);
        memcpy(ends, w, (size_t)n * sizeof *w);
        const int64_t *a;
        na = nn_attr_ints(call->node, "axes", &a);
        if (na > NN_MAX_RANK)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "%d axes for rank %d", na, r);
        if (na > 0)
            memcpy(axes, a, (size_t)na * sizeof *a);
    } else {
        n = nn_const_ints(call, 1, starts, NN_MAX_RANK, "starts", err);
        if (n < 0)
            return n;
        int ne = nn_const_ints(call, 2, ends, NN_MAX_RANK, "ends", err);
        if (ne < 0)
            return ne;
        if (n != ne)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "starts has %d values, ends %d", n, ne);
        if (call->n_in > 3 && call->in[3]) {
            na = nn_const_ints(call, 3, axes, NN_MAX_RANK, "axes", err);
            if (na < 0)
                return na;
        }
        if (call->n_in > 4 && call->in[4]) {
            ns = nn_const_ints(call, 4, steps, NN_MAX_RANK, "steps", err);
            if (ns < 0)
                return ns;
        }
    }
    if (na >= 0 && na != n)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axes has %d values, starts %d", na, n);
    if (ns >= 0 && ns != n)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "steps has %d values, starts %d", ns, n);
    if (na < 0) {
        if (n > r)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "%d starts for rank %d", n, r);
        for (int k = 0; k < n; k++)
            axes[k] = k;
    }
    if (ns < 0)
        for (int k = 0; k < n; k++)
            steps[k] = 1;

    int64_t first[NN_MAX_RANK], step[NN_MAX_RANK], od[NN_MAX_RANK];
    int seen[NN_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        first[i] = 0;
        step[i] = 1;
        od[i] = in->dims[i];
    }
    int ax[NN_MAX_RANK];
    if ((rc = nn_axes_mask(call, axes, n, r, seen, ax, err)))
        return rc;
    for (int k = 0; k < n; k++) {
        int a = ax[k];
        if (steps[k] == 0)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "step for axis %d is 0", a);
        if (steps[k] == INT64_MIN)
            steps[k] = INT64_MIN + 1; /* same result, -step stays finite */
        step[a] = steps[k];
        od[a] = nn_slice_axis(in->dims[a], starts[k], ends[k], steps[k],
                              &first[a]);
    }
    int64_t s[NN_MAX_RANK], os[NN_MAX_RANK], base = 0;
    nn_contig_strides(in, s);
    for (int i = 0; i < r; i++) {
        if (od[i] > 0)
            base += first[i] * s[i];
        /* at most one element (any |step| >= dim, e.g. INT64_MAX): the step
         * is irrelevant and multiplying it could overflow */
        os[i] = od[i] <= 1 ? s[i] : step[i] * s[i];
    }
    nn_tensor_set_shape(call->out[0], in->dtype, r, od);
    nn_strided_build(NN_PARAMS(call, nn_strided_t), r, od, os, base,
                     (int)nn_dtype_size(in->dtype));
    call->flops = 0;
    return 0;
}

void nn_op_slice_exec(const nn_call_t *call)
{
    nn_strided_exec(call, NN_PARAMS(call, const nn_strided_t),
                    call->in[0]->data, call->out[0]->data);
}

/* ---- Concat / Split ------------------------------------------------------- */

typedef struct {
    int axis;
    int64_t outer, inner; /* products before and after the axis */
    size_t esize;
} nn_cat_params_t;
NN_PARAMS_FIT(nn_cat_params_t);

int nn_op_concat_prepare(nn_call_t *call, nn_error_t *err)
{
    if (call->n_in < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "no inputs");
    for (int i = 0; i < call->n_in; i++)
        if (!call->in[i])
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "input %d is missing", i);
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *a = call->in[0];
    if (!nn_attr_find(call->node, "axis"))
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "attribute 'axis' is missing");
    int64_t av = nn_attr_int(call->node, "axis", 0);
    int axis = nn_axis(av, a->rank);
    if (axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)av, a->rank);
    int64_t dims[NN_MAX_RANK];
    memcpy(dims, a->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < call->n_in; i++) {
        const nn_tensor_t *t = call->in[i];
        char b1[128], b2[128];
        if (t->dtype != a->dtype || t->rank != a->rank)
            goto mismatch;
        for (int d = 0; d < a->rank; d++)
            if (d != axis && t->dims[d] != a->dims[d])
                goto mismatch;
        dims[axis] += t->dims[axis];
        continue;
    mismatch:
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "input %d %s does not match input 0 %s", i,
                            nn_shape_str(t, b1, sizeof b1),
                            nn_shape_str(a, b2, sizeof b2));
    }
    nn_tensor_set_shape(call->out[0], a->dtype, a->rank, dims);
    nn_cat_params_t *p = NN_PARAMS(call, nn_cat_params_t);
    p->axis = axis;
    p->outer = 1;
    p->inner = 1;
    for (int d = 0; d < axis; d++)
        p->outer *= dims[d];
    for (int d = axis + 1; d < a->rank; d++)
        p->inner *= dims[d];
    p->esize = nn_dtype_size(a->dtype);
    call->flops = 0;
    call->out_joins = p->outer == 1 ? 1 : axis == 1 ? 2 : 0;
    return 0;
}

/* Bytes a Concat item copies at most: the copies of large maps (SqueezeNet's
 * and DenseNet's 1 to 12 MB at batch 8) are cut so that every thread
 * copies, in order, a share of each image. */
#define NN_CAT_PIECE (64 * 1024)

typedef struct nn_cat_job {
    const nn_call_t *call;
    int64_t per_outer; /* items of one outer index: pieces of the inputs copied */
} nn_cat_job_t;

static size_t nn_cat_row(const nn_call_t *call, int i)
{
    const nn_cat_params_t *p = NN_PARAMS(call, const nn_cat_params_t);
    return (size_t)(call->in[i]->dims[p->axis] * p->inner) * p->esize;
}

/* Pieces input i, at bytes at of an output row, is copied in; none where
 * its producer wrote it in place (out_joins: the plan put it there, every
 * row of it). */
static int64_t nn_cat_pieces(const nn_call_t *call, int i, size_t at)
{
    if (call->out_joins && call->in[i]->data == (unsigned char *)call->out[0]->data + at)
        return 0;
    return (int64_t)((nn_cat_row(call, i) + NN_CAT_PIECE - 1) / NN_CAT_PIECE);
}

/* Items are (outer index, piece of an input's row). */
static void nn_cat_chunk(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_cat_job_t *j = arg;
    const nn_call_t *call = j->call;
    unsigned char *dst = call->out[0]->data;
    const nn_cat_params_t *p = NN_PARAMS(call, const nn_cat_params_t);
    const size_t orow = (size_t)(call->out[0]->dims[p->axis] * p->inner) * p->esize;
    for (int64_t it = begin; it < end; it++) {
        const int64_t o = it / j->per_outer;
        int64_t k = it % j->per_outer;
        size_t at = 0;
        for (int i = 0; i < call->n_in; i++) {
            const size_t row = nn_cat_row(call, i);
            const int64_t pieces = nn_cat_pieces(call, i, at);
            if (k < pieces) {
                const size_t off = (size_t)k * NN_CAT_PIECE;
                const size_t n = row - off < NN_CAT_PIECE ? row - off : NN_CAT_PIECE;
                memcpy(dst + (size_t)o * orow + at + off,
                       (const unsigned char *)call->in[i]->data + (size_t)o * row + off, n);
                break;
            }
            k -= pieces;
            at += row;
        }
    }
}

void nn_op_concat_exec(const nn_call_t *call)
{
    const nn_cat_params_t *p = NN_PARAMS(call, const nn_cat_params_t);
    nn_cat_job_t j = {call, 0};
    size_t at = 0, copied = 0;
    for (int i = 0; i < call->n_in; i++) {
        const int64_t pieces = nn_cat_pieces(call, i, at);
        j.per_outer += pieces;
        copied += pieces ? nn_cat_row(call, i) : 0;
        at += nn_cat_row(call, i);
    }
    nn_pool_maybe(call, (size_t)p->outer * copied, p->outer * j.per_outer, nn_cat_chunk, &j);
}

int nn_op_split_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int64_t a = nn_attr_int(call->node, "axis", 0);
    int axis = nn_axis(a, in->rank);
    if (axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)a, in->rank);
    int nout = call->n_out;
    if (nout < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "no outputs");
    for (int k = 0; k < nout; k++)
        if (!call->out[k] || !nn_output_requested(call, k))
            return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                                "output %d is omitted", k);
    enum { NN_SPLIT_MAX = 256 };
    int64_t buf[NN_SPLIT_MAX];
    const int64_t *sizes = NULL;
    int n = -1;
    if (call->node->opset < 13) {
        n = nn_attr_ints(call->node, "split", &sizes);
    } else if (call->n_in > 1 && call->in[1]) {
        n = nn_const_ints(call, 1, buf, NN_SPLIT_MAX, "split", err);
        if (n < 0)
            return n;
        sizes = buf;
    }
    int64_t dim = in->dims[axis];
    if (n >= 0) {
        if (n != nout)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "split has %d sizes for %d outputs", n, nout);
        int64_t sum = 0;
        for (int k = 0; k < n; k++) {
            if (sizes[k] < 0)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "split size %lld is negative",
                                    (long long)sizes[k]);
            sum += sizes[k];
        }
        if (sum != dim)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "split sizes sum to %lld, axis %d has %lld",
                                (long long)sum, axis, (long long)dim);
    } else if (dim % nout != 0) {
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "axis %d of size %lld does not split into %d "
                            "equal parts", axis, (long long)dim, nout);
    }
    for (int k = 0; k < nout; k++) {
        int64_t dims[NN_MAX_RANK];
        memcpy(dims, in->dims, sizeof dims);
        dims[axis] = n >= 0 ? sizes[k] : dim / nout;
        nn_tensor_set_shape(call->out[k], in->dtype, in->rank, dims);
    }
    nn_cat_params_t *p = NN_PARAMS(call, nn_cat_params_t);
    p->axis = axis;
    p->outer = 1;
    p->inner = 1;
    for (int d = 0; d < axis; d++)
        p->outer *= in->dims[d];
    for (int d = axis + 1; d < in->rank; d++)
        p->inner *= in->dims[d];
    p->esize = nn_dtype_size(in->dtype);
    call->flops = 0;
    return 0;
}

void nn_op_split_exec(const nn_call_t *call)
{
    const nn_cat_params_t *p = NN_PARAMS(call, const nn_cat_params_t);
    const unsigned char *src = call->in[0]->data;
    size_t irow = (size_t)(call->in[0]->dims[p->axis] * p->inner) * p->esize;
    size_t at = 0;
    for (int k = 0; k < call->n_out; k++) {
        unsigned char *dst = call->out[k]->data;
        size_t row = (size_t)(call->out[k]->dims[p->axis] * p->inner) * p->esize;
        if (row)
            for (int64_t o = 0; o < p->outer; o++)
                memcpy(dst + (size_t)o * row, src + (size_t)o * irow + at, row);
        at += row;
    }
}

/* ---- Pad ------------------------------------------------------------------ */

typedef struct {
    int rank;
    size_t esize;
    int64_t idims[NN_MAX_RANK], odims[NN_MAX_RANK];
    int64_t begin[NN_MAX_RANK]; /* may be negative: crop */
    float fval;                 /* constant from the attribute (opset < 11) */
    int none;                   /* all pads 0: a view (PyTorch's exports put
                                   one before DenseNet's average pools) */
} nn_pad_params_t;
NN_PARAMS_FIT(nn_pad_params_t);

int nn_op_pad_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    const char *mode = nn_attr_string(call->node, "mode", "constant");
    if (strcmp(mode, "constant") != 0)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "mode '%s' is not supported", mode);
    int64_t pads[2 * NN_MAX_RANK];
    int n;
    nn_pad_params_t *p = NN_PARAMS(call, nn_pad_params_t);
    p->fval = 0;
    if (call->node->opset < 11) {
        const int64_t *v;
        n = nn_attr_ints(call->node, "pads", &v);
        if (n < 0)
            n = nn_attr_ints(call->node, "paddings", &v); /* opset 1 name */
        if (n < 0)
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "attribute 'pads' is missing");
        if (n > 2 * NN_MAX_RANK)
            n = 2 * NN_MAX_RANK + 1; /* reported below */
        else
            memcpy(pads, v, (size_t)n * sizeof *v);
        p->fval = nn_attr_float(call->node, "value", 0.0f);
    } else {
        n = nn_const_ints(call, 1, pads, 2 * NN_MAX_RANK, "pads", err);
        if (n < 0)
            return n;
        const nn_tensor_t *cv = call->n_in > 2 ? call->in[2] : NULL;
        if (cv && (cv->dtype != in->dtype || nn_tensor_elems(cv) > 1))
            return nn_node_fail(err, call->node, NN_EINVAL,
                                "constant_value must be a scalar of the "
                                "input's type");
    }
    if (n != 2 * r)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "pads must have %d values, got %d", 2 * r, n);
    p->rank = r;
    p->esize = nn_dtype_size(in->dtype);
    for (int i = 0; i < r; i++) {
        p->idims[i] = in->dims[i];
        p->begin[i] = pads[i];
        p->odims[i] = in->dims[i] + pads[i] + pads[i + r];
        if (p->odims[i] < 0)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "pads %lld,%lld crop axis %d of size %lld "
                                "below zero", (long long)pads[i],
                                (long long)pads[i + r], i,
                                (long long)in->dims[i]);
    }
    p->none = 1;
    for (int i = 0; i < 2 * r; i++)
        p->none &= pads[i] == 0;
    if (p->none)
        return nn_view_prepare(call, r, p->odims);
    nn_tensor_set_shape(call->out[0], in->dtype, r, p->odims);
    call->flops = 0;
    return 0;
}

static void nn_fill(unsigned char *dst, int64_t n, size_t es, float f,
                    int64_t i)
{
    if (es == 4) {
        float *d = (float *)(void *)dst;
        for (int64_t k = 0; k < n; k++)
            d[k] = f;
    } else {
        int64_t *d = (int64_t *)(void *)dst;
        for (int64_t k = 0; k < n; k++)
            d[k] = i;
    }
}

void nn_op_pad_exec(const nn_call_t *call)
{
    const nn_pad_params_t *p = NN_PARAMS(call, const nn_pad_params_t);
    if (p->none) {
        nn_view_exec(call);
        return;
    }
    const unsigned char *src = call->in[0]->data;
    unsigned char *dst = call->out[0]->data;
    size_t es = p->esize;
    float fv = p->fval;
    int64_t iv = (int64_t)p->fval;
    const nn_tensor_t *cv = call->n_in > 2 ? call->in[2] : NULL;
    if (cv && cv->data && nn_tensor_elems(cv) == 1) {
        if (es == 4)
            fv = *(const float *)cv->data;
        else
            iv = *(const int64_t *)cv->data;
    }
    int r = p->rank;
    if (r == 0) {
        memcpy(dst, src, es);
        return;
    }
    int64_t total = nn_tensor_elems(call->out[0]);
    if (total == 0)
        return;
    int64_t olen = p->odims[r - 1], ilen = p->idims[r - 1];
    int64_t b = p->begin[r - 1];
    /* the copied part of a row: out [lo, hi) <- in [lo - b, hi - b) */
    int64_t lo = b > 0 ? b : 0;
    int64_t hi = b + ilen < olen ? b + ilen : olen;
    if (hi < lo)
        hi = lo;
    int64_t rows = total / olen;
    int64_t idx[NN_MAX_RANK] = {0};
    for (int64_t row = 0; row < rows; row++) {
        unsigned char *d = dst + (size_t)(row * olen) * es;
        int inside = 1;
        int64_t ioff = 0;
        for (int i = 0; i < r - 1; i++) {
            int64_t ii = idx[i] - p->begin[i];
            if (ii < 0 || ii >= p->idims[i])
                inside = 0;
            ioff = ioff * p->idims[i] + ii;
        }
        if (!inside) {
            nn_fill(d, olen, es, fv, iv);
        } else {
            nn_fill(d, lo, es, fv, iv);
            if (hi > lo)
                memcpy(d + (size_t)lo * es,
                       src + (size_t)(ioff * ilen + lo - b) * es,
                       (size_t)(hi - lo) * es);
            nn_fill(d + (size_t)hi * es, olen - hi, es, fv, iv);
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < p->odims[i])
                break;
            idx[i] = 0;
        }
    }
}

/* ---- Shape ---------------------------------------------------------------- */

typedef struct {
    int n;
    int64_t dims[NN_MAX_RANK];
} nn_shapeop_params_t;
NN_PARAMS_FIT(nn_shapeop_params_t);

int nn_op_shape_prepare(nn_call_t *call, nn_error_t *err)
{
    if (call->n_in < 1 || !call->in[0])
        return nn_node_fail(err, call->node, NN_EINVAL, "input 0 is missing");
    const nn_tensor_t *in = call->in[0];
    int r = in->rank;
    int64_t start = 0, end = r;
    if (call->node->opset >= 15) {
        start = nn_attr_int(call->node, "start", 0);
        end = nn_attr_int(call->node, "end", r);
    }
    /* ONNX: negative counts from the back, then clamp to [0, rank] */
    if (start < 0)
        start += r;
    if (end < 0)
        end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    nn_shapeop_params_t *p = NN_PARAMS(call, nn_shapeop_params_t);
    p->n = end > start ? (int)(end - start) : 0;
    for (int i = 0; i < p->n; i++)
        p->dims[i] = in->dims[start + i];
    int64_t od[1] = {p->n};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_INT64, 1, od);
    call->flops = 0;
    return 0;
}

void nn_op_shape_exec(const nn_call_t *call)
{
    const nn_shapeop_params_t *p = NN_PARAMS(call, const nn_shapeop_params_t);
    memcpy(call->out[0]->data, p->dims, (size_t)p->n * sizeof(int64_t));
}

/* ---- Gather ----------------------------------------------------------------
 * Indices are data (read in exec). Out-of-range indices are refused in
 * prepare when the indices are constant; at run time exec cannot fail, so
 * an out-of-range index is clamped to the valid range (after wrapping
 * negatives) rather than read out of bounds. */

typedef struct {
    int64_t outer, axis_dim, inner, nidx;
    size_t esize;
} nn_gather_params_t;
NN_PARAMS_FIT(nn_gather_params_t);

int nn_op_gather_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    if (call->n_in < 2 || !call->in[1])
        return nn_node_fail(err, call->node, NN_EINVAL, "indices are missing");
    const nn_tensor_t *in = call->in[0], *ix = call->in[1];
    if (ix->dtype != NN_DTYPE_INT64)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "indices must be int64, got %s",
                            nn_dtype_name(ix->dtype));
    int64_t a = nn_attr_int(call->node, "axis", 0);
    int axis = nn_axis(a, in->rank);
    if (axis < 0)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "axis %lld is out of range for rank %d",
                            (long long)a, in->rank);
    int rank = in->rank - 1 + ix->rank;
    if (rank > NN_MAX_RANK)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "output rank %d exceeds %d", rank, NN_MAX_RANK);
    nn_gather_params_t *p = NN_PARAMS(call, nn_gather_params_t);
    p->axis_dim = in->dims[axis];
    p->nidx = nn_tensor_elems(ix);
    if (ix->data) {
        const int64_t *iv = ix->data;
        for (int64_t k = 0; k < p->nidx; k++)
            if (iv[k] < -p->axis_dim || iv[k] >= p->axis_dim)
                return nn_node_fail(err, call->node, NN_EINVAL,
                                    "index %lld is out of range for axis %d "
                                    "of size %lld", (long long)iv[k], axis,
                                    (long long)p->axis_dim);
    }
    int64_t dims[NN_MAX_RANK];
    int r = 0;
    p->outer = 1;
    p->inner = 1;
    for (int i = 0; i < axis; i++) {
        dims[r++] = in->dims[i];
        p->outer *= in->dims[i];
    }
    for (int i = 0; i < ix->rank; i++)
        dims[r++] = ix->dims[i];
    for (int i = axis + 1; i < in->rank; i++) {
        dims[r++] = in->dims[i];
        p->inner *= in->dims[i];
    }
    nn_tensor_set_shape(call->out[0], in->dtype, rank, dims);
    p->esize = nn_dtype_size(in->dtype);
    call->flops = 0;
    return 0;
}

void nn_op_gather_exec(const nn_call_t *call)
{
    const nn_gather_params_t *p = NN_PARAMS(call, const nn_gather_params_t);
    const int64_t *iv = call->in[1]->data;
    const unsigned char *src = call->in[0]->data;
    unsigned char *dst = call->out[0]->data;
    size_t row = (size_t)p->inner * p->esize;
    if (row == 0)
        return;
    if (p->axis_dim == 0) { /* nothing to read from: zeros, not garbage */
        memset(dst, 0, (size_t)(p->outer * p->nidx) * row);
        return;
    }
    for (int64_t o = 0; o < p->outer; o++)
        for (int64_t k = 0; k < p->nidx; k++) {
            int64_t j = iv[k] < 0 ? iv[k] + p->axis_dim : iv[k];
            j = j < 0 ? 0 : j >= p->axis_dim ? p->axis_dim - 1 : j;
            memcpy(dst + (size_t)(o * p->nidx + k) * row,
                   src + (size_t)(o * p->axis_dim + j) * row, row);
        }
}

/* ---- Cast ----------------------------------------------------------------- */

int nn_op_cast_prepare(nn_call_t *call, nn_error_t *err)
{
    int rc = nn_need_data_input(call, err);
    if (rc)
        return rc;
    const nn_attr_t *to = nn_attr_find(call->node, "to");
    if (!to || to->type != NN_ATTR_INT)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "attribute 'to' is missing");
    if (to->i != NN_DTYPE_FLOAT && to->i != NN_DTYPE_INT64)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "cast to %s (%lld) is not supported",
                            nn_dtype_name(to->i), (long long)to->i);
    const nn_tensor_t *in = call->in[0];
    nn_tensor_set_shape(call->out[0], (nn_dtype_t)to->i, in->rank, in->dims);
    call->flops = (double)nn_tensor_elems(in);
    return 0;
}

void nn_op_cast_exec(const nn_call_t *call)
{
    const nn_tensor_t *in = call->in[0];
    nn_tensor_t *out = call->out[0];
    int64_t n = nn_tensor_elems(in);
    if (in->dtype == out->dtype) {
        memcpy(out->data, in->data, nn_tensor_bytes(in));
    } else if (in->dtype == NN_DTYPE_FLOAT) {
        const float *s = in->data;
        int64_t *d = out->data;
        /* truncates like numpy; saturates instead of the C UB for values
         * beyond int64 (NaN -> 0) */
        for (int64_t i = 0; i < n; i++) {
            float x = s[i];
            d[i] = x != x                  ? 0
                   : x >= 9.2233720e18f    ? INT64_MAX
                   : x <= -9.2233720e18f   ? INT64_MIN
                                           : (int64_t)x;
        }
    } else {
        const int64_t *s = in->data;
        float *d = out->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i];
    }
}
