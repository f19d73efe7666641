#!/usr/bin/env bash
# scripts/gpu.sh - everything to run on a GPU machine, in one command:
#   1. build (CMake, Release, CUDA arch ${MS6_CUDA_ARCHS:-90}) into ${BUILD:-build-gpu};
#   2. the GPU tests (ctest -R cuda), then the whole ctest;
#   3. compute-sanitizer memcheck and racecheck on the small sweep
#      (test_cuda_kernels --small);
#   4. the benchmarks that exist: `bench scan --backend cuda` (table + JSON),
#      the dev/cuda workbenches (scan_workbench.cu, bench_gemm.c), and
#      `bench generate` on random-init models (the end-to-end section below);
#   5. a short summary table, printed last.
# Logs go to gpu-logs/ and, when $OUT is set, as one archive
# $OUT/gpu-logs.tar.gz plus $OUT/summary.txt. Each step has a time limit
# so the whole script stays well under 10 minutes; a failing step is reported
# and the script goes on. Exit status: non-zero when a build, test or
# sanitizer step failed.
#
# Build dependencies (cJSON, PCRE2, utf8proc, pkg-config): scripts/deps-env.sh
# uses the .deb files of a folder .deps/ (fetched elsewhere with
# `apt-get download`, for a machine with no network) when pkg-config cannot
# find them.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${MS6_GPU_LOGDIR:-gpu-logs}
mkdir -p "$LOG"
BUILD=${BUILD:-build-gpu}
ARCHS=${MS6_CUDA_ARCHS:-90}
JOBS=$(nproc 2>/dev/null || echo 4)
summary=()
fail=0

# step NAME LIMIT_S CMD...: runs CMD with a time limit, output to $LOG/NAME.log
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc
  timeout "$limit" "$@" > "$LOG/$name.log" 2>&1
  rc=$?
  summary+=("$(printf '%-22s %-6s %4ss' "$name" "$([ $rc = 0 ] && echo ok || echo "rc=$rc")" $((SECONDS - t0)))")
  echo "== $name: rc=$rc ($((SECONDS - t0)) s), log $LOG/$name.log"
  return $rc
}

finish() {
  {
    echo "== summary ($(head -c 60 "$LOG/commit.txt" 2>/dev/null))"
    printf '%s\n' "${summary[@]}"
    echo
    cat "$LOG/bench-scan.log" 2>/dev/null
    for f in "$LOG"/bench-scan-poly*.log "$LOG"/bench-scan-ref*.log; do
      [ -f "$f" ] && { echo "-- $(basename "$f" .log)"; grep '^scan' "$f"; }
    done
    [ -f "$LOG/scan-workbench.log" ] && cat "$LOG/scan-workbench.log"
    [ -f "$LOG/bench-gemv.log" ] && cat "$LOG/bench-gemv.log"
    [ -f "$LOG/split-sweep.log" ] && cat "$LOG/split-sweep.log"
    [ -f "$LOG/bench-splitk.log" ] && cat "$LOG/bench-splitk.log"
    [ -f "$LOG/bench-generate.log" ] && tail -15 "$LOG/bench-generate.log"
    cat "$LOG"/prof-*.table 2>/dev/null
    cat "$LOG"/ncu-*.log 2>/dev/null
    grep -hE "FAIL|cases|passed|failed" "$LOG/ctest-cuda.log" 2>/dev/null | tail -8
  } > "$LOG/summary.txt"
  if [ -n "${OUT:-}" ]; then
    cp "$LOG/summary.txt" "$OUT/summary.txt"
    tar czf "$OUT/gpu-logs.tar.gz" -C "$LOG" .
  fi
  echo
  cat "$LOG/summary.txt"
}

# ---- dependencies ----
. scripts/deps-env.sh # build dependencies from .deps/ when needed: sets cmake_extra

# ---- machine ----
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv; nvcc --version | tail -2; } \
  > "$LOG/machine.txt" 2>&1
cat "$LOG/machine.txt"
# a copy of the tree may carry no .git, or a stale one: MS6_COMMIT (set it to
# `git rev-parse HEAD` where the tree comes from) names the commit first
if [ -n "${MS6_COMMIT:-}" ]; then
  echo "commit $MS6_COMMIT" > "$LOG/commit.txt"
else
  git log -1 --format='commit %H %s' > "$LOG/commit.txt" 2>/dev/null || echo "commit unknown" > "$LOG/commit.txt"
fi

# ---- build ----
if ! step configure 300 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS="$ARCHS" \
  -DMS6_DEC_PROF=OFF "${cmake_extra[@]}"; then
  tail -30 "$LOG/configure.log"
  finish
  exit 1
fi
if ! step build 480 cmake --build "$BUILD" -j "$JOBS"; then
  grep -E "error|Error" "$LOG/build.log" | head -30
  finish
  exit 1
fi
grep -E "warning" "$LOG/build.log" | head -10

# ---- tests ----
step ctest-cuda 300 bash -c "cd '$BUILD' && ctest -R cuda --output-on-failure" || fail=1
# the kernels a default run does not pick: the general state update kernel, the v5 scan step loop,
# the scan's v6 without the polynomial exp2 at the host's P and P = 2 (MS6_GPU_QUICK=1 skips them)
if [ "${MS6_GPU_QUICK:-0}" != 1 ]; then
  MS6_UPDATE_V4=0 MS6_SCAN_V6=0 step kernels-v5-general 120 "$BUILD/tests/test_cuda_kernels" || fail=1
  MS6_SCAN_POLY=0 step kernels-poly0 120 "$BUILD/tests/test_cuda_kernels" || fail=1
  MS6_SCAN_POLY=0 MS6_SCAN_P=2 step kernels-poly0-p2 120 "$BUILD/tests/test_cuda_kernels" || fail=1
fi
# the variants' tests and the sanitizers (MS6_GPU_VARIANT_TESTS=0 skips them: a timing run)
if [ "${MS6_GPU_VARIANT_TESTS:-1}" != 0 ]; then
  # the scalar conv update (the 4-channel one is the default where it applies): the whole kernel sweep
  MS6_CONV_UPD_VEC=0 step kernels-conv-upd-scalar 120 "$BUILD/tests/test_cuda_kernels" || fail=1
  # the v6 scan with 64-step B/C tiles (MS6_SCAN_V6_TL64=1): the whole kernel sweep
  MS6_SCAN_V6_TL64=1 step kernels-v6-tl64 120 "$BUILD/tests/test_cuda_kernels" || fail=1
  # and the fused decode's out_proj with one row per warp (the golden models are below its d_model)
  MS6_DEC_K4=1 step model-test-k4r1 120 "$BUILD/tests/test_cuda_model" || fail=1
  # batched decode with the fused dt_proj + state update op (decode_batch.cu) at every batch size
  MS6_DEC_BATCH_FUSED=1 step model-test-batch-fused 120 "$BUILD/tests/test_cuda_model" || fail=1
  # the state update and out_proj in one kernel (K34, the default: 32 channels on the golden models,
  # run by ctest-cuda) at the other widths, and off (K3 + K4)
  for cb in 16 64; do
    MS6_DEC_K34_CB=$cb step model-test-k34-cb$cb 120 "$BUILD/tests/test_cuda_model" || fail=1
  done
  MS6_DEC_K34=0 step model-test-k34-off 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K1's scalar RMSNorm loop (the vector one is the default for one sequence)
  MS6_DEC_VEC=0 step model-test-vec0 120 "$BUILD/tests/test_cuda_model" || fail=1
  # the generate loop's argmax as its own kernel (argmax_feed) instead of in the head
  MS6_HEAD_ARGMAX=0 step model-test-head-argmax0 120 "$BUILD/tests/test_cuda_model" || fail=1
  # the head as a block per row group (MS6_DEC_HEAD_LOOP=0) instead of one wave of looping blocks
  MS6_DEC_HEAD_LOOP=0 step model-test-head-loop0 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K1's conv update with a lane per row (MS6_DEC_EPI, the default) off: the generic loops
  MS6_DEC_EPI=0 step model-test-epi0 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K1 at 5 blocks per SM (MS6_DEC_K1_5: by default only where 4 per SM need two waves; the golden
  # models need MS6_DEC_CH=4 to take it), with and without EPI
  MS6_DEC_K1_5=1 MS6_DEC_CH=4 step model-test-k1-5 120 "$BUILD/tests/test_cuda_model" || fail=1
  MS6_DEC_K1_5=1 MS6_DEC_CH=4 MS6_DEC_EPI=0 step model-test-k1-5-epi0 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K34's chain in one round trip (MS6_DEC_K34_CHAIN, the default) off, at 32 channels and at 64
  # (rows split, slice tickets)
  MS6_DEC_K34_CHAIN=0 step model-test-k34-chain0 120 "$BUILD/tests/test_cuda_model" || fail=1
  MS6_DEC_K34_CHAIN=0 MS6_DEC_K34_CB=64 step model-test-k34-chain0-cb64 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K34 at 64 channels with 3 and with 4 register rounds before its wait (MS6_DEC_K34_DEPTH=3|4; by
  # default 4 for one sequence where a block has more than 4 rounds of rows, as on 2.8b)
  MS6_DEC_K34_CB=64 MS6_DEC_K34_DEPTH=3 step model-test-k34-depth3 120 "$BUILD/tests/test_cuda_model" || fail=1
  MS6_DEC_K34_CB=64 MS6_DEC_K34_DEPTH=4 step model-test-k34-depth4 120 "$BUILD/tests/test_cuda_model" || fail=1
  # K1's conv state, taps and bias asked into L1 (MS6_DEC_CP=0) instead of copied into shared memory
  # before the wait (the default)
  MS6_DEC_CP=0 step model-test-cp0 120 "$BUILD/tests/test_cuda_model" || fail=1
fi
if [ "${MS6_GPU_SKIP_ALL:-0}" != 1 ]; then # MS6_GPU_SKIP_ALL=1: GPU tests only (a quick kernel iteration)
  step ctest-all 300 bash -c "cd '$BUILD' && ctest -j $JOBS --output-on-failure" || fail=1
fi

# ---- compute-sanitizer on the small sweep ----
if [ "${MS6_GPU_VARIANT_TESTS:-1}" = 0 ]; then
  summary+=("compute-sanitizer      skipped (MS6_GPU_VARIANT_TESTS=0)")
elif command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    step "sanitizer-$tool" "${MS6_GPU_SANITIZER_LIMIT:-240}" compute-sanitizer --tool "$tool" --error-exitcode 99 \
      "$BUILD/tests/test_cuda_kernels" --small || fail=1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Hazard|Invalid" "$LOG/sanitizer-$tool.log" | head -5
  done
else
  summary+=("compute-sanitizer      absent")
fi

# summary lines of a step's log: bench generate's prefill / decode rows, bench scan's ms per shape
e2e_line() { awk -v n="$1" '$1 ~ /^(prefill|decode)$/ && $2 ~ /^[0-9.]+$/ {printf "%s %s %s ms/tok %s tok/s ratio %s; ", n, $1, $2, $3, $NF}' "$LOG/$1.log"; }
scan_line() { awk -v n="$1" 'BEGIN {printf "%s ms:", n} $1 == "scan" {printf " %s", $5}' "$LOG/$1.log"; }
# with_vars VAR=VALUE[,VAR=VALUE...] CMD...: CMD (a command or a function of this script) with those
# variables exported for it alone (function-local: any earlier values come back after it)
with_vars() {
  local kv x
  IFS=, read -ra kv <<< "$1"
  shift
  for x in "${kv[@]}"; do local -x "$x"; done
  "$@"
}
# [VARIANT_LINE=fn] variant NAME:VAR=VALUE[,VAR=VALUE...] STEP LIMIT CMD...: the step with those
# variables set (none for NAME:), then its line in the summary (e2e_line unless VARIANT_LINE names another)
variant() {
  local name=$2 set=${1#*:}
  shift 2
  with_vars "$set" step "$name" "$@"
  summary+=("  $(${VARIANT_LINE:-e2e_line} "$name")")
}

# ---- benchmarks ----
step bench-scan 300 "$BUILD/mamba-s6" bench scan --backend cuda
step bench-scan-json 300 "$BUILD/mamba-s6" bench scan --backend cuda --json
# scan variants beside the default, alternating (MS6_GPU_QUICK=1 skips them): every decay on the MUFU
if [ "${MS6_GPU_QUICK:-0}" != 1 ]; then
  for v in 0; do
    MS6_SCAN_POLY=$v step "bench-scan-poly$v" 200 "$BUILD/mamba-s6" bench scan --backend cuda --no-decode
    step "bench-scan-ref$v" 200 "$BUILD/mamba-s6" bench scan --backend cuda --no-decode
  done
fi
# scan variants beside the default, NAME:SETTING as for the decode variants below
# (MS6_GPU_SCAN_VARIANTS replaces the list; docs/kernel-notes.md)
for v in ${MS6_GPU_SCAN_VARIANTS:-}; do
  VARIANT_LINE=scan_line variant "$v" "bench-scan-${v%%:*}" 200 "$BUILD/mamba-s6" bench scan --backend cuda --no-decode
done
# kernel workbenches under dev/cuda (not part of the build): built against
# the library just built, run with a time limit; skipped with MS6_GPU_NO_DEV=1;
# MS6_GPU_DEV="gemv splitk ..." runs only those (scan, gemv, splitk, gemm, split)
dev_on() { [ -z "${MS6_GPU_DEV:-}" ] || [[ " $MS6_GPU_DEV " == *" $1 "* ]]; }
if [ "${MS6_GPU_NO_DEV:-0}" != 1 ]; then
  devlibs=(-L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lstdc++ $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -lm -lpthread)
  if dev_on scan && [ -f dev/cuda/scan_workbench.cu ] &&
    step build-scan-workbench 120 nvcc -O3 -arch=sm_"${ARCHS%%;*}" -Iinclude -Isrc dev/cuda/scan_workbench.cu \
      "$BUILD/libmamba_s6.a" "${devlibs[@]}" -o "$BUILD/scan_workbench"; then
    step scan-workbench 150 "$BUILD/scan_workbench"
  fi
  # batch-1 gemv structures streaming the 2.8b matrices standalone, the bulk-copy ring among them
  # (dev/cuda/bench_gemv.cu)
  if dev_on gemv && [ -f dev/cuda/bench_gemv.cu ] &&
    step build-bench-gemv 120 nvcc -O3 -arch=sm_"${ARCHS%%;*}" -Iinclude -Isrc dev/cuda/bench_gemv.cu -o "$BUILD/bench_gemv"; then
    step bench-gemv 60 "$BUILD/bench_gemv"
  fi
  # split-K out_proj streaming by weight layout (dev/cuda/bench_splitk.cu: K34's access vs W^T)
  if dev_on splitk && [ -f dev/cuda/bench_splitk.cu ] &&
    step build-bench-splitk 120 nvcc -O3 -arch=sm_"${ARCHS%%;*}" -Iinclude -Isrc dev/cuda/bench_splitk.cu -o "$BUILD/bench_splitk"; then
    step bench-splitk 60 "$BUILD/bench_splitk"
  fi
  # the prefill scan against its number of L chunks (dev/cuda/split_sweep.sh; SWEEP picks the shapes)
  if dev_on split; then
    BIN="$BUILD/mamba-s6" step split-sweep 240 bash dev/cuda/split_sweep.sh
  fi
  if dev_on gemm && [ -f dev/cuda/bench_gemm.c ] &&
    step build-bench-gemm 60 gcc -O2 -std=c11 -Iinclude -Isrc -DMS6_HAVE_CUDA=1 dev/cuda/bench_gemm.c \
      "$BUILD/libmamba_s6.a" "${devlibs[@]}" -o "$BUILD/bench_gemm"; then
    step bench-gemm 120 "$BUILD/bench_gemm"
  fi
fi

# ==== end-to-end model runs: CUDA inference (placement, decode graphs, batch) ====
# Random-init models with the real shapes (mamba-s6 init), written under /tmp
# and never into the repository (the 2.8b f16 model is 5.5 GB), then
# bench generate on each: prefill + batch-1 decode (2048-token prefill on
# 2.8b), the same without CUDA graphs on 130m, batched decode on 2.8b.
# MS6_GPU_E2E=0 skips this section; MS6_GPU_E2E_SHAPES picks the shapes.
if [ "${MS6_GPU_E2E:-1}" != 0 ]; then
  e2e_dir=${MS6_GPU_E2E_DIR:-/tmp/ms6-e2e}
  mkdir -p "$e2e_dir"
  for s in ${MS6_GPU_E2E_SHAPES:-130m 1.4b 2.8b}; do
    if [ ! -f "$e2e_dir/$s/model.safetensors" ]; then
      step "init-$s" 240 "$BUILD/mamba-s6" init --shape "$s" -o "$e2e_dir/$s" --dtype f16 || continue
    fi
    prompt=512
    [ "$s" = 2.8b ] && prompt=2048
    step "e2e-$s" 150 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda --prompt $prompt --gen 256 --reps 3
    summary+=("  $(e2e_line "e2e-$s")")
    # decode variants beside the default at the same settings (ref), NAME:SETTING each, SETTING is
    # VAR=VALUE[,VAR=VALUE...] (docs/kernel-notes.md); MS6_GPU_E2E_VARIANTS replaces the list
    for v in ${MS6_GPU_E2E_VARIANTS:-ref: late0:MS6_DEC_K34_LATE=0 cp0:MS6_DEC_CP=0 refb:}; do
      variant "$v" "e2e-$s-${v%%:*}" 120 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda \
        --prompt 32 --gen 256 --reps 2
    done
    # one greedy step call per token (the host waits for each id) against the default's one
    # generate call with the tokens fed back on the device
    step "e2e-$s-perstep" 120 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda \
      --prompt 32 --gen 256 --reps 2 --per-step
    summary+=("  $(e2e_line "e2e-$s-perstep")")
    # the whole-step decode kernel (decode_persist.cu) instead of the per-layer kernels
    MS6_CUDA_PERSIST=1 step "e2e-$s-persist" 120 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda \
      --prompt 32 --gen 128 --reps 2
    summary+=("  $(e2e_line "e2e-$s-persist")")
    # shape_test NAME:VAR=VALUE[,...]: test_cuda_model on this shape's model (fused vs unfused decode,
    # batched vs single) with those variables, as step model-test-SHAPE[-NAME]
    shape_test() {
      local n=${1%%:*} set=${1#*:}
      with_vars "MS6_CUDA_TEST_MODEL=$e2e_dir/$s${set:+,$set}" step "model-test-$s${n:+-$n}" 200 \
        "$BUILD/tests/test_cuda_model"
    }
    if [ "$s" = 130m ]; then
      # the model tests on real shapes: the default; the other K34 width and K3 + K4; the head as a
      # block per row group on the real vocabulary (the default loops 3143 groups over one wave); K1's
      # generic conv loops and K34's chain off; K1's conv data asked into L1 (CP off)
      for t in : k34c64:MS6_DEC_K34_CB=64 k34off:MS6_DEC_K34=0 headloop0:MS6_DEC_HEAD_LOOP=0 \
        epi0-chain0:MS6_DEC_EPI=0,MS6_DEC_K34_CHAIN=0 cp0:MS6_DEC_CP=0; do
        shape_test "$t" || fail=1
      done
      grep -E "130m|FAIL" "$LOG/model-test-$s.log" | head -5
      MS6_CUDA_GRAPH=0 step "e2e-$s-nograph" 120 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda \
        --prompt 512 --gen 128 --reps 2
      summary+=("  $(e2e_line "e2e-$s-nograph")")
    fi
    if [ "$s" = 1.4b ]; then
      # K34's late blocks at 3 register rounds (the 1.4b default depth) with 1 round before the wait
      shape_test k34-late1:MS6_DEC_K34_LATE=1 || fail=1
    fi
    if [ "$s" = 2.8b ]; then
      # the GPU-only model checks on the largest shape: the default, K1's scalar RMSNorm, its generic
      # conv loops, 4 blocks per SM, K34 at 3 register rounds, K1's conv data asked into L1 (CP off),
      # K34's late blocks with 1 and with all 4 rounds before the wait (MS6_DEC_K34_LATE=1|0; the default
      # 2, taken only here: no late blocks, no block with more than 4 rounds on the golden models)
      for t in : vec0:MS6_DEC_VEC=0 epi0:MS6_DEC_EPI=0 k1-5-off:MS6_DEC_K1_5=0 k34-depth3:MS6_DEC_K34_DEPTH=3 \
        cp0:MS6_DEC_CP=0 k34-late1:MS6_DEC_K34_LATE=1 k34-late0:MS6_DEC_K34_LATE=0; do
        shape_test "$t" || fail=1
      done
      # batched decode (the fused dt_proj + state update op up to 16 sequences; measured both ways
      # at 8, 16, 32 and 64 in docs/kernel-notes.md)
      for b in 8 64; do
        step "e2e-$s-b$b" 150 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda --batch $b \
          --prompt 32 --gen 32 --reps 2
        summary+=("  $(e2e_line "e2e-$s-b$b")")
        # variants beside it (as above; MS6_GPU_BATCH_VARIANTS replaces the list)
        for v in ${MS6_GPU_BATCH_VARIANTS:-convscalar:MS6_CONV_UPD_VEC=0}; do
          variant "$v" "e2e-$s-b$b-${v%%:*}" 150 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" --backend cuda \
            --batch $b --prompt 32 --gen 32 --reps 2
        done
      done
    fi
  done
fi

# where the decode and scan kernels' warps wait (ncu, standalone; MS6_GPU_NCU=1, about two minutes; the
# script uses build-gpu)
if [ "${MS6_GPU_NCU:-0}" = 1 ] && [ "$BUILD" = build-gpu ] && command -v ncu > /dev/null; then
  NOBUILD=1 STALLS=1 SHAPES="130m 2.8b" COUNT=3 step ncu-decode 200 bash dev/cuda/ncu_decode.sh
  # the scan's step loop: pipes busy and stall reasons at the shapes 2-3x from the floor
  NOBUILD=1 step ncu-scan 200 bash dev/cuda/ncu_scan.sh
fi

# the decode kernels' block timeline (dev/cuda/dec_prof.py): per layer, when each kernel's blocks
# start, pass their wait and end; decode.cu rebuilt with -DMS6_DEC_PROF=ON (the marks cost a few
# per cent, so after every timing above; MS6_GPU_PROF=0 skips it)
if [ "${MS6_GPU_PROF:-1}" != 0 ] && [ "${MS6_GPU_E2E:-1}" != 0 ] &&
  step configure-prof 120 cmake -S . -B "$BUILD" -DMS6_DEC_PROF=ON &&
  step build-prof 300 cmake --build "$BUILD" -j "$JOBS" --target mamba-s6; then
  # MS6_GPU_PROF_VARIANTS: NAME:VAR=VALUE[,...] each (as the decode variants above), "ref:" the default
  for s in ${MS6_GPU_E2E_SHAPES:-130m 1.4b 2.8b}; do
    for v in ${MS6_GPU_PROF_VARIANTS:-ref:}; do
      n="prof-$s-${v%%:*}"
      MS6_DEC_PROF="$LOG/$n.txt" variant "$v" "$n" 120 "$BUILD/mamba-s6" bench generate -m "$e2e_dir/$s" \
        --backend cuda --prompt 32 --gen 64 --reps 1
      [ -s "$LOG/$n.txt" ] && python3 dev/cuda/dec_prof.py "$LOG/$n.txt" > "$LOG/$n.table" 2>&1 &&
        python3 dev/cuda/dec_prof.py --overlap "$LOG/$n.txt" >> "$LOG/$n.table" 2>&1 &&
        python3 dev/cuda/dec_prof.py --per-sm "$LOG/$n.txt" >> "$LOG/$n.table" 2>&1
    done
  done
fi

finish
exit $fail
