// Mirrors Python's socket module as asyncio uses it (socket.gaierror, socket
// addresses, socket objects) and the loop's low-level socket coroutines
// (loop.sock_recv, sock_sendall, sock_connect, sock_accept, getaddrinfo, ...),
// which are EventLoop members declared in events.hpp and defined here.
//
// Linux only. Every descriptor the library creates is non-blocking and
// close-on-exec; descriptors passed to the sock_* coroutines must be
// non-blocking (Python's loop.sock_* raise ValueError otherwise; we check too).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncio/events.hpp"
#include "asyncio/exceptions.hpp"
#include "asyncio/tasks.hpp"
#include "asyncio/threads.hpp"

namespace asyncio {

/// Name resolution failed (Python's socket.gaierror, an OSError).
///
/// errno_value() is the getaddrinfo error code (EAI_NONAME, EAI_AGAIN, ...,
/// negative on Linux, as Python's gaierror.errno); what() reads
/// "getaddrinfo nonexistent.invalid: Name or service not known".
class gaierror : public OSError {
public:
    gaierror(int eai_code, const std::string& what);
    const char* what() const noexcept override { return msg_.c_str(); }
    /// The EAI_* code (same as errno_value()).
    int eai_code() const noexcept { return errno_value(); }
    /// gai_strerror(eai_code()): Python's gaierror.strerror.
    std::string strerror() const;

private:
    std::string msg_;
};

/// Python's FileNotFoundError (ENOENT), e.g. connecting to a missing Unix socket path.
class FileNotFoundError : public OSError {
public:
    using OSError::OSError;
};
/// Python's PermissionError (EACCES, EPERM).
class PermissionError : public OSError {
public:
    using OSError::OSError;
};
/// EADDRINUSE (bind, listen): an OSError as in Python, where it has no class
/// of its own; a distinct type here (extension) so it can be caught alone,
/// as issue 6 asks. `catch (const OSError&)` still catches it.
class AddressInUseError : public OSError {
public:
    using OSError::OSError;
};

/// Raise the OSError subclass Python raises for errno `err` (OSError's errno→class map).
///
/// what() reads "<what>: <strerror>", e.g. "connect 127.0.0.1:8080: Connection refused".
/// ECONNREFUSED→ConnectionRefusedError, ECONNRESET→ConnectionResetError,
/// EPIPE/ESHUTDOWN→BrokenPipeError, ECONNABORTED→ConnectionAbortedError,
/// ETIMEDOUT→TimeoutError, ENOENT→FileNotFoundError, EACCES/EPERM→PermissionError,
/// EADDRINUSE→AddressInUseError (an extension: an OSError subclass);
/// anything else (EHOSTUNREACH, ...) is a plain OSError carrying the errno.
[[noreturn]] void raise_os_error(int err, const std::string& what);
/// The same mapping as an exception_ptr (for set_exception / connection_lost).
std::exception_ptr make_os_error(int err, const std::string& what);

/// A socket address: sockaddr_storage plus its length (Python's address tuples).
///
/// IPv4, IPv6 and Unix addresses. to_string() gives "127.0.0.1:8080",
/// "[::1]:8080" or the Unix path ("@name" for an abstract one).
class SockAddr {
public:
    /// An empty address (family AF_UNSPEC, size 0).
    SockAddr() noexcept;
    /// Copy `len` bytes of `sa`. Raises: ValueError if len exceeds sockaddr_storage.
    SockAddr(const sockaddr* sa, socklen_t len);

    /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "fe80::1%lo") and port.
    /// Raises: ValueError if `ip` is not a numeric address (no name lookup).
    static SockAddr from_ip(const std::string& ip, std::uint16_t port);
    /// An AF_UNIX address; a leading '\0' makes it abstract.
    /// Raises: ValueError if the path does not fit in sun_path.
    static SockAddr from_unix_path(std::string_view path);
    /// getsockname(fd) / getpeername(fd). Raises: OSError.
    static SockAddr local_of(int fd);
    static SockAddr peer_of(int fd);

    int family() const noexcept { return ss_.ss_family; }
    /// The numeric host ("127.0.0.1", "::1"), or the Unix path.
    std::string host() const;
    /// The port (0 for a Unix address).
    std::uint16_t port() const noexcept;
    /// "host:port", "[v6]:port", or the Unix path.
    std::string to_string() const;

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&ss_); }
    socklen_t size() const noexcept { return len_; }
    /// For calls that fill the address in (accept, recvfrom): capacity in, length out.
    socklen_t* size_ptr() noexcept { return &len_; }
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    bool empty() const noexcept { return len_ == 0; }

    friend bool operator==(const SockAddr& a, const SockAddr& b) noexcept;

private:
    sockaddr_storage ss_;
    socklen_t len_ = 0;
};

/// An owned socket descriptor (Python's socket.socket): closed on destruction.
///
/// Move-only. Sockets it creates are non-blocking and close-on-exec, ready
/// for the loop's sock_* coroutines (pass fileno()).
class Socket {
public:
    Socket() noexcept = default;
    /// Adopt an open descriptor.
    explicit Socket(int fd) noexcept : fd_(fd) {}
    Socket(Socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Socket& operator=(Socket&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() { close(); }

    /// socket.socket(family, type, proto), non-blocking. Raises: OSError.
    Socket(int family, int type, int proto = 0);
    /// socket.socketpair(): two connected non-blocking sockets. Raises: OSError.
    static std::pair<Socket, Socket> socketpair(int family = AF_UNIX, int type = SOCK_STREAM, int proto = 0);

    int fileno() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Give up ownership and return the descriptor.
    int detach() noexcept { return std::exchange(fd_, -1); }
    /// Close now (idempotent).
    void close() noexcept;

    /// socket.bind(). Raises: OSError ("bind 127.0.0.1:80: Address already in use").
    void bind(const SockAddr& addr);
    /// socket.listen(backlog). Raises: OSError.
    void listen(int backlog = 100);
    /// setsockopt with an int value. Raises: OSError.
    void setsockopt(int level, int option, int value);
    /// getsockopt of an int value. Raises: OSError.
    int getsockopt(int level, int option) const;
    /// socket.setblocking(flag). Raises: OSError.
    void setblocking(bool blocking);
    /// socket.shutdown(how) with SHUT_RD, SHUT_WR or SHUT_RDWR. Raises: OSError.
    void shutdown(int how);
    SockAddr getsockname() const { return SockAddr::local_of(fd_); }
    SockAddr getpeername() const { return SockAddr::peer_of(fd_); }

private:
    int fd_ = -1;
};

/// One getaddrinfo() result (Python's (family, type, proto, canonname, sockaddr) tuple).
struct AddrInfo {
    int family = 0;
    int type = 0;
    int proto = 0;
    std::string canonname;
    SockAddr addr;
};

namespace detail {
/// The blocking resolver call behind loop.getaddrinfo (runs on the executor).
/// An empty host means "no host" (Python's None). Raises: gaierror.
std::vector<AddrInfo> getaddrinfo_blocking(const std::string& host, const std::string& port, int family, int type,
                                           int proto, int flags);
/// Raises: gaierror.
std::pair<std::string, std::string> getnameinfo_blocking(const SockAddr& addr, int flags);
}  // namespace detail

}  // namespace asyncio
