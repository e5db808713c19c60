// A line-based chat server with streams: every line a client sends is
// broadcast to the others as "<name>: <line>". Self-contained: three simulated
// clients join, talk in turn and leave; the output is deterministic.
#include <asyncio/asyncio.hpp>

#include <iostream>
#include <map>
#include <string>
#include <vector>

struct Room {
    std::map<int, asyncio::StreamWriter> members;
    int next_id = 0;

    void broadcast(int from, const std::string& line) {
        for (auto& [id, w] : members)
            if (id != from) w.write(line);
    }
};

asyncio::Coro<> handle_client(asyncio::StreamReader reader, asyncio::StreamWriter writer, Room* room) {
    std::string name = co_await reader.readline();
    if (name.empty()) co_return;
    name.pop_back();
    int id = room->next_id++;
    room->members.emplace(id, writer);
    room->broadcast(id, "* " + name + " joined\n");
    for (;;) {
        std::string line;
        try {
            line = co_await reader.readline();
        } catch (const asyncio::ValueError&) {  // line over the limit
            writer.write("* line too long\n");
            continue;
        }
        if (line.empty()) break;
        room->broadcast(id, name + ": " + line);
    }
    room->members.erase(id);
    room->broadcast(id, "* " + name + " left\n");
    writer.close();
}

// A simulated client follows a script: a number means "read that many lines",
// a string means "say this line". Waiting to read before speaking is what
// makes the conversation (and this program's output) deterministic.
struct Step {
    int read = 0;
    std::string say;
};

struct Stage {
    int finished = 0;
    asyncio::Event leave;
};

asyncio::Coro<> client(int port, std::string name, std::vector<Step> script, Stage* stage,
                       std::vector<std::string>* seen) {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
    writer.write(name + "\n");
    for (const auto& step : script) {
        for (int i = 0; i < step.read; ++i) {
            std::string got = co_await reader.readline();
            seen->push_back("[" + name + " sees] " + got);
        }
        if (!step.say.empty()) {
            writer.write(step.say + "\n");
            co_await writer.drain();
        }
    }
    ++stage->finished;
    co_await stage->leave.wait();
    writer.close();
    co_await writer.wait_closed();
}

asyncio::Coro<> amain() {
    Room room;
    auto cb = [&room](asyncio::StreamReader r, asyncio::StreamWriter w) {
        return handle_client(std::move(r), std::move(w), &room);
    };
    auto server = co_await asyncio::start_server(cb, "127.0.0.1", 0);
    int port = server.port();

    Stage stage;
    std::vector<std::string> seen_ana, seen_bob, seen_cy;
    std::vector<Step> ana_script{{0, ""}, {2, "hello all"}, {3, ""}};
    std::vector<Step> bob_script{{2, "hi ana"}, {0, "how are you?"}, {1, ""}};
    std::vector<Step> cy_script{{3, "hey"}};
    // Join one at a time so the join notices are ordered too; ana speaks once
    // she has seen both others join.
    auto ana = asyncio::create_task(client(port, "ana", ana_script, &stage, &seen_ana));
    while (room.members.size() < 1) co_await asyncio::sleep(0.001);
    auto bob = asyncio::create_task(client(port, "bob", bob_script, &stage, &seen_bob));
    while (room.members.size() < 2) co_await asyncio::sleep(0.001);
    auto cy = asyncio::create_task(client(port, "cy", cy_script, &stage, &seen_cy));
    while (stage.finished < 3) co_await asyncio::sleep(0.001);
    stage.leave.set();
    co_await ana;
    co_await bob;
    co_await cy;
    for (const auto* seen : {&seen_ana, &seen_bob, &seen_cy})
        for (const auto& l : *seen) std::cout << l;
    server.close();
    co_await server.wait_closed();
    std::cout << "chat over\n";
}

int main() { asyncio::run(amain()); }
