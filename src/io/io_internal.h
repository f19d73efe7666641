/*
 * io_internal.h - checkpoint readers: safetensors (single file or shards
 * through model.safetensors.index.json) and config.json.
 *
 * Everything read from disk is validated before use: the safetensors header
 * length against the file size, each tensor's dtype, shape and offsets
 * (inside the data section, no overlaps, shape x element size without
 * overflow and equal to end - begin). Every failure message names the file
 * and, where there is one, the tensor or the config key.
 */
#ifndef MS6_IO_INTERNAL_H
#define MS6_IO_INTERNAL_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS6_ST_MAX_DIMS 8
/* Largest JSON header accepted (the safetensors format itself caps it at 100 MB). */
#define MS6_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* One tensor of a safetensors file. `data` points into the file's mapping
 * (borrowed from the ms6_st that owns it) and need not be aligned. */
typedef struct ms6_st_tensor {
    char *name;
    char st_dtype[12];      /* dtype string as written in the file ("F32", "I64", ...) */
    int supported;          /* 1 when dtype is F32, F16 or BF16 */
    ms6_dtype dtype;        /* valid when supported */
    size_t elem_size;
    int n_dims;
    int64_t shape[MS6_ST_MAX_DIMS];
    int64_t n_elements;
    const void *data;
    size_t nbytes;
    int file;               /* index into ms6_st.files */
} ms6_st_tensor;

typedef struct ms6_st_file {
    char *path;
    void *map;              /* whole file, read-only mapping (NULL for empty) */
    size_t size;
    size_t data_offset;     /* 8 + header length */
    int owns_map;           /* 1 = munmap on close; 0 = caller's buffer */
} ms6_st_file;

/* A set of tensors from one or more safetensors files, sorted by name. */
typedef struct ms6_st {
    ms6_st_file *files;
    int n_files;
    ms6_st_tensor *tensors;
    int64_t n_tensors;
    char *source;           /* what to name in "not found" messages */
} ms6_st;

/* Parses a whole safetensors file held in memory (buf, size), borrowed for
 * the lifetime of the result. `path` only names the file in messages. This
 * is the parser the fuzz target drives. */
ms6_status ms6_st_parse(const void *buf, size_t size, const char *path, ms6_st **out, char *msg);

/* mmaps and parses one file. */
ms6_status ms6_st_open_file(const char *path, ms6_st **out, char *msg);

/* Opens a model directory: model.safetensors, or the shards listed in
 * model.safetensors.index.json (every tensor of the weight map must be in
 * the shard it names). */
ms6_status ms6_st_open_dir(const char *dir, ms6_st **out, char *msg);

void ms6_st_close(ms6_st *st);

/* Tensor by name, NULL when absent. */
const ms6_st_tensor *ms6_st_find(const ms6_st *st, const char *name);

/* File that holds a tensor (for messages). */
const char *ms6_st_tensor_path(const ms6_st *st, const ms6_st_tensor *t);

/* Reads a whole file into a NUL-terminated malloc'ed buffer. */
ms6_status ms6_read_file(const char *path, char **data, size_t *len, size_t max_len, char *msg);

/* ---- config.json ---- */

typedef struct ms6_config_ext {
    ms6_model_config pub;   /* n_params, storage_dtype, tied_embeddings filled later by the loader */
    int state_spaces;       /* 1 = original state-spaces keys (d_model, n_layer, ssm_cfg) */
    int tie_word_embeddings;
    int64_t vocab_size_cfg; /* vocab_size as written in the file */
    int64_t pad_vocab_size_multiple;
} ms6_config_ext;

/* Parses the text of a config.json (len bytes, need not be NUL-terminated).
 * `path` names the file in messages. */
ms6_status ms6_config_parse(const char *text, size_t len, const char *path, ms6_config_ext *out,
                            char *msg);

/* Reads and parses dir/config.json. */
ms6_status ms6_config_load(const char *dir, ms6_config_ext *out, char *msg);

#ifdef __cplusplus
}
#endif

#endif
