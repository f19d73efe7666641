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
 *
 * Optional BLAS: a build with MS6_BLAS links OpenBLAS, and with
 * MS6_CPU_BLAS=1 in the environment the prefill products over f32 weights
 * (M >= MS6_BLAS_MIN_M) go to cblas_sgemm on OpenBLAS's own threads (as many
 * as the backend has). Its summation order is its own: results then depend
 * on M and the thread count within rounding, unlike the default kernels.
 */
#include "backend/cpu/fast.h"

#include <stdlib.h>
#include <string.h>
#ifdef MS6_HAVE_BLAS
#include <cblas.h>
#endif

#define MS6_BLAS_MIN_M 16

int ms6_fast_blas_compiled(void) {
#ifdef MS6_HAVE_BLAS
    return 1;
#else
    return 0;
#endif
}

int ms6_fast_blas_wanted(void) {
    const char *e = getenv("MS6_CPU_BLAS");
    return ms6_fast_blas_compiled() && e && !strcmp(e, "1");
}

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

#ifdef MS6_HAVE_BLAS
/* y = x . W^T (+ bias) (+ y) through cblas_sgemm; f32 everywhere. */
static void gemm_blas(const ms6_cpu_ctx *c, const ms6_gemm_params *p) {
    float *y = p->y;
    float beta = p->accumulate ? 1.0f : 0.0f;
    if (p->bias) {
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t n = 0; n < p->N; n++) y[m * p->ldy + n] = (p->accumulate ? y[m * p->ldy + n] : 0.0f) + p->bias[n];
        beta = 1.0f;
    }
    openblas_set_num_threads(c->n_threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)p->M, (blasint)p->N, (blasint)p->K, 1.0f, p->x,
                (blasint)p->ldx, p->w, (blasint)p->ldw, beta, y, (blasint)p->ldy);
}
#endif

static ms6_status gemm_f32(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_cpu_ctx *c = be->ctx;
#ifdef MS6_HAVE_BLAS
    if (c->use_blas && p->M >= MS6_BLAS_MIN_M && p->w_dtype == MS6_DTYPE_F32 && p->M <= INT32_MAX &&
        p->N <= INT32_MAX && p->K <= INT32_MAX && p->ldx <= INT32_MAX && p->ldw <= INT32_MAX && p->ldy <= INT32_MAX) {
        gemm_blas(c, p);
        return MS6_STATUS_OK;
    }
#endif
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
