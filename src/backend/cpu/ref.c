/*
 * ref.c - the CPU reference ops: plain loops in fp32 arithmetic, written to
 * be read. They are the oracle every other backend is tested against, and
 * are themselves checked against float64 loops in tests/test_ref_kernels.c.
 * The PyTorch line each block implements (mamba_ssm's selective_scan_ref,
 * causal_conv1d_ref, Hugging Face MambaMixer.slow_forward) sits above it.
 */
#include "backend/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* softplus with PyTorch's threshold: x > 20 returns x, since
 * log1p(exp(x)) == x to fp32 precision there and exp would overflow later. */
static float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

static float silu(float x) { return x / (1.0f + expf(-x)); }

static float bc_at(const ms6_bc *b, int64_t batch, int64_t g, int64_t d, int64_t n, int64_t t) {
    if (b->mode == MS6_BC_CONSTANT)
        return ms6_load(b->ptr, b->dtype, d * b->dim_stride + n * b->state_stride);
    return ms6_load(b->ptr, b->dtype,
                    batch * b->batch_stride + g * b->group_stride + n * b->state_stride + t * b->seq_stride);
}

#define ACT(a, b, d, t) ((b) * (a).batch_stride + (d) * (a).dim_stride + (t) * (a).seq_stride)

ms6_status ms6_ref_scan_fwd(ms6_backend *be, const ms6_scan_params *p) {
    (void)be;
    const int64_t N = p->d_state;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t dim_per_group = p->n_groups > 0 ? p->dim / p->n_groups : p->dim;
    float h[MS6_MAX_D_STATE], a[MS6_MAX_D_STATE];
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t d = 0; d < p->dim; d++) {
            const int64_t g = d / dim_per_group;
            for (int64_t n = 0; n < N; n++) {
                /* A = -torch.exp(A_log) is done by the caller; A is used as given */
                a[n] = p->A[d * p->A_dim_stride + n * p->A_state_stride];
                /* x = u.new_zeros((batch, dim, dstate)) if no initial state */
                h[n] = p->initial_state ? p->initial_state[b * sbs + d * sds + n] : 0.0f;
            }
            const float Dd = p->D ? p->D[d] : 0.0f;
            const float bias = p->delta_bias ? p->delta_bias[d] : 0.0f;
            for (int64_t t = 0; t < p->seqlen; t++) {
                const float u = ms6_load(p->u.ptr, p->u.dtype, ACT(p->u, b, d, t));
                /* delta = delta + delta_bias[..., None] */
                float dt = ms6_load(p->delta.ptr, p->delta.dtype, ACT(p->delta, b, d, t)) + bias;
                /* if delta_softplus: delta = F.softplus(delta) */
                if (p->delta_softplus) dt = softplus(dt);
                float y = 0.0f;
                for (int64_t n = 0; n < N; n++) {
                    /* deltaA = torch.exp(torch.einsum('bdl,dn->bdln', delta, A)) */
                    const float dA = expf(dt * a[n]);
                    /* deltaB_u = torch.einsum('bdl,bnl,bdl->bdln', delta, B, u) */
                    const float dBu = dt * bc_at(&p->B, b, g, d, n, t) * u;
                    /* x = deltaA[:, :, i] * x + deltaB_u[:, :, i] */
                    h[n] = dA * h[n] + dBu;
                    /* y = torch.einsum('bdn,bn->bd', x, C[:, :, i]) */
                    y += h[n] * bc_at(&p->C, b, g, d, n, t);
                }
                /* out = y + u * rearrange(D, "d -> d 1") */
                y += Dd * u;
                /* out = out * F.silu(z) */
                if (p->z.ptr) y *= silu(ms6_load(p->z.ptr, p->z.dtype, ACT(p->z, b, d, t)));
                ms6_store(p->out.ptr, p->out.dtype, ACT(p->out, b, d, t), y);
            }
            /* last_state = x */
            if (p->final_state)
                for (int64_t n = 0; n < N; n++) p->final_state[b * sbs + d * sds + n] = h[n];
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_state_update(ms6_backend *be, const ms6_state_update_params *p) {
    const int64_t N = p->d_state;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t dim_per_group = p->n_groups > 0 ? p->dim / p->n_groups : p->dim;
    for (int64_t b = 0; b < p->batch; b++) {
        int64_t slot = b;
        if (p->state_batch_indices) {
            slot = p->state_batch_indices[b];
            if (slot >= p->n_state_slots)
                return ms6_backend_fail(be, MS6_STATUS_OUT_OF_RANGE,
                                        "selective_state_update: state_batch_indices[%lld] = %lld, "
                                        "past n_state_slots %lld", (long long)b, (long long)slot,
                                        (long long)p->n_state_slots);
        }
        for (int64_t d = 0; d < p->dim; d++) {
            const int64_t o = b * p->out.batch_stride + d * p->out.dim_stride;
            if (slot < 0) { /* padding slot: zero output, state untouched */
                ms6_store(p->out.ptr, p->out.dtype, o, 0.0f);
                continue;
            }
            const int64_t g = d / dim_per_group;
            float *h = p->state + slot * sbs + d * sds;
            const float x = ms6_load(p->x.ptr, p->x.dtype, b * p->x.batch_stride + d * p->x.dim_stride);
            /* dt = dt + dt_bias; dt = F.softplus(dt) if dt_softplus */
            float dt = ms6_load(p->dt.ptr, p->dt.dtype, b * p->dt.batch_stride + d * p->dt.dim_stride);
            if (p->dt_bias) dt += p->dt_bias[d];
            if (p->dt_softplus) dt = softplus(dt);
            float y = 0.0f;
            for (int64_t n = 0; n < N; n++) {
                /* dA = torch.exp(rearrange(dt, "b d -> b d 1") * A) */
                const float dA = expf(dt * p->A[d * p->A_dim_stride + n * p->A_state_stride]);
                /* dB = rearrange(dt, "b d -> b d 1") * rearrange(B, "b n -> b 1 n") */
                const float dB = dt * bc_at(&p->B, b, g, d, n, 0);
                /* state.copy_(state * dA + dB * rearrange(x, "b d -> b d 1")) */
                h[n] = h[n] * dA + dB * x;
                /* out = torch.einsum("bdn,bn->bd", state, C) */
                y += h[n] * bc_at(&p->C, b, g, d, n, 0);
            }
            /* out += x * D */
            if (p->D) y += x * p->D[d];
            /* out = out * F.silu(z) */
            if (p->z.ptr) y *= silu(ms6_load(p->z.ptr, p->z.dtype, b * p->z.batch_stride + d * p->z.dim_stride));
            ms6_store(p->out.ptr, p->out.dtype, o, y);
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p) {
    const int64_t K = p->d_conv, W = K - 1;
    const int64_t ws = p->weight_dim_stride ? p->weight_dim_stride : K;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : W;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    /* window = [initial_state (K-1 values), x[0..L)]; index j >= W is x[j-W] */
    float *win = malloc(sizeof(float) * (size_t)(W + p->seqlen));
    if (!win) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "causal_conv1d_fwd: out of memory");
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t d = 0; d < p->dim; d++) {
            /* x = torch.cat([initial_states, x], dim=-1) (zeros without initial state) */
            for (int64_t k = 0; k < W; k++)
                win[k] = p->initial_state ? p->initial_state[b * sbs + d * sds + k] : 0.0f;
            for (int64_t t = 0; t < p->seqlen; t++)
                win[W + t] = ms6_load(p->x.ptr, p->x.dtype, ACT(p->x, b, d, t));
            const float *w = p->weight + d * ws;
            const float bias = p->bias ? p->bias[d] : 0.0f;
            for (int64_t t = 0; t < p->seqlen; t++) {
                /* out = F.conv1d(x, weight.unsqueeze(1), bias, padding=0, groups=dim) */
                float c = bias;
                for (int64_t k = 0; k < K; k++) c += w[k] * win[t + k];
                /* out = F.silu(out) if activation */
                if (p->activation) c = silu(c);
                ms6_store(p->out.ptr, p->out.dtype, ACT(p->out, b, d, t), c);
            }
            /* final_states = x[..., -(K-1):] */
            if (p->final_state)
                for (int64_t k = 0; k < W; k++) p->final_state[b * sbs + d * sds + k] = win[p->seqlen + k];
        }
    }
    free(win);
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p) {
    const int64_t K = p->d_conv, W = K - 1;
    const int64_t ws = p->weight_dim_stride ? p->weight_dim_stride : K;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : W;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    for (int64_t b = 0; b < p->batch; b++) {
        int64_t slot = b;
        if (p->state_batch_indices) {
            slot = p->state_batch_indices[b];
            if (slot >= p->n_state_slots)
                return ms6_backend_fail(be, MS6_STATUS_OUT_OF_RANGE,
                                        "causal_conv1d_update: state_batch_indices[%lld] = %lld, past "
                                        "n_state_slots %lld", (long long)b, (long long)slot,
                                        (long long)p->n_state_slots);
        }
        for (int64_t d = 0; d < p->dim; d++) {
            const int64_t o = b * p->out.batch_stride + d * p->out.dim_stride;
            if (slot < 0) {
                ms6_store(p->out.ptr, p->out.dtype, o, 0.0f);
                continue;
            }
            float *s = p->state + slot * sbs + d * sds;
            const float *w = p->weight + d * ws;
            const float x = ms6_load(p->x.ptr, p->x.dtype, b * p->x.batch_stride + d * p->x.dim_stride);
            /* out = torch.sum(torch.cat([conv_state, x]) * weight, dim=-1) + bias */
            float c = p->bias ? p->bias[d] : 0.0f;
            for (int64_t k = 0; k < W; k++) c += w[k] * s[k];
            c += w[W] * x;
            /* conv_state.copy_(torch.roll(conv_state, shifts=-1)); conv_state[:, :, -1] = x */
            for (int64_t k = 0; k + 1 < W; k++) s[k] = s[k + 1];
            s[W - 1] = x;
            if (p->activation) c = silu(c);
            ms6_store(p->out.ptr, p->out.dtype, o, c);
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p) {
    (void)be;
    for (int64_t r = 0; r < p->rows; r++) {
        float *res = p->residual ? p->residual + r * p->residual_row_stride : NULL;
        /* residual = (x + residual) if residual is not None else x  (in fp32) */
        if (res && p->add_x)
            for (int64_t i = 0; i < p->dim; i++)
                res[i] += ms6_load(p->x, p->x_dtype, r * p->x_row_stride + i);
        float ss = 0.0f;
        for (int64_t i = 0; i < p->dim; i++) {
            const float v = res ? res[i] : ms6_load(p->x, p->x_dtype, r * p->x_row_stride + i);
            ss += v * v;
        }
        /* variance = x.pow(2).mean(-1); x = x * torch.rsqrt(variance + eps) */
        const float inv = 1.0f / sqrtf(ss / (float)p->dim + p->eps);
        for (int64_t i = 0; i < p->dim; i++) {
            const float v = res ? res[i] : ms6_load(p->x, p->x_dtype, r * p->x_row_stride + i);
            /* return weight * x */
            const float w = p->weight ? p->weight[i] : 1.0f;
            ms6_store(p->out, p->out_dtype, r * p->out_row_stride + i, v * inv * w);
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_gemm(ms6_backend *be, const ms6_gemm_params *p) {
    (void)be;
    for (int64_t m = 0; m < p->M; m++) {
        for (int64_t n = 0; n < p->N; n++) {
            /* y = F.linear(x, W, bias) = x @ W.T + bias */
            float acc = 0.0f;
            for (int64_t k = 0; k < p->K; k++)
                acc += ms6_load(p->x, p->x_dtype, m * p->ldx + k) * ms6_load(p->w, p->w_dtype, n * p->ldw + k);
            if (p->bias) acc += p->bias[n];
            if (p->accumulate) acc += ms6_load(p->y, p->y_dtype, m * p->ldy + n);
            ms6_store(p->y, p->y_dtype, m * p->ldy + n, acc);
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_ref_embed(ms6_backend *be, const ms6_embed_params *p) {
    (void)be;
    for (int64_t i = 0; i < p->n; i++) {
        /* hidden = self.embeddings(input_ids) */
        const int64_t row = p->ids[i];
        for (int64_t j = 0; j < p->dim; j++)
            ms6_store(p->out, p->out_dtype, i * p->ldo + j, ms6_load(p->table, p->table_dtype, row * p->dim + j));
    }
    return MS6_STATUS_OK;
}

/* ---- host memory and the two CPU backends ---- */

ms6_status ms6_host_alloc(ms6_backend *be, size_t bytes, void **out) {
    *out = malloc(bytes ? bytes : 1);
    if (!*out) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "out of host memory allocating %zu bytes", bytes);
    return MS6_STATUS_OK;
}
void ms6_host_dealloc(ms6_backend *be, void *ptr) { (void)be; free(ptr); }
ms6_status ms6_host_copy(ms6_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
    return MS6_STATUS_OK;
}
ms6_status ms6_host_memzero(ms6_backend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
    return MS6_STATUS_OK;
}
ms6_status ms6_host_nop(ms6_backend *be) { (void)be; return MS6_STATUS_OK; }

static const ms6_backend_ops ref_ops = {
    .name = "cpu-ref",
    .alloc = ms6_host_alloc,
    .dealloc = ms6_host_dealloc,
    .upload = ms6_host_copy,
    .download = ms6_host_copy,
    .memzero = ms6_host_memzero,
    .synchronize = ms6_host_nop,
    .scan_fwd = ms6_ref_scan_fwd,
    .state_update = ms6_ref_state_update,
    .conv1d_fwd = ms6_ref_conv1d_fwd,
    .conv1d_update = ms6_ref_conv1d_update,
    .rmsnorm = ms6_ref_rmsnorm,
    .gemm = ms6_ref_gemm,
    .embed = ms6_ref_embed,
};

ms6_status ms6_cpu_ref_init(ms6_backend *be) {
    be->ops = &ref_ops;
    return MS6_STATUS_OK;
}
