#!/usr/bin/env bash
# The demo (README's first command): build the examples (Release, build/demo) and
# run them in tour order, each under a heading. After the tour come the other
# examples that have an examples/expected/<name>.txt (those run unattended).
#
#   scripts/demo.sh              the whole tour
#   scripts/demo.sh NAME...      only these examples (names as in examples/NAME.cpp)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tour: the seed tutorial's two programs first, then one concept at a time.
# Names without an examples/<name>.cpp yet are skipped.
tour=(
  asyncio_base task_callbacks
  tour
  fetcher echo_server echo_client chat_server
)
if [ $# -gt 0 ]; then
  tour=("$@")
else
  for expected in examples/expected/*.txt; do
    [ -e "$expected" ] || continue
    name=$(basename "$expected" .txt)
    case " ${tour[*]} " in
      *" $name "*) ;;
      *) tour+=("$name") ;;
    esac
  done
fi

scripts/setup.sh

dir=build/demo
generator="Unix Makefiles"
if command -v ninja >/dev/null 2>&1; then
  generator=Ninja
fi
# A cache made with another generator cannot be reused: start afresh.
if [ -f "$dir/CMakeCache.txt" ] &&
   ! grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$dir/CMakeCache.txt"; then
  rm -rf "$dir"
fi
echo "demo: building the examples in $dir"
mkdir -p "$dir"
cmake -S . -B "$dir" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DASYNCIO_BUILD_EXAMPLES=ON -DBUILD_TESTING=OFF >"$dir/configure.log" 2>&1 ||
  { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir" -j "${ASYNCIO_JOBS:-2}"

for name in "${tour[@]}"; do
  program=$dir/examples/$name
  [ -x "$program" ] || continue
  echo
  echo "==== $name (examples/$name.cpp) ===="
  "$program"
done
