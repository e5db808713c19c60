// Internal: a move-only type-erased `void()` callable with small-buffer storage.
//
// The ready queue and the timer slab store these by value, so a callable of up
// to kInline bytes (a lambda capturing a few pointers) costs no allocation.
// Larger ones live on the heap. A trivially copyable callable needs no manager:
// moving it is a memcpy, which keeps the ready queue's hot path branch-light.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace asyncio::detail {

class Callback {
public:
    static constexpr std::size_t kInline = 40;

    Callback() noexcept = default;

    template <class F, class D = std::decay_t<F>,
              class = std::enable_if_t<!std::is_same_v<D, Callback>>>
    Callback(F&& f) {  // NOLINT(google-explicit-constructor)
        static_assert(std::is_invocable_v<D&>, "a callback must be callable with no arguments");
        if constexpr (sizeof(D) <= kInline && alignof(D) <= alignof(std::max_align_t) &&
                      std::is_nothrow_move_constructible_v<D>) {
            ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
            invoke_ = [](void* p) { (*std::launder(reinterpret_cast<D*>(p)))(); };
            if constexpr (!(std::is_trivially_copyable_v<D> && std::is_trivially_destructible_v<D>)) {
                manage_ = [](void* src, void* dst) noexcept {
                    D* s = std::launder(reinterpret_cast<D*>(src));
                    if (dst) ::new (dst) D(std::move(*s));
                    s->~D();
                };
            }
        } else {
            D* heap = new D(std::forward<F>(f));
            std::memcpy(buf_, &heap, sizeof heap);
            invoke_ = [](void* p) {
                D* h;
                std::memcpy(&h, p, sizeof h);
                (*h)();
            };
            manage_ = [](void* src, void* dst) noexcept {
                if (dst) {
                    std::memcpy(dst, src, sizeof(D*));
                } else {
                    D* h;
                    std::memcpy(&h, src, sizeof h);
                    delete h;
                }
            };
        }
    }

    /// A plain function pointer with one context pointer: the cheapest form.
    Callback(void (*fn)(void*), void* ctx) noexcept {
        struct Pair {
            void (*fn)(void*);
            void* ctx;
        };
        ::new (static_cast<void*>(buf_)) Pair{fn, ctx};
        invoke_ = [](void* p) {
            auto* pr = std::launder(reinterpret_cast<Pair*>(p));
            pr->fn(pr->ctx);
        };
    }

    /// Fn(ctx) with Fn known at compile time: one indirect call, not two.
    template <void (*Fn)(void*)>
    static Callback bind(void* ctx) noexcept {
        Callback cb;
        cb.set_bound<Fn>(ctx);
        return cb;
    }
    /// *this = bind<Fn>(ctx), without a temporary.
    template <void (*Fn)(void*)>
    void assign_bound(void* ctx) noexcept {
        reset();
        set_bound<Fn>(ctx);
    }
    /// Construct bind<Fn>(ctx) in raw storage, without a temporary.
    template <void (*Fn)(void*)>
    static void emplace_bound(void* where, void* ctx) noexcept {
        (::new (where) Callback)->set_bound<Fn>(ctx);  // default-init: only the pointers are set
    }
    /// The cheapest entry, with no forwarding function in between: invoke
    /// receives the storage, whose first word is ctx (read it back with
    /// context_of()). The task step uses it.
    static Callback raw(void (*invoke)(void* storage), void* ctx) noexcept {
        Callback cb;
        cb.set_raw(invoke, ctx);
        return cb;
    }
    /// Construct raw(invoke, ctx) in raw storage, without a temporary.
    static void emplace_raw(void* where, void (*invoke)(void* storage), void* ctx) noexcept {
        (::new (where) Callback)->set_raw(invoke, ctx);
    }
    /// The ctx of a raw() or bind() entry, from the storage invoke received.
    static void* context_of(void* storage) noexcept {
        void* c;
        std::memcpy(&c, storage, sizeof c);
        return c;
    }

    Callback(Callback&& o) noexcept { take(o); }
    Callback& operator=(Callback&& o) noexcept {
        if (this != &o) {
            reset();
            take(o);
        }
        return *this;
    }
    Callback(const Callback&) = delete;
    Callback& operator=(const Callback&) = delete;
    ~Callback() { reset(); }

    explicit operator bool() const noexcept { return invoke_ != nullptr; }

    /// Run the callable (it stays stored; call reset() to destroy it).
    void operator()() { invoke_(buf_); }

    void reset() noexcept {
        if (manage_) manage_(buf_, nullptr);
        invoke_ = nullptr;
        manage_ = nullptr;
    }
    /// Destroy the callable of a slot nobody reads again (the ready queue's
    /// slot just run: it is rebuilt by the push that reuses it). Unlike
    /// reset(), the pointers are left as they are.
    void dispose() noexcept {
        if (manage_) manage_(buf_, nullptr);
    }

private:
    void set_raw(void (*invoke)(void*), void* ctx) noexcept {
        std::memcpy(buf_, &ctx, sizeof ctx);
        invoke_ = invoke;
    }
    template <void (*Fn)(void*)>
    void set_bound(void* ctx) noexcept {
        set_raw([](void* p) { Fn(context_of(p)); }, ctx);
    }

    void take(Callback& o) noexcept {
        invoke_ = o.invoke_;
        manage_ = o.manage_;
        if (manage_)
            manage_(o.buf_, buf_);
        else if (invoke_)
            std::memcpy(buf_, o.buf_, kInline);
        o.invoke_ = nullptr;
        o.manage_ = nullptr;
    }

    void (*invoke_)(void*) = nullptr;
    void (*manage_)(void* src, void* dst) noexcept = nullptr;
    alignas(std::max_align_t) unsigned char buf_[kInline];
};

}  // namespace asyncio::detail
