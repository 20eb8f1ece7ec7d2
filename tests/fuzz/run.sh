#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer harness (tests/fuzz/fuzz_api.c with the library sources
# compiled in, clang -fsanitize=fuzzer,address,undefined) and runs it.
#
# usage: run.sh [--build-dir DIR] [SECONDS]          fuzz for SECONDS (default 60)
#                                                    over a copy of the corpus
#        run.sh [--build-dir DIR] --regress [PATH...] run every file of the corpus
#                                                    (or of the given files and
#                                                    directories) once
#
# Exit status: 0 clean, 77 no clang or no fuzzer runtime (meson: skipped),
# 1 on any finding (crash, sanitizer report, leak, timeout, out of memory, a
# contract violation of the harness) or a build failure. Findings are left in
# the build directory (artifacts/) and their path is printed.
#
# Environment: FUZZ_CC (the clang to use, default clang), FUZZ_ARGS (extra
# libFuzzer flags), KEEP=1 (keep the temporary build directory),
# FUZZ_TRACE=1 (the harness prints every decoded call).
#
# The corpus (tests/fuzz/corpus) is a few minutes of fuzzing, reduced with
# `fuzz_api -merge=1 -use_counters=0 NEW OLD` and cut to the largest ~30 files;
# to refresh it, fuzz with --build-dir, merge $build/corpus the same way.
# Crash reproducers, if any, go to tests/fuzz/crashes with a note; replay one
# with run.sh --regress tests/fuzz/crashes/FILE.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${FUZZ_CC:-clang}
build=""
mode=fuzz
secs=60
paths=()

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --regress) mode=regress; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *)
        if [ "$mode" = regress ]; then
            paths+=("$1")
        elif [[ "$1" =~ ^[0-9]+$ ]]; then
            secs=$1
        else
            echo "run.sh: unknown argument $1" >&2; exit 2
        fi
        shift ;;
    esac
done

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found: skipping (libFuzzer needs clang)" >&2
    exit 77
fi

cleanup_dir=""
if [ -z "$build" ]; then
    build=$(mktemp -d "${TMPDIR:-/tmp}/wpool-fuzz.XXXXXX")
    cleanup_dir=$build
fi
mkdir -p "$build" || exit 1
build=$(cd "$build" && pwd)
# shellcheck disable=SC2317 # called by the trap
cleanup() { [ -n "$cleanup_dir" ] && [ "${KEEP:-0}" = 0 ] && rm -rf "$cleanup_dir"; }
trap cleanup EXIT

# Is the fuzzer runtime there (libclang-rt-*-dev)?
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$build/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$build/probe.c" -o "$build/probe" \
        >"$build/probe.log" 2>&1; then
    echo "run.sh: $cc has no libFuzzer/ASan runtime (install libclang-rt-dev):" >&2
    sed -n '1,5p' "$build/probe.log" >&2
    exit 77
fi

exe=$build/fuzz_api
echo "run.sh: building $exe"
# The library's sources with hwloc's topology (the sysfs one is its stand-in
# for builds without hwloc).
srcs=$(ls "$root"/src/*.c | grep -v '/topology_sysfs\.c$')
# shellcheck disable=SC2086
if ! "$cc" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -g -O1 -std=gnu11 -Wall -Wno-unused-parameter \
        -I "$root/include" -I "$root/src" -D_GNU_SOURCE -pthread \
        "$here/fuzz_api.c" $srcs -lhwloc -o "$exe"; then
    echo "run.sh: build failed" >&2
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$build/artifacts"
# Distinct exit codes, never 77 (meson's "skipped").
common=(-timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1
        -artifact_prefix="$build/artifacts/" -print_final_stats=1)
log=$build/fuzz.log

report() { # rc
    local rc=$1
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: FINDING (exit $rc); log: $log" >&2
        ls -l "$build/artifacts" >&2
        grep -E 'ERROR:|CONTRACT VIOLATION|runtime error|Test unit written' "$log" | head -20 >&2
        cleanup_dir="" # keep the evidence
        return 1
    fi
    return 0
}

if [ "$mode" = regress ]; then
    [ ${#paths[@]} -gt 0 ] || paths=("$here/corpus")
    files=()
    for p in "${paths[@]}"; do
        if [ -d "$p" ]; then
            for f in "$p"/*; do [ -f "$f" ] && files+=("$f"); done
        elif [ -f "$p" ]; then
            files+=("$p")
        else
            echo "run.sh: no such file or directory: $p" >&2; exit 2
        fi
    done
    if [ ${#files[@]} -eq 0 ]; then
        echo "run.sh: nothing to run" >&2; exit 1
    fi
    # Given files (not directories), libFuzzer runs each once and stops.
    # shellcheck disable=SC2086
    # FUZZ_REQUIRE_WORK: the replay fails if not one task completed (a
    # library that refuses everything must not pass).
    FUZZ_REQUIRE_WORK=1 "$exe" "${common[@]}" ${FUZZ_ARGS:-} "${files[@]}" >"$log" 2>&1
    rc=$?
    n=$(grep -c '^Executed ' "$log")
    echo "run.sh: regress: $n of ${#files[@]} inputs executed, exit $rc"
    if [ "$rc" -eq 0 ] && [ "$n" -ne "${#files[@]}" ]; then rc=1; fi
    report "$rc" || { tail -40 "$log" >&2; exit 1; }
    exit 0
fi

work=$build/corpus
rm -rf "$work"
mkdir -p "$work"
cp "$here"/corpus/* "$work"/ 2>/dev/null
echo "run.sh: fuzzing for $secs s over a copy of the corpus ($(find "$work" -type f | wc -l) files) in $work"
# shellcheck disable=SC2086
"$exe" "${common[@]}" -max_total_time="$secs" -max_len=640 ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
rc=$?
# The last status line ("#N DONE cov: ... exec/s: ...") and the final stats.
grep -E '^#[0-9]+' "$log" | tail -1
grep -E '^Done |^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::new_units_added' "$log"
report "$rc" || { tail -60 "$log" >&2; exit 1; }
echo "run.sh: no findings; new corpus units (not copied back) are in $work"
exit 0
