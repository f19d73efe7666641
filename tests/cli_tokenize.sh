#!/usr/bin/env bash
# mamba-s6 tokenize / detokenize / bench tokenize from the shell, on the
# committed golden tokenizer: ids match the goldens (when python3 is there to
# read cases.json), text round-trips through both commands, -m DIR works,
# invalid UTF-8 is encoded (as U+FFFD), and bad input fails with a message.
# usage: cli_tokenize.sh <mamba-s6 binary> <source dir>
set -u
BIN=$1
SRC=$2
TOK=$SRC/tests/golden/tokenizer/neox_like.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check <description> <command...>: the command must succeed
    local what=$1
    shift
    if ! "$@"; then
        echo "FAIL: $what"
        fail=1
    fi
}

text='Hello, world! It'\''s 2026:   three spaces,	a tab, caf'$'\xc3\xa9'' and <|endoftext|> too.'
ids=$("$BIN" tokenize --tokenizer "$TOK" --text "$text") || { echo "FAIL: tokenize"; exit 1; }
check "tokenize printed ids" test -n "$ids"
printf '%s' "$text" >"$TMP/in.txt"
ids_file=$("$BIN" tokenize --tokenizer "$TOK" --file "$TMP/in.txt")
check "--text and --file agree" test "$ids" = "$ids_file"
mkdir "$TMP/model"
cp "$TOK" "$TMP/model/tokenizer.json"
ids_m=$("$BIN" tokenize -m "$TMP/model" --text "$text")
check "-m DIR reads DIR/tokenizer.json" test "$ids" = "$ids_m"
back=$("$BIN" detokenize --tokenizer "$TOK" --ids "$ids")
check "detokenize gives the text back" test "$back" = "$text"
back_c=$("$BIN" detokenize -m "$TMP/model" --ids "${ids// /,}")
check "comma-separated ids" test "$back_c" = "$text"

if command -v python3 >/dev/null; then
    # every golden case through the CLI (valid UTF-8 ones without NUL bytes)
    python3 - "$BIN" "$TOK" "$SRC/tests/golden/tokenizer/cases.json" <<'EOF' || fail=1
import json, subprocess, sys
binary, tok, cases = sys.argv[1:4]
bad = n = 0
for c in json.load(open(cases))["tokenizers"]["neox_like"]:
    raw = bytes.fromhex(c["text_hex"])
    if b"\0" in raw or not raw:
        continue
    n += 1
    r = subprocess.run([binary, "tokenize", "--tokenizer", tok, "--text", raw], capture_output=True)
    if [int(x) for x in r.stdout.split()] != c["ids"]:
        bad += 1
        print("FAIL: golden case", raw[:40], r.stdout[:80], r.stderr[:200])
print(f"cli golden cases: {n - bad}/{n}")
sys.exit(1 if bad else 0)
EOF
fi

# invalid UTF-8 is encoded as U+FFFD, and decodes as such
printf 'ab\xffcd\xe2\x82' >"$TMP/bad.txt"
printf 'ab\xef\xbf\xbdcd\xef\xbf\xbd' >"$TMP/fixed.txt"
a=$("$BIN" tokenize --tokenizer "$TOK" --file "$TMP/bad.txt")
b=$("$BIN" tokenize --tokenizer "$TOK" --file "$TMP/fixed.txt")
check "invalid UTF-8 encodes like its U+FFFD repair" test -n "$a" -a "$a" = "$b"

# bad input: non-zero exit and a message naming the problem
expect_fail() { # expect_fail <needle> <command...>
    local needle=$1
    shift
    local err
    if err=$("$@" 2>&1 >/dev/null); then
        echo "FAIL: '$*' should fail"
        fail=1
    elif ! grep -q -- "$needle" <<<"$err"; then
        echo "FAIL: '$*': message '$err' lacks '$needle'"
        fail=1
    fi
}
expect_fail "cannot open" "$BIN" tokenize --tokenizer "$TMP/none.json" --text x
expect_fail "tokenizer.json" "$BIN" tokenize -m "$TMP" --text x
printf '{"model": {"type": "Unigram", "vocab": []}}' >"$TMP/uni.json"
expect_fail "unknown model type 'Unigram'" "$BIN" tokenize --tokenizer "$TMP/uni.json" --text x
printf '{"model": ' >"$TMP/trunc.json"
expect_fail "invalid JSON" "$BIN" tokenize --tokenizer "$TMP/trunc.json" --text x
expect_fail "not a token" "$BIN" detokenize --tokenizer "$TOK" --ids "1 99999999"
expect_fail "not a token id" "$BIN" detokenize --tokenizer "$TOK" --ids "1 x"
expect_fail "exactly one of" "$BIN" tokenize --tokenizer "$TOK"
expect_fail "not both" "$BIN" tokenize --tokenizer "$TOK" -m "$TMP/model" --text x

out=$("$BIN" bench tokenize --tokenizer "$TOK" --mb 1 --reps 1)
check "bench tokenize prints MB/s" grep -q "MB/s" <<<"$out"

exit $fail
