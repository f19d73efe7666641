/*
 * tokenizer_internal.h - the parts of the byte-level BPE tokenizer shared by
 * tokenizer.c (tokenizer.json loading, the encode pipeline, decoding),
 * bpe.c (vocabulary and merge tables, the merge loop, the word cache) and
 * utf8.c (UTF-8 repair, NFC, character classes).
 *
 * The pipeline mirrors Hugging Face `tokenizers` (Tokenizer::encode with a
 * BPE model): added tokens are split off first (those with normalized=false
 * on the raw text, then those with normalized=true on each NFC-normalized
 * piece), the rest goes through the ByteLevel pre-tokenizer (GPT-2 regex,
 * bytes mapped to printable code points) and BPE by merge rank. Internally
 * BPE works on raw bytes and token ids: the byte-level alphabet only matters
 * when reading tokenizer.json, so no word is ever re-encoded at run time.
 */
#ifndef MS6_TOKENIZER_INTERNAL_H
#define MS6_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- hashing ---- */

static inline uint64_t tok_mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Hash of a short byte string, 8 bytes per step. */
static inline uint64_t tok_hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0x100000001b3ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, s, n);
        h = (h ^ v) * 0x100000001b3ULL;
    }
    return tok_mix64(h);
}

/* ---- string -> id table (open addressing, keys copied into a pool) ---- */

typedef struct tok_strtab {
    uint32_t cap;      /* slots, a power of two */
    uint32_t *slot;    /* (cap,) 0 = empty, else entry index + 1 */
    uint32_t n, n_cap; /* entries used / allocated */
    uint64_t *hash;    /* (n_cap,) */
    uint32_t *off;     /* (n_cap,) key offset in pool */
    uint32_t *len;     /* (n_cap,) key length */
    int32_t *val;      /* (n_cap,) */
    char *pool;
    size_t pool_len, pool_cap;
} tok_strtab;

int tok_strtab_init(tok_strtab *t, uint32_t expected);
void tok_strtab_free(tok_strtab *t);
/* Inserts or overwrites; returns 0 on allocation failure. */
int tok_strtab_put(tok_strtab *t, const char *key, size_t len, int32_t val);
/* Value of key, or -1. */
int32_t tok_strtab_get(const tok_strtab *t, const char *key, size_t len);

/* ---- merges: (left id, right id) -> (rank, merged id) ---- */

typedef struct tok_merges {
    uint32_t cap;    /* power of two */
    uint64_t *key;   /* (cap,) (left << 32) | right, UINT64_MAX = empty */
    int32_t *rank;   /* (cap,) */
    int32_t *merged; /* (cap,) */
    uint32_t n;
} tok_merges;

int tok_merges_init(tok_merges *m, uint32_t expected);
void tok_merges_free(tok_merges *m);
/* A pair listed twice keeps its later rank: `tokenizers` collects the
 * ordered merge list into a map, where the later entry overwrites.
 * Returns 0 on OOM. */
int tok_merges_put(tok_merges *m, int32_t a, int32_t b, int32_t rank, int32_t merged);

static inline uint32_t tok_merge_slot(const tok_merges *m, int32_t a, int32_t b) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = m->cap - 1, i = (uint32_t)tok_mix64(k) & mask;
    while (m->key[i] != k) {
        if (m->key[i] == UINT64_MAX) return UINT32_MAX;
        i = (i + 1) & mask;
    }
    return i;
}

/* ---- word cache: raw word bytes -> ids ---- */

#define TOK_CACHE_MAX_WORD 255 /* longer words are not cached */

typedef struct tok_cache {
    uint32_t cap; /* slots, power of two */
    uint32_t n;   /* used slots */
    uint64_t *hash;
    uint32_t *key_off; /* into keys */
    uint16_t *key_len; /* 0 = empty slot (empty words are never looked up) */
    uint32_t *ids_off; /* into ids */
    uint16_t *n_ids;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
} tok_cache;

int tok_cache_init(tok_cache *c, uint32_t cap);
void tok_cache_free(tok_cache *c);

/* ---- added tokens ---- */

typedef struct tok_added {
    int32_t id;
    char *content;   /* as in tokenizer.json (NUL-terminated copy) */
    size_t len;
    char *pattern;   /* what is matched: content, NFC-normalized when normalized */
    size_t pattern_len;
    int single_word, lstrip, rstrip, normalized, special;
} tok_added;

/* Byte trie of added-token patterns; leftmost-longest matching as the
 * aho-corasick automaton of `tokenizers` (MatchKind::LeftmostLongest). */
typedef struct tok_trie_node {
    int32_t child;   /* first child, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t token;   /* index into added[], -1 when no pattern ends here */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_trie {
    tok_trie_node *node; /* node[0] is the root */
    int32_t n, cap;
    uint8_t first[256];  /* 1 when some pattern starts with that byte */
    int empty;           /* no patterns at all */
} tok_trie;

/* ---- the tokenizer ---- */

struct ms6_tokenizer {
    char err[MS6_ERRMSG_SIZE];

    /* model */
    tok_strtab vocab;      /* token string as in tokenizer.json -> id */
    tok_merges merges;
    int32_t byte_id[256];  /* id of the one-byte token of each byte, -1 if none */
    int32_t unk_id;        /* -1 when the model has no unk_token */
    int fuse_unk, ignore_merges;

    /* id -> decoded bytes (ByteLevel decoder applied per token) */
    int64_t n_ids;         /* max id + 1 */
    uint32_t *dec_off;     /* (n_ids,) */
    uint32_t *dec_len;     /* (n_ids,) UINT32_MAX = no token has this id */
    char *dec_pool;
    size_t dec_pool_len;

    /* added tokens */
    tok_added *added;
    int n_added;
    tok_trie trie_raw;     /* normalized = false: matched on the raw text */
    tok_trie trie_norm;    /* normalized = true: matched on normalized pieces */

    /* normalizer / pre-tokenizer */
    int nfc;
    int add_prefix_space, use_regex;
    pcre2_code *re;
    pcre2_match_data *md;
    int jit;

    /* encode state (the tokenizer is not thread-safe) */
    tok_cache cache;
    uint8_t *clean;  size_t clean_cap;   /* UTF-8 repaired text */
    uint8_t *norm;   size_t norm_cap;    /* NFC-normalized piece */
    uint8_t *pref;   size_t pref_cap;    /* piece with a prefix space */
    int32_t *sym;    size_t sym_cap;     /* BPE symbols: id, prev, next */
    int32_t *sym_prev, *sym_next;
    uint64_t *heap;  size_t heap_cap;
    int32_t *wids;   size_t wids_cap;    /* ids of one word */
    uint8_t *dbuf;   size_t dbuf_cap;    /* decode scratch */
};

/* Grows *buf to hold at least n elements of size elt; returns 0 on OOM. */
int tok_reserve(void **buf, size_t *cap, size_t n, size_t elt);

/* ---- bpe.c ---- */

/* BPE of one pre-tokenized word (raw bytes). On success *ids points at
 * *n ids owned by tok (valid until the next call). */
ms6_status tok_bpe_word(ms6_tokenizer *tok, const uint8_t *w, size_t n, const int32_t **ids, size_t *n_ids);

/* ---- utf8.c ---- */

/* GPT-2 bytes_to_unicode: the code point standing for byte b. */
uint32_t tok_byte_to_cp(uint8_t b);
/* Inverse: the byte for code point cp, or -1. */
int tok_cp_to_byte(uint32_t cp);

/* Length of the valid UTF-8 prefix that needs no repair. */
size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n);

/*
 * UTF-8 repair with the "maximal subpart" rule (Unicode ch. 3, U+FFFD
 * substitution of maximal subparts; what Python's
 * bytes.decode('utf-8', errors='replace') and Rust's from_utf8_lossy do):
 * every maximal prefix of a well-formed sequence that is cut short, and
 * every byte that cannot start one, becomes one U+FFFD.
 * Writes to out (when not NULL; needs up to 3*n bytes) and returns the
 * output length. With final = 0 a trailing incomplete but so far valid
 * sequence is left unconsumed; *consumed (optional) gets the input bytes used.
 */
size_t tok_utf8_repair(const uint8_t *s, size_t n, uint8_t *out, int final, size_t *consumed);

/* Decodes one code point of valid UTF-8 at s (n > 0); returns its length. */
size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Rust char::is_whitespace (Unicode White_Space). */
int tok_is_whitespace(uint32_t cp);
/* \w of the Rust regex crate (single_word tokens): Alphabetic, marks,
 * decimal digits, connector punctuation, Join_Control. */
int tok_is_word_char(uint32_t cp);

/* NFC of valid UTF-8 s into *out (tok_reserve-managed); returns 0 on OOM. */
int tok_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_cap, size_t *out_len);

#endif
