// Tests for asyncio::Lock, Event, Condition, Semaphore, BoundedSemaphore and
// Barrier: behaviours of CPython's test_locks.py and test_pep492.py
// (FIFO wake-up, fairness, notify counts, barrier rounds, misuse, cancel safety).
#include <gtest/gtest.h>

#include <asyncio/locks.hpp>
#include <asyncio/tasks.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/run_test.hpp"

namespace {

using asyncio::testing::run_test;
using Log = std::vector<std::string>;

asyncio::Coro<> step(int n = 1) {
    for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
}

// ---- Lock ------------------------------------------------------------------------

asyncio::Coro<> lock_taker(asyncio::Lock* lock, Log* log, std::string name) {
    co_await lock->acquire();
    log->push_back(name);
}

TEST(Lock, AcquireOfFreeLockDoesNotSuspend) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto other = asyncio::create_task(lock_taker(&lock, &log, "other"));
        bool got = co_await lock.acquire();
        log.push_back("main");  // no suspension: `other` has not run yet
        EXPECT_TRUE(got);
        EXPECT_TRUE(lock.locked());
        lock.release();
        co_await other;
        lock.release();
    });
    EXPECT_EQ(log, (Log{"main", "other"}));
}

TEST(Lock, WaitersAcquireInFifoOrder) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto t1 = asyncio::create_task(lock_taker(&lock, &log, "1"));
        auto t2 = asyncio::create_task(lock_taker(&lock, &log, "2"));
        co_await step();
        auto t3 = asyncio::create_task(lock_taker(&lock, &log, "3"));
        co_await step();
        EXPECT_TRUE(log.empty());
        lock.release();
        co_await step();
        EXPECT_EQ(log, (Log{"1"}));
        co_await step();
        EXPECT_EQ(log, (Log{"1"}));  // still held by 1
        lock.release();
        co_await step();
        EXPECT_EQ(log, (Log{"1", "2"}));
        lock.release();
        co_await step();
        EXPECT_EQ(log, (Log{"1", "2", "3"}));
        EXPECT_TRUE(t1.done() && t2.done() && t3.done());
        lock.release();
        EXPECT_FALSE(lock.locked());
    });
}

asyncio::Coro<> release_and_reacquire(asyncio::Lock* lock, Log* log) {
    lock->release();
    co_await lock->acquire();  // must queue behind the waiter release() woke
    log->push_back("releaser");
    lock->release();
}

TEST(Lock, ReleaseThenImmediateReacquireDoesNotBargeAhead) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto waiter = asyncio::create_task(lock_taker(&lock, &log, "waiter"));
        co_await step();
        auto releaser = asyncio::create_task(release_and_reacquire(&lock, &log));
        co_await step();
        EXPECT_FALSE(lock.locked());  // Python: free until the woken waiter runs
        co_await step();
        EXPECT_EQ(log, (Log{"waiter"}));
        lock.release();
        co_await releaser;
        co_await waiter;
    });
    EXPECT_EQ(log, (Log{"waiter", "releaser"}));
}

TEST(Lock, NewcomerWaitsWhileAWokenWaiterHasNotRun) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto waiter = asyncio::create_task(lock_taker(&lock, &log, "waiter"));
        co_await step();
        lock.release();
        auto newcomer = asyncio::create_task(lock_taker(&lock, &log, "newcomer"));
        co_await step(2);
        EXPECT_EQ(log, (Log{"waiter"}));
        lock.release();
        co_await newcomer;
        lock.release();
    });
}

TEST(Lock, ReleaseOfUnlockedLockRaisesAndLockStillWorks) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        try {
            lock.release();
            ADD_FAILURE() << "no RuntimeError";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ(e.what(), "Lock is not acquired.");
        }
        co_await lock.acquire();
        auto t = asyncio::create_task(lock_taker(&lock, &log, "t"));
        co_await step();
        lock.release();
        co_await t;
        EXPECT_TRUE(lock.locked());
        lock.release();
    });
    EXPECT_EQ(log, (Log{"t"}));
}

TEST(Lock, CancelledWaiterNeverGetsTheLock) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto a = asyncio::create_task(lock_taker(&lock, &log, "a"));
        auto b = asyncio::create_task(lock_taker(&lock, &log, "b"));
        co_await step();
        a.cancel();
        co_await step();
        EXPECT_TRUE(a.cancelled());
        lock.release();
        co_await b;
        EXPECT_EQ(log, (Log{"b"}));
        lock.release();
        EXPECT_FALSE(lock.locked());
    });
}

TEST(Lock, CancelInTheIterationOfTheWakeUpPassesTheLockOn) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto a = asyncio::create_task(lock_taker(&lock, &log, "a"));
        auto b = asyncio::create_task(lock_taker(&lock, &log, "b"));
        co_await step();
        lock.release();  // wakes a ...
        a.cancel();      // ... which is cancelled before it runs
        co_await step(2);
        EXPECT_TRUE(a.cancelled());
        EXPECT_TRUE(b.done());
        EXPECT_EQ(log, (Log{"b"}));
        EXPECT_TRUE(lock.locked());
        lock.release();
    });
}

TEST(Lock, CancelInTheIterationOfTheWakeUpLeavesTheLockFree) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        auto a = asyncio::create_task(lock_taker(&lock, &log, "a"));
        co_await step();
        lock.release();
        a.cancel();
        co_await step();
        EXPECT_TRUE(a.cancelled());
        EXPECT_FALSE(lock.locked());
        bool got = co_await lock.acquire();  // not leaked: free for the next user
        EXPECT_TRUE(got);
        lock.release();
    });
    EXPECT_TRUE(log.empty());
}

asyncio::Coro<> guarded(asyncio::Lock* lock, Log* log, bool fail) {
    auto guard = co_await *lock;
    log->push_back(lock->locked() ? "in" : "not locked");
    if (fail) throw std::runtime_error("boom");
}

TEST(Lock, AsyncWithGuardReleasesOnScopeExitAndOnException) {
    asyncio::Lock lock;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        co_await guarded(&lock, &log, false);
        EXPECT_FALSE(lock.locked());
        try {
            co_await guarded(&lock, &log, true);
        } catch (const std::runtime_error&) {
            log.push_back("caught");
        }
        EXPECT_FALSE(lock.locked());
        {
            auto guard = co_await lock;
            EXPECT_TRUE(guard.owns_lock());
            guard.release();
            EXPECT_FALSE(lock.locked());
        }
        EXPECT_FALSE(lock.locked());
    });
    EXPECT_EQ(log, (Log{"in", "in", "caught"}));
}

asyncio::Coro<> quiet_taker(asyncio::Lock* lock) {
    co_await lock->acquire();
    lock->release();
}

// Hold the lock and make another task wait for it: the wait binds the lock.
asyncio::Coro<> contend(asyncio::Lock* lock, bool* raised) {
    co_await lock->acquire();
    auto t = asyncio::create_task(quiet_taker(lock));
    co_await step();
    lock->release();
    try {
        co_await t;
    } catch (const asyncio::RuntimeError& e) {
        *raised = std::string(e.what()).find("is bound to a different event loop") != std::string::npos;
    }
}

TEST(Lock, CreatedBeforeTheLoopBindsOnFirstWaitAndRejectsAnotherLoop) {
    asyncio::Lock lock;  // no loop running yet (Python 3.10+)
    bool raised_first = false;
    bool raised_second = false;
    run_test([&]() -> asyncio::Coro<> { co_await contend(&lock, &raised_first); });
    run_test([&]() -> asyncio::Coro<> { co_await contend(&lock, &raised_second); });
    EXPECT_FALSE(raised_first);
    EXPECT_TRUE(raised_second);
    EXPECT_FALSE(lock.locked());
}

TEST(Lock, ALoopBuiltWhereAClosedOneLivedIsAnotherLoop) {
    // The binding compares the loops' serial numbers, not their addresses.
    asyncio::Lock lock;
    std::optional<asyncio::EventLoop> slot;
    slot.emplace();
    const asyncio::EventLoop* first = &*slot;
    bool raised_first = false;
    bool raised_second = false;
    slot->run_until_complete(contend(&lock, &raised_first));
    slot->close();
    slot.reset();
    slot.emplace();
    ASSERT_EQ(&*slot, first);  // same storage: only the serial tells them apart
    slot->run_until_complete(contend(&lock, &raised_second));
    slot->close();
    EXPECT_FALSE(raised_first);
    EXPECT_TRUE(raised_second);
}

TEST(Lock, UncontendedUseDoesNotBindToALoop) {
    asyncio::Lock lock;
    for (int i = 0; i < 2; ++i) {
        run_test([&]() -> asyncio::Coro<> {
            auto guard = co_await lock;
            EXPECT_TRUE(lock.locked());
        });
    }
    EXPECT_FALSE(lock.locked());
}

// ---- Event -----------------------------------------------------------------------

// A wait binds the primitive to its loop; a wait from another loop raises
// RuntimeError naming the primitive's Python class (the waits keep the
// primitive in their list and the name in their type, see ListWait).
template <class Wait>
asyncio::Coro<> wait_expecting_wrong_loop(Wait* wait, std::string* what) {
    try {
        co_await (*wait)();
    } catch (const asyncio::RuntimeError& e) {
        *what = e.what();
    }
}

TEST(Event, WaitFromASecondLoopRaisesNamingEvent) {
    asyncio::Event ev;
    auto wait = [&ev]() { return ev.wait(); };
    // First loop: a wait that suspends binds the event (then is cancelled).
    run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(wait_expecting_wrong_loop(&wait, nullptr));
        co_await asyncio::sleep(0);
        t.cancel();
        try {
            co_await t;
        } catch (const asyncio::CancelledError&) {
        }
    });
    std::string what;
    run_test([&]() -> asyncio::Coro<> { co_await wait_expecting_wrong_loop(&wait, &what); });
    EXPECT_EQ(what, "<asyncio.locks.Event object> is bound to a different event loop");
}

TEST(Condition, WaitFromASecondLoopRaisesNamingCondition) {
    asyncio::Condition cond;
    std::string what;
    run_test([&]() -> asyncio::Coro<> {
        auto guard = co_await cond;
        auto t = asyncio::create_task([](asyncio::Condition* c) -> asyncio::Coro<> {
            auto g = co_await *c;
            co_await c->wait();
        }(&cond));
        guard.release();
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        t.cancel();
        try {
            co_await t;
        } catch (const asyncio::CancelledError&) {
        }
    });
    run_test([&]() -> asyncio::Coro<> {
        auto guard = co_await cond;
        try {
            co_await cond.wait();
        } catch (const asyncio::RuntimeError& e) {
            what = e.what();
        }
    });
    EXPECT_EQ(what, "<asyncio.locks.Condition object> is bound to a different event loop");
}


asyncio::Coro<> event_waiter(asyncio::Event* ev, Log* log, std::string name) {
    bool r = co_await ev->wait();
    EXPECT_TRUE(r);
    log->push_back(name);
}

// Python's Event.wait() is a coroutine: it looks at the flag when it runs,
// not when it is made. A wait made before set() (as create_task's or
// gather's argument) and first run after it must not wait; one made while
// the flag is set and run after clear() must.
TEST(Event, AWaitLooksAtTheFlagWhenItRunsNotWhenItIsMade) {
    run_test([]() -> asyncio::Coro<> {
        asyncio::Event ev;
        auto early = asyncio::create_task(ev.wait());
        ev.set();
        EXPECT_TRUE(co_await early);
        auto [a, b] = co_await asyncio::gather(ev.wait(), ev.wait());
        EXPECT_TRUE(a && b);
        auto late = asyncio::create_task(ev.wait());  // made while set
        ev.clear();
        co_await asyncio::sleep(0);
        co_await asyncio::sleep(0);
        EXPECT_FALSE(late.done());
        ev.set();
        EXPECT_TRUE(co_await late);
    });
}

TEST(Event, SetWakesEveryWaiterInFifoOrder) {
    asyncio::Event ev;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        EXPECT_FALSE(ev.is_set());
        auto a = asyncio::create_task(event_waiter(&ev, &log, "a"));
        auto b = asyncio::create_task(event_waiter(&ev, &log, "b"));
        auto c = asyncio::create_task(event_waiter(&ev, &log, "c"));
        co_await step();
        EXPECT_TRUE(log.empty());
        ev.set();
        ev.set();  // a second set() changes nothing
        EXPECT_TRUE(ev.is_set());
        co_await step();
        EXPECT_EQ(log, (Log{"a", "b", "c"}));
        co_await a;
        co_await b;
        co_await c;
    });
}

TEST(Event, WaitOnSetEventReturnsAtOnceAndClearMakesItWaitAgain) {
    asyncio::Event ev;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        ev.set();
        auto other = asyncio::create_task(event_waiter(&ev, &log, "other"));
        co_await ev.wait();
        log.push_back("main");  // did not suspend
        co_await other;
        ev.clear();
        EXPECT_FALSE(ev.is_set());
        auto again = asyncio::create_task(event_waiter(&ev, &log, "again"));
        co_await step(2);
        EXPECT_FALSE(again.done());
        ev.set();
        co_await again;
    });
    EXPECT_EQ(log, (Log{"main", "other", "again"}));
}

TEST(Event, ClearAfterSetStillWakesTheWaitersSetWoke) {
    asyncio::Event ev;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(event_waiter(&ev, &log, "a"));
        co_await step();
        ev.set();
        ev.clear();
        co_await a;
    });
    EXPECT_EQ(log, (Log{"a"}));
}

TEST(Event, WaiterArrivingAfterSetAndClearIsNotWokenByThatSet) {
    asyncio::Event ev;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(event_waiter(&ev, &log, "a"));
        co_await step();
        ev.set();
        ev.clear();
        auto b = asyncio::create_task(event_waiter(&ev, &log, "b"));
        co_await step(3);
        EXPECT_EQ(log, (Log{"a"}));
        EXPECT_FALSE(b.done());
        ev.set();
        co_await b;
        co_await a;
    });
    EXPECT_EQ(log, (Log{"a", "b"}));
}

TEST(Event, CancelledWaiterRaisesAndOthersAreStillWoken) {
    asyncio::Event ev;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(event_waiter(&ev, &log, "a"));
        auto b = asyncio::create_task(event_waiter(&ev, &log, "b"));
        auto c = asyncio::create_task(event_waiter(&ev, &log, "c"));
        co_await step();
        a.cancel();
        co_await step();
        EXPECT_TRUE(a.cancelled());
        ev.set();
        b.cancel();  // same iteration as the wake-up: still cancelled
        co_await step();
        EXPECT_TRUE(b.cancelled());
        co_await c;
    });
    EXPECT_EQ(log, (Log{"c"}));
}

// ---- Condition -------------------------------------------------------------------

asyncio::Coro<> cond_waiter(asyncio::Condition* cond, Log* log, std::string name) {
    auto guard = co_await *cond;
    bool r = co_await cond->wait();
    EXPECT_TRUE(r);
    EXPECT_TRUE(cond->locked());
    log->push_back(name);
}

TEST(Condition, NotifyWakesNWaitersInFifoOrder) {
    asyncio::Condition cond;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<>> ts;
        for (const char* n : {"1", "2", "3", "4"}) ts.push_back(asyncio::create_task(cond_waiter(&cond, &log, n)));
        co_await step();
        EXPECT_TRUE(log.empty());
        co_await cond.acquire();
        cond.notify(1);
        cond.release();
        co_await step(2);
        EXPECT_EQ(log, (Log{"1"}));
        {
            auto guard = co_await cond;
            cond.notify(2);
        }
        co_await step(3);
        EXPECT_EQ(log, (Log{"1", "2", "3"}));
        {
            auto guard = co_await cond;
            cond.notify_all();
        }
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(log, (Log{"1", "2", "3", "4"}));
}

TEST(Condition, NotifyAllWakesEveryWaiterAndNotifyWithoutWaitersIsANoOp) {
    asyncio::Condition cond;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        {
            auto guard = co_await cond;
            cond.notify(5);
            cond.notify_all();
        }
        std::vector<asyncio::Task<>> ts;
        for (const char* n : {"a", "b", "c"}) ts.push_back(asyncio::create_task(cond_waiter(&cond, &log, n)));
        co_await step();
        {
            auto guard = co_await cond;
            cond.notify_all();
        }
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(log, (Log{"a", "b", "c"}));
}

TEST(Condition, WaitAndNotifyWithoutTheLockRaiseAndConditionStillWorks) {
    asyncio::Condition cond;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        try {
            co_await cond.wait();
            ADD_FAILURE() << "no RuntimeError";
        } catch (const asyncio::RuntimeError& e) {
            EXPECT_STREQ(e.what(), "cannot wait on un-acquired lock");
        }
        EXPECT_THROW(cond.notify(), asyncio::RuntimeError);
        EXPECT_THROW(cond.notify_all(), asyncio::RuntimeError);
        EXPECT_THROW(cond.release(), asyncio::RuntimeError);
        EXPECT_FALSE(cond.locked());
        auto t = asyncio::create_task(cond_waiter(&cond, &log, "t"));
        co_await step();
        {
            auto guard = co_await cond;
            cond.notify();
        }
        co_await t;
    });
    EXPECT_EQ(log, (Log{"t"}));
}

asyncio::Coro<int> wait_for_value(asyncio::Condition* cond, int* value, Log* log) {
    auto guard = co_await *cond;
    int* v = value;
    int r = co_await cond->wait_for([v] { return *v >= 2 ? *v : 0; });
    log->push_back("done");
    co_return r;
}

TEST(Condition, WaitForReturnsOnceThePredicateHolds) {
    asyncio::Condition cond;
    Log log;
    int value = 0;
    run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(wait_for_value(&cond, &value, &log));
        co_await step();
        for (int i = 1; i <= 3; ++i) {
            {
                auto guard = co_await cond;
                value = i;
                cond.notify();
            }
            co_await step(2);
            if (i < 2) {
                EXPECT_TRUE(log.empty());
            }
        }
        EXPECT_EQ(co_await t, 2);
    });
    EXPECT_EQ(log, (Log{"done"}));
}

asyncio::Coro<> cond_cancel_probe(asyncio::Condition* cond, Log* log) {
    auto guard = co_await *cond;
    try {
        co_await cond->wait();
    } catch (const asyncio::CancelledError&) {
        log->push_back(cond->locked() ? "cancelled, lock held" : "cancelled, lock free");
        throw;
    }
}

TEST(Condition, CancelledWaitReacquiresTheLockBeforeRaising) {
    asyncio::Condition cond;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto t = asyncio::create_task(cond_cancel_probe(&cond, &log));
        co_await step();
        co_await cond.acquire();  // the waiter cannot re-acquire yet
        t.cancel();
        co_await step(2);
        EXPECT_TRUE(log.empty());
        cond.release();
        try {
            co_await t;
        } catch (const asyncio::CancelledError&) {
        }
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(cond.locked());
    });
    EXPECT_EQ(log, (Log{"cancelled, lock held"}));
}

TEST(Condition, NotificationOfACancelledWaiterGoesToTheNextWaiter) {
    asyncio::Condition cond;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(cond_waiter(&cond, &log, "a"));
        auto b = asyncio::create_task(cond_waiter(&cond, &log, "b"));
        co_await step();
        {
            auto guard = co_await cond;
            cond.notify(1);  // picks a ...
        }
        a.cancel();  // ... which is cancelled before it runs
        co_await step(4);
        EXPECT_TRUE(a.cancelled());
        co_await b;  // b got the notification
    });
    EXPECT_EQ(log, (Log{"b"}));
}

TEST(Condition, SharesTheLockGivenToIt) {
    asyncio::Lock lock;
    asyncio::Condition cond(lock);
    run_test([&]() -> asyncio::Coro<> {
        co_await lock.acquire();
        EXPECT_TRUE(cond.locked());
        cond.release();
        EXPECT_FALSE(lock.locked());
        auto guard = co_await cond;
        EXPECT_TRUE(lock.locked());
    });
    EXPECT_FALSE(lock.locked());
}

// ---- Semaphore -------------------------------------------------------------------

asyncio::Coro<> sem_taker(asyncio::Semaphore* sem, Log* log, std::string name) {
    co_await sem->acquire();
    log->push_back(name);
}

TEST(Semaphore, NegativeInitialValueRaisesValueError) {
    EXPECT_THROW(asyncio::Semaphore(-1), asyncio::ValueError);
    EXPECT_THROW(asyncio::BoundedSemaphore(-1), asyncio::ValueError);
    asyncio::Semaphore zero(0);
    EXPECT_TRUE(zero.locked());
}

TEST(Semaphore, PermitsThenFifoWaiters) {
    asyncio::Semaphore sem(2);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<>> ts;
        for (const char* n : {"1", "2", "3", "4"}) ts.push_back(asyncio::create_task(sem_taker(&sem, &log, n)));
        co_await step();
        EXPECT_EQ(log, (Log{"1", "2"}));
        EXPECT_TRUE(sem.locked());
        sem.release();
        co_await step();
        EXPECT_EQ(log, (Log{"1", "2", "3"}));
        sem.release();
        sem.release();
        co_await step();
        EXPECT_EQ(log, (Log{"1", "2", "3", "4"}));
        EXPECT_FALSE(sem.locked());
        for (auto& t : ts) co_await t;
        sem.release();
        sem.release();
    });
}

TEST(Semaphore, NewcomerDoesNotBargeAheadOfWokenWaiters) {
    asyncio::Semaphore sem(0);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(sem_taker(&sem, &log, "a"));
        co_await step();
        sem.release();  // the permit goes to a
        EXPECT_TRUE(sem.locked());
        auto late = asyncio::create_task(sem_taker(&sem, &log, "late"));
        co_await step(2);
        EXPECT_EQ(log, (Log{"a"}));
        sem.release();
        co_await late;
        co_await a;
    });
    EXPECT_EQ(log, (Log{"a", "late"}));
}

TEST(Semaphore, CancelInTheIterationOfTheWakeUpGivesThePermitToTheNextWaiter) {
    asyncio::Semaphore sem(0);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(sem_taker(&sem, &log, "a"));
        auto b = asyncio::create_task(sem_taker(&sem, &log, "b"));
        co_await step();
        sem.release();
        a.cancel();
        co_await step(2);
        EXPECT_TRUE(a.cancelled());
        co_await b;
        EXPECT_TRUE(sem.locked());  // b holds the only permit
        sem.release();
        EXPECT_FALSE(sem.locked());
    });
    EXPECT_EQ(log, (Log{"b"}));
}

TEST(Semaphore, CancelledWaiterTakesNoPermit) {
    asyncio::Semaphore sem(0);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(sem_taker(&sem, &log, "a"));
        co_await step();
        a.cancel();
        co_await step();
        EXPECT_TRUE(a.cancelled());
        sem.release();
        EXPECT_FALSE(sem.locked());
        co_await sem.acquire();  // the permit is still there
        EXPECT_TRUE(sem.locked());
        sem.release();
    });
    EXPECT_TRUE(log.empty());
}

asyncio::Coro<> sem_guarded(asyncio::Semaphore* sem, int* inside, int* peak) {
    auto guard = co_await *sem;
    ++*inside;
    if (*inside > *peak) *peak = *inside;
    co_await asyncio::sleep(0);
    --*inside;
}

TEST(Semaphore, AsyncWithLimitsConcurrency) {
    asyncio::Semaphore sem(3);
    int inside = 0;
    int peak = 0;
    run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<>> ts;
        for (int i = 0; i < 10; ++i) ts.push_back(asyncio::create_task(sem_guarded(&sem, &inside, &peak)));
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(peak, 3);
    EXPECT_FALSE(sem.locked());
}

TEST(BoundedSemaphore, OverReleaseRaisesValueErrorAndSemaphoreStillWorks) {
    asyncio::BoundedSemaphore sem(2);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        try {
            sem.release();
            ADD_FAILURE() << "no ValueError";
        } catch (const asyncio::ValueError& e) {
            EXPECT_STREQ(e.what(), "BoundedSemaphore released too many times");
        }
        co_await sem.acquire();
        co_await sem.acquire();
        EXPECT_TRUE(sem.locked());
        auto t = asyncio::create_task(sem_taker(&sem, &log, "t"));
        co_await step();
        sem.release();
        co_await t;
        sem.release();
        sem.release();
        EXPECT_THROW(sem.release(), asyncio::ValueError);
        EXPECT_FALSE(sem.locked());
    });
    EXPECT_EQ(log, (Log{"t"}));
}

// ---- Barrier ---------------------------------------------------------------------

asyncio::Coro<> barrier_party(asyncio::Barrier* b, std::vector<std::ptrdiff_t>* indices, int rounds) {
    for (int r = 0; r < rounds; ++r) indices->push_back(co_await b->wait());
}

TEST(Barrier, PartiesBelowOneRaiseValueError) {
    EXPECT_THROW(asyncio::Barrier(0), asyncio::ValueError);
    EXPECT_THROW(asyncio::Barrier(-3), asyncio::ValueError);
}

TEST(Barrier, ReleasesEachRoundWithDistinctArrivalIndices) {
    asyncio::Barrier b(3);
    std::vector<std::ptrdiff_t> indices;
    run_test([&]() -> asyncio::Coro<> {
        EXPECT_EQ(b.parties(), 3);
        EXPECT_EQ(b.n_waiting(), 0);
        auto t1 = asyncio::create_task(barrier_party(&b, &indices, 3));
        auto t2 = asyncio::create_task(barrier_party(&b, &indices, 3));
        co_await step(2);
        EXPECT_EQ(b.n_waiting(), 2);
        EXPECT_TRUE(indices.empty());
        auto t3 = asyncio::create_task(barrier_party(&b, &indices, 3));
        co_await t1;
        co_await t2;
        co_await t3;
        EXPECT_EQ(b.n_waiting(), 0);
        EXPECT_FALSE(b.broken());
    });
    ASSERT_EQ(indices.size(), 9u);
    for (int round = 0; round < 3; ++round) {
        std::vector<std::ptrdiff_t> r(indices.begin() + round * 3, indices.begin() + round * 3 + 3);
        std::sort(r.begin(), r.end());
        EXPECT_EQ(r, (std::vector<std::ptrdiff_t>{0, 1, 2})) << "round " << round;
    }
}

TEST(Barrier, SinglePartyPassesAtOnce) {
    asyncio::Barrier b(1);
    run_test([&]() -> asyncio::Coro<> {
        EXPECT_EQ(co_await b.wait(), 0);
        EXPECT_EQ(co_await b.wait(), 0);
    });
}

asyncio::Coro<> barrier_expect_broken(asyncio::Barrier* b, Log* log) {
    try {
        co_await b->wait();
        log->push_back("passed");
    } catch (const asyncio::BrokenBarrierError&) {
        log->push_back("broken");
    }
}

TEST(Barrier, AbortBreaksWaitersAndLaterWaitsUntilReset) {
    asyncio::Barrier b(3);
    Log log;
    std::vector<std::ptrdiff_t> indices;
    run_test([&]() -> asyncio::Coro<> {
        auto t1 = asyncio::create_task(barrier_expect_broken(&b, &log));
        auto t2 = asyncio::create_task(barrier_expect_broken(&b, &log));
        co_await step();
        co_await b.abort();
        EXPECT_TRUE(b.broken());
        co_await t1;
        co_await t2;
        EXPECT_EQ(log, (Log{"broken", "broken"}));
        EXPECT_EQ(b.n_waiting(), 0);
        try {
            co_await b.wait();
            ADD_FAILURE() << "no BrokenBarrierError";
        } catch (const asyncio::BrokenBarrierError&) {
        }
        co_await b.reset();
        EXPECT_FALSE(b.broken());
        std::vector<asyncio::Task<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(asyncio::create_task(barrier_party(&b, &indices, 1)));
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(indices.size(), 3u);
}

TEST(Barrier, ResetWhileWaitingBreaksTheWaitersAndBarrierIsReusable) {
    asyncio::Barrier b(3);
    Log log;
    std::vector<std::ptrdiff_t> indices;
    run_test([&]() -> asyncio::Coro<> {
        auto t1 = asyncio::create_task(barrier_expect_broken(&b, &log));
        auto t2 = asyncio::create_task(barrier_expect_broken(&b, &log));
        co_await step();
        EXPECT_EQ(b.n_waiting(), 2);
        co_await b.reset();
        co_await t1;
        co_await t2;
        EXPECT_EQ(log, (Log{"broken", "broken"}));
        EXPECT_FALSE(b.broken());
        EXPECT_EQ(b.n_waiting(), 0);
        std::vector<asyncio::Task<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(asyncio::create_task(barrier_party(&b, &indices, 2)));
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(indices.size(), 6u);
}

TEST(Barrier, CancelledWaiterLeavesTheCount) {
    asyncio::Barrier b(2);
    std::vector<std::ptrdiff_t> indices;
    run_test([&]() -> asyncio::Coro<> {
        auto t1 = asyncio::create_task(barrier_party(&b, &indices, 1));
        co_await step();
        EXPECT_EQ(b.n_waiting(), 1);
        t1.cancel();
        co_await step(2);
        EXPECT_TRUE(t1.cancelled());
        EXPECT_EQ(b.n_waiting(), 0);
        auto t2 = asyncio::create_task(barrier_party(&b, &indices, 1));
        auto t3 = asyncio::create_task(barrier_party(&b, &indices, 1));
        co_await t2;
        co_await t3;
    });
    std::sort(indices.begin(), indices.end());
    EXPECT_EQ(indices, (std::vector<std::ptrdiff_t>{0, 1}));
}

TEST(Barrier, ArrivalsDuringDrainingWaitForTheNextRound) {
    asyncio::Barrier b(2);
    std::vector<std::ptrdiff_t> indices;
    run_test([&]() -> asyncio::Coro<> {
        auto t1 = asyncio::create_task(barrier_party(&b, &indices, 1));
        auto t2 = asyncio::create_task(barrier_party(&b, &indices, 1));
        auto t3 = asyncio::create_task(barrier_party(&b, &indices, 1));  // arrives while draining
        co_await t1;
        co_await t2;
        co_await step(3);
        EXPECT_FALSE(t3.done());
        EXPECT_EQ(b.n_waiting(), 1);
        auto t4 = asyncio::create_task(barrier_party(&b, &indices, 1));
        co_await t3;
        co_await t4;
    });
    EXPECT_EQ(indices.size(), 4u);
}

}  // namespace
