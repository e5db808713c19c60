// Timeout scopes (Python's asyncio/timeouts.py, 3.12 semantics).
#include "asyncio/timeouts.hpp"

namespace asyncio {

Timeout timeout(detail::OptDelay delay) {
    EventLoop& loop = detail::running_loop();
    if (!delay.seconds) return Timeout(std::nullopt);
    return Timeout(loop.time() + *delay.seconds);
}

Timeout timeout_at(std::optional<double> when) {
    return Timeout(when);
}

// inline: the library is built with -fPIC, where gcc does not inline a
// function with external linkage (it could be interposed).
inline void Timeout::arm_at(EventLoop& loop, double now) {
    // As Python: a deadline already passed is a call_soon, so it runs before
    // the step of a body that only yielded (sleep(0)).
    if (*when_ <= now) {
        armed_id_ = loop.push_ready_bound<&fired>(this);
        armed_ = Armed::kSoon;
    } else {
        armed_id_ = loop.add_timer_bound<&fired>(*when_, this);
        armed_ = Armed::kTimer;
    }
}

void Timeout::arm() {
    disarm();
    if (!when_) return;
    EventLoop& loop = *task_->loop_;
    arm_at(loop, loop.time());
}

inline void Timeout::enter_task() {
    if (state_ != State::kCreated) [[unlikely]]
        throw RuntimeError("Timeout has already been entered");
    EventLoop* loop = detail::running_loop_or_null();
    detail::TaskBase* t = loop ? loop->current_task_base() : nullptr;
    if (!t) [[unlikely]]
        throw RuntimeError("Timeout should be used inside a task");
    task_ = t;
    cancelling_ = t->num_cancels_requested_;
    state_ = State::kEntered;
}

void Timeout::enter() {
    enter_task();
    arm();
}

void Timeout::enter_after(std::optional<double> delay) {
    grace_ = true;
    enter_task();
    if (!delay) return;
    // Python's timeout(delay) reads the clock when the scope is created,
    // which in wait_for() is its entry: one read serves the deadline and
    // the "already passed" check.
    EventLoop& loop = *task_->loop_;
    double now = loop.time();
    when_ = now + *delay;
    arm_at(loop, now);
}

void Timeout::reschedule(std::optional<double> when) {
    switch (state_) {
        case State::kEntered: break;
        case State::kCreated: throw RuntimeError("Timeout has not been entered");
        case State::kExpiring: throw RuntimeError("Cannot change state of expiring Timeout");
        case State::kExpired: throw RuntimeError("Cannot change state of expired Timeout");
        case State::kExited: throw RuntimeError("Cannot change state of finished Timeout");
    }
    when_ = when;
    deferred_ = false;
    arm();
}

void Timeout::fired(void* p) {
    auto* self = static_cast<Timeout*>(p);
    self->armed_ = Armed::kNone;
    detail::TaskBase* t = self->task_;
    // wait_for(): the awaited work already woke the task in this iteration
    // (it is not waiting on anything and its step is queued): let that step
    // run first, then cancel only if the task is still inside the scope.
    if (self->grace_ && !self->deferred_ && !t->waiter_ && t->step_scheduled_) {
        self->deferred_ = true;
        EventLoop& loop = *t->loop_;
        self->armed_id_ = loop.add_timer_bound<&fired>(loop.time(), self);
        self->armed_ = Armed::kTimer;
        return;
    }
    self->state_ = State::kExpiring;
    t->task_cancel(nullptr);
}

void Timeout::leave() noexcept {
    disarm();
    if (state_ == State::kExpiring) {
        state_ = State::kExpired;
        task_->uncancel();
    } else if (state_ == State::kEntered) {
        state_ = State::kExited;
    }
}

bool Timeout::leave_cancelled() noexcept {
    disarm();
    if (state_ == State::kExpiring) {
        state_ = State::kExpired;
        // Only our own cancellation becomes TimeoutError: a request from
        // outside left cancelling() above its value at entry.
        return task_->uncancel() <= static_cast<int>(cancelling_);
    }
    if (state_ == State::kEntered) state_ = State::kExited;
    return false;
}

void Timeout::leave_and_rethrow() {
    try {
        throw;
    } catch (const CancelledError&) {
        if (leave_cancelled()) std::throw_with_nested(TimeoutError());
        throw;
    } catch (...) {
        leave();
        throw;
    }
}

}  // namespace asyncio
