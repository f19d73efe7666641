#!/usr/bin/env bash
# dev/cuda/prefill_gpu.sh - the prefill measurement in one command on a GPU
# machine (about 2-3 minutes): builds mamba-s6, test_cuda_model and
# dev/cuda/prefill_prof.c into ${BUILD:-build-pre}, runs test_cuda_model
# (CUDA logits vs the CPU backend on the golden models) while
# `mamba-s6 init --shape 2.8b` writes the model, and prefill_ops_check
# (dev/cuda/prefill_ops_check.c: conv1d and RMSNorm on the model's shapes
# against float64), then prefill_prof on the model
# (prefill time of each plan, the per-op breakdown, the accuracy between
# plans) and `bench generate --prompt 2048` (plain, then with MS6_PROFILE=1). Logs go to $OUT (or
# prefill-logs/); a short summary is printed last. Build dependencies as in
# scripts/gpu.sh (.deps/*.deb when pkg-config cannot find them).
# Knobs: MS6_PF_MODEL (model dir, default /tmp/m2.8b), MS6_PF_PROMPT (2048),
# MS6_PF_SKIP_TEST=1, MS6_PF_BENCH_ENV (extra env for bench generate).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=${OUT:-prefill-logs}
mkdir -p "$LOG"
B=${BUILD:-build-pre}
M=${MS6_PF_MODEL:-/tmp/m2.8b}
P=${MS6_PF_PROMPT:-2048}

. scripts/deps-env.sh # build dependencies from .deps/ when needed: sets cmake_extra
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader > "$LOG/machine.txt" 2>&1

t0=$SECONDS
if ! { cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" &&
  cmake --build "$B" -j "$(nproc)" --target mamba-s6 test_cuda_model; } > "$LOG/build.log" 2>&1; then
  grep -E "error" "$LOG/build.log" | head -20
  tail -5 "$LOG/build.log"
  exit 1
fi
libs=(-L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lstdc++ $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -lm -lpthread)
{ nvcc -O2 -Iinclude -Isrc -x cu -c dev/cuda/prefill_prof.c -o "$B/prefill_prof.o" &&
  nvcc "$B/prefill_prof.o" "$B/libmamba_s6.a" "${libs[@]}" -o "$B/prefill_prof" &&
  gcc -O2 -std=c11 -Iinclude -Isrc -Itests -DMS6_SOURCE_DIR=\"$PWD\" dev/cuda/prefill_ops_check.c tests/kernel_harness.c \
    tests/testutil.c "$B/libmamba_s6.a" "${libs[@]}" -o "$B/prefill_ops_check"; } >> "$LOG/build.log" 2>&1 ||
  { tail -20 "$LOG/build.log"; exit 1; }
echo "build: $((SECONDS - t0)) s"

# the model is written while the tests run
( [ -f "$M/model.safetensors" ] || "$B/mamba-s6" init --shape 2.8b -o "$M" --dtype f16 ) > "$LOG/init.log" 2>&1 &
ipid=$!
if [ "${MS6_PF_SKIP_TEST:-0}" != 1 ]; then
  t0=$SECONDS
  (cd "$B" && timeout 150 ./tests/test_cuda_model) > "$LOG/test_cuda_model.log" 2>&1
  echo "test_cuda_model: rc=$? ($((SECONDS - t0)) s)"
fi
timeout 60 "$B/prefill_ops_check" > "$LOG/prefill_ops_check.log" 2>&1
echo "prefill_ops_check: rc=$?"
wait $ipid || { cat "$LOG/init.log"; exit 1; }

MS6_GEMM_TUNE_VERBOSE=1 timeout 150 "$B/prefill_prof" "$M" "$P" 5 > "$LOG/prefill_prof.log" 2>&1
echo "prefill_prof: rc=$?"
env ${MS6_PF_BENCH_ENV:-} timeout 90 "$B/mamba-s6" bench generate -m "$M" --backend cuda --prompt "$P" --gen 8 \
  > "$LOG/bench_generate.log" 2>&1
echo "bench generate: rc=$?"
# two reps: the first prefill also times the cuBLASLt candidates (gemm.cu), the second is the one to read
MS6_PROFILE=1 timeout 60 "$B/mamba-s6" bench generate -m "$M" --backend cuda --prompt "$P" --gen 8 --reps 2 \
  > "$LOG/bench_generate_profile.log" 2>&1
echo "bench generate (MS6_PROFILE=1): rc=$?"

echo "== $(cat "$LOG/machine.txt")"
grep -E "half prefill|FAIL|fail|passed" "$LOG/test_cuda_model.log" 2>/dev/null | tail -12
grep -E "FAIL|cases" "$LOG/prefill_ops_check.log" | tail -12
grep -v "^gemm tune" "$LOG/prefill_prof.log"
grep "^gemm tune" "$LOG/prefill_prof.log" | head -40
grep -A13 "^prefill profile" "$LOG/bench_generate_profile.log" | tail -14
cat "$LOG/bench_generate.log"
