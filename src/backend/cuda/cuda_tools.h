/*
 * cuda_tools.h - device facts the benchmarks print next to their figures
 * (tools/cmd_bench_generate.c). Plain C; only in builds with CUDA.
 */
#ifndef MS6_CUDA_TOOLS_H
#define MS6_CUDA_TOOLS_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device-to-device copy bandwidth of the backend's GPU, bytes read plus
 * bytes written per second (DESIGN.md section 8 counts both), best of a
 * few copies of `bytes` (use a buffer several times the L2). */
ms6_status ms6_cuda_copy_bandwidth(ms6_backend *be, size_t bytes, double *bytes_per_s);

/* "NVIDIA H200, 132 SMs, sm_90, 139.8 GiB" into buf. */
ms6_status ms6_cuda_describe(ms6_backend *be, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
