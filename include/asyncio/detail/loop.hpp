// Internal: the event loop class (public through <asyncio/events.hpp>).
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/detail/callback.hpp"
#include "asyncio/detail/core.hpp"
#include "asyncio/detail/timer_heap.hpp"
#include "asyncio/exceptions.hpp"

namespace asyncio {

template <class T> class Coro;
template <class T> class Task;
template <class T> class Future;
class Executor;     // threads.hpp
class SockAddr;     // sockets.hpp
class Socket;       // sockets.hpp
struct AddrInfo;    // sockets.hpp

namespace detail {
/// A lazy awaitable that converts to a Coro<value_type> (wait_for()'s
/// result): the functions that take a Coro take it too.
template <class C>
concept coro_convertible = requires { typename C::value_type; } &&
                           !std::is_same_v<C, Coro<typename C::value_type>> &&
                           std::is_convertible_v<C, Coro<typename C::value_type>>;
template <class C>
using coro_of_t = Coro<typename C::value_type>;
/// Something `co_await` accepts: an awaiter, or a type with operator co_await.
template <class Aw>
concept awaitable = requires(Aw&& a) { std::forward<Aw>(a).operator co_await().await_resume(); } ||
                    requires(Aw&& a) {
                        a.await_ready();
                        a.await_resume();
                    };
template <class T>
inline constexpr bool is_coro_object_v = false;
template <class T>
inline constexpr bool is_coro_object_v<Coro<T>> = true;
/// An awaitable that is not a Coro (the overloads taking a Coro<T> take those).
template <class Aw>
concept other_awaitable = !is_coro_object_v<Aw> && awaitable<Aw>;
/// Any awaitable as a Coro: a Coro itself, a lazy awaitable's own coroutine,
/// or a coroutine that awaits it (task_impl.hpp). Python's sleep(),
/// Queue.get(), Event.wait(), ... are coroutines; here they are awaiters,
/// and the functions that take a coroutine take them through this.
template <class Aw>
auto as_coro(Aw aw);

template <class Rep, class Period>
double to_seconds(std::chrono::duration<Rep, Period> d) {
    return std::chrono::duration<double>(d).count();
}
inline double to_seconds(double s) { return s; }

// Ready queue: a ring of callbacks addressed by absolute position, so that a
// Handle can cancel its entry in O(1) until it runs. Grows by doubling; never
// allocates in the steady state.
//
// The loop runs each callback in its slot (take_front(), run it, reset it),
// without moving it out. Two rules keep the slot valid while its callable
// runs and pushes more work: the ring grows one entry early, so a push never
// wraps onto the slot just taken; and a buffer replaced by grow() is kept
// until release_retired(), which the loop calls after each callback.
class ReadyQueue {
public:
    ReadyQueue();
    ~ReadyQueue();
    ReadyQueue(const ReadyQueue&) = delete;
    ReadyQueue& operator=(const ReadyQueue&) = delete;

    std::uint64_t push(Callback&& cb) { return emplace(std::move(cb)); }
    /// push(Callback(f)), built in its slot: no temporary to move (call_soon's
    /// path). If building it throws, nothing is pushed.
    template <class F>
    std::uint64_t emplace(F&& f) {
        if (full()) grow();
        std::uint64_t pos = tail_;
        ::new (static_cast<void*>(&buf_[pos & (cap_ - 1)])) Callback(std::forward<F>(f));
        tail_ = pos + 1;
        return pos;
    }
    /// The next push will grow the buffer (and may throw bad_alloc).
    bool full() const noexcept { return tail_ - head_ >= cap_ - 1; }
    /// push(Callback::bind<Fn>(ctx)) without the temporary.
    template <void (*Fn)(void*)>
    std::uint64_t push_bound(void* ctx) {
        if (full()) grow();
        std::uint64_t pos = tail_++;
        Callback::emplace_bound<Fn>(&buf_[pos & (cap_ - 1)], ctx);
        return pos;
    }
    /// push(Callback::raw(invoke, ctx)) if that needs no growth (cannot
    /// throw); false, and nothing pushed, if the ring is full. Inlined at
    /// a call whose slow path is a tail call, it needs no saved register.
    bool try_push_raw(void (*invoke)(void*), void* ctx) noexcept {
        if (full()) [[unlikely]]
            return false;
        Callback::emplace_raw(&buf_[tail_++ & (cap_ - 1)], invoke, ctx);
        return true;
    }
    /// The oldest entry, no longer pending (Handle::cancel() has no effect on
    /// it from now on). The caller runs it if it is set, then disposes of it.
    Callback& take_front() noexcept { return buf_[head_++ & (cap_ - 1)]; }
    std::uint64_t head_pos() const noexcept { return head_; }
    std::uint64_t tail_pos() const noexcept { return tail_; }
    /// Free the buffers grow() replaced (none may be in use by a running callback).
    void release_retired() noexcept {
        if (!retired_.empty()) release_retired_slow();
    }
    std::size_t size() const noexcept { return static_cast<std::size_t>(tail_ - head_); }
    bool empty() const noexcept { return head_ == tail_; }
    bool cancel(std::uint64_t pos) noexcept;
    bool pending(std::uint64_t pos) const noexcept;
    void clear() noexcept;

private:
    void grow();
    void release_retired_slow() noexcept;
    Callback* buf_ = nullptr;
    std::uint64_t cap_ = 0;
    std::uint64_t head_ = 0;
    std::uint64_t tail_ = 0;
    std::vector<void*> retired_;  // buffers replaced by grow(), freed by release_retired()
};

struct FdEntry;
struct FdCallback;
struct IoWaiter;
// A readiness callback a poll found due: run in the same iteration, after the
// ready-queue entries before position `pos`, if the entry's reader (or
// writer) generation is still `gen` (a callback removed or replaced since is
// skipped, as Python's cancelled Handle).
//
// A completion from the loop's io_uring is a run with e == nullptr: the op's
// complete(op, res, flags) is called, `read` telling whether it is the op's
// final completion.
struct UringOp;
struct IoRun {
    FdEntry* e;
    std::uint64_t pos;
    std::uint32_t gen;  // a completion: its flags
    bool read;          // a completion: final
    int res;            // a completion: its result
    UringOp* op;
};

/// A request armed on the loop's io_uring (internal, see src/uring.hpp): the
/// owner keeps it, and everything its completions touch, alive until a final
/// completion (`final` true) has been delivered to complete(). Linked into
/// the loop's list of live ops while armed.
struct UringOp {
    void (*complete)(UringOp* op, int res, unsigned flags, bool final) = nullptr;
    /// Optional: a final completion whose handling has no effect anyone can
    /// see before the next callback runs (a send that went out whole, with
    /// nothing behind it) may be handled at once by the poll step; true if
    /// it was (complete() is then not called).
    bool (*quick)(UringOp* op, int res) = nullptr;
    UringOp* prev = nullptr;
    UringOp* next = nullptr;
    int fd = -1;             // a receive's socket
    bool starved = false;    // ended by -ENOBUFS, waiting in the loop to be re-armed
    bool cancelled = false;  // uring_cancel() asked to end it (since it was last armed)
};
struct Uring;
}  // namespace detail

/// A callback scheduled by call_soon() (Python's asyncio.Handle).
///
/// A value handle: cancelled() reports cancel() calls made through this
/// object or its copies made after the call. It must not outlive its loop.
class Handle {
public:
    Handle() = default;
    /// Cancel the callback if it has not run yet; no effect otherwise.
    void cancel();
    bool cancelled() const noexcept { return cancelled_; }

private:
    friend class EventLoop;
    Handle(EventLoop* loop, std::uint64_t pos) : loop_(loop), pos_(pos) {}
    EventLoop* loop_ = nullptr;
    std::uint64_t pos_ = 0;
    bool cancelled_ = false;
};

/// A callback scheduled by call_later()/call_at() (asyncio.TimerHandle).
class TimerHandle {
public:
    TimerHandle() = default;
    /// Cancel the timer if it has not run yet; no effect otherwise.
    void cancel();
    /// Like cancel(); true if this call stopped a timer that had not run yet (an extension).
    bool try_cancel();
    bool cancelled() const noexcept { return cancelled_; }
    /// The scheduled time, in loop time (seconds, as EventLoop::time()).
    double when() const noexcept { return when_; }

private:
    friend class EventLoop;
    TimerHandle(EventLoop* loop, std::uint32_t slot, std::uint32_t gen, double when)
        : loop_(loop), slot_(slot), gen_(gen), when_(when) {}
    EventLoop* loop_ = nullptr;
    std::uint32_t slot_ = 0;
    std::uint32_t gen_ = 0;
    double when_ = 0;
    bool cancelled_ = false;
};

/// What the loop's exception handler receives (Python's context dict).
struct ExceptionContext {
    /// Python's wording, e.g. "Task exception was never retrieved".
    std::string message;
    /// The exception, may be null.
    std::exception_ptr exception;
    /// The task or future concerned, as Python prints it ("<Task ... name='Task-1'>"); may be empty.
    std::string task;
};

namespace detail {
/// How another thread reaches a loop that may be gone (an executor job that
/// outlives it, a cancel from a thread): post() is call_soon_threadsafe()
/// while the loop exists and is open, false otherwise. The loop's
/// destructor takes the lock, so a post never overlaps it.
struct LoopAnchor {
    std::mutex mu;
    EventLoop* loop = nullptr;
    bool open = true;  // cleared by close(), under mu
    bool post(Callback&& cb) noexcept;
};

/// Something another thread will post to the loop later (wrap_future's
/// bridge), listed by the loop so that close() can free it if that never
/// happens or its post is discarded (loop thread only).
struct BridgeLink {
    BridgeLink* prev = nullptr;
    BridgeLink* next = nullptr;
    void (*discard)(BridgeLink* self) noexcept = nullptr;
    void unlink() noexcept {
        if (!next) return;
        prev->next = next;
        next->prev = prev;
        prev = next = nullptr;
    }
};

/// What the default exception handler writes to stderr (also used for a
/// report with no loop left to handle it).
void write_exception_context(const ExceptionContext& ctx) noexcept;
}  // namespace detail

/// An awaitable that completes when a file descriptor is readable or writable.
///
/// Raises: CancelledError if the task is cancelled while waiting.
/// Cancellation: safe, nothing is consumed; the interest is withdrawn.
class FdReady;

/// Python's asyncio event loop: one per thread, epoll underneath (Linux only).
///
/// Thread: every member is loop-thread only except call_soon_threadsafe() and
/// time(), as in Python. In debug mode a scheduling call from another thread
/// raises RuntimeError.
class EventLoop {
public:
    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // ---- callbacks -------------------------------------------------------
    /// Schedule f() to run on the next iteration (FIFO).
    template <class F>
    Handle call_soon(F&& f) {
        check_callable_use();
        // What call_soon_threadsafe() queued before (from a thread, or before
        // the loop runs) goes first: one FIFO, as Python's _ready.
        drain_inbox();
        return Handle(this, ready_.emplace(std::forward<F>(f)));
    }
    /// Schedule f() after `delay` (seconds as double, or a std::chrono
    /// duration). A negative delay is kept, as in Python: when() is in the
    /// past and the timer fires before one armed with delay 0 (it is due at
    /// once either way). Raises ValueError for a NaN delay, as call_at().
    template <class D, class F>
    TimerHandle call_later(D delay, F&& f) {
        return call_at(time() + detail::to_seconds(delay), std::forward<F>(f));
    }
    /// Schedule f() at loop time `when` (as time()); equal times fire FIFO.
    template <class F>
    TimerHandle call_at(double when, F&& f) {
        check_callable_use();
        return add_timer(when, detail::Callback(std::forward<F>(f)));
    }
    /// Schedule f() from any thread; wakes the loop if it is waiting.
    ///
    /// Thread: safe from any thread. Raises RuntimeError once the loop is closed.
    template <class F>
    void call_soon_threadsafe(F&& f) {
        push_threadsafe(detail::Callback(std::forward<F>(f)));
    }
    /// Internal: this loop's anchor (see detail::LoopAnchor). Any thread.
    const std::shared_ptr<detail::LoopAnchor>& anchor() const noexcept { return anchor_; }
    /// Internal: list b until it unlinks itself; close() discards what is left.
    void link_bridge(detail::BridgeLink* b) noexcept {
        b->next = &bridges_;
        b->prev = bridges_.prev;
        bridges_.prev->next = b;
        bridges_.prev = b;
    }
    /// Monotonic time in seconds (Python's loop.time()).
    double time() const noexcept;

    // ---- running ---------------------------------------------------------
    /// Run until the coroutine, task or future is done; return its result or rethrow.
    template <class T> T run_until_complete(Coro<T> coro);
    template <class T> T run_until_complete(Task<T> task);
    template <class T> T run_until_complete(Future<T> fut);
    /// Any other awaitable (sleep(), a lazy awaitable, ...) runs in a coroutine.
    template <detail::other_awaitable Aw>
    auto run_until_complete(Aw aw) {
        return run_until_complete(detail::as_coro(std::move(aw)));
    }
    /// Run until stop() is called.
    void run_forever();
    /// Stop after the current iteration.
    void stop() noexcept { stopping_ = true; }
    /// Close the loop: pending callbacks are dropped. RuntimeError if running.
    void close();
    bool is_running() const noexcept { return running_; }
    bool is_closed() const noexcept { return closed_; }

    // ---- debug and errors ----------------------------------------------
    bool get_debug() const noexcept { return debug_; }
    void set_debug(bool enabled) noexcept { debug_ = enabled; }
    /// Python's loop.slow_callback_duration (seconds; default 0.1).
    double slow_callback_duration() const noexcept { return slow_callback_duration_; }
    void slow_callback_duration(double seconds) noexcept { slow_callback_duration_ = seconds; }
    void set_slow_callback_duration(double seconds) noexcept { slow_callback_duration_ = seconds; }

    using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;
    /// Install f as the handler for unhandled errors (nullptr: the default one).
    void set_exception_handler(ExceptionHandler f) { handler_ = std::move(f); }
    const ExceptionHandler& get_exception_handler() const noexcept { return handler_; }
    /// Route ctx to the installed handler, or the default one.
    void call_exception_handler(const ExceptionContext& ctx) noexcept;
    /// Write ctx to stderr (the default handler).
    void default_exception_handler(const ExceptionContext& ctx) noexcept;

    // ---- file descriptors --------------------------------------------
    /// Call f() whenever fd is readable (level-triggered), until remove_reader(fd).
    template <class F>
    void add_reader(int fd, F&& f) {
        set_fd_callback(fd, true, detail::Callback(std::forward<F>(f)));
    }
    /// Stop watching fd for reading; true if a reader was registered.
    bool remove_reader(int fd);
    template <class F>
    void add_writer(int fd, F&& f) {
        set_fd_callback(fd, false, detail::Callback(std::forward<F>(f)));
    }
    bool remove_writer(int fd);
    /// Drop everything the loop knows about fd; call it before closing fd (an
    /// extension). Interest is disarmed lazily, so without this a new
    /// descriptor reusing the number would inherit a stale registration.
    void forget_fd(int fd) noexcept;
    /// Drop the epoll interest nobody wants any more (internal).
    void disarm_fd(int fd) noexcept;

    // ---- io_uring receives (internal, for the socket transports) ---------
    /// Arm a multishot receive on fd into the loop's provided buffers;
    /// op->complete gets each chunk (uring_data()/uring_release()), then a
    /// final completion. False (nothing armed) when the loop has no usable
    /// io_uring: the caller reads through add_reader instead. The request is
    /// submitted by the next poll, so fd must stay open until then.
    bool uring_recv(int fd, detail::UringOp* op);
    /// Ask the kernel to end op's request; its final completion follows.
    void uring_cancel(detail::UringOp* op) noexcept;
    /// Queue a send of n bytes at data (which must stay valid and unchanged
    /// until op's completion, with the count sent or -errno) on the loop's
    /// io_uring; submitted by the next poll. False when the loop has no ring
    /// or the kernel keeps refusing submissions.
    bool uring_send(int fd, const char* data, std::size_t n, detail::UringOp* op);
    /// The bytes of a completion with res > 0, valid until uring_release().
    std::string_view uring_data(int res, unsigned flags) const noexcept;
    /// Give a completion's buffer back to the kernel.
    void uring_release(unsigned flags) noexcept;
    /// Stop using io_uring for new receives (a kernel without multishot receive).
    void uring_unsupported() noexcept;
    /// Whether this loop reads through io_uring (its ring exists).
    bool uring_active() const noexcept { return uring_in_use_; }
    /// Batched sends (an extension, off by default; also ASYNCIO_URING_SENDS=1):
    /// the socket transports of a loop that reads through io_uring queue
    /// their writes in the ring, and each poll step submits every send of
    /// the iteration with one system call, as Python's ProactorEventLoop
    /// does. write() then buffers the data until its completion instead of
    /// trying the socket first (get_write_buffer_size() counts it, and a
    /// write above the high-water mark pauses the protocol until then); see
    /// docs/transports.md. Takes effect for the next write of a transport
    /// that has nothing buffered.
    void set_uring_sends(bool on) noexcept { uring_sends_ = on; }
    bool get_uring_sends() const noexcept { return uring_sends_; }
    /// How many times a receive ran out of provided buffers and waited to be
    /// re-armed (a test and diagnostic counter).
    std::uint64_t uring_starvations() const noexcept { return uring_starvations_; }
    /// How many times the loop gave up its ring because it ran on another
    /// thread than the ring's (src/uring.hpp); for tests.
    std::uint64_t uring_retirements() const noexcept { return uring_retirements_; }
    /// co_await loop.wait_readable(fd): suspend until fd is readable (an extension).
    FdReady wait_readable(int fd);
    /// co_await loop.wait_writable(fd): suspend until fd is writable (an extension).
    FdReady wait_writable(int fd);

    // ---- signals ---------------------------------------------------------
    /// Call f() on the loop whenever signal `sig` arrives (Python's
    /// loop.add_signal_handler). Replaces an earlier handler for sig.
    /// Raises: ValueError for a signal number outside Python's
    /// signal.valid_signals() (0, 32, 33, >= NSIG, ...); RuntimeError for
    /// SIGKILL/SIGSTOP, a closed loop, or when another loop handles signals.
    /// Unix only; main-thread use, as in Python. f is a plain callback: a
    /// coroutine function does not compile (Python raises TypeError).
    template <class F>
    void add_signal_handler(int sig, F&& f) {
        static_assert(!detail::is_coro_object_v<std::invoke_result_t<std::decay_t<F>&>>,
                      "add_signal_handler takes a plain callback, not a coroutine function "
                      "(Python: TypeError); call create_task() from the callback instead");
        set_signal_handler(sig, detail::Callback(std::forward<F>(f)));
    }
    /// Remove the handler for sig and restore the default action; true if
    /// one was set (false on a closed loop, which has none). Raises
    /// ValueError for an invalid signal number.
    bool remove_signal_handler(int sig);

    // ---- tasks and futures ---------------------------------------------
    /// Schedule the coroutine as a Task (Python's loop.create_task).
    template <class T> Task<T> create_task(Coro<T> coro);
    template <class T> Task<T> create_task(Coro<T> coro, std::string name);
    /// Any other awaitable (sleep(), a lazy awaitable, ...) runs in a coroutine.
    template <detail::other_awaitable Aw, class... Name>
    auto create_task(Aw aw, Name... name) {  // (aw) or (aw, name)
        return create_task(detail::as_coro(std::move(aw)), std::move(name)...);
    }
    /// A new pending Future bound to this loop.
    template <class T = void> Future<T> create_future();

    // ---- threads and sockets: BEGIN (defined in threads.hpp, src/threads.cpp, src/sockets.cpp) ----
    // Python's loop.run_in_executor, getaddrinfo, getnameinfo and sock_*;
    // include <asyncio/threads.hpp> / <asyncio/sockets.hpp> to use them.

    /// Run f(args...) in `executor` (nullptr: the default thread pool) and
    /// return an asyncio Future for its result (loop.run_in_executor).
    ///
    /// Cancellation: cancelling the Future cancels the call if it has not
    ///   started; a running call finishes on its thread and its result is dropped.
    template <class F, class... A>
    auto run_in_executor(Executor* executor, F&& f, A&&... args);
    /// The default executor: a ThreadPoolExecutor created on first use, shut
    /// down (waiting for its threads) when the loop closes.
    /// Raises: RuntimeError once shut down (shutdown_default_executor() or close()).
    Executor& default_executor();
    /// loop.set_default_executor(executor): use it instead of a new pool (shut down at close).
    void set_default_executor(std::shared_ptr<Executor> executor);
    /// loop.shutdown_default_executor(): wait (without blocking the loop) until
    /// the default executor's work is done and its threads have ended.
    Coro<void> shutdown_default_executor();

    /// loop.getaddrinfo(host, port, family, type, proto, flags), run on the
    /// default executor so the loop never blocks. An empty host is Python's None.
    /// Raises: gaierror (e.g. "getaddrinfo nonexistent.invalid: Name or service not known").
    /// Cancellation: safe; the lookup may finish on its thread, its result is dropped.
    Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, int port, int family = 0, int type = 0,
                                            int proto = 0, int flags = 0);
    /// The same with a service name or numeric string as port ("http", "8080"; "" for none).
    Coro<std::vector<AddrInfo>> getaddrinfo(std::string host, std::string port, int family = 0, int type = 0,
                                            int proto = 0, int flags = 0);
    /// loop.getnameinfo(sockaddr, flags) → {host, service}, on the default executor.
    /// Raises: gaierror. Cancellation: safe, as getaddrinfo.
    Coro<std::pair<std::string, std::string>> getnameinfo(SockAddr addr, int flags = 0);

    /// loop.sock_connect(sock, address): connect the non-blocking socket fd.
    /// Raises: OSError subclasses, e.g. ConnectionRefusedError("connect 127.0.0.1:8080: Connection refused").
    /// Cancellation: the connection attempt is abandoned; fd stays open (its owner closes it).
    Coro<void> sock_connect(int fd, SockAddr addr);
    /// loop.sock_accept(sock) → {connection (non-blocking, close-on-exec), peer address}.
    /// Raises: OSError. Cancellation: safe, no connection is taken from the backlog.
    Coro<std::pair<Socket, SockAddr>> sock_accept(int fd);
    /// loop.sock_recv(sock, nbytes): up to nbytes; "" at EOF.
    /// Raises: OSError (ConnectionResetError...). Cancellation: safe, nothing is consumed.
    Coro<std::string> sock_recv(int fd, std::size_t nbytes);
    /// loop.sock_recv_into(sock, buf) → bytes received (0 at EOF). buf must outlive the co_await.
    /// Raises: OSError. Cancellation: safe, nothing is consumed.
    Coro<std::size_t> sock_recv_into(int fd, std::span<std::byte> buf);
    Coro<std::size_t> sock_recv_into(int fd, std::span<char> buf);
    /// loop.sock_sendall(sock, data): send all of data (which must outlive the co_await).
    /// Raises: OSError (BrokenPipeError, ConnectionResetError...).
    /// Cancellation: stops between sends; a prefix of data may have been sent
    ///   (as in Python, how much is not reported); nothing beyond it is.
    Coro<void> sock_sendall(int fd, std::string_view data);
    Coro<void> sock_sendall(int fd, std::span<const std::byte> data);
    /// loop.sock_recvfrom(sock, bufsize) → {datagram, sender}.
    /// Raises: OSError. Cancellation: safe, no datagram is consumed.
    Coro<std::pair<std::string, SockAddr>> sock_recvfrom(int fd, std::size_t bufsize);
    /// loop.sock_sendto(sock, data, address) → bytes sent.
    /// Raises: OSError. Cancellation: safe; the datagram was either sent whole or not at all.
    Coro<std::size_t> sock_sendto(int fd, std::string_view data, SockAddr addr);

    // internal: the default executor (created lazily by default_executor()).
    std::shared_ptr<Executor> default_executor_;
    std::vector<std::shared_ptr<Executor>> retired_executors_;  // replaced by set_default_executor(), shut down at close
    bool default_executor_shutdown_ = false;
    // ---- threads and sockets: END ----

    // ---- internals used by the library's own templates ------------------
    /// A process-wide number, never reused: a loop built where a closed one
    /// lived is still another loop (the primitives' loop binding uses it).
    std::uint64_t serial() const noexcept { return serial_; }
    void push_ready(detail::Callback&& cb) { ready_.push(std::move(cb)); }
    template <void (*Fn)(void*)>
    std::uint64_t push_ready_bound(void* ctx) {
        return ready_.push_bound<Fn>(ctx);
    }
    /// call_at(when, Callback::bind<Fn>(ctx)) for a caller on the running
    /// loop (a task: the loop is open, no thread check), with no TimerHandle:
    /// the result (slot | gen << 32) is what cancel_timer() takes.
    /// Raises: ValueError if `when` is NaN.
    template <void (*Fn)(void*)>
    std::uint64_t add_timer_bound(double when, void* ctx) {
        std::uint32_t slot = claim_timer_slot(when);
        TimerSlot& s = slots_[slot];
        s.cb().template assign_bound<Fn>(ctx);
        return slot | std::uint64_t{s.gen} << 32;
    }
    bool try_push_ready_raw(void (*invoke)(void*), void* ctx) noexcept { return ready_.try_push_raw(invoke, ctx); }
    bool ready_queue_full() const noexcept { return ready_.full(); }
    void register_future(detail::FutureBase* f) noexcept { f->link_before(&registry_); }
    void unregister_future(detail::FutureBase* f) noexcept {
        if (f->linked()) f->unlink();
    }
    detail::TaskBase* current_task_base() const noexcept { return current_task_; }
    void set_current_task(detail::TaskBase* t) noexcept { current_task_ = t; }
    bool cancel_timer(std::uint32_t slot, std::uint32_t gen) noexcept;
    /// cancel_timer() for an id from add_timer_bound().
    bool cancel_timer(std::uint64_t id) noexcept {
        return cancel_timer(static_cast<std::uint32_t>(id), static_cast<std::uint32_t>(id >> 32));
    }
    bool cancel_ready(std::uint64_t pos) noexcept { return ready_.cancel(pos); }
    /// Debug mode: RuntimeError if called from a thread other than the running loop's.
    void check_thread() const;
    /// call_soon/call_at: RuntimeError on a closed loop; in debug mode, from another thread.
    void check_callable_use() const {
        if (debug_ || closed_) [[unlikely]] check_callable_use_slow();
    }
    [[gnu::noinline]] void check_callable_use_slow() const;
    template <class T> void refuse_task_if_unusable(Coro<T>& coro);
    std::vector<detail::TaskBase*> pending_tasks() const;
    void attach_io_waiter(detail::IoWaiter* w);
    bool detach_io_waiter(detail::IoWaiter* w) noexcept;
    /// Number of live timers (not cancelled), ready callbacks and watched fds.
    std::size_t live_timer_count() const noexcept { return live_timers_; }
    /// Entries in the timer heap, cancelled ones not yet removed included (tests).
    std::size_t timer_heap_size() const noexcept { return heap_.size(); }
    std::size_t ready_count() const noexcept { return ready_.size(); }
    /// The sequence number the next timer gets (tests: timers are renumbered before it wraps at 2^32).
    void set_next_timer_seq(std::uint64_t seq) noexcept { timer_seq_ = seq; }
    std::size_t watched_fd_count() const noexcept;
    void note_slow_step(detail::TaskBase* t, double seconds) noexcept;
    /// Run f when the loop closes (the default executor registers its shutdown here).
    void add_close_hook(std::function<void()> f) { close_hooks_.push_back(std::move(f)); }
    /// asyncio.run()'s shutdown: cancel every pending task, run until they are done.
    void cancel_all_tasks();

private:
    friend class Handle;
    friend class TimerHandle;
    friend struct detail::LoopAnchor;
    TimerHandle add_timer(double when, detail::Callback&& cb);
    /// A free timer slot, armed (its entry pushed on the heap) with an empty
    /// callback the caller sets; nothing runs in between.
    /// Raises: ValueError if `when` is NaN; bad_alloc (nothing changed).
    [[gnu::always_inline]] std::uint32_t claim_timer_slot(double when) {
        if (std::isnan(when) || timer_seq_ > 0xffffffffu || heap_.full() || free_slots_.empty()) [[unlikely]]
            prepare_timer_slot(when);
        std::uint32_t slot = free_slots_.take();
        slots_[slot].state = 1;
        heap_.push(detail::TimerEntry{detail::deadline_key(when), timer_seq_++ << 32 | slot});
        ++live_timers_;
        return slot;
    }
    /// claim_timer_slot()'s rare cases: a NaN deadline, the sequence about
    /// to wrap, a full heap, no free slot. Nothing below it throws.
    void prepare_timer_slot(double when);
    void push_threadsafe(detail::Callback&& cb);
    void set_fd_callback(int fd, bool read, detail::Callback&& cb);
    void update_interest(int fd, detail::FdEntry& e);
    void disarm_now(int fd, detail::FdEntry& e);
    void set_signal_handler(int sig, detail::Callback&& cb);
    void release_signal_pipe_if_unused() noexcept;
    void dispatch_signals();
    inline void run_once();  // defined in events.cpp, inlined into run_forever()
    [[gnu::noinline]] void drop_cancelled_tops() noexcept;
    void poll_io(int timeout_ms);
    detail::IoRun* collect_epoll(int timeout_ms, detail::IoRun* out);
    void poll_uring(int timeout_ms);
    void run_completion(const detail::IoRun& r) noexcept;
    detail::IoRun* rearm_starved(detail::IoRun* out);
    void open_uring() noexcept;
    /// Python's _check_closed() and _check_running(): RuntimeError unless this loop can run here.
    void check_can_run() const;
    void close_uring() noexcept;
    // A loop run on another thread than its DEFER_TASKRUN ring's: retire the
    // ring (src/uring.cpp); run_forever() calls the first.
    void adopt_uring_thread() noexcept;
    void retire_uring() noexcept;
    inline void run_io(const detail::IoRun& r);  // defined in events.cpp, inlined into run_forever()
    inline void run_ready_until(std::uint64_t stop);  // likewise
    inline void run_callback(detail::Callback& cb);  // likewise
    void run_timed(detail::Callback& cb);
    void report_callback_error() noexcept;
    void process_timers(double now);
    bool timers_surely_not_due() const noexcept;
    void drain_inbox() {
        if (inbox_nonempty_.load(std::memory_order_acquire)) [[unlikely]] drain_inbox_slow();
    }
    void drain_inbox_slow();
    [[gnu::noinline]] detail::IoRun* dispatch_fd_slow(std::uint32_t events, detail::FdEntry& e, detail::IoRun* out);
    void run_timer_slot(std::uint32_t slot);
    [[gnu::noinline]] void cancel_in_heap(std::uint32_t slot) noexcept;  // cancel_timer()'s entry that is not a leaf
    void rebuild_heap();
    void renumber_timers();
    void free_timer_slot(std::uint32_t slot) noexcept {
        TimerSlot& s = slots_[slot];
        s.state = 0;
        ++s.gen;
        free_slots_.add(slot);
    }
    void teardown_tasks() noexcept;

    // One cache line: gen and state sit in the Callback's tail padding.
    struct alignas(64) TimerSlot : detail::Callback {
        detail::Callback& cb() noexcept { return *this; }
        std::uint32_t gen = 0;
        std::uint8_t state = 0;  // 0 free, 1 armed, 2 cancelled (still in the heap), 3 expired (in ready)
    };

    detail::ReadyQueue ready_;
    std::shared_ptr<detail::LoopAnchor> anchor_;
    detail::BridgeLink bridges_;  // sentinel of the link_bridge() list
    std::uint64_t serial_;  // see serial()
    // The readiness callbacks collected by this iteration's poll (at most
    // two per event, and room for run_once()'s sentinel), run in event order.
    static constexpr std::size_t kMaxPollEvents = 128;
    // io_uring receives re-armed per poll step after running out of buffers
    // (src/uring.hpp); a run each at most.
    static constexpr std::size_t kMaxStarvedRearms = 64;
    std::unique_ptr<detail::IoRun[]> io_runs_;
    std::uint32_t io_count_ = 0;
    // Timer heap ordered by (deadline, seq): equal deadlines fire FIFO.
    // Cancelled entries stay until they reach the top (lazy removal), or the
    // heap is rebuilt when they are the majority; live_timers_ counts the
    // entries not cancelled.
    detail::TimerHeap heap_;
    detail::Slab<TimerSlot> slots_;
    detail::FreeSlots free_slots_;
    std::vector<std::uint32_t> due_;  // process_timers' batch of expired slots
    std::uint64_t timer_seq_ = 0;
    std::size_t live_timers_ = 0;
    std::size_t cancelled_in_heap_ = 0;

    std::vector<std::unique_ptr<detail::FdEntry>> fds_;
    std::size_t watched_fds_ = 0;
    std::unique_ptr<detail::Uring> uring_;
    std::uint32_t uring_live_ = 0;   // ops armed (the poll must look at the ring)
    std::uint64_t uring_starvations_ = 0;
    std::uint64_t uring_retirements_ = 0;
    bool uring_sends_ = false;  // set_uring_sends(); the constructor reads ASYNCIO_URING_SENDS
    std::uint8_t uring_state_ = 0;   // 1 in use, 2 not available (or no new receives), 3 created, idle
    bool uring_in_use_ = false;      // the poll step goes through the ring
    bool epoll_hot_ = true;          // epoll may have events the ring's poll will not report again
    int epfd_ = -1;
    int wakefd_ = -1;

    std::mutex inbox_mu_;
    std::vector<detail::Callback> inbox_;
    std::atomic<bool> inbox_nonempty_{false};
    std::atomic<bool> wake_pending_{false};
    std::atomic<bool> closed_flag_{false};

    detail::RegLink registry_{&registry_, &registry_};  // live futures and tasks (sentinel)
    detail::TaskBase* current_task_ = nullptr;
    std::atomic<std::thread::id> thread_id_{};
    ExceptionHandler handler_;
    std::vector<std::function<void()>> close_hooks_;
    std::vector<std::shared_ptr<detail::FdCallback>> signal_handlers_;  // by signal number
    int sigpipe_[2] = {-1, -1};
    double slow_callback_duration_ = 0.1;
    double coarse_resolution_ = 1e9;  // CLOCK_MONOTONIC_COARSE's (unusable: timers_surely_not_due() never is)
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    bool debug_ = false;
    bool slow_reported_ = false;
};

/// The running loop of this thread. Raises RuntimeError("no running event loop").
EventLoop& get_running_loop();
/// A new event loop (Python's asyncio.new_event_loop()).
std::unique_ptr<EventLoop> new_event_loop();

namespace detail {
struct IoWaiter : Waiter {
    TaskBase* task = nullptr;
    EventLoop* loop = nullptr;
    int fd = -1;
    bool read = true;
    bool attached = false;
    static bool on_cancel(Waiter* w, TaskBase* t, const std::string* msg);
};
}  // namespace detail

class FdReady {
public:
    FdReady(EventLoop* loop, int fd, bool read) {
        w_.loop = loop;
        w_.fd = fd;
        w_.read = read;
        w_.cancel = &detail::IoWaiter::on_cancel;
    }
    FdReady(const FdReady&) = delete;
    FdReady& operator=(const FdReady&) = delete;
    FdReady(FdReady&& o) noexcept : w_(o.w_) { o.w_.attached = false; }
    ~FdReady() {
        // A frame destroyed after its loop (a handle kept past the loop's
        // end) must not touch it: the loop clears its tasks' loop_ first.
        if (w_.attached && w_.task && w_.task->loop_) w_.loop->detach_io_waiter(&w_);
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        w_.task = h.promise().task();
        w_.loop->attach_io_waiter(&w_);
        w_.task->suspend_on(h, &w_);
    }
    void await_resume() { w_.task->check_cancel(); }

private:
    detail::IoWaiter w_;
};

inline FdReady EventLoop::wait_readable(int fd) { return FdReady(this, fd, true); }
inline FdReady EventLoop::wait_writable(int fd) { return FdReady(this, fd, false); }

namespace detail {
inline void TaskBase::schedule_step() {
    step_scheduled_ = true;
    if (!loop_->try_push_ready_raw(&TaskBase::step_entry, this)) [[unlikely]]
        schedule_step_slow();  // grows the queue (may throw bad_alloc)
}
}  // namespace detail

}  // namespace asyncio

