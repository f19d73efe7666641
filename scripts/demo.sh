#!/usr/bin/env bash
# make demo: the main job of this build, end to end on this machine:
# kernels checked against the reference, the tokenizer, a golden model's
# greedy continuation next to Hugging Face's, and decode speed of a
# 130m-shaped model next to this machine's memory floor.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
BIN="$BUILD/mamba-s6"

echo "== $("$BIN" --version)"
echo
echo "== 1. kernels: every backend against the reference (cpu-ref)"
"$BIN" selftest --len 256
echo

echo "== 2. tokenizer"
TOK=tests/golden/tokenizer/neox_like.json
[ -f ../shared/data/gpt-neox-20b/tokenizer.json ] && TOK=../shared/data/gpt-neox-20b/tokenizer.json
TEXT="Mamba is a selective state space model."
IDS=$("$BIN" tokenize --tokenizer "$TOK" --text "$TEXT")
echo "tokenizer $TOK"
echo "  text : $TEXT"
echo "  ids  : $IDS"
echo "  back : $("$BIN" detokenize --tokenizer "$TOK" --ids "$IDS")"
echo

echo "== 3. a golden model (made with Hugging Face transformers): greedy continuation"
M=tests/golden/models/mamba_f32_tied
json_list() { tr -d ' \n' < "$M/golden.json" | sed -n "s/.*\"$1\":\[\([0-9,]*\)\].*/\1/p" | tr ',' ' '; }
PROMPT=$(json_list greedy_prompt)
WANT=$(json_list greedy)
GOT=$("$BIN" generate -m "$M" --ids "$PROMPT" -n "$(echo $WANT | wc -w)" --print-ids 2>/dev/null)
echo "  prompt           : $PROMPT"
echo "  mamba-s6         : $GOT"
echo "  transformers f64 : $WANT"
[ "$(echo $GOT)" = "$(echo $WANT)" ] && echo "  match" || { echo "  MISMATCH"; exit 1; }
echo

echo "== 4. decode speed: 130m-shaped random model (f16 weights) on this CPU"
DEMO_MODEL="$BUILD/demo-130m"
[ -f "$DEMO_MODEL/model.safetensors" ] || "$BIN" init --shape 130m --dtype f16 -o "$DEMO_MODEL"
"$BIN" bench generate -m "$DEMO_MODEL" --prompt 128 --gen 16
