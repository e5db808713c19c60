// Mirrors Python's asyncio.subprocess: create_subprocess_exec, create_subprocess_shell, Process.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncio/streams.hpp"
#include "asyncio/tasks.hpp"

namespace asyncio {

/// Connect the child's stream to a new pipe (Python's asyncio.subprocess.PIPE):
/// the Process then has a StreamWriter (stdin_) or StreamReader (stdout_, stderr_).
inline constexpr int PIPE = -1;
/// For stderr only: send the child's stderr where its stdout goes (Python's STDOUT).
inline constexpr int STDOUT = -2;
/// Connect the child's stream to /dev/null (Python's DEVNULL).
inline constexpr int DEVNULL = -3;

/// The keyword arguments of create_subprocess_exec()/_shell() (Python's
/// stdin=, stdout=, stderr=, limit= and Popen's cwd=, env=, start_new_session=).
///
/// A stream setting is std::nullopt (the default: inherit the parent's, as
/// Python's None), PIPE, DEVNULL, STDOUT (stderr only) or a descriptor >= 0
/// the child gets as that stream (the caller keeps owning it).
struct SubprocessOptions {
    std::optional<int> stdin_ = std::nullopt;
    std::optional<int> stdout_ = std::nullopt;
    std::optional<int> stderr_ = std::nullopt;
    /// Buffer limit of the stdout_/stderr_ StreamReaders.
    std::size_t limit = kDefaultLimit;
    /// Working directory of the child (relative program paths resolve there).
    std::optional<std::string> cwd = std::nullopt;
    /// The child's whole environment as "NAME=value" entries (default: ours).
    /// create_subprocess_exec() then looks the program up in this
    /// environment's PATH (/bin:/usr/bin if it has none), as Popen does.
    std::optional<std::vector<std::string>> env = std::nullopt;
    /// Run the child in a new session (setsid), as Popen's start_new_session.
    bool start_new_session = false;
};

namespace detail {
struct ProcessState;
}

/// A child process (Python's asyncio.subprocess.Process).
///
/// A copyable handle: copies share one child. Dropping every handle neither
/// waits for nor kills the child: the loop keeps watching it until it exits and
/// reaps it then (no zombie). When the loop is closed with the child still
/// running, the child is killed (SIGKILL) and reaped, as Python's transport
/// does when it is closed.
class Process {
public:
    /// The child's standard input when created with stdin_ = PIPE (Python's
    /// proc.stdin); std::nullopt otherwise.
    std::optional<StreamWriter> stdin_;
    /// The child's standard output when created with stdout_ = PIPE.
    std::optional<StreamReader> stdout_;
    /// The child's standard error when created with stderr_ = PIPE.
    std::optional<StreamReader> stderr_;

    /// The process id (Python's proc.pid).
    int pid() const;
    /// The exit status once the child has exited and been reaped, else
    /// std::nullopt (Python's proc.returncode): the exit code, or -N when
    /// killed by signal N.
    std::optional<int> returncode() const;

    /// Wait for the child to exit; gives returncode() (Python's proc.wait()).
    ///
    /// Returns as soon as the child exits, even if a pipe is still open (the
    /// behaviour CPython adopted in gh-119710). With stdout_/stderr_ = PIPE,
    /// a child writing more than the pipe and reader buffers hold blocks until
    /// they are read: use communicate() then, as Python's documentation warns.
    /// Cancellation: safe; the child keeps running and is still watched.
    Coro<int> wait();

    /// Send `input` to stdin (if it is a pipe; then close it), read stdout and
    /// stderr (those that are pipes) to EOF, wait for the child to exit; gives
    /// {stdout, stderr} (Python's proc.communicate(input)). A stream that is not
    /// a pipe gives "" (Python gives None).
    ///
    /// BrokenPipeError and ConnectionResetError while writing input are ignored
    /// (the child did not read it all), as in Python.
    /// Cancellation: the child keeps running; output read so far is lost (as
    ///   Python), input not yet written may still be sent.
    Coro<std::pair<std::string, std::string>> communicate(std::string input = {});

    /// Send signal `sig` to the child (Python's proc.send_signal()).
    ///
    /// Uses the child's pidfd, so it can never reach an unrelated process that
    /// reused the pid. A no-op once the child has been reaped (returncode() is
    /// set), like Popen.send_signal(); Python's asyncio may raise
    /// ProcessLookupError there instead (racy, gh-88319).
    /// Raises: OSError if the signal cannot be sent (e.g. EINVAL).
    void send_signal(int sig);
    /// send_signal(SIGTERM).
    void terminate();
    /// send_signal(SIGKILL).
    void kill();

    // internal
    explicit Process(std::shared_ptr<detail::ProcessState> s);

private:
    std::shared_ptr<detail::ProcessState> s_;
};

/// Run `program` with `args` (Python's asyncio.create_subprocess_exec, with
/// the argument list as a vector); the program is searched in PATH.
///
/// Raises: FileNotFoundError (no such program), PermissionError, OSError,
///   raised at this co_await as Python raises at its await; ValueError for a
///   bad stream setting (STDOUT for stdin_/stdout_, a negative descriptor).
/// Cancellation: not a suspension point: once awaited, the child is created.
Coro<Process> create_subprocess_exec(std::string program, std::vector<std::string> args,
                                     SubprocessOptions opts = {});

/// Run `cmd` through /bin/sh -c (Python's asyncio.create_subprocess_shell).
///
/// Raises and Cancellation: as create_subprocess_exec(). A command the shell
/// cannot find is not an error here: the shell exits with 127.
Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions opts = {});

namespace detail {
template <class A>
inline constexpr bool is_subprocess_options_v = std::is_same_v<std::remove_cvref_t<A>, SubprocessOptions>;

template <class... A>
struct last_is_options : std::false_type {};
template <class A>
struct last_is_options<A> : std::bool_constant<is_subprocess_options_v<A>> {};
template <class A, class B, class... Rest>
struct last_is_options<A, B, Rest...> : last_is_options<B, Rest...> {};

template <class A>
void collect_subprocess_arg(std::vector<std::string>& argv, SubprocessOptions& opts, A&& a) {
    if constexpr (is_subprocess_options_v<A>)
        opts = std::forward<A>(a);
    else
        argv.emplace_back(std::string_view(a));
}
}  // namespace detail

/// Run `program` with the arguments that follow (Python's
/// create_subprocess_exec(program, *args, stdin=..., ...)): each argument is
/// anything convertible to std::string_view; an optional SubprocessOptions
/// comes last, e.g.
/// `co_await create_subprocess_exec("cat", "-n", SubprocessOptions{.stdin_ = PIPE, .stdout_ = PIPE})`.
///
/// Raises and Cancellation: as the vector form.
template <class... Args>
    requires((std::is_convertible_v<const Args&, std::string_view> || detail::is_subprocess_options_v<Args>) && ...)
Coro<Process> create_subprocess_exec(std::string program, Args&&... args) {
    static_assert(((!detail::is_subprocess_options_v<Args>) + ... + 0) + int(detail::last_is_options<Args...>::value) ==
                      int(sizeof...(Args)),
                  "SubprocessOptions must be the last argument of create_subprocess_exec");
    std::vector<std::string> argv;
    argv.reserve(sizeof...(Args));
    SubprocessOptions opts;
    (detail::collect_subprocess_arg(argv, opts, std::forward<Args>(args)), ...);
    return create_subprocess_exec(std::move(program), std::move(argv), std::move(opts));
}

/// Python spells these asyncio.subprocess.PIPE, asyncio.subprocess.Process, ...
namespace subprocess {
using asyncio::create_subprocess_exec;
using asyncio::create_subprocess_shell;
using asyncio::DEVNULL;
using asyncio::PIPE;
using asyncio::Process;
using asyncio::STDOUT;
using asyncio::SubprocessOptions;
}  // namespace subprocess

}  // namespace asyncio
