/* Streaming safetensors writer (see st_write.h): header from cJSON, data
 * appended in list order through a FILE with a large buffer. */
#include "io/st_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ms6_stw {
    FILE *f;
    char *path;
    size_t *sizes;        /* (n,) bytes per tensor */
    int64_t n, cur;       /* tensor being written */
    size_t cur_done;      /* bytes of tensor `cur` written */
    char *buf;            /* stdio buffer */
};

static const char *st_dtype_name(ms6_dtype t) {
    switch (t) {
    case MS6_DTYPE_F32: return "F32";
    case MS6_DTYPE_F16: return "F16";
    case MS6_DTYPE_BF16: return "BF16";
    }
    return NULL;
}

size_t ms6_stw_tensor_bytes(const ms6_stw_tensor *t, int *ok) {
    *ok = 0;
    size_t es = ms6_dtype_size(t->dtype), total = es;
    if (es == 0 || t->n_dims < 0 || t->n_dims > MS6_STW_MAX_DIMS) return 0;
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] < 0 || !ms6_mul_ok(total, (size_t)t->shape[d], &total)) return 0;
    }
    *ok = 1;
    return total;
}

static void stw_free(ms6_stw *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->path);
    free(w->sizes);
    free(w->buf);
    free(w);
}

ms6_status ms6_stw_open(const char *path, const ms6_stw_tensor *tensors, int64_t n, ms6_stw **out,
                        char *msg) {
    if (!out) return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "safetensors writer: out is NULL");
    *out = NULL;
    if (!path || (!tensors && n > 0) || n < 0)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "safetensors writer: NULL path or tensor list");
    ms6_status st = MS6_STATUS_OK;
    char *header = NULL;
    ms6_stw *w = calloc(1, sizeof *w);
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!w || !root || !meta || !(w->path = strdup(path)) ||
        !(w->sizes = malloc(sizeof(size_t) * (size_t)(n > 0 ? n : 1)))) {
        cJSON_Delete(meta);
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory building the header", path);
        goto fail;
    }
    w->n = n;
    cJSON_AddItemToObject(root, "__metadata__", meta);
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t offset = 0;
    for (int64_t i = 0; i < n; i++) {
        const ms6_stw_tensor *t = &tensors[i];
        int ok;
        size_t bytes = ms6_stw_tensor_bytes(t, &ok);
        if (!t->name || !t->name[0] || !strcmp(t->name, "__metadata__")) {
            st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "%s: tensor %lld has an empty or reserved name",
                               path, (long long)i);
            goto fail;
        }
        if (!st_dtype_name(t->dtype) || !ok || offset + bytes < offset) {
            st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                               "%s: tensor '%s': bad dtype, rank or shape (or size overflow)", path, t->name);
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(root, t->name)) {
            st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "%s: tensor name '%s' appears twice", path,
                               t->name);
            goto fail;
        }
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!o || !shape || !offs) {
            cJSON_Delete(o);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory building the header", path);
            goto fail;
        }
        cJSON_AddItemToObject(root, t->name, o);
        cJSON_AddStringToObject(o, "dtype", st_dtype_name(t->dtype));
        /* JSON numbers are doubles in cJSON: exact up to 2^53 */
        for (int d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + bytes)));
        cJSON_AddItemToObject(o, "data_offsets", offs);
        w->sizes[i] = bytes;
        offset += bytes;
    }
    if (offset > ((size_t)1 << 53)) {
        st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "%s: data larger than 2^53 bytes", path);
        goto fail;
    }
    header = cJSON_PrintUnformatted(root);
    if (!header) {
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory printing the header", path);
        goto fail;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    w->f = fopen(path, "wb");
    if (!w->f) {
        st = ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: cannot create: %s", path, strerror(errno));
        goto fail;
    }
    w->buf = malloc((size_t)1 << 22);
    if (w->buf) setvbuf(w->f, w->buf, _IOFBF, (size_t)1 << 22);
    unsigned char len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    int bad = fwrite(len8, 1, 8, w->f) != 8 || fwrite(header, 1, hlen, w->f) != hlen;
    for (size_t i = hlen; i < padded && !bad; i++) bad = fputc(' ', w->f) == EOF;
    if (bad) {
        st = ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: write failed: %s", path, strerror(errno));
        goto fail;
    }
    while (w->cur < w->n && w->sizes[w->cur] == 0) w->cur++;
    cJSON_free(header);
    cJSON_Delete(root);
    *out = w;
    return MS6_STATUS_OK;
fail:
    cJSON_free(header);
    cJSON_Delete(root);
    if (w && w->f) {
        fclose(w->f);
        w->f = NULL;
        remove(path);
    }
    stw_free(w);
    return st;
}

int64_t ms6_stw_current(const ms6_stw *w) { return w ? w->cur : 0; }

ms6_status ms6_stw_write(ms6_stw *w, const void *data, size_t bytes, char *msg) {
    if (!w || (!data && bytes))
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "safetensors writer: NULL writer or data");
    const unsigned char *p = data;
    while (bytes > 0) {
        if (w->cur >= w->n)
            return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                                 "%s: %zu bytes written past the last tensor", w->path, bytes);
        size_t room = w->sizes[w->cur] - w->cur_done, k = bytes < room ? bytes : room;
        if (fwrite(p, 1, k, w->f) != k)
            return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: write failed: %s", w->path, strerror(errno));
        p += k;
        bytes -= k;
        w->cur_done += k;
        if (w->cur_done == w->sizes[w->cur]) {
            w->cur_done = 0;
            w->cur++;
            while (w->cur < w->n && w->sizes[w->cur] == 0) w->cur++;
        }
    }
    return MS6_STATUS_OK;
}

ms6_status ms6_stw_close(ms6_stw *w, char *msg) {
    if (!w) return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "safetensors writer: NULL writer");
    ms6_status st = MS6_STATUS_OK;
    if (w->cur < w->n) {
        st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "%s: closed with tensor %lld of %lld incomplete",
                           w->path, (long long)w->cur, (long long)w->n);
    }
    int bad = fflush(w->f) != 0 || ferror(w->f);
    int cerr = fclose(w->f);
    w->f = NULL;
    if (st == MS6_STATUS_OK && (bad || cerr != 0))
        st = ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "%s: write failed (disk full?): %s", w->path, strerror(errno));
    if (st != MS6_STATUS_OK) remove(w->path);
    stw_free(w);
    return st;
}

void ms6_stw_abort(ms6_stw *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    remove(w->path);
    stw_free(w);
}

ms6_status ms6_stw_write_file(const char *path, const ms6_stw_tensor *tensors, int64_t n,
                              const void *const *data, char *msg) {
    ms6_stw *w;
    ms6_status st = ms6_stw_open(path, tensors, n, &w, msg);
    if (st != MS6_STATUS_OK) return st;
    for (int64_t i = 0; i < n; i++) {
        int ok;
        size_t bytes = ms6_stw_tensor_bytes(&tensors[i], &ok);
        st = ms6_stw_write(w, data ? data[i] : NULL, bytes, msg);
        if (st != MS6_STATUS_OK) {
            ms6_stw_abort(w);
            return st;
        }
    }
    return ms6_stw_close(w, msg);
}
