// Futures and tasks: completion, callbacks, cancellation, the task trampoline.
// See include/asyncio/detail/core.hpp for the states and invariants.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncio/futures.hpp"
#include "asyncio/runners.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio::detail {

void throw_nan_delay() { throw ValueError("Invalid delay: NaN (not a number)"); }

namespace {
// Python numbers tasks process-wide: Task-1, Task-2, ... Each thread takes
// blocks of numbers from the shared counter, so names stay unique and
// increase within a thread without an atomic operation per task.
std::atomic<std::uint64_t> g_task_counter{0};
constexpr std::uint64_t kIdBlock = 4096;

std::uint32_t next_task_id() {
    if (t_next_task_id == t_task_id_end) {
        t_next_task_id = g_task_counter.fetch_add(kIdBlock, std::memory_order_relaxed) + 1;
        t_task_id_end = t_next_task_id + kIdBlock;
    }
    return static_cast<std::uint32_t>(t_next_task_id++);
}

const char* state_word(const FutureBase* f) {
    switch (f->state_) {
        case FutureBase::State::kPending: return "pending";
        case FutureBase::State::kCancelled: return "cancelled";
        case FutureBase::State::kFinished: return "finished";
    }
    return "?";
}
}  // namespace

// ---- destruction without recursion --------------------------------------

namespace {
// A frame being destroyed may drop the last reference to another task (a
// Task handle among its locals) or own a suspended child coroutine, whose
// destruction may do the same, and so on: 100,000 tasks each holding the
// previous one would overflow the stack. Destruction requested while one
// is under way is queued here and run by the outermost call instead.
struct Doomed {
    void* p;
    bool is_future;
};
// Trivially destructible thread_locals (no TLS init guard on the hot
// path); the queue is malloc'd on the first nested destruction and freed
// once drained.
thread_local bool t_destroying = false;
thread_local Doomed* t_doomed = nullptr;
thread_local std::size_t t_doomed_size = 0;
thread_local std::size_t t_doomed_cap = 0;

bool push_doomed(Doomed d) noexcept {
    if (t_doomed_size == t_doomed_cap) {
        std::size_t cap = t_doomed_cap ? t_doomed_cap * 2 : 64;
        void* p = std::realloc(t_doomed, cap * sizeof(Doomed));
        if (!p) return false;
        t_doomed = static_cast<Doomed*>(p);
        t_doomed_cap = cap;
    }
    t_doomed[t_doomed_size++] = d;
    return true;
}

void destroy_one(const Doomed& d) noexcept {
    if (d.is_future) {
        static_cast<FutureBase*>(d.p)->destroy_now();
    } else {
        std::coroutine_handle<>::from_address(d.p).destroy();
    }
}

[[gnu::noinline]] void drain_doomed() noexcept {
    while (t_doomed_size) destroy_one(t_doomed[--t_doomed_size]);
    std::free(t_doomed);
    t_doomed = nullptr;
    t_doomed_cap = 0;
}

[[gnu::noinline]] void defer_destruction(Doomed d) noexcept {
    if (!push_doomed(d)) destroy_one(d);  // out of memory: recurse
}
}  // namespace

void FutureBase::destroy() noexcept {
    // A done plain future whose value owns nothing (frame_offset_ holds its
    // state's size), with no exception, no callbacks and no side-table entry
    // left: none of its destructors has an effect, so it is unlinked and its
    // memory freed without running them ([basic.life]: allowed when nothing
    // depends on their side effects), and without the nesting guard, as
    // nothing else can be freed meanwhile. The future ping-pong's path.
    if (!is_task_ && frame_offset_ != 0 && !has_extra_ && !cb_tail_ && !exception_ &&
        state_ != State::kPending) [[likely]] {
        if (linked()) unlink();
        frame_free(this, frame_offset_);
        return;
    }
    if (t_destroying) [[unlikely]] {
        defer_destruction(Doomed{this, true});
        return;
    }
    t_destroying = true;
    // A task that finished with a result, with no callbacks and no
    // side-table entry left (the create_task + await path): destroy_now()'s
    // work, inline.
    if (is_task_ && state_ == State::kFinished && !exception_ && !cb_tail_ && !has_extra_) [[likely]] {
        if (linked()) unlink();
        std::coroutine_handle<>::from_address(reinterpret_cast<char*>(this) - frame_offset_).destroy();
    } else {
        destroy_now();
    }
    if (t_doomed_size) [[unlikely]] drain_doomed();
    t_destroying = false;
}

// The memory of a suspended task is a benchmarked target (bench_core,
// memory_event_100k: <= 192 bytes with its frame). Think twice before
// adding a field.
static_assert(sizeof(TaskBase) <= 72, "TaskBase grew: see docs/benchmarks.md (memory per task)");

// ---- FutureExtra side table ---------------------------------------------

namespace {
// Process-wide and locked: a future may be destroyed on another thread than
// the one that named it (a handle outliving its loop). Only names and
// cancellation messages come here, never the common path.
struct ExtraTable {
    std::mutex mu;
    std::unordered_map<const FutureBase*, std::unique_ptr<FutureExtra>> map;
};
ExtraTable& extra_table() {
    static ExtraTable* t = new ExtraTable();  // never destroyed: futures may die during exit
    return *t;
}
}  // namespace

FutureExtra& FutureBase::extra() {
    ExtraTable& t = extra_table();
    std::lock_guard<std::mutex> lk(t.mu);
    std::unique_ptr<FutureExtra>& x = t.map[this];
    if (!x || !has_extra_) {  // (an entry of a freed future at this address is stale)
        try {
            x = std::make_unique<FutureExtra>();
        } catch (...) {
            t.map.erase(this);
            throw;
        }
    }
    has_extra_ = true;
    return *x;
}

FutureExtra* FutureBase::find_extra() const noexcept {
    if (!has_extra_) return nullptr;
    ExtraTable& t = extra_table();
    std::lock_guard<std::mutex> lk(t.mu);
    auto it = t.map.find(this);
    return it == t.map.end() ? nullptr : it->second.get();
}

void FutureBase::drop_extra() noexcept {
    if (!has_extra_) return;
    std::unique_ptr<FutureExtra> x;  // freed outside the lock
    {
        ExtraTable& t = extra_table();
        std::lock_guard<std::mutex> lk(t.mu);
        auto it = t.map.find(this);
        if (it != t.map.end()) {
            x = std::move(it->second);
            t.map.erase(it);
        }
    }
    has_extra_ = false;
}

std::size_t extra_table_size() noexcept {
    ExtraTable& t = extra_table();
    std::lock_guard<std::mutex> lk(t.mu);
    return t.map.size();
}

std::string FutureBase::cancel_message() const {
    FutureExtra* x = find_extra();
    return x ? x->cancel_msg : std::string();
}

void FutureBase::destroy_now() noexcept {
    if (is_task_) {
        // A task its closed loop let go of (unlinked) still reports an
        // exception nobody retrieved.
        if (linked() || log_traceback_) future_destroyed(this);  // may report it, with its name
        if (has_extra_) [[unlikely]] drop_extra();
        std::coroutine_handle<>::from_address(reinterpret_cast<char*>(this) - frame_offset_).destroy();
    } else {
        if (has_extra_) [[unlikely]] drop_extra();
        auto* f = static_cast<FutureStateBase*>(this);
        f->destroy_(f);
    }
}

void destroy_coroutine(std::coroutine_handle<> h) noexcept {
    if (t_destroying) [[unlikely]] {
        defer_destruction(Doomed{h.address(), false});
        return;
    }
    t_destroying = true;
    h.destroy();
    if (t_doomed_size) [[unlikely]] drain_doomed();
    t_destroying = false;
}

// ---- FutureBase ---------------------------------------------------------

EventLoop& FutureBase::loop() const {
    if (!loop_) throw RuntimeError("the event loop of this future is gone");
    return *loop_;
}

void FutureBase::add_node_to_done(DoneNode* n) {
    n->next = nullptr;
    if (!loop_) {
        dispose_node(n);
        throw RuntimeError("the event loop of this future is gone");
    }
    n->on_done(n, this);
}

bool FutureBase::remove_node(DoneNode* n) noexcept {
    if (!cb_tail_) return false;
    DoneNode* prev = cb_tail_;
    do {
        DoneNode* c = prev->next;
        if (c == n) {
            if (c->next == c) {
                cb_tail_ = nullptr;
            } else {
                prev->next = c->next;
                if (cb_tail_ == c) cb_tail_ = prev;
            }
            c->next = nullptr;
            return true;
        }
        prev = c;
    } while (prev != cb_tail_);
    return false;
}

std::size_t FutureBase::remove_matching(const void* type, const void* key) {
    // Unroll the circle into a plain list, filter it, close it again.
    if (!cb_tail_) return 0;
    DoneNode* head = cb_tail_->next;
    cb_tail_->next = nullptr;
    std::size_t removed = 0;
    DoneNode* new_head = nullptr;
    DoneNode* new_tail = nullptr;
    for (DoneNode* c = head; c;) {
        DoneNode* next = c->next;
        if (is_user_node(c) && static_cast<UserDoneNodeBase*>(c)->matches(c, type, key)) {
            dispose_node(c);
            ++removed;
        } else {
            c->next = nullptr;
            (new_tail ? new_tail->next : new_head) = c;
            new_tail = c;
        }
        c = next;
    }
    if (new_tail) new_tail->next = new_head;
    cb_tail_ = new_tail;
    return removed;
}


bool FutureBase::cancel(const std::string* msg) {
    if (is_task_) return static_cast<TaskBase*>(this)->task_cancel(msg);
    return future_cancel(msg);
}

bool FutureBase::future_cancel(const std::string* msg) {
    log_traceback_ = false;
    if (state_ != State::kPending) return false;
    if (cb_tail_ && loop_ && loop_->get_debug()) [[unlikely]]
        loop_->check_thread();  // its callbacks would be scheduled from here (Python: call_soon)
    state_ = State::kCancelled;
    if (msg) extra().cancel_msg = *msg;
    schedule_callbacks();
    return true;
}

void throw_bad_await(FutureBase* f, TaskBase* task) {
    if (f == task) throw RuntimeError("Task cannot await on itself: " + task->repr());
    throw RuntimeError("Task " + task->repr() + " got Future " + f->repr() + " attached to a different loop");
}

void FutureBase::throw_cancelled() const { throw CancelledError(cancel_message()); }

void FutureRef::raise_no_value() const {
    // Not finished with a value: raises, or returns the exception to rethrow.
    std::rethrow_exception(base()->checked_exception_slow("Result is not set."));
}

std::exception_ptr FutureBase::checked_exception_slow(const char* what_not_set) {
    if (state_ == State::kCancelled) throw_cancelled();
    if (state_ != State::kFinished) throw InvalidStateError(what_not_set);
    log_traceback_ = false;
    return exception_;
}

void FutureBase::check_settable_slow() const {
    if (state_ != State::kPending)
        throw InvalidStateError(std::string("invalid state: ") + state_word(this) + " " + repr());
    if (!loop_) throw RuntimeError("the event loop of this future is gone");
}

void FutureBase::finish_with(std::exception_ptr e) {
    exception_ = std::move(e);
    state_ = State::kFinished;
    log_traceback_ = static_cast<bool>(exception_);
    schedule_callbacks();
}

std::string FutureBase::repr() const {
    std::string s = is_task_ ? "<Task " : "<Future ";
    s += state_word(this);
    if (is_task_) s += " name='" + static_cast<const TaskBase*>(this)->get_name() + "'";
    s += ">";
    return s;
}

void schedule_user_node(DoneNode* n, FutureBase* fut) {
    // The ready-queue entry owns the node and a reference to the future
    // until it has run (or the loop is closed and drops it).
    struct Runner {
        DoneNode* node;
        FutureBase* fut;
        Runner(DoneNode* n, FutureBase* f) noexcept : node(n), fut(f) { fut->add_ref(); }
        Runner(Runner&& o) noexcept : node(std::exchange(o.node, nullptr)), fut(std::exchange(o.fut, nullptr)) {}
        ~Runner() {
            if (node) dispose_node(node);
            if (fut) fut->release();
        }
        void operator()() { static_cast<UserDoneNodeBase*>(node)->run(node, fut); }
    };
    fut->loop_->push_ready(Callback(Runner(n, fut)));
}

void init_future(FutureBase* f, EventLoop& loop) {
    f->refs_ = 1;  // the handle's: if this throws, its release frees the state
    if (loop.is_closed()) throw RuntimeError("Event loop is closed");
    f->loop_ = &loop;
    loop.register_future(f);
}

void future_destroyed_slow(FutureBase* f) noexcept {
    // Free any user callbacks still registered.
    DoneNode* c = f->take_nodes();
    while (c) {
        DoneNode* next = c->next;
        dispose_node(c);
        c = next;
    }
    if (f->log_traceback_) {
        ExceptionContext ctx;
        ctx.message = f->is_task_ ? "Task exception was never retrieved" : "Future exception was never retrieved";
        ctx.exception = f->exception_;
        ctx.task = f->repr();
        if (f->loop_) {
            f->loop_->call_exception_handler(ctx);
        } else {
            EventLoop* any = running_loop_or_null();
            if (any) any->call_exception_handler(ctx);
            else write_exception_context(ctx);  // the loop is gone: the default handler's output
        }
    } else if (f->is_task_ && f->state_ == FutureBase::State::kPending && f->loop_) {
        ExceptionContext ctx;
        ctx.message = "Task was destroyed but it is pending!";
        ctx.task = f->repr();
        f->loop_->call_exception_handler(ctx);
    }
    if (f->loop_) f->loop_->unregister_future(f);
}

// ---- TaskBase -----------------------------------------------------------

std::string TaskBase::get_name() const {
    if (FutureExtra* x = find_extra(); x && x->has_name) return x->name;
    return "Task-" + std::to_string(id_);
}

void TaskBase::set_name(std::string name) {
    FutureExtra& x = extra();
    x.name = std::move(name);
    x.has_name = true;
}

thread_local constinit std::uint64_t t_next_task_id = 0;
thread_local constinit std::uint64_t t_task_id_end = 0;

void start_task_slow(EventLoop& loop, TaskBase* t, std::coroutine_handle<> h, std::string* name) {
    if (loop.is_closed()) {
        h.destroy();
        throw RuntimeError("Event loop is closed");
    }
    init_task(loop, t, h, next_task_id());
    try {
        if (name) t->set_name(std::move(*name));
        t->schedule_step();  // may grow the ready queue
    } catch (...) {  // out of memory: nothing is scheduled, nothing leaks
        t->drop_extra();  // a name already set
        h.destroy();
        throw;
    }
    loop.register_future(t);
}

// The step: the ready queue's entry (step_entry) and step() (a task woken
// by a primitive that runs it from its own ready-queue entry) share it.
inline void TaskBase::run_step_inline() {
    // The common case is a pending task with no cancellation requested; the
    // rest is out of line so this stays a small leaf-like function.
    if (done_or_must_cancel()) [[unlikely]] {
        if (!enter_step_slow()) return;
    }
    step_scheduled_ = false;
    started_ = true;
    parked_ = false;
    EventLoop* loop = loop_;
    // No step runs inside another (every wake-up is scheduled): none is
    // current here, and none is after it, as Python's _leave_task.
    loop->set_current_task(this);
    if (loop->get_debug()) [[unlikely]] {
        run_timed_step(loop);
    } else {
        trampoline();
    }
    loop->set_current_task(nullptr);
    if (done_or_must_cancel()) [[unlikely]] leave_step_slow();  // a tail call
}

void TaskBase::run_step() { run_step_inline(); }

void TaskBase::step_entry(void* storage) { static_cast<TaskBase*>(Callback::context_of(storage))->run_step_inline(); }

void TaskBase::wake_after_hop() {
    loop_->push_ready(Callback::raw([](void* storage) { static_cast<TaskBase*>(Callback::context_of(storage))->wake(); }, this));
}

void TaskBase::schedule_step_slow() { loop_->push_ready(Callback::raw(&step_entry, this)); }

bool TaskBase::enter_step_slow() {
    step_scheduled_ = false;
    if (state_ != State::kPending) return false;
    // must_cancel_: the cancellation is raised at the co_await the task
    // resumes from.
    must_cancel_ = false;
    throw_cancel_ = true;
    if (!started_) {  // cancelled before its first step: the body never runs
        started_ = true;
        throw_cancel_ = false;
        exception_ = std::make_exception_ptr(CancelledError(cancel_message()));
        finish();
        release();
        return false;
    }
    return true;
}

void TaskBase::run_timed_step(EventLoop* loop) {
    auto t0 = std::chrono::steady_clock::now();
    trampoline();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt >= loop->slow_callback_duration()) loop->note_slow_step(this, dt);
}

void TaskBase::leave_step_slow() {
    if (state_ != State::kPending)
        release();  // finished: the loop's reference (may destroy the frame)
    else
        interrupt_wait();
}

void TaskBase::interrupt_wait() {
    // Suspended with a cancellation requested during this step: interrupt
    // the wait at once (CPython does this right after the coroutine yields).
    if (must_cancel_ && waiter_) {
        Waiter* w = waiter_;
        std::string msg = cancel_message();
        if (w->cancel(w, this, &msg)) must_cancel_ = false;
    }
}

void TaskBase::finish() noexcept {
    if (exception_ || must_cancel_) [[unlikely]] {
        finish_slow();
        return;
    }
    state_ = State::kFinished;
    schedule_callbacks();
}

void TaskBase::finish_slow() noexcept {
    if (exception_) {
        try {
            std::rethrow_exception(exception_);
        } catch (const CancelledError& e) {
            exception_ = nullptr;
            state_ = State::kCancelled;
            try {
                extra().cancel_msg = e.what();
            } catch (...) {
            }
        } catch (...) {
        }
    } else if (must_cancel_) {  // cancelled right before the coroutine returned
        must_cancel_ = false;
        state_ = State::kCancelled;
    }
    if (state_ == State::kPending) {
        state_ = State::kFinished;
        log_traceback_ = static_cast<bool>(exception_);
    }
    schedule_callbacks();
}

bool TaskBase::task_cancel(const std::string* msg) {
    log_traceback_ = false;
    if (state_ != State::kPending) return false;
    if (loop_) loop_->check_thread();
    ++num_cancels_requested_;
    if (waiter_ && waiter_->cancel(waiter_, this, msg)) return true;
    must_cancel_ = true;
    // A cancellation already on its way to the coroutine (an interrupted
    // wait) keeps its message, as CPython's __step keeps the CancelledError
    // the awaited future raised.
    if (throw_cancel_) return true;
    if (msg)
        extra().cancel_msg = *msg;
    else if (FutureExtra* x = find_extra())
        x->cancel_msg.clear();
    return true;
}

int TaskBase::uncancel() noexcept {
    if (num_cancels_requested_ > 0) --num_cancels_requested_;
    if (num_cancels_requested_ == 0) must_cancel_ = false;  // Python 3.13
    return static_cast<int>(num_cancels_requested_);
}

void TaskBase::raise_cancel() {
    throw_cancel_ = false;
    throw CancelledError(cancel_message());
}

void TaskBase::wake_cancelled(const std::string* msg) {
    if (msg)
        extra().cancel_msg = *msg;
    else if (FutureExtra* x = find_extra())
        x->cancel_msg.clear();
    throw_cancel_ = true;
    wake();
}

// ---- run ----------------------------------------------------------------

namespace {
struct StopNode : DoneNode {
    EventLoop* loop;
    static void stop_loop(void* l) { static_cast<EventLoop*>(l)->stop(); }
    static void fire(DoneNode* n, FutureBase*) {
        auto* self = static_cast<StopNode*>(n);
        self->loop->push_ready(Callback(&stop_loop, self->loop));
    }
};
}  // namespace

void run_until_done(EventLoop& loop, FutureBase* f) {
    if (loop.is_closed()) throw RuntimeError("Event loop is closed");
    if (f->loop_ != &loop) throw ValueError("The future belongs to a different loop than the one specified as the loop argument");
    StopNode node;
    node.loop = &loop;
    node.on_done = &StopNode::fire;
    f->add_node(&node);
    try {
        loop.run_forever();
    } catch (...) {
        f->remove_node(&node);
        throw;
    }
    f->remove_node(&node);
    if (!f->done()) throw RuntimeError("Event loop stopped before Future completed.");
}

void check_no_running_loop() {
    if (running_loop_or_null())
        throw RuntimeError("asyncio.run() cannot be called from a running event loop");
}

void finish_run(EventLoop& loop) noexcept {
    try {
        loop.cancel_all_tasks();
    } catch (...) {
    }
    // Python's Runner.close(): the default executor is shut down while the
    // loop still runs, so a job waiting for the loop (a
    // run_coroutine_threadsafe(...).result()) finishes instead of hanging.
    try {
        loop.run_until_complete(loop.shutdown_default_executor());
    } catch (...) {
    }
    try {
        loop.close();
    } catch (...) {
    }
}

void report_never_awaited() noexcept {
    EventLoop* loop = running_loop_or_null();
    if (!loop || !loop->get_debug()) return;
    ExceptionContext ctx;
    ctx.message = "coroutine was never awaited";
    loop->call_exception_handler(ctx);
}

void report_never_awaited(EventLoop& loop) noexcept {
    if (!loop.get_debug()) return;
    ExceptionContext ctx;
    ctx.message = "coroutine was never awaited";
    if (running_loop_or_null() == &loop) loop.call_exception_handler(ctx);
    else write_exception_context(ctx);  // not this thread's loop, or closed: no handler call from here
}

TaskBase* current_task_base() noexcept {
    EventLoop* l = running_loop_or_null();
    return l ? l->current_task_base() : nullptr;
}

}  // namespace asyncio::detail

namespace asyncio {

AnyTask current_task() {
    EventLoop& loop = detail::running_loop();
    return AnyTask::from_base(loop.current_task_base());
}

std::vector<AnyTask> all_tasks() {
    EventLoop& loop = detail::running_loop();
    std::vector<AnyTask> out;
    for (detail::TaskBase* t : loop.pending_tasks()) out.push_back(AnyTask::from_base(t));
    return out;
}

}  // namespace asyncio
