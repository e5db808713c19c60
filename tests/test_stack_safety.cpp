// Stack safety: long runs of synchronous completions and deep chains of
// nested coroutines must use constant stack, also at -O0 under ASan where
// symmetric transfer is not a tail call (where cppcoro and libcoro overflow).
// The task trampoline (TaskBase::step) is what makes this hold.
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <vector>

#include "support/run_test.hpp"

using asyncio::Coro;
using asyncio::testing::run_test;

namespace {

Coro<int> immediate(int v) { co_return v; }  // completes without suspending

Coro<long> chain(int depth) {
    if (depth == 0) co_return 0;
    long below = co_await chain(depth - 1);
    co_return below + 1;
}

Coro<long> chain_that_suspends_at_the_bottom(int depth) {
    if (depth == 0) {
        co_await asyncio::sleep(0);
        co_return 0;
    }
    long below = co_await chain_that_suspends_at_the_bottom(depth - 1);
    co_return below + 1;
}

Coro<> chain_that_throws(int depth) {
    if (depth == 0) throw asyncio::ValueError("bottom");
    co_await chain_that_throws(depth - 1);
}

}  // namespace

TEST(StackSafety, MillionSynchronousCoAwaitsInALoop) {
    long sum = 0;
    run_test([&]() -> Coro<> {
        for (int i = 0; i < 1'000'000; ++i) sum += co_await immediate(1);
    });
    EXPECT_EQ(sum, 1'000'000);
}

TEST(StackSafety, ChainOf100000NestedCoroutines) {
    long depth = 0;
    run_test([&]() -> Coro<> { depth = co_await chain(100'000); });
    EXPECT_EQ(depth, 100'000);
}

TEST(StackSafety, DeepChainSuspendedAtTheBottomResumesAndUnwinds) {
    long depth = 0;
    run_test([&]() -> Coro<> { depth = co_await chain_that_suspends_at_the_bottom(100'000); });
    EXPECT_EQ(depth, 100'000);
}

TEST(StackSafety, ExceptionThroughADeepChain) {
    bool caught = false;
    run_test([&]() -> Coro<> {
        try {
            co_await chain_that_throws(100'000);
        } catch (const asyncio::ValueError&) {
            caught = true;
        }
    });
    EXPECT_TRUE(caught);
}

TEST(StackSafety, HundredThousandDoneFuturesAwaitedInALoop) {
    long sum = 0;
    run_test([&]() -> Coro<> {
        auto& loop = asyncio::get_running_loop();
        std::vector<asyncio::Future<int>> futs;
        futs.reserve(100'000);
        for (int i = 0; i < 100'000; ++i) {
            futs.push_back(loop.create_future<int>());
            futs.back().set_result(1);
        }
        for (auto& f : futs) sum += co_await f;
    });
    EXPECT_EQ(sum, 100'000);
}

TEST(StackSafety, HundredThousandDoneTasksAwaitedInALoop) {
    long sum = 0;
    run_test([&]() -> Coro<> {
        std::vector<asyncio::Task<int>> tasks;
        tasks.reserve(100'000);
        for (int i = 0; i < 100'000; ++i) tasks.push_back(asyncio::create_task(immediate(1)));
        co_await asyncio::sleep(0);  // they all finish in one iteration
        for (auto& t : tasks) sum += co_await t;
    });
    EXPECT_EQ(sum, 100'000);
}

Coro<long> plus_one_after(asyncio::Task<long>* prev) { co_return co_await *prev + 1; }

TEST(StackSafety, LongCallbackChainThroughTheReadyQueue) {
    // 100,000 tasks each awaiting the previous one: completions cascade
    // through call_soon, never through nested resumes. The handles live in a
    // vector (frames do not own each other: see the note below).
    long result = 0;
    run_test([&]() -> Coro<> {
        auto first = asyncio::get_running_loop().create_future<long>();
        std::vector<asyncio::Task<long>> chain;
        chain.reserve(100'000);
        chain.push_back(asyncio::create_task([](asyncio::Future<long> f) -> Coro<long> {
            co_return co_await f + 1;
        }(first)));
        for (int i = 1; i < 100'000; ++i) chain.push_back(asyncio::create_task(plus_one_after(&chain.back())));
        co_await asyncio::sleep(0);
        first.set_result(0);
        result = co_await chain.back();
    });
    EXPECT_EQ(result, 100'000);
}

TEST(StackSafety, FramesOwningThePreviousTaskAreDestroyedWithoutRecursion) {
    // Each frame holds the only handle to the previous task: dropping the last
    // handle must not destroy 100,000 frames recursively.
    long result = 0;
    run_test([&]() -> Coro<> {
        auto first = asyncio::get_running_loop().create_future<long>();
        asyncio::Task<long> prev = asyncio::create_task([](asyncio::Future<long> f) -> Coro<long> {
            co_return co_await f + 1;
        }(first));
        for (int i = 1; i < 100'000; ++i)
            prev = asyncio::create_task([](asyncio::Task<long> p) -> Coro<long> { co_return co_await p + 1; }(prev));
        co_await asyncio::sleep(0);
        first.set_result(0);
        result = co_await prev;
    });
    EXPECT_EQ(result, 100'000);
}
