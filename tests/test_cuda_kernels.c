/*
 * test_cuda_kernels.c - the CUDA selective scan, state update and causal
 * conv1d kernels against independent float64 loops (tests/kernel_harness.c)
 * and the CPU reference, on fresh random inputs with every output poisoned
 * (NaN) before each run.
 *
 * Sweep: the shapes of tests/test_ref_kernels.c (L = 1, odd L, L >= 4096;
 * N = 1, 8, 16, 64, 256; one group and several; every flag on and off;
 * f32/f16/bf16; token-major and channel-major), each scan case run on both
 * kernels (direct and tiled), with every states-per-lane variant and with L
 * forced into chunks (the two-pass path); shapes near the benchmark's; a 300000-step sequence at small dim
 * (chunk chaining); element offsets past 2^31 (batch strides of 2^31 + 4096
 * elements, f16); out aliasing u; the chaining invariants; decode padding
 * and out-of-range slots; every state-update case also on the large-batch
 * kernel (MS6_UPDATE_FAST_MAX=0), and batches that select it by default.
 * Tolerances (relative L2): 5e-4 with f32 I/O, 3e-3 with f16/bf16 I/O (bf16
 * cases with fewer than 256 outputs: 2^-8 + 5e-4, see tol_io_n); fp32
 * states 1e-4.
 *
 * `--small` (or MS6_TEST_SMALL=1) runs a reduced sweep with small shapes for
 * compute-sanitizer. Exits 77 when no GPU is usable.
 */
#include "backend/backend.h"
#include "kernel_harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int n_cases = 0;
static int small_mode = 0;

#define F32_TOL 5e-4 /* relative error with f32 I/O */

/* bf16 has a unit roundoff of 2^-8, so rounding the output alone can reach
 * a relative L2 error of 3.9e-3 on a handful of values (about 1.5e-3 on
 * average): cases with fewer than 256 bf16 outputs get 2^-8 + 5e-4. */
static double tol_io_n(ms6_dtype t, int64_t n_out) {
    if (t == MS6_DTYPE_F32) return F32_TOL;
    if (t == MS6_DTYPE_BF16 && n_out < 256) return 1.0 / 256 + F32_TOL;
    return 3e-3;
}
#define STATE_TOL 1e-4

/* A half output can be no closer than the oracle rounded to its type: where
 * that alone is near the tolerance (a bf16 scan case of 1032 outputs failed
 * once at 3.1e-3 against 3e-3), the kernel may add at most the f32 tolerance
 * to it. */
static void check_result(const char *what, ms6_status st, const kh_result *r, double tol, const char *msg) {
    n_cases++;
    CHECK(st == MS6_STATUS_OK, "%s: status %s: %s", what, ms6_status_string(st), msg);
    if (st != MS6_STATUS_OK) return;
    if (tol > F32_TOL && r->round_rel + F32_TOL > tol) tol = r->round_rel + F32_TOL;
    CHECK(!r->nan, "%s: NaN or inf in output", what);
    CHECK(r->rel <= tol, "%s: rel err %.3g > %.3g (max abs %.3g; the oracle rounded to the I/O type: %.3g)", what,
          r->rel, tol, r->maxabs, r->round_rel);
    CHECK(r->state_rel <= STATE_TOL, "%s: state rel err %.3g > %g (max abs %.3g)", what, r->state_rel, STATE_TOL,
          r->state_maxabs);
    CHECK(r->untouched_ok, "%s: padding slots or unrequested outputs were written", what);
}

/* Runs one scan case with the kernel variant forced through the tuning
 * variables the scan reads (0 = its own choice). */
static void scan_case(ms6_backend *be, tu_rng *rng, const kh_scan_case *c, int force_s, int force_k, int direct) {
    char desc[256], msg[512] = {0}, what[400], v[32];
    if (direct >= 0) setenv("MS6_SCAN_DIRECT", direct ? "1" : "0", 1);
    snprintf(v, sizeof v, "%d", force_s);
    setenv("MS6_SCAN_S", v, 1);
    snprintf(v, sizeof v, "%d", force_k);
    setenv("MS6_SCAN_CHUNKS", v, 1);
    if (force_k) setenv("MS6_SCAN_MAX_TL", force_k == 64 ? "16" : "4", 1); /* short tiles: real chunks at small L */
    kh_result r;
    ms6_status st = kh_run_scan(be, c, rng, &r, msg);
    snprintf(what, sizeof what, "[cuda S=%d K=%d direct=%d] %s", force_s, force_k, direct,
             kh_describe_scan(c, desc, sizeof desc));
    check_result(what, st, &r, tol_io_n(c->io, c->batch * c->dim * c->L), msg);
    unsetenv("MS6_SCAN_S");
    unsetenv("MS6_SCAN_CHUNKS");
    unsetenv("MS6_SCAN_MAX_TL");
    unsetenv("MS6_SCAN_DIRECT");
}

/* One state-update case; force_large runs it on the kernel for large
 * batches whatever its size (MS6_UPDATE_FAST_MAX=0: the general kernel, or
 * v4, the default, or the general kernel under MS6_UPDATE_V4=0). */
static void update_case(ms6_backend *be, tu_rng *rng, const kh_update_case *c, int force_large) {
    char msg[512] = {0}, what[400];
    if (force_large) setenv("MS6_UPDATE_FAST_MAX", "0", 1);
    kh_result r;
    ms6_status st = kh_run_update(be, c, rng, &r, msg);
    if (force_large) unsetenv("MS6_UPDATE_FAST_MAX");
    snprintf(what, sizeof what,
             "[cuda%s] state_update b=%lld dim=%lld N=%lld G=%lld B%s C%s D=%d z=%d bias=%d sp=%d idx=%d %s",
             force_large ? " large-batch kernel" : "", (long long)c->batch, (long long)c->dim, (long long)c->N,
             (long long)c->G, c->b_variable ? "var" : "const", c->c_variable ? "var" : "const", c->has_D, c->has_z,
             c->has_dt_bias, c->softplus, c->use_indices, ms6_dtype_name(c->io));
    check_result(what, st, &r, tol_io_n(c->io, c->batch * c->dim), msg);
}

/* Batches large enough for the large-batch state-update kernel by default
 * (more than 16 x 5120 sequence-channel pairs): a batch that is not a
 * multiple of 4 sequences and a dim that is not a multiple of a block's
 * channels, permuted slots with padding entries, every option. */
static void update_large(ms6_backend *be, tu_rng *rng) {
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    const int64_t NG[][2] = {{16, 1}, {16, 4}, {32, 2}};
    for (int ni = 0; ni < 3; ni++)
        for (int di = 0; di < 3; di++)
            for (int flags = 0; flags < 4; flags++) {
                if (small_mode && (ni || flags % 2 == 0 || di == 2)) continue;
                if (ni == 2 && flags != 1) continue;
                const int64_t shape[5] = {1, NG[ni][0], 2216, 45, NG[ni][1]};
                kh_update_case c = kh_sweep_update_case(shape, dts[di], flags);
                c.batch = 45; /* 45 x 2216 = 99720 pairs */
                update_case(be, rng, &c, 0);
            }
}

static void sweep(ms6_backend *be, tu_rng *rng) {
    char msg[512], what[320];
    const int64_t shapes[][5] = {
        {1, 16, 8, 2, 2}, {7, 1, 6, 1, 1}, {33, 8, 12, 2, 3}, {129, 16, 8, 1, 2},
        {4100, 16, 4, 1, 1}, {17, 64, 8, 1, 4}, {9, 256, 4, 2, 2}, {300, 16, 200, 2, 4},
        {40, 16, 256, 1, 256}, /* one channel per group: many groups per block */
    };
    const int64_t small_shapes[][5] = {{1, 16, 8, 2, 2}, {33, 8, 12, 2, 3}, {70, 16, 40, 1, 2}, {9, 256, 4, 1, 2}};
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    const int64_t(*sh)[5] = small_mode ? small_shapes : shapes;
    const size_t ns = small_mode ? sizeof small_shapes / sizeof small_shapes[0] : sizeof shapes / sizeof shapes[0];
    int k = 0;
    for (size_t s = 0; s < ns; s++) {
        for (int di = 0; di < 3; di++) {
            for (int flags = 0; flags < 4; flags++, k++) {
                kh_scan_case c = kh_sweep_scan_case(sh[s], dts[di], flags, k);
                if (c.L > 1000 && flags) continue;
                if (small_mode && flags > 1) continue;
                scan_case(be, rng, &c, 0, 0, -1);
                if (c.N <= 16) scan_case(be, rng, &c, 0, 0, 0); /* the tiled kernel with its own choice */
                /* every states-per-lane variant, and the chunked two-pass path */
                const int svals[] = {4, 8, 16};
                for (int si = 0; si < 3; si++) {
                    if (svals[si] > (c.N > 8 ? 16 : c.N > 4 ? 8 : 4)) continue;
                    if ((c.N + svals[si] - 1) / svals[si] > 32) continue;
                    if ((k + si) % 2 == 0 || small_mode) scan_case(be, rng, &c, svals[si], 0, -1);
                }
                if (c.L >= 2) scan_case(be, rng, &c, 0, c.L >= 5 ? 5 : 2, -1);
                if (c.L >= 2 && c.N <= 16) scan_case(be, rng, &c, 0, c.L >= 5 ? 5 : 2, 0);
                if (c.L > 1000) scan_case(be, rng, &c, 0, 64, -1);
            }
            for (int flags = 0; flags < 4; flags++, k++) {
                kh_update_case c = kh_sweep_update_case(sh[s], dts[di], flags);
                update_case(be, rng, &c, 0);
                update_case(be, rng, &c, 1); /* the same on the large-batch kernel */
            }
        }
    }
    /* the vectorised prefill conv (conv1d.cu): channel-contiguous rows, dim
     * a multiple of 8, K <= 4, lengths around its 8-step segments */
    for (int64_t K = 2; K <= 4; K++) {
        const int64_t Ls[] = {1, 2, 7, 8, 9, 17, 1000};
        for (int li = 0; li < 7; li++) {
            for (int di = 0; di < 3; di++, k++) {
                if (small_mode && li % 3) continue;
                kh_conv_case c = {0};
                c.batch = 2; c.dim = li % 2 ? 64 : 200; c.L = Ls[li]; c.K = K; c.io = dts[di];
                c.has_bias = k % 2; c.activation = (k / 2) % 2; c.has_init = (k % 3) != 0;
                c.want_final = (k % 4) != 0; c.token_major = 1;
                msg[0] = 0;
                kh_result r;
                ms6_status st = kh_run_conv(be, &c, rng, &r, msg);
                snprintf(what, sizeof what, "[cuda] conv1d (vector path) K=%lld L=%lld dim=%lld bias=%d act=%d init=%d final=%d %s",
                         (long long)K, (long long)c.L, (long long)c.dim, c.has_bias, c.activation, c.has_init,
                         c.want_final, ms6_dtype_name(c.io));
                check_result(what, st, &r, tol_io_n(c.io, c.batch * c.dim * c.L), msg);
            }
        }
    }
    for (int64_t K = 2; K <= 8; K++) {
        const int64_t Ls[] = {1, 2, 13, 4099, 200};
        for (int li = 0; li < 5; li++) {
            for (int di = 0; di < 3; di++, k++) {
                kh_conv_case c = {0};
                c.batch = 2; c.dim = li == 4 ? 150 : 6; c.L = Ls[li]; c.K = K; c.io = dts[di];
                c.has_bias = k % 2; c.activation = (k / 2) % 2; c.has_init = (k % 3) != 0;
                c.want_final = (k % 4) != 0; c.token_major = (k % 5) < 3;
                if (c.L > 1000 && (di || small_mode)) continue;
                if (small_mode && K % 3) continue;
                msg[0] = 0;
                kh_result r;
                ms6_status st = kh_run_conv(be, &c, rng, &r, msg);
                snprintf(what, sizeof what, "[cuda] conv1d K=%lld L=%lld dim=%lld bias=%d act=%d init=%d final=%d %s %s",
                         (long long)K, (long long)c.L, (long long)c.dim, c.has_bias, c.activation, c.has_init,
                         c.want_final, ms6_dtype_name(c.io), c.token_major ? "token-major" : "channel-major");
                check_result(what, st, &r, tol_io_n(c.io, c.batch * c.dim * c.L), msg);
            }
        }
        for (int di = 0; di < 6; di++, k++) {
            /* dim 7, and 68 (4-channel groups: MS6_CONV_UPD_VEC's kernel for K = 4, f32) */
            kh_conv_update_case c = {0};
            c.batch = 5; c.dim = di < 3 ? 7 : 68; c.K = K; c.io = dts[di % 3];
            c.has_bias = k % 2; c.activation = (k / 2) % 2; c.use_indices = (k % 3) != 0;
            msg[0] = 0;
            kh_result r;
            ms6_status st = kh_run_conv_update(be, &c, rng, &r, msg);
            snprintf(what, sizeof what, "[cuda] conv1d_update K=%lld dim=%lld idx=%d %s", (long long)K,
                     (long long)c.dim, c.use_indices, ms6_dtype_name(c.io));
            check_result(what, st, &r, tol_io_n(c.io, c.batch * c.dim), msg);
        }
    }
    /* chaining invariants: chunked == unchunked, prefill + step == prefill */
    const int64_t inv[][4] = {{8, 5, 16, 4}, {16, 64, 8, 3}, {4, 2048, 16, 4}, {6, 1, 256, 2}, {200, 700, 16, 4}};
    for (int i = 0; i < 5; i++) {
        if (small_mode && (i == 2 || i == 4)) continue;
        msg[0] = 0;
        double worst = kh_invariants(be, rng, inv[i][0], inv[i][1], inv[i][2], inv[i][3], msg);
        n_cases++;
        /* the GPU scan chunks L differently for different lengths; 2e-5 is
         * a few fp32 roundings of the state */
        CHECK(worst <= 2e-5, "[cuda] invariants dim=%lld L=%lld N=%lld K=%lld: worst rel diff %.3g %s",
              (long long)inv[i][0], (long long)inv[i][1], (long long)inv[i][2], (long long)inv[i][3], worst, msg);
    }
}

/* Shapes near the benchmark's (fp16 token-major, z gate, softplus) and a
 * long sequence at small dim. */
static void large_cases(ms6_backend *be, tu_rng *rng) {
    const int64_t big[][4] = {
        /* batch, dim, L, N */
        {1, 1536, 2048, 16}, {2, 1536, 1024, 16}, {1, 5120, 512, 16}, {4, 2560, 256, 16},
        {1, 256, 8192, 16}, {1, 64, 300000, 16}, {2, 512, 600, 64}, {1, 128, 1000, 256},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        kh_scan_case c = {0};
        c.batch = big[i][0]; c.dim = big[i][1]; c.L = big[i][2]; c.N = big[i][3]; c.G = 1;
        c.b_variable = c.c_variable = 1;
        c.has_D = c.has_z = c.has_delta_bias = c.softplus = 1;
        c.has_h0 = i % 2; c.want_hT = 1;
        c.io = i == 5 ? MS6_DTYPE_F32 : (i % 3 == 2 ? MS6_DTYPE_BF16 : MS6_DTYPE_F16);
        c.token_major = 1;
        scan_case(be, rng, &c, 0, 0, -1);
        if (c.N <= 16 && c.L <= 8192) scan_case(be, rng, &c, 0, 0, 0);
    }
}

/* Element offsets past 2^31: two batch rows 2^31 + 4096 elements apart in
 * one f16 buffer (u, delta, z, out, B, C of a row side by side), fp32
 * states 2^31 floats apart. Compared with the CPU reference on a compact
 * copy of the same values. */
static void int64_offsets(ms6_backend *be, tu_rng *rng) {
    const int64_t dim = 64, L = 300, N = 16, R = L * dim, RB = L * N;
    const int64_t stride = (1ll << 31) + 4096;   /* activation / B / C batch stride, elements */
    const int64_t sstride = (1ll << 31) + 64;    /* state batch stride, floats */
    const int64_t region = 4 * R + 2 * RB;       /* u, delta, z, out, B, C */
    const size_t big_bytes = (size_t)(stride + region) * 2, st_bytes = (size_t)(sstride + dim * N) * 4;
    void *big = NULL, *sbuf = NULL;
    n_cases++;
    if (ms6_backend_alloc(be, big_bytes, &big) != MS6_STATUS_OK ||
        ms6_backend_alloc(be, st_bytes, &sbuf) != MS6_STATUS_OK) {
        fprintf(stderr, "int64 offsets: not enough device memory (%s); case skipped\n", ms6_backend_last_error(be));
        if (big) ms6_backend_dealloc(be, big);
        return;
    }
    uint16_t *host = malloc(sizeof(uint16_t) * 2 * region);
    float *h0 = malloc(sizeof(float) * 2 * dim * N), *hT = malloc(sizeof(float) * 2 * dim * N);
    float *A = malloc(sizeof(float) * dim * N), *Dv = malloc(sizeof(float) * dim), *bias = malloc(sizeof(float) * dim);
    uint16_t *ref_out = malloc(sizeof(uint16_t) * 2 * region), *got = malloc(sizeof(uint16_t) * 2 * R);
    float *ref_hT = malloc(sizeof(float) * 2 * dim * N);
    float *dA = NULL, *dD = NULL, *dbias = NULL;
    for (int64_t b = 0; b < 2; b++) {
        uint16_t *r = host + b * region;
        for (int64_t i = 0; i < R; i++) {
            r[i] = ms6_f32_to_f16((float)tu_normal(rng));
            r[R + i] = ms6_f32_to_f16((float)tu_uniform_range(rng, -6, 1));
            r[2 * R + i] = ms6_f32_to_f16((float)tu_normal(rng));
            r[3 * R + i] = 0x7fff;
        }
        for (int64_t i = 0; i < 2 * RB; i++) r[4 * R + i] = ms6_f32_to_f16((float)tu_normal(rng));
    }
    for (int64_t i = 0; i < 2 * dim * N; i++) h0[i] = (float)(0.5 * tu_normal(rng));
    for (int64_t i = 0; i < dim * N; i++) A[i] = (float)-exp(tu_uniform_range(rng, log(0.5), log(16.0)));
    for (int64_t d = 0; d < dim; d++) { Dv[d] = (float)tu_normal(rng); bias[d] = (float)tu_uniform_range(rng, -1, 0.5); }
    ms6_status st = MS6_STATUS_OK;
    for (int64_t b = 0; b < 2 && !st; b++) {
        st = ms6_backend_upload(be, (uint16_t *)big + b * stride, host + b * region, sizeof(uint16_t) * region);
        if (!st) st = ms6_backend_upload(be, (float *)sbuf + b * sstride, h0 + b * dim * N, sizeof(float) * dim * N);
    }
    if (!st) st = ms6_backend_alloc(be, sizeof(float) * dim * N, (void **)&dA);
    if (!st) st = ms6_backend_alloc(be, sizeof(float) * dim, (void **)&dD);
    if (!st) st = ms6_backend_alloc(be, sizeof(float) * dim, (void **)&dbias);
    if (!st) st = ms6_backend_upload(be, dA, A, sizeof(float) * dim * N);
    if (!st) st = ms6_backend_upload(be, dD, Dv, sizeof(float) * dim);
    if (!st) st = ms6_backend_upload(be, dbias, bias, sizeof(float) * dim);
    CHECK(st == MS6_STATUS_OK, "int64 offsets: setup: %s", ms6_backend_last_error(be));

    /* the same problem twice: device (huge strides) and CPU reference (compact) */
    for (int pass = 0; pass < 2 && !st; pass++) {
        ms6_backend *cpu = NULL;
        ms6_error err;
        void *base = pass ? (void *)ref_out : big;
        const int64_t bst = pass ? region : stride;
        if (pass) {
            memcpy(ref_out, host, sizeof(uint16_t) * 2 * region);
            memcpy(ref_hT, h0, sizeof(float) * 2 * dim * N);
            st = ms6_backend_create(MS6_BACKEND_CPU_REF, NULL, &cpu, &err);
            if (st) break;
        }
        uint16_t *p16 = base;
        ms6_scan_params p = {0};
        p.batch = 2; p.dim = dim; p.seqlen = L; p.d_state = N; p.n_groups = 1;
        p.u = (ms6_act){p16, MS6_DTYPE_F16, bst, 1, dim};
        p.delta = (ms6_act){p16 + R, MS6_DTYPE_F16, bst, 1, dim};
        p.z = (ms6_act){p16 + 2 * R, MS6_DTYPE_F16, bst, 1, dim};
        p.out = (ms6_act){p16 + 3 * R, MS6_DTYPE_F16, bst, 1, dim};
        p.B = (ms6_bc){p16 + 4 * R, MS6_DTYPE_F16, MS6_BC_VARIABLE, bst, 0, 0, 1, N};
        p.C = (ms6_bc){p16 + 4 * R + RB, MS6_DTYPE_F16, MS6_BC_VARIABLE, bst, 0, 0, 1, N};
        p.A = pass ? A : dA; p.A_dim_stride = N; p.A_state_stride = 1;
        p.D = pass ? Dv : dD; p.delta_bias = pass ? bias : dbias; p.delta_softplus = 1;
        p.initial_state = pass ? ref_hT : (float *)sbuf;
        p.final_state = pass ? ref_hT : (float *)sbuf; /* in place */
        p.state_batch_stride = pass ? dim * N : sstride;
        st = ms6_selective_scan_fwd(pass ? cpu : be, &p);
        CHECK(st == MS6_STATUS_OK, "int64 offsets: scan pass %d: %s", pass, ms6_backend_last_error(pass ? cpu : be));
        if (pass) ms6_backend_free(cpu);
        else {
            for (int64_t b = 0; b < 2 && !st; b++) {
                st = ms6_backend_download(be, got + b * R, (uint16_t *)big + b * stride + 3 * R, sizeof(uint16_t) * R);
                if (!st) st = ms6_backend_download(be, hT + b * dim * N, (float *)sbuf + b * sstride, sizeof(float) * dim * N);
            }
        }
    }
    if (!st) {
        double *a = malloc(sizeof(double) * 2 * R), *r = malloc(sizeof(double) * 2 * R);
        double *sa = malloc(sizeof(double) * 2 * dim * N), *sr = malloc(sizeof(double) * 2 * dim * N);
        for (int64_t b = 0; b < 2; b++)
            for (int64_t i = 0; i < R; i++) {
                a[b * R + i] = ms6_f16_to_f32(got[b * R + i]);
                r[b * R + i] = ms6_f16_to_f32(ref_out[b * region + 3 * R + i]);
            }
        for (int64_t i = 0; i < 2 * dim * N; i++) { sa[i] = hT[i]; sr[i] = ref_hT[i]; }
        double rel, mx, srel, smx;
        int nan = tu_compare(a, r, 2 * R, &rel, &mx) | tu_compare(sa, sr, 2 * dim * N, &srel, &smx);
        CHECK(!nan && rel <= 3e-3 && srel <= STATE_TOL,
              "int64 offsets (batch stride 2^31+4096): rel %.3g state rel %.3g nan %d", rel, srel, nan);
        fprintf(stderr, "int64 offsets: rel %.3g, state rel %.3g\n", rel, srel);
        free(a); free(r); free(sa); free(sr);
    }
    ms6_backend_dealloc(be, big);
    ms6_backend_dealloc(be, sbuf);
    if (dA) ms6_backend_dealloc(be, dA);
    if (dD) ms6_backend_dealloc(be, dD);
    if (dbias) ms6_backend_dealloc(be, dbias);
    free(host); free(h0); free(hT); free(A); free(Dv); free(bias); free(ref_out); free(got); free(ref_hT);
}

/* out aliasing u (allowed by the API): same result as separate buffers,
 * in the single-pass and the chunked path. */
static void alias_case(ms6_backend *be, tu_rng *rng, int force_k, int direct) {
    const int64_t dim = 48, L = 1500, N = 16, n = dim * L;
    float *u = malloc(sizeof(float) * n), *dl = malloc(sizeof(float) * n), *bc = malloc(sizeof(float) * 2 * L * N);
    float *A = malloc(sizeof(float) * dim * N), *o1 = malloc(sizeof(float) * n), *o2 = malloc(sizeof(float) * n);
    float *du, *ddl, *dbc, *dA, *dout;
    for (int64_t i = 0; i < n; i++) { u[i] = (float)tu_normal(rng); dl[i] = (float)tu_uniform_range(rng, 0.001, 0.2); }
    for (int64_t i = 0; i < 2 * L * N; i++) bc[i] = (float)tu_normal(rng);
    for (int64_t i = 0; i < dim * N; i++) A[i] = -(float)(1 + i % N);
    ms6_status st = ms6_backend_alloc(be, sizeof(float) * n, (void **)&du);
    st |= ms6_backend_alloc(be, sizeof(float) * n, (void **)&ddl);
    st |= ms6_backend_alloc(be, sizeof(float) * 2 * L * N, (void **)&dbc);
    st |= ms6_backend_alloc(be, sizeof(float) * dim * N, (void **)&dA);
    st |= ms6_backend_alloc(be, sizeof(float) * n, (void **)&dout);
    n_cases++;
    CHECK(st == MS6_STATUS_OK, "alias: alloc");
    if (st) return;
    char v[16];
    snprintf(v, sizeof v, "%d", force_k);
    setenv("MS6_SCAN_CHUNKS", v, 1);
    setenv("MS6_SCAN_DIRECT", direct ? "1" : "0", 1);
    ms6_backend_upload(be, du, u, sizeof(float) * n);
    ms6_backend_upload(be, ddl, dl, sizeof(float) * n);
    ms6_backend_upload(be, dbc, bc, sizeof(float) * 2 * L * N);
    ms6_backend_upload(be, dA, A, sizeof(float) * dim * N);
    ms6_scan_params p = {0};
    p.batch = 1; p.dim = dim; p.seqlen = L; p.d_state = N; p.n_groups = 1;
    p.u = (ms6_act){du, MS6_DTYPE_F32, 0, 1, dim};
    p.delta = (ms6_act){ddl, MS6_DTYPE_F32, 0, 1, dim};
    p.out = (ms6_act){dout, MS6_DTYPE_F32, 0, 1, dim};
    p.A = dA; p.A_dim_stride = N; p.A_state_stride = 1;
    p.B = (ms6_bc){dbc, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, 2 * N};
    p.C = (ms6_bc){dbc + N, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, 2 * N};
    st = ms6_selective_scan_fwd(be, &p);
    p.out.ptr = du; /* in place */
    if (!st) st = ms6_selective_scan_fwd(be, &p);
    if (!st) st = ms6_backend_download(be, o1, dout, sizeof(float) * n);
    if (!st) st = ms6_backend_download(be, o2, du, sizeof(float) * n);
    CHECK(st == MS6_STATUS_OK, "alias K=%d direct=%d: %s", force_k, direct, ms6_backend_last_error(be));
    if (!st)
        CHECK(memcmp(o1, o2, sizeof(float) * n) == 0, "alias K=%d direct=%d: out == u differs from separate out", force_k,
              direct);
    unsetenv("MS6_SCAN_CHUNKS");
    unsetenv("MS6_SCAN_DIRECT");
    ms6_backend_dealloc(be, du); ms6_backend_dealloc(be, ddl); ms6_backend_dealloc(be, dbc);
    ms6_backend_dealloc(be, dA); ms6_backend_dealloc(be, dout);
    free(u); free(dl); free(bc); free(A); free(o1); free(o2);
}

/* A slot index past n_state_slots: no state is touched and the output row
 * is NaN (the GPU cannot return a status for it without a host round trip). */
static void bad_slot(ms6_backend *be) {
    const int64_t dim = 8, N = 16, slots = 2;
    float st_h[2 * 8 * 16], x[2 * 8], out[2 * 8], A[8 * 16], B[2 * 16], back[2 * 8 * 16];
    for (int i = 0; i < 2 * 8 * 16; i++) st_h[i] = (float)i;
    for (int i = 0; i < 16; i++) x[i] = 0.5f;
    for (int i = 0; i < 128; i++) A[i] = -1.0f;
    for (int i = 0; i < 32; i++) B[i] = 0.25f;
    int32_t idx[2] = {1, 7};
    void *ds, *dx, *dout, *dA, *dB, *didx;
    ms6_status s = ms6_backend_alloc(be, sizeof st_h, &ds);
    s |= ms6_backend_alloc(be, sizeof x, &dx);
    s |= ms6_backend_alloc(be, sizeof out, &dout);
    s |= ms6_backend_alloc(be, sizeof A, &dA);
    s |= ms6_backend_alloc(be, sizeof B, &dB);
    s |= ms6_backend_alloc(be, sizeof idx, &didx);
    n_cases++;
    CHECK(s == MS6_STATUS_OK, "bad slot: alloc");
    if (s) return;
    ms6_backend_upload(be, ds, st_h, sizeof st_h);
    ms6_backend_upload(be, dx, x, sizeof x);
    ms6_backend_upload(be, dA, A, sizeof A);
    ms6_backend_upload(be, dB, B, sizeof B);
    ms6_backend_upload(be, didx, idx, sizeof idx);
    ms6_state_update_params p = {0};
    p.batch = 2; p.dim = dim; p.d_state = N; p.n_groups = 1; p.n_state_slots = slots; p.state = ds;
    p.x = (ms6_act){dx, MS6_DTYPE_F32, dim, 1, 0}; p.dt = p.x;
    p.out = (ms6_act){dout, MS6_DTYPE_F32, dim, 1, 0};
    p.A = dA; p.A_dim_stride = N; p.A_state_stride = 1;
    p.B = (ms6_bc){dB, MS6_DTYPE_F32, MS6_BC_VARIABLE, N, 0, 0, 1, 0}; p.C = p.B;
    p.state_batch_indices = didx;
    s = ms6_selective_state_update(be, &p);
    if (!s) s = ms6_backend_download(be, out, dout, sizeof out);
    if (!s) s = ms6_backend_download(be, back, ds, sizeof back);
    CHECK(s == MS6_STATUS_OK, "bad slot: %s", ms6_backend_last_error(be));
    if (!s) {
        int ok = 1;
        for (int i = 0; i < 8; i++) ok &= isfinite(out[i]) && isnan(out[8 + i]);
        CHECK(ok, "bad slot: expected finite row 0 and NaN row 1");
        CHECK(memcmp(back, st_h, sizeof(float) * 8 * 16) == 0, "bad slot: slot 0 changed");
        CHECK(memcmp(back + 128, st_h + 128, sizeof(float) * 128) != 0, "bad slot: slot 1 not updated");
    }
    ms6_backend_dealloc(be, ds); ms6_backend_dealloc(be, dx); ms6_backend_dealloc(be, dout);
    ms6_backend_dealloc(be, dA); ms6_backend_dealloc(be, dB); ms6_backend_dealloc(be, didx);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--small")) small_mode = 1;
    const char *env = getenv("MS6_TEST_SMALL");
    if (env && *env && strcmp(env, "0")) small_mode = 1;
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("test_cuda_kernels"));
    ms6_backend *be = NULL;
    ms6_error err;
    ms6_status st = ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err);
    if (st != MS6_STATUS_OK) {
        printf("skip: %s\n", err.message);
        return (st == MS6_STATUS_DEVICE_ERROR || st == MS6_STATUS_UNSUPPORTED) ? TEST_SKIP : 1;
    }
    sweep(be, &rng);
    for (int direct = 0; direct < 2; direct++) {
        alias_case(be, &rng, 1, direct);
        alias_case(be, &rng, 4, direct);
    }
    bad_slot(be);
    setenv("MS6_UPDATE_FAST_MAX", "0", 1); /* and on the large-batch kernel */
    bad_slot(be);
    unsetenv("MS6_UPDATE_FAST_MAX");
    update_large(be, &rng);
    if (!small_mode) {
        large_cases(be, &rng);
        int64_offsets(be, &rng);
    }
    ms6_backend_free(be);
    fprintf(stderr, "test_cuda_kernels: %d cases%s\n", n_cases, small_mode ? " (small sweep)" : "");
    return tu_finish("test_cuda_kernels");
}
