/*
 * cpu.c - the "cpu" backend: threaded, SIMD ops (fast_*.c) behind the ops
 * table, host memory, and the run-time choice of kernels.
 *
 * The backend owns a thread pool of n_threads threads (0 = all cores) and
 * per-thread scratch (64 KiB for the scan and state update), so the ops
 * allocate nothing on the common path. Embedding lookup stays the
 * reference op (a row copy).
 */
#include "backend/cpu/fast.h"

#include <stdlib.h>
#include <string.h>

const ms6_fast_kernels *ms6_fast_kernels_by_name(const char *name) {
    if (!name) return NULL;
    if (!strcmp(name, "scalar")) return &ms6_fast_kernels_scalar;
#if defined(__x86_64__)
    if (!strcmp(name, "avx2")) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
            return &ms6_fast_kernels_avx2;
        return NULL;
    }
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon")) return &ms6_fast_kernels_neon;
#endif
    return NULL;
}

const ms6_fast_kernels *ms6_fast_kernels_select(void) {
    const char *env = getenv("MS6_CPU_ISA");
    if (env && *env) {
        const ms6_fast_kernels *k = ms6_fast_kernels_by_name(env);
        if (k) return k;
    }
#if defined(__x86_64__)
    const ms6_fast_kernels *k = ms6_fast_kernels_by_name("avx2");
    if (k) return k;
#endif
#if defined(__aarch64__)
    return &ms6_fast_kernels_neon;
#else
    return &ms6_fast_kernels_scalar;
#endif
}

static void cpu_destroy(ms6_backend *be) {
    ms6_cpu_ctx *c = be->ctx;
    if (!c) return;
    ms6_threadpool_free(c->pool);
    for (int i = 0; i < c->n_threads; i++) {
        if (c->scratch) free(c->scratch[i]);
    }
    free(c->scratch);
    free(c);
    be->ctx = NULL;
}

static const ms6_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = ms6_host_alloc,
    .dealloc = ms6_host_dealloc,
    .upload = ms6_host_copy,
    .download = ms6_host_copy,
    .memzero = ms6_host_memzero,
    .synchronize = ms6_host_nop,
    .scan_fwd = ms6_fast_scan_fwd,
    .state_update = ms6_fast_state_update,
    .conv1d_fwd = ms6_fast_conv1d_fwd,
    .conv1d_update = ms6_fast_conv1d_update,
    .rmsnorm = ms6_fast_rmsnorm,
    .gemm = ms6_fast_gemm,
    .embed = ms6_ref_embed,
};

static void *alloc_aligned(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    return p;
}

ms6_status ms6_cpu_init_with(ms6_backend *be, int n_threads, const ms6_fast_kernels *k) {
    be->ops = &cpu_ops;
    ms6_cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    be->ctx = c;
    c->k = k ? k : ms6_fast_kernels_select();
    c->pool = ms6_threadpool_create(n_threads);
    if (!c->pool) {
        cpu_destroy(be);
        return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "cpu backend: cannot start %d threads", n_threads);
    }
    c->n_threads = ms6_threadpool_size(c->pool);
    be->n_threads = c->n_threads;
    c->use_blas = ms6_fast_blas_wanted();
    c->scratch = calloc((size_t)c->n_threads, sizeof(float *));
    if (!c->scratch) {
        cpu_destroy(be);
        return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory");
    }
    for (int i = 0; i < c->n_threads; i++) {
        c->scratch[i] = alloc_aligned(sizeof(float) * MS6_FAST_SCRATCH_FLOATS);
        if (!c->scratch[i]) {
            cpu_destroy(be);
            return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "cpu backend: out of memory for scratch");
        }
    }
    return MS6_STATUS_OK;
}

typedef struct {
    const ms6_fast_kernels *k;
    int64_t iters;
    volatile float sink;
} fma_job;

static void fma_chunk(void *arg, int64_t chunk, int tid) {
    fma_job *j = arg;
    (void)chunk;
    (void)tid;
    j->sink = j->k->fma_probe(j->iters);
}

double ms6_fast_fma_peak(const ms6_fast_kernels *k, int n_threads) {
    if (!k) k = ms6_fast_kernels_select();
    ms6_threadpool *pool = ms6_threadpool_create(n_threads);
    if (!pool) return 0;
    const int T = ms6_threadpool_size(pool);
    /* one chunk per thread of ~20 ms each at 100 GFLOP/s; best of 5, since
     * a busy machine only ever slows the probe down */
    fma_job j = {k, 10000000, 0};
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = ms6_monotonic_s();
        ms6_threadpool_for(pool, T, fma_chunk, &j);
        const double t = ms6_monotonic_s() - t0;
        if (t < best) best = t;
    }
    ms6_threadpool_free(pool);
    return 192.0 * (double)j.iters * (double)T / best;
}

ms6_status ms6_cpu_init(ms6_backend *be) {
    if (be->n_threads < 0)
        return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "cpu backend: n_threads = %d, must be >= 0 (0 = all cores)",
                                be->n_threads);
    return ms6_cpu_init_with(be, be->n_threads, NULL);
}
