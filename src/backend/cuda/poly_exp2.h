/*
 * poly_exp2.h - 2^x on the FMA and integer pipes (no special-function unit),
 * for the part of the scan's decays that the MS6_SCAN_POLY variants of the
 * v6 kernel move off the MUFU (scan.cu; docs/kernel-notes.md, "v6 with the
 * polynomial exp2").
 *
 * One formula for the device and the host: scan.cu calls it in device code,
 * tests/test_poly_exp2.c runs the same function on the CPU against exp2 in
 * double. Include it from C11 (host only) or from CUDA (host and device).
 *
 *   x  = max(x, -127)                 (NaN stays NaN: max.NaN on the device)
 *   t  = x + (1.5 * 2^23 + 127)       (rounds: low bits of t = 127 + j,
 *   j  = t - (1.5 * 2^23 + 127)        j = round(x), exact)
 *   f  = x - j                        (exact, in [-0.5, 0.5])
 *   p  = 1 + f (c1 + f (c2 + f (c3 + f (c4 + f c5))))   (Horner, 5 FFMA)
 *   2^j = bits(t) << 23               (the exponent field 127 + j; 0.0 for
 *                                      j = -127, so x <= -126.5 gives 0)
 *   2^x = p * 2^j
 *
 * 11 instructions where the MUFU path has one (FMNMX, 3 FADD, 5 FFMA, SHL,
 * FMUL). c1..c5: minimax relative error of p against 2^f on [-0.5, 0.5]
 * with p(0) = 1 fixed (Remez, 9.1e-8); evaluated in fp32 the maximum
 * relative error over x in [-126, 0] is about 2e-7 (the check's dense
 * sweep; ex2.approx: about 2^-22 = 2.4e-7). x = 0 and -0 give exactly 1.
 *
 * Range: x <= -126.5 gives +0 exactly (ex2.approx.ftz: 0 below -126);
 * -126.5 < x < -126 a subnormal (p * 2^-126, correctly rounded; flushed to
 * 0 only when built with -ftz=true); -inf gives 0; NaN gives NaN. The
 * upper end is not clamped (the scan's x = dt*A*log2(e) is <= 0 for
 * softplus dt and negative A): correct up to x < 128.5 (2^128 and above:
 * +inf from j = 128), meaningless beyond (the exponent field wraps; the
 * true result overflows there).
 */
#ifndef MS6_POLY_EXP2_H
#define MS6_POLY_EXP2_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define MS6_POLY_FN static __host__ __device__ __forceinline__
#else
#define MS6_POLY_FN static inline
#endif

MS6_POLY_FN float ms6_poly_exp2(float x) {
    const float kRound = 12582912.0f + 127.0f; /* 1.5 * 2^23 + 127: exact */
#ifdef __CUDA_ARCH__
    asm("max.NaN.f32 %0, %0, 0fC2FE0000;" : "+f"(x)); /* -127 */
#else
    x = x < -127.0f ? -127.0f : x; /* NaN compares false: stays NaN */
#endif
    const float t = x + kRound;
    const float j = t - kRound;
    const float f = x - j;
    float p = fmaf(1.326472731e-03f, f, 9.671512991e-03f);
    p = fmaf(p, f, 5.550733581e-02f);
    p = fmaf(p, f, 2.402224243e-01f);
    p = fmaf(p, f, 6.931470037e-01f);
    p = fmaf(p, f, 1.0f);
#ifdef __CUDA_ARCH__
    const float s = __uint_as_float(__float_as_uint(t) << 23);
#else
    uint32_t u;
    float s;
    memcpy(&u, &t, sizeof u);
    u <<= 23;
    memcpy(&s, &u, sizeof s);
#endif
    return p * s;
}

#endif
