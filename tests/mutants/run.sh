#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mutation check: every test must catch the bug it is named after.
#
# Each tests/mutants/*.patch plants one deliberate bug in the library. Its
# header names the tests that must catch it, in a line
#     # tests: NAME [NAME ...]
# (meson test names). For each mutant this script applies the patch to a copy
# of the tree, rebuilds (incrementally: one build directory for all mutants),
# runs those tests, and reverts the patch. A mutant is *killed* when at least
# one of its tests fails (a crash, a failed assertion, a timeout: anything but
# success); it *survives* when they all pass, and then this check fails. A
# patch that no longer applies also fails the check: keep the mutants in step
# with the code they mutate.
#
# Usage: tests/mutants/run.sh [--build-dir DIR] [MUTANT.patch ...]
# Prints one line per mutant and a summary; exits non-zero on any survivor or
# stale patch.
#
# Adding a mutant (when you write a test for a bug class): make the bug in
# src/, `git diff > tests/mutants/NN-short-name.patch`, revert src/, put the
# "# tests:" line (and one line of "# why:") at the top of the patch, and run
# this script on it: it must report KILLED.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=${TMPDIR:-/tmp}/wpool-mutants
mutants=()
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) work=$2; shift 2 ;;
    *) mutants+=("$1"); shift ;;
    esac
done
[ ${#mutants[@]} -gt 0 ] || mutants=("$root"/tests/mutants/*.patch)

tree=$work/tree
build=$work/build
rm -rf "$tree"
mkdir -p "$tree"
# The working tree as git sees it (tracked and untracked files, not ignored).
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$tree"
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$tree" -Dbuildtype=debugoptimized -Dexamples=false -Dbench=false \
        -Dstress_tasks=100000 -Dsoak_seconds=2 >"$work/setup.log" 2>&1 ||
        { tail -20 "$work/setup.log"; echo "mutants: setup failed"; exit 1; }
fi
ninja -C "$build" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; echo "mutants: the unmutated tree does not build"; exit 1; }

# Each test and what it needs built, as "NAME FILE..." (paths relative to the
# build): a mutant rebuilds only its tests' programs, not every program of
# the tree.
python3 - "$build" >"$work/targets.txt" <<'PY' || { echo "mutants: meson introspect failed"; exit 1; }
import json, os, subprocess, sys
build = sys.argv[1]
def intro(what):
    return json.loads(subprocess.check_output(["meson", "introspect", what, build]))
files = {t["id"]: t["filename"] for t in intro("--targets")}
for t in intro("--tests"):
    deps = [os.path.relpath(f, build) for d in t.get("depends", []) for f in files.get(d, [])]
    print(t["name"], *deps)
PY
cut -d' ' -f1 "$work/targets.txt" >"$work/tests.txt"

# Each mutant's tests run with their timeouts (meson's, and Check's per test
# case) cut to a tenth: a mutant that hangs is killed by a timeout and need
# not take the test's full allowance. So that such a kill means something,
# every test a mutant names must first pass on the unmutated tree under the
# same cut.
cut=${MUTANT_TIMEOUT_MULTIPLIER:-0.1}
named=$(for m in "${mutants[@]}"; do sed -n 's/^# tests: *//p' "$m" | head -1; done |
    tr ' ' '\n' | sed '/^$/d' | sort -u | while read -r t; do grep -qx "$t" "$work/tests.txt" && echo "$t"; done)
# shellcheck disable=SC2086
if ! CK_TIMEOUT_MULTIPLIER=$cut meson test -C "$build" --no-rebuild --timeout-multiplier "$cut" \
    $named >"$work/baseline.log" 2>&1; then
    grep -E '^ *[0-9]+/[0-9]+ ' "$work/baseline.log" | grep -vE ' OK '
    echo "mutants: the unmutated tree fails its mutants' tests with timeouts cut to $cut"
    exit 1
fi

killed=0
survived=0
stale=0
for m in "${mutants[@]}"; do
    name=$(basename "$m" .patch)
    tests=$(sed -n 's/^# tests: *//p' "$m" | head -1)
    if [ -z "$tests" ]; then
        echo "STALE    $name: no '# tests:' line"
        stale=$((stale + 1))
        continue
    fi
    missing=""
    for t in $tests; do
        grep -qx "$t" "$work/tests.txt" || missing="$missing $t"
    done
    if [ -n "$missing" ]; then
        echo "STALE    $name: no such test:$missing"
        stale=$((stale + 1))
        continue
    fi
    if ! patch -d "$tree" -p1 --quiet --forward --fuzz=0 <"$m" >"$work/$name.patch.log" 2>&1; then
        echo "STALE    $name: the patch no longer applies"
        cat "$work/$name.patch.log"
        patch -d "$tree" -p1 --quiet -R <"$m" >/dev/null 2>&1
        stale=$((stale + 1))
        continue
    fi
    start=$(date +%s)
    need=$(for t in $tests; do awk -v t="$t" '$1 == t { $1 = ""; print }' "$work/targets.txt"; done)
    # shellcheck disable=SC2086 # a list of targets
    if ! ninja -C "$build" $need >"$work/$name.build.log" 2>&1; then
        echo "STALE    $name: the mutant does not compile"
        tail -10 "$work/$name.build.log"
        stale=$((stale + 1))
    else
        # The first failure kills the mutant: the rest of its tests are not
        # waited for (--maxfail 1).
        # shellcheck disable=SC2086
        CK_TIMEOUT_MULTIPLIER=$cut meson test -C "$build" --no-rebuild --timeout-multiplier "$cut" \
            --maxfail 1 $tests >"$work/$name.test.log" 2>&1
        rc=$?
        took=$(($(date +%s) - start))
        if [ $rc -ne 0 ]; then
            caught=$(grep -E '^ *[0-9]+/[0-9]+ ' "$work/$name.test.log" |
                grep -E 'FAIL|TIMEOUT|ERROR' | awk '{print $4}' | sort -u | tr '\n' ' ')
            echo "KILLED   $name (${took}s; by: ${caught:-meson test exit $rc})"
            killed=$((killed + 1))
        else
            echo "SURVIVED $name (${took}s): $tests all passed with the bug in place"
            survived=$((survived + 1))
        fi
    fi
    patch -d "$tree" -p1 --quiet -R <"$m" >/dev/null 2>&1 ||
        { echo "mutants: could not revert $name"; exit 1; }
done
# Leave the build matching the unmutated tree.
ninja -C "$build" >/dev/null 2>&1
echo "mutants: $killed killed, $survived survived, $stale stale"
[ $survived -eq 0 ] && [ $stale -eq 0 ]
