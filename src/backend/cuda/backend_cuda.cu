/*
 * backend_cuda.cu - the CUDA backend: device selection, memory, streams and
 * the ops table. The ops live in one .cu per family (scan, conv, norm, gemm);
 * an op not written yet is NULL and the public entry point reports it as
 * unsupported on this backend.
 */
#include "backend/cuda/cuda_internal.h"

#include <stdlib.h>
#include <string.h>

extern "C" ms6_status ms6_cuda_check(ms6_backend *be, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return MS6_STATUS_OK;
    ms6_status st = (e == cudaErrorMemoryAllocation) ? MS6_STATUS_OUT_OF_MEMORY : MS6_STATUS_DEVICE_ERROR;
    return ms6_backend_fail(be, st, "%s: CUDA error %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

static void cuda_destroy(ms6_backend *be) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (!c) return;
    ms6_cuda_gemm_release(c);
    ms6_cuda_dec_prof_free(c);
    if (c->workspace) cudaFree(c->workspace);
    if (c->argmax_buf) cudaFree(c->argmax_buf);
    if (c->pk_scratch) cudaFree(c->pk_scratch);
    if (c->pinned) cudaFreeHost(c->pinned);
    pthread_mutex_destroy(&c->pinned_lock);
    free(c);
    be->ctx = NULL;
}

static ms6_status cuda_alloc(ms6_backend *be, size_t bytes, void **out) {
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *out = NULL;
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return ms6_backend_fail(be, e == cudaErrorMemoryAllocation ? MS6_STATUS_OUT_OF_MEMORY : MS6_STATUS_DEVICE_ERROR,
                                "device allocation of %zu bytes failed: %s (%zu of %zu bytes free)", bytes,
                                cudaGetErrorString(e), free_b, total_b);
    }
    return MS6_STATUS_OK;
}

static void cuda_dealloc(ms6_backend *be, void *ptr) { (void)be; cudaFree(ptr); }

static ms6_status cuda_upload(ms6_backend *be, void *dst, const void *src, size_t bytes) {
    return ms6_cuda_check(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ms6_cuda(be)->stream), "upload");
}

/* Downloads up to this size go through one page-locked buffer: a copy from
 * the device into pageable memory is staged by the driver in small pieces
 * (a 200 KB logits row took ~0.23 ms), into pinned memory it runs at the
 * link's speed, and the host copy after it is a few microseconds. */
#define MS6_PINNED_BYTES ((size_t)8 << 20)

static ms6_status cuda_download(ms6_backend *be, void *dst, const void *src, size_t bytes) {
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (bytes <= MS6_PINNED_BYTES) {
        pthread_mutex_lock(&c->pinned_lock);
        if (!c->pinned && !c->pinned_failed && cudaMallocHost(&c->pinned, MS6_PINNED_BYTES) != cudaSuccess) {
            cudaGetLastError();
            c->pinned = NULL;
            c->pinned_failed = 1;
        }
        if (c->pinned) {
            ms6_status st = ms6_cuda_check(be, cudaMemcpyAsync(c->pinned, src, bytes, cudaMemcpyDeviceToHost, c->stream),
                                           "download");
            if (st == MS6_STATUS_OK) st = ms6_cuda_check(be, cudaStreamSynchronize(c->stream), "download");
            if (st == MS6_STATUS_OK) memcpy(dst, c->pinned, bytes);
            pthread_mutex_unlock(&c->pinned_lock);
            return st;
        }
        pthread_mutex_unlock(&c->pinned_lock);
    }
    ms6_status st = ms6_cuda_check(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "download");
    if (st != MS6_STATUS_OK) return st;
    return ms6_cuda_check(be, cudaStreamSynchronize(c->stream), "download");
}

static ms6_status cuda_memzero(ms6_backend *be, void *dst, size_t bytes) {
    return ms6_cuda_check(be, cudaMemsetAsync(dst, 0, bytes, ms6_cuda(be)->stream), "memzero");
}

static ms6_status cuda_sync(ms6_backend *be) {
    return ms6_cuda_check(be, cudaStreamSynchronize(ms6_cuda(be)->stream), "synchronize");
}

static ms6_status cuda_set_stream(ms6_backend *be, void *stream) {
    ms6_cuda(be)->stream = (cudaStream_t)stream;
    return MS6_STATUS_OK;
}

static const ms6_backend_ops cuda_ops = {
    /* name */ "cuda",
    /* destroy */ cuda_destroy,
    /* alloc */ cuda_alloc,
    /* dealloc */ cuda_dealloc,
    /* upload */ cuda_upload,
    /* download */ cuda_download,
    /* memzero */ cuda_memzero,
    /* synchronize */ cuda_sync,
    /* set_stream */ cuda_set_stream,
    /* scan_fwd */ ms6_cuda_scan_fwd,
    /* state_update */ ms6_cuda_state_update,
    /* conv1d_fwd */ ms6_cuda_conv1d_fwd,
    /* conv1d_update */ ms6_cuda_conv1d_update,
    /* rmsnorm */ ms6_cuda_rmsnorm,
    /* gemm */ ms6_cuda_gemm,
    /* embed */ ms6_cuda_embed,
    /* mixer_step */ ms6_cuda_mixer_step,
    /* norm_gemv */ ms6_cuda_norm_gemv,
    /* argmax_rows */ ms6_cuda_argmax_rows,
    /* argmax_feed */ ms6_cuda_argmax_feed,
    /* decode_step */ ms6_cuda_decode_step,
    /* ssm_step */ ms6_cuda_ssm_step,
};

extern "C" ms6_status ms6_cuda_init(ms6_backend *be, int device) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return ms6_backend_fail(be, MS6_STATUS_DEVICE_ERROR,
                                "no usable NVIDIA GPU (%s); use --backend cpu",
                                e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
    }
    if (device < 0 || device >= count)
        return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "CUDA device %d does not exist (%d present)", device, count);
    ms6_cuda_ctx *c = (ms6_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "out of host memory");
    c->device = device;
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaGetDeviceProperties(&c->prop, device)) != cudaSuccess) {
        free(c);
        return ms6_cuda_check(be, e, "CUDA device setup");
    }
    if (c->prop.major < 8) {
        int major = c->prop.major, minor = c->prop.minor;
        free(c);
        return ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED,
                                "GPU sm_%d%d is not supported (need sm_80 or newer); use --backend cpu", major, minor);
    }
    pthread_mutex_init(&c->pinned_lock, NULL);
    /* small, so taken now rather than on first use (which may be inside a graph capture) */
    if (cudaMalloc(&c->pk_scratch, MS6_CUDA_PK_SCRATCH) != cudaSuccess) {
        cudaGetLastError();
        c->pk_scratch = NULL; /* the persistent decode step reports itself unsupported */
    }
    ms6_cuda_dec_prof_init(c); /* MS6_DEC_PROF=FILE (development): the decode block timeline */
    be->ctx = c;
    be->ops = &cuda_ops;
    return MS6_STATUS_OK;
}
