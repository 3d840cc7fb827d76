"""aura on PostgreSQL beside DBOS on the same PostgreSQL server, same run.

    pip install -e '.[bench]' && python benchmarks/postgres_bench.py [--rounds 3]

A throw-away PostgreSQL (``aura.testing.PostgresServer``, fsync on, unix
socket) unless ``AURA_BENCH_PG_DSN`` names a server. Rows (steps/s, median
of ``--rounds`` interleaved rounds, min-max beside it):
- raw PostgreSQL: one autocommit INSERT per step, one client (the physical
  floor of a step made durable alone);
- one mission of ``--steps`` sequential no-op steps: aura on PostgreSQL,
  DBOS on PostgreSQL, and aura on LMDB (this machine's embedded default);
- 100 missions x 100 steps started together in one process: aura on
  PostgreSQL, DBOS on PostgreSQL (total steps/s);
- 100 missions x 100 steps started by a client runtime (``max_missions=0``)
  and run by 1 and by 3 ``aura worker`` processes sharing the store;
- takeover: a runtime process is SIGKILLed; seconds until a standby on the
  same store owns it (exclusive), and until another shared worker holds
  every lease of the dead one's 50 waiting missions (its lease is
  ``--lease`` seconds; target lease + 1 s).
Prints a table and writes results/postgres.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

import aura
from aura.testing import PostgresServer
from benchmarks._report import report

ROOT = Path(__file__).resolve().parent.parent


@aura.step(name="pgb:noop")
def noop(i: int) -> int:
    return i


@aura.mission(name="pgb:sequential")
async def sequential(ctx: aura.MissionContext, n: int) -> int:
    for i in range(n):
        await ctx.step(noop, i)
    return n


@aura.mission(name="pgb:waiter")
async def waiter(ctx: aura.MissionContext) -> Any:
    await ctx.step(noop, 0)
    return await ctx.wait_signal("go")


def fresh() -> str:
    return f"b_{uuid.uuid4().hex[:10]}"


def raw_inserts(url: str, n: int) -> float:
    table = fresh()  # a logged table: each INSERT commits and flushes the WAL
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (seq bigint PRIMARY KEY, result bytea)")
        try:
            gc.collect()
            t0 = time.perf_counter()
            for i in range(n):
                conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", [i, b"\x01"])
            return n / (time.perf_counter() - t0)
        finally:
            conn.execute(f"DROP TABLE {table}")


def aura_one(where: dict[str, Any], n: int) -> float:
    with aura.Runtime(**where, missions=[sequential, waiter]) as rt:
        gc.collect()
        t0 = time.perf_counter()
        rt.start(sequential, n, mission_id="one").result(timeout=600)
        return n / (time.perf_counter() - t0)


def aura_many(where: dict[str, Any], missions: int, steps: int) -> float:
    with aura.Runtime(**where, missions=[sequential, waiter], max_workers=32) as rt:
        gc.collect()
        t0 = time.perf_counter()
        handles = [rt.start(sequential, steps, mission_id=f"m{i}") for i in range(missions)]
        for h in handles:
            h.result(timeout=600)
        return missions * steps / (time.perf_counter() - t0)


class Dbos:
    """DBOS on the same server, a fresh database each measurement."""

    def __init__(self, admin_url: str) -> None:
        from dbos import DBOS

        self.DBOS = DBOS
        self.admin_url = admin_url

        @DBOS.step()
        def dnoop(i: int) -> int:
            return i

        @DBOS.workflow()
        def dsequential(n: int) -> int:
            for i in range(n):
                dnoop(i)
            return n

        self.sequential = dsequential

    def _run(self, fn: Callable[[], float]) -> float:
        name = fresh()
        host = psycopg.conninfo.conninfo_to_dict(self.admin_url).get("host", "")
        url = f"postgresql://aura@/{name}?host={host}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self.DBOS(
            config={
                "name": "aura-pg-bench",
                "system_database_url": url,
                "run_admin_server": False,
                "log_level": "WARNING",
            }
        )
        self.DBOS.launch()
        try:
            gc.collect()
            return fn()
        finally:
            self.DBOS.destroy(destroy_registry=False)
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def one(self, n: int) -> float:
        def go() -> float:
            t0 = time.perf_counter()
            self.sequential(n)
            return n / (time.perf_counter() - t0)

        return self._run(go)

    def many(self, missions: int, steps: int) -> float:
        def go() -> float:
            t0 = time.perf_counter()
            handles = [self.DBOS.start_workflow(self.sequential, steps) for _ in range(missions)]
            for h in handles:
                h.get_result()
            return missions * steps / (time.perf_counter() - t0)

        return self._run(go)


TAKEOVER_CHILD = """
import sys, time
import aura
sys.path.insert(0, {root!r})
from benchmarks.postgres_bench import sequential, waiter
rt = aura.Runtime(store={url!r}, schema={schema!r}, missions=[sequential, waiter],
                  lease_ttl={lease}, heartbeat={lease} / 5, standby={standby})
print("OWNER", time.time(), flush=True)
time.sleep(3600)
"""


def takeover(url: str, lease: float) -> float:
    """Seconds from SIGKILL of the owner until a waiting standby owns the store."""
    schema = fresh()

    def child(standby: bool) -> subprocess.Popen[str]:
        code = TAKEOVER_CHILD.format(
            root=str(ROOT), url=url, schema=schema, lease=lease, standby=standby
        )
        return subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    owner = child(False)
    standby = None
    try:
        assert owner.stdout is not None and owner.stdout.readline().startswith("OWNER")
        standby = child(True)
        time.sleep(1.0)  # let the standby start and begin waiting (not measured)
        killed = time.time()
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert standby.stdout is not None
        line = standby.stdout.readline()
        return float(line.split()[1]) - killed
    finally:
        for p in (owner, standby):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


class Workers:
    """``aura worker`` processes sharing one store (``--app`` this module)."""

    def __init__(self, url: str, schema: str, lease: float, max_workers: int = 32) -> None:
        self.url, self.schema, self.lease = url, schema, lease
        self.max_workers = max_workers
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, count: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        args = ["--store", self.url, "--schema", self.schema, "worker"]
        args += ["--app", "benchmarks.postgres_bench", "--lease", str(self.lease)]
        args += ["--max-workers", str(self.max_workers), "--log", "off"]
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "aura.operating._cli", *args],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=env,
            )
            for _ in range(count)
        ]
        for proc in started:  # each prints "serving ..." once it is up
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("serving"), line
        self.procs += started

    def client(self) -> aura.Runtime:
        """A runtime that starts and watches missions and runs none."""
        return aura.Runtime(
            store=self.url,
            schema=self.schema,
            missions=[sequential, waiter],
            shared=True,
            max_missions=0,
            lease_ttl=self.lease,
            heartbeat=self.lease / 5,
        )

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def workers_many(url: str, processes: int, missions: int, steps: int) -> float:
    """Steps/s of ``missions`` x ``steps`` started by a client and run by
    ``processes`` worker processes (first start to last result)."""
    workers = Workers(url, fresh(), lease=10.0)
    try:
        workers.start(processes)
        with workers.client() as client:
            t0 = time.perf_counter()
            for i in range(missions):
                client.start(sequential, steps, mission_id=f"m{i}")
            for i in range(missions):
                client.handle(f"m{i}").result(timeout=600)
            return missions * steps / (time.perf_counter() - t0)
    finally:
        workers.close()


def shared_takeover(url: str, lease: float, missions: int = 50) -> float:
    """Seconds from SIGKILL of a shared worker until another worker holds
    every one of its (waiting) missions' leases."""
    workers = Workers(url, fresh(), lease)
    try:
        workers.start(1)
        with workers.client() as client:
            for i in range(missions):
                client.start(waiter, mission_id=f"w{i}")
            for i in range(missions):
                client.wait(f"w{i}", 120, until={aura.MissionStatus.WAITING})
            store = client.store
            first = {x.owner for x in store.leases("mission/")}
            workers.start(1)
            killed = time.perf_counter()
            workers.procs[0].kill()
            workers.procs[0].wait()
            while True:  # a benchmark may poll: what it measures is the wait
                held = store.leases("mission/")
                if len(held) == missions and not {x.owner for x in held} & first:
                    taken = time.perf_counter() - killed
                    break
                time.sleep(0.01)
            client.signal("w0", "go", "done")  # the new owner runs them
            assert client.handle("w0").result(timeout=60) == "done"
            return taken
    finally:
        workers.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    server = None
    url = os.environ.get("AURA_BENCH_PG_DSN")
    if not url:
        server = PostgresServer.start(fsync=True)
        url = server.url
    try:
        dbos = Dbos(url)
        lmdb_dir = Path(tempfile.mkdtemp(prefix="aura-pgb-"))
        samples: dict[str, list[float]] = {}
        work: list[tuple[str, Callable[[], float]]] = [
            ("raw PostgreSQL: 1 autocommit INSERT per step", lambda: raw_inserts(url, args.steps)),
            (
                f"aura on PostgreSQL: 1 mission x {args.steps} steps",
                lambda: aura_one({"store": url, "schema": fresh()}, args.steps),
            ),
            (f"DBOS on PostgreSQL: 1 workflow x {args.steps} steps", lambda: dbos.one(args.steps)),
            (
                f"aura on LMDB: 1 mission x {args.steps} steps",
                lambda: aura_one({"path": Path(tempfile.mkdtemp(dir=lmdb_dir))}, args.steps),
            ),
            (
                "aura on PostgreSQL: 100 missions x 100 steps",
                lambda: aura_many({"store": url, "schema": fresh()}, 100, 100),
            ),
            ("DBOS on PostgreSQL: 100 workflows x 100 steps", lambda: dbos.many(100, 100)),
        ]
        for _ in range(args.rounds):  # interleaved: noise hits every row alike
            for name, fn in work:
                samples.setdefault(name, []).append(fn())
        rows = [
            {
                "workload": name,
                "steps/s": statistics.median(v),
                "min-max": f"{min(v):,.0f}-{max(v):,.0f}",
            }
            for name, v in samples.items()
        ]
        med = {r["workload"]: r["steps/s"] for r in rows}
        one_pg = med[f"aura on PostgreSQL: 1 mission x {args.steps} steps"]
        one_dbos = med[f"DBOS on PostgreSQL: 1 workflow x {args.steps} steps"]
        many_pg = med["aura on PostgreSQL: 100 missions x 100 steps"]
        many_dbos = med["DBOS on PostgreSQL: 100 workflows x 100 steps"]
        for processes in (1, 3):
            name = f"aura workers: 100 missions x 100 steps on {processes} worker process(es)"
            runs = [workers_many(url, processes, 100, 100) for _ in range(args.rounds)]
            rows.append(
                {
                    "workload": name,
                    "steps/s": statistics.median(runs),
                    "min-max": f"{min(runs):,.0f}-{max(runs):,.0f}",
                }
            )
        for label, measure in (
            ("exclusive standby", takeover),
            ("shared workers, 50 waiting missions", shared_takeover),
        ):
            taken = [measure(url, args.lease) for _ in range(args.rounds)]
            rows.append(
                {
                    "workload": f"takeover after SIGKILL, {label}, lease {args.lease:g} s "
                    "(seconds)",
                    "steps/s": statistics.median(taken),
                    "min-max": f"{min(taken):.2f}-{max(taken):.2f}",
                }
            )
        notes = [
            f"aura/DBOS, one mission: {one_pg / one_dbos:.1f}x; 100 x 100: "
            f"{many_pg / many_dbos:.1f}x (same server, same run)",
            "server: PostgreSQL "
            + (
                (os.environ.get("AURA_BENCH_PG_DSN") and "from AURA_BENCH_PG_DSN")
                or "15, local, fsync on, unix socket"
            ),
        ]
        report("postgres", rows, notes)
    finally:
        if server is not None:
            server.remove()


if __name__ == "__main__":
    main()
