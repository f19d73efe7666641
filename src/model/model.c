/*
 * model.c - loads a Mamba-1 checkpoint directory onto a backend.
 *
 * config.json gives the shapes (io/config.c); every tensor the config
 * implies is looked up in the safetensors set (io/safetensors.c), its dtype
 * and shape checked, and then placed:
 *   - large matrices (embedding, in/x/dt/out_proj, lm_head) keep their
 *     storage dtype; on a host backend they are borrowed from the mapping
 *     when aligned, otherwise (device backend, odd alignment) copied into a
 *     backend buffer;
 *   - small per-channel tensors (norm weights, conv weight/bias, dt bias,
 *     D, biases) are converted to fp32, and A = -exp(A_log) is computed in
 *     fp32 once here (the scan multiplies by it every step), all into one
 *     backend buffer.
 * Both dialects of tensor names are accepted: backbone.embeddings.weight
 * (transformers) and backbone.embedding.weight (state-spaces).
 */
#include "model/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ms6_model_options_init(ms6_model_options *opts) {
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->backend = MS6_BACKEND_CPU;
    opts->dtype = -1;
    opts->max_batch = 1;
    opts->prefill_chunk = 0; /* per backend, at load */
}

static void shape_str(const int64_t *shape, int n, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* Finds `name` and checks its dtype and shape. Optional tensors return
 * NULL without a message when absent. */
static ms6_status get_tensor(ms6_model *m, const char *name, int n_dims, const int64_t *shape, int optional,
                             const ms6_st_tensor **out) {
    *out = NULL;
    const ms6_st_tensor *t = ms6_st_find(m->st, name);
    if (!t) {
        if (optional) return MS6_STATUS_OK;
        return ms6_fmt_error(m->err, MS6_STATUS_FORMAT_ERROR, "tensor '%s' is missing from %s", name, m->st->source);
    }
    const char *path = ms6_st_tensor_path(m->st, t);
    if (!t->supported)
        return ms6_fmt_error(m->err, MS6_STATUS_UNSUPPORTED,
                             "%s: tensor '%s' has dtype %s; mamba-s6 loads F32, F16 and BF16", path, name,
                             t->st_dtype);
    int same = t->n_dims == n_dims;
    for (int i = 0; same && i < n_dims; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        shape_str(shape, n_dims, want, sizeof want);
        shape_str(t->shape, t->n_dims, got, sizeof got);
        return ms6_fmt_error(m->err, MS6_STATUS_FORMAT_ERROR,
                             "%s: tensor '%s' has shape %s, expected %s from %s/config.json", path, name, got, want,
                             m->dir);
    }
    *out = t;
    return MS6_STATUS_OK;
}

/* Work list for placing the small fp32 tensors: source tensor, destination
 * field, transform. */
enum { XF_COPY = 0, XF_NEG_EXP = 1 };
typedef struct {
    const ms6_st_tensor *t;
    const float **dst;
    int xf;
} small_item;

typedef struct {
    small_item *items;
    int n, cap;
    size_t floats;
} small_list;

static int small_add(small_list *l, const ms6_st_tensor *t, const float **dst, int xf) {
    if (!t) {
        *dst = NULL;
        return 1;
    }
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 64;
        small_item *ni = realloc(l->items, sizeof *ni * (size_t)nc);
        if (!ni) return 0;
        l->items = ni;
        l->cap = nc;
    }
    l->items[l->n++] = (small_item){t, dst, xf};
    /* keep each tensor 16-float aligned inside the shared buffer */
    l->floats += ((size_t)t->n_elements + 15) & ~(size_t)15;
    return 1;
}

/* Places a big matrix: borrowed on a host backend when aligned, else copied
 * into backend memory. */
static ms6_status place_matrix(ms6_model *m, const ms6_st_tensor *t, int host, ms6_wview *out) {
    out->dtype = t->dtype;
    if (host && ((uintptr_t)t->data % t->elem_size) == 0) {
        out->ptr = t->data;
        return MS6_STATUS_OK;
    }
    void **no = realloc(m->owned, sizeof *no * (size_t)(m->n_owned + 1));
    if (!no) return ms6_fmt_error(m->err, MS6_STATUS_OUT_OF_MEMORY, "out of memory placing '%s'", t->name);
    m->owned = no;
    void *buf;
    /* on a device, matrices take the placement type (placement.c) */
    const ms6_dtype dt = host ? t->dtype : ms6_placement_dtype(m->weight_dtype, t->dtype);
    const size_t bytes = (size_t)t->n_elements * ms6_dtype_size(dt);
    ms6_status st = ms6_backend_alloc(m->be, bytes, &buf);
    if (st != MS6_STATUS_OK)
        return ms6_fmt_error(m->err, st, "cannot allocate %zu bytes for tensor '%s': %s", bytes, t->name,
                             ms6_backend_last_error(m->be));
    m->owned[m->n_owned++] = buf;
    st = ms6_placement_upload(m->be, buf, t, dt, m->err);
    if (st != MS6_STATUS_OK) return st;
    out->dtype = dt;
    out->ptr = buf;
    return MS6_STATUS_OK;
}

static ms6_status check_ops(ms6_model *m) {
    const ms6_backend_ops *o = m->be->ops;
    const char *missing = !o->alloc ? "alloc" : !o->upload ? "upload" : !o->download ? "download"
                        : !o->memzero ? "memzero" : !o->gemm ? "gemm" : !o->embed ? "embed"
                        : !o->rmsnorm ? "rmsnorm" : !o->conv1d_fwd ? "conv1d_fwd"
                        : !o->conv1d_update ? "conv1d_update" : !o->scan_fwd ? "scan_fwd"
                        : !o->state_update ? "state_update" : NULL;
    if (missing)
        return ms6_fmt_error(m->err, MS6_STATUS_UNSUPPORTED,
                             "the %s backend has no %s op yet, so it cannot run a whole model; use --backend cpu",
                             o->name, missing);
    return MS6_STATUS_OK;
}

static ms6_status load_weights(ms6_model *m) {
    const ms6_model_config *c = &m->cfg.pub;
    const int64_t dm = c->d_model, di = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank;
    const int64_t V = c->vocab_size;
    const int host = m->be->kind != MS6_BACKEND_CUDA;
    ms6_status st;
    const ms6_st_tensor *t;
    small_list sl = {0};
    float *stage = NULL;
    int64_t n_params = 0;
    size_t wbytes = 0;
#define TRY(x) do { st = (x); if (st != MS6_STATUS_OK) goto done; } while (0)
#define OOM() do { st = ms6_fmt_error(m->err, MS6_STATUS_OUT_OF_MEMORY, "out of memory loading %s", m->dir); goto done; } while (0)
#define SHAPE(...) (const int64_t[]){__VA_ARGS__}
#define COUNT(t) do { if (t) { n_params += (t)->n_elements; } } while (0)

    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) OOM();

    /* embedding: either naming convention */
    const char *emb_name = ms6_st_find(m->st, "backbone.embeddings.weight") ? "backbone.embeddings.weight"
                         : ms6_st_find(m->st, "backbone.embedding.weight") ? "backbone.embedding.weight"
                         : "backbone.embeddings.weight";
    const ms6_st_tensor *emb;
    TRY(get_tensor(m, emb_name, 2, SHAPE(V, dm), 0, &emb));
    TRY(place_matrix(m, emb, host, &m->embedding));
    COUNT(emb);
    wbytes += (size_t)dm * emb->elem_size; /* one embedding row per token */
    const ms6_st_tensor *head;
    TRY(get_tensor(m, "lm_head.weight", 2, SHAPE(V, dm), m->cfg.tie_word_embeddings, &head));
    if (head) {
        TRY(place_matrix(m, head, host, &m->lm_head));
        COUNT(head);
        wbytes += (size_t)head->n_elements * ms6_dtype_size(m->lm_head.dtype);
        m->cfg.pub.tied_embeddings = 0;
    } else {
        m->lm_head = m->embedding;
        m->cfg.pub.tied_embeddings = 1;
        wbytes += (size_t)emb->n_elements * ms6_dtype_size(m->embedding.dtype);
    }
    TRY(get_tensor(m, "backbone.norm_f.weight", 1, SHAPE(dm), 0, &t));
    if (!small_add(&sl, t, &m->norm_f, XF_COPY)) OOM();
    COUNT(t);

    for (int64_t i = 0; i < c->n_layer; i++) {
        ms6_layer_weights *L = &m->layers[i];
        char name[160];
#define LNAME(suffix) (snprintf(name, sizeof name, "backbone.layers.%lld.%s", (long long)i, suffix), name)
#define BIG(suffix, field, ...)                                                         \
    do {                                                                               \
        TRY(get_tensor(m, LNAME(suffix), 2, SHAPE(__VA_ARGS__), 0, &t));               \
        TRY(place_matrix(m, t, host, &L->field));                                      \
        COUNT(t);                                                                      \
        wbytes += (size_t)t->n_elements * ms6_dtype_size(L->field.dtype);              \
    } while (0)
#define SMALL(suffix, field, optional, xf, nd, ...)                                     \
    do {                                                                               \
        TRY(get_tensor(m, LNAME(suffix), nd, SHAPE(__VA_ARGS__), optional, &t));       \
        if (!small_add(&sl, t, &L->field, xf)) OOM();                                  \
        COUNT(t);                                                                      \
    } while (0)
        SMALL("norm.weight", norm, 0, XF_COPY, 1, dm);
        BIG("mixer.in_proj.weight", in_proj, 2 * di, dm);
        if (i == 0) m->cfg.pub.storage_dtype = t->dtype;
        if (c->use_bias) SMALL("mixer.in_proj.bias", in_proj_bias, 0, XF_COPY, 1, 2 * di);
        SMALL("mixer.conv1d.weight", conv_w, 0, XF_COPY, 3, di, 1, K);
        if (c->use_conv_bias) SMALL("mixer.conv1d.bias", conv_b, 0, XF_COPY, 1, di);
        BIG("mixer.x_proj.weight", x_proj, R + 2 * N, di);
        BIG("mixer.dt_proj.weight", dt_proj, di, R);
        SMALL("mixer.dt_proj.bias", dt_bias, 0, XF_COPY, 1, di);
        SMALL("mixer.A_log", A, 0, XF_NEG_EXP, 2, di, N);
        SMALL("mixer.D", D, 0, XF_COPY, 1, di);
        BIG("mixer.out_proj.weight", out_proj, dm, di);
        if (c->use_bias) SMALL("mixer.out_proj.bias", out_proj_bias, 0, XF_COPY, 1, dm);
#undef BIG
#undef SMALL
#undef LNAME
    }

    /* Convert the small tensors on the host, then one upload. */
    stage = calloc(sl.floats ? sl.floats : 1, sizeof(float));
    if (!stage) OOM();
    size_t off = 0;
    for (int k = 0; k < sl.n; k++) {
        const ms6_st_tensor *s = sl.items[k].t;
        for (int64_t j = 0; j < s->n_elements; j++) {
            /* unaligned-safe element load */
            float v;
            if (s->dtype == MS6_DTYPE_F32) {
                memcpy(&v, (const char *)s->data + 4 * j, 4);
            } else {
                uint16_t h;
                memcpy(&h, (const char *)s->data + 2 * j, 2);
                v = s->dtype == MS6_DTYPE_F16 ? ms6_f16_to_f32(h) : ms6_bf16_to_f32(h);
            }
            /* A = -torch.exp(self.A_log.float()) */
            stage[off + (size_t)j] = sl.items[k].xf == XF_NEG_EXP ? -expf(v) : v;
        }
        off += ((size_t)s->n_elements + 15) & ~(size_t)15;
    }
    st = ms6_backend_alloc(m->be, sl.floats * sizeof(float), &m->small);
    if (st != MS6_STATUS_OK) {
        ms6_fmt_error(m->err, st, "cannot allocate %zu bytes of small weights: %s", sl.floats * sizeof(float),
                      ms6_backend_last_error(m->be));
        goto done;
    }
    st = ms6_backend_upload(m->be, m->small, stage, sl.floats * sizeof(float));
    if (st != MS6_STATUS_OK) {
        ms6_fmt_error(m->err, st, "cannot upload small weights: %s", ms6_backend_last_error(m->be));
        goto done;
    }
    off = 0;
    for (int k = 0; k < sl.n; k++) {
        *sl.items[k].dst = (const float *)m->small + off;
        off += ((size_t)sl.items[k].t->n_elements + 15) & ~(size_t)15;
    }
    wbytes += sl.floats * sizeof(float);
    m->cfg.pub.n_params = n_params;
    m->weight_bytes = wbytes;
    st = MS6_STATUS_OK;
done:
    free(stage);
    free(sl.items);
    return st;
#undef TRY
#undef OOM
#undef SHAPE
#undef COUNT
}

void ms6_model_free(ms6_model *m) {
    if (!m) return;
    if (m->be) {
        for (int i = 0; i < m->n_owned; i++) ms6_backend_dealloc(m->be, m->owned[i]);
        ms6_backend_dealloc(m->be, m->small);
        ms6_backend_free(m->be);
    }
    free(m->owned);
    free(m->layers);
    ms6_st_close(m->st);
    free(m);
}

ms6_status ms6_model_load(const char *dir, const ms6_model_options *opts, ms6_model **out, ms6_error *err) {
    if (!out) {
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, "ms6_model_load: out is NULL");
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (!dir || !*dir) {
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, "ms6_model_load: no model directory given");
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    ms6_model_options o;
    ms6_model_options_init(&o);
    if (opts) o = *opts;
    if (o.prefill_chunk == 0)
        o.prefill_chunk = o.backend == MS6_BACKEND_CUDA ? MS6_CUDA_PREFILL_CHUNK : MS6_DEFAULT_PREFILL_CHUNK;
    ms6_model *m = calloc(1, sizeof *m);
    if (!m) {
        ms6_error_set(err, MS6_STATUS_OUT_OF_MEMORY, "ms6_model_load: out of memory");
        return MS6_STATUS_OUT_OF_MEMORY;
    }
    ms6_status st;
    if (strlen(dir) >= sizeof m->dir) {
        st = ms6_fmt_error(m->err, MS6_STATUS_INVALID_ARGUMENT, "model directory path is too long");
        goto fail;
    }
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    if (o.prefill_chunk < 1 || o.prefill_chunk > (1 << 20)) {
        st = ms6_fmt_error(m->err, MS6_STATUS_INVALID_ARGUMENT, "prefill_chunk = %lld, must be in 1..%d",
                           (long long)o.prefill_chunk, 1 << 20);
        goto fail;
    }
    m->prefill_chunk = o.prefill_chunk;
    st = ms6_placement_check(o.dtype, m->err);
    if (st != MS6_STATUS_OK) goto fail;
    m->weight_dtype = o.dtype;
    /* The safetensors set is opened first so that a missing directory is
     * reported as such, not as a missing config.json. */
    st = ms6_st_open_dir(dir, &m->st, m->err);
    if (st != MS6_STATUS_OK) goto fail;
    st = ms6_config_load(dir, &m->cfg, m->err);
    if (st != MS6_STATUS_OK) goto fail;
    ms6_backend_options bo = {o.n_threads, o.device};
    ms6_error berr;
    st = ms6_backend_create(o.backend, &bo, &m->be, &berr);
    if (st != MS6_STATUS_OK) {
        ms6_fmt_error(m->err, st, "%s", berr.message);
        goto fail;
    }
    st = check_ops(m);
    if (st != MS6_STATUS_OK) goto fail;
    st = load_weights(m);
    if (st != MS6_STATUS_OK) goto fail;
    *out = m;
    return MS6_STATUS_OK;
fail:
    ms6_error_set(err, st, m->err);
    ms6_model_free(m);
    return st;
}

const ms6_model_config *ms6_model_get_config(const ms6_model *m) { return m ? &m->cfg.pub : NULL; }
int64_t ms6_model_vocab_size(const ms6_model *m) { return m ? m->cfg.pub.vocab_size : 0; }
const char *ms6_model_last_error(const ms6_model *m) { return m ? m->err : "model is NULL"; }
size_t ms6_model_weight_bytes(const ms6_model *m) { return m ? m->weight_bytes : 0; }
