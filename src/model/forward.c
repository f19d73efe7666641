/*
 * forward.c - the Mamba-1 forward pass, written once above the backend ops
 * table. Nothing here touches weights or activations directly: every
 * computation is an op (be->ops->...), every buffer comes from the
 * backend's alloc, and host data crosses only through upload/download, so
 * the same code runs on the CPU backends and on CUDA.
 *
 * Per layer (Hugging Face MambaMixer.slow_forward == mamba_ssm), with the
 * residual stream kept in fp32:
 *   1. residual += out_prev (not for layer 0); h = RMSNorm(residual) * w
 *   2. xz    = in_proj(h)                 (L, 2*d_inner), + bias if use_bias
 *   3. u     = SiLU(conv1d(x = xz[:, :d_inner]) + b)    continuing the conv state
 *   4. dbc   = x_proj(u)                  (L, dt_rank + 2*d_state) = dt | B | C
 *      falcon_mamba: weightless RMSNorm (mixer_rms_eps) on dt, B and C
 *   5. delta = dt_proj.W . dt             (bias + softplus happen in the scan)
 *   6. y     = scan(u, delta, A, B, C, D, z = xz[:, d_inner:]), continuing the ssm state
 *      (a batched decode step of 3-16 sequences: 5 and 6 in one op, ssm_step)
 *   7. out   = out_proj(y)                (L, d_model), + bias if use_bias
 * then residual += out_last, h = RMSNorm(residual) * norm_f, logits =
 * lm_head(h). Activations are token-major (L, width), as the GEMMs produce
 * them; conv and scan read them through strides (dim_stride 1, seq_stride =
 * row width), so there is no transpose anywhere.
 */
#include "model/model_internal.h"
#include "core/threadpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPFAIL(m, msg, what)                                                                         \
    ms6_fmt_error(msg, st, "%s failed on the %s backend: %s", what, (m)->be->ops->name,             \
                  ms6_backend_last_error((m)->be))
#define RUN(m, msg, what, call)                                                                      \
    do {                                                                                             \
        ms6_status st = (call);                                                                      \
        if (st != MS6_STATUS_OK) return OPFAIL(m, msg, what);                                        \
    } while (0)

static int64_t conv_w(const ms6_model *m) { return m->cfg.pub.d_conv - 1; }
/* Floats per layer in the state buffers: 2 copies of n_seq sequences. */
static int64_t conv_layer(const ms6_model *m, const ms6_fwd_state *s) {
    return 2 * s->n_seq * m->cfg.pub.d_inner * conv_w(m);
}
static int64_t ssm_layer(const ms6_model *m, const ms6_fwd_state *s) {
    return 2 * s->n_seq * m->cfg.pub.d_inner * m->cfg.pub.d_state;
}

ms6_status ms6_fwd_state_init(ms6_model *m, int64_t n_seq, ms6_fwd_state *s, char *msg) {
    memset(s, 0, sizeof *s);
    s->n_seq = n_seq;
    const int64_t nl = m->cfg.pub.n_layer;
    size_t cb = sizeof(float) * (size_t)(nl * conv_layer(m, s));
    size_t sb = sizeof(float) * (size_t)(nl * ssm_layer(m, s));
    s->cur = calloc((size_t)n_seq, sizeof *s->cur);
    if (!s->cur) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory for the sequence state");
    ms6_status st = ms6_backend_alloc(m->be, cb, (void **)&s->conv);
    if (st == MS6_STATUS_OK) st = ms6_backend_alloc(m->be, sb, (void **)&s->ssm);
    if (st == MS6_STATUS_OK) st = m->be->ops->memzero(m->be, s->conv, cb);
    if (st == MS6_STATUS_OK) st = m->be->ops->memzero(m->be, s->ssm, sb);
    if (st != MS6_STATUS_OK) {
        ms6_fmt_error(msg, st, "cannot allocate the sequence state (%zu bytes): %s", cb + sb,
                      ms6_backend_last_error(m->be));
        ms6_fwd_state_free(m, s);
    }
    return st;
}

void ms6_fwd_state_free(ms6_model *m, ms6_fwd_state *s) {
    ms6_backend_dealloc(m->be, s->conv);
    ms6_backend_dealloc(m->be, s->ssm);
    free(s->cur);
    memset(s, 0, sizeof *s);
}

ms6_status ms6_fwd_state_reset(ms6_model *m, ms6_fwd_state *s, int64_t seq, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    /* the two copies of a sequence are adjacent: slots 2*seq, 2*seq+1 */
    const int64_t cn = 2 * c->d_inner * conv_w(m), sn = 2 * c->d_inner * c->d_state;
    for (int64_t i = 0; i < c->n_layer; i++) {
        float *cp = s->conv + i * conv_layer(m, s) + seq * cn;
        float *sp = s->ssm + i * ssm_layer(m, s) + seq * sn;
        RUN(m, msg, "memzero", m->be->ops->memzero(m->be, cp, sizeof(float) * (size_t)cn));
        RUN(m, msg, "memzero", m->be->ops->memzero(m->be, sp, sizeof(float) * (size_t)sn));
    }
    s->cur[seq] = 0;
    return MS6_STATUS_OK;
}

/* Pointers to the current copy (which = s->cur[seq]) or the other one. */
static float *conv_slot(const ms6_model *m, const ms6_fwd_state *s, int64_t layer, int64_t seq, int which) {
    return s->conv + layer * conv_layer(m, s) + (2 * seq + which) * m->cfg.pub.d_inner * conv_w(m);
}
static float *ssm_slot(const ms6_model *m, const ms6_fwd_state *s, int64_t layer, int64_t seq, int which) {
    return s->ssm + layer * ssm_layer(m, s) + (2 * seq + which) * m->cfg.pub.d_inner * m->cfg.pub.d_state;
}

ms6_status ms6_fwd_state_download(ms6_model *m, ms6_fwd_state *s, int64_t seq, float *conv, float *ssm,
                                  char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const size_t cn = (size_t)(c->d_inner * conv_w(m)), sn = (size_t)(c->d_inner * c->d_state);
    for (int64_t i = 0; i < c->n_layer; i++) {
        RUN(m, msg, "download", ms6_backend_download(m->be, conv + (size_t)i * cn, conv_slot(m, s, i, seq, s->cur[seq]),
                                                     sizeof(float) * cn));
        RUN(m, msg, "download", ms6_backend_download(m->be, ssm + (size_t)i * sn, ssm_slot(m, s, i, seq, s->cur[seq]),
                                                     sizeof(float) * sn));
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_fwd_state_upload(ms6_model *m, ms6_fwd_state *s, int64_t seq, const float *conv, const float *ssm,
                                char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const size_t cn = (size_t)(c->d_inner * conv_w(m)), sn = (size_t)(c->d_inner * c->d_state);
    for (int64_t i = 0; i < c->n_layer; i++) {
        RUN(m, msg, "upload", ms6_backend_upload(m->be, conv_slot(m, s, i, seq, s->cur[seq]), conv + (size_t)i * cn,
                                                 sizeof(float) * cn));
        RUN(m, msg, "upload", ms6_backend_upload(m->be, ssm_slot(m, s, i, seq, s->cur[seq]), ssm + (size_t)i * sn,
                                                 sizeof(float) * sn));
    }
    return MS6_STATUS_OK;
}

/* The fused decode op (mixer_step) accumulates x_proj into dbc and counts
 * in the MS6_DBC_EXTRA floats after it: they must be zero when it starts,
 * and it leaves them zero. Whatever else writes dbc (a prefill chunk, an
 * unfused or batched step, a failed step) clears it after itself, so the
 * fused step needs no clearing of its own (one graph node less). */
static ms6_status dbc_zero(ms6_model *m, ms6_fwd_scratch *w) {
    const ms6_model_config *c = &m->cfg.pub;
    return m->be->ops->memzero(m->be, w->dbc,
                               sizeof(float) * (size_t)(w->rows * (c->dt_rank + 2 * c->d_state) + MS6_DBC_EXTRA));
}

ms6_status ms6_fwd_scratch_init(ms6_model *m, int64_t rows, ms6_fwd_scratch *w, char *msg) {
    memset(w, 0, sizeof *w);
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model, di = c->d_inner, nb = c->dt_rank + 2 * c->d_state;
    w->rows = rows;
    /* lm_head output is vocab floats per row: computed in blocks of at most
     * 64 rows so a long prefill chunk does not need (chunk, vocab) floats
     * (64 x 50280 floats: 12.9 MB). A batched decode step of up to 64
     * sequences keeps its lm_head inside the step (and its CUDA graph);
     * measured on the H200, 2.8b at batch 64, blocks of 16 rows cost 4
     * lm_head passes over the weights (4 x 83 us) and 4 downloads per step
     * (dev/cuda/decode_prof.c). */
    w->logit_rows = rows < 64 ? rows : 64;
    struct {
        void **p;
        size_t bytes;
    } bufs[] = {
        {(void **)&w->residual, sizeof(float) * (size_t)(rows * dm)},
        {(void **)&w->h, sizeof(float) * (size_t)(rows * dm)},
        {(void **)&w->xz, sizeof(float) * (size_t)(rows * 2 * di)},
        {(void **)&w->u, sizeof(float) * (size_t)(rows * di)},
        /* and the fused step's counters after the rows */
        {(void **)&w->dbc, sizeof(float) * (size_t)(rows * nb + MS6_DBC_EXTRA)},
        {(void **)&w->delta, sizeof(float) * (size_t)(rows * di)},
        {(void **)&w->y, sizeof(float) * (size_t)(rows * di)},
        {(void **)&w->out, sizeof(float) * (size_t)(rows * dm)},
        {(void **)&w->logits, sizeof(float) * (size_t)(w->logit_rows * c->vocab_size)},
        {(void **)&w->ids, sizeof(int32_t) * (size_t)rows},
        {(void **)&w->slots, sizeof(int32_t) * (size_t)rows},
        {(void **)&w->gen_log, sizeof(int32_t) * MS6_GEN_LOG},
        {(void **)&w->gen_pos, sizeof(int32_t) * MS6_FEED_POS},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        ms6_status st = ms6_backend_alloc(m->be, bufs[i].bytes, bufs[i].p);
        if (st != MS6_STATUS_OK) {
            ms6_fmt_error(msg, st, "cannot allocate scratch for %lld rows: %s", (long long)rows,
                          ms6_backend_last_error(m->be));
            ms6_fwd_scratch_free(m, w);
            return st;
        }
    }
    ms6_status st = dbc_zero(m, w);
    if (st != MS6_STATUS_OK) {
        ms6_fmt_error(msg, st, "cannot clear the scratch: %s", ms6_backend_last_error(m->be));
        ms6_fwd_scratch_free(m, w);
    }
    return st;
}

void ms6_fwd_scratch_free(ms6_model *m, ms6_fwd_scratch *w) {
    ms6_graph_cache_free(w);
    void *ps[] = {w->residual, w->h,      w->xz,   w->u,       w->dbc,    w->delta, w->y,
                  w->out,      w->logits, w->ids, w->slots, w->gen_log, w->gen_pos};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) ms6_backend_dealloc(m->be, ps[i]);
    memset(w, 0, sizeof *w);
}

/* element i of a buffer of type dt */
static void *at_elem(void *base, ms6_dtype dt, int64_t i) { return (char *)base + (size_t)i * ms6_dtype_size(dt); }

/* y (M, N) = x (M, K, row stride ldx) . W^T (+ bias) (+ y when accumulate),
 * x of type xt and y of type yt. */
static ms6_status gemm_t(ms6_model *m, char *msg, const char *what, int64_t M, int64_t N, int64_t K, const void *x,
                         ms6_dtype xt, int64_t ldx, ms6_wview w, const float *bias, void *y, ms6_dtype yt, int64_t ldy,
                         int accumulate) {
    ms6_gemm_params g = {
        .M = M, .N = N, .K = K,
        .x = x, .x_dtype = xt, .ldx = ldx,
        .w = w.ptr, .w_dtype = w.dtype, .ldw = K,
        .bias = bias,
        .y = y, .y_dtype = yt, .ldy = ldy,
        .accumulate = accumulate,
    };
    RUN(m, msg, what, m->be->ops->gemm(m->be, &g));
    return MS6_STATUS_OK;
}

/* the same with fp32 activations, y overwritten */
static ms6_status gemm(ms6_model *m, char *msg, const char *what, int64_t M, int64_t N, int64_t K, const float *x,
                       int64_t ldx, ms6_wview w, const float *bias, float *y, int64_t ldy) {
    return gemm_t(m, msg, what, M, N, K, x, MS6_DTYPE_F32, ldx, w, bias, y, MS6_DTYPE_F32, ldy, 0);
}

/* RMSNorm of `rows` rows of x (xt) into out (ot); with residual: residual
 * (+= x when add_x) is what gets normalised, and stays fp32. */
static ms6_status rmsnorm_t(ms6_model *m, char *msg, int64_t rows, int64_t dim, const void *x, ms6_dtype xt,
                            int64_t ldx, void *out, ms6_dtype ot, int64_t ldo, float *residual, int add_x,
                            const float *weight, float eps) {
    ms6_rmsnorm_params p = {
        .rows = rows, .dim = dim,
        .x = x, .x_dtype = xt, .x_row_stride = ldx,
        .out = out, .out_dtype = ot, .out_row_stride = ldo,
        .residual = residual, .residual_row_stride = residual ? dim : 0,
        .add_x = add_x,
        .weight = weight,
        .eps = eps,
    };
    RUN(m, msg, "rmsnorm", m->be->ops->rmsnorm(m->be, &p));
    return MS6_STATUS_OK;
}

static ms6_status rmsnorm(ms6_model *m, char *msg, int64_t rows, int64_t dim, const float *x, int64_t ldx,
                          float *out, int64_t ldo, float *residual, int add_x, const float *weight, float eps) {
    return rmsnorm_t(m, msg, rows, dim, x, MS6_DTYPE_F32, ldx, out, MS6_DTYPE_F32, ldo, residual, add_x, weight, eps);
}

/* residual rows = embedding rows of the n ids already in w->ids */
static ms6_status embed_op(ms6_model *m, ms6_fwd_scratch *w, int64_t n, char *msg) {
    ms6_embed_params e = {
        .n = n, .dim = m->cfg.pub.d_model,
        .ids = w->ids,
        .table = m->embedding.ptr, .table_dtype = m->embedding.dtype,
        .out = w->residual, .out_dtype = MS6_DTYPE_F32, .ldo = m->cfg.pub.d_model,
    };
    RUN(m, msg, "embed", m->be->ops->embed(m->be, &e));
    return MS6_STATUS_OK;
}

static ms6_status embed(ms6_model *m, ms6_fwd_scratch *w, const int32_t *ids, int64_t n, char *msg) {
    RUN(m, msg, "upload", ms6_backend_upload(m->be, w->ids, ids, sizeof(int32_t) * (size_t)n));
    return embed_op(m, w, n, msg);
}

/* Steps 2, 4, 5 and 7 shared by prefill and decode: rows are tokens there
 * and sequences here, the GEMMs do not care. at: the type of h, u and y
 * (the GEMMs' inputs); ao: the type of xz, dbc and delta (their outputs);
 * both fp32 in decode (prefill_plan says what prefill uses). */
static ms6_status in_proj(ms6_model *m, ms6_fwd_scratch *w, const ms6_layer_weights *L, int64_t rows, ms6_dtype at,
                          ms6_dtype ao, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    return gemm_t(m, msg, "in_proj gemm", rows, 2 * c->d_inner, c->d_model, w->h, at, c->d_model, L->in_proj,
                  L->in_proj_bias, w->xz, ao, 2 * c->d_inner, 0);
}

/* dbc = x_proj(u) = dt | B | C; falcon_mamba: time_step = rms_forward(time_step),
 * B = rms_forward(B), C = rms_forward(C), each segment normalised on its
 * own, no weight, eps = mixer_rms_eps */
static ms6_status x_proj(ms6_model *m, ms6_fwd_scratch *w, const ms6_layer_weights *L, int64_t rows, ms6_dtype at,
                         ms6_dtype ao, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t R = c->dt_rank, N = c->d_state, nb = R + 2 * N;
    ms6_status st = gemm_t(m, msg, "x_proj gemm", rows, nb, c->d_inner, w->u, at, c->d_inner, L->x_proj, NULL, w->dbc,
                           ao, nb, 0);
    if (st != MS6_STATUS_OK || strcmp(c->model_type, "falcon_mamba")) return st;
    const int64_t seg_off[3] = {0, R, R + N}, seg_dim[3] = {R, N, N};
    for (int k = 0; k < 3 && st == MS6_STATUS_OK; k++) {
        void *p = at_elem(w->dbc, ao, seg_off[k]);
        st = rmsnorm_t(m, msg, rows, seg_dim[k], p, ao, nb, p, ao, nb, NULL, 0, NULL, c->mixer_rms_eps);
    }
    return st;
}

/* delta = dt_proj.weight @ dt; dt_proj.bias goes to the scan as delta_bias */
static ms6_status dt_proj(ms6_model *m, ms6_fwd_scratch *w, const ms6_layer_weights *L, int64_t rows, ms6_dtype ao,
                          char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t R = c->dt_rank, nb = R + 2 * c->d_state;
    return gemm_t(m, msg, "dt_proj gemm", rows, c->d_inner, R, w->dbc, ao, nb, L->dt_proj, NULL, w->delta, ao,
                  c->d_inner, 0);
}

/* out = out_proj(y), or with add_to_residual residual += out_proj(y) */
static ms6_status out_proj(ms6_model *m, ms6_fwd_scratch *w, const ms6_layer_weights *L, int64_t rows, ms6_dtype at,
                           int add_to_residual, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    return gemm_t(m, msg, "out_proj gemm", rows, c->d_model, c->d_inner, w->y, at, c->d_inner, L->out_proj,
                  L->out_proj_bias, add_to_residual ? w->residual : w->out, MS6_DTYPE_F32, c->d_model,
                  add_to_residual);
}

/* Final residual add + norm_f on rows [r0, r0+n) (head_norm), then lm_head
 * in blocks, each block downloaded to logits (host) row by row (head_blocks). */
static ms6_status head_norm(ms6_model *m, ms6_fwd_scratch *w, int64_t r0, int64_t n, int add_out, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model;
    return rmsnorm(m, msg, n, dm, w->out + r0 * dm, dm, w->h + r0 * dm, dm, w->residual + r0 * dm, add_out, m->norm_f,
                   c->norm_eps);
}

/* next[r] = argmax of row r of w->logits, r < rows: on the backend when it
 * has the op (only the ids come back), else over host memory. */
static ms6_status argmax_logits(ms6_model *m, ms6_fwd_scratch *w, int64_t rows, int32_t *next, char *msg) {
    const int64_t V = m->cfg.pub.vocab_size;
    if (m->be->ops->argmax_rows) {
        RUN(m, msg, "argmax", m->be->ops->argmax_rows(m->be, w->logits, rows, V, next));
        return MS6_STATUS_OK;
    }
    for (int64_t r = 0; r < rows; r++) next[r] = ms6_argmax(w->logits + r * V, V);
    return MS6_STATUS_OK;
}

/* logits rows (host, optional) and/or their argmax ids (host, optional) */
static ms6_status head_blocks(ms6_model *m, ms6_fwd_scratch *w, int64_t r0, int64_t n, float *logits, int32_t *next,
                              char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model, V = c->vocab_size;
    ms6_status st;
    for (int64_t b = 0; b < n; b += w->logit_rows) {
        const int64_t nr = n - b < w->logit_rows ? n - b : w->logit_rows;
        st = gemm(m, msg, "lm_head gemm", nr, V, dm, w->h + (r0 + b) * dm, dm, m->lm_head, NULL, w->logits, V);
        if (st != MS6_STATUS_OK) return st;
        if (logits)
            RUN(m, msg, "download", ms6_backend_download(m->be, logits + b * V, w->logits, sizeof(float) * (size_t)(nr * V)));
        if (next && (st = argmax_logits(m, w, nr, next + b, msg)) != MS6_STATUS_OK) return st;
    }
    return MS6_STATUS_OK;
}

/* ---- prefill: ms6_forward_chunk ---------------------------------------- */

/* How a prefill chunk runs on this backend. On a GPU the activations that
 * feed the GEMMs (h, xz, u, dbc, delta, y) are kept in the weights' half
 * type: the tensor cores take both operands in one type, so they would be
 * rounded to it before every product anyway, and half the bytes move
 * between the ops (mamba_ssm keeps the same tensors in the model's dtype).
 * The residual stream stays fp32, and out_proj adds into it directly
 * (cuBLASLt's beta = 1), so no separate out buffer is written and re-read.
 * With fp32 weights (dtype f32) and on the CPU backends everything stays
 * fp32 as before. Development overrides: MS6_PREFILL_ACT=f32|f16|bf16,
 * MS6_PREFILL_FUSE=0|1; MS6_PROFILE=1 prints a per-op breakdown of every
 * chunk to stderr (host clock, the stream synchronised after each op: about
 * 15 us per op on an H200 on top of the unprofiled time, and a process's
 * first chunk includes gemm.cu's algorithm timing). dev/cuda/prefill_prof.c
 * gives the GPU time per op from events instead. */
typedef struct prefill_plan {
    ms6_dtype act;     /* h, u, y: inputs of the GEMMs (u also of the scan) */
    ms6_dtype act_out; /* xz, dbc, delta: outputs of the GEMMs, read by conv and scan */
    int fuse_residual;
} prefill_plan;

static int parse_act(const char *e, ms6_dtype *out) {
    if (!e) return 0;
    if (!strcmp(e, "f32")) *out = MS6_DTYPE_F32;
    else if (!strcmp(e, "f16")) *out = MS6_DTYPE_F16;
    else if (!strcmp(e, "bf16")) *out = MS6_DTYPE_BF16;
    else return 0;
    return 1;
}

static prefill_plan prefill_plan_for(const ms6_model *m) {
    prefill_plan p = {MS6_DTYPE_F32, MS6_DTYPE_F32, 0};
    if (m->be->kind == MS6_BACKEND_CUDA) {
        const ms6_dtype wt = m->layers[0].in_proj.dtype;
        if (wt == MS6_DTYPE_F16 || wt == MS6_DTYPE_BF16) p.act = wt;
        /* bf16 keeps 8 bits: rounding the GEMM inputs alone already moves
         * the golden models' logits by up to 1.1e-2 (relative, CPU backend,
         * MS6_PREFILL_ACT=bf16 MS6_PREFILL_ACT_OUT=f32), so xz, dbc and
         * delta stay fp32 for bf16 weights */
        if (wt == MS6_DTYPE_F16) p.act_out = wt;
        p.fuse_residual = 1;
    }
    if (parse_act(getenv("MS6_PREFILL_ACT"), &p.act)) p.act_out = p.act;
    parse_act(getenv("MS6_PREFILL_ACT_OUT"), &p.act_out);
    const char *e = getenv("MS6_PREFILL_FUSE");
    if (e && *e) p.fuse_residual = atoi(e) != 0;
    return p;
}

/* MS6_PROFILE=1: wall time per op kind, the stream synchronised after each */
enum { PF_EMBED, PF_NORM, PF_IN, PF_CONV, PF_XPROJ, PF_DTPROJ, PF_SCAN, PF_OUT, PF_HEAD, PF_KINDS };
static const char *const pf_names[PF_KINDS] = {"embed", "rmsnorm", "in_proj", "conv1d", "x_proj",
                                               "dt_proj", "scan", "out_proj", "norm_f+lm_head"};
typedef struct pf_prof {
    int on;
    double start, last, t[PF_KINDS], flop[PF_KINDS];
    int64_t n[PF_KINDS];
} pf_prof;

static void pf_begin(ms6_model *m, pf_prof *p) {
    memset(p, 0, sizeof *p);
    const char *e = getenv("MS6_PROFILE");
    p->on = e && *e && strcmp(e, "0") != 0;
    if (!p->on) return;
    ms6_backend_synchronize(m->be);
    p->start = p->last = ms6_monotonic_s();
}

/* charges the time since the last mark to `kind` (flop: its GEMM work) */
static void pf_mark(ms6_model *m, pf_prof *p, int kind, double flop) {
    if (!p->on) return;
    ms6_backend_synchronize(m->be);
    const double t = ms6_monotonic_s();
    p->t[kind] += t - p->last;
    p->n[kind]++;
    p->flop[kind] += flop;
    p->last = t;
}

static void pf_report(const ms6_model *m, const pf_prof *p, int64_t L, prefill_plan plan) {
    if (!p->on) return;
    const double total = p->last - p->start;
    static const char *const dn[] = {"f32", "f16", "bf16"};
    fprintf(stderr, "prefill profile: %lld tokens, %lld layers, %s backend, h/u/y %s, xz/dbc/delta %s, residual %s\n",
            (long long)L, (long long)m->cfg.pub.n_layer, m->be->ops->name, dn[plan.act % 3], dn[plan.act_out % 3],
            plan.fuse_residual ? "added by out_proj" : "added by rmsnorm");
    fprintf(stderr, "  %-15s %9s %6s %7s %9s\n", "op", "ms", "calls", "share", "TFLOP/s");
    double gemm_t_s = 0, gemm_f = 0;
    for (int k = 0; k < PF_KINDS; k++) {
        if (!p->n[k]) continue;
        fprintf(stderr, "  %-15s %9.3f %6lld %6.1f%%", pf_names[k], 1e3 * p->t[k], (long long)p->n[k],
                total > 0 ? 100.0 * p->t[k] / total : 0.0);
        if (p->flop[k] > 0 && p->t[k] > 0) fprintf(stderr, " %9.1f", p->flop[k] / p->t[k] / 1e12);
        fprintf(stderr, "\n");
        if (p->flop[k] > 0) gemm_t_s += p->t[k], gemm_f += p->flop[k];
    }
    fprintf(stderr, "  %-15s %9.3f %6s %6.1f%% %9.1f\n", "gemm (4 kinds)", 1e3 * gemm_t_s, "",
            total > 0 ? 100.0 * gemm_t_s / total : 0.0, gemm_t_s > 0 ? gemm_f / gemm_t_s / 1e12 : 0.0);
    fprintf(stderr, "  %-15s %9.3f (synchronised after every op)\n", "total", 1e3 * total);
}

static ms6_status chunk_body(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t seq, const int32_t *ids,
                             int64_t L, float *logits, int all_positions, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model, di = c->d_inner, N = c->d_state, R = c->dt_rank, nb = R + 2 * N;
    const int cur = s->cur[seq];
    const prefill_plan plan = prefill_plan_for(m);
    /* the scratch buffers are sized for fp32, so a half type fits */
    const ms6_dtype at = plan.act, ao = plan.act_out;
    pf_prof pf;
    pf_begin(m, &pf);
    ms6_status st = embed(m, w, ids, L, msg);
    if (st != MS6_STATUS_OK) return st;
    pf_mark(m, &pf, PF_EMBED, 0);
    for (int64_t i = 0; i < c->n_layer && st == MS6_STATUS_OK; i++) {
        const ms6_layer_weights *Lw = &m->layers[i];
        /* 1. residual (+= out of the previous layer, unless out_proj added it
         * already); h = norm(residual) */
        st = rmsnorm_t(m, msg, L, dm, w->out, MS6_DTYPE_F32, dm, w->h, at, dm, w->residual,
                       i > 0 && !plan.fuse_residual, Lw->norm, c->norm_eps);
        if (st != MS6_STATUS_OK) return st;
        pf_mark(m, &pf, PF_NORM, 0);
        /* 2. xz = in_proj(h) */
        st = in_proj(m, w, Lw, L, at, ao, msg);
        if (st != MS6_STATUS_OK) return st;
        pf_mark(m, &pf, PF_IN, 2.0 * (double)L * (double)(2 * di) * (double)dm);
        /* 3. u = act(conv1d(x)[..., :L]), continuing from the conv state */
        ms6_conv1d_params cp = {
            .batch = 1, .dim = di, .seqlen = L, .d_conv = c->d_conv,
            .x = {w->xz, ao, 0, 1, 2 * di},
            .out = {w->u, at, 0, 1, di},
            .weight = Lw->conv_w, .weight_dim_stride = c->d_conv,
            .bias = Lw->conv_b,
            .activation = 1,
            .initial_state = conv_slot(m, s, i, seq, cur),
            .final_state = conv_slot(m, s, i, seq, !cur),
        };
        RUN(m, msg, "conv1d_fwd", m->be->ops->conv1d_fwd(m->be, &cp));
        pf_mark(m, &pf, PF_CONV, 0);
        /* 4. dbc = x_proj(u) = dt | B | C; falcon_mamba: weightless RMSNorm of each */
        st = x_proj(m, w, Lw, L, at, ao, msg);
        if (st != MS6_STATUS_OK) return st;
        pf_mark(m, &pf, PF_XPROJ, 2.0 * (double)L * (double)nb * (double)di);
        /* 5. delta = dt_proj.W . dt (bias and softplus in the scan) */
        st = dt_proj(m, w, Lw, L, ao, msg);
        if (st != MS6_STATUS_OK) return st;
        pf_mark(m, &pf, PF_DTPROJ, 2.0 * (double)L * (double)di * (double)R);
        /* 6. selective scan; B = dbc[:, R:R+N], C = dbc[:, R+N:], both (L, N)
         * rows of the x_proj output, i.e. mamba_ssm's (batch, N, L) with
         * state_stride 1 and seq_stride nb */
        ms6_scan_params sp = {
            .batch = 1, .dim = di, .seqlen = L, .d_state = N, .n_groups = 1,
            .u = {w->u, at, 0, 1, di},
            .delta = {w->delta, ao, 0, 1, di},
            .A = Lw->A, .A_dim_stride = N, .A_state_stride = 1,
            .B = {at_elem(w->dbc, ao, R), ao, MS6_BC_VARIABLE, 0, 0, 0, 1, nb},
            .C = {at_elem(w->dbc, ao, R + N), ao, MS6_BC_VARIABLE, 0, 0, 0, 1, nb},
            .D = Lw->D,
            .delta_bias = Lw->dt_bias,
            .z = {at_elem(w->xz, ao, di), ao, 0, 1, 2 * di},
            .out = {w->y, at, 0, 1, di},
            .delta_softplus = 1,
            .initial_state = ssm_slot(m, s, i, seq, cur),
            .final_state = ssm_slot(m, s, i, seq, !cur),
            .state_batch_stride = di * N, .state_dim_stride = N,
        };
        RUN(m, msg, "scan_fwd", m->be->ops->scan_fwd(m->be, &sp));
        pf_mark(m, &pf, PF_SCAN, 0);
        /* 7. out = out_proj(y), or residual += out_proj(y) */
        st = out_proj(m, w, Lw, L, at, plan.fuse_residual, msg);
        pf_mark(m, &pf, PF_OUT, 2.0 * (double)L * (double)dm * (double)di);
    }
    if (st != MS6_STATUS_OK) return st;
    /* The chunk is complete: the copies just written become current. */
    s->cur[seq] = !cur;
    if (logits) {
        /* last residual add (unless fused), norm_f, lm_head on the rows asked for */
        const int64_t r0 = all_positions ? 0 : L - 1, n = all_positions ? L : 1;
        st = head_norm(m, w, r0, n, !plan.fuse_residual, msg);
        if (st == MS6_STATUS_OK) st = head_blocks(m, w, r0, n, logits, NULL, msg);
        pf_mark(m, &pf, PF_HEAD, 0);
    }
    if (st == MS6_STATUS_OK) pf_report(m, &pf, L, plan);
    return st;
}

/* ---- decode: the fused mixer step ------------------------------------- */

/* The layer's fused-step parameters (ops mixer_step); check_only asks the
 * backend whether it can run them. */
static ms6_mixer_step_params mixer_params(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t i, int64_t n,
                                          int check_only) {
    const ms6_model_config *c = &m->cfg.pub;
    const ms6_layer_weights *L = &m->layers[i];
    ms6_mixer_step_params p = {
        .check_only = check_only,
        .n = n, .d_model = c->d_model, .d_inner = c->d_inner, .d_state = c->d_state, .dt_rank = c->dt_rank,
        .d_conv = c->d_conv,
        .eps = c->norm_eps,
        .residual = w->residual,
        .norm = L->norm,
        .w_dtype = L->in_proj.dtype,
        .in_proj = L->in_proj.ptr, .in_proj_bias = L->in_proj_bias,
        .conv_w = L->conv_w, .conv_b = L->conv_b,
        .x_proj = L->x_proj.ptr,
        .dt_proj = L->dt_proj.ptr, .dt_bias = L->dt_bias,
        .A = L->A, .D = L->D,
        .out_proj = L->out_proj.ptr, .out_proj_bias = L->out_proj_bias,
        .conv_state = s->conv + i * conv_layer(m, s), .conv_slot_stride = c->d_inner * conv_w(m),
        .ssm_state = s->ssm + i * ssm_layer(m, s), .ssm_slot_stride = c->d_inner * c->d_state,
        .slots = w->slots,
        .xz = w->xz, .u = w->u, .dbc = w->dbc, .y = w->y,
    };
    return p;
}

/* feed: the head also feeds its argmax back (generate_greedy) */
static ms6_norm_gemv_params head_params(ms6_model *m, ms6_fwd_scratch *w, int64_t n, int check_only, int feed) {
    const ms6_model_config *c = &m->cfg.pub;
    ms6_norm_gemv_params p = {
        .check_only = check_only,
        .n = n, .dim = c->d_model, .rows = c->vocab_size,
        .x = w->residual, .norm = m->norm_f, .eps = c->norm_eps,
        .w = m->lm_head.ptr, .w_dtype = m->lm_head.dtype,
        .out = w->logits, .ldo = c->vocab_size,
    };
    if (feed) {
        p.feed_ids = w->ids;
        p.feed_log = w->gen_log;
        p.feed_pos = w->gen_pos;
    }
    return p;
}

/* Whether the backend runs this step with its fused ops: every layer's
 * mixer (one kernel chain per layer, residual added in place) and the head
 * (norm_f + lm_head into w->logits). The mixer of falcon_mamba (RMSNorm on
 * dt, B and C) is not fused. */
static int fused_step_ok(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n) {
    const ms6_backend_ops *o = m->be->ops;
    const ms6_model_config *c = &m->cfg.pub;
    if (!o->mixer_step || !o->norm_gemv || n > w->logit_rows || !strcmp(c->model_type, "falcon_mamba")) return 0;
    for (int64_t i = 0; i < c->n_layer; i++) {
        const ms6_layer_weights *L = &m->layers[i];
        if (L->x_proj.dtype != L->in_proj.dtype || L->dt_proj.dtype != L->in_proj.dtype ||
            L->out_proj.dtype != L->in_proj.dtype)
            return 0;
        ms6_mixer_step_params p = mixer_params(m, s, w, i, n, 1);
        if (o->mixer_step(m->be, &p) != MS6_STATUS_OK) return 0;
    }
    ms6_norm_gemv_params h = head_params(m, w, n, 1, 0);
    return o->norm_gemv(m->be, &h) == MS6_STATUS_OK;
}

/* The whole step as one backend op (decode_step), when the backend has it
 * and takes this shape: returns MS6_STATUS_UNSUPPORTED otherwise, having
 * done nothing. */
static ms6_status whole_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, char *msg) {
    const ms6_backend_ops *o = m->be->ops;
    const int64_t nl = m->cfg.pub.n_layer;
    if (!o->decode_step) return MS6_STATUS_UNSUPPORTED;
    ms6_mixer_step_params *ls = malloc(sizeof *ls * (size_t)nl);
    if (!ls) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of host memory");
    for (int64_t i = 0; i < nl; i++) ls[i] = mixer_params(m, s, w, i, n, 0);
    ms6_decode_step_params p = {.check_only = 1, .n_layer = nl, .layers = ls, .head = head_params(m, w, n, 0, 0)};
    ms6_status st = o->decode_step(m->be, &p);
    if (st == MS6_STATUS_OK) {
        p.check_only = 0;
        st = o->decode_step(m->be, &p);
        if (st != MS6_STATUS_OK) st = OPFAIL(m, msg, "decode_step");
    } else {
        st = MS6_STATUS_UNSUPPORTED;
    }
    free(ls);
    return st;
}

/* *fed: the head fed its argmax back (asked with feed, where it can) */
static ms6_status fused_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, int feed, int *fed,
                             char *msg) {
    ms6_status st = whole_step(m, s, w, n, msg);
    if (st != MS6_STATUS_UNSUPPORTED) return st;
    /* dbc and its counters are zero here (dbc_zero) and again after the layers */
    for (int64_t i = 0; i < m->cfg.pub.n_layer; i++) {
        ms6_mixer_step_params p = mixer_params(m, s, w, i, n, 0);
        RUN(m, msg, "mixer_step", m->be->ops->mixer_step(m->be, &p));
    }
    ms6_norm_gemv_params h = head_params(m, w, n, 1, feed);
    *fed = feed && m->be->ops->norm_gemv(m->be, &h) == MS6_STATUS_OK;
    h = head_params(m, w, n, 0, *fed);
    RUN(m, msg, "norm_gemv", m->be->ops->norm_gemv(m->be, &h));
    return MS6_STATUS_OK;
}

/* ---- decode: the batched step's dt_proj + state update as one op ------- */

/* Batches that take the backend's ssm_step op (dt_proj + softplus + state
 * update + D + gate in one kernel, in place of the dt_proj gemm and
 * state_update): by default 3 to BATCH_SSM_AUTO sequences (measured on a
 * 2.8b shape, H200: batch 8 3.607 vs 3.987 ms per step, batch 64 5.301 vs
 * 4.878), MS6_DEC_BATCH_FUSED=1 for 3 to 256, =0 never. Not for 1 and 2
 * (they take the fused step where it applies, and keep the two ops
 * elsewhere, so a single-sequence step stays an independent reference for
 * batched == single). */
#define BATCH_SSM_MIN 3
#define BATCH_SSM_AUTO 16
#define BATCH_SSM_MAX 256

static ms6_ssm_step_params ssm_step_params(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t i, int64_t n,
                                           int check_only) {
    const ms6_model_config *c = &m->cfg.pub;
    const ms6_layer_weights *L = &m->layers[i];
    const int64_t di = c->d_inner, N = c->d_state, R = c->dt_rank;
    ms6_ssm_step_params p = {
        .check_only = check_only,
        .n = n, .d_inner = di, .d_state = N, .dt_rank = R,
        .dbc = w->dbc, .ld_dbc = R + 2 * N,
        .u = w->u, .ld_u = di,
        .z = w->xz + di, .ld_z = 2 * di,
        .dt_proj = L->dt_proj.ptr, .dt_proj_dtype = L->dt_proj.dtype,
        .dt_bias = L->dt_bias,
        .A = L->A, .D = L->D,
        .state = s->ssm + i * ssm_layer(m, s), .slot_stride = di * N, .n_slots = 2 * s->n_seq,
        .slots = w->slots,
        .y = w->y, .ld_y = di,
    };
    return p;
}

/* Whether this step's layers run ssm_step: a batch in range (above), and
 * the backend takes every layer's shapes (check_only). */
static int batch_ssm_ok(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n) {
    const char *e = getenv("MS6_DEC_BATCH_FUSED");
    const int64_t max = !e || !*e ? BATCH_SSM_AUTO : !strcmp(e, "1") ? BATCH_SSM_MAX : 0;
    if (!m->be->ops->ssm_step || n < BATCH_SSM_MIN || n > max) return 0;
    for (int64_t i = 0; i < m->cfg.pub.n_layer; i++) {
        ms6_ssm_step_params p = ssm_step_params(m, s, w, i, n, 1);
        if (m->be->ops->ssm_step(m->be, &p) != MS6_STATUS_OK) return 0;
    }
    return 1;
}

/* The device part of a decode step: from the ids and slots already in
 * w->ids / w->slots to the normed final hidden states, and the logits in
 * w->logits when n fits in one lm_head block. No host transfer happens
 * here, which is what lets graph.c capture it into a CUDA graph. */
static ms6_status step_impl(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, int feed, int *fed,
                            char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model, di = c->d_inner, N = c->d_state, R = c->dt_rank, nb = R + 2 * N;
    *fed = 0;
    ms6_status st = embed_op(m, w, n, msg);
    if (st != MS6_STATUS_OK) return st;
    if (fused_step_ok(m, s, w, n)) return fused_step(m, s, w, n, feed, fed, msg);
    const int ssm_fused = batch_ssm_ok(m, s, w, n);
    for (int64_t i = 0; i < c->n_layer; i++) {
        const ms6_layer_weights *Lw = &m->layers[i];
        st = rmsnorm(m, msg, n, dm, w->out, dm, w->h, dm, w->residual, i > 0, Lw->norm, c->norm_eps);
        if (st == MS6_STATUS_OK) st = in_proj(m, w, Lw, n, MS6_DTYPE_F32, MS6_DTYPE_F32, msg);
        if (st != MS6_STATUS_OK) return st;
        /* conv_state = roll(conv_state, -1); conv_state[:, :, -1] = x; x = act(sum(conv_state * w) + b) */
        ms6_conv1d_update_params cu = {
            .batch = n, .dim = di, .d_conv = c->d_conv, .n_state_slots = 2 * s->n_seq,
            .x = {w->xz, MS6_DTYPE_F32, 2 * di, 1, 0},
            .out = {w->u, MS6_DTYPE_F32, di, 1, 0},
            .state = s->conv + i * conv_layer(m, s),
            .state_batch_stride = di * conv_w(m), .state_dim_stride = conv_w(m),
            .weight = Lw->conv_w, .weight_dim_stride = c->d_conv,
            .bias = Lw->conv_b,
            .activation = 1,
            .state_batch_indices = w->slots,
        };
        RUN(m, msg, "conv1d_update", m->be->ops->conv1d_update(m->be, &cu));
        st = x_proj(m, w, Lw, n, MS6_DTYPE_F32, MS6_DTYPE_F32, msg);
        if (st != MS6_STATUS_OK) return st;
        if (ssm_fused) {
            /* dt_proj + softplus + state update + D + gate in one op */
            ms6_ssm_step_params sp = ssm_step_params(m, s, w, i, n, 0);
            RUN(m, msg, "ssm_step", m->be->ops->ssm_step(m->be, &sp));
        } else {
            st = dt_proj(m, w, Lw, n, MS6_DTYPE_F32, msg);
            if (st != MS6_STATUS_OK) return st;
            /* one scan step per sequence, state updated in place */
            ms6_state_update_params su = {
                .batch = n, .dim = di, .d_state = N, .n_groups = 1, .n_state_slots = 2 * s->n_seq,
                .state = s->ssm + i * ssm_layer(m, s),
                .state_batch_stride = di * N, .state_dim_stride = N,
                .x = {w->u, MS6_DTYPE_F32, di, 1, 0},
                .dt = {w->delta, MS6_DTYPE_F32, di, 1, 0},
                .A = Lw->A, .A_dim_stride = N, .A_state_stride = 1,
                .B = {w->dbc + R, MS6_DTYPE_F32, MS6_BC_VARIABLE, nb, 0, 0, 1, 0},
                .C = {w->dbc + R + N, MS6_DTYPE_F32, MS6_BC_VARIABLE, nb, 0, 0, 1, 0},
                .D = Lw->D, .dt_bias = Lw->dt_bias,
                .z = {w->xz + di, MS6_DTYPE_F32, 2 * di, 1, 0},
                .out = {w->y, MS6_DTYPE_F32, di, 1, 0},
                .dt_softplus = 1,
                .state_batch_indices = w->slots,
            };
            RUN(m, msg, "state_update", m->be->ops->state_update(m->be, &su));
        }
        st = out_proj(m, w, Lw, n, MS6_DTYPE_F32, 0, msg);
        if (st != MS6_STATUS_OK) return st;
    }
    RUN(m, msg, "memzero", dbc_zero(m, w)); /* for a fused step after this one */
    st = head_norm(m, w, 0, n, 1, msg);
    if (st != MS6_STATUS_OK || n > w->logit_rows) return st;
    return gemm(m, msg, "lm_head gemm", n, c->vocab_size, dm, w->h, dm, m->lm_head, NULL, w->logits, c->vocab_size);
}

static ms6_status step_body(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, char *msg) {
    int fed;
    return step_impl(m, s, w, n, 0, &fed, msg);
}

ms6_status ms6_forward_chunk(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t seq, const int32_t *ids,
                             int64_t L, float *logits, int all_positions, char *msg) {
    const ms6_status st = chunk_body(m, s, w, seq, ids, L, logits, all_positions, msg);
    const ms6_status zst = dbc_zero(m, w); /* x_proj's output was there */
    if (st != MS6_STATUS_OK) return st;
    if (zst != MS6_STATUS_OK) return OPFAIL(m, msg, "memzero");
    return MS6_STATUS_OK;
}

static ms6_status step_run(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, const int64_t *seqs,
                           const int32_t *ids, int64_t n, float *logits, int32_t *next, char *msg);

ms6_status ms6_forward_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, const int64_t *seqs,
                            const int32_t *ids, int64_t n, float *logits, int32_t *next, char *msg) {
    const ms6_status st = step_run(m, s, w, seqs, ids, n, logits, next, msg);
    if (st != MS6_STATUS_OK) dbc_zero(m, w); /* a step stopped part way may have left sums there */
    return st;
}

static ms6_status step_run(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, const int64_t *seqs,
                           const int32_t *ids, int64_t n, float *logits, int32_t *next, char *msg) {
    const ms6_model_config *c = &m->cfg.pub;
    int32_t slot_buf[64] = {0}, *slots = n <= 64 ? slot_buf : malloc(sizeof(int32_t) * (size_t)n);
    if (!slots) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory");
    /* sequence seqs[b] lives in state slot 2*seq + cur[seq] of every layer */
    for (int64_t b = 0; b < n; b++) slots[b] = (int32_t)(2 * seqs[b] + s->cur[seqs[b]]);
    ms6_status st = ms6_backend_upload(m->be, w->slots, slots, sizeof(int32_t) * (size_t)n);
    if (slots != slot_buf) free(slots);
    if (st != MS6_STATUS_OK) return OPFAIL(m, msg, "upload");
    RUN(m, msg, "upload", ms6_backend_upload(m->be, w->ids, ids, sizeof(int32_t) * (size_t)n));
    st = ms6_graph_step(m, s, w, n, step_body, msg);
    if (st != MS6_STATUS_OK || (!logits && !next)) return st;
    if (n > w->logit_rows) return head_blocks(m, w, 0, n, logits, next, msg);
    if (logits)
        RUN(m, msg, "download",
            ms6_backend_download(m->be, logits, w->logits, sizeof(float) * (size_t)(n * c->vocab_size)));
    return next ? argmax_logits(m, w, n, next, msg) : MS6_STATUS_OK;
}

/* The step with the argmax of its logits row fed back into w->ids and
 * logged at w->gen_log[w->gen_pos[0]++] (one sequence): by the fused head
 * where it can (MS6_HEAD_ARGMAX=0: never), else by argmax_feed after it */
static ms6_status step_body_feed(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, char *msg) {
    const char *e = getenv("MS6_HEAD_ARGMAX");
    int fed = 0;
    ms6_status st = step_impl(m, s, w, n, !(e && !strcmp(e, "0")), &fed, msg);
    if (st != MS6_STATUS_OK || fed) return st; /* the fused head fed it back (MS6_HEAD_ARGMAX=0: not) */
    RUN(m, msg, "argmax",
        m->be->ops->argmax_feed(m->be, w->logits, n, m->cfg.pub.vocab_size, w->ids, w->gen_log, w->gen_pos));
    return MS6_STATUS_OK;
}

ms6_status ms6_forward_generate_greedy(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t seq, int32_t id,
                                       int64_t count, int32_t *out, char *msg) {
    ms6_status st = MS6_STATUS_OK;
    if (!m->be->ops->argmax_feed || w->logit_rows < 1) {
        for (int64_t i = 0; i < count && st == MS6_STATUS_OK; i++) {
            st = ms6_forward_step(m, s, w, &seq, &id, 1, NULL, out + i, msg);
            id = out[i];
        }
        return st;
    }
    const int32_t slot = (int32_t)(2 * seq + s->cur[seq]);
    RUN(m, msg, "upload", ms6_backend_upload(m->be, w->slots, &slot, sizeof slot));
    RUN(m, msg, "upload", ms6_backend_upload(m->be, w->ids, &id, sizeof id));
    for (int64_t done = 0; done < count;) {
        const int64_t k = count - done < MS6_GEN_LOG ? count - done : MS6_GEN_LOG;
        const int32_t zero[MS6_FEED_POS] = {0};
        RUN(m, msg, "upload", ms6_backend_upload(m->be, w->gen_pos, zero, sizeof zero));
        for (int64_t i = 0; i < k; i++)
            if ((st = ms6_graph_step(m, s, w, 1, step_body_feed, msg)) != MS6_STATUS_OK) {
                dbc_zero(m, w); /* as ms6_forward_step after a failure */
                return st;
            }
        RUN(m, msg, "download", ms6_backend_download(m->be, out + done, w->gen_log, sizeof(int32_t) * (size_t)k));
        done += k;
    }
    return MS6_STATUS_OK;
}
