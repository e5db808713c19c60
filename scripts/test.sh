#!/usr/bin/env bash
# THE test command (README, .ci/run). Three builds, each in its own directory, each
# with -Werror, each running its ctest suite:
#   gcc   build/gcc   g++, RelWithDebInfo: unit tests, examples, packaging
#   asan  build/asan  clang, ASan+UBSan at -O1: unit tests, examples
#   tsan  build/tsan  clang, TSan: the tests declared TSAN (thread-crossing) only
# Every configuration runs even when an earlier one fails; the exit status is
# non-zero if any configure, build or test failed.
#
#   scripts/test.sh              all three
#   scripts/test.sh gcc [tsan]   only the ones named
# Environment: ASYNCIO_JOBS (default 2) for build and ctest parallelism.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

all_configs=(gcc asan tsan)
if [ $# -gt 0 ]; then
  configs=("$@")
else
  configs=("${all_configs[@]}")
fi
for c in "${configs[@]}"; do
  case " ${all_configs[*]} " in
    *" $c "*) ;;
    *) echo "usage: $0 [${all_configs[*]}]..." >&2; exit 2 ;;
  esac
done

scripts/setup.sh || { echo "test: scripts/setup.sh failed" >&2; exit 1; }

jobs=${ASYNCIO_JOBS:-2}
generator="Unix Makefiles"
if command -v ninja >/dev/null 2>&1; then
  generator=Ninja
fi
clangxx=clang++
if command -v clang++-14 >/dev/null 2>&1; then
  clangxx=clang++-14
fi

# Sanitizer runtime options (a caller's own settings win). LeakSanitizer works here
# (clang 14's runtime from libclang-rt-14-dev; checked: a leak is reported), so
# leaks fail the ASan build.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

# config_args <name>: sets the array args to that configuration's cmake options.
config_args() {
  case $1 in
    gcc)  args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
                -DASYNCIO_BUILD_EXAMPLES=ON) ;;
    asan) args=(-DCMAKE_CXX_COMPILER="$clangxx" -DCMAKE_BUILD_TYPE=Debug
                "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" "-DASYNCIO_SANITIZE=address,undefined"
                -DASYNCIO_BUILD_EXAMPLES=ON) ;;
    tsan) args=(-DCMAKE_CXX_COMPILER="$clangxx" -DCMAKE_BUILD_TYPE=Debug
                "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" -DASYNCIO_SANITIZE=thread
                -DASYNCIO_TSAN_ONLY=ON -DASYNCIO_BUILD_EXAMPLES=OFF) ;;
  esac
}

declare -A result passed failed
total_passed=0
total_failed=0

run_config() {
  local name=$1 dir=build/$1 log
  local -a args
  config_args "$name"
  log=$dir/ctest.log
  rm -f "$log"
  echo
  echo "==== $name: configure ($dir) ===="
  # A cache made with another generator cannot be reused: start that dir afresh.
  if [ -f "$dir/CMakeCache.txt" ] &&
     ! grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  if ! cmake -S . -B "$dir" -G "$generator" -DASYNCIO_WERROR=ON -DBUILD_TESTING=ON \
       "${args[@]}"; then
    result[$name]="configure failed"; failed[$name]=1; return
  fi
  echo "==== $name: build ===="
  if ! cmake --build "$dir" -j "$jobs"; then
    result[$name]="build failed"; failed[$name]=1; return
  fi
  echo "==== $name: ctest ===="
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$jobs") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  # ctest's summary line: "95% tests passed, 1 tests failed out of 20".
  local line n_failed n_total
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    n_failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
    n_total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    passed[$name]=$((n_total - n_failed))
    failed[$name]=$n_failed
  else
    passed[$name]=0
    failed[$name]=1
  fi
  if [ "$rc" -eq 0 ]; then
    result[$name]="ok"
  else
    result[$name]="tests failed"
    [ "${failed[$name]}" -gt 0 ] || failed[$name]=1
  fi
}

for c in "${configs[@]}"; do
  run_config "$c"
done

echo
echo "==== summary ===="
status=0
for c in "${configs[@]}"; do
  p=${passed[$c]:-0}
  f=${failed[$c]:-0}
  printf '%-5s %-17s %s passed, %s failed\n' "$c" "${result[$c]}" "$p" "$f"
  if [ -f "build/$c/ctest.log" ]; then  # written by this run only (removed first)
    # ctest's summary line and, if any, its list of failed tests.
    awk '/tests passed, / { print; next }
         /^The following tests FAILED:/ { list = 1 }
         NF == 0 || /^Errors while running/ { list = 0 }
         list' "build/$c/ctest.log" | sed 's/^/      /'
  fi
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  [ "${result[$c]}" = ok ] || status=1
done
echo "total: $total_passed passed, $total_failed failed"
exit $status
