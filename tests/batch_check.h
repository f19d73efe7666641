/*
 * batch_check.h - batched decode (ms6_batch) against decoding each sequence
 * alone in a session, on any backend; shared by tests/test_batch.c (CPU)
 * and tests/test_cuda_model.c (CUDA). Static functions only.
 *
 * Three prompts of different lengths are prefilled into their own slots,
 * then stepped together (all three, then a permuted subset), teacher-forced
 * with the greedy ids of the single-sequence runs, so every logits row of
 * the batch has a reference row. A removed and re-added slot starts empty.
 * Bad arguments give clear errors.
 */
#ifndef MS6_BATCH_CHECK_H
#define MS6_BATCH_CHECK_H

#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BC_SEQS 3
#define BC_STEPS 6

static double bc_rel(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Returns the worst relative difference between batch and single rows. */
static double batch_check(ms6_model *m, const char *what, tu_rng *rng, double tol) {
    const int64_t V = ms6_model_vocab_size(m);
    const int64_t lens[BC_SEQS] = {5, 1, 13};
    int32_t prompt[BC_SEQS][13], greedy[BC_SEQS][BC_STEPS];
    float *single = malloc(sizeof(float) * (size_t)(BC_SEQS * (BC_STEPS + 1) * V));
    float *lg = malloc(sizeof(float) * (size_t)(BC_SEQS * V));
    double worst = 0;
    ms6_batch *b = NULL;
    if (!single || !lg) {
        CHECK(0, "%s: out of memory", what);
        goto done;
    }
    for (int s = 0; s < BC_SEQS; s++)
        for (int64_t i = 0; i < lens[s]; i++) prompt[s][i] = (int32_t)(tu_next(rng) % (uint64_t)V);
    /* singles: row (s, t) = logits after prompt + t greedy tokens */
    for (int s = 0; s < BC_SEQS; s++) {
        ms6_session *ss = NULL;
        ms6_status st = ms6_session_create(m, &ss, NULL);
        CHECK(st == MS6_STATUS_OK, "%s: session", what);
        if (st) goto done;
        float *row = single + (size_t)(s * (BC_STEPS + 1)) * V;
        st = ms6_session_prefill(ss, prompt[s], lens[s], row, 0);
        for (int t = 0; t < BC_STEPS && !st; t++) {
            greedy[s][t] = ms6_argmax(row + (size_t)t * V, V);
            st = ms6_session_step(ss, greedy[s][t], row + (size_t)(t + 1) * V);
        }
        CHECK(st == MS6_STATUS_OK, "%s: single sequence %d: %s", what, s, ms6_session_last_error(ss));
        ms6_session_free(ss);
        if (st) goto done;
    }
    ms6_error err;
    ms6_status st = ms6_batch_create(m, 4, &b, &err);
    CHECK(st == MS6_STATUS_OK, "%s: batch create: %s", what, err.message);
    if (st) goto done;
    int64_t slot[BC_SEQS];
    for (int s = 0; s < BC_SEQS; s++) {
        st = ms6_batch_add(b, &slot[s]);
        if (!st) st = ms6_batch_prefill(b, slot[s], prompt[s], lens[s], lg);
        CHECK(st == MS6_STATUS_OK, "%s: batch prefill %d: %s", what, s, ms6_batch_last_error(b));
        if (st) goto done;
        const double e = bc_rel(lg, single + (size_t)(s * (BC_STEPS + 1)) * V, V);
        if (!(e <= worst)) worst = e;
    }
    /* steps 0..3 with all three sequences, in order */
    for (int t = 0; t < 4; t++) {
        int32_t ids[BC_SEQS];
        for (int s = 0; s < BC_SEQS; s++) ids[s] = greedy[s][t];
        st = ms6_batch_step(b, slot, ids, BC_SEQS, lg);
        CHECK(st == MS6_STATUS_OK, "%s: batch step %d: %s", what, t, ms6_batch_last_error(b));
        if (st) goto done;
        for (int s = 0; s < BC_SEQS; s++) {
            const double e = bc_rel(lg + (size_t)s * V, single + (size_t)(s * (BC_STEPS + 1) + t + 1) * V, V);
            if (!(e <= worst)) worst = e;
        }
    }
    /* steps 4..5 with sequences 2 and 0 only, in that order */
    for (int t = 4; t < BC_STEPS; t++) {
        const int64_t sl[2] = {slot[2], slot[0]};
        const int32_t ids[2] = {greedy[2][t], greedy[0][t]};
        st = ms6_batch_step(b, sl, ids, 2, lg);
        CHECK(st == MS6_STATUS_OK, "%s: batch subset step %d: %s", what, t, ms6_batch_last_error(b));
        if (st) goto done;
        const double e0 = bc_rel(lg, single + (size_t)(2 * (BC_STEPS + 1) + t + 1) * V, V);
        const double e1 = bc_rel(lg + V, single + (size_t)(0 * (BC_STEPS + 1) + t + 1) * V, V);
        if (!(e0 <= worst)) worst = e0;
        if (!(e1 <= worst)) worst = e1;
    }
    CHECK(ms6_batch_position(b, slot[0]) == lens[0] + BC_STEPS, "%s: position %lld", what,
          (long long)ms6_batch_position(b, slot[0]));
    CHECK(ms6_batch_position(b, slot[1]) == lens[1] + 4, "%s: position of the paused sequence", what);
    /* a removed and re-added slot starts from an empty state */
    CHECK(ms6_batch_remove(b, slot[1]) == MS6_STATUS_OK, "%s: remove", what);
    CHECK(ms6_batch_position(b, slot[1]) == -1, "%s: removed slot still has a position", what);
    int64_t again = -1;
    st = ms6_batch_add(b, &again);
    if (!st) st = ms6_batch_prefill(b, again, prompt[1], lens[1], lg);
    CHECK(st == MS6_STATUS_OK, "%s: re-add: %s", what, ms6_batch_last_error(b));
    if (!st) {
        const double e = bc_rel(lg, single + (size_t)(1 * (BC_STEPS + 1)) * V, V);
        if (!(e <= worst)) worst = e;
    }
    /* bad arguments */
    {
        int64_t extra, dup[2] = {slot[0], slot[0]}, bad_slot = 3;
        int32_t ids2[2] = {0, 0}, bad_id = (int32_t)V;
        CHECK(ms6_batch_add(b, &extra) == MS6_STATUS_OK, "%s: fourth slot", what);
        CHECK(ms6_batch_add(b, &extra) == MS6_STATUS_OUT_OF_RANGE, "%s: fifth slot of four accepted", what);
        CHECK(ms6_batch_step(b, dup, ids2, 2, lg) == MS6_STATUS_INVALID_ARGUMENT, "%s: duplicate slots accepted", what);
        CHECK(strstr(ms6_batch_last_error(b), "twice") != NULL, "%s: message '%s'", what, ms6_batch_last_error(b));
        CHECK(ms6_batch_remove(b, bad_slot) == MS6_STATUS_OK, "%s: remove slot 3", what);
        CHECK(ms6_batch_step(b, &bad_slot, ids2, 1, lg) == MS6_STATUS_INVALID_ARGUMENT, "%s: free slot stepped", what);
        CHECK(ms6_batch_step(b, slot, &bad_id, 1, lg) == MS6_STATUS_OUT_OF_RANGE, "%s: id %d accepted", what, bad_id);
        CHECK(ms6_batch_prefill(b, 9, ids2, 1, NULL) == MS6_STATUS_OUT_OF_RANGE, "%s: slot 9 of 4 accepted", what);
        ms6_batch *none = NULL;
        CHECK(ms6_batch_create(m, 0, &none, NULL) == MS6_STATUS_INVALID_ARGUMENT && !none, "%s: max_seqs 0", what);
    }
    CHECK(worst <= tol, "%s: batch vs single rel err %.3g > %.3g", what, worst, tol);
    fprintf(stderr, "  batch %-34s worst rel err vs single %.2e\n", what, worst);
done:
    ms6_batch_free(b);
    free(single);
    free(lg);
    return worst;
}

#endif
