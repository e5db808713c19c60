// Internal: the event loop's timer heap (asyncio's `_scheduled` heapq).
//
// A 4-ary min-heap of 16-byte entries {deadline key, seq << 32 | slot}. The
// four children of a node fill exactly one cache line (the storage is offset
// so that entry 1 starts a line), so a sift-down touches one line per level
// and the heap is half as deep as a binary one: popping from 100,000 timers
// costs about 9 line fetches instead of 17.
//
// The deadline is stored as an integer with the same order as the double
// (see deadline_key), so (deadline, seq) compares as one 128-bit integer.
// seq gives FIFO order to equal deadlines; it is 32 bits wide and the loop
// renumbers the entries (renumber()) before it would wrap.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace asyncio::detail {

struct TimerEntry {
    std::uint64_t key;       // deadline_key(when)
    std::uint64_t seq_slot;  // sequence number << 32 | timer slot
    std::uint32_t slot() const noexcept { return static_cast<std::uint32_t>(seq_slot); }
    std::uint32_t seq() const noexcept { return static_cast<std::uint32_t>(seq_slot >> 32); }
};

// __extension__: no -Wpedantic warning in a consumer's build.
__extension__ typedef unsigned __int128 TimerOrder;

inline bool timer_before(const TimerEntry& a, const TimerEntry& b) noexcept {
    return (static_cast<TimerOrder>(a.key) << 64 | a.seq_slot) < (static_cast<TimerOrder>(b.key) << 64 | b.seq_slot);
}

/// An unsigned integer ordered as the (non-NaN) double `when` is; -0.0 and 0.0 map alike.
inline std::uint64_t deadline_key(double when) noexcept {
    when += 0.0;  // -0.0 -> 0.0
    std::uint64_t u;
    std::memcpy(&u, &when, sizeof u);
    return (u >> 63) ? ~u : (u | (std::uint64_t{1} << 63));
}
inline double deadline_of(std::uint64_t key) noexcept {
    std::uint64_t u = (key >> 63) ? (key & ~(std::uint64_t{1} << 63)) : ~key;
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}

class TimerHeap {
public:
    TimerHeap() = default;
    TimerHeap(const TimerHeap&) = delete;
    TimerHeap& operator=(const TimerHeap&) = delete;
    ~TimerHeap() { release(); }

    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return size_ == cap_; }
    std::size_t size() const noexcept { return size_; }
    const TimerEntry& top() const noexcept { return a_[0]; }
    /// The last entry in storage order (a leaf: removing it keeps the heap order).
    const TimerEntry& back() const noexcept { return a_[size_ - 1]; }
    void pop_back() noexcept { --size_; }
    TimerEntry* begin() noexcept { return a_; }
    TimerEntry* end() noexcept { return a_ + size_; }

    void reserve_one() {
        if (size_ == cap_) grow();
    }
    void push(TimerEntry e) {
        reserve_one();
        sift_up(size_++, e);
    }

    /// Remove the top entry. Floyd's variant: move the hole down to a leaf
    /// along the smallest children (3 comparisons a level), then sift the
    /// last entry up from there (it usually belongs near the bottom).
    void pop() noexcept {
        std::size_t n = --size_;
        if (n == 0) return;
        const TimerEntry last = a_[n];
        std::size_t i = 0;
        for (;;) {
            std::size_t c = 4 * i + 1;
            if (c + 3 < n) {
                if (4 * c + 16 < n) {
                    // The four children's own children: 256 contiguous bytes. Fetch
                    // them while this level is compared (the heap outgrows L2).
                    const char* g = reinterpret_cast<const char*>(&a_[4 * c + 1]);
                    __builtin_prefetch(g);
                    __builtin_prefetch(g + 64);
                    __builtin_prefetch(g + 128);
                    __builtin_prefetch(g + 192);
                }
                // Index arithmetic, not ?:, so that no comparison becomes a
                // (mispredicted half the time) branch.
                std::size_t m01 = c + static_cast<std::size_t>(timer_before(a_[c + 1], a_[c]));
                std::size_t m23 = c + 2 + static_cast<std::size_t>(timer_before(a_[c + 3], a_[c + 2]));
                std::size_t pick = static_cast<std::size_t>(0) - static_cast<std::size_t>(timer_before(a_[m23], a_[m01]));
                std::size_t m = m01 ^ ((m01 ^ m23) & pick);
                a_[i] = a_[m];
                i = m;
                continue;
            }
            if (c < n) {
                std::size_t m = c;
                for (std::size_t k = c + 1; k < n; ++k)
                    if (timer_before(a_[k], a_[m])) m = k;
                a_[i] = a_[m];
                i = m;
            }
            break;
        }
        sift_up(i, last);
    }

    /// Keep the first n entries (after the caller compacted them) and restore the heap order.
    void truncate_and_heapify(std::size_t n) noexcept {
        size_ = n;
        if (n < 2) return;
        for (std::size_t i = (n - 2) / 4 + 1; i-- > 0;) sift_down(i);
    }
    void clear() noexcept { size_ = 0; }
    void reserve(std::size_t n) {
        if (n > cap_) reallocate(n);
    }

private:
    // Put e at the hole i or above it.
    void sift_up(std::size_t i, const TimerEntry e) noexcept {
        while (i > 0) {
            std::size_t p = (i - 1) >> 2;
            if (!timer_before(e, a_[p])) break;
            a_[i] = a_[p];
            i = p;
        }
        a_[i] = e;
    }
    void sift_down(std::size_t i) noexcept {
        const TimerEntry e = a_[i];
        for (;;) {
            std::size_t c = 4 * i + 1;
            if (c >= size_) break;
            std::size_t end = c + 4 < size_ ? c + 4 : size_;
            std::size_t m = c;
            for (std::size_t k = c + 1; k < end; ++k)
                if (timer_before(a_[k], a_[m])) m = k;
            if (!timer_before(a_[m], e)) break;
            a_[i] = a_[m];
            i = m;
        }
        a_[i] = e;
    }
    void grow() { reallocate(cap_ ? cap_ * 2 : 64); }
    void reallocate(std::size_t cap) {
        // Entry 1 (the root's first child) starts a 64-byte line, hence the 3-entry offset.
        auto* raw = static_cast<TimerEntry*>(::operator new((cap + 3) * sizeof(TimerEntry), std::align_val_t{64}));
        TimerEntry* a = raw + 3;
        if (size_) std::memcpy(static_cast<void*>(a), a_, size_ * sizeof(TimerEntry));
        release();
        a_ = a;
        cap_ = cap;
    }
    void release() noexcept {
        if (a_) ::operator delete(static_cast<void*>(a_ - 3), std::align_val_t{64});
        a_ = nullptr;
    }

    TimerEntry* a_ = nullptr;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

// Storage that grows by fixed chunks of 2^kChunkBits elements: nothing is
// moved or copied as it grows, and fresh memory is touched (page-faulted) once
// instead of again at every doubling.
template <class T, unsigned kChunkBits = 10>
class Slab {
public:
    std::size_t size() const noexcept { return size_; }
    T& operator[](std::size_t i) noexcept { return chunks_[i >> kChunkBits][i & kMask]; }
    /// Append a default-constructed element.
    void grow_one() {
        if ((size_ >> kChunkBits) == chunks_.size()) chunks_.push_back(std::make_unique<T[]>(kChunk));
        ++size_;
    }
    void clear() noexcept {
        chunks_.clear();
        size_ = 0;
    }

private:
    static constexpr std::size_t kChunk = std::size_t{1} << kChunkBits;
    static constexpr std::size_t kMask = kChunk - 1;
    std::vector<std::unique_ptr<T[]>> chunks_;
    std::size_t size_ = 0;
};

// The free timer slots, as a two-level bitmap: a new timer takes the lowest
// free slot, so timers armed together get neighbouring slots (their writes are
// sequential however the previous batch fired) and the slab stays compact.
// One freed slot is kept aside and handed out first: a timer cancelled and
// another armed at once (a timeout scope left, the next one entered) reuse
// its still-cached slot without the bitmap's scans.
class FreeSlots {
public:
    bool empty() const noexcept { return count_ == 0; }
    /// Make room for slots [0, n) (none of them free yet).
    void resize(std::size_t n) {
        std::size_t words = (n + 63) >> 6;
        if (words > bits_.size()) {
            bits_.resize(words, 0);
            summary_.resize((words + 63) >> 6, 0);
        }
    }
    void add(std::uint32_t slot) noexcept {  // slot < the size given to resize()
        ++count_;
        if (spare_ == kNone) {
            spare_ = slot;
            return;
        }
        std::size_t w = slot >> 6;
        bits_[w] |= std::uint64_t{1} << (slot & 63);
        summary_[w >> 6] |= std::uint64_t{1} << (w & 63);
        if ((w >> 6) < lo_) lo_ = w >> 6;
    }
    /// The slot kept aside, else the lowest free slot, taken. Requires !empty().
    std::uint32_t take() noexcept {
        --count_;
        if (spare_ != kNone) {
            std::uint32_t slot = spare_;
            spare_ = kNone;
            return slot;
        }
        std::size_t sw = lo_;
        while (summary_[sw] == 0) ++sw;
        lo_ = sw;
        std::size_t w = sw << 6 | static_cast<std::size_t>(__builtin_ctzll(summary_[sw]));
        std::uint64_t& b = bits_[w];
        auto slot = static_cast<std::uint32_t>(w << 6 | static_cast<std::size_t>(__builtin_ctzll(b)));
        b &= b - 1;
        if (b == 0) summary_[sw] &= summary_[sw] - 1;  // w is the lowest word with a free slot
        return slot;
    }
    void clear() noexcept {
        for (auto& b : bits_) b = 0;
        for (auto& b : summary_) b = 0;
        lo_ = 0;
        count_ = 0;
        spare_ = kNone;
    }

private:
    static constexpr std::uint32_t kNone = 0xffffffffu;
    std::vector<std::uint64_t> bits_;     // bit i of word w: slot 64w + i is free
    std::vector<std::uint64_t> summary_;  // bit j of word k: bits_[64k + j] != 0
    std::size_t lo_ = 0;                  // no summary word below this one is non-zero
    std::size_t count_ = 0;               // free slots, spare_ included
    std::uint32_t spare_ = kNone;         // a free slot not in the bitmap
};

}  // namespace asyncio::detail
