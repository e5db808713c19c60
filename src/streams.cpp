// Streams over transports: Python's StreamReader, StreamReaderProtocol
// (with FlowControlMixin) and StreamWriter.
//
// States (loop thread only; ReaderState and WriterState are declared in the
// header so that read(n) and drain() inline their common paths):
// - ReaderState is the reader's buffer [head, tail) in one malloc'd block the
//   transport receives into directly (the protocol is a BufferedProtocol), so
//   a read costs no copy and no allocation until read() builds its result.
//   At most one task waits for data (`waiter`). Reading pauses when the
//   buffer exceeds 2 * limit and resumes when it drops to limit (Python).
// - StreamProtocol is the transport's protocol: it feeds the reader, tracks
//   write pausing (drain waiters) and the closed future.
// - WriterState ties transport, protocol (and its WriteFlow flags) and
//   reader; the last StreamWriter handle closes the transport.
#include "asyncio/streams.hpp"

#include <cstdlib>
#include <cstring>

#include "asyncio/futures.hpp"

namespace asyncio {
namespace detail {

namespace {
constexpr std::size_t kInitialCap = 16 * 1024;
constexpr std::size_t kMinRecv = 4 * 1024;
}  // namespace

ReaderState::ReaderState(EventLoop* l, std::size_t lim) : loop(l), limit(lim) {
    if (lim == 0) throw ValueError("Limit cannot be <= 0");
}
ReaderState::~ReaderState() { std::free(buf); }

void ReaderState::grow(std::size_t want) {
    std::size_t used = size();
    if (head > 0 && used + want <= cap) {
        std::memmove(buf, buf + head, used);
    } else {
        std::size_t ncap = cap ? cap : kInitialCap;
        while (ncap < used + want) ncap *= 2;
        char* nb = static_cast<char*>(std::malloc(ncap));
        if (!nb) throw std::bad_alloc();
        if (used) std::memcpy(nb, buf + head, used);
        std::free(buf);
        buf = nb;
        cap = ncap;
    }
    head = 0;
    tail = used;
}

void ReaderState::unread(std::string_view d) {
    if (d.empty()) return;
    if (head >= d.size()) {
        head -= d.size();
    } else {
        reserve(d.size());  // compacts to head == 0
        std::memmove(buf + d.size(), buf, tail);
        tail += d.size();
    }
    std::memcpy(buf + head, d.data(), d.size());
    if (transport && !paused && size() > 2 * limit) pause_transport();
}

void ReadAwaiter::put_back() noexcept {
    try {
        s->unread(direct_);
    } catch (...) {  // out of memory: the bytes are lost with the read
    }
    direct_.clear();
}

void ReaderState::pause_transport() {
    transport->pause_reading();
    paused = true;
}

void ReaderState::resume_transport() {
    paused = false;
    if (transport) transport->resume_reading();
}

bool on_data_wait_cancel(Waiter* w, TaskBase* task, const std::string* msg) {
    auto* self = static_cast<DataWaitBase*>(w);
    if (self->s->waiter != self) return false;
    self->s->waiter = nullptr;
    self->s->direct = nullptr;
    task->wake_cancelled(msg);
    return true;
}

namespace {
[[noreturn]] void throw_already_waiting(const char* fn) {
    throw RuntimeError(std::string(fn) + "() called while another coroutine is already waiting for incoming data");
}

}  // namespace

// Park `task` (resuming at h) until the reader gets data, EOF or an error
// (Python's _wait_for_data). Nothing may throw after suspend_on().
void wait_for_data(DataWaitBase* w, ReaderState* s, TaskBase* task, std::coroutine_handle<> h, const char* fn) {
    if (s->waiter) throw_already_waiting(fn);
    if (s->paused) s->resume_transport();
    w->s = s;
    w->t = task;
    w->cancel = &on_data_wait_cancel;
    s->waiter = w;
    task->suspend_on(h, w);
}

// co_await DataWait: suspend until the reader gets data, EOF or an error
// (the coroutine forms of readuntil() and readexactly()).
struct DataWait : DataWaitBase {
    const char* fn;
    DataWait(ReaderState* st, const char* f) : fn(f) {
        s = st;
        if (s->waiter) throw_already_waiting(fn);
    }
    DataWait(const DataWait&) = delete;
    ~DataWait() {
        if (s->waiter == this) s->waiter = nullptr;
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
        wait_for_data(this, s, h.promise().task(), h, fn);
    }
    void await_resume() { t->check_cancel(); }
};

struct StreamProtocol final : BufferedProtocol, DirectSink, WriteFlow, std::enable_shared_from_this<StreamProtocol> {
    ReaderRef reader;
    std::shared_ptr<ClientConnectedCallback> cb;
    Transport* transport = nullptr;
    std::vector<Future<>> drain_waiters;
    Future<> closed;

    StreamProtocol(ReaderRef r, std::shared_ptr<ClientConnectedCallback> c)
        : reader(std::move(r)), cb(std::move(c)), closed(*reader->loop) {}

    void connection_made(Transport* t) override;
    void connection_lost(std::exception_ptr exc) override {
        lost = true;
        transport = nullptr;
        reader->transport = nullptr;
        if (exc)
            reader->set_exception(exc);
        else
            reader->feed_eof();
        if (!closed.done()) {
            if (exc) {
                closed.set_exception(exc);
                (void)closed.exception();  // retrieved: nobody has to await it
            } else {
                closed.set_result();
            }
        }
        if (!paused_writing) return;
        auto ws = std::move(drain_waiters);
        for (auto& w : ws) {
            if (w.done()) continue;
            if (exc)
                w.set_exception(exc);
            else
                w.set_result();
        }
    }
    void pause_writing() override { paused_writing = true; }
    void resume_writing() override {
        paused_writing = false;
        auto ws = std::move(drain_waiters);
        for (auto& w : ws)
            if (!w.done()) w.set_result();
    }
    bool take_direct(std::string_view d) override { return reader->take_direct(d); }
    std::span<char> get_buffer(std::size_t) override {
        reader->reserve(kMinRecv);
        return {reader->buf + reader->tail, reader->cap - reader->tail};
    }
    void buffer_updated(std::size_t n) override {
        reader->tail += n;
        reader->data_added();
    }
    bool eof_received() override {
        reader->feed_eof();
        return true;  // keep the write side open (half-close), as Python
    }
};

WriterState::WriterState(std::shared_ptr<Transport> t, std::shared_ptr<StreamProtocol> p,
                         ReaderRef r)
    : transport(std::move(t)), protocol(std::move(p)), reader(std::move(r)), flow(protocol.get()) {}

WriterState::~WriterState() {
    try {
        if (!transport->is_closing()) transport->close();
    } catch (...) {
    }
}

void StreamProtocol::connection_made(Transport* t) {
    transport = t;
    reader->transport = t;
    if (!cb) return;
    auto ws = make_loop_ref<WriterState>(t->shared_from_this(), shared_from_this(), reader);
    Coro<> coro = (*cb)(StreamReader(reader), StreamWriter(std::move(ws)));
    Task<> task = reader->loop->create_task(std::move(coro));
    std::shared_ptr<Transport> keep = t->shared_from_this();
    task.add_done_callback([keep](Task<>& done) {
        if (done.cancelled()) {
            keep->close();
            return;
        }
        if (auto e = done.exception()) {
            ExceptionContext ctx;
            ctx.message = "Unhandled exception in client_connected_cb";
            ctx.exception = e;
            keep->get_protocol();  // (the transport is named in Python's context)
            get_running_loop().call_exception_handler(ctx);
            keep->close();
        }
    });
}

Coro<std::string> stream_read(ReaderRef s, std::ptrdiff_t n) {
    if (n >= 0) {  // read(n): what the frameless awaiter does, in this frame
        ReadAwaiter aw(s, n);  // s, in this frame, outlives it
        co_return co_await aw;
    }
    s->check_exc();
    std::string all;
    for (;;) {
        while (s->size() == 0 && !s->eof) {
            s->check_exc();
            DataWait w(s.get(), "read");
            co_await w;
        }
        s->check_exc();
        if (s->size() == 0) break;
        all.append(s->view());
        s->clear();
        s->maybe_resume_transport();
    }
    co_return all;
}

namespace {
// _drain_helper's checks: ConnectionResetError once the connection is lost;
// true when writing is not paused (nothing to wait for).
bool drain_unpaused(const StreamProtocol& p) {
    if (p.lost) throw ConnectionResetError(0, "Connection lost");  // Python: errno None
    return !p.paused_writing;
}
}  // namespace

// ---- the frameless read() and drain() ----------------------------------------------

bool DrainAwaiter::ready_slow() {
    // Python's drain() up to _drain_helper's wait, in its order.
    const WriterRef& w = *w_;
    w->reader->check_exc();
    if (!w->transport->is_closing() && drain_unpaused(*w->protocol)) return true;
    slow_.adopt(stream_drain(w).release());
    return false;
}

namespace {

// CPython 3.13's readuntil: the match ending first wins; nothing is consumed
// before the whole chunk can be returned.
Coro<std::string> stream_readuntil(ReaderRef s, std::vector<std::string> seps) {
    if (seps.empty()) throw ValueError("Separator should contain at least one element");
    std::size_t min_len = SIZE_MAX, max_len = 0;
    for (const auto& sep : seps) {
        if (sep.empty()) throw ValueError("Separator should be at least one-byte string");
        min_len = std::min(min_len, sep.size());
        max_len = std::max(max_len, sep.size());
    }
    s->check_exc();
    std::size_t offset = 0;
    std::size_t match_start = 0, match_end = 0;
    for (;;) {
        std::size_t buflen = s->size();
        if (buflen >= offset + min_len) {
            std::string_view v = s->view();
            bool found = false;
            for (const auto& sep : seps) {
                std::size_t i = v.find(sep, offset);
                if (i != std::string_view::npos && (!found || i + sep.size() < match_end)) {
                    found = true;
                    match_start = i;
                    match_end = i + sep.size();
                }
            }
            if (found) break;
            offset = buflen + 1 > max_len ? buflen + 1 - max_len : 0;
            if (offset > s->limit)
                throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
        }
        if (s->eof) {
            std::string chunk(s->view());
            s->clear();
            throw IncompleteReadError(std::move(chunk), std::nullopt);
        }
        DataWait w(s.get(), "readuntil");
        co_await w;
        s->check_exc();
    }
    if (match_start > s->limit)
        throw LimitOverrunError("Separator is found, but chunk is longer than limit", match_start);
    std::string out = s->take(match_end);
    s->maybe_resume_transport();
    co_return out;
}

Coro<std::string> stream_readline(ReaderRef s) {
    std::string line;
    std::optional<std::size_t> overrun;
    std::string msg;
    try {
        std::vector<std::string> seps{"\n"};
        auto c = stream_readuntil(s, std::move(seps));
        line = co_await std::move(c);
    } catch (const IncompleteReadError& e) {
        co_return e.partial;
    } catch (const LimitOverrunError& e) {
        overrun = e.consumed;
        msg = e.what();
    }
    if (overrun) {
        std::string_view v = s->view();
        if (*overrun < v.size() && v[*overrun] == '\n')
            s->consume(*overrun + 1);
        else
            s->clear();
        s->maybe_resume_transport();
        throw ValueError(msg);
    }
    co_return line;
}

Coro<std::string> stream_readexactly(ReaderRef s, std::size_t n) {
    s->check_exc();
    if (n == 0) co_return std::string();
    while (s->size() < n) {
        if (s->eof) {
            std::string partial(s->view());
            s->clear();
            throw IncompleteReadError(std::move(partial), n);
        }
        DataWait w(s.get(), "readexactly");
        co_await w;
        s->check_exc();
    }
    std::string out = s->take(n);
    s->maybe_resume_transport();
    co_return out;
}

}  // namespace

Coro<> stream_drain(WriterRef w) {
    w->reader->check_exc();
    if (w->transport->is_closing()) co_await sleep(0);  // let connection_lost run (Python)
    if (drain_unpaused(*w->protocol)) co_return;
    Future<> f = w->reader->loop->create_future<void>();
    w->protocol->drain_waiters.push_back(f);
    co_await f;
}

namespace {

Coro<> stream_wait_closed(WriterRef w) {
    Future<> f = w->protocol->closed;
    co_await f;
}

std::shared_ptr<StreamProtocol> new_stream_protocol(EventLoop& loop, std::size_t limit,
                                                    std::shared_ptr<ClientConnectedCallback> cb) {
    auto r = make_loop_ref<ReaderState>(&loop, limit);
    return std::make_shared<StreamProtocol>(std::move(r), std::move(cb));
}

Coro<std::pair<StreamReader, StreamWriter>> finish_open(Coro<std::shared_ptr<Transport>> c,
                                                        std::shared_ptr<StreamProtocol> p) {
    std::shared_ptr<Transport> t = co_await std::move(c);
    auto ws = make_loop_ref<WriterState>(std::move(t), p, p->reader);
    co_return std::pair<StreamReader, StreamWriter>(StreamReader(p->reader), StreamWriter(std::move(ws)));
}

ProtocolFactory server_factory(EventLoop& loop, std::size_t limit, ClientConnectedCallback cb) {
    if (!cb) throw ValueError("start_server() needs a client_connected_cb");
    auto shared = std::make_shared<ClientConnectedCallback>(std::move(cb));
    EventLoop* l = &loop;
    return [l, limit, shared]() -> std::shared_ptr<BaseProtocol> { return new_stream_protocol(*l, limit, shared); };
}

}  // namespace

std::shared_ptr<BufferedProtocol> new_external_stream_protocol(std::size_t limit) {
    return new_stream_protocol(running_loop(), limit, nullptr);
}
StreamReader stream_reader_of(const std::shared_ptr<BufferedProtocol>& protocol) {
    return StreamReader(static_cast<StreamProtocol&>(*protocol).reader);
}
StreamWriter stream_writer_of(std::shared_ptr<Transport> transport, const std::shared_ptr<BufferedProtocol>& protocol) {
    auto p = std::static_pointer_cast<StreamProtocol>(protocol);
    // Python builds this writer with reader=None: its drain() never raises
    // what the protocol's reader was given (a broken pipe raises once, from
    // the drain it woke, then "Connection lost"). A reader nobody feeds.
    auto r = make_loop_ref<ReaderState>(p->reader->loop, p->reader->limit);
    return StreamWriter(make_loop_ref<WriterState>(std::move(transport), std::move(p), std::move(r)));
}

}  // namespace detail

// ---- StreamReader -------------------------------------------------------------------

StreamReader::StreamReader(std::size_t limit)
    : s_(detail::make_loop_ref<detail::ReaderState>(&detail::running_loop(), limit)) {}

Coro<std::string> StreamReader::readline() { return detail::stream_readline(s_); }
Coro<std::string> StreamReader::readexactly(std::size_t n) { return detail::stream_readexactly(s_, n); }
Coro<std::string> StreamReader::readuntil(std::string_view separator) {
    std::vector<std::string> seps{std::string(separator)};
    return detail::stream_readuntil(s_, std::move(seps));
}
Coro<std::string> StreamReader::readuntil(std::vector<std::string> separators) {
    return detail::stream_readuntil(s_, std::move(separators));
}
bool StreamReader::at_eof() const { return s_->eof && s_->size() == 0; }
void StreamReader::feed_data(std::string_view data) {
    if (s_->eof) throw RuntimeError("feed_data after feed_eof");
    if (data.empty()) return;
    s_->reserve(data.size());
    std::memcpy(s_->buf + s_->tail, data.data(), data.size());
    s_->tail += data.size();
    s_->data_added();
}
void StreamReader::feed_eof() { s_->feed_eof(); }
std::exception_ptr StreamReader::exception() const { return s_->exc; }
void StreamReader::set_exception(std::exception_ptr exc) { s_->set_exception(std::move(exc)); }

// ---- StreamWriter -------------------------------------------------------------------

bool StreamWriter::can_write_eof() const { return s_->transport->can_write_eof(); }
void StreamWriter::write_eof() { s_->transport->write_eof(); }
void StreamWriter::close() { s_->transport->close(); }
bool StreamWriter::is_closing() const { return s_->transport->is_closing(); }
Coro<> StreamWriter::wait_closed() { return detail::stream_wait_closed(s_); }
std::any StreamWriter::get_extra_info(std::string_view name, std::any dflt) const {
    return s_->transport->get_extra_info(name, std::move(dflt));
}
Transport& StreamWriter::transport() const { return *s_->transport; }

// ---- open_connection / start_server -------------------------------------------------

Coro<std::pair<StreamReader, StreamWriter>> open_connection(std::string host, int port, std::size_t limit,
                                                            ConnectOptions opts) {
    auto p = detail::new_stream_protocol(detail::running_loop(), limit, nullptr);
    detail::ProtocolFactory f = [p]() -> std::shared_ptr<BaseProtocol> { return p; };
    auto c = detail::create_connection(std::move(f), std::move(host), port, std::move(opts));
    return detail::finish_open(std::move(c), std::move(p));
}

Coro<std::pair<StreamReader, StreamWriter>> open_unix_connection(std::string path, std::size_t limit) {
    auto p = detail::new_stream_protocol(detail::running_loop(), limit, nullptr);
    detail::ProtocolFactory f = [p]() -> std::shared_ptr<BaseProtocol> { return p; };
    auto c = detail::create_unix_connection(std::move(f), std::move(path));
    return detail::finish_open(std::move(c), std::move(p));
}

Coro<Server> start_server(ClientConnectedCallback cb, std::string host, int port, std::size_t limit,
                          ServerOptions opts) {
    auto f = detail::server_factory(detail::running_loop(), limit, std::move(cb));
    return detail::create_server(std::move(f), std::move(host), port, opts);
}

Coro<Server> start_unix_server(ClientConnectedCallback cb, std::string path, std::size_t limit,
                               ServerOptions opts) {
    auto f = detail::server_factory(detail::running_loop(), limit, std::move(cb));
    return detail::create_unix_server(std::move(f), std::move(path), opts);
}

}  // namespace asyncio
