#!/usr/bin/env bash
# The demo (README's first command): build the examples (Release, build/demo) and
# run them in tour order, each under a heading. Examples not written yet are skipped.
#
#   scripts/demo.sh              the whole tour
#   scripts/demo.sh NAME...      only these examples (names as in examples/NAME.cpp)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tour: the seed tutorial's two programs first, then one concept at a time.
tour=(
  asyncio_base task_callbacks
  gather as_completed wait wait_for shield cancellation timeouts taskgroup
  locks events queues to_thread run_coroutine_threadsafe
  echo_server streams subprocess
)
if [ $# -gt 0 ]; then
  tour=("$@")
fi

scripts/setup.sh

dir=build/demo
generator=()
if command -v ninja >/dev/null 2>&1 &&
   { [ ! -f "$dir/CMakeCache.txt" ] || grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; }; then
  generator=(-G Ninja)
fi
echo "demo: building the examples in $dir"
mkdir -p "$dir"
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
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
