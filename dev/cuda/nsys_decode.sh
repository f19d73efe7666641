#!/usr/bin/env bash
# dev/cuda/nsys_decode.sh - kernel timeline of batch-1 decode inside the CUDA
# graph (nsys, --cuda-graph-trace=node) on random-init models, summarised per
# kernel by tools/nsys_timeline.py (mean duration, gap to the kernel before).
# SHAPES (default "130m 2.8b"); extra environment (e.g. MS6_DEC_CH=8) passes
# through to the run. Builds the library into build-gpu first.
. scripts/deps-env.sh
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" >/dev/null &&
  cmake --build build-gpu -j16 >/dev/null || exit 1
command -v nsys >/dev/null || { echo "nsys not found"; exit 1; }
mkdir -p /tmp/ms6-e2e /tmp/ms6-nsys
for s in ${SHAPES:-130m 2.8b}; do
  d=/tmp/ms6-e2e/$s
  [ -f $d/model.safetensors ] || build-gpu/mamba-s6 init --shape $s -o $d --dtype f16 > /dev/null
  r=/tmp/ms6-nsys/dec-$s
  nsys profile -t cuda --cuda-graph-trace=node -o $r -f true \
    build-gpu/mamba-s6 bench generate -m $d --backend cuda --prompt 32 --gen ${GEN:-48} --reps 1 > $r.run.log 2>&1 || {
    tail -5 $r.run.log
    continue
  }
  nsys stats -q -r cuda_gpu_trace -f csv -o $r $r.nsys-rep > /dev/null 2>&1
  echo "== $s $(grep -E '^decode' $r.run.log | tr -s ' ')"
  python3 tools/nsys_timeline.py ${r}_cuda_gpu_trace.csv --tail ${TAIL:-2000}
  [ -n "${OUT:-}" ] && gzip -c ${r}_cuda_gpu_trace.csv > "$OUT/dec-$s-trace.csv.gz"
done
