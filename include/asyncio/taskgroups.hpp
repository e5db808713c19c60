// Mirrors Python's asyncio.taskgroups: TaskGroup.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncio/events.hpp"
#include "asyncio/futures.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

namespace detail {
struct GroupNode;
}

/// Python's asyncio.TaskGroup (3.13 semantics): structured concurrency.
///
/// `TaskGroup tg; co_await tg.run(body(&tg));` is `async with TaskGroup() as
/// tg: await body(tg)`; the body (run inline in the current task) calls
/// tg.create_task(). run() ends like __aexit__: it waits for every child.
/// When a child fails with anything but CancelledError, the other children
/// and the body are cancelled. Errors are raised together as an
/// ExceptionGroup("unhandled errors in a TaskGroup", ...): the children's in
/// the order they failed, then the body's. Python's `except* E` becomes
/// `catch (const ExceptionGroup& g) { if (g.contains<E>()) ...; g.matching<E>() }`.
/// Thread: loop thread only; the group must outlive run().
class TaskGroup {
public:
    TaskGroup() = default;
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;
    ~TaskGroup();

    /// Run `body` inside the group and give its result once every child is done.
    ///
    /// Raises: ExceptionGroup if any child (or the body) raised; the body's
    ///   CancelledError when the task was cancelled from outside;
    ///   RuntimeError("TaskGroup has already been entered") on a second run().
    /// Cancellation: cancelling the task cancels the body and every child,
    ///   waits for them, then raises CancelledError (or ExceptionGroup if a
    ///   child failed meanwhile). The cancellation stays counted on the
    ///   task (cancelling()), also through nested groups (gh-116720).
    template <class T>
    Coro<T> run(Coro<T> body);
    /// Any other awaitable (`cm.run(queue.get())`, `cm.run(task)`, a lazy
    /// awaitable, ...) runs in a coroutine, as `await` inside the block would.
    template <detail::other_awaitable Aw>
    auto run(Aw body) {
        return run(detail::as_coro(std::move(body)));
    }

    /// Python's TaskGroup.create_task(): schedule `coro` as a child task.
    ///
    /// Raises: RuntimeError("TaskGroup has not been entered") before run();
    ///   RuntimeError("TaskGroup is finished") once run() ended;
    ///   RuntimeError("TaskGroup is shutting down") while aborting. The
    ///   coroutine is then dropped without running.
    template <class T>
    Task<T> create_task(Coro<T> coro) {
        check_can_create(coro);
        Task<T> t = loop_->create_task(std::move(coro));
        adopt(t);
        return t;
    }
    template <class T>
    Task<T> create_task(Coro<T> coro, std::string name) {
        check_can_create(coro);
        Task<T> t = loop_->create_task(std::move(coro), std::move(name));
        adopt(t);
        return t;
    }
    /// Any other awaitable (sleep(), queue.get(), a lazy awaitable such as
    /// wait_for()'s result, ...) runs in a coroutine.
    template <detail::other_awaitable Aw, class... Name>
    auto create_task(Aw aw, Name... name) {  // (aw) or (aw, name)
        return create_task(detail::as_coro(std::move(aw)), std::move(name)...);
    }

    // ---- internal ---------------------------------------------------------
    void enter();
    Coro<> aexit(std::exception_ptr exc);
    void on_task_done(detail::GroupNode* node);

private:
    template <class T>
    void check_can_create(Coro<T>& coro) {
        const char* err = creation_error();
        if (err) {
            if (auto h = coro.release()) h.destroy();  // Python's coro.close(): not "never awaited"
            throw RuntimeError(err);
        }
    }
    const char* creation_error() const noexcept;
    void adopt(const AnyTask& t);
    void abort();

    EventLoop* loop_ = nullptr;
    AnyTask parent_;
    detail::GroupNode* tasks_ = nullptr;  // children not yet reported done (intrusive list)
    std::size_t ntasks_ = 0;
    std::vector<std::exception_ptr> errors_;
    std::optional<Future<>> on_completed_;
    bool entered_ = false;
    bool exiting_ = false;
    bool aborting_ = false;
    bool parent_cancel_requested_ = false;
};

template <class T>
Coro<T> TaskGroup::run(Coro<T> body) {
    enter();
    std::exception_ptr exc;
    std::optional<detail::value_or_monostate_t<T>> result;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(body);
            result.emplace();
        } else {
            T v = co_await std::move(body);
            result.emplace(std::move(v));
        }
    } catch (...) {
        exc = std::current_exception();
    }
    Coro<> exit = aexit(exc);
    co_await std::move(exit);
    if (exc) std::rethrow_exception(exc);
    if constexpr (!std::is_void_v<T>) co_return std::move(*result);
}

}  // namespace asyncio
