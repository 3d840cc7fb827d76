"""Per-attempt timeouts and heartbeats."""

from __future__ import annotations

from pathlib import Path

import pytest

import aura

from . import missions as m


def test_an_attempt_over_its_timeout_fails_and_is_retried(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.timeouts]) as rt:
        assert rt.start(m.timeouts, "retry", mission_id="t-r").result(timeout=30) == "attempt 2"
    assert m.CALLS == [("slow_then_fast", "t-r/1/0")] * 2


def test_a_timeout_without_retries_fails_the_mission(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.timeouts]) as rt:
        with pytest.raises(aura.MissionFailedError, match="StepTimeoutError") as info:
            rt.start(m.timeouts, "fail", mission_id="t-f").result(timeout=30)
        assert "ran over its timeout of 0.2s" in str(info.value)


def test_an_async_attempt_over_its_timeout_is_cancelled(tmp_path: Path) -> None:
    with (
        aura.Runtime(tmp_path, missions=[m.timeouts]) as rt,
        pytest.raises(aura.MissionFailedError, match="StepTimeoutError"),
    ):
        rt.start(m.timeouts, "async", mission_id="t-a").result(timeout=30)
    assert m.CANCELLED == ["t-a"]


def test_a_missed_heartbeat_fails_the_attempt_and_the_retry_resumes_from_it(
    tmp_path: Path,
) -> None:
    with aura.Runtime(tmp_path, missions=[m.timeouts]) as rt:
        attempt, start, done = rt.start(m.timeouts, "beat", mission_id="t-h").result(timeout=30)
    # Attempt 1 processed items 0..2 and heartbeated 3, then stalled; attempt 2
    # started from the last heartbeat instead of from scratch.
    assert (attempt, start, done) == (2, 3, [3, 4, 5])


def test_heartbeat_and_current_step_outside_a_step_are_refused() -> None:
    with pytest.raises(RuntimeError, match="inside a running step"):
        aura.heartbeat(1)
    with pytest.raises(RuntimeError, match="inside a running step"):
        aura.current_step()
