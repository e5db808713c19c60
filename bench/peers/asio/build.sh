#!/bin/sh
# Build the Boost.Asio 1.81 peer: build.sh <outdir> -> <outdir>/asio_core, <outdir>/asio_echo.
# Header-only Asio from Debian's libboost1.81-dev; g++ 12, C++20, -O2. No network.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 <outdir>" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$1
mkdir -p "$OUT"
CXX=${ASIO_PEER_CXX:-g++}
FLAGS="-std=c++20 -O2 -DNDEBUG -DBOOST_ASIO_NO_DEPRECATED -Wall -Wextra"
if ! echo '#include <boost/version.hpp>
#if BOOST_VERSION < 108100
#error Boost too old
#endif
int main() {}' | $CXX -std=c++20 -x c++ -fsyntax-only - 2>/dev/null; then
    echo "asio peer: Boost >= 1.81 headers not found (install libboost1.81-dev)" >&2
    exit 1
fi
for prog in core echo; do
    src="$HERE/asio_$prog.cpp"
    bin="$OUT/asio_$prog"
    # Rebuild only when the source is newer than the binary (idempotent).
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
        if ! $CXX $FLAGS -o "$bin.tmp" "$src" -pthread 2>"$OUT/asio_$prog.log"; then
            echo "asio peer: building asio_$prog failed, see $OUT/asio_$prog.log:" >&2
            head -n 30 "$OUT/asio_$prog.log" >&2
            rm -f "$bin.tmp"
            exit 1
        fi
        mv "$bin.tmp" "$bin"
        rm -f "$OUT/asio_$prog.log"
    fi
done
