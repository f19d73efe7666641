/* Sampler tests: greedy == argmax, seed determinism, the empirical
 * distribution of temperature sampling against the softmax (chi-square),
 * top-k / top-p / min-p / repetition-penalty candidate sets and
 * probabilities against an independent float64 computation on fresh random
 * logits, and bad arguments. */
#include "model/sampler.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tu_rng R;

static void random_logits(float *l, int64_t V, double scale) {
    for (int64_t i = 0; i < V; i++) l[i] = (float)(scale * tu_normal(&R));
}

static ms6_sampler *make(const ms6_sampler_params *p, int64_t V) {
    ms6_sampler *s = NULL;
    ms6_error e;
    ms6_status st = ms6_sampler_create(p, V, &s, &e);
    CHECK(st == MS6_STATUS_OK && s, "create failed: %s", e.message);
    return s;
}

/* ---------------------------------------------------- float64 reference */

typedef struct { double v; int32_t id; } ref_item;

static int cmp_ref(const void *a, const void *b) {
    const ref_item *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Independent float64 pipeline: penalty, top-k, temperature, softmax,
 * top-p, min-p. Writes keep[V] (0/1) and prob[V] (0 for dropped).
 * Returns 0 when a threshold lies within `guard` of a decision (the case
 * is ambiguous under rounding and is skipped by the caller). */
static int reference(const float *logits, int64_t V, const ms6_sampler_params *p, const int32_t *recent,
                     int n_recent, char *keep, double *prob) {
    const double guard = 1e-7;
    ref_item *it = malloc(sizeof(ref_item) * (size_t)V);
    double *l = malloc(sizeof(double) * (size_t)V);
    for (int64_t i = 0; i < V; i++) l[i] = logits[i];
    char *seen = calloc((size_t)V, 1);
    for (int j = 0; j < n_recent; j++) {
        int32_t id = recent[j];
        if (seen[id]) continue;
        seen[id] = 1;
        /* the sampler keeps penalised logits as float: round the same way */
        l[id] = (float)(l[id] > 0 ? l[id] / (double)p->repeat_penalty : l[id] * (double)p->repeat_penalty);
    }
    for (int64_t i = 0; i < V; i++) it[i] = (ref_item){l[i], (int32_t)i};
    qsort(it, (size_t)V, sizeof *it, cmp_ref);
    int64_t n = (p->top_k > 0 && p->top_k < V) ? p->top_k : V;
    int ok = 1;
    if (n < V && it[n - 1].v - it[n].v < 1e-6) ok = 0;
    double mx = it[0].v, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        it[i].v = exp((it[i].v - mx) / (double)p->temperature);
        sum += it[i].v;
    }
    for (int64_t i = 0; i < n; i++) it[i].v /= sum;
    if (p->top_p < 1.0f) {
        double cum = 0;
        int64_t k = n;
        for (int64_t i = 0; i < n; i++) {
            cum += it[i].v;
            if (fabs(cum - (double)p->top_p) < guard) ok = 0;
            if (cum >= (double)p->top_p) { k = i + 1; break; }
        }
        n = k;
    }
    if (p->min_p > 0.0f) {
        double thr = (double)p->min_p * it[0].v;
        int64_t w = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fabs(it[i].v - thr) < guard * thr) ok = 0;
            if (it[i].v >= thr) it[w++] = it[i];
        }
        n = w;
    }
    sum = 0;
    for (int64_t i = 0; i < n; i++) sum += it[i].v;
    memset(keep, 0, (size_t)V);
    for (int64_t i = 0; i < V; i++) prob[i] = 0;
    for (int64_t i = 0; i < n; i++) {
        keep[it[i].id] = 1;
        prob[it[i].id] = it[i].v / sum;
    }
    free(it);
    free(l);
    free(seen);
    return ok;
}

/* Compares the sampler's distribution with the reference. Returns 1 when
 * checked, 0 when the case was ambiguous and skipped. */
static int compare_distribution(const ms6_sampler_params *p, int64_t V, double scale, int n_recent,
                                const char *what) {
    float *lg = malloc(sizeof(float) * (size_t)V);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)V), *recent = malloc(sizeof(int32_t) * 256);
    double *probs = malloc(sizeof(double) * (size_t)V), *rp = malloc(sizeof(double) * (size_t)V);
    char *keep = malloc((size_t)V), *got = calloc((size_t)V, 1);
    random_logits(lg, V, scale);
    ms6_sampler *s = make(p, V);
    int checked = 0;
    if (!s) goto done;
    for (int j = 0; j < n_recent; j++) {
        recent[j] = (int32_t)(tu_next(&R) % (uint64_t)(V < 50 ? V : 50)); /* repeats likely */
        ms6_sampler_accept(s, recent[j]);
    }
    int nr = n_recent < p->repeat_last_n ? n_recent : p->repeat_last_n;
    if (!reference(lg, V, p, recent + (n_recent - nr), nr, keep, rp)) goto done;
    int64_t n = -1;
    ms6_status st = ms6_sampler_distribution(s, lg, ids, probs, &n);
    CHECK(st == MS6_STATUS_OK, "%s: distribution: %s", what, ms6_sampler_last_error(s));
    int64_t n_ref = 0;
    for (int64_t i = 0; i < V; i++) n_ref += keep[i];
    CHECK(n == n_ref, "%s: %lld candidates, reference %lld", what, (long long)n, (long long)n_ref);
    double maxerr = 0, total = 0;
    int outside = 0;
    for (int64_t i = 0; i < n && i < V; i++) {
        if (ids[i] < 0 || ids[i] >= V || !keep[ids[i]] || got[ids[i]]) { outside++; continue; }
        got[ids[i]] = 1;
        double e = fabs(probs[i] - rp[ids[i]]);
        if (!(e <= maxerr)) maxerr = e;
        total += probs[i];
    }
    CHECK(outside == 0, "%s: %d candidate(s) outside the reference set or repeated", what, outside);
    CHECK(maxerr < 1e-9, "%s: max probability error %.3g", what, maxerr);
    CHECK(fabs(total - 1.0) < 1e-9, "%s: probabilities sum to %.12f", what, total);
    checked = 1;
done:
    ms6_sampler_free(s);
    free(lg); free(ids); free(recent); free(probs); free(rp); free(keep); free(got);
    return checked;
}

/* ------------------------------------------------------------- tests */

static void test_greedy(void) {
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    CHECK(p.temperature == 0 && p.top_k == 0 && p.top_p == 1 && p.min_p == 0 && p.repeat_penalty == 1,
          "defaults are not greedy/off");
    int64_t V = 1000;
    ms6_sampler *s = make(&p, V);
    float *lg = malloc(sizeof(float) * (size_t)V);
    for (int t = 0; t < 50 && s; t++) {
        random_logits(lg, V, 3.0);
        if (t % 5 == 0) lg[tu_next(&R) % V] = lg[ms6_argmax(lg, V)]; /* a tie: first index wins */
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (lg[i] > lg[best]) best = i;
        int32_t id = -1;
        CHECK(ms6_sampler_sample(s, lg, &id) == MS6_STATUS_OK, "greedy sample failed");
        CHECK(id == best, "greedy picked %d, argmax %lld", id, (long long)best);
        CHECK(ms6_argmax(lg, V) == best, "ms6_argmax %d != %lld", ms6_argmax(lg, V), (long long)best);
    }
    float nanfirst[3] = {NAN, 1.0f, 2.0f};
    CHECK(ms6_argmax(nanfirst, 3) == 2, "argmax with a leading NaN = %d", ms6_argmax(nanfirst, 3));
    CHECK(ms6_argmax(NULL, 3) == -1 && ms6_argmax(lg, 0) == -1, "argmax of nothing should be -1");
    free(lg);
    ms6_sampler_free(s);
}

static void test_determinism(void) {
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    p.temperature = 0.9f;
    p.top_k = 50;
    p.top_p = 0.95f;
    p.repeat_penalty = 1.1f;
    p.seed = tu_next(&R);
    int64_t V = 2000;
    ms6_sampler *a = make(&p, V), *b = make(&p, V);
    p.seed ^= 0x5555;
    ms6_sampler *c = make(&p, V);
    float *lg = malloc(sizeof(float) * (size_t)V);
    int same = 1, differ = 0;
    for (int t = 0; t < 300 && a && b && c; t++) {
        random_logits(lg, V, 2.0);
        int32_t x, y, z;
        ms6_sampler_sample(a, lg, &x);
        ms6_sampler_sample(b, lg, &y);
        ms6_sampler_sample(c, lg, &z);
        ms6_sampler_accept(a, x);
        ms6_sampler_accept(b, y);
        ms6_sampler_accept(c, z);
        if (x != y) same = 0;
        if (x != z) differ = 1;
    }
    CHECK(same, "two samplers with the same seed diverged");
    CHECK(differ, "a different seed gave the same 300 ids");
    free(lg);
    ms6_sampler_free(a);
    ms6_sampler_free(b);
    ms6_sampler_free(c);
}

/* Chi-square of `draws` samples against the float64 softmax; 7 degrees of
 * freedom, bound 40 (p < 1e-6 under the null hypothesis). Also checks the
 * test has power: the same counts against T = 1 must be far off. */
static void test_temperature_distribution(void) {
    enum { V = 8, DRAWS = 200000 };
    float lg[V];
    random_logits(lg, V, 1.0);
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    p.temperature = 0.6f;
    p.seed = tu_next(&R);
    ms6_sampler *s = make(&p, V);
    if (!s) return;
    long count[V] = {0};
    for (int t = 0; t < DRAWS; t++) {
        int32_t id = -1;
        ms6_sampler_sample(s, lg, &id);
        if (id >= 0 && id < V) count[id]++;
        else CHECK(0, "id %d out of range", id);
    }
    double chi[2];
    double temps[2] = {0.6, 1.0};
    for (int k = 0; k < 2; k++) {
        double mx = -1e300, sum = 0, q[V];
        for (int i = 0; i < V; i++) mx = fmax(mx, lg[i]);
        for (int i = 0; i < V; i++) sum += q[i] = exp((lg[i] - mx) / temps[k]);
        chi[k] = 0;
        for (int i = 0; i < V; i++) {
            double e = DRAWS * q[i] / sum;
            chi[k] += (count[i] - e) * (count[i] - e) / e;
        }
    }
    fprintf(stderr, "  temperature 0.6: chi2 %.2f (7 dof) vs softmax; %.0f vs the T=1 softmax\n", chi[0], chi[1]);
    CHECK(chi[0] < 40.0, "chi-square %.2f >= 40 against the softmax", chi[0]);
    CHECK(chi[1] > 100.0, "test has no power: chi-square against T=1 only %.2f", chi[1]);
    ms6_sampler_free(s);
}

static void test_top_k_draws(void) {
    int64_t V = 3000;
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    p.temperature = 2.0f; /* flat: would often leave the top-k without the filter */
    p.top_k = 7;
    p.seed = tu_next(&R);
    ms6_sampler *s = make(&p, V);
    float *lg = malloc(sizeof(float) * (size_t)V);
    int bad = 0;
    for (int t = 0; t < 200 && s; t++) {
        random_logits(lg, V, 1.0);
        int32_t id;
        ms6_sampler_sample(s, lg, &id);
        int64_t greater = 0; /* rank of id: how many logits beat it */
        for (int64_t i = 0; i < V; i++)
            if (lg[i] > lg[id] || (lg[i] == lg[id] && i < id)) greater++;
        if (greater >= p.top_k) bad++;
    }
    CHECK(bad == 0, "top-k %d: %d draws outside the top k", p.top_k, bad);
    free(lg);
    ms6_sampler_free(s);
}

static void test_filters(void) {
    struct { float T; int k; float tp, mp, rep; int last_n, n_recent; int64_t V; double scale; const char *name; } cases[] = {
        {1.0f, 0, 1.0f, 0.0f, 1.0f, 64, 0, 100, 1.0, "plain softmax"},
        {0.7f, 10, 1.0f, 0.0f, 1.0f, 64, 0, 500, 2.0, "top-k 10"},
        {1.0f, 1, 1.0f, 0.0f, 1.0f, 64, 0, 500, 2.0, "top-k 1"},
        {1.0f, 1000, 1.0f, 0.0f, 1.0f, 64, 0, 50280, 2.0, "top-k 1000 (quickselect), vocab 50280"},
        {1.0f, 3000, 0.7f, 0.0f, 1.0f, 64, 0, 20000, 2.0, "top-k 3000 + top-p 0.7"},
        {1.3f, 0, 0.9f, 0.0f, 1.0f, 64, 0, 300, 2.0, "top-p 0.9"},
        {1.0f, 0, 0.5f, 0.0f, 1.0f, 64, 0, 50280, 3.0, "top-p 0.5, vocab 50280"},
        {0.8f, 0, 0.97f, 0.0f, 1.0f, 64, 0, 50280, 1.0, "top-p 0.97, flat, vocab 50280"},
        {1.0f, 0, 1.0f, 0.05f, 1.0f, 64, 0, 1000, 2.0, "min-p 0.05"},
        {0.9f, 40, 0.9f, 0.05f, 1.0f, 64, 0, 50280, 2.0, "top-k 40 + top-p + min-p"},
        {1.0f, 0, 0.8f, 0.1f, 1.0f, 64, 0, 2000, 2.0, "top-p + min-p"},
        {1.0f, 0, 1.0f, 0.0f, 1.5f, 64, 100, 200, 2.0, "repetition penalty 1.5"},
        {1.0f, 0, 1.0f, 0.0f, 0.7f, 16, 100, 200, 2.0, "repetition penalty 0.7, last 16"},
        {0.8f, 20, 0.9f, 0.02f, 1.3f, 32, 60, 5000, 2.0, "everything"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ms6_sampler_params p;
        ms6_sampler_params_init(&p);
        p.temperature = cases[c].T;
        p.top_k = cases[c].k;
        p.top_p = cases[c].tp;
        p.min_p = cases[c].mp;
        p.repeat_penalty = cases[c].rep;
        p.repeat_last_n = cases[c].last_n;
        int checked = 0;
        for (int rep = 0; rep < 10 && checked < 3; rep++)
            checked += compare_distribution(&p, cases[c].V, cases[c].scale, cases[c].n_recent, cases[c].name);
        CHECK(checked >= 3, "%s: only %d unambiguous cases in 10 tries", cases[c].name, checked);
    }
}

/* The penalty lowers the chance of recent tokens, both for positive and for
 * negative logits, and only for those within the last repeat_last_n. */
static void test_penalty_effect(void) {
    enum { V = 6 };
    float lg[V] = {2.0f, -1.0f, 1.0f, 0.5f, -0.5f, 0.0f};
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    p.temperature = 1.0f;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    ms6_sampler *s = make(&p, V), *plain = NULL;
    p.repeat_penalty = 1.0f;
    plain = make(&p, V);
    if (!s || !plain) return;
    ms6_sampler_accept(s, 2);  /* falls out of the window of 2 */
    ms6_sampler_accept(s, 0);
    ms6_sampler_accept(s, 1);
    ms6_sampler_accept(s, 1);  /* a repeat is penalised once */
    ms6_sampler_accept(s, 0);
    int32_t ids[V], ids0[V];
    double pr[V], pr0[V], a[V] = {0}, b[V] = {0};
    int64_t n, n0;
    ms6_sampler_distribution(s, lg, ids, pr, &n);
    ms6_sampler_distribution(plain, lg, ids0, pr0, &n0);
    for (int i = 0; i < n; i++) a[ids[i]] = pr[i];
    for (int i = 0; i < n0; i++) b[ids0[i]] = pr0[i];
    CHECK(a[0] < b[0] && a[1] < b[1], "penalised ids not less likely: %g/%g %g/%g", a[0], b[0], a[1], b[1]);
    CHECK(a[2] > b[2], "id 2 (outside the window) should gain probability");
    /* exact: logits become 1.0 (2/2) and -2.0 (-1*2) */
    double z = exp(1.0) + exp(-2.0) + exp(1.0) + exp(0.5) + exp(-0.5) + exp(0.0);
    CHECK(fabs(a[0] - exp(1.0) / z) < 1e-12 && fabs(a[1] - exp(-2.0) / z) < 1e-12,
          "penalised probabilities %g %g, expected %g %g", a[0], a[1], exp(1.0) / z, exp(-2.0) / z);
    ms6_sampler_free(s);
    ms6_sampler_free(plain);
}

static void expect_bad(const ms6_sampler_params *p, int64_t V, const char *what) {
    ms6_sampler *s = (ms6_sampler *)0x1;
    ms6_error e;
    memset(&e, 0, sizeof e);
    ms6_status st = ms6_sampler_create(p, V, &s, &e);
    CHECK(st == MS6_STATUS_INVALID_ARGUMENT, "%s: status %d", what, (int)st);
    CHECK(s == NULL, "%s: *out not NULL on failure", what);
    CHECK(e.status == MS6_STATUS_INVALID_ARGUMENT && strlen(e.message) > 10, "%s: no message", what);
    if (st == MS6_STATUS_OK) ms6_sampler_free(s);
}

static void test_bad_input(void) {
    ms6_sampler_params p;
    ms6_sampler_params_init(&p);
    ms6_sampler_params q = p;
    q.temperature = -0.5f;
    expect_bad(&q, 10, "negative temperature");
    q = p; q.temperature = NAN;
    expect_bad(&q, 10, "NaN temperature");
    q = p; q.top_p = 1.5f;
    expect_bad(&q, 10, "top_p > 1");
    q = p; q.top_p = 0.0f;
    expect_bad(&q, 10, "top_p = 0");
    q = p; q.min_p = -0.1f;
    expect_bad(&q, 10, "negative min_p");
    q = p; q.top_k = -3;
    expect_bad(&q, 10, "negative top_k");
    q = p; q.repeat_penalty = 0.0f;
    expect_bad(&q, 10, "zero repeat_penalty");
    q = p; q.repeat_last_n = -1;
    expect_bad(&q, 10, "negative repeat_last_n");
    expect_bad(&p, 0, "vocab 0");
    expect_bad(NULL, 10, "NULL params");
    ms6_error e;
    CHECK(ms6_sampler_create(&p, 10, NULL, &e) == MS6_STATUS_INVALID_ARGUMENT, "NULL out accepted");
    CHECK(strstr(e.message, "out") != NULL, "NULL out: message '%s'", e.message);

    for (int greedy = 0; greedy < 2; greedy++) {
        q = p;
        q.temperature = greedy ? 0.0f : 1.0f;
        ms6_sampler *s = make(&q, 10);
        if (!s) return;
        float lg[10] = {0};
        int32_t id;
        lg[7] = NAN;
        CHECK(ms6_sampler_sample(s, lg, &id) == MS6_STATUS_INVALID_ARGUMENT, "NaN logit accepted");
        CHECK(strstr(ms6_sampler_last_error(s), "NaN") && strstr(ms6_sampler_last_error(s), "[7]"),
              "NaN message: '%s'", ms6_sampler_last_error(s));
        lg[7] = INFINITY;
        CHECK(ms6_sampler_sample(s, lg, &id) == MS6_STATUS_INVALID_ARGUMENT, "+inf logit accepted");
        for (int i = 0; i < 10; i++) lg[i] = -INFINITY;
        if (!greedy)
            CHECK(ms6_sampler_sample(s, lg, &id) == MS6_STATUS_INVALID_ARGUMENT, "all -inf accepted");
        lg[3] = 1.0f; /* -inf elsewhere is a valid mask */
        CHECK(ms6_sampler_sample(s, lg, &id) == MS6_STATUS_OK && id == 3, "masked logits: got %d", id);
        CHECK(ms6_sampler_sample(s, NULL, &id) == MS6_STATUS_INVALID_ARGUMENT, "NULL logits accepted");
        CHECK(ms6_sampler_sample(s, lg, NULL) == MS6_STATUS_INVALID_ARGUMENT, "NULL out_id accepted");
        ms6_sampler_accept(s, -5); /* ignored, no crash */
        ms6_sampler_accept(s, 1000);
        ms6_sampler_free(s);
    }
    CHECK(ms6_sampler_sample(NULL, NULL, NULL) == MS6_STATUS_INVALID_ARGUMENT, "NULL sampler accepted");
    ms6_sampler_free(NULL);
    ms6_sampler_accept(NULL, 1);
}

/* Not a timed test: prints the cost per draw on a 50280 vocabulary. */
static void report_speed(void) {
    int64_t V = 50280;
    float *lg = malloc(sizeof(float) * (size_t)V);
    random_logits(lg, V, 3.0);
    const char *names[3] = {"top-k 40, T 0.8", "top-p 0.95, T 0.8", "T 1.0, no filter"};
    for (int c = 0; c < 3; c++) {
        ms6_sampler_params p;
        ms6_sampler_params_init(&p);
        p.temperature = c == 2 ? 1.0f : 0.8f;
        p.top_k = c == 0 ? 40 : 0;
        p.top_p = c == 1 ? 0.95f : 1.0f;
        ms6_sampler *s = make(&p, V);
        if (!s) break;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int32_t id;
        for (int t = 0; t < 50; t++) ms6_sampler_sample(s, lg, &id);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / 50;
        fprintf(stderr, "  vocab 50280, %-18s: %.0f us/sample\n", names[c], us);
        ms6_sampler_free(s);
    }
    free(lg);
}

int main(void) {
    tu_rng_init(&R, tu_seed("test_sampler"));
    test_greedy();
    test_determinism();
    test_temperature_distribution();
    test_top_k_draws();
    test_filters();
    test_penalty_effect();
    test_bad_input();
    report_speed();
    return tu_finish("test_sampler");
}
