// Mirrors Python's asyncio.streams: StreamReader, StreamWriter, open_connection,
// start_server and their Unix-socket twins.
#pragma once

#include <algorithm>
#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncio/events.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/tasks.hpp"
#include "asyncio/transports.hpp"

namespace asyncio {

/// The default buffer limit of stream readers: 64 KiB (Python's _DEFAULT_LIMIT).
inline constexpr std::size_t kDefaultLimit = 64 * 1024;

namespace detail {
struct DataWaitBase;
struct StreamProtocol;

/// An owning handle to a loop-thread object with a plain (non-atomic)
/// count in its `refs` member, as Task handles: stream handles are copied
/// and dropped on their loop's thread, and every read(n) and drain() copies one.
template <class T>
class LoopRef {
public:
    LoopRef() noexcept = default;
    explicit LoopRef(T* p) noexcept : p_(p) { ++p_->refs; }
    LoopRef(const LoopRef& o) noexcept : p_(o.p_) {
        if (p_) ++p_->refs;
    }
    LoopRef(LoopRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    LoopRef& operator=(LoopRef o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~LoopRef() {
        if (p_ && --p_->refs == 0) delete p_;
    }
    T* get() const noexcept { return p_; }
    T* operator->() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};
template <class T, class... A>
LoopRef<T> make_loop_ref(A&&... a) {
    return LoopRef<T>(new T(std::forward<A>(a)...));
}
struct ReaderState;
struct WriterState;
using ReaderRef = LoopRef<ReaderState>;
using WriterRef = LoopRef<WriterState>;

/// A reader's state (loop thread only): the buffer [head, tail) in one
/// malloc'd block the transport receives into directly, EOF, the error, and
/// at most one waiting task. Here so the hot paths of read() inline.
struct ReaderState {
    std::uint32_t refs = 0;  // the ReaderRef handles
    EventLoop* loop;
    std::size_t limit;
    char* buf = nullptr;
    std::size_t cap = 0, head = 0, tail = 0;
    bool eof = false;
    bool paused = false;
    std::exception_ptr exc;
    Transport* transport = nullptr;
    DataWaitBase* waiter = nullptr;
    // The waiting read(n)'s result, while its buffer is empty: a chunk
    // received through io_uring goes there directly (take_direct()), one
    // copy fewer. Cleared whenever the waiter leaves.
    std::string* direct = nullptr;
    std::size_t direct_max = 0;

    ReaderState(EventLoop* l, std::size_t lim);
    ~ReaderState();
    ReaderState(const ReaderState&) = delete;
    ReaderState& operator=(const ReaderState&) = delete;

    std::size_t size() const noexcept { return tail - head; }
    std::string_view view() const noexcept { return {buf + head, tail - head}; }
    std::string take(std::size_t n) {
        std::string out(buf + head, n);
        consume(n);
        return out;
    }
    void consume(std::size_t n) noexcept {
        head += n;
        if (head == tail) head = tail = 0;
    }
    void clear() noexcept { head = tail = 0; }
    /// A received chunk as the waiting read's result, if one waits for at
    /// most d.size() bytes on an empty buffer.
    bool take_direct(std::string_view d) {
        if (!direct || d.size() > direct_max || tail != head) return false;
        *direct = std::string(d.data(), d.size());  // (construct + move: cheaper than assign())
        wakeup();
        return true;
    }
    /// Put bytes back in front of the buffer (a read cancelled after its
    /// data came directly: nothing is lost).
    void unread(std::string_view d);
    /// read(n)'s result: up to n buffered bytes, taken (one return object, so no copy of it).
    std::string read_up_to(std::size_t n) {
        std::size_t k = std::min(n, size());
        std::string out(buf + head, k);
        consume(k);
        maybe_resume_transport();
        return out;
    }
    /// Free space at the tail of at least `want` bytes.
    void reserve(std::size_t want) {
        if (cap - tail < want) grow(want);
    }
    void grow(std::size_t want);
    void wakeup();  // the waiting task, if any
    void data_added() {
        wakeup();
        if (transport && !paused && size() > 2 * limit) pause_transport();
    }
    void pause_transport();
    /// Resume a paused transport once the buffer is down to the limit (Python).
    void maybe_resume_transport() {
        if (paused && size() <= limit) resume_transport();
    }
    void resume_transport();
    void feed_eof() {
        eof = true;
        wakeup();
    }
    void set_exception(std::exception_ptr e) {
        exc = std::move(e);
        wakeup();
    }
    void check_exc() const {
        if (exc) [[unlikely]] std::rethrow_exception(exc);
    }
};

/// A task waiting for a reader's data (at most one per reader).
struct DataWaitBase : Waiter {
    ReaderState* s = nullptr;
    TaskBase* t = nullptr;
};

inline void ReaderState::wakeup() {
    direct = nullptr;
    if (DataWaitBase* w = waiter) {
        waiter = nullptr;
        w->t->wake();
    }
}

/// The cancellation of a data wait: the registration is withdrawn, the buffer untouched.
bool on_data_wait_cancel(Waiter* w, TaskBase* task, const std::string* msg);

/// Suspend `task` (at `h`) on reader `s` until data, EOF or an error
/// (RuntimeError when another task already waits: `fn` names the call).
void wait_for_data(DataWaitBase* w, ReaderState* s, TaskBase* task, std::coroutine_handle<> h, const char* fn);

Coro<std::string> stream_read(ReaderRef s, std::ptrdiff_t n);

/// The awaiter of `co_await reader.read(n)`, in the awaiting task's frame:
/// buffered data is taken at once; otherwise the task itself waits on the
/// reader, with no coroutine frame. read() to EOF (n < 0) runs the coroutine.
/// It borrows the reader from the StreamRead it was made from, which
/// outlives it (the operand of co_await lives to the end of the expression).
class ReadAwaiter : public DataWaitBase {
public:
    ReadAwaiter(const ReaderRef& reader, std::ptrdiff_t n) : n_(n) {
        s = reader.get();
        if (n < 0) slow_.adopt(stream_read(reader, n).release());  // read to EOF: the coroutine
    }
    ReadAwaiter(const ReadAwaiter&) = delete;
    ~ReadAwaiter() {
        if (s->waiter == this) {  // destroyed while waiting (its task was)
            s->waiter = nullptr;
            s->direct = nullptr;
        }
        if (!direct_.empty()) [[unlikely]]
            put_back();  // destroyed between its wake-up and its resumption
    }
    bool await_ready() {
        if (slow_) return false;
        s->check_exc();
        return n_ == 0 || s->size() != 0 || s->eof;
    }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        if (slow_)
            slow_.await_suspend(h);
        else
            wait(h.promise().task(), h);
    }
    [[gnu::always_inline]] std::string await_resume() {
        if (slow_) [[unlikely]]
            return slow_.await_resume();
        if (t) {  // woken: a pending cancellation, then the reader's error
            if (!direct_.empty()) return take_direct_result();
            t->check_cancel();
            s->check_exc();
        }
        if (n_ == 0) return std::string();
        return s->read_up_to(static_cast<std::size_t>(n_));
    }

private:
    void wait(TaskBase* task, std::coroutine_handle<> h) {
        if (s->waiter || s->paused) [[unlikely]]
            return wait_for_data(this, s, task, h, "read");
        t = task;
        cancel = &on_data_wait_cancel;
        s->waiter = this;
        s->direct = &direct_;
        s->direct_max = static_cast<std::size_t>(n_);
        task->suspend_on(h, this);
    }
    // Data that came straight into direct_ is the result (as Python, which
    // checks the error before waiting, not after); a cancellation that
    // came after it puts the data back first.
    std::string take_direct_result() {
        if (t->cancel_pending()) [[unlikely]] {
            put_back();
            t->check_cancel();
        }
        return std::move(direct_);
    }
    void put_back() noexcept;
    std::ptrdiff_t n_;
    CoroAwaiter<std::string> slow_;
    std::string direct_;
};

/// What StreamReader::read() returns: a lazy awaitable (nothing happens
/// until it is awaited, as with Python's coroutine) giving std::string. It
/// converts to a Coro<std::string> where a Coro is needed (create_task,
/// wait_for, gather, ...). Await it once, as an rvalue.
class [[nodiscard]] StreamRead {
public:
    using value_type = std::string;
    StreamRead(ReaderRef s, std::ptrdiff_t n) noexcept : s_(std::move(s)), n_(n) {}
    StreamRead(StreamRead&& o) noexcept : s_(std::move(o.s_)), n_(o.n_), awaited_(o.awaited_) {}
    StreamRead(const StreamRead&) = delete;
    StreamRead& operator=(const StreamRead&) = delete;
    ~StreamRead() {
        if (s_ && !awaited_) report_never_awaited();
    }
    ReadAwaiter operator co_await() && {
        awaited_ = true;
        return ReadAwaiter(s_, n_);
    }
    operator Coro<std::string>() && {  // NOLINT(google-explicit-constructor)
        return stream_read(std::move(s_), n_);
    }

private:
    ReaderRef s_;
    std::ptrdiff_t n_;
    bool awaited_ = false;
};

/// Write flow control, set by the protocol (Python's FlowControlMixin state).
struct WriteFlow {
    bool paused_writing = false;
    bool lost = false;
};

/// A writer's state: the last StreamWriter handle closes the transport.
struct WriterState {
    std::shared_ptr<Transport> transport;
    std::shared_ptr<StreamProtocol> protocol;
    ReaderRef reader;
    WriteFlow* flow;  // the protocol's
    std::uint32_t refs = 0;  // the WriterRef handles
    WriterState(std::shared_ptr<Transport> t, std::shared_ptr<StreamProtocol> p, ReaderRef r);
    ~WriterState();
    WriterState(const WriterState&) = delete;
    WriterState& operator=(const WriterState&) = delete;
};

Coro<> stream_drain(WriterRef w);

/// The awaiter of `co_await writer.drain()`: when there is nothing to wait
/// for (the common case) it completes without suspending and with no
/// coroutine frame; otherwise it runs the drain coroutine. Borrows the
/// writer from its StreamDrain, as ReadAwaiter does.
class DrainAwaiter {
public:
    explicit DrainAwaiter(const WriterRef& w) noexcept : w_(&w) {}
    bool await_ready() {
        // Python's drain() up to _drain_helper's wait: nothing to wait for
        // when there is no error, no close and no pause.
        const WriterState& w = **w_;
        if (!w.reader->exc && !w.flow->lost && !w.flow->paused_writing && !w.transport->is_closing()) [[likely]]
            return true;
        return ready_slow();
    }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
        slow_.await_suspend(h);
    }
    void await_resume() {
        if (slow_) slow_.await_resume();
    }

private:
    bool ready_slow();
    const WriterRef* w_;
    CoroAwaiter<void> slow_;
};

/// What StreamWriter::drain() returns: a lazy awaitable, converting to a
/// Coro<> like StreamRead.
class [[nodiscard]] StreamDrain {
public:
    using value_type = void;
    explicit StreamDrain(WriterRef w) noexcept : w_(std::move(w)) {}
    StreamDrain(StreamDrain&& o) noexcept : w_(std::move(o.w_)), awaited_(o.awaited_) {}
    StreamDrain(const StreamDrain&) = delete;
    StreamDrain& operator=(const StreamDrain&) = delete;
    ~StreamDrain() {
        if (w_ && !awaited_) report_never_awaited();
    }
    DrainAwaiter operator co_await() && {
        awaited_ = true;
        return DrainAwaiter(w_);
    }
    operator Coro<>() && { return stream_drain(std::move(w_)); }  // NOLINT(google-explicit-constructor)

private:
    WriterRef w_;
    bool awaited_ = false;
};
}  // namespace detail

/// Python's asyncio.StreamReader: buffered reading from a connection.
///
/// A copyable handle: copies share one buffer (copy and drop them on the
/// loop's thread only, as Task handles). Only one task may wait for
/// data at a time (RuntimeError otherwise, as in Python). Every read is
/// cancel-safe: bytes are taken from the buffer only once the whole read can
/// complete, so a cancelled read loses nothing.
class StreamReader {
public:
    /// A reader not attached to any connection, fed with feed_data()/feed_eof()
    /// (Python's StreamReader(limit)). Needs a running loop.
    explicit StreamReader(std::size_t limit = kDefaultLimit);

    /// Read up to n bytes; with no argument (or n < 0) read until EOF. Gives ""
    /// at EOF (or when n == 0).
    ///
    /// Returns a lazy awaitable (`co_await reader.read(n)`) that converts to
    /// a Coro<std::string>; awaited directly, it needs no coroutine frame.
    ///
    /// Raises: the connection's error (e.g. ConnectionResetError) if it was lost.
    /// Cancellation: safe, nothing is consumed.
    detail::StreamRead read(std::ptrdiff_t n = -1) { return detail::StreamRead(s_, n); }
    /// Read one line ending in "\n" (included); the partial line at EOF; "" at EOF.
    ///
    /// Raises: ValueError when the line exceeds the limit (the buffer is then
    ///   discarded up to and including the separator, or entirely).
    /// Cancellation: safe, nothing is consumed.
    Coro<std::string> readline();
    /// Read exactly n bytes.
    ///
    /// Raises: IncompleteReadError (with .partial, .expected = n) on EOF first.
    /// Cancellation: safe, nothing is consumed.
    Coro<std::string> readexactly(std::size_t n);
    /// Read up to and including `separator`.
    ///
    /// Raises: IncompleteReadError (expected empty) on EOF before the
    ///   separator, the buffer being returned in .partial and cleared;
    ///   LimitOverrunError (data left in the buffer) when the limit is reached;
    ///   ValueError for an empty separator.
    /// Cancellation: safe, nothing is consumed.
    Coro<std::string> readuntil(std::string_view separator = "\n");
    /// Read up to the first of several separators (Python 3.13's tuple form):
    /// the match that ends first wins. Same errors as readuntil(separator).
    Coro<std::string> readuntil(std::vector<std::string> separators);
    /// True once EOF was fed and the buffer is empty.
    bool at_eof() const;

    /// Append data to the buffer and wake a waiting reader (Python's feed_data).
    void feed_data(std::string_view data);
    void feed_eof();
    /// The error reads will raise, or null.
    std::exception_ptr exception() const;
    void set_exception(std::exception_ptr exc);

    // internal
    explicit StreamReader(detail::ReaderRef s) : s_(std::move(s)) {}

private:
    detail::ReaderRef s_;
};

/// Python's asyncio.StreamWriter: writing to a connection, with flow control.
///
/// A copyable handle: copies share one connection (copy and drop them on the
/// loop's thread only). When the last handle is
/// dropped the transport is closed (Python 3.12 closes it in __del__ too,
/// with a ResourceWarning).
class StreamWriter {
public:
    /// Write data without blocking (buffered past what the socket takes);
    /// follow with drain(). After close() the data is dropped, as Python does.
    /// Raises: RuntimeError after write_eof().
    void write(std::string_view data) { s_->transport->write(data); }
    void write(std::span<const std::byte> data) { s_->transport->write(data); }
    template <class Range>
    void writelines(const Range& pieces) {
        for (const auto& p : pieces) write(std::string_view(p));
    }
    /// Wait until the write buffer is under the low-water mark (instant when
    /// it is under the high-water mark). Returns a lazy awaitable that
    /// converts to a Coro<>; awaited directly with nothing to wait for, it
    /// completes without a coroutine frame.
    ///
    /// Raises: the connection's error if it was lost (ConnectionResetError,
    ///   BrokenPipeError), ConnectionResetError("Connection lost") after close.
    /// Cancellation: safe; buffered data stays buffered and is still sent.
    detail::StreamDrain drain() { return detail::StreamDrain(s_); }
    bool can_write_eof() const;
    /// Shut down the write side after the buffer is flushed.
    void write_eof();
    /// Close the connection (buffered data is flushed first).
    void close();
    bool is_closing() const;
    /// Wait until the connection is closed.
    /// Raises: the error the connection was lost with, if any.
    /// Cancellation: safe.
    Coro<> wait_closed();
    /// As Transport::get_extra_info ("peername", "sockname", "socket").
    std::any get_extra_info(std::string_view name, std::any dflt = {}) const;
    /// The underlying transport (Python's writer.transport).
    Transport& transport() const;

    // internal
    explicit StreamWriter(detail::WriterRef s) : s_(std::move(s)) {}

private:
    detail::WriterRef s_;
};

/// The client_connected_cb of start_server(): called as cb(reader, writer) in a new task.
using ClientConnectedCallback = std::function<Coro<>(StreamReader, StreamWriter)>;

/// Connect to host:port; gives {reader, writer} (Python's asyncio.open_connection).
///
/// Raises: as create_connection() (ConnectionRefusedError, gaierror, ...).
/// Cancellation: safe; no connection is left open.
Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, int port,
                                                            std::size_t limit = kDefaultLimit,
                                                            ConnectOptions opts = {});
namespace detail {
// Streams over a transport made elsewhere (the subprocess pipes): the
// protocol such a transport should call (Python's StreamReaderProtocol, with
// flow control), the reader it feeds, and a writer over transport + protocol
// (the last writer handle closes the transport).
std::shared_ptr<BufferedProtocol> new_external_stream_protocol(std::size_t limit);
StreamReader stream_reader_of(const std::shared_ptr<BufferedProtocol>& protocol);
StreamWriter stream_writer_of(std::shared_ptr<Transport> transport, const std::shared_ptr<BufferedProtocol>& protocol);
}  // namespace detail

/// Start a TCP server running cb(reader, writer) in a new task per connection
/// (Python's asyncio.start_server). An exception escaping cb goes to the
/// loop's exception handler ("Unhandled exception in client_connected_cb") and
/// closes that connection.
/// Raises: as create_server(). Cancellation: safe.
Coro<Server> start_server(ClientConnectedCallback cb, std::string host, int port,
                          std::size_t limit = kDefaultLimit, ServerOptions opts = {});
/// open_connection() over the Unix socket at path.
Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path,
                                                                 std::size_t limit = kDefaultLimit);
/// start_server() on the Unix socket at path.
Coro<Server> start_unix_server(ClientConnectedCallback cb, std::string path, std::size_t limit = kDefaultLimit,
                               ServerOptions opts = {});

}  // namespace asyncio
