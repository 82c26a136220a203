/* Fork-join thread pool.
 *
 * DESIGN: the caller publishes a job (fn, arg, n) and bumps a generation
 * counter; workers notice the new generation by spinning for a short while
 * (operators follow each other within microseconds during a run) and
 * otherwise sleep on a condition variable. Each thread takes one contiguous
 * chunk; the caller runs chunk 0 itself and then waits for `pending` to
 * reach zero. Sleeping and waking is a Dekker handshake on `gen` and
 * `sleepers` (both sequentially consistent) so that no wake-up is lost. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NN_POOL_SPINS 20000

struct nn_worker {
    struct nn_pool *pool;
    int tid;
    pthread_t thread;
};

struct nn_pool {
    int nthreads;
    int started; /* workers actually running */
    struct nn_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int pending;
    atomic_int sleepers;
    atomic_int stop;
    nn_pool_fn fn;
    void *arg;
    int64_t n;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_chunk(struct nn_pool *p, int tid)
{
    int64_t begin = p->n * tid / p->nthreads;
    int64_t end = p->n * (tid + 1) / p->nthreads;
    if (begin < end)
        p->fn(p->arg, begin, end, tid);
}

static void *worker_main(void *opaque)
{
    struct nn_worker *w = opaque;
    struct nn_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) {
            if (++spins < NN_POOL_SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        run_chunk(p, w->tid);
        atomic_fetch_sub(&p->pending, 1);
    }
}

int nn_pool_create(nn_pool_t **out, int nthreads)
{
    *out = NULL;
    if (nthreads < 1 || nthreads > 256)
        return -EINVAL;
    struct nn_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->nthreads = nthreads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return -ENOMEM;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -ENOMEM;
    }
    if (nthreads > 1) {
        p->workers = calloc((size_t)nthreads, sizeof *p->workers);
        if (!p->workers) {
            nn_pool_free(p);
            return -ENOMEM;
        }
        for (int t = 1; t < nthreads; t++) {
            p->workers[t].pool = p;
            p->workers[t].tid = t;
            int rc = pthread_create(&p->workers[t].thread, NULL, worker_main,
                                    &p->workers[t]);
            if (rc != 0) {
                nn_pool_free(p);
                return -rc;
            }
            p->started = t;
        }
    }
    *out = p;
    return 0;
}

void nn_pool_free(nn_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t <= p->started; t++)
        pthread_join(p->workers[t].thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int nn_pool_threads(const nn_pool_t *p)
{
    return p ? p->nthreads : 1;
}

void nn_pool_for(nn_pool_t *p, int64_t n, nn_pool_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (!p || p->nthreads == 1 || n == 1) {
        fn(arg, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->pending, p->nthreads - 1);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunk(p, 0);
    int spins = 0;
    while (atomic_load(&p->pending) > 0) {
        if (++spins < NN_POOL_SPINS)
            cpu_relax();
        else
            sched_yield();
    }
}
