"""Python twin of bench/bench_core.cpp: tasks, switches, sleep(0), call_soon,
timers and the memory of a suspended task, on asyncio and on uvloop.

Usage: /usr/bin/python3 bench/python/bench_core.py [--reps N] [--impl asyncio,uvloop]
Prints one JSON line per workload and loop (see common.py).
"""

import asyncio
import gc
import random
import tracemalloc

from common import Meter, main, ops


async def trivial():
    return 1


async def create_task_await(quick):
    n = ops(200_000, 2_000, quick)
    create_task = asyncio.create_task
    total = 0
    m = Meter()
    m.start()
    for _ in range(n):
        total += await create_task(trivial())
    m.stop(n)
    assert total == n
    return m.result()


async def pingpong_future(quick):
    n = ops(200_000, 2_000, quick)
    loop = asyncio.get_running_loop()
    st = {"a": loop.create_future(), "b": loop.create_future(), "stop": False, "pongs": 0}

    async def ponger():
        while True:
            await st["b"]
            if st["stop"]:
                return
            st["b"] = loop.create_future()
            st["pongs"] += 1
            st["a"].set_result(None)

    task = asyncio.create_task(ponger())
    m = Meter()
    m.start()
    for _ in range(n):
        st["b"].set_result(None)
        await st["a"]
        st["a"] = loop.create_future()
    m.stop(2 * n)
    st["stop"] = True
    st["b"].set_result(None)
    await task
    assert st["pongs"] == n
    return m.result()


async def pingpong_event(quick):
    n = ops(200_000, 2_000, quick)
    to_a, to_b = asyncio.Event(), asyncio.Event()
    st = {"stop": False, "pongs": 0}

    async def ponger():
        while True:
            await to_b.wait()
            to_b.clear()
            if st["stop"]:
                return
            st["pongs"] += 1
            to_a.set()

    task = asyncio.create_task(ponger())
    m = Meter()
    m.start()
    for _ in range(n):
        to_b.set()
        await to_a.wait()
        to_a.clear()
    m.stop(2 * n)
    st["stop"] = True
    to_b.set()
    await task
    assert st["pongs"] == n
    return m.result()


async def sleep0(quick):
    n = ops(300_000, 3_000, quick)
    sleep = asyncio.sleep
    m = Meter()
    m.start()
    for _ in range(n):
        await sleep(0)
    m.stop(n)
    return m.result()


class Counter:
    __slots__ = ("n",)

    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1


async def call_soon(quick):
    batch = 1000
    batches = ops(500, 5, quick)
    loop = asyncio.get_running_loop()
    counter = Counter()
    inc = counter.inc
    call = loop.call_soon
    m = Meter()
    m.start()
    for _ in range(batches):
        for _ in range(batch):
            call(inc)
        await asyncio.sleep(0)
    m.stop(batch * batches)
    assert counter.n == batch * batches
    return m.result()


async def timers_100k(quick):
    n = ops(100_000, 1_000, quick)
    loop = asyncio.get_running_loop()
    rng = random.Random(12345)
    delays = [rng.uniform(0.0, 0.1) for _ in range(n)]
    when = [0.0] * n
    fired = []
    done = loop.create_future()

    def on_timer(i):
        fired.append(i)
        if len(fired) == n:
            done.set_result(None)

    # uvloop keeps deadlines in whole milliseconds (libuv) and gives a delay
    # that rounds to 0 ms a call_soon() Handle without when(): there, those
    # are left out of the order check and when() is trusted to 1 ms.
    slack = 1e-3 if type(loop).__module__.startswith("uvloop") else 0.0
    m = Meter()
    m.start()
    call_later = loop.call_later
    for i, d in enumerate(delays):
        h = call_later(d, on_timer, i)
        when[i] = h.when() if hasattr(h, "when") else None
    await done
    m.stop(n)
    # CPython's heap compares TimerHandles by when() only: equal deadlines
    # fire in no particular order, so only the deadline order is checked.
    order = [when[i] for i in fired if when[i] is not None]
    for wa, wb in zip(order, order[1:]):
        assert wa <= wb + slack, "timers out of order"
    return m.result()


async def park_100k(quick, make_gate):
    """Python-heap bytes per task suspended on a gate.

    tracemalloc counts every object allocated through Python's allocators:
    the Task, its coroutine and frame, what the gate keeps per waiter, the
    WeakSet entry of asyncio.all_tasks(). ``make_gate()`` returns a function
    giving the awaitable to wait on and a function opening the gate.
    """
    n = ops(100_000, 1_000, quick)
    wait, open_gate = make_gate()
    done = [0]

    async def waiter():
        await wait()
        done[0] += 1

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            asyncio.create_task(waiter())
        await asyncio.sleep(0)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert done[0] == 0
    open_gate()
    while done[0] < n:
        await asyncio.sleep(0)
    return {"bytes_per_task": (after - before) / n}


def event_gate():
    event = asyncio.Event()
    return event.wait, event.set


def future_gate():
    fut = asyncio.get_running_loop().create_future()
    return (lambda: fut), (lambda: fut.set_result(None))


async def memory_event_100k(quick):
    return await park_100k(quick, event_gate)


async def memory_future_100k(quick):
    return await park_100k(quick, future_gate)


WORKLOADS = {
    "create_task_await": create_task_await,
    "pingpong_future": pingpong_future,
    "pingpong_event": pingpong_event,
    "sleep0": sleep0,
    "call_soon": call_soon,
    "timers_100k": timers_100k,
    "memory_event_100k": memory_event_100k,
    "memory_future_100k": memory_future_100k,
}

if __name__ == "__main__":
    main(WORKLOADS)
