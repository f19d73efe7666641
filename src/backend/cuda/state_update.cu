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
 * MS6_UPDATE_CPT=0 the general kernel.
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
    if ((N == 8 || N == 16 || N == 32 || N == 64) && a.vec_state && a.vec_a && a.sds == N &&
        (cpt == 1 || cpt == 2 || cpt == 4)) {
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
