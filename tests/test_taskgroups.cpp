// TaskGroup: behaviours from CPython's test_taskgroups.py (3.13), translated.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run_test.hpp"

namespace {

using Log = std::vector<std::string>;

asyncio::Coro<int> value_after(int v, int yields) {
    for (int i = 0; i < yields; ++i) co_await asyncio::sleep(0);
    co_return v;
}

asyncio::Coro<> fail_after(int yields, std::string msg) {
    for (int i = 0; i < yields; ++i) co_await asyncio::sleep(0);
    throw std::runtime_error(msg);
}

asyncio::Coro<> sleep_long(Log* log, std::string name) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        log->push_back(name + " cancelled");
        throw;
    }
}

asyncio::Coro<int> sum_body(asyncio::TaskGroup* tg) {
    auto a = tg->create_task(value_after(1, 2));
    auto b = tg->create_task(value_after(2, 1), "second");
    EXPECT_EQ(b.get_name(), "second");
    co_return 10;
}

TEST(TaskGroup, WaitsForEveryChild) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        int r = co_await tg.run(sum_body(&tg));
        EXPECT_EQ(r, 10);
        EXPECT_TRUE(asyncio::all_tasks().size() == 1u);  // only this one is left
    });
}

asyncio::Coro<> failing_body(asyncio::TaskGroup* tg, Log* log) {
    tg->create_task(sleep_long(log, "sibling"));
    tg->create_task(fail_after(1, "child failed"));
    co_await sleep_long(log, "body");
}

asyncio::Coro<int> spawn_awaitables(asyncio::TaskGroup& tg, asyncio::Queue<int>& q) {
    auto slept = tg.create_task(asyncio::sleep(0, 4));
    auto got = tg.create_task(q.get(), "getter");
    EXPECT_EQ(got.get_name(), "getter");
    q.put_nowait(6);
    co_return co_await slept + co_await got;
}

// tg.create_task(asyncio.sleep(1)) and the like: any awaitable becomes a child.
TEST(TaskGroup, CreateTaskTakesAnyAwaitable) {
    asyncio::testing::run_test([]() -> asyncio::Coro<> {
        asyncio::Queue<int> q;
        asyncio::TaskGroup tg;
        EXPECT_EQ(co_await tg.run(spawn_awaitables(tg, q)), 10);
        auto& loop = asyncio::get_running_loop();
        EXPECT_EQ(co_await loop.create_task(asyncio::sleep(0, 2)), 2);
    });
}

TEST(TaskGroup, ChildFailureCancelsSiblingsAndBody) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        bool caught = false;
        try {
            co_await tg.run(failing_body(&tg, &log));
        } catch (const asyncio::ExceptionGroup& g) {
            caught = true;
            EXPECT_EQ(g.exceptions().size(), 1u);
            EXPECT_TRUE(g.contains<std::runtime_error>());
            EXPECT_EQ(g.message(), "unhandled errors in a TaskGroup");
        }
        EXPECT_TRUE(caught);
        EXPECT_EQ(asyncio::current_task()->cancelling(), 0);  // its own cancel was taken back
        co_await asyncio::sleep(0);                            // and is not pending
    });
    std::sort(log.begin(), log.end());
    EXPECT_EQ(log, (Log{"body cancelled", "sibling cancelled"}));
}

asyncio::Coro<> many_failures_body(asyncio::TaskGroup* tg) {
    tg->create_task(fail_after(1, "one"));
    tg->create_task(fail_after(1, "two"));
    bool cancelled = false;
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        cancelled = true;
    }
    if (cancelled) throw std::logic_error("body");
}

std::vector<std::string> messages(const asyncio::ExceptionGroup& g) {
    std::vector<std::string> out;
    for (const auto& e : g.exceptions()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            out.push_back(x.what());
        }
    }
    return out;
}

TEST(TaskGroup, CollectsEveryChildErrorThenTheBodys) {
    std::vector<std::string> got;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        try {
            co_await tg.run(many_failures_body(&tg));
        } catch (const asyncio::ExceptionGroup& g) {
            got = messages(g);
            EXPECT_EQ(g.matching<std::logic_error>().size(), 1u);  // the `except* E` spelling
            EXPECT_EQ(g.matching<std::runtime_error>().size(), 2u);
        }
    });
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "body"}));
}

asyncio::Coro<> raising_body(asyncio::TaskGroup* tg) {
    tg->create_task(value_after(1, 1));
    co_await asyncio::sleep(0);
    throw std::runtime_error("body only");
}

TEST(TaskGroup, BodyErrorAloneIsRaisedInAGroup) {
    std::vector<std::string> got;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        try {
            co_await tg.run(raising_body(&tg));
        } catch (const asyncio::ExceptionGroup& g) {
            got = messages(g);
        }
    });
    EXPECT_EQ(got, std::vector<std::string>{"body only"});
}

asyncio::Coro<> sleepy_body(asyncio::TaskGroup* tg, Log* log) {
    tg->create_task(sleep_long(log, "child"));
    co_await sleep_long(log, "body");
}

asyncio::Coro<> run_group(Log* log) {
    asyncio::TaskGroup tg;
    co_await tg.run(sleepy_body(&tg, log));
    log->push_back("not reached");
}

TEST(TaskGroup, ParentCancellationCancelsChildrenAndPropagates) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(run_group(&log));
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        t.cancel();
        EXPECT_THROW(co_await t, asyncio::CancelledError);
        EXPECT_TRUE(t.cancelled());
    });
    std::sort(log.begin(), log.end());
    EXPECT_EQ(log, (Log{"body cancelled", "child cancelled"}));
}

asyncio::Coro<int> swallows(Log* log) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        log->push_back("swallowed");
    }
    co_return 3;
}

asyncio::Coro<> swallow_body(asyncio::TaskGroup* tg, Log* log, asyncio::Task<int>* out) {
    *out = tg->create_task(swallows(log));
    tg->create_task(fail_after(1, "x"));
    co_return;
}

TEST(TaskGroup, ChildThatSwallowsCancelledErrorFinishesNormally) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        asyncio::Task<int> swallower;
        bool caught = false;
        try {
            co_await tg.run(swallow_body(&tg, &log, &swallower));
        } catch (const asyncio::ExceptionGroup& g) {
            caught = g.exceptions().size() == 1;
        }
        EXPECT_TRUE(caught);
        EXPECT_EQ(swallower.result(), 3);
    });
    EXPECT_EQ(log, Log{"swallowed"});
}

asyncio::Coro<> empty_body() { co_return; }

TEST(TaskGroup, CreateTaskOutsideTheGroupRaisesRuntimeError) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        asyncio::TaskGroup tg;
        EXPECT_THROW(tg.create_task(value_after(1, 0)), asyncio::RuntimeError);  // not entered
        co_await tg.run(empty_body());
        EXPECT_THROW(tg.create_task(value_after(1, 0)), asyncio::RuntimeError);  // finished
        EXPECT_THROW(co_await tg.run(empty_body()), asyncio::RuntimeError);     // entered twice
    });
}

asyncio::Coro<> fail_when_cancelled() {
    bool cancelled = false;
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        cancelled = true;
    }
    if (cancelled) throw std::runtime_error("failed while cancelled");
}

asyncio::Coro<> inner_group_body(asyncio::TaskGroup* tg) {
    tg->create_task(fail_when_cancelled());
    co_await asyncio::sleep(3600.0);
}

asyncio::Coro<> nested_groups(Log* log) {
    asyncio::TaskGroup inner;
    try {
        co_await inner.run(inner_group_body(&inner));
    } catch (const asyncio::ExceptionGroup&) {
        log->push_back("group error");
    }
    // The outside cancellation must still be pending here (gh-116720).
    log->push_back("cancelling=" + std::to_string(asyncio::current_task()->cancelling()));
    co_await asyncio::sleep(0);
    log->push_back("not reached");
}

TEST(TaskGroup, GroupErrorKeepsTheParentsCancellation) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(nested_groups(&log));
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        t.cancel();
        EXPECT_THROW(co_await t, asyncio::CancelledError);
    });
    EXPECT_EQ(log, (Log{"group error", "cancelling=1"}));
}

}  // namespace
