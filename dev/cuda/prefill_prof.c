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
 *   plan "half": the defaults (activations in the weights' half type, the
 *                residual added by out_proj, timed cuBLASLt algorithms)
 *
 * Not part of the build; built against the library like bench_gemm.c:
 *   gcc -O2 -std=c11 -Iinclude -Isrc dev/cuda/prefill_prof.c BUILD/libmamba_s6.a \
 *       -L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lstdc++ -lcjson -lpcre2-8 \
 *       -lutf8proc -lm -lpthread -o prefill_prof
 *   ./prefill_prof MODEL_DIR [PROMPT=2048] [REPS=5]
 */
#define _POSIX_C_SOURCE 200809L
#include <mamba_s6.h>

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

typedef struct {
    const char *name, *act, *fuse, *tune;
} plan;

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
    const int64_t V = ms6_model_vocab_size(m);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)P);
    float *ref = malloc(sizeof(float) * (size_t)V), *lg = malloc(sizeof(float) * (size_t)V);
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
    const plan plans[] = {{"f32", "f32", "0", "0"}, {"half", NULL, NULL, NULL}};
    for (int pi = 0; pi < 2; pi++) {
        const plan *p = &plans[pi];
        if (p->act) setenv("MS6_PREFILL_ACT", p->act, 1); else unsetenv("MS6_PREFILL_ACT");
        if (p->fuse) setenv("MS6_PREFILL_FUSE", p->fuse, 1); else unsetenv("MS6_PREFILL_FUSE");
        if (p->tune) setenv("MS6_GEMM_TUNE", p->tune, 1); else unsetenv("MS6_GEMM_TUNE");
        double best = 1e30;
        for (int r = 0; r <= reps; r++) {
            if (r == reps) setenv("MS6_PROFILE", "1", 1);
            ms6_session_reset(s);
            const double t0 = now();
            if (ms6_session_prefill(s, ids, P, lg, 0) != MS6_STATUS_OK) {
                fprintf(stderr, "prefill_prof: %s\n", ms6_session_last_error(s));
                return 1;
            }
            const double t = now() - t0;
            if (r < reps && t < best) best = t;
            unsetenv("MS6_PROFILE");
        }
        double num = 0, den = 0;
        int64_t am = 0, ar = 0;
        for (int64_t i = 0; i < V; i++) {
            if (pi == 0) ref[i] = lg[i];
            num += ((double)lg[i] - ref[i]) * ((double)lg[i] - ref[i]);
            den += (double)ref[i] * ref[i];
            if (lg[i] > lg[am]) am = i;
            if (ref[i] > ref[ar]) ar = i;
        }
        printf("plan %-5s prefill %lld tokens: best %.2f ms of %d (%.0f tokens/s); last logits vs plan f32: "
               "rel %.2e, argmax %lld vs %lld\n",
               p->name, (long long)P, 1e3 * best, reps, (double)P / best, den > 0 ? sqrt(num / den) : 0.0,
               (long long)am, (long long)ar);
        fflush(stdout);
    }
    ms6_session_free(s);
    ms6_model_free(m);
    free(ids);
    free(ref);
    free(lg);
    return 0;
}
