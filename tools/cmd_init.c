/* mamba-s6 init: writes a random-init model directory with the shapes of a
 * state-spaces Mamba checkpoint (config.json + model.safetensors), for
 * benchmarks and tests without downloads. */
#include "cli.h"
#include "model/init.h"

#include <stdio.h>
#include <string.h>

static void init_usage(FILE *f) {
    fprintf(f,
            "usage: mamba-s6 init --shape NAME -o DIR [--dtype f16|bf16|f32] [--seed S] [--layers N]\n\n"
            "Writes DIR/config.json (transformers *-hf format) and DIR/model.safetensors with the\n"
            "exact tensor shapes of state-spaces/mamba-NAME and random weights scaled so the\n"
            "logits are O(1). The file is written tensor by tensor (a few MB of memory).\n\n"
            "  --shape NAME   one of %s\n"
            "  -o, --out DIR  output directory (created if missing; files overwritten)\n"
            "  --dtype T      storage dtype of every tensor (default f16)\n"
            "  --seed S       random seed (default 0); same seed, same files\n"
            "  --layers N     override n_layer (quick tests)\n",
            ms6_init_shape_names());
}

int cmd_init(int argc, char **argv) {
    const char *shape_name = NULL, *out = NULL;
    ms6_dtype dtype = MS6_DTYPE_F16;
    long long seed = 0, layers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            init_usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mamba-s6 init: unknown option or missing value: '%s'\n\n", a);
            init_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--shape")) {
            shape_name = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f16")) dtype = MS6_DTYPE_F16;
            else if (!strcmp(v, "bf16")) dtype = MS6_DTYPE_BF16;
            else if (!strcmp(v, "f32")) dtype = MS6_DTYPE_F32;
            else {
                fprintf(stderr, "mamba-s6 init: --dtype expects f16, bf16 or f32, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_int("--seed", v, 0, 0x7fffffffffffffffLL, &seed)) return 2;
        } else if (!strcmp(a, "--layers")) {
            if (cli_parse_int("--layers", v, 1, 1000, &layers)) return 2;
        } else {
            fprintf(stderr, "mamba-s6 init: unknown option '%s'\n\n", a);
            init_usage(stderr);
            return 2;
        }
    }
    if (!shape_name || !out) {
        fprintf(stderr, "mamba-s6 init: --shape and -o are required\n\n");
        init_usage(stderr);
        return 2;
    }
    ms6_init_shape shape;
    if (ms6_init_shape_lookup(shape_name, &shape) != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 init: unknown --shape '%s' (expected one of %s)\n", shape_name,
                ms6_init_shape_names());
        return 2;
    }
    if (layers > 0) shape.n_layer = layers;
    char msg[MS6_ERRMSG_SIZE] = "";
    ms6_init_stats stats;
    double t0 = cli_now();
    ms6_status st = ms6_model_init_write(out, &shape, dtype, (uint64_t)seed, &stats, msg);
    double dt = cli_now() - t0;
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6 init: %s\n", msg);
        return 1;
    }
    printf("wrote %s: mamba-%s shape, %lld layers, d_model %lld, vocab %lld, %s, %lld tensors, "
           "%.1f M params, %.1f MB in %.2f s (%.0f MB/s)\n",
           out, shape_name, (long long)shape.n_layer, (long long)shape.d_model, (long long)shape.vocab_size,
           ms6_dtype_name(dtype), (long long)stats.n_tensors, stats.n_params / 1e6, stats.file_bytes / 1e6, dt,
           dt > 0 ? stats.file_bytes / 1e6 / dt : 0.0);
    return 0;
}
