// A consumer of the installed (or add_subdirectory'd) library: the smallest
// program that needs the headers, the compiled library and the link flags.
#include <asyncio/asyncio.hpp>

#include <cstdio>

asyncio::Coro<int> answer() {
    co_await asyncio::sleep(0);
    co_return 42;
}

int main() {
    const int result = asyncio::run(answer());
    if (result != 42) {
        std::fprintf(stderr, "asyncio::run(answer()) gave %d, expected 42\n", result);
        return 1;
    }
    std::printf("consumer: ok\n");
    return 0;
}
