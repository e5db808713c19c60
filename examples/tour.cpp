// A short tour of what else works: the seed's concepts and the rest of
// Python's asyncio vocabulary, each in a few lines. Output is deterministic.
#include <asyncio/asyncio.hpp>

#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

asyncio::Coro<int> square_after(int x, double delay) {
    co_await asyncio::sleep(delay);
    co_return x * x;
}

asyncio::Coro<> forever() { co_await asyncio::sleep(3600.0); }

asyncio::Coro<> failing(std::string why) {
    co_await asyncio::sleep(0);
    throw std::runtime_error(why);
}

asyncio::Coro<> producer(asyncio::Queue<int>* q) {
    for (int i = 1; i <= 5; ++i) co_await q->put(i);  // waits while the queue is full
    q->shutdown();
}

asyncio::Coro<int> consumer(asyncio::Queue<int>* q) {
    int total = 0;
    try {
        for (;;) {
            total += co_await q->get();
            q->task_done();
        }
    } catch (const asyncio::QueueShutDown&) {
    }
    co_return total;
}

asyncio::Coro<> counter(asyncio::Lock* lock, int* shared) {
    auto guard = co_await *lock;  // async with lock:
    int seen = *shared;
    co_await asyncio::sleep(0);  // another task cannot get in here
    *shared = seen + 1;
}

asyncio::Coro<> echo(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    std::string line = co_await reader.readline();
    writer.write("echo: " + line);
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

asyncio::Coro<> tour() {
    // gather: results in argument order, whatever the completion order.
    auto [a, b, c] = co_await asyncio::gather(square_after(1, 0.03), square_after(2, 0.01), square_after(3, 0.02));
    std::cout << "gather: " << a << " " << b << " " << c << "\n";

    // as_completed: results in completion order (deadlines 0.1 s apart, so
    // the order holds on a loaded machine).
    std::vector<asyncio::Task<int>> tasks;
    tasks.push_back(asyncio::create_task(square_after(4, 0.3)));
    tasks.push_back(asyncio::create_task(square_after(5, 0.1)));
    tasks.push_back(asyncio::create_task(square_after(6, 0.2)));
    std::cout << "as_completed:";
    for (auto next : asyncio::as_completed(tasks)) std::cout << " " << co_await std::move(next);
    std::cout << "\n";

    // wait_for: a timeout cancels the work and raises TimeoutError.
    try {
        co_await asyncio::wait_for(forever(), 0.01);
    } catch (const asyncio::TimeoutError&) {
        std::cout << "wait_for: TimeoutError\n";
    }

    // Task.cancel(): CancelledError appears where the task is suspended.
    auto sleeper = asyncio::create_task(forever(), "sleeper");
    co_await asyncio::sleep(0);
    sleeper.cancel("enough");
    try {
        co_await sleeper;
    } catch (const asyncio::CancelledError& e) {
        std::cout << "cancel: " << sleeper.get_name() << " cancelled (" << e.what() << ")\n";
    }

    // TaskGroup: one failure cancels the siblings; errors come back together.
    try {
        asyncio::TaskGroup tg;
        auto body = [](asyncio::TaskGroup* g) -> asyncio::Coro<> {
            g->create_task(forever());
            g->create_task(failing("boom"));
            co_return;
        };
        co_await tg.run(body(&tg));
    } catch (const asyncio::ExceptionGroup& eg) {
        std::cout << "TaskGroup: " << eg.exceptions().size() << " error(s), runtime_error inside: "
                  << (eg.contains<std::runtime_error>() ? "yes" : "no") << "\n";
    }

    // Queue with backpressure (maxsize 2) and 3.13's shutdown().
    asyncio::Queue<int> q(2);
    auto prod = asyncio::create_task(producer(&q));
    int total = co_await consumer(&q);
    co_await prod;
    std::cout << "Queue: consumed total " << total << "\n";

    // Lock: `async with lock` is a guard from co_await.
    asyncio::Lock lock;
    int shared = 0;
    co_await asyncio::gather(counter(&lock, &shared), counter(&lock, &shared), counter(&lock, &shared));
    std::cout << "Lock: counter " << shared << "\n";

    // to_thread: blocking work off the loop.
    int big = co_await asyncio::to_thread([](int x) { return x * 1000; }, 42);
    std::cout << "to_thread: " << big << "\n";

    // Streams: a TCP echo server and a client on loopback.
    auto server = co_await asyncio::start_server(echo, "127.0.0.1", 0);
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", server.port());
    writer.write("hello\n");
    co_await writer.drain();
    std::string reply = co_await reader.readline();
    std::cout << "streams: " << reply;
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

int main() {
    asyncio::run(tour());
    std::cout << "tour done\n";
}
