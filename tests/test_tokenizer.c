/*
 * test_tokenizer.c - the byte-level BPE tokenizer against Hugging Face
 * `tokenizers`:
 *   - goldens made by tests/make_tokenizer_goldens.py (small trained
 *     tokenizers with GPT-NeoX's structure and variants, a stress corpus
 *     including invalid UTF-8, random ids to decode): every case encodes to
 *     the ids `tokenizers` gave and decodes to the text it gave;
 *   - the GPT-NeoX-20B reference cases in ../shared/data/gpt-neox-20b when
 *     present (that part is skipped otherwise);
 *   - the streaming decoder on fresh random ids equals one-shot decode and
 *     never emits a partial character;
 *   - encoding random bytes never fails and decodes to valid UTF-8; random
 *     ASCII round-trips exactly;
 *   - buffer-too-small reporting, and bad input: malformed JSON, unknown model
 *     type, a merge naming an unknown token, out-of-range ids.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static size_t unhex(const char *h, unsigned char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

/* Encodes with an exactly sized buffer after asking for the count. */
static int32_t *encode(ms6_tokenizer *tok, const char *s, size_t n, size_t *n_ids) {
    size_t need = 0;
    ms6_status st = ms6_tokenizer_encode(tok, s, n, NULL, 0, &need);
    if (st != MS6_STATUS_OK && st != MS6_STATUS_BUFFER_TOO_SMALL) {
        fprintf(stderr, "encode failed: %s\n", ms6_tokenizer_last_error(tok));
        return NULL;
    }
    CHECK(st == (need ? MS6_STATUS_BUFFER_TOO_SMALL : MS6_STATUS_OK), "status %d for a count query", (int)st);
    int32_t *ids = malloc(sizeof *ids * (need + 1));
    st = ms6_tokenizer_encode(tok, s, n, ids, need, n_ids);
    CHECK(st == MS6_STATUS_OK && *n_ids == need, "encode with the reported count: %s", ms6_tokenizer_last_error(tok));
    return ids;
}

static char *decode(ms6_tokenizer *tok, const int32_t *ids, size_t n, size_t *len) {
    ms6_status st = ms6_tokenizer_decode(tok, ids, n, NULL, 0, len);
    if (st != MS6_STATUS_OK && st != MS6_STATUS_BUFFER_TOO_SMALL) return NULL;
    char *text = malloc(*len + 1);
    st = ms6_tokenizer_decode(tok, ids, n, text, *len + 1, len);
    CHECK(st == MS6_STATUS_OK, "decode: %s", ms6_tokenizer_last_error(tok));
    return text;
}

/* Streaming decode of ids must equal decode(ids), chunk by chunk valid UTF-8. */
static void check_stream(ms6_tokenizer *tok, const int32_t *ids, size_t n, const char *want, size_t want_len) {
    ms6_decoder *dec;
    ms6_error err;
    if (ms6_decoder_create(tok, &dec, &err) != MS6_STATUS_OK) {
        CHECK(0, "decoder_create: %s", err.message);
        return;
    }
    char *acc = malloc(want_len + 64);
    size_t k = 0;
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        const char *t;
        size_t l;
        ms6_status st = i < n ? ms6_decoder_push(dec, ids[i], &t, &l) : ms6_decoder_flush(dec, &t, &l);
        if (st != MS6_STATUS_OK || k + l > want_len) {
            ok = 0;
            break;
        }
        /* every chunk is complete UTF-8 on its own */
        size_t j = 0;
        while (j < l) {
            unsigned char c = (unsigned char)t[j];
            size_t cl = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (j + cl > l) ok = 0;
            j += cl;
        }
        memcpy(acc + k, t, l);
        k += l;
    }
    CHECK(ok && k == want_len && !memcmp(acc, want, k), "streaming decode differs from decode (%zu vs %zu bytes)", k,
          want_len);
    free(acc);
    ms6_decoder_free(dec);
}

static void run_golden_set(ms6_tokenizer *tok, const char *name, const cJSON *cases) {
    int n_ok = 0, n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *th = cJSON_GetObjectItem(c, "text_hex")->valuestring;
        const char *dh = cJSON_GetObjectItem(c, "decoded_hex")->valuestring;
        const cJSON *jids = cJSON_GetObjectItem(c, "ids");
        unsigned char *text = malloc(strlen(th) / 2 + 1), *want_dec = malloc(strlen(dh) / 2 + 1);
        size_t tl = unhex(th, text), dl = unhex(dh, want_dec);
        size_t ne = (size_t)cJSON_GetArraySize(jids), ng = 0;
        int32_t *want = malloc(sizeof *want * (ne + 1));
        for (size_t i = 0; i < ne; i++) want[i] = (int32_t)cJSON_GetArrayItem(jids, (int)i)->valueint;
        int32_t *got = encode(tok, (const char *)text, tl, &ng);
        int same = got && ng == ne && !memcmp(got, want, sizeof *want * ne);
        size_t d = 0;
        while (got && d < ng && d < ne && got[d] == want[d]) d++;
        CHECK(same, "%s case %d (hex %.40s...): %zu ids, expected %zu; first difference at %zu", name, n, th, ng, ne,
              d);
        size_t gl = 0;
        char *gd = decode(tok, want, ne, &gl);
        int dec_same = gd && gl == dl && !memcmp(gd, want_dec, dl);
        CHECK(dec_same, "%s case %d: decode gives %zu bytes, expected %zu", name, n, gl, dl);
        check_stream(tok, want, ne, (const char *)want_dec, dl);
        n_ok += same && dec_same;
        n++;
        free(gd);
        free(got);
        free(want);
        free(text);
        free(want_dec);
    }
    fprintf(stderr, "goldens %s: %d/%d cases match\n", name, n_ok, n);
}

/* Random ids (split characters, special tokens): decode and the streaming
 * decoder give the text `tokenizers` decodes. */
static void run_decode_set(ms6_tokenizer *tok, const char *name, const cJSON *cases) {
    int n = 0, n_ok = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *dh = cJSON_GetObjectItem(c, "decoded_hex")->valuestring;
        const cJSON *jids = cJSON_GetObjectItem(c, "ids");
        unsigned char *want = malloc(strlen(dh) / 2 + 1);
        size_t wl = unhex(dh, want), ne = (size_t)cJSON_GetArraySize(jids), gl = 0;
        int32_t *ids = malloc(sizeof *ids * (ne + 1));
        for (size_t i = 0; i < ne; i++) ids[i] = (int32_t)cJSON_GetArrayItem(jids, (int)i)->valueint;
        char *got = decode(tok, ids, ne, &gl);
        int same = got && gl == wl && !memcmp(got, want, wl);
        CHECK(same, "%s decode case %d: %zu bytes, expected %zu", name, n, gl, wl);
        check_stream(tok, ids, ne, (const char *)want, wl);
        n_ok += same;
        n++;
        free(got);
        free(ids);
        free(want);
    }
    CHECK(n >= 10, "%s: only %d decode cases", name, n);
    fprintf(stderr, "goldens %s: %d/%d decode cases match\n", name, n_ok, n);
}

static void test_goldens(void) {
    char path[1024];
    char *js = tu_read_file(tu_source_path("tests/golden/tokenizer/cases.json", path, sizeof path), NULL);
    CHECK(js != NULL, "cannot read %s", path);
    if (!js) return;
    cJSON *root = cJSON_Parse(js);
    free(js);
    CHECK(root != NULL, "cases.json is not JSON");
    const cJSON *sets = cJSON_GetObjectItem(root, "tokenizers"), *set;
    int n_sets = 0;
    cJSON_ArrayForEach(set, sets) {
        char tp[1024], rel[256];
        snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.json", set->string);
        ms6_tokenizer *tok;
        ms6_error err;
        ms6_status st = ms6_tokenizer_load(tu_source_path(rel, tp, sizeof tp), &tok, &err);
        CHECK(st == MS6_STATUS_OK, "load %s: %s", tp, err.message);
        if (st != MS6_STATUS_OK) continue;
        run_golden_set(tok, set->string, set);
        run_decode_set(tok, set->string, cJSON_GetObjectItem(cJSON_GetObjectItem(root, "decode"), set->string));
        ms6_tokenizer_free(tok);
        n_sets++;
    }
    CHECK(n_sets == 3, "expected 3 golden tokenizers, found %d", n_sets);
    cJSON_Delete(root);
}

/* ../shared/data/gpt-neox-20b: inputs separated by "\n__ggml_vocab_test__\n",
 * one output line of ids per input. */
static void test_neox(tu_rng *rng) {
    const char *dir = MS6_SOURCE_DIR "/../shared/data/gpt-neox-20b";
    char p_tok[1024], p_inp[1024], p_out[1024];
    snprintf(p_tok, sizeof p_tok, "%s/tokenizer.json", dir);
    snprintf(p_inp, sizeof p_inp, "%s/cases.inp", dir);
    snprintf(p_out, sizeof p_out, "%s/cases.out", dir);
    if (access(p_tok, R_OK) || access(p_inp, R_OK) || access(p_out, R_OK)) {
        fprintf(stderr, "SKIP GPT-NeoX reference cases: %s not present\n", dir);
        return;
    }
    ms6_tokenizer *tok;
    ms6_error err;
    ms6_status st = ms6_tokenizer_load(p_tok, &tok, &err);
    CHECK(st == MS6_STATUS_OK, "load %s: %s", p_tok, err.message);
    if (st != MS6_STATUS_OK) return;
    CHECK(ms6_tokenizer_vocab_size(tok) == 50277, "vocab size %lld", (long long)ms6_tokenizer_vocab_size(tok));
    size_t li, lo;
    char *inp = tu_read_file(p_inp, &li), *out = tu_read_file(p_out, &lo);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *pi = inp, *po = out;
    int n = 0, n_ok = 0;
    for (;;) {
        char *e = strstr(pi, sep);
        char *eo = strchr(po, '\n');
        if (!e || !eo) break;
        *eo = 0;
        int32_t want[4096];
        size_t ne = 0;
        for (char *q = po, *end; ne < 4096; q = end) {
            long v = strtol(q, &end, 10);
            if (end == q) break;
            want[ne++] = (int32_t)v;
        }
        size_t ng;
        int32_t *got = encode(tok, pi, (size_t)(e - pi), &ng);
        int same = got && ng == ne && !memcmp(got, want, sizeof *want * ne);
        CHECK(same, "GPT-NeoX case %d '%.*s': got %zu ids, expected %zu", n, (int)(e - pi > 40 ? 40 : e - pi), pi, ng,
              ne);
        /* decode gives back the (NFC, valid) input */
        size_t dl;
        char *d = decode(tok, want, ne, &dl);
        int round = d && dl == (size_t)(e - pi) && !memcmp(d, pi, dl);
        CHECK(round, "GPT-NeoX case %d does not decode back to its text", n);
        check_stream(tok, want, ne, d ? d : "", d ? dl : 0);
        n_ok += same && round;
        n++;
        free(d);
        free(got);
        pi = e + strlen(sep);
        po = eo + 1;
    }
    fprintf(stderr, "GPT-NeoX reference cases: %d/%d match\n", n_ok, n);
    CHECK(n >= 46, "only %d reference cases read", n);

    /* streaming on random ids of the real vocabulary (many split characters) */
    for (int r = 0; r < 200; r++) {
        int32_t ids[32];
        size_t k = 1 + tu_next(rng) % 32, dl;
        for (size_t i = 0; i < k; i++) ids[i] = (int32_t)(tu_next(rng) % 50277);
        char *d = decode(tok, ids, k, &dl);
        if (d) check_stream(tok, ids, k, d, dl);
        free(d);
    }
    free(inp);
    free(out);
    ms6_tokenizer_free(tok);
}

/* Random bytes never fail; the output decodes to valid UTF-8; random ASCII
 * text (no special-token syntax) round-trips exactly. */
static void test_random(ms6_tokenizer *tok, tu_rng *rng) {
    for (int r = 0; r < 300; r++) {
        size_t n = tu_next(rng) % 200;
        char s[200];
        int ascii = r % 2;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = tu_next(rng);
            s[i] = (char)(ascii ? (x % 4 == 0 ? (uint64_t)" \t\n'"[x >> 8 & 3] : 32 + (x >> 16) % 95) : x >> 24);
            if (ascii && s[i] == '<') s[i] = '(';
        }
        size_t k, dl;
        int32_t *ids = encode(tok, s, n, &k);
        CHECK(ids != NULL, "random input %d failed", r);
        if (!ids) continue;
        char *d = decode(tok, ids, k, &dl);
        CHECK(d != NULL, "decode of random input %d failed", r);
        if (ascii) CHECK(d && dl == n && !memcmp(d, s, n), "ASCII input %d does not round-trip", r);
        if (d) check_stream(tok, ids, k, d, dl);
        free(d);
        free(ids);
    }
    /* NFC expansion: U+1D160 (4 bytes) becomes three characters, 12 bytes;
     * ids never exceed 3 * len for a tokenizer without a prefix space */
    const char *grow[] = {"\xf0\x9d\x85\xa0", "\xcd\x84", "\xe0\xbd\xb6", "\xe0\xa5\x98"};
    for (int r = 0; r < 50; r++) {
        char s[256];
        size_t n = 0;
        while (n < 200) {
            const char *g = tu_next(rng) % 3 ? grow[tu_next(rng) % 4] : "a";
            memcpy(s + n, g, strlen(g));
            n += strlen(g);
        }
        size_t k;
        int32_t *ids = encode(tok, s, n, &k);
        CHECK(ids && k <= 3 * n && k > n / 2, "NFC-expanding text: %zu bytes gave %zu ids", n, k);
        free(ids);
    }
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void expect_load_error(const char *json, ms6_status want, const char *needle) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/ms6_tok_bad_%d.json", (int)getpid());
    write_file(path, json);
    ms6_tokenizer *tok = (ms6_tokenizer *)1;
    ms6_error err;
    ms6_status st = ms6_tokenizer_load(path, &tok, &err);
    CHECK(st == want && tok == NULL, "status %d (want %d) for %.60s: %s", (int)st, (int)want, json, err.message);
    CHECK(strstr(err.message, needle) != NULL && strstr(err.message, path) != NULL,
          "message '%s' should name the file and say '%s'", err.message, needle);
    if (st == MS6_STATUS_OK) ms6_tokenizer_free(tok);
    unlink(path);
}

#define BL_TAIL                                                                                                    \
    "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false}, \"decoder\": {\"type\": \"ByteLevel\"}}"

static void test_bad_input(ms6_tokenizer *tok, tu_rng *rng) {
    ms6_tokenizer *t = (ms6_tokenizer *)1;
    ms6_error err;
    CHECK(ms6_tokenizer_load("/nonexistent/tokenizer.json", &t, &err) == MS6_STATUS_IO_ERROR && t == NULL,
          "missing file: %s", err.message);
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", MS6_STATUS_FORMAT_ERROR, "invalid JSON");
    expect_load_error("[1, 2]", MS6_STATUS_FORMAT_ERROR, "not a JSON object");
    expect_load_error("{}", MS6_STATUS_FORMAT_ERROR, "model");
    expect_load_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", MS6_STATUS_UNSUPPORTED,
                      "unknown model type 'WordPiece'");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                      "\"merges\": [\"a c\"]}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "merges[0] names unknown token 'c'");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                      "\"merges\": [\"a b\", [\"b\", \"x\"]]}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "merges[1] names unknown token 'x'");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                      "\"merges\": [\"a b\"]}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "merged token 'ab' is not in the vocabulary");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "not a token id");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b c\"]}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "merges[0] is not");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                      "\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"decoder\": {\"type\": \"ByteLevel\"}}",
                      MS6_STATUS_UNSUPPORTED, "pre_tokenizer 'Whitespace'");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                      "\"added_tokens\": [{\"id\": 1}], " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "added_tokens[0]");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "vocabulary is empty");

    /* truncations of a valid file never crash */
    char path[1024];
    size_t len;
    char *good = tu_read_file(tu_source_path("tests/golden/tokenizer/neox_like.json", path, sizeof path), &len);
    CHECK(good != NULL, "read %s", path);
    if (good) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "/tmp/ms6_tok_trunc_%d.json", (int)getpid());
        for (size_t cut = 0; cut < len; cut += len / 7 + 1) {
            FILE *f = fopen(tmp, "wb");
            fwrite(good, 1, cut, f);
            fclose(f);
            ms6_status st = ms6_tokenizer_load(tmp, &t, &err);
            CHECK(st == MS6_STATUS_FORMAT_ERROR && t == NULL, "truncated at %zu: status %d", cut, (int)st);
        }
        unlink(tmp);
        free(good);
    }

    /* random byte mutations of a valid file: an error or a working tokenizer */
    good = tu_read_file(path, &len);
    if (good) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "/tmp/ms6_tok_mut_%d.json", (int)getpid());
        static const char alphabet[] = "\"{}[],:0123456789-. aZ\\u";
        int n_ok = 0;
        for (int r = 0; r < 150; r++) {
            char *m = malloc(len);
            memcpy(m, good, len);
            int k = 1 + (int)(tu_next(rng) % 4);
            for (int i = 0; i < k; i++) m[tu_next(rng) % len] = alphabet[tu_next(rng) % (sizeof alphabet - 1)];
            FILE *f = fopen(tmp, "wb");
            fwrite(m, 1, len, f);
            fclose(f);
            free(m);
            ms6_status st = ms6_tokenizer_load(tmp, &t, &err);
            CHECK((st == MS6_STATUS_OK) == (t != NULL), "mutation %d: status %d", r, (int)st);
            if (st != MS6_STATUS_OK) {
                CHECK(err.message[0] != 0, "mutation %d: empty message", r);
                continue;
            }
            n_ok++;
            const char *txt = "Hello, world!  <|endoftext|> caf\xc3\xa9 \xff 123";
            size_t ni, dl2;
            int32_t ids2[256];
            char out[1024];
            if (ms6_tokenizer_encode(t, txt, strlen(txt), ids2, 256, &ni) == MS6_STATUS_OK)
                ms6_tokenizer_decode(t, ids2, ni, out, sizeof out, &dl2);
            ms6_tokenizer_free(t);
        }
        fprintf(stderr, "mutated tokenizer.json: %d of 150 still load\n", n_ok);
        unlink(tmp);
        free(good);
    }
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2000000000}, \"merges\": []}, " BL_TAIL,
                      MS6_STATUS_FORMAT_ERROR, "sparse");

    /* decode: out-of-range ids */
    int32_t bad_ids[3] = {5, (int32_t)ms6_tokenizer_vocab_size(tok), 7};
    size_t dl = 99;
    char buf[64];
    CHECK(ms6_tokenizer_decode(tok, bad_ids, 3, buf, sizeof buf, &dl) == MS6_STATUS_OUT_OF_RANGE,
          "id = vocab size must be out of range");
    CHECK(strstr(ms6_tokenizer_last_error(tok), "position 1") != NULL, "message: %s", ms6_tokenizer_last_error(tok));
    bad_ids[1] = -1;
    CHECK(ms6_tokenizer_decode(tok, bad_ids, 3, buf, sizeof buf, &dl) == MS6_STATUS_OUT_OF_RANGE, "id -1");
    ms6_decoder *dec;
    ms6_decoder_create(tok, &dec, &err);
    const char *tx;
    size_t tl;
    CHECK(ms6_decoder_push(dec, 1 << 30, &tx, &tl) == MS6_STATUS_OUT_OF_RANGE && tl == 0, "decoder: bad id");
    CHECK(ms6_decoder_push(dec, -5, &tx, &tl) == MS6_STATUS_OUT_OF_RANGE, "decoder: negative id");
    ms6_decoder_free(dec);

    /* buffers too small report the size needed */
    const char *hello = "Hello, world! Hello, world!";
    size_t n_ids, need;
    int32_t ids[64];
    CHECK(ms6_tokenizer_encode(tok, hello, strlen(hello), ids, 64, &need) == MS6_STATUS_OK, "encode");
    CHECK(need > 2 && ms6_tokenizer_encode(tok, hello, strlen(hello), ids, 2, &n_ids) == MS6_STATUS_BUFFER_TOO_SMALL &&
              n_ids == need,
          "short id buffer: %zu vs %zu", n_ids, need);
    CHECK(ms6_tokenizer_decode(tok, ids, need, buf, 5, &dl) == MS6_STATUS_BUFFER_TOO_SMALL && dl == strlen(hello),
          "short text buffer: %zu", dl);
    CHECK(ms6_tokenizer_decode(tok, ids, need, buf, dl, &dl) == MS6_STATUS_OK && !memcmp(buf, hello, dl),
          "exact text buffer");
    CHECK(ms6_tokenizer_encode(tok, NULL, 3, ids, 64, &n_ids) == MS6_STATUS_INVALID_ARGUMENT, "NULL text");
    CHECK(ms6_tokenizer_encode(tok, "", 0, NULL, 0, &n_ids) == MS6_STATUS_OK && n_ids == 0, "empty text");
}

int main(void) {
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("test_tokenizer"));
    test_goldens();
    test_neox(&rng);
    char path[1024];
    ms6_tokenizer *tok;
    ms6_error err;
    if (ms6_tokenizer_load(tu_source_path("tests/golden/tokenizer/neox_like.json", path, sizeof path), &tok, &err) ==
        MS6_STATUS_OK) {
        test_random(tok, &rng);
        test_bad_input(tok, &rng);
        ms6_tokenizer_free(tok);
    } else {
        CHECK(0, "load %s: %s", path, err.message);
    }
    return tu_finish("test_tokenizer");
}
