/*
 * bench_splitk.cu - how fast a split-K out_proj (residual += W . y, W of
 * dm x di halves, y fp32) streams its weights when each block owns a slice
 * of y's channels, as decode.cu's K34 does: the weight layout and the slice
 * width decide how long the pieces each block reads are.
 *   rowmajor CB: W as stored (dm, di); a block reads CB columns (2 CB bytes
 *     per row) of dm / rs rows, rs blocks per slice (K34's access);
 *   transposed CB: W^T (di, dm); a block reads its CB rows of W^T, one
 *     contiguous run of 2 CB dm bytes, each thread 8 outputs x CB channels.
 * Partial sums go to the output with red.global.add.v4.f32 in both; x and
 * the state update are left out. A plain read of the same bytes is the
 * ceiling. Shapes: 2.8b (2560 x 5120) and 1.4b (2048 x 4096); W rotated
 * through copies totalling > 20x the L2 so every launch reads from DRAM.
 * Standalone, not part of the build:
 *   nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/bench_splitk.cu -o bench_splitk && ./bench_splitk
 */
#include "bench_common.cuh"

static __device__ __forceinline__ float dot8(const uint4 &v, const float *y) {
    float f[8], s = 0.f;
    unpack8(v, f, __half());
#pragma unroll
    for (int e = 0; e < 8; e++) s = fmaf(f[e], y[e], s);
    return s;
}

/* K34's access: lanes (g, cc) of a warp take 4 rows x 16 bytes, CC = CB / 8
 * lanes per row; DEPTH rounds of 4 rows in flight per thread */
template <int CB, int DEPTH>
__global__ void __launch_bounds__(256, 2) rowmajor(const __half *W, const float *y, float *out, int dm, int di,
                                                   int rs, int rows) {
    constexpr int CC = CB / 8, RG = 32 / CC, RB = 8 * RG * 4;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int c0 = (blockIdx.x / rs) * CB, r0 = (blockIdx.x % rs) * rows, r1 = min(r0 + rows, dm);
    const int cc = lane % CC, rw = r0 + (warp * RG + lane / CC) * 4;
    const int nit = (r1 - r0 + RB - 1) / RB;
    const __half *wb = W + c0 + cc * 8;
    float yv[8];
#pragma unroll
    for (int e = 0; e < 8; e++) yv[e] = y[c0 + cc * 8 + e];
    uint4 buf[DEPTH][4];
#pragma unroll
    for (int d = 0; d < DEPTH; d++)
#pragma unroll
        for (int k = 0; k < 4; k++) buf[d][k] = d < nit ? ld_stream(wb + (size_t)min(d * RB + rw + k, dm - 1) * di) : make_uint4(0, 0, 0, 0);
    for (int it0 = 0; it0 < nit; it0 += DEPTH) {
#pragma unroll
        for (int d = 0; d < DEPTH; d++) {
            const int it = it0 + d;
            if (it >= nit) break;
            float p[4];
#pragma unroll
            for (int k = 0; k < 4; k++) p[k] = dot8(buf[d][k], yv);
            if (it + DEPTH < nit)
#pragma unroll
                for (int k = 0; k < 4; k++) buf[d][k] = ld_stream(wb + (size_t)min((it + DEPTH) * RB + rw + k, dm - 1) * di);
#pragma unroll
            for (int o = CC >> 1; o > 0; o >>= 1)
#pragma unroll
                for (int k = 0; k < 4; k++) p[k] += __shfl_xor_sync(0xffffffffu, p[k], o);
            const int row = it * RB + rw;
            if (cc == 0 && row < r1) atomicAdd(reinterpret_cast<float4 *>(out + row), make_float4(p[0], p[1], p[2], p[3]));
        }
    }
}

/* W^T (di, dm): the block's CB channel rows are one contiguous run; thread
 * j of the block (dm / 8 threads) owns outputs 8 j .. 8 j + 8 (a 16-byte
 * column of the run) and sums them over the CB channels with DEPTH channel
 * rows in flight */
template <int CB, int DEPTH>
__global__ void __launch_bounds__(512) transposed(const __half *Wt, const float *y, float *out, int dm, int di) {
    __shared__ float ys[CB];
    const int c0 = blockIdx.x * CB;
    if (threadIdx.x < CB) ys[threadIdx.x] = y[c0 + threadIdx.x];
    __syncthreads();
    {
        const int j = threadIdx.x;
        const __half *w = Wt + (size_t)c0 * dm + 8 * j;
        float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        uint4 buf[DEPTH];
#pragma unroll
        for (int d = 0; d < DEPTH; d++) buf[d] = ld_stream(w + (size_t)d * dm);
        for (int c = 0; c < CB; c += DEPTH) {
#pragma unroll
            for (int d = 0; d < DEPTH; d++) {
                float f[8];
                unpack8(buf[d], f, __half());
                const float yc = ys[c + d];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[e] = fmaf(f[e], yc, acc[e]);
                if (c + d + DEPTH < CB) buf[d] = ld_stream(w + (size_t)(c + d + DEPTH) * dm);
            }
        }
        atomicAdd(reinterpret_cast<float4 *>(out + 8 * j), make_float4(acc[0], acc[1], acc[2], acc[3]));
        atomicAdd(reinterpret_cast<float4 *>(out + 8 * j + 4), make_float4(acc[4], acc[5], acc[6], acc[7]));
    }
}

struct Shape {
    const char *name;
    int dm, di;
};
static const Shape shapes[] = {{"2.8b out_proj", 2560, 5120}, {"1.4b out_proj", 2048, 4096}};
static char *pool;
static size_t pool_bytes;
static float *dy, *dout;
static int sms;

static void cell(double us, size_t bytes) { printf("  %7.2f us %5.2f TB/s", us, bytes / us * 1e-6); }

template <int CB, int DEPTH>
static void run_rowmajor(const char *label) {
    printf("%-30s", label);
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.dm * s.di * 2;
        const int copies = (int)(pool_bytes / bytes), slices = s.di / CB;
        int rs = CB == 64 ? 2 * sms / slices : 1;
        rs = rs < 1 ? 1 : rs > 8 ? 8 : rs;
        const int rows = ((s.dm + rs - 1) / rs + 3) / 4 * 4;
        cell(time_us([&](int r) {
                 rowmajor<CB, DEPTH><<<slices * rs, 256>>>((const __half *)(pool + (r % copies) * bytes), dy, dout,
                                                           s.dm, s.di, rs, rows);
             }),
             bytes);
    }
    printf("\n");
}

template <int CB, int DEPTH>
static void run_transposed(const char *label) {
    printf("%-30s", label);
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.dm * s.di * 2;
        const int copies = (int)(pool_bytes / bytes);
        cell(time_us([&](int r) {
                 transposed<CB, DEPTH><<<s.di / CB, s.dm / 8>>>((const __half *)(pool + (r % copies) * bytes), dy,
                                                                dout, s.dm, s.di);
             }),
             bytes);
    }
    printf("\n");
}

int main() {
    pool_bytes = (size_t)1 << 30;
    CK(cudaMalloc(&pool, pool_bytes));
    CK(cudaMemset(pool, 0x2e, pool_bytes));
    CK(cudaMalloc(&dy, 8192 * 4));
    CK(cudaMemset(dy, 0, 8192 * 4));
    CK(cudaMalloc(&dout, 8192 * 4));
    CK(cudaMemset(dout, 0, 8192 * 4));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    printf("%-30s", "variant");
    for (const Shape &s : shapes) printf("  %-22s", s.name);
    printf("\n%-30s", "readsum (ceiling)");
    for (const Shape &s : shapes) {
        const size_t bytes = (size_t)s.dm * s.di * 2;
        const int copies = (int)(pool_bytes / bytes);
        cell(time_us([&](int r) {
                 readsum<<<sms * 8, 256>>>((const uint4 *)(pool + (r % copies) * bytes), bytes / 16, dout);
             }),
             bytes);
    }
    printf("\n");
    run_rowmajor<32, 3>("rowmajor CB32 (K34 default <=2048)");
    run_rowmajor<64, 3>("rowmajor CB64 rows split (K34)");
    run_transposed<32, 4>("transposed CB32 D4");
    run_transposed<32, 8>("transposed CB32 D8");
    run_transposed<64, 8>("transposed CB64 D8");
    run_transposed<16, 8>("transposed CB16 D8");
    CK(cudaDeviceSynchronize());
    return 0;
}
