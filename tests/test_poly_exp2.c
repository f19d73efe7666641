/*
 * test_poly_exp2.c - the polynomial 2^x of src/backend/cuda/poly_exp2.h (the
 * decays that the MS6_SCAN_POLY variants of the CUDA scan compute on the
 * FMA pipe), run on the CPU: the same function the device compiles,
 * against exp2 in double over a dense sweep of x in [-150, 0] (the scan's
 * x = dt * A * log2(e)) and a stretch of positive x.
 *
 * Bounds: relative error <= 1e-6 wherever 2^x is a normal float (x >= -126;
 * the fp32 evaluation reaches about 2e-7, near ex2.approx's 2^-22); below,
 * a finite non-negative result within 2^-126 of 2^x, exactly 0 for
 * x <= -126.5 and for -inf; exactly 1 for x = 0 and -0; NaN for NaN.
 * Runs without a GPU (CPU-only builds too).
 */
#include "backend/cuda/poly_exp2.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const double kRelBound = 1e-6;

static double max_rel = 0.0, max_rel_x = 0.0, max_rel_pos = 0.0;
static long long n_eval = 0;

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* one point; failures are reported for the first few only */
static void check_point(float x) {
    static int reported = 0;
    const float r = ms6_poly_exp2(x);
    const double e = exp2((double)x);
    n_eval++;
    int bad = 0;
    if (!isfinite(r) && x < 128.0f) bad = 1;
    else if (x >= -126.0f) {
        const double rel = fabs((double)r - e) / e;
        if (x > 0.0f) {
            if (rel > max_rel_pos) max_rel_pos = rel;
        } else if (rel > max_rel) {
            max_rel = rel;
            max_rel_x = x;
        }
        bad = rel > kRelBound;
    } else {
        bad = r < 0.0f || fabs((double)r - e) > ldexp(1.0, -126) || (x <= -126.5f && r != 0.0f);
    }
    if (bad) {
        tu_failures++;
        if (reported++ < 10) fprintf(stderr, "FAIL x = %.9g (%a): poly %.9g, exp2 %.9g\n", x, x, r, e);
    }
}

int main(void) {
    /* a uniform grid over [-150, 0] */
    const int64_t n = 1 << 23;
    for (int64_t i = 0; i <= n; i++) check_point((float)(-150.0 + 150.0 * (double)i / (double)n));
    /* every 61st float from -0 to -150 (all binades: tiny x, near the
     * rounding boundaries, the subnormal range of the result) */
    const uint32_t lo = f_bits(-0.0f), hi = f_bits(-150.0f);
    for (uint32_t u = lo; u <= hi; u += 61) check_point(bits_f(u));
    /* the rounding ties and integers of x, and a few ulps around them */
    for (int k = 0; k <= 150; k++) {
        const float c[2] = {-(float)k, -(float)k - 0.5f};
        for (int m = 0; m < 2; m++) {
            float x = c[m];
            for (int s = 0; s < 8; s++) x = nextafterf(x, -INFINITY);
            for (int s = 0; s < 17; s++, x = nextafterf(x, INFINITY))
                if (x <= 0.0f) check_point(x);
        }
    }
    /* positive x up to 127 (the scan sees them only without softplus or
     * with a positive A; same bound) */
    for (int64_t i = 0; i <= (1 << 20); i++) check_point((float)(127.0 * (double)i / (double)(1 << 20)));

    /* special values */
    CHECK(ms6_poly_exp2(0.0f) == 1.0f, "2^0 = %.9g", ms6_poly_exp2(0.0f));
    CHECK(ms6_poly_exp2(-0.0f) == 1.0f, "2^-0 = %.9g", ms6_poly_exp2(-0.0f));
    CHECK(ms6_poly_exp2(-INFINITY) == 0.0f, "2^-inf = %.9g", ms6_poly_exp2(-INFINITY));
    CHECK(ms6_poly_exp2(-1e30f) == 0.0f, "2^-1e30 = %.9g", ms6_poly_exp2(-1e30f));
    CHECK(ms6_poly_exp2(-FLT_MAX) == 0.0f, "2^-FLT_MAX = %.9g", ms6_poly_exp2(-FLT_MAX));
    CHECK(isnan(ms6_poly_exp2(NAN)), "2^NaN = %.9g", ms6_poly_exp2(NAN));
    CHECK(ms6_poly_exp2(-1.0f) == 0.5f, "2^-1 = %.9g", ms6_poly_exp2(-1.0f));
    CHECK(isinf(ms6_poly_exp2(128.0f)), "2^128 = %.9g", ms6_poly_exp2(128.0f));

    printf("poly_exp2: %lld points, max relative error %.3g at x = %.9g on [-126, 0] (bound %.0e), %.3g on (0, 127]\n",
           n_eval, max_rel, max_rel_x, kRelBound, max_rel_pos);
    CHECK(max_rel <= kRelBound, "max relative error %.3g > %.0e", max_rel, kRelBound);
    return tu_finish("test_poly_exp2");
}
