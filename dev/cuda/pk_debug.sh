#!/usr/bin/env bash
# dev/cuda/pk_debug.sh - the persistent decode kernel on random-init models:
# decode ms/token (CUDA graph) per variant (VARIANTS: env settings, one per
# word, each with MS6_CUDA_PERSIST=1; "-" the kernel's defaults; "perlayer"
# the per-layer kernels), then the MS6_PK_PROFILE breakdown with the
# defaults, for each of SHAPES.
. dev/cuda/build-gpu.sh
B=build-gpu/mamba-s6
for s in ${SHAPES:-130m 1.4b 2.8b}; do
  d=$(ms6_model $s)
  for v in ${VARIANTS:--}; do
    envs=(MS6_CUDA_PERSIST=1)
    [ "$v" = perlayer ] && envs=(MS6_CUDA_PERSIST=0)
    [ "$v" != perlayer ] && [ "$v" != - ] && envs+=("$v")
    printf '%-6s %-22s ' "$s" "$v"
    env "${envs[@]}" timeout 30 $B bench generate -m $d --backend cuda --prompt 32 --gen 256 --reps 2 2>&1 |
      grep -E "^decode|rror" | tr -s ' '
  done
  [ "${PROFILE:-1}" = 1 ] && MS6_CUDA_PERSIST=1 MS6_CUDA_GRAPH=0 MS6_PK_PROFILE=1 timeout 30 $B bench generate -m $d --backend cuda \
    --prompt 8 --gen 130 --reps 1 2>&1 | grep -A1 "pk profile" | tail -2
done
