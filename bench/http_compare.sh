#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Drives examples/http_hash.c in its three modes (inline on the loop, libuv's
# uv_queue_work, wpool) with wrk at a fixed connection count, one mode after
# the other, and prints requests/s and latency p50/p99 side by side. Meanwhile
# a probe (bench/ping_probe.c) sends GET /ping, which needs no CPU work, at a
# fixed rate on its own connection and measures each answer from the time its
# request was meant to go out: how responsive the loop stays under load.
#
# usage: bench/http_compare.sh [build-dir] [seconds-per-run] [connections] [runs]
#        [ping-rate]
#   defaults: build 10 16 3 200  -- the table shows the median of the runs.
#   HASH_ROUNDS=N: SHA-256 rounds per request (the server's --rounds; its
#   default is about 1 ms of CPU).
#   HTTP_CONFIGS=cluster: instead of the three modes, the ways to use more
#   than one loop: 1 loop + a pool of 2; 2 loops sharing a pool of 2; 2
#   processes inline; 2 processes each with a pool of 1 (--processes, a
#   supervisor with SO_REUSEPORT children); uv_queue_work with 2 loops.
#   HTTP_CONFIGS=classes: the probe sends GET /quick?text=probe instead (one
#   hash, a few us, that needs a worker) to uv_queue_work (it queues behind
#   the /hash flood), to wpool with /quick in a class with one reserved
#   worker (the server's default), and to wpool with /quick in the default
#   class (--quick-reserved 0).
# Needs wrk (Debian package 'wrk'); .ci/install-deps installs it.
set -euo pipefail
build=${1:-build}
secs=${2:-10}
conns=${3:-16}
runs=${4:-3}
ping_rate=${5:-200}
exe=$build/examples/wpool-http-hash
probe=$build/bench/wpool-ping-probe
[ -x "$exe" ] || { echo "build $exe first (meson compile -C $build)"; exit 1; }
[ -x "$probe" ] || { echo "build $probe first (meson compile -C $build)"; exit 1; }
server_args=()
[ -z "${HASH_ROUNDS:-}" ] || server_args=(--rounds "$HASH_ROUNDS")
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

to_us() { # wrk prints 1.23ms / 456.00us / 1.20s
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6; else m = 1
        printf "%.0f", n * m }'
}

# Configurations: "label|server arguments" (labels without spaces).
probe_path=/ping
if [ "${HTTP_CONFIGS:-}" = classes ]; then
    configs=("uv|--mode uv" "wpool-class|--mode wpool" "wpool-noclass|--mode wpool --quick-reserved 0")
    probe_path="/quick?text=probe"
elif [ "${HTTP_CONFIGS:-}" = cluster ]; then
    configs=("1loop+pool2|--mode wpool --threads 2" "2loops+pool2|--mode wpool --loops 2 --threads 2"
        "2procs-inline|--mode inline --processes 2" "2procs+pool1|--mode wpool --processes 2 --threads 1"
        "uv-2loops|--mode uv --loops 2 --threads 2")
else
    configs=("inline|--mode inline" "uv|--mode uv" "wpool|--mode wpool")
fi

run_mode() { # label run -> "rps p50_us p99_us ping_p50_us ping_p99_us"
    local mode=$1 out=$tmp/$1-$2 args=() spec
    for spec in "${configs[@]}"; do [ "${spec%%|*}" = "$mode" ] && read -ra args <<<"${spec#*|}"; done
    "$exe" "${args[@]}" --port 0 "${server_args[@]}" >"$out.srv" &
    local pid=$!
    # Every serving process prints rounds=; a supervisor says how many it forks.
    local want=1
    [[ " ${args[*]} " =~ " --processes "([0-9]+) ]] && want=${BASH_REMATCH[1]}
    for _ in $(seq 200); do
        [ "$(grep -c 'rounds=' "$out.srv" 2>/dev/null)" -ge "$want" ] && break
        sleep 0.05
    done
    local port rounds
    port=$(sed -n '1s/.*127.0.0.1:\([0-9]*\).*/\1/p' "$out.srv")
    rounds=$(sed -n 's/.*rounds=\([0-9]*\).*/\1/p' "$out.srv" | head -n 1)
    echo "$rounds" >"$tmp/rounds"
    # The probe starts a little after wrk and stops a little before it, so
    # that it only sees the loaded server.
    (sleep 0.5 && "$probe" "$port" "$ping_rate" "$(awk -v s="$secs" 'BEGIN {print s - 1}')" \
        "$probe_path" >"$out.ping" 2>&1) &
    local probe_pid=$!
    wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/hash?text=hello+wpool" \
        >"$out.wrk" 2>&1 || true
    wait $probe_pid || echo "warning: $mode run $2: ping probe: $(cat "$out.ping")" >&2
    kill -TERM $pid
    wait $pid || true
    local rps p50 p99 non2xx pp50 pp99
    pp50=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' "$out.ping")
    pp99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$out.ping")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out.wrk")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out.wrk")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out.wrk")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out.wrk")
    [ -z "$non2xx" ] || echo "warning: $mode run $2: $non2xx non-2xx responses" >&2
    echo "${rps:-0} ${p50:-0} ${p99:-0} ${pp50:-0} ${pp99:-0}"
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# One request cost for every configuration (each process would calibrate
# its own): the server's calibration, once, unless HASH_ROUNDS says.
if [ -z "${HASH_ROUNDS:-}" ]; then
    "$exe" --mode inline --port 0 >"$tmp/calibrate" &
    cpid=$!
    for _ in $(seq 200); do grep -q 'rounds=' "$tmp/calibrate" 2>/dev/null && break; sleep 0.05; done
    kill -TERM $cpid
    wait $cpid || true
    server_args=(--rounds "$(sed -n 's/.*rounds=\([0-9]*\).*/\1/p' "$tmp/calibrate")")
fi

modes=()
for spec in "${configs[@]}"; do modes+=("${spec%%|*}"); done
for r in $(seq "$runs"); do
    for m in "${modes[@]}"; do # interleaved, so machine drift hits all modes alike
        run_mode "$m" "$r" >>"$tmp/$m.results"
    done
done

echo "HTTP GET /hash: $(cat "$tmp/rounds") SHA-256 rounds per request, wrk -t1" \
    "-c$conns -d${secs}s, median of $runs runs, $(nproc) CPUs;" \
    "GET $probe_path at $ping_rate/s on its own connection meanwhile (from the intended send time)"
printf '%-14s %12s %10s %10s %10s %12s %12s\n' mode "requests/s" "p50 ms" "p99 ms" "rps/first" \
    "ping p50 ms" "ping p99 ms"
base=$(awk '{print $1}' "$tmp/${modes[0]}.results" | median)
for m in "${modes[@]}"; do
    rps=$(awk '{print $1}' "$tmp/$m.results" | median)
    p50=$(awk '{print $2}' "$tmp/$m.results" | median)
    p99=$(awk '{print $3}' "$tmp/$m.results" | median)
    pp50=$(awk '{print $4}' "$tmp/$m.results" | median)
    pp99=$(awk '{print $5}' "$tmp/$m.results" | median)
    awk -v m="$m" -v r="$rps" -v a="$p50" -v b="$p99" -v base="$base" -v c="$pp50" -v d="$pp99" 'BEGIN {
        printf "%-14s %12.0f %10.2f %10.2f %9.2fx %12.3f %12.3f\n", m, r, a / 1000, b / 1000,
            (base > 0 ? r / base : 0), c / 1000, d / 1000 }'
done
