"""Three ``aura worker`` processes share one LMDB data directory and run 100
missions of 50 steps, started by a client runtime (in the test process)
that runs none itself. Mid-run the test

1. SIGKILLs worker a (and starts worker d in its place);
2. SIGSTOPs worker b between two commits, past its lease, then SIGCONTs it:
   c and d take its missions, and b's writes after waking are refused;
3. SIGSTOPs worker c while it holds LMDB's writer lock (every writer waits
   on it): the others SIGKILL it once it stayed frozen past the lease.

Every mission finishes with its result, every step result is recorded
exactly once, and no step whose result was journaled runs again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import aura
from eventstore.lmdb._writer_slot import WriterSlot

from . import missions as m
from .processes import ROOT, child_env, recorded_in
from .test_shared_workers import EXPECTED, LEASE, MISSIONS, STEP_SECONDS, STEPS, THREADS, Watch


class Workers:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        self.effects = tmp / "effects.txt"
        self.effects.touch()
        self.logs = tmp
        self.watch = Watch()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        args = ["--data", str(self.data), "worker", "--app", "tests.aura.missions"]
        args += ["--lease", str(LEASE), "--max-workers", str(THREADS), "--log", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "aura.operating._cli", *args],
            stdout=subprocess.PIPE,
            stderr=(self.logs / f"{name}.log").open("wb"),
            cwd=ROOT,
            env=child_env(AURA_TEST_EFFECTS=str(self.effects), AURA_TEST_INCARNATION=name),
        )
        self.procs[name] = proc
        self.watch.follow(name, proc)

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def effect_lines(self) -> list[tuple[str, str]]:
        lines = self.effects.read_text().splitlines()
        return [(key, who) for key, who in (line.split() for line in lines)]

    def state(self) -> str:
        """The writer slot and each worker's process state (for a failure's message)."""
        slot = WriterSlot(str(self.data / "events"))
        try:
            holder = slot.holder()
        finally:
            slot.close()
        states = {}
        for name, proc in self.procs.items():
            try:
                states[name] = (proc.pid, Path(f"/proc/{proc.pid}/stat").read_text().split()[2])
            except OSError:
                states[name] = (proc.pid, "gone")
        return f"slot {holder}, workers {states}"

    def stop_where(self, name: str, *, holding: bool) -> None:
        """SIGSTOP worker ``name`` at a moment it holds the writer lock (or
        does not): stop it, look, and if not, let it go on and try again."""
        slot = WriterSlot(str(self.data / "events"))
        proc = self.procs[name]
        try:
            for _ in range(100_000):
                os.kill(proc.pid, signal.SIGSTOP)
                while _state(proc.pid) not in "Tt":
                    pass  # the signal is delivered asynchronously: look once it has stopped
                if (slot.holder()[0] == proc.pid) == holding:
                    return
                os.kill(proc.pid, signal.SIGCONT)
            raise AssertionError(f"worker {name} never {'held' if holding else 'left'} the lock")
        finally:
            slot.close()


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        for proc in w.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait()


def test_workers_on_one_directory_survive_a_kill_a_pause_and_a_writer_frozen_in_a_commit(
    workers: Workers,
) -> None:
    watch = workers.watch
    for name in "abc":
        workers.start(name)
    watch.until("all three workers serve", lambda: watch.serving == set("abc"), timeout=60)
    client = aura.Runtime(
        workers.data,
        missions=[m.paced_steps],
        shared=True,
        max_missions=0,  # it starts and watches missions; the workers run them
        lease_ttl=LEASE,
        heartbeat=LEASE / 5,
    )

    def snapshot() -> tuple[set[str], int]:
        journaled = set(recorded_in(client.store))
        return journaled, len(workers.effect_lines())

    with client:
        for i in range(MISSIONS):
            client.start(m.paced_steps, STEPS, STEP_SECONDS, mission_id=f"m-{i}")
        watch.until("every worker ran steps", lambda: all(watch.count(w) >= 20 for w in "abc"))

        # 1. SIGKILL a: the others take its missions once its leases run out.
        workers.procs["a"].kill()
        workers.procs["a"].wait()
        after_kill = snapshot()
        workers.start("d")
        mark = watch.count()
        orphans = watch.missions_of("a")
        watch.until(
            "a's missions run elsewhere",
            lambda: bool(orphans & {x for w in "bcd" for x in watch.missions_of(w, mark)}),
        )

        # 2. SIGSTOP b between commits, past its lease: the others take its missions.
        pause = watch.count()
        workers.stop_where("b", holding=False)
        after_pause = snapshot()
        paused = watch.missions_of("b") - watch.missions_of("c") - watch.missions_of("d")
        assert paused, "b had missions of its own when it was paused"
        watch.until(
            "c or d runs b's missions",
            lambda: bool(paused & (watch.missions_of("c", pause) | watch.missions_of("d", pause))),
        )
        workers.procs["b"].send_signal(signal.SIGCONT)

        # 3. SIGSTOP c inside a commit: it holds LMDB's writer lock, every writer waits.
        mark = watch.count()
        workers.stop_where("c", holding=True)
        try:
            code = workers.procs["c"].wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the frozen writer was not fenced off: {workers.state()}"
            ) from None
        assert code == -signal.SIGKILL  # nobody but a survivor's watch kills it
        after_freeze = snapshot()
        watch.until("work goes on after the frozen writer", lambda: watch.count(since=mark) >= 50)

        results = {f"m-{i}": client.handle(f"m-{i}").result(timeout=300) for i in range(MISSIONS)}
        assert results == {f"m-{i}": EXPECTED for i in range(MISSIONS)}
        recorded = recorded_in(client.store)

    every_key = {f"m-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}
    assert set(recorded) == every_key
    assert {k for k, n in recorded.items() if n != 1} == set()  # each result exactly once
    effects = workers.effect_lines()
    assert {key for key, _ in effects} == every_key
    for moment, (journaled, seen) in {
        "the kill": after_kill,
        "the pause": after_pause,
        "the frozen writer": after_freeze,
    }.items():
        again = [(key, who) for key, who in effects[seen:] if key in journaled]
        assert again == [], f"journaled steps ran again after {moment}"
    assert "runtime.missions_lost" in workers.log_of("b")  # woke to find its missions taken
    for name in "bd":  # the survivors stop cleanly
        proc = workers.procs[name]
        assert proc.poll() is None, f"worker {name} exited: {workers.log_of(name)[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, workers.log_of(name)[-2000:]
