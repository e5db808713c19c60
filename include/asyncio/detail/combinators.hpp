// Internal: gather, wait, as_completed, wait_for, shield (public through
// <asyncio/tasks.hpp>).
//
// gather() and wait() share ManyCore: one DoneNode per child, embedded in the
// awaiter (variadic form) or in one array (vector form), registered when the
// awaiting task suspends and unlinked when the awaiter dies. A node's on_done
// only counts and, when the combined wait is over, wakes the awaiting task:
// no per-child scheduling and no per-child allocation. Results are read from
// the children in await_resume, so nothing is copied twice.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "asyncio/detail/core.hpp"
#include "asyncio/detail/future_impl.hpp"
#include "asyncio/detail/loop.hpp"
#include "asyncio/detail/task_impl.hpp"
#include "asyncio/detail/timeout_impl.hpp"
#include "asyncio/exceptions.hpp"

namespace asyncio {

/// Python's return_when values for wait().
enum class ReturnWhen : std::uint8_t { kFirstCompleted = 1, kFirstException = 2, kAllCompleted = 3 };
/// wait() returns when any child finishes or is cancelled.
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::kFirstCompleted;
/// wait() returns when any child raises, or when all are done.
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::kFirstException;
/// wait() returns when all children are done (the default).
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::kAllCompleted;

/// Tag for gather(return_exceptions, aws...): Python's return_exceptions=True.
struct ReturnExceptions {
    explicit constexpr ReturnExceptions() = default;
};
inline constexpr ReturnExceptions return_exceptions{};

namespace detail {

struct ManyCore;

struct ManyNode : DoneNode {
    ManyCore* core = nullptr;
    FutureBase* child = nullptr;
    bool linked = false;
};

/// The shared state of one gather() or wait() while it is awaited.
struct ManyCore : Waiter {
    enum class Mode : std::uint8_t { kGather, kGatherReturnExceptions, kAllCompleted, kFirstCompleted, kFirstException };

    ManyNode* nodes = nullptr;
    std::size_t n = 0;
    std::size_t remaining = 0;
    TaskBase* task = nullptr;
    FutureBase* failed = nullptr;  // gather: the child whose failure is the result
    TimerHandle timer;             // wait(): the timeout
    std::string cancel_msg;        // gather cancelled with return_exceptions
    Mode mode = Mode::kGather;
    bool completed = false;
    bool suspended = false;
    bool cancel_requested = false;  // gather: cancel() reached a child
    bool timer_armed = false;

    ManyCore() noexcept { Waiter::cancel = &on_cancel; }
    ManyCore(const ManyCore&) = delete;
    ManyCore& operator=(const ManyCore&) = delete;
    ~ManyCore() { release(); }

    bool is_gather() const noexcept { return mode == Mode::kGather || mode == Mode::kGatherReturnExceptions; }
    /// Register every node (nodes[i].child set by the caller) and suspend t
    /// at h; false if everything was already over (do not suspend).
    bool suspend(TaskBase* t, std::coroutine_handle<> h, std::optional<double> timeout);
    /// gather's await_resume preamble: raise CancelledError or the failure.
    void check_gather();
    /// wait's await_resume preamble.
    void check_wait();
    /// Unlink what is still registered (children a finished gather no longer
    /// waits for get a node that marks their exception retrieved).
    void release() noexcept;

    void complete(bool by_child);
    static void on_done(DoneNode* n, FutureBase* f);
    static bool on_cancel(Waiter* w, TaskBase* t, const std::string* msg);
    static void on_timeout(void* self);
};

template <class T>
inline constexpr bool is_future_handle_v = std::is_base_of_v<FutureRef, T> && requires { typename T::value_type; };

/// Python's ensure_future for gather's arguments: a Coro or other awaitable
/// becomes a Task, a Task or Future is used as it is.
template <class A>
auto make_child(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (is_coro<D>::value) {
        static_assert(!std::is_lvalue_reference_v<A>, "pass a Coro as an rvalue (std::move it)");
        return create_task(std::move(a));
    } else if constexpr (is_future_handle_v<D>) {
        return D(std::forward<A>(a));
    } else {
        return create_task(as_coro(D(std::forward<A>(a))));
    }
}

template <class H>
using handle_value_t = typename H::value_type;

template <class H>
value_or_monostate_t<handle_value_t<H>> take_result(const H& h) {
    if constexpr (std::is_void_v<handle_value_t<H>>) {
        h.await_result();
        return std::monostate{};
    } else {
        return h.await_result();
    }
}

template <class H>
using outcome_t = std::variant<value_or_monostate_t<handle_value_t<H>>, std::exception_ptr>;

template <class H>
outcome_t<H> take_outcome(const H& h) {
    FutureBase* f = h.base();
    if (f->cancelled()) return std::make_exception_ptr(CancelledError(f->cancel_message()));
    if (std::exception_ptr e = f->checked_exception("Result is not set.")) return e;
    return outcome_t<H>(std::in_place_index<0>, take_result(h));
}

/// co_await gather(a, b, ...).
template <bool RE, class... Hs>
class [[nodiscard]] GatherAwaiter {
public:
    using result_type = std::conditional_t<RE, std::tuple<outcome_t<Hs>...>,
                                           std::tuple<value_or_monostate_t<handle_value_t<Hs>>...>>;

    explicit GatherAwaiter(Hs... hs) : children_(std::move(hs)...) {}
    // Moving is allowed before the co_await only (nothing is registered yet).
    GatherAwaiter(GatherAwaiter&& o) noexcept : children_(std::move(o.children_)) {}
    GatherAwaiter(const GatherAwaiter&) = delete;

    bool await_ready() const noexcept { return sizeof...(Hs) == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        bind(std::index_sequence_for<Hs...>{});
        core_.nodes = nodes_.data();
        core_.n = sizeof...(Hs);
        core_.mode = RE ? ManyCore::Mode::kGatherReturnExceptions : ManyCore::Mode::kGather;
        return core_.suspend(h.promise().task(), h, std::nullopt);
    }
    result_type await_resume() {
        core_.check_gather();
        return collect(std::index_sequence_for<Hs...>{});
    }

private:
    template <std::size_t... I>
    void bind(std::index_sequence<I...>) {
        ((nodes_[I].child = std::get<I>(children_).base()), ...);
    }
    template <std::size_t... I>
    result_type collect(std::index_sequence<I...>) {
        if constexpr (RE)
            return result_type{take_outcome(std::get<I>(children_))...};
        else
            return result_type{take_result(std::get<I>(children_))...};
    }
    std::tuple<Hs...> children_;
    std::array<ManyNode, sizeof...(Hs)> nodes_{};
    ManyCore core_;
};

/// One node per child of a vector form, in one allocation.
template <class H>
void bind_nodes(ManyCore& core, std::unique_ptr<ManyNode[]>& nodes, const std::vector<H>& children) {
    const std::size_t n = children.size();
    nodes = std::make_unique<ManyNode[]>(n);
    for (std::size_t i = 0; i < n; ++i) nodes[i].child = children[i].base();
    core.nodes = nodes.get();
    core.n = n;
}

/// co_await gather(std::vector<...>).
template <bool RE, class H>
class [[nodiscard]] GatherVectorAwaiter {
public:
    using element_type = std::conditional_t<RE, outcome_t<H>, value_or_monostate_t<handle_value_t<H>>>;

    explicit GatherVectorAwaiter(std::vector<H> hs) : children_(std::move(hs)) {}
    GatherVectorAwaiter(GatherVectorAwaiter&& o) noexcept : children_(std::move(o.children_)) {}
    GatherVectorAwaiter(const GatherVectorAwaiter&) = delete;

    bool await_ready() const noexcept { return children_.empty(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        bind_nodes(core_, nodes_, children_);
        core_.mode = RE ? ManyCore::Mode::kGatherReturnExceptions : ManyCore::Mode::kGather;
        return core_.suspend(h.promise().task(), h, std::nullopt);
    }
    std::vector<element_type> await_resume() {
        core_.check_gather();
        std::vector<element_type> out;
        out.reserve(children_.size());
        for (const H& c : children_) {
            if constexpr (RE)
                out.push_back(take_outcome(c));
            else
                out.push_back(take_result(c));
        }
        return out;
    }

private:
    std::vector<H> children_;
    std::unique_ptr<ManyNode[]> nodes_;
    ManyCore core_;  // declared last: destroyed (unlinked) before the nodes
};

template <class H>
auto children_of(std::vector<H> v) {
    if constexpr (is_coro<H>::value) {
        using T = typename H::value_type;
        std::vector<Task<T>> tasks;
        tasks.reserve(v.size());
        for (auto& c : v) tasks.push_back(create_task(std::move(c)));
        return tasks;
    } else {
        static_assert(is_future_handle_v<H>, "gather/as_completed: a vector of Coro, Task or Future");
        return v;
    }
}

}  // namespace detail

/// Python's asyncio.gather(*aws): run the awaitables concurrently and give
/// their results, in argument order, as a std::tuple (std::monostate for void).
///
/// Coroutines (and other awaitables) are scheduled as tasks at once; tasks
/// and futures are used as they are. The first exception propagates at
/// once; the other children keep running (Python's rule, not "cancel the
/// rest"). A child's cancellation makes the gather raise CancelledError.
/// An empty gather() completes at once.
/// Raises: the first child exception; CancelledError (see above).
/// Cancellation: cancelling the awaiting task cancels every child that is
///   not done; the co_await raises CancelledError once a child has finished
///   cancelling (even if others swallowed the cancellation).
template <class... A>
    requires(!(std::is_same_v<std::remove_cvref_t<A>, ReturnExceptions> || ...))
auto gather(A&&... aws) {
    // Braces: the children are created (their tasks scheduled) in argument
    // order; a parenthesised call leaves the order to the compiler (g++:
    // right to left).
    return detail::GatherAwaiter<false, decltype(detail::make_child(std::forward<A>(aws)))...>{
        detail::make_child(std::forward<A>(aws))...};
}

/// gather(return_exceptions, aws...): Python's return_exceptions=True. Each
/// element is a std::variant<T, std::exception_ptr> (std::monostate for
/// void); a cancelled child gives a CancelledError there.
/// Cancellation: as gather(); cancelling the gather itself still raises
///   CancelledError (bpo-32684).
template <class... A>
auto gather(ReturnExceptions, A&&... aws) {
    // Braces: argument order, as above.
    return detail::GatherAwaiter<true, decltype(detail::make_child(std::forward<A>(aws)))...>{
        detail::make_child(std::forward<A>(aws))...};
}

/// gather over a std::vector of Task<T>, Future<T> or Coro<T>: gives a
/// std::vector<T> in the same order (std::monostate for void). Same rules
/// as the variadic form.
template <class H>
auto gather(std::vector<H> aws) {
    auto children = detail::children_of(std::move(aws));
    using C = typename decltype(children)::value_type;
    return detail::GatherVectorAwaiter<false, C>(std::move(children));
}
/// gather(return_exceptions, vector): a std::vector of std::variant<T, std::exception_ptr>.
template <class H>
auto gather(ReturnExceptions, std::vector<H> aws) {
    auto children = detail::children_of(std::move(aws));
    using C = typename decltype(children)::value_type;
    return detail::GatherVectorAwaiter<true, C>(std::move(children));
}

// ---- wait ------------------------------------------------------------------------

/// What wait() gives: the children that are done and those still pending,
/// each in the order they were passed. Use `auto [done, pending] = co_await wait(...)`.
template <class H>
struct WaitResult {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {
void check_wait_args(std::size_t n, ReturnWhen rw);

template <class H>
class [[nodiscard]] WaitAwaiter {
public:
    WaitAwaiter(std::vector<H> hs, ReturnWhen rw, std::optional<double> timeout)
        : children_(std::move(hs)), timeout_(timeout), rw_(rw) {}
    WaitAwaiter(WaitAwaiter&& o) noexcept
        : children_(std::move(o.children_)), timeout_(o.timeout_), rw_(o.rw_) {}
    WaitAwaiter(const WaitAwaiter&) = delete;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        bind_nodes(core_, nodes_, children_);
        core_.mode = rw_ == FIRST_COMPLETED   ? ManyCore::Mode::kFirstCompleted
                     : rw_ == FIRST_EXCEPTION ? ManyCore::Mode::kFirstException
                                              : ManyCore::Mode::kAllCompleted;
        return core_.suspend(h.promise().task(), h, timeout_);
    }
    WaitResult<H> await_resume() {
        core_.check_wait();
        core_.release();
        WaitResult<H> r;
        for (H& c : children_) (c.done() ? r.done : r.pending).push_back(std::move(c));
        return r;
    }

private:
    std::vector<H> children_;
    std::unique_ptr<ManyNode[]> nodes_;
    ManyCore core_;
    std::optional<double> timeout_;
    ReturnWhen rw_;
};
}  // namespace detail

/// Python's asyncio.wait(aws, timeout, return_when): wait until the
/// condition holds and give {done, pending}, holding the very tasks (or
/// futures) passed. Never cancels anything; a timeout gives what is done so far.
///
/// `timeout` is seconds, a std::chrono duration or std::nullopt (none);
/// <= 0 means "already expired".
/// Raises: ValueError("Set of Tasks/Futures is empty.") for an empty
///   vector; ValueError("Invalid return_when value") for a value that is
///   not one of the three constants (both at the call).
/// Cancellation: safe; the children are left running, nothing is lost.
template <class H>
    requires detail::is_future_handle_v<H>
detail::WaitAwaiter<H> wait(std::vector<H> fs, ReturnWhen return_when = ALL_COMPLETED,
                            detail::OptDelay timeout = std::nullopt) {
    detail::check_wait_args(fs.size(), return_when);
    return detail::WaitAwaiter<H>(std::move(fs), return_when, timeout.seconds);
}

// ---- as_completed ------------------------------------------------------------------

namespace detail {

struct AsCompletedCore;
struct AsCompletedWaiter;

/// One per child, registered in its done-callback list. Once fired it is
/// reused, through DoneNode::next, as a link of the FIFO of finished
/// children; its child is children[node - nodes].
struct AsCompletedNode : DoneNode {
    AsCompletedCore* core;  // null once fired or unlinked
};

/// as_completed's state: one node per child (24 bytes, the only memory per
/// child besides the handles), the FIFO of finished children threaded
/// through the nodes, a count of timeout markers, and the tasks waiting for
/// the next one.
struct AsCompletedCore {
    AsCompletedNode* nodes = nullptr;  // storage for n, the first `started` built
    std::unique_ptr<bool[]> claimed;   // per element: awaited already
    FutureBase* (*child_at)(const AsCompletedCore*, std::size_t) = nullptr;
    std::size_t n = 0;
    std::size_t started = 0;  // nodes built (and registered)
    std::size_t pending = 0;  // nodes still registered with their child
    AsCompletedNode* done_head = nullptr;  // finished children, oldest first
    AsCompletedNode* done_tail = nullptr;
    std::size_t ready = 0;     // nodes in the FIFO
    std::size_t timeouts = 0;  // TimeoutError markers after the finished ones
    std::size_t reserved = 0;  // items promised to woken waiters
    AsCompletedWaiter* waiters_head = nullptr;
    AsCompletedWaiter* waiters_tail = nullptr;
    EventLoop* loop = nullptr;
    TimerHandle timer;
    bool timer_armed = false;

    AsCompletedCore() = default;
    AsCompletedCore(const AsCompletedCore&) = delete;
    AsCompletedCore& operator=(const AsCompletedCore&) = delete;
    ~AsCompletedCore();

    /// Allocate for `count` children; then link() each, then arm_timer().
    void reserve(std::size_t count);
    /// Register `child` through the node at `at` (the next unbuilt one).
    /// `pending` already counts it: a done child fires at once.
    void link(AsCompletedNode* at, FutureBase* child) {
        auto* node = ::new (at) AsCompletedNode;
        node->on_done = &on_done;
        node->core = this;
        child->add_node(node);
    }
    /// link() stopped early (an exception): only `built` nodes exist.
    void link_failed(std::size_t built) noexcept {
        pending -= started - built;
        started = built;
        unlink_all();
    }
    void arm_timer(std::optional<double> timeout);

    std::size_t available() const noexcept { return ready + timeouts - reserved; }
    void claim(std::size_t position) {
        if (claimed[position]) [[unlikely]] throw_claimed();
        claimed[position] = true;
    }
    [[noreturn]] static void throw_claimed();
    /// Pop the oldest finished child (the FIFO is not empty): its index.
    std::size_t pop() noexcept {
        AsCompletedNode* node = done_head;
        done_head = static_cast<AsCompletedNode*>(node->next);
        if (!done_head) done_tail = nullptr;
        --ready;
        return static_cast<std::size_t>(node - nodes);
    }
    /// Give out the next item: the child's index, or raise TimeoutError.
    std::size_t take();
    void wake_waiters(bool by_child = false);
    void unlink_waiter(AsCompletedWaiter* w) noexcept;
    /// Stop tracking the children (before they are released).
    void unlink_all() noexcept;

    static void on_done(DoneNode* n, FutureBase* f);
    static void on_timeout(void* self);
};

struct AsCompletedWaiter : Waiter {
    AsCompletedCore* core = nullptr;
    TaskBase* task = nullptr;  // set once suspended (so is Waiter::cancel)
    AsCompletedWaiter* next;   // in core's waiter list while queued
    AsCompletedWaiter* prev;
    bool queued = false;  // in core's waiter list
    bool woken = false;   // an item was reserved for it

    bool ready() const noexcept { return core->available() > 0; }
    void suspend(TaskBase* t, std::coroutine_handle<> h);
    /// await_resume's common part: the index of the next finished child.
    std::size_t resume() {
        if (!task && core->done_head) [[likely]] return core->pop();  // never suspended
        return resume_slow();
    }
    std::size_t resume_slow();
    static bool on_cancel(Waiter* w, TaskBase* t, const std::string* msg);
};

template <class H>
struct AsCompletedState : AsCompletedCore {
    std::vector<H> children;

    AsCompletedState(std::vector<H> cs, std::optional<double> timeout) : children(std::move(cs)) {
        child_at = [](const AsCompletedCore* c, std::size_t i) {
            return static_cast<const AsCompletedState*>(c)->children[i].raw();
        };
        reserve(children.size());  // started = pending = n
        AsCompletedNode* at = nodes;
        try {
            for (const H& c : children) {
                link(at, c.base());  // base(): an empty handle raises
                ++at;
            }
            arm_timer(timeout);
        } catch (...) {
            link_failed(static_cast<std::size_t>(at - nodes));  // ~AsCompletedState will not run
            throw;
        }
    }
    ~AsCompletedState() { unlink_all(); }
};

template <class H, bool kTask>
class AsCompletedAwaiter : AsCompletedWaiter {
public:
    explicit AsCompletedAwaiter(AsCompletedState<H>* s) noexcept { core = s; }
    AsCompletedAwaiter(AsCompletedAwaiter&& o) noexcept { core = o.core; }
    AsCompletedAwaiter(const AsCompletedAwaiter&) = delete;
    ~AsCompletedAwaiter() {
        if (queued) core->unlink_waiter(this);
    }
    bool await_ready() const noexcept { return ready(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        suspend(h.promise().task(), h);
    }
    decltype(auto) await_resume() {
        const std::size_t i = resume();
        const H& child = static_cast<AsCompletedState<H>*>(core)->children[i];
        if constexpr (kTask)
            return H(child);
        else
            return child.await_result();
    }
};

}  // namespace detail

/// One element of as_completed(): `co_await std::move(elem)` gives the
/// result (or raises the exception) of the next child to finish;
/// `co_await elem.task()` gives that child itself (Python 3.13's
/// `async for t in as_completed(...)`, which yields the original tasks).
/// Raises: TimeoutError once the timeout passed with children unfinished;
///   RuntimeError if this element was already awaited.
/// Cancellation: safe; no finished child is lost, the next element gets it.
template <class H>
class AsCompletedElement {
public:
    AsCompletedElement(detail::AsCompletedState<H>* s, std::size_t i) noexcept : s_(s), i_(i) {}
    detail::AsCompletedAwaiter<H, false> operator co_await() && {
        s_->claim(i_);
        return detail::AsCompletedAwaiter<H, false>(s_);
    }
    detail::AsCompletedAwaiter<H, false> operator co_await() & {
        s_->claim(i_);
        return detail::AsCompletedAwaiter<H, false>(s_);
    }
    /// Awaitable giving the next finished child itself (a copy of the handle).
    detail::AsCompletedAwaiter<H, true> task() {
        s_->claim(i_);
        return detail::AsCompletedAwaiter<H, true>(s_);
    }

private:
    detail::AsCompletedState<H>* s_;
    std::size_t i_;
};

/// What as_completed() returns: a range of exactly as many elements as
/// children. The children's completion is tracked from the call on.
/// Thread: loop thread only; it must outlive the co_awaits on its elements.
template <class H>
class AsCompleted {
public:
    class iterator {
    public:
        using value_type = AsCompletedElement<H>;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        iterator(detail::AsCompletedState<H>* s, std::size_t i) noexcept : s_(s), i_(i) {}
        AsCompletedElement<H> operator*() const noexcept { return {s_, i_}; }
        iterator& operator++() noexcept {
            ++i_;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator t = *this;
            ++i_;
            return t;
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.i_ == b.i_; }

    private:
        detail::AsCompletedState<H>* s_ = nullptr;
        std::size_t i_ = 0;
    };

    AsCompleted(std::vector<H> children, std::optional<double> timeout)
        : s_(std::make_unique<detail::AsCompletedState<H>>(std::move(children), timeout)) {}
    iterator begin() const noexcept { return {s_.get(), 0}; }
    iterator end() const noexcept { return {s_.get(), s_->n}; }
    std::size_t size() const noexcept { return s_->n; }

private:
    std::unique_ptr<detail::AsCompletedState<H>> s_;
};

/// Python's asyncio.as_completed(aws, timeout): iterate the result, and
/// `co_await std::move(elem)` gives the next result in completion order
/// (elem.task() gives the next finished task itself, as 3.13's async form).
///
/// Takes a std::vector of Task<T>, Future<T> or Coro<T> (coroutines become
/// tasks at once). `timeout`: seconds, a std::chrono duration or std::nullopt.
/// Raises: (at the co_await of an element) the child's exception;
///   TimeoutError for each element left once the timeout passed.
/// Cancellation: safe, see AsCompletedElement.
template <class H>
auto as_completed(std::vector<H> aws, detail::OptDelay timeout = std::nullopt) {
    auto children = detail::children_of(std::move(aws));
    using C = typename decltype(children)::value_type;
    return AsCompleted<C>(std::move(children), timeout.seconds);
}

// ---- shield -------------------------------------------------------------------

namespace detail {
template <class T, class H>
void copy_shielded_outcome(Future<T>& out, const H& in) {
    FutureBase* f = in.base();
    if (f->cancelled()) {
        out.cancel();
    } else if (std::exception_ptr e = f->checked_exception("Result is not set.")) {
        out.set_exception(e);
    } else if constexpr (std::is_void_v<T>) {
        out.set_result();
    } else {
        out.set_result(in.await_result());
    }
}

/// What shield()'s two done callbacks share: the inner future while its
/// callback is registered, and whether the outer's callback took the inner
/// one back (CPython's inner.remove_done_callback(_inner_done_callback)).
struct ShieldLink {
    FutureBase* inner;
    bool detached = false;
};

/// The inner future's done callback (CPython's _inner_done_callback). It
/// holds the outer future; the outer's callback holds only the link, so the
/// two futures do not keep each other alive.
template <class T, class H>
class ShieldInnerDone {
public:
    ShieldInnerDone(Future<T> outer, std::shared_ptr<ShieldLink> link) : outer_(std::move(outer)), link_(std::move(link)) {}
    ShieldInnerDone(ShieldInnerDone&& o) noexcept = default;
    ShieldInnerDone(const ShieldInnerDone&) = delete;
    ShieldInnerDone& operator=(const ShieldInnerDone&) = delete;
    ShieldInnerDone& operator=(ShieldInnerDone&&) = delete;
    ~ShieldInnerDone() {
        if (link_) link_->inner = nullptr;  // run, or the inner future is gone
    }
    void operator()(H& in) {
        if (link_->detached) return;
        if (outer_.cancelled()) {
            if (!in.cancelled()) in.base()->log_traceback_ = false;  // mark retrieved
            return;
        }
        copy_shielded_outcome(outer_, in);
    }

private:
    Future<T> outer_;
    std::shared_ptr<ShieldLink> link_;
};

template <class H>
Future<handle_value_t<H>> shield_handle(H inner) {
    using T = handle_value_t<H>;
    Future<T> outer(inner.base()->loop());
    if (inner.done()) {
        copy_shielded_outcome(outer, inner);
        return outer;
    }
    auto link = std::make_shared<ShieldLink>(ShieldLink{inner.base()});
    inner.add_done_callback(ShieldInnerDone<T, H>(outer, link));
    // CPython's _outer_done_callback: once the outer future is done (it was
    // cancelled) while the inner work still runs, the inner's outcome is
    // nobody's: an exception it ends with is reported as never retrieved.
    outer.add_done_callback([link](Future<T>&) {
        if (link->inner && !link->inner->done()) link->detached = true;
    });
    return outer;
}
}  // namespace detail

/// Python's asyncio.shield(aw): a Future that mirrors `aw`'s outcome but
/// whose cancellation does not cancel `aw` (a Coro is scheduled as a task).
///
/// Cancellation: cancelling the awaiting task (or the returned future)
///   raises CancelledError in the awaiting task; the inner work goes on and
///   its later result is dropped; an exception it ends with is reported
///   ("Task exception was never retrieved"), as in Python 3.12.
template <class A>
auto shield(A&& aw) {
    return detail::shield_handle(detail::make_child(std::forward<A>(aw)));
}

// ---- wait_for -----------------------------------------------------------------

namespace detail {

/// Suspend until f is done, without cancelling it. Cancellation: withdraws.
class DoneWaiter : Waiter, DoneNode {
public:
    explicit DoneWaiter(FutureBase* f) noexcept : f_(f) {
        Waiter::cancel = &on_cancel;
        DoneNode::on_done = &on_complete;
    }
    DoneWaiter(const DoneWaiter&) = delete;
    ~DoneWaiter() {
        if (linked_) f_->remove_node(this);
    }
    bool await_ready() const noexcept { return f_->done(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        task_ = h.promise().task();
        f_->add_node(this);
        linked_ = true;
        task_->suspend_on(h, this);
    }
    void await_resume() {
        if (task_) task_->check_cancel();
    }

private:
    static void on_complete(DoneNode* n, FutureBase*);
    static bool on_cancel(Waiter* w, TaskBase* t, const std::string* msg);
    FutureBase* f_;
    TaskBase* task_ = nullptr;
    bool linked_ = false;
};

[[noreturn]] void throw_timeout_from_cancelled(FutureBase* f);

/// wait_for with timeout <= 0 on a task or future (Python's fast path):
/// the result if done, else cancel it, wait until it really ended, and
/// raise TimeoutError unless it swallowed the cancellation.
template <class H>
Coro<handle_value_t<H>> wait_for_expired(H fut) {
    if (!fut.done()) {
        fut.cancel();
        DoneWaiter w(fut.base());
        co_await w;
    }
    if (fut.cancelled()) throw_timeout_from_cancelled(fut.base());
    co_return fut.await_result();
}

template <class T>
Coro<T> wait_for_not_started(Coro<T> c) {
    // Python schedules the coroutine and cancels it before its first step:
    // its body never runs; closing it is not "never awaited".
    auto h = c.release();
    if (h) h.destroy();
    throw_timeout_from_cancelled(nullptr);
    if constexpr (std::is_void_v<T>) {
        co_return;
    } else {
        std::optional<T> never;
        co_return std::move(*never);
    }
}
/// What wait_for() returns: a lazy awaitable (nothing happens until it is
/// awaited, as a Python coroutine). `co_await` runs the scope in an awaiter
/// in the caller's frame, driving `aw`'s own awaiter directly: no coroutine
/// frame of its own. It converts to a Coro<T> (one frame) where a Coro is
/// needed (asyncio::run, TaskGroup::create_task...).
template <class T, class Aw>
class WaitForAwaiter;

template <class T, class Aw>
class [[nodiscard]] WaitFor {
public:
    using value_type = T;
    WaitFor(Aw aw, std::optional<double> delay) noexcept : aw_(std::move(aw)), delay_(delay) {}
    WaitFor(WaitFor&&) noexcept = default;
    WaitFor(const WaitFor&) = delete;
    WaitFor& operator=(const WaitFor&) = delete;

    WaitForAwaiter<T, Aw> operator co_await() && { return WaitForAwaiter<T, Aw>(std::move(aw_), delay_); }
    operator Coro<T>() && {  // NOLINT(google-explicit-constructor)
        if (expired(delay_)) return expired_path(std::move(aw_));
        return run_scoped<T>(nullptr, delay_, std::move(aw_));
    }

    // internal
    static bool expired(std::optional<double> delay) noexcept { return delay && *delay <= 0; }
    /// A timeout <= 0: Python's fast path (never starts a Coro; a done
    /// task's result; else cancel, wait and raise TimeoutError).
    static Coro<T> expired_path(Aw aw) {
        if constexpr (is_coro<Aw>::value)
            return wait_for_not_started<T>(std::move(aw));
        else
            return wait_for_expired(std::move(aw));
    }

private:
    Aw aw_;
    std::optional<double> delay_;
};

template <class T, class Aw>
class WaitForAwaiter {
    using Inner = decltype(std::declval<Aw>().operator co_await());

public:
    WaitForAwaiter(Aw&& aw, std::optional<double> delay)
        : delay_(delay),
          expired_(WaitFor<T, Aw>::expired(delay)),
          slow_(WaitFor<T, Aw>::expired(delay) ? WaitFor<T, Aw>::expired_path(copy_or_take(aw)).release() : nullptr),
          inner_(std::move(aw).operator co_await()) {}
    WaitForAwaiter(const WaitForAwaiter&) = delete;

    bool await_ready() {
        if (expired_) return false;
        cm_.enter_after(delay_);
        return inner_.await_ready();
    }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        static_assert(std::is_void_v<decltype(inner_.await_suspend(h))>);
        if (expired_) return slow_.await_suspend(h);
        try {
            inner_.await_suspend(h);
        } catch (...) {
            cm_.leave_and_rethrow();
        }
    }
    T await_resume() {
        if (expired_) return slow_.await_resume();
        try {
            if constexpr (std::is_void_v<T>) {
                inner_.await_resume();
                cm_.leave();
            } else {
                T v = inner_.await_resume();
                cm_.leave();
                return v;
            }
        } catch (...) {
            cm_.leave_and_rethrow();
        }
    }

private:
    // The expired path consumes a Coro (inner_ then holds nothing) or a
    // copy of a task/future handle (inner_ keeps one it never awaits).
    static Aw copy_or_take(Aw& aw) {
        if constexpr (is_coro<Aw>::value)
            return std::move(aw);
        else
            return aw;
    }

    Timeout cm_{std::nullopt};
    std::optional<double> delay_;
    bool expired_;
    CoroAwaiter<T> slow_;
    Inner inner_;
};
}  // namespace detail

/// Python's asyncio.wait_for(aw, timeout) with 3.12 semantics (built on
/// timeout()): the result of `aw` (a Coro, Task, Future or shield()'s
/// result), or TimeoutError once `timeout` passed. A Coro runs inline in the
/// awaiting task, as in Python 3.12.
///
/// Returns a lazy awaitable (await it once, as an rvalue) that converts to a
/// Coro<T>; the deadline counts from the await, as Python's does from the
/// wait_for() coroutine's start.
/// `timeout`: seconds, a std::chrono duration, or std::nullopt (no limit).
/// On timeout the inner work is cancelled and wait_for waits until it has
/// really finished, then raises TimeoutError (nesting the CancelledError).
/// If the inner work had already completed when the deadline passed, or
/// swallows the cancellation and returns, its result wins. A timeout <= 0
/// gives a done task's result, never starts a Coro, and otherwise cancels
/// and waits as above.
/// Raises: TimeoutError; whatever the inner work raises.
/// Cancellation: a cancellation of the awaiting task cancels the inner work
///   and propagates as CancelledError, never turned into a TimeoutError
///   (unlike CPython's gh-86296). If the inner work swallows it and returns,
///   that result is returned and the task's cancelling() stays raised, as
///   in Python 3.12, where the awaited task's outcome is what `await` gives.
template <class A>
auto wait_for(A&& aw, detail::OptDelay timeout) {
    using D = std::remove_cvref_t<A>;
    if constexpr (detail::is_coro<D>::value) {
        static_assert(!std::is_lvalue_reference_v<A>, "pass a Coro as an rvalue (std::move it)");
        return detail::WaitFor<typename D::value_type, D>(std::move(aw), timeout.seconds);
    } else if constexpr (detail::is_future_handle_v<D>) {
        return detail::WaitFor<typename D::value_type, D>(D(std::forward<A>(aw)), timeout.seconds);
    } else {
        return wait_for(detail::as_coro(D(std::forward<A>(aw))), timeout);
    }
}

}  // namespace asyncio
