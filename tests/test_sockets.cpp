// Tests for the loop's low-level socket layer: sock_* coroutines, SockAddr,
// Socket, getaddrinfo/getnameinfo and the errno → exception mapping.
// Loopback only (socketpair, 127.0.0.1, ::1).
// Spec: CPython 3.12 Lib/test/test_asyncio/test_sock_lowlevel.py and
// test_base_events.py (getaddrinfo), Lib/test/test_socket.py (gaierror).
#include <gtest/gtest.h>

#include <asyncio/asyncio.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "support/run_test.hpp"

using asyncio::SockAddr;
using asyncio::Socket;
using asyncio::testing::open_fd_count;
using asyncio::testing::run_test;

namespace {

asyncio::EventLoop& loop() { return asyncio::get_running_loop(); }

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

// A listening TCP socket on host:0 (an ephemeral port).
Socket listener(const std::string& host, int backlog = 16) {
    SockAddr where = SockAddr::from_ip(host, 0);
    Socket s(where.family(), SOCK_STREAM);
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    s.bind(where);
    s.listen(backlog);
    return s;
}

// Read exactly n bytes (or until EOF).
asyncio::Coro<std::string> recv_all(int fd, std::size_t n) {
    std::string out;
    while (out.size() < n) {
        std::string chunk = co_await loop().sock_recv(fd, 65536);
        if (chunk.empty()) break;
        out += chunk;
    }
    co_return out;
}

// ---- SockAddr ----------------------------------------------------------------------

TEST(SockAddr, ToStringForEachFamily) {
    EXPECT_EQ(SockAddr::from_ip("127.0.0.1", 8080).to_string(), "127.0.0.1:8080");
    EXPECT_EQ(SockAddr::from_ip("::1", 8080).to_string(), "[::1]:8080");
    EXPECT_EQ(SockAddr::from_ip("[::1]", 1).family(), AF_INET6);
    EXPECT_EQ(SockAddr::from_unix_path("/tmp/x.sock").to_string(), "/tmp/x.sock");
    EXPECT_EQ(SockAddr::from_unix_path(std::string_view("\0abs", 4)).to_string(), "@abs");
    SockAddr a = SockAddr::from_ip("10.1.2.3", 53);
    EXPECT_EQ(a.host(), "10.1.2.3");
    EXPECT_EQ(a.port(), 53);
    EXPECT_EQ(a, SockAddr::from_ip("10.1.2.3", 53));
    EXPECT_TRUE(SockAddr().empty());
}

TEST(SockAddr, NonNumericHostIsAValueError) {
    EXPECT_THROW(SockAddr::from_ip("localhost", 80), asyncio::ValueError);
    EXPECT_THROW(SockAddr::from_ip("1.2.3.4.5", 80), asyncio::ValueError);
}

// ---- errors ------------------------------------------------------------------------------

template <class E>
bool raises_as(int err) {
    try {
        asyncio::raise_os_error(err, "op");
    } catch (const E& e) {
        return e.errno_value() == (err == ETIMEDOUT ? ETIMEDOUT : err);
    } catch (...) {
    }
    return false;
}

TEST(SockErrors, RaiseOsErrorMapsErrnoToPythonsClasses) {
    EXPECT_TRUE(raises_as<asyncio::ConnectionRefusedError>(ECONNREFUSED));
    EXPECT_TRUE(raises_as<asyncio::ConnectionResetError>(ECONNRESET));
    EXPECT_TRUE(raises_as<asyncio::BrokenPipeError>(EPIPE));
    EXPECT_TRUE(raises_as<asyncio::ConnectionAbortedError>(ECONNABORTED));
    EXPECT_TRUE(raises_as<asyncio::TimeoutError>(ETIMEDOUT));
    EXPECT_TRUE(raises_as<asyncio::FileNotFoundError>(ENOENT));
    EXPECT_TRUE(raises_as<asyncio::PermissionError>(EACCES));
    EXPECT_TRUE(raises_as<asyncio::AddressInUseError>(EADDRINUSE));
    EXPECT_TRUE(raises_as<asyncio::OSError>(EADDRINUSE));
    EXPECT_FALSE(raises_as<asyncio::ConnectionError>(EADDRINUSE));
    EXPECT_FALSE(raises_as<asyncio::AddressInUseError>(EHOSTUNREACH));
    // No errno (Python's None): the message alone, no ": Success".
    EXPECT_STREQ(asyncio::OSError(0, "Multiple exceptions: a, b").what(), "Multiple exceptions: a, b");
    try {
        asyncio::raise_os_error(ECONNREFUSED, "connect 127.0.0.1:8080");
    } catch (const asyncio::ConnectionError& e) {
        EXPECT_STREQ(e.what(), "connect 127.0.0.1:8080: Connection refused");
    }
}

TEST(SockErrors, ConnectionRefusedNamesOperationAndPeer) {
    std::string what;
    bool refused = false;
    run_test([&]() -> asyncio::Coro<> {
        std::uint16_t port;
        {
            Socket probe(AF_INET, SOCK_STREAM);  // bound, never listening: connects are refused
            probe.bind(SockAddr::from_ip("127.0.0.1", 0));
            port = probe.getsockname().port();
        }
        Socket c(AF_INET, SOCK_STREAM);
        try {
            co_await loop().sock_connect(c.fileno(), SockAddr::from_ip("127.0.0.1", port));
        } catch (const asyncio::ConnectionRefusedError& e) {
            refused = true;
            what = e.what();
            EXPECT_EQ(e.errno_value(), ECONNREFUSED);
        }
        EXPECT_EQ(what, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
    });
    EXPECT_TRUE(refused);
}

TEST(SockErrors, RecvFromAResetPeerRaisesConnectionResetError) {
    bool reset = false;
    run_test([&]() -> asyncio::Coro<> {
        Socket l = listener("127.0.0.1");
        Socket c(AF_INET, SOCK_STREAM);
        co_await loop().sock_connect(c.fileno(), l.getsockname());
        auto accepted = co_await loop().sock_accept(l.fileno());
        linger lg{1, 0};  // close with RST
        ::setsockopt(accepted.first.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        accepted.first.close();
        try {
            co_await loop().sock_recv(c.fileno(), 10);
        } catch (const asyncio::ConnectionResetError& e) {
            reset = std::string(e.what()).find("Connection reset by peer") != std::string::npos;
        }
    });
    EXPECT_TRUE(reset);
}

TEST(SockErrors, SendallToAClosedPeerRaisesBrokenPipeError) {
    bool broken = false;
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        pair.second.close();
        try {
            co_await loop().sock_sendall(pair.first.fileno(), "data");
        } catch (const asyncio::BrokenPipeError& e) {
            broken = std::string(e.what()).rfind("send ", 0) == 0;
        }
    });
    EXPECT_TRUE(broken);
}

TEST(SockErrors, BlockingSocketIsAValueErrorInDebugMode) {
    bool raised = false;
    run_test(
        [&]() -> asyncio::Coro<> {
            auto pair = Socket::socketpair();
            pair.first.setblocking(true);
            try {
                co_await loop().sock_recv(pair.first.fileno(), 1);
            } catch (const asyncio::ValueError&) {
                raised = true;
            }
        },
        {.debug = true});
    EXPECT_TRUE(raised);
}

// ---- round trips -----------------------------------------------------------------------------

TEST(SockSocketpair, SendallRecvAndRecvIntoRoundTrip) {
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        int a = pair.first.fileno(), b = pair.second.fileno();
        co_await loop().sock_sendall(a, "hello");
        std::string got = co_await loop().sock_recv(b, 100);
        EXPECT_EQ(got, "hello");

        co_await loop().sock_sendall(b, std::string_view("world"));
        char buf[16];
        std::size_t n = co_await loop().sock_recv_into(a, std::span<char>(buf));
        EXPECT_EQ(std::string(buf, n), "world");

        pair.first.close();
        std::string eof = co_await loop().sock_recv(b, 100);
        EXPECT_EQ(eof, "");  // EOF
    });
}

TEST(SockSocketpair, RecvWaitsUntilDataArrives) {
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        auto reader = asyncio::create_task(loop().sock_recv(pair.second.fileno(), 10));
        co_await asyncio::sleep(0);
        EXPECT_FALSE(reader.done());
        co_await loop().sock_sendall(pair.first.fileno(), "late");
        std::string got = co_await reader;
        EXPECT_EQ(got, "late");
    });
}

asyncio::Coro<> tcp_round_trip(std::string host) {
    Socket l = listener(host);
    SockAddr where = l.getsockname();
    auto acceptor = asyncio::create_task(loop().sock_accept(l.fileno()));
    co_await asyncio::sleep(0);  // the accept waits for a connection
    Socket c(where.family(), SOCK_STREAM);
    co_await loop().sock_connect(c.fileno(), where);
    std::pair<Socket, SockAddr> accepted = co_await acceptor;
    EXPECT_EQ(accepted.second, c.getsockname());
    EXPECT_EQ(accepted.first.getpeername().to_string(), c.getsockname().to_string());

    std::string big = pattern(256 * 1024);
    auto sender = asyncio::create_task(loop().sock_sendall(c.fileno(), big));
    std::string got = co_await recv_all(accepted.first.fileno(), big.size());
    co_await sender;
    EXPECT_TRUE(got == big);

    co_await loop().sock_sendall(accepted.first.fileno(), "pong");
    std::string reply = co_await loop().sock_recv(c.fileno(), 10);
    EXPECT_EQ(reply, "pong");
}

TEST(SockTcp, ConnectAcceptRoundTripIPv4) {
    run_test([]() -> asyncio::Coro<> { co_await tcp_round_trip("127.0.0.1"); });
}

TEST(SockTcp, ConnectAcceptRoundTripIPv6) {
    run_test([]() -> asyncio::Coro<> { co_await tcp_round_trip("::1"); });
}

TEST(SockUdp, SendtoRecvfromRoundTrip) {
    run_test([&]() -> asyncio::Coro<> {
        Socket a(AF_INET, SOCK_DGRAM), b(AF_INET, SOCK_DGRAM);
        a.bind(SockAddr::from_ip("127.0.0.1", 0));
        b.bind(SockAddr::from_ip("127.0.0.1", 0));
        std::size_t sent = co_await loop().sock_sendto(a.fileno(), "datagram", b.getsockname());
        EXPECT_EQ(sent, 8u);
        auto got = co_await loop().sock_recvfrom(b.fileno(), 100);
        EXPECT_EQ(got.first, "datagram");
        EXPECT_EQ(got.second, a.getsockname());
    });
}

TEST(SockSendall, PartialSendsWithAFullSocketBuffer) {
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        pair.first.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
        std::string data = pattern(1 << 20);
        auto writer = asyncio::create_task(loop().sock_sendall(pair.first.fileno(), data));
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        EXPECT_FALSE(writer.done());  // the buffer is full: sendall waits between partial sends
        std::string got = co_await recv_all(pair.second.fileno(), data.size());
        co_await writer;
        EXPECT_EQ(got.size(), data.size());
        EXPECT_TRUE(got == data);
    });
}

// ---- cancellation: nothing consumed, nothing leaked -----------------------------------------------

// Let `task` start waiting (`steps` loop iterations), cancel it, and report
// whether awaiting it raised CancelledError.
template <class T>
asyncio::Coro<bool> cancel_and_check(asyncio::Task<T> task, int steps = 2) {
    for (int i = 0; i < steps; ++i) co_await asyncio::sleep(0);
    EXPECT_FALSE(task.done());
    task.cancel();
    try {
        co_await task;
    } catch (const asyncio::CancelledError&) {
        co_return true;
    }
    co_return false;
}

TEST(SockCancel, RecvConsumesNothing) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        int b = pair.second.fileno();
        auto t_c1 = asyncio::create_task(loop().sock_recv(b, 10));
        bool c1 = co_await cancel_and_check(t_c1);
        EXPECT_TRUE(c1);
        char buf[4];
        auto t_c2 = asyncio::create_task(loop().sock_recv_into(b, std::span<char>(buf)));
        bool c2 = co_await cancel_and_check(t_c2);
        EXPECT_TRUE(c2);
        co_await loop().sock_sendall(pair.first.fileno(), "kept");
        std::string got = co_await loop().sock_recv(b, 10);
        EXPECT_EQ(got, "kept");
    });
    EXPECT_EQ(open_fd_count(), before);
}

TEST(SockCancel, RecvfromConsumesNothing) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        Socket a(AF_INET, SOCK_DGRAM), b(AF_INET, SOCK_DGRAM);
        a.bind(SockAddr::from_ip("127.0.0.1", 0));
        b.bind(SockAddr::from_ip("127.0.0.1", 0));
        auto t_c = asyncio::create_task(loop().sock_recvfrom(b.fileno(), 100));
        bool c = co_await cancel_and_check(t_c);
        EXPECT_TRUE(c);
        co_await loop().sock_sendto(a.fileno(), "one", b.getsockname());
        auto got = co_await loop().sock_recvfrom(b.fileno(), 100);
        EXPECT_EQ(got.first, "one");
    });
    EXPECT_EQ(open_fd_count(), before);
}

TEST(SockCancel, AcceptTakesNoConnection) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        Socket l = listener("127.0.0.1");
        auto t_c = asyncio::create_task(loop().sock_accept(l.fileno()));
        bool c = co_await cancel_and_check(t_c);
        EXPECT_TRUE(c);
        Socket client(AF_INET, SOCK_STREAM);
        co_await loop().sock_connect(client.fileno(), l.getsockname());
        auto accepted = co_await loop().sock_accept(l.fileno());
        EXPECT_EQ(accepted.second, client.getsockname());
    });
    EXPECT_EQ(open_fd_count(), before);
}

TEST(SockCancel, ConnectIsAbandonedAndTheSocketStaysUsableToClose) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        // Backlog 0 holds one pending connection; the kernel drops the next SYN,
        // so a second connect stays in progress until cancelled.
        Socket l = listener("127.0.0.1", 0);
        Socket first(AF_INET, SOCK_STREAM);
        co_await loop().sock_connect(first.fileno(), l.getsockname());
        Socket second(AF_INET, SOCK_STREAM);
        auto t_c = asyncio::create_task(loop().sock_connect(second.fileno(), l.getsockname()));
        bool c = co_await cancel_and_check(t_c);
        EXPECT_TRUE(c);
    });
    EXPECT_EQ(open_fd_count(), before);
}

TEST(SockCancel, SendallDeliversAPrefixAndNothingElse) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair();
        pair.first.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
        std::string data = pattern(1 << 20);
        auto t_c = asyncio::create_task(loop().sock_sendall(pair.first.fileno(), data));
        bool c = co_await cancel_and_check(t_c);
        EXPECT_TRUE(c);
        pair.first.close();  // EOF after whatever was sent
        std::string got = co_await recv_all(pair.second.fileno(), data.size());
        EXPECT_GT(got.size(), 0u);
        EXPECT_LT(got.size(), data.size());
        EXPECT_TRUE(got == data.substr(0, got.size()));  // exactly a prefix: no byte lost or repeated
    });
    EXPECT_EQ(open_fd_count(), before);
}

TEST(SockCancel, SendtoOnAFullDatagramQueueSendsNothing) {
    int before = open_fd_count();
    run_test([&]() -> asyncio::Coro<> {
        auto pair = Socket::socketpair(AF_UNIX, SOCK_DGRAM);
        int queued = 0;
        while (::send(pair.first.fileno(), "x", 1, 0) == 1) ++queued;  // fill the peer's queue
        EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
        auto t_c = asyncio::create_task(loop().sock_sendto(pair.first.fileno(), "cancelled", SockAddr()));
        bool c = co_await cancel_and_check(t_c);
        EXPECT_TRUE(c);
        int drained = 0;
        char buf[16];
        while (::recv(pair.second.fileno(), buf, sizeof buf, 0) > 0) ++drained;
        EXPECT_EQ(drained, queued);  // the cancelled datagram was never sent
    });
    EXPECT_EQ(open_fd_count(), before);
}

// ---- name resolution ---------------------------------------------------------------------------

TEST(Getaddrinfo, LocalhostResolvesToLoopback) {
    std::vector<asyncio::AddrInfo> infos;
    run_test([&]() -> asyncio::Coro<> { infos = co_await loop().getaddrinfo("localhost", 80, 0, SOCK_STREAM); });
    ASSERT_FALSE(infos.empty());
    for (auto& ai : infos) {
        EXPECT_EQ(ai.type, SOCK_STREAM);
        EXPECT_EQ(ai.addr.port(), 80);
        EXPECT_TRUE(ai.addr.host() == "127.0.0.1" || ai.addr.host() == "::1") << ai.addr.to_string();
    }
}

TEST(Getaddrinfo, UnresolvableNameRaisesGaierror) {
    bool raised = false;
    run_test([&]() -> asyncio::Coro<> {
        try {
            co_await loop().getaddrinfo("nonexistent.invalid", 80);
        } catch (const asyncio::gaierror& e) {
            raised = true;
            EXPECT_NE(e.eai_code(), 0);
            EXPECT_EQ(std::string(e.what()), "getaddrinfo nonexistent.invalid: " + e.strerror());
        }
    });
    EXPECT_TRUE(raised);
}

TEST(Getaddrinfo, GaierrorIsAnOSError) {
    bool raised = false;
    run_test([&]() -> asyncio::Coro<> {
        try {
            co_await loop().getaddrinfo("nonexistent.invalid", "http");
        } catch (const asyncio::OSError&) {
            raised = true;
        }
    });
    EXPECT_TRUE(raised);
}

TEST(Getaddrinfo, NumericHostIsResolvedWithoutTheExecutor) {
    run_test([&]() -> asyncio::Coro<> {
        auto infos = co_await loop().getaddrinfo("::1", 443, 0, SOCK_STREAM);
        EXPECT_EQ(infos.size(), 1u);
        EXPECT_EQ(infos.at(0).addr.to_string(), "[::1]:443");
        EXPECT_FALSE(loop().default_executor_);  // no thread pool was started
    });
}

TEST(Getaddrinfo, CancelledLookupRaisesCancelledError) {
    run_test([&]() -> asyncio::Coro<> {
        // One iteration: the task is waiting for the executor, whose answer
        // can only arrive through the inbox in a later iteration.
        auto t_c = asyncio::create_task(loop().getaddrinfo("localhost", 80));
        bool c = co_await cancel_and_check(t_c, 1);
        EXPECT_TRUE(c);
    });
}

TEST(Getnameinfo, NumericLoopback) {
    std::pair<std::string, std::string> got;
    run_test([&]() -> asyncio::Coro<> {
        got = co_await loop().getnameinfo(SockAddr::from_ip("127.0.0.1", 8080), NI_NUMERICHOST | NI_NUMERICSERV);
    });
    EXPECT_EQ(got.first, "127.0.0.1");
    EXPECT_EQ(got.second, "8080");
}

}  // namespace
