/*
 * st_write.h - a small streaming safetensors writer.
 *
 * The tensor list (names, dtypes, shapes) is given up front, so the JSON
 * header (built with cJSON, padded with spaces to a multiple of 8 bytes) can
 * be written first; the data then follows tensor by tensor, in list order,
 * in chunks of any size. Nothing but the header is held in memory, so a
 * multi-gigabyte file costs no more RAM than the caller's chunk buffer.
 *
 * File layout (https://github.com/huggingface/safetensors):
 *   u64 little-endian header length n | n bytes of JSON | tensor data.
 *   JSON: {"__metadata__": {"format": "pt"},
 *          "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 *   offsets are relative to the start of the data section, contiguous.
 */
#ifndef MS6_IO_ST_WRITE_H
#define MS6_IO_ST_WRITE_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS6_STW_MAX_DIMS 8

typedef struct ms6_stw_tensor {
    const char *name;       /* borrowed for the duration of ms6_stw_open */
    ms6_dtype dtype;
    int n_dims;             /* 0..MS6_STW_MAX_DIMS (0 = scalar) */
    int64_t shape[MS6_STW_MAX_DIMS];
} ms6_stw_tensor;

typedef struct ms6_stw ms6_stw;

/* Creates `path` and writes the header for tensors[0..n). Names must be
 * unique and non-empty. On failure *out is NULL and msg (MS6_ERRMSG_SIZE
 * bytes, may be NULL) names the file or tensor. */
ms6_status ms6_stw_open(const char *path, const ms6_stw_tensor *tensors, int64_t n, ms6_stw **out,
                        char *msg);

/* Appends `bytes` bytes of tensor data. Chunks may cross tensor boundaries;
 * writing past the end of the last tensor is an error. */
ms6_status ms6_stw_write(ms6_stw *w, const void *data, size_t bytes, char *msg);

/* Index of the tensor the next byte belongs to (n when all are written). */
int64_t ms6_stw_current(const ms6_stw *w);

/* Flushes and closes; fails when data is missing or the disk write failed.
 * Always frees w. */
ms6_status ms6_stw_close(ms6_stw *w, char *msg);

/* Closes and removes the partial file (error paths). Frees w; NULL is fine. */
void ms6_stw_abort(ms6_stw *w);

/* Bytes of one tensor's data (0 with *ok = 0 on overflow or bad shape). */
size_t ms6_stw_tensor_bytes(const ms6_stw_tensor *t, int *ok);

/* One-shot: writes a whole file from data[i] (tensor i's bytes). */
ms6_status ms6_stw_write_file(const char *path, const ms6_stw_tensor *tensors, int64_t n,
                              const void *const *data, char *msg);

#ifdef __cplusplus
}
#endif

#endif
