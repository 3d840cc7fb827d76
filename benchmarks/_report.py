"""Shared output for benchmark scripts: a printed table and a JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def median_of(rounds: int, fn: Callable[[], float]) -> float:
    """Run ``fn`` (which returns a rate) ``rounds`` times; return the median."""
    return statistics.median(fn() for _ in range(rounds))


def time_threads(threads: int, work: Callable[[int], None]) -> float:
    """Start ``threads`` threads running ``work(index)`` together; return the
    seconds from their common start until the last one finished."""
    barrier = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        barrier.wait()
        work(index)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for th in pool:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in pool:
        th.join()
    return time.perf_counter() - t0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, rows: list[dict[str, Any]], notes: list[str]) -> Path:
    """Print ``rows`` as a table and write them with machine facts to JSON."""
    columns = list(rows[0])
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(_fmt(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for note in notes:
        print(note)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": name,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "rows": rows,
                "notes": notes,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    return str(v)
