// loop.add_signal_handler / remove_signal_handler (Python's Unix event loop).
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <csignal>

#include "support/run_test.hpp"

namespace {

TEST(SignalHandler, RunsOnTheLoopWhenTheSignalArrives) {
    int got = 0;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        auto fut = loop.create_future<int>();
        loop.add_signal_handler(SIGUSR1, [fut]() mutable {
            if (!fut.done()) fut.set_result(SIGUSR1);
        });
        ::raise(SIGUSR1);
        got = co_await fut;
        EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
    });
    EXPECT_EQ(got, SIGUSR1);
}

TEST(SignalHandler, RemoveReturnsFalseWhenNoneIsSetAndRestoresTheDefault) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        EXPECT_FALSE(loop.remove_signal_handler(SIGUSR2));
        loop.add_signal_handler(SIGUSR2, [] {});
        EXPECT_TRUE(loop.remove_signal_handler(SIGUSR2));
        EXPECT_FALSE(loop.remove_signal_handler(SIGUSR2));
        struct sigaction sa {};
        ::sigaction(SIGUSR2, nullptr, &sa);
        EXPECT_EQ(sa.sa_handler, SIG_DFL);
        co_return;
    });
}

TEST(SignalHandler, ReplacingAHandlerRunsOnlyTheNewOne) {
    int first = 0, second = 0;
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        loop.add_signal_handler(SIGUSR1, [&first] { ++first; });
        loop.add_signal_handler(SIGUSR1, [&second] { ++second; });
        ::raise(SIGUSR1);
        for (int i = 0; i < 5 && second == 0; ++i) co_await asyncio::sleep(0);
        loop.remove_signal_handler(SIGUSR1);
    });
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
}

TEST(SignalHandler, BadSignalNumbersRaiseAndChangeNothing) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        EXPECT_THROW(loop.add_signal_handler(0, [] {}), asyncio::ValueError);
        EXPECT_THROW(loop.add_signal_handler(100000, [] {}), asyncio::ValueError);
        EXPECT_THROW(loop.add_signal_handler(SIGKILL, [] {}), asyncio::RuntimeError);
        EXPECT_THROW(loop.remove_signal_handler(-1), asyncio::ValueError);
        EXPECT_EQ(loop.watched_fd_count(), 0u);
        co_return;
    });
}

// Python accepts only signal.valid_signals(): glibc keeps 32 and 33 for
// itself, so both raise ValueError, as 0 and NSIG do.
TEST(SignalHandler, SignalsGlibcReservesAreInvalid) {
    asyncio::testing::run_test([&]() -> asyncio::Coro<> {
        auto& loop = asyncio::get_running_loop();
        for (int sig : {32, 33, NSIG}) {
            EXPECT_THROW(loop.add_signal_handler(sig, [] {}), asyncio::ValueError) << sig;
            EXPECT_THROW(loop.remove_signal_handler(sig), asyncio::ValueError) << sig;
        }
        loop.add_signal_handler(SIGRTMIN, [] {});  // a real-time signal is valid
        EXPECT_TRUE(loop.remove_signal_handler(SIGRTMIN));
        try {
            loop.add_signal_handler(SIGKILL, [] {});
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ(e.what(), "sig 9 cannot be caught");  // Python's words
        }
        EXPECT_EQ(loop.watched_fd_count(), 0u);
        co_return;
    });
}

// One loop at a time handles the process's signals. A loop refused because
// another one does keeps no pipe open, and can handle signals once the
// other is closed.
TEST(SignalHandler, ARefusedLoopLeavesNothingBehindAndCanTryAgain) {
    asyncio::EventLoop a;
    a.add_signal_handler(SIGUSR1, [] {});
    asyncio::EventLoop b;
    int before = asyncio::testing::open_fd_count();
    for (int i = 0; i < 3; ++i) EXPECT_THROW(b.add_signal_handler(SIGUSR2, [] {}), asyncio::RuntimeError);
    EXPECT_EQ(asyncio::testing::open_fd_count(), before);
    a.close();
    int got = 0;
    b.add_signal_handler(SIGUSR2, [&got] { ++got; });
    ::raise(SIGUSR2);
    auto until_handled = [](int* g) -> asyncio::Coro<> {
        for (int i = 0; i < 100 && *g == 0; ++i) co_await asyncio::sleep(0);
    };
    b.run_until_complete(until_handled(&got));
    EXPECT_EQ(got, 1);
    b.close();
}

// Python's remove_signal_handler() has no closed check: on a closed loop,
// which has no handler left, it returns false.
TEST(SignalHandler, RemoveOnAClosedLoopReturnsFalse) {
    asyncio::EventLoop loop;
    loop.add_signal_handler(SIGUSR1, [] {});
    loop.close();
    EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
    EXPECT_THROW(loop.remove_signal_handler(0), asyncio::ValueError);
}

TEST(SignalHandler, CloseRemovesTheHandlers) {
    asyncio::EventLoop loop;
    loop.add_signal_handler(SIGUSR1, [] {});
    loop.close();
    struct sigaction sa {};
    ::sigaction(SIGUSR1, nullptr, &sa);
    EXPECT_EQ(sa.sa_handler, SIG_DFL);
}

}  // namespace
