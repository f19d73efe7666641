/*
 * test_batch.c - the ms6_batch API on the CPU backend: sequences of
 * different lengths decoded together give the same logits as each decoded
 * alone in a session (tests/batch_check.h), on the golden checkpoints under
 * tests/golden/models (skipped when absent).
 */
#include "batch_check.h"

#include <stdio.h>

static void one(const char *name, tu_rng *rng) {
    char dir[1024], rel[256];
    snprintf(rel, sizeof rel, "tests/golden/models/%s", name);
    tu_source_path(rel, dir, sizeof dir);
    ms6_model_options o;
    ms6_model_options_init(&o);
    o.backend = MS6_BACKEND_CPU;
    o.prefill_chunk = 4; /* the 13-token prompt takes several chunks */
    ms6_model *m = NULL;
    ms6_error err;
    if (ms6_model_load(dir, &o, &m, &err) != MS6_STATUS_OK) {
        CHECK(0, "%s: %s", name, err.message);
        return;
    }
    batch_check(m, name, rng, 1e-4);
    ms6_model_free(m);
}

int main(void) {
    tu_rng rng;
    tu_rng_init(&rng, tu_seed("test_batch"));
    char probe[1024];
    FILE *f = fopen(tu_source_path("tests/golden/models/mamba_f32_tied/config.json", probe, sizeof probe), "rb");
    if (!f) {
        printf("skip: no golden models\n");
        return TEST_SKIP;
    }
    fclose(f);
    one("mamba_f32_tied", &rng);
    one("falcon_bf16_untied_n8_k3", &rng);
    one("mamba_f16_n4_k2_nobias", &rng);
    return tu_finish("test_batch");
}
