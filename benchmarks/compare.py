"""aura side by side with DBOS (SQLite), LangGraph (SqliteSaver, durability
"sync") and the physical limit, in one run, interleaved, several rounds.

    pip install -e '.[bench]' && python benchmarks/compare.py [--rounds 3]

Workloads (so far; see the issue note for what is not measured yet):
  1. one workflow of 1,000 sequential no-op steps: steps/s, p50/p99 step latency;
  2. 100 concurrent workflows x 100 steps: total steps/s.
Raw limits: one durable LMDB commit per step; one SQLite (WAL,
synchronous=FULL) insert + commit per step. Prints a table, writes JSON and
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import lmdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aura
from benchmarks._report import report

HERE = Path(__file__).resolve().parent


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="aura-cmp-"))


def _latencies(stamps: list[float]) -> tuple[float, float]:
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    if not gaps:
        return float("nan"), float("nan")
    return gaps[len(gaps) // 2] * 1e6, gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1e6


# ---------------------------------------------------------------- raw limits


def raw_lmdb(n: int) -> dict[str, float]:
    d = _tmp()
    env = lmdb.open(str(d), map_size=1 << 30)
    try:
        stamps = []
        t0 = time.perf_counter()
        for i in range(n):
            with env.begin(write=True) as txn:
                txn.put(struct.pack(">Q", i), b"x" * 64, append=True)
            stamps.append(time.perf_counter())
        return {"steps/s": n / (time.perf_counter() - t0), **_lat(stamps)}
    finally:
        env.close()
        shutil.rmtree(d)


def raw_sqlite(n: int) -> dict[str, float]:
    d = _tmp()
    conn = sqlite3.connect(d / "raw.sqlite", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        stamps = []
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, b"x" * 64))
            conn.execute("COMMIT")
            stamps.append(time.perf_counter())
        return {"steps/s": n / (time.perf_counter() - t0), **_lat(stamps)}
    finally:
        conn.close()
        shutil.rmtree(d)


def _lat(stamps: list[float]) -> dict[str, float]:
    p50, p99 = _latencies(stamps)
    return {"p50 us": p50, "p99 us": p99}


# ---------------------------------------------------------------- aura

STAMPS: list[float] = []


@aura.step(name="cmp:noop")
def aura_noop(i: int) -> int:
    STAMPS.append(time.perf_counter())
    return i


@aura.mission(name="cmp:sequential")
async def aura_sequential(ctx: aura.MissionContext, n: int) -> int:
    for i in range(n):
        await ctx.step(aura_noop, i)
    return n


def aura_one(n: int) -> dict[str, float]:
    d = _tmp()
    try:
        with aura.Runtime(d, missions=[aura_sequential]) as rt:
            STAMPS.clear()
            t0 = time.perf_counter()
            rt.start(aura_sequential, n, mission_id="one").result(timeout=600)
            return {"steps/s": n / (time.perf_counter() - t0), **_lat(list(STAMPS))}
    finally:
        shutil.rmtree(d)


def aura_many(workflows: int, steps: int) -> dict[str, float]:
    d = _tmp()
    try:
        with aura.Runtime(d, missions=[aura_sequential], max_workers=32) as rt:
            t0 = time.perf_counter()
            hs = [rt.start(aura_sequential, steps, mission_id=f"m{i}") for i in range(workflows)]
            for h in hs:
                h.result(timeout=600)
            return {"steps/s": workflows * steps / (time.perf_counter() - t0)}
    finally:
        shutil.rmtree(d)


# ---------------------------------------------------------------- DBOS


class _Dbos:
    """DBOS is a process-wide singleton: configured once per measurement."""

    def __init__(self) -> None:
        from dbos import DBOS

        self.DBOS = DBOS
        self.stamps: list[float] = []

        @DBOS.step()
        def noop(i: int) -> int:
            self.stamps.append(time.perf_counter())
            return i

        @DBOS.workflow()
        def sequential(n: int) -> int:
            for i in range(n):
                noop(i)
            return n

        self.sequential = sequential

    def run(self, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
        d = _tmp()
        self.DBOS(
            config={
                "name": "aura-compare",
                "system_database_url": f"sqlite:///{d}/dbos.sqlite",
                "run_admin_server": False,
                "log_level": "WARNING",
            }
        )
        self.DBOS.launch()
        try:
            return fn()
        finally:
            self.DBOS.destroy(destroy_registry=False)
            shutil.rmtree(d)

    def one(self, n: int) -> dict[str, float]:
        def go() -> dict[str, float]:
            self.stamps.clear()
            t0 = time.perf_counter()
            self.sequential(n)
            return {"steps/s": n / (time.perf_counter() - t0), **_lat(list(self.stamps))}

        return self.run(go)

    def many(self, workflows: int, steps: int) -> dict[str, float]:
        def go() -> dict[str, float]:
            t0 = time.perf_counter()
            handles = [self.DBOS.start_workflow(self.sequential, steps) for _ in range(workflows)]
            for h in handles:
                h.get_result()
            return {"steps/s": workflows * steps / (time.perf_counter() - t0)}

        return self.run(go)


# ---------------------------------------------------------------- LangGraph


class _State(TypedDict):
    i: int
    n: int


class _LangGraph:
    def __init__(self) -> None:
        from langgraph.graph import END, START, StateGraph

        self.stamps: list[float] = []

        def step(s: _State) -> dict[str, int]:
            self.stamps.append(time.perf_counter())
            return {"i": s["i"] + 1}

        def route(s: _State) -> str:
            return "step" if s["i"] < s["n"] else END

        g = StateGraph(_State)
        g.add_node("step", step)
        g.add_edge(START, "step")
        g.add_conditional_edges("step", route)
        self.graph = g

    def _app(self, d: Path) -> Any:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(d / "lg.sqlite", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return self.graph.compile(checkpointer=SqliteSaver(conn)), conn

    def _invoke(self, app: Any, n: int, thread: str) -> None:
        config = {"configurable": {"thread_id": thread}, "recursion_limit": n + 10}
        app.invoke({"i": 0, "n": n}, config=config, durability="sync")

    def one(self, n: int) -> dict[str, float]:
        d = _tmp()
        app, conn = self._app(d)
        try:
            self.stamps.clear()
            t0 = time.perf_counter()
            self._invoke(app, n, "one")
            return {"steps/s": n / (time.perf_counter() - t0), **_lat(list(self.stamps))}
        finally:
            conn.close()
            shutil.rmtree(d)

    def many(self, workflows: int, steps: int) -> dict[str, float]:
        d = _tmp()
        app, conn = self._app(d)
        try:
            threads = [
                threading.Thread(target=self._invoke, args=(app, steps, f"t{i}"))
                for i in range(workflows)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return {"steps/s": workflows * steps / (time.perf_counter() - t0)}
        finally:
            conn.close()
            shutil.rmtree(d)


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--each", type=int, default=100, help="steps per concurrent workflow")
    args = ap.parse_args()
    dbos, lg = _Dbos(), _LangGraph()
    one: dict[str, list[dict[str, float]]] = {}
    many: dict[str, list[dict[str, float]]] = {}
    systems_one = {
        "raw LMDB durable commit": lambda: raw_lmdb(args.steps),
        "raw SQLite WAL FULL commit": lambda: raw_sqlite(args.steps),
        "aura": lambda: aura_one(args.steps),
        "DBOS (SQLite)": lambda: dbos.one(args.steps),
        "LangGraph SqliteSaver sync": lambda: lg.one(args.steps),
    }
    systems_many = {
        "aura": lambda: aura_many(args.workflows, args.each),
        "DBOS (SQLite)": lambda: dbos.many(args.workflows, args.each),
        "LangGraph SqliteSaver sync": lambda: lg.many(args.workflows, args.each),
    }
    for _ in range(args.rounds):  # interleaved: noise hits every system alike
        for name, fn in systems_one.items():
            one.setdefault(name, []).append(fn())
        for name, fn in systems_many.items():
            many.setdefault(name, []).append(fn())

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r.get(key, float("nan")) for r in runs)

    aura1 = med(one["aura"], "steps/s")
    aura2 = med(many["aura"], "steps/s")
    rows = []
    for name, runs in one.items():
        rate = med(runs, "steps/s")
        rows.append(
            {
                "workload": f"1: one workflow x {args.steps} steps",
                "system": name,
                "steps/s": rate,
                "p50 us": med(runs, "p50 us"),
                "p99 us": med(runs, "p99 us"),
                "aura / this": aura1 / rate,
            }
        )
    for name, runs in many.items():
        rate = med(runs, "steps/s")
        rows.append(
            {
                "workload": f"2: {args.workflows} workflows x {args.each} steps",
                "system": name,
                "steps/s": rate,
                "p50 us": float("nan"),
                "p99 us": float("nan"),
                "aura / this": aura2 / rate,
            }
        )
    by = {(r["workload"][:1], r["system"]): r["steps/s"] for r in rows}
    notes = [
        f"workload 1: aura {aura1 / by[('1', 'DBOS (SQLite)')]:.1f}x DBOS (target >= 3), "
        f"{aura1 / by[('1', 'LangGraph SqliteSaver sync')]:.1f}x LangGraph (target >= 1.3), "
        f"{aura1 / by[('1', 'raw LMDB durable commit')]:.2f}x the raw LMDB commit rate "
        "(target: within 1.5x, i.e. >= 0.67)",
        f"workload 2: aura {aura2 / by[('2', 'DBOS (SQLite)')]:.1f}x DBOS (target >= 20)",
        f"medians of {args.rounds} interleaved rounds",
    ]
    report("compare", rows, notes)
    _results_md(rows, notes, args)


def _results_md(rows: list[dict[str, Any]], notes: list[str], args: Any) -> None:
    lines = [
        "# aura side by side",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
        f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "Reproduce: `pip install -e '.[bench]' && python benchmarks/compare.py "
        f"--rounds {args.rounds}`",
        "",
        "| workload | system | steps/s | p50 us | p99 us | aura / this |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def us(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.0f}"  # not measured for this workload

    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['system']} | {r['steps/s']:,.0f} | "
            f"{us(r['p50 us'])} | {us(r['p99 us'])} | {r['aura / this']:.2f} |"
        )
    lines += ["", *[f"- {n}" for n in notes], ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
