#!/bin/sh
# Echo benchmark: each server pinned to CPU 0, the load generator to CPU 1;
# ping-pong with 1 and 50 connections, 64 B and 4 KiB messages. Reports
# requests/s and the server's user and kernel CPU per request, from
# /proc/<pid>/stat ("ticks"; at 100 Hz a server that spends 0.2 us of user
# time per request at 100k req/s collects 10 user ticks in 5 s, so those
# figures move by 10-30% between runs), or with ECHO_PERF=1 from perf
# samples of the server at 10 kHz ("perf"; both samplers charge to user time
# a timer interrupt held back until a system call has returned, so neither
# is exact). The peers: plain C epoll and io_uring servers, Python's
# asyncio and uvloop, Tokio and Boost.Asio (bench/peers/<name>/build.sh; their
# Debian packages come from scripts/setup.sh --bench, run here when missing).
# Usage: scripts/bench_echo.sh [seconds]
# Environment: ECHO_CONNS (default "1 50"), ECHO_SIZES (default "64 4096"),
#   ECHO_ONLY (an extended regex: only the servers whose names match),
#   ECHO_ROUNDS (run the whole list this many times, default 1: on a noisy
#   machine, alternating rounds show the spread), ECHO_PERF=1 (see above).
# Example: ECHO_CONNS=50 ECHO_SIZES=64 ECHO_ROUNDS=4 \
#   ECHO_ONLY='^asyncio\+\+ prot|^tokio' scripts/bench_echo.sh 4
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
# (Rebuilt when a source is newer than the binary of an earlier BENCH_DIR run.)
if [ ! -x "$OUT/echo_server" ] ||
    [ -n "$(find "$ROOT/src" "$ROOT/include" "$ROOT/bench/echo/echo_server.cpp" -newer "$OUT/echo_server" | head -1)" ]; then
    $CXX -std=c++20 -O2 -DNDEBUG -I"$ROOT/include" -o "$OUT/echo_server" \
        "$ROOT/bench/echo/echo_server.cpp" "$ROOT"/src/*.cpp -pthread -luring
fi
PY=/usr/bin/python3
HZ=$(getconf CLK_TCK)
PORT=47000
PERF_HZ=10000
use_perf=0
if [ "${ECHO_PERF:-0}" != 0 ] && command -v perf >/dev/null 2>&1 &&
    perf record -q -e cpu-clock -F 1000 -o "$OUT/perf.probe" -- true >/dev/null 2>&1; then
    use_perf=1
fi
rm -f "$OUT/perf.probe"

run() {  # name, command...
    name=$1
    shift
    if [ -n "${ECHO_ONLY:-}" ] && ! printf '%s\n' "$name" | grep -qE -- "$ECHO_ONLY"; then
        return 0
    fi
    for conns in ${ECHO_CONNS:-1 50}; do
        for size in ${ECHO_SIZES:-64 4096}; do
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
            if [ $use_perf = 1 ]; then
                # Samples of the idle server before and after the load cost nothing.
                perf record -q -e cpu-clock -F $PERF_HZ -p $pid -o "$OUT/perf.data" >/dev/null 2>&1 &
                perf_pid=$!
                sleep 0.5
            fi
            b=$(awk '{print $14, $15}' /proc/$pid/stat)
            rps=$(taskset -c 1 "$OUT/loadgen" $PORT $conns $size "$SECS" || echo 0)
            a=$(awk '{print $14, $15}' /proc/$pid/stat)
            if [ $use_perf = 1 ]; then
                kill -INT $perf_pid 2>/dev/null; wait $perf_pid 2>/dev/null || true
                # User and kernel seconds: user-space samples have user
                # addresses, kernel ones start with ffff.
                cpu=$(perf script -i "$OUT/perf.data" -F ip 2>/dev/null |
                    awk -v hz=$PERF_HZ '{ if (substr($1, 1, 4) == "ffff") k++; else u++ }
                                        END { printf "%.6f %.6f perf", u / hz, k / hz }')
                rm -f "$OUT/perf.data"
            else
                cpu=$(echo "$b $a" | awk -v hz=$HZ '{ printf "%.6f %.6f ticks", ($3 - $1) / hz, ($4 - $2) / hz }')
            fi
            kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
            echo "$cpu" | awk -v n="$name" -v c=$conns -v s=$size -v r="$rps" -v t="$SECS" '{
                reqs = r * t;
                printf "%-22s %4d conns %5d B %10d req/s  user %.3f us/req  sys %.3f us/req  (%s)\n", n, c, s, r, $1 / reqs * 1e6, $2 / reqs * 1e6, $3 }'
        done
    done
}

peers=$(sh "$ROOT/scripts/build_peers.sh" "$OUT")
round=0
while [ $round -lt "${ECHO_ROUNDS:-1}" ]; do
    round=$((round + 1))
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
    for name in $peers; do
        run "$name" "$OUT/peers/$name/${name}_echo"
    done
done
