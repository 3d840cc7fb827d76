"""1,000 child missions fanned out and gathered, against the same work
started from outside and against steps.

    python benchmarks/children_bench.py [--children 1000] [--rounds 3]

Rows (same process, fresh data directory each, durable commits):
- children: one parent mission starts N child missions with
  ``ctx.start_child`` and ``ctx.gather``s them; each child runs one step.
  Timed from ``rt.start`` of the parent to its result.
- top-level missions: the same N one-step missions started with
  ``rt.start`` from the caller, then every result awaited (the baseline: a
  child costs what a mission costs, plus its parent's bookkeeping).
- steps: one mission gathers N steps (what a fan-out costs without
  missions of their own: no own history, supervision or budget).
The ratio column is this row's time / the top-level row's time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aura
from benchmarks._report import report


@aura.step
def work(x: int) -> int:
    return x + 1


@aura.mission(name="bench-child")
async def child(ctx: aura.MissionContext, x: int) -> int:
    return int(await ctx.step(work, x))


@aura.mission(name="bench-parent")
async def parent(ctx: aura.MissionContext, n: int) -> int:
    return sum(await ctx.gather(*(ctx.start_child(child, i) for i in range(n))))


@aura.mission(name="bench-steps")
async def steps(ctx: aura.MissionContext, n: int) -> int:
    return sum(await ctx.gather(*(ctx.step(work, i) for i in range(n))))


MISSIONS = [child, parent, steps]


def in_fresh_dir(fn: object) -> float:
    root = Path(tempfile.mkdtemp(prefix="aura-children-bench-"))
    try:
        with aura.Runtime(root / "data", missions=MISSIONS) as rt:
            t0 = time.perf_counter()
            fn(rt)  # type: ignore[operator]
            return time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_children(n: int) -> float:
    def go(rt: aura.Runtime) -> None:
        assert rt.start(parent, n).result(timeout=600) == n * (n + 1) // 2

    return in_fresh_dir(go)


def run_top_level(n: int) -> float:
    def go(rt: aura.Runtime) -> None:
        handles = [rt.start(child, i) for i in range(n)]
        assert sum(h.result(timeout=600) for h in handles) == n * (n + 1) // 2

    return in_fresh_dir(go)


def run_steps(n: int) -> float:
    def go(rt: aura.Runtime) -> None:
        assert rt.start(steps, n).result(timeout=600) == n * (n + 1) // 2

    return in_fresh_dir(go)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.children
    times = {
        "children (ctx.start_child + gather)": statistics.median(
            run_children(n) for _ in range(args.rounds)
        ),
        "top-level missions (rt.start each, then results)": statistics.median(
            run_top_level(n) for _ in range(args.rounds)
        ),
        "steps (one mission gathers N steps)": statistics.median(
            run_steps(n) for _ in range(args.rounds)
        ),
    }
    base = times["top-level missions (rt.start each, then results)"]
    rows = [
        {
            "what": what,
            "n": n,
            "seconds": round(seconds, 3),
            "per second": round(n / seconds),
            "time / top-level": round(seconds / base, 2),
        }
        for what, seconds in times.items()
    ]
    notes = [
        f"median of {args.rounds} rounds, each in a fresh data directory, durable commits.",
        "A child is a mission of its own (own history, supervision, budget); its parent "
        "journals its start command and its outcome once.",
    ]
    report("children", rows, notes)


if __name__ == "__main__":
    main()
