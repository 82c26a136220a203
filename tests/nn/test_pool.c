/* The fork-join thread pool (src/nn/pool.c) and nn_context_for_each on top
 * of it: every item handled exactly once in disjoint non-empty ranges, for
 * many n and thread counts; thread ids in range; the same results whatever
 * the thread count; pools driven from several threads at once; pools
 * created and freed in a loop (leaks show under ASan); a slow thread
 * taking fewer chunks instead of holding the caller up; and each thread
 * running its own chunks first. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imgclass/nn.h"
#include "nn/pool.h"
#include "util/testutil.h"

#define MAX_THREADS 64

/* ---- a job that records what the pool hands out ---------------------------- */

typedef struct tally {
    int64_t n;
    int nthreads;
    atomic_int *hits;                 /* per item, when n is small enough */
    atomic_int calls;
    atomic_int bad;                   /* calls breaking the contract */
    atomic_llong covered;             /* items over all calls */
    atomic_llong by_tid[MAX_THREADS]; /* items per thread id */
    pthread_t caller;
    atomic_int off_caller_tid0;       /* tid 0 seen on another thread */
} tally_t;

static void tally_fn(void *arg, int64_t begin, int64_t end, int tid)
{
    tally_t *t = arg;
    atomic_fetch_add(&t->calls, 1);
    if (begin < 0 || end > t->n || begin >= end || tid < 0 ||
        tid >= t->nthreads) {
        atomic_fetch_add(&t->bad, 1);
        return;
    }
    if (tid == 0 && !pthread_equal(pthread_self(), t->caller))
        atomic_fetch_add(&t->off_caller_tid0, 1);
    if (t->hits)
        for (int64_t i = begin; i < end; i++)
            atomic_fetch_add(&t->hits[i], 1);
    atomic_fetch_add(&t->covered, end - begin);
    atomic_fetch_add(&t->by_tid[tid], end - begin);
}

/* Runs a tally job of n items on pool; returns 0 when the contract held,
 * else a description of the first breach (no ck_assert: this also runs on
 * threads other than the test's). */
static const char *tally_run(nn_pool_t *pool, int64_t n, tally_t *t)
{
    memset(t, 0, sizeof *t);
    t->n = n;
    t->nthreads = nn_pool_threads(pool);
    t->caller = pthread_self();
    if (n > 0 && n <= 1000000) {
        t->hits = calloc((size_t)n, sizeof *t->hits);
        if (!t->hits)
            return "out of memory";
    }
    nn_pool_for(pool, n, tally_fn, t);
    const char *why = NULL;
    if (atomic_load(&t->bad))
        why = "a range or thread id outside the contract";
    else if (atomic_load(&t->off_caller_tid0))
        why = "tid 0 on a thread other than the caller";
    else if (n <= 0 && atomic_load(&t->calls) != 0)
        why = "calls for n <= 0";
    else if (n > 0 && atomic_load(&t->covered) != n)
        why = "items covered != n";
    for (int64_t i = 0; !why && t->hits && i < n; i++)
        if (atomic_load(&t->hits[i]) != 1)
            why = "an item not handled exactly once";
    free(t->hits);
    t->hits = NULL;
    return why;
}

static nn_pool_t *pool_new(int threads)
{
    nn_pool_t *p = NULL;
    ck_assert_int_eq(nn_pool_create(&p, threads), 0);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(nn_pool_threads(p), threads);
    return p;
}

static const int64_t sizes[] = {-5, 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31,
                                63, 64, 65, 100, 257, 1000, 4097, 100003};

/* ---- coverage -------------------------------------------------------------- */

START_TEST(test_every_item_once)
{
    static const int threads[] = {1, 2, 3, 4, 7, 16, MAX_THREADS};
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        nn_pool_t *p = pool_new(threads[ti]);
        for (int rep = 0; rep < 3; rep++)
            for (size_t ni = 0; ni < sizeof sizes / sizeof sizes[0]; ni++) {
                tally_t t;
                const char *why = tally_run(p, sizes[ni], &t);
                ck_assert_msg(!why, "%d threads, n %lld: %s", threads[ti],
                              (long long)sizes[ni], why);
            }
        nn_pool_free(p);
    }
}
END_TEST

/* Fewer items than threads: every item once, no empty call. */
START_TEST(test_fewer_items_than_threads)
{
    nn_pool_t *p = pool_new(16);
    for (int64_t n = 1; n < 16; n++) {
        tally_t t;
        const char *why = tally_run(p, n, &t);
        ck_assert_msg(!why, "n %lld: %s", (long long)n, why);
        ck_assert_int_le(atomic_load(&t.calls), n);
    }
    nn_pool_free(p);
}
END_TEST

/* Many small jobs back to back, as operators follow each other in a run,
 * and jobs after the workers have gone to sleep. */
START_TEST(test_back_to_back_and_after_sleep)
{
    nn_pool_t *p = pool_new(4);
    for (int i = 0; i < 20000; i++) {
        tally_t t;
        int64_t n = 1 + i % 37;
        const char *why = tally_run(p, n, &t);
        ck_assert_msg(!why, "job %d, n %lld: %s", i, (long long)n, why);
    }
    for (int i = 0; i < 5; i++) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL); /* past the workers' spinning */
        tally_t t;
        const char *why = tally_run(p, 1000, &t);
        ck_assert_msg(!why, "after a pause: %s", why);
    }
    nn_pool_free(p);
}
END_TEST

/* The inline cases: a NULL pool, a one-thread pool, n == 1. */
START_TEST(test_inline)
{
    ck_assert_int_eq(nn_pool_threads(NULL), 1);
    nn_pool_t *one = pool_new(1), *four = pool_new(4);
    nn_pool_t *pools[] = {NULL, one, four};
    for (int k = 0; k < 3; k++) {
        for (int64_t n = 0; n < 5000; n = n * 3 + 1) {
            if (k == 2 && n > 1)
                continue; /* four threads split n > 1 */
            tally_t t;
            const char *why = tally_run(pools[k], n, &t);
            ck_assert_msg(!why, "pool %d, n %lld: %s", k, (long long)n, why);
            ck_assert_int_eq(atomic_load(&t.calls), n > 0);
            ck_assert_int_eq(atomic_load(&t.by_tid[0]), n);
        }
    }
    nn_pool_free(one);
    nn_pool_free(four);
    nn_pool_free(NULL);
}
END_TEST

START_TEST(test_create_arguments)
{
    nn_pool_t *p = (nn_pool_t *)&p;
    ck_assert_int_eq(nn_pool_create(&p, 0), -EINVAL);
    ck_assert_ptr_null(p);
    p = (nn_pool_t *)&p;
    ck_assert_int_eq(nn_pool_create(&p, -3), -EINVAL);
    ck_assert_ptr_null(p);
    p = (nn_pool_t *)&p;
    ck_assert_int_eq(nn_pool_create(&p, 257), -EINVAL);
    ck_assert_ptr_null(p);
}
END_TEST

/* Ranges are int64: a job beyond 2^32 items is still tiled exactly. */
typedef struct ranges {
    pthread_mutex_t mu;
    int n;
    int64_t r[4096][2];
} ranges_t;

static void ranges_fn(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    ranges_t *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n < 4096) {
        r->r[r->n][0] = begin;
        r->r[r->n][1] = end;
    }
    r->n++;
    pthread_mutex_unlock(&r->mu);
}

static int cmp_range(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

START_TEST(test_large_n_tiled)
{
    static const int64_t ns[] = {(int64_t)3 << 30, (int64_t)1 << 40, 1000003};
    nn_pool_t *p = pool_new(3);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        ranges_t *r = calloc(1, sizeof *r);
        ck_assert_ptr_nonnull(r);
        pthread_mutex_init(&r->mu, NULL);
        nn_pool_for(p, ns[k], ranges_fn, r);
        ck_assert_int_le(r->n, 4096);
        qsort(r->r, (size_t)r->n, sizeof r->r[0], cmp_range);
        int64_t next = 0;
        for (int i = 0; i < r->n; i++) {
            ck_assert_int_eq(r->r[i][0], next);
            ck_assert_int_lt(r->r[i][0], r->r[i][1]);
            next = r->r[i][1];
        }
        ck_assert_int_eq(next, ns[k]);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
    nn_pool_free(p);
}
END_TEST

/* ---- results do not depend on the thread count ----------------------------- */

typedef struct series {
    float *out;
} series_t;

/* Per item: a float computation whose rounding would show any item done
 * twice, skipped, or mixed with another's. */
static void series_fn(void *arg, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    series_t *s = arg;
    for (int64_t i = begin; i < end; i++) {
        float x = (float)i * 0.001f, acc = 0;
        for (int k = 1; k <= 8; k++)
            acc += sinf(x * (float)k) / (float)k;
        s->out[i] += acc;
    }
}

START_TEST(test_same_results_any_thread_count)
{
    const int64_t n = 30011;
    float *ref = calloc((size_t)n, sizeof *ref);
    float *got = calloc((size_t)n, sizeof *got);
    ck_assert(ref && got);
    series_t s = {ref};
    nn_pool_for(NULL, n, series_fn, &s);
    static const int threads[] = {1, 2, 3, 5, 8, 33};
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        nn_pool_t *p = pool_new(threads[ti]);
        for (int rep = 0; rep < 3; rep++) {
            memset(got, 0, (size_t)n * sizeof *got);
            s.out = got;
            nn_pool_for(p, n, series_fn, &s);
            ck_assert_msg(memcmp(got, ref, (size_t)n * sizeof *got) == 0,
                          "%d threads: results differ", threads[ti]);
        }
        nn_pool_free(p);
    }
    free(ref);
    free(got);
}
END_TEST

/* ---- several pools at once, and their lifetime ----------------------------- */

typedef struct driver {
    int threads, jobs;
    const char *why;
    int64_t failed_n;
} driver_t;

static void *drive_pool(void *arg)
{
    driver_t *d = arg;
    nn_pool_t *p = NULL;
    if (nn_pool_create(&p, d->threads) != 0) {
        d->why = "nn_pool_create failed";
        return NULL;
    }
    for (int i = 0; i < d->jobs && !d->why; i++) {
        tally_t t;
        int64_t n = sizes[i % (sizeof sizes / sizeof sizes[0])] % 5000;
        d->why = tally_run(p, n, &t);
        d->failed_n = n;
    }
    nn_pool_free(p);
    return NULL;
}

START_TEST(test_concurrent_pools)
{
    enum { N = 4 };
    pthread_t th[N];
    driver_t d[N];
    for (int i = 0; i < N; i++) {
        d[i] = (driver_t){.threads = 2 + i % 3, .jobs = 400};
        ck_assert_int_eq(pthread_create(&th[i], NULL, drive_pool, &d[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(!d[i].why, "driver %d (%d threads), n %lld: %s", i,
                      d[i].threads, (long long)d[i].failed_n, d[i].why);
    }
}
END_TEST

START_TEST(test_create_free_loop)
{
    for (int i = 0; i < 300; i++) {
        nn_pool_t *p = pool_new(1 + i % 8);
        if (i % 3) { /* else freed before its workers may have started */
            tally_t t;
            const char *why = tally_run(p, 1 + i % 50, &t);
            ck_assert_msg(!why, "iteration %d: %s", i, why);
        }
        nn_pool_free(p);
    }
}
END_TEST

/* ---- a slow thread takes fewer chunks -------------------------------------- */

typedef struct slow {
    atomic_llong by_tid[2];
} slow_t;

/* Items cost 20 ms on the worker and 1 ms on the caller (sleeps, so that
 * other load on the machine does not change the proportion). */
static void slow_fn(void *arg, int64_t begin, int64_t end, int tid)
{
    slow_t *s = arg;
    for (int64_t i = begin; i < end; i++) {
        struct timespec ts = {0, (tid ? 20 : 1) * 1000 * 1000};
        nanosleep(&ts, NULL);
        atomic_fetch_add(&s->by_tid[tid], 1);
    }
}

START_TEST(test_slow_thread_does_not_stall)
{
    /* Split in halves, the worker's would take 32 x 20 ms while the caller
     * waits. Handed out on demand, the caller takes every chunk the worker
     * has not started: the worker ends up with at most a quarter of the
     * items (one chunk of 8 unless the caller itself is held up). */
    const int64_t n = 64;
    nn_pool_t *p = pool_new(2);
    for (int rep = 0; rep < 3; rep++) {
        slow_t s;
        memset(&s, 0, sizeof s);
        nn_pool_for(p, n, slow_fn, &s);
        long long caller = atomic_load(&s.by_tid[0]);
        long long worker = atomic_load(&s.by_tid[1]);
        ck_assert_int_eq(caller + worker, n);
        ck_assert_msg(worker <= n / 4, "the slow worker ran %lld of %lld items",
                      worker, (long long)n);
    }
    nn_pool_free(p);
}
END_TEST

/* ---- owned chunks --------------------------------------------------------------- */

typedef struct owner {
    atomic_int tid[8];
} owner_t;

static void owner_fn(void *arg, int64_t begin, int64_t end, int tid)
{
    owner_t *o = arg;
    for (int64_t i = begin; i < end; i++) {
        atomic_store(&o->tid[i], tid);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

START_TEST(test_threads_run_their_own_chunks_first)
{
    /* 8 items, 2 threads, one chunk an item: the caller owns items 0-3 and
     * runs item 0 first; the worker owns 4-7 and tries item 4 first, which
     * the caller, taking the worker's chunks from the end, takes last. So
     * item 0 is the caller's, and a worker that ran anything ran item 4
     * (handed out in order, it would have run item 1). */
    nn_pool_t *p = pool_new(2);
    for (int rep = 0; rep < 5; rep++) {
        owner_t o;
        for (int i = 0; i < 8; i++)
            atomic_init(&o.tid[i], -1);
        nn_pool_for(p, 8, owner_fn, &o);
        int worker_ran = 0;
        for (int i = 0; i < 8; i++) {
            ck_assert_int_ge(atomic_load(&o.tid[i]), 0);
            worker_ran |= atomic_load(&o.tid[i]) == 1;
        }
        ck_assert_int_eq(atomic_load(&o.tid[0]), 0);
        if (worker_ran)
            ck_assert_msg(atomic_load(&o.tid[4]) == 1, "the worker ran items, but not its first");
    }
    nn_pool_free(p);
}
END_TEST

/* ---- nn_context_for_each ---------------------------------------------------- */

typedef struct each {
    int n;
    atomic_int *hits;
    atomic_int bad;
} each_t;

static void each_fn(void *arg, int i)
{
    each_t *e = arg;
    if (i < 0 || i >= e->n)
        atomic_fetch_add(&e->bad, 1);
    else
        atomic_fetch_add(&e->hits[i], 1);
}

START_TEST(test_context_for_each)
{
    nn_error_t err = {{0}};
    nn_model_t *m = NULL;
    ck_assert_msg(nn_model_load(&m, "models/fashion-mnist/model.onnx", &err) ==
                      0, "%s", err.msg);
    static const int threads[] = {1, 2, 4};
    static const int ns[] = {0, 1, 2, 7, 100, 1001};
    for (size_t ti = 0; ti < 3; ti++) {
        nn_context_t *c = NULL;
        ck_assert_msg(nn_context_create(&c, m, 1, threads[ti], &err) == 0,
                      "%s", err.msg);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            each_t e = {.n = ns[k]};
            e.hits = calloc((size_t)ns[k] + 1, sizeof *e.hits);
            ck_assert_ptr_nonnull(e.hits);
            nn_context_for_each(c, ns[k], each_fn, &e);
            ck_assert_int_eq(atomic_load(&e.bad), 0);
            for (int i = 0; i < ns[k]; i++)
                ck_assert_msg(atomic_load(&e.hits[i]) == 1,
                              "%d threads, n %d: item %d ran %d times",
                              threads[ti], ns[k], i, atomic_load(&e.hits[i]));
            free(e.hits);
        }
        nn_context_free(c);
    }
    nn_model_free(m);
}
END_TEST

static Suite *threadpool_suite(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_item_once);
    tcase_add_test(tc, test_fewer_items_than_threads);
    tcase_add_test(tc, test_back_to_back_and_after_sleep);
    tcase_add_test(tc, test_inline);
    tcase_add_test(tc, test_create_arguments);
    tcase_add_test(tc, test_large_n_tiled);
    tcase_add_test(tc, test_same_results_any_thread_count);
    tcase_add_test(tc, test_concurrent_pools);
    tcase_add_test(tc, test_create_free_loop);
    tcase_add_test(tc, test_slow_thread_does_not_stall);
    tcase_add_test(tc, test_threads_run_their_own_chunks_first);
    tcase_add_test(tc, test_context_for_each);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(threadpool_suite());
}
