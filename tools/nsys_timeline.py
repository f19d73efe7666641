#!/usr/bin/env python3
"""nsys_timeline.py - per-kernel timing of a decode loop from an nsys
cuda_gpu_trace CSV (`nsys stats -r cuda_gpu_trace -f csv`).

For every kernel name: count, mean duration, and the mean time from the
end of the kernel before it to its start (negative: the two overlapped,
as with programmatic dependent launch). Only the last --tail kernels are
used, so warm-up and prefill drop out. Development aid, not part of the
product.

usage: nsys_timeline.py TRACE.csv [--tail N]
"""
import csv
import sys
from collections import OrderedDict


def short(name):
    name = name.split("(")[0]
    return name if len(name) <= 60 else name[:57] + "..."


def main():
    args = sys.argv[1:]
    tail = 3000
    if "--tail" in args:
        i = args.index("--tail")
        tail = int(args[i + 1])
        del args[i:i + 2]
    rows = []
    with open(args[0], newline="") as f:
        for r in csv.DictReader(f):
            start = r.get("Start (ns)") or r.get("Start")
            dur = r.get("Duration (ns)") or r.get("Duration")
            name = r.get("Name", "")
            if start is None or dur is None:
                continue
            if name.startswith("[CUDA"):  # memcpy / memset
                continue
            rows.append((int(start), int(dur), short(name)))
    rows.sort()
    rows = rows[-tail:]
    if len(rows) < 2:
        print("no kernels")
        return
    stats = OrderedDict()
    prev_end = None
    for s, d, n in rows:
        st = stats.setdefault(n, [0, 0, 0, 0])
        st[0] += 1
        st[1] += d
        if prev_end is not None:
            st[2] += s - prev_end
            st[3] += 1
        prev_end = max(prev_end or 0, s + d)
    span = rows[-1][0] + rows[-1][1] - rows[0][0]
    busy = sum(d for _, d, _ in rows)
    print(f"{len(rows)} kernels over {span / 1e3:.1f} us; sum of durations {busy / 1e3:.1f} us")
    print(f"{'kernel':60s} {'count':>6s} {'mean us':>8s} {'gap us':>8s} {'total us':>9s}")
    for n, (c, d, g, gc) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        print(f"{n:60s} {c:6d} {d / c / 1e3:8.2f} {(g / gc / 1e3 if gc else 0):8.2f} {d / 1e3:9.1f}")


if __name__ == "__main__":
    main()
