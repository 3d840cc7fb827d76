"""max_recovery_attempts counts recoveries across process restarts: a
mission whose step kills its process every time is dead-lettered after N
recoveries, in real processes; a mission that only waits is resumed however
often it is recovered; every recovery is marked in its history."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aura
from aura import MissionStatus as S
from aura.engine._place import Place
from aura.operating._inspect import history

from . import missions as m
from .processes import python

OWNER = """
import sys
import aura
from tests.aura import missions as m
with aura.Runtime(sys.argv[1], missions=[m.process_killer], max_recovery_attempts=3) as rt:
    h = rt.start(m.process_killer, mission_id="k")
    try:
        h.result(timeout=60)
    except aura.MissionDeadError as err:
        print("DEAD", err)
"""


def run_owner(data: Path) -> subprocess.CompletedProcess[str]:
    return python("-c", OWNER, str(data))


def test_a_mission_that_kills_its_process_is_dead_lettered_after_n_recoveries(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    outcomes = []
    for _ in range(6):
        done = run_owner(data)
        outcomes.append(done.returncode)
        if done.stdout.startswith("DEAD"):
            break
    # The first start and 3 recoveries each died of the step; the 4th recovery refused it.
    assert outcomes == [-9, -9, -9, -9, 0], outcomes
    assert "max_recovery_attempts=3" in done.stdout
    events = list(history(Place.of(data), "k"))
    marks = [e for e in events if e["kind"] == "recovery"]
    assert [e["attempt"] for e in marks] == [1, 2, 3, 4]
    assert all(e["pid"] > 0 and e["host"] for e in marks)
    assert events[-1]["status"] == "dead"
    with aura.Runtime(data, missions=[m.process_killer]) as rt:
        assert rt.get("k").status is S.DEAD
        assert rt.verify_audit().ok  # every marker has its audit entry


def test_a_waiting_mission_is_resumed_however_often_it_is_recovered(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval], max_recovery_attempts=1) as rt:
        rt.start(m.approval, None, mission_id="w")
        rt.wait("w", 30, until={S.WAITING})
    for _ in range(4):
        with aura.Runtime(tmp_path, missions=[m.approval], max_recovery_attempts=1) as rt:
            assert rt.get("w").status is S.WAITING
    with aura.Runtime(tmp_path, missions=[m.approval], max_recovery_attempts=1) as rt:
        rt.signal("w", "approve", "yes")
        rt.signal("w", "note", "n")
        assert rt.handle("w").result(timeout=30)["verdict"] == "yes"
        assert rt.verify_audit().ok
    marks = [e for e in history(Place.of(tmp_path), "w") if e["kind"] == "recovery"]
    assert [e["attempt"] for e in marks] == [1, 2, 3, 4, 5]


def test_max_recovery_attempts_is_checked(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(aura.AuraError, match="max_recovery_attempts"):
        aura.Runtime(tmp_path, max_recovery_attempts=0)


def test_recovery_marks_skip_a_mission_that_moved_on_and_mark_the_rest(tmp_path: Path) -> None:
    """Markers are written in one commit: a mission whose log grew since
    its last event was read (shared: a command ran it meanwhile) is left
    out, and the others are still marked."""
    from aura.core._messages import RECOVERY

    with aura.Runtime(tmp_path / "data", missions=[m.approval]) as rt:
        for mission_id in ("x", "y"):
            rt.start(m.approval, None, mission_id=mission_id)
            rt.wait(mission_id, 30, until={S.WAITING})
        stale = rt._last_event("mission/x")
        rt.signal("x", "note", "moved on")  # x's log grows past what was read
        current = rt._last_event("mission/y")
        assert stale is not None and current is not None
        rt._mark_recoveries([stale, current])
        last_x, last_y = rt._last_event("mission/x"), rt._last_event("mission/y")
        assert last_y is not None and last_y.kind == RECOVERY
        assert last_x is not None and last_x.kind != RECOVERY and last_x.version > stale.version
