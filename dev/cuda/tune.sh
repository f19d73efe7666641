#!/usr/bin/env bash
# dev/cuda/tune.sh BUILD [ITERS]: the scan's decomposition variants at the
# benchmark shapes, one JSON line per (variant, shape). S = states per lane
# (MS6_SCAN_S), K = chunks over L (MS6_SCAN_CHUNKS; 1 = no split), 0 = the
# kernel's own choice (printed to stderr by MS6_SCAN_VERBOSE).
set -uo pipefail
bin=${1:-build-gpu}/mamba-s6
iters=${2:-10}
for shape in 1,1536,2048 8,1536,2048 1,5120,8192 8,5120,2048 4,2560,16384 1,1536,131072 16,2560,4096; do
  for v in "0 0" "16 1" "8 1" "4 1" "4 4" "4 8" "4 16" "8 8" "16 8"; do
    set -- $v
    MS6_SCAN_VERBOSE=$([ "$1" = 0 ] && echo 1 || echo 0) MS6_SCAN_S=$1 MS6_SCAN_CHUNKS=$2 \
      "$bin" bench scan --backend cuda --shape "$shape" --no-decode --json --iters "$iters" |
      sed "s/^{/{\"S\":$1,\"K\":$2,/"
  done
done
