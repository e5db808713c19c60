// Mirrors Python's asyncio.threads (to_thread) with the pieces it rests on:
// concurrent.futures (ThreadPoolExecutor, Future), loop.run_in_executor,
// asyncio.run_coroutine_threadsafe and asyncio.wrap_future.
//
// Crossing threads: a ConcurrentFuture is thread-safe (a mutex and a
// condition variable); an asyncio Future, a Task and the loop are not, so
// everything that reaches back into a loop goes through
// loop.call_soon_threadsafe, and every loop-side object (Future handles, Task
// handles) is created, copied and destroyed on its loop's thread only.
#pragma once

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/events.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/futures.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

template <class T = void> class ConcurrentFuture;

namespace detail {

// Shared state of a ConcurrentFuture: every member is guarded by mu.
// States follow concurrent.futures: PENDING -> RUNNING -> FINISHED, or
// PENDING -> CANCELLED. Done callbacks run once, outside the lock, in the
// thread that completes the future (at once if added to a done one).
struct ConcurrentStateBase {
    enum class State : unsigned char { kPending, kRunning, kCancelled, kFinished };

    mutable std::mutex mu;
    std::condition_variable cv;
    State state = State::kPending;
    std::exception_ptr exc;
    std::vector<std::function<void()>> callbacks;

    virtual ~ConcurrentStateBase() = default;

    bool cancel();
    bool set_running_or_notify_cancel();
    bool done() const;
    bool cancelled() const;
    bool running() const;
    /// Wait until done; false if `seconds` (when given) ran out first.
    bool wait(std::optional<double> seconds) const;
    /// Raises CancelledError if cancelled, rethrows the exception if any (state must be done).
    void rethrow_if_failed() const;
    std::exception_ptr exception_of() const;  // CancelledError if cancelled
    /// Finish with e (null: success after store() put the value in): false if already done.
    template <class Store>
    bool try_complete(std::exception_ptr e, Store&& store) {
        std::vector<std::function<void()>> cbs;
        {
            std::lock_guard<std::mutex> lk(mu);
            if (state == State::kCancelled || state == State::kFinished) return false;
            if (e)
                exc = std::move(e);
            else
                store();
            state = State::kFinished;
            cbs.swap(callbacks);
        }
        cv.notify_all();
        run_callbacks(cbs);
        return true;
    }
    /// Add f; runs it now (in this thread) if already done.
    void add_callback(std::function<void()> f);
    static void run_callbacks(std::vector<std::function<void()>>& cbs) noexcept;
};

template <class T>
struct ConcurrentState : ConcurrentStateBase {
    std::optional<T> value;
    // run_coroutine_threadsafe: the task, touched on its loop's thread only.
    AnyTask loop_task;
};
template <>
struct ConcurrentState<void> : ConcurrentStateBase {
    AnyTask loop_task;
};

[[noreturn]] void raise_timeout();
[[noreturn]] void raise_executor_shut_down();

template <class D>
std::optional<double> seconds_of(D d) {
    return detail::to_seconds(d);
}

template <class R, class F, class Tuple>
void call_and_store(ConcurrentState<R>& st, F& f, Tuple& args) {
    if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(args));
        st.try_complete(nullptr, [] {});
    } else {
        std::optional<R> r;
        r.emplace(std::apply(f, std::move(args)));
        st.try_complete(nullptr, [&] { st.value = std::move(r); });
    }
}

// A job submitted to an Executor. Dropped without running (shutdown with
// cancel_futures), it cancels its future.
template <class R, class F, class... A>
struct ExecutorJob {
    std::shared_ptr<ConcurrentState<R>> st;
    F f;
    std::tuple<A...> args;

    template <class FF, class... AA>
    ExecutorJob(std::shared_ptr<ConcurrentState<R>> s, FF&& ff, AA&&... aa)
        : st(std::move(s)), f(std::forward<FF>(ff)), args(std::forward<AA>(aa)...) {}
    ExecutorJob(ExecutorJob&&) = default;
    ~ExecutorJob() {
        if (st) st->cancel();  // no effect once it ran
    }
    void operator()() {
        auto s = std::move(st);
        if (!s->set_running_or_notify_cancel()) return;
        std::exception_ptr e;
        try {
            call_and_store<R>(*s, f, args);
        } catch (...) {
            e = std::current_exception();
        }
        // Completed outside the handler: once the loop's thread has the
        // exception, this thread holds no reference to it any more.
        if (e) s->try_complete(std::move(e), [] {});
    }
};

}  // namespace detail

/// Python's concurrent.futures.Future: a result slot shared between threads.
///
/// A counted handle (copies share the state). Unlike asyncio's Future it is
/// thread-safe: result() blocks the calling thread until the result is set.
/// Never call the blocking members from a loop's thread while that loop must
/// produce the result (it would deadlock, as in Python).
/// Thread: every member is safe from any thread.
template <class T>
class ConcurrentFuture {
public:
    using value_type = T;

    /// A new pending future (Python's Future()).
    ConcurrentFuture() : st_(std::make_shared<detail::ConcurrentState<T>>()) {}

    /// Cancel if not running or done yet; true if it is (now) cancelled.
    bool cancel() { return st_->cancel(); }
    bool cancelled() const { return st_->cancelled(); }
    bool running() const { return st_->running(); }
    bool done() const { return st_->done(); }

    /// Wait for the result and return it (a copy; moved out if T is move-only).
    ///
    /// Raises: the future's exception; CancelledError if cancelled.
    T result() const {
        st_->wait(std::nullopt);
        return take();
    }
    /// Like result(), waiting at most `timeout` (seconds as double, or a std::chrono duration).
    ///
    /// Raises: TimeoutError if it is not done by then; otherwise as result().
    template <class D>
    T result(D timeout) const {
        if (!st_->wait(detail::seconds_of(timeout))) detail::raise_timeout();
        return take();
    }
    /// Wait, then return the exception (null on success).
    ///
    /// Raises: CancelledError if cancelled.
    std::exception_ptr exception() const {
        st_->wait(std::nullopt);
        return st_->exception_of();
    }
    /// Like exception(), waiting at most `timeout`. Raises: TimeoutError.
    template <class D>
    std::exception_ptr exception(D timeout) const {
        if (!st_->wait(detail::seconds_of(timeout))) detail::raise_timeout();
        return st_->exception_of();
    }

    /// Call f(ConcurrentFuture<T>&) once done, in the thread that completes it
    /// (at once, in this thread, if already done). Exceptions from f are ignored.
    template <class F>
    void add_done_callback(F f) {
        std::weak_ptr<detail::ConcurrentState<T>> w = st_;
        st_->add_callback([f = std::move(f), w]() mutable {
            if (auto s = w.lock()) {
                ConcurrentFuture h(std::move(s));
                f(h);
            }
        });
    }

    /// Mark running; false if it was cancelled meanwhile (for executors).
    bool set_running_or_notify_cancel() { return st_->set_running_or_notify_cancel(); }
    /// Set the result. Raises: InvalidStateError if already done or cancelled.
    template <class U = T>
        requires(!std::is_void_v<T>)
    void set_result(U&& v) {
        if (!st_->try_complete(nullptr, [&] { st_->value.emplace(std::forward<U>(v)); }))
            throw InvalidStateError("the future is already done");
    }
    void set_result()
        requires std::is_void_v<T>
    {
        if (!st_->try_complete(nullptr, [] {})) throw InvalidStateError("the future is already done");
    }
    /// Set the exception. Raises: InvalidStateError if already done or cancelled.
    void set_exception(std::exception_ptr e) {
        if (!e) throw ValueError("set_exception() needs an exception");
        if (!st_->try_complete(std::move(e), [] {})) throw InvalidStateError("the future is already done");
    }

    friend bool operator==(const ConcurrentFuture& a, const ConcurrentFuture& b) noexcept {
        return a.st_ == b.st_;
    }

    // internal
    explicit ConcurrentFuture(std::shared_ptr<detail::ConcurrentState<T>> s) noexcept : st_(std::move(s)) {}
    const std::shared_ptr<detail::ConcurrentState<T>>& state() const noexcept { return st_; }

private:
    T take() const {
        st_->rethrow_if_failed();
        if constexpr (!std::is_void_v<T>) {
            std::lock_guard<std::mutex> lk(st_->mu);
            if constexpr (std::is_copy_constructible_v<T>)
                return T(*st_->value);
            else
                return T(std::move(*st_->value));
        }
    }
    std::shared_ptr<detail::ConcurrentState<T>> st_;
};

/// Python's concurrent.futures.Executor: runs calls somewhere else.
///
/// Subclass it and implement execute() and shutdown() to plug a custom
/// executor into run_in_executor().
class Executor {
public:
    virtual ~Executor() = default;

    /// Schedule f(args...) and return a future for its result (Executor.submit).
    ///
    /// f and the arguments are decay-copied (use std::ref for references).
    /// Raises: RuntimeError after shutdown().
    template <class F, class... A>
    auto submit(F&& f, A&&... args) {
        using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<A>...>;
        auto st = std::make_shared<detail::ConcurrentState<R>>();
        ConcurrentFuture<R> fut(st);
        execute(detail::Callback(detail::ExecutorJob<R, std::decay_t<F>, std::decay_t<A>...>(
            std::move(st), std::forward<F>(f), std::forward<A>(args)...)));
        return fut;
    }

    /// Stop accepting work (Executor.shutdown). With `wait`, return once the
    /// queued work has run; with `cancel_futures`, queued work that has not
    /// started is cancelled instead.
    virtual void shutdown(bool wait = true, bool cancel_futures = false) = 0;

protected:
    /// Run job() once on some thread, or destroy it unrun (which cancels its future).
    /// Raises: RuntimeError once shut down.
    virtual void execute(detail::Callback job) = 0;
};

/// Python's concurrent.futures.ThreadPoolExecutor: a pool of worker threads.
///
/// Threads start on demand up to max_workers (default min(32, cores + 4), as
/// Python's max_workers=None) and are reused. The destructor calls shutdown(true).
/// Raises: ValueError("max_workers must be greater than 0") for max_workers 0.
/// Thread: submit() and shutdown() are safe from any thread.
class ThreadPoolExecutor : public Executor {
public:
    ThreadPoolExecutor();
    explicit ThreadPoolExecutor(std::size_t max_workers);
    /// A signed count (ThreadPoolExecutor(-1)) raises the ValueError too, rather
    /// than becoming a huge unsigned one.
    template <std::signed_integral I>
    explicit ThreadPoolExecutor(I max_workers)
        : ThreadPoolExecutor(max_workers > 0 ? static_cast<std::size_t>(max_workers) : std::size_t{0}) {}
    ~ThreadPoolExecutor() override;
    ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
    ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

    void shutdown(bool wait = true, bool cancel_futures = false) override;
    std::size_t max_workers() const noexcept { return max_workers_; }

protected:
    void execute(detail::Callback job) override;

private:
    struct Impl;
    void worker(std::size_t index);
    std::unique_ptr<Impl> impl_;
    std::size_t max_workers_;
};

// ---- asyncio side ---------------------------------------------------------------

namespace detail {

// Links a ConcurrentFuture to an asyncio Future on the loop thread (Python's
// _chain_future). Listed by the loop (BridgeLink): the source's completion
// posts deliver() through the loop's anchor, which runs it and frees the
// bridge; if that post is refused (the loop closed or is gone) or discarded
// by close(), close() frees the bridge instead. Only the loop's thread ever
// touches or frees it.
template <class T>
struct WrapBridge : DoneNode, BridgeLink {
    Future<T> dst;
    ConcurrentFuture<T> src;
    // Nobody else holds src (run_in_executor): move the outcome out instead
    // of copying it, so the loop's thread alone owns it afterwards.
    bool exclusive;

    WrapBridge(Future<T> d, ConcurrentFuture<T> s, bool excl)
        : dst(std::move(d)), src(std::move(s)), exclusive(excl) {
        on_done = &dst_done;
        discard = &discard_bridge;
    }
    ~WrapBridge() { unlink(); }
    WrapBridge(const WrapBridge&) = delete;
    WrapBridge& operator=(const WrapBridge&) = delete;
    static void discard_bridge(BridgeLink* l) noexcept {
        auto* b = static_cast<WrapBridge*>(l);
        b->dst.raw()->remove_node(b);
        delete b;
    }
    static void run_deliver(void* p) {
        std::unique_ptr<WrapBridge> own(static_cast<WrapBridge*>(p));
        own->deliver();
    }
    // The asyncio future completed: if it was cancelled, so is the source.
    static void dst_done(DoneNode* n, FutureBase* f) {
        if (f->cancelled()) static_cast<WrapBridge*>(n)->src.cancel();
    }
    void deliver() {
        dst.raw()->remove_node(this);
        auto& st = *src.state();
        std::unique_lock<std::mutex> lk(st.mu);
        if (dst.done()) return;
        if (st.state == ConcurrentStateBase::State::kCancelled) {
            lk.unlock();
            dst.cancel();
            return;
        }
        std::exception_ptr e = exclusive ? std::exchange(st.exc, nullptr) : st.exc;
        if constexpr (std::is_void_v<T>) {
            lk.unlock();
            if (e)
                dst.set_exception(std::move(e));
            else
                dst.set_result();
        } else {
            std::optional<T> v;
            if (!e) {
                if constexpr (std::is_copy_constructible_v<T>) {
                    if (!exclusive) v.emplace(*st.value);
                }
                if (!v) v.emplace(std::move(*st.value));
            }
            lk.unlock();
            if (e)
                dst.set_exception(std::move(e));
            else
                dst.set_result(std::move(*v));
        }
    }
};

template <class T>
Future<T> wrap_future_on(EventLoop& loop, ConcurrentFuture<T> src, bool exclusive = false) {
    Future<T> dst = loop.create_future<T>();
    auto* b = new WrapBridge<T>(dst, src, exclusive);
    dst.raw()->add_node(b);
    loop.link_bridge(b);
    // Through the anchor: the job may finish after the loop is closed or
    // destroyed (a custom executor outlives it); then the post is refused
    // and close() has freed the bridge.
    std::shared_ptr<LoopAnchor> anchor = loop.anchor();
    src.state()->add_callback([b, anchor] { (void)anchor->post(Callback(&WrapBridge<T>::run_deliver, b)); });
    return dst;
}

}  // namespace detail

/// Wrap a concurrent future in an asyncio Future of the running loop (asyncio.wrap_future).
///
/// The result, exception or cancellation of `fut` is copied into the returned
/// future on the loop's thread; cancelling the returned future cancels `fut`
/// (which only succeeds if it has not started running).
/// Raises: RuntimeError("no running event loop").
template <class T>
Future<T> wrap_future(ConcurrentFuture<T> fut) {
    return detail::wrap_future_on(detail::running_loop(), std::move(fut));
}
/// Wrap on an explicit loop (Python's wrap_future(fut, loop=loop)). Loop thread only.
template <class T>
Future<T> wrap_future(ConcurrentFuture<T> fut, EventLoop& loop) {
    return detail::wrap_future_on(loop, std::move(fut));
}

template <class F, class... A>
auto EventLoop::run_in_executor(Executor* executor, F&& f, A&&... args) {
    if (is_closed()) throw RuntimeError("Event loop is closed");  // before f is submitted (Python)
    Executor& ex = executor ? *executor : default_executor();
    auto cf = ex.submit(std::forward<F>(f), std::forward<A>(args)...);
    return detail::wrap_future_on(*this, std::move(cf), true);
}

namespace detail {
// What to_thread() returns: lazy like a coroutine object (nothing is
// submitted until it is awaited), but a plain awaitable, so no frame is
// allocated and no coroutine is instantiated in the user's translation unit.
template <class R, class F, class... A>
class [[nodiscard]] ToThread {
public:
    template <class FF, class... AA>
    explicit ToThread(FF&& f, AA&&... args) : f_(std::forward<FF>(f)), args_(std::forward<AA>(args)...) {}

    auto operator co_await() && {
        EventLoop& loop = get_running_loop();
        Future<R> fut = std::apply(
            [&](auto&... a) { return loop.run_in_executor(nullptr, std::move(f_), std::move(a)...); }, args_);
        return std::move(fut).operator co_await();
    }

private:
    F f_;
    std::tuple<A...> args_;
};
}  // namespace detail

/// Run f(args...) in the loop's default thread pool and await its result (asyncio.to_thread).
///
/// Lazy like Python's coroutine: nothing is submitted until it is awaited
/// (`co_await to_thread(...)`, once, as an rvalue). f and the
/// arguments are decay-copied (use std::ref for references). f's exception is
/// rethrown at the co_await.
/// Raises: whatever f raises; RuntimeError once the default executor is shut down.
/// Cancellation: the awaiting task gets CancelledError at once; if f has not
///   started yet it never runs, otherwise the thread runs it to the end (a
///   thread cannot be interrupted, as in Python) and its result is dropped.
template <class F, class... A>
auto to_thread(F&& f, A&&... args) {
    using R = std::invoke_result_t<std::decay_t<F>&, std::decay_t<A>...>;
    return detail::ToThread<R, std::decay_t<F>, std::decay_t<A>...>(std::forward<F>(f), std::forward<A>(args)...);
}

namespace detail {
template <class T>
void chain_task_to(ConcurrentState<T>* st, Task<T>& task) {
    if (task.cancelled()) {
        st->cancel();
        return;
    }
    std::exception_ptr e = task.exception();
    if (e) {
        st->try_complete(std::move(e), [] {});
    } else if constexpr (std::is_void_v<T>) {
        st->try_complete(nullptr, [] {});
    } else {
        st->try_complete(nullptr, [&] { st->value.emplace(task.result()); });
    }
}

// Runs on the loop's thread: start the coroutine as a task and chain it.
template <class T>
struct StartThreadsafe {
    Coro<T> coro;
    std::shared_ptr<ConcurrentState<T>> st;
    EventLoop* loop;
    void operator()() {
        Task<T> task = loop->create_task(std::move(coro));
        st->loop_task = task;
        std::shared_ptr<ConcurrentState<T>> s = st;
        task.add_done_callback([s](Task<T>& t) {
            s->loop_task = AnyTask();
            chain_task_to(s.get(), t);
        });
        // A cancel() that came before this point posted its task.cancel()
        // behind us in the inbox (FIFO), so it finds loop_task set.
    }
};
}  // namespace detail

/// Submit a coroutine to `loop` from another thread (asyncio.run_coroutine_threadsafe).
///
/// The coroutine runs as a Task on `loop`; the returned ConcurrentFuture
/// gets its outcome. Cancelling the ConcurrentFuture cancels the task (via
/// call_soon_threadsafe); the future reports cancelled at once.
/// Raises: RuntimeError if the loop is closed.
/// Thread: call it from any thread but the loop's own (waiting on the result
///   there would deadlock).
template <class T>
ConcurrentFuture<T> run_coroutine_threadsafe(Coro<T> coro, EventLoop& loop) {
    auto st = std::make_shared<detail::ConcurrentState<T>>();
    ConcurrentFuture<T> fut(st);
    std::weak_ptr<detail::ConcurrentState<T>> w = st;
    std::shared_ptr<detail::LoopAnchor> anchor = loop.anchor();  // the loop may be gone by the cancel
    st->add_callback([w, anchor] {
        auto s = w.lock();
        if (!s || !s->cancelled()) return;
        // A closed or destroyed loop: the task is gone with it.
        (void)anchor->post(detail::Callback([s] {
            if (s->loop_task) s->loop_task.cancel();
        }));
    });
    loop.call_soon_threadsafe(detail::StartThreadsafe<T>{std::move(coro), std::move(st), &loop});
    return fut;
}
/// A lazy awaitable that converts to a Coro (wait_for()'s result).
template <detail::coro_convertible C>
auto run_coroutine_threadsafe(C coro, EventLoop& loop) {
    return run_coroutine_threadsafe(detail::coro_of_t<C>(std::move(coro)), loop);
}

}  // namespace asyncio
