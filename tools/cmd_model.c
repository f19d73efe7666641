/*
 * cmd_model.c - the commands that run a checkpoint:
 *   mamba-s6 generate  prompt -> streamed continuation (text or ids)
 *   mamba-s6 logits    logits at every position of an id sequence, to a file
 *   mamba-s6 info      config, parameters, dtypes, memory
 * Every error prints the library's message and exits non-zero.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *dir;
    ms6_backend_kind backend;
    int threads;
    long long prefill_chunk;
    const char *dtype; /* --dtype: CUDA weight type, NULL = the checkpoint's half type */
} model_args;

/* Options shared by the three commands; returns 1 when argv[*i] was one of
 * them (consuming its value), -1 on a bad value, 0 otherwise. */
static int common_opt(int argc, char **argv, int *i, model_args *ma) {
    const char *o = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long long n;
    if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
        if (!v) goto missing;
        ma->dir = v;
    } else if (!strcmp(o, "--backend")) {
        if (!v) goto missing;
        if (ms6_backend_kind_parse(v, &ma->backend) != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6: --backend expects cpu, cpu-ref or cuda, got '%s'\n", v);
            return -1;
        }
    } else if (!strcmp(o, "--threads")) {
        if (!v) goto missing;
        if (cli_parse_int(o, v, 0, 1024, &n)) return -1;
        ma->threads = (int)n;
    } else if (!strcmp(o, "--dtype")) {
        if (!v) goto missing;
        if (strcmp(v, "f32") && strcmp(v, "f16") && strcmp(v, "bf16")) {
            fprintf(stderr, "mamba-s6: --dtype expects f16, bf16 or f32, got '%s'\n", v);
            return -1;
        }
        ma->dtype = v;
    } else if (!strcmp(o, "--prefill-chunk")) {
        if (!v) goto missing;
        if (cli_parse_int(o, v, 1, 1 << 20, &n)) return -1;
        ma->prefill_chunk = n;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
missing:
    fprintf(stderr, "mamba-s6: %s needs a value\n", o);
    return -1;
}

static ms6_model *open_model(const model_args *ma) {
    if (!ma->dir) {
        fprintf(stderr, "mamba-s6: -m DIR (the model directory) is required\n");
        return NULL;
    }
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = ma->backend;
    o.n_threads = ma->threads;
    o.prefill_chunk = ma->prefill_chunk;
    if (ma->dtype)
        o.dtype = !strcmp(ma->dtype, "f32") ? MS6_DTYPE_F32 : !strcmp(ma->dtype, "bf16") ? MS6_DTYPE_BF16 : MS6_DTYPE_F16;
    ms6_model *m;
    ms6_error err;
    ms6_status st = ms6_model_load(ma->dir, &o, &m, &err);
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        if (ma->backend == MS6_BACKEND_CUDA && (st == MS6_STATUS_DEVICE_ERROR || st == MS6_STATUS_UNSUPPORTED))
            fprintf(stderr, "mamba-s6: no usable GPU backend; run on the CPU with --backend cpu\n");
        if (ma->backend == MS6_BACKEND_CUDA && st == MS6_STATUS_OUT_OF_MEMORY)
            fprintf(stderr, "mamba-s6: the model does not fit in GPU memory; try --dtype f16, or --backend cpu\n");
        return NULL;
    }
    return m;
}

static int session_fail(ms6_session *s, const char *what) {
    fprintf(stderr, "mamba-s6: %s: %s\n", what, ms6_session_last_error(s));
    return 1;
}

/* ------------------------------------------------------------ generate */

/* Loads DIR/tokenizer.json. When it is absent: an error if `required`,
 * else *tok stays NULL (ids are printed instead of text). Returns an exit
 * code, 0 on success. */
static int load_tokenizer(const char *dir, int required, ms6_tokenizer **tok) {
    *tok = NULL;
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    char *path = malloc(n);
    if (!path) return 1;
    snprintf(path, n, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (required) fprintf(stderr, "mamba-s6: -p needs %s (not found); pass token ids with --ids instead\n", path);
        free(path);
        return required ? 1 : 0;
    }
    fclose(f);
    ms6_error err;
    ms6_status st = ms6_tokenizer_load(path, tok, &err);
    free(path);
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        return 1;
    }
    return 0;
}

static void generate_usage(FILE *f) {
    fprintf(f,
            "usage: mamba-s6 generate -m DIR (-p TEXT | --ids \"ID ID ...\") [options]\n\n"
            "  -m, --model DIR        model directory (config.json + model.safetensors)\n"
            "  -p, --prompt TEXT      prompt text (needs DIR/tokenizer.json)\n"
            "  --ids \"ID ...\"         prompt as token ids (spaces or commas)\n"
            "  -n N                   tokens to generate (default 32)\n"
            "  --temp T               temperature, 0 = greedy (default 0)\n"
            "  --top-k K              keep the K most likely tokens (0 = off)\n"
            "  --top-p P              nucleus sampling (1 = off)\n"
            "  --min-p P              drop tokens below P x the top probability (0 = off)\n"
            "  --repeat-penalty R     penalty on the last 64 tokens (1 = off)\n"
            "  --seed S               sampler seed (default 0)\n"
            "  --print-ids            print generated ids instead of text (the default\n"
            "                         when DIR has no tokenizer.json)\n"
            "  --backend B            cpu (default), cpu-ref or cuda\n"
            "  --threads T            CPU threads (0 = all cores)\n"
            "  --prefill-chunk N      prompt tokens per prefill chunk (default 512)\n"
            "  --dtype T              cuda weight type: f16, bf16 or f32 (default: the\n"
            "                         checkpoint's half type, f16 for f32 checkpoints)\n"
            "The continuation streams to stdout; prompt and decode speed go to stderr.\n");
}

int cmd_generate(int argc, char **argv) {
    model_args ma = {NULL, MS6_BACKEND_CPU, 0, 0, NULL};
    const char *prompt = NULL, *ids_arg = NULL;
    long long n_gen = 32;
    int print_ids = 0;
    ms6_sampler_params sp;
    ms6_sampler_params_init(&sp);
    for (int i = 1; i < argc; i++) {
        int r = common_opt(argc, argv, &i, &ma);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        long long n;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            generate_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--print-ids")) {
            print_ids = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "mamba-s6 generate: unknown option '%s' or missing value\n\n", o);
            generate_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) prompt = v;
        else if (!strcmp(o, "--ids")) ids_arg = v;
        else if (!strcmp(o, "-n")) { if (cli_parse_int(o, v, 0, 1 << 24, &n_gen)) return 2; }
        else if (!strcmp(o, "--temp")) { if (cli_parse_float(o, v, 0, 100, &d)) return 2; sp.temperature = (float)d; }
        else if (!strcmp(o, "--top-k")) { if (cli_parse_int(o, v, 0, 1 << 24, &n)) return 2; sp.top_k = (int)n; }
        else if (!strcmp(o, "--top-p")) { if (cli_parse_float(o, v, 0, 1, &d)) return 2; sp.top_p = (float)d; }
        else if (!strcmp(o, "--min-p")) { if (cli_parse_float(o, v, 0, 1, &d)) return 2; sp.min_p = (float)d; }
        else if (!strcmp(o, "--repeat-penalty")) { if (cli_parse_float(o, v, 0.01, 100, &d)) return 2; sp.repeat_penalty = (float)d; }
        else if (!strcmp(o, "--seed")) { if (cli_parse_int(o, v, 0, INT64_MAX, &n)) return 2; sp.seed = (uint64_t)n; }
        else {
            fprintf(stderr, "mamba-s6 generate: unknown option '%s'\n\n", o);
            generate_usage(stderr);
            return 2;
        }
    }
    if ((prompt != NULL) == (ids_arg != NULL)) {
        fprintf(stderr, "mamba-s6 generate: give exactly one of -p TEXT and --ids \"ID ...\"\n");
        return 2;
    }
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    if (ids_arg && cli_parse_ids(ids_arg, &ids, &n_ids)) return 2;
    if (!ma.dir) {
        fprintf(stderr, "mamba-s6: -m DIR (the model directory) is required\n");
        free(ids);
        return 2;
    }
    /* The tokenizer: needed for -p, used for text output when present. */
    ms6_tokenizer *tok = NULL;
    ms6_decoder *dec = NULL;
    ms6_error err;
    if (prompt || !print_ids) {
        int rc_tok = load_tokenizer(ma.dir, prompt != NULL, &tok);
        if (rc_tok) {
            free(ids);
            return rc_tok;
        }
    }
    if (prompt) {
        size_t len = strlen(prompt), n = 0;
        /* 3*len+1 ids always suffice (NFC can expand a character to three
         * byte-level tokens); retry with the reported size anyway */
        size_t cap = 3 * len + 1;
        ids = malloc(sizeof(int32_t) * cap);
        ms6_status est = ids ? ms6_tokenizer_encode(tok, prompt, len, ids, cap, &n) : MS6_STATUS_OUT_OF_MEMORY;
        if (est == MS6_STATUS_BUFFER_TOO_SMALL) {
            int32_t *bigger = realloc(ids, sizeof(int32_t) * n);
            if (bigger) {
                ids = bigger;
                est = ms6_tokenizer_encode(tok, prompt, len, ids, n, &n);
            }
        }
        if (!ids || est != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6: cannot tokenize the prompt: %s\n", ms6_tokenizer_last_error(tok));
            free(ids);
            ms6_tokenizer_free(tok);
            return 1;
        }
        n_ids = (int64_t)n;
        if (n_ids == 0) {
            fprintf(stderr, "mamba-s6 generate: the prompt is empty\n");
            free(ids);
            ms6_tokenizer_free(tok);
            return 2;
        }
    }
    if (tok && !print_ids && ms6_decoder_create(tok, &dec, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        free(ids);
        ms6_tokenizer_free(tok);
        return 1;
    }
    ms6_model *m = open_model(&ma);
    if (!m) {
        free(ids);
        ms6_decoder_free(dec);
        ms6_tokenizer_free(tok);
        return 1;
    }
    const int64_t V = ms6_model_vocab_size(m);
    int rc = 1;
    ms6_session *s = NULL;
    ms6_sampler *smp = NULL;
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!logits) {
        fprintf(stderr, "mamba-s6: out of memory\n");
        goto done;
    }
    if (ms6_session_create(m, &s, &err) != MS6_STATUS_OK || ms6_sampler_create(&sp, V, &smp, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        goto done;
    }
    double t0 = cli_now();
    if (ms6_session_prefill(s, ids, n_ids, logits, 0) != MS6_STATUS_OK) {
        rc = session_fail(s, "prefill");
        goto done;
    }
    const double t_prefill = cli_now() - t0;
    for (int64_t i = 0; i < n_ids; i++) ms6_sampler_accept(smp, ids[i]);
    t0 = cli_now();
    int64_t made = 0;
    int warned_unknown = 0;
    /* plain greedy decoding takes the argmax where the logits are, in
     * pieces of up to 16 tokens per ms6_session_generate_greedy call (on a
     * GPU each token is fed back on the device, no host round trip between
     * them; printing waits for the piece) */
    const int plain_greedy = sp.temperature == 0.0f && sp.repeat_penalty == 1.0f;
    int32_t next = ms6_argmax(logits, V), piece[16];
    int64_t n_piece = 0, in_piece = 0;
    for (; made < n_gen; made++) {
        if (!plain_greedy && ms6_sampler_sample(smp, logits, &next) != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6: sampler: %s\n", ms6_sampler_last_error(smp));
            goto done;
        }
        ms6_sampler_accept(smp, next);
        if (dec) {
            const char *text;
            size_t len;
            if (ms6_decoder_push(dec, next, &text, &len) == MS6_STATUS_OK) {
                fwrite(text, 1, len, stdout);
            } else if (!warned_unknown) {
                /* an embedding row the tokenizer has no token for (state-spaces
                 * checkpoints pad the vocabulary): it prints as nothing */
                fprintf(stderr, "mamba-s6: id %d has no text in tokenizer.json; such ids print nothing\n", (int)next);
                warned_unknown = 1;
            }
        } else {
            printf("%s%d", made ? " " : "", (int)next);
        }
        fflush(stdout);
        /* the last token's logits are never needed */
        if (made + 1 == n_gen) {
            made++;
            break;
        }
        if (plain_greedy && in_piece == n_piece) {
            n_piece = n_gen - made - 1 < 16 ? n_gen - made - 1 : 16;
            in_piece = 0;
            if (ms6_session_generate_greedy(s, next, n_piece, piece) != MS6_STATUS_OK) {
                rc = session_fail(s, "decode step");
                goto done;
            }
        }
        if (plain_greedy) {
            next = piece[in_piece++];
        } else if (ms6_session_step(s, next, logits) != MS6_STATUS_OK) {
            rc = session_fail(s, "decode step");
            goto done;
        }
    }
    const double t_decode = cli_now() - t0;
    if (dec) {
        const char *text;
        size_t len;
        if (ms6_decoder_flush(dec, &text, &len) == MS6_STATUS_OK) fwrite(text, 1, len, stdout);
    }
    printf("\n");
    fprintf(stderr, "prompt: %lld tokens in %.1f ms (%.1f tokens/s); decode: %lld tokens, %.2f ms/token "
                    "[%s backend]\n",
            (long long)n_ids, 1e3 * t_prefill, t_prefill > 0 ? (double)n_ids / t_prefill : 0.0, (long long)made,
            made > 1 ? 1e3 * t_decode / (double)(made - 1) : 0.0, ms6_backend_kind_name(ma.backend));
    rc = 0;
done:
    ms6_sampler_free(smp);
    ms6_session_free(s);
    ms6_model_free(m);
    ms6_decoder_free(dec);
    ms6_tokenizer_free(tok);
    free(logits);
    free(ids);
    return rc;
}

/* -------------------------------------------------------------- logits */

int cmd_logits(int argc, char **argv) {
    model_args ma = {NULL, MS6_BACKEND_CPU, 0, 0, NULL};
    const char *ids_arg = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = common_opt(argc, argv, &i, &ma);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            printf("usage: mamba-s6 logits -m DIR --ids \"ID ID ...\" -o FILE [--backend B] [--threads T]\n"
                   "Writes the logits at every position as little-endian float32, shape (number of ids, "
                   "vocab_size), row-major.\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mamba-s6 logits: unknown option '%s' or missing value\n", o);
            return 2;
        }
        i++;
        if (!strcmp(o, "--ids")) ids_arg = v;
        else if (!strcmp(o, "-o") || !strcmp(o, "--output")) out = v;
        else {
            fprintf(stderr, "mamba-s6 logits: unknown option '%s'\n", o);
            return 2;
        }
    }
    if (!ids_arg || !out) {
        fprintf(stderr, "mamba-s6 logits: --ids \"ID ...\" and -o FILE are required\n");
        return 2;
    }
    int32_t *ids;
    int64_t n;
    if (cli_parse_ids(ids_arg, &ids, &n)) return 2;
    ms6_model *m = open_model(&ma);
    if (!m) {
        free(ids);
        return 1;
    }
    const int64_t V = ms6_model_vocab_size(m);
    int rc = 1;
    ms6_session *s = NULL;
    ms6_error err;
    /* The ids run in blocks of at most 256 positions, each block's logits
     * written before the next, so memory stays at 256 x vocab floats. */
    const int64_t block = n < 256 ? n : 256;
    FILE *f = NULL;
    float *lg = malloc(sizeof(float) * (size_t)(block * V));
    if (!lg) {
        fprintf(stderr, "mamba-s6: out of memory for %lld x %lld logits\n", (long long)block, (long long)V);
        goto done;
    }
    if (ms6_session_create(m, &s, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        goto done;
    }
    f = fopen(out, "wb");
    if (!f) {
        perror(out);
        goto done;
    }
    for (int64_t t = 0; t < n; t += block) {
        const int64_t nb = n - t < block ? n - t : block;
        if (ms6_session_prefill(s, ids + t, nb, lg, 1) != MS6_STATUS_OK) {
            rc = session_fail(s, "prefill");
            goto done;
        }
        /* float32 little-endian: the host order on every supported target */
        if (fwrite(lg, sizeof(float), (size_t)(nb * V), f) != (size_t)(nb * V)) {
            fprintf(stderr, "mamba-s6: short write on '%s'\n", out);
            goto done;
        }
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        fprintf(stderr, "mamba-s6: cannot write '%s'\n", out);
        goto done;
    }
    fprintf(stderr, "wrote %lld x %lld float32 logits to %s\n", (long long)n, (long long)V, out);
    rc = 0;
done:
    if (f) {
        fclose(f);
        remove(out); /* no partial file on failure */
    }
    ms6_session_free(s);
    ms6_model_free(m);
    free(lg);
    free(ids);
    return rc;
}

/* ---------------------------------------------------------------- info */

static void print_bytes(const char *label, double b) {
    const char *u = "B";
    if (b >= 1e9) { b /= 1e9; u = "GB"; }
    else if (b >= 1e6) { b /= 1e6; u = "MB"; }
    else if (b >= 1e3) { b /= 1e3; u = "kB"; }
    printf("  %-28s %.2f %s\n", label, b, u);
}

int cmd_info(int argc, char **argv) {
    model_args ma = {NULL, MS6_BACKEND_CPU, 0, 0, NULL};
    for (int i = 1; i < argc; i++) {
        int r = common_opt(argc, argv, &i, &ma);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: mamba-s6 info -m DIR [--backend B]\nPrints the config, parameter count, dtypes and the "
                   "memory a session needs.\n");
            return 0;
        }
        fprintf(stderr, "mamba-s6 info: unknown option '%s'\n", argv[i]);
        return 2;
    }
    ms6_model *m = open_model(&ma);
    if (!m) return 1;
    const ms6_model_config *c = ms6_model_get_config(m);
    ms6_session *s = NULL;
    ms6_error err;
    if (ms6_session_create(m, &s, &err) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        ms6_model_free(m);
        return 1;
    }
    const long long chunk = ma.prefill_chunk ? ma.prefill_chunk : ma.backend == MS6_BACKEND_CUDA ? 2048 : 512;
    const double scratch = 4.0 * (double)chunk *
                               (double)(3 * c->d_model + 5 * c->d_inner + c->dt_rank + 2 * c->d_state + 2) +
                           4.0 * (double)(chunk < 16 ? chunk : 16) * (double)c->vocab_size;
    printf("model %s\n", ma.dir);
    printf("  %-28s %s\n", "model_type", c->model_type);
    printf("  %-28s %lld\n", "d_model", (long long)c->d_model);
    printf("  %-28s %lld\n", "d_inner", (long long)c->d_inner);
    printf("  %-28s %lld\n", "d_state", (long long)c->d_state);
    printf("  %-28s %lld\n", "d_conv", (long long)c->d_conv);
    printf("  %-28s %lld\n", "dt_rank", (long long)c->dt_rank);
    printf("  %-28s %lld\n", "n_layer", (long long)c->n_layer);
    printf("  %-28s %lld\n", "vocab_size (embedding rows)", (long long)c->vocab_size);
    printf("  %-28s %s\n", "use_bias", c->use_bias ? "yes" : "no");
    printf("  %-28s %s\n", "use_conv_bias", c->use_conv_bias ? "yes" : "no");
    printf("  %-28s %s\n", "lm_head", c->tied_embeddings ? "tied to the embedding" : "separate lm_head.weight");
    printf("  %-28s %g\n", "layer_norm_epsilon", (double)c->norm_eps);
    if (!strcmp(c->model_type, "falcon_mamba")) printf("  %-28s %g\n", "mixer_rms_eps", (double)c->mixer_rms_eps);
    printf("  %-28s %s\n", "weight dtype (matrices)", ms6_dtype_name(c->storage_dtype));
    printf("  %-28s %lld (%.1f M)\n", "parameters", (long long)c->n_params, (double)c->n_params / 1e6);
    print_bytes("weights read per token", (double)ms6_model_weight_bytes(m));
    print_bytes("state per sequence", (double)(ms6_session_state_size(s) - 96));
    /* a session holds two copies of the state (see model_internal.h) and
     * the scratch of one prefill chunk */
    print_bytes("memory per session", 2.0 * (double)(ms6_session_state_size(s) - 96) + scratch);
    printf("  %-28s %lld tokens\n", "prefill chunk", chunk);
    ms6_session_free(s);
    ms6_model_free(m);
    return 0;
}
