/*
 * norm.cu - RMSNorm with the fused fp32 residual add, and the embedding
 * lookup, on the GPU.
 *
 * rmsnorm: one block per row. Pass 1: each thread walks its elements
 * i = tid, tid + blockDim, ..., forms r = residual (+ x) in fp32, writes the
 * residual back and sums r^2; a block reduction (warp shuffles, then one
 * float per warp in shared memory) gives 1/sqrt(mean + eps). Pass 2 reads
 * the same elements again (the residual, or x) and writes out = r * inv * w.
 * Each thread reads and writes only its own elements, so out may alias x.
 * Aligned rows with dim a multiple of 4 (the model's) take a vectorised
 * kernel that keeps the row in registers (below; MS6_NORM_VEC=0 disables).
 * The sum of squares is accumulated in fp32 in a different order than the
 * CPU loop; at d_model <= 8192 that differs by a few ulps.
 *
 * embed: out row i = table[ids[i]], converted to the output type; ids are in
 * device memory (the model copies them there, so a captured decode graph
 * reads each step's id from the same place).
 *
 * Checked against float64 loops in tests/test_cuda_ops.c (through
 * tests/kernel_harness.c for rmsnorm).
 */
#include "backend/cuda/cuda_internal.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__device__ __forceinline__ float nload(const void *p, int dt, int64_t i) {
    switch (dt) {
    case MS6_DTYPE_F16: return __half2float(__ushort_as_half(((const unsigned short *)p)[i]));
    case MS6_DTYPE_BF16: return __bfloat162float(__ushort_as_bfloat16(((const unsigned short *)p)[i]));
    default: return ((const float *)p)[i];
    }
}

__device__ __forceinline__ void nstore(void *p, int dt, int64_t i, float v) {
    switch (dt) {
    case MS6_DTYPE_F16: ((unsigned short *)p)[i] = __half_as_ushort(__float2half_rn(v)); break;
    case MS6_DTYPE_BF16: ((unsigned short *)p)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v)); break;
    default: ((float *)p)[i] = v; break;
    }
}

struct norm_args {
    int64_t rows, dim;
    const void *x; int x_dtype; int64_t x_row_stride;
    void *out; int out_dtype; int64_t out_row_stride;
    float *residual; int64_t residual_row_stride;
    int add_x;
    const float *weight;
    float eps;
};

/* 1 / sqrt(mean(x^2) + eps) of a row from each thread's partial sum of
 * squares ss, summed over the block (warp shuffles, then one thread over the
 * warps, with a correctly rounded sqrt); every thread gets the result. */
static __device__ __forceinline__ float block_inv_rms(float ss, int64_t dim, float eps) {
    __shared__ float part[32];
    __shared__ float inv_s;
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    const int warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if ((threadIdx.x & 31) == 0) part[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int w = 0; w < nw; w++) t += part[w];
        inv_s = 1.0f / sqrtf(t / (float)dim + eps);
    }
    __syncthreads();
    return inv_s;
}

template <int XT, int OT>
__global__ void rmsnorm_kernel(const norm_args a) {
    const int64_t row = blockIdx.x;
    const void *x = a.x;
    float *res = a.residual ? a.residual + row * a.residual_row_stride : NULL;
    const int64_t xo = row * a.x_row_stride, oo = row * a.out_row_stride;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < a.dim; i += blockDim.x) {
        float v;
        if (res) {
            v = res[i];
            if (a.add_x) {
                v += nload(x, XT, xo + i);
                res[i] = v;
            }
        } else {
            v = nload(x, XT, xo + i);
        }
        ss = fmaf(v, v, ss);
    }
    const float inv = block_inv_rms(ss, a.dim, a.eps);
    for (int64_t i = threadIdx.x; i < a.dim; i += blockDim.x) {
        const float v = res ? res[i] : nload(x, XT, xo + i);
        const float w = a.weight ? a.weight[i] : 1.0f;
        nstore(a.out, OT, oo + i, v * inv * w);
    }
}

template <int XT>
static void launch_norm_o(const norm_args &a, int ot, unsigned threads, cudaStream_t s) {
    const dim3 grid((unsigned)a.rows);
    switch (ot) {
    case MS6_DTYPE_F16: rmsnorm_kernel<XT, MS6_DTYPE_F16><<<grid, threads, 0, s>>>(a); break;
    case MS6_DTYPE_BF16: rmsnorm_kernel<XT, MS6_DTYPE_BF16><<<grid, threads, 0, s>>>(a); break;
    default: rmsnorm_kernel<XT, MS6_DTYPE_F32><<<grid, threads, 0, s>>>(a); break;
    }
}

/* Vectorised rows (the model's case: dim a multiple of 4, 16-byte aligned
 * fp32 residual/weight rows, x/out rows aligned to 4 elements): each thread
 * keeps up to kVPT 4-element groups of its row in registers, so the row is
 * read once (residual, + x) and written once (residual when x is added, and
 * out), with 16-byte fp32 and 8-byte half accesses. */
constexpr int kVPT = 8;

template <int DT> __device__ __forceinline__ float4 nload4(const void *p, int64_t i) {
    if (DT == MS6_DTYPE_F32) return *(const float4 *)((const float *)p + i);
    const uint2 u = *(const uint2 *)((const unsigned short *)p + i);
    float2 a, b;
    if (DT == MS6_DTYPE_F16) {
        a = __half22float2(*(const __half2 *)&u.x);
        b = __half22float2(*(const __half2 *)&u.y);
    } else {
        a = __bfloat1622float2(*(const __nv_bfloat162 *)&u.x);
        b = __bfloat1622float2(*(const __nv_bfloat162 *)&u.y);
    }
    return make_float4(a.x, a.y, b.x, b.y);
}

template <int DT> __device__ __forceinline__ void nstore4(void *p, int64_t i, float4 v) {
    if (DT == MS6_DTYPE_F32) {
        *(float4 *)((float *)p + i) = v;
        return;
    }
    uint2 u;
    if (DT == MS6_DTYPE_F16) {
        *(__half2 *)&u.x = __floats2half2_rn(v.x, v.y);
        *(__half2 *)&u.y = __floats2half2_rn(v.z, v.w);
    } else {
        *(__nv_bfloat162 *)&u.x = __floats2bfloat162_rn(v.x, v.y);
        *(__nv_bfloat162 *)&u.y = __floats2bfloat162_rn(v.z, v.w);
    }
    *(uint2 *)((unsigned short *)p + i) = u;
}

template <int XT, int OT>
__global__ void rmsnorm_vec_kernel(const norm_args a) {
    const int64_t row = blockIdx.x, nv = a.dim >> 2;
    float *res = a.residual ? a.residual + row * a.residual_row_stride : NULL;
    const int64_t xo = row * a.x_row_stride, oo = row * a.out_row_stride;
    float4 r[kVPT];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kVPT; j++) {
        const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
        if (i < nv) {
            float4 v;
            if (res) {
                v = *(const float4 *)(res + 4 * i);
                if (a.add_x) {
                    const float4 x = nload4<XT>(a.x, xo + 4 * i);
                    v.x += x.x; v.y += x.y; v.z += x.z; v.w += x.w;
                    *(float4 *)(res + 4 * i) = v;
                }
            } else {
                v = nload4<XT>(a.x, xo + 4 * i);
            }
            r[j] = v;
            ss = fmaf(v.x, v.x, ss);
            ss = fmaf(v.y, v.y, ss);
            ss = fmaf(v.z, v.z, ss);
            ss = fmaf(v.w, v.w, ss);
        }
    }
    const float inv = block_inv_rms(ss, a.dim, a.eps);
#pragma unroll
    for (int j = 0; j < kVPT; j++) {
        const int64_t i = threadIdx.x + (int64_t)j * blockDim.x;
        if (i < nv) {
            const float4 w = a.weight ? *(const float4 *)(a.weight + 4 * i) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
            float4 v = r[j];
            v.x = v.x * inv * w.x; v.y = v.y * inv * w.y; v.z = v.z * inv * w.z; v.w = v.w * inv * w.w;
            nstore4<OT>(a.out, oo + 4 * i, v);
        }
    }
}

template <int XT>
static void launch_vec_o(const norm_args &a, int ot, unsigned threads, cudaStream_t s) {
    const dim3 grid((unsigned)a.rows);
    switch (ot) {
    case MS6_DTYPE_F16: rmsnorm_vec_kernel<XT, MS6_DTYPE_F16><<<grid, threads, 0, s>>>(a); break;
    case MS6_DTYPE_BF16: rmsnorm_vec_kernel<XT, MS6_DTYPE_BF16><<<grid, threads, 0, s>>>(a); break;
    default: rmsnorm_vec_kernel<XT, MS6_DTYPE_F32><<<grid, threads, 0, s>>>(a); break;
    }
}

static int vec_ok(const ms6_rmsnorm_params *p) {
    const char *e = getenv("MS6_NORM_VEC");
    if (e && !strcmp(e, "0")) return 0;
    if (p->dim % 4 || p->dim / 4 > (int64_t)kVPT * 1024) return 0;
    const uintptr_t xa = (uintptr_t)p->x, oa = (uintptr_t)p->out;
    const size_t xs = ms6_dtype_size(p->x_dtype), os = ms6_dtype_size(p->out_dtype);
    const int reads_x = !p->residual || p->add_x;
    if (reads_x && (xa % (4 * xs) || p->x_row_stride % 4)) return 0;
    if (oa % (4 * os) || p->out_row_stride % 4) return 0;
    if (p->residual && ((uintptr_t)p->residual % 16 || p->residual_row_stride % 4)) return 0;
    if (p->weight && (uintptr_t)p->weight % 16) return 0;
    return 1;
}

extern "C" ms6_status ms6_cuda_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p) {
    if (p->rows == 0) return MS6_STATUS_OK;
    if (p->rows > 0x7fffffff)
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "rmsnorm: %lld rows is more than one launch takes",
                                (long long)p->rows);
    norm_args a;
    a.rows = p->rows; a.dim = p->dim;
    a.x = p->x; a.x_dtype = (int)p->x_dtype; a.x_row_stride = p->x_row_stride;
    a.out = p->out; a.out_dtype = (int)p->out_dtype; a.out_row_stride = p->out_row_stride;
    a.residual = p->residual; a.residual_row_stride = p->residual_row_stride;
    a.add_x = p->add_x;
    a.weight = p->weight;
    a.eps = p->eps;
    cudaStream_t s = ms6_cuda(be)->stream;
    if (vec_ok(p)) {
        /* about 4 groups of 4 per thread, 32..1024 threads */
        const int64_t nv = p->dim / 4;
        int64_t t = (nv + 3) / 4;
        if (t * kVPT < nv) t = (nv + kVPT - 1) / kVPT;
        t = (t + 31) / 32 * 32;
        const unsigned threads = (unsigned)(t < 32 ? 32 : t > 1024 ? 1024 : t);
        switch (p->x_dtype) {
        case MS6_DTYPE_F16: launch_vec_o<MS6_DTYPE_F16>(a, a.out_dtype, threads, s); break;
        case MS6_DTYPE_BF16: launch_vec_o<MS6_DTYPE_BF16>(a, a.out_dtype, threads, s); break;
        default: launch_vec_o<MS6_DTYPE_F32>(a, a.out_dtype, threads, s); break;
        }
        return ms6_cuda_check(be, cudaGetLastError(), "rmsnorm");
    }
    /* about 4 elements per thread, 32..1024 threads */
    unsigned threads = 32;
    while (threads < 1024 && (int64_t)threads * 4 < p->dim) threads *= 2;
    switch (p->x_dtype) {
    case MS6_DTYPE_F16: launch_norm_o<MS6_DTYPE_F16>(a, a.out_dtype, threads, s); break;
    case MS6_DTYPE_BF16: launch_norm_o<MS6_DTYPE_BF16>(a, a.out_dtype, threads, s); break;
    default: launch_norm_o<MS6_DTYPE_F32>(a, a.out_dtype, threads, s); break;
    }
    return ms6_cuda_check(be, cudaGetLastError(), "rmsnorm");
}

__global__ void embed_kernel(int64_t dim, const int32_t *ids, const void *table, int tdt, void *out, int odt,
                             int64_t ldo) {
    const int64_t i = blockIdx.y;
    const int64_t row = ids[i];
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < dim; j += (int64_t)gridDim.x * blockDim.x)
        nstore(out, odt, i * ldo + j, nload(table, tdt, row * dim + j));
}

extern "C" ms6_status ms6_cuda_embed(ms6_backend *be, const ms6_embed_params *p) {
    if (p->n == 0) return MS6_STATUS_OK;
    if (p->n > 65535)
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "embed: %lld ids in one call (at most 65535)",
                                (long long)p->n);
    if (!p->ids || !p->table || !p->out || p->dim < 1)
        return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "embed: NULL operand or dim < 1");
    const unsigned threads = 256;
    int64_t gx = (p->dim + threads - 1) / threads;
    if (gx > 64) gx = 64;
    embed_kernel<<<dim3((unsigned)gx, (unsigned)p->n), threads, 0, ms6_cuda(be)->stream>>>(
        p->dim, p->ids, p->table, (int)p->table_dtype, p->out, (int)p->out_dtype, p->ldo);
    return ms6_cuda_check(be, cudaGetLastError(), "embed");
}
