/*
 * batch.c - several sequences decoded together (the ms6_batch API).
 *
 * A batch is one ms6_fwd_state with max_seqs sequences (each with its two
 * state copies, forward.c) and one scratch of max(prefill_chunk, max_seqs)
 * rows. Prefill runs one sequence at a time through ms6_forward_chunk, in
 * chunks; a step feeds one token to each of n sequences through
 * ms6_forward_step, whose ops index the state by slot, so the sequences may
 * have any lengths and any order. Everything here is above the ops table
 * and runs on every backend; on CUDA the step is replayed from a graph per
 * batch size (graph.c).
 */
#include "model/model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms6_batch {
    ms6_model *model;
    int64_t max_seqs;
    ms6_fwd_state state;
    ms6_fwd_scratch scratch;
    int64_t *position;         /* (max_seqs,), -1 = free slot */
    unsigned char *mark;       /* (max_seqs,) scratch for the distinctness check */
    char err[MS6_ERRMSG_SIZE];
};

ms6_status ms6_batch_create(ms6_model *model, int64_t max_seqs, ms6_batch **out, ms6_error *err) {
    if (!out || !model) {
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, "ms6_batch_create: model or out is NULL");
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (max_seqs < 1 || max_seqs > (1 << 20)) {
        char msg[128];
        snprintf(msg, sizeof msg, "ms6_batch_create: max_seqs = %lld, must be in 1..%d", (long long)max_seqs, 1 << 20);
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, msg);
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    ms6_batch *b = calloc(1, sizeof *b);
    if (!b) {
        ms6_error_set(err, MS6_STATUS_OUT_OF_MEMORY, "ms6_batch_create: out of memory");
        return MS6_STATUS_OUT_OF_MEMORY;
    }
    b->model = model;
    b->max_seqs = max_seqs;
    b->position = malloc(sizeof *b->position * (size_t)max_seqs);
    b->mark = calloc((size_t)max_seqs, 1);
    ms6_status st = MS6_STATUS_OK;
    if (!b->position || !b->mark) st = ms6_fmt_error(b->err, MS6_STATUS_OUT_OF_MEMORY, "ms6_batch_create: out of memory");
    for (int64_t i = 0; b->position && i < max_seqs; i++) b->position[i] = -1;
    const int64_t rows = model->prefill_chunk > max_seqs ? model->prefill_chunk : max_seqs;
    if (st == MS6_STATUS_OK) st = ms6_fwd_state_init(model, max_seqs, &b->state, b->err);
    if (st == MS6_STATUS_OK) st = ms6_fwd_scratch_init(model, rows, &b->scratch, b->err);
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, b->err);
        ms6_batch_free(b);
        return st;
    }
    *out = b;
    return MS6_STATUS_OK;
}

void ms6_batch_free(ms6_batch *b) {
    if (!b) return;
    if (b->state.cur) ms6_fwd_state_free(b->model, &b->state);
    ms6_fwd_scratch_free(b->model, &b->scratch);
    free(b->position);
    free(b->mark);
    free(b);
}

const char *ms6_batch_last_error(const ms6_batch *b) { return b ? b->err : "batch is NULL"; }

static ms6_status check_slot(ms6_batch *b, int64_t slot, const char *what) {
    if (slot < 0 || slot >= b->max_seqs)
        return ms6_fmt_error(b->err, MS6_STATUS_OUT_OF_RANGE, "%s: slot %lld is outside 0..%lld", what,
                             (long long)slot, (long long)(b->max_seqs - 1));
    if (b->position[slot] < 0)
        return ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "%s: slot %lld is not in use (ms6_batch_add first)",
                             what, (long long)slot);
    return MS6_STATUS_OK;
}

static ms6_status check_ids(ms6_batch *b, const int32_t *ids, int64_t n, const char *what) {
    const int64_t V = b->model->cfg.pub.vocab_size;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return ms6_fmt_error(b->err, MS6_STATUS_OUT_OF_RANGE, "%s: token id %d at index %lld is outside the "
                                                                  "vocabulary 0..%lld",
                                 what, (int)ids[i], (long long)i, (long long)(V - 1));
    return MS6_STATUS_OK;
}

ms6_status ms6_batch_add(ms6_batch *b, int64_t *slot) {
    if (!b) return MS6_STATUS_INVALID_ARGUMENT;
    if (!slot) return ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "batch add: slot is NULL");
    *slot = -1;
    for (int64_t i = 0; i < b->max_seqs; i++) {
        if (b->position[i] >= 0) continue;
        ms6_status st = ms6_fwd_state_reset(b->model, &b->state, i, b->err);
        if (st != MS6_STATUS_OK) return st;
        b->position[i] = 0;
        *slot = i;
        return MS6_STATUS_OK;
    }
    return ms6_fmt_error(b->err, MS6_STATUS_OUT_OF_RANGE, "batch add: all %lld slots are in use",
                         (long long)b->max_seqs);
}

ms6_status ms6_batch_remove(ms6_batch *b, int64_t slot) {
    if (!b) return MS6_STATUS_INVALID_ARGUMENT;
    ms6_status st = check_slot(b, slot, "batch remove");
    if (st != MS6_STATUS_OK) return st;
    b->position[slot] = -1;
    return MS6_STATUS_OK;
}

ms6_status ms6_batch_prefill(ms6_batch *b, int64_t slot, const int32_t *ids, int64_t n_ids, float *logits) {
    if (!b) return MS6_STATUS_INVALID_ARGUMENT;
    ms6_status st = check_slot(b, slot, "batch prefill");
    if (st != MS6_STATUS_OK) return st;
    if (!ids || n_ids < 1)
        return ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "batch prefill: %s",
                             !ids ? "ids is NULL" : "n_ids must be >= 1");
    st = check_ids(b, ids, n_ids, "batch prefill");
    if (st != MS6_STATUS_OK) return st;
    const int64_t chunk = b->model->prefill_chunk < b->scratch.rows ? b->model->prefill_chunk : b->scratch.rows;
    for (int64_t t = 0; t < n_ids; t += chunk) {
        const int64_t L = n_ids - t < chunk ? n_ids - t : chunk;
        float *lg = logits && t + L == n_ids ? logits : NULL;
        st = ms6_forward_chunk(b->model, &b->state, &b->scratch, slot, ids + t, L, lg, 0, b->err);
        if (st != MS6_STATUS_OK) return st;
        b->position[slot] += L;
    }
    return MS6_STATUS_OK;
}

static ms6_status batch_step(ms6_batch *b, const int64_t *slots, const int32_t *ids, int64_t n, float *logits,
                             int32_t *next) {
    if (!b) return MS6_STATUS_INVALID_ARGUMENT;
    if (!slots || !ids || n < 1 || n > b->max_seqs)
        return ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "batch step: %s",
                             !slots ? "slots is NULL" : !ids ? "ids is NULL" : "n must be in 1..max_seqs");
    ms6_status st = MS6_STATUS_OK;
    for (int64_t i = 0; i < n && st == MS6_STATUS_OK; i++) {
        st = check_slot(b, slots[i], "batch step");
        if (st == MS6_STATUS_OK && b->mark[slots[i]])
            st = ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "batch step: slot %lld appears twice",
                               (long long)slots[i]);
        if (st == MS6_STATUS_OK) b->mark[slots[i]] = 1;
    }
    for (int64_t i = 0; i < n; i++)
        if (slots[i] >= 0 && slots[i] < b->max_seqs) b->mark[slots[i]] = 0;
    if (st != MS6_STATUS_OK) return st;
    st = check_ids(b, ids, n, "batch step");
    if (st != MS6_STATUS_OK) return st;
    st = ms6_forward_step(b->model, &b->state, &b->scratch, slots, ids, n, logits, next, b->err);
    if (st != MS6_STATUS_OK) return st;
    for (int64_t i = 0; i < n; i++) b->position[slots[i]]++;
    return MS6_STATUS_OK;
}

ms6_status ms6_batch_step(ms6_batch *b, const int64_t *slots, const int32_t *ids, int64_t n, float *logits) {
    return batch_step(b, slots, ids, n, logits, NULL);
}

ms6_status ms6_batch_step_greedy(ms6_batch *b, const int64_t *slots, const int32_t *ids, int64_t n, int32_t *next) {
    if (b && !next) return ms6_fmt_error(b->err, MS6_STATUS_INVALID_ARGUMENT, "batch step_greedy: next is NULL");
    return batch_step(b, slots, ids, n, NULL, next);
}

int64_t ms6_batch_position(const ms6_batch *b, int64_t slot) {
    if (!b || slot < 0 || slot >= b->max_seqs) return -1;
    return b->position[slot];
}
