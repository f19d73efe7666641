/*
 * gemm.cu - y (M, N) = x (M, K) . W^T (+ bias) (+ y) on the GPU, W a PyTorch
 * Linear weight (N, K) row-major, x / W / y each f32, f16 or bf16, fp32
 * accumulation everywhere.
 *
 * Two paths:
 *
 *   - Skinny (M <= 2, or M <= 8 for matrices of at most 2M elements; decode):
 *     a memory-bound kernel that streams
 *     every weight row exactly once with 16-byte loads. A group of `tpr`
 *     consecutive threads (4..256, a power of two) owns one weight row and
 *     walks its K dimension in chunks of 8 elements; each thread keeps up to 8
 *     fp32 accumulators (one per row of x, a tile of MT rows per grid.y), the
 *     group reduces with warp shuffles and, past 32 threads, through shared
 *     memory. tpr grows for short rows / few rows so that a small matrix
 *     (x_proj: 192 rows of 5120) still fills every SM. Rows of x are re-read
 *     by every group and live in L1/L2; the weights go through once.
 *     Unaligned or odd-K operands take the same kernel one element at a time.
 *
 *   - Wide (larger M, prefill and batched decode): cuBLASLt. cuBLASLt is
 *     column-major, and a row-major (rows, cols, ld) matrix is the
 *     column-major (cols, rows, ld) matrix, so the product is computed as
 *       y^T (N, M) = W_cm^T . x^T
 *     with A = W seen as column-major (K, N, ldw) under TRANSA = T,
 *     B = x seen as column-major (K, M, ldx), C = D = y seen as column-major
 *     (N, M, ldy): the "TN" layout the tensor cores prefer. A and B must share
 *     one type, so x is first converted to W's type when they differ (for f32
 *     x and half W this rounds x to half, as every half-precision engine
 *     does; the products are still accumulated in fp32). When cuBLASLt cannot
 *     write y's type directly (f32 weights with half y, or the other half
 *     type) it writes an fp32 temporary that a small epilogue kernel adds
 *     into y. The bias is added by a separate kernel. Matmul descriptors and
 *     the chosen algorithm are cached per shape; for a large shape the
 *     first product outside CUDA-graph capture times the heuristic's top 8
 *     algorithms and keeps the fastest (the first is not always it: narrow
 *     or short-K products such as x_proj and dt_proj). When cuBLASLt offers no
 *     algorithm (odd strides, unaligned pointers) the skinny kernel runs
 *     over tiles of 8 rows instead: slower, always correct.
 *
 * Checked against a float64 loop in tests/test_cuda_ops.c over every dtype
 * combination, both paths, bias and accumulate.
 */
#include "backend/cuda/cuda_internal.h"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which M take the skinny kernel. Measured on the H200 (dev/cuda/bench_gemm.c):
 * for 2.8b's in_proj (10240 x 2560 f16) M = 1 streams the weights at ~3 TB/s
 * and M = 2 at ~2.3, while from M = 4 the re-reads of x through L1 make it
 * slower than cuBLASLt (43 us vs 19 at M = 4). For small matrices (x_proj
 * 192 x 5120, dt_proj 5120 x 160) cuBLASLt's fixed cost dominates up to
 * M = 8 (15-20 us vs 6-10), so they stay on the skinny kernel. */
#define MS6_GEMV_MAX_M 2
#define MS6_GEMV_SMALL_MAX_M 8
#define MS6_GEMV_SMALL_ELEMS ((int64_t)1 << 21)
#define GEMV_THREADS 256
#define LT_CACHE_SIZE 48
#define LT_WORKSPACE_BYTES ((size_t)32 << 20)
/* shapes of at least this much work (2*M*N*K) have their algorithm timed */
#define LT_CANDIDATES 8
#define LT_TUNE_MIN_FLOP 2.5e8

/* ---------------------------------------------------------------------- */
/* element access by dtype tag (compile-time)                               */
/* ---------------------------------------------------------------------- */

template <int DT> __device__ __forceinline__ float ld1(const void *p, int64_t i);
template <> __device__ __forceinline__ float ld1<MS6_DTYPE_F32>(const void *p, int64_t i) {
    return __ldg((const float *)p + i);
}
template <> __device__ __forceinline__ float ld1<MS6_DTYPE_F16>(const void *p, int64_t i) {
    return __half2float(__ushort_as_half(__ldg((const unsigned short *)p + i)));
}
template <> __device__ __forceinline__ float ld1<MS6_DTYPE_BF16>(const void *p, int64_t i) {
    return __bfloat162float(__ushort_as_bfloat16(__ldg((const unsigned short *)p + i)));
}

/* 8 consecutive elements starting at element i (16-byte aligned for half,
 * 32-byte-aligned pair of float4 for f32). */
template <int DT> __device__ __forceinline__ void ld8(const void *p, int64_t i, float v[8]);
template <> __device__ __forceinline__ void ld8<MS6_DTYPE_F32>(const void *p, int64_t i, float v[8]) {
    const float4 a = __ldg((const float4 *)((const float *)p + i));
    const float4 b = __ldg((const float4 *)((const float *)p + i) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
template <> __device__ __forceinline__ void ld8<MS6_DTYPE_F16>(const void *p, int64_t i, float v[8]) {
    unpack8(__ldg((const uint4 *)((const unsigned short *)p + i)), v, __half());
}
template <> __device__ __forceinline__ void ld8<MS6_DTYPE_BF16>(const void *p, int64_t i, float v[8]) {
    unpack8(__ldg((const uint4 *)((const unsigned short *)p + i)), v, __nv_bfloat16());
}

/* Runtime-tagged scalar access for the rarely-hot epilogues. */
__device__ __forceinline__ float ld_rt(const void *p, int dt, int64_t i) {
    switch (dt) {
    case MS6_DTYPE_F16: return __half2float(__ushort_as_half(((const unsigned short *)p)[i]));
    case MS6_DTYPE_BF16: return __bfloat162float(__ushort_as_bfloat16(((const unsigned short *)p)[i]));
    default: return ((const float *)p)[i];
    }
}
__device__ __forceinline__ void st_rt(void *p, int dt, int64_t i, float v) {
    switch (dt) {
    case MS6_DTYPE_F16: ((unsigned short *)p)[i] = __half_as_ushort(__float2half_rn(v)); break;
    case MS6_DTYPE_BF16: ((unsigned short *)p)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v)); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* ---------------------------------------------------------------------- */
/* skinny kernel                                                            */
/* ---------------------------------------------------------------------- */

struct gemv_args {
    int64_t M, N, K;
    const void *x; int64_t ldx;
    const void *w; int64_t ldw;
    const float *bias;
    void *y; int y_dtype; int64_t ldy;
    int accumulate;
    int tpr_log2; /* threads per weight row = 1 << tpr_log2, 2..8 */
    int vec;      /* 16-byte path: K, ldw, ldx multiples of 8, aligned pointers */
};

template <int WT, int XT, int MT>
__global__ void __launch_bounds__(GEMV_THREADS) gemv_kernel(const gemv_args a) {
    const int tpr = 1 << a.tpr_log2;
    const int lane = threadIdx.x & (tpr - 1);
    const int row = threadIdx.x >> a.tpr_log2;
    const int64_t n = (int64_t)blockIdx.x * (GEMV_THREADS >> a.tpr_log2) + row;
    const int64_t m0 = (int64_t)blockIdx.y * MT;
    const int64_t mleft = a.M - m0;
    const int mcount = mleft < MT ? (int)mleft : MT;

    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m] = 0.0f;

    if (n < a.N) {
        if (a.vec) {
            const int64_t nch = a.K >> 3;
            const int64_t wrow = n * a.ldw;
#pragma unroll 4
            for (int64_t c = lane; c < nch; c += tpr) {
                float wv[8];
                ld8<WT>(a.w, wrow + (c << 3), wv);
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (m < mcount) {
                        float xv[8];
                        ld8<XT>(a.x, (m0 + m) * a.ldx + (c << 3), xv);
#pragma unroll
                        for (int j = 0; j < 8; j++) acc[m] = fmaf(wv[j], xv[j], acc[m]);
                    }
                }
            }
        } else {
            const int64_t wrow = n * a.ldw;
            for (int64_t k = lane; k < a.K; k += tpr) {
                const float wv = ld1<WT>(a.w, wrow + k);
#pragma unroll
                for (int m = 0; m < MT; m++)
                    if (m < mcount) acc[m] = fmaf(wv, ld1<XT>(a.x, (m0 + m) * a.ldx + k), acc[m]);
            }
        }
    }

    /* reduce the tpr partial sums of each row: shuffles inside a warp (the
     * xor offsets stay inside aligned groups of min(tpr, 32) lanes), then
     * shared memory across the warps of one row */
    const int wl = tpr < 32 ? tpr : 32;
#pragma unroll
    for (int m = 0; m < MT; m++)
        for (int off = wl >> 1; off > 0; off >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], off);
    if (tpr > 32) {
        __shared__ float red[MT][GEMV_THREADS / 32];
        const int warp = threadIdx.x >> 5;
        if ((threadIdx.x & 31) == 0) {
#pragma unroll
            for (int m = 0; m < MT; m++) red[m][warp] = acc[m];
        }
        __syncthreads();
        if (lane == 0) {
            const int wpr = tpr >> 5, w0 = row * wpr;
#pragma unroll
            for (int m = 0; m < MT; m++) {
                float s = 0.0f;
                for (int j = 0; j < wpr; j++) s += red[m][w0 + j];
                acc[m] = s;
            }
        }
    }
    if (lane == 0 && n < a.N) {
        const float b = a.bias ? a.bias[n] : 0.0f;
#pragma unroll
        for (int m = 0; m < MT; m++) {
            if (m < mcount) {
                const int64_t i = (m0 + m) * a.ldy + n;
                float v = acc[m] + b;
                if (a.accumulate) v += ld_rt(a.y, a.y_dtype, i);
                st_rt(a.y, a.y_dtype, i, v);
            }
        }
    }
}

template <int WT, int XT>
static void launch_gemv_mt(const gemv_args &a, int mt, dim3 grid, cudaStream_t s) {
    switch (mt) {
    case 1: gemv_kernel<WT, XT, 1><<<grid, GEMV_THREADS, 0, s>>>(a); break;
    case 2: gemv_kernel<WT, XT, 2><<<grid, GEMV_THREADS, 0, s>>>(a); break;
    case 4: gemv_kernel<WT, XT, 4><<<grid, GEMV_THREADS, 0, s>>>(a); break;
    default: gemv_kernel<WT, XT, 8><<<grid, GEMV_THREADS, 0, s>>>(a); break;
    }
}

template <int WT>
static void launch_gemv_x(const gemv_args &a, int xt, int mt, dim3 grid, cudaStream_t s) {
    switch (xt) {
    case MS6_DTYPE_F16: launch_gemv_mt<WT, MS6_DTYPE_F16>(a, mt, grid, s); break;
    case MS6_DTYPE_BF16: launch_gemv_mt<WT, MS6_DTYPE_BF16>(a, mt, grid, s); break;
    default: launch_gemv_mt<WT, MS6_DTYPE_F32>(a, mt, grid, s); break;
    }
}

static int aligned(const void *p, size_t n) { return ((uintptr_t)p % n) == 0; }

static ms6_status run_gemv(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    gemv_args a;
    a.M = p->M; a.N = p->N; a.K = p->K;
    a.x = p->x; a.ldx = p->ldx;
    a.w = p->w; a.ldw = p->ldw;
    a.bias = p->bias;
    a.y = p->y; a.y_dtype = (int)p->y_dtype; a.ldy = p->ldy;
    a.accumulate = p->accumulate;
    a.vec = (p->K % 8 == 0) && (p->ldw % 8 == 0) && (p->M == 1 || p->ldx % 8 == 0) && aligned(p->w, 16) &&
            aligned(p->x, 16);
    /* rows of x per tile: 1, 2, 4 or 8 (larger M runs several tiles) */
    const int mt = p->M > 4 ? 8 : p->M > 2 ? 4 : (int)p->M;

    /* threads per row: the smallest power of two >= 4 covering the row's
     * chunks up to 32, then doubled while the grid has fewer than 2 blocks
     * per SM (a target of 16 blocks per SM measured 10-20% slower on the
     * H200: fewer threads per row keep more independent loads per thread) */
    const int64_t chunks = a.vec ? p->K / 8 : p->K;
    int lg = 2;
    while (lg < 5 && ((int64_t)1 << lg) < chunks) lg++;
    const int64_t mtiles = (p->M + mt - 1) / mt;
    const int64_t want_blocks = 2 * (int64_t)c->prop.multiProcessorCount;
    for (;;) {
        const int64_t rows_per_block = GEMV_THREADS >> lg;
        const int64_t blocks = (p->N + rows_per_block - 1) / rows_per_block * mtiles;
        if (blocks >= want_blocks || lg >= 8 || ((int64_t)1 << (lg + 1)) > chunks) break;
        lg++;
    }
    a.tpr_log2 = lg;
    const int64_t rows_per_block = GEMV_THREADS >> lg;
    const int64_t gx = (p->N + rows_per_block - 1) / rows_per_block;
    if (gx > 0x7fffffff || mtiles > 65535)
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "gemm: shape M=%lld N=%lld too large for the skinny kernel",
                                (long long)p->M, (long long)p->N);
    dim3 grid((unsigned)gx, (unsigned)mtiles);
    switch (p->w_dtype) {
    case MS6_DTYPE_F16: launch_gemv_x<MS6_DTYPE_F16>(a, (int)p->x_dtype, mt, grid, c->stream); break;
    case MS6_DTYPE_BF16: launch_gemv_x<MS6_DTYPE_BF16>(a, (int)p->x_dtype, mt, grid, c->stream); break;
    default: launch_gemv_x<MS6_DTYPE_F32>(a, (int)p->x_dtype, mt, grid, c->stream); break;
    }
    return ms6_cuda_check(be, cudaGetLastError(), "gemm (skinny kernel)");
}

/* ---------------------------------------------------------------------- */
/* small elementwise kernels around cuBLASLt                                */
/* ---------------------------------------------------------------------- */

/* dst (rows, cols) packed, type dt_dst <- src (rows, cols) at ld, type
 * dt_src; rows over grid.y (in steps of gridDim.y), columns over x */
__global__ void convert_kernel(void *dst, int dt_dst, const void *src, int dt_src, int64_t rows, int64_t cols,
                               int64_t ld) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < cols; k += (int64_t)gridDim.x * blockDim.x)
            st_rt(dst, dt_dst, r * cols + k, ld_rt(src, dt_src, r * ld + k));
}

/* y[m, n] = (tmp ? tmp[m*N + n] : y[m, n]) + bias[n] + (accumulate ? y[m, n] : 0)
 * (with tmp == NULL, accumulate is 0: the bias is added in place) */
__global__ void epilogue_kernel(void *y, int y_dtype, int64_t ldy, const float *tmp, const float *bias, int accumulate,
                                int64_t M, int64_t N) {
    const int64_t total = M * N;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t m = i / N, n = i - m * N, o = m * ldy + n;
        float v = tmp ? tmp[i] : ld_rt(y, y_dtype, o);
        if (bias) v += bias[n];
        if (tmp && accumulate) v += ld_rt(y, y_dtype, o);
        st_rt(y, y_dtype, o, v);
    }
}

static unsigned grid_for(int64_t total, const ms6_cuda_ctx *c) {
    int64_t b = (total + 255) / 256, cap = (int64_t)c->prop.multiProcessorCount * 16;
    if (b > cap) b = cap;
    return (unsigned)(b < 1 ? 1 : b);
}

/* ---------------------------------------------------------------------- */
/* cuBLASLt                                                                  */
/* ---------------------------------------------------------------------- */

typedef struct lt_key {
    int64_t M, N, K, ldx, ldw, ldy;
    int ab, d;                 /* ms6_dtype of A/B and of D */
    int beta;                  /* accumulate: the algorithm is chosen per beta */
    int align_x, align_w, align_y;
} lt_key;

typedef struct lt_entry {
    lt_key key;
    int used;                  /* 0 = empty, 1 = algorithm found, -1 = none available */
    uint64_t stamp;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} lt_entry;

typedef struct gemm_state {
    cublasLtHandle_t h;
    lt_entry cache[LT_CACHE_SIZE];
    uint64_t clock;
    void *scratch;             /* converted x and the fp32 temporary */
    size_t scratch_bytes;
    /* outgrown scratch buffers: a captured CUDA graph may still point into
     * them, so they are freed only with the backend */
    void *retired[64];
    int n_retired;
} gemm_state;

static cudaDataType_t cuda_type(int dt) {
    return dt == MS6_DTYPE_F16 ? CUDA_R_16F : dt == MS6_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static int align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int r = 1;
    while (r < 256 && (a % (uintptr_t)(2 * r)) == 0) r *= 2;
    return r;
}

static const char *lt_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
    }
}

static void entry_release(lt_entry *e) {
    if (e->op) cublasLtMatmulDescDestroy(e->op);
    if (e->la) cublasLtMatrixLayoutDestroy(e->la);
    if (e->lb) cublasLtMatrixLayoutDestroy(e->lb);
    if (e->lc) cublasLtMatrixLayoutDestroy(e->lc);
    memset(e, 0, sizeof *e);
}

extern "C" void ms6_cuda_gemm_release(ms6_cuda_ctx *c) {
    gemm_state *g = (gemm_state *)c->blaslt;
    if (!g) return;
    for (int i = 0; i < LT_CACHE_SIZE; i++) entry_release(&g->cache[i]);
    if (g->h) cublasLtDestroy(g->h);
    if (g->scratch) cudaFree(g->scratch);
    for (int i = 0; i < g->n_retired; i++) cudaFree(g->retired[i]);
    free(g);
    c->blaslt = NULL;
}

static ms6_status state_get(ms6_backend *be, gemm_state **out) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (!c->blaslt) {
        gemm_state *g = (gemm_state *)calloc(1, sizeof *g);
        if (!g) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "gemm: out of host memory");
        cublasStatus_t s = cublasLtCreate(&g->h);
        if (s != CUBLAS_STATUS_SUCCESS) {
            free(g);
            return ms6_backend_fail(be, MS6_STATUS_DEVICE_ERROR, "gemm: cublasLtCreate failed (%s)", lt_status_name(s));
        }
        c->blaslt = g;
    }
    if (!c->workspace) {
        cudaError_t e = cudaMalloc(&c->workspace, LT_WORKSPACE_BYTES);
        if (e != cudaSuccess) {
            cudaGetLastError();
            c->workspace = NULL;
            return ms6_cuda_check(be, e, "gemm: cuBLASLt workspace");
        }
        c->workspace_size = LT_WORKSPACE_BYTES;
    }
    *out = (gemm_state *)c->blaslt;
    return MS6_STATUS_OK;
}

static int in_capture(cudaStream_t s) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &cs) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return cs != cudaStreamCaptureStatusNone;
}

static ms6_status scratch_reserve(ms6_backend *be, gemm_state *g, size_t bytes) {
    if (bytes <= g->scratch_bytes) return MS6_STATUS_OK;
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (in_capture(c->stream))
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED,
                                "gemm: mixed-dtype product needs %zu bytes of scratch during CUDA graph capture; "
                                "run it once before capturing",
                                bytes);
    /* grow geometrically so that few buffers are ever retired */
    if (bytes < 2 * g->scratch_bytes) bytes = 2 * g->scratch_bytes;
    if (g->scratch) {
        if (g->n_retired == (int)(sizeof g->retired / sizeof g->retired[0])) {
            cudaError_t e = cudaStreamSynchronize(c->stream);
            if (e != cudaSuccess) return ms6_cuda_check(be, e, "gemm: scratch");
            cudaFree(g->scratch);
        } else {
            g->retired[g->n_retired++] = g->scratch;
        }
        g->scratch = NULL;
        g->scratch_bytes = 0;
    }
    cudaError_t e = cudaMalloc(&g->scratch, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        g->scratch = NULL;
        return ms6_cuda_check(be, e, "gemm: scratch");
    }
    g->scratch_bytes = bytes;
    return MS6_STATUS_OK;
}

static int key_eq(const lt_key *a, const lt_key *b) { return memcmp(a, b, sizeof *a) == 0; }

/* Times the heuristic's candidates (n of them) on the real operands, with
 * D in a temporary buffer (beta = 0, so y is not touched), and returns the
 * index of the fastest; 0 when timing is not possible. */
static int lt_tune(ms6_backend *be, gemm_state *g, lt_entry *e, const cublasLtMatmulHeuristicResult_t *res, int n,
                   const void *w, const void *x) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    const lt_key *k = &e->key;
    const size_t dbytes = (size_t)(k->ldy > k->N ? k->ldy : k->N) * (size_t)k->M * (k->d == MS6_DTYPE_F32 ? 4 : 2);
    void *d = NULL;
    cudaEvent_t ev[2] = {NULL, NULL};
    int best = 0;
    float best_ms = 0.0f;
    if (cudaMalloc(&d, dbytes) != cudaSuccess || cudaEventCreate(&ev[0]) != cudaSuccess ||
        cudaEventCreate(&ev[1]) != cudaSuccess) {
        cudaGetLastError();
        goto done;
    }
    {
        const float alpha = 1.0f, beta = 0.0f;
        const double flop = 2.0 * (double)k->M * (double)k->N * (double)k->K;
        const int reps = flop > 2e10 ? 3 : 10;
        for (int i = 0; i < n; i++) {
            if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > c->workspace_size) continue;
            cublasStatus_t s = cublasLtMatmul(g->h, e->op, &alpha, w, e->la, x, e->lb, &beta, d, e->lc, d, e->lc,
                                              &res[i].algo, c->workspace, c->workspace_size, c->stream);
            if (s != CUBLAS_STATUS_SUCCESS) continue;
            cudaEventRecord(ev[0], c->stream);
            for (int r = 0; r < reps && s == CUBLAS_STATUS_SUCCESS; r++)
                s = cublasLtMatmul(g->h, e->op, &alpha, w, e->la, x, e->lb, &beta, d, e->lc, d, e->lc, &res[i].algo,
                                   c->workspace, c->workspace_size, c->stream);
            cudaEventRecord(ev[1], c->stream);
            float ms = 0.0f;
            if (s != CUBLAS_STATUS_SUCCESS || cudaEventSynchronize(ev[1]) != cudaSuccess ||
                cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess) {
                cudaGetLastError();
                continue;
            }
            if (getenv("MS6_GEMM_TUNE_VERBOSE"))
                fprintf(stderr, "gemm tune M=%lld N=%lld K=%lld candidate %d: %.2f us (%.1f TFLOP/s)\n",
                        (long long)k->M, (long long)k->N, (long long)k->K, i, 1e3 * ms / reps,
                        flop * reps / (1e-3 * ms) / 1e12);
            if (best_ms == 0.0f || ms < best_ms) best_ms = ms, best = i;
        }
    }
done:
    if (ev[0]) cudaEventDestroy(ev[0]);
    if (ev[1]) cudaEventDestroy(ev[1]);
    if (d) {
        cudaStreamSynchronize(c->stream);
        cudaFree(d);
    }
    cudaGetLastError();
    return best;
}

/* Finds or builds the descriptors + algorithm for one shape; *out is NULL
 * when cuBLASLt has no algorithm for it (the caller falls back). The first
 * product of a large shape outside graph capture times the heuristic's top
 * LT_CANDIDATES algorithms on its operands (w, x) and keeps the fastest
 * (MS6_GEMM_TUNE=0: the heuristic's first, as before). */
static ms6_status lt_lookup(ms6_backend *be, gemm_state *g, const lt_key *k, const void *w, const void *x,
                            lt_entry **out) {
    *out = NULL;
    lt_entry *victim = NULL;
    for (int i = 0; i < LT_CACHE_SIZE; i++) {
        lt_entry *e = &g->cache[i];
        if (e->used && key_eq(&e->key, k)) {
            e->stamp = ++g->clock;
            *out = e->used > 0 ? e : NULL;
            return MS6_STATUS_OK;
        }
        /* an empty slot, else the least recently used one */
        if (!victim || (victim->used && (!e->used || e->stamp < victim->stamp))) victim = e;
    }
    entry_release(victim);
    lt_entry *e = victim;
    e->key = *k;
    e->stamp = ++g->clock;
    cublasStatus_t s;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cudaDataType_t ab = cuda_type(k->ab), d = cuda_type(k->d);
    /* row-major x (M, K, ldx) is column-major (K, M, ldx); likewise W and y */
    const uint64_t ldx = (uint64_t)(k->M == 1 && k->ldx < k->K ? k->K : k->ldx);
    const uint64_t ldy = (uint64_t)(k->M == 1 && k->ldy < k->N ? k->N : k->ldy);
    if ((s = cublasLtMatmulDescCreate(&e->op, CUBLAS_COMPUTE_32F, CUDA_R_32F)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatrixLayoutCreate(&e->la, ab, (uint64_t)k->K, (uint64_t)k->N, (int64_t)k->ldw)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatrixLayoutCreate(&e->lb, ab, (uint64_t)k->K, (uint64_t)k->M, (int64_t)ldx)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatrixLayoutCreate(&e->lc, d, (uint64_t)k->N, (uint64_t)k->M, (int64_t)ldy)) != CUBLAS_STATUS_SUCCESS) {
        entry_release(e);
        return ms6_backend_fail(be, MS6_STATUS_DEVICE_ERROR, "gemm: cuBLASLt descriptor setup failed (%s)",
                                lt_status_name(s));
    }
    cublasLtMatmulPreference_t pref = NULL;
    const uint64_t ws = ms6_cuda(be)->workspace_size;
    const uint32_t ax = (uint32_t)k->align_x, aw = (uint32_t)k->align_w, ay = (uint32_t)k->align_y;
    if ((s = cublasLtMatmulPreferenceCreate(&pref)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aw, sizeof aw)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ax, sizeof ax)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ay, sizeof ay)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ay, sizeof ay)) !=
            CUBLAS_STATUS_SUCCESS) {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        entry_release(e);
        return ms6_backend_fail(be, MS6_STATUS_DEVICE_ERROR, "gemm: cuBLASLt preference setup failed (%s)",
                                lt_status_name(s));
    }
    cublasLtMatmulHeuristicResult_t res[LT_CANDIDATES];
    int found = 0;
    const char *tune_env = getenv("MS6_GEMM_TUNE");
    const int tune = (!tune_env || strcmp(tune_env, "0") != 0) &&
                     2.0 * (double)k->M * (double)k->N * (double)k->K >= LT_TUNE_MIN_FLOP &&
                     !in_capture(ms6_cuda(be)->stream);
    s = cublasLtMatmulAlgoGetHeuristic(g->h, e->op, e->la, e->lb, e->lc, e->lc, pref, tune ? LT_CANDIDATES : 1, res,
                                       &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || found < 1 || res[0].state != CUBLAS_STATUS_SUCCESS) {
        /* remembered as "no algorithm": this shape takes the fallback kernel */
        entry_release(e);
        e->key = *k;
        e->used = -1;
        e->stamp = g->clock;
        return MS6_STATUS_OK;
    }
    e->algo = res[tune && found > 1 ? lt_tune(be, g, e, res, found, w, x) : 0].algo;
    e->used = 1;
    *out = e;
    return MS6_STATUS_OK;
}

/* Falls back to the skinny kernel over tiles of 8 rows of x. */
static ms6_status run_fallback(ms6_backend *be, const ms6_gemm_params *p) { return run_gemv(be, p); }

static ms6_status run_lt(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    gemm_state *g = NULL;
    ms6_status st = state_get(be, &g);
    if (st != MS6_STATUS_OK) return st;
    const int ab = (int)p->w_dtype;
    const int xconv = p->x_dtype != p->w_dtype;
    /* D written directly when cuBLASLt can write y's type from A/B's type */
    const int direct = (int)p->y_dtype == ab || p->y_dtype == MS6_DTYPE_F32;
    const int dtype = direct ? (int)p->y_dtype : MS6_DTYPE_F32;

    const size_t xbytes = xconv ? (size_t)p->M * (size_t)p->K * ms6_dtype_size(p->w_dtype) : 0;
    const size_t xpad = (xbytes + 255) & ~(size_t)255;
    const size_t tbytes = direct ? 0 : (size_t)p->M * (size_t)p->N * sizeof(float);
    const void *xa = p->x;
    int64_t ldx = p->ldx;
    float *tmp = NULL;
    void *dptr = p->y;
    int64_t ldd = p->ldy;
    if (xbytes || tbytes) {
        st = scratch_reserve(be, g, xpad + tbytes);
        if (st != MS6_STATUS_OK) return st;
        if (xconv) {
            xa = g->scratch;
            ldx = p->K;
        }
        if (!direct) {
            tmp = (float *)((char *)g->scratch + xpad);
            dptr = tmp;
            ldd = p->N;
        }
    }

    lt_key k;
    memset(&k, 0, sizeof k);
    k.M = p->M; k.N = p->N; k.K = p->K;
    k.ldx = ldx; k.ldw = p->ldw; k.ldy = ldd;
    k.ab = ab; k.d = dtype;
    k.beta = direct && p->accumulate;
    k.align_x = align_of(xa); k.align_w = align_of(p->w); k.align_y = align_of(dptr);
    /* cuBLASLt needs ld >= rows for every matrix with more than one column */
    if (p->ldw < p->K || (p->M > 1 && (ldx < p->K || ldd < p->N))) return run_fallback(be, p);
    /* x converted before the lookup, which may time algorithms on it */
    if (xconv) {
        const unsigned gx = (unsigned)((p->K + 255) / 256 < 16 ? (p->K + 255) / 256 : 16);
        const unsigned gy = (unsigned)(p->M < 65535 ? p->M : 65535);
        convert_kernel<<<dim3(gx, gy), 256, 0, c->stream>>>(g->scratch, ab, p->x, (int)p->x_dtype, p->M, p->K, p->ldx);
        st = ms6_cuda_check(be, cudaGetLastError(), "gemm (convert x)");
        if (st != MS6_STATUS_OK) return st;
    }
    lt_entry *e;
    st = lt_lookup(be, g, &k, p->w, xa, &e);
    if (st != MS6_STATUS_OK) return st;
    if (!e) return run_fallback(be, p);
    const float alpha = 1.0f, beta = (direct && p->accumulate) ? 1.0f : 0.0f;
    cublasStatus_t s = cublasLtMatmul(g->h, e->op, &alpha, p->w, e->la, xa, e->lb, &beta, dptr, e->lc, dptr, e->lc,
                                      &e->algo, c->workspace, c->workspace_size, c->stream);
    if (s != CUBLAS_STATUS_SUCCESS)
        return ms6_backend_fail(be, MS6_STATUS_DEVICE_ERROR, "gemm: cublasLtMatmul failed (%s) for M=%lld N=%lld K=%lld",
                                lt_status_name(s), (long long)p->M, (long long)p->N, (long long)p->K);
    if (!direct || p->bias) {
        epilogue_kernel<<<grid_for(p->M * p->N, c), 256, 0, c->stream>>>(p->y, (int)p->y_dtype, p->ldy, tmp, p->bias,
                                                                          p->accumulate, p->M, p->N);
        st = ms6_cuda_check(be, cudaGetLastError(), "gemm (epilogue)");
        if (st != MS6_STATUS_OK) return st;
    }
    return MS6_STATUS_OK;
}

extern "C" ms6_status ms6_cuda_gemm(ms6_backend *be, const ms6_gemm_params *p) {
    if (p->M == 0) return MS6_STATUS_OK;
    if (p->M <= MS6_GEMV_MAX_M || (p->M <= MS6_GEMV_SMALL_MAX_M && p->N * p->K <= MS6_GEMV_SMALL_ELEMS))
        return run_gemv(be, p);
    return run_lt(be, p);
}
