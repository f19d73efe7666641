/*
 * fast.h - internals of the fast CPU backend ("cpu").
 *
 * The ops (fast_gemm.c, fast_ssm.c, fast_conv.c) split their work over the
 * backend's thread pool with a fixed rule (each output element is computed
 * by one thread, in an order that does not depend on the thread count) and
 * call per-ISA kernels through an ms6_fast_kernels table. The kernels are
 * written once (fast_kern.h, over an 8-lane float vector type) and compiled
 * three times: AVX2+FMA+F16C (fast_isa_avx2.c, x86-64, through a target
 * pragma so the build needs no -mavx2), NEON (fast_isa_neon.c, aarch64) and
 * portable C (fast_isa_scalar.c). ms6_fast_kernels_select picks one at run
 * time (__builtin_cpu_supports on x86-64); MS6_CPU_ISA=scalar|avx2|neon in
 * the environment forces a choice (tests use ms6_fast_kernels_by_name).
 */
#ifndef MS6_FAST_H
#define MS6_FAST_H

#include "backend/backend.h"
#include "core/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of W (columns of y) per chunk of the parallel gemm loop. A chunk of
 * a prefill product keeps its W rows in L2 (64 x 768 fp32: 192 KiB) while
 * every tile of 3 rows of x passes over them. */
#define MS6_GEMM_NC 64

typedef struct ms6_fast_kernels {
    const char *name; /* "avx2", "neon", "scalar" */

    /* y[m*ldy + n] for every m < M and n in [n0, n1):
     *   v = dot(x_m, W_n) (+ bias[n]) (+ y[m*ldy+n] if accumulate)
     * x fp32, W of dtype wt (PyTorch Linear (N, K), row n at w + n*ldw).
     * Each element is summed in one fixed order (fast_kern.h), the same
     * whatever M, n0, n1 or the thread count. */
    void (*gemm)(int64_t M, int64_t K, const float *x, int64_t ldx, const void *w, ms6_dtype wt, int64_t ldw,
                 int64_t n0, int64_t n1, float *y, int64_t ldy, const float *bias, int accumulate);

    /* y[i] = exp(x[i]) for i < n (the vectorized polynomial exp). */
    void (*exp)(const float *x, float *y, int64_t n);

    /* Selective scan of channels [d0, d1) of batch b (see fast_ssm.c). */
    void (*scan)(const ms6_scan_params *p, int64_t b, int64_t d0, int64_t d1, float *scratch);

    /* Selective state update of channels [d0, d1) of sequence b. */
    void (*state_update)(const ms6_state_update_params *p, int64_t b, int64_t d0, int64_t d1, float *scratch);

    /* Causal conv1d of channels [d0, d1) of batch b. */
    void (*conv)(const ms6_conv1d_params *p, int64_t b, int64_t d0, int64_t d1);

    /* One-step conv of channels [d0, d1) of sequence b (slot >= 0). */
    void (*conv_update)(const ms6_conv1d_update_params *p, int64_t b, int64_t slot, int64_t d0, int64_t d1);

    /* RMSNorm of rows [r0, r1). */
    void (*rmsnorm)(const ms6_rmsnorm_params *p, int64_t r0, int64_t r1);

    /* iters x 12 independent 8-lane multiply-adds (192 FLOP per iteration);
     * returns a value that depends on all of them. */
    float (*fma_probe)(int64_t iters);
} ms6_fast_kernels;

/* Multiply-add peak of this machine with n_threads threads (<= 0: all
 * cores), in FLOP/s, measured with the kernels k (NULL: the selected ones):
 * the compute floor of a prefill, whose matrix products are FMA-bound. */
double ms6_fast_fma_peak(const ms6_fast_kernels *k, int n_threads);

/* Floats of scratch the scan and state-update kernels need per thread. */
#define MS6_FAST_SCRATCH_FLOATS (8 * 8 * MS6_MAX_D_STATE)

extern const ms6_fast_kernels ms6_fast_kernels_scalar;
#if defined(__x86_64__)
extern const ms6_fast_kernels ms6_fast_kernels_avx2;
#endif
#if defined(__aarch64__)
extern const ms6_fast_kernels ms6_fast_kernels_neon;
#endif

/* The best kernels this CPU runs (or those named by MS6_CPU_ISA). */
const ms6_fast_kernels *ms6_fast_kernels_select(void);
/* Kernels by name ("avx2", "neon", "scalar"); NULL when this build or
 * this CPU cannot run them. */
const ms6_fast_kernels *ms6_fast_kernels_by_name(const char *name);

/* Private state of a "cpu" backend. */
typedef struct ms6_cpu_ctx {
    ms6_threadpool *pool;
    int n_threads;
    const ms6_fast_kernels *k;
    float **scratch; /* per thread: MS6_FAST_SCRATCH_FLOATS floats */
    int use_blas;    /* prefill products through OpenBLAS (MS6_CPU_BLAS=1, MS6_HAVE_BLAS builds) */
} ms6_cpu_ctx;

/* 1 when this build links a BLAS the cpu backend can use (MS6_BLAS). */
int ms6_fast_blas_compiled(void);
/* 1 when the prefill products go to that BLAS: compiled in and
 * MS6_CPU_BLAS=1 in the environment. */
int ms6_fast_blas_wanted(void);

/* Creates a "cpu" backend context with n_threads threads (<= 0: all cores)
 * and the given kernels (NULL: ms6_fast_kernels_select()). */
ms6_status ms6_cpu_init_with(ms6_backend *be, int n_threads, const ms6_fast_kernels *k);

ms6_status ms6_fast_gemm(ms6_backend *be, const ms6_gemm_params *p);
ms6_status ms6_fast_scan_fwd(ms6_backend *be, const ms6_scan_params *p);
ms6_status ms6_fast_state_update(ms6_backend *be, const ms6_state_update_params *p);
ms6_status ms6_fast_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p);
ms6_status ms6_fast_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p);
ms6_status ms6_fast_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p);
ms6_status ms6_fast_embed(ms6_backend *be, const ms6_embed_params *p);

#ifdef __cplusplus
}
#endif

#endif
