// Test support: run a coroutine on a fresh loop and prove the loop ends empty.
#pragma once

#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <string>
#include <utility>

namespace asyncio::testing {

/// Open file descriptors of this process (counts /proc/self/fd).
int open_fd_count();

struct RunOptions {
    bool debug = false;
    /// A test still running after this many seconds is cancelled and fails
    /// (a watchdog against hangs, not a timing assertion).
    double watchdog = 60.0;
    /// Check that no task, timer, watched fd or descriptor is left behind.
    bool check_clean = true;
};

namespace detail {
void run_main(EventLoop& loop, Coro<> main, const RunOptions& opts, int fds_before);
}

/// Run `f()` (a callable returning Coro<>) on a fresh loop, like
/// asyncio.run, then fail the test if a task is still pending, a timer is
/// still armed, an fd is still watched or a descriptor was leaked. The
/// callable is kept alive until the loop ends, so a capturing lambda
/// coroutine is safe here.
template <class F>
void run_test(F&& f, RunOptions opts = {}) {
    int fds_before = open_fd_count();
    EventLoop loop;
    if (opts.debug) loop.set_debug(true);
    detail::run_main(loop, f(), opts, fds_before);
}

}  // namespace asyncio::testing
