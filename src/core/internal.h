/* Internal helpers shared by every part of the library. */
#ifndef MS6_CORE_INTERNAL_H
#define MS6_CORE_INTERNAL_H

#include "mamba_s6.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS6_ERRMSG_SIZE 512

/* printf into a fixed message buffer; returns status so callers can
 * `return ms6_fail(buf, MS6_STATUS_..., "...")`. */
ms6_status ms6_fmt_error(char *buf, ms6_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
ms6_status ms6_vfmt_error(char *buf, ms6_status status, const char *fmt, va_list ap);

/* Fills an optional ms6_error from a message buffer. */
void ms6_error_set(ms6_error *err, ms6_status status, const char *msg);

/* Element load/store by dtype tag (host code). */
static inline float ms6_load(const void *p, ms6_dtype t, int64_t i) {
    switch (t) {
    case MS6_DTYPE_F16: return ms6_f16_to_f32(((const uint16_t *)p)[i]);
    case MS6_DTYPE_BF16: return ms6_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

static inline void ms6_store(void *p, ms6_dtype t, int64_t i, float v) {
    switch (t) {
    case MS6_DTYPE_F16: ((uint16_t *)p)[i] = ms6_f32_to_f16(v); break;
    case MS6_DTYPE_BF16: ((uint16_t *)p)[i] = ms6_f32_to_bf16(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int ms6_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

#ifdef __cplusplus
}
#endif

#endif
