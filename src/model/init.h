/*
 * init.h - writes a random-init Mamba model directory (config.json in the
 * transformers *-hf format + model.safetensors) with the exact tensor shapes
 * of the state-spaces checkpoints, for benchmarks and tests without
 * downloads. Weights are perturbed like tests/golden/models (see
 * docs/goldens.md) so activations and logits stay O(1).
 */
#ifndef MS6_MODEL_INIT_H
#define MS6_MODEL_INIT_H

#include "core/internal.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms6_init_shape {
    int64_t d_model, n_layer, vocab_size, d_state, d_conv, expand, dt_rank; /* dt_rank 0 = ceil(d_model/16) */
    int use_bias, use_conv_bias;
} ms6_init_shape;

/* Shapes of state-spaces/mamba-{130m,370m,790m,1.4b,2.8b}: vocab 50280
 * (padded to a multiple of 8), d_state 16, d_conv 4, expand 2, no biases
 * except conv and dt_proj. Returns MS6_STATUS_INVALID_ARGUMENT for an
 * unknown name. */
ms6_status ms6_init_shape_lookup(const char *name, ms6_init_shape *out);

/* Comma-separated list of the names above (for usage messages). */
const char *ms6_init_shape_names(void);

typedef struct ms6_init_stats {
    int64_t n_params;
    uint64_t file_bytes;       /* model.safetensors size */
    int64_t n_tensors;
} ms6_init_stats;

/* Creates `dir` (parents must exist; an existing directory is reused and
 * its config.json / model.safetensors overwritten) and writes the model
 * tensor by tensor: memory use is a few MB whatever the model size. Every
 * tensor (including A_log, D and the norms) is stored in `dtype`.
 * Deterministic in (shape, dtype, seed); each tensor has its own stream, so
 * a model with more layers starts with the same tensors. stats may be NULL. */
ms6_status ms6_model_init_write(const char *dir, const ms6_init_shape *shape, ms6_dtype dtype,
                                uint64_t seed, ms6_init_stats *stats, char *msg);

#ifdef __cplusplus
}
#endif

#endif
