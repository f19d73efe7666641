/*
 * session.c - one sequence: its conv + ssm state, scratch for one prefill
 * chunk, prefill / step / reset, and the state blob.
 *
 * Prefill runs the prompt in chunks of at most model->prefill_chunk tokens
 * (the scan and conv carry their state across chunks exactly, so chunked ==
 * unchunked up to rounding), keeping scratch memory bounded whatever the
 * prompt length.
 *
 * State blob (little-endian), version 1:
 *   0   char[8] "MS6STATE"
 *   8   u32 version, u32 header bytes (96)
 *   16  i64 n_layer, d_model, d_inner, d_state, d_conv, dt_rank, vocab_size
 *   72  i64 position
 *   80  u64 payload bytes
 *   88  u64 FNV-1a 64 checksum of the payload
 *   96  payload: conv f32 (n_layer, d_inner, d_conv-1), ssm f32 (n_layer, d_inner, d_state)
 * Restoring checks every shape against the model and the checksum, so a
 * state from another model or a damaged file is a clear error.
 */
#include "model/model_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the state blob is written in host order, which must be little-endian"
#endif

#define STATE_MAGIC "MS6STATE"
#define STATE_VERSION 1u
#define STATE_HEADER 96u

struct ms6_session {
    ms6_model *model;
    ms6_fwd_state state;
    ms6_fwd_scratch scratch;
    int64_t position;
    char err[MS6_ERRMSG_SIZE];
};

ms6_status ms6_session_create(ms6_model *model, ms6_session **out, ms6_error *err) {
    if (!out || !model) {
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, "ms6_session_create: model or out is NULL");
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    ms6_session *s = calloc(1, sizeof *s);
    if (!s) {
        ms6_error_set(err, MS6_STATUS_OUT_OF_MEMORY, "ms6_session_create: out of memory");
        return MS6_STATUS_OUT_OF_MEMORY;
    }
    s->model = model;
    ms6_status st = ms6_fwd_state_init(model, 1, &s->state, s->err);
    if (st == MS6_STATUS_OK) st = ms6_fwd_scratch_init(model, model->prefill_chunk, &s->scratch, s->err);
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, s->err);
        ms6_session_free(s);
        return st;
    }
    *out = s;
    return MS6_STATUS_OK;
}

void ms6_session_free(ms6_session *s) {
    if (!s) return;
    if (s->state.cur) ms6_fwd_state_free(s->model, &s->state);
    ms6_fwd_scratch_free(s->model, &s->scratch);
    free(s);
}

const char *ms6_session_last_error(const ms6_session *s) { return s ? s->err : "session is NULL"; }

static ms6_status check_ids(ms6_session *s, const int32_t *ids, int64_t n) {
    const int64_t V = s->model->cfg.pub.vocab_size;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return ms6_fmt_error(s->err, MS6_STATUS_OUT_OF_RANGE,
                                 "token id %d at position %lld (input index %lld) is outside the vocabulary "
                                 "0..%lld of %s",
                                 (int)ids[i], (long long)(s->position + i), (long long)i, (long long)(V - 1),
                                 s->model->dir);
    return MS6_STATUS_OK;
}

ms6_status ms6_session_prefill(ms6_session *s, const int32_t *ids, int64_t n_ids, float *logits, int all_positions) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    if (!ids || n_ids < 1)
        return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "prefill: %s",
                             !ids ? "ids is NULL" : "n_ids must be >= 1");
    ms6_status st = check_ids(s, ids, n_ids);
    if (st != MS6_STATUS_OK) return st;
    const int64_t V = s->model->cfg.pub.vocab_size, chunk = s->scratch.rows;
    for (int64_t t = 0; t < n_ids; t += chunk) {
        const int64_t L = n_ids - t < chunk ? n_ids - t : chunk;
        const int last = t + L == n_ids;
        float *lg = NULL;
        if (logits && all_positions) lg = logits + t * V;
        else if (logits && last) lg = logits;
        st = ms6_forward_chunk(s->model, &s->state, &s->scratch, 0, ids + t, L, lg, all_positions, s->err);
        if (st != MS6_STATUS_OK) return st;
        s->position += L;
    }
    return MS6_STATUS_OK;
}

static ms6_status session_step(ms6_session *s, int32_t id, float *logits, int32_t *next) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    ms6_status st = check_ids(s, &id, 1);
    if (st != MS6_STATUS_OK) return st;
    const int64_t seq = 0;
    st = ms6_forward_step(s->model, &s->state, &s->scratch, &seq, &id, 1, logits, next, s->err);
    if (st != MS6_STATUS_OK) return st;
    s->position++;
    return MS6_STATUS_OK;
}

ms6_status ms6_session_step(ms6_session *s, int32_t id, float *logits) { return session_step(s, id, logits, NULL); }

ms6_status ms6_session_step_greedy(ms6_session *s, int32_t id, int32_t *next) {
    if (s && !next) return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "step_greedy: next is NULL");
    return session_step(s, id, NULL, next);
}

ms6_status ms6_session_generate_greedy(ms6_session *s, int32_t id, int64_t count, int32_t *out) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    if (count < 0 || (count > 0 && !out))
        return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "generate_greedy: %s",
                             count < 0 ? "count must be >= 0" : "out is NULL");
    ms6_status st = check_ids(s, &id, 1);
    if (st != MS6_STATUS_OK || count == 0) return st;
    st = ms6_forward_generate_greedy(s->model, &s->state, &s->scratch, 0, id, count, out, s->err);
    if (st != MS6_STATUS_OK) return st;
    s->position += count;
    return MS6_STATUS_OK;
}

ms6_status ms6_session_reset(ms6_session *s) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    ms6_status st = ms6_fwd_state_reset(s->model, &s->state, 0, s->err);
    if (st == MS6_STATUS_OK) s->position = 0;
    return st;
}

int64_t ms6_session_position(const ms6_session *s) { return s ? s->position : 0; }

static size_t conv_floats(const ms6_model_config *c) { return (size_t)(c->n_layer * c->d_inner * (c->d_conv - 1)); }
static size_t ssm_floats(const ms6_model_config *c) { return (size_t)(c->n_layer * c->d_inner * c->d_state); }

size_t ms6_session_state_size(const ms6_session *s) {
    if (!s) return 0;
    const ms6_model_config *c = &s->model->cfg.pub;
    return STATE_HEADER + sizeof(float) * (conv_floats(c) + ssm_floats(c));
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_i64(unsigned char *p, int64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static int64_t get_i64(const unsigned char *p) { int64_t v; memcpy(&v, p, 8); return v; }

ms6_status ms6_session_snapshot(ms6_session *s, void *buf, size_t size) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    const size_t need = ms6_session_state_size(s);
    if (!buf) return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "snapshot: buf is NULL");
    if (size < need)
        return ms6_fmt_error(s->err, MS6_STATUS_BUFFER_TOO_SMALL, "snapshot: buffer of %zu bytes, %zu needed", size,
                             need);
    const ms6_model_config *c = &s->model->cfg.pub;
    unsigned char *p = buf;
    float *conv = malloc(sizeof(float) * conv_floats(c)), *ssm = malloc(sizeof(float) * ssm_floats(c));
    ms6_status st = MS6_STATUS_OK;
    if (!conv || !ssm) st = ms6_fmt_error(s->err, MS6_STATUS_OUT_OF_MEMORY, "snapshot: out of memory");
    if (st == MS6_STATUS_OK) st = ms6_fwd_state_download(s->model, &s->state, 0, conv, ssm, s->err);
    if (st == MS6_STATUS_OK) {
        unsigned char *pay = p + STATE_HEADER;
        memcpy(pay, conv, sizeof(float) * conv_floats(c));
        memcpy(pay + sizeof(float) * conv_floats(c), ssm, sizeof(float) * ssm_floats(c));
        const size_t pbytes = need - STATE_HEADER;
        memset(p, 0, STATE_HEADER);
        memcpy(p, STATE_MAGIC, 8);
        put_u32(p + 8, STATE_VERSION);
        put_u32(p + 12, STATE_HEADER);
        const int64_t dims[8] = {c->n_layer, c->d_model, c->d_inner, c->d_state, c->d_conv, c->dt_rank, c->vocab_size,
                                 s->position};
        for (int i = 0; i < 8; i++) put_i64(p + 16 + 8 * i, dims[i]);
        put_i64(p + 80, (int64_t)pbytes);
        put_i64(p + 88, (int64_t)fnv1a(pay, pbytes));
    }
    free(conv);
    free(ssm);
    return st;
}

ms6_status ms6_session_restore(ms6_session *s, const void *buf, size_t size) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    if (!buf) return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "restore: buf is NULL");
    const unsigned char *p = buf;
    const ms6_model_config *c = &s->model->cfg.pub;
    if (size < STATE_HEADER || memcmp(p, STATE_MAGIC, 8))
        return ms6_fmt_error(s->err, MS6_STATUS_FORMAT_ERROR, "restore: not a mamba-s6 state blob (bad magic or %zu "
                                                              "bytes only)", size);
    if (get_u32(p + 8) != STATE_VERSION || get_u32(p + 12) != STATE_HEADER)
        return ms6_fmt_error(s->err, MS6_STATUS_UNSUPPORTED, "restore: state blob version %u, this build reads %u",
                             get_u32(p + 8), STATE_VERSION);
    static const char *names[7] = {"n_layer", "d_model", "d_inner", "d_state", "d_conv", "dt_rank", "vocab_size"};
    const int64_t have[7] = {c->n_layer, c->d_model, c->d_inner, c->d_state, c->d_conv, c->dt_rank, c->vocab_size};
    for (int i = 0; i < 7; i++) {
        int64_t v = get_i64(p + 16 + 8 * i);
        if (v != have[i])
            return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT,
                                 "restore: the state was saved from a model with %s = %lld, this model (%s) has %lld",
                                 names[i], (long long)v, s->model->dir, (long long)have[i]);
    }
    const int64_t position = get_i64(p + 72);
    const size_t need = ms6_session_state_size(s), pbytes = need - STATE_HEADER;
    if ((uint64_t)get_i64(p + 80) != pbytes || size < need || position < 0)
        return ms6_fmt_error(s->err, MS6_STATUS_FORMAT_ERROR, "restore: state blob is %zu bytes, %zu expected", size,
                             need);
    if ((uint64_t)get_i64(p + 88) != fnv1a(p + STATE_HEADER, pbytes))
        return ms6_fmt_error(s->err, MS6_STATUS_FORMAT_ERROR, "restore: state blob checksum mismatch (damaged data)");
    float *conv = malloc(sizeof(float) * conv_floats(c)), *ssm = malloc(sizeof(float) * ssm_floats(c));
    ms6_status st = MS6_STATUS_OK;
    if (!conv || !ssm) st = ms6_fmt_error(s->err, MS6_STATUS_OUT_OF_MEMORY, "restore: out of memory");
    if (st == MS6_STATUS_OK) {
        memcpy(conv, p + STATE_HEADER, sizeof(float) * conv_floats(c));
        memcpy(ssm, p + STATE_HEADER + sizeof(float) * conv_floats(c), sizeof(float) * ssm_floats(c));
        st = ms6_fwd_state_upload(s->model, &s->state, 0, conv, ssm, s->err);
    }
    if (st == MS6_STATUS_OK) s->position = position;
    free(conv);
    free(ssm);
    return st;
}

ms6_status ms6_session_save_state(ms6_session *s, const char *path) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    if (!path) return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "save_state: path is NULL");
    const size_t n = ms6_session_state_size(s);
    void *buf = malloc(n);
    if (!buf) return ms6_fmt_error(s->err, MS6_STATUS_OUT_OF_MEMORY, "save_state: out of memory");
    ms6_status st = ms6_session_snapshot(s, buf, n);
    if (st == MS6_STATUS_OK) {
        FILE *f = fopen(path, "wb");
        if (!f) {
            st = ms6_fmt_error(s->err, MS6_STATUS_IO_ERROR, "cannot write state file '%s': %s", path, strerror(errno));
        } else {
            size_t wrote = fwrite(buf, 1, n, f);
            if (fclose(f) != 0 || wrote != n)
                st = ms6_fmt_error(s->err, MS6_STATUS_IO_ERROR, "short write on state file '%s'", path);
        }
    }
    free(buf);
    return st;
}

ms6_status ms6_session_load_state(ms6_session *s, const char *path) {
    if (!s) return MS6_STATUS_INVALID_ARGUMENT;
    if (!path) return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "load_state: path is NULL");
    char *data;
    size_t len;
    ms6_status st = ms6_read_file(path, &data, &len, (size_t)1 << 40, s->err);
    if (st != MS6_STATUS_OK) return st;
    st = ms6_session_restore(s, data, len);
    if (st != MS6_STATUS_OK) {
        char tmp[MS6_ERRMSG_SIZE];
        snprintf(tmp, sizeof tmp, "%s", s->err);
        ms6_fmt_error(s->err, st, "%s: %s", path, tmp);
    }
    free(data);
    return st;
}
