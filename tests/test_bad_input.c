/*
 * test_bad_input.c - ms6_model_load and sessions on broken checkpoints.
 *
 * Starts from a committed golden model (tests/golden/models/mamba_f32_tied),
 * copies it to a temporary directory and breaks one thing at a time: the
 * directory, config.json (bad JSON, wrong types, unsupported values, shapes
 * that disagree with the tensors), the safetensors file (missing tensor,
 * unsupported dtype, truncation, random header damage) and token ids. Each
 * case must return the right status with a message naming the file and the
 * tensor or key, and never crash (run under valgrind: no invalid reads, no
 * leaks). Skips (77) when the golden model is absent.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char src[1024], dir[256];

static int read_all(const char *path, unsigned char **data, size_t *n) {
    *data = (unsigned char *)tu_read_file(path, n);
    return *data != NULL;
}

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void file_in(char *buf, size_t cap, const char *d, const char *name) { snprintf(buf, cap, "%s/%s", d, name); }

/* Fresh copy of the golden model in dir. */
static void fresh_copy(void) {
    const char *names[] = {"config.json", "model.safetensors"};
    char a[1100], b[300];
    for (int i = 0; i < 2; i++) {
        unsigned char *d;
        size_t n;
        file_in(a, sizeof a, src, names[i]);
        file_in(b, sizeof b, dir, names[i]);
        if (read_all(a, &d, &n)) {
            write_all(b, d, n);
            free(d);
        }
    }
    file_in(b, sizeof b, dir, "pytorch_model.bin");
    remove(b);
}

static ms6_status try_load(char *msg) {
    ms6_model *m = NULL;
    ms6_error err = {0};
    ms6_status st = ms6_model_load(dir, NULL, &m, &err);
    snprintf(msg, 512, "%s", err.message);
    CHECK((st == MS6_STATUS_OK) == (m != NULL), "model pointer and status disagree");
    ms6_model_free(m);
    return st;
}

static void expect(const char *name, ms6_status want, const char *n1, const char *n2, const char *n3) {
    char msg[512] = "";
    ms6_status st = try_load(msg);
    CHECK(st == want, "%s: status %s, expected %s (message: %s)", name, ms6_status_string(st), ms6_status_string(want),
          msg);
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        CHECK(!needles[i] || strstr(msg, needles[i]), "%s: message '%s' does not name '%s'", name, msg, needles[i]);
    if (st != MS6_STATUS_OK) fprintf(stderr, "  %-28s -> %s\n", name, msg);
}

/* config.json edited through cJSON: set key to a parsed JSON value. */
static void set_config(const char *key, const char *json_value) {
    char p[300];
    file_in(p, sizeof p, dir, "config.json");
    unsigned char *d;
    size_t n;
    if (!read_all(p, &d, &n)) return;
    cJSON *c = cJSON_Parse((char *)d);
    free(d);
    if (!c) return;
    cJSON_DeleteItemFromObject(c, key);
    if (json_value) cJSON_AddItemToObject(c, key, cJSON_Parse(json_value));
    char *s = cJSON_Print(c);
    write_all(p, s, strlen(s));
    free(s);
    cJSON_Delete(c);
}

/* Rewrites the safetensors header (data section unchanged). */
typedef void (*header_edit)(cJSON *h);
static void edit_header(header_edit fn) {
    char p[300];
    file_in(p, sizeof p, dir, "model.safetensors");
    unsigned char *d;
    size_t n;
    if (!read_all(p, &d, &n)) return;
    uint64_t hl;
    memcpy(&hl, d, 8);
    cJSON *h = cJSON_ParseWithLength((char *)d + 8, (size_t)hl);
    if (h) {
        fn(h);
        char *s = cJSON_PrintUnformatted(h);
        uint64_t nl = strlen(s);
        FILE *f = fopen(p, "wb");
        fwrite(&nl, 8, 1, f);
        fwrite(s, 1, nl, f);
        fwrite(d + 8 + hl, 1, n - 8 - hl, f);
        fclose(f);
        free(s);
        cJSON_Delete(h);
    }
    free(d);
}

static void drop_D(cJSON *h) { cJSON_DeleteItemFromObject(h, "backbone.layers.1.mixer.D"); }
static void d_as_i32(cJSON *h) {
    cJSON *e = cJSON_GetObjectItem(h, "backbone.layers.1.mixer.D");
    if (e) cJSON_ReplaceItemInObject(e, "dtype", cJSON_CreateString("I32"));
}

int main(void) {
    tu_rng r;
    tu_rng_init(&r, tu_seed("test_bad_input"));
    tu_source_path("tests/golden/models/mamba_f32_tied", src, sizeof src);
    char probe[1100];
    file_in(probe, sizeof probe, src, "model.safetensors");
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "test_bad_input: %s absent, skipping\n", probe);
        return TEST_SKIP;
    }
    snprintf(dir, sizeof dir, "/tmp/ms6_test_bad_%d", (int)getpid());
    mkdir(dir, 0755);
    fresh_copy();
    char msg[512], p[300];
    CHECK(try_load(msg) == MS6_STATUS_OK, "the unbroken copy must load: %s", msg);

    /* directory */
    {
        char keep[256];
        snprintf(keep, sizeof keep, "%s", dir);
        snprintf(dir, sizeof dir, "/nonexistent/ms6-model-dir");
        expect("missing directory", MS6_STATUS_IO_ERROR, "/nonexistent/ms6-model-dir", NULL, NULL);
        snprintf(dir, sizeof dir, "%s", keep);
    }
    file_in(p, sizeof p, dir, "config.json");
    remove(p);
    expect("missing config.json", MS6_STATUS_IO_ERROR, "config.json", dir, NULL);
    fresh_copy();
    file_in(p, sizeof p, dir, "model.safetensors");
    remove(p);
    expect("missing model.safetensors", MS6_STATUS_IO_ERROR, "model.safetensors", dir, NULL);
    {
        char bin[300];
        file_in(bin, sizeof bin, dir, "pytorch_model.bin");
        write_all(bin, "PK", 2);
        expect("pickle only", MS6_STATUS_UNSUPPORTED, "pytorch_model.bin", NULL, NULL);
    }

    /* config.json */
    fresh_copy();
    file_in(p, sizeof p, dir, "config.json");
    write_all(p, "{\"hidden_size\": 32,", 19);
    expect("bad JSON config", MS6_STATUS_FORMAT_ERROR, "config.json", "JSON", NULL);
    write_all(p, "[]", 2);
    expect("config not an object", MS6_STATUS_FORMAT_ERROR, "config.json", NULL, NULL);
    fresh_copy();
    set_config("hidden_size", "\"big\"");
    expect("hidden_size a string", MS6_STATUS_FORMAT_ERROR, "config.json", "hidden_size", NULL);
    fresh_copy();
    set_config("num_hidden_layers", NULL);
    expect("no num_hidden_layers", MS6_STATUS_FORMAT_ERROR, "config.json", "num_hidden_layers", NULL);
    fresh_copy();
    set_config("state_size", "512");
    expect("d_state 512", MS6_STATUS_UNSUPPORTED, "config.json", "state_size", "256");
    fresh_copy();
    set_config("conv_kernel", "9");
    expect("conv_kernel 9", MS6_STATUS_UNSUPPORTED, "config.json", "conv_kernel", NULL);
    fresh_copy();
    set_config("model_type", "\"mamba2\"");
    expect("model_type mamba2", MS6_STATUS_UNSUPPORTED, "config.json", "mamba2", NULL);
    fresh_copy();
    set_config("layer_norm_epsilon", "-1");
    expect("negative epsilon", MS6_STATUS_FORMAT_ERROR, "config.json", "layer_norm_epsilon", NULL);
    fresh_copy();
    set_config("layer_norm_epsilon", "1e-59"); /* 0 in fp32 (found by fuzz_config) */
    expect("epsilon 0 in fp32", MS6_STATUS_FORMAT_ERROR, "config.json", "layer_norm_epsilon", NULL);
    file_in(p, sizeof p, dir, "config.json");
    const char *no_dm = "{\"d_model\": null, \"n_layer\": 2, \"vocab_size\": 259}";
    write_all(p, no_dm, strlen(no_dm));
    expect("state-spaces without d_model", MS6_STATUS_FORMAT_ERROR, "config.json", "d_model", NULL);
    fresh_copy();
    set_config("use_bias", "1");
    expect("use_bias not a bool", MS6_STATUS_FORMAT_ERROR, "config.json", "use_bias", NULL);

    /* config and tensors disagree: wrong shapes, named with both shapes */
    fresh_copy();
    set_config("state_size", "8");
    expect("wrong shape (d_state)", MS6_STATUS_FORMAT_ERROR, "model.safetensors", "backbone.layers.0.mixer.x_proj.weight",
           "expected [18, 64]");
    fresh_copy();
    set_config("vocab_size", "300");
    expect("wrong shape (vocab)", MS6_STATUS_FORMAT_ERROR, "backbone.embeddings.weight", "[259, 32]", "[300, 32]");
    fresh_copy();
    set_config("use_bias", "true");
    expect("bias expected, absent", MS6_STATUS_FORMAT_ERROR, "backbone.layers.0.mixer.in_proj.bias",
           "model.safetensors", NULL);
    fresh_copy();
    set_config("tie_word_embeddings", "false");
    expect("untied without lm_head", MS6_STATUS_FORMAT_ERROR, "lm_head.weight", "model.safetensors", NULL);
    fresh_copy();
    set_config("num_hidden_layers", "3");
    expect("more layers than tensors", MS6_STATUS_FORMAT_ERROR, "backbone.layers.2.", "missing", NULL);

    /* the safetensors file */
    fresh_copy();
    edit_header(drop_D);
    expect("missing tensor", MS6_STATUS_FORMAT_ERROR, "backbone.layers.1.mixer.D", "model.safetensors", "missing");
    fresh_copy();
    edit_header(d_as_i32);
    expect("unsupported dtype", MS6_STATUS_UNSUPPORTED, "backbone.layers.1.mixer.D", "I32", "model.safetensors");
    fresh_copy();
    {
        unsigned char *d;
        size_t n;
        file_in(p, sizeof p, dir, "model.safetensors");
        if (read_all(p, &d, &n)) {
            write_all(p, d, n / 2);
            expect("truncated safetensors", MS6_STATUS_FORMAT_ERROR, "model.safetensors", NULL, NULL);
            write_all(p, d, 5);
            expect("5-byte safetensors", MS6_STATUS_FORMAT_ERROR, "model.safetensors", NULL, NULL);
            /* random damage in the header: any status, never a crash */
            uint64_t hl;
            memcpy(&hl, d, 8);
            int rejected = 0;
            for (int k = 0; k < 60; k++) {
                unsigned char *c = malloc(n);
                memcpy(c, d, n);
                for (int j = 0; j < 3; j++) c[8 + tu_next(&r) % hl] = (unsigned char)tu_next(&r);
                if (k % 10 == 0) c[tu_next(&r) % 8] ^= (unsigned char)(1u << (tu_next(&r) % 8));
                write_all(p, c, n);
                free(c);
                rejected += try_load(msg) != MS6_STATUS_OK;
            }
            fprintf(stderr, "  random header damage: %d of 60 rejected, none crashed\n", rejected);
            free(d);
        }
    }

    /* token ids */
    fresh_copy();
    ms6_model *m = NULL;
    ms6_session *s = NULL;
    CHECK(ms6_model_load(dir, NULL, &m, NULL) == MS6_STATUS_OK, "load");
    if (m && ms6_session_create(m, &s, NULL) == MS6_STATUS_OK) {
        int32_t ids[4] = {1, 2, 259, 3};
        float *lg = malloc(sizeof(float) * 259 * 4);
        CHECK(ms6_session_prefill(s, ids, 4, lg, 1) == MS6_STATUS_OUT_OF_RANGE, "id 259 of vocab 259 accepted");
        CHECK(strstr(ms6_session_last_error(s), "259") && strstr(ms6_session_last_error(s), "position 2"),
              "message '%s' names neither the id nor the position", ms6_session_last_error(s));
        fprintf(stderr, "  %-28s -> %s\n", "out-of-range id", ms6_session_last_error(s));
        CHECK(ms6_session_step(s, INT32_MAX, lg) == MS6_STATUS_OUT_OF_RANGE, "INT32_MAX accepted");
        CHECK(ms6_session_step(s, -5, lg) == MS6_STATUS_OUT_OF_RANGE, "-5 accepted");
        CHECK(ms6_session_prefill(s, ids, 0, lg, 0) == MS6_STATUS_INVALID_ARGUMENT, "0 ids accepted");
        CHECK(ms6_session_prefill(s, NULL, 3, lg, 0) == MS6_STATUS_INVALID_ARGUMENT, "NULL ids accepted");
        int32_t gen[2];
        CHECK(ms6_session_generate_greedy(s, 259, 2, gen) == MS6_STATUS_OUT_OF_RANGE, "generate from id 259 accepted");
        CHECK(strstr(ms6_session_last_error(s), "259") != NULL, "generate: message '%s' does not name the id",
              ms6_session_last_error(s));
        CHECK(ms6_session_generate_greedy(s, 1, -3, gen) == MS6_STATUS_INVALID_ARGUMENT, "generate count -3 accepted");
        CHECK(ms6_session_generate_greedy(s, 1, 2, NULL) == MS6_STATUS_INVALID_ARGUMENT, "generate into NULL accepted");
        CHECK(ms6_session_generate_greedy(NULL, 1, 2, gen) == MS6_STATUS_INVALID_ARGUMENT, "generate on NULL session");
        CHECK(ms6_session_position(s) == 0, "position moved");
        CHECK(ms6_session_load_state(s, "/nonexistent/state.bin") == MS6_STATUS_IO_ERROR, "missing state file");
        CHECK(strstr(ms6_session_last_error(s), "/nonexistent/state.bin") != NULL, "state file not named: %s",
              ms6_session_last_error(s));
        unsigned char junk[200] = {0};
        CHECK(ms6_session_restore(s, junk, sizeof junk) == MS6_STATUS_FORMAT_ERROR, "junk state accepted");
        free(lg);
    }
    ms6_session_free(s);
    ms6_model_free(m);
    /* API misuse */
    ms6_model *none = (ms6_model *)1;
    CHECK(ms6_model_load(NULL, NULL, &none, NULL) == MS6_STATUS_INVALID_ARGUMENT && none == NULL, "NULL dir");
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.prefill_chunk = -4;
    CHECK(ms6_model_load(dir, &o, &none, NULL) == MS6_STATUS_INVALID_ARGUMENT, "negative prefill_chunk");
    if (!ms6_backend_compiled(MS6_BACKEND_CUDA)) {
        ms6_error err;
        o.prefill_chunk = 0;
        o.backend = MS6_BACKEND_CUDA;
        CHECK(ms6_model_load(dir, &o, &none, &err) == MS6_STATUS_UNSUPPORTED, "cuda in a CPU-only build");
        CHECK(strstr(err.message, "cpu") != NULL, "no hint to use the cpu backend: %s", err.message);
    }

    const char *names[] = {"config.json", "model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 3; i++) {
        file_in(p, sizeof p, dir, names[i]);
        remove(p);
    }
    rmdir(dir);
    return tu_finish("test_bad_input");
}
