"""Python twin of bench/bench_combinators.cpp: gather, as_completed and
wait_for, each next to the bare cost of what it combines, on asyncio and
on uvloop.

Usage: /usr/bin/python3 bench/python/bench_combinators.py [--reps N] [--impl asyncio,uvloop]
Prints one JSON line per workload and loop (see common.py).
"""

import asyncio

from common import Meter, main, ops


async def trivial():
    return 1


def make_tasks(n):
    create_task = asyncio.create_task
    return [create_task(trivial()) for _ in range(n)]


async def await_each(tasks):
    total = 0
    for t in tasks:
        total += await t
    return total


async def gather_all(tasks):
    return sum(await asyncio.gather(*tasks))


async def as_completed_all(tasks):
    total = 0
    for nxt in asyncio.as_completed(tasks):
        total += await nxt
    return total


async def per_task(quick, consume):
    """CPU ns per task to create 100k tasks and consume them (3 rounds)."""
    n = ops(100_000, 1_000, quick)
    m = Meter()
    total = 0
    for _ in range(3):
        m.start()
        total += await consume(make_tasks(n))
        m.stop(n)
    assert total == m.ops
    return m.result()


async def task_create_await_100k(quick):
    return await per_task(quick, await_each)


async def gather_100k(quick):
    return await per_task(quick, gather_all)


async def as_completed_100k(quick):
    return await per_task(quick, as_completed_all)


async def yield_once():
    await asyncio.sleep(0)
    return 1


async def wait_for_direct(quick):
    n = ops(200_000, 2_000, quick)
    total = 0
    m = Meter()
    m.start()
    for _ in range(n):
        total += await yield_once()
    m.stop(n)
    assert total == n
    return m.result()


async def wait_for_timeout(quick):
    n = ops(100_000, 1_000, quick)
    wait_for = asyncio.wait_for
    total = 0
    m = Meter()
    m.start()
    for _ in range(n):
        total += await wait_for(yield_once(), 10.0)
    m.stop(n)
    assert total == n
    return m.result()


WORKLOADS = {
    "task_create_await_100k": task_create_await_100k,
    "gather_100k": gather_100k,
    "as_completed_100k": as_completed_100k,
    "wait_for_direct": wait_for_direct,
    "wait_for_timeout": wait_for_timeout,
}

if __name__ == "__main__":
    main(WORKLOADS)
