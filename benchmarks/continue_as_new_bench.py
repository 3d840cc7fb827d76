"""Replay of a long-lived mission with and without continue-as-new, and the
on-disk size of its hot and archived history, measured in the same run.

    python benchmarks/continue_as_new_bench.py [--steps 100000] [--limit 1000]

Each mission sums ``--steps`` no-op steps and then waits for a signal, so it
is in flight when a new runtime opens the directory: opening recovers it by
replay. Without continue-as-new the whole history is replayed; with it
(``history_limit=--limit``) only the last run, from its snapshot, the rest
having been archived by the compactor. Sizes are LMDB pages in use per table
(hot log + index vs compressed archive), for the whole directory: they
include the audit chain (one entry per event; its newest 10,000 stay hot).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aura
from benchmarks._report import report


@aura.step(name="bench:add")
def add(a: int, b: int) -> int:
    return a + b


def make_mission(limit: int, name: str) -> Any:
    @aura.mission(name=name, history_limit=limit)
    async def long_lived(ctx: aura.MissionContext, start: int, end: int) -> int:
        acc = ctx.memory.get("acc", 0)
        for i in range(start, end):
            acc = await ctx.step(add, acc, i)
            if ctx.info.continue_as_new_suggested and i + 1 < end:
                ctx.memory["acc"] = acc
                ctx.continue_as_new(i + 1, end)
        await ctx.wait_signal("finish")
        return int(acc)

    return long_lived


def table_bytes(path: Path) -> dict[str, int]:
    env = lmdb.open(str(path / "events"), readonly=True, max_dbs=8, lock=False)
    try:
        out = {}
        tables = {"log": None, "archive": b"archive", "snapshots": b"checkpoints"}
        for name, table in tables.items():  # the log is LMDB's main database
            db = env.open_db(table, create=False)
            with env.begin() as txn:
                st = txn.stat(db)
            out[name] = (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * st["psize"]
        return out
    finally:
        env.close()


def measure(steps: int, limit: int, name: str) -> dict[str, float]:
    mission = make_mission(limit, name)
    d = Path(tempfile.mkdtemp(prefix="aura-bench-can-"))
    try:
        with aura.Runtime(d, missions=[mission], durability="async") as rt:
            rt.start(mission, 0, steps, mission_id="m")
            rt.wait("m", timeout=3600, until={aura.MissionStatus.WAITING})
            rt.compact(completed_after=None)
            info = rt.store.stream_info("mission/m")
            assert info is not None
            events, hot = info.version, info.version - info.archived_upto
        sizes = table_bytes(d)
        t0 = time.perf_counter()
        with aura.Runtime(d, missions=[mission]) as rt:
            recovered = time.perf_counter() - t0
            rt.signal("m", "finish")
            assert rt.handle("m").result(timeout=600) == sum(range(steps))
        return {
            "events": events,
            "hot_events": hot,
            "recover_s": recovered,
            "hot_bytes": sizes["log"],
            "archive_bytes": sizes["archive"],
        }
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=1000)
    args = ap.parse_args()
    without = measure(args.steps, args.steps * 10, "bench:without_can")
    with_can = measure(args.steps, args.limit, "bench:with_can")
    rows = []
    for label, r in (("no continue-as-new", without), (f"history_limit={args.limit}", with_can)):
        rows.append(
            {
                "mission": f"{args.steps:,} steps, {label}",
                "events": r["events"],
                "hot events": r["hot_events"],
                "recover s": r["recover_s"],
                "hot MB": r["hot_bytes"] / 1e6,
                "archive MB": r["archive_bytes"] / 1e6,
                "recover vs no CAN": r["recover_s"] / without["recover_s"],
            }
        )
    notes = [
        f"replay on recovery: {without['recover_s']:.2f} s for the whole history vs "
        f"{with_can['recover_s']:.3f} s from the last run's snapshot "
        f"({without['recover_s'] / with_can['recover_s']:.0f}x faster)",
        f"hot history: {without['hot_events']:,} events ({without['hot_bytes'] / 1e6:.1f} MB) "
        f"vs {with_can['hot_events']:,} ({with_can['hot_bytes'] / 1e6:.2f} MB); archived "
        f"{with_can['archive_bytes'] / 1e6:.1f} MB compressed",
    ]
    report("continue_as_new", rows, notes)


if __name__ == "__main__":
    main()
