/* Shared by the CUDA backend's files: context, error helpers, and the
 * extern "C" entry points of each op family. */
#ifndef MS6_CUDA_INTERNAL_H
#define MS6_CUDA_INTERNAL_H

#include "backend/backend.h"

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms6_cuda_ctx {
    int device;
    cudaStream_t stream;       /* borrowed from the caller, or 0 */
    cudaDeviceProp prop;
    void *blaslt;              /* cublasLtHandle_t, created on first gemm */
    void *workspace;           /* cuBLASLt workspace */
    size_t workspace_size;
} ms6_cuda_ctx;

static inline ms6_cuda_ctx *ms6_cuda(ms6_backend *be) { return (ms6_cuda_ctx *)be->ctx; }

/* Turns a CUDA error into a backend message naming the op. */
ms6_status ms6_cuda_check(ms6_backend *be, cudaError_t e, const char *what);

/* Op families (one .cu each). */
ms6_status ms6_cuda_scan_fwd(ms6_backend *be, const ms6_scan_params *p);
ms6_status ms6_cuda_state_update(ms6_backend *be, const ms6_state_update_params *p);
ms6_status ms6_cuda_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p);
ms6_status ms6_cuda_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p);
ms6_status ms6_cuda_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p);
ms6_status ms6_cuda_gemm(ms6_backend *be, const ms6_gemm_params *p);
ms6_status ms6_cuda_embed(ms6_backend *be, const ms6_embed_params *p);

/* Frees what the gemm created on first use (cuBLASLt handle, descriptor
 * cache, scratch); called by the backend's destroy. */
void ms6_cuda_gemm_release(ms6_cuda_ctx *c);

#ifdef __cplusplus
}
#endif

#endif
