/*
 * test_ref_kernels.c - the CPU reference kernels (backend "cpu-ref") and the
 * default CPU backend against independent float64 loops on fresh random
 * inputs, over the sweep of DESIGN.md section 7; the chaining invariants;
 * and every bad-argument path of the kernel API.
 */
#include "kernel_harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int n_cases = 0;

static void check_result(const char *what, ms6_status st, const kh_result *r, double tol, const char *msg) {
    n_cases++;
    CHECK(st == MS6_STATUS_OK, "%s: status %s: %s", what, ms6_status_string(st), msg);
    if (st != MS6_STATUS_OK) return;
    CHECK(!r->nan, "%s: NaN or inf in output", what);
    CHECK(r->rel <= tol, "%s: rel err %.3g > %.3g (max abs %.3g)", what, r->rel, tol, r->maxabs);
    CHECK(r->state_rel <= 2e-5, "%s: state rel err %.3g > 2e-5 (max abs %.3g)", what, r->state_rel, r->state_maxabs);
    CHECK(r->untouched_ok, "%s: padding slots or unrequested outputs were written", what);
}

static void sweep_backend(ms6_backend *be, tu_rng *rng) {
    const char *bn = ms6_backend_kind_name(ms6_backend_get_kind(be));
    char desc[256], msg[512], what[320];
    /* (L, N, dim, batch, G) shapes: L = 1, odd L, long L; N = 1, 8, 16, 64, 256 */
    const int64_t shapes[][5] = {
        {1, 16, 8, 2, 2}, {7, 1, 6, 1, 1}, {33, 8, 12, 2, 3}, {129, 16, 8, 1, 2},
        {4100, 16, 4, 1, 1}, {17, 64, 8, 1, 4}, {9, 256, 4, 2, 2},
    };
    const ms6_dtype dts[] = {MS6_DTYPE_F32, MS6_DTYPE_F16, MS6_DTYPE_BF16};
    int k = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int di = 0; di < 3; di++) {
            for (int flags = 0; flags < 4; flags++, k++) {
                kh_scan_case c = kh_sweep_scan_case(shapes[s], dts[di], flags, k);
                if (c.L > 1000 && flags) continue; /* one long case per dtype */
                msg[0] = 0;
                kh_result r;
                ms6_status st = kh_run_scan(be, &c, rng, &r, msg);
                snprintf(what, sizeof what, "[%s] %s", bn, kh_describe_scan(&c, desc, sizeof desc));
                check_result(what, st, &r, kh_tolerance(c.io), msg);
            }
            /* state update with the same shape (batch bigger for index tests) */
            for (int flags = 0; flags < 4; flags++, k++) {
                kh_update_case c = kh_sweep_update_case(shapes[s], dts[di], flags);
                msg[0] = 0;
                kh_result r;
                ms6_status st = kh_run_update(be, &c, rng, &r, msg);
                snprintf(what, sizeof what, "[%s] state_update b=5 dim=%lld N=%lld G=%lld flags=%d %s", bn,
                         (long long)c.dim, (long long)c.N, (long long)c.G, flags, ms6_dtype_name(c.io));
                check_result(what, st, &r, kh_tolerance(c.io), msg);
            }
        }
    }
    /* conv1d: widths 2..8, L = 1, odd, long; every flag */
    for (int64_t K = 2; K <= 8; K++) {
        const int64_t Ls[] = {1, 2, 13, 4099};
        for (int li = 0; li < 4; li++) {
            for (int di = 0; di < 3; di++, k++) {
                kh_conv_case c = {0};
                c.batch = 2; c.dim = 6; c.L = Ls[li]; c.K = K; c.io = dts[di];
                c.has_bias = k % 2; c.activation = (k / 2) % 2; c.has_init = (k % 3) != 0;
                c.want_final = (k % 4) != 0; c.token_major = (k % 5) < 3;
                if (c.L > 1000 && di) continue;
                msg[0] = 0;
                kh_result r;
                ms6_status st = kh_run_conv(be, &c, rng, &r, msg);
                snprintf(what, sizeof what, "[%s] conv1d K=%lld L=%lld bias=%d act=%d init=%d final=%d %s %s", bn,
                         (long long)K, (long long)c.L, c.has_bias, c.activation, c.has_init, c.want_final,
                         ms6_dtype_name(c.io), c.token_major ? "token-major" : "channel-major");
                check_result(what, st, &r, kh_tolerance(c.io), msg);
            }
        }
        for (int di = 0; di < 3; di++, k++) {
            kh_conv_update_case c = {0};
            c.batch = 5; c.dim = 7; c.K = K; c.io = dts[di];
            c.has_bias = k % 2; c.activation = (k / 2) % 2; c.use_indices = (k % 3) != 0;
            msg[0] = 0;
            kh_result r;
            ms6_status st = kh_run_conv_update(be, &c, rng, &r, msg);
            snprintf(what, sizeof what, "[%s] conv1d_update K=%lld idx=%d %s", bn, (long long)K, c.use_indices,
                     ms6_dtype_name(c.io));
            check_result(what, st, &r, kh_tolerance(c.io), msg);
        }
    }
    /* rmsnorm */
    for (int i = 0; i < 24; i++) {
        kh_norm_case c = {0};
        c.rows = 1 + i % 5; c.dim = (i % 2) ? 768 : 33;
        c.has_residual = i % 2; c.add_x = (i / 2) % 2; c.has_weight = (i % 3) != 0;
        c.x_dtype = dts[i % 3]; c.out_dtype = dts[(i / 3) % 3];
        msg[0] = 0;
        kh_result r;
        ms6_status st = kh_run_norm(be, &c, rng, &r, msg);
        snprintf(what, sizeof what, "[%s] rmsnorm rows=%lld dim=%lld res=%d add=%d w=%d %s->%s", bn, (long long)c.rows,
                 (long long)c.dim, c.has_residual, c.add_x, c.has_weight, ms6_dtype_name(c.x_dtype),
                 ms6_dtype_name(c.out_dtype));
        /* inputs are exact in the oracle; only the output rounding counts */
        check_result(what, st, &r, kh_tolerance(c.out_dtype), msg);
    }
    /* chaining invariants */
    const int64_t inv[][4] = {{8, 5, 16, 4}, {16, 64, 8, 3}, {4, 2048, 16, 4}, {6, 1, 256, 2}};
    for (int i = 0; i < 4; i++) {
        msg[0] = 0;
        double worst = kh_invariants(be, rng, inv[i][0], inv[i][1], inv[i][2], inv[i][3], msg);
        n_cases++;
        CHECK(worst <= 1e-5, "[%s] invariants dim=%lld L=%lld N=%lld K=%lld: worst rel diff %.3g %s", bn,
              (long long)inv[i][0], (long long)inv[i][1], (long long)inv[i][2], (long long)inv[i][3], worst, msg);
    }
}

/* A valid small scan setup that each bad-argument case breaks in one way. */
typedef struct {
    float u[2 * 4 * 3], dl[2 * 4 * 3], out[2 * 4 * 3], A[4 * 8], B[2 * 8 * 3], C[2 * 8 * 3];
} small_bufs;

static ms6_scan_params valid_scan(small_bufs *b) {
    for (int i = 0; i < 24; i++) b->u[i] = b->dl[i] = 0.1f;
    for (int i = 0; i < 32; i++) b->A[i] = -1.0f;
    for (int i = 0; i < 48; i++) b->B[i] = b->C[i] = 0.5f;
    ms6_scan_params p = {0};
    p.batch = 2; p.dim = 4; p.seqlen = 3; p.d_state = 8; p.n_groups = 1;
    p.u = (ms6_act){b->u, MS6_DTYPE_F32, 12, 3, 1};
    p.delta = (ms6_act){b->dl, MS6_DTYPE_F32, 12, 3, 1};
    p.out = (ms6_act){b->out, MS6_DTYPE_F32, 12, 3, 1};
    p.A = b->A; p.A_dim_stride = 8; p.A_state_stride = 1;
    p.B = (ms6_bc){b->B, MS6_DTYPE_F32, MS6_BC_VARIABLE, 24, 24, 0, 3, 1};
    p.C = (ms6_bc){b->C, MS6_DTYPE_F32, MS6_BC_VARIABLE, 24, 24, 0, 3, 1};
    return p;
}

static void expect_bad(ms6_backend *be, ms6_status st, const char *case_name, const char *needle) {
    n_cases++;
    CHECK(st == MS6_STATUS_INVALID_ARGUMENT, "%s: expected invalid argument, got %s", case_name, ms6_status_string(st));
    const char *m = ms6_backend_last_error(be);
    CHECK(strstr(m, needle) != NULL, "%s: message '%s' does not mention '%s'", case_name, m, needle);
}

static void bad_arguments(ms6_backend *be) {
    small_bufs b;
    ms6_scan_params p = valid_scan(&b);
    CHECK(ms6_selective_scan_fwd(be, &p) == MS6_STATUS_OK, "valid scan failed: %s", ms6_backend_last_error(be));
    expect_bad(be, ms6_selective_scan_fwd(be, NULL), "NULL params", "params is NULL");
    p = valid_scan(&b); p.u.ptr = NULL; expect_bad(be, ms6_selective_scan_fwd(be, &p), "NULL u", "u is NULL");
    p = valid_scan(&b); p.A = NULL; expect_bad(be, ms6_selective_scan_fwd(be, &p), "NULL A", "A is NULL");
    p = valid_scan(&b); p.B.ptr = NULL; expect_bad(be, ms6_selective_scan_fwd(be, &p), "NULL B", "B is NULL");
    p = valid_scan(&b); p.d_state = 0; expect_bad(be, ms6_selective_scan_fwd(be, &p), "N = 0", "d_state = 0");
    p = valid_scan(&b); p.d_state = 257; expect_bad(be, ms6_selective_scan_fwd(be, &p), "N = 257", "d_state = 257");
    p = valid_scan(&b); p.n_groups = 3; expect_bad(be, ms6_selective_scan_fwd(be, &p), "dim % G", "not a multiple of n_groups");
    p = valid_scan(&b); p.batch = -1; expect_bad(be, ms6_selective_scan_fwd(be, &p), "negative batch", "batch = -1");
    p = valid_scan(&b); p.seqlen = -5; expect_bad(be, ms6_selective_scan_fwd(be, &p), "negative L", "seqlen = -5");
    p = valid_scan(&b); p.dim = -2; expect_bad(be, ms6_selective_scan_fwd(be, &p), "negative dim", "dim = -2");
    p = valid_scan(&b); p.u.dtype = (ms6_dtype)7; expect_bad(be, ms6_selective_scan_fwd(be, &p), "dtype tag", "dtype tag 7");
    p = valid_scan(&b); p.B.mode = (ms6_bc_mode)9; expect_bad(be, ms6_selective_scan_fwd(be, &p), "B mode", "mode 9");
    p = valid_scan(&b); p.delta_softplus = 2; expect_bad(be, ms6_selective_scan_fwd(be, &p), "softplus flag", "delta_softplus");
    p = valid_scan(&b); p.u.seq_stride = -1; expect_bad(be, ms6_selective_scan_fwd(be, &p), "negative stride", "negative stride");

    float st[4 * 8 * 2] = {0}, x[8] = {0}, o[8], w[4 * 4] = {0};
    ms6_state_update_params up = {0};
    up.batch = 2; up.dim = 4; up.d_state = 8; up.n_groups = 1; up.n_state_slots = 2; up.state = st;
    up.x = (ms6_act){x, MS6_DTYPE_F32, 4, 1, 0}; up.dt = up.x; up.out = (ms6_act){o, MS6_DTYPE_F32, 4, 1, 0};
    up.A = b.A; up.A_dim_stride = 8; up.A_state_stride = 1;
    up.B = (ms6_bc){b.B, MS6_DTYPE_F32, MS6_BC_VARIABLE, 8, 8, 0, 1, 0}; up.C = up.B;
    CHECK(ms6_selective_state_update(be, &up) == MS6_STATUS_OK, "valid update failed: %s", ms6_backend_last_error(be));
    up.state = NULL; expect_bad(be, ms6_selective_state_update(be, &up), "NULL state", "state is NULL"); up.state = st;
    up.n_state_slots = 1; expect_bad(be, ms6_selective_state_update(be, &up), "slots < batch", "n_state_slots"); up.n_state_slots = 2;
    up.d_state = 300; expect_bad(be, ms6_selective_state_update(be, &up), "update N", "d_state = 300"); up.d_state = 8;
    int32_t idx[2] = {0, 5};
    up.state_batch_indices = idx;
    n_cases++;
    CHECK(ms6_selective_state_update(be, &up) == MS6_STATUS_OUT_OF_RANGE, "index past slots not rejected");
    CHECK(strstr(ms6_backend_last_error(be), "state_batch_indices[1] = 5") != NULL, "message: %s", ms6_backend_last_error(be));
    up.state_batch_indices = NULL;

    ms6_conv1d_params cp = {0};
    float cx[4 * 3] = {0}, co[4 * 3];
    cp.batch = 1; cp.dim = 4; cp.seqlen = 3; cp.d_conv = 4; cp.weight = w;
    cp.x = (ms6_act){cx, MS6_DTYPE_F32, 12, 1, 4}; cp.out = (ms6_act){co, MS6_DTYPE_F32, 12, 1, 4};
    CHECK(ms6_causal_conv1d_fwd(be, &cp) == MS6_STATUS_OK, "valid conv failed: %s", ms6_backend_last_error(be));
    cp.d_conv = 1; expect_bad(be, ms6_causal_conv1d_fwd(be, &cp), "K = 1", "d_conv = 1");
    cp.d_conv = 9; expect_bad(be, ms6_causal_conv1d_fwd(be, &cp), "K = 9", "d_conv = 9"); cp.d_conv = 4;
    cp.weight = NULL; expect_bad(be, ms6_causal_conv1d_fwd(be, &cp), "NULL weight", "weight is NULL"); cp.weight = w;
    cp.out.ptr = cx; expect_bad(be, ms6_causal_conv1d_fwd(be, &cp), "alias", "alias"); cp.out.ptr = co;
    cp.activation = 3; expect_bad(be, ms6_causal_conv1d_fwd(be, &cp), "activation", "activation = 3");

    ms6_rmsnorm_params np = {0};
    np.rows = 1; np.dim = 4; np.x = cx; np.out = co; np.eps = 1e-5f;
    CHECK(ms6_rmsnorm(be, &np) == MS6_STATUS_OK, "valid rmsnorm failed: %s", ms6_backend_last_error(be));
    np.dim = 0; expect_bad(be, ms6_rmsnorm(be, &np), "norm dim", "dim = 0"); np.dim = 4;
    np.add_x = 1; expect_bad(be, ms6_rmsnorm(be, &np), "add_x", "residual"); np.add_x = 0;
    np.out_dtype = (ms6_dtype)-1; expect_bad(be, ms6_rmsnorm(be, &np), "out dtype", "dtype tag");

    /* the backend constructor */
    ms6_backend *nb = (ms6_backend *)0x1;
    ms6_error err;
    ms6_status s = ms6_backend_create((ms6_backend_kind)42, NULL, &nb, &err);
    n_cases++;
    CHECK(s == MS6_STATUS_INVALID_ARGUMENT && nb == NULL, "bad backend kind accepted");
    CHECK(strstr(err.message, "42") != NULL, "message: %s", err.message);
    ms6_backend_kind kk;
    CHECK(ms6_backend_kind_parse("tpu", &kk) == MS6_STATUS_INVALID_ARGUMENT, "parse accepted 'tpu'");
}

int main(void) {
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("test_ref_kernels"));
    const ms6_backend_kind kinds[] = {MS6_BACKEND_CPU_REF, MS6_BACKEND_CPU};
    for (int i = 0; i < 2; i++) {
        ms6_backend *be;
        ms6_error err;
        ms6_backend_options opts = {0};
        if (ms6_backend_create(kinds[i], &opts, &be, &err) != MS6_STATUS_OK) {
            CHECK(0, "create %s: %s", ms6_backend_kind_name(kinds[i]), err.message);
            continue;
        }
        sweep_backend(be, &rng);
        if (kinds[i] == MS6_BACKEND_CPU_REF) bad_arguments(be);
        ms6_backend_free(be);
    }
    fprintf(stderr, "test_ref_kernels: %d cases\n", n_cases);
    return tu_finish("test_ref_kernels");
}
