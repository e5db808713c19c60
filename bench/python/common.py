"""Driver shared by the Python twins of bench/bench_<module>.cpp.

Each workload is an ``async def`` returning a dict of metrics (``ns_per_op``
and, for the memory workload, ``bytes_per_task``). The driver runs every
workload ``--reps`` times on each event loop implementation (CPython's
default asyncio loop, then uvloop), each run on a fresh loop, and prints one
JSON line per (workload, implementation) holding the median of the runs:

    {"bench": "sleep0", "impl": "uvloop", "ns_per_op": 812.4, "runs": [...]}

``ns_per_op`` is CPU time (time.process_time_ns) per operation, as the C++
side reports thread CPU time: the time a loop sleeps waiting for a timer is
not counted. ``wall_ns_per_op`` (time.perf_counter_ns) is printed too.

Run with Debian's /usr/bin/python3: that is where python3-uvloop installs.
"""

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time

cpu_ns = time.process_time_ns
wall_ns = time.perf_counter_ns


class Meter:
    """CPU and wall time of a timed section, divided by its operation count."""

    __slots__ = ("cpu0", "wall0", "cpu", "wall", "ops")

    def __init__(self):
        self.cpu = 0
        self.wall = 0
        self.ops = 0

    def start(self):
        self.wall0 = wall_ns()
        self.cpu0 = cpu_ns()

    def stop(self, ops):
        self.cpu += cpu_ns() - self.cpu0
        self.wall += wall_ns() - self.wall0
        self.ops += ops

    def result(self, **extra):
        out = {
            "ns_per_op": self.cpu / self.ops,
            "wall_ns_per_op": self.wall / self.ops,
            "ops": self.ops,
        }
        out.update(extra)
        return out


def _loop_factories(wanted):
    for impl in wanted:
        if impl == "asyncio":
            yield impl, asyncio.new_event_loop, platform.python_version()
        elif impl == "uvloop":
            try:
                import uvloop
            except ImportError:
                print(
                    "note: uvloop is not importable by %s; run scripts/setup.sh "
                    "(Debian package python3-uvloop) to get the uvloop column" % sys.executable,
                    file=sys.stderr,
                )
                continue
            yield impl, uvloop.new_event_loop, uvloop.__version__
        else:
            raise SystemExit("unknown --impl %r" % impl)


def _run_once(factory, workload, quick):
    gc.collect()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(workload(quick))


def main(workloads):
    """Parse the command line and run ``workloads`` (name -> async fn(quick))."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per workload (median printed)")
    parser.add_argument("--impl", default="asyncio,uvloop", help="comma list: asyncio,uvloop")
    parser.add_argument("--filter", default="", help="run only workloads whose name contains this")
    parser.add_argument("--quick", action="store_true", help="fewer operations (smoke test)")
    args = parser.parse_args()

    for impl, factory, version in _loop_factories(args.impl.split(",")):
        for name, workload in workloads.items():
            if args.filter and args.filter not in name:
                continue
            runs = [_run_once(factory, workload, args.quick) for _ in range(max(1, args.reps))]
            line = {"bench": name, "impl": impl, "version": version}
            for key in runs[0]:
                values = [r[key] for r in runs]
                if key.endswith("ns_per_op") or key.startswith("bytes_per_task"):
                    line[key] = round(statistics.median(values), 2)
                else:
                    line[key] = runs[0][key]
            primary = "bytes_per_task" if "bytes_per_task" in runs[0] else "ns_per_op"
            line["runs"] = [round(r[primary], 2) for r in runs]
            print(json.dumps(line), flush=True)


def ops(full, quick_value, quick):
    """The operation count for a workload: ``full`` unless --quick."""
    return quick_value if quick else full
