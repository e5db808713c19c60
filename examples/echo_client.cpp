// An echo client with streams (Python's "TCP echo client using streams").
// Given a port it talks to that server; without one it starts its own echo
// server task first, so the program is self-contained.
#include <asyncio/asyncio.hpp>

#include <cstdlib>
#include <iostream>

asyncio::Coro<> handle_echo(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    std::string data = co_await reader.read(100);
    writer.write(data);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

asyncio::Coro<> tcp_echo_client(std::string message, int port) {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
    std::cout << "Send: " << message << "\n";
    writer.write(message);
    co_await writer.drain();
    std::string data = co_await reader.read(100);
    std::cout << "Received: " << data << "\n";
    std::cout << "Close the connection\n";
    writer.close();
    co_await writer.wait_closed();
}

asyncio::Coro<> amain(int port) {
    if (port != 0) {
        co_await tcp_echo_client("Hello World!", port);
        co_return;
    }
    auto server = co_await asyncio::start_server(handle_echo, "127.0.0.1", 0);
    co_await tcp_echo_client("Hello World!", server.port());
    server.close();
    co_await server.wait_closed();
}

int main(int argc, char** argv) { asyncio::run(amain(argc > 1 ? std::atoi(argv[1]) : 0)); }
