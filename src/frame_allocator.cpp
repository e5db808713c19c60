// Coroutine frame allocator: per-thread free lists by 16-byte size class,
// refilled from 64 KiB slabs.
//
// Frames of one coroutine function all have the same size, so a task created
// and finished in a loop reuses the same block: no malloc in the steady state,
// and no per-block malloc header (a suspended task costs its frame size
// rounded to 16 bytes). A block freed on another thread joins that thread's
// lists. Slabs are never returned (like pymalloc's arenas, the pool keeps its
// peak). Sizes above kMaxPooled go to malloc. Under AddressSanitizer the pool
// is bypassed so use-after-free stays visible.
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "asyncio/detail/core.hpp"

namespace asyncio::detail {
namespace frame_pool {
// The free lists are trivially destructible thread_locals, so the inline hot
// path (core.hpp) reads them without a TLS init-guard call. A separate guard
// object, created on a thread's first refill, marks the pools dead when the
// thread exits: no refill after that (frames allocated then are malloc'd).
thread_local constinit FreeBlock* t_heads[kClasses] = {};
}  // namespace frame_pool

namespace {
using namespace frame_pool;

thread_local constinit bool t_pools_dead = false;

constexpr std::size_t kSlabBytes = 64 * 1024;

// Every slab ever carved (blocks may migrate between threads, so a slab
// cannot be freed when its thread ends; the registry is never destroyed).
struct SlabRegistry {
    std::mutex mu;
    std::vector<void*> slabs;
};
SlabRegistry& registry() {
    static SlabRegistry* r = new SlabRegistry();  // never destroyed: blocks may be freed during exit
    return *r;
}

struct PoolsGuard {
    ~PoolsGuard() { t_pools_dead = true; }
};
thread_local PoolsGuard t_guard;

FreeBlock* refill(std::size_t c) {
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

}  // namespace

// frame_alloc() found no free block (or the size is not pooled).
void* frame_pool::alloc_slow(std::size_t n) {
    if (kEnabled && n <= kMaxPooled) {
        if (!t_pools_dead) return refill(class_of(n));
        n = (class_of(n) + 1) * kGranule;  // whole block: another thread may pool it when freed
    }
    void* p = std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}

// frame_free() of a size that is not pooled (or with the pool disabled).
void frame_pool::free_slow(void* p, std::size_t) noexcept { std::free(p); }

}  // namespace asyncio::detail
