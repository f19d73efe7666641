/*
 * decode_batch.cu - the SSM part of a batched decode step (op ssm_step):
 * dt_proj + softplus + state update + D skip + SiLU(z) gate in one kernel,
 * for the unfused step's batches (forward.c, opt-in with
 * MS6_DEC_BATCH_FUSED=1 for 3..256 sequences). It replaces the dt_proj
 * GEMM and the state update op: one launch less per layer and no delta
 * round trip through memory.
 *
 * What it computes, for sequence b (state slot s = slots[b]) and channel c:
 *   delta = softplus(dt_proj[c, :] . dbc[b, 0:R] + dt_bias[c])
 *   h     = state[s, c, :] = exp(delta * A[c, :]) * h + delta * u[b, c] * B[b, :]
 *   y[b, c] = (h . C[b, :] + D[c] * u[b, c]) * silu(z[b, c])
 * with dbc[b] = dt (R) | B (N) | C (N) as x_proj wrote it (for falcon_mamba
 * after its RMSNorms), all activations fp32, the state fp32 in place.
 *
 * Design (state update v4's, docs/kernel-notes.md, plus the dt projection):
 * - LPC = N/4 adjacent lanes own one channel, each lane one float4 of its
 *   state and of A (a warp reads and writes contiguous 512-byte runs at N
 *   16); every thread runs kSeqs = 8 sequences of its channel, so the
 *   channel's dt_proj row, A, bias and D are read once for 8 sequences. A
 *   block is 128 threads: CPB = 128/LPC channels x the same 8 sequences.
 * - Shared memory, filled with cp.async (no registers, no wait until the
 *   phase ends): the block's 8 dbc rows (dt | B | C, 6 KB at 2.8b) and, on
 *   the vector path, the CPB dt_proj rows (one contiguous run of CPB * R
 *   weights: 10 KB at 2.8b), rows padded so that a quarter-warp's 16-byte
 *   reads hit distinct banks.
 * - Phase 1 issues every load before any is used: the staging copies, A,
 *   bias, D, u and z of the lane's own sequences, and the 8 state float4s
 *   (after one shuffle of the slots, which lane j of the warp loads for
 *   sequence j). No state load is conditional: a sequence past the batch
 *   or with a padding / out-of-range slot reads a stand-in row (the block's
 *   first sequence's, loaded anyway; row 0 if that one is padding). An
 *   empty non-inlined call ends the phase (as in v4: ptxas moves no use of
 *   a load above it), then the cp.async wait and one barrier.
 * - Phase 2: the dt dot products (lane q takes the 16-byte weight vectors
 *   q, q + LPC, ... of its channel's row and FMAs them against the 8
 *   sequences' dt, broadcast from shared memory), reduced over the
 *   channel's lanes by a reduce-scatter butterfly (lane q ends with the
 *   sums of sequences q*8/LPC .. +8/LPC: 6 shuffles at LPC 4 where an
 *   all-reduce takes 16); softplus, delta*u and delta*log2(e) by the owning
 *   lane, handed to the channel's lanes by shuffles; the 8 state updates,
 *   each stored as one 16-byte store; C.h reduce-scattered the same way,
 *   so the owning lane adds D*u, gates and writes y.
 * - The vector path needs R a multiple of the weights per 16 bytes (8
 *   halves, 4 floats) and an aligned dt_proj; other shapes (the test
 *   models' dt_rank 1..7) take the same kernel with a scalar dt loop whose
 *   weights are read from global memory in the loop; a dbc that is not
 *   16-byte aligned row by row is staged one float at a time.
 * Padding (negative slot): y = 0, no state touched. A slot >= n_slots
 * cannot be reported without a host round trip: no state touched, y = NaN
 * (as the state update op).
 *
 * Takes N = 4, 8, 16, 32 (N/4 lanes, at most 8 per channel), 16-byte
 * aligned state and A, f16 / bf16 / f32 dt_proj, every element offset
 * within int32, the staged rows within 48 KB; anything else is
 * MS6_STATUS_UNSUPPORTED (the caller keeps dt_proj + state_update).
 * Checked by tests/test_cuda_ops.c (float64 oracle over shapes, dtypes,
 * both paths, padding) and tests/test_cuda_model.c (batched decode with the
 * op == without it).
 */
#include "backend/cuda/cuda_internal.h"

#include <stdint.h>

namespace {

constexpr int kThreads = 128;
constexpr int kSeqs = 8;                  /* sequences per thread, and per block */
constexpr int kPass = 4;                  /* sequences per pass of the dt loop */
constexpr size_t kMaxSmem = 48 * 1024;    /* dynamic shared memory per block, without opt-in */

struct SsmArgs {
    int n, di, N, R, n_slots;
    int ld_dbc, ld_u, ld_z, ld_y;
    int srow;        /* floats per staged dbc row: r4 + 2N */
    int r4;          /* where B starts in a staged row (R rounded up to 4) */
    int per;         /* staging units per dbc row: srow / 4 float4s (vec_stage) or R + 2N floats */
    int per_q, per_r; /* kThreads / per, kThreads % per */
    int nvec;        /* 16-byte weight vectors per dt_proj row (vector path) */
    int nvec_q, nvec_r; /* kThreads / nvec, kThreads % nvec */
    int wstride;     /* bytes per staged dt_proj row */
    int slot_stride; /* floats per state slot */
    int n_tiles;     /* channel tiles of CPB */
    int vec_stage;   /* dbc rows copied in 16-byte pieces */
    int has_z;
    const float *dbc, *u, *z; /* z: u when absent (a valid stand-in, never used) */
    const void *w;
    const float *bias, *A, *D;
    float *state;
    const int32_t *slots;
    float *y;
};

/* the weights of one 16-byte vector as fp32: 8 halves or 4 floats */
template <typename T> struct Vec { static constexpr int E = 8; };
template <> struct Vec<float> { static constexpr int E = 4; };
__device__ __forceinline__ void unpack(const uint4 &v, float (&f)[8], __half t) { unpack8(v, f, t); }
__device__ __forceinline__ void unpack(const uint4 &v, float (&f)[8], __nv_bfloat16 t) { unpack8(v, f, t); }
__device__ __forceinline__ void unpack(const uint4 &v, float (&f)[4], float) {
    f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y); f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
}

/* Sums v[0..S) over the LPC lanes of a channel (aligned groups of LPC
 * lanes), scattered: on return lane q holds in v[0..S/LPC) the sums of
 * sequences q*(S/LPC) .. q*(S/LPC) + S/LPC - 1. log2(LPC) steps; at the
 * step of offset o the lane keeps the half of its m values that its bit o
 * selects and sends the other half to lane q ^ o (m/2 shuffles). */
template <int LPC, int S>
__device__ __forceinline__ void reduce_scatter(float (&v)[S], int q) {
#pragma unroll
    for (int st = 0; (1 << st) < LPC; st++) {
        const int o = LPC >> (st + 1), m = S >> st;
        const bool upper = (q & o) != 0;
#pragma unroll
        for (int i = 0; i < m / 2; i++) {
            const float send = upper ? v[i] : v[i + m / 2];
            const float keep = upper ? v[i + m / 2] : v[i];
            v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
        }
    }
}

/* LPC lanes per channel; T the dt_proj type; VEC: the dt_proj rows staged
 * in shared memory and read as 16-byte vectors (else the scalar loop). */
template <int LPC, typename T, bool VEC>
__global__ void __launch_bounds__(kThreads, 4) ssm_step_kernel(const SsmArgs a) {
    constexpr int S = kSeqs, SO = S / LPC, CPB = kThreads / LPC, E = Vec<T>::E;
    static_assert(S % LPC == 0, "a lane owns S / LPC sequences");
    extern __shared__ __align__(16) float sm[]; /* (S, srow) dbc rows, then (CPB, wstride bytes) dt_proj rows */
    const int tile = (int)blockIdx.x % a.n_tiles, b0 = (int)blockIdx.x / a.n_tiles * S;
    const int nb = a.n - b0 < S ? a.n - b0 : S; /* sequences of this block */
    const int tid = threadIdx.x, q = tid % LPC, lane = tid % 32, cl = tid / LPC;
    const int d = tile * CPB + cl;
    const bool dok = d < a.di;
    const int dl = dok ? d : a.di - 1; /* past the channels: channel di - 1's rows, never stored */
    char *sw = reinterpret_cast<char *>(sm + S * a.srow);

    /* ---- phase 1: every load ---- */
    /* slot of sequence b0 + lane (lanes past the block: the first one's) */
    const int mine = a.slots[b0 + (lane < nb ? lane : 0)];
    /* the block's dbc rows (rows past the batch: its first row); unit i of
     * the flat copy is (j, k) = (i / per, i % per), stepped without division */
    {
        int j = tid / a.per, k = tid - j * a.per;
        for (; j < S; j += a.per_q, k += a.per_r) {
            if (k >= a.per) { k -= a.per; j++; if (j >= S) break; }
            const float *src = a.dbc + (b0 + (j < nb ? j : 0)) * a.ld_dbc;
            if (a.vec_stage) cp_async16(sm + j * a.srow + 4 * k, src + 4 * k);
            else cp_async4(sm + j * a.srow + (k < a.R ? k : k - a.R + a.r4), src + k);
        }
    }
    /* the block's dt_proj rows, one contiguous run (past the channels: row di - 1) */
    if constexpr (VEC) {
        int c = tid / a.nvec, v = tid - c * a.nvec;
        for (; c < CPB; c += a.nvec_q, v += a.nvec_r) {
            if (v >= a.nvec) { v -= a.nvec; c++; if (c >= CPB) break; }
            const int ch = tile * CPB + c < a.di ? tile * CPB + c : a.di - 1;
            cp_async16(sw + c * a.wstride + 16 * v, (const T *)a.w + (ch * a.R + E * v));
        }
    }
    const float4 A4 = __ldg(reinterpret_cast<const float4 *>(a.A + (dl * a.N + 4 * q)));
    float bias = 0.0f, Dv = 0.0f; /* predicated loads, no branch */
    if (a.bias) bias = a.bias[dl];
    if (a.D) Dv = a.D[dl];
    /* u and z of the lane's own sequences q*SO + i */
    float uo[SO], zo[SO];
#pragma unroll
    for (int i = 0; i < SO; i++) {
        const int j = q * SO + i, r = b0 + (j < nb ? j : 0);
        uo[i] = a.u[r * a.ld_u + dl];
        zo[i] = a.z[r * a.ld_z + dl];
    }
    /* the slots (one shuffle each; -1: past the batch, padding or out of
     * range), then the state rows */
    int sl[S];
#pragma unroll
    for (int j = 0; j < S; j++) {
        const int s = __shfl_sync(0xffffffffu, mine, j);
        sl[j] = j < nb && s >= 0 && s < a.n_slots ? s : -1;
    }
    int own_slot[SO];
#pragma unroll
    for (int i = 0; i < SO; i++) own_slot[i] = __shfl_sync(0xffffffffu, mine, q * SO + i);
    const int s0 = sl[0] >= 0 ? sl[0] : 0;
    float *hp = a.state + (dl * a.N + 4 * q);
    float4 h[S];
#pragma unroll
    for (int j = 0; j < S; j++) h[j] = *reinterpret_cast<const float4 *>(hp + (sl[j] >= 0 ? sl[j] : s0) * a.slot_stride);
    phase_fence();
    cp_async_wait_all();
    __syncthreads();

    /* ---- phase 2 ---- */
    /* dt projection: the lane's share of the row, for all S sequences */
    float acc[S];
#pragma unroll
    for (int j = 0; j < S; j++) acc[j] = 0.0f;
    if constexpr (VEC) {
        /* in two passes of S/2 sequences: a pass's dt reads in flight (S/2 x
         * E floats) stay within the registers the state leaves free */
        const char *wr = sw + cl * a.wstride;
#pragma unroll
        for (int j0 = 0; j0 < S; j0 += kPass) {
#pragma unroll 1
            for (int v = q; v < a.nvec; v += LPC) {
                float wf[E];
                unpack(*reinterpret_cast<const uint4 *>(wr + 16 * v), wf, T());
#pragma unroll
                for (int j = j0; j < j0 + kPass; j++) {
                    const float *x = sm + j * a.srow + E * v;
                    float t = acc[j];
#pragma unroll
                    for (int e = 0; e < E; e += 4) {
                        const float4 x4 = *reinterpret_cast<const float4 *>(x + e);
                        t = fmaf(wf[e], x4.x, t);
                        t = fmaf(wf[e + 1], x4.y, t);
                        t = fmaf(wf[e + 2], x4.z, t);
                        t = fmaf(wf[e + 3], x4.w, t);
                    }
                    acc[j] = t;
                }
            }
        }
    } else {
        const T *wrow = (const T *)a.w + dl * a.R;
        for (int k = q; k < a.R; k += LPC) {
            const float wk = tof(wrow[k]);
#pragma unroll
            for (int j = 0; j < S; j++) acc[j] = fmaf(wk, sm[j * a.srow + k], acc[j]);
        }
    }
    reduce_scatter<LPC, S>(acc, q);
    /* the own sequences' delta * u and delta * log2(e) */
    float dtx_o[SO], dtl_o[SO];
#pragma unroll
    for (int i = 0; i < SO; i++) {
        const float delta = softplus_f(acc[i] + bias);
        dtx_o[i] = delta * uo[i];
        dtl_o[i] = delta * kLog2e;
    }
    float yv[S];
#pragma unroll
    for (int j = 0; j < S; j++) {
        /* sequence j's values, from the channel's lane j / SO */
        const float dtx = __shfl_sync(0xffffffffu, dtx_o[j % SO], j / SO, LPC);
        const float dtl = __shfl_sync(0xffffffffu, dtl_o[j % SO], j / SO, LPC);
        const float4 B4 = *reinterpret_cast<const float4 *>(sm + j * a.srow + a.r4 + 4 * q);
        const float4 C4 = *reinterpret_cast<const float4 *>(sm + j * a.srow + a.r4 + a.N + 4 * q);
        const float h0 = fmaf(fast_ex2(dtl * A4.x), h[j].x, dtx * B4.x);
        const float h1 = fmaf(fast_ex2(dtl * A4.y), h[j].y, dtx * B4.y);
        const float h2 = fmaf(fast_ex2(dtl * A4.z), h[j].z, dtx * B4.z);
        const float h3 = fmaf(fast_ex2(dtl * A4.w), h[j].w, dtx * B4.w);
        if (dok && sl[j] >= 0) st_v4(hp + sl[j] * a.slot_stride, h0, h1, h2, h3);
        yv[j] = C4.x * h0 + C4.y * h1 + C4.z * h2 + C4.w * h3;
    }
    reduce_scatter<LPC, S>(yv, q);
    /* the own sequences: + D*u, gate, store */
#pragma unroll
    for (int i = 0; i < SO; i++) {
        const int j = q * SO + i;
        float yo = fmaf(Dv, uo[i], yv[i]);
        if (a.has_z) yo *= silu_f(zo[i]);
        if (own_slot[i] < 0) yo = 0.0f;                                      /* padding */
        else if (own_slot[i] >= a.n_slots) yo = __int_as_float(0x7fffffff); /* slot out of range */
        if (dok && j < nb) a.y[(b0 + j) * a.ld_y + d] = yo;
    }
}

template <int LPC, typename T, bool VEC>
cudaError_t launch_one(const SsmArgs &a, unsigned blocks, size_t smem, cudaStream_t st) {
    ssm_step_kernel<LPC, T, VEC><<<blocks, kThreads, smem, st>>>(a);
    return cudaGetLastError();
}

template <typename T, bool VEC>
cudaError_t launch_lpc(const SsmArgs &a, int lpc, unsigned blocks, size_t smem, cudaStream_t st) {
    switch (lpc) {
    case 1: return launch_one<1, T, VEC>(a, blocks, smem, st);
    case 2: return launch_one<2, T, VEC>(a, blocks, smem, st);
    case 4: return launch_one<4, T, VEC>(a, blocks, smem, st);
    default: return launch_one<8, T, VEC>(a, blocks, smem, st);
    }
}

template <typename T>
cudaError_t launch_t(const SsmArgs &a, bool vec, int lpc, unsigned blocks, size_t smem, cudaStream_t st) {
    return vec ? launch_lpc<T, true>(a, lpc, blocks, smem, st) : launch_lpc<T, false>(a, lpc, blocks, smem, st);
}

/* stride * (count - 1) + extra < 2^31 (count >= 1, all non-negative) */
bool fits32(int64_t stride, int64_t count, int64_t extra) {
    const int64_t lim = INT32_MAX;
    if (stride < 0 || count < 1 || extra < 0) return false;
    if (count > 1 && stride > lim / (count - 1)) return false;
    return stride * (count - 1) + extra < lim;
}

} // namespace

extern "C" ms6_status ms6_cuda_ssm_step(ms6_backend *be, const ms6_ssm_step_params *p) {
    const int64_t n = p->n, di = p->d_inner, N = p->d_state, R = p->dt_rank, lpc = N / 4;
    const ms6_dtype wt = p->dt_proj_dtype;
    const int ok_shape = n >= 1 && di >= 1 && R >= 1 && R <= 4096 && (N == 4 || N == 8 || N == 16 || N == 32) &&
                         (wt == MS6_DTYPE_F16 || wt == MS6_DTYPE_BF16 || wt == MS6_DTYPE_F32);
    const int64_t cpb = ok_shape ? kThreads / lpc : 1;
    const int64_t r4 = (R + 3) / 4 * 4, srow = r4 + 2 * N;
    const int64_t tiles = (di + cpb - 1) / cpb, blocks = tiles * ((n + kSeqs - 1) / kSeqs);
    const size_t dbc_bytes = sizeof(float) * (size_t)(kSeqs * srow);
    const int ok =
        ok_shape && p->dbc && p->u && p->y && p->dt_proj && p->A && p->state && p->slots && p->n_slots >= 1 &&
        p->ld_dbc >= R + 2 * N && p->ld_u >= di && p->ld_y >= di && (!p->z || p->ld_z >= di) &&
        p->slot_stride >= di * N && p->slot_stride % 4 == 0 && ms6_aligned16(p->state) && ms6_aligned16(p->A) &&
        dbc_bytes <= kMaxSmem && blocks < INT32_MAX && fits32(p->ld_dbc, n, R + 2 * N) && fits32(p->ld_u, n, di) &&
        (!p->z || fits32(p->ld_z, n, di)) && fits32(p->ld_y, n, di) && fits32(p->slot_stride, p->n_slots, di * N) &&
        fits32(R, di, R);
    if (!ok)
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED,
                                "fused ssm step: shape not supported (n %lld, d_inner %lld, d_state %lld, dt_rank %lld)",
                                (long long)n, (long long)di, (long long)N, (long long)R);
    if (p->check_only) return MS6_STATUS_OK;
    /* the vector path: whole 16-byte vectors per row, the rows staged */
    const int64_t epv = wt == MS6_DTYPE_F32 ? 4 : 8, wbytes = R * (int64_t)ms6_dtype_size(wt);
    /* row stride = 16 * LPC mod 128 bytes: the channels of a quarter-warp
     * (8 / LPC of them, 16 * LPC contiguous bytes each) on distinct banks */
    const int64_t wstride = wbytes + ((16 * lpc - wbytes % 128) % 128 + 128) % 128;
    const size_t smem_vec = dbc_bytes + (size_t)(cpb * wstride);
    const bool vec = R % epv == 0 && ms6_aligned16(p->dt_proj) && smem_vec <= kMaxSmem;
    SsmArgs a;
    a.n = (int)n; a.di = (int)di; a.N = (int)N; a.R = (int)R; a.n_slots = (int)p->n_slots;
    a.ld_dbc = (int)p->ld_dbc; a.ld_u = (int)p->ld_u; a.ld_y = (int)p->ld_y;
    a.ld_z = p->z ? (int)p->ld_z : (int)p->ld_u;
    a.r4 = (int)r4; a.srow = (int)srow;
    /* 16-byte copies keep the rows as they are (R % 4 == 0: B right after
     * dt) and need 16-byte aligned rows */
    a.vec_stage = R % 4 == 0 && p->ld_dbc % 4 == 0 && ms6_aligned16(p->dbc);
    a.per = a.vec_stage ? (int)(srow / 4) : (int)(R + 2 * N);
    a.per_q = kThreads / a.per; a.per_r = kThreads % a.per;
    a.nvec = vec ? (int)(R / epv) : 1;
    a.nvec_q = kThreads / a.nvec; a.nvec_r = kThreads % a.nvec;
    a.wstride = (int)wstride;
    a.slot_stride = (int)p->slot_stride;
    a.n_tiles = (int)tiles;
    a.has_z = p->z != NULL;
    a.dbc = p->dbc; a.u = p->u; a.z = p->z ? p->z : p->u;
    a.w = p->dt_proj; a.bias = p->dt_bias; a.A = p->A; a.D = p->D;
    a.state = p->state; a.slots = p->slots; a.y = p->y;
    const size_t smem = vec ? smem_vec : dbc_bytes;
    cudaStream_t st = ms6_cuda(be)->stream;
    cudaError_t e;
    if (wt == MS6_DTYPE_F16) e = launch_t<__half>(a, vec, (int)lpc, (unsigned)blocks, smem, st);
    else if (wt == MS6_DTYPE_BF16) e = launch_t<__nv_bfloat16>(a, vec, (int)lpc, (unsigned)blocks, smem, st);
    else e = launch_t<float>(a, vec, (int)lpc, (unsigned)blocks, smem, st);
    return ms6_cuda_check(be, e, "fused ssm step");
}
