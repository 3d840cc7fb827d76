"""Real crashes: a runtime in a child process is SIGKILLed at random moments
while missions run, then restarted on the same data directory. Every mission
must finish with the crash-free result, and no step whose result was already
journaled may run again (its side effect is recorded with its key)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aura import verify_audit
from aura.core._messages import MissionMessage, StepDone
from eventstore import EventStore

CHILD = Path(__file__).parent / "children" / "mission_node.py"
ROOT = Path(__file__).resolve().parent.parent.parent
KILLS = int(os.environ.get("AURA_CRASH_KILLS", "8"))
MISSIONS, STEPS = 6, 25


def journaled_keys(data: Path) -> set[str]:
    keys = set()
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    with EventStore.open(data / "events") as store:
        for stream in store.streams():
            if not stream.startswith("mission/"):
                continue
            mission_id = stream.split("/", 1)[1]
            for event in store.read(stream):
                if event.kind == "message":
                    msg = decoder.decode(event.data)
                    if isinstance(msg, StepDone) and msg.ok:
                        keys.add(f"{mission_id}/{msg.run or 1}/{msg.seq}")
    return keys


def child_outcomes(data: Path, mission_id: str) -> list[int]:
    """The seqs of the outcomes journaled in ``mission_id``'s log, in order."""
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    with EventStore.open(data / "events", readonly=True) as store:
        messages = [
            decoder.decode(e.data)
            for e in store.read(f"mission/{mission_id}")
            if e.kind == "message"
        ]
    return sorted(m.seq for m in messages if isinstance(m, StepDone))


def run_child(
    data: Path, effects: Path, incarnation: int, mission: str = "many_steps"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AURA_TEST_EFFECTS": str(effects),
        "AURA_TEST_INCARNATION": str(incarnation),
    }
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(data), str(MISSIONS), str(STEPS), mission],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def published(data: Path, mission_id: str) -> list[tuple[str, Any]]:
    from aura.governance._memory import MEMORY, decode_write

    with EventStore.open(data / "events", readonly=True) as store:
        writes = [
            decode_write(e.data) for e in store.read(f"mission/{mission_id}") if e.kind == MEMORY
        ]
    return [(w.key, w.value) for w in writes if w.event or w.patch]


@pytest.mark.parametrize(
    "mission", ["many_steps", "many_steps_can", "many_steps_published", "many_children"]
)
def test_sigkill_mid_mission_loses_nothing_and_reruns_nothing_journaled(
    tmp_path: Path, mission: str
) -> None:
    """``many_steps_can`` continues as new every few steps: kills land across
    run boundaries (before, during and after a new run is journaled).
    ``many_children`` fans each mission out to five child missions: kills
    land between a child's start and its parent hearing of it, and between
    a child's end and its outcome journaled in the parent."""
    rng = random.Random(int(os.environ.get("AURA_CRASH_SEED", "11")))
    data, effects = tmp_path / "data", tmp_path / "effects.txt"
    journaled_before: dict[int, set[str]] = {}
    for incarnation in range(KILLS):
        journaled_before[incarnation] = journaled_keys(data) if data.exists() else set()
        proc = run_child(data, effects, incarnation, mission)
        assert proc.stdout is not None
        # Let it do a random number of new side effects, then kill it.
        wanted = rng.randrange(1, 15)
        while wanted > 0:
            line = proc.stdout.readline()
            if not line:
                break  # it finished everything (or died) before the kill
            if line.startswith(b"EFFECT"):
                wanted -= 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    journaled_before[KILLS] = journaled_keys(data)
    final = run_child(data, effects, KILLS, mission)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    results = {
        parts[1]: int(parts[2])
        for parts in (line.split() for line in out.decode().splitlines())
        if parts and parts[0] == "RESULT"
    }
    expected = sum(i * i for i in range(STEPS))
    assert results == {f"m-{i}": expected for i in range(MISSIONS)}
    runs: dict[str, list[int]] = defaultdict(list)
    for line in effects.read_text().splitlines():
        key, incarnation = line.split()
        runs[key].append(int(incarnation))
    if mission == "many_steps_published":  # each event and the patch marker journaled once
        for i in range(MISSIONS):
            expected_writes = [("publish-progress", None)] + [("progress", s) for s in range(STEPS)]
            assert published(data, f"m-{i}") == expected_writes
    if mission in ("many_steps", "many_steps_published"):
        assert set(runs) == {f"m-{i}/1/{s}" for i in range(MISSIONS) for s in range(STEPS)}
    elif mission == "many_children":  # the children ran the steps, each once
        cut = [STEPS * k // 5 for k in range(6)]
        assert set(runs) == {
            f"m-{i}.1.{k}/1/{s}"
            for i in range(MISSIONS)
            for k in range(5)
            for s in range(cut[k + 1] - cut[k])
        }
        for i in range(MISSIONS):  # and each parent journaled each child's outcome once
            assert child_outcomes(data, f"m-{i}") == list(range(5))
    else:  # every mission went through several runs, each run's steps keyed by run
        assert {key.split("/")[1] for key in runs} > {"1", "2"}
    for key, incarnations in runs.items():
        for inc in incarnations:
            assert key not in journaled_before[inc], (
                f"step {key} ran again in incarnation {inc} after its result was journaled"
            )
    # Every journaled event kept its audit entry (same commit) and the chain holds.
    with EventStore.open(data / "events", readonly=True) as store:
        report = verify_audit(store)
    assert report.ok, report
    assert report.entries > MISSIONS * STEPS
    # The kills really interrupted work: the last run still had missions to resume.
    assert len(journaled_before[KILLS]) < MISSIONS * STEPS
