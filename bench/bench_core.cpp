// Benchmarks of the core runtime: tasks, switches, sleep(0), call_soon,
// timers and the memory of a suspended task. See docs/benchmarks.md.
//
// Each benchmark body is a coroutine run by one asyncio::run() per batch; the
// `for (auto _ : *state)` loop lives inside it, so creating and closing the
// loop is never timed. Coroutines are free functions taking pointers (a
// capturing lambda coroutine would dangle).
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

#if __has_include(<asyncio/locks.hpp>)
#define BENCH_HAVE_EVENT 1
#else
#define BENCH_HAVE_EVENT 0
#endif

// ---- allocation counters -------------------------------------------------
// This program replaces the global operator new (counting `new` calls) and
// interposes malloc/calloc/realloc over glibc's (counting every heap
// allocation, including the coroutine frames the library takes from malloc).
// Both forward to glibc, so mallinfo2() still describes the whole heap. The
// counters are per thread (plain thread_local: no atomic on the hot path).
extern "C" {
void* __libc_malloc(std::size_t n);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t n);
void __libc_free(void* p);
}

namespace {
thread_local std::uint64_t t_news = 0;
thread_local std::uint64_t t_mallocs = 0;

void* counted_new(std::size_t n) {
    ++t_news;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* counted_aligned_new(std::size_t n, std::align_val_t al) {
    ++t_news;
    ++t_mallocs;
    auto a = static_cast<std::size_t>(al);
    if (a < sizeof(void*)) a = sizeof(void*);
    void* p = nullptr;
    if (posix_memalign(&p, a, n ? n : 1) == 0) return p;
    throw std::bad_alloc();
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
    ++t_mallocs;
    return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
    ++t_mallocs;
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
    ++t_mallocs;
    return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
}

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, std::align_val_t al) { return counted_aligned_new(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return counted_aligned_new(n, al); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

std::uint64_t news() { return t_news; }
std::uint64_t mallocs() { return t_mallocs; }

/// Bytes handed out by malloc (arena chunks in use plus mmap'd blocks).
std::size_t heap_in_use() {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

asyncio::Coro<int> trivial() { co_return 1; }

// ---- create_task + await ---------------------------------------------------
asyncio::Coro<> create_task_await_body(benchmark::State* state) {
    bench::Meter meter;
    std::int64_t sum = 0;
    meter.start();
    for (auto _ : *state) {
        auto task = asyncio::create_task(trivial());
        sum += co_await task;
    }
    meter.stop(state->iterations());
    if (sum != state->iterations()) bench::fail(*state, "wrong task results");
    meter.report(*state);
}

void create_task_await(benchmark::State& state) { bench::run(state, create_task_await_body(&state)); }
BENCHMARK(create_task_await);

// ---- two tasks ping-ponging through futures ---------------------------------
// Each side owns its inbox future and replaces it after waking, before it
// wakes the other side, so a set_result() always hits the current inbox.
struct FuturePingPong {
    std::optional<asyncio::Future<>> to_a;
    std::optional<asyncio::Future<>> to_b;
    bool stop = false;
    std::int64_t pongs = 0;
};

asyncio::Coro<> future_ponger(FuturePingPong* pp) {
    auto& loop = asyncio::get_running_loop();
    for (;;) {
        co_await *pp->to_b;
        if (pp->stop) co_return;
        pp->to_b = loop.create_future<>();
        ++pp->pongs;
        pp->to_a->set_result();
    }
}

asyncio::Coro<> pingpong_future_body(benchmark::State* state) {
    auto& loop = asyncio::get_running_loop();
    FuturePingPong pp;
    pp.to_a = loop.create_future<>();
    pp.to_b = loop.create_future<>();
    auto ponger = asyncio::create_task(future_ponger(&pp));
    bench::Meter meter;
    meter.start();
    for (auto _ : *state) {
        pp.to_b->set_result();  // switch 1: to the ponger
        co_await *pp.to_a;      // switch 2: back here
        pp.to_a = loop.create_future<>();
    }
    meter.stop(2 * state->iterations());
    pp.stop = true;
    pp.to_b->set_result();
    co_await ponger;
    if (pp.pongs != state->iterations()) bench::fail(*state, "ping-pong lost a switch");
    meter.report(*state);
}

void pingpong_future(benchmark::State& state) { bench::run(state, pingpong_future_body(&state)); }
BENCHMARK(pingpong_future);

#if BENCH_HAVE_EVENT
// ---- two tasks ping-ponging through events ----------------------------------
struct EventPingPong {
    asyncio::Event to_a;
    asyncio::Event to_b;
    bool stop = false;
    std::int64_t pongs = 0;
};

asyncio::Coro<> event_ponger(EventPingPong* pp) {
    for (;;) {
        co_await pp->to_b.wait();
        pp->to_b.clear();
        if (pp->stop) co_return;
        ++pp->pongs;
        pp->to_a.set();
    }
}

asyncio::Coro<> pingpong_event_body(benchmark::State* state) {
    EventPingPong pp;
    auto ponger = asyncio::create_task(event_ponger(&pp));
    bench::Meter meter;
    meter.start();
    for (auto _ : *state) {
        pp.to_b.set();
        co_await pp.to_a.wait();
        pp.to_a.clear();
    }
    meter.stop(2 * state->iterations());
    pp.stop = true;
    pp.to_b.set();
    co_await ponger;
    if (pp.pongs != state->iterations()) bench::fail(*state, "ping-pong lost a switch");
    meter.report(*state);
}

void pingpong_event(benchmark::State& state) { bench::run(state, pingpong_event_body(&state)); }
BENCHMARK(pingpong_event);
#endif

// ---- sleep(0) ----------------------------------------------------------------
asyncio::Coro<> sleep0_body(benchmark::State* state) {
    bench::Meter meter;
    meter.start();
    for (auto _ : *state) co_await asyncio::sleep(0);
    meter.stop(state->iterations());
    meter.report(*state);
}

void sleep0(benchmark::State& state) { bench::run(state, sleep0_body(&state)); }
BENCHMARK(sleep0);

// ---- call_soon ------------------------------------------------------------------
// Batches of kBatch call_soon() then one sleep(0), which runs after the whole
// batch (FIFO): the figure covers scheduling and running a callback, plus
// 1/kBatch of a sleep(0).
constexpr int kCallSoonBatch = 1000;

asyncio::Coro<> call_soon_body(benchmark::State* state) {
    auto& loop = asyncio::get_running_loop();
    std::int64_t counter = 0;
    std::int64_t* p = &counter;
    // Warm-up: grow the ready queue to the batch size before counting.
    for (int i = 0; i < kCallSoonBatch; ++i) loop.call_soon([p] { ++*p; });
    co_await asyncio::sleep(0);
    counter = 0;

    bench::Meter meter;
    const std::uint64_t news0 = news();
    const std::uint64_t mallocs0 = mallocs();
    meter.start();
    while (state->KeepRunningBatch(kCallSoonBatch)) {
        for (int i = 0; i < kCallSoonBatch; ++i) loop.call_soon([p] { ++*p; });
        co_await asyncio::sleep(0);
    }
    meter.stop(state->iterations());
    const std::uint64_t allocs = mallocs() - mallocs0;
    const std::uint64_t news_done = news() - news0;
    if (counter != state->iterations()) bench::fail(*state, "call_soon callbacks lost");
    meter.report(*state);
    const auto n = static_cast<double>(std::max<std::int64_t>(1, state->iterations()));
    state->counters["allocs_per_op"] = static_cast<double>(allocs) / n;
    state->counters["news_per_op"] = static_cast<double>(news_done) / n;
}

void call_soon(benchmark::State& state) { bench::run(state, call_soon_body(&state)); }
BENCHMARK(call_soon);

// ---- 100,000 timers ----------------------------------------------------------------
// call_later() with random delays in [0, 100 ms), all fired; the firing order
// must follow the deadlines (TimerHandle::when()), FIFO for equal ones. CPU
// time only: the thread sleeps in the loop's poll between deadlines.
constexpr std::uint32_t kTimers = 100'000;

struct TimerRun {
    std::vector<double> when;
    std::vector<std::uint32_t> fired;
    std::optional<asyncio::Future<>> done;
};

asyncio::Coro<> timers_body(benchmark::State* state) {
    auto& loop = asyncio::get_running_loop();
    std::vector<double> delays(kTimers);
    std::mt19937_64 rng(12345);
    std::uniform_real_distribution<double> dist(0.0, 0.1);
    for (auto& d : delays) d = dist(rng);

    TimerRun run;
    TimerRun* r = &run;
    run.when.resize(kTimers);
    run.fired.reserve(kTimers);
    bool in_order = true;
    bench::Meter meter;
    for (auto _ : *state) {
        state->PauseTiming();
        run.fired.clear();
        run.done = loop.create_future<>();
        state->ResumeTiming();

        meter.start();
        for (std::uint32_t i = 0; i < kTimers; ++i) {
            auto handle = loop.call_later(delays[i], [r, i] {
                r->fired.push_back(i);
                if (r->fired.size() == kTimers) r->done->set_result();
            });
            run.when[i] = handle.when();
        }
        co_await *run.done;
        meter.stop(kTimers);

        state->PauseTiming();
        for (std::uint32_t k = 1; k < kTimers; ++k) {
            const std::uint32_t a = run.fired[k - 1], b = run.fired[k];
            if (run.when[b] < run.when[a] || (run.when[b] == run.when[a] && b < a)) in_order = false;
        }
        state->ResumeTiming();
    }
    if (!in_order) bench::fail(*state, "timers fired out of deadline order");
    meter.report(*state);
}

void timers_100k(benchmark::State& state) { bench::run(state, timers_body(&state)); }
BENCHMARK(timers_100k)->Unit(benchmark::kMillisecond)->Iterations(5);

// ---- memory of 100,000 suspended tasks ------------------------------------------
// Heap bytes per task suspended on one Event (Python's usual way to park many
// tasks), and on one Future (the task alone: its awaiter lives in its frame).
// Includes the task's coroutine frame (which holds the task state) and
// whatever the loop and the Event keep per waiter. Measured with mallinfo2()
// on a fresh thread, so the per-thread frame pool starts empty; the ready
// queue is grown first so its buffer is not counted.
constexpr int kMemTasks = 100'000;

struct MemResult {
    double bytes_per_task = 0;
    double allocs_per_task = 0;
    std::string error;
};

struct FutureGate {
    std::optional<asyncio::Future<>> fut;
    void prepare(asyncio::EventLoop& loop) { fut = loop.create_future<>(); }
    void open() { fut->set_result(); }
};

asyncio::Coro<> future_gate_waiter(FutureGate* gate, int* done) {
    co_await *gate->fut;
    ++*done;
}

#if BENCH_HAVE_EVENT
struct EventGate {
    asyncio::Event event;
    void prepare(asyncio::EventLoop&) {}
    void open() { event.set(); }
};

asyncio::Coro<> event_gate_waiter(EventGate* gate, int* done) {
    co_await gate->event.wait();
    ++*done;
}
#endif

template <class Gate, asyncio::Coro<> (*Waiter)(Gate*, int*)>
asyncio::Coro<> memory_body(MemResult* out) {
    auto& loop = asyncio::get_running_loop();
    std::int64_t sink = 0;
    std::int64_t* p = &sink;
    for (int i = 0; i < 2 * kMemTasks; ++i) loop.call_soon([p] { ++*p; });
    co_await asyncio::sleep(0);

    Gate gate;
    gate.prepare(loop);
    int done = 0;
    const std::size_t heap0 = heap_in_use();
    const std::uint64_t mallocs0 = mallocs();
    for (int i = 0; i < kMemTasks; ++i) (void)asyncio::create_task(Waiter(&gate, &done));
    co_await asyncio::sleep(0);  // every task runs up to its wait
    const std::size_t heap1 = heap_in_use();
    const std::uint64_t mallocs1 = mallocs();
    if (done != 0) out->error = "a waiter finished before the gate opened";
    out->bytes_per_task = (static_cast<double>(heap1) - static_cast<double>(heap0)) / kMemTasks;
    out->allocs_per_task = static_cast<double>(mallocs1 - mallocs0) / kMemTasks;

    gate.open();
    while (done < kMemTasks) co_await asyncio::sleep(0);
}

template <class Gate, asyncio::Coro<> (*Waiter)(Gate*, int*)>
void memory_100k(benchmark::State& state) {
    MemResult total;
    std::int64_t runs = 0;
    for (auto _ : state) {
        MemResult r;
        std::thread worker([&r] {
            try {
                asyncio::run(memory_body<Gate, Waiter>(&r));
            } catch (const std::exception& e) {
                r.error = std::string("exception: ") + e.what();
            } catch (...) {
                r.error = "exception not derived from std::exception";
            }
        });
        worker.join();
        if (!r.error.empty()) {
            bench::fail(state, r.error);
            return;
        }
        total.bytes_per_task += r.bytes_per_task;
        total.allocs_per_task += r.allocs_per_task;
        ++runs;
    }
    state.counters["bytes_per_task"] = total.bytes_per_task / static_cast<double>(runs);
    state.counters["allocs_per_task"] = total.allocs_per_task / static_cast<double>(runs);
}

#if BENCH_HAVE_EVENT
void memory_event_100k(benchmark::State& state) { memory_100k<EventGate, event_gate_waiter>(state); }
BENCHMARK(memory_event_100k)->Unit(benchmark::kMillisecond)->Iterations(3);
#endif
void memory_future_100k(benchmark::State& state) { memory_100k<FutureGate, future_gate_waiter>(state); }
BENCHMARK(memory_future_100k)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
