#!/bin/bash
# SPDX-License-Identifier: MIT
# Only wpool_* symbols may be exported from the shared library, and every
# function declared in the public header must be.
# usage: check-exports.sh libwpool.so include/wpool.h [src/wpool.sym]
set -eu
lib=$1
hdr=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort -u)
bad=$(printf '%s\n' "$exported" | grep -v '^wpool_' || true)
if [ -n "$bad" ]; then
    echo "FAIL: symbols outside the wpool_ namespace are exported:"
    printf '  %s\n' $bad
    exit 1
fi
declared=$(grep -o '^WPOOL_API [^(]*(' "$hdr" | sed 's/($//' | awk '{print $NF}' | tr -d '*' | sort -u)
# An empty list on either side proves nothing: fail instead of passing.
if [ -z "$exported" ] || [ -z "$declared" ]; then
    echo "FAIL: nothing exported ($lib) or nothing declared ($hdr)"
    exit 1
fi
undeclared=$(printf '%s\n' "$exported" | while read -r f; do
    printf '%s\n' "$declared" | grep -qx "$f" || echo "$f"
done)
if [ -n "$undeclared" ]; then
    echo "FAIL: exported but not declared in the header:"
    printf '  %s\n' $undeclared
    exit 1
fi
missing=$(printf '%s\n' "$declared" | while read -r f; do
    printf '%s\n' "$exported" | grep -qx "$f" || echo "$f"
done)
if [ -n "$missing" ]; then
    echo "FAIL: declared but not exported:"
    printf '  %s\n' $missing
    exit 1
fi
# The version script lists each exported function by name, per release node
# (no wildcard): what the library exports must be exactly that list.
map=${3:-}
if [ -n "$map" ]; then
    listed=$(grep -oE '^ +wpool_[a-z_]+;' "$map" | tr -d ' ;' | sort -u)
    if [ "$listed" != "$exported" ]; then
        echo "FAIL: exported symbols differ from those listed in $map:"
        diff <(printf '%s\n' "$listed") <(printf '%s\n' "$exported") | sed 's/^/  /'
        exit 1
    fi
fi
n=$(printf '%s\n' "$exported" | wc -l)
echo "ok: $n symbols exported, all wpool_*, all declared in the header"
