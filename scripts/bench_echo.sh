#!/bin/sh
# Echo benchmark: each server pinned to CPU 0, the load generator to CPU 1;
# ping-pong with 1 and 50 connections, 64 B and 4 KiB messages. Reports
# requests/s and the server's user and kernel CPU per request (from
# /proc/<pid>/stat, clock ticks). The peers: plain C epoll and io_uring servers, Python's
# asyncio and uvloop, Tokio and Boost.Asio (bench/peers/<name>/build.sh; their
# Debian packages come from scripts/setup.sh --bench, run here when missing).
# Usage: scripts/bench_echo.sh [seconds]
set -eu
SECS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$OUT"
CXX=${CXX:-g++}
bash "$ROOT/scripts/setup.sh" --bench >/dev/null || echo "bench_echo: scripts/setup.sh --bench failed; going on" >&2
gcc -O2 -o "$OUT/c_epoll_server" "$ROOT/bench/echo/c_epoll_server.c"
gcc -O2 -o "$OUT/loadgen" "$ROOT/bench/echo/loadgen.c"
gcc -O2 -o "$OUT/c_uring_server" "$ROOT/bench/echo/c_uring_server.c" -luring
[ -x "$OUT/echo_server" ] || $CXX -std=c++20 -O2 -DNDEBUG -I"$ROOT/include" -o "$OUT/echo_server" \
    "$ROOT/bench/echo/echo_server.cpp" "$ROOT"/src/*.cpp -pthread -luring
PY=/usr/bin/python3
HZ=$(getconf CLK_TCK)
PORT=47000

run() {  # name, command...
    name=$1
    shift
    for conns in 1 50; do
        for size in 64 4096; do
            # The ports are in the ephemeral range: a client socket of another
            # process may hold one, and the server then dies at bind. Retry. (Match
            # "^ready ": "address already in use" contains "ready".)
            for try in 1 2 3 4 5; do
                PORT=$((PORT + 1))
                rm -f "$OUT/ready"
                taskset -c 0 "$@" $PORT > "$OUT/ready" 2>&1 &
                pid=$!
                i=0
                while ! grep -q '^ready ' "$OUT/ready" 2>/dev/null && kill -0 $pid 2>/dev/null; do
                    i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.05
                done
                kill -0 $pid 2>/dev/null && break
                wait $pid 2>/dev/null || true
                echo "$name: server failed on port $PORT: $(head -c 200 "$OUT/ready")" >&2
            done
            b=$(awk '{print $14, $15}' /proc/$pid/stat)
            rps=$(taskset -c 1 "$OUT/loadgen" $PORT $conns $size "$SECS" || echo 0)
            a=$(awk '{print $14, $15}' /proc/$pid/stat)
            kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
            echo "$b $a" | awk -v n="$name" -v c=$conns -v s=$size -v r="$rps" -v hz=$HZ -v t="$SECS" '{
                reqs = r * t; u = ($3 - $1) / hz; k = ($4 - $2) / hz;
                printf "%-20s %4d conns %5d B %10d req/s  user %.3f us/req  sys %.3f us/req\n", n, c, s, r, u / reqs * 1e6, k / reqs * 1e6 }'
        done
    done
}

run "C epoll" "$OUT/c_epoll_server"
run "C io_uring" "$OUT/c_uring_server"
run "asyncio++ protocol" "$OUT/echo_server" protocol
run "asyncio++ streams" "$OUT/echo_server" streams
# The same servers with the loop on epoll alone (no io_uring receives).
ASYNCIO_URING=0 run "asyncio++ prot. epoll" "$OUT/echo_server" protocol
ASYNCIO_URING=0 run "asyncio++ str. epoll" "$OUT/echo_server" streams
# And with batched sends through the ring (EventLoop::set_uring_sends).
ASYNCIO_URING_SENDS=1 run "asyncio++ prot. sends" "$OUT/echo_server" protocol
ASYNCIO_URING_SENDS=1 run "asyncio++ str. sends" "$OUT/echo_server" streams
run "python protocol" $PY "$ROOT/bench/echo/py_echo.py" protocol
run "python streams" $PY "$ROOT/bench/echo/py_echo.py" streams
if $PY -c "import uvloop" 2>/dev/null; then
    run "uvloop protocol" $PY "$ROOT/bench/echo/py_echo.py" uvloop-protocol
    run "uvloop streams" $PY "$ROOT/bench/echo/py_echo.py" uvloop-streams
fi
for name in $(sh "$ROOT/scripts/build_peers.sh" "$OUT"); do
    run "$name" "$OUT/peers/$name/${name}_echo"
done
