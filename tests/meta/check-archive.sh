#!/bin/sh
# SPDX-License-Identifier: MIT
# The static archive defines only wpool_* global symbols: a program that links
# it may name its own functions wp_alloc, wp_park_wait, ... without a clash.
# usage: check-archive.sh libwpool.a
set -eu
globals=$(nm -g --defined-only "$1" | awk 'NF == 3 {print $3}' | sort -u)
if [ -z "$globals" ]; then
    echo "FAIL: $1 defines no global symbol"
    exit 1
fi
bad=$(printf '%s\n' "$globals" | grep -v '^wpool_' || true)
if [ -n "$bad" ]; then
    echo "FAIL: global symbols outside the wpool_ namespace in $1:"
    printf '  %s\n' $bad
    exit 1
fi
echo "ok: $(printf '%s\n' "$globals" | wc -l) global symbols in $1, all wpool_*"
