/*
 * graph.h - CUDA graph capture and replay of a run of ops queued on a CUDA
 * backend, for the decode step (src/model/graph.c). Plain C: callers need
 * no CUDA headers. Every function fails cleanly (MS6_STATUS_UNSUPPORTED) on
 * a backend that is not CUDA, and all are absent from builds without CUDA.
 */
#ifndef MS6_CUDA_GRAPH_H
#define MS6_CUDA_GRAPH_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms6_cuda_graph ms6_cuda_graph;

/* Makes sure the backend queues work on a stream that can be captured: the
 * legacy default stream (0) cannot, so it is replaced by the per-thread
 * default stream, which orders the same way for a single host thread. */
ms6_status ms6_cuda_graph_prepare(ms6_backend *be);

/* Starts capturing the ops queued on the backend's stream (they are then
 * recorded, not run). */
ms6_status ms6_cuda_graph_begin(ms6_backend *be);

/* Ends the capture. With keep != 0 the recorded work becomes an executable
 * graph in *out; with keep == 0 (an op failed while recording) it is
 * discarded and *out is NULL. */
ms6_status ms6_cuda_graph_end(ms6_backend *be, int keep, ms6_cuda_graph **out);

/* Queues one replay of the graph on the backend's stream. */
ms6_status ms6_cuda_graph_launch(ms6_backend *be, ms6_cuda_graph *g);

void ms6_cuda_graph_free(ms6_cuda_graph *g);

#ifdef __cplusplus
}
#endif

#endif
