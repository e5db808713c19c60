#!/bin/sh
# Instructions per echo request, user space, counted by callgrind: the
# measure of the echo servers' CPU that a shared VM cannot blur (the user CPU
# of scripts/bench_echo.sh is clock ticks). Each server runs under
# valgrind --tool=callgrind; after a 1 s warm-up the counters are dumped and
# the load generator runs for SECS seconds; the second dump's total divided
# by the requests it counted is the figure.
# Usage: scripts/bench_echo_instr.sh [conns] [size] [secs] [top-n]
#   top-n > 0 also lists the functions with the most instructions per request.
# Environment: ECHO_PEERS=0 skips the peers (Tokio, Boost.Asio, uvloop); they
#   are built as scripts/bench_echo.sh builds them. (The C io_uring server is
#   left out and ours run with ASYNCIO_URING=0: valgrind does not follow
#   io_uring, such a server hangs under it.)
set -eu
CONNS=${1:-50}
SIZE=${2:-64}
SECS=${3:-4}
TOP=${4:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$OUT"
command -v valgrind >/dev/null 2>&1 || "$ROOT/scripts/setup.sh"
gcc -O2 -g -o "$OUT/c_epoll_server" "$ROOT/bench/echo/c_epoll_server.c"
gcc -O2 -o "$OUT/loadgen" "$ROOT/bench/echo/loadgen.c"
[ -x "$OUT/echo_server" ] || g++ -std=c++20 -O2 -g -DNDEBUG -I"$ROOT/include" -o "$OUT/echo_server" \
    "$ROOT/bench/echo/echo_server.cpp" "$ROOT"/src/*.cpp -pthread -luring
PORT=$((47500 + $$ % 400))

measure() {  # name, command...
    name=$1
    shift
    PORT=$((PORT + 1))
    rm -f "$OUT/ready" "$OUT"/cg."$name".*
    valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$OUT/cg.$name.%p" "$@" $PORT > "$OUT/ready" 2> "$OUT/cg.$name.log" &
    pid=$!
    i=0
    while ! grep -q '^ready ' "$OUT/ready" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then
            echo "$name: server did not start (see $OUT/cg.$name.log)" >&2
            kill $pid 2>/dev/null || true
            return 1
        fi
        sleep 0.1
    done
    "$OUT/loadgen" $PORT "$CONNS" "$SIZE" 1 > /dev/null
    callgrind_control -d $pid > /dev/null 2>&1
    rps=$("$OUT/loadgen" $PORT "$CONNS" "$SIZE" "$SECS")
    callgrind_control -d $pid > /dev/null 2>&1
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    python3 "$ROOT/bench/echo/callgrind_per_request.py" "$name" "$(ls "$OUT"/cg."$name".*.2)" \
        "$rps" "$SECS" "$TOP"
}

echo "instructions per request, $CONNS connections x $SIZE B, ${SECS} s under callgrind"
measure "C epoll" "$OUT/c_epoll_server"
# Ours on epoll: valgrind does not follow io_uring either (docs/benchmarks.md).
ASYNCIO_URING=0 measure "asyncio++ protocol" "$OUT/echo_server" protocol
ASYNCIO_URING=0 measure "asyncio++ streams" "$OUT/echo_server" streams
if [ "${ECHO_PEERS:-1}" != 0 ]; then
    bash "$ROOT/scripts/setup.sh" --bench >/dev/null || echo "setup.sh --bench failed; going on" >&2
    for name in $(sh "$ROOT/scripts/build_peers.sh" "$OUT"); do
        measure "$name" "$OUT/peers/$name/${name}_echo"
    done
    if /usr/bin/python3 -c "import uvloop" 2>/dev/null; then
        measure "uvloop protocol" /usr/bin/python3 "$ROOT/bench/echo/py_echo.py" uvloop-protocol
    fi
fi
