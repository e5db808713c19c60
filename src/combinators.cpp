// gather, wait, as_completed, wait_for: the non-template parts.
// See include/asyncio/detail/combinators.hpp for the design.
#include <string>

#include "asyncio/tasks.hpp"

namespace asyncio::detail {

namespace {
// Takes over from a finished gather the children it no longer waits for:
// their exception is marked retrieved, as Python's _done_callback does.
struct RetrieverNode : DoneNode {
    RetrieverNode() { DoneNode::on_done = &fire; }
    static void fire(DoneNode* n, FutureBase* f) {
        if (!f->cancelled()) f->log_traceback_ = false;
        delete static_cast<RetrieverNode*>(n);
    }
};
}  // namespace

// ---- ManyCore (gather, wait) ---------------------------------------------------

bool ManyCore::suspend(TaskBase* t, std::coroutine_handle<> h, std::optional<double> timeout) {
    task = t;
    remaining = n;
    for (std::size_t i = 0; i < n; ++i) {
        ManyNode& node = nodes[i];
        node.core = this;
        node.on_done = &on_done;
        node.linked = true;  // before add_node: a done child fires at once
        node.child->add_node(&node);
    }
    if (completed) return false;
    if (timeout) {
        EventLoop& loop = *t->loop_;
        double d = *timeout > 0 ? *timeout : 0.0;
        timer = loop.call_at(loop.time() + d, Callback(&on_timeout, this));
        timer_armed = true;
    }
    t->suspend_on(h, this);
    suspended = true;
    return true;
}

void ManyCore::complete(bool by_child) {
    completed = true;
    if (timer_armed) {
        timer_armed = false;
        timer.cancel();
    }
    if (!suspended) return;
    // CPython: a child's done callback (one iteration after the child
    // finished) completes the outer future, whose done callback wakes the
    // task one iteration later; the timeout's call_later sets it directly.
    if (by_child)
        task->wake_after_hop();
    else
        task->wake();
}

void ManyCore::on_done(DoneNode* dn, FutureBase* f) {
    auto* node = static_cast<ManyNode*>(dn);
    node->linked = false;
    ManyCore* c = node->core;
    --c->remaining;
    if (c->completed) {
        if (c->is_gather() && !f->cancelled()) f->log_traceback_ = false;
        return;
    }
    switch (c->mode) {
        case Mode::kGather:
            if (f->cancelled() || f->exception_) {
                c->failed = f;
                c->complete(true);
                return;
            }
            break;
        case Mode::kFirstCompleted:
            c->complete(true);
            return;
        case Mode::kFirstException:
            if (!f->cancelled() && f->exception_) {
                f->log_traceback_ = false;  // Python looked at f.exception()
                c->complete(true);
                return;
            }
            break;
        case Mode::kGatherReturnExceptions:
        case Mode::kAllCompleted:
            break;
    }
    if (c->remaining == 0) c->complete(true);
}

bool ManyCore::on_cancel(Waiter* w, TaskBase* t, const std::string* msg) {
    auto* c = static_cast<ManyCore*>(w);
    if (c->completed) return false;
    if (!c->is_gather()) {  // wait(): withdraw, never cancel the children
        c->completed = true;
        c->release();
        t->wake_cancelled(msg);
        return true;
    }
    // Python's _GatheringFuture.cancel(): cancel every child; the gather
    // ends when the children have finished cancelling.
    if (msg) c->cancel_msg = *msg;
    bool any = false;
    for (std::size_t i = 0; i < c->n; ++i) {
        FutureBase* child = c->nodes[i].child;
        if (!child->done() && child->cancel(msg)) any = true;
    }
    if (any) c->cancel_requested = true;
    return any;
}

void ManyCore::on_timeout(void* self) {
    auto* c = static_cast<ManyCore*>(self);
    c->timer_armed = false;
    if (!c->completed) c->complete(false);
}

void ManyCore::check_gather() {
    if (suspended) task->check_cancel();
    if (failed) {
        if (failed->cancelled()) throw CancelledError(failed->cancel_message());
        std::rethrow_exception(failed->checked_exception("Result is not set."));
    }
    if (cancel_requested) throw CancelledError(cancel_msg);
}

void ManyCore::check_wait() {
    if (suspended) task->check_cancel();
}

void ManyCore::release() noexcept {
    if (timer_armed) {
        timer_armed = false;
        if (task && task->loop_) timer.cancel();
    }
    const bool retrieve = is_gather() && completed;
    for (std::size_t i = 0; i < n; ++i) {
        ManyNode& node = nodes[i];
        if (!node.linked) continue;
        node.linked = false;
        node.child->remove_node(&node);
        if (retrieve) node.child->add_node(new RetrieverNode());
    }
}

void check_wait_args(std::size_t n, ReturnWhen rw) {
    if (n == 0) throw ValueError("Set of Tasks/Futures is empty.");
    if (rw != FIRST_COMPLETED && rw != FIRST_EXCEPTION && rw != ALL_COMPLETED)
        throw ValueError("Invalid return_when value: " + std::to_string(static_cast<int>(rw)));
}

// ---- as_completed -------------------------------------------------------------

void AsCompletedCore::reserve(std::size_t count) {
    loop = &running_loop();
    claimed = std::make_unique<bool[]>(count);
    // Raw storage: link() builds each node, so the array is written once.
    nodes = static_cast<AsCompletedNode*>(::operator new(count * sizeof(AsCompletedNode)));
    n = started = pending = count;
}

void AsCompletedCore::arm_timer(std::optional<double> timeout) {
    if (timeout && pending > 0) {
        double d = *timeout > 0 ? *timeout : 0.0;
        timer = loop->call_at(loop->time() + d, Callback(&on_timeout, this));
        timer_armed = true;
    }
}

AsCompletedCore::~AsCompletedCore() { ::operator delete(nodes); }

void AsCompletedCore::unlink_all() noexcept {
    if (timer_armed) {
        timer_armed = false;
        if (running_loop_or_null() == loop) timer.cancel();
    }
    for (std::size_t i = 0; pending > 0 && i < started; ++i) {
        if (!nodes[i].core) continue;
        nodes[i].core = nullptr;
        --pending;
        child_at(this, i)->remove_node(&nodes[i]);
    }
}

void AsCompletedCore::throw_claimed() { throw RuntimeError("as_completed() element was already awaited"); }

std::size_t AsCompletedCore::take() {
    if (done_head) return pop();
    if (timeouts > 0) {
        --timeouts;
        throw TimeoutError();
    }
    throw RuntimeError("as_completed(): more elements awaited than children");
}

void AsCompletedCore::wake_waiters(bool by_child) {
    while (waiters_head && available() > 0) {
        AsCompletedWaiter* w = waiters_head;
        unlink_waiter(w);
        w->woken = true;
        ++reserved;
        // CPython: a child's done callback (one iteration later) puts it in
        // a queue whose get() wakes the waiting task one iteration after.
        if (by_child)
            w->task->wake_after_hop();
        else
            w->task->wake();
    }
}

void AsCompletedCore::unlink_waiter(AsCompletedWaiter* w) noexcept {
    (w->prev ? w->prev->next : waiters_head) = w->next;
    (w->next ? w->next->prev : waiters_tail) = w->prev;
    w->prev = w->next = nullptr;
    w->queued = false;
}

void AsCompletedCore::on_done(DoneNode* dn, FutureBase*) {
    auto* node = static_cast<AsCompletedNode*>(dn);
    AsCompletedCore* c = node->core;
    node->core = nullptr;
    node->next = nullptr;
    if (c->done_tail)
        c->done_tail->next = node;
    else
        c->done_head = node;
    c->done_tail = node;
    ++c->ready;
    if (--c->pending == 0 && c->timer_armed) {
        c->timer_armed = false;
        c->timer.cancel();
    }
    if (c->waiters_head) c->wake_waiters(true);
}

void AsCompletedCore::on_timeout(void* self) {
    auto* c = static_cast<AsCompletedCore*>(self);
    c->timer_armed = false;
    c->timeouts += c->pending;  // Python queues a None per unfinished child
    c->unlink_all();
    c->wake_waiters();
}

void AsCompletedWaiter::suspend(TaskBase* t, std::coroutine_handle<> h) {
    task = t;
    Waiter::cancel = &on_cancel;
    prev = core->waiters_tail;
    next = nullptr;
    (prev ? prev->next : core->waiters_head) = this;
    core->waiters_tail = this;
    queued = true;
    t->suspend_on(h, this);
}

std::size_t AsCompletedWaiter::resume_slow() {
    if (woken) {
        woken = false;
        --core->reserved;
    }
    if (task && task->throw_cancel_) {
        core->wake_waiters();  // the item meant for us goes to the next waiter
        task->check_cancel();
    }
    return core->take();
}

bool AsCompletedWaiter::on_cancel(Waiter* w, TaskBase* t, const std::string* msg) {
    auto* self = static_cast<AsCompletedWaiter*>(w);
    if (!self->queued) return false;
    self->core->unlink_waiter(self);
    t->wake_cancelled(msg);
    return true;
}

// ---- wait_for ----------------------------------------------------------------

void DoneWaiter::on_complete(DoneNode* n, FutureBase*) {
    auto* self = static_cast<DoneWaiter*>(n);
    self->linked_ = false;
    self->task_->wake();
}

bool DoneWaiter::on_cancel(Waiter* w, TaskBase* t, const std::string* msg) {
    auto* self = static_cast<DoneWaiter*>(w);
    if (!self->linked_) return false;
    self->f_->remove_node(self);
    self->linked_ = false;
    t->wake_cancelled(msg);
    return true;
}

void throw_timeout_from_cancelled(FutureBase* f) {
    try {
        throw CancelledError(f ? f->cancel_message() : std::string());
    } catch (const CancelledError&) {
        std::throw_with_nested(TimeoutError());
    }
}

}  // namespace asyncio::detail
