// Tests for asyncio.futures: Future's states, result()/exception() errors,
// done callbacks, cancellation and the never-retrieved report.
// Spec: CPython 3.12 Lib/test/test_asyncio/test_futures.py.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run_test.hpp"

using asyncio::EventLoop;
using asyncio::Future;
using asyncio::testing::run_test;

namespace {

using Log = std::vector<std::string>;

void run_briefly(EventLoop& loop) {
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
}

Log* g_log = nullptr;  // for the function-pointer callbacks below
void cb_a(Future<int>&) { g_log->push_back("a"); }
void cb_b(Future<int>&) { g_log->push_back("b"); }

struct LogGuard {
    explicit LogGuard(Log* l) { g_log = l; }
    ~LogGuard() { g_log = nullptr; }
};

std::exception_ptr value_error(const char* what) { return std::make_exception_ptr(asyncio::ValueError(what)); }

}  // namespace

// ---- states -----------------------------------------------------------------

TEST(FutureState, PendingThenFinished) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(&f.get_loop(), &loop);
    f.set_result(7);
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.result(), 7);
    EXPECT_EQ(f.exception(), nullptr);
}

TEST(FutureState, ResultBeforeDoneRaisesInvalidState) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    try {
        (void)f.result();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::InvalidStateError& e) {
        EXPECT_STREQ(e.what(), "Result is not set.");
    }
    try {
        (void)f.exception();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::InvalidStateError& e) {
        EXPECT_STREQ(e.what(), "Exception is not set.");
    }
}

TEST(FutureState, SetResultTwiceRaisesInvalidState) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    f.set_result(1);
    EXPECT_THROW(f.set_result(2), asyncio::InvalidStateError);
    EXPECT_THROW(f.set_exception(value_error("x")), asyncio::InvalidStateError);
    EXPECT_EQ(f.result(), 1);
}

TEST(FutureState, SetAfterCancelRaisesInvalidState) {
    EventLoop loop;
    auto f = loop.create_future<>();
    EXPECT_TRUE(f.cancel());
    EXPECT_THROW(f.set_result(), asyncio::InvalidStateError);
}

TEST(FutureState, ExceptionIsRaisedByResultAndReturnedByException) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    f.set_exception(value_error("bad"));
    EXPECT_TRUE(f.done());
    EXPECT_THROW((void)f.result(), asyncio::ValueError);
    auto e = f.exception();
    ASSERT_TRUE(e);
    try {
        std::rethrow_exception(e);
    } catch (const asyncio::ValueError& v) {
        EXPECT_STREQ(v.what(), "bad");
    }
}

TEST(FutureState, SetExceptionRejectsNullAndCancelledError) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    EXPECT_ANY_THROW(f.set_exception(nullptr));
    EXPECT_ANY_THROW(f.set_exception(std::make_exception_ptr(asyncio::CancelledError())));
    EXPECT_FALSE(f.done());
}

TEST(FutureState, VoidFuture) {
    EventLoop loop;
    auto f = loop.create_future();
    f.set_result();
    EXPECT_TRUE(f.done());
    f.result();
    EXPECT_EQ(f.exception(), nullptr);
}

TEST(FutureState, CopiesShareTheState) {
    EventLoop loop;
    auto f = loop.create_future<std::string>();
    Future<std::string> g = f;
    g.set_result("shared");
    EXPECT_EQ(f.result(), "shared");
    EXPECT_TRUE(f == g);
}

TEST(FutureState, DefaultConstructedNeedsARunningLoop) {
    try {
        Future<int> f;
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "no running event loop");
    }
    run_test([]() -> asyncio::Coro<> {
        Future<int> f;
        EXPECT_EQ(&f.get_loop(), &asyncio::get_running_loop());
        f.set_result(1);
        co_return;
    });
}

// ---- cancellation ------------------------------------------------------------

TEST(FutureCancel, CancelledFutureRaisesCancelledErrorWithTheMessage) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    EXPECT_TRUE(f.cancel("why not"));
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(f.done());
    try {
        (void)f.result();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::CancelledError& e) {
        EXPECT_STREQ(e.what(), "why not");
    }
    try {
        (void)f.exception();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::CancelledError& e) {
        EXPECT_STREQ(e.what(), "why not");
    }
}

TEST(FutureCancel, CancelWithoutMessageGivesEmptyWhat) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    EXPECT_TRUE(f.cancel());
    try {
        (void)f.result();
    } catch (const asyncio::CancelledError& e) {
        EXPECT_STREQ(e.what(), "");
    }
}

TEST(FutureCancel, CancelOnDoneReturnsFalse) {
    EventLoop loop;
    auto f = loop.create_future<int>();
    f.set_result(3);
    EXPECT_FALSE(f.cancel());
    EXPECT_FALSE(f.cancelled());
    auto g = loop.create_future<int>();
    EXPECT_TRUE(g.cancel());
    EXPECT_FALSE(g.cancel());
}

// ---- done callbacks ------------------------------------------------------------

TEST(FutureCallbacks, ScheduledViaCallSoonInRegistrationOrder) {
    EventLoop loop;
    Log log;
    auto f = loop.create_future<int>();
    for (int i = 0; i < 3; ++i)
        f.add_done_callback([&log, i](Future<int>& fut) { log.push_back(std::to_string(i) + ":" + std::to_string(fut.result())); });
    f.set_result(5);
    EXPECT_TRUE(log.empty()) << "callbacks must not run synchronously";
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"0:5", "1:5", "2:5"}));
}

TEST(FutureCallbacks, RunAfterCallbacksAlreadyQueued) {
    // call_soon semantics: a done callback queues behind what is already ready.
    EventLoop loop;
    Log log;
    auto f = loop.create_future<int>();
    f.add_done_callback([&](Future<int>&) { log.push_back("done callback"); });
    loop.call_soon([&] { log.push_back("earlier call_soon"); });
    f.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"earlier call_soon", "done callback"}));
}

TEST(FutureCallbacks, AddedAfterCompletionIsScheduledAtOnceNotRun) {
    EventLoop loop;
    Log log;
    auto f = loop.create_future<int>();
    f.set_result(9);
    f.add_done_callback([&](Future<int>& fut) { log.push_back("late " + std::to_string(fut.result())); });
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(loop.ready_count(), 1u);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"late 9"}));
}

TEST(FutureCallbacks, CalledOnCancellationToo) {
    EventLoop loop;
    bool saw_cancelled = false;
    auto f = loop.create_future<int>();
    f.add_done_callback([&](Future<int>& fut) { saw_cancelled = fut.cancelled(); });
    f.cancel();
    run_briefly(loop);
    EXPECT_TRUE(saw_cancelled);
}

TEST(FutureCallbacks, RemoveDoneCallbackReturnsTheCount) {
    EventLoop loop;
    Log log;
    LogGuard guard(&log);
    auto f = loop.create_future<int>();
    f.add_done_callback(cb_a);
    f.add_done_callback(cb_b);
    f.add_done_callback(cb_a);
    f.add_done_callback(&cb_a);
    EXPECT_EQ(f.remove_done_callback(cb_a), 3u);
    EXPECT_EQ(f.remove_done_callback(cb_a), 0u);
    f.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"b"}));
}

struct EqCallback {
    int id;
    Log* log;
    void operator()(Future<int>&) const { log->push_back("eq" + std::to_string(id)); }
    bool operator==(const EqCallback& o) const { return id == o.id; }
};

TEST(FutureCallbacks, RemoveDoneCallbackMatchesEqualityComparableObjects) {
    EventLoop loop;
    Log log;
    auto f = loop.create_future<int>();
    f.add_done_callback(EqCallback{1, &log});
    f.add_done_callback(EqCallback{2, &log});
    auto lambda = [&](Future<int>&) { log.push_back("lambda"); };
    f.add_done_callback(lambda);
    EXPECT_EQ(f.remove_done_callback(EqCallback{1, nullptr}), 1u);
    EXPECT_EQ(f.remove_done_callback(lambda), 0u);  // lambdas never compare equal
    f.set_result(0);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"eq2", "lambda"}));
}

TEST(FutureCallbacks, ThrowingCallbackIsReportedOthersStillRun) {
    EventLoop loop;
    Log log;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& ctx) { reported.push_back(ctx.message); });
    auto f = loop.create_future<int>();
    f.add_done_callback([](Future<int>&) { throw std::runtime_error("callback failed"); });
    f.add_done_callback([&](Future<int>&) { log.push_back("second"); });
    f.set_result(1);
    run_briefly(loop);
    EXPECT_EQ(log, (Log{"second"}));
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(reported[0].rfind("Exception in callback", 0), 0u);
}

TEST(FutureCallbacks, CallbackKeepsTheFutureAliveUntilItRuns) {
    EventLoop loop;
    int seen = 0;
    {
        auto f = loop.create_future<int>();
        f.add_done_callback([&](Future<int>& fut) { seen = fut.result(); });
        f.set_result(11);
    }  // the last handle is gone; the queued callback still holds the future
    run_briefly(loop);
    EXPECT_EQ(seen, 11);
}

// ---- awaiting ----------------------------------------------------------------

asyncio::Coro<int> await_future(Future<int> f) { co_return co_await f; }

TEST(FutureAwait, GivesTheResultOnceSet) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        auto t = asyncio::create_task(await_future(f));
        co_await asyncio::sleep(0);
        EXPECT_FALSE(t.done());
        f.set_result(21);
        EXPECT_EQ(co_await t, 21);
    });
}

TEST(FutureAwait, RethrowsTheException) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        asyncio::get_running_loop().call_soon([f]() mutable { f.set_exception(value_error("nope")); });
        try {
            co_await f;
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::ValueError& e) {
            EXPECT_STREQ(e.what(), "nope");
        }
    });
}

TEST(FutureAwait, AlreadyDoneDoesNotSuspend) {
    run_test([]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        bool other_ran = false;
        loop.call_soon([&] { other_ran = true; });
        auto f = loop.create_future<int>();
        f.set_result(4);
        EXPECT_EQ(co_await f, 4);
        EXPECT_FALSE(other_ran);  // no iteration passed
        co_await asyncio::sleep(0);
        EXPECT_TRUE(other_ran);
    });
}

TEST(FutureAwait, MoveOnlyResultIsMovedOut) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<std::unique_ptr<int>>();
        f.set_result(std::make_unique<int>(8));
        std::unique_ptr<int> p = co_await f;
        EXPECT_TRUE(p);
        if (!p) co_return;
        EXPECT_EQ(*p, 8);
    });
}

TEST(FutureAwait, CancelledFutureRaisesCancelledErrorInTheAwaiter) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        asyncio::get_running_loop().call_soon([f]() mutable { f.cancel("gone"); });
        try {
            co_await f;
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::CancelledError& e) {
            EXPECT_STREQ(e.what(), "gone");
        }
        // The awaiting task was not cancelled itself: it goes on.
        EXPECT_EQ(asyncio::current_task().cancelling(), 0);
    });
}

TEST(FutureAwait, CancellingTheAwaitingTaskCancelsTheFuture) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        auto t = asyncio::create_task(await_future(f));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancel("stop"));
        try {
            co_await t;
        } catch (const asyncio::CancelledError& e) {
            EXPECT_STREQ(e.what(), "stop");
        }
        EXPECT_TRUE(f.cancelled());
        EXPECT_TRUE(t.cancelled());
    });
}

TEST(FutureAwait, FutureOfAnotherLoopRaisesRuntimeError) {
    EventLoop other;
    auto foreign = other.create_future<int>();
    run_test([&]() -> asyncio::Coro<> {
        try {
            co_await foreign;
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_NE(std::string(e.what()).find("attached to a different loop"), std::string::npos) << e.what();
        }
    });
    foreign.cancel();
}

TEST(FutureAwait, ManyAwaitersAllWake) {
    run_test([]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        std::vector<asyncio::Task<int>> tasks;
        for (int i = 0; i < 5; ++i) tasks.push_back(asyncio::create_task(await_future(f)));
        co_await asyncio::sleep(0);
        f.set_result(3);
        for (auto& t : tasks) EXPECT_EQ(co_await t, 3);
    });
}

// ---- never retrieved ------------------------------------------------------------

TEST(FutureNeverRetrieved, ReportedWhenDestroyed) {
    EventLoop loop;
    std::vector<asyncio::ExceptionContext> seen;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext& ctx) { seen.push_back(ctx); });
    {
        auto f = loop.create_future<int>();
        f.set_exception(value_error("lost"));
    }
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].message, "Future exception was never retrieved");
    EXPECT_TRUE(seen[0].exception);
}

TEST(FutureNeverRetrieved, NotReportedOnceLookedAt) {
    EventLoop loop;
    int reports = 0;
    loop.set_exception_handler([&](EventLoop&, const asyncio::ExceptionContext&) { ++reports; });
    {
        auto f = loop.create_future<int>();
        f.set_exception(value_error("seen"));
        (void)f.exception();
    }
    {
        auto f = loop.create_future<int>();
        f.set_exception(value_error("seen"));
        EXPECT_THROW((void)f.result(), asyncio::ValueError);
    }
    EXPECT_EQ(reports, 0);
}

namespace {
asyncio::Coro<> park_on(Future<>* f, int* woken) {
    co_await *f;
    ++*woken;
}
}  // namespace

TEST(FutureAwait, HundredThousandAwaitersOfOneFutureAreWokenInOrder) {
    // Registering an awaiter is O(1) (a circular list addressed by its
    // tail): 100,000 awaiters used to cost O(n^2) and never finish.
    int woken = 0;
    run_test([&]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<>();
        std::vector<asyncio::Task<>> tasks;
        for (int i = 0; i < 100'000; ++i) tasks.push_back(asyncio::create_task(park_on(&f, &woken)));
        co_await asyncio::sleep(0);
        EXPECT_EQ(woken, 0);
        f.set_result();
        for (auto& t : tasks) co_await t;
    });
    EXPECT_EQ(woken, 100'000);
}

TEST(FutureCallbacks, RemovingFromTheMiddleKeepsTheOrderOfTheRest) {
    std::vector<int> order;
    static std::vector<int>* sink;
    sink = &order;
    struct Cb {
        static void one(Future<int>&) { sink->push_back(1); }
        static void two(Future<int>&) { sink->push_back(2); }
        static void three(Future<int>&) { sink->push_back(3); }
    };
    run_test([&]() -> asyncio::Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        f.add_done_callback(&Cb::one);
        f.add_done_callback(&Cb::two);
        f.add_done_callback(&Cb::three);
        f.add_done_callback(&Cb::two);
        EXPECT_EQ(f.remove_done_callback(&Cb::two), 2u);
        f.add_done_callback(&Cb::two);
        f.set_result(1);
        co_await asyncio::sleep(0);
    });
    EXPECT_EQ(order, (std::vector<int>{1, 3, 2}));
}

// ---- freeing a future's state -----------------------------------------------------

// A future whose value type owns nothing is freed on a short path that runs
// no destructor (FutureBase::destroy()); everything else must still be
// destroyed: its exception, its value, its callbacks.
struct CountsDestructions : std::runtime_error {
    explicit CountsDestructions(int* n) : std::runtime_error("counted"), count(n) {}
    CountsDestructions(const CountsDestructions&) = default;
    ~CountsDestructions() override { ++*count; }
    int* count;
};

TEST(FutureLifetime, AnExceptionOfAFutureWithATrivialValueIsDestroyed) {
    int destroyed = 0;
    EventLoop loop;
    {
        Future<int> f(loop);
        f.set_exception(std::make_exception_ptr(CountsDestructions(&destroyed)));
        destroyed = 0;  // the temporary thrown into the exception_ptr
        EXPECT_NE(f.exception(), nullptr);  // retrieved: no report
    }
    EXPECT_EQ(destroyed, 1);
}

TEST(FutureLifetime, AValueThatOwnsSomethingIsDestroyed) {
    auto token = std::make_shared<int>(7);
    EventLoop loop;
    {
        Future<std::shared_ptr<int>> f(loop);
        f.set_result(token);
        EXPECT_EQ(token.use_count(), 2);
    }
    EXPECT_EQ(token.use_count(), 1);
}

TEST(FutureLifetime, ACallbackStillRegisteredIsDestroyedWithTheFuture) {
    auto token = std::make_shared<int>(7);
    EventLoop loop;
    {
        Future<> f(loop);
        f.add_done_callback([token](Future<>&) {});
        f.set_result();
        EXPECT_EQ(token.use_count(), 2);
        // the callback is scheduled, not run: the queue holds it and the future
    }
    loop.close();  // drops the queued callback
    EXPECT_EQ(token.use_count(), 1);
}
