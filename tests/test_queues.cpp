// Tests for asyncio::Queue, PriorityQueue and LifoQueue: behaviours of
// CPython's test_queues.py (order, maxsize, nowait errors, task_done/join,
// 3.13 shutdown, cancel safety) and a seeded stress test with random
// cancellations proving every item is delivered exactly once.
#include <gtest/gtest.h>

#include <asyncio/queues.hpp>
#include <asyncio/tasks.hpp>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/run_test.hpp"

namespace {

using asyncio::testing::run_test;
using Log = std::vector<std::string>;

asyncio::Coro<> step(int n = 1) {
    for (int i = 0; i < n; ++i) co_await asyncio::sleep(0);
}

asyncio::Coro<> getter(asyncio::Queue<int>* q, std::vector<int>* out) {
    int v = co_await q->get();
    out->push_back(v);
}

asyncio::Coro<> putter(asyncio::Queue<int>* q, int v, Log* log) {
    co_await q->put(v);
    log->push_back("put " + std::to_string(v));
}

// ---- basics ----------------------------------------------------------------------

TEST(Queue, FifoOrderAndSizeQueries) {
    asyncio::Queue<int> q(3);
    run_test([&]() -> asyncio::Coro<> {
        EXPECT_EQ(q.maxsize(), 3);
        EXPECT_TRUE(q.empty());
        EXPECT_FALSE(q.full());
        co_await q.put(1);
        co_await q.put(2);
        q.put_nowait(3);
        EXPECT_EQ(q.qsize(), 3);
        EXPECT_TRUE(q.full());
        EXPECT_EQ(co_await q.get(), 1);
        EXPECT_EQ(q.get_nowait(), 2);
        EXPECT_EQ(co_await q.get(), 3);
        EXPECT_TRUE(q.empty());
    });
}

TEST(Queue, ZeroOrNegativeMaxsizeIsUnbounded) {
    asyncio::Queue<int> q0;
    asyncio::Queue<int> qneg(-1);
    for (int i = 0; i < 1000; ++i) {
        q0.put_nowait(i);
        qneg.put_nowait(i);
    }
    EXPECT_FALSE(q0.full());
    EXPECT_FALSE(qneg.full());
    EXPECT_EQ(q0.maxsize(), 0);
    EXPECT_EQ(q0.qsize(), 1000);
}

TEST(Queue, NowaitErrorsLeaveTheQueueUsable) {
    asyncio::Queue<int> q(1);
    try {
        q.get_nowait();
        ADD_FAILURE() << "no QueueEmpty";
    } catch (const asyncio::QueueEmpty&) {
    }
    q.put_nowait(7);
    EXPECT_THROW(q.put_nowait(8), asyncio::QueueFull);
    EXPECT_EQ(q.qsize(), 1);
    EXPECT_EQ(q.get_nowait(), 7);
    EXPECT_THROW(q.get_nowait(), asyncio::QueueEmpty);
    q.put_nowait(9);
    EXPECT_EQ(q.get_nowait(), 9);
}

TEST(Queue, WaitingGettersAreServedInFifoOrder) {
    asyncio::Queue<int> q;
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(asyncio::create_task(getter(&q, &out)));
        co_await step();
        EXPECT_TRUE(out.empty());
        q.put_nowait(10);
        EXPECT_EQ(q.qsize(), 1);  // as in Python: the item waits for the getter to run
        co_await step();
        EXPECT_EQ(out, (std::vector<int>{10}));
        q.put_nowait(20);
        q.put_nowait(30);
        for (auto& t : ts) co_await t;
    });
    EXPECT_EQ(out, (std::vector<int>{10, 20, 30}));
}

TEST(Queue, PutWaitsWhileFullAndPuttersAreServedInFifoOrder) {
    asyncio::Queue<int> q(1);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(0);
        auto a = asyncio::create_task(putter(&q, 1, &log));
        auto b = asyncio::create_task(putter(&q, 2, &log));
        co_await step();
        EXPECT_TRUE(log.empty());
        EXPECT_EQ(q.get_nowait(), 0);
        co_await step();
        EXPECT_EQ(log, (Log{"put 1"}));
        EXPECT_EQ(co_await q.get(), 1);
        co_await b;
        EXPECT_EQ(co_await q.get(), 2);
        co_await a;
    });
}

TEST(Queue, GetterThatLosesTheItemToABargerWaitsAgain) {
    asyncio::Queue<int> q;
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        auto g = asyncio::create_task(getter(&q, &out));
        co_await step();
        q.put_nowait(1);
        EXPECT_EQ(q.get_nowait(), 1);  // Python lets a non-waiting get take it
        co_await step(2);
        EXPECT_FALSE(g.done());
        q.put_nowait(2);
        co_await g;
    });
    EXPECT_EQ(out, (std::vector<int>{2}));
}

TEST(Queue, MoveOnlyItems) {
    asyncio::Queue<std::unique_ptr<int>> q(2);
    run_test([&]() -> asyncio::Coro<> {
        co_await q.put(std::make_unique<int>(1));
        q.put_nowait(std::make_unique<int>(2));
        auto a = co_await q.get();
        auto b = q.get_nowait();
        EXPECT_EQ(*a, 1);
        EXPECT_EQ(*b, 2);
    });
    asyncio::PriorityQueue<std::unique_ptr<int>, std::function<bool(const std::unique_ptr<int>&, const std::unique_ptr<int>&)>> pq(
        0, [](const std::unique_ptr<int>& x, const std::unique_ptr<int>& y) { return *x < *y; });
    pq.put_nowait(std::make_unique<int>(5));
    pq.put_nowait(std::make_unique<int>(3));
    EXPECT_EQ(*pq.get_nowait(), 3);
    asyncio::LifoQueue<std::unique_ptr<int>> lq;
    lq.put_nowait(std::make_unique<int>(1));
    lq.put_nowait(std::make_unique<int>(2));
    EXPECT_EQ(*lq.get_nowait(), 2);
}

// ---- PriorityQueue and LifoQueue ---------------------------------------------------

TEST(PriorityQueue, GivesTheSmallestFirst) {
    asyncio::PriorityQueue<int> q;
    run_test([&]() -> asyncio::Coro<> {
        for (int v : {5, 1, 4, 2, 3}) co_await q.put(v);
        std::vector<int> out;
        while (!q.empty()) out.push_back(co_await q.get());
        EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5}));
    });
}

TEST(PriorityQueue, PairsOrderByPriorityThenDataAndComparatorIsUsed) {
    asyncio::PriorityQueue<std::pair<int, std::string>> q;
    q.put_nowait({2, "b"});
    q.put_nowait({1, "z"});
    q.put_nowait({2, "a"});
    EXPECT_EQ(q.get_nowait().second, "z");
    EXPECT_EQ(q.get_nowait().second, "a");
    EXPECT_EQ(q.get_nowait().second, "b");
    asyncio::PriorityQueue<int, std::greater<int>> largest_first;
    for (int v : {1, 3, 2}) largest_first.put_nowait(v);
    EXPECT_EQ(largest_first.get_nowait(), 3);
    EXPECT_EQ(largest_first.get_nowait(), 2);
}

TEST(LifoQueue, GivesTheNewestFirstAndWorksThroughAQueueReference) {
    asyncio::LifoQueue<int> q(3);
    asyncio::Queue<int>& base = q;  // a LifoQueue is a Queue, as in Python
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        for (int v : {1, 2, 3}) co_await base.put(v);
        EXPECT_TRUE(base.full());
        while (!base.empty()) out.push_back(co_await base.get());
    });
    EXPECT_EQ(out, (std::vector<int>{3, 2, 1}));
}

// ---- task_done / join --------------------------------------------------------------

asyncio::Coro<> worker(asyncio::Queue<int>* q, int* sum) {
    for (;;) {
        int v = co_await q->get();
        co_await asyncio::sleep(0);
        *sum += v;
        q->task_done();
    }
}

TEST(QueueJoin, WaitsUntilEveryItemIsMarkedDone) {
    asyncio::Queue<int> q;
    int sum = 0;
    run_test([&]() -> asyncio::Coro<> {
        co_await q.join();  // nothing unfinished: returns at once
        for (int i = 1; i <= 10; ++i) q.put_nowait(i);
        auto w1 = asyncio::create_task(worker(&q, &sum));
        auto w2 = asyncio::create_task(worker(&q, &sum));
        co_await q.join();
        EXPECT_EQ(sum, 55);
        w1.cancel();
        w2.cancel();
        try {
            co_await w1;
        } catch (const asyncio::CancelledError&) {
        }
        try {
            co_await w2;
        } catch (const asyncio::CancelledError&) {
        }
    });
}

TEST(QueueJoin, TaskDoneCalledTooOftenRaisesValueErrorAndCountStaysRight) {
    asyncio::Queue<int> q;
    try {
        q.task_done();
        ADD_FAILURE() << "no ValueError";
    } catch (const asyncio::ValueError& e) {
        EXPECT_STREQ(e.what(), "task_done() called too many times");
    }
    bool joined = false;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(1);
        q.put_nowait(2);
        (void)q.get_nowait();
        q.task_done();
        auto j = asyncio::create_task(q.join());
        co_await step(2);
        EXPECT_FALSE(j.done());
        (void)q.get_nowait();
        q.task_done();
        EXPECT_THROW(q.task_done(), asyncio::ValueError);
        co_await j;
        joined = true;
    });
    EXPECT_TRUE(joined);
}

// Cancel safety (docs/cancel-safety.md): a cancelled join() raises
// CancelledError and changes nothing; the count of unfinished items stays,
// and a later join() still waits for it.
TEST(QueueJoin, CancelledJoinLeavesTheQueueAsItWas) {
    run_test([&]() -> asyncio::Coro<> {
        asyncio::Queue<int> q;
        q.put_nowait(1);
        auto j = asyncio::create_task(q.join());
        co_await step(1);
        j.cancel();
        EXPECT_THROW(co_await j, asyncio::CancelledError);
        EXPECT_EQ(q.qsize(), 1u);
        auto again = asyncio::create_task(q.join());
        co_await step(2);
        EXPECT_FALSE(again.done());
        EXPECT_EQ(q.get_nowait(), 1);
        q.task_done();
        co_await again;
        EXPECT_TRUE(again.done());
    });
}

// ---- shutdown (Python 3.13) ----------------------------------------------------------

asyncio::Coro<> expect_get_shutdown(asyncio::Queue<int>* q, Log* log) {
    try {
        (void)co_await q->get();
        log->push_back("got");
    } catch (const asyncio::QueueShutDown&) {
        log->push_back("get shut down");
    }
}

asyncio::Coro<> expect_put_shutdown(asyncio::Queue<int>* q, Log* log) {
    try {
        co_await q->put(99);
        log->push_back("put");
    } catch (const asyncio::QueueShutDown&) {
        log->push_back("put shut down");
    }
}

TEST(QueueShutdown, WakesEveryWaitingGetterWithQueueShutDown) {
    asyncio::Queue<int> q;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        std::vector<asyncio::Task<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(asyncio::create_task(expect_get_shutdown(&q, &log)));
        co_await step();
        q.shutdown();
        for (auto& t : ts) co_await t;
        EXPECT_THROW(q.put_nowait(1), asyncio::QueueShutDown);
        EXPECT_THROW(q.get_nowait(), asyncio::QueueShutDown);
    });
    EXPECT_EQ(log, (Log{"get shut down", "get shut down", "get shut down"}));
}

TEST(QueueShutdown, WakesEveryWaitingPutterAndRemainingItemsCanStillBeGot) {
    asyncio::Queue<int> q(1);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(1);
        auto p1 = asyncio::create_task(expect_put_shutdown(&q, &log));
        auto p2 = asyncio::create_task(expect_put_shutdown(&q, &log));
        co_await step();
        q.shutdown();
        co_await p1;
        co_await p2;
        EXPECT_EQ(q.qsize(), 1);
        EXPECT_EQ(co_await q.get(), 1);  // not immediate: items stay gettable
        try {
            co_await q.get();
            ADD_FAILURE() << "no QueueShutDown";
        } catch (const asyncio::QueueShutDown&) {
        }
        try {
            co_await q.put(2);
            ADD_FAILURE() << "no QueueShutDown";
        } catch (const asyncio::QueueShutDown&) {
        }
    });
    EXPECT_EQ(log, (Log{"put shut down", "put shut down"}));
}

TEST(QueueShutdown, ImmediateDropsItemsAndReleasesJoin) {
    asyncio::Queue<int> q;
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(1);
        q.put_nowait(2);
        auto j = asyncio::create_task(q.join());
        co_await step();
        EXPECT_FALSE(j.done());
        q.shutdown(true);
        EXPECT_TRUE(q.empty());
        co_await j;
        EXPECT_THROW(q.get_nowait(), asyncio::QueueShutDown);
        EXPECT_THROW(q.task_done(), asyncio::ValueError);
    });
}

// ---- cancel safety -------------------------------------------------------------------

TEST(QueueCancel, CancelledGetterTakesNoItem) {
    asyncio::Queue<int> q;
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(getter(&q, &out));
        auto b = asyncio::create_task(getter(&q, &out));
        co_await step();
        a.cancel();
        co_await step();
        EXPECT_TRUE(a.done());
        q.put_nowait(1);  // Python's test_get_cancelled_race
        co_await b;
    });
    EXPECT_EQ(out, (std::vector<int>{1}));
}

TEST(QueueCancel, GetterCancelledInTheIterationOfItsWakeUpPassesTheItemOn) {
    asyncio::Queue<int> q;
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(getter(&q, &out));
        auto b = asyncio::create_task(getter(&q, &out));
        co_await step();
        q.put_nowait(1);  // announced to a ...
        a.cancel();       // ... cancelled before it runs
        co_await step(2);
        EXPECT_TRUE(a.cancelled());
        co_await b;
        EXPECT_TRUE(q.empty());
    });
    EXPECT_EQ(out, (std::vector<int>{1}));
}

TEST(QueueCancel, GetterCancelledAfterItsWakeUpLeavesTheItemInTheQueue) {
    asyncio::Queue<int> q;
    std::vector<int> out;
    run_test([&]() -> asyncio::Coro<> {
        auto a = asyncio::create_task(getter(&q, &out));
        co_await step();
        q.put_nowait(1);
        a.cancel();
        co_await step(2);
        EXPECT_TRUE(a.cancelled());
        EXPECT_EQ(q.qsize(), 1);
        EXPECT_EQ(q.get_nowait(), 1);
    });
    EXPECT_TRUE(out.empty());
}

TEST(QueueCancel, CancelledPutterNeverInserts) {
    asyncio::Queue<int> q(1);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(0);
        auto p = asyncio::create_task(putter(&q, 1, &log));
        co_await step();
        p.cancel();
        co_await step();
        EXPECT_TRUE(p.cancelled());
        EXPECT_EQ(q.get_nowait(), 0);
        co_await step(2);
        EXPECT_TRUE(q.empty());
    });
    EXPECT_TRUE(log.empty());
}

TEST(QueueCancel, PutterCancelledInTheIterationOfItsWakeUpPassesTheSlotOn) {
    asyncio::Queue<int> q(1);
    Log log;
    run_test([&]() -> asyncio::Coro<> {
        q.put_nowait(0);
        auto a = asyncio::create_task(putter(&q, 1, &log));
        auto b = asyncio::create_task(putter(&q, 2, &log));
        co_await step();
        EXPECT_EQ(q.get_nowait(), 0);  // wakes a ...
        a.cancel();                    // ... cancelled before it runs
        co_await b;
        EXPECT_TRUE(a.cancelled());
        EXPECT_EQ(q.get_nowait(), 2);
        EXPECT_TRUE(q.empty());
    });
    EXPECT_EQ(log, (Log{"put 2"}));
}

asyncio::Coro<> contend_get(asyncio::Queue<int>* q, bool* raised) {
    auto g = asyncio::create_task(q->get());
    co_await step();
    q->put_nowait(1);
    try {
        (void)co_await g;
    } catch (const asyncio::RuntimeError&) {
        *raised = true;
        (void)q->get_nowait();
    }
}

TEST(Queue, CreatedBeforeTheLoopBindsOnFirstWaitAndRejectsAnotherLoop) {
    asyncio::Queue<int> q;
    bool first = false;
    bool second = false;
    run_test([&]() -> asyncio::Coro<> { co_await contend_get(&q, &first); });
    run_test([&]() -> asyncio::Coro<> { co_await contend_get(&q, &second); });
    EXPECT_FALSE(first);
    EXPECT_TRUE(second);
}

// ---- stress: random cancellations, every item exactly once ---------------------------

struct Stress {
    asyncio::Queue<int>* q = nullptr;
    std::mt19937* rng = nullptr;
    std::vector<asyncio::AnyTask> inflight;  // one slot per producer/consumer: its current put/get
    std::vector<int> received;               // count per item
    int cancels = 0;
};

asyncio::Coro<> put_one(asyncio::Queue<int>* q, int v) { co_await q->put(v); }
asyncio::Coro<int> get_one(asyncio::Queue<int>* q) { co_return co_await q->get(); }

asyncio::Coro<> stress_producer(Stress* s, int slot, int first, int count) {
    for (int v = first; v < first + count; ++v) {
        for (;;) {  // a cancelled put inserted nothing: put the same item again
            auto t = asyncio::create_task(put_one(s->q, v));
            s->inflight[slot] = t;
            try {
                co_await t;
                break;
            } catch (const asyncio::CancelledError&) {
                EXPECT_TRUE(t.cancelled());
            }
        }
        if ((*s->rng)() % 3 == 0) co_await asyncio::sleep(0);
    }
    s->inflight[slot] = asyncio::AnyTask();
}

asyncio::Coro<> stress_consumer(Stress* s, int slot) {
    for (;;) {
        auto t = asyncio::create_task(get_one(s->q));
        s->inflight[slot] = t;
        bool shut = false;
        try {
            int v = co_await t;
            ++s->received[static_cast<std::size_t>(v)];
        } catch (const asyncio::CancelledError&) {
            EXPECT_TRUE(t.cancelled());
        } catch (const asyncio::QueueShutDown&) {
            shut = true;
        }
        if (shut) break;
        if ((*s->rng)() % 4 == 0) co_await asyncio::sleep(0);
    }
    s->inflight[slot] = asyncio::AnyTask();
}

asyncio::Coro<> stress_chaos(Stress* s, bool* stop) {
    while (!*stop) {
        std::size_t i = (*s->rng)() % s->inflight.size();
        if (s->inflight[i] && !s->inflight[i].done() && (*s->rng)() % 2 == 0) {
            if (s->inflight[i].cancel()) ++s->cancels;
        }
        co_await asyncio::sleep(0);
    }
}

asyncio::Coro<> stress_main(Stress* s, int producers, int consumers, int per_producer) {
    s->inflight.resize(static_cast<std::size_t>(producers + consumers));
    s->received.assign(static_cast<std::size_t>(producers * per_producer), 0);
    bool stop = false;
    auto chaos = asyncio::create_task(stress_chaos(s, &stop));
    std::vector<asyncio::Task<>> ps;
    std::vector<asyncio::Task<>> cs;
    for (int p = 0; p < producers; ++p)
        ps.push_back(asyncio::create_task(stress_producer(s, p, p * per_producer, per_producer)));
    for (int c = 0; c < consumers; ++c) cs.push_back(asyncio::create_task(stress_consumer(s, producers + c)));
    for (auto& p : ps) co_await p;
    while (!s->q->empty()) co_await asyncio::sleep(0);
    stop = true;
    co_await chaos;
    s->q->shutdown();
    for (auto& c : cs) co_await c;
}

TEST(QueueStress, RandomCancellationsDeliverEveryItemExactlyOnce) {
    for (unsigned seed : {1u, 2u, 3u, 42u, 1234u}) {
        std::mt19937 rng(seed);
        for (int maxsize : {1, 3, 0}) {
            asyncio::Queue<int> q(maxsize);
            Stress s;
            s.q = &q;
            s.rng = &rng;
            run_test([&]() -> asyncio::Coro<> { co_await stress_main(&s, 4, 5, 300); });
            int missing = 0;
            int duplicated = 0;
            for (int n : s.received) {
                if (n == 0) ++missing;
                if (n > 1) ++duplicated;
            }
            EXPECT_EQ(missing, 0) << "seed " << seed << " maxsize " << maxsize;
            EXPECT_EQ(duplicated, 0) << "seed " << seed << " maxsize " << maxsize;
            EXPECT_GT(s.cancels, 50) << "seed " << seed << " maxsize " << maxsize;
        }
    }
}

}  // namespace
