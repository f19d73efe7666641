/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors parser
 * (ms6_st_parse on a whole file held in memory). On success every tensor's
 * bytes are read once, so AddressSanitizer sees any tensor that points
 * outside the buffer; the checks below abort on a broken invariant.
 */
#include "io/io_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy, so reads past `size` hit the redzone */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char msg[MS6_ERRMSG_SIZE];
    ms6_st *st = NULL;
    if (ms6_st_parse(buf, size, "fuzz.safetensors", &st, msg) == MS6_STATUS_OK) {
        volatile unsigned sum = 0;
        for (int64_t i = 0; i < st->n_tensors; i++) {
            const ms6_st_tensor *t = &st->tensors[i];
            const uint8_t *p = t->data;
            if (p < buf || p + t->nbytes > buf + size) abort();
            if (t->nbytes != (size_t)t->n_elements * t->elem_size) abort();
            for (size_t j = 0; j < t->nbytes; j++) sum += p[j];
            if (ms6_st_find(st, t->name) != t) abort();
        }
        (void)sum;
        ms6_st_close(st);
    } else if (st != NULL) {
        abort();
    }
    free(buf);
    return 0;
}
