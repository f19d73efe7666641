#!/usr/bin/env bash
# dev/cuda/ncu_decode.sh - the decode kernels one by one under Nsight Compute
# (serialised, caches flushed: each kernel's standalone time and DRAM
# throughput, not the overlap the CUDA graph and dependent launch give) on
# random-init models. SHAPES (default "130m 2.8b"), KERNELS (a regex of
# kernel names, default the per-layer decode kernels), SKIP/COUNT (launches
# skipped / profiled). STALLS=1 adds where the warps wait (the WarpStateStats
# and SchedulerStats sections: stall reasons per issued instruction, eligible
# warps per cycle). Builds the library into build-gpu first.
. dev/cuda/build-gpu.sh
m=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
m=$m,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__grid_size
for s in ${SHAPES:-130m 2.8b}; do
  d=$(ms6_model $s)
  echo "== $s"
  extra=()
  [ "${STALLS:-0}" = 1 ] && extra=(--section WarpStateStats --section SchedulerStats)
  timeout 200 ncu --clock-control none --graph-profiling node -k regex:"${KERNELS:-k_norm_gemv|k_ssm|k_outproj}" \
    --launch-skip ${SKIP:-400} --launch-count ${COUNT:-6} --metrics $m "${extra[@]}" \
    build-gpu/mamba-s6 bench generate -m $d --backend cuda --prompt 32 --gen 16 --reps 1 2>&1 |
    grep -E "^ +(void )?[a-z_0-9]+<|gpu__time|dram__|warps_active|registers|grid_size|Stall|Warp Cycles|Eligible|Issued Warp|No Eligible" |
    sed 's/(K1Params)//' | tr -s ' ' | cut -c1-120
done
