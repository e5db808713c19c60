// Tests for asyncio.tasks: Coro, Task, create_task, cancellation,
// current_task/all_tasks, done callbacks and sleep.
// Spec: CPython 3.12 Lib/test/test_asyncio/test_tasks.py (3.13 where it fixed bugs).
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <chrono>
#include <set>
#include <stdexcept>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include "support/run_test.hpp"

using namespace std::chrono_literals;
using asyncio::AnyTask;
using asyncio::CancelledError;
using asyncio::Coro;
using asyncio::Task;
using asyncio::testing::run_test;

namespace {

using Log = std::vector<std::string>;

Coro<int> value_after_yield(int v) {
    co_await asyncio::sleep(0);
    co_return v;
}

Coro<> sleeper(Log* log, std::string name) {
    log->push_back(name + " start");
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const CancelledError& e) {
        log->push_back(name + " cancelled: " + e.what());
        throw;
    }
    log->push_back(name + " woke");  // never
}

Coro<int> swallow_cancel(Log* log) {
    try {
        co_await asyncio::sleep(3600.0);
    } catch (const CancelledError&) {
        log->push_back("swallowed");
    }
    co_await asyncio::sleep(0);  // goes on, not cancelled again
    log->push_back("went on");
    co_return 99;
}

Coro<int> boom() {
    co_await asyncio::sleep(0);
    throw asyncio::ValueError("boom");
}

Coro<> mark(bool* ran) {
    *ran = true;
    co_return;
}

int task_number(const AnyTask& t) {
    std::string n = t.get_name();
    EXPECT_EQ(n.rfind("Task-", 0), 0u) << n;
    return std::stoi(n.substr(5));
}

}  // namespace

// ---- names ----------------------------------------------------------------

TEST(TaskName, DefaultNamesAreTaskNIncreasing) {
    run_test([]() -> Coro<> {
        auto a = asyncio::create_task(value_after_yield(1));
        auto b = asyncio::create_task(value_after_yield(2));
        auto c = asyncio::create_task(value_after_yield(3));
        EXPECT_EQ(task_number(b), task_number(a) + 1);
        EXPECT_EQ(task_number(c), task_number(b) + 1);
        EXPECT_GT(task_number(asyncio::current_task()), 0);
        co_await a;
        co_await b;
        co_await c;
    });
}

TEST(TaskName, SetNameAndNamedCreateTask) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(1), "worker");
        EXPECT_EQ(t.get_name(), "worker");
        t.set_name("renamed");
        EXPECT_EQ(t.get_name(), "renamed");
        auto u = asyncio::get_running_loop().create_task(value_after_yield(2), "member");
        EXPECT_EQ(u.get_name(), "member");
        co_await t;
        co_await u;
    });
}

// Names and cancellation messages live in a side table, not in every task
// (see FutureBase::extra()): they must be found while the task lives, even
// after its loop is gone, and freed with it.
TEST(TaskName, NamesAndCancelMessagesAreFreedWithTheirFutures) {
    const std::size_t before = asyncio::detail::extra_table_size();
    run_test([]() -> Coro<> {
        auto a = asyncio::create_task(value_after_yield(1), "a");
        auto b = asyncio::create_task(value_after_yield(2));
        b.set_name("b");
        auto c = asyncio::create_task(value_after_yield(3));
        EXPECT_TRUE(c.cancel("stop"));
        auto f = asyncio::get_running_loop().create_future<int>();
        EXPECT_TRUE(f.cancel("future stop"));
        EXPECT_EQ(a.get_name(), "a");
        EXPECT_EQ(b.get_name(), "b");
        co_await a;
        co_await b;
        try {
            co_await c;
            ADD_FAILURE() << "c was cancelled";
        } catch (const asyncio::CancelledError& e) {
            EXPECT_STREQ(e.what(), "stop");
        }
        try {
            (void)f.result();
            ADD_FAILURE() << "f was cancelled";
        } catch (const asyncio::CancelledError& e) {
            EXPECT_STREQ(e.what(), "future stop");
        }
    });
    EXPECT_EQ(asyncio::detail::extra_table_size(), before);

    asyncio::Task<int> kept;
    {
        asyncio::EventLoop loop;
        loop.set_exception_handler([](asyncio::EventLoop&, const asyncio::ExceptionContext&) {});
        kept = loop.create_task(value_after_yield(4), "kept");
    }
    EXPECT_EQ(kept.get_name(), "kept");  // the loop is gone, the name is not
    kept = asyncio::Task<int>();
    EXPECT_EQ(asyncio::detail::extra_table_size(), before);
}

// ---- scheduling --------------------------------------------------------------

TEST(CreateTask, FirstStepIsScheduledNotEager) {
    run_test([]() -> Coro<> {
        Log log;
        asyncio::get_running_loop().call_soon([&] { log.push_back("call_soon before"); });
        bool ran = false;
        auto t = asyncio::create_task(mark(&ran));
        EXPECT_FALSE(ran);
        EXPECT_FALSE(t.done());
        co_await asyncio::sleep(0);
        EXPECT_TRUE(ran);
        EXPECT_TRUE(t.done());
        EXPECT_EQ(log, (Log{"call_soon before"}));
    });
}

TEST(CreateTask, OutsideARunningLoopRaises) {
    try {
        auto t = asyncio::create_task(value_after_yield(1));
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "no running event loop");
    }
}

TEST(CreateTask, WrapsOtherAwaitables) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(asyncio::sleep(0.0, std::string("from sleep")));
        EXPECT_EQ(co_await t, "from sleep");
    });
}

TEST(CreateTask, LoopKeepsATaskAliveWithoutHandles) {
    bool ran = false;
    run_test([&]() -> Coro<> {
        {
            // Every handle is dropped at once; the loop must still run it.
            (void)asyncio::create_task(value_after_yield(1));
            auto t = asyncio::create_task(mark(&ran));
        }
        EXPECT_EQ(asyncio::all_tasks().size(), 3u);
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        EXPECT_EQ(asyncio::all_tasks().size(), 1u);
    });
    EXPECT_TRUE(ran);
}

namespace {
Coro<> log_first_step(std::vector<int>* order, int i) {
    order->push_back(i);
    co_return;
}
}  // namespace

TEST(CreateTask, ManyInOneStepRunInCreationOrderWithIncreasingNames) {
    // More tasks than the ready queue holds (1024 at first) and than a
    // thread's block of task numbers (4096): the inline create_task()
    // falls back to its out-of-line path for both.
    const int n = 5000;
    std::vector<int> order;
    run_test([&]() -> Coro<> {
        std::vector<Task<>> tasks;
        for (int i = 0; i < n; ++i) tasks.push_back(asyncio::create_task(log_first_step(&order, i)));
        EXPECT_TRUE(order.empty());  // scheduled, not run
        for (int i = 1; i < n; ++i) EXPECT_GT(task_number(tasks[i]), task_number(tasks[i - 1]));
        for (auto& t : tasks) co_await t;
    });
    ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(order[i], i);
}

TEST(CreateTask, WakingManyTasksFromOneCallbackGrowsTheReadyQueue) {
    // Every wake-up pushes a step; 3000 in one callback overflow the ready
    // queue's first ring, so most go through its growing path, in order.
    const int n = 3000;
    std::vector<int> order;
    run_test([&]() -> Coro<> {
        std::vector<asyncio::Future<int>> futs(n);
        std::vector<Task<>> tasks;
        for (int i = 0; i < n; ++i) {
            tasks.push_back(asyncio::create_task([](asyncio::Future<int> f, std::vector<int>* out) -> Coro<> {
                out->push_back(co_await f);
            }(futs[i], &order)));
        }
        co_await asyncio::sleep(0);  // every task waits on its future
        asyncio::get_running_loop().call_soon([&futs] {
            for (std::size_t i = 0; i < futs.size(); ++i) futs[i].set_result(static_cast<int>(i));
        });
        for (auto& t : tasks) co_await t;
    });
    ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(order[i], i);
}

TEST(TaskStep, DoneOrMustCancelReadsStateAndMustCancelOnly) {
    // The step's entry and exit test state_ and must_cancel_ with one
    // 16-bit load (FutureBase::done_or_must_cancel): check that it sees
    // exactly those two, whatever the other flags.
    using asyncio::detail::FutureBase;
    FutureBase f;
    EXPECT_FALSE(f.done_or_must_cancel());
    f.log_traceback_ = f.is_task_ = f.throw_cancel_ = f.started_ = f.step_scheduled_ = f.parked_ = f.has_extra_ = true;
    f.frame_offset_ = 0xffff;
    f.refs_ = 0xffffffffu;
    EXPECT_FALSE(f.done_or_must_cancel());
    f.must_cancel_ = true;
    EXPECT_TRUE(f.done_or_must_cancel());
    f.must_cancel_ = false;
    f.state_ = FutureBase::State::kCancelled;
    EXPECT_TRUE(f.done_or_must_cancel());
    f.state_ = FutureBase::State::kFinished;
    EXPECT_TRUE(f.done_or_must_cancel());
    FutureBase g;
    g.must_cancel_ = true;
    EXPECT_TRUE(g.done_or_must_cancel());
}

// ---- results and exceptions -----------------------------------------------------

TEST(TaskResult, AwaitGivesTheReturnValue) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(5));
        EXPECT_THROW((void)t.result(), asyncio::InvalidStateError);
        EXPECT_THROW((void)t.exception(), asyncio::InvalidStateError);
        EXPECT_EQ(co_await t, 5);
        EXPECT_EQ(t.result(), 5);
        EXPECT_EQ(t.exception(), nullptr);
        EXPECT_FALSE(t.cancel());  // done
        EXPECT_FALSE(t.cancelled());
    });
}

TEST(TaskResult, ExceptionPropagatesToTheAwaiter) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(boom());
        EXPECT_THROW(co_await t, asyncio::ValueError);
        EXPECT_TRUE(t.done());
        EXPECT_FALSE(t.cancelled());
        EXPECT_TRUE(t.exception());
        EXPECT_THROW((void)t.result(), asyncio::ValueError);
    });
}

TEST(TaskResult, AwaitingTwiceAndFromTwoTasks) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(8));
        auto w1 = asyncio::create_task([](Task<int> x) -> Coro<int> { co_return co_await x; }(t));
        auto w2 = asyncio::create_task([](Task<int> x) -> Coro<int> { co_return co_await x; }(t));
        EXPECT_EQ(co_await w1, 8);
        EXPECT_EQ(co_await w2, 8);
        EXPECT_EQ(co_await t, 8);
        EXPECT_EQ(co_await t, 8);
    });
}

TEST(TaskResult, TaskAwaitingItselfRaises) {
    run_test([]() -> Coro<> {
        AnyTask me = asyncio::current_task();
        try {
            co_await me;
            ADD_FAILURE() << "no exception";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_NE(std::string(e.what()).find("cannot await on itself"), std::string::npos) << e.what();
        }
    });
}

Coro<int> nested_leaf(int v) {
    if (v < 0) throw asyncio::ValueError("negative");
    co_return v * 2;
}
Coro<int> nested_mid(int v) {
    int a = co_await nested_leaf(v);
    co_await asyncio::sleep(0);
    co_return a + 1;
}

TEST(CoroAwait, NestedCoroutinesRunInlineAndPropagate) {
    run_test([]() -> Coro<> {
        EXPECT_EQ(co_await nested_mid(4), 9);
        EXPECT_THROW(co_await nested_mid(-1), asyncio::ValueError);
        EXPECT_EQ(asyncio::all_tasks().size(), 1u);  // no task was created
    });
}

Coro<> raise_cancelled_directly() {
    co_await asyncio::sleep(0);
    throw CancelledError("self-made");
}

TEST(TaskResult, RaisingCancelledErrorCancelsTheTask) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task(raise_cancelled_directly());
        try {
            co_await t;
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "self-made");
        }
        EXPECT_TRUE(t.cancelled());
    });
}

// ---- cancellation -------------------------------------------------------------

TEST(TaskCancel, RaisesAtTheSuspendedAwaitWithTheMessage) {
    Log log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task(sleeper(&log, "s"));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancel("enough"));
        EXPECT_FALSE(t.done());  // takes effect at its next step
        try {
            co_await t;
            ADD_FAILURE() << "no exception";
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "enough");
        }
        EXPECT_TRUE(t.cancelled());
        EXPECT_TRUE(t.done());
        EXPECT_FALSE(t.cancel());
    });
    EXPECT_EQ(log, (Log{"s start", "s cancelled: enough"}));
}

TEST(TaskCancel, BeforeTheFirstStepTheBodyNeverRuns) {
    run_test([]() -> Coro<> {
        bool ran = false;
        auto t = asyncio::create_task(mark(&ran));
        EXPECT_TRUE(t.cancel("early"));
        try {
            co_await t;
            ADD_FAILURE() << "no exception";
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "early");
        }
        EXPECT_FALSE(ran);
        EXPECT_TRUE(t.cancelled());
    });
}

Coro<> await_int_future(Log* log, asyncio::Future<int> f) {
    try {
        co_await f;
    } catch (const CancelledError& e) {
        log->push_back(std::string("cancelled: ") + e.what());
        throw;
    }
}

// Await t; the message of the CancelledError it raises ("<no exception>" if none).
Coro<std::string> cancel_message_of(Task<> t) {
    try {
        co_await t;
    } catch (const CancelledError& e) {
        co_return e.what();
    }
    co_return "<no exception>";
}

// CPython's Task.__step keeps the CancelledError the interrupted wait raises;
// a later cancel() only sets _must_cancel, whose message is used when the
// step has no CancelledError of its own.
TEST(TaskCancel, ALaterCancelKeepsTheMessageOfTheOneAlreadyDelivered) {
    run_test([]() -> Coro<> {
        Log log;
        auto a = asyncio::create_task(sleeper(&log, "a"));
        auto b = asyncio::create_task(sleeper(&log, "b"));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(a.cancel("first"));
        EXPECT_TRUE(a.cancel("second"));  // still pending: counted, message kept
        EXPECT_EQ(a.cancelling(), 2);
        EXPECT_TRUE(b.cancel("first"));
        EXPECT_TRUE(b.cancel());  // no message does not clear it either
        EXPECT_EQ(co_await cancel_message_of(a), "first");
        EXPECT_EQ(co_await cancel_message_of(b), "first");
        // The awaited future was cancelled first: its CancelledError wins
        // over the task's own later cancel().
        auto f = asyncio::get_running_loop().create_future<int>();
        auto c = asyncio::create_task(await_int_future(&log, f));
        co_await asyncio::sleep(0);
        f.cancel("future's");
        EXPECT_TRUE(c.cancel("task's"));
        EXPECT_EQ(co_await cancel_message_of(c), "future's");
        // The future finished with a value: the task's cancel() raises its own.
        auto g = asyncio::get_running_loop().create_future<int>();
        auto d = asyncio::create_task(await_int_future(&log, g));
        co_await asyncio::sleep(0);
        g.set_result(1);
        EXPECT_TRUE(d.cancel("task's"));
        EXPECT_THROW(co_await d, CancelledError);
        EXPECT_EQ(log, (Log{"a start", "b start", "a cancelled: first", "b cancelled: first", "cancelled: future's",
                            "cancelled: task's"}));
    });
}

TEST(TaskCancel, CancelledTaskResultAndExceptionRaiseCancelledError) {
    run_test([]() -> Coro<> {
        Log log;
        auto t = asyncio::create_task(sleeper(&log, "s"));
        co_await asyncio::sleep(0);
        t.cancel("msg");
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancelled());
        try {
            t.result();
            ADD_FAILURE() << "no exception";
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "msg");
        }
        EXPECT_THROW((void)t.exception(), CancelledError);
    });
}

TEST(TaskCancel, TaskMayCatchAndGoOn) {
    Log log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task(swallow_cancel(&log));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(t.cancel());
        EXPECT_EQ(co_await t, 99);
        EXPECT_FALSE(t.cancelled());
        EXPECT_EQ(t.cancelling(), 1);  // Python: the count stays until uncancel()
    });
    EXPECT_EQ(log, (Log{"swallowed", "went on"}));
}

TEST(TaskCancel, CancellingAndUncancelCount) {
    run_test([]() -> Coro<> {
        Log log;
        auto t = asyncio::create_task(sleeper(&log, "s"));
        co_await asyncio::sleep(0);
        EXPECT_EQ(t.cancelling(), 0);
        EXPECT_TRUE(t.cancel());
        EXPECT_TRUE(t.cancel());  // still pending: counts again
        EXPECT_EQ(t.cancelling(), 2);
        EXPECT_EQ(t.uncancel(), 1);
        EXPECT_EQ(t.cancelling(), 1);
        EXPECT_THROW(co_await t, CancelledError);
        EXPECT_EQ(t.uncancel(), 0);
        EXPECT_EQ(t.uncancel(), 0);  // never below zero
    });
}

TEST(TaskCancel, UncancelBeforeFirstStepWithdrawsTheRequest) {
    // Python 3.13: uncancel() to zero clears the pending must_cancel.
    run_test([]() -> Coro<> {
        bool ran = false;
        auto t = asyncio::create_task(mark(&ran));
        t.cancel();
        EXPECT_EQ(t.uncancel(), 0);
        co_await t;
        EXPECT_TRUE(ran);
        EXPECT_FALSE(t.cancelled());
    });
}

TEST(TaskCancel, CancelAfterWakeupRaisesAtTheAwait) {
    // The sleep expired and the step is queued when cancel() arrives: the
    // timer can no longer be interrupted, so must_cancel makes the resumed
    // await raise (CPython's _must_cancel).
    run_test([]() -> Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        auto t = asyncio::create_task([](asyncio::Future<int> fut) -> Coro<int> { co_return co_await fut; }(f));
        co_await asyncio::sleep(0);
        f.set_result(1);  // t's step is now queued
        EXPECT_TRUE(t.cancel("late"));
        try {
            co_await t;
            ADD_FAILURE() << "no exception";
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "late");
        }
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(f.cancelled());
    });
}

Coro<int> await_task(Task<int> inner) { co_return co_await inner; }

TEST(TaskCancel, CancellingTheAwaiterCancelsTheAwaitedTask) {
    run_test([]() -> Coro<> {
        Log log;
        auto inner = asyncio::create_task(swallow_cancel(&log));
        auto sl = asyncio::create_task(sleeper(&log, "inner"));
        auto outer = asyncio::create_task([](Task<> t) -> Coro<> { co_await t; }(sl));
        co_await asyncio::sleep(0);
        outer.cancel("from outside");
        try {
            co_await outer;
        } catch (const CancelledError& e) {
            EXPECT_STREQ(e.what(), "from outside");
        }
        EXPECT_TRUE(sl.cancelled());
        EXPECT_TRUE(outer.cancelled());
        inner.cancel();
        co_await inner;
    });
}

TEST(TaskCancel, AwaitedTaskSwallowingTheCancelGivesItsResult) {
    // Python: outer's cancel() is forwarded to inner; inner catches it and
    // returns, so outer's await returns that value and outer is not cancelled.
    run_test([]() -> Coro<> {
        Log log;
        auto inner = asyncio::create_task(swallow_cancel(&log));
        auto outer = asyncio::create_task(await_task(inner));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(outer.cancel());
        EXPECT_EQ(co_await outer, 99);
        EXPECT_FALSE(outer.cancelled());
        EXPECT_EQ(inner.cancelling(), 1);
        EXPECT_EQ(log, (Log{"swallowed", "went on"}));
    });
}

TEST(TaskCancel, CancelNestedCoroutineRaisesAtTheInnermostAwait) {
    Log log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task([](Log* l) -> Coro<> {
            try {
                co_await sleeper(l, "nested");
            } catch (const CancelledError&) {
                l->push_back("outer frame saw it");
                throw;
            }
        }(&log));
        co_await asyncio::sleep(0);
        t.cancel("deep");
        EXPECT_THROW(co_await t, CancelledError);
    });
    EXPECT_EQ(log, (Log{"nested start", "nested cancelled: deep", "outer frame saw it"}));
}

// ---- current_task / all_tasks --------------------------------------------------

// The Python docs' idiom: keep references in a set, discard them when done.
TEST(TaskHandles, GoInSetsByIdentity) {
    run_test([]() -> Coro<> {
        std::unordered_set<Task<int>> background;
        std::set<Task<int>> ordered;
        for (int i = 0; i < 3; ++i) {
            auto t = asyncio::create_task(value_after_yield(i));
            background.insert(t);
            background.insert(t);  // the same task: one element
            ordered.insert(t);
            t.add_done_callback([&background](Task<int>& done) { background.erase(done); });
        }
        EXPECT_EQ(background.size(), 3u);
        EXPECT_EQ(ordered.size(), 3u);
        std::unordered_set<AnyTask> all;
        for (auto& t : asyncio::all_tasks()) all.insert(t);
        all.insert(asyncio::current_task());
        EXPECT_EQ(all.size(), 4u);  // the three and this one
        std::unordered_set<asyncio::Future<>> futures{asyncio::get_running_loop().create_future<>()};
        EXPECT_EQ(futures.size(), 1u);
        for (const auto& t : ordered) co_await t;
        co_await asyncio::sleep(0);  // the done callbacks
        EXPECT_TRUE(background.empty());
    });
}

TEST(CurrentTask, IsTheRunningTask) {
    run_test([]() -> Coro<> {
        auto t = asyncio::create_task([]() -> Coro<std::string> { co_return asyncio::current_task()->get_name(); }(), "me");
        EXPECT_EQ(co_await t, "me");
        AnyTask cur = asyncio::current_task();
        EXPECT_TRUE(static_cast<bool>(cur));
        EXPECT_FALSE(cur->done());
        EXPECT_EQ(cur->cancelling(), 0);
    });
}

TEST(CurrentTask, NullInAPlainCallback) {
    run_test([]() -> Coro<> {
        bool checked = false;
        asyncio::get_running_loop().call_soon([&] {
            EXPECT_FALSE(static_cast<bool>(asyncio::current_task()));
            checked = true;
        });
        co_await asyncio::sleep(0);
        EXPECT_TRUE(checked);
    });
}

TEST(CurrentTask, OutsideALoopRaises) {
    try {
        (void)asyncio::current_task();
        ADD_FAILURE() << "no exception";
    } catch (const asyncio::RuntimeError& e) {
        EXPECT_STREQ(e.what(), "no running event loop");
    }
    EXPECT_THROW((void)asyncio::all_tasks(), asyncio::RuntimeError);
}

TEST(AllTasks, PendingTasksOnly) {
    run_test([]() -> Coro<> {
        auto f = asyncio::get_running_loop().create_future<int>();
        auto a = asyncio::create_task(value_after_yield(1));
        auto b = asyncio::create_task([](asyncio::Future<int> x) -> Coro<int> { co_return co_await x; }(f));
        auto all = asyncio::all_tasks();
        EXPECT_EQ(all.size(), 3u);
        auto has = [&](const AnyTask& t) {
            for (auto& x : all)
                if (x == t) return true;
            return false;
        };
        EXPECT_TRUE(has(a));
        EXPECT_TRUE(has(b));
        EXPECT_TRUE(has(asyncio::current_task()));
        co_await a;
        EXPECT_EQ(asyncio::all_tasks().size(), 2u);
        f.set_result(2);
        co_await b;
        EXPECT_EQ(asyncio::all_tasks().size(), 1u);
    });
}

// ---- done callbacks ------------------------------------------------------------

Log* g_log = nullptr;
void print_it(Task<int>& t) { g_log->push_back("print_it " + std::to_string(t.result())); }

TEST(TaskCallbacks, CallbackAddedBeforeAwaitRunsBeforeTheAwaiterResumes) {
    // The seed's second program: add_done_callback, then co_await task.
    Log log;
    g_log = &log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(42));
        t.add_done_callback(print_it);
        co_await t;
        log.push_back("after await");
    });
    g_log = nullptr;
    EXPECT_EQ(log, (Log{"print_it 42", "after await"}));
}

TEST(TaskCallbacks, AwaiterRegisteredFirstResumesFirst) {
    Log log;
    g_log = &log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(42));
        auto w = asyncio::create_task([](Task<int> x, Log* l) -> Coro<> {
            co_await x;
            l->push_back("waiter resumed");
        }(t, &log));
        co_await asyncio::sleep(0);  // w now awaits t
        t.add_done_callback(print_it);
        co_await w;
    });
    g_log = nullptr;
    EXPECT_EQ(log, (Log{"waiter resumed", "print_it 42"}));
}

TEST(TaskCallbacks, CallbacksInOrderAndRemovable) {
    Log log;
    g_log = &log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task(value_after_yield(1));
        t.add_done_callback([&](Task<int>&) { log.push_back("first"); });
        t.add_done_callback(print_it);
        t.add_done_callback([&](Task<int>& x) { log.push_back(x.done() ? "third done" : "third?"); });
        t.add_done_callback(print_it);
        EXPECT_EQ(t.remove_done_callback(print_it), 2u);
        co_await t;
        co_await asyncio::sleep(0);
        t.add_done_callback([&](Task<int>&) { log.push_back("late"); });
        EXPECT_EQ(log, (Log{"first", "third done"}));  // late one is queued, not run
        co_await asyncio::sleep(0);
    });
    g_log = nullptr;
    EXPECT_EQ(log, (Log{"first", "third done", "late"}));
}

TEST(TaskCallbacks, AnyTaskCallback) {
    run_test([]() -> Coro<> {
        std::string name;
        AnyTask t = asyncio::create_task(value_after_yield(1), "cb-task");
        t.add_done_callback([&](AnyTask& x) { name = x.get_name(); });
        co_await t;
        co_await asyncio::sleep(0);
        EXPECT_EQ(name, "cb-task");
    });
}

// ---- sleep ---------------------------------------------------------------------

Coro<> ticker(Log* log, std::string name, int n) {
    for (int i = 0; i < n; ++i) {
        log->push_back(name + std::to_string(i));
        co_await asyncio::sleep(0);
    }
}

TEST(Sleep, ZeroInterleavesTwoTasks) {
    Log log;
    run_test([&]() -> Coro<> {
        auto a = asyncio::create_task(ticker(&log, "A", 3));
        auto b = asyncio::create_task(ticker(&log, "B", 3));
        co_await a;
        co_await b;
    });
    EXPECT_EQ(log, (Log{"A0", "B0", "A1", "B1", "A2", "B2"}));
}

TEST(Sleep, ZeroYieldsExactlyOneIteration) {
    Log log;
    run_test([&]() -> Coro<> {
        auto& loop = asyncio::get_running_loop();
        loop.call_soon([&] {
            log.push_back("cb1");
            loop.call_soon([&] { log.push_back("cb2"); });
        });
        co_await asyncio::sleep(0);
        log.push_back("resumed");
        co_await asyncio::sleep(0);
    });
    EXPECT_EQ(log, (Log{"cb1", "resumed", "cb2"}));
}

TEST(Sleep, NegativeDelayIsZero) {
    Log log;
    run_test([&]() -> Coro<> {
        auto& loop = asyncio::get_running_loop();
        loop.call_soon([&] {
            log.push_back("cb1");
            loop.call_soon([&] { log.push_back("cb2"); });
        });
        co_await asyncio::sleep(-10.0);
        log.push_back("resumed");
        co_await asyncio::sleep(-1s);
        co_await asyncio::sleep(-3);
    });
    EXPECT_EQ(log, (Log{"cb1", "resumed", "cb2"}));
}

// Python 3.13: sleep(nan) raises ValueError (3.12 slept forever).
TEST(Sleep, NanDelayRaisesValueError) {
    std::string what;
    run_test([&]() -> Coro<> {
        try {
            co_await asyncio::sleep(std::numeric_limits<double>::quiet_NaN());
        } catch (const asyncio::ValueError& e) {
            what = e.what();
        }
    });
    EXPECT_EQ(what, "Invalid delay: NaN (not a number)");
}

TEST(Sleep, ChronoAndDoubleDelays) {
    run_test([]() -> Coro<> {
        auto& loop = asyncio::get_running_loop();
        double t0 = loop.time();
        co_await asyncio::sleep(2ms);
        co_await asyncio::sleep(0.002);
        co_await asyncio::sleep(std::chrono::microseconds(500));
        co_await asyncio::sleep(std::chrono::duration<double>(0.001));
        EXPECT_GE(loop.time() - t0, 0.0055);  // a lower bound only: sleeps never end early
    });
}

TEST(Sleep, WithResultGivesItBack) {
    run_test([]() -> Coro<> {
        EXPECT_EQ(co_await asyncio::sleep(0.001, 7), 7);
        EXPECT_EQ(co_await asyncio::sleep(1ms, std::string("r")), "r");
        EXPECT_EQ(co_await asyncio::sleep(0, std::string("now")), "now");
    });
}

TEST(Sleep, TimersFireInDeadlineOrderAcrossTasks) {
    Log log;
    run_test([&]() -> Coro<> {
        auto mk = [](Log* l, double d, std::string n) -> Coro<> {
            co_await asyncio::sleep(d);
            l->push_back(n);
        };
        auto c = asyncio::create_task(mk(&log, 0.006, "c"));
        auto a = asyncio::create_task(mk(&log, 0.002, "a"));
        auto b = asyncio::create_task(mk(&log, 0.004, "b"));
        co_await c;
        co_await a;
        co_await b;
    });
    EXPECT_EQ(log, (Log{"a", "b", "c"}));
}

TEST(Sleep, CancelledSleepWithdrawsItsTimer) {
    run_test([]() -> Coro<> {
        Log log;
        auto& loop = asyncio::get_running_loop();
        const auto before = loop.live_timer_count();  // run_test's watchdog
        auto t = asyncio::create_task(sleeper(&log, "s"));
        co_await asyncio::sleep(0);
        EXPECT_EQ(loop.live_timer_count(), before + 1);
        t.cancel();
        EXPECT_EQ(loop.live_timer_count(), before);
        EXPECT_THROW(co_await t, CancelledError);
    });
}

TEST(Sleep, CancelledWhileInSleepZeroRaisesAtThatAwait) {
    Log log;
    run_test([&]() -> Coro<> {
        auto t = asyncio::create_task([](Log* l) -> Coro<> {
            try {
                for (;;) co_await asyncio::sleep(0);
            } catch (const CancelledError& e) {
                l->push_back(std::string("cancelled in sleep(0): ") + e.what());
                throw;
            }
        }(&log));
        co_await asyncio::sleep(0);  // t is now suspended in sleep(0), its step queued
        EXPECT_TRUE(t.cancel("zero"));
        EXPECT_THROW(co_await t, CancelledError);
        EXPECT_TRUE(t.cancelled());
    });
    EXPECT_EQ(log, (Log{"cancelled in sleep(0): zero"}));
}
