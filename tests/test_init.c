/* The safetensors writer and the random-init model writer: random tensor
 * sets (dtypes, ranks, shapes including zero-size ones, chunked writes of
 * random sizes) round-trip through the safetensors reader bit for bit; bad
 * writer use fails with a message and leaves no file; an init model of a
 * small random shape loads, has the state-spaces tensor set and shapes,
 * the requested dtype, deterministic bytes per seed, and O(1) finite
 * logits. */
#include "io/io_internal.h"
#include "io/st_write.h"
#include "model/init.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tu_rng R;
static char dir[256];

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

static void test_roundtrip(int trial) {
    char path[300];
    snprintf(path, sizeof path, "%s/rt%d.safetensors", dir, trial);
    int64_t n = 1 + (int64_t)(tu_next(&R) % 12);
    ms6_stw_tensor *t = calloc((size_t)n, sizeof *t);
    char (*names)[32] = calloc((size_t)n, 32);
    void **data = calloc((size_t)n, sizeof(void *));
    size_t *bytes = calloc((size_t)n, sizeof(size_t));
    for (int64_t i = 0; i < n; i++) {
        snprintf(names[i], 32, "t%lld.w%llu", (long long)i, (unsigned long long)(tu_next(&R) % 1000));
        t[i].name = names[i];
        t[i].dtype = (ms6_dtype)(tu_next(&R) % 3);
        t[i].n_dims = (int)(tu_next(&R) % 4);
        for (int d = 0; d < t[i].n_dims; d++) t[i].shape[d] = (int64_t)(tu_next(&R) % 9); /* 0 allowed */
        int ok;
        bytes[i] = ms6_stw_tensor_bytes(&t[i], &ok);
        CHECK(ok, "tensor_bytes failed");
        data[i] = malloc(bytes[i] + 1);
        for (size_t b = 0; b < bytes[i]; b++) ((unsigned char *)data[i])[b] = (unsigned char)tu_next(&R);
    }
    /* write in chunks of random size that cross tensor boundaries */
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) total += bytes[i];
    unsigned char *all = malloc(total + 1);
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        memcpy(all + off, data[i], bytes[i]);
        off += bytes[i];
    }
    char msg[MS6_ERRMSG_SIZE] = "";
    ms6_stw *w;
    ms6_status st = ms6_stw_open(path, t, n, &w, msg);
    CHECK(st == MS6_STATUS_OK, "open: %s", msg);
    if (st == MS6_STATUS_OK) {
        for (off = 0; off < total && st == MS6_STATUS_OK;) {
            size_t k = 1 + tu_next(&R) % 97;
            if (k > total - off) k = total - off;
            st = ms6_stw_write(w, all + off, k, msg);
            off += k;
        }
        CHECK(st == MS6_STATUS_OK, "write: %s", msg);
        CHECK(ms6_stw_current(w) == n, "current %lld != %lld", (long long)ms6_stw_current(w), (long long)n);
        st = ms6_stw_close(w, msg);
        CHECK(st == MS6_STATUS_OK, "close: %s", msg);
    }
    ms6_st *rd = NULL;
    st = ms6_st_open_file(path, &rd, msg);
    CHECK(st == MS6_STATUS_OK, "reader refused the file: %s", msg);
    if (rd) {
        CHECK(rd->n_tensors == n, "reader sees %lld tensors, wrote %lld", (long long)rd->n_tensors, (long long)n);
        CHECK(rd->files[0].data_offset % 8 == 0, "data section at %zu, not 8-aligned", rd->files[0].data_offset);
        for (int64_t i = 0; i < n; i++) {
            const ms6_st_tensor *r = ms6_st_find(rd, names[i]);
            CHECK(r != NULL, "tensor %s missing", names[i]);
            if (!r) continue;
            CHECK(r->dtype == t[i].dtype && r->n_dims == t[i].n_dims, "%s: dtype/rank differ", names[i]);
            for (int d = 0; d < t[i].n_dims && d < r->n_dims; d++)
                CHECK(r->shape[d] == t[i].shape[d], "%s: dim %d %lld != %lld", names[i], d,
                      (long long)r->shape[d], (long long)t[i].shape[d]);
            CHECK(r->nbytes == bytes[i] && (bytes[i] == 0 || !memcmp(r->data, data[i], bytes[i])),
                  "%s: data differs", names[i]);
        }
        ms6_st_close(rd);
    }
    remove(path);
    for (int64_t i = 0; i < n; i++) free(data[i]);
    free(all); free(data); free(bytes); free(names); free(t);
}

static void test_writer_errors(void) {
    char path[300], msg[MS6_ERRMSG_SIZE];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    ms6_stw_tensor t[2] = {{"a", MS6_DTYPE_F32, 1, {3}}, {"a", MS6_DTYPE_F16, 1, {2}}};
    ms6_stw *w = (ms6_stw *)0x1;
    msg[0] = 0;
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT && w == NULL, "duplicate name accepted");
    CHECK(strstr(msg, "'a'") != NULL, "duplicate: message '%s'", msg);
    CHECK(!file_exists(path), "file left behind");
    t[1].name = "";
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT, "empty name accepted");
    t[1].name = "b";
    t[1].dtype = (ms6_dtype)7;
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT, "bad dtype accepted");
    CHECK(strstr(msg, "'b'") != NULL, "bad dtype: message '%s'", msg);
    t[1].dtype = MS6_DTYPE_F16;
    t[1].n_dims = 3;
    t[1].shape[0] = t[1].shape[1] = t[1].shape[2] = (int64_t)1 << 40; /* overflows size_t */
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT, "overflowing shape accepted");
    t[1].shape[0] = -1;
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT, "negative dim accepted");
    t[1].n_dims = 1;
    t[1].shape[0] = 2;
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    CHECK(ms6_stw_open(nodir, t, 2, &w, msg) == MS6_STATUS_IO_ERROR, "unwritable path accepted");
    CHECK(strstr(msg, nodir) != NULL, "io error: message does not name the file: '%s'", msg);
    CHECK(ms6_stw_open(NULL, t, 2, &w, msg) == MS6_STATUS_INVALID_ARGUMENT, "NULL path accepted");
    CHECK(ms6_stw_open(path, t, 2, NULL, msg) == MS6_STATUS_INVALID_ARGUMENT, "NULL out accepted");

    /* too much data, then too little */
    float buf[8] = {0};
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_OK, "open: %s", msg);
    CHECK(ms6_stw_write(w, buf, 12 + 4 + 1, msg) == MS6_STATUS_INVALID_ARGUMENT, "write past the end accepted");
    ms6_stw_abort(w);
    CHECK(!file_exists(path), "abort left the file");
    CHECK(ms6_stw_open(path, t, 2, &w, msg) == MS6_STATUS_OK, "open: %s", msg);
    CHECK(ms6_stw_write(w, buf, 12, msg) == MS6_STATUS_OK, "write: %s", msg);
    CHECK(ms6_stw_close(w, msg) == MS6_STATUS_INVALID_ARGUMENT, "close with a missing tensor accepted");
    CHECK(strstr(msg, "incomplete") != NULL, "incomplete: message '%s'", msg);
    CHECK(!file_exists(path), "incomplete file left behind");
    CHECK(ms6_stw_close(NULL, msg) == MS6_STATUS_INVALID_ARGUMENT, "close(NULL)");
    ms6_stw_abort(NULL);
}

static void read_all(const char *p, unsigned char **buf, size_t *len) {
    *len = 0;
    *buf = (unsigned char *)tu_read_file(p, len);
}

static void test_init_model(void) {
    ms6_init_shape s;
    CHECK(ms6_init_shape_lookup("2.8b", &s) == MS6_STATUS_OK && s.d_model == 2560 && s.n_layer == 64 &&
              s.dt_rank == 160 && s.vocab_size == 50280,
          "2.8b shape wrong");
    CHECK(ms6_init_shape_lookup("7b", &s) == MS6_STATUS_INVALID_ARGUMENT, "unknown shape accepted");
    CHECK(ms6_init_shape_lookup("130m", &s) == MS6_STATUS_OK && s.d_model == 768 && s.n_layer == 24, "130m wrong");

    /* a small random shape */
    memset(&s, 0, sizeof s);
    s.d_model = 16 + 8 * (int64_t)(tu_next(&R) % 5);
    s.n_layer = 1 + (int64_t)(tu_next(&R) % 3);
    s.vocab_size = 50 + (int64_t)(tu_next(&R) % 200);
    s.d_state = 1 + (int64_t)(tu_next(&R) % 32);
    s.d_conv = 2 + (int64_t)(tu_next(&R) % 3);
    s.expand = 2;
    s.use_conv_bias = (int)(tu_next(&R) % 2);
    s.use_bias = (int)(tu_next(&R) % 2);
    ms6_dtype dt = (ms6_dtype)(tu_next(&R) % 3);
    uint64_t seed = tu_next(&R);
    char mdir[300], mdir2[300], msg[MS6_ERRMSG_SIZE] = "";
    snprintf(mdir, sizeof mdir, "%s/model", dir);
    snprintf(mdir2, sizeof mdir2, "%s/model2", dir);
    ms6_init_stats stats;
    ms6_status st = ms6_model_init_write(mdir, &s, dt, seed, &stats, msg);
    CHECK(st == MS6_STATUS_OK, "init: %s", msg);
    CHECK(ms6_model_init_write(mdir2, &s, dt, seed, NULL, msg) == MS6_STATUS_OK, "init 2: %s", msg);
    if (st != MS6_STATUS_OK) return;
    int64_t d = s.d_model, di = 2 * d, R_ = (d + 15) / 16, N = s.d_state, K = s.d_conv;
    int64_t per_layer = di * N + di + di * K + di + di * R_ + 2 * di * d + d * di + (R_ + 2 * N) * di + d +
                        (s.use_conv_bias ? di : 0) + (s.use_bias ? 2 * di + d : 0);
    int64_t want = s.vocab_size * d + s.n_layer * per_layer + d;
    CHECK(stats.n_params == want, "n_params %lld, expected %lld", (long long)stats.n_params, (long long)want);

    char p1[340], p2[340];
    snprintf(p1, sizeof p1, "%s/model.safetensors", mdir);
    snprintf(p2, sizeof p2, "%s/model.safetensors", mdir2);
    unsigned char *a, *b;
    size_t la, lb;
    read_all(p1, &a, &la);
    read_all(p2, &b, &lb);
    CHECK(la > 0 && la == lb && !memcmp(a, b, la), "same seed, different bytes");
    free(a);
    free(b);

    ms6_st *rd = NULL;
    CHECK(ms6_st_open_file(p1, &rd, msg) == MS6_STATUS_OK, "reader: %s", msg);
    if (rd) {
        const ms6_st_tensor *A = ms6_st_find(rd, "backbone.layers.0.mixer.A_log");
        const ms6_st_tensor *cw = ms6_st_find(rd, "backbone.layers.0.mixer.conv1d.weight");
        const ms6_st_tensor *xp = ms6_st_find(rd, "backbone.layers.0.mixer.x_proj.weight");
        const ms6_st_tensor *db = ms6_st_find(rd, "backbone.layers.0.mixer.dt_proj.bias");
        CHECK(A && A->dtype == dt && A->shape[0] == di && A->shape[1] == N, "A_log shape/dtype");
        CHECK(cw && cw->n_dims == 3 && cw->shape[0] == di && cw->shape[1] == 1 && cw->shape[2] == K,
              "conv1d.weight shape");
        CHECK(xp && xp->shape[0] == R_ + 2 * N && xp->shape[1] == di, "x_proj shape");
        CHECK(!ms6_st_find(rd, "lm_head.weight"), "tied model has lm_head.weight");
        CHECK((ms6_st_find(rd, "backbone.layers.0.mixer.conv1d.bias") != NULL) == s.use_conv_bias, "conv bias");
        CHECK((ms6_st_find(rd, "backbone.layers.0.mixer.in_proj.bias") != NULL) == s.use_bias, "in_proj bias");
        /* A_log = log(u), u in [1, 16); dt = softplus(bias) in [1e-3, 1e-1] */
        int bad_a = 0, bad_dt = 0;
        for (int64_t i = 0; A && i < A->n_elements; i++) {
            float v = ms6_load(A->data, A->dtype, i);
            if (!(v >= -1e-3f && v <= logf(16.0f) + 0.02f)) bad_a++;
        }
        for (int64_t i = 0; db && i < db->n_elements; i++) {
            double dtv = log1p(exp((double)ms6_load(db->data, db->dtype, i)));
            if (!(dtv > 0.9e-3 && dtv < 0.11)) bad_dt++;
        }
        CHECK(bad_a == 0, "%d A_log values outside log([1, 16])", bad_a);
        CHECK(bad_dt == 0, "%d dt_proj.bias values give dt outside [1e-3, 1e-1]", bad_dt);
        ms6_st_close(rd);
    }

    ms6_model *m = NULL;
    ms6_error e;
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CPU_REF;
    st = ms6_model_load(mdir, &o, &m, &e);
    CHECK(st == MS6_STATUS_OK, "load: %s", e.message);
    if (!m) return;
    const ms6_model_config *c = ms6_model_get_config(m);
    CHECK(c->d_model == d && c->n_layer == s.n_layer && c->d_state == N && c->d_conv == K &&
              c->vocab_size == s.vocab_size && c->dt_rank == R_ && c->storage_dtype == dt,
          "loaded config differs");
    ms6_session *ss = NULL;
    CHECK(ms6_session_create(m, &ss, &e) == MS6_STATUS_OK, "session: %s", e.message);
    if (ss) {
        int32_t ids[6];
        for (int i = 0; i < 6; i++) ids[i] = (int32_t)(tu_next(&R) % (uint64_t)s.vocab_size);
        float *lg = malloc(sizeof(float) * (size_t)(6 * s.vocab_size));
        CHECK(ms6_session_prefill(ss, ids, 6, lg, 1) == MS6_STATUS_OK, "prefill: %s", ms6_session_last_error(ss));
        double s2 = 0;
        int nonfinite = 0;
        for (int64_t i = 0; i < 6 * s.vocab_size; i++) {
            if (!isfinite(lg[i])) nonfinite++;
            s2 += (double)lg[i] * lg[i];
        }
        double rms = sqrt(s2 / (6.0 * (double)s.vocab_size));
        fprintf(stderr, "  init d_model %lld n_layer %lld N %lld K %lld vocab %lld %s: logits rms %.2f\n",
                (long long)d, (long long)s.n_layer, (long long)N, (long long)K, (long long)s.vocab_size,
                ms6_dtype_name(dt), rms);
        CHECK(nonfinite == 0 && rms > 0.5 && rms < 8.0, "logits not O(1): rms %.3g, %d non-finite", rms, nonfinite);
        free(lg);
        ms6_session_free(ss);
    }
    ms6_model_free(m);

    s.d_state = 300;
    CHECK(ms6_model_init_write(mdir, &s, dt, seed, NULL, msg) == MS6_STATUS_INVALID_ARGUMENT,
          "d_state 300 accepted");
    s.d_state = 16;
    CHECK(ms6_model_init_write(mdir, &s, (ms6_dtype)9, seed, NULL, msg) == MS6_STATUS_INVALID_ARGUMENT,
          "bad dtype accepted");
    snprintf(p1, sizeof p1, "%s/model/config.json", dir);
    CHECK(ms6_model_init_write(p1, &s, dt, seed, NULL, msg) == MS6_STATUS_IO_ERROR, "a file as directory accepted");
}

static void rm_rf(const char *d) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d);
}

int main(void) {
    tu_rng_init(&R, tu_seed("test_init"));
    snprintf(dir, sizeof dir, "/tmp/ms6_test_init_XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    for (int i = 0; i < 30; i++) test_roundtrip(i);
    test_writer_errors();
    test_init_model();
    rm_rf(dir);
    return tu_finish("test_init");
}
