/*
 * bpe.c - the BPE model: vocabulary and merge hash tables, the merge loop and
 * the word cache.
 *
 * Merging follows `tokenizers` (Word::merge_all): among all adjacent symbol
 * pairs that have a merge, the one of lowest rank is merged first, the
 * leftmost on ties, until no pair merges. A binary heap keyed by
 * (rank << 32 | position) gives that order in O(n log n); entries made stale
 * by an earlier merge are recognised when popped (the pair at that position
 * no longer has that merge) and dropped, exactly as `tokenizers` does.
 *
 * Words of up to TOK_CACHE_MAX_WORD bytes are cached (word bytes -> ids);
 * in English text nearly every word after the first few thousand is a hit,
 * so encoding costs one regex match and one hash probe per word. The cache
 * is cleared whole when full.
 */
#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>

/* ---- string table ---- */

int tok_strtab_init(tok_strtab *t, uint32_t expected) {
    memset(t, 0, sizeof *t);
    uint32_t cap = 64;
    while (cap < 2 * (uint64_t)expected + 16) cap *= 2;
    t->cap = cap;
    t->slot = calloc(cap, sizeof *t->slot);
    t->n_cap = expected + 16;
    t->hash = malloc(sizeof *t->hash * t->n_cap);
    t->off = malloc(sizeof *t->off * t->n_cap);
    t->len = malloc(sizeof *t->len * t->n_cap);
    t->val = malloc(sizeof *t->val * t->n_cap);
    if (!t->slot || !t->hash || !t->off || !t->len || !t->val) return 0;
    return 1;
}

void tok_strtab_free(tok_strtab *t) {
    free(t->slot);
    free(t->hash);
    free(t->off);
    free(t->len);
    free(t->val);
    free(t->pool);
    memset(t, 0, sizeof *t);
}

static uint32_t strtab_find(const tok_strtab *t, const char *key, size_t len, uint64_t h) {
    uint32_t mask = t->cap - 1, i = (uint32_t)h & mask;
    for (;;) {
        uint32_t e = t->slot[i];
        if (!e) return i | 0x80000000u; /* empty slot: not found */
        e--;
        if (t->hash[e] == h && t->len[e] == len && !memcmp(t->pool + t->off[e], key, len)) return i;
        i = (i + 1) & mask;
    }
}

static int strtab_grow(tok_strtab *t) {
    uint32_t ncap = t->cap * 2;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return 0;
    for (uint32_t e = 0; e < t->n; e++) {
        uint32_t i = (uint32_t)t->hash[e] & (ncap - 1);
        while (ns[i]) i = (i + 1) & (ncap - 1);
        ns[i] = e + 1;
    }
    free(t->slot);
    t->slot = ns;
    t->cap = ncap;
    return 1;
}

int tok_strtab_put(tok_strtab *t, const char *key, size_t len, int32_t val) {
    if (len > UINT32_MAX / 2) return 0;
    uint64_t h = tok_hash_bytes((const uint8_t *)key, len);
    uint32_t i = strtab_find(t, key, len, h);
    if (!(i & 0x80000000u)) {
        t->val[t->slot[i] - 1] = val;
        return 1;
    }
    if (2 * (uint64_t)(t->n + 1) > t->cap) {
        if (!strtab_grow(t)) return 0;
        i = strtab_find(t, key, len, h);
    }
    i &= 0x7fffffffu;
    if (t->n == t->n_cap) {
        uint32_t nc = t->n_cap * 2;
        uint64_t *hh = realloc(t->hash, sizeof *hh * nc);
        if (!hh) return 0;
        t->hash = hh;
        uint32_t *oo = realloc(t->off, sizeof *oo * nc);
        if (!oo) return 0;
        t->off = oo;
        uint32_t *ll = realloc(t->len, sizeof *ll * nc);
        if (!ll) return 0;
        t->len = ll;
        int32_t *vv = realloc(t->val, sizeof *vv * nc);
        if (!vv) return 0;
        t->val = vv;
        t->n_cap = nc;
    }
    if (t->pool_len + len > UINT32_MAX) return 0;
    if (!tok_reserve((void **)&t->pool, &t->pool_cap, t->pool_len + len + 1, 1)) return 0;
    memcpy(t->pool + t->pool_len, key, len);
    uint32_t e = t->n++;
    t->hash[e] = h;
    t->off[e] = (uint32_t)t->pool_len;
    t->len[e] = (uint32_t)len;
    t->val[e] = val;
    t->pool_len += len;
    t->slot[i] = e + 1;
    return 1;
}

int32_t tok_strtab_get(const tok_strtab *t, const char *key, size_t len) {
    if (!t->cap) return -1;
    uint32_t i = strtab_find(t, key, len, tok_hash_bytes((const uint8_t *)key, len));
    if (i & 0x80000000u) return -1;
    return t->val[t->slot[i] - 1];
}

/* ---- merges ---- */

int tok_merges_init(tok_merges *m, uint32_t expected) {
    memset(m, 0, sizeof *m);
    uint32_t cap = 64;
    while (cap < 2 * (uint64_t)expected + 16) cap *= 2;
    m->cap = cap;
    m->key = malloc(sizeof *m->key * cap);
    m->rank = malloc(sizeof *m->rank * cap);
    m->merged = malloc(sizeof *m->merged * cap);
    if (!m->key || !m->rank || !m->merged) return 0;
    memset(m->key, 0xff, sizeof *m->key * cap);
    return 1;
}

void tok_merges_free(tok_merges *m) {
    free(m->key);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

int tok_merges_put(tok_merges *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = m->cap - 1, i = (uint32_t)tok_mix64(k) & mask;
    while (m->key[i] != UINT64_MAX && m->key[i] != k) i = (i + 1) & mask;
    if (m->key[i] == UINT64_MAX) {
        if (2 * (uint64_t)(m->n + 1) > m->cap) return 0; /* sized at init */
        m->n++;
    }
    m->key[i] = k;
    m->rank[i] = rank;
    m->merged[i] = merged;
    return 1;
}

/* ---- cache ---- */

int tok_cache_init(tok_cache *c, uint32_t cap) {
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->hash = malloc(sizeof *c->hash * cap);
    c->key_off = malloc(sizeof *c->key_off * cap);
    c->key_len = calloc(cap, sizeof *c->key_len);
    c->ids_off = malloc(sizeof *c->ids_off * cap);
    c->n_ids = malloc(sizeof *c->n_ids * cap);
    c->keys_cap = (size_t)cap * 8;
    c->keys = malloc(c->keys_cap);
    c->ids_cap = (size_t)cap * 3;
    c->ids = malloc(sizeof *c->ids * c->ids_cap);
    return c->hash && c->key_off && c->key_len && c->ids_off && c->n_ids && c->keys && c->ids;
}

void tok_cache_free(tok_cache *c) {
    free(c->hash);
    free(c->key_off);
    free(c->key_len);
    free(c->ids_off);
    free(c->n_ids);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static void cache_clear(tok_cache *c) {
    memset(c->key_len, 0, sizeof *c->key_len * c->cap);
    c->n = 0;
    c->keys_len = 0;
    c->ids_len = 0;
}

/* Slot holding word w, or the empty slot where it would go (key_len 0). */
static uint32_t cache_slot(const tok_cache *c, const uint8_t *w, size_t n, uint64_t h) {
    uint32_t mask = c->cap - 1, i = (uint32_t)h & mask;
    while (c->key_len[i]) {
        if (c->hash[i] == h && c->key_len[i] == n && !memcmp(c->keys + c->key_off[i], w, n)) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void cache_put(tok_cache *c, const uint8_t *w, size_t n, uint64_t h, const int32_t *ids, size_t n_ids) {
    if (n_ids > UINT16_MAX) return;
    if (2 * (c->n + 1) > c->cap || c->keys_len + n > c->keys_cap || c->ids_len + n_ids > c->ids_cap) cache_clear(c);
    if (c->keys_len + n > c->keys_cap || c->ids_len + n_ids > c->ids_cap) return;
    uint32_t i = cache_slot(c, w, n, h);
    if (c->key_len[i]) return;
    c->hash[i] = h;
    c->key_off[i] = (uint32_t)c->keys_len;
    c->key_len[i] = (uint16_t)n;
    c->ids_off[i] = (uint32_t)c->ids_len;
    c->n_ids[i] = (uint16_t)n_ids;
    memcpy(c->keys + c->keys_len, w, n);
    c->keys_len += n;
    memcpy(c->ids + c->ids_len, ids, sizeof *ids * n_ids);
    c->ids_len += n_ids;
    c->n++;
}

/* ---- merge loop ---- */

static void heap_push(uint64_t *heap, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (heap[p] <= v) break;
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = v;
}

static uint64_t heap_pop(uint64_t *heap, size_t *n) {
    uint64_t top = heap[0], v = heap[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= m) break;
        size_t c = (l + 1 < m && heap[l + 1] < heap[l]) ? l + 1 : l;
        if (heap[c] >= v) break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = v;
    return top;
}

/* Pushes the pair starting at symbol p (when it has a merge). */
static void push_pair(ms6_tokenizer *tok, size_t *hn, int32_t p) {
    int32_t q = tok->sym_next[p];
    if (q < 0) return;
    uint32_t s = tok_merge_slot(&tok->merges, tok->sym[p], tok->sym[q]);
    if (s == UINT32_MAX) return;
    heap_push(tok->heap, hn, ((uint64_t)(uint32_t)tok->merges.rank[s] << 32) | (uint32_t)p);
}

/* BPE of the byte string w; the ids go to tok->wids, the count is returned
 * (or -1 on OOM). */
static int64_t bpe_merge(ms6_tokenizer *tok, const uint8_t *w, size_t n) {
    if (!tok_reserve((void **)&tok->sym, &tok->sym_cap, n, sizeof(int32_t) * 3)) return -1;
    /* sym, sym_prev and sym_next share one allocation of 3 * sym_cap ids */
    tok->sym_prev = tok->sym + tok->sym_cap;
    tok->sym_next = tok->sym + 2 * tok->sym_cap;
    if (!tok_reserve((void **)&tok->heap, &tok->heap_cap, n, sizeof(uint64_t))) return -1;
    if (!tok_reserve((void **)&tok->wids, &tok->wids_cap, n, sizeof(int32_t))) return -1;

    /* Initial symbols: one per byte (one per character of the byte-level
     * string). A byte without a token becomes unk (fused when fuse_unk) or,
     * without an unk token, is dropped: BPE::merge_word in `tokenizers`. */
    int32_t ns = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok->byte_id[w[i]];
        if (id < 0) {
            if (tok->unk_id < 0) continue;
            if (prev_unk && tok->fuse_unk) continue;
            id = tok->unk_id;
            prev_unk = 1;
        } else {
            prev_unk = 0;
        }
        tok->sym[ns] = id;
        ns++;
    }
    if (ns == 0) return 0;
    for (int32_t i = 0; i < ns; i++) {
        tok->sym_prev[i] = i - 1;
        tok->sym_next[i] = i + 1 < ns ? i + 1 : -1;
    }
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < ns; i++) push_pair(tok, &hn, i);
    while (hn) {
        uint64_t top = heap_pop(tok->heap, &hn);
        int32_t p = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        if (tok->sym[p] < 0) continue; /* merged into its left neighbour */
        int32_t q = tok->sym_next[p];
        if (q < 0) continue;
        uint32_t s = tok_merge_slot(&tok->merges, tok->sym[p], tok->sym[q]);
        if (s == UINT32_MAX || tok->merges.rank[s] != rank) continue; /* stale */
        tok->sym[p] = tok->merges.merged[s];
        tok->sym[q] = -1;
        int32_t r = tok->sym_next[q];
        tok->sym_next[p] = r;
        if (r >= 0) tok->sym_prev[r] = p;
        if (tok->sym_prev[p] >= 0) push_pair(tok, &hn, tok->sym_prev[p]);
        push_pair(tok, &hn, p);
    }
    int64_t k = 0;
    for (int32_t i = 0; i >= 0; i = tok->sym_next[i]) tok->wids[k++] = tok->sym[i];
    return k;
}

/* Id of the vocabulary entry spelling the whole word in the byte-level
 * alphabet (each byte as its GPT-2 code point), or -1: the ignore_merges
 * shortcut. Uses the decode scratch buffer, idle while encoding. */
static int32_t whole_word_id(ms6_tokenizer *tok, const uint8_t *w, size_t n) {
    if (!tok_reserve((void **)&tok->dbuf, &tok->dbuf_cap, 2 * n + 1, 1)) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp(w[i]);
        if (cp < 0x80) {
            tok->dbuf[o++] = (uint8_t)cp;
        } else {
            tok->dbuf[o++] = (uint8_t)(0xC0 | (cp >> 6));
            tok->dbuf[o++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
    }
    return tok_strtab_get(&tok->vocab, (const char *)tok->dbuf, o);
}

ms6_status tok_bpe_word(ms6_tokenizer *tok, const uint8_t *w, size_t n, const int32_t **ids, size_t *n_ids) {
    uint64_t h = 0;
    int cacheable = n <= TOK_CACHE_MAX_WORD;
    if (cacheable) {
        h = tok_hash_bytes(w, n);
        tok_cache *c = &tok->cache;
        uint32_t i = cache_slot(c, w, n, h);
        if (c->key_len[i]) {
            *ids = c->ids + c->ids_off[i];
            *n_ids = c->n_ids[i];
            return MS6_STATUS_OK;
        }
    }
    if (n > (size_t)INT32_MAX / 4) /* symbol positions are int32 */
        return ms6_fmt_error(tok->err, MS6_STATUS_UNSUPPORTED,
                             "tokenizer: a word of %zu bytes without a break is too long", n);
    int64_t k;
    int32_t whole = tok->ignore_merges ? whole_word_id(tok, w, n) : -1;
    if (whole >= 0) {
        if (!tok_reserve((void **)&tok->wids, &tok->wids_cap, 1, sizeof(int32_t))) k = -1;
        else {
            tok->wids[0] = whole;
            k = 1;
        }
    } else {
        k = bpe_merge(tok, w, n);
    }
    if (k < 0) return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_MEMORY, "tokenizer: out of memory in BPE");
    if (cacheable) cache_put(&tok->cache, w, n, h, tok->wids, (size_t)k);
    *ids = tok->wids;
    *n_ids = (size_t)k;
    return MS6_STATUS_OK;
}
