"""Saga: completed steps with compensate= are undone in reverse order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S

from ..actors.helpers import Recorder, capture_logger
from . import missions as m


def test_a_failure_compensates_completed_steps_in_reverse_order(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        with pytest.raises(aura.MissionFailedError, match="card declined") as info:
            rt.start(m.trip, False, mission_id="t-1").result(timeout=30)
        assert info.value.view.status is S.FAILED
    assert m.SAGA == ["book flight", "book hotel", "cancel hotel", "cancel flight"]


def test_cancel_compensates_and_ends_cancelled(tmp_path: Path) -> None:
    log = Recorder()
    with aura.Runtime(tmp_path, missions=[m.trip], logger=capture_logger(log)) as rt:
        handle = rt.start(m.trip, True, mission_id="t-2")
        log.wait_for(lambda ev: any(e.get("status") == "waiting" for e in ev))
        handle.cancel()
        with pytest.raises(aura.MissionCancelledError):
            handle.result(timeout=30)
    assert m.SAGA == ["book flight", "book hotel", "cancel hotel", "cancel flight"]
    assert ("charge", "t-2/1/4") not in m.CALLS


def test_a_restart_during_compensation_finishes_it_once(tmp_path: Path) -> None:
    gate = m.GATES["compensation"] = threading.Event()
    rt = aura.Runtime(tmp_path, missions=[m.trip])
    rt.start(m.trip, False, mission_id="t-3")
    m.wait_call(("cancel", "t-3/1/4"))  # the first compensation is running
    rt.close()  # ...and never reported back
    gate.set()
    with (
        aura.Runtime(tmp_path, missions=[m.trip]) as rt,
        pytest.raises(aura.MissionFailedError),
    ):
        rt.handle("t-3").result(timeout=30)
    # The interrupted compensation ran again (at least once), the other once,
    # and the forward steps never re-ran.
    assert m.SAGA.count("cancel flight") == 1
    assert m.SAGA.count("book flight") == 1 and m.SAGA.count("book hotel") == 1
    assert m.SAGA[-1] == "cancel flight"
