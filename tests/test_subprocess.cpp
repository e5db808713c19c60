// Tests for asyncio::subprocess: create_subprocess_exec/_shell, Process.wait,
// communicate, signals, pipes, descriptor hygiene.
#include <asyncio/subprocess.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/run_test.hpp"

namespace {

using asyncio::Coro;
using asyncio::Process;
using asyncio::SubprocessOptions;

SubprocessOptions piped_out() {
    SubprocessOptions o;
    o.stdout_ = asyncio::PIPE;
    return o;
}

SubprocessOptions all_piped() {
    SubprocessOptions o;
    o.stdin_ = asyncio::PIPE;
    o.stdout_ = asyncio::PIPE;
    o.stderr_ = asyncio::PIPE;
    return o;
}

// ---- create_subprocess_exec / _shell --------------------------------------------------

TEST(SubprocessExec, EchoOutputThroughAPipe) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("echo", "hello", "world", piped_out());
        Process proc = co_await std::move(c);
        EXPECT_GT(proc.pid(), 0);
        EXPECT_FALSE(proc.stdin_.has_value());
        EXPECT_TRUE(proc.stdout_.has_value());
        EXPECT_FALSE(proc.stderr_.has_value());
        auto r = proc.stdout_->read();
        std::string out = co_await std::move(r);
        EXPECT_EQ(out, "hello world\n");
        auto w = proc.wait();
        int rc = co_await std::move(w);
        EXPECT_EQ(rc, 0);
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessExec, VectorFormPassesArgumentsVerbatim) {
    asyncio::testing::run_test([]() -> Coro<> {
        std::vector<std::string> args{"%s|%s|%s", "a b", "$HOME", "*"};
        auto c2 = asyncio::create_subprocess_exec("printf", args, piped_out());
        Process proc = co_await std::move(c2);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "a b|$HOME|*");
        EXPECT_EQ(err, "");
    });
}

TEST(SubprocessExec, DesignatedOptionsAndPythonSpelling) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::subprocess::create_subprocess_exec(
            "cat", "-", SubprocessOptions{.stdin_ = asyncio::subprocess::PIPE, .stdout_ = asyncio::subprocess::PIPE});
        asyncio::subprocess::Process proc = co_await std::move(c);
        auto r = proc.communicate("x");
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "x");
    });
}

TEST(SubprocessExec, NoArgumentsAndInheritedStreams) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("true");
        Process proc = co_await std::move(c);
        EXPECT_FALSE(proc.stdout_.has_value());
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), 0);
    });
}

TEST(SubprocessShell, RunsThroughTheShell) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_shell("echo $((6 * 7)); echo err >&2", all_piped());
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "42\n");
        EXPECT_EQ(err, "err\n");
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessShell, ExitCodeIsTheReturnCode) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_shell("exit 3");
        Process proc = co_await std::move(c);
        EXPECT_FALSE(proc.returncode().has_value());
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), 3);
        EXPECT_EQ(proc.returncode(), 3);
        // wait() after the exit gives the same code at once.
        auto w2 = proc.wait();
        EXPECT_EQ(co_await std::move(w2), 3);
    });
}

TEST(SubprocessShell, UnknownCommandIsExitCode127) {
    asyncio::testing::run_test([]() -> Coro<> {
        SubprocessOptions o;
        o.stderr_ = asyncio::DEVNULL;
        auto c = asyncio::create_subprocess_shell("no-such-command-asyncio-test", o);
        Process proc = co_await std::move(c);
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), 127);
    });
}

TEST(SubprocessExec, MissingProgramRaisesFileNotFoundError) {
    bool raised = false;
    asyncio::testing::run_test([&]() -> Coro<> {
        try {
            auto c = asyncio::create_subprocess_exec("no-such-program-asyncio-test", "x", piped_out());
            Process proc = co_await std::move(c);
        } catch (const asyncio::FileNotFoundError& e) {
            raised = true;
            EXPECT_EQ(e.errno_value(), ENOENT);
            EXPECT_NE(std::string(e.what()).find("no-such-program-asyncio-test"), std::string::npos);
        }
    });
    EXPECT_TRUE(raised);
}

TEST(SubprocessExec, NonExecutableRaisesPermissionError) {
    bool raised = false;
    asyncio::testing::run_test([&]() -> Coro<> {
        try {
            auto c = asyncio::create_subprocess_exec("/dev/null");
            Process proc = co_await std::move(c);
        } catch (const asyncio::PermissionError&) {
            raised = true;
        }
    });
    EXPECT_TRUE(raised);
}

TEST(SubprocessExec, BadStreamSettingRaisesValueError) {
    bool raised = false;
    asyncio::testing::run_test([&]() -> Coro<> {
        SubprocessOptions o;
        o.stdout_ = asyncio::STDOUT;
        try {
            auto c = asyncio::create_subprocess_exec("true", o);
            Process proc = co_await std::move(c);
        } catch (const asyncio::ValueError&) {
            raised = true;
        }
    });
    EXPECT_TRUE(raised);
}

// A NUL inside the program, an argument, the environment, the working
// directory or a shell command would cut the string short for exec: Python
// raises ValueError("embedded null byte"), and nothing is started.
TEST(SubprocessExec, EmbeddedNulRaisesValueErrorAndStartsNothing) {
    int before = asyncio::testing::open_fd_count();
    int raised = 0;
    asyncio::testing::run_test([&]() -> Coro<> {
        const std::string nul("a\0b", 3);
        std::vector<SubprocessOptions> opts(5, all_piped());
        opts[2].env = std::vector<std::string>{"X=" + nul};
        opts[3].cwd = "/" + nul;
        for (int i = 0; i < 5; ++i) {
            try {
                if (i == 0) {
                    auto c = asyncio::create_subprocess_exec("echo", std::vector<std::string>{nul}, opts[i]);
                    Process p = co_await std::move(c);
                } else if (i == 1) {
                    auto c = asyncio::create_subprocess_exec(std::string("echo\0zzz", 8), opts[i]);
                    Process p = co_await std::move(c);
                } else if (i == 4) {
                    auto c = asyncio::create_subprocess_shell(std::string("echo x\0; echo y", 15), opts[i]);
                    Process p = co_await std::move(c);
                } else {
                    auto c = asyncio::create_subprocess_exec("echo", opts[i]);
                    Process p = co_await std::move(c);
                }
            } catch (const asyncio::ValueError& e) {
                ++raised;
                EXPECT_STREQ(e.what(), "embedded null byte");
            }
        }
    });
    EXPECT_EQ(raised, 5);
    EXPECT_EQ(asyncio::testing::open_fd_count(), before);
}

// limit = 0 is refused before the child starts (it used to be refused after,
// leaving the child running and its stdin pipe open).
TEST(SubprocessExec, ZeroLimitIsRefusedBeforeTheChildStarts) {
    int before = asyncio::testing::open_fd_count();
    bool raised = false;
    asyncio::testing::run_test([&]() -> Coro<> {
        SubprocessOptions o = all_piped();
        o.limit = 0;
        try {
            auto c = asyncio::create_subprocess_exec("sleep", "5", o);
            Process p = co_await std::move(c);
        } catch (const asyncio::ValueError& e) {
            raised = true;
            EXPECT_STREQ(e.what(), "Limit cannot be <= 0");
        }
    });
    EXPECT_TRUE(raised);
    EXPECT_EQ(asyncio::testing::open_fd_count(), before);
}

// With env= the program is looked up in that environment's PATH, as Popen
// does (os.get_exec_path(env); /bin:/usr/bin when it has none).
TEST(SubprocessOptions, EnvPathIsWhereTheProgramIsLookedUp) {
    std::vector<std::string> outs;
    bool not_found = false;
    asyncio::testing::run_test([&]() -> Coro<> {
        SubprocessOptions o = piped_out();
        o.env = std::vector<std::string>{"PATH=/nonexistent"};
        try {
            auto c = asyncio::create_subprocess_exec("echo", "x", o);
            Process p = co_await std::move(c);
        } catch (const asyncio::FileNotFoundError& e) {
            not_found = e.errno_value() == ENOENT;
        }
        const std::vector<std::string> envs[] = {{"PATH=/nonexistent:/usr/bin:/bin"}, {"OTHER=1"}};
        for (const auto& env : envs) {
            o.env = env;
            auto c = asyncio::create_subprocess_exec("echo", "found", o);
            Process p = co_await std::move(c);
            auto r = p.communicate();
            auto [out, err] = co_await std::move(r);
            outs.push_back(out);
        }
    });
    EXPECT_TRUE(not_found);
    EXPECT_EQ(outs, (std::vector<std::string>{"found\n", "found\n"}));
}

// ---- signals ------------------------------------------------------------------------

TEST(SubprocessSignal, KilledChildHasNegativeSignalNumber) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("sleep", "3600");
        Process proc = co_await std::move(c);
        proc.kill();
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), -SIGKILL);
        EXPECT_EQ(proc.returncode(), -SIGKILL);
    });
}

TEST(SubprocessSignal, TerminateAndSendSignal) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c1 = asyncio::create_subprocess_exec("sleep", "3600");
        Process a = co_await std::move(c1);
        auto c2 = asyncio::create_subprocess_exec("sleep", "3600");
        Process b = co_await std::move(c2);
        a.terminate();
        b.send_signal(SIGINT);
        auto wa = a.wait();
        EXPECT_EQ(co_await std::move(wa), -SIGTERM);
        auto wb = b.wait();
        EXPECT_EQ(co_await std::move(wb), -SIGINT);
    });
}

TEST(SubprocessSignal, SignallingAReapedChildIsANoOp) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("true");
        Process proc = co_await std::move(c);
        auto w = proc.wait();
        co_await std::move(w);
        proc.kill();
        proc.terminate();
        proc.send_signal(SIGUSR1);
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessSignal, ChildStartsWithSigpipeAtItsDefault) {
    // Even when the parent ignores SIGPIPE (an ignored disposition survives
    // exec), the child dies of SIGPIPE writing to a closed pipe: 128 + 13.
    struct sigaction ign {}, old{};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old);
    asyncio::testing::run_test([]() -> Coro<> {
        SubprocessOptions o;
        o.stderr_ = asyncio::PIPE;
        auto c = asyncio::create_subprocess_shell("(yes 2>/dev/null; echo $? >&2) | head -c 1 >/dev/null", o);
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(err, "141\n");
    });
    ::sigaction(SIGPIPE, &old, nullptr);
}

// ---- communicate ------------------------------------------------------------------

TEST(SubprocessCommunicate, SendsInputAndCollectsOutput) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("cat", all_piped());
        Process proc = co_await std::move(c);
        auto r = proc.communicate("some input\nsecond line");
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "some input\nsecond line");
        EXPECT_EQ(err, "");
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessCommunicate, LargeInputAndOutputDoNotDeadlock) {
    asyncio::testing::run_test([]() -> Coro<> {
        std::string input;
        for (int i = 0; input.size() < (1u << 20); ++i) input += std::to_string(i) + "\n";
        auto c = asyncio::create_subprocess_exec("cat", all_piped());
        Process proc = co_await std::move(c);
        auto r = proc.communicate(input);
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out.size(), input.size());
        EXPECT_TRUE(out == input);
    });
}

TEST(SubprocessCommunicate, LargeOutputOnBothStreams) {
    // 1 MiB on stdout and on stderr, interleaved: both must be read concurrently.
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_shell(
            "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; head -c 1000 /dev/zero", all_piped());
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out.size(), 1048576u + 1000u);
        EXPECT_EQ(err.size(), 1048576u);
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessCommunicate, ChildNotReadingInputIsNotAnError) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("true", all_piped());
        Process proc = co_await std::move(c);
        std::string big(1 << 20, 'x');  // more than the pipe holds: EPIPE
        auto r = proc.communicate(big);
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "");
        EXPECT_EQ(proc.returncode(), 0);
    });
}

TEST(SubprocessCommunicate, StderrToStdout) {
    asyncio::testing::run_test([]() -> Coro<> {
        SubprocessOptions o;
        o.stdout_ = asyncio::PIPE;
        o.stderr_ = asyncio::STDOUT;
        auto c = asyncio::create_subprocess_shell("echo out; echo err >&2; echo out2", o);
        Process proc = co_await std::move(c);
        EXPECT_FALSE(proc.stderr_.has_value());
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "out\nerr\nout2\n");
        EXPECT_EQ(err, "");
    });
}

TEST(SubprocessCommunicate, DevnullGivesEofAndDiscards) {
    asyncio::testing::run_test([]() -> Coro<> {
        SubprocessOptions o;
        o.stdin_ = asyncio::DEVNULL;
        o.stdout_ = asyncio::PIPE;
        o.stderr_ = asyncio::DEVNULL;
        auto c = asyncio::create_subprocess_shell("cat; echo done; echo hidden >&2", o);
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "done\n");
    });
}

TEST(SubprocessStreams, WriteDrainReadlineInteractively) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("cat", all_piped());
        Process proc = co_await std::move(c);
        for (int i = 0; i < 3; ++i) {
            std::string line = "line " + std::to_string(i) + "\n";
            proc.stdin_->write(line);
            auto d = proc.stdin_->drain();
            co_await std::move(d);
            auto r = proc.stdout_->readline();
            std::string got = co_await std::move(r);
            EXPECT_EQ(got, line);
        }
        proc.stdin_->close();
        auto r = proc.stdout_->read();
        EXPECT_EQ(co_await std::move(r), "");
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), 0);
    });
}

// Python's pipe transport drops a write after write_eof() (a pipe has no
// half-close: write_eof() closes it); communicate() then still works.
TEST(SubprocessStreams, WriteAfterWriteEofIsDropped) {
    std::string got;
    asyncio::testing::run_test([&]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("cat", all_piped());
        Process p = co_await std::move(c);
        p.stdin_->write("abc");
        p.stdin_->write_eof();
        p.stdin_->write("dropped");
        auto r = p.communicate("dropped too");
        auto [out, err] = co_await std::move(r);
        got = out;
    });
    EXPECT_EQ(got, "abc");
}

// The stdin writer has no reader (Python: reader=None): after the child dies
// with data pending, the drain that was waiting raises BrokenPipeError, and
// every later drain "Connection lost" (ConnectionResetError), not the
// broken pipe again.
TEST(SubprocessStreams, DrainAfterABrokenPipeRaisesConnectionLost) {
    std::vector<std::string> seen;
    asyncio::testing::run_test([&]() -> Coro<> {
        SubprocessOptions o;
        o.stdin_ = asyncio::PIPE;
        auto c = asyncio::create_subprocess_exec("sleep", "10", o);
        Process p = co_await std::move(c);
        p.stdin_->write(std::string(1 << 20, 'x'));  // more than the pipe holds
        auto drain = [](asyncio::StreamWriter w) -> Coro<> { co_await w.drain(); };
        auto first = asyncio::create_task(drain(*p.stdin_));
        co_await asyncio::sleep(0);
        p.kill();
        for (int i = 0; i < 2; ++i) {
            try {
                if (i == 0) {
                    co_await first;
                } else {
                    p.stdin_->write("x");
                    co_await p.stdin_->drain();
                }
                seen.push_back("no error");
            } catch (const asyncio::BrokenPipeError&) {
                seen.push_back("BrokenPipeError");
            } catch (const asyncio::ConnectionResetError& e) {
                seen.push_back(std::string("ConnectionResetError: ") + e.what());
            }
        }
        auto w = p.wait();
        co_await std::move(w);
    });
    EXPECT_EQ(seen, (std::vector<std::string>{"BrokenPipeError", "ConnectionResetError: Connection lost"}));
}

TEST(SubprocessStreams, DescriptorAsStdout) {
    asyncio::testing::run_test([]() -> Coro<> {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        SubprocessOptions o;
        o.stdout_ = p[1];
        auto c = asyncio::create_subprocess_exec("echo", "via fd", o);
        Process proc = co_await std::move(c);
        ::close(p[1]);
        auto w = proc.wait();
        co_await std::move(w);
        char buf[64] = {};
        ssize_t n = ::read(p[0], buf, sizeof buf);
        ::close(p[0]);
        EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "via fd\n");
    });
}

TEST(SubprocessOptions, CwdEnvAndNewSession) {
    asyncio::testing::run_test([]() -> Coro<> {
        SubprocessOptions o = piped_out();
        o.cwd = "/";
        o.env = std::vector<std::string>{"ASYNCIO_TEST_VAR=value"};
        o.start_new_session = true;
        auto c = asyncio::create_subprocess_shell("pwd; echo $ASYNCIO_TEST_VAR; read -r a b c d e sid rest </proc/$$/stat; [ \"$sid\" = $$ ] && echo leader",
            o);
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        EXPECT_EQ(out, "/\nvalue\nleader\n");
    });
}

// ---- cancellation, concurrency, descriptors -------------------------------------------

Coro<int> wait_for_exit(Process proc) {
    auto w = proc.wait();
    int rc = co_await std::move(w);
    co_return rc;
}

TEST(SubprocessCancel, CancelledWaitLeavesTheChildRunning) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("sleep", "3600");
        Process proc = co_await std::move(c);
        auto waiter = asyncio::create_task(wait_for_exit(proc));
        co_await asyncio::sleep(0);
        EXPECT_TRUE(waiter.cancel());
        bool cancelled = false;
        try {
            co_await waiter;
        } catch (const asyncio::CancelledError&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        EXPECT_FALSE(proc.returncode().has_value());
        EXPECT_EQ(::kill(proc.pid(), 0), 0);  // still alive
        proc.kill();
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), -SIGKILL);
    });
}

Coro<std::pair<std::string, std::string>> communicate_in_task(Process proc) {
    auto r = proc.communicate("abc");
    auto res = co_await std::move(r);
    co_return res;
}

TEST(SubprocessCancel, CancelledCommunicateLeavesTheChildRunning) {
    asyncio::testing::run_test([]() -> Coro<> {
        auto c = asyncio::create_subprocess_exec("sleep", "3600", all_piped());
        Process proc = co_await std::move(c);
        auto t = asyncio::create_task(communicate_in_task(proc));
        for (int i = 0; i < 3; ++i) co_await asyncio::sleep(0);  // blocked reading stdout
        t.cancel();
        bool cancelled = false;
        try {
            co_await t;
        } catch (const asyncio::CancelledError&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        EXPECT_FALSE(proc.returncode().has_value());
        EXPECT_EQ(::kill(proc.pid(), 0), 0);  // still alive
        proc.kill();
        auto w = proc.wait();
        EXPECT_EQ(co_await std::move(w), -SIGKILL);
        // The pipes are still usable: both reach EOF now that the child is gone.
        auto r1 = proc.stdout_->read();
        EXPECT_EQ(co_await std::move(r1), "");
        auto r2 = proc.stderr_->read();
        EXPECT_EQ(co_await std::move(r2), "");
    });
}

Coro<std::string> run_one(int i) {
    auto c = asyncio::create_subprocess_shell("echo " + std::to_string(i) + "; exit " + std::to_string(i % 7),
                                              piped_out());
    Process proc = co_await std::move(c);
    auto r = proc.communicate();
    auto [out, err] = co_await std::move(r);
    EXPECT_EQ(proc.returncode(), i % 7);
    co_return out;
}

TEST(SubprocessConcurrency, TwentyProcessesAtOnce) {
    asyncio::testing::run_test([]() -> Coro<> {
        std::vector<asyncio::Task<std::string>> tasks;
        for (int i = 0; i < 20; ++i) tasks.push_back(asyncio::create_task(run_one(i)));
        auto g = asyncio::gather(tasks);
        std::vector<std::string> outs = co_await std::move(g);
        for (int i = 0; i < 20; ++i) EXPECT_EQ(outs[static_cast<std::size_t>(i)], std::to_string(i) + "\n");
    });
}

TEST(SubprocessDescriptors, NoneLeakedAndNoneInheritedByTheChild) {
    int before = asyncio::testing::open_fd_count();
    asyncio::testing::run_test([]() -> Coro<> {
        // A descriptor without O_CLOEXEC must not reach the child (close_fds).
        int leaky = ::dup(0);
        auto c = asyncio::create_subprocess_shell("ls /proc/self/fd | wc -l", all_piped());
        Process proc = co_await std::move(c);
        auto r = proc.communicate();
        auto [out, err] = co_await std::move(r);
        ::close(leaky);
        // 0, 1, 2 and the descriptor ls opens to read /proc/self/fd.
        EXPECT_EQ(out, "4\n");
    });
    for (int i = 0; i < 3; ++i) {
        asyncio::testing::run_test([]() -> Coro<> {
            auto c = asyncio::create_subprocess_exec("cat", all_piped());
            Process proc = co_await std::move(c);
            auto r = proc.communicate("x");
            co_await std::move(r);
        });
    }
    EXPECT_EQ(asyncio::testing::open_fd_count(), before);
}

TEST(SubprocessDescriptors, FailedSpawnLeaksNothing) {
    int before = asyncio::testing::open_fd_count();
    asyncio::testing::run_test([]() -> Coro<> {
        try {
            auto c = asyncio::create_subprocess_exec("no-such-program-asyncio-test", all_piped());
            Process proc = co_await std::move(c);
        } catch (const asyncio::FileNotFoundError&) {
        }
    });
    EXPECT_EQ(asyncio::testing::open_fd_count(), before);
}

TEST(SubprocessLoopClose, RunningChildIsKilledAndReapedAtLoopClose) {
    int pid = -1;
    asyncio::testing::RunOptions opts;
    opts.check_clean = false;  // the child is still watched when the test body ends
    asyncio::testing::run_test(
        [&]() -> Coro<> {
            auto c = asyncio::create_subprocess_exec("sleep", "3600", all_piped());
            Process proc = co_await std::move(c);
            pid = proc.pid();
        },
        opts);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(::kill(pid, 0), -1);  // gone, and reaped (not a zombie)
    EXPECT_EQ(errno, ESRCH);
}

TEST(SubprocessHandles, DroppedHandleChildIsStillReaped) {
    asyncio::testing::run_test([]() -> Coro<> {
        int pid;
        {
            auto c = asyncio::create_subprocess_exec("true");
            Process proc = co_await std::move(c);
            pid = proc.pid();
        }
        // The loop reaps it once it exits: poll with loop iterations, no sleeping.
        for (int i = 0; i < 10000 && ::kill(pid, 0) == 0; ++i) co_await asyncio::sleep(0.001);
        EXPECT_EQ(::kill(pid, 0), -1);
    });
}

}  // namespace
