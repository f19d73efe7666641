/*
 * scan_workbench.cu - kernel workbench for the selective scan: a float64 CPU
 * reference, numbered kernel versions, validation and timing, outside the
 * library's build and tests (docs/kernel-notes.md records each version's
 * prediction and measured time).
 *
 *   v1  naive: one thread per (batch, channel), all N = 16 states in
 *       registers, u/delta/z/B/C read from global memory at every step (the
 *       shape of llama.cpp's CUDA scan, with register states);
 *   v2  v1 with the next 4 steps' loads issued before the current step is
 *       computed (software pipelining in registers);
 *   lib the library kernels (src/backend/cuda/scan.cu) through
 *       ms6_selective_scan_fwd, once per variant of WB_VARIANTS
 *       ("spec;spec;...", spec = "P=4 POLY=1 CHUNKS=8" etc., the MS6_SCAN_*
 *       variables without their prefix; an empty spec = the defaults);
 *       v1/v2 only with WB_NAIVE=1. dev/cuda/sweep.sh runs the sweep.
 *
 * All versions: token-major fp16 u/delta/z/out, fp16 B/C (batch, L, N), fp32
 * A/D/delta_bias, softplus, z gate, N = 16. Build (scripts/gpu.sh does it):
 *   nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/scan_workbench.cu BUILD/libmamba_s6.a \
 *        -lcublasLt -lcublas -lcjson -lpcre2-8 -lutf8proc -o scan_workbench
 * Run: scan_workbench [B,D,L ...] (default: the bench shapes); WB_ITERS
 * sets the timed iterations (10). Each variant's output is checked against
 * the float64 reference (FAIL above 3e-3) and timed with CUDA events.
 */
#include "mamba_s6.h"

#include "bench_common.cuh" /* before N: the library header uses the name */

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 16

struct Prob {
    long long B, D, L;
    __half *u, *dl, *z, *out, *Bm, *Cm; /* device */
    float *A, *Dv, *bias;               /* device */
};

__device__ __forceinline__ float ex2f(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float softplus_d(float x) { return x > 20.f ? x : log1pf(__expf(x)); }
__device__ __forceinline__ float silu_d(float z) { return z / (1.f + __expf(-z)); }

/* v1: one thread per (b, d); every step loads its inputs from global memory */
__global__ void scan_v1(Prob p) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.B * p.D) return;
    const long long b = i / p.D, d = i % p.D;
    float A2[N], h[N];
    for (int n = 0; n < N; n++) { A2[n] = p.A[d * N + n] * 1.4426950408889634f; h[n] = 0.f; }
    const float Dd = p.Dv[d], bias = p.bias[d];
    for (long long t = 0; t < p.L; t++) {
        const long long o = (b * p.L + t) * p.D + d, ob = (b * p.L + t) * N;
        const float u = __half2float(p.u[o]);
        const float dt = softplus_d(__half2float(p.dl[o]) + bias), dtu = dt * u;
        float y = 0.f;
#pragma unroll
        for (int n = 0; n < N; n++) {
            h[n] = fmaf(ex2f(dt * A2[n]), h[n], dtu * __half2float(p.Bm[ob + n]));
            y = fmaf(__half2float(p.Cm[ob + n]), h[n], y);
        }
        p.out[o] = __float2half_rn((y + Dd * u) * silu_d(__half2float(p.z[o])));
    }
}

/* v2: v1 with a 4-step register pipeline of u/delta/z */
__global__ void scan_v2(Prob p) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.B * p.D) return;
    const long long b = i / p.D, d = i % p.D;
    float A2[N], h[N];
    for (int n = 0; n < N; n++) { A2[n] = p.A[d * N + n] * 1.4426950408889634f; h[n] = 0.f; }
    const float Dd = p.Dv[d], bias = p.bias[d];
    constexpr int R = 4;
    __half ru[R], rd[R], rz[R];
#pragma unroll
    for (int k = 0; k < R; k++) {
        const long long o = (b * p.L + k) * p.D + d;
        const bool v = k < p.L;
        ru[k] = v ? p.u[o] : __half(0.f); rd[k] = v ? p.dl[o] : __half(0.f); rz[k] = v ? p.z[o] : __half(0.f);
    }
    for (long long t0 = 0; t0 < p.L; t0 += R) {
#pragma unroll
        for (int k = 0; k < R; k++) {
            const long long t = t0 + k;
            if (t >= p.L) break;
            const long long o = (b * p.L + t) * p.D + d, ob = (b * p.L + t) * N;
            const float u = __half2float(ru[k]);
            const float dt = softplus_d(__half2float(rd[k]) + bias), dtu = dt * u;
            const float g = silu_d(__half2float(rz[k]));
            const long long tn = t + R, on = (b * p.L + tn) * p.D + d;
            if (tn < p.L) { ru[k] = p.u[on]; rd[k] = p.dl[on]; rz[k] = p.z[on]; }
            float y = 0.f;
#pragma unroll
            for (int n = 0; n < N; n++) {
                h[n] = fmaf(ex2f(dt * A2[n]), h[n], dtu * __half2float(p.Bm[ob + n]));
                y = fmaf(__half2float(p.Cm[ob + n]), h[n], y);
            }
            p.out[o] = __float2half_rn((y + Dd * u) * g);
        }
    }
}

static float frand(unsigned long long *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0));
}

/* float64 reference of batch 0, channels [0, nd), all steps */
static void cpu_ref(long long D, long long L, const __half *u, const __half *dl, const __half *z, const __half *Bm,
                    const __half *Cm, const float *A, const float *Dv, const float *bias, long long nd, double *ref) {
    for (long long d = 0; d < nd; d++) {
        double h[N] = {0};
        for (long long t = 0; t < L; t++) {
            const long long o = t * D + d;
            const double uu = __half2float(u[o]);
            double x = (double)__half2float(dl[o]) + bias[d];
            const double dt = x > 20 ? x : log1p(exp(x));
            double y = 0;
            for (int n = 0; n < N; n++) {
                h[n] = exp(dt * A[d * N + n]) * h[n] + dt * __half2float(Bm[t * N + n]) * uu;
                y += __half2float(Cm[t * N + n]) * h[n];
            }
            const double zz = __half2float(z[o]);
            ref[t * nd + d] = (y + Dv[d] * uu) * (zz / (1 + exp(-zz)));
        }
    }
}

/* Sets the MS6_SCAN_* variables of one variant ("K=V K=V ..."), clearing
 * those of the previous one. */
static void set_variant(const char *spec) {
    static const char *keys[] = {"MS6_SCAN_DIRECT", "MS6_SCAN_P", "MS6_SCAN_POLY", "MS6_SCAN_CHUNKS",
                                 "MS6_SCAN_WANT_THREADS_PER_SM", "MS6_SCAN_SPLIT_BELOW_PER_SM", "MS6_SCAN_MIN_CHUNK",
                                 "MS6_SCAN_ASYNC", "MS6_SCAN_S"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) unsetenv(keys[i]);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        char key[64];
        snprintf(key, sizeof key, "MS6_SCAN_%s", tok);
        setenv(key, eq + 1, 1);
    }
}

int main(int argc, char **argv) {
    long long shapes[16][3] = {{1, 1536, 2048}, {8, 1536, 2048}, {1, 5120, 8192}, {8, 5120, 2048},
                               {4, 2560, 16384}, {1, 1536, 131072}, {16, 2560, 4096}};
    int ns = 7;
    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 16; i++)
            if (sscanf(argv[i], "%lld,%lld,%lld", &shapes[ns][0], &shapes[ns][1], &shapes[ns][2]) == 3) ns++;
    }
    /* library variants: WB_VARIANTS="spec;spec;..." (spec: "P=4 POLY=1 CHUNKS=8 ...",
     * names without the MS6_SCAN_ prefix; "" = the defaults); WB_NAIVE=1 adds v1/v2 */
    const char *vs = getenv("WB_VARIANTS");
    char vbuf[4096];
    snprintf(vbuf, sizeof vbuf, "%s", vs ? vs : "DIRECT=1;");
    char *variants[64];
    int nv = 0;
    for (char *q = vbuf, *e; nv < 64; q = e + 1) {
        e = strchr(q, ';');
        if (e) *e = 0;
        variants[nv++] = q;
        if (!e) break;
    }
    const int naive = getenv("WB_NAIVE") && atoi(getenv("WB_NAIVE"));
    const int iters = getenv("WB_ITERS") ? atoi(getenv("WB_ITERS")) : 10;
    /* floors as bench scan computes them, with its measured H200 figures */
    const double bw = 4.25e12, exp_rate = 132 * 16 * 1.98e9;
    ms6_backend *be;
    ms6_error err;
    if (ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 77;
    }
    printf("ms per call (%d iterations), ratio to the floor, rel err vs float64 (batch 0, 64 channels)\n", iters);
    for (int s = 0; s < ns; s++) {
        Prob p;
        p.B = shapes[s][0]; p.D = shapes[s][1]; p.L = shapes[s][2];
        const long long na = p.B * p.L * p.D, nb = p.B * p.L * N;
        __half *hu = (__half *)malloc(2 * na), *hd = (__half *)malloc(2 * na), *hz = (__half *)malloc(2 * na);
        __half *hB = (__half *)malloc(2 * nb), *hC = (__half *)malloc(2 * nb), *ho = (__half *)malloc(2 * na);
        float *hA = (float *)malloc(4 * p.D * N), *hD = (float *)malloc(4 * p.D), *hb = (float *)malloc(4 * p.D);
        /* random values for the first 4M elements, repeated beyond (the
         * arrays are far larger than the caches; keeps set-up short) */
        unsigned long long r = 12345 + s;
        const long long ma = na < (1 << 22) ? na : (1 << 22), mb = nb < (1 << 22) ? nb : (1 << 22);
        for (long long i = 0; i < ma; i++) {
            hu[i] = __float2half(2 * frand(&r) - 1);
            hd[i] = __float2half(2 * frand(&r) - 1);
            hz[i] = __float2half(4 * frand(&r) - 2);
        }
        for (long long i = ma; i < na; i++) { hu[i] = hu[i - ma]; hd[i] = hd[i - ma]; hz[i] = hz[i - ma]; }
        for (long long i = 0; i < mb; i++) { hB[i] = __float2half(2 * frand(&r) - 1); hC[i] = __float2half(2 * frand(&r) - 1); }
        for (long long i = mb; i < nb; i++) { hB[i] = hB[i - mb]; hC[i] = hC[i - mb]; }
        for (long long i = 0; i < p.D * N; i++) hA[i] = -(float)(i % N + 1);
        for (long long i = 0; i < p.D; i++) { hD[i] = 1.f; hb[i] = -4.f + 2.f * frand(&r); }
        CK(cudaMalloc(&p.u, 2 * na)); CK(cudaMalloc(&p.dl, 2 * na)); CK(cudaMalloc(&p.z, 2 * na));
        CK(cudaMalloc(&p.out, 2 * na)); CK(cudaMalloc(&p.Bm, 2 * nb)); CK(cudaMalloc(&p.Cm, 2 * nb));
        CK(cudaMalloc(&p.A, 4 * p.D * N)); CK(cudaMalloc(&p.Dv, 4 * p.D)); CK(cudaMalloc(&p.bias, 4 * p.D));
        CK(cudaMemcpy(p.u, hu, 2 * na, cudaMemcpyHostToDevice)); CK(cudaMemcpy(p.dl, hd, 2 * na, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(p.z, hz, 2 * na, cudaMemcpyHostToDevice)); CK(cudaMemcpy(p.Bm, hB, 2 * nb, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(p.Cm, hC, 2 * nb, cudaMemcpyHostToDevice)); CK(cudaMemcpy(p.A, hA, 4 * p.D * N, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(p.Dv, hD, 4 * p.D, cudaMemcpyHostToDevice)); CK(cudaMemcpy(p.bias, hb, 4 * p.D, cudaMemcpyHostToDevice));
        const long long nd = p.D < 64 ? p.D : 64;
        const long long Lr = p.L < 4096 ? p.L : 4096;
        double *ref = (double *)malloc(sizeof(double) * Lr * nd);
        cpu_ref(p.D, Lr, hu, hd, hz, hB, hC, hA, hD, hb, nd, ref);
        const double floor_ms = 1e3 * fmax(2.0 * (4.0 * na + 2.0 * nb) / bw, (double)na * N / exp_rate);

        ms6_scan_params sp;
        memset(&sp, 0, sizeof sp);
        sp.batch = p.B; sp.dim = p.D; sp.seqlen = p.L; sp.d_state = N; sp.n_groups = 1;
        sp.u = (ms6_act){p.u, MS6_DTYPE_F16, p.L * p.D, 1, p.D};
        sp.delta = (ms6_act){p.dl, MS6_DTYPE_F16, p.L * p.D, 1, p.D};
        sp.z = (ms6_act){p.z, MS6_DTYPE_F16, p.L * p.D, 1, p.D};
        sp.out = (ms6_act){p.out, MS6_DTYPE_F16, p.L * p.D, 1, p.D};
        sp.B = (ms6_bc){p.Bm, MS6_DTYPE_F16, MS6_BC_VARIABLE, p.L * N, 0, 0, 1, N};
        sp.C = (ms6_bc){p.Cm, MS6_DTYPE_F16, MS6_BC_VARIABLE, p.L * N, 0, 0, 1, N};
        sp.A = p.A; sp.A_dim_stride = N; sp.A_state_stride = 1;
        sp.D = p.Dv; sp.delta_bias = p.bias; sp.delta_softplus = 1;

        char sh[64];
        snprintf(sh, sizeof sh, "(%lld,%lld,%lld)", p.B, p.D, p.L);
        printf("%-18s floor %.4f ms\n", sh, floor_ms);
        for (int v = naive ? -2 : 0; v < nv; v++) {
            if (v >= 0) set_variant(variants[v]);
            cudaEvent_t e0, e1;
            CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
            const unsigned blocks = (unsigned)((p.B * p.D + 127) / 128);
            for (int it = -2; it < iters; it++) {
                if (it == 0) CK(cudaEventRecord(e0));
                if (v == -2) scan_v1<<<blocks, 128>>>(p);
                else if (v == -1) scan_v2<<<blocks, 128>>>(p);
                else if (ms6_selective_scan_fwd(be, &sp) != MS6_STATUS_OK) {
                    fprintf(stderr, "lib: %s\n", ms6_backend_last_error(be));
                    return 1;
                }
            }
            CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
            float t;
            CK(cudaEventElapsedTime(&t, e0, e1));
            const double ms = t / iters;
            CK(cudaMemcpy(ho, p.out, 2 * Lr * p.D, cudaMemcpyDeviceToHost)); /* batch 0, first Lr steps */
            double num = 0, den = 0;
            for (long long t2 = 0; t2 < Lr; t2++)
                for (long long d = 0; d < nd; d++) {
                    const double g = __half2float(ho[t2 * p.D + d]), rr = ref[t2 * nd + d];
                    num += (g - rr) * (g - rr);
                    den += rr * rr;
                }
            const double rel = sqrt(num / den);
            CK(cudaMemset(p.out, 0xff, 2 * na));
            cudaEventDestroy(e0); cudaEventDestroy(e1);
            printf("  %-44s %9.4f ms %6.2fx  rel %.1e%s\n",
                   v == -2 ? "v1 naive" : v == -1 ? "v2 naive pipelined" : (*variants[v] ? variants[v] : "(defaults)"),
                   ms, ms / floor_ms, rel, rel > 3e-3 ? "  FAIL" : "");
            fflush(stdout);
        }
        set_variant("");
        cudaFree(p.u); cudaFree(p.dl); cudaFree(p.z); cudaFree(p.out); cudaFree(p.Bm); cudaFree(p.Cm);
        cudaFree(p.A); cudaFree(p.Dv); cudaFree(p.bias);
        free(hu); free(hd); free(hz); free(hB); free(hC); free(ho); free(hA); free(hD); free(hb); free(ref);
    }
    ms6_backend_free(be);
    return 0;
}
