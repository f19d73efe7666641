/*
 * bench_gemm_cpu.c - workbench timing of the CPU backend's gemm op on the
 * prefill shapes of the 130m and 790m models (M = 512 rows of x, fp32 x and
 * y, f32 / f16 weights), 1 and 2 threads: GFLOP/s next to the machine's
 * FMA peak as `bench generate` measures it (printed by it; pass it as argv[1]
 * to get the fraction). Not part of the build or the tests:
 *   gcc -O2 -std=c11 -Iinclude -Isrc dev/cpu/bench_gemm_cpu.c BUILD/libmamba_s6.a \
 *       $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -lm -lpthread -o bench_gemm_cpu
 */
#define _POSIX_C_SOURCE 200809L
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const double peak1 = argc > 1 ? atof(argv[1]) : 0; /* GFLOP/s of one core */
    struct { const char *name; int64_t N, K; } mats[] = {
        {"130m in_proj", 3072, 768}, {"130m out_proj", 768, 1536}, {"130m x_proj", 80, 1536},
        {"790m in_proj", 6144, 1536}, {"790m out_proj", 1536, 3072}};
    const int64_t M = 512;
    printf("%-14s %5s %5s %5s %4s %7s %9s %9s %7s\n", "matrix", "M", "N", "K", "w", "threads", "ms", "GFLOP/s",
           "of peak");
    for (size_t s = 0; s < sizeof mats / sizeof mats[0]; s++) {
        const int64_t N = mats[s].N, K = mats[s].K;
        float *x = malloc(sizeof(float) * M * K), *y = malloc(sizeof(float) * M * N);
        float *w32 = malloc(sizeof(float) * N * K);
        uint16_t *w16 = malloc(sizeof(uint16_t) * N * K);
        for (int64_t i = 0; i < M * K; i++) x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
        for (int64_t i = 0; i < N * K; i++) {
            w32[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
            w16[i] = 0x2e66 ^ (uint16_t)(i & 0x3f);
        }
        for (int wt = 0; wt < 2; wt++)
            for (int th = 1; th <= 2; th++) {
                ms6_backend_options o = {th, 0};
                ms6_backend *be;
                ms6_error err;
                if (ms6_backend_create(MS6_BACKEND_CPU, &o, &be, &err)) {
                    fprintf(stderr, "%s\n", err.message);
                    return 1;
                }
                ms6_gemm_params p = {M, N, K, x, MS6_DTYPE_F32, K, wt ? (void *)w16 : (void *)w32,
                                     wt ? MS6_DTYPE_F16 : MS6_DTYPE_F32, K, NULL, y, MS6_DTYPE_F32, N, 0};
                be->ops->gemm(be, &p);
                double best = 1e9;
                for (int r = 0; r < 5; r++) {
                    const double t0 = now();
                    be->ops->gemm(be, &p);
                    const double t = now() - t0;
                    if (t < best) best = t;
                }
                const double gf = 2.0 * M * N * K / best / 1e9;
                printf("%-14s %5lld %5lld %5lld %4s %7d %9.3f %9.1f %6.0f%%\n", mats[s].name, (long long)M,
                       (long long)N, (long long)K, wt ? "f16" : "f32", th, best * 1e3, gf,
                       peak1 > 0 ? 100.0 * gf / (peak1 * th) : 0.0);
                ms6_backend_free(be);
            }
        free(x); free(y); free(w32); free(w16);
    }
    return 0;
}
