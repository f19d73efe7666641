/* Small helpers shared by the test programs. */
#ifndef MS6_TESTUTIL_H
#define MS6_TESTUTIL_H

#include "mamba_s6.h"

#include <stdint.h>
#include <stdio.h>

#define TEST_SKIP 77

extern int tu_failures;

/* Reports and counts a failed check; the test exits non-zero at the end. */
#define CHECK(cond, ...)                                                          \
    do {                                                                         \
        if (!(cond)) {                                                           \
            tu_failures++;                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* Seeds from time and pid unless MS6_TEST_SEED is set; prints the seed. */
uint64_t tu_seed(const char *test_name);
/* xoshiro-style generator. */
typedef struct { uint64_t s[4]; } tu_rng;
void tu_rng_init(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_uniform(tu_rng *r);                 /* [0, 1) */
double tu_uniform_range(tu_rng *r, double a, double b);
double tu_normal(tu_rng *r);

/* Relative L2 error ||a-b||/||b|| and max abs error; returns 1 if any NaN/inf in a. */
int tu_compare(const double *a, const double *ref, int64_t n, double *rel, double *maxabs);

/* Ends a test: prints "N passed, N failed" style summary and returns exit code. */
int tu_finish(const char *name);

/* Whole file, NUL-terminated (malloc'ed; free it); NULL when it cannot be
 * read. *len (optional) receives the byte count. */
char *tu_read_file(const char *path, size_t *len);

/* Path under the source tree. */
const char *tu_source_path(const char *rel, char *buf, size_t cap);

#endif
