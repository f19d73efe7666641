#!/usr/bin/env bash
# dev/cuda/tune.sh BUILD [ITERS]: the scan's decomposition variants at the
# benchmark shapes, one JSON line per (variant, shape). S = states per lane
# (MS6_SCAN_S), K = chunks over L (MS6_SCAN_CHUNKS; 1 = no split), W = the
# threads per SM the decomposition aims for (MS6_SCAN_WANT_THREADS_PER_SM);
# 0 = the kernel's own choice (printed to stderr by MS6_SCAN_VERBOSE).
set -uo pipefail
bin=${1:-build-gpu}/mamba-s6
iters=${2:-10}
for shape in 1,1536,2048 8,1536,2048 1,5120,8192 8,5120,2048 4,2560,16384 1,1536,131072 16,2560,4096; do
  for v in "0 0 256" "0 0 512" "16 1 0" "8 1 0" "4 1 0" "4 8 0" "4 16 0" "8 8 0"; do
    set -- $v
    MS6_SCAN_VERBOSE=$([ "$1" = 0 ] && echo 1 || echo 0) MS6_SCAN_S=$1 MS6_SCAN_CHUNKS=$2 \
      MS6_SCAN_WANT_THREADS_PER_SM=$([ "$3" = 0 ] && echo 256 || echo "$3") \
      "$bin" bench scan --backend cuda --shape "$shape" --no-decode --json --iters "$iters" |
      sed "s/^{/{\"S\":$1,\"K\":$2,\"W\":$3,/"
  done
done
