// TaskGroup (Python's asyncio/taskgroups.py, 3.13 semantics).
#include "asyncio/taskgroups.hpp"

namespace asyncio {

namespace detail {
// One child of a group, from create_task() until the group has processed
// its completion (Python's _tasks set plus the done callback). Owned by the
// group; while its callback sits in the ready queue, by that entry too: if
// the group is gone first (tg == null) the entry just frees it.
struct GroupNode : DoneNode {
    TaskGroup* tg = nullptr;
    AnyTask task;
    GroupNode* prev = nullptr;
    GroupNode* next = nullptr;
    bool scheduled = false;

    struct Run {
        GroupNode* node;
        explicit Run(GroupNode* n) noexcept : node(n) {}
        Run(Run&& o) noexcept : node(std::exchange(o.node, nullptr)) {}
        ~Run() {
            if (node && !node->tg) delete node;
        }
        void operator()() {
            GroupNode* n = std::exchange(node, nullptr);
            if (n->tg)
                n->tg->on_task_done(n);
            else
                delete n;
        }
    };
    static void fire(DoneNode* dn, FutureBase* f) {
        auto* self = static_cast<GroupNode*>(dn);
        self->scheduled = true;
        f->loop_->push_ready(Callback(Run(self)));
    }
};
}  // namespace detail

TaskGroup::~TaskGroup() {
    detail::GroupNode* n = tasks_;
    while (n) {
        detail::GroupNode* next = n->next;
        if (n->scheduled) {
            n->tg = nullptr;  // its ready-queue entry frees it
        } else {
            n->task.raw()->remove_node(n);
            delete n;
        }
        n = next;
    }
}

void TaskGroup::enter() {
    if (entered_) throw RuntimeError("TaskGroup has already been entered");
    loop_ = &detail::running_loop();
    parent_ = current_task();
    if (!parent_) throw RuntimeError("TaskGroup cannot determine the parent task");
    entered_ = true;
}

const char* TaskGroup::creation_error() const noexcept {
    if (!entered_) return "TaskGroup has not been entered";
    if (exiting_ && ntasks_ == 0) return "TaskGroup is finished";
    if (aborting_) return "TaskGroup is shutting down";
    return nullptr;
}

void TaskGroup::adopt(const AnyTask& t) {
    auto* n = new detail::GroupNode();
    n->tg = this;
    n->task = t;
    n->on_done = &detail::GroupNode::fire;
    n->next = tasks_;
    if (tasks_) tasks_->prev = n;
    tasks_ = n;
    ++ntasks_;
    t.raw()->add_node(n);
}

void TaskGroup::abort() {
    aborting_ = true;
    for (detail::GroupNode* n = tasks_; n; n = n->next)
        if (!n->task.done()) n->task.cancel();
}

void TaskGroup::on_task_done(detail::GroupNode* n) {
    (n->prev ? n->prev->next : tasks_) = n->next;
    if (n->next) n->next->prev = n->prev;
    --ntasks_;
    AnyTask task = std::move(n->task);
    delete n;

    if (on_completed_ && ntasks_ == 0 && !on_completed_->done()) on_completed_->set_result();
    if (task.cancelled()) return;
    std::exception_ptr exc = task.exception();
    if (!exc) return;
    errors_.push_back(exc);
    if (parent_.done()) {
        ExceptionContext ctx;
        ctx.message = "Task " + task.task()->repr() + " has errored out but its parent task " +
                      parent_.task()->repr() + " is already completed";
        ctx.exception = exc;
        ctx.task = task.task()->repr();
        loop_->call_exception_handler(ctx);
        return;
    }
    if (!aborting_ && !parent_cancel_requested_) {
        // Cancel the body too; __aexit__ takes this cancellation back.
        abort();
        parent_cancel_requested_ = true;
        parent_.cancel();
    }
}

Coro<> TaskGroup::aexit(std::exception_ptr exc) {
    exiting_ = true;
    bool body_cancelled = false;
    if (exc) {
        try {
            std::rethrow_exception(exc);
        } catch (const CancelledError&) {
            body_cancelled = true;
        } catch (...) {
        }
    }
    std::exception_ptr propagate_cancel = body_cancelled ? exc : nullptr;
    if (exc && !aborting_) abort();  // the parent is being cancelled, or the body raised

    // A loop: the wait can be cancelled repeatedly (the parent cancelled
    // again while the children finish cancelling).
    while (ntasks_ > 0) {
        if (!on_completed_) on_completed_.emplace(*loop_);
        try {
            Future<> fut = *on_completed_;
            co_await fut;
        } catch (const CancelledError&) {
            if (!aborting_) {
                propagate_cancel = std::current_exception();
                abort();
            }
        }
        on_completed_.reset();
    }

    if (parent_cancel_requested_) {
        // We cancelled the parent ourselves: take that request back.
        if (parent_.uncancel() == 0) propagate_cancel = nullptr;
    }
    if (propagate_cancel && errors_.empty()) std::rethrow_exception(propagate_cancel);
    if (exc && !body_cancelled) errors_.push_back(exc);
    if (!errors_.empty()) {
        // A cancellation from outside stays pending on the parent (3.13, gh-116720).
        if (parent_.cancelling() > 0) {
            parent_.uncancel();
            parent_.cancel();
        }
        std::vector<std::exception_ptr> errors = std::move(errors_);
        errors_.clear();
        throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors));
    }
}

}  // namespace asyncio
