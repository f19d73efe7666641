/*
 * kernel_harness.h - runs one kernel case on any backend and compares it with
 * an independent float64 loop (tests/kernel_harness.c).
 *
 * Each run draws fresh random inputs, rounds them to the I/O dtype (so the
 * float64 oracle sees exactly the values the kernel sees), packs them into the
 * requested layout, uploads them through the backend, poisons every output
 * with NaN bytes, runs the op, downloads and compares. The same harness drives
 * the CPU reference, the fast CPU ops and the CUDA kernels.
 */
#ifndef MS6_KERNEL_HARNESS_H
#define MS6_KERNEL_HARNESS_H

#include "testutil.h"

typedef struct kh_result {
    double rel, maxabs;             /* main output: ||out-ref||/||ref||, max |out-ref| */
    double round_rel;               /* ||round(ref)-ref||/||ref||: the output type's own rounding of the oracle */
    double state_rel, state_maxabs; /* final / updated state, when there is one */
    int nan;                        /* any non-finite value in the outputs */
    int untouched_ok;               /* padding slots / untouched state bitwise unchanged */
} kh_result;

typedef struct kh_scan_case {
    int64_t batch, dim, L, N, G;     /* G used when B or C is variable */
    int b_variable, c_variable;
    int has_D, has_z, has_delta_bias, softplus, has_h0, want_hT;
    ms6_dtype io;                    /* u, delta, z, B, C, out */
    int token_major;                 /* (batch, L, dim) vs (batch, dim, L) */
} kh_scan_case;

typedef struct kh_update_case {
    int64_t batch, dim, N, G;
    int b_variable, c_variable;
    int has_D, has_z, has_dt_bias, softplus;
    int use_indices;                 /* permuted slots + some padding (-1) entries */
    ms6_dtype io;
} kh_update_case;

typedef struct kh_conv_case {
    int64_t batch, dim, L, K;
    int has_bias, activation, has_init, want_final;
    ms6_dtype io;
    int token_major;
} kh_conv_case;

typedef struct kh_conv_update_case {
    int64_t batch, dim, K;
    int has_bias, activation, use_indices;
    ms6_dtype io;
} kh_conv_update_case;

typedef struct kh_norm_case {
    int64_t rows, dim;
    int has_residual, add_x, has_weight;
    ms6_dtype x_dtype, out_dtype;
} kh_norm_case;

/* Each returns MS6_STATUS_OK when the op ran (the comparison is in *res);
 * otherwise the op's status, with the backend's message in msg. */
ms6_status kh_run_scan(ms6_backend *be, const kh_scan_case *c, tu_rng *rng, kh_result *res, char *msg);
ms6_status kh_run_update(ms6_backend *be, const kh_update_case *c, tu_rng *rng, kh_result *res, char *msg);
ms6_status kh_run_conv(ms6_backend *be, const kh_conv_case *c, tu_rng *rng, kh_result *res, char *msg);
ms6_status kh_run_conv_update(ms6_backend *be, const kh_conv_update_case *c, tu_rng *rng, kh_result *res, char *msg);
ms6_status kh_run_norm(ms6_backend *be, const kh_norm_case *c, tu_rng *rng, kh_result *res, char *msg);

/* Invariants on one backend against itself (f32, token-major):
 *   scan(L) then state_update == scan(L+1)   (last output and final state)
 *   scan([0,L)) then scan([L,2L)) with carried state == scan(2L)
 *   conv(L) then conv_update == conv(L+1); conv halves with carried state == conv(2L)
 * Returns the largest relative difference seen (or NAN). */
double kh_invariants(ms6_backend *be, tu_rng *rng, int64_t dim, int64_t L, int64_t N, int64_t K, char *msg);

/* The sweep's case generators, shared by every backend's test: shape is
 * (L, N, dim, batch, G); flags 0..3 and the running case counter k rotate
 * every option on and off across the sweep. */
kh_scan_case kh_sweep_scan_case(const int64_t shape[5], ms6_dtype io, int flags, int k);
kh_update_case kh_sweep_update_case(const int64_t shape[5], ms6_dtype io, int flags);

/* Tolerance for a relative L2 error given the output dtype, for fp32 math. */
double kh_tolerance(ms6_dtype out);

const char *kh_describe_scan(const kh_scan_case *c, char *buf, size_t cap);

#endif
