/*
 * mamba-s6 tokenize / detokenize / bench tokenize: the tokenizer from the
 * command line. `tokenize` prints the ids of a text on one line, `detokenize`
 * prints the text of a list of ids, and the benchmark times encoding of an
 * English text (a file, or generated) on one core.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --tokenizer FILE or -m DIR (DIR/tokenizer.json). Returns the path in
 * *path (malloc'ed) or prints a message and returns non-zero. */
static int tokenizer_path(const char *file, const char *dir, char **path) {
    if (file && dir) {
        fprintf(stderr, "mamba-s6: give --tokenizer FILE or -m DIR, not both\n");
        return 1;
    }
    if (!file && !dir) {
        fprintf(stderr, "mamba-s6: missing --tokenizer FILE or -m DIR\n");
        return 1;
    }
    if (file) {
        *path = strdup(file);
    } else {
        size_t n = strlen(dir) + sizeof "/tokenizer.json";
        *path = malloc(n);
        if (*path) snprintf(*path, n, "%s/tokenizer.json", dir);
    }
    return *path ? 0 : 1;
}

static int load_tokenizer(const char *file, const char *dir, ms6_tokenizer **tok) {
    char *path;
    if (tokenizer_path(file, dir, &path)) return 1;
    ms6_error err;
    ms6_status st = ms6_tokenizer_load(path, tok, &err);
    free(path);
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int read_all(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "mamba-s6: %s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = !b || ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        fprintf(stderr, "mamba-s6: %s: read error\n", path);
        return 1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Encodes text, growing the id buffer when the first guess is short. */
static int encode_all(ms6_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    size_t cap = len + 16;
    *ids = malloc(sizeof **ids * cap);
    if (!*ids) return 1;
    ms6_status st = ms6_tokenizer_encode(tok, text, len, *ids, cap, n);
    if (st == MS6_STATUS_BUFFER_TOO_SMALL) {
        cap = *n;
        int32_t *nb = realloc(*ids, sizeof **ids * (cap ? cap : 1));
        if (!nb) return 1;
        *ids = nb;
        st = ms6_tokenizer_encode(tok, text, len, *ids, cap, n);
    }
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", ms6_tokenizer_last_error(tok));
        return 1;
    }
    return 0;
}

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: mamba-s6 tokenize (--tokenizer FILE | -m DIR) (--text TEXT | --file F)\n"
               "  prints the token ids of the text on one line, separated by spaces.\n"
               "  Invalid UTF-8 is encoded as U+FFFD (see docs/tokenizer.md).\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *file = NULL, *dir = NULL, *text = NULL, *input = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tokenize_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mamba-s6 tokenize: unknown option or missing value: %s\n", a);
            tokenize_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--tokenizer")) file = argv[++i];
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) dir = argv[++i];
        else if (!strcmp(a, "--text")) text = argv[++i];
        else if (!strcmp(a, "--file")) input = argv[++i];
        else {
            fprintf(stderr, "mamba-s6 tokenize: unknown option %s\n", a);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if (!!text + !!input != 1) {
        fprintf(stderr, "mamba-s6 tokenize: give exactly one of --text TEXT or --file F\n");
        tokenize_usage(stderr);
        return 2;
    }
    ms6_tokenizer *tok;
    if (load_tokenizer(file, dir, &tok)) return 1;
    char *buf = NULL;
    size_t len;
    if (input) {
        if (read_all(input, &buf, &len)) {
            ms6_tokenizer_free(tok);
            return 1;
        }
    } else {
        len = strlen(text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = encode_all(tok, input ? buf : text, len, &ids, &n);
    if (!rc) {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    }
    free(ids);
    free(buf);
    ms6_tokenizer_free(tok);
    return rc;
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: mamba-s6 detokenize (--tokenizer FILE | -m DIR) --ids \"ID ID ...\"\n"
               "  prints the text of the ids (spaces or commas between ids), then a newline.\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *file = NULL, *dir = NULL, *ids_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            detokenize_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mamba-s6 detokenize: unknown option or missing value: %s\n", a);
            detokenize_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--tokenizer")) file = argv[++i];
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) dir = argv[++i];
        else if (!strcmp(a, "--ids")) ids_arg = argv[++i];
        else {
            fprintf(stderr, "mamba-s6 detokenize: unknown option %s\n", a);
            detokenize_usage(stderr);
            return 2;
        }
    }
    if (!ids_arg) {
        fprintf(stderr, "mamba-s6 detokenize: missing --ids\n");
        detokenize_usage(stderr);
        return 2;
    }
    int32_t *ids;
    int64_t n;
    if (cli_parse_ids(ids_arg, &ids, &n)) return 2;
    ms6_tokenizer *tok;
    if (load_tokenizer(file, dir, &tok)) {
        free(ids);
        return 1;
    }
    size_t len = 0;
    ms6_status st = ms6_tokenizer_decode(tok, ids, (size_t)n, NULL, 0, &len);
    char *text = NULL;
    if (st == MS6_STATUS_BUFFER_TOO_SMALL || st == MS6_STATUS_OK) {
        text = malloc(len + 1);
        st = text ? ms6_tokenizer_decode(tok, ids, (size_t)n, text, len + 1, &len) : MS6_STATUS_OUT_OF_MEMORY;
    }
    int rc = 0;
    if (st != MS6_STATUS_OK) {
        fprintf(stderr, "mamba-s6: %s\n", ms6_tokenizer_last_error(tok));
        rc = 1;
    } else {
        fwrite(text, 1, len, stdout);
        printf("\n");
    }
    free(text);
    free(ids);
    ms6_tokenizer_free(tok);
    return rc;
}

/* English-like text: common words with capitals, punctuation, numbers,
 * contractions, quotes and paragraphs, from a fixed-seed generator. */
static char *make_english(size_t bytes, size_t *len) {
    static const char *const words[] = {
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
        "not", "he", "I", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
        "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when",
        "will", "would", "who", "so", "no", "time", "people", "year", "way", "day", "man", "thing", "woman",
        "life", "child", "world", "school", "state", "family", "student", "group", "country", "problem", "hand",
        "part", "place", "case", "week", "company", "system", "program", "question", "work", "government",
        "number", "night", "point", "home", "water", "room", "mother", "area", "money", "story", "fact", "month",
        "lot", "right", "study", "book", "eye", "job", "word", "business", "issue", "side", "kind", "head",
        "house", "service", "friend", "father", "power", "hour", "game", "line", "end", "member", "law", "car",
        "city", "community", "name", "president", "team", "minute", "idea", "kid", "body", "information", "back",
        "parent", "face", "others", "level", "office", "door", "health", "person", "art", "war", "history",
        "party", "result", "change", "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher",
        "force", "education", "understand", "remember", "considerable", "development", "environmental",
        "extraordinary", "nevertheless", "approximately", "responsibility", "don't", "it's", "we're", "they've",
        "I'm", "you'll", "she'd", "can't", "won't", "Mamba", "selective", "state", "space", "model", "tokenizer",
    };
    static const char *const seps[] = {" ", " ", " ", " ", " ", " ", " ", " ", ", ", ". ", "; ", ": ", " - ",
                                       "? ", "! ", ".\n", ".\n\n", " \"", "\" ", " (", ") "};
    size_t nw = sizeof words / sizeof words[0], ns = sizeof seps / sizeof seps[0];
    char *b = malloc(bytes + 64);
    if (!b) return NULL;
    uint64_t x = 0x2545F4914F6CDD1DULL;
    size_t n = 0;
    int cap_next = 1;
    while (n < bytes) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char tmp[48];
        int k;
        if (x % 37 == 0) k = snprintf(tmp, sizeof tmp, "%u", (unsigned)((x >> 20) % 100000));
        else k = snprintf(tmp, sizeof tmp, "%s", words[(x >> 8) % nw]);
        if (cap_next && tmp[0] >= 'a' && tmp[0] <= 'z') tmp[0] = (char)(tmp[0] - 32);
        const char *sep = (x >> 40) % 3 ? " " : seps[(x >> 44) % ns];
        cap_next = strchr(".?!", sep[0]) != NULL;
        size_t sl = strlen(sep);
        if (n + (size_t)k + sl > bytes + 60) break;
        memcpy(b + n, tmp, (size_t)k);
        n += (size_t)k;
        memcpy(b + n, sep, sl);
        n += sl;
    }
    *len = n;
    return b;
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: mamba-s6 bench tokenize (--tokenizer FILE | -m DIR) [--file F] [--mb N] [--reps R]\n"
               "  encodes the file (or N MB of generated English-like text, default 16) R times (default 3)\n"
               "  on one thread; prints MB/s and tokens/s of the first (cold cache) and the best pass.\n");
}

int bench_tokenize(int argc, char **argv) {
    const char *file = NULL, *dir = NULL, *input = NULL;
    long long mb = 16, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mamba-s6 bench tokenize: unknown option or missing value: %s\n", a);
            bench_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--tokenizer")) file = argv[++i];
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) dir = argv[++i];
        else if (!strcmp(a, "--file")) input = argv[++i];
        else if (!strcmp(a, "--mb")) {
            if (cli_parse_int("--mb", argv[++i], 1, 4096, &mb)) return 2;
        } else if (!strcmp(a, "--reps")) {
            if (cli_parse_int("--reps", argv[++i], 1, 100, &reps)) return 2;
        } else {
            fprintf(stderr, "mamba-s6 bench tokenize: unknown option %s\n", a);
            bench_usage(stderr);
            return 2;
        }
    }
    ms6_tokenizer *tok;
    if (load_tokenizer(file, dir, &tok)) return 1;
    char *text;
    size_t len;
    if (input ? read_all(input, &text, &len) : !(text = make_english((size_t)mb << 20, &len))) {
        ms6_tokenizer_free(tok);
        return 1;
    }
    size_t cap = len + 16, n = 0;
    int32_t *ids = malloc(sizeof *ids * cap);
    int rc = ids ? 0 : 1;
    double first = 0, best = 0;
    for (long long r = 0; r < reps && !rc; r++) {
        double t0 = cli_now();
        ms6_status st = ms6_tokenizer_encode(tok, text, len, ids, cap, &n);
        double dt = cli_now() - t0;
        if (st != MS6_STATUS_OK) {
            fprintf(stderr, "mamba-s6: %s\n", ms6_tokenizer_last_error(tok));
            rc = 1;
            break;
        }
        if (r == 0) first = best = dt;
        if (dt < best) best = dt;
    }
    if (!rc) {
        printf("tokenizer encode, 1 thread, %s: %.2f MB, %zu tokens (%.2f bytes/token)\n",
               input ? input : "generated English-like text", (double)len / 1e6, n, (double)len / (double)(n ? n : 1));
        printf("%-22s %10s %12s %14s\n", "pass", "seconds", "MB/s", "tokens/s");
        printf("%-22s %10.4f %12.2f %14.0f\n", "first (cold cache)", first, (double)len / 1e6 / first,
               (double)n / first);
        printf("%-22s %10.4f %12.2f %14.0f\n", "best", best, (double)len / 1e6 / best, (double)n / best);
    }
    free(ids);
    free(text);
    ms6_tokenizer_free(tok);
    return rc;
}
