#!/bin/sh
# SPDX-License-Identifier: MIT
# Makes the installed static archive as clean as the shared library: links
# every object of the library's internal archive into one relocatable object
# (so the library's own cross-file calls are resolved inside it), turns every
# hidden symbol (everything but the WPOOL_API functions) into a local one, and
# archives that object. A program that links libwpool.a then sees only
# wpool_* symbols, and may define a wp_alloc of its own.
# usage: localize-archive.sh IN.a OUT.a   (AR, LD, OBJCOPY from the environment)
set -eu
in=$1
out=$2
ar=${AR:-ar}
ld=${LD:-ld}
objcopy=${OBJCOPY:-objcopy}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wpool-archive.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case $in in /*) ;; *) in=$PWD/$in ;; esac
if [ "$(head -c 7 "$in")" = '!<thin>' ]; then
    # A thin archive (meson's default) names its objects, relative to itself.
    dir=$(dirname "$in")
    objs=$("$ar" t "$in" | sed "s|^\([^/]\)|$dir/\1|")
else
    (cd "$tmp" && "$ar" x "$in")
    objs=$(ls "$tmp"/*.o)
fi
# shellcheck disable=SC2086
"$ld" -r -o "$tmp/wpool.o" $objs
"$objcopy" --localize-hidden "$tmp/wpool.o"
rm -f "$out"
"$ar" rcs "$out" "$tmp/wpool.o"
