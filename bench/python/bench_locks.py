"""Python twin of bench/bench_locks.cpp: an uncontended Lock, a bounded Queue
between two tasks, and an Event waking many waiters, on asyncio and on uvloop.

Usage: /usr/bin/python3 bench/python/bench_locks.py [--reps N] [--impl asyncio,uvloop]
Prints one JSON line per workload and loop (see common.py).
"""

import asyncio

from common import Meter, main, ops


async def lock_acquire_release(quick):
    n = ops(300_000, 3_000, quick)
    lock = asyncio.Lock()
    m = Meter()
    m.start()
    for _ in range(n):
        await lock.acquire()
        lock.release()
    m.stop(n)
    assert not lock.locked()
    return m.result()


async def lock_guard(quick):
    n = ops(300_000, 3_000, quick)
    lock = asyncio.Lock()
    m = Meter()
    m.start()
    for _ in range(n):
        async with lock:
            pass
    m.stop(n)
    assert not lock.locked()
    return m.result()


async def producer(q, n):
    put = q.put
    for i in range(n):
        await put(i)


async def queue_1m(quick):
    n = ops(1_000_000, 10_000, quick)
    q = asyncio.Queue(maxsize=100)
    m = Meter()
    m.start()
    prod = asyncio.create_task(producer(q, n))
    get = q.get
    ok = True
    for i in range(n):
        if await get() != i:
            ok = False
    await prod
    m.stop(n)
    assert ok, "queue items out of order"
    return m.result()


async def event_waiter(ev, done):
    await ev.wait()
    done[0] += 1


async def event_wake_100k(quick):
    n = ops(100_000, 1_000, quick)
    m = Meter()
    for _ in range(3):
        ev = asyncio.Event()
        done = [0]
        waiters = [asyncio.create_task(event_waiter(ev, done)) for _ in range(n)]
        await asyncio.sleep(0)
        assert done[0] == 0
        m.start()
        ev.set()
        while done[0] < n:
            await asyncio.sleep(0)
        m.stop(n)
        assert all(w.done() for w in waiters)
        del waiters
    return m.result()


WORKLOADS = {
    "lock_acquire_release": lock_acquire_release,
    "lock_guard": lock_guard,
    "queue_1m": queue_1m,
    "event_wake_100k": event_wake_100k,
}

if __name__ == "__main__":
    main(WORKLOADS)
