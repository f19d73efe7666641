#!/usr/bin/env python3
"""dec_prof.py FILE [FILE...] - per-layer timeline of the fused decode step.

FILE is what `MS6_DEC_PROF=FILE mamba-s6 bench generate ... --backend cuda`
writes when the backend is destroyed (src/backend/cuda/decode.cu): one line
per block of K1 (kind 1: x rows, 2: z rows), K34 (3) and the head (4) with
block, SM, start, after its wait, end (ns). The last complete step (the
blocks between the last two heads) is cut into kernels by start time (a
dependent kernel's blocks all start after every block of the one before has
started), and for each kind of kernel the median over the step's layers is
printed, in us relative to the end of the kernel before (its last block):

  start   first block's start (negative: launched early, PDL)
  wait    first block past its wait (the grid dependency's release)
  wait50  median block past its wait
  end50   median block's end;  end90: 90th percentile;  end: last block
  late    blocks that started after the first wait returned (later waves)
  body    median over blocks of end - wait (work after the wait)
  xend/zend  K1's x / z blocks' median end

then the layer period (one K34's last end to the next) and the step's time.

--tail N: for a middle layer's K1 and K34, also their N last blocks to end
(start, wait, end, their SM and how many of the kernel's blocks it held,
when that SM's blocks started) and the median / last end by blocks per SM:
which blocks make a kernel's tail (late residents, crowded SMs).

--overlap: at each kernel boundary of the step, how many of the next
kernel's blocks started on an SM while a block of the kernel before was
still running there (co-resident), and how long after that SM's last
block of the kernel before had ended the others started (an SM that takes
the next kernel only once empty shows no co-resident starts).

--per-sm: for K1 over the step's layers, on the SMs holding the most blocks:
how far apart one SM's blocks end (median, 90th percentile), each SM's last
end against the layer's median SM, and whether the same SMs are early or late
in every layer (correlation of their mean lateness over even and odd layers).
"""
import statistics as st
import sys


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            k, b, sm, t0, t1, t2 = map(int, line.split())
            recs.append((t0, t1, t2, k, b, sm))
    recs.sort()
    return recs


def cls(k):
    return 1 if k in (1, 2) else k


def kernels(recs):
    """consecutive runs of one kernel class in start order"""
    out, cur = [], []
    for r in recs:
        if cur and cls(r[3]) != cls(cur[-1][3]):
            out.append(cur)
            cur = []
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def q(xs, f):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(f * len(xs)))]


def last_step(path):
    """(the head kernel before it, the kernels of the last whole step: the
    layers and its head) from the timeline at path, or None (message
    printed) with fewer than two steps"""
    ks = kernels(load(path))
    heads = [i for i, k in enumerate(ks) if cls(k[0][3]) == 4]
    if len(heads) < 2:
        print(f"{path}: fewer than two steps recorded")
        return None
    return ks[heads[-2]], ks[heads[-2] + 1: heads[-1] + 1]


def report(path, tail=0):
    got = last_step(path)
    if got is None:
        return
    head_before, step = got
    prev_end = max(r[2] for r in head_before)
    step_t0 = prev_end
    rows = {}
    periods = []
    last34 = None
    for k in step:
        c = cls(k[0][3])
        t0s = [r[0] for r in k]
        t1s = [r[1] for r in k]
        t2s = [r[2] for r in k]
        w0 = min(t1s)
        d = dict(n=len(k), start=min(t0s) - prev_end, wait=w0 - prev_end,
                 wait50=st.median(t1s) - prev_end, end50=st.median(t2s) - prev_end,
                 end90=q(t2s, 0.9) - prev_end, end=max(t2s) - prev_end,
                 late=sum(1 for t in t0s if t > w0), body=st.median(r[2] - r[1] for r in k))
        if c == 1:
            xs = [r[2] for r in k if r[3] == 1]
            zs = [r[2] for r in k if r[3] == 2]
            d["xend"] = st.median(xs) - prev_end if xs else 0
            d["zend"] = st.median(zs) - prev_end if zs else 0
        rows.setdefault(c, []).append(d)
        prev_end = max(t2s)
        if c == 3:
            if last34 is not None:
                periods.append(prev_end - last34)
            last34 = prev_end
    names = {1: "K1", 3: "K34", 4: "head"}
    keys = ["n", "start", "wait", "wait50", "end50", "end90", "end", "late", "body", "xend", "zend"]
    print(f"== {path}: {len(step) - 1} layer kernels + head, step {(prev_end - step_t0) / 1e3:.1f} us")
    print("kernel " + " ".join(f"{k:>7}" for k in keys))
    for c in (1, 3, 4):
        if c not in rows:
            continue
        med = {k: st.median(d.get(k, 0) for d in rows[c]) for k in keys}
        print(f"{names[c]:<6} " + " ".join(
            f"{med[k]:7.0f}" if k in ("n", "late") else f"{med[k] / 1e3:7.2f}" for k in keys))
    if periods:
        print(f"layer period: median {st.median(periods) / 1e3:.2f} us, min {min(periods) / 1e3:.2f}, "
              f"max {max(periods) / 1e3:.2f} over {len(periods)} layers")
    # per-SM view of one middle layer's K1: blocks per SM and their spans
    mid = [k for k in step if cls(k[0][3]) == 1]
    if mid:
        k = mid[len(mid) // 2]
        per = {}
        for r in k:
            per.setdefault(r[5], []).append(r)
        counts = sorted(len(v) for v in per.values())
        print(f"middle K1: {len(per)} SMs, blocks per SM min {counts[0]} median {counts[len(counts) // 2]} "
              f"max {counts[-1]}")
    if tail:
        tail_report(step, tail)


def tail_report(step, n):
    """the n last blocks of a middle layer's K1 and K34, times relative to
    the end of the kernel before"""
    k1s = [i for i, k in enumerate(step) if cls(k[0][3]) == 1 and i > 0]
    if not k1s:
        return
    i = k1s[len(k1s) // 2]
    for j in (i, i + 1):
        if j >= len(step) or cls(step[j][0][3]) not in (1, 3):
            continue
        k, t0 = step[j], max(r[2] for r in step[j - 1])
        per = {}
        for r in k:
            per.setdefault(r[5], []).append(r)
        name = "K1" if cls(k[0][3]) == 1 else "K34"
        print(f"{name} of a middle layer, its {n} last blocks (us after the kernel before):")
        print("  block kind  SM on-SM   start    wait     end  SM's block starts")
        for r in sorted(k, key=lambda r: r[2])[-n:]:
            starts = " ".join(f"{(x[0] - t0) / 1e3:.1f}" for x in sorted(per[r[5]]))
            print(f"  {r[4]:5d} {r[3]:4d} {r[5]:3d} {len(per[r[5]]):6d} {(r[0] - t0) / 1e3:7.2f} "
                  f"{(r[1] - t0) / 1e3:7.2f} {(r[2] - t0) / 1e3:7.2f}  {starts}")
        by = {}
        for r in k:
            by.setdefault(len(per[r[5]]), []).append((r[2] - t0) / 1e3)
        print("  end by blocks on the SM: " + ", ".join(
            f"{c}: {len(v)} blocks median {st.median(v):.2f} last {max(v):.2f}" for c, v in sorted(by.items())))


def balanced_end(per):
    """the time T at which the SMs, each streaming at its own rate (its
    blocks over its first wait to its last end), would have done the
    kernel's blocks between them had the blocks been shared out to end
    together: sum over SMs of rate * (T - first wait) = blocks"""
    sms = [(len(rs), min(r[1] for r in rs), max(r[2] for r in rs)) for rs in per.values()]
    sms = [(n, w, e) for n, w, e in sms if e > w]
    total = sum(n for n, w, e in sms)
    lo, hi = min(w for n, w, e in sms), max(e for n, w, e in sms)
    for _ in range(60):
        t = (lo + hi) / 2
        if sum(n / (e - w) * max(0, t - w) for n, w, e in sms) > total:
            hi = t
        else:
            lo = t
    return hi


def per_sm_report(path):
    got = last_step(path)
    if got is None:
        return
    step = got[1]
    late, spreads, bal = {}, [], []
    for j in range(1, len(step)):
        k = step[j]
        if cls(k[0][3]) != 1:
            continue
        t0 = max(r[2] for r in step[j - 1])
        per = {}
        for r in k:
            per.setdefault(r[5], []).append(r)
        bal.append(((max(r[2] for r in k) - t0) / 1e3, (balanced_end(per) - t0) / 1e3))
        full = max(len(v) for v in per.values())
        ends = {sm: (max(x[2] for x in rs) - t0) / 1e3 for sm, rs in per.items() if len(rs) == full}
        med = st.median(ends.values())
        for sm, e in ends.items():
            late.setdefault(sm, []).append(e - med)
        for rs in per.values():
            if len(rs) == full:
                e = sorted(x[2] for x in rs)
                spreads.append((e[-1] - e[0]) / 1e3)
    if not spreads:
        print(f"{path}: no K1 in the step")
        return
    print(f"== {path}: K1 on the SMs with {full} blocks, {len(late)} SMs")
    print(f"one SM's blocks end apart: median {st.median(spreads):.2f} us, 90th percentile {q(spreads, 0.9):.2f}")
    print(f"K1's end {st.median(b[0] for b in bal):.2f} us; were each SM's blocks shared out at its own rate "
          f"(blocks over its first wait to its last end) to end together: {st.median(b[1] for b in bal):.2f} "
          f"(medians over the layers)")
    sms = [sm for sm, v in late.items() if len(v) >= 4]
    if not sms:
        print(f"{path}: fewer than 4 layers' K1 after the first; no per-SM means")
        return
    mean = {sm: st.mean(late[sm]) for sm in sms}
    print(f"an SM's last end against the median SM (mean over layers): {min(mean.values()):.2f} .. "
          f"{max(mean.values()):.2f} us")
    a = [st.mean(late[sm][0::2]) for sm in sms]
    b = [st.mean(late[sm][1::2]) for sm in sms]
    ma, mb = st.mean(a), st.mean(b)
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va > 0 and vb > 0:
        r = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (va * vb) ** 0.5
        print(f"the same SMs early or late in every layer: correlation {r:.2f} (even against odd layers)")
    early = sorted(sms, key=lambda sm: mean[sm])[:6]
    print("earliest SMs: " + ", ".join(f"{sm} ({mean[sm]:.2f})" for sm in early))


def overlap_report(path):
    got = last_step(path)
    if got is None:
        return
    head_before, step = got
    names = {1: "K1", 3: "K34", 4: "head"}
    pairs = {}
    for prev, nxt in zip([head_before] + step[:-1], step):
        running = {}
        for r in prev:
            running.setdefault(r[5], []).append((r[0], r[2]))
        co, gaps = 0, []
        for r in nxt:
            spans = running.get(r[5], [])
            if any(t0 <= r[0] < t2 for t0, t2 in spans):
                co += 1
            else:
                ended = [t2 for t0, t2 in spans if t2 <= r[0]]
                if ended:
                    gaps.append(r[0] - max(ended))
        key = f"{names[cls(prev[0][3])]} -> {names[cls(nxt[0][3])]}"
        pairs.setdefault(key, []).append((co, len(nxt), gaps))
    print(f"== {path}: blocks started beside a running block of the kernel before (median over the step)")
    for key, v in pairs.items():
        cos = [c for c, n, g in v]
        ns = [n for c, n, g in v]
        gs = [x for c, n, g in v for x in g]
        gap = f", the others {st.median(gs) / 1e3:.2f} us after the SM's last block before" if gs else ""
        print(f"  {key:<12} {st.median(cos):6.0f} of {st.median(ns):4.0f} blocks co-resident{gap}")


args = sys.argv[1:]
tail = 0
per_sm = False
overlap = False
if args and args[0] == "--per-sm":
    per_sm = True
    args = args[1:]
if args and args[0] == "--overlap":
    overlap = True
    args = args[1:]
if len(args) >= 2 and args[0] == "--tail":
    tail = int(args[1])
    args = args[2:]
for p in args:
    overlap_report(p) if overlap else per_sm_report(p) if per_sm else report(p, tail)
