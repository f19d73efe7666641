/*
 * decode.cu - the fused decode step of a Mamba mixer layer for 1 or 2
 * sequences (ops mixer_step and norm_gemv of the backend table); larger
 * batches use the unfused ops, whose cuBLASLt GEMMs read the weights once
 * for all rows (first version, measured: 4 sequences fused 5.09 ms per 2.8b step against
 * 3.63 unfused; 2 sequences fused 3.35 against 3.50).
 *
 * The unfused step is 7 kernels per layer (RMSNorm, in_proj, conv update,
 * x_proj, dt_proj, state update, out_proj), five of them far shorter than
 * a launch. Here a layer is 3 kernels:
 *   K1 norm_gemv    RMSNorm of the residual rows (recomputed by every block:
 *                   d_model floats per sequence), in_proj rows as a gemv; the
 *                   block owning x rows c.. also owns conv channels c..: conv
 *                   update + bias + SiLU -> u, then that block's share of
 *                   x_proj (its 16 columns) added to dbc with atomics; z rows
 *                   are stored raw.
 *   K3 ssm          per channel: delta = softplus(dt_proj[c] . dt + bias),
 *                   state update over d_state, + D*u, * silu(z) -> y.
 *   K4 outproj      residual += out_proj . y (+ bias); the residual stays
 *                   fp32; block 0 zeroes dbc for the next layer.
 * or, by default, K3 and K4 as one kernel split by channels:
 *   K34 ssm_out     K3 for a block's 32 or 64 channels, then their share of
 *                   out_proj added into the residual with atomics.
 * The head is K1 without the conv epilogue (norm_f + lm_head). The K2 of
 * the first version (x_proj as its own kernel) is folded into K1.
 *
 * Every kernel loads what the previous kernel does not write (its weights,
 * the conv / ssm state, the residual row it will add to) into registers
 * first, then waits on the previous kernel (griddepcontrol.wait,
 * programmatic dependent launch), so inside the captured graph the weight
 * streaming of one kernel overlaps the tail and launch of the one before.
 * No kernel writes anything before that wait, and every kernel signals its
 * dependents only after it, so when a kernel starts, the kernel two before
 * it has completed (which is what makes the early reads of the state and
 * the residual safe).
 * MS6_CUDA_FUSED=0 turns the fused ops off (the step falls back to the
 * unfused ops); MS6_CUDA_PDL=0 launches without the dependent-launch
 * attribute; MS6_DEC_CH=4|8 sets the gemv's loads in flight (see dec_ch).
 * Checked by tests/test_cuda_model.c (fused == unfused == CPU, batched ==
 * single, with either MS6_DEC_CH).
 */
#include "backend/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEC_THREADS 256
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_ROWS 2   /* rows per warp in the gemv kernels */
#define DEC_BLOCK_ROWS (DEC_WARPS * DEC_ROWS)
#define DEC_MAX_NB 2  /* more sequences: the unfused ops (cuBLASLt) are faster */
#define DEC_SMEM_MAX (48 * 1024)
#define DEC_MAX_DBC 640 /* dt_rank + 2 * d_state, at most */

static __device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
static __device__ __forceinline__ void pdl_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/* the wait on the kernel before, then the trigger of the one after (the
 * trigger before the wait, measured: 130m 0.300 vs 0.286 ms/token, 1.4b
 * 1.262 vs 1.207, 2.8b 2.283 vs 2.324; docs/kernel-notes.md) */
static __device__ __forceinline__ void pdl_sync() {
    pdl_wait();
    pdl_launch();
}

/* ---- block timeline (development: built with -DMS6_DEC_PROF=1, the CMake
 * option MS6_DEC_PROF, and run with MS6_DEC_PROF=FILE; see
 * ms6_cuda_dec_prof_free): thread 0 of every block of K1, K34 and the head
 * notes the global timer at its start and after its wait (shared memory) and,
 * after a final barrier, appends (t0, t1, end, kind | block << 8 | SM << 40)
 * to a ring on the device (ring[0]: the count, records from ring + 2, 4 words
 * each). Compiled out by default: the marks cost 3-5 % of a decoded token
 * even with the ring NULL (H200, 84971df: 130m 0.218 against 0.207 ms). ---- */
#ifndef MS6_DEC_PROF
#define MS6_DEC_PROF 0
#endif
#define MS6_DEC_PROF_CAP (1u << 17) /* records in the ring, a power of two */
#if MS6_DEC_PROF
#define PROF_BEGIN(ring)                 \
    __shared__ unsigned long long pt[2]; \
    prof_mark(ring, pt, 0)
#define PROF_WAITED(ring) prof_mark(ring, pt, 1)
#define PROF_END(ring, kind) prof_end(ring, pt, kind)
/* MS6_DEC_PROBE=BITS (with MS6_DEC_PROF=FILE, this build only; the results
 * are wrong, the timeline is what it is for): parts of K34's end left out
 * to see what the next kernel's wait waits for. 1: K34's reductions into
 * the residual, 2: K34's stores of the new state, 4: K1's first weight
 * round requested after its wait instead of before, 8: K1's wait before
 * anything (nothing requested before it) */
__device__ int g_dec_probe;
#define PROBE(bit) (g_dec_probe & (bit))
static __device__ __forceinline__ unsigned long long gtimer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
static __device__ __forceinline__ void prof_mark(unsigned long long *ring, unsigned long long *t, int i) {
    if (ring && threadIdx.x == 0) t[i] = gtimer();
}
static __device__ __forceinline__ void prof_end(unsigned long long *ring, const unsigned long long *t, int kind) {
    if (!ring) return;
    __syncthreads();
    if (threadIdx.x != 0) return;
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    const unsigned i = atomicAdd(reinterpret_cast<unsigned *>(ring), 1u) & (MS6_DEC_PROF_CAP - 1);
    unsigned long long *r = ring + 2 + 4 * (size_t)i;
    r[0] = t[0];
    r[1] = t[1];
    r[2] = gtimer();
    r[3] = (unsigned long long)kind | ((unsigned long long)blockIdx.x << 8) | ((unsigned long long)sm << 40);
}
#else
#define PROF_BEGIN(ring)
#define PROF_WAITED(ring)
#define PROF_END(ring, kind)
#define PROBE(bit) 0
#endif
enum { PROF_K1X = 1, PROF_K1Z = 2, PROF_K34 = 3, PROF_HEAD = 4 };


/* ---- warp gemv core: R rows of W (K halves each, K % 8 == 0) against NB
 * fp32 vectors x (row b at x + b*ldx). Lane partial sums. ---- */
template <typename T, int NB, int CH, int R = DEC_ROWS>
struct WarpRows {
    const T *w[R];
    int nvec; /* K / 8 */
    uint4 buf[R][CH];

    __device__ __forceinline__ void load(int base, int lane) {
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < CH; j++) {
                const int idx = base + j * 32 + lane;
                buf[r][j] = idx < nvec ? ld_stream(w[r] + (size_t)idx * 8) : make_uint4(0, 0, 0, 0);
            }
    }
    /* acc[r][b] += v . x for the chunk at base; x in shared or global memory */
    __device__ __forceinline__ void fma(const uint4 (&v)[R][CH], int base, int lane, const float *x, int ldx,
                                       float (&acc)[R][NB]) {
#pragma unroll
        for (int j = 0; j < CH; j++) {
            const int idx = base + j * 32 + lane;
            if (idx >= nvec) break;
            float xv[NB][8];
#pragma unroll
            for (int b = 0; b < NB; b++) {
                const float4 a = *reinterpret_cast<const float4 *>(x + (size_t)b * ldx + idx * 8);
                const float4 c = *reinterpret_cast<const float4 *>(x + (size_t)b * ldx + idx * 8 + 4);
                xv[b][0] = a.x; xv[b][1] = a.y; xv[b][2] = a.z; xv[b][3] = a.w;
                xv[b][4] = c.x; xv[b][5] = c.y; xv[b][6] = c.z; xv[b][7] = c.w;
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                float wf[8];
                unpack8(v[r][j], wf, T());
#pragma unroll
                for (int b = 0; b < NB; b++)
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[r][b] = fmaf(wf[e], xv[b][e], acc[r][b]);
            }
        }
    }
    /* the whole row product; the first chunk must already be loaded. DB:
     * the next chunk's loads go out before this chunk's FMAs (twice the
     * buffer registers) */
    template <bool DB = false>
    __device__ __forceinline__ void run(int lane, const float *x, int ldx, float (&acc)[R][NB]) {
        for (int base = 0;;) {
            const int next = base + CH * 32;
            if (DB) {
                uint4 cur[R][CH];
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < CH; j++) cur[r][j] = buf[r][j];
                if (next < nvec) load(next, lane);
                fma(cur, base, lane, x, ldx, acc);
            } else {
                fma(buf, base, lane, x, ldx, acc);
                if (next < nvec) load(next, lane);
            }
            base = next;
            if (base >= nvec) break;
        }
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int b = 0; b < NB; b++) acc[r][b] = warp_sum(acc[r][b]);
    }
};

/* ---- K1: RMSNorm + gemv (+ conv epilogue and x_proj partial sums) ---- */
struct K1Params {
    const float *residual; /* (NB, dim) */
    const float *norm;
    float eps;
    int dim, rows;
    const void *w;
    const float *bias;
    /* conv == 0: out[b*ldo + row] */
    float *out;
    long long ldo;
    /* conv == 1: rows < di are x (conv channel), rows >= di are z */
    int di, dc, nb;
    const float *conv_w, *conv_b;
    float *conv_state;
    long long conv_slot_stride;
    const int32_t *slots;
    float *u, *xz;
    const void *x_proj; /* (nb, di) */
    float *dbc;         /* (NB, nb), accumulated into */
    /* conv == 0, one sequence, optional: the argmax of out fed back
     * (ms6_norm_gemv_params.feed_*; feed_pos[2..3] the 64-bit max of the
     * blocks' keys, feed_pos[4] their count) */
    int32_t *feed_ids, *feed_log, *feed_pos;
    unsigned long long *prof; /* the block timeline ring, or NULL */
};

#define K1_VEC 3 /* float4s per thread and row in the vector RMSNorm: dim <= 4 * K1_VEC * DEC_THREADS */

static __device__ __forceinline__ void prefetch_l1(const void *p) {
    asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
}

/* R rows per warp: 2 (1, double-buffered, and 4 with CH 2, all of 2.8b's
 * in_proj in one wave, measured slower: docs/kernel-notes.md) */
/* LOOP (the head, one sequence; the default, MS6_DEC_HEAD_LOOP=0: a block
 * per row group): a grid of one wave, each block taking row groups
 * blockIdx.x, + gridDim.x, ...: the RMSNorm once per block instead of once
 * per group, and the next group's first round requested right after the
 * last FMAs of the one before. Measured (H200, bench generate, ms/token,
 * loop / a block per group): 130m 0.193 / 0.206, 1.4b 1.114 / 1.115, 2.8b
 * 1.927 / 1.931-1.933 (130m's 77 MB head was 12 waves of 2 blocks per SM,
 * each block paying the norm before its one round of loads) */
/* EPI (x-row blocks of the one-sequence kernels, the default; MS6_DEC_EPI=0:
 * the generic loops): the conv update of (row r, sequence b) on lane
 * r * NB + b instead of lane b for every row in turn, through conv_step
 * (conv1d.cu's update kernel's: every load before the stores; the generic
 * loops below alternate a load and a store to the same line, and the stores
 * evict it from L1: an L2 round trip each). Measured (H200, ms/token, on /
 * off, with K34's chain): 130m 0.168 / 0.187, 1.4b 0.988 / 1.116, 2.8b
 * 1.850 / 2.049 */
#define K1_EPI_W 4 /* conv taps held in registers by EPI: d_conv - 1 <= 4, else the generic loops */
/* XS (k_norm_gemv_vec5, where 4 blocks per SM need two waves: k1_five):
 * the x_proj columns and the residual go to shared memory by cp.async
 * (after h: 2 x DEC_THREADS vectors, then NB x dim floats) instead of
 * registers, for the kernel held to 48 registers (5 blocks per SM: 2.8b's
 * 640 in_proj blocks in one wave of 660 instead of 1.21 waves of 528) */
/* CP (with EPI, the default; MS6_DEC_CP=0: off): each EPI lane's conv
 * state, taps and bias copied into shared memory by cp.async before the
 * wait (K1_CP floats per (row, sequence) after the kernel's other dynamic
 * shared memory), and its state slot kept in a register (not with XS),
 * instead of asked into L1 with prefetch.global.L1: the conv update after
 * the gemv reads them on the SM for certain. Measured (H200, ms/token, on
 * / off): 130m 0.157-0.158 / 0.168, 1.4b 0.944-0.945 / 0.982-0.983, 2.8b
 * 1.810-1.811 / 1.850-1.851 (without the slot in a register: 0.163, 0.957,
 * 1.807) */
#define K1_CP (2 * K1_EPI_W + 2)
/* CP: where lane's copies live (after h, and with XS after the x_proj
 * vectors and the residual) */
template <int NB, int R, bool XS>
static __device__ __forceinline__ float *k1_cp_at(float *h, int dim, int warp, int lane) {
    return h + (XS ? 2 * NB * dim + 8 * DEC_THREADS : NB * dim) + (warp * R * NB + lane) * K1_CP;
}
template <typename T, int NB, int CONV, int CH, int R, bool VEC, bool LOOP = false, bool EPI = false,
          bool XS = false, bool CP = false>
static __device__ __forceinline__ void norm_gemv_body(const K1Params &p) {
    extern __shared__ float h[]; /* (NB, dim) */
    __shared__ float red[DEC_WARPS][NB];
    __shared__ float us[NB][DEC_WARPS * R]; /* u of this block's conv channels */
    PROF_BEGIN(p.prof);
    if (PROBE(8)) pdl_wait();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int blk0 = blockIdx.x * DEC_WARPS * R, row0 = blk0 + warp * R;
    WarpRows<T, NB, CH, R> wr;
    wr.nvec = p.dim / 8;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r < p.rows ? row0 + r : p.rows - 1;
        wr.w[r] = (const T *)p.w + (size_t)row * p.dim;
    }
    if (!PROBE(4)) wr.load(0, lane);
    /* conv blocks (di % (DEC_WARPS * R) == 0: a block is all x rows or all
     * z rows): the x_proj columns of its channels, R 16-byte vectors per
     * output row, and the conv state and weights into shared memory (CP)
     * or L1 */
    const bool xblock = CONV && blk0 < p.di;
    int cps = -1; /* CP: the state slot of this lane's sequence */
    uint4 xw[2] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
    uint4 *xs = reinterpret_cast<uint4 *>(h + NB * p.dim); /* XS: 2 x DEC_THREADS vectors after h */
    if (xblock) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int q = threadIdx.x + i * DEC_THREADS;
            if (q < R * p.nb) {
                const T *src = (const T *)p.x_proj + (size_t)(q / R) * p.di + blk0 + (q % R) * 8;
                if (XS)
                    cp_async16(xs + q, src);
                else
                    xw[i] = ld_stream(src);
            }
        }
        if (CP && p.dc - 1 <= K1_EPI_W) {
            if (lane < R * NB) { /* EPI's lane r * NB + b: (row row0 + r, sequence b) */
                const int r = lane / NB, b = lane % NB, row = row0 + r, W = p.dc - 1, slot = p.slots[b];
                cps = slot;
                float *cp = k1_cp_at<NB, R, XS>(h, p.dim, warp, lane);
                if (slot >= 0)
                    for (int k = 0; k < W; k++)
                        cp_async4(cp + k, p.conv_state + (size_t)slot * p.conv_slot_stride + (size_t)row * W + k);
                for (int k = 0; k <= W; k++) cp_async4(cp + K1_EPI_W + k, p.conv_w + (size_t)row * p.dc + k);
                if (p.conv_b) cp_async4(cp + 2 * K1_EPI_W + 1, p.conv_b + row);
            }
            cp_async_commit();
        } else if (lane < NB) {
            const int slot = p.slots[lane];
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (slot >= 0)
                    prefetch_l1(p.conv_state + (size_t)slot * p.conv_slot_stride + (size_t)(row0 + r) * (p.dc - 1));
                prefetch_l1(p.conv_w + (size_t)(row0 + r) * p.dc);
            }
        }
    }
    /* VEC (one sequence, the default; MS6_DEC_VEC=0: the scalar loop): the
     * norm weights go to h before the wait (cp.async, each thread its own
     * float4s), and after it every residual float4 of the thread is
     * requested at once: one L2 round trip where the scalar loop below keeps
     * about three loads in flight (its own instantiation, bounded to the
     * blocks per SM of the scalar one) */
    const int nv4 = p.dim >> 2;
    if (VEC) {
        for (int q = threadIdx.x; q < nv4; q += DEC_THREADS)
#pragma unroll
            for (int b = 0; b < NB; b++) cp_async16(h + b * p.dim + 4 * q, p.norm + 4 * q);
        cp_async_commit();
    }
    pdl_sync();
    PROF_WAITED(p.prof);
    if (PROBE(4)) wr.load(0, lane);
    /* RMSNorm: h = residual * norm in one pass over dim with the sum of
     * squares, and rinv applied to the finished dot products: one L2 round
     * trip and one barrier before the first FMA (130m 0.268 vs 0.286
     * ms/token with h scaled in a second pass; 1.4b and 2.8b the same) */
    float ss[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) ss[b] = 0.0f;
    if (VEC && XS) {
        /* the residual through shared memory too (after the x_proj vectors),
         * so that no float4 of it is held in registers beside the weights */
        float *rs = h + NB * p.dim + 8 * DEC_THREADS;
        for (int q = threadIdx.x; q < nv4; q += DEC_THREADS)
#pragma unroll
            for (int b = 0; b < NB; b++) cp_async16(rs + b * p.dim + 4 * q, p.residual + (size_t)b * p.dim + 4 * q);
        cp_async_commit();
        cp_async_wait_all();
        for (int q = threadIdx.x; q < nv4; q += DEC_THREADS)
#pragma unroll
            for (int b = 0; b < NB; b++) {
                float4 *hp = reinterpret_cast<float4 *>(h + b * p.dim) + q;
                const float4 g = *hp, v = reinterpret_cast<const float4 *>(rs + b * p.dim)[q];
                *hp = make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
                ss[b] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            }
    } else if (VEC) {
        float4 rv[NB][K1_VEC];
#pragma unroll
        for (int b = 0; b < NB; b++)
#pragma unroll
            for (int j = 0; j < K1_VEC; j++) {
                const int q = threadIdx.x + j * DEC_THREADS;
                rv[b][j] = q < nv4 ? reinterpret_cast<const float4 *>(p.residual + (size_t)b * p.dim)[q]
                                   : make_float4(0.f, 0.f, 0.f, 0.f);
            }
        cp_async_wait_all();
#pragma unroll
        for (int b = 0; b < NB; b++)
#pragma unroll
            for (int j = 0; j < K1_VEC; j++) {
                const int q = threadIdx.x + j * DEC_THREADS;
                if (q >= nv4) break;
                float4 *hp = reinterpret_cast<float4 *>(h + b * p.dim) + q;
                const float4 g = *hp, v = rv[b][j];
                *hp = make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
                ss[b] += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
            }
    } else {
        for (int k = threadIdx.x; k < p.dim; k += DEC_THREADS) {
            const float g = p.norm[k];
#pragma unroll
            for (int b = 0; b < NB; b++) {
                const float v = p.residual[(size_t)b * p.dim + k];
                h[b * p.dim + k] = v * g;
                ss[b] += v * v;
            }
        }
    }
#pragma unroll
    for (int b = 0; b < NB; b++) {
        ss[b] = warp_sum(ss[b]);
        if (lane == 0) red[warp][b] = ss[b];
    }
    __syncthreads();
    float rinv[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) {
        float t = 0.0f;
#pragma unroll
        for (int i = 0; i < DEC_WARPS; i++) t += red[i][b];
        rinv[b] = rsqrtf(t / (float)p.dim + p.eps);
    }
    unsigned long long key = 0ull; /* the fed-back argmax (conv == 0, one sequence) */
    if constexpr (LOOP && !CONV && NB == 1) {
        const int groups = (p.rows + DEC_WARPS * R - 1) / (DEC_WARPS * R);
        for (int g = blockIdx.x; g < groups; g += gridDim.x) {
            float acc[R][NB];
#pragma unroll
            for (int r = 0; r < R; r++) acc[r][0] = 0.0f;
            wr.run(lane, h, p.dim, acc);
            const int gr0 = (g * DEC_WARPS + warp) * R, gn = g + (int)gridDim.x;
            if (gn < groups) {
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int row = (gn * DEC_WARPS + warp) * R + r;
                    wr.w[r] = (const T *)p.w + (size_t)(row < p.rows ? row : p.rows - 1) * p.dim;
                }
                wr.load(0, lane);
            }
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int row = gr0 + r;
                if (row < p.rows && lane == 0) {
                    const float x = acc[r][0] * rinv[0] + (p.bias ? p.bias[row] : 0.0f);
                    p.out[row] = x;
                    key = max(key, argmax_key(x, row));
                }
            }
        }
    } else {
        float acc[R][NB];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int b = 0; b < NB; b++) acc[r][b] = 0.0f;
        wr.run(lane, h, p.dim, acc);
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int row = row0 + r;
            if (row >= p.rows) break;
            const float bias = p.bias ? p.bias[row] : 0.0f;
#pragma unroll
            for (int b = 0; b < NB; b++) {
                if (lane != (EPI ? r * NB + b : b)) continue;
                const float x = acc[r][b] * rinv[b] + bias;
                if (!CONV) {
                    p.out[(size_t)b * p.ldo + row] = x;
                    key = max(key, argmax_key(x, row));
                } else if (row >= p.di) {
                    p.xz[(size_t)b * 2 * p.di + row] = x;
                } else {
                    /* (at 48 registers, XS, the slot held across the gemv spills: loaded again) */
                    const int slot = CP && !XS && p.dc - 1 <= K1_EPI_W ? cps : p.slots[b];
                    float uv = 0.0f;
                    if (EPI && CP && slot >= 0 && p.dc - 1 <= K1_EPI_W) {
                        const int W = p.dc - 1;
                        const float *cp = k1_cp_at<NB, R, XS>(h, p.dim, warp, lane);
                        cp_async_wait_all(); /* this lane's copies (long arrived) */
                        uv = silu_f(conv_step_from<K1_EPI_W>(cp,
                                                             p.conv_state + (size_t)slot * p.conv_slot_stride +
                                                                 (size_t)row * W,
                                                             cp + K1_EPI_W, p.conv_b ? cp[2 * K1_EPI_W + 1] : 0.0f, x,
                                                             W));
                    } else if (EPI && slot >= 0 && p.dc - 1 <= K1_EPI_W) {
                        const int W = p.dc - 1;
                        uv = silu_f(conv_step<K1_EPI_W>(p.conv_state + (size_t)slot * p.conv_slot_stride +
                                                            (size_t)row * W,
                                                        p.conv_w + (size_t)row * p.dc,
                                                        p.conv_b ? p.conv_b[row] : 0.0f, x, W));
                    } else if (slot >= 0) {
                        const int W = p.dc - 1;
                        float *s = p.conv_state + (size_t)slot * p.conv_slot_stride + (size_t)row * W;
                        const float *cw = p.conv_w + (size_t)row * p.dc;
                        float c = p.conv_b ? p.conv_b[row] : 0.0f;
                        for (int k = 0; k < W; k++) c += cw[k] * s[k];
                        c += cw[W] * x;
                        for (int k = 0; k + 1 < W; k++) s[k] = s[k + 1];
                        s[W - 1] = x;
                        uv = silu_f(c);
                    }
                    p.u[(size_t)b * p.di + row] = uv;
                    us[b][warp * R + r] = uv;
                }
            }
        }
    }
    if (!CONV && NB == 1 && p.feed_pos) {
        /* the block's best key to feed_pos[2..3] (atomic max); the last
         * block to count itself feeds the id back and clears the max */
        __shared__ unsigned long long bk[DEC_WARPS];
        if (lane == 0) bk[warp] = key;
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long *mx = reinterpret_cast<unsigned long long *>(p.feed_pos + 2);
            unsigned *cnt = reinterpret_cast<unsigned *>(p.feed_pos + 4);
#pragma unroll
            for (int i = 1; i < DEC_WARPS; i++) key = max(key, bk[i]);
            atomicMax(mx, key);
            __threadfence();
            if (atomicAdd(cnt, 1u) == gridDim.x - 1) {
                __threadfence();
                const int id = argmax_key_index(atomicExch(mx, 0ull));
                p.feed_ids[0] = id;
                p.feed_log[p.feed_pos[0]] = id;
                p.feed_pos[0] += 1;
                *cnt = 0u;
            }
        }
        PROF_END(p.prof, PROF_HEAD);
        return;
    }
    if (!xblock) {
        PROF_END(p.prof, CONV ? PROF_K1Z : PROF_HEAD);
        return;
    }
    /* dbc[b][j] += x_proj[j][blk0 .. +8R) . u[b][blk0 .. +8R): threads
     * (Rj .. Rj+R-1) take the R vectors of row j */
    __syncthreads();
    for (int q0 = 0, i = 0; q0 < R * p.nb; q0 += DEC_THREADS, i++) {
        const int q = q0 + threadIdx.x;
        uint4 v = XS ? (q < R * p.nb ? xs[q] : make_uint4(0, 0, 0, 0)) : i == 0 ? xw[0] : xw[1];
        if (i >= 2)
            v = q < R * p.nb ? ld_stream((const T *)p.x_proj + (size_t)(q / R) * p.di + blk0 + (q % R) * 8)
                             : make_uint4(0, 0, 0, 0);
        float wf[8];
        unpack8(v, wf, T());
#pragma unroll
        for (int b = 0; b < NB; b++) {
            float part = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) part = fmaf(wf[e], us[b][(q % R) * 8 + e], part);
#pragma unroll
            for (int o = R >> 1; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
            if (q < R * p.nb && q % R == 0)
                atomicAdd(p.dbc + (size_t)b * p.nb + q / R, part);
        }
    }
    PROF_END(p.prof, PROF_K1X);
}

template <typename T, int NB, int CONV, int CH, int R = DEC_ROWS>
__global__ void __launch_bounds__(DEC_THREADS) k_norm_gemv(K1Params p) {
    norm_gemv_body<T, NB, CONV, CH, R, false>(p);
}
/* with the vector RMSNorm (one sequence, the default), held to the scalar kernel's
 * blocks per SM (64 registers with CH 4, 128 with CH 8) */
template <typename T, int NB, int CONV, int CH, bool LOOP = false, bool EPI = false, bool CP = false>
__global__ void __launch_bounds__(DEC_THREADS, CH == 4 ? 4 : 2) k_norm_gemv_vec(K1Params p) {
    norm_gemv_body<T, NB, CONV, CH, DEC_ROWS, true, LOOP, EPI, false, CP>(p);
}
/* the same at 5 blocks per SM (CH 4, x_proj columns in shared memory) */
template <typename T, int NB, int CONV, bool EPI = false, bool CP = false>
__global__ void __launch_bounds__(DEC_THREADS, 5) k_norm_gemv_vec5(K1Params p) {
    norm_gemv_body<T, NB, CONV, 4, DEC_ROWS, true, false, EPI, true, CP>(p);
}

/* the first PRE of this thread's 16-byte vectors of the dt_proj row wr
 * (vectors t, t + G, ...; nv of them in the row), before the wait */
template <typename T, int PRE>
static __device__ __forceinline__ void dt_load(uint4 (&dw)[PRE], const T *wr, int nv, int t, int G) {
#pragma unroll
    for (int i = 0; i < PRE; i++) {
        const int v = t + i * G;
        dw[i] = v < nv ? *reinterpret_cast<const uint4 *>(wr + v * 8) : make_uint4(0, 0, 0, 0);
    }
}

/* dt[b] = this thread's share of the dt_proj row wr (R weights) against
 * the staged dbc rows (NB, nb; dt_low first): with nv = R / 8 vectors the
 * vectors t, t + G, ..., the first PRE of them from dw (loaded before the
 * wait), the rest from global memory; with nv = 0 (R % 8 != 0) the weights
 * t, t + G, ... one by one. The caller sums the G threads' shares. */
template <typename T, int NB, int PRE>
static __device__ __forceinline__ void dt_dot(float (&dt)[NB], const uint4 (&dw)[PRE], const T *wr, int R, int nv,
                                              int t, int G, const float *dbc, int nb) {
#pragma unroll
    for (int b = 0; b < NB; b++) dt[b] = 0.0f;
    if (nv) {
#pragma unroll
        for (int i = 0; i < PRE; i++) {
            const int v = t + i * G;
            if (v >= nv) break;
            float wf[8];
            unpack8(dw[i], wf, T());
#pragma unroll
            for (int b = 0; b < NB; b++)
#pragma unroll
                for (int e = 0; e < 8; e++) dt[b] = fmaf(wf[e], dbc[b * nb + v * 8 + e], dt[b]);
        }
        for (int v = t + PRE * G; v < nv; v += G) {
            float wf[8];
            unpack8(*reinterpret_cast<const uint4 *>(wr + v * 8), wf, T());
#pragma unroll
            for (int b = 0; b < NB; b++)
#pragma unroll
                for (int e = 0; e < 8; e++) dt[b] = fmaf(wf[e], dbc[b * nb + v * 8 + e], dt[b]);
        }
    } else {
        for (int k = t; k < R; k += G) {
            const float wk = tof(wr[k]);
#pragma unroll
            for (int b = 0; b < NB; b++) dt[b] = fmaf(wk, dbc[b * nb + k], dt[b]);
        }
    }
}

/* ---- K3: dt_proj + softplus + state update + D*u + gate, G = d_state/4
 * threads per channel, each owning 4 states ---- */
struct K3Params {
    int di, N, R, nb, G;
    const void *dt_w;      /* (di, R) */
    const float *dt_bias, *A, *D;
    const float *dbc, *u, *xz; /* dbc: (NB, nb) */
    float *ssm;
    long long ssm_slot_stride;
    const int32_t *slots;
    float *y;
};

#define K3_PRE 8 /* dt_proj vectors per thread held in registers */

template <typename T, int NB>
__global__ void __launch_bounds__(DEC_THREADS) k_ssm(K3Params p) {
    __shared__ float dbc[NB * DEC_MAX_DBC]; /* (NB, nb): read by every thread, staged once */
    const int G = p.G;
    const int gid = (blockIdx.x * DEC_THREADS + threadIdx.x) / G, t = threadIdx.x % G;
    const bool active = gid < p.di;
    const int c = active ? gid : p.di - 1;
    /* before the wait: everything the previous kernel (K1) does not write */
    const float *Ap = p.A + (size_t)c * p.N + 4 * t;
    const float4 A = make_float4(Ap[0] * kLog2e, Ap[1] * kLog2e, Ap[2] * kLog2e, Ap[3] * kLog2e);
    const float D = p.D[c], dtb = p.dt_bias ? p.dt_bias[c] : 0.0f;
    const T *wr = (const T *)p.dt_w + (size_t)c * p.R;
    const int nv = (p.R & 7) == 0 ? p.R / 8 : 0;
    uint4 dw[K3_PRE];
    dt_load(dw, wr, nv, t, G);
    int slot[NB];
    float4 st[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) {
        slot[b] = p.slots[b];
        st[b] = slot[b] >= 0 ? *reinterpret_cast<const float4 *>(p.ssm + (size_t)slot[b] * p.ssm_slot_stride +
                                                                  (size_t)c * p.N + 4 * t)
                             : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    pdl_sync();
    for (int i = threadIdx.x; i < NB * p.nb; i += DEC_THREADS) dbc[i] = p.dbc[i];
    __syncthreads();
    /* dt projection: this thread's share of the R weights */
    float dt[NB];
    dt_dot<T, NB, K3_PRE>(dt, dw, wr, p.R, nv, t, G, dbc, p.nb);
#pragma unroll
    for (int b = 0; b < NB; b++) {
        float d = dt[b];
        for (int o = G >> 1; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        const float delta = softplus_f(d + dtb);
        const float uv = p.u[(size_t)b * p.di + c];
        const float *Bp = dbc + (size_t)b * p.nb + p.R + 4 * t, *Cp = Bp + p.N;
        float part = 0.0f;
        if (active && slot[b] >= 0) {
            float4 s = st[b];
            const float du = delta * uv;
            s.x = fast_ex2(delta * A.x) * s.x + du * Bp[0];
            s.y = fast_ex2(delta * A.y) * s.y + du * Bp[1];
            s.z = fast_ex2(delta * A.z) * s.z + du * Bp[2];
            s.w = fast_ex2(delta * A.w) * s.w + du * Bp[3];
            *reinterpret_cast<float4 *>(p.ssm + (size_t)slot[b] * p.ssm_slot_stride + (size_t)c * p.N + 4 * t) = s;
            part = s.x * Cp[0] + s.y * Cp[1] + s.z * Cp[2] + s.w * Cp[3];
        }
        for (int o = G >> 1; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
        if (active && t == 0) {
            const float z = p.xz[(size_t)b * 2 * p.di + p.di + c];
            p.y[(size_t)b * p.di + c] = slot[b] >= 0 ? (part + D * uv) * silu_f(z) : 0.0f;
        }
    }
}

/* ---- K4: residual (NB, dm) += out_proj (dm, di) . y (+ bias); dbc = 0.
 * R rows per warp; R == 1 double-buffers its chunks (more warps, each with
 * its next loads in flight: 2560 x 5120 in 9.6 us against 10.3 for the
 * single-buffered loop and ~12.5 for two rows per warp, dev/cuda/bench_gemv.cu). ---- */
template <typename T, int NB, int CH, int R>
__global__ void __launch_bounds__(DEC_THREADS) k_outproj(const T *w, const float *bias, const float *y,
                                                        float *residual, int dm, int di, float *dbc, int ndbc) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = (blockIdx.x * DEC_WARPS + warp) * R;
    WarpRows<T, NB, CH, R> wr;
    wr.nvec = di / 8;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r < dm ? row0 + r : dm - 1;
        wr.w[r] = w + (size_t)row * di;
    }
    wr.load(0, lane);
    /* the residual rows this lane adds to were written two kernels back */
    float rv[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r < dm ? row0 + r : dm - 1;
        rv[r] = lane < NB ? residual[(size_t)lane * dm + row] + (bias ? bias[row] : 0.0f) : 0.0f;
    }
    pdl_sync();
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < ndbc; i += DEC_THREADS) dbc[i] = 0.0f;
    float acc[R][NB];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int b = 0; b < NB; b++) acc[r][b] = 0.0f;
    wr.template run<R == 1>(lane, y, di, acc);
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int row = row0 + r;
        if (row >= dm) break;
#pragma unroll
        for (int b = 0; b < NB; b++)
            if (lane == b) residual[(size_t)b * dm + row] = rv[r] + acc[r][b];
    }
}

/* ---- K34 (the default, see k34_cb): K3 and K4 in one
 * kernel, split by channels instead of by output rows. A block owns CB
 * channels c0..: their dt_proj + softplus + state update + D*u + gate (as
 * K3; y of its CB channels stays in shared memory), then its split-K share
 * of out_proj: for every row, out_proj[row][c0 .. c0+CB) . y[c0 .. c0+CB),
 * added into the residual with 16-byte reductions of 4 rows
 * (red.global.add.v4.f32 on sm_90). The block's weight slice streams from
 * before the wait (DEPTH rounds of 4 rows per thread in flight), so it
 * overlaps K1's tail and the state update's latency chain, and one kernel
 * boundary per layer goes. The last block to stage dbc zeroes it for the
 * next layer (its ticket: the counter after dbc). With 64 channels the
 * rows are split over rs blocks per slice: each computes the slice's state
 * update (the same values from the same inputs) and the last of them to get
 * past it writes the new state at its end (a ticket per slice), so no block
 * can overwrite a state another has yet to read. The residual's sums come
 * in a different order each run (rounding-level differences). ---- */
struct K34Params {
    int dm, di, N, R, nb;
    int rs, rows; /* blocks per channel slice, rows of out_proj per block (a multiple of 4) */
    int late0, pre_late; /* blocks from late0 on request pre_late rounds before the wait, the rest after (0: all) */
    const void *dt_w; /* (di, R) */
    const float *dt_bias, *A, *D;
    float *dbc;       /* (NB, nb), zeroed here by the last block */
    unsigned *ticket; /* zero on entry and on return: [0] the grid's, [1 + slice] each slice's (rs > 1) */
    const float *u, *xz;
    float *ssm;
    long long ssm_slot_stride;
    const int32_t *slots;
    const void *w;    /* out_proj (dm, di) */
    const float *bias;
    float *residual;  /* (NB, dm) */
    unsigned long long *prof; /* the block timeline ring, or NULL */
};

#define K34_SPT 4 /* states per thread at most: N <= K34_SPT * (DEC_THREADS / CB) */
#define K34_PRE 5 /* dt_proj vectors per thread held in registers: 2.8b's rows of 160 in full at 64 channels */
#define K34_RB64 (DEC_WARPS * 4 * 4) /* out_proj rows a round at 64 channels (k_ssm_out's RB: 4 row groups of 4 a warp) */

/* 4 rows of the thread's 16-byte column of the slice, round it */
template <typename T, int CB>
static __device__ __forceinline__ void k34_load(uint4 (&b)[4], const T *w, int it, int rw, int dm, int di) {
    constexpr int RB = DEC_WARPS * (32 / (CB / 8)) * 4;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int row = it * RB + rw + k;
        row = row < dm ? row : dm - 1;
        b[k] = ld_stream(w + (size_t)row * di);
    }
}

static __device__ __forceinline__ void red_add4(float *p, float a, float b, float c, float d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float4 *>(p), make_float4(a, b, c, d));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
    atomicAdd(p + 2, c);
    atomicAdd(p + 3, d);
#endif
}

/* CHN (the default; MS6_DEC_K34_CHAIN=0: off): the chain after the wait
 * in one round trip, u and z requested with dbc, and the tickets' results
 * read at the end (one barrier there for both); measured apart each changed
 * nothing (HOIST; 0938b1d's late tickets), together (H200, ms/token, on /
 * off, with EPI): 130m 0.168 / 0.172, 1.4b 0.988 / 0.990, 2.8b 1.850 /
 * 1.853 */
/* LT (MS6_DEC_K34_LATE, k34_launch): p.pre_late rounds before the wait in
 * the blocks from p.late0 on, the rest of the DEPTH right after it */
template <typename T, int NB, int CB, int DEPTH, bool CHN = false, bool LT = false>
__global__ void __launch_bounds__(DEC_THREADS, 2) k_ssm_out(K34Params p) {
    constexpr int TPC = DEC_THREADS / CB; /* threads per channel in the state update */
    constexpr int CC = CB / 8;            /* lanes per out_proj row, 16 bytes each */
    constexpr int RG = 32 / CC;           /* row groups of 4 per warp */
    static_assert(CB != 64 || DEC_WARPS * RG * 4 == K34_RB64, "k34_launch counts rounds of K34_RB64 rows");
    __shared__ float dbcs[NB * DEC_MAX_DBC];
    __shared__ float ys[NB][CB];
    __shared__ int last;
    PROF_BEGIN(p.prof);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    /* rs blocks share a channel slice, each with rows r0 .. r1 of out_proj;
     * with rs > 1 the last of them to finish the state update writes it */
    const int c0 = (blockIdx.x / p.rs) * CB, rsi = blockIdx.x % p.rs;
    const int r0 = rsi * p.rows, r1 = min(r0 + p.rows, p.dm);
    /* out_proj: lane (g, cc) of a warp takes rows r0 + it * RB + rw + 0..3
     * of columns c0 + 8 cc .. +8; the first DEPTH rounds go out first */
    const int cc = lane % CC, rw = r0 + (warp * RG + lane / CC) * 4;
    const int nit = (r1 - r0 + DEC_WARPS * RG * 4 - 1) / (DEC_WARPS * RG * 4);
    const T *wb = (const T *)p.w + c0 + cc * 8;
    uint4 buf[DEPTH][4];
    const int pre = LT && (int)blockIdx.x >= p.late0 ? p.pre_late : DEPTH;
#pragma unroll
    for (int d = 0; d < DEPTH; d++)
        if (d < nit && d < pre) k34_load<T, CB>(buf[d], wb, d, rw, p.dm, p.di);
    /* the state update: TPC threads per channel, states t, t + TPC, ... */
    const int cl = tid / TPC, t = tid % TPC, c = c0 + cl;
    float A[K34_SPT], st[NB][K34_SPT];
    int slot[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) slot[b] = p.slots[b];
#pragma unroll
    for (int j = 0; j < K34_SPT; j++) {
        const int sidx = t + j * TPC;
        A[j] = sidx < p.N ? p.A[(size_t)c * p.N + sidx] * kLog2e : 0.0f;
#pragma unroll
        for (int b = 0; b < NB; b++)
            st[b][j] = sidx < p.N && slot[b] >= 0
                           ? p.ssm[(size_t)slot[b] * p.ssm_slot_stride + (size_t)c * p.N + sidx]
                           : 0.0f;
    }
    const float D = p.D[c], dtb = p.dt_bias ? p.dt_bias[c] : 0.0f;
    const T *wr = (const T *)p.dt_w + (size_t)c * p.R;
    const int nv = (p.R & 7) == 0 ? p.R / 8 : 0;
    uint4 dw[K34_PRE];
    dt_load(dw, wr, nv, t, TPC);
    pdl_sync();
    PROF_WAITED(p.prof);
    if (LT)
#pragma unroll
        for (int d = 0; d < DEPTH; d++) /* the rest of the first DEPTH rounds */
            if (d < nit && d >= pre) k34_load<T, CB>(buf[d], wb, d, rw, p.dm, p.di);
    float uh[NB], zh[NB]; /* CHN: u and z with dbc */
    if (CHN)
#pragma unroll
        for (int b = 0; b < NB; b++) {
            uh[b] = p.u[(size_t)b * p.di + c];
            zh[b] = t == 0 ? p.xz[(size_t)b * 2 * p.di + p.di + c] : 0.0f;
        }
    for (int i = tid; i < NB * p.nb; i += DEC_THREADS) dbcs[i] = p.dbc[i];
    __syncthreads();
    /* every block has its copy of dbc once the ticket reaches the grid */
    unsigned tk = 0u, stk = 0u;
    if (CHN) {
        if (tid == 0) tk = atomicAdd(p.ticket, 1u); /* read at the end */
    } else if (tid == 0) {
        last = atomicAdd(p.ticket, 1u) == gridDim.x - 1;
    }
    float dt[NB];
    dt_dot<T, NB, K34_PRE>(dt, dw, wr, p.R, nv, t, TPC, dbcs, p.nb);
#pragma unroll
    for (int b = 0; b < NB; b++) {
        float d = dt[b];
#pragma unroll
        for (int o = TPC >> 1; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        const float delta = softplus_f(d + dtb);
        const float uv = CHN ? uh[b] : p.u[(size_t)b * p.di + c], du = delta * uv;
        const float *Bv = dbcs + b * p.nb + p.R, *Cv = Bv + p.N;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < K34_SPT; j++) {
            const int sidx = t + j * TPC;
            if (sidx < p.N && slot[b] >= 0) {
                const float h = fast_ex2(delta * A[j]) * st[b][j] + du * Bv[sidx];
                if (p.rs == 1) p.ssm[(size_t)slot[b] * p.ssm_slot_stride + (size_t)c * p.N + sidx] = h;
                st[b][j] = h;
                part = fmaf(h, Cv[sidx], part);
            }
        }
#pragma unroll
        for (int o = TPC >> 1; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
        if (t == 0) {
            const float z = CHN ? zh[b] : p.xz[(size_t)b * 2 * p.di + p.di + c];
            ys[b][cl] = slot[b] >= 0 ? (part + D * uv) * silu_f(z) : 0.0f;
        }
    }
    __syncthreads();
    /* rs > 1: the slice's blocks all read the old state before their wait;
     * the last of them to get here writes the new one (at the end) */
    __shared__ int slast;
    if (CHN) {
        if (p.rs > 1 && tid == 0) stk = atomicAdd(p.ticket + 1 + blockIdx.x / p.rs, 1u); /* read at the end */
    } else if (p.rs > 1 && tid == 0) {
        slast = atomicAdd(p.ticket + 1 + blockIdx.x / p.rs, 1u) == (unsigned)p.rs - 1;
        if (slast) p.ticket[1 + blockIdx.x / p.rs] = 0u;
    }
    float yv[NB][8];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int e = 0; e < 8; e++) yv[b][e] = ys[b][cc * 8 + e];
    const bool addb = p.bias && c0 == 0;
    for (int it0 = 0; it0 < nit; it0 += DEPTH) {
#pragma unroll
        for (int d = 0; d < DEPTH; d++) {
            const int it = it0 + d;
            if (it >= nit) break; /* the same for the whole block */
            float part[4][NB];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float wf[8];
                unpack8(buf[d][k], wf, T());
#pragma unroll
                for (int b = 0; b < NB; b++) {
                    float a = 0.0f;
#pragma unroll
                    for (int e = 0; e < 8; e++) a = fmaf(wf[e], yv[b][e], a);
                    part[k][b] = a;
                }
            }
            if (it + DEPTH < nit) k34_load<T, CB>(buf[d], wb, it + DEPTH, rw, p.dm, p.di);
#pragma unroll
            for (int o = CC >> 1; o > 0; o >>= 1)
#pragma unroll
                for (int k = 0; k < 4; k++)
#pragma unroll
                    for (int b = 0; b < NB; b++) part[k][b] += __shfl_xor_sync(0xffffffffu, part[k][b], o);
            const int row = it * (DEC_WARPS * RG * 4) + rw;
            if (row < r1) {
#pragma unroll
                for (int b = 0; b < NB; b++) {
                    if (cc != b) continue;
                    float v[4];
#pragma unroll
                    for (int k = 0; k < 4; k++) v[k] = part[k][b] + (addb ? p.bias[row + k] : 0.0f);
                    if (!PROBE(1)) red_add4(p.residual + (size_t)b * p.dm + row, v[0], v[1], v[2], v[3]);
                }
            }
        }
    }
    if (CHN) {
        if (tid == 0) {
            last = tk == gridDim.x - 1;
            if (p.rs > 1) {
                slast = stk == (unsigned)p.rs - 1;
                if (slast) p.ticket[1 + blockIdx.x / p.rs] = 0u;
            }
        }
        __syncthreads();
    }
    if (last) {
        for (int i = tid; i < NB * p.nb; i += DEC_THREADS) p.dbc[i] = 0.0f;
        if (tid == 0) *p.ticket = 0u;
    }
    if (p.rs > 1) {
        if (!CHN) __syncthreads();
        if (slast && !PROBE(2))
#pragma unroll
            for (int b = 0; b < NB; b++)
#pragma unroll
                for (int j = 0; j < K34_SPT; j++) {
                    const int sidx = t + j * TPC;
                    if (sidx < p.N && slot[b] >= 0)
                        p.ssm[(size_t)slot[b] * p.ssm_slot_stride + (size_t)c * p.N + sidx] = st[b][j];
                }
    }
    PROF_END(p.prof, PROF_K34);
}

/* ---- launch helpers ---- */

/* Queues kern with programmatic dependent launch (sm_90+, unless MS6_CUDA_PDL=0). */
template <typename... KArgs, typename... Args>
static cudaError_t launch(ms6_cuda_ctx *c, void (*kern)(KArgs...), int grid, size_t smem, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)grid);
    cfg.blockDim = dim3(DEC_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c->stream;
    cudaLaunchAttribute at[1] = {};
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    /* not on the legacy default stream (the eager path of MS6_CUDA_GRAPH=0) */
    const int legacy = c->stream == 0 || c->stream == cudaStreamLegacy;
    cfg.numAttrs = (c->prop.major >= 9 && !legacy && !ms6_env_is("MS6_CUDA_PDL", "0")) ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kern, args...);
}

/* K1's vector RMSNorm (one sequence; MS6_DEC_VEC=0: the scalar loop):
 * 16-byte aligned norm weights and residual rows, dim within K1_VEC float4s
 * per thread. Measured (H200, bench generate, ms/token, vector / scalar):
 * 130m 0.229 / 0.230, 1.4b 1.147 / 1.180, 2.8b 1.991 / 2.114. */
static int k1_vec(const float *norm, const float *residual, int dim) {
    return !ms6_env_is("MS6_DEC_VEC", "0") && ms6_aligned16(norm) && ms6_aligned16(residual) && dim % 4 == 0 &&
           dim <= 4 * K1_VEC * DEC_THREADS;
}

static int gemv_grid(int rows) { return (rows + DEC_BLOCK_ROWS - 1) / DEC_BLOCK_ROWS; }

/* K1 at 5 blocks per SM (k_norm_gemv_vec5) where its rows need more than
 * one wave at 4 (2.8b: 640 blocks, 528 slots); MS6_DEC_K1_5=0|1 forces
 * it off or on. Measured (H200, ms/token, with EPI and K34's chain, 5 / 4
 * blocks per SM): 2.8b 1.849 / 1.915, 1.4b (one wave at 4) 1.004 / 0.987 */
static bool k1_five(const ms6_cuda_ctx *c, int rows) {
    if (ms6_env_is("MS6_DEC_K1_5", "0")) return false;
    if (ms6_env_is("MS6_DEC_K1_5", "1")) return true;
    return gemv_grid(rows) > 4 * c->prop.multiProcessorCount;
}

/* K34's channels per block, 0 for K3 + K4 instead (MS6_DEC_K34=0; =1 or
 * unset: K34). 32 channels (64-byte row pieces of out_proj, a block per
 * slice) up to d_inner 2048, else 64 (128-byte pieces, the rows split over
 * up to 8 blocks per slice to fill the SMs twice); MS6_DEC_K34_CB=16|32|64
 * forces a width. Measured (H200, bench generate --prompt 32 --gen 256,
 * ms/token; K3 + K4 / 32 / 64 channels; 16 channels slower everywhere):
 * 130m 0.262 / 0.232 / 0.266, 370m 0.592 / 0.561 / -, 790m 0.927 / 0.852 /
 * 0.820, 1.4b 1.179 / 1.246 / 1.183, 2.8b 2.228 / 2.230 / 2.127. */
static int k34_cb(const ms6_mixer_step_params *p) {
    if (ms6_env_is("MS6_DEC_K34", "0")) return 0;
    const int cb = ms6_env_is("MS6_DEC_K34_CB", "16")   ? 16
                   : ms6_env_is("MS6_DEC_K34_CB", "32") ? 32
                   : ms6_env_is("MS6_DEC_K34_CB", "64") ? 64
                   : p->d_inner <= 2048                 ? 32
                                                        : 64;
    if (p->d_model % 4 || !ms6_aligned16(p->residual)) return 0;
    for (int w = cb; w >= 16; w /= 2) /* a narrower slice where the width does not fit */
        if (p->d_inner % w == 0 && p->d_state <= K34_SPT * (DEC_THREADS / w)) return w;
    return 0;
}


/* K34 at cb channels per block (k34_cb) */
template <typename T, int NB>
static cudaError_t k34_launch(ms6_cuda_ctx *c, const ms6_mixer_step_params *p, int cb) {
    K34Params k;
    k.dm = (int)p->d_model;
    k.di = (int)p->d_inner;
    k.N = (int)p->d_state;
    k.R = (int)p->dt_rank;
    k.nb = k.R + 2 * k.N;
    k.dt_w = p->dt_proj;
    k.dt_bias = p->dt_bias;
    k.A = p->A;
    k.D = p->D;
    k.dbc = p->dbc;
    k.ticket = (unsigned *)(p->dbc + p->n * k.nb);
    k.u = p->u;
    k.xz = p->xz;
    k.ssm = p->ssm_state;
    k.ssm_slot_stride = p->ssm_slot_stride;
    k.slots = p->slots;
    k.w = p->out_proj;
    k.bias = p->out_proj_bias;
    k.residual = p->residual;
    k.prof = (unsigned long long *)c->dec_prof;
    const int slices = k.di / cb;
    k.rs = 1;
    if (cb == 64) {
        k.rs = 2 * c->prop.multiProcessorCount / slices;
        k.rs = k.rs < 1 ? 1 : k.rs > 8 ? 8 : k.rs;
        if (slices >= MS6_DBC_EXTRA) k.rs = 1; /* one ticket per slice after the grid's */
    }
    k.rows = ((k.dm + k.rs - 1) / k.rs + 3) / 4 * 4;
    const int blocks = slices * k.rs;
    /* LATE (template LT): the blocks from the SM count on (the second
     * block of an SM, resident only as K1's last blocks leave) request
     * pre_late rounds before the wait and the others right after it, so
     * that their wait returns sooner and the rest arrive during the chain.
     * The default (2) where a block has more than 4 rounds at 64 channels
     * (2.8b's 7); MS6_DEC_K34_LATE=0 off, =1|2|3 forces N. Measured (H200,
     * ms/token, 16e8d59, 130m / 1.4b / 2.8b): 2 0.159 / 0.932 / 1.801, 1
     * 0.159 / 0.933 / 1.814, off 0.159 / 0.924-0.925 / 1.827-1.831 (1.4b's
     * late blocks pass their wait 1.6-2.4 us after K1's end, docs/kernel-notes.md) */
    const char *late = getenv("MS6_DEC_K34_LATE");
    const int rounds = (k.rows + K34_RB64 - 1) / K34_RB64; /* a block's at 64 channels */
    k.pre_late = late ? atoi(late) : cb == 64 && rounds > 4 ? 2 : 0;
    k.pre_late = k.pre_late < 0 ? 0 : k.pre_late > 3 ? 3 : k.pre_late;
    k.late0 = c->prop.multiProcessorCount;
    const bool chn = !ms6_env_is("MS6_DEC_K34_CHAIN", "0");
    /* one sequence at 64 channels: 4 register rounds of 128 rows before the
     * wait where a block has more than 4 (2.8b: 7), else 3 (two sequences:
     * 3, where 4 spill); MS6_DEC_K34_DEPTH=3|4 forces either. Measured (H200,
     * ms/token, 4 / 3): before K1's CP, 1.4b (4 rounds) 0.980-0.981 /
     * 0.986-0.987, 2.8b 1.849 / 1.846-1.847; with it (25f479c), 1.4b
     * 0.944-0.945 / 0.923, 2.8b 1.810-1.811 / 1.818: with K1 ending
     * earlier, K34's last blocks become resident ~1 us before K1's end and
     * their wait returns with their rounds (1.6-2.4 us after K1's end), so
     * fewer rounds before the wait start their chain sooner */
    if constexpr (NB == 1) {
        const bool d4 = ms6_env_is("MS6_DEC_K34_DEPTH", "4") || (!ms6_env_is("MS6_DEC_K34_DEPTH", "3") && rounds > 4);
        if (cb == 64 && chn && d4) {
            return launch(c, k.pre_late ? k_ssm_out<T, NB, 64, 4, true, true> : k_ssm_out<T, NB, 64, 4, true>,
                          blocks, 0, k);
        }
        if (cb == 64 && chn && k.pre_late) return launch(c, k_ssm_out<T, NB, 64, 3, true, true>, blocks, 0, k);
    }
    if (cb == 64) return launch(c, chn ? k_ssm_out<T, NB, 64, 3, true> : k_ssm_out<T, NB, 64, 3>, blocks, 0, k);
    if (cb == 32) return launch(c, chn ? k_ssm_out<T, NB, 32, 3, true> : k_ssm_out<T, NB, 32, 3>, blocks, 0, k);
    return launch(c, k_ssm_out<T, NB, 16, 3>, blocks, 0, k);
}

/* CH1: K1's vectors in flight (rows of d_model), CH4: K4's (rows of d_inner) */
template <typename T, int NB, int CH1, int CH4>
static cudaError_t mixer_launch(ms6_cuda_ctx *c, const ms6_mixer_step_params *p) {
    const int dm = (int)p->d_model, di = (int)p->d_inner, N = (int)p->d_state, R = (int)p->dt_rank;
    const int nb = R + 2 * N;
    K1Params k1;
    memset(&k1, 0, sizeof k1);
    k1.residual = p->residual;
    k1.norm = p->norm;
    k1.eps = p->eps;
    k1.dim = dm;
    k1.rows = 2 * di;
    k1.w = p->in_proj;
    k1.bias = p->in_proj_bias;
    k1.di = di;
    k1.dc = (int)p->d_conv;
    k1.nb = nb;
    k1.conv_w = p->conv_w;
    k1.conv_b = p->conv_b;
    k1.conv_state = p->conv_state;
    k1.conv_slot_stride = p->conv_slot_stride;
    k1.slots = p->slots;
    k1.u = p->u;
    k1.xz = p->xz;
    k1.x_proj = p->x_proj;
    k1.dbc = p->dbc;
    k1.prof = (unsigned long long *)c->dec_prof;
    cudaError_t e;
    bool vec = false;
    if constexpr (NB == 1) { /* (with 2 rows the vector kernel spills at 64 registers) */
        vec = k1_vec(p->norm, p->residual, dm);
        const bool epi = !ms6_env_is("MS6_DEC_EPI", "0");
        const bool cp = epi && !ms6_env_is("MS6_DEC_CP", "0"); /* CP's copies after the other shared memory */
        const size_t cpb = cp ? sizeof(float) * DEC_WARPS * DEC_ROWS * NB * K1_CP : 0;
        if (vec && CH1 == 4 && k1_five(c, 2 * di) && 2 * DEC_THREADS >= DEC_ROWS * nb)
            e = launch(c,
                       cp    ? k_norm_gemv_vec5<T, NB, 1, true, true>
                       : epi ? k_norm_gemv_vec5<T, NB, 1, true>
                             : k_norm_gemv_vec5<T, NB, 1>,
                       gemv_grid(2 * di), 2 * sizeof(float) * NB * dm + 2 * DEC_THREADS * sizeof(uint4) + cpb, k1);
        else if (vec)
            e = launch(c,
                       cp    ? k_norm_gemv_vec<T, NB, 1, CH1, false, true, true>
                       : epi ? k_norm_gemv_vec<T, NB, 1, CH1, false, true>
                             : k_norm_gemv_vec<T, NB, 1, CH1>,
                       gemv_grid(2 * di), sizeof(float) * NB * dm + cpb, k1);
    }
    if (!vec) e = launch(c, k_norm_gemv<T, NB, 1, CH1>, gemv_grid(2 * di), sizeof(float) * NB * dm, k1);
    if (e != cudaSuccess) return e;
    const int cb = k34_cb(p);
    if (cb) return k34_launch<T, NB>(c, p, cb);
    K3Params k3;
    k3.di = di;
    k3.N = N;
    k3.R = R;
    k3.nb = nb;
    k3.G = N / 4;
    k3.dt_w = p->dt_proj;
    k3.dt_bias = p->dt_bias;
    k3.A = p->A;
    k3.D = p->D;
    k3.dbc = p->dbc;
    k3.u = p->u;
    k3.xz = p->xz;
    k3.ssm = p->ssm_state;
    k3.ssm_slot_stride = p->ssm_slot_stride;
    k3.slots = p->slots;
    k3.y = p->y;
    e = launch(c, k_ssm<T, NB>, (di * k3.G + DEC_THREADS - 1) / DEC_THREADS, 0, k3);
    if (e != cudaSuccess) return e;
    /* out_proj: one row per warp, double-buffered, for d_model >= 2048
     * (1.4b: 1.181 vs 1.207 ms/token, 2.8b: 2.256 vs 2.320), two rows per
     * warp below (130m: 0.277 vs 0.291); MS6_DEC_K4=1|2 forces either */
    const int k4r = ms6_env_is("MS6_DEC_K4", "1") ? 1 : ms6_env_is("MS6_DEC_K4", "2") ? 2 : dm >= 2048 ? 1 : 2;
    const int ndbc = (int)p->n * nb;
    if (k4r == 2)
        return launch(c, k_outproj<T, NB, CH4, 2>, gemv_grid(dm), 0, (const T *)p->out_proj, p->out_proj_bias,
                      (const float *)p->y, p->residual, dm, di, p->dbc, ndbc);
    return launch(c, k_outproj<T, NB, CH4, 1>, (dm + DEC_WARPS - 1) / DEC_WARPS, 0, (const T *)p->out_proj,
                  p->out_proj_bias, (const float *)p->y, p->residual, dm, di, p->dbc, ndbc);
}

template <typename T, int NB, int CH>
static cudaError_t head_launch(ms6_cuda_ctx *c, const ms6_norm_gemv_params *p) {
    K1Params k1;
    memset(&k1, 0, sizeof k1);
    k1.residual = p->x;
    k1.norm = p->norm;
    k1.eps = p->eps;
    k1.dim = (int)p->dim;
    k1.rows = (int)p->rows;
    k1.w = p->w;
    k1.out = p->out;
    k1.ldo = p->ldo;
    k1.feed_ids = p->feed_ids;
    k1.feed_log = p->feed_log;
    k1.feed_pos = p->feed_pos;
    k1.prof = (unsigned long long *)c->dec_prof;
    const size_t smem = sizeof(float) * NB * (size_t)p->dim;
    if constexpr (NB == 1) {
        if (k1_vec(p->norm, p->x, (int)p->dim)) {
            if (!ms6_env_is("MS6_DEC_HEAD_LOOP", "0")) {
                /* one wave: the blocks that fit at once, each over several row groups */
                int per_sm = 0;
                cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_norm_gemv_vec<T, NB, 0, CH, true>,
                                                              DEC_THREADS, smem);
                cudaGetLastError();
                int grid = (per_sm > 0 ? per_sm : 1) * c->prop.multiProcessorCount;
                if (grid > gemv_grid((int)p->rows)) grid = gemv_grid((int)p->rows);
                return launch(c, k_norm_gemv_vec<T, NB, 0, CH, true>, grid, smem, k1);
            }
            return launch(c, k_norm_gemv_vec<T, NB, 0, CH>, gemv_grid((int)p->rows), smem, k1);
        }
    }
    return launch(c, k_norm_gemv<T, NB, 0, CH>, gemv_grid((int)p->rows), smem, k1);
}

/* 16-byte weight vectors in flight per row and lane, for rows of K halves:
 * 8 up to K = 1536 (the whole row in one round of loads), else 4 (about 65
 * registers instead of 100: three blocks per SM instead of two). Measured
 * (bench generate, batch 1): 4 everywhere vs 8 everywhere, 130m 0.378 vs
 * 0.358 ms, 1.4b 1.269 vs 1.360, 2.8b 2.368 vs 2.514. MS6_DEC_CH=4|8 forces
 * one. */
static int dec_ch(int64_t K) {
    const char *e = getenv("MS6_DEC_CH");
    if (e && !strcmp(e, "4")) return 4;
    if (e && !strcmp(e, "8")) return 8;
    return K <= 1536 ? 8 : 4;
}

template <typename T, int NB>
static cudaError_t mixer_ch(ms6_cuda_ctx *c, const ms6_mixer_step_params *p) {
    const int a = dec_ch(p->d_model), b = dec_ch(p->d_inner);
    if (a == 8) return b == 8 ? mixer_launch<T, NB, 8, 8>(c, p) : mixer_launch<T, NB, 8, 4>(c, p);
    return b == 8 ? mixer_launch<T, NB, 4, 8>(c, p) : mixer_launch<T, NB, 4, 4>(c, p);
}

template <typename T>
static cudaError_t mixer_nb(ms6_cuda_ctx *c, const ms6_mixer_step_params *p) {
    return p->n == 1 ? mixer_ch<T, 1>(c, p) : mixer_ch<T, 2>(c, p);
}
template <typename T>
static cudaError_t head_nb(ms6_cuda_ctx *c, const ms6_norm_gemv_params *p) {
    const int ch = dec_ch(p->dim);
    if (p->n == 1) return ch == 4 ? head_launch<T, 1, 4>(c, p) : head_launch<T, 1, 8>(c, p);
    return ch == 4 ? head_launch<T, 2, 4>(c, p) : head_launch<T, 2, 8>(c, p);
}

static int half_type(ms6_dtype t) { return t == MS6_DTYPE_F16 || t == MS6_DTYPE_BF16; }

extern "C" ms6_status ms6_cuda_mixer_step(ms6_backend *be, const ms6_mixer_step_params *p) {
    const int64_t N = p->d_state, G = N / 4;
    const int ok = !ms6_env_is("MS6_CUDA_FUSED", "0") && p->n >= 1 && p->n <= DEC_MAX_NB && half_type(p->w_dtype) &&
                   p->d_model % 8 == 0 && p->d_inner % DEC_BLOCK_ROWS == 0 && N % 4 == 0 && G >= 1 && G <= 16 && p->dt_rank + 2 * N <= DEC_MAX_DBC &&
                   (G & (G - 1)) == 0 && p->d_conv >= 2 && p->d_conv <= 8 && p->dt_rank >= 1 &&
                   (size_t)p->n * p->d_model * sizeof(float) <= DEC_SMEM_MAX && p->d_inner * 2 < INT32_MAX &&
                   ms6_aligned16(p->in_proj) && ms6_aligned16(p->x_proj) && ms6_aligned16(p->dt_proj) &&
                   ms6_aligned16(p->out_proj) && ms6_aligned16(p->ssm_state) &&
                   p->ssm_slot_stride % 4 == 0 && ms6_aligned16(p->u) && ms6_aligned16(p->y);
    if (!ok) return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "fused mixer step: shape not supported");
    if (p->check_only) return MS6_STATUS_OK;
    ms6_cuda_ctx *c = ms6_cuda(be);
    cudaError_t e = p->w_dtype == MS6_DTYPE_F16 ? mixer_nb<__half>(c, p) : mixer_nb<__nv_bfloat16>(c, p);
    return ms6_cuda_check(be, e, "fused mixer step");
}

extern "C" ms6_status ms6_cuda_norm_gemv(ms6_backend *be, const ms6_norm_gemv_params *p) {
    const int ok = !ms6_env_is("MS6_CUDA_FUSED", "0") && p->n >= 1 && p->n <= DEC_MAX_NB && half_type(p->w_dtype) &&
                   p->dim % 8 == 0 && (size_t)p->n * p->dim * sizeof(float) <= DEC_SMEM_MAX && p->rows >= 1 &&
                   p->rows < INT32_MAX && ms6_aligned16(p->w) && ms6_aligned16(p->x) &&
                   (!p->feed_pos || (p->n == 1 && p->feed_ids && p->feed_log && ms6_aligned16(p->feed_pos)));
    if (!ok) return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "fused norm + gemv: shape not supported");
    if (p->check_only) return MS6_STATUS_OK;
    ms6_cuda_ctx *c = ms6_cuda(be);
    cudaError_t e = p->w_dtype == MS6_DTYPE_F16 ? head_nb<__half>(c, p) : head_nb<__nv_bfloat16>(c, p);
    return ms6_cuda_check(be, e, "fused norm + gemv");
}

static const size_t kProfWords = 2 + 4 * (size_t)MS6_DEC_PROF_CAP;

/* MS6_DEC_PROF=FILE: the ring, zeroed, in a build that records (else a
 * note that this one does not) */
extern "C" void ms6_cuda_dec_prof_init(ms6_cuda_ctx *c) {
    const char *path = getenv("MS6_DEC_PROF");
    if (!path || !*path) return;
    if (!MS6_DEC_PROF) {
        fprintf(stderr, "MS6_DEC_PROF: this build records no timeline (configure with -DMS6_DEC_PROF=ON)\n");
        return;
    }
    const size_t bytes = kProfWords * sizeof(unsigned long long);
    if (cudaMalloc(&c->dec_prof, bytes) != cudaSuccess || cudaMemset(c->dec_prof, 0, bytes) != cudaSuccess) {
        cudaGetLastError();
        if (c->dec_prof) cudaFree(c->dec_prof);
        c->dec_prof = NULL;
        fprintf(stderr, "MS6_DEC_PROF: no device memory for the block timeline\n");
        return;
    }
#if MS6_DEC_PROF
    const char *probe = getenv("MS6_DEC_PROBE");
    const int bits = probe ? atoi(probe) : 0;
    if (bits) {
        fprintf(stderr, "MS6_DEC_PROBE=%d: parts of the decode step left out, its results are wrong\n", bits);
        if (cudaMemcpyToSymbol(g_dec_probe, &bits, sizeof bits) != cudaSuccess) {
            cudaGetLastError();
            fprintf(stderr, "MS6_DEC_PROBE: could not set the probe bits on the device (none taken)\n");
        }
    }
#endif
}

/* The ring written to path (MS6_DEC_PROF) as text, one block per line:
 * kind (1 K1 x, 2 K1 z, 3 K34, 4 head), block, SM, start, after the wait,
 * end (ns of the global timer); the last MS6_DEC_PROF_CAP blocks.
 * dev/cuda/dec_prof.py turns it into a per-layer table. */
static void dec_prof_write(ms6_cuda_ctx *c, const char *path) {
    if (!path || !*path) return;
    unsigned long long *h = (unsigned long long *)malloc(kProfWords * sizeof *h);
    if (!h || cudaDeviceSynchronize() != cudaSuccess ||
        cudaMemcpy(h, c->dec_prof, kProfWords * sizeof *h, cudaMemcpyDeviceToHost) != cudaSuccess) {
        fprintf(stderr, "MS6_DEC_PROF: could not read the block timeline back\n");
        free(h);
        return;
    }
    const unsigned n = (unsigned)h[0];
    /* a backend that ran no decode kernel (the bench's bandwidth probe) leaves the file alone */
    FILE *f = n ? fopen(path, "w") : NULL;
    if (f) {
        const unsigned cnt = n < MS6_DEC_PROF_CAP ? n : MS6_DEC_PROF_CAP;
        for (unsigned i = 0; i < cnt; i++) {
            const unsigned long long *r = h + 2 + 4 * (size_t)((n - cnt + i) & (MS6_DEC_PROF_CAP - 1));
            fprintf(f, "%u %u %u %llu %llu %llu\n", (unsigned)(r[3] & 0xff), (unsigned)((r[3] >> 8) & 0xffffffffu),
                    (unsigned)(r[3] >> 40), r[0], r[1], r[2]);
        }
        fclose(f);
    } else if (n) {
        fprintf(stderr, "MS6_DEC_PROF: could not write %s\n", path);
    }
    free(h);
}

extern "C" void ms6_cuda_dec_prof_free(ms6_cuda_ctx *c) {
    if (!c->dec_prof) return;
    dec_prof_write(c, getenv("MS6_DEC_PROF"));
    cudaFree(c->dec_prof);
    c->dec_prof = NULL;
}
