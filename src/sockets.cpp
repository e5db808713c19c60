// Out-of-line parts of asyncio/sockets.hpp: errors, addresses, Socket, name
// resolution on the executor, and the loop's sock_* coroutines.
//
// Every sock_* coroutine follows the readiness model: try the syscall first,
// and only on EAGAIN wait with loop.wait_readable/wait_writable (which a
// cancellation interrupts cleanly), then try again. A socket read in a loop
// thus costs one syscall per call while data is flowing.
#include "asyncio/sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace asyncio {

// ---- errors ----------------------------------------------------------------------

namespace {
template <class E>
std::exception_ptr make(int err, const std::string& what) {
    return std::make_exception_ptr(E(err, what));
}
}  // namespace

gaierror::gaierror(int eai_code, const std::string& what) : OSError(eai_code, what), msg_(what) {}

std::string gaierror::strerror() const { return ::gai_strerror(eai_code()); }

std::exception_ptr make_os_error(int err, const std::string& what) {
    switch (err) {
        case ECONNREFUSED: return make<ConnectionRefusedError>(err, what);
        case ECONNRESET: return make<ConnectionResetError>(err, what);
        case EPIPE:
        case ESHUTDOWN: return make<BrokenPipeError>(err, what);
        case ECONNABORTED: return make<ConnectionAbortedError>(err, what);
        case ETIMEDOUT: return std::make_exception_ptr(TimeoutError(what + ": " + std::strerror(err)));
        case ENOENT: return make<FileNotFoundError>(err, what);
        case EACCES:
        case EPERM: return make<PermissionError>(err, what);
        case EADDRINUSE: return make<AddressInUseError>(err, what);
        default: return make<OSError>(err, what);
    }
}

void raise_os_error(int err, const std::string& what) { std::rethrow_exception(make_os_error(err, what)); }

// ---- SockAddr -----------------------------------------------------------------------

SockAddr::SockAddr() noexcept : ss_{} {}

SockAddr::SockAddr(const sockaddr* sa, socklen_t len) : ss_{} {
    if (len > sizeof ss_) throw ValueError("socket address too long");
    std::memcpy(&ss_, sa, len);
    len_ = len;
}

SockAddr SockAddr::from_ip(const std::string& ip, std::uint16_t port) {
    SockAddr a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len_ = sizeof(sockaddr_in);
        return a;
    }
    a.ss_ = {};
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
    std::string host = ip;
    std::string scope;
    if (auto pct = host.find('%'); pct != std::string::npos) {
        scope = host.substr(pct + 1);
        host.resize(pct);
    }
    if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1)
        throw ValueError("not a numeric IPv4 or IPv6 address: '" + ip + "'");
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    if (!scope.empty()) {
        unsigned idx = ::if_nametoindex(scope.c_str());
        if (idx == 0) {
            char* end = nullptr;
            unsigned long n = std::strtoul(scope.c_str(), &end, 10);
            if (!end || *end) throw ValueError("unknown IPv6 scope: '" + scope + "'");
            idx = static_cast<unsigned>(n);
        }
        v6->sin6_scope_id = idx;
    }
    a.len_ = sizeof(sockaddr_in6);
    return a;
}

SockAddr SockAddr::from_unix_path(std::string_view path) {
    SockAddr a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.ss_);
    if (path.size() >= sizeof un->sun_path) throw ValueError("AF_UNIX path too long");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                     (path.empty() || path[0] != '\0' ? 1 : 0));
    return a;
}

SockAddr SockAddr::local_of(int fd) {
    SockAddr a;
    a.len_ = capacity();
    if (::getsockname(fd, a.data(), &a.len_) < 0) raise_os_error(errno, "getsockname");
    return a;
}

SockAddr SockAddr::peer_of(int fd) {
    SockAddr a;
    a.len_ = capacity();
    if (::getpeername(fd, a.data(), &a.len_) < 0) raise_os_error(errno, "getpeername");
    return a;
}

std::string SockAddr::host() const {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (ss_.ss_family) {
        case AF_INET:
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
            return buf;
        case AF_INET6:
            ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, buf, sizeof buf);
            return buf;
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
            std::size_t off = offsetof(sockaddr_un, sun_path);
            if (len_ <= off) return "";  // unnamed
            std::size_t n = len_ - off;
            if (un->sun_path[0] == '\0') return std::string(un->sun_path, n);  // abstract
            return std::string(un->sun_path, ::strnlen(un->sun_path, n));
        }
        default: return "";
    }
}

std::uint16_t SockAddr::port() const noexcept {
    if (ss_.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
    if (ss_.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
    return 0;
}

std::string SockAddr::to_string() const {
    switch (ss_.ss_family) {
        case AF_INET: return host() + ":" + std::to_string(port());
        case AF_INET6: return "[" + host() + "]:" + std::to_string(port());
        case AF_UNIX: {
            std::string h = host();
            if (!h.empty() && h[0] == '\0') h[0] = '@';
            return h;
        }
        default: return "<address family " + std::to_string(ss_.ss_family) + ">";
    }
}

bool operator==(const SockAddr& a, const SockAddr& b) noexcept {
    return a.len_ == b.len_ && std::memcmp(&a.ss_, &b.ss_, a.len_) == 0;
}

// ---- Socket ---------------------------------------------------------------------------

Socket::Socket(int family, int type, int proto) {
    fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd_ < 0) raise_os_error(errno, "socket");
}

std::pair<Socket, Socket> Socket::socketpair(int family, int type, int proto) {
    int sv[2];
    if (::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto, sv) < 0) raise_os_error(errno, "socketpair");
    return {Socket(sv[0]), Socket(sv[1])};
}

void Socket::close() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void Socket::bind(const SockAddr& addr) {
    if (::bind(fd_, addr.data(), addr.size()) < 0) raise_os_error(errno, "bind " + addr.to_string());
}

void Socket::listen(int backlog) {
    if (::listen(fd_, backlog) < 0) raise_os_error(errno, "listen");
}

void Socket::setsockopt(int level, int option, int value) {
    if (::setsockopt(fd_, level, option, &value, sizeof value) < 0) raise_os_error(errno, "setsockopt");
}

int Socket::getsockopt(int level, int option) const {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd_, level, option, &value, &len) < 0) raise_os_error(errno, "getsockopt");
    return value;
}

void Socket::setblocking(bool blocking) {
    int fl = ::fcntl(fd_, F_GETFL);
    if (fl < 0) raise_os_error(errno, "fcntl");
    fl = blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK);
    if (::fcntl(fd_, F_SETFL, fl) < 0) raise_os_error(errno, "fcntl");
}

void Socket::shutdown(int how) {
    if (::shutdown(fd_, how) < 0) raise_os_error(errno, "shutdown");
}

// ---- name resolution --------------------------------------------------------------------

namespace detail {

std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, int family, int type,
                                           int proto, int flags) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_protocol = proto;
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.empty() ? nullptr : port.c_str(), &hints, &res);
    if (rc != 0) {
        std::string what = "getaddrinfo " + (host.empty() ? std::string("None") : host);
        if (rc == EAI_SYSTEM) raise_os_error(errno, what);
        throw gaierror(rc, what + ": " + ::gai_strerror(rc));
    }
    std::vector<AddrInfo> out;
    try {
        for (addrinfo* p = res; p; p = p->ai_next) {
            AddrInfo ai;
            ai.family = p->ai_family;
            ai.type = p->ai_socktype;
            ai.proto = p->ai_protocol;
            if (p->ai_canonname) ai.canonname = p->ai_canonname;
            ai.addr = SockAddr(p->ai_addr, p->ai_addrlen);
            out.push_back(std::move(ai));
        }
    } catch (...) {
        ::freeaddrinfo(res);
        throw;
    }
    ::freeaddrinfo(res);
    return out;
}

std::pair<std::string, std::string> getnameinfo_blocking(const SockAddr& addr, int flags) {
    char host[NI_MAXHOST] = {};
    char serv[NI_MAXSERV] = {};
    int rc = ::getnameinfo(addr.data(), addr.size(), host, sizeof host, serv, sizeof serv, flags);
    if (rc != 0) {
        std::string what = "getnameinfo " + addr.to_string();
        if (rc == EAI_SYSTEM) raise_os_error(errno, what);
        throw gaierror(rc, what + ": " + ::gai_strerror(rc));
    }
    return {host, serv};
}

namespace {
// A numeric host and port resolve without any lookup: no thread hop needed.
bool is_numeric(const std::string& host, const std::string& port) {
    if (host.empty() || port.empty()) return false;
    for (char c : port)
        if (c < '0' || c > '9') return false;
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}
}  // namespace

}  // namespace detail

Coro<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string host, int port, int family, int type, int proto,
                                                   int flags) {
    return getaddrinfo(std::move(host), std::to_string(port), family, type, proto, flags);
}

Coro<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string host, std::string port, int family, int type,
                                                   int proto, int flags) {
    if (detail::is_numeric(host, port))
        co_return detail::getaddrinfo_blocking(host, port, family, type, proto, flags | AI_NUMERICHOST | AI_NUMERICSERV);
    Future<std::vector<AddrInfo>> fut =
        run_in_executor(nullptr, &detail::getaddrinfo_blocking, std::move(host), std::move(port), family, type, proto,
                        flags);
    std::vector<AddrInfo> out = co_await std::move(fut);
    co_return out;
}

Coro<std::pair<std::string, std::string>> EventLoop::getnameinfo(SockAddr addr, int flags) {
    Future<std::pair<std::string, std::string>> fut =
        run_in_executor(nullptr, &detail::getnameinfo_blocking, std::move(addr), flags);
    std::pair<std::string, std::string> out = co_await std::move(fut);
    co_return out;
}

// ---- sock_* coroutines ----------------------------------------------------------------------

namespace {
bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// "<op> <peer>" for error messages; the peer may be gone already.
std::string describe(const char* op, int fd) {
    SockAddr a;
    *a.size_ptr() = SockAddr::capacity();
    if (::getpeername(fd, a.data(), a.size_ptr()) == 0 && a.family() != AF_UNIX) return std::string(op) + " " + a.to_string();
    return std::string(op) + " fd " + std::to_string(fd);
}

void check_fd(const EventLoop& loop, int fd) {
    if (fd < 0) throw ValueError("invalid file descriptor: " + std::to_string(fd));
    if (loop.get_debug()) {  // as Python: checked in debug mode only
        int fl = ::fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK)) throw ValueError("the socket must be non-blocking");
    }
}
}  // namespace

Coro<void> EventLoop::sock_connect(int fd, SockAddr addr) {
    check_fd(*this, fd);
    if (::connect(fd, addr.data(), addr.size()) == 0) co_return;
    int err = errno;
    // EINTR: the connection goes on asynchronously, as EINPROGRESS.
    if (err != EINPROGRESS && err != EINTR && !would_block(err)) raise_os_error(err, "connect " + addr.to_string());
    co_await wait_writable(fd);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr != 0) raise_os_error(soerr, "connect " + addr.to_string());
}

Coro<std::pair<Socket, SockAddr>> EventLoop::sock_accept(int fd) {
    check_fd(*this, fd);
    for (;;) {
        SockAddr peer;
        *peer.size_ptr() = SockAddr::capacity();
        int c = ::accept4(fd, peer.data(), peer.size_ptr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) co_return std::pair<Socket, SockAddr>(Socket(c), peer);
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, "accept fd " + std::to_string(fd));
        co_await wait_readable(fd);
    }
}

Coro<std::size_t> EventLoop::sock_recv_into(int fd, std::span<std::byte> buf) {
    check_fd(*this, fd);
    for (;;) {
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n >= 0) co_return static_cast<std::size_t>(n);
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, describe("recv", fd));
        co_await wait_readable(fd);
    }
}

Coro<std::size_t> EventLoop::sock_recv_into(int fd, std::span<char> buf) {
    return sock_recv_into(fd, std::as_writable_bytes(buf));
}

Coro<std::string> EventLoop::sock_recv(int fd, std::size_t nbytes) {
    check_fd(*this, fd);
    std::string out(nbytes, '\0');
    for (;;) {
        ssize_t n = ::recv(fd, out.data(), nbytes, 0);
        if (n >= 0) {
            out.resize(static_cast<std::size_t>(n));
            co_return out;
        }
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, describe("recv", fd));
        co_await wait_readable(fd);
    }
}

Coro<void> EventLoop::sock_sendall(int fd, std::string_view data) {
    check_fd(*this, fd);
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += static_cast<std::size_t>(n);
            continue;
        }
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, describe("send", fd));
        co_await wait_writable(fd);
    }
}

Coro<void> EventLoop::sock_sendall(int fd, std::span<const std::byte> data) {
    return sock_sendall(fd, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

Coro<std::pair<std::string, SockAddr>> EventLoop::sock_recvfrom(int fd, std::size_t bufsize) {
    check_fd(*this, fd);
    std::string out(bufsize, '\0');
    for (;;) {
        SockAddr from;
        *from.size_ptr() = SockAddr::capacity();
        ssize_t n = ::recvfrom(fd, out.data(), bufsize, 0, from.data(), from.size_ptr());
        if (n >= 0) {
            out.resize(static_cast<std::size_t>(n));
            co_return std::pair<std::string, SockAddr>(std::move(out), from);
        }
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, "recvfrom fd " + std::to_string(fd));
        co_await wait_readable(fd);
    }
}

Coro<std::size_t> EventLoop::sock_sendto(int fd, std::string_view data, SockAddr addr) {
    check_fd(*this, fd);
    for (;;) {
        ssize_t n = ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL, addr.empty() ? nullptr : addr.data(),
                             addr.size());
        if (n >= 0) co_return static_cast<std::size_t>(n);
        int err = errno;
        if (err == EINTR) continue;
        if (!would_block(err)) raise_os_error(err, "sendto " + addr.to_string());
        co_await wait_writable(fd);
    }
}

}  // namespace asyncio
