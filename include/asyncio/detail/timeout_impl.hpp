// Internal: the Timeout scope (public through <asyncio/timeouts.hpp>) and the
// delay argument type shared by the combinators.
//
// States (Python's _State): created -> entered -> (expiring -> expired | exited).
// Only the owning task touches a Timeout; its timer callback runs on the same
// loop. `grace_` is wait_for()'s rule that a wake-up already delivered when the
// deadline passes gets one step to finish (its result wins over the timeout).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "asyncio/detail/task_impl.hpp"

namespace asyncio {

namespace detail {
/// A delay in seconds or "no deadline": a double, an integer, a std::chrono
/// duration, std::nullopt or a std::optional<double>.
struct OptDelay {
    std::optional<double> seconds;
    OptDelay(std::nullopt_t) noexcept {}  // NOLINT(google-explicit-constructor)
    OptDelay(std::optional<double> s) noexcept : seconds(s) {}  // NOLINT
    template <class A>
        requires std::is_arithmetic_v<A>
    OptDelay(A s) noexcept : seconds(static_cast<double>(s)) {}  // NOLINT
    template <class Rep, class Period>
    OptDelay(std::chrono::duration<Rep, Period> d) noexcept : seconds(to_seconds(d)) {}  // NOLINT
};
}  // namespace detail

/// Python's asyncio.Timeout: an asynchronous context manager that cancels
/// the body when its deadline (loop time) passes and raises TimeoutError.
///
/// Create it with timeout() or timeout_at(), run the body with
/// `co_await cm.run(body())` (Python's `async with cm: await body()`).
/// The body may keep a pointer to the scope and call reschedule().
/// Thread: loop thread only; the scope must outlive run().
class Timeout {
public:
    /// A scope with absolute deadline `when` (loop time), or none.
    explicit Timeout(std::optional<double> when) noexcept : when_(when) {}
    Timeout(const Timeout&) = delete;
    Timeout& operator=(const Timeout&) = delete;
    ~Timeout() { disarm(); }

    /// The current deadline in loop time, or nullopt for none.
    std::optional<double> when() const noexcept { return when_; }
    /// Move the deadline (nullopt: no deadline). A deadline in the past
    /// expires the scope on the next loop iteration.
    ///
    /// Raises: RuntimeError("Timeout has not been entered") before run();
    ///   RuntimeError("Cannot change state of expiring Timeout") (or
    ///   expired/finished) once the deadline has passed or the body ended.
    void reschedule(std::optional<double> when);
    /// True once the deadline passed while the body ran (Python's expired()).
    bool expired() const noexcept { return state_ == State::kExpiring || state_ == State::kExpired; }

    /// Run `body` inline in the current task under this deadline and give
    /// its result (Python's `async with`).
    ///
    /// Raises: TimeoutError (nesting the CancelledError it replaced, see
    ///   std::rethrow_if_nested) if the deadline cancelled the body; whatever
    ///   the body raises otherwise; RuntimeError("Timeout has already been
    ///   entered") on a second run(), RuntimeError("Timeout should be used
    ///   inside a task") outside a task.
    /// Cancellation: a cancellation that did not come from this deadline
    ///   (cancelling() went up) propagates as CancelledError, even if the
    ///   deadline also passed.
    template <class T>
    Coro<T> run(Coro<T> body);
    /// Any other awaitable (`cm.run(queue.get())`, `cm.run(task)`, a lazy
    /// awaitable, ...) runs in a coroutine, as `await` inside the block would.
    template <detail::other_awaitable Aw>
    auto run(Aw body) {
        return run(detail::as_coro(std::move(body)));
    }

    // ---- internal (the __aenter__/__aexit__ halves) ----------------------
    void enter();
    /// wait_for()'s entry: the deadline is `delay` from now (one clock read,
    /// none for nullopt), with the grace rule (see the file comment).
    void enter_after(std::optional<double> delay);
    /// __aexit__ for a body that returned or raised something other than
    /// CancelledError. Idempotent.
    void leave() noexcept;
    /// __aexit__ for CancelledError: true if it must become TimeoutError.
    bool leave_cancelled() noexcept;
    /// __aexit__ from a catch block: rethrow the exception being handled,
    /// or TimeoutError (nesting it) if it is this scope's cancellation.
    [[noreturn]] void leave_and_rethrow();

private:
    enum class State : std::uint8_t { kCreated, kEntered, kExpiring, kExpired, kExited };
    enum class Armed : std::uint8_t { kNone, kTimer, kSoon };
    static void fired(void* self);
    void enter_task();
    void arm();
    void arm_at(EventLoop& loop, double now);
    void disarm() noexcept;

    std::optional<double> when_;
    detail::TaskBase* task_ = nullptr;
    // kTimer: the loop's timer id (EventLoop::add_timer_bound()); kSoon (a
    // deadline already passed when armed): the ready queue position.
    std::uint64_t armed_id_ = 0;
    std::uint32_t cancelling_ = 0;  // the task's cancelling() at entry
    State state_ = State::kCreated;
    Armed armed_ = Armed::kNone;
    bool grace_ = false;
    bool deferred_ = false;
};

namespace detail {
template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// The body of Timeout::run() and wait_for(): enter `*ext`, or (ext null) a
/// scope owned by this frame whose deadline is `delay` from entry, with
/// wait_for()'s grace rule; await `aw` inline; leave.
template <class T, class Aw>
Coro<T> run_scoped(Timeout* ext, std::optional<double> delay, Aw aw) {
    Timeout own(std::nullopt);
    Timeout& cm = ext ? *ext : own;
    if (ext)
        cm.enter();
    else
        cm.enter_after(delay);
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(aw);
            cm.leave();
        } else {
            T v = co_await std::move(aw);
            cm.leave();
            co_return std::move(v);  // a throwing move: leave() again below is a no-op
        }
    } catch (...) {
        cm.leave_and_rethrow();
    }
}
}  // namespace detail

inline void Timeout::disarm() noexcept {
    if (armed_ != Armed::kNone) {
        // A frame destroyed after its loop (teardown cleared loop_) must not touch it.
        if (EventLoop* loop = task_->loop_) {
            if (armed_ == Armed::kTimer)
                loop->cancel_timer(armed_id_);
            else
                loop->cancel_ready(armed_id_);
        }
        armed_ = Armed::kNone;
    }
}

template <class T>
Coro<T> Timeout::run(Coro<T> body) {
    return detail::run_scoped<T>(this, std::nullopt, std::move(body));
}

/// Python's asyncio.timeout(delay): a Timeout scope whose deadline is
/// `delay` from now (seconds, a std::chrono duration, or std::nullopt for
/// none). A delay <= 0 means "already expired": the body is cancelled at its
/// first suspension.
/// Raises: RuntimeError("no running event loop").
Timeout timeout(detail::OptDelay delay);
/// Python's asyncio.timeout_at(when): deadline at loop time `when` (as
/// loop.time()), or none for std::nullopt.
Timeout timeout_at(std::optional<double> when);

}  // namespace asyncio
