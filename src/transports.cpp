// Transports on the loop's fd readiness: Python's _SelectorSocketTransport,
// _SelectorDatagramTransport, Server, create_connection/create_server.
//
// Ownership and states (all on the loop's thread):
// - A transport owns its descriptor and, while the loop may still call it,
//   a reference to itself (self_): from start() until connection_lost has
//   been delivered. Read/write readiness callbacks capture a raw `this`; they
//   are removed (remove_reader/forget_fd) before self_ is dropped.
// - closing_: close()/abort() was called; conn_lost_ > 0: connection_lost is
//   scheduled (or delivered), writes are dropped from then on (Python).
// - The protocol is released when connection_lost has run, breaking any
//   cycle through a protocol that keeps shared_from_this().
// - Reads: where the loop has an io_uring (src/uring.hpp), one multishot
//   receive per transport into the loop's provided buffers; the bytes go to
//   data_received, or are copied into a BufferedProtocol's buffers, and the
//   kernel's buffer is given back at once. The transport keeps itself alive
//   (uring_keep_) until the receive's final completion. What completes while
//   reading is paused waits in stash_ and is delivered after resume_reading().
//   Without io_uring: readiness through epoll, recv() into one 256 KiB
//   per-thread buffer for Protocol (the view handed to data_received is only
//   valid during the call) and straight into the protocol's own buffer for
//   BufferedProtocol: no allocation per read.
// - Writes call send() at once when nothing is buffered; only the remainder
//   is buffered and EPOLLOUT armed until it drains.
// - Every open transport and listening server is linked into its loop's
//   LoopRegistry (transports from start() until connection_lost has run,
//   servers while their sockets are open). The loop's close hook tears down
//   whatever is still linked: descriptors closed, connection_lost delivered
//   at once (the loop will not run again), self references dropped. Python
//   leaves that to the transports' __del__; without a GC we must do it here.
#include "asyncio/transports.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "asyncio/sockets.hpp"

namespace asyncio {
namespace detail {

namespace {

constexpr std::size_t kMaxRead = 256 * 1024;
constexpr double kAcceptRetryDelay = 0.1;  // after EMFILE & co. (Python: 1 s)

char* shared_read_buffer() {
    static thread_local std::unique_ptr<char[]> buf(new char[kMaxRead]);
    return buf.get();
}

void report(EventLoop& loop, const std::string& message, std::exception_ptr exc) {
    ExceptionContext ctx;
    ctx.message = message;
    ctx.exception = std::move(exc);
    loop.call_exception_handler(ctx);
}

bool is_os_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const OSError&) {
        return true;
    } catch (...) {
        return false;
    }
}

void close_fd(EventLoop& loop, int fd) noexcept {
    loop.forget_fd(fd);
    ::close(fd);
}

// Owns a descriptor until released (closes it on unwinding or cancellation).
struct FdGuard {
    EventLoop* loop;
    int fd;
    FdGuard(EventLoop* l, int f) : loop(l), fd(f) {}
    FdGuard(const FdGuard&) = delete;
    ~FdGuard() {
        if (fd >= 0) close_fd(*loop, fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

void set_int_opt(int fd, int level, int opt, int v, const char* what) {
    if (::setsockopt(fd, level, opt, &v, sizeof v) < 0) raise_os_error(errno, what);
}

// Python's _ipaddr_info shortcut: a numeric host needs no resolver thread.
Coro<std::vector<AddrInfo>> resolve(EventLoop& loop, std::string host, int port, int family, int type,
                                    int flags) {
    // Python's socket module refuses such a port at connect()/bind(); the
    // resolver would wrap it (70000 -> 4464) and reach the wrong port.
    if (port < 0 || port > 65535)
        throw OverflowError(std::string((flags & AI_PASSIVE) ? "bind" : "connect") + "(): port must be 0-65535.");
    if (!host.empty()) {
        unsigned char tmp[sizeof(in6_addr)];
        int fam = 0;
        if (::inet_pton(AF_INET, host.c_str(), tmp) == 1)
            fam = AF_INET;
        else if (::inet_pton(AF_INET6, host.c_str(), tmp) == 1)
            fam = AF_INET6;
        if (fam != 0 && (family == 0 || family == fam)) {
            AddrInfo ai;
            ai.family = fam;
            ai.type = type;
            ai.proto = type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
            ai.addr = SockAddr::from_ip(host, static_cast<std::uint16_t>(port));
            co_return std::vector<AddrInfo>{ai};
        }
    }
    auto c = loop.getaddrinfo(host, port, family, type, 0, flags);
    std::vector<AddrInfo> infos = co_await std::move(c);
    if (infos.empty()) throw OSError(EINVAL, "getaddrinfo() returned empty list");
    co_return infos;
}

[[noreturn]] void raise_collected(const std::vector<std::exception_ptr>& errors) {
    if (errors.size() == 1) std::rethrow_exception(errors[0]);
    std::string first, all;
    bool same = true;
    for (const auto& e : errors) {
        std::string s;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            s = ex.what();
        }
        if (first.empty()) first = s;
        same = same && s == first;
        if (!all.empty()) all += ", ";
        all += s;
    }
    if (same) std::rethrow_exception(errors[0]);
    throw OSError(0, "Multiple exceptions: " + all);
}

}  // namespace

// ---- per-loop registry of open transports and servers ------------------------------

struct LoopRegistry;

// A member of a loop's registry (intrusive, doubly linked; loop thread only).
class Registered {
public:
    Registered(const Registered&) = delete;
    Registered& operator=(const Registered&) = delete;
    void link(LoopRegistry& r) noexcept;
    void unlink() noexcept;
    // The loop is closing and will not run again: release everything now.
    virtual void loop_closing() = 0;

protected:
    Registered() = default;
    ~Registered() { unlink(); }

private:
    friend struct LoopRegistry;
    LoopRegistry* reg_ = nullptr;
    Registered* prev_ = nullptr;
    Registered* next_ = nullptr;
};

struct LoopRegistry {
    Registered* first = nullptr;

    // The registry of `loop`, made (with its close hook) on first use.
    // Raises: RuntimeError once the loop is closed.
    static LoopRegistry& of(EventLoop& loop);

private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::unordered_map<EventLoop*, std::unique_ptr<LoopRegistry>>& all() {
        static std::unordered_map<EventLoop*, std::unique_ptr<LoopRegistry>> m;
        return m;
    }
    // The close hook. Members linked while tearing down (a connection_lost
    // that opens a connection) are torn down too; the entry is erased only
    // when the list is empty, so such a member never finds a stale registry.
    static void teardown(EventLoop* loop) {
        LoopRegistry* r;
        {
            std::lock_guard<std::mutex> lk(mu());
            auto it = all().find(loop);
            if (it == all().end()) return;
            r = it->second.get();
        }
        while (Registered* m = r->first) {
            m->unlink();
            try {
                m->loop_closing();  // may destroy m
            } catch (...) {
                report(*loop, "Exception while closing a transport at loop close", std::current_exception());
            }
        }
        std::lock_guard<std::mutex> lk(mu());
        all().erase(loop);
    }
};

LoopRegistry& LoopRegistry::of(EventLoop& loop) {
    if (loop.is_closed()) throw RuntimeError("Event loop is closed");
    std::lock_guard<std::mutex> lk(mu());
    auto& slot = all()[&loop];
    if (!slot) {
        slot = std::make_unique<LoopRegistry>();
        EventLoop* l = &loop;
        loop.add_close_hook([l] { teardown(l); });
    }
    return *slot;
}

void Registered::link(LoopRegistry& r) noexcept {
    if (reg_) return;
    reg_ = &r;
    prev_ = nullptr;
    next_ = r.first;
    if (next_) next_->prev_ = this;
    r.first = this;
}

void Registered::unlink() noexcept {
    if (!reg_) return;
    if (prev_)
        prev_->next_ = next_;
    else
        reg_->first = next_;
    if (next_) next_->prev_ = prev_;
    reg_ = nullptr;
    prev_ = next_ = nullptr;
}

// ---- Server state ---------------------------------------------------------------

class SocketTransport;

struct ServerState final : Registered, std::enable_shared_from_this<ServerState> {
    EventLoop* loop = nullptr;
    LoopRegistry* registry = nullptr;  // where its accepted transports are linked
    std::vector<int> socks;
    ProtocolFactory factory;
    int backlog = 100;
    bool serving = false;
    bool closed = false;
    bool accept_paused = false;
    std::size_t active_count = 0;
    std::vector<Future<>> waiters;
    bool waiters_done = false;  // Python's _waiters = None
    std::optional<Future<>> serving_forever;
    std::unordered_set<SocketTransport*> clients;
    TimerHandle retry;
    std::shared_ptr<ServerState> self;  // while the listening sockets are open
    std::string unix_path;
    ino_t unix_ino = 0;

    void start_serving();
    void stop_accepting();
    void close();
    void attach(SocketTransport* t) {
        ++active_count;
        clients.insert(t);
    }
    void detach(SocketTransport* t) {
        clients.erase(t);
        --active_count;
        if (active_count == 0 && closed) wakeup();
    }
    void wakeup() {
        if (waiters_done) return;
        waiters_done = true;
        auto ws = std::move(waiters);
        for (auto& w : ws)
            if (!w.done()) w.set_result();
    }
    void accept_ready(int lfd);
    void loop_closing() override { close(); }
};

// ---- stream transport ---------------------------------------------------------

class SocketTransport final : public Transport, Registered {
public:
    SocketTransport(EventLoop& loop, int fd, std::shared_ptr<BaseProtocol> proto, std::shared_ptr<ServerState> server,
                    SockAddr peer)
        : fd_(fd), loop_(&loop), proto_(std::move(proto)), server_(std::move(server)), peer_(std::move(peer)) {
        rop_.complete = &on_received;
        rop_.t = this;
        sop_.complete = &on_sent;
        sop_.quick = &sent_quickly;
        sop_.t = this;
        p_ = dynamic_cast<Protocol*>(proto_.get());
        if (!p_) bp_ = dynamic_cast<BufferedProtocol*>(proto_.get());
        if (bp_) sink_ = dynamic_cast<detail::DirectSink*>(bp_);
        if (!p_ && !bp_) {
            close_fd(loop, fd_);
            throw ValueError("a stream transport needs a Protocol or a BufferedProtocol");
        }
    }
    ~SocketTransport() override {
        if (fd_ >= 0) close_fd(*loop_, fd_);
    }

    // Register, call connection_made, start reading.
    void start() {
        link(server_ ? *server_->registry : LoopRegistry::of(*loop_));
        self_ = std::static_pointer_cast<SocketTransport>(shared_from_this());
        if (server_) server_->attach(this);
        try {
            if (p_)
                p_->connection_made(this);
            else
                bp_->connection_made(this);
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.connection_made() call failed.");
            return;
        }
        if (!closing_ && !paused_) watch_reads();
    }

    void write(std::string_view data) override {
        // The steady state (open, nothing buffered) tries the socket first;
        // when it takes everything, nothing else is touched and the slow
        // paths' stack frames are not set up. With batched sends
        // (EventLoop::set_uring_sends) it queues a send in the ring instead.
        if (!eof_written_ && !conn_lost_ && wpos_ == wbuf_.size() && !data.empty()) [[likely]] {
            if (armed_ && loop_->get_uring_sends()) {
                if (ring_write(data)) return;
            }
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (static_cast<std::size_t>(n) != data.size()) [[unlikely]]
                write_rest(data, n);
            return;
        }
        write_slow(data);
    }

    // write() in every other case, checked in Python's order; past the
    // checks, data goes behind what is already buffered (behind the send in
    // flight, in wnext_, while there is one).
    [[gnu::noinline]] void write_slow(std::string_view data) {
        if (eof_written_) throw RuntimeError("Cannot call write() after write_eof()");
        if (data.empty()) return;
        if (conn_lost_) {
            ++conn_lost_;
            return;
        }
        if (sending_) {
            wnext_.append(data);
            maybe_pause_protocol();
            return;
        }
        if (wpos_ > wbuf_.size() / 2) {
            wbuf_.erase(0, wpos_);
            wpos_ = 0;
        }
        wbuf_.append(data);
        maybe_pause_protocol();
    }

    void write_eof() override {
        if (closing_ || eof_written_) return;
        eof_written_ = true;
        if (wpos_ == wbuf_.size() && !sending_) ::shutdown(fd_, SHUT_WR);  // else once all is sent
    }
    bool can_write_eof() const override { return true; }

    void close() override {
        if (closing_) return;
        closing_ = true;
        stop_reads();
        if (wpos_ == wbuf_.size() && !sending_) {
            ++conn_lost_;
            loop_->remove_writer(fd_);
            schedule_connection_lost(nullptr);
        }
    }
    void abort() override { force_close(nullptr); }
    bool is_closing() const override { return closing_; }

    void pause_reading() override {
        if (closing_ || paused_) return;
        paused_ = true;
        stop_reads();
    }
    void resume_reading() override {
        if (closing_ || !paused_) return;
        paused_ = false;
        if (!stash_.empty() || eof_stashed_) schedule_stash();
        watch_reads();
    }
    bool is_reading() const override { return !paused_ && !closing_; }

    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
        std::size_t h = high ? *high : (low ? 4 * *low : 64 * 1024);
        std::size_t l = low ? *low : h / 4;
        if (h < l)
            throw ValueError("high (" + std::to_string(h) + ") must be >= low (" + std::to_string(l) +
                             ") must be >= 0");
        high_ = h;
        low_ = l;
        maybe_pause_protocol();
    }
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override { return {low_, high_}; }
    std::size_t get_write_buffer_size() const override { return wbuf_.size() - wpos_ + wnext_.size(); }

    std::any get_extra_info(std::string_view name, std::any dflt) const override {
        if (name == "peername") return peer_.empty() ? dflt : std::any(peer_);
        if (name == "sockname") {
            if (fd_ < 0) return dflt;
            SockAddr a;
            *a.size_ptr() = SockAddr::capacity();
            if (::getsockname(fd_, a.data(), a.size_ptr()) < 0) return dflt;
            return a;
        }
        if (name == "socket") return fd_ < 0 ? dflt : std::any(fd_);
        return dflt;
    }
    std::shared_ptr<BaseProtocol> get_protocol() const override { return proto_; }

private:
    // Start reading: a multishot receive on the loop's io_uring when it has
    // one (kept while a cancel is on its way: its final completion re-arms),
    // else the reader for the protocol's kind (the read needs no test for it).
    void watch_reads() {
        if (use_uring_) {
            if (armed_) return;
            if (loop_->uring_recv(fd_, &rop_)) {
                armed_ = true;
                cancel_sent_ = false;
                uring_keep_ = self_;
                return;
            }
            use_uring_ = false;
        }
        if (p_)
            loop_->add_reader(fd_, Callback::bind<&on_readable>(this));
        else
            loop_->add_reader(fd_, Callback::bind<&on_readable_buffered>(this));
    }
    void stop_reads() {
        if (!use_uring_) {
            loop_->remove_reader(fd_);
        } else if (armed_ && !cancel_sent_) {
            loop_->uring_cancel(&rop_);
            cancel_sent_ = true;
        }
    }
    static void on_readable(void* p) { static_cast<SocketTransport*>(p)->read_ready(); }
    static void on_readable_buffered(void* p) { static_cast<SocketTransport*>(p)->read_ready_buffered(); }
    static void on_received(detail::UringOp* op, int res, unsigned flags, bool final) {
        static_cast<RecvOp*>(op)->t->received(res, flags, final);
    }

    // A completion of the multishot receive. Data goes to the protocol, or
    // to stash_ while reading is paused (or stashed data waits for its
    // delivery), or nowhere once the transport is closing (Python stops
    // reading at close()).
    void received(int res, unsigned flags, bool final) {
        if (res > 0) {
            std::string_view d = loop_->uring_data(res, flags);
            if (closing_ || conn_lost_) {
            } else if (paused_ || stashed_) {
                stash_.append(d);
                stashed_ = true;
            } else {
                deliver(d);
            }
            loop_->uring_release(flags);
        }
        if (!final) return;
        armed_ = false;
        cancel_sent_ = false;
        auto keep = std::move(uring_keep_);  // may destroy *this when this function returns
        if (res == 0) {
            if (closing_ || conn_lost_) return;
            if (paused_ || stashed_) {
                eof_stashed_ = true;  // delivered after the data, on resume_reading()
                return;
            }
            read_eof();
            return;
        }
        if (res == -EINVAL) {
            // A kernel without multishot receive (before 6.0): epoll from now on.
            loop_->uring_unsupported();
            use_uring_ = false;
        } else if (res < 0 && res != -ECANCELED && res != -ENOBUFS) {
            if (!conn_lost_) fatal_error(make_os_error(-res, "recv"), "Fatal read error on socket transport");
            return;
        }
        // Ended by a cancel, by running out of buffers, or by the kernel:
        // go on if reading is still wanted.
        if (!closing_ && !paused_ && !conn_lost_) watch_reads();
    }

    // Hand received bytes to the protocol: a Protocol at once, a
    // BufferedProtocol copied into as many of its buffers as it takes (what
    // is left when it pauses reading waits in stash_).
    void deliver(std::string_view d) {
        if (p_) {
            try {
                p_->data_received(d);
            } catch (...) {
                fatal_error(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
            }
            return;
        }
        if (sink_) {
            try {
                if (sink_->take_direct(d)) return;
            } catch (...) {
                fatal_error(std::current_exception(), "Fatal error: protocol.buffer_updated() call failed.");
                return;
            }
        }
        while (!d.empty()) {
            std::span<char> b;
            try {
                b = bp_->get_buffer(d.size());
                if (b.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
            } catch (...) {
                fatal_error(std::current_exception(), "Fatal error: protocol.get_buffer() call failed.");
                return;
            }
            std::size_t n = std::min(b.size(), d.size());
            std::memcpy(b.data(), d.data(), n);
            d.remove_prefix(n);
            try {
                bp_->buffer_updated(n);
            } catch (...) {
                fatal_error(std::current_exception(), "Fatal error: protocol.buffer_updated() call failed.");
                return;
            }
            if (closing_ || conn_lost_) return;
            if (paused_) {
                stash_.append(d);
                stashed_ = !stash_.empty();
                return;
            }
        }
    }

    void schedule_stash() {
        if (stash_scheduled_) return;
        stash_scheduled_ = true;
        auto self = std::static_pointer_cast<SocketTransport>(shared_from_this());
        loop_->call_soon([self] { self->deliver_stash(); });
    }
    // What came while reading was paused, in the iteration after resume_reading().
    void deliver_stash() {
        stash_scheduled_ = false;
        if (closing_ || conn_lost_) {
            stash_.clear();
            stashed_ = false;
            return;
        }
        if (paused_) return;  // paused again: the next resume_reading() schedules it
        std::string data = std::move(stash_);
        stash_.clear();
        stashed_ = false;
        if (!data.empty()) deliver(data);
        if (eof_stashed_ && stash_.empty() && !paused_ && !closing_ && !conn_lost_) {
            eof_stashed_ = false;
            read_eof();
        }
    }
    static void on_writable(void* p) { static_cast<SocketTransport*>(p)->write_ready(); }
    static void lost_thunk(void* p) { static_cast<SocketTransport*>(p)->call_connection_lost(); }
    static void on_sent(detail::UringOp* op, int res, unsigned, bool) { static_cast<SendOp*>(op)->t->sent(res); }
    // The common completion, handled by the poll step itself: everything in
    // flight went out, nothing waits behind it, and nobody is to be told
    // (no pause to lift, no close or EOF pending, the connection alive).
    static bool sent_quickly(detail::UringOp* op, int res) noexcept {
        SocketTransport* t = static_cast<SendOp*>(op)->t;
        if (res < 0 || static_cast<std::size_t>(res) != t->wbuf_.size() - t->wpos_ || !t->wnext_.empty() ||
            t->protocol_paused_ || t->closing_ || t->eof_written_ || t->conn_lost_)
            return false;
        t->sending_ = false;
        t->wbuf_.clear();
        t->wpos_ = 0;
        return true;
    }

    // Batched sends: data (nothing buffered, nothing in flight) becomes
    // wbuf_, sent by the ring; false (nothing changed) if the ring refuses.
    bool ring_write(std::string_view data) {
        wbuf_.assign(data.data(), data.size());
        wpos_ = 0;
        if (!submit_send()) {
            wbuf_.clear();
            return false;
        }
        maybe_pause_protocol();
        return true;
    }
    bool submit_send() {
        if (!loop_->uring_send(fd_, wbuf_.data() + wpos_, wbuf_.size() - wpos_, &sop_)) return false;
        sending_ = true;  // (self_ keeps *this alive; call_connection_lost() hands it to send_keep_)
        return true;
    }

    // The completion of the send in flight: n bytes of wbuf_ from wpos_
    // went out, or -errno. wbuf_ does not change while a send is in flight;
    // writes meanwhile go to wnext_, sent next.
    void sent(int res) {
        sending_ = false;
        auto keep = std::move(send_keep_);  // may destroy *this when this function returns
        if (conn_lost_) {  // aborted (or the loop is closing): drop the rest
            wbuf_.clear();
            wnext_.clear();
            wpos_ = 0;
            return;
        }
        // Try again; -ECANCELED: the loop retired its ring (run on another
        // thread, src/uring.hpp) before the kernel ran the send: nothing went.
        if (res == -EINTR || res == -EAGAIN || res == -ECANCELED) res = 0;
        if (res < 0) {
            wbuf_.clear();
            wnext_.clear();
            wpos_ = 0;
            fatal_error(make_os_error(-res, "send"), "Fatal write error on socket transport");
            return;
        }
        wpos_ += static_cast<std::size_t>(res);
        if (wpos_ == wbuf_.size()) {
            wbuf_.clear();
            wpos_ = 0;
            wbuf_.swap(wnext_);
        }
        if (wpos_ != wbuf_.size() && !submit_send()) {
            // The ring refuses: the rest goes through epoll (write_ready()).
            if (wpos_ > 0) {
                wbuf_.erase(0, wpos_);
                wpos_ = 0;
            }
            wbuf_.append(wnext_);
            wnext_.clear();
            loop_->add_writer(fd_, Callback::bind<&on_writable>(this));
        }
        maybe_resume_protocol();
        if (wpos_ != wbuf_.size() || conn_lost_) return;
        if (closing_) {
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        } else if (eof_written_) {
            ::shutdown(fd_, SHUT_WR);
        }
    }

    // Protocol only (p_ is set while the reader is registered).
    void read_ready() {
        if (conn_lost_) return;
        char* buf = shared_read_buffer();
        ssize_t n = ::recv(fd_, buf, kMaxRead, 0);
        if (n <= 0) {
            read_failed(n);
            return;
        }
        try {
            p_->data_received(std::string_view(buf, static_cast<std::size_t>(n)));
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.data_received() call failed.");
        }
    }

    // read_ready() for a BufferedProtocol: receive into its buffer.
    void read_ready_buffered() {
        if (conn_lost_) return;
        std::span<char> b;
        try {
            b = bp_->get_buffer(0);
            if (b.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.get_buffer() call failed.");
            return;
        }
        ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
        if (n <= 0) {
            read_failed(n);
            return;
        }
        try {
            bp_->buffer_updated(static_cast<std::size_t>(n));
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.buffer_updated() call failed.");
        }
    }

    // recv() gave n <= 0 (n < 0: the error is in errno).
    [[gnu::noinline]] void read_failed(ssize_t n) {
        if (n == 0) {
            read_eof();
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        fatal_error(make_os_error(errno, "recv"), "Fatal read error on socket transport");
    }

    // write() after the first send into an empty buffer took `n` (-1: errno)
    // of data: retry after EINTR, fail, or buffer the rest and poll for writability.
    [[gnu::noinline]] void write_rest(std::string_view data, ssize_t n) {
        while (n < 0 && errno == EINTR) n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                fatal_error(make_os_error(errno, "send"), "Fatal write error on socket transport");
                return;
            }
            n = 0;
        }
        if (static_cast<std::size_t>(n) == data.size()) return;
        data.remove_prefix(static_cast<std::size_t>(n));
        wbuf_.clear();
        wpos_ = 0;
        loop_->add_writer(fd_, Callback::bind<&on_writable>(this));
        wbuf_.append(data);
        maybe_pause_protocol();
    }

    void read_eof() {
        bool keep_open;
        try {
            keep_open = p_ ? p_->eof_received() : bp_->eof_received();
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
            return;
        }
        if (keep_open) {
            // Keep writing; stop polling a socket that will only ever say EOF.
            if (!paused_) stop_reads();
            paused_ = true;
        } else {
            close();
        }
    }

    void write_ready() {
        if (conn_lost_) return;
        ssize_t n;
        do n = ::send(fd_, wbuf_.data() + wpos_, wbuf_.size() - wpos_, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            int err = errno;
            loop_->remove_writer(fd_);
            wbuf_.clear();
            wpos_ = 0;
            fatal_error(make_os_error(err, "send"), "Fatal write error on socket transport");
            return;
        }
        wpos_ += static_cast<std::size_t>(n);
        maybe_resume_protocol();
        if (wpos_ != wbuf_.size() || conn_lost_) return;
        wbuf_.clear();
        wpos_ = 0;
        loop_->remove_writer(fd_);
        if (closing_) {
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        } else if (eof_written_) {
            ::shutdown(fd_, SHUT_WR);
        }
    }

    void maybe_pause_protocol() {
        if (get_write_buffer_size() <= high_ || protocol_paused_) return;
        protocol_paused_ = true;
        try {
            proto_->pause_writing();
        } catch (...) {
            report(*loop_, "protocol.pause_writing() failed", std::current_exception());
        }
    }
    void maybe_resume_protocol() {
        if (!protocol_paused_ || get_write_buffer_size() > low_) return;
        protocol_paused_ = false;
        try {
            proto_->resume_writing();
        } catch (...) {
            report(*loop_, "protocol.resume_writing() failed", std::current_exception());
        }
    }

    // Python's _fatal_error: OS errors (resets, broken pipes) are ordinary
    // connection ends; anything else is reported to the exception handler.
    void fatal_error(std::exception_ptr exc, const char* message) {
        if (!is_os_error(exc)) report(*loop_, message, exc);
        force_close(std::move(exc));
    }

    void force_close(std::exception_ptr exc) {
        if (conn_lost_) return;
        if (sending_) {
            // The kernel may still read wbuf_: it is dropped at the completion.
            wnext_.clear();
            loop_->uring_cancel(&sop_);
        } else if (wpos_ != wbuf_.size()) {
            wbuf_.clear();
            wpos_ = 0;
            loop_->remove_writer(fd_);
        }
        if (!closing_) {
            closing_ = true;
            stop_reads();
        }
        ++conn_lost_;
        schedule_connection_lost(std::move(exc));
    }

    void schedule_connection_lost(std::exception_ptr exc) {
        lost_exc_ = std::move(exc);
        loop_->call_soon(Callback::bind<&lost_thunk>(this));
    }

    // Abort and deliver connection_lost now (a pending error stays the one given).
    void loop_closing() override {
        if (!conn_lost_) {
            if (!sending_) {  // else dropped at the completion (the loop ends it)
                wbuf_.clear();
                wpos_ = 0;
            }
            wnext_.clear();
            closing_ = true;
            ++conn_lost_;
        }
        call_connection_lost();
    }

    void call_connection_lost() {
        unlink();
        auto keep = std::move(self_);  // may destroy *this when this function returns
        if (sending_) send_keep_ = keep;  // the kernel reads wbuf_ until the completion
        try {
            proto_->connection_lost(lost_exc_);
        } catch (...) {
            report(*loop_, "Exception in callback protocol.connection_lost()", std::current_exception());
        }
        lost_exc_ = nullptr;
        close_fd(*loop_, fd_);
        fd_ = -1;
        proto_.reset();
        p_ = nullptr;
        bp_ = nullptr;
        if (server_) {
            auto s = std::move(server_);
            s->detach(this);
        }
    }

    // What read_ready(), received() and write() touch comes first: after
    // the bases, three cache lines (a miss each per request: the kernel's
    // work between two requests leaves little of them cached).
    int fd_;
    int conn_lost_ = 0;
    bool closing_ = false;
    bool eof_written_ = false;
    bool paused_ = false;
    bool protocol_paused_ = false;
    bool use_uring_ = true;     // until the loop says it has no io_uring
    bool armed_ = false;        // rop_ is armed, until its final completion
    bool cancel_sent_ = false;  // ... and asked to end
    bool stashed_ = false;      // stash_ is not empty
    EventLoop* loop_;
    Protocol* p_ = nullptr;
    BufferedProtocol* bp_ = nullptr;
    detail::DirectSink* sink_ = nullptr;  // bp_ when it takes chunks directly (streams)
    std::size_t wpos_ = 0;
    std::string wbuf_;
    // Reading through the loop's io_uring (see received()).
    struct RecvOp : detail::UringOp {
        SocketTransport* t;
    };
    RecvOp rop_;
    // Batched sends (EventLoop::set_uring_sends): the send in flight.
    struct SendOp : detail::UringOp {
        SocketTransport* t;
    };
    bool sending_ = false;
    SendOp sop_;
    std::string wnext_;  // written while a send is in flight
    std::size_t high_ = 64 * 1024;
    std::size_t low_ = 16 * 1024;
    std::shared_ptr<BaseProtocol> proto_;
    std::shared_ptr<ServerState> server_;
    std::shared_ptr<SocketTransport> self_;
    std::exception_ptr lost_exc_;
    SockAddr peer_;
    bool eof_stashed_ = false;  // EOF came while paused (or behind stash_)
    bool stash_scheduled_ = false;
    std::string stash_;                              // received while paused
    std::shared_ptr<SocketTransport> uring_keep_;    // *this for the kernel while armed
    std::shared_ptr<SocketTransport> send_keep_;     // *this for the kernel while sending_, once self_ is gone

public:
    void abort_for_server() { abort(); }
};

namespace {
std::shared_ptr<SocketTransport> make_transport(EventLoop& loop, int fd, std::shared_ptr<BaseProtocol> proto,
                                                std::shared_ptr<ServerState> server, SockAddr peer) {
    auto t = std::make_shared<SocketTransport>(loop, fd, std::move(proto), std::move(server), std::move(peer));
    t->start();
    return t;
}

bool is_inet(int family) { return family == AF_INET || family == AF_INET6; }
}  // namespace

// ---- Server ----------------------------------------------------------------------

void ServerState::start_serving() {
    if (serving || closed) return;
    serving = true;
    for (int fd : socks) {
        if (::listen(fd, backlog) < 0) raise_os_error(errno, "listen");
        loop->add_reader(fd, Callback([this, fd] { accept_ready(fd); }));
    }
}

void ServerState::stop_accepting() {
    for (int fd : socks) loop->remove_reader(fd);
}

void ServerState::accept_ready(int lfd) {
    for (int i = 0; i < backlog; ++i) {
        SockAddr peer;
        *peer.size_ptr() = SockAddr::capacity();
        int fd = ::accept4(lfd, peer.data(), peer.size_ptr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
            if (err == ECONNABORTED) continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                // Out of descriptors: stop polling the listening sockets (a
                // level-triggered readiness would spin) and retry later.
                report(*loop, "socket.accept() out of system resource", make_os_error(err, "accept"));
                stop_accepting();
                accept_paused = true;
                retry = loop->call_later(kAcceptRetryDelay, Callback([this] {
                                             accept_paused = false;
                                             if (!serving || closed) return;
                                             for (int f : socks)
                                                 loop->add_reader(f, Callback([this, f] { accept_ready(f); }));
                                         }));
                return;
            }
            report(*loop, "Error on accepting a connection", make_os_error(err, "accept"));
            return;
        }
        if (is_inet(peer.family())) {
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        std::shared_ptr<BaseProtocol> proto;
        try {
            proto = factory();
        } catch (...) {
            close_fd(*loop, fd);
            report(*loop, "Error on transport creation for incoming connection", std::current_exception());
            continue;
        }
        try {
            make_transport(*loop, fd, std::move(proto), shared_from_this(), std::move(peer));
        } catch (...) {
            report(*loop, "Error on transport creation for incoming connection", std::current_exception());
        }
        if (closed || !serving) return;
    }
}

void ServerState::close() {
    if (closed) return;
    closed = true;
    unlink();
    if (accept_paused) retry.cancel();
    for (int fd : socks) close_fd(*loop, fd);
    socks.clear();
    if (!unix_path.empty()) {
        struct stat st;
        if (::stat(unix_path.c_str(), &st) == 0 && st.st_ino == unix_ino) ::unlink(unix_path.c_str());
    }
    serving = false;
    if (serving_forever && !serving_forever->done()) serving_forever->cancel();
    auto keep = std::move(self);
    if (active_count == 0) wakeup();
}

}  // namespace detail

void Server::close() { s_->close(); }
void Server::close_clients() {
    std::vector<detail::SocketTransport*> cs(s_->clients.begin(), s_->clients.end());
    for (auto* t : cs) t->close();
}
void Server::abort_clients() {
    std::vector<detail::SocketTransport*> cs(s_->clients.begin(), s_->clients.end());
    for (auto* t : cs) t->abort();
}
bool Server::is_serving() const { return s_->serving; }
std::vector<int> Server::sockets() const { return s_->socks; }
EventLoop& Server::get_loop() const { return *s_->loop; }
int Server::port() const {
    if (s_->socks.empty()) return 0;
    return SockAddr::local_of(s_->socks.front()).port();
}

namespace {
Coro<> server_start_serving(std::shared_ptr<detail::ServerState> s) {
    s->start_serving();
    co_await sleep(0);  // Python: give the loop a chance to start accepting
}
Coro<> server_wait_closed(std::shared_ptr<detail::ServerState> s) {
    if (s->waiters_done) co_return;
    Future<> w = s->loop->create_future<void>();
    s->waiters.push_back(w);
    co_await w;
}
Coro<> server_serve_forever(std::shared_ptr<detail::ServerState> s) {
    if (s->serving_forever) throw RuntimeError("server is already being awaited on serve_forever()");
    if (s->closed) throw RuntimeError("server is closed");
    s->start_serving();
    s->serving_forever = s->loop->create_future<void>();
    std::exception_ptr cancelled;
    try {
        Future<> f = *s->serving_forever;
        co_await f;
    } catch (const CancelledError&) {
        cancelled = std::current_exception();
    }
    s->serving_forever.reset();
    if (cancelled) {
        s->close();
        auto wc = server_wait_closed(s);
        co_await std::move(wc);
        std::rethrow_exception(cancelled);
    }
}
}  // namespace

Coro<> Server::start_serving() { return server_start_serving(s_); }
Coro<> Server::wait_closed() { return server_wait_closed(s_); }
Coro<> Server::serve_forever() { return server_serve_forever(s_); }

namespace detail {

namespace {

std::shared_ptr<ServerState> new_server(ProtocolFactory f, const ServerOptions& opts) {
    auto s = std::make_shared<ServerState>();
    s->loop = &running_loop();
    s->factory = std::move(f);
    s->backlog = opts.backlog;
    return s;
}

Coro<Server> finish_server(std::shared_ptr<ServerState> s, bool start) {
    s->registry = &LoopRegistry::of(*s->loop);
    s->link(*s->registry);
    s->self = s;
    if (start) {
        try {
            s->start_serving();
        } catch (...) {
            s->close();
            throw;
        }
        co_await sleep(0);  // Python: let the loop start accepting
    }
    co_return Server(std::move(s));
}

// Connect one non-blocking socket to ai; returns the connected descriptor.
Coro<int> connect_one(EventLoop* loop, AddrInfo ai, std::vector<AddrInfo> locals) {
    int fd = ::socket(ai.family, ai.type | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.proto);
    if (fd < 0) raise_os_error(errno, "socket");
    FdGuard guard(loop, fd);
    if (is_inet(ai.family)) set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)");
    if (!locals.empty()) {
        bool bound = false;
        int last = 0;
        std::string where;
        for (const auto& l : locals) {
            if (l.family != ai.family) continue;
            if (::bind(fd, l.addr.data(), l.addr.size()) == 0) {
                bound = true;
                break;
            }
            last = errno;
            where = l.addr.to_string();
        }
        if (!bound) {
            if (last == 0)
                throw OSError(EINVAL, "no matching local address with family=" + std::to_string(ai.family) +
                                          " found");
            raise_os_error(last, "error while attempting to bind on address " + where);
        }
    }
    if (::connect(fd, ai.addr.data(), ai.addr.size()) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) raise_os_error(errno, "connect " + ai.addr.to_string());
        auto w = loop->wait_writable(fd);
        co_await std::move(w);
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err != 0) raise_os_error(err, "connect " + ai.addr.to_string());
    }
    co_return guard.release();
}

}  // namespace

namespace {

// Python's _interleave_addrinfos: group by family (in order of first
// appearance), take first_family_count - 1 of the first family, then one of
// each family in turn.
std::vector<AddrInfo> interleave_addrinfos(std::vector<AddrInfo> infos, int first_family_count) {
    std::vector<int> families;
    std::vector<std::vector<AddrInfo>> by_family;
    for (auto& ai : infos) {
        std::size_t f = 0;
        while (f < families.size() && families[f] != ai.family) ++f;
        if (f == families.size()) {
            families.push_back(ai.family);
            by_family.emplace_back();
        }
        by_family[f].push_back(std::move(ai));
    }
    std::vector<AddrInfo> out;
    std::vector<std::size_t> pos(by_family.size(), 0);
    if (first_family_count > 1 && !by_family.empty()) {
        std::size_t k = std::min(static_cast<std::size_t>(first_family_count - 1), by_family[0].size());
        for (; pos[0] < k; ++pos[0]) out.push_back(std::move(by_family[0][pos[0]]));
    }
    for (bool more = true; more;) {
        more = false;
        for (std::size_t f = 0; f < by_family.size(); ++f) {
            if (pos[f] == by_family[f].size()) continue;
            out.push_back(std::move(by_family[f][pos[f]++]));
            more = true;
        }
    }
    return out;
}

struct Connected {
    int fd = -1;
    std::size_t index = 0;  // into the address list
};

// Python's staggered_race over _connect_sock (RFC 8305): attempt i+1 starts
// when attempt i has failed or `delay` seconds after attempt i started,
// whichever is first; the first attempt that connects wins. Every other
// attempt is then cancelled and awaited (a cancelled connect_one closes its
// socket; one that connected anyway is closed here), also when this
// coroutine is cancelled or an attempt raises something other than an
// OSError. The attempts' OSErrors go to *errors in the order they are seen.
Coro<Connected> staggered_connect(EventLoop* loop, std::vector<AddrInfo> infos, std::vector<AddrInfo> locals,
                                  double delay, std::vector<std::exception_ptr>* errors) {
    std::vector<Task<int>> tasks;
    std::vector<bool> seen;
    Connected won;
    std::exception_ptr escaped;  // cancellation, or an error that is not an OSError
    try {
        double next_at = 0;
        for (;;) {
            for (std::size_t i = 0; i < tasks.size() && won.fd < 0; ++i) {
                if (seen[i] || !tasks[i].done()) continue;
                seen[i] = true;
                std::exception_ptr e = tasks[i].exception();
                if (!e) {
                    won.fd = tasks[i].result();
                    won.index = i;
                } else if (is_os_error(e)) {
                    errors->push_back(std::move(e));
                } else {
                    std::rethrow_exception(e);
                }
            }
            if (won.fd >= 0) break;
            bool more = tasks.size() < infos.size();
            if (more && (tasks.empty() || tasks.back().done() || loop->time() >= next_at)) {
                auto c = connect_one(loop, infos[tasks.size()], locals);
                tasks.push_back(loop->create_task(std::move(c)));
                seen.push_back(false);
                next_at = loop->time() + delay;
                continue;
            }
            std::vector<Task<int>> pending;
            for (const auto& t : tasks)
                if (!t.done()) pending.push_back(t);
            if (pending.empty()) break;  // every address failed
            std::optional<double> timeout;
            if (more) timeout = std::max(0.0, next_at - loop->time());
            auto w = asyncio::wait(std::move(pending), asyncio::FIRST_COMPLETED, timeout);
            co_await std::move(w);
        }
    } catch (...) {
        escaped = std::current_exception();
    }
    for (std::size_t i = 0; i < tasks.size(); ++i)
        if (!tasks[i].done()) tasks[i].cancel();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (seen[i]) continue;
        Task<int> t = tasks[i];
        try {
            int other = co_await t;
            close_fd(*loop, other);
        } catch (...) {
            if (!t.done()) {  // this coroutine was cancelled again: the attempts clean up alone
                if (!escaped) escaped = std::current_exception();
                break;
            }
        }
    }
    if (escaped) {
        if (won.fd >= 0) close_fd(*loop, won.fd);
        std::rethrow_exception(escaped);
    }
    co_return won;
}

}  // namespace

Coro<std::shared_ptr<Transport>> create_connection(ProtocolFactory f, std::string host, int port,
                                                   ConnectOptions opts) {
    EventLoop& loop = running_loop();
    auto rc = resolve(loop, host, port, opts.family, SOCK_STREAM, 0);
    std::vector<AddrInfo> infos = co_await std::move(rc);
    auto c = create_connection_to(std::move(f), std::move(infos), std::move(opts));
    co_return co_await std::move(c);
}

Coro<std::shared_ptr<Transport>> create_connection_to(ProtocolFactory f, std::vector<AddrInfo> infos,
                                                      ConnectOptions opts) {
    EventLoop& loop = running_loop();
    std::vector<AddrInfo> locals;
    if (opts.local_addr) {
        auto lc = resolve(loop, opts.local_addr->host, opts.local_addr->port, opts.family, SOCK_STREAM, AI_PASSIVE);
        locals = co_await std::move(lc);
    }
    int interleave = opts.interleave.value_or(opts.happy_eyeballs_delay ? 1 : 0);
    if (interleave != 0) infos = interleave_addrinfos(std::move(infos), interleave);
    std::vector<std::exception_ptr> errors;
    int fd = -1;
    SockAddr peer;
    if (opts.happy_eyeballs_delay) {
        auto sc = staggered_connect(&loop, infos, locals, *opts.happy_eyeballs_delay, &errors);
        Connected won = co_await std::move(sc);
        fd = won.fd;
        if (fd >= 0) peer = infos[won.index].addr;
    } else {
        for (const auto& ai : infos) {
            try {
                auto c = connect_one(&loop, ai, locals);
                fd = co_await std::move(c);
                peer = ai.addr;
                break;
            } catch (const OSError&) {
                errors.push_back(std::current_exception());
            }
        }
    }
    if (fd < 0) {
        if (errors.empty()) throw OSError(EINVAL, "no address to connect to");
        raise_collected(errors);
    }
    FdGuard guard(&loop, fd);
    std::shared_ptr<BaseProtocol> proto = f();
    guard.release();
    co_return make_transport(loop, fd, std::move(proto), nullptr, std::move(peer));
}

Coro<std::shared_ptr<Transport>> create_unix_connection(ProtocolFactory f, std::string path) {
    EventLoop& loop = running_loop();
    AddrInfo ai;
    ai.family = AF_UNIX;
    ai.type = SOCK_STREAM;
    ai.addr = SockAddr::from_unix_path(path);
    auto c = connect_one(&loop, ai, {});
    int fd = co_await std::move(c);
    FdGuard guard(&loop, fd);
    std::shared_ptr<BaseProtocol> proto = f();
    guard.release();
    co_return make_transport(loop, fd, std::move(proto), nullptr, ai.addr);
}

Coro<Server> create_server(ProtocolFactory f, std::string host, int port, ServerOptions opts) {
    auto s = new_server(std::move(f), opts);
    EventLoop& loop = *s->loop;
    auto rc = resolve(loop, host, port, opts.family, SOCK_STREAM, AI_PASSIVE);
    std::vector<AddrInfo> infos = co_await std::move(rc);
    struct CloseAll {
        std::shared_ptr<ServerState>* s;
        bool armed = true;
        ~CloseAll() {
            if (!armed) return;
            for (int fd : (*s)->socks) close_fd(*(*s)->loop, fd);
            (*s)->socks.clear();
        }
    } cleanup{&s};
    std::vector<SockAddr> done;
    for (const auto& ai : infos) {
        bool dup = false;
        for (const auto& d : done) dup = dup || d == ai.addr;
        if (dup) continue;  // getaddrinfo may list an address once per protocol
        done.push_back(ai.addr);
        int fd = ::socket(ai.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.proto);
        if (fd < 0) raise_os_error(errno, "socket");
        s->socks.push_back(fd);
        if (opts.reuse_address.value_or(true)) set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)");
        if (opts.reuse_port) set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)");
        if (ai.family == AF_INET6) set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)");
        if (::bind(fd, ai.addr.data(), ai.addr.size()) < 0) {
            int err = errno;
            if (err == EADDRNOTAVAIL && ai.family == AF_INET6 && host.empty()) {
                // IPv6 not enabled on this host (Python's bpo-30945).
                s->socks.pop_back();
                close_fd(loop, fd);
                continue;
            }
            raise_os_error(err, "error while attempting to bind on address " + ai.addr.to_string());
        }
    }
    cleanup.armed = false;
    auto fin = finish_server(std::move(s), opts.start_serving);
    co_return co_await std::move(fin);
}

Coro<Server> create_unix_server(ProtocolFactory f, std::string path, ServerOptions opts) {
    auto s = new_server(std::move(f), opts);
    EventLoop& loop = *s->loop;
    SockAddr addr = SockAddr::from_unix_path(path);
    if (!path.empty() && path[0] != '\0') {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());  // stale socket
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) raise_os_error(errno, "socket");
    FdGuard guard(&loop, fd);
    if (::bind(fd, addr.data(), addr.size()) < 0) {
        int err = errno;
        if (err == EADDRINUSE) raise_os_error(err, "Address '" + path + "' is already in use");
        raise_os_error(err, "bind " + path);
    }
    if (!path.empty() && path[0] != '\0') {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0) {
            s->unix_path = path;
            s->unix_ino = st.st_ino;
        }
    }
    s->socks.push_back(guard.release());
    auto fin = finish_server(std::move(s), opts.start_serving);
    co_return co_await std::move(fin);
}

std::shared_ptr<Transport> connect_accepted_socket(ProtocolFactory f, int fd) {
    EventLoop& loop = running_loop();
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
        throw ValueError("A Stream Socket was expected, got fd " + std::to_string(fd));
    int flags = 1;
    ::ioctl(fd, FIONBIO, &flags);
    SockAddr peer;
    *peer.size_ptr() = SockAddr::capacity();
    if (::getpeername(fd, peer.data(), peer.size_ptr()) < 0) peer = SockAddr();
    return make_transport(loop, fd, f(), nullptr, std::move(peer));
}

// ---- datagram transport ---------------------------------------------------------

class DgramTransport final : public DatagramTransport, Registered {
public:
    DgramTransport(EventLoop& loop, int fd, std::shared_ptr<BaseProtocol> proto, std::optional<SockAddr> remote)
        : loop_(&loop), fd_(fd), proto_(std::move(proto)), remote_(std::move(remote)) {
        p_ = dynamic_cast<DatagramProtocol*>(proto_.get());
        if (!p_) {
            close_fd(loop, fd_);
            throw ValueError("a datagram endpoint needs a DatagramProtocol");
        }
    }
    ~DgramTransport() override {
        if (fd_ >= 0) close_fd(*loop_, fd_);
    }
    void start() {
        link(LoopRegistry::of(*loop_));
        self_ = std::static_pointer_cast<DgramTransport>(shared_from_this());
        try {
            p_->connection_made(this);
        } catch (...) {
            report(*loop_, "Fatal error: protocol.connection_made() call failed.", std::current_exception());
            force_close(std::current_exception());
            return;
        }
        if (!closing_) loop_->add_reader(fd_, Callback::bind<&on_readable>(this));
    }

    void sendto(std::string_view data) override {
        if (!remote_) throw ValueError("no address given and the endpoint is not connected");
        send_impl(data, nullptr);
    }
    void sendto(std::string_view data, const SockAddr& addr) override {
        if (remote_) {
            if (!(addr == *remote_)) throw ValueError("Invalid address: must be None or " + remote_->to_string());
            send_impl(data, nullptr);
            return;
        }
        send_impl(data, &addr);
    }
    void sendto(std::string_view data, const HostPort& addr) override {
        sendto(data, SockAddr::from_ip(addr.host, static_cast<std::uint16_t>(addr.port)));
    }
    void close() override {
        if (closing_) return;
        closing_ = true;
        loop_->remove_reader(fd_);
        if (queue_.empty()) {
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        }
    }
    void abort() override { force_close(nullptr); }
    bool is_closing() const override { return closing_; }
    std::size_t get_write_buffer_size() const override { return queued_bytes_; }
    std::any get_extra_info(std::string_view name, std::any dflt) const override {
        if (name == "peername") return remote_ ? std::any(*remote_) : dflt;
        if (name == "sockname") return fd_ < 0 ? dflt : std::any(SockAddr::local_of(fd_));
        if (name == "socket") return fd_ < 0 ? dflt : std::any(fd_);
        return dflt;
    }
    std::shared_ptr<BaseProtocol> get_protocol() const override { return proto_; }

private:
    static void on_readable(void* p) { static_cast<DgramTransport*>(p)->read_ready(); }
    static void on_writable(void* p) { static_cast<DgramTransport*>(p)->write_ready(); }
    static void lost_thunk(void* p) { static_cast<DgramTransport*>(p)->call_connection_lost(); }

    void send_impl(std::string_view data, const SockAddr* addr) {
        if (conn_lost_) {
            ++conn_lost_;
            return;
        }
        if (queue_.empty()) {
            ssize_t n = addr ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, addr->data(), addr->size())
                             : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n >= 0) return;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                error(make_os_error(errno, "sendto"));
                return;
            }
            loop_->add_writer(fd_, Callback::bind<&on_writable>(this));
        }
        queue_.emplace_back(std::string(data), addr ? std::optional<SockAddr>(*addr) : std::nullopt);
        queued_bytes_ += data.size();
    }
    void error(std::exception_ptr e) {
        try {
            p_->error_received(std::move(e));
        } catch (...) {
            report(*loop_, "Fatal error: protocol.error_received() call failed.", std::current_exception());
            force_close(std::current_exception());
        }
    }
    void read_ready() {
        if (conn_lost_) return;
        char* buf = shared_read_buffer();
        SockAddr from;
        *from.size_ptr() = SockAddr::capacity();
        ssize_t n = ::recvfrom(fd_, buf, kMaxRead, 0, from.data(), from.size_ptr());
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            error(make_os_error(errno, "recvfrom"));
            return;
        }
        try {
            p_->datagram_received(std::string_view(buf, static_cast<std::size_t>(n)), from);
        } catch (...) {
            report(*loop_, "Fatal error: protocol.datagram_received() call failed.", std::current_exception());
            force_close(std::current_exception());
        }
    }
    void write_ready() {
        while (!queue_.empty()) {
            auto& [data, addr] = queue_.front();
            ssize_t n = addr ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, addr->data(), addr->size())
                             : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                int err = errno;
                queued_bytes_ -= data.size();
                queue_.pop_front();
                error(make_os_error(err, "sendto"));
                if (conn_lost_) return;
                continue;
            }
            queued_bytes_ -= data.size();
            queue_.pop_front();
        }
        loop_->remove_writer(fd_);
        if (closing_) {
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        }
    }
    void force_close(std::exception_ptr exc) {
        if (conn_lost_) return;
        if (!queue_.empty()) {
            queue_.clear();
            queued_bytes_ = 0;
            loop_->remove_writer(fd_);
        }
        if (!closing_) {
            closing_ = true;
            loop_->remove_reader(fd_);
        }
        ++conn_lost_;
        schedule_connection_lost(std::move(exc));
    }
    void schedule_connection_lost(std::exception_ptr exc) {
        lost_exc_ = std::move(exc);
        loop_->call_soon(Callback::bind<&lost_thunk>(this));
    }
    void loop_closing() override {
        if (!conn_lost_) {
            queue_.clear();
            queued_bytes_ = 0;
            closing_ = true;
            ++conn_lost_;
        }
        call_connection_lost();
    }
    void call_connection_lost() {
        unlink();
        auto keep = std::move(self_);
        try {
            p_->connection_lost(lost_exc_);
        } catch (...) {
            report(*loop_, "Exception in callback protocol.connection_lost()", std::current_exception());
        }
        lost_exc_ = nullptr;
        close_fd(*loop_, fd_);
        fd_ = -1;
        proto_.reset();
        p_ = nullptr;
    }

    EventLoop* loop_;
    int fd_;
    std::shared_ptr<BaseProtocol> proto_;
    DatagramProtocol* p_ = nullptr;
    std::optional<SockAddr> remote_;
    std::shared_ptr<DgramTransport> self_;
    std::deque<std::pair<std::string, std::optional<SockAddr>>> queue_;
    std::size_t queued_bytes_ = 0;
    std::exception_ptr lost_exc_;
    int conn_lost_ = 0;
    bool closing_ = false;
};

namespace {
// One endpoint attempt: a socket of `family`, bound to `local` and
// connected to `remote` when given. Raises OSError.
std::shared_ptr<DgramTransport> open_datagram(EventLoop& loop, ProtocolFactory& f, int family, const AddrInfo* local,
                                              const AddrInfo* remote, const DatagramOptions& opts) {
    int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) raise_os_error(errno, "socket");
    FdGuard guard(&loop, fd);
    if (opts.reuse_port) set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)");
    if (opts.allow_broadcast) set_int_opt(fd, SOL_SOCKET, SO_BROADCAST, 1, "setsockopt(SO_BROADCAST)");
    if (local && ::bind(fd, local->addr.data(), local->addr.size()) < 0)
        raise_os_error(errno, "error while attempting to bind on address " + local->addr.to_string());
    std::optional<SockAddr> connected;
    if (remote) {
        if (::connect(fd, remote->addr.data(), remote->addr.size()) < 0)
            raise_os_error(errno, "connect " + remote->addr.to_string());
        connected = remote->addr;
    }
    auto t = std::make_shared<DgramTransport>(loop, guard.release(), f(), std::move(connected));
    t->start();
    return t;
}
}  // namespace

Coro<std::shared_ptr<DatagramTransport>> create_datagram_endpoint(ProtocolFactory f, DatagramOptions opts) {
    EventLoop& loop = running_loop();
    if (!opts.local_addr && !opts.remote_addr) {
        // Python: a socket of that family, neither bound nor connected.
        if (opts.family == 0) throw ValueError("unexpected address family");
        co_return open_datagram(loop, f, opts.family, nullptr, nullptr, opts);
    }
    std::vector<AddrInfo> locals, remotes;
    if (opts.local_addr) {
        auto c = resolve(loop, opts.local_addr->host, opts.local_addr->port, opts.family, SOCK_DGRAM, AI_PASSIVE);
        locals = co_await std::move(c);
    }
    if (opts.remote_addr) {
        auto c = resolve(loop, opts.remote_addr->host, opts.remote_addr->port, opts.family, SOCK_DGRAM, 0);
        remotes = co_await std::move(c);
    }
    // Pick the first family both sides have (Python pairs them by family).
    std::vector<std::exception_ptr> errors;
    const std::vector<AddrInfo>& primary = locals.empty() ? remotes : locals;
    for (const auto& p : primary) {
        const AddrInfo* local = locals.empty() ? nullptr : &p;
        const AddrInfo* remote = nullptr;
        if (!remotes.empty()) {
            for (const auto& r : remotes)
                if (r.family == p.family) {
                    remote = &r;
                    break;
                }
            if (!remote) continue;
        }
        try {
            co_return open_datagram(loop, f, p.family, local, remote, opts);
        } catch (const OSError&) {
            errors.push_back(std::current_exception());
        }
    }
    if (errors.empty()) throw ValueError("can not get address information");
    raise_collected(errors);
}

}  // namespace detail
}  // namespace asyncio
