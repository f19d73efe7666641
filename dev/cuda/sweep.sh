#!/usr/bin/env bash
# dev/cuda/sweep.sh: one GPU-machine command for the scan kernels: builds the
# library, test_cuda_kernels and the CLI (BUILD, default build-scan, sm_90),
# compiles scan.cu again for each compile-time variant of the lanes kernel
# (MS6_LANES_MIN_BLOCKS x MS6_LANE_AHEAD, given as CVARIANTS="8:8 6:16 ...";
# a third field sets MS6_LANES_MIN_BLOCKS_P2, e.g. "6:8:4")
# and links a workbench against each (the library with that scan.cu.o), runs
# the workbench with the runtime variants WB_VARIANTS on every build, then
# test_cuda_kernels with the default and the alternative lane splits, and
# bench scan with BENCH=1. Logs under /tmp/sweep-logs, packed into
# $OUT/sweep.tar.gz when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/sweep-logs
mkdir -p "$O"
pack() { [ -n "${OUT:-}" ] && tar czf "$OUT/sweep.tar.gz" -C "$O" .; }
trap pack EXIT
B=${BUILD:-build-scan}
J=$(nproc 2>/dev/null || echo 4)
T0=$SECONDS
log() { echo "[$((SECONDS - T0)) s] $*"; }

. scripts/deps-env.sh # build dependencies from .deps/ when needed: sets cmake_extra
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > "$O/machine.txt" 2>&1

# compile-time variants of scan.cu, in the background while the library builds
CV=${CVARIANTS:-}
mkdir -p /tmp/cv
for v in $CV; do
  IFS=: read -r mb ah mb2 <<< "$v"
  tag=${v//:/-}
  (nvcc -O3 -lineinfo --expt-relaxed-constexpr -arch=sm_90 -DMS6_HAVE_CUDA=1 -DMS6_LANES_MIN_BLOCKS="$mb" \
    -DMS6_LANE_AHEAD="$ah" -DMS6_LANES_MIN_BLOCKS_P2="${mb2:-$mb}" -Iinclude -Isrc -Xptxas -v -c src/backend/cuda/scan.cu \
    -o "/tmp/cv/scan-$tag.o" > "/tmp/cv/ptxas-$tag.log" 2>&1; echo "rc=$?" >> "/tmp/cv/ptxas-$tag.log") &
done

cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMS6_CUDA=ON -DMS6_CUDA_ARCHS=90 "${cmake_extra[@]}" > "$O/configure.log" 2>&1 ||
  { tail -20 "$O/configure.log"; exit 1; }
cmake --build "$B" -j "$J" --target mamba_s6_static test_cuda_kernels mamba-s6 > "$O/build.log" 2>&1 ||
  { grep -E "error" "$O/build.log" | head -20; exit 1; }
log "built"
devlibs=(-L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lstdc++ $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -lm -lpthread)
nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/scan_workbench.cu "$B/libmamba_s6.a" "${devlibs[@]}" -o /tmp/cv/wb-default ||
  exit 1
wait
for v in $CV; do
  tag=${v//:/-}
  grep -E "lanes_kernel|Used|spill" "/tmp/cv/ptxas-$tag.log" | grep -A2 lanes_kernel | grep -E "Used|spill" | paste - - |
    awk -v v="$v" '{print v, $0}' >> "$O/ptxas.txt"
  cp "$B/libmamba_s6.a" /tmp/cv/lib.a && cp "/tmp/cv/scan-$tag.o" /tmp/cv/scan.cu.o && ar r /tmp/cv/lib.a /tmp/cv/scan.cu.o &&
    nvcc -O3 -arch=sm_90 -Iinclude -Isrc dev/cuda/scan_workbench.cu /tmp/cv/lib.a "${devlibs[@]}" -o "/tmp/cv/wb-$tag"
done
log "workbenches linked"

timeout 70 /tmp/cv/wb-default 2>&1 | tee "$O/wb-default.txt"
log "default workbench done"
for v in $CV; do
  tag=${v//:/-}
  WB_VARIANTS=${WB_VARIANTS_CV:-$WB_VARIANTS} timeout 25 "/tmp/cv/wb-$tag" ${CV_SHAPES:-} > "$O/wb-$tag.txt" 2>&1
  echo "== compile variant $v"; cat "$O/wb-$tag.txt"
done
log "variant workbenches done"

if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null; then
  WB_VARIANTS="" WB_ITERS=1 timeout 60 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section SchedulerStats --section InstructionStats --section Occupancy -k regex:scan_lanes --launch-count 1 \
    /tmp/cv/wb-default ${NCU_SHAPE:-8,5120,2048} > "$O/ncu-lanes.txt" 2>&1
  WB_VARIANTS="DIRECT=1" WB_ITERS=1 timeout 60 ncu --clock-control none --section SpeedOfLight --section WarpStateStats \
    --section SchedulerStats --section InstructionStats -k regex:scan_direct --launch-count 1 \
    /tmp/cv/wb-default ${NCU_SHAPE:-8,5120,2048} > "$O/ncu-direct.txt" 2>&1
  grep -vE "^==PROF==|^  (DIRECT|\(defaults)" "$O/ncu-lanes.txt" | grep -E "Duration|Throughput|Issue|Stall|Warp Cycles|Eligible|Active Warps|Executed Ipc|Registers|Achieved|No Eligible|One or More" | head -40
  cuobjdump -sass "$B/CMakeFiles/ms6_obj.dir/src/backend/cuda/scan.cu.o" > "$O/scan.sass" 2>&1
  log "ncu done"
fi
timeout ${TEST_LIMIT:-60} "$B/tests/test_cuda_kernels" > "$O/test-default.txt" 2>&1
echo "test default rc=$?"; grep -E "FAIL|passed|failed|cases" "$O/test-default.txt" | head -12
for e in ${TEST_ENVS:-}; do
  env ${e//,/ } timeout ${TEST_LIMIT:-60} "$B/tests/test_cuda_kernels" > "$O/test-$e.txt" 2>&1
  echo "test $e rc=$?"; grep -E "FAIL|passed|failed|cases" "$O/test-$e.txt" | head -6
done
log "tests done"
for c in ${UPDATE_CPTS:-}; do
  echo "== state update, MS6_UPDATE_CPT=$c"
  MS6_UPDATE_CPT=$c timeout 30 "$B/mamba-s6" bench scan --backend cuda --no-prefill 2>&1 | tee "$O/update-$c.txt"
done
log "state update done"
if [ "${BENCH:-0}" = 1 ]; then
  timeout 60 "$B/mamba-s6" bench scan --backend cuda > "$O/bench-scan.txt" 2>&1
  cat "$O/bench-scan.txt"
fi
log "end"
