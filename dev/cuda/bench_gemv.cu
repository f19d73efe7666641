/*
 * bench_gemv.cu - which batch-1 gemv structure streams half-precision
 * weights fastest on this GPU. y = W x for the decode matrices of the 2.8b
 * shape (in_proj 10240 x 2560, out_proj 2560 x 5120, lm_head 50280 x 2560),
 * x fp32 in shared memory, W rotated through copies totalling > 4x the L2 so
 * every run reads from DRAM. Variants (template): V 16-byte vectors per lane
 * per round, TPR lanes per row, DB (the next round loaded before the current
 * one is used), MINB (launch bounds: blocks of 256 threads per SM). A plain
 * read of the same bytes (sum, grid-stride) is the ceiling. TMA: RB rows a
 * block, each row one bulk copy (cp.async.bulk) into a ring of S row slots
 * in shared memory, refilled as soon as every warp has used a slot: no
 * weights in registers, and the stream never waits for a round to be used
 * whole (it measured slower than every register kernel). gemv_rows: K1's
 * own arrangement, R rows a warp (docs/kernel-notes.md, "K1's gemv
 * rounds"). Standalone, not part of the build:
 *   nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/bench_gemv.cu -o bench_gemv && ./bench_gemv
 */
#include "bench_common.cuh"

#include <math.h>

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

/* K1's arrangement (decode.cu's WarpRows): R rows a warp, lane vectors
 * base + j * 32 + lane of each (j < V), so a block of 256 threads has 8 R
 * rows; DB as above */
template <int R, int V, int DB, int MINB>
__global__ void __launch_bounds__(256, MINB) gemv_rows(const __half *W, const float *x, float *y, int rows, int K) {
    extern __shared__ float xs[];
    const int lane = threadIdx.x & 31, row0 = (blockIdx.x * 8 + (threadIdx.x >> 5)) * R, nv = K / 8;
    const __half *w[R];
#pragma unroll
    for (int r = 0; r < R; r++) w[r] = W + (size_t)min(row0 + r, rows - 1) * K;
    uint4 buf[R][V];
#pragma unroll
    for (int r = 0; r < R; r++) load<V>(buf[r], w[r], 0, 32, lane, nv);
    for (int k = threadIdx.x; k < K; k += 256) xs[k] = x[k];
    __syncthreads();
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.f;
    for (int base = 0; base < nv; base += V * 32) {
        const bool more = base + V * 32 < nv;
        if (DB) {
            uint4 nxt[R][V];
#pragma unroll
            for (int r = 0; r < R; r++)
                if (more) load<V>(nxt[r], w[r], base + V * 32, 32, lane, nv);
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] += dot<V>(buf[r], xs, base, 32, lane, nv);
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int i = 0; i < V; i++) buf[r][i] = nxt[r][i];
        } else {
#pragma unroll
            for (int r = 0; r < R; r++) acc[r] += dot<V>(buf[r], xs, base, 32, lane, nv);
#pragma unroll
            for (int r = 0; r < R; r++)
                if (more) load<V>(buf[r], w[r], base + V * 32, 32, lane, nv);
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float a = acc[r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
        if (lane == 0 && row0 + r < rows) y[row0 + r] = a;
    }
}

/* y = W x for RB rows a block through a ring of S row slots (sm_90): thread
 * 0 requests rows 0 .. S-1 and then row r + S into row r's slot once the 8
 * warps have arrived on its empty barrier; all 256 threads take vectors
 * tid, tid + 256, ... of every row; the RB sums are added across the warps
 * at the end. Shared memory: S rows, x (K floats), 8 x RB sums, 2 S barriers. */
template <int RB, int S, int MINB>
__global__ void __launch_bounds__(256, MINB) gemv_tma(const __half *W, const float *x, float *y, int rows, int K) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) unsigned char sm[];
    const unsigned rowb = (unsigned)K * 2u;
    __half *ring = reinterpret_cast<__half *>(sm);
    float *xs = reinterpret_cast<float *>(sm + (size_t)S * rowb);
    float *red = xs + K;
    uint64_t *full = reinterpret_cast<uint64_t *>(red + 8 * RB), *empty = full + S;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int row0 = blockIdx.x * RB, nrow = min(RB, rows - row0), nv = K / 8;
    if (tid == 0) {
        for (int i = 0; i < S; i++) {
            mbar_init(full + i, 1);
            mbar_init(empty + i, 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (tid == 0)
        for (int r = 0; r < S && r < nrow; r++) {
            mbar_expect_tx(full + r, rowb);
            bulk_load(ring + (size_t)r * K, W + (size_t)(row0 + r) * K, rowb, full + r);
        }
    for (int k = tid; k < K; k += 256) xs[k] = x[k];
    __syncthreads();
    float acc[RB];
#pragma unroll
    for (int r = 0; r < RB; r++) {
        acc[r] = 0.f;
        if (r >= nrow) continue;
        const int sl = r % S;
        const unsigned ph = (unsigned)(r / S) & 1u;
        mbar_wait(full + sl, ph);
        const uint4 *v = reinterpret_cast<const uint4 *>(ring + (size_t)sl * K);
        for (int i = tid; i < nv; i += 256) {
            uint4 b[1] = {v[i]};
            acc[r] += dot<1>(b, xs, i, 1, 0, nv);
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(empty + sl);
        if (tid == 0 && r + S < nrow) {
            mbar_wait(empty + sl, ph);
            mbar_expect_tx(full + sl, rowb);
            bulk_load(ring + (size_t)sl * K, W + (size_t)(row0 + r + S) * K, rowb, full + sl);
        }
    }
#pragma unroll
    for (int r = 0; r < RB; r++) {
        float a = acc[r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
        if (lane == 0) red[warp * RB + r] = a;
    }
    __syncthreads();
    if (tid < nrow) {
        float a = 0.f;
#pragma unroll
        for (int w = 0; w < 8; w++) a += red[w * RB + tid];
        y[row0 + tid] = a;
    }
#endif
}

struct Shape {
    const char *name;
    int rows, K;
};
static const Shape shapes[] = {{"in_proj", 10240, 2560}, {"out_proj", 2560, 5120}, {"lm_head", 50280, 2560}};
static char *pool;
static size_t pool_bytes;
static float *dx, *dy;

/* times kern (x in K floats of dynamic shared memory, rpb rows a block of
 * 256 threads) on every shape; with per_sm, also its blocks per SM */
typedef void (*gemv_fn)(const __half *, const float *, float *, int, int);
static void time_gemv(const char *label, gemv_fn k, int rpb, bool per_sm) {
    printf("%-28s", label);
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.rows * s.K * 2;
        const int copies = (int)(pool_bytes / bytes);
        const int grid = (s.rows + rpb - 1) / rpb;
        CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, s.K * 4));
        const double us = time_us([&](int r) {
            k<<<grid, 256, s.K * 4>>>((const __half *)(pool + (r % copies) * bytes), dx, dy, s.rows, s.K);
        });
        printf("  %7.2f us %5.2f TB/s", us, bytes / us * 1e-6);
        if (per_sm) {
            int n = 0;
            CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, 256, s.K * 4));
            printf(" %d", n);
        }
    }
    printf("\n");
}
template <int V, int TPR, int DB, int MINB>
static void run(const char *label) {
    time_gemv(label, gemv<V, TPR, DB, MINB>, 256 / TPR, false);
}
template <int R, int V, int DB, int MINB>
static void run_rows(const char *label) {
    time_gemv(label, gemv_rows<R, V, DB, MINB>, 8 * R, true);
}

/* pool[i] = a small half from i's hash, so each row sums differently */
__global__ void fill_pool(__half *w, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        w[i] = __float2half((float)((unsigned)(i * 2654435761u) >> 28) / 16.f - 0.5f);
}
static float *dref;

template <int RB, int S, int MINB>
static void run_tma(const char *label) {
    printf("%-28s", label);
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.rows * s.K * 2;
        const int copies = (int)(pool_bytes / bytes);
        const int grid = (s.rows + RB - 1) / RB;
        const size_t smem = (size_t)S * s.K * 2 + (size_t)s.K * 4 + 8 * RB * 4 + 2 * S * 8;
        auto k = gemv_tma<RB, S, MINB>;
        if (smem > 227 * 1024) {
            printf("  %-22s", "(shared memory)");
            continue;
        }
        CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        int per_sm = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, 256, smem));
        const double us = time_us([&](int r) {
            k<<<grid, 256, smem>>>((const __half *)(pool + (r % copies) * bytes), dx, dy, s.rows, s.K);
        });
        printf("  %7.2f us %5.2f TB/s %d", us, bytes / us * 1e-6, per_sm);
        /* against the register kernel on the first copy: a broken ring would time fast */
        k<<<grid, 256, smem>>>((const __half *)pool, dx, dy, s.rows, s.K);
        CK(cudaFuncSetAttribute(gemv<4, 32, 0, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, s.K * 4));
        gemv<4, 32, 0, 4><<<(s.rows + 7) / 8, 256, s.K * 4>>>((const __half *)pool, dx, dref, s.rows, s.K);
        CK(cudaDeviceSynchronize());
        float *a = (float *)malloc(s.rows * 4), *b = (float *)malloc(s.rows * 4);
        CK(cudaMemcpy(a, dy, s.rows * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(b, dref, s.rows * 4, cudaMemcpyDeviceToHost));
        double err = 0, ref = 0;
        for (int i = 0; i < s.rows; i++) {
            err = fmax(err, fabs((double)a[i] - b[i]));
            ref = fmax(ref, fabs((double)b[i]));
        }
        free(a);
        free(b);
        if (!(err <= 1e-4 * ref + 1e-3)) {
            printf("\n%s on %s: differs from the register kernel by %g (max |y| %g)\n", label, s.name, err, ref);
            exit(1);
        }
    }
    printf("\n");
}

int main() {
    pool_bytes = (size_t)1 << 30; /* 1 GiB: > 4x the 2.8b lm_head, > 20x the L2 */
    CK(cudaMalloc(&pool, pool_bytes));
    fill_pool<<<1024, 256>>>((__half *)pool, pool_bytes / 2);
    CK(cudaMalloc(&dx, 8192 * 4));
    {
        float hx[8192];
        for (int k = 0; k < 8192; k++) hx[k] = (float)(k % 7) / 7.f - 0.4f;
        CK(cudaMemcpy(dx, hx, sizeof hx, cudaMemcpyHostToDevice));
    }
    CK(cudaMalloc(&dy, 65536 * 4));
    CK(cudaMalloc(&dref, 65536 * 4));
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
    /* K1's rows per warp (blocks per SM after the TB/s); R2 V4 MINB5 is
     * 2.8b's K1 (k_norm_gemv_vec5) */
    run_rows<2, 4, 0, 5>("R2 V4 MINB5 (K1 2.8b)");
    run_rows<2, 4, 0, 4>("R2 V4 MINB4");
    run_rows<2, 2, 0, 5>("R2 V2 MINB5");
    run_rows<2, 2, 1, 5>("R2 V2 DB MINB5");
    run_rows<2, 1, 1, 8>("R2 V1 DB MINB8");
    run_rows<1, 4, 0, 5>("R1 V4 MINB5");
    run_rows<1, 2, 1, 5>("R1 V2 DB MINB5");
    run_rows<1, 2, 1, 6>("R1 V2 DB MINB6");
    run_rows<1, 4, 1, 4>("R1 V4 DB MINB4");
    run_rows<4, 2, 0, 5>("R4 V2 MINB5");
    /* the TMA ring (blocks per SM after the TB/s) */
    run_tma<16, 4, 4>("TMA RB16 S4");
    run_tma<16, 8, 4>("TMA RB16 S8");
    run_tma<8, 4, 4>("TMA RB8 S4");
    run_tma<8, 8, 2>("TMA RB8 S8");
    run_tma<4, 4, 8>("TMA RB4 S4");
    CK(cudaDeviceSynchronize());
    return 0;
}
