/* Token sampler: repetition penalty, top-k, temperature, softmax, top-p,
 * min-p, then one draw from a seeded xoshiro256** generator owned by the
 * sampler (same seed + same logits + same accepted ids = same output).
 *
 * Cost for a vocabulary V: one copy of the logits, O(V) selection for
 * top-k (a k-heap for k <= 256, quickselect above; only the k survivors are
 * sorted), and for top-p without top-k one bucketing pass by logit that
 * leaves only the head of the distribution to sort, so a 50k vocabulary is
 * never fully sorted.
 *
 * Numerics: the softmax subtracts the largest logit and accumulates in
 * double; probabilities are double until the draw. Candidates are ordered
 * by (logit descending, id ascending), so ties are broken the same way on
 * every run and every platform. */
#include "core/internal.h"
#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct ms6_sampler {
    ms6_sampler_params p;
    int64_t vocab;
    uint64_t rng[4];        /* xoshiro256** state */
    int32_t *recent;        /* (repeat_last_n,) ring of accepted ids */
    int64_t n_recent, recent_pos;
    cand *c;                /* (vocab,) candidate scratch */
    double *prob;           /* (vocab,) probabilities of c[i] */
    uint8_t *mark;          /* (vocab,) penalty de-duplication, kept all-zero */
    char err[MS6_ERRMSG_SIZE];
};

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t *s) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_uniform(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

/* ------------------------------------------------------------ params */

void ms6_sampler_params_init(ms6_sampler_params *p) {
    if (!p) return;
    p->temperature = 0.0f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.0f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0;
}

static ms6_status check_params(const ms6_sampler_params *p, int64_t vocab, char *msg) {
    if (!p) return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: params is NULL");
    if (vocab < 1 || vocab > INT32_MAX)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                             "sampler: vocab_size %lld must be in 1..%d", (long long)vocab, INT32_MAX);
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                             "sampler: temperature %g must be finite and >= 0 (0 = greedy)", p->temperature);
    if (p->top_k < 0)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: top_k %d must be >= 0 (0 = off)",
                             p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: top_p %g must be in (0, 1] (1 = off)",
                             p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: min_p %g must be in [0, 1] (0 = off)",
                             p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT,
                             "sampler: repeat_penalty %g must be finite and > 0 (1 = off)", p->repeat_penalty);
    if (p->repeat_last_n < 0)
        return ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: repeat_last_n %d must be >= 0",
                             p->repeat_last_n);
    return MS6_STATUS_OK;
}

ms6_status ms6_sampler_create(const ms6_sampler_params *p, int64_t vocab_size, ms6_sampler **out,
                              ms6_error *err) {
    char msg[MS6_ERRMSG_SIZE];
    ms6_status st;
    if (!out) {
        st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "sampler: out is NULL");
        ms6_error_set(err, st, msg);
        return st;
    }
    *out = NULL;
    st = check_params(p, vocab_size, msg);
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, msg);
        return st;
    }
    ms6_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->p = *p;
        s->vocab = vocab_size;
        s->c = malloc(sizeof(cand) * (size_t)vocab_size);
        s->prob = malloc(sizeof(double) * (size_t)vocab_size);
        s->mark = calloc((size_t)vocab_size, 1);
        s->recent = malloc(sizeof(int32_t) * (size_t)(p->repeat_last_n > 0 ? p->repeat_last_n : 1));
    }
    if (!s || !s->c || !s->prob || !s->mark || !s->recent) {
        ms6_sampler_free(s);
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "sampler: out of memory for vocab_size %lld",
                           (long long)vocab_size);
        ms6_error_set(err, st, msg);
        return st;
    }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    *out = s;
    return MS6_STATUS_OK;
}

void ms6_sampler_free(ms6_sampler *smp) {
    if (!smp) return;
    free(smp->c);
    free(smp->prob);
    free(smp->mark);
    free(smp->recent);
    free(smp);
}

const char *ms6_sampler_last_error(const ms6_sampler *smp) { return smp ? smp->err : "sampler is NULL"; }

void ms6_sampler_accept(ms6_sampler *smp, int32_t id) {
    if (!smp || smp->p.repeat_last_n <= 0 || id < 0 || id >= smp->vocab) return;
    smp->recent[smp->recent_pos] = id;
    smp->recent_pos = (smp->recent_pos + 1) % smp->p.repeat_last_n;
    if (smp->n_recent < smp->p.repeat_last_n) smp->n_recent++;
}

int32_t ms6_argmax(const float *x, int64_t n) {
    if (!x || n <= 0) return -1;
    int64_t best = 0;
    /* NaN compares false, so a NaN never replaces a number; a leading NaN
     * is replaced by the first number. */
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i]))) best = i;
    return (int32_t)best;
}

/* ------------------------------------------------------- selection */

/* a ranks before b: larger logit first, then smaller id. A strict total
 * order, so selection and sorting are deterministic. */
static inline int before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void swapc(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges c[0..n) so that c[0..k) are the k first in `before` order
 * (in any order among themselves). Quickselect, median-of-three pivot. */
static void select_top(cand *c, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    if (k <= 0 || k >= n) return;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        if (before(&c[mid], &c[lo])) swapc(&c[mid], &c[lo]);
        if (before(&c[hi], &c[lo])) swapc(&c[hi], &c[lo]);
        if (before(&c[hi], &c[mid])) swapc(&c[hi], &c[mid]);
        cand pivot = c[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &pivot)) i++;
            while (before(&pivot, &c[j])) j--;
            if (i <= j) {
                swapc(&c[i], &c[j]);
                i++;
                j--;
            }
        }
        /* now c[lo..j] rank before-or-equal pivot, c[i..hi] after-or-equal */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

static void sort_cands(cand *c, int64_t n) { qsort(c, (size_t)n, sizeof(cand), cmp_cand); }

/* Keeps in c[0..k) the k first of c[0..n) in `before` order, for small k:
 * a heap of the k best so far whose root is the worst of them; most
 * tokens are rejected by one comparison with the root. */
static void heap_sift(cand *h, int64_t k, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && before(&h[w], &h[l])) w = l;
        if (r < k && before(&h[w], &h[r])) w = r;
        if (w == i) return;
        swapc(&h[i], &h[w]);
        i = w;
    }
}

static void heap_top(cand *c, int64_t n, int64_t k) {
    for (int64_t i = k / 2 - 1; i >= 0; i--) heap_sift(c, k, i);
    for (int64_t i = k; i < n; i++) {
        if (before(&c[i], &c[0])) {
            c[0] = c[i];
            heap_sift(c, k, 0);
        }
    }
}

static void keep_top(cand *c, int64_t n, int64_t k) {
    if (k <= 256) heap_top(c, n, k);
    else select_top(c, n, k);
}

/* ------------------------------------------------------- the filters */

/* Builds the final distribution in s->c[0..*n) / s->prob[0..*n). */
static ms6_status distribution(ms6_sampler *s, const float *logits, int64_t *n_out) {
    const ms6_sampler_params *p = &s->p;
    int64_t V = s->vocab, n = V;
    cand *c = s->c;
    double *prob = s->prob;

    for (int64_t i = 0; i < V; i++) {
        float v = logits[i];
        if (isnan(v) || v == INFINITY)
            return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT,
                                 "sampler: logits[%lld] is %s (the model produced non-finite output)",
                                 (long long)i, isnan(v) ? "NaN" : "+inf");
        c[i].logit = v;
        c[i].id = (int32_t)i;
    }

    /* Repetition penalty (llama.cpp / HF): each distinct id among the last
     * repeat_last_n accepted ids has its logit divided by R when positive,
     * multiplied by R when negative, so R > 1 always makes it less likely. */
    if (p->repeat_penalty != 1.0f && s->n_recent > 0) {
        for (int64_t j = 0; j < s->n_recent; j++) {
            int32_t id = s->recent[j];
            if (s->mark[id]) continue;
            s->mark[id] = 1;
            float v = c[id].logit;
            c[id].logit = v > 0.0f ? v / p->repeat_penalty : v * p->repeat_penalty;
        }
        for (int64_t j = 0; j < s->n_recent; j++) s->mark[s->recent[j]] = 0;
    }

    int sorted = 0;
    if (p->temperature == 0.0f) {
        /* greedy: the first of (largest logit, smallest id) */
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (c[i].logit > c[best].logit) best = i;
        c[0] = c[best];
        prob[0] = 1.0;
        *n_out = 1;
        return MS6_STATUS_OK;
    }
    if (p->top_k > 0 && p->top_k < n) {
        keep_top(c, n, p->top_k);
        n = p->top_k;
        sort_cands(c, n);
        sorted = 1;
    }

    /* temperature + softmax. All -inf means no token is possible. */
    float lmax = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (c[i].logit > lmax) lmax = c[i].logit;
    if (lmax == -INFINITY)
        return ms6_fmt_error(s->err, MS6_STATUS_INVALID_ARGUMENT, "sampler: every logit is -inf");
    double inv_t = 1.0 / (double)p->temperature, sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        prob[i] = exp(((double)c[i].logit - (double)lmax) * inv_t);
        sum += prob[i];
    }
    /* top-p: the smallest head (in rank order) whose mass reaches top_p.
     * Unless top-k already sorted a few candidates, the head is found
     * without sorting the vocabulary: tokens go into buckets by
     * z = (lmax - logit) / T (width 1/8, the last bucket open-ended), which
     * is monotone in rank, so the head lies inside the first buckets whose
     * mass reaches top_p; only those tokens are sorted. */
    if (p->top_p < 1.0f) {
        double target = (double)p->top_p * sum;
        if (!sorted) {
            enum { NB = 256 };
            double mass[NB] = {0};
            const double per_unit = 8.0;
            for (int64_t i = 0; i < n; i++) {
                double z = ((double)lmax - (double)c[i].logit) * inv_t * per_unit;
                int b = z < (double)(NB - 1) ? (int)z : NB - 1;
                mass[b] += prob[i];
            }
            int last = NB - 1;
            double cum = 0.0;
            for (int b = 0; b < NB; b++) {
                cum += mass[b];
                if (cum >= target) {
                    last = b;
                    break;
                }
            }
            int64_t w = 0;
            for (int64_t i = 0; i < n; i++) {
                double z = ((double)lmax - (double)c[i].logit) * inv_t * per_unit;
                int b = z < (double)(NB - 1) ? (int)z : NB - 1;
                if (b <= last) c[w++] = c[i];
            }
            n = w;
            sort_cands(c, n);
            for (int64_t i = 0; i < n; i++) prob[i] = exp(((double)c[i].logit - (double)lmax) * inv_t);
        }
        double cum = 0.0;
        int64_t keep = n; /* rounding: the whole set fell just short of it */
        for (int64_t i = 0; i < n; i++) {
            cum += prob[i];
            if (cum >= target) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += prob[i];
        sorted = 1;
    }
    /* min-p: drop tokens whose probability is below min_p * p_max. With
     * sorted candidates p_max is prob[0]; else find it. */
    if (p->min_p > 0.0f) {
        double pmax = 0.0;
        for (int64_t i = 0; i < n; i++)
            if (prob[i] > pmax) pmax = prob[i];
        double thr = (double)p->min_p * pmax;
        int64_t w = 0;
        sum = 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (prob[i] >= thr) {
                c[w] = c[i];
                prob[w] = prob[i];
                sum += prob[w];
                w++;
            }
        }
        n = w;
    }
    for (int64_t i = 0; i < n; i++) prob[i] /= sum;
    *n_out = n;
    return MS6_STATUS_OK;
}

ms6_status ms6_sampler_distribution(ms6_sampler *smp, const float *logits, int32_t *ids, double *probs,
                                    int64_t *n) {
    if (!smp) return MS6_STATUS_INVALID_ARGUMENT;
    if (!logits || !ids || !probs || !n)
        return ms6_fmt_error(smp->err, MS6_STATUS_INVALID_ARGUMENT, "sampler: NULL logits or output");
    int64_t cnt;
    ms6_status st = distribution(smp, logits, &cnt);
    if (st != MS6_STATUS_OK) return st;
    for (int64_t i = 0; i < cnt; i++) {
        ids[i] = smp->c[i].id;
        probs[i] = smp->prob[i];
    }
    *n = cnt;
    return MS6_STATUS_OK;
}

ms6_status ms6_sampler_sample(ms6_sampler *smp, const float *logits, int32_t *out_id) {
    if (!smp) return MS6_STATUS_INVALID_ARGUMENT;
    if (!logits || !out_id)
        return ms6_fmt_error(smp->err, MS6_STATUS_INVALID_ARGUMENT, "sampler: %s is NULL",
                             !logits ? "logits" : "out_id");
    int64_t n;
    ms6_status st = distribution(smp, logits, &n);
    if (st != MS6_STATUS_OK) return st;
    if (n == 1) {
        *out_id = smp->c[0].id;
        return MS6_STATUS_OK;
    }
    /* Inverse CDF over the (normalised) candidates; the last one catches
     * any rounding left in the sum. */
    double u = next_uniform(smp->rng), cum = 0.0;
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; i++) {
        cum += smp->prob[i];
        if (u < cum) {
            pick = i;
            break;
        }
    }
    *out_id = smp->c[pick].id;
    return MS6_STATUS_OK;
}
