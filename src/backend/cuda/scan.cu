/*
 * scan.cu - selective scan forward (ms6_selective_scan_fwd) on CUDA.
 *
 * What it computes: for every (batch b, channel d) the Mamba-1 recurrence
 * h[n] = exp(dt*A[d,n]) h[n] + dt B_t[n] u_t, y_t = sum_n C_t[n] h[n]
 * (+ D u_t, times silu(z_t)), with softplus/delta_bias on dt, constant or
 * variable/grouped B and C, optional initial state in and final state out,
 * any element strides, f32/f16/bf16 I/O and fp32 state and arithmetic.
 *
 * Parallel decomposition, three kernels:
 *
 * lanes (N <= 16, the default; u/delta/z/out of one dtype): P = 2 or 4
 * adjacent lanes own one channel with 16/P states each; the step loop runs
 * in groups of P steps, lane k doing the per-element work of step k of the
 * group (softplus, dt*u, D*u, silu(z)), dt and dt*u broadcast by shuffles,
 * and a reduce-scatter butterfly leaving lane k with y of step k, which it
 * gates and stores. The activation dtype is a template parameter, so the
 * step loop has no dtype branches; B/C tiles are staged per block in shared
 * memory (one vector load per thread when B/C are plain (batch, L, 16)
 * rows). Fewer instructions per decay than the direct kernel (13 against
 * 15 thread-instructions at the benchmark's (8,5120,2048), ncu) and no
 * redundant per-element work.
 *
 * direct (N <= 16, MS6_SCAN_DIRECT=1, kept for comparison): one thread per
 * (batch, channel) keeps its 16 states in registers and runs the recurrence sequentially; a warp is
 * 32 consecutive channels, so in the token-major layout each step of u,
 * delta, z is one coalesced row read and out one coalesced row write. Rows
 * are brought in ahead of use: for 2-byte, 16-byte-aligned token-major
 * activations by cp.async into a 3-stage shared-memory ring two tiles ahead;
 * otherwise through a 4-step register pipeline. softplus(delta + bias) and
 * silu(z) are computed once per element by the channel's thread, outside
 * the state loop. The block (128 channels) stages each tile of B_t/C_t rows
 * (fp32, the groups it spans) in shared memory once; lanes read them as
 * float4 broadcasts.
 *
 * tiled (any N up to 256): each channel is owned by P adjacent lanes with S
 * states each (S*P >= N; S = 4/8/16 is a template parameter), the C-sum is a
 * shuffle butterfly over the P lanes. Tiles of TL steps of u/delta/z are
 * loaded coalesced into registers one tile ahead, then written to shared
 * memory with the per-element work done once (dt, dt*u, D*u, silu(z)).
 *
 * All three: decays are ex2.approx on A pre-scaled by log2(e), one MUFU op per
 * (step, state). When batch*dim channels cannot fill the GPU, L is split into
 * K chunks and two launches run: pass A scans chunk 0 from the true initial
 * state (full outputs) and chunks 1..K-2 from a zero state (state only, plus
 * the sum of dt over the chunk); pass B scans chunks 1..K-1 in full, each
 * first folding the chunk states before it: h_in = exp(A * sum dt) h_prev +
 * h_local (the product of the decays over a chunk is one exp per state;
 * fold_chunk_states, shared by the three kernels). Work grows by (K-2)/K, parallelism by K-1. Scratch is stream-ordered
 * (cudaMallocAsync) and bounded by K <= 64 chunks, so any L (1M tokens and
 * more) runs in bounded memory. All element offsets are int64.
 *
 * Development variables (read per call; docs/kernel-notes.md, dev/cuda/
 * sweep.sh, dev/cuda/tune.sh): MS6_SCAN_DIRECT (0 = tiled, 1 = direct;
 * unset = lanes), MS6_SCAN_V6 (0 = the lanes kernel's v5 step loop instead
 * of v6 for the calls v6 takes, see scan_v6_kernel), MS6_SCAN_POLY (0:
 * every decay on the MUFU; 1..4: the v6 kernel with part of its decays by
 * a polynomial exp2 on the FMA pipe, poly_exp2.h and v6_launch_for; unset:
 * 4), MS6_SCAN_P
 * (lanes per channel, 2 or 4), MS6_SCAN_BC_VEC
 * (0 = generic B/C staging in the lanes kernel), MS6_SCAN_ASYNC (direct:
 * 0 = register pipeline),
 * MS6_SCAN_S (tiled states per lane), MS6_SCAN_CHUNKS (force K),
 * MS6_SCAN_WANT_THREADS_PER_SM, MS6_SCAN_SPLIT_BELOW_PER_SM,
 * MS6_SCAN_MIN_CHUNK, MS6_SCAN_MAX_TL, MS6_SCAN_VERBOSE.
 *
 * Checked against the float64 oracle of tests/kernel_harness.c and the CPU
 * reference src/backend/cpu/ref.c (tests/test_cuda_kernels.c).
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/poly_exp2.h"

#include <stdio.h>
#include <stdlib.h>

#include <type_traits>

namespace {

constexpr int kThreads = 128;
constexpr int kMaxChunks = 64;

struct ScanArgs {
    long long batch, dim, L, N, G, dpg;
    DevAct u, delta, z, out;
    const float *A;
    long long A_ds, A_ns;
    DevBC B, C;
    const float *D, *bias;
    int softplus, has_z;
    const float *h0;
    float *hT;
    long long sbs, sds;
    /* decomposition */
    int P, p_shift, CB, cb_shift, TL, tl_shift, gpb, Npad;
    int tokmaj;
    int async;  /* direct variant: cp.async row tiles */
    int bc_vec; /* lanes variant: B/C tiles by one 16-byte (f32) or 8-byte load per thread */
    long long n_tiles, chunk_len;
    int K, pass; /* pass 0: whole L; 1: pass A; 2: pass B */
    float *ch_h; /* (K, batch, dim, Npad) */
    float *ch_s; /* (K, batch, dim) */
};

/* Raw element bits: 32-bit for f32, 16-bit for f16/bf16 (both branches are
 * predicated loads, so a batch of them is in flight at once). */
__device__ __forceinline__ unsigned ld_raw(const void *p, int dt, long long i) {
    return dt == MS6_DTYPE_F32 ? ((const unsigned *)p)[i] : (unsigned)((const unsigned short *)p)[i];
}
__device__ __forceinline__ float cvt_raw(unsigned r, int dt) {
    if (dt == MS6_DTYPE_F32) return __uint_as_float(r);
    if (dt == MS6_DTYPE_BF16) return __uint_as_float(r << 16);
    return __half2float(__ushort_as_half((unsigned short)r));
}

constexpr int kEA = 8; /* activation elements per thread per tile: TL*CB <= kEA*kThreads */
constexpr int kEB = 4; /* B or C elements per thread per tile held in registers */

/* Element i of a B/C tile: step j, group gg, state n; dst = its smem slot. */
__device__ __forceinline__ void bc_coords(int i, bool seq_fast, const ScanArgs &a, int &j, int &gg, int &n) {
    /* Npad and TL are powers of two: shifts, not divisions (this runs for
     * every staged B/C element); one group per block needs no division */
    const int np_shift = __ffs(a.Npad) - 1;
    if (seq_fast) { /* channel-major B: (batch, G, N, L) */
        j = i & (a.TL - 1);
        const int r = i >> a.tl_shift;
        n = r & (a.Npad - 1);
        gg = r >> np_shift;
    } else {
        n = i & (a.Npad - 1);
        const int r = i >> np_shift;
        if (a.gpb == 1) {
            gg = 0;
            j = r;
        } else {
            gg = r % a.gpb;
            j = r / a.gpb;
        }
    }
}

/* Whether element (step t0 + j, group g_lo + gg, state n) exists, and its offset. */
__device__ __forceinline__ void bc_offset(const DevBC &bc, const ScanArgs &a, long long b, long long g_lo, long long t0,
                                          long long t_end, int j, int gg, int n, bool &valid, long long &off) {
    const long long t = t0 + j, g = g_lo + gg;
    valid = t < t_end && g < a.G && n < a.N;
    off = b * bc.bs + g * bc.gs + n * bc.ns + t * bc.ts;
}

/* Issues the loads of the first kEB*kThreads elements of a B/C tile. */
__device__ __forceinline__ void bc_prefetch(unsigned (&r)[kEB], const DevBC &bc, const ScanArgs &a, long long b,
                                            long long g_lo, long long t0, long long t_end) {
    const int nel = a.TL * a.gpb * a.Npad;
    const bool seq_fast = bc.ts < bc.ns;
#pragma unroll
    for (int e = 0; e < kEB; e++) {
        const int i = threadIdx.x + e * kThreads;
        r[e] = 0;
        if (i < nel) {
            int j, gg, n;
            bc_coords(i, seq_fast, a, j, gg, n);
            bool valid;
            long long off;
            bc_offset(bc, a, b, g_lo, t0, t_end, j, gg, n, valid, off);
            if (valid) r[e] = ld_raw(bc.ptr, bc.dtype, off);
        }
    }
}

/* Writes a B/C tile to smem: dst[(j*gpb + gg)*Npad + n], zero outside
 * [t0, t_end), G and N; elements past the prefetched ones load here. */
__device__ __forceinline__ void bc_commit(float *dst, const unsigned (&r)[kEB], const DevBC &bc, const ScanArgs &a,
                                          long long b, long long g_lo, long long t0, long long t_end) {
    const int nel = a.TL * a.gpb * a.Npad;
    const bool seq_fast = bc.ts < bc.ns;
#pragma unroll
    for (int e = 0; e < kEB; e++) {
        const int i = threadIdx.x + e * kThreads;
        if (i < nel) {
            int j, gg, n;
            bc_coords(i, seq_fast, a, j, gg, n);
            dst[(j * a.gpb + gg) * a.Npad + n] = cvt_raw(r[e], bc.dtype);
        }
    }
#pragma unroll 1
    for (int i = threadIdx.x + kEB * kThreads; i < nel; i += kThreads) {
        int j, gg, n;
        bc_coords(i, seq_fast, a, j, gg, n);
        bool valid;
        long long off;
        bc_offset(bc, a, b, g_lo, t0, t_end, j, gg, n, valid, off);
        dst[(j * a.gpb + gg) * a.Npad + n] = valid ? ld_any(bc.ptr, bc.dtype, off) : 0.0f;
    }
}

template <int S, bool WITH_Y>
__device__ __forceinline__ float scan_step(float (&h)[S], const float (&A2)[S], float dt, float dtu,
                                           const float *Brow, const float *Crow) {
    float bv[S], cv[S];
#pragma unroll
    for (int s = 0; s < S; s += 4) {
        const float4 b4 = *reinterpret_cast<const float4 *>(Brow + s);
        bv[s] = b4.x; bv[s + 1] = b4.y; bv[s + 2] = b4.z; bv[s + 3] = b4.w;
        if (WITH_Y) {
            const float4 c4 = *reinterpret_cast<const float4 *>(Crow + s);
            cv[s] = c4.x; cv[s + 1] = c4.y; cv[s + 2] = c4.z; cv[s + 3] = c4.w;
        }
    }
    float y0 = 0.0f, y1 = 0.0f; /* two chains halve the FFMA latency of the C-reduction */
#pragma unroll
    for (int s = 0; s < S; s++) {
        /* exp(dt*A) = 2^(dt * A*log2(e)); A2 holds A*log2(e) */
        const float dA = fast_ex2(dt * A2[s]);
        h[s] = fmaf(dA, h[s], dtu * bv[s]);
        if (WITH_Y) {
            if (s & 1) y1 = fmaf(cv[s], h[s], y1);
            else y0 = fmaf(cv[s], h[s], y0);
        }
    }
    return y0 + y1;
}

/* A thread's share of an activation tile: element e is step j0 + e*jstep of
 * channel cc0 (token-major) or step j0 of channel cc0 + e*ccstep
 * (channel-major); offsets advance by a per-tensor element step. */
struct TileMap {
    int j0, cc0, jstep, ccstep;
};

/* The end of a thread's chunk (lane p owns states p*S .. p*S+S-1): in
 * pass 1 (chunk states) the state and the chunk's sum of dt into ch_h /
 * ch_s, else the final state into hT when this is the last chunk (or the
 * only pass). One definition for the direct, lanes and v6 kernels. */
template <int S>
__device__ __forceinline__ void store_end_state(const ScanArgs &a, const float (&h)[S], float sumdt, long long b,
                                                long long d, int p, int kc) {
    if (a.pass == 1) {
        /* chunk 0: the exact state at its end; others: the local state */
        const long long row = ((long long)kc * a.batch + b) * a.dim + d;
#pragma unroll
        for (int s = 0; s < S; s++) a.ch_h[row * a.Npad + p * S + s] = h[s];
        if (p == 0) a.ch_s[row] = sumdt;
        return;
    }
    if (a.hT && (a.pass == 0 || kc == a.K - 1)) {
#pragma unroll
        for (int s = 0; s < S; s++) {
            const int n = p * S + s;
            if (n < a.N) a.hT[b * a.sbs + d * a.sds + n] = h[s];
        }
    }
}

/* Pass B: the state entering chunk kc, folded from the chunk states of
 * pass A: chunk 0's is exact, chunks 1..kc-1 started from zero and carry
 * exp(A * sum dt), so h = exp(A2 * sdt_k) h + h_k over k. One definition for
 * every kernel (lane p owns states p*S .. p*S+S-1 of the Npad-float rows);
 * the loads of four chunks are issued before their folds. */
template <int S>
__device__ __forceinline__ void fold_chunk_states(const ScanArgs &a, float (&h)[S], const float (&A2)[S], long long b,
                                                  long long d, int p, int kc) {
    const int Npad = a.Npad;
    const long long row0 = b * a.dim + d, kstride = a.batch * a.dim;
#pragma unroll
    for (int s = 0; s < S; s++) h[s] = a.ch_h[row0 * Npad + p * S + s];
    constexpr int kF = S > 8 ? 2 : 4;
    int k = 1;
    for (; k + kF <= kc; k += kF) {
        float sdt[kF], hk[kF][S];
#pragma unroll
        for (int i = 0; i < kF; i++) {
            const long long row = (long long)(k + i) * kstride + row0;
            sdt[i] = a.ch_s[row];
#pragma unroll
            for (int s = 0; s < S; s++) hk[i][s] = a.ch_h[row * Npad + p * S + s];
        }
#pragma unroll
        for (int i = 0; i < kF; i++)
#pragma unroll
            for (int s = 0; s < S; s++) h[s] = fmaf(fast_ex2(A2[s] * sdt[i]), h[s], hk[i][s]);
    }
    for (; k < kc; k++) {
        const long long row = (long long)k * kstride + row0;
        const float sdt = a.ch_s[row];
#pragma unroll
        for (int s = 0; s < S; s++) h[s] = fmaf(fast_ex2(A2[s] * sdt), h[s], a.ch_h[row * Npad + p * S + s]);
    }
}

/* The state a thread starts its chunk with, lane p owning states p*S ..
 * p*S+S-1 of channel d: A2 = A * log2(e); h = the folded chunk states
 * (pass 2), the initial state (first chunk), or zero. One definition for
 * every kernel. */
template <int S>
__device__ __forceinline__ void chunk_start_state(const ScanArgs &a, float (&A2)[S], float (&h)[S], long long b,
                                                  long long d, int p, int kc, bool dval) {
#pragma unroll
    for (int s = 0; s < S; s++) {
        const int n = p * S + s;
        A2[s] = (dval && n < a.N) ? a.A[d * a.A_ds + n * a.A_ns] * kLog2e : 0.0f;
        h[s] = 0.0f;
    }
    if (a.pass == 2) {
        if (dval) fold_chunk_states<S>(a, h, A2, b, d, p, kc);
    } else if (kc == 0 && a.h0 && dval) {
#pragma unroll
        for (int s = 0; s < S; s++) {
            const int n = p * S + s;
            if (n < a.N) h[s] = a.h0[b * a.sbs + d * a.sds + n];
        }
    }
}

/* Constant (per-channel) B and C rows of the block's CB channels into
 * shared memory, Npad floats each (a power of 2), padded by 4 floats so
 * the float4 reads of a warp's channels fall in distinct banks. */
__device__ __forceinline__ void stage_const_bc(const ScanArgs &a, float *s_B, float *s_C, long long d0, int CB,
                                               int Npad) {
    if (a.B.var && a.C.var) return;
    for (int i = threadIdx.x; i < CB * Npad; i += kThreads) {
        const int cc = (int)((unsigned)i / (unsigned)Npad), n = i & (Npad - 1);
        const long long dd = d0 + cc;
        const bool v = dd < a.dim && n < a.N;
        if (!a.B.var) s_B[cc * (Npad + 4) + n] = v ? ld_any(a.B.ptr, a.B.dtype, dd * a.B.ds + n * a.B.ns) : 0.0f;
        if (!a.C.var) s_C[cc * (Npad + 4) + n] = v ? ld_any(a.C.ptr, a.C.dtype, dd * a.C.ds + n * a.C.ns) : 0.0f;
    }
}

template <int S>
__global__ void __launch_bounds__(kThreads, 3) scan_kernel(const ScanArgs a) {
    extern __shared__ __align__(16) float sm[];
    const int P = a.P, CB = a.CB, TL = a.TL, Npad = a.Npad, ld = CB + 1;
    float *s_dt = sm, *s_dtu = sm + TL * ld, *s_du = sm + 2 * TL * ld, *s_g = sm + 3 * TL * ld;
    float *s_B = sm + 4 * TL * ld;
    const int bsz = a.B.var ? TL * a.gpb * Npad : CB * (Npad + 4);
    float *s_C = s_B + bsz;
    const int csz = a.C.var ? TL * a.gpb * Npad : CB * (Npad + 4);
    float *s_bias = s_C + csz, *s_D = s_bias + CB;

    long long id = blockIdx.x;
    const long long tile = id % a.n_tiles;
    id /= a.n_tiles;
    const long long b = id % a.batch;
    const int kc = (int)(id / a.batch) + (a.pass == 2 ? 1 : 0);
    const long long d0 = tile * CB;
    const int tid = threadIdx.x, c = tid >> a.p_shift, p = tid & (P - 1);
    const long long d = d0 + c;
    const bool dval = d < a.dim;
    const long long g_lo = d0 / a.dpg;
    const int gl = dval ? (int)(d / a.dpg - g_lo) : 0;
    const bool local = a.pass == 1 && kc > 0; /* state-only chunk */

    for (int i = tid; i < CB; i += kThreads) {
        const long long dd = d0 + i;
        const bool v = dd < a.dim;
        s_bias[i] = (v && a.bias) ? a.bias[dd] : 0.0f;
        s_D[i] = (v && a.D) ? a.D[dd] : 0.0f;
    }
    /* constant B/C: one row of N per channel */
    stage_const_bc(a, s_B, s_C, d0, CB, Npad);

    float A2[S], h[S];
    chunk_start_state<S>(a, A2, h, b, d, p, kc, dval);

    const long long t_begin = (long long)kc * a.chunk_len;
    const long long t_end = t_begin + a.chunk_len < a.L ? t_begin + a.chunk_len : a.L;
    const float *Bbase = a.B.var ? s_B + gl * Npad + p * S : s_B + c * (Npad + 4) + p * S;
    const float *Cbase = a.C.var ? s_C + gl * Npad + p * S : s_C + c * (Npad + 4) + p * S;
    const int Bstep = a.B.var ? a.gpb * Npad : 0, Cstep = a.C.var ? a.gpb * Npad : 0;
    const bool want_c = a.C.var && !local;

    /* this thread's share of each activation tile */
    TileMap m;
    if (a.tokmaj) { m.cc0 = tid & (CB - 1); m.j0 = tid >> a.cb_shift; m.jstep = kThreads / CB; m.ccstep = 0; }
    else { m.j0 = tid & (TL - 1); m.cc0 = tid >> a.tl_shift; m.ccstep = kThreads / TL; m.jstep = 0; }
    const long long dm = d0 + m.cc0;
    /* element offsets: base(t0) + e * step, per tensor */
    const long long st_u = m.jstep * a.u.ts + m.ccstep * a.u.ds;
    const long long st_dl = m.jstep * a.delta.ts + m.ccstep * a.delta.ds;
    const long long st_z = m.jstep * a.z.ts + m.ccstep * a.z.ds;
    const long long st_o = m.jstep * a.out.ts + m.ccstep * a.out.ds;

    unsigned ru[kEA], rdl[kEA], rz[kEA], rb[kEB], rc[kEB];
    float sumdt = 0.0f;

    /* issue the loads of the tile starting at t0 (in flight until commit) */
    auto prefetch = [&](long long t0) {
        const long long bu = b * a.u.bs + dm * a.u.ds + (t0 + m.j0) * a.u.ts;
        const long long bdl = b * a.delta.bs + dm * a.delta.ds + (t0 + m.j0) * a.delta.ts;
        const long long bz = b * a.z.bs + dm * a.z.ds + (t0 + m.j0) * a.z.ts;
#pragma unroll
        for (int e = 0; e < kEA; e++) {
            const int j = m.j0 + e * m.jstep, cc = m.cc0 + e * m.ccstep;
            const bool v = j < TL && cc < CB && t0 + j < t_end && d0 + cc < a.dim;
            ru[e] = v ? ld_raw(a.u.ptr, a.u.dtype, bu + e * st_u) : 0u;
            rdl[e] = v ? ld_raw(a.delta.ptr, a.delta.dtype, bdl + e * st_dl) : 0u;
            rz[e] = (v && a.has_z && !local) ? ld_raw(a.z.ptr, a.z.dtype, bz + e * st_z) : 0u;
        }
        if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t0, t_end);
        if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t0, t_end);
    };

    if (t_begin < t_end) prefetch(t_begin);
    for (long long t0 = t_begin; t0 < t_end; t0 += TL) {
        __syncthreads(); /* the previous tile's smem has been consumed */
        /* commit: per-element work once per element, not per state */
#pragma unroll
        for (int e = 0; e < kEA; e++) {
            const int j = m.j0 + e * m.jstep, cc = m.cc0 + e * m.ccstep;
            if (j < TL && cc < CB) {
                const bool v = t0 + j < t_end && d0 + cc < a.dim;
                float dt = 0.0f, dtu = 0.0f, du = 0.0f, g = 1.0f;
                if (v) {
                    const float uu = cvt_raw(ru[e], a.u.dtype);
                    dt = cvt_raw(rdl[e], a.delta.dtype) + s_bias[cc];
                    if (a.softplus) dt = softplus_f(dt);
                    dtu = dt * uu;
                    du = s_D[cc] * uu;
                    if (a.has_z) g = silu_f(cvt_raw(rz[e], a.z.dtype));
                }
                const int ei = j * ld + cc;
                s_dt[ei] = dt;
                s_dtu[ei] = dtu;
                if (!local) {
                    s_du[ei] = du;
                    s_g[ei] = g;
                }
            }
        }
        if (a.B.var) bc_commit(s_B, rb, a.B, a, b, g_lo, t0, t_end);
        if (want_c) bc_commit(s_C, rc, a.C, a, b, g_lo, t0, t_end);
        __syncthreads();
        /* the next tile's loads fly while this one is computed */
        if (t0 + TL < t_end) prefetch(t0 + TL);

        if (!local) {
            for (int j = 0; j < TL; j++) {
                const int e = j * ld + c;
                float y = scan_step<S, true>(h, A2, s_dt[e], s_dtu[e], Bbase + j * Bstep, Cbase + j * Cstep);
                for (int o = P >> 1; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
                if (p == 0) s_du[e] = (y + s_du[e]) * s_g[e];
            }
            __syncthreads();
            const long long bo = b * a.out.bs + dm * a.out.ds + (t0 + m.j0) * a.out.ts;
#pragma unroll
            for (int e = 0; e < kEA; e++) {
                const int j = m.j0 + e * m.jstep, cc = m.cc0 + e * m.ccstep;
                if (j < TL && cc < CB && t0 + j < t_end && d0 + cc < a.dim)
                    st_any(a.out.ptr, a.out.dtype, bo + e * st_o, s_du[j * ld + cc]);
            }
        } else {
            for (int j = 0; j < TL; j++) {
                const int e = j * ld + c;
                const float dt = s_dt[e];
                sumdt += dt;
                scan_step<S, false>(h, A2, dt, s_dtu[e], Bbase + j * Bstep, Cbase);
            }
        }
    }

    if (!dval) return;
    store_end_state<S>(a, h, sumdt, b, d, p, kc);
}

/* ---- direct variant: one thread per channel (N <= 16), activations read
 * straight from global memory with a kR-step register pipeline, per-element
 * work (softplus, gate) done by the channel's own thread, outputs written
 * straight back; only B/C tiles go through shared memory. No activation
 * staging, so few registers and syncs per step. ---- */
constexpr int kR = 4; /* steps of u/delta/z in flight per thread */

template <bool WITH_Y>
__device__ __forceinline__ void direct_tiles(const ScanArgs &a, float (&h)[16], const float (&A2)[16], long long b,
                                             long long d, bool dval, long long g_lo, long long t_begin,
                                             long long t_end, float *s_B, float *s_C, const float *Bbase,
                                             const float *Cbase, int Bstep, int Cstep, float bias, float Dd,
                                             float &sumdt) {
    const int TL = a.TL;
    const long long ou = b * a.u.bs + d * a.u.ds, odl = b * a.delta.bs + d * a.delta.ds;
    const long long oz = b * a.z.bs + d * a.z.ds, oo = b * a.out.bs + d * a.out.ds;
    const bool want_z = WITH_Y && a.has_z;
    const bool want_c = WITH_Y && a.C.var;
    unsigned ru[kR], rdl[kR], rz[kR], rb[kEB], rc[kEB];
#pragma unroll
    for (int k = 0; k < kR; k++) {
        const long long t = t_begin + k;
        const bool v = dval && t < t_end;
        ru[k] = v ? ld_raw(a.u.ptr, a.u.dtype, ou + t * a.u.ts) : 0u;
        rdl[k] = v ? ld_raw(a.delta.ptr, a.delta.dtype, odl + t * a.delta.ts) : 0u;
        rz[k] = (v && want_z) ? ld_raw(a.z.ptr, a.z.dtype, oz + t * a.z.ts) : 0u;
    }
    if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t_begin, t_end);
    if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t_begin, t_end);
    for (long long t0 = t_begin; t0 < t_end; t0 += TL) {
        __syncthreads();
        if (a.B.var) bc_commit(s_B, rb, a.B, a, b, g_lo, t0, t_end);
        if (want_c) bc_commit(s_C, rc, a.C, a, b, g_lo, t0, t_end);
        __syncthreads();
        if (t0 + TL < t_end) {
            if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t0 + TL, t_end);
            if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t0 + TL, t_end);
        }
        for (int jj = 0; jj < TL; jj += kR) {
#pragma unroll
            for (int k = 0; k < kR; k++) {
                const int j = jj + k;
                const long long t = t0 + j;
                const bool v = dval && t < t_end;
                float dt = 0.0f, dtu = 0.0f, uu = 0.0f, g = 1.0f;
                if (v) {
                    uu = cvt_raw(ru[k], a.u.dtype);
                    dt = cvt_raw(rdl[k], a.delta.dtype) + bias;
                    if (a.softplus) dt = softplus_f(dt);
                    dtu = dt * uu;
                    if (want_z) g = silu_f(cvt_raw(rz[k], a.z.dtype));
                }
                /* refill this slot with the step kR ahead */
                const long long tn = t + kR;
                const bool vn = dval && tn < t_end;
                ru[k] = vn ? ld_raw(a.u.ptr, a.u.dtype, ou + tn * a.u.ts) : 0u;
                rdl[k] = vn ? ld_raw(a.delta.ptr, a.delta.dtype, odl + tn * a.delta.ts) : 0u;
                if (want_z) rz[k] = vn ? ld_raw(a.z.ptr, a.z.dtype, oz + tn * a.z.ts) : 0u;
                const float y = scan_step<16, WITH_Y>(h, A2, dt, dtu, Bbase + j * Bstep, Cbase + j * Cstep);
                if (WITH_Y) {
                    if (v) st_any(a.out.ptr, a.out.dtype, oo + t * a.out.ts, fmaf(Dd, uu, y) * g);
                } else {
                    sumdt += dt;
                }
            }
        }
    }
}

/* Async variant of direct_tiles for 2-byte u/delta/z with 16-byte aligned
 * token-major rows: the block copies tiles of rows into a 3-stage shared
 * memory ring with cp.async (16-byte chunks, zero-filled past L and dim),
 * two tiles ahead of the one being computed, so tens of kilobytes per SM
 * are in flight without holding registers. */
constexpr int kStages = 3;

__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }

/* stage layout: [tensor u, delta, z][TL rows][kThreads halves] */
__device__ __forceinline__ void issue_stage(const ScanArgs &a, unsigned short *stage, long long b, long long d0,
                                            long long t0, long long t_end, int ntensors) {
    const int TL = a.TL, cpr = kThreads * 2 / 16; /* 16-byte chunks per row */
    const int total = ntensors * TL * cpr;
    for (int q = threadIdx.x; q < total; q += kThreads) {
        const int tensor = q / (TL * cpr), r = q - tensor * TL * cpr;
        const int j = r / cpr, c16 = r - j * cpr;
        const DevAct &x = tensor == 0 ? a.u : (tensor == 1 ? a.delta : a.z);
        const long long t = t0 + j, ch0 = d0 + c16 * 8;
        long long vb = (a.dim - ch0) * 2;
        vb = vb < 0 ? 0 : (vb > 16 ? 16 : vb);
        if (t >= t_end) vb = 0;
        const unsigned short *src = (const unsigned short *)x.ptr + (vb ? b * x.bs + t * x.ts + ch0 : 0);
        cp_async16(stage + (tensor * TL + j) * kThreads + c16 * 8, src, (int)vb);
    }
    cp_async_commit();
}

template <bool WITH_Y>
__device__ __forceinline__ void direct_tiles_async(const ScanArgs &a, float (&h)[16], const float (&A2)[16],
                                                   long long b, long long d0, long long d, bool dval, long long g_lo,
                                                   long long t_begin, long long t_end, float *s_B, float *s_C,
                                                   unsigned short *ring, const float *Bbase, const float *Cbase,
                                                   int Bstep, int Cstep, float bias, float Dd, float &sumdt) {
    const int TL = a.TL, tid = threadIdx.x;
    const int ntensors = (WITH_Y && a.has_z) ? 3 : 2;
    const int stage_elems = 3 * TL * kThreads;
    const long long oo = b * a.out.bs + d * a.out.ds;
    const bool want_c = WITH_Y && a.C.var;
    unsigned rb[kEB], rc[kEB];
    /* prologue: tiles 0 and 1 in flight */
    issue_stage(a, ring, b, d0, t_begin, t_end, ntensors);
    if (t_begin + TL < t_end) issue_stage(a, ring + stage_elems, b, d0, t_begin + TL, t_end, ntensors);
    else cp_async_commit();
    if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t_begin, t_end);
    if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t_begin, t_end);
    int it = 0;
    for (long long t0 = t_begin; t0 < t_end; t0 += TL, it++) {
        cp_async_wait1(); /* this tile's group has landed (one younger may fly) */
        __syncthreads();
        if (a.B.var) bc_commit(s_B, rb, a.B, a, b, g_lo, t0, t_end);
        if (want_c) bc_commit(s_C, rc, a.C, a, b, g_lo, t0, t_end);
        __syncthreads();
        /* tile it+2 goes into the stage tile it-1 used (consumed before the barrier) */
        if (t0 + 2 * TL < t_end) issue_stage(a, ring + ((it + 2) % kStages) * stage_elems, b, d0, t0 + 2 * TL, t_end, ntensors);
        else cp_async_commit();
        if (t0 + TL < t_end) {
            if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t0 + TL, t_end);
            if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t0 + TL, t_end);
        }
        const unsigned short *st = ring + (it % kStages) * stage_elems;
        for (int j = 0; j < TL; j++) {
            const long long t = t0 + j;
            const bool v = dval && t < t_end;
            float dt = 0.0f, dtu = 0.0f, uu = 0.0f, g = 1.0f;
            if (v) {
                uu = cvt_raw(st[j * kThreads + tid], a.u.dtype);
                dt = cvt_raw(st[(TL + j) * kThreads + tid], a.delta.dtype) + bias;
                if (a.softplus) dt = softplus_f(dt);
                dtu = dt * uu;
                if (WITH_Y && a.has_z) g = silu_f(cvt_raw(st[(2 * TL + j) * kThreads + tid], a.z.dtype));
            }
            const float y = scan_step<16, WITH_Y>(h, A2, dt, dtu, Bbase + j * Bstep, Cbase + j * Cstep);
            if (WITH_Y) {
                if (v) st_any(a.out.ptr, a.out.dtype, oo + t * a.out.ts, fmaf(Dd, uu, y) * g);
            } else {
                sumdt += dt;
            }
        }
    }
    asm volatile("cp.async.wait_all;\n" ::);
}

__global__ void __launch_bounds__(kThreads, 3) scan_direct_kernel(const ScanArgs a) {
    extern __shared__ __align__(16) float sm[];
    const int TL = a.TL, Npad = 16, CB = kThreads;
    float *s_B = sm;
    const int bsz = a.B.var ? TL * a.gpb * Npad : CB * (Npad + 4);
    float *s_C = s_B + bsz;
    const int csz = a.C.var ? TL * a.gpb * Npad : CB * (Npad + 4);
    unsigned short *ring = (unsigned short *)(s_C + csz); /* async: kStages x 3 x TL x CB halves */

    long long id = blockIdx.x;
    const long long tile = id % a.n_tiles;
    id /= a.n_tiles;
    const long long b = id % a.batch;
    const int kc = (int)(id / a.batch) + (a.pass == 2 ? 1 : 0);
    const long long d0 = tile * CB;
    const int tid = threadIdx.x;
    const long long d = d0 + tid;
    const bool dval = d < a.dim;
    const long long g_lo = d0 / a.dpg;
    const int gl = dval ? (int)(d / a.dpg - g_lo) : 0;
    const bool local = a.pass == 1 && kc > 0;

    stage_const_bc(a, s_B, s_C, d0, CB, Npad);
    float A2[16], h[16];
    chunk_start_state<16>(a, A2, h, b, d, 0, kc, dval);
    const float bias = (dval && a.bias) ? a.bias[d] : 0.0f, Dd = (dval && a.D) ? a.D[d] : 0.0f;
    const long long t_begin = (long long)kc * a.chunk_len;
    const long long t_end = t_begin + a.chunk_len < a.L ? t_begin + a.chunk_len : a.L;
    const float *Bbase = a.B.var ? s_B + gl * Npad : s_B + tid * (Npad + 4);
    const float *Cbase = a.C.var ? s_C + gl * Npad : s_C + tid * (Npad + 4);
    const int Bstep = a.B.var ? a.gpb * Npad : 0, Cstep = a.C.var ? a.gpb * Npad : 0;
    float sumdt = 0.0f;
    if (a.async) {
        if (local)
            direct_tiles_async<false>(a, h, A2, b, d0, d, dval, g_lo, t_begin, t_end, s_B, s_C, ring, Bbase, Cbase,
                                      Bstep, Cstep, bias, Dd, sumdt);
        else
            direct_tiles_async<true>(a, h, A2, b, d0, d, dval, g_lo, t_begin, t_end, s_B, s_C, ring, Bbase, Cbase,
                                     Bstep, Cstep, bias, Dd, sumdt);
    } else if (local) {
        direct_tiles<false>(a, h, A2, b, d, dval, g_lo, t_begin, t_end, s_B, s_C, Bbase, Cbase, Bstep, Cstep, bias,
                            Dd, sumdt);
    } else {
        direct_tiles<true>(a, h, A2, b, d, dval, g_lo, t_begin, t_end, s_B, s_C, Bbase, Cbase, Bstep, Cstep, bias,
                           Dd, sumdt);
    }

    if (!dval) return;
    if (a.pass == 1) {
        const long long row = ((long long)kc * a.batch + b) * a.dim + d;
#pragma unroll
        for (int s = 0; s < 16; s++) a.ch_h[row * Npad + s] = h[s];
        a.ch_s[row] = sumdt;
        return;
    }
    if (a.hT && (a.pass == 0 || kc == a.K - 1)) {
#pragma unroll
        for (int s = 0; s < 16; s++)
            if (s < a.N) a.hT[b * a.sbs + d * a.sds + s] = h[s];
    }
}

/* ---- lanes variant (N <= 16, the default): P adjacent lanes own one
 * channel, S = 16/P states each, and the step loop is unrolled by P. In a
 * group of P steps lane k does the per-element work of step t0+k (softplus,
 * dt*u, D*u, silu(z): once per element, spread over the lanes) and the
 * channel's lanes receive dt and dt*u of all P steps by shuffles; each lane
 * runs its S states through the P steps, keeping a partial y per step, and a
 * reduce-scatter butterfly (P-1 shuffles per lane) leaves lane k with the
 * full y of step t0+k, which it gates and stores. The activation type T is
 * a template parameter (u, delta, z and out of one dtype; other mixes go to
 * the tiled kernel), element pointers advance by a per-group step, and
 * steps past the chunk are neutralised by selects (dt = 0), so the step
 * loop has no dtype branches and no per-load offset arithmetic. B/C tiles
 * are staged per block as in the direct variant. ---- */

template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

/* y[k] holds this lane's partial sum for step k of the group; afterwards
 * lane p of the channel holds the full sum for step p. */
template <int P>
__device__ __forceinline__ float reduce_scatter(float (&y)[P], int p) {
#pragma unroll
    for (int w = P / 2; w >= 1; w >>= 1) {
        const bool hi = (p & w) != 0;
#pragma unroll
        for (int i = 0; i < w; i++) {
            const float send = hi ? y[i] : y[i + w];
            const float keep = hi ? y[i + w] : y[i];
            y[i] = keep + __shfl_xor_sync(0xffffffffu, send, w);
        }
    }
    return y[0];
}

/* B/C tiles when B and C vary, one group per block, N = 16 states at unit
 * stride and 4-element aligned rows (bc_vec): thread i loads elements
 * 4i..4i+3 of the TL x 16 tile (TL = 32: one 8- or 16-byte load per thread
 * and tensor), zero past t_end, and stores them as one float4. */
__device__ __forceinline__ void bcv_prefetch(uint4 &r, const DevBC &bc, long long b, long long g, long long t0,
                                             long long t_end) {
    const int j = threadIdx.x >> 2, n0 = (threadIdx.x & 3) * 4;
    const long long t = t0 + j;
    r = make_uint4(0u, 0u, 0u, 0u);
    if (t < t_end) {
        const long long off = b * bc.bs + g * bc.gs + t * bc.ts + n0;
        if (bc.dtype == MS6_DTYPE_F32) {
            r = *reinterpret_cast<const uint4 *>((const float *)bc.ptr + off);
        } else {
            const uint2 v = *reinterpret_cast<const uint2 *>((const unsigned short *)bc.ptr + off);
            r.x = v.x;
            r.y = v.y;
        }
    }
}
__device__ __forceinline__ void bcv_commit(float *dst, const uint4 &r, int dtype) {
    float4 f;
    if (dtype == MS6_DTYPE_F32) {
        f = make_float4(__uint_as_float(r.x), __uint_as_float(r.y), __uint_as_float(r.z), __uint_as_float(r.w));
    } else if (dtype == MS6_DTYPE_BF16) {
        f = make_float4(__uint_as_float(r.x << 16), __uint_as_float(r.x & 0xffff0000u), __uint_as_float(r.y << 16),
                        __uint_as_float(r.y & 0xffff0000u));
    } else {
        const float2 lo = __half22float2(*reinterpret_cast<const __half2 *>(&r.x));
        const float2 hi = __half22float2(*reinterpret_cast<const __half2 *>(&r.y));
        f = make_float4(lo.x, lo.y, hi.x, hi.y);
    }
    *reinterpret_cast<float4 *>(dst + 4 * threadIdx.x) = f;
}

#ifndef MS6_LANE_AHEAD
#define MS6_LANE_AHEAD 8
#endif
constexpr int kLaneAhead = MS6_LANE_AHEAD; /* steps of u/delta/z in flight per channel */

template <int P, typename T, bool WITH_Y>
__device__ __forceinline__ void lanes_tiles(const ScanArgs &a, float (&h)[16 / P], const float (&A2)[16 / P],
                                            long long b, long long dcl, int p, bool dval, long long g_lo,
                                            long long t_begin, long long t_end, float *s_B, float *s_C,
                                            const float *Bbase, const float *Cbase, int Bstep, int Cstep, float bias,
                                            float Dd, float &sumdt) {
    constexpr int S = 16 / P, RG = kLaneAhead / P > 0 ? kLaneAhead / P : 1, AHEAD = RG * P;
    const int TL = a.TL;
    const bool want_z = WITH_Y && a.has_z;
    const bool want_c = WITH_Y && a.C.var;
    /* element pointers of this lane's step; they advance by P steps a group */
    const long long su = a.u.ts * P, sdl = a.delta.ts * P, sz = a.z.ts * P, so = a.out.ts * P;
    const T *pu = (const T *)a.u.ptr + (b * a.u.bs + dcl * a.u.ds + (t_begin + p) * a.u.ts);
    const T *pdl = (const T *)a.delta.ptr + (b * a.delta.bs + dcl * a.delta.ds + (t_begin + p) * a.delta.ts);
    const T *pz = want_z ? (const T *)a.z.ptr + (b * a.z.bs + dcl * a.z.ds + (t_begin + p) * a.z.ts) : pu;
    T *po = WITH_Y ? (T *)a.out.ptr + (b * a.out.bs + dcl * a.out.ds + (t_begin + p) * a.out.ts) : NULL;
    T ru[RG], rdl[RG], rz[RG];
    long long tq = t_begin + p; /* step of the next load */
#pragma unroll
    for (int i = 0; i < RG; i++) {
        ru[i] = rdl[i] = rz[i] = from_f<T>(0.0f);
        if (tq < t_end) {
            ru[i] = *pu;
            rdl[i] = *pdl;
            if (want_z) rz[i] = *pz;
        }
        pu += su; pdl += sdl; pz += want_z ? sz : 0; tq += P;
    }
    unsigned rb[kEB], rc[kEB];
    uint4 vb, vc;
    if (a.bc_vec) {
        bcv_prefetch(vb, a.B, b, g_lo, t_begin, t_end);
        if (want_c) bcv_prefetch(vc, a.C, b, g_lo, t_begin, t_end);
    } else {
        if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t_begin, t_end);
        if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t_begin, t_end);
    }
    long long t = t_begin + p; /* this lane's step in the current group */
    for (long long t0 = t_begin; t0 < t_end; t0 += TL) {
        __syncthreads();
        if (a.bc_vec) {
            bcv_commit(s_B, vb, a.B.dtype);
            if (want_c) bcv_commit(s_C, vc, a.C.dtype);
        } else {
            if (a.B.var) bc_commit(s_B, rb, a.B, a, b, g_lo, t0, t_end);
            if (want_c) bc_commit(s_C, rc, a.C, a, b, g_lo, t0, t_end);
        }
        __syncthreads();
        if (t0 + TL < t_end) {
            if (a.bc_vec) {
                bcv_prefetch(vb, a.B, b, g_lo, t0 + TL, t_end);
                if (want_c) bcv_prefetch(vc, a.C, b, g_lo, t0 + TL, t_end);
            } else {
                if (a.B.var) bc_prefetch(rb, a.B, a, b, g_lo, t0 + TL, t_end);
                if (want_c) bc_prefetch(rc, a.C, a, b, g_lo, t0 + TL, t_end);
            }
        }
#pragma unroll 1
        for (int jj = 0; jj < TL; jj += AHEAD) {
#pragma unroll
            for (int gi = 0; gi < RG; gi++) {
                const int j0 = jj + gi * P;
                const bool v = t < t_end;
                const float uu = to_f(ru[gi]);
                float dt = to_f(rdl[gi]) + bias;
                if (a.softplus) dt = softplus_f(dt);
                dt = v ? dt : 0.0f;
                const float dtu = v ? dt * uu : 0.0f;
                float g = 1.0f;
                if (want_z) g = silu_f(to_f(rz[gi]));
                /* refill this slot with the step AHEAD steps on */
                if (tq < t_end) {
                    ru[gi] = *pu;
                    rdl[gi] = *pdl;
                    if (want_z) rz[gi] = *pz;
                }
                pu += su; pdl += sdl; pz += want_z ? sz : 0; tq += P;
                if (!WITH_Y) sumdt += dt;
                float y[P];
#pragma unroll
                for (int k = 0; k < P; k++) {
                    const float dtk = __shfl_sync(0xffffffffu, dt, k, P);
                    const float dtuk = __shfl_sync(0xffffffffu, dtu, k, P);
                    const float *Br = Bbase + (j0 + k) * Bstep, *Cr = Cbase + (j0 + k) * Cstep;
                    float bv[S], cv[S];
#pragma unroll
                    for (int s = 0; s < S; s += 4) {
                        const float4 b4 = *reinterpret_cast<const float4 *>(Br + s);
                        bv[s] = b4.x; bv[s + 1] = b4.y; bv[s + 2] = b4.z; bv[s + 3] = b4.w;
                        if (WITH_Y) {
                            const float4 c4 = *reinterpret_cast<const float4 *>(Cr + s);
                            cv[s] = c4.x; cv[s + 1] = c4.y; cv[s + 2] = c4.z; cv[s + 3] = c4.w;
                        }
                    }
                    float yk = 0.0f;
#pragma unroll
                    for (int s = 0; s < S; s++) {
                        h[s] = fmaf(fast_ex2(dtk * A2[s]), h[s], dtuk * bv[s]);
                        if (WITH_Y) yk = fmaf(cv[s], h[s], yk);
                    }
                    y[k] = yk;
                }
                if (WITH_Y) {
                    const float yy = reduce_scatter<P>(y, p);
                    if (v && dval) *po = from_f<T>((yy + Dd * uu) * g);
                    po += so;
                }
                t += P;
            }
        }
    }
}

/* at least MS6_LANES_MIN_BLOCKS blocks of 128 per SM (register cap: 6 ->
 * 80 registers); MS6_LANES_MIN_BLOCKS_P2 for P = 2 (build variants for
 * dev/cuda/sweep.sh: P = 2 spills at 80 registers, not at 128) */
#ifndef MS6_LANES_MIN_BLOCKS
#define MS6_LANES_MIN_BLOCKS 6
#endif
#ifndef MS6_LANES_MIN_BLOCKS_P2
#define MS6_LANES_MIN_BLOCKS_P2 MS6_LANES_MIN_BLOCKS
#endif
template <int P, typename T>
__global__ void __launch_bounds__(kThreads, P == 2 ? MS6_LANES_MIN_BLOCKS_P2 : MS6_LANES_MIN_BLOCKS)
    scan_lanes_kernel(const ScanArgs a) {
    constexpr int S = 16 / P, CB = kThreads / P, Npad = 16;
    extern __shared__ __align__(16) float sm[];
    const int TL = a.TL;
    float *s_B = sm;
    const int bsz = a.B.var ? TL * a.gpb * Npad : CB * (Npad + 4);
    float *s_C = s_B + bsz;

    long long id = blockIdx.x;
    const long long tile = id % a.n_tiles;
    id /= a.n_tiles;
    const long long b = id % a.batch;
    const int kc = (int)(id / a.batch) + (a.pass == 2 ? 1 : 0);
    const long long d0 = tile * CB;
    const int tid = threadIdx.x, c = tid / P, p = tid & (P - 1);
    const long long d = d0 + c;
    const bool dval = d < a.dim;
    const long long g_lo = d0 / a.dpg;
    const int gl = dval ? (int)(d / a.dpg - g_lo) : 0;
    const bool local = a.pass == 1 && kc > 0;

    stage_const_bc(a, s_B, s_C, d0, CB, Npad);
    float A2[S], h[S];
    chunk_start_state<S>(a, A2, h, b, d, p, kc, dval);
    const float bias = (dval && a.bias) ? a.bias[d] : 0.0f, Dd = (dval && a.D) ? a.D[d] : 0.0f;
    const long long t_begin = (long long)kc * a.chunk_len;
    const long long t_end = t_begin + a.chunk_len < a.L ? t_begin + a.chunk_len : a.L;
    const float *Bbase = (a.B.var ? s_B + gl * Npad : s_B + c * (Npad + 4)) + p * S;
    const float *Cbase = (a.C.var ? s_C + gl * Npad : s_C + c * (Npad + 4)) + p * S;
    const int Bstep = a.B.var ? a.gpb * Npad : 0, Cstep = a.C.var ? a.gpb * Npad : 0;
    const long long dcl = dval ? d : 0; /* lanes past dim read channel 0 and store nothing */
    float sumdt = 0.0f;
    if (local)
        lanes_tiles<P, T, false>(a, h, A2, b, dcl, p, dval, g_lo, t_begin, t_end, s_B, s_C, Bbase, Cbase, Bstep, Cstep,
                                 bias, Dd, sumdt);
    else
        lanes_tiles<P, T, true>(a, h, A2, b, dcl, p, dval, g_lo, t_begin, t_end, s_B, s_C, Bbase, Cbase, Bstep, Cstep,
                                bias, Dd, sumdt);

    /* pass 1: every lane summed the dt of its own steps */
    if (a.pass == 1)
#pragma unroll
        for (int o = P / 2; o > 0; o >>= 1) sumdt += __shfl_xor_sync(0xffffffffu, sumdt, o);
    if (!dval) return;
    store_end_state<S>(a, h, sumdt, b, d, p, kc);
}

/* ---- lanes v6 (the default where it applies; MS6_SCAN_V6=0: v5): the lanes kernel's
 * decomposition of the state (P lanes per channel, S = 16/P states each)
 * with the per-element work and the y reduction moved off shuffles, for
 * fewer instructions per decay (SASS, sm_90, f16, N = 16, the step loop:
 * 8.5 per decay with P = 2 against 10.5, 9.7 with P = 4 against 11.8; no
 * shuffles; docs/kernel-notes.md v6). Per warp (32/P channels) the steps
 * run in groups of G = 8, each in three kinds of work:
 *   element: lane (q, j) = (lane >> 3, lane & 7) does the per-element work
 *     of step j of the group for E = G/P adjacent channels (one E-element
 *     vector load of u and delta per group: token-major rows), and stores
 *     (dt, dt*u) of each to the warp's s_dt[channel][step];
 *   state: lane (channel, p) reads the group's 8 (dt, dt*u) pairs with four
 *     16-byte loads, runs its S states through the 8 steps (B/C rows from
 *     the block's tile, 16-byte loads at immediate offsets) and stores its
 *     8 partial y to s_y[step][p][channel];
 *   output: lane (q, j) sums the P partials of its E outputs (P loads of E
 *     floats), adds D*u, gates with silu(z), and stores one E-element
 *     vector.
 * One __syncwarp per group: s_dt and s_y are double-buffered, and the
 * output of group i-1 runs after the __syncwarp of group i, next to the
 * state work of group i (v6_tiles). B/C tiles come by cp.async one tile
 * ahead (or synchronously at the tile when not vector-shaped), so no
 * registers are held across the loop (128-register cap, no spills).
 * The subset it takes: B and C both variable, u/delta/z/out of one dtype
 * with unit channel stride, E-aligned rows and dim % E == 0 (v6_ok); the
 * host hands everything else to the lanes kernel. ---- */
constexpr int kV6G = 8; /* steps per group */
template <int P> struct V6Shape {
    static constexpr int S = 16 / P, E = kV6G / P, WC = 32 / P;
    /* s_dt row stride per channel (floats): a multiple of 4 (16-byte rows
     * for the state lanes) with E*RS = 16 mod 32, so the element lanes'
     * 8-byte stores of a half-warp fall in distinct banks */
    static constexpr int RS = P == 2 ? 20 : 24;
    /* s_y row stride per step: 32 floats (P x WC partials) + 4, so the
     * output lanes' loads of 8 steps fall in distinct banks */
    static constexpr int YS = 36;
    static constexpr int DT_FLOATS = WC * RS, Y_FLOATS = kV6G * YS;
    static constexpr int WARP_FLOATS = 2 * (DT_FLOATS + Y_FLOATS); /* both double-buffered */
};

template <int W> __device__ __forceinline__ void v6_ld(unsigned (&r)[W], const void *p);
template <> __device__ __forceinline__ void v6_ld<2>(unsigned (&r)[2], const void *p) {
    const uint2 v = *reinterpret_cast<const uint2 *>(p);
    r[0] = v.x; r[1] = v.y;
}
template <> __device__ __forceinline__ void v6_ld<4>(unsigned (&r)[4], const void *p) {
    const uint4 v = *reinterpret_cast<const uint4 *>(p);
    r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
}
template <int W> __device__ __forceinline__ void v6_st(void *p, const unsigned (&r)[W]);
template <> __device__ __forceinline__ void v6_st<1>(void *p, const unsigned (&r)[1]) {
    *reinterpret_cast<unsigned *>(p) = r[0];
}
template <> __device__ __forceinline__ void v6_st<2>(void *p, const unsigned (&r)[2]) {
    *reinterpret_cast<uint2 *>(p) = make_uint2(r[0], r[1]);
}
template <> __device__ __forceinline__ void v6_st<4>(void *p, const unsigned (&r)[4]) {
    *reinterpret_cast<uint4 *>(p) = make_uint4(r[0], r[1], r[2], r[3]);
}
/* E elements of type T packed in W = E*sizeof(T)/4 words, to and from fp32 */
template <typename T, int E, int W>
__device__ __forceinline__ void v6_unpack(const unsigned (&r)[W], float (&f)[E]) {
#pragma unroll
    for (int w = 0; w < W; w++) {
        if constexpr (sizeof(T) == 4) {
            f[w] = __uint_as_float(r[w]);
        } else if constexpr (std::is_same<T, __half>::value) {
            __half2 h2;
            memcpy(&h2, &r[w], 4);
            const float2 t = __half22float2(h2);
            f[2 * w] = t.x; f[2 * w + 1] = t.y;
        } else {
            f[2 * w] = __uint_as_float(r[w] << 16);
            f[2 * w + 1] = __uint_as_float(r[w] & 0xffff0000u);
        }
    }
}
template <typename T, int E, int W>
__device__ __forceinline__ void v6_pack(const float (&f)[E], unsigned (&r)[W]) {
#pragma unroll
    for (int w = 0; w < W; w++) {
        if constexpr (sizeof(T) == 4) {
            r[w] = __float_as_uint(f[w]);
        } else if constexpr (std::is_same<T, __half>::value) {
            const __half2 h2 = __floats2half2_rn(f[2 * w], f[2 * w + 1]);
            memcpy(&r[w], &h2, 4);
        } else {
            const __nv_bfloat162 h2 = __floats2bfloat162_rn(f[2 * w], f[2 * w + 1]);
            memcpy(&r[w], &h2, 4);
        }
    }
}

/* B/C tiles, with no registers held across the step loop (the v6 loop
 * runs at the 128-register cap):
 * - vector tiles (bc_vec: one group per block, N = 16 at unit stride,
 *   aligned rows, TL = 32): thread i copies elements 4i..4i+3 of the
 *   TL x 16 tile, raw, into its slot of a staging area by cp.async (zero
 *   past t_end), issued one tile ahead; at the tile it converts its own
 *   slot to fp32 (cp.async.wait_all covers its own copies, so no barrier
 *   is needed before that);
 * - otherwise loaded synchronously at the tile, dst[(gg*TL + j)*16 + n]:
 *   the step stride is 16 whatever the groups per block (bc_commit's
 *   layout is (j*gpb + gg)*16 + n, the same when gpb == 1). */
__device__ __forceinline__ void v6_bcv_issue(unsigned char *raw, const DevBC &bc, long long b, long long g,
                                             long long t0, long long t_end) {
    const int j = threadIdx.x >> 2, n0 = (threadIdx.x & 3) * 4;
    const long long t = t0 + j;
    const bool v = t < t_end;
    if (bc.dtype == MS6_DTYPE_F32) {
        const float *src = (const float *)bc.ptr + (v ? b * bc.bs + g * bc.gs + t * bc.ts + n0 : 0);
        cp_async16(raw + threadIdx.x * 16, src, v ? 16 : 0);
    } else {
        const unsigned short *src = (const unsigned short *)bc.ptr + (v ? b * bc.bs + g * bc.gs + t * bc.ts + n0 : 0);
        const unsigned dst = (unsigned)__cvta_generic_to_shared(raw + threadIdx.x * 8);
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(v ? 8 : 0));
    }
}
__device__ __forceinline__ void v6_bcv_convert(float *dst, const unsigned char *raw, int dtype) {
    uint4 r;
    if (dtype == MS6_DTYPE_F32) {
        r = *reinterpret_cast<const uint4 *>(raw + threadIdx.x * 16);
    } else {
        const uint2 v = *reinterpret_cast<const uint2 *>(raw + threadIdx.x * 8);
        r = make_uint4(v.x, v.y, 0u, 0u);
    }
    bcv_commit(dst, r, dtype);
}
/* tiles of TLM x 32 steps (TLM 2: 64-step tiles, scan_lanes), a thread
 * the elements 4i .. 4i+3 of each 32-step part (the raw slots and the fp32
 * tile one part after another; TLM 1 compiles to the calls above alone) */
template <int TLM>
__device__ __forceinline__ void v6_bcv_issue_t(unsigned char *raw, const DevBC &bc, long long b, long long g,
                                               long long t0, long long t_end) {
    const int es = bc.dtype == MS6_DTYPE_F32 ? 16 : 8;
#pragma unroll
    for (int k = 0; k < TLM; k++) v6_bcv_issue(raw + k * kThreads * es, bc, b, g, t0 + 32 * k, t_end);
}
template <int TLM>
__device__ __forceinline__ void v6_bcv_convert_t(float *dst, const unsigned char *raw, int dtype) {
    const int es = dtype == MS6_DTYPE_F32 ? 16 : 8;
#pragma unroll
    for (int k = 0; k < TLM; k++) v6_bcv_convert(dst + 4 * k * kThreads, raw + k * kThreads * es, dtype);
}
__device__ __forceinline__ void v6_bc_load(float *dst, const DevBC &bc, const ScanArgs &a, long long b,
                                           long long g_lo, long long t0, long long t_end) {
    const int nel = a.TL * a.gpb * 16;
    const bool seq_fast = bc.ts < bc.ns;
#pragma unroll 1
    for (int i = threadIdx.x; i < nel; i += kThreads) {
        int j, gg, n;
        bc_coords(i, seq_fast, a, j, gg, n);
        bool valid;
        long long off;
        bc_offset(bc, a, b, g_lo, t0, t_end, j, gg, n, valid, off);
        dst[(gg * a.TL + j) * 16 + n] = valid ? ld_any(bc.ptr, bc.dtype, off) : 0.0f;
    }
}

/* predicated vector load (r keeps its value when pred is false): one
 * @P LDG, no branch */
template <int W> __device__ __forceinline__ void v6_ldp(unsigned (&r)[W], const void *p, bool pred);
template <> __device__ __forceinline__ void v6_ldp<1>(unsigned (&r)[1], const void *p, bool pred) {
    asm("{\n .reg .pred q;\n setp.ne.b32 q, %1, 0;\n @q ld.global.u32 %0, [%2];\n}"
        : "+r"(r[0]) : "r"((int)pred), "l"(p));
}
template <> __device__ __forceinline__ void v6_ldp<2>(unsigned (&r)[2], const void *p, bool pred) {
    asm("{\n .reg .pred q;\n setp.ne.b32 q, %2, 0;\n @q ld.global.v2.u32 {%0, %1}, [%3];\n}"
        : "+r"(r[0]), "+r"(r[1]) : "r"((int)pred), "l"(p));
}
template <> __device__ __forceinline__ void v6_ldp<4>(unsigned (&r)[4], const void *p, bool pred) {
    asm("{\n .reg .pred q;\n setp.ne.b32 q, %4, 0;\n @q ld.global.v4.u32 {%0, %1, %2, %3}, [%5];\n}"
        : "+r"(r[0]), "+r"(r[1]), "+r"(r[2]), "+r"(r[3]) : "r"((int)pred), "l"(p));
}

/* Decay (step k of the group, state s of the lane's S): 2^x on the MUFU,
 * or by the polynomial (poly_exp2.h, FMA and integer pipes, 11
 * instructions) for NPOLY of a group's G*S decays per lane, spread evenly
 * (k and s are unrolled-loop constants: the choice costs nothing). NPOLY = 0:
 * every decay on the MUFU (the default kernels). */
template <int S, int NPOLY>
__device__ __forceinline__ float v6_decay(float x, int k, int s) {
    if (NPOLY > 0 && ((k * S + s) * NPOLY) % (kV6G * S) < NPOLY) return ms6_poly_exp2(x);
    return fast_ex2(x);
}

/* The step loop of the v6 kernel over the block's chunk. Groups of G steps;
 * per group i one __syncwarp, with s_dt and s_y double-buffered by the
 * group's parity (two groups per loop iteration):
 *   E(i): element lanes: dt, dt*u of group i -> s_dt[i&1]
 *   __syncwarp
 *   O(i-1): element lanes: y of group i-1 from s_y[(i-1)&1], D*u, gate,
 *           store; S(i): state lanes: s_dt[i&1] -> states -> s_y[i&1]
 * (s_dt[i&1] was last read by S(i-2), s_y[i&1] by O(i-2), both before the
 * __syncwarp of group i-1). Loads, two register slots each: delta and u
 * of group i+2 are issued in E(i); u (again: the first copy's slot is
 * refilled before O(i)) and z of group i+1 in O(i-1). */
template <int P, typename T, bool WITH_Y, int NPOLY, int TLM = 1>
__device__ __forceinline__ void v6_tiles(const ScanArgs &a, float (&h)[16 / P], const float (&A2)[16 / P], long long b,
                                         int p, int cw, int q, int jl, bool eval, long long de, long long g_lo,
                                         long long t_begin, long long t_end, float *s_B, float *s_C, float *s_x,
                                         unsigned char *raw_b, const float *Bbase, const float *Cbase, const float (&bias_e)[kV6G / P],
                                         const float (&D_e)[kV6G / P], float &sumdt) {
    using Sh = V6Shape<P>;
    constexpr int S = Sh::S, E = Sh::E, WC = Sh::WC, RS = Sh::RS, YS = Sh::YS, G = kV6G;
    constexpr int W = E * (int)sizeof(T) / 4, DTF = Sh::DT_FLOATS, YF = Sh::Y_FLOATS;
    const int TL = a.TL;
    const bool want_z = WITH_Y && a.has_z;
    const bool softplus = a.softplus != 0;
    /* byte pointers of this lane's step jl of a group; + one group's bytes
     * (the host checks that these fit in 32 bits) */
    const int gu = (int)(a.u.ts * G * (long long)sizeof(T)), gdl = (int)(a.delta.ts * G * (long long)sizeof(T));
    const int gz = want_z ? (int)(a.z.ts * G * (long long)sizeof(T)) : 0;
    const int go = WITH_Y ? (int)(a.out.ts * G * (long long)sizeof(T)) : 0;
    const char *pu = (const char *)((const T *)a.u.ptr + (b * a.u.bs + de + (t_begin + jl) * a.u.ts));
    const char *pdl = (const char *)((const T *)a.delta.ptr + (b * a.delta.bs + de + (t_begin + jl) * a.delta.ts));
    const char *pz = want_z ? (const char *)((const T *)a.z.ptr + (b * a.z.bs + de + (t_begin + jl) * a.z.ts)) : pu;
    const char *puo = pu; /* u for the outputs */
    /* the output pointer trails one group: O(i-1) runs in group i */
    char *po = WITH_Y ? (char *)((T *)a.out.ptr + (b * a.out.bs + de + (t_begin + jl) * a.out.ts)) - go : NULL;
    /* steps from the start of the next group to load (u/z, delta) / of the
     * current group to the chunk's end: warp-uniform (chunks are below
     * 2^30 steps: host check); lane jl's step is valid while jl < it */
    const int len = (int)(t_end - t_begin);
    int ruz = len, rdl_ = len, rv = len, rv_prev = 0; /* ruz: u (outputs) and z; rdl_: delta and u */
    const int jl_st = eval ? jl : (1 << 30); /* stores: lanes past dim never */
    unsigned ru[2][W], rdl[2][W], ruo[2][W], rz[2][W];
#pragma unroll
    for (int s = 0; s < 2; s++)
#pragma unroll
        for (int w = 0; w < W; w++) ru[s][w] = rdl[s][w] = ruo[s][w] = rz[s][w] = 0u;
    /* prologue: delta and u of groups 0 and 1, u and z (outputs) of group
     * 0 (O(-1), run in the first group, loads group 1's) */
#pragma unroll
    for (int s = 0; s < 2; s++) {
        v6_ldp<W>(rdl[s], pdl, jl < rdl_);
        v6_ldp<W>(ru[s], pu, jl < rdl_);
        pdl += gdl; pu += gu; rdl_ -= G;
    }
    if (WITH_Y) {
        v6_ldp<W>(ruo[0], puo, jl < ruz);
        if (want_z) v6_ldp<W>(rz[0], pz, jl < ruz);
        puo += gu; pz += gz; ruz -= G;
    }
    /* vector B/C tiles: raw staging of B and C (TL*16 elements of up to 4
     * bytes each) after the warps' exchange buffers */
    unsigned char *const raw_c = raw_b + TL * 16 * 4;
    if (a.bc_vec) {
        v6_bcv_issue_t<TLM>(raw_b, a.B, b, g_lo, t_begin, t_end);
        if (WITH_Y) v6_bcv_issue_t<TLM>(raw_c, a.C, b, g_lo, t_begin, t_end);
        cp_async_commit();
    }
    float *const dt_st = s_x + q * E * RS + 2 * jl;   /* element lane's (dt, dt*u) slots */
    const float *const dt_ld = s_x + cw * RS;         /* state lane's row */
    float *const y_st = s_x + 2 * DTF + p * WC + cw;  /* state lane's partials */
    const float *const y_ld = s_x + 2 * DTF + jl * YS + q * E; /* output lane's partials */

    /* O(i-1): y of the previous group (buffer pb) to out; refills u/z slot
     * pb with the group after the current one */
    auto output_prev = [&](int pb) {
        float ys[E];
        {
            unsigned yw[E];
            v6_ld<E>(yw, y_ld + pb * YF);
#pragma unroll
            for (int e = 0; e < E; e++) ys[e] = __uint_as_float(yw[e]);
        }
#pragma unroll
        for (int pp = 1; pp < P; pp++) {
            unsigned yw[E];
            v6_ld<E>(yw, y_ld + pb * YF + pp * WC);
#pragma unroll
            for (int e = 0; e < E; e++) ys[e] += __uint_as_float(yw[e]);
        }
        float uu[E], zf[E], o[E];
        v6_unpack<T, E, W>(ruo[pb], uu);
        if (want_z) {
            v6_unpack<T, E, W>(rz[pb], zf);
#pragma unroll
            for (int e = 0; e < E; e++) o[e] = fmaf(D_e[e], uu[e], ys[e]) * silu_f(zf[e]);
        } else {
#pragma unroll
            for (int e = 0; e < E; e++) o[e] = fmaf(D_e[e], uu[e], ys[e]);
        }
        unsigned ow[W];
        v6_pack<T, E, W>(o, ow);
        if (jl_st < rv_prev) v6_st<W>(po, ow);
        po += go;
        v6_ldp<W>(ruo[pb], puo, jl < ruz);
        if (want_z) v6_ldp<W>(rz[pb], pz, jl < ruz);
        puo += gu; pz += gz; ruz -= G;
    };

    for (long long t0 = t_begin; t0 < t_end; t0 += TL) {
        if (a.bc_vec) cp_async_wait_all(); /* this thread's copies of the tile */
        __syncthreads(); /* the previous tile's B/C have been read */
        if (a.bc_vec) {
            v6_bcv_convert_t<TLM>(s_B, raw_b, a.B.dtype);
            if (WITH_Y) v6_bcv_convert_t<TLM>(s_C, raw_c, a.C.dtype);
        } else {
            v6_bc_load(s_B, a.B, a, b, g_lo, t0, t_end);
            if (WITH_Y) v6_bc_load(s_C, a.C, a, b, g_lo, t0, t_end);
        }
        __syncthreads();
        if (a.bc_vec && t0 + TL < t_end) { /* the next tile into the raw slots just converted */
            v6_bcv_issue_t<TLM>(raw_b, a.B, b, g_lo, t0 + TL, t_end);
            if (WITH_Y) v6_bcv_issue_t<TLM>(raw_c, a.C, b, g_lo, t0 + TL, t_end);
            cp_async_commit();
        }
#pragma unroll 1
        for (int jj = 0; jj < TL; jj += 2 * G) {
            if (rv <= 0) break; /* past the chunk (its last tile; warp-uniform) */
#pragma unroll
            for (int gi = 0; gi < 2; gi++) {
                /* -- E(i): E channels of step jl -- */
                {
                    const bool v = jl < rv;
                    float uu[E], x[E];
                    v6_unpack<T, E, W>(ru[gi], uu);
                    v6_unpack<T, E, W>(rdl[gi], x);
#pragma unroll
                    for (int e = 0; e < E; e++) x[e] += bias_e[e];
                    if (softplus) {
#pragma unroll
                        for (int e = 0; e < E; e++) x[e] = softplus_f(x[e]);
                    }
#pragma unroll
                    for (int e = 0; e < E; e++) {
                        const float dt = v ? x[e] : 0.0f, dtu = v ? x[e] * uu[e] : 0.0f;
                        *reinterpret_cast<float2 *>(dt_st + gi * DTF + e * RS) = make_float2(dt, dtu);
                    }
                    /* refill: delta and u of group i+2 */
                    v6_ldp<W>(rdl[gi], pdl, jl < rdl_);
                    v6_ldp<W>(ru[gi], pu, jl < rdl_);
                    pdl += gdl; pu += gu; rdl_ -= G;
                }
                __syncwarp();
                if (WITH_Y) {
                    output_prev(gi ^ 1);
                    /* O(i-1) before S(i): interleaving them raises the
                     * register peak past 128 (spills) */
                    asm volatile("" ::: "memory");
                }
                /* -- S(i): S states of channel cw through G steps -- */
                float dd[2 * G];
#pragma unroll
                for (int k = 0; k < 2 * G; k += 4) {
                    const float4 v4 = *reinterpret_cast<const float4 *>(dt_ld + gi * DTF + k);
                    dd[k] = v4.x; dd[k + 1] = v4.y; dd[k + 2] = v4.z; dd[k + 3] = v4.w;
                }
                const float *Bg = Bbase + (jj + gi * G) * 16, *Cg = Cbase + (jj + gi * G) * 16;
#pragma unroll
                for (int k = 0; k < G; k++) {
                    const float dtk = dd[2 * k], dtuk = dd[2 * k + 1];
                    float bv[S], cv[S];
#pragma unroll
                    for (int s = 0; s < S; s += 4) {
                        const float4 b4 = *reinterpret_cast<const float4 *>(Bg + k * 16 + s);
                        bv[s] = b4.x; bv[s + 1] = b4.y; bv[s + 2] = b4.z; bv[s + 3] = b4.w;
                        if (WITH_Y) {
                            const float4 c4 = *reinterpret_cast<const float4 *>(Cg + k * 16 + s);
                            cv[s] = c4.x; cv[s + 1] = c4.y; cv[s + 2] = c4.z; cv[s + 3] = c4.w;
                        }
                    }
                    float yk = 0.0f;
#pragma unroll
                    for (int s = 0; s < S; s++) {
                        h[s] = fmaf(v6_decay<S, NPOLY>(dtk * A2[s], k, s), h[s], dtuk * bv[s]);
                        if (WITH_Y) yk = s == 0 ? cv[0] * h[0] : fmaf(cv[s], h[s], yk);
                    }
                    if (WITH_Y) y_st[gi * YF + k * YS] = yk;
                    else sumdt += dtk;
                }
                rv_prev = rv;
                rv -= G;
            }
        }
    }
    if (WITH_Y) {
        __syncwarp();
        output_prev(1); /* the last group ran with gi = 1 */
    }
}

/* register cap (ptxas, sm_87 and sm_90, no spills): P = 2 at 4 blocks of
 * 128 per SM (128 registers), P = 4 at 5 (96 registers; 6 blocks, 80
 * registers, spill) */
#ifndef MS6_V6_MIN_BLOCKS_P2
#define MS6_V6_MIN_BLOCKS_P2 4
#endif
#ifndef MS6_V6_MIN_BLOCKS_P4
#define MS6_V6_MIN_BLOCKS_P4 5
#endif
/* TLM: B/C tiles of TLM x 32 steps (a.TL; 2 where scan_lanes takes 64-step tiles) */
template <int P, typename T, int F1, int F2, int TLM = 1>
__global__ void __launch_bounds__(kThreads, P == 2 ? MS6_V6_MIN_BLOCKS_P2 : MS6_V6_MIN_BLOCKS_P4)
    scan_v6_kernel(const ScanArgs a) {
    using Sh = V6Shape<P>;
    constexpr int S = Sh::S, E = Sh::E, WC = Sh::WC, CB = kThreads / P, Npad = 16;
    /* polynomial decays per lane and group of G steps (of G*S): F1/16 of
     * them in the state-only loop (pass 1, chunks 1..K-2), F2/16 in the
     * full loop (MS6_SCAN_POLY; 0 and 0 by default) */
    static_assert((F1 * kV6G * S) % 16 == 0 && (F2 * kV6G * S) % 16 == 0 && F1 <= 16 && F2 <= 16, "poly fraction");
    constexpr int NP1 = F1 * kV6G * S / 16, NP2 = F2 * kV6G * S / 16;
    extern __shared__ __align__(16) float sm[];
    const int TL = a.TL;
    float *s_B = sm;
    const int bsz = TL * a.gpb * Npad;
    float *s_C = s_B + bsz;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    float *s_x = s_C + bsz + warp * Sh::WARP_FLOATS; /* the warp's s_dt[2], s_y[2] */
    unsigned char *raw_b = (unsigned char *)(s_C + bsz + (kThreads / 32) * Sh::WARP_FLOATS); /* bc_vec staging */

    /* 32-bit block coordinates (the grid has fewer than 2^32 blocks) */
    unsigned id = blockIdx.x;
    const unsigned tile = id % (unsigned)a.n_tiles;
    id /= (unsigned)a.n_tiles;
    const long long b = id % (unsigned)a.batch;
    const int kc = (int)(id / (unsigned)a.batch) + (a.pass == 2 ? 1 : 0);
    const long long d0 = (long long)tile * CB;
    /* state lane: channel c (cw within the warp), states p*S .. p*S+S-1 */
    const int c = tid / P, p = tid & (P - 1), cw = lane / P;
    const long long d = d0 + c;
    const bool dval = d < a.dim;
    const long long g_lo = d0 / a.dpg;
    const int gl = dval ? (int)(d / a.dpg - g_lo) : 0;
    const bool local = a.pass == 1 && kc > 0;
    /* element lane: channels de .. de+E-1 (all or none below dim: dim % E
     * == 0), step jl of each group; lanes past dim read channel 0 */
    const int q = lane >> 3, jl = lane & 7;
    const long long de0 = d0 + warp * WC + q * E;
    const bool eval = de0 < a.dim;
    const long long de = eval ? de0 : 0;
    float bias_e[E], D_e[E];
#pragma unroll
    for (int e = 0; e < E; e++) {
        bias_e[e] = (eval && a.bias) ? a.bias[de + e] : 0.0f;
        D_e[e] = (eval && a.D) ? a.D[de + e] : 0.0f;
    }

    float A2[S], h[S];
    chunk_start_state<S>(a, A2, h, b, d, p, kc, dval);
    const long long t_begin = (long long)kc * a.chunk_len;
    const long long t_end = t_begin + a.chunk_len < a.L ? t_begin + a.chunk_len : a.L;
    const float *Bbase = s_B + gl * TL * Npad + p * S;
    const float *Cbase = s_C + gl * TL * Npad + p * S;
    float sumdt = 0.0f;
    if (local)
        v6_tiles<P, T, false, NP1, TLM>(a, h, A2, b, p, cw, q, jl, eval, de, g_lo, t_begin, t_end, s_B, s_C, s_x, raw_b,
                                   Bbase, Cbase, bias_e, D_e, sumdt);
    else
        v6_tiles<P, T, true, NP2, TLM>(a, h, A2, b, p, cw, q, jl, eval, de, g_lo, t_begin, t_end, s_B, s_C, s_x, raw_b,
                                  Bbase, Cbase, bias_e, D_e, sumdt);

    /* the thread's coordinates again, read afresh (asm volatile: not CSE'd
     * with the first reads), cheaper than keeping them live through the
     * loop: no spill at 128 registers */
    {
        unsigned tid2, id2;
        asm volatile("mov.u32 %0, %%tid.x;" : "=r"(tid2));
        asm volatile("mov.u32 %0, %%ctaid.x;" : "=r"(id2));
        const unsigned tile2 = id2 % (unsigned)a.n_tiles;
        id2 /= (unsigned)a.n_tiles;
        const long long b2 = id2 % (unsigned)a.batch;
        const int kc2 = (int)(id2 / (unsigned)a.batch) + (a.pass == 2 ? 1 : 0);
        const long long d2 = (long long)tile2 * CB + (int)(tid2 / P);
        const int p2 = tid2 & (P - 1);
        if (d2 >= a.dim) return;
        /* pass 1: every state lane summed the dt of every step of its channel */
        store_end_state<S>(a, h, sumdt, b2, d2, p2, kc2);
    }
}

/* L == 0: the final state is the initial state (or zero). */
__global__ void scan_empty_kernel(const float *h0, float *hT, long long batch, long long dim, long long N,
                                  long long sbs, long long sds) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= batch * dim * N) return;
    const long long n = i % N, d = (i / N) % dim, b = i / (N * dim);
    const long long o = b * sbs + d * sds + n;
    hT[o] = h0 ? h0[o] : 0.0f;
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
long long env_ll(const char *name, long long dflt) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    return atoll(s);
}

/* The split of L into chunks (a.K, a.chunk_len) from a variant's wish K0:
 * MS6_SCAN_CHUNKS forces K; otherwise K stays at most L / min_chunk
 * (MS6_SCAN_MIN_CHUNK, default dflt_min), and fewer than 3 chunks become 1
 * (two chunks would run one after the other). At most kMaxChunks; the
 * chunk length is a multiple of the tile TL. */
void set_chunks(ScanArgs &a, long long L, long long K0, long long dflt_min, int TL) {
    long long K = K0;
    const long long force_k = env_ll("MS6_SCAN_CHUNKS", 0);
    if (force_k > 0) K = force_k;
    const long long min_chunk = env_ll("MS6_SCAN_MIN_CHUNK", dflt_min);
    if (force_k <= 0 && K > L / min_chunk) K = L / min_chunk;
    if (K > kMaxChunks) K = kMaxChunks;
    if (K < 3 && force_k <= 0) K = 1;
    if (K < 1) K = 1;
    long long chunk = (L + K - 1) / K;
    chunk = (chunk + TL - 1) / TL * TL;
    a.chunk_len = chunk;
    a.K = (int)((L + chunk - 1) / chunk);
    a.ch_h = NULL; a.ch_s = NULL;
}

template <int S>
cudaError_t launch_scan(const ScanArgs &a, long long blocks, size_t smem, cudaStream_t st) {
    scan_kernel<S><<<(unsigned)blocks, kThreads, smem, st>>>(a);
    return cudaGetLastError();
}

/* Launches a scan kernel over the whole L, or as the two chunk passes. */
ms6_status run_passes(ms6_backend *be, ScanArgs &a, long long blocks1, size_t smem, long long K, int Npad,
                      cudaError_t (*launch)(const ScanArgs &, long long, size_t, cudaStream_t)) {
    cudaStream_t st = ms6_cuda(be)->stream;
    if (K == 1) {
        a.pass = 0;
        return ms6_cuda_check(be, launch(a, blocks1, smem, st), "selective_scan_fwd launch");
    }
    const size_t rows = (size_t)K * a.batch * a.dim;
    void *scratch = NULL;
    cudaError_t e = cudaMallocAsync(&scratch, rows * sizeof(float) * (Npad + 1), st);
    if (e != cudaSuccess) return ms6_cuda_check(be, e, "selective_scan_fwd chunk-state scratch");
    a.ch_h = (float *)scratch;
    a.ch_s = a.ch_h + rows * Npad;
    a.pass = 1;
    e = launch(a, blocks1 * (K - 1), smem, st);
    if (e == cudaSuccess) {
        a.pass = 2;
        e = launch(a, blocks1 * (K - 1), smem, st);
    }
    cudaError_t e2 = cudaFreeAsync(scratch, st);
    if (e == cudaSuccess) e = e2;
    return ms6_cuda_check(be, e, "selective_scan_fwd launch");
}

cudaError_t launch_direct(const ScanArgs &a, long long blocks, size_t smem, cudaStream_t st) {
    scan_direct_kernel<<<(unsigned)blocks, kThreads, smem, st>>>(a);
    return cudaGetLastError();
}

/* The direct variant; MS6_STATUS_UNSUPPORTED (no message) when its shared
 * memory would not fit, so the caller runs the tiled kernel instead. */
ms6_status scan_direct(ms6_backend *be, const ms6_scan_params *p, ScanArgs a, int sms) {
    a.P = 1; a.p_shift = 0; a.CB = kThreads; a.cb_shift = ilog2(kThreads); a.Npad = 16;
    a.n_tiles = (p->dim + kThreads - 1) / kThreads;
    a.gpb = (int)((kThreads - 1) / a.dpg + 2);
    if (a.gpb > a.G) a.gpb = (int)a.G;
    a.tokmaj = 1;
    /* async row tiles: u, delta (and z) 2-byte, token-major (dim stride 1),
     * every row start 16-byte aligned */
    auto rows16 = [](const ms6_act &x) {
        return x.dtype != MS6_DTYPE_F32 && x.dim_stride == 1 && ((uintptr_t)x.ptr % 16) == 0 &&
               (x.seq_stride * 2) % 16 == 0 && (x.batch_stride * 2) % 16 == 0;
    };
    a.async = rows16(p->u) && rows16(p->delta) && (!p->z.ptr || rows16(p->z)) && env_ll("MS6_SCAN_ASYNC", 1) != 0;
    /* B/C tile: TL steps (a multiple of kR), within the kEB prefetch */
    int TL = a.async ? 16 : 32;
    while (TL > kR && (long long)TL * a.gpb * 16 > kEB * kThreads) TL >>= 1;
    a.TL = TL; a.tl_shift = ilog2(TL);
    const size_t bsz = a.B.var ? (size_t)TL * a.gpb * 16 : (size_t)kThreads * 20;
    const size_t csz = a.C.var ? (size_t)TL * a.gpb * 16 : (size_t)kThreads * 20;
    const size_t ring = a.async ? (size_t)kStages * 3 * TL * kThreads * 2 : 0;
    const size_t smem = sizeof(float) * (bsz + csz) + ring;
    /* very many groups per block (one channel per group): the tiled
     * kernel, whose tiles shrink to one step, takes it */
    if (smem > 48 * 1024) return MS6_STATUS_UNSUPPORTED;
    /* split L only when the channels give fewer than 256 threads per SM;
     * then aim for 1024 per SM (the best of the variants measured on the
     * H200 at every benchmark shape, docs/kernel-notes.md) */
    const long long chans = p->batch * p->dim;
    const long long want = (long long)sms * env_ll("MS6_SCAN_WANT_THREADS_PER_SM", 1024);
    long long K = 1;
    if (chans < (long long)sms * env_ll("MS6_SCAN_SPLIT_BELOW_PER_SM", 256)) K = (want + chans - 1) / chans + 1;
    set_chunks(a, p->seqlen, K, 256, TL);
    if (env_ll("MS6_SCAN_VERBOSE", 0))
        fprintf(stderr, "scan(direct%s): batch=%lld dim=%lld L=%lld N=%lld TL=%d K=%d chunk=%lld smem=%zu\n",
                a.async ? ", async" : "", (long long)p->batch, (long long)p->dim, (long long)p->seqlen,
                (long long)p->d_state, TL, a.K, a.chunk_len, smem);
    return run_passes(be, a, a.n_tiles * p->batch, smem, a.K, 16, launch_direct);
}

template <int P, typename T>
cudaError_t launch_lanes(const ScanArgs &a, long long blocks, size_t smem, cudaStream_t st) {
    scan_lanes_kernel<P, T><<<(unsigned)blocks, kThreads, smem, st>>>(a);
    return cudaGetLastError();
}

template <int P, typename T, int F1, int F2, int TLM = 1>
cudaError_t launch_v6(const ScanArgs &a, long long blocks, size_t smem, cudaStream_t st) {
    scan_v6_kernel<P, T, F1, F2, TLM><<<(unsigned)blocks, kThreads, smem, st>>>(a);
    return cudaGetLastError();
}

/* The v6 kernel for MS6_SCAN_POLY = v (docs/kernel-notes.md, "v6 with the
 * polynomial exp2"): the sixteenths of the decays computed by the
 * polynomial instead of the MUFU, (state-only loop of pass 1, full loop):
 * 1: (2, 1), the balanced choice by the SASS counts; 2: (3, 1); 3: (1, 1);
 * 4: (2, 0), the full loop unchanged, the default (1.5-2.4 % faster than
 * (0, 0) on the shapes split over L, the same on the others: bench scan,
 * H200); otherwise (0, 0). Held to 5 blocks per SM (96 registers) the v6
 * kernel measured 1 % slower (docs/kernel-notes.md). */
typedef cudaError_t (*scan_launch_fn)(const ScanArgs &, long long, size_t, cudaStream_t);
/* a kernel's launch and its resident blocks per SM at a shared-memory size */
struct ScanKernel {
    scan_launch_fn launch;
    int (*per_sm)(size_t smem);
};
template <typename F>
int blocks_per_sm(F kern, size_t smem) {
    int n = 0;
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kern, kThreads, smem) == cudaSuccess ? n : 0;
}
template <int P, typename T, int F1, int F2, int TLM = 1>
int per_sm_v6(size_t smem) { return blocks_per_sm(scan_v6_kernel<P, T, F1, F2, TLM>, smem); }
template <int P, typename T>
int per_sm_lanes(size_t smem) { return blocks_per_sm(scan_lanes_kernel<P, T>, smem); }
template <int P, typename T>
ScanKernel v6_launch_for(long long poly, bool tl64) {
    if (tl64) return {launch_v6<P, T, 2, 0, 2>, per_sm_v6<P, T, 2, 0, 2>}; /* poly 4 only (scan_lanes) */
    switch (poly) {
    case 1: return {launch_v6<P, T, 2, 1>, per_sm_v6<P, T, 2, 1>};
    case 2: return {launch_v6<P, T, 3, 1>, per_sm_v6<P, T, 3, 1>};
    case 3: return {launch_v6<P, T, 1, 1>, per_sm_v6<P, T, 1, 1>};
    case 4: return {launch_v6<P, T, 2, 0>, per_sm_v6<P, T, 2, 0>};
    default: return {launch_v6<P, T, 0, 0>, per_sm_v6<P, T, 0, 0>};
    }
}
template <int P>
ScanKernel lanes_kernel_for(int dt, bool v6, long long poly, bool tl64) {
    if (v6) {
        if (dt == MS6_DTYPE_F16) return v6_launch_for<P, __half>(poly, tl64);
        if (dt == MS6_DTYPE_BF16) return v6_launch_for<P, __nv_bfloat16>(poly, tl64);
        return v6_launch_for<P, float>(poly, tl64);
    }
    if (dt == MS6_DTYPE_F16) return {launch_lanes<P, __half>, per_sm_lanes<P, __half>};
    if (dt == MS6_DTYPE_BF16) return {launch_lanes<P, __nv_bfloat16>, per_sm_lanes<P, __nv_bfloat16>};
    return {launch_lanes<P, float>, per_sm_lanes<P, float>};
}

/* Whether the v6 lanes kernel takes this call (see scan_v6_kernel): B and
 * C variable, u/delta/z/out with unit channel stride and rows of E-element
 * vectors (E = 8/P), dim % E == 0, chunks below 2^30 steps, a group's step
 * in bytes (8 x seq_stride x element size) within 32 bits. */
bool v6_ok(const ms6_scan_params *p, const ScanArgs &a, int P) {
    const int E = kV6G / P;
    if (!a.B.var || !a.C.var || p->dim % E != 0 || a.chunk_len >= (1ll << 30)) return false;
    auto rows = [&](const ms6_act &x) {
        const long long es = x.dtype == MS6_DTYPE_F32 ? 4 : 2;
        const long long gstep = x.seq_stride * kV6G * es;
        return x.dim_stride == 1 && x.batch_stride % E == 0 && x.seq_stride % E == 0 &&
               (uintptr_t)x.ptr % (E * es) == 0 && gstep < (1ll << 31) && gstep > -(1ll << 31);
    };
    return rows(p->u) && rows(p->delta) && rows(p->out) && (!p->z.ptr || rows(p->z));
}

/* The lanes variant; MS6_STATUS_UNSUPPORTED (no message) when its shared
 * memory would not fit, so the caller runs the tiled kernel instead. */
ms6_status scan_lanes(ms6_backend *be, const ms6_scan_params *p, ScanArgs a, int sms) {
    /* lanes per channel: 2 (8 states a lane: fewer shuffles and shared
     * loads per decay) except for small problems (under 16M channel-steps),
     * where the 4-lane split's extra threads win (H200 sweep,
     * docs/kernel-notes.md v5; the 2.8b prefill chunk, 1 x 5120 x 2048 =
     * 10.5M, runs 2.8% faster with 4); MS6_SCAN_P = 2 or 4 forces one */
    int P = (int)env_ll("MS6_SCAN_P", p->batch * p->dim * p->seqlen < (16ll << 20) ? 4 : 2);
    if (P != 2) P = 4;
    /* u, delta, z and out of one dtype (the kernel's template parameter) */
    const int dt = p->u.dtype;
    if (p->delta.dtype != dt || p->out.dtype != dt || (p->z.ptr && p->z.dtype != dt)) return MS6_STATUS_UNSUPPORTED;
    a.P = P; a.p_shift = ilog2(P); a.CB = kThreads / P; a.cb_shift = ilog2(a.CB); a.Npad = 16;
    a.n_tiles = (p->dim + a.CB - 1) / a.CB;
    a.gpb = (int)((a.CB - 1) / a.dpg + 2);
    if (a.gpb > a.G) a.gpb = (int)a.G;
    a.tokmaj = 1; a.async = 0;
    /* B/C tile: TL steps (16 or 32, a multiple of the lanes' step ahead), within the kEB
     * register prefetch where possible */
    int TL = 32;
    if ((long long)TL * a.gpb * 16 > kEB * kThreads) TL = 16;
    const long long max_tl = env_ll("MS6_SCAN_MAX_TL", 32);
    while (TL > 16 && TL > max_tl) TL >>= 1;
    a.TL = TL; a.tl_shift = ilog2(TL);
    const size_t bsz = a.B.var ? (size_t)TL * a.gpb * 16 : (size_t)a.CB * 20;
    const size_t csz = a.C.var ? (size_t)TL * a.gpb * 16 : (size_t)a.CB * 20;
    const size_t smem = sizeof(float) * (bsz + csz);
    if (smem > 48 * 1024) return MS6_STATUS_UNSUPPORTED;
    /* vector B/C tiles: both vary, one group per block, N = 16 at unit state
     * stride, rows and pointers 4-element aligned, a 32-step tile (512
     * elements = 4 per thread; the v6 kernel's 64-step tiles below: 8) */
    auto bc4 = [&](const ms6_bc &x) {
        const size_t es = x.dtype == MS6_DTYPE_F32 ? 4 : 2;
        return x.mode == MS6_BC_VARIABLE && x.state_stride == 1 && x.batch_stride % 4 == 0 &&
               x.group_stride % 4 == 0 && x.seq_stride % 4 == 0 && (uintptr_t)x.ptr % (4 * es) == 0;
    };
    a.bc_vec = p->d_state == 16 && a.gpb == 1 && TL == 32 && bc4(p->B) && bc4(p->C) &&
               env_ll("MS6_SCAN_BC_VEC", 1) != 0;
    /* the v6 step loop (fewer instructions per decay) for the calls it
     * takes, unless MS6_SCAN_V6=0 (its chunk-length limit checked again
     * once the chunks are set); B/C tiles, the warps' exchange buffers, raw
     * B/C staging (bc_vec); tl: the tile's steps */
    auto v6_smem = [&](int tl) {
        const size_t b6 = a.B.var ? (size_t)tl * a.gpb * 16 : (size_t)a.CB * 20;
        const size_t c6 = a.C.var ? (size_t)tl * a.gpb * 16 : (size_t)a.CB * 20;
        return sizeof(float) * (b6 + c6) +
               sizeof(float) * (kThreads / 32) * (P == 2 ? V6Shape<2>::WARP_FLOATS : V6Shape<4>::WARP_FLOATS) +
               (a.bc_vec ? 2 * (size_t)tl * 16 * 4 : 0);
    };
    size_t smem6 = v6_smem(TL);
    a.chunk_len = 0;
    bool v6 = !ms6_env_is("MS6_SCAN_V6", "0") && v6_ok(p, a, P) && smem6 <= 48 * 1024;
    /* MS6_SCAN_POLY = 0..4: part of the decays by the polynomial exp2
     * (v6_launch_for), 4 by default */
    const long long poly = env_ll("MS6_SCAN_POLY", 4);
    const ScanKernel kern =
        P == 2 ? lanes_kernel_for<2>(dt, v6, poly, false) : lanes_kernel_for<4>(dt, v6, poly, false);
    /* split L when the lanes give fewer than SPLIT_BELOW (512) threads per
     * SM: into the most chunks whose blocks still fit in one wave (each
     * pass blocks1 x (K - 1) blocks, at most the kernel's resident blocks
     * on every SM), or none where two chunks would already need two; with
     * MS6_SCAN_SPLIT=want (or MS6_SCAN_WANT_THREADS_PER_SM set) the rule
     * before it, K for WANT threads per SM (2048 with 2 lanes, 1024 with
     * 4). Measured (H200, dev/cuda/split_sweep.sh, docs/kernel-notes.md
     * "The split over L"): 8 x 1536 x 2048 0.314 -> 0.261 ms, the 2.8b
     * prefill's 1 x 5120 x 2048 0.163 -> 0.152 */
    const long long threads = p->batch * p->dim * P, blocks1 = a.n_tiles * p->batch;
    long long K = 1;
    if (threads < (long long)sms * env_ll("MS6_SCAN_SPLIT_BELOW_PER_SM", 512)) {
        const long long cap = (long long)sms * kern.per_sm(v6 ? smem6 : smem);
        if (ms6_env_is("MS6_SCAN_SPLIT", "want") || getenv("MS6_SCAN_WANT_THREADS_PER_SM") || cap <= 0) {
            const long long want = (long long)sms * env_ll("MS6_SCAN_WANT_THREADS_PER_SM", P == 2 ? 2048 : 1024);
            K = (want + threads - 1) / threads + 1;
        } else {
            K = cap / blocks1 + 1;
        }
    }
    /* 64-step B/C tiles for the v6 kernel (vector tiles, the default poly):
     * half the tile boundaries (each a cp.async wait, two barriers and the
     * next tile's conversion). Where it runs: 2 lanes a channel and at most
     * 4 chunks; MS6_SCAN_V6_TL64=1|0 forces it on or off. Measured (H200,
     * bench scan, two alternating pairs, docs/kernel-notes.md): (8,5120,2048)
     * 0.652 -> 0.637 ms, (16,2560,4096) 1.299 -> 1.269, (8,1536,2048) 0.260
     * -> 0.254, (4,2560,16384) 1.824 -> 1.812; slower where set_chunks
     * rounds the chunks up to 64 steps (1 x 5120 x 2048 at K = 5: 448
     * against 416; 0.148 -> 0.152 ms), which the rule avoids for the shapes
     * measured (docs/kernel-notes.md, "Open leads") */
    set_chunks(a, p->seqlen, K, 64, TL); /* (TL is 32 wherever bc_vec holds) */
    bool tl64 = v6 && a.bc_vec && poly == 4 && v6_smem(64) <= 48 * 1024 &&
                (ms6_env_is("MS6_SCAN_V6_TL64", "1") ||
                 (!ms6_env_is("MS6_SCAN_V6_TL64", "0") && P == 2 && a.K <= 4));
    if (tl64) {
        TL = 64;
        a.TL = TL; a.tl_shift = ilog2(TL);
        smem6 = v6_smem(TL);
        set_chunks(a, p->seqlen, K, 64, TL);
    }
    v6 = v6 && v6_ok(p, a, P);
    if (tl64 && !v6) { /* chunks of 2^30 steps or more: the lanes kernel, at 32-step tiles */
        tl64 = false;
        TL = 32;
        a.TL = TL; a.tl_shift = ilog2(TL);
        set_chunks(a, p->seqlen, K, 64, TL);
    }
    const ScanKernel run =
        P == 2 ? lanes_kernel_for<2>(dt, v6, poly, tl64) : lanes_kernel_for<4>(dt, v6, poly, tl64);
    if (env_ll("MS6_SCAN_VERBOSE", 0))
        fprintf(stderr,
                "scan(lanes%s P=%d, bc_vec=%d, poly=%lld): batch=%lld dim=%lld L=%lld N=%lld TL=%d K=%d chunk=%lld "
                "smem=%zu\n",
                v6 ? " v6" : "", P, a.bc_vec, poly, (long long)p->batch, (long long)p->dim, (long long)p->seqlen,
                (long long)p->d_state, TL, a.K, a.chunk_len, v6 ? smem6 : smem);
    return run_passes(be, a, blocks1, v6 ? smem6 : smem, a.K, 16, run.launch);
}

} // namespace

extern "C" ms6_status ms6_cuda_scan_fwd(ms6_backend *be, const ms6_scan_params *p) {
    ms6_cuda_ctx *cx = ms6_cuda(be);
    cudaStream_t st = cx->stream;
    const long long N = p->d_state;
    const long long sds = p->state_dim_stride ? p->state_dim_stride : N;
    const long long sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;

    if (p->seqlen == 0) {
        if (!p->final_state) return MS6_STATUS_OK;
        const long long n = p->batch * p->dim * N;
        scan_empty_kernel<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(p->initial_state, p->final_state, p->batch,
                                                                        p->dim, N, sbs, sds);
        return ms6_cuda_check(be, cudaGetLastError(), "selective_scan_fwd (L = 0) launch");
    }

    ScanArgs a;
    a.batch = p->batch; a.dim = p->dim; a.L = p->seqlen; a.N = N;
    a.G = p->n_groups > 0 ? p->n_groups : 1;
    a.dpg = p->dim / a.G;
    a.u = dev_act(p->u); a.delta = dev_act(p->delta); a.z = dev_act(p->z); a.out = dev_act(p->out);
    a.A = p->A; a.A_ds = p->A_dim_stride; a.A_ns = p->A_state_stride;
    a.B = dev_bc(p->B); a.C = dev_bc(p->C);
    if (!a.B.var && !a.C.var) a.G = 1, a.dpg = p->dim;
    a.D = p->D; a.bias = p->delta_bias;
    a.softplus = p->delta_softplus; a.has_z = p->z.ptr != NULL;
    a.bc_vec = 0; a.async = 0;
    a.h0 = p->initial_state; a.hT = p->final_state; a.sbs = sbs; a.sds = sds;

    /* N <= 16: the lanes variant by default; MS6_SCAN_DIRECT=1 picks the
     * direct variant (one thread per channel), MS6_SCAN_DIRECT=0 or a forced
     * MS6_SCAN_S the tiled kernel */
    const int sms_d = cx->prop.multiProcessorCount > 0 ? cx->prop.multiProcessorCount : 1;
    const long long direct_env = env_ll("MS6_SCAN_DIRECT", -1);
    if (N <= 16 && (direct_env == 1 || (direct_env < 0 && env_ll("MS6_SCAN_S", 0) == 0))) {
        const ms6_status st_d = direct_env == 1 ? scan_direct(be, p, a, sms_d) : scan_lanes(be, p, a, sms_d);
        if (st_d != MS6_STATUS_UNSUPPORTED) return st_d;
    }

    /* states per lane: the largest S that still gives the GPU enough
     * threads (8 warps per SM); lanes per channel P = N/S rounded to 2^k */
    const int sms = cx->prop.multiProcessorCount > 0 ? cx->prop.multiProcessorCount : 1;
    const long long chans = p->batch * p->dim;
    const long long want = (long long)sms * env_ll("MS6_SCAN_WANT_THREADS_PER_SM", 256);
    const int smax = N > 8 ? 16 : (N > 4 ? 8 : 4);
    int S = 0;
    const long long force_s = env_ll("MS6_SCAN_S", 0);
    for (int s = smax; s >= 4; s >>= 1) {
        const int P = pow2ceil((N + s - 1) / s);
        if (P > 32) break;
        S = s;
        if (force_s ? s == force_s : chans * P >= want) break;
    }
    const int P = pow2ceil((N + S - 1) / S);
    a.P = P; a.p_shift = ilog2(P);
    a.CB = kThreads / P; a.cb_shift = ilog2(a.CB);
    a.Npad = P * S;
    a.n_tiles = (p->dim + a.CB - 1) / a.CB;
    a.gpb = (int)((a.CB - 1) / a.dpg + 2);
    if (a.gpb > a.G) a.gpb = (int)a.G;
    /* token-major when channels are closer together than steps */
    a.tokmaj = p->u.dim_stride <= p->u.seq_stride;

    /* tile length: TL*CB <= kEA*kThreads elements (the per-thread register
     * prefetch), at most 64 steps, B/C tile within the kEB prefetch where
     * possible, shared memory <= 48 KB */
    int TL = kEA * kThreads / a.CB;
    if (TL > 64) TL = 64;
    const long long max_tl = env_ll("MS6_SCAN_MAX_TL", 64);
    while (TL > 1 && TL > max_tl) TL >>= 1;
    if (a.B.var || a.C.var)
        while (TL > 1 && (long long)TL * a.gpb * a.Npad > kEB * kThreads) TL >>= 1;
    size_t smem = 0;
    for (;; TL >>= 1) {
        const size_t bsz = a.B.var ? (size_t)TL * a.gpb * a.Npad : (size_t)a.CB * (a.Npad + 4);
        const size_t csz = a.C.var ? (size_t)TL * a.gpb * a.Npad : (size_t)a.CB * (a.Npad + 4);
        smem = sizeof(float) * (4 * (size_t)TL * (a.CB + 1) + bsz + csz + 2 * (size_t)a.CB);
        if (smem <= 48 * 1024 || TL == 1) break;
    }
    a.TL = TL; a.tl_shift = ilog2(TL);

    /* chunks over L when the channels alone cannot fill the GPU */
    long long K = 1;
    const long long threads = chans * P;
    if (threads < want) K = (want + threads - 1) / threads + 1;
    set_chunks(a, p->seqlen, K, 256, TL);
    K = a.K;
    if (env_ll("MS6_SCAN_VERBOSE", 0))
        fprintf(stderr, "scan: batch=%lld dim=%lld L=%lld N=%lld S=%d P=%d CB=%d TL=%d K=%d chunk=%lld smem=%zu\n",
                (long long)p->batch, (long long)p->dim, (long long)p->seqlen, N, S, P, a.CB, TL, a.K, a.chunk_len, smem);

    cudaError_t (*launch)(const ScanArgs &, long long, size_t, cudaStream_t) =
        S == 16 ? launch_scan<16> : (S == 8 ? launch_scan<8> : launch_scan<4>);
    const long long blocks1 = a.n_tiles * p->batch;
    if (K == 1) {
        a.pass = 0;
        return ms6_cuda_check(be, launch(a, blocks1, smem, st), "selective_scan_fwd launch");
    }

    /* two passes with chunk states in stream-ordered scratch */
    const size_t rows = (size_t)K * p->batch * p->dim;
    void *scratch = NULL;
    cudaError_t e = cudaMallocAsync(&scratch, rows * sizeof(float) * (a.Npad + 1), st);
    if (e != cudaSuccess) return ms6_cuda_check(be, e, "selective_scan_fwd chunk-state scratch");
    a.ch_h = (float *)scratch;
    a.ch_s = a.ch_h + rows * a.Npad;
    a.pass = 1;
    e = launch(a, blocks1 * (K - 1), smem, st);
    if (e == cudaSuccess) {
        a.pass = 2;
        e = launch(a, blocks1 * (K - 1), smem, st);
    }
    cudaError_t e2 = cudaFreeAsync(scratch, st);
    if (e == cudaSuccess) e = e2;
    return ms6_cuda_check(be, e, "selective_scan_fwd launch");
}
