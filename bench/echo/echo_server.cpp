// Echo benchmark servers on this library: `echo_server protocol <port>` (a
// Protocol that writes back what it receives) or `echo_server streams <port>`
// (a start_server handler: read(65536), write, drain). Runs until killed.
#include <asyncio/asyncio.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>

struct Echo : asyncio::Protocol {
    asyncio::Transport* t = nullptr;
    void connection_made(asyncio::Transport* tr) override { t = tr; }
    void data_received(std::string_view d) override { t->write(d); }
};

asyncio::Coro<> handle(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    for (;;) {
        std::string data = co_await reader.read(65536);
        if (data.empty()) break;
        writer.write(data);
        co_await writer.drain();
    }
    writer.close();
}

asyncio::Coro<> amain(bool streams, int port) {
    asyncio::Server server;
    if (streams) {
        server = co_await asyncio::start_server(handle, "127.0.0.1", port);
    } else {
        server = co_await asyncio::create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", port);
    }
    std::cout << "ready " << server.port() << std::endl;
    co_await server.serve_forever();
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: echo_server protocol|streams <port>\n";
        return 2;
    }
    asyncio::run(amain(std::strcmp(argv[1], "streams") == 0, std::atoi(argv[2])));
}
