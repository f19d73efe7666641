/*
 * decode_prof.c - where a decode step's time goes on the CUDA backend, per
 * op, for a batch of B sequences (B = 1 and 2 take the fused ops of
 * src/backend/cuda/decode.cu, larger batches the unfused ones). The ops
 * table is wrapped so that a CUDA event is recorded after every op; the
 * steps run eagerly (MS6_CUDA_GRAPH=0, set here), so the time between two
 * events is the GPU time of the op in between plus any gap the host left
 * (an op shorter than its launch shows as its launch time). After WARM
 * steps, STEPS steps are timed; the table gives per-step figures.
 *
 * Not part of the build; built against the library, as C++ (it reads the
 * CUDA backend's context):
 *   nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/decode_prof.c -o decode_prof.o
 *   nvcc decode_prof.o BUILD/libmamba_s6.a -lcublasLt -lcublas -lcjson -lpcre2-8 -lutf8proc -lpthread \
 *       -o decode_prof
 *   ./decode_prof MODEL_DIR [BATCH=64] [STEPS=16]
 */
#include "backend/cuda/cuda_internal.h"
#include "model/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { OP_START, OP_UPLOAD, OP_EMBED, OP_NORM, OP_IN, OP_CONV, OP_XPROJ, OP_DT, OP_UPDATE, OP_OUT, OP_HEAD,
       OP_MIXER, OP_FHEAD, OP_ARGMAX, OP_DOWNLOAD, OP_OTHER, OP_KINDS };
static const char *const op_names[OP_KINDS] = {"start",  "upload",  "embed",   "rmsnorm", "in_proj", "conv upd",
                                               "x_proj", "dt_proj", "state upd", "out_proj", "lm_head",
                                               "mixer (fused)", "head (fused)", "argmax", "download", "other"};
#define EVMAX 65536
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
    mark(be, OP_NORM);
    return s;
}
static ms6_status w_conv_upd(ms6_backend *be, const ms6_conv1d_update_params *p) {
    ms6_status s = g_orig->conv1d_update(be, p);
    mark(be, OP_CONV);
    return s;
}
static ms6_status w_update(ms6_backend *be, const ms6_state_update_params *p) {
    ms6_status s = g_orig->state_update(be, p);
    mark(be, OP_UPDATE);
    return s;
}
static ms6_status w_mixer(ms6_backend *be, const ms6_mixer_step_params *p) {
    ms6_status s = g_orig->mixer_step(be, p);
    if (!p->check_only) mark(be, OP_MIXER);
    return s;
}
static ms6_status w_fhead(ms6_backend *be, const ms6_norm_gemv_params *p) {
    ms6_status s = g_orig->norm_gemv(be, p);
    if (!p->check_only) mark(be, OP_FHEAD);
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
    ms6_status s = g_orig->download(be, h, d, n);
    mark(be, OP_DOWNLOAD);
    return s;
}
static ms6_status w_argmax(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *out) {
    ms6_status s = g_orig->argmax_rows(be, x, rows, n, out);
    mark(be, OP_ARGMAX);
    return s;
}

static void report(int steps, double wall) {
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
    printf("  %-14s %10s %8s %7s %9s\n", "op (events)", "ms/step", "calls", "share", "us/call");
    for (int k = 1; k < OP_KINDS; k++)
        if (n[k])
            printf("  %-14s %10.4f %8.1f %6.1f%% %9.2f\n", op_names[k], t[k] / steps, (double)n[k] / steps,
                   100.0 * t[k] / total, 1e3 * t[k] / n[k]);
    printf("  %-14s %10.4f (first to last event; wall %.4f ms/step)\n", "total", total / steps, 1e3 * wall / steps);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: decode_prof MODEL_DIR [BATCH=64] [STEPS=16]\n");
        return 2;
    }
    const int64_t B = argc > 2 ? atoll(argv[2]) : 64;
    const int steps = argc > 3 ? atoi(argv[3]) : 16, warm = 3;
    setenv("MS6_CUDA_GRAPH", "0", 1);
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CUDA;
    ms6_model *m = NULL;
    ms6_error err;
    if (B < 1 || steps < 1 || ms6_model_load(argv[1], &o, &m, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "decode_prof: %s\n", B < 1 || steps < 1 ? "bad arguments" : err.message);
        return 1;
    }
    const ms6_model_config *c = ms6_model_get_config(m);
    g_V = c->vocab_size; g_dm = c->d_model; g_di = c->d_inner; g_R = c->dt_rank; g_nb = c->dt_rank + 2 * c->d_state;
    g_orig = m->be->ops;
    g_wrap = *g_orig;
    g_wrap.gemm = w_gemm; g_wrap.rmsnorm = w_norm; g_wrap.conv1d_update = w_conv_upd;
    g_wrap.state_update = w_update; g_wrap.embed = w_embed; g_wrap.upload = w_upload;
    g_wrap.download = w_download;
    if (g_orig->mixer_step) g_wrap.mixer_step = w_mixer;
    if (g_orig->norm_gemv) g_wrap.norm_gemv = w_fhead;
    if (g_orig->argmax_rows) g_wrap.argmax_rows = w_argmax;
    g_wrap.decode_step = NULL; /* the per-layer ops, whose time this tool splits */
    m->be->ops = &g_wrap;
    for (int i = 0; i < EVMAX; i++) cudaEventCreate(&g_ev[i]);

    ms6_batch *b = NULL;
    int64_t *slots = (int64_t *)malloc(sizeof(int64_t) * (size_t)B);
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)B), *next = (int32_t *)malloc(sizeof(int32_t) * (size_t)B);
    if (ms6_batch_create(m, B, &b, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "decode_prof: %s\n", err.message);
        return 1;
    }
    for (int64_t i = 0; i < B; i++) {
        ms6_batch_add(b, &slots[i]);
        ids[i] = (int32_t)((i * 7919 + 13) % g_V);
    }
    double t0 = 0;
    for (int r = 0; r < warm + steps; r++) {
        if (r == warm) {
            ms6_backend_synchronize(m->be);
            g_on = 1;
            g_n = 0;
            mark(m->be, OP_START);
            t0 = now();
        }
        if (ms6_batch_step_greedy(b, slots, ids, B, next) != MS6_STATUS_OK) {
            fprintf(stderr, "decode_prof: %s\n", ms6_batch_last_error(b));
            return 1;
        }
        memcpy(ids, next, sizeof(int32_t) * (size_t)B);
    }
    ms6_backend_synchronize(m->be);
    const double wall = now() - t0;
    g_on = 0;
    printf("decode_prof %s: batch %lld, %d steps (eager, events after every op)\n", argv[1], (long long)B, steps);
    report(steps, wall);
    m->be->ops = g_orig;
    ms6_batch_free(b);
    ms6_model_free(m);
    free(slots);
    free(ids);
    free(next);
    return 0;
}
