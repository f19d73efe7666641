#!/usr/bin/env bash
# Runs the libFuzzer targets of the checkpoint parsers, each for
# MS6_FUZZ_SECONDS (default 60) seconds, seeded with the committed golden
# checkpoints and configs. A crash leaves its input in BUILD/fuzz-artifacts/
# and makes the script exit non-zero.
# usage: bash scripts/fuzz.sh [BUILD_DIR]   (after `make fuzz` built it; default build-fuzz)
set -euo pipefail
BUILD=${1:-build-fuzz}
SECS=${MS6_FUZZ_SECONDS:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for t in fuzz_safetensors fuzz_config; do
  [ -x "$BUILD/tests/fuzz/$t" ] || { echo "fuzz.sh: $BUILD/tests/fuzz/$t not built (configure with clang and -DMS6_FUZZ=ON)" >&2; exit 1; }
done
WORK=$BUILD/fuzz-work
ART=$BUILD/fuzz-artifacts
mkdir -p "$WORK/seed_st" "$WORK/seed_cfg" "$WORK/corpus_st" "$WORK/corpus_cfg" "$ART"
i=0
for f in "$ROOT"/tests/golden/models/*/*.safetensors; do
  [ -f "$f" ] && cp "$f" "$WORK/seed_st/$i.safetensors" && i=$((i + 1))
done
for f in "$ROOT"/tests/golden/models/*/config.json; do
  [ -f "$f" ] && cp "$f" "$WORK/seed_cfg/$i.json" && i=$((i + 1))
done
# the original state-spaces dialect and a falcon config
cat > "$WORK/seed_cfg/ss.json" <<'JSON'
{"d_model": 768, "n_layer": 24, "vocab_size": 50277, "ssm_cfg": {"d_state": 16, "d_conv": 4, "expand": 2,
 "dt_rank": "auto"}, "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true,
 "pad_vocab_size_multiple": 8, "tie_embeddings": true}
JSON
cat > "$WORK/seed_cfg/falcon.json" <<'JSON'
{"model_type": "falcon_mamba", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 300, "state_size": 16,
 "conv_kernel": 4, "expand": 2, "time_step_rank": "auto", "mixer_rms_eps": 1e-6, "use_bias": false,
 "use_conv_bias": true, "tie_word_embeddings": false, "layer_norm_epsilon": 1e-5}
JSON
status=0
run() { # target corpus seeds max_len
  echo "== $1: ${SECS}s"
  "$BUILD/tests/fuzz/$1" -max_total_time="$SECS" -max_len="$4" -print_final_stats=1 \
    -artifact_prefix="$ART/$1-" "$2" "$3" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|INFO: seed corpus)" || true
  if ls "$ART/$1-"* > /dev/null 2>&1; then
    echo "fuzz.sh: $1 found a crash: $(ls "$ART/$1-"*)" >&2
    status=1
  fi
}
run fuzz_safetensors "$WORK/corpus_st" "$WORK/seed_st" 262144
run fuzz_config "$WORK/corpus_cfg" "$WORK/seed_cfg" 4096
[ $status = 0 ] && echo "fuzz.sh: no crash"
exit $status
