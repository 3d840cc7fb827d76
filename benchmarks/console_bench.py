"""The console's mission list at 10k and 100k missions, against a scan.

    python benchmarks/console_bench.py [--sizes 10000 100000] [--rounds 20]

A log of N missions (each: Start, a step result, a transition; written with
the runtime's own record types in batches) is opened the way the console
opens it. Rows, per N:
- scan: what a list without an index costs per request: every mission's
  stream read and summarised (``aura ls``, ``_inspect.missions``).
- index build: the console's first open (one pass over the log).
- page: one request for a page of 50 (a refresh that finds nothing new,
  then sort and slice in memory), median of the rounds; filtered: by status
  and definition; last page.
- refresh +100: 100 new missions committed, then the next page request.
- mission page: one mission's timeline, memory, audit and budget.
The ratio column is scan time / that row's time, in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aura.core._messages import Start, StepDone, Transition
from aura.engine._place import Place
from aura.operating._inspect import missions as scan_missions
from aura.operating.console._source import ConsoleSource
from benchmarks._report import report
from eventstore import EventStore, NewEvent


def mission_events(i: int) -> list[NewEvent]:
    name = ("bench:plan", "bench:call", "bench:wait")[i % 3]
    status = ("completed", "failed", "waiting")[i % 3]
    start = Start(name, [i], 1_000_000.0 + i)
    done = StepDone(0, f"step {name}#0", True, {"n": i}, "", "", 1, 1_000_000.5 + i)
    end = Transition(status, name=name, steps=1, cost_usd=0.001)
    return [
        NewEvent("message", msgspec.msgpack.encode(start)),
        NewEvent("message", msgspec.msgpack.encode(done)),
        NewEvent("transition", msgspec.msgpack.encode(end)),
    ]


def write_missions(events_dir: Path, n: int) -> None:
    with EventStore.open(events_dir) as log:
        batch = []
        for i in range(n):
            batch.append((f"mission/m{i:07d}", mission_events(i), 0))
            if len(batch) == 1000:
                log.append_many(batch)
                batch = []
        if batch:
            log.append_many(batch)


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def median_time(rounds: int, fn: object) -> float:
    return statistics.median(timed(fn) for _ in range(rounds))


def measure(n: int, rounds: int) -> list[dict[str, object]]:
    root = Path(tempfile.mkdtemp(prefix="aura-console-bench-"))
    data = root / "aura-data"
    try:
        write_missions(data / "events", n)
        place = Place.of(data)
        scan = timed(lambda: scan_missions(place))
        holder: dict[str, ConsoleSource] = {}
        build = timed(lambda: holder.setdefault("s", ConsoleSource(place)))
        source = holder["s"]
        try:
            page = median_time(rounds, lambda: source.missions(limit=50))
            filtered = median_time(
                rounds, lambda: source.missions(status="waiting", name="bench:wait", limit=50)
            )
            last = median_time(rounds, lambda: source.missions(offset=n - 50, limit=50))
            one = median_time(rounds, lambda: source.mission(f"m{n // 2:07d}"))
            source.store.append_many(
                [(f"mission/m{i:07d}", mission_events(i), 0) for i in range(n, n + 100)]
            )
            refresh = timed(lambda: source.missions(limit=50))
            assert source.missions(limit=1)["total"] == n + 100
        finally:
            source.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        ("scan (aura ls), per request", scan),
        ("index build (first open)", build),
        ("page of 50", page),
        ("page, filtered by status + definition", filtered),
        ("last page", last),
        ("refresh +100 missions, then a page", refresh),
        ("one mission's page", one),
    ]
    return [
        {
            "missions": n,
            "what": what,
            "ms": round(seconds * 1000, 2),
            "scan / this": round(scan / seconds, 1) if seconds else None,
        }
        for what, seconds in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rows = [row for n in args.sizes for row in measure(n, args.rounds)]
    notes = [
        "ms: one request (medians of the rounds for pages); scan / this: how many times "
        "faster than summarising every mission's stream, in the same run.",
        "The index costs one pass at open (like one scan), then each request reads only what "
        "was committed since the last.",
    ]
    report("console", rows, notes)


if __name__ == "__main__":
    main()
