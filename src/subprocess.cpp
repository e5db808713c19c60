// Child processes: Python's asyncio.subprocess over posix_spawn, pidfd and
// pipe transports (base_subprocess.py, unix_events.py's pipe transports and
// PidfdChildWatcher in one file).
//
// States and ownership (loop thread only):
// - ProcessState is shared by the Process handles and, until the child is
//   reaped, by itself (self): the pidfd reader captures a raw pointer, removed
//   before self is dropped. So a child whose handles are all gone is still
//   reaped when it exits (no zombie).
// - PipeTransport owns one pipe end and, from start() until connection_lost
//   has been delivered, a reference to itself (self_), like SocketTransport.
//   stdout/stderr use a read pipe transport, stdin a write pipe transport;
//   both carry the streams module's StreamProtocol, so StreamReader flow
//   control and StreamWriter.drain() work as on sockets.
// - Every live pipe transport and unreaped child is linked into its loop's
//   SubprocessRegistry. At loop close, pipes are closed (connection_lost
//   delivered at once) and running children killed and reaped.
// - Descriptors are close-on-exec from birth (pipe2, pidfd_open); the child
//   gets its ends through posix_spawn file actions and closes every other
//   descriptor >= 3 (Popen's close_fds=True).
#include "asyncio/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "asyncio/futures.hpp"
#include "asyncio/sockets.hpp"

extern char** environ;

namespace asyncio {
namespace detail {

namespace {

void report(EventLoop& loop, const std::string& message, std::exception_ptr exc) {
    ExceptionContext ctx;
    ctx.message = message;
    ctx.exception = std::move(exc);
    loop.call_exception_handler(ctx);
}

void close_fd(EventLoop& loop, int fd) noexcept {
    loop.forget_fd(fd);
    ::close(fd);
}

// write(2) without SIGPIPE: a pipe has no MSG_NOSIGNAL, so SIGPIPE is blocked
// in this thread around the call and a SIGPIPE it raised is consumed. (Python
// ignores SIGPIPE process-wide; a library must not.)
ssize_t write_no_sigpipe(int fd, const char* data, std::size_t n) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    ::sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r;
    do r = ::write(fd, data, n);
    while (r < 0 && errno == EINTR);
    const int err = errno;
    if (r < 0 && err == EPIPE && !was_pending) {
        timespec zero{};
        while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    errno = err;
    return r;
}

}  // namespace

class PipeTransport;

// Live pipes and unreaped children of one loop; torn down by its close hook.
struct SubprocessRegistry {
    std::unordered_set<PipeTransport*> pipes;
    std::unordered_set<ProcessState*> children;

    static SubprocessRegistry& of(EventLoop& loop);

private:
    static std::mutex& mu() {
        static std::mutex m;
        return m;
    }
    static std::unordered_map<EventLoop*, std::unique_ptr<SubprocessRegistry>>& all() {
        static std::unordered_map<EventLoop*, std::unique_ptr<SubprocessRegistry>> m;
        return m;
    }
    static void teardown(EventLoop* loop);
};

// ---- pipe transports ------------------------------------------------------------

// Python's _UnixReadPipeTransport / _UnixWritePipeTransport as one stream
// Transport (the StreamProtocol needs a Transport). A read pipe rejects
// writes; a write pipe never reads data, but watches its descriptor for the
// reader going away (EPOLLERR), as Python's write pipe transport does.
class PipeTransport final : public Transport {
public:
    PipeTransport(EventLoop& loop, int fd, bool readable, std::shared_ptr<BufferedProtocol> proto)
        : loop_(&loop), fd_(fd), readable_(readable), proto_(std::move(proto)) {}
    ~PipeTransport() override {
        if (fd_ >= 0) close_fd(*loop_, fd_);
    }

    void start(SubprocessRegistry& reg) {
        reg_ = &reg;
        reg.pipes.insert(this);
        self_ = std::static_pointer_cast<PipeTransport>(shared_from_this());
        try {
            proto_->connection_made(this);
        } catch (...) {
            report(*loop_, "Fatal error: protocol.connection_made() call failed.", std::current_exception());
            force_close(std::current_exception());
            return;
        }
        if (!closing_) loop_->add_reader(fd_, Callback::bind<&on_readable>(this));
    }

    void write(std::string_view data) override {
        if (readable_) throw RuntimeError("write() on a read pipe transport");
        // After write_eof() or close(), or once the pipe is lost: dropped, as
        // Python's _UnixWritePipeTransport does (a pipe has no half-close).
        if (data.empty() || conn_lost_ || closing_) return;
        if (wpos_ == wbuf_.size()) {
            ssize_t n = write_no_sigpipe(fd_, data.data(), data.size());
            if (n < 0) {
                if (errno != EAGAIN) {
                    force_close(make_os_error(errno, "write to pipe"));
                    return;
                }
                n = 0;
            }
            if (static_cast<std::size_t>(n) == data.size()) return;
            data.remove_prefix(static_cast<std::size_t>(n));
            wbuf_.clear();
            wpos_ = 0;
            loop_->add_writer(fd_, Callback::bind<&on_writable>(this));
        } else if (wpos_ > wbuf_.size() / 2) {
            wbuf_.erase(0, wpos_);
            wpos_ = 0;
        }
        wbuf_.append(data);
        maybe_pause_protocol();
    }
    // A pipe has no half-close: write_eof() closes once the buffer is flushed.
    void write_eof() override {
        if (readable_) throw RuntimeError("write_eof() on a read pipe transport");
        if (closing_) return;
        close();
    }
    bool can_write_eof() const override { return !readable_; }

    void close() override {
        if (closing_) return;
        closing_ = true;
        if (readable_ || wpos_ == wbuf_.size()) {
            loop_->remove_reader(fd_);
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        }
    }
    void abort() override { force_close(nullptr); }
    bool is_closing() const override { return closing_; }

    void pause_reading() override {
        if (!readable_ || closing_ || paused_) return;
        paused_ = true;
        loop_->remove_reader(fd_);
    }
    void resume_reading() override {
        if (!readable_ || closing_ || !paused_) return;
        paused_ = false;
        loop_->add_reader(fd_, Callback::bind<&on_readable>(this));
    }
    bool is_reading() const override { return readable_ && !paused_ && !closing_; }

    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
        std::size_t h = high ? *high : (low ? 4 * *low : 64 * 1024);
        std::size_t l = low ? *low : h / 4;
        if (h < l)
            throw ValueError("high (" + std::to_string(h) + ") must be >= low (" + std::to_string(l) +
                             ") must be >= 0");
        high_ = h;
        low_ = l;
        maybe_pause_protocol();
    }
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const override { return {low_, high_}; }
    std::size_t get_write_buffer_size() const override { return wbuf_.size() - wpos_; }

    /// "pipe" gives the descriptor (Python gives the pipe object).
    std::any get_extra_info(std::string_view name, std::any dflt) const override {
        if (name == "pipe" && fd_ >= 0) return fd_;
        return dflt;
    }
    std::shared_ptr<BaseProtocol> get_protocol() const override { return proto_; }

    // The loop is closing and will not run again: deliver connection_lost now.
    void loop_closing() {
        if (!conn_lost_) {
            wbuf_.clear();
            wpos_ = 0;
            closing_ = true;
            ++conn_lost_;
        }
        call_connection_lost();
    }

private:
    static void on_readable(void* p) { static_cast<PipeTransport*>(p)->read_ready(); }
    static void on_writable(void* p) { static_cast<PipeTransport*>(p)->write_ready(); }
    static void lost_thunk(void* p) { static_cast<PipeTransport*>(p)->call_connection_lost(); }

    void read_ready() {
        if (conn_lost_) return;
        if (!readable_) {
            // The read end is gone (EPOLLERR): as Python, a pending buffer is a broken pipe.
            if (wpos_ != wbuf_.size())
                force_close(make_os_error(EPIPE, "write to pipe"));
            else
                force_close(nullptr);
            return;
        }
        std::span<char> b;
        try {
            b = proto_->get_buffer(0);
            if (b.empty()) throw RuntimeError("get_buffer() returned an empty buffer");
        } catch (...) {
            report(*loop_, "Fatal error: protocol.get_buffer() call failed.", std::current_exception());
            force_close(std::current_exception());
            return;
        }
        ssize_t n = ::read(fd_, b.data(), b.size());
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            force_close(make_os_error(errno, "read from pipe"));
            return;
        }
        if (n == 0) {
            // Python's _UnixReadPipeTransport: EOF ends the pipe whatever eof_received says.
            try {
                proto_->eof_received();
            } catch (...) {
                report(*loop_, "Fatal error: protocol.eof_received() call failed.", std::current_exception());
            }
            close();
            return;
        }
        try {
            proto_->buffer_updated(static_cast<std::size_t>(n));
        } catch (...) {
            report(*loop_, "Fatal error: protocol.buffer_updated() call failed.", std::current_exception());
            force_close(std::current_exception());
        }
    }

    void write_ready() {
        if (conn_lost_) return;
        ssize_t n = write_no_sigpipe(fd_, wbuf_.data() + wpos_, wbuf_.size() - wpos_);
        if (n < 0) {
            if (errno == EAGAIN) return;
            force_close(make_os_error(errno, "write to pipe"));
            return;
        }
        wpos_ += static_cast<std::size_t>(n);
        maybe_resume_protocol();
        if (wpos_ != wbuf_.size() || conn_lost_) return;
        wbuf_.clear();
        wpos_ = 0;
        loop_->remove_writer(fd_);
        if (closing_) {
            loop_->remove_reader(fd_);
            ++conn_lost_;
            schedule_connection_lost(nullptr);
        }
    }

    void force_close(std::exception_ptr exc) {
        if (conn_lost_) return;
        if (wpos_ != wbuf_.size()) {
            wbuf_.clear();
            wpos_ = 0;
            loop_->remove_writer(fd_);
        }
        closing_ = true;
        loop_->remove_reader(fd_);
        ++conn_lost_;
        schedule_connection_lost(std::move(exc));
    }

    void schedule_connection_lost(std::exception_ptr exc) {
        lost_exc_ = std::move(exc);
        loop_->call_soon(Callback::bind<&lost_thunk>(this));
    }

    void call_connection_lost() {
        if (!self_) return;  // already delivered (loop_closing ran first)
        if (reg_) reg_->pipes.erase(this);
        reg_ = nullptr;
        auto keep = std::move(self_);  // may destroy *this when this function returns
        try {
            proto_->connection_lost(lost_exc_);
        } catch (...) {
            report(*loop_, "Exception in callback protocol.connection_lost()", std::current_exception());
        }
        lost_exc_ = nullptr;
        close_fd(*loop_, fd_);
        fd_ = -1;
        proto_.reset();
    }

    void maybe_pause_protocol() {
        if (get_write_buffer_size() <= high_ || protocol_paused_) return;
        protocol_paused_ = true;
        try {
            proto_->pause_writing();
        } catch (...) {
            report(*loop_, "protocol.pause_writing() failed", std::current_exception());
        }
    }
    void maybe_resume_protocol() {
        if (!protocol_paused_ || get_write_buffer_size() > low_) return;
        protocol_paused_ = false;
        try {
            proto_->resume_writing();
        } catch (...) {
            report(*loop_, "protocol.resume_writing() failed", std::current_exception());
        }
    }

    EventLoop* loop_;
    int fd_;
    bool readable_;
    std::shared_ptr<BufferedProtocol> proto_;
    std::shared_ptr<PipeTransport> self_;
    SubprocessRegistry* reg_ = nullptr;
    std::string wbuf_;
    std::size_t wpos_ = 0;
    std::size_t high_ = 64 * 1024;
    std::size_t low_ = 16 * 1024;
    std::exception_ptr lost_exc_;
    int conn_lost_ = 0;
    bool closing_ = false;
    bool paused_ = false;
    bool protocol_paused_ = false;
};

// ---- the child ----------------------------------------------------------------

struct ProcessState {
    EventLoop* loop;
    pid_t pid = -1;
    int pidfd = -1;
    std::optional<int> returncode;
    std::vector<Future<int>> waiters;
    std::shared_ptr<ProcessState> self;  // until reaped
    SubprocessRegistry* reg = nullptr;
    std::shared_ptr<Transport> pipes[3];
    std::optional<StreamWriter> in;
    std::optional<StreamReader> out, err;

    explicit ProcessState(EventLoop& l) : loop(&l) {}

    static void on_exit_ready(void* p) { static_cast<ProcessState*>(p)->try_reap(); }

    void watch(SubprocessRegistry& r, std::shared_ptr<ProcessState> me) {
        reg = &r;
        r.children.insert(this);
        self = std::move(me);
        loop->add_reader(pidfd, Callback(&on_exit_ready, this));
    }

    void try_reap() {
        int status = 0;
        pid_t r;
        do r = ::waitpid(pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == 0) return;  // not yet (cannot happen once the pidfd is readable)
        int code;
        if (r < 0)
            code = 255;  // someone else reaped it (Python: "Unknown child process pid")
        else if (WIFSIGNALED(status))
            code = -WTERMSIG(status);
        else
            code = WEXITSTATUS(status);
        exited(code);
    }

    // Record the exit, stop watching, wake wait()ers. May destroy *this.
    void exited(int code) {
        returncode = code;
        loop->remove_reader(pidfd);
        close_fd(*loop, pidfd);
        pidfd = -1;
        if (reg) reg->children.erase(this);
        reg = nullptr;
        auto ws = std::move(waiters);
        for (auto& w : ws)
            if (!w.done()) w.set_result(code);
        auto keep = std::move(self);
    }

    // Loop close: kill a child still running and reap it (it dies at once).
    void loop_closing() {
        ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
        int status = 0;
        pid_t r;
        do r = ::waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        int code = r < 0 ? 255 : WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
        waiters.clear();  // the loop will not run them
        exited(code);
    }
};

SubprocessRegistry& SubprocessRegistry::of(EventLoop& loop) {
    if (loop.is_closed()) throw RuntimeError("Event loop is closed");
    std::lock_guard<std::mutex> lk(mu());
    auto& slot = all()[&loop];
    if (!slot) {
        slot = std::make_unique<SubprocessRegistry>();
        EventLoop* l = &loop;
        loop.add_close_hook([l] { teardown(l); });
    }
    return *slot;
}

void SubprocessRegistry::teardown(EventLoop* loop) {
    SubprocessRegistry* r;
    {
        std::lock_guard<std::mutex> lk(mu());
        auto it = all().find(loop);
        if (it == all().end()) return;
        r = it->second.get();
    }
    while (!r->pipes.empty()) (*r->pipes.begin())->loop_closing();
    while (!r->children.empty()) (*r->children.begin())->loop_closing();
    std::lock_guard<std::mutex> lk(mu());
    all().erase(loop);
}

namespace {

// ---- spawning -------------------------------------------------------------------

// Descriptors made for one spawn; whatever is still owned is closed on unwinding.
struct SpawnFds {
    std::vector<int> owned;
    ~SpawnFds() {
        for (int fd : owned)
            if (fd >= 0) ::close(fd);
    }
    int keep(int fd) {
        owned.push_back(fd);
        return fd;
    }
    void release(int fd) {
        for (int& f : owned)
            if (f == fd) f = -1;
    }
};

// A close-on-exec duplicate of fd numbered >= 3, so that dup2 onto 0..2 in
// the child never finds its source already overwritten (or equal to its target).
int high_fd(SpawnFds& fds, int fd) {
    int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (d < 0) raise_os_error(errno, "fcntl(F_DUPFD_CLOEXEC)");
    return fds.keep(d);
}

struct FileActions {
    posix_spawn_file_actions_t fa;
    FileActions() { posix_spawn_file_actions_init(&fa); }
    ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
    FileActions(const FileActions&) = delete;
    void check(int rc) {
        if (rc != 0) raise_os_error(rc, "posix_spawn_file_actions");
    }
};

struct SpawnAttr {
    posix_spawnattr_t a;
    SpawnAttr() { posix_spawnattr_init(&a); }
    ~SpawnAttr() { posix_spawnattr_destroy(&a); }
    SpawnAttr(const SpawnAttr&) = delete;
};

void check_setting(const std::optional<int>& s, int target) {
    if (!s) return;
    int v = *s;
    if (v == PIPE || v == DEVNULL || v >= 0) return;
    if (v == STDOUT && target == 2) return;
    static const char* names[] = {"stdin", "stdout", "stderr"};
    throw ValueError(std::string("invalid ") + names[target] + " setting: " + std::to_string(v));
}

Coro<Process> spawn(std::string path, bool search, std::vector<std::string> argv, SubprocessOptions opts,
                    std::string display) {
    EventLoop& loop = running_loop();
    SubprocessRegistry& reg = SubprocessRegistry::of(loop);
    const std::optional<int> settings[3] = {opts.stdin_, opts.stdout_, opts.stderr_};
    for (int i = 0; i < 3; ++i) check_setting(settings[i], i);
    // Everything that can be refused is refused before the child starts.
    if (opts.limit == 0) throw ValueError("Limit cannot be <= 0");
    auto no_nul = [](std::string_view v) {
        if (v.find('\0') != std::string_view::npos) throw ValueError("embedded null byte");
    };
    no_nul(path);
    for (const auto& a : argv) no_nul(a);
    if (opts.env)
        for (const auto& e : *opts.env) no_nul(e);
    if (opts.cwd) no_nul(*opts.cwd);

    SpawnFds fds;
    FileActions fa;
    int parent_end[3] = {-1, -1, -1};
    for (int target = 0; target < 3; ++target) {
        if (!settings[target]) continue;
        int v = *settings[target];
        if (v == PIPE) {
            int p[2];
            if (::pipe2(p, O_CLOEXEC) < 0) raise_os_error(errno, "pipe2");
            fds.keep(p[0]);
            fds.keep(p[1]);
            int mine = target == 0 ? p[1] : p[0];
            int child = target == 0 ? p[0] : p[1];
            if (::fcntl(mine, F_SETFL, ::fcntl(mine, F_GETFL) | O_NONBLOCK) < 0) raise_os_error(errno, "fcntl");
            if (child < 3) child = high_fd(fds, child);
            parent_end[target] = mine;
            fa.check(posix_spawn_file_actions_adddup2(&fa.fa, child, target));
        } else if (v == DEVNULL) {
            fa.check(posix_spawn_file_actions_addopen(&fa.fa, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY,
                                                      0));
        } else if (v == STDOUT) {
            fa.check(posix_spawn_file_actions_adddup2(&fa.fa, 1, 2));
        } else {
            fa.check(posix_spawn_file_actions_adddup2(&fa.fa, high_fd(fds, v), target));
        }
    }
    fa.check(posix_spawn_file_actions_addclosefrom_np(&fa.fa, 3));
    if (opts.cwd) fa.check(posix_spawn_file_actions_addchdir_np(&fa.fa, opts.cwd->c_str()));

    // Start the child with an empty signal mask and SIGPIPE/SIGXFSZ at their
    // defaults (Popen's restore_signals), whatever this thread blocks or ignores.
    SpawnAttr attr;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    posix_spawnattr_setsigmask(&attr.a, &none);
    posix_spawnattr_setsigdefault(&attr.a, &defaults);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (opts.start_new_session) flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setflags(&attr.a, flags);

    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<char*> cenv;
    char** envp = environ;
    if (opts.env) {
        for (auto& e : *opts.env) cenv.push_back(e.data());
        cenv.push_back(nullptr);
        envp = cenv.data();
    }

    pid_t pid = -1;
    // glibc's posix_spawn reports exec failures (ENOENT, EACCES) as its result.
    int rc;
    if (search && opts.env && path.find('/') == std::string::npos) {
        // As Popen with env=: the program is looked up in that environment's
        // PATH (os.get_exec_path(env); os.defpath when it has none), each
        // directory in turn; a permission error is kept unless a later
        // directory has the program.
        std::string dirs = "/bin:/usr/bin";
        for (const auto& e : *opts.env)
            if (e.rfind("PATH=", 0) == 0) dirs = e.substr(5);
        rc = ENOENT;
        int denied = 0;
        for (std::size_t at = 0;;) {
            std::size_t end = dirs.find(':', at);
            std::string dir = dirs.substr(at, end == std::string::npos ? std::string::npos : end - at);
            std::string full = (dir.empty() ? std::string(".") : dir) + "/" + path;
            rc = ::posix_spawn(&pid, full.c_str(), &fa.fa, &attr.a, cargv.data(), envp);
            if (rc == 0 || (rc != ENOENT && rc != ENOTDIR && rc != EACCES)) break;
            if (rc == EACCES) denied = rc;
            if (end == std::string::npos) break;
            at = end + 1;
        }
        if (rc != 0 && denied) rc = denied;
    } else {
        rc = search ? ::posix_spawnp(&pid, path.c_str(), &fa.fa, &attr.a, cargv.data(), envp)
                    : ::posix_spawn(&pid, path.c_str(), &fa.fa, &attr.a, cargv.data(), envp);
    }
    if (rc != 0) raise_os_error(rc, "'" + display + "'");

    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        int e = errno;
        ::kill(pid, SIGKILL);
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        raise_os_error(e, "pidfd_open");
    }

    // Watched from here on: if making the pipes fails, the child is still reaped.
    auto st = std::make_shared<ProcessState>(loop);
    st->pid = pid;
    st->pidfd = pidfd;
    st->watch(reg, st);
    for (int target = 0; target < 3; ++target) {
        int fd = parent_end[target];
        if (fd < 0) continue;
        fds.release(fd);
        auto proto = new_external_stream_protocol(opts.limit);
        auto t = std::make_shared<PipeTransport>(loop, fd, target != 0, proto);
        t->start(reg);
        st->pipes[target] = t;
        if (target == 0)
            st->in = stream_writer_of(t, proto);
        else if (target == 1)
            st->out = stream_reader_of(proto);
        else
            st->err = stream_reader_of(proto);
    }
    co_return Process(std::move(st));
}

Coro<int> process_wait(std::shared_ptr<ProcessState> s) {
    if (s->returncode) co_return *s->returncode;
    std::erase_if(s->waiters, [](const Future<int>& f) { return f.done(); });
    Future<int> f = s->loop->create_future<int>();
    s->waiters.push_back(f);
    int code = co_await f;
    co_return code;
}

// Python's Process._feed_stdin.
Coro<> feed_stdin(std::optional<StreamWriter> w, std::string input) {
    if (!w) co_return;
    try {
        if (!input.empty()) w->write(input);
        co_await w->drain();
    } catch (const BrokenPipeError&) {
    } catch (const ConnectionResetError&) {
    }
    w->close();
}

// Python's Process._read_stream: read to EOF, then close the pipe.
Coro<std::string> read_stream(std::optional<StreamReader> r, std::shared_ptr<Transport> t) {
    if (!r) co_return std::string();
    auto c = r->read();
    std::string out = co_await std::move(c);
    t->close();
    co_return out;
}

Coro<std::pair<std::string, std::string>> process_communicate(std::shared_ptr<ProcessState> s, std::string input) {
    auto g = gather(feed_stdin(s->in, std::move(input)), read_stream(s->out, s->pipes[1]),
                    read_stream(s->err, s->pipes[2]));
    auto results = co_await std::move(g);
    auto w = process_wait(s);
    co_await std::move(w);
    co_return std::pair<std::string, std::string>(std::move(std::get<1>(results)), std::move(std::get<2>(results)));
}

}  // namespace
}  // namespace detail

// ---- Process ----------------------------------------------------------------------

Process::Process(std::shared_ptr<detail::ProcessState> s)
    : stdin_(s->in), stdout_(s->out), stderr_(s->err), s_(std::move(s)) {}

int Process::pid() const { return s_->pid; }
std::optional<int> Process::returncode() const { return s_->returncode; }
Coro<int> Process::wait() { return detail::process_wait(s_); }
Coro<std::pair<std::string, std::string>> Process::communicate(std::string input) {
    return detail::process_communicate(s_, std::move(input));
}

void Process::send_signal(int sig) {
    if (s_->returncode) return;
    if (::syscall(SYS_pidfd_send_signal, s_->pidfd, sig, nullptr, 0) < 0) {
        if (errno == ESRCH) return;  // exited, not reaped yet: as Popen, skip it
        raise_os_error(errno, "send_signal");
    }
}
void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

// ---- create_subprocess_* --------------------------------------------------------------

Coro<Process> create_subprocess_exec(std::string program, std::vector<std::string> args, SubprocessOptions opts) {
    std::vector<std::string> argv;
    argv.reserve(args.size() + 1);
    argv.push_back(program);
    for (auto& a : args) argv.push_back(std::move(a));
    std::string display = program;
    return detail::spawn(std::move(program), true, std::move(argv), std::move(opts), std::move(display));
}

Coro<Process> create_subprocess_shell(std::string cmd, SubprocessOptions opts) {
    std::vector<std::string> argv{"/bin/sh", "-c", cmd};
    return detail::spawn("/bin/sh", false, std::move(argv), std::move(opts), "/bin/sh");
}

}  // namespace asyncio
