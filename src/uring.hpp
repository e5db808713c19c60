// The loop's io_uring (private to src/): completion-based receives for the
// socket transports, so that a busy server makes one io_uring_enter per loop
// iteration instead of a recv() per connection and an epoll_wait().
//
// - One ring per loop, created on the first transport that reads (never for a
//   loop without sockets), unless ASYNCIO_URING=0 or the kernel refuses
//   (io_uring disabled, seccomp, no multishot receive): then the transports
//   read through epoll as before.
// - Receives are multishot (IORING_OP_RECV with IORING_RECV_MULTISHOT) into a
//   ring of provided buffers the kernel picks from; each completion's data is
//   handed to the transport and its buffer given back at once.
// - The loop keeps waiting on epoll for everything else (listening sockets,
//   add_reader, the wake-up eventfd, signals): a multishot poll on the epoll
//   descriptor, in the ring, reports when epoll has events.
// - An armed receive is a UringOp linked into `live`; it stays valid until
//   its final completion (one without IORING_CQE_F_MORE) has been run.
//   Closing the loop exits the ring and gives every op still live a final
//   -ECANCELED completion, so owners can drop what they keep for the kernel.
// - Running out of buffers ends a receive with -ENOBUFS. The loop does not
//   re-arm it at once (with thousands of busy sockets every re-armed receive
//   would fail again in the same pass, and the rings would overflow with
//   failures): it waits in `starved`, still live for its owner, and each poll
//   step re-arms the oldest kStarvedBudget of them after the completions
//   have given their buffers back. A cancel of a starved op is answered by
//   the loop itself with the final -ECANCELED.
// - Where the kernel has it (6.1), the ring defers its completion work until
//   the poll step asks for it (DEFER_TASKRUN), which binds it to one thread.
//   A loop run later on another thread retires its ring: the completions
//   already posted are run, every live op then ends with -ECANCELED, and the
//   transports read (and send) through epoll from then on (retire_uring()).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "asyncio/detail/loop.hpp"

namespace asyncio::detail {

struct Uring {
    // user_data values that are not ops (ops are pointers, never this small).
    static constexpr std::uint64_t kEpollTag = 1;   // the poll on the epoll fd
    static constexpr std::uint64_t kIgnoreTag = 2;  // cancel requests
    static constexpr unsigned kEntries = 256;
    static constexpr unsigned kBufCount = 256;      // a power of two
    static constexpr unsigned kBufSize = 16 * 1024;
    static constexpr unsigned kCqEntries = 4096;     // room for bursts of thousands of sockets
    static constexpr unsigned kStarvedBudget = 64;  // re-arms per poll step (EventLoop::kMaxStarvedRearms)
    // IoRun::gen of a starved op's -ENOBUFS when re-arming it failed (no
    // submission entry): delivered to its owner, which reads through epoll.
    static constexpr std::uint32_t kRearmFailed = 0xffffffffu;
    static constexpr int kGroup = 0;

    /// A ring with its buffers registered and the epoll fd polled, or nullptr
    /// when io_uring cannot be used here (the reason is not an error).
    static std::unique_ptr<Uring> create(int epfd);
    ~Uring();
    Uring(const Uring&) = delete;
    Uring& operator=(const Uring&) = delete;

    /// A free submission entry (submits the queue first when it is full),
    /// or nullptr when the kernel keeps refusing the submission.
    io_uring_sqe* sqe() noexcept;
    void arm_epoll_poll();
    /// Submit op's multishot receive (op->fd) and link it into `live`; false
    /// when the kernel keeps refusing submissions.
    bool arm_recv(UringOp* op) noexcept;
    static void link(UringOp* head, UringOp* op) noexcept;
    /// Unlink op from its list, leaving it linked to itself.
    static void unlink(UringOp* op) noexcept;
    void give_back(unsigned bid) noexcept {
        io_uring_buf_ring_add(br, bufs + static_cast<std::size_t>(bid) * kBufSize, kBufSize,
                              static_cast<unsigned short>(bid), io_uring_buf_ring_mask(kBufCount), 0);
        io_uring_buf_ring_advance(br, 1);
    }
    char* buffer(unsigned bid) const noexcept { return bufs + static_cast<std::size_t>(bid) * kBufSize; }

    io_uring ring{};
    io_uring_buf_ring* br = nullptr;
    char* bufs = nullptr;
    int epfd = -1;
    bool epoll_armed = false;  // the multishot poll on epfd is in place
    // The last poll step entered the kernel (waited or submitted): the
    // next one, if it must not wait, may skip the look for completions
    // that costs a system call (EventLoop::poll_uring()).
    bool just_entered = false;
    // DEFER_TASKRUN rings (Uring::create()): only one thread may enter the
    // kernel for them, the one whose poll step enabled the ring.
    bool single_issuer = false;
    bool enabled = true;
    std::uint64_t owner = 0;  // this_thread_serial() of that thread
    /// A number no other thread of the process ever gets (std::thread::id
    /// and gettid() values are reused once a thread has ended).
    static std::uint64_t this_thread_serial() noexcept;
    UringOp live{};            // sentinel of the armed ops
    UringOp starved{};         // sentinel of the ops waiting for buffers (see above)

private:
    Uring() = default;
    bool ring_ok = false;
};

}  // namespace asyncio::detail
