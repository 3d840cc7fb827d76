"""Queue throughput with a concurrency limit: aura beside DBOS queues on SQLite.

    python benchmarks/queues_bench.py [--missions 500] [--concurrency 4] [--rounds 3]

Rows, in the same run, each from a fresh data directory / database, all
durable: N one-step missions (DBOS: workflows)
- aura, ``rt.enqueue`` on a ``Queue(concurrency=C)``, then every result;
- aura, ``rt.start`` each, no queue (the baseline: what the queue costs);
- DBOS, ``DBOS.register_queue(global_concurrency=C).enqueue``, then every result, with the
  queue polled every 10 ms (its default is 1 s, which caps a queue of
  concurrency C at C starts a second; 10 ms is its best case here);
- DBOS, ``DBOS.start_workflow`` each, no queue.
aura's queue row also checks its log: never more than C slots taken.
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
def work(i: int) -> int:
    return i


@aura.mission(name="bench-queued")
async def queued(ctx: aura.MissionContext, i: int) -> int:
    return int(await ctx.step(work, i))


def aura_run(n: int, concurrency: int, with_queue: bool) -> float:
    root = Path(tempfile.mkdtemp(prefix="aura-queue-bench-"))
    q = aura.Queue("bench", concurrency=concurrency)
    try:
        with aura.Runtime(root / "data", missions=[queued], queues=[q]) as rt:
            t0 = time.perf_counter()
            if with_queue:
                handles = [rt.enqueue(q, queued, i) for i in range(n)]
            else:
                handles = [rt.start(queued, i) for i in range(n)]
            assert [h.result(timeout=600) for h in handles] == list(range(n))
            seconds = time.perf_counter() - t0
            if with_queue:
                from tests.aura.queue_log import check_queue_log

                check_queue_log(rt.store, "bench", concurrency)  # the limit held
        return seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def dbos_runs(n: int, concurrency: int, rounds: int) -> tuple[float, float]:
    from dbos import DBOS

    @DBOS.step()
    def dbos_work(i: int) -> int:
        return i

    @DBOS.workflow()
    def dbos_queued(i: int) -> int:
        return int(dbos_work(i))

    def one(with_queue: bool) -> float:
        d = Path(tempfile.mkdtemp(prefix="dbos-queue-bench-"))
        DBOS(
            config={
                "name": "aura-queue-bench",
                "system_database_url": f"sqlite:///{d}/dbos.sqlite",
                "run_admin_server": False,
                "log_level": "WARNING",
            }
        )
        DBOS.launch()
        queue = DBOS.register_queue(
            "bench", global_concurrency=concurrency, polling_interval_sec=0.01
        )
        try:
            t0 = time.perf_counter()
            if with_queue:
                handles = [queue.enqueue(dbos_queued, i) for i in range(n)]
            else:
                handles = [DBOS.start_workflow(dbos_queued, i) for i in range(n)]
            assert [h.get_result() for h in handles] == list(range(n))
            return time.perf_counter() - t0
        finally:
            DBOS.destroy(destroy_registry=False)
            shutil.rmtree(d, ignore_errors=True)

    queued_s = statistics.median(one(True) for _ in range(rounds))
    started_s = statistics.median(one(False) for _ in range(rounds))
    return queued_s, started_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--missions", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, c, r = args.missions, args.concurrency, args.rounds
    aura_queue = statistics.median(aura_run(n, c, True) for _ in range(r))
    aura_start = statistics.median(aura_run(n, c, False) for _ in range(r))
    dbos_queue, dbos_start = dbos_runs(n, c, r)
    rows = [
        ("aura: rt.enqueue on Queue(concurrency)", aura_queue),
        ("aura: rt.start each (no queue)", aura_start),
        (
            "DBOS (SQLite): register_queue(global_concurrency).enqueue, polled every 10 ms",
            dbos_queue,
        ),
        ("DBOS (SQLite): start_workflow each (no queue)", dbos_start),
    ]
    table = [
        {
            "what": what,
            "missions": n,
            "concurrency": c,
            "seconds": round(seconds, 3),
            "missions/s": round(n / seconds),
            "time / aura queue": round(seconds / aura_queue, 2),
        }
        for what, seconds in rows
    ]
    notes = [
        f"median of {r} rounds, fresh data each; one-step missions, durable commits.",
        "time / aura queue > 1: the row took that many times longer than aura's queue.",
        "aura's queue rows are checked against its log: never more than C slots taken.",
    ]
    report("queues", table, notes)


if __name__ == "__main__":
    main()
