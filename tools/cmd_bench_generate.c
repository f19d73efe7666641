/*
 * mamba-s6 bench generate: end-to-end prefill and decode speed of a model,
 * next to the decode floor.
 *
 * Prefill: one session, P random token ids (fixed seed), best of --reps runs.
 * Decode: G greedy steps after the prompt (a few untimed warm-up steps
 * first), best of --reps runs, through ms6_session_generate_greedy (each
 * token fed back on the device, the steps back to back; --per-step: one
 * ms6_session_step_greedy call per token, the host waiting for each id) or
 * ms6_batch_step_greedy: the argmax runs where the logits are, so on a GPU
 * only the token ids come back. The floor of batch-1 decode is the weight
 * bytes read per token (ms6_model_weight_bytes) divided by this machine's
 * copy bandwidth, measured here with the same thread count on buffers larger
 * than the model and than the L3 the machine reports (DESIGN.md section 8:
 * these machines report a very large L3, and a model that fits in it would
 * otherwise look faster than memory). Copy bandwidth counts bytes read plus
 * bytes written, as DESIGN.md does.
 *
 * The phases are separate functions over one bench_cfg / bench_result so a
 * backend with its own memory (CUDA: device copy bandwidth, batch > 1)
 * only adds its own measure_* function.
 */
#include "cli.h"
#include "backend/cpu/fast.h"
#include "core/threadpool.h"
#ifdef MS6_HAVE_CUDA
#include "backend/cuda/cuda_tools.h"
#endif

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *dir;
    ms6_backend_kind backend;
    int threads; /* 0 = all cores */
    int64_t batch, prompt, gen, reps;
    int json;
    int per_step; /* batch 1: one ms6_session_step_greedy call per token */
} bench_cfg;

typedef struct {
    double prefill_s;       /* best time of one prefill of `prompt` tokens */
    double decode_s;        /* best time of `gen` steps */
    double copy_bytes_per_s;/* read + write, 0 when not measured */
    double copy_buffer_bytes;
    double rss_bytes;       /* resident memory after decode (weights touched) */
    size_t weight_bytes;
    double gemm_flops_per_token; /* 2 x multiply-adds of the layer matrices per token (prefill) */
    int threads_used;
    const char *isa;
    double state_rw_bytes;  /* per sequence and step: conv + ssm state read and written */
    double fma_flops_per_s; /* cpu: measured multiply-add peak, 0 when not measured */
    char device[160];       /* GPU description (cuda) */
} bench_result;

static void usage(FILE *f) {
    fprintf(f,
            "usage: mamba-s6 bench generate -m DIR [--backend cpu|cpu-ref|cuda] [--threads T] [--batch B]\n"
            "                               [--prompt P] [--gen G] [--reps R] [--json]\n\n"
            "Prefill tokens/s, decode ms/token and tokens/s, memory, and the decode floor:\n"
            "weight bytes per token / copy bandwidth measured here (buffers larger than the\n"
            "model and the L3 cache), with the ratio to it. Figures are the best of R runs.\n\n"
            "  -m, --model DIR   model directory (config.json + safetensors)\n"
            "  --backend NAME    cpu (default), cpu-ref or cuda\n"
            "  --threads T       CPU threads, 0 = all cores (default 0)\n"
            "  --batch B         sequences decoded together (default 1); with B > 1 each\n"
            "                    sequence gets its own prompt, decode tokens/s counts all B\n"
            "  --prompt P        prompt tokens (default 512)\n"
            "  --gen G           decoded tokens (default 64)\n"
            "  --reps R          runs of each phase, best kept (default 3)\n"
            "  --per-step        batch 1: time one greedy step call per token (the host waits\n"
            "                    for each id) instead of one generate call for all G\n"
            "  --json            one JSON object per line instead of the table\n");
}

static double rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long pages = 0, res = 0;
    const int n = fscanf(f, "%ld %ld", &pages, &res);
    fclose(f);
    return n == 2 ? (double)res * (double)sysconf(_SC_PAGESIZE) : 0;
}

typedef struct {
    char *src, *dst;
    size_t bytes;
} copy_job;

#define COPY_CHUNK ((size_t)4 << 20)

static void copy_chunk(void *arg, int64_t chunk, int tid) {
    const copy_job *j = arg;
    (void)tid;
    const size_t lo = (size_t)chunk * COPY_CHUNK, n = j->bytes - lo < COPY_CHUNK ? j->bytes - lo : COPY_CHUNK;
    memcpy(j->dst + lo, j->src + lo, n);
}

/* Host copy bandwidth with `threads` threads, bytes read + written per second. */
static int measure_host_bandwidth(const bench_cfg *c, bench_result *r) {
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 < 0) l3 = 0;
    double want = 1.5 * (double)r->weight_bytes;
    if (want < 4.0 * (double)l3) want = 4.0 * (double)l3;
    if (want < 256.0 * 1024 * 1024) want = 256.0 * 1024 * 1024;
    if (want > 8.0 * 1024 * 1024 * 1024) want = 8.0 * 1024 * 1024 * 1024;
    const size_t bytes = (size_t)want & ~(size_t)4095;
    copy_job j = {malloc(bytes), malloc(bytes), bytes};
    ms6_threadpool *pool = ms6_threadpool_create(r->threads_used);
    if (!j.src || !j.dst || !pool) {
        fprintf(stderr, "mamba-s6 bench generate: cannot allocate 2 x %.0f MB for the bandwidth test\n", want / 1e6);
        free(j.src);
        free(j.dst);
        ms6_threadpool_free(pool);
        return 1;
    }
    memset(j.src, 1, bytes); /* fault the pages in before timing */
    memset(j.dst, 2, bytes);
    /* best of 8: on a shared machine a single copy is easily slowed down,
     * and a floor that is too low would flatter the decode ratio */
    double best = 1e30;
    for (int rep = 0; rep < 8; rep++) {
        const double t0 = cli_now();
        ms6_threadpool_for(pool, (int64_t)((bytes + COPY_CHUNK - 1) / COPY_CHUNK), copy_chunk, &j);
        const double t = cli_now() - t0;
        if (t < best) best = t;
    }
    r->copy_bytes_per_s = 2.0 * (double)bytes / best;
    r->copy_buffer_bytes = (double)bytes;
    ms6_threadpool_free(pool);
    free(j.src);
    free(j.dst);
    return 0;
}

/* Matrix-product work per prefill token: in_proj, x_proj, dt_proj and
 * out_proj of every layer (lm_head runs once per prompt). */
static double gemm_flops_per_token(const ms6_model *m) {
    const ms6_model_config *mc = ms6_model_get_config(m);
    const double dm = (double)mc->d_model, di = (double)mc->d_inner, R = (double)mc->dt_rank;
    const double N = (double)mc->d_state;
    return 2.0 * (double)mc->n_layer * (dm * 2 * di + di * (R + 2 * N) + R * di + di * dm);
}

/* Loads the model of the run (with the backend and threads asked for) and
 * fills the result's weight bytes and matrix FLOPs; NULL after a message. */
static ms6_model *bench_load(const bench_cfg *c, bench_result *r) {
    ms6_model_options mo;
    ms6_model_options_init(&mo);
    mo.backend = c->backend;
    mo.n_threads = c->threads;
    ms6_model *m = NULL;
    ms6_error err;
    if (ms6_model_load(c->dir, &mo, &m, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 bench generate: %s\n", err.message);
        return NULL;
    }
    r->weight_bytes = ms6_model_weight_bytes(m);
    r->gemm_flops_per_token = gemm_flops_per_token(m);
    return m;
}

/* n pseudo-random ids below V (xorshift64 from seed): the same prompt on
 * every run and machine */
static void bench_ids(int32_t *ids, int64_t n, int64_t V, uint64_t seed) {
    uint64_t x = 0x9e3779b97f4a7c15ull + seed;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)V);
    }
}

static int run_model(const bench_cfg *c, bench_result *r) {
    ms6_session *s = NULL;
    ms6_error err;
    int32_t *ids = NULL, *gen = NULL;
    float *logits = NULL;
    int rc = 1;
    ms6_model *m = bench_load(c, r);
    if (!m) return 1;
    const int64_t V = ms6_model_vocab_size(m);
    ids = malloc(sizeof(int32_t) * (size_t)c->prompt);
    gen = malloc(sizeof(int32_t) * (size_t)c->gen);
    logits = malloc(sizeof(float) * (size_t)V);
    if (!ids || !gen || !logits) {
        fprintf(stderr, "mamba-s6 bench generate: out of memory\n");
        goto done;
    }
    bench_ids(ids, c->prompt, V, 0);
    if (ms6_session_create(m, &s, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 bench generate: %s\n", err.message);
        goto done;
    }
    r->prefill_s = r->decode_s = 1e30;
    const int warm = 3;
    for (int64_t rep = 0; rep < c->reps; rep++) {
        ms6_status st = ms6_session_reset(s);
        double t0 = cli_now();
        if (st == MS6_STATUS_OK) st = ms6_session_prefill(s, ids, c->prompt, logits, 0);
        double t = cli_now() - t0;
        if (t < r->prefill_s) r->prefill_s = t;
        int32_t tok = ms6_argmax(logits, V);
        for (int i = 0; i < warm && st == MS6_STATUS_OK; i++) st = ms6_session_step_greedy(s, tok, &tok);
        if (st == MS6_STATUS_OK && !c->per_step) { /* the device-fed loop's own capture, untimed */
            st = ms6_session_generate_greedy(s, tok, warm, gen);
            tok = gen[warm - 1];
        }
        t0 = cli_now();
        if (c->per_step)
            for (int64_t i = 0; i < c->gen && st == MS6_STATUS_OK; i++) st = ms6_session_step_greedy(s, tok, &tok);
        else if (st == MS6_STATUS_OK)
            st = ms6_session_generate_greedy(s, tok, c->gen, gen);
        t = cli_now() - t0;
        if (st != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6 bench generate: %s\n", ms6_session_last_error(s));
            goto done;
        }
        if (t < r->decode_s) r->decode_s = t;
    }
    r->rss_bytes = rss_bytes();
    rc = 0;
done:
    ms6_session_free(s);
    ms6_model_free(m);
    free(ids);
    free(gen);
    free(logits);
    return rc;
}

/* Batch > 1 (any backend): B sequences in one ms6_batch, prompts of
 * prompt - (i % 8) tokens (different lengths), prefill of sequence 0 timed,
 * then `gen` steps of all B timed. A step reads the weights once and the
 * state of every sequence (read and written): the floor adds B states. */
static int run_batch(const bench_cfg *c, bench_result *r) {
    ms6_batch *b = NULL;
    ms6_error err;
    int rc = 1;
    ms6_model *m = bench_load(c, r);
    if (!m) return 1;
    const ms6_model_config *mc = ms6_model_get_config(m);
    r->state_rw_bytes = 2.0 * 4.0 * (double)(mc->n_layer * mc->d_inner * (mc->d_state + mc->d_conv - 1));
    const int64_t V = ms6_model_vocab_size(m), B = c->batch;
    /* ids: a prompt, or the B ids fed to a step then the B it returns */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(c->prompt > 2 * B ? c->prompt : 2 * B));
    int64_t *slots = malloc(sizeof(int64_t) * (size_t)B);
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!ids || !slots || !logits) {
        fprintf(stderr, "mamba-s6 bench generate: out of memory\n");
        goto done;
    }
    if (ms6_batch_create(m, B, &b, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 bench generate: %s\n", err.message);
        goto done;
    }
    r->prefill_s = r->decode_s = 1e30;
    for (int64_t rep = 0; rep < c->reps; rep++) {
        ms6_status st = MS6_STATUS_OK;
        for (int64_t i = 0; i < B && st == MS6_STATUS_OK; i++) {
            if (rep > 0) st = ms6_batch_remove(b, i);
            if (st == MS6_STATUS_OK) st = ms6_batch_add(b, &slots[i]);
            const int64_t P = c->prompt - (i % 8) > 0 ? c->prompt - (i % 8) : 1;
            bench_ids(ids, P, V, (uint64_t)i);
            const double t0 = cli_now();
            if (st == MS6_STATUS_OK) st = ms6_batch_prefill(b, slots[i], ids, P, logits);
            if (i == 0 && cli_now() - t0 < r->prefill_s) r->prefill_s = cli_now() - t0;
        }
        for (int64_t i = 0; i < B; i++) ids[i] = (int32_t)(i % V);
        for (int i = 0; i < 3 && st == MS6_STATUS_OK; i++) st = ms6_batch_step_greedy(b, slots, ids, B, ids + B);
        const double t0 = cli_now();
        for (int64_t g = 0; g < c->gen && st == MS6_STATUS_OK; g++) {
            memcpy(ids, ids + B, sizeof(int32_t) * (size_t)B);
            st = ms6_batch_step_greedy(b, slots, ids, B, ids + B);
        }
        const double t = cli_now() - t0;
        if (st != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6 bench generate: %s\n", ms6_batch_last_error(b));
            goto done;
        }
        if (t < r->decode_s) r->decode_s = t;
    }
    r->rss_bytes = rss_bytes();
    rc = 0;
done:
    ms6_batch_free(b);
    ms6_model_free(m);
    free(ids);
    free(slots);
    free(logits);
    return rc;
}

#ifdef MS6_HAVE_CUDA
/* Device copy bandwidth on 2 x 2 GiB buffers (over 30x the H200's L2). */
static int measure_cuda_bandwidth(bench_result *r) {
    ms6_backend *be = NULL;
    ms6_error err;
    if (ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 bench generate: %s\n", err.message);
        return 1;
    }
    const size_t bytes = (size_t)2 << 30;
    ms6_cuda_describe(be, r->device, sizeof r->device);
    if (ms6_cuda_copy_bandwidth(be, bytes, &r->copy_bytes_per_s) != MS6_STATUS_OK)
        fprintf(stderr, "mamba-s6 bench generate: %s (no floor printed)\n", ms6_backend_last_error(be));
    r->copy_buffer_bytes = (double)bytes;
    ms6_backend_free(be);
    return 0;
}
#endif

static void report(const bench_cfg *c, const bench_result *r) {
    const double pf_tps = (double)c->prompt / r->prefill_s;
    /* ms per decode step; a step makes `batch` tokens and reads the weights once plus every state */
    const double ms_tok = 1e3 * r->decode_s / (double)c->gen;
    const double step_bytes = (double)r->weight_bytes + (c->batch > 1 ? (double)c->batch * r->state_rw_bytes : 0);
    const double floor_ms = r->copy_bytes_per_s > 0 ? 1e3 * step_bytes / r->copy_bytes_per_s : 0;
    const double ratio = floor_ms > 0 ? ms_tok / floor_ms : 0;
    const double speedup = (1e3 * r->prefill_s / (double)c->prompt) > 0 ? ms_tok / (1e3 * r->prefill_s / (double)c->prompt) : 0;
    /* cpu: the prefill's compute floor (its matrix products at the FMA peak)
     * and the most a prefill can gain over decode here: decode floor over it */
    const double pf_floor_ms = r->fma_flops_per_s > 0 ? 1e3 * r->gemm_flops_per_token / r->fma_flops_per_s : 0;
    const double ratio_bound = pf_floor_ms > 0 && floor_ms > 0 && c->batch == 1 ? floor_ms / pf_floor_ms : 0;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddStringToObject(o, "bench", "generate");
        cJSON_AddStringToObject(o, "model", c->dir);
        cJSON_AddStringToObject(o, "backend", ms6_backend_kind_name(c->backend));
        cJSON_AddStringToObject(o, "isa", r->isa ? r->isa : "");
        cJSON_AddNumberToObject(o, "threads", r->threads_used);
        cJSON_AddNumberToObject(o, "batch", (double)c->batch);
        cJSON_AddNumberToObject(o, "prompt", (double)c->prompt);
        cJSON_AddNumberToObject(o, "gen", (double)c->gen);
        if (c->batch == 1) cJSON_AddStringToObject(o, "decode_calls", c->per_step ? "per_step" : "generate");
        cJSON_AddNumberToObject(o, "prefill_tokens_per_s", pf_tps);
        cJSON_AddNumberToObject(o, "prefill_ms_per_token", 1e3 * r->prefill_s / (double)c->prompt);
        cJSON_AddNumberToObject(o, "prefill_gemm_gflop_per_s", pf_tps * r->gemm_flops_per_token / 1e9);
        cJSON_AddNumberToObject(o, "ms_per_token", ms_tok);
        cJSON_AddNumberToObject(o, "tokens_per_s", (double)c->batch * 1e3 / ms_tok);
        cJSON_AddNumberToObject(o, "floor_tokens_per_s", floor_ms > 0 ? (double)c->batch * 1e3 / floor_ms : 0);
        cJSON_AddStringToObject(o, "device", r->device);
        cJSON_AddNumberToObject(o, "weight_bytes", (double)r->weight_bytes);
        cJSON_AddNumberToObject(o, "copy_gb_per_s", r->copy_bytes_per_s / 1e9);
        cJSON_AddNumberToObject(o, "floor_ms_per_token", floor_ms);
        cJSON_AddNumberToObject(o, "ratio_to_floor", ratio);
        cJSON_AddNumberToObject(o, "prefill_over_decode_per_token", speedup);
        if (pf_floor_ms > 0) {
            cJSON_AddNumberToObject(o, "fma_peak_gflop_per_s", r->fma_flops_per_s / 1e9);
            cJSON_AddNumberToObject(o, "prefill_floor_ms_per_token", pf_floor_ms);
            cJSON_AddNumberToObject(o, "prefill_ratio_to_floor", 1e3 * r->prefill_s / (double)c->prompt / pf_floor_ms);
            if (ratio_bound > 0) cJSON_AddNumberToObject(o, "prefill_over_decode_bound", ratio_bound);
        }
        cJSON_AddNumberToObject(o, "rss_mb", r->rss_bytes / 1e6);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(o);
        return;
    }
    printf("model %s: weights %.1f MB read per decoded token\n", c->dir, (double)r->weight_bytes / 1e6);
    printf("backend %s%s%s, %d thread%s, batch %lld, best of %lld runs\n", ms6_backend_kind_name(c->backend),
           r->isa ? " / " : "", r->isa ? r->isa : "", r->threads_used, r->threads_used == 1 ? "" : "s",
           (long long)c->batch, (long long)c->reps);
    if (r->device[0]) printf("device %s\n", r->device);
    if (c->batch == 1)
        printf("decode calls: %s\n", c->per_step ? "one greedy step per token (--per-step)"
                                                 : "one generate call, each token fed back where it was made");
    if (c->batch > 1)
        printf("decode: ms per step of %lld tokens; floor = (weights + %lld x %.1f MB of state) / copy bandwidth\n",
               (long long)c->batch, (long long)c->batch, r->state_rw_bytes / 1e6);
    printf("%-28s %12s %12s %12s %8s\n", "phase", "ms/token", "tokens/s", "floor ms", "ratio");
    if (pf_floor_ms > 0)
        printf("%-28s %12.3f %12.1f %12.3f %8.2f\n", "prefill", 1e3 * r->prefill_s / (double)c->prompt, pf_tps,
               pf_floor_ms, 1e3 * r->prefill_s / (double)c->prompt / pf_floor_ms);
    else
        printf("%-28s %12.3f %12.1f %12s %8s\n", "prefill", 1e3 * r->prefill_s / (double)c->prompt, pf_tps, "-", "-");
    if (floor_ms > 0)
        printf("%-28s %12.3f %12.1f %12.3f %8.2f\n", "decode", ms_tok, (double)c->batch * 1e3 / ms_tok, floor_ms, ratio);
    else
        printf("%-28s %12.3f %12.1f %12s %8s\n", "decode", ms_tok, (double)c->batch * 1e3 / ms_tok, "-", "-");
    if (floor_ms > 0 && c->batch > 1)
        printf("%-28s %12s %12.1f\n", "decode floor", "", (double)c->batch * 1e3 / floor_ms);
    printf("prefill (%lld tokens) is %.1fx faster per token than decode (%lld tokens); its matrix products\n"
           "run at %.1f GFLOP/s (%.0f MFLOP per token)\n", (long long)c->prompt, speedup, (long long)c->gen,
           pf_tps * r->gemm_flops_per_token / 1e9, r->gemm_flops_per_token / 1e6);
    if (pf_floor_ms > 0)
        printf("prefill floor = matrix-product FLOPs / multiply-add peak %.1f GFLOP/s (%d thread%s, measured)\n",
               r->fma_flops_per_s / 1e9, r->threads_used, r->threads_used == 1 ? "" : "s");
    if (ratio_bound > 0)
        printf("so no prefill here can beat decode per token by more than %.1fx (decode floor / prefill floor)\n",
               ratio_bound);
    if (r->copy_bytes_per_s > 0)
        printf("copy bandwidth %.2f GB/s (read + write, %d thread%s, 2 x %.0f MB buffers)\n",
               r->copy_bytes_per_s / 1e9, r->threads_used, r->threads_used == 1 ? "" : "s",
               r->copy_buffer_bytes / 1e6);
    printf("resident memory %.0f MB\n", r->rss_bytes / 1e6);
}

int cmd_bench_generate(int argc, char **argv) {
    bench_cfg c = {NULL, MS6_BACKEND_CPU, 0, 1, 512, 64, 3, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) {
            c.json = 1;
            continue;
        }
        if (!strcmp(a, "--per-step")) {
            c.per_step = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "mamba-s6 bench generate: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        long long n;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            c.dir = v;
        } else if (!strcmp(a, "--backend")) {
            if (ms6_backend_kind_parse(v, &c.backend) != MS6_STATUS_OK) {
                fprintf(stderr, "mamba-s6 bench generate: --backend expects cpu, cpu-ref or cuda, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(a, v, 0, 1024, &n)) return 2;
            c.threads = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (cli_parse_int(a, v, 1, 1 << 20, &n)) return 2;
            c.batch = n;
        } else if (!strcmp(a, "--prompt")) {
            if (cli_parse_int(a, v, 1, 1 << 24, &n)) return 2;
            c.prompt = n;
        } else if (!strcmp(a, "--gen")) {
            if (cli_parse_int(a, v, 1, 1 << 24, &n)) return 2;
            c.gen = n;
        } else if (!strcmp(a, "--reps")) {
            if (cli_parse_int(a, v, 1, 1000, &n)) return 2;
            c.reps = n;
        } else {
            fprintf(stderr, "mamba-s6 bench generate: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!c.dir) {
        fprintf(stderr, "mamba-s6 bench generate: -m DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    if (!ms6_backend_compiled(c.backend)) {
        fprintf(stderr, "mamba-s6 bench generate: the %s backend is not compiled into this build\n",
                ms6_backend_kind_name(c.backend));
        return 2;
    }
    bench_result r = {0};
    r.threads_used = c.backend == MS6_BACKEND_CPU ? (c.threads > 0 ? c.threads : ms6_cpu_count()) : 1;
    char isa[64] = "";
    if (c.backend == MS6_BACKEND_CPU) {
        snprintf(isa, sizeof isa, "%s%s", ms6_fast_kernels_select()->name,
                 ms6_fast_blas_wanted() ? " + openblas (prefill)" : "");
        r.isa = isa;
    }
    if (c.batch > 1 ? run_batch(&c, &r) : run_model(&c, &r)) return 1;
    /* after the model runs, so its resident size is not mixed with the copy buffers */
    if (c.backend != MS6_BACKEND_CUDA && measure_host_bandwidth(&c, &r)) return 1;
    if (c.backend == MS6_BACKEND_CPU) r.fma_flops_per_s = ms6_fast_fma_peak(NULL, r.threads_used);
#ifdef MS6_HAVE_CUDA
    if (c.backend == MS6_BACKEND_CUDA && measure_cuda_bandwidth(&r)) return 1;
#endif
    report(&c, &r);
    return 0;
}
