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
 * The event machinery is dev/cuda/op_events.h (shared with decode_prof.c).
 * Not part of the build; built against the library, as C++ (it reads the
 * CUDA backend's context, whose header needs cuda_runtime.h):
 *   nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/prefill_prof.c -o prefill_prof.o
 *   nvcc prefill_prof.o BUILD/libmamba_s6.a -lcublasLt -lcublas -lcjson -lpcre2-8 -lutf8proc -lpthread \
 *       -o prefill_prof
 *   ./prefill_prof MODEL_DIR [PROMPT=2048] [REPS=5]
 */
#include "op_events.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    op_events_install(m);
    g_head_before_download = 1;

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
        const double total = op_events_report(1);
        printf("  %-14s %10.4f (first to last event; wall time of this prefill %.3f ms)\n", "total", total, 1e3 * wall);
        fflush(stdout);
    }
    op_events_uninstall(m);
    ms6_session_free(s);
    ms6_model_free(m);
    free(ids);
    for (int i = 0; i < 3; i++) free(lg[i]);
    return 0;
}
