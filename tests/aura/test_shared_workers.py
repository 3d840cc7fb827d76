"""Three ``aura worker`` processes share one PostgreSQL store and run 100
missions of 50 steps, started by a client runtime that runs none itself.
Mid-run the test SIGKILLs one worker, SIGSTOPs another past its lease (then
SIGCONTs it), ends every database session server-side and restarts the
server. Every mission finishes with its result and none is failed, every
step result is recorded exactly once, no step whose result was journaled
runs again, and the paused worker's writes after waking are refused.

Takeover times are measured in ``benchmarks/postgres_bench.py``, not
asserted here (this machine is shared and noisy).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import aura
from aura.testing import PostgresServer
from eventstore import EventStore

from . import missions as m
from .processes import ROOT, child_env, recorded_in

LEASE = 2.0
MISSIONS, STEPS, STEP_SECONDS = 100, 50, 0.02
THREADS = 4  # step threads per worker
EXPECTED = sum(i * i for i in range(STEPS))


class Watch:
    """What the workers print, as it arrives: one reader thread per worker
    wakes the test whenever a line comes (no polling, no sleeping)."""

    def __init__(self) -> None:
        self.diagnose: Callable[[], str] = lambda: ""
        self.cond = threading.Condition()
        self.effects: list[tuple[str, str]] = []  # (worker, step key), in arrival order
        self.serving: set[str] = set()

    def follow(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        threading.Thread(target=self._read, args=(name, proc), daemon=True).start()

    def _read(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode().strip()
            with self.cond:
                if line.startswith("EFFECT "):
                    self.effects.append((name, line.split()[1]))
                elif line.startswith("serving "):
                    self.serving.add(name)
                self.cond.notify_all()

    def until(self, what: str, predicate: Callable[[], bool], timeout: float = 180) -> None:
        with self.cond:
            ok = self.cond.wait_for(predicate, timeout)
            seen = len(self.effects)
        assert ok, f"timed out waiting until {what} ({seen} effects seen)\n{self.diagnose()}"

    def count(self, worker: str | None = None, since: int = 0) -> int:
        return sum(1 for w, _ in self.effects[since:] if worker in (None, w))

    def missions_of(self, worker: str, since: int = 0) -> set[str]:
        return {key.split("/")[0] for w, key in self.effects[since:] if w == worker}


class Cluster:
    def __init__(self, server: PostgresServer, tmp: Path) -> None:
        self.server = server
        self.schema = "shared_workers"
        self.effects = tmp / "effects.txt"
        self.effects.touch()
        self.logs = tmp
        self.watch = Watch()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def start_worker(self, name: str) -> None:
        args = ["--store", self.server.url, "--schema", self.schema, "worker"]
        args += ["--app", "tests.aura.missions", "--lease", str(LEASE)]
        args += ["--max-workers", str(THREADS), "--log", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "aura.operating._cli", *args],
            stdout=subprocess.PIPE,
            stderr=(self.logs / f"{name}.log").open("wb"),
            cwd=ROOT,
            env=child_env(AURA_TEST_EFFECTS=str(self.effects), AURA_TEST_INCARNATION=name),
        )
        self.workers[name] = proc
        self.watch.follow(name, proc)

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def snapshot(self) -> tuple[set[str], int]:
        """The step results journaled now, then how many effects ran so far:
        an effect past that count whose key is in the set ran a journaled step again."""
        with EventStore.open(self.server.url, schema=self.schema, readonly=True) as store:
            journaled = set(recorded_in(store))
        return journaled, len(self.effect_lines())

    def effect_lines(self) -> list[tuple[str, str]]:
        lines = self.effects.read_text().splitlines()
        return [(key, who) for key, who in (line.split() for line in lines)]

    def sessions(self) -> str:
        """What every database session is doing (for a failure's message)."""
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT application_name, state, wait_event_type, wait_event, "
                "pg_blocking_pids(pid), left(query, 160) FROM pg_stat_activity "
                "WHERE application_name LIKE 'aura-%'"
            ).fetchall()
        return "\n".join(" | ".join(map(str, r)) for r in rows)

    def end_every_session(self) -> int:
        with psycopg.connect(self.server.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'aura-%'"
            ).fetchall()
        return len(rows)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    server = PostgresServer.start()  # this test's own: it restarts it
    c = Cluster(server, tmp_path)
    c.watch.diagnose = c.sessions
    try:
        yield c
    finally:
        for proc in c.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait()
        server.remove()


def test_three_workers_survive_a_kill_a_pause_and_a_database_restart(cluster: Cluster) -> None:
    watch = cluster.watch
    for name in "abc":
        cluster.start_worker(name)
    watch.until("all three workers serve", lambda: watch.serving == set("abc"), timeout=60)
    client = aura.Runtime(
        store=cluster.server.url,
        schema=cluster.schema,
        missions=[m.paced_steps],
        shared=True,
        max_missions=0,  # it starts and watches missions; the workers run them
        lease_ttl=LEASE,
        heartbeat=LEASE / 5,
    )
    with client:
        for i in range(MISSIONS):
            client.start(m.paced_steps, STEPS, STEP_SECONDS, mission_id=f"m-{i}")
        watch.until("every worker ran steps", lambda: all(watch.count(w) >= 20 for w in "abc"))

        # 1. SIGKILL worker a: b and c take its missions over once its leases run out.
        cluster.workers["a"].kill()
        cluster.workers["a"].wait()
        after_kill = cluster.snapshot()
        mark = watch.count()
        orphans = watch.missions_of("a")
        watch.until(
            "a's missions run elsewhere",
            lambda: bool(orphans & (watch.missions_of("b", mark) | watch.missions_of("c", mark))),
        )

        # 2. SIGSTOP worker b past its lease: c takes its missions; b wakes refused.
        pause = watch.count()
        cluster.workers["b"].send_signal(signal.SIGSTOP)
        after_pause = cluster.snapshot()
        paused_missions = watch.missions_of("b") - watch.missions_of("c", 0)
        assert paused_missions, "b had missions of its own when it was paused"
        watch.until(
            "c runs b's missions",
            lambda: bool(paused_missions & watch.missions_of("c", pause)),
        )
        cluster.workers["b"].send_signal(signal.SIGCONT)

        # 3. Every session ended server-side, then the server restarted.
        assert cluster.end_every_session() > 0
        mark = watch.count()
        watch.until("work goes on after the sessions ended", lambda: watch.count(since=mark) >= 50)
        cluster.server.restart()
        after_restart = cluster.snapshot()
        mark = watch.count()
        watch.until("work goes on after the restart", lambda: watch.count(since=mark) >= 50)

        results = {f"m-{i}": client.handle(f"m-{i}").result(timeout=300) for i in range(MISSIONS)}
        assert results == {f"m-{i}": EXPECTED for i in range(MISSIONS)}
        assert all(
            client.get(f"m-{i}").status is aura.MissionStatus.COMPLETED for i in range(MISSIONS)
        )

    every_key = {f"m-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}
    with EventStore.open(cluster.server.url, schema=cluster.schema, readonly=True) as store:
        recorded = recorded_in(store)
    assert set(recorded) == every_key
    assert {k for k, n in recorded.items() if n != 1} == set()  # each result exactly once

    effects = cluster.effect_lines()
    assert {key for key, _ in effects} == every_key
    for moment, (journaled, seen) in {
        "the kill": after_kill,
        "the pause": after_pause,
        "the restart": after_restart,
    }.items():
        again = [(key, who) for key, who in effects[seen:] if key in journaled]
        assert again == [], f"journaled steps ran again after {moment}"
    # The paused worker woke to find its missions taken: its writes were refused.
    assert "runtime.missions_lost" in cluster.log_of("b")
    for name in "bc":  # the survivors reconnected and stop cleanly
        proc = cluster.workers[name]
        assert proc.poll() is None, f"worker {name} exited: {cluster.log_of(name)[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, cluster.log_of(name)[-2000:]
