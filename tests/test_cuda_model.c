/*
 * test_cuda_model.c - whole models on the CUDA backend against the CPU
 * backend, on every golden checkpoint under tests/golden/models:
 *   - logits at every position of the golden ids: relative L2 per position
 *     <= 2e-2 with half weights (the default placement) and <= 2e-3 with
 *     fp32 weights (dtype f32, fp32 arithmetic end to end), prefilled in
 *     chunks of 5 tokens so the state crosses chunk boundaries;
 *   - decode: the CPU's greedy continuation fed to both backends step by
 *     step (steps 1, 2 and 3+ are the eager, captured and replayed CUDA
 *     graph paths): every step's logits within the same tolerance, and the
 *     same argmax wherever the CPU's top two logits are not a near-tie
 *     (fp32 mode: everywhere, and equal to the golden greedy ids);
 *   - batched decode == each sequence decoded alone (tests/batch_check.h),
 *     in half mode also with the whole-step kernel (MS6_CUDA_PERSIST=1);
 *   - the fused decode step (the per-layer kernels of src/backend/cuda/
 *     decode.cu, and with MS6_CUDA_PERSIST=1 the whole-step kernel of
 *     decode_persist.cu) == the unfused ops (MS6_CUDA_FUSED=0) within 1e-3 relative
 *     at every step, on the same half weights (models the fused path does not
 *     take, fp32 weights and falcon_mamba, compare the unfused path to itself);
 *   - batched decode with the fused dt_proj + state update op (ssm_step,
 *     src/backend/cuda/decode_batch.cu; by default for 3-16 sequences)
 *     forced on == forced off (MS6_DEC_BATCH_FUSED=1 / 0), 3 and 70
 *     sequences (prefilled, then stepped in order and as a permuted
 *     subset), in both weight modes; the other batched checks below take
 *     the default, and with MS6_DEC_BATCH_FUSED=1 in the environment the op
 *     at every batch size (scripts/gpu.sh does so);
 *   - greedy steps (ms6_session_step_greedy, ms6_batch_step_greedy: the
 *     argmax on the device) == ms6_argmax of the same step's logits, for one
 *     sequence and for 70 in a batch (more rows than one lm_head block);
 *   - a bad dtype option and an impossible device allocation are clear
 *     errors.
 * MS6_CUDA_TEST_MODEL=DIR adds a model with real shapes (e.g. one written by
 * `mamba-s6 init --shape 130m`): fused vs unfused decode and batched ==
 * single on it, from random prompts.
 * Exits 77 without a usable GPU or without the golden models.
 */
#include "batch_check.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>

static ms6_model *load(const char *dir, ms6_backend_kind kind, int dtype, int64_t chunk) {
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = kind;
    o.dtype = dtype;
    if (chunk) o.prefill_chunk = chunk;
    ms6_model *m = NULL;
    ms6_error err;
    ms6_status st = ms6_model_load(dir, &o, &m, &err);
    CHECK(st == MS6_STATUS_OK, "%s on %s: %s", dir, ms6_backend_kind_name(kind), err.message);
    return m;
}

static int32_t *json_ids(const cJSON *a, int64_t *n) {
    *n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int64_t i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(a, (int)i)->valuedouble;
    return ids;
}

/* top-1 minus top-2 of a logits row */
static double margin(const float *x, int64_t n) {
    double a = -INFINITY, b = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] > a) { b = a; a = x[i]; }
        else if (x[i] > b) b = x[i];
    }
    return a - b;
}

/* Decode of prompt + ids[0..G) on `gpu`, logits of every step into out (G+1 rows). */
static int decode_run(ms6_model *gpu, const int32_t *prompt, int64_t P, const int32_t *ids, int64_t G, float *out) {
    const int64_t V = ms6_model_vocab_size(gpu);
    ms6_session *s = NULL;
    ms6_status st = ms6_session_create(gpu, &s, NULL);
    if (!st) st = ms6_session_prefill(s, prompt, P, out, 0);
    for (int64_t i = 0; i < G && !st; i++) st = ms6_session_step(s, ids[i], out + (size_t)(i + 1) * V);
    CHECK(st == MS6_STATUS_OK, "decode run: %s", s ? ms6_session_last_error(s) : "no session");
    ms6_session_free(s);
    return st == MS6_STATUS_OK;
}

static void fused_vs_unfused(ms6_model *gpu, const char *name, const int32_t *prompt, int64_t P, const int32_t *ids,
                             int64_t G) {
    const int64_t V = ms6_model_vocab_size(gpu);
    float *a = malloc(sizeof(float) * (size_t)((G + 1) * V)), *b = malloc(sizeof(float) * (size_t)((G + 1) * V));
    float *f = malloc(sizeof(float) * (size_t)((G + 1) * V));
    int ok = a && b && f && decode_run(gpu, prompt, P, ids, G, a);
    setenv("MS6_CUDA_FUSED", "0", 1);
    ok = ok && decode_run(gpu, prompt, P, ids, G, b);
    unsetenv("MS6_CUDA_FUSED");
    setenv("MS6_CUDA_PERSIST", "1", 1); /* the whole-step kernel instead of the per-layer fused kernels */
    ok = ok && decode_run(gpu, prompt, P, ids, G, f);
    unsetenv("MS6_CUDA_PERSIST");
    double worst = 0, worst_f = 0;
    for (int64_t i = 1; ok && i <= G; i++) {
        const double e = bc_rel(a + (size_t)i * V, b + (size_t)i * V, V);
        const double ef = bc_rel(f + (size_t)i * V, b + (size_t)i * V, V);
        if (!(e <= worst)) worst = e;
        if (!(ef <= worst_f)) worst_f = ef;
    }
    CHECK(ok && worst <= 1e-3, "%s: fused vs unfused decode: worst step rel err %.3g > 1e-3", name, worst);
    CHECK(ok && worst_f <= 1e-3, "%s: whole-step fused vs unfused decode: worst step rel err %.3g > 1e-3", name,
          worst_f);
    fprintf(stderr, "  %-28s half decode vs unfused, rel: per-layer fused %.2e, whole-step %.2e, over %lld steps\n",
            name, worst, worst_f, (long long)G);
    free(a);
    free(b);
    free(f);
}

/* MS6_DEC_BATCH_FUSED forced on (1) or off (0), or unset (-1: the default
 * by batch size); returns the previous setting */
static int set_batch_fused(int on) {
    const char *e = getenv("MS6_DEC_BATCH_FUSED");
    const int was = !e || !*e ? -1 : !strcmp(e, "1");
    if (on >= 0) setenv("MS6_DEC_BATCH_FUSED", on ? "1" : "0", 1);
    else unsetenv("MS6_DEC_BATCH_FUSED");
    return was;
}

/* Batched decode steps with the fused ssm_step op against the same steps
 * without it (dt_proj gemm + state_update), on two batches fed the same
 * ids: B = 3 and 70 sequences (more than one block of 8 sequences, a
 * partial last block), each prefilled with 1-3 random tokens, then two
 * steps of all of them in order and two of a permuted subset (every other
 * sequence, last first). Each batch has its own graphs, so the variable is
 * read when each is captured. Returns the worst relative difference of a
 * logits row. */
static double batch_fused_check(ms6_model *gpu, const char *name, tu_rng *rng, double tol) {
    enum { BMAX = 70, STEPS = 4 };
    const int64_t V = ms6_model_vocab_size(gpu);
    float *lg[2] = {malloc(sizeof(float) * (size_t)(BMAX * V)), malloc(sizeof(float) * (size_t)(BMAX * V))};
    const int was = set_batch_fused(0);
    double worst = 0;
    ms6_status st = lg[0] && lg[1] ? MS6_STATUS_OK : MS6_STATUS_OUT_OF_MEMORY;
    for (int bi = 0; bi < 2 && !st; bi++) {
        const int64_t B = bi ? BMAX : 3;
        ms6_batch *b[2] = {NULL, NULL};
        int64_t sl[2][BMAX], step_sl[2][BMAX];
        int32_t ids[BMAX], pr[3];
        for (int k = 0; k < 2 && !st; k++) st = ms6_batch_create(gpu, B, &b[k], NULL);
        for (int64_t i = 0; i < B && !st; i++) {
            const int64_t L = 1 + i % 3;
            for (int64_t t = 0; t < L; t++) pr[t] = (int32_t)(tu_next(rng) % (uint64_t)V);
            for (int k = 0; k < 2 && !st; k++) {
                set_batch_fused(k);
                st = ms6_batch_add(b[k], &sl[k][i]);
                if (!st) st = ms6_batch_prefill(b[k], sl[k][i], pr, L, NULL);
            }
        }
        for (int r = 0; r < STEPS && !st; r++) {
            /* steps 0, 1: all in order; 2, 3: every other sequence, the last first */
            int64_t n = 0;
            for (int64_t i = 0; i < B; i++) {
                const int64_t j = r < 2 ? i : B - 1 - 2 * i;
                if (j < 0) break;
                for (int k = 0; k < 2; k++) step_sl[k][n] = sl[k][j];
                ids[n++] = (int32_t)(tu_next(rng) % (uint64_t)V);
            }
            for (int k = 0; k < 2 && !st; k++) {
                set_batch_fused(k);
                st = ms6_batch_step(b[k], step_sl[k], ids, n, lg[k]);
                CHECK(st == MS6_STATUS_OK, "%s: batch of %lld, step %d (fused ssm %d): %s", name, (long long)B, r, k,
                      ms6_batch_last_error(b[k]));
            }
            for (int64_t i = 0; i < n && !st; i++) {
                const double e = bc_rel(lg[1] + (size_t)i * V, lg[0] + (size_t)i * V, V);
                if (!(e <= worst)) worst = e;
            }
        }
        for (int k = 0; k < 2; k++) ms6_batch_free(b[k]);
    }
    set_batch_fused(was);
    CHECK(st == MS6_STATUS_OK, "%s: fused ssm batch check: %s", name, ms6_status_string(st));
    CHECK(worst <= tol, "%s: batched decode with the fused ssm op vs without: worst row rel err %.3g > %.3g", name,
          worst, tol);
    fprintf(stderr, "  %-28s batched decode, fused ssm op vs dt_proj + state update: rel %.2e\n", name, worst);
    free(lg[0]);
    free(lg[1]);
    return worst;
}

/* Greedy steps against the argmax of the logits of the same steps: a
 * session and a batch of 70 sequences, each fed the same ids twice in
 * lockstep (one state per path), so the ids must be identical. */
static void greedy_check(ms6_model *gpu, const char *name, const int32_t *prompt, int64_t P, tu_rng *rng) {
    enum { B = 70, S = 6 }; /* more than the 64 rows of one lm_head block */
    const int64_t V = ms6_model_vocab_size(gpu);
    float *lg = malloc(sizeof(float) * (size_t)(B * V));
    ms6_session *s1 = NULL, *s2 = NULL;
    ms6_batch *b1 = NULL, *b2 = NULL;
    int64_t sl1[B], sl2[B];
    int32_t in[B], nx[B];
    int bad = 0;
    ms6_status st = lg ? MS6_STATUS_OK : MS6_STATUS_OUT_OF_MEMORY;
    if (!st) st = ms6_session_create(gpu, &s1, NULL);
    if (!st) st = ms6_session_create(gpu, &s2, NULL);
    if (!st && P > 0) st = ms6_session_prefill(s1, prompt, P, NULL, 0);
    if (!st && P > 0) st = ms6_session_prefill(s2, prompt, P, NULL, 0);
    int32_t id = P > 0 ? prompt[P - 1] : 0;
    for (int i = 0; i < S && !st; i++) {
        int32_t next = -1;
        st = ms6_session_step(s1, id, lg);
        if (!st) st = ms6_session_step_greedy(s2, id, &next);
        if (!st && next != ms6_argmax(lg, V)) bad++;
        id = next;
    }
    CHECK(st == MS6_STATUS_OK && bad == 0, "%s: greedy session steps: %d differ from the argmax of the logits (%s)", name,
          bad, s2 ? ms6_session_last_error(s2) : "");
    /* generate_greedy: G tokens fed back on the device (past the 1024 ids
     * the log holds between copies), then the same ids teacher-forced
     * through s1's steps: each must be the argmax of the logits before it,
     * up to ties within 1e-4 (the x_proj atomics make two runs differ by
     * rounding) */
    enum { G = 1030 };
    int32_t *gen = malloc(sizeof(int32_t) * G);
    int near = 0, exact = 0;
    bad = 0;
    if (!gen && !st) st = MS6_STATUS_OUT_OF_MEMORY;
    if (!st) st = ms6_session_reset(s1);
    if (!st) st = ms6_session_reset(s2);
    if (!st && P > 0) st = ms6_session_prefill(s1, prompt, P, NULL, 0);
    if (!st && P > 0) st = ms6_session_prefill(s2, prompt, P, NULL, 0);
    id = P > 0 ? prompt[P - 1] : 0;
    if (!st) st = ms6_session_generate_greedy(s2, id, G, gen);
    CHECK(st == MS6_STATUS_OK && ms6_session_position(s2) == P + G, "%s: generate_greedy of %d (%s)", name, (int)G,
          s2 ? ms6_session_last_error(s2) : "");
    for (int i = 0; i < G && !st; i++) {
        st = ms6_session_step(s1, id, lg);
        if (st) break;
        const int32_t best = ms6_argmax(lg, V);
        if (gen[i] < 0 || gen[i] >= V || !(lg[gen[i]] >= lg[best] - 1e-4f * (1.0f + fabsf(lg[best])))) bad++;
        exact += gen[i] == best;
        near++;
        id = gen[i];
    }
    CHECK(st == MS6_STATUS_OK && bad == 0 && near == G,
          "%s: generate_greedy: %d of %d tokens are not the argmax of the logits before them (%s)", name, bad, near,
          s1 ? ms6_session_last_error(s1) : "");
    fprintf(stderr, "  %-28s generate_greedy: %d tokens, %d exactly the step's argmax, all within ties\n", name, near,
            exact);
    free(gen);
    bad = 0;
    if (!st) st = ms6_batch_create(gpu, B, &b1, NULL);
    if (!st) st = ms6_batch_create(gpu, B, &b2, NULL);
    for (int i = 0; i < B && !st; i++) {
        st = ms6_batch_add(b1, &sl1[i]);
        if (!st) st = ms6_batch_add(b2, &sl2[i]);
        in[i] = (int32_t)(tu_next(rng) % (uint64_t)V);
    }
    for (int r = 0; r < S && !st; r++) {
        st = ms6_batch_step(b1, sl1, in, B, lg);
        if (!st) st = ms6_batch_step_greedy(b2, sl2, in, B, nx);
        for (int i = 0; i < B && !st; i++) {
            if (nx[i] != ms6_argmax(lg + i * V, V)) bad++;
            in[i] = nx[i];
        }
    }
    CHECK(st == MS6_STATUS_OK && bad == 0, "%s: greedy batch of %d: %d ids differ from the argmax of the logits (%s)",
          name, B, bad, b2 ? ms6_batch_last_error(b2) : "");
    ms6_batch_free(b1);
    ms6_batch_free(b2);
    ms6_session_free(s1);
    ms6_session_free(s2);
    free(lg);
}

static void golden_one(const char *dir, tu_rng *rng) {
    char path[2048];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    char *text = tu_read_file(path, NULL);
    if (!text) return;
    cJSON *g = cJSON_Parse(text);
    free(text);
    CHECK(g != NULL, "%s: bad JSON", path);
    if (!g) return;
    int64_t L, P, G;
    int32_t *ids = json_ids(cJSON_GetObjectItem(g, "ids"), &L);
    int32_t *prompt = json_ids(cJSON_GetObjectItem(g, "greedy_prompt"), &P);
    int32_t *gold_greedy = json_ids(cJSON_GetObjectItem(g, "greedy"), &G);
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;

    ms6_model *cpu = load(dir, MS6_BACKEND_CPU, -1, 0);
    for (int mode = 0; mode < 2 && cpu && L > 0; mode++) {
        /* mode 0: half weights (default placement); mode 1: fp32 weights */
        const double tol = mode ? 2e-3 : 2e-2;
        const char *mname = mode ? "f32" : "half";
        ms6_model *gpu = load(dir, MS6_BACKEND_CUDA, mode ? MS6_DTYPE_F32 : -1, 5);
        if (!gpu) continue;
        const int64_t V = ms6_model_vocab_size(cpu);
        float *a = malloc(sizeof(float) * (size_t)(L * V)), *b = malloc(sizeof(float) * (size_t)(L * V));
        ms6_session *sc = NULL, *sg = NULL;
        ms6_session_create(cpu, &sc, NULL);
        ms6_session_create(gpu, &sg, NULL);
        CHECK(sc && sg, "%s: sessions", name);
        if (!sc || !sg) goto next;
        ms6_status st = ms6_session_prefill(sc, ids, L, a, 1);
        CHECK(st == MS6_STATUS_OK, "%s: cpu prefill: %s", name, ms6_session_last_error(sc));
        st = ms6_session_prefill(sg, ids, L, b, 1);
        CHECK(st == MS6_STATUS_OK, "%s %s: cuda prefill: %s", name, mname, ms6_session_last_error(sg));
        if (st) goto next;
        double worst = 0;
        for (int64_t t = 0; t < L; t++) {
            const double e = bc_rel(b + t * V, a + t * V, V);
            if (!(e <= worst)) worst = e;
        }
        CHECK(worst <= tol, "%s %s: prefill logits vs cpu: worst position rel err %.3g > %.3g", name, mname, worst, tol);
        /* decode: the CPU's greedy continuation of the greedy prompt, teacher-forced on both */
        if (P > 0 && G > 0) {
            ms6_session_reset(sc);
            ms6_session_reset(sg);
            st = ms6_session_prefill(sc, prompt, P, a, 0);
            if (!st) st = ms6_session_prefill(sg, prompt, P, b, 0);
            CHECK(st == MS6_STATUS_OK, "%s %s: greedy prompt: %s / %s", name, mname, ms6_session_last_error(sc),
                  ms6_session_last_error(sg));
            double dworst = 0;
            int64_t agree = 0, ties = 0;
            for (int64_t i = 0; i < G && !st; i++) {
                const int32_t ca = ms6_argmax(a, V), cb = ms6_argmax(b, V);
                const double e = bc_rel(b, a, V);
                if (!(e <= dworst)) dworst = e;
                if (ca == cb) agree++;
                else if (!mode && margin(a, V) < 0.05) ties++;
                else CHECK(0, "%s %s: greedy step %lld: cuda picks %d, cpu %d", name, mname, (long long)i, cb, ca);
                if (mode)
                    CHECK(ca == gold_greedy[i], "%s: cpu greedy step %lld is %d, golden %d", name, (long long)i, ca,
                          gold_greedy[i]);
                st = ms6_session_step(sc, ca, a);
                if (!st) st = ms6_session_step(sg, ca, b);
                CHECK(st == MS6_STATUS_OK, "%s %s: step %lld: %s / %s", name, mname, (long long)i,
                      ms6_session_last_error(sc), ms6_session_last_error(sg));
            }
            CHECK(dworst <= tol, "%s %s: decode logits vs cpu: worst step rel err %.3g > %.3g", name, mname, dworst,
                  tol);
            fprintf(stderr, "  %-28s %-4s prefill rel %.2e  decode rel %.2e  greedy %lld/%lld (+%lld near-ties)\n",
                    name, mname, worst, dworst, (long long)agree, (long long)G, (long long)ties);
        }
        /* half mode: a batched step may round x to the weights' type for the
         * tensor cores (bf16: 8 bits) where a single step (skinny kernel)
         * reads it in fp32, so the half-mode tolerance applies */
        batch_check(gpu, name, rng, mode ? 1e-4 : 2e-2);
        /* half mode: the unfused path's dt_proj (cuBLASLt from 9 rows) rounds dt to the weights' type,
         * the fused op keeps it fp32: two half-mode results, each held to 2e-2 of the CPU's above, so
         * their difference to the sum, 4e-2 (bf16 falcon: 0.95-2.3e-2 over ten runs on the H200) */
        batch_fused_check(gpu, name, rng, mode ? 1e-4 : 4e-2);
        if (!mode) { /* the whole-step kernel, for 1 and 2 sequences (the subset steps) */
            setenv("MS6_CUDA_PERSIST", "1", 1);
            batch_check(gpu, name, rng, 2e-2);
            unsetenv("MS6_CUDA_PERSIST");
        }
        if (!mode && P > 0 && G > 0) fused_vs_unfused(gpu, name, prompt, P, gold_greedy, G);
        if (!mode) greedy_check(gpu, name, prompt, P, rng);
    next:
        ms6_session_free(sc);
        ms6_session_free(sg);
        free(a);
        free(b);
        ms6_model_free(gpu);
    }
    ms6_model_free(cpu);
    free(ids);
    free(prompt);
    free(gold_greedy);
    cJSON_Delete(g);
}

static void bad_input(const char *dir) {
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CUDA;
    o.dtype = 7;
    ms6_model *m = NULL;
    ms6_error err;
    ms6_status st = ms6_model_load(dir, &o, &m, &err);
    CHECK(st == MS6_STATUS_INVALID_ARGUMENT && !m, "dtype 7 accepted (%s)", ms6_status_string(st));
    CHECK(strstr(err.message, "dtype") != NULL, "dtype message: %s", err.message);
    ms6_backend *be = NULL;
    if (ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err) == MS6_STATUS_OK) {
        void *p = NULL;
        st = ms6_backend_alloc(be, (size_t)1 << 52, &p);
        CHECK(st == MS6_STATUS_OUT_OF_MEMORY && !p, "4 PB device allocation: %s", ms6_status_string(st));
        CHECK(strstr(ms6_backend_last_error(be), "bytes") != NULL, "OOM message: %s", ms6_backend_last_error(be));
        ms6_backend_free(be);
    }
}

int main(void) {
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("test_cuda_model"));
    ms6_backend *be = NULL;
    ms6_error err;
    if (ms6_backend_create(MS6_BACKEND_CUDA, NULL, &be, &err) != MS6_STATUS_OK) {
        printf("skip: %s\n", err.message);
        return TEST_SKIP;
    }
    ms6_backend_free(be);
    char root[1024];
    tu_source_path("tests/golden/models", root, sizeof root);
    DIR *d = opendir(root);
    if (!d) {
        printf("skip: no golden models under %s\n", root);
        return TEST_SKIP;
    }
    struct dirent *e;
    char names[64][256];
    int n = 0;
    while ((e = readdir(d)) && n < 64)
        if (e->d_name[0] != '.') snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++) {
        char dir[1400];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        golden_one(dir, &rng);
        if (i == 0) bad_input(dir);
    }
    const char *extra = getenv("MS6_CUDA_TEST_MODEL");
    if (extra && *extra) {
        ms6_model *gpu = load(extra, MS6_BACKEND_CUDA, -1, 0);
        if (gpu) {
            const int64_t V = ms6_model_vocab_size(gpu);
            int32_t prompt[16], next[8];
            for (int i = 0; i < 16; i++) prompt[i] = (int32_t)(tu_next(&rng) % (uint64_t)V);
            for (int i = 0; i < 8; i++) next[i] = (int32_t)(tu_next(&rng) % (uint64_t)V);
            fused_vs_unfused(gpu, extra, prompt, 16, next, 8);
            const double e = batch_check(gpu, extra, &rng, 2e-2);
            fprintf(stderr, "  %-28s batched vs single rel %.2e\n", extra, e);
            setenv("MS6_CUDA_PERSIST", "1", 1);
            const double ep = batch_check(gpu, extra, &rng, 2e-2);
            unsetenv("MS6_CUDA_PERSIST");
            fprintf(stderr, "  %-28s batched vs single rel %.2e (whole-step kernel)\n", extra, ep);
            batch_fused_check(gpu, extra, &rng, 2e-2);
            ms6_model_free(gpu);
        }
    }
    return tu_finish("test_cuda_model");
}
