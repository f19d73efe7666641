/*
 * fast_conv.c - causal conv1d (prefill and one-step update) and RMSNorm on
 * the "cpu" backend.
 *
 * conv1d_fwd: (sequence, block of channels) chunks handed out to the
 * threads; each block of 8 channels runs the sequence with 8 channels per vector and the K-1 previous
 * inputs held in registers, bias and SiLU fused. conv1d_update and RMSNorm
 * are vectorized over channels; RMSNorm hands out blocks of rows (with
 * the residual add fused: one pass to add and sum squares, one to scale).
 * Checked by the kernel sweep of tests/test_ref_kernels.c and against the
 * reference ops in tests/test_cpu_fast.c.
 */
#include "backend/cpu/fast.h"

typedef struct {
    ms6_cpu_ctx *c;
    const void *p;
    int64_t blocks, block, dim;
} conv_job;

static void conv_chunk(void *arg, int64_t chunk, int tid) {
    const conv_job *j = arg;
    (void)tid;
    const int64_t b = chunk / j->blocks, d0 = (chunk % j->blocks) * j->block;
    j->c->k->conv(j->p, b, d0, d0 + j->block < j->dim ? d0 + j->block : j->dim);
}

ms6_status ms6_fast_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    /* chunks of 8 channels, more when the sequence is short (~16K outputs each) */
    int64_t block = 8;
    while (block < p->dim && block * (p->seqlen + 1) < 16384) block *= 2;
    conv_job j = {c, p, (p->dim + block - 1) / block, block, p->dim};
    ms6_threadpool_for(c->pool, p->batch * j.blocks, conv_chunk, &j);
    return MS6_STATUS_OK;
}

ms6_status ms6_fast_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    if (p->state_batch_indices)
        for (int64_t b = 0; b < p->batch; b++)
            if (p->state_batch_indices[b] >= p->n_state_slots)
                return ms6_backend_fail(be, MS6_STATUS_OUT_OF_RANGE,
                                        "causal_conv1d_update: state_batch_indices[%lld] = %lld, past "
                                        "n_state_slots %lld", (long long)b, (long long)p->state_batch_indices[b],
                                        (long long)p->n_state_slots);
    /* a few thousand multiply-adds per sequence: one thread */
    for (int64_t b = 0; b < p->batch; b++) {
        const int64_t slot = p->state_batch_indices ? p->state_batch_indices[b] : b;
        if (slot < 0) {
            for (int64_t d = 0; d < p->dim; d++)
                ms6_store(p->out.ptr, p->out.dtype, b * p->out.batch_stride + d * p->out.dim_stride, 0.0f);
            continue;
        }
        c->k->conv_update(p, b, slot, 0, p->dim);
    }
    return MS6_STATUS_OK;
}

typedef struct {
    ms6_cpu_ctx *c;
    const ms6_rmsnorm_params *p;
    int64_t rows; /* per chunk */
} norm_job;

static void norm_chunk(void *arg, int64_t chunk, int tid) {
    const norm_job *j = arg;
    (void)tid;
    const int64_t r0 = chunk * j->rows, r1 = r0 + j->rows < j->p->rows ? r0 + j->rows : j->p->rows;
    j->c->k->rmsnorm(j->p, r0, r1);
}

ms6_status ms6_fast_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p) {
    ms6_cpu_ctx *c = be->ctx;
    /* whole rows per chunk, ~16K elements each */
    const int64_t rows = p->dim >= 16384 ? 1 : 16384 / p->dim;
    norm_job j = {c, p, rows};
    ms6_threadpool_for(c->pool, (p->rows + rows - 1) / rows, norm_chunk, &j);
    return MS6_STATUS_OK;
}
