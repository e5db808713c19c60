// Coroutine frame allocator: per-thread free lists by 16-byte size class,
// refilled from 64 KiB slabs.
//
// Frames of one coroutine function all have the same size, so a task created
// and finished in a loop reuses the same block: no malloc in the steady state,
// and no per-block malloc header (a suspended task costs its frame size
// rounded to 16 bytes). A block freed on another thread joins that thread's
// lists. Slabs are never returned while the process runs (like pymalloc's
// arenas, the pool keeps its peak); they are released at exit. Sizes above
// kMaxPooled go to malloc. Under AddressSanitizer the pool is bypassed so
// use-after-free stays visible.
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "asyncio/detail/core.hpp"

namespace asyncio::detail {
namespace {

constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxPooled = 1024;
constexpr std::size_t kClasses = kMaxPooled / kGranule;
constexpr std::size_t kSlabBytes = 64 * 1024;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPool = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPool = false;
#else
constexpr bool kPool = true;
#endif
#else
constexpr bool kPool = true;
#endif

struct FreeBlock {
    FreeBlock* next;
};

// Every slab ever carved, released at process exit (blocks may migrate
// between threads, so a slab cannot be freed when its thread ends).
struct SlabRegistry {
    std::mutex mu;
    std::vector<void*> slabs;
    ~SlabRegistry() {
        for (void* s : slabs) std::free(s);
    }
};
SlabRegistry& registry() {
    static SlabRegistry* r = new SlabRegistry();  // never destroyed: blocks may be freed during exit
    return *r;
}

// The free lists are a trivially destructible thread_local, so the hot path
// reads them without the TLS init-guard call a non-trivial one costs. A
// separate guard object, created on a thread's first refill, marks the
// lists dead when the thread exits (frames freed after that are dropped:
// the slab registry owns their memory).
thread_local bool t_pools_dead = false;
thread_local FreeBlock* t_heads[kClasses] = {};

struct PoolsGuard {
    ~PoolsGuard() { t_pools_dead = true; }
};
thread_local PoolsGuard t_guard;

inline std::size_t class_of(std::size_t n) { return (n + kGranule - 1) / kGranule - 1; }

// Out of line so the hot paths below stay small leaf functions.
[[gnu::noinline]] FreeBlock* refill(std::size_t c) {
    (void)&t_guard;  // odr-use: registers the thread-exit guard
    const std::size_t block = (c + 1) * kGranule;
    const std::size_t count = kSlabBytes / block;
    auto* slab = static_cast<char*>(std::malloc(block * count));
    if (!slab) throw std::bad_alloc();
    {
        SlabRegistry& r = registry();
        std::lock_guard<std::mutex> lk(r.mu);
        r.slabs.push_back(slab);
    }
    FreeBlock* head = nullptr;
    for (std::size_t i = count; i-- > 1;) {  // block 0 is returned to the caller
        auto* b = reinterpret_cast<FreeBlock*>(slab + i * block);
        b->next = head;
        head = b;
    }
    t_heads[c] = head;
    return reinterpret_cast<FreeBlock*>(slab);
}

[[gnu::noinline]] void* heap_alloc(std::size_t n) {
    void* p = std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void* frame_alloc(std::size_t n) {
    if (kPool && n <= kMaxPooled && !t_pools_dead) {
        std::size_t c = class_of(n);
        if (FreeBlock* b = t_heads[c]) [[likely]] {
            t_heads[c] = b->next;
            return b;
        }
        return refill(c);
    }
    return heap_alloc(n);
}

void frame_free(void* p, std::size_t n) noexcept {
    if (kPool && n <= kMaxPooled) {
        if (t_pools_dead) return;  // thread exiting: the slab registry owns the memory
        std::size_t c = class_of(n);
        auto* b = static_cast<FreeBlock*>(p);
        b->next = t_heads[c];
        t_heads[c] = b;
        return;
    }
    std::free(p);
}

}  // namespace asyncio::detail
