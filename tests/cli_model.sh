#!/usr/bin/env bash
# CLI checks of `mamba-s6 generate / logits / info` on the committed golden
# models: the greedy continuation printed by `generate --print-ids` must be
# the one Hugging Face transformers produced (and 40 tokens of it the same
# as sampling at temperature 1e-6), `logits` writes (n, vocab)
# float32, and bad input (out-of-range id, missing directory, bad JSON,
# wrong shape, missing shard, bad options) exits non-zero with a message
# naming the file / tensor / id.
# usage: bash cli_model.sh <mamba-s6 binary> <source dir>
set -u
BIN=$1
SRC=$2
GOLD=$SRC/tests/golden/models
if ! ls "$GOLD"/*/golden.json > /dev/null 2>&1; then
  echo "cli_model: no golden models under $GOLD, skipping"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# json_array FILE KEY -> the numbers of a flat JSON array, space separated
json_array() { tr -d ' \n\t' < "$1" | sed -E "s/.*\"$2\":\[([-0-9,]*)\].*/\1/" | tr ',' ' '; }

# 1. greedy continuation of every golden model
n_models=0
for g in "$GOLD"/*/golden.json; do
  d=$(dirname "$g")
  prompt=$(json_array "$g" greedy_prompt)
  want=$(json_array "$g" greedy)
  [ -n "$prompt" ] && [ -n "$want" ] || continue
  n=$(echo $want | wc -w)
  got=$("$BIN" generate -m "$d" --ids "$prompt" -n "$n" --temp 0 --print-ids 2> "$T/err") || { bad "generate on $d failed: $(cat "$T/err")"; continue; }
  [ "$(echo $got)" = "$(echo $want)" ] || bad "$d: greedy '$got', golden '$want'"
  grep -q "ms/token" "$T/err" || bad "$d: no timing on stderr"
  # 40 greedy tokens (plain greedy decodes in pieces of 16 fed back where they are
  # made) == the sampler at temperature 1e-6 (logits to the host at every step)
  a=$("$BIN" generate -m "$d" --ids "$prompt" -n 40 --print-ids 2> "$T/err") || bad "$d: generate -n 40: $(cat "$T/err")"
  b=$("$BIN" generate -m "$d" --ids "$prompt" -n 40 --temp 0.000001 --seed 1 --print-ids 2> "$T/err") ||
    bad "$d: generate -n 40 --temp 1e-6: $(cat "$T/err")"
  [ "$(echo $a)" = "$(echo $b)" ] || bad "$d: 40 greedy tokens '$a', sampled at temperature 1e-6 '$b'"
  n_models=$((n_models + 1))
done
echo "cli_model: greedy continuation checked on $n_models golden models"
[ $n_models -gt 0 ] || bad "no golden model had a greedy continuation"

M=$GOLD/mamba_f32_tied
# 2. logits: (n, vocab) float32 little-endian
ids=$(json_array "$M/golden.json" ids)
n=$(echo $ids | wc -w)
V=$(tr -d ' \n' < "$M/golden.json" | sed -E 's/.*"vocab_size":([0-9]+).*/\1/')
"$BIN" logits -m "$M" --ids "$ids" -o "$T/lg.bin" 2> "$T/err" || bad "logits failed: $(cat "$T/err")"
size=$(stat -c %s "$T/lg.bin" 2> /dev/null || echo 0)
[ "$size" = $((n * V * 4)) ] || bad "logits file is $size bytes, expected $((n * V * 4))"
if command -v python3 > /dev/null; then
  python3 - "$T/lg.bin" "$M/logits.bin" "$n" "$V" <<'EOF' || bad "logits differ from the golden"
import struct, sys, math
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
n, V = int(sys.argv[3]), int(sys.argv[4])
x = struct.unpack('<%df' % (n * V), a); y = struct.unpack('<%df' % (n * V), b)
for t in range(n):
    num = sum((x[t*V+i] - y[t*V+i]) ** 2 for i in range(V)); den = sum(y[t*V+i] ** 2 for i in range(V))
    e = math.sqrt(num / den)
    if not e <= 1e-4: sys.exit("position %d: rel err %g" % (t, e))
EOF
fi

# logits of more than one 256-position block (the session carries the state
# between blocks, as chunked prefill does in test_model): one row per id
long=$(for i in $(seq 1 300); do echo $(( (i * 37) % V )); done | tr '\n' ' ')
"$BIN" logits -m "$M" --ids "$long" -o "$T/long.bin" 2> "$T/err" || bad "logits of 300 ids failed: $(cat "$T/err")"
[ "$(stat -c %s "$T/long.bin")" = $((300 * V * 4)) ] || bad "logits of 300 ids: wrong file size"
expect_fail_early() { if "$@" > /dev/null 2>&1; then bad "$*: exit 0"; fi; }
expect_fail_early "$BIN" logits -m "$M" --ids "1 2 $V" -o "$T/partial.bin"
[ ! -e "$T/partial.bin" ] || bad "a failed logits run left $T/partial.bin"

# 3. text prompts through DIR/tokenizer.json (a small NeoX-style tokenizer
#    committed with the tokenizer goldens, paired with a 509-token model)
TOKJ=$SRC/tests/golden/tokenizer/neox_like.json
TM=$GOLD/mamba_f32_untied_bias_n8_k3
if [ -f "$TOKJ" ] && [ -f "$TM/config.json" ]; then
  cp -r "$TM" "$T/tm"
  cp "$TOKJ" "$T/tm/tokenizer.json"
  pids=$("$BIN" tokenize -m "$T/tm" --text "a b c d" 2> "$T/err") || bad "tokenize failed: $(cat "$T/err")"
  a=$("$BIN" generate -m "$T/tm" -p "a b c d" -n 8 --print-ids 2> "$T/err") || bad "generate -p failed: $(cat "$T/err")"
  b=$("$BIN" generate -m "$T/tm" --ids "$pids" -n 8 --print-ids 2> "$T/err") || bad "generate --ids failed: $(cat "$T/err")"
  [ -n "$a" ] && [ "$a" = "$b" ] || bad "-p 'a b c d' gives '$a', --ids '$pids' gives '$b'"
  "$BIN" generate -m "$T/tm" -p "a b c d" -n 8 > "$T/text" 2> "$T/err" || bad "generate text failed: $(cat "$T/err")"
  "$BIN" detokenize -m "$T/tm" --ids "$a" > "$T/detok" 2> "$T/err" || bad "detokenize failed: $(cat "$T/err")"
  cmp -s "$T/text" "$T/detok" || bad "streamed text differs from detokenize of the same ids"
  "$BIN" generate -m "$T/tm" -p "a b" -n 4 --temp 0.9 --top-p 0.9 --seed 7 > "$T/s1" 2> /dev/null || bad "sampling failed"
  "$BIN" generate -m "$T/tm" -p "a b" -n 4 --temp 0.9 --top-p 0.9 --seed 7 > "$T/s2" 2> /dev/null
  cmp -s "$T/s1" "$T/s2" || bad "same seed, different output"
fi

# 4. info
"$BIN" info -m "$M" > "$T/info" 2>&1 || bad "info failed: $(cat "$T/info")"
grep -q "d_model *32" "$T/info" || bad "info does not show d_model: $(cat "$T/info")"
grep -q "parameters" "$T/info" || bad "info does not show the parameter count"

# 5. bad input: non-zero exit and a message naming the culprit
expect_fail() { # name needle command...
  local name=$1 needle=$2
  shift 2
  if "$@" > "$T/out" 2> "$T/err"; then bad "$name: exit 0"; return; fi
  grep -qF -- "$needle" "$T/err" || bad "$name: stderr does not name '$needle': $(cat "$T/err")"
}
expect_fail "out-of-range id" "token id 99999" "$BIN" generate -m "$M" --ids "1 2 99999" -n 2 --print-ids
expect_fail "negative id" "--ids" "$BIN" generate -m "$M" --ids "1 -2" -n 2
expect_fail "missing directory" "/nonexistent/model" "$BIN" generate -m /nonexistent/model --ids "1" -n 2
expect_fail "logits missing -o" "-o FILE" "$BIN" logits -m "$M" --ids "1 2"
expect_fail "unknown option" "--bogus" "$BIN" generate -m "$M" --ids "1" --bogus 3
expect_fail "bad -n" "-n" "$BIN" generate -m "$M" --ids "1" -n lots
expect_fail "-p without tokenizer.json" "tokenizer.json" "$BIN" generate -m "$M" -p "hello" -n 2
expect_fail "both prompts" "exactly one" "$BIN" generate -m "$M" --ids "1" -p "hi"
cp -r "$M" "$T/m"
echo '{"hidden_size": 32,' > "$T/m/config.json"
expect_fail "bad JSON config" "config.json" "$BIN" info -m "$T/m"
cp "$M/config.json" "$T/m/config.json"
sed -i 's/"state_size": *16/"state_size": 8/' "$T/m/config.json"
expect_fail "wrong shape" "x_proj.weight' has shape [34, 64], expected [18, 64]" "$BIN" generate -m "$T/m" --ids "1" -n 1
S=$GOLD/mamba_f32_sharded
if [ -f "$S/model.safetensors.index.json" ]; then
  cp -r "$S" "$T/s"
  shard=$(ls "$T/s" | grep -E '^model-.*safetensors$' | tail -1)
  rm "$T/s/$shard"
  expect_fail "missing shard" "$shard" "$BIN" info -m "$T/s"
fi
if ! "$BIN" --version | grep -q "cuda backend: compiled"; then
  expect_fail "cuda without CUDA" "--backend cpu" "$BIN" generate -m "$M" --ids "1" -n 1 --backend cuda
fi

# bench generate on a golden model (cpu backend): one JSON object per run
# with the keys the benchmark promises and positive times, single and batched
for extra in "" "--batch 3"; do
  if "$BIN" bench generate -m "$M" --threads 2 --prompt 8 --gen 4 --reps 1 --json $extra > "$T/bench" 2> "$T/err"; then
    for k in backend batch prefill_tokens_per_s ms_per_token floor_ms_per_token ratio_to_floor; do
      grep -q "\"$k\":" "$T/bench" || bad "bench generate $extra: no key $k: $(cat "$T/bench")"
    done
    grep -qE '"ms_per_token":[0-9.]*[1-9]' "$T/bench" || bad "bench generate $extra: ms_per_token not positive: $(cat "$T/bench")"
  else
    bad "bench generate $extra failed: $(cat "$T/err")"
  fi
done
expect_fail "bench generate without -m" "-m DIR" "$BIN" bench generate --prompt 8

[ $fail = 0 ] && echo "cli_model: all checks passed"
exit $fail
