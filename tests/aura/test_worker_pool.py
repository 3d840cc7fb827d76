"""`aura worker --processes N`: one parent, N shared workers on one data
directory; a worker SIGKILLed mid-run is started again and the missions
finish, each step result recorded once; SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aura

from . import missions as m
from .processes import ROOT, child_env, recorded_in

MISSIONS, STEPS = 20, 20
ARGS = ["--processes", "2", "--app", "tests.aura.missions", "--lease", "2", "--log", "off"]


def test_a_parent_runs_workers_and_starts_a_killed_one_again(tmp_path: Path) -> None:
    data, effects = tmp_path / "data", tmp_path / "effects.txt"
    effects.touch()
    parent = subprocess.Popen(
        [sys.executable, "-m", "aura.operating._cli", "--data", str(data), "worker", *ARGS],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(AURA_TEST_EFFECTS=str(effects)),
    )
    lines: list[str] = []
    seen = threading.Condition()

    def read() -> None:
        assert parent.stdout is not None
        for raw in parent.stdout:
            with seen:
                lines.append(raw.decode().strip())
                seen.notify_all()

    threading.Thread(target=read, daemon=True).start()

    def until(predicate: object, what: str) -> None:
        with seen:
            assert seen.wait_for(predicate, 120), f"timed out waiting for {what}: {lines}"  # type: ignore[arg-type]

    def count(prefix: str) -> int:
        return sum(1 for line in lines if line.startswith(prefix))

    try:
        until(lambda: count("serving ") == 2, "two workers serving")
        pids = {int(p) for p in re.findall(r"worker \d started \(pid (\d+)\)", "\n".join(lines))}
        assert len(pids) == 2
        with aura.Runtime(
            data, missions=[m.paced_steps], shared=True, max_missions=0, lease_ttl=2, heartbeat=0.4
        ) as client:
            for i in range(MISSIONS):
                client.start(m.paced_steps, STEPS, 0.02, mission_id=f"p-{i}")
            until(lambda: count("EFFECT ") >= 40, "steps running")
            os.kill(min(pids), signal.SIGKILL)
            until(lambda: any("exited with signal SIGKILL" in x for x in lines), "the exit seen")
            until(lambda: count("serving ") == 3, "the killed worker started again")
            results = [client.handle(f"p-{i}").result(timeout=300) for i in range(MISSIONS)]
            assert results == [sum(i * i for i in range(STEPS))] * MISSIONS
            recorded = recorded_in(client.store)
        assert set(recorded) == {f"p-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}
        assert set(recorded.values()) == {1}  # each step result exactly once
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        until(lambda: any(x.startswith("stopped 2 worker processes") for x in lines), "the stop")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
