// Benchmarks of the combinators: gather, as_completed and wait_for, each next
// to the bare cost of what it combines, so "cost over the task" is the
// difference of two ns_per_op figures. See docs/benchmarks.md.
#include <cstdint>
#include <utility>
#include <vector>

#include "bench_common.hpp"

namespace {

constexpr int kTasks = 100'000;

asyncio::Coro<int> trivial() { co_return 1; }

std::vector<asyncio::Task<int>> make_tasks() {
    std::vector<asyncio::Task<int>> tasks;
    tasks.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) tasks.push_back(asyncio::create_task(trivial()));
    return tasks;
}

// ---- 100k tasks: created, then consumed one way or another -------------------------------
// consume() awaits every task of the batch and returns the sum of the results.
using Consume = asyncio::Coro<std::int64_t> (*)(std::vector<asyncio::Task<int>>);

asyncio::Coro<> per_task_body(benchmark::State* state, Consume consume) {
    bench::Meter meter;
    std::int64_t sum = 0;
    for (auto _ : *state) {
        meter.start();
        sum += co_await consume(make_tasks());
        meter.stop(kTasks);
    }
    if (sum != meter.ops()) bench::fail(*state, "wrong task results");
    meter.report(*state);
}

// Baseline: await each task in creation order.
asyncio::Coro<std::int64_t> await_each(std::vector<asyncio::Task<int>> tasks) {
    std::int64_t sum = 0;
    for (auto& task : tasks) sum += co_await task;
    co_return sum;
}

asyncio::Coro<std::int64_t> gather_all(std::vector<asyncio::Task<int>> tasks) {
    auto results = co_await asyncio::gather(std::move(tasks));
    std::int64_t sum = 0;
    for (int v : results) sum += v;
    co_return sum;
}

asyncio::Coro<std::int64_t> as_completed_all(std::vector<asyncio::Task<int>> tasks) {
    std::int64_t sum = 0;
    for (auto&& next : asyncio::as_completed(std::move(tasks))) sum += co_await std::move(next);
    co_return sum;
}

void task_create_await_100k(benchmark::State& state) { bench::run(state, per_task_body(&state, await_each)); }
void gather_100k(benchmark::State& state) { bench::run(state, per_task_body(&state, gather_all)); }
void as_completed_100k(benchmark::State& state) { bench::run(state, per_task_body(&state, as_completed_all)); }
BENCHMARK(task_create_await_100k)->Unit(benchmark::kMillisecond)->Iterations(10);
BENCHMARK(gather_100k)->Unit(benchmark::kMillisecond)->Iterations(10);
BENCHMARK(as_completed_100k)->Unit(benchmark::kMillisecond)->Iterations(10);

// ---- wait_for with a timeout that never fires, vs awaiting directly -----------------
// The awaited coroutine suspends once (sleep(0)), so the timeout is really
// armed across a suspension and cancelled afterwards.
asyncio::Coro<int> yield_once() {
    co_await asyncio::sleep(0);
    co_return 1;
}

asyncio::Coro<> wait_for_direct_body(benchmark::State* state) {
    bench::Meter meter;
    std::int64_t sum = 0;
    meter.start();
    for (auto _ : *state) sum += co_await yield_once();
    meter.stop(state->iterations());
    if (sum != state->iterations()) bench::fail(*state, "wrong results");
    meter.report(*state);
}

void wait_for_direct(benchmark::State& state) { bench::run(state, wait_for_direct_body(&state)); }
BENCHMARK(wait_for_direct);

asyncio::Coro<> wait_for_timeout_body(benchmark::State* state) {
    bench::Meter meter;
    std::int64_t sum = 0;
    meter.start();
    for (auto _ : *state) sum += co_await asyncio::wait_for(yield_once(), 10.0);
    meter.stop(state->iterations());
    if (sum != state->iterations()) bench::fail(*state, "wrong results");
    meter.report(*state);
}

void wait_for_timeout(benchmark::State& state) { bench::run(state, wait_for_timeout_body(&state)); }
BENCHMARK(wait_for_timeout);

}  // namespace

BENCHMARK_MAIN();
