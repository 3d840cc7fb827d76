"""Several processes on one LMDB directory against one process, same run.

    pip install -e '.[bench]' && python benchmarks/lmdb_workers_bench.py [--rounds 3]

Rows (median of ``--rounds`` interleaved rounds, min-max beside it):
- 100 missions x 100 no-op steps started by a client runtime
  (``shared=True, max_missions=0``) and run by 1 and by P ``aura worker``
  processes sharing one data directory (P = number of cores), total
  steps/s; and the same 100 x 100 in one ordinary (exclusive) runtime, the
  single-process figure users have today;
- the event store: 64 appender threads (one event per append, each its own
  stream) in 1 process, and the same 64 spread over P processes, events/s.
Prints a table and writes results/lmdb_workers.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aura
from benchmarks._report import report

ROOT = Path(__file__).resolve().parent.parent


@aura.step(name="lwb:noop")
def noop(i: int) -> int:
    return i


@aura.mission(name="lwb:sequential")
async def sequential(ctx: aura.MissionContext, n: int) -> int:
    for i in range(n):
        await ctx.step(noop, i)
    return n


def workers_many(data: Path, processes: int, missions: int, steps: int) -> float:
    """Steps/s, first start to last result, of ``processes`` workers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["--data", str(data), "worker", "--app", "benchmarks.lmdb_workers_bench"]
    args += ["--lease", "10", "--max-workers", "32", "--log", "off"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aura.operating._cli", *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for _ in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("serving"), line
        with aura.Runtime(
            data, missions=[sequential], shared=True, max_missions=0, lease_ttl=10, heartbeat=2
        ) as client:
            t0 = time.perf_counter()
            for i in range(missions):
                client.start(sequential, steps, mission_id=f"m{i}")
            for i in range(missions):
                client.handle(f"m{i}").result(timeout=600)
            return missions * steps / (time.perf_counter() - t0)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def one_runtime(data: Path, missions: int, steps: int) -> float:
    with aura.Runtime(data, missions=[sequential], max_workers=32) as rt:
        t0 = time.perf_counter()
        handles = [rt.start(sequential, steps, mission_id=f"m{i}") for i in range(missions)]
        for h in handles:
            h.result(timeout=600)
        return missions * steps / (time.perf_counter() - t0)


APPENDERS = """
import sys, threading, time
from eventstore import NewEvent
from eventstore.lmdb import LmdbEventStore
path, threads, seconds, tag = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
store = LmdbEventStore.open(path)
counts = [0] * threads
print("READY", flush=True)
sys.stdin.readline()
end = time.monotonic() + seconds
def work(t):
    stream, n = f"{tag}-{t}", 0
    while time.monotonic() < end:
        store.append(stream, [NewEvent("e", b"x" * 64)])
        n += 1
    counts[t] = n
ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
store.close()
print(sum(counts), flush=True)
"""


def appenders(path: Path, processes: int, threads: int, seconds: float) -> float:
    """Events/s of ``threads`` appender threads spread over ``processes``."""
    share = str(threads // processes)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDERS, str(path), share, str(seconds), f"p{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "READY\n"
    for proc in procs:  # all start together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    total = sum(int(proc.communicate(timeout=seconds + 120)[0].strip()) for proc in procs)
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    p = args.processes
    base = Path(tempfile.mkdtemp(prefix="aura-lwb-"))
    fresh = iter(range(10**6))

    def place() -> Path:
        return base / f"d{next(fresh)}"

    one_name = "one exclusive runtime: 100 missions x 100 steps (steps/s)"
    app1_name = "event store, 64 appender threads in 1 process (events/s)"
    appp_name = f"event store, 64 appender threads over {p} processes (events/s)"
    work: list[tuple[str, Callable[[], float]]] = [
        (one_name, lambda: one_runtime(place(), 100, 100)),
        ("1 worker process: 100 x 100 (steps/s)", lambda: workers_many(place(), 1, 100, 100)),
        (f"{p} worker processes: 100 x 100 (steps/s)", lambda: workers_many(place(), p, 100, 100)),
        (app1_name, lambda: appenders(place(), 1, 64, 3.0)),
        (appp_name, lambda: appenders(place(), p, 64, 3.0)),
    ]
    samples: dict[str, list[float]] = {}
    for _ in range(args.rounds):  # interleaved: noise hits every row alike
        for name, fn in work:
            samples.setdefault(name, []).append(fn())
    rows = [
        {"workload": name, "rate": statistics.median(v), "min-max": f"{min(v):,.0f}-{max(v):,.0f}"}
        for name, v in samples.items()
    ]
    med = {r["workload"]: r["rate"] for r in rows}
    one = med["1 worker process: 100 x 100 (steps/s)"]
    many = med[f"{p} worker processes: 100 x 100 (steps/s)"]
    app1, appp = med[app1_name], med[appp_name]
    notes = [
        f"{p} worker processes / 1: {many / one:.2f}x (target >= {0.75 * p:.2f}x); "
        f"appenders over {p} processes / 1 process: {appp / app1:.2f}x",
        f"cores: {os.cpu_count()}; LMDB durable commits (fsync on)",
    ]
    report("lmdb_workers", rows, notes)


if __name__ == "__main__":
    main()
