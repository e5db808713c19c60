// timeout()/timeout_at() scopes: behaviours from CPython's test_timeouts.py, translated.
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "support/run_test.hpp"

namespace {

using Log = std::vector<std::string>;

asyncio::Coro<> sleep_long(Log* log) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        log->push_back("cancelled");
        throw;
    }
    log->push_back("slept");
}

asyncio::Coro<int> quick() {
    co_await asyncio::sleep(0);
    co_return 5;
}

TEST(Timeout, DeadlineRaisesTimeoutErrorAndMarksExpired) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout(0.001);
        bool nested = false;
        try {
            co_await cm.run(sleep_long(&log));
        } catch (const asyncio::TimeoutError& e) {
            try {
                std::rethrow_if_nested(e);
            } catch (const asyncio::CancelledError&) {
                nested = true;
            }
        }
        EXPECT_TRUE(nested);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(asyncio::current_task()->cancelling(), 0);  // uncancel() bookkeeping
    });
    EXPECT_EQ(log, Log{"cancelled"});
}

// `async with timeout(d): await q.get()` and the like: run() takes any
// awaitable, not only a Coro.
TEST(Timeout, RunTakesAnyAwaitable) {
    asyncio::testing::run_test([]() -> asyncio::Coro<> {
        asyncio::Queue<int> q;
        auto get_scope = asyncio::timeout(0.001);
        EXPECT_THROW(co_await get_scope.run(q.get()), asyncio::TimeoutError);
        EXPECT_TRUE(get_scope.expired());
        q.put_nowait(5);
        auto got = asyncio::timeout(3600.0);
        EXPECT_EQ(co_await got.run(q.get()), 5);
        auto slept = asyncio::timeout(3600.0);
        EXPECT_EQ(co_await slept.run(asyncio::sleep(0, 9)), 9);
        auto t = asyncio::create_task(asyncio::sleep(3600.0, 1));
        auto task_scope = asyncio::timeout(0.001);
        EXPECT_THROW(co_await task_scope.run(t), asyncio::TimeoutError);
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancelled());  // awaiting a task in the scope: the timeout cancels it
    });
}

TEST(Timeout, BodyInTimeGivesItsResult) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout(std::chrono::seconds(3600));
        EXPECT_EQ(co_await cm.run(quick()), 5);
        EXPECT_FALSE(cm.expired());
        auto none = asyncio::timeout(std::nullopt);
        EXPECT_FALSE(none.when().has_value());
        EXPECT_EQ(co_await none.run(quick()), 5);
    });
}

TEST(Timeout, NegativeDelayIsAlreadyExpired) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout(-11);
        EXPECT_THROW(co_await cm.run(quick()), asyncio::TimeoutError);  // at its sleep(0)
        EXPECT_TRUE(cm.expired());
    });
}

asyncio::Coro<> reschedule_then_sleep(asyncio::Timeout* cm, Log* log) {
    cm->reschedule(std::nullopt);  // drop the deadline
    co_await asyncio::sleep(0.005);
    log->push_back("survived");
    cm->reschedule(asyncio::get_running_loop().time() - 1);
    co_await sleep_long(log);
}

TEST(Timeout, RescheduleMovesTheDeadline) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout(0.001);
        EXPECT_THROW(co_await cm.run(reschedule_then_sleep(&cm, &log)), asyncio::TimeoutError);
    });
    EXPECT_EQ(log, (Log{"survived", "cancelled"}));
}

asyncio::Coro<> rearm_often(asyncio::Timeout* cm, Log* log, std::size_t* live, std::size_t* heap) {
    asyncio::EventLoop& loop = asyncio::get_running_loop();
    for (int i = 0; i < 50; ++i) {
        cm->reschedule(loop.time() + 3600.0 + i);  // cancels the armed timer, arms a new one
        co_await asyncio::sleep(0);
        // Inner wait_for scopes whose deadlines are before and after this one's.
        EXPECT_EQ(co_await asyncio::wait_for(quick(), i % 2 ? 1800.0 : 7200.0), 5);
    }
    *live = loop.live_timer_count();
    *heap = loop.timer_heap_size();
    cm->reschedule(loop.time() + 0.001);
    co_await sleep_long(log);
}

TEST(Timeout, RearmingAndInnerScopesKeepOneTimerAndTheLastDeadlineFires) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::EventLoop& loop = asyncio::get_running_loop();
        const std::size_t live0 = loop.live_timer_count();  // the test harness's own
        EXPECT_EQ(loop.timer_heap_size(), live0);
        bool other_ran = false;
        auto other = loop.call_later(3600.0, [&] { other_ran = true; });
        auto cm = asyncio::timeout(3600.0);
        std::size_t live = 0;
        std::size_t heap = 0;
        EXPECT_THROW(co_await cm.run(rearm_often(&cm, &log, &live, &heap)), asyncio::TimeoutError);
        // Every cancelled entry left the heap at once (a leaf or the top).
        EXPECT_EQ(live, live0 + 2);
        EXPECT_EQ(heap, live0 + 2);
        EXPECT_EQ(loop.live_timer_count(), live0 + 1);
        EXPECT_TRUE(other.try_cancel());  // never mixed up with the scopes' reused slots
        EXPECT_FALSE(other_ran);
    });
    EXPECT_EQ(log, Log{"cancelled"});
}

TEST(Timeout, RescheduleOutsideTheBodyRaises) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout_at(std::nullopt);
        EXPECT_THROW(cm.reschedule(1.0), asyncio::RuntimeError);  // not entered
        co_await cm.run(quick());
        EXPECT_THROW(cm.reschedule(1.0), asyncio::RuntimeError);  // finished
    });
}

TEST(Timeout, RunningAScopeTwiceRaises) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto cm = asyncio::timeout(3600.0);
        co_await cm.run(quick());
        EXPECT_THROW(co_await cm.run(quick()), asyncio::RuntimeError);
    });
}

asyncio::Coro<> outer_cancel_inside_scope(Log* log) {
    auto cm = asyncio::timeout(0.001);
    try {
        co_await cm.run(sleep_long(log));
    } catch (const asyncio::TimeoutError&) {
        log->push_back("timeout");
    }
}

TEST(Timeout, OuterCancellationPassesThrough) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(outer_cancel_inside_scope(&log));
        co_await asyncio::sleep(0);
        t.cancel();  // a real cancellation, not the deadline's
        EXPECT_THROW(co_await t, asyncio::CancelledError);
    });
    EXPECT_EQ(log, Log{"cancelled"});
}

asyncio::Coro<> expire_at_once(Log* log) {
    auto cm = asyncio::timeout(-1);  // expires on the next iteration
    try {
        co_await cm.run(sleep_long(log));
    } catch (const asyncio::TimeoutError&) {
        log->push_back("timeout");
    }
}

TEST(Timeout, CancellationInTheSameIterationAsTheDeadlineIsNotSwallowed) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(expire_at_once(&log));
        co_await asyncio::sleep(0);  // t entered its scope; the deadline runs next iteration
        t.cancel();                  // a real cancellation in that same iteration
        EXPECT_THROW(co_await t, asyncio::CancelledError);
        EXPECT_TRUE(t.cancelled());
    });
    EXPECT_EQ(log, Log{"cancelled"});
}

asyncio::Coro<> nested_scopes(Log* log) {
    auto outer = asyncio::timeout(3600.0);
    auto inner = asyncio::timeout(0.001);
    try {
        co_await outer.run(inner.run(sleep_long(log)));
    } catch (const asyncio::TimeoutError&) {
        log->push_back(std::string("inner expired ") + (inner.expired() ? "yes" : "no") + ", outer " +
                       (outer.expired() ? "yes" : "no"));
    }
}

TEST(Timeout, NestedScopesOnlyTheExpiredOneRaises) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> { co_await nested_scopes(&log); });
    EXPECT_EQ(log, (Log{"cancelled", "inner expired yes, outer no"}));
}

asyncio::Coro<> child_sleeps(Log* log) { co_await sleep_long(log); }

asyncio::Coro<> group_body(asyncio::TaskGroup* tg, Log* log) {
    tg->create_task(child_sleeps(log));
    tg->create_task(child_sleeps(log));
    co_await sleep_long(log);
}

asyncio::Coro<> group_in_scope(asyncio::TaskGroup* tg, Log* log) { co_await tg->run(group_body(tg, log)); }

TEST(Timeout, TaskGroupInsideATimeoutBecomesTimeoutError) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        auto cm = asyncio::timeout(0.001);
        EXPECT_THROW(co_await cm.run(group_in_scope(&tg, &log)), asyncio::TimeoutError);
        EXPECT_EQ(asyncio::current_task()->cancelling(), 0);
    });
    EXPECT_EQ(log, (Log{"cancelled", "cancelled", "cancelled"}));
}

}  // namespace
