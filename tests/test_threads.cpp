// Tests for asyncio.threads and its helpers: to_thread, run_in_executor, the
// default executor, ThreadPoolExecutor, ConcurrentFuture,
// run_coroutine_threadsafe and wrap_future.
// Spec: CPython 3.12 Lib/test/test_asyncio/test_threads.py, test_futures.py
// (wrap_future), test_tasks.py (RunCoroutineThreadsafeTests) and
// Lib/test/test_concurrent_futures.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/run_test.hpp"

using asyncio::testing::run_test;

namespace {

// A one-shot gate a worker thread blocks on until the test opens it.
struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open_ = false;
    void open() {
        {
            std::lock_guard<std::mutex> lk(mu);
            open_ = true;
        }
        cv.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [this] { return open_; });
    }
};

int twice(int x) { return 2 * x; }

int fail_with_value_error(int) { throw asyncio::ValueError("bad value"); }

// ---- to_thread ----------------------------------------------------------------

TEST(ToThread, GivesTheFunctionsResult) {
    int got = 0;
    run_test([&]() -> asyncio::Coro<> { got = co_await asyncio::to_thread(twice, 21); });
    EXPECT_EQ(got, 42);
}

TEST(ToThread, RunsOnAnotherThread) {
    std::thread::id worker;
    run_test([&]() -> asyncio::Coro<> {
        worker = co_await asyncio::to_thread([] { return std::this_thread::get_id(); });
    });
    EXPECT_NE(worker, std::this_thread::get_id());
}

TEST(ToThread, ExceptionPropagatesWithItsType) {
    std::string msg;
    run_test([&]() -> asyncio::Coro<> {
        try {
            co_await asyncio::to_thread(fail_with_value_error, 1);
        } catch (const asyncio::ValueError& e) {
            msg = e.what();
        }
    });
    EXPECT_EQ(msg, "bad value");
}

TEST(ToThread, VoidFunctionAndReferenceArguments) {
    int target = 0;
    run_test([&]() -> asyncio::Coro<> {
        co_await asyncio::to_thread([](int& t, int v) { t = v; }, std::ref(target), 7);
    });
    EXPECT_EQ(target, 7);
}

TEST(ToThread, MoveOnlyResult) {
    int got = 0;
    run_test([&]() -> asyncio::Coro<> {
        std::unique_ptr<int> p = co_await asyncio::to_thread([] { return std::make_unique<int>(5); });
        got = *p;
    });
    EXPECT_EQ(got, 5);
}

TEST(ToThread, IsLazyLikeACoroutine) {
    std::atomic<bool> ran{false};
    run_test([&]() -> asyncio::Coro<> {
        {
            [[maybe_unused]] auto never = asyncio::to_thread([&ran] { ran = true; });
        }  // dropped without being awaited: nothing was submitted
        co_await asyncio::sleep(0);
    });
    EXPECT_FALSE(ran.load());
}

asyncio::Coro<> await_blocked(Gate* started, Gate* gate, std::atomic<bool>* finished, bool* cancelled) {
    try {
        co_await asyncio::to_thread([started, gate, finished] {
            started->open();
            gate->wait();
            finished->store(true);
            return 1;
        });
    } catch (const asyncio::CancelledError&) {
        *cancelled = true;
        throw;
    }
}

TEST(ToThread, CancelledAwaiterGetsCancelledErrorWhileTheThreadRunsOn) {
    Gate started, gate;
    std::atomic<bool> finished{false};
    bool cancelled = false;
    bool task_cancelled = false;
    run_test([&]() -> asyncio::Coro<> {
        auto task = asyncio::create_task(await_blocked(&started, &gate, &finished, &cancelled));
        co_await asyncio::to_thread([&started] { started.wait(); });  // the call is running
        task.cancel();
        try {
            co_await task;
        } catch (const asyncio::CancelledError&) {
            task_cancelled = true;
        }
        EXPECT_FALSE(finished.load());  // the thread is still blocked: cancel did not wait for it
        gate.open();
    });
    // The loop's close joined the default executor: the call ran to its end.
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(task_cancelled);
    EXPECT_TRUE(finished.load());
}

// ---- run_in_executor and executors ------------------------------------------------

TEST(RunInExecutor, NullptrUsesTheDefaultExecutor) {
    int got = 0;
    run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        asyncio::Future<int> f = loop.run_in_executor(nullptr, twice, 4);
        got = co_await f;
    });
    EXPECT_EQ(got, 8);
}

TEST(RunInExecutor, ExplicitThreadPoolExecutor) {
    asyncio::ThreadPoolExecutor pool(2);
    int got = 0;
    run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto a = loop.run_in_executor(&pool, twice, 1);
        auto b = loop.run_in_executor(&pool, twice, 2);
        got = co_await a + co_await b;
    });
    EXPECT_EQ(got, 6);
    EXPECT_EQ(pool.max_workers(), 2u);
}

TEST(RunInExecutor, CancelBeforeStartNeverRunsTheCall) {
    asyncio::ThreadPoolExecutor pool(1);
    Gate gate;
    std::atomic<bool> second_ran{false};
    bool raised = false;
    run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto busy = loop.run_in_executor(&pool, [&gate] { gate.wait(); });
        auto queued = loop.run_in_executor(&pool, [&second_ran] { second_ran = true; });
        EXPECT_TRUE(queued.cancel());
        try {
            co_await queued;
        } catch (const asyncio::CancelledError&) {
            raised = true;
        }
        gate.open();
        co_await busy;
    });
    pool.shutdown(true);
    EXPECT_TRUE(raised);
    EXPECT_FALSE(second_ran.load());
}

TEST(RunInExecutor, AfterShutdownDefaultExecutorRaisesRuntimeError) {
    std::atomic<int> done{0};
    bool raised = false;
    run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto f = loop.run_in_executor(nullptr, [&done] { ++done; });
        co_await loop.shutdown_default_executor();
        EXPECT_EQ(done.load(), 1);  // shutdown waited for the queued call
        co_await f;
        try {
            auto g = loop.run_in_executor(nullptr, [] {});
            co_await g;
        } catch (const asyncio::RuntimeError& e) {
            raised = std::string(e.what()) == "Executor shutdown has been called";
        }
    });
    EXPECT_TRUE(raised);
}

asyncio::Coro<> shut_down_default(bool* cancelled) {
    try {
        co_await asyncio::get_running_loop().shutdown_default_executor();
    } catch (const asyncio::CancelledError&) {
        *cancelled = true;
        throw;
    }
}

TEST(RunInExecutor, CancelledShutdownDefaultExecutorStillShutsDown) {
    Gate started, gate;
    std::atomic<bool> finished{false};
    bool cancelled = false, refused = false;
    run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto busy = loop.run_in_executor(nullptr, [&] {
            started.open();
            gate.wait();
            finished = true;
        });
        co_await asyncio::to_thread([&started] { started.wait(); });
        auto shutter = asyncio::create_task(shut_down_default(&cancelled));
        co_await asyncio::sleep(0);
        shutter.cancel();
        try {
            co_await shutter;
        } catch (const asyncio::CancelledError&) {
        }
        try {
            loop.default_executor();
        } catch (const asyncio::RuntimeError&) {
            refused = true;
        }
        gate.open();
        co_await busy;  // the shutdown still let queued work finish
    });
    EXPECT_TRUE(cancelled);
    EXPECT_TRUE(refused);
    EXPECT_TRUE(finished.load());
}

TEST(ThreadPoolExecutor, SubmitGivesAConcurrentFuture) {
    asyncio::ThreadPoolExecutor pool(3);
    std::vector<asyncio::ConcurrentFuture<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(twice, i));
    int sum = 0;
    for (auto& f : fs) sum += f.result();
    EXPECT_EQ(sum, 2 * (19 * 20 / 2));
}

TEST(ThreadPoolExecutor, ShutdownWithCancelFuturesCancelsQueuedWork) {
    asyncio::ThreadPoolExecutor pool(1);
    Gate started, gate;
    auto busy = pool.submit([&] {
        started.open();
        gate.wait();
    });
    auto queued = pool.submit([] { return 1; });
    started.wait();
    pool.shutdown(false, true);  // the queued call is cancelled, the running one goes on
    EXPECT_TRUE(queued.cancelled());
    EXPECT_FALSE(busy.done());
    gate.open();
    pool.shutdown(true);
    EXPECT_TRUE(queued.cancelled());
    EXPECT_TRUE(busy.done());
    EXPECT_FALSE(busy.cancelled());
}

// Python: ThreadPoolExecutor(max_workers=0) and (-1) raise ValueError; None
// means the default size.
TEST(ThreadPoolExecutor, ZeroOrNegativeWorkersRaiseValueError) {
    EXPECT_THROW(asyncio::ThreadPoolExecutor(std::size_t{0}), asyncio::ValueError);
    EXPECT_THROW(asyncio::ThreadPoolExecutor(0), asyncio::ValueError);
    EXPECT_THROW(asyncio::ThreadPoolExecutor(-1), asyncio::ValueError);
    try {
        asyncio::ThreadPoolExecutor pool(0);
    } catch (const asyncio::ValueError& e) {
        EXPECT_STREQ(e.what(), "max_workers must be greater than 0");
    }
    asyncio::ThreadPoolExecutor dflt;
    EXPECT_GE(dflt.max_workers(), 5u);
    EXPECT_LE(dflt.max_workers(), 32u);
    EXPECT_EQ(asyncio::ThreadPoolExecutor(3).max_workers(), 3u);
}

TEST(ThreadPoolExecutor, SubmitAfterShutdownRaises) {
    asyncio::ThreadPoolExecutor pool(1);
    pool.shutdown();
    EXPECT_THROW(pool.submit([] {}), asyncio::RuntimeError);
}

// ---- ConcurrentFuture -----------------------------------------------------------------

TEST(ConcurrentFuture, ResultWithTimeoutRaisesTimeoutError) {
    asyncio::ConcurrentFuture<int> f;
    EXPECT_THROW(f.result(0.001), asyncio::TimeoutError);
    EXPECT_THROW(f.result(std::chrono::milliseconds(1)), asyncio::TimeoutError);
    f.set_result(3);
    EXPECT_EQ(f.result(0.001), 3);
    EXPECT_THROW(f.set_result(4), asyncio::InvalidStateError);
}

TEST(ConcurrentFuture, CancelOnlyWhilePending) {
    asyncio::ConcurrentFuture<int> f;
    EXPECT_TRUE(f.set_running_or_notify_cancel());
    EXPECT_TRUE(f.running());
    EXPECT_FALSE(f.cancel());
    f.set_exception(std::make_exception_ptr(asyncio::ValueError("x")));
    EXPECT_THROW(f.result(), asyncio::ValueError);
    EXPECT_TRUE(f.exception() != nullptr);

    asyncio::ConcurrentFuture<> g;
    EXPECT_TRUE(g.cancel());
    EXPECT_TRUE(g.cancel());  // already cancelled: still true, as Python
    EXPECT_TRUE(g.cancelled());
    EXPECT_THROW(g.result(), asyncio::CancelledError);
    EXPECT_FALSE(g.set_running_or_notify_cancel());
}

TEST(ConcurrentFuture, DoneCallbacksRunOnceInOrder) {
    asyncio::ConcurrentFuture<int> f;
    std::vector<int> seen;
    f.add_done_callback([&seen](asyncio::ConcurrentFuture<int>& h) { seen.push_back(h.result()); });
    f.add_done_callback([&seen](asyncio::ConcurrentFuture<int>&) { seen.push_back(-1); });
    f.set_result(9);
    f.add_done_callback([&seen](asyncio::ConcurrentFuture<int>&) { seen.push_back(-2); });  // at once
    EXPECT_EQ(seen, (std::vector<int>{9, -1, -2}));
}

TEST(ConcurrentFuture, ThrowingDoneCallbackIsReportedAndTheOthersRun) {
    asyncio::ConcurrentFuture<int> f;
    std::vector<int> seen;
    f.add_done_callback([](asyncio::ConcurrentFuture<int>&) { throw asyncio::ValueError("cb broke"); });
    f.add_done_callback([&seen](asyncio::ConcurrentFuture<int>& h) { seen.push_back(h.result()); });
    testing::internal::CaptureStderr();
    f.set_result(5);
    f.add_done_callback([](asyncio::ConcurrentFuture<int>&) { throw asyncio::ValueError("late cb broke"); });
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(seen, (std::vector<int>{5}));
    EXPECT_NE(err.find("exception calling callback for <ConcurrentFuture>: cb broke"), std::string::npos) << err;
    EXPECT_NE(err.find("late cb broke"), std::string::npos) << err;
}

// ---- wrap_future -------------------------------------------------------------------------

TEST(WrapFuture, ResultSetFromAnotherThreadReachesTheLoop) {
    int got = 0;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::ConcurrentFuture<int> cf;
        asyncio::Future<int> f = asyncio::wrap_future(cf);
        std::thread setter([cf]() mutable { cf.set_result(11); });
        got = co_await f;
        setter.join();
    });
    EXPECT_EQ(got, 11);
}

TEST(WrapFuture, CancellingTheAsyncioFutureCancelsThePendingSource) {
    asyncio::ConcurrentFuture<int> cf;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::Future<int> f = asyncio::wrap_future(cf);
        f.cancel();
        co_await asyncio::sleep(0);  // let the bridge deliver and free itself
    });
    EXPECT_TRUE(cf.cancelled());
}

TEST(WrapFuture, ExceptionIsCopied) {
    bool raised = false;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::ConcurrentFuture<int> cf;
        cf.set_exception(std::make_exception_ptr(asyncio::ValueError("v")));
        try {
            co_await asyncio::wrap_future(cf);
        } catch (const asyncio::ValueError&) {
            raised = true;
        }
    });
    EXPECT_TRUE(raised);
}

// ---- run_coroutine_threadsafe ----------------------------------------------------------------

asyncio::Coro<int> add_later(int a, int b) {
    co_await asyncio::sleep(0);
    co_return a + b;
}

asyncio::Coro<int> raise_later() {
    co_await asyncio::sleep(0);
    throw asyncio::ValueError("from the loop");
}

asyncio::Coro<> wait_forever(std::atomic<bool>* saw_cancel) {
    asyncio::Future<> never = asyncio::get_running_loop().create_future<void>();
    try {
        co_await never;
    } catch (const asyncio::CancelledError&) {
        saw_cancel->store(true);
        throw;
    }
}

TEST(RunCoroutineThreadsafe, FromSeveralThreads) {
    constexpr int kThreads = 4;
    constexpr int kCalls = 50;
    std::atomic<long> total{0};
    run_test([&]() -> asyncio::Coro<> {
        asyncio::EventLoop* loop = &asyncio::get_running_loop();
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([loop, t, &total] {
                for (int i = 0; i < kCalls; ++i) {
                    auto f = asyncio::run_coroutine_threadsafe(add_later(t, i), *loop);
                    total += f.result();
                }
            });
        }
        // Join without blocking the loop, which must keep running the coroutines.
        co_await asyncio::to_thread([&threads] {
            for (auto& th : threads) th.join();
        });
    });
    long expected = 0;
    for (int t = 0; t < kThreads; ++t)
        for (int i = 0; i < kCalls; ++i) expected += t + i;
    EXPECT_EQ(total.load(), expected);
}

TEST(RunCoroutineThreadsafe, ExceptionPropagatesToTheWaitingThread) {
    std::string msg;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::EventLoop* loop = &asyncio::get_running_loop();
        co_await asyncio::to_thread([loop, &msg] {
            auto f = asyncio::run_coroutine_threadsafe(raise_later(), *loop);
            try {
                f.result();
            } catch (const asyncio::ValueError& e) {
                msg = e.what();
            }
        });
    });
    EXPECT_EQ(msg, "from the loop");
}

TEST(RunCoroutineThreadsafe, TakesWaitForsResult) {
    int got = 0;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::EventLoop* loop = &asyncio::get_running_loop();
        co_await asyncio::to_thread([loop, &got] {
            // wait_for() reads the clock only when awaited: fine off the loop thread.
            got = asyncio::run_coroutine_threadsafe(asyncio::wait_for(add_later(2, 3), 10.0), *loop).result();
        });
    });
    EXPECT_EQ(got, 5);
}

TEST(RunCoroutineThreadsafe, ResultTimeoutThenCancelCancelsTheTask) {
    std::atomic<bool> saw_cancel{false};
    bool timed_out = false, cancel_ok = false, result_cancelled = false;
    run_test([&]() -> asyncio::Coro<> {
        asyncio::EventLoop* loop = &asyncio::get_running_loop();
        co_await asyncio::to_thread([&, loop]() {
            auto f = asyncio::run_coroutine_threadsafe(wait_forever(&saw_cancel), *loop);
            try {
                f.result(0.01);
            } catch (const asyncio::TimeoutError&) {
                timed_out = true;
            }
            cancel_ok = f.cancel();
            try {
                f.result();
            } catch (const asyncio::CancelledError&) {
                result_cancelled = true;
            }
        });
        // The task.cancel() posted by cancel() runs before this step.
        for (int i = 0; i < 3 && !saw_cancel.load(); ++i) co_await asyncio::sleep(0);
    });
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(cancel_ok);
    EXPECT_TRUE(result_cancelled);
    EXPECT_TRUE(saw_cancel.load());
}

TEST(DefaultExecutor, ClosedLoopHasNone) {
    asyncio::EventLoop loop;
    loop.close();
    EXPECT_THROW(loop.default_executor(), asyncio::RuntimeError);
}

TEST(RunCoroutineThreadsafe, ClosedLoopRaisesRuntimeError) {
    asyncio::EventLoop loop;
    loop.close();
    EXPECT_THROW(asyncio::run_coroutine_threadsafe(add_later(1, 2), loop), asyncio::RuntimeError);
}

// ---- the default executor's lifetime ---------------------------------------------------------------

TEST(DefaultExecutor, RunJoinsItsThreadsAtClose) {
    std::atomic<bool> finished{false};
    asyncio::run([&finished]() -> asyncio::Coro<> {
        // Fire and forget: the Future is dropped, the call still runs to its end.
        asyncio::get_running_loop().run_in_executor(nullptr, [&finished] {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            finished = true;
        });
        co_return;
    }());
    EXPECT_TRUE(finished.load());
}

// ---- lifetimes across threads (from an audit against CPython 3.12) ----------------------------

// A custom executor outlives the loop; its job finishes after asyncio::run()
// returned (the awaiting wait_for timed out). Delivering the result used a
// pointer to the destroyed loop; now it finds the loop gone and drops it.
TEST(Lifetimes, AJobFinishingAfterItsLoopIsGoneIsDropped) {
    asyncio::ThreadPoolExecutor pool(1);
    Gate gate;
    std::atomic<bool> job_done{false};
    bool timed_out = false;
    auto loop = std::make_unique<asyncio::EventLoop>();  // on the heap: ASan sees a use after it is freed
    loop->run_until_complete([](asyncio::ThreadPoolExecutor* p, Gate* g, std::atomic<bool>* done, bool* to) -> asyncio::Coro<> {
        auto fut = asyncio::get_running_loop().run_in_executor(p, [g, done] {
            g->wait();
            done->store(true);
            return 1;
        });
        try {
            co_await asyncio::wait_for(std::move(fut), 0.01);
        } catch (const asyncio::TimeoutError&) {
            *to = true;
        }
    }(&pool, &gate, &job_done, &timed_out));
    loop->close();
    loop.reset();
    EXPECT_TRUE(timed_out);
    gate.open();
    pool.shutdown(true);  // the job ends and posts to a loop that no longer exists
    EXPECT_TRUE(job_done.load());
}

// Cancelling a run_coroutine_threadsafe() future after its loop was
// destroyed (the loop never ran the coroutine) touches nothing of the loop.
TEST(Lifetimes, CancellingAfterTheLoopIsDestroyed) {
    auto loop = std::make_unique<asyncio::EventLoop>();
    auto f = asyncio::run_coroutine_threadsafe(add_later(1, 2), *loop);
    loop.reset();
    EXPECT_THROW(f.result(0.001), asyncio::TimeoutError);
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.cancelled());
}

// Python's asyncio.run() shuts the default executor down while the loop
// still runs: a job that waits for the loop finishes. It used to be joined
// after the loop had stopped, and such a job waited forever (here: until
// its 5 s timeout).
TEST(Lifetimes, RunShutsTheDefaultExecutorDownWhileTheLoopRuns) {
    std::atomic<int> got{0};
    std::atomic<bool> main_done{false};
    asyncio::run([](std::atomic<int>* out, std::atomic<bool>* done) -> asyncio::Coro<> {
        asyncio::EventLoop* lp = &asyncio::get_running_loop();
        (void)lp->run_in_executor(nullptr, [lp, out, done] {
            while (!done->load()) std::this_thread::yield();  // asyncio::run() is shutting down
            try {
                out->store(asyncio::run_coroutine_threadsafe(add_later(1, 2), *lp).result(5.0));
            } catch (const asyncio::TimeoutError&) {
                out->store(-1);
            }
        });
        done->store(true);
        co_return;
    }(&got, &main_done));
    EXPECT_EQ(got.load(), 3);
}

// set_default_executor() does not shut the replaced pool down on the loop's
// thread (Python does not shut it down at all): its running job may wait
// for the loop. It used to join it there, blocking the loop.
TEST(Lifetimes, ReplacingTheDefaultExecutorDoesNotWaitForItsJobs) {
    std::atomic<int> seen{0};
    asyncio::run([](std::atomic<int>* out) -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto gate = std::make_shared<std::promise<void>>();
        std::shared_future<void> opened = gate->get_future().share();
        (void)loop.run_in_executor(nullptr, [opened, out] {
            out->store(opened.wait_for(std::chrono::seconds(5)) == std::future_status::ready ? 1 : -1);
        });
        loop.set_default_executor(std::make_shared<asyncio::ThreadPoolExecutor>(1));
        gate->set_value();  // only reached if the line above did not wait for the job
        co_await asyncio::to_thread([] {});
    }(&seen));
    EXPECT_EQ(seen.load(), 1);
}

// A job that shuts down its own pool, waiting: Python raises RuntimeError
// ("cannot join current thread") in the job; the pool is shut down and its
// owner joins every thread. It used to detach the thread, which then ran on
// in a freed pool.
TEST(Lifetimes, ShutdownFromItsOwnJobRaises) {
    std::string what;
    {
        asyncio::ThreadPoolExecutor pool(2);
        auto f = pool.submit([&pool] { pool.shutdown(true); });
        try {
            f.result();
        } catch (const asyncio::RuntimeError& e) {
            what = e.what();
        }
        EXPECT_THROW(pool.submit([] {}), asyncio::RuntimeError);
    }
    EXPECT_EQ(what, "cannot join current thread");
}

// run_in_executor() on a closed loop raises before submitting (Python's
// _check_closed comes first): the call never runs.
TEST(Lifetimes, RunInExecutorOnAClosedLoopRunsNothing) {
    asyncio::ThreadPoolExecutor pool(1);
    std::atomic<int> ran{0};
    asyncio::EventLoop loop;
    loop.close();
    EXPECT_THROW(loop.run_in_executor(&pool, [&ran] { ++ran; }), asyncio::RuntimeError);
    pool.shutdown(true);
    EXPECT_EQ(ran.load(), 0);
}

// A timeout beyond what a lock wait takes (Python: PY_TIMEOUT_MAX) raises
// OverflowError; it used to overflow the deadline and time out at once.
TEST(ConcurrentFuture, HugeTimeoutsRaiseOverflowError) {
    asyncio::ConcurrentFuture<int> f;
    EXPECT_THROW(f.result(1e10), asyncio::OverflowError);
    EXPECT_THROW(f.result(std::numeric_limits<double>::infinity()), asyncio::OverflowError);
    EXPECT_THROW((void)f.exception(1e300), asyncio::OverflowError);
    f.set_result(1);
    EXPECT_EQ(f.result(1e9), 1);
}

}  // namespace
