/*
 * test_safetensors.c - the safetensors reader (src/io/safetensors.c).
 *
 * Writes safetensors files here, byte by byte, with fresh random tensors in
 * F32, F16 and BF16 (single file, and shards + model.safetensors.index.json),
 * reads them back and compares every element with what was written. Then
 * each kind of bad input on its own: missing directory or file, truncated
 * file, header length past the end, offsets past the end, overlapping
 * tensors, shape/size overflow, unknown dtype, unsupported dtype, malformed
 * JSON, a tensor missing from its shard. Each must fail with a message that
 * names the file (and the tensor where there is one), never crash.
 */
#include "io/io_internal.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

/* Writes u64 header length + header + data. */
static void write_raw(const char *path, const char *header, uint64_t hlen, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(&hlen, 8, 1, f);
    fwrite(header, 1, strlen(header), f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void write_hdr(const char *path, const char *header, size_t data_bytes) {
    unsigned char *d = calloc(data_bytes ? data_bytes : 1, 1);
    write_raw(path, header, strlen(header), d, data_bytes);
    free(d);
}

typedef struct {
    char name[32];
    ms6_dtype dt;
    int64_t shape[3];
    int nd;
    float *v;   /* values after rounding to dt */
    int64_t n;
} wt;

static const char *dname(ms6_dtype d) { return d == MS6_DTYPE_F16 ? "F16" : d == MS6_DTYPE_BF16 ? "BF16" : "F32"; }

static void write_tensors(const char *path, wt *t, int n) {
    cJSON *h = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", dname(t[i].dt));
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < t[i].nd; k++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)t[i].shape[k]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += (size_t)t[i].n * ms6_dtype_size(t[i].dt);
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    unsigned char *data = malloc(off ? off : 1), *p = data;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < t[i].n; j++) {
            if (t[i].dt == MS6_DTYPE_F32) {
                memcpy(p, &t[i].v[j], 4);
                p += 4;
            } else {
                uint16_t b = t[i].dt == MS6_DTYPE_F16 ? ms6_f32_to_f16(t[i].v[j]) : ms6_f32_to_bf16(t[i].v[j]);
                memcpy(p, &b, 2);
                p += 2;
            }
        }
    /* no padding: data offsets land on odd addresses, which the reader must accept */
    write_raw(path, js, strlen(js), data, off);
    free(js);
    free(data);
}

static void make_random(wt *t, int n, tu_rng *r) {
    for (int i = 0; i < n; i++) {
        snprintf(t[i].name, sizeof t[i].name, "layer.%d.w", i);
        t[i].dt = (ms6_dtype)(i % 3);
        t[i].nd = 1 + i % 3;
        t[i].n = 1;
        for (int k = 0; k < t[i].nd; k++) {
            t[i].shape[k] = 1 + (int64_t)(tu_next(r) % 7);
            t[i].n *= t[i].shape[k];
        }
        t[i].v = malloc(sizeof(float) * (size_t)t[i].n);
        for (int64_t j = 0; j < t[i].n; j++) {
            float x = (float)tu_normal(r);
            t[i].v[j] = t[i].dt == MS6_DTYPE_F16 ? ms6_f16_to_f32(ms6_f32_to_f16(x))
                      : t[i].dt == MS6_DTYPE_BF16 ? ms6_bf16_to_f32(ms6_f32_to_bf16(x)) : x;
        }
    }
}

static void check_read_back(const ms6_st *st, const wt *t, int n, const char *what) {
    CHECK(st->n_tensors == n, "%s: %lld tensors, expected %d", what, (long long)st->n_tensors, n);
    for (int i = 0; i < n; i++) {
        const ms6_st_tensor *x = ms6_st_find(st, t[i].name);
        CHECK(x != NULL, "%s: tensor %s not found", what, t[i].name);
        if (!x) continue;
        CHECK(x->supported && x->dtype == t[i].dt && x->n_dims == t[i].nd && x->n_elements == t[i].n, "%s: %s metadata",
              what, t[i].name);
        int bad = 0;
        for (int k = 0; k < t[i].nd; k++) bad |= x->shape[k] != t[i].shape[k];
        for (int64_t j = 0; j < t[i].n && !bad; j++) {
            float v;
            if (x->dtype == MS6_DTYPE_F32) {
                memcpy(&v, (const char *)x->data + 4 * j, 4);
            } else {
                uint16_t b;
                memcpy(&b, (const char *)x->data + 2 * j, 2);
                v = x->dtype == MS6_DTYPE_F16 ? ms6_f16_to_f32(b) : ms6_bf16_to_f32(b);
            }
            bad |= v != t[i].v[j];
        }
        CHECK(!bad, "%s: %s values differ", what, t[i].name);
    }
    CHECK(ms6_st_find(st, "nope") == NULL, "%s: found a tensor that does not exist", what);
}

/* Expects failure with status `want` and every needle in the message. */
static void expect_fail(ms6_status got, ms6_status want, const char *msg, const char *case_name, const char *n1,
                        const char *n2) {
    CHECK(got == want, "%s: status %d (%s), expected %d; message: %s", case_name, (int)got, ms6_status_string(got),
          (int)want, msg);
    CHECK(!n1 || strstr(msg, n1), "%s: message '%s' does not name '%s'", case_name, msg, n1);
    CHECK(!n2 || strstr(msg, n2), "%s: message '%s' does not name '%s'", case_name, msg, n2);
}

static void bad_header(const char *case_name, const char *header, size_t data_bytes, const char *needle) {
    char p[512], msg[MS6_ERRMSG_SIZE] = "";
    path_of(p, sizeof p, "bad.safetensors");
    write_hdr(p, header, data_bytes);
    ms6_st *st = NULL;
    ms6_status s = ms6_st_open_file(p, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, case_name, "bad.safetensors", needle);
    CHECK(st == NULL, "%s: out not NULL on failure", case_name);
    ms6_st_close(st);
}

int main(void) {
    tu_rng r;
    tu_rng_init(&r, tu_seed("test_safetensors"));
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms6_test_st_%d", (int)getpid());
    mkdir(tmpdir, 0755);
    char p[512], msg[MS6_ERRMSG_SIZE];
    enum { NT = 9 };
    wt t[NT];
    make_random(t, NT, &r);

    /* single file, all three dtypes, through open_dir */
    path_of(p, sizeof p, "model.safetensors");
    write_tensors(p, t, NT);
    ms6_st *st = NULL;
    ms6_status s = ms6_st_open_dir(tmpdir, &st, msg);
    CHECK(s == MS6_STATUS_OK, "open single: %s", msg);
    if (st) check_read_back(st, t, NT, "single");
    ms6_st_close(st);
    remove(p);

    /* shards + index */
    path_of(p, sizeof p, "model-00001-of-00002.safetensors");
    write_tensors(p, t, 4);
    path_of(p, sizeof p, "model-00002-of-00002.safetensors");
    write_tensors(p, t + 4, NT - 4);
    cJSON *idx = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(idx, "weight_map");
    for (int i = 0; i < NT; i++)
        cJSON_AddStringToObject(wm, t[i].name, i < 4 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
    char *js = cJSON_Print(idx);
    path_of(p, sizeof p, "model.safetensors.index.json");
    FILE *f = fopen(p, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    CHECK(s == MS6_STATUS_OK, "open shards: %s", msg);
    if (st) {
        check_read_back(st, t, NT, "shards");
        CHECK(st->n_files == 2, "shards: %d files", st->n_files);
    }
    ms6_st_close(st);
    /* a tensor the index places in shard 2 is not there */
    cJSON_AddStringToObject(wm, "ghost.weight", "model-00002-of-00002.safetensors");
    js = cJSON_Print(idx);
    f = fopen(p, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, "index: missing tensor", "ghost.weight", "model-00002-of-00002");
    /* a shard the index names does not exist */
    cJSON_ReplaceItemInObject(wm, "ghost.weight", cJSON_CreateString("model-00003-of-00002.safetensors"));
    js = cJSON_Print(idx);
    f = fopen(p, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_IO_ERROR, msg, "index: missing shard", "model-00003-of-00002.safetensors", NULL);
    /* path traversal in a shard name */
    cJSON_ReplaceItemInObject(wm, "ghost.weight", cJSON_CreateString("../etc/passwd"));
    js = cJSON_Print(idx);
    f = fopen(p, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, "index: shard outside dir", "ghost.weight", "index.json");
    cJSON_Delete(idx);
    /* malformed index JSON */
    f = fopen(p, "w");
    fputs("{\"weight_map\": {", f);
    fclose(f);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, "index: bad JSON", "model.safetensors.index.json", NULL);
    remove(p);
    path_of(p, sizeof p, "model-00001-of-00002.safetensors");
    remove(p);
    path_of(p, sizeof p, "model-00002-of-00002.safetensors");
    remove(p);

    /* missing directory, no checkpoint in a directory, missing file */
    s = ms6_st_open_dir("/nonexistent/ms6-model", &st, msg);
    expect_fail(s, MS6_STATUS_IO_ERROR, msg, "missing directory", "/nonexistent/ms6-model", NULL);
    s = ms6_st_open_dir(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_IO_ERROR, msg, "empty directory", tmpdir, "model.safetensors");
    path_of(p, sizeof p, "absent.safetensors");
    s = ms6_st_open_file(p, &st, msg);
    expect_fail(s, MS6_STATUS_IO_ERROR, msg, "missing file", "absent.safetensors", NULL);

    /* truncated file: a good file cut at several points */
    path_of(p, sizeof p, "good.safetensors");
    write_tensors(p, t, NT);
    struct stat sb;
    stat(p, &sb);
    f = fopen(p, "rb");
    unsigned char *whole = malloc((size_t)sb.st_size);
    CHECK(fread(whole, 1, (size_t)sb.st_size, f) == (size_t)sb.st_size, "read back");
    fclose(f);
    const size_t cuts[] = {0, 3, 8, 20, (size_t)sb.st_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char q[512];
        path_of(q, sizeof q, "cut.safetensors");
        f = fopen(q, "wb");
        fwrite(whole, 1, cuts[i], f);
        fclose(f);
        s = ms6_st_open_file(q, &st, msg);
        char cn[64];
        snprintf(cn, sizeof cn, "truncated at %zu", cuts[i]);
        expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, cn, "cut.safetensors", NULL);
    }
    /* the parser on memory: every prefix of a good file fails cleanly, the whole one passes */
    for (size_t n = 0; n < (size_t)sb.st_size; n += 7) {
        s = ms6_st_parse(whole, n, "mem", &st, msg);
        CHECK(s != MS6_STATUS_OK && st == NULL, "prefix %zu accepted", n);
    }
    s = ms6_st_parse(whole, (size_t)sb.st_size, "mem", &st, msg);
    CHECK(s == MS6_STATUS_OK, "whole file from memory: %s", msg);
    ms6_st_close(st);
    free(whole);

    /* header length past the end */
    path_of(p, sizeof p, "bad.safetensors");
    write_raw(p, "{}", 1000, NULL, 0);
    s = ms6_st_open_file(p, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, "header length past the end", "bad.safetensors", "header length 1000");
    write_raw(p, "{}", UINT64_MAX, NULL, 0);
    s = ms6_st_open_file(p, &st, msg);
    expect_fail(s, MS6_STATUS_FORMAT_ERROR, msg, "header length 2^64-1", "bad.safetensors", "header length");

    bad_header("offsets past the end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
               "'w'");
    bad_header("offsets way past the end",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1000000000000,1000000000004]}}", 16, "'w'");
    bad_header("offsets backwards", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, "'w'");
    bad_header("overlapping tensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]}}", 16, "overlap");
    bad_header("shape x dtype != span", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
               "'w'");
    bad_header("shape overflow",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,8]}}", 16, "'w'");
    bad_header("size overflow",
               "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952,2],\"data_offsets\":[0,8]}}", 16, "'w'");
    bad_header("negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 16, "'w'");
    bad_header("fractional dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 16, "'w'");
    bad_header("unknown dtype", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "Q7");
    bad_header("malformed JSON", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],", 16, "JSON");
    bad_header("not an object", "[1,2,3]", 16, "object");
    bad_header("entry not an object", "{\"w\":7}", 16, "'w'");
    bad_header("no dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "dtype");
    bad_header("no offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 16, "data_offsets");
    bad_header("too many dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 16,
               "'w'");
    bad_header("duplicate names",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 16, "'w'");

    /* a known dtype that the model cannot use is read, flagged unsupported */
    path_of(p, sizeof p, "i64.safetensors");
    write_hdr(p, "{\"__metadata__\":{\"format\":\"pt\"},\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                 "\"e\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[16,16]}}", 16);
    s = ms6_st_open_file(p, &st, msg);
    CHECK(s == MS6_STATUS_OK, "I64 file: %s", msg);
    if (st) {
        const ms6_st_tensor *x = ms6_st_find(st, "ids");
        CHECK(x && !x->supported && !strcmp(x->st_dtype, "I64"), "I64 tensor flagged");
        x = ms6_st_find(st, "e");
        CHECK(x && x->n_elements == 0 && x->nbytes == 0, "empty tensor");
    }
    ms6_st_close(st);

    /* a directory given as a file */
    s = ms6_st_open_file(tmpdir, &st, msg);
    expect_fail(s, MS6_STATUS_IO_ERROR, msg, "directory as file", tmpdir, NULL);

    for (int i = 0; i < NT; i++) free(t[i].v);
    const char *names[] = {"good.safetensors", "cut.safetensors", "bad.safetensors", "i64.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_of(p, sizeof p, names[i]);
        remove(p);
    }
    rmdir(tmpdir);
    return tu_finish("test_safetensors");
}
