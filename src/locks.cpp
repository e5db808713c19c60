// Python's asyncio.locks: the out-of-line parts (slow paths, Condition.wait,
// Barrier) and the loop binding shared with queues. See
// include/asyncio/detail/waiters.hpp for the waiter states.
#include "asyncio/locks.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace asyncio {

namespace detail {

void LoopBound::bind_slow(EventLoop& loop, const char* what) {
    if (loop_serial_ == 0) {
        loop_serial_ = loop.serial();
        loop_ = &loop;
        return;
    }
    throw RuntimeError(std::string("<") + what + " object> is bound to a different event loop");
}

}  // namespace detail

// ---- Lock ---------------------------------------------------------------------

void Lock::throw_not_acquired() { throw RuntimeError("Lock is not acquired."); }

void Lock::wake_up_first() {
    // Python wakes the head of _waiters unless it is already woken.
    if (woken_ || waiters_.empty()) return;
    woken_ = true;
    detail::wake_node(waiters_.pop_front());
}

void Lock::resume_waiter(detail::WaitNode* n) {
    detail::TaskBase* t = n->task;
    if (n->woken) woken_ = false;
    if (t->throw_cancel_) {
        // Cancelled while waiting, or right after release() picked us: make
        // sure the next waiter runs if the lock is free (Python's except branch).
        if (!locked_) wake_up_first();
        t->check_cancel();
    }
    locked_ = true;
}

// ---- Condition ------------------------------------------------------------------

void Condition::throw_not_acquired(const char* op) {
    throw RuntimeError(std::string("cannot ") + op + " on un-acquired lock");
}

void Condition::notify_waiters(std::ptrdiff_t n) {
    for (std::ptrdiff_t i = 0; i < n && !waiters_.empty(); ++i) detail::wake_node(waiters_.pop_front());
}

Coro<bool> Condition::wait() {
    if (!lock_->locked()) throw_not_acquired("wait");
    bind(detail::running_loop(), kName);
    lock_->release();
    std::exception_ptr err;
    {
        detail::ListWait<void, &detail::kConditionName> notified(&waiters_, this);
        try {
            co_await notified;
        } catch (...) {
            err = std::current_exception();
        }
    }
    // Re-acquire even if cancelled; a cancellation meanwhile is re-raised
    // once the lock is held (the latest one wins, as in Python).
    for (;;) {
        auto acq = lock_->acquire();
        try {
            co_await acq;
            break;
        } catch (const CancelledError&) {
            err = std::current_exception();
        }
    }
    if (err) {
        // We may have been notified before failing: pass it on (a spurious
        // wake-up elsewhere is allowed; a lost one is not).
        notify_waiters(1);
        std::rethrow_exception(err);
    }
    co_return true;
}

// ---- Semaphore ------------------------------------------------------------------

Semaphore::Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound) : value_(value), bound_(bound) {
    if (value < 0) throw ValueError("Semaphore initial value must be >= 0");
}

void Semaphore::throw_over_release() { throw ValueError("BoundedSemaphore released too many times"); }

void Semaphore::resume_waiter(detail::WaitNode* n) {
    detail::TaskBase* t = n->task;
    bool cancelled = t->throw_cancel_;
    if (n->woken) {
        --woken_;
        if (cancelled) ++value_;  // the permit we were handed goes back
    }
    // Waiters that arrived while permits were free had to queue (FIFO):
    // wake as many as there are permits.
    while (value_ > 0 && wake_up_next()) {
    }
    if (cancelled) t->check_cancel();
}

// ---- Barrier ----------------------------------------------------------------------

Barrier::Barrier(std::ptrdiff_t parties) : parties_(parties) {
    if (parties < 1) throw ValueError("parties must be > 0");
}

Coro<std::ptrdiff_t> Barrier::wait() {
    LockGuard<Lock> guard = co_await cond_;
    // Block while the previous round drains or a reset completes.
    while (state_ == State::kDraining || state_ == State::kResetting) {
        auto w = cond_.wait();
        co_await std::move(w);
    }
    if (state_ == State::kBroken) throw BrokenBarrierError("Barrier aborted");
    std::ptrdiff_t index = count_++;
    std::exception_ptr err;
    try {
        if (index + 1 == parties_) {
            state_ = State::kDraining;  // release the round
            cond_.notify_all();
        } else {
            while (state_ == State::kFilling) {
                auto w = cond_.wait();
                co_await std::move(w);
            }
            if (state_ == State::kBroken || state_ == State::kResetting)
                throw BrokenBarrierError("Abort or reset of barrier");
        }
    } catch (...) {
        err = std::current_exception();
    }
    --count_;
    exit_barrier();
    if (err) std::rethrow_exception(err);
    co_return index;
}

void Barrier::exit_barrier() {
    // The last task out ends the draining or resetting and lets the next round in.
    if (count_ == 0) {
        if (state_ == State::kResetting || state_ == State::kDraining) state_ = State::kFilling;
        cond_.notify_all();
    }
}

Coro<> Barrier::reset() {
    LockGuard<Lock> guard = co_await cond_;
    if (count_ > 0)
        state_ = State::kResetting;
    else
        state_ = State::kFilling;
    cond_.notify_all();
}

Coro<> Barrier::abort() {
    LockGuard<Lock> guard = co_await cond_;
    state_ = State::kBroken;
    cond_.notify_all();
}

}  // namespace asyncio
