/* The "cpu" backend: the fast CPU ops where they exist, the reference ops
 * elsewhere. */
#include "backend/backend.h"

static const ms6_backend_ops cpu_ops = {
    .name = "cpu",
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

ms6_status ms6_cpu_init(ms6_backend *be) {
    be->ops = &cpu_ops;
    return MS6_STATUS_OK;
}
