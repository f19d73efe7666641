#!/usr/bin/env bash
# dev/cuda/ncu_scan_source.sh - where in the v6 scan's step loop the warps
# stall: Nsight Compute's source counters (warp stall samples per SASS
# instruction) for one launch of the scan at SHAPE (default 8,5120,2048,
# the full loop), written as OUTDIR/scan_source.csv (one row per SASS
# instruction: its text, samples, stall reasons) and the report
# OUTDIR/scan.ncu-rep. KERNELS: a regex of kernel names (default scan_v6).
# Builds the library into build-gpu first (NOBUILD=1 skips it).
. dev/cuda/build-gpu.sh
out=${OUTDIR:-/tmp/ncu-scan}
mkdir -p "$out"
timeout 150 ncu --clock-control none -k regex:"${KERNELS:-scan_v6}" --launch-skip 2 --launch-count 1 \
  --section SourceCounters --section WarpStateStats -f -o "$out/scan" \
  build-gpu/mamba-s6 bench scan --backend cuda --no-decode --iters 3 --shape "${SHAPE:-8,5120,2048}" > "$out/ncu.log" 2>&1
tail -3 "$out/ncu.log"
ncu --import "$out/scan.ncu-rep" --page source --csv --print-source sass > "$out/scan_source.csv" 2> "$out/source.err"
echo "source rows: $(wc -l < "$out/scan_source.csv")"
head -c 600 "$out/source.err"
