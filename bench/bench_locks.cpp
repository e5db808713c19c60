// Benchmarks of the synchronisation primitives and queues: an uncontended
// Lock, a bounded Queue between two tasks, and an Event waking many waiters.
// See docs/benchmarks.md.
#include <cstdint>
#include <vector>

#include "bench_common.hpp"

namespace {

// ---- uncontended Lock ------------------------------------------------------------
asyncio::Coro<> lock_acquire_release_body(benchmark::State* state) {
    asyncio::Lock lock;
    bench::Meter meter;
    meter.start();
    for (auto _ : *state) {
        co_await lock.acquire();
        lock.release();
    }
    meter.stop(state->iterations());
    if (lock.locked()) bench::fail(*state, "lock still held");
    meter.report(*state);
}

void lock_acquire_release(benchmark::State& state) { bench::run(state, lock_acquire_release_body(&state)); }
BENCHMARK(lock_acquire_release);

// `auto guard = co_await lock;` (Python's `async with lock:`).
asyncio::Coro<> lock_guard_body(benchmark::State* state) {
    asyncio::Lock lock;
    bench::Meter meter;
    meter.start();
    for (auto _ : *state) {
        auto guard = co_await lock;
        benchmark::DoNotOptimize(guard);
    }
    meter.stop(state->iterations());
    if (lock.locked()) bench::fail(*state, "lock still held");
    meter.report(*state);
}

void lock_guard(benchmark::State& state) { bench::run(state, lock_guard_body(&state)); }
BENCHMARK(lock_guard);

// ---- Queue(maxsize=100): one producer task, the main task consumes ---------------------
constexpr int kQueueItems = 1'000'000;
constexpr int kQueueMaxsize = 100;

asyncio::Coro<> producer(asyncio::Queue<int>* q, int n) {
    for (int i = 0; i < n; ++i) co_await q->put(i);
}

asyncio::Coro<> queue_body(benchmark::State* state) {
    bench::Meter meter;
    bool ok = true;
    for (auto _ : *state) {
        asyncio::Queue<int> q(kQueueMaxsize);
        meter.start();
        auto prod = asyncio::create_task(producer(&q, kQueueItems));
        for (int i = 0; i < kQueueItems; ++i) {
            int v = co_await q.get();
            if (v != i) ok = false;
        }
        co_await prod;
        meter.stop(kQueueItems);
    }
    if (!ok) bench::fail(*state, "queue items out of order");
    meter.report(*state);
}

void queue_1m(benchmark::State& state) { bench::run(state, queue_body(&state)); }
BENCHMARK(queue_1m)->Unit(benchmark::kMillisecond)->Iterations(3);

// ---- Event.set() waking 100k waiters ----------------------------------------------------------
// Timed: set() plus every waiter resuming and finishing; creating the waiters
// and letting them reach their wait() is not timed.
constexpr int kWaiters = 100'000;

asyncio::Coro<> event_waiter(asyncio::Event* ev, int* done) {
    co_await ev->wait();
    ++*done;
}

asyncio::Coro<> event_wake_body(benchmark::State* state) {
    bench::Meter meter;
    bool ok = true;
    for (auto _ : *state) {
        state->PauseTiming();
        asyncio::Event ev;
        int done = 0;
        std::vector<asyncio::Task<>> waiters;
        waiters.reserve(kWaiters);
        for (int i = 0; i < kWaiters; ++i) waiters.push_back(asyncio::create_task(event_waiter(&ev, &done)));
        co_await asyncio::sleep(0);  // every waiter reaches wait()
        if (done != 0) ok = false;
        state->ResumeTiming();

        meter.start();
        ev.set();
        while (done < kWaiters) co_await asyncio::sleep(0);
        meter.stop(kWaiters);

        state->PauseTiming();
        for (auto& w : waiters)
            if (!w.done()) ok = false;
        waiters.clear();
        state->ResumeTiming();
    }
    if (!ok) bench::fail(*state, "Event waiters woke wrongly");
    meter.report(*state);
}

void event_wake_100k(benchmark::State& state) { bench::run(state, event_wake_body(&state)); }
BENCHMARK(event_wake_100k)->Unit(benchmark::kMillisecond)->Iterations(10);

}  // namespace

BENCHMARK_MAIN();
