/*
 * fast_gemm.c - y (M, N) = x (M, K) . W^T (+ bias) (+ y), W a PyTorch Linear
 * weight (N, K) in f32, f16 or bf16, converted to fp32 in registers.
 *
 * Decode (M <= MS6_GEMV_MAX_M): a matrix-vector product that streams W
 * once; the rows of W are cut into chunks that the threads take in turn,
 * each chunk read by one thread (memory-bound: the aim is W bytes / copy
 * bandwidth).
 *
 * Prefill (larger M): a blocked GEMM in the BLIS order. A chunk is a block
 * of NC rows of W (columns of y); for each KC-wide slice of K the thread
 * converts and packs that block into fp32 panels (kept in L2, each KC x 16
 * panel in L1) and sweeps all rows of x over it with a 6 x 16 register
 * kernel. Each packed W value is used M times.
 *
 * Determinism: chunks depend on the shape only, and every y element is
 * computed inside one chunk as a chain of FMAs over k in K-blocks of the
 * fixed size KC, so results do not depend on the thread count. Checked against a float64 loop and the reference op in
 * tests/test_cpu_fast.c.
 */
#include "backend/cpu/fast.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const ms6_gemm_params *p; /* x, y fp32 here */
    const ms6_fast_kernels *k;
    float **pack;
    int64_t chunk; /* rows of W (columns of y) per chunk */
} gemm_job;

static void gemv_chunk(void *arg, int64_t chunk, int tid) {
    const gemm_job *j = arg;
    const ms6_gemm_params *p = j->p;
    (void)tid;
    const int64_t n0 = chunk * j->chunk, n1 = n0 + j->chunk < p->N ? n0 + j->chunk : p->N;
    /* at most MS6_GEMV_MAX_M rows of x at a time: each pass streams W once */
    for (int64_t m = 0; m < p->M; m += MS6_GEMV_MAX_M) {
        const int64_t mm = p->M - m < MS6_GEMV_MAX_M ? p->M - m : MS6_GEMV_MAX_M;
        j->k->gemv(mm, p->K, (const float *)p->x + m * p->ldx, p->ldx, p->w, p->w_dtype, p->ldw, n0, n1,
                   (float *)p->y + m * p->ldy, p->ldy, p->bias, p->accumulate);
    }
}

static void gemm_chunk(void *arg, int64_t chunk, int tid) {
    const gemm_job *j = arg;
    const ms6_gemm_params *p = j->p;
    const ms6_fast_kernels *k = j->k;
    enum { MR = MS6_GEMM_MR, NR = MS6_GEMM_NR, KC = MS6_GEMM_KC, MC = MS6_GEMM_MC };
    const int64_t jc = chunk * j->chunk, nc = p->N - jc < j->chunk ? p->N - jc : j->chunk;
    float *bp = j->pack[tid];
    const float *x = p->x;
    float *y = p->y;
    for (int64_t pc = 0; pc < p->K; pc += KC) {
        const int64_t kc = p->K - pc < KC ? p->K - pc : KC;
        for (int64_t jp = 0; jp < nc; jp += NR)
            k->pack_w(p->w, p->w_dtype, p->ldw, jc + jp, (int)(nc - jp < NR ? nc - jp : NR), pc, kc, bp + jp * kc);
        const int load_c = pc > 0 || p->accumulate;
        const int last = pc + kc >= p->K;
        for (int64_t ic = 0; ic < p->M; ic += MC) {
            const int64_t mc = p->M - ic < MC ? p->M - ic : MC;
            for (int64_t jp = 0; jp < nc; jp += NR) {
                const int nr = (int)(nc - jp < NR ? nc - jp : NR);
                const float *bias = last && p->bias ? p->bias + jc + jp : NULL;
                for (int64_t ir = ic; ir < ic + mc; ir += MR)
                    k->micro(kc, x + ir * p->ldx + pc, p->ldx, (int)(ic + mc - ir < MR ? ic + mc - ir : MR),
                             bp + jp * kc, y + ir * p->ldy + jc + jp, p->ldy, nr, load_c, bias);
            }
        }
    }
}

static ms6_status gemm_f32(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    gemm_job j = {p, c->k, c->pack, 0};
    if (p->M <= MS6_GEMV_MAX_M) {
        /* chunks of at least 64 rows of W and ~64K multiply-adds (a few us),
         * a multiple of the 8-row kernel; set by the shape alone */
        int64_t rows = (65536 / (p->K * p->M) + 7) & ~(int64_t)7;
        j.chunk = rows < 64 ? 64 : rows;
        ms6_threadpool_for(c->pool, (p->N + j.chunk - 1) / j.chunk, gemv_chunk, &j);
    } else {
        j.chunk = MS6_GEMM_NC;
        ms6_threadpool_for(c->pool, (p->N + j.chunk - 1) / j.chunk, gemm_chunk, &j);
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_fast_gemm(ms6_backend *be, const ms6_gemm_params *p) {
    if (p->M == 0) return MS6_STATUS_OK;
    if (p->x_dtype == MS6_DTYPE_F32 && p->y_dtype == MS6_DTYPE_F32) return gemm_f32(be, p);
    /* x or y in f16/bf16: run the fp32 product on fp32 copies */
    ms6_gemm_params q = *p;
    float *xf = NULL, *yf = NULL;
    size_t bytes;
    if (p->x_dtype != MS6_DTYPE_F32) {
        if (!ms6_mul_ok((size_t)p->M, (size_t)p->K, &bytes) || !ms6_mul_ok(bytes, sizeof(float), &bytes) ||
            !(xf = malloc(bytes)))
            return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "gemm: out of memory converting x (%lld x %lld)",
                                    (long long)p->M, (long long)p->K);
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t kk = 0; kk < p->K; kk++) xf[m * p->K + kk] = ms6_load(p->x, p->x_dtype, m * p->ldx + kk);
        q.x = xf;
        q.x_dtype = MS6_DTYPE_F32;
        q.ldx = p->K;
    }
    if (p->y_dtype != MS6_DTYPE_F32) {
        if (!ms6_mul_ok((size_t)p->M, (size_t)p->N, &bytes) || !ms6_mul_ok(bytes, sizeof(float), &bytes) ||
            !(yf = malloc(bytes))) {
            free(xf);
            return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "gemm: out of memory converting y (%lld x %lld)",
                                    (long long)p->M, (long long)p->N);
        }
        if (p->accumulate)
            for (int64_t m = 0; m < p->M; m++)
                for (int64_t n = 0; n < p->N; n++) yf[m * p->N + n] = ms6_load(p->y, p->y_dtype, m * p->ldy + n);
        q.y = yf;
        q.y_dtype = MS6_DTYPE_F32;
        q.ldy = p->N;
    }
    ms6_status st = gemm_f32(be, &q);
    if (yf)
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t n = 0; n < p->N; n++) ms6_store(p->y, p->y_dtype, m * p->ldy + n, yf[m * p->N + n]);
    free(xf);
    free(yf);
    return st;
}
