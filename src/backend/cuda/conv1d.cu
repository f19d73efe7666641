/*
 * conv1d.cu - causal depthwise conv1d (prefill) and its one-step update
 * (decode) on CUDA, with the bias and SiLU fused.
 *
 * What it computes: c[b,d,t] = bias[d] + sum_k w[d,k] x[b,d,t-K+1+k] with
 * the K-1 inputs before t = 0 taken from the initial conv state (or zeros),
 * out = silu(c) when activation is set; the final state receives the last
 * K-1 inputs. The update does one step against a (slots, dim, K-1) state,
 * shifting it in place; a negative slot is padding (out = 0, state untouched)
 * and a slot >= n_state_slots, which cannot be reported without a host round
 * trip, touches no state and writes NaN.
 *
 * Parallel decomposition: prefill gives each thread one channel and a
 * segment of SEG steps; a warp covers 32 consecutive channels, so in the
 * token-major layout every step is one coalesced load. The window of the
 * last 7 inputs lives in registers (weights right-aligned in an 8-wide
 * register array, so any K in 2..8 is compile-time indexed). When there is
 * more than one segment the final state is written by a second, one-thread-
 * per-channel launch after all reads of the initial state, since the two may
 * be the same buffer. The update is one thread per (sequence, channel).
 *
 * Checked against the float64 oracles of tests/kernel_harness.c and the CPU
 * reference src/backend/cpu/ref.c (tests/test_cuda_kernels.c).
 */
#include "backend/cuda/cuda_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

namespace {

constexpr int kThreads = 128;
constexpr int kSeg = 64;
constexpr int kWin = 7; /* MS6_MAX_D_CONV - 1 */

struct ConvArgs {
    long long batch, dim, L, K, W, ws;
    DevAct x, out;
    const float *w, *bias;
    int act;
    const float *h0;
    float *hT;
    long long sbs, sds;
    long long n_tiles, n_seg;
};

__global__ void __launch_bounds__(kThreads) conv_fwd_kernel(const ConvArgs a) {
    long long id = blockIdx.x;
    const long long tile = id % a.n_tiles;
    id /= a.n_tiles;
    const long long seg = id % a.n_seg, b = id / a.n_seg;
    const long long d = tile * kThreads + threadIdx.x;
    if (d >= a.dim) return;
    const int K = (int)a.K, W = (int)a.W;
    /* right-aligned weights: wr[kWin] multiplies the current input */
    float wr[kWin + 1];
#pragma unroll
    for (int k = 0; k <= kWin; k++) {
        const int src = k - (kWin + 1 - K);
        wr[k] = src >= 0 ? a.w[d * a.ws + src] : 0.0f;
    }
    const float bias = a.bias ? a.bias[d] : 0.0f;
    const long long t0 = seg * kSeg;
    const long long t1 = t0 + kSeg < a.L ? t0 + kSeg : a.L;
    const long long xo = b * a.x.bs + d * a.x.ds;
    const long long oo = b * a.out.bs + d * a.out.ds;
    const long long so = b * a.sbs + d * a.sds;
    /* win[k] = input at time t0 - kWin + k */
    float win[kWin];
#pragma unroll
    for (int k = 0; k < kWin; k++) {
        const long long j = t0 - kWin + k;
        float v = 0.0f;
        if (j >= 0) v = ld_any(a.x.ptr, a.x.dtype, xo + j * a.x.ts);
        else if (j >= -W && a.h0) v = a.h0[so + W + j];
        win[k] = v;
    }
    for (long long t = t0; t < t1; t++) {
        const float xv = ld_any(a.x.ptr, a.x.dtype, xo + t * a.x.ts);
        float c = fmaf(wr[kWin], xv, bias);
#pragma unroll
        for (int k = 0; k < kWin; k++) c = fmaf(wr[k], win[k], c);
        if (a.act) c = silu_f(c);
        st_any(a.out.ptr, a.out.dtype, oo + t * a.out.ts, c);
#pragma unroll
        for (int k = 0; k < kWin - 1; k++) win[k] = win[k + 1];
        win[kWin - 1] = xv;
    }
    /* one segment: this thread read the initial state itself, so it can
     * write the final one (the last W inputs) even in place */
    if (a.hT && a.n_seg == 1) {
#pragma unroll
        for (int k = 0; k < kWin; k++)
            if (k >= kWin - W) a.hT[so + k - (kWin - W)] = win[k];
    }
}

/* Final state after a multi-segment launch: L >= kSeg > W, so it is the
 * last W inputs of x. */
__global__ void conv_final_kernel(const ConvArgs a) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= a.batch * a.dim) return;
    const long long b = i / a.dim, d = i - b * a.dim;
    const long long xo = b * a.x.bs + d * a.x.ds, so = b * a.sbs + d * a.sds;
    for (long long k = 0; k < a.W; k++) a.hT[so + k] = ld_any(a.x.ptr, a.x.dtype, xo + (a.L - a.W + k) * a.x.ts);
}

struct ConvUpdArgs {
    long long batch, dim, K, W, ws, n_slots;
    DevAct x, out;
    float *state;
    long long sbs, sds;
    const float *w, *bias;
    int act;
    const int *idx;
};

__global__ void __launch_bounds__(kThreads) conv_update_kernel(const ConvUpdArgs a) {
    const long long i = (long long)blockIdx.x * kThreads + threadIdx.x;
    if (i >= a.batch * a.dim) return;
    const long long b = i / a.dim, d = i - b * a.dim;
    const long long slot = a.idx ? a.idx[b] : b;
    const long long oo = b * a.out.bs + d * a.out.ds;
    if (slot < 0 || slot >= a.n_slots) {
        st_any(a.out.ptr, a.out.dtype, oo, slot < 0 ? 0.0f : __int_as_float(0x7fffffff));
        return;
    }
    const int W = (int)a.W;
    float *s = a.state + slot * a.sbs + d * a.sds;
    const float *w = a.w + d * a.ws;
    const float xv = ld_any(a.x.ptr, a.x.dtype, b * a.x.bs + d * a.x.ds);
    float c = conv_step<kWin>(s, w, a.bias ? a.bias[d] : 0.0f, xv, W);
    if (a.act) c = silu_f(c);
    st_any(a.out.ptr, a.out.dtype, oo, c);
}

/* The update with 4 channels per thread (the default where it applies;
 * MS6_CONV_UPD_VEC=0: the scalar kernel): for d_conv 4, fp32 x and out with unit channel stride, packed
 * state (slot, dim, 3) and weights (dim, 4), every row and pointer 16-byte
 * aligned. A thread's 4 channels are 3 float4 of state, 4 of weights, one
 * of x, bias and out, with 32-bit index arithmetic and the sequence from
 * blockIdx.y; the same FMAs in the same order as conv_update_kernel.
 * Batched decode spent ~11 us per 2.8b layer at 64 sequences in the
 * scalar kernel against ~2.5 us of bytes; measured (H200, bench generate,
 * 2.8b shape, ms per step, vec4 / scalar): batch 8 3.562 / 3.595, batch 64
 * 4.762 / 4.916. */
__global__ void __launch_bounds__(kThreads) conv_update_vec4_kernel(const ConvUpdArgs a) {
    const int b = blockIdx.y, d0 = 4 * (blockIdx.x * kThreads + threadIdx.x);
    if (d0 >= (int)a.dim) return;
    const long long slot = a.idx ? a.idx[b] : b;
    float4 *o = reinterpret_cast<float4 *>(static_cast<float *>(a.out.ptr) + b * a.out.bs + d0);
    if (slot < 0 || slot >= a.n_slots) {
        const float v = slot < 0 ? 0.0f : __int_as_float(0x7fffffff);
        *o = make_float4(v, v, v, v);
        return;
    }
    const float4 x4 = *reinterpret_cast<const float4 *>(static_cast<const float *>(a.x.ptr) + b * a.x.bs + d0);
    float4 *s4 = reinterpret_cast<float4 *>(a.state + slot * a.sbs + 3 * d0);
    const float4 *w4 = reinterpret_cast<const float4 *>(a.w + 4 * d0);
    float sv[12], wv[16];
    const float xs[4] = {x4.x, x4.y, x4.z, x4.w};
#pragma unroll
    for (int j = 0; j < 3; j++) {
        const float4 t = s4[j];
        sv[4 * j] = t.x; sv[4 * j + 1] = t.y; sv[4 * j + 2] = t.z; sv[4 * j + 3] = t.w;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float4 t = w4[j];
        wv[4 * j] = t.x; wv[4 * j + 1] = t.y; wv[4 * j + 2] = t.z; wv[4 * j + 3] = t.w;
    }
    float bv[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (a.bias) {
        const float4 t = *reinterpret_cast<const float4 *>(a.bias + d0);
        bv[0] = t.x; bv[1] = t.y; bv[2] = t.z; bv[3] = t.w;
    }
    float out[4], ns[12];
#pragma unroll
    for (int ch = 0; ch < 4; ch++) {
        float c = bv[ch];
#pragma unroll
        for (int k = 0; k < 3; k++) c = fmaf(wv[4 * ch + k], sv[3 * ch + k], c);
        c = fmaf(wv[4 * ch + 3], xs[ch], c);
        out[ch] = a.act ? silu_f(c) : c;
        ns[3 * ch] = sv[3 * ch + 1];
        ns[3 * ch + 1] = sv[3 * ch + 2];
        ns[3 * ch + 2] = xs[ch];
    }
#pragma unroll
    for (int j = 0; j < 3; j++) s4[j] = make_float4(ns[4 * j], ns[4 * j + 1], ns[4 * j + 2], ns[4 * j + 3]);
    *o = make_float4(out[0], out[1], out[2], out[3]);
}

/* ---- vectorised prefill: V consecutive channels per thread ---------------
 * For channel-contiguous activations (dim stride 1, every row 16-byte
 * aligned, dim a multiple of V) one thread owns V channels (8 for 2-byte
 * types, 4 for fp32) and a segment of 8 steps (MS6_CONV_SEG=16: 16): each step is one
 * 16-byte load and one 16-byte store, and a warp moves 512 bytes per row.
 * All of a segment's loads (its K-1 inputs before the segment, re-read from
 * x or taken from the initial state, then its rows) are issued
 * before any arithmetic, so ~11 x 16 bytes per thread are in flight at once;
 * the weights are one 16-byte load per channel when K = 4 and rows are
 * packed. Blocks are numbered over (batch, segment, channel tile) in one
 * grid dimension, so any length fits. */

template <int DT> struct VecIO;
template <> struct VecIO<MS6_DTYPE_F32> {
    static constexpr int V = 4;
    static __device__ __forceinline__ void cvt(const uint4 &u, float v[4]) {
        v[0] = __uint_as_float(u.x); v[1] = __uint_as_float(u.y);
        v[2] = __uint_as_float(u.z); v[3] = __uint_as_float(u.w);
    }
    static __device__ __forceinline__ uint4 pack(const float v[4]) {
        return make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
    }
    static constexpr int esz = 4;
};
template <typename H> struct VecIOHalf { /* 8 halves of type H per 16 bytes */
    static constexpr int V = 8;
    static __device__ __forceinline__ void cvt(const uint4 &u, float v[8]) { unpack8(u, v, H()); }
    static __device__ __forceinline__ uint4 pack(const float v[8]) { return pack8(v, H()); }
    static constexpr int esz = 2;
};
template <> struct VecIO<MS6_DTYPE_F16> : VecIOHalf<__half> {};
template <> struct VecIO<MS6_DTYPE_BF16> : VecIOHalf<__nv_bfloat16> {};

/* the 16-byte row of V channels starting at element i */
static __device__ __forceinline__ uint4 ld_row(const void *p, long long i, int esz) {
    return __ldg((const uint4 *)((const char *)p + i * esz));
}

template <int K, int DT, int SEG>
__global__ void __launch_bounds__(kThreads) conv_fwd_vec_kernel(const ConvArgs a, long long n_vec) {
    typedef VecIO<DT> IO;
    constexpr int V = IO::V, W = K - 1;
    const long long tiles = (n_vec + kThreads - 1) / kThreads;
    const long long blk = blockIdx.x, tile = blk % tiles, seg = (blk / tiles) % a.n_seg, b = blk / tiles / a.n_seg;
    const long long c = tile * kThreads + threadIdx.x;
    if (c >= n_vec) return;
    const long long d0 = c * V;
    const long long t0 = seg * SEG;
    const int n = (int)(a.L - t0 < SEG ? a.L - t0 : SEG);
    const long long xo = b * a.x.bs + d0, oo = b * a.out.bs + d0, so = b * a.sbs + d0 * a.sds;
    /* every load first: the W inputs before the segment, then its rows */
    uint4 raw[W + SEG];
#pragma unroll
    for (int i = 0; i < W + SEG; i++) {
        const long long t = t0 - W + i;
        if (t >= 0 && i < W + n) raw[i] = ld_row(a.x.ptr, xo + t * a.x.ts, IO::esz);
        else raw[i] = make_uint4(0, 0, 0, 0);
    }
    float wk[K][V], bias[V];
    if (K == 4 && a.ws == 4) {
#pragma unroll
        for (int j = 0; j < V; j++) {
            const float4 w4 = __ldg((const float4 *)(a.w + (d0 + j) * 4));
            wk[0][j] = w4.x; wk[1 % K][j] = w4.y; wk[2 % K][j] = w4.z; wk[3 % K][j] = w4.w;
        }
    } else {
#pragma unroll
        for (int j = 0; j < V; j++)
#pragma unroll
            for (int k = 0; k < K; k++) wk[k][j] = __ldg(a.w + (d0 + j) * a.ws + k);
    }
#pragma unroll
    for (int j = 0; j < V; j++) bias[j] = a.bias ? __ldg(a.bias + d0 + j) : 0.0f;
    /* win[k] = the input at time t - W + k for the step t about to run,
     * from x or (before t = 0) the initial state */
    float win[W > 0 ? W : 1][V];
#pragma unroll
    for (int k = 0; k < W; k++) {
        IO::cvt(raw[k], win[k]);
        if (t0 - W + k < 0)
#pragma unroll
            for (int v = 0; v < V; v++) win[k][v] = a.h0 ? a.h0[so + v * a.sds + W + (t0 - W + k)] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < SEG; i++) {
        if (i < n) {
            float xv[V], o[V];
            IO::cvt(raw[W + i], xv);
#pragma unroll
            for (int v = 0; v < V; v++) {
                float acc = fmaf(wk[W][v], xv[v], bias[v]);
#pragma unroll
                for (int k = 0; k < W; k++) acc = fmaf(wk[k][v], win[k][v], acc);
                o[v] = a.act ? silu_f(acc) : acc;
            }
            *(uint4 *)((char *)a.out.ptr + (oo + (t0 + i) * a.out.ts) * IO::esz) = IO::pack(o);
#pragma unroll
            for (int k = 0; k + 1 < W; k++)
#pragma unroll
                for (int v = 0; v < V; v++) win[k][v] = win[k + 1][v];
#pragma unroll
            for (int v = 0; v < V; v++) win[W > 0 ? W - 1 : 0][v] = W > 0 ? xv[v] : win[0][v];
        }
    }
    /* one segment: the initial state was read by this thread only, and the
     * window now holds the last W inputs */
    if (a.hT && a.n_seg == 1) {
#pragma unroll
        for (int k = 0; k < W; k++)
#pragma unroll
            for (int v = 0; v < V; v++) a.hT[so + v * a.sds + k] = win[k][v];
    }
}

/* Segment length of the vector path: 8 steps, or MS6_CONV_SEG=16. */
static int vec_seg(void) {
    const char *e = getenv("MS6_CONV_SEG");
    return e && !strcmp(e, "16") ? 16 : 8;
}

template <int DT, int SEG>
static cudaError_t launch_vec_ks(const ConvArgs &a, long long n_vec, long long blocks, cudaStream_t st) {
    switch (a.K) {
    case 2: conv_fwd_vec_kernel<2, DT, SEG><<<(unsigned)blocks, kThreads, 0, st>>>(a, n_vec); break;
    case 3: conv_fwd_vec_kernel<3, DT, SEG><<<(unsigned)blocks, kThreads, 0, st>>>(a, n_vec); break;
    default: conv_fwd_vec_kernel<4, DT, SEG><<<(unsigned)blocks, kThreads, 0, st>>>(a, n_vec); break;
    }
    return cudaGetLastError();
}

template <int DT>
static cudaError_t launch_vec_k(const ConvArgs &a, long long n_vec, long long blocks, int seg, cudaStream_t st) {
    return seg == 16 ? launch_vec_ks<DT, 16>(a, n_vec, blocks, st) : launch_vec_ks<DT, 8>(a, n_vec, blocks, st);
}

/* The vectorised kernel's conditions; 0 when the scalar kernel must run. */
static int vec_width(const ms6_conv1d_params *p) {
    if (p->x.dtype != p->out.dtype || p->d_conv > 4 || p->seqlen < 1) return 0;
    const int V = p->x.dtype == MS6_DTYPE_F32 ? 4 : 8;
    const long long esz = p->x.dtype == MS6_DTYPE_F32 ? 4 : 2;
    if (p->x.dim_stride != 1 || p->out.dim_stride != 1 || p->dim % V) return 0;
    const ms6_act *acts[2] = {&p->x, &p->out};
    for (int i = 0; i < 2; i++) {
        const ms6_act *q = acts[i];
        if (((uintptr_t)q->ptr % 16) || (q->seq_stride * esz) % 16 || (p->batch > 1 && (q->batch_stride * esz) % 16))
            return 0;
    }
    /* the packed K = 4 weight rows are read as float4 */
    const long long ws = p->weight_dim_stride ? p->weight_dim_stride : p->d_conv;
    if (p->d_conv == 4 && ws == 4 && (uintptr_t)p->weight % 16) return 0;
    /* one grid dimension of blocks */
    const long long blocks = p->batch * ((p->seqlen + 7) / 8) * ((p->dim / V + kThreads - 1) / kThreads);
    if (blocks > INT32_MAX) return 0;
    return V;
}

} // namespace

extern "C" ms6_status ms6_cuda_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p) {
    ConvArgs a;
    a.batch = p->batch; a.dim = p->dim; a.L = p->seqlen; a.K = p->d_conv; a.W = p->d_conv - 1;
    a.ws = p->weight_dim_stride ? p->weight_dim_stride : p->d_conv;
    a.x = dev_act(p->x); a.out = dev_act(p->out);
    a.w = p->weight; a.bias = p->bias; a.act = p->activation;
    a.h0 = p->initial_state; a.hT = p->final_state;
    a.sds = p->state_dim_stride ? p->state_dim_stride : a.W;
    a.sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * a.sds;
    a.n_tiles = (p->dim + kThreads - 1) / kThreads;
    a.n_seg = p->seqlen > 0 ? (p->seqlen + kSeg - 1) / kSeg : 1; /* L = 0: one segment that only moves the state */
    if (p->seqlen == 0 && !a.hT) return MS6_STATUS_OK;
    cudaStream_t st = ms6_cuda(be)->stream;
    ms6_status s;
    const char *vec_env = getenv("MS6_CONV_VEC");
    const int V = vec_env && !strcmp(vec_env, "0") ? 0 : vec_width(p);
    if (V) {
        const long long n_vec = p->dim / V;
        const int seg = vec_seg();
        a.n_seg = (p->seqlen + seg - 1) / seg;
        const long long blocks = p->batch * a.n_seg * ((n_vec + kThreads - 1) / kThreads);
        cudaError_t e = p->x.dtype == MS6_DTYPE_F16    ? launch_vec_k<MS6_DTYPE_F16>(a, n_vec, blocks, seg, st)
                        : p->x.dtype == MS6_DTYPE_BF16 ? launch_vec_k<MS6_DTYPE_BF16>(a, n_vec, blocks, seg, st)
                                                       : launch_vec_k<MS6_DTYPE_F32>(a, n_vec, blocks, seg, st);
        s = ms6_cuda_check(be, e, "causal_conv1d_fwd launch");
    } else {
        const long long blocks = a.n_tiles * a.n_seg * p->batch;
        conv_fwd_kernel<<<(unsigned)blocks, kThreads, 0, st>>>(a);
        s = ms6_cuda_check(be, cudaGetLastError(), "causal_conv1d_fwd launch");
    }
    if (s != MS6_STATUS_OK || !a.hT || a.n_seg == 1) return s;
    const long long n = p->batch * p->dim;
    conv_final_kernel<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(a);
    return ms6_cuda_check(be, cudaGetLastError(), "causal_conv1d_fwd final-state launch");
}

extern "C" ms6_status ms6_cuda_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p) {
    ConvUpdArgs a;
    a.batch = p->batch; a.dim = p->dim; a.K = p->d_conv; a.W = p->d_conv - 1;
    a.ws = p->weight_dim_stride ? p->weight_dim_stride : p->d_conv;
    a.n_slots = p->n_state_slots;
    a.x = dev_act(p->x); a.out = dev_act(p->out);
    a.state = p->state;
    a.sds = p->state_dim_stride ? p->state_dim_stride : a.W;
    a.sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * a.sds;
    a.w = p->weight; a.bias = p->bias; a.act = p->activation;
    a.idx = p->state_batch_indices;
    const long long n = p->batch * p->dim;
    const int vec4 = !ms6_env_is("MS6_CONV_UPD_VEC", "0") && a.K == 4 && a.ws == 4 && a.sds == 3 &&
                     a.x.dtype == MS6_DTYPE_F32 && a.out.dtype == MS6_DTYPE_F32 && a.x.ds == 1 && a.out.ds == 1 &&
                     p->dim % 4 == 0 && a.x.bs % 4 == 0 && a.out.bs % 4 == 0 && a.sbs % 4 == 0 &&
                     p->batch <= 65535 && p->dim < (1 << 30) && ms6_aligned16(a.x.ptr) && ms6_aligned16(a.out.ptr) &&
                     ms6_aligned16(a.state) && ms6_aligned16(a.w) && (!a.bias || ms6_aligned16(a.bias));
    if (vec4) {
        const dim3 grid((unsigned)((p->dim / 4 + kThreads - 1) / kThreads), (unsigned)p->batch);
        conv_update_vec4_kernel<<<grid, kThreads, 0, ms6_cuda(be)->stream>>>(a);
    } else {
        conv_update_kernel<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, ms6_cuda(be)->stream>>>(a);
    }
    return ms6_cuda_check(be, cudaGetLastError(), "causal_conv1d_update launch");
}
