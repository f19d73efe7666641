/*
 * threadpool.c - pthread pool with dynamically handed-out chunks (see
 * threadpool.h).
 *
 * One 64-bit atomic word describes the current job: its generation (high
 * 32 bits), a CLOSED flag and the number of workers inside it. The caller
 * publishes a job by writing its fields, resetting the chunk counter and
 * then storing a new generation with active = 0 (release). A worker that
 * sees the new generation joins by incrementing `active` with a
 * compare-and-swap that fails if the generation changed or the job is
 * closed, so once inside it reads the fields of the right job. Everyone
 * inside takes chunks from an atomic counter until none are left; workers
 * then leave (decrement active, release). The caller, once out of chunks,
 * waits for active == 0 and closes the job with a CAS, after which no late
 * worker can join: the fields may then be reused for the next job.
 *
 * Waiting: workers spin for a short while between jobs (yielding the CPU
 * after SPIN_PAUSE_NS), then sleep on a condition variable. The publisher
 * takes the mutex after storing the generation and broadcasts when a worker
 * sleeps; a worker checks the generation under the same mutex before
 * sleeping, so no wake-up is lost.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SPIN_PAUSE_NS 50000   /* busy-wait this long, then yield between polls */
#define SPIN_NS 300000        /* then sleep: longer than the gap between two ops of a decode step */

#define CLOSED ((uint64_t)1 << 31)
#define ACTIVE_MASK (CLOSED - 1)

struct ms6_threadpool {
    int n;                        /* threads including the caller */
    pthread_t *threads;           /* n - 1 workers */
    pthread_mutex_t mu;           /* guards sleepers and the condition variable */
    pthread_cond_t cv;
    int sleepers;
    pthread_mutex_t job_mu;       /* one job at a time, whichever thread calls */
    _Atomic uint64_t state;       /* gen << 32 | CLOSED | active */
    _Atomic int64_t next;         /* next chunk to hand out */
    atomic_int stop;
    /* the current job, valid while its generation is open */
    ms6_chunk_fn fn;
    void *arg;
    int64_t n_chunks;
};

typedef struct {
    ms6_threadpool *pool;
    int tid;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double ms6_monotonic_s(void) { return 1e-9 * (double)now_ns(); }

int ms6_cpu_count(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

void ms6_split_range(int64_t total, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi) {
    if (align < 1) align = 1;
    const int64_t units = (total + align - 1) / align;
    const int64_t base = units / nth, extra = units % nth;
    const int64_t u0 = ith * base + (ith < extra ? ith : extra);
    const int64_t u1 = u0 + base + (ith < extra ? 1 : 0);
    *lo = u0 * align < total ? u0 * align : total;
    *hi = u1 * align < total ? u1 * align : total;
}

static inline uint32_t gen_of(uint64_t s) { return (uint32_t)(s >> 32); }

static void run_chunks(ms6_threadpool *pool, int tid) {
    for (;;) {
        const int64_t c = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (c >= pool->n_chunks) return;
        pool->fn(pool->arg, c, tid);
    }
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    ms6_threadpool *pool = wa->pool;
    const int tid = wa->tid;
    free(wa);
    uint32_t seen = 0; /* generation 0 is "no job yet" */
    for (;;) {
        uint64_t s;
        uint64_t t0 = 0;
        unsigned spins = 0;
        for (;;) {
            s = atomic_load_explicit(&pool->state, memory_order_acquire);
            if (gen_of(s) != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
            if ((++spins & 63) != 0) {
                cpu_relax();
                continue;
            }
            const uint64_t t = now_ns();
            if (!t0) t0 = t;
            if (t - t0 > SPIN_NS) {
                pthread_mutex_lock(&pool->mu);
                pool->sleepers++;
                while (gen_of(atomic_load_explicit(&pool->state, memory_order_acquire)) == seen &&
                       !atomic_load_explicit(&pool->stop, memory_order_relaxed))
                    pthread_cond_wait(&pool->cv, &pool->mu);
                pool->sleepers--;
                pthread_mutex_unlock(&pool->mu);
                t0 = 0;
            } else if (t - t0 > SPIN_PAUSE_NS) {
                sched_yield();
            }
        }
        if (atomic_load_explicit(&pool->stop, memory_order_relaxed)) return NULL;
        seen = gen_of(s);
        /* join unless the job is already closed or replaced */
        int joined = 0;
        while (gen_of(s) == seen && !(s & CLOSED)) {
            if (atomic_compare_exchange_weak_explicit(&pool->state, &s, s + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = 1;
                break;
            }
        }
        if (!joined) continue;
        run_chunks(pool, tid);
        atomic_fetch_sub_explicit(&pool->state, 1, memory_order_release);
    }
}

ms6_threadpool *ms6_threadpool_create(int n_threads) {
    if (n_threads <= 0) n_threads = ms6_cpu_count();
    if (n_threads > 1024) n_threads = 1024;
    ms6_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n = 1;
    atomic_init(&pool->state, 0);
    atomic_init(&pool->next, 0);
    atomic_init(&pool->stop, 0);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (pthread_mutex_init(&pool->job_mu, NULL) != 0) {
        pthread_cond_destroy(&pool->cv);
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!pool->threads) {
            ms6_threadpool_free(pool);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) break;
            wa->pool = pool;
            wa->tid = i;
            if (pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                break;
            }
            pool->n = i + 1;
        }
    }
    return pool;
}

void ms6_threadpool_free(ms6_threadpool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i - 1], NULL);
    free(pool->threads);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    pthread_mutex_destroy(&pool->job_mu);
    free(pool);
}

int ms6_threadpool_size(const ms6_threadpool *pool) { return pool ? pool->n : 1; }

void ms6_threadpool_for(ms6_threadpool *pool, int64_t n_chunks, ms6_chunk_fn fn, void *arg) {
    if (n_chunks <= 0) return;
    if (!pool) {
        for (int64_t c = 0; c < n_chunks; c++) fn(arg, c, 0);
        return;
    }
    /* Callers on several threads (sessions sharing one model) take turns:
     * the job fields and the per-thread scratch of the ops are the pool's. */
    pthread_mutex_lock(&pool->job_mu);
    if (pool->n == 1 || n_chunks == 1) {
        for (int64_t c = 0; c < n_chunks; c++) fn(arg, c, 0);
        pthread_mutex_unlock(&pool->job_mu);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->n_chunks = n_chunks;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    /* the previous job is closed with active == 0: open the next generation
     * (0 is reserved for "no job yet") */
    uint32_t g = gen_of(atomic_load_explicit(&pool->state, memory_order_relaxed)) + 1;
    if (g == 0) g = 1;
    atomic_store_explicit(&pool->state, (uint64_t)g << 32, memory_order_release);
    pthread_mutex_lock(&pool->mu);
    if (pool->sleepers) pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    run_chunks(pool, 0);
    /* wait for the workers inside, then close so no late one joins */
    uint64_t expect = (uint64_t)g << 32;
    unsigned spins = 0;
    while (!atomic_compare_exchange_weak_explicit(&pool->state, &expect, expect | CLOSED, memory_order_acq_rel,
                                                  memory_order_acquire)) {
        expect = (uint64_t)g << 32;
        if (++spins > 2000) sched_yield();
        else cpu_relax();
    }
    pthread_mutex_unlock(&pool->job_mu);
}
