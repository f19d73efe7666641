/*
 * prefill_prof.c - where a model's prefill time goes, and what the
 * prefill plans cost in accuracy. For each plan (environment variables read
 * by the forward pass, src/model/forward.c) it prefills one random prompt
 * REPS times on the CUDA backend (best time kept), then once more with
 * MS6_PROFILE=1 (the per-op breakdown, printed by the forward pass on
 * stderr), and compares the last token's logits with the first plan's
 * (relative L2 and argmax).
 *
 *   plan "f32":  MS6_PREFILL_ACT=f32 MS6_PREFILL_FUSE=0 MS6_GEMM_TUNE=0
 *                (fp32 activations converted for every GEMM, the residual
 *                added by the next RMSNorm, cuBLASLt's first heuristic)
 *   plan "half-scalar-conv": as "half" with MS6_CONV_VEC=0 (the
 *                one-channel-per-thread conv kernel; must equal "half"
 *                bit for bit, the arithmetic is the same)
 *   plan "half": the defaults (activations in the weights' half type, the
 *                residual added by out_proj, timed cuBLASLt algorithms)
 *
 * Not part of the build; built against the library, as C++ (it reads the
 * CUDA backend's context, whose header needs cuda_runtime.h):
 *   nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/prefill_prof.c -o prefill_prof.o
 *   nvcc prefill_prof.o BUILD/libmamba_s6.a -lcublasLt -lcublas -lcjson -lpcre2-8 -lutf8proc -lpthread \
 *       -o prefill_prof
 *   ./prefill_prof MODEL_DIR [PROMPT=2048] [REPS=5]
 */
#include "backend/cuda/cuda_internal.h"
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the ops table wrapped: an event after every op ---- */

enum { OP_START, OP_UPLOAD, OP_EMBED, OP_NORM, OP_IN, OP_CONV, OP_XPROJ, OP_DT, OP_SCAN, OP_OUT, OP_HEAD,
       OP_DOWNLOAD, OP_OTHER, OP_KINDS };
static const char *const op_names[OP_KINDS] = {"start", "upload ids", "embed", "rmsnorm", "in_proj", "conv1d",
                                               "x_proj", "dt_proj", "scan", "out_proj", "lm_head", "download",
                                               "other"};
#define EVMAX 8192
static const ms6_backend_ops *g_orig;
static ms6_backend_ops g_wrap;
static cudaEvent_t g_ev[EVMAX];
static int g_kind[EVMAX], g_n, g_on;
static int64_t g_V, g_dm, g_di, g_nb, g_R;

static void mark(ms6_backend *be, int kind) {
    if (!g_on || g_n >= EVMAX) return;
    cudaEventRecord(g_ev[g_n], ms6_cuda(be)->stream);
    g_kind[g_n++] = kind;
}
static int gemm_kind(const ms6_gemm_params *p) {
    if (p->N == g_V) return OP_HEAD;
    if (p->K == g_dm && p->N == 2 * g_di) return OP_IN;
    if (p->K == g_di && p->N == g_nb) return OP_XPROJ;
    if (p->K == g_R && p->N == g_di) return OP_DT;
    if (p->K == g_di && p->N == g_dm) return OP_OUT;
    return OP_OTHER;
}
static ms6_status w_gemm(ms6_backend *be, const ms6_gemm_params *p) {
    ms6_status s = g_orig->gemm(be, p);
    mark(be, gemm_kind(p));
    return s;
}
static ms6_status w_norm(ms6_backend *be, const ms6_rmsnorm_params *p) {
    ms6_status s = g_orig->rmsnorm(be, p);
    mark(be, p->dim == g_dm ? (p->rows == 1 ? OP_HEAD : OP_NORM) : OP_XPROJ); /* falcon's dt/B/C norms: x_proj */
    return s;
}
static ms6_status w_conv(ms6_backend *be, const ms6_conv1d_params *p) {
    ms6_status s = g_orig->conv1d_fwd(be, p);
    mark(be, OP_CONV);
    return s;
}
static ms6_status w_scan(ms6_backend *be, const ms6_scan_params *p) {
    ms6_status s = g_orig->scan_fwd(be, p);
    mark(be, OP_SCAN);
    return s;
}
static ms6_status w_embed(ms6_backend *be, const ms6_embed_params *p) {
    ms6_status s = g_orig->embed(be, p);
    mark(be, OP_EMBED);
    return s;
}
static ms6_status w_upload(ms6_backend *be, void *d, const void *h, size_t n) {
    ms6_status s = g_orig->upload(be, d, h, n);
    mark(be, OP_UPLOAD);
    return s;
}
static ms6_status w_download(ms6_backend *be, void *h, const void *d, size_t n) {
    mark(be, OP_HEAD); /* the head's kernels before the copy */
    ms6_status s = g_orig->download(be, h, d, n);
    mark(be, OP_DOWNLOAD);
    return s;
}

static void report(double wall) {
    double t[OP_KINDS] = {0}, total = 0;
    int n[OP_KINDS] = {0};
    cudaEventSynchronize(g_ev[g_n - 1]);
    for (int i = 1; i < g_n; i++) {
        float ms = 0;
        cudaEventElapsedTime(&ms, g_ev[i - 1], g_ev[i]);
        t[g_kind[i]] += ms;
        n[g_kind[i]]++;
        total += ms;
    }
    printf("  %-11s %9s %6s %7s %10s\n", "op (events)", "ms", "calls", "share", "us/call");
    for (int k = 1; k < OP_KINDS; k++)
        if (n[k])
            printf("  %-11s %9.3f %6d %6.1f%% %10.1f\n", op_names[k], t[k], n[k], 100.0 * t[k] / total,
                   1e3 * t[k] / n[k]);
    const double g = t[OP_IN] + t[OP_XPROJ] + t[OP_DT] + t[OP_OUT];
    printf("  %-11s %9.3f %6s %6.1f%%\n", "4 gemms", g, "", 100.0 * g / total);
    printf("  %-11s %9.3f (first to last event; wall time of this prefill %.3f ms)\n", "total", total, 1e3 * wall);
}

typedef struct {
    const char *name, *act, *fuse, *tune, *conv_vec;
} plan;

static void set(const char *k, const char *v) {
    if (v) setenv(k, v, 1);
    else unsetenv(k);
}

static double rel(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t a = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[a]) a = i;
    return a;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: prefill_prof MODEL_DIR [PROMPT=2048] [REPS=5]\n");
        return 2;
    }
    const int64_t P = argc > 2 ? atoll(argv[2]) : 2048;
    const int reps = argc > 3 ? atoi(argv[3]) : 5;
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CUDA;
    ms6_model *m = NULL;
    ms6_error err;
    if (ms6_model_load(argv[1], &o, &m, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "prefill_prof: %s\n", err.message);
        return 1;
    }
    const ms6_model_config *c = ms6_model_get_config(m);
    g_V = c->vocab_size; g_dm = c->d_model; g_di = c->d_inner; g_R = c->dt_rank; g_nb = c->dt_rank + 2 * c->d_state;
    g_orig = m->be->ops;
    g_wrap = *g_orig;
    g_wrap.gemm = w_gemm; g_wrap.rmsnorm = w_norm; g_wrap.conv1d_fwd = w_conv; g_wrap.scan_fwd = w_scan;
    g_wrap.embed = w_embed; g_wrap.upload = w_upload; g_wrap.download = w_download;
    m->be->ops = &g_wrap;
    for (int i = 0; i < EVMAX; i++) cudaEventCreate(&g_ev[i]);

    const int64_t V = g_V;
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)P);
    float *lg[3];
    for (int i = 0; i < 3; i++) lg[i] = (float *)malloc(sizeof(float) * (size_t)V);
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int64_t i = 0; i < P; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)V);
    }
    ms6_session *s = NULL;
    if (ms6_session_create(m, &s, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "prefill_prof: %s\n", err.message);
        return 1;
    }
    const plan plans[] = {{"f32", "f32", "0", "0", NULL},
                          {"half-scalar-conv", NULL, NULL, NULL, "0"},
                          {"half", NULL, NULL, NULL, NULL}};
    for (int pi = 0; pi < 3; pi++) {
        const plan *p = &plans[pi];
        set("MS6_PREFILL_ACT", p->act);
        set("MS6_PREFILL_FUSE", p->fuse);
        set("MS6_GEMM_TUNE", p->tune);
        set("MS6_CONV_VEC", p->conv_vec);
        double best = 1e30, wall = 0;
        for (int r = 0; r <= reps; r++) {
            ms6_session_reset(s);
            ms6_backend_synchronize(m->be);
            if (r == reps) {
                g_on = 1;
                g_n = 0;
                mark(m->be, OP_START);
            }
            const double t0 = now();
            if (ms6_session_prefill(s, ids, P, lg[pi], 0) != MS6_STATUS_OK) {
                fprintf(stderr, "prefill_prof: %s\n", ms6_session_last_error(s));
                return 1;
            }
            const double t = now() - t0;
            if (r < reps && t < best) best = t;
            if (r == reps) wall = t;
            g_on = 0;
        }
        printf("plan %s: prefill %lld tokens, best %.2f ms of %d (%.0f tokens/s); last logits: rel %.2e vs plan f32, "
               "%.2e vs the previous plan; argmax %lld (f32 plan %lld)\n",
               p->name, (long long)P, 1e3 * best, reps, (double)P / best, rel(lg[pi], lg[0], V),
               rel(lg[pi], lg[pi ? pi - 1 : 0], V), (long long)argmax(lg[pi], V), (long long)argmax(lg[0], V));
        report(wall);
        fflush(stdout);
    }
    m->be->ops = g_orig;
    ms6_session_free(s);
    ms6_model_free(m);
    free(ids);
    for (int i = 0; i < 3; i++) free(lg[i]);
    return 0;
}
