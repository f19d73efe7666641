#!/usr/bin/env bash
# dev/cuda/decode_variants.sh - batch-1 decode ms/token (CUDA graph) on
# random-init models for each of VARIANTS (env settings joined by commas,
# one per word; "-" the defaults), for each of SHAPES. Alternates the
# variants REPS times so drift shows. Builds into build-gpu unless
# NOBUILD=1.
. dev/cuda/build-gpu.sh
B=build-gpu/mamba-s6
for s in ${SHAPES:-130m 1.4b 2.8b}; do
  d=$(ms6_model $s)
  for r in $(seq ${REPS:-1}); do
    for v in ${VARIANTS:--}; do
      envs=()
      [ "$v" != - ] && IFS=, read -ra envs <<< "$v"
      printf '%-6s %-36s ' "$s" "$v"
      env "${envs[@]}" timeout 60 $B bench generate -m $d --backend cuda --prompt 32 --gen ${GEN:-256} --reps 2 2>&1 |
        grep -E "^decode|rror" | tr -s ' '
    done
  done
done
