// Mirrors Python's asyncio.queues: Queue, PriorityQueue, LifoQueue (3.13, with shutdown).
#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncio/detail/waiters.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/locks.hpp"

namespace asyncio {

template <class T>
class Queue;

namespace detail {

// How a woken getter or putter continues (Python's `while self.empty():`
// loop around `await getter`): the wake-up does not resume the task
// directly but schedules recheck(), which runs when Python's woken task
// would step. If another task took the item (or the slot) meanwhile, the
// waiter goes back to the end of the line without resuming its coroutine;
// otherwise its step runs right there. While woken, the node is unlinked and
// a cancel() only sets must_cancel: the step then raises CancelledError and
// await_resume passes the wake-up to the next waiter, as Python's except
// branch does.

/// co_await queue.get()
template <class T>
class QueueGet : WaitNode {
public:
    explicit QueueGet(Queue<T>* q) noexcept : q_(q) {}
    QueueGet(QueueGet&&) noexcept = default;

    bool await_ready() const noexcept { return !q_->empty() || q_->shutdown_; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        TaskBase* t = h.promise().task();
        q_->bind(*t->loop_, "asyncio.queues.Queue");
        suspend_in(q_->getters_, t, h);
    }
    T await_resume() {
        if (task && task->throw_cancel_) {
            // Woken for an item but cancelled before running: let the next getter have it.
            if (woken && !q_->empty()) q_->wakeup_getter();
            task->check_cancel();
        }
        return q_->get_nowait();
    }

private:
    friend class Queue<T>;
    static void recheck(void* p) {
        auto* self = static_cast<QueueGet*>(static_cast<WaitNode*>(p));
        Queue<T>* q = self->q_;
        Queue<T>::resume_or_requeue(self, q->empty() && !q->shutdown_, q->getters_);
    }
    Queue<T>* q_;
};

/// co_await queue.put(item)
template <class T>
class QueuePut : WaitNode {
public:
    QueuePut(Queue<T>* q, T&& item) : q_(q), item_(std::move(item)) {}
    QueuePut(QueuePut&&) = default;

    bool await_ready() const noexcept { return !q_->full() || q_->shutdown_; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        TaskBase* t = h.promise().task();
        q_->bind(*t->loop_, "asyncio.queues.Queue");
        suspend_in(q_->putters_, t, h);
    }
    void await_resume() {
        if (task && task->throw_cancel_) {
            // Woken for a free slot but cancelled: let the next putter have it.
            if (woken && !q_->full()) q_->wakeup_putter();
            task->check_cancel();  // the item is not inserted
        }
        q_->put_nowait_ref(item_);
    }

private:
    friend class Queue<T>;
    static void recheck(void* p) {
        auto* self = static_cast<QueuePut*>(static_cast<WaitNode*>(p));
        Queue<T>* q = self->q_;
        Queue<T>::resume_or_requeue(self, q->full() && !q->shutdown_, q->putters_);
    }
    Queue<T>* q_;
    T item_;
};

}  // namespace detail

/// A first in, first out queue for tasks (Python's asyncio.Queue).
///
/// maxsize <= 0 means unbounded. Waiting getters and putters are served in
/// FIFO order. T may be move-only. Not thread-safe. PriorityQueue and
/// LifoQueue derive from it (as in Python) and may be used through a Queue<T>&.
template <class T>
class Queue : detail::LoopBound {
public:
    using value_type = T;

    /// Python's Queue(maxsize=0).
    explicit Queue(std::ptrdiff_t maxsize = 0) noexcept : Queue(maxsize, Kind::kFifo, nullptr, nullptr) {}
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;

    /// Number of items in the queue.
    std::ptrdiff_t qsize() const noexcept { return static_cast<std::ptrdiff_t>(items_.size()); }
    /// The maximum size given at construction (<= 0: unbounded).
    std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
    /// True if the queue holds no item.
    bool empty() const noexcept { return items_.empty(); }
    /// True if the queue holds maxsize() items (never for an unbounded queue).
    bool full() const noexcept { return maxsize_ > 0 && qsize() >= maxsize_; }

    /// Put an item into the queue, waiting while it is full (Python's Queue.put()).
    ///
    /// Raises: QueueShutDown once shutdown() was called (also for a put
    ///   waiting at that moment); RuntimeError if bound to another loop.
    /// Cancellation: safe. A cancelled put() inserts nothing (the item is
    ///   dropped with the awaiter); a free slot it had been woken for goes to
    ///   the next putter.
    detail::QueuePut<T> put(T item) { return detail::QueuePut<T>(this, std::move(item)); }

    /// Remove and return an item, waiting while the queue is empty (Python's Queue.get()).
    ///
    /// Raises: QueueShutDown once shutdown() was called and the queue is
    ///   empty; RuntimeError if bound to another loop.
    /// Cancellation: safe. A get() cancelled while waiting takes no item; if
    ///   an item had just been announced to it, the next getter is woken.
    detail::QueueGet<T> get() noexcept { return detail::QueueGet<T>(this); }

    /// Put an item without waiting (Python's Queue.put_nowait()).
    ///
    /// Raises: QueueShutDown after shutdown(); QueueFull if the queue is full.
    void put_nowait(T item) { put_nowait_ref(item); }

    /// Remove and return an item without waiting (Python's Queue.get_nowait()).
    ///
    /// Raises: QueueShutDown if shut down and empty; QueueEmpty if empty.
    T get_nowait() {
        if (items_.empty()) throw_empty();
        T item = take_item();
        wakeup_putter();
        return item;
    }

    /// Mark one earlier get() item as processed (Python's Queue.task_done()).
    ///
    /// Raises: ValueError("task_done() called too many times") if called more
    ///   often than items were put (nothing changes).
    void task_done() {
        if (unfinished_ <= 0) throw_task_done();
        if (--unfinished_ == 0) finished_.set();
    }

    /// Wait until every item put has been marked task_done() (Python's Queue.join()).
    ///
    /// Returns at once when nothing is unfinished.
    /// Cancellation: safe; nothing to give back.
    auto join() noexcept { return finished_.wait_void(); }

    /// Shut the queue down (Python 3.13's Queue.shutdown()): put() and
    /// put_nowait() raise QueueShutDown, get() raises it once the queue is
    /// empty, and every waiting getter and putter is woken to see that. With
    /// immediate=true the queue is emptied at once (each dropped item counts
    /// as task_done() for join()).
    void shutdown(bool immediate = false) {
        shutdown_ = true;
        if (immediate) {
            while (!items_.empty()) {
                (void)take_item();
                if (unfinished_ > 0) --unfinished_;
            }
            if (unfinished_ == 0) finished_.set();
        }
        while (!getters_.empty()) wake(getters_.pop_front(), &detail::QueueGet<T>::recheck);
        while (!putters_.empty()) wake(putters_.pop_front(), &detail::QueuePut<T>::recheck);
    }

protected:
    enum class Kind : std::uint8_t { kFifo, kLifo, kHeap };
    using HeapPush = void (*)(Queue*, T&&);
    using HeapPop = T (*)(Queue*);

    Queue(std::ptrdiff_t maxsize, Kind kind, HeapPush push, HeapPop pop) noexcept
        : maxsize_(maxsize), heap_push_(push), heap_pop_(pop), kind_(kind) {
        finished_.set();
    }

    std::deque<T> items_;

private:
    friend class detail::QueueGet<T>;
    friend class detail::QueuePut<T>;

    void put_nowait_ref(T& item) {
        if (shutdown_) throw QueueShutDown();
        if (full()) throw QueueFull();
        if (kind_ == Kind::kHeap)
            heap_push_(this, std::move(item));
        else
            items_.push_back(std::move(item));
        ++unfinished_;
        finished_.clear();
        wakeup_getter();
    }
    T take_item() {
        if (kind_ == Kind::kFifo) {
            T v(std::move(items_.front()));
            items_.pop_front();
            return v;
        }
        if (kind_ == Kind::kLifo) {
            T v(std::move(items_.back()));
            items_.pop_back();
            return v;
        }
        return heap_pop_(this);
    }
    void wakeup_getter() {
        if (!getters_.empty()) wake(getters_.pop_front(), &detail::QueueGet<T>::recheck);
    }
    void wakeup_putter() {
        if (!putters_.empty()) wake(putters_.pop_front(), &detail::QueuePut<T>::recheck);
    }
    // recheck() of a woken getter/putter: still blocked (another task took
    // the item or the slot first) means back to the end of the line, unless a
    // cancellation must be delivered; otherwise the task's step runs now.
    static void resume_or_requeue(detail::WaitNode* n, bool blocked, detail::WaitList& list) {
        detail::TaskBase* t = n->task;
        if (blocked && !t->must_cancel_) {
            n->woken = false;
            list.push_back(n);
            return;
        }
        t->waiter_ = nullptr;
        t->step();
    }
    static void wake(detail::WaitNode* n, void (*recheck)(void*)) {
        n->woken = true;
        n->task->loop_->push_ready(detail::Callback(recheck, n));
    }
    [[noreturn]] void throw_empty() const {
        if (shutdown_) throw QueueShutDown();
        throw QueueEmpty();
    }
    [[noreturn]] static void throw_task_done() { throw ValueError("task_done() called too many times"); }

    detail::WaitList getters_;
    detail::WaitList putters_;
    Event finished_;
    std::ptrdiff_t maxsize_;
    std::ptrdiff_t unfinished_ = 0;
    HeapPush heap_push_;
    HeapPop heap_pop_;
    Kind kind_;
    bool shutdown_ = false;
};

/// A queue that gives the smallest item first (Python's asyncio.PriorityQueue).
///
/// Order is by Compare (default std::less<T>: smallest first); items that
/// compare equal come out in no particular order, as with Python's heapq.
/// Python's (priority, data) tuples become std::pair or std::tuple.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public Queue<T> {
public:
    explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare cmp = Compare())
        : Queue<T>(maxsize, Queue<T>::Kind::kHeap, &push, &pop), cmp_(std::move(cmp)) {}

private:
    using Base = Queue<T>;
    // std heaps keep the largest on top; invert the order to get the smallest.
    struct Inverted {
        const Compare* cmp;
        bool operator()(const T& a, const T& b) const { return (*cmp)(b, a); }
    };
    static void push(Base* q, T&& v) {
        auto* self = static_cast<PriorityQueue*>(q);
        self->items_.push_back(std::move(v));
        std::push_heap(self->items_.begin(), self->items_.end(), Inverted{&self->cmp_});
    }
    static T pop(Base* q) {
        auto* self = static_cast<PriorityQueue*>(q);
        std::pop_heap(self->items_.begin(), self->items_.end(), Inverted{&self->cmp_});
        T v(std::move(self->items_.back()));
        self->items_.pop_back();
        return v;
    }
    Compare cmp_;
};

/// A queue that gives the most recently added item first (Python's asyncio.LifoQueue).
template <class T>
class LifoQueue : public Queue<T> {
public:
    explicit LifoQueue(std::ptrdiff_t maxsize = 0) noexcept
        : Queue<T>(maxsize, Queue<T>::Kind::kLifo, nullptr, nullptr) {}
};

}  // namespace asyncio
