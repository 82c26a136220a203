/* Gemm and MatMul.
 *
 * Where the call's instruction set has the engine's own products
 * (nn_sgemm) and the product is a plain Y = A B (+ Y), they run it: A, the
 * activations, is packed into panels in the call's scratch as it is used,
 * B is read in place. A few rows against a transposed B (a small batch
 * through a fully connected layer) run as dot products, each row of B
 * read once. Everything else (transposed operands, alpha or beta other
 * than 1, single rows, other instruction sets) runs on OpenBLAS.
 *
 * OpenBLAS runs single-threaded inside our pool threads (the engine sets
 * openblas_set_num_threads(1)), so each op splits its product itself: by
 * rows of the output when there are enough of them, otherwise by columns
 * (a batch-1 fully connected layer is 1 x N: splitting N also halves the
 * weight traffic per thread). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn/error.h"
#include "nn/op.h"
#include "nn/ops/args.h"
#include "nn/sgemm.h"

/* Products with at most this many rows and B transposed (weights by row)
 * run as dot products (nn_sgemm_dots) where the own kernels exist. */
#define NN_GEMM_DOTS_MAX_ROWS 16

/* Below this many multiply-adds a product runs on one thread. */
#define NN_GEMM_PAR_MIN (64 * 1024)

/* One sgemm Y = alpha*op(A)*op(B) + beta*Y split over the pool. */
typedef struct nn_gemm_job {
    int ta, tb;
    int M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *Y;
    int lda, ldb, ldy;
    int split_m; /* split rows (else columns) */
    int grain;   /* rows/columns per work item */
    int items;
    const nn_fusion_t *act; /* applied to each finished block, or NULL */
    nn_isa_t isa;           /* the call's, for the activation's kernels */
    float *packed;          /* own products: scratch for A's panels, else NULL */
    const float *col_bias;  /* own products: added to each row, or NULL */
} nn_gemm_job_t;

/* Rows of A packed and multiplied per nn_sgemm call: the rows a K block
 * of A's panels is sized for, and C's tiles stay in L2 across K blocks. */
#define NN_GEMM_OWN_ROWS 256

/* Whether a product runs on the own kernels: Y = A B (+ Y) with A not
 * transposed, at least one panel's worth of rows, and a B wide enough to
 * fill a vector. */
static int nn_gemm_own(nn_isa_t isa, int ta, int tb, float alpha, float beta, int M, int N)
{
    return nn_sgemm_has(isa) && !ta && !tb && alpha == 1.0f &&
           (beta == 0.0f || beta == 1.0f) && M >= NN_SGEMM_MR && N >= 16;
}

/* Packs rows [lo, hi) of A (lo a multiple of NN_SGEMM_MR) into their
 * panels of j->packed. */
static void nn_gemm_pack(const nn_gemm_job_t *j, int lo, int hi)
{
    nn_sgemm_pack_a(j->A + (size_t)lo * j->lda, j->lda, hi - lo, j->K,
                    j->packed + (size_t)lo * j->K);
}

/* Own products, rows [lo, hi) and columns [c0, c1) of Y, packing A's rows
 * first when pack is set. */
static void nn_gemm_own_block(const nn_gemm_job_t *j, int lo, int hi, int c0, int c1,
                              int pack)
{
    nn_sgemm_epilogue_t epi = {.lo = -INFINITY, .hi = INFINITY,
                               .accumulate = j->beta != 0.0f,
                               .col_bias = j->col_bias ? j->col_bias + c0 : NULL};
    float buf[NN_SGEMM_BUFFER_FLOATS] __attribute__((aligned(64)));
    for (int r0 = lo; r0 < hi; r0 += NN_GEMM_OWN_ROWS) {
        int r1 = hi - r0 < NN_GEMM_OWN_ROWS ? hi : r0 + NN_GEMM_OWN_ROWS;
        if (pack)
            nn_gemm_pack(j, r0, r1);
        nn_sgemm(r0, r1, c1 - c0, j->K, j->packed, j->B + c0, j->ldb, j->Y + c0, j->ldy,
                 &epi, buf);
        /* The activation while the rows are still in cache. */
        if (j->act && j->act->act != NN_ACT_NONE)
            for (int m = r0; m < r1; m++)
                nn_apply_act(j->isa, j->act, j->Y + (size_t)m * j->ldy + c0, c1 - c0);
    }
}

/* Column split, phase 1: items are groups of NN_GEMM_OWN_ROWS rows. */
static void nn_gemm_own_pack(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_gemm_job_t *j = arg;
    int lo = (int)begin * NN_GEMM_OWN_ROWS;
    int hi = (int)end * NN_GEMM_OWN_ROWS;
    nn_gemm_pack(j, lo, hi < j->M ? hi : j->M);
}

static void nn_gemm_block(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_gemm_job_t *j = arg;
    int lo = (int)begin * j->grain;
    int hi = (int)end * j->grain;
    int lim = j->split_m ? j->M : j->N;
    if (hi > lim)
        hi = lim;
    if (lo >= hi)
        return;
    if (j->packed) {
        if (j->split_m)
            nn_gemm_own_block(j, lo, hi, 0, j->N, 1);
        else
            nn_gemm_own_block(j, 0, j->M, lo, hi, 0);
        return;
    }
    const float *A = j->A, *B = j->B;
    float *Y = j->Y;
    int M = j->M, N = j->N;
    if (j->split_m) {
        A += j->ta ? (size_t)lo : (size_t)lo * j->lda;
        Y += (size_t)lo * j->ldy;
        M = hi - lo;
    } else {
        B += j->tb ? (size_t)lo * j->ldb : (size_t)lo;
        Y += lo;
        N = hi - lo;
    }
    if (M > 1 && M <= NN_GEMM_DOTS_MAX_ROWS && !j->ta && j->tb && nn_sgemm_has(j->isa)) {
        /* A few rows against weights stored by row (a fully connected
         * layer on a small batch): OpenBLAS would pack all of B for them
         * (8 x 1280 x 1000: 1.1 ms, 18 GFLOP/s); dots read it once. */
        nn_sgemm_dots(M, N, j->K, j->alpha, A, j->lda, B, j->ldb, j->beta, Y, j->ldy);
    } else if (M == 1) {
        /* One row (a batch-1 fully connected layer): sgemv reads B once,
         * where sgemm would first pack all of it. */
        if (j->beta == 0.0f)
            memset(Y, 0, sizeof *Y * (size_t)N); /* y may hold anything */
        int incx = j->ta ? j->lda : 1;
        if (j->tb) /* B is N x K: y = B a */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, j->K, j->alpha, B, j->ldb, A,
                        incx, j->beta, Y, 1);
        else /* B is K x N: y = B^T a */
            cblas_sgemv(CblasRowMajor, CblasTrans, j->K, N, j->alpha, B, j->ldb, A, incx,
                        j->beta, Y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
                    j->tb ? CblasTrans : CblasNoTrans, M, N, j->K, j->alpha, A,
                    j->lda, B, j->ldb, j->beta, Y, j->ldy);
    }
    if (j->act && j->act->act != NN_ACT_NONE)
        for (int m = 0; m < M; m++)
            nn_apply_act(j->isa, j->act, Y + (size_t)m * j->ldy, N);
}

/* Chooses the split and runs the job on the pool. */
static void nn_gemm_run(nn_pool_t *pool, nn_gemm_job_t *j)
{
    int nt = nn_pool_threads(pool);
    double work = (double)j->M * j->N * j->K;
    if (nt <= 1 || work < NN_GEMM_PAR_MIN) {
        j->split_m = 1;
        j->grain = j->M > 0 ? j->M : 1;
        j->items = 1;
        nn_gemm_block(j, 0, 1, 0);
        return;
    }
    if (j->packed) {
        /* Rows (whole panels) when each thread gets a few panels; else
         * columns (whole strips), A packed once before. */
        j->split_m = j->M >= 4 * NN_SGEMM_MR * nt || j->M >= j->N;
        int len = j->split_m ? j->M : j->N;
        int align = j->split_m ? NN_SGEMM_MR : NN_SGEMM_NR;
        int grain = (len + nt - 1) / nt;
        j->grain = (grain + align - 1) / align * align;
        j->items = (len + j->grain - 1) / j->grain;
        if (!j->split_m)
            nn_pool_for(pool, (j->M + NN_GEMM_OWN_ROWS - 1) / NN_GEMM_OWN_ROWS,
                        nn_gemm_own_pack, j);
        nn_pool_for(pool, j->items, nn_gemm_block, j);
        return;
    }
    /* Rows when each thread gets a reasonable panel, else columns: every
     * sgemm packs all of the B it reads, so with few rows (ConvNeXt's
     * 49 x 768 x 3072 stage) splitting rows would pack B on each thread,
     * while splitting columns halves that work. */
    j->split_m = j->M >= 32 * nt || j->M >= j->N;
    int len = j->split_m ? j->M : j->N;
    int align = j->split_m ? 4 : 16;
    int grain = (len + nt - 1) / nt;
    grain = (grain + align - 1) / align * align;
    if (grain < 1)
        grain = 1;
    j->grain = grain;
    j->items = (len + grain - 1) / grain;
    nn_pool_for(pool, j->items, nn_gemm_block, j);
}

/* ---- Gemm ------------------------------------------------------------------ */

typedef struct nn_gemm_params {
    int ta, tb, M, N, K;
    float alpha, beta;
    int c_rank;          /* 0: no C */
    int64_t c_rows, c_cols; /* C viewed as [c_rows, c_cols] broadcast to [M,N] */
} nn_gemm_params_t;
NN_PARAMS_FIT(nn_gemm_params_t);

int nn_op_gemm_prepare(nn_call_t *call, nn_error_t *err)
{
    nn_gemm_params_t *p = NN_PARAMS(call, nn_gemm_params_t);
    memset(p, 0, sizeof *p);
    if (call->n_in < 2 || !call->in[0] || !call->in[1])
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "Gemm needs inputs A and B");
    if (call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL, "Gemm needs an output");
    int rc;
    if ((rc = nn_need_float(call, 0, "A", err)) ||
        (rc = nn_need_float(call, 1, "B", err)))
        return rc;
    const nn_tensor_t *A = call->in[0], *B = call->in[1];
    const nn_tensor_t *C = call->n_in > 2 ? call->in[2] : NULL;
    if (A->rank != 2 || B->rank != 2)
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "A and B must be 2-D, got rank %d and %d", A->rank,
                            B->rank);
    if (nn_attr_int(call->node, "broadcast", 1) != 1 && call->node->opset < 7)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "broadcast=0 is not supported");
    p->ta = nn_attr_int(call->node, "transA", 0) != 0;
    p->tb = nn_attr_int(call->node, "transB", 0) != 0;
    p->alpha = nn_attr_float(call->node, "alpha", 1.0f);
    p->beta = nn_attr_float(call->node, "beta", 1.0f);
    int64_t M = p->ta ? A->dims[1] : A->dims[0];
    int64_t K = p->ta ? A->dims[0] : A->dims[1];
    int64_t K2 = p->tb ? B->dims[1] : B->dims[0];
    int64_t N = p->tb ? B->dims[0] : B->dims[1];
    if (K != K2)
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "inner dimensions differ: A gives K=%lld, B gives "
                            "K=%lld", (long long)K, (long long)K2);
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "Gemm dimensions too large");
    p->M = (int)M;
    p->N = (int)N;
    p->K = (int)K;
    if (C) {
        if ((rc = nn_need_float(call, 2, "C", err)))
            return rc;
        if (C->rank > 2)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "C must have rank <= 2, got %d", C->rank);
        /* Unidirectional broadcast of C to [M, N]. */
        int64_t cr = C->rank == 2 ? C->dims[0] : 1;
        int64_t cc = C->rank >= 1 ? C->dims[C->rank - 1] : 1;
        if ((cr != 1 && cr != M) || (cc != 1 && cc != N)) {
            char buf[64];
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "C %s does not broadcast to [%lld,%lld]",
                                nn_shape_str(C, buf, sizeof buf), (long long)M,
                                (long long)N);
        }
        p->c_rank = C->rank > 0 ? C->rank : 1;
        p->c_rows = cr;
        p->c_cols = cc;
    }
    float beta = p->c_rank && p->beta != 0.0f ? p->beta : 0.0f;
    if (nn_gemm_own(call->isa, p->ta, p->tb, p->alpha, beta, p->M, p->N))
        call->scratch_bytes = nn_sgemm_packed_floats(p->M, p->K) * sizeof(float);
    int64_t dims[2] = {M, N};
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, 2, dims);
    call->flops = 2.0 * (double)M * (double)N * (double)K;
    return 0;
}

void nn_op_gemm_exec(const nn_call_t *call)
{
    const nn_gemm_params_t *p = NN_PARAMS(call, nn_gemm_params_t);
    const float *A = call->in[0]->data, *B = call->in[1]->data;
    float *Y = call->out[0]->data;
    float beta = 0.0f;
    if (p->c_rank && p->beta != 0.0f) {
        const float *C = call->in[2]->data;
        /* Y = broadcast C, then sgemm accumulates with beta. */
        for (int m = 0; m < p->M; m++) {
            float *y = Y + (size_t)m * p->N;
            const float *c = C + (p->c_rows == 1 ? 0 : (size_t)m * p->c_cols);
            if (p->c_cols == 1)
                for (int n = 0; n < p->N; n++)
                    y[n] = c[0];
            else
                memcpy(y, c, (size_t)p->N * sizeof *y);
        }
        beta = p->beta;
    }
    nn_gemm_job_t j = {
        .ta = p->ta, .tb = p->tb, .M = p->M, .N = p->N, .K = p->K,
        .alpha = p->alpha, .beta = beta, .A = A, .B = B, .Y = Y,
        .lda = p->ta ? p->M : p->K, .ldb = p->tb ? p->K : p->N, .ldy = p->N,
        .act = &call->node->fusion, .isa = call->isa,
        .packed = call->scratch_bytes && nn_sgemm_has(call->isa) ? call->scratch : NULL,
    };
    if (p->M == 0 || p->N == 0)
        return;
    if (p->K == 0) {
        /* sgemm would leave beta*Y; make the empty sum explicit. */
        for (size_t i = 0; i < (size_t)p->M * p->N; i++)
            Y[i] *= beta;
        if (j.act->act != NN_ACT_NONE)
            nn_apply_act(call->isa, j.act, Y, (int64_t)p->M * p->N);
        return;
    }
    nn_gemm_run(call->pool, &j);
}

/* ---- MatMul ---------------------------------------------------------------- */

typedef struct nn_matmul_params {
    int M, N, K;
    int batch_rank;                  /* broadcast batch dims of the output */
    int64_t bdims[NN_MAX_RANK];
    int64_t a_stride[NN_MAX_RANK];   /* per batch dim, in matrices; 0 = bcast */
    int64_t b_stride[NN_MAX_RANK];
    int64_t batches;
    int fold;                        /* B shared by all batches, A contiguous:
                                        one [batches*M, K] x [K, N] product */
    int has_bias;                    /* input 2: [N] added to every row */
} nn_matmul_params_t;
NN_PARAMS_FIT(nn_matmul_params_t);

int nn_op_matmul_prepare(nn_call_t *call, nn_error_t *err)
{
    nn_matmul_params_t *p = NN_PARAMS(call, nn_matmul_params_t);
    memset(p, 0, sizeof *p);
    if (call->n_in < 2 || !call->in[0] || !call->in[1] || call->n_out < 1)
        return nn_node_fail(err, call->node, NN_EINVAL,
                            "MatMul needs inputs A and B");
    if (call->n_in > 3)
        return nn_node_fail(err, call->node, NN_EINVAL, "MatMul has at most 3 inputs");
    int rc;
    if ((rc = nn_need_float(call, 0, "A", err)) ||
        (rc = nn_need_float(call, 1, "B", err)))
        return rc;
    const nn_tensor_t *A = call->in[0], *B = call->in[1];
    if (A->rank < 1 || B->rank < 1)
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "MatMul inputs must have rank >= 1");
    /* 1-D promotion: A [K] -> [1,K], B [K] -> [K,1]; dropped afterwards. */
    int64_t M = A->rank >= 2 ? A->dims[A->rank - 2] : 1;
    int64_t K = A->dims[A->rank - 1];
    int64_t K2 = B->rank >= 2 ? B->dims[B->rank - 2] : B->dims[0];
    int64_t N = B->rank >= 2 ? B->dims[B->rank - 1] : 1;
    if (K != K2) {
        char ba[64], bb[64];
        return nn_node_fail(err, call->node, NN_ESHAPE,
                            "MatMul shapes %s and %s do not match",
                            nn_shape_str(A, ba, sizeof ba),
                            nn_shape_str(B, bb, sizeof bb));
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "MatMul dimensions too large");
    int ab = A->rank > 2 ? A->rank - 2 : 0;
    int bb = B->rank > 2 ? B->rank - 2 : 0;
    int br = ab > bb ? ab : bb;
    if (br + 2 > NN_MAX_RANK)
        return nn_node_fail(err, call->node, NN_EUNSUPPORTED,
                            "MatMul rank too large");
    /* Batch dims aligned to the right; strides in whole matrices. */
    int64_t sa = 1, sb = 1;
    for (int i = br - 1; i >= 0; i--) {
        int ia = i - (br - ab), ib = i - (br - bb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1;
        int64_t db = ib >= 0 ? B->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char bufa[64], bufb[64];
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "MatMul batch dims of %s and %s do not "
                                "broadcast", nn_shape_str(A, bufa, sizeof bufa),
                                nn_shape_str(B, bufb, sizeof bufb));
        }
        p->bdims[i] = da > db ? da : db;
        p->a_stride[i] = da == 1 ? 0 : sa;
        p->b_stride[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
    /* A bias over the last axis, fused by the optimiser. */
    const nn_tensor_t *bias = call->n_in > 2 ? call->in[2] : NULL;
    if (bias) {
        if ((rc = nn_need_float(call, 2, "bias", err)))
            return rc;
        if (A->rank < 2 || B->rank < 2 || nn_tensor_elems(bias) != N)
            return nn_node_fail(err, call->node, NN_ESHAPE,
                                "a fused bias needs 2-D operands and N=%lld values",
                                (long long)N);
        p->has_bias = 1;
    }
    p->batch_rank = br;
    p->batches = 1;
    for (int i = 0; i < br; i++)
        p->batches *= p->bdims[i];
    p->M = (int)M;
    p->N = (int)N;
    p->K = (int)K;
    /* B without batch (or all ones) and A covering every batch index. */
    p->fold = sb == 1 && sa == p->batches &&
              (double)p->batches * (double)M <= INT32_MAX;
    /* Own products for the products run one at a time (see exec). */
    int rows = p->fold ? (int)(p->batches * M) : (int)M;
    if (nn_gemm_own(call->isa, 0, 0, 1.0f, 0.0f, rows, (int)N))
        call->scratch_bytes = nn_sgemm_packed_floats(rows, (int)K) * sizeof(float);

    int64_t dims[NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < br; i++)
        dims[r++] = p->bdims[i];
    if (A->rank >= 2)
        dims[r++] = M;
    if (B->rank >= 2)
        dims[r++] = N;
    nn_tensor_set_shape(call->out[0], NN_DTYPE_FLOAT, r, dims);
    call->flops = 2.0 * (double)p->batches * (double)M * (double)N * (double)K;
    return 0;
}

typedef struct nn_matmul_job {
    const nn_matmul_params_t *p;
    const float *A, *B;
    float *Y;
} nn_matmul_job_t;

/* Work items are whole batch matrices. */
static void nn_matmul_batches(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const nn_matmul_job_t *j = arg;
    const nn_matmul_params_t *p = j->p;
    size_t asz = (size_t)p->M * p->K, bsz = (size_t)p->K * p->N,
           ysz = (size_t)p->M * p->N;
    for (int64_t b = begin; b < end; b++) {
        int64_t rem = b, ao = 0, bo = 0;
        for (int i = p->batch_rank - 1; i >= 0; i--) {
            int64_t idx = rem % p->bdims[i];
            rem /= p->bdims[i];
            ao += idx * p->a_stride[i];
            bo += idx * p->b_stride[i];
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->M, p->N,
                    p->K, 1.0f, j->A + (size_t)ao * asz, p->K,
                    j->B + (size_t)bo * bsz, p->N, p->has_bias ? 1.0f : 0.0f,
                    j->Y + (size_t)b * ysz, p->N);
    }
}

/* Every row of Y [rows, N] set to the bias, which the product then
 * accumulates onto. */
static void nn_fill_rows(float *Y, int64_t rows, int N, const float *bias)
{
    for (int64_t r = 0; r < rows; r++)
        memcpy(Y + (size_t)r * N, bias, (size_t)N * sizeof *Y);
}

void nn_op_matmul_exec(const nn_call_t *call)
{
    const nn_matmul_params_t *p = NN_PARAMS(call, nn_matmul_params_t);
    const float *A = call->in[0]->data, *B = call->in[1]->data;
    const float *bias = p->has_bias ? call->in[2]->data : NULL;
    const nn_fusion_t *act = &call->node->fusion;
    float *Y = call->out[0]->data;
    if (p->M == 0 || p->N == 0 || p->batches == 0)
        return;
    const int64_t all_rows = p->batches * p->M;
    /* The own products add the bias as they store; elsewhere Y starts
     * from it. */
    const int own = call->scratch_bytes != 0 && nn_sgemm_has(call->isa);
    if (bias && !own)
        nn_fill_rows(Y, all_rows, p->N, bias);
    if (p->K == 0) {
        if (bias && own)
            nn_fill_rows(Y, all_rows, p->N, bias);
        else if (!bias)
            memset(Y, 0, (size_t)all_rows * p->N * sizeof *Y);
        if (act->act != NN_ACT_NONE)
            nn_apply_act(call->isa, act, Y, all_rows * p->N);
        return;
    }
    int nt = nn_pool_threads(call->pool);
    if (p->fold || p->batches == 1 || (nt > 1 && p->batches < nt)) {
        /* One product per batch, each split over the pool. */
        int64_t nb = p->fold ? 1 : p->batches;
        int rows = p->fold ? (int)(p->batches * p->M) : p->M;
        for (int64_t b = 0; b < nb; b++) {
            int64_t ao = 0, bo = 0, rem = b;
            for (int i = p->batch_rank - 1; !p->fold && i >= 0; i--) {
                int64_t idx = rem % p->bdims[i];
                rem /= p->bdims[i];
                ao += idx * p->a_stride[i];
                bo += idx * p->b_stride[i];
            }
            nn_gemm_job_t j = {
                .M = rows, .N = p->N, .K = p->K, .alpha = 1.0f,
                .beta = bias && !own ? 1.0f : 0.0f, .col_bias = own ? bias : NULL,
                .A = A + (size_t)ao * p->M * p->K,
                .B = B + (size_t)bo * p->K * p->N,
                .Y = Y + (size_t)b * p->M * p->N,
                .lda = p->K, .ldb = p->N, .ldy = p->N,
                .packed = own ? call->scratch : NULL,
                .act = act, .isa = call->isa,
            };
            nn_gemm_run(call->pool, &j);
        }
        return;
    }
    nn_matmul_job_t j = {p, A, B, Y};
    nn_pool_for(call->pool, p->batches, nn_matmul_batches, &j);
    if (act->act != NN_ACT_NONE)
        nn_apply_act(call->isa, act, Y, all_rows * p->N);
}
