/*
 * safetensors.c - reads safetensors checkpoints through mmap.
 *
 * File layout: u64 little-endian header length n, n bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * "__metadata__": {..}}), then the data section; offsets are relative to
 * its start. Nothing in the header is trusted: the length is checked
 * against the file size, every offset against the data section, shape x
 * element size is computed with overflow checks and must equal end - begin,
 * and no two tensors may overlap. Sharded checkpoints list their tensors in
 * model.safetensors.index.json ({"weight_map": {"name": "shard file"}}).
 * The JSON itself is parsed by cJSON.
 */
#include "io/io_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    size_t size;
    int supported;
    ms6_dtype dtype;
} dtype_info;

/* Every dtype the safetensors format defines; only the first three load. */
static const dtype_info dtypes[] = {
    {"F32", 4, 1, MS6_DTYPE_F32},   {"F16", 2, 1, MS6_DTYPE_F16},   {"BF16", 2, 1, MS6_DTYPE_BF16},
    {"F64", 8, 0, MS6_DTYPE_F32},   {"I64", 8, 0, MS6_DTYPE_F32},   {"U64", 8, 0, MS6_DTYPE_F32},
    {"I32", 4, 0, MS6_DTYPE_F32},   {"U32", 4, 0, MS6_DTYPE_F32},   {"I16", 2, 0, MS6_DTYPE_F32},
    {"U16", 2, 0, MS6_DTYPE_F32},   {"I8", 1, 0, MS6_DTYPE_F32},    {"U8", 1, 0, MS6_DTYPE_F32},
    {"BOOL", 1, 0, MS6_DTYPE_F32},  {"F8_E4M3", 1, 0, MS6_DTYPE_F32}, {"F8_E5M2", 1, 0, MS6_DTYPE_F32},
};

static const dtype_info *find_dtype(const char *s) {
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, s)) return &dtypes[i];
    return NULL;
}

/* JSON numbers are doubles: accept only non-negative integers exactly
 * representable (< 2^53). */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static void free_tensors(ms6_st_tensor *t, int64_t n) {
    if (!t) return;
    for (int64_t i = 0; i < n; i++) free(t[i].name);
    free(t);
}

void ms6_st_close(ms6_st *st) {
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].owns_map && st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    free_tensors(st->tensors, st->n_tensors);
    free(st->source);
    free(st);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const ms6_st_tensor *)a)->name, ((const ms6_st_tensor *)b)->name);
}

typedef struct {
    size_t begin, end;
    int64_t idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Sorts by name and rejects duplicates. */
static ms6_status sort_and_check_names(ms6_st *st, char *msg) {
    if (st->n_tensors > 1) qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_name);
    for (int64_t i = 1; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name))
            return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "tensor '%s' appears twice (in %s and %s)",
                                 st->tensors[i].name, st->files[st->tensors[i - 1].file].path,
                                 st->files[st->tensors[i].file].path);
    return MS6_STATUS_OK;
}

static ms6_status parse_entry(const cJSON *e, const char *path, size_t data_size, ms6_st_tensor *t,
                              size_t *begin_out, char *msg) {
    const char *name = e->string;
#define BAD(...) return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, __VA_ARGS__)
    if (!cJSON_IsObject(e)) BAD("%s: header entry for tensor '%s' is not a JSON object", path, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) BAD("%s: tensor '%s' has no \"dtype\" string", path, name);
    if (!cJSON_IsArray(shape)) BAD("%s: tensor '%s' has no \"shape\" array", path, name);
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        BAD("%s: tensor '%s' has no \"data_offsets\" [begin, end] array", path, name);
    const dtype_info *di = find_dtype(dt->valuestring);
    if (!di)
        BAD("%s: tensor '%s' has unknown dtype '%.16s' (mamba-s6 loads F32, F16 and BF16)", path, name,
            dt->valuestring);
    snprintf(t->st_dtype, sizeof t->st_dtype, "%s", di->name);
    t->supported = di->supported;
    t->dtype = di->dtype;
    t->elem_size = di->size;
    int nd = cJSON_GetArraySize(shape);
    if (nd > MS6_ST_MAX_DIMS) BAD("%s: tensor '%s' has %d dimensions (at most %d)", path, name, nd, MS6_ST_MAX_DIMS);
    t->n_dims = nd;
    /* n_elements = prod(shape), nbytes = n_elements * elem_size, both
     * checked against overflow of int64 / size_t. */
    uint64_t count = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (!json_uint(d, &v)) BAD("%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        t->shape[i++] = (int64_t)v;
        if (v != 0 && count > (uint64_t)INT64_MAX / v)
            BAD("%s: tensor '%s': shape overflows (element count past 2^63)", path, name);
        count *= v;
    }
    t->n_elements = (int64_t)count;
    size_t nbytes;
    if (count > SIZE_MAX || !ms6_mul_ok((size_t)count, di->size, &nbytes))
        BAD("%s: tensor '%s': shape x dtype size overflows", path, name);
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(offs, 0), &b) || !json_uint(cJSON_GetArrayItem(offs, 1), &en))
        BAD("%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (b > en) BAD("%s: tensor '%s': data_offsets [%llu, %llu] run backwards", path, name,
                    (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        BAD("%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data section (%zu bytes)",
            path, name, (unsigned long long)b, (unsigned long long)en, data_size);
    if (en - b != nbytes)
        BAD("%s: tensor '%s': data_offsets span %llu bytes but shape x dtype (%s) needs %zu", path, name,
            (unsigned long long)(en - b), di->name, nbytes);
    t->nbytes = nbytes;
    *begin_out = (size_t)b;
    return MS6_STATUS_OK;
#undef BAD
}

ms6_status ms6_st_parse(const void *buf, size_t size, const char *path, ms6_st **out, char *msg) {
    *out = NULL;
    const unsigned char *p = buf;
    if (size < 8)
        return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR,
                             "%s: file is %zu bytes, too short for a safetensors header", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > size - 8)
        return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR,
                             "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                             path, (unsigned long long)hlen, size);
    if (hlen > MS6_ST_MAX_HEADER)
        return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: header length %llu is past the 100 MB limit",
                             path, (unsigned long long)hlen);
    const size_t data_offset = 8 + (size_t)hlen, data_size = size - data_offset;
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!root)
        return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: header is not valid JSON", path);
    ms6_status st = MS6_STATUS_OK;
    ms6_st *s = calloc(1, sizeof *s);
    span *spans = NULL;
    if (!s) goto oom;
    if (!cJSON_IsObject(root)) {
        st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: header is not a JSON object", path);
        goto fail;
    }
    s->files = calloc(1, sizeof *s->files);
    s->source = strdup(path);
    if (!s->files || !s->source) goto oom;
    s->n_files = 1;
    s->files[0].path = strdup(path);
    if (!s->files[0].path) goto oom;
    s->files[0].map = (void *)buf;
    s->files[0].size = size;
    s->files[0].data_offset = data_offset;
    int n = cJSON_GetArraySize(root);
    s->tensors = calloc((size_t)(n ? n : 1), sizeof *s->tensors);
    spans = calloc((size_t)(n ? n : 1), sizeof *spans);
    if (!s->tensors || !spans) goto oom;
    const cJSON *e;
    int64_t k = 0;
    cJSON_ArrayForEach(e, root) {
        if (!strcmp(e->string, "__metadata__")) continue;
        ms6_st_tensor *t = &s->tensors[k];
        size_t begin = 0;
        st = parse_entry(e, path, data_size, t, &begin, msg);
        if (st != MS6_STATUS_OK) goto fail;
        t->name = strdup(e->string);
        if (!t->name) goto oom;
        t->data = p + data_offset + begin;
        spans[k] = (span){begin, begin + t->nbytes, k};
        s->n_tensors = ++k;
    }
    /* No two tensors may share bytes: sort by begin, each must start at or
     * after the end of the one before. Empty tensors occupy nothing. */
    qsort(spans, (size_t)k, sizeof *spans, cmp_span);
    size_t prev_end = 0;
    int64_t prev = -1;
    for (int64_t i = 0; i < k; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev >= 0 && spans[i].begin < prev_end) {
            st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: tensors '%s' and '%s' overlap in the data section",
                               path, s->tensors[spans[prev].idx].name, s->tensors[spans[i].idx].name);
            goto fail;
        }
        prev_end = spans[i].end;
        prev = i;
    }
    st = sort_and_check_names(s, msg);
    if (st != MS6_STATUS_OK) goto fail;
    free(spans);
    cJSON_Delete(root);
    *out = s;
    return MS6_STATUS_OK;
oom:
    st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory reading the header", path);
fail:
    free(spans);
    cJSON_Delete(root);
    ms6_st_close(s); /* the caller's buffer is not owned: nothing is unmapped */
    return st;
}

ms6_status ms6_st_open_file(const char *path, ms6_st **out, char *msg) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);
    static const unsigned char empty[1];
    ms6_status st = ms6_st_parse(map ? map : empty, size, path, out, msg);
    if (st != MS6_STATUS_OK) {
        if (map) munmap(map, size);
        return st;
    }
    (*out)->files[0].map = map;
    (*out)->files[0].owns_map = map != NULL;
    return MS6_STATUS_OK;
}

const ms6_st_tensor *ms6_st_find(const ms6_st *st, const char *name) {
    if (!st || !name) return NULL;
    int64_t lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *ms6_st_tensor_path(const ms6_st *st, const ms6_st_tensor *t) {
    return (t && t->file >= 0 && t->file < st->n_files) ? st->files[t->file].path : st->source;
}

ms6_status ms6_read_file(const char *path, char **data, size_t *len, size_t max_len, char *msg) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "'%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > max_len) {
        fclose(f);
        return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "'%s' is %lld bytes, more than the %zu accepted", path,
                             (long long)sb.st_size, max_len);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory reading '%s'", path);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "short read on '%s'", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return MS6_STATUS_OK;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Appends the tensors and file of `part` to `st` (part is consumed). */
static ms6_status absorb(ms6_st *st, ms6_st *part, char *msg) {
    ms6_st_file *nf = realloc(st->files, sizeof *nf * (size_t)(st->n_files + 1));
    if (!nf) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory opening shards");
    st->files = nf;
    ms6_st_tensor *nt = realloc(st->tensors, sizeof *nt * (size_t)(st->n_tensors + part->n_tensors + 1));
    if (!nt) return ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory opening shards");
    st->tensors = nt;
    st->files[st->n_files] = part->files[0];
    for (int64_t i = 0; i < part->n_tensors; i++) {
        nt[st->n_tensors + i] = part->tensors[i];
        nt[st->n_tensors + i].file = st->n_files;
    }
    st->n_files++;
    st->n_tensors += part->n_tensors;
    part->n_files = 0;
    part->n_tensors = 0;
    ms6_st_close(part);
    return MS6_STATUS_OK;
}

static ms6_status open_index(const char *dir, const char *index_path, ms6_st **out, char *msg) {
    char *text;
    size_t len;
    ms6_status st = ms6_read_file(index_path, &text, &len, 64u << 20, msg);
    if (st != MS6_STATUS_OK) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: not valid JSON", index_path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    ms6_st *set = calloc(1, sizeof *set);
    char **names = NULL;
    int n_names = 0;
    if (!set || !(set->source = strdup(index_path))) {
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory reading %s", index_path);
        goto done;
    }
    if (!cJSON_IsObject(wm) || cJSON_GetArraySize(wm) == 0) {
        st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: no \"weight_map\" object", index_path);
        goto done;
    }
    names = calloc((size_t)cJSON_GetArraySize(wm), sizeof *names);
    if (!names) {
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory reading %s", index_path);
        goto done;
    }
    /* Unique shard names, in order of first appearance. A shard name is a
     * plain file name inside dir: no '/' and no leading '.'. */
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') || e->valuestring[0] == '.') {
            st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR,
                               "%s: weight_map entry for '%s' is not a shard file name in the directory",
                               index_path, e->string);
            goto done;
        }
        int seen = 0;
        for (int i = 0; i < n_names && !seen; i++) seen = !strcmp(names[i], e->valuestring);
        if (!seen) names[n_names++] = e->valuestring;
    }
    for (int i = 0; i < n_names; i++) {
        char *path = join_path(dir, names[i]);
        if (!path) {
            st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        ms6_st *part;
        st = ms6_st_open_file(path, &part, msg);
        free(path);
        if (st != MS6_STATUS_OK) goto done;
        st = absorb(set, part, msg);
        if (st != MS6_STATUS_OK) {
            ms6_st_close(part);
            goto done;
        }
    }
    st = sort_and_check_names(set, msg);
    if (st != MS6_STATUS_OK) goto done;
    /* Every tensor of the weight map must be in the shard it names. */
    cJSON_ArrayForEach(e, wm) {
        const ms6_st_tensor *t = ms6_st_find(set, e->string);
        const char *want = e->valuestring;
        if (!t) {
            st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "tensor '%s' listed in %s is missing from %s/%s",
                               e->string, index_path, dir, want);
            goto done;
        }
        const char *have = strrchr(set->files[t->file].path, '/');
        have = have ? have + 1 : set->files[t->file].path;
        if (strcmp(have, want)) {
            st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "tensor '%s': %s places it in %s but it is in %s",
                               e->string, index_path, want, have);
            goto done;
        }
    }
done:
    free(names);
    cJSON_Delete(root);
    if (st != MS6_STATUS_OK) {
        ms6_st_close(set);
        return st;
    }
    *out = set;
    return MS6_STATUS_OK;
}

ms6_status ms6_st_open_dir(const char *dir, ms6_st **out, char *msg) {
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "cannot open model directory '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "'%s' is not a directory (expected a model directory with "
                                                       "config.json and model.safetensors)", dir);
    char *single = join_path(dir, "model.safetensors");
    char *index = join_path(dir, "model.safetensors.index.json");
    char *bin = join_path(dir, "pytorch_model.bin");
    ms6_status st;
    if (!single || !index || !bin) {
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "out of memory");
    } else if (file_exists(single)) {
        st = ms6_st_open_file(single, out, msg);
    } else if (file_exists(index)) {
        st = open_index(dir, index, out, msg);
    } else if (file_exists(bin)) {
        st = ms6_fmt_error(msg, MS6_STATUS_UNSUPPORTED,
                           "%s holds pytorch_model.bin (a pickle, never read by mamba-s6); convert it to "
                           "model.safetensors first", dir);
    } else {
        st = ms6_fmt_error(msg, MS6_STATUS_IO_ERROR, "no model.safetensors or model.safetensors.index.json in '%s'",
                           dir);
    }
    free(single);
    free(index);
    free(bin);
    return st;
}
