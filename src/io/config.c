/*
 * config.c - reads a Mamba-1 config.json in either of its two dialects.
 *
 * Hugging Face (`*-hf` repos, transformers MambaConfig / FalconMambaConfig):
 *   hidden_size, intermediate_size, state_size, num_hidden_layers,
 *   conv_kernel, expand, time_step_rank ("auto" = ceil(hidden_size / 16)),
 *   layer_norm_epsilon, use_bias, use_conv_bias, residual_in_fp32,
 *   vocab_size, tie_word_embeddings, model_type, mixer_rms_eps (falcon).
 * Original state-spaces repos (mamba_ssm MambaConfig):
 *   d_model, n_layer, vocab_size, ssm_cfg {d_state, d_conv, expand, dt_rank,
 *   bias, conv_bias}, rms_norm, residual_in_fp32, pad_vocab_size_multiple
 *   (the embedding has vocab_size rounded up to a multiple of it),
 *   tie_embeddings.
 * A key that is absent takes the default of the Python class that wrote the
 * file; a key that is present is always used (the class defaults differ
 * from real checkpoints, so nothing is assumed that the file says).
 * Every failure names the file and the key.
 */
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, __VA_ARGS__)

/* Reads an integer key; absent (or JSON null) keeps *out (the default). */
static ms6_status get_int(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                          int64_t *out, int *present, char *msg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present) *present = 0;
    if (!v || cJSON_IsNull(v)) return MS6_STATUS_OK;
    if (!cJSON_IsNumber(v)) BAD("%s: \"%s\" must be an integer", path, key);
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return ms6_fmt_error(msg, d == floor(d) && d > 0 ? MS6_STATUS_UNSUPPORTED : MS6_STATUS_FORMAT_ERROR,
                             "%s: \"%s\" = %g, must be an integer in %lld..%lld", path, key, d, (long long)lo,
                             (long long)hi);
    *out = (int64_t)d;
    if (present) *present = 1;
    return MS6_STATUS_OK;
}

static ms6_status get_bool(const cJSON *obj, const char *key, const char *path, int *out, char *msg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return MS6_STATUS_OK;
    if (!cJSON_IsBool(v)) BAD("%s: \"%s\" must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return MS6_STATUS_OK;
}

static ms6_status get_float(const cJSON *obj, const char *key, const char *path, float *out, char *msg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return MS6_STATUS_OK;
    /* an epsilon that rounds to 0 in fp32 would let rsqrt divide by zero */
    if (!cJSON_IsNumber(v) || !(v->valuedouble < 1.0 && (float)v->valuedouble > 0.0f))
        BAD("%s: \"%s\" must be a number in (0, 1), representable in fp32", path, key);
    *out = (float)v->valuedouble;
    return MS6_STATUS_OK;
}

/* "auto" or an integer; "auto" leaves *out at 0. */
static ms6_status get_rank(const cJSON *obj, const char *key, const char *path, int64_t *out, char *msg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return MS6_STATUS_OK;
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "auto")) BAD("%s: \"%s\" must be \"auto\" or an integer", path, key);
        *out = 0;
        return MS6_STATUS_OK;
    }
    return get_int(obj, key, path, 1, 1 << 20, out, NULL, msg);
}

#define TRY(x) do { ms6_status s_ = (x); if (s_ != MS6_STATUS_OK) { cJSON_Delete(root); return s_; } } while (0)
#define FAILR(st, ...) do { ms6_fmt_error(msg, st, __VA_ARGS__); cJSON_Delete(root); return st; } while (0)

ms6_status ms6_config_parse(const char *text, size_t len, const char *path, ms6_config_ext *out, char *msg) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) BAD("%s: not valid JSON", path);
    if (!cJSON_IsObject(root)) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: not a JSON object", path);
    ms6_model_config *c = &out->pub;
    const int64_t MAXD = 1 << 20;

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !cJSON_IsString(mt)) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: \"model_type\" must be a string", path);
    const char *model_type = mt ? mt->valuestring : "mamba";
    if (strcmp(model_type, "mamba") && strcmp(model_type, "falcon_mamba"))
        FAILR(MS6_STATUS_UNSUPPORTED, "%s: model_type \"%.40s\" is not supported (mamba-s6 runs \"mamba\" and "
                                      "\"falcon_mamba\", i.e. Mamba-1)", path, model_type);
    snprintf(c->model_type, sizeof c->model_type, "%s", model_type);
    const int falcon = !strcmp(model_type, "falcon_mamba");

    out->state_spaces = !cJSON_GetObjectItemCaseSensitive(root, "hidden_size") &&
                        cJSON_GetObjectItemCaseSensitive(root, "d_model");
    int64_t expand = 2;
    int present;
    c->d_state = 16;
    c->d_conv = 4;
    c->norm_eps = 1e-5f;
    c->mixer_rms_eps = falcon ? 1e-6f : 0.0f;
    c->residual_in_fp32 = 1;
    c->use_bias = 0;
    c->use_conv_bias = 1;
    out->tie_word_embeddings = 1;
    if (!out->state_spaces) {
        /* transformers MambaConfig */
        TRY(get_int(root, "hidden_size", path, 1, MAXD, &c->d_model, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"hidden_size\" (or \"d_model\")", path);
        TRY(get_int(root, "num_hidden_layers", path, 1, 1 << 16, &c->n_layer, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"num_hidden_layers\"", path);
        TRY(get_int(root, "vocab_size", path, 1, 1 << 24, &out->vocab_size_cfg, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"vocab_size\"", path);
        TRY(get_int(root, "state_size", path, 1, MS6_MAX_D_STATE, &c->d_state, NULL, msg));
        TRY(get_int(root, "conv_kernel", path, 2, MS6_MAX_D_CONV, &c->d_conv, NULL, msg));
        TRY(get_int(root, "expand", path, 1, 64, &expand, NULL, msg));
        c->d_inner = expand * c->d_model;
        TRY(get_int(root, "intermediate_size", path, 1, 64 * MAXD, &c->d_inner, NULL, msg));
        TRY(get_rank(root, "time_step_rank", path, &c->dt_rank, msg));
        TRY(get_float(root, "layer_norm_epsilon", path, &c->norm_eps, msg));
        if (falcon) TRY(get_float(root, "mixer_rms_eps", path, &c->mixer_rms_eps, msg));
        TRY(get_bool(root, "use_bias", path, &c->use_bias, msg));
        TRY(get_bool(root, "use_conv_bias", path, &c->use_conv_bias, msg));
        TRY(get_bool(root, "residual_in_fp32", path, &c->residual_in_fp32, msg));
        TRY(get_bool(root, "tie_word_embeddings", path, &out->tie_word_embeddings, msg));
        out->pad_vocab_size_multiple = 1;
        c->vocab_size = out->vocab_size_cfg;
    } else {
        /* mamba_ssm MambaConfig */
        TRY(get_int(root, "d_model", path, 1, MAXD, &c->d_model, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"d_model\" (or \"hidden_size\")", path);
        TRY(get_int(root, "n_layer", path, 1, 1 << 16, &c->n_layer, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"n_layer\"", path);
        TRY(get_int(root, "vocab_size", path, 1, 1 << 24, &out->vocab_size_cfg, &present, msg));
        if (!present) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: missing \"vocab_size\"", path);
        out->pad_vocab_size_multiple = 8;
        TRY(get_int(root, "pad_vocab_size_multiple", path, 1, 1 << 16, &out->pad_vocab_size_multiple, NULL, msg));
        int rms_norm = 1;
        TRY(get_bool(root, "rms_norm", path, &rms_norm, msg));
        if (!rms_norm)
            FAILR(MS6_STATUS_UNSUPPORTED, "%s: \"rms_norm\": false (LayerNorm blocks) is not supported", path);
        int64_t d_intermediate = 0;
        TRY(get_int(root, "d_intermediate", path, 0, 64 * MAXD, &d_intermediate, NULL, msg));
        if (d_intermediate)
            FAILR(MS6_STATUS_UNSUPPORTED, "%s: \"d_intermediate\" = %lld (MLP blocks) is not supported", path,
                  (long long)d_intermediate);
        const cJSON *attn = cJSON_GetObjectItemCaseSensitive(root, "attn_layer_idx");
        if (cJSON_IsArray(attn) && cJSON_GetArraySize(attn) > 0)
            FAILR(MS6_STATUS_UNSUPPORTED, "%s: \"attn_layer_idx\" (attention layers) is not supported", path);
        TRY(get_bool(root, "residual_in_fp32", path, &c->residual_in_fp32, msg));
        TRY(get_bool(root, "tie_embeddings", path, &out->tie_word_embeddings, msg));
        TRY(get_float(root, "norm_epsilon", path, &c->norm_eps, msg));
        const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(root, "ssm_cfg");
        if (ssm && !cJSON_IsObject(ssm)) FAILR(MS6_STATUS_FORMAT_ERROR, "%s: \"ssm_cfg\" must be an object", path);
        if (ssm) {
            const cJSON *layer = cJSON_GetObjectItemCaseSensitive(ssm, "layer");
            if (cJSON_IsString(layer) && strcmp(layer->valuestring, "Mamba1"))
                FAILR(MS6_STATUS_UNSUPPORTED, "%s: ssm_cfg.layer \"%.40s\" is not supported (Mamba1 only)", path,
                      layer->valuestring);
            TRY(get_int(ssm, "d_state", path, 1, MS6_MAX_D_STATE, &c->d_state, NULL, msg));
            TRY(get_int(ssm, "d_conv", path, 2, MS6_MAX_D_CONV, &c->d_conv, NULL, msg));
            TRY(get_int(ssm, "expand", path, 1, 64, &expand, NULL, msg));
            TRY(get_rank(ssm, "dt_rank", path, &c->dt_rank, msg));
            TRY(get_bool(ssm, "bias", path, &c->use_bias, msg));
            TRY(get_bool(ssm, "conv_bias", path, &c->use_conv_bias, msg));
        }
        c->d_inner = expand * c->d_model;
        /* vocab_size += (multiple - vocab_size % multiple) % multiple */
        int64_t m = out->pad_vocab_size_multiple;
        c->vocab_size = (out->vocab_size_cfg + m - 1) / m * m;
    }
    /* time_step_rank "auto" = math.ceil(hidden_size / 16) */
    if (c->dt_rank == 0) c->dt_rank = (c->d_model + 15) / 16;
    cJSON_Delete(root);
    return MS6_STATUS_OK;
}

ms6_status ms6_config_load(const char *dir, ms6_config_ext *out, char *msg) {
    size_t n = strlen(dir) + sizeof "/config.json";
    char *path = malloc(n);
    if (!path) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory");
    snprintf(path, n, "%s/config.json", dir);
    char *text;
    size_t len;
    ms6_status st = ms6_read_file(path, &text, &len, 16u << 20, msg);
    if (st == MS6_STATUS_OK) {
        st = ms6_config_parse(text, len, path, out, msg);
        free(text);
    }
    free(path);
    return st;
}
