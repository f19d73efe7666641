/*
 * model_internal.h - the loaded model (weights placed for one backend),
 * per-sequence state, per-session scratch, and the forward pass that runs
 * above the backend ops table (forward.c).
 *
 * Three lifetimes, one owner each:
 *   ms6_model        weights, read-only after load (shared by sessions)
 *   ms6_fwd_state    conv + ssm state of n_seq sequences (snapshot/restore)
 *   ms6_fwd_scratch  activations of one chunk / one batched step
 * Every pointer below that the ops read is backend memory (host memory on
 * the CPU backends, device memory on CUDA); host copies are made only
 * through ms6_backend_upload / ms6_backend_download.
 */
#ifndef MS6_MODEL_INTERNAL_H
#define MS6_MODEL_INTERNAL_H

#include "backend/backend.h"
#include "io/io_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MS6_DEFAULT_PREFILL_CHUNK 512
/* On a GPU larger chunks keep the GEMMs on the tensor cores' efficient sizes
 * (2.8b in_proj: 2048 rows in 159 us vs 4 x 47 us for 512). */
#define MS6_CUDA_PREFILL_CHUNK 2048

/* A large matrix in its storage dtype (the gemm converts on the fly). */
typedef struct ms6_wview {
    const void *ptr;
    ms6_dtype dtype;
} ms6_wview;

/* One Mamba block. Matrices are PyTorch Linear weights (out, in); small
 * per-channel tensors are fp32, converted at load. */
typedef struct ms6_layer_weights {
    const float *norm;          /* (d_model,) RMSNorm weight */
    ms6_wview in_proj;          /* (2*d_inner, d_model): rows [0, d_inner) give x, [d_inner, 2*d_inner) z */
    const float *in_proj_bias;  /* (2*d_inner,) or NULL (use_bias) */
    const float *conv_w;        /* (d_inner, d_conv), from conv1d.weight (d_inner, 1, d_conv) */
    const float *conv_b;        /* (d_inner,) or NULL (use_conv_bias) */
    ms6_wview x_proj;           /* (dt_rank + 2*d_state, d_inner) */
    ms6_wview dt_proj;          /* (d_inner, dt_rank) */
    const float *dt_bias;       /* (d_inner,) dt_proj.bias, added inside the scan before softplus */
    const float *A;             /* (d_inner, d_state) = -exp(A_log), computed in fp32 at load */
    const float *D;             /* (d_inner,) */
    ms6_wview out_proj;         /* (d_model, d_inner) */
    const float *out_proj_bias; /* (d_model,) or NULL (use_bias) */
} ms6_layer_weights;

struct ms6_model {
    ms6_config_ext cfg;         /* cfg.pub is what ms6_model_get_config returns */
    ms6_backend *be;
    ms6_st *st;                 /* the mapped checkpoint; big matrices may point into it */
    ms6_wview embedding;        /* (vocab_size, d_model) */
    ms6_wview lm_head;          /* (vocab_size, d_model); same pointer as embedding when tied */
    const float *norm_f;        /* (d_model,) */
    ms6_layer_weights *layers;  /* (n_layer,) host array of views into backend memory */
    void *small;                /* one backend buffer holding every fp32 per-channel tensor */
    void **owned;               /* backend copies of big matrices (device placement, unaligned data) */
    int n_owned;
    int64_t prefill_chunk;
    int weight_dtype;           /* ms6_model_options.dtype: device matrix type, -1 = the checkpoint's half type */
    size_t weight_bytes;
    char dir[512];
    char err[MS6_ERRMSG_SIZE];
};

/* Conv + ssm state of n_seq sequences. Each sequence owns two copies
 * (slots 2*s and 2*s+1 of every layer); cur[s] says which one holds its
 * present state. A prefill chunk reads the current copy and writes the
 * other, then flips cur[s], so no op ever reads and writes the same state
 * buffer (initial_state and final_state never alias, whatever the backend).
 * A decode step updates the current copy in place, as the update ops are
 * defined to. */
typedef struct ms6_fwd_state {
    int64_t n_seq;
    float *conv;   /* (n_layer, 2*n_seq, d_inner, d_conv-1) fp32, backend memory */
    float *ssm;    /* (n_layer, 2*n_seq, d_inner, d_state)  fp32, backend memory */
    int32_t *cur;  /* (n_seq,) host: 0 or 1 */
} ms6_fwd_state;

/* Activations for up to `rows` tokens (a prefill chunk) or sequences (a
 * batched step), token-major: row t of a (rows, width) buffer is at t*width.
 * All fp32, backend memory. */
typedef struct ms6_fwd_scratch {
    int64_t rows;
    int64_t logit_rows;  /* rows of `logits`; lm_head runs in blocks of this many */
    float *residual;     /* (rows, d_model) the residual stream, fp32 */
    float *h;            /* (rows, d_model) normed input of a block */
    float *xz;           /* (rows, 2*d_inner) in_proj output: x | z */
    float *u;            /* (rows, d_inner) conv + SiLU output */
    float *dbc;          /* (rows, dt_rank + 2*d_state) x_proj output: dt | B | C */
    float *delta;        /* (rows, d_inner) dt_proj output (bias and softplus applied in the scan) */
    float *y;            /* (rows, d_inner) gated scan output */
    float *out;          /* (rows, d_model) out_proj output */
    float *logits;       /* (logit_rows, vocab_size) */
    int32_t *ids;        /* (rows,) token ids */
    int32_t *slots;      /* (rows,) state slot of each sequence in a step */
    int32_t *gen_log;    /* (MS6_GEN_LOG,) ids of a device-fed greedy decode */
    int32_t *gen_pos;    /* (MS6_FEED_POS,) its position, then the argmax ops' own counters */
    void *graphs;        /* captured decode steps (graph.c), host object; NULL until the first */
} ms6_fwd_scratch;

ms6_status ms6_fwd_state_init(ms6_model *m, int64_t n_seq, ms6_fwd_state *s, char *msg);
void ms6_fwd_state_free(ms6_model *m, ms6_fwd_state *s);
/* Zeroes both copies of sequence `seq`. */
ms6_status ms6_fwd_state_reset(ms6_model *m, ms6_fwd_state *s, int64_t seq, char *msg);
/* Current state of one sequence <-> host: conv (n_layer, d_inner, d_conv-1)
 * then ssm (n_layer, d_inner, d_state), fp32. */
ms6_status ms6_fwd_state_download(ms6_model *m, ms6_fwd_state *s, int64_t seq, float *conv, float *ssm, char *msg);
ms6_status ms6_fwd_state_upload(ms6_model *m, ms6_fwd_state *s, int64_t seq, const float *conv, const float *ssm,
                                char *msg);

ms6_status ms6_fwd_scratch_init(ms6_model *m, int64_t rows, ms6_fwd_scratch *w, char *msg);
void ms6_fwd_scratch_free(ms6_model *m, ms6_fwd_scratch *w);

/* Runs L tokens (1 <= L <= w->rows, ids already range-checked) of sequence
 * `seq`, continuing from its state. logits (host, optional): (L, vocab)
 * when all_positions, else the vocab logits of the last token. */
ms6_status ms6_forward_chunk(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t seq, const int32_t *ids,
                             int64_t L, float *logits, int all_positions, char *msg);

/* One decode step for n sequences at once (1 <= n <= w->rows): sequence
 * seqs[i] (distinct) is fed ids[i]; logits (host, optional) receives
 * (n, vocab); next (host, optional) the argmax of each row, computed where
 * the logits are (on a GPU only the ids are copied back). */
ms6_status ms6_forward_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, const int64_t *seqs,
                            const int32_t *ids, int64_t n, float *logits, int32_t *next, char *msg);

/* Greedy decode of `count` tokens of sequence seq (ids range-checked):
 * out[i] (host) is the argmax after feeding id (i = 0) or out[i-1]. Where
 * the backend has argmax_feed each step's argmax goes straight into the
 * next step's id on the device, the steps are enqueued back to back and the
 * ids come back once per MS6_GEN_LOG steps; elsewhere it is count
 * ms6_forward_step calls. The same tokens either way. */
#define MS6_GEN_LOG 1024
ms6_status ms6_forward_generate_greedy(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t seq, int32_t id,
                                       int64_t count, int32_t *out, char *msg);

/* ---- device placement and decode graphs (placement.c, graph.c) ---- */

/* The dtype a large matrix stored as `stored` takes on a device backend:
 * `requested` (an ms6_dtype) or, for -1, the checkpoint's own half type
 * (f16 for f32 checkpoints). */
ms6_dtype ms6_placement_dtype(int requested, ms6_dtype stored);
/* Checks ms6_model_options.dtype (-1 or an ms6_dtype). */
ms6_status ms6_placement_check(int requested, char *msg);
/* Uploads tensor t to dst (backend memory) converted to dtype `to`, through
 * a bounded host staging buffer. */
ms6_status ms6_placement_upload(ms6_backend *be, void *dst, const ms6_st_tensor *t, ms6_dtype to, char *msg);

/* The device part of one decode step for n sequences (ids and slots already
 * in the scratch buffers). */
typedef ms6_status (*ms6_step_body)(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, char *msg);
/* Runs body, on CUDA through a CUDA graph captured on the second step of
 * each (state, n, body) and replayed afterwards; elsewhere just calls it. */
ms6_status ms6_graph_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, ms6_step_body body,
                          char *msg);
void ms6_graph_cache_free(ms6_fwd_scratch *w);

#ifdef __cplusplus
}
#endif

#endif
