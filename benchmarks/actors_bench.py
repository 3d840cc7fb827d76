"""Durable actors against plain pykka and a raw durable LMDB commit, same run.

    python benchmarks/actors_bench.py [--rounds 5] [--asks 1000] [--passive 10000,100000]

Rows:
- raw durable LMDB commit (one put + fsync), the floor of a durable ask;
  it alternates with the durable asks in blocks of 100 (``paired_durable``);
- plain pykka ask round-trip (no persistence), the floor of an actor hop;
- DurableActor ask round-trip (journal + handle + reply), p50/p99 and asks/s;
- N passivated durable actors: RSS added, time to register them, and time for
  one of them to answer its first message (re-activation by replay).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import lmdb
import pykka

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors import ActorSystem, ChildSpec, DurableActor
from benchmarks._report import percentile, report
from eventstore import EventStore


class Counter(DurableActor):
    state_type: ClassVar[Any] = int

    def initial_state(self) -> int:
        return 0

    def handle(self, message: Any) -> Any:
        self.state += 1
        return self.state


class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def paired_durable(n: int, block: int = 100) -> tuple[list[float], list[float], list[float]]:
    """Raw durable commits and durable asks, alternating in blocks of
    ``block`` on two open environments, so that this machine's drifting
    fsync time hits both sides of each block alike.

    Returns (raw latencies, durable ask latencies, per-block p50 ratios).
    """
    d_raw = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    env = lmdb.open(str(d_raw), map_size=1 << 30)
    raw: list[float] = []
    durable: list[float] = []
    ratios: list[float] = []
    key = 0
    try:
        with EventStore.open(d) as store, ActorSystem("bench", store=store) as system:
            system.spawn(ChildSpec("counter", Counter))
            for _ in range(max(1, n // block)):
                r, a = [], []
                for _ in range(block):
                    key += 1
                    t0 = time.perf_counter()
                    with env.begin(write=True) as txn:
                        txn.put(key.to_bytes(8, "big"), b"x" * 16, append=True)
                    r.append(time.perf_counter() - t0)
                for i in range(block):
                    t0 = time.perf_counter()
                    system.ask("counter", i)
                    a.append(time.perf_counter() - t0)
                raw += r
                durable += a
                ratios.append(statistics.median(a) / statistics.median(r))
    finally:
        env.close()
        shutil.rmtree(d_raw)
        shutil.rmtree(d)
    return raw, durable, ratios


def pykka_ask_latencies(n: int) -> list[float]:
    ref = Echo.start()
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            ref.ask(i)
            out.append(time.perf_counter() - t0)
    finally:
        ref.stop()
    return out


def passivated(n: int) -> dict[str, float]:
    d = Path(tempfile.mkdtemp(prefix="aura-bench-"))
    try:
        with EventStore.open(d) as store, ActorSystem("bench", store=store) as system:
            system.spawn(ChildSpec("warm", Counter))
            system.ask("warm", 0)
            gc.collect()
            before = rss_bytes()
            t0 = time.perf_counter()
            system.spawn_many(
                [ChildSpec(f"m/{i}", Counter, passivate_after=60) for i in range(n)],
                activate=False,
            )
            register_s = time.perf_counter() - t0
            gc.collect()
            added = rss_bytes() - before
            threads = system.threads_in_use()
            t0 = time.perf_counter()
            system.ask(f"m/{n // 2}", 1)
            reactivate_s = time.perf_counter() - t0
        return {
            "rss_mb": added / 2**20,
            "bytes_per_actor": added / n,
            "register_s": register_s,
            "reactivate_ms": reactivate_s * 1e3,
            "threads": threads,
        }
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--asks", type=int, default=1000)
    ap.add_argument("--passive", default="10000,100000")
    args = ap.parse_args()

    raw: list[float] = []
    plain: list[float] = []
    durable: list[float] = []
    ratios: list[float] = []
    for _ in range(args.rounds):
        r, d, block_ratios = paired_durable(args.asks)
        raw += r
        durable += d
        ratios += block_ratios
        plain += pykka_ask_latencies(args.asks)

    def row(name: str, xs: list[float]) -> dict[str, Any]:
        return {
            "workload": name,
            "p50 us": percentile(xs, 0.5) * 1e6,
            "p99 us": percentile(xs, 0.99) * 1e6,
            "per s": 1 / statistics.mean(xs),
            "p50 vs raw commit": percentile(xs, 0.5) / percentile(raw, 0.5),
        }

    rows = [
        row("raw durable LMDB commit", raw),
        row("plain pykka ask (not durable)", plain),
        row("DurableActor ask (journal+handle+reply)", durable),
    ]
    passive_rows = []
    for n in (int(x) for x in args.passive.split(",")):
        res = passivated(n)
        passive_rows.append({"actors": n, **res})
        rows.append(
            {
                "workload": f"{n:,} passivated durable actors",
                "p50 us": res["reactivate_ms"] * 1e3,
                "p99 us": float("nan"),
                "per s": n / res["register_s"],
                "p50 vs raw commit": float("nan"),
            }
        )
    q = statistics.quantiles(ratios, n=4)
    notes = [
        f"durable ask p50 / raw commit p50, paired blocks of 100: median "
        f"{statistics.median(ratios):.2f}x (quartiles {q[0]:.2f}-{q[2]:.2f}, "
        f"{len(ratios)} blocks; target <= 1.5)",
        *(
            f"{r['actors']:,} passivated actors: +{r['rss_mb']:.0f} MB RSS "
            f"({r['bytes_per_actor']:.0f} B each), {r['threads']} threads in use, "
            f"registered in {r['register_s']:.2f}s, first reply after re-activation "
            f"{r['reactivate_ms']:.2f} ms (target <= 1 GB for 100,000)"
            for r in passive_rows
        ),
        "passivated rows: 'p50 us' is the re-activation round trip, 'per s' registrations/s",
    ]
    report("actors", rows, notes)


if __name__ == "__main__":
    main()
