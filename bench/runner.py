#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the wpool benchmark suite (called by bench/run.sh).

Every measurement is one process (bench/bench.c) that prints one JSON object;
this script runs them in rounds, each round every workload on every peer with
the peer order rotated, then summarises: medians, min..max, ratio to wpool,
the issue's targets (informational: the exit status never depends on a
number), and gnuplot charts. Standard library only.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

SIZES = {
    # workload knobs: quick (CI) and full
    "quick": dict(w1=50_000, w2=10_000, w3=150, w4=12_500, idle=0.3, payload=50_000,
                  queue=100_000, mem=20_000, rounds=3),
    "full": dict(w1=1_000_000, w2=200_000, w3=5_000, w4=250_000, idle=2.0, payload=200_000,
                 queue=2_000_000, mem=100_000, rounds=3),
}

# workload -> (metric key, label, higher is better)
METRICS = {
    "w1": [("mtasks_per_s", "Mtasks/s", True), ("cpu_ns_per_task", "CPU ns/task", False)],
    "w1batch": [("mtasks_per_s", "Mtasks/s", True)],
    "w1-shuffled": [("mtasks_per_s", "Mtasks/s", True), ("cpu_ns_per_task", "CPU ns/task", False)],
    "w2": [("efficiency", "efficiency", True), ("cpu_ns_per_task", "CPU ns/task", False)],
    "w3": [("p50_us", "p50 us", False), ("p99_us", "p99 us", False),
           ("p999_us", "p99.9 us", False)],
    "w4": [("mtasks_per_s", "Mtasks/s", True), ("cpu_ns_per_task", "CPU ns/task", False)],
    "idle": [("pool_cpu_pct", "pool CPU %", False)],
    "payload-glibc": [("mtasks_per_s", "Mtasks/s", True)],
    "payload-jemalloc": [("mtasks_per_s", "Mtasks/s", True)],
}
TITLES = {
    "w1": "W1 no-op throughput, owner submits (window 16384 records)",
    "w1batch": "W1 with wpool_submit_batch, batches of 64",
    "w1-shuffled": "W1 with the records in a random order (--shuffle): scattered in memory",
    "w2": "W2 ~5 us CPU tasks: efficiency = ideal / wall",
    "w3": "W3 idle round trip, 2 ms apart",
    "w4": "W4 4 producer threads at once",
    "idle": "Idle cost: one task per ms; CPU of the pool's threads, % of one core",
    "payload-glibc": "Payload 256 B..4 KiB malloc'd by the owner, freed by the worker: glibc",
    "payload-jemalloc": "Payload 256 B..4 KiB malloc'd by the owner, freed by the worker: jemalloc",
}
WPOOL = "wpool"
OTHERS = ("libuv", "glib", "plain")


def jemalloc_path():
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
        p = os.path.join(d, "libjemalloc.so.2")
        if os.path.exists(p):
            return p
    return None


def run(cmd, env=None, timeout=900):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                       timeout=timeout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("bench: FAILED (exit %d): %s" % (p.returncode, " ".join(cmd)))
    if p.stderr.strip():
        sys.stderr.write(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    a = ap.parse_args()
    mode = "quick" if a.quick else "full"
    sz = SIZES[mode]
    rounds = a.rounds or sz["rounds"]
    bench = os.path.join(a.bin, "wpool-bench")
    balloc = os.path.join(a.bin, "wpool-bench-alloc")
    bqueue = os.path.join(a.bin, "wpool-bench-queue")
    os.makedirs(a.out, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    t_start = time.time()

    # Iterations of the spin loop for ~5 us: calibrated once, the same work
    # for every peer.
    cal = sorted(int(subprocess.check_output([bench, "calibrate"], text=True)) for _ in range(3))
    spin = cal[1]

    pairs = [l.split() for l in subprocess.check_output([bench, "list"], text=True).splitlines()]
    by_w = {}
    for w, p in pairs:
        by_w.setdefault(w, []).append(p)
    je = jemalloc_path()

    jobs = []  # (group key, peer, argv, env)
    common = ["--timeout", "600"]
    for w in ("w1", "w1batch", "w2", "w3", "w4", "idle"):
        for p in by_w.get(w, []):
            argv = [bench, w, p] + common
            if w in ("w1", "w1batch"):
                argv += ["--n", str(sz["w1"])]
            elif w == "w2":
                argv += ["--n", str(sz["w2"]), "--spin-iters", str(spin), "--task-ns", "5000"]
            elif w == "w3":
                argv += ["--reps", str(sz["w3"])]
            elif w == "w4":
                argv += ["--n", str(sz["w4"]), "--producers", "4"]
            elif w == "idle":
                argv += ["--seconds", str(sz["idle"])]
            jobs.append((w, p, argv, None))
            if w == "w1" and p in (WPOOL, "wpool-rr") + OTHERS:
                jobs.append(("w1-shuffled", p, argv + ["--shuffle"], None))
    for p in by_w.get("payload", []):
        argv = [bench, "payload", p, "--n", str(sz["payload"])] + common
        jobs.append(("payload-glibc", p, argv, None))
        if je:
            jobs.append(("payload-jemalloc", p, argv, {"LD_PRELOAD": je}))
    for pairs_n in range(1, 5):
        for ring in ("wpool", "mutex"):
            argv = [bqueue, ring, str(pairs_n), str(sz["queue"])]
            jobs.append(("queue-%d" % pairs_n, ring + "-ring", argv, None))

    groups = []
    for j in jobs:
        if j[0] not in groups:
            groups.append(j[0])
    results = []
    jsonl = open(os.path.join(a.out, "results.jsonl"), "w")
    samples_dir = os.path.join(a.out, "data")  # W3 samples, chart data
    os.makedirs(samples_dir, exist_ok=True)

    def record(group, r, rnd, extra=None):
        r["group"] = group
        r["round"] = rnd
        r["mode"] = mode
        if extra:
            r.update(extra)
        results.append(r)
        jsonl.write(json.dumps(r) + "\n")
        jsonl.flush()

    for rnd in range(rounds):
        for g in groups:
            gj = [j for j in jobs if j[0] == g]
            k = rnd % len(gj)
            for group, peer, argv, env in gj[k:] + gj[:k]:  # rotated per round
                argv = list(argv)
                if group == "w3" and rnd == rounds - 1:
                    argv += ["--samples", os.path.join(samples_dir, "w3_" + peer + ".txt")]
                record(group, run(argv, env), rnd)
        sys.stderr.write("bench: round %d/%d done (%.0f s)\n" % (rnd + 1, rounds,
                                                                time.time() - t_start))

    # System calls per task (kernel tracepoint counters), and allocations:
    # separate runs, so counting never slows a timed run.
    sys_rounds = 1 if a.quick else 3
    for rnd in range(sys_rounds):
        for w, n in (("w1", sz["w1"]), ("w4", sz["w4"])):
            peers = [p for p in by_w.get(w, []) if p in (WPOOL,) + OTHERS]
            k = rnd % len(peers)
            for p in peers[k:] + peers[:k]:
                argv = [bench, w, p, "--n", str(n), "--syscalls"] + common
                if w == "w4":
                    argv += ["--producers", "4"]
                record("sys-" + w, run(argv), rnd)
    for p in [p for p in by_w.get("w1", []) if p in (WPOOL,) + OTHERS and os.path.exists(balloc)]:
        record("mem", run([balloc, "mem", p, "--n", str(sz["mem"])] + common), 0)

    jsonl.close()
    meta = {"mode": mode, "rounds": rounds, "cores": cores, "spin_iters": spin,
            "kernel": platform.release(), "seconds": round(time.time() - t_start, 1),
            "jemalloc": je or "not found"}
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f)
    text = report(results, meta)
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    charts(results, a.out, samples_dir)


def med_min_max(vals):
    return statistics.median(vals), min(vals), max(vals)


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def report(results, meta):
    out = []
    w = out.append

    def vals(group, peer, key):
        return [r[key] for r in results
                if r["group"] == group and r["peer"] == peer and r.get(key) is not None]

    def med(group, peer, key):
        v = vals(group, peer, key)
        return statistics.median(v) if v else None

    w("wpool benchmark suite: %s mode, %d rounds (peers interleaved, order rotated), %d CPUs, "
      "kernel %s, %.0f s\n" % (meta["mode"], meta["rounds"], meta["cores"], meta["kernel"],
                               meta["seconds"]))
    w("ratio = peer median / wpool median (same run); W2 spin loop %d iterations (5 us when "
      "calibrated, best of 5)\n"
      % meta["spin_iters"])
    notes = {}
    for r in results:
        if r.get("note"):
            notes[r["peer"]] = r["note"]
    for p in sorted(notes):
        w("  %-15s %s\n" % (p, notes[p]))
    w("\n%-16s %-15s %-11s %10s %22s %8s\n" % ("workload", "peer", "metric", "median",
                                              "min..max", "ratio"))
    groups = []
    for r in results:
        if r["group"] not in groups and not r["group"].startswith(("sys-", "mem")):
            groups.append(r["group"])
    for g in groups:
        peers = []
        for r in results:
            if r["group"] == g and r["peer"] not in peers:
                peers.append(r["peer"])
        metrics = METRICS.get(g, [("mops_per_s", "Mops/s", True)])
        base_peer = WPOOL if WPOOL in peers else ("wpool-ring" if "wpool-ring" in peers else None)
        if g in TITLES:
            w("# %s\n" % TITLES[g])
        elif g.startswith("queue-"):
            w("# Queue alone, %s producer/consumer pair(s), capacity 4096\n" % g[6:])
        for key, label, _hi in metrics:
            base = med(g, base_peer, key) if base_peer else None
            for p in peers:
                v = vals(g, p, key)
                if not v:
                    continue
                m, lo, hi = med_min_max(v)
                ratio = "%.2fx" % (m / base) if base else "-"
                w("%-16s %-15s %-11s %10s %22s %8s\n" % (g, p, label, fmt(m),
                                                        "%s..%s" % (fmt(lo), fmt(hi)), ratio))
        if g == "w3":
            for leg in ("futex_", "eventfd_"):
                v = vals(g, "floor", leg + "p50_us")
                if v:
                    m, lo, hi = med_min_max(v)
                    w("%-16s %-15s %-11s %10s %22s %8s\n" % (
                        g, "floor " + leg[:-1], "p50 us", fmt(m),
                        "%s..%s" % (fmt(lo), fmt(hi)), "leg"))
        if g == "w2":
            v = vals(g, "threads", "task_us")
            if v:
                w("%-16s (5 us nominal; one task timed inline in each run: median %s us)\n" % ("", fmt(
                    statistics.median(v))))

    # System calls.
    w("\n# System calls (kernel tracepoint counts over the timed stretch, all threads)\n")
    w("%-10s %-8s %16s %16s %22s\n" % ("workload", "peer", "futex wakes/task", "futex calls/task",
                                     "writes/completion"))
    for g in ("sys-w1", "sys-w4"):
        for p in (WPOOL,) + OTHERS:
            rs = [r for r in results if r["group"] == g and r["peer"] == p]
            if not rs:
                continue
            if any(r.get("futex_per_task") is None for r in rs):
                w("%-10s %-8s   not counted: %s\n" % (g[4:], p, rs[0].get("syscalls_why", "?")))
                continue
            w("%-10s %-8s %16s %16s %22s\n" % (
                g[4:], p, fmt(med(g, p, "futex_wakes_per_task")), fmt(med(g, p, "futex_per_task")),
                fmt(med(g, p, "writes_per_completion"))))

    # Allocation.
    w("\n# Allocation (every malloc/calloc/realloc/memalign of the process counted)\n")
    w("%-8s %15s %22s %22s %14s\n" % ("peer", "mallocs/task", "mallocs/queued task",
                                      "heap B/queued task", "record B"))
    for r in results:
        if r["group"] == "mem":
            w("%-8s %15s %22s %22s %14s\n" % (
                r["peer"], fmt(r["mallocs_per_task"]), fmt(r["mallocs_per_queued_task"]),
                fmt(r["heap_bytes_per_queued_task"]),
                fmt(r["record_bytes"]) if r["record_bytes"] else "(internal)"))
    w("(record B: the per-task record the caller embeds; heap B: what the pool allocates per "
      "queued task beyond it. wpool's ring preallocates 16 B per slot at create.)\n")

    # Targets, from this run's medians. Informational only.
    w("\n# Targets (this run; informational, never a failure)\n")

    def target(name, ok, detail):
        if ok is None:
            w("  %-48s %-7s %s\n" % (name, "n/a", detail))
        else:
            w("  %-48s %-7s %s\n" % (name, "met" if ok else "MISSED", detail))

    def ratio_target(name, num, den, goal, detail):
        if num is None or den is None or den == 0:
            target(name, None, "no data")
        else:
            target(name, num / den >= goal, detail % (num / den))

    ratio_target("W1 >= 3x libuv", med("w1", WPOOL, "mtasks_per_s"),
                 med("w1", "libuv", "mtasks_per_s"), 3.0, "wpool/libuv = %.2fx")
    best = max([m for m in (med("w4", p, "mtasks_per_s") for p in OTHERS) if m is not None],
               default=None)
    ratio_target("W4 >= 2x the best peer", med("w4", WPOOL, "mtasks_per_s"), best, 2.0,
                 "wpool/best peer = %.2fx")
    ratio_target("W2 efficiency >= 0.95 of plain threads", med("w2", WPOOL, "efficiency"),
                 med("w2", "threads", "efficiency"), 0.95, "wpool/threads = %.3f")
    if med("w2", "wpool-at-once", "efficiency") is not None:
        ratio_target("  the same with coalesce_us = 0", med("w2", "wpool-at-once", "efficiency"),
                     med("w2", "threads", "efficiency"), 0.95, "wpool-at-once/threads = %.3f")
    p50, floor = med("w3", WPOOL, "p50_us"), med("w3", "floor", "p50_us")
    if p50 is not None and floor:
        target("W3 p50 <= 1.2x futex + eventfd floor", p50 <= 1.2 * floor,
               "%.1f us vs floor %.1f us = %.2fx" % (p50, floor, p50 / floor))
    else:
        target("W3 p50 <= 1.2x futex + eventfd floor", None, "no data")
    for key, pct in (("p99_us", "p99"), ("p999_us", "p99.9")):
        mine = med("w3", WPOOL, key)
        peers = [(med("w3", p, key), p) for p in OTHERS if med("w3", p, key) is not None]
        if mine is not None and peers:
            b = min(peers)
            target("W3 %s <= best peer's %s" % (pct, pct), mine <= b[0],
                   "%s us vs %s %s us" % (fmt(mine), b[1], fmt(b[0])))
    idle = med("idle", WPOOL, "pool_cpu_pct")
    peer_idle = [(med("idle", p, "pool_cpu_pct"), p) for p in OTHERS
                 if med("idle", p, "pool_cpu_pct") is not None]
    if idle is not None and peer_idle:
        b = min(peer_idle)
        target("Idle CPU <= the peers'", idle <= b[0],
               "%.2f%% vs lowest peer %s %.2f%%" % (idle, b[1], b[0]))
    fw, ew = med("sys-w1", WPOOL, "futex_wakes_per_task"), med("sys-w1", WPOOL,
                                                                "writes_per_completion")
    target("W1 futex wakes/task <= 0.01", None if fw is None else fw <= 0.01,
           "no data" if fw is None else "%.4f" % fw)
    target("W1 eventfd writes/completion <= 0.01", None if ew is None else ew <= 0.01,
           "no data" if ew is None else "%.4f" % ew)
    mt = [r["mallocs_per_task"] for r in results if r["group"] == "mem" and r["peer"] == WPOOL]
    target("zero mallocs per task", None if not mt else mt[0] == 0,
           "no data" if not mt else "%.4g" % mt[0])
    for g, key, label in (("w1", "mtasks_per_s", "W1 Mtasks/s"), ("w3", "p50_us", "W3 p50 us"),
                          ("w3", "p99_us", "W3 p99 us")):
        a, b = med(g, WPOOL, key), med(g, "wpool-pin", key)
        if a is not None and b is not None:
            w("  pin: %-12s unpinned %s, pinned %s (pinned/unpinned %.2fx)\n" % (
                label, fmt(a), fmt(b), b / a))
    # wpool against one of its variants, W1 to W4.
    for peer, what, base, other, ratio in (
            ("wpool-at-once", "coalesce", "default", "coalesce_us = 0", "at once/default"),
            ("wpool-rr", "placement", "FIRST_FREE", "ROUND_ROBIN", "rr/ff")):
        for g, key, label in (("w1", "mtasks_per_s", "W1 Mtasks/s"),
                              ("w2", "efficiency", "W2 effic."), ("w3", "p50_us", "W3 p50 us"),
                              ("w3", "p99_us", "W3 p99 us"), ("w4", "mtasks_per_s", "W4 Mtasks/s")):
            a, b = med(g, WPOOL, key), med(g, peer, key)
            if a is not None and b is not None:
                w("  %s: %-12s %s %s, %s %s (%s %.2fx)\n" % (
                    what, label, base, fmt(a), other, fmt(b), ratio, b / a))
    return "".join(out)


PEER_ORDER = ["wpool", "wpool-rr", "wpool-pin", "wpool-notiming", "wpool-at-once", "libuv",
              "glib", "plain", "floor"]


def charts(results, out, samples_dir):
    gp = shutil.which("gnuplot")
    if not gp:
        sys.stderr.write("bench: gnuplot not found: no charts (apt-get install gnuplot-nox)\n")
        return

    def vals(group, peer, key):
        return [r[key] for r in results
                if r["group"] == group and r["peer"] == peer and r.get(key) is not None]

    # W1 / W1 batch / W4 bars: median with min..max.
    groups = [g for g in ("w1", "w1batch", "w4") if any(r["group"] == g for r in results)]
    peers = [p for p in PEER_ORDER if any(r["peer"] == p and r["group"] in groups
                                           for r in results)]
    dat = os.path.join(samples_dir, "w1w4.dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join("%s %s_min %s_max" % (p, p, p) for p in peers) + "\n")
        for g in groups:
            row = [{"w1": "W1", "w1batch": "W1-batch64", "w4": "W4-4-producers"}[g]]
            for p in peers:
                v = vals(g, p, "mtasks_per_s")
                row += ["%.4f %.4f %.4f" % med_min_max(v)] if v else ["NaN NaN NaN"]
            f.write(" ".join(row) + "\n")
    plots = ", ".join(
        "'%s' using %d:%d:%d:xtic(1) title '%s'" % (dat, 2 + 3 * i, 3 + 3 * i, 4 + 3 * i, p)
        for i, p in enumerate(peers))
    script = """set terminal svg size 900,480 dynamic font 'sans,12'
set output '%s'
set title 'No-op task throughput (median, bars: min..max)'
set ylabel 'million tasks / s'
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key top right
set yrange [0:*]
set grid ytics
plot %s
""" % (os.path.join(out, "w1w4.svg"), plots)
    subprocess.run([gp], input=script, text=True, check=False)

    # W3 latency CDF from the last round's samples.
    lines = []
    for p in PEER_ORDER:
        f = os.path.join(samples_dir, "w3_" + p + ".txt")
        if not os.path.exists(f):
            continue
        v = sorted(float(x) for x in open(f) if x.strip())
        if not v:
            continue
        cdf = os.path.join(samples_dir, "w3_" + p + ".cdf")
        # At most ~1000 points per curve (the tail in full), so the SVG stays small.
        n = len(v)
        keep = sorted(set(int(k * (n - 1) / 999) for k in range(1000)) | set(range(max(0, n - 50), n)))
        with open(cdf, "w") as g:
            for i in keep:
                g.write("%.3f %.6f\n" % (v[i], (i + 1) / n))
        lines.append("'%s' using 1:2 with lines lw 2 title '%s'" % (cdf, p))
    if lines:
        script = """set terminal svg size 900,480 dynamic font 'sans,12'
set output '%s'
set title 'W3 idle round trip: submit -> completion on the loop, 2 ms apart'
set xlabel 'latency (us, log scale)'
set ylabel 'fraction of round trips'
set logscale x
set key bottom right
set grid
set yrange [0:1]
plot %s
""" % (os.path.join(out, "w3_cdf.svg"), ", ".join(lines))
        subprocess.run([gp], input=script, text=True, check=False)


if __name__ == "__main__":
    main()
