// Mirrors Python's asyncio.locks: Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncio/detail/waiters.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

class Lock;
class Event;
class Condition;
class Semaphore;

/// What `async with lock:` holds: `auto guard = co_await lock;` acquires,
/// the guard's destruction releases (Python's __aexit__).
///
/// Movable, not copyable. release() ends the block early. The destructor
/// cannot throw: an error from the release there (the lock was released by
/// hand meanwhile) is ignored, where Python's __aexit__ would raise it.
template <class M>
class [[nodiscard]] LockGuard {
public:
    LockGuard() noexcept = default;
    explicit LockGuard(M& m) noexcept : m_(&m) {}
    LockGuard(LockGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    LockGuard& operator=(LockGuard&& o) noexcept {
        if (this != &o) {
            reset();
            m_ = std::exchange(o.m_, nullptr);
        }
        return *this;
    }
    LockGuard(const LockGuard&) = delete;
    LockGuard& operator=(const LockGuard&) = delete;
    ~LockGuard() { reset(); }

    /// Release now (leave the `async with` block early); later calls do nothing.
    /// Raises: what M::release() raises.
    void release() {
        if (M* m = std::exchange(m_, nullptr)) m->release();
    }
    /// True until released.
    bool owns_lock() const noexcept { return m_ != nullptr; }
    explicit operator bool() const noexcept { return m_ != nullptr; }

private:
    void reset() noexcept {
        try {
            release();
        } catch (...) {
        }
    }
    M* m_ = nullptr;
};

namespace detail {

/// co_await lock.acquire() / co_await lock (M is Lock or Semaphore; R is
/// bool for acquire(), LockGuard<M> for `async with`).
template <class M, class R>
class AcquireAwaiter : WaitNode {
public:
    explicit AcquireAwaiter(M* m) noexcept : m_(m) {}
    AcquireAwaiter(AcquireAwaiter&&) noexcept = default;

    bool await_ready() noexcept { return m_->try_acquire_fast(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        TaskBase* t = h.promise().task();
        m_->bind(*t->loop_, M::kName);
        suspend_in(m_->waiters_, t, h);
    }
    R await_resume() {
        if (task) m_->resume_waiter(this);  // hands a late grant on, then raises if cancelled
        if constexpr (std::is_same_v<R, bool>)
            return true;
        else
            return R(*m_);
    }

private:
    M* m_;
};

/// Wait on a WaitList until woken (Event.wait, Condition's inner wait, Queue.join).
///
/// As small as a WaitNode (100,000 tasks waiting on one Event is a memory
/// benchmark): the list goes in the node's `list`, the owner in the list,
/// the owner's name (for the wrong-loop error) in the type.
template <class R, const char* const* Name>
class ListWait : WaitNode {
public:
    ListWait(WaitList* l, LoopBound* owner) noexcept {
        list = l;
        l->set_owner(owner);
    }
    ListWait(ListWait&& o) noexcept : WaitNode(std::move(o)) { list = o.list; }

    bool await_ready() const noexcept { return list->flag(); }  // now, not when made
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        TaskBase* t = h.promise().task();
        list->owner()->bind(*t->loop_, *Name);
        suspend_in(*list, t, h);
    }
    R await_resume() {
        if (task) task->check_cancel();
        if constexpr (std::is_same_v<R, bool>) return true;
    }
};

// The names of the primitives whose waits are ListWaits (namespace-scope
// constants: usable as template arguments before the class is complete).
inline constexpr const char* kEventName = "asyncio.locks.Event";
inline constexpr const char* kConditionName = "asyncio.locks.Condition";

}  // namespace detail

/// A mutual exclusion lock for tasks (Python's asyncio.Lock).
///
/// Not thread-safe. FIFO fair: release() wakes the longest waiter, and until
/// it has run nobody else can take the lock, not even the task that just
/// released it (CPython's fairness rule). Binds to the loop of its first wait.
class Lock : detail::LoopBound {
public:
    Lock() noexcept = default;
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

    /// True if the lock is held.
    bool locked() const noexcept { return locked_; }

    /// Acquire the lock (Python's Lock.acquire()); gives true.
    ///
    /// Does not suspend when the lock is free and nobody waits.
    /// Raises: RuntimeError if the lock is bound to another loop.
    /// Cancellation: safe. A cancelled acquire() does not hold the lock; if
    ///   the lock had just been passed to it, it goes to the next waiter.
    detail::AcquireAwaiter<Lock, bool> acquire() noexcept { return detail::AcquireAwaiter<Lock, bool>(this); }

    /// `auto guard = co_await lock;` is `async with lock:` (see acquire()).
    detail::AcquireAwaiter<Lock, LockGuard<Lock>> operator co_await() noexcept {
        return detail::AcquireAwaiter<Lock, LockGuard<Lock>>(this);
    }

    /// Release the lock and wake the first waiter (Python's Lock.release()).
    ///
    /// Raises: RuntimeError("Lock is not acquired.") if it is not held.
    void release() {
        if (!locked_) throw_not_acquired();
        locked_ = false;
        if (!waiters_.empty()) wake_up_first();
    }

    static constexpr const char* kName = "asyncio.locks.Lock";

private:
    template <class M, class R>
    friend class detail::AcquireAwaiter;

    bool try_acquire_fast() noexcept {
        // Python: not locked and every waiter cancelled (ours are unlinked at once).
        if (locked_ || !waiters_.empty() || woken_) return false;
        locked_ = true;
        return true;
    }
    void resume_waiter(detail::WaitNode* n);
    void wake_up_first();
    [[noreturn]] static void throw_not_acquired();

    detail::WaitList waiters_;
    bool locked_ = false;
    // A waiter was woken by release() and has not run yet (Python: a done
    // future at the head of _waiters). At most one at a time.
    bool woken_ = false;
};

/// An event flag tasks can wait for (Python's asyncio.Event).
///
/// Not thread-safe (from another thread use loop.call_soon_threadsafe).
class Event : detail::LoopBound {
public:
    Event() noexcept = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    /// True if the flag is set.
    bool is_set() const noexcept { return waiters_.flag(); }

    /// Set the flag and wake every waiter, in the order they started waiting.
    void set() {
        if (waiters_.flag()) return;
        waiters_.set_flag(true);
        if (!waiters_.empty()) detail::wake_all(waiters_, *bound_loop());  // waiters: bound
    }

    /// Reset the flag: wait() suspends again until the next set().
    void clear() noexcept { waiters_.set_flag(false); }

    /// Wait until the flag is set (Python's Event.wait()); gives true.
    ///
    /// Returns at once if it is set already.
    /// Raises: RuntimeError if the event is bound to another loop.
    /// Cancellation: safe; nothing to give back.
    detail::ListWait<bool, &detail::kEventName> wait() noexcept {
        return detail::ListWait<bool, &detail::kEventName>(&waiters_, this);
    }

    static constexpr const char* kName = detail::kEventName;

private:
    template <class T>
    friend class Queue;
    detail::ListWait<void, &detail::kEventName> wait_void() noexcept {
        return detail::ListWait<void, &detail::kEventName>(&waiters_, this);
    }

    detail::WaitList waiters_;  // its flag() is the event's flag
};

/// A condition variable for tasks (Python's asyncio.Condition).
///
/// Owns its Lock, or shares one given to the constructor (which must
/// outlive it). acquire(), release(), locked() and `co_await cond` act on
/// that lock.
class Condition : detail::LoopBound {
public:
    /// A condition with its own Lock.
    Condition() noexcept : lock_(&own_) {}
    /// A condition sharing `lock` (Python's Condition(lock)).
    explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    /// True if the underlying lock is held.
    bool locked() const noexcept { return lock_->locked(); }
    /// Acquire the underlying lock (see Lock::acquire()).
    detail::AcquireAwaiter<Lock, bool> acquire() noexcept { return lock_->acquire(); }
    /// Release the underlying lock. Raises: RuntimeError if it is not held.
    void release() { lock_->release(); }
    /// `auto guard = co_await cond;` is `async with cond:`.
    detail::AcquireAwaiter<Lock, LockGuard<Lock>> operator co_await() noexcept { return lock_->operator co_await(); }

    /// Release the lock, wait until notified, re-acquire the lock; gives true
    /// (Python's Condition.wait()).
    ///
    /// Raises: RuntimeError("cannot wait on un-acquired lock") if the lock is
    ///   not held (the lock is left as it was).
    /// Cancellation: the lock is re-acquired before CancelledError propagates
    ///   (the caller holds it in its except block, as in Python); a
    ///   notification the cancelled waiter had received is passed to the
    ///   next waiter.
    Coro<bool> wait();

    /// Wait until predicate() is true; gives its last value
    /// (Python's Condition.wait_for()).
    ///
    /// predicate is called with the lock held. Raises and Cancellation as wait().
    template <class Pred>
    Coro<std::decay_t<std::invoke_result_t<Pred&>>> wait_for(Pred predicate) {
        auto result = predicate();
        while (!result) {
            auto w = wait();
            co_await std::move(w);
            result = predicate();
        }
        co_return result;
    }

    /// Wake up to n waiters, longest waiting first (Python's Condition.notify()).
    ///
    /// Raises: RuntimeError("cannot notify on un-acquired lock") if the lock is not held.
    void notify(std::ptrdiff_t n = 1) {
        if (!lock_->locked()) throw_not_acquired("notify");
        notify_waiters(n);
    }
    /// Wake every waiter (Python's Condition.notify_all()). Raises as notify().
    void notify_all() { notify(static_cast<std::ptrdiff_t>(waiters_.size())); }

    static constexpr const char* kName = detail::kConditionName;

private:
    void notify_waiters(std::ptrdiff_t n);
    [[noreturn]] static void throw_not_acquired(const char* op);

    Lock own_;
    Lock* lock_;
    detail::WaitList waiters_;
};

/// A counter of permits (Python's asyncio.Semaphore).
///
/// acquire() takes a permit, waiting while there is none; release() gives
/// one back. FIFO fair: while tasks wait, a new acquire() waits behind them
/// even if a permit is free. Not thread-safe.
class Semaphore : detail::LoopBound {
public:
    /// Raises: ValueError("Semaphore initial value must be >= 0").
    explicit Semaphore(std::ptrdiff_t value = 1) : Semaphore(value, -1) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    /// True if acquire() would suspend: no permit, or others wait first.
    bool locked() const noexcept { return value_ == 0 || !waiters_.empty() || woken_ > 0; }

    /// Take a permit (Python's Semaphore.acquire()); gives true.
    ///
    /// Raises: RuntimeError if the semaphore is bound to another loop.
    /// Cancellation: safe. A cancelled acquire() takes no permit; one that had
    ///   just been handed to it is given back and passed to the next waiter.
    detail::AcquireAwaiter<Semaphore, bool> acquire() noexcept {
        return detail::AcquireAwaiter<Semaphore, bool>(this);
    }
    /// `auto guard = co_await sem;` is `async with sem:`.
    detail::AcquireAwaiter<Semaphore, LockGuard<Semaphore>> operator co_await() noexcept {
        return detail::AcquireAwaiter<Semaphore, LockGuard<Semaphore>>(this);
    }

    /// Give a permit back, waking the first waiter (Python's Semaphore.release()).
    ///
    /// Raises: ValueError("BoundedSemaphore released too many times") for a
    ///   BoundedSemaphore already at its initial value (nothing changes).
    void release() {
        if (bound_ >= 0 && value_ >= bound_) throw_over_release();
        ++value_;
        wake_up_next();
    }

    static constexpr const char* kName = "asyncio.locks.Semaphore";

protected:
    Semaphore(std::ptrdiff_t value, std::ptrdiff_t bound);

private:
    template <class M, class R>
    friend class detail::AcquireAwaiter;

    bool try_acquire_fast() noexcept {
        if (locked()) return false;
        --value_;
        return true;
    }
    void resume_waiter(detail::WaitNode* n);
    bool wake_up_next() {
        if (waiters_.empty()) return false;
        --value_;  // the permit goes to the woken waiter
        ++woken_;
        detail::wake_node(waiters_.pop_front());
        return true;
    }
    [[noreturn]] static void throw_over_release();

    detail::WaitList waiters_;
    std::ptrdiff_t value_;
    std::ptrdiff_t bound_;       // -1: unbounded
    std::ptrdiff_t woken_ = 0;   // woken waiters that have not run yet (they hold a permit)
};

/// A Semaphore that refuses to go above its initial value
/// (Python's asyncio.BoundedSemaphore).
class BoundedSemaphore : public Semaphore {
public:
    /// Raises: ValueError("Semaphore initial value must be >= 0").
    explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value, value) {}
};

/// A barrier: `parties` tasks wait until all of them have arrived
/// (Python's asyncio.Barrier, 3.11+).
class Barrier {
public:
    /// Raises: ValueError("parties must be > 0").
    explicit Barrier(std::ptrdiff_t parties);
    Barrier(const Barrier&) = delete;
    Barrier& operator=(const Barrier&) = delete;

    /// Wait for the other parties; gives this task's arrival index, 0 to
    /// parties()-1 (Python's Barrier.wait()). Arrivals while the previous
    /// round is still draining wait for the next round.
    ///
    /// Raises: BrokenBarrierError if the barrier is broken (abort()) or is
    ///   reset while waiting.
    /// Cancellation: the task leaves the barrier (it is no longer counted);
    ///   the others keep waiting.
    Coro<std::ptrdiff_t> wait();
    /// Return to the empty state; tasks waiting get BrokenBarrierError
    /// (Python's Barrier.reset()).
    Coro<> reset();
    /// Break the barrier: current and future wait() calls raise
    /// BrokenBarrierError until reset() (Python's Barrier.abort()).
    Coro<> abort();

    /// The number of tasks needed to pass the barrier.
    std::ptrdiff_t parties() const noexcept { return parties_; }
    /// The number of tasks waiting while the barrier is filling.
    std::ptrdiff_t n_waiting() const noexcept { return state_ == State::kFilling ? count_ : 0; }
    /// True if the barrier is broken.
    bool broken() const noexcept { return state_ == State::kBroken; }

private:
    enum class State : std::uint8_t { kFilling, kDraining, kResetting, kBroken };
    void exit_barrier();

    Condition cond_;
    std::ptrdiff_t parties_;
    std::ptrdiff_t count_ = 0;
    State state_ = State::kFilling;
};

}  // namespace asyncio
