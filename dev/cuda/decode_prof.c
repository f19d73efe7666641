/*
 * decode_prof.c - where a decode step's time goes on the CUDA backend, per
 * op, for a batch of B sequences (B = 1 and 2 take the fused ops of
 * src/backend/cuda/decode.cu, larger batches the unfused ones). The ops
 * table is wrapped so that a CUDA event is recorded after every op; the
 * steps run eagerly (MS6_CUDA_GRAPH=0, set here), so the time between two
 * events is the GPU time of the op in between plus any gap the host left
 * (an op shorter than its launch shows as its launch time). After WARM
 * steps, STEPS steps are timed; the table gives per-step figures.
 *
 * The event machinery is dev/cuda/op_events.h (shared with prefill_prof.c).
 * Not part of the build; built against the library, as C++ (it reads the
 * CUDA backend's context):
 *   nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/decode_prof.c -o decode_prof.o
 *   nvcc decode_prof.o BUILD/libmamba_s6.a -lcublasLt -lcublas -lcjson -lpcre2-8 -lutf8proc -lpthread \
 *       -o decode_prof
 *   ./decode_prof MODEL_DIR [BATCH=64] [STEPS=16]
 */
#include "op_events.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: decode_prof MODEL_DIR [BATCH=64] [STEPS=16]\n");
        return 2;
    }
    const int64_t B = argc > 2 ? atoll(argv[2]) : 64;
    const int steps = argc > 3 ? atoi(argv[3]) : 16, warm = 3;
    setenv("MS6_CUDA_GRAPH", "0", 1);
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CUDA;
    ms6_model *m = NULL;
    ms6_error err;
    if (B < 1 || steps < 1 || ms6_model_load(argv[1], &o, &m, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "decode_prof: %s\n", B < 1 || steps < 1 ? "bad arguments" : err.message);
        return 1;
    }
    op_events_install(m);
    const int64_t V = ms6_model_vocab_size(m);

    ms6_batch *b = NULL;
    int64_t *slots = (int64_t *)malloc(sizeof(int64_t) * (size_t)B);
    int32_t *ids = (int32_t *)malloc(sizeof(int32_t) * (size_t)B), *next = (int32_t *)malloc(sizeof(int32_t) * (size_t)B);
    if (ms6_batch_create(m, B, &b, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "decode_prof: %s\n", err.message);
        return 1;
    }
    for (int64_t i = 0; i < B; i++) {
        ms6_batch_add(b, &slots[i]);
        ids[i] = (int32_t)((i * 7919 + 13) % V);
    }
    double t0 = 0;
    for (int r = 0; r < warm + steps; r++) {
        if (r == warm) {
            ms6_backend_synchronize(m->be);
            g_on = 1;
            g_n = 0;
            mark(m->be, OP_START);
            t0 = now();
        }
        if (ms6_batch_step_greedy(b, slots, ids, B, next) != MS6_STATUS_OK) {
            fprintf(stderr, "decode_prof: %s\n", ms6_batch_last_error(b));
            return 1;
        }
        memcpy(ids, next, sizeof(int32_t) * (size_t)B);
    }
    ms6_backend_synchronize(m->be);
    const double wall = now() - t0;
    g_on = 0;
    printf("decode_prof %s: batch %lld, %d steps (eager, events after every op)\n", argv[1], (long long)B, steps);
    const double total = op_events_report(steps);
    printf("  %-14s %10.4f (first to last event; wall %.4f ms/step)\n", "total", total, 1e3 * wall / steps);
    op_events_uninstall(m);
    ms6_batch_free(b);
    ms6_model_free(m);
    free(slots);
    free(ids);
    free(next);
    return 0;
}
