/*
 * test_cuda_ops.c - the CUDA gemm, rmsnorm and embedding ops against
 * independent float64 loops on fresh random inputs.
 *
 * gemm: every (x, W, y) dtype combination, both paths (the skinny kernel for
 * M <= 2, cuBLASLt above), odd K, padded leading dimensions, bias and
 * accumulate; the padding between N and ldy must stay untouched. Inputs are
 * rounded to their dtype before the oracle sees them. The tolerance is the
 * rounding of y to its dtype, plus, on the cuBLASLt path, the rounding of x
 * to W's type when they differ (documented in gemm.cu).
 * rmsnorm: tests/kernel_harness.c's kh_run_norm on the CUDA backend.
 * embed: bit-exact against the host conversion of the same table row.
 * argmax_rows: equal to ms6_argmax on rows with planted ties (the first
 * index wins), NaNs, -inf, all-NaN rows and widths around the block size
 * and the 16-byte path; argmax_feed the same ids on the device, logged
 * twice, its position advanced; norm_gemv with the argmax fed back (the
 * generate loop's head) the same, ties planted across blocks.
 * ssm_step (decode_batch.cu: dt_proj + softplus + state update + D + gate
 * of a batched decode step): a float64 oracle on the weights rounded to
 * their dtype, over both dt paths (16-byte vectors of the staged rows for
 * dt_rank % 8 == 0 halves / % 4 fp32, the scalar loop otherwise), d_state
 * 4..32, partial channel tiles and sequence blocks, padded and unaligned
 * dbc rows, optional bias / D / z, padding and out-of-range slots (y 0 /
 * NaN, no state touched), y padding untouched; unsupported shapes refused.
 * graph: a skinny gemm, a cuBLASLt gemm and an rmsnorm captured once into a
 * CUDA graph, then replayed on fresh inputs uploaded into the same buffers.
 * Exits 77 when no GPU is usable.
 */
#include "backend/backend.h"
#include "backend/cuda/graph.h"
#include "kernel_harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int n_cases = 0;

static double qd(double v, ms6_dtype t) {
    float f = (float)v;
    uint16_t h;
    switch (t) {
    case MS6_DTYPE_F16: h = ms6_f32_to_f16(f); return ms6_f16_to_f32(h);
    case MS6_DTYPE_BF16: h = ms6_f32_to_bf16(f); return ms6_bf16_to_f32(h);
    default: return f;
    }
}

static double round_tol(ms6_dtype t) { return t == MS6_DTYPE_F16 ? 1.5e-3 : t == MS6_DTYPE_BF16 ? 1e-2 : 0.0; }

typedef struct gemm_case {
    int64_t M, N, K, padx, padw, pady;
    ms6_dtype xt, wt, yt;
    int bias, accumulate;
} gemm_case;

static void run_gemm_case(ms6_backend *be, const gemm_case *c, tu_rng *rng) {
    const int64_t M = c->M, N = c->N, K = c->K;
    const int64_t ldx = K + c->padx, ldw = K + c->padw, ldy = N + c->pady;
    const size_t xs = ms6_dtype_size(c->xt), ws = ms6_dtype_size(c->wt), ys = ms6_dtype_size(c->yt);
    double *x = malloc(sizeof(double) * M * K), *w = malloc(sizeof(double) * N * K);
    double *b = malloc(sizeof(double) * N), *y0 = malloc(sizeof(double) * M * N);
    double *ref = malloc(sizeof(double) * M * N), *got = malloc(sizeof(double) * M * N);
    void *hx = calloc((size_t)(M * ldx + 8), xs), *hw = calloc((size_t)(N * ldw + 8), ws);
    void *hy = calloc((size_t)(M * ldy + 8), ys);
    float *hb = calloc((size_t)N, sizeof(float));
    void *dx = NULL, *dw = NULL, *dy = NULL, *db = NULL;
    char what[256];
    snprintf(what, sizeof what, "gemm M=%lld N=%lld K=%lld ld+(%lld,%lld,%lld) x=%s w=%s y=%s bias=%d acc=%d",
             (long long)M, (long long)N, (long long)K, (long long)c->padx, (long long)c->padw, (long long)c->pady,
             ms6_dtype_name(c->xt), ms6_dtype_name(c->wt), ms6_dtype_name(c->yt), c->bias, c->accumulate);
    n_cases++;
    if (!x || !w || !b || !y0 || !ref || !got || !hx || !hw || !hy || !hb) {
        CHECK(0, "%s: out of host memory", what);
        goto done;
    }
    /* weights ~ 1/sqrt(K) so outputs are O(1) whatever K */
    const double sc = 1.0 / sqrt((double)K);
    for (int64_t i = 0; i < M * K; i++) x[i] = qd(tu_normal(rng), c->xt);
    for (int64_t i = 0; i < N * K; i++) w[i] = qd(sc * tu_normal(rng), c->wt);
    for (int64_t i = 0; i < N; i++) b[i] = (float)(0.5 * tu_normal(rng));
    for (int64_t i = 0; i < M * N; i++) y0[i] = qd(tu_normal(rng), c->yt);
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) ms6_store(hx, c->xt, m * ldx + k, (float)x[m * K + k]);
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) ms6_store(hw, c->wt, n * ldw + k, (float)w[n * K + k]);
    for (int64_t n = 0; n < N; n++) hb[n] = (float)b[n];
    /* y: the accumulate input where it is read, 7.0 in the padding */
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < ldy; n++) ms6_store(hy, c->yt, m * ldy + n, n < N ? (float)y0[m * N + n] : 7.0f);
    if (!c->accumulate)
        for (int64_t m = 0; m < M; m++) memset((char *)hy + (size_t)(m * ldy) * ys, 0xff, (size_t)N * ys);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
            if (c->bias) s += b[n];
            if (c->accumulate) s += y0[m * N + n];
            ref[m * N + n] = s;
        }
    ms6_status st;
    if ((st = ms6_backend_alloc(be, (size_t)(M * ldx + 8) * xs, &dx)) || (st = ms6_backend_alloc(be, (size_t)(N * ldw + 8) * ws, &dw)) ||
        (st = ms6_backend_alloc(be, (size_t)(M * ldy + 8) * ys, &dy)) || (st = ms6_backend_alloc(be, (size_t)N * 4, &db)) ||
        (st = ms6_backend_upload(be, dx, hx, (size_t)(M * ldx + 8) * xs)) ||
        (st = ms6_backend_upload(be, dw, hw, (size_t)(N * ldw + 8) * ws)) ||
        (st = ms6_backend_upload(be, dy, hy, (size_t)(M * ldy + 8) * ys)) ||
        (st = ms6_backend_upload(be, db, hb, (size_t)N * 4))) {
        CHECK(0, "%s: setup: %s", what, ms6_backend_last_error(be));
        goto done;
    }
    ms6_gemm_params p = {0};
    p.M = M; p.N = N; p.K = K;
    p.x = dx; p.x_dtype = c->xt; p.ldx = ldx;
    p.w = dw; p.w_dtype = c->wt; p.ldw = ldw;
    p.bias = c->bias ? db : NULL;
    p.y = dy; p.y_dtype = c->yt; p.ldy = ldy;
    p.accumulate = c->accumulate;
    char msg[MS6_ERRMSG_SIZE];
    st = ms6_validate_gemm(&p, msg);
    CHECK(st == MS6_STATUS_OK, "%s: validate: %s", what, msg);
    st = be->ops->gemm(be, &p);
    if (st == MS6_STATUS_OK) st = ms6_backend_synchronize(be);
    if (st == MS6_STATUS_OK) st = ms6_backend_download(be, hy, dy, (size_t)(M * ldy + 8) * ys);
    CHECK(st == MS6_STATUS_OK, "%s: %s", what, ms6_backend_last_error(be));
    if (st != MS6_STATUS_OK) goto done;
    int pad_ok = 1;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) got[m * N + n] = ms6_load(hy, c->yt, m * ldy + n);
        for (int64_t n = N; n < ldy; n++)
            if (ms6_load(hy, c->yt, m * ldy + n) != 7.0f) pad_ok = 0;
    }
    double rel, maxabs;
    const int bad = tu_compare(got, ref, M * N, &rel, &maxabs);
    double tol = 2e-5 + round_tol(c->yt);
    if (M > 2 && c->xt != c->wt) tol += round_tol(c->wt); /* cuBLASLt path may round x */
    CHECK(!bad, "%s: NaN or inf in output", what);
    CHECK(rel <= tol, "%s: rel err %.3g > %.3g (max abs %.3g)", what, rel, tol, maxabs);
    CHECK(pad_ok, "%s: wrote into the padding between N and ldy", what);
done:
    ms6_backend_dealloc(be, dx); ms6_backend_dealloc(be, dw); ms6_backend_dealloc(be, dy); ms6_backend_dealloc(be, db);
    free(x); free(w); free(b); free(y0); free(ref); free(got); free(hx); free(hw); free(hy); free(hb);
}

static void test_gemm(ms6_backend *be, tu_rng *rng) {
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    /* (M, N, K): skinny vec / skinny scalar (odd K) / cuBLASLt (small and
     * larger M) / fallback (odd K and strides) */
    const int64_t shapes[][3] = {{1, 67, 40}, {2, 33, 29}, {3, 33, 29}, {8, 96, 264}, {5, 130, 1024},
                                 {37, 72, 136}, {9, 40, 31}, {130, 260, 96}};
    int k = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int xi = 0; xi < 3; xi++)
            for (int wi = 0; wi < 3; wi++)
                for (int yi = 0; yi < 3; yi++, k++) {
                    gemm_case c = {0};
                    c.M = shapes[s][0]; c.N = shapes[s][1]; c.K = shapes[s][2];
                    c.xt = dts[xi]; c.wt = dts[wi]; c.yt = dts[yi];
                    c.bias = k % 2;
                    c.accumulate = (k / 2) % 2;
                    /* padded strides on a third of the cases, odd pads (no 16-byte rows) on some */
                    if (k % 3 == 1) { c.padx = 8; c.padw = 16; c.pady = 3; }
                    if (k % 3 == 2) { c.padx = 1; c.padw = 3; c.pady = 1; }
                    run_gemm_case(be, &c, rng);
                }
    /* model-sized matrices: lm_head-like, x_proj-like (few long rows), a prefill chunk, and a
     * batched decode out_proj (64 rows, long K, added into an fp32 y: its algorithm is timed) */
    const int64_t big[][3] = {{1, 50280, 768}, {1, 192, 5120}, {2, 1536, 160}, {64, 2048, 768}, {300, 1024, 512},
                              {64, 1024, 4096}};
    for (size_t s = 0; s < sizeof big / sizeof big[0]; s++) {
        gemm_case c = {0};
        c.M = big[s][0]; c.N = big[s][1]; c.K = big[s][2];
        c.xt = s % 2 ? MS6_DTYPE_BF16 : MS6_DTYPE_F16;
        c.wt = c.xt;
        c.yt = s == 3 || s == 5 ? MS6_DTYPE_F32 : c.xt;
        c.bias = s == 2;
        c.accumulate = s == 4 || s == 5;
        run_gemm_case(be, &c, rng);
    }
    /* the same shape twice reuses the cached cuBLASLt plan */
    gemm_case c = {0};
    c.M = 37; c.N = 72; c.K = 136; c.xt = c.wt = c.yt = MS6_DTYPE_F16;
    run_gemm_case(be, &c, rng);
    run_gemm_case(be, &c, rng);
    /* M = 0 is a no-op */
    ms6_gemm_params p = {0};
    float one = 1;
    p.M = 0; p.N = 1; p.K = 1; p.x = &one; p.w = &one; p.y = &one;
    CHECK(be->ops->gemm(be, &p) == MS6_STATUS_OK, "gemm M=0");
}

static void test_norm(ms6_backend *be, tu_rng *rng) {
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {2, 768}, {64, 2560}, {5, 5000}};
    int k = 0;
    char msg[512];
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int xi = 0; xi < 3; xi++)
            for (int oi = 0; oi < 3; oi++)
                for (int flags = 0; flags < 4; flags++, k++) {
                    kh_norm_case c = {0};
                    c.rows = shapes[s][0]; c.dim = shapes[s][1];
                    c.x_dtype = dts[xi]; c.out_dtype = dts[oi];
                    c.has_residual = flags & 1;
                    c.add_x = (flags >> 1) & 1;
                    c.has_weight = (k % 3) != 0;
                    kh_result r;
                    msg[0] = 0;
                    ms6_status st = kh_run_norm(be, &c, rng, &r, msg);
                    n_cases++;
                    const char *what = "rmsnorm";
                    CHECK(st == MS6_STATUS_OK, "%s rows=%lld dim=%lld: %s", what, (long long)c.rows, (long long)c.dim, msg);
                    if (st != MS6_STATUS_OK) continue;
                    CHECK(!r.nan, "%s rows=%lld dim=%lld x=%s out=%s: NaN", what, (long long)c.rows, (long long)c.dim,
                          ms6_dtype_name(c.x_dtype), ms6_dtype_name(c.out_dtype));
                    CHECK(r.rel <= kh_tolerance(c.out_dtype), "%s rows=%lld dim=%lld x=%s out=%s res=%d add=%d: rel %.3g",
                          what, (long long)c.rows, (long long)c.dim, ms6_dtype_name(c.x_dtype),
                          ms6_dtype_name(c.out_dtype), c.has_residual, c.add_x, r.rel);
                    CHECK(r.state_rel <= 2e-5, "%s rows=%lld dim=%lld: residual rel %.3g", what, (long long)c.rows,
                          (long long)c.dim, r.state_rel);
                }
}

static void test_embed(ms6_backend *be, tu_rng *rng) {
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    const int64_t vocab = 101, dims[] = {1, 37, 2560};
    for (int di = 0; di < 3; di++)
        for (int ti = 0; ti < 3; ti++)
            for (int oi = 0; oi < 3; oi++) {
                const int64_t dim = dims[di], n = 9, ldo = dim + 3;
                const ms6_dtype tt = dts[ti], ot = dts[oi];
                void *ht = calloc((size_t)(vocab * dim), ms6_dtype_size(tt));
                void *ho = calloc((size_t)(n * ldo), ms6_dtype_size(ot));
                int32_t ids[9];
                void *dt = NULL, *dout = NULL, *dids = NULL;
                n_cases++;
                for (int64_t i = 0; i < vocab * dim; i++) ms6_store(ht, tt, i, (float)tu_normal(rng));
                for (int i = 0; i < n; i++) ids[i] = i == 0 ? 0 : i == 1 ? (int32_t)(vocab - 1) : (int32_t)(tu_next(rng) % vocab);
                memset(ho, 0xff, (size_t)(n * ldo) * ms6_dtype_size(ot));
                ms6_status st = MS6_STATUS_OK;
                if (!ht || !ho || (st = ms6_backend_alloc(be, (size_t)(vocab * dim) * ms6_dtype_size(tt), &dt)) ||
                    (st = ms6_backend_alloc(be, (size_t)(n * ldo) * ms6_dtype_size(ot), &dout)) ||
                    (st = ms6_backend_alloc(be, sizeof ids, &dids)) ||
                    (st = ms6_backend_upload(be, dt, ht, (size_t)(vocab * dim) * ms6_dtype_size(tt))) ||
                    (st = ms6_backend_upload(be, dout, ho, (size_t)(n * ldo) * ms6_dtype_size(ot))) ||
                    (st = ms6_backend_upload(be, dids, ids, sizeof ids))) {
                    CHECK(0, "embed setup: %s", ms6_backend_last_error(be));
                } else {
                    ms6_embed_params p = {0};
                    p.n = n; p.dim = dim; p.ids = dids; p.table = dt; p.table_dtype = tt;
                    p.out = dout; p.out_dtype = ot; p.ldo = ldo;
                    st = be->ops->embed(be, &p);
                    if (!st) st = ms6_backend_synchronize(be);
                    if (!st) st = ms6_backend_download(be, ho, dout, (size_t)(n * ldo) * ms6_dtype_size(ot));
                    CHECK(st == MS6_STATUS_OK, "embed: %s", ms6_backend_last_error(be));
                    int bad = 0, pad = 0;
                    for (int i = 0; i < n && !st; i++)
                        for (int64_t j = 0; j < ldo; j++) {
                            const size_t es = ms6_dtype_size(ot);
                            if (j >= dim) {
                                const unsigned char *b = (const unsigned char *)ho + (size_t)(i * ldo + j) * es;
                                for (size_t q = 0; q < es; q++) pad |= b[q] != 0xff;
                                continue;
                            }
                            uint32_t want = 0, have = 0;
                            unsigned char tmp[4];
                            ms6_store(tmp, ot, 0, ms6_load(ht, tt, ids[i] * dim + j));
                            memcpy(&want, tmp, es);
                            memcpy(&have, (const char *)ho + (size_t)(i * ldo + j) * es, es);
                            bad += want != have;
                        }
                    CHECK(!bad, "embed dim=%lld table=%s out=%s: %d elements differ", (long long)dim,
                          ms6_dtype_name(tt), ms6_dtype_name(ot), bad);
                    CHECK(!pad, "embed dim=%lld: wrote past dim in a row", (long long)dim);
                }
                ms6_backend_dealloc(be, dt); ms6_backend_dealloc(be, dout); ms6_backend_dealloc(be, dids);
                free(ht); free(ho);
            }
}

/* Graph capture: y1 = x1 . W^T (M = 1), out = rmsnorm(y1), y2 = x2 . W^T
 * (M = 16, cuBLASLt); replayed three times on new x1, x2. */
static void test_graph(ms6_backend *be, tu_rng *rng) {
    enum { N = 96, K = 64, M2 = 16 };
    uint16_t hw[N * K], hx1[K], hx2[M2 * K];
    float hy1[N], hout[N], hy2[M2 * N];
    double w[N * K], x1[K], x2[M2 * K];
    void *dw = NULL, *dx1 = NULL, *dx2 = NULL, *dy1 = NULL, *dout = NULL, *dy2 = NULL;
    n_cases++;
    for (int i = 0; i < N * K; i++) {
        hw[i] = ms6_f32_to_f16((float)(tu_normal(rng) / 8));
        w[i] = ms6_f16_to_f32(hw[i]);
    }
    ms6_status st;
    if ((st = ms6_backend_alloc(be, sizeof hw, &dw)) || (st = ms6_backend_alloc(be, sizeof hx1, &dx1)) ||
        (st = ms6_backend_alloc(be, sizeof hx2, &dx2)) || (st = ms6_backend_alloc(be, sizeof hy1, &dy1)) ||
        (st = ms6_backend_alloc(be, sizeof hout, &dout)) || (st = ms6_backend_alloc(be, sizeof hy2, &dy2)) ||
        (st = ms6_backend_upload(be, dw, hw, sizeof hw))) {
        CHECK(0, "graph setup: %s", ms6_backend_last_error(be));
        goto done;
    }
    ms6_gemm_params g1 = {0}, g2 = {0};
    g1.M = 1; g1.N = N; g1.K = K; g1.x = dx1; g1.x_dtype = MS6_DTYPE_F16; g1.ldx = K;
    g1.w = dw; g1.w_dtype = MS6_DTYPE_F16; g1.ldw = K; g1.y = dy1; g1.y_dtype = MS6_DTYPE_F32; g1.ldy = N;
    g2 = g1;
    g2.M = M2; g2.x = dx2; g2.y = dy2;
    ms6_rmsnorm_params rn = {0};
    rn.rows = 1; rn.dim = N; rn.x = dy1; rn.x_dtype = MS6_DTYPE_F32; rn.x_row_stride = N;
    rn.out = dout; rn.out_dtype = MS6_DTYPE_F32; rn.out_row_stride = N; rn.eps = 1e-5f;
    ms6_cuda_graph *graph = NULL;
    /* one eager run first: cuBLASLt picks its plan and workspace outside the capture */
    st = ms6_cuda_graph_prepare(be);
    if (!st) st = be->ops->gemm(be, &g2);
    if (!st) st = ms6_backend_synchronize(be);
    CHECK(st == MS6_STATUS_OK, "graph warm-up: %s", ms6_backend_last_error(be));
    if (st) goto done;
    st = ms6_cuda_graph_begin(be);
    CHECK(st == MS6_STATUS_OK, "graph begin: %s", ms6_backend_last_error(be));
    if (st) goto done;
    ms6_status s1 = be->ops->gemm(be, &g1), s2 = be->ops->rmsnorm(be, &rn), s3 = be->ops->gemm(be, &g2);
    st = ms6_cuda_graph_end(be, !s1 && !s2 && !s3, &graph);
    CHECK(!s1 && !s2 && !s3 && st == MS6_STATUS_OK && graph, "graph capture: %s", ms6_backend_last_error(be));
    if (!graph) goto done;
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < K; i++) {
            hx1[i] = ms6_f32_to_f16((float)tu_normal(rng));
            x1[i] = ms6_f16_to_f32(hx1[i]);
        }
        for (int i = 0; i < M2 * K; i++) {
            hx2[i] = ms6_f32_to_f16((float)tu_normal(rng));
            x2[i] = ms6_f16_to_f32(hx2[i]);
        }
        st = ms6_backend_upload(be, dx1, hx1, sizeof hx1);
        if (!st) st = ms6_backend_upload(be, dx2, hx2, sizeof hx2);
        if (!st) st = ms6_cuda_graph_launch(be, graph);
        if (!st) st = ms6_backend_synchronize(be);
        if (!st) st = ms6_backend_download(be, hy1, dy1, sizeof hy1);
        if (!st) st = ms6_backend_download(be, hout, dout, sizeof hout);
        if (!st) st = ms6_backend_download(be, hy2, dy2, sizeof hy2);
        CHECK(st == MS6_STATUS_OK, "graph replay %d: %s", rep, ms6_backend_last_error(be));
        if (st) break;
        double r1[N], ro[N], r2[M2 * N], got1[N], goto_[N], got2[M2 * N], ss = 0;
        for (int n = 0; n < N; n++) {
            double a = 0;
            for (int k = 0; k < K; k++) a += x1[k] * w[n * K + k];
            r1[n] = a;
            ss += a * a;
            got1[n] = hy1[n];
            goto_[n] = hout[n];
        }
        for (int n = 0; n < N; n++) ro[n] = r1[n] / sqrt(ss / N + 1e-5);
        for (int m = 0; m < M2; m++)
            for (int n = 0; n < N; n++) {
                double a = 0;
                for (int k = 0; k < K; k++) a += x2[m * K + k] * w[n * K + k];
                r2[m * N + n] = a;
                got2[m * N + n] = hy2[m * N + n];
            }
        double e1, e2, e3, mx;
        int bad = tu_compare(got1, r1, N, &e1, &mx) | tu_compare(goto_, ro, N, &e2, &mx) |
                  tu_compare(got2, r2, M2 * N, &e3, &mx);
        CHECK(!bad && e1 <= 1e-5 && e2 <= 1e-5 && e3 <= 1e-5, "graph replay %d: rel err gemv %.3g norm %.3g lt %.3g",
              rep, e1, e2, e3);
    }
    ms6_cuda_graph_free(graph);
done:
    ms6_backend_dealloc(be, dw); ms6_backend_dealloc(be, dx1); ms6_backend_dealloc(be, dx2);
    ms6_backend_dealloc(be, dy1); ms6_backend_dealloc(be, dout); ms6_backend_dealloc(be, dy2);
}

static void test_argmax(ms6_backend *be, tu_rng *rng) {
    /* 16-byte loads where n % 4 == 0 (rows stay aligned): 4, 8, 1024, 4100, 50280 */
    const int64_t widths[] = {1, 4, 5, 8, 1023, 1024, 1025, 4100, 50280};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
        const int64_t n = widths[wi], rows = 7;
        float *h = malloc(sizeof(float) * (size_t)(rows * n));
        void *d = NULL;
        int32_t got[7];
        if (!h || ms6_backend_alloc(be, sizeof(float) * (size_t)(rows * n), &d) != MS6_STATUS_OK) {
            CHECK(0, "argmax: allocation");
            free(h);
            return;
        }
        for (int64_t r = 0; r < rows; r++) {
            float *x = h + r * n;
            for (int64_t i = 0; i < n; i++) x[i] = (float)tu_uniform_range(rng, -8, 8);
            const int64_t a = (int64_t)(tu_next(rng) % (uint64_t)n), b = (int64_t)(tu_next(rng) % (uint64_t)n);
            switch (r) {
            case 1: x[a] = x[b] = 9.0f; break;                               /* tie: the smaller index */
            case 2: x[a] = NAN; x[b] = 9.0f; break;                          /* NaN below every number */
            case 3: for (int64_t i = 0; i < n; i++) x[i] = NAN; break;       /* all NaN: index 0 */
            case 4: for (int64_t i = 0; i < n; i++) x[i] = -INFINITY; break; /* all -inf: index 0 */
            case 5: for (int64_t i = 0; i < n; i++) x[i] = i % 3 ? NAN : -1.0f; break;
            case 6: x[n - 1] = 9.0f; break;                                  /* the last element */
            default: break;
            }
        }
        ms6_status st = ms6_backend_upload(be, d, h, sizeof(float) * (size_t)(rows * n));
        if (!st) st = be->ops->argmax_rows(be, (const float *)d, rows, n, got);
        CHECK(st == MS6_STATUS_OK, "argmax n=%lld: %s", (long long)n, ms6_backend_last_error(be));
        for (int64_t r = 0; r < rows && !st; r++) {
            n_cases++;
            CHECK(got[r] == ms6_argmax(h + r * n, n), "argmax n=%lld row %lld: %d, ms6_argmax %d", (long long)n,
                  (long long)r, (int)got[r], (int)ms6_argmax(h + r * n, n));
        }
        /* argmax_feed twice: ids on the device, the log at positions 0 and 1, pos = {2, 0} */
        int32_t *dev = NULL, back[7 + 2 * 7 + 2];
        const int32_t init[7 + 2 * 7 + 2] = {0};
        if (!st) st = ms6_backend_alloc(be, sizeof back, (void **)&dev);
        if (!st) st = ms6_backend_upload(be, dev, init, sizeof init);
        for (int k = 0; k < 2 && !st; k++)
            st = be->ops->argmax_feed(be, (const float *)d, rows, n, dev, dev + rows, dev + 3 * rows);
        if (!st) st = ms6_backend_download(be, back, dev, sizeof back);
        CHECK(st == MS6_STATUS_OK, "argmax_feed n=%lld: %s", (long long)n, ms6_backend_last_error(be));
        for (int64_t r = 0; r < rows && !st; r++) {
            const int32_t want = ms6_argmax(h + r * n, n);
            n_cases++;
            CHECK(back[r] == want && back[rows + r] == want && back[2 * rows + r] == want,
                  "argmax_feed n=%lld row %lld: id %d, log %d %d, ms6_argmax %d", (long long)n, (long long)r,
                  (int)back[r], (int)back[rows + r], (int)back[2 * rows + r], (int)want);
        }
        CHECK(st || (back[3 * rows] == 2 && back[3 * rows + 1] == 0), "argmax_feed n=%lld: pos %d %d, want 2 0",
              (long long)n, (int)back[3 * rows], (int)back[3 * rows + 1]);
        ms6_backend_dealloc(be, dev);
        ms6_backend_dealloc(be, d);
        free(h);
    }
}

/* norm_gemv with the argmax fed back (the head of ms6_session_generate_greedy):
 * the fed id == ms6_argmax of the op's own out row, with ties planted across
 * blocks (two equal rows far apart; 50280 rows: a block loops over several
 * row groups in the default head), NaN rows, all-NaN and all-equal rows;
 * logged at positions 0 and 1; the op's counters back to zero */
static void test_head_feed(ms6_backend *be, tu_rng *rng) {
    const int64_t dim = 256, widths[] = {1, 17, 5000, 50280};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (int kind = 0; kind < 4; kind++) {
            const int64_t rows = widths[wi];
            uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(rows * dim));
            float *x = malloc(sizeof(float) * dim), *nw = malloc(sizeof(float) * dim);
            float *out = malloc(sizeof(float) * (size_t)rows);
            void *dw = NULL, *dx = NULL, *dn = NULL, *dout = NULL;
            int32_t *dfeed = NULL, back[3 + 2 + MS6_FEED_POS];
            const int32_t init[3 + 2 + MS6_FEED_POS] = {0};
            ms6_status st = w && x && nw && out ? MS6_STATUS_OK : MS6_STATUS_OUT_OF_MEMORY;
            if (!st) st = ms6_backend_alloc(be, sizeof(uint16_t) * (size_t)(rows * dim), &dw);
            if (!st) st = ms6_backend_alloc(be, sizeof(float) * dim, &dx);
            if (!st) st = ms6_backend_alloc(be, sizeof(float) * dim, &dn);
            if (!st) st = ms6_backend_alloc(be, sizeof(float) * (size_t)rows, &dout);
            if (!st) st = ms6_backend_alloc(be, sizeof back, (void **)&dfeed);
            if (st) {
                CHECK(0, "head feed: allocation");
                goto next;
            }
            for (int64_t i = 0; i < dim; i++) {
                x[i] = (float)tu_uniform_range(rng, -1, 1);
                nw[i] = (float)tu_uniform_range(rng, 0.5, 1.5);
            }
            for (int64_t i = 0; i < rows * dim; i++) w[i] = ms6_f32_to_f16((float)tu_uniform_range(rng, -0.1, 0.1));
            const int64_t a = rows / 3, b = rows - 1; /* a <= b: the tie goes to a */
            const uint16_t nan = 0x7e00;
            for (int64_t i = 0; i < dim; i++) {
                const uint16_t big = ms6_f32_to_f16(x[i] > 0 ? 0.5f : -0.5f);
                if (kind <= 1) w[a * dim + i] = w[b * dim + i] = big;
                if (kind == 1 && rows > 2) w[(a + 1) * dim + i] = w[i] = nan; /* NaN rows beside it */
                if (kind == 2)
                    for (int64_t r = 0; r < rows; r++) w[r * dim + i] = nan;
                if (kind == 3)
                    for (int64_t r = 0; r < rows; r++) w[r * dim + i] = big;
            }
            st = ms6_backend_upload(be, dw, w, sizeof(uint16_t) * (size_t)(rows * dim));
            if (!st) st = ms6_backend_upload(be, dx, x, sizeof(float) * dim);
            if (!st) st = ms6_backend_upload(be, dn, nw, sizeof(float) * dim);
            if (!st) st = ms6_backend_upload(be, dfeed, init, sizeof init);
            ms6_norm_gemv_params p = {
                .n = 1, .dim = dim, .rows = rows, .x = dx, .norm = dn, .eps = 1e-5f,
                .w = dw, .w_dtype = MS6_DTYPE_F16, .out = dout, .ldo = rows,
                .feed_ids = dfeed, .feed_log = dfeed + 1, .feed_pos = dfeed + 8,
            };
            for (int k = 0; k < 2 && !st; k++) st = be->ops->norm_gemv(be, &p);
            if (!st) st = ms6_backend_download(be, back, dfeed, sizeof back);
            if (!st) st = ms6_backend_download(be, out, dout, sizeof(float) * (size_t)rows);
            CHECK(st == MS6_STATUS_OK, "head feed rows=%lld kind %d: %s", (long long)rows, kind,
                  ms6_backend_last_error(be));
            if (!st) {
                const int32_t want = ms6_argmax(out, rows);
                n_cases++;
                CHECK(back[0] == want && back[1] == want && back[2] == want,
                      "head feed rows=%lld kind %d: id %d, log %d %d, ms6_argmax %d", (long long)rows, kind,
                      (int)back[0], (int)back[1], (int)back[2], (int)want);
                CHECK(kind != 0 || rows < 3 || want == a, "head feed rows=%lld: the planted tie's argmax %d, not %lld",
                      (long long)rows, (int)want, (long long)a);
                CHECK(back[8] == 2 && back[10] == 0 && back[11] == 0 && back[12] == 0,
                      "head feed rows=%lld kind %d: pos %d, max %d %d, count %d (want 2 0 0 0)", (long long)rows,
                      kind, (int)back[8], (int)back[10], (int)back[11], (int)back[12]);
            }
        next:
            ms6_backend_dealloc(be, dw); ms6_backend_dealloc(be, dx); ms6_backend_dealloc(be, dn);
            ms6_backend_dealloc(be, dout); ms6_backend_dealloc(be, dfeed);
            free(w); free(x); free(nw); free(out);
        }
    /* two sequences cannot feed back: UNSUPPORTED with check_only */
    static _Alignas(16) float dummy[512];
    static _Alignas(16) int32_t ifeed[16];
    ms6_norm_gemv_params q = {
        .check_only = 1, .n = 2, .dim = 256, .rows = 8, .x = dummy, .norm = dummy, .eps = 1e-5f,
        .w = dummy, .w_dtype = MS6_DTYPE_F16, .out = dummy, .ldo = 8,
        .feed_ids = ifeed, .feed_log = ifeed, .feed_pos = ifeed + 8,
    };
    CHECK(be->ops->norm_gemv(be, &q) == MS6_STATUS_UNSUPPORTED, "head feed: two sequences accepted");
    q.n = 1;
    CHECK(be->ops->norm_gemv(be, &q) == MS6_STATUS_OK, "head feed: one sequence refused: %s",
          ms6_backend_last_error(be));
}

/* ---- ssm_step ---- */

typedef struct ssm_case {
    int64_t n, di, N, R;
    ms6_dtype wt;
    int ld_pad;     /* extra floats per dbc row; odd: rows not 16-byte aligned */
    int dbc_shift;  /* dbc starts 1 float past an aligned address */
    int bias, D, z;
    int bad_slots;  /* one padding slot (-1) and one past n_slots */
} ssm_case;

static double softplus_d(double x) { return x > 20.0 ? x : log1p(exp(x)); }

static void run_ssm_case(ms6_backend *be, const ssm_case *c, tu_rng *rng) {
    const int64_t n = c->n, di = c->di, N = c->N, R = c->R;
    const int64_t nb = R + 2 * N, ldd = nb + c->ld_pad, ldu = di + 3, ldz = 2 * di, ldy = di + 5;
    const int64_t n_slots = 2 * n + 3, ss = di * N;
    const size_t wsz = ms6_dtype_size(c->wt);
    float *dbc = calloc((size_t)(n * ldd + 4), sizeof(float)), *u = calloc((size_t)(n * ldu), sizeof(float));
    float *z = calloc((size_t)(n * ldz), sizeof(float)), *bias = malloc(sizeof(float) * (size_t)di);
    float *A = malloc(sizeof(float) * (size_t)(di * N)), *D = malloc(sizeof(float) * (size_t)di);
    float *state = malloc(sizeof(float) * (size_t)(n_slots * ss)), *y = malloc(sizeof(float) * (size_t)(n * ldy));
    double *wd = malloc(sizeof(double) * (size_t)(di * R)), *ref_state = malloc(sizeof(double) * (size_t)(n_slots * ss));
    double *ref_y = malloc(sizeof(double) * (size_t)(n * di));
    float *got_state = malloc(sizeof(float) * (size_t)(n_slots * ss)), *got_y = malloc(sizeof(float) * (size_t)(n * ldy));
    void *w = malloc(wsz * (size_t)(di * R));
    int32_t *slots = malloc(sizeof(int32_t) * (size_t)n);
    char what[256];
    snprintf(what, sizeof what, "ssm_step n=%lld di=%lld N=%lld R=%lld w=%s ld+%d shift=%d bias=%d D=%d z=%d bad=%d",
             (long long)n, (long long)di, (long long)N, (long long)R, ms6_dtype_name(c->wt), c->ld_pad, c->dbc_shift,
             c->bias, c->D, c->z, c->bad_slots);
    /* inputs: dt . W around [-3, 1] before the bias, delta mostly 1e-3..1 */
    for (int64_t i = 0; i < n * ldd + 4; i++) dbc[i] = (float)tu_uniform_range(rng, -1, 1);
    for (int64_t i = 0; i < n * ldu; i++) u[i] = (float)tu_uniform_range(rng, -2, 2);
    for (int64_t i = 0; i < n * ldz; i++) z[i] = (float)tu_uniform_range(rng, -3, 3);
    for (int64_t i = 0; i < di * R; i++) {
        const float v = (float)(tu_uniform_range(rng, -1.5, 1.5) / sqrt((double)R));
        wd[i] = qd(v, c->wt);
        if (c->wt == MS6_DTYPE_F32) ((float *)w)[i] = v;
        else ((uint16_t *)w)[i] = c->wt == MS6_DTYPE_F16 ? ms6_f32_to_f16(v) : ms6_f32_to_bf16(v);
    }
    for (int64_t i = 0; i < di; i++) {
        bias[i] = (float)tu_uniform_range(rng, -4, 0);
        D[i] = (float)tu_uniform_range(rng, -1, 1);
    }
    if (di > 3) bias[3] = 24.0f; /* past softplus's threshold */
    for (int64_t i = 0; i < di * N; i++) A[i] = (float)-tu_uniform_range(rng, 0.05, 8);
    for (int64_t i = 0; i < n_slots * ss; i++) state[i] = (float)tu_uniform_range(rng, -1, 1);
    /* distinct slots: a shuffled prefix of 0..n_slots-1 */
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)n_slots);
    for (int64_t i = 0; i < n_slots; i++) perm[i] = (int32_t)i;
    for (int64_t i = n_slots - 1; i > 0; i--) {
        const int64_t j = (int64_t)(tu_next(rng) % (uint64_t)(i + 1));
        const int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (int64_t b = 0; b < n; b++) slots[b] = perm[b];
    free(perm);
    if (c->bad_slots && n >= 3) {
        slots[1] = -1;
        slots[n - 1] = (int32_t)(n_slots + 5);
    }
    for (int64_t i = 0; i < n * ldy; i++) y[i] = 1234.5f; /* the padding columns must keep this */
    /* the oracle */
    const float *dd = dbc + c->dbc_shift;
    for (int64_t i = 0; i < n_slots * ss; i++) ref_state[i] = state[i];
    for (int64_t b = 0; b < n; b++) {
        const int32_t sl = slots[b];
        for (int64_t ch = 0; ch < di; ch++) {
            if (sl < 0 || sl >= n_slots) {
                ref_y[b * di + ch] = sl < 0 ? 0.0 : NAN;
                continue;
            }
            double dt = c->bias ? bias[ch] : 0.0;
            for (int64_t k = 0; k < R; k++) dt += wd[ch * R + k] * dd[b * ldd + k];
            const double delta = softplus_d(dt), uv = u[b * ldu + ch];
            double acc = 0;
            for (int64_t k = 0; k < N; k++) {
                double *h = &ref_state[sl * ss + ch * N + k];
                *h = exp(delta * A[ch * N + k]) * *h + delta * uv * dd[b * ldd + R + k];
                acc += *h * dd[b * ldd + R + N + k];
            }
            if (c->D) acc += D[ch] * uv;
            if (c->z) {
                const double zv = z[b * ldz + ch];
                acc *= zv / (1.0 + exp(-zv));
            }
            ref_y[b * di + ch] = acc;
        }
    }
    void *d_dbc = NULL, *d_u = NULL, *d_z = NULL, *d_w = NULL, *d_bias = NULL, *d_A = NULL, *d_D = NULL;
    void *d_state = NULL, *d_slots = NULL, *d_y = NULL;
    ms6_status st = MS6_STATUS_OK;
    struct { void **d; const void *h; size_t bytes; } bufs[] = {
        {&d_dbc, dbc, sizeof(float) * (size_t)(n * ldd + 4)}, {&d_u, u, sizeof(float) * (size_t)(n * ldu)},
        {&d_z, z, sizeof(float) * (size_t)(n * ldz)},          {&d_w, w, wsz * (size_t)(di * R)},
        {&d_bias, bias, sizeof(float) * (size_t)di},           {&d_A, A, sizeof(float) * (size_t)(di * N)},
        {&d_D, D, sizeof(float) * (size_t)di},                 {&d_state, state, sizeof(float) * (size_t)(n_slots * ss)},
        {&d_slots, slots, sizeof(int32_t) * (size_t)n},        {&d_y, y, sizeof(float) * (size_t)(n * ldy)},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && !st; i++) {
        st = ms6_backend_alloc(be, bufs[i].bytes, bufs[i].d);
        if (!st) st = ms6_backend_upload(be, *bufs[i].d, bufs[i].h, bufs[i].bytes);
    }
    ms6_ssm_step_params p = {
        .check_only = 1,
        .n = n, .d_inner = di, .d_state = N, .dt_rank = R,
        .dbc = (const float *)d_dbc + c->dbc_shift, .ld_dbc = ldd,
        .u = d_u, .ld_u = ldu,
        .z = c->z ? (const float *)d_z : NULL, .ld_z = ldz,
        .dt_proj = d_w, .dt_proj_dtype = c->wt,
        .dt_bias = c->bias ? d_bias : NULL,
        .A = d_A, .D = c->D ? d_D : NULL,
        .state = d_state, .slot_stride = ss, .n_slots = n_slots,
        .slots = d_slots,
        .y = d_y, .ld_y = ldy,
    };
    if (!st) st = be->ops->ssm_step(be, &p);
    CHECK(st == MS6_STATUS_OK, "%s: check_only: %s", what, ms6_backend_last_error(be));
    p.check_only = 0;
    if (!st) st = be->ops->ssm_step(be, &p);
    if (!st) st = ms6_backend_download(be, got_state, d_state, sizeof(float) * (size_t)(n_slots * ss));
    if (!st) st = ms6_backend_download(be, got_y, d_y, sizeof(float) * (size_t)(n * ldy));
    CHECK(st == MS6_STATUS_OK, "%s: %s", what, ms6_backend_last_error(be));
    if (!st) {
        n_cases++;
        double num = 0, den = 0, snum = 0, sden = 0;
        int bad_special = 0, bad_pad = 0;
        for (int64_t b = 0; b < n; b++) {
            for (int64_t ch = 0; ch < di; ch++) {
                const double r = ref_y[b * di + ch], g = got_y[b * ldy + ch];
                if (isnan(r)) { bad_special += !isnan(g); continue; }
                if (slots[b] < 0) { bad_special += g != 0.0; continue; }
                num += (g - r) * (g - r);
                den += r * r;
            }
            for (int64_t ch = di; ch < ldy; ch++) bad_pad += got_y[b * ldy + ch] != 1234.5f;
        }
        for (int64_t i = 0; i < n_slots * ss; i++) {
            const double dlt = got_state[i] - ref_state[i];
            snum += dlt * dlt;
            sden += ref_state[i] * ref_state[i];
        }
        const double rel = sqrt(num / (den > 0 ? den : 1)), srel = sqrt(snum / (sden > 0 ? sden : 1));
        CHECK(rel <= 2e-5 && srel <= 2e-5, "%s: rel err y %.3g, state %.3g (> 2e-5)", what, rel, srel);
        CHECK(bad_special == 0, "%s: %d padding / out-of-range outputs not 0 / NaN", what, bad_special);
        CHECK(bad_pad == 0, "%s: %d y padding columns written", what, bad_pad);
    }
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ms6_backend_dealloc(be, *bufs[i].d);
    free(dbc); free(u); free(z); free(bias); free(A); free(D); free(state); free(y); free(wd); free(ref_state);
    free(ref_y); free(got_state); free(got_y); free(w); free(slots);
}

static void test_ssm_step(ms6_backend *be, tu_rng *rng) {
    if (!be->ops->ssm_step) {
        CHECK(0, "the cuda backend has no ssm_step op");
        return;
    }
    const ssm_case cases[] = {
        /* n, di, N, R, wt, ld_pad, shift, bias, D, z, bad */
        {64, 5120, 16, 160, MS6_DTYPE_F16, 0, 0, 1, 1, 1, 0},  /* 2.8b at batch 64: vector path, 20 vectors a row */
        {70, 96, 16, 48, MS6_DTYPE_F16, 0, 0, 1, 1, 1, 1},     /* 130m's dt_rank, 70 sequences (a partial block) */
        {9, 200, 16, 160, MS6_DTYPE_BF16, 0, 0, 0, 1, 1, 1},   /* a partial channel tile */
        {17, 128, 16, 256, MS6_DTYPE_F16, 4, 0, 1, 0, 1, 0},   /* dt_rank 256, padded dbc rows */
        {3, 64, 16, 160, MS6_DTYPE_F16, 1, 1, 1, 1, 0, 1},     /* dbc rows unaligned: staged a float at a time */
        {5, 64, 32, 64, MS6_DTYPE_BF16, 0, 0, 1, 1, 1, 0},     /* N 32: 8 lanes a channel */
        {11, 80, 8, 16, MS6_DTYPE_F32, 0, 0, 1, 1, 1, 1},      /* fp32 weights, N 8 */
        {8, 40, 4, 8, MS6_DTYPE_F16, 0, 0, 1, 1, 1, 0},        /* N 4: one lane a channel */
        {3, 64, 16, 4, MS6_DTYPE_F16, 0, 0, 1, 1, 1, 0},       /* scalar dt loop (dt_rank % 8 != 0) */
        {13, 96, 8, 5, MS6_DTYPE_BF16, 0, 0, 1, 1, 1, 1},      /* scalar, odd dbc rows */
        {8, 40, 4, 7, MS6_DTYPE_F32, 0, 0, 0, 0, 0, 0},        /* scalar, N 4, nothing optional */
        {4, 64, 32, 3, MS6_DTYPE_F32, 2, 1, 1, 1, 1, 1},       /* scalar, N 32 */
        {256, 512, 16, 96, MS6_DTYPE_BF16, 0, 0, 1, 1, 1, 1},  /* 790m's dt_rank, 256 sequences */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_ssm_case(be, &cases[i], rng);
    /* shapes the op does not take: a clear UNSUPPORTED with check_only */
    /* (check_only reads no memory: host pointers stand in) */
    static _Alignas(16) float dummy[64];
    int32_t sl = 0;
    ms6_ssm_step_params p = {
        .check_only = 1, .n = 3, .d_inner = 16, .d_state = 16, .dt_rank = 4,
        .dbc = dummy, .ld_dbc = 4 + 32, .u = dummy, .ld_u = 16, .dt_proj = dummy, .dt_proj_dtype = MS6_DTYPE_F32,
        .A = dummy, .state = dummy, .slot_stride = 16 * 16, .n_slots = 3, .slots = &sl, .y = dummy, .ld_y = 16,
    };
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_OK, "ssm_step: a valid shape refused: %s", ms6_backend_last_error(be));
    p.d_state = 64; p.ld_dbc = 4 + 128; p.slot_stride = 16 * 64;
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_UNSUPPORTED, "ssm_step: d_state 64 accepted");
    CHECK(strstr(ms6_backend_last_error(be), "not supported") != NULL, "ssm_step message: %s", ms6_backend_last_error(be));
    p.d_state = 12; p.ld_dbc = 4 + 24; p.slot_stride = 16 * 12;
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_UNSUPPORTED, "ssm_step: d_state 12 accepted");
    p.d_state = 16; p.ld_dbc = 4 + 32; p.slot_stride = 16 * 16; p.dt_proj_dtype = (ms6_dtype)7;
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_UNSUPPORTED, "ssm_step: dtype 7 accepted");
    p.dt_proj_dtype = MS6_DTYPE_F32; p.state = dummy + 1;
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_UNSUPPORTED, "ssm_step: unaligned state accepted");
    p.state = dummy; p.n = 0;
    CHECK(be->ops->ssm_step(be, &p) == MS6_STATUS_UNSUPPORTED, "ssm_step: n 0 accepted");
}

int main(void) {
    uint64_t seed = tu_seed("test_cuda_ops");
    tu_rng rng;
    tu_rng_init(&rng, seed);
    ms6_backend *be = NULL;
    ms6_error err;
    ms6_status st = ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err);
    if (st != MS6_STATUS_OK) {
        printf("skip: %s\n", err.message);
        return TEST_SKIP;
    }
    test_gemm(be, &rng);
    test_norm(be, &rng);
    test_embed(be, &rng);
    test_graph(be, &rng);
    test_argmax(be, &rng);
    test_head_feed(be, &rng); /* the head as one wave of looping blocks (the default) */
    setenv("MS6_DEC_HEAD_LOOP", "0", 1); /* and as a block per row group */
    test_head_feed(be, &rng);
    unsetenv("MS6_DEC_HEAD_LOOP");
    test_ssm_step(be, &rng);
    ms6_backend_free(be);
    printf("%d cases\n", n_cases);
    return tu_finish("test_cuda_ops");
}
