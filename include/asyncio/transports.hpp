// Mirrors Python's asyncio.transports (plus the loop's create_connection/create_server family
// and asyncio.Server from base_events).
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/events.hpp"
#include "asyncio/protocols.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

struct AddrInfo;  // sockets.hpp

/// A host and port pair, Python's `(host, port)` address tuple.
struct HostPort {
    std::string host;
    int port = 0;
};

/// Common base of transports (Python's asyncio.BaseTransport).
///
/// Transports live in shared_ptr: the loop holds one while the connection is
/// open, and a protocol's callbacks receive a raw pointer valid until
/// connection_lost() returns (use shared_from_this() to keep one longer).
class BaseTransport {
public:
    virtual ~BaseTransport() = default;
    /// Close: buffered data is flushed in the background, then connection_lost(null) is called.
    virtual void close() = 0;
    /// True once close() or abort() was called (or the connection was lost).
    virtual bool is_closing() const = 0;
    /// Python's get_extra_info(name, default): "peername" and "sockname" give a
    /// SockAddr, "socket" gives the descriptor as int; anything else gives `dflt`.
    virtual std::any get_extra_info(std::string_view name, std::any dflt = {}) const = 0;
    /// The protocol this transport calls.
    virtual std::shared_ptr<BaseProtocol> get_protocol() const = 0;
};

/// A stream transport over a TCP or Unix socket (Python's asyncio.Transport).
///
/// Writes try the socket at once and buffer only what it did not take; the
/// protocol's pause_writing()/resume_writing() follow the buffer's water marks.
class Transport : public BaseTransport, public std::enable_shared_from_this<Transport> {
public:
    /// Write data without blocking; what the socket does not take is buffered.
    ///
    /// Raises: RuntimeError after write_eof(). After close() or a lost connection
    /// the data is dropped silently, as Python does.
    virtual void write(std::string_view data) = 0;
    void write(std::span<const std::byte> data) {
        write(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
    }
    /// Write each piece in turn (Python's writelines()).
    template <class Range>
    void writelines(const Range& pieces) {
        for (const auto& p : pieces) write(std::string_view(p));
    }
    /// Close the write end after the buffer is flushed (shutdown(SHUT_WR)).
    virtual void write_eof() = 0;
    /// True: sockets support write_eof().
    virtual bool can_write_eof() const = 0;
    /// Close at once: buffered data is lost; connection_lost(null) follows.
    virtual void abort() = 0;
    /// Stop calling data_received() until resume_reading(); no-op if already paused or closing.
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;
    virtual bool is_reading() const = 0;
    /// Set the write buffer's water marks (Python's defaults: high 64 KiB,
    /// low = high / 4). Raises: ValueError unless high >= low >= 0.
    virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                         std::optional<std::size_t> low = std::nullopt) = 0;
    /// {low, high}.
    virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const = 0;
    /// Bytes buffered, not yet taken by the socket.
    virtual std::size_t get_write_buffer_size() const = 0;
};

/// A datagram transport over a UDP (or Unix datagram) socket (Python's asyncio.DatagramTransport).
class DatagramTransport : public BaseTransport, public std::enable_shared_from_this<DatagramTransport> {
public:
    /// Send one datagram to the connected peer (remote_addr), or to addr.
    ///
    /// Raises: ValueError when addr differs from a connected endpoint's remote
    /// address or no address is known. After close() the datagram is dropped.
    virtual void sendto(std::string_view data) = 0;
    virtual void sendto(std::string_view data, const SockAddr& addr) = 0;
    /// Resolve host numerically (an IP literal) and send to it.
    virtual void sendto(std::string_view data, const HostPort& addr) = 0;
    /// Close at once; queued datagrams are dropped.
    virtual void abort() = 0;
    virtual std::size_t get_write_buffer_size() const = 0;
};

/// Options of create_connection() / open_connection() (Python's keyword arguments).
struct ConnectOptions {
    /// AF_UNSPEC (0), AF_INET or AF_INET6.
    int family = 0;
    /// Bind the socket to this address first.
    std::optional<HostPort> local_addr;
    /// Happy Eyeballs (RFC 8305), Python's happy_eyeballs_delay: seconds to
    /// give a connection attempt before starting the next address in
    /// parallel; an attempt that fails starts the next one at once. The first
    /// connection made wins; the other attempts are cancelled and their
    /// sockets closed. RFC 8305 suggests 0.25. nullopt: one address after the other.
    std::optional<double> happy_eyeballs_delay;
    /// Python's interleave: reorder the resolved addresses by family,
    /// alternating families, with `interleave` addresses of the first family
    /// first (0: keep getaddrinfo's order). nullopt: 1 with
    /// happy_eyeballs_delay, else 0.
    std::optional<int> interleave;
};

/// Options of create_server() / start_server().
struct ServerOptions {
    int family = 0;
    int backlog = 100;
    /// SO_REUSEADDR; Python's default on POSIX is true.
    std::optional<bool> reuse_address;
    bool reuse_port = false;
    /// Start accepting at once (Python's default); otherwise call start_serving().
    bool start_serving = true;
};

/// Options of create_datagram_endpoint().
struct DatagramOptions {
    std::optional<HostPort> local_addr;
    std::optional<HostPort> remote_addr;
    int family = 0;
    bool reuse_port = false;
    bool allow_broadcast = false;
};

namespace detail {
struct ServerState;
using ProtocolFactory = std::function<std::shared_ptr<BaseProtocol>()>;

template <class F>
using protocol_of_t = typename std::decay_t<decltype(std::declval<F&>()())>::element_type;

template <class F>
ProtocolFactory erase_factory(F f) {
    return [f = std::move(f)]() mutable -> std::shared_ptr<BaseProtocol> {
        std::shared_ptr<protocol_of_t<F>> p = f();
        return p;
    };
}
}  // namespace detail

/// A listening server (Python's asyncio.Server). A copyable handle to shared
/// state; the loop keeps the server alive while its sockets are open, even
/// if every handle is dropped.
class Server {
public:
    Server() = default;
    /// Stop listening and close the listening sockets; connections stay open.
    /// The server is closed asynchronously: use wait_closed().
    void close();
    /// Close every accepted connection (Python 3.13's close_clients()).
    void close_clients();
    /// Abort every accepted connection (Python 3.13's abort_clients()).
    void abort_clients();
    /// Start accepting (idempotent).
    Coro<> start_serving();
    /// Accept until cancelled; cancellation closes the server and waits for it.
    ///
    /// Raises: RuntimeError if already serving forever or closed.
    /// Cancellation: the server is closed and wait_closed() awaited, then
    ///   CancelledError propagates (Python's behaviour).
    Coro<> serve_forever();
    /// True while accepting.
    bool is_serving() const;
    /// Wait until the server is closed and every connection it accepted is gone
    /// (Python 3.12.1+). Returns at once if both already happened.
    /// Cancellation: safe; nothing is lost.
    Coro<> wait_closed();
    /// The listening descriptors (Python gives socket objects); empty once closed.
    std::vector<int> sockets() const;
    /// The bound TCP port of the first listening socket (an extension; 0 for Unix sockets).
    int port() const;
    EventLoop& get_loop() const;

    // internal
    explicit Server(std::shared_ptr<detail::ServerState> s) : s_(std::move(s)) {}
    const std::shared_ptr<detail::ServerState>& state() const { return s_; }

private:
    std::shared_ptr<detail::ServerState> s_;
};

namespace detail {
Coro<std::shared_ptr<Transport>> create_connection(ProtocolFactory f, std::string host, int port,
                                                   ConnectOptions opts);
// create_connection() past name resolution: connect to one of `infos` (the
// order, interleave and Happy Eyeballs as opts say). A test seam: it makes
// the address list deterministic where getaddrinfo's order is not.
Coro<std::shared_ptr<Transport>> create_connection_to(ProtocolFactory f, std::vector<AddrInfo> infos,
                                                      ConnectOptions opts);
Coro<std::shared_ptr<Transport>> create_unix_connection(ProtocolFactory f, std::string path);
Coro<Server> create_server(ProtocolFactory f, std::string host, int port, ServerOptions opts);
Coro<Server> create_unix_server(ProtocolFactory f, std::string path, ServerOptions opts);
Coro<std::shared_ptr<DatagramTransport>> create_datagram_endpoint(ProtocolFactory f, DatagramOptions opts);
std::shared_ptr<Transport> connect_accepted_socket(ProtocolFactory f, int fd);

template <class P, class T>
Coro<std::pair<std::shared_ptr<T>, std::shared_ptr<P>>> with_protocol(Coro<std::shared_ptr<T>> c) {
    std::shared_ptr<T> t = co_await std::move(c);
    std::shared_ptr<P> p = std::static_pointer_cast<P>(t->get_protocol());
    co_return std::pair<std::shared_ptr<T>, std::shared_ptr<P>>(std::move(t), std::move(p));
}
}  // namespace detail

/// Open a TCP connection to host:port and attach a protocol from `factory`
/// (a callable returning std::shared_ptr<P>); gives {transport, protocol}.
///
/// Every address getaddrinfo() gives is tried in turn, or staggered with
/// opts.happy_eyeballs_delay (Python's Happy Eyeballs); TCP_NODELAY is set.
/// Raises: ConnectionRefusedError and other OSErrors (the last error, or an
///   OSError "Multiple exceptions: ..." when the addresses failed differently);
///   gaierror when host does not resolve.
/// Cancellation: safe; every half-open socket is closed (with Happy Eyeballs
///   the attempts in flight are cancelled and awaited), no protocol is made.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::protocol_of_t<F>>>> create_connection(
    F factory, std::string host, int port, ConnectOptions opts = {}) {
    auto erased = detail::erase_factory(std::move(factory));
    auto c = detail::create_connection(std::move(erased), std::move(host), port, std::move(opts));
    return detail::with_protocol<detail::protocol_of_t<F>>(std::move(c));
}

/// Connect to the Unix socket at `path`; gives {transport, protocol}.
/// Raises: FileNotFoundError-like OSError (ENOENT), ConnectionRefusedError.
/// Cancellation: safe; the socket is closed.
template <class F>
Coro<std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::protocol_of_t<F>>>> create_unix_connection(
    F factory, std::string path) {
    auto erased = detail::erase_factory(std::move(factory));
    auto c = detail::create_unix_connection(std::move(erased), std::move(path));
    return detail::with_protocol<detail::protocol_of_t<F>>(std::move(c));
}

/// Listen on host:port and serve each connection with a protocol from `factory`.
///
/// An empty host listens on every interface, IPv4 and IPv6 (one socket each,
/// IPV6_V6ONLY set); port 0 picks a free port (see Server::port()).
/// Raises: OSError (EADDRINUSE: "[Errno 98] error while attempting to bind on
///   address ...: address already in use"), gaierror.
/// Cancellation: safe; sockets already opened are closed.
template <class F>
Coro<Server> create_server(F factory, std::string host, int port, ServerOptions opts = {}) {
    return detail::create_server(detail::erase_factory(std::move(factory)), std::move(host), port, opts);
}

/// Listen on the Unix socket at `path` (a stale socket file is replaced; the
/// file is removed when the server closes, as Python 3.13's cleanup_socket).
template <class F>
Coro<Server> create_unix_server(F factory, std::string path, ServerOptions opts = {}) {
    return detail::create_unix_server(detail::erase_factory(std::move(factory)), std::move(path), opts);
}

/// Create a UDP endpoint (Python's loop.create_datagram_endpoint); gives {transport, protocol}.
///
/// With remote_addr the socket is connected: sendto(data) sends there and
/// errors such as ICMP port unreachable reach error_received().
/// Raises: OSError; ValueError without local_addr or remote_addr.
template <class F>
Coro<std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<detail::protocol_of_t<F>>>>
create_datagram_endpoint(F factory, DatagramOptions opts) {
    auto erased = detail::erase_factory(std::move(factory));
    auto c = detail::create_datagram_endpoint(std::move(erased), std::move(opts));
    return detail::with_protocol<detail::protocol_of_t<F>>(std::move(c));
}

/// Wrap an already connected stream socket `fd` (taking ownership) in a transport.
/// Not a coroutine here: there is nothing to wait for (Python's is async).
/// Raises: ValueError if fd is not a stream socket.
template <class F>
std::pair<std::shared_ptr<Transport>, std::shared_ptr<detail::protocol_of_t<F>>> connect_accepted_socket(F factory,
                                                                                                          int fd) {
    auto t = detail::connect_accepted_socket(detail::erase_factory(std::move(factory)), fd);
    auto p = std::static_pointer_cast<detail::protocol_of_t<F>>(t->get_protocol());
    return {std::move(t), std::move(p)};
}

}  // namespace asyncio
