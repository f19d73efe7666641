/*
 * test_model.c - the model and session API on tiny random checkpoints.
 *
 * Each case writes a small Mamba-1 checkpoint (config.json +
 * model.safetensors, or shards + index) with fresh random weights, loads it
 * and checks:
 *   - logits at every position against an independent float64 forward
 *     written here from the math in DESIGN.md §4 (relative L2 <= 1e-4 per
 *     position), over variants: transformers and state-spaces configs,
 *     falcon_mamba, biases on/off, tied/untied head, f32/f16/bf16 storage,
 *     several d_state / d_conv / dt_rank, shards;
 *   - prefill then steps == one prefill of the whole sequence;
 *   - chunked prefill == unchunked;
 *   - snapshot -> restore and save -> load give the same continuation;
 *     a state from another model is refused; reset == fresh session;
 *   - an out-of-range id is MS6_STATUS_OUT_OF_RANGE naming the id.
 * Then, for every golden model committed under tests/golden/models/ (made
 * by Hugging Face transformers in float64), logits at every position
 * (relative L2 <= 1e-4) and the greedy continuation. Skipped when none.
 */
#include "model/model_internal.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------- tiny checkpoint writer ---------------- */

typedef struct {
    const char *model_type;   /* "mamba" / "falcon_mamba" */
    int state_spaces;         /* write the original state-spaces config keys */
    int64_t d_model, n_layer, vocab, d_state, d_conv, expand, dt_rank; /* dt_rank 0 = "auto" */
    int64_t pad_multiple;     /* state-spaces only */
    int use_bias, use_conv_bias, tie;
    ms6_dtype dtype;
    int shards;               /* 0 = one file, else that many shards + index */
    int singular_embedding;   /* backbone.embedding.weight */
    int misalign;             /* data section at an odd offset: the loader must copy, not borrow */
} tiny_cfg;

typedef struct {
    char name[128];
    int n_dims;
    int64_t shape[3];
    int64_t n;
    double *v; /* values as stored (rounded to the dtype) */
} tensor;

typedef struct {
    tiny_cfg c;
    int64_t d_inner, dt_rank, V; /* V = rows of the embedding */
    tensor *t;
    int n_t;
} tiny_model;

static double round_to(double x, ms6_dtype d) {
    if (d == MS6_DTYPE_F16) return ms6_f16_to_f32(ms6_f32_to_f16((float)x));
    if (d == MS6_DTYPE_BF16) return ms6_bf16_to_f32(ms6_f32_to_bf16((float)x));
    return (float)x;
}

static tensor *add_tensor(tiny_model *m, const char *name, int nd, int64_t a, int64_t b, int64_t c) {
    m->t = realloc(m->t, sizeof *m->t * (size_t)(m->n_t + 1));
    tensor *t = &m->t[m->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = nd;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    t->n = a * (nd > 1 ? b : 1) * (nd > 2 ? c : 1);
    t->v = calloc((size_t)t->n, sizeof(double));
    return t;
}

static const tensor *find(const tiny_model *m, const char *name) {
    for (int i = 0; i < m->n_t; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static void fill_normal(tensor *t, tu_rng *r, double mean, double sd, ms6_dtype d) {
    for (int64_t i = 0; i < t->n; i++) t->v[i] = round_to(mean + sd * tu_normal(r), d);
}

static void make_weights(tiny_model *m, tu_rng *r) {
    const tiny_cfg *c = &m->c;
    const int64_t dm = c->d_model, di = c->expand * dm, N = c->d_state;
    m->d_inner = di;
    m->dt_rank = c->dt_rank ? c->dt_rank : (dm + 15) / 16;
    m->V = c->state_spaces ? (c->vocab + c->pad_multiple - 1) / c->pad_multiple * c->pad_multiple : c->vocab;
    const int64_t R = m->dt_rank;
    const ms6_dtype d = c->dtype;
    char n[128];
    fill_normal(add_tensor(m, c->singular_embedding ? "backbone.embedding.weight" : "backbone.embeddings.weight", 2,
                           m->V, dm, 0), r, 0, 1, d);
    for (int64_t i = 0; i < c->n_layer; i++) {
#define NM(s) (snprintf(n, sizeof n, "backbone.layers.%lld.%s", (long long)i, s), n)
        fill_normal(add_tensor(m, NM("norm.weight"), 1, dm, 0, 0), r, 1, 0.2, d);
        fill_normal(add_tensor(m, NM("mixer.in_proj.weight"), 2, 2 * di, dm, 0), r, 0, 1 / sqrt((double)dm), d);
        if (c->use_bias) fill_normal(add_tensor(m, NM("mixer.in_proj.bias"), 1, 2 * di, 0, 0), r, 0, 0.2, d);
        fill_normal(add_tensor(m, NM("mixer.conv1d.weight"), 3, di, 1, c->d_conv), r, 0, 0.5, d);
        if (c->use_conv_bias) fill_normal(add_tensor(m, NM("mixer.conv1d.bias"), 1, di, 0, 0), r, 0, 0.2, d);
        fill_normal(add_tensor(m, NM("mixer.x_proj.weight"), 2, R + 2 * N, di, 0), r, 0, 1 / sqrt((double)di), d);
        fill_normal(add_tensor(m, NM("mixer.dt_proj.weight"), 2, di, R, 0), r, 0, 1 / sqrt((double)R), d);
        tensor *dtb = add_tensor(m, NM("mixer.dt_proj.bias"), 1, di, 0, 0);
        /* dt = softplus(bias) in [1e-3, 0.1] as in Mamba's init, then a wider spread */
        for (int64_t j = 0; j < di; j++) {
            double dt = exp(tu_uniform_range(r, log(1e-3), log(0.5)));
            dtb->v[j] = round_to(dt + log(-expm1(-dt)), d);
        }
        tensor *al = add_tensor(m, NM("mixer.A_log"), 2, di, N, 0);
        for (int64_t j = 0; j < di * N; j++) al->v[j] = round_to(log((double)(j % N + 1)) + 0.1 * tu_normal(r), d);
        fill_normal(add_tensor(m, NM("mixer.D"), 1, di, 0, 0), r, 1, 0.3, d);
        fill_normal(add_tensor(m, NM("mixer.out_proj.weight"), 2, dm, di, 0), r, 0, 1 / sqrt((double)di), d);
        if (c->use_bias) fill_normal(add_tensor(m, NM("mixer.out_proj.bias"), 1, dm, 0, 0), r, 0, 0.2, d);
#undef NM
    }
    fill_normal(add_tensor(m, "backbone.norm_f.weight", 1, dm, 0, 0), r, 1, 0.2, d);
    if (!c->tie) fill_normal(add_tensor(m, "lm_head.weight", 2, m->V, dm, 0), r, 0, 1 / sqrt((double)dm), d);
}

static void free_model(tiny_model *m) {
    for (int i = 0; i < m->n_t; i++) free(m->t[i].v);
    free(m->t);
    memset(m, 0, sizeof *m);
}

static const char *st_dtype(ms6_dtype d) { return d == MS6_DTYPE_F16 ? "F16" : d == MS6_DTYPE_BF16 ? "BF16" : "F32"; }

/* Writes tensors [first, last) of m as one safetensors file. */
static int write_st(const char *path, const tiny_model *m, int first, int last) {
    const size_t es = ms6_dtype_size(m->c.dtype);
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = first; i < last; i++) {
        const tensor *t = &m->t[i];
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(e, "dtype", st_dtype(m->c.dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < t->n_dims; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += (size_t)t->n * es;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8 + (m->c.misalign ? 1 : 0);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(js);
        return 0;
    }
    uint64_t n = padded;
    fwrite(&n, 8, 1, f);
    fwrite(js, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    free(js);
    for (int i = first; i < last; i++) {
        const tensor *t = &m->t[i];
        for (int64_t j = 0; j < t->n; j++) {
            if (m->c.dtype == MS6_DTYPE_F32) {
                float v = (float)t->v[j];
                fwrite(&v, 4, 1, f);
            } else {
                uint16_t v = m->c.dtype == MS6_DTYPE_F16 ? ms6_f32_to_f16((float)t->v[j]) : ms6_f32_to_bf16((float)t->v[j]);
                fwrite(&v, 2, 1, f);
            }
        }
    }
    return fclose(f) == 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void write_config(const char *dir, const tiny_model *m) {
    const tiny_cfg *c = &m->c;
    cJSON *j = cJSON_CreateObject();
    if (!c->state_spaces) {
        cJSON_AddStringToObject(j, "model_type", c->model_type);
        cJSON_AddNumberToObject(j, "hidden_size", (double)c->d_model);
        cJSON_AddNumberToObject(j, "intermediate_size", (double)m->d_inner);
        cJSON_AddNumberToObject(j, "state_size", (double)c->d_state);
        cJSON_AddNumberToObject(j, "num_hidden_layers", (double)c->n_layer);
        cJSON_AddNumberToObject(j, "conv_kernel", (double)c->d_conv);
        cJSON_AddNumberToObject(j, "expand", (double)c->expand);
        if (c->dt_rank) cJSON_AddNumberToObject(j, "time_step_rank", (double)c->dt_rank);
        else cJSON_AddStringToObject(j, "time_step_rank", "auto");
        cJSON_AddNumberToObject(j, "layer_norm_epsilon", 1e-5);
        cJSON_AddBoolToObject(j, "use_bias", c->use_bias);
        cJSON_AddBoolToObject(j, "use_conv_bias", c->use_conv_bias);
        cJSON_AddBoolToObject(j, "residual_in_fp32", 1);
        cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab);
        cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie);
        if (!strcmp(c->model_type, "falcon_mamba")) cJSON_AddNumberToObject(j, "mixer_rms_eps", 1e-6);
    } else {
        cJSON_AddNumberToObject(j, "d_model", (double)c->d_model);
        cJSON_AddNumberToObject(j, "n_layer", (double)c->n_layer);
        cJSON_AddNumberToObject(j, "vocab_size", (double)c->vocab);
        cJSON *s = cJSON_AddObjectToObject(j, "ssm_cfg");
        cJSON_AddNumberToObject(s, "d_state", (double)c->d_state);
        cJSON_AddNumberToObject(s, "d_conv", (double)c->d_conv);
        cJSON_AddNumberToObject(s, "expand", (double)c->expand);
        if (c->dt_rank) cJSON_AddNumberToObject(s, "dt_rank", (double)c->dt_rank);
        cJSON_AddBoolToObject(s, "bias", c->use_bias);
        cJSON_AddBoolToObject(s, "conv_bias", c->use_conv_bias);
        cJSON_AddBoolToObject(j, "rms_norm", 1);
        cJSON_AddBoolToObject(j, "residual_in_fp32", 1);
        cJSON_AddBoolToObject(j, "fused_add_norm", 1);
        cJSON_AddNumberToObject(j, "pad_vocab_size_multiple", (double)c->pad_multiple);
        cJSON_AddBoolToObject(j, "tie_embeddings", c->tie);
    }
    char *s = cJSON_Print(j);
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, s);
    free(s);
    cJSON_Delete(j);
}

static int write_model(const char *dir, const tiny_model *m) {
    mkdir(dir, 0755);
    write_config(dir, m);
    char path[1024];
    if (!m->c.shards) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return write_st(path, m, 0, m->n_t);
    }
    cJSON *idx = cJSON_CreateObject();
    cJSON_AddObjectToObject(idx, "metadata");
    cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
    int ok = 1;
    for (int s = 0; s < m->c.shards; s++) {
        int a = m->n_t * s / m->c.shards, b = m->n_t * (s + 1) / m->c.shards;
        char fname[64];
        snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, m->c.shards);
        snprintf(path, sizeof path, "%s/%s", dir, fname);
        ok &= write_st(path, m, a, b);
        for (int i = a; i < b; i++) cJSON_AddStringToObject(wm, m->t[i].name, fname);
    }
    char *js = cJSON_Print(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_text(path, js);
    free(js);
    cJSON_Delete(idx);
    return ok;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}
static void rm_tree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* ---------------- float64 reference forward ---------------- */

static double silu(double x) { return x / (1 + exp(-x)); }
static double softplus(double x) { return x > 20 ? x : log1p(exp(x)); }

static void rms(double *x, int64_t n, double eps, const double *w) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * inv * (w ? w[i] : 1);
}

static void linear(const double *x, const tensor *w, const tensor *b, double *y) {
    const int64_t N = w->shape[0], K = w->shape[1];
    for (int64_t n = 0; n < N; n++) {
        double acc = b ? b->v[n] : 0;
        for (int64_t k = 0; k < K; k++) acc += w->v[n * K + k] * x[k];
        y[n] = acc;
    }
}

/* logits (L, V) of ids[0..L) from an empty state. */
static void ref_forward(const tiny_model *m, const int32_t *ids, int64_t L, double *logits) {
    const tiny_cfg *c = &m->c;
    const int64_t dm = c->d_model, di = m->d_inner, N = c->d_state, K = c->d_conv, R = m->dt_rank, V = m->V;
    const int falcon = !strcmp(c->model_type, "falcon_mamba");
    double *res = calloc((size_t)(L * dm), sizeof(double));
    double *h = malloc(sizeof(double) * (size_t)dm), *xz = malloc(sizeof(double) * (size_t)(L * 2 * di));
    double *u = malloc(sizeof(double) * (size_t)(L * di)), *dbc = malloc(sizeof(double) * (size_t)(R + 2 * N));
    double *dt = malloc(sizeof(double) * (size_t)di), *y = malloc(sizeof(double) * (size_t)di);
    double *o = malloc(sizeof(double) * (size_t)dm), *st = malloc(sizeof(double) * (size_t)(di * N));
    const tensor *emb = find(m, c->singular_embedding ? "backbone.embedding.weight" : "backbone.embeddings.weight");
    for (int64_t t = 0; t < L; t++)
        for (int64_t i = 0; i < dm; i++) res[t * dm + i] = emb->v[ids[t] * dm + i];
    char n[128];
    for (int64_t l = 0; l < c->n_layer; l++) {
#define T(s) (snprintf(n, sizeof n, "backbone.layers.%lld.%s", (long long)l, s), find(m, n))
        const tensor *nw = T("norm.weight"), *ip = T("mixer.in_proj.weight"), *ipb = T("mixer.in_proj.bias");
        const tensor *cw = T("mixer.conv1d.weight"), *cb = T("mixer.conv1d.bias"), *xp = T("mixer.x_proj.weight");
        const tensor *dtw = T("mixer.dt_proj.weight"), *dtb = T("mixer.dt_proj.bias"), *al = T("mixer.A_log");
        const tensor *D = T("mixer.D"), *op = T("mixer.out_proj.weight"), *opb = T("mixer.out_proj.bias");
#undef T
        for (int64_t t = 0; t < L; t++) {
            memcpy(h, res + t * dm, sizeof(double) * (size_t)dm);
            rms(h, dm, 1e-5, nw->v);
            linear(h, ip, ipb, xz + t * 2 * di);
        }
        for (int64_t t = 0; t < L; t++)
            for (int64_t d = 0; d < di; d++) {
                double acc = cb ? cb->v[d] : 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t tt = t - K + 1 + k;
                    if (tt >= 0) acc += cw->v[d * K + k] * xz[tt * 2 * di + d];
                }
                u[t * di + d] = silu(acc);
            }
        memset(st, 0, sizeof(double) * (size_t)(di * N));
        for (int64_t t = 0; t < L; t++) {
            linear(u + t * di, xp, NULL, dbc);
            if (falcon) {
                rms(dbc, R, 1e-6, NULL);
                rms(dbc + R, N, 1e-6, NULL);
                rms(dbc + R + N, N, 1e-6, NULL);
            }
            linear(dbc, dtw, dtb, dt);
            for (int64_t d = 0; d < di; d++) {
                double delta = softplus(dt[d]), ud = u[t * di + d], acc = 0;
                for (int64_t s = 0; s < N; s++) {
                    double A = -exp(al->v[d * N + s]);
                    st[d * N + s] = exp(delta * A) * st[d * N + s] + delta * dbc[R + s] * ud;
                    acc += dbc[R + N + s] * st[d * N + s];
                }
                y[d] = (acc + D->v[d] * ud) * silu(xz[t * 2 * di + di + d]);
            }
            linear(y, op, opb, o);
            for (int64_t i = 0; i < dm; i++) res[t * dm + i] += o[i];
        }
    }
    const tensor *nf = find(m, "backbone.norm_f.weight"), *head = c->tie ? emb : find(m, "lm_head.weight");
    for (int64_t t = 0; t < L; t++) {
        memcpy(h, res + t * dm, sizeof(double) * (size_t)dm);
        rms(h, dm, 1e-5, nf->v);
        linear(h, head, NULL, logits + t * V);
    }
    free(res); free(h); free(xz); free(u); free(dbc); free(dt); free(y); free(o); free(st);
}

/* ---------------- checks ---------------- */

static double rel_err_f(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double rel_err_d(const float *a, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        num += (a[i] - ref[i]) * (a[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static ms6_model *load(const char *dir, ms6_backend_kind kind, int64_t chunk) {
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = kind;
    o.prefill_chunk = chunk;
    o.n_threads = 2;
    ms6_model *m = NULL;
    ms6_error err;
    ms6_status st = ms6_model_load(dir, &o, &m, &err);
    CHECK(st == MS6_STATUS_OK, "load %s: %s", dir, err.message);
    return m;
}

/* The internal batched decode path: B sequences in one state, each
 * prefilled on its own (different lengths), then stepped together with the
 * sequences in a shuffled order; every row must equal what a one-sequence
 * session gives (all_logits are the logits of one prefill of ids). */
static void batched_step(const char *label, ms6_model *m, const int32_t *ids, int64_t L, const float *all_logits,
                         tu_rng *r) {
    enum { B = 3 };
    const int64_t V = ms6_model_vocab_size(m);
    ms6_fwd_state st;
    ms6_fwd_scratch w;
    char msg[MS6_ERRMSG_SIZE];
    CHECK(ms6_fwd_state_init(m, B, &st, msg) == MS6_STATUS_OK, "%s: state: %s", label, msg);
    CHECK(ms6_fwd_scratch_init(m, 8, &w, msg) == MS6_STATUS_OK, "%s: scratch: %s", label, msg);
    int64_t pos[B];
    for (int64_t b = 0; b < B; b++) {
        pos[b] = 2 + b; /* sequence b has consumed ids[0..pos[b]) */
        CHECK(ms6_forward_chunk(m, &st, &w, b, ids, pos[b], NULL, 0, msg) == MS6_STATUS_OK, "%s: chunk: %s", label, msg);
    }
    float *lg = malloc(sizeof(float) * (size_t)(B * V));
    double worst = 0;
    for (int round = 0; round < 3; round++) {
        int64_t seqs[B] = {0, 1, 2};
        for (int k = B - 1; k > 0; k--) { /* shuffle the row order */
            int j = (int)(tu_next(r) % (uint64_t)(k + 1));
            int64_t t = seqs[k];
            seqs[k] = seqs[j];
            seqs[j] = t;
        }
        int32_t in[B];
        for (int k = 0; k < B; k++) in[k] = ids[pos[seqs[k]]];
        int32_t nx[B];
        CHECK(ms6_forward_step(m, &st, &w, seqs, in, B, lg, nx, msg) == MS6_STATUS_OK, "%s: batched step: %s", label, msg);
        for (int k = 0; k < B; k++)
            CHECK(nx[k] == ms6_argmax(lg + k * V, V), "%s: batched greedy id %d, argmax of its logits %d", label,
                  (int)nx[k], (int)ms6_argmax(lg + k * V, V));
        for (int k = 0; k < B; k++) {
            const int64_t t = pos[seqs[k]]++;
            if (t >= L) continue;
            double e = rel_err_f(lg + k * V, all_logits + t * V, V);
            if (!(e <= worst)) worst = e;
        }
    }
    CHECK(worst <= 1e-5, "%s: batched step vs one prefill: rel err %.3g", label, worst);
    free(lg);
    ms6_fwd_scratch_free(m, &w);
    ms6_fwd_state_free(m, &st);
}

static void run_case(const char *label, tiny_cfg cfg, tu_rng *r, ms6_backend_kind kind, int full) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/ms6_test_model_%d_%s", (int)getpid(), label);
    tiny_model tm = {.c = cfg};
    make_weights(&tm, r);
    CHECK(write_model(dir, &tm), "%s: writing the checkpoint", label);
    ms6_model *m = load(dir, kind, 0);
    if (!m) {
        rm_tree(dir);
        free_model(&tm);
        return;
    }
    const ms6_model_config *mc = ms6_model_get_config(m);
    const int64_t V = ms6_model_vocab_size(m);
    CHECK(V == tm.V, "%s: vocab %lld, expected %lld", label, (long long)V, (long long)tm.V);
    CHECK(mc->d_inner == tm.d_inner && mc->dt_rank == tm.dt_rank && mc->d_state == cfg.d_state &&
              mc->d_conv == cfg.d_conv && mc->n_layer == cfg.n_layer && mc->tied_embeddings == cfg.tie,
          "%s: config read back wrong", label);
    CHECK(mc->storage_dtype == cfg.dtype, "%s: storage dtype %d", label, (int)mc->storage_dtype);
    int64_t np = 0;
    for (int i = 0; i < tm.n_t; i++) np += tm.t[i].n;
    CHECK(mc->n_params == np, "%s: n_params %lld, expected %lld", label, (long long)mc->n_params, (long long)np);
    CHECK(ms6_model_weight_bytes(m) > 0, "%s: weight_bytes", label);
    /* host backend: aligned matrices are borrowed from the mapping, misaligned ones copied */
    CHECK(cfg.misalign ? m->n_owned > 0 : m->n_owned == 0, "%s: %d matrices copied (misalign %d)", label, m->n_owned,
          cfg.misalign);

    const int64_t L = 11, P = 5; /* sequence length, prefix prefilled before steps */
    int32_t ids[11];
    for (int64_t i = 0; i < L; i++) ids[i] = (int32_t)(tu_next(r) % (uint64_t)V);
    double *ref = malloc(sizeof(double) * (size_t)(L * V));
    float *all = malloc(sizeof(float) * (size_t)(L * V)), *lg = malloc(sizeof(float) * (size_t)V);
    ref_forward(&tm, ids, L, ref);

    ms6_session *s = NULL;
    ms6_error err;
    CHECK(ms6_session_create(m, &s, &err) == MS6_STATUS_OK, "%s: session: %s", label, err.message);
    /* 1. logits at every position vs float64 */
    CHECK(ms6_session_prefill(s, ids, L, all, 1) == MS6_STATUS_OK, "%s: prefill: %s", label, ms6_session_last_error(s));
    double worst = 0;
    for (int64_t t = 0; t < L; t++) {
        double e = rel_err_d(all + t * V, ref + t * V, V);
        if (!(e <= worst)) worst = e;
    }
    /* fp32 arithmetic against float64: a few 1e-7 per op, well under 1e-4 */
    CHECK(worst <= 1e-4, "%s: logits vs float64 reference: worst position rel err %.3g", label, worst);
    CHECK(ms6_session_position(s) == L, "%s: position %lld", label, (long long)ms6_session_position(s));
    fprintf(stderr, "  %-22s rel err vs float64 %.2e\n", label, worst);

    if (full) {
        /* 2. prefill(P) then steps == prefill(L) */
        CHECK(ms6_session_reset(s) == MS6_STATUS_OK, "%s: reset", label);
        CHECK(ms6_session_position(s) == 0, "%s: position after reset", label);
        CHECK(ms6_session_prefill(s, ids, P, lg, 0) == MS6_STATUS_OK, "%s: prefill P", label);
        double e = rel_err_f(lg, all + (P - 1) * V, V);
        CHECK(e <= 1e-5, "%s: last-position logits of prefill(P) vs prefill(L) row: %.3g", label, e);
        /* a second session in lockstep takes greedy steps: its ids are the
         * argmax of the first one's logits */
        ms6_session *g = NULL;
        CHECK(ms6_session_create(m, &g, &err) == MS6_STATUS_OK, "%s: session: %s", label, err.message);
        if (g) CHECK(ms6_session_prefill(g, ids, P, NULL, 0) == MS6_STATUS_OK, "%s: prefill P (greedy)", label);
        for (int64_t t = P; t < L; t++) {
            CHECK(ms6_session_step(s, ids[t], lg) == MS6_STATUS_OK, "%s: step: %s", label, ms6_session_last_error(s));
            e = rel_err_f(lg, all + t * V, V);
            CHECK(e <= 1e-5, "%s: step at %lld vs one prefill: rel err %.3g", label, (long long)t, e);
            int32_t next = -1;
            if (g)
                CHECK(ms6_session_step_greedy(g, ids[t], &next) == MS6_STATUS_OK && next == ms6_argmax(lg, V),
                      "%s: greedy step at %lld gave %d, argmax %d: %s", label, (long long)t, (int)next,
                      (int)ms6_argmax(lg, V), ms6_session_last_error(g));
        }
        if (g) CHECK(ms6_session_step_greedy(g, ids[0], NULL) == MS6_STATUS_INVALID_ARGUMENT, "%s: next NULL", label);
        /* generate_greedy(G) == G greedy steps, each fed the one before */
        if (g) {
            enum { G = 5 };
            int32_t gen[G], stp[G], id = ids[P];
            CHECK(ms6_session_reset(g) == MS6_STATUS_OK && ms6_session_prefill(g, ids, P, NULL, 0) == MS6_STATUS_OK,
                  "%s: prefill P (generate)", label);
            CHECK(ms6_session_generate_greedy(g, ids[P], G, gen) == MS6_STATUS_OK, "%s: generate_greedy: %s", label,
                  ms6_session_last_error(g));
            CHECK(ms6_session_position(g) == P + G, "%s: position after generate %lld", label,
                  (long long)ms6_session_position(g));
            CHECK(ms6_session_reset(g) == MS6_STATUS_OK && ms6_session_prefill(g, ids, P, NULL, 0) == MS6_STATUS_OK,
                  "%s: prefill P (steps)", label);
            for (int i = 0; i < G; i++) {
                CHECK(ms6_session_step_greedy(g, id, &stp[i]) == MS6_STATUS_OK, "%s: greedy step", label);
                id = stp[i];
            }
            for (int i = 0; i < G; i++)
                CHECK(gen[i] == stp[i], "%s: generate_greedy token %d is %d, greedy steps %d", label, i, (int)gen[i],
                      (int)stp[i]);
            CHECK(ms6_session_generate_greedy(g, (int32_t)V, 1, gen) == MS6_STATUS_OUT_OF_RANGE, "%s: generate id V",
                  label);
            CHECK(ms6_session_generate_greedy(g, ids[0], -1, gen) == MS6_STATUS_INVALID_ARGUMENT, "%s: count -1", label);
            CHECK(ms6_session_generate_greedy(g, ids[0], 1, NULL) == MS6_STATUS_INVALID_ARGUMENT, "%s: out NULL", label);
            CHECK(ms6_session_generate_greedy(g, ids[0], 0, NULL) == MS6_STATUS_OK && ms6_session_position(g) == P + G,
                  "%s: count 0", label);
        }
        ms6_session_free(g);
        /* 3. chunked prefill (chunk 3 and 1) == unchunked */
        for (int64_t chunk = 1; chunk <= 3; chunk += 2) {
            ms6_model *mc3 = load(dir, kind, chunk);
            ms6_session *s3 = NULL;
            if (mc3 && ms6_session_create(mc3, &s3, &err) == MS6_STATUS_OK) {
                float *all3 = malloc(sizeof(float) * (size_t)(L * V));
                CHECK(ms6_session_prefill(s3, ids, L, all3, 1) == MS6_STATUS_OK, "%s: chunked prefill", label);
                e = rel_err_f(all3, all, L * V);
                CHECK(e <= 1e-5, "%s: chunk %lld vs unchunked: rel err %.3g", label, (long long)chunk, e);
                free(all3);
            }
            ms6_session_free(s3);
            ms6_model_free(mc3);
        }
        /* 4. snapshot -> restore -> same continuation; save/load file */
        CHECK(ms6_session_reset(s) == MS6_STATUS_OK, "%s: reset", label);
        CHECK(ms6_session_prefill(s, ids, P, NULL, 0) == MS6_STATUS_OK, "%s: prefill without logits", label);
        size_t sz = ms6_session_state_size(s);
        unsigned char *snap = malloc(sz);
        CHECK(ms6_session_snapshot(s, snap, sz - 1) == MS6_STATUS_BUFFER_TOO_SMALL, "%s: small snapshot buffer", label);
        CHECK(ms6_session_snapshot(s, snap, sz) == MS6_STATUS_OK, "%s: snapshot: %s", label, ms6_session_last_error(s));
        char spath[300];
        snprintf(spath, sizeof spath, "%s/state.bin", dir);
        CHECK(ms6_session_save_state(s, spath) == MS6_STATUS_OK, "%s: save_state: %s", label, ms6_session_last_error(s));
        float *cont = malloc(sizeof(float) * (size_t)((L - P) * V));
        for (int64_t t = P; t < L; t++) ms6_session_step(s, ids[t], cont + (t - P) * V);
        for (int round = 0; round < 3; round++) {
            /* round 0: restore into the used session; 1: fresh session; 2: load from file */
            ms6_session *s2 = s;
            if (round) CHECK(ms6_session_create(m, &s2, &err) == MS6_STATUS_OK, "session");
            if (round == 2) {
                CHECK(ms6_session_load_state(s2, spath) == MS6_STATUS_OK, "%s: load_state: %s", label,
                      ms6_session_last_error(s2));
            } else {
                CHECK(ms6_session_restore(s2, snap, sz) == MS6_STATUS_OK, "%s: restore: %s", label,
                      ms6_session_last_error(s2));
            }
            CHECK(ms6_session_position(s2) == P, "%s: restored position %lld", label, (long long)ms6_session_position(s2));
            double worst_c = 0;
            for (int64_t t = P; t < L; t++) {
                ms6_session_step(s2, ids[t], lg);
                double ec = rel_err_f(lg, cont + (t - P) * V, V);
                if (!(ec <= worst_c)) worst_c = ec;
            }
            CHECK(worst_c == 0, "%s: continuation after restore (round %d) differs: %.3g", label, round, worst_c);
            if (round) ms6_session_free(s2);
        }
        /* a damaged blob is refused */
        snap[sz - 1] ^= 0x55;
        CHECK(ms6_session_restore(s, snap, sz) == MS6_STATUS_FORMAT_ERROR, "%s: damaged blob accepted", label);
        snap[0] = 'X';
        CHECK(ms6_session_restore(s, snap, sz) == MS6_STATUS_FORMAT_ERROR, "%s: bad magic accepted", label);
        free(snap);
        free(cont);
        /* 5. out-of-range id: named, status OUT_OF_RANGE, state untouched */
        CHECK(ms6_session_reset(s) == MS6_STATUS_OK, "reset");
        int32_t bad[3] = {ids[0], (int32_t)V, ids[1]};
        CHECK(ms6_session_prefill(s, bad, 3, NULL, 0) == MS6_STATUS_OUT_OF_RANGE, "%s: id V accepted", label);
        char want[64];
        snprintf(want, sizeof want, "token id %lld at position 1", (long long)V);
        CHECK(strstr(ms6_session_last_error(s), want) != NULL, "%s: message '%s'", label, ms6_session_last_error(s));
        CHECK(ms6_session_step(s, -1, lg) == MS6_STATUS_OUT_OF_RANGE, "%s: id -1 accepted", label);
        CHECK(ms6_session_position(s) == 0, "%s: position moved on a bad id", label);
        /* 6. reset == fresh */
        CHECK(ms6_session_prefill(s, ids, L, NULL, 0) == MS6_STATUS_OK, "prefill");
        CHECK(ms6_session_reset(s) == MS6_STATUS_OK, "reset");
        CHECK(ms6_session_prefill(s, ids, 1, lg, 0) == MS6_STATUS_OK, "prefill");
        e = rel_err_f(lg, all, V);
        CHECK(e == 0, "%s: logits after reset differ from a fresh session: %.3g", label, e);
    }
    if (full) batched_step(label, m, ids, L, all, r);
    ms6_session_free(s);
    ms6_model_free(m);
    free(ref);
    free(all);
    free(lg);
    rm_tree(dir);
    free_model(&tm);
}

/* A state saved by one model must not load into a model of other shapes. */
static void state_mismatch(tu_rng *r) {
    tiny_cfg a = {"mamba", 0, 16, 2, 40, 4, 4, 2, 0, 8, 0, 1, 1, MS6_DTYPE_F32, 0, 0, 0};
    tiny_cfg b = a;
    b.d_state = 8;
    char da[256], db[256];
    snprintf(da, sizeof da, "/tmp/ms6_test_model_%d_sa", (int)getpid());
    snprintf(db, sizeof db, "/tmp/ms6_test_model_%d_sb", (int)getpid());
    tiny_model ta = {.c = a}, tb = {.c = b};
    make_weights(&ta, r);
    make_weights(&tb, r);
    write_model(da, &ta);
    write_model(db, &tb);
    ms6_model *ma = load(da, MS6_BACKEND_CPU, 0), *mb = load(db, MS6_BACKEND_CPU, 0);
    ms6_session *sa = NULL, *sb = NULL;
    if (ma && mb && ms6_session_create(ma, &sa, NULL) == MS6_STATUS_OK &&
        ms6_session_create(mb, &sb, NULL) == MS6_STATUS_OK) {
        int32_t id = 3;
        ms6_session_prefill(sa, &id, 1, NULL, 0);
        size_t sz = ms6_session_state_size(sa);
        void *buf = malloc(sz);
        CHECK(ms6_session_snapshot(sa, buf, sz) == MS6_STATUS_OK, "snapshot");
        ms6_status st = ms6_session_restore(sb, buf, sz);
        CHECK(st != MS6_STATUS_OK, "state of d_state 4 restored into d_state 8");
        CHECK(strstr(ms6_session_last_error(sb), "d_state") != NULL, "message '%s' does not name d_state",
              ms6_session_last_error(sb));
        free(buf);
    }
    ms6_session_free(sa);
    ms6_session_free(sb);
    ms6_model_free(ma);
    ms6_model_free(mb);
    rm_tree(da);
    rm_tree(db);
    free_model(&ta);
    free_model(&tb);
}

/* ---------------- one model, sessions on several threads ---------------- */

typedef struct {
    ms6_model *m;
    const int32_t *ids;
    int64_t L;
    float *logits; /* (L, V): prefill of the first half, then steps */
    int ok;
} thread_job;

static void *thread_run(void *arg) {
    thread_job *j = arg;
    const int64_t V = ms6_model_vocab_size(j->m), h = j->L / 2;
    ms6_session *s = NULL;
    j->ok = ms6_session_create(j->m, &s, NULL) == MS6_STATUS_OK;
    for (int rep = 0; rep < 3 && j->ok; rep++) {
        j->ok &= ms6_session_reset(s) == MS6_STATUS_OK;
        j->ok &= ms6_session_prefill(s, j->ids, h, j->logits, 1) == MS6_STATUS_OK;
        for (int64_t t = h; t < j->L && j->ok; t++) j->ok &= ms6_session_step(s, j->ids[t], j->logits + t * V) == MS6_STATUS_OK;
    }
    ms6_session_free(s);
    return NULL;
}

/* The header promises a loaded model is read-only and may be shared by
 * sessions on several threads: 3 threads at once must give exactly what
 * one thread alone gives. */
static void shared_model_threads(tu_rng *r) {
    char dir[1024];
    tu_source_path("tests/golden/models/falcon_bf16_untied_n8_k3", dir, sizeof dir);
    if (access(dir, R_OK) != 0) return;
    ms6_model *m = load(dir, MS6_BACKEND_CPU, 4);
    if (!m) return;
    enum { NT = 3, L = 20 };
    const int64_t V = ms6_model_vocab_size(m);
    int32_t ids[NT][L];
    for (int k = 0; k < NT; k++)
        for (int t = 0; t < L; t++) ids[k][t] = (int32_t)(tu_next(r) % (uint64_t)V);
    thread_job solo[NT], par[NT];
    for (int k = 0; k < NT; k++) {
        solo[k] = (thread_job){m, ids[k], L, malloc(sizeof(float) * L * (size_t)V), 0};
        par[k] = (thread_job){m, ids[k], L, malloc(sizeof(float) * L * (size_t)V), 0};
        thread_run(&solo[k]);
    }
    pthread_t th[NT];
    for (int k = 0; k < NT; k++) pthread_create(&th[k], NULL, thread_run, &par[k]);
    for (int k = 0; k < NT; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < NT; k++) {
        CHECK(solo[k].ok && par[k].ok, "thread %d: a session call failed", k);
        CHECK(memcmp(solo[k].logits, par[k].logits, sizeof(float) * L * (size_t)V) == 0,
              "thread %d: logits differ when sessions run concurrently on one model", k);
        free(solo[k].logits);
        free(par[k].logits);
    }
    ms6_model_free(m);
}

/* ---------------- golden models ---------------- */

static int golden_one(const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    char *text = tu_read_file(path, NULL);
    if (!text) return 0;
    cJSON *g = cJSON_Parse(text);
    free(text);
    CHECK(g != NULL, "%s: not valid JSON", path);
    if (!g) return 1;
    const cJSON *jids = cJSON_GetObjectItem(g, "ids"), *jv = cJSON_GetObjectItem(g, "vocab_size");
    const cJSON *jlf = cJSON_GetObjectItem(g, "logits_file"), *jgp = cJSON_GetObjectItem(g, "greedy_prompt");
    const cJSON *jgr = cJSON_GetObjectItem(g, "greedy");
    if (!cJSON_IsArray(jids) || !cJSON_IsNumber(jv) || !cJSON_IsString(jlf)) {
        CHECK(0, "%s: missing ids / vocab_size / logits_file", path);
        cJSON_Delete(g);
        return 1;
    }
    const int64_t L = cJSON_GetArraySize(jids), V = (int64_t)jv->valuedouble;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)L);
    for (int64_t i = 0; i < L; i++) ids[i] = (int32_t)cJSON_GetArrayItem(jids, (int)i)->valuedouble;
    float *gold = malloc(sizeof(float) * (size_t)(L * V)), *all = malloc(sizeof(float) * (size_t)(L * V));
    snprintf(path, sizeof path, "%s/%s", dir, jlf->valuestring);
    FILE *f = fopen(path, "rb");
    size_t rd = f ? fread(gold, sizeof(float), (size_t)(L * V), f) : 0;
    if (f) fclose(f);
    CHECK(rd == (size_t)(L * V), "%s: %zu floats, expected %lld", path, rd, (long long)(L * V));
    ms6_model *m = load(dir, MS6_BACKEND_CPU, 0);
    ms6_session *s = NULL;
    if (m && rd == (size_t)(L * V) && ms6_session_create(m, &s, NULL) == MS6_STATUS_OK) {
        CHECK(ms6_model_vocab_size(m) == V, "%s: vocab %lld vs golden %lld", dir, (long long)ms6_model_vocab_size(m),
              (long long)V);
        CHECK(ms6_session_prefill(s, ids, L, all, 1) == MS6_STATUS_OK, "%s: prefill: %s", dir, ms6_session_last_error(s));
        double worst = 0;
        for (int64_t t = 0; t < L; t++) {
            double e = rel_err_f(all + t * V, gold + t * V, V);
            if (!(e <= worst)) worst = e;
        }
        CHECK(worst <= 1e-4, "%s: logits vs golden: worst position rel err %.3g", dir, worst);
        fprintf(stderr, "  golden %-30s rel err %.2e over %lld positions\n", dir, worst, (long long)L);
        if (cJSON_IsArray(jgp) && cJSON_IsArray(jgr) && cJSON_GetArraySize(jgp) > 0) {
            const int64_t P = cJSON_GetArraySize(jgp), G = cJSON_GetArraySize(jgr);
            int32_t *pr = malloc(sizeof(int32_t) * (size_t)P);
            float *lg = malloc(sizeof(float) * (size_t)V);
            for (int64_t i = 0; i < P; i++) pr[i] = (int32_t)cJSON_GetArrayItem(jgp, (int)i)->valuedouble;
            ms6_session_reset(s);
            ms6_session_prefill(s, pr, P, lg, 0);
            int64_t match = 0;
            for (int64_t i = 0; i < G; i++) {
                int32_t best = 0;
                for (int64_t v = 1; v < V; v++)
                    if (lg[v] > lg[best]) best = (int32_t)v;
                int32_t want = (int32_t)cJSON_GetArrayItem(jgr, (int)i)->valuedouble;
                if (best != want) {
                    CHECK(0, "%s: greedy token %lld is %d, golden %d", dir, (long long)i, best, want);
                    break;
                }
                match++;
                ms6_session_step(s, best, lg);
            }
            fprintf(stderr, "  golden %-30s greedy %lld/%lld tokens match\n", dir, (long long)match, (long long)G);
            free(pr);
            free(lg);
        }
    }
    ms6_session_free(s);
    ms6_model_free(m);
    free(ids);
    free(gold);
    free(all);
    cJSON_Delete(g);
    return 1;
}

static int goldens(void) {
    char root[1024];
    tu_source_path("tests/golden/models", root, sizeof root);
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char **names = NULL;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, sizeof *names * (size_t)(n + 1));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    int found = 0;
    for (int i = 0; i < n; i++) {
        char dir[1300];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        found += golden_one(dir);
        free(names[i]);
    }
    free(names);
    return found;
}

int main(void) {
    tu_rng r;
    tu_rng_init(&r, tu_seed("test_model"));
    /*                  type        ss  dm  nl voc  N  K ex dtr pad bias cbias tie dtype           shards sing */
    run_case("hf_f32", (tiny_cfg){"mamba", 0, 32, 2, 67, 16, 4, 2, 0, 8, 0, 1, 1, MS6_DTYPE_F32, 0, 0, 0}, &r,
             MS6_BACKEND_CPU, 1);
    run_case("hf_ref_untied_bias", (tiny_cfg){"mamba", 0, 24, 2, 50, 8, 3, 2, 5, 8, 1, 1, 0, MS6_DTYPE_F32, 0, 0, 0},
             &r, MS6_BACKEND_CPU_REF, 1);
    run_case("falcon_bf16", (tiny_cfg){"falcon_mamba", 0, 32, 2, 64, 16, 4, 2, 0, 8, 0, 1, 0, MS6_DTYPE_BF16, 0, 0, 0},
             &r, MS6_BACKEND_CPU, 1);
    run_case("f16_shards_noconvbias", (tiny_cfg){"mamba", 0, 16, 3, 48, 1, 2, 3, 0, 8, 0, 0, 1, MS6_DTYPE_F16, 3, 0, 0},
             &r, MS6_BACKEND_CPU, 0);
    run_case("state_spaces_pad", (tiny_cfg){"mamba", 1, 20, 2, 45, 32, 8, 2, 3, 16, 0, 1, 1, MS6_DTYPE_F32, 0, 1, 0},
             &r, MS6_BACKEND_CPU, 1);
    run_case("big_state", (tiny_cfg){"mamba", 0, 8, 1, 30, 256, 5, 2, 2, 8, 1, 0, 1, MS6_DTYPE_F32, 2, 0, 0}, &r,
             MS6_BACKEND_CPU, 0);
    run_case("misaligned_f32", (tiny_cfg){"mamba", 0, 16, 2, 40, 8, 4, 2, 0, 8, 0, 1, 0, MS6_DTYPE_F32, 0, 0, 1}, &r,
             MS6_BACKEND_CPU, 1);
    run_case("misaligned_bf16", (tiny_cfg){"falcon_mamba", 0, 16, 1, 40, 4, 3, 2, 0, 8, 1, 1, 1, MS6_DTYPE_BF16, 0, 0, 1},
             &r, MS6_BACKEND_CPU_REF, 0);
    state_mismatch(&r);
    shared_model_threads(&r);
    int found = goldens();
    if (!found) fprintf(stderr, "test_model: no golden models under tests/golden/models (that part skipped)\n");
    return tu_finish("test_model");
}
