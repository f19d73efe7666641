/*
 * cuda_tools.cu - the copy bandwidth and device description that the
 * benchmarks print as the floor of memory-bound figures. The copy is one
 * cudaMemcpyAsync device to device, timed with events, best of 5 after a
 * warm-up; bytes read and written are both counted.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_tools.h"

#include <stdio.h>

extern "C" ms6_status ms6_cuda_copy_bandwidth(ms6_backend *be, size_t bytes, double *bytes_per_s) {
    *bytes_per_s = 0;
    if (!be || be->kind != MS6_BACKEND_CUDA || !be->ctx)
        return be ? ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "copy bandwidth: not a cuda backend")
                  : MS6_STATUS_INVALID_ARGUMENT;
    ms6_cuda_ctx *c = ms6_cuda(be);
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    ms6_status st = ms6_cuda_check(be, cudaMalloc(&a, bytes), "copy bandwidth: allocation");
    if (st == MS6_STATUS_OK) st = ms6_cuda_check(be, cudaMalloc(&b, bytes), "copy bandwidth: allocation");
    if (st == MS6_STATUS_OK) st = ms6_cuda_check(be, cudaEventCreate(&e0), "copy bandwidth: event");
    if (st == MS6_STATUS_OK) st = ms6_cuda_check(be, cudaEventCreate(&e1), "copy bandwidth: event");
    if (st == MS6_STATUS_OK) st = ms6_cuda_check(be, cudaMemsetAsync(a, 1, bytes, c->stream), "copy bandwidth");
    float best = 1e30f;
    for (int rep = 0; rep < 6 && st == MS6_STATUS_OK; rep++) {
        cudaEventRecord(e0, c->stream);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, c->stream);
        cudaEventRecord(e1, c->stream);
        st = ms6_cuda_check(be, cudaEventSynchronize(e1), "copy bandwidth: copy");
        float ms = 0;
        if (st == MS6_STATUS_OK) cudaEventElapsedTime(&ms, e0, e1);
        if (rep > 0 && ms > 0 && ms < best) best = ms;
    }
    if (st == MS6_STATUS_OK && best < 1e29f) *bytes_per_s = 2.0 * (double)bytes / (best * 1e-3);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    cudaGetLastError();
    return st;
}

extern "C" ms6_status ms6_cuda_describe(ms6_backend *be, char *buf, size_t cap) {
    if (!be || be->kind != MS6_BACKEND_CUDA || !be->ctx || !buf || !cap) return MS6_STATUS_INVALID_ARGUMENT;
    const cudaDeviceProp *p = &ms6_cuda(be)->prop;
    snprintf(buf, cap, "%s, %d SMs, sm_%d%d, %.1f GiB", p->name, p->multiProcessorCount, p->major, p->minor,
             (double)p->totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return MS6_STATUS_OK;
}
