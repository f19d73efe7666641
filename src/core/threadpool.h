/*
 * threadpool.h - a small pool of pthreads for the CPU ops: parallel loops
 * over a fixed number of chunks.
 *
 * ms6_threadpool_for(pool, n_chunks, fn, arg) calls fn(arg, chunk, tid) once
 * for every chunk in 0..n_chunks-1 and returns when all calls have returned.
 * The caller takes part (tid 0); workers have tids 1..size-1, so per-thread
 * scratch can be indexed by tid. Chunks are handed out dynamically (an
 * atomic counter), but an op defines its chunks without looking at the
 * thread count and computes each output element inside one chunk, in a
 * fixed order: results are the same bits whatever the thread count and
 * whichever thread runs which chunk.
 *
 * Dynamic hand-out matters on a loaded machine: a worker that the OS has
 * not scheduled yet does not hold up the job, the caller simply runs the
 * chunks itself, and a worker that arrives after the last chunk was taken
 * does not join at all.
 *
 * Between jobs the workers spin briefly (a decode step issues a few hundred
 * small jobs back to back), then sleep on a condition variable, so an idle
 * pool costs no CPU. Callers on several threads take turns (one job at a
 * time), so a backend shared by sessions on several threads stays safe.
 */
#ifndef MS6_THREADPOOL_H
#define MS6_THREADPOOL_H

#include "core/internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms6_threadpool ms6_threadpool;

typedef void (*ms6_chunk_fn)(void *arg, int64_t chunk, int tid);

/* n_threads <= 0: one thread per available core. Returns NULL when out of
 * memory; a pool with fewer threads than asked (thread creation failed part
 * way) is still valid. */
ms6_threadpool *ms6_threadpool_create(int n_threads);
void ms6_threadpool_free(ms6_threadpool *pool);
/* Threads including the caller (the largest tid + 1); 1 for NULL. */
int ms6_threadpool_size(const ms6_threadpool *pool);

/* Runs fn over chunks 0..n_chunks-1 (see above). pool may be NULL: then
 * everything runs on the caller with tid 0. n_chunks <= 1 never wakes a
 * worker. */
void ms6_threadpool_for(ms6_threadpool *pool, int64_t n_chunks, ms6_chunk_fn fn, void *arg);

/* Seconds on the monotonic clock (for timing; the origin is arbitrary). */
double ms6_monotonic_s(void);

/* Number of cores this process may run on (at least 1). */
int ms6_cpu_count(void);

/* Splits [0, total) into nth contiguous parts aligned to `align` elements
 * (except the end); part ith is [*lo, *hi). Deterministic. */
void ms6_split_range(int64_t total, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi);

#ifdef __cplusplus
}
#endif

#endif
