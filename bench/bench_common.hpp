// Shared by the bench_<module>.cpp programs: CPU-time meter, per-op counters,
// and the wrapper that runs one benchmark batch inside one asyncio::run().
//
// Every benchmark reports the counter `ns_per_op`: thread CPU nanoseconds per
// operation (task, switch, callback, timer, item, waiter) measured around the
// timed section only. scripts/bench.sh reads that counter, not the Time/CPU
// columns, because one benchmark iteration may be a batch of 100,000 ops.
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <asyncio/asyncio.hpp>

namespace bench {

/// CPU time consumed by the calling thread, in nanoseconds. Time the loop
/// spends blocked in epoll_wait (waiting for a timer) is not counted.
inline std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// Accumulates the CPU time of timed sections and the operations done in them.
class Meter {
public:
    void start() noexcept { t0_ = thread_cpu_ns(); }
    void stop(std::int64_t ops) noexcept {
        ns_ += thread_cpu_ns() - t0_;
        ops_ += ops;
    }
    std::int64_t ops() const noexcept { return ops_; }
    double ns_per_op() const noexcept {
        return ops_ > 0 ? static_cast<double>(ns_) / static_cast<double>(ops_) : 0.0;
    }
    /// Publish `ns_per_op` (the figure scripts/bench.sh reads) and items/s.
    void report(benchmark::State& state) const {
        state.counters["ns_per_op"] = ns_per_op();
        state.SetItemsProcessed(ops_);
    }

private:
    std::int64_t t0_ = 0;
    std::int64_t ns_ = 0;
    std::int64_t ops_ = 0;
};

/// Run `main` on a fresh loop (one loop per benchmark batch: loop creation and
/// teardown stay outside the `for (auto _ : state)` loop inside `main`). A
/// library exception marks the benchmark as failed instead of aborting.
inline void run(benchmark::State& state, asyncio::Coro<> main) {
    std::string error;
    try {
        asyncio::run(std::move(main));
    } catch (const std::exception& e) {
        error = std::string("exception: ") + e.what();
    } catch (...) {
        error = "exception not derived from std::exception (CancelledError?)";
    }
    if (!error.empty() && !state.error_occurred()) state.SkipWithError(error.c_str());
}

/// Report a wrong result (a library bug) without aborting the other benchmarks.
inline void fail(benchmark::State& state, const std::string& what) {
    if (!state.error_occurred()) state.SkipWithError(what.c_str());
}

}  // namespace bench
