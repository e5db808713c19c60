// The event loop: ready queue, timer heap, epoll readiness, cross-thread inbox.
//
// One iteration (run_once) mirrors CPython's BaseEventLoop._run_once: wait
// for I/O (not at all if callbacks are ready), collect the I/O callbacks,
// queue the expired timers, then run exactly the callbacks that were ready
// at that point, the I/O ones in the order Python would have queued them;
// anything they schedule runs on the next iteration.
#include "asyncio/events.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <type_traits>
#include <typeinfo>

#include "asyncio/futures.hpp"
#include "asyncio/tasks.hpp"
#include "uring.hpp"

namespace asyncio {

using detail::t_running_loop;

namespace {

[[noreturn]] void throw_os(const char* what) {
    int err = errno;
    throw OSError(err, what);
}

bool env_flag(const char* name) {
    const char* v = std::getenv(name);
    return v && *v && std::strcmp(v, "0") != 0;
}
}  // namespace

namespace detail {

thread_local constinit EventLoop* t_running_loop = nullptr;

void throw_no_running_loop() { throw RuntimeError("no running event loop"); }

// ---- ReadyQueue ------------------------------------------------------------

ReadyQueue::ReadyQueue() {
    cap_ = 1024;
    buf_ = static_cast<Callback*>(::operator new(sizeof(Callback) * cap_));
}

ReadyQueue::~ReadyQueue() {
    clear();
    release_retired();
    ::operator delete(buf_);
}

void ReadyQueue::grow() {
    retired_.reserve(retired_.size() + 1);  // may throw: before anything changes
    std::uint64_t ncap = cap_ * 2;
    auto* nbuf = static_cast<Callback*>(::operator new(sizeof(Callback) * ncap));
    for (std::uint64_t p = head_; p != tail_; ++p) {
        Callback& src = buf_[p & (cap_ - 1)];
        ::new (static_cast<void*>(&nbuf[p & (ncap - 1)])) Callback(std::move(src));
        src.~Callback();
    }
    // The callback running now may live in the old buffer (taken, not yet
    // reset): keep it until the loop calls release_retired().
    retired_.push_back(buf_);
    buf_ = nbuf;
    cap_ = ncap;
}

void ReadyQueue::release_retired_slow() noexcept {
    for (void* p : retired_) ::operator delete(p);
    retired_.clear();
}

bool ReadyQueue::pending(std::uint64_t pos) const noexcept {
    return pos >= head_ && pos < tail_ && static_cast<bool>(buf_[pos & (cap_ - 1)]);
}

bool ReadyQueue::cancel(std::uint64_t pos) noexcept {
    if (!pending(pos)) return false;
    buf_[pos & (cap_ - 1)].reset();
    return true;
}

void ReadyQueue::clear() noexcept {
    // Destroying a callback may release the last reference to a task, whose
    // frame's destructors may push again: loop until empty.
    while (head_ != tail_) {
        Callback cb(std::move(take_front()));
        cb.reset();
    }
}

// One fd's watchers. Persistent callbacks are shared so that one can remove
// itself while it runs; an IoWaiter is a task suspended in wait_readable/_writable.
struct FdCallback {
    Callback cb;
    bool cancelled = false;
};
// What a readable connection's dispatch and run touch (the reader, its
// generation, the steady flag, the keep-alive pair) fills the first cache
// line; the writer side comes after.
struct alignas(64) FdEntry {
    std::shared_ptr<FdCallback> reader;
    // Bumped whenever reader/writer is set or removed: a collected readiness
    // callback runs only if its generation is still current (the Handle of a
    // replaced or removed callback is cancelled, as in Python).
    std::uint32_t reader_gen = 0;
    // EPOLLIN in the steady state of a connection being read (only EPOLLIN
    // armed, a reader, no read waiter: an EPOLLIN event then needs nothing
    // but the reader's run), else 0 (never an event mask epoll reports).
    // refresh() recomputes it; every change of the three ends with one.
    std::uint32_t steady = 0;
    std::uint32_t armed = 0;  // events registered with epoll (may lag: disarmed lazily)
    bool in_epoll = false;
    bool counted = false;
    IoWaiter* read_waiter = nullptr;
    // The callback run_io() is running, and that callback once removed or
    // replaced during its own run: it is destroyed when the run ends.
    FdCallback* running = nullptr;
    std::shared_ptr<FdCallback> retired;
    std::shared_ptr<FdCallback> writer;
    std::uint32_t writer_gen = 0;
    int fd = -1;  // epoll reports the entry itself (data.ptr), the slow path needs the number
    IoWaiter* write_waiter = nullptr;
    std::uint32_t steady_state() const noexcept {
        return armed == EPOLLIN && reader && !read_waiter ? std::uint32_t{EPOLLIN} : 0u;
    }
    void refresh() noexcept { steady = steady_state(); }
    void drop(std::shared_ptr<FdCallback>& slot) noexcept {
        if (!slot) return;
        slot->cancelled = true;
        if (slot.get() == running)
            retired = std::move(slot);
        else
            slot.reset();
    }
    std::uint32_t wanted() const {
        std::uint32_t ev = 0;
        if (reader || read_waiter) ev |= EPOLLIN;
        if (writer || write_waiter) ev |= EPOLLOUT;
        return ev;
    }
};

// What epoll reports for a loop's wake-up eventfd: an entry that never takes
// poll_io()'s steady path (nothing armed), recognised by its address in
// dispatch_fd_slow(). Shared by every loop, never written.
static constinit FdEntry g_wake_entry;

bool IoWaiter::on_cancel(Waiter* w, TaskBase* t, const std::string* msg) {
    auto* self = static_cast<IoWaiter*>(w);
    if (!self->attached) return false;
    self->loop->detach_io_waiter(self);
    // A cancelled wait is often followed by close(fd): drop the interest now
    // so a descriptor reusing the number is registered afresh.
    self->loop->disarm_fd(self->fd);
    t->wake_cancelled(msg);
    return true;
}

}  // namespace detail

using detail::Callback;
using detail::FdEntry;

EventLoop& get_running_loop() { return detail::running_loop(); }
std::unique_ptr<EventLoop> new_event_loop() { return std::make_unique<EventLoop>(); }

// ---- handles -----------------------------------------------------------------

void Handle::cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (loop_) loop_->cancel_ready(pos_);
}

void TimerHandle::cancel() { try_cancel(); }

bool TimerHandle::try_cancel() {
    if (cancelled_) return false;
    cancelled_ = true;
    return loop_ && loop_->cancel_timer(slot_, gen_);
}

// ---- construction ------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_loop_serial{0};
}  // namespace

EventLoop::EventLoop()
    : serial_(g_loop_serial.fetch_add(1, std::memory_order_relaxed) + 1),
      io_runs_(new detail::IoRun[3 * kMaxPollEvents + kMaxStarvedRearms + 1]) {
    anchor_ = std::make_shared<detail::LoopAnchor>();
    anchor_->loop = this;
    bridges_.prev = bridges_.next = &bridges_;
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_os("epoll_create1");
    wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd_ < 0) {
        int err = errno;
        ::close(epfd_);
        throw OSError(err, "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &detail::g_wake_entry;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
        int err = errno;
        ::close(epfd_);
        ::close(wakefd_);
        throw OSError(err, "epoll_ctl(eventfd)");
    }
    debug_ = env_flag("ASYNCIO_DEBUG");
    uring_sends_ = env_flag("ASYNCIO_URING_SENDS");
    open_uring();  // src/uring.cpp
    heap_.reserve(64);
    timespec res{};
    if (::clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
        coarse_resolution_ = static_cast<double>(res.tv_sec) + static_cast<double>(res.tv_nsec) * 1e-9;
}

EventLoop::~EventLoop() {
    if (running_) {
        std::fprintf(stderr, "asyncio: fatal: event loop destroyed while running\n");
        std::abort();
    }
    {
        std::lock_guard<std::mutex> lk(anchor_->mu);  // no post from another thread from here on
        anchor_->loop = nullptr;
    }
    if (!closed_) {
        try {
            close();
        } catch (...) {
        }
    }
    teardown_tasks();
    ready_.clear();
    slots_.clear();
    heap_.clear();
    fds_.clear();
    if (epfd_ >= 0) ::close(epfd_);
    if (wakefd_ >= 0) ::close(wakefd_);
    epfd_ = wakefd_ = -1;
}

void EventLoop::teardown_tasks() noexcept {
    // Pending tasks can never finish now: report them and drop the loop's
    // reference. Then detach every future still referenced by user handles.
    for (detail::TaskBase* t : pending_tasks()) {
        ExceptionContext ctx;
        ctx.message = "Task was destroyed but it is pending!";
        try {
            ctx.task = t->repr();
        } catch (...) {
        }
        call_exception_handler(ctx);
        unregister_future(t);
        t->loop_ = nullptr;
        t->release();
    }
    while (registry_.reg_next_ != &registry_) {
        auto* f = static_cast<detail::FutureBase*>(registry_.reg_next_);
        unregister_future(f);
        f->loop_ = nullptr;
    }
}

double EventLoop::time() const noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void EventLoop::check_thread() const {
    if (!debug_ || !running_) return;
    if (thread_id_.load(std::memory_order_relaxed) != std::this_thread::get_id())
        throw RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one");
}

// ---- registry ------------------------------------------------------------------

std::vector<detail::TaskBase*> EventLoop::pending_tasks() const {
    std::vector<detail::TaskBase*> out;
    // Linked at the tail: the list is in creation order.
    for (const detail::RegLink* l = registry_.reg_next_; l != &registry_; l = l->reg_next_) {
        auto* f = static_cast<detail::FutureBase*>(const_cast<detail::RegLink*>(l));
        if (f->is_task_ && !f->done()) out.push_back(static_cast<detail::TaskBase*>(f));
    }
    return out;
}

// ---- timers ----------------------------------------------------------------------

TimerHandle EventLoop::add_timer(double when, Callback&& cb) {
    if (closed_) throw RuntimeError("Event loop is closed");
    std::uint32_t slot = claim_timer_slot(when);
    TimerSlot& s = slots_[slot];
    s.cb() = std::move(cb);
    return TimerHandle(this, slot, s.gen, when);
}

void EventLoop::prepare_timer_slot(double when) {
    if (std::isnan(when)) throw ValueError("timer deadline is NaN");
    if (timer_seq_ > 0xffffffffu) renumber_timers();
    heap_.reserve_one();
    if (free_slots_.empty()) {
        auto slot = static_cast<std::uint32_t>(slots_.size());
        free_slots_.resize(slots_.size() + 1);
        slots_.grow_one();
        free_slots_.add(slot);
    }
}

// The 32-bit sequence numbers are about to wrap: number the live entries
// again from 0 in (deadline, seq) order. A sorted array is a valid heap.
void EventLoop::renumber_timers() {
    std::sort(heap_.begin(), heap_.end(), detail::timer_before);
    std::uint64_t seq = 0;
    for (auto& e : heap_) e.seq_slot = seq++ << 32 | e.slot();
    timer_seq_ = seq;
}

bool EventLoop::cancel_timer(std::uint32_t slot, std::uint32_t gen) noexcept {
    if (slot >= slots_.size()) return false;
    TimerSlot& s = slots_[slot];
    if (s.gen != gen) return false;
    if (s.state == 1) {
        s.cb().reset();
        --live_timers_;
        // The entry is a leaf (a timeout scope left before anything else was
        // scheduled): it leaves the heap at once, for free.
        if (heap_.back().slot() == slot) {
            heap_.pop_back();
            free_timer_slot(slot);
        } else {
            cancel_in_heap(slot);
        }
        return true;
    }
    if (s.state == 3) {  // expired, waiting in the ready queue
        s.state = 2;
        s.cb().reset();
        return true;
    }
    return false;
}

void EventLoop::cancel_in_heap(std::uint32_t slot) noexcept {
    // The top is popped now (the pop run_once() would make anyway); any
    // other entry stays until it surfaces or the heap is rebuilt.
    if (heap_.top().slot() == slot) {
        heap_.pop();
        free_timer_slot(slot);
        return;
    }
    slots_[slot].state = 2;
    ++cancelled_in_heap_;
    if (cancelled_in_heap_ > 100 && cancelled_in_heap_ * 2 > heap_.size()) rebuild_heap();
}

void EventLoop::rebuild_heap() {
    // Like CPython: drop cancelled timers once they are the majority.
    std::size_t j = 0;
    for (auto& e : heap_) {
        if (slots_[e.slot()].state == 2)
            free_timer_slot(e.slot());
        else
            heap_.begin()[j++] = e;
    }
    heap_.truncate_and_heapify(j);
    cancelled_in_heap_ = 0;
}

// A busy loop (callbacks always ready) would read the precise clock every
// iteration just to learn that no timer is due. The coarse clock costs a
// fraction of that and shares the precise one's base, but it lags: by its
// resolution in theory, by twice that measured on a VM (8.1 ms at a 4 ms
// resolution, the tick arriving late). So only a deadline more than four
// resolutions ahead of it counts as surely not due; nearer ones read the
// precise clock. run_once() uses this only after a poll that did not wait.
bool EventLoop::timers_surely_not_due() const noexcept {
    timespec ts;
    if (::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return false;
    double coarse = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    return detail::deadline_of(heap_.top().key) > coarse + 4 * coarse_resolution_ + 1e-9;
}

void EventLoop::process_timers(double now) {
    // First pop every expired entry, prefetching its slot, then visit the
    // slots: their cache misses overlap the heap work instead of following it.
    const std::uint64_t end = detail::deadline_key(now + 1e-9);  // clock resolution
    due_.clear();
    if (due_.capacity() < heap_.size()) due_.reserve(heap_.size());  // may throw: before any pop
    while (!heap_.empty() && heap_.top().key <= end) {
        std::uint32_t slot = heap_.top().slot();
        __builtin_prefetch(&slots_[slot], 1);
        due_.push_back(slot);
        heap_.pop();
    }
    for (std::uint32_t slot : due_) {
        TimerSlot& s = slots_[slot];
        if (s.state == 2) {  // cancelled: free it now
            --cancelled_in_heap_;
            free_timer_slot(slot);
            continue;
        }
        s.state = 3;
        --live_timers_;
        struct Run {
            EventLoop* loop;
            std::uint32_t slot;
            void operator()() const { loop->run_timer_slot(slot); }
        };
        ready_.push(Callback(Run{this, slot}));
    }
}

void EventLoop::run_timer_slot(std::uint32_t slot) {
    TimerSlot& s = slots_[slot];
    Callback cb = std::move(s.cb());
    bool run = s.state == 3;
    free_timer_slot(slot);
    if (run && cb) cb();
}

// ---- cross-thread inbox ----------------------------------------------------------

bool detail::LoopAnchor::post(Callback&& cb) noexcept {
    std::lock_guard<std::mutex> lk(mu);
    if (!loop || !open) return false;
    try {
        loop->push_threadsafe(std::move(cb));
        return true;
    } catch (...) {  // closed
        return false;
    }
}

void EventLoop::push_threadsafe(Callback&& cb) {
    if (closed_flag_.load(std::memory_order_acquire)) throw RuntimeError("Event loop is closed");
    // On the running loop's own thread: straight to the ready queue, after
    // what other threads queued before, as Python appends to _ready at once
    // (FIFO with call_soon() and with the tasks it wakes).
    if (thread_id_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
        drain_inbox();
        ready_.push(std::move(cb));
        return;
    }
    {
        std::lock_guard<std::mutex> lk(inbox_mu_);
        inbox_.push_back(std::move(cb));
        inbox_nonempty_.store(true, std::memory_order_release);
    }
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
        std::uint64_t one = 1;
        ssize_t r = ::write(wakefd_, &one, sizeof one);
        (void)r;  // EAGAIN means the counter is already non-zero: the loop wakes anyway
    }
}

void EventLoop::drain_inbox_slow() {
    std::vector<Callback> batch;
    {
        std::lock_guard<std::mutex> lk(inbox_mu_);
        batch.swap(inbox_);
        inbox_nonempty_.store(false, std::memory_order_release);
    }
    for (auto& cb : batch) ready_.push(std::move(cb));
}

// ---- file descriptors -------------------------------------------------------------

void EventLoop::update_interest(int fd, FdEntry& e) {
    std::uint32_t want = e.wanted();
    // Arm eagerly, disarm lazily: a socket read in a loop keeps its EPOLLIN
    // registration between waits, so the steady state makes no epoll_ctl.
    // Count the fd as watched only once epoll accepted it (a bad fd throws
    // below and must not stay counted).
    if ((e.armed | want) != e.armed) {
        epoll_event ev{};
        ev.events = e.armed | want;
        ev.data.ptr = &e;
        int op = e.in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        int r = ::epoll_ctl(epfd_, op, fd, &ev);
        if (r < 0 && errno == ENOENT && op == EPOLL_CTL_MOD) r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
        if (r < 0 && errno == EEXIST && op == EPOLL_CTL_ADD) r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
        if (r < 0) throw_os(("epoll_ctl(fd " + std::to_string(fd) + ")").c_str());
        e.in_epoll = true;
        e.armed = ev.events;
    }
    bool counted = want != 0;
    if (counted != e.counted) {
        watched_fds_ += counted ? 1 : std::size_t(-1);
        e.counted = counted;
    }
}

namespace {
FdEntry& entry_for(std::vector<std::unique_ptr<FdEntry>>& fds, int fd) {
    if (fd < 0) throw ValueError("invalid file descriptor: " + std::to_string(fd));
    if (static_cast<std::size_t>(fd) >= fds.size()) fds.resize(static_cast<std::size_t>(fd) + 1);
    if (!fds[fd]) {
        fds[fd] = std::make_unique<FdEntry>();
        fds[fd]->fd = fd;
    }
    return *fds[fd];
}
}  // namespace

void EventLoop::set_fd_callback(int fd, bool read, Callback&& cb) {
    check_callable_use();
    if (closed_) throw RuntimeError("Event loop is closed");
    FdEntry& e = entry_for(fds_, fd);
    auto& slot = read ? e.reader : e.writer;
    auto& gen = read ? e.reader_gen : e.writer_gen;
    if (slot) slot->cancelled = true;
    auto prev = std::move(slot);
    slot = std::make_shared<detail::FdCallback>();
    slot->cb = std::move(cb);
    try {
        update_interest(fd, e);
    } catch (...) {
        slot = std::move(prev);
        if (slot) slot->cancelled = false;
        e.refresh();
        throw;
    }
    e.drop(prev);
    ++gen;
    e.refresh();
}

void EventLoop::disarm_fd(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[fd]) return;
    try {
        disarm_now(fd, *fds_[fd]);
    } catch (...) {
    }
    fds_[fd]->refresh();
}

// remove_reader/remove_writer drop the registration at once: Python code
// closes the descriptor right after, and a descriptor number reused later
// must not inherit stale interest. (Waiters keep theirs lazily; their users
// call forget_fd() before closing.)
void EventLoop::disarm_now(int fd, FdEntry& e) {
    std::uint32_t want = e.wanted();
    bool counted = want != 0;
    if (counted != e.counted) {
        watched_fds_ += counted ? 1 : std::size_t(-1);
        e.counted = counted;
    }
    if (!e.in_epoll || e.armed == want) return;
    if (want == 0) {
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        e.in_epoll = false;
        e.armed = 0;
        return;
    }
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = &e;
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) e.armed = want;
}

bool EventLoop::remove_reader(int fd) {
    check_callable_use();
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[fd] || !fds_[fd]->reader) return false;
    FdEntry& e = *fds_[fd];
    e.drop(e.reader);
    ++e.reader_gen;
    disarm_now(fd, e);
    e.refresh();
    return true;
}

bool EventLoop::remove_writer(int fd) {
    check_callable_use();
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[fd] || !fds_[fd]->writer) return false;
    FdEntry& e = *fds_[fd];
    e.drop(e.writer);
    ++e.writer_gen;
    disarm_now(fd, e);
    e.refresh();
    return true;
}

void EventLoop::forget_fd(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size() || !fds_[fd]) return;
    FdEntry& e = *fds_[fd];
    e.drop(e.reader);
    e.drop(e.writer);
    ++e.reader_gen;
    ++e.writer_gen;
    if (e.in_epoll) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    e.in_epoll = false;
    e.armed = 0;
    e.steady = 0;
    if (e.counted && !e.read_waiter && !e.write_waiter) {
        --watched_fds_;
        e.counted = false;
    }
}

void EventLoop::attach_io_waiter(detail::IoWaiter* w) {
    if (closed_) throw RuntimeError("Event loop is closed");
    FdEntry& e = entry_for(fds_, w->fd);
    detail::IoWaiter*& slot = w->read ? e.read_waiter : e.write_waiter;
    if (slot)
        throw RuntimeError("another task is already waiting for fd " + std::to_string(w->fd) + " to become " +
                           (w->read ? "readable" : "writable"));
    slot = w;
    try {
        update_interest(w->fd, e);
    } catch (...) {
        slot = nullptr;
        e.refresh();
        throw;
    }
    w->attached = true;
    e.refresh();
}

bool EventLoop::detach_io_waiter(detail::IoWaiter* w) noexcept {
    if (!w->attached) return false;
    w->attached = false;
    if (static_cast<std::size_t>(w->fd) >= fds_.size() || !fds_[w->fd]) return false;
    FdEntry& e = *fds_[w->fd];
    detail::IoWaiter*& slot = w->read ? e.read_waiter : e.write_waiter;
    if (slot != w) return false;
    slot = nullptr;
    e.refresh();
    std::uint32_t want = e.wanted();
    bool counted = want != 0;
    if (counted != e.counted) {
        watched_fds_ += counted ? 1 : std::size_t(-1);
        e.counted = counted;
    }
    return true;
}

std::size_t EventLoop::watched_fd_count() const noexcept { return watched_fds_; }

// Every case but poll_io()'s steady one, kept out of line so that the loop
// there needs few registers. Returns the new end of the collected runs.
detail::IoRun* EventLoop::dispatch_fd_slow(std::uint32_t events, FdEntry& e, detail::IoRun* out) {
    if (&e == &detail::g_wake_entry) {  // call_soon_threadsafe's wake-up
        std::uint64_t v;
        while (::read(wakefd_, &v, sizeof v) > 0) {
        }
        wake_pending_.store(false, std::memory_order_release);
        return out;
    }
    const int fd = e.fd;
    const bool err = events & (EPOLLERR | EPOLLHUP);
    const bool readable = err || (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI));
    const bool writable = err || (events & EPOLLOUT);
    if (readable) {
        if (detail::IoWaiter* w = e.read_waiter) {
            e.read_waiter = nullptr;
            w->attached = false;
            w->task->wake();
        }
        if (e.reader) *out++ = detail::IoRun{&e, ready_.tail_pos(), e.reader_gen, true, 0, nullptr};
    }
    if (writable) {
        if (detail::IoWaiter* w = e.write_waiter) {
            e.write_waiter = nullptr;
            w->attached = false;
            w->task->wake();
        }
        if (e.writer) *out++ = detail::IoRun{&e, ready_.tail_pos(), e.writer_gen, false, 0, nullptr};
    }
    // Lazy disarm: an event nobody wants any more drops the registration.
    std::uint32_t want = e.wanted();
    if (want != e.armed) {
        bool counted = want != 0;
        if (counted != e.counted) {
            watched_fds_ += counted ? 1 : std::size_t(-1);
            e.counted = counted;
        }
        if ((events & (EPOLLIN | EPOLLOUT)) & ~want || err) {
            if (want == 0) {
                ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
                e.in_epoll = false;
                e.armed = 0;
            } else {
                epoll_event ev{};
                ev.events = want;
                ev.data.ptr = &e;
                if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) e.armed = want;
            }
        }
    }
    e.refresh();
    return out;
}

// ---- running ---------------------------------------------------------------------

void EventLoop::drop_cancelled_tops() noexcept {
    while (!heap_.empty() && slots_[heap_.top().slot()].state == 2) {
        std::uint32_t slot = heap_.top().slot();
        heap_.pop();
        --cancelled_in_heap_;
        free_timer_slot(slot);
    }
}

// Run one callback of this iteration: timed in debug mode; what it raises
// goes to the exception handler.
[[gnu::always_inline]] inline void EventLoop::run_callback(Callback& cb) {
    try {
        if (debug_) [[unlikely]] {
            run_timed(cb);
        } else {
            cb();
        }
    } catch (...) {
        report_callback_error();
    }
}

// One collected readiness callback (see run_once()).
[[gnu::always_inline]] inline void EventLoop::run_io(const detail::IoRun& r) {
    if (!r.e) {
        run_completion(r);
        return;
    }
    FdEntry& e = *r.e;  // entries are freed only with the loop
    // An unchanged generation means the callback collected is still set
    // (every set, removal and close bumps it).
    detail::FdCallback* cb;
    if (r.read) {
        if (e.reader_gen != r.gen) return;
        cb = e.reader.get();
    } else {
        if (e.writer_gen != r.gen) return;
        cb = e.writer.get();
    }
    // The callback may remove or replace itself: FdEntry::drop() then keeps
    // it alive (in e.retired) until the run ends.
    e.running = cb;
    run_callback(cb->cb);
    e.running = nullptr;
    if (e.retired) [[unlikely]]
        e.retired.reset();
}

// Run the queued callbacks up to position `stop`, each in its slot.
[[gnu::always_inline]] inline void EventLoop::run_ready_until(std::uint64_t stop) {
    while (ready_.head_pos() != stop) {
        Callback& cb = ready_.take_front();
        if (!cb) continue;  // cancelled handle
        run_callback(cb);
        cb.dispose();  // the slot is dead: the push that reuses it rebuilds it
    }
}

// Inlined into run_forever(), its only caller: the registers are saved once
// per run, not once per iteration (about 20 instructions per iteration).
[[gnu::always_inline]] inline void EventLoop::run_once() {
    // Drop cancelled timers at the top so they do not shorten the wait.
    if (!heap_.empty() && slots_[heap_.top().slot()].state == 2) [[unlikely]]
        drop_cancelled_tops();
    int timeout_ms = -1;
    if (!ready_.empty() || stopping_ || inbox_nonempty_.load(std::memory_order_acquire)) {
        timeout_ms = 0;
    } else if (!heap_.empty()) {
        double dt = detail::deadline_of(heap_.top().key) - time();
        timeout_ms = dt <= 0 ? 0 : static_cast<int>(std::min(std::ceil(dt * 1000.0), 86400000.0));
    }
    // With callbacks ready and no descriptor watched, the poll could only
    // report the cross-thread wake-up, which drain_inbox() sees through its
    // flag anyway: skip the syscall. This is what makes sleep(0) and
    // call_soon cost nanoseconds, not a syscall per iteration.
    io_count_ = 0;  // even if the last iteration was left by an exception
    if (timeout_ms != 0 || watched_fds_ > 0 || uring_live_ > 0) poll_io(timeout_ms);
    drain_inbox();
    // After a poll that waited (for the first deadline, typically), read the
    // precise clock: the coarse one may not have caught up with the wake-up.
    if (!heap_.empty() && (timeout_ms != 0 || !timers_surely_not_due())) process_timers(time());

    // Run exactly the callbacks that are ready now, each in its slot, with
    // the readiness callbacks the poll found in between, each where Python's
    // _run_once would have queued its Handle: after the queue entries that
    // were there when its event was collected (the callbacks ready before the
    // poll, the tasks woken by earlier events), before the inbox and the
    // expired timers. They run from io_runs_, not through the queue.
    const std::uint64_t end = ready_.tail_pos();
    if (io_count_ == 0) {
        run_ready_until(end);  // no readiness callback to interleave
    } else {
        const detail::IoRun* io = io_runs_.get();
        detail::IoRun* const io_end = io_runs_.get() + io_count_;
        io_end->pos = end;  // a sentinel: after the last run, the rest of the queue
        for (;;) {
            run_ready_until(io->pos);
            if (io == io_end) break;
            run_io(*io);
            ++io;
        }
    }
    ready_.release_retired();  // no slot of a replaced buffer is in use any more
}

void EventLoop::check_can_run() const {
    if (closed_) throw RuntimeError("Event loop is closed");
    if (running_) throw RuntimeError("This event loop is already running");
    if (t_running_loop) throw RuntimeError("Cannot run the event loop while another loop is running");
}

void EventLoop::run_forever() {
    check_can_run();
    running_ = true;
    // stopping_ is not reset here: a stop() before run_forever() runs one iteration (Python).
    thread_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    t_running_loop = this;
    struct Reset {
        EventLoop* l;
        ~Reset() {
            l->running_ = false;
            l->stopping_ = false;
            l->thread_id_.store(std::thread::id(), std::memory_order_relaxed);
            t_running_loop = nullptr;
        }
    } reset{this};
    if (uring_in_use_) adopt_uring_thread();
    for (;;) {
        run_once();
        if (stopping_) break;
    }
}

// Collect the readiness callbacks into io_runs_ (run_once() runs them) and
// wake the tasks waiting for the descriptors, in event order. Nothing here
// runs user code, so no registration changes between the wait and the end of
// the collection: data.ptr is the entry the event is for (entries live as
// long as the loop; the wake-up eventfd's is g_wake_entry).
void EventLoop::poll_io(int timeout_ms) {
    if (uring_in_use_) {
        poll_uring(timeout_ms);  // src/uring.cpp
        return;
    }
    io_count_ = static_cast<std::uint32_t>(collect_epoll(timeout_ms, io_runs_.get()) - io_runs_.get());
}

// Wait on epoll and append the runs its events call for to `out`.
detail::IoRun* EventLoop::collect_epoll(int timeout_ms, detail::IoRun* out) {
    epoll_event events[kMaxPollEvents];
    int n = ::epoll_wait(epfd_, events, static_cast<int>(kMaxPollEvents), timeout_ms);
    if (n < 0 && errno != EINTR) throw_os("epoll_wait");
    for (int i = 0; i < n; ++i) {
        FdEntry& e = *static_cast<FdEntry*>(events[i].data.ptr);
        const std::uint32_t ev = events[i].events;
        // The steady state of a connection being read: only EPOLLIN reported,
        // only a reader registered (interest is armed eagerly, so armed ==
        // EPOLLIN means no writer or write waiter) and nothing to disarm.
        assert(e.steady == e.steady_state());
        if (ev == e.steady) [[likely]] {
            *out++ = detail::IoRun{&e, ready_.tail_pos(), e.reader_gen, true, 0, nullptr};
            continue;
        }
        out = dispatch_fd_slow(ev, e, out);
    }
    return out;
}

void EventLoop::check_callable_use_slow() const {
    if (closed_) throw RuntimeError("Event loop is closed");  // Python's _check_closed(), first
    if (debug_) check_thread();
}

void EventLoop::run_timed(Callback& cb) {
    slow_reported_ = false;
    double t0 = time();
    // An exception is reported here, inside the timed region, so a slow
    // callback that raises is reported as both (Python's Handle._run).
    try {
        cb();
    } catch (...) {
        report_callback_error();
    }
    double dt = time() - t0;
    if (dt >= slow_callback_duration_ && !slow_reported_) {
        ExceptionContext ctx;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", dt);
        ctx.message = std::string("Executing <Handle> took ") + buf + " seconds";
        call_exception_handler(ctx);
    }
}

void EventLoop::report_callback_error() noexcept {
    try {
        ExceptionContext ctx;
        ctx.message = "Exception in callback";
        ctx.exception = std::current_exception();
        call_exception_handler(ctx);
    } catch (...) {
    }
}

void EventLoop::note_slow_step(detail::TaskBase* t, double seconds) noexcept {
    slow_reported_ = true;
    try {
        ExceptionContext ctx;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.3f", seconds);
        ctx.task = t->repr();
        ctx.message = "Executing " + ctx.task + " took " + buf + " seconds";
        call_exception_handler(ctx);
    } catch (...) {
    }
}

void EventLoop::close() {
    if (running_) throw RuntimeError("Cannot close a running event loop");
    if (closed_) return;
    auto hooks = std::move(close_hooks_);
    for (auto& h : hooks) {
        try {
            h();
        } catch (...) {
            ExceptionContext ctx;
            ctx.message = "Exception while closing the event loop";
            ctx.exception = std::current_exception();
            call_exception_handler(ctx);
        }
    }
    close_uring();  // after the transports: ends their receives (src/uring.cpp)
    for (int sig = 1; static_cast<std::size_t>(sig) < signal_handlers_.size(); ++sig)
        if (signal_handlers_[sig]) remove_signal_handler(sig);
    closed_ = true;
    {
        std::lock_guard<std::mutex> lk(anchor_->mu);  // a post through the anchor has finished, or will not start
        anchor_->open = false;
    }
    closed_flag_.store(true, std::memory_order_release);
    ready_.clear();
    {
        std::lock_guard<std::mutex> lk(inbox_mu_);
        inbox_.clear();
        inbox_nonempty_.store(false);
    }
    // What other threads were to deliver and now never will (their post is
    // refused or was just discarded): freed here, on the loop's thread.
    while (bridges_.next != &bridges_) bridges_.next->discard(bridges_.next);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        TimerSlot& s = slots_[i];
        s.cb().reset();
        if (s.state != 0) {
            s.state = 0;
            ++s.gen;
        }
    }
    heap_.clear();
    free_slots_.clear();
    for (std::uint32_t i = 0; i < slots_.size(); ++i) free_slots_.add(i);
    live_timers_ = 0;
    cancelled_in_heap_ = 0;
    for (std::size_t fd = 0; fd < fds_.size(); ++fd) {
        if (!fds_[fd]) continue;
        if (fds_[fd]->in_epoll) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, static_cast<int>(fd), nullptr);
        fds_[fd]->reader.reset();
        fds_[fd]->writer.reset();
        fds_[fd]->steady = 0;
        ++fds_[fd]->reader_gen;
        ++fds_[fd]->writer_gen;
    }
    watched_fds_ = 0;
}

void EventLoop::cancel_all_tasks() {
    std::vector<AnyTask> tasks;
    for (detail::TaskBase* t : pending_tasks()) tasks.push_back(AnyTask::from_base(t));
    if (tasks.empty()) return;
    for (auto& t : tasks) t.cancel();
    struct CountNode : detail::DoneNode {
        std::size_t* remaining;
        EventLoop* loop;
        static void stop_loop(void* l) { static_cast<EventLoop*>(l)->stop(); }
        static void fire(detail::DoneNode* n, detail::FutureBase*) {
            auto* self = static_cast<CountNode*>(n);
            if (--*self->remaining == 0) self->loop->push_ready(Callback(&stop_loop, self->loop));
        }
    };
    std::size_t remaining = tasks.size();
    std::vector<CountNode> nodes(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        nodes[i].remaining = &remaining;
        nodes[i].loop = this;
        nodes[i].on_done = &CountNode::fire;
        if (tasks[i].done())
            --remaining;
        else
            tasks[i].raw()->add_node(&nodes[i]);
    }
    while (remaining > 0) run_forever();
    for (auto& t : tasks) {
        detail::FutureBase* f = t.raw();
        if (f->cancelled() || !f->exception_) continue;
        f->log_traceback_ = false;
        ExceptionContext ctx;
        ctx.message = "unhandled exception during asyncio.run() shutdown";
        ctx.exception = f->exception_;
        ctx.task = f->repr();
        call_exception_handler(ctx);
    }
}

// ---- signals -----------------------------------------------------------------------

namespace {
// The process-wide write end of the self-pipe of the loop that handles
// signals (Python's signal.set_wakeup_fd). The handler only writes the
// signal number: async-signal-safe.
std::atomic<int> g_signal_fd{-1};

extern "C" void asyncio_signal_trampoline(int sig) {
    int saved = errno;
    int fd = g_signal_fd.load(std::memory_order_relaxed);
    if (fd >= 0) {
        unsigned char b = static_cast<unsigned char>(sig);
        ssize_t r = ::write(fd, &b, 1);
        (void)r;
    }
    errno = saved;
}
}  // namespace

namespace {
// Python's signal.valid_signals(): what sigfillset() fills, which leaves out
// the signals glibc reserves for itself (32 and 33).
void check_signal(int sig) {
    sigset_t all;
    sigfillset(&all);
    if (sig <= 0 || sig >= NSIG || sigismember(&all, sig) != 1)
        throw ValueError("invalid signal number " + std::to_string(sig));
}
}  // namespace

void EventLoop::set_signal_handler(int sig, Callback&& cb) {
    check_callable_use();
    if (closed_) throw RuntimeError("Event loop is closed");
    check_signal(sig);
    if (sig == SIGKILL || sig == SIGSTOP) throw RuntimeError("sig " + std::to_string(sig) + " cannot be caught");
    if (sigpipe_[0] < 0) {
        if (::pipe2(sigpipe_, O_NONBLOCK | O_CLOEXEC) < 0) throw_os("pipe2 (signal wake-up)");
        try {
            add_reader(sigpipe_[0], [this] { dispatch_signals(); });
        } catch (...) {
            ::close(sigpipe_[0]);
            ::close(sigpipe_[1]);
            sigpipe_[0] = sigpipe_[1] = -1;
            throw;
        }
    }
    // From here on, a failure leaves no pipe behind (and no claim on the
    // process's signals) unless another handler of this loop needs it.
    try {
        int expected = -1;
        if (!g_signal_fd.compare_exchange_strong(expected, sigpipe_[1]) && expected != sigpipe_[1])
            throw RuntimeError("another event loop already handles signals in this process");
        if (signal_handlers_.size() <= static_cast<std::size_t>(sig)) signal_handlers_.resize(sig + 1);
        auto h = std::make_shared<detail::FdCallback>();
        h->cb = std::move(cb);
        struct sigaction sa {};
        sa.sa_handler = &asyncio_signal_trampoline;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (::sigaction(sig, &sa, nullptr) < 0) throw_os("sigaction");
        if (signal_handlers_[sig]) signal_handlers_[sig]->cancelled = true;
        signal_handlers_[sig] = std::move(h);
    } catch (...) {
        release_signal_pipe_if_unused();
        throw;
    }
}

bool EventLoop::remove_signal_handler(int sig) {
    // Python's has no closed check: a closed loop has no handler left.
    if (!closed_) check_callable_use();
    check_signal(sig);
    if (static_cast<std::size_t>(sig) >= signal_handlers_.size() || !signal_handlers_[sig]) return false;
    signal_handlers_[sig]->cancelled = true;
    signal_handlers_[sig].reset();
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
    release_signal_pipe_if_unused();
    return true;
}

void EventLoop::release_signal_pipe_if_unused() noexcept {
    if (sigpipe_[0] < 0) return;
    for (auto& h : signal_handlers_)
        if (h) return;
    int mine = sigpipe_[1];
    g_signal_fd.compare_exchange_strong(mine, -1);
    try {
        remove_reader(sigpipe_[0]);
    } catch (...) {  // (a closed loop: nothing is watched any more)
    }
    ::close(sigpipe_[0]);
    ::close(sigpipe_[1]);
    sigpipe_[0] = sigpipe_[1] = -1;
}

void EventLoop::dispatch_signals() {
    unsigned char buf[64];
    for (;;) {
        ssize_t n = ::read(sigpipe_[0], buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            int sig = buf[i];
            if (static_cast<std::size_t>(sig) < signal_handlers_.size() && signal_handlers_[sig]) {
                struct Run {
                    std::shared_ptr<detail::FdCallback> h;
                    void operator()() const {
                        if (!h->cancelled) h->cb();
                    }
                };
                ready_.push(Callback(Run{signal_handlers_[sig]}));
            }
        }
    }
}

// ---- errors ----------------------------------------------------------------------

void EventLoop::call_exception_handler(const ExceptionContext& ctx) noexcept {
    if (!handler_) {
        default_exception_handler(ctx);
        return;
    }
    try {
        handler_(*this, ctx);
    } catch (...) {
        ExceptionContext inner;
        inner.message = "Unhandled error in exception handler";
        inner.exception = std::current_exception();
        default_exception_handler(inner);
        default_exception_handler(ctx);
    }
}

namespace {
std::string describe(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        int status = 0;
        char* name = abi::__cxa_demangle(typeid(ex).name(), nullptr, nullptr, &status);
        std::string out = status == 0 && name ? name : typeid(ex).name();
        std::free(name);
        out += ": ";
        out += ex.what();
        return out;
    } catch (...) {
        return "unknown exception";
    }
}
}  // namespace

void EventLoop::default_exception_handler(const ExceptionContext& ctx) noexcept {
    detail::write_exception_context(ctx);
}

void detail::write_exception_context(const ExceptionContext& ctx) noexcept {
    try {
        std::string out = ctx.message.empty() ? "Unhandled exception in event loop" : ctx.message;
        if (!ctx.task.empty()) out += "\ntask: " + ctx.task;
        if (ctx.exception) out += "\nexception: " + describe(ctx.exception);
        out += "\n";
        std::fputs(out.c_str(), stderr);
    } catch (...) {
    }
}

}  // namespace asyncio
