"""Durable mission steps against a raw durable LMDB commit, same run.

    python benchmarks/missions_bench.py [--rounds 3] [--recover 10000] [--clients 10]

Rows (steps/s: the median of ``--rounds`` interleaved rounds, with their
min-max beside it):
- raw durable LMDB commit (one per step): the physical floor of a durable step;
- one mission of 1,000 sequential no-op steps (steps/s);
- 100 concurrent missions x 100 steps (total steps/s, from the first start
  until all finished), twice: started one after another by one thread, and
  started by ``--clients`` threads as a service's request threads would. A
  start returns once durable, ~2 ms while the runtime is busy, so one thread
  spreads 100 starts over a third of the run and the last missions' 100
  steps come after that;
- recovery: N missions are in flight (each inside a step) in a child process
  that is SIGKILLed; time for a new runtime to open and resume them all
  (every mission re-activated, replayed and its step resubmitted), and
  until all finished.

Every timed section starts from a collected heap (``gc.collect()`` first,
the baseline's too): a round must not pay for the cyclic garbage the
runtimes of earlier rounds left behind, which no service that keeps one
runtime open has. The collector stays on while timing.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aura
from benchmarks._report import report

ROOT = Path(__file__).resolve().parent.parent


@aura.step(name="bench:noop")
def noop(i: int) -> int:
    return i


@aura.step(name="bench:slow_in_child")
def slow_in_child(i: int) -> int:
    # In the killed child this blocks forever; after recovery it returns.
    if os.environ.get("AURA_BENCH_BLOCK") == "1":
        import threading

        threading.Event().wait()
    return i


@aura.mission(name="bench:sequential")
async def sequential(ctx: aura.MissionContext, n: int) -> int:
    for i in range(n):
        await ctx.step(noop, i)
    return n


@aura.mission(name="bench:in_flight")
async def in_flight(ctx: aura.MissionContext, i: int) -> int:
    result: int = await ctx.step(slow_in_child, i)
    return result


def raw_commits(n: int) -> float:
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    env = lmdb.open(str(d), map_size=1 << 30)
    try:
        gc.collect()  # see the module docstring
        t0 = time.perf_counter()
        for i in range(n):
            with env.begin(write=True) as txn:
                txn.put(i.to_bytes(8, "big"), b"x" * 64, append=True)
        return n / (time.perf_counter() - t0)
    finally:
        env.close()
        shutil.rmtree(d)


def one_mission(steps: int) -> float:
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    try:
        with aura.Runtime(d, missions=[sequential]) as rt:
            gc.collect()  # see the module docstring
            t0 = time.perf_counter()
            rt.start(sequential, steps, mission_id="one").result(timeout=600)
            return steps / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(d)


def concurrent_missions(missions: int, steps: int, workers: int, clients: int = 1) -> float:
    """Total steps/s from the first start until every mission finished.
    ``clients``: threads starting the missions (one each in turn), as the
    request threads of a service would; 1 starts them one after another."""
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    try:
        with aura.Runtime(d, missions=[sequential], max_workers=workers) as rt:
            handles: list[aura.MissionHandle | None] = [None] * missions

            def start(first: int) -> None:
                for i in range(first, missions, clients):
                    handles[i] = rt.start(sequential, steps, mission_id=f"c{i}")

            gc.collect()  # see the module docstring
            t0 = time.perf_counter()
            if clients == 1:
                start(0)
            else:
                threads = [threading.Thread(target=start, args=(k,)) for k in range(clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            for h in handles:
                assert h is not None, "a client thread failed to start its missions"
                h.result(timeout=600)
            return missions * steps / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(d)


CHILD = """
import sys
sys.path.insert(0, {root!r})
from benchmarks.missions_bench import in_flight
import aura
rt = aura.Runtime({path!r}, missions=[in_flight], max_workers=4)
for i in range({n}):
    rt.start(in_flight, i, mission_id=f"f{{i}}")
print("STARTED", flush=True)
import threading
threading.Event().wait()
"""


def recovery(n: int) -> dict[str, float]:
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(d), n=n)],
            stdout=subprocess.PIPE,
            env={**os.environ, "AURA_BENCH_BLOCK": "1"},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"STARTED"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        gc.collect()  # see the module docstring
        t0 = time.perf_counter()
        with aura.Runtime(d, missions=[in_flight], max_workers=16) as rt:
            resumed = time.perf_counter() - t0
            for i in range(n):
                rt.handle(f"f{i}").result(timeout=600)
            finished = time.perf_counter() - t0
        return {"resumed_s": resumed, "finished_s": finished}
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--recover", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=10)
    args = ap.parse_args()
    raw, one, many, served = [], [], [], []
    for _ in range(args.rounds):  # interleaved: noise hits baseline and runtime alike
        raw.append(raw_commits(args.steps))
        one.append(one_mission(args.steps))
        many.append(concurrent_missions(100, 100, args.workers))
        served.append(concurrent_missions(100, 100, args.workers, args.clients))
    raw_m, one_m, many_m, served_m = (statistics.median(x) for x in (raw, one, many, served))
    rec = recovery(args.recover)

    def spread(samples: list[float]) -> str:
        # This machine's speed drifts from minute to minute: show how far.
        return f"{min(samples):,.0f}-{max(samples):,.0f}"

    rows = [
        {
            "workload": "raw durable LMDB commit, 1 per step",
            "steps/s": raw_m,
            "rounds min-max": spread(raw),
            "vs raw": 1.0,
        },
        {
            "workload": f"1 mission x {args.steps} sequential steps",
            "steps/s": one_m,
            "rounds min-max": spread(one),
            "vs raw": one_m / raw_m,
        },
        {
            "workload": f"100 missions x 100 steps ({args.workers} step threads), "
            "started one by one",
            "steps/s": many_m,
            "rounds min-max": spread(many),
            "vs raw": many_m / raw_m,
        },
        {
            "workload": f"100 missions x 100 steps, started by {args.clients} client threads",
            "steps/s": served_m,
            "rounds min-max": spread(served),
            "vs raw": served_m / raw_m,
        },
        {
            "workload": f"recover {args.recover:,} in-flight missions after SIGKILL",
            "steps/s": args.recover / rec["resumed_s"],
            "rounds min-max": "1 round",
            "vs raw": float("nan"),
        },
    ]
    notes = [
        f"1 mission: {one_m:,.0f} steps/s (target >= 1,500); "
        f"per step {1e6 / one_m:.0f} us vs raw commit {1e6 / raw_m:.0f} us",
        f"100 x 100: {many_m:,.0f} steps/s started one by one, {served_m:,.0f} started by "
        f"{args.clients} threads (target >= 20,000); each start waits for a durable commit, "
        "so one thread spreads the starts over the run",
        f"recovery of {args.recover:,}: all resumed after {rec['resumed_s']:.2f} s, all finished "
        f"after {rec['finished_s']:.2f} s (target: 10,000 resumed <= 10 s); "
        "the recovery row's 'steps/s' is missions resumed per second",
    ]
    report("missions", rows, notes)


if __name__ == "__main__":
    main()
