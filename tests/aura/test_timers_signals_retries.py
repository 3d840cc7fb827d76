"""Durable timers: retries with backoff, ctx.sleep, signals and their timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S

from ..actors.helpers import Recorder, capture_logger
from . import missions as m


def test_a_flaky_step_is_retried_with_backoff_until_it_succeeds(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.retrying]) as rt:
        assert rt.start(m.retrying, 2, mission_id="r-1").result(timeout=30) == (
            "r-1 ok on attempt 3"
        )
    # Three attempts of the same step, all with the same idempotency key.
    assert m.CALLS == [("flaky", "r-1/1/0")] * 3


def test_retries_stop_at_max_attempts(tmp_path: Path) -> None:
    with (
        aura.Runtime(tmp_path, missions=[m.retrying]) as rt,
        pytest.raises(aura.MissionFailedError, match="attempt 4 failed"),
    ):
        rt.start(m.retrying, 10, mission_id="r-2").result(timeout=30)
    assert len(m.CALLS) == 4


def test_a_non_retryable_error_is_not_retried(tmp_path: Path) -> None:
    with (
        aura.Runtime(tmp_path, missions=[m.non_retryable]) as rt,
        pytest.raises(aura.MissionFailedError, match="7 is not acceptable"),
    ):
        rt.start(m.non_retryable, mission_id="nr").result(timeout=30)
    assert len(m.CALLS) == 1


def test_a_restart_during_backoff_keeps_the_attempt_count(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.retrying]) as rt:
        rt.start(m.retrying, 3, mission_id="r-3")
        with m._calls:  # wait until attempt 2 ran (and failed)
            assert m._calls.wait_for(lambda: len(m.FLAKY.get("r-3", [])) >= 2, 30)
    # Closed mid-schedule; a new runtime resumes it where it was.
    with aura.Runtime(tmp_path, missions=[m.retrying]) as rt:
        assert rt.handle("r-3").result(timeout=30) == "r-3 ok on attempt 4"
    attempts = m.FLAKY["r-3"]
    # The attempt count never went back after the restart; at most the one
    # attempt whose outcome was not journaled yet ran twice.
    assert attempts == sorted(attempts) and attempts[-1] == 4
    assert len(attempts) <= 5


def test_sleep_is_a_durable_timer(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.sleeper]) as rt:
        handle = rt.start(m.sleeper, 0.3, mission_id="s-1")
        assert rt.get("s-1").status in (S.WAITING, S.COMPLETED)
        slept = handle.result(timeout=30)
        assert slept >= 0.3 * 0.9  # now() is the journaled time of the timer message


def test_a_timer_survives_a_restart_and_fires_late_rather_than_never(tmp_path: Path) -> None:
    rt = aura.Runtime(tmp_path, missions=[m.sleeper])
    rt.start(m.sleeper, 0.5, mission_id="s-2")
    assert rt.get("s-2").status is S.WAITING
    rt.close()  # the in-memory timer dies with the runtime
    with aura.Runtime(tmp_path, missions=[m.sleeper]) as rt:
        assert rt.handle("s-2").result(timeout=30) >= 0.5 * 0.9


def test_signals_reach_a_waiting_mission_and_are_kept_until_awaited(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        handle = rt.start(m.approval, None, mission_id="a-1")
        rt.signal("a-1", "note", {"text": "sent early"})  # kept until the code waits for it
        m.wait_call(("add", "a-1/1/0"))
        rt.signal("a-1", "approve", True)
        assert handle.result(timeout=30) == {
            "draft": 2,
            "verdict": True,
            "note": {"text": "sent early"},
        }
        with pytest.raises(aura.AuraError, match="takes no more signals"):
            rt.signal("a-1", "approve", False)
        with pytest.raises(aura.MissionNotFoundError):
            rt.signal("nobody", "approve", True)
        with pytest.raises(aura.ArgumentEncodingError):
            rt.signal("a-1", "approve", object())


def test_a_signal_wait_times_out_durably(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        result = rt.start(m.approval, 0.2, mission_id="a-2").result(timeout=30)
        assert result == {"draft": 2, "verdict": "timed out"}


def test_a_waiting_mission_resumes_after_restart_and_takes_its_signal(tmp_path: Path) -> None:
    log = Recorder()
    rt = aura.Runtime(tmp_path, missions=[m.approval], logger=capture_logger(log))
    rt.start(m.approval, None, mission_id="a-3")
    log.wait_for(lambda ev: any(e.get("status") == "waiting" for e in ev))  # step journaled
    rt.close()
    m.CALLS.clear()
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.signal("a-3", "approve", "yes")
        rt.signal("a-3", "note", "n")
        assert rt.handle("a-3").result(timeout=30)["verdict"] == "yes"
    assert m.CALLS == []  # the journaled step was not run again
