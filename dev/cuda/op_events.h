/*
 * op_events.h - the CUDA backend's ops table wrapped so that a CUDA event
 * is recorded after every op, for the profiling tools dev/cuda/
 * prefill_prof.c and decode_prof.c (static functions, included by one file
 * each). op_events_install(m) wraps the model's backend; events are taken
 * while g_on is set; op_events_report(steps) prints the time per op kind
 * (divided by steps) between consecutive events, i.e. the GPU time of the
 * op plus any gap the host left before it.
 */
#ifndef MS6_DEV_OP_EVENTS_H
#define MS6_DEV_OP_EVENTS_H

#include "backend/cuda/cuda_internal.h"
#include "model/model_internal.h"

#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { OP_START, OP_UPLOAD, OP_EMBED, OP_NORM, OP_IN, OP_CONV, OP_CONV_UPD, OP_XPROJ, OP_DT, OP_SCAN, OP_UPDATE,
       OP_OUT, OP_HEAD, OP_MIXER, OP_FHEAD, OP_ARGMAX, OP_DOWNLOAD, OP_SSM, OP_OTHER, OP_KINDS };
static const char *const op_names[OP_KINDS] = {
    "start",  "upload ids", "embed",   "rmsnorm", "in_proj",       "conv1d",       "conv upd", "x_proj", "dt_proj",
    "scan",   "state upd",  "out_proj", "lm_head", "mixer (fused)", "head (fused)", "argmax",   "download",
    "dt+upd (fused)", "other"};
#define EVMAX 65536
static const ms6_backend_ops *g_orig;
static ms6_backend_ops g_wrap;
static cudaEvent_t g_ev[EVMAX];
static int g_kind[EVMAX], g_n, g_on;
static int g_head_before_download; /* prefill: the head's kernels end at the logits download */
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
static ms6_status w_conv_upd(ms6_backend *be, const ms6_conv1d_update_params *p) {
    ms6_status s = g_orig->conv1d_update(be, p);
    mark(be, OP_CONV_UPD);
    return s;
}
static ms6_status w_scan(ms6_backend *be, const ms6_scan_params *p) {
    ms6_status s = g_orig->scan_fwd(be, p);
    mark(be, OP_SCAN);
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
static ms6_status w_ssm(ms6_backend *be, const ms6_ssm_step_params *p) {
    ms6_status s = g_orig->ssm_step(be, p);
    if (!p->check_only) mark(be, OP_SSM);
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
    if (g_head_before_download) mark(be, OP_HEAD);
    ms6_status s = g_orig->download(be, h, d, n);
    mark(be, OP_DOWNLOAD);
    return s;
}
static ms6_status w_argmax(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *out) {
    ms6_status s = g_orig->argmax_rows(be, x, rows, n, out);
    mark(be, OP_ARGMAX);
    return s;
}

/* wraps m's backend ops (the per-layer ones: decode_step is hidden) and
 * creates the events */
static void op_events_install(ms6_model *m) {
    const ms6_model_config *c = ms6_model_get_config(m);
    g_V = c->vocab_size; g_dm = c->d_model; g_di = c->d_inner; g_R = c->dt_rank; g_nb = c->dt_rank + 2 * c->d_state;
    g_orig = m->be->ops;
    g_wrap = *g_orig;
    g_wrap.gemm = w_gemm; g_wrap.rmsnorm = w_norm; g_wrap.conv1d_fwd = w_conv; g_wrap.conv1d_update = w_conv_upd;
    g_wrap.scan_fwd = w_scan; g_wrap.state_update = w_update; g_wrap.embed = w_embed; g_wrap.upload = w_upload;
    g_wrap.download = w_download;
    if (g_orig->mixer_step) g_wrap.mixer_step = w_mixer;
    if (g_orig->norm_gemv) g_wrap.norm_gemv = w_fhead;
    if (g_orig->argmax_rows) g_wrap.argmax_rows = w_argmax;
    if (g_orig->ssm_step) g_wrap.ssm_step = w_ssm; /* batched steps with MS6_DEC_BATCH_FUSED=1 */
    g_wrap.decode_step = NULL;
    m->be->ops = &g_wrap;
    for (int i = 0; i < EVMAX; i++) cudaEventCreate(&g_ev[i]);
}
static void op_events_uninstall(ms6_model *m) { m->be->ops = g_orig; }

/* the time per op kind between consecutive events, divided by steps;
 * returns the total */
static double op_events_report(int steps) {
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
    printf("  %-14s %10s %8s %7s %9s\n", "op (events)", steps > 1 ? "ms/step" : "ms", steps > 1 ? "calls/st" : "calls",
           "share", "us/call");
    for (int k = 1; k < OP_KINDS; k++)
        if (n[k])
            printf("  %-14s %10.4f %8.1f %6.1f%% %9.2f\n", op_names[k], t[k] / steps, (double)n[k] / steps,
                   100.0 * t[k] / total, 1e3 * t[k] / n[k]);
    const double g = t[OP_IN] + t[OP_XPROJ] + t[OP_DT] + t[OP_OUT];
    printf("  %-14s %10.4f %8s %6.1f%%\n", "4 gemms", g / steps, "", 100.0 * g / total);
    return total / steps;
}

#endif
