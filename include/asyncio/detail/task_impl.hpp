// Internal: Coro, Task, create_task, sleep (public through <asyncio/tasks.hpp>).
#pragma once

#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/detail/core.hpp"
#include "asyncio/detail/loop.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/detail/future_impl.hpp"

namespace asyncio {

template <class T = void> class Coro;
template <class T = void> class Task;

namespace detail {

template <class T>
struct PromiseValue {
    std::optional<T> value_;
    template <class U = T>
    void return_value(U&& v) {
        value_.emplace(std::forward<U>(v));
    }
};
template <>
struct PromiseValue<void> {
    void return_void() noexcept {}
};

template <class T>
class Promise : public TaskBase, public PromiseValue<T> {
public:
    Coro<T> get_return_object() noexcept;
    std::suspend_always initial_suspend() noexcept { return {}; }

    struct FinalAwaiter {
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<Promise> h) noexcept {
            Promise& p = h.promise();
            if (!p.is_task_)
                p.root_->link_ = p.link_;  // back to the parent, via the trampoline
            else
                p.finish();  // a task's root coroutine
        }
        void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    static void* operator new(std::size_t n) { return frame_alloc(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }

    std::coroutine_handle<Promise> handle() noexcept {
        return std::coroutine_handle<Promise>::from_promise(*this);
    }
};

template <class T>
class CoroAwaiter {
public:
    explicit CoroAwaiter(std::coroutine_handle<Promise<T>> h) noexcept : h_(h) {}
    /// Empty until adopt(): for lazy awaitables that need a frame only on
    /// their slow path (StreamReader::read(), StreamWriter::drain()).
    CoroAwaiter() noexcept = default;
    void adopt(std::coroutine_handle<Promise<T>> h) noexcept { h_ = h; }
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }
    CoroAwaiter(CoroAwaiter&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    CoroAwaiter(const CoroAwaiter&) = delete;
    ~CoroAwaiter() {
        // A finished child (the usual case) has no locals left, no awaiter
        // owning a grandchild: destroying it cannot start the long chain of
        // frames destroying frames that destroy_coroutine() queues (what is
        // left, its parameters and result, release tasks through their own
        // guarded path).
        if (h_) {
            if (h_.done()) [[likely]]
                h_.destroy();
            else
                destroy_coroutine(h_);
        }
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> parent) noexcept {
        Promise<T>& cp = h_.promise();
        TaskBase* t = parent.promise().task();
        cp.root_ = t;
        cp.link_ = parent;
        cp.started_ = true;
        t->link_ = h_;
    }
    T await_resume() {
        Promise<T>& cp = h_.promise();
        if (cp.exception_) std::rethrow_exception(cp.exception_);
        if constexpr (!std::is_void_v<T>) return T(std::move(*cp.value_));
    }

private:
    std::coroutine_handle<Promise<T>> h_{};
};

template <class T>
struct is_coro : std::false_type {};
template <class T>
struct is_coro<Coro<T>> : std::true_type {};

}  // namespace detail

/// A coroutine object (Python's coroutine): the return type of a coroutine function.
///
/// Lazy and move-only: nothing runs until it is awaited (`co_await coro()`,
/// inline in the current task, like `await coro()`) or scheduled with
/// create_task(). In debug mode, destroying one that never ran is reported.
template <class T>
class [[nodiscard]] Coro {
public:
    using promise_type = detail::Promise<T>;
    using value_type = T;

    Coro(Coro&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Coro& operator=(Coro&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Coro(const Coro&) = delete;
    Coro& operator=(const Coro&) = delete;
    ~Coro() { reset(); }

    /// Run it inline in the awaiting task; gives its result or rethrows.
    detail::CoroAwaiter<T> operator co_await() && noexcept { return detail::CoroAwaiter<T>(release()); }

    /// Internal: give up ownership of the frame.
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, nullptr); }
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

private:
    friend class detail::Promise<T>;
    explicit Coro(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    void reset() noexcept {
        if (h_) {
            if (!h_.promise().started_) detail::report_never_awaited();
            h_.destroy();
            h_ = nullptr;
        }
    }
    std::coroutine_handle<promise_type> h_;
};

template <class T>
Coro<T> detail::Promise<T>::get_return_object() noexcept {
    return Coro<T>(handle());
}

/// A handle to any task, whatever its result type (what current_task() and
/// all_tasks() give). Counted: copies refer to the same task. Pointer-like:
/// `if (auto t = current_task()) t->cancel();`.
class AnyTask : public detail::FutureRef {
public:
    AnyTask() noexcept = default;

    /// Request cancellation (Python's Task.cancel(msg)). Returns false if the
    /// task is already done. A suspended task sees CancelledError(msg) at its
    /// co_await on its next step; it may catch it and go on.
    bool cancel() { return task()->task_cancel(nullptr); }
    bool cancel(const std::string& msg) { return task()->task_cancel(&msg); }
    /// Number of pending cancellation requests (Python 3.11+).
    int cancelling() const { return static_cast<int>(task()->num_cancels_requested_); }
    /// Decrement the cancellation count; returns the new count.
    int uncancel() { return task()->uncancel(); }
    /// The name: "Task-<n>" unless given.
    std::string get_name() const { return task()->get_name(); }
    void set_name(std::string name) { task()->set_name(std::move(name)); }

    const AnyTask* operator->() const noexcept { return this; }
    AnyTask* operator->() noexcept { return this; }

    /// Add f, called as f(AnyTask&) via call_soon once done.
    template <class F>
    void add_done_callback(F&& f) {
        using D = std::decay_t<F>;
        base()->add_node(new detail::UserDoneNode<AnyTask, D>(std::forward<F>(f)));
    }
    template <class F>
    std::size_t remove_done_callback(const F& f) {
        using D = std::decay_t<F>;
        const D key = f;
        return base()->remove_matching(&detail::UserDoneNode<AnyTask, D>::kTag, &key);
    }

    // internal
    static AnyTask from_base(detail::FutureBase* f) { return AnyTask(f); }
    detail::TaskBase* task() const { return static_cast<detail::TaskBase*>(base()); }
    void await_result() const {
        if (!has_value_result()) [[unlikely]] raise_no_value();
    }
    auto operator co_await() const& { return detail::FutureAwaiter<AnyTask>(*this); }

protected:
    explicit AnyTask(detail::FutureBase* f) noexcept : FutureRef(f) {}
    AnyTask(detail::FutureBase* f, Adopt a) noexcept : FutureRef(f, a) {}
};

/// Python's asyncio.Task: a coroutine scheduled on the loop.
///
/// Copyable handle to shared state; the loop keeps a pending task alive even
/// when every handle is dropped. `co_await task` gives result().
template <class T>
class Task : public AnyTask {
public:
    using value_type = T;
    Task() noexcept = default;

    /// The result. Raises: the task's exception; CancelledError if
    /// cancelled; InvalidStateError("Result is not set.") if not done.
    decltype(auto) result() const {
        auto e = base()->checked_exception("Result is not set.");
        if (e) std::rethrow_exception(e);
        if constexpr (!std::is_void_v<T>) return static_cast<const T&>(*promise()->value_);
    }

    /// Add f, called as f(Task<T>&) via call_soon once done (at once if done).
    template <class F>
    void add_done_callback(F&& f) {
        using D = std::decay_t<F>;
        static_assert(std::is_invocable_v<D&, Task<T>&>, "callback must be callable as f(Task<T>&)");
        base()->add_node(new detail::UserDoneNode<Task<T>, D>(std::forward<F>(f)));
    }
    /// Remove every done callback equal to f; returns how many. Callbacks
    /// compare equal when they have the same type and operator== says so
    /// (function pointers, equality-comparable callables; never lambdas).
    template <class F>
    std::size_t remove_done_callback(const F& f) {
        using D = std::decay_t<F>;
        const D key = f;
        return base()->remove_matching(&detail::UserDoneNode<Task<T>, D>::kTag, &key);
    }

    auto operator co_await() const& { return detail::FutureAwaiter<Task<T>>(*this); }
    auto operator co_await() && { return detail::FutureAwaiter<Task<T>>(std::move(*this)); }

    // internal
    static Task from_base(detail::FutureBase* f) { return Task(f); }
    static Task adopt(detail::Promise<T>* p) { return Task(p, Adopt{}); }
    T await_result() const {
        if (!has_value_result()) [[unlikely]] raise_no_value();
        if constexpr (!std::is_void_v<T>) {
            if constexpr (std::is_copy_constructible_v<T>)
                return T(*promise()->value_);
            else
                return T(std::move(*promise()->value_));
        }
    }

private:
    explicit Task(detail::FutureBase* f) noexcept : AnyTask(f) {}
    Task(detail::FutureBase* f, Adopt a) noexcept : AnyTask(f, a) {}
    detail::Promise<T>* promise() const {
        return static_cast<detail::Promise<T>*>(static_cast<detail::TaskBase*>(base()));
    }
};

// ---- create_task ---------------------------------------------------------

namespace detail {
/// This thread's block of task numbers (Task-<n>): the next one and the
/// end of the block; next_task_id() (src/tasks.cpp) takes a new block.
extern thread_local constinit std::uint64_t t_next_task_id [[gnu::tls_model("initial-exec")]];
extern thread_local constinit std::uint64_t t_task_id_end [[gnu::tls_model("initial-exec")]];

/// A new task's fields (the rest were zeroed by the promise's constructor).
inline void init_task(EventLoop& loop, TaskBase* t, std::coroutine_handle<> h, std::uint32_t id) noexcept {
    t->loop_ = &loop;
    t->is_task_ = true;
    t->refs_ = 2;  // the loop's (while pending) and the returned handle's
    t->id_ = id;
    t->frame_offset_ = static_cast<std::uint16_t>(reinterpret_cast<char*>(t) - static_cast<char*>(h.address()));
    t->link_ = h;
    t->parked_ = true;
}

/// start_task()'s rare cases: a name, a closed loop, a full ready queue,
/// a new block of task numbers. Raises: RuntimeError (closed: the frame is
/// destroyed), bad_alloc.
[[gnu::noinline]] void start_task_slow(EventLoop& loop, TaskBase* t, std::coroutine_handle<> h, std::string* name);

/// create_task()'s engine: make the frame h (promise t) a task, schedule
/// its first step, register it. Inline: the common case is a few stores.
inline void start_task(EventLoop& loop, TaskBase* t, std::coroutine_handle<> h) {
    if (loop.is_closed() || loop.ready_queue_full() || t_next_task_id == t_task_id_end) [[unlikely]] {
        start_task_slow(loop, t, h, nullptr);
        return;
    }
    init_task(loop, t, h, static_cast<std::uint32_t>(t_next_task_id++));
    t->step_scheduled_ = true;
    loop.try_push_ready_raw(&TaskBase::step_entry, t);  // cannot fail: the queue has room
    loop.register_future(t);
}

template <class Aw>
using await_result_t = decltype(std::declval<Aw>().await_resume());

template <class Aw>
auto awaiter_of(Aw&& aw) {
    if constexpr (requires { std::forward<Aw>(aw).operator co_await(); })
        return std::forward<Aw>(aw).operator co_await();
    else
        return std::forward<Aw>(aw);
}

template <class Aw>
using awaitable_result_t = std::decay_t<decltype(awaiter_of(std::declval<Aw>()).await_resume())>;

/// Wrap any awaitable in a coroutine (what Python's ensure_future does for
/// awaitables that are not coroutines).
template <class R, class Aw>
Coro<R> wrap_awaitable(Aw aw) {
    if constexpr (std::is_void_v<R>) {
        co_await std::move(aw);
    } else {
        co_return co_await std::move(aw);
    }
}

template <class Aw>
auto as_coro(Aw aw) {
    if constexpr (is_coro<Aw>::value)
        return aw;
    else if constexpr (coro_convertible<Aw>)
        return coro_of_t<Aw>(std::move(aw));  // its own coroutine, not a wrapper
    else
        return wrap_awaitable<awaitable_result_t<Aw>>(std::move(aw));
}
}  // namespace detail

// A refused create_task() (closed loop; in debug mode, another thread) drops
// the coroutine unrun: it is reported against that loop, as Python's
// "coroutine ... was never awaited" warning, then destroyed here.
template <class T>
[[gnu::noinline]] void EventLoop::refuse_task_if_unusable(Coro<T>& coro) {
    try {
        check_callable_use_slow();
    } catch (...) {
        if (auto h = coro.release()) {
            detail::report_never_awaited(*this);
            h.destroy();
        }
        throw;
    }
}

template <class T>
[[gnu::always_inline]] inline Task<T> EventLoop::create_task(Coro<T> coro) {
    if (debug_ || closed_) [[unlikely]] refuse_task_if_unusable(coro);
    auto h = coro.release();
    if (!h) throw RuntimeError("create_task() of an empty coroutine object");
    detail::start_task(*this, &h.promise(), h);
    return Task<T>::adopt(&h.promise());
}

template <class T>
Task<T> EventLoop::create_task(Coro<T> coro, std::string name) {
    if (debug_ || closed_) [[unlikely]] refuse_task_if_unusable(coro);
    auto h = coro.release();
    if (!h) throw RuntimeError("create_task() of an empty coroutine object");
    detail::start_task_slow(*this, &h.promise(), h, &name);
    return Task<T>::adopt(&h.promise());
}

/// Schedule a coroutine as a Task on the running loop (Python's
/// asyncio.create_task). Its first step runs via call_soon, not eagerly.
/// Raises: RuntimeError("no running event loop").
template <class T>
[[gnu::always_inline]] inline Task<T> create_task(Coro<T> coro) {
    return detail::running_loop().create_task(std::move(coro));
}
template <class T>
Task<T> create_task(Coro<T> coro, std::string name) {
    return detail::running_loop().create_task(std::move(coro), std::move(name));
}
/// Any other awaitable (sleep(), a Future, ...) is wrapped in a coroutine first.
template <class Aw>
    requires(!detail::is_coro<std::decay_t<Aw>>::value)
auto create_task(Aw aw) {
    return create_task(detail::as_coro(std::move(aw)));
}
template <class Aw>
    requires(!detail::is_coro<std::decay_t<Aw>>::value)
auto create_task(Aw aw, std::string name) {
    return create_task(detail::as_coro(std::move(aw)), std::move(name));
}

/// The running task, or an empty handle when called from a plain callback.
/// Raises: RuntimeError("no running event loop") outside a running loop.
AnyTask current_task();
/// The tasks of the running loop that are not done yet.
std::vector<AnyTask> all_tasks();

// ---- sleep -----------------------------------------------------------------

namespace detail {
template <class T>
struct SleepResult {
    T result;
    T take() { return std::move(result); }
};
template <>
struct SleepResult<void> {
    void take() {}
};

/// co_await sleep(...). Cancellation: safe; the timer is withdrawn and
/// CancelledError is raised at the co_await.
/// ValueError("Invalid delay: NaN (not a number)"), as Python 3.13's sleep().
[[noreturn, gnu::cold]] void throw_nan_delay();

template <class T>
class SleepAwaiter : Waiter, SleepResult<T> {
public:
    template <class... R>
    explicit SleepAwaiter(double delay, R&&... r) : SleepResult<T>{std::forward<R>(r)...}, delay_(delay) {
        Waiter::cancel = &on_cancel;
    }
    SleepAwaiter(SleepAwaiter&& o) noexcept(std::is_nothrow_move_constructible_v<SleepResult<T>>)
        : SleepResult<T>(std::move(o)), delay_(o.delay_) {
        Waiter::cancel = &on_cancel;
    }
    SleepAwaiter(const SleepAwaiter&) = delete;
    ~SleepAwaiter() {
        if (armed_ && task_->loop_) timer_.cancel();
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        task_ = h.promise().task();
        if (delay_ <= 0) {  // sleep(0): yield exactly one iteration
            task_->schedule_step();  // may throw: before suspend_on
            task_->suspend_on(h, nullptr);
            return;
        }
        if (delay_ != delay_) [[unlikely]] throw_nan_delay();  // Python 3.13
        timer_ = task_->loop_->call_later(delay_, detail::Callback(&fired, this));
        armed_ = true;
        task_->suspend_on(h, this);
    }
    T await_resume() {
        task_->check_cancel();
        return this->take();
    }

private:
    static void fired(void* p) {
        auto* self = static_cast<SleepAwaiter*>(p);
        self->armed_ = false;
        self->task_->wake();
    }
    static bool on_cancel(Waiter* w, TaskBase* t, const std::string* msg) {
        auto* self = static_cast<SleepAwaiter*>(w);
        if (!self->armed_ || !self->timer_.try_cancel()) return false;
        self->armed_ = false;
        t->wake_cancelled(msg);
        return true;
    }
    double delay_;
    TaskBase* task_ = nullptr;
    TimerHandle timer_;
    bool armed_ = false;
};
}  // namespace detail

/// Suspend the current task for `delay` seconds (double) or a std::chrono
/// duration (Python's asyncio.sleep). sleep(0) yields exactly one loop
/// iteration; a negative delay counts as zero.
/// Cancellation: safe; CancelledError is raised at the co_await.
inline detail::SleepAwaiter<void> sleep(double delay) { return detail::SleepAwaiter<void>(delay); }
/// Integer seconds: an exact match, so `sleep(0)` also wins over POSIX ::sleep
/// under `using namespace asyncio`.
template <std::integral I>
detail::SleepAwaiter<void> sleep(I delay) {
    return detail::SleepAwaiter<void>(static_cast<double>(delay));
}
template <class Rep, class Period>
detail::SleepAwaiter<void> sleep(std::chrono::duration<Rep, Period> delay) {
    return detail::SleepAwaiter<void>(detail::to_seconds(delay));
}
/// sleep(delay, result): the co_await gives `result` back.
template <class D, class T>
detail::SleepAwaiter<std::decay_t<T>> sleep(D delay, T&& result) {
    return detail::SleepAwaiter<std::decay_t<T>>(detail::to_seconds(delay), std::forward<T>(result));
}

// ---- EventLoop::run_until_complete ----------------------------------------

namespace detail {
/// run_until_complete's engine: run the loop until f is done.
void run_until_done(EventLoop& loop, FutureBase* f);
}  // namespace detail

template <class T>
T EventLoop::run_until_complete(Task<T> task) {
    detail::run_until_done(*this, task.base());
    return task.await_result();
}
template <class T>
T EventLoop::run_until_complete(Future<T> fut) {
    detail::run_until_done(*this, fut.base());
    return fut.await_result();
}
template <class T>
T EventLoop::run_until_complete(Coro<T> coro) {
    check_can_run();  // before the task exists: a refused coroutine never runs (Python)
    Task<T> task = create_task(std::move(coro));
    return run_until_complete(std::move(task));
}

}  // namespace asyncio

/// Task handles hash by identity, as Python's tasks do.
template <class T>
struct std::hash<asyncio::Task<T>> {
    std::size_t operator()(const asyncio::Task<T>& t) const noexcept { return std::hash<const void*>{}(t.raw()); }
};
template <>
struct std::hash<asyncio::AnyTask> {
    std::size_t operator()(const asyncio::AnyTask& t) const noexcept { return std::hash<const void*>{}(t.raw()); }
};
