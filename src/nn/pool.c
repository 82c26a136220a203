/* Fork-join thread pool with owned chunks.
 *
 * DESIGN: a job (fn, arg, n items) is cut into a few chunks per thread,
 * and thread t owns the t-th run of them: items [t * n / T, (t + 1) * n / T)
 * when nobody is late. Operators that follow each other and cut their work
 * alike (planes of the same channels) so read mostly what the same core
 * just wrote, from its own L2: on this project's machines a megabyte
 * written by the other core reads 3x slower (bench/README.md). Each thread
 * runs its own chunks first, in order, then takes what is left of the
 * others', from the end of their runs: a worker that wakes up late, or a
 * core the hypervisor takes away, never holds the caller up, which waits
 * only for chunks already started.
 *
 * A chunk is claimed by a compare-and-swap of its slot from an older job's
 * number to the current one's. The caller publishes a job as one 64-bit
 * word (job number << 16 | chunks) after writing its fields; a worker
 * reads the fields only after a claim succeeds, which cannot happen once
 * the job's last chunk is done (every slot then holds its number), so it
 * never sees a stale job, and a worker still holding an old word claims
 * nothing.
 *
 * Idle workers spin briefly (operators follow each other within
 * microseconds during a run) and then sleep on a condition variable; the
 * sleep/wake handshake on `job` and `sleepers` is sequentially consistent
 * so no wake-up is lost. */
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
    _Atomic uint64_t job;    /* job number << 16 | chunks; 0: none yet */
    _Atomic uint64_t *claim; /* per chunk: number of the job that claimed it */
    uint64_t jobs;           /* jobs published */
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

#define JOB_CHUNK_BITS 16 /* chunks of a job: at most 256 x 4 */

/* Claims chunk c of job number j; 1 when this thread got it. */
static int claim(struct nn_pool *p, uint64_t j, uint64_t c)
{
    uint64_t v = atomic_load(&p->claim[c]);
    return v < j && atomic_compare_exchange_strong(&p->claim[c], &v, j);
}

/* Claims and runs one chunk, tid's own first; returns 0 when none is left. */
static int run_one(struct nn_pool *p, int tid)
{
    const uint64_t word = atomic_load(&p->job);
    const uint64_t j = word >> JOB_CHUNK_BITS;
    const uint64_t chunks = word & ((1u << JOB_CHUNK_BITS) - 1);
    const uint64_t T = (uint64_t)p->nthreads;
    uint64_t c = chunks;
    for (uint64_t k = chunks * tid / T; k < chunks * (tid + 1) / T && c == chunks; k++)
        if (claim(p, j, k))
            c = k;
    for (uint64_t o = 1; o < T && c == chunks; o++) { /* the others' runs, from their ends */
        const uint64_t u = ((uint64_t)tid + o) % T;
        for (uint64_t k = chunks * (u + 1) / T; k-- > chunks * u / T && c == chunks;)
            if (claim(p, j, k))
                c = k;
    }
    if (c == chunks)
        return 0;
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
        uint64_t seen = atomic_load(&p->job);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->sleepers, 1);
        while (atomic_load(&p->job) == seen && !atomic_load(&p->stop))
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
    atomic_init(&p->job, 0);
    p->claim = calloc((size_t)nthreads * NN_POOL_CHUNKS_PER_THREAD, sizeof *p->claim);
    if (!p->claim) {
        free(p);
        return -ENOMEM;
    }
    for (int c = 0; c < nthreads * NN_POOL_CHUNKS_PER_THREAD; c++)
        atomic_init(&p->claim[c], 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->claim);
        free(p);
        return -ENOMEM;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->claim);
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
    free(p->claim);
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
    atomic_store(&p->job, ++p->jobs << JOB_CHUNK_BITS | (uint64_t)chunks);
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
