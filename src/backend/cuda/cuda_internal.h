/* Shared by the CUDA backend's files: context, error helpers, and the
 * extern "C" entry points of each op family. */
#ifndef MS6_CUDA_INTERNAL_H
#define MS6_CUDA_INTERNAL_H

#include "backend/backend.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms6_cuda_ctx {
    int device;
    cudaStream_t stream;       /* borrowed from the caller, or 0 */
    cudaDeviceProp prop;
    void *blaslt;              /* cublasLtHandle_t, created on first gemm */
    void *workspace;           /* cuBLASLt workspace */
    size_t workspace_size;
    int32_t *argmax_buf;       /* argmax.cu: one index per row */
    int64_t argmax_cap;
    void *pinned;              /* page-locked bounce buffer for downloads (backend_cuda.cu) */
    int pinned_failed;         /* cudaMallocHost failed once: download directly */
    pthread_mutex_t pinned_lock;
    void *pk_scratch;          /* decode_persist.cu: grid barrier counter + x_proj accumulators */
    void *dec_prof;            /* decode.cu: block timeline ring (MS6_DEC_PROF=FILE), or NULL */
} ms6_cuda_ctx;

static inline ms6_cuda_ctx *ms6_cuda(ms6_backend *be) { return (ms6_cuda_ctx *)be->ctx; }

/* Whether p is 16-byte aligned (the vector loads' requirement). */
static inline int ms6_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Whether environment variable `name` is set to exactly `value` (the
 * kernels' on/off switches, e.g. MS6_CUDA_FUSED=0, MS6_CUDA_PERSIST=1). */
static inline int ms6_env_is(const char *name, const char *value) {
    const char *e = getenv(name);
    return e && !strcmp(e, value);
}

/* Turns a CUDA error into a backend message naming the op. */
ms6_status ms6_cuda_check(ms6_backend *be, cudaError_t e, const char *what);

/* Op families (one .cu each). */
ms6_status ms6_cuda_scan_fwd(ms6_backend *be, const ms6_scan_params *p);
ms6_status ms6_cuda_state_update(ms6_backend *be, const ms6_state_update_params *p);
ms6_status ms6_cuda_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p);
ms6_status ms6_cuda_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p);
ms6_status ms6_cuda_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p);
ms6_status ms6_cuda_gemm(ms6_backend *be, const ms6_gemm_params *p);
ms6_status ms6_cuda_embed(ms6_backend *be, const ms6_embed_params *p);
ms6_status ms6_cuda_mixer_step(ms6_backend *be, const ms6_mixer_step_params *p); /* decode.cu */
ms6_status ms6_cuda_norm_gemv(ms6_backend *be, const ms6_norm_gemv_params *p);
ms6_status ms6_cuda_decode_step(ms6_backend *be, const ms6_decode_step_params *p); /* decode_persist.cu */
ms6_status ms6_cuda_ssm_step(ms6_backend *be, const ms6_ssm_step_params *p); /* decode_batch.cu */
ms6_status ms6_cuda_argmax_rows(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *out); /* argmax.cu */
ms6_status ms6_cuda_argmax_feed(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *ids, int32_t *log,
                                int32_t *pos); /* argmax.cu */

/* Bytes of pk_scratch (allocated with the context). */
#define MS6_CUDA_PK_SCRATCH (64 * 1024)
/* decode.cu's block timeline (development; MS6_DEC_PROF=FILE in a build
 * configured with -DMS6_DEC_PROF=ON): the ring taken with the context, and
 * written to FILE and freed with it */
void ms6_cuda_dec_prof_init(ms6_cuda_ctx *c);
void ms6_cuda_dec_prof_free(ms6_cuda_ctx *c);

/* Frees what the gemm created on first use (cuBLASLt handle, descriptor
 * cache, scratch); called by the backend's destroy. */
void ms6_cuda_gemm_release(ms6_cuda_ctx *c);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* ---- device helpers shared by the scan, state-update and conv kernels ---- */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* An activation or B/C tensor as the kernels see it (int64 element strides). */
typedef struct ms6_dev_act {
    void *ptr;
    int dtype;
    long long bs, ds, ts;
} DevAct;
typedef struct ms6_dev_bc {
    const void *ptr;
    int dtype, var;
    long long bs, gs, ds, ns, ts;
} DevBC;

static inline DevAct dev_act(const ms6_act &a) {
    DevAct r = {a.ptr, (int)a.dtype, a.batch_stride, a.dim_stride, a.seq_stride};
    return r;
}
static inline DevBC dev_bc(const ms6_bc &b) {
    DevBC r = {b.ptr, (int)b.dtype, b.mode == MS6_BC_VARIABLE, b.batch_stride, b.group_stride,
               b.dim_stride, b.state_stride, b.seq_stride};
    return r;
}

static constexpr float kLog2e = 1.4426950408889634f;

/* Element load/store by dtype tag; the tag is uniform across a launch, so
 * the branch costs no divergence. */
static __device__ __forceinline__ float ld_any(const void *p, int dt, long long i) {
    if (dt == MS6_DTYPE_F16) return __half2float(__ushort_as_half(((const unsigned short *)p)[i]));
    if (dt == MS6_DTYPE_BF16) return __bfloat162float(__ushort_as_bfloat16(((const unsigned short *)p)[i]));
    return ((const float *)p)[i];
}
static __device__ __forceinline__ void st_any(void *p, int dt, long long i, float v) {
    if (dt == MS6_DTYPE_F16) ((unsigned short *)p)[i] = __half_as_ushort(__float2half_rn(v));
    else if (dt == MS6_DTYPE_BF16) ((unsigned short *)p)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    else ((float *)p)[i] = v;
}

/* 2^x on the special-function unit (relative error about 2^-22). */
static __device__ __forceinline__ float fast_ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

/* softplus with PyTorch's threshold (x > 20 returns x). log1p(e) for small
 * e = exp(x) uses its series, since log(1 + e) on the SFU loses the low bits
 * of e when e << 1 (dt around 1e-3 is common). */
static __device__ __forceinline__ float softplus_f(float x) {
    const float e = fast_ex2(x * kLog2e);
    const float series = e * (1.0f - e * (0.5f - e * (0.33333333f - e * 0.25f)));
    const float lg = __logf(1.0f + e);
    const float r = e < 0.03125f ? series : lg;
    return x > 20.0f ? x : r;
}

/* silu(z) = z / (1 + exp(-z)); __fdividef returns 0 for an infinite
 * denominator, the right limit for z -> -inf. */
static __device__ __forceinline__ float silu_f(float z) { return __fdividef(z, 1.0f + fast_ex2(-z * kLog2e)); }

/* One decode step of a causal depthwise conv channel, W = d_conv - 1 <= MAXW:
 * returns c0 + w[0..W) . s[0..W) + w[W] * x (that order) and shifts the state
 * s left, x appended. Every load goes out before the first store (a load
 * after a store to the same line goes to L2). conv_step_from reads the
 * state from sl (a copy, e.g. in shared memory) and writes it shifted to s. */
template <int MAXW>
static __device__ __forceinline__ float conv_step_from(const float *sl, float *s, const float *w, float c0, float x,
                                                       int W) {
    float sv[MAXW], wv[MAXW];
#pragma unroll
    for (int k = 0; k < MAXW; k++) {
        sv[k] = k < W ? sl[k] : 0.0f;
        wv[k] = k < W ? w[k] : 0.0f;
    }
    const float wx = w[W];
    float c = c0;
#pragma unroll
    for (int k = 0; k < MAXW; k++)
        if (k < W) c = fmaf(wv[k], sv[k], c);
    c = fmaf(wx, x, c);
#pragma unroll
    for (int k = 0; k < MAXW; k++)
        if (k < W) s[k] = k + 1 < W ? sv[k + 1] : x;
    return c;
}
template <int MAXW>
static __device__ __forceinline__ float conv_step(float *s, const float *w, float c0, float x, int W) {
    return conv_step_from<MAXW>(s, s, w, c0, x, W);
}

static __device__ __forceinline__ float tof(__half h) { return __half2float(h); }
static __device__ __forceinline__ float tof(__nv_bfloat16 h) { return __bfloat162float(h); }
static __device__ __forceinline__ float tof(float v) { return v; }

/* Asynchronous 16- and 4-byte copies global -> shared (cp.async; sm_80+),
 * and the wait for all of this thread's. */
static __device__ __forceinline__ void cp_async16(void *dst, const void *src) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(src) : "memory");
}
static __device__ __forceinline__ void cp_async4(void *dst, const void *src) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(s), "l"(src) : "memory");
}
static __device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

/* sm_90: mbarriers in shared memory and bulk copies global -> shared that
 * complete on one (the byte count announced first with mbar_expect_tx). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
static __device__ __forceinline__ unsigned smem_u32(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }
static __device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count));
}
static __device__ __forceinline__ void mbar_expect_tx(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
static __device__ __forceinline__ void mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
static __device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity) {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "W: \n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
        "@!p bra W;\n"
        "}\n" ::"r"(smem_u32(b)),
        "r"(parity)
        : "memory");
}
static __device__ __forceinline__ void bulk_load(void *dst, const void *src, unsigned bytes, uint64_t *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(smem_u32(bar))
                 : "memory");
}
#endif

/* A 64-bit key whose unsigned order is ms6_argmax's: the larger value
 * (-0 as +0, NaN below every number), then the smaller index (idx >= 0;
 * every key is above 0, the "nothing yet" of a reduction). The greedy
 * argmax kernels (argmax.cu, the decode head) reduce these with max. */
static __device__ __forceinline__ unsigned long long argmax_key(float v, int idx) {
    unsigned u = v == 0.0f ? 0u : __float_as_uint(v);
    u = isnan(v) ? 0u : (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)u << 32) | (0xffffffffu - (unsigned)idx);
}
static __device__ __forceinline__ int argmax_key_index(unsigned long long key) {
    return (int)(0xffffffffu - (unsigned)(key & 0xffffffffull));
}

/* One 16-byte load of data read once (weights streamed by the decode
 * kernels): read-only path, not kept in L1. */
static __device__ __forceinline__ uint4 ld_stream(const void *p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

/* One 16-byte store (a float4 assignment compiles to four 4-byte stores
 * when the alignment is not provable). */
static __device__ __forceinline__ void st_v4(float *p, float a, float b, float c, float d) {
    asm volatile("st.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}

/* A call ptxas schedules nothing across: every load above it is issued
 * before any use below it waits (without it ptxas may move uses of the
 * first loads above the last ones, a second round trip per thread). */
static __device__ __noinline__ void phase_fence() { asm volatile("" ::: "memory"); }

/* the sum of v over the 32 lanes of a warp, in every lane */
static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* 8 half values (one 16-byte vector) to fp32; the last argument picks the
 * half type (__half() or __nv_bfloat16()). */
static __device__ __forceinline__ void unpack8(const uint4 &v, float *f, __half) {
    const __half2 *h = reinterpret_cast<const __half2 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 t = __half22float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
static __device__ __forceinline__ void unpack8(const uint4 &v, float *f, __nv_bfloat16) {
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 t = __bfloat1622float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

/* the inverse: 8 fp32 values rounded to one 16-byte vector of halves */
static __device__ __forceinline__ uint4 pack8(const float *f, __half) {
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
    return u;
}
static __device__ __forceinline__ uint4 pack8(const float *f, __nv_bfloat16) {
    uint4 u;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    return u;
}
#endif

#endif
