/*
 * tokenizer.c - Hugging Face tokenizer.json (BPE model, ByteLevel
 * pre-tokenizer and decoder, optional NFC normalizer, added tokens) loading,
 * encoding and decoding, byte-exact with the `tokenizers` library.
 *
 * Encoding, as Tokenizer::encode(text, add_special_tokens) does it:
 *   0. invalid UTF-8 is repaired first: each maximal invalid subpart becomes
 *      U+FFFD (the string Python would hold after errors='replace');
 *   1. added tokens with normalized = false are split off the raw text
 *      (leftmost-longest, with their single_word / lstrip / rstrip flags);
 *   2. each remaining piece is NFC-normalized, then added tokens with
 *      normalized = true are split off it;
 *   3. each remaining piece gets a leading space when add_prefix_space is set
 *      and it does not start with one, and is cut by the GPT-2 regex
 *      (PCRE2, UTF + UCP, JIT) into words; gaps between matches are words too;
 *   4. each word is BPE-merged by rank (bpe.c), through the word cache.
 * Decoding maps each id to its token's bytes (ByteLevel decoder: every
 * character back to its byte; a token with a character outside the byte
 * alphabet, such as an added token of plain spaces, contributes its UTF-8 as
 * is), concatenates them and repairs the result as from_utf8_lossy does.
 * Special tokens are not skipped.
 */
#include "tokenizer/tokenizer_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * The GPT-2 pre-tokenizer pattern of the `tokenizers` ByteLevel pre-tokenizer
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * run there by Oniguruma, whose \s is Unicode White_Space. PCRE2's \s (UCP)
 * also matches U+180E MONGOLIAN VOWEL SEPARATOR, which left White_Space in
 * Unicode 6.3 ("\r\r\u180e" then splits differently), so \s is spelled out
 * as the White_Space list. \p{L} and \p{N} come from PCRE2's Unicode tables.
 */
#define WS "\\x{09}-\\x{0D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS
                                   "])|[" WS "]+";
#undef WS

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static ms6_status read_file(const char *path, char **buf, size_t *len, char *err) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ms6_fmt_error(err, MS6_STATUS_IO_ERROR, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return ms6_fmt_error(err, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
    }
    for (;;) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f)) {
                free(b);
                fclose(f);
                return ms6_fmt_error(err, MS6_STATUS_IO_ERROR, "%s: read error", path);
            }
            break;
        }
        if (cap > ((size_t)1 << 40)) {
            free(b);
            fclose(f);
            return ms6_fmt_error(err, MS6_STATUS_FORMAT_ERROR, "%s: file too large for a tokenizer", path);
        }
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb) {
            free(b);
            fclose(f);
            return ms6_fmt_error(err, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    b[n] = 0;
    *buf = b;
    *len = n;
    return MS6_STATUS_OK;
}

static const char *json_type_name(const cJSON *j) {
    if (!j) return "missing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

/* A boolean field: def when absent or null. */
static int json_flag(const cJSON *obj, const char *name, int def, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return 1;
    }
    if (!cJSON_IsBool(j)) return 0;
    *out = cJSON_IsTrue(j);
    return 1;
}

/* A non-negative integer id that fits int32. */
static int json_id(const cJSON *j, int32_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0 && v < 2147483647.0) || floor(v) != v) return 0;
    *out = (int32_t)v;
    return 1;
}

static const char *json_type_field(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Byte-level decoding of one token string (ByteLevel decoder): every
 * character back to its byte, or the UTF-8 as is when some character is not
 * in the byte alphabet. Appends to the decode pool. */
static int add_decoded(ms6_tokenizer *tok, size_t *pool_cap, int32_t id, const char *s, size_t n) {
    if (!tok_reserve((void **)&tok->dec_pool, pool_cap, tok->dec_pool_len + n + 1, 1)) return 0;
    uint8_t *o = (uint8_t *)tok->dec_pool + tok->dec_pool_len;
    size_t k = 0, i = 0;
    int all = tok_utf8_valid_prefix((const uint8_t *)s, n) == n;
    while (all && i < n) {
        uint32_t cp;
        i += tok_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int b = tok_cp_to_byte(cp);
        if (b < 0) all = 0;
        else o[k++] = (uint8_t)b;
    }
    if (!all) {
        memcpy(o, s, n);
        k = n;
    }
    tok->dec_off[id] = (uint32_t)tok->dec_pool_len;
    tok->dec_len[id] = (uint32_t)k;
    tok->dec_pool_len += k;
    return 1;
}

static int trie_init(tok_trie *t) {
    memset(t, 0, sizeof *t);
    t->cap = 16;
    t->node = malloc(sizeof *t->node * (size_t)t->cap);
    if (!t->node) return 0;
    t->node[0] = (tok_trie_node){-1, -1, -1, 0};
    t->n = 1;
    t->empty = 1;
    return 1;
}

/* Adds pattern p for added token index `token`; the first of two equal
 * patterns keeps it. */
static int trie_add(tok_trie *t, const uint8_t *p, size_t n, int32_t token) {
    if (n == 0) return 1;
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = t->node[node].child;
        while (c >= 0 && t->node[c].byte != p[i]) c = t->node[c].sibling;
        if (c < 0) {
            if (t->n == t->cap) {
                if (t->cap > INT32_MAX / 2) return 0;
                tok_trie_node *nn = realloc(t->node, sizeof *nn * (size_t)t->cap * 2);
                if (!nn) return 0;
                t->node = nn;
                t->cap *= 2;
            }
            c = t->n++;
            t->node[c] = (tok_trie_node){-1, t->node[node].child, -1, p[i]};
            t->node[node].child = c;
        }
        node = c;
    }
    if (t->node[node].token < 0) t->node[node].token = token;
    t->first[p[0]] = 1;
    t->empty = 0;
    return 1;
}

static ms6_status load_model(ms6_tokenizer *tok, const cJSON *model, const char *path, int32_t *max_id) {
    char *e = tok->err;
    if (!cJSON_IsObject(model))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: \"model\" is %s, expected an object", path,
                             json_type_name(model));
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (type && !cJSON_IsString(type))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.type is %s, expected a string", path,
                             json_type_name(type));
    if (type && strcmp(type->valuestring, "BPE") != 0)
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: unknown model type '%s' (only BPE is supported)", path,
                             type->valuestring);
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (j && !cJSON_IsNull(j) && !(cJSON_IsNumber(j) && j->valuedouble == 0.0))
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: model.dropout is set; BPE dropout is not supported", path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        j = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (j && !cJSON_IsNull(j) && !(cJSON_IsString(j) && j->valuestring[0] == 0))
            return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: model.%s is set; not supported with byte-level BPE",
                                 path, affixes[i]);
    }
    int byte_fallback = 0;
    if (!json_flag(model, "fuse_unk", 0, &tok->fuse_unk) || !json_flag(model, "byte_fallback", 0, &byte_fallback) ||
        !json_flag(model, "ignore_merges", 0, &tok->ignore_merges))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR,
                             "%s: model.fuse_unk, byte_fallback and ignore_merges must be booleans", path);
    if (byte_fallback)
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: model.byte_fallback is not supported", path);

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.vocab is %s, expected an object", path,
                             json_type_name(vocab));
    int nv = cJSON_GetArraySize(vocab);
    if (!tok_strtab_init(&tok->vocab, (uint32_t)nv))
        return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the vocabulary", path);
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id;
        if (!json_id(it, &id))
            return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR,
                                 "%s: model.vocab[\"%.64s\"] is not a token id (non-negative integer)", path,
                                 it->string ? it->string : "");
        if (!tok_strtab_put(&tok->vocab, it->string, strlen(it->string), id))
            return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the vocabulary", path);
        if (id > *max_id) *max_id = id;
    }

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    tok->unk_id = -1;
    if (unk && !cJSON_IsNull(unk)) {
        if (!cJSON_IsString(unk))
            return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.unk_token is %s, expected a string", path,
                                 json_type_name(unk));
        tok->unk_id = tok_strtab_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
        if (tok->unk_id < 0)
            return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.unk_token '%.64s' is not in the vocabulary",
                                 path, unk->valuestring);
    }

    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsNull(merges) && !cJSON_IsArray(merges))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.merges is %s, expected an array", path,
                             json_type_name(merges));
    int nm = merges ? cJSON_GetArraySize(merges) : 0;
    if (!tok_merges_init(&tok->merges, (uint32_t)nm))
        return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the merges", path);
    char *cat = NULL;
    size_t cat_cap = 0;
    int32_t rank = 0;
    ms6_status st = MS6_STATUS_OK;
    cJSON_ArrayForEach(it, merges) {
        /* "left right" (split on the one space) or ["left", "right"] */
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                a = s;
                la = (size_t)(sp - s);
                b = sp + 1;
                lb = strlen(b);
            }
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
                   cJSON_IsString(it->child->next)) {
            a = it->child->valuestring;
            la = strlen(a);
            b = it->child->next->valuestring;
            lb = strlen(b);
        }
        if (!a) {
            st = ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR,
                               "%s: model.merges[%d] is not \"left right\" nor [\"left\", \"right\"]", path, rank);
            break;
        }
        int32_t ia = tok_strtab_get(&tok->vocab, a, la), ib = tok_strtab_get(&tok->vocab, b, lb);
        if (ia < 0 || ib < 0) {
            st = ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: model.merges[%d] names unknown token '%.*s'", path,
                               rank, (int)(ia < 0 ? (la > 64 ? 64 : la) : (lb > 64 ? 64 : lb)), ia < 0 ? a : b);
            break;
        }
        if (!tok_reserve((void **)&cat, &cat_cap, la + lb + 1, 1)) {
            st = ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the merges", path);
            break;
        }
        memcpy(cat, a, la);
        memcpy(cat + la, b, lb);
        int32_t im = tok_strtab_get(&tok->vocab, cat, la + lb);
        if (im < 0) {
            st = ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR,
                               "%s: model.merges[%d]: merged token '%.*s' is not in the vocabulary", path, rank,
                               (int)(la + lb > 64 ? 64 : la + lb), cat);
            break;
        }
        if (!tok_merges_put(&tok->merges, ia, ib, rank, im)) {
            st = ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the merges", path);
            break;
        }
        rank++;
    }
    free(cat);
    if (st != MS6_STATUS_OK) return st;

    for (int b = 0; b < 256; b++) {
        uint32_t cp = tok_byte_to_cp((uint8_t)b);
        char u[2];
        size_t n = 1;
        if (cp < 0x80) u[0] = (char)cp;
        else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        }
        tok->byte_id[b] = tok_strtab_get(&tok->vocab, u, n);
    }
    return MS6_STATUS_OK;
}

static ms6_status load_added(ms6_tokenizer *tok, const cJSON *added, const char *path, int32_t *max_id) {
    char *e = tok->err;
    if (!added || cJSON_IsNull(added)) return MS6_STATUS_OK;
    if (!cJSON_IsArray(added))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: added_tokens is %s, expected an array", path,
                             json_type_name(added));
    int n = cJSON_GetArraySize(added);
    tok->added = calloc((size_t)n + 1, sizeof *tok->added);
    if (!tok->added) return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for added tokens", path);
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, added) {
        tok_added *a = &tok->added[k];
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsObject(it) || !json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &a->id) ||
            !cJSON_IsString(content))
            return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR,
                                 "%s: added_tokens[%d] needs an integer \"id\" >= 0 and a string \"content\"", path, k);
        if (!json_flag(it, "special", 0, &a->special) || !json_flag(it, "single_word", 0, &a->single_word) ||
            !json_flag(it, "lstrip", 0, &a->lstrip) || !json_flag(it, "rstrip", 0, &a->rstrip) ||
            !json_flag(it, "normalized", !a->special, &a->normalized))
            return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: added_tokens[%d]: flags must be booleans", path, k);
        a->len = strlen(content->valuestring);
        a->content = malloc(a->len + 1);
        if (!a->content) return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for added tokens", path);
        memcpy(a->content, content->valuestring, a->len + 1);
        tok->n_added = ++k;
        if (a->id > *max_id) *max_id = a->id;
    }
    return MS6_STATUS_OK;
}

static ms6_status load_config(ms6_tokenizer *tok, const cJSON *root, const char *path) {
    char *e = tok->err;
    /* normalizer: null, NFC, or a Sequence of those */
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const char *t = json_type_field(norm);
        const cJSON *list = NULL;
        if (t && !strcmp(t, "Sequence")) list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
        if (t && !strcmp(t, "NFC")) tok->nfc = 1;
        else if (cJSON_IsArray(list)) {
            const cJSON *it;
            cJSON_ArrayForEach(it, list) {
                const char *u = json_type_field(it);
                if (!u || strcmp(u, "NFC"))
                    return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED,
                                         "%s: normalizer '%s' is not supported (only NFC)", path, u ? u : "?");
                tok->nfc = 1;
            }
        } else
            return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: normalizer '%s' is not supported (only NFC)", path,
                                 t ? t : "?");
    }

    /* pre_tokenizer: ByteLevel, alone or as the one element of a Sequence */
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *t = pre ? json_type_field(pre) : NULL;
    if (t && !strcmp(t, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        if (cJSON_IsArray(list) && cJSON_GetArraySize(list) == 1) {
            pre = list->child;
            t = json_type_field(pre);
        }
    }
    if (!t || strcmp(t, "ByteLevel"))
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED,
                             "%s: pre_tokenizer '%s' is not supported (only ByteLevel)", path, t ? t : "null");
    if (!json_flag(pre, "add_prefix_space", 1, &tok->add_prefix_space) ||
        !json_flag(pre, "use_regex", 1, &tok->use_regex))
        return ms6_fmt_error(e, MS6_STATUS_FORMAT_ERROR, "%s: pre_tokenizer flags must be booleans", path);

    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    t = dec ? json_type_field(dec) : NULL;
    if (!t || strcmp(t, "ByteLevel"))
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "%s: decoder '%s' is not supported (only ByteLevel)", path,
                             t ? t : "null");

    /* ByteLevel post-processing only adjusts offsets; anything that would
     * add tokens (TemplateProcessing, ...) is refused rather than ignored. */
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (post && !cJSON_IsNull(post)) {
        t = json_type_field(post);
        if (!t || strcmp(t, "ByteLevel"))
            return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED,
                                 "%s: post_processor '%s' is not supported (only ByteLevel)", path, t ? t : "?");
    }
    return MS6_STATUS_OK;
}

static ms6_status build_tables(ms6_tokenizer *tok, const char *path, int32_t max_id) {
    char *e = tok->err;
    tok->n_ids = (int64_t)max_id + 1;
    tok->dec_off = malloc(sizeof *tok->dec_off * (size_t)tok->n_ids);
    tok->dec_len = malloc(sizeof *tok->dec_len * (size_t)tok->n_ids);
    if (!tok->dec_off || !tok->dec_len)
        return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the id table", path);
    memset(tok->dec_len, 0xff, sizeof *tok->dec_len * (size_t)tok->n_ids);
    size_t pool_cap = 0;
    const tok_strtab *v = &tok->vocab;
    for (uint32_t i = 0; i < v->n; i++) {
        /* a key listed twice in the JSON object keeps its last id */
        if (tok_strtab_get(v, v->pool + v->off[i], v->len[i]) != v->val[i]) continue;
        if (!add_decoded(tok, &pool_cap, v->val[i], v->pool + v->off[i], v->len[i]))
            return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the id table", path);
    }
    if (!trie_init(&tok->trie_raw) || !trie_init(&tok->trie_norm))
        return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for added tokens", path);
    for (int i = 0; i < tok->n_added; i++) {
        tok_added *a = &tok->added[i];
        const uint8_t *p = (const uint8_t *)a->content;
        size_t pn = a->len;
        if (a->normalized && tok->nfc && tok_utf8_valid_prefix(p, pn) == pn) {
            size_t cap = 0;
            if (!tok_nfc(p, pn, (uint8_t **)&a->pattern, &cap, &a->pattern_len))
                return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for added tokens", path);
            p = (const uint8_t *)a->pattern;
            pn = a->pattern_len;
        }
        if (!trie_add(a->normalized ? &tok->trie_norm : &tok->trie_raw, p, pn, i))
            return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for added tokens", path);
        /* An added token's text wins over the model's token of that id; for a
         * normalized token it is its normalized form (`tokenizers` 0.23 decodes
         * "cafe\u0301" with normalized = true as "caf\u00e9"). */
        if (!add_decoded(tok, &pool_cap, a->id, (const char *)p, pn))
            return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory for the id table", path);
    }

    int ec;
    PCRE2_SIZE eo;
    tok->re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!tok->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ms6_fmt_error(e, MS6_STATUS_UNSUPPORTED, "tokenizer: PCRE2 cannot compile the GPT-2 pattern: %s",
                             (const char *)msg);
    }
    tok->jit = pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE) == 0;
    tok->md = pcre2_match_data_create_from_pattern(tok->re, NULL);
    if (!tok->md || !tok_cache_init(&tok->cache, 1u << 16))
        return ms6_fmt_error(e, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
    return MS6_STATUS_OK;
}

void ms6_tokenizer_free(ms6_tokenizer *tok) {
    if (!tok) return;
    tok_strtab_free(&tok->vocab);
    tok_merges_free(&tok->merges);
    free(tok->dec_off);
    free(tok->dec_len);
    free(tok->dec_pool);
    for (int i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].pattern);
    }
    free(tok->added);
    free(tok->trie_raw.node);
    free(tok->trie_norm.node);
    pcre2_match_data_free(tok->md);
    pcre2_code_free(tok->re);
    tok_cache_free(&tok->cache);
    free(tok->clean);
    free(tok->norm);
    free(tok->pref);
    free(tok->sym);
    free(tok->heap);
    free(tok->wids);
    free(tok->dbuf);
    free(tok);
}

ms6_status ms6_tokenizer_load(const char *path, ms6_tokenizer **out, ms6_error *err) {
    char msg[MS6_ERRMSG_SIZE];
    if (out) *out = NULL;
    if (!path || !out) {
        ms6_status st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "ms6_tokenizer_load: %s is NULL",
                                      !path ? "path" : "out");
        ms6_error_set(err, st, msg);
        return st;
    }
    char *buf = NULL;
    size_t len = 0;
    ms6_status st = read_file(path, &buf, &len, msg);
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, msg);
        return st;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        if (root) st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: not a JSON object", path);
        else st = ms6_fmt_error(msg, MS6_STATUS_FORMAT_ERROR, "%s: invalid JSON near byte %zu", path, at);
        cJSON_Delete(root);
        free(buf);
        ms6_error_set(err, st, msg);
        return st;
    }
    free(buf);
    ms6_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        cJSON_Delete(root);
        st = ms6_fmt_error(msg, MS6_STATUS_OUT_OF_MEMORY, "%s: out of memory", path);
        ms6_error_set(err, st, msg);
        return st;
    }
    int32_t max_id = -1;
    st = load_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"), path, &max_id);
    if (st == MS6_STATUS_OK) st = load_added(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path, &max_id);
    if (st == MS6_STATUS_OK) st = load_config(tok, root, path);
    if (st == MS6_STATUS_OK && max_id < 0)
        st = ms6_fmt_error(tok->err, MS6_STATUS_FORMAT_ERROR, "%s: the vocabulary is empty", path);
    /* ids index a table of max_id + 1 entries: refuse a sparse id space
     * rather than allocate gigabytes for one stray id */
    uint64_t n_tokens = (uint64_t)tok->vocab.n + (uint64_t)tok->n_added;
    if (st == MS6_STATUS_OK && (uint64_t)max_id + 1 > 2 * n_tokens + 1024)
        st = ms6_fmt_error(tok->err, MS6_STATUS_FORMAT_ERROR,
                           "%s: token ids are sparse: id %d for %llu tokens", path, (int)max_id,
                           (unsigned long long)n_tokens);
    if (st == MS6_STATUS_OK) st = build_tables(tok, path, max_id);
    cJSON_Delete(root);
    if (st != MS6_STATUS_OK) {
        ms6_error_set(err, st, tok->err);
        ms6_tokenizer_free(tok);
        return st;
    }
    tok->err[0] = 0;
    *out = tok;
    return MS6_STATUS_OK;
}

const char *ms6_tokenizer_last_error(const ms6_tokenizer *tok) { return tok ? tok->err : "tokenizer is NULL"; }

int64_t ms6_tokenizer_vocab_size(const ms6_tokenizer *tok) { return tok ? tok->n_ids : 0; }

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

typedef struct id_out {
    int32_t *ids;
    size_t cap, n;
} id_out;

static inline void emit(id_out *o, int32_t id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

static ms6_status encode_word(ms6_tokenizer *tok, const uint8_t *w, size_t n, id_out *o) {
    const int32_t *ids;
    size_t k;
    ms6_status st = tok_bpe_word(tok, w, n, &ids, &k);
    if (st != MS6_STATUS_OK) return st;
    if (o->n + k <= o->cap) {
        memcpy(o->ids + o->n, ids, sizeof *ids * k);
        o->n += k;
    } else {
        for (size_t i = 0; i < k; i++) emit(o, ids[i]);
    }
    return MS6_STATUS_OK;
}

/* ByteLevel pre-tokenizer on one piece, then BPE of each word. */
static ms6_status pretokenize(ms6_tokenizer *tok, const uint8_t *s, size_t n, id_out *o) {
    if (n == 0) return MS6_STATUS_OK;
    if (tok->add_prefix_space && s[0] != ' ') {
        if (!tok_reserve((void **)&tok->pref, &tok->pref_cap, n + 1, 1))
            return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_MEMORY, "tokenizer: out of memory");
        tok->pref[0] = ' ';
        memcpy(tok->pref + 1, s, n);
        s = tok->pref;
        n++;
    }
    if (!tok->use_regex) return encode_word(tok, s, n, o);
    size_t pos = 0;
    while (pos < n) {
        int rc = tok->jit ? pcre2_jit_match(tok->re, s, n, pos, 0, tok->md, NULL) : PCRE2_ERROR_JIT_STACKLIMIT;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its backtracking on the heap */
            rc = pcre2_match(tok->re, s, n, pos, PCRE2_NO_UTF_CHECK, tok->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return encode_word(tok, s + pos, n - pos, o);
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ms6_fmt_error(tok->err, MS6_STATUS_UNSUPPORTED,
                                 "tokenizer: pre-tokenizer regex failed at byte %zu: %s", pos, (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
        ms6_status st;
        if (ov[0] > pos && (st = encode_word(tok, s + pos, ov[0] - pos, o)) != MS6_STATUS_OK) return st;
        if (ov[1] <= ov[0]) /* the pattern never matches empty; stay safe */
            return encode_word(tok, s + ov[0], n - ov[0], o);
        if ((st = encode_word(tok, s + ov[0], ov[1] - ov[0], o)) != MS6_STATUS_OK) return st;
        pos = ov[1];
    }
    return MS6_STATUS_OK;
}

typedef struct added_match {
    size_t start, stop; /* span taken by the token (after lstrip / rstrip) */
    size_t end;         /* end of the pattern match: the search resumes there */
    int32_t id;
} added_match;

static uint32_t char_before(const uint8_t *s, size_t pos, size_t *at) {
    size_t i = pos - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    tok_utf8_decode(s + i, pos - i, &cp);
    *at = i;
    return cp;
}

/* The next added-token match at or after `from`, as
 * AddedVocabulary::find_matches in `tokenizers`: leftmost-longest; a
 * single_word token must not touch word characters; lstrip takes the
 * whitespace before it (never before start_offset), rstrip the whitespace
 * after it. */
static int next_added(const ms6_tokenizer *tok, const tok_trie *tr, const uint8_t *s, size_t n, size_t from,
                      size_t start_offset, added_match *m) {
    if (tr->empty) return 0;
    size_t i = from;
    while (i < n) {
        if (!tr->first[s[i]]) {
            i++;
            continue;
        }
        int32_t node = 0, best = -1;
        size_t best_end = 0;
        for (size_t j = i; j < n; j++) {
            int32_t c = tr->node[node].child;
            while (c >= 0 && tr->node[c].byte != s[j]) c = tr->node[c].sibling;
            if (c < 0) break;
            node = c;
            if (tr->node[c].token >= 0) {
                best = tr->node[c].token;
                best_end = j + 1;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const tok_added *a = &tok->added[best];
        size_t start = i, stop = best_end, at;
        if (a->single_word) {
            int start_space = start == 0 || !tok_is_word_char(char_before(s, start, &at));
            uint32_t cp = 0;
            if (stop < n) tok_utf8_decode(s + stop, n - stop, &cp);
            int stop_space = stop == n || !tok_is_word_char(cp);
            if (!start_space || !stop_space) {
                i = best_end;
                continue;
            }
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0 && tok_is_whitespace(char_before(s, ns, &at))) ns = at;
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t cp;
                size_t l = tok_utf8_decode(s + stop, n - stop, &cp);
                if (!tok_is_whitespace(cp)) break;
                stop += l;
            }
        }
        m->start = start;
        m->stop = stop;
        m->end = best_end;
        m->id = a->id;
        return 1;
    }
    return 0;
}

/* Step 2: NFC, then the normalized added tokens, then the pre-tokenizer. */
static ms6_status encode_normalized(ms6_tokenizer *tok, const uint8_t *s, size_t n, id_out *o) {
    if (n == 0) return MS6_STATUS_OK;
    if (tok->nfc) {
        size_t nn;
        if (!tok_nfc(s, n, &tok->norm, &tok->norm_cap, &nn))
            return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_MEMORY, "tokenizer: out of memory in NFC");
        s = tok->norm;
        n = nn;
    }
    size_t start_offset = 0, from = 0;
    added_match m;
    ms6_status st;
    while (next_added(tok, &tok->trie_norm, s, n, from, start_offset, &m)) {
        from = m.end;
        if (m.start > start_offset && (st = pretokenize(tok, s + start_offset, m.start - start_offset, o)) != MS6_STATUS_OK)
            return st;
        emit(o, m.id);
        start_offset = m.stop;
    }
    if (start_offset < n) return pretokenize(tok, s + start_offset, n - start_offset, o);
    return MS6_STATUS_OK;
}

ms6_status ms6_tokenizer_encode(ms6_tokenizer *tok, const char *text, size_t len, int32_t *ids, size_t cap,
                                size_t *n_ids) {
    if (!tok) return MS6_STATUS_INVALID_ARGUMENT;
    if (n_ids) *n_ids = 0;
    if ((!text && len) || !n_ids || (!ids && cap))
        return ms6_fmt_error(tok->err, MS6_STATUS_INVALID_ARGUMENT, "ms6_tokenizer_encode: %s is NULL",
                             !n_ids ? "n_ids" : (!text && len) ? "text" : "ids");
    const uint8_t *s = (const uint8_t *)text;
    size_t n = len;
    if (tok_utf8_valid_prefix(s, n) < n) {
        if (n > SIZE_MAX / 3 - 1 || !tok_reserve((void **)&tok->clean, &tok->clean_cap, 3 * n + 1, 1))
            return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_MEMORY, "ms6_tokenizer_encode: out of memory");
        n = tok_utf8_repair(s, len, tok->clean, 1, NULL);
        s = tok->clean;
    }
    id_out o = {ids, cap, 0};
    size_t start_offset = 0, from = 0;
    added_match m;
    ms6_status st;
    while (next_added(tok, &tok->trie_raw, s, n, from, start_offset, &m)) {
        from = m.end;
        if (m.start > start_offset &&
            (st = encode_normalized(tok, s + start_offset, m.start - start_offset, &o)) != MS6_STATUS_OK)
            return st;
        emit(&o, m.id);
        start_offset = m.stop;
    }
    if (start_offset < n && (st = encode_normalized(tok, s + start_offset, n - start_offset, &o)) != MS6_STATUS_OK)
        return st;
    *n_ids = o.n;
    if (o.n > cap)
        return ms6_fmt_error(tok->err, MS6_STATUS_BUFFER_TOO_SMALL,
                             "ms6_tokenizer_encode: %zu ids do not fit in a buffer of %zu", o.n, cap);
    return MS6_STATUS_OK;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */
/* ------------------------------------------------------------------ */

static int id_known(const ms6_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_ids && tok->dec_len[id] != UINT32_MAX;
}

ms6_status ms6_tokenizer_decode(ms6_tokenizer *tok, const int32_t *ids, size_t n_ids, char *text, size_t cap,
                                size_t *len) {
    if (!tok) return MS6_STATUS_INVALID_ARGUMENT;
    if (len) *len = 0;
    if ((!ids && n_ids) || !len || (!text && cap))
        return ms6_fmt_error(tok->err, MS6_STATUS_INVALID_ARGUMENT, "ms6_tokenizer_decode: %s is NULL",
                             !len ? "len" : (!ids && n_ids) ? "ids" : "text");
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (!id_known(tok, ids[i]))
            return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_RANGE,
                                 "ms6_tokenizer_decode: id %d at position %zu is not a token (vocabulary 0..%lld)",
                                 (int)ids[i], i, (long long)tok->n_ids - 1);
        total += tok->dec_len[ids[i]];
    }
    if (!tok_reserve((void **)&tok->dbuf, &tok->dbuf_cap, total + 1, 1))
        return ms6_fmt_error(tok->err, MS6_STATUS_OUT_OF_MEMORY, "ms6_tokenizer_decode: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        memcpy(tok->dbuf + k, tok->dec_pool + tok->dec_off[ids[i]], tok->dec_len[ids[i]]);
        k += tok->dec_len[ids[i]];
    }
    size_t need = tok_utf8_repair(tok->dbuf, k, NULL, 1, NULL);
    *len = need;
    if (need > cap)
        return ms6_fmt_error(tok->err, MS6_STATUS_BUFFER_TOO_SMALL,
                             "ms6_tokenizer_decode: %zu bytes do not fit in a buffer of %zu", need, cap);
    tok_utf8_repair(tok->dbuf, k, (uint8_t *)text, 1, NULL);
    if (need < cap) text[need] = 0;
    return MS6_STATUS_OK;
}

struct ms6_decoder {
    const ms6_tokenizer *tok;
    uint8_t pend[4]; /* bytes of a character not complete yet */
    size_t n_pend;
    uint8_t *in;
    size_t in_cap;
    uint8_t *out;
    size_t out_cap;
};

ms6_status ms6_decoder_create(const ms6_tokenizer *tok, ms6_decoder **out, ms6_error *err) {
    char msg[MS6_ERRMSG_SIZE];
    if (out) *out = NULL;
    if (!tok || !out) {
        ms6_status st = ms6_fmt_error(msg, MS6_STATUS_INVALID_ARGUMENT, "ms6_decoder_create: %s is NULL",
                                      !tok ? "tok" : "out");
        ms6_error_set(err, st, msg);
        return st;
    }
    ms6_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        ms6_error_set(err, MS6_STATUS_OUT_OF_MEMORY, "ms6_decoder_create: out of memory");
        return MS6_STATUS_OUT_OF_MEMORY;
    }
    d->tok = tok;
    *out = d;
    return MS6_STATUS_OK;
}

void ms6_decoder_free(ms6_decoder *dec) {
    if (!dec) return;
    free(dec->in);
    free(dec->out);
    free(dec);
}

/* Repairs pend + (bytes, n); keeps a trailing incomplete character unless
 * final. The output is what decode() gives for the same bytes. */
static ms6_status decoder_run(ms6_decoder *dec, const char *bytes, size_t n, int final, const char **text,
                              size_t *len) {
    size_t total = dec->n_pend + n;
    if (!tok_reserve((void **)&dec->in, &dec->in_cap, total + 1, 1) ||
        !tok_reserve((void **)&dec->out, &dec->out_cap, 3 * total + 1, 1))
        return MS6_STATUS_OUT_OF_MEMORY;
    memcpy(dec->in, dec->pend, dec->n_pend);
    if (n) memcpy(dec->in + dec->n_pend, bytes, n);
    size_t used;
    size_t k = tok_utf8_repair(dec->in, total, dec->out, final, &used);
    dec->n_pend = total - used; /* at most 3: a so far valid lead + continuations */
    memcpy(dec->pend, dec->in + used, dec->n_pend);
    dec->out[k] = 0;
    *text = (const char *)dec->out;
    *len = k;
    return MS6_STATUS_OK;
}

ms6_status ms6_decoder_push(ms6_decoder *dec, int32_t id, const char **text, size_t *len) {
    if (!dec || !text || !len) return MS6_STATUS_INVALID_ARGUMENT;
    *text = "";
    *len = 0;
    if (!id_known(dec->tok, id)) return MS6_STATUS_OUT_OF_RANGE;
    return decoder_run(dec, dec->tok->dec_pool + dec->tok->dec_off[id], dec->tok->dec_len[id], 0, text, len);
}

ms6_status ms6_decoder_flush(ms6_decoder *dec, const char **text, size_t *len) {
    if (!dec || !text || !len) return MS6_STATUS_INVALID_ARGUMENT;
    *text = "";
    *len = 0;
    return decoder_run(dec, NULL, 0, 1, text, len);
}
