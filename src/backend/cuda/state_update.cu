/*
 * state_update.cu - selective state update (one decode token) on CUDA.
 *
 * What it computes: for each sequence b with state slot s (b itself, or
 * state_batch_indices[b]) and channel d, one step of the scan recurrence on
 * the fp32 state (n_state_slots, dim, N) in place:
 * h[n] = exp(dt*A[d,n]) h[n] + dt B[n] x, out = (sum_n C[n] h[n] + D x) silu(z),
 * with dt = softplus(dt + dt_bias) as flagged and constant or grouped B, C.
 *
 * Parallel decomposition: the op is bound by reading and writing the state
 * (2 * batch*dim*N*4 bytes). A block takes 128 consecutive channels of one
 * sequence: it stages that sequence's B and C rows (fp32, the groups it
 * spans) in shared memory once, then each thread runs one channel's N
 * states in register chunks of 16, with 16-byte state and A accesses when
 * the rows are aligned (four loads of 16 bytes in flight per thread at
 * N = 16). The per-channel work (dt, softplus, D, the gate) is done once.
 * Fast path (N = 8, 16, 32 or 64, 16-byte aligned packed state and A rows):
 * N/4 adjacent lanes own one channel, each lane one float4 of state and A,
 * so a warp reads and writes one contiguous 512-byte run of state per
 * instruction; the C-sum is a shuffle butterfly over the channel's lanes and
 * B/C come straight from global memory (a few hundred bytes per sequence,
 * L1 hits across the channels of a group). The general kernel below covers
 * every other N and layout. MS6_UPDATE_CPT=2/4 runs the fast path with 2
 * or 4 channels per thread at any batch (a development variant: measured
 * slower than the general kernel at batch 128 and 1024, docs/kernel-notes.md),
 * MS6_UPDATE_CPT=0 the general kernel. v4 (below) runs in place of the
 * general kernel where it applies (MS6_UPDATE_V4=0: the general kernel).
 * A negative slot is padding: out = 0, no state touched. A slot >=
 * n_state_slots cannot be reported without a host round trip, so the kernel
 * touches no state for it and writes NaN to its outputs (the CPU ops return
 * MS6_STATUS_OUT_OF_RANGE).
 *
 * Checked against the float64 oracle of tests/kernel_harness.c and the CPU
 * reference src/backend/cpu/ref.c (tests/test_cuda_kernels.c).
 */
#include "backend/cuda/cuda_internal.h"

#include <stdlib.h>

namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 16;      /* states held in registers at a time */
constexpr int kMaxStaged = 2048; /* B or C floats staged in shared memory per block */

struct UpdArgs {
    long long batch, dim, N, G, dpg, n_slots;
    float *state;
    long long sbs, sds;
    DevAct x, dt, z, out;
    const float *A;
    long long A_ds, A_ns;
    DevBC B, C;
    const float *D, *bias;
    int softplus, has_z, vec_state, vec_a, gpb, staged, vec_bc;
    const int *idx;
    long long n_tiles;
};

/* One block: kThreads consecutive channels of one sequence. The sequence's
 * B and C rows (the groups the block spans) are staged in shared memory as
 * fp32 once; each thread then runs its channel's N states in register
 * chunks of 16, with 16-byte state and A accesses where aligned. */
__device__ __forceinline__ void load_chunk(const UpdArgs &a, const float *hp, const float *Ap, int n0, float (&h)[kChunk],
                                           float (&A2)[kChunk]) {
    if (a.vec_state) {
#pragma unroll
        for (int v = 0; v < kChunk; v += 4) {
            if (n0 + v < a.N) {
                const float4 h4 = *reinterpret_cast<const float4 *>(hp + n0 + v);
                h[v] = h4.x; h[v + 1] = h4.y; h[v + 2] = h4.z; h[v + 3] = h4.w;
            }
        }
    } else {
#pragma unroll
        for (int v = 0; v < kChunk; v++) h[v] = n0 + v < a.N ? hp[n0 + v] : 0.0f;
    }
    if (a.vec_a) {
#pragma unroll
        for (int v = 0; v < kChunk; v += 4) {
            if (n0 + v < a.N) {
                const float4 a4 = *reinterpret_cast<const float4 *>(Ap + n0 + v);
                A2[v] = a4.x; A2[v + 1] = a4.y; A2[v + 2] = a4.z; A2[v + 3] = a4.w;
            }
        }
    } else {
#pragma unroll
        for (int v = 0; v < kChunk; v++) A2[v] = n0 + v < a.N ? Ap[(n0 + v) * a.A_ns] : 0.0f;
    }
}

__global__ void __launch_bounds__(kThreads) update_kernel(const UpdArgs a) {
    __shared__ __align__(16) float s_bc[2 * kMaxStaged];
    const long long tile = blockIdx.x % a.n_tiles, b = blockIdx.x / a.n_tiles;
    const long long d0 = tile * kThreads, d = d0 + threadIdx.x;
    const long long slot = a.idx ? (long long)a.idx[b] : b;
    const bool pad = slot < 0, bad = slot >= a.n_slots;
    const bool run = !pad && !bad && d < a.dim;
    const long long g_lo = d0 / a.dpg;
    const int stride = a.gpb * (int)a.N;
    float *hp = a.state + (run ? slot * a.sbs + d * a.sds : 0);
    const float *Ap = a.A + (run ? d * a.A_ds : 0);
    /* the first chunk's state and A loads are issued before the B/C staging
     * barrier, so they are in flight while it runs */
    float h[kChunk], A2[kChunk];
    if (run) load_chunk(a, hp, Ap, 0, h, A2);
    if (a.staged && !pad && !bad) {
        for (int i = threadIdx.x; i < 2 * stride; i += kThreads) {
            const int which = i >= stride, r = i - which * stride;
            const int gg = r / (int)a.N, n = r - gg * (int)a.N;
            const DevBC &bc = which ? a.C : a.B;
            const long long g = g_lo + gg;
            s_bc[i] = g < a.G ? ld_any(bc.ptr, bc.dtype, b * bc.bs + g * bc.gs + n * bc.ns) : 0.0f;
        }
        __syncthreads();
    }
    if (d >= a.dim) return;
    const long long oo = b * a.out.bs + d * a.out.ds;
    if (pad || bad) {
        st_any(a.out.ptr, a.out.dtype, oo, pad ? 0.0f : __int_as_float(0x7fffffff));
        return;
    }
    const float xv = ld_any(a.x.ptr, a.x.dtype, b * a.x.bs + d * a.x.ds);
    float dt = ld_any(a.dt.ptr, a.dt.dtype, b * a.dt.bs + d * a.dt.ds);
    if (a.bias) dt += a.bias[d];
    if (a.softplus) dt = softplus_f(dt);
    const float dtx = dt * xv, dtl = dt * kLog2e;
    const long long g = d / a.dpg;
    const float *sB = s_bc + (g - g_lo) * a.N, *sC = s_bc + stride + (g - g_lo) * a.N;
    float y = 0.0f;
    for (int n0 = 0; n0 < a.N; n0 += kChunk) {
        if (n0 > 0) load_chunk(a, hp, Ap, n0, h, A2);
#pragma unroll
        for (int v = 0; v < kChunk; v++) {
            const int n = n0 + v;
            if (n < a.N) {
                float bv, cv;
                if (a.staged) {
                    bv = sB[n];
                    cv = sC[n];
                } else {
                    bv = a.B.var ? ld_any(a.B.ptr, a.B.dtype, b * a.B.bs + g * a.B.gs + n * a.B.ns)
                                 : ld_any(a.B.ptr, a.B.dtype, d * a.B.ds + n * a.B.ns);
                    cv = a.C.var ? ld_any(a.C.ptr, a.C.dtype, b * a.C.bs + g * a.C.gs + n * a.C.ns)
                                 : ld_any(a.C.ptr, a.C.dtype, d * a.C.ds + n * a.C.ns);
                }
                h[v] = fmaf(fast_ex2(dtl * A2[v]), h[v], dtx * bv);
                y = fmaf(cv, h[v], y);
            }
        }
        if (a.vec_state) {
#pragma unroll
            for (int v = 0; v < kChunk; v += 4)
                if (n0 + v < a.N)
                    *reinterpret_cast<float4 *>(hp + n0 + v) = make_float4(h[v], h[v + 1], h[v + 2], h[v + 3]);
        } else {
#pragma unroll
            for (int v = 0; v < kChunk; v++)
                if (n0 + v < a.N) hp[n0 + v] = h[v];
        }
    }
    if (a.D) y = fmaf(a.D[d], xv, y);
    if (a.has_z) y *= silu_f(ld_any(a.z.ptr, a.z.dtype, b * a.z.bs + d * a.z.ds));
    st_any(a.out.ptr, a.out.dtype, oo, y);
}

constexpr int kFastThreads = 256;

/* The fast path serves up to this many (sequence, channel) pairs;
 * MS6_UPDATE_FAST_MAX overrides it (0 = never, for comparisons). */
static long long fast_path_max_channels() {
    const char *e = getenv("MS6_UPDATE_FAST_MAX");
    return e ? atoll(e) : 16 * 5120;
}

/* Four consecutive elements at i (i a multiple of 4, the row aligned). */
__device__ __forceinline__ void ld4(const void *p, int dt, long long i, float (&v)[4]) {
    if (dt == MS6_DTYPE_F32) {
        const float4 f = *reinterpret_cast<const float4 *>((const float *)p + i);
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
        return;
    }
    const uint2 r = *reinterpret_cast<const uint2 *>((const unsigned short *)p + i);
    const unsigned short e[4] = {(unsigned short)(r.x & 0xffff), (unsigned short)(r.x >> 16),
                                 (unsigned short)(r.y & 0xffff), (unsigned short)(r.y >> 16)};
#pragma unroll
    for (int k = 0; k < 4; k++)
        v[k] = dt == MS6_DTYPE_BF16 ? __uint_as_float((unsigned)e[k] << 16) : __half2float(__ushort_as_half(e[k]));
}

/* LPC lanes per channel, 4 states per lane (N = 4*LPC); each thread runs
 * CPT channels kCPB apart, all their state, A, x and dt loads issued before
 * any arithmetic (CPT x 32 bytes of state and A in flight per thread). B and
 * C are the same for every channel of a group: a lane loads its four states
 * of them once per channel row (L1 hits). */
template <int LPC, int CPT>
__global__ void __launch_bounds__(kFastThreads) update_fast_kernel(const UpdArgs a) {
    constexpr int kCPB = kFastThreads / LPC; /* channels per block row */
    const long long tile = blockIdx.x % a.n_tiles, b = blockIdx.x / a.n_tiles;
    const int q = threadIdx.x % LPC;
    const long long d_first = tile * (kCPB * CPT) + threadIdx.x / LPC;
    const long long slot = a.idx ? (long long)a.idx[b] : b;
    const bool pad = slot < 0, bad = slot >= a.n_slots;
    /* no early return before the shuffles: every lane of the warp takes part */
    float4 h[CPT], A4[CPT];
    float xv[CPT], dtv[CPT];
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const long long d = d_first + r * kCPB;
        const bool run = !pad && !bad && d < a.dim;
        h[r] = make_float4(0.f, 0.f, 0.f, 0.f);
        A4[r] = h[r];
        xv[r] = 0.0f;
        dtv[r] = 0.0f;
        if (run) {
            h[r] = *reinterpret_cast<const float4 *>(a.state + slot * a.sbs + d * a.sds + 4 * q);
            A4[r] = *reinterpret_cast<const float4 *>(a.A + d * a.A_ds + 4 * q);
            xv[r] = ld_any(a.x.ptr, a.x.dtype, b * a.x.bs + d * a.x.ds);
            dtv[r] = ld_any(a.dt.ptr, a.dt.dtype, b * a.dt.bs + d * a.dt.ds);
        }
    }
#pragma unroll
    for (int r = 0; r < CPT; r++) {
        const long long d = d_first + r * kCPB;
        const bool run = !pad && !bad && d < a.dim;
        float y = 0.0f;
        if (run) {
            float dt = dtv[r];
            if (a.bias) dt += a.bias[d];
            if (a.softplus) dt = softplus_f(dt);
            const float dtx = dt * xv[r], dtl = dt * kLog2e;
            const long long g = d / a.dpg;
            float bv[4], cv[4];
            if (a.vec_bc) { /* four states of B and C in one 8- or 16-byte load each */
                ld4(a.B.ptr, a.B.dtype, b * a.B.bs + g * a.B.gs + 4 * q, bv);
                ld4(a.C.ptr, a.C.dtype, b * a.C.bs + g * a.C.gs + 4 * q, cv);
            } else
#pragma unroll
            for (int v = 0; v < 4; v++) {
                const long long n = 4 * q + v;
                bv[v] = a.B.var ? ld_any(a.B.ptr, a.B.dtype, b * a.B.bs + g * a.B.gs + n * a.B.ns)
                                : ld_any(a.B.ptr, a.B.dtype, d * a.B.ds + n * a.B.ns);
                cv[v] = a.C.var ? ld_any(a.C.ptr, a.C.dtype, b * a.C.bs + g * a.C.gs + n * a.C.ns)
                                : ld_any(a.C.ptr, a.C.dtype, d * a.C.ds + n * a.C.ns);
            }
            float4 hh = h[r];
            hh.x = fmaf(fast_ex2(dtl * A4[r].x), hh.x, dtx * bv[0]);
            hh.y = fmaf(fast_ex2(dtl * A4[r].y), hh.y, dtx * bv[1]);
            hh.z = fmaf(fast_ex2(dtl * A4[r].z), hh.z, dtx * bv[2]);
            hh.w = fmaf(fast_ex2(dtl * A4[r].w), hh.w, dtx * bv[3]);
            *reinterpret_cast<float4 *>(a.state + slot * a.sbs + d * a.sds + 4 * q) = hh;
            y = cv[0] * hh.x + cv[1] * hh.y + cv[2] * hh.z + cv[3] * hh.w;
        }
#pragma unroll
        for (int o = LPC / 2; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
        if (q != 0 || d >= a.dim) continue;
        const long long oo = b * a.out.bs + d * a.out.ds;
        if (!run) {
            st_any(a.out.ptr, a.out.dtype, oo, pad ? 0.0f : __int_as_float(0x7fffffff));
            continue;
        }
        if (a.D) y = fmaf(a.D[d], xv[r], y);
        if (a.has_z) y *= silu_f(ld_any(a.z.ptr, a.z.dtype, b * a.z.bs + d * a.z.ds));
        st_any(a.out.ptr, a.out.dtype, oo, y);
    }
}

template <int CPT>
void launch_fast(const UpdArgs &a, int lpc, long long blocks, cudaStream_t st) {
    switch (lpc) {
    case 2: update_fast_kernel<2, CPT><<<(unsigned)blocks, kFastThreads, 0, st>>>(a); break;
    case 4: update_fast_kernel<4, CPT><<<(unsigned)blocks, kFastThreads, 0, st>>>(a); break;
    case 8: update_fast_kernel<8, CPT><<<(unsigned)blocks, kFastThreads, 0, st>>>(a); break;
    default: update_fast_kernel<16, CPT><<<(unsigned)blocks, kFastThreads, 0, st>>>(a); break;
    }
}

/* ---- State update v4 (the large-batch default): lanes per channel, sequences per
 * thread, every load of a thread issued before any of them is waited for.
 *
 * Why the kernels above stay at 1.8-3x the floor at large batch: a thread's
 * state bytes are in flight for only part of its life. After the state and
 * A loads each waits on further small loads whose use follows at once: the
 * B/C staging and its barrier, then x and dt (general kernel); bias, B/C, D
 * and z, each behind a null or dtype check (fast path; in its CPT variant
 * once per channel, one after another, hence slower with more channels per
 * thread). Each is an L2 or DRAM round trip with no state load outstanding.
 * (Also: the fast path's float4 state store compiles to four 4-byte stores.)
 *
 * Design: the fast path's lane split (N/4 adjacent lanes per channel, one
 * float4 of state each: a warp reads and writes contiguous 512-byte runs),
 * with kV4Seqs = 4 sequences per thread on the same channel: 64 bytes of
 * state in flight per thread (N = 16), and the lane's A float4 (shared
 * across the batch, L2-resident) loaded once for four sequences.
 * - Phase 1 issues every load: the four state float4s, the lane's four B
 *   and C values per sequence (8 bytes each at f16, kept packed in
 *   registers: no shared memory, no barrier), A, bias, D, and x, dt, z of
 *   the lane's own sequence (lane q of a channel owns sequence q % 4). No
 *   load is conditional (past the batch, the channels or a valid slot they
 *   read a valid stand-in row), offsets are 32-bit, the I/O type is a
 *   template parameter (no dtype branch), and an empty non-inlined call
 *   ends the phase: ptxas schedules nothing across it (without it, it moved
 *   uses of the first loads above the last ones, a second round trip).
 * - Phase 2: the per-(sequence, channel) work (softplus, dt*x) once, by the
 *   sequence's own lane, handed to the channel's lanes by shuffles; the
 *   four state updates, each stored back as one 16-byte store; C.h summed
 *   over the channel's lanes by a butterfly; the own lane adds D*x, applies
 *   the gate and writes out.
 * One memory round trip per thread (two with state_batch_indices: lane j of
 * each warp loads sequence b0 + j's slot, shuffles hand them out, and the
 * loads above wait for it, an L2 hit). ~440 instructions per thread (64
 * bytes of state) on the benchmark's path (f16, z, softplus, bias, D).
 *
 * Prediction (H200, dim 5120, N 16, f16 I/O, `bench scan --no-prefill`):
 * 62 registers, 8 blocks of 128 threads per SM, 64 KB of state loads in
 * flight per SM against ~20-30 KB that 4.2 TB/s needs at 1-1.5 us loaded
 * latency; issue ~40% of the SM's slots at the floor's rate. Batch 1024
 * at 1.10-1.15x its floor (0.185-0.195 ms), batch 128 ~0.025 ms (floor
 * 0.021 plus a tail of ~5 waves and the launch).
 *
 * Takes N = 16, 32, 64 with the fast path's layouts (packed 16-byte aligned
 * state and A rows), variable B and C in aligned rows (vec_bc), x, dt, z,
 * out, B, C of one dtype and every element offset within int32; every
 * option (D, z, dt_bias, softplus, groups, slot indices with padding and
 * out-of-range slots). Anything else goes to the kernels above. */
constexpr int kV4Threads = 128;
constexpr int kV4Seqs = 4; /* sequences per thread */

__device__ __forceinline__ void v4st(float *p, float v) { *p = v; }
__device__ __forceinline__ void v4st(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void v4st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* Four consecutive B or C values: one 16-byte load of fp32, or one 8-byte
 * load of halves kept packed until phase 2. */
template <typename T> struct V4Quad { uint2 raw; };
template <> struct V4Quad<float> { float4 raw; };
template <typename T>
__device__ __forceinline__ void v4ld4(V4Quad<T> &r, const T *p) { r.raw = *reinterpret_cast<const uint2 *>(p); }
__device__ __forceinline__ void v4ld4(V4Quad<float> &r, const float *p) { r.raw = *reinterpret_cast<const float4 *>(p); }
__device__ __forceinline__ void v4cvt4(const V4Quad<float> &r, float (&v)[4]) {
    v[0] = r.raw.x; v[1] = r.raw.y; v[2] = r.raw.z; v[3] = r.raw.w;
}
__device__ __forceinline__ void v4cvt4(const V4Quad<__half> &r, float (&v)[4]) {
    const float2 lo = __half22float2(*reinterpret_cast<const __half2 *>(&r.raw.x));
    const float2 hi = __half22float2(*reinterpret_cast<const __half2 *>(&r.raw.y));
    v[0] = lo.x; v[1] = lo.y; v[2] = hi.x; v[3] = hi.y;
}
__device__ __forceinline__ void v4cvt4(const V4Quad<__nv_bfloat16> &r, float (&v)[4]) {
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&r.raw.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(&r.raw.y));
    v[0] = lo.x; v[1] = lo.y; v[2] = hi.x; v[3] = hi.y;
}


template <int LPC, typename T>
__global__ void __launch_bounds__(kV4Threads) update_v4_kernel(const UpdArgs a) {
    constexpr int kCPB = kV4Threads / LPC; /* channels per block */
    constexpr int S = kV4Seqs;
    static_assert(LPC >= S, "a lane does one sequence's per-channel work");
    /* every element offset fits in 32 bits (checked at dispatch): one
     * multiply-add per address instead of 64-bit products */
    const int n_tiles = (int)a.n_tiles, batch = (int)a.batch, dim = (int)a.dim, n_slots = (int)a.n_slots;
    const int tile = (int)blockIdx.x % n_tiles, b0 = (int)blockIdx.x / n_tiles * S;
    const int nb = batch - b0 < S ? batch - b0 : S; /* sequences of this block */
    const int q = threadIdx.x % LPC, js = q % S;    /* js: the lane's own sequence */
    const int d = tile * kCPB + threadIdx.x / LPC;
    const bool dok = d < dim;
    /* no load is conditional: past the channels they read channel dim - 1,
     * past the batch sequence b0, for padding or an out-of-range slot slot
     * 0 (valid rows, never used) */
    const int dl = dok ? d : dim - 1;
    const int g = a.G == 1 ? 0 : dl / (int)a.dpg;
    const int rs = js < nb ? js : 0; /* the own sequence's row */

    /* Slot of each sequence. With indices, lane j of the warp loads
     * sequence b0 + j's and shuffles hand them out: one L2 round trip before
     * the loads below (a thread loading all S would wait for each in turn:
     * the values are block-uniform). */
    int slot[S]; /* < 0: padding or past the batch; >= n_slots: out of range */
    if (a.idx) {
        const int lane = threadIdx.x % 32;
        const int mine = a.idx[b0 + (lane < nb ? lane : 0)];
#pragma unroll
        for (int j = 0; j < S; j++) slot[j] = j < nb ? __shfl_sync(0xffffffffu, mine, j) : -1;
    } else {
#pragma unroll
        for (int j = 0; j < S; j++) slot[j] = j < nb ? b0 + j : -1;
    }

    /* ---- phase 1: every load ---- */
    float *hp = a.state + (dl * (int)a.sds + 4 * q);
    float4 h[S];
    V4Quad<T> br[S], cr[S];
#pragma unroll
    for (int j = 0; j < S; j++) {
        const int r = j < nb ? j : 0;
        h[j] = *reinterpret_cast<const float4 *>(hp + (slot[j] >= 0 && slot[j] < n_slots ? slot[j] : 0) * (int)a.sbs);
        v4ld4(br[j], (const T *)a.B.ptr + ((b0 + r) * (int)a.B.bs + g * (int)a.B.gs + 4 * q));
        v4ld4(cr[j], (const T *)a.C.ptr + ((b0 + r) * (int)a.C.bs + g * (int)a.C.gs + 4 * q));
    }
    const T xr = ((const T *)a.x.ptr)[(b0 + rs) * (int)a.x.bs + dl * (int)a.x.ds];
    const T dtr = ((const T *)a.dt.ptr)[(b0 + rs) * (int)a.dt.bs + dl * (int)a.dt.ds];
    const T zr = ((const T *)a.z.ptr)[(b0 + rs) * (int)a.z.bs + dl * (int)a.z.ds];
    const float4 A4 = *reinterpret_cast<const float4 *>(a.A + (dl * (int)a.A_ds + 4 * q));
    float bias = 0.0f, Dv = 0.0f; /* predicated loads, no branch */
    if (a.bias) bias = a.bias[dl];
    if (a.D) Dv = a.D[dl];
    phase_fence();

    /* ---- phase 2 ---- */
    /* the own sequence's per-channel work, once per (sequence, channel) */
    const float dt0 = tof(dtr) + bias, sp = softplus_f(dt0);
    const float dt = a.softplus ? sp : dt0, xv = tof(xr);
    const float dtx_own = dt * xv, dtl_own = dt * kLog2e;
    float y[S];
#pragma unroll
    for (int j = 0; j < S; j++) {
        /* sequence j's dt * x and dt * log2(e), from the channel's lane j */
        const float dtx = __shfl_sync(0xffffffffu, dtx_own, j, LPC);
        const float dtl = __shfl_sync(0xffffffffu, dtl_own, j, LPC);
        float bv[4], cv[4];
        v4cvt4(br[j], bv);
        v4cvt4(cr[j], cv);
        const float h0 = fmaf(fast_ex2(dtl * A4.x), h[j].x, dtx * bv[0]);
        const float h1 = fmaf(fast_ex2(dtl * A4.y), h[j].y, dtx * bv[1]);
        const float h2 = fmaf(fast_ex2(dtl * A4.z), h[j].z, dtx * bv[2]);
        const float h3 = fmaf(fast_ex2(dtl * A4.w), h[j].w, dtx * bv[3]);
        if (dok && slot[j] >= 0 && slot[j] < n_slots) st_v4(hp + slot[j] * (int)a.sbs, h0, h1, h2, h3);
        y[j] = cv[0] * h0 + cv[1] * h1 + cv[2] * h2 + cv[3] * h3;
#pragma unroll
        for (int o = LPC / 2; o > 0; o >>= 1) y[j] += __shfl_xor_sync(0xffffffffu, y[j], o);
    }
    /* lane js < S finishes and writes sequence js */
    float yo = y[0];
#pragma unroll
    for (int j = 1; j < S; j++) yo = js == j ? y[j] : yo;
    int so = slot[0];
#pragma unroll
    for (int j = 1; j < S; j++) so = js == j ? slot[j] : so;
    yo = fmaf(Dv, xv, yo);
    const float gate = silu_f(tof(zr));
    yo *= a.has_z ? gate : 1.0f;
    if (so < 0) yo = 0.0f;                                  /* padding */
    else if (so >= n_slots) yo = __int_as_float(0x7fffffff); /* slot out of range */
    if (q < S && dok && js < nb) v4st((T *)a.out.ptr + ((b0 + js) * (int)a.out.bs + d * (int)a.out.ds), yo);
}

/* Whether |s1| (n1 - 1) + |s2| (n2 - 1) + extra elements fit in int32. */
static bool v4_fits(long long s1, long long n1, long long s2, long long n2, long long extra) {
    const long long lim = (1LL << 31) - 1;
    s1 = s1 < 0 ? -s1 : s1;
    s2 = s2 < 0 ? -s2 : s2;
    if (n1 > 1 && s1 > lim / (n1 - 1)) return false;
    if (n2 > 1 && s2 > lim / (n2 - 1)) return false;
    return s1 * (n1 - 1) + s2 * (n2 - 1) + extra < lim;
}

/* What v4 takes besides the lanes layout (N >= 16): variable B and C in
 * aligned rows (vec_bc), one I/O dtype for x, dt, z, out, B, C, every
 * element offset within int32 and the grid within its limit. */
static bool v4_takes(const UpdArgs &a) {
    const int io = a.B.dtype;
    if (!a.vec_bc || a.x.dtype != io || a.dt.dtype != io || a.out.dtype != io || (a.has_z && a.z.dtype != io))
        return false;
    const long long B = a.batch, D = a.dim, N = a.N;
    const int lpc = (int)(N / 4);
    const long long blocks = (D + kV4Threads / lpc - 1) / (kV4Threads / lpc) * ((B + kV4Seqs - 1) / kV4Seqs);
    return blocks < (1LL << 31) && v4_fits(a.x.bs, B, a.x.ds, D, 1) && v4_fits(a.dt.bs, B, a.dt.ds, D, 1) &&
           (!a.has_z || v4_fits(a.z.bs, B, a.z.ds, D, 1)) && v4_fits(a.out.bs, B, a.out.ds, D, 1) &&
           v4_fits(a.B.bs, B, a.B.gs, a.G, N) && v4_fits(a.C.bs, B, a.C.gs, a.G, N) &&
           v4_fits(a.sbs, a.n_slots, a.sds, D, N) && v4_fits(a.A_ds, D, 0, 1, N);
}

template <typename T>
void launch_v4(const UpdArgs &a, int lpc, long long blocks, cudaStream_t st) {
    switch (lpc) {
    case 4: update_v4_kernel<4, T><<<(unsigned)blocks, kV4Threads, 0, st>>>(a); break;
    case 8: update_v4_kernel<8, T><<<(unsigned)blocks, kV4Threads, 0, st>>>(a); break;
    default: update_v4_kernel<16, T><<<(unsigned)blocks, kV4Threads, 0, st>>>(a); break;
    }
}

} // namespace

extern "C" ms6_status ms6_cuda_state_update(ms6_backend *be, const ms6_state_update_params *p) {
    UpdArgs a;
    const long long N = p->d_state;
    a.batch = p->batch; a.dim = p->dim; a.N = N;
    a.G = p->n_groups > 0 ? p->n_groups : 1;
    a.dpg = p->dim / a.G;
    a.n_slots = p->n_state_slots;
    a.state = p->state;
    a.sds = p->state_dim_stride ? p->state_dim_stride : N;
    a.sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * a.sds;
    a.x = dev_act(p->x); a.dt = dev_act(p->dt); a.z = dev_act(p->z); a.out = dev_act(p->out);
    a.A = p->A; a.A_ds = p->A_dim_stride; a.A_ns = p->A_state_stride;
    a.B = dev_bc(p->B); a.C = dev_bc(p->C);
    a.D = p->D; a.bias = p->dt_bias;
    a.softplus = p->dt_softplus; a.has_z = p->z.ptr != NULL;
    a.idx = p->state_batch_indices;
    /* 16-byte accesses need 16-byte aligned rows and N a multiple of 4 */
    a.vec_state = ((uintptr_t)p->state % 16 == 0) && a.sds % 4 == 0 && a.sbs % 4 == 0 && N % 4 == 0;
    a.vec_a = ((uintptr_t)p->A % 16 == 0) && a.A_ds % 4 == 0 && a.A_ns == 1 && N % 4 == 0;
    /* fast path: packed 16-byte aligned state rows (sds == N) and A rows.
     * Measured on the H200 at dim 5120, N 16 (docs/kernel-notes.md): faster
     * than the general kernel up to batch 16, slower at 128 and 1024 */
    const size_t bc_align = ms6_dtype_size(p->B.dtype) * 4;
    a.vec_bc = a.B.var && a.C.var && p->B.dtype == p->C.dtype && a.B.ns == 1 && a.C.ns == 1 &&
               a.B.bs % 4 == 0 && a.B.gs % 4 == 0 && a.C.bs % 4 == 0 && a.C.gs % 4 == 0 &&
               (uintptr_t)p->B.ptr % bc_align == 0 && (uintptr_t)p->C.ptr % bc_align == 0;
    /* channels per thread of the fast path: 1 for small batches, more
     * above (MS6_UPDATE_CPT overrides; 0 = the general kernel there) */
    const long long chans = p->batch * p->dim;
    const char *cpt_env = getenv("MS6_UPDATE_CPT");
    int cpt = chans <= fast_path_max_channels() ? 1 : 0;
    if (cpt_env) cpt = atoi(cpt_env);
    const bool lanes_ok = (N == 8 || N == 16 || N == 32 || N == 64) && a.vec_state && a.vec_a && a.sds == N;
    /* v4 where the general kernel would run (above the fast path's pairs;
     * MS6_UPDATE_FAST_MAX=0: at every batch), for the layouts it takes;
     * MS6_UPDATE_CPT, if set, wins; MS6_UPDATE_V4=0 turns it off */
    if (!cpt_env && cpt == 0 && lanes_ok && N >= 16 && v4_takes(a) && !ms6_env_is("MS6_UPDATE_V4", "0")) {
        UpdArgs v = a;
        if (!a.has_z) v.z = a.x; /* a valid stand-in: the z load has no branch */
        const int lpc = (int)(N / 4), cpb = kV4Threads / lpc;
        v.n_tiles = (p->dim + cpb - 1) / cpb;
        const long long blocks = v.n_tiles * ((p->batch + kV4Seqs - 1) / kV4Seqs);
        cudaStream_t st = ms6_cuda(be)->stream;
        if (a.B.dtype == MS6_DTYPE_F16) launch_v4<__half>(v, lpc, blocks, st);
        else if (a.B.dtype == MS6_DTYPE_BF16) launch_v4<__nv_bfloat16>(v, lpc, blocks, st);
        else launch_v4<float>(v, lpc, blocks, st);
        return ms6_cuda_check(be, cudaGetLastError(), "selective_state_update launch");
    }
    if (lanes_ok && (cpt == 1 || cpt == 2 || cpt == 4)) {
        const int lpc = (int)(N / 4), cpb = kFastThreads / lpc;
        a.n_tiles = (p->dim + (long long)cpb * cpt - 1) / ((long long)cpb * cpt);
        const long long blocks = a.n_tiles * p->batch;
        cudaStream_t st = ms6_cuda(be)->stream;
        if (cpt == 4) launch_fast<4>(a, lpc, blocks, st);
        else if (cpt == 2) launch_fast<2>(a, lpc, blocks, st);
        else launch_fast<1>(a, lpc, blocks, st);
        return ms6_cuda_check(be, cudaGetLastError(), "selective_state_update launch");
    }
    /* stage B and C in shared memory when both vary per sequence and the
     * groups one block spans fit */
    long long gpb = (kThreads - 1) / a.dpg + 2;
    if (gpb > a.G) gpb = a.G;
    a.gpb = (int)gpb;
    a.staged = a.B.var && a.C.var && gpb * N <= kMaxStaged;
    a.n_tiles = (p->dim + kThreads - 1) / kThreads;
    const long long blocks = a.n_tiles * p->batch;
    update_kernel<<<(unsigned)blocks, kThreads, 0, ms6_cuda(be)->stream>>>(a);
    return ms6_cuda_check(be, cudaGetLastError(), "selective_state_update launch");
}
