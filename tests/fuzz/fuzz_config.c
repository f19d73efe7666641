/*
 * fuzz_config.c - libFuzzer target for the config.json reader
 * (ms6_config_parse). Any input must either fail with a message or give a
 * config whose sizes are all inside the ranges the loader relies on.
 */
#include "io/io_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char msg[MS6_ERRMSG_SIZE];
    ms6_config_ext c;
    if (ms6_config_parse(buf, size, "fuzz/config.json", &c, msg) == MS6_STATUS_OK) {
        const ms6_model_config *p = &c.pub;
        if (p->d_model < 1 || p->d_inner < 1 || p->n_layer < 1 || p->vocab_size < 1 || p->dt_rank < 1) abort();
        if (p->d_state < 1 || p->d_state > MS6_MAX_D_STATE) abort();
        if (p->d_conv < 2 || p->d_conv > MS6_MAX_D_CONV) abort();
        if (!(p->norm_eps > 0.0f)) abort();
        if (p->vocab_size < c.vocab_size_cfg) abort();
        if (strcmp(p->model_type, "mamba") && strcmp(p->model_type, "falcon_mamba")) abort();
    } else if (!msg[0]) {
        abort();
    }
    free(buf);
    return 0;
}
