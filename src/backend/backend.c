/* Backend creation and the public kernel entry points: validate, then
 * dispatch through the ops table. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ms6_status ms6_backend_fail(ms6_backend *be, ms6_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (be) ms6_vfmt_error(be->err, status, fmt, ap);
    va_end(ap);
    return status;
}

const char *ms6_backend_kind_name(ms6_backend_kind kind) {
    switch (kind) {
    case MS6_BACKEND_CPU_REF: return "cpu-ref";
    case MS6_BACKEND_CPU: return "cpu";
    case MS6_BACKEND_CUDA: return "cuda";
    }
    return "invalid";
}

ms6_status ms6_backend_kind_parse(const char *name, ms6_backend_kind *out) {
    if (!name || !out) return MS6_STATUS_INVALID_ARGUMENT;
    if (!strcmp(name, "cpu-ref")) *out = MS6_BACKEND_CPU_REF;
    else if (!strcmp(name, "cpu")) *out = MS6_BACKEND_CPU;
    else if (!strcmp(name, "cuda")) *out = MS6_BACKEND_CUDA;
    else return MS6_STATUS_INVALID_ARGUMENT;
    return MS6_STATUS_OK;
}

int ms6_backend_compiled(ms6_backend_kind kind) {
    switch (kind) {
    case MS6_BACKEND_CPU_REF:
    case MS6_BACKEND_CPU: return 1;
    case MS6_BACKEND_CUDA:
#ifdef MS6_HAVE_CUDA
        return 1;
#else
        return 0;
#endif
    }
    return 0;
}

ms6_status ms6_backend_create(ms6_backend_kind kind, const ms6_backend_options *opts,
                              ms6_backend **out, ms6_error *err) {
    if (!out) {
        ms6_error_set(err, MS6_STATUS_INVALID_ARGUMENT, "ms6_backend_create: out is NULL");
        return MS6_STATUS_INVALID_ARGUMENT;
    }
    *out = NULL;
    ms6_backend *be = calloc(1, sizeof *be);
    if (!be) {
        ms6_error_set(err, MS6_STATUS_OUT_OF_MEMORY, "ms6_backend_create: out of memory");
        return MS6_STATUS_OUT_OF_MEMORY;
    }
    be->kind = kind;
    be->n_threads = opts ? opts->n_threads : 0;
    ms6_status st;
    switch (kind) {
    case MS6_BACKEND_CPU_REF: st = ms6_cpu_ref_init(be); break;
    case MS6_BACKEND_CPU: st = ms6_cpu_init(be); break;
    case MS6_BACKEND_CUDA:
#ifdef MS6_HAVE_CUDA
        st = ms6_cuda_init(be, opts ? opts->device : 0);
#else
        st = ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED,
                              "this build of mamba-s6 has no CUDA backend (nvcc was not found "
                              "at build time); use the cpu backend");
#endif
        break;
    default:
        st = ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "unknown backend kind %d",
                              (int)kind);
    }
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, be->err);
        free(be);
        return st;
    }
    *out = be;
    return MS6_STATUS_OK;
}

void ms6_backend_free(ms6_backend *be) {
    if (!be) return;
    if (be->ops && be->ops->destroy) be->ops->destroy(be);
    free(be);
}

ms6_backend_kind ms6_backend_get_kind(const ms6_backend *be) { return be->kind; }

const char *ms6_backend_last_error(const ms6_backend *be) { return be ? be->err : "backend is NULL"; }

ms6_status ms6_backend_set_stream(ms6_backend *be, void *stream) {
    if (!be) return MS6_STATUS_INVALID_ARGUMENT;
    return be->ops->set_stream ? be->ops->set_stream(be, stream) : MS6_STATUS_OK;
}

ms6_status ms6_backend_synchronize(ms6_backend *be) {
    if (!be) return MS6_STATUS_INVALID_ARGUMENT;
    return be->ops->synchronize ? be->ops->synchronize(be) : MS6_STATUS_OK;
}

ms6_status ms6_backend_alloc(ms6_backend *be, size_t bytes, void **out) {
    if (!be || !out) return be ? ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "alloc: out is NULL") : MS6_STATUS_INVALID_ARGUMENT;
    *out = NULL;
    return be->ops->alloc(be, bytes, out);
}

void ms6_backend_dealloc(ms6_backend *be, void *ptr) {
    if (be && ptr) be->ops->dealloc(be, ptr);
}

ms6_status ms6_backend_upload(ms6_backend *be, void *dst, const void *src, size_t bytes) {
    if (!be) return MS6_STATUS_INVALID_ARGUMENT;
    if ((!dst || !src) && bytes) return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "upload: NULL pointer");
    return be->ops->upload(be, dst, src, bytes);
}

ms6_status ms6_backend_download(ms6_backend *be, void *dst, const void *src, size_t bytes) {
    if (!be) return MS6_STATUS_INVALID_ARGUMENT;
    if ((!dst || !src) && bytes) return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "download: NULL pointer");
    return be->ops->download(be, dst, src, bytes);
}

#define DISPATCH(opname, validate, what)                                                  \
    if (!be) return MS6_STATUS_INVALID_ARGUMENT;                                          \
    if (!p) return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, what ": params is NULL"); \
    ms6_status st = validate(p, be->err);                                                 \
    if (st != MS6_STATUS_OK) return st;                                                   \
    if (!be->ops->opname)                                                                 \
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, what ": not available on the %s backend", be->ops->name); \
    return be->ops->opname(be, p)

ms6_status ms6_selective_scan_fwd(ms6_backend *be, const ms6_scan_params *p) {
    DISPATCH(scan_fwd, ms6_validate_scan, "selective_scan_fwd");
}
ms6_status ms6_selective_state_update(ms6_backend *be, const ms6_state_update_params *p) {
    DISPATCH(state_update, ms6_validate_state_update, "selective_state_update");
}
ms6_status ms6_causal_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p) {
    DISPATCH(conv1d_fwd, ms6_validate_conv1d, "causal_conv1d_fwd");
}
ms6_status ms6_causal_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p) {
    DISPATCH(conv1d_update, ms6_validate_conv1d_update, "causal_conv1d_update");
}
ms6_status ms6_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p) {
    DISPATCH(rmsnorm, ms6_validate_rmsnorm, "rmsnorm");
}
