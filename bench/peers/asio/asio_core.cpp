// Boost.Asio 1.81 peer of bench/bench_core.cpp, bench_combinators.cpp and
// bench_locks.cpp: the same workloads, written the idiomatic Asio way (C++20
// coroutines: awaitable, co_spawn, use_awaitable, experimental::channel,
// experimental::make_parallel_group). One io_context, run on one thread,
// constructed with concurrency hint 1 (Asio's documented hint for "one thread
// runs this context": handlers posted from that thread go to a thread-private
// queue; locking stays on, as in any default build; callgrind, sleep0 through
// the any_io_executor: ~1345 instructions per op with hint 1, ~1404 with the
// default hint, ~1266 with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE, which is not
// the idiomatic setup). A fresh io_context per run, created and destroyed
// outside the timed section. Operation counts are the Python twins' (e.g.
// 200,000 switches, 1M queue items; --quick divides them by 100).
// memory_event_100k also prints rss_bytes_per_task (RSS growth / tasks).
//
// Usage: asio_core [--reps N] [--quick] [--filter S]
// Prints one JSON line per workload, like bench/python/common.py:
//   {"bench": "sleep0", "impl": "asio", "ns_per_op": 81.2, "runs": [...]}
// ns_per_op is the median over the runs of the thread CPU time
// (CLOCK_THREAD_CPUTIME_ID) of the timed section per operation.
//
// The Asio equivalents used (where Asio has no asyncio primitive):
// - a task + its handle: co_spawn(ex, coro(), use_awaitable) awaited at once
//   (create_task_await), co_spawn(..., experimental::use_promise) when the
//   handles are kept (task_create_await_100k, the queue's producer). Asio's
//   co_spawn runs the new coroutine inline (dispatch) up to its first
//   suspension, and delivers its result through one post; asyncio's
//   create_task schedules the first step instead.
// - Future: a fresh experimental::channel<void(error_code)> of capacity 1 per
//   switch (try_send = set_result, async_receive = await).
// - Event: a flag plus a steady_timer that never expires (the classic Asio
//   idiom): wait() = async_wait unless set, set() = cancel() (wakes every
//   waiter, with operation_aborted), clear() = flag reset. Used where many
//   coroutines wait (memory_event_100k, event_wake_100k) and in the extra
//   line pingpong_event_timer. pingpong_event (one waiter per event) uses a
//   persistent channel of capacity 1 instead (ChannelEvent): the timer costs
//   a timerfd_settime + epoll_wait per wait.
// - sleep(0): co_await post(ex, use_awaitable); call_soon: post(ex, lambda),
//   both with ex = the io_context's executor (see io_executor()).
// - timers: one steady_timer per timer with async_wait(lambda). Asio's timer
//   heap does not keep FIFO order for equal deadlines: only the deadline
//   order is checked (like the Python twin).
// - gather: experimental::make_parallel_group over a vector of
//   co_spawn(ex, trivial(), deferred), wait_for_all: the group starts the
//   100k coroutines itself (our gather receives already created tasks).
// - Queue(100): experimental::channel<void(error_code, int)> of capacity 100,
//   async_send / async_receive.
// Skipped: lock_acquire_release, lock_guard (Asio has no async mutex);
// as_completed_100k, wait_for_* and memory_future_100k (not in the peer list).
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/experimental/promise.hpp>
#include <boost/asio/experimental/use_promise.hpp>
#include <boost/version.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

// The io_context's concurrency hint (1: see above). A macro only so that the
// effect of the other hints can be measured; build.sh does not change it.
#ifndef ASIO_PEER_CONCURRENCY_HINT
#define ASIO_PEER_CONCURRENCY_HINT 1
#endif

namespace {

// ---- measuring ----------------------------------------------------------------
std::int64_t thread_cpu_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Meter {
    std::int64_t t0 = 0, ns = 0, ops = 0;
    void start() noexcept { t0 = thread_cpu_ns(); }
    void stop(std::int64_t n) noexcept {
        ns += thread_cpu_ns() - t0;
        ops += n;
    }
    double ns_per_op() const noexcept { return ops > 0 ? static_cast<double>(ns) / static_cast<double>(ops) : 0.0; }
};

/// The figure of one run: ns per op, or bytes per task for memory workloads.
struct Result {
    double value = 0;
    double extra = 0;  // memory workloads: RSS growth per task
};

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(what);
}

bool g_quick = false;
std::int64_t ops(std::int64_t full, std::int64_t quick) { return g_quick ? quick : full; }

/// Heap bytes handed out by malloc (all arenas: chunks in use + mmap'd blocks).
std::size_t heap_in_use() {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

std::size_t rss_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

/// Run `body(&result)` as the main coroutine of a fresh single-threaded
/// io_context; an exception in it propagates out of run().
using Body = awaitable<void> (*)(Result*);

Result run_on_fresh_context(Body body) {
    Result r;
    asio::io_context ctx(ASIO_PEER_CONCURRENCY_HINT);
    asio::co_spawn(ctx, body(&r), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ctx.run();
    return r;
}

// ---- the Asio stand-ins for asyncio primitives --------------------------------------
/// asyncio.Event on the classic Asio idiom: a timer that never expires,
/// cancelled to wake its waiters.
struct Event {
    explicit Event(const asio::any_io_executor& ex) : timer(ex, asio::steady_timer::time_point::max()) {}
    bool flag = false;
    asio::steady_timer timer;

    void set() {
        if (!flag) {
            flag = true;
            timer.cancel();
        }
    }
    void clear() { flag = false; }
    awaitable<void> wait() {
        if (!flag) {
            error_code ec;  // operation_aborted: set() woke us
            co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
        }
    }
};

using OneShot = asio::experimental::channel<void(error_code)>;
using IntChannel = asio::experimental::channel<void(error_code, int)>;

/// An Event for one waiter on a channel of capacity 1: set() = try_send (a
/// no-op when already set), wait() = async_receive, which consumes the
/// signal (so wait() + clear()), clear() = drop a pending signal. Cheaper than
/// the timer idiom, which costs a timerfd_settime and an epoll_wait per wait.
struct ChannelEvent {
    explicit ChannelEvent(const asio::any_io_executor& ex) : ch(ex, 1) {}
    OneShot ch;

    void set() { ch.try_send(error_code{}); }
    void clear() {
        ch.try_receive([](const error_code&) {});
    }
    awaitable<void> wait() { co_await ch.async_receive(use_awaitable); }
};

/// The io_context's own executor behind a coroutine's any_io_executor. post()
/// through it costs less than through the type-erased any_io_executor (one
/// allocation instead of two for a plain function, ~1010 instead of ~1350
/// instructions for a post + co_await: callgrind).
asio::io_context::executor_type io_executor(const asio::any_io_executor& ex) {
    return static_cast<asio::io_context&>(asio::query(ex, asio::execution::context)).get_executor();
}

/// asyncio.sleep(0): one trip through the io_context's queue.
awaitable<void> yield_now(const asio::any_io_executor& ex) { co_await asio::post(io_executor(ex), use_awaitable); }

awaitable<int> trivial() { co_return 1; }

// ---- create_task + await ------------------------------------------------------------
awaitable<void> create_task_await_body(Result* out) {
    const std::int64_t n = ops(200'000, 2'000);
    auto ex = co_await asio::this_coro::executor;
    std::int64_t sum = 0;
    Meter m;
    m.start();
    for (std::int64_t i = 0; i < n; ++i) sum += co_await asio::co_spawn(ex, trivial(), use_awaitable);
    m.stop(n);
    check(sum == n, "wrong task results");
    out->value = m.ns_per_op();
}

// ---- two coroutines ping-ponging through one-shot channels ---------------------------
struct FuturePingPong {
    std::optional<OneShot> to_a;
    std::optional<OneShot> to_b;
    bool stop = false;
    std::int64_t pongs = 0;
};

awaitable<void> future_ponger(FuturePingPong* pp) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        co_await pp->to_b->async_receive(use_awaitable);
        if (pp->stop) co_return;
        pp->to_b.emplace(ex, 1);
        ++pp->pongs;
        pp->to_a->try_send(error_code{});
    }
}

awaitable<void> pingpong_future_body(Result* out) {
    const std::int64_t n = ops(200'000, 2'000);
    auto ex = co_await asio::this_coro::executor;
    FuturePingPong pp;
    pp.to_a.emplace(ex, 1);
    pp.to_b.emplace(ex, 1);
    auto ponger = asio::co_spawn(ex, future_ponger(&pp), asio::experimental::use_promise);
    Meter m;
    m.start();
    for (std::int64_t i = 0; i < n; ++i) {
        pp.to_b->try_send(error_code{});                     // switch 1: to the ponger
        co_await pp.to_a->async_receive(use_awaitable);  // switch 2: back here
        pp.to_a.emplace(ex, 1);
    }
    m.stop(2 * n);
    pp.stop = true;
    pp.to_b->try_send(error_code{});
    co_await ponger(use_awaitable);
    check(pp.pongs == n, "ping-pong lost a switch");
    out->value = m.ns_per_op();
}

// ---- two coroutines ping-ponging through events ---------------------------------------
template <class Ev>
struct EventPingPong {
    explicit EventPingPong(const asio::any_io_executor& ex) : to_a(ex), to_b(ex) {}
    Ev to_a;
    Ev to_b;
    bool stop = false;
    std::int64_t pongs = 0;
};

template <class Ev>
awaitable<void> event_ponger(EventPingPong<Ev>* pp) {
    for (;;) {
        co_await pp->to_b.wait();
        pp->to_b.clear();
        if (pp->stop) co_return;
        ++pp->pongs;
        pp->to_a.set();
    }
}

/// pingpong_event: Ev = ChannelEvent; pingpong_event_timer: Ev = Event (the
/// timer idiom).
template <class Ev>
awaitable<void> pingpong_event_body(Result* out) {
    const std::int64_t n = ops(200'000, 2'000);
    auto ex = co_await asio::this_coro::executor;
    EventPingPong<Ev> pp(ex);
    auto ponger = asio::co_spawn(ex, event_ponger(&pp), asio::experimental::use_promise);
    Meter m;
    m.start();
    for (std::int64_t i = 0; i < n; ++i) {
        pp.to_b.set();
        co_await pp.to_a.wait();
        pp.to_a.clear();
    }
    m.stop(2 * n);
    pp.stop = true;
    pp.to_b.set();
    co_await ponger(use_awaitable);
    check(pp.pongs == n, "ping-pong lost a switch");
    out->value = m.ns_per_op();
}

// ---- sleep(0) ------------------------------------------------------------------------
awaitable<void> sleep0_body(Result* out) {
    const std::int64_t n = ops(300'000, 3'000);
    auto ex = io_executor(co_await asio::this_coro::executor);
    Meter m;
    m.start();
    for (std::int64_t i = 0; i < n; ++i) co_await asio::post(ex, use_awaitable);
    m.stop(n);
    out->value = m.ns_per_op();
}

// ---- call_soon: batches of 1000 posts, then one post + co_await -------------------------
constexpr int kCallSoonBatch = 1000;

awaitable<void> call_soon_body(Result* out) {
    const std::int64_t batches = ops(500, 5);
    auto ex = co_await asio::this_coro::executor;
    auto ctx_ex = io_executor(ex);
    std::int64_t counter = 0;
    std::int64_t* p = &counter;
    for (int i = 0; i < kCallSoonBatch; ++i) asio::post(ctx_ex, [p] { ++*p; });  // warm-up
    co_await yield_now(ex);
    counter = 0;
    Meter m;
    m.start();
    for (std::int64_t b = 0; b < batches; ++b) {
        for (int i = 0; i < kCallSoonBatch; ++i) asio::post(ctx_ex, [p] { ++*p; });
        co_await asio::post(ex, use_awaitable);
    }
    m.stop(batches * kCallSoonBatch);
    check(counter == batches * kCallSoonBatch, "posted callbacks lost");
    out->value = m.ns_per_op();
}

// ---- 100,000 timers ------------------------------------------------------------------
struct TimerRun {
    std::vector<asio::steady_timer::time_point> when;
    std::vector<std::uint32_t> fired;
    std::uint32_t count = 0;
    Event* done = nullptr;
};

awaitable<void> timers_body(Result* out) {
    const auto n = static_cast<std::uint32_t>(ops(100'000, 1'000));
    auto ex = co_await asio::this_coro::executor;
    std::vector<std::chrono::nanoseconds> delays(n);
    std::mt19937_64 rng(12345);
    std::uniform_real_distribution<double> dist(0.0, 0.1);
    for (auto& d : delays) d = std::chrono::nanoseconds(static_cast<std::int64_t>(dist(rng) * 1e9));

    Event done(ex);
    TimerRun run;
    TimerRun* r = &run;
    run.when.resize(n);
    run.fired.reserve(n);
    run.count = n;
    run.done = &done;
    std::vector<asio::steady_timer> timers;
    timers.reserve(n);

    Meter m;
    m.start();
    for (std::uint32_t i = 0; i < n; ++i) {
        auto& t = timers.emplace_back(ex);
        t.expires_after(delays[i]);
        run.when[i] = t.expiry();
        t.async_wait([r, i](const error_code&) {
            r->fired.push_back(i);
            if (r->fired.size() == r->count) r->done->set();
        });
    }
    co_await done.wait();
    m.stop(n);

    check(run.fired.size() == n, "timers lost");
    for (std::uint32_t k = 1; k < n; ++k)
        check(run.when[run.fired[k]] >= run.when[run.fired[k - 1]], "timers fired out of deadline order");
    out->value = m.ns_per_op();
}

// ---- memory of 100,000 coroutines parked on one Event ---------------------------------------
// Heap bytes (mallinfo2, as ours) per coroutine spawned with co_spawn(detached)
// and suspended in Event::wait(), on a fresh thread so Asio's per-thread
// recycling caches start empty. `extra`: RSS growth per task.
awaitable<void> parked_waiter(Event* ev, int* done) {
    co_await ev->wait();
    ++*done;
}

awaitable<void> memory_body(Result* out) {
    const int n = static_cast<int>(ops(100'000, 1'000));
    auto ex = co_await asio::this_coro::executor;
    Event ev(ex);
    int done = 0;
    const std::size_t heap0 = heap_in_use();
    const std::size_t rss0 = rss_bytes();
    for (int i = 0; i < n; ++i) asio::co_spawn(ex, parked_waiter(&ev, &done), asio::detached);
    co_await yield_now(ex);  // every waiter reaches its wait (co_spawn already ran them inline)
    const std::size_t heap1 = heap_in_use();
    const std::size_t rss1 = rss_bytes();
    check(done == 0, "a waiter finished before the event was set");
    out->value = (static_cast<double>(heap1) - static_cast<double>(heap0)) / n;
    out->extra = (static_cast<double>(rss1) - static_cast<double>(rss0)) / n;
    ev.set();
    while (done < n) co_await yield_now(ex);
}

Result memory_event_run() {
    Result r;
    std::exception_ptr error;
    std::thread worker([&] {
        try {
            r = run_on_fresh_context(memory_body);
        } catch (...) {
            error = std::current_exception();
        }
    });
    worker.join();
    if (error) std::rethrow_exception(error);
    return r;
}

// ---- 100k tasks created, then awaited / gathered ----------------------------------------
using IntPromise = decltype(asio::co_spawn(std::declval<asio::any_io_executor>(), trivial(),
                                           asio::experimental::use_promise));

// One batch: create n tasks, consume them all, return the sum of the results.
using Batch = awaitable<std::int64_t> (*)(asio::any_io_executor, std::int64_t);

template <Batch batch>
awaitable<void> per_task_body(Result* out) {
    const std::int64_t n = ops(100'000, 1'000);
    const int batches = g_quick ? 1 : 3;
    auto ex = co_await asio::this_coro::executor;
    std::int64_t sum = 0;
    Meter m;
    for (int b = 0; b < batches; ++b) {
        m.start();
        sum += co_await batch(ex, n);
        m.stop(n);
    }
    check(sum == m.ops, "wrong task results");
    out->value = m.ns_per_op();
}

// Baseline: keep a promise (a handle) per spawned coroutine, await each in order.
awaitable<std::int64_t> await_each(asio::any_io_executor ex, std::int64_t n) {
    std::vector<IntPromise> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) tasks.push_back(asio::co_spawn(ex, trivial(), asio::experimental::use_promise));
    std::int64_t sum = 0;
    for (auto& t : tasks) sum += co_await t(use_awaitable);
    co_return sum;
}

using DeferredSpawn = decltype(asio::co_spawn(std::declval<asio::any_io_executor>(), trivial(), asio::deferred));

awaitable<std::int64_t> gather_all(asio::any_io_executor ex, std::int64_t n) {
    std::vector<DeferredSpawn> spawns;
    spawns.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) spawns.push_back(asio::co_spawn(ex, trivial(), asio::deferred));
    auto group = asio::experimental::make_parallel_group(std::move(spawns));
    auto results = co_await group.async_wait(asio::experimental::wait_for_all(), use_awaitable);
    std::int64_t sum = 0;
    for (int v : std::get<2>(results)) sum += v;
    co_return sum;
}

// ---- bounded queue: a producer coroutine sends 1M ints, the main one receives them ---------
constexpr std::size_t kQueueMaxsize = 100;

awaitable<void> producer(IntChannel* ch, int n) {
    for (int i = 0; i < n; ++i) co_await ch->async_send(error_code{}, i, use_awaitable);
}

awaitable<void> queue_body(Result* out) {
    const int n = static_cast<int>(ops(1'000'000, 10'000));
    auto ex = co_await asio::this_coro::executor;
    IntChannel ch(ex, kQueueMaxsize);
    bool ok = true;
    Meter m;
    m.start();
    auto prod = asio::co_spawn(ex, producer(&ch, n), asio::experimental::use_promise);
    for (int i = 0; i < n; ++i) {
        int v = co_await ch.async_receive(use_awaitable);
        if (v != i) ok = false;
    }
    co_await prod(use_awaitable);
    m.stop(n);
    check(ok, "queue items out of order");
    out->value = m.ns_per_op();
}

// ---- Event.set() waking 100k waiters ------------------------------------------------------
awaitable<void> event_wake_body(Result* out) {
    const int n = static_cast<int>(ops(100'000, 1'000));
    const int batches = g_quick ? 1 : 3;
    auto ex = co_await asio::this_coro::executor;
    Meter m;
    for (int b = 0; b < batches; ++b) {
        Event ev(ex);
        int done = 0;
        for (int i = 0; i < n; ++i) asio::co_spawn(ex, parked_waiter(&ev, &done), asio::detached);
        co_await yield_now(ex);
        check(done == 0, "a waiter finished before the event was set");

        m.start();
        ev.set();
        while (done < n) co_await yield_now(ex);
        m.stop(n);
    }
    out->value = m.ns_per_op();
}

// ---- driver -------------------------------------------------------------------------------
struct Workload {
    const char* name;
    std::function<Result()> run;
    bool memory = false;
};

std::function<Result()> on_context(Body body) {
    return [body] { return run_on_fresh_context(body); };
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t k = v.size();
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

std::string fmt(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", x);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 3;
    std::string filter;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            g_quick = true;
        } else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            filter = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--reps N] [--quick] [--filter S]\n", argv[0]);
            return 2;
        }
    }
    if (g_quick) reps = 1;

    const std::vector<Workload> workloads = {
        {"create_task_await", on_context(create_task_await_body)},
        {"pingpong_future", on_context(pingpong_future_body)},
        {"pingpong_event", on_context(pingpong_event_body<ChannelEvent>)},
        {"pingpong_event_timer", on_context(pingpong_event_body<Event>)},
        {"sleep0", on_context(sleep0_body)},
        {"call_soon", on_context(call_soon_body)},
        {"timers_100k", on_context(timers_body)},
        {"memory_event_100k", memory_event_run, true},
        {"task_create_await_100k", on_context(per_task_body<await_each>)},
        {"gather_100k", on_context(per_task_body<gather_all>)},
        {"queue_1m", on_context(queue_body)},
        {"event_wake_100k", on_context(event_wake_body)},
    };

    const std::string version = std::to_string(BOOST_VERSION / 100000) + "." +
                                std::to_string(BOOST_VERSION / 100 % 1000) + "." +
                                std::to_string(BOOST_VERSION % 100);
    int status = 0;
    for (const auto& w : workloads) {
        if (!filter.empty() && std::string(w.name).find(filter) == std::string::npos) continue;
        std::vector<double> values, extras;
        try {
            for (int r = 0; r < reps; ++r) {
                Result res = w.run();
                values.push_back(res.value);
                extras.push_back(res.extra);
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "asio_core: %s failed: %s\n", w.name, e.what());
            status = 1;
            continue;
        }
        std::string runs;
        for (double v : values) runs += (runs.empty() ? "" : ", ") + fmt(v);
        std::string line = std::string("{\"bench\": \"") + w.name + "\", \"impl\": \"asio\", \"version\": \"" +
                           version + "\", ";
        if (w.memory) {
            line += "\"bytes_per_task\": " + fmt(median(values)) + ", \"rss_bytes_per_task\": " + fmt(median(extras)) +
                    ", ";
        } else {
            line += "\"ns_per_op\": " + fmt(median(values)) + ", ";
        }
        line += "\"runs\": [" + runs + "]}";
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    }
    return status;
}
