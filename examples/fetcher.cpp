// A concurrent fetcher: many connections to a local line-protocol server at
// once, first with gather() (results in request order), then with
// as_completed() (results in completion order, summed here so the output is
// deterministic). Self-contained: the server runs in the same program.
#include <asyncio/asyncio.hpp>

#include <iostream>
#include <string>
#include <vector>

// The server answers "GET <n>" with "<n> squared is <n*n>" and closes.
asyncio::Coro<> serve(asyncio::StreamReader reader, asyncio::StreamWriter writer) {
    std::string request = co_await reader.readline();
    long n = std::stol(request.substr(4));
    co_await asyncio::sleep(0.001 * static_cast<double>(n % 5));  // some answers take longer
    writer.write(std::to_string(n) + " squared is " + std::to_string(n * n) + "\n");
    co_await writer.drain();
    writer.close();
}

asyncio::Coro<std::string> fetch(int port, int n) {
    auto [reader, writer] = co_await asyncio::open_connection("127.0.0.1", port);
    writer.write("GET " + std::to_string(n) + "\n");
    co_await writer.drain();
    std::string answer = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    answer.pop_back();
    co_return answer;
}

asyncio::Coro<long> fetch_square(int port, int n) {
    std::string answer = co_await fetch(port, n);
    co_return std::stol(answer.substr(answer.rfind(' ') + 1));
}

asyncio::Coro<> amain() {
    auto server = co_await asyncio::start_server(serve, "127.0.0.1", 0);
    int port = server.port();

    std::vector<asyncio::Task<std::string>> tasks;
    for (int n = 1; n <= 10; ++n) tasks.push_back(asyncio::create_task(fetch(port, n)));
    std::vector<std::string> answers = co_await asyncio::gather(tasks);
    for (const auto& a : answers) std::cout << a << "\n";

    std::vector<asyncio::Task<long>> many;
    for (int n = 1; n <= 100; ++n) many.push_back(asyncio::create_task(fetch_square(port, n)));
    long sum = 0;
    int count = 0;
    for (auto next : asyncio::as_completed(many)) {
        long v = co_await std::move(next);
        sum += v;
        ++count;
    }
    std::cout << count << " fetches completed, sum of squares 1..100 = " << sum << "\n";

    server.close();
    co_await server.wait_closed();
}

int main() { asyncio::run(amain()); }
