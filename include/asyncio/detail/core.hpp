// Internal: the state shared by futures and tasks, and the task driver.
//
// States and who may touch what (all on the loop's thread):
// - FutureBase is the result slot of both Future<T> and Task<T>: a state
//   (pending/cancelled/finished), an exception, the done-callback list and a
//   reference count. Handles (Future<T>, Task<T>, AnyTask) hold references; a
//   pending task also holds one for the loop ("the loop keeps a scheduled task
//   alive"), dropped when the task finishes.
// - TaskBase extends it with the task driver. A task is one allocation: every
//   coroutine frame's promise is a TaskBase, the root frame's one is the task.
//   A nested coroutine (`co_await child()`) only uses `root_` (its task) and
//   `link_` (its parent); the root is the one with is_task_ set. Fields only
//   one of the two needs share storage (root_/waiter_), and a task's
//   resume point is its own `link_` marked `parked_`: a task with its
//   frame costs as little as possible (a task waiting on an Event is 176
//   bytes, frame included).
// - Resumption never nests: awaiters store the next coroutine to run in the
//   root's `link_` and suspend; TaskBase::step() is a trampoline that resumes
//   `link_` until it is empty or the task parks. Deep chains of nested
//   coroutines and long runs of synchronous completions therefore use
//   constant stack, with or without symmetric transfer being a tail call
//   (-O0, ASan).
// - A suspended task's `waiter_` says how to interrupt what it waits on
//   (Python's `_fut_waiter`). Whoever wakes the task clears it first, so a
//   cancel() that arrives after the wake-up but before the step sets
//   `must_cancel_`, exactly as CPython does.
#pragma once

#include <coroutine>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "asyncio/detail/callback.hpp"
#include "asyncio/exceptions.hpp"

namespace asyncio {
class EventLoop;
}

namespace asyncio::detail {

struct FutureBase;
struct TaskBase;

/// Allocation of coroutine frames: per-thread free lists by 16-byte size
/// class (src/frame_allocator.cpp). The pop and push of a free block are
/// inline, so a frame's constant size folds into its class; everything
/// else (refill, large sizes, a thread's exit) is out of line.
namespace frame_pool {
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kEnabled = false;  // keep use-after-free visible to ASan
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kEnabled = false;
#else
inline constexpr bool kEnabled = true;
#endif
#else
inline constexpr bool kEnabled = true;
#endif
inline constexpr std::size_t kGranule = 16;
inline constexpr std::size_t kMaxPooled = 1024;
inline constexpr std::size_t kClasses = kMaxPooled / kGranule;
struct FreeBlock {
    FreeBlock* next;
};
extern thread_local constinit FreeBlock* t_heads [[gnu::tls_model("initial-exec")]][kClasses];
constexpr std::size_t class_of(std::size_t n) { return (n + kGranule - 1) / kGranule - 1; }
void* alloc_slow(std::size_t n);
void free_slow(void* p, std::size_t n) noexcept;
}  // namespace frame_pool

// Neither the pop nor the push cares whether the thread is exiting: its
// lists stay valid memory until its storage goes, after its last
// destructor, and the blocks on them then stay with the slab registry,
// whether they got there before the exit or during it. Only a refill must
// not run then (alloc_slow() checks).
inline void* frame_alloc(std::size_t n) {
    using namespace frame_pool;
    if (kEnabled && n <= kMaxPooled) {
        if (FreeBlock* b = t_heads[class_of(n)]) [[likely]] {
            t_heads[class_of(n)] = b->next;
            return b;
        }
    }
    return alloc_slow(n);
}
inline void frame_free(void* p, std::size_t n) noexcept {
    using namespace frame_pool;
    if (kEnabled && n <= kMaxPooled) [[likely]] {
        auto* b = static_cast<FreeBlock*>(p);
        b->next = t_heads[class_of(n)];
        t_heads[class_of(n)] = b;
        return;
    }
    free_slow(p, n);
}

/// A done-callback registration. Awaiters embed one (no allocation);
/// add_done_callback() allocates a UserDoneNodeBase that owns the callable.
struct DoneNode {
    DoneNode* next = nullptr;
    /// Called at completion (or at once if added to a done future): must
    /// only schedule work through the loop, never run user code.
    void (*on_done)(DoneNode* self, FutureBase* fut) = nullptr;
};

void schedule_user_node(DoneNode* n, FutureBase* fut);

/// A node made by add_done_callback(): on_done == &schedule_user_node.
struct UserDoneNodeBase : DoneNode {
    /// Does this node hold a callable equal to *key of type `type`?
    bool (*matches)(const DoneNode* self, const void* type, const void* key) = nullptr;
    /// Run the callable.
    void (*run)(DoneNode* self, FutureBase* fut) = nullptr;
    /// Free the node.
    void (*dispose)(DoneNode* self) noexcept = nullptr;
};

inline bool is_user_node(const DoneNode* n) noexcept { return n->on_done == &schedule_user_node; }
inline void dispose_node(DoneNode* n) noexcept {
    if (is_user_node(n)) static_cast<UserDoneNodeBase*>(n)->dispose(n);
}

/// How to interrupt a suspended task (see the note at the top).
struct Waiter {
    /// Python's `_fut_waiter.cancel(msg)`: returns true if the wait was
    /// interrupted (the task will be woken and see CancelledError, or the
    /// result of a task that swallowed the cancellation).
    bool (*cancel)(Waiter* self, TaskBase* task, const std::string* msg) = nullptr;
};

struct FutureExtra {
    std::string name;
    std::string cancel_msg;
    bool has_name = false;
};

/// A link in the loop's registry of live futures and tasks: a circular
/// doubly linked list through a sentinel owned by the loop, so linking and
/// unlinking are a few stores with no branch. Unlinked: next == nullptr.
struct RegLink {
    RegLink* reg_prev_ = nullptr;
    RegLink* reg_next_ = nullptr;

    bool linked() const noexcept { return reg_next_ != nullptr; }
    void link_before(RegLink* pos) noexcept {
        reg_next_ = pos;
        reg_prev_ = pos->reg_prev_;
        pos->reg_prev_->reg_next_ = this;
        pos->reg_prev_ = this;
    }
    void unlink() noexcept {
        reg_prev_->reg_next_ = reg_next_;
        reg_next_->reg_prev_ = reg_prev_;
        reg_prev_ = reg_next_ = nullptr;
    }
};

struct FutureBase : RegLink {
    enum class State : std::uint8_t { kPending, kCancelled, kFinished };

    EventLoop* loop_ = nullptr;
    // Done callbacks, FIFO, as a circular list addressed by its tail
    // (tail->next is the head): O(1) append in one word.
    DoneNode* cb_tail_ = nullptr;
    std::exception_ptr exception_;
    std::uint32_t refs_ = 0;
    State state_ = State::kPending;
    bool log_traceback_ : 1 = false;  // an exception nobody has looked at yet
    bool is_task_ : 1 = false;
    // TaskBase's flags, kept here so a task's state packs into one word.
    bool must_cancel_ : 1 = false;
    bool throw_cancel_ : 1 = false;  // the awaiter being resumed raises CancelledError
    bool started_ : 1 = false;
    bool step_scheduled_ : 1 = false;
    bool parked_ : 1 = false;  // a task's link_ is where its next step resumes
    bool has_extra_ : 1 = false;  // has a FutureExtra (see extra())
    // A task: its offset from the start of its coroutine frame (destroy()
    // finds the frame from it, so no per-type function pointer is stored;
    // never below 16, the frame's resume and destroy pointers come first).
    // A plain future whose value type owns nothing (void or trivially
    // destructible): the size of its FutureState, which destroy() frees
    // directly; 0 otherwise.
    std::uint16_t frame_offset_ = 0;

    bool done() const noexcept { return state_ != State::kPending; }
    /// done() || must_cancel_ in one load and test (a task step's entry
    /// and exit): the flags' byte follows state_, and GCC and Clang give
    /// the first bit-field the lowest bit (tests/test_tasks.cpp checks it).
    bool done_or_must_cancel() const noexcept {
        std::uint16_t w;
        std::memcpy(&w, &state_, sizeof w);
        return (w & kDoneOrMustCancelMask) != 0;
    }
    static constexpr std::uint16_t kDoneOrMustCancelMask = 0x04ff;  // state_; must_cancel_ (3rd flag)
    bool cancelled() const noexcept { return state_ == State::kCancelled; }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) destroy();
    }
    void destroy() noexcept;  // see destroy_coroutine()
    void destroy_now() noexcept;

    /// The rarely used part (a task's name, a cancellation message) lives
    /// in a side table, not in every future: created on first use, freed
    /// by destroy_now().
    FutureExtra& extra();
    /// The FutureExtra, or null if there is none.
    FutureExtra* find_extra() const noexcept;
    void drop_extra() noexcept;
    std::string cancel_message() const;

    EventLoop& loop() const;  // RuntimeError once the loop is gone

    /// Register n (FIFO); on a done future n is scheduled at once.
    void add_node(DoneNode* n) {
        if (done()) [[unlikely]] {
            add_node_to_done(n);
            return;
        }
        if (cb_tail_) {
            n->next = cb_tail_->next;
            cb_tail_->next = n;
        } else {
            n->next = n;
        }
        cb_tail_ = n;
    }
    void add_node_to_done(DoneNode* n);
    /// Unlink n if it is still registered; true if it was.
    bool remove_node(DoneNode* n) noexcept;
    std::size_t remove_matching(const void* type, const void* key);
    /// Detach the whole list, as a null-terminated chain from the head.
    DoneNode* take_nodes() noexcept {
        if (!cb_tail_) return nullptr;
        DoneNode* head = cb_tail_->next;
        cb_tail_->next = nullptr;
        cb_tail_ = nullptr;
        return head;
    }
    /// Complete: detach every node in order and let each schedule itself.
    void schedule_callbacks() noexcept {
        DoneNode* c = take_nodes();
        if (!c) return;
        for (DoneNode* next; (next = c->next) != nullptr; c = next) {
            c->next = nullptr;
            c->on_done(c, this);
        }
        // The last (often the only one: an awaiting task) as a tail call,
        // which needs no saved register.
        c->on_done(c, this);
    }

    /// Future.cancel() or Task.cancel(), whichever this is.
    bool cancel(const std::string* msg);
    bool future_cancel(const std::string* msg);

    /// Python's Future.exception()/result() preamble: raises CancelledError
    /// or InvalidStateError, marks the exception retrieved, returns it.
    std::exception_ptr checked_exception(const char* what_not_set) {
        if (state_ == State::kFinished && !exception_) return nullptr;  // the common case, inline
        return checked_exception_slow(what_not_set);
    }
    std::exception_ptr checked_exception_slow(const char* what_not_set);
    [[noreturn]] void throw_cancelled() const;

    /// Future.set_exception()/set_result() preamble.
    void check_settable() const {
        if (state_ != State::kPending || !loop_) check_settable_slow();
    }
    void check_settable_slow() const;
    void finish_with(std::exception_ptr e);  // state + callbacks (e may be null)
    /// finish_with(nullptr) of a pending future (set_result): no exception_ptr
    /// to build, move or destroy, and inline.
    void finish_ok() noexcept {
        state_ = State::kFinished;
        log_traceback_ = false;
        schedule_callbacks();
    }

    std::string repr() const;
};

struct TaskBase : FutureBase {
    // Root, running: the trampoline's next coroutine to resume in this step.
    // Root, suspended (parked_): where the next step resumes.
    // Nested coroutine: its parent, to resume when it finishes.
    std::coroutine_handle<> link_;
    union {
        TaskBase* root_;             // a nested coroutine: the task it runs in
        Waiter* waiter_ = nullptr;   // a task: what it waits on while suspended, if interruptible
    };
    std::uint32_t id_ = 0;                  // Task-<id>
    std::uint32_t num_cancels_requested_ = 0;

    /// The task this coroutine frame runs in (itself for a task's root).
    TaskBase* task() noexcept { return is_task_ ? this : root_; }

    /// Put this task's next step on the loop's ready queue.
    void schedule_step();
    [[gnu::noinline]] void schedule_step_slow();
    /// Run one step: what the ready queue calls (a Callback::raw() entry
    /// whose context is the TaskBase).
    static void step_entry(void* storage);
    void step() { run_step(); }
    void run_step();
    [[gnu::always_inline]] inline void run_step_inline();
    /// Resume link_ until a coroutine parks the task or the root finishes.
    void trampoline() {
        while (link_ && !parked_) std::exchange(link_, nullptr).resume();
    }
    bool enter_step_slow();
    void run_timed_step(EventLoop* loop);
    void leave_step_slow();
    [[gnu::noinline]] void interrupt_wait();
    /// Called at the root coroutine's final suspend.
    void finish() noexcept;
    void finish_slow() noexcept;

    bool task_cancel(const std::string* msg);
    int uncancel() noexcept;

    /// In await_resume of every task-level awaiter: raise the pending CancelledError.
    void check_cancel() {
        if (throw_cancel_) raise_cancel();
    }
    /// Whether check_cancel() would raise.
    bool cancel_pending() const noexcept { return throw_cancel_; }
    [[noreturn]] void raise_cancel();
    /// Wake from a wait that cancel() interrupted: the awaiter will raise.
    void wake_cancelled(const std::string* msg);

    /// Suspend the running coroutine h of this task until woken.
    /// Must be the last thing an await_suspend does (nothing may throw after it).
    void suspend_on(std::coroutine_handle<> h, Waiter* w) noexcept {
        link_ = h;
        parked_ = true;
        waiter_ = w;
    }
    /// Wake a suspended task (the thing it waited on is done).
    void wake() {
        waiter_ = nullptr;
        schedule_step();
    }
    /// wake() one iteration later: where CPython's wake-up goes through an
    /// intermediate future's done callback (gather, wait, as_completed).
    /// Until then the task stays suspended on its waiter_, whose cancel()
    /// must refuse (the wait is over), so a cancel() sets must_cancel_.
    void wake_after_hop();

    std::string get_name() const;
    void set_name(std::string name);
};

/// How many futures have a FutureExtra now (for tests: nothing may leak).
std::size_t extra_table_size() noexcept;

/// A Future<T>'s state: how to destroy it is per value type. (A task is
/// destroyed through its coroutine frame, see FutureBase::frame_offset_.)
struct FutureStateBase : FutureBase {
    void (*destroy_)(FutureBase*) noexcept = nullptr;
};

/// Destroy a coroutine frame that another frame owned (a Coro awaited
/// inline). Like FutureBase::destroy(), destruction that happens while
/// another frame is being destroyed is queued and run by the outermost
/// one, so a long chain of frames owning each other is torn down with
/// constant stack.
void destroy_coroutine(std::coroutine_handle<> h) noexcept;

/// The task currently running on this thread's running loop (null if none).
TaskBase* current_task_base() noexcept;
/// This thread's running loop (null when none runs). Read inline on every
/// create_task()/Future(): constinit means no TLS wrapper call, and the
/// initial-exec model one %fs-relative load (the library is built with
/// -ftls-model=initial-exec too; see docs/building.md).
extern thread_local constinit EventLoop* t_running_loop [[gnu::tls_model("initial-exec")]];
[[noreturn]] void throw_no_running_loop();
/// This thread's running loop or RuntimeError("no running event loop").
inline EventLoop& running_loop() {
    if (!t_running_loop) [[unlikely]] throw_no_running_loop();
    return *t_running_loop;
}
inline EventLoop* running_loop_or_null() noexcept { return t_running_loop; }

/// Report a coroutine destroyed without ever running (debug mode).
void report_never_awaited() noexcept;
/// The same against a given loop (debug mode): to its exception handler when
/// it runs on this thread, else in the default handler's format on stderr.
void report_never_awaited(EventLoop& loop) noexcept;

}  // namespace asyncio::detail
