/*
 * kernel_harness.c - float64 oracles and the case runner described in
 * kernel_harness.h. The oracles here are written independently of
 * src/backend/cpu/ref.c: double arithmetic, canonical (batch, dim, L) arrays,
 * no strides.
 */
#include "kernel_harness.h"

#include "core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small utilities ---- */

typedef struct kbuf {
    void *host, *dev;
    size_t bytes;
} kbuf;

static ms6_status kb_make(ms6_backend *be, kbuf *b, size_t bytes) {
    b->bytes = bytes ? bytes : 4;
    b->host = calloc(1, b->bytes);
    b->dev = NULL;
    if (!b->host) return MS6_STATUS_OUT_OF_MEMORY;
    return ms6_backend_alloc(be, b->bytes, &b->dev);
}
static ms6_status kb_up(ms6_backend *be, kbuf *b) { return ms6_backend_upload(be, b->dev, b->host, b->bytes); }
static ms6_status kb_down(ms6_backend *be, kbuf *b) {
    ms6_status st = ms6_backend_synchronize(be);
    if (st) return st;
    return ms6_backend_download(be, b->host, b->dev, b->bytes);
}
static ms6_status kb_poison(ms6_backend *be, kbuf *b) {
    memset(b->host, 0xff, b->bytes); /* NaN in f32, f16 and bf16 */
    return kb_up(be, b);
}
static void kb_free(ms6_backend *be, kbuf *b) {
    if (b->dev) ms6_backend_dealloc(be, b->dev);
    free(b->host);
    b->dev = b->host = NULL;
}

static double q(double x, ms6_dtype t) {
    float f = (float)x;
    switch (t) {
    case MS6_DTYPE_F16: return ms6_f16_to_f32(ms6_f32_to_f16(f));
    case MS6_DTYPE_BF16: return ms6_bf16_to_f32(ms6_f32_to_bf16(f));
    default: return f;
    }
}

static double softplus64(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static double silu64(double x) { return x / (1.0 + exp(-x)); }

static void act_strides(int token_major, int64_t dim, int64_t L, int64_t *bs, int64_t *ds, int64_t *ts) {
    if (token_major) { *bs = L * dim; *ds = 1; *ts = dim; }
    else { *bs = dim * L; *ds = L; *ts = 1; }
}

double kh_tolerance(ms6_dtype out) {
    switch (out) {
    case MS6_DTYPE_F16: return 1.5e-3;
    case MS6_DTYPE_BF16: return 1e-2;
    default: return 2e-5;
    }
}

kh_scan_case kh_sweep_scan_case(const int64_t shape[5], ms6_dtype io, int flags, int k) {
    kh_scan_case c = {0};
    c.L = shape[0]; c.N = shape[1]; c.dim = shape[2]; c.batch = shape[3]; c.G = shape[4];
    c.io = io;
    c.b_variable = (k % 3) != 0;
    c.c_variable = (k % 3) != 1;
    c.has_D = flags & 1;
    c.has_z = (flags >> 1) & 1;
    c.has_delta_bias = (k % 2) == 0;
    c.softplus = (k % 4) != 3;
    c.has_h0 = (k % 5) < 3;
    c.want_hT = (k % 6) != 5;
    c.token_major = (k % 2) == 1;
    return c;
}

kh_update_case kh_sweep_update_case(const int64_t shape[5], ms6_dtype io, int flags) {
    kh_update_case c = {0};
    c.batch = 5; c.dim = shape[2]; c.N = shape[1]; c.G = shape[4];
    c.io = io;
    c.b_variable = flags != 3;
    c.c_variable = flags != 2;
    c.has_D = (flags & 1) == 0; c.has_z = flags != 1; c.has_dt_bias = flags < 2;
    c.softplus = flags != 2; c.use_indices = flags & 1;
    return c;
}

const char *kh_describe_scan(const kh_scan_case *c, char *buf, size_t cap) {
    snprintf(buf, cap,
             "scan b=%lld dim=%lld L=%lld N=%lld G=%lld B%s C%s D=%d z=%d bias=%d sp=%d h0=%d hT=%d %s %s",
             (long long)c->batch, (long long)c->dim, (long long)c->L, (long long)c->N, (long long)c->G,
             c->b_variable ? "var" : "const", c->c_variable ? "var" : "const", c->has_D, c->has_z,
             c->has_delta_bias, c->softplus, c->has_h0, c->want_hT, ms6_dtype_name(c->io),
             c->token_major ? "token-major" : "channel-major");
    return buf;
}

#define TRY(x) do { st = (x); if (st != MS6_STATUS_OK) goto done; } while (0)

static void finish_compare(kh_result *res, ms6_dtype out, const double *got, const double *ref, int64_t n,
                           const double *sgot, const double *sref, int64_t sn) {
    res->nan = tu_compare(got, ref, n, &res->rel, &res->maxabs);
    double e2 = 0, r2 = 0; /* the oracle itself rounded to the output type */
    for (int64_t i = 0; i < n; i++) {
        const double d = q(ref[i], out) - ref[i];
        e2 += d * d;
        r2 += ref[i] * ref[i];
    }
    res->round_rel = r2 > 0 ? sqrt(e2 / r2) : 0;
    res->state_rel = res->state_maxabs = 0;
    if (sgot && sn) res->nan |= tu_compare(sgot, sref, sn, &res->state_rel, &res->state_maxabs);
}

/* ---- selective scan ---- */

ms6_status kh_run_scan(ms6_backend *be, const kh_scan_case *c, tu_rng *rng, kh_result *res, char *msg) {
    const int64_t Bn = c->batch, D = c->dim, L = c->L, N = c->N, G = c->G > 0 ? c->G : 1;
    const int64_t nact = Bn * D * L, nst = Bn * D * N;
    const int64_t nbc_var = Bn * G * N * L, nbc_const = D * N;
    const size_t es = ms6_dtype_size(c->io);
    ms6_status st = MS6_STATUS_OK;
    memset(res, 0, sizeof *res);
    res->untouched_ok = 1;

    double *u = malloc(sizeof(double) * nact), *dl = malloc(sizeof(double) * nact);
    double *z = malloc(sizeof(double) * nact), *ref = malloc(sizeof(double) * nact);
    double *got = malloc(sizeof(double) * nact);
    double *A = malloc(sizeof(double) * D * N), *Dv = malloc(sizeof(double) * D), *bias = malloc(sizeof(double) * D);
    int64_t nB = c->b_variable ? nbc_var : nbc_const, nC = c->c_variable ? nbc_var : nbc_const;
    double *Bc = malloc(sizeof(double) * nB), *Cc = malloc(sizeof(double) * nC);
    double *h0 = malloc(sizeof(double) * nst), *hT = malloc(sizeof(double) * nst), *hgot = malloc(sizeof(double) * nst);
    kbuf bu = {0}, bdl = {0}, bz = {0}, bout = {0}, bA = {0}, bB = {0}, bC = {0}, bD = {0}, bbias = {0}, bh0 = {0}, bhT = {0};
    if (!u || !dl || !z || !ref || !got || !A || !Dv || !bias || !Bc || !Cc || !h0 || !hT || !hgot) {
        st = MS6_STATUS_OUT_OF_MEMORY;
        goto done;
    }

    /* inputs: u, z ~ N(0,1); raw delta such that dt lands in (0.001, ~2);
     * A = -exp(uniform(log 0.5, log 16)); B, C ~ N(0,1); D ~ N(0,1) */
    for (int64_t i = 0; i < nact; i++) {
        u[i] = q(tu_normal(rng), c->io);
        z[i] = q(tu_normal(rng), c->io);
        dl[i] = q(c->softplus ? tu_uniform_range(rng, -6.0, 1.0) : tu_uniform_range(rng, 0.001, 0.3), c->io);
    }
    if (c->softplus && nact > 3) dl[nact / 2] = q(21.5, c->io); /* exercise the softplus threshold */
    for (int64_t i = 0; i < D * N; i++) A[i] = (float)-exp(tu_uniform_range(rng, log(0.5), log(16.0)));
    for (int64_t d = 0; d < D; d++) {
        Dv[d] = (float)tu_normal(rng);
        bias[d] = (float)tu_uniform_range(rng, -1.0, 0.5);
    }
    for (int64_t i = 0; i < nB; i++) Bc[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < nC; i++) Cc[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < nst; i++) h0[i] = (float)(0.5 * tu_normal(rng));

    /* float64 oracle */
    const int64_t dpg = D / G;
    double *h = malloc(sizeof(double) * N);
    if (!h) { st = MS6_STATUS_OUT_OF_MEMORY; goto done; }
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) {
            const int64_t g = d / dpg;
            for (int64_t n = 0; n < N; n++) h[n] = c->has_h0 ? h0[(b * D + d) * N + n] : 0.0;
            for (int64_t t = 0; t < L; t++) {
                const int64_t i = (b * D + d) * L + t;
                double dt = dl[i] + (c->has_delta_bias ? bias[d] : 0.0);
                if (c->softplus) dt = softplus64(dt);
                double y = 0;
                for (int64_t n = 0; n < N; n++) {
                    double bv = c->b_variable ? Bc[((b * G + g) * N + n) * L + t] : Bc[d * N + n];
                    double cv = c->c_variable ? Cc[((b * G + g) * N + n) * L + t] : Cc[d * N + n];
                    h[n] = exp(dt * A[d * N + n]) * h[n] + dt * bv * u[i];
                    y += cv * h[n];
                }
                if (c->has_D) y += Dv[d] * u[i];
                if (c->has_z) y *= silu64(z[i]);
                ref[i] = y;
            }
            for (int64_t n = 0; n < N; n++) hT[(b * D + d) * N + n] = h[n];
        }
    free(h);

    /* pack */
    int64_t bs, ds, ts;
    act_strides(c->token_major, D, L, &bs, &ds, &ts);
    TRY(kb_make(be, &bu, es * nact));
    TRY(kb_make(be, &bdl, es * nact));
    TRY(kb_make(be, &bz, es * nact));
    TRY(kb_make(be, &bout, es * nact));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < L; t++) {
                int64_t i = (b * D + d) * L + t, o = b * bs + d * ds + t * ts;
                ms6_store(bu.host, c->io, o, (float)u[i]);
                ms6_store(bdl.host, c->io, o, (float)dl[i]);
                ms6_store(bz.host, c->io, o, (float)z[i]);
            }
    /* variable B/C: channel-major cases use (batch, G, N, L); token-major
     * cases use (batch, L, G, N), the layout x_proj produces */
    int64_t vbs, vgs, vns, vts;
    if (c->token_major) { vbs = L * G * N; vgs = N; vns = 1; vts = G * N; }
    else { vbs = G * N * L; vgs = N * L; vns = L; vts = 1; }
    TRY(kb_make(be, &bB, es * nB));
    TRY(kb_make(be, &bC, es * nC));
    for (int pass = 0; pass < 2; pass++) {
        int var = pass ? c->c_variable : c->b_variable;
        double *src = pass ? Cc : Bc;
        kbuf *dst = pass ? &bC : &bB;
        if (!var) {
            for (int64_t i = 0; i < nbc_const; i++) ms6_store(dst->host, c->io, i, (float)src[i]);
        } else {
            for (int64_t b = 0; b < Bn; b++)
                for (int64_t g = 0; g < G; g++)
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t t = 0; t < L; t++)
                            ms6_store(dst->host, c->io, b * vbs + g * vgs + n * vns + t * vts,
                                      (float)src[((b * G + g) * N + n) * L + t]);
        }
    }
    TRY(kb_make(be, &bA, sizeof(float) * D * N));
    TRY(kb_make(be, &bD, sizeof(float) * D));
    TRY(kb_make(be, &bbias, sizeof(float) * D));
    TRY(kb_make(be, &bh0, sizeof(float) * nst));
    TRY(kb_make(be, &bhT, sizeof(float) * nst));
    for (int64_t i = 0; i < D * N; i++) ((float *)bA.host)[i] = (float)A[i];
    for (int64_t d = 0; d < D; d++) {
        ((float *)bD.host)[d] = (float)Dv[d];
        ((float *)bbias.host)[d] = (float)bias[d];
    }
    for (int64_t i = 0; i < nst; i++) ((float *)bh0.host)[i] = (float)h0[i];
    TRY(kb_up(be, &bu)); TRY(kb_up(be, &bdl)); TRY(kb_up(be, &bz)); TRY(kb_up(be, &bB)); TRY(kb_up(be, &bC));
    TRY(kb_up(be, &bA)); TRY(kb_up(be, &bD)); TRY(kb_up(be, &bbias)); TRY(kb_up(be, &bh0));
    TRY(kb_poison(be, &bout));
    TRY(kb_poison(be, &bhT));

    ms6_scan_params p = {0};
    p.batch = Bn; p.dim = D; p.seqlen = L; p.d_state = N; p.n_groups = G;
    p.u = (ms6_act){bu.dev, c->io, bs, ds, ts};
    p.delta = (ms6_act){bdl.dev, c->io, bs, ds, ts};
    p.out = (ms6_act){bout.dev, c->io, bs, ds, ts};
    if (c->has_z) p.z = (ms6_act){bz.dev, c->io, bs, ds, ts};
    p.A = bA.dev; p.A_dim_stride = N; p.A_state_stride = 1;
    p.B = c->b_variable ? (ms6_bc){bB.dev, c->io, MS6_BC_VARIABLE, vbs, vgs, 0, vns, vts}
                        : (ms6_bc){bB.dev, c->io, MS6_BC_CONSTANT, 0, 0, N, 1, 0};
    p.C = c->c_variable ? (ms6_bc){bC.dev, c->io, MS6_BC_VARIABLE, vbs, vgs, 0, vns, vts}
                        : (ms6_bc){bC.dev, c->io, MS6_BC_CONSTANT, 0, 0, N, 1, 0};
    p.D = c->has_D ? bD.dev : NULL;
    p.delta_bias = c->has_delta_bias ? bbias.dev : NULL;
    p.delta_softplus = c->softplus;
    p.initial_state = c->has_h0 ? bh0.dev : NULL;
    p.final_state = c->want_hT ? bhT.dev : NULL;
    st = ms6_selective_scan_fwd(be, &p);
    if (st != MS6_STATUS_OK) {
        snprintf(msg, 512, "%s", ms6_backend_last_error(be));
        goto done;
    }
    TRY(kb_down(be, &bout));
    TRY(kb_down(be, &bhT));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < L; t++)
                got[(b * D + d) * L + t] = ms6_load(bout.host, c->io, b * bs + d * ds + t * ts);
    for (int64_t i = 0; i < nst; i++) hgot[i] = ((float *)bhT.host)[i];
    finish_compare(res, c->io, got, ref, nact, c->want_hT ? hgot : NULL, hT, nst);
    if (!c->want_hT) { /* final state not requested: must stay untouched (poison) */
        for (int64_t i = 0; i < nst; i++)
            if (((uint32_t *)bhT.host)[i] != 0xffffffffu) { res->untouched_ok = 0; break; }
    }

done:
    if (st != MS6_STATUS_OK && !msg[0]) snprintf(msg, 512, "%s", ms6_backend_last_error(be));
    kb_free(be, &bu); kb_free(be, &bdl); kb_free(be, &bz); kb_free(be, &bout); kb_free(be, &bA); kb_free(be, &bB);
    kb_free(be, &bC); kb_free(be, &bD); kb_free(be, &bbias); kb_free(be, &bh0); kb_free(be, &bhT);
    free(u); free(dl); free(z); free(ref); free(got); free(A); free(Dv); free(bias); free(Bc); free(Cc);
    free(h0); free(hT); free(hgot);
    return st;
}

/* ---- selective state update ---- */

/* Slot assignment: with indices, batch b uses slot perm[b] among
 * batch + 3 slots, and every third entry is padding (-1). */
static void make_slots(tu_rng *rng, int64_t batch, int use_indices, int64_t *n_slots, int32_t *idx) {
    if (!use_indices) {
        *n_slots = batch;
        for (int64_t b = 0; b < batch; b++) idx[b] = (int32_t)b;
        return;
    }
    *n_slots = batch + 3;
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)*n_slots);
    for (int64_t i = 0; i < *n_slots; i++) perm[i] = (int32_t)i;
    for (int64_t i = *n_slots - 1; i > 0; i--) {
        int64_t j = (int64_t)(tu_next(rng) % (uint64_t)(i + 1));
        int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (int64_t b = 0; b < batch; b++) idx[b] = (b % 3 == 1) ? -1 : perm[b];
    free(perm);
}

/* Outputs of padding entries (negative slot index) must be exactly zero. */
static void check_padding_zero(kh_result *res, const double *got, const int32_t *idx, int64_t Bn, int64_t D) {
    for (int64_t b = 0; b < Bn; b++)
        if (idx[b] < 0)
            for (int64_t d = 0; d < D; d++)
                if (got[b * D + d] != 0.0) res->untouched_ok = 0;
}

ms6_status kh_run_update(ms6_backend *be, const kh_update_case *c, tu_rng *rng, kh_result *res, char *msg) {
    const int64_t Bn = c->batch, D = c->dim, N = c->N, G = c->G > 0 ? c->G : 1;
    const size_t es = ms6_dtype_size(c->io);
    const int64_t ld = D + 3; /* padded rows: batch stride != dim */
    ms6_status st = MS6_STATUS_OK;
    memset(res, 0, sizeof *res);
    res->untouched_ok = 1;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)Bn);
    int64_t n_slots;
    make_slots(rng, Bn, c->use_indices, &n_slots, idx);
    const int64_t nst = n_slots * D * N;
    const int64_t nB = c->b_variable ? Bn * G * N : D * N, nC = c->c_variable ? Bn * G * N : D * N;
    double *x = malloc(sizeof(double) * Bn * D), *dt = malloc(sizeof(double) * Bn * D), *z = malloc(sizeof(double) * Bn * D);
    double *A = malloc(sizeof(double) * D * N), *Dv = malloc(sizeof(double) * D), *bias = malloc(sizeof(double) * D);
    double *Bc = malloc(sizeof(double) * nB), *Cc = malloc(sizeof(double) * nC);
    double *s0 = malloc(sizeof(double) * nst), *sref = malloc(sizeof(double) * nst), *sgot = malloc(sizeof(double) * nst);
    double *ref = malloc(sizeof(double) * Bn * D), *got = malloc(sizeof(double) * Bn * D);
    kbuf bx = {0}, bdt = {0}, bz = {0}, bout = {0}, bA = {0}, bB = {0}, bC = {0}, bD = {0}, bbias = {0}, bs = {0}, bidx = {0};

    for (int64_t i = 0; i < Bn * D; i++) {
        x[i] = q(tu_normal(rng), c->io);
        z[i] = q(tu_normal(rng), c->io);
        dt[i] = q(c->softplus ? tu_uniform_range(rng, -6.0, 1.0) : tu_uniform_range(rng, 0.001, 0.3), c->io);
    }
    for (int64_t i = 0; i < D * N; i++) A[i] = (float)-exp(tu_uniform_range(rng, log(0.5), log(16.0)));
    for (int64_t d = 0; d < D; d++) { Dv[d] = (float)tu_normal(rng); bias[d] = (float)tu_uniform_range(rng, -1.0, 0.5); }
    for (int64_t i = 0; i < nB; i++) Bc[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < nC; i++) Cc[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < nst; i++) sref[i] = s0[i] = (float)tu_normal(rng);

    const int64_t dpg = D / G;
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) {
            if (idx[b] < 0) { ref[b * D + d] = 0; continue; }
            double *h = sref + ((int64_t)idx[b] * D + d) * N;
            double dd = dt[b * D + d] + (c->has_dt_bias ? bias[d] : 0.0);
            if (c->softplus) dd = softplus64(dd);
            double y = 0;
            for (int64_t n = 0; n < N; n++) {
                double bv = c->b_variable ? Bc[(b * G + d / dpg) * N + n] : Bc[d * N + n];
                double cv = c->c_variable ? Cc[(b * G + d / dpg) * N + n] : Cc[d * N + n];
                h[n] = exp(dd * A[d * N + n]) * h[n] + dd * bv * x[b * D + d];
                y += cv * h[n];
            }
            if (c->has_D) y += Dv[d] * x[b * D + d];
            if (c->has_z) y *= silu64(z[b * D + d]);
            ref[b * D + d] = y;
        }

    TRY(kb_make(be, &bx, es * Bn * ld)); TRY(kb_make(be, &bdt, es * Bn * ld)); TRY(kb_make(be, &bz, es * Bn * ld));
    TRY(kb_make(be, &bout, es * Bn * ld));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) {
            ms6_store(bx.host, c->io, b * ld + d, (float)x[b * D + d]);
            ms6_store(bdt.host, c->io, b * ld + d, (float)dt[b * D + d]);
            ms6_store(bz.host, c->io, b * ld + d, (float)z[b * D + d]);
        }
    TRY(kb_make(be, &bB, es * nB)); TRY(kb_make(be, &bC, es * nC));
    for (int64_t i = 0; i < nB; i++) ms6_store(bB.host, c->io, i, (float)Bc[i]);
    for (int64_t i = 0; i < nC; i++) ms6_store(bC.host, c->io, i, (float)Cc[i]);
    TRY(kb_make(be, &bA, sizeof(float) * D * N)); TRY(kb_make(be, &bD, sizeof(float) * D));
    TRY(kb_make(be, &bbias, sizeof(float) * D)); TRY(kb_make(be, &bs, sizeof(float) * nst));
    TRY(kb_make(be, &bidx, sizeof(int32_t) * Bn));
    for (int64_t i = 0; i < D * N; i++) ((float *)bA.host)[i] = (float)A[i];
    for (int64_t d = 0; d < D; d++) { ((float *)bD.host)[d] = (float)Dv[d]; ((float *)bbias.host)[d] = (float)bias[d]; }
    for (int64_t i = 0; i < nst; i++) ((float *)bs.host)[i] = (float)s0[i];
    memcpy(bidx.host, idx, sizeof(int32_t) * Bn);
    TRY(kb_up(be, &bx)); TRY(kb_up(be, &bdt)); TRY(kb_up(be, &bz)); TRY(kb_up(be, &bB)); TRY(kb_up(be, &bC));
    TRY(kb_up(be, &bA)); TRY(kb_up(be, &bD)); TRY(kb_up(be, &bbias)); TRY(kb_up(be, &bs)); TRY(kb_up(be, &bidx));
    TRY(kb_poison(be, &bout));

    ms6_state_update_params p = {0};
    p.batch = Bn; p.dim = D; p.d_state = N; p.n_groups = G; p.n_state_slots = n_slots;
    p.state = bs.dev;
    p.x = (ms6_act){bx.dev, c->io, ld, 1, 0};
    p.dt = (ms6_act){bdt.dev, c->io, ld, 1, 0};
    p.out = (ms6_act){bout.dev, c->io, ld, 1, 0};
    if (c->has_z) p.z = (ms6_act){bz.dev, c->io, ld, 1, 0};
    p.A = bA.dev; p.A_dim_stride = N; p.A_state_stride = 1;
    p.B = c->b_variable ? (ms6_bc){bB.dev, c->io, MS6_BC_VARIABLE, G * N, N, 0, 1, 0}
                        : (ms6_bc){bB.dev, c->io, MS6_BC_CONSTANT, 0, 0, N, 1, 0};
    p.C = c->c_variable ? (ms6_bc){bC.dev, c->io, MS6_BC_VARIABLE, G * N, N, 0, 1, 0}
                        : (ms6_bc){bC.dev, c->io, MS6_BC_CONSTANT, 0, 0, N, 1, 0};
    p.D = c->has_D ? bD.dev : NULL;
    p.dt_bias = c->has_dt_bias ? bbias.dev : NULL;
    p.dt_softplus = c->softplus;
    p.state_batch_indices = c->use_indices ? bidx.dev : NULL;
    st = ms6_selective_state_update(be, &p);
    if (st != MS6_STATUS_OK) { snprintf(msg, 512, "%s", ms6_backend_last_error(be)); goto done; }
    TRY(kb_down(be, &bout)); TRY(kb_down(be, &bs));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) got[b * D + d] = ms6_load(bout.host, c->io, b * ld + d);
    for (int64_t i = 0; i < nst; i++) sgot[i] = ((float *)bs.host)[i];
    finish_compare(res, c->io, got, ref, Bn * D, sgot, sref, nst);
    /* slots no sequence uses must be bitwise unchanged */
    for (int64_t s = 0; s < n_slots; s++) {
        int used = 0;
        for (int64_t b = 0; b < Bn; b++) used |= idx[b] == s;
        if (used) continue;
        for (int64_t i = 0; i < D * N; i++)
            if (((float *)bs.host)[s * D * N + i] != (float)s0[s * D * N + i]) res->untouched_ok = 0;
    }
    check_padding_zero(res, got, idx, Bn, D);

done:
    if (st != MS6_STATUS_OK && !msg[0]) snprintf(msg, 512, "%s", ms6_backend_last_error(be));
    kb_free(be, &bx); kb_free(be, &bdt); kb_free(be, &bz); kb_free(be, &bout); kb_free(be, &bA); kb_free(be, &bB);
    kb_free(be, &bC); kb_free(be, &bD); kb_free(be, &bbias); kb_free(be, &bs); kb_free(be, &bidx);
    free(idx); free(x); free(dt); free(z); free(A); free(Dv); free(bias); free(Bc); free(Cc);
    free(s0); free(sref); free(sgot); free(ref); free(got);
    return st;
}

/* ---- causal conv1d ---- */

ms6_status kh_run_conv(ms6_backend *be, const kh_conv_case *c, tu_rng *rng, kh_result *res, char *msg) {
    const int64_t Bn = c->batch, D = c->dim, L = c->L, K = c->K, W = K - 1;
    const int64_t nact = Bn * D * L, nst = Bn * D * W;
    const size_t es = ms6_dtype_size(c->io);
    ms6_status st = MS6_STATUS_OK;
    memset(res, 0, sizeof *res);
    res->untouched_ok = 1;
    double *x = malloc(sizeof(double) * nact), *ref = malloc(sizeof(double) * nact), *got = malloc(sizeof(double) * nact);
    double *w = malloc(sizeof(double) * D * K), *bias = malloc(sizeof(double) * D);
    double *s0 = malloc(sizeof(double) * (nst + 1)), *sT = malloc(sizeof(double) * (nst + 1));
    double *sgot = malloc(sizeof(double) * (nst + 1));
    kbuf bx = {0}, bout = {0}, bw = {0}, bb = {0}, bs0 = {0}, bsT = {0};
    for (int64_t i = 0; i < nact; i++) x[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < D * K; i++) w[i] = (float)(tu_normal(rng) / sqrt((double)K));
    for (int64_t d = 0; d < D; d++) bias[d] = (float)(0.3 * tu_normal(rng));
    for (int64_t i = 0; i < nst; i++) s0[i] = (float)tu_normal(rng);

    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) {
            /* input at time j (j may be negative: initial state or zero) */
            for (int64_t t = 0; t < L; t++) {
                double acc = c->has_bias ? bias[d] : 0.0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t j = t - W + k;
                    double v = j >= 0 ? x[(b * D + d) * L + j] : (c->has_init ? s0[(b * D + d) * W + (W + j)] : 0.0);
                    acc += w[d * K + k] * v;
                }
                ref[(b * D + d) * L + t] = c->activation ? silu64(acc) : acc;
            }
            for (int64_t k = 0; k < W; k++) {
                int64_t j = L - W + k;
                sT[(b * D + d) * W + k] = j >= 0 ? x[(b * D + d) * L + j] : (c->has_init ? s0[(b * D + d) * W + (W + j)] : 0.0);
            }
        }

    int64_t bs, ds, ts;
    act_strides(c->token_major, D, L, &bs, &ds, &ts);
    TRY(kb_make(be, &bx, es * nact)); TRY(kb_make(be, &bout, es * nact));
    TRY(kb_make(be, &bw, sizeof(float) * D * K)); TRY(kb_make(be, &bb, sizeof(float) * D));
    TRY(kb_make(be, &bs0, sizeof(float) * (nst + 1))); TRY(kb_make(be, &bsT, sizeof(float) * (nst + 1)));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < L; t++) ms6_store(bx.host, c->io, b * bs + d * ds + t * ts, (float)x[(b * D + d) * L + t]);
    for (int64_t i = 0; i < D * K; i++) ((float *)bw.host)[i] = (float)w[i];
    for (int64_t d = 0; d < D; d++) ((float *)bb.host)[d] = (float)bias[d];
    for (int64_t i = 0; i < nst; i++) ((float *)bs0.host)[i] = (float)s0[i];
    TRY(kb_up(be, &bx)); TRY(kb_up(be, &bw)); TRY(kb_up(be, &bb)); TRY(kb_up(be, &bs0));
    TRY(kb_poison(be, &bout)); TRY(kb_poison(be, &bsT));

    ms6_conv1d_params p = {0};
    p.batch = Bn; p.dim = D; p.seqlen = L; p.d_conv = K;
    p.x = (ms6_act){bx.dev, c->io, bs, ds, ts};
    p.out = (ms6_act){bout.dev, c->io, bs, ds, ts};
    p.weight = bw.dev;
    p.bias = c->has_bias ? bb.dev : NULL;
    p.activation = c->activation;
    p.initial_state = c->has_init ? bs0.dev : NULL;
    p.final_state = c->want_final ? bsT.dev : NULL;
    st = ms6_causal_conv1d_fwd(be, &p);
    if (st != MS6_STATUS_OK) { snprintf(msg, 512, "%s", ms6_backend_last_error(be)); goto done; }
    TRY(kb_down(be, &bout)); TRY(kb_down(be, &bsT));
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < L; t++) got[(b * D + d) * L + t] = ms6_load(bout.host, c->io, b * bs + d * ds + t * ts);
    for (int64_t i = 0; i < nst; i++) sgot[i] = ((float *)bsT.host)[i];
    finish_compare(res, c->io, got, ref, nact, c->want_final ? sgot : NULL, sT, nst);

done:
    if (st != MS6_STATUS_OK && !msg[0]) snprintf(msg, 512, "%s", ms6_backend_last_error(be));
    kb_free(be, &bx); kb_free(be, &bout); kb_free(be, &bw); kb_free(be, &bb); kb_free(be, &bs0); kb_free(be, &bsT);
    free(x); free(ref); free(got); free(w); free(bias); free(s0); free(sT); free(sgot);
    return st;
}

ms6_status kh_run_conv_update(ms6_backend *be, const kh_conv_update_case *c, tu_rng *rng, kh_result *res, char *msg) {
    const int64_t Bn = c->batch, D = c->dim, K = c->K, W = K - 1;
    const size_t es = ms6_dtype_size(c->io);
    ms6_status st = MS6_STATUS_OK;
    memset(res, 0, sizeof *res);
    res->untouched_ok = 1;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)Bn);
    int64_t n_slots;
    make_slots(rng, Bn, c->use_indices, &n_slots, idx);
    const int64_t nst = n_slots * D * W;
    double *x = malloc(sizeof(double) * Bn * D), *ref = malloc(sizeof(double) * Bn * D), *got = malloc(sizeof(double) * Bn * D);
    double *w = malloc(sizeof(double) * D * K), *bias = malloc(sizeof(double) * D);
    double *s0 = malloc(sizeof(double) * nst), *sref = malloc(sizeof(double) * nst), *sgot = malloc(sizeof(double) * nst);
    kbuf bx = {0}, bout = {0}, bw = {0}, bb = {0}, bs = {0}, bidx = {0};
    for (int64_t i = 0; i < Bn * D; i++) x[i] = q(tu_normal(rng), c->io);
    for (int64_t i = 0; i < D * K; i++) w[i] = (float)(tu_normal(rng) / sqrt((double)K));
    for (int64_t d = 0; d < D; d++) bias[d] = (float)(0.3 * tu_normal(rng));
    for (int64_t i = 0; i < nst; i++) sref[i] = s0[i] = (float)tu_normal(rng);
    for (int64_t b = 0; b < Bn; b++)
        for (int64_t d = 0; d < D; d++) {
            if (idx[b] < 0) { ref[b * D + d] = 0; continue; }
            double *s = sref + ((int64_t)idx[b] * D + d) * W;
            double acc = c->has_bias ? bias[d] : 0.0;
            for (int64_t k = 0; k < W; k++) acc += w[d * K + k] * s[k];
            acc += w[d * K + W] * x[b * D + d];
            for (int64_t k = 0; k + 1 < W; k++) s[k] = s[k + 1];
            s[W - 1] = x[b * D + d];
            ref[b * D + d] = c->activation ? silu64(acc) : acc;
        }
    TRY(kb_make(be, &bx, es * Bn * D)); TRY(kb_make(be, &bout, es * Bn * D));
    TRY(kb_make(be, &bw, sizeof(float) * D * K)); TRY(kb_make(be, &bb, sizeof(float) * D));
    TRY(kb_make(be, &bs, sizeof(float) * nst)); TRY(kb_make(be, &bidx, sizeof(int32_t) * Bn));
    for (int64_t i = 0; i < Bn * D; i++) ms6_store(bx.host, c->io, i, (float)x[i]);
    for (int64_t i = 0; i < D * K; i++) ((float *)bw.host)[i] = (float)w[i];
    for (int64_t d = 0; d < D; d++) ((float *)bb.host)[d] = (float)bias[d];
    for (int64_t i = 0; i < nst; i++) ((float *)bs.host)[i] = (float)s0[i];
    memcpy(bidx.host, idx, sizeof(int32_t) * Bn);
    TRY(kb_up(be, &bx)); TRY(kb_up(be, &bw)); TRY(kb_up(be, &bb)); TRY(kb_up(be, &bs)); TRY(kb_up(be, &bidx));
    TRY(kb_poison(be, &bout));
    ms6_conv1d_update_params p = {0};
    p.batch = Bn; p.dim = D; p.d_conv = K; p.n_state_slots = n_slots;
    p.x = (ms6_act){bx.dev, c->io, D, 1, 0};
    p.out = (ms6_act){bout.dev, c->io, D, 1, 0};
    p.state = bs.dev;
    p.weight = bw.dev;
    p.bias = c->has_bias ? bb.dev : NULL;
    p.activation = c->activation;
    p.state_batch_indices = c->use_indices ? bidx.dev : NULL;
    st = ms6_causal_conv1d_update(be, &p);
    if (st != MS6_STATUS_OK) { snprintf(msg, 512, "%s", ms6_backend_last_error(be)); goto done; }
    TRY(kb_down(be, &bout)); TRY(kb_down(be, &bs));
    for (int64_t i = 0; i < Bn * D; i++) got[i] = ms6_load(bout.host, c->io, i);
    for (int64_t i = 0; i < nst; i++) sgot[i] = ((float *)bs.host)[i];
    finish_compare(res, c->io, got, ref, Bn * D, sgot, sref, nst);
    check_padding_zero(res, got, idx, Bn, D);
done:
    if (st != MS6_STATUS_OK && !msg[0]) snprintf(msg, 512, "%s", ms6_backend_last_error(be));
    kb_free(be, &bx); kb_free(be, &bout); kb_free(be, &bw); kb_free(be, &bb); kb_free(be, &bs); kb_free(be, &bidx);
    free(idx); free(x); free(ref); free(got); free(w); free(bias); free(s0); free(sref); free(sgot);
    return st;
}

/* ---- RMSNorm ---- */

ms6_status kh_run_norm(ms6_backend *be, const kh_norm_case *c, tu_rng *rng, kh_result *res, char *msg) {
    const int64_t R = c->rows, D = c->dim, ldx = D + 5, ldo = D + 2, ldr = D + 1;
    const float eps = 1e-5f;
    ms6_status st = MS6_STATUS_OK;
    memset(res, 0, sizeof *res);
    res->untouched_ok = 1;
    double *x = malloc(sizeof(double) * R * D), *r0 = malloc(sizeof(double) * R * D), *w = malloc(sizeof(double) * D);
    double *ref = malloc(sizeof(double) * R * D), *got = malloc(sizeof(double) * R * D);
    double *rref = malloc(sizeof(double) * R * D), *rgot = malloc(sizeof(double) * R * D);
    kbuf bx = {0}, bo = {0}, br = {0}, bw = {0};
    for (int64_t i = 0; i < R * D; i++) {
        x[i] = q(2.0 * tu_normal(rng), c->x_dtype);
        r0[i] = (float)(3.0 * tu_normal(rng));
    }
    for (int64_t i = 0; i < D; i++) w[i] = (float)(1.0 + 0.2 * tu_normal(rng));
    for (int64_t r = 0; r < R; r++) {
        double ss = 0;
        for (int64_t i = 0; i < D; i++) {
            double v = c->has_residual ? r0[r * D + i] + (c->add_x ? x[r * D + i] : 0.0) : x[r * D + i];
            rref[r * D + i] = v;
            ss += v * v;
        }
        double inv = 1.0 / sqrt(ss / (double)D + (double)eps);
        for (int64_t i = 0; i < D; i++) ref[r * D + i] = rref[r * D + i] * inv * (c->has_weight ? w[i] : 1.0);
    }
    TRY(kb_make(be, &bx, ms6_dtype_size(c->x_dtype) * R * ldx));
    TRY(kb_make(be, &bo, ms6_dtype_size(c->out_dtype) * R * ldo));
    TRY(kb_make(be, &br, sizeof(float) * R * ldr));
    TRY(kb_make(be, &bw, sizeof(float) * D));
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) {
            ms6_store(bx.host, c->x_dtype, r * ldx + i, (float)x[r * D + i]);
            ((float *)br.host)[r * ldr + i] = (float)r0[r * D + i];
        }
    for (int64_t i = 0; i < D; i++) ((float *)bw.host)[i] = (float)w[i];
    TRY(kb_up(be, &bx)); TRY(kb_up(be, &br)); TRY(kb_up(be, &bw));
    TRY(kb_poison(be, &bo));
    ms6_rmsnorm_params p = {0};
    p.rows = R; p.dim = D;
    p.x = bx.dev; p.x_dtype = c->x_dtype; p.x_row_stride = ldx;
    p.out = bo.dev; p.out_dtype = c->out_dtype; p.out_row_stride = ldo;
    p.residual = c->has_residual ? br.dev : NULL; p.residual_row_stride = ldr;
    p.add_x = c->has_residual && c->add_x;
    p.weight = c->has_weight ? bw.dev : NULL;
    p.eps = eps;
    st = ms6_rmsnorm(be, &p);
    if (st != MS6_STATUS_OK) { snprintf(msg, 512, "%s", ms6_backend_last_error(be)); goto done; }
    TRY(kb_down(be, &bo)); TRY(kb_down(be, &br));
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) {
            got[r * D + i] = ms6_load(bo.host, c->out_dtype, r * ldo + i);
            rgot[r * D + i] = ((float *)br.host)[r * ldr + i];
        }
    finish_compare(res, c->out_dtype, got, ref, R * D, c->has_residual ? rgot : NULL, rref, R * D);
done:
    if (st != MS6_STATUS_OK && !msg[0]) snprintf(msg, 512, "%s", ms6_backend_last_error(be));
    kb_free(be, &bx); kb_free(be, &bo); kb_free(be, &br); kb_free(be, &bw);
    free(x); free(r0); free(w); free(ref); free(got); free(rref); free(rgot);
    return st;
}

/* ---- invariants (backend against itself) ---- */

static double rel_diff(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return NAN;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double kh_invariants(ms6_backend *be, tu_rng *rng, int64_t D, int64_t L, int64_t N, int64_t K, char *msg) {
    /* token-major f32 buffers for 2L+1 steps, batch 1 */
    const int64_t T = 2 * L + 1, W = K - 1, R = 2 * N; /* B|C row: [B(N) C(N)] */
    double worst = 0;
    kbuf u = {0}, dl = {0}, z = {0}, bc = {0}, A = {0}, Dv = {0}, bias = {0}, w = {0}, cb = {0};
    kbuf y1 = {0}, y2 = {0}, h1 = {0}, h2 = {0}, c1 = {0}, c2 = {0}, cs1 = {0}, cs2 = {0};
    ms6_status st = MS6_STATUS_OK;
    TRY(kb_make(be, &u, 4 * T * D)); TRY(kb_make(be, &dl, 4 * T * D)); TRY(kb_make(be, &z, 4 * T * D));
    TRY(kb_make(be, &bc, 4 * T * R)); TRY(kb_make(be, &A, 4 * D * N)); TRY(kb_make(be, &Dv, 4 * D));
    TRY(kb_make(be, &bias, 4 * D)); TRY(kb_make(be, &w, 4 * D * K)); TRY(kb_make(be, &cb, 4 * D));
    TRY(kb_make(be, &y1, 4 * T * D)); TRY(kb_make(be, &y2, 4 * T * D));
    TRY(kb_make(be, &h1, 4 * D * N)); TRY(kb_make(be, &h2, 4 * D * N));
    TRY(kb_make(be, &c1, 4 * T * D)); TRY(kb_make(be, &c2, 4 * T * D));
    TRY(kb_make(be, &cs1, 4 * D * W)); TRY(kb_make(be, &cs2, 4 * D * W));
    for (int64_t i = 0; i < T * D; i++) {
        ((float *)u.host)[i] = (float)tu_normal(rng);
        ((float *)dl.host)[i] = (float)tu_uniform_range(rng, -5, 1);
        ((float *)z.host)[i] = (float)tu_normal(rng);
    }
    for (int64_t i = 0; i < T * R; i++) ((float *)bc.host)[i] = (float)tu_normal(rng);
    for (int64_t i = 0; i < D * N; i++) ((float *)A.host)[i] = (float)-exp(tu_uniform_range(rng, log(0.5), log(16.0)));
    for (int64_t i = 0; i < D; i++) {
        ((float *)Dv.host)[i] = (float)tu_normal(rng);
        ((float *)bias.host)[i] = (float)tu_uniform_range(rng, -1, 0.5);
        ((float *)cb.host)[i] = (float)(0.3 * tu_normal(rng));
    }
    for (int64_t i = 0; i < D * K; i++) ((float *)w.host)[i] = (float)(tu_normal(rng) / sqrt((double)K));
    kbuf *ups[] = {&u, &dl, &z, &bc, &A, &Dv, &bias, &w, &cb};
    for (int i = 0; i < 9; i++) TRY(kb_up(be, ups[i]));

    /* scan over rows [t0, t0+len) of the token-major buffers */
#define SCAN(t0, len, yb, init, fin)                                                                 \
    do {                                                                                             \
        ms6_scan_params p = {0};                                                                     \
        p.batch = 1; p.dim = D; p.seqlen = (len); p.d_state = N; p.n_groups = 1;                     \
        p.u = (ms6_act){(float *)u.dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                          \
        p.delta = (ms6_act){(float *)dl.dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                     \
        p.z = (ms6_act){(float *)z.dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                          \
        p.out = (ms6_act){(float *)(yb).dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                     \
        p.A = A.dev; p.A_dim_stride = N; p.A_state_stride = 1;                                       \
        p.B = (ms6_bc){(float *)bc.dev + (t0) * R, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, R};   \
        p.C = (ms6_bc){(float *)bc.dev + (t0) * R + N, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, R}; \
        p.D = Dv.dev; p.delta_bias = bias.dev; p.delta_softplus = 1;                                 \
        p.initial_state = (init); p.final_state = (fin);                                             \
        TRY(ms6_selective_scan_fwd(be, &p));                                                         \
    } while (0)
#define CONV(t0, len, ob, init, fin)                                                                 \
    do {                                                                                             \
        ms6_conv1d_params p = {0};                                                                   \
        p.batch = 1; p.dim = D; p.seqlen = (len); p.d_conv = K;                                      \
        p.x = (ms6_act){(float *)u.dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                          \
        p.out = (ms6_act){(float *)(ob).dev + (t0) * D, MS6_DTYPE_F32, 0, 1, D};                     \
        p.weight = w.dev; p.bias = cb.dev; p.activation = 1;                                         \
        p.initial_state = (init); p.final_state = (fin);                                             \
        TRY(ms6_causal_conv1d_fwd(be, &p));                                                          \
    } while (0)

    /* 1. scan(2L) in one go vs two halves with the state carried */
    SCAN(0, 2 * L, y1, NULL, h1.dev);
    SCAN(0, L, y2, NULL, h2.dev);
    SCAN(L, L, y2, h2.dev, h2.dev); /* in place: initial == final buffer */
    TRY(kb_down(be, &y1)); TRY(kb_down(be, &y2)); TRY(kb_down(be, &h1)); TRY(kb_down(be, &h2));
    double r1 = rel_diff(y2.host, y1.host, 2 * L * D), r2 = rel_diff(h2.host, h1.host, D * N);
    if (!(r1 <= worst)) worst = r1;
    if (!(r2 <= worst)) worst = r2;

    /* 2. scan(2L+1) vs scan(2L) + one state update */
    SCAN(0, T, y1, NULL, h1.dev);
    SCAN(0, 2 * L, y2, NULL, h2.dev);
    {
        ms6_state_update_params p = {0};
        p.batch = 1; p.dim = D; p.d_state = N; p.n_groups = 1; p.n_state_slots = 1;
        p.state = h2.dev;
        p.x = (ms6_act){(float *)u.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.dt = (ms6_act){(float *)dl.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.z = (ms6_act){(float *)z.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.out = (ms6_act){(float *)y2.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.A = A.dev; p.A_dim_stride = N; p.A_state_stride = 1;
        p.B = (ms6_bc){(float *)bc.dev + 2 * L * R, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, 0};
        p.C = (ms6_bc){(float *)bc.dev + 2 * L * R + N, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, 0};
        p.D = Dv.dev; p.dt_bias = bias.dev; p.dt_softplus = 1;
        TRY(ms6_selective_state_update(be, &p));
    }
    TRY(kb_down(be, &y1)); TRY(kb_down(be, &y2)); TRY(kb_down(be, &h1)); TRY(kb_down(be, &h2));
    r1 = rel_diff((float *)y2.host + 2 * L * D, (float *)y1.host + 2 * L * D, D);
    r2 = rel_diff(h2.host, h1.host, D * N);
    if (!(r1 <= worst)) worst = r1;
    if (!(r2 <= worst)) worst = r2;

    /* 3. conv(2L) vs halves with the conv state carried */
    CONV(0, 2 * L, c1, NULL, cs1.dev);
    CONV(0, L, c2, NULL, cs2.dev);
    CONV(L, L, c2, cs2.dev, cs2.dev);
    TRY(kb_down(be, &c1)); TRY(kb_down(be, &c2)); TRY(kb_down(be, &cs1)); TRY(kb_down(be, &cs2));
    r1 = rel_diff(c2.host, c1.host, 2 * L * D);
    r2 = rel_diff(cs2.host, cs1.host, D * W);
    if (!(r1 <= worst)) worst = r1;
    if (!(r2 <= worst)) worst = r2;

    /* 4. conv(2L+1) vs conv(2L) + one update */
    CONV(0, T, c1, NULL, cs1.dev);
    CONV(0, 2 * L, c2, NULL, cs2.dev);
    {
        ms6_conv1d_update_params p = {0};
        p.batch = 1; p.dim = D; p.d_conv = K; p.n_state_slots = 1;
        p.x = (ms6_act){(float *)u.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.out = (ms6_act){(float *)c2.dev + 2 * L * D, MS6_DTYPE_F32, 0, 1, 0};
        p.state = cs2.dev; p.weight = w.dev; p.bias = cb.dev; p.activation = 1;
        TRY(ms6_causal_conv1d_update(be, &p));
    }
    TRY(kb_down(be, &c1)); TRY(kb_down(be, &c2)); TRY(kb_down(be, &cs1)); TRY(kb_down(be, &cs2));
    r1 = rel_diff((float *)c2.host + 2 * L * D, (float *)c1.host + 2 * L * D, D);
    r2 = rel_diff(cs2.host, cs1.host, D * W);
    if (!(r1 <= worst)) worst = r1;
    if (!(r2 <= worst)) worst = r2;
#undef SCAN
#undef CONV
done:
    if (st != MS6_STATUS_OK) {
        snprintf(msg, 512, "%s", ms6_backend_last_error(be));
        worst = NAN;
    }
    kbuf *all[] = {&u, &dl, &z, &bc, &A, &Dv, &bias, &w, &cb, &y1, &y2, &h1, &h2, &c1, &c2, &cs1, &cs2};
    for (int i = 0; i < 17; i++) kb_free(be, all[i]);
    return worst;
}
