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
    __shared__ float part[32];
    __shared__ float inv_s;
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    const int warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if ((threadIdx.x & 31) == 0) part[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int w = 0; w < nw; w++) t += part[w];
        /* x * rsqrt(mean(x^2) + eps), with a correctly rounded sqrt */
        inv_s = 1.0f / sqrtf(t / (float)a.dim + a.eps);
    }
    __syncthreads();
    const float inv = inv_s;
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
    /* about 4 elements per thread, 32..1024 threads */
    unsigned threads = 32;
    while (threads < 1024 && (int64_t)threads * 4 < p->dim) threads *= 2;
    cudaStream_t s = ms6_cuda(be)->stream;
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
