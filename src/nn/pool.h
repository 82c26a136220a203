/* A small fork-join thread pool owned by one execution context: nthreads - 1
 * worker threads, plus the thread that calls nn_pool_for, which works too.
 * One thread at a time may call nn_pool_for on a given pool; separate pools
 * are independent of each other. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <stdint.h>

typedef struct nn_pool nn_pool_t;

/* fn(arg, begin, end, tid) processes items [begin, end), a non-empty range;
 * tid < nthreads identifies the thread (0: the caller of nn_pool_for). */
typedef void (*nn_pool_fn)(void *arg, int64_t begin, int64_t end, int tid);

/* Starts a pool of nthreads threads in all (1..256). Returns 0, or -EINVAL
 * or another negative errno with nothing left allocated and *out NULL. */
int nn_pool_create(nn_pool_t **out, int nthreads);
/* Stops and joins the workers; NULL is a no-op. Not during nn_pool_for. */
void nn_pool_free(nn_pool_t *pool);
int nn_pool_threads(const nn_pool_t *pool); /* 1 for a NULL pool */

/* Calls fn on disjoint ranges that cover [0, n), each item exactly once,
 * and returns when every call has returned; n <= 0 calls nothing. The
 * ranges are chunks, a few per thread; thread t runs the t-th run of them
 * (items from about t * n / nthreads on) before taking what the others
 * left, so a thread that starts late or runs slowly takes fewer of them
 * (the caller waits only for chunks already started), and jobs cut alike
 * give a thread the same items each time. A NULL or one-thread pool, or
 * n == 1, runs fn(arg, 0, n, 0) inline. */
void nn_pool_for(nn_pool_t *pool, int64_t n, nn_pool_fn fn, void *arg);

#endif
