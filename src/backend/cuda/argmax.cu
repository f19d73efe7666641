/*
 * argmax.cu - greedy decoding on the device: the index of the largest logit
 * of each row, so a decode step sends back one int per sequence instead of
 * a row of vocab floats.
 *
 * One block of 1024 threads per row: each thread walks its strided share of
 * the row (16-byte loads where the row allows), then a warp-shuffle and
 * shared-memory reduction of argmax_key's 64-bit keys (cuda_internal.h):
 * their order is total (larger value, then smaller index, NaN below every
 * number), so the result is ms6_argmax's whatever the reduction tree.
 */
#include "backend/cuda/cuda_internal.h"

#define ARGMAX_THREADS 1024
#define ARGMAX_UNROLL 4

/* FEED: also log[pos[0] * rows + row] = the index, and the last block to
 * finish advances pos[0] (pos[1] counts the blocks, back to 0 after) */
template <bool FEED>
static __global__ void __launch_bounds__(ARGMAX_THREADS) argmax_rows_kernel(const float *__restrict__ x, int64_t n,
                                                                            int32_t *__restrict__ out,
                                                                            int32_t *__restrict__ log, int32_t *pos) {
    const float *row = x + (int64_t)blockIdx.x * n;
    unsigned long long bk = 0ull; /* below every element's key */
    int64_t i0 = 0;
    if ((n & 3) == 0 && ((uintptr_t)row & 15) == 0) {
        /* 16-byte loads, ARGMAX_UNROLL of them requested before any compare:
         * a 50280-float row is 3 L2 round trips per thread instead of ~12 */
        const float4 *r4 = reinterpret_cast<const float4 *>(row);
        const int64_t n4 = n >> 2;
        for (int64_t q0 = threadIdx.x; q0 < n4; q0 += ARGMAX_THREADS * ARGMAX_UNROLL) {
            float4 v[ARGMAX_UNROLL];
#pragma unroll
            for (int u = 0; u < ARGMAX_UNROLL; u++)
                if (q0 + u * ARGMAX_THREADS < n4) v[u] = r4[q0 + u * ARGMAX_THREADS];
#pragma unroll
            for (int u = 0; u < ARGMAX_UNROLL; u++) {
                const int64_t q = q0 + u * ARGMAX_THREADS;
                if (q >= n4) break;
                const float e[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
                for (int k = 0; k < 4; k++) bk = max(bk, argmax_key(e[k], (int)(4 * q + k)));
            }
        }
        i0 = n;
    }
    for (int64_t i = i0 + threadIdx.x; i < n; i += ARGMAX_THREADS) bk = max(bk, argmax_key(row[i], (int)i));
    for (int o = 16; o > 0; o >>= 1) bk = max(bk, __shfl_down_sync(0xffffffffu, bk, o));
    __shared__ unsigned long long sk[ARGMAX_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sk[warp] = bk;
    __syncthreads();
    if (warp == 0) {
        bk = sk[lane];
        for (int o = 16; o > 0; o >>= 1) bk = max(bk, __shfl_down_sync(0xffffffffu, bk, o));
        if (lane == 0) {
            const int bi = argmax_key_index(bk);
            out[blockIdx.x] = bi;
            if (FEED) {
                log[(int64_t)pos[0] * gridDim.x + blockIdx.x] = bi;
                __threadfence();
                if (atomicAdd(pos + 1, 1) == (int)gridDim.x - 1) {
                    pos[1] = 0;
                    pos[0] += 1;
                }
            }
        }
    }
}

/* rows (> 0) and n must fit the kernel's 32-bit grid and indices */
static ms6_status argmax_shape(ms6_backend *be, int64_t rows, int64_t n) {
    if (n <= 0 || n > INT32_MAX || rows > INT32_MAX)
        return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "argmax: %lld rows of %lld values (need 1..2^31-1)",
                                (long long)rows, (long long)n);
    return MS6_STATUS_OK;
}

extern "C" ms6_status ms6_cuda_argmax_rows(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *out) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (rows <= 0) return MS6_STATUS_OK;
    ms6_status st = argmax_shape(be, rows, n);
    if (st != MS6_STATUS_OK) return st;
    if (rows > c->argmax_cap) {
        if (c->argmax_buf) cudaFree(c->argmax_buf);
        c->argmax_buf = NULL;
        c->argmax_cap = 0;
        st = ms6_cuda_check(be, cudaMalloc((void **)&c->argmax_buf, sizeof(int32_t) * (size_t)rows), "argmax");
        if (st != MS6_STATUS_OK) return st;
        c->argmax_cap = rows;
    }
    argmax_rows_kernel<false><<<(unsigned)rows, ARGMAX_THREADS, 0, c->stream>>>(x, n, c->argmax_buf, NULL, NULL);
    st = ms6_cuda_check(be, cudaGetLastError(), "argmax");
    if (st == MS6_STATUS_OK) st = be->ops->download(be, out, c->argmax_buf, sizeof(int32_t) * (size_t)rows);
    return st;
}

extern "C" ms6_status ms6_cuda_argmax_feed(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *ids,
                                           int32_t *log, int32_t *pos) {
    if (rows <= 0) return MS6_STATUS_OK;
    const ms6_status st = argmax_shape(be, rows, n);
    if (st != MS6_STATUS_OK) return st;
    argmax_rows_kernel<true><<<(unsigned)rows, ARGMAX_THREADS, 0, ms6_cuda(be)->stream>>>(x, n, ids, log, pos);
    return ms6_cuda_check(be, cudaGetLastError(), "argmax");
}
