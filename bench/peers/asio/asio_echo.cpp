// Boost.Asio 1.81 peer of bench/echo/echo_server.cpp: `asio_echo <port>`, a
// single-threaded echo server on 127.0.0.1:<port>, one coroutine per
// connection (co_spawn) doing async_read_some of up to 64 KiB and async_write
// of all of it, the idiomatic Asio C++20 way (as in Asio's
// examples/cpp20/coroutines/echo_server.cpp). TCP_NODELAY is set on accepted
// sockets, as our library and CPython's asyncio do. One io_context with
// concurrency hint 1, run on the main thread. Prints "ready <port>" once
// listening; runs until killed.
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::size_t kReadSize = 65536;

awaitable<void> echo(tcp::socket socket) {
    std::unique_ptr<char[]> data(new char[kReadSize]);
    try {
        for (;;) {
            const auto in = asio::buffer(data.get(), kReadSize);
            const std::size_t n = co_await socket.async_read_some(in, use_awaitable);
            const auto out = asio::buffer(data.get(), n);
            co_await asio::async_write(socket, out, use_awaitable);
        }
    } catch (const std::exception&) {
        // end of file or a reset: close the connection
    }
}

awaitable<void> listen(tcp::acceptor* acceptor) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        tcp::socket socket = co_await acceptor->async_accept(use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(ex, echo(std::move(socket)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: asio_echo <port>\n");
        return 2;
    }
    try {
        asio::io_context ctx(1);
        const tcp::endpoint endpoint(asio::ip::address_v4::loopback(),
                                     static_cast<unsigned short>(std::atoi(argv[1])));
        tcp::acceptor acceptor(ctx, endpoint);  // SO_REUSEADDR, bind, listen
        std::printf("ready %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
        std::fflush(stdout);
        asio::co_spawn(ctx, listen(&acceptor), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_echo: %s\n", e.what());
        return 1;
    }
}
