"""Hypothesis: crashes injected at the mission actor's journal points (before
and after each append, during recovery) never change a mission's outcome,
and every step result is recorded exactly once."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aura
from actors import CrashAt, FaultInjector
from aura.core._messages import MissionMessage, StepDone
from aura.engine._runtime import MISSION_MAX_RESTARTS
from eventstore import EventStore

from . import missions as m

POINTS = st.sampled_from(["before_append", "after_append", "during_recovery"])


def recorded_steps(data: Path, mission_id: str) -> Counter[int]:
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    seen: Counter[int] = Counter()
    with EventStore.open(data / "events") as store:
        for e in store.read(f"mission/{mission_id}"):
            if e.kind == "message":
                msg = decoder.decode(e.data)
                if isinstance(msg, StepDone):
                    seen[msg.seq] += 1
    return seen


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 6),
    schedule=st.sets(st.tuples(POINTS, st.integers(1, 25)), max_size=5),
)
def test_injected_crashes_do_not_change_the_outcome(n: int, schedule: set[tuple[str, int]]) -> None:
    data = Path(tempfile.mkdtemp(prefix="aura-inject-"))
    try:
        faults = FaultInjector(CrashAt(schedule))
        with aura.Runtime(data, missions=[m.arithmetic], faults=faults) as rt:
            result = rt.start(m.arithmetic, n, mission_id="h").result(timeout=60)
        total = sum(range(n))
        assert result == {"total": total, "doubled": [2 * total, 2, 4], "key_of": "h"}, (
            f"crashes: {faults.crashes}"
        )
        seen = recorded_steps(data, "h")
        # Every step's result is in the log; a re-delivered duplicate may be
        # journaled but only the first counts, and replay agrees.
        assert set(seen) == set(range(n + 3))
        with aura.Runtime(data, missions=[m.arithmetic]) as rt:
            assert rt.get("h").result == result
            assert rt.verify_audit().ok  # no journaled event lost its audit entry
    finally:
        shutil.rmtree(data, ignore_errors=True)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(0, 3),
    schedule=st.sets(st.tuples(POINTS, st.integers(1, 15)), max_size=4),
)
def test_crashes_around_timers_and_retries_do_not_change_the_outcome(
    n: int, schedule: set[tuple[str, int]]
) -> None:
    data = Path(tempfile.mkdtemp(prefix="aura-inject-"))
    try:
        faults = FaultInjector(CrashAt(schedule))
        with aura.Runtime(data, missions=[m.mixed], faults=faults) as rt:
            result = rt.start(m.mixed, n, mission_id="mx").result(timeout=60)
        assert result == {"total": sum(range(n)), "flaky": "mx ok on attempt 2"}, faults.crashes
        with aura.Runtime(data, missions=[m.mixed]) as rt:
            assert rt.get("mx").result == result
            assert rt.verify_audit().ok
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_the_injection_really_crashes_the_mission_actor() -> None:
    data = Path(tempfile.mkdtemp(prefix="aura-inject-"))
    try:
        schedule = {("before_append", 2), ("after_append", 3), ("during_recovery", 1)}
        faults = FaultInjector(CrashAt(schedule))
        with aura.Runtime(data, missions=[m.arithmetic], faults=faults) as rt:
            assert rt.start(m.arithmetic, 3, mission_id="x").result(timeout=60)["total"] == 3
        assert {p for p, _, _ in faults.crashes} == {p for p, _ in schedule}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_a_crash_looping_mission_is_dead_lettered_alone_and_redrive_resumes_it(
    tmp_path: Path,
) -> None:
    faults = FaultInjector(
        lambda point, actor_id, hit: point == "after_append" and actor_id == "mission/loop"
    )
    with aura.Runtime(tmp_path, missions=[m.arithmetic], faults=faults) as rt:
        handle = rt.start(m.arithmetic, 3, mission_id="loop")
        healthy = rt.start(m.arithmetic, 3, mission_id="fine")
        with pytest.raises(aura.MissionDeadError, match="crashed more than 5 times") as info:
            handle.result(timeout=60)
        assert "redrive" in str(info.value)
        assert healthy.result(timeout=60)["total"] == 3  # the others were not disturbed
        assert [v.mission_id for v in rt.dead_letters()] == ["loop"]
        faults.set_plan(None)  # the cause is fixed
        assert rt.redrive("loop").result(timeout=60)["total"] == 3
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        assert rt.get("loop").status is aura.MissionStatus.COMPLETED
        assert rt.verify_audit().ok  # dead-lettering and the redrive are audited too


def test_start_rides_out_as_many_crashes_as_the_supervisor_restarts(tmp_path: Path) -> None:
    crashes = {("before_append", hit) for hit in range(1, MISSION_MAX_RESTARTS + 1)}
    faults = FaultInjector(CrashAt(crashes))
    with aura.Runtime(tmp_path, missions=[m.arithmetic], faults=faults) as rt:
        result = rt.start(m.arithmetic, 2, mission_id="h").result(timeout=60)
    assert len(faults.crashes) == MISSION_MAX_RESTARTS
    assert result == {"total": 1, "doubled": [2, 2, 4], "key_of": "h"}


def test_a_start_crashing_past_the_restart_limit_fails_and_writes_nothing(tmp_path: Path) -> None:
    crashes = {("before_append", hit) for hit in range(1, MISSION_MAX_RESTARTS + 2)}
    faults = FaultInjector(CrashAt(crashes))
    with (
        aura.Runtime(tmp_path, missions=[m.arithmetic], faults=faults) as rt,
        pytest.raises(aura.AuraError, match="keeps crashing before it journals"),
    ):
        rt.start(m.arithmetic, 2, mission_id="h")
    assert len(faults.crashes) == MISSION_MAX_RESTARTS + 1
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        assert store.version("mission/h") == 0  # no start, and no dead letter for it
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        with pytest.raises(aura.MissionNotFoundError):
            rt.get("h")
        result = rt.start(m.arithmetic, 2, mission_id="h").result(timeout=60)
        assert result == {"total": 1, "doubled": [2, 2, 4], "key_of": "h"}
