#!/usr/bin/env bash
# dec_probe.sh: the decode block timeline (dec_prof.py) with parts of the step
# left out (MS6_DEC_PROBE bits, decode.cu; the results are wrong, the
# timeline is what it is for) beside the whole step (0), on the 1.4b and 2.8b
# shapes. Builds mamba-s6 with the timeline marks in $BUILD (build-prof;
# configured and built each time, incrementally).
# A PROBES item with "=" is VAR=VALUE[,VAR=VALUE...] set instead (a variant's
# timeline: MS6_DEC_K34_CB=32, ...).
#   SHAPES="1.4b 2.8b" PROBES="0 1 2 4 MS6_DEC_K34=0" bash dev/cuda/dec_probe.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps-env.sh
BUILD=${BUILD:-build-prof}
mkdir -p "$BUILD"
log=$BUILD/probe-build.log
if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 -DMS6_DEC_PROF=ON \
  "${cmake_extra[@]}" && cmake --build "$BUILD" -j "$(nproc)" --target mamba-s6; } > "$log" 2>&1; then
  tail -20 "$log"
  exit 1
fi
dir=${MS6_GPU_E2E_DIR:-/tmp/ms6-e2e}
out=${PROBE_OUT:-/tmp}
mkdir -p "$dir"
for s in ${SHAPES:-1.4b 2.8b}; do
  [ -f "$dir/$s/model.safetensors" ] || "$BUILD/mamba-s6" init --shape "$s" -o "$dir/$s" --dtype f16 > /dev/null || exit 1
  for bits in ${PROBES:-0 1 2 4}; do
    vars=(MS6_DEC_PROBE=$bits)
    [[ $bits == *=* ]] && IFS=, read -ra vars <<< "$bits"
    f=$out/probe-$s-${bits//[=,]/_}.txt
    echo "== $s probe $bits: $(env "${vars[@]}" MS6_DEC_PROF="$f" "$BUILD/mamba-s6" bench generate -m "$dir/$s" \
      --backend cuda --prompt 32 --gen 64 --reps 1 2>&1 | awk '$1 == "decode" {print $2, "ms/token"}')"
    python3 dev/cuda/dec_prof.py "$f" | sed -n '2,5p'
  done
done
