/*
 * bench_gemm.c - workbench timing of the CUDA gemm and rmsnorm ops on the
 * matrix shapes of the Mamba 130m / 1.4b / 2.8b models: batch-1 decode
 * (M = 1, the skinny kernel: weight bytes / time against the copy
 * bandwidth) and prefill chunks (M = 512 and 2048, cuBLASLt: TFLOP/s).
 * Activations (x and y) are fp32 ("act f32", converted to half for the
 * tensor cores) and, from M = 64, also f16 ("act f16": the prefill path,
 * no conversion, half the bytes of y).
 * Not part of the build or the tests; built by hand or by scripts/gpu.sh:
 *   gcc -O2 -std=c11 -Iinclude -Isrc -DMS6_HAVE_CUDA=1 dev/cuda/bench_gemm.c \
 *       BUILD/libmamba_s6.a -L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas \
 *       -lstdc++ -lcjson -lpcre2-8 -lutf8proc -lm -lpthread -o bench_gemm
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

static void *dev_fill(ms6_backend *be, size_t bytes) {
    void *d = NULL;
    if (ms6_backend_alloc(be, bytes, &d)) {
        fprintf(stderr, "alloc %zu: %s\n", bytes, ms6_backend_last_error(be));
        exit(1);
    }
    /* small half values (0x2e66 ~ 0.1) so nothing overflows */
    unsigned short *h = malloc(bytes);
    for (size_t i = 0; i < bytes / 2; i++) h[i] = (unsigned short)(0x2e66 ^ (i & 0x3f));
    ms6_backend_upload(be, d, h, bytes);
    free(h);
    return d;
}

/* times `reps` gemms; returns seconds per call */
static double time_gemm(ms6_backend *be, ms6_gemm_params *p, int reps) {
    for (int i = 0; i < 3; i++) be->ops->gemm(be, p);
    ms6_backend_synchronize(be);
    double t0 = now();
    for (int i = 0; i < reps; i++)
        if (be->ops->gemm(be, p)) {
            fprintf(stderr, "gemm: %s\n", ms6_backend_last_error(be));
            exit(1);
        }
    ms6_backend_synchronize(be);
    return (now() - t0) / reps;
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    ms6_backend *be;
    ms6_error err;
    if (ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 77;
    }
    const double bw = 4.28e12; /* H200 copy bandwidth, read + write counted (DESIGN.md section 8) */
    struct { const char *model; int64_t dm, di, dtr, V; } shp[] = {
        {"130m", 768, 1536, 48, 50280}, {"1.4b", 2048, 4096, 128, 50280}, {"2.8b", 2560, 5120, 160, 50280}};
    printf("%-5s %-9s %4s %5s %6s %6s %9s %9s %8s %8s\n", "model", "matrix", "act", "M", "N", "K", "us", "GB/s",
           "floor_us", "TFLOP/s");
    for (int s = 0; s < 3; s++) {
        const int64_t dm = shp[s].dm, di = shp[s].di, R = shp[s].dtr;
        struct { const char *name; int64_t N, K; } mats[] = {
            {"in_proj", 2 * di, dm}, {"x_proj", R + 32, di}, {"dt_proj", di, R}, {"out_proj", dm, di}, {"lm_head", shp[s].V, dm}};
        const int64_t Ms[] = {1, 2, 4, 8, 64, 512, 2048};
        for (int k = 0; k < 5; k++) {
            const int64_t N = mats[k].N, K = mats[k].K, Mmax = 2048;
            void *w = dev_fill(be, (size_t)(N * K * 2)), *x = dev_fill(be, (size_t)(Mmax * K * 4));
            void *y = NULL;
            ms6_backend_alloc(be, (size_t)(Mmax * N * 4), &y);
            for (int mi = 0; mi < 7; mi++) {
                const int64_t M = Ms[mi];
                if (k == 4 && M > 64) continue;
                for (int half = 0; half < (M >= 64 ? 2 : 1); half++) {
                    const ms6_dtype at = half ? MS6_DTYPE_F16 : MS6_DTYPE_F32;
                    const double asz = half ? 2 : 4;
                    ms6_gemm_params p = {0};
                    p.M = M; p.N = N; p.K = K;
                    p.x = x; p.x_dtype = at; p.ldx = K;
                    p.w = w; p.w_dtype = MS6_DTYPE_F16; p.ldw = K;
                    p.y = y; p.y_dtype = at; p.ldy = N;
                    const int reps = M >= 512 ? 20 : 200;
                    const double t = time_gemm(be, &p, reps);
                    const double bytes = (double)N * K * 2 + (double)M * K * asz + (double)M * N * asz;
                    printf("%-5s %-9s %4s %5lld %6lld %6lld %9.2f %9.0f %8.2f %8.1f\n", shp[s].model, mats[k].name,
                           half ? "f16" : "f32", (long long)M, (long long)N, (long long)K, t * 1e6, bytes / t / 1e9,
                           bytes / bw * 1e6, 2.0 * M * N * K / t / 1e12);
                }
            }
            ms6_backend_dealloc(be, w);
            ms6_backend_dealloc(be, x);
            ms6_backend_dealloc(be, y);
        }
    }
    ms6_backend_free(be);
    return 0;
}
