/* A small fork-join thread pool owned by one execution context. The thread
 * that calls nn_pool_for works too; workers spin briefly then sleep, so the
 * per-operator hand-off costs microseconds. Not shared between contexts. */
#ifndef NN_POOL_H
#define NN_POOL_H

#include <stdint.h>

typedef struct nn_pool nn_pool_t;

/* fn(arg, begin, end, tid) processes items [begin, end); tid < nthreads. */
typedef void (*nn_pool_fn)(void *arg, int64_t begin, int64_t end, int tid);

int nn_pool_create(nn_pool_t **out, int nthreads);
void nn_pool_free(nn_pool_t *pool); /* NULL is a no-op */
int nn_pool_threads(const nn_pool_t *pool); /* 1 for a NULL pool */

/* Splits [0, n) into contiguous chunks, one per thread, and returns when all
 * are done. A NULL pool (or n small) runs fn(arg, 0, n, 0) inline. */
void nn_pool_for(nn_pool_t *pool, int64_t n, nn_pool_fn fn, void *arg);

#endif
