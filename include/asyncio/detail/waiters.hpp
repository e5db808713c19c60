// Internal: the intrusive FIFO waiter list shared by locks.hpp and queues.hpp,
// and the loop binding of primitives (Python's mixins._LoopBoundMixin).
//
// States and who may touch what (all on the loop's thread):
// - A WaitNode lives in an awaiter, i.e. in the waiting coroutine's frame: a
//   wait allocates nothing. It is `linked` while it sits in a WaitList (the
//   task is suspended and may be woken or cancelled), and `woken` once a
//   primitive picked it (unlinked by then) and scheduled the task.
// - The task's `waiter_` points at the node while it is linked, so
//   Task.cancel() reaches the node's `cancel` hook: a linked node is unlinked
//   and the task woken with CancelledError (nothing was granted). Once woken,
//   `waiter_` is null (TaskBase::wake), so a late cancel only sets
//   must_cancel: the awaiter sees `throw_cancel_` at resume and must hand what
//   it was granted (a lock, a permit, its turn at an item) to the next waiter
//   before raising. This mirrors CPython, where the waiter future is already
//   done and `await fut` raises only when the task steps.
// - Python keeps a woken waiter in its deque until the task runs; primitives
//   whose observable state depends on that (Lock.locked fairness,
//   Semaphore.locked) count their woken-but-not-yet-running waiters instead.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

#include "asyncio/detail/core.hpp"
#include "asyncio/detail/loop.hpp"

namespace asyncio::detail {

class WaitList;
class LoopBound;

/// A waiter: embed one in an awaiter (a private base). Its cancel hook is
/// the common one (unlink if still queued); moving gives a fresh node, which
/// is all awaiters need (they move only before they suspend).
struct WaitNode : Waiter {
    WaitNode() noexcept { cancel = &cancel_queued; }
    WaitNode(WaitNode&&) noexcept : WaitNode() {}
    WaitNode& operator=(WaitNode&&) = delete;
    inline ~WaitNode();
    /// The Waiter hook: a queued node is unlinked and its task woken with
    /// CancelledError; a woken one cannot be interrupted (false).
    static inline bool cancel_queued(Waiter* w, TaskBase* t, const std::string* msg);
    /// Queue this node in `list` and suspend t's coroutine h on it.
    inline void suspend_in(WaitList& list, TaskBase* t, std::coroutine_handle<> h) noexcept;

    WaitNode* prev = nullptr;
    WaitNode* next = nullptr;
    WaitList* list = nullptr;  // where it is (or was last) queued
    TaskBase* task = nullptr;  // set when the awaiter suspends
    std::uint32_t gen = 0;     // list->gen_ when queued: a mismatch means taken by take_all()
    bool linked = false;
    bool woken = false;
};

/// Intrusive doubly linked FIFO of WaitNodes: O(1) push, pop and unlink.
class WaitList {
public:
    WaitList() noexcept = default;
    WaitList(const WaitList&) = delete;
    WaitList& operator=(const WaitList&) = delete;

    bool empty() const noexcept { return head_ == nullptr; }
    WaitNode* front() const noexcept { return head_; }
    std::size_t size() const noexcept { return size_; }

    void push_back(WaitNode* n) noexcept {
        n->prev = tail_;
        n->next = nullptr;
        if (tail_)
            tail_->next = n;
        else
            head_ = n;
        tail_ = n;
        n->list = this;
        n->gen = gen_;
        n->linked = true;
        ++size_;
    }
    void remove(WaitNode* n) noexcept {
        (n->prev ? n->prev->next : head_) = n->next;
        (n->next ? n->next->prev : tail_) = n->prev;
        n->prev = n->next = nullptr;
        n->linked = false;
        --size_;
    }
    WaitNode* pop_front() noexcept {
        WaitNode* n = head_;
        if (n) remove(n);
        return n;
    }
    /// Unlink everything at once in O(1); walk the result through `next`.
    /// The nodes are not touched: their `linked` flag stays set but their
    /// `gen` no longer matches, which in_list() checks.
    WaitNode* take_all() noexcept {
        WaitNode* n = head_;
        head_ = tail_ = nullptr;
        size_ = 0;
        ++gen_;
        return n;
    }
    /// Is n (queued here at some point) still in this list?
    bool in_list(const WaitNode* n) const noexcept { return n->linked && n->gen == gen_; }

    /// The primitive this list belongs to (set by the awaiters that use it,
    /// so a waiter needs no pointer of its own to bind the primitive).
    void set_owner(LoopBound* o) noexcept { owner_ = o; }
    LoopBound* owner() const noexcept { return owner_; }
    /// A flag the list's waits test when they are awaited, not when they
    /// are made (Event's flag; always false for Condition): Python's wait()
    /// is a coroutine that looks at the event when it runs, so
    /// create_task(ev.wait()) before ev.set() must not wait.
    bool flag() const noexcept { return flag_; }
    void set_flag(bool v) noexcept { flag_ = v; }

private:
    LoopBound* owner_ = nullptr;
    WaitNode* head_ = nullptr;
    WaitNode* tail_ = nullptr;
    std::size_t size_ = 0;
    std::uint32_t gen_ = 0;
    bool flag_ = false;  // in gen_'s tail padding
};

inline WaitNode::~WaitNode() {
    if (linked && list->in_list(this)) list->remove(this);
}

inline void WaitNode::suspend_in(WaitList& l, TaskBase* t, std::coroutine_handle<> h) noexcept {
    task = t;
    l.push_back(this);
    t->suspend_on(h, this);
}

inline bool WaitNode::cancel_queued(Waiter* w, TaskBase* t, const std::string* msg) {
    auto* n = static_cast<WaitNode*>(w);
    if (!n->linked || !n->list->in_list(n)) return false;  // already woken
    n->list->remove(n);
    t->wake_cancelled(msg);
    return true;
}

/// Pick node n (already unlinked) and resume its task on the next iteration.
inline void wake_node(WaitNode* n) {
    n->woken = true;
    n->task->wake();
}

/// The ready-queue entry of wake_all(): step every task of the chain, in order.
inline void step_chain(void* p) {
    auto* n = static_cast<WaitNode*>(p);
    while (n) {
        WaitNode* next = n->next;  // read first: the step destroys the node
        n->linked = false;
        n->woken = true;
        TaskBase* t = n->task;
        t->waiter_ = nullptr;
        t->step();
        n = next;
    }
}

/// Wake every node of `list` (Event.set) in O(1): the list is taken whole
/// and one ready-queue entry steps the tasks in FIFO order, which is the
/// order and the place in the iteration where one entry per task would run
/// them (they would be consecutive). Each waiter's frame is touched once,
/// when its step runs. Until then its node is out of the list (gen mismatch)
/// but still the task's waiter_: a cancel() in between only sets
/// must_cancel (cancel_queued returns false), exactly as after wake().
inline void wake_all(WaitList& list, EventLoop& loop) {
    if (WaitNode* head = list.take_all()) loop.push_ready_bound<&step_chain>(head);
}

/// Python's _LoopBoundMixin: a primitive binds to the loop of its first wait
/// (primitives may be created before any loop runs). Loops are told apart by
/// their serial(), never reused, so a new loop at the address of a closed
/// one is still a different loop.
class LoopBound {
public:
    /// Bind to `loop`, or check that it is the bound one.
    /// Raises: RuntimeError("<what> is bound to a different event loop").
    void bind(EventLoop& loop, const char* what) {
        if (loop_serial_ != loop.serial()) [[unlikely]]
            bind_slow(loop, what);
    }
    /// The bound loop (null before the first wait). Every queued waiter runs on it.
    EventLoop* bound_loop() const noexcept { return loop_; }

private:
    void bind_slow(EventLoop& loop, const char* what);
    EventLoop* loop_ = nullptr;
    std::uint64_t loop_serial_ = 0;  // 0: not bound yet
};

}  // namespace asyncio::detail
