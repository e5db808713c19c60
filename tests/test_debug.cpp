// Tests for debug mode and the loop's error reports: slow steps, exceptions
// never retrieved, tasks destroyed while pending, coroutines never awaited,
// use from a foreign thread, ASYNCIO_DEBUG.
// Spec: CPython 3.12 docs "Developing with asyncio" and test_tasks.py / test_base_events.py.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/run_test.hpp"

using asyncio::Coro;
using asyncio::EventLoop;
using asyncio::ExceptionContext;
using asyncio::testing::run_test;

namespace {

struct Reports {
    std::vector<ExceptionContext> seen;
    void install(EventLoop& loop) {
        loop.set_exception_handler([this](EventLoop&, const ExceptionContext& c) { seen.push_back(c); });
    }
    std::size_t count(const std::string& needle) const {
        std::size_t n = 0;
        for (auto& c : seen)
            if (c.message.find(needle) != std::string::npos) ++n;
        return n;
    }
    const ExceptionContext* find(const std::string& needle) const {
        for (auto& c : seen)
            if (c.message.find(needle) != std::string::npos) return &c;
        return nullptr;
    }
};

Coro<> block_the_loop() {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // like the seed's time.sleep(3)
    co_return;
}

Coro<int> fail_soon() {
    co_await asyncio::sleep(0);
    throw asyncio::ValueError("nobody looks");
}

Coro<> forever() { co_await asyncio::sleep(3600.0); }

Coro<> nothing() { co_return; }

// Restores an environment variable at scope exit.
struct EnvGuard {
    std::string name;
    std::string old;
    bool had;
    EnvGuard(const char* n, const char* value) : name(n) {
        const char* o = std::getenv(n);
        had = o != nullptr;
        if (had) old = o;
        if (value)
            ::setenv(n, value, 1);
        else
            ::unsetenv(n);
    }
    ~EnvGuard() {
        if (had)
            ::setenv(name.c_str(), old.c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

}  // namespace

// ---- slow steps -------------------------------------------------------------------

TEST(DebugSlowStep, ReportedThroughTheHandlerNamingTheTask) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    loop.set_slow_callback_duration(0.001);  // the step below blocks for 5 ms
    loop.run_until_complete(loop.create_task(block_the_loop(), "slowpoke"));
    const ExceptionContext* c = r.find("slowpoke");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->message.rfind("Executing <Task", 0), 0u) << c->message;
    EXPECT_NE(c->message.find(" took "), std::string::npos) << c->message;
    EXPECT_NE(c->message.find(" seconds"), std::string::npos) << c->message;
    EXPECT_NE(c->task.find("slowpoke"), std::string::npos);
}

TEST(DebugSlowStep, SlowPlainCallbackIsReported) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    loop.set_slow_callback_duration(0.001);
    loop.call_soon([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(r.count("Executing <Handle"), 1u);
}

TEST(DebugSlowStep, SlowReaderCallbackIsReported) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(true);
    loop.set_slow_callback_duration(0.001);
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    ASSERT_EQ(::write(fds[1], "x", 1), 1);
    loop.add_reader(fds[0], [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        loop.remove_reader(fds[0]);
        loop.stop();
    });
    loop.run_forever();
    ::close(fds[0]);
    ::close(fds[1]);
    EXPECT_EQ(r.count("Executing <Handle"), 1u);
}

TEST(DebugSlowStep, NotReportedOutsideDebugMode) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    loop.set_debug(false);
    loop.set_slow_callback_duration(0.001);
    loop.run_until_complete(loop.create_task(block_the_loop(), "slowpoke"));
    EXPECT_EQ(r.count("Executing"), 0u);
}

// ---- never retrieved / destroyed pending ---------------------------------------------

TEST(DebugReports, TaskExceptionNeverRetrievedAlsoOutsideDebugMode) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    ASSERT_FALSE(loop.get_debug());
    loop.run_until_complete([]() -> Coro<> {
        (void)asyncio::create_task(fail_soon(), "dropped");  // no handle kept
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
    }());
    ASSERT_EQ(r.count("Task exception was never retrieved"), 1u);
    const ExceptionContext* c = r.find("Task exception was never retrieved");
    EXPECT_NE(c->task.find("dropped"), std::string::npos) << c->task;
    ASSERT_TRUE(c->exception);
    EXPECT_THROW(std::rethrow_exception(c->exception), asyncio::ValueError);
}

TEST(DebugReports, RetrievedTaskExceptionIsNotReported) {
    EventLoop loop;
    Reports r;
    r.install(loop);
    loop.run_until_complete([]() -> Coro<> {
        auto t = asyncio::create_task(fail_soon());
        try {
            co_await t;
        } catch (const asyncio::ValueError&) {
        }
    }());
    EXPECT_EQ(r.count("never retrieved"), 0u);
}

TEST(DebugReports, TaskDestroyedButPending) {
    // A loop destroyed while a task still waits: Python's "Task was destroyed
    // but it is pending!" (run_until_complete without run()'s cleanup).
    Reports r;
    {
        EventLoop loop;
        r.install(loop);
        loop.run_until_complete([]() -> Coro<> {
            (void)asyncio::create_task(forever(), "stuck");
            co_await asyncio::sleep(0);
        }());
    }
    ASSERT_EQ(r.count("Task was destroyed but it is pending!"), 1u);
    EXPECT_NE(r.find("Task was destroyed")->task.find("stuck"), std::string::npos);
}

TEST(DebugReports, TaskHandleOutlivingTheLoopIsSafe) {
    asyncio::Task<> kept;
    Reports r;
    {
        EventLoop loop;
        r.install(loop);
        loop.run_until_complete([](asyncio::Task<>* out) -> Coro<> {
            *out = asyncio::create_task(forever());
            co_await asyncio::sleep(0);
        }(&kept));
    }
    EXPECT_EQ(r.count("Task was destroyed but it is pending!"), 1u);
    EXPECT_FALSE(kept.done());
    EXPECT_THROW((void)kept.get_loop(), asyncio::RuntimeError);
    kept = asyncio::Task<>();  // drops the frame after its loop is gone
}

// A failed task whose handle outlives its (closed, destroyed) loop still
// says "never retrieved" when the handle goes: on stderr, the default
// handler's words, as Python reports it when the task is collected.
TEST(DebugReports, NeverRetrievedIsReportedWhenTheHandleOutlivesTheLoop) {
    asyncio::Task<int> kept;
    {
        EventLoop loop;
        loop.run_until_complete([](asyncio::Task<int>* out) -> Coro<> {
            *out = asyncio::create_task(fail_soon(), "outlives");
            co_await asyncio::sleep(0);
            co_await asyncio::sleep(0);
        }(&kept));
        EXPECT_TRUE(kept.done());
    }
    testing::internal::CaptureStderr();
    kept = asyncio::Task<int>();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Task exception was never retrieved"), std::string::npos) << err;
    EXPECT_NE(err.find("outlives"), std::string::npos) << err;
    EXPECT_NE(err.find("exception: "), std::string::npos) << err;
}

// ---- never awaited ------------------------------------------------------------

TEST(DebugReports, CoroutineNeverAwaitedInDebugMode) {
    Reports r;
    EventLoop loop;
    r.install(loop);
    loop.set_debug(true);
    loop.run_until_complete([]() -> Coro<> {
        { auto c = nothing(); }  // created, dropped, never awaited
        co_return;
    }());
    EXPECT_EQ(r.count("never awaited"), 1u);
}

TEST(DebugReports, StreamReadNeverAwaitedInDebugMode) {
    Reports r;
    EventLoop loop;
    r.install(loop);
    loop.set_debug(true);
    loop.run_until_complete([]() -> Coro<> {
        asyncio::StreamReader reader;
        { auto op = reader.read(1); }  // created, dropped, never awaited
        reader.feed_data("a");
        EXPECT_EQ(co_await reader.read(1), "a");  // awaited: not reported
    }());
    EXPECT_EQ(r.count("never awaited"), 1u);
}

TEST(DebugReports, CoroutineNeverAwaitedSilentOutsideDebugMode) {
    Reports r;
    EventLoop loop;
    r.install(loop);
    loop.run_until_complete([]() -> Coro<> {
        { auto c = nothing(); }
        co_return;
    }());
    EXPECT_EQ(r.count("never awaited"), 0u);
}

TEST(DebugReports, AwaitedCoroutineIsNotReported) {
    Reports r;
    EventLoop loop;
    r.install(loop);
    loop.set_debug(true);
    loop.run_until_complete([]() -> Coro<> {
        co_await nothing();
        auto t = asyncio::create_task(nothing());
        co_await t;
        auto c = asyncio::create_task(nothing());
        c.cancel();  // cancelled before it ran: a task, not a dropped coroutine
        try {
            co_await c;
        } catch (const asyncio::CancelledError&) {
        }
    }());
    EXPECT_EQ(r.count("never awaited"), 0u);
}

// ---- foreign thread ---------------------------------------------------------------

TEST(DebugThread, CallSoonFromAnotherThreadRaisesInDebugMode) {
    bool raised = false;
    std::string what;
    run_test(
        [&]() -> Coro<> {
            auto& loop = asyncio::get_running_loop();
            std::thread th([&] {
                try {
                    loop.call_soon([] {});
                } catch (const asyncio::RuntimeError& e) {
                    raised = true;
                    what = e.what();
                }
            });
            th.join();
            co_return;
        },
        asyncio::testing::RunOptions{.debug = true});
    EXPECT_TRUE(raised);
    EXPECT_NE(what.find("Non-thread-safe operation"), std::string::npos) << what;
}

Coro<int> await_future(asyncio::Future<int> f) { co_return co_await f; }

// Completing a future that has callbacks (a task awaits it) schedules them,
// with call_soon in Python: from another thread, in debug mode, that raises
// and the future stays pending (here the check comes before any change).
TEST(DebugThread, CompletingAFutureFromAnotherThreadRaisesInDebugMode) {
    int raised = 0;
    run_test(
        [&]() -> Coro<> {
            auto& loop = asyncio::get_running_loop();
            auto fut = loop.create_future<int>();
            auto lonely = loop.create_future<int>();  // no callbacks: nothing to schedule, allowed (Python)
            auto waiter = asyncio::create_task(await_future(fut));
            co_await asyncio::sleep(0);  // the task now waits on fut
            std::thread th([&raised, fut, lonely]() mutable {
                try {
                    fut.set_result(1);
                } catch (const asyncio::RuntimeError&) {
                    ++raised;
                }
                try {
                    fut.set_exception(std::make_exception_ptr(asyncio::ValueError("x")));
                } catch (const asyncio::RuntimeError&) {
                    ++raised;
                }
                try {
                    fut.cancel();
                } catch (const asyncio::RuntimeError&) {
                    ++raised;
                }
                lonely.set_result(3);
            });
            th.join();
            EXPECT_FALSE(fut.done());
            EXPECT_EQ(lonely.result(), 3);
            fut.set_result(2);
            EXPECT_EQ(co_await waiter, 2);
        },
        asyncio::testing::RunOptions{.debug = true});
    EXPECT_EQ(raised, 3);
}

// A create_task() refused from another thread drops its coroutine unrun:
// reported as never awaited (Python warns for it too), on stderr since the
// loop's handler may only run on the loop's thread; the coroutine's frame is
// freed (LSan).
TEST(DebugThread, CreateTaskRefusedFromAnotherThreadReportsTheDroppedCoroutine) {
    bool raised = false;
    Reports r;
    std::string err;
    run_test(
        [&]() -> Coro<> {
            auto& loop = asyncio::get_running_loop();
            r.install(loop);
            ::testing::internal::CaptureStderr();
            std::thread th([&] {
                try {
                    loop.create_task(nothing());
                } catch (const asyncio::RuntimeError&) {
                    raised = true;
                }
            });
            th.join();
            err = ::testing::internal::GetCapturedStderr();
            co_return;
        },
        asyncio::testing::RunOptions{.debug = true});
    EXPECT_TRUE(raised);
    EXPECT_NE(err.find("coroutine was never awaited"), std::string::npos) << err;
    EXPECT_EQ(r.count("never awaited"), 0u);  // not the handler: that would run on the wrong thread
}

// create_task() on a closed loop raises; in debug mode the dropped coroutine
// is reported (there is no running loop to find it otherwise).
TEST(DebugReports, CreateTaskOnAClosedDebugLoopReportsTheDroppedCoroutine) {
    EventLoop loop;
    loop.set_debug(true);
    loop.close();
    ::testing::internal::CaptureStderr();
    EXPECT_THROW(loop.create_task(nothing()), asyncio::RuntimeError);
    EXPECT_THROW(loop.create_task(nothing(), "named"), asyncio::RuntimeError);
    std::string err = ::testing::internal::GetCapturedStderr();
    std::size_t n = 0;
    for (std::size_t at = err.find("coroutine was never awaited"); at != std::string::npos;
         at = err.find("coroutine was never awaited", at + 1))
        ++n;
    EXPECT_EQ(n, 2u) << err;
}

TEST(DebugThread, CallSoonThreadsafeIsAllowedInDebugMode) {
    run_test(
        [&]() -> Coro<> {
            auto& loop = asyncio::get_running_loop();
            auto fut = loop.create_future<int>();
            std::thread th([&loop, fut] {
                loop.call_soon_threadsafe([fut]() mutable { fut.set_result(5); });
            });
            EXPECT_EQ(co_await fut, 5);
            th.join();
        },
        asyncio::testing::RunOptions{.debug = true});
}

// ---- ASYNCIO_DEBUG ---------------------------------------------------------------

TEST(DebugEnv, AsyncioDebugEnablesDebugMode) {
    {
        EnvGuard env("ASYNCIO_DEBUG", "1");
        EventLoop loop;
        EXPECT_TRUE(loop.get_debug());
        EXPECT_TRUE(asyncio::run([]() -> Coro<bool> { co_return asyncio::get_running_loop().get_debug(); }()));
    }
    {
        EnvGuard env("ASYNCIO_DEBUG", nullptr);
        EventLoop loop;
        EXPECT_FALSE(loop.get_debug());
    }
    {
        EnvGuard env("ASYNCIO_DEBUG", "1");
        // run(main, false) overrides the environment, as Python's run(debug=False).
        EXPECT_FALSE(asyncio::run([]() -> Coro<bool> { co_return asyncio::get_running_loop().get_debug(); }(), false));
    }
}
