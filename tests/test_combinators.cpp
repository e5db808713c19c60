// gather, as_completed, wait, wait_for, shield: behaviours from CPython's
// test_tasks.py and test_waitfor.py, translated.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <thread>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "support/run_test.hpp"

namespace {

using Log = std::vector<std::string>;

asyncio::Coro<int> value_after(int v, int yields) {
    for (int i = 0; i < yields; ++i) co_await asyncio::sleep(0);
    co_return v;
}

asyncio::Coro<> log_after(Log* log, std::string what, int yields) {
    for (int i = 0; i < yields; ++i) co_await asyncio::sleep(0);
    log->push_back(what);
}

asyncio::Coro<int> fail_after(int yields, std::string msg) {
    for (int i = 0; i < yields; ++i) co_await asyncio::sleep(0);
    throw std::runtime_error(msg);
}

asyncio::Coro<int> sleep_forever(Log* log, std::string name) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        log->push_back(name + " cancelled");
        throw;
    }
    co_return 0;
}

asyncio::Coro<int> swallow_cancel(Log* log, int result) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        log->push_back("swallowed");
    }
    co_return result;
}

// ---- gather ------------------------------------------------------------------------

TEST(Gather, ResultsInArgumentOrderForAMixOfAwaitables) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto fut = asyncio::get_running_loop().create_future<std::string>();
        auto task = asyncio::create_task(value_after(2, 1));
        Log log;
        asyncio::get_running_loop().call_soon([fut]() mutable { fut.set_result("three"); });
        auto [a, b, c, d] = co_await asyncio::gather(value_after(1, 3), task, fut, log_after(&log, "x", 0));
        EXPECT_EQ(a, 1);
        EXPECT_EQ(b, 2);
        EXPECT_EQ(c, "three");
        static_assert(std::is_same_v<decltype(d), std::monostate>);
        EXPECT_EQ(log, Log{"x"});
    });
}

asyncio::Coro<int> log_start(Log* log, int v) {
    log->push_back("start " + std::to_string(v) + " " + asyncio::current_task()->get_name());
    co_return v;
}

// Python wraps the coroutines in tasks in argument order, so they start in
// that order and are numbered in it. (g++ evaluates function arguments right
// to left: the children must not be created as a call's arguments.)
TEST(Gather, CoroutinesStartInArgumentOrder) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        co_await asyncio::gather(log_start(&log, 1), log_start(&log, 2), log_start(&log, 3));
        co_await asyncio::gather(asyncio::return_exceptions, log_start(&log, 4), log_start(&log, 5));
    });
    ASSERT_EQ(log.size(), 5u);
    for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].substr(0, 8), "start " + std::to_string(i + 1) + " ");
    // Task-N names ascend with the arguments.
    auto number = [](const std::string& line) { return std::stoi(line.substr(line.rfind('-') + 1)); };
    EXPECT_EQ(number(log[1]), number(log[0]) + 1);
    EXPECT_EQ(number(log[2]), number(log[1]) + 1);
    EXPECT_EQ(number(log[4]), number(log[3]) + 1);
}

TEST(Gather, EmptyGatherCompletesAtOnce) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto r = co_await asyncio::gather();
        static_assert(std::tuple_size_v<decltype(r)> == 0);
        auto v = co_await asyncio::gather(std::vector<asyncio::Task<int>>{});
        EXPECT_TRUE(v.empty());
    });
}

TEST(Gather, VectorGivesAVectorInOrder) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        for (int i = 0; i < 5; ++i) tasks.push_back(asyncio::create_task(value_after(i, 5 - i)));
        auto r = co_await asyncio::gather(tasks);
        EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4}));
        std::vector<asyncio::Coro<int>> coros;
        coros.push_back(value_after(7, 2));
        coros.push_back(value_after(8, 0));
        auto r2 = co_await asyncio::gather(std::move(coros));
        EXPECT_EQ(r2, (std::vector<int>{7, 8}));
    });
}

TEST(Gather, FirstExceptionPropagatesAndOthersKeepRunning) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto slow = asyncio::create_task(log_after(&log, "slow done", 6));
        bool raised = false;
        try {
            co_await asyncio::gather(fail_after(1, "boom"), slow);
        } catch (const std::runtime_error& e) {
            raised = std::string(e.what()) == "boom";
        }
        EXPECT_TRUE(raised);
        EXPECT_FALSE(slow.done());  // not cancelled: Python's rule
        co_await slow;
        EXPECT_FALSE(slow.cancelled());
    });
    EXPECT_EQ(log, Log{"slow done"});
}

TEST(Gather, ReturnExceptionsHoldsValuesAndErrors) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        auto victim = asyncio::create_task(sleep_forever(&log, "victim"));
        asyncio::get_running_loop().call_soon([victim]() mutable { victim.cancel(); });
        auto [a, b, c] = co_await asyncio::gather(asyncio::return_exceptions, value_after(1, 0),
                                                  fail_after(0, "bad"), victim);
        EXPECT_EQ(a.index(), 0u);
        if (a.index() == 0) {
            EXPECT_EQ(std::get<0>(a), 1);
        }
        EXPECT_EQ(b.index(), 1u);
        if (b.index() == 1) {
            EXPECT_THROW(std::rethrow_exception(std::get<1>(b)), std::runtime_error);
        }
        EXPECT_EQ(c.index(), 1u);
        if (c.index() == 1) {
            EXPECT_THROW(std::rethrow_exception(std::get<1>(c)), asyncio::CancelledError);
        }
    });
}

asyncio::Coro<> await_gather_of_two(Log* log) {
    co_await asyncio::gather(sleep_forever(log, "a"), sleep_forever(log, "b"));
    log->push_back("not reached");
}

TEST(Gather, CancellingTheGatherCancelsEveryChild) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(await_gather_of_two(&log));
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancel());
        EXPECT_THROW(co_await t, asyncio::CancelledError);
        EXPECT_TRUE(t.cancelled());
        co_await asyncio::sleep(0);
    });
    EXPECT_EQ(log, (Log{"a cancelled", "b cancelled"}));
}

TEST(Gather, ChildCancellationMakesTheGatherRaise) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        auto victim = asyncio::create_task(sleep_forever(&log, "victim"));
        auto other = asyncio::create_task(value_after(5, 1));
        asyncio::get_running_loop().call_soon([victim]() mutable { victim.cancel("stop"); });
        bool raised = false;
        try {
            co_await asyncio::gather(victim, other);
        } catch (const asyncio::CancelledError& e) {
            raised = std::string(e.what()) == "stop";
        }
        EXPECT_TRUE(raised);
        EXPECT_EQ(co_await other, 5);
    });
}

asyncio::Coro<> gather_of_gathers(Log* log) {
    co_await asyncio::gather(asyncio::gather(sleep_forever(log, "a"), sleep_forever(log, "b")),
                             asyncio::gather(sleep_forever(log, "c")));
}

TEST(Gather, CancellingAGatherOfGathersReachesTheLeaves) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(gather_of_gathers(&log));
        for (int i = 0; i < 4; ++i) co_await asyncio::sleep(0);
        t.cancel();
        EXPECT_THROW(co_await t, asyncio::CancelledError);
        for (int i = 0; i < 3; ++i) co_await asyncio::sleep(0);
    });
    std::sort(log.begin(), log.end());
    EXPECT_EQ(log, (Log{"a cancelled", "b cancelled", "c cancelled"}));
}

asyncio::Coro<> gather_swallowers(Log* log, bool return_exc) {
    if (return_exc)
        co_await asyncio::gather(asyncio::return_exceptions, swallow_cancel(log, 1), swallow_cancel(log, 2));
    else
        co_await asyncio::gather(swallow_cancel(log, 1), swallow_cancel(log, 2));
}

TEST(Gather, CancelledGatherRaisesEvenIfChildrenSwallowIt) {
    for (bool return_exc : {false, true}) {
        Log log;
        asyncio::testing::run_test([&]() -> asyncio::Coro<> {
            auto t = asyncio::create_task(gather_swallowers(&log, return_exc));
            co_await asyncio::sleep(0);
            co_await asyncio::sleep(0);
            t.cancel();
            EXPECT_THROW(co_await t, asyncio::CancelledError);
        });
        EXPECT_EQ(log, (Log{"swallowed", "swallowed"}));
    }
}

// ---- as_completed -------------------------------------------------------------------

// ---- how many iterations a combinator's awaiter takes to wake ----------------------

asyncio::Coro<> count_iterations(int* n) {
    for (;;) {
        ++*n;
        co_await asyncio::sleep(0);
    }
}
asyncio::Coro<> direct_awaiter(Log* log, const int* it, asyncio::Task<int> c) {
    co_await c;
    log->push_back("direct " + std::to_string(*it));
}
asyncio::Coro<> gather_awaiter(Log* log, const int* it, asyncio::Task<int> c) {
    co_await asyncio::gather(c);
    log->push_back("gather " + std::to_string(*it));
}
asyncio::Coro<> wait_awaiter(Log* log, const int* it, asyncio::Task<int> c) {
    std::vector<asyncio::Task<int>> v{c};
    co_await asyncio::wait(v);
    log->push_back("wait " + std::to_string(*it));
}
asyncio::Coro<> as_completed_awaiter(Log* log, const int* it, asyncio::Task<int> c) {
    std::vector<asyncio::Task<int>> v{c};
    for (auto e : asyncio::as_completed(v)) co_await std::move(e);
    log->push_back("as_completed " + std::to_string(*it));
}

// CPython wakes the awaiter of gather(), wait() and as_completed() through
// an intermediate future: the child's done callback (one iteration after the
// child finished) completes it, and its done callback wakes the task one
// iteration later. A task awaiting the child directly wakes one iteration
// after the child, so it runs first even when it started waiting later.
// (This program's twin prints the same lines under Python 3.11 and 3.12.)
TEST(Combinators, TheirAwaiterWakesTwoIterationsAfterTheChildLikePython) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        int it = 0;
        auto counter = asyncio::create_task(count_iterations(&it));
        for (int k = 0; k < 3; ++k) {
            auto child = asyncio::create_task(value_after(1, 2));
            auto a = k == 0   ? asyncio::create_task(gather_awaiter(&log, &it, child))
                     : k == 1 ? asyncio::create_task(wait_awaiter(&log, &it, child))
                              : asyncio::create_task(as_completed_awaiter(&log, &it, child));
            auto d = asyncio::create_task(direct_awaiter(&log, &it, child));
            co_await child;
            log.push_back("child " + std::to_string(it));
            co_await a;
            co_await d;
        }
        counter.cancel();
    });
    EXPECT_EQ(log, (Log{"child 4", "direct 4", "gather 5", "child 10", "direct 10", "wait 11", "child 16",
                        "direct 16", "as_completed 17"}));
}

TEST(AsCompleted, GivesResultsInCompletionOrder) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(3, 3)));
        tasks.push_back(asyncio::create_task(value_after(1, 1)));
        tasks.push_back(asyncio::create_task(value_after(2, 2)));
        std::vector<int> got;
        for (auto&& next : asyncio::as_completed(tasks)) got.push_back(co_await std::move(next));
        EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    });
}

TEST(AsCompleted, ElementRaisesTheChildException) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Coro<int>> coros;
        coros.push_back(value_after(1, 2));
        coros.push_back(fail_after(0, "first"));
        auto ac = asyncio::as_completed(std::move(coros));
        auto it = ac.begin();
        EXPECT_THROW(co_await *it, std::runtime_error);
        ++it;
        EXPECT_EQ(co_await *it, 1);
    });
}

TEST(AsCompleted, TimeoutRaisesForEachUnfinishedChild) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 0)));
        tasks.push_back(asyncio::create_task(sleep_forever(&log, "slow")));
        int results = 0, timeouts = 0;
        for (auto&& next : asyncio::as_completed(tasks, 0.01)) {
            try {
                results += co_await std::move(next);
            } catch (const asyncio::TimeoutError&) {
                ++timeouts;
            }
        }
        EXPECT_EQ(results, 1);
        EXPECT_EQ(timeouts, 1);
        EXPECT_FALSE(tasks[1].done());  // as_completed cancels nothing
        tasks[1].cancel();
        co_await asyncio::sleep(0);
    });
}

TEST(AsCompleted, TaskFormYieldsTheOriginalTasks) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(2, 2)));
        tasks.push_back(asyncio::create_task(value_after(1, 1)));
        std::vector<asyncio::Task<int>> order;
        for (auto&& next : asyncio::as_completed(tasks)) {
            asyncio::Task<int> t = co_await next.task();
            order.push_back(t);
        }
        EXPECT_EQ(order.size(), 2u);
        if (order.size() == 2) {
            EXPECT_TRUE(order[0] == tasks[1]);
            EXPECT_TRUE(order[1] == tasks[0]);
        }
    });
}

TEST(AsCompleted, AwaitingAnElementTwiceRaisesRuntimeError) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 0)));
        tasks.push_back(asyncio::create_task(value_after(2, 0)));
        auto ac = asyncio::as_completed(tasks);
        auto elem = *ac.begin();
        EXPECT_EQ(co_await elem, 1);
        EXPECT_THROW(co_await elem, asyncio::RuntimeError);
        co_await asyncio::gather(tasks);
    });
}

asyncio::Coro<int> await_element(asyncio::AsCompletedElement<asyncio::Task<int>> e) {
    co_return co_await std::move(e);
}

TEST(AsCompleted, CancelledElementLosesNoResult) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 3)));
        tasks.push_back(asyncio::create_task(value_after(2, 6)));
        auto ac = asyncio::as_completed(tasks);
        auto it = ac.begin();
        auto waiter = asyncio::create_task(await_element(*it));
        co_await asyncio::sleep(0);
        waiter.cancel();
        EXPECT_THROW(co_await waiter, asyncio::CancelledError);
        ++it;  // the first finished child goes to the next element awaited
        EXPECT_EQ(co_await *it, 1);
        co_await tasks[1];
    });
}

TEST(AsCompleted, ManyElementsInAnyOrderWithDoneAndLaterChildren) {
    // More than 64 elements (the "awaited" marks are bits in words), some
    // children done before the call, the others finishing later and several
    // at once; elements awaited out of order still give completion order.
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        std::vector<asyncio::Future<int>> futs;
        for (int i = 0; i < 130; ++i) futs.push_back(loop.create_future<int>());
        futs[7].set_result(7);
        futs[100].set_result(100);
        auto ac = asyncio::as_completed(futs);
        std::vector<asyncio::AsCompletedElement<asyncio::Future<int>>> elems(ac.begin(), ac.end());
        std::vector<int> got;
        got.push_back(co_await elems[129]);
        got.push_back(co_await elems[64]);
        for (int i = 129; i >= 0; --i)
            if (i != 7 && i != 100) futs[i].set_result(i);
        for (std::size_t k = 0; k < elems.size(); ++k)
            if (k != 129 && k != 64) got.push_back(co_await elems[k]);
        std::vector<int> want{7, 100};
        for (int i = 129; i >= 0; --i)
            if (i != 7 && i != 100) want.push_back(i);
        EXPECT_EQ(got, want);
        EXPECT_THROW(co_await elems[64], asyncio::RuntimeError);
        EXPECT_THROW(co_await elems[63], asyncio::RuntimeError);
        EXPECT_THROW(co_await elems[129], asyncio::RuntimeError);
    });
}

TEST(AsCompleted, NoChildrenGivesNoElements) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto ac = asyncio::as_completed(std::vector<asyncio::Task<int>>{}, 1.0);
        EXPECT_EQ(ac.size(), 0u);
        EXPECT_TRUE(ac.begin() == ac.end());
        co_return;
    });
}

TEST(AsCompleted, EmptyHandleRaisesAndLeavesTheOthersUntracked) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 1)));
        tasks.push_back(asyncio::Task<int>());
        EXPECT_THROW(asyncio::as_completed(tasks), asyncio::InvalidStateError);
        EXPECT_EQ(co_await tasks[0], 1);  // its done-callback list holds nothing freed
    });
}

TEST(AsCompleted, DroppedBeforeTheChildrenFinishLeavesThemRunning) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(3, 3)));
        tasks.push_back(asyncio::create_task(value_after(1, 1)));
        tasks.push_back(asyncio::create_task(value_after(2, 2)));
        {
            auto ac = asyncio::as_completed(tasks, 3600.0);
            EXPECT_EQ(co_await *ac.begin(), 1);
        }
        EXPECT_EQ(co_await tasks[0], 3);
        EXPECT_EQ(co_await tasks[2], 2);
    });
}

// ---- wait ----------------------------------------------------------------------------

TEST(Wait, FirstCompletedReturnsTheSameTasks) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(sleep_forever(&log, "slow")));
        tasks.push_back(asyncio::create_task(value_after(1, 1)));
        auto [done, pending] = co_await asyncio::wait(tasks, asyncio::FIRST_COMPLETED);
        EXPECT_EQ(done.size(), 1u);
        EXPECT_EQ(pending.size(), 1u);
        if (done.size() == 1 && pending.size() == 1) {
            EXPECT_TRUE(done[0] == tasks[1]);
            EXPECT_TRUE(pending[0] == tasks[0]);
        }
        EXPECT_FALSE(tasks[0].done());  // wait never cancels
        tasks[0].cancel();
        co_await asyncio::sleep(0);
    });
}

TEST(Wait, FirstExceptionStopsAtTheFailure) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 0)));
        tasks.push_back(asyncio::create_task(fail_after(2, "x")));
        tasks.push_back(asyncio::create_task(sleep_forever(&log, "slow")));
        auto [done, pending] = co_await asyncio::wait(tasks, asyncio::FIRST_EXCEPTION);
        EXPECT_EQ(done.size(), 2u);
        EXPECT_EQ(pending.size(), 1u);
        tasks[2].cancel();
        co_await asyncio::sleep(0);
    });
}

TEST(Wait, AllCompletedWaitsForEveryone) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(fail_after(0, "x")));
        tasks.push_back(asyncio::create_task(value_after(2, 3)));
        auto [done, pending] = co_await asyncio::wait(tasks);
        EXPECT_EQ(done.size(), 2u);
        EXPECT_TRUE(pending.empty());
        EXPECT_THROW(tasks[0].result(), std::runtime_error);
    });
}

TEST(Wait, TimeoutReturnsWhatIsDoneSoFar) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 0)));
        tasks.push_back(asyncio::create_task(sleep_forever(&log, "slow")));
        auto [done, pending] = co_await asyncio::wait(tasks, asyncio::ALL_COMPLETED, 0.01);
        EXPECT_EQ(done.size(), 1u);
        EXPECT_EQ(pending.size(), 1u);
        auto r2 = co_await asyncio::wait(tasks, asyncio::ALL_COMPLETED, -1.0);  // already expired
        EXPECT_EQ(r2.pending.size(), 1u);
        tasks[1].cancel();
        co_await asyncio::sleep(0);
        EXPECT_TRUE(log == Log{"slow cancelled"});
    });
}

TEST(Wait, BadInputRaisesValueError) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        EXPECT_THROW((void)asyncio::wait(std::vector<asyncio::Task<int>>{}), asyncio::ValueError);
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 0)));
        EXPECT_THROW((void)asyncio::wait(tasks, static_cast<asyncio::ReturnWhen>(42)), asyncio::ValueError);
        co_await tasks[0];
    });
}

asyncio::Coro<> wait_on(std::vector<asyncio::Task<int>> tasks) {
    co_await asyncio::wait(std::move(tasks));
}

TEST(Wait, CancellingTheWaiterLeavesTheChildrenRunning) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.push_back(asyncio::create_task(value_after(1, 3)));
        auto w = asyncio::create_task(wait_on(tasks));
        co_await asyncio::sleep(0);
        w.cancel();
        EXPECT_THROW(co_await w, asyncio::CancelledError);
        EXPECT_FALSE(tasks[0].cancelled());
        EXPECT_EQ(co_await tasks[0], 1);
    });
}

// ---- wait_for ------------------------------------------------------------------------

TEST(WaitFor, GivesTheResultWhenInTime) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        EXPECT_EQ(co_await asyncio::wait_for(value_after(4, 2), 10.0), 4);
        auto t = asyncio::create_task(value_after(5, 1));
        EXPECT_EQ(co_await asyncio::wait_for(t, std::chrono::seconds(10)), 5);
        EXPECT_EQ(co_await asyncio::wait_for(value_after(6, 1), std::nullopt), 6);
    });
}

TEST(WaitFor, DeadlineCountsFromTheAwaitNotTheCall) {
    // As Python, where wait_for() is a coroutine function: calling it needs
    // no loop, and its timeout() scope reads the clock when it runs.
    auto c = asyncio::wait_for(value_after(8, 1), 10.0);
    EXPECT_EQ(asyncio::run(std::move(c)), 8);
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto late = asyncio::wait_for(value_after(9, 1), 0.05);
        co_await asyncio::sleep(0.06);  // longer than the timeout, before the await
        EXPECT_EQ(co_await std::move(late), 9);
    });
}

asyncio::Coro<int> never_started(bool* started) {
    *started = true;
    co_return 1;
}

TEST(WaitFor, CoroTimesOutInlineAndLeavesNoTimer) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        const std::size_t timers = asyncio::get_running_loop().live_timer_count();  // the watchdog's
        Log log;
        EXPECT_THROW(co_await asyncio::wait_for(sleep_forever(&log, "body"), 0.001), asyncio::TimeoutError);
        EXPECT_EQ(log, Log{"body cancelled"});
        EXPECT_EQ(asyncio::current_task()->cancelling(), 0);
        EXPECT_EQ(co_await asyncio::wait_for(value_after(1, 1), 10.0), 1);
        EXPECT_EQ(asyncio::get_running_loop().live_timer_count(), timers);  // disarmed on leaving
    });
}

asyncio::Coro<int> wait_for_scoped_body(asyncio::Timeout* cm) {
    co_return co_await cm->run(asyncio::wait_for(value_after(6, 1), 10.0));
}

TEST(WaitFor, ResultIsAcceptedWhereACoroIs) {
    // wait_for() gives a lazy awaitable that converts to a Coro (one frame):
    // each entry point that takes a Coro takes it, with the same outcome.
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        const std::size_t timers = loop.live_timer_count();
        asyncio::Coro<int> c = asyncio::wait_for(value_after(1, 1), 10.0);
        EXPECT_EQ(co_await std::move(c), 1);
        auto t1 = asyncio::create_task(asyncio::wait_for(value_after(2, 1), 10.0));
        auto t2 = loop.create_task(asyncio::wait_for(value_after(3, 1), 10.0), "t2");
        Log log;
        auto t3 = loop.create_task(asyncio::wait_for(sleep_forever(&log, "t3"), 0.001));
        auto [a, b] = co_await asyncio::gather(asyncio::wait_for(value_after(4, 2), 10.0),
                                               asyncio::wait_for(t1, 10.0));
        EXPECT_EQ(a, 4);
        EXPECT_EQ(b, 2);
        EXPECT_EQ(co_await t2, 3);
        EXPECT_THROW(co_await t3, asyncio::TimeoutError);
        EXPECT_EQ(log, Log{"t3 cancelled"});
        bool started = false;
        asyncio::Coro<int> never = asyncio::wait_for(never_started(&started), 0);
        EXPECT_THROW(co_await std::move(never), asyncio::TimeoutError);
        EXPECT_FALSE(started);
        auto cm = asyncio::timeout(10.0);
        EXPECT_EQ(co_await wait_for_scoped_body(&cm), 6);
        asyncio::TaskGroup tg;
        int in_group = 0;
        co_await tg.run([&]() -> asyncio::Coro<> {
            auto t = tg.create_task(asyncio::wait_for(value_after(7, 1), 10.0));
            in_group = co_await t;
        }());
        EXPECT_EQ(in_group, 7);
        asyncio::TaskGroup tg2;
        EXPECT_EQ(co_await tg2.run(asyncio::wait_for(value_after(8, 1), 10.0)), 8);
        EXPECT_EQ(loop.live_timer_count(), timers);
    });
    EXPECT_EQ(asyncio::run(asyncio::wait_for(value_after(5, 1), 10.0)), 5);
    asyncio::EventLoop loop;
    EXPECT_EQ(loop.run_until_complete(asyncio::wait_for(value_after(9, 1), 10.0)), 9);
    loop.close();
}

asyncio::Coro<int> await_itself(asyncio::Task<int>* self) {
    co_await asyncio::sleep(0);
    co_return co_await asyncio::wait_for(*self, 10.0);
}

TEST(WaitFor, ErrorWhenSuspendingLeavesTheScope) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        const std::size_t timers = asyncio::get_running_loop().live_timer_count();
        asyncio::Task<int> self;
        self = asyncio::create_task(await_itself(&self));
        EXPECT_THROW(co_await self, asyncio::RuntimeError);  // "Task cannot await on itself"
        EXPECT_EQ(asyncio::get_running_loop().live_timer_count(), timers);
        self = asyncio::Task<int>();
    });
}

asyncio::Coro<int> slow_to_cancel(Log* log) {
    std::exception_ptr cancelled;
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
        cancelled = std::current_exception();
    }
    log->push_back("cancelling");
    co_await asyncio::sleep(0);
    co_await asyncio::sleep(0);
    log->push_back("cancelled");
    if (cancelled) std::rethrow_exception(cancelled);
    co_return 0;
}

TEST(WaitFor, TimeoutWaitsUntilTheInnerTaskHasReallyFinished) {
    Log log;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto inner = asyncio::create_task(slow_to_cancel(&log));
        bool nested_cancel = false;
        try {
            co_await asyncio::wait_for(inner, 0.001);
        } catch (const asyncio::TimeoutError& e) {
            log.push_back("timeout");
            try {
                std::rethrow_if_nested(e);
            } catch (const asyncio::CancelledError&) {
                nested_cancel = true;
            }
        }
        EXPECT_TRUE(inner.cancelled());
        EXPECT_TRUE(nested_cancel);
        EXPECT_EQ(asyncio::current_task()->cancelling(), 0);
    });
    EXPECT_EQ(log, (Log{"cancelling", "cancelled", "timeout"}));
}

TEST(WaitFor, ResultWinsWhenTheInnerWorkSwallowsTheCancellation) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        EXPECT_EQ(co_await asyncio::wait_for(swallow_cancel(&log, 42), 0.001), 42);
        EXPECT_EQ(log, Log{"swallowed"});
    });
}

asyncio::Coro<int> wait_for_future(asyncio::Future<int> fut, double timeout) {
    co_return co_await asyncio::wait_for(fut, timeout);
}

TEST(WaitFor, ResultWinsWhenDoneInTheSameIterationAsTheTimeout) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto fut = loop.create_future<int>();
        loop.call_at(loop.time() + 0.001, [fut]() mutable { fut.set_result(7); });
        auto w = asyncio::create_task(wait_for_future(fut, 0.002));
        co_await asyncio::sleep(0);  // w waits on fut under its deadline
        // Block the loop past both deadlines: the next iteration runs the
        // result's timer, then the deadline's, before w's step.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_EQ(co_await w, 7);
    });
}

asyncio::Coro<> wait_for_then_sleep(asyncio::Task<std::string> inner, bool* reached_end) {
    co_await asyncio::wait_for(inner, 100.0);
    co_await asyncio::sleep(3600.0);
    *reached_end = true;
}

asyncio::Coro<std::string> done_at_once() { co_return "done"; }

TEST(WaitFor, OuterCancellationIsNeverSwallowed) {  // CPython gh-86296
    bool reached_end = false;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto inner = asyncio::create_task(done_at_once());
        auto t = asyncio::create_task(wait_for_then_sleep(inner, &reached_end));
        co_await asyncio::sleep(0);
        t.cancel();
        EXPECT_THROW(co_await t, asyncio::CancelledError);
        EXPECT_TRUE(inner.done());
        EXPECT_TRUE(t.cancelled());
    });
    EXPECT_FALSE(reached_end);
}

asyncio::Coro<int> swallow_then_42() {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const asyncio::CancelledError&) {
    }
    co_return 42;
}
asyncio::Coro<int> wait_for_swallower(bool as_task) {
    if (as_task) co_return co_await asyncio::wait_for(asyncio::create_task(swallow_then_42()), 10.0);
    co_return co_await asyncio::wait_for(swallow_then_42(), 10.0);
}

// Python 3.12/3.13: wait_for() is `async with timeout(): await inner`; the
// caller's cancel() goes to the inner work, which swallows it and returns:
// `await` gives that result, and the caller's cancelling() stays 1.
TEST(WaitFor, InnerWorkSwallowingTheCallersCancelGivesItsResult) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        for (bool as_task : {true, false}) {
            auto d = asyncio::create_task(wait_for_swallower(as_task));
            co_await asyncio::sleep(0);
            co_await asyncio::sleep(0);
            d.cancel();
            EXPECT_EQ(co_await d, 42);
            EXPECT_EQ(d.cancelling(), 1);
        }
    });
}

asyncio::Coro<int> wait_for_blocked(asyncio::Task<int> inner) { co_return co_await asyncio::wait_for(inner, std::nullopt); }

TEST(WaitFor, CancellingTheCallerCancelsTheInnerTask) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        Log log;
        auto inner = asyncio::create_task(sleep_forever(&log, "inner"));
        auto w = asyncio::create_task(wait_for_blocked(inner));
        co_await asyncio::sleep(0);
        w.cancel();
        EXPECT_THROW(co_await w, asyncio::CancelledError);
        EXPECT_TRUE(inner.cancelled());
    });
}

TEST(WaitFor, ZeroOrNegativeTimeout) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        bool started = false;
        EXPECT_THROW(co_await asyncio::wait_for(never_started(&started), 0), asyncio::TimeoutError);
        EXPECT_FALSE(started);
        auto fut = asyncio::get_running_loop().create_future<int>();
        fut.set_result(3);
        EXPECT_EQ(co_await asyncio::wait_for(fut, -1.0), 3);  // done: its result
        Log log;
        auto t = asyncio::create_task(sleep_forever(&log, "t"));
        co_await asyncio::sleep(0);
        EXPECT_THROW(co_await asyncio::wait_for(t, 0), asyncio::TimeoutError);
        EXPECT_TRUE(t.cancelled());
        EXPECT_EQ(log, Log{"t cancelled"});
    });
}

// ---- shield ---------------------------------------------------------------------------

asyncio::Coro<int> await_shielded(asyncio::Task<int> inner) { co_return co_await asyncio::shield(inner); }

TEST(Shield, InnerSurvivesTheOuterCancellation) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto inner = asyncio::create_task(value_after(9, 3));
        auto outer = asyncio::create_task(await_shielded(inner));
        co_await asyncio::sleep(0);
        outer.cancel();
        EXPECT_THROW(co_await outer, asyncio::CancelledError);
        EXPECT_FALSE(inner.cancelled());
        EXPECT_EQ(co_await inner, 9);
    });
}

TEST(Shield, GivesTheInnerOutcome) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        EXPECT_EQ(co_await asyncio::shield(value_after(2, 1)), 2);
        EXPECT_THROW(co_await asyncio::shield(fail_after(1, "x")), std::runtime_error);
        auto done = asyncio::create_task(value_after(5, 0));
        co_await done;
        EXPECT_EQ(co_await asyncio::shield(done), 5);
    });
}

asyncio::Coro<int> await_shielded_future(asyncio::Future<int> inner) { co_return co_await asyncio::shield(inner); }

// CPython 3.12's shield: once the outer future is cancelled, the inner's
// done callback is removed (_outer_done_callback), so an exception the inner
// work ends with later is nobody's and gets reported. Only an inner that was
// already done when the outer's callback ran is marked retrieved.
TEST(Shield, AnInnerErrorAfterTheOuterWasCancelledIsReportedAsNeverRetrieved) {
    std::vector<std::string> reports;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        loop.set_exception_handler(
            [&reports](asyncio::EventLoop&, const asyncio::ExceptionContext& c) { reports.push_back(c.message); });
        {
            auto inner = loop.create_future<int>();
            auto outer = asyncio::create_task(await_shielded_future(inner));
            co_await asyncio::sleep(0);
            outer.cancel();
            EXPECT_THROW(co_await outer, asyncio::CancelledError);
            inner.set_exception(std::make_exception_ptr(std::runtime_error("late")));
        }  // inner dropped with its exception unseen
        co_await asyncio::sleep(0);  // its done callback (a no-op now) held it until then
        EXPECT_EQ(reports, (std::vector<std::string>{"Future exception was never retrieved"}));
        reports.clear();
        {
            auto inner = loop.create_future<int>();
            auto outer = asyncio::shield(inner);
            outer.cancel();
            // Done before the outer's callback runs: the inner's callback
            // still comes, sees the outer cancelled and marks it retrieved.
            inner.set_exception(std::make_exception_ptr(std::runtime_error("early")));
            co_await asyncio::sleep(0);
            co_await asyncio::sleep(0);
        }
        EXPECT_TRUE(reports.empty());
        // shield(coro): the inner task fails after the awaiting task was cancelled.
        auto outer = asyncio::create_task([]() -> asyncio::Coro<int> { co_return co_await asyncio::shield(fail_after(3, "late")); }());
        co_await asyncio::sleep(0);
        outer.cancel();
        EXPECT_THROW(co_await outer, asyncio::CancelledError);
        for (int i = 0; i < 5; ++i) co_await asyncio::sleep(0);
        EXPECT_EQ(reports, (std::vector<std::string>{"Task exception was never retrieved"}));
    });
}

TEST(WaitFor, AroundShieldTimesOutButTheInnerGoesOn) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto fut = asyncio::get_running_loop().create_future<int>();
        auto inner = asyncio::create_task(wait_for_future(fut, 3600.0));
        EXPECT_THROW(co_await asyncio::wait_for(asyncio::shield(inner), 0.001), asyncio::TimeoutError);
        EXPECT_FALSE(inner.done());
        fut.set_result(1);
        EXPECT_EQ(co_await inner, 1);
    });
}

}  // namespace
