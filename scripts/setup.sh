#!/usr/bin/env bash
# Install what building, testing and benchmarking this project needs on Debian 12.
#
# Idempotent and offline-safe: every package is checked with dpkg-query first, and
# apt-get runs only when something is missing (so a re-run on a ready machine takes
# a fraction of a second and touches no network). Uses sudo only when not root.
#
# Usage: scripts/setup.sh [--bench]
#   --bench  also the peers the benchmarks compare against (bench/peers/*/packages.txt:
#            Rust's cargo and Debian's Tokio, Boost.Asio) and perf; scripts/bench.sh and
#            scripts/bench_echo.sh pass it, the demo and the tests do not need it.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config g++
  clang clang-14 libclang-rt-14-dev   # clang++ with the ASan/UBSan/TSan runtimes
  googletest libgtest-dev libgmock-dev # googletest = sources, built with our flags
  libbenchmark-dev                     # scripts/bench.sh
  liburing-dev                         # the io_uring backend
  python3 python3-uvloop               # the Python the benchmarks compare against
  valgrind                             # scripts/bench_echo_instr.sh (instructions per request)
)

case "${1:-}" in
  "") ;;
  --bench)
    packages+=(linux-perf)  # scripts/bench_echo.sh samples the servers' CPU time with perf
    for list in "$(dirname "$0")"/../bench/peers/*/packages.txt; do
      [ -f "$list" ] || continue
      while read -r p _; do
        case "$p" in ''|'#'*) ;; *) packages+=("$p") ;; esac
      done < "$list"
    done ;;
  *) echo "setup: unknown argument: $1 (usage: scripts/setup.sh [--bench])" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get not found; this script supports Debian 12 only." >&2
  echo "setup: install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no (or stale) package lists: update once, then install.
# A failed update is not fatal: the cached lists may still be enough.
"${sudo[@]}" apt-get update -qq || echo "setup: apt-get update failed; trying the cached lists" >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
