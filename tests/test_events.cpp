// Tests for asyncio.events: the loop's callbacks, timers, running, closing,
// the exception handler, fd readiness and the cross-thread entry point.
// Spec: CPython 3.12 Lib/test/test_asyncio/test_base_events.py and test_events.py.
#include <gtest/gtest.h>

#include <asyncio/events.hpp>  // the module alone: what events.hpp declares must work with it

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/run_test.hpp"

using namespace std::chrono_literals;
using asyncio::EventLoop;
using asyncio::testing::run_test;

namespace {

using Log = std::vector<std::string>;

// A pipe whose ends are closed at scope exit.
struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        if (r >= 0) ::close(r);
        if (w >= 0) ::close(w);
    }
    void close_both() {
        ::close(r);
        ::close(w);
        r = w = -1;
    }
};

struct SocketPair {
    int a = -1, b = -1;
    SocketPair() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
            throw std::runtime_error("socketpair");
        a = fds[0];
        b = fds[1];
    }
    ~SocketPair() {
        ::close(a);
        ::close(b);
    }
};

void write_byte(int fd) { ASSERT_EQ(::write(fd, "x", 1), 1); }
char read_byte(int fd) {
    char c = 0;
    EXPECT_EQ(::read(fd, &c, 1), 1);
    return c;
}

// A reader's usual body: log the name, take the byte, stop watching fd.
void log_and_unwatch(EventLoop& loop, Log& log, const char* name, int fd) {
    log.push_back(name);
    read_byte(fd);
    loop.remove_reader(fd);
}

// Run callbacks until the loop stops itself via a callback scheduled last.
void run_briefly(EventLoop& loop) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
}

}  // namespace

// ---- call_soon and iterations ----------------------------------------------------

TEST(CallSoon, RunsInFifoOrder) {
    EventLoop loop;
    Log log;
    for (int i = 0; i < 5; ++i) loop.call_soon([&log, i] { log.push_back(std::to_string(i)); });
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"0", "1", "2", "3", "4"}));
}

TEST(CallSoon, CallbackScheduledByCallbackRunsNextIteration) {
    // CPython's _run_once runs exactly the callbacks ready when it began.
    EventLoop loop;
    Log log;
    loop.call_soon([&] {
        log.push_back("a");
        loop.call_soon([&] { log.push_back("c"); });
    });
    loop.call_soon([&] {
        log.push_back("b");
        loop.stop();  // stop after this iteration: "c" must not have run yet
    });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"a", "b"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"a", "b", "c"}));
}

TEST(CallSoon, HandleCancelBeforeRunSkipsIt) {
    EventLoop loop;
    Log log;
    auto h = loop.call_soon([&] { log.push_back("cancelled one"); });
    loop.call_soon([&] { log.push_back("kept"); });
    EXPECT_FALSE(h.cancelled());
    h.cancel();
    EXPECT_TRUE(h.cancelled());
    h.cancel();  // idempotent
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"kept"}));
}

TEST(CallSoon, HandleCancelAfterRunIsHarmless) {
    EventLoop loop;
    int runs = 0;
    auto h = loop.call_soon([&] { ++runs; });
    run_briefly(loop);
    // The position now belongs to nobody; cancel must not drop a later callback.
    loop.call_soon([&] { ++runs; });
    h.cancel();
    run_briefly(loop);
    EXPECT_EQ(runs, 2);
}

// ---- timers ---------------------------------------------------------------------

// The loop runs a callback in its ready-queue slot. A callback that pushes
// enough work to make the queue grow, or to fill it up to its own slot, must
// still find its captured state intact after the pushes (ASan turns a freed
// or overwritten slot into a failure here).
TEST(CallSoon, CallbackThatGrowsTheQueueKeepsItsState) {
    EventLoop loop;
    Log log;
    int ran = 0;
    std::string tag = "captured state that lives in the callback's slot";
    loop.call_soon([&loop, &log, &ran, tag] {
        for (int i = 0; i < 5000; ++i) loop.call_soon([&ran] { ++ran; });
        log.push_back(tag);  // read after the queue grew several times
    });
    run_briefly(loop);
    run_briefly(loop);  // the pushed ones run on the next iteration
    EXPECT_EQ(log, (Log{tag}));
    EXPECT_EQ(ran, 5000);
}

TEST(CallSoon, CallbackThatFillsTheQueueUpToItsSlotKeepsItsState) {
    // The ring holds 1024 entries at first. From a callback that sits
    // mid-ring, push just enough for the tail to come round to its own slot
    // (1023 pushes) but not so many that the ring grows past it. The
    // callable is small (stored inline in the slot): if a push overwrote
    // the slot, the tag read afterwards and the overwriting callback would
    // both be lost.
    EventLoop loop;
    std::vector<int> log;
    int ran = 0;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 700; ++i) loop.call_soon([&ran] { ++ran; });
        loop.call_soon([&loop, &log, &ran, round] {
            for (int i = 0; i < 1023; ++i) loop.call_soon([&ran] { ++ran; });
            log.push_back(round);
        });
        run_briefly(loop);
        run_briefly(loop);
    }
    EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(ran, 3 * (700 + 1023));
}

TEST(CallSoon, CancellingTheRunningCallbacksHandleIsHarmless) {
    // While it runs, a callback's handle is no longer pending: cancelling
    // it must not drop the callback scheduled right after it.
    EventLoop loop;
    Log log;
    asyncio::Handle self;
    self = loop.call_soon([&] {
        self.cancel();
        log.push_back("first");
    });
    loop.call_soon([&] { log.push_back("second"); });
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"first", "second"}));
}

TEST(CallSoon, ACallbackIsDestroyedRightAfterItRunsAndOnlyThen) {
    // The loop destroys what a callback captured once it has run (its slot
    // is not cleared: nothing reads it until a push rebuilds it), and never
    // again: neither when the slot is reused nor when the loop goes away.
    auto token = std::make_shared<int>(0);
    {
        EventLoop loop;
        int checks = 0;
        for (int round = 0; round < 3; ++round) {
            loop.call_soon([token] { EXPECT_EQ(token.use_count(), 2); });
            loop.call_soon([&] {
                EXPECT_EQ(token.use_count(), 1);
                ++checks;
            });
            run_briefly(loop);
            EXPECT_EQ(token.use_count(), 1);
        }
        EXPECT_EQ(checks, 3);
        loop.call_soon([token] {});  // never runs: dropped with the loop
        EXPECT_EQ(token.use_count(), 2);
    }
    EXPECT_EQ(token.use_count(), 1);
}

TEST(CallSoon, ACallableWhoseCopyThrowsSchedulesNothing) {
    // call_soon builds the callback in its queue slot; a copy that throws
    // must leave the queue as it was (no half-built entry that would run or
    // be destroyed later).
    struct ThrowsOnCopy {
        int* runs;
        ThrowsOnCopy(int* r) : runs(r) {}
        ThrowsOnCopy(const ThrowsOnCopy&) { throw std::runtime_error("copy failed"); }
        ThrowsOnCopy(ThrowsOnCopy&& o) noexcept : runs(o.runs) {}
        void operator()() const { ++*runs; }
    };
    EventLoop loop;
    int runs = 0;
    Log log;
    loop.call_soon([&] { log.push_back("before"); });
    const ThrowsOnCopy bad(&runs);
    EXPECT_THROW(loop.call_soon(bad), std::runtime_error);
    loop.call_soon([&] { log.push_back("after"); });
    loop.call_soon(ThrowsOnCopy(&runs));  // moved, not copied: scheduled
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"before", "after"}));
    EXPECT_EQ(runs, 1);
}

TEST(CallSoon, ACallbackThatSchedulesCopiesOfItselfWhileTheQueueGrows) {
    // The loop runs a callback in its queue slot, and call_soon builds the
    // new entry in place: copying *this (which lives in that slot) must stay
    // valid while the push grows the queue (ASan checks the copies).
    struct Doubler {
        EventLoop* loop;
        int* runs;
        int depth;
        std::string payload;
        void operator()() {
            ++*runs;
            EXPECT_EQ(payload, std::string(64, 'x'));
            if (depth == 0) return;
            --depth;
            loop->call_soon(*this);
            loop->call_soon(*this);
        }
    };
    EventLoop loop;
    int runs = 0;
    loop.call_soon(Doubler{&loop, &runs, 11, std::string(64, 'x')});
    for (int i = 0; i < 12; ++i) run_briefly(loop);
    EXPECT_EQ(runs, (1 << 12) - 1);
}

TEST(CallLater, FiresInDeadlineOrder) {
    EventLoop loop;
    Log log;
    // One base time: three call_later()s each read the clock, and on a loaded
    // machine a preemption between them could reorder the deadlines themselves.
    const double t0 = loop.time();
    loop.call_at(t0 + 0.03, [&] {
        log.push_back("30ms");
        loop.stop();
    });
    loop.call_at(t0 + 0.01, [&] { log.push_back("10ms"); });
    loop.call_at(t0 + 0.02, [&] { log.push_back("20ms"); });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"10ms", "20ms", "30ms"}));
}

TEST(CallAt, EqualDeadlinesFireInFifoOrder) {
    EventLoop loop;
    Log log;
    double when = loop.time() + 0.005;
    for (int i = 0; i < 6; ++i) loop.call_at(when, [&log, i] { log.push_back(std::to_string(i)); });
    loop.call_at(when, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"0", "1", "2", "3", "4", "5"}));
}

TEST(CallAt, WhenIsTheScheduledLoopTime) {
    EventLoop loop;
    double when = loop.time() + 100.0;
    auto h = loop.call_at(when, [] {});
    EXPECT_DOUBLE_EQ(h.when(), when);
    auto h2 = loop.call_later(50.0, [] {});
    EXPECT_GE(h2.when(), when - 50.0);
    EXPECT_LE(h2.when(), loop.time() + 50.0);
    EXPECT_EQ(loop.live_timer_count(), 2u);
    h.cancel();
    h2.cancel();
    EXPECT_EQ(loop.live_timer_count(), 0u);
}

// A timer must fire in the first iteration that begins after its deadline,
// also in a busy loop (callbacks always ready, the poll never waits). A
// callback that read time() >= deadline ran in an iteration that began
// before it; the next iteration checks the timers after that time, so the
// timer must run in it: at the latest after the one chain link queued
// before it (Python appends due timers to the ready queue). (The coarse clock a busy loop uses to skip the check lags up to
// twice its resolution on a VM: then the timer came one iteration late.)
TEST(CallLater, FiresInTheFirstIterationAfterItsDeadlineInABusyLoop) {
    EventLoop loop;
    // Far enough ahead for the busy loop to run on the coarse clock first.
    const double deadline = loop.time() + 0.03;
    bool fired = false;
    int links_after_deadline = -1;  // chain links run after one saw time() >= deadline
    loop.call_at(deadline, [&] {
        fired = true;
        loop.stop();
    });
    std::function<void()> link;
    link = [&] {
        if (fired) return;
        if (links_after_deadline >= 0) ++links_after_deadline;
        if (links_after_deadline < 0 && loop.time() >= deadline) links_after_deadline = 0;
        loop.call_soon(link);
    };
    loop.call_soon(link);
    loop.run_forever();
    EXPECT_TRUE(fired);
    EXPECT_GE(links_after_deadline, 0);
    EXPECT_LE(links_after_deadline, 1);  // 0: the iteration that ran that link had it due already
}

TEST(CallLater, AcceptsChronoDurations) {
    EventLoop loop;
    const double before = loop.time();
    auto h = loop.call_later(std::chrono::milliseconds(1500), [] {});
    auto h2 = loop.call_later(std::chrono::microseconds(250), [&] { loop.stop(); });
    const double after = loop.time();
    EXPECT_GE(h.when(), before + 1.5);
    EXPECT_LE(h.when(), after + 1.5);
    EXPECT_GE(h2.when(), before + 0.00025);
    EXPECT_LE(h2.when(), after + 0.00025);
    loop.run_forever();  // the 250 us one fires and stops the loop
    EXPECT_FALSE(h2.cancelled());
    h.cancel();
}

// CPython's test_call_later_negative_delays: a negative delay stays
// negative, so when() is in the past and the more negative fires first,
// all before a delay of 0 armed earlier.
TEST(CallLater, NegativeDelaysKeepTheirOrderLikePython) {
    EventLoop loop;
    Log log;
    const double before = loop.time();
    loop.call_later(0.0, [&] { log.push_back("zero"); });
    loop.call_later(-1.0, [&] { log.push_back("a"); });
    auto h = loop.call_later(-2.0, [&] { log.push_back("b"); });
    EXPECT_LE(h.when(), loop.time() - 2.0);
    EXPECT_GE(h.when(), before - 2.0);
    loop.call_later(0.01, [&] {
        log.push_back("pos");
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"b", "a", "zero", "pos"}));
}

TEST(CallLater, NanDelayRaisesValueErrorAsCallAt) {
    EventLoop loop;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    EXPECT_THROW(loop.call_later(nan, [] {}), asyncio::ValueError);
    EXPECT_THROW(loop.call_at(nan, [] {}), asyncio::ValueError);
}

TEST(TimerHandle, CancelStopsTheTimer) {
    EventLoop loop;
    Log log;
    auto h = loop.call_later(0.001, [&] { log.push_back("cancelled timer"); });
    EXPECT_FALSE(h.cancelled());
    h.cancel();
    EXPECT_TRUE(h.cancelled());
    loop.call_later(0.005, [&] {
        log.push_back("other");
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"other"}));
    EXPECT_EQ(loop.live_timer_count(), 0u);
}

TEST(TimerHandle, TryCancelReportsWhetherItStoppedAPendingTimer) {
    EventLoop loop;
    auto pending = loop.call_later(60.0, [] {});
    EXPECT_TRUE(pending.try_cancel());
    EXPECT_FALSE(pending.try_cancel());
    auto fired = loop.call_later(0.0, [] {});
    loop.call_later(0.001, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(fired.try_cancel());
}

TEST(TimerHandle, CancelWhileExpiredButNotYetRunSkipsIt) {
    // Two timers expire in the same iteration; the first cancels the second.
    EventLoop loop;
    Log log;
    asyncio::TimerHandle second;
    double when = loop.time() + 0.002;
    loop.call_at(when, [&] {
        log.push_back("first");
        second.cancel();
    });
    second = loop.call_at(when, [&] { log.push_back("second"); });
    loop.call_at(when + 0.005, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"first"}));
}

// Deadlines in the past all fire in the first iteration, so these tests see
// the heap's order without waiting.
struct Fired {
    double when;
    int id;
};

void expect_deadline_then_fifo_order(const std::vector<Fired>& fired) {
    for (std::size_t k = 1; k < fired.size(); ++k) {
        const Fired& a = fired[k - 1];
        const Fired& b = fired[k];
        EXPECT_TRUE(a.when < b.when || (a.when == b.when && a.id < b.id))
            << "position " << k << ": " << a.id << " (" << a.when << ") before " << b.id << " (" << b.when << ")";
    }
}

TEST(TimerHeap, ThousandsOfTimersFireInDeadlineThenFifoOrder) {
    EventLoop loop;
    std::vector<Fired> fired;
    const double base = loop.time() - 100.0;
    std::uint32_t x = 12345;
    const int n = 5000;
    for (int i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        double when = base + static_cast<double>(x >> 24) * 0.01;  // 256 distinct deadlines: many ties
        loop.call_at(when, [&fired, when, i] { fired.push_back({when, i}); });
    }
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    ASSERT_EQ(fired.size(), static_cast<std::size_t>(n));
    expect_deadline_then_fifo_order(fired);
}

TEST(TimerHeap, RebuildAfterMostAreCancelledKeepsDeadlineAndFifoOrder) {
    // More than 100 cancelled timers making up more than half of the heap
    // trigger a rebuild (CPython's _MIN_CANCELLED_TIMER_HANDLES_FRACTION).
    EventLoop loop;
    std::vector<Fired> fired;
    std::vector<asyncio::TimerHandle> handles;
    const double base = loop.time() - 100.0;
    const int n = 1000;
    for (int i = 0; i < n; ++i) {
        double when = base + static_cast<double>((i * 7) % 10);  // 10 deadlines, 100 timers each
        handles.push_back(loop.call_at(when, [&fired, when, i] { fired.push_back({when, i}); }));
    }
    std::vector<bool> cancelled(n, false);
    for (int i = 0; i < n; ++i) {
        if (i % 4 != 0) {
            EXPECT_TRUE(handles[i].try_cancel());
            cancelled[i] = true;
        }
    }
    EXPECT_EQ(loop.live_timer_count(), static_cast<std::size_t>(n / 4));
    // Timers armed after the rebuild still come after the older ones at an equal deadline.
    for (int i = n; i < n + 50; ++i) {
        double when = base + static_cast<double>(i % 10);
        handles.push_back(loop.call_at(when, [&fired, when, i] { fired.push_back({when, i}); }));
        cancelled.push_back(false);
    }
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    std::size_t expected = 0;
    for (bool c : cancelled) expected += c ? 0 : 1;
    ASSERT_EQ(fired.size(), expected);
    for (const Fired& f : fired) EXPECT_FALSE(cancelled[f.id]) << f.id;
    expect_deadline_then_fifo_order(fired);
    EXPECT_EQ(loop.live_timer_count(), 0u);
}

TEST(TimerHeap, EqualDeadlinesStayFifoAcrossTheSequenceWrap) {
    // Sequence numbers are 32 bits; the loop renumbers its timers before they wrap.
    EventLoop loop;
    std::vector<Fired> fired;
    const double when = loop.time() - 1.0;
    loop.call_at(when + 0.5, [&fired, when] { fired.push_back({when + 0.5, -1}); });
    loop.set_next_timer_seq(0xffffffffull - 2);
    for (int i = 0; i < 8; ++i) loop.call_at(when, [&fired, when, i] { fired.push_back({when, i}); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    ASSERT_EQ(fired.size(), 9u);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(fired[i].id, i);
    EXPECT_EQ(fired[8].id, -1);
}

TEST(TimerHeap, FreedSlotsAreReusedWithoutMixingUpTimers) {
    // Slots freed in firing order are handed out again lowest first; across
    // several bitmap words and summary words no two live timers share one, and
    // an old handle cannot cancel the timer that reuses its slot.
    EventLoop loop;
    const int n = 5000;
    std::vector<asyncio::TimerHandle> old;
    std::vector<int> runs(2 * n, 0);
    const double base = loop.time() - 100.0;
    for (int i = 0; i < n; ++i)
        old.push_back(loop.call_at(base + 0.001 * static_cast<double>((i * 37) % n), [&runs, i] { ++runs[i]; }));
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    std::vector<asyncio::TimerHandle> fresh;
    for (int i = n; i < 2 * n; ++i) fresh.push_back(loop.call_at(base, [&runs, i] { ++runs[i]; }));
    for (auto& h : old) EXPECT_FALSE(h.try_cancel());
    for (int i = 0; i < n; i += 3) EXPECT_TRUE(fresh[i].try_cancel());
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    for (int i = 0; i < 2 * n; ++i) EXPECT_EQ(runs[i], (i >= n && (i - n) % 3 == 0) ? 0 : 1) << i;
    EXPECT_EQ(loop.live_timer_count(), 0u);
}

TEST(TimerHeap, CancelledLeafOrTopLeavesTheHeapAtOnceAndItsSlotIsReused) {
    EventLoop loop;
    Log log;
    const double base = loop.time() - 100.0;  // all due in the first iteration
    auto add = [&](double dt, const char* name) { return loop.call_at(base + dt, [&log, name] { log.push_back(name); }); };
    auto a = add(1, "a");
    add(2, "b");
    auto c = add(3, "c");
    auto d = add(4, "d");
    ASSERT_EQ(loop.timer_heap_size(), 4u);
    auto stale_a = a;
    auto stale_d = d;
    EXPECT_TRUE(d.try_cancel());  // the last entry, a leaf
    EXPECT_EQ(loop.timer_heap_size(), 3u);
    EXPECT_TRUE(a.try_cancel());  // the top
    EXPECT_EQ(loop.timer_heap_size(), 2u);
    auto e = add(5, "e");  // these take the freed slots, under new generations
    add(6, "f");
    EXPECT_FALSE(stale_a.try_cancel());
    EXPECT_FALSE(stale_d.try_cancel());
    EXPECT_TRUE(c.try_cancel());  // neither: it stays until it surfaces
    EXPECT_EQ(loop.timer_heap_size(), 4u);
    EXPECT_EQ(loop.live_timer_count(), 3u);
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"b", "e", "f"}));
    EXPECT_EQ(loop.timer_heap_size(), 0u);
    EXPECT_EQ(loop.live_timer_count(), 0u);
    EXPECT_FALSE(e.try_cancel());
}

TEST(FreeSlots, TheSlotKeptAsideComesFirstThenTheLowest) {
    asyncio::detail::FreeSlots f;
    f.resize(200);
    for (std::uint32_t s : {150u, 3u, 70u, 9u}) f.add(s);
    EXPECT_EQ(f.take(), 150u);  // the first added while none was kept aside
    EXPECT_EQ(f.take(), 3u);
    f.add(130);  // kept aside again: the cancel-then-arm case
    EXPECT_EQ(f.take(), 130u);
    EXPECT_EQ(f.take(), 9u);
    EXPECT_EQ(f.take(), 70u);
    EXPECT_TRUE(f.empty());
    f.add(5);
    f.add(6);
    f.clear();
    EXPECT_TRUE(f.empty());
    f.add(7);
    EXPECT_FALSE(f.empty());
    EXPECT_EQ(f.take(), 7u);
    EXPECT_TRUE(f.empty());
}

TEST(TimerHeap, NegativeZeroAndInfiniteDeadlines) {
    EventLoop loop;
    Log log;
    auto never = loop.call_at(std::numeric_limits<double>::infinity(), [&] { log.push_back("inf"); });
    loop.call_at(0.0, [&] { log.push_back("+0"); });
    loop.call_at(-0.0, [&] { log.push_back("-0"); });  // the same deadline as 0.0: FIFO
    loop.call_at(-1.0, [&] { log.push_back("-1"); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"-1", "+0", "-0"}));
    EXPECT_EQ(never.when(), std::numeric_limits<double>::infinity());
    EXPECT_TRUE(never.try_cancel());
}

TEST(Time, IsMonotonic) {
    EventLoop loop;
    double prev = loop.time();
    for (int i = 0; i < 1000; ++i) {
        double now = loop.time();
        EXPECT_GE(now, prev);
        prev = now;
    }
}

// ---- run_forever / stop / close ---------------------------------------------------

TEST(RunForever, StopInsideACallbackEndsAfterThatIteration) {
    EventLoop loop;
    Log log;
    EXPECT_FALSE(loop.is_running());
    loop.call_soon([&] {
        EXPECT_TRUE(loop.is_running());
        EXPECT_EQ(&asyncio::get_running_loop(), &loop);
        loop.stop();
        log.push_back("stopper");
    });
    loop.call_soon([&] { log.push_back("same iteration"); });
    loop.run_forever();
    EXPECT_FALSE(loop.is_running());
    EXPECT_EQ(log, (Log{"stopper", "same iteration"}));
    // The loop can run again.
    run_briefly(loop);
}

TEST(RunForever, StopBeforeRunRunsOneIteration) {
    // Python: stop() called before run_forever() polls once, runs the ready
    // callbacks, then returns.
    EventLoop loop;
    int runs = 0;
    loop.call_soon([&] { ++runs; });
    loop.stop();
    loop.run_forever();
    EXPECT_EQ(runs, 1);
}

TEST(RunForever, RunningTwiceRaises) {
    EventLoop loop;
    bool raised = false;
    loop.call_soon([&] {
        try {
            loop.run_forever();
        } catch (const asyncio::RuntimeError&) {
            raised = true;
        }
        loop.stop();
    });
    loop.run_forever();
    EXPECT_TRUE(raised);
}

TEST(Close, ClosedLoopRefusesWork) {
    EventLoop loop;
    EXPECT_FALSE(loop.is_closed());
    int runs = 0;
    loop.call_soon([&] { ++runs; });
    loop.close();
    EXPECT_TRUE(loop.is_closed());
    loop.close();  // idempotent
    EXPECT_EQ(runs, 0);  // pending callbacks are dropped
    EXPECT_THROW(loop.run_forever(), asyncio::RuntimeError);
    EXPECT_THROW(loop.call_soon([] {}), asyncio::RuntimeError);
    EXPECT_THROW(loop.call_later(1.0, [] {}), asyncio::RuntimeError);
    EXPECT_THROW(loop.call_at(0.0, [] {}), asyncio::RuntimeError);
    EXPECT_THROW(loop.call_soon_threadsafe([] {}), asyncio::RuntimeError);
}

int times_three(int x) { return 3 * x; }

// loop.run_in_executor is a member of the loop: this file includes only
// <asyncio/events.hpp>, and it must compile and run from there.
TEST(Executor, RunInExecutorWorksWithEventsHppAlone) {
    EventLoop loop;
    asyncio::Future<int> f = loop.run_in_executor(nullptr, times_three, 14);
    EXPECT_EQ(loop.run_until_complete(f), 42);
    loop.close();
}

asyncio::Coro<int> forty_two() { co_return 42; }

TEST(Close, RunUntilCompleteOnAClosedLoopRaises) {
    EventLoop loop;
    loop.close();
    try {
        loop.run_until_complete(forty_two());
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "Event loop is closed");
    }
}

TEST(Close, CloseWhileRunningRaises) {
    EventLoop loop;
    bool raised = false;
    loop.call_soon([&] {
        try {
            loop.close();
        } catch (const asyncio::RuntimeError&) {
            raised = true;
        }
        loop.stop();
    });
    loop.run_forever();
    EXPECT_TRUE(raised);
    EXPECT_FALSE(loop.is_closed());
}

TEST(Close, CloseHooksRunOnce) {
    EventLoop loop;
    int hooks = 0;
    loop.add_close_hook([&] { ++hooks; });
    loop.close();
    loop.close();
    EXPECT_EQ(hooks, 1);
}

TEST(RunUntilComplete, ReturnsTheResult) {
    EventLoop loop;
    EXPECT_EQ(loop.run_until_complete(forty_two()), 42);
    auto fut = loop.create_future<std::string>();
    loop.call_soon([fut]() mutable { fut.set_result("done"); });
    EXPECT_EQ(loop.run_until_complete(fut), "done");
}

TEST(RunUntilComplete, FutureOfAnotherLoopRaisesValueError) {
    EventLoop loop, other;
    auto fut = other.create_future<int>();
    EXPECT_THROW(loop.run_until_complete(fut), asyncio::ValueError);
}

TEST(RunUntilComplete, StoppedBeforeDoneRaises) {
    EventLoop loop;
    auto fut = loop.create_future<int>();
    loop.call_soon([&] { loop.stop(); });
    try {
        loop.run_until_complete(fut);
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "Event loop stopped before Future completed.");
    }
}

// ---- get_running_loop / new_event_loop --------------------------------------------

TEST(GetRunningLoop, OutsideALoopRaises) {
    try {
        asyncio::get_running_loop();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "no running event loop");
    }
}

TEST(GetRunningLoop, InsideACoroutineIsTheLoop) {
    EventLoop* seen = nullptr;
    run_test([&]() -> asyncio::Coro<> {
        seen = &asyncio::get_running_loop();
        EXPECT_TRUE(seen->is_running());
        co_return;
    });
    EXPECT_NE(seen, nullptr);
}

TEST(NewEventLoop, GivesAFreshLoop) {
    auto loop = asyncio::new_event_loop();
    ASSERT_TRUE(loop);
    EXPECT_FALSE(loop->is_running());
    EXPECT_FALSE(loop->is_closed());
    EXPECT_EQ(loop->run_until_complete(forty_two()), 42);
    loop->close();
    EXPECT_TRUE(loop->is_closed());
}

// ---- debug flag --------------------------------------------------------------------

// call_soon_threadsafe() on the loop's own thread, or before the loop runs,
// queues in one FIFO with call_soon() (Python appends both to _ready).
TEST(CallSoonThreadsafe, KeepsFifoOrderWithCallSoon) {
    EventLoop loop;
    Log log;
    loop.call_soon_threadsafe([&] { log.push_back("X"); });
    loop.call_soon([&] { log.push_back("Y"); });
    loop.call_soon([&] {
        loop.call_soon_threadsafe([&] { log.push_back("x"); });
        loop.call_soon([&] { log.push_back("y"); });
        loop.call_soon_threadsafe([&] {
            log.push_back("z");
            loop.stop();
        });
    });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"X", "Y", "x", "y", "z"}));
}

// Debug mode times a callback around its exception report, as Python's
// Handle._run: a slow callback that raises is reported twice.
TEST(Debug, ASlowCallbackThatRaisesIsReportedAsBoth) {
    EventLoop loop;
    loop.set_debug(true);
    loop.slow_callback_duration(0.001);
    Log got;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& ctx) { got.push_back(ctx.message); });
    loop.call_soon([] {
        std::this_thread::sleep_for(5ms);
        throw std::runtime_error("x");
    });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], "Exception in callback");
    EXPECT_EQ(got[1].rfind("Executing <Handle> took ", 0), 0u) << got[1];
}

TEST(Debug, SetDebugIsMirroredByGetDebug) {
    EventLoop loop;
    loop.set_debug(true);
    EXPECT_TRUE(loop.get_debug());
    loop.set_debug(false);
    EXPECT_FALSE(loop.get_debug());
    EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.1);
    loop.set_slow_callback_duration(0.5);
    EXPECT_DOUBLE_EQ(loop.slow_callback_duration(), 0.5);
}

// ---- exception handler -------------------------------------------------------------

TEST(ExceptionHandler, ThrowingCallbackIsReportedAndTheLoopGoesOn) {
    EventLoop loop;
    std::vector<asyncio::ExceptionContext> seen;
    loop.set_exception_handler([&](EventLoop& l, const asyncio::ExceptionContext& ctx) {
        EXPECT_EQ(&l, &loop);
        seen.push_back(ctx);
    });
    Log log;
    loop.call_soon([] { throw std::runtime_error("boom"); });
    loop.call_soon([&] { log.push_back("after"); });
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"after"}));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].message.rfind("Exception in callback", 0), 0u) << seen[0].message;
    ASSERT_TRUE(seen[0].exception);
    try {
        std::rethrow_exception(seen[0].exception);
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "boom");
    }
}

TEST(ExceptionHandler, CallExceptionHandlerRoutesToTheInstalledOne) {
    EventLoop loop;
    EXPECT_FALSE(loop.get_exception_handler());  // None by default
    std::string got;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& ctx) { got = ctx.message; });
    EXPECT_TRUE(loop.get_exception_handler());
    asyncio::ExceptionContext ctx;
    ctx.message = "hello";
    loop.call_exception_handler(ctx);
    EXPECT_EQ(got, "hello");
    loop.set_exception_handler(nullptr);  // back to the default
    EXPECT_FALSE(loop.get_exception_handler());
    testing::internal::CaptureStderr();
    ctx.message = "to stderr";
    loop.call_exception_handler(ctx);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("to stderr"), std::string::npos);
    EXPECT_EQ(got, "hello");
}

TEST(ExceptionHandler, DefaultHandlerWritesMessageAndException) {
    EventLoop loop;
    asyncio::ExceptionContext ctx;
    ctx.message = "Something failed";
    ctx.exception = std::make_exception_ptr(asyncio::ValueError("bad value"));
    testing::internal::CaptureStderr();
    loop.default_exception_handler(ctx);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Something failed"), std::string::npos) << err;
    EXPECT_NE(err.find("bad value"), std::string::npos) << err;
    EXPECT_NE(err.find("ValueError"), std::string::npos) << err;
}

TEST(ExceptionHandler, ThrowingHandlerFallsBackToTheDefault) {
    EventLoop loop;
    loop.set_exception_handler([](EventLoop&, const asyncio::ExceptionContext&) {
        throw std::runtime_error("handler broke");
    });
    asyncio::ExceptionContext ctx;
    ctx.message = "original";
    testing::internal::CaptureStderr();
    loop.call_exception_handler(ctx);  // must not throw
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Unhandled error in exception handler"), std::string::npos) << err;
    EXPECT_NE(err.find("original"), std::string::npos) << err;
}

// ---- call_soon_threadsafe ----------------------------------------------------------

TEST(CallSoonThreadsafe, WakesASleepingLoop) {
    // The loop's only timer is an hour away: only the eventfd can wake it.
    EventLoop loop;
    auto far = loop.call_later(3600.0, [] {});
    std::atomic<bool> started{false};
    std::thread th;
    int ran = 0;
    loop.call_soon([&] {
        th = std::thread([&] {
            while (!started.load()) std::this_thread::yield();
            loop.call_soon_threadsafe([&] {
                ++ran;
                loop.stop();
            });
        });
        started = true;
    });
    loop.run_forever();
    th.join();
    far.cancel();
    EXPECT_EQ(ran, 1);
}

TEST(CallSoonThreadsafe, ManyThreadsAllCallbacksRun) {
    EventLoop loop;
    constexpr int kThreads = 4, kEach = 500;
    int ran = 0;
    std::vector<std::thread> threads;
    loop.call_soon([&] {
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < kEach; ++i)
                    loop.call_soon_threadsafe([&] {
                        if (++ran == kThreads * kEach) loop.stop();
                    });
            });
    });
    loop.run_forever();
    for (auto& t : threads) t.join();
    EXPECT_EQ(ran, kThreads * kEach);
}

// ---- add_reader / add_writer --------------------------------------------------------

TEST(AddReader, CalledWhileReadableUntilRemoved) {
    EventLoop loop;
    Pipe p;
    Log log;
    loop.add_reader(p.r, [&] {
        log.push_back(std::string(1, read_byte(p.r)));
        if (log.size() == 2) {
            EXPECT_TRUE(loop.remove_reader(p.r));
            loop.stop();
        }
    });
    EXPECT_EQ(loop.watched_fd_count(), 1u);
    write_byte(p.w);
    write_byte(p.w);
    loop.run_forever();
    EXPECT_EQ(log, (Log{"x", "x"}));
    EXPECT_EQ(loop.watched_fd_count(), 0u);
    EXPECT_FALSE(loop.remove_reader(p.r));
}

TEST(AddReader, ReplacingAReaderKeepsOnlyTheNewOne) {
    EventLoop loop;
    Pipe p;
    Log log;
    loop.add_reader(p.r, [&] { log.push_back("old"); });
    loop.add_reader(p.r, [&] {
        read_byte(p.r);
        log.push_back("new");
        loop.remove_reader(p.r);
        loop.stop();
    });
    write_byte(p.w);
    loop.run_forever();
    EXPECT_EQ(log, (Log{"new"}));
}

TEST(AddReader, ReaderReplacedByAnEarlierCallbackOfTheIterationWaitsForTheNext) {
    // Both pipes are readable in one poll. Whichever reader runs first
    // removes itself and replaces the other: the other's queued run is
    // cancelled (Python cancels the old Handle) and its replacement only
    // runs in the next iteration.
    EventLoop loop;
    Pipe p1, p2;
    Log log;
    auto replace_other = [&](int mine, int other) {
        read_byte(mine);
        loop.remove_reader(mine);
        loop.add_reader(other, [&, other] {
            log.push_back("new");
            read_byte(other);
            loop.remove_reader(other);
        });
    };
    loop.add_reader(p1.r, [&] {
        log.push_back("first");
        replace_other(p1.r, p2.r);
    });
    loop.add_reader(p2.r, [&] {
        log.push_back("first");
        replace_other(p2.r, p1.r);
    });
    write_byte(p1.w);
    write_byte(p2.w);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"first"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"first", "new"}));
    EXPECT_EQ(loop.watched_fd_count(), 0u);
}

TEST(AddReader, ReaderRemovedByAnEarlierCallbackOfTheIterationDoesNotRun) {
    // Both pipes are readable in one poll; whichever reader runs first
    // removes the other: the other's run is cancelled (Python cancels its
    // Handle), although its event was collected.
    EventLoop loop;
    Pipe p1, p2;
    Log log;
    loop.add_reader(p1.r, [&] {
        log_and_unwatch(loop, log, "p1", p1.r);
        loop.remove_reader(p2.r);
    });
    loop.add_reader(p2.r, [&] {
        log_and_unwatch(loop, log, "p2", p2.r);
        loop.remove_reader(p1.r);
    });
    write_byte(p1.w);
    write_byte(p2.w);
    run_briefly(loop);
    ASSERT_EQ(log.size(), 1u);
    run_briefly(loop);
    EXPECT_EQ(log.size(), 1u);
    EXPECT_EQ(loop.watched_fd_count(), 0u);
}

TEST(AddReader, ReaderAddedByAnEarlierCallbackOfTheIterationRunsInTheNext) {
    EventLoop loop;
    Pipe p1, p2;
    Log log;
    loop.add_reader(p1.r, [&] {
        log_and_unwatch(loop, log, "p1", p1.r);
        loop.add_reader(p2.r, [&] { log_and_unwatch(loop, log, "p2", p2.r); });
    });
    write_byte(p1.w);
    write_byte(p2.w);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"p1"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"p1", "p2"}));
}

TEST(AddReader, OrderInAnIterationIsReadyCallbacksThenReadersThenTimers) {
    // CPython's _run_once: the callbacks ready before the poll, the I/O
    // callbacks, the expired timers; what a reader schedules runs on the
    // next iteration, after the timers due in this one.
    EventLoop loop;
    Pipe p;
    Log log;
    loop.add_reader(p.r, [&] {
        log_and_unwatch(loop, log, "reader", p.r);
        loop.call_soon([&] { log.push_back("soon from reader"); });
    });
    // Well past due: timers_surely_not_due() reads the coarse clock, which
    // lags by more than its stated resolution on some machines.
    loop.call_at(loop.time() - 1.0, [&] { log.push_back("timer"); });
    loop.call_soon([&] { log.push_back("soon"); });
    write_byte(p.w);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"soon", "reader", "timer"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"soon", "reader", "timer", "soon from reader"}));
}

TEST(AddReader, ThrowingReaderIsReportedAndTheOtherEventsReaderStillRuns) {
    EventLoop loop;
    std::vector<std::string> errors;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& ctx) {
        errors.push_back(ctx.message);
        try {
            std::rethrow_exception(ctx.exception);
        } catch (const std::runtime_error& e) {
            errors.back() += std::string(": ") + e.what();
        }
    });
    Pipe p1, p2;
    Log log;
    auto thrower = [&](int fd, const char* name) {
        return [&, fd, name] {
            log_and_unwatch(loop, log, name, fd);
            throw std::runtime_error(name);
        };
    };
    loop.add_reader(p1.r, thrower(p1.r, "p1"));
    loop.add_reader(p2.r, thrower(p2.r, "p2"));
    write_byte(p1.w);
    write_byte(p2.w);
    run_briefly(loop);
    ASSERT_EQ(log.size(), 2u);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0], "Exception in callback: " + log[0]);
    EXPECT_EQ(errors[1], "Exception in callback: " + log[1]);
    EXPECT_EQ(loop.watched_fd_count(), 0u);
}

TEST(AddReader, AThrowingCallbackReplacingItselfIsDestroyedAfterTheReport) {
    EventLoop loop;
    Pipe p;
    Log log;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { log.push_back("reported"); });
    std::string tag = "old";
    loop.add_reader(p.r, [&, tag] {
        loop.add_reader(p.r, [&] { log_and_unwatch(loop, log, "new", p.r); });
        log.push_back(tag);  // the replaced closure is still alive (ASan checks)
        throw std::runtime_error("boom");
    });
    write_byte(p.w);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"old", "reported"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"old", "reported", "new"}));
}

TEST(AddReader, ACallbackReplacingItselfStaysAliveUntilItReturns) {
    EventLoop loop;
    Pipe p;
    Log log;
    std::string tag = "old";
    loop.add_reader(p.r, [&, tag] {
        loop.add_reader(p.r, [&] {
            log.push_back("new");
            read_byte(p.r);
            loop.remove_reader(p.r);
        });
        log.push_back(tag);  // the replaced closure is still alive (ASan checks)
    });
    write_byte(p.w);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"old"}));
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"old", "new"}));
}

TEST(AddWriter, SocketpairIsWritable) {
    EventLoop loop;
    SocketPair s;
    int calls = 0;
    loop.add_writer(s.a, [&] {
        ++calls;
        EXPECT_TRUE(loop.remove_writer(s.a));
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(loop.remove_writer(s.a));
    EXPECT_EQ(loop.watched_fd_count(), 0u);
}

TEST(AddReader, ReaderAndWriterOnOneSocket) {
    EventLoop loop;
    SocketPair s;
    Log log;
    loop.add_reader(s.b, [&] {
        log.push_back(std::string("read ") + read_byte(s.b));
        loop.remove_reader(s.b);
        loop.stop();
    });
    loop.add_writer(s.a, [&] {
        log.push_back("write");
        write_byte(s.a);
        loop.remove_writer(s.a);
    });
    loop.run_forever();
    EXPECT_EQ(log, (Log{"write", "read x"}));
}

TEST(AddReader, ReusedDescriptorNumberIsWatchedAgain) {
    // remove_reader, close the fd, and a new pipe gets the same number: the
    // new registration must reach epoll (the closed fd left the epoll set).
    EventLoop loop;
    auto first = std::make_unique<Pipe>();
    int fd = first->r;
    loop.add_reader(fd, [] {});
    run_briefly(loop);
    EXPECT_TRUE(loop.remove_reader(fd));
    first->close_both();
    Pipe second;
    ASSERT_EQ(second.r, fd) << "the kernel did not reuse the number; test premise broken";
    int calls = 0;
    loop.add_reader(second.r, [&] {
        ++calls;
        read_byte(second.r);
        loop.remove_reader(second.r);
        loop.stop();
    });
    write_byte(second.w);
    auto guard = loop.call_later(5.0, [&] { loop.stop(); });  // fail instead of hanging
    loop.run_forever();
    guard.cancel();
    EXPECT_EQ(calls, 1);
}

TEST(AddReader, InvalidDescriptorRaises) {
    EventLoop loop;
    EXPECT_THROW(loop.add_reader(-1, [] {}), asyncio::ValueError);
    int closed_fd;
    {
        Pipe p;
        closed_fd = p.r;
    }
    EXPECT_THROW(loop.add_reader(closed_fd, [] {}), asyncio::OSError);  // EBADF from epoll_ctl
    EXPECT_EQ(loop.watched_fd_count(), 0u);
}

// ---- wait_readable / wait_writable ----------------------------------------------

asyncio::Coro<char> read_when_ready(int fd) {
    co_await asyncio::get_running_loop().wait_readable(fd);
    char c = 0;
    EXPECT_EQ(::read(fd, &c, 1), 1);
    co_return c;
}

asyncio::Coro<> write_later(int fd) {
    co_await asyncio::sleep(0);
    co_await asyncio::sleep(0);
    EXPECT_EQ(::write(fd, "y", 1), 1);
}

TEST(WaitReadable, ResumesWhenDataArrives) {
    run_test([]() -> asyncio::Coro<> {
        Pipe p;
        auto reader = asyncio::create_task(read_when_ready(p.r));
        auto writer = asyncio::create_task(write_later(p.w));
        co_await asyncio::sleep(0);
        EXPECT_FALSE(reader.done());
        EXPECT_EQ(co_await reader, 'y');
        co_await writer;
    });
}

TEST(WaitWritable, SocketpairIsWritableAtOnce) {
    run_test([]() -> asyncio::Coro<> {
        SocketPair s;
        co_await asyncio::get_running_loop().wait_writable(s.a);
        EXPECT_EQ(::write(s.a, "z", 1), 1);
        co_await asyncio::get_running_loop().wait_readable(s.b);
        EXPECT_EQ(read_byte(s.b), 'z');
    });
}

TEST(WaitReadable, RepeatedWaitsOnOneSocket) {
    run_test([]() -> asyncio::Coro<> {
        SocketPair s;
        auto reader = asyncio::create_task(read_when_ready(s.b));
        for (int i = 0; i < 3; ++i) {
            co_await asyncio::sleep(0);
            EXPECT_EQ(::write(s.a, "y", 1), 1);
            EXPECT_EQ(co_await reader, 'y');
            reader = asyncio::create_task(read_when_ready(s.b));
        }
        co_await asyncio::sleep(0);
        EXPECT_EQ(::write(s.a, "y", 1), 1);
        co_await reader;
    });
}

TEST(WaitReadable, CancellationInterruptsAndUnwatches) {
    run_test([]() -> asyncio::Coro<> {
        Pipe p;
        auto reader = asyncio::create_task(read_when_ready(p.r));
        co_await asyncio::sleep(0);
        EXPECT_EQ(asyncio::get_running_loop().watched_fd_count(), 1u);
        EXPECT_TRUE(reader.cancel("stop reading"));
        try {
            co_await reader;
            ADD_FAILURE() << "no CancelledError";
        } catch (const asyncio::CancelledError& e) {
            EXPECT_STREQ(e.what(), "stop reading");
        }
        EXPECT_TRUE(reader.cancelled());
        EXPECT_EQ(asyncio::get_running_loop().watched_fd_count(), 0u);
        // Data arriving later wakes nobody and the fd can be waited on again.
        EXPECT_EQ(::write(p.w, "y", 1), 1);
        co_await asyncio::sleep(0);
        EXPECT_EQ(co_await read_when_ready(p.r), 'y');
    });
}

TEST(WaitReadable, CancelledWaitThenCloseThenReusedNumberIsWatchedAgain) {
    // A cancelled wait drops the epoll interest at once, so closing the fd
    // and getting the same number back from pipe() registers it afresh.
    run_test([]() -> asyncio::Coro<> {
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        int first_r = fds[0];
        auto reader = asyncio::create_task(read_when_ready(fds[0]));
        co_await asyncio::sleep(0);
        reader.cancel();
        try {
            co_await reader;
        } catch (const asyncio::CancelledError&) {
        }
        ::close(fds[0]);
        ::close(fds[1]);
        Pipe p;
        EXPECT_EQ(p.r, first_r);  // the kernel reuses the lowest free number
        EXPECT_EQ(::write(p.w, "z", 1), 1);
        EXPECT_EQ(co_await read_when_ready(p.r), 'z');
    });
}

TEST(WaitReadable, CancelAfterWakeupStillRaises) {
    // The fd became readable and the task is scheduled, then it is cancelled
    // in the same iteration: CPython's must_cancel path.
    run_test([]() -> asyncio::Coro<> {
        SocketPair s;
        auto reader = asyncio::create_task(read_when_ready(s.b));
        co_await asyncio::sleep(0);
        EXPECT_EQ(::write(s.a, "y", 1), 1);
        auto& loop = asyncio::get_running_loop();
        // Let the loop poll the fd (waking reader) and cancel from a callback
        // that runs in that same iteration, before the reader's step.
        loop.call_soon([reader]() mutable { reader.cancel(); });
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        EXPECT_TRUE(reader.cancelled());
        EXPECT_EQ(loop.watched_fd_count(), 0u);
        EXPECT_EQ(read_byte(s.b), 'y');  // the byte was not consumed
    });
}

TEST(WaitReadable, SecondWaiterOnTheSameFdRaises) {
    run_test([]() -> asyncio::Coro<> {
        Pipe p;
        auto first = asyncio::create_task(read_when_ready(p.r));
        co_await asyncio::sleep(0);
        try {
            co_await asyncio::get_running_loop().wait_readable(p.r);
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::RuntimeError&) {
        }
        first.cancel();
        try {
            co_await first;
        } catch (const asyncio::CancelledError&) {
        }
    });
}

TEST(WaitReadable, TaskWokenByAnEventRunsBeforeThatEventsReader) {
    // One event wakes the waiting task (its step is queued) and is due for
    // the reader: the step runs first, then the reader, in one iteration.
    run_test([]() -> asyncio::Coro<> {
        SocketPair s;
        auto& loop = asyncio::get_running_loop();
        Log log;
        loop.add_reader(s.b, [&] {
            log.push_back("reader");
            loop.remove_reader(s.b);
        });
        auto waiter = [&]() -> asyncio::Coro<> {
            co_await asyncio::get_running_loop().wait_readable(s.b);
            log.push_back("task");
        };
        auto t = asyncio::create_task(waiter());
        co_await asyncio::sleep(0);  // the task waits
        EXPECT_EQ(::write(s.a, "y", 1), 1);
        co_await t;
        EXPECT_EQ(log, (Log{"task", "reader"}));
    });
}

TEST(WaitReadable, ReaderCallbackAndWaiterCoexist) {
    run_test([]() -> asyncio::Coro<> {
        SocketPair s;
        auto& loop = asyncio::get_running_loop();
        int callback_calls = 0;
        loop.add_reader(s.b, [&] {
            ++callback_calls;
            loop.remove_reader(s.b);
        });
        auto reader = asyncio::create_task(read_when_ready(s.b));
        co_await asyncio::sleep(0);
        EXPECT_EQ(::write(s.a, "y", 1), 1);
        EXPECT_EQ(co_await reader, 'y');
        EXPECT_EQ(callback_calls, 1);
    });
}
