// Mirrors Python's asyncio.runners: run().
#pragma once

#include <optional>
#include <utility>

#include "asyncio/events.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

namespace detail {
void check_no_running_loop();
/// Runner.close(): cancel the leftover tasks and wait for them, shut down
/// the default executor, close the loop. Never throws.
void finish_run(EventLoop& loop) noexcept;
}  // namespace detail

/// Run a coroutine on a new event loop and return its result (asyncio.run).
///
/// Creates a loop, runs `main` to completion, cancels the tasks still
/// pending and waits for them, closes the loop, returns main's result or
/// rethrows its exception. `debug` turns on debug mode (ASYNCIO_DEBUG=1 in
/// the environment does too).
/// Raises: RuntimeError when called while a loop runs in this thread.
template <class T>
T run(Coro<T> main, std::optional<bool> debug = std::nullopt) {
    detail::check_no_running_loop();
    EventLoop loop;
    if (debug) loop.set_debug(*debug);
    struct Closer {
        EventLoop& loop;
        ~Closer() { detail::finish_run(loop); }
    } closer{loop};
    return loop.run_until_complete(std::move(main));
}
template <class T>
T run(Coro<T> main, bool debug) {
    return run(std::move(main), std::optional<bool>(debug));
}
/// Any other awaitable (`run(asyncio::sleep(1))`, a lazy awaitable such as
/// wait_for()'s result, ...) runs in a coroutine.
template <detail::other_awaitable Aw>
auto run(Aw main, std::optional<bool> debug = std::nullopt) {
    return run(detail::as_coro(std::move(main)), debug);
}
template <detail::other_awaitable Aw>
auto run(Aw main, bool debug) {
    return run(detail::as_coro(std::move(main)), std::optional<bool>(debug));
}

}  // namespace asyncio
