/* Fork-join thread pool with dynamic chunks.
 *
 * DESIGN: a job (fn, arg, n items) is cut into a few chunks per thread. The
 * caller publishes it through one 64-bit `ticket` (high half: chunk count,
 * low half: next chunk to claim) and then claims chunks itself like any
 * worker; workers claim with a compare-and-swap. So a worker that wakes up
 * late, or a core the hypervisor takes away, never holds the caller up: the
 * caller simply runs the remaining chunks, and waits only for chunks
 * already being run. A worker reads the job's fields only after a claim
 * succeeds, which cannot happen once the job's last chunk is done, so it
 * never sees a stale job.
 *
 * Idle workers spin briefly (operators follow each other within
 * microseconds during a run) and then sleep on a condition variable; the
 * sleep/wake handshake on `ticket` and `sleepers` is sequentially
 * consistent so no wake-up is lost. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NN_POOL_SPINS 20000
#define NN_POOL_CHUNKS_PER_THREAD 4

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
    _Atomic uint64_t ticket; /* chunks << 32 | next chunk */
    atomic_int remaining;    /* chunks of the job not finished */
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

/* Claims and runs one chunk; returns 0 when none is left. */
static int run_one(struct nn_pool *p, int tid)
{
    uint64_t t = atomic_load(&p->ticket);
    for (;;) {
        uint64_t chunks = t >> 32, next = t & 0xffffffffu;
        if (next >= chunks)
            return 0;
        if (atomic_compare_exchange_weak(&p->ticket, &t, t + 1))
            break;
    }
    uint64_t chunks = t >> 32, c = t & 0xffffffffu;
    int64_t begin = (int64_t)((uint64_t)p->n * c / chunks);
    int64_t end = (int64_t)((uint64_t)p->n * (c + 1) / chunks);
    if (begin < end)
        p->fn(p->arg, begin, end, tid);
    atomic_fetch_sub(&p->remaining, 1);
    return 1;
}

static void *worker_main(void *opaque)
{
    struct nn_worker *w = opaque;
    struct nn_pool *p = w->pool;
    int spins = 0;
    while (!atomic_load(&p->stop)) {
        if (run_one(p, w->tid)) {
            spins = 0;
            continue;
        }
        if (++spins < NN_POOL_SPINS) {
            cpu_relax();
            continue;
        }
        uint64_t seen = atomic_load(&p->ticket);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleepers, 1);
        while (atomic_load(&p->ticket) == seen && !atomic_load(&p->stop))
            pthread_cond_wait(&p->cv, &p->mu);
        atomic_fetch_sub(&p->sleepers, 1);
        pthread_mutex_unlock(&p->mu);
        spins = 0;
    }
    return NULL;
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
    atomic_init(&p->ticket, 0);
    atomic_init(&p->remaining, 0);
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
    int64_t chunks = (int64_t)p->nthreads * NN_POOL_CHUNKS_PER_THREAD;
    if (chunks > n)
        chunks = n;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    atomic_store(&p->remaining, (int)chunks);
    atomic_store(&p->ticket, (uint64_t)chunks << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    while (run_one(p, 0))
        ;
    int spins = 0;
    while (atomic_load(&p->remaining) > 0) {
        if (++spins < NN_POOL_SPINS)
            cpu_relax();
        else
            sched_yield();
    }
}
