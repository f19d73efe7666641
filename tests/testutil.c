#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int tu_failures = 0;

uint64_t tu_seed(const char *test_name) {
    const char *env = getenv("MS6_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10)
                        : ((uint64_t)time(NULL) * 6364136223846793005ull) ^ (uint64_t)getpid();
    fprintf(stderr, "%s: seed %llu (set MS6_TEST_SEED to repeat)\n", test_name, (unsigned long long)seed);
    return seed;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tu_rng_init(tu_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tu_next(tu_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0); }
double tu_uniform_range(tu_rng *r, double a, double b) { return a + (b - a) * tu_uniform(r); }
double tu_normal(tu_rng *r) {
    double u1 = tu_uniform(r), u2 = tu_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int tu_compare(const double *a, const double *ref, int64_t n, double *rel, double *maxabs) {
    double num = 0, den = 0, mx = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) bad = 1;
        double d = fabs(a[i] - ref[i]);
        num += d * d;
        den += ref[i] * ref[i];
        if (d > mx || isnan(d)) mx = d;
    }
    *rel = den > 0 ? sqrt(num / den) : sqrt(num);
    *maxabs = mx;
    if (bad) { *rel = NAN; *maxabs = NAN; }
    return bad;
}

int tu_finish(const char *name) {
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", name);
    return 0;
}

const char *tu_source_path(const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", MS6_SOURCE_DIR, rel);
    return buf;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}
