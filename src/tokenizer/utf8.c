/*
 * utf8.c - UTF-8 helpers of the tokenizer: the GPT-2 byte <-> code point
 * alphabet, repair of invalid UTF-8 (one U+FFFD per maximal subpart, as
 * Python's errors='replace' and Rust's from_utf8_lossy), the character
 * classes `tokenizers` uses around added tokens, and NFC through utf8proc
 * with a fast path that leaves ASCII untouched.
 */
#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <utf8proc.h>

/* GPT-2 bytes_to_unicode: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
 * themselves; the other 68 bytes (controls, space, 0x7F..0xA0, 0xAD) map in
 * increasing order to U+0100, U+0101, ... so that every byte is printable. */
static int in_identity_range(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (in_identity_range(b)) return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!in_identity_range(x)) n++;
    return 256 + n;
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return in_identity_range(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    unsigned n = 0;
    for (unsigned x = 0; x < 256; x++)
        if (!in_identity_range(x)) {
            if (n == cp - 256) return (int)x;
            n++;
        }
    return -1;
}

/* Second-byte range of a lead byte and the number of continuation bytes
 * (Unicode Table 3-7, well-formed UTF-8 byte sequences); 0 = not a lead. */
static int lead_info(uint8_t c, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 1;
    if (c == 0xE0) { *lo = 0xA0; return 2; }
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return 2;
    if (c == 0xED) { *hi = 0x9F; return 2; } /* no surrogates */
    if (c == 0xF0) { *lo = 0x90; return 3; } /* no overlongs */
    if (c >= 0xF1 && c <= 0xF3) return 3;
    if (c == 0xF4) { *hi = 0x8F; return 3; } /* <= U+10FFFF */
    return 0;
}

size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint8_t lo, hi;
        int need = lead_info(s[i], &lo, &hi);
        if (!need || i + (size_t)need >= n) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (int j = 2; j <= need; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF) return i;
        i += (size_t)need + 1;
    }
    return n;
}

size_t tok_utf8_repair(const uint8_t *s, size_t n, uint8_t *out, int final, size_t *consumed) {
    static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (out) out[o] = c;
            o++;
            i++;
            continue;
        }
        uint8_t lo, hi;
        int need = lead_info(c, &lo, &hi);
        size_t j = 1;
        if (need) {
            while (j <= (size_t)need) {
                if (i + j >= n) {
                    if (!final) goto done; /* may still complete: keep it */
                    break;
                }
                uint8_t d = s[i + j];
                if (j == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF)) break;
                j++;
            }
        }
        if (need && j == (size_t)need + 1) {
            if (out) memcpy(out + o, s + i, j);
            o += j;
        } else {
            if (out) memcpy(out + o, fffd, 3);
            o += 3;
        }
        i += j;
    }
done:
    if (consumed) *consumed = i;
    return o;
}

size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80 || n < 2) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0 || n < 4) {
        if (n < 3) { *cp = c; return 1; }
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

int tok_is_whitespace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

int tok_is_word_char(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return 1; /* Join_Control */
    /* letters and letter numbers (~Alphabetic), marks, decimal digits, connectors */
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

int tok_reserve(void **buf, size_t *cap, size_t n, size_t elt) {
    if (n <= *cap) return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < n) {
        if (nc > SIZE_MAX / 2 / elt) return 0;
        nc *= 2;
    }
    void *p = realloc(*buf, nc * elt);
    if (!p) return 0;
    *buf = p;
    *cap = nc;
    return 1;
}

/*
 * NFC. An ASCII character is a starter that never combines with what comes
 * before it, so NFC(a + b) = NFC(a) + NFC(b) whenever b starts with ASCII.
 * Only the runs of non-ASCII characters, each with the ASCII character in
 * front of it (an 'e' before U+0301 composes to U+00E9), go to utf8proc;
 * everything else is copied.
 */
int tok_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_cap, size_t *out_len) {
    size_t o = 0, i = 0;
    if (!tok_reserve((void **)out, out_cap, n + 1, 1)) return 0;
    while (i < n) {
        size_t a = i;
        while (a < n && s[a] < 0x80) a++;
        if (a == n) {
            memcpy(*out + o, s + i, n - i);
            o += n - i;
            break;
        }
        size_t b = a;
        while (b < n && s[b] >= 0x80) b++;
        /* after the first run, s[i] is the ASCII byte that ended the previous
         * run, so a > i and s[a-1] is the character in front of this run */
        size_t seg = a > i ? a - 1 : a;
        memcpy(*out + o, s + i, seg - i);
        o += seg - i;
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map(s + seg, (utf8proc_ssize_t)(b - seg), &dst,
                                          (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
        if (r < 0) {
            /* cannot happen on repaired UTF-8; keep the bytes unchanged */
            free(dst);
            if (!tok_reserve((void **)out, out_cap, o + (b - seg) + (n - b) + 1, 1)) return 0;
            memcpy(*out + o, s + seg, b - seg);
            o += b - seg;
        } else {
            if (!tok_reserve((void **)out, out_cap, o + (size_t)r + (n - b) + 1, 1)) {
                free(dst);
                return 0;
            }
            memcpy(*out + o, dst, (size_t)r);
            o += (size_t)r;
            free(dst);
        }
        i = b;
    }
    *out_len = o;
    return 1;
}
