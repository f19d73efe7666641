/*
 * mamba_s6.h - the one public header of libmamba_s6.
 *
 * mamba-s6 runs Mamba-1 ("S6") selective state-space models on CPUs and
 * NVIDIA GPUs. This header has two layers:
 *
 *   1. the kernel-level API: selective scan, selective state update, causal
 *      conv1d and RMSNorm on caller-owned buffers, through an ms6_backend;
 *   2. the model API: load a Hugging Face Mamba checkpoint, run sessions
 *      (prefill + decode), sample, tokenize.
 *
 * Usage (model API, error handling shortened):
 *
 *     ms6_error err;
 *     ms6_model *model;
 *     if (ms6_model_load("mamba-130m-hf", NULL, &model, &err) != MS6_STATUS_OK) {
 *         fprintf(stderr, "%s\n", err.message);
 *         return 1;
 *     }
 *     ms6_session *s;
 *     ms6_session_create(model, &s, &err);
 *     int32_t ids[] = {12092, 13, 703};
 *     float *logits = malloc(sizeof(float) * ms6_model_vocab_size(model));
 *     ms6_session_prefill(s, ids, 3, logits, 0);        // logits of last token
 *     for (int i = 0; i < 20; i++) {
 *         int32_t next = ms6_argmax(logits, ms6_model_vocab_size(model));
 *         ms6_session_step(s, next, logits);
 *     }
 *     ms6_session_free(s);
 *     ms6_model_free(model);
 *
 * Conventions
 *   - Functions return ms6_status. MS6_STATUS_OK is 0.
 *   - Creation goes through an out-parameter: on failure *out is NULL and
 *     there is nothing to free; the message goes to the optional ms6_error.
 *   - Each object keeps the message of its last failure
 *     (ms6_<object>_last_error); there is no global error state.
 *   - Pointers passed in are borrowed for the duration of the call unless a
 *     comment says otherwise. Strings returned are owned by the object and
 *     stay valid until the next call on that object or its free.
 *   - Sizes and strides are int64_t element counts, never bytes.
 *   - Objects are not thread-safe; a loaded ms6_model is read-only and may be
 *     shared by sessions on several threads.
 */
#ifndef MAMBA_S6_H
#define MAMBA_S6_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS6_VERSION_MAJOR 0
#define MS6_VERSION_MINOR 1
#define MS6_VERSION_PATCH 0
#define MS6_VERSION_STRING "0.1.0"

/* Largest d_state (N) any kernel accepts. */
#define MS6_MAX_D_STATE 256
/* Causal conv1d kernel widths accepted: 2..MS6_MAX_D_CONV. */
#define MS6_MAX_D_CONV 8

/* ------------------------------------------------------------------ */
/* Status and errors                                                   */
/* ------------------------------------------------------------------ */

typedef enum ms6_status {
    MS6_STATUS_OK = 0,
    MS6_STATUS_INVALID_ARGUMENT = 1, /* NULL pointer, bad size, bad flag */
    MS6_STATUS_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    MS6_STATUS_IO_ERROR = 3,         /* file missing, unreadable, short */
    MS6_STATUS_FORMAT_ERROR = 4,     /* corrupt safetensors, bad JSON, wrong shape */
    MS6_STATUS_UNSUPPORTED = 5,      /* valid input this build cannot run */
    MS6_STATUS_OUT_OF_RANGE = 6,     /* token id or index outside its range */
    MS6_STATUS_DEVICE_ERROR = 7,     /* GPU missing or a CUDA call failed */
    MS6_STATUS_BUFFER_TOO_SMALL = 8  /* caller buffer too small; size reported */
} ms6_status;

/* Static, human-readable name of a status ("invalid argument"). */
const char *ms6_status_string(ms6_status status);

/* Version string of the linked library, e.g. "0.1.0". */
const char *ms6_version(void);

/* Filled by creation functions on failure (may be passed as NULL). */
typedef struct ms6_error {
    ms6_status status;
    char message[512];
} ms6_error;

/* ------------------------------------------------------------------ */
/* Element types                                                       */
/* ------------------------------------------------------------------ */

typedef enum ms6_dtype {
    MS6_DTYPE_F32 = 0,
    MS6_DTYPE_F16 = 1,
    MS6_DTYPE_BF16 = 2
} ms6_dtype;
#define MS6_DTYPE_COUNT 3

const char *ms6_dtype_name(ms6_dtype dtype); /* "f32", "f16", "bf16", or "invalid" */
size_t ms6_dtype_size(ms6_dtype dtype);      /* 4, 2, 2, or 0 when invalid */

/* Scalar conversions (round to nearest even; NaN stays NaN). */
float ms6_f16_to_f32(uint16_t h);
uint16_t ms6_f32_to_f16(float f);
float ms6_bf16_to_f32(uint16_t h);
uint16_t ms6_f32_to_bf16(float f);

/* ------------------------------------------------------------------ */
/* Backends                                                            */
/* ------------------------------------------------------------------ */

typedef enum ms6_backend_kind {
    MS6_BACKEND_CPU_REF = 0, /* plain reference loops: the oracle */
    MS6_BACKEND_CPU = 1,     /* threaded, SIMD CPU ops */
    MS6_BACKEND_CUDA = 2     /* NVIDIA GPU; pointers are device pointers */
} ms6_backend_kind;

typedef struct ms6_backend ms6_backend;

typedef struct ms6_backend_options {
    int n_threads; /* CPU: worker threads, 0 = all cores */
    int device;    /* CUDA: device ordinal */
} ms6_backend_options;

/* Name of a backend kind ("cpu-ref", "cpu", "cuda"). */
const char *ms6_backend_kind_name(ms6_backend_kind kind);
/* Parses "cpu-ref", "cpu", "cuda". Returns MS6_STATUS_INVALID_ARGUMENT otherwise. */
ms6_status ms6_backend_kind_parse(const char *name, ms6_backend_kind *out);
/* Non-zero when this build was compiled with that backend. */
int ms6_backend_compiled(ms6_backend_kind kind);

/* opts may be NULL (defaults). Fails with MS6_STATUS_UNSUPPORTED when the
 * backend is not compiled in and MS6_STATUS_DEVICE_ERROR when no GPU works. */
ms6_status ms6_backend_create(ms6_backend_kind kind, const ms6_backend_options *opts,
                              ms6_backend **out, ms6_error *err);
void ms6_backend_free(ms6_backend *be);
ms6_backend_kind ms6_backend_get_kind(const ms6_backend *be);
const char *ms6_backend_last_error(const ms6_backend *be);

/* CUDA: kernels are queued on this cudaStream_t (borrowed; NULL = default
 * stream) and return before they finish. CPU backends ignore it. */
ms6_status ms6_backend_set_stream(ms6_backend *be, void *stream);
ms6_status ms6_backend_synchronize(ms6_backend *be);

/* Memory the kernels can address (device memory on CUDA, host on CPU). */
ms6_status ms6_backend_alloc(ms6_backend *be, size_t bytes, void **out);
void ms6_backend_dealloc(ms6_backend *be, void *ptr);
ms6_status ms6_backend_upload(ms6_backend *be, void *dst, const void *src, size_t bytes);
ms6_status ms6_backend_download(ms6_backend *be, void *dst, const void *src, size_t bytes);

/* ------------------------------------------------------------------ */
/* Kernel-level API (mirrors mamba_ssm's selective_scan_fn and           */
/* selective_state_update; any layout through element strides)         */
/* ------------------------------------------------------------------ */

/* How B and C vary. */
typedef enum ms6_bc_mode {
    MS6_BC_CONSTANT = 0, /* (dim, N): B[d,n] = ptr[d*dim_stride + n*state_stride] */
    MS6_BC_VARIABLE = 1  /* (batch, G, N, L): ptr[b*batch_stride + g*group_stride
                          *   + n*state_stride + t*seq_stride], g = d / (dim/G);
                          *   G = 1 is mamba_ssm's (batch, N, L) */
} ms6_bc_mode;

/* An activation tensor (batch, dim, L); element (b, d, t) lives at
 * ptr[b*batch_stride + d*dim_stride + t*seq_stride]. Channel-major
 * (batch, dim, L) and token-major (batch, L, dim) are both just strides. */
typedef struct ms6_act {
    void *ptr;
    ms6_dtype dtype;
    int64_t batch_stride, dim_stride, seq_stride;
} ms6_act;

/* B or C. */
typedef struct ms6_bc {
    const void *ptr;
    ms6_dtype dtype;
    ms6_bc_mode mode;
    int64_t batch_stride, group_stride, dim_stride, state_stride, seq_stride;
} ms6_bc;

/*
 * Selective scan forward, for each batch b, channel d, state n, step t:
 *   dt      = delta[b,d,t] + delta_bias[d]            (delta_bias optional)
 *   dt      = softplus(dt) if delta_softplus          (x > 20: x; else log1p(exp(x)))
 *   h[n]    = exp(dt * A[d,n]) * h[n] + dt * B[n] * u[b,d,t]
 *   y       = sum_n C[n] * h[n] + D[d] * u[b,d,t]      (D optional)
 *   out     = y * silu(z[b,d,t])                       (z optional)
 * The state h starts at initial_state (optional) or zero, and after the last
 * step is written to final_state (optional). States are fp32, (batch, dim, N),
 * element (b,d,n) at b*state_batch_stride + d*state_dim_stride + n.
 * out may alias u (it is written after u[t] is read) but nothing else.
 * final_state may be the same buffer as initial_state (continue in place).
 */
typedef struct ms6_scan_params {
    int64_t batch, dim, seqlen, d_state; /* d_state = N in 1..256 */
    int64_t n_groups;                    /* G for MS6_BC_VARIABLE; dim % G == 0 */
    ms6_act u;                           /* (batch, dim, L) */
    ms6_act delta;                       /* (batch, dim, L) */
    const float *A;                      /* (dim, N) fp32: A[d*A_dim_stride + n*A_state_stride] */
    int64_t A_dim_stride, A_state_stride;
    ms6_bc B, C;                         /* see ms6_bc_mode */
    const float *D;                      /* (dim,) fp32, optional (NULL) */
    const float *delta_bias;             /* (dim,) fp32, optional */
    ms6_act z;                           /* (batch, dim, L), optional (ptr NULL) */
    ms6_act out;                         /* (batch, dim, L) */
    int delta_softplus;                  /* 0 or 1 */
    const float *initial_state;          /* (batch, dim, N) fp32, optional */
    float *final_state;                  /* (batch, dim, N) fp32, optional */
    int64_t state_batch_stride, state_dim_stride; /* for both states; 0,0 = packed */
} ms6_scan_params;

/*
 * Selective state update: one token for each of `batch` sequences, same math
 * as one step of the scan, state updated in place. With state_batch_indices
 * (optional, (batch,) int32) sequence b uses state slot state_batch_indices[b];
 * a negative index marks a padding slot: its output is zeroed and no state is
 * touched. x, dt, z, out are (batch, dim): element (b,d) at
 * ptr[b*batch_stride + d*dim_stride] (seq_stride ignored).
 * B, C (MS6_BC_VARIABLE): (batch, G, N) with seq_stride ignored.
 */
typedef struct ms6_state_update_params {
    int64_t batch, dim, d_state, n_groups;
    int64_t n_state_slots;               /* rows in state; indices must be < it */
    float *state;                        /* (n_state_slots, dim, N) fp32, in place */
    int64_t state_batch_stride, state_dim_stride; /* 0,0 = packed */
    ms6_act x, dt;
    const float *A;
    int64_t A_dim_stride, A_state_stride;
    ms6_bc B, C;
    const float *D, *dt_bias;            /* optional */
    ms6_act z;                           /* optional */
    ms6_act out;
    int dt_softplus;
    const int32_t *state_batch_indices;  /* optional, (batch,) */
} ms6_state_update_params;

/*
 * Causal depthwise conv1d, width K = d_conv in 2..8, fused bias and SiLU:
 *   c[b,d,t] = bias[d] + sum_k weight[d,k] * x[b,d,t-K+1+k]
 *   out      = silu(c) if activation else c
 * x before t = 0 comes from initial_state (optional; zeros when NULL).
 * final_state (optional) receives the last K-1 inputs (window incl. the
 * initial state when L < K-1). Conv states are fp32 (batch, dim, K-1),
 * element (b,d,k) at b*state_batch_stride + d*state_dim_stride + k, oldest
 * first. weight (dim, K) fp32 at d*weight_dim_stride + k.
 */
typedef struct ms6_conv1d_params {
    int64_t batch, dim, seqlen, d_conv;
    ms6_act x, out;                      /* (batch, dim, L); out must not alias x */
    const float *weight;                 /* (dim, K) */
    int64_t weight_dim_stride;           /* 0 = K */
    const float *bias;                   /* (dim,), optional */
    int activation;                      /* 1 = SiLU */
    const float *initial_state;          /* (batch, dim, K-1), optional */
    float *final_state;                  /* (batch, dim, K-1), optional */
    int64_t state_batch_stride, state_dim_stride; /* 0,0 = packed */
} ms6_conv1d_params;

/*
 * One-step conv update: for each sequence, state (dim, K-1) holds the last
 * K-1 inputs. out = act(bias + sum_{k<K-1} w[k]*state[k] + w[K-1]*x), then
 * the state shifts left by one and x is appended. x, out are (batch, dim).
 * With state_batch_indices, a negative index is a padding slot (out zeroed,
 * state untouched).
 */
typedef struct ms6_conv1d_update_params {
    int64_t batch, dim, d_conv, n_state_slots;
    ms6_act x, out;
    float *state;                        /* (n_state_slots, dim, K-1), in place */
    int64_t state_batch_stride, state_dim_stride; /* 0,0 = packed */
    const float *weight;
    int64_t weight_dim_stride;
    const float *bias;
    int activation;
    const int32_t *state_batch_indices;  /* optional */
} ms6_conv1d_update_params;

/*
 * RMSNorm over rows of width `dim`, with optional fused residual add:
 *   if residual:  r = residual[row] (+ x[row] if add_x), residual[row] = r  (fp32)
 *   else          r = x[row]
 *   out[row] = r / sqrt(mean(r^2) + eps) * weight     (weight optional: NULL = 1)
 * x and out rows are at row*row_stride (+ i); residual is fp32 with
 * residual_row_stride. out may alias x.
 */
typedef struct ms6_rmsnorm_params {
    int64_t rows, dim;
    const void *x;        ms6_dtype x_dtype;   int64_t x_row_stride;
    void *out;            ms6_dtype out_dtype; int64_t out_row_stride;
    float *residual;      int64_t residual_row_stride; /* optional, fp32 */
    int add_x;            /* with residual: residual += x first */
    const float *weight;  /* (dim,), optional */
    float eps;
} ms6_rmsnorm_params;

ms6_status ms6_selective_scan_fwd(ms6_backend *be, const ms6_scan_params *p);
ms6_status ms6_selective_state_update(ms6_backend *be, const ms6_state_update_params *p);
ms6_status ms6_causal_conv1d_fwd(ms6_backend *be, const ms6_conv1d_params *p);
ms6_status ms6_causal_conv1d_update(ms6_backend *be, const ms6_conv1d_update_params *p);
ms6_status ms6_rmsnorm(ms6_backend *be, const ms6_rmsnorm_params *p);

/* ------------------------------------------------------------------ */
/* Model                                                               */
/* ------------------------------------------------------------------ */

typedef struct ms6_model ms6_model;

typedef struct ms6_model_options {
    ms6_backend_kind backend; /* default MS6_BACKEND_CPU */
    int n_threads;            /* CPU: 0 = all cores */
    int device;               /* CUDA device ordinal */
    int dtype;                /* CUDA weight type: -1 = checkpoint's half type
                                 (f16 for f32 checkpoints), else an ms6_dtype */
    int64_t max_batch;        /* CUDA: largest decode batch (0 = 1) */
    int64_t prefill_chunk;    /* tokens per prefill chunk, 0 = default (512; 2048 on cuda) */
} ms6_model_options;

/* Fills the defaults above. */
void ms6_model_options_init(ms6_model_options *opts);

typedef struct ms6_model_config {
    char model_type[32];      /* "mamba" or "falcon_mamba" */
    int64_t d_model, d_inner, d_state, d_conv, dt_rank, n_layer;
    int64_t vocab_size;       /* rows of the embedding (padded vocab) */
    int use_bias, use_conv_bias, residual_in_fp32, tied_embeddings;
    float norm_eps;           /* layer_norm_epsilon */
    float mixer_rms_eps;      /* falcon_mamba only */
    ms6_dtype storage_dtype;  /* dtype of the large matrices on disk */
    int64_t n_params;
} ms6_model_config;

/* Loads config.json + model.safetensors (or shards through
 * model.safetensors.index.json) from directory `dir`. opts may be NULL. */
ms6_status ms6_model_load(const char *dir, const ms6_model_options *opts,
                          ms6_model **out, ms6_error *err);
void ms6_model_free(ms6_model *model);
const ms6_model_config *ms6_model_get_config(const ms6_model *model); /* owned by model */
int64_t ms6_model_vocab_size(const ms6_model *model);
const char *ms6_model_last_error(const ms6_model *model);
/* Bytes of weights read per decoded token (the decode bandwidth floor). */
size_t ms6_model_weight_bytes(const ms6_model *model);

/* ------------------------------------------------------------------ */
/* Session: one sequence's state (conv + ssm) and scratch              */
/* ------------------------------------------------------------------ */

typedef struct ms6_session ms6_session;

/* The session borrows `model`, which must outlive it. */
ms6_status ms6_session_create(ms6_model *model, ms6_session **out, ms6_error *err);
void ms6_session_free(ms6_session *s);
const char *ms6_session_last_error(const ms6_session *s);

/* Runs n_ids tokens through the model, continuing from the current state.
 * logits (optional) receives (n_ids, vocab) floats when all_positions is
 * non-zero, else the vocab floats of the last position. */
ms6_status ms6_session_prefill(ms6_session *s, const int32_t *ids, int64_t n_ids,
                               float *logits, int all_positions);
/* One decode step: feeds `id`, writes vocab logits (optional). */
ms6_status ms6_session_step(ms6_session *s, int32_t id, float *logits);
/* A greedy decode step: feeds `id`, writes the most likely next token
 * (ms6_argmax of the logits) to *next. The argmax runs where the logits are:
 * on a GPU only the id is copied back, not vocab floats. */
ms6_status ms6_session_step_greedy(ms6_session *s, int32_t id, int32_t *next);
/* count greedy steps in one call: feeds `id`, then each token it makes;
 * out[i] (host, count ids) is the token after id (i = 0) or out[i-1], the
 * same as count calls of ms6_session_step_greedy. On a GPU each token goes
 * back into the next step on the device, the steps run back to back with no
 * host round trip between them, and the ids come back together. The
 * position advances by count; after a failure the state is undefined
 * (reset or restore it). Stop conditions (an end-of-text id) are the
 * caller's: generate in pieces of a few tokens to stop early. */
ms6_status ms6_session_generate_greedy(ms6_session *s, int32_t id, int64_t count, int32_t *out);
/* Back to the empty state (position 0). */
ms6_status ms6_session_reset(ms6_session *s);
/* Tokens consumed since creation or reset. */
int64_t ms6_session_position(const ms6_session *s);

/* State snapshot: a self-describing byte blob (header + conv + ssm states). */
size_t ms6_session_state_size(const ms6_session *s);
ms6_status ms6_session_snapshot(ms6_session *s, void *buf, size_t size);
ms6_status ms6_session_restore(ms6_session *s, const void *buf, size_t size);
ms6_status ms6_session_save_state(ms6_session *s, const char *path);
ms6_status ms6_session_load_state(ms6_session *s, const char *path);

/* ------------------------------------------------------------------ */
/* Batch: several sequences of different lengths decoded together       */
/* ------------------------------------------------------------------ */

/* A batch holds up to max_seqs sequence slots, each with its own conv +
 * ssm state. Sequences are added and prefilled one at a time (any length),
 * then stepped together: one weight read serves every sequence of a step,
 * so tokens/s grows with the batch until the GPU is compute-bound. Each
 * sequence's results equal decoding it alone in a session (up to rounding).
 *
 *     ms6_batch *b;
 *     ms6_batch_create(model, 8, &b, &err);
 *     int64_t s0, s1;
 *     ms6_batch_add(b, &s0);  ms6_batch_prefill(b, s0, p0, n0, NULL);
 *     ms6_batch_add(b, &s1);  ms6_batch_prefill(b, s1, p1, n1, NULL);
 *     int64_t slots[2] = {s0, s1};  int32_t next[2] = {...};
 *     ms6_batch_step(b, slots, next, 2, logits);   // logits (2, vocab)
 */
typedef struct ms6_batch ms6_batch;

/* The batch borrows `model`, which must outlive it. max_seqs >= 1. */
ms6_status ms6_batch_create(ms6_model *model, int64_t max_seqs, ms6_batch **out, ms6_error *err);
void ms6_batch_free(ms6_batch *b);
const char *ms6_batch_last_error(const ms6_batch *b);
/* Claims a free slot with an empty state; MS6_STATUS_OUT_OF_RANGE when all
 * max_seqs slots are in use. */
ms6_status ms6_batch_add(ms6_batch *b, int64_t *slot);
/* Releases a slot (its state is discarded). */
ms6_status ms6_batch_remove(ms6_batch *b, int64_t slot);
/* Runs n_ids tokens of sequence `slot`, continuing its state (in chunks of
 * the model's prefill_chunk). logits (optional): vocab floats of the last
 * token. */
ms6_status ms6_batch_prefill(ms6_batch *b, int64_t slot, const int32_t *ids, int64_t n_ids, float *logits);
/* One decode step for n distinct active slots: slots[i] is fed ids[i];
 * logits (optional) receives (n, vocab) floats, row i for slots[i]. */
ms6_status ms6_batch_step(ms6_batch *b, const int64_t *slots, const int32_t *ids, int64_t n, float *logits);
/* The same step, greedy: next[i] (host, n ids) = argmax of sequence
 * slots[i]'s logits, computed on the device (see ms6_session_step_greedy). */
ms6_status ms6_batch_step_greedy(ms6_batch *b, const int64_t *slots, const int32_t *ids, int64_t n, int32_t *next);
/* Tokens consumed by a slot (-1 when the slot is not active). */
int64_t ms6_batch_position(const ms6_batch *b, int64_t slot);

/* ------------------------------------------------------------------ */
/* Sampling                                                            */
/* ------------------------------------------------------------------ */

typedef struct ms6_sampler_params {
    float temperature;     /* 0 = greedy */
    int top_k;             /* 0 = off */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off */
    float repeat_penalty;  /* 1 = off; applied to the last repeat_last_n tokens */
    int repeat_last_n;     /* default 64 */
    uint64_t seed;
} ms6_sampler_params;

typedef struct ms6_sampler ms6_sampler;

void ms6_sampler_params_init(ms6_sampler_params *p); /* greedy defaults, seed 0 */
ms6_status ms6_sampler_create(const ms6_sampler_params *p, int64_t vocab_size,
                              ms6_sampler **out, ms6_error *err);
void ms6_sampler_free(ms6_sampler *smp);
/* Picks the next id from vocab_size logits (not modified). Same seed and
 * same inputs give the same ids. */
ms6_status ms6_sampler_sample(ms6_sampler *smp, const float *logits, int32_t *out_id);
/* Records an id for the repetition penalty (prompt tokens and outputs). */
void ms6_sampler_accept(ms6_sampler *smp, int32_t id);
const char *ms6_sampler_last_error(const ms6_sampler *smp);

/* Index of the largest value (first on ties). */
int32_t ms6_argmax(const float *x, int64_t n);

/* ------------------------------------------------------------------ */
/* Tokenizer (Hugging Face tokenizer.json, byte-level BPE)             */
/* ------------------------------------------------------------------ */

typedef struct ms6_tokenizer ms6_tokenizer;

ms6_status ms6_tokenizer_load(const char *path, ms6_tokenizer **out, ms6_error *err);
void ms6_tokenizer_free(ms6_tokenizer *tok);
const char *ms6_tokenizer_last_error(const ms6_tokenizer *tok);
int64_t ms6_tokenizer_vocab_size(const ms6_tokenizer *tok);

/* Encodes `len` bytes of UTF-8 text. Writes up to `cap` ids and the count
 * needed to *n_ids; returns MS6_STATUS_BUFFER_TOO_SMALL when cap is short
 * (call again with cap = *n_ids). cap = len + 1 covers ordinary text, but
 * NFC expands a few characters up to 3x (U+1D160, 4 bytes, becomes 12 ids), so
 * only cap = 3 * len + 1 is certain (tokenizers without add_prefix_space,
 * such as GPT-NeoX's). Invalid UTF-8 is replaced by U+FFFD (one per maximal
 * invalid subpart, as Python's errors='replace') before encoding. Special
 * tokens written in the text (<|endoftext|>) are encoded as their ids. */
ms6_status ms6_tokenizer_encode(ms6_tokenizer *tok, const char *text, size_t len,
                                int32_t *ids, size_t cap, size_t *n_ids);
/* Decodes ids to bytes (not NUL-terminated unless room remains; *len is
 * the byte count needed). MS6_STATUS_OUT_OF_RANGE for an unknown id.
 * Special tokens are kept; byte sequences that are not valid UTF-8 become
 * U+FFFD, so the text is always valid UTF-8 (`tokenizers` decode). */
ms6_status ms6_tokenizer_decode(ms6_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                char *text, size_t cap, size_t *len);

/* Streaming decoder: returns only complete UTF-8 characters, holding back
 * the bytes of a character split across tokens. */
typedef struct ms6_decoder ms6_decoder;
ms6_status ms6_decoder_create(const ms6_tokenizer *tok, ms6_decoder **out, ms6_error *err);
void ms6_decoder_free(ms6_decoder *dec);
/* *text points at bytes owned by dec, valid until the next call. */
ms6_status ms6_decoder_push(ms6_decoder *dec, int32_t id, const char **text, size_t *len);
/* Emits any held-back bytes (an incomplete character becomes U+FFFD). */
ms6_status ms6_decoder_flush(ms6_decoder *dec, const char **text, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* MAMBA_S6_H */
