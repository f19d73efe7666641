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
 * (2 * batch*dim*N*4 bytes). Each thread owns V consecutive states (V = 4,
 * or 8 when N > 128) of one (b, d): one 16-byte load and store per four
 * states when the state rows are 16-byte aligned, scalar accesses otherwise.
 * The Q = N/V lanes of a channel are adjacent and reduce the C-sum with
 * shuffles; lane 0 applies D and the gate and writes out. A negative slot is
 * padding: out = 0, no state touched. A slot >= n_state_slots cannot be
 * reported without a host round trip, so the kernel touches no state for it
 * and writes NaN to its outputs (the CPU ops return MS6_STATUS_OUT_OF_RANGE).
 *
 * Checked against the float64 oracle of tests/kernel_harness.c and the CPU
 * reference src/backend/cpu/ref.c (tests/test_cuda_kernels.c).
 */
#include "backend/cuda/cuda_internal.h"

namespace {

constexpr int kThreads = 256;

struct UpdArgs {
    long long batch, dim, N, G, dpg, n_slots;
    float *state;
    long long sbs, sds;
    DevAct x, dt, z, out;
    const float *A;
    long long A_ds, A_ns;
    DevBC B, C;
    const float *D, *bias;
    int softplus, has_z, vec;
    const int *idx;
    int Q, q_shift;
};

template <int V>
__global__ void __launch_bounds__(kThreads) update_kernel(const UpdArgs a) {
    const long long gt = (long long)blockIdx.x * kThreads + threadIdx.x;
    const int q = (int)(gt & (a.Q - 1));
    const long long bd = gt >> a.q_shift;
    const bool active = bd < a.batch * a.dim;
    const long long b = active ? bd / a.dim : 0, d = active ? bd - b * a.dim : 0;
    long long slot = b;
    if (active && a.idx) slot = a.idx[b];
    const bool pad = slot < 0, bad = slot >= a.n_slots;
    const bool run = active && !pad && !bad;

    float y = 0.0f, xv = 0.0f, gate = 1.0f;
    if (run) {
        xv = ld_any(a.x.ptr, a.x.dtype, b * a.x.bs + d * a.x.ds);
        float dt = ld_any(a.dt.ptr, a.dt.dtype, b * a.dt.bs + d * a.dt.ds);
        if (a.bias) dt += a.bias[d];
        if (a.softplus) dt = softplus_f(dt);
        const float dtx = dt * xv;
        const long long g = d / a.dpg;
        float *hp = a.state + slot * a.sbs + d * a.sds;
        const int n0 = q * V;
        float h[V];
        if (a.vec) {
#pragma unroll
            for (int v = 0; v < V; v += 4) {
                const float4 h4 = *reinterpret_cast<const float4 *>(hp + n0 + v);
                h[v] = h4.x; h[v + 1] = h4.y; h[v + 2] = h4.z; h[v + 3] = h4.w;
            }
        } else {
#pragma unroll
            for (int v = 0; v < V; v++) h[v] = n0 + v < a.N ? hp[n0 + v] : 0.0f;
        }
#pragma unroll
        for (int v = 0; v < V; v++) {
            const int n = n0 + v;
            if (n < a.N) {
                const float A2 = a.A[d * a.A_ds + n * a.A_ns] * kLog2e;
                const float bv = a.B.var ? ld_any(a.B.ptr, a.B.dtype, b * a.B.bs + g * a.B.gs + n * a.B.ns)
                                         : ld_any(a.B.ptr, a.B.dtype, d * a.B.ds + n * a.B.ns);
                const float cv = a.C.var ? ld_any(a.C.ptr, a.C.dtype, b * a.C.bs + g * a.C.gs + n * a.C.ns)
                                         : ld_any(a.C.ptr, a.C.dtype, d * a.C.ds + n * a.C.ns);
                h[v] = fmaf(fast_ex2(dt * A2), h[v], dtx * bv);
                y = fmaf(cv, h[v], y);
            }
        }
        if (a.vec) {
#pragma unroll
            for (int v = 0; v < V; v += 4)
                *reinterpret_cast<float4 *>(hp + n0 + v) = make_float4(h[v], h[v + 1], h[v + 2], h[v + 3]);
        } else {
#pragma unroll
            for (int v = 0; v < V; v++)
                if (n0 + v < a.N) hp[n0 + v] = h[v];
        }
        if (q == 0) {
            if (a.D) y = fmaf(a.D[d], xv, y);
            if (a.has_z) gate = silu_f(ld_any(a.z.ptr, a.z.dtype, b * a.z.bs + d * a.z.ds));
        }
    }
    /* every lane takes part in the shuffles, active or not */
    for (int o = a.Q >> 1; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
    if (active && q == 0) {
        const float outv = pad ? 0.0f : (bad ? __int_as_float(0x7fffffff) : y * gate);
        st_any(a.out.ptr, a.out.dtype, b * a.out.bs + d * a.out.ds, outv);
    }
}

int pow2ceil(long long x) {
    int p = 1;
    while (p < x) p <<= 1;
    return p;
}
int ilog2(int x) {
    int s = 0;
    while ((1 << s) < x) s++;
    return s;
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
    const int V = N > 128 ? 8 : 4;
    a.Q = pow2ceil((N + V - 1) / V);
    a.q_shift = ilog2(a.Q);
    /* 16-byte state accesses need aligned rows and whole quads */
    a.vec = ((uintptr_t)p->state % 16 == 0) && a.sds % 4 == 0 && a.sbs % 4 == 0 && N % 4 == 0 &&
            (long long)a.Q * V == N;
    const long long threads = p->batch * p->dim * a.Q;
    const long long blocks = (threads + kThreads - 1) / kThreads;
    cudaStream_t st = ms6_cuda(be)->stream;
    if (V == 8) update_kernel<8><<<(unsigned)blocks, kThreads, 0, st>>>(a);
    else update_kernel<4><<<(unsigned)blocks, kThreads, 0, st>>>(a);
    return ms6_cuda_check(be, cudaGetLastError(), "selective_state_update launch");
}
