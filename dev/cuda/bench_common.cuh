/*
 * bench_common.cuh - what the standalone dev/cuda benchmarks share: the
 * library's device helpers (ld_stream etc., src/backend/cuda/cuda_internal.h;
 * build with -Iinclude -Isrc), CK for CUDA runtime calls, a plain read of n
 * 16-byte vectors (the bandwidth ceiling the kernels are compared with) and
 * the event timing of a launch.
 */
#ifndef MS6_DEV_BENCH_COMMON_CUH
#define MS6_DEV_BENCH_COMMON_CUH

#include "backend/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define CK(x)                                                                                 \
    do {                                                                                      \
        cudaError_t e_ = (x);                                                                 \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));       \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* reads n 16-byte vectors at p (grid-stride, 4 in flight per thread); writes
 * out[0] only for a sum no input gives, so the loads are not optimised away */
__global__ void __launch_bounds__(256) readsum(const uint4 *p, size_t n, float *out) {
    float s = 0.f;
    const size_t stride = (size_t)gridDim.x * 256;
    size_t i = (size_t)blockIdx.x * 256 + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = ld_stream(p + i), b = ld_stream(p + i + stride), c = ld_stream(p + i + 2 * stride),
                    d = ld_stream(p + i + 3 * stride);
        s += __uint_as_float(a.x ^ b.y ^ c.z ^ d.w);
    }
    for (; i < n; i += stride) s += __uint_as_float(ld_stream(p + i).x);
    if (s == 12345.f) out[0] = s;
}

/* us per launch of f(r) over 40 launches after 3 warm-ups, r the rep */
template <typename F>
static double time_us(F f) {
    for (int r = 0; r < 3; r++) f(r);
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    const int reps = 40;
    CK(cudaEventRecord(a));
    for (int r = 0; r < reps; r++) f(r);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return ms * 1e3 / reps;
}

#endif
