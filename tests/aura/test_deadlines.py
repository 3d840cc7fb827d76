"""rt.start(deadline=): a mission that has not settled by then times out,
cancelled with its completed steps compensated; the deadline is journaled
and holds across restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import aura
from aura import MissionStatus as S
from aura.core._messages import DEADLINE_SEQ, MissionMessage, TimerFired

from . import missions as m


@pytest.fixture(autouse=True)
def saga() -> Iterator[None]:
    m.SAGA.clear()
    yield
    m.SAGA.clear()


def deadline_timers(rt: aura.Runtime, mission_id: str) -> int:
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    return sum(
        1
        for e in rt.store.read(f"mission/{mission_id}")
        if e.kind == "message"
        and isinstance(msg := decoder.decode(e.data), TimerFired)
        and msg.seq == DEADLINE_SEQ
    )


def test_a_mission_past_its_deadline_is_cancelled_and_compensated(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        handle = rt.start(m.trip, True, mission_id="t", deadline=0.3)  # waits for approval
        with pytest.raises(aura.MissionCancelledError):
            handle.result(timeout=60)
        view = rt.get("t")
        assert view.status is S.CANCELLED and view.error.startswith("timed out: its deadline")
        assert m.SAGA == ["book flight", "book hotel", "cancel hotel", "cancel flight"]
        assert deadline_timers(rt, "t") == 1
        assert rt.verify_audit().ok
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:  # replayed: the same ending, once
        assert rt.get("t").status is S.CANCELLED
        assert deadline_timers(rt, "t") == 1
    assert m.SAGA.count("cancel hotel") == 1


def test_the_deadline_holds_across_a_restart(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        rt.start(m.trip, True, mission_id="r", deadline=0.5)
        rt.wait("r", timeout=30, until={S.WAITING})
    # Reopened (before or after the deadline passed): the journaled deadline is armed again.
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        view = rt.wait("r", timeout=60)
        assert view.status is S.CANCELLED and "timed out" in view.error
        assert deadline_timers(rt, "r") == 1


def test_a_mission_that_finishes_in_time_is_not_touched(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        assert (
            rt.start(m.arithmetic, 3, mission_id="ok", deadline=600).result(timeout=30)["total"]
            == 3
        )
        assert rt.get("ok").status is S.COMPLETED


@pytest.mark.parametrize("bad", [0, -1, "10", True, float("nan")])
def test_a_bad_deadline_is_refused_before_anything_is_journaled(
    tmp_path: Path, bad: object
) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        with pytest.raises(aura.AuraError, match="deadline= must be seconds > 0"):
            rt.start(m.arithmetic, 1, mission_id="x", deadline=bad)  # type: ignore[arg-type]
        assert rt.store.version("mission/x") == 0
