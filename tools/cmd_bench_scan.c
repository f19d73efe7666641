/*
 * cmd_bench_scan.c - `mamba-s6 bench scan`: the selective scan (prefill) and
 * the selective state update (decode) timed next to their hardware floors.
 *
 * Prefill shapes (batch, dim, L) with N = 16, fp16 u/delta/B/C/z, fp32
 * A/D/delta_bias, z gate, softplus, token-major activations: the mamba_ssm
 * anchor shapes of DESIGN.md section 8. Floor = max(bytes moved / measured
 * copy bandwidth, B*D*L*N exps / (SMs x 16 x clock)); bytes = u, delta, z and
 * out once each plus B and C once. Decode: state update at dim 5120, N 16,
 * fp32 state, batch 1..1024; floor = state read + write / copy bandwidth.
 *
 * On CUDA the copy bandwidth is measured here (device-to-device copy of a
 * 1 GiB buffer, read + write counted) and kernels are timed with CUDA events
 * around --iters launches after two warm-ups (decode: the launches captured
 * in a CUDA graph and replayed, so the figure is GPU time, not the host's
 * launch rate). On the CPU backends the shapes
 * are scaled down (dim / 8, L / 16; decode batch / 8) so the table finishes
 * in seconds on two cores; the floor there is bytes / measured memcpy
 * bandwidth (a 512 MiB copy, larger than the caches), and the exp floor is
 * not reported. Inputs are random (never zeros): u, z ~ N(0,1), B, C ~
 * N(0,1), dt = softplus(delta + bias) mostly in 0.001..0.1, A = -(n+1).
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MS6_HAVE_CUDA
#include <cuda_runtime.h>
#endif

typedef struct {
    int64_t batch, dim, L;
    double anchor_ms; /* mamba_ssm selective_scan_fwd on the H200 (DESIGN.md section 8) */
} scan_shape;

static const scan_shape kShapes[] = {
    {1, 1536, 2048, 0.070}, {8, 1536, 2048, 0.441}, {1, 5120, 8192, 0.886}, {8, 5120, 2048, 1.424},
    {4, 2560, 16384, 3.445}, {1, 1536, 131072, 4.318}, {16, 2560, 4096, 2.806},
};
static const int64_t kDecodeBatch[] = {1, 16, 128, 1024};

typedef struct {
    ms6_backend *be;
    int cuda, json, iters;
    double bw;       /* bytes/s, read + write counted */
    double exp_rate; /* exps/s (CUDA: SMs x 16 x clock), 0 = not reported */
    int sms;
    double clock_ghz;
    uint64_t rng;
} bench_ctx;

static float rnd_uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0));
}
static float rnd_normal(uint64_t *s) {
    /* sum of four uniforms, rescaled: cheap and never zero-heavy */
    float a = rnd_uniform(s) + rnd_uniform(s) + rnd_uniform(s) + rnd_uniform(s);
    return (a - 2.0f) * 1.7320508f;
}

/* Random f16 values: one block of up to 4M values, uploaded repeatedly (the
 * arrays are far larger than the caches, so the repetition changes no timing
 * and keeps the set-up short). */
static int fill_f16(bench_ctx *c, void *dev, int64_t n, float lo, float hi, int normal) {
    const int64_t chunk = 1 << 22;
    const int64_t m0 = n < chunk ? n : chunk;
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)m0);
    if (!h) return 1;
    for (int64_t i = 0; i < m0; i++) {
        float v = normal ? rnd_normal(&c->rng) : lo + (hi - lo) * rnd_uniform(&c->rng);
        h[i] = ms6_f32_to_f16(v);
    }
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        int64_t m = n - i0 < chunk ? n - i0 : chunk;
        if (ms6_backend_upload(c->be, (uint16_t *)dev + i0, h, sizeof(uint16_t) * (size_t)m) != MS6_STATUS_OK) {
            free(h);
            return 1;
        }
    }
    free(h);
    return 0;
}

static int upload_f32(bench_ctx *c, void **dev, const float *h, int64_t n) {
    if (ms6_backend_alloc(c->be, sizeof(float) * (size_t)n, dev) != MS6_STATUS_OK) return 1;
    return ms6_backend_upload(c->be, *dev, h, sizeof(float) * (size_t)n) != MS6_STATUS_OK;
}

/* ---- timing ---- */

typedef ms6_status (*op_fn)(ms6_backend *be, const void *p);
static ms6_status run_scan(ms6_backend *be, const void *p) { return ms6_selective_scan_fwd(be, p); }
static ms6_status run_update(ms6_backend *be, const void *p) { return ms6_selective_state_update(be, p); }

/* Mean milliseconds per call over iters calls after two warm-ups; < 0 on error. */
static double time_op(bench_ctx *c, op_fn fn, const void *p, int iters) {
    for (int i = 0; i < 2; i++)
        if (fn(c->be, p) != MS6_STATUS_OK) return -1;
    if (ms6_backend_synchronize(c->be) != MS6_STATUS_OK) return -1;
#ifdef MS6_HAVE_CUDA
    if (c->cuda) {
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        cudaEventRecord(e0, 0);
        for (int i = 0; i < iters; i++)
            if (fn(c->be, p) != MS6_STATUS_OK) return -1;
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        if (cudaGetLastError() != cudaSuccess) return -1;
        return ms / iters;
    }
#endif
    double t0 = cli_now();
    for (int i = 0; i < iters; i++)
        if (fn(c->be, p) != MS6_STATUS_OK) return -1;
    if (ms6_backend_synchronize(c->be) != MS6_STATUS_OK) return -1;
    return (cli_now() - t0) * 1e3 / iters;
}

#ifdef MS6_HAVE_CUDA
/* Kernel time without the host's launch cost: iters calls captured into one
 * CUDA graph on a private stream, replayed; < 0 when capture fails. */
static double time_op_graph(bench_ctx *c, op_fn fn, const void *p, int iters) {
    cudaStream_t s = NULL;
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    double ms_out = -1;
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return -1;
    ms6_backend_set_stream(c->be, s);
    if (cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
        int ok = 1;
        for (int i = 0; i < iters && ok; i++) ok = fn(c->be, p) == MS6_STATUS_OK;
        if (cudaStreamEndCapture(s, &g) == cudaSuccess && ok &&
            cudaGraphInstantiate(&ge, g, 0) == cudaSuccess) {
            cudaEvent_t e0, e1;
            cudaEventCreate(&e0);
            cudaEventCreate(&e1);
            cudaGraphLaunch(ge, s);
            cudaEventRecord(e0, s);
            cudaGraphLaunch(ge, s);
            cudaEventRecord(e1, s);
            cudaEventSynchronize(e1);
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            if (cudaGetLastError() == cudaSuccess) ms_out = ms / iters;
            cudaEventDestroy(e0);
            cudaEventDestroy(e1);
        }
    }
    cudaGetLastError();
    if (ge) cudaGraphExecDestroy(ge);
    if (g) cudaGraphDestroy(g);
    ms6_backend_set_stream(c->be, NULL);
    cudaStreamDestroy(s);
    return ms_out;
}
#endif

static int measure_bandwidth(bench_ctx *c) {
#ifdef MS6_HAVE_CUDA
    if (c->cuda) {
        const size_t bytes = (size_t)1 << 30;
        void *a = NULL, *b = NULL;
        if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) {
            fprintf(stderr, "mamba-s6 bench scan: cannot allocate 2 GiB for the copy-bandwidth measurement\n");
            cudaFree(a);
            return 1;
        }
        cudaMemset(a, 1, bytes);
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
        cudaEventRecord(e0, 0);
        const int reps = 10;
        for (int i = 0; i < reps; i++) cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, 0);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        c->bw = 2.0 * bytes * reps / (ms * 1e-3);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        cudaFree(a);
        cudaFree(b);
        int dev = 0, khz = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, dev);
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
        c->clock_ghz = khz * 1e-6;
        c->exp_rate = (double)c->sms * 16.0 * khz * 1e3;
        return cudaGetLastError() != cudaSuccess;
    }
#endif
    const size_t bytes = (size_t)512 << 20;
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        free(a);
        free(b);
        fprintf(stderr, "mamba-s6 bench scan: cannot allocate 1 GiB for the memcpy-bandwidth measurement\n");
        return 1;
    }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 1e30;
    for (int i = 0; i < 3; i++) {
        double t0 = cli_now();
        memcpy(i % 2 ? a : b, i % 2 ? b : a, bytes);
        double t = cli_now() - t0;
        if (t < best) best = t;
    }
    c->bw = 2.0 * bytes / best;
    c->exp_rate = 0;
    free(a);
    free(b);
    return 0;
}

static void report(bench_ctx *c, const char *op, int64_t batch, int64_t dim, int64_t L, int64_t N, double ms,
                   double bytes, double exps, double anchor_ms) {
    const double bytes_ms = bytes / c->bw * 1e3;
    const double exp_ms = c->exp_rate > 0 ? exps / c->exp_rate * 1e3 : 0;
    const double floor_ms = bytes_ms > exp_ms ? bytes_ms : exp_ms;
    const double ratio = ms / floor_ms;
    const double gbps = bytes / (ms * 1e-3) * 1e-9, gexps = exps / (ms * 1e-3) * 1e-9;
    const char *bname = ms6_backend_kind_name(ms6_backend_get_kind(c->be));
    if (c->json) {
        printf("{\"op\":\"%s\",\"backend\":\"%s\",\"batch\":%lld,\"dim\":%lld,\"L\":%lld,\"N\":%lld,\"ms\":%.5f,"
               "\"floor_ms\":%.5f,\"ratio_to_floor\":%.3f,\"bytes_floor_ms\":%.5f,\"exp_floor_ms\":%.5f,"
               "\"GBps\":%.1f,\"Gexps\":%.1f,\"copy_GBps\":%.1f",
               op, bname, (long long)batch, (long long)dim, (long long)L, (long long)N, ms, floor_ms, ratio, bytes_ms,
               exp_ms, gbps, gexps, c->bw * 1e-9);
        if (anchor_ms > 0) printf(",\"mamba_ssm_ms\":%.3f,\"speedup_vs_mamba_ssm\":%.2f", anchor_ms, anchor_ms / ms);
        printf("}\n");
    } else {
        printf("%-12s %5lld %5lld %7lld %9.4f %9.4f %6.2fx %8.1f %8.1f", op, (long long)batch, (long long)dim,
               (long long)L, ms, floor_ms, ratio, gbps, gexps);
        if (anchor_ms > 0) printf(" %9.3f %6.2fx", anchor_ms, anchor_ms / ms);
        printf("\n");
    }
    fflush(stdout);
}

/* ---- prefill ---- */

static int bench_one_scan(bench_ctx *c, int64_t batch, int64_t dim, int64_t L, double anchor) {
    const int64_t N = 16, nact = batch * dim * L, nbc = batch * L * N;
    void *u = NULL, *dl = NULL, *z = NULL, *out = NULL, *B = NULL, *C = NULL, *A = NULL, *D = NULL, *bias = NULL;
    float *hA = malloc(sizeof(float) * dim * N), *hD = malloc(sizeof(float) * dim), *hb = malloc(sizeof(float) * dim);
    int rc = 1;
    if (!hA || !hD || !hb) goto done;
    for (int64_t d = 0; d < dim; d++) {
        for (int64_t n = 0; n < N; n++) hA[d * N + n] = -(float)(n + 1); /* S4D-real, as Mamba initialises A */
        hD[d] = 1.0f + 0.1f * rnd_normal(&c->rng);
        hb[d] = -4.0f + 2.0f * rnd_uniform(&c->rng); /* softplus(bias) in about 0.002..0.13 */
    }
    if (ms6_backend_alloc(c->be, 2 * (size_t)nact, &u) || ms6_backend_alloc(c->be, 2 * (size_t)nact, &dl) ||
        ms6_backend_alloc(c->be, 2 * (size_t)nact, &z) || ms6_backend_alloc(c->be, 2 * (size_t)nact, &out) ||
        ms6_backend_alloc(c->be, 2 * (size_t)nbc, &B) || ms6_backend_alloc(c->be, 2 * (size_t)nbc, &C)) {
        fprintf(stderr, "mamba-s6 bench scan: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    if (fill_f16(c, u, nact, 0, 0, 1) || fill_f16(c, z, nact, 0, 0, 1) || fill_f16(c, dl, nact, -1.0f, 1.0f, 0) ||
        fill_f16(c, B, nbc, 0, 0, 1) || fill_f16(c, C, nbc, 0, 0, 1) || upload_f32(c, &A, hA, dim * N) ||
        upload_f32(c, &D, hD, dim) || upload_f32(c, &bias, hb, dim)) {
        fprintf(stderr, "mamba-s6 bench scan: upload failed: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    ms6_scan_params p = {0};
    p.batch = batch; p.dim = dim; p.seqlen = L; p.d_state = N; p.n_groups = 1;
    /* token-major (batch, L, dim) */
    p.u = (ms6_act){u, MS6_DTYPE_F16, L * dim, 1, dim};
    p.delta = (ms6_act){dl, MS6_DTYPE_F16, L * dim, 1, dim};
    p.z = (ms6_act){z, MS6_DTYPE_F16, L * dim, 1, dim};
    p.out = (ms6_act){out, MS6_DTYPE_F16, L * dim, 1, dim};
    /* B, C: (batch, L, N) */
    p.B = (ms6_bc){B, MS6_DTYPE_F16, MS6_BC_VARIABLE, L * N, 0, 0, 1, N};
    p.C = (ms6_bc){C, MS6_DTYPE_F16, MS6_BC_VARIABLE, L * N, 0, 0, 1, N};
    p.A = A; p.A_dim_stride = N; p.A_state_stride = 1;
    p.D = D; p.delta_bias = bias; p.delta_softplus = 1;
    double ms = time_op(c, run_scan, &p, c->iters);
    if (ms < 0) {
        fprintf(stderr, "mamba-s6 bench scan: scan failed: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    report(c, "scan", batch, dim, L, N, ms, 2.0 * (4.0 * nact + 2.0 * nbc), (double)nact * N, c->cuda ? anchor : 0);
    rc = 0;
done:;
    void *bufs[] = {u, dl, z, out, B, C, A, D, bias};
    for (int i = 0; i < 9; i++)
        if (bufs[i]) ms6_backend_dealloc(c->be, bufs[i]);
    free(hA);
    free(hD);
    free(hb);
    return rc;
}

/* ---- decode ---- */

static int bench_one_update(bench_ctx *c, int64_t batch, int64_t dim) {
    const int64_t N = 16, nst = batch * dim * N;
    void *st = NULL, *x = NULL, *dt = NULL, *z = NULL, *out = NULL, *B = NULL, *C = NULL, *A = NULL, *D = NULL,
         *bias = NULL;
    float *hA = malloc(sizeof(float) * dim * N), *hD = malloc(sizeof(float) * dim), *hb = malloc(sizeof(float) * dim);
    float *hs = malloc(sizeof(float) * (size_t)(nst < (1 << 22) ? nst : (1 << 22)));
    int rc = 1;
    if (!hA || !hD || !hb || !hs) goto done;
    for (int64_t d = 0; d < dim; d++) {
        for (int64_t n = 0; n < N; n++) hA[d * N + n] = -(float)(n + 1);
        hD[d] = 1.0f;
        hb[d] = -4.0f + 2.0f * rnd_uniform(&c->rng);
    }
    if (ms6_backend_alloc(c->be, sizeof(float) * (size_t)nst, &st) || ms6_backend_alloc(c->be, 2 * (size_t)(batch * dim), &x) ||
        ms6_backend_alloc(c->be, 2 * (size_t)(batch * dim), &dt) || ms6_backend_alloc(c->be, 2 * (size_t)(batch * dim), &z) ||
        ms6_backend_alloc(c->be, 2 * (size_t)(batch * dim), &out) || ms6_backend_alloc(c->be, 2 * (size_t)(batch * N), &B) ||
        ms6_backend_alloc(c->be, 2 * (size_t)(batch * N), &C)) {
        fprintf(stderr, "mamba-s6 bench scan: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    for (int64_t i0 = 0; i0 < nst; i0 += 1 << 22) {
        int64_t m = nst - i0 < (1 << 22) ? nst - i0 : (1 << 22);
        for (int64_t i = 0; i < m; i++) hs[i] = rnd_normal(&c->rng);
        if (ms6_backend_upload(c->be, (float *)st + i0, hs, sizeof(float) * (size_t)m)) goto done;
    }
    if (fill_f16(c, x, batch * dim, 0, 0, 1) || fill_f16(c, z, batch * dim, 0, 0, 1) ||
        fill_f16(c, dt, batch * dim, -1.0f, 1.0f, 0) || fill_f16(c, B, batch * N, 0, 0, 1) ||
        fill_f16(c, C, batch * N, 0, 0, 1) || upload_f32(c, &A, hA, dim * N) || upload_f32(c, &D, hD, dim) ||
        upload_f32(c, &bias, hb, dim)) {
        fprintf(stderr, "mamba-s6 bench scan: upload failed: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    ms6_state_update_params p = {0};
    p.batch = batch; p.dim = dim; p.d_state = N; p.n_groups = 1; p.n_state_slots = batch;
    p.state = st;
    p.x = (ms6_act){x, MS6_DTYPE_F16, dim, 1, 0};
    p.dt = (ms6_act){dt, MS6_DTYPE_F16, dim, 1, 0};
    p.z = (ms6_act){z, MS6_DTYPE_F16, dim, 1, 0};
    p.out = (ms6_act){out, MS6_DTYPE_F16, dim, 1, 0};
    p.A = A; p.A_dim_stride = N; p.A_state_stride = 1;
    p.B = (ms6_bc){B, MS6_DTYPE_F16, MS6_BC_VARIABLE, N, 0, 0, 1, 0};
    p.C = (ms6_bc){C, MS6_DTYPE_F16, MS6_BC_VARIABLE, N, 0, 0, 1, 0};
    p.D = D; p.dt_bias = bias; p.dt_softplus = 1;
    /* small batches: many launches so the events measure kernel time */
    /* many launches so the events measure kernel time; on CUDA they are
     * replayed from a graph, so the host's launch cost is not counted */
    int iters = c->iters * (c->cuda && batch < 128 ? 20 : 1);
    double ms = -1;
#ifdef MS6_HAVE_CUDA
    if (c->cuda) ms = time_op_graph(c, run_update, &p, iters);
#endif
    if (ms < 0) ms = time_op(c, run_update, &p, iters);
    if (ms < 0) {
        fprintf(stderr, "mamba-s6 bench scan: state update failed: %s\n", ms6_backend_last_error(c->be));
        goto done;
    }
    /* floor: the state read and written once; x/dt/z/out/B/C are counted too */
    const double bytes = 8.0 * nst + 2.0 * 4 * batch * dim + 2.0 * 2 * batch * N;
    report(c, "state_update", batch, dim, 1, N, ms, bytes, (double)nst, 0);
    rc = 0;
done:;
    void *bufs[] = {st, x, dt, z, out, B, C, A, D, bias};
    for (int i = 0; i < 10; i++)
        if (bufs[i]) ms6_backend_dealloc(c->be, bufs[i]);
    free(hA);
    free(hD);
    free(hb);
    free(hs);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mamba-s6 bench scan [--backend cpu|cpu-ref|cuda] [--json] [--iters N] [--shape B,D,L]\n"
            "                           [--no-decode] [--no-prefill]\n\n"
            "Times the selective scan (prefill; N = 16, fp16 I/O, token-major, z gate, softplus)\n"
            "at the mamba_ssm anchor shapes and the state update (decode; dim 5120, N 16, fp32\n"
            "state) at batch 1..1024, each next to its floor: max(bytes / measured copy bandwidth,\n"
            "exps / (SMs x 16 x clock)) on CUDA, bytes / measured memcpy bandwidth on the CPU.\n"
            "CPU backends run the shapes scaled down (dim / 8, L / 16, decode batch / 8).\n"
            "--iters defaults to 20 on CUDA, 2 on the CPU.\n");
}

int cmd_bench_scan(int argc, char **argv) {
    bench_ctx c = {0};
    ms6_backend_kind kind = ms6_backend_compiled(MS6_BACKEND_CUDA) ? MS6_BACKEND_CUDA : MS6_BACKEND_CPU;
    long long iters = 0;
    int decode = 1, prefill = 1, custom = 0;
    long long cb = 0, cd = 0, cl = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            c.json = 1;
        } else if (!strcmp(argv[i], "--no-decode")) {
            decode = 0;
        } else if (!strcmp(argv[i], "--no-prefill")) {
            prefill = 0;
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            if (ms6_backend_kind_parse(argv[++i], &kind) != MS6_STATUS_OK) {
                fprintf(stderr, "mamba-s6 bench scan: --backend: unknown backend '%s' (cpu, cpu-ref, cuda)\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
            if (cli_parse_int("--iters", argv[++i], 1, 100000, &iters)) return 2;
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (sscanf(argv[++i], "%lld,%lld,%lld", &cb, &cd, &cl) != 3 || cb < 1 || cd < 1 || cl < 1 ||
                cb > 4096 || cd > 65536 || cl > (1ll << 24)) {
                fprintf(stderr, "mamba-s6 bench scan: --shape expects B,D,L (positive integers), got '%s'\n", argv[i]);
                return 2;
            }
            custom = 1;
        } else {
            fprintf(stderr, "mamba-s6 bench scan: unknown or incomplete option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    ms6_error err;
    if (ms6_backend_create(kind, NULL, &c.be, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 bench scan: %s\n", err.message);
        return 1;
    }
    c.cuda = kind == MS6_BACKEND_CUDA;
    c.iters = iters ? (int)iters : (c.cuda ? 20 : 2);
    c.rng = 0x9e3779b97f4a7c15ull;
    if (measure_bandwidth(&c)) {
        ms6_backend_free(c.be);
        return 1;
    }
    if (!c.json) {
        printf("backend %s", ms6_backend_kind_name(kind));
        if (c.cuda) printf(", %d SMs at %.2f GHz, exp floor rate %.2f T/s", c.sms, c.clock_ghz, c.exp_rate * 1e-12);
        printf(", measured copy bandwidth %.2f TB/s (read + write)%s\n", c.bw * 1e-12,
               (c.cuda || custom) ? "" : "; shapes scaled down (dim/8, L/16)");
        printf("%-12s %5s %5s %7s %9s %9s %7s %8s %8s %9s %7s\n", "op", "batch", "dim", "L", "ms", "floor_ms", "ratio",
               "GB/s", "Gexp/s", "mamba_ssm", "speedup");
    }
    int rc = 0;
    if (prefill) {
        if (custom) {
            rc |= bench_one_scan(&c, cb, cd, cl, 0);
        } else {
            for (size_t i = 0; i < sizeof kShapes / sizeof kShapes[0]; i++) {
                const scan_shape *s = &kShapes[i];
                rc |= c.cuda ? bench_one_scan(&c, s->batch, s->dim, s->L, s->anchor_ms)
                             : bench_one_scan(&c, s->batch, s->dim / 8, s->L / 16 > 64 ? s->L / 16 : 64, 0);
            }
        }
    }
    if (decode && !custom)
        for (size_t i = 0; i < sizeof kDecodeBatch / sizeof kDecodeBatch[0]; i++) {
            int64_t b = c.cuda ? kDecodeBatch[i] : (kDecodeBatch[i] / 8 > 0 ? kDecodeBatch[i] / 8 : 1);
            rc |= bench_one_update(&c, b, 5120);
        }
    ms6_backend_free(c.be);
    return rc ? 1 : 0;
}
