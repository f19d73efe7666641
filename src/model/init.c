/* Random-init model writer (see init.h).
 *
 * Weights, matching tests/make_model_goldens.py (docs/goldens.md) except
 * that the "normal" draws are uniform with the same standard deviation
 * (a = std * sqrt(3)), which is cheaper and keeps every activation bounded:
 *   embeddings           std 2/sqrt(d_model)  -> tied-head logits std ~2
 *   norm weights         uniform(0.7, 1.3)
 *   in_proj              std 1/sqrt(d_model)
 *   conv1d.weight        std 1/sqrt(d_conv);   conv1d.bias std 0.2
 *   x_proj / out_proj    std 1/sqrt(d_inner)
 *   dt_proj.weight       std 1/sqrt(dt_rank)
 *   dt_proj.bias         softplus^-1(dt), dt log-uniform in [1e-3, 1e-1]
 *   A_log                log(uniform(1, 16));  D uniform(0.5, 1.5)
 * Each tensor draws from its own xoshiro256** stream seeded by (seed,
 * tensor index), generated and converted in 1 Mi-element chunks and
 * streamed to disk through the safetensors writer. */
#include "model/init.h"

#include "io/st_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
    const char *name;
    int64_t d_model, n_layer;
} shapes[] = {
    {"130m", 768, 24}, {"370m", 1024, 48}, {"790m", 1536, 48}, {"1.4b", 2048, 48}, {"2.8b", 2560, 64},
};

const char *ms6_init_shape_names(void) { return "130m, 370m, 790m, 1.4b, 2.8b"; }

ms6_status ms6_init_shape_lookup(const char *name, ms6_init_shape *out) {
    for (size_t i = 0; name && out && i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(name, shapes[i].name)) continue;
        memset(out, 0, sizeof *out);
        out->d_model = shapes[i].d_model;
        out->n_layer = shapes[i].n_layer;
        out->vocab_size = 50280;
        out->d_state = 16;
        out->d_conv = 4;
        out->expand = 2;
        out->dt_rank = (shapes[i].d_model + 15) / 16;
        out->use_bias = 0;
        out->use_conv_bias = 1;
        return MS6_STATUS_OK;
    }
    return MS6_STATUS_INVALID_ARGUMENT;
}

/* ------------------------------------------------------------ PRNG */

typedef struct { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* ------------------------------------------------- fast conversions */

/* f32 -> f16, round to nearest even, branch-light (F. Giesen's
 * float_to_half_fast3_rtne): subnormal results by adding a magic number
 * whose exponent puts the f16 subnormal lsb at the f32 lsb, normal results
 * by rebiasing the exponent and rounding the 13 dropped bits. Checked
 * bit-exact against ms6_f32_to_f16 over all 2^32 inputs (NaN payloads
 * aside). Several times faster than a call per element, which matters for
 * the 2.8b shape (2.8e9 elements). */
static inline uint16_t f32_to_f16_fast(float f) {
    union { uint32_t u; float f; } x = {.f = f}, magic = {.u = (uint32_t)((127 - 15) + (23 - 10) + 1) << 23};
    uint32_t sign = x.u & 0x80000000u;
    uint16_t o;
    x.u ^= sign;
    if (x.u >= (uint32_t)(127 + 16) << 23) { /* overflow to inf, or NaN */
        o = x.u > 0x7f800000u ? 0x7e00 : 0x7c00;
    } else if (x.u < (uint32_t)113 << 23) { /* f16 subnormal or zero */
        x.f += magic.f;
        o = (uint16_t)(x.u - magic.u);
    } else {
        uint32_t mant_odd = (x.u >> 13) & 1u;
        x.u += ((uint32_t)(15 - 127) << 23) + 0xfffu;
        x.u += mant_odd;
        o = (uint16_t)(x.u >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

/* f32 -> bf16, round to nearest even (NaN kept quiet). */
static inline uint16_t f32_to_bf16_fast(float f) {
    union { uint32_t u; float f; } x = {.f = f};
    if ((x.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x.u >> 16) | 0x40u);
    return (uint16_t)((x.u + 0x7fffu + ((x.u >> 16) & 1u)) >> 16);
}

/* ---------------------------------------------------------- tensors */

typedef enum { K_UNIFORM, K_LOG_UNIFORM, K_DT_BIAS } kind;

typedef struct spec {
    char name[96];
    int n_dims;
    int64_t shape[3];
    kind k;
    float lo, hi;            /* K_UNIFORM: range; others fixed */
} spec;

static void set_spec(spec *s, const char *name, int n_dims, int64_t a, int64_t b, int64_t c, kind k, float lo,
                     float hi) {
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = n_dims;
    s->shape[0] = a;
    s->shape[1] = b;
    s->shape[2] = c;
    s->k = k;
    s->lo = lo;
    s->hi = hi;
}

/* Symmetric uniform with standard deviation `std`. */
static void sym(spec *s, const char *name, int n_dims, int64_t a, int64_t b, int64_t c, double std) {
    float h = (float)(std * sqrt(3.0));
    set_spec(s, name, n_dims, a, b, c, K_UNIFORM, -h, h);
}

/* Fills v[0..n) with the next n values of the tensor's stream. Two floats
 * per 64-bit draw, 24 bits each: u in [0, 1). */
static void fill(const spec *s, rng *r, float *v, int64_t n) {
    const float scale = 1.0f / 16777216.0f;
    int64_t i = 0;
    for (; i + 1 < n; i += 2) {
        uint64_t x = rng_next(r);
        v[i] = (float)(x >> 40) * scale;
        v[i + 1] = (float)((x >> 8) & 0xffffff) * scale;
    }
    if (i < n) v[i] = (float)(rng_next(r) >> 40) * scale;
    switch (s->k) {
    case K_UNIFORM:
        for (int64_t j = 0; j < n; j++) v[j] = s->lo + (s->hi - s->lo) * v[j];
        break;
    case K_LOG_UNIFORM: /* A_log = log(uniform(1, 16)) */
        for (int64_t j = 0; j < n; j++) v[j] = logf(1.0f + 15.0f * v[j]);
        break;
    case K_DT_BIAS: /* dt = exp(uniform(log 1e-3, log 1e-1)); bias = dt + log(-expm1(-dt)) */
        for (int64_t j = 0; j < n; j++) {
            double dt = exp(log(1e-3) + (log(1e-1) - log(1e-3)) * (double)v[j]);
            v[j] = (float)(dt + log(-expm1(-dt)));
        }
        break;
    }
}

static int64_t build_specs(const ms6_init_shape *m, spec *out) {
    int64_t d = m->d_model, di = m->expand * m->d_model, N = m->d_state, K = m->d_conv, R = m->dt_rank;
    int64_t n = 0;
    char nm[96];
    sym(&out[n++], "backbone.embeddings.weight", 2, m->vocab_size, d, 0, 2.0 / sqrt((double)d));
    for (int64_t l = 0; l < m->n_layer; l++) {
#define NAME(s) (snprintf(nm, sizeof nm, "backbone.layers.%lld.%s", (long long)l, s), nm)
        set_spec(&out[n++], NAME("mixer.A_log"), 2, di, N, 0, K_LOG_UNIFORM, 0, 0);
        set_spec(&out[n++], NAME("mixer.D"), 1, di, 0, 0, K_UNIFORM, 0.5f, 1.5f);
        if (m->use_conv_bias) sym(&out[n++], NAME("mixer.conv1d.bias"), 1, di, 0, 0, 0.2);
        sym(&out[n++], NAME("mixer.conv1d.weight"), 3, di, 1, K, 1.0 / sqrt((double)K));
        set_spec(&out[n++], NAME("mixer.dt_proj.bias"), 1, di, 0, 0, K_DT_BIAS, 0, 0);
        sym(&out[n++], NAME("mixer.dt_proj.weight"), 2, di, R, 0, 1.0 / sqrt((double)R));
        if (m->use_bias) sym(&out[n++], NAME("mixer.in_proj.bias"), 1, 2 * di, 0, 0, 0.2);
        sym(&out[n++], NAME("mixer.in_proj.weight"), 2, 2 * di, d, 0, 1.0 / sqrt((double)d));
        if (m->use_bias) sym(&out[n++], NAME("mixer.out_proj.bias"), 1, d, 0, 0, 0.2);
        sym(&out[n++], NAME("mixer.out_proj.weight"), 2, d, di, 0, 1.0 / sqrt((double)di));
        sym(&out[n++], NAME("mixer.x_proj.weight"), 2, R + 2 * N, di, 0, 1.0 / sqrt((double)di));
        set_spec(&out[n++], NAME("norm.weight"), 1, d, 0, 0, K_UNIFORM, 0.7f, 1.3f);
#undef NAME
    }
    set_spec(&out[n++], "backbone.norm_f.weight", 1, d, 0, 0, K_UNIFORM, 0.7f, 1.3f);
    return n;
}

static const char *torch_dtype_name(ms6_dtype t) {
    return t == MS6_DTYPE_F16 ? "float16" : t == MS6_DTYPE_BF16 ? "bfloat16" : "float32";
}

static ms6_status write_config(const char *path, const ms6_init_shape *m, ms6_dtype dtype, uint64_t seed,
                               char *msg) {
    cJSON *c = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("MambaForCausalLM"));
    cJSON_AddStringToObject(c, "model_type", "mamba");
    cJSON_AddNumberToObject(c, "vocab_size", (double)m->vocab_size);
    cJSON_AddNumberToObject(c, "hidden_size", (double)m->d_model);
    cJSON_AddNumberToObject(c, "intermediate_size", (double)(m->expand * m->d_model));
    cJSON_AddNumberToObject(c, "state_size", (double)m->d_state);
    cJSON_AddNumberToObject(c, "num_hidden_layers", (double)m->n_layer);
    cJSON_AddNumberToObject(c, "conv_kernel", (double)m->d_conv);
    cJSON_AddNumberToObject(c, "expand", (double)m->expand);
    cJSON_AddNumberToObject(c, "time_step_rank", (double)m->dt_rank);
    cJSON_AddNumberToObject(c, "layer_norm_epsilon", 1e-5);
    cJSON_AddBoolToObject(c, "use_bias", m->use_bias);
    cJSON_AddBoolToObject(c, "use_conv_bias", m->use_conv_bias);
    cJSON_AddBoolToObject(c, "residual_in_fp32", 1);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", 1);
    cJSON_AddStringToObject(c, "hidden_act", "silu");
    cJSON_AddNumberToObject(c, "bos_token_id", 0);
    cJSON_AddNumberToObject(c, "eos_token_id", 0);
    cJSON_AddNumberToObject(c, "pad_token_id", 0);
    cJSON_AddStringToObject(c, "torch_dtype", torch_dtype_name(dtype));
    cJSON *note = cJSON_AddObjectToObject(c, "mamba_s6_random_init");
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
    cJSON_AddStringToObject(note, "seed", seedbuf);
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    if (!text) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        cJSON_free(text);
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: cannot create: %s", path, strerror(errno));
    }
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF;
    bad |= fclose(f) != 0;
    cJSON_free(text);
    if (bad) return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: write failed: %s", path, strerror(errno));
    return MS6_STATUS_OK;
}

ms6_status ms6_model_init_write(const char *dir, const ms6_init_shape *shape, ms6_dtype dtype,
                                uint64_t seed, ms6_init_stats *stats, char *msg) {
    if (!dir || !shape) return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "init: NULL directory or shape");
    ms6_init_shape m = *shape;
    if (m.dt_rank == 0) m.dt_rank = (m.d_model + 15) / 16;
    if (m.d_model < 1 || m.d_model > (1 << 20) || m.n_layer < 1 || m.n_layer > 100000 || m.vocab_size < 1 ||
        m.vocab_size > INT32_MAX || m.d_state < 1 || m.d_state > MS6_MAX_D_STATE || m.d_conv < 2 ||
        m.d_conv > MS6_MAX_D_CONV || m.expand < 1 || m.expand > 16 || m.dt_rank < 1 || m.dt_rank > m.d_model)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                             "init: shape out of range (d_model %lld, n_layer %lld, vocab %lld, d_state %lld, "
                             "d_conv %lld, expand %lld, dt_rank %lld)",
                             (long long)m.d_model, (long long)m.n_layer, (long long)m.vocab_size,
                             (long long)m.d_state, (long long)m.d_conv, (long long)m.expand, (long long)m.dt_rank);
    if (ms6_dtype_size(dtype) == 0)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "init: invalid dtype %d", (int)dtype);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: cannot create directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: not a directory", dir);

    size_t plen = strlen(dir) + 32;
    char *cfg_path = malloc(plen), *st_path = malloc(plen);
    int64_t max_specs = 2 + 12 * m.n_layer;
    spec *specs = malloc(sizeof(spec) * (size_t)max_specs);
    ms6_stw_tensor *tens = malloc(sizeof(ms6_stw_tensor) * (size_t)max_specs);
    const int64_t CHUNK = (int64_t)1 << 20;
    float *vals = malloc(sizeof(float) * (size_t)CHUNK);
    uint16_t *half = malloc(sizeof(uint16_t) * (size_t)CHUNK);
    ms6_stw *w = NULL;
    ms6_status st = MS6_STATUS_OK;
    if (!cfg_path || !st_path || !specs || !tens || !vals || !half) {
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "init: out of memory");
        goto done;
    }
    snprintf(cfg_path, plen, "%s/config.json", dir);
    snprintf(st_path, plen, "%s/model.safetensors", dir);

    int64_t n = build_specs(&m, specs), n_params = 0;
    for (int64_t i = 0; i < n; i++) {
        memset(&tens[i], 0, sizeof tens[i]);
        tens[i].name = specs[i].name;
        tens[i].dtype = dtype;
        tens[i].n_dims = specs[i].n_dims;
        int64_t e = 1;
        for (int k = 0; k < specs[i].n_dims; k++) {
            tens[i].shape[k] = specs[i].shape[k];
            e *= specs[i].shape[k];
        }
        n_params += e;
    }
    st = write_config(cfg_path, &m, dtype, seed, msg);
    if (st != MS6_STATUS_OK) goto done;
    st = ms6_stw_open(st_path, tens, n, &w, msg);
    if (st != MS6_STATUS_OK) goto done;
    for (int64_t i = 0; i < n && st == MS6_STATUS_OK; i++) {
        int64_t e = 1;
        for (int k = 0; k < specs[i].n_dims; k++) e *= specs[i].shape[k];
        rng r;
        rng_seed(&r, seed, (uint64_t)i);
        for (int64_t off = 0; off < e && st == MS6_STATUS_OK; off += CHUNK) {
            int64_t c = e - off < CHUNK ? e - off : CHUNK;
            fill(&specs[i], &r, vals, c);
            if (dtype == MS6_DTYPE_F32) {
                st = ms6_stw_write(w, vals, sizeof(float) * (size_t)c, msg);
            } else {
                if (dtype == MS6_DTYPE_F16)
                    for (int64_t j = 0; j < c; j++) half[j] = f32_to_f16_fast(vals[j]);
                else
                    for (int64_t j = 0; j < c; j++) half[j] = f32_to_bf16_fast(vals[j]);
                st = ms6_stw_write(w, half, sizeof(uint16_t) * (size_t)c, msg);
            }
        }
    }
    if (st != MS6_STATUS_OK) {
        ms6_stw_abort(w);
        w = NULL;
        goto done;
    }
    st = ms6_stw_close(w, msg);
    w = NULL;
    if (st != MS6_STATUS_OK) goto done;
    if (stats) {
        stats->n_params = n_params;
        stats->n_tensors = n;
        stats->file_bytes = stat(st_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    }
done:
    free(cfg_path);
    free(st_path);
    free(specs);
    free(tens);
    free(vals);
    free(half);
    return st;
}
