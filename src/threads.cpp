// Out-of-line parts of asyncio/threads.hpp: the concurrent future's state,
// ThreadPoolExecutor and the loop's default executor.
//
// ThreadPoolExecutor: one mutex guards the job queue, the thread list and the
// flags. Workers start on demand (a job arriving while no worker is idle
// starts one, up to max_workers) and live until shutdown; shutdown(wait) is
// idempotent and safe from several threads at once: the first waiter joins
// the threads, later ones wait until it has finished.
#include "asyncio/threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>

namespace asyncio {

namespace detail {

// ---- ConcurrentStateBase ---------------------------------------------------------

bool ConcurrentStateBase::cancel() {
    std::vector<std::function<void()>> cbs;
    {
        std::lock_guard<std::mutex> lk(mu);
        if (state == State::kRunning || state == State::kFinished) return false;
        if (state == State::kCancelled) return true;
        state = State::kCancelled;
        cbs.swap(callbacks);
    }
    cv.notify_all();
    run_callbacks(cbs);
    return true;
}

bool ConcurrentStateBase::set_running_or_notify_cancel() {
    std::lock_guard<std::mutex> lk(mu);
    if (state == State::kCancelled) return false;
    if (state != State::kPending) throw InvalidStateError("Future in unexpected state");
    state = State::kRunning;
    return true;
}

bool ConcurrentStateBase::done() const {
    std::lock_guard<std::mutex> lk(mu);
    return state == State::kCancelled || state == State::kFinished;
}

bool ConcurrentStateBase::cancelled() const {
    std::lock_guard<std::mutex> lk(mu);
    return state == State::kCancelled;
}

bool ConcurrentStateBase::running() const {
    std::lock_guard<std::mutex> lk(mu);
    return state == State::kRunning;
}

bool ConcurrentStateBase::wait(std::optional<double> seconds) const {
    std::unique_lock<std::mutex> lk(mu);
    // cv is mutable in spirit: waiting does not change the state.
    auto& c = const_cast<std::condition_variable&>(cv);
    auto is_done = [this] { return state == State::kCancelled || state == State::kFinished; };
    if (!seconds) {
        c.wait(lk, is_done);
        return true;
    }
    double s = std::max(0.0, *seconds);
    // Python's lock timeouts stop at PY_TIMEOUT_MAX (about 9.2e9 s); beyond
    // it (inf, NaN included) the deadline would overflow steady_clock.
    if (!(s <= 9.2e9)) throw OverflowError("timestamp out of range");
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
    return c.wait_until(lk, deadline, is_done);
}

void ConcurrentStateBase::rethrow_if_failed() const {
    std::exception_ptr e;
    {
        std::lock_guard<std::mutex> lk(mu);
        if (state == State::kCancelled) throw CancelledError();
        e = exc;
    }
    if (e) std::rethrow_exception(e);
}

std::exception_ptr ConcurrentStateBase::exception_of() const {
    std::lock_guard<std::mutex> lk(mu);
    if (state == State::kCancelled) throw CancelledError();
    return exc;
}

namespace {
void report_callback_exception(std::exception_ptr e) noexcept {
    const char* what = "unknown exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        what = x.what();
    } catch (...) {
    }
    std::fprintf(stderr, "exception calling callback for <ConcurrentFuture>: %s\n", what);
}
}  // namespace

void ConcurrentStateBase::add_callback(std::function<void()> f) {
    {
        std::lock_guard<std::mutex> lk(mu);
        if (state != State::kCancelled && state != State::kFinished) {
            callbacks.push_back(std::move(f));
            return;
        }
    }
    std::vector<std::function<void()>> one;
    one.push_back(std::move(f));
    run_callbacks(one);
}

void ConcurrentStateBase::run_callbacks(std::vector<std::function<void()>>& cbs) noexcept {
    // As concurrent.futures: an exception from a done callback is logged
    // (to stderr, where Python's last-resort logging handler writes) and
    // the other callbacks still run.
    for (auto& cb : cbs) {
        try {
            cb();
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    cbs.clear();
}

void raise_timeout() { throw TimeoutError(); }

void raise_executor_shut_down() { throw RuntimeError("cannot schedule new futures after shutdown"); }

}  // namespace detail

// ---- ThreadPoolExecutor -------------------------------------------------------------

struct ThreadPoolExecutor::Impl {
    std::mutex mu;
    std::condition_variable cv;       // workers: a job arrived or shutdown
    std::condition_variable joined_cv;  // shutdown(wait) callers: the threads are joined
    std::deque<detail::Callback> queue;
    std::vector<std::thread> threads;
    std::size_t idle = 0;
    bool shutdown = false;
    bool joining = false;
    bool joined = false;
};

namespace {
std::size_t default_max_workers() {
    unsigned n = std::thread::hardware_concurrency();
    return std::min<std::size_t>(32, (n ? n : 1) + 4);
}
}  // namespace

ThreadPoolExecutor::ThreadPoolExecutor() : impl_(std::make_unique<Impl>()), max_workers_(default_max_workers()) {}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers)
    : impl_(std::make_unique<Impl>()), max_workers_(max_workers) {
    if (max_workers == 0) throw ValueError("max_workers must be greater than 0");
}

ThreadPoolExecutor::~ThreadPoolExecutor() { shutdown(true); }

void ThreadPoolExecutor::execute(detail::Callback job) {
    Impl& im = *impl_;
    std::unique_lock<std::mutex> lk(im.mu);
    if (im.shutdown) {
        lk.unlock();
        detail::raise_executor_shut_down();  // job is dropped: its future is cancelled
    }
    im.queue.push_back(std::move(job));
    if (im.idle >= im.queue.size() || im.threads.size() >= max_workers_) {
        im.cv.notify_one();
        return;
    }
    try {
        std::size_t index = im.threads.size();
        im.threads.emplace_back([this, index] { worker(index); });
    } catch (...) {
        if (!im.threads.empty()) return;  // the existing workers will get to it
        im.queue.pop_back();
        throw;
    }
}

void ThreadPoolExecutor::worker(std::size_t index) {
    std::string name = "asyncio_" + std::to_string(index);
    ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
    Impl& im = *impl_;
    std::unique_lock<std::mutex> lk(im.mu);
    for (;;) {
        while (im.queue.empty() && !im.shutdown) {
            ++im.idle;
            im.cv.wait(lk);
            --im.idle;
        }
        if (im.queue.empty()) return;  // shut down and drained
        detail::Callback job = std::move(im.queue.front());
        im.queue.pop_front();
        lk.unlock();
        try {
            job();
        } catch (...) {
            // Jobs made by submit() catch everything; a custom job's error has nowhere to go.
        }
        job.reset();  // destroy f and its arguments outside the lock
        lk.lock();
    }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
    Impl& im = *impl_;
    std::deque<detail::Callback> dropped;
    std::vector<std::thread> threads;
    bool joiner = false;
    {
        std::unique_lock<std::mutex> lk(im.mu);
        im.shutdown = true;
        if (cancel_futures) dropped.swap(im.queue);
        im.cv.notify_all();
        // From one of this pool's own jobs: it cannot join its own thread.
        // As Python's (threading's join), refuse, leaving the pool shut down;
        // its owner joins every thread later. (Detaching it let the worker
        // outlive the pool it runs in.)
        if (wait)
            for (const auto& t : im.threads)
                if (t.get_id() == std::this_thread::get_id()) {
                    lk.unlock();
                    dropped.clear();
                    throw RuntimeError("cannot join current thread");
                }
        if (wait) {
            if (im.joining) {
                im.joined_cv.wait(lk, [&] { return im.joined; });
            } else {
                im.joining = true;
                joiner = true;
                threads.swap(im.threads);
            }
        }
    }
    dropped.clear();  // cancels their futures (outside the lock: callbacks run)
    if (!joiner) return;
    for (auto& t : threads) t.join();
    std::lock_guard<std::mutex> lk(im.mu);
    im.joined = true;
    im.joined_cv.notify_all();
}

// ---- the loop's default executor ------------------------------------------------------

Executor& EventLoop::default_executor() {
    if (is_closed()) throw RuntimeError("Event loop is closed");
    if (default_executor_shutdown_) throw RuntimeError("Executor shutdown has been called");
    if (!default_executor_) set_default_executor(std::make_shared<ThreadPoolExecutor>());
    return *default_executor_;
}

void EventLoop::set_default_executor(std::shared_ptr<Executor> executor) {
    if (!executor) throw ValueError("set_default_executor() needs an executor");
    bool first = !default_executor_;
    // The replaced executor is not shut down here (Python does not shut it
    // down at all): dropping the last handle to a pool would join its
    // threads on the loop's thread, blocking the loop, and deadlocking a job
    // that waits for the loop. It is kept until close(), or until
    // shutdown_default_executor() shuts it down with the current one.
    if (default_executor_) retired_executors_.push_back(std::move(default_executor_));
    default_executor_ = std::move(executor);
    if (first) {
        // Runs in close(), before the loop stops accepting call_soon_threadsafe:
        // every job has finished (and posted its result) when close() goes on.
        add_close_hook([this] {
            default_executor_shutdown_ = true;
            auto retired = std::move(retired_executors_);
            for (auto& ex : retired) ex->shutdown(true);
            if (auto ex = std::move(default_executor_)) ex->shutdown(true);
        });
    }
}

Coro<void> EventLoop::shutdown_default_executor() {
    default_executor_shutdown_ = true;
    std::shared_ptr<Executor> ex = default_executor_;
    if (!ex) co_return;
    std::vector<std::shared_ptr<Executor>> retired = std::move(retired_executors_);
    ConcurrentFuture<void> done;
    std::thread helper([ex, retired, done]() mutable {
        for (auto& r : retired) r->shutdown(true);
        ex->shutdown(true);
        try {
            done.set_result();
        } catch (const InvalidStateError&) {
            // the awaiting task was cancelled
        }
    });
    Future<void> fut = wrap_future(done, *this);
    try {
        co_await fut;
    } catch (...) {
        // Cancelled: the helper may still be about to post to this loop, so
        // it must end before the loop does; close() joins it.
        auto t = std::make_shared<std::thread>(std::move(helper));
        add_close_hook([t] {
            if (t->joinable()) t->join();
        });
        throw;
    }
    helper.join();
}

}  // namespace asyncio
