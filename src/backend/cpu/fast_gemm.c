/*
 * fast_gemm.c - y (M, N) = x (M, K) . W^T (+ bias) (+ y), W a PyTorch Linear
 * weight (N, K) in f32, f16 or bf16, converted to fp32 in registers.
 *
 * Decode (M = 1) is a matrix-vector product, memory-bound (the aim is W
 * bytes / copy bandwidth); prefill (M = L) is compute-bound. The parallel
 * loop runs over chunks of rows of W; a chunk computes all M
 * rows of y for its columns (fast_kern.h): for decode one W row after the
 * other, so each thread reads one sequential stream and every W byte once;
 * for prefill tile by tile (3 rows of x by 4 rows of W in registers), the
 * chunk's W rows staying in L2 while all tiles of x pass over them.
 *
 * Determinism: every y element is computed inside one chunk in one fixed
 * order (fast_kern.h), whatever M, the chunk or the thread count. Checked
 * against a float64 loop and the reference op in tests/test_cpu_fast.c.
 */
#include "backend/cpu/fast.h"

#include <stdlib.h>
#include <string.h>

/* Smallest chunk, in multiply-adds. For decode a chunk is a run of W rows
 * read as sequential streams: longer runs read faster (measured, 790m f16
 * decode on one core: 88 ms/token with 32K, 82 with 64K, 78 with 128K,
 * 76 with 256K; two threads best at 128K), while enough chunks remain to
 * share every op between the threads (in_proj of the 130m shape: 12). */
#define GEMM_CHUNK_MACS 131072

typedef struct {
    const ms6_gemm_params *p; /* x, y fp32 here */
    const ms6_fast_kernels *k;
    int64_t rows;             /* rows of W per chunk */
} gemm_job;

static void gemm_chunk(void *arg, int64_t chunk, int tid) {
    const gemm_job *j = arg;
    const ms6_gemm_params *p = j->p;
    (void)tid;
    const int64_t n0 = chunk * j->rows, n1 = n0 + j->rows < p->N ? n0 + j->rows : p->N;
    j->k->gemm(p->M, p->K, p->x, p->ldx, p->w, p->w_dtype, p->ldw, n0, n1, p->y, p->ldy, p->bias, p->accumulate);
}

static ms6_status gemm_f32(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    /* prefill: at least MS6_GEMM_NC rows per chunk (W reuse from L2); both:
     * at least GEMM_CHUNK_MACS multiply-adds. From the shape only, never from
     * the thread count. */
    int64_t rows = p->M > 1 ? MS6_GEMM_NC : 16;
    while (rows < p->N && rows * p->K * p->M < GEMM_CHUNK_MACS) rows *= 2;
    gemm_job j = {p, c->k, rows};
    ms6_threadpool_for(c->pool, (p->N + rows - 1) / rows, gemm_chunk, &j);
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
