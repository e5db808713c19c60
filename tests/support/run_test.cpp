#include "support/run_test.hpp"

#include <dirent.h>

namespace asyncio::testing {

int open_fd_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        --n;  // the directory stream itself
    }
    return n;
}

namespace detail {

namespace {
void watchdog_fire(void* p) {
    auto* t = static_cast<AnyTask*>(p);
    ADD_FAILURE() << "run_test: watchdog expired, cancelling the test's main task";
    t->cancel("watchdog");
}
}  // namespace

void run_main(EventLoop& loop, Coro<> main, const RunOptions& opts, int fds_before) {
    Task<> task = loop.create_task(std::move(main));
    AnyTask any = task;
    TimerHandle watchdog = loop.call_later(opts.watchdog, asyncio::detail::Callback(&watchdog_fire, &any));
    try {
        loop.run_until_complete(task);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "run_test: the test coroutine raised: " << e.what();
    } catch (...) {
        ADD_FAILURE() << "run_test: the test coroutine raised a non-std exception";
    }
    watchdog.cancel();
    if (opts.check_clean) {
        auto pending = loop.pending_tasks();
        EXPECT_TRUE(pending.empty()) << "run_test: " << pending.size() << " task(s) left pending, first "
                                     << (pending.empty() ? "" : pending.front()->repr());
        EXPECT_EQ(loop.live_timer_count(), 0u) << "run_test: timers left armed";
        EXPECT_EQ(loop.watched_fd_count(), 0u) << "run_test: file descriptors left watched";
    }
    // Clean up what is left so the loop closes quietly, as asyncio.run does.
    loop.cancel_all_tasks();
    loop.close();
    if (opts.check_clean) {
        EXPECT_EQ(open_fd_count(), fds_before + 2) << "run_test: descriptors leaked (the loop's own epoll "
                                                      "and eventfd are still open until it is destroyed)";
    }
}

}  // namespace detail
}  // namespace asyncio::testing
