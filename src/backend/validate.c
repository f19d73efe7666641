/* Argument validation shared by every backend: each failure names the op
 * and the argument. Ops run only after these checks pass. */
#include "backend/backend.h"

static int dtype_ok(ms6_dtype t) { return (unsigned)t < MS6_DTYPE_COUNT; }

#define FAIL(...) return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, __VA_ARGS__)

static ms6_status check_act(const ms6_act *a, const char *op, const char *name, int optional,
                            char *msg) {
    if (!a->ptr) {
        if (optional) return MS6_STATUS_OK;
        FAIL("%s: %s is NULL", op, name);
    }
    if (!dtype_ok(a->dtype)) FAIL("%s: %s has dtype tag %d, expected f32 (0), f16 (1) or bf16 (2)", op, name, (int)a->dtype);
    if (a->batch_stride < 0 || a->dim_stride < 0 || a->seq_stride < 0)
        FAIL("%s: %s has a negative stride", op, name);
    return MS6_STATUS_OK;
}

static ms6_status check_bc(const ms6_bc *b, const char *op, const char *name, int64_t dim,
                           int64_t n_groups, char *msg) {
    if (!b->ptr) FAIL("%s: %s is NULL", op, name);
    if (!dtype_ok(b->dtype)) FAIL("%s: %s has dtype tag %d, expected f32 (0), f16 (1) or bf16 (2)", op, name, (int)b->dtype);
    if (b->mode != MS6_BC_CONSTANT && b->mode != MS6_BC_VARIABLE)
        FAIL("%s: %s has mode %d, expected MS6_BC_CONSTANT (0) or MS6_BC_VARIABLE (1)", op, name, (int)b->mode);
    if (b->batch_stride < 0 || b->group_stride < 0 || b->dim_stride < 0 || b->state_stride < 0 || b->seq_stride < 0)
        FAIL("%s: %s has a negative stride", op, name);
    if (b->mode == MS6_BC_VARIABLE) {
        if (n_groups < 1) FAIL("%s: n_groups = %lld, must be >= 1 with variable %s", op, (long long)n_groups, name);
        if (dim % n_groups != 0)
            FAIL("%s: dim (%lld) is not a multiple of n_groups (%lld)", op, (long long)dim, (long long)n_groups);
    }
    return MS6_STATUS_OK;
}

#define CHECK(x) do { ms6_status s_ = (x); if (s_ != MS6_STATUS_OK) return s_; } while (0)

static ms6_status check_state_n(const char *op, int64_t n, char *msg) {
    if (n < 1 || n > MS6_MAX_D_STATE)
        FAIL("%s: d_state = %lld, must be in 1..%d", op, (long long)n, MS6_MAX_D_STATE);
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_scan(const ms6_scan_params *p, char *msg) {
    const char *op = "selective_scan_fwd";
    if (p->batch < 1) FAIL("%s: batch = %lld, must be >= 1", op, (long long)p->batch);
    if (p->dim < 1) FAIL("%s: dim = %lld, must be >= 1", op, (long long)p->dim);
    if (p->seqlen < 0) FAIL("%s: seqlen = %lld, must be >= 0", op, (long long)p->seqlen);
    CHECK(check_state_n(op, p->d_state, msg));
    CHECK(check_act(&p->u, op, "u", 0, msg));
    CHECK(check_act(&p->delta, op, "delta", 0, msg));
    CHECK(check_act(&p->z, op, "z", 1, msg));
    CHECK(check_act(&p->out, op, "out", 0, msg));
    if (!p->A) FAIL("%s: A is NULL", op);
    if (p->A_dim_stride < 0 || p->A_state_stride < 0) FAIL("%s: A has a negative stride", op);
    CHECK(check_bc(&p->B, op, "B", p->dim, p->n_groups, msg));
    CHECK(check_bc(&p->C, op, "C", p->dim, p->n_groups, msg));
    if (p->delta_softplus != 0 && p->delta_softplus != 1)
        FAIL("%s: delta_softplus = %d, must be 0 or 1", op, p->delta_softplus);
    if (p->state_batch_stride < 0 || p->state_dim_stride < 0) FAIL("%s: state has a negative stride", op);
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_state_update(const ms6_state_update_params *p, char *msg) {
    const char *op = "selective_state_update";
    if (p->batch < 1) FAIL("%s: batch = %lld, must be >= 1", op, (long long)p->batch);
    if (p->dim < 1) FAIL("%s: dim = %lld, must be >= 1", op, (long long)p->dim);
    CHECK(check_state_n(op, p->d_state, msg));
    if (!p->state) FAIL("%s: state is NULL", op);
    if (p->state_batch_indices ? p->n_state_slots < 1 : p->n_state_slots < p->batch)
        FAIL("%s: n_state_slots = %lld is too small for batch %lld", op, (long long)p->n_state_slots, (long long)p->batch);
    CHECK(check_act(&p->x, op, "x", 0, msg));
    CHECK(check_act(&p->dt, op, "dt", 0, msg));
    CHECK(check_act(&p->z, op, "z", 1, msg));
    CHECK(check_act(&p->out, op, "out", 0, msg));
    if (!p->A) FAIL("%s: A is NULL", op);
    if (p->A_dim_stride < 0 || p->A_state_stride < 0) FAIL("%s: A has a negative stride", op);
    CHECK(check_bc(&p->B, op, "B", p->dim, p->n_groups, msg));
    CHECK(check_bc(&p->C, op, "C", p->dim, p->n_groups, msg));
    if (p->dt_softplus != 0 && p->dt_softplus != 1) FAIL("%s: dt_softplus = %d, must be 0 or 1", op, p->dt_softplus);
    if (p->state_batch_stride < 0 || p->state_dim_stride < 0) FAIL("%s: state has a negative stride", op);
    return MS6_STATUS_OK;
}

static ms6_status check_conv_common(const char *op, int64_t batch, int64_t dim, int64_t d_conv,
                                    const float *weight, int64_t wstride, int activation,
                                    int64_t sbs, int64_t sds, char *msg) {
    if (batch < 1) FAIL("%s: batch = %lld, must be >= 1", op, (long long)batch);
    if (dim < 1) FAIL("%s: dim = %lld, must be >= 1", op, (long long)dim);
    if (d_conv < 2 || d_conv > MS6_MAX_D_CONV)
        FAIL("%s: d_conv = %lld, must be in 2..%d", op, (long long)d_conv, MS6_MAX_D_CONV);
    if (!weight) FAIL("%s: weight is NULL", op);
    if (wstride < 0) FAIL("%s: weight_dim_stride is negative", op);
    if (activation != 0 && activation != 1) FAIL("%s: activation = %d, must be 0 or 1", op, activation);
    if (sbs < 0 || sds < 0) FAIL("%s: state has a negative stride", op);
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_conv1d(const ms6_conv1d_params *p, char *msg) {
    const char *op = "causal_conv1d_fwd";
    CHECK(check_conv_common(op, p->batch, p->dim, p->d_conv, p->weight, p->weight_dim_stride,
                            p->activation, p->state_batch_stride, p->state_dim_stride, msg));
    if (p->seqlen < 0) FAIL("%s: seqlen = %lld, must be >= 0", op, (long long)p->seqlen);
    CHECK(check_act(&p->x, op, "x", 0, msg));
    CHECK(check_act(&p->out, op, "out", 0, msg));
    if (p->x.ptr == p->out.ptr) FAIL("%s: out must not alias x", op);
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_conv1d_update(const ms6_conv1d_update_params *p, char *msg) {
    const char *op = "causal_conv1d_update";
    CHECK(check_conv_common(op, p->batch, p->dim, p->d_conv, p->weight, p->weight_dim_stride,
                            p->activation, p->state_batch_stride, p->state_dim_stride, msg));
    if (!p->state) FAIL("%s: state is NULL", op);
    if (p->state_batch_indices ? p->n_state_slots < 1 : p->n_state_slots < p->batch)
        FAIL("%s: n_state_slots = %lld is too small for batch %lld", op, (long long)p->n_state_slots, (long long)p->batch);
    CHECK(check_act(&p->x, op, "x", 0, msg));
    CHECK(check_act(&p->out, op, "out", 0, msg));
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_rmsnorm(const ms6_rmsnorm_params *p, char *msg) {
    const char *op = "rmsnorm";
    if (p->rows < 0) FAIL("%s: rows = %lld, must be >= 0", op, (long long)p->rows);
    if (p->dim < 1) FAIL("%s: dim = %lld, must be >= 1", op, (long long)p->dim);
    if (!p->out) FAIL("%s: out is NULL", op);
    if (!p->x && !(p->residual && !p->add_x)) FAIL("%s: x is NULL", op);
    if (p->add_x && !p->residual) FAIL("%s: add_x needs a residual buffer", op);
    if (!dtype_ok(p->x_dtype)) FAIL("%s: x has dtype tag %d, out of range", op, (int)p->x_dtype);
    if (!dtype_ok(p->out_dtype)) FAIL("%s: out has dtype tag %d, out of range", op, (int)p->out_dtype);
    if (p->x_row_stride < 0 || p->out_row_stride < 0 || p->residual_row_stride < 0)
        FAIL("%s: negative row stride", op);
    if (!(p->eps >= 0.0f)) FAIL("%s: eps must be >= 0", op);
    return MS6_STATUS_OK;
}

ms6_status ms6_validate_gemm(const ms6_gemm_params *p, char *msg) {
    const char *op = "gemm";
    if (p->M < 0 || p->N < 1 || p->K < 1) FAIL("%s: bad sizes M=%lld N=%lld K=%lld", op, (long long)p->M, (long long)p->N, (long long)p->K);
    if (!p->x || !p->w || !p->y) FAIL("%s: NULL operand", op);
    if (!dtype_ok(p->x_dtype) || !dtype_ok(p->w_dtype) || !dtype_ok(p->y_dtype)) FAIL("%s: dtype tag out of range", op);
    return MS6_STATUS_OK;
}
