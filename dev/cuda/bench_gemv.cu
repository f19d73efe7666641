/*
 * bench_gemv.cu - which batch-1 gemv structure streams half-precision
 * weights fastest on this GPU. y = W x for the decode matrices of the 2.8b
 * shape (in_proj 10240 x 2560, out_proj 2560 x 5120, lm_head 50280 x 2560),
 * x fp32 in shared memory, W rotated through copies totalling > 4x the L2 so
 * every run reads from DRAM. Variants (template): V 16-byte vectors per lane
 * per round, TPR lanes per row, DB (the next round loaded before the current
 * one is used), MINB (launch bounds: blocks of 256 threads per SM). A plain
 * read of the same bytes (sum, grid-stride) is the ceiling. Standalone, not
 * part of the build:
 *   nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/bench_gemv.cu -o bench_gemv && ./bench_gemv
 */
#include "bench_common.cuh"

template <int V>
static __device__ __forceinline__ void load(uint4 (&b)[V], const __half *w, int base, int tpr, int sub, int nv) {
#pragma unroll
    for (int i = 0; i < V; i++) {
        const int idx = base + i * tpr + sub;
        b[i] = idx < nv ? ld_stream(w + (size_t)idx * 8) : make_uint4(0, 0, 0, 0);
    }
}
template <int V>
static __device__ __forceinline__ float dot(const uint4 (&b)[V], const float *x, int base, int tpr, int sub, int nv) {
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < V; i++) {
        const int idx = base + i * tpr + sub;
        if (idx >= nv) break;
        const __half2 *h = reinterpret_cast<const __half2 *>(&b[i]);
        const float4 a = *reinterpret_cast<const float4 *>(x + idx * 8);
        const float4 c = *reinterpret_cast<const float4 *>(x + idx * 8 + 4);
        float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]), f2 = __half22float2(h[2]),
               f3 = __half22float2(h[3]);
        float p = f0.x * a.x;
        p = fmaf(f0.y, a.y, p);
        p = fmaf(f1.x, a.z, p);
        p = fmaf(f1.y, a.w, p);
        p = fmaf(f2.x, c.x, p);
        p = fmaf(f2.y, c.y, p);
        p = fmaf(f3.x, c.z, p);
        p = fmaf(f3.y, c.w, p);
        acc += p;
    }
    return acc;
}

template <int V, int TPR, int DB, int MINB>
__global__ void __launch_bounds__(256, MINB) gemv(const __half *W, const float *x, float *y, int rows, int K) {
    extern __shared__ float xs[];
    const int rpb = 256 / TPR, row = blockIdx.x * rpb + threadIdx.x / TPR, sub = threadIdx.x % TPR;
    const int nv = K / 8;
    const __half *w = W + (size_t)(row < rows ? row : rows - 1) * K;
    uint4 buf[V];
    load<V>(buf, w, 0, TPR, sub, nv);
    for (int k = threadIdx.x; k < K; k += 256) xs[k] = x[k];
    __syncthreads();
    float acc = 0.f;
    for (int base = 0; base < nv; base += V * TPR) {
        if (DB) {
            uint4 nxt[V];
            if (base + V * TPR < nv) load<V>(nxt, w, base + V * TPR, TPR, sub, nv);
            acc += dot<V>(buf, xs, base, TPR, sub, nv);
#pragma unroll
            for (int i = 0; i < V; i++) buf[i] = nxt[i];
        } else {
            acc += dot<V>(buf, xs, base, TPR, sub, nv);
            if (base + V * TPR < nv) load<V>(buf, w, base + V * TPR, TPR, sub, nv);
        }
    }
#pragma unroll
    for (int o = TPR / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (sub == 0 && row < rows) y[row] = acc;
}

struct Shape {
    const char *name;
    int rows, K;
};
static const Shape shapes[] = {{"in_proj", 10240, 2560}, {"out_proj", 2560, 5120}, {"lm_head", 50280, 2560}};
static char *pool;
static size_t pool_bytes;
static float *dx, *dy;

template <int V, int TPR, int DB, int MINB>
static void run(const char *label) {
    printf("%-28s", label);
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.rows * s.K * 2;
        const int copies = (int)(pool_bytes / bytes);
        const int rpb = 256 / TPR, grid = (s.rows + rpb - 1) / rpb;
        auto k = gemv<V, TPR, DB, MINB>;
        CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, s.K * 4));
        const double us = time_us([&](int r) {
            k<<<grid, 256, s.K * 4>>>((const __half *)(pool + (r % copies) * bytes), dx, dy, s.rows, s.K);
        });
        printf("  %7.2f us %5.2f TB/s", us, bytes / us * 1e-6);
    }
    printf("\n");
}

int main() {
    pool_bytes = (size_t)1 << 30; /* 1 GiB: > 4x the 2.8b lm_head, > 20x the L2 */
    CK(cudaMalloc(&pool, pool_bytes));
    CK(cudaMemset(pool, 0x2e, pool_bytes));
    CK(cudaMalloc(&dx, 8192 * 4));
    CK(cudaMemset(dx, 0, 8192 * 4));
    CK(cudaMalloc(&dy, 65536 * 4));
    int sms;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    printf("%-28s", "variant");
    for (const Shape &s : shapes) printf("  %-22s", s.name);
    printf("\n%-28s", "readsum (ceiling)");
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.rows * s.K * 2;
        const int copies = (int)(pool_bytes / bytes);
        const double us = time_us([&](int r) {
            readsum<<<sms * 8, 256>>>((const uint4 *)(pool + (r % copies) * bytes), bytes / 16, dy);
        });
        printf("  %7.2f us %5.2f TB/s", us, bytes / us * 1e-6);
    }
    printf("\n");
    run<4, 32, 0, 4>("V4 TPR32 MINB4");
    run<4, 32, 1, 4>("V4 TPR32 DB MINB4");
    run<8, 32, 0, 4>("V8 TPR32 MINB4");
    run<8, 32, 1, 2>("V8 TPR32 DB MINB2");
    run<8, 32, 1, 3>("V8 TPR32 DB MINB3");
    run<2, 32, 1, 6>("V2 TPR32 DB MINB6");
    run<4, 16, 0, 4>("V4 TPR16 MINB4");
    run<4, 16, 1, 4>("V4 TPR16 DB MINB4");
    run<4, 8, 1, 4>("V4 TPR8 DB MINB4");
    run<10, 32, 0, 2>("V10 TPR32 MINB2");
    run<20, 16, 0, 2>("V20 TPR16 MINB2 (v3)");
    run<16, 32, 0, 2>("V16 TPR32 MINB2");
    run<6, 32, 0, 5>("V6 TPR32 MINB5");
    run<2, 32, 0, 8>("V2 TPR32 MINB8");
    run<3, 32, 0, 6>("V3 TPR32 MINB6");
    CK(cudaDeviceSynchronize());
    return 0;
}
