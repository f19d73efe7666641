/*
 * prefill_ops_check.c - the CUDA prefill ops on the shapes the model uses
 * (channel counts that are multiples of 8, token-major, long L, the fast
 * paths of conv1d.cu and norm.cu) against the float64 loops of
 * tests/kernel_harness.c, on fresh random inputs, with test_cuda_kernels'
 * tolerances (f32 5e-4, f16/bf16 3e-3, states 1e-4). test_cuda_kernels
 * sweeps small odd shapes; this adds the model's. The harness's RMSNorm
 * rows are deliberately misaligned, so the aligned (vectorised) RMSNorm is
 * checked here by its own float64 loop, rows packed, with the residual
 * written back checked too. Exit status 1 on any
 * failure, 77 without a GPU.
 *   gcc -O2 -std=c11 -Iinclude -Isrc -Itests -DMS6_SOURCE_DIR=\"$PWD\" dev/cuda/prefill_ops_check.c tests/kernel_harness.c \
 *       tests/testutil.c BUILD/libmamba_s6.a -L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas \
 *       -lstdc++ -lcjson -lpcre2-8 -lutf8proc -lm -lpthread -o prefill_ops_check
 */
#include "kernel_harness.h"

#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -DCHECK_BACKEND=MS6_BACKEND_CPU runs the same cases on the CPU (a check of the checks) */
#ifndef CHECK_BACKEND
#define CHECK_BACKEND MS6_BACKEND_CUDA
#endif

static int n_cases, n_fail;

static void check(const char *what, ms6_status st, const kh_result *r, ms6_dtype io, const char *msg) {
    const double tol = io == MS6_DTYPE_F32 ? 5e-4 : 3e-3;
    n_cases++;
    const int ok = st == MS6_STATUS_OK && !r->nan && r->rel <= tol && r->state_rel <= 1e-4 && r->untouched_ok;
    if (!ok) {
        n_fail++;
        printf("FAIL %s: status %d (%s) rel %.3g state %.3g nan %d untouched %d\n", what, (int)st, msg, r->rel,
               r->state_rel, r->nan, r->untouched_ok);
    }
}

/* RMSNorm on packed (aligned) rows against a float64 loop. */
static void norm_case(ms6_backend *be, tu_rng *rng, int64_t R, int64_t D, int has_res, int add_x, int has_w,
                      ms6_dtype xt, ms6_dtype ot) {
    const size_t n = (size_t)(R * D), xs = ms6_dtype_size(xt), os = ms6_dtype_size(ot);
    float *x = malloc(n * sizeof(float)), *r0 = malloc(n * sizeof(float)), *w = malloc(D * sizeof(float));
    void *xh = malloc(n * xs), *oh = malloc(n * os);
    float *rh = malloc(n * sizeof(float));
    void *xd = NULL, *od = NULL, *rd = NULL, *wd = NULL;
    for (size_t i = 0; i < n; i++) {
        ms6_store(xh, xt, (int64_t)i, (float)(2.0 * tu_normal(rng)));
        x[i] = ms6_load(xh, xt, (int64_t)i);
        r0[i] = (float)(3.0 * tu_normal(rng));
    }
    for (int64_t i = 0; i < D; i++) w[i] = (float)(1.0 + 0.2 * tu_normal(rng));
    ms6_status st = ms6_backend_alloc(be, n * xs, &xd);
    if (!st) st = ms6_backend_alloc(be, n * os, &od);
    if (!st) st = ms6_backend_alloc(be, n * sizeof(float), &rd);
    if (!st) st = ms6_backend_alloc(be, D * sizeof(float), &wd);
    if (!st) st = ms6_backend_upload(be, xd, xh, n * xs);
    if (!st) st = ms6_backend_upload(be, rd, r0, n * sizeof(float));
    if (!st) st = ms6_backend_upload(be, wd, w, D * sizeof(float));
    memset(oh, 0xff, n * os); /* NaN poison */
    if (!st) st = ms6_backend_upload(be, od, oh, n * os);
    ms6_rmsnorm_params p = {0};
    p.rows = R; p.dim = D;
    p.x = xd; p.x_dtype = xt; p.x_row_stride = D;
    p.out = od; p.out_dtype = ot; p.out_row_stride = D;
    p.residual = has_res ? rd : NULL; p.residual_row_stride = D;
    p.add_x = has_res && add_x;
    p.weight = has_w ? wd : NULL;
    p.eps = 1e-5f;
    if (!st) st = ms6_rmsnorm(be, &p);
    if (!st) st = ms6_backend_download(be, oh, od, n * os);
    if (!st) st = ms6_backend_download(be, rh, rd, n * sizeof(float));
    double num = 0, den = 0, rnum = 0, rden = 0;
    int nan = 0;
    for (int64_t r = 0; r < R && !st; r++) {
        double ss = 0;
        for (int64_t i = 0; i < D; i++) {
            const double v = has_res ? (double)r0[r * D + i] + (add_x ? x[r * D + i] : 0.0) : x[r * D + i];
            ss += v * v;
        }
        const double inv = 1.0 / sqrt(ss / (double)D + 1e-5);
        for (int64_t i = 0; i < D; i++) {
            const double v = has_res ? (double)r0[r * D + i] + (add_x ? x[r * D + i] : 0.0) : x[r * D + i];
            const double ref = v * inv * (has_w ? w[i] : 1.0), got = ms6_load(oh, ot, r * D + i);
            if (!isfinite(got)) nan = 1;
            num += (got - ref) * (got - ref);
            den += ref * ref;
            if (has_res) {
                rnum += (rh[r * D + i] - v) * (rh[r * D + i] - v);
                rden += v * v;
            }
        }
    }
    kh_result res = {0};
    res.rel = den > 0 ? sqrt(num / den) : 0;
    res.state_rel = rden > 0 ? sqrt(rnum / rden) : 0;
    res.nan = nan;
    res.untouched_ok = 1;
    char what[256];
    snprintf(what, sizeof what, "rmsnorm packed rows=%lld dim=%lld residual=%d add_x=%d weight=%d x %s out %s",
             (long long)R, (long long)D, has_res, add_x, has_w, ms6_dtype_name(xt), ms6_dtype_name(ot));
    check(what, st, &res, xt == MS6_DTYPE_F32 && ot == MS6_DTYPE_F32 ? MS6_DTYPE_F32 : MS6_DTYPE_F16,
          st ? ms6_backend_last_error(be) : "");
    ms6_backend_dealloc(be, xd); ms6_backend_dealloc(be, od); ms6_backend_dealloc(be, rd); ms6_backend_dealloc(be, wd);
    free(x); free(r0); free(w); free(xh); free(oh); free(rh);
}

int main(void) {
    ms6_backend *be;
    ms6_error err;
    if (ms6_backend_create(CHECK_BACKEND, NULL, &be, &err) != MS6_STATUS_OK) {
        printf("skip: %s\n", err.message);
        return 77;
    }
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("prefill_ops_check"));
    const ms6_dtype dts[3] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    char msg[512], what[256];
    int k = 0;
    /* conv1d: dims multiple of 8, every K of the fast path, L across the
     * segment boundaries (8, 16, 32) and the model's 2048 */
    const int64_t dims[] = {8, 64, 136, 1536};
    const int64_t Ls[] = {1, 3, 8, 9, 33, 100, 2048};
    for (int64_t K = 2; K <= 5; K++)
        for (int di = 0; di < 4; di++)
            for (int li = 0; li < 7; li++)
                for (int ti = 0; ti < 3; ti++, k++) {
                    kh_conv_case c = {0};
                    c.batch = 1 + k % 2; c.dim = dims[di]; c.L = Ls[li]; c.K = K; c.io = dts[ti];
                    c.has_bias = k % 2; c.activation = (k / 2) % 2 || li == 6; c.has_init = (k % 3) != 0;
                    c.want_final = (k % 4) != 0; c.token_major = 1;
                    if (c.dim * c.L * c.batch > 4000000) continue;
                    msg[0] = 0;
                    kh_result r;
                    ms6_status st = kh_run_conv(be, &c, &rng, &r, msg);
                    snprintf(what, sizeof what, "conv1d b=%lld dim=%lld L=%lld K=%lld bias=%d act=%d init=%d final=%d %s",
                             (long long)c.batch, (long long)c.dim, (long long)c.L, (long long)K, c.has_bias,
                             c.activation, c.has_init, c.want_final, ms6_dtype_name(c.io));
                    check(what, st, &r, c.io, msg);
                }
    /* rmsnorm: the model's widths, residual (+ x) in fp32, out in each type */
    const int64_t ndims[] = {768, 2560, 4, 1000, 8192};
    for (int di = 0; di < 5; di++)
        for (int mode = 0; mode < 3; mode++)
            for (int xi = 0; xi < 3; xi++)
                for (int oi = 0; oi < 3; oi++, k++) {
                    kh_norm_case c = {0};
                    c.rows = 1 + (k % 7) * 37; c.dim = ndims[di];
                    c.has_residual = mode > 0; c.add_x = mode == 2; c.has_weight = k % 3 != 0;
                    c.x_dtype = dts[xi]; c.out_dtype = dts[oi];
                    msg[0] = 0;
                    kh_result r;
                    ms6_status st = kh_run_norm(be, &c, &rng, &r, msg);
                    snprintf(what, sizeof what, "rmsnorm rows=%lld dim=%lld residual=%d add_x=%d weight=%d x %s out %s",
                             (long long)c.rows, (long long)c.dim, c.has_residual, c.add_x, c.has_weight,
                             ms6_dtype_name(c.x_dtype), ms6_dtype_name(c.out_dtype));
                    check(what, st, &r, c.out_dtype == MS6_DTYPE_F32 && c.x_dtype == MS6_DTYPE_F32 ? MS6_DTYPE_F32
                                                                                                   : MS6_DTYPE_F16,
                          msg);
                }
    const int64_t pdims[] = {768, 2560, 4, 160, 16, 32768, 100};
    for (int di = 0; di < 7; di++)
        for (int mode = 0; mode < 3; mode++)
            for (int xi = 0; xi < 3; xi++)
                for (int oi = 0; oi < 3; oi++, k++)
                    norm_case(be, &rng, 1 + (k % 5) * 41, pdims[di], mode > 0, mode == 2, k % 3 != 0, dts[xi], dts[oi]);
    printf("prefill_ops_check: %d cases, %d failed\n", n_cases, n_fail);
    ms6_backend_free(be);
    return n_fail ? 1 : 0;
}
