// Coroutine frame allocator: per-thread free lists by 16-byte size class.
//
// Frames of one coroutine function all have the same size, so a task created
// and finished in a loop reuses the same block: no malloc in the steady state.
// Blocks freed on another thread simply join that thread's lists (they are
// plain malloc blocks underneath). Sizes above kMaxPooled go to malloc.
// Under AddressSanitizer the pool is bypassed so use-after-free stays visible.
#include <cstddef>
#include <cstdlib>
#include <new>

#include "asyncio/detail/core.hpp"

namespace asyncio::detail {
namespace {

constexpr std::size_t kGranule = 16;
constexpr std::size_t kMaxPooled = 1024;
constexpr std::size_t kClasses = kMaxPooled / kGranule;
constexpr std::size_t kMaxCached = 4096;  // blocks kept per class

struct FreeBlock {
    FreeBlock* next;
};

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

thread_local bool t_pools_dead = false;  // trivially destructible: safe after exit

struct Pools {
    FreeBlock* head[kClasses] = {};
    std::size_t count[kClasses] = {};
    ~Pools() {
        t_pools_dead = true;
        for (std::size_t c = 0; c < kClasses; ++c) {
            while (FreeBlock* b = head[c]) {
                head[c] = b->next;
                std::free(b);
            }
        }
    }
};

thread_local Pools t_pools;

inline std::size_t class_of(std::size_t n) { return (n + kGranule - 1) / kGranule - 1; }

}  // namespace

void* frame_alloc(std::size_t n) {
    if (kPool && n <= kMaxPooled && !t_pools_dead) {
        std::size_t c = class_of(n);
        if (FreeBlock* b = t_pools.head[c]) {
            t_pools.head[c] = b->next;
            --t_pools.count[c];
            return b;
        }
        void* p = std::malloc((c + 1) * kGranule);
        if (!p) throw std::bad_alloc();
        return p;
    }
    void* p = std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}

void frame_free(void* p, std::size_t n) noexcept {
    if (kPool && n <= kMaxPooled && !t_pools_dead) {
        std::size_t c = class_of(n);
        if (t_pools.count[c] < kMaxCached) {
            auto* b = static_cast<FreeBlock*>(p);
            b->next = t_pools.head[c];
            t_pools.head[c] = b;
            ++t_pools.count[c];
            return;
        }
    }
    std::free(p);
}

}  // namespace asyncio::detail
