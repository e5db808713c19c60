// The loop's io_uring: ring setup, receives, the poll step that waits on it
// (see src/uring.hpp for the design).
#include "uring.hpp"

#include <sys/epoll.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace asyncio {
namespace detail {

namespace {
// ASYNCIO_URING=0 keeps every loop on epoll alone (a test and comparison knob).
bool uring_wanted() {
    const char* v = std::getenv("ASYNCIO_URING");
    return !(v && std::strcmp(v, "0") == 0);
}
}  // namespace

std::unique_ptr<Uring> Uring::create(int epfd) {
    std::unique_ptr<Uring> u(new Uring());
    u->epfd = epfd;
    // Completions are posted only when the loop asks for them, in its poll
    // step (DEFER_TASKRUN, 6.1): not at the return of every send() from the
    // kernel, through the signal path, as with COOP_TASKRUN. That cut the
    // kernel's time per echo request by a tenth on 6.18 (docs/benchmarks.md).
    // It binds the ring to one thread (SINGLE_ISSUER): the ring starts
    // disabled and the loop's first poll step on it enables it for its
    // thread; a loop later run on another thread retires the ring
    // (EventLoop::retire_uring()). Older kernels: COOP_TASKRUN, then neither.
    // ASYNCIO_URING_DEFER=0 skips the first (a comparison knob).
    const unsigned base = IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
    const unsigned tries[] = {base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
                              base | IORING_SETUP_COOP_TASKRUN, IORING_SETUP_CQSIZE};
    const char* defer = std::getenv("ASYNCIO_URING_DEFER");
    io_uring_params params{};
    bool made = false;
    for (unsigned i = (defer && std::strcmp(defer, "0") == 0) ? 1 : 0; i < 3 && !made; ++i) {
        params = io_uring_params{};
        params.flags = tries[i];
        params.cq_entries = kCqEntries;
        made = io_uring_queue_init_params(kEntries, &u->ring, &params) >= 0;
        if (made && i == 0) {
            u->single_issuer = true;
            u->enabled = false;
        }
    }
    if (!made) return nullptr;
    u->ring_ok = true;
    if (!(params.features & IORING_FEAT_EXT_ARG)) return nullptr;  // waits with a timeout need it (5.11)
    // The buffer ring's entries and the buffers, page-aligned, untouched
    // until the kernel writes into them.
    const std::size_t ring_bytes = kBufCount * sizeof(io_uring_buf);
    const std::size_t total = ring_bytes + static_cast<std::size_t>(kBufCount) * kBufSize;
    void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return nullptr;
    u->br = static_cast<io_uring_buf_ring*>(mem);
    u->bufs = static_cast<char*>(mem) + ring_bytes;
    io_uring_buf_ring_init(u->br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(u->br);
    reg.ring_entries = kBufCount;
    reg.bgid = kGroup;
    if (io_uring_register_buf_ring(&u->ring, &reg, 0) < 0) {  // 5.19
        ::munmap(mem, total);
        u->br = nullptr;
        return nullptr;
    }
    for (unsigned i = 0; i < kBufCount; ++i) u->give_back(i);
    u->live.prev = u->live.next = &u->live;
    u->starved.prev = u->starved.next = &u->starved;
    // The poll on epfd is armed by the first poll step that uses the ring.
    return u;
}

Uring::~Uring() {
    if (ring_ok) io_uring_queue_exit(&ring);  // ends every request still armed
    if (br)
        ::munmap(br, kBufCount * sizeof(io_uring_buf) + static_cast<std::size_t>(kBufCount) * kBufSize);
}

std::uint64_t Uring::this_thread_serial() noexcept {
    static std::atomic<std::uint64_t> next{0};
    thread_local const std::uint64_t serial = next.fetch_add(1, std::memory_order_relaxed) + 1;
    return serial;
}

io_uring_sqe* Uring::sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    for (int tries = 0; !s && tries < 8; ++tries) {
        io_uring_submit(&ring);  // a full queue: hand it to the kernel
        s = io_uring_get_sqe(&ring);
    }
    return s;
}

bool Uring::arm_recv(UringOp* op) noexcept {
    io_uring_sqe* s = sqe();
    if (!s) return false;
    op->cancelled = false;
    io_uring_prep_recv_multishot(s, op->fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kGroup;
    io_uring_sqe_set_data(s, op);
    link(&live, op);
    return true;
}

void Uring::link(UringOp* head, UringOp* op) noexcept {
    op->prev = head->prev;
    op->next = head;
    head->prev->next = op;
    head->prev = op;
}

void Uring::unlink(UringOp* op) noexcept {
    op->prev->next = op->next;
    op->next->prev = op->prev;
    op->prev = op->next = op;  // run_completion() may unlink it again
}

void Uring::arm_epoll_poll() {
    io_uring_sqe* s = sqe();
    if (!s) return;  // poll_uring() will not wait on the ring, and tries again
    io_uring_prep_poll_multishot(s, epfd, POLLIN);
    io_uring_sqe_set_data64(s, kEpollTag);
    epoll_armed = true;
}

}  // namespace detail

using detail::IoRun;
using detail::Uring;
using detail::UringOp;

// At construction, so the ring's descriptor exists for the loop's whole
// life, as epoll's and the eventfd's do (a test counting descriptors inside
// a coroutine sees no change across its first connection). It stays idle,
// and the loop polls epoll directly, until the first receive is armed.
void EventLoop::open_uring() noexcept {
    uring_state_ = 2;
    if (!detail::uring_wanted()) return;
    try {
        uring_ = Uring::create(epfd_);
    } catch (...) {  // out of memory: epoll only
        return;
    }
    if (uring_) uring_state_ = 3;
}

bool EventLoop::uring_recv(int fd, UringOp* op) {
    if (uring_state_ != 1) [[unlikely]] {
        if (uring_state_ != 3) return false;
        // The first receive: the poll step moves to the ring from now on
        // (epoll's events then come through the ring's poll on epfd).
        uring_state_ = 1;
        uring_in_use_ = true;
        epoll_hot_ = true;
    }
    op->fd = fd;
    if (!uring_->arm_recv(op)) return false;  // the caller reads through epoll
    ++uring_live_;
    return true;
}

bool EventLoop::uring_send(int fd, const char* data, std::size_t n, UringOp* op) {
    if (!uring_in_use_) return false;
    io_uring_sqe* s = uring_->sqe();
    if (!s) return false;  // the caller sends through epoll
    op->fd = fd;
    op->cancelled = false;
    io_uring_prep_send(s, fd, data, n, MSG_NOSIGNAL);
    io_uring_sqe_set_data(s, op);
    Uring::link(&uring_->live, op);
    ++uring_live_;
    return true;
}

void EventLoop::uring_cancel(UringOp* op) noexcept {
    if (!uring_) return;
    op->cancelled = true;  // (an -ENOBUFS end then ends it for good)
    if (op->starved) return;  // not in the kernel: the next poll step ends it
    io_uring_sqe* s = uring_->sqe();
    if (!s) return;  // the receive goes on (stashed while paused, dropped once closing) until it ends
    io_uring_prep_cancel64(s, reinterpret_cast<std::uintptr_t>(op), 0);
    io_uring_sqe_set_data64(s, Uring::kIgnoreTag);
}

std::string_view EventLoop::uring_data(int res, unsigned flags) const noexcept {
    return {uring_->buffer(flags >> IORING_CQE_BUFFER_SHIFT), static_cast<std::size_t>(res)};
}

void EventLoop::uring_release(unsigned flags) noexcept { uring_->give_back(flags >> IORING_CQE_BUFFER_SHIFT); }

void EventLoop::uring_unsupported() noexcept {
    // The ring stays for the ops already armed; only new receives avoid it.
    uring_state_ = 2;
}

// The poll step when the loop has a ring: submit what was queued (new
// receives, cancels), wait for a completion or the timeout, then collect the
// completions, and epoll's events when its poll fired (or may still have
// some: epoll is level-triggered, the ring's poll reports only changes).
void EventLoop::poll_uring(int timeout_ms) {
    if (!uring_->enabled) [[unlikely]] {
        // The first poll step on a DEFER_TASKRUN ring: it becomes this thread's.
        // (The syscall itself: Debian 12's liburing 2.3 declares
        // io_uring_enable_rings() but does not export it.)
        if (::syscall(__NR_io_uring_register, uring_->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) {
            retire_uring();  // cannot happen on a kernel that made the ring; epoll then
            io_count_ = static_cast<std::uint32_t>(collect_epoll(timeout_ms, io_runs_.get()) - io_runs_.get());
            return;
        }
        uring_->enabled = true;
        uring_->owner = Uring::this_thread_serial();
    }
    io_uring* ring = &uring_->ring;
    IoRun* const first = io_runs_.get();
    IoRun* out = first;
    bool epoll_done = false;
    if (epoll_hot_) {
        out = collect_epoll(0, out);
        epoll_done = true;
        // Events to run, or tasks it woke (a descriptor's waiter is woken
        // directly, with no run in out): do not wait. The ring's poll will
        // not report what this collection already took.
        if (out != first || !ready_.empty()) {
            timeout_ms = 0;
        } else {
            epoll_hot_ = false;  // drained: the ring's poll reports the next ones
        }
    }
    if (uring_->starved.next != &uring_->starved) {
        out = rearm_starved(out);
        if (out != first || uring_->starved.next != &uring_->starved) timeout_ms = 0;
    }
    if (!uring_->epoll_armed) {
        uring_->arm_epoll_poll();
        if (!uring_->epoll_armed) {  // no room in the ring: do not wait on it blind to epoll
            timeout_ms = 0;
            epoll_hot_ = true;
        }
    }
collect:
    if (timeout_ms != 0 && io_uring_cq_ready(ring) == 0) {
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
        io_uring_cqe* cqe = nullptr;
        int r = io_uring_submit_and_wait_timeout(ring, &cqe, 1, timeout_ms < 0 ? nullptr : &ts, nullptr);
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            throw OSError(-r, "io_uring_enter");
        uring_->just_entered = true;
    } else if (io_uring_sq_ready(ring) > 0) {
        io_uring_submit(ring);  // (entering the kernel runs its pending completions too)
        uring_->just_entered = true;
    } else if (io_uring_cq_ready(ring) == 0) {
        // Nothing to submit, no completion posted, and the loop must not
        // wait: typically the tasks the last wait woke are ready to run.
        // Looking for more completions costs a system call when the kernel
        // has work pending (TASKRUN flag). Skip it once after a step that
        // entered the kernel: what arrived since is collected by the next
        // step, together with the replies those tasks are about to send.
        // Never twice in a row, so a loop kept busy still sees its I/O
        // every other iteration.
        if (uring_->just_entered) {
            uring_->just_entered = false;
        } else {
            io_uring_cqe* cqe = nullptr;
            (void)io_uring_peek_cqe(ring, &cqe);  // runs the kernel's pending completions if flagged
            uring_->just_entered = true;
        }
    }
    bool epoll_fired = false;
    unsigned head;
    unsigned seen = 0;
    unsigned quick = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
        if (seen == kMaxPollEvents) break;  // the rest waits for the next iteration
        ++seen;
        const std::uint64_t tag = cqe->user_data;
        if (tag == Uring::kEpollTag) {
            epoll_fired = true;
            if (!(cqe->flags & IORING_CQE_F_MORE)) uring_->epoll_armed = false;
            continue;
        }
        if (tag == Uring::kIgnoreTag) continue;
        auto* op = reinterpret_cast<UringOp*>(static_cast<std::uintptr_t>(tag));
        const bool final = !(cqe->flags & IORING_CQE_F_MORE);
        if (final && op->quick && op->quick(op, cqe->res)) {
            Uring::unlink(op);
            op->prev = op->next = nullptr;
            --uring_live_;
            ++quick;
            continue;
        }
        *out++ = IoRun{nullptr, ready_.tail_pos(), cqe->flags, final, cqe->res, op};
    }
    io_uring_cq_advance(ring, seen);
    // Only completions handled at once (sends that went out whole), and the
    // loop had nothing to do but wait: wait again, without an iteration.
    if (quick != 0 && out == first && !epoll_fired && timeout_ms < 0 && uring_->epoll_armed &&
        uring_->starved.next == &uring_->starved && !inbox_nonempty_.load(std::memory_order_acquire))
        goto collect;
    if (epoll_fired) {
        if (!epoll_done) out = collect_epoll(0, out);
        epoll_hot_ = true;  // until a collection finds nothing
    }
    io_count_ = static_cast<std::uint32_t>(out - first);
}

// Re-arm the oldest starved receives (see src/uring.hpp), at most
// kStarvedBudget: the completions before this step gave their buffers back.
// A starved op its owner cancelled gets its final -ECANCELED run instead.
IoRun* EventLoop::rearm_starved(IoRun* out) {
    static_assert(Uring::kStarvedBudget <= kMaxStarvedRearms, "io_runs_ has room for kMaxStarvedRearms of them");
    UringOp& head = uring_->starved;
    for (unsigned n = 0; head.next != &head && n < Uring::kStarvedBudget; ++n) {
        UringOp* op = head.next;
        Uring::unlink(op);
        op->starved = false;
        if (op->cancelled) {
            op->cancelled = false;
            *out++ = IoRun{nullptr, ready_.tail_pos(), 0, true, -ECANCELED, op};
        } else if (!uring_->arm_recv(op)) {
            *out++ = IoRun{nullptr, ready_.tail_pos(), Uring::kRearmFailed, true, -ENOBUFS, op};  // the owner decides
        }
    }
    return out;
}

// A completion collected by poll_uring(), at its place in the iteration.
void EventLoop::run_completion(const IoRun& r) noexcept {
    UringOp* op = r.op;
    if (r.read) {
        Uring::unlink(op);
        if (r.res == -ENOBUFS && !op->cancelled && r.gen != Uring::kRearmFailed) [[unlikely]] {
            // Out of buffers: wait for some (re-armed by a later poll step).
            // Not if its owner asked to end it: the cancel found it ended,
            // and the owner gets this end as the cancel's.
            op->starved = true;
            Uring::link(&uring_->starved, op);
            ++uring_starvations_;
            return;
        }
        op->prev = op->next = nullptr;
        --uring_live_;
    }
    try {
        op->complete(op, r.res, r.gen, r.read);
    } catch (...) {
        report_callback_error();
    }
}

// The loop runs on another thread than the one its DEFER_TASKRUN ring was
// enabled for (run_forever()): that thread alone may enter the kernel for
// the ring. Run the completions already posted (data the kernel took from
// the sockets), then end the ring as close does: each live op gets its final
// -ECANCELED, and its owner goes on through epoll (a receive the kernel had
// not run leaves its data in the socket; a send it had not run is sent again).
void EventLoop::adopt_uring_thread() noexcept {
    if (uring_ && uring_->single_issuer && uring_->enabled && uring_->owner != Uring::this_thread_serial())
        retire_uring();
}

void EventLoop::retire_uring() noexcept {
    if (!uring_) return;
    io_uring* ring = &uring_->ring;
    std::vector<IoRun> runs;
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    try {
        io_uring_for_each_cqe(ring, head, cqe) {
            ++seen;
            const std::uint64_t tag = cqe->user_data;
            if (tag == Uring::kEpollTag || tag == Uring::kIgnoreTag) continue;
            auto* op = reinterpret_cast<UringOp*>(static_cast<std::uintptr_t>(tag));
            runs.push_back(IoRun{nullptr, 0, cqe->flags, !(cqe->flags & IORING_CQE_F_MORE), cqe->res, op});
        }
    } catch (...) {  // out of memory: the completions not copied are lost with the ring
    }
    io_uring_cq_advance(ring, seen);
    for (const IoRun& r : runs) run_completion(r);  // (a starved op is ended by close_uring() below)
    close_uring();
    ++uring_retirements_;
}

// At close: end every request, then tell each op still live that it is over.
void EventLoop::close_uring() noexcept {
    if (!uring_) return;
    auto u = std::move(uring_);
    uring_state_ = 2;
    uring_in_use_ = false;
    // Starved ops (not in the kernel) end with the live ones.
    while (u->starved.next != &u->starved) {
        UringOp* op = u->starved.next;
        Uring::unlink(op);
        op->starved = op->cancelled = false;
        Uring::link(&u->live, op);
    }
    UringOp sentinel;  // the live list, moved out of the ring's memory
    UringOp& head = u->live;
    const bool any = head.next != &head;
    if (any) {
        sentinel.next = head.next;
        sentinel.prev = head.prev;
        sentinel.next->prev = &sentinel;
        sentinel.prev->next = &sentinel;
    }
    u.reset();  // io_uring_queue_exit: the kernel drops the requests
    if (!any) return;
    while (sentinel.next != &sentinel) {
        UringOp* op = sentinel.next;
        sentinel.next = op->next;
        op->next->prev = &sentinel;
        op->prev = op->next = nullptr;
        --uring_live_;
        try {
            op->complete(op, -ECANCELED, 0, true);
        } catch (...) {
        }
    }
}

}  // namespace asyncio
