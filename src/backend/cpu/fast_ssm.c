/*
 * fast_ssm.c - selective scan (prefill) and selective state update (decode)
 * on the "cpu" backend.
 *
 * Scan: the work is (sequence, block of channels) chunks, handed out to the
 * threads; each block of 8 channels runs the whole sequence with the
 * 8 channels in the lanes of one vector (token-major activations put 8
 * consecutive channels of one step next to each other), its N states in
 * per-thread scratch, and B_t, C_t broadcast once per step. Every channel is
 * computed the same way whichever thread runs it.
 *
 * State update: (sequence, block of 64+ channels) chunks; per channel the N
 * states are the vector lanes (8 at a time), with dt, softplus and the SiLU
 * gate computed first for 8 channels at a time.
 *
 * Both are checked against float64 loops by tests/test_ref_kernels.c (the
 * sweep of tests/kernel_harness.c) and against the reference ops in
 * tests/test_cpu_fast.c.
 */
#include "backend/cpu/fast.h"

typedef struct {
    ms6_cpu_ctx *c;
    const void *p;
    int64_t blocks, block, dim; /* per batch: blocks of `block` channels */
} unit_job;

static void scan_chunk(void *arg, int64_t chunk, int tid) {
    const unit_job *j = arg;
    const int64_t b = chunk / j->blocks, d0 = (chunk % j->blocks) * j->block;
    const int64_t d1 = d0 + j->block < j->dim ? d0 + j->block : j->dim;
    j->c->k->scan(j->p, b, d0, d1, j->c->scratch[tid]);
}

ms6_status ms6_fast_scan_fwd(ms6_backend *be, const ms6_scan_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    if (p->seqlen == 0) {
        /* nothing to scan: the final state is the initial one (or zeros) */
        if (p->final_state) {
            const int64_t N = p->d_state;
            const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
            const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
            for (int64_t b = 0; b < p->batch; b++)
                for (int64_t d = 0; d < p->dim; d++)
                    for (int64_t n = 0; n < N; n++)
                        p->final_state[b * sbs + d * sds + n] =
                            p->initial_state ? p->initial_state[b * sbs + d * sds + n] : 0.0f;
        }
        return MS6_STATUS_OK;
    }
    /* chunks of 16 channels (two vectors: the 16-channel path of the
     * kernel, and whole 64-byte lines of fp32 token-major activations; 8
     * for a narrower dim) of one sequence; more channels per chunk when the
     * sequence is short, to keep a chunk above ~32K state updates. With 8,
     * the common prefill never reached the 16-channel path and each step
     * read half lines, the other half waiting for another chunk (measured,
     * 130m shape, 512-token prefill, one thread: the 24 scans 400-528 ms
     * with 8, 325-370 with 16; docs/cpu-backend.md). */
    int64_t block = p->dim >= 16 ? 16 : 8;
    while (block < p->dim && block * p->seqlen * p->d_state < 32768) block *= 2;
    unit_job j = {c, p, (p->dim + block - 1) / block, block, p->dim};
    ms6_threadpool_for(c->pool, p->batch * j.blocks, scan_chunk, &j);
    return MS6_STATUS_OK;
}

static void update_chunk(void *arg, int64_t chunk, int tid) {
    const unit_job *j = arg;
    const ms6_state_update_params *p = j->p;
    const int64_t b = chunk / j->blocks, d0 = (chunk % j->blocks) * j->block;
    const int64_t d1 = d0 + j->block < j->dim ? d0 + j->block : j->dim;
    if (p->state_batch_indices && p->state_batch_indices[b] < 0) {
        /* padding slot: zero output, state untouched */
        for (int64_t d = d0; d < d1; d++)
            ms6_store(p->out.ptr, p->out.dtype, b * p->out.batch_stride + d * p->out.dim_stride, 0.0f);
        return;
    }
    j->c->k->state_update(p, b, d0, d1, j->c->scratch[tid]);
}

ms6_status ms6_fast_state_update(ms6_backend *be, const ms6_state_update_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    if (p->state_batch_indices)
        for (int64_t b = 0; b < p->batch; b++)
            if (p->state_batch_indices[b] >= p->n_state_slots)
                return ms6_backend_fail(be, MS6_STATUS_OUT_OF_RANGE,
                                        "selective_state_update: state_batch_indices[%lld] = %lld, past "
                                        "n_state_slots %lld", (long long)b, (long long)p->state_batch_indices[b],
                                        (long long)p->n_state_slots);
    /* chunks of 64 channels, or more when N is small (~4K state updates each:
     * a decode step of the 130m shape gives 6 chunks per layer, so two
     * threads end the op together) */
    int64_t block = 64;
    while (block < p->dim && block * p->d_state < 4096) block *= 2;
    unit_job j = {c, p, (p->dim + block - 1) / block, block, p->dim};
    ms6_threadpool_for(c->pool, p->batch * j.blocks, update_chunk, &j);
    return MS6_STATUS_OK;
}
