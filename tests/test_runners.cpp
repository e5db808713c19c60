// Tests for asyncio.runners: run().
// Spec: CPython 3.12 Lib/test/test_asyncio/test_runners.py.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <string>
#include <vector>

using asyncio::CancelledError;
using asyncio::Coro;

namespace {

using Log = std::vector<std::string>;

Coro<int> answer() {
    co_await asyncio::sleep(0);
    co_return 42;
}

Coro<> fail() {
    co_await asyncio::sleep(0);
    throw asyncio::ValueError("main failed");
}

Coro<> leftover(Log* log, std::string name) {
    std::exception_ptr cancelled;
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const CancelledError&) {
        log->push_back(name + " cancelled");
        cancelled = std::current_exception();
    }
    // C++ forbids co_await in a handler: clean up after it, then re-raise.
    co_await asyncio::sleep(0);  // cleanup may still await
    log->push_back(name + " cleaned up");
    std::rethrow_exception(cancelled);
}

Coro<> spawn_and_leave(Log* log) {
    auto& loop = asyncio::get_running_loop();
    loop.add_close_hook([log] { log->push_back("loop closed"); });
    (void)asyncio::create_task(leftover(log, "a"));
    (void)asyncio::create_task(leftover(log, "b"));
    co_await asyncio::sleep(0);
    log->push_back("main done");
}

Coro<bool> debug_flag() {
    co_return asyncio::get_running_loop().get_debug();
}

Coro<int> nested_run() {
    try {
        asyncio::run(answer());
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "asyncio.run() cannot be called from a running event loop");
        co_return 1;
    }
    co_return 0;
}

}  // namespace

TEST(Run, ReturnsTheValue) { EXPECT_EQ(asyncio::run(answer()), 42); }

// Python's sleep(), Queue.get(), ... are coroutines, so asyncio.run() and
// run_until_complete() take them; here they are awaiters, taken the same way.
TEST(Run, TakesAnyAwaitable) {
    EXPECT_EQ(asyncio::run(asyncio::sleep(0, 7)), 7);
    EXPECT_EQ(asyncio::run(asyncio::sleep(0.0, std::string("debug")), false), "debug");
    asyncio::EventLoop loop;
    EXPECT_EQ(loop.run_until_complete(asyncio::sleep(0, 3)), 3);
    asyncio::Queue<int> q;
    q.put_nowait(11);
    EXPECT_EQ(loop.run_until_complete(q.get()), 11);
    loop.close();
}

TEST(Run, VoidMain) {
    bool ran = false;
    asyncio::run([](bool* r) -> Coro<> {
        co_await asyncio::sleep(0);
        *r = true;
    }(&ran));
    EXPECT_TRUE(ran);
}

TEST(Run, RethrowsMainsException) {
    try {
        asyncio::run(fail());
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::ValueError& e) {
        EXPECT_STREQ(e.what(), "main failed");
    }
}

TEST(Run, InsideARunningLoopRaises) { EXPECT_EQ(asyncio::run(nested_run()), 1); }

Coro<> set_flag(bool* ran) {
    *ran = true;
    co_return;
}

// Python checks _check_running() before it wraps the coroutine in a task:
// a refused run_until_complete() leaves nothing behind to run later.
TEST(RunUntilComplete, OnARunningLoopRaisesAndTheCoroutineNeverRuns) {
    bool ran_here = false, ran_other = false;
    asyncio::run([](bool* here, bool* other) -> Coro<> {
        auto& loop = asyncio::get_running_loop();
        try {
            loop.run_until_complete(set_flag(here));
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ(e.what(), "This event loop is already running");
        }
        asyncio::EventLoop second;
        try {
            second.run_until_complete(set_flag(other));
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ(e.what(), "Cannot run the event loop while another loop is running");
        }
        EXPECT_TRUE(second.pending_tasks().empty());
        second.close();
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
    }(&ran_here, &ran_other));
    EXPECT_FALSE(ran_here);
    EXPECT_FALSE(ran_other);
}

TEST(Run, CancelsLeftoverTasksWaitsForThemThenCloses) {
    Log log;
    asyncio::run(spawn_and_leave(&log));
    EXPECT_EQ(log, (Log{"main done", "a cancelled", "b cancelled", "a cleaned up", "b cleaned up", "loop closed"}));
}

TEST(Run, NoRunningLoopAfterwards) {
    asyncio::run(answer());
    EXPECT_THROW(asyncio::get_running_loop(), asyncio::RuntimeError);
    EXPECT_EQ(asyncio::run(answer()), 42);  // and run() works again
}

TEST(Run, DebugFlagTurnsDebugOn) {
    EXPECT_TRUE(asyncio::run(debug_flag(), true));
    EXPECT_FALSE(asyncio::run(debug_flag(), false));
}

TEST(Run, CancelledMainRaisesCancelledError) {
    EXPECT_THROW(asyncio::run([]() -> Coro<> {
                     asyncio::current_task().cancel("main cancelled");
                     co_await asyncio::sleep(0);
                 }()),
                 CancelledError);
}

TEST(Run, LeftoverTaskFailingDuringShutdownIsReported) {
    // Python reports "unhandled exception during asyncio.run() shutdown".
    testing::internal::CaptureStderr();
    asyncio::run([]() -> Coro<> {
        (void)asyncio::create_task([]() -> Coro<> {
            try {
                co_await asyncio::sleep(3600.0);
            } catch (const CancelledError&) {
                throw asyncio::ValueError("cleanup failed");
            }
        }());
        co_await asyncio::sleep(0);
    }());
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("unhandled exception during asyncio.run() shutdown"), std::string::npos) << err;
    EXPECT_NE(err.find("cleanup failed"), std::string::npos) << err;
}
