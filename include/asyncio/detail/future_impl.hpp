// Internal: Future<T> (public through <asyncio/futures.hpp>).
#pragma once

#include <compare>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncio/detail/core.hpp"
#include "asyncio/detail/loop.hpp"
#include "asyncio/exceptions.hpp"

namespace asyncio {

namespace detail {

template <class T>
inline constexpr bool is_equality_comparable_v = requires(const T& a, const T& b) {
    { a == b } -> std::convertible_to<bool>;
};

// A done callback owned by the future until it is scheduled, then by the
// ready-queue entry that runs it. H is the handle type passed to f.
template <class H, class F>
struct UserDoneNode : UserDoneNodeBase {
    F f;
    static inline const char kTag = 0;  // one address per (H, F): the type's identity

    explicit UserDoneNode(F fn) : f(std::move(fn)) {
        on_done = &schedule_user_node;
        matches = &match;
        run = &invoke;
        dispose = &free;
    }
    static bool match(const DoneNode* self, const void* type, const void* key) {
        if (type != &kTag) return false;
        if constexpr (is_equality_comparable_v<F>) {
            return static_cast<const UserDoneNode*>(self)->f == *static_cast<const F*>(key);
        } else {
            return false;
        }
    }
    static void invoke(DoneNode* self, FutureBase* fut) {
        H h = H::from_base(fut);
        static_cast<UserDoneNode*>(self)->f(h);
    }
    static void free(DoneNode* self) noexcept { delete static_cast<UserDoneNode*>(self); }
};

/// Shared part of Future<T>, AnyTask and Task<T>: a counted reference.
class FutureRef {
public:
    FutureRef() noexcept = default;
    FutureRef(const FutureRef& o) noexcept : p_(o.p_) {
        if (p_) p_->add_ref();
    }
    FutureRef(FutureRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    FutureRef& operator=(const FutureRef& o) noexcept {
        FutureRef(o).swap(*this);
        return *this;
    }
    FutureRef& operator=(FutureRef&& o) noexcept {
        FutureRef(std::move(o)).swap(*this);
        return *this;
    }
    ~FutureRef() {
        if (p_) p_->release();
    }
    void swap(FutureRef& o) noexcept { std::swap(p_, o.p_); }

    /// True once the result, an exception or a cancellation is set.
    bool done() const { return base()->done(); }
    /// True if it was cancelled.
    bool cancelled() const { return base()->cancelled(); }
    /// The exception, or null on success (marks it retrieved).
    ///
    /// Raises: CancelledError if cancelled; InvalidStateError if not done.
    std::exception_ptr exception() const { return base()->checked_exception("Exception is not set."); }
    /// Request cancellation; false if already done (see Task/Future for details).
    bool cancel() { return base()->cancel(nullptr); }
    bool cancel(const std::string& msg) { return base()->cancel(&msg); }
    /// The loop this belongs to.
    EventLoop& get_loop() const { return base()->loop(); }

    explicit operator bool() const noexcept { return p_ != nullptr; }
    friend bool operator==(const FutureRef& a, const FutureRef& b) noexcept { return a.p_ == b.p_; }
    /// An order by identity, so handles go in std::set / std::map (std::hash
    /// is specialised too: Python's `background_tasks = set()`).
    friend std::strong_ordering operator<=>(const FutureRef& a, const FutureRef& b) noexcept {
        return std::compare_three_way{}(a.p_, b.p_);
    }

    FutureBase* base() const {
        if (!p_) throw InvalidStateError("empty future or task handle");
        return p_;
    }
    FutureBase* raw() const noexcept { return p_; }
    /// Debug mode, as Python's: completing a future with callbacks schedules
    /// them (call_soon), which from another thread raises RuntimeError.
    void check_debug_thread() const {
        if (p_->cb_tail_ && p_->loop_->get_debug()) [[unlikely]]
            p_->loop_->check_thread();
    }

    /// await_result()'s test, inline: finished with a value (no exception).
    bool has_value_result() const noexcept {
        return p_ && p_->state_ == FutureBase::State::kFinished && !p_->exception_;
    }
    /// await_result() when !has_value_result(): raise what result() raises
    /// (the exception, CancelledError, InvalidStateError), out of line.
    [[noreturn, gnu::cold, gnu::noinline]] void raise_no_value() const;

protected:
    struct Adopt {};
    FutureRef(FutureBase* p, Adopt) noexcept : p_(p) {}
    explicit FutureRef(FutureBase* p) noexcept : p_(p) {
        if (p_) p_->add_ref();
    }
    FutureBase* p_ = nullptr;
};

template <class T>
struct ValueSlot {
    std::optional<T> value;
};
template <>
struct ValueSlot<void> {};

template <class T>
struct FutureState : FutureStateBase, ValueSlot<T> {
    static void destroy_state(FutureBase* f) noexcept;
    // Same pool as coroutine frames: a future per switch costs no malloc.
    static void* operator new(std::size_t n) { return frame_alloc(n); }
    static void operator delete(void* p, std::size_t n) noexcept { frame_free(p, n); }
};

void future_destroyed_slow(FutureBase* f) noexcept;
/// A future or task is being freed: free its leftover callbacks, report an
/// exception nobody retrieved or a pending task, leave the registry.
inline void future_destroyed(FutureBase* f) noexcept {
    if (!f->cb_tail_ && !f->log_traceback_ && f->state_ != FutureBase::State::kPending) [[likely]] {
        if (f->linked()) f->unlink();
        return;
    }
    future_destroyed_slow(f);
}
void init_future(FutureBase* f, EventLoop& loop);

template <class T>
void FutureState<T>::destroy_state(FutureBase* f) noexcept {
    future_destroyed(f);
    delete static_cast<FutureState<T>*>(f);
}

/// RuntimeError for a task awaiting itself or a future of another loop (out
/// of line: building the message would weigh on every await's fast path).
[[noreturn, gnu::cold, gnu::noinline]] void throw_bad_await(FutureBase* f, TaskBase* task);

/// co_await on a Future or Task: registers a done node, wakes on completion.
/// Cancellation: cancels what is awaited (Python's rule); the awaiting task
/// sees its outcome, normally CancelledError.
template <class H>
class FutureAwaiter : Waiter, DoneNode {
public:
    explicit FutureAwaiter(H h) : h_(std::move(h)) {
        Waiter::cancel = &on_cancel;
        DoneNode::on_done = &on_complete;
    }
    FutureAwaiter(FutureAwaiter&& o) noexcept : h_(std::move(o.h_)) {
        Waiter::cancel = &on_cancel;
        DoneNode::on_done = &on_complete;
    }
    FutureAwaiter(const FutureAwaiter&) = delete;
    ~FutureAwaiter() {
        // Still registered only if destroyed while suspended (the frame torn
        // down mid-wait): completion unlinks every node.
        if (task_ && h_.raw() && !h_.raw()->done()) h_.raw()->remove_node(this);
    }
    // A done future gives its result without suspending and without a loop
    // check, as Python's Future.__await__ does.
    bool await_ready() const { return h_.base()->done(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        task_ = h.promise().task();
        FutureBase* f = h_.raw();
        if (f == task_ || f->loop_ != task_->loop_) [[unlikely]] throw_bad_await(f, task_);
        f->add_node(this);
        task_->suspend_on(h, this);
    }
    decltype(auto) await_resume() {
        if (task_ && task_->throw_cancel_) [[unlikely]] {
            // A cancel() that found the awaited future already done (set
            // must_cancel_): when that future was itself cancelled, its own
            // CancelledError is what the task sees (CPython's __step keeps
            // an exception that already is a CancelledError).
            if (!h_.raw()->cancelled()) task_->raise_cancel();
            task_->throw_cancel_ = false;
        }
        return h_.await_result();
    }

private:
    static bool on_cancel(Waiter* w, TaskBase*, const std::string* msg) {
        return static_cast<FutureAwaiter*>(w)->h_.raw()->cancel(msg);
    }
    static void on_complete(DoneNode* n, FutureBase*) {
        if (!n) __builtin_unreachable();  // no null test for the cast
        static_cast<FutureAwaiter*>(n)->task_->wake();
    }
    H h_;
    TaskBase* task_ = nullptr;
};

}  // namespace detail

/// Python's asyncio.Future: a result that will be set later.
///
/// A counted handle: copies refer to the same future. Created with
/// loop.create_future<T>() or Future<T>() (on the running loop).
/// Thread: loop thread only (use call_soon_threadsafe to set it from elsewhere).
template <class T = void>
class Future : public detail::FutureRef {
public:
    using value_type = T;

    /// A new future on the running loop. Raises RuntimeError without one.
    Future() : Future(detail::running_loop()) {}
    /// A new future on `loop`.
    explicit Future(EventLoop& loop) : FutureRef(new detail::FutureState<T>(), Adopt{}) {
        state()->destroy_ = &detail::FutureState<T>::destroy_state;
        if constexpr ((std::is_void_v<T> || std::is_trivially_destructible_v<T>) &&
                      sizeof(detail::FutureState<T>) <= 0xffff)
            p_->frame_offset_ = sizeof(detail::FutureState<T>);  // see FutureBase::destroy()
        detail::init_future(p_, loop);
    }

    /// The result. Raises: the future's exception; CancelledError if
    /// cancelled; InvalidStateError("Result is not set.") if not done.
    decltype(auto) result() const {
        auto e = base()->checked_exception("Result is not set.");
        if (e) std::rethrow_exception(e);
        if constexpr (!std::is_void_v<T>) return static_cast<const T&>(*state()->value);
    }

    /// Mark done with a value and schedule the callbacks.
    /// Raises: InvalidStateError if already done.
    template <class U = T>
        requires(!std::is_void_v<T>)
    void set_result(U&& v) {
        base()->check_settable();
        check_debug_thread();
        state()->value.emplace(std::forward<U>(v));
        p_->finish_ok();
    }
    void set_result()
        requires std::is_void_v<T>
    {
        base()->check_settable();
        check_debug_thread();
        p_->finish_ok();
    }
    /// Mark done with an exception. Raises: InvalidStateError if already done;
    /// TypeError-like RuntimeError when e is null or a CancelledError (use cancel()).
    void set_exception(std::exception_ptr e) {
        base()->check_settable();
        check_debug_thread();
        if (!e) throw ValueError("set_exception() needs an exception");
        try {
            std::rethrow_exception(e);
        } catch (const CancelledError&) {
            throw RuntimeError("CancelledError cannot be set as a Future exception; use cancel()");
        } catch (...) {
        }
        p_->finish_with(std::move(e));
    }

    /// Add f, called as f(Future<T>&) via call_soon once done (at once if done).
    template <class F>
    void add_done_callback(F&& f) {
        using D = std::decay_t<F>;
        static_assert(std::is_invocable_v<D&, Future<T>&>, "callback must be callable as f(Future<T>&)");
        base()->add_node(new detail::UserDoneNode<Future<T>, D>(std::forward<F>(f)));
    }
    /// Remove every registered done callback equal to f; returns how many.
    ///
    /// Callbacks compare equal when they have the same type and that type's
    /// operator== says so: function pointers (Python's usual case) and any
    /// equality-comparable callable object. Lambdas never compare equal.
    template <class F>
    std::size_t remove_done_callback(const F& f) {
        using D = std::decay_t<F>;
        const D key = f;
        return base()->remove_matching(&detail::UserDoneNode<Future<T>, D>::kTag, &key);
    }

    auto operator co_await() const& { return detail::FutureAwaiter<Future<T>>(*this); }
    auto operator co_await() && { return detail::FutureAwaiter<Future<T>>(std::move(*this)); }

    // internal
    static Future from_base(detail::FutureBase* f) { return Future(f); }
    T await_result() const {
        if (!has_value_result()) [[unlikely]] raise_no_value();
        if constexpr (!std::is_void_v<T>) {
            if constexpr (std::is_copy_constructible_v<T>)
                return T(*state()->value);
            else
                return T(std::move(*state()->value));
        }
    }

private:
    explicit Future(detail::FutureBase* f) : FutureRef(f) {}
    detail::FutureState<T>* state() const { return static_cast<detail::FutureState<T>*>(p_); }
};

template <class T>
Future<T> EventLoop::create_future() {
    return Future<T>(*this);
}

}  // namespace asyncio

/// Future handles hash by identity, as Python's futures do.
template <class T>
struct std::hash<asyncio::Future<T>> {
    std::size_t operator()(const asyncio::Future<T>& f) const noexcept { return std::hash<const void*>{}(f.raw()); }
};
