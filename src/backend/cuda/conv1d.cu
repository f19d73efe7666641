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
    float sv[kWin];
#pragma unroll
    for (int k = 0; k < kWin; k++) sv[k] = k < W ? s[k] : 0.0f;
    float c = a.bias ? a.bias[d] : 0.0f;
#pragma unroll
    for (int k = 0; k < kWin; k++)
        if (k < W) c = fmaf(w[k], sv[k], c);
    c = fmaf(w[W], xv, c);
#pragma unroll
    for (int k = 0; k < kWin; k++)
        if (k < W) s[k] = k + 1 < W ? sv[k + 1] : xv;
    if (a.act) c = silu_f(c);
    st_any(a.out.ptr, a.out.dtype, oo, c);
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
    const long long blocks = a.n_tiles * a.n_seg * p->batch;
    conv_fwd_kernel<<<(unsigned)blocks, kThreads, 0, st>>>(a);
    ms6_status s = ms6_cuda_check(be, cudaGetLastError(), "causal_conv1d_fwd launch");
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
    conv_update_kernel<<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, ms6_cuda(be)->stream>>>(a);
    return ms6_cuda_check(be, cudaGetLastError(), "causal_conv1d_update launch");
}
