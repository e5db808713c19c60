#!/usr/bin/env bash
# Build the benchmarks in Release, run them, their Python asyncio/uvloop twins
# and the Tokio and Boost.Asio peers (bench/peers), and print one comparison
# table (see docs/benchmarks.md).
#
# Usage: scripts/bench.sh [--quick] [--reps N] [--cxx-only | --python-only] [--no-peers]
#   --quick        one short run of everything (a smoke test, figures are rough)
#   --reps N       runs per workload, the table shows the median (default 3)
#   --cxx-only     ours only: skip the Python side and the peers
#   --python-only  skip building and running the C++ side and the peers
#   --no-peers     skip the Tokio and Asio peers (they need scripts/setup.sh --bench)
# Environment: BENCH_REPS (as --reps), BENCH_BUILD_DIR (default build/bench),
#   BENCH_TIMEOUT (seconds one C++ benchmark may take, default 120; a Python
#   script or a peer gets ten times that),
#   JOBS (parallel build jobs, default: number of cores).
# Results: $BENCH_BUILD_DIR/results/{bench_*.json,python_*.jsonl,peer_*.jsonl,table.md}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

reps="${BENCH_REPS:-3}"
quick=0
run_cxx=1
run_py=1
run_peers=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1; reps=1 ;;
    --reps) reps="$2"; shift ;;
    --cxx-only) run_py=0; run_peers=0 ;;
    --python-only) run_cxx=0; run_peers=0 ;;
    --no-peers) run_peers=0 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

build="${BENCH_BUILD_DIR:-build/bench}"
results="$build/results"
jobs="${JOBS:-$(nproc)}"
bench_timeout="${BENCH_TIMEOUT:-120}"
# Debian's interpreter: python3-uvloop installs there (a pyenv python3 on
# PATH would not see it).
py=/usr/bin/python3
notes=()

have_uvloop() { "$py" -c 'import uvloop' >/dev/null 2>&1; }
have_benchmark() { dpkg -s libbenchmark-dev >/dev/null 2>&1 || [[ -f /usr/include/benchmark/benchmark.h ]]; }

if [[ ! -x "$py" ]]; then
  echo "bench.sh: $py not found: install Debian's python3 (scripts/setup.sh does)" >&2
  exit 1
fi
# setup.sh checks every package itself and calls apt-get only for missing
# ones: with the peers it always runs (a fraction of a second when all are
# there), without them only when something is missing.
if [[ $run_peers == 1 ]]; then
  bash scripts/setup.sh --bench || echo "bench.sh: scripts/setup.sh --bench failed; going on with what is there" >&2
elif { [[ $run_cxx == 1 ]] && ! have_benchmark; } || { [[ $run_py == 1 ]] && ! have_uvloop; }; then
  echo "== missing libbenchmark-dev or python3-uvloop: running scripts/setup.sh"
  bash scripts/setup.sh || echo "bench.sh: scripts/setup.sh failed; going on with what is there" >&2
fi
if [[ $run_cxx == 1 ]] && ! have_benchmark; then
  echo "bench.sh: Google Benchmark is missing: run scripts/setup.sh (Debian package libbenchmark-dev)" >&2
  exit 1
fi
impls=asyncio,uvloop
if [[ $run_py == 1 ]] && ! have_uvloop; then
  impls=asyncio
  notes+=("python3-uvloop is not installed for $py: the uvloop column is empty; run scripts/setup.sh (apt-get install python3-uvloop)")
fi

mkdir -p "$results"
cxx_json=()
py_json=()

if [[ $run_cxx == 1 ]]; then
  echo "== configure $build (Release, -O2)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DASYNCIO_BUILD_BENCH=ON -DBUILD_TESTING=OFF -DASYNCIO_BUILD_EXAMPLES=OFF >"$results/configure.log" 2>&1 \
    || { cat "$results/configure.log" >&2; echo "bench.sh: cmake configure failed" >&2; exit 1; }

  bench_args=(--benchmark_format=json)
  if [[ $quick == 1 ]]; then
    bench_args+=(--benchmark_min_time=0.05)
  else
    bench_args+=(--benchmark_repetitions="$reps")
  fi
  for src in bench/bench_*.cpp; do
    name="$(basename "$src" .cpp)"
    rm -f "$results/$name".*json
    # bench/CMakeLists.txt leaves out a program whose headers or API have not
    # landed yet, and says why.
    if skip="$(grep -m1 "asyncio: $name skipped" "$results/configure.log")"; then
      notes+=("${skip#-- asyncio: }")
      echo "   $name skipped (headers or API not there yet)"
      continue
    fi
    echo "== build $name"
    if ! cmake --build "$build" --target "$name" -j "$jobs" >"$results/build_$name.log" 2>&1; then
      notes+=("$name failed to build: see $results/build_$name.log")
      echo "   build failed (see $results/build_$name.log)"
      continue
    fi
    # One process per benchmark, each under a time limit: a benchmark that
    # crashes or hangs (a library bug) costs only its own row.
    for bm in $("$build/bench/$name" --benchmark_list_tests | sed 's|/.*||' | awk '!seen[$0]++'); do
      out="$results/$name.$bm.json"
      echo "== run $name $bm"
      if timeout "$bench_timeout" "$build/bench/$name" --benchmark_filter="^$bm(/|\$)" "${bench_args[@]}" \
          >"$out" 2>"$results/$name.$bm.stderr"; then
        cxx_json+=("$out")
      else
        status=$?
        if [[ $status == 124 ]]; then
          notes+=("$name $bm did not finish within ${bench_timeout}s (raise BENCH_TIMEOUT, or a library bug): no figure")
        else
          notes+=("$name $bm exited with status $status: see $results/$name.$bm.stderr")
        fi
        rm -f "$out"
      fi
    done
  done
fi

if [[ $run_py == 1 ]]; then
  py_args=(--reps "$reps" --impl "$impls")
  [[ $quick == 1 ]] && py_args+=(--quick)
  for script in bench/python/bench_*.py; do
    name="$(basename "$script" .py)"
    echo "== run python $name ($impls)"
    if PYTHONDONTWRITEBYTECODE=1 timeout "$((bench_timeout * 10))" "$py" "$script" "${py_args[@]}" >"$results/python_${name#bench_}.jsonl" \
        2>"$results/python_${name#bench_}.stderr"; then
      :
    else
      notes+=("python $name failed: see $results/python_${name#bench_}.stderr")
    fi
    py_json+=("$results/python_${name#bench_}.jsonl")
  done
fi

if [[ $run_peers == 1 ]]; then
  # Each peer builds its programs (scripts/build_peers.sh: no network) and
  # prints the same JSON lines as the Python twins.
  echo "== build the peers"
  built="$(sh scripts/build_peers.sh "$build" 2>"$results/build_peers.stderr")" || true
  while IFS= read -r line; do notes+=("peer $line"); done <"$results/build_peers.stderr"
  for name in $built; do
    peer_args=(--reps "$reps")
    [[ $quick == 1 ]] && peer_args=(--quick)
    echo "== run peer $name"
    if timeout "$((bench_timeout * 10))" "$build/peers/$name/${name}_core" "${peer_args[@]}" \
        >"$results/peer_$name.jsonl" 2>"$results/peer_$name.stderr"; then
      :
    else
      notes+=("peer $name failed: see $results/peer_$name.stderr")
    fi
    py_json+=("$results/peer_$name.jsonl")
  done
fi

echo
"$py" bench/report.py --cxx "${cxx_json[@]}" --py "${py_json[@]}" | tee "$results/table.md"
for n in "${notes[@]}"; do echo "note: $n"; done
if [[ $quick == 1 ]]; then
  echo "note: --quick: single short runs, the figures are rough"
fi
echo "(raw results in $results; $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
