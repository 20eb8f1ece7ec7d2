#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark suite of issue 5 in one command: builds bench/ (meson,
# release) if needed, runs every workload for every peer (wpool, libuv's
# uv_queue_work, GLib's GThreadPool, a plain mutex+condvar pool) interleaved,
# peer order rotated per round, and prints a table of medians with min..max and
# the ratio to wpool. Writes results.jsonl (one object per measurement),
# table.txt, meta.json and, when gnuplot is installed, w1w4.svg and w3_cdf.svg
# (their data and the raw W3 samples under data/) to the out
# directory. Never fails on a number; fails if a task is lost or a completion
# ran on the wrong thread.
#
# usage: bench/run.sh [--quick] [--out DIR] [--build DIR] [--rounds N]
#   --quick    small task counts, 3 rounds (well under a minute or two; CI)
#   --out      where results go (default: bench/results, or BUILD/bench-quick
#              with --quick)
#   --build    build directory (default: build-bench at the top of the repo;
#              configured with -Dbuildtype=release if it does not exist)
#   --rounds   rounds per workload (default 3)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
quick=0
out=""
build="$root/build-bench"
rounds=""
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" -Dbuildtype=release >/dev/null
fi
targets=(bench/wpool-bench bench/wpool-bench-queue bench/wpool-bench-strand bench/wpool-bench-class)
# wpool-bench-alloc is not built in a sanitizer build; its rows are left out.
if meson introspect --targets "$build" 2>/dev/null | grep -q '"wpool-bench-alloc"'; then
    targets+=(bench/wpool-bench-alloc)
fi
ninja -C "$build" "${targets[@]}" >/dev/null
if [ -z "$out" ]; then
    if [ $quick = 1 ]; then out="$build/bench-quick"; else out="$here/results"; fi
fi
mkdir -p "$out"
args=(--bin "$build/bench" --out "$out")
[ $quick = 1 ] && args+=(--quick)
[ -n "$rounds" ] && args+=(--rounds "$rounds")
exec python3 "$here/runner.py" "${args[@]}"
