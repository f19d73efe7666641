/*
 * test_cpu_fast.c - the fast CPU backend ("cpu") on fresh random inputs:
 *   - the vectorized exp of every kernel set this machine runs, against a
 *     float64 exp, in ulps, plus its edge cases;
 *   - the gemm (f32/f16/bf16 weights, odd sizes, M = 1 and large M, bias,
 *     accumulate, padded ldx/ldw/ldy, f16 x and y) against a float64 loop,
 *     with an error bound from the size of the dot products;
 *   - gemm, scan, state update, conv (fwd and update) and RMSNorm against
 *     the reference ops on model-sized cases;
 *   - thread counts 1, 2, 3 and 8 giving bitwise identical results;
 *   - every kernel set (avx2 / neon / scalar) agreeing with the reference.
 * The scan/conv/norm sweeps against float64 oracles run in test_ref_kernels.c.
 */
#include "backend/cpu/fast.h"
#include "testutil.h"

#include <float.h>
#include <stdatomic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static tu_rng rng;

static float frand(double a, double b) { return (float)tu_uniform_range(&rng, a, b); }

/* Distance in units in the last place between two finite floats. */
static double ulp_diff(float a, double ref) {
    const float r = (float)ref;
    if (a == r) return 0;
    const float up = nextafterf(r, INFINITY);
    return fabs((double)a - ref) / fabs((double)up - (double)r);
}

static ms6_backend *make_cpu(int n_threads, const ms6_fast_kernels *k) {
    ms6_backend_options o = {n_threads, 0};
    ms6_backend *be = NULL;
    ms6_error err;
    ms6_status st = ms6_backend_create(MS6_BACKEND_CPU, &o, &be, &err);
    CHECK(st == MS6_STATUS_OK, "create cpu backend with %d threads: %s", n_threads, err.message);
    if (st != MS6_STATUS_OK) return NULL;
    if (k) ((ms6_cpu_ctx *)be->ctx)->k = k;
    return be;
}

static ms6_backend *make_ref(void) {
    ms6_backend *be = NULL;
    ms6_status st = ms6_backend_create(MS6_BACKEND_CPU_REF, NULL, &be, NULL);
    CHECK(st == MS6_STATUS_OK, "create cpu-ref backend");
    return be;
}

/* ---------------------------------------------------------------- exp */

static void test_exp(const ms6_fast_kernels *k) {
    enum { NX = 1 << 18 };
    float *x = malloc(sizeof(float) * NX), *y = malloc(sizeof(float) * NX);
    if (!x || !y) { CHECK(0, "out of memory"); free(x); free(y); return; }
    /* uniform over the accurate range, plus dense coverage of [-1, 1] */
    for (int i = 0; i < NX; i++) x[i] = i % 4 == 0 ? frand(-1, 1) : frand(-87.3, 88.0);
    x[0] = 0.0f; x[1] = -87.3f; x[2] = 88.0f; x[3] = 1e-30f; x[4] = -1e-30f;
    k->exp(x, y, NX);
    double worst = 0;
    float worst_x = 0;
    for (int i = 0; i < NX; i++) {
        const double u = ulp_diff(y[i], exp((double)x[i]));
        if (!(u <= worst)) { worst = u; worst_x = x[i]; }
    }
    printf("exp [%s]: max error %.2f ulp (at x = %.7g) over %d points in [-87.3, 88]\n", k->name, worst, worst_x, NX);
    CHECK(worst <= 2.0, "[%s] exp: %.2f ulp at x = %.9g, want <= 2", k->name, worst, worst_x);
    CHECK(y[0] == 1.0f, "[%s] exp(0) = %.9g", k->name, y[0]);
    /* edges: underflow to 0, overflow to inf, NaN stays NaN; odd count (tail) */
    float ex[5] = {-100.0f, -1e30f, 100.0f, NAN, INFINITY}, ey[5];
    k->exp(ex, ey, 5);
    CHECK(ey[0] == 0.0f && ey[1] == 0.0f, "[%s] exp(-100) = %g, exp(-1e30) = %g", k->name, ey[0], ey[1]);
    CHECK(isinf(ey[2]) && ey[2] > 0, "[%s] exp(100) = %g", k->name, ey[2]);
    CHECK(isnan(ey[3]), "[%s] exp(NaN) = %g", k->name, ey[3]);
    CHECK(isinf(ey[4]), "[%s] exp(inf) = %g", k->name, ey[4]);
    free(x);
    free(y);
}

/* --------------------------------------------------------------- gemm */

typedef struct {
    int64_t M, N, K, ldx, ldw, ldy;
    ms6_dtype wt, xt, yt;
    int bias, acc;
} gcase;

static void fill_w(void *w, ms6_dtype t, int64_t n, double *wd) {
    for (int64_t i = 0; i < n; i++) {
        const float v = frand(-1, 1);
        ms6_store(w, t, i, v);
        wd[i] = ms6_load(w, t, i); /* the value the kernel sees */
    }
}

/* Runs one gemm case on be; compares with float64 (return 0 if fine). */
static void gemm_vs_f64(ms6_backend *be, const gcase *g, const char *tag) {
    const size_t xs = ms6_dtype_size(g->xt), ws = ms6_dtype_size(g->wt), ys = ms6_dtype_size(g->yt);
    const int64_t nx = (g->M ? g->M - 1 : 0) * g->ldx + g->K, nw = (g->N - 1) * g->ldw + g->K;
    const int64_t ny = (g->M ? g->M - 1 : 0) * g->ldy + g->N;
    void *x = malloc(xs * (size_t)nx + 16), *w = malloc(ws * (size_t)nw), *y = malloc(ys * (size_t)ny + 16);
    double *xd = malloc(sizeof(double) * (size_t)nx), *wd = malloc(sizeof(double) * (size_t)nw);
    double *y0 = malloc(sizeof(double) * (size_t)ny);
    float *bias = malloc(sizeof(float) * (size_t)g->N);
    if (!x || !w || !y || !xd || !wd || !y0 || !bias) {
        CHECK(0, "out of memory");
        goto done;
    }
    fill_w(x, g->xt, nx, xd);
    fill_w(w, g->wt, nw, wd);
    for (int64_t n = 0; n < g->N; n++) bias[n] = frand(-1, 1);
    for (int64_t i = 0; i < ny; i++) {
        /* poison: NaN everywhere, except the old y values when accumulating */
        if (g->acc) {
            const float v = frand(-1, 1);
            ms6_store(y, g->yt, i, v);
            y0[i] = ms6_load(y, g->yt, i);
        } else {
            ms6_store(y, g->yt, i, NAN);
            y0[i] = NAN;
        }
    }
    ms6_gemm_params p = {g->M, g->N, g->K, x, g->xt, g->ldx, w, g->wt, g->ldw, g->bias ? bias : NULL,
                         y, g->yt, g->ldy, g->acc};
    char msg[512] = "";
    ms6_status st = ms6_validate_gemm(&p, msg);
    if (st == MS6_STATUS_OK) st = be->ops->gemm(be, &p);
    CHECK(st == MS6_STATUS_OK, "%s gemm: %s", tag, ms6_backend_last_error(be));
    double worst = 0;
    int bad = 0;
    for (int64_t m = 0; m < g->M; m++) {
        for (int64_t n = 0; n < g->N; n++) {
            double s = 0, sa = 0;
            for (int64_t k = 0; k < g->K; k++) {
                s += xd[m * g->ldx + k] * wd[n * g->ldw + k];
                sa += fabs(xd[m * g->ldx + k] * wd[n * g->ldw + k]);
            }
            if (g->bias) { s += bias[n]; sa += fabs(bias[n]); }
            if (g->acc) { s += y0[m * g->ldy + n]; sa += fabs(y0[m * g->ldy + n]); }
            const double got = ms6_load(y, g->yt, m * g->ldy + n);
            /* fp32 summation bound (K + 2 terms) plus the rounding of the output type */
            const double out_eps = g->yt == MS6_DTYPE_F32 ? 0 : (g->yt == MS6_DTYPE_F16 ? 1.0 / 1024 : 1.0 / 128);
            const double tol = (double)(g->K + 3) * FLT_EPSILON * sa + out_eps * fabs(s) + 1e-30;
            const double err = fabs(got - s);
            if (!(err <= tol)) bad++;
            if (!(err / tol <= worst)) worst = err / tol;
        }
    }
    /* padding between rows of y must be untouched */
    if (g->ldy > g->N && g->M > 1 && !g->acc)
        for (int64_t n = g->N; n < g->ldy; n++) {
            const float v = ms6_load(y, g->yt, n);
            if (!isnan(v)) bad++;
        }
    CHECK(bad == 0, "%s gemm M=%lld N=%lld K=%lld ld=(%lld,%lld,%lld) w=%s x=%s y=%s bias=%d acc=%d: %d bad, "
          "worst err/bound %.3g", tag, (long long)g->M, (long long)g->N, (long long)g->K, (long long)g->ldx,
          (long long)g->ldw, (long long)g->ldy, ms6_dtype_name(g->wt), ms6_dtype_name(g->xt), ms6_dtype_name(g->yt),
          g->bias, g->acc, bad, worst);
done:
    free(x); free(w); free(y); free(xd); free(wd); free(y0); free(bias);
}

static void test_gemm_f64(ms6_backend *be, const char *tag) {
    const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 13, 100};
    const int64_t Ns[] = {1, 5, 17, 40, 300};
    const int64_t Ks[] = {1, 7, 8, 9, 33, 300, 600};
    int i = 0;
    for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
            for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++, i++) {
                gcase g = {0};
                g.M = Ms[a]; g.N = Ns[b]; g.K = Ks[c];
                if (g.M * g.N * g.K > 3000000) continue;
                const int pad = i % 3 == 0;
                g.ldx = g.K + (pad ? 3 : 0);
                g.ldw = g.K + (pad ? 5 : 0);
                g.ldy = g.N + (pad || i % 5 == 0 ? 2 : 0);
                g.wt = (ms6_dtype)(i % 3);
                g.xt = i % 11 == 0 ? MS6_DTYPE_F16 : MS6_DTYPE_F32;
                g.yt = i % 13 == 0 ? MS6_DTYPE_BF16 : MS6_DTYPE_F32;
                g.bias = i % 2 == 0;
                g.acc = i % 4 == 1;
                gemm_vs_f64(be, &g, tag);
            }
    /* M = 0 is a no-op */
    float one = 1.0f;
    ms6_gemm_params p = {0, 1, 1, &one, MS6_DTYPE_F32, 1, &one, MS6_DTYPE_F32, 1, NULL, &one, MS6_DTYPE_F32, 1, 0};
    CHECK(be->ops->gemm(be, &p) == MS6_STATUS_OK && one == 1.0f, "%s gemm M=0", tag);
}

/* ---------------------------------------- fast vs reference, threads */

typedef struct {
    /* gemm: decode and prefill shapes, f16 weights */
    float *gx, *gy;
    uint16_t *gw;
    float *gb;
    /* scan, token-major (L, dim), model-like */
    int64_t L, dim, N;
    float *u, *delta, *z, *out, *A, *B, *Cm, *D, *dbias, *h0, *hT;
    /* conv */
    float *cx, *cout, *cw, *cbias, *cs0, *csT;
    /* norm */
    float *nx, *nres, *nout, *nw;
    /* update */
    float *st, *sx, *sdt, *sz, *sout, *sB, *sC;
} fixture;

enum { GM = 37, GN = 1100, GK = 301, UB = 3 }; /* GN: several decode chunks */

static float *rnd(int64_t n, double a, double b) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (p) for (int64_t i = 0; i < n; i++) p[i] = frand(a, b);
    return p;
}

static int fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    f->L = 77; f->dim = 83; f->N = 16;
    const int64_t L = f->L, D = f->dim, N = f->N;
    f->gx = rnd(GM * GK, -1, 1);
    f->gw = malloc(sizeof(uint16_t) * GN * GK);
    if (f->gw) for (int i = 0; i < GN * GK; i++) f->gw[i] = ms6_f32_to_f16(frand(-1, 1));
    f->gb = rnd(GN, -1, 1);
    f->gy = rnd(GM * GN, 0, 0);
    f->u = rnd(L * D, -1, 1); f->delta = rnd(L * D, -3, 1); f->z = rnd(L * D, -2, 2); f->out = rnd(L * D, 0, 0);
    f->A = rnd(D * N, -2, -0.1); f->B = rnd(L * N, -1, 1); f->Cm = rnd(L * N, -1, 1);
    f->D = rnd(D, -1, 1); f->dbias = rnd(D, -1, 1); f->h0 = rnd(D * N, -1, 1); f->hT = rnd(D * N, 0, 0);
    f->cx = rnd(L * D, -1, 1); f->cout = rnd(L * D, 0, 0); f->cw = rnd(D * 4, -1, 1); f->cbias = rnd(D, -1, 1);
    f->cs0 = rnd(D * 3, -1, 1); f->csT = rnd(D * 3, 0, 0);
    f->nx = rnd(L * D, -1, 1); f->nres = rnd(L * D, -1, 1); f->nout = rnd(L * D, 0, 0); f->nw = rnd(D, 0.5, 1.5);
    f->st = rnd(UB * D * N, -1, 1); f->sx = rnd(UB * D, -1, 1); f->sdt = rnd(UB * D, -3, 1); f->sz = rnd(UB * D, -2, 2);
    f->sout = rnd(UB * D, 0, 0); f->sB = rnd(UB * N, -1, 1); f->sC = rnd(UB * N, -1, 1);
    return f->gx && f->gw && f->gb && f->gy && f->u && f->delta && f->z && f->out && f->A && f->B && f->Cm &&
           f->D && f->dbias && f->h0 && f->hT && f->cx && f->cout && f->cw && f->cbias && f->cs0 && f->csT &&
           f->nx && f->nres && f->nout && f->nw && f->st && f->sx && f->sdt && f->sz && f->sout && f->sB && f->sC;
}

static void fixture_free(fixture *f) {
    void *ps[] = {f->gx, f->gw, f->gb, f->gy, f->u, f->delta, f->z, f->out, f->A, f->B, f->Cm, f->D, f->dbias,
                  f->h0, f->hT, f->cx, f->cout, f->cw, f->cbias, f->cs0, f->csT, f->nx, f->nres, f->nout, f->nw,
                  f->st, f->sx, f->sdt, f->sz, f->sout, f->sB, f->sC};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) free(ps[i]);
}

/* All outputs of one run of every op, concatenated. */
typedef struct {
    float *v;
    int64_t n;
    int nseg;
    int64_t seg_end[16];
    const char *seg_name[16];
} outputs;

/* Appends n values as the segment `name` (one op's output). */
static void push(outputs *o, const char *name, const float *p, int64_t n) {
    memcpy(o->v + o->n, p, sizeof(float) * (size_t)n);
    o->n += n;
    if (o->nseg < 16) {
        o->seg_name[o->nseg] = name;
        o->seg_end[o->nseg++] = o->n;
    }
}

/* Runs every op once on be (inputs restored each time) and collects the outputs. */
static void run_all(ms6_backend *be, fixture *f, outputs *o) {
    const int64_t L = f->L, D = f->dim, N = f->N;
    o->n = 0;
    o->nseg = 0;
    ms6_status st;
    /* gemm, prefill (M = GM) and decode (M = 1, then M = 3) */
    for (int v = 0; v < 3; v++) {
        const int64_t M = v == 0 ? GM : (v == 1 ? 1 : 3);
        ms6_gemm_params g = {M, GN, GK, f->gx, MS6_DTYPE_F32, GK, f->gw, MS6_DTYPE_F16, GK, v == 1 ? NULL : f->gb,
                             f->gy, MS6_DTYPE_F32, GN, 0};
        st = be->ops->gemm(be, &g);
        CHECK(st == MS6_STATUS_OK, "gemm: %s", ms6_backend_last_error(be));
        push(o, v == 0 ? "gemm M=37" : (v == 1 ? "gemv M=1" : "gemv M=3"), f->gy, M * GN);
    }
    /* scan, token-major, B/C variable (L, N) */
    ms6_scan_params sp = {
        .batch = 1, .dim = D, .seqlen = L, .d_state = N, .n_groups = 1,
        .u = {f->u, MS6_DTYPE_F32, 0, 1, D}, .delta = {f->delta, MS6_DTYPE_F32, 0, 1, D},
        .A = f->A, .A_dim_stride = N, .A_state_stride = 1,
        .B = {f->B, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, N},
        .C = {f->Cm, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, N},
        .D = f->D, .delta_bias = f->dbias, .z = {f->z, MS6_DTYPE_F32, 0, 1, D},
        .out = {f->out, MS6_DTYPE_F32, 0, 1, D}, .delta_softplus = 1,
        .initial_state = f->h0, .final_state = f->hT,
    };
    st = ms6_selective_scan_fwd(be, &sp);
    CHECK(st == MS6_STATUS_OK, "scan: %s", ms6_backend_last_error(be));
    push(o, "scan out", f->out, L * D);
    push(o, "scan final state", f->hT, D * N);
    /* conv, token-major, K = 4 */
    ms6_conv1d_params cp = {
        .batch = 1, .dim = D, .seqlen = L, .d_conv = 4,
        .x = {f->cx, MS6_DTYPE_F32, 0, 1, D}, .out = {f->cout, MS6_DTYPE_F32, 0, 1, D},
        .weight = f->cw, .bias = f->cbias, .activation = 1, .initial_state = f->cs0, .final_state = f->csT,
    };
    st = ms6_causal_conv1d_fwd(be, &cp);
    CHECK(st == MS6_STATUS_OK, "conv: %s", ms6_backend_last_error(be));
    push(o, "conv out", f->cout, L * D);
    push(o, "conv final state", f->csT, D * 3);
    /* conv update (state = a copy of cs0) */
    float *cst = malloc(sizeof(float) * (size_t)(D * 3));
    if (cst) {
        memcpy(cst, f->cs0, sizeof(float) * (size_t)(D * 3));
        ms6_conv1d_update_params cu = {
            .batch = 1, .dim = D, .d_conv = 4, .n_state_slots = 1,
            .x = {f->cx, MS6_DTYPE_F32, D, 1, 0}, .out = {f->cout, MS6_DTYPE_F32, D, 1, 0},
            .state = cst, .weight = f->cw, .bias = f->cbias, .activation = 1,
        };
        st = ms6_causal_conv1d_update(be, &cu);
        CHECK(st == MS6_STATUS_OK, "conv update: %s", ms6_backend_last_error(be));
        push(o, "conv update out", f->cout, D);
        push(o, "conv update state", cst, D * 3);
        free(cst);
    }
    /* rmsnorm with residual add (residual restored afterwards) */
    float *res = malloc(sizeof(float) * (size_t)(L * D));
    if (res) {
        memcpy(res, f->nres, sizeof(float) * (size_t)(L * D));
        ms6_rmsnorm_params np = {
            .rows = L, .dim = D, .x = f->nx, .x_dtype = MS6_DTYPE_F32, .x_row_stride = D,
            .out = f->nout, .out_dtype = MS6_DTYPE_F32, .out_row_stride = D,
            .residual = res, .residual_row_stride = D, .add_x = 1, .weight = f->nw, .eps = 1e-5f,
        };
        st = ms6_rmsnorm(be, &np);
        CHECK(st == MS6_STATUS_OK, "rmsnorm: %s", ms6_backend_last_error(be));
        push(o, "rmsnorm out", f->nout, L * D);
        push(o, "rmsnorm residual", res, L * D);
        free(res);
    }
    /* state update, UB sequences, slots reversed with one padding slot */
    float *state = malloc(sizeof(float) * (size_t)(UB * D * N));
    if (state) {
        memcpy(state, f->st, sizeof(float) * (size_t)(UB * D * N));
        const int32_t idx[UB] = {2, -1, 0};
        ms6_state_update_params su = {
            .batch = UB, .dim = D, .d_state = N, .n_groups = 1, .n_state_slots = UB, .state = state,
            .x = {f->sx, MS6_DTYPE_F32, D, 1, 0}, .dt = {f->sdt, MS6_DTYPE_F32, D, 1, 0},
            .A = f->A, .A_dim_stride = N, .A_state_stride = 1,
            .B = {f->sB, MS6_DTYPE_F32, MS6_BC_VARIABLE, N, 0, 0, 1, 0},
            .C = {f->sC, MS6_DTYPE_F32, MS6_BC_VARIABLE, N, 0, 0, 1, 0},
            .D = f->D, .dt_bias = f->dbias, .z = {f->sz, MS6_DTYPE_F32, D, 1, 0},
            .out = {f->sout, MS6_DTYPE_F32, D, 1, 0}, .dt_softplus = 1, .state_batch_indices = idx,
        };
        st = ms6_selective_state_update(be, &su);
        CHECK(st == MS6_STATUS_OK, "state update: %s", ms6_backend_last_error(be));
        push(o, "state update out", f->sout, UB * D);
        push(o, "state update state", state, UB * D * N);
        free(state);
    }
}

static int64_t outputs_size(const fixture *f) {
    const int64_t L = f->L, D = f->dim, N = f->N;
    return (GM + 1 + 3) * GN + L * D + D * N + L * D + D * 3 + D + D * 3 + 2 * L * D + UB * D + UB * D * N;
}

static int verbose = 1;

static void compare_range(const float *a, const float *ref, int64_t n, double tol, int bitwise, const char *what) {
    double num = 0, den = 0, mx = 0;
    int64_t diff = 0, nan = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) nan++;
        if (memcmp(&a[i], &ref[i], sizeof(float)) != 0) diff++;
        const double d = fabs((double)a[i] - ref[i]);
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (d > mx) mx = d;
    }
    const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    if (verbose || nan || !(rel <= tol) || (bitwise && diff))
        printf("  %-60s rel %.3g, max abs %.3g, %lld of %lld differ bitwise\n", what, rel, mx, (long long)diff,
               (long long)n);
    CHECK(nan == 0, "%s: %lld non-finite outputs", what, (long long)nan);
    CHECK(rel <= tol, "%s: rel err %.3g > %.3g", what, rel, tol);
    if (bitwise) CHECK(diff == 0, "%s: %lld outputs differ bitwise", what, (long long)diff);
}

/* Compares op by op. */
static void compare_outputs(const outputs *a, const outputs *ref, double tol, int bitwise, const char *what) {
    CHECK(a->n == ref->n && a->nseg == ref->nseg, "%s: %lld outputs vs %lld", what, (long long)a->n,
          (long long)ref->n);
    if (a->n != ref->n || a->nseg != ref->nseg) return;
    int64_t start = 0;
    for (int s = 0; s < a->nseg; s++) {
        char w[160];
        snprintf(w, sizeof w, "%s: %s", what, a->seg_name[s]);
        compare_range(a->v + start, ref->v + start, a->seg_end[s] - start, tol, bitwise, w);
        start = a->seg_end[s];
    }
}

static void test_ops_and_threads(void) {
    fixture f;
    if (!fixture_init(&f)) {
        CHECK(0, "out of memory");
        fixture_free(&f);
        return;
    }
    const int64_t n = outputs_size(&f);
    outputs ref = {.v = malloc(sizeof(float) * (size_t)n)}, got = {.v = malloc(sizeof(float) * (size_t)n)};
    outputs one = {.v = malloc(sizeof(float) * (size_t)n)};
    ms6_backend *rb = make_ref();
    if (!ref.v || !got.v || !one.v || !rb) {
        CHECK(0, "setup failed");
        goto done;
    }
    run_all(rb, &f, &ref);
    const char *isas[] = {"avx2", "neon", "scalar"};
    for (int i = 0; i < 3; i++) {
        const ms6_fast_kernels *k = ms6_fast_kernels_by_name(isas[i]);
        if (!k) continue;
        const int threads[] = {1, 2, 3, 8};
        for (int t = 0; t < 4; t++) {
            ms6_backend *be = make_cpu(threads[t], k);
            if (!be) continue;
            char what[96];
            outputs *dst = t == 0 ? &one : &got;
            verbose = t == 0;
            run_all(be, &f, dst);
            snprintf(what, sizeof what, "[%s, %d threads] vs reference", k->name, threads[t]);
            compare_outputs(dst, &ref, 1e-5, 0, what);
            if (t > 0) {
                snprintf(what, sizeof what, "[%s, %d threads] vs 1 thread", k->name, threads[t]);
                compare_outputs(&got, &one, 0, 1, what);
            }
            ms6_backend_free(be);
        }
        verbose = 1;
        printf("  [%s] 2, 3 and 8 threads: every output checked bitwise against 1 thread\n", k->name);
    }
done:
    ms6_backend_free(rb);
    free(ref.v); free(got.v); free(one.v);
    fixture_free(&f);
}

/* A model-sized decode product (the 130m in_proj shape): fast vs reference. */
static void test_gemv_model_shape(void) {
    const int64_t N = 3072, K = 768;
    float *x = rnd(K, -1, 1), *w = rnd(N * K, -0.05, 0.05), *y = rnd(N, 0, 0), *yr = rnd(N, 0, 0);
    ms6_backend *be = make_cpu(0, NULL), *rb = make_ref();
    if (x && w && y && yr && be && rb) {
        ms6_gemm_params p = {1, N, K, x, MS6_DTYPE_F32, K, w, MS6_DTYPE_F32, K, NULL, y, MS6_DTYPE_F32, N, 0};
        CHECK(be->ops->gemm(be, &p) == MS6_STATUS_OK, "gemv");
        p.y = yr;
        CHECK(rb->ops->gemm(rb, &p) == MS6_STATUS_OK, "ref gemv");
        compare_range(y, yr, N, 2e-6, 0, "gemv 1 x 3072 x 768 vs reference");
    }
    ms6_backend_free(be);
    ms6_backend_free(rb);
    free(x); free(w); free(y); free(yr);
}

/* A row gives the same bits alone (decode, M = 1), in a group of 3 and
 * inside a large M (prefill): the model relies on it (a reset session
 * reproduces a prefill exactly). K = 301 has a tail past the 8-lane part. */
static void test_gemm_row_independence(const ms6_fast_kernels *k) {
    const int64_t M = 40, N = 203, K = 301;
    ms6_backend *be = make_cpu(2, k);
    float *x = rnd(M * K, -1, 1), *bias = rnd(N, -1, 1), *y0 = rnd(M * N, -1, 1);
    float *Y = malloc(sizeof(float) * (size_t)(M * N)), *r = malloc(sizeof(float) * (size_t)(3 * N));
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(N * K));
    if (!be || !x || !bias || !y0 || !Y || !r || !w) {
        CHECK(0, "setup failed");
        goto done;
    }
    for (int64_t i = 0; i < N * K; i++) w[i] = ms6_f32_to_bf16(frand(-1, 1));
    for (int acc = 0; acc < 2; acc++) {
        memcpy(Y, y0, sizeof(float) * (size_t)(M * N));
        ms6_gemm_params p = {M, N, K, x, MS6_DTYPE_F32, K, w, MS6_DTYPE_BF16, K, bias, Y, MS6_DTYPE_F32, N, acc};
        CHECK(be->ops->gemm(be, &p) == MS6_STATUS_OK, "gemm");
        int64_t diff = 0;
        for (int64_t m0 = 0; m0 + 3 <= M; m0 += 7) {
            for (int64_t mm = 1; mm <= 3; mm += 2) {
                memcpy(r, y0 + m0 * N, sizeof(float) * (size_t)(mm * N));
                ms6_gemm_params q = {mm, N, K, x + m0 * K, MS6_DTYPE_F32, K, w, MS6_DTYPE_BF16, K, bias, r,
                                     MS6_DTYPE_F32, N, acc};
                CHECK(be->ops->gemm(be, &q) == MS6_STATUS_OK, "gemv");
                for (int64_t i = 0; i < mm * N; i++) diff += memcmp(&r[i], &Y[m0 * N + i], sizeof(float)) != 0;
            }
        }
        CHECK(diff == 0, "[%s] acc=%d: %lld values differ between M = 1 or 3 and M = %lld", k->name, acc,
              (long long)diff, (long long)M);
    }
done:
    ms6_backend_free(be);
    free(x); free(bias); free(y0); free(Y); free(r); free(w);
}

/* The scan gives the same bits whichever kernel path runs a channel: the
 * 16-channel fast path (token-major fp32), the 8-channel path with
 * gathers (channel-major u, delta, z, out), and L = 1 vs the first step of
 * a long scan. */
static void test_scan_paths(const ms6_fast_kernels *k) {
    const int64_t L = 45, D = 83, N = 16;
    ms6_backend *be = make_cpu(2, k);
    float *u = rnd(L * D, -1, 1), *dl = rnd(L * D, -3, 1), *z = rnd(L * D, -2, 2), *A = rnd(D * N, -2, -0.1);
    float *B = rnd(L * N, -1, 1), *C = rnd(L * N, -1, 1), *Dv = rnd(D, -1, 1), *bias = rnd(D, -1, 1);
    float *o1 = rnd(L * D, 0, 0), *o2 = rnd(L * D, 0, 0), *uc = rnd(L * D, 0, 0), *dc = rnd(L * D, 0, 0);
    float *zc = rnd(L * D, 0, 0), *o3 = rnd(D, 0, 0);
    if (!be || !u || !dl || !z || !A || !B || !C || !Dv || !bias || !o1 || !o2 || !uc || !dc || !zc || !o3) {
        CHECK(0, "setup failed");
        goto done;
    }
    for (int64_t t = 0; t < L; t++)
        for (int64_t d = 0; d < D; d++) {
            uc[d * L + t] = u[t * D + d];
            dc[d * L + t] = dl[t * D + d];
            zc[d * L + t] = z[t * D + d];
        }
    ms6_scan_params sp = {
        .batch = 1, .dim = D, .seqlen = L, .d_state = N, .n_groups = 1,
        .u = {u, MS6_DTYPE_F32, 0, 1, D}, .delta = {dl, MS6_DTYPE_F32, 0, 1, D},
        .A = A, .A_dim_stride = N, .A_state_stride = 1,
        .B = {B, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, N},
        .C = {C, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, N},
        .D = Dv, .delta_bias = bias, .z = {z, MS6_DTYPE_F32, 0, 1, D},
        .out = {o1, MS6_DTYPE_F32, 0, 1, D}, .delta_softplus = 1,
    };
    CHECK(ms6_selective_scan_fwd(be, &sp) == MS6_STATUS_OK, "scan");
    ms6_scan_params cm = sp;
    cm.u = (ms6_act){uc, MS6_DTYPE_F32, 0, L, 1};
    cm.delta = (ms6_act){dc, MS6_DTYPE_F32, 0, L, 1};
    cm.z = (ms6_act){zc, MS6_DTYPE_F32, 0, L, 1};
    cm.out = (ms6_act){o2, MS6_DTYPE_F32, 0, L, 1};
    CHECK(ms6_selective_scan_fwd(be, &cm) == MS6_STATUS_OK, "scan channel-major");
    int64_t diff = 0;
    for (int64_t t = 0; t < L; t++)
        for (int64_t d = 0; d < D; d++) diff += memcmp(&o1[t * D + d], &o2[d * L + t], sizeof(float)) != 0;
    CHECK(diff == 0, "[%s] scan: %lld outputs differ between token-major and channel-major", k->name, (long long)diff);
    ms6_scan_params one = sp;
    one.seqlen = 1;
    one.out.ptr = o3;
    CHECK(ms6_selective_scan_fwd(be, &one) == MS6_STATUS_OK, "scan L=1");
    diff = 0;
    for (int64_t d = 0; d < D; d++) diff += memcmp(&o1[d], &o3[d], sizeof(float)) != 0;
    CHECK(diff == 0, "[%s] scan: %lld outputs of step 0 differ between L = 1 and L = %lld", k->name, (long long)diff,
          (long long)L);
done:
    ms6_backend_free(be);
    free(u); free(dl); free(z); free(A); free(B); free(C); free(Dv); free(bias);
    free(o1); free(o2); free(uc); free(dc); free(zc); free(o3);
}

/* The multiply-add probe behind bench generate's prefill floor: its result
 * is the 12 chains of x <- 0.999 x + 0.001 (x0 = 0..11) summed, computed
 * here in float64; the probe's fp32 chains stay within 1e-4 relative after
 * a random number of steps. The peak it measures must be positive. */
static void test_fma_probe(const ms6_fast_kernels *k) {
    const int64_t iters = 1 + (int64_t)tu_uniform_range(&rng, 0, 3000);
    double want = 0;
    for (int i = 0; i < 12; i++) {
        double x = i;
        for (int64_t t = 0; t < iters; t++) x = (double)0.999f * x + (double)0.001f;
        want += 8 * x;
    }
    const double got = k->fma_probe(iters);
    CHECK(fabs(got - want) <= 1e-4 * fabs(want), "[%s] fma_probe(%lld) = %.9g, float64 %.9g", k->name,
          (long long)iters, got, want);
    const double peak = ms6_fast_fma_peak(k, 1);
    CHECK(peak > 1e6, "[%s] fma peak %.3g FLOP/s", k->name, peak);
}

/* The optional BLAS path (builds with MS6_BLAS, MS6_CPU_BLAS=1): the same
 * float64 comparison; M = 13 and 100 of the sweep reach cblas_sgemm. */
static void test_blas(void) {
    if (!ms6_fast_blas_compiled()) {
        printf("BLAS path: not compiled in (cmake -DMS6_BLAS=ON), skipped\n");
        return;
    }
    setenv("MS6_CPU_BLAS", "1", 1);
    ms6_backend *be = make_cpu(2, NULL);
    unsetenv("MS6_CPU_BLAS");
    if (!be) return;
    CHECK(((ms6_cpu_ctx *)be->ctx)->use_blas, "MS6_CPU_BLAS=1 did not turn the BLAS path on");
    test_gemm_f64(be, "[blas, 2 threads]");
    ms6_backend_free(be);
    be = make_cpu(2, NULL);
    if (be) CHECK(!((ms6_cpu_ctx *)be->ctx)->use_blas, "BLAS path on without MS6_CPU_BLAS=1");
    ms6_backend_free(be);
    printf("BLAS path: gemm sweep vs float64 checked\n");
}

static void test_bad_args(void) {
    ms6_backend_options o = {-1, 0};
    ms6_backend *be = (ms6_backend *)1;
    ms6_error err;
    ms6_status st = ms6_backend_create(MS6_BACKEND_CPU, &o, &be, &err);
    CHECK(st == MS6_STATUS_INVALID_ARGUMENT && be == NULL, "n_threads = -1 accepted (status %d)", (int)st);
    CHECK(strstr(err.message, "n_threads") != NULL, "message does not name n_threads: %s", err.message);
    CHECK(ms6_fast_kernels_by_name("no-such-isa") == NULL, "unknown ISA name accepted");
    CHECK(ms6_fast_kernels_select() != NULL, "no kernels selected");
}

static void test_split(void) {
    /* the parts cover [0, total) in order, aligned, for any thread count */
    for (int nth = 1; nth <= 9; nth++)
        for (int64_t total = 0; total < 70; total += 7) {
            int64_t prev = 0;
            for (int i = 0; i < nth; i++) {
                int64_t lo, hi;
                ms6_split_range(total, 4, i, nth, &lo, &hi);
                CHECK(lo == prev && hi >= lo && (lo % 4 == 0 || lo == total), "split %lld/%d part %d: [%lld, %lld)",
                      (long long)total, nth, i, (long long)lo, (long long)hi);
                prev = hi;
            }
            CHECK(prev == total, "split %lld/%d ends at %lld", (long long)total, nth, (long long)prev);
        }
}

typedef struct {
    _Atomic int64_t *hits; /* per chunk */
    _Atomic int64_t *tids; /* per tid */
    int size;
    _Atomic int bad_tid;
} pool_arg;

static void pool_fn(void *arg, int64_t chunk, int tid) {
    pool_arg *a = arg;
    a->hits[chunk]++;
    if (tid < 0 || tid >= a->size) a->bad_tid = 1;
    else a->tids[tid]++;
}

static void test_pool(void) {
    ms6_threadpool *pool = ms6_threadpool_create(3);
    CHECK(pool != NULL, "threadpool_create(3)");
    if (!pool) return;
    enum { NC = 37, REPS = 3000 };
    _Atomic int64_t hits[NC], tids[3];
    for (int i = 0; i < NC; i++) hits[i] = 0;
    for (int i = 0; i < 3; i++) tids[i] = 0;
    pool_arg a = {hits, tids, ms6_threadpool_size(pool), 0};
    CHECK(a.size >= 1 && a.size <= 3, "pool size %d", a.size);
    /* many jobs back to back, of 1..NC chunks: each chunk runs exactly once per job */
    int64_t want[NC] = {0};
    for (int r = 0; r < REPS; r++) {
        const int n = 1 + r % NC;
        ms6_threadpool_for(pool, n, pool_fn, &a);
        for (int i = 0; i < n; i++) want[i]++;
    }
    int bad = 0;
    for (int i = 0; i < NC; i++) bad += hits[i] != want[i];
    CHECK(bad == 0 && !a.bad_tid, "chunks run a wrong number of times (%d) or bad tid", bad);
    ms6_threadpool_free(pool);
    /* NULL pool: everything on the caller, tid 0 */
    _Atomic int64_t h2[4] = {0, 0, 0, 0}, t2[1] = {0};
    pool_arg b = {h2, t2, 1, 0};
    ms6_threadpool_for(NULL, 4, pool_fn, &b);
    CHECK(h2[0] == 1 && h2[3] == 1 && t2[0] == 4 && !b.bad_tid, "NULL pool runs every chunk on the caller");
    ms6_threadpool_for(NULL, 0, pool_fn, &b);
    CHECK(t2[0] == 4, "zero chunks run nothing");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    tu_rng_init(&rng, tu_seed("test_cpu_fast"));
    const ms6_fast_kernels *sel = ms6_fast_kernels_select();
    printf("kernels selected on this machine: %s\n", sel->name);
    const char *isas[] = {"avx2", "neon", "scalar"};
    for (int i = 0; i < 3; i++) {
        const ms6_fast_kernels *k = ms6_fast_kernels_by_name(isas[i]);
        if (k) test_exp(k);
        if (k) test_fma_probe(k);
    }
    test_split();
    test_pool();
    test_bad_args();
    for (int i = 0; i < 3; i++) {
        const ms6_fast_kernels *k = ms6_fast_kernels_by_name(isas[i]);
        if (!k) continue;
        const int threads = i == 0 ? 3 : 2;
        ms6_backend *be = make_cpu(threads, k);
        if (!be) continue;
        char tag[64];
        snprintf(tag, sizeof tag, "[%s, %d threads]", k->name, threads);
        test_gemm_f64(be, tag);
        ms6_backend_free(be);
        test_gemm_row_independence(k);
        test_scan_paths(k);
    }
    test_gemv_model_shape();
    test_ops_and_threads();
    test_blas();
    fflush(stdout);
    return tu_finish("test_cpu_fast");
}
