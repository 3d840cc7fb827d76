"""Committed mission logs replayed against the current code.

Each golden log is imported without its ``transition`` events, so the
mission is in flight as far as the log says, and the runtime must rebuild
it by replay with today's code: the same result, or, for the log recorded by
an older version of the mission, a NonDeterminismError that dead-letters it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import aura
from eventstore import EventStore, NewEvent

from .golden_missions import GOLDEN_DIR, MISSIONS, GoldenLog

GOLDENS = sorted(GOLDEN_DIR.glob("*.json"))


def load(path: Path) -> GoldenLog:
    return msgspec.json.decode(path.read_bytes(), type=GoldenLog)


def import_log(data: Path, log: GoldenLog) -> None:
    with EventStore.open(data / "events") as store:
        store.append(
            f"mission/{log.mission_id}",
            [NewEvent(e.kind, e.data) for e in log.events],
            expected_version=0,
        )


def test_there_are_golden_logs_including_a_non_deterministic_one() -> None:
    statuses = {load(p).status for p in GOLDENS}
    assert statuses == {"completed", "dead"}


@pytest.mark.parametrize("path", GOLDENS, ids=[p.stem for p in GOLDENS])
def test_golden_log_replays_against_current_code(tmp_path: Path, path: Path) -> None:
    log = load(path)
    import_log(tmp_path, log)
    with aura.Runtime(tmp_path, missions=MISSIONS) as rt:
        view = rt.wait(log.mission_id, timeout=60)
        assert view.status.value == log.status
        if log.status == "completed":
            assert view.result == log.result
        else:
            assert "not deterministic" in view.error
            assert ">> #1: log step golden:fetch#" in view.error  # the diff points at it
