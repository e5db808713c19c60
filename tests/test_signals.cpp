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

TEST(SignalHandler, CloseRemovesTheHandlers) {
    asyncio::EventLoop loop;
    loop.add_signal_handler(SIGUSR1, [] {});
    loop.close();
    struct sigaction sa {};
    ::sigaction(SIGUSR1, nullptr, &sa);
    EXPECT_EQ(sa.sa_handler, SIG_DFL);
}

}  // namespace
