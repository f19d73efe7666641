/*
 * backend.h - the ops table every backend implements.
 *
 * The model's forward pass (src/model/forward.c) is written once above this
 * table. Ops work at the granularity of fused operations; an op a backend
 * does not have is NULL. The public kernel entry points validate their
 * parameter structs once (validate.c) before calling an op, so ops may
 * assume valid arguments.
 */
#ifndef MS6_BACKEND_H
#define MS6_BACKEND_H

#include "core/internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y (M, N) = x (M, K) . W^T (+ bias) (+ y if accumulate).
 * x row m at x + m*ldx; W is a PyTorch Linear weight (N, K), row n at
 * w + n*ldw; y row m at y + m*ldy. Arithmetic in fp32. */
typedef struct ms6_gemm_params {
    int64_t M, N, K;
    const void *x;   ms6_dtype x_dtype; int64_t ldx;
    const void *w;   ms6_dtype w_dtype; int64_t ldw;
    const float *bias;                  /* (N,), optional */
    void *y;         ms6_dtype y_dtype; int64_t ldy;
    int accumulate;
} ms6_gemm_params;

/* out row i (fp32, ldo) = table[ids[i]] (vocab, dim) of table_dtype.
 * ids are checked by the caller. */
typedef struct ms6_embed_params {
    int64_t n, dim;
    const int32_t *ids;                 /* host or device, as the backend wants */
    const void *table; ms6_dtype table_dtype;
    void *out; ms6_dtype out_dtype; int64_t ldo;
} ms6_embed_params;

/* One Mamba mixer layer of a decode step for n sequences, fused (optional
 * op, NULL where absent): residual rows are RMSNorm'ed (weight norm, eps),
 * then in_proj, conv update (+ bias, SiLU), x_proj, dt_proj + dt_bias +
 * softplus, state update, D skip and SiLU(z) gate, out_proj (+ bias), and
 * the result is added to residual in place (fp32). The conv and ssm state of
 * sequence b is slot slots[b]: conv_state + slot * conv_slot_stride holds
 * (d_inner, d_conv-1), ssm_state + slot * ssm_slot_stride (d_inner,
 * d_state), both fp32, updated in place. xz (n, 2*d_inner), u (n, d_inner),
 * dbc (n, dt_rank + 2*d_state) and y (n, d_inner) are fp32 scratch; dbc
 * and the MS6_DBC_EXTRA floats after it (the op's own counters) must be
 * zero on entry and are zero again on return. The four
 * matrices share w_dtype. With check_only the op launches nothing and
 * returns MS6_STATUS_OK when it can run these shapes (MS6_STATUS_UNSUPPORTED
 * otherwise: the caller then uses the unfused ops). */
#define MS6_DBC_EXTRA 1024
typedef struct ms6_mixer_step_params {
    int check_only;
    int64_t n, d_model, d_inner, d_state, dt_rank, d_conv;
    float eps;
    float *residual;                    /* (n, d_model) */
    const float *norm;                  /* (d_model,) */
    ms6_dtype w_dtype;
    const void *in_proj;  const float *in_proj_bias;   /* (2*d_inner, d_model), bias optional */
    const float *conv_w;  const float *conv_b;         /* (d_inner, d_conv), bias optional */
    const void *x_proj;                                /* (dt_rank + 2*d_state, d_inner) */
    const void *dt_proj;  const float *dt_bias;        /* (d_inner, dt_rank), bias optional */
    const float *A, *D;                                /* (d_inner, d_state), (d_inner,) */
    const void *out_proj; const float *out_proj_bias;  /* (d_model, d_inner), bias optional */
    float *conv_state;    int64_t conv_slot_stride;
    float *ssm_state;     int64_t ssm_slot_stride;
    const int32_t *slots;               /* (n,) backend memory */
    float *xz, *u, *dbc, *y;
} ms6_mixer_step_params;

/* out row b (n rows, ldo) = (RMSNorm(x row b) * norm) . W^T, W (rows, dim):
 * the decode head (norm_f + lm_head) in one optional op; check_only as above. */
typedef struct ms6_norm_gemv_params {
    int check_only;
    int64_t n, dim, rows;
    const float *x;                     /* (n, dim) fp32 */
    const float *norm;
    float eps;
    const void *w; ms6_dtype w_dtype;
    float *out; int64_t ldo;
    /* optional, n == 1 (NULL: none): the argmax of the out row fed back as
     * argmax_feed does it (feed_ids[0], feed_log[feed_pos[0]++]); feed_pos
     * is MS6_FEED_POS ints of backend memory, zero apart from [0], and the
     * op leaves them so. Where the backend cannot, UNSUPPORTED. */
    int32_t *feed_ids, *feed_log, *feed_pos;
} ms6_norm_gemv_params;
#define MS6_FEED_POS 8

/* A whole decode step in one optional op: every layer's mixer (layers[i] as
 * for mixer_step, all with the same n, shapes, residual, slots and y) and
 * the head; check_only as above. */
typedef struct ms6_decode_step_params {
    int check_only;
    int64_t n_layer;
    const ms6_mixer_step_params *layers; /* (n_layer,) host memory */
    ms6_norm_gemv_params head;
} ms6_decode_step_params;

/* The SSM part of a batched decode step in one optional op (NULL where
 * absent): for sequence b of n, with state slot s = slots[b], and channel c
 * of d_inner,
 *   delta   = softplus(dt_proj[c, :] . dbc[b, 0:dt_rank] + dt_bias[c])
 *   h       = state[s, c, :] = exp(delta * A[c, :]) * h + delta * u[b, c] * B[b, :]
 *   y[b, c] = (h . C[b, :] + D[c] * u[b, c]) * silu(z[b, c])
 * with B = dbc[b, dt_rank : dt_rank + d_state] and C = dbc[b, dt_rank +
 * d_state : dt_rank + 2*d_state]: the unfused step's dt_proj gemm and
 * state_update (softplus on, dt_bias, one group) in one pass, without the
 * delta buffer. dbc is x_proj's output as the step leaves it (falcon_mamba:
 * after its RMSNorms on dt, B and C). Activations are fp32, row b of each
 * at ptr + b * ld; dt_bias, D and z are optional (z NULL: no gate). The
 * state is fp32, slot s at state + s * slot_stride holding (d_inner,
 * d_state), updated in place; a negative slot is padding (y row = 0, no
 * state touched); a slot >= n_slots touches no state and gives a NaN y row
 * (it cannot be reported without a host round trip). With check_only the
 * op launches nothing and returns MS6_STATUS_OK when it can run these
 * shapes, MS6_STATUS_UNSUPPORTED otherwise (the caller then uses dt_proj +
 * state_update). */
typedef struct ms6_ssm_step_params {
    int check_only;
    int64_t n, d_inner, d_state, dt_rank;
    const float *dbc; int64_t ld_dbc;              /* (n, ld_dbc): dt | B | C, ld_dbc >= dt_rank + 2*d_state */
    const float *u;   int64_t ld_u;                /* (n, ld_u): the conv output */
    const float *z;   int64_t ld_z;                /* (n, ld_z): the gate, optional */
    const void *dt_proj; ms6_dtype dt_proj_dtype;  /* (d_inner, dt_rank) row-major */
    const float *dt_bias;                          /* (d_inner,), optional */
    const float *A;                                /* (d_inner, d_state) row-major */
    const float *D;                                /* (d_inner,), optional */
    float *state; int64_t slot_stride, n_slots;
    const int32_t *slots;                          /* (n,) backend memory */
    float *y;         int64_t ld_y;                /* (n, ld_y) */
} ms6_ssm_step_params;

typedef struct ms6_backend_ops {
    const char *name;
    void (*destroy)(ms6_backend *be);
    ms6_status (*alloc)(ms6_backend *be, size_t bytes, void **out);
    void (*dealloc)(ms6_backend *be, void *ptr);
    ms6_status (*upload)(ms6_backend *be, void *dst, const void *src, size_t bytes);
    ms6_status (*download)(ms6_backend *be, void *dst, const void *src, size_t bytes);
    ms6_status (*memzero)(ms6_backend *be, void *dst, size_t bytes);
    ms6_status (*synchronize)(ms6_backend *be);
    ms6_status (*set_stream)(ms6_backend *be, void *stream);

    ms6_status (*scan_fwd)(ms6_backend *be, const ms6_scan_params *p);
    ms6_status (*state_update)(ms6_backend *be, const ms6_state_update_params *p);
    ms6_status (*conv1d_fwd)(ms6_backend *be, const ms6_conv1d_params *p);
    ms6_status (*conv1d_update)(ms6_backend *be, const ms6_conv1d_update_params *p);
    ms6_status (*rmsnorm)(ms6_backend *be, const ms6_rmsnorm_params *p);
    ms6_status (*gemm)(ms6_backend *be, const ms6_gemm_params *p);
    ms6_status (*embed)(ms6_backend *be, const ms6_embed_params *p);
    /* optional fused decode ops (NULL: the step uses the ops above) */
    ms6_status (*mixer_step)(ms6_backend *be, const ms6_mixer_step_params *p);
    ms6_status (*norm_gemv)(ms6_backend *be, const ms6_norm_gemv_params *p);
    /* out[r] (host) = index of the largest value of row r of x (rows, n),
     * fp32 in backend memory: ties to the smaller index, NaN below every
     * number, as ms6_argmax. Optional: where NULL, backend memory is host
     * memory and the caller runs ms6_argmax. */
    ms6_status (*argmax_rows)(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *out);
    /* The same argmax kept on the device, for decode loops that feed each
     * token back without the host: ids[r] (backend memory) = the index of
     * row r, log[pos[0] * rows + r] too, then pos[0] += 1; pos (2 ints,
     * backend memory, MS6_FEED_POS ints zero apart from [0]) is the op's.
     * Optional (NULL: the caller steps with argmax_rows). No host transfer,
     * so it can be captured. */
    ms6_status (*argmax_feed)(ms6_backend *be, const float *x, int64_t rows, int64_t n, int32_t *ids, int32_t *log,
                              int32_t *pos);
    /* optional: the whole fused decode step (NULL: mixer_step per layer and norm_gemv) */
    ms6_status (*decode_step)(ms6_backend *be, const ms6_decode_step_params *p);
    /* optional: dt_proj + state update + gate of a batched decode step
     * (NULL: the dt_proj gemm and state_update) */
    ms6_status (*ssm_step)(ms6_backend *be, const ms6_ssm_step_params *p);
} ms6_backend_ops;

struct ms6_backend {
    ms6_backend_kind kind;
    const ms6_backend_ops *ops;
    void *ctx;          /* backend-private */
    int n_threads;
    char err[MS6_ERRMSG_SIZE];
};

/* Records a message on the backend and returns status. */
ms6_status ms6_backend_fail(ms6_backend *be, ms6_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Argument checks shared by every backend; write a message to msg. */
ms6_status ms6_validate_scan(const ms6_scan_params *p, char *msg);
ms6_status ms6_validate_state_update(const ms6_state_update_params *p, char *msg);
ms6_status ms6_validate_conv1d(const ms6_conv1d_params *p, char *msg);
ms6_status ms6_validate_conv1d_update(const ms6_conv1d_update_params *p, char *msg);
ms6_status ms6_validate_rmsnorm(const ms6_rmsnorm_params *p, char *msg);
ms6_status ms6_validate_gemm(const ms6_gemm_params *p, char *msg);

/* Backend constructors (each fills be->ops and be->ctx). */
ms6_status ms6_cpu_ref_init(ms6_backend *be);
ms6_status ms6_cpu_init(ms6_backend *be);
#ifdef MS6_HAVE_CUDA
ms6_status ms6_cuda_init(ms6_backend *be, int device);
#endif

/* The reference ops themselves (src/backend/cpu/ref.c): the oracle. */
ms6_status ms6_ref_scan_fwd(ms6_backend *be, const ms6_scan_params *p);
ms6_status ms6_ref_state_update(ms6_backend *be, const ms6_state_update_params *p);
ms6_status ms6_ref_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p);
ms6_status ms6_ref_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p);
ms6_status ms6_ref_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p);
ms6_status ms6_ref_gemm(ms6_backend *be, const ms6_gemm_params *p);
ms6_status ms6_ref_embed(ms6_backend *be, const ms6_embed_params *p);

/* Host memory ops shared by the CPU backends. */
ms6_status ms6_host_alloc(ms6_backend *be, size_t bytes, void **out);
void ms6_host_dealloc(ms6_backend *be, void *ptr);
ms6_status ms6_host_copy(ms6_backend *be, void *dst, const void *src, size_t bytes);
ms6_status ms6_host_memzero(ms6_backend *be, void *dst, size_t bytes);
ms6_status ms6_host_nop(ms6_backend *be);

#ifdef __cplusplus
}
#endif

#endif
