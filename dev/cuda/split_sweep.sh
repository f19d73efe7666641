#!/usr/bin/env bash
# split_sweep.sh - the prefill scan's time against its number of L chunks.
# For each "B,D,L:K1 K2 ..." item of SWEEP, `mamba-s6 bench scan --shape
# B,D,L` with MS6_SCAN_CHUNKS=K (0 = the library's own choice, printed with
# MS6_SCAN_VERBOSE); one line per (shape, K): ms and the ratio to the
# library's choice. BIN: the mamba-s6 binary (default build-gpu/mamba-s6).
# Used to set the split rule of scan.cu (docs/kernel-notes.md, "The split").
set -u
BIN=${BIN:-build-gpu/mamba-s6}
SWEEP=${SWEEP:-"8,1536,2048:0 1 3 4 5 6 1,5120,8192:0 1 3 4 5 6 7 9 10 4,2560,16384:0 1 3 4 5 6 7"}
ms() { MS6_SCAN_VERBOSE=1 "$@" 2> /tmp/split_sweep.err | awk '$1 == "scan" {print $5}'; }
for item in $SWEEP; do
  case $item in
    *:*) shape=${item%%:*}; ks=${item#*:} ;;
    *) ks=$item ;;
  esac
  for k in $ks; do
    if [ "$k" = 0 ]; then
      t=$(ms env -u MS6_SCAN_CHUNKS "$BIN" bench scan --backend cuda --no-decode --shape "$shape")
      ref=$t
      kk=$(grep -o "K=[0-9]*" /tmp/split_sweep.err | head -1)
      printf "%-16s %-8s %8s ms  (the library's choice, %s)\n" "$shape" ref "$t" "$kk"
    else
      t=$(MS6_SCAN_CHUNKS=$k ms "$BIN" bench scan --backend cuda --no-decode --shape "$shape")
      printf "%-16s K=%-6s %8s ms  %s\n" "$shape" "$k" "$t" \
        "$(awk -v a="$t" -v b="${ref:-0}" 'BEGIN {if (b > 0 && a > 0) printf "%.3f", a / b}')"
    fi
  done
done
