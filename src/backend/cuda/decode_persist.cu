/*
 * decode_persist.cu - a whole decode step (every layer and the head) of 1 or
 * 2 sequences as one persistent kernel, sm_90 (backend op decode_step).
 *
 * Why: the per-layer kernels of decode.cu pay about 3 us at each of their 3
 * grid boundaries per layer, and their weight streaming stops there (a
 * kernel's loads start only when its blocks are scheduled). Here one block
 * per SM runs every layer; a producer warp streams the block's share of the
 * big matrices (in_proj, out_proj, lm_head: 96% of the bytes) into a ring
 * of shared-memory slots with bulk copies (cp.async.bulk, completion on an
 * mbarrier per slot) and never waits on activations, only on free slots, so
 * HBM stays busy across the grid barriers; eight consumer warps take the
 * slots in order and do the arithmetic.
 *
 * Work of block b (G blocks): channel groups g = b, b+G, ... of 8 channels
 * (their 8 x rows and 8 z rows of in_proj: 4 tiles of 4 rows), out_proj
 * tiles (2 rows) b, b+G, ..., lm_head tiles (4 rows) likewise. Per layer:
 *   A  (residual complete) RMSNorm of the residual rows (every block, into
 *      shared memory); in_proj tiles; conv update + bias + SiLU of the
 *      block's channels (u and z stay in shared memory); the block's share
 *      of x_proj . u added to dbc (global, atomics).
 *   B  (dbc complete) dt_proj + softplus + state update + D*u + gate of the
 *      block's channels -> y (global).
 *   C  (y complete) out_proj tiles; residual rows += out_proj . y (+ bias).
 * then the head: norm_f and the lm_head tiles into the logits. The small
 * per-layer data (norm and conv weights, conv and ssm state, x_proj columns,
 * dt_proj rows, A, D) comes into shared memory with cp.async at the start of
 * phase A, before the grid barrier it then waits on.
 * Grid barriers: a counter in global memory, reset with the x_proj
 * accumulators by a memset before each launch; all blocks must be resident
 * (grid = SM count, one block per SM); a barrier that waits implausibly
 * long traps (an error, not a hang).
 * Status: measured slower than the per-layer kernels of decode.cu at every
 * model shape (H200, batch 1: 130m 0.368 vs 0.289 ms/token, 1.4b 1.45 vs
 * 1.20, 2.8b 2.60 vs 2.30; docs/kernel-notes.md has the profile), so it is
 * off unless MS6_CUDA_PERSIST=1: the static schedule leaves the blocks
 * arriving at each grid barrier 2-5 us apart, and the ring (160 KB per SM)
 * absorbs only ~5 us of the ~20 us per layer that the consumers spend
 * outside the weight stream.
 * MS6_PK_PROFILE=1 prints where the blocks spend a layer (eager steps only);
 * MS6_PK_SLOTS and MS6_PK_L2AHEAD (tiles prefetched into L2 ahead of the
 * ring, default 8) are development knobs.
 * Checked by tests/test_cuda_model.c (persistent == per-layer fused ==
 * unfused logits at every step).
 */
#include "backend/cuda/cuda_internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PK_CONS 8                     /* consumer warps */
#define PK_CTHREADS (PK_CONS * 32)
#define PK_THREADS (PK_CTHREADS + 32) /* + the producer warp */
#define PK_MAX_LAYERS 128
#define PK_PSLOTS 24 /* profile marks per layer and block */

struct PkLayer {
    const void *in_proj, *x_proj, *dt_proj, *out_proj;
    const float *norm, *in_bias, *conv_w, *conv_b, *dt_bias, *A, *D, *out_bias;
    float *conv_state, *ssm_state;
};

struct PkParams {
    int n_layer, dm, di, N, R, nb, dc, vocab;
    float eps;
    long long conv_stride, ssm_stride; /* per state slot */
    const int32_t *slots;
    float *residual, *y, *logits;
    long long ldo;
    float *dbc;         /* 2 x (NB, nb), layer l uses buffer l & 1 */
    unsigned *counter;  /* grid barrier */
    const float *norm_f;
    const void *lm_head;
    int ns, slot_bytes; /* ring */
    int ngmax;          /* channel groups per block, at most */
    int l2_ahead;       /* tiles the producer's L2 prefetch runs ahead of its ring copies */
    long long *prof;    /* MS6_PK_PROFILE=1: marks, PK_PSLOTS per layer and block; else NULL */
    /* shared-memory offsets (bytes) */
    int o_bar, o_act, o_normw, o_xz, o_us, o_cw, o_cb, o_cst, o_xps, o_dtw, o_dtb, o_A, o_D, o_sst, o_dbcs, o_red;
    PkLayer layer[PK_MAX_LAYERS];
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define PK_SM90 1
#endif

#ifdef PK_SM90
/* smem_u32, mbar_*, bulk_load: cuda_internal.h */
static __device__ __forceinline__ void cp_async_commit_wait() {
    asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;" ::: "memory");
}
/* the consumer warps' own barrier (named barrier 1; the producer is not in it) */
static __device__ __forceinline__ void bar_c() { asm volatile("bar.sync 1, %0;" ::"n"(PK_CTHREADS) : "memory"); }

/* bytes (a multiple of 4) from global to shared memory, spread over the
 * consumer threads; 16-byte pieces where both ends allow */
static __device__ __forceinline__ void copy_in(void *dst, const void *src, int bytes, int tid) {
    if (((uintptr_t)dst & 15) == 0 && ((uintptr_t)src & 15) == 0 && (bytes & 15) == 0) {
        for (int i = tid; i < bytes / 16; i += PK_CTHREADS) cp_async16((char *)dst + 16 * i, (const char *)src + 16 * i);
    } else {
        for (int i = tid; i < bytes / 4; i += PK_CTHREADS) cp_async4((char *)dst + 4 * i, (const char *)src + 4 * i);
    }
}



static __device__ __forceinline__ unsigned long long globaltimer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

/* every consumer thread of every block has arrived here `target / G`
 * times: a release add by one thread per block after the block's barrier,
 * acquire loads until the count is reached, the block's barrier again */
static __device__ __forceinline__ void grid_sync(unsigned *ctr, unsigned target, int tid, long long *mk) {
    bar_c();
    if (tid == 0) {
        const unsigned long long t0 = globaltimer();
        if (mk) mk[0] = (long long)t0;
        asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(ctr) : "memory");
        for (unsigned v, i = 0;; i++) {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(ctr) : "memory");
            if (v >= target) break;
            /* a block that never arrives is one that is not resident: fail, do not hang */
            if ((i & 1023) == 1023 && globaltimer() - t0 > 2000000000ull) __trap();
        }
        if (mk) mk[1] = (long long)globaltimer();
    }
    bar_c();
}

/* The ring: ns slots of slot_bytes at the start of shared memory, a full
 * and an empty mbarrier per slot. The producer and the consumers walk the
 * same tile sequence (a tile: 2 consecutive weight rows, 1 at an odd end);
 * tile s lives in slot s % ns and belongs to consumer warp s % PK_CONS. */
struct Ring {
    unsigned char *base;
    uint64_t *full, *empty;
    int ns, slot_bytes;
    unsigned seq;
    long long waited; /* producer: clocks spent waiting for free slots */
};

static __device__ __forceinline__ void ring_issue(Ring &r, const void *src, int bytes) {
    const unsigned s = r.seq % r.ns, round = r.seq / r.ns;
    if (round > 0) {
        const long long t0 = (long long)globaltimer();
        mbar_wait(r.empty + s, (round - 1) & 1);
        r.waited += (long long)globaltimer() - t0;
    }
    mbar_expect_tx(r.full + s, (unsigned)bytes);
    bulk_load(r.base + (size_t)s * r.slot_bytes, src, (unsigned)bytes, r.full + s);
    r.seq++;
}

/* The block's tile list in order: per layer its in_proj tiles (per channel
 * group the 8 x rows, then the 8 z rows, trA rows a tile), its out_proj
 * tiles (trC rows), then its lm_head tiles (trA rows). tile_next gives the
 * tile at the cursor and advances it; false past the end. c.l is the
 * layer of the tile returned (n_layer for the head). */
struct TileCursor {
    int l, ph, i;
};

template <typename T>
static __device__ __forceinline__ bool tile_next(const PkParams &p, int blk, int G, int ng, int trA, int trC,
                                                 int nt_dm, int nt_v, TileCursor &c, const void **src, int *bytes) {
    for (;;) {
        if (c.l > p.n_layer) return false;
        if (c.l == p.n_layer) { /* head */
            if (c.i >= nt_v) return false;
            const int row = trA * (blk + c.i * G), nr = p.vocab - row < trA ? p.vocab - row : trA;
            *src = (const T *)p.lm_head + (size_t)row * p.dm;
            *bytes = nr * p.dm * (int)sizeof(T);
            c.i++;
            return true;
        }
        if (c.ph == 0) {
            const int per = 16 / trA;
            if (c.i < ng * per) {
                const int g = blk + (c.i / per) * G, i = (c.i % per) * trA;
                const int row = i < 8 ? 8 * g + i : p.di + 8 * g + i - 8;
                *src = (const T *)p.layer[c.l].in_proj + (size_t)row * p.dm;
                *bytes = trA * p.dm * (int)sizeof(T);
                c.i++;
                return true;
            }
            c.ph = 1, c.i = 0;
        }
        if (c.i < nt_dm) {
            const int row = trC * (blk + c.i * G), nr = p.dm - row < trC ? p.dm - row : trC;
            *src = (const T *)p.layer[c.l].out_proj + (size_t)row * p.di;
            *bytes = nr * p.di * (int)sizeof(T);
            c.i++;
            return true;
        }
        c.l++, c.ph = 0, c.i = 0;
    }
}

static __device__ __forceinline__ void prefetch_l2(const void *src, int bytes) {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(bytes) : "memory");
}

/* acc[r][b] = row r of the tile (TR rows of K halves, shared memory) . act row b */
template <typename T, int NB, int TR>
static __device__ __forceinline__ void tile_dot(const uint4 *w, int K, const float *act, int lda, int lane,
                                                float (&acc)[4][NB]) {
    const int nv = K / 8;
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int b = 0; b < NB; b++) acc[r][b] = 0.0f;
#pragma unroll 2
    for (int v = lane; v < nv; v += 32) {
        float x[NB][8];
#pragma unroll
        for (int b = 0; b < NB; b++) {
            const float4 a = *reinterpret_cast<const float4 *>(act + (size_t)b * lda + v * 8);
            const float4 c = *reinterpret_cast<const float4 *>(act + (size_t)b * lda + v * 8 + 4);
            x[b][0] = a.x, x[b][1] = a.y, x[b][2] = a.z, x[b][3] = a.w;
            x[b][4] = c.x, x[b][5] = c.y, x[b][6] = c.z, x[b][7] = c.w;
        }
#pragma unroll
        for (int r = 0; r < TR; r++) {
            float wf[8];
            unpack8(w[r * nv + v], wf, T());
#pragma unroll
            for (int b = 0; b < NB; b++)
#pragma unroll
                for (int e = 0; e < 8; e++) acc[r][b] = fmaf(wf[e], x[b][e], acc[r][b]);
        }
    }
#pragma unroll
    for (int r = 0; r < TR; r++)
#pragma unroll
        for (int b = 0; b < NB; b++) acc[r][b] = warp_sum(acc[r][b]);
}

/* the next tile of the sequence (tr rows: 2 or 4), if it is this warp's:
 * acc = its rows . act */
template <typename T, int NB>
static __device__ __forceinline__ bool ring_take(Ring &r, int warp, int lane, const float *act, int lda, int K, int tr,
                                                 float (&acc)[4][NB]) {
    const unsigned s = r.seq++;
    if ((int)(s % PK_CONS) != warp) return false;
    const unsigned slot = s % r.ns;
    mbar_wait(r.full + slot, (s / r.ns) & 1);
    const uint4 *w = reinterpret_cast<const uint4 *>(r.base + (size_t)slot * r.slot_bytes);
    if (tr == 4)
        tile_dot<T, NB, 4>(w, K, act, lda, lane, acc);
    else
        tile_dot<T, NB, 2>(w, K, act, lda, lane, acc);
    __syncwarp();
    if (lane == 0) mbar_arrive(r.empty + slot);
    return true;
}

/* act (NB, dm) = RMSNorm(residual rows) * normw; the cp.async copies of
 * this thread (normw among them) are waited for here */
template <int NB>
static __device__ __forceinline__ void norm_rows(const float *residual, int dm, float eps, float *act,
                                                 const float *normw, float *red, int tid) {
    const int warp = tid >> 5, lane = tid & 31;
    float ss[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) ss[b] = 0.0f;
    for (int k = tid; k < dm; k += PK_CTHREADS)
#pragma unroll
        for (int b = 0; b < NB; b++) {
            const float v = __ldcg(residual + (size_t)b * dm + k);
            act[b * dm + k] = v;
            ss[b] += v * v;
        }
#pragma unroll
    for (int b = 0; b < NB; b++) {
        ss[b] = warp_sum(ss[b]);
        if (lane == 0) red[warp * NB + b] = ss[b];
    }
    cp_async_commit_wait();
    bar_c();
    float rinv[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) {
        float t = 0.0f;
#pragma unroll
        for (int i = 0; i < PK_CONS; i++) t += red[i * NB + b];
        rinv[b] = rsqrtf(t / (float)dm + eps);
    }
    for (int k = tid; k < dm; k += PK_CTHREADS)
#pragma unroll
        for (int b = 0; b < NB; b++) act[b * dm + k] *= rinv[b] * normw[k];
    bar_c();
}
#endif /* PK_SM90 */

template <typename T, int NB>
__global__ void __launch_bounds__(PK_THREADS, 1) k_decode_persist(const __grid_constant__ PkParams p) {
#ifdef PK_SM90
    extern __shared__ __align__(128) unsigned char sm[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int G = gridDim.x, blk = blockIdx.x;
    const int dm = p.dm, di = p.di, N = p.N, R = p.R, nb = p.nb, dc = p.dc, W = dc - 1;
    uint64_t *full = reinterpret_cast<uint64_t *>(sm + p.o_bar), *empty = full + p.ns;
    const int ngroups = di / 8;
    const int ng = blk < ngroups ? (ngroups - blk + G - 1) / G : 0; /* this block's channel groups */
    /* rows per tile: as many as fill a slot, 4 or 2 (in_proj and lm_head
     * rows are d_model long, out_proj rows d_inner) */
    const int trA = p.slot_bytes >= 4 * dm * (int)sizeof(T) ? 4 : 2;
    const int trC = p.slot_bytes >= 4 * di * (int)sizeof(T) ? 4 : 2;
    const int tiles_dm = (dm + trC - 1) / trC, tiles_v = (p.vocab + trA - 1) / trA;
    const int nt_dm = blk < tiles_dm ? (tiles_dm - blk + G - 1) / G : 0;
    const int nt_v = blk < tiles_v ? (tiles_v - blk + G - 1) / G : 0;

    if (tid == 0) {
        for (int i = 0; i < p.ns; i++) {
            mbar_init(full + i, 1);
            mbar_init(empty + i, 1);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    Ring ring = {sm, full, empty, p.ns, p.slot_bytes, 0, 0};
    /* profile: PK_PSLOTS marks per layer and block (globaltimer, ns) */
    long long *const prof = p.prof ? p.prof + (size_t)blk * (p.n_layer + 1) * PK_PSLOTS : NULL;
#define PK_MARK(l, e)                                                                         \
    do {                                                                                      \
        if (prof && tid == 0) prof[(size_t)(l) * PK_PSLOTS + (e)] = (long long)globaltimer(); \
    } while (0)
#define PK_MK(l, e) (prof ? prof + (size_t)(l) * PK_PSLOTS + (e) : (long long *)0)
    if (warp == PK_CONS) {
        /* ---- producer: one lane walks the tile list, and a second cursor
         * l2_ahead tiles further asks for those tiles in L2 (bulk prefetch),
         * so HBM keeps streaming while the ring is full ---- */
        if (lane != 0) return;
        TileCursor a = {0, 0, 0}, b = a;
        const void *src;
        int bytes;
        for (int i = 0; i < p.l2_ahead && tile_next<T>(p, blk, G, ng, trA, trC, nt_dm, nt_v, b, &src, &bytes); i++)
            prefetch_l2(src, bytes);
        int last_l = -1;
        while (tile_next<T>(p, blk, G, ng, trA, trC, nt_dm, nt_v, a, &src, &bytes)) {
            if (prof && a.l != last_l) /* the first tile of a layer (or of the head) */
                prof[(size_t)a.l * PK_PSLOTS + 12] = (long long)globaltimer(),
                              prof[(size_t)a.l * PK_PSLOTS + 13] = ring.waited, last_l = a.l;
            ring_issue(ring, src, bytes);
            if (p.l2_ahead > 0 && tile_next<T>(p, blk, G, ng, trA, trC, nt_dm, nt_v, b, &src, &bytes))
                prefetch_l2(src, bytes);
        }
        return;
    }

    /* ---- consumers ---- */
    float *act = reinterpret_cast<float *>(sm + p.o_act);     /* (NB, dm) normed input, then (NB, di) y */
    float *normw = reinterpret_cast<float *>(sm + p.o_normw); /* (dm) */
    float *xz = reinterpret_cast<float *>(sm + p.o_xz);       /* (ngmax, NB, 16): 8 x then 8 z */
    float *us = reinterpret_cast<float *>(sm + p.o_us);       /* (ngmax, NB, 8) */
    float *cw = reinterpret_cast<float *>(sm + p.o_cw);       /* (ngmax * 8, dc) */
    float *cb = reinterpret_cast<float *>(sm + p.o_cb);       /* (ngmax * 8) */
    float *cst = reinterpret_cast<float *>(sm + p.o_cst);     /* (NB, ngmax * 8, W) */
    uint4 *xps = reinterpret_cast<uint4 *>(sm + p.o_xps);     /* (ngmax, nb): x_proj[j][8g .. 8g+8) */
    T *dtw = reinterpret_cast<T *>(sm + p.o_dtw);             /* (ngmax * 8, R) */
    float *dtb = reinterpret_cast<float *>(sm + p.o_dtb);     /* (ngmax * 8) */
    float *As = reinterpret_cast<float *>(sm + p.o_A);        /* (ngmax * 8, N) */
    float *Ds = reinterpret_cast<float *>(sm + p.o_D);        /* (ngmax * 8) */
    float *sst = reinterpret_cast<float *>(sm + p.o_sst);     /* (NB, ngmax * 8, N) */
    float *dbcs = reinterpret_cast<float *>(sm + p.o_dbcs);   /* (NB, nb) */
    float *red = reinterpret_cast<float *>(sm + p.o_red);     /* (PK_CONS, NB) */
    int slot[NB];
#pragma unroll
    for (int b = 0; b < NB; b++) slot[b] = p.slots[b];
    unsigned bars = 0;

    for (int l = 0; l < p.n_layer; l++) {
        const PkLayer &L = p.layer[l];
        float *dbc = p.dbc + (size_t)(l & 1) * NB * nb;
        /* ---- phase A: prefetch this layer's small data, wait for the residual ---- */
        PK_MARK(l, 0);
        copy_in(normw, L.norm, dm * 4, tid);
        for (int k = 0; k < ng; k++) {
            const int c0 = 8 * (blk + k * G);
            copy_in(cw + k * 8 * dc, L.conv_w + (size_t)c0 * dc, 8 * dc * 4, tid);
            if (L.conv_b) copy_in(cb + k * 8, L.conv_b + c0, 32, tid);
            if (L.dt_bias) copy_in(dtb + k * 8, L.dt_bias + c0, 32, tid);
            copy_in(Ds + k * 8, L.D + c0, 32, tid);
            copy_in(As + k * 8 * N, L.A + (size_t)c0 * N, 8 * N * 4, tid);
            copy_in(dtw + (size_t)k * 8 * R, (const T *)L.dt_proj + (size_t)c0 * R, 8 * R * (int)sizeof(T), tid);
            for (int j = tid; j < nb; j += PK_CTHREADS)
                cp_async16(xps + (size_t)k * nb + j, (const T *)L.x_proj + (size_t)j * di + c0);
#pragma unroll
            for (int b = 0; b < NB; b++)
                if (slot[b] >= 0) {
                    copy_in(cst + ((size_t)b * p.ngmax * 8 + k * 8) * W,
                            L.conv_state + slot[b] * p.conv_stride + (size_t)c0 * W, 8 * W * 4, tid);
                    copy_in(sst + ((size_t)b * p.ngmax * 8 + k * 8) * N,
                            L.ssm_state + slot[b] * p.ssm_stride + (size_t)c0 * N, 8 * N * 4, tid);
                }
        }
        cp_async_commit();
        if (l > 0) grid_sync(p.counter, (++bars) * G, tid, PK_MK(l, 10)); /* residual complete (C of layer l-1) */
        PK_MARK(l, 1);
        norm_rows<NB>(p.residual, dm, p.eps, act, normw, red, tid);
        PK_MARK(l, 2);
        for (int k = 0; k < ng; k++)
            for (int i0 = 0; i0 < 16; i0 += trA) {
                float acc[4][NB];
                if (!ring_take<T, NB>(ring, warp, lane, act, dm, dm, trA, acc)) continue;
                const int c0 = 8 * (blk + k * G);
                if (lane == 0)
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        if (r >= trA) break;
                        const int i = i0 + r, row = i < 8 ? c0 + i : di + c0 + i - 8;
                        const float bias = L.in_bias ? L.in_bias[row] : 0.0f;
#pragma unroll
                        for (int b = 0; b < NB; b++) xz[(k * NB + b) * 16 + i] = acc[r][b] + bias;
                    }
            }
        bar_c();
        PK_MARK(l, 3);
        /* conv update + bias + SiLU of the block's channels */
        for (int q = tid; q < ng * 8 * NB; q += PK_CTHREADS) {
            const int b = q / (ng * 8), kj = q % (ng * 8), k = kj / 8, j = kj % 8;
            float uv = 0.0f;
            if (slot[b] >= 0) {
                const float x = xz[(k * NB + b) * 16 + j];
                const float *w = cw + kj * dc;
                float *s = cst + ((size_t)b * p.ngmax * 8 + kj) * W;
                float c = L.conv_b ? cb[kj] : 0.0f;
                for (int i = 0; i < W; i++) c += w[i] * s[i];
                c += w[W] * x;
                float *g = L.conv_state + slot[b] * p.conv_stride + (size_t)(8 * (blk + k * G) + j) * W;
                for (int i = 0; i + 1 < W; i++) g[i] = s[i + 1];
                g[W - 1] = x;
                uv = silu_f(c);
            }
            us[(k * NB + b) * 8 + j] = uv;
        }
        bar_c();
        PK_MARK(l, 4);
        /* dbc += x_proj[:, block channels] . u */
        if (ng > 0)
            for (int j = tid; j < nb; j += PK_CTHREADS) {
                float part[NB];
#pragma unroll
                for (int b = 0; b < NB; b++) part[b] = 0.0f;
                for (int k = 0; k < ng; k++) {
                    float wf[8];
                    unpack8(xps[(size_t)k * nb + j], wf, T());
#pragma unroll
                    for (int b = 0; b < NB; b++)
#pragma unroll
                        for (int e = 0; e < 8; e++) part[b] = fmaf(wf[e], us[(k * NB + b) * 8 + e], part[b]);
                }
#pragma unroll
                for (int b = 0; b < NB; b++) atomicAdd(dbc + (size_t)b * nb + j, part[b]);
            }
        PK_MARK(l, 5);
        grid_sync(p.counter, (++bars) * G, tid, PK_MK(l, 14)); /* dbc complete */
        PK_MARK(l, 6);

        /* ---- phase B: dt_proj, softplus, state update, gate ---- */
        for (int i = tid; i < NB * nb; i += PK_CTHREADS) dbcs[i] = __ldcg(dbc + i);
        if (blk == 0) /* the next layer's accumulator (last read in B of layer l-1) */
            for (int i = tid; i < NB * nb; i += PK_CTHREADS) p.dbc[(size_t)((l + 1) & 1) * NB * nb + i] = 0.0f;
        bar_c();
        {
            const int G4 = N / 4, per = PK_CTHREADS / G4, tq = tid % G4;
            for (int q0 = 0; q0 < ng * 8; q0 += per) {
                const int q = q0 + tid / G4;
                const bool active = q < ng * 8;
                const int qq = active ? q : 0, k = qq / 8, j = qq % 8;
                const int c = 8 * (blk + k * G) + j;
                float dt[NB];
#pragma unroll
                for (int b = 0; b < NB; b++) dt[b] = 0.0f;
                if (active && (R & 7) == 0) {
                    for (int v = tq; v < R / 8; v += G4) {
                        float wf[8];
                        unpack8(*reinterpret_cast<const uint4 *>(dtw + (size_t)qq * R + v * 8), wf, T());
#pragma unroll
                        for (int b = 0; b < NB; b++)
#pragma unroll
                            for (int e = 0; e < 8; e++) dt[b] = fmaf(wf[e], dbcs[b * nb + v * 8 + e], dt[b]);
                    }
                } else if (active) {
                    for (int r = tq; r < R; r += G4) {
                        const float wr = tof(dtw[(size_t)qq * R + r]);
#pragma unroll
                        for (int b = 0; b < NB; b++) dt[b] = fmaf(wr, dbcs[b * nb + r], dt[b]);
                    }
                }
#pragma unroll
                for (int b = 0; b < NB; b++) {
                    float d = dt[b];
                    for (int o = G4 >> 1; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
                    const float delta = softplus_f(d + (L.dt_bias ? dtb[qq] : 0.0f));
                    const float uv = us[(k * NB + b) * 8 + j];
                    const float du = delta * uv;
                    const float *Bv = dbcs + b * nb + R, *Cv = Bv + N;
                    float part = 0.0f;
                    if (active && slot[b] >= 0) {
                        const float *a = As + (size_t)qq * N + 4 * tq;
                        const float *s0 = sst + ((size_t)b * p.ngmax * 8 + qq) * N + 4 * tq;
                        float4 s;
                        s.x = fast_ex2(delta * a[0] * kLog2e) * s0[0] + du * Bv[4 * tq];
                        s.y = fast_ex2(delta * a[1] * kLog2e) * s0[1] + du * Bv[4 * tq + 1];
                        s.z = fast_ex2(delta * a[2] * kLog2e) * s0[2] + du * Bv[4 * tq + 2];
                        s.w = fast_ex2(delta * a[3] * kLog2e) * s0[3] + du * Bv[4 * tq + 3];
                        *reinterpret_cast<float4 *>(L.ssm_state + slot[b] * p.ssm_stride + (size_t)c * N + 4 * tq) = s;
                        part = s.x * Cv[4 * tq] + s.y * Cv[4 * tq + 1] + s.z * Cv[4 * tq + 2] + s.w * Cv[4 * tq + 3];
                    }
                    for (int o = G4 >> 1; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
                    if (active && tq == 0) {
                        const float z = xz[(k * NB + b) * 16 + 8 + j];
                        p.y[(size_t)b * di + c] = slot[b] >= 0 ? (part + Ds[qq] * uv) * silu_f(z) : 0.0f;
                    }
                }
            }
        }
        PK_MARK(l, 7);
        grid_sync(p.counter, (++bars) * G, tid, PK_MK(l, 16)); /* y complete */
        PK_MARK(l, 8);

        /* ---- phase C: residual += out_proj . y ---- */
        for (int i = tid; i < NB * di / 4; i += PK_CTHREADS)
            reinterpret_cast<float4 *>(act)[i] = __ldcg(reinterpret_cast<const float4 *>(p.y) + i);
        bar_c();
        PK_MARK(l, 9);
        for (int i = 0; i < nt_dm; i++) {
            float acc[4][NB];
            if (!ring_take<T, NB>(ring, warp, lane, act, di, di, trC, acc)) continue;
            const int row0 = trC * (blk + i * G);
            if (lane < NB)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    if (r >= trC) break;
                    const int row = row0 + r;
                    if (row >= dm) break;
#pragma unroll
                    for (int b = 0; b < NB; b++)
                        if (lane == b) {
                            float *rp = p.residual + (size_t)b * dm + row;
                            *rp = __ldcg(rp) + acc[r][b] + (L.out_bias ? L.out_bias[row] : 0.0f);
                        }
                }
        }
    }
    PK_MARK(p.n_layer, 0);
    /* ---- head: norm_f + lm_head ---- */
    copy_in(normw, p.norm_f, dm * 4, tid);
    cp_async_commit();
    grid_sync(p.counter, (++bars) * G, tid, PK_MK(p.n_layer, 10)); /* residual complete */
    PK_MARK(p.n_layer, 1);
    norm_rows<NB>(p.residual, dm, p.eps, act, normw, red, tid);
    for (int i = 0; i < nt_v; i++) {
        float acc[4][NB];
        if (!ring_take<T, NB>(ring, warp, lane, act, dm, dm, trA, acc)) continue;
        const int row0 = trA * (blk + i * G);
        if (lane < NB)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                if (r >= trA) break;
                const int row = row0 + r;
                if (row >= p.vocab) break;
#pragma unroll
                for (int b = 0; b < NB; b++)
                    if (lane == b) p.logits[(size_t)b * p.ldo + row] = acc[r][b];
            }
    }
    PK_MARK(p.n_layer, 2);
#undef PK_MARK
#undef PK_MK
#endif
}

/* ---- host side ---- */

/* places an array of `bytes` at the next 16-byte boundary of *o */
static void put(size_t *o, int *off, size_t bytes) {
    *o = (*o + 15) & ~(size_t)15;
    *off = (int)*o;
    *o += bytes;
}

/* shared-memory layout for the shape; returns the bytes, 0 when it does not fit */
static size_t pk_layout(PkParams *k, int nbq, int wsize, size_t limit) {
    size_t o = 0;
    const int ch = k->ngmax * 8;
    size_t ring0; /* the ring goes first; its size is what is left */
    const int maxk = k->dm > k->di ? k->dm : k->di;
    k->slot_bytes = (int)(((size_t)2 * maxk * wsize + 127) & ~(size_t)127);
    o = 0;
    put(&o, &k->o_act, sizeof(float) * (size_t)nbq * maxk);
    put(&o, &k->o_normw, sizeof(float) * (size_t)k->dm);
    put(&o, &k->o_xz, sizeof(float) * (size_t)k->ngmax * nbq * 16);
    put(&o, &k->o_us, sizeof(float) * (size_t)k->ngmax * nbq * 8);
    put(&o, &k->o_cw, sizeof(float) * (size_t)ch * k->dc);
    put(&o, &k->o_cb, sizeof(float) * (size_t)ch);
    put(&o, &k->o_cst, sizeof(float) * (size_t)nbq * ch * (k->dc - 1));
    put(&o, &k->o_xps, 16 * (size_t)k->ngmax * k->nb);
    put(&o, &k->o_dtw, (size_t)wsize * ch * k->R);
    put(&o, &k->o_dtb, sizeof(float) * (size_t)ch);
    put(&o, &k->o_A, sizeof(float) * (size_t)ch * k->N);
    put(&o, &k->o_D, sizeof(float) * (size_t)ch);
    put(&o, &k->o_sst, sizeof(float) * (size_t)nbq * ch * k->N);
    put(&o, &k->o_dbcs, sizeof(float) * (size_t)nbq * k->nb);
    put(&o, &k->o_red, sizeof(float) * (size_t)PK_CONS * nbq);
    const size_t small = (o + 127) & ~(size_t)127;
    if (small + 2 * (size_t)k->slot_bytes + 64 > limit) return 0;
    int ns = (int)((limit - small - 64) / ((size_t)k->slot_bytes + 16));
    if (ns > 32) ns = 32;
    const char *e = getenv("MS6_PK_SLOTS"); /* fewer slots (a development aid) */
    if (e && atoi(e) >= 2 && atoi(e) < ns) ns = atoi(e);
    /* a multiple of the consumer warps: tile s goes to warp s % PK_CONS and
     * slot s % ns, so each slot has one consumer warp, which takes its tiles
     * in order. With slots shared between warps, a warp running ahead could
     * wait on a slot two phases behind its tile, and the mbarrier's phase
     * parity cannot tell those apart (measured: hangs with 11 slots). */
    ns -= ns % PK_CONS;
    k->ns = ns;
    ring0 = (size_t)ns * k->slot_bytes;
    /* final offsets: ring at 0, barriers, then the small arrays */
    const size_t shift = ring0 + (size_t)16 * ns;
    int *offs[] = {&k->o_act, &k->o_normw, &k->o_xz, &k->o_us, &k->o_cw, &k->o_cb, &k->o_cst, &k->o_xps,
                   &k->o_dtw, &k->o_dtb, &k->o_A, &k->o_D, &k->o_sst, &k->o_dbcs, &k->o_red};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) *offs[i] += (int)shift;
    k->o_bar = (int)ring0;
    return shift + o;
}

/* MS6_PK_PROFILE=1 (a development aid; eager steps only, MS6_CUDA_GRAPH=0):
 * every block's marks (globaltimer), summed over the layers after the first
 * and printed to stderr every 64 steps in microseconds per layer: block 0's
 * phases, and for each grid barrier the spread of the arrivals over the
 * blocks and the time from the last arrival to the first release. */
static long long *pk_prof_dev;
static double pk_prof_sum[24];
static long pk_prof_n;
static int pk_prof_last[1024];

static void pk_prof_report(ms6_cuda_ctx *c, int n_layer, int G) {
    const size_t per = (size_t)(n_layer + 1) * PK_PSLOTS;
    long long *h = (long long *)malloc(sizeof(long long) * per * G);
    if (!h) return;
    if (cudaStreamSynchronize(c->stream) != cudaSuccess ||
        cudaMemcpy(h, pk_prof_dev, sizeof(long long) * per * G, cudaMemcpyDeviceToHost) != cudaSuccess) {
        cudaGetLastError();
        free(h);
        return;
    }
    const double us = 1e-3;
    for (int l = 1; l < n_layer; l++) {
        const long long *a = h + (size_t)l * PK_PSLOTS, *nx = a + PK_PSLOTS;
        for (int e = 0; e < 9; e++) pk_prof_sum[e] += (double)(a[e + 1] - a[e]) * us;
        pk_prof_sum[9] += (double)(nx[0] - a[9]) * us;
        pk_prof_sum[10] += (double)(nx[0] - a[0]) * us;
        pk_prof_sum[11] += (double)(nx[13] - a[13]) * us;
        pk_prof_sum[12] += (double)(a[0] - a[12]) * us;
        const int evs[3] = {10, 14, 16};
        for (int q = 0; q < 3; q++) {
            long long amin = LLONG_MAX, amax = LLONG_MIN, rmin = LLONG_MAX;
            int last = 0;
            for (int b = 0; b < G; b++) {
                const long long *m = h + (size_t)b * per + (size_t)l * PK_PSLOTS + evs[q];
                if (m[0] < amin) amin = m[0];
                if (m[0] > amax) amax = m[0], last = b;
                if (m[1] < rmin) rmin = m[1];
            }
            pk_prof_sum[13 + 2 * q] += (double)(amax - amin) * us;
            pk_prof_sum[14 + 2 * q] += (double)(rmin - amax) * us;
            if (q == 0 && last < 1024) pk_prof_last[last]++;
        }
    }
    free(h);
    pk_prof_n += n_layer - 1;
    static long calls;
    if (++calls % 64) return;
    const double k = 1.0 / (double)pk_prof_n;
    int top = 0;
    for (int b = 1; b < G && b < 1024; b++)
        if (pk_prof_last[b] > pk_prof_last[top]) top = b;
    fprintf(stderr,
            "pk profile (us per layer) block 0: A wait %.2f norm %.2f in_proj %.2f conv %.2f x_proj %.2f | "
            "dbc wait %.2f B %.2f | y wait %.2f y load %.2f out_proj %.2f | layer %.2f; producer waits %.2f, "
            "lead %.2f\n  barriers (arrival spread / last arrival to release): residual %.2f / %.2f, dbc %.2f / %.2f, "
            "y %.2f / %.2f; last at the residual barrier most often: block %d (%d of %ld)\n",
            pk_prof_sum[0] * k, pk_prof_sum[1] * k, pk_prof_sum[2] * k, pk_prof_sum[3] * k, pk_prof_sum[4] * k,
            pk_prof_sum[5] * k, pk_prof_sum[6] * k, pk_prof_sum[7] * k, pk_prof_sum[8] * k, pk_prof_sum[9] * k,
            pk_prof_sum[10] * k, pk_prof_sum[11] * k, pk_prof_sum[12] * k, pk_prof_sum[13] * k, pk_prof_sum[14] * k,
            pk_prof_sum[15] * k, pk_prof_sum[16] * k, pk_prof_sum[17] * k, pk_prof_sum[18] * k, top,
            pk_prof_last[top], pk_prof_n);
    memset(pk_prof_sum, 0, sizeof pk_prof_sum);
    memset(pk_prof_last, 0, sizeof pk_prof_last);
    pk_prof_n = 0;
}

template <typename T, int NB>
static cudaError_t pk_launch(ms6_cuda_ctx *c, const PkParams *k, size_t smem) {
    cudaError_t e = cudaFuncSetAttribute(k_decode_persist<T, NB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)smem);
    if (e != cudaSuccess) return e;
    k_decode_persist<T, NB><<<c->prop.multiProcessorCount, PK_THREADS, smem, c->stream>>>(*k);
    return cudaGetLastError();
}

extern "C" ms6_status ms6_cuda_decode_step(ms6_backend *be, const ms6_decode_step_params *dp) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    const ms6_mixer_step_params *p0 = dp->n_layer > 0 ? &dp->layers[0] : NULL;
    const ms6_norm_gemv_params *h = &dp->head;
    int ok = ms6_env_is("MS6_CUDA_PERSIST", "1") && !ms6_env_is("MS6_CUDA_FUSED", "0") && c->prop.major >= 9 && p0 &&
             dp->n_layer <= PK_MAX_LAYERS && c->pk_scratch != NULL && !h->feed_pos; /* no fed-back argmax */
    if (ok) {
        cudaFuncAttributes fa;
        ok = cudaFuncGetAttributes(&fa, k_decode_persist<__half, 1>) == cudaSuccess && fa.binaryVersion >= 90 &&
             fa.ptxVersion >= 90;
        cudaGetLastError();
    }
    PkParams *k = ok ? (PkParams *)calloc(1, sizeof(PkParams)) : NULL;
    if (ok && !k) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "out of host memory");
    size_t smem = 0;
    if (ok) {
        const int64_t n = p0->n, dm = p0->d_model, di = p0->d_inner, N = p0->d_state, R = p0->dt_rank;
        const int64_t nb = R + 2 * N, G4 = N / 4;
        ok = n >= 1 && n <= 2 && (p0->w_dtype == MS6_DTYPE_F16 || p0->w_dtype == MS6_DTYPE_BF16) &&
             h->w_dtype == p0->w_dtype && h->n == n && h->dim == dm && dm % 8 == 0 && di % 8 == 0 && R >= 1 &&
             N % 4 == 0 && G4 >= 1 && G4 <= 16 && (G4 & (G4 - 1)) == 0 && p0->d_conv >= 2 && p0->d_conv <= 8 &&
             (size_t)2 * n * nb * sizeof(float) <= MS6_CUDA_PK_SCRATCH - 256 && di < (1 << 28) && dm < (1 << 28) &&
             h->rows < (1 << 30) && ms6_aligned16(h->w) && ms6_aligned16(p0->y) && p0->ssm_slot_stride % 4 == 0 &&
             ms6_aligned16(p0->residual);
        const int G = c->prop.multiProcessorCount;
        k->n_layer = (int)dp->n_layer;
        k->dm = (int)dm, k->di = (int)di, k->N = (int)N, k->R = (int)R, k->nb = (int)nb, k->dc = (int)p0->d_conv;
        k->vocab = (int)h->rows;
        k->eps = p0->eps;
        k->conv_stride = p0->conv_slot_stride;
        k->ssm_stride = p0->ssm_slot_stride;
        k->slots = p0->slots;
        k->residual = p0->residual;
        k->y = p0->y;
        k->logits = h->out;
        k->ldo = h->ldo;
        k->dbc = (float *)((char *)c->pk_scratch + 256);
        k->counter = (unsigned *)c->pk_scratch;
        k->norm_f = h->norm;
        k->lm_head = h->w;
        k->ngmax = (int)((di / 8 + G - 1) / G);
        const char *la = getenv("MS6_PK_L2AHEAD");
        k->l2_ahead = la ? atoi(la) : 8;
        for (int64_t i = 0; ok && i < dp->n_layer; i++) {
            const ms6_mixer_step_params *q = &dp->layers[i];
            ok = q->n == n && q->d_model == dm && q->d_inner == di && q->d_state == N && q->dt_rank == R &&
                 q->d_conv == p0->d_conv && q->w_dtype == p0->w_dtype && q->residual == p0->residual &&
                 q->slots == p0->slots && q->y == p0->y && q->conv_slot_stride == p0->conv_slot_stride &&
                 q->ssm_slot_stride == p0->ssm_slot_stride && q->eps == p0->eps && ms6_aligned16(q->in_proj) &&
                 ms6_aligned16(q->out_proj) && ms6_aligned16(q->x_proj) && ms6_aligned16(q->dt_proj) &&
                 ms6_aligned16(q->ssm_state);
            PkLayer *L = &k->layer[i];
            L->in_proj = q->in_proj, L->x_proj = q->x_proj, L->dt_proj = q->dt_proj, L->out_proj = q->out_proj;
            L->norm = q->norm, L->in_bias = q->in_proj_bias, L->conv_w = q->conv_w, L->conv_b = q->conv_b;
            L->dt_bias = q->dt_bias, L->A = q->A, L->D = q->D, L->out_bias = q->out_proj_bias;
            L->conv_state = q->conv_state, L->ssm_state = q->ssm_state;
        }
        if (ok) smem = pk_layout(k, (int)n, 2, (size_t)c->prop.sharedMemPerBlockOptin);
        ok = ok && smem > 0 && k->ns >= PK_CONS;
    }
    if (!ok) {
        free(k);
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "persistent decode step: shape not supported");
    }
    if (dp->check_only) {
        free(k);
        return MS6_STATUS_OK;
    }
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    const int prof = ms6_env_is("MS6_PK_PROFILE", "1") && cudaStreamIsCapturing(c->stream, &cs) == cudaSuccess &&
                     cs == cudaStreamCaptureStatusNone &&
                     (pk_prof_dev || cudaMalloc(&pk_prof_dev, sizeof(long long) * PK_PSLOTS * (PK_MAX_LAYERS + 1) *
                                                               c->prop.multiProcessorCount) == cudaSuccess);
    k->prof = prof ? pk_prof_dev : NULL;
    cudaError_t e = cudaMemsetAsync(c->pk_scratch, 0, 256 + sizeof(float) * 2 * (size_t)k->nb * dp->layers[0].n,
                                    c->stream);
    if (e == cudaSuccess) {
        const int bf = dp->layers[0].w_dtype == MS6_DTYPE_BF16;
        if (dp->layers[0].n == 1)
            e = bf ? pk_launch<__nv_bfloat16, 1>(c, k, smem) : pk_launch<__half, 1>(c, k, smem);
        else
            e = bf ? pk_launch<__nv_bfloat16, 2>(c, k, smem) : pk_launch<__half, 2>(c, k, smem);
    }
    if (e == cudaSuccess && prof) pk_prof_report(c, (int)dp->n_layer, c->prop.multiProcessorCount);
    free(k);
    return ms6_cuda_check(be, e, "persistent decode step");
}
