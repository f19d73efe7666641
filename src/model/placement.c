/*
 * placement.c - the type large matrices take in device memory, and their
 * converting upload.
 *
 * Decode is bound by the bytes of weights read per token, so on a GPU the
 * matrices (embedding, in/x/dt/out_proj, lm_head) are kept in a 16-bit type:
 * by default the checkpoint's own half type (bf16 stays bf16, f16 stays
 * f16) and f16 for f32 checkpoints; ms6_model_options.dtype picks another
 * (f32 gives fp32 arithmetic end to end, for accuracy checks). The gemm
 * accumulates in fp32 whatever the storage type. Small per-channel tensors
 * stay fp32 (model.c). Conversion to f16 saturates at +-65504 instead of
 * overflowing to infinity (bf16 and f32 have a wider range than f16).
 * The upload converts through a bounded host buffer, one slab at a time, so
 * a 5.5 GB checkpoint never needs a second host copy.
 */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#define SLAB_ELEMS ((int64_t)1 << 22)

ms6_dtype ms6_placement_dtype(int requested, ms6_dtype stored) {
    if (requested >= 0 && requested < MS6_DTYPE_COUNT) return (ms6_dtype)requested;
    return stored == MS6_DTYPE_F32 ? MS6_DTYPE_F16 : stored;
}

ms6_status ms6_placement_check(int requested, char *msg) {
    if (requested < -1 || requested >= MS6_DTYPE_COUNT)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                             "model option dtype = %d; expected -1 (checkpoint's half type), 0 (f32), 1 (f16) or 2 (bf16)",
                             requested);
    return MS6_STATUS_OK;
}

static float load_unaligned(const void *p, ms6_dtype t, int64_t i) {
    if (t == MS6_DTYPE_F32) {
        float v;
        memcpy(&v, (const char *)p + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return t == MS6_DTYPE_F16 ? ms6_f16_to_f32(h) : ms6_bf16_to_f32(h);
}

ms6_status ms6_placement_upload(ms6_backend *be, void *dst, const ms6_st_tensor *t, ms6_dtype to, char *msg) {
    if (to == t->dtype) {
        ms6_status st = ms6_backend_upload(be, dst, t->data, t->nbytes);
        if (st != MS6_STATUS_OK)
            return ms6_fmt_error(msg, st, "cannot upload tensor '%s': %s", t->name, ms6_backend_last_error(be));
        return MS6_STATUS_OK;
    }
    const size_t es = ms6_dtype_size(to);
    const int64_t slab = t->n_elements < SLAB_ELEMS ? t->n_elements : SLAB_ELEMS;
    void *buf = malloc((size_t)(slab > 0 ? slab : 1) * es);
    if (!buf) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory converting tensor '%s'", t->name);
    ms6_status st = MS6_STATUS_OK;
    for (int64_t i0 = 0; i0 < t->n_elements && st == MS6_STATUS_OK; i0 += slab) {
        const int64_t n = t->n_elements - i0 < slab ? t->n_elements - i0 : slab;
        for (int64_t j = 0; j < n; j++) {
            float v = load_unaligned(t->data, t->dtype, i0 + j);
            if (to == MS6_DTYPE_F16) v = v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v;
            ms6_store(buf, to, j, v);
        }
        st = ms6_backend_upload(be, (char *)dst + (size_t)i0 * es, buf, (size_t)n * es);
        /* the staging buffer is reused for the next slab: wait for this copy */
        if (st == MS6_STATUS_OK) st = ms6_backend_synchronize(be);
        if (st != MS6_STATUS_OK)
            ms6_fmt_error(msg, st, "cannot upload tensor '%s': %s", t->name, ms6_backend_last_error(be));
    }
    free(buf);
    return st;
}
