// Python's asyncio subprocess recipes in C++: run a command and capture its
// output, feed a filter through communicate(), talk to a child line by line,
// run several children concurrently, and stop one with a signal.
#include <asyncio/asyncio.hpp>

#include <iostream>
#include <string>
#include <vector>

using asyncio::Coro;
using asyncio::Process;
using asyncio::SubprocessOptions;

// Python: proc = await asyncio.create_subprocess_shell(cmd, stdout=PIPE, stderr=PIPE)
Coro<> run(std::string cmd) {
    SubprocessOptions opts;
    opts.stdout_ = asyncio::PIPE;
    opts.stderr_ = asyncio::PIPE;
    auto c = asyncio::create_subprocess_shell(cmd, opts);
    Process proc = co_await std::move(c);
    auto r = proc.communicate();
    auto [out, err] = co_await std::move(r);
    std::cout << "[" << cmd << " exited with " << *proc.returncode() << "]\n";
    if (!out.empty()) std::cout << "[stdout]\n" << out;
    if (!err.empty()) std::cout << "[stderr]\n" << err;
}

// Sort lines through `sort`, giving the input to communicate().
Coro<> sort_lines() {
    SubprocessOptions opts;
    opts.stdin_ = asyncio::PIPE;
    opts.stdout_ = asyncio::PIPE;
    auto c = asyncio::create_subprocess_exec("sort", opts);
    Process proc = co_await std::move(c);
    auto r = proc.communicate("pear\napple\nfig\n");
    auto [out, err] = co_await std::move(r);
    std::cout << "sorted: ";
    for (char ch : out) std::cout << (ch == '\n' ? ' ' : ch);
    std::cout << "\n";
}

// Write a line, read the answer, as with an interactive program.
Coro<> conversation() {
    SubprocessOptions opts;
    opts.stdin_ = asyncio::PIPE;
    opts.stdout_ = asyncio::PIPE;
    auto c = asyncio::create_subprocess_exec("tr", "a-z", "A-Z", opts);
    Process proc = co_await std::move(c);
    for (std::string word : {"hello\n", "world\n"}) {
        proc.stdin_->write(word);
        auto d = proc.stdin_->drain();
        co_await std::move(d);
    }
    proc.stdin_->close();
    auto r = proc.stdout_->read();
    std::string answer = co_await std::move(r);
    auto w = proc.wait();
    int rc = co_await std::move(w);
    std::cout << "tr said: ";
    for (char ch : answer) std::cout << (ch == '\n' ? ' ' : ch);
    std::cout << "(exit " << rc << ")\n";
}

Coro<int> exit_code(int n) {
    auto c = asyncio::create_subprocess_shell("exit " + std::to_string(n));
    Process proc = co_await std::move(c);
    auto w = proc.wait();
    int rc = co_await std::move(w);
    co_return rc;
}

Coro<> main_coro() {
    auto r1 = run("echo hello; echo world");
    co_await std::move(r1);
    auto r2 = run("echo oops >&2; exit 2");
    co_await std::move(r2);
    auto s = sort_lines();
    co_await std::move(s);
    auto t = conversation();
    co_await std::move(t);

    // Several children at once: gather() gives the codes in argument order.
    std::vector<asyncio::Task<int>> tasks;
    for (int n = 0; n < 4; ++n) tasks.push_back(asyncio::create_task(exit_code(n)));
    auto g = asyncio::gather(tasks);
    std::vector<int> codes = co_await std::move(g);
    std::cout << "exit codes:";
    for (int code : codes) std::cout << " " << code;
    std::cout << "\n";

    // Stop a long-running child: terminate() sends SIGTERM, the code is -SIGTERM.
    auto c = asyncio::create_subprocess_exec("sleep", "3600");
    Process sleeper = co_await std::move(c);
    sleeper.terminate();
    auto w = sleeper.wait();
    int rc = co_await std::move(w);
    std::cout << "sleep was terminated: returncode " << rc << "\n";
}

int main() { asyncio::run(main_coro()); }
