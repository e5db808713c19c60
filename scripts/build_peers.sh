#!/bin/sh
# Build every benchmark peer (bench/peers/<name>/build.sh) into
# <outdir>/peers/<name>, each logged to <outdir>/build_peer_<name>.log; print
# the names of the peers built, one per line, and report the others on
# stderr. Used by scripts/bench.sh, bench_echo.sh and bench_echo_instr.sh.
# Usage: scripts/build_peers.sh <outdir>
set -eu
OUT=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for dir in "$ROOT"/bench/peers/*/; do
    name=$(basename "$dir")
    [ -f "$dir/build.sh" ] || continue
    if bash "$dir/build.sh" "$OUT/peers/$name" > "$OUT/build_peer_$name.log" 2>&1; then
        echo "$name"
    else
        echo "$name: build failed, see $OUT/build_peer_$name.log" >&2
    fi
done
