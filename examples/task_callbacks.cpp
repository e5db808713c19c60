// The seed tutorial's second program: a Task, a done callback, and the
// Task's inspection methods, printed the way Python prints them.
#include <asyncio/asyncio.hpp>

#include <exception>
#include <iostream>

using namespace std::chrono_literals;

asyncio::Coro<int> worker() {
    std::cout << "worker - will take some time" << std::endl;
    co_await asyncio::sleep(1s);
    std::cout << "worker - Done it" << std::endl;
    co_return 42;
}

void print_it(asyncio::Task<int>& task) { std::cout << "print_it result: " << task.result() << std::endl; }

// Python's print() spelling of a bool and of an exception-or-None.
const char* py(bool b) { return b ? "True" : "False"; }
const char* py(const std::exception_ptr& e) { return e ? "<exception>" : "None"; }

asyncio::Coro<> do_something() {
    std::cout << "do_something - create task for worker" << std::endl;
    auto task = asyncio::create_task(worker());
    std::cout << "do_something - add a callback" << std::endl;
    task.add_done_callback(print_it);
    co_await task;
    // Information on task
    std::cout << "do_something - task.cancelled(): " << py(task.cancelled()) << std::endl;
    std::cout << "do_something - task.done(): " << py(task.done()) << std::endl;
    std::cout << "do_something - task.result(): " << task.result() << std::endl;
    std::cout << "do_something - task.exception(): " << py(task.exception()) << std::endl;
    std::cout << "do_something - finished" << std::endl;
}

int main() {
    std::cout << "Main - Starting" << std::endl;
    asyncio::run(do_something());
    std::cout << "Main - Done" << std::endl;
}
