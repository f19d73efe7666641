#!/usr/bin/env bash
# dev/cuda/tune.sh BUILD [ITERS]: the scan's kernel and decomposition variants
# at the benchmark shapes, one JSON line per (variant, shape), through the
# CLI (dev/cuda/sweep.sh does the same in-process with the workbench).
# Variables the scan reads: MS6_SCAN_DIRECT (unset: lanes kernel, 1: one
# thread per channel, 0: tiled kernel), MS6_SCAN_P (lanes per channel, 2/4),
# MS6_SCAN_ASYNC (direct: cp.async row tiles when aligned, 0 = off),
# MS6_SCAN_S (tiled: states per lane), MS6_SCAN_CHUNKS (chunks over L, 1 = no
# split), MS6_SCAN_WANT_THREADS_PER_SM (threads the split aims for);
# MS6_SCAN_VERBOSE prints the choice to stderr.
set -uo pipefail
bin=${1:-build-gpu}/mamba-s6
iters=${2:-10}
variants=(
  "MS6_SCAN_P=2"
  "MS6_SCAN_P=4"
  "MS6_SCAN_P=2 MS6_SCAN_SPLIT_BELOW_PER_SM=0"
  "MS6_SCAN_P=4 MS6_SCAN_WANT_THREADS_PER_SM=512"
  "MS6_SCAN_DIRECT=1"
)
for shape in 1,1536,2048 8,1536,2048 1,5120,8192 8,5120,2048 4,2560,16384 1,1536,131072 16,2560,4096; do
  for v in "${variants[@]}"; do
    env MS6_SCAN_VERBOSE=1 $v "$bin" bench scan --backend cuda --shape "$shape" --no-decode --json --iters "$iters" |
      sed "s/^{/{\"variant\":\"$v\",/"
  done
done
