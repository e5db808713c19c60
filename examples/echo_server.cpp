// An echo server with protocols (Python's "TCP echo server protocol" example).
// With a port argument it serves until interrupted; without one it serves one
// demonstration client of its own and exits, so the demo runs unattended.
#include <asyncio/asyncio.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>

class EchoServerProtocol : public asyncio::Protocol {
public:
    void connection_made(asyncio::Transport* transport) override {
        transport_ = transport;
        std::cout << "Connection made\n";
    }
    void data_received(std::string_view data) override {
        std::cout << "Data received: " << data << "\n";
        std::cout << "Send: " << data << "\n";
        transport_->write(data);
        std::cout << "Close the client socket\n";
        transport_->close();
    }

private:
    asyncio::Transport* transport_ = nullptr;
};

asyncio::Coro<> demo_client(int port) {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
    writer.write("Hello World!");
    co_await writer.drain();
    std::string reply = co_await reader.read();
    std::cout << "Client got back: " << reply << "\n";
    writer.close();
    co_await writer.wait_closed();
}

asyncio::Coro<> amain(int port) {
    auto factory = [] { return std::make_shared<EchoServerProtocol>(); };
    auto server = co_await asyncio::create_server(factory, "127.0.0.1", port);
    if (port != 0) {
        std::cout << "Serving on 127.0.0.1:" << server.port() << "\n";
        co_await server.serve_forever();
        co_return;
    }
    co_await demo_client(server.port());
    server.close();
    co_await server.wait_closed();
}

int main(int argc, char** argv) {
    asyncio::run(amain(argc > 1 ? std::atoi(argv[1]) : 0));
}
