/*
 * fast_kern.h - the fast CPU kernels, written once over an 8-lane fp32
 * vector type V8 and included by one translation unit per ISA:
 *   fast_isa_avx2.c    FAST_ISA_AVX2    __m256, FMA, F16C
 *   fast_isa_neon.c    FAST_ISA_NEON    two float32x4_t
 *   fast_isa_scalar.c  FAST_ISA_SCALAR  float[8] loops (portable C)
 * The including file defines FAST_TABLE (the exported table's name) and
 * FAST_NAME. Everything here is static.
 *
 * Numerics
 *   - Weights are converted to fp32 in registers (f16 and bf16 to fp32 are
 *     exact), all arithmetic is fp32 with fp32 accumulation.
 *   - exp: Cephes-style. n = round(x*log2(e)), r = x - n*ln2 with ln2 split
 *     in two (Cody-Waite: 0.693359375 exact in 9 bits, then -2.12194440e-4),
 *     so r in [-ln2/2, ln2/2] is exact to ~1e-11; e^r by a degree-7
 *     polynomial (1 + r + r^2*P(r), P of degree 5, minimax coefficients);
 *     times 2^n built in the exponent bits. Measured error against a
 *     float64 exp over [-87.3, 88] (tests/test_cpu_fast.c): at most 2 ulp
 *     with FMA (AVX2, NEON), 2 ulp without. Outside that range: x < ln(FLT_MIN)
 *     (-87.33654) returns 0 (exact result < 1.2e-38, subnormal), x > 88
 *     returns +inf (exact result in [1.65e38, inf)), NaN stays NaN. The
 *     scan only uses it for exp(dt*A) <= 1 and exp(-|x|), where this range
 *     covers everything that is not flushed to 0 anyway.
 *   - log (for softplus): Cephes logf. x = m*2^e with m in [sqrt(1/2), sqrt(2)),
 *     log(m) = f - f^2/2 + f^3*Q(f), f = m - 1, Q of degree 8; ~1 ulp.
 *   - softplus(x) = x for x > 20 (PyTorch's threshold), else log1p(exp(x)),
 *     with log1p(e) = log(s) + (e - (s - 1))/s, s = 1 + e rounded: the
 *     second term restores what the rounding of 1 + e lost, so small e gives
 *     log1p(e) ~ e to full precision.
 *   - silu(z) = z / (1 + exp(-z)).
 */
#include "backend/cpu/fast.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The 8-lane vector type                                              */
/* ------------------------------------------------------------------ */

#if defined(FAST_ISA_AVX2)

typedef __m256 V8;
typedef __m256 M8;
static inline V8 v8_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v8_store(float *p, V8 v) { _mm256_storeu_ps(p, v); }
static inline V8 v8_set1(float x) { return _mm256_set1_ps(x); }
static inline V8 v8_zero(void) { return _mm256_setzero_ps(); }
static inline V8 v8_add(V8 a, V8 b) { return _mm256_add_ps(a, b); }
static inline V8 v8_sub(V8 a, V8 b) { return _mm256_sub_ps(a, b); }
static inline V8 v8_mul(V8 a, V8 b) { return _mm256_mul_ps(a, b); }
static inline V8 v8_div(V8 a, V8 b) { return _mm256_div_ps(a, b); }
static inline V8 v8_fma(V8 a, V8 b, V8 c) { return _mm256_fmadd_ps(a, b, c); }
static inline V8 v8_max(V8 a, V8 b) { return _mm256_max_ps(a, b); }
static inline V8 v8_min(V8 a, V8 b) { return _mm256_min_ps(a, b); }
static inline V8 v8_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline V8 v8_load_bf16(const uint16_t *p) {
    const __m256i i = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 16));
}
static inline float v8_hsum(V8 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static inline V8 v8_round(V8 x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* 2^n for integral n in [-126, 127] */
static inline V8 v8_pow2i(V8 n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
/* x > 0 normal: mantissa in [0.5, 1), *e = exponent (as float) */
static inline V8 v8_frexp(V8 x, V8 *e) {
    const __m256i b = _mm256_castps_si256(x);
    *e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(126)));
    const __m256i m = _mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32((int)0x807fffffu)),
                                      _mm256_set1_epi32(0x3f000000));
    return _mm256_castsi256_ps(m);
}
static inline M8 v8_lt(V8 a, V8 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline M8 v8_gt(V8 a, V8 b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline M8 v8_isnan(V8 a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline V8 v8_select(M8 m, V8 a, V8 b) { return _mm256_blendv_ps(b, a, m); }

#elif defined(FAST_ISA_NEON)

typedef struct { float32x4_t a, b; } V8;
typedef struct { uint32x4_t a, b; } M8;
static inline V8 v8_load(const float *p) { V8 r = {vld1q_f32(p), vld1q_f32(p + 4)}; return r; }
static inline void v8_store(float *p, V8 v) { vst1q_f32(p, v.a); vst1q_f32(p + 4, v.b); }
static inline V8 v8_set1(float x) { V8 r = {vdupq_n_f32(x), vdupq_n_f32(x)}; return r; }
static inline V8 v8_zero(void) { return v8_set1(0.0f); }
#define NEON_BIN(name, op) \
    static inline V8 name(V8 x, V8 y) { V8 r = {op(x.a, y.a), op(x.b, y.b)}; return r; }
NEON_BIN(v8_add, vaddq_f32)
NEON_BIN(v8_sub, vsubq_f32)
NEON_BIN(v8_mul, vmulq_f32)
NEON_BIN(v8_div, vdivq_f32)
NEON_BIN(v8_max, vmaxq_f32)
NEON_BIN(v8_min, vminq_f32)
static inline V8 v8_fma(V8 x, V8 y, V8 c) { V8 r = {vfmaq_f32(c.a, x.a, y.a), vfmaq_f32(c.b, x.b, y.b)}; return r; }
static inline V8 v8_load_f16(const uint16_t *p) {
    V8 r = {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4)))};
    return r;
}
static inline V8 v8_load_bf16(const uint16_t *p) {
    V8 r = {vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)), vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p + 4), 16))};
    return r;
}
static inline float v8_hsum(V8 v) { return vaddvq_f32(vaddq_f32(v.a, v.b)); }
static inline V8 v8_round(V8 x) { V8 r = {vrndnq_f32(x.a), vrndnq_f32(x.b)}; return r; }
static inline float32x4_t neon_pow2i(float32x4_t n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23));
}
static inline V8 v8_pow2i(V8 n) { V8 r = {neon_pow2i(n.a), neon_pow2i(n.b)}; return r; }
static inline float32x4_t neon_frexp(float32x4_t x, float32x4_t *e) {
    const uint32x4_t b = vreinterpretq_u32_f32(x);
    *e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(b, 23)), vdupq_n_s32(126)));
    return vreinterpretq_f32_u32(vorrq_u32(vandq_u32(b, vdupq_n_u32(0x807fffffu)), vdupq_n_u32(0x3f000000u)));
}
static inline V8 v8_frexp(V8 x, V8 *e) { V8 r = {neon_frexp(x.a, &e->a), neon_frexp(x.b, &e->b)}; return r; }
static inline M8 v8_lt(V8 x, V8 y) { M8 r = {vcltq_f32(x.a, y.a), vcltq_f32(x.b, y.b)}; return r; }
static inline M8 v8_gt(V8 x, V8 y) { M8 r = {vcgtq_f32(x.a, y.a), vcgtq_f32(x.b, y.b)}; return r; }
static inline M8 v8_isnan(V8 x) { M8 r = {vmvnq_u32(vceqq_f32(x.a, x.a)), vmvnq_u32(vceqq_f32(x.b, x.b))}; return r; }
static inline V8 v8_select(M8 m, V8 x, V8 y) { V8 r = {vbslq_f32(m.a, x.a, y.a), vbslq_f32(m.b, x.b, y.b)}; return r; }

#elif defined(FAST_ISA_SCALAR)

typedef struct { float v[8]; } V8;
typedef struct { int m[8]; } M8;
static inline V8 v8_load(const float *p) { V8 r; memcpy(r.v, p, sizeof r.v); return r; }
static inline void v8_store(float *p, V8 v) { memcpy(p, v.v, sizeof v.v); }
static inline V8 v8_set1(float x) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = x; return r; }
static inline V8 v8_zero(void) { return v8_set1(0.0f); }
#define SCALAR_BIN(name, expr) \
    static inline V8 name(V8 x, V8 y) { V8 r; for (int i = 0; i < 8; i++) { const float a = x.v[i], b = y.v[i]; r.v[i] = (expr); } return r; }
SCALAR_BIN(v8_add, a + b)
SCALAR_BIN(v8_sub, a - b)
SCALAR_BIN(v8_mul, a * b)
SCALAR_BIN(v8_div, a / b)
SCALAR_BIN(v8_max, a > b ? a : b)
SCALAR_BIN(v8_min, a < b ? a : b)
/* portable: multiply then add (two roundings) */
static inline V8 v8_fma(V8 x, V8 y, V8 c) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = x.v[i] * y.v[i] + c.v[i]; return r; }
static inline V8 v8_load_f16(const uint16_t *p) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = ms6_f16_to_f32(p[i]); return r; }
static inline V8 v8_load_bf16(const uint16_t *p) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = ms6_bf16_to_f32(p[i]); return r; }
static inline float v8_hsum(V8 v) {
    return ((v.v[0] + v.v[4]) + (v.v[2] + v.v[6])) + ((v.v[1] + v.v[5]) + (v.v[3] + v.v[7]));
}
static inline V8 v8_round(V8 x) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = nearbyintf(x.v[i]); return r; }
static inline V8 v8_pow2i(V8 n) {
    V8 r;
    for (int i = 0; i < 8; i++) {
        const uint32_t b = (uint32_t)((int32_t)n.v[i] + 127) << 23;
        memcpy(&r.v[i], &b, 4);
    }
    return r;
}
static inline V8 v8_frexp(V8 x, V8 *e) {
    V8 r;
    for (int i = 0; i < 8; i++) {
        uint32_t b;
        memcpy(&b, &x.v[i], 4);
        e->v[i] = (float)((int32_t)(b >> 23) - 126);
        b = (b & 0x807fffffu) | 0x3f000000u;
        memcpy(&r.v[i], &b, 4);
    }
    return r;
}
static inline M8 v8_lt(V8 x, V8 y) { M8 r; for (int i = 0; i < 8; i++) r.m[i] = x.v[i] < y.v[i]; return r; }
static inline M8 v8_gt(V8 x, V8 y) { M8 r; for (int i = 0; i < 8; i++) r.m[i] = x.v[i] > y.v[i]; return r; }
static inline M8 v8_isnan(V8 x) { M8 r; for (int i = 0; i < 8; i++) r.m[i] = x.v[i] != x.v[i]; return r; }
static inline V8 v8_select(M8 m, V8 x, V8 y) { V8 r; for (int i = 0; i < 8; i++) r.v[i] = m.m[i] ? x.v[i] : y.v[i]; return r; }

#else
#error "fast_kern.h: define FAST_ISA_AVX2, FAST_ISA_NEON or FAST_ISA_SCALAR"
#endif

/* ------------------------------------------------------------------ */
/* Math                                                                */
/* ------------------------------------------------------------------ */

/* exp(xc) for xc already clamped to [-87.33654, 88]: n = round(xc*log2 e),
 * r = xc - n*ln 2 in two parts, a degree-7 polynomial for exp(r), times 2^n. */
static inline V8 v8_exp_clamped(V8 xc) {
    const V8 n = v8_round(v8_mul(xc, v8_set1(1.44269504088896341f)));
    V8 r = v8_fma(n, v8_set1(-0.693359375f), xc);
    r = v8_fma(n, v8_set1(2.12194440e-4f), r);
    V8 y = v8_set1(1.9875691500e-4f);
    y = v8_fma(y, r, v8_set1(1.3981999507e-3f));
    y = v8_fma(y, r, v8_set1(8.3334519073e-3f));
    y = v8_fma(y, r, v8_set1(4.1665795894e-2f));
    y = v8_fma(y, r, v8_set1(1.6666665459e-1f));
    y = v8_fma(y, r, v8_set1(5.0000001201e-1f));
    y = v8_fma(y, v8_mul(r, r), v8_add(r, v8_set1(1.0f)));
    return v8_mul(y, v8_pow2i(n));
}

static inline V8 v8_exp(V8 x) {
    const V8 hi = v8_set1(88.0f), lo = v8_set1(-87.33654f);
    V8 y = v8_exp_clamped(v8_min(v8_max(x, lo), hi));
    y = v8_select(v8_lt(x, lo), v8_zero(), y);
    y = v8_select(v8_gt(x, hi), v8_set1(INFINITY), y);
    return v8_select(v8_isnan(x), x, y);
}

/* The same polynomial for the scan's exp(dt*A), without the edge-case
 * selects (a quarter of the work): x is clamped to [-87.33654, 88], so
 * x < -87.34 gives ~1.2e-38 instead of a subnormal or 0 (an absolute
 * difference below 1.2e-38 in a decay factor) and x > 88 gives 1.65e38
 * instead of +inf; the bounds come first in max/min, so a NaN x stays NaN. */
static inline V8 v8_exp_scan(V8 x) {
    return v8_exp_clamped(v8_min(v8_set1(88.0f), v8_max(v8_set1(-87.33654f), x)));
}

/* natural log of x > 0 (normal, finite) */
static inline V8 v8_log(V8 x) {
    V8 e;
    V8 m = v8_frexp(x, &e);
    const V8 one = v8_set1(1.0f);
    const M8 small = v8_lt(m, v8_set1(0.707106781186547524f));
    /* m < sqrt(1/2): use 2m - 1 and e - 1, so m lies in [sqrt(1/2), sqrt(2)) */
    const V8 add = v8_select(small, m, v8_zero());
    m = v8_add(v8_sub(m, one), add);
    e = v8_sub(e, v8_select(small, one, v8_zero()));
    const V8 z = v8_mul(m, m);
    V8 y = v8_set1(7.0376836292e-2f);
    y = v8_fma(y, m, v8_set1(-1.1514610310e-1f));
    y = v8_fma(y, m, v8_set1(1.1676998740e-1f));
    y = v8_fma(y, m, v8_set1(-1.2420140846e-1f));
    y = v8_fma(y, m, v8_set1(1.4249322787e-1f));
    y = v8_fma(y, m, v8_set1(-1.6668057665e-1f));
    y = v8_fma(y, m, v8_set1(2.0000714765e-1f));
    y = v8_fma(y, m, v8_set1(-2.4999993993e-1f));
    y = v8_fma(y, m, v8_set1(3.3333331174e-1f));
    y = v8_mul(v8_mul(y, m), z);
    y = v8_fma(e, v8_set1(-2.12194440e-4f), y);
    y = v8_fma(z, v8_set1(-0.5f), y);
    return v8_fma(e, v8_set1(0.693359375f), v8_add(m, y));
}

static inline V8 v8_softplus(V8 x) {
    const V8 e = v8_exp(x);
    const V8 s = v8_add(v8_set1(1.0f), e);
    const V8 corr = v8_div(v8_sub(e, v8_sub(s, v8_set1(1.0f))), s);
    const V8 r = v8_add(v8_log(s), corr);
    return v8_select(v8_gt(x, v8_set1(20.0f)), x, r);
}

static inline V8 v8_silu(V8 z) {
    return v8_div(z, v8_add(v8_set1(1.0f), v8_exp(v8_sub(v8_zero(), z))));
}

static void k_exp(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) v8_store(y + i, v8_exp(v8_load(x + i)));
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (size_t)(n - i));
        v8_store(t, v8_exp(v8_load(t)));
        memcpy(y + i, t, sizeof(float) * (size_t)(n - i));
    }
}

/* Loads 8 activation values for channels ch[0..7] at one (b, t). */
static inline V8 gather_act(const ms6_act *a, int64_t base, const int64_t *ch) {
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = ms6_load(a->ptr, a->dtype, base + ch[i] * a->dim_stride);
    return v8_load(t);
}

static inline void scatter_act(const ms6_act *a, int64_t base, int64_t d0, int nl, V8 v) {
    float t[8];
    v8_store(t, v);
    for (int i = 0; i < nl; i++) ms6_store(a->ptr, a->dtype, base + (d0 + i) * a->dim_stride, t[i]);
}

static inline int act_fast(const ms6_act *a) { return a->dtype == MS6_DTYPE_F32 && a->dim_stride == 1; }

/* ------------------------------------------------------------------ */
/* Matrix products: decode (M = 1) and prefill (M = L) alike            */
/* ------------------------------------------------------------------ */

/* A register tile of MR rows of x (1..3) by 4 rows of W: 12 accumulators
 * whose lanes hold k mod 8, one x vector per row, one W vector at a time
 * (converted from f16/bf16 in the register). Rows of x and W are both
 * K-contiguous, so nothing is packed: W is read in its storage type, once
 * per tile of x rows (from memory for decode, from L2 for prefill).
 *
 * Order of every y element, whatever the tile, M or thread count:
 *   8 lanes of FMA over k < K8 (K rounded down to 8), a fixed horizontal
 *   sum, then the k tail in order, then + bias, then + old y (accumulate).
 * So a token's logits are the same bits through a decode step, a prefill
 * of one token or a row of a long prefill. */
/* decode: streams through W per thread (see gemv below) */
#define GEMV_S 4
#define GEMM_DEF(SUF, T, LOADV, LOADS)                                                                    \
    static inline __attribute__((always_inline)) void tile_##SUF(                                        \
        const int MR, int64_t K, const float *x, int64_t ldx, const T *w, int64_t ldw, int nr, float *y,   \
        int64_t ldy, const float *bias, int acc) {                                                        \
        const T *wr[4] = {w, w + (nr > 1 ? 1 : 0) * ldw, w + (nr > 2 ? 2 : 0) * ldw,                     \
                          w + (nr > 3 ? 3 : 0) * ldw};                                                    \
        V8 c[3][4];                                                                                        \
        for (int i = 0; i < MR; i++)                                                                       \
            for (int j = 0; j < 4; j++) c[i][j] = v8_zero();                                               \
        const int64_t K8 = K & ~(int64_t)7;                                                                \
        for (int64_t k = 0; k < K8; k += 8) {                                                              \
            V8 xv[3];                                                                                      \
            for (int i = 0; i < MR; i++) xv[i] = v8_load(x + i * ldx + k);                                 \
            for (int j = 0; j < 4; j++) {                                                                  \
                const V8 wv = LOADV(wr[j] + k);                                                            \
                for (int i = 0; i < MR; i++) c[i][j] = v8_fma(xv[i], wv, c[i][j]);                         \
            }                                                                                              \
        }                                                                                                  \
        for (int i = 0; i < MR; i++)                                                                       \
            for (int j = 0; j < nr; j++) {                                                                 \
                float s = v8_hsum(c[i][j]);                                                                \
                for (int64_t k = K8; k < K; k++) s += x[i * ldx + k] * LOADS(wr[j][k]);                    \
                if (bias) s += bias[j];                                                                    \
                if (acc) s += y[i * ldy + j];                                                              \
                y[i * ldy + j] = s;                                                                        \
            }                                                                                              \
    }                                                                                                      \
    /* decode (M = 1): W read as GEMV_S = 4 sequential streams, rows q,                                  \
     * q + h, q + 2h, q + 3h (h = a quarter of the chunk) side by side, each                              \
     * W byte once. A few distant streams read far faster here than the 4                                 \
     * adjacent rows of a tile (one core, 130m lm_head shape, f16: ~25 GB/s                               \
     * with two distant streams, 6-8 GB/s with 2-8 adjacent rows), and four                               \
     * FMA chains hide the FMA latency that bounds f16 (790m f16 decode on one                           \
     * core: 72 ms/token with 4 streams, 77-79 with 2). The same arithmetic                              \
     * per element as the tile. */                                                                       \
    static inline void gemv_row_##SUF(int64_t K, const float *x, const T *wa, float *y, const float *bias,  \
                                      int acc) {                                                          \
        const int64_t K8 = K & ~(int64_t)7;                                                                \
        V8 c = v8_zero();                                                                                  \
        for (int64_t k = 0; k < K8; k += 8) c = v8_fma(v8_load(x + k), LOADV(wa + k), c);                  \
        float s = v8_hsum(c);                                                                              \
        for (int64_t k = K8; k < K; k++) s += x[k] * LOADS(wa[k]);                                         \
        if (bias) s += *bias;                                                                              \
        if (acc) s += *y;                                                                                  \
        *y = s;                                                                                            \
    }                                                                                                      \
    static void gemv_##SUF(int64_t K, const float *x, const T *w, int64_t ldw, int64_t n0, int64_t n1,     \
                           float *y, const float *bias, int acc) {                                         \
        const int64_t K8 = K & ~(int64_t)7, h = (n1 - n0) / GEMV_S;                                        \
        for (int64_t q = n0; q < n0 + h; q++) {                                                            \
            V8 c[GEMV_S];                                                                                  \
            const T *wr[GEMV_S];                                                                           \
            for (int j = 0; j < GEMV_S; j++) {                                                             \
                c[j] = v8_zero();                                                                          \
                wr[j] = w + (q + j * h) * ldw;                                                             \
            }                                                                                              \
            for (int64_t k = 0; k < K8; k += 8) {                                                          \
                const V8 xv = v8_load(x + k);                                                              \
                for (int j = 0; j < GEMV_S; j++) c[j] = v8_fma(xv, LOADV(wr[j] + k), c[j]);                \
            }                                                                                              \
            for (int j = 0; j < GEMV_S; j++) {                                                             \
                float s = v8_hsum(c[j]);                                                                   \
                for (int64_t k = K8; k < K; k++) s += x[k] * LOADS(wr[j][k]);                              \
                if (bias) s += bias[q + j * h];                                                            \
                if (acc) s += y[q + j * h];                                                                \
                y[q + j * h] = s;                                                                          \
            }                                                                                              \
        }                                                                                                  \
        for (int64_t n = n0 + GEMV_S * h; n < n1; n++)                                                     \
            gemv_row_##SUF(K, x, w + n * ldw, y + n, bias ? bias + n : NULL, acc);                         \
    }                                                                                                      \
    static void gemm_##SUF(int64_t M, int64_t K, const float *x, int64_t ldx, const T *w, int64_t ldw,     \
                           int64_t n0, int64_t n1, float *y, int64_t ldy, const float *bias, int acc) {     \
        if (M == 1) {                                                                                      \
            gemv_##SUF(K, x, w, ldw, n0, n1, y, bias, acc);                                                \
            return;                                                                                        \
        }                                                                                                  \
        for (int64_t m = 0; m < M; m += 3) {                                                               \
            const int mr = (int)(M - m < 3 ? M - m : 3);                                                   \
            const float *xm = x + m * ldx;                                                                 \
            float *ym = y + m * ldy;                                                                       \
            for (int64_t n = n0; n < n1; n += 4) {                                                         \
                const int nr = (int)(n1 - n < 4 ? n1 - n : 4);                                             \
                const float *b = bias ? bias + n : NULL;                                                   \
                if (mr == 1) tile_##SUF(1, K, xm, ldx, w + n * ldw, ldw, nr, ym + n, ldy, b, acc);          \
                else if (mr == 2) tile_##SUF(2, K, xm, ldx, w + n * ldw, ldw, nr, ym + n, ldy, b, acc);     \
                else tile_##SUF(3, K, xm, ldx, w + n * ldw, ldw, nr, ym + n, ldy, b, acc);                  \
            }                                                                                              \
        }                                                                                                  \
    }

#define LOADS_F32(v) (v)
GEMM_DEF(f32, float, v8_load, LOADS_F32)
GEMM_DEF(f16, uint16_t, v8_load_f16, ms6_f16_to_f32)
GEMM_DEF(bf16, uint16_t, v8_load_bf16, ms6_bf16_to_f32)

static void k_gemm(int64_t M, int64_t K, const float *x, int64_t ldx, const void *w, ms6_dtype wt, int64_t ldw,
                   int64_t n0, int64_t n1, float *y, int64_t ldy, const float *bias, int accumulate) {
    switch (wt) {
    case MS6_DTYPE_F16: gemm_f16(M, K, x, ldx, w, ldw, n0, n1, y, ldy, bias, accumulate); break;
    case MS6_DTYPE_BF16: gemm_bf16(M, K, x, ldx, w, ldw, n0, n1, y, ldy, bias, accumulate); break;
    default: gemm_f32(M, K, x, ldx, w, ldw, n0, n1, y, ldy, bias, accumulate); break;
    }
}

/* ------------------------------------------------------------------ */
/* Selective scan: 8 channels per vector, sequential over time          */
/* ------------------------------------------------------------------ */

/* Reads row n = 0..N-1 of B or C (variable mode) for batch b, group g,
 * step t into dst (fp32). Returns a pointer to the fp32 row (either the
 * source itself, when it is already contiguous fp32, or dst). */
static inline const float *bc_row(const ms6_bc *bc, int64_t b, int64_t g, int64_t t, int64_t N, float *dst) {
    const int64_t off = b * bc->batch_stride + g * bc->group_stride + t * bc->seq_stride;
    if (bc->dtype == MS6_DTYPE_F32 && bc->state_stride == 1) return (const float *)bc->ptr + off;
    for (int64_t n = 0; n < N; n++) dst[n] = ms6_load(bc->ptr, bc->dtype, off + n * bc->state_stride);
    return dst;
}

/* Fills lanes[n*8 + i] with B or C of channel ch[i] (group grp[i]). */
static inline void bc_lanes(const ms6_bc *bc, int64_t b, const int64_t *ch, const int64_t *grp, int64_t t, int64_t N,
                            float *lanes) {
    for (int i = 0; i < 8; i++) {
        const int64_t off = bc->mode == MS6_BC_CONSTANT
                                ? ch[i] * bc->dim_stride
                                : b * bc->batch_stride + grp[i] * bc->group_stride + t * bc->seq_stride;
        for (int64_t n = 0; n < N; n++) lanes[n * 8 + i] = ms6_load(bc->ptr, bc->dtype, off + n * bc->state_stride);
    }
}

/* The common case of the model's prefill, 16 channels at a time (two
 * vectors: full cache lines of the token-major activations, and two
 * independent chains): u, delta, z, out fp32 with unit channel stride, B and
 * C variable and the same group for all 16 channels. Each channel goes
 * through exactly the operations of the 8-channel path of k_scan, in the
 * same order, so results do not depend on which path ran it. */
static void scan_fast16(const ms6_scan_params *p, int64_t b, int64_t db, float *scr) {
    const int64_t N = p->d_state, L = p->seqlen;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t dpg = p->n_groups > 0 ? p->dim / p->n_groups : p->dim;
    const int64_t g = db / dpg;
    float *h = scr, *Al = h + 16 * N, *Br = Al + 16 * N, *Cr = Br + 16 * N;
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < 16; i++) {
            Al[n * 16 + i] = p->A[(db + i) * p->A_dim_stride + n * p->A_state_stride];
            h[n * 16 + i] = p->initial_state ? p->initial_state[b * sbs + (db + i) * sds + n] : 0.0f;
        }
    float tD[16], tb[16];
    for (int i = 0; i < 16; i++) {
        tD[i] = p->D ? p->D[db + i] : 0.0f;
        tb[i] = p->delta_bias ? p->delta_bias[db + i] : 0.0f;
    }
    const V8 Da = v8_load(tD), Db = v8_load(tD + 8), ba = v8_load(tb), bb = v8_load(tb + 8);
    const int has_z = p->z.ptr != NULL;
    for (int64_t t = 0; t < L; t++) {
        const float *up = (const float *)p->u.ptr + b * p->u.batch_stride + t * p->u.seq_stride + db;
        const float *dp = (const float *)p->delta.ptr + b * p->delta.batch_stride + t * p->delta.seq_stride + db;
        float *op = (float *)p->out.ptr + b * p->out.batch_stride + t * p->out.seq_stride + db;
        const V8 ua = v8_load(up), ub = v8_load(up + 8);
        V8 dta = v8_add(v8_load(dp), ba), dtb = v8_add(v8_load(dp + 8), bb);
        V8 za = v8_zero(), zb = v8_zero();
        if (has_z) {
            const float *zp = (const float *)p->z.ptr + b * p->z.batch_stride + t * p->z.seq_stride + db;
            za = v8_load(zp);
            zb = v8_load(zp + 8);
        }
        if (p->delta_softplus) {
            dta = v8_softplus(dta);
            dtb = v8_softplus(dtb);
        }
        const V8 dtua = v8_mul(dta, ua), dtub = v8_mul(dtb, ub);
        const float *brow = bc_row(&p->B, b, g, t, N, Br);
        const float *crow = bc_row(&p->C, b, g, t, N, Cr);
        V8 ya0 = v8_zero(), ya1 = v8_zero(), yb0 = v8_zero(), yb1 = v8_zero();
        int64_t n = 0;
        for (; n + 2 <= N; n += 2) {
            float *h0 = h + n * 16, *h1 = h0 + 16;
            const float *a0 = Al + n * 16, *a1 = a0 + 16;
            const V8 B0 = v8_set1(brow[n]), B1 = v8_set1(brow[n + 1]);
            const V8 C0 = v8_set1(crow[n]), C1 = v8_set1(crow[n + 1]);
            const V8 ea0 = v8_exp_scan(v8_mul(dta, v8_load(a0))), eb0 = v8_exp_scan(v8_mul(dtb, v8_load(a0 + 8)));
            const V8 ea1 = v8_exp_scan(v8_mul(dta, v8_load(a1))), eb1 = v8_exp_scan(v8_mul(dtb, v8_load(a1 + 8)));
            const V8 ha0 = v8_fma(ea0, v8_load(h0), v8_mul(dtua, B0));
            const V8 hb0 = v8_fma(eb0, v8_load(h0 + 8), v8_mul(dtub, B0));
            const V8 ha1 = v8_fma(ea1, v8_load(h1), v8_mul(dtua, B1));
            const V8 hb1 = v8_fma(eb1, v8_load(h1 + 8), v8_mul(dtub, B1));
            v8_store(h0, ha0);
            v8_store(h0 + 8, hb0);
            v8_store(h1, ha1);
            v8_store(h1 + 8, hb1);
            ya0 = v8_fma(ha0, C0, ya0);
            yb0 = v8_fma(hb0, C0, yb0);
            ya1 = v8_fma(ha1, C1, ya1);
            yb1 = v8_fma(hb1, C1, yb1);
        }
        if (n < N) {
            float *h0 = h + n * 16;
            const V8 B0 = v8_set1(brow[n]), C0 = v8_set1(crow[n]);
            const V8 ea0 = v8_exp_scan(v8_mul(dta, v8_load(Al + n * 16))), eb0 = v8_exp_scan(v8_mul(dtb, v8_load(Al + n * 16 + 8)));
            const V8 ha0 = v8_fma(ea0, v8_load(h0), v8_mul(dtua, B0));
            const V8 hb0 = v8_fma(eb0, v8_load(h0 + 8), v8_mul(dtub, B0));
            v8_store(h0, ha0);
            v8_store(h0 + 8, hb0);
            ya0 = v8_fma(ha0, C0, ya0);
            yb0 = v8_fma(hb0, C0, yb0);
        }
        V8 ya = v8_fma(Da, ua, v8_add(ya0, ya1)), yb = v8_fma(Db, ub, v8_add(yb0, yb1));
        if (has_z) {
            ya = v8_mul(ya, v8_silu(za));
            yb = v8_mul(yb, v8_silu(zb));
        }
        v8_store(op, ya);
        v8_store(op + 8, yb);
    }
    if (p->final_state)
        for (int i = 0; i < 16; i++)
            for (int64_t n = 0; n < N; n++) p->final_state[b * sbs + (db + i) * sds + n] = h[n * 16 + i];
}

static void k_scan(const ms6_scan_params *p, int64_t b, int64_t d0, int64_t d1, float *scr) {
    const int64_t N = p->d_state, L = p->seqlen;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t dpg = p->n_groups > 0 ? p->dim / p->n_groups : p->dim;
    float *h = scr, *Al = h + 8 * N, *Bl = Al + 8 * N, *Cl = Bl + 8 * N, *Br = Cl + 8 * N, *Cr = Br + 8 * N;
    const int has_z = p->z.ptr != NULL;
    const int fast16 = act_fast(&p->u) && act_fast(&p->delta) && act_fast(&p->out) && (!has_z || act_fast(&p->z)) &&
                       p->B.mode == MS6_BC_VARIABLE && p->C.mode == MS6_BC_VARIABLE;
    for (int64_t db = d0; db < d1; db += 8) {
        if (fast16 && db + 16 <= d1 && db / dpg == (db + 15) / dpg) {
            scan_fast16(p, b, db, scr);
            db += 8; /* and 8 more by the loop */
            continue;
        }
        const int nl = (int)(d1 - db < 8 ? d1 - db : 8);
        int64_t ch[8], grp[8];
        for (int i = 0; i < 8; i++) {
            ch[i] = db + (i < nl ? i : 0); /* padding lanes repeat channel db; never stored */
            grp[i] = ch[i] / dpg;
        }
        const int uniform = grp[7] == grp[0] && grp[nl - 1] == grp[0];
        for (int64_t n = 0; n < N; n++)
            for (int i = 0; i < 8; i++) {
                Al[n * 8 + i] = p->A[ch[i] * p->A_dim_stride + n * p->A_state_stride];
                h[n * 8 + i] = p->initial_state ? p->initial_state[b * sbs + ch[i] * sds + n] : 0.0f;
            }
        /* B and C as per-lane vectors (lane mode) or as one broadcast row per step */
        const int b_bcast = p->B.mode == MS6_BC_VARIABLE && uniform;
        const int c_bcast = p->C.mode == MS6_BC_VARIABLE && uniform;
        if (p->B.mode == MS6_BC_CONSTANT) bc_lanes(&p->B, b, ch, grp, 0, N, Bl);
        if (p->C.mode == MS6_BC_CONSTANT) bc_lanes(&p->C, b, ch, grp, 0, N, Cl);
        float tD[8], tb[8];
        for (int i = 0; i < 8; i++) {
            tD[i] = p->D ? p->D[ch[i]] : 0.0f;
            tb[i] = p->delta_bias ? p->delta_bias[ch[i]] : 0.0f;
        }
        const V8 Dv = v8_load(tD), biasv = v8_load(tb);
        const int fast = nl == 8 && act_fast(&p->u) && act_fast(&p->delta) && act_fast(&p->out) &&
                         (!has_z || act_fast(&p->z));
        for (int64_t t = 0; t < L; t++) {
            const int64_t ou = b * p->u.batch_stride + t * p->u.seq_stride;
            const int64_t od = b * p->delta.batch_stride + t * p->delta.seq_stride;
            const int64_t oz = b * p->z.batch_stride + t * p->z.seq_stride;
            const int64_t oo = b * p->out.batch_stride + t * p->out.seq_stride;
            V8 u, dt, z = v8_zero();
            if (fast) {
                u = v8_load((const float *)p->u.ptr + ou + db);
                dt = v8_load((const float *)p->delta.ptr + od + db);
                if (has_z) z = v8_load((const float *)p->z.ptr + oz + db);
            } else {
                u = gather_act(&p->u, ou, ch);
                dt = gather_act(&p->delta, od, ch);
                if (has_z) z = gather_act(&p->z, oz, ch);
            }
            /* delta = softplus(delta + delta_bias) */
            dt = v8_add(dt, biasv);
            if (p->delta_softplus) dt = v8_softplus(dt);
            const V8 dtu = v8_mul(dt, u);
            V8 y0 = v8_zero(), y1 = v8_zero();
            if (b_bcast && c_bcast) {
                const float *brow = bc_row(&p->B, b, grp[0], t, N, Br);
                const float *crow = bc_row(&p->C, b, grp[0], t, N, Cr);
                int64_t n = 0;
                /* two independent accumulators for y: even and odd n */
                for (; n + 2 <= N; n += 2) {
                    V8 h0 = v8_load(h + n * 8), h1 = v8_load(h + n * 8 + 8);
                    const V8 e0 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8)));
                    const V8 e1 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8 + 8)));
                    /* h = exp(dt*A)*h + dt*B*u */
                    h0 = v8_fma(e0, h0, v8_mul(dtu, v8_set1(brow[n])));
                    h1 = v8_fma(e1, h1, v8_mul(dtu, v8_set1(brow[n + 1])));
                    v8_store(h + n * 8, h0);
                    v8_store(h + n * 8 + 8, h1);
                    /* y = sum_n C*h */
                    y0 = v8_fma(h0, v8_set1(crow[n]), y0);
                    y1 = v8_fma(h1, v8_set1(crow[n + 1]), y1);
                }
                if (n < N) {
                    V8 h0 = v8_load(h + n * 8);
                    const V8 e0 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8)));
                    h0 = v8_fma(e0, h0, v8_mul(dtu, v8_set1(brow[n])));
                    v8_store(h + n * 8, h0);
                    y0 = v8_fma(h0, v8_set1(crow[n]), y0);
                }
            } else {
                const float *bl = Bl, *cl = Cl;
                if (p->B.mode == MS6_BC_VARIABLE) {
                    bc_lanes(&p->B, b, ch, grp, t, N, Br);
                    bl = Br;
                }
                if (p->C.mode == MS6_BC_VARIABLE) {
                    bc_lanes(&p->C, b, ch, grp, t, N, Cr);
                    cl = Cr;
                }
                int64_t n = 0;
                for (; n + 2 <= N; n += 2) {
                    V8 h0 = v8_load(h + n * 8), h1 = v8_load(h + n * 8 + 8);
                    const V8 e0 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8)));
                    const V8 e1 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8 + 8)));
                    h0 = v8_fma(e0, h0, v8_mul(dtu, v8_load(bl + n * 8)));
                    h1 = v8_fma(e1, h1, v8_mul(dtu, v8_load(bl + n * 8 + 8)));
                    v8_store(h + n * 8, h0);
                    v8_store(h + n * 8 + 8, h1);
                    y0 = v8_fma(h0, v8_load(cl + n * 8), y0);
                    y1 = v8_fma(h1, v8_load(cl + n * 8 + 8), y1);
                }
                if (n < N) {
                    V8 h0 = v8_load(h + n * 8);
                    const V8 e0 = v8_exp_scan(v8_mul(dt, v8_load(Al + n * 8)));
                    h0 = v8_fma(e0, h0, v8_mul(dtu, v8_load(bl + n * 8)));
                    v8_store(h + n * 8, h0);
                    y0 = v8_fma(h0, v8_load(cl + n * 8), y0);
                }
            }
            /* y = y + D*u; y = y * silu(z) */
            V8 y = v8_fma(Dv, u, v8_add(y0, y1));
            if (has_z) y = v8_mul(y, v8_silu(z));
            if (fast) v8_store((float *)p->out.ptr + oo + db, y);
            else scatter_act(&p->out, oo, db, nl, y);
        }
        if (p->final_state)
            for (int i = 0; i < nl; i++)
                for (int64_t n = 0; n < N; n++) p->final_state[b * sbs + (db + i) * sds + n] = h[n * 8 + i];
    }
}

/* ------------------------------------------------------------------ */
/* Selective state update (decode): 8 states per vector                */
/* ------------------------------------------------------------------ */

#define SU_BLOCK 64

static void k_state_update(const ms6_state_update_params *p, int64_t b, int64_t d0, int64_t d1, float *scr) {
    const int64_t N = p->d_state;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : N;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t dpg = p->n_groups > 0 ? p->dim / p->n_groups : p->dim;
    const int64_t slot = p->state_batch_indices ? p->state_batch_indices[b] : b;
    const int64_t N8 = (N + 7) & ~(int64_t)7;
    float *dtv = scr, *xv = dtv + SU_BLOCK, *gv = xv + SU_BLOCK;
    float *Ar = gv + SU_BLOCK, *Brow = Ar + N8, *Crow = Brow + N8, *hr = Crow + N8;
    const int64_t ox = b * p->x.batch_stride, odt = b * p->dt.batch_stride, oz = b * p->z.batch_stride;
    const int64_t oo = b * p->out.batch_stride;
    for (int64_t c0 = d0; c0 < d1; c0 += SU_BLOCK) {
        const int64_t c1 = c0 + SU_BLOCK < d1 ? c0 + SU_BLOCK : d1;
        /* per channel, vectorized over channels: dt = softplus(dt + dt_bias), gate = silu(z) */
        for (int64_t d = c0; d < c1; d += 8) {
            const int nl = (int)(c1 - d < 8 ? c1 - d : 8);
            float td[8] = {0}, tz[8] = {0}, tb[8] = {0};
            for (int i = 0; i < nl; i++) {
                td[i] = ms6_load(p->dt.ptr, p->dt.dtype, odt + (d + i) * p->dt.dim_stride);
                xv[d - c0 + i] = ms6_load(p->x.ptr, p->x.dtype, ox + (d + i) * p->x.dim_stride);
                if (p->z.ptr) tz[i] = ms6_load(p->z.ptr, p->z.dtype, oz + (d + i) * p->z.dim_stride);
                if (p->dt_bias) tb[i] = p->dt_bias[d + i];
            }
            V8 dt = v8_add(v8_load(td), v8_load(tb));
            if (p->dt_softplus) dt = v8_softplus(dt);
            v8_store(td, dt);
            v8_store(tz, p->z.ptr ? v8_silu(v8_load(tz)) : v8_set1(1.0f));
            memcpy(dtv + (d - c0), td, sizeof(float) * (size_t)nl);
            memcpy(gv + (d - c0), tz, sizeof(float) * (size_t)nl);
        }
        for (int64_t d = c0; d < c1; d++) {
            const int64_t g = d / dpg;
            float *h = p->state + slot * sbs + d * sds;
            /* fp32 rows of A, B, C, h padded to a multiple of 8 with A = 0, B = C = h = 0,
             * so padding states stay 0 and add nothing to y */
            const float *A = p->A + d * p->A_dim_stride, *Bp, *Cp, *Ap = A;
            if (p->A_state_stride != 1 || N != N8) {
                for (int64_t n = 0; n < N8; n++) Ar[n] = n < N ? A[n * p->A_state_stride] : 0.0f;
                Ap = Ar;
            }
            const ms6_bc *bcs[2] = {&p->B, &p->C};
            float *rows[2] = {Brow, Crow};
            const float *outp[2];
            for (int q = 0; q < 2; q++) {
                const ms6_bc *bc = bcs[q];
                const int64_t off = bc->mode == MS6_BC_CONSTANT ? d * bc->dim_stride
                                                                : b * bc->batch_stride + g * bc->group_stride;
                if (bc->dtype == MS6_DTYPE_F32 && bc->state_stride == 1 && N == N8) {
                    outp[q] = (const float *)bc->ptr + off;
                } else {
                    for (int64_t n = 0; n < N8; n++)
                        rows[q][n] = n < N ? ms6_load(bc->ptr, bc->dtype, off + n * bc->state_stride) : 0.0f;
                    outp[q] = rows[q];
                }
            }
            Bp = outp[0];
            Cp = outp[1];
            float *hp = h;
            if (N != N8) {
                memcpy(hr, h, sizeof(float) * (size_t)N);
                memset(hr + N, 0, sizeof(float) * (size_t)(N8 - N));
                hp = hr;
            }
            const float dtd = dtv[d - c0], x = xv[d - c0];
            const V8 dt = v8_set1(dtd), dtx = v8_set1(dtd * x);
            V8 yv = v8_zero();
            for (int64_t n = 0; n < N8; n += 8) {
                /* state = state * exp(dt*A) + dt*B*x;  y = sum_n state*C */
                const V8 e = v8_exp_scan(v8_mul(dt, v8_load(Ap + n)));
                const V8 hn = v8_fma(v8_load(hp + n), e, v8_mul(dtx, v8_load(Bp + n)));
                v8_store(hp + n, hn);
                yv = v8_fma(hn, v8_load(Cp + n), yv);
            }
            if (hp != h) memcpy(h, hr, sizeof(float) * (size_t)N);
            float y = v8_hsum(yv);
            if (p->D) y += x * p->D[d];
            y *= gv[d - c0];
            ms6_store(p->out.ptr, p->out.dtype, oo + d * p->out.dim_stride, y);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Causal conv1d                                                       */
/* ------------------------------------------------------------------ */

static void k_conv(const ms6_conv1d_params *p, int64_t b, int64_t d0, int64_t d1) {
    const int64_t K = p->d_conv, W = K - 1, L = p->seqlen;
    const int64_t ws = p->weight_dim_stride ? p->weight_dim_stride : K;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : W;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    for (int64_t db = d0; db < d1; db += 8) {
        const int nl = (int)(d1 - db < 8 ? d1 - db : 8);
        int64_t ch[8];
        for (int i = 0; i < 8; i++) ch[i] = db + (i < nl ? i : 0);
        V8 w[MS6_MAX_D_CONV], win[MS6_MAX_D_CONV];
        float t[8];
        for (int64_t k = 0; k < K; k++) {
            for (int i = 0; i < 8; i++) t[i] = p->weight[ch[i] * ws + k];
            w[k] = v8_load(t);
        }
        for (int i = 0; i < 8; i++) t[i] = p->bias ? p->bias[ch[i]] : 0.0f;
        const V8 bias = v8_load(t);
        /* win[0..W) = the last W inputs, oldest first */
        for (int64_t k = 0; k < W; k++) {
            for (int i = 0; i < 8; i++) t[i] = p->initial_state ? p->initial_state[b * sbs + ch[i] * sds + k] : 0.0f;
            win[k] = v8_load(t);
        }
        const int fast = nl == 8 && act_fast(&p->x) && act_fast(&p->out);
        for (int64_t tt = 0; tt < L; tt++) {
            const int64_t ox = b * p->x.batch_stride + tt * p->x.seq_stride;
            const int64_t oo = b * p->out.batch_stride + tt * p->out.seq_stride;
            const V8 xt = fast ? v8_load((const float *)p->x.ptr + ox + db) : gather_act(&p->x, ox, ch);
            /* c = bias + sum_k w[k] * x[t-K+1+k] */
            V8 c = bias;
            for (int64_t k = 0; k < W; k++) c = v8_fma(w[k], win[k], c);
            c = v8_fma(w[W], xt, c);
            for (int64_t k = 0; k + 1 < W; k++) win[k] = win[k + 1];
            win[W - 1] = xt;
            if (p->activation) c = v8_silu(c);
            if (fast) v8_store((float *)p->out.ptr + oo + db, c);
            else scatter_act(&p->out, oo, db, nl, c);
        }
        if (p->final_state)
            for (int64_t k = 0; k < W; k++) {
                v8_store(t, win[k]);
                for (int i = 0; i < nl; i++) p->final_state[b * sbs + (db + i) * sds + k] = t[i];
            }
    }
}

static void k_conv_update(const ms6_conv1d_update_params *p, int64_t b, int64_t slot, int64_t d0, int64_t d1) {
    const int64_t K = p->d_conv, W = K - 1;
    const int64_t ws = p->weight_dim_stride ? p->weight_dim_stride : K;
    const int64_t sds = p->state_dim_stride ? p->state_dim_stride : W;
    const int64_t sbs = p->state_batch_stride ? p->state_batch_stride : p->dim * sds;
    const int64_t ox = b * p->x.batch_stride, oo = b * p->out.batch_stride;
    for (int64_t db = d0; db < d1; db += 8) {
        const int nl = (int)(d1 - db < 8 ? d1 - db : 8);
        float t[8] = {0}, xs[8] = {0};
        for (int i = 0; i < nl; i++) {
            t[i] = p->bias ? p->bias[db + i] : 0.0f;
            xs[i] = ms6_load(p->x.ptr, p->x.dtype, ox + (db + i) * p->x.dim_stride);
        }
        V8 c = v8_load(t);
        const V8 x = v8_load(xs);
        for (int64_t k = 0; k < W; k++) {
            float wk[8] = {0}, sk[8] = {0};
            for (int i = 0; i < nl; i++) {
                wk[i] = p->weight[(db + i) * ws + k];
                sk[i] = p->state[slot * sbs + (db + i) * sds + k];
            }
            c = v8_fma(v8_load(wk), v8_load(sk), c);
        }
        for (int i = 0; i < nl; i++) t[i] = p->weight[(db + i) * ws + W];
        c = v8_fma(v8_load(t), x, c);
        /* state shifts left by one, x appended */
        for (int i = 0; i < nl; i++) {
            float *s = p->state + slot * sbs + (db + i) * sds;
            for (int64_t k = 0; k + 1 < W; k++) s[k] = s[k + 1];
            s[W - 1] = xs[i];
        }
        if (p->activation) c = v8_silu(c);
        scatter_act(&p->out, oo, db, nl, c);
    }
}

/* ------------------------------------------------------------------ */
/* RMSNorm (+ residual add)                                            */
/* ------------------------------------------------------------------ */

static void k_rmsnorm(const ms6_rmsnorm_params *p, int64_t r0, int64_t r1) {
    const int64_t D = p->dim, D8 = D & ~(int64_t)7;
    const int xf = p->x_dtype == MS6_DTYPE_F32, of = p->out_dtype == MS6_DTYPE_F32;
    for (int64_t r = r0; r < r1; r++) {
        float *res = p->residual ? p->residual + r * p->residual_row_stride : NULL;
        const int64_t xo = r * p->x_row_stride, oo = r * p->out_row_stride;
        /* residual = residual + x (fp32) */
        if (res && p->add_x) {
            int64_t i = 0;
            if (xf)
                for (; i < D8; i += 8)
                    v8_store(res + i, v8_add(v8_load(res + i), v8_load((const float *)p->x + xo + i)));
            for (; i < D; i++) res[i] += ms6_load(p->x, p->x_dtype, xo + i);
        }
        const float *src = res ? res : (xf ? (const float *)p->x + xo : NULL);
        /* mean of squares: one 8-lane accumulator, then the tail */
        V8 acc = v8_zero();
        float ss;
        int64_t i = 0;
        if (src) {
            for (; i < D8; i += 8) {
                const V8 v = v8_load(src + i);
                acc = v8_fma(v, v, acc);
            }
            ss = v8_hsum(acc);
            for (; i < D; i++) ss += src[i] * src[i];
        } else {
            ss = 0.0f;
            for (; i < D; i++) {
                const float v = ms6_load(p->x, p->x_dtype, xo + i);
                ss += v * v;
            }
        }
        const float inv = 1.0f / sqrtf(ss / (float)D + p->eps);
        i = 0;
        if (src && of) {
            float *o = (float *)p->out + oo;
            const V8 iv = v8_set1(inv);
            for (; i < D8; i += 8) {
                V8 v = v8_mul(v8_load(src + i), iv);
                if (p->weight) v = v8_mul(v, v8_load(p->weight + i));
                v8_store(o + i, v);
            }
        }
        for (; i < D; i++) {
            const float v = src ? src[i] : ms6_load(p->x, p->x_dtype, xo + i);
            const float wv = p->weight ? p->weight[i] : 1.0f;
            ms6_store(p->out, p->out_dtype, oo + i, v * inv * wv);
        }
    }
}

/* ------------------------------------------------------------------ */
/* FMA peak probe (bench generate's prefill floor)                     */
/* ------------------------------------------------------------------ */

/* 12 independent chains of 8-lane multiply-adds, iters times: 192 FLOP per
 * iteration, enough chains to cover the FMA latency on every ISA here.
 * The result depends on every chain, so nothing is optimized away. */
static float k_fma_probe(int64_t iters) {
    V8 a[12];
    const V8 m = v8_set1(0.999f), c = v8_set1(0.001f);
    for (int i = 0; i < 12; i++) a[i] = v8_set1((float)i);
    for (int64_t k = 0; k < iters; k++)
        for (int i = 0; i < 12; i++) a[i] = v8_fma(a[i], m, c);
    V8 s = a[0];
    for (int i = 1; i < 12; i++) s = v8_add(s, a[i]);
    return v8_hsum(s);
}

const ms6_fast_kernels FAST_TABLE = {
    .name = FAST_NAME,
    .fma_probe = k_fma_probe,
    .gemm = k_gemm,
    .exp = k_exp,
    .scan = k_scan,
    .state_update = k_state_update,
    .conv = k_conv,
    .conv_update = k_conv_update,
    .rmsnorm = k_rmsnorm,
};
