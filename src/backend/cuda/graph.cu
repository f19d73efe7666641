/*
 * graph.cu - capture of the ops queued on the backend's stream into a CUDA
 * graph, and its replay. A decode step of a Mamba model is a few hundred
 * small kernels (7 per layer plus the head); launched one by one the CPU
 * launch cost (a few microseconds each) exceeds their run time on a large
 * GPU. Captured once and replayed, they cost one launch. Token ids, state
 * slots and the state itself live in fixed device buffers that the graph
 * reads at replay time, so one graph serves every step of the same batch
 * size.
 *
 * Capture uses cudaStreamCaptureModeThreadLocal: calls from other host
 * threads are not affected. An op that cannot be captured makes the capture
 * fail; the caller then discards it and runs the step without a graph.
 * Checked by tests/test_cuda_ops.c (a captured gemm + rmsnorm replayed on
 * new inputs) and tests/test_cuda_model.c (graph decode == eager decode).
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/graph.h"

#include <stdlib.h>

struct ms6_cuda_graph {
    cudaGraphExec_t exec;
};

static ms6_status need_cuda(ms6_backend *be) {
    if (!be || be->kind != MS6_BACKEND_CUDA || !be->ctx)
        return be ? ms6_backend_fail(be, MS6_STATUS_UNSUPPORTED, "CUDA graphs need the cuda backend")
                  : MS6_STATUS_INVALID_ARGUMENT;
    return MS6_STATUS_OK;
}

extern "C" ms6_status ms6_cuda_graph_prepare(ms6_backend *be) {
    ms6_status st = need_cuda(be);
    if (st != MS6_STATUS_OK) return st;
    ms6_cuda_ctx *c = ms6_cuda(be);
    if (c->stream == 0 || c->stream == cudaStreamLegacy) {
        /* finish what the legacy stream holds before switching streams */
        st = ms6_cuda_check(be, cudaStreamSynchronize(c->stream), "graph: synchronize");
        if (st != MS6_STATUS_OK) return st;
        c->stream = cudaStreamPerThread;
    }
    return MS6_STATUS_OK;
}

extern "C" ms6_status ms6_cuda_graph_begin(ms6_backend *be) {
    ms6_status st = ms6_cuda_graph_prepare(be);
    if (st != MS6_STATUS_OK) return st;
    return ms6_cuda_check(be, cudaStreamBeginCapture(ms6_cuda(be)->stream, cudaStreamCaptureModeThreadLocal),
                          "graph: begin capture");
}

extern "C" ms6_status ms6_cuda_graph_end(ms6_backend *be, int keep, ms6_cuda_graph **out) {
    *out = NULL;
    ms6_status st = need_cuda(be);
    if (st != MS6_STATUS_OK) return st;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(ms6_cuda(be)->stream, &graph);
    if (e != cudaSuccess || !graph || !keep) {
        cudaGetLastError();
        if (graph) cudaGraphDestroy(graph);
        if (!keep) return MS6_STATUS_OK;
        return ms6_cuda_check(be, e != cudaSuccess ? e : cudaErrorStreamCaptureInvalidated, "graph: end capture");
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ms6_cuda_check(be, e, "graph: instantiate");
    }
    ms6_cuda_graph *g = (ms6_cuda_graph *)calloc(1, sizeof *g);
    if (!g) {
        cudaGraphExecDestroy(exec);
        return ms6_backend_fail(be, MS6_STATUS_OUT_OF_MEMORY, "graph: out of host memory");
    }
    g->exec = exec;
    *out = g;
    return MS6_STATUS_OK;
}

extern "C" ms6_status ms6_cuda_graph_launch(ms6_backend *be, ms6_cuda_graph *g) {
    ms6_status st = need_cuda(be);
    if (st != MS6_STATUS_OK) return st;
    if (!g) return ms6_backend_fail(be, MS6_STATUS_INVALID_ARGUMENT, "graph: launch of a NULL graph");
    return ms6_cuda_check(be, cudaGraphLaunch(g->exec, ms6_cuda(be)->stream), "graph: launch");
}

extern "C" void ms6_cuda_graph_free(ms6_cuda_graph *g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    free(g);
}
