#include "cli.h"
#include "core/threadpool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int cli_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "mamba-s6: %s expects an integer in %lld..%lld, got '%s'\n", opt, lo, hi, s ? s : "");
        return 1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mamba-s6: %s expects a number in %g..%g, got '%s'\n", opt, lo, hi, s ? s : "");
        return 1;
    }
    *out = v;
    return 0;
}

int cli_parse_ids(const char *s, int32_t **ids, int64_t *n) {
    *ids = NULL;
    *n = 0;
    int64_t cap = 16, cnt = 0;
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)cap);
    if (!buf) return 1;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "mamba-s6: --ids: '%.20s' is not a token id (non-negative integer)\n", p);
            free(buf);
            return 1;
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nb = realloc(buf, sizeof(int32_t) * (size_t)cap);
            if (!nb) { free(buf); return 1; }
            buf = nb;
        }
        buf[cnt++] = (int32_t)v;
        p = end;
    }
    if (cnt == 0) {
        fprintf(stderr, "mamba-s6: --ids: no token ids given\n");
        free(buf);
        return 1;
    }
    *ids = buf;
    *n = cnt;
    return 0;
}

double cli_now(void) { return ms6_monotonic_s(); }
