"""Print the benchmark table: workload | target | ours | asyncio | uvloop | tokio | asio | ...

Reads the JSON that the C++ benchmark programs write (--benchmark_format=json)
and the JSON lines of bench/python/*.py and of the peers' programs
(bench/peers/<name>), and prints one Markdown table (the
one docs/benchmarks.md shows). Standard library only; scripts/bench.sh runs
it with /usr/bin/python3.

Usage: report.py --cxx build/bench/results/bench_*.json --py build/bench/results/python_*.jsonl
"""

import argparse
import json
import statistics
import sys

# (label, target text, target value or None, metric, source). The source is a
# benchmark name, or ("-", a, b) for the difference a - b (cost over a baseline).
ROWS = [
    ("create_task + await, per task", "<= 60 ns [Tokio 166]", 60, "ns_per_op", "create_task_await"),
    ("ping-pong via futures, per switch", "<= 40 ns [Tokio 105]", 40, "ns_per_op", "pingpong_future"),
    ("ping-pong via Event, per switch", "<= 40 ns [Tokio 105]", 40, "ns_per_op", "pingpong_event"),
    ("sleep(0), per iteration", "<= 40 ns [Asio post 111]", 40, "ns_per_op", "sleep0"),
    ("call_soon, per callback", "<= 15 ns", 15, "ns_per_op", "call_soon"),
    ("call_soon, heap allocations per call", "0", 0.001, "allocs_per_op", "call_soon"),
    ("100k timers, CPU per timer", "<= 400 ns [Asio 1193]", 400, "ns_per_op", "timers_100k"),
    ("100k tasks waiting on an Event, bytes per task", "<= 192 B [Tokio 208, Asio 1169]", 192,
     "bytes_per_task", "memory_event_100k"),
    ("100k tasks waiting on a Future, bytes per task", "(the task alone)", None,
     "bytes_per_task", "memory_future_100k"),
    ("create + await 100k tasks, per task", "(baseline)", None, "ns_per_op", "task_create_await_100k"),
    ("gather of 100k tasks, per task", "", None, "ns_per_op", "gather_100k"),
    ("gather, over the task cost", "<= 100 ns", 100, "ns_per_op",
     ("-", "gather_100k", "task_create_await_100k")),
    ("as_completed over 100k tasks, per task", "<= 150 ns", 150, "ns_per_op", "as_completed_100k"),
    ("wait_for (timeout not firing), over direct await", "<= 100 ns", 100, "ns_per_op",
     ("-", "wait_for_timeout", "wait_for_direct")),
    ("Lock acquire + release, uncontended", "<= 10 ns", 10, "ns_per_op", "lock_acquire_release"),
    ("Lock as a guard (async with), uncontended", "<= 10 ns", 10, "ns_per_op", "lock_guard"),
    ("Queue(maxsize=100), 1M items, per item", "<= 40 ns [Tokio mpsc 59, Asio 367]", 40, "ns_per_op",
     "queue_1m"),
    ("Event.set() waking 100k waiters, per waiter", "<= 60 ns", 60, "ns_per_op", "event_wake_100k"),
]


# The peers' columns, in order: CPython's asyncio and uvloop (bench/python), Tokio and
# Boost.Asio (bench/peers/<name>); all print the same JSON lines.
PEERS = ["asyncio", "uvloop", "tokio", "asio"]


def load_cxx(paths, errors, labels):
    """name -> {metric: median over repetitions}, from Google Benchmark JSON.

    Benchmark labels (what a workload ran on) are collected into ``labels``.
    """
    runs = {}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            errors.append("%s: unreadable (%s)" % (path, e))
            continue
        for b in data.get("benchmarks", []):
            if b.get("run_type", "iteration") != "iteration":
                continue
            name = b["name"].split("/")[0]
            if b.get("error_occurred"):
                errors.append("ours %s: %s" % (name, b.get("error_message", "error")))
                runs.setdefault(name, {})["error"] = True
                continue
            entry = runs.setdefault(name, {})
            if b.get("label"):
                labels[name] = b["label"]
            for metric in ("ns_per_op", "allocs_per_op", "bytes_per_task"):
                if metric in b:
                    entry.setdefault(metric, []).append(float(b[metric]))
    out = {}
    for name, entry in runs.items():
        if entry.get("error"):
            out[name] = {"error": True}
            continue
        out[name] = {k: statistics.median(v) for k, v in entry.items()}
    return out


def load_py(paths, errors):
    """impl -> name -> {metric: value}, from the JSON lines of bench/python."""
    out = {}
    for path in paths:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            errors.append("%s: unreadable (%s)" % (path, e))
            continue
        for line in lines:
            line = line.strip()
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            out.setdefault(rec["impl"], {})[rec["bench"]] = rec
    return out


def value(results, source, metric):
    if isinstance(source, tuple):
        a, b = value(results, source[1], metric), value(results, source[2], metric)
        return None if a is None or b is None else a - b
    rec = results.get(source)
    if rec is None or rec.get("error"):
        return None
    return rec.get(metric)


def fmt(v, metric):
    if v is None:
        return "—"
    if metric == "allocs_per_op":
        return "%.3g" % v
    if metric == "bytes_per_task":
        return "%d B" % round(v)
    if v < 0:  # a difference of two figures, below their noise
        return "~0 (%.1f)" % v
    if abs(v) >= 100:
        return "%d ns" % round(v)
    return "%.1f ns" % v


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxx", nargs="*", default=[], help="Google Benchmark JSON files")
    parser.add_argument("--py", nargs="*", default=[], help="JSON lines of bench/python/*.py and of the peers")
    args = parser.parse_args()

    errors = []
    labels = {}
    ours = load_cxx(args.cxx, errors, labels)
    py = load_py(args.py, errors)
    header = ["workload", "target", "ours"] + PEERS + ["ours vs best peer", "met"]
    rows = []
    for label, target_text, target, metric, source in ROWS:
        o = value(ours, source, metric)
        peer_values = [value(py.get(p, {}), source, metric) for p in PEERS]
        known = [(v, p) for v, p in zip(peer_values, PEERS) if v is not None and v > 0]
        if o is not None and o > 0 and known and metric != "allocs_per_op":
            best, who = min(known)
            ratio = ("%.1fx less than %s" % (best / o, who) if best >= o
                     else "%.2fx more than %s" % (o / best, who))
        else:
            ratio = "—"
        if target is None or o is None:
            met = "—"
        else:
            met = "yes" if o <= target else "NO"
        rows.append([label, target_text, fmt(o, metric)] + [fmt(v, metric) for v in peer_values]
                    + [ratio, met])

    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()
    print("ns = CPU nanoseconds per operation (median of the runs); B = heap bytes per task")
    print("(ours: mallinfo2 delta; Python: tracemalloc, Python-heap objects only).")
    print("'ours vs best peer': how many times less (or more) time or memory ours takes than the")
    print("fastest (or smallest) peer of the same run; a peer's empty cell means it has no")
    print("equivalent workload or was not run.")
    for name, label in sorted(labels.items()):
        print("ours %s: %s" % (name, label))
    if not args.py:
        print("Python columns empty: the Python side was not run.")
    elif "uvloop" not in py:
        print("uvloop column empty: python3-uvloop is not installed (run scripts/setup.sh).")
    for p in PEERS[2:]:
        if p not in py:
            print("%s column empty: its peer was not built or run (scripts/bench.sh --peers)." % p)
    for e in errors:
        print("error: " + e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
