#!/usr/bin/env bash
# The fused decode step on a GPU machine: builds mamba-s6 and test_cuda_model
# (sm_90), runs the test (+ a 130m-shaped model), then bench generate on
# 130m / 1.4b / 2.8b shapes with the fused path, its knobs, and without it.
# Logs under $OUT. Build dependencies as in scripts/gpu.sh.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
. scripts/deps-env.sh # build dependencies from .deps/ when needed: sets cmake_extra
B=build-dec
t0=$SECONDS
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" > "$OUT/cfg.log" 2>&1
cmake --build $B -j16 --target mamba-s6 test_cuda_model > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build $((SECONDS - t0)) s"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
$B/mamba-s6 init --shape 130m -o /tmp/m130m --dtype f16 > "$OUT/init.log" 2>&1
( for s in 1.4b 2.8b; do $B/mamba-s6 init --shape $s -o /tmp/m$s --dtype f16 > /dev/null; done; echo inits done ) >> "$OUT/init.log" 2>&1 &
ip=$!
MS6_CUDA_TEST_MODEL=/tmp/m130m timeout 80 $B/tests/test_cuda_model > "$OUT/test.log" 2>&1; echo "test_cuda_model rc=$? ($((SECONDS - t0)) s)"
grep -E "FAIL|fused|batched vs|passed|failed|greedy" "$OUT/test.log" | tail -30
MS6_DEC_CH=4 timeout 60 $B/tests/test_cuda_model > "$OUT/test-ch4.log" 2>&1; echo "test_cuda_model (MS6_DEC_CH=4) rc=$? ($((SECONDS - t0)) s)"
grep -E "FAIL|passed|failed" "$OUT/test-ch4.log" | tail -4
wait $ip; cat "$OUT/init.log"
bg() { echo "== $*"; timeout 60 $B/mamba-s6 bench generate --backend cuda "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -E "^decode|rror" ; }
for s in 130m 1.4b 2.8b; do
  bg -m /tmp/m$s --prompt 128 --gen 128 --reps 2
  MS6_DEC_CH=4 bg -m /tmp/m$s --prompt 128 --gen 128 --reps 2
  MS6_CUDA_FUSED=0 bg -m /tmp/m$s --prompt 128 --gen 128 --reps 2
done
MS6_CUDA_PDL=0 bg -m /tmp/m130m --prompt 128 --gen 128 --reps 2
MS6_CUDA_PDL=0 bg -m /tmp/m2.8b --prompt 128 --gen 128 --reps 2
MS6_CUDA_GRAPH=0 bg -m /tmp/m130m --prompt 128 --gen 128 --reps 2
bg -m /tmp/m2.8b --batch 2 --prompt 32 --gen 32 --reps 2
MS6_CUDA_FUSED=0 bg -m /tmp/m2.8b --batch 2 --prompt 32 --gen 32 --reps 2
bg -m /tmp/m2.8b --batch 64 --prompt 32 --gen 32 --reps 2
bg -m /tmp/m2.8b --prompt 128 --gen 128 --reps 2 --json
echo "total $((SECONDS - t0)) s"
