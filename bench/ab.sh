#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Before/after comparison of two builds of wpool (e.g. the parent commit and
# yours), on the workloads a change to the hot path must show: W1 and W4 with
# completions on the default port (peer wpool) and on a port of the owner's
# own (peer wpool-port), W1 with its records shuffled (wpool-W1-shuffled:
# scattered in memory, where the hardware prefetcher cannot hide the owner's
# misses) and with ROUND_ROBIN (wpool-rr-W1), W2 (5 us tasks; each side's
# efficiency also as a fraction of the bare threads' in the same round, the
# target's measure),
# and the HTTP example (examples/http_hash.c, wpool mode) at 16 and 64
# connections, with its default ~1 ms request and a ~34 us one.
#
# The rounds are interleaved (old, new, old, new, ...) and each round's
# new/old ratio is taken within the round: on a shared, noisy VM two runs a
# minute apart can differ by 2x, so compare only within a round. Prints the
# medians of each side, the median of the paired ratios and their range; each
# W1/W4 row also as CPU ns per task over every thread (-cpu-ns: lower is
# better).
#
# usage: bench/ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [HTTP_ROUNDS] [HTTP_SECONDS]
#   defaults: 21 rounds for W1/W4; 5 HTTP rounds of 5 s (needs wrk; skipped
#   if either build lacks examples/wpool-http-hash or wrk is missing).
# Both builds: release (meson setup B --buildtype=release), bench enabled.
set -euo pipefail
old=${1:?usage: bench/ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [HTTP_ROUNDS] [HTTP_SECONDS]}
new=${2:?usage: bench/ab.sh OLD_BUILD NEW_BUILD [ROUNDS] [HTTP_ROUNDS] [HTTP_SECONDS]}
rounds=${3:-21}
http_rounds=${4:-5}
http_secs=${5:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for b in "$old" "$new"; do
    [ -x "$b/bench/wpool-bench" ] || { echo "no $b/bench/wpool-bench: build it first"; exit 1; }
done

build_of() { if [ "$1" = new ]; then echo "$new"; else echo "$old"; fi; }

# One W1/W4 run: prints "ROUND SIDE KEY Mtasks/s" and "ROUND SIDE KEY-cpu-ns CPU
# ns per task" (every thread's CPU: on 2 cores it moves less with the host's
# state than the wall clock does).
row() {
    local r=$1 side=$2 key=$3
    shift 3
    "$@" | python3 -c 'import json,sys
d = json.loads(sys.stdin.readlines()[-1])
print(sys.argv[1], sys.argv[2], sys.argv[3], d["mtasks_per_s"])
print(sys.argv[1], sys.argv[2], sys.argv[3] + "-cpu-ns", d["cpu_ns_per_task"])' "$r" "$side" "$key"
}
# W2's efficiency (ideal / wall) of a build's peer; the spin loop as bench/run.sh
# calibrates it on this machine kind (5 us).
w2() { "$1/bench/wpool-bench" w2 "$2" --threads 2 --n 200000 --spin-iters "${W2_SPIN_ITERS:-3052}" \
    --task-ns 5000 | python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[-1])["efficiency"])'; }

for r in $(seq "$rounds"); do
    for peer in wpool wpool-port; do
        for side in old new; do
            b=$(build_of "$side")
            row "$r" $side "$peer-W1" "$b/bench/wpool-bench" w1 "$peer" --n 1000000
            row "$r" $side "$peer-W4" "$b/bench/wpool-bench" w4 "$peer" --n 250000 --producers 4
        done
    done
    for side in old new; do
        b=$(build_of "$side")
        row "$r" $side wpool-W1-shuffled "$b/bench/wpool-bench" w1 wpool --n 1000000 --shuffle
        row "$r" $side wpool-rr-W1 "$b/bench/wpool-bench" w1 wpool-rr --n 1000000
    done
    threads=$(w2 "$new" threads)
    for side in old new; do
        b=$(build_of "$side")
        e=$(w2 "$b" wpool)
        echo "$r $side wpool-W2 $e"
        echo "$r $side wpool-W2-of-threads $(python3 -c "print($e / $threads)")"
    done
done >"$tmp/rows"

http_run() { # build rounds conns -> "rps p99"
    local out=$tmp/srv port res
    "$1/examples/wpool-http-hash" --mode wpool --port 0 ${2:+--rounds "$2"} >"$out" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q listening "$out" 2>/dev/null && break; sleep 0.05; done
    port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$out")
    res=$(wrk -t1 -c"$3" -d"${http_secs}s" --latency "http://127.0.0.1:$port/hash?text=hello+wpool" 2>&1)
    kill -TERM $pid
    wait $pid || true
    # p99 in ms
    echo "$(awk '/Requests\/sec/ {print $2}' <<<"$res") $(awk '$1 == "99%" {
        v = $2; n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        printf "%.3f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : n }' <<<"$res")"
}

if command -v wrk >/dev/null && [ -x "$old/examples/wpool-http-hash" ] &&
    [ -x "$new/examples/wpool-http-hash" ]; then
    # The calibrated ~1 ms request, and one 30 times cheaper.
    cal=$("$new/examples/wpool-http-hash" --mode inline --port 0 >"$tmp/cal" 2>&1 &
        pid=$!
        for _ in $(seq 100); do grep -q listening "$tmp/cal" 2>/dev/null && break; sleep 0.05; done
        kill -TERM $pid
        wait $pid 2>/dev/null || true
        sed -n 's/.*rounds=\([0-9]*\).*/\1/p' "$tmp/cal")
    for r in $(seq "$http_rounds"); do
        for cost in "" $((cal / 30)); do
            label=http-1ms
            [ -n "$cost" ] && label=http-34us
            for c in 16 64; do
                for side in old new; do
                    b=$(build_of "$side")
                    read -r rps p99 < <(http_run "$b" "$cost" "$c")
                    echo "$r $side $label-c$c-req/s $rps"
                    echo "$r $side $label-c$c-p99ms $p99"
                done
            done
        done
    done >>"$tmp/rows"
else
    echo "(HTTP rows skipped: needs wrk and examples/wpool-http-hash in both builds)"
fi

python3 - "$tmp/rows" <<'EOF'
import collections, statistics, sys
d = collections.defaultdict(lambda: collections.defaultdict(dict))
for line in open(sys.argv[1]):
    r, side, key, v = line.split()
    d[key][side][r] = float(v)
print(f"{'':26s} {'old':>9s} {'new':>9s}  new/old (median of paired rounds) [their range]")
for key, sides in d.items():
    o, n = sides["old"], sides["new"]
    ratios = [n[r] / o[r] for r in o if r in n and o[r]]
    mo, mn = statistics.median(o.values()), statistics.median(n.values())
    f = ".3f" if max(mo, mn) < 10 else ".2f"
    print(f"{key:26s} {mo:9{f}} {mn:9{f}}  {statistics.median(ratios):.3f} (n={len(ratios)})"
          f" [{min(ratios):.2f}..{max(ratios):.2f}]")
EOF
