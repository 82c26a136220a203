#include "optest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double tc_isa_tol = 0;

nn_isa_t tc_isa_best(void)
{
    static int best = -1;
    if (best < 0) {
        nn_cpu_t cpu;
        nn_error_t err;
        (void)nn_cpu_detect(&cpu, &err); /* sets best even when it refuses
                                          * IMGCLASS_ISA */
        best = (int)cpu.best;
    }
    return (nn_isa_t)best;
}

tc_t *tc_new(const char *op, int opset, int n_out)
{
    tc_t *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    t->def = nn_op_find(op);
    ck_assert_msg(t->def != NULL, "no op %s", op);
    t->node.name = "n";
    nn_node_set_op(&t->node, t->def->op);
    t->node.opset = opset;
    t->node.attrs = t->attrs;
    t->node.fusion.residual = -1;
    t->node.outputs = t->outs_ids;
    t->node.n_outputs = n_out;
    for (int i = 0; i < TC_MAX; i++) {
        t->inp[i] = NULL;
        t->outp[i] = &t->outs[i];
        t->outs_ids[i] = i < n_out ? 100 + i : -1;
    }
    t->call.node = &t->node;
    t->call.in = t->inp;
    t->call.out = t->outp;
    /* Prepared as a model on this machine would be; tc_exec then runs
     * every instruction set's kernels on what prepare made. */
    t->call.isa = tc_isa_best();
    t->call.n_out = n_out;
    t->isa_tol = tc_isa_tol;
    return t;
}

nn_attr_t *tc_attr(tc_t *t, const char *name, nn_attr_type_t type)
{
    ck_assert_int_lt(t->node.n_attrs, TC_MAX);
    nn_attr_t *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = type;
    return a;
}
void tc_attr_i(tc_t *t, const char *name, int64_t v)
{
    tc_attr(t, name, NN_ATTR_INT)->i = v;
}
void tc_attr_f(tc_t *t, const char *name, float v)
{
    tc_attr(t, name, NN_ATTR_FLOAT)->f = v;
}
void tc_attr_s(tc_t *t, const char *name, const char *s)
{
    tc_attr(t, name, NN_ATTR_STRING)->s = (char *)s;
}
void tc_attr_ints(tc_t *t, const char *name, const int64_t *v, int n)
{
    nn_attr_t *a = tc_attr(t, name, NN_ATTR_INTS);
    a->ints = (int64_t *)v;
    a->n = n;
}

void tc_in(tc_t *t, int i, nn_dtype_t dt, int rank, const int64_t *dims,
           const void *data)
{
    ck_assert_int_lt(i, TC_MAX);
    free(t->in_owned[i]);
    t->in_owned[i] = NULL;
    nn_tensor_set_shape(&t->ins[i], dt, rank, dims);
    t->ins[i].data = (void *)data;
    t->inp[i] = &t->ins[i];
    if (t->call.n_in < i + 1)
        t->call.n_in = i + 1;
}

void *tc_in_alloc(tc_t *t, int i, nn_dtype_t dt, int rank,
                  const int64_t *dims)
{
    tc_in(t, i, dt, rank, dims, NULL);
    size_t b = nn_tensor_bytes(&t->ins[i]);
    void *data = calloc(1, b ? b : 1);
    ck_assert_ptr_nonnull(data);
    t->ins[i].data = t->in_owned[i] = data;
    return data;
}

void tc_omit(tc_t *t, int i)
{
    ck_assert_int_lt(i, TC_MAX);
    t->inp[i] = NULL;
    if (t->call.n_in < i + 1)
        t->call.n_in = i + 1;
}

int tc_prepare(tc_t *t)
{
    return t->def->prepare(&t->call, &t->err);
}

void tc_out_buffer(tc_t *t, int k, void *data)
{
    ck_assert_int_lt(k, TC_MAX);
    ck_assert(!t->out_owned[k]);
    t->outs[k].data = data;
}

/* Gives every output a buffer and the call its scratch and pool. */
static void tc_bind(tc_t *t, nn_pool_t *pool, int alias)
{
    for (int k = 0; k < t->call.n_out; k++) {
        if (t->outs[k].data)
            continue; /* the caller's buffer, or the last run's */
        if (k == 0 && alias && t->call.out_alias) {
            t->outs[0].data = t->ins[0].data;
            continue;
        }
        size_t b = nn_tensor_bytes(&t->outs[k]);
        t->outs[k].data = malloc(b ? b : 1);
        ck_assert_ptr_nonnull(t->outs[k].data);
        memset(t->outs[k].data, 0xAB, b);
        t->out_owned[k] = 1;
    }
    if (t->call.scratch_bytes > t->scratch_size) {
        free(t->scratch);
        t->scratch_size = (t->call.scratch_bytes + 63) / 64 * 64;
        t->scratch = aligned_alloc(64, t->scratch_size);
        ck_assert_ptr_nonnull(t->scratch);
    }
    t->call.scratch = t->scratch;
    t->call.pool = pool;
}

void tc_exec_isa(tc_t *t, nn_pool_t *pool, int alias, nn_isa_t isa)
{
    tc_bind(t, pool, alias);
    t->call.isa = isa;
    t->def->exec(&t->call);
}

/* Memory a run may change, as it was before the first. */
typedef struct tc_saved {
    void *at;
    void *copy;
    size_t bytes;
} tc_saved_t;

static void tc_save(tc_saved_t *s, void *at, size_t bytes)
{
    s->at = at;
    s->bytes = bytes;
    s->copy = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(s->copy);
    memcpy(s->copy, at, bytes);
}

static int tc_overlap(const void *a, size_t na, const void *b, size_t nb)
{
    const char *pa = a, *pb = b;
    return na && nb && pa < pb + nb && pb < pa + na;
}

/* Output k under isa (got) against the same under the best (want). */
static void tc_compare(const tc_t *t, int k, nn_isa_t isa, const void *got,
                       const void *want)
{
    const nn_tensor_t *o = &t->outs[k];
    const size_t bytes = nn_tensor_bytes(o);
    const char *op = t->def->name, *best = nn_isa_name(tc_isa_best());
    if (o->dtype != NN_DTYPE_FLOAT) {
        ck_assert_msg(memcmp(got, want, bytes) == 0, "%s output %d: %s and %s differ",
                      op, k, nn_isa_name(isa), best);
        return;
    }
    const float *a = got, *b = want;
    const size_t n = bytes / sizeof(float);
    double max_diff = 0, max_abs = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) {
            ck_assert_msg(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])),
                          "%s output %d element %zu: %s gives %g, %s %g", op, k, i,
                          nn_isa_name(isa), a[i], best, b[i]);
            continue;
        }
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > max_diff)
            max_diff = d, worst = i;
        if (fabs((double)b[i]) > max_abs)
            max_abs = fabs((double)b[i]);
    }
    ck_assert_msg(t->isa_tol > 0 ? max_diff <= t->isa_tol * max_abs : max_diff == 0,
                  "%s output %d element %zu: %s gives %.9g, %s %.9g (max |diff| %.3g, "
                  "max |value| %.3g, tolerance %g)",
                  op, k, worst, nn_isa_name(isa), a[worst], best, b[worst], max_diff,
                  max_abs, t->isa_tol);
}

void tc_exec(tc_t *t, nn_pool_t *pool, int alias)
{
    const nn_isa_t best = tc_isa_best();
    tc_bind(t, pool, alias);
    tc_saved_t saved[2 * TC_MAX];
    int n_saved = 0;
    for (int k = 0; k < t->call.n_out; k++)
        tc_save(&saved[n_saved++], t->outs[k].data, nn_tensor_bytes(&t->outs[k]));
    for (int i = 0; i < t->call.n_in && i < TC_MAX; i++) {
        const nn_tensor_t *in = t->inp[i];
        int shared = 0;
        for (int k = 0; in && in->data && k < t->call.n_out; k++)
            shared |= tc_overlap(in->data, nn_tensor_bytes(in), t->outs[k].data,
                                 nn_tensor_bytes(&t->outs[k]));
        if (shared)
            tc_save(&saved[n_saved++], in->data, nn_tensor_bytes(in));
    }
    void *lower[NN_ISA_COUNT][TC_MAX] = {{0}};
    for (int isa = NN_ISA_GENERIC; isa <= (int)best; isa++) {
        for (int s = 0; isa > NN_ISA_GENERIC && s < n_saved; s++)
            memcpy(saved[s].at, saved[s].copy, saved[s].bytes);
        t->call.isa = (nn_isa_t)isa;
        t->def->exec(&t->call);
        for (int k = 0; isa < (int)best && k < t->call.n_out; k++) {
            size_t b = nn_tensor_bytes(&t->outs[k]);
            lower[isa][k] = malloc(b ? b : 1);
            ck_assert_ptr_nonnull(lower[isa][k]);
            memcpy(lower[isa][k], t->outs[k].data, b);
        }
    }
    for (int s = 0; s < n_saved; s++)
        free(saved[s].copy);
    for (int isa = NN_ISA_GENERIC; isa < (int)best; isa++)
        for (int k = 0; k < t->call.n_out; k++) {
            tc_compare(t, k, (nn_isa_t)isa, lower[isa][k], t->outs[k].data);
            free(lower[isa][k]);
        }
}

int tc_run(tc_t *t, nn_pool_t *pool)
{
    int rc = tc_prepare(t);
    if (rc == 0)
        tc_exec(t, pool, 0);
    return rc;
}

void tc_free(tc_t *t)
{
    for (int k = 0; k < TC_MAX; k++) {
        if (t->out_owned[k])
            free(t->outs[k].data);
        free(t->in_owned[k]);
    }
    free(t->scratch);
    free(t);
}

void tc_expect_fail_at(tc_t *t, int code, const char *needle, int line)
{
    int rc = tc_prepare(t);
    ck_assert_msg(rc == -code, "line %d: expected %d got %d (%s)", line,
                  -code, rc, t->err.msg);
    if (needle)
        ck_assert_msg(strstr(t->err.msg, needle),
                      "line %d: message '%s' lacks '%s'", line, t->err.msg,
                      needle);
    tc_free(t);
}

void tc_shape_is(const nn_tensor_t *o, int rank, const int64_t *dims)
{
    char b[128];
    ck_assert_msg(o->rank == rank, "rank %d != %d (%s)", o->rank, rank,
                  nn_shape_str(o, b, sizeof b));
    for (int i = 0; i < rank; i++)
        ck_assert_msg(o->dims[i] == dims[i], "dim %d: %lld != %lld (%s)", i,
                      (long long)o->dims[i], (long long)dims[i],
                      nn_shape_str(o, b, sizeof b));
}

uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

float *rand_f(size_t n, uint64_t *s)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((int)(rng_next(s) % 2001) - 1000) / 100.0f;
    return x;
}
