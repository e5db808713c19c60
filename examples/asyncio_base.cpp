// The seed tutorial's first program ("asyncio-base.py"), line by line.
//
// worker() blocks the loop with a plain 3-second sleep, exactly like the
// Python original's time.sleep(3): in debug mode (ASYNCIO_DEBUG=1) the loop
// reports that step as slow.
#include <asyncio/asyncio.hpp>

#include <chrono>
#include <iostream>
#include <thread>

asyncio::Coro<int> worker() {
    std::cout << "worker - will take some time" << std::endl;
    std::this_thread::sleep_for(std::chrono::seconds(3));
    std::cout << "worker - done it" << std::endl;
    co_return 42;
}

asyncio::Coro<> do_something() {
    std::cout << "do_something - will wait for worker" << std::endl;
    int result = co_await worker();
    std::cout << "do_something - result: " << result << std::endl;
}

int main() {
    std::cout << "Main - Starting" << std::endl;
    asyncio::run(do_something());
    std::cout << "Main - Done" << std::endl;
}
