#!/usr/bin/env bash
# dev/cuda/ncu_scan.sh - the prefill scan kernels under Nsight Compute, one
# shape at a time (`bench scan --shape`), to see what limits the step loop:
# issue slots used, the MUFU (XU) and FMA pipes' busy share, and the stall
# reasons per issued instruction (short scoreboard = shared memory / MUFU
# results, long scoreboard = global loads, math pipe throttle = a full pipe,
# wait = fixed-latency dependences, barrier / membar = synchronisation).
# SHAPES (default the two at 2x the floor and the long one), KERNELS (a regex
# of kernel names, default every scan kernel), COUNT (launches profiled per
# shape). Builds the library into build-gpu first.
. dev/cuda/build-gpu.sh
m=gpu__time_duration.sum,launch__registers_per_thread,launch__grid_size,sm__warps_active.avg.pct_of_peak_sustained_active
m=$m,sm__issue_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active
m=$m,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active
m=$m,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed
for r in short_scoreboard long_scoreboard math_pipe_throttle mio_throttle wait barrier membar not_selected \
  selected dispatch_stall no_instruction lg_throttle branch_resolving; do
  m=$m,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio
done
for s in ${SHAPES:-8,5120,2048 16,2560,4096 1,1536,131072}; do
  echo "== scan $s"
  timeout 200 ncu --clock-control none -k regex:"${KERNELS:-scan}" --launch-skip 2 --launch-count ${COUNT:-2} \
    --metrics $m build-gpu/mamba-s6 bench scan --backend cuda --no-decode --iters 3 --shape "$s" 2>&1 |
    grep -E "^ +(void )?[a-z_0-9]+<|^ +[a-z_0-9]+\(|gpu__time|registers|grid_size|warps_active|issue_active|pipe_|lsu_wavefronts|stalled" |
    sed -E 's/smsp__average_warps_issue_stalled_//; s/_per_issue_active.ratio//' | tr -s ' ' | cut -c1-120
done
