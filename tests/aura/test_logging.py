"""The instrumentation contract (README, "Structured logs"): event families
and the fields each carries."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import aura
from tests.actors.helpers import Recorder, capture_logger

from . import missions as m


def events(rec: Recorder, name: str) -> list[dict[str, Any]]:
    return [e for e in rec.events if e["event"] == name]


def test_event_families_carry_their_fields(tmp_path: Path) -> None:
    rec = Recorder()
    tools = [m.search, m.shout, m.forbidden]
    m.GATES["t"] = threading.Event()
    with aura.Runtime(
        tmp_path, missions=[m.uses_tools], tools=tools, logger=capture_logger(rec)
    ) as rt:
        rt.start(m.uses_tools, "x", mission_id="t")
        m.wait_call(("gated", "t/1/6"))
    m.GATES["t"].set()
    with aura.Runtime(
        tmp_path, missions=[m.uses_tools], tools=tools, logger=capture_logger(rec)
    ) as rt:
        rt.handle("t").result(timeout=30)
    names = {e["event"] for e in rec.events}
    assert {
        "runtime.start",
        "runtime.stop",
        "system.start",
        "actor.lifecycle",
        "mission.transition",
        "mission.replay_started",
        "mission.replay_finished",
        "step.scheduled",
        "step.completed",
        "step.failed",
        "gateway.allowed",
        "gateway.denied",
    } <= names
    for e in events(rec, "step.scheduled") + events(rec, "step.completed"):
        assert {"mission_id", "run", "seq", "step", "attempt", "key"} <= set(e), e
        assert e["key"] == f"{e['mission_id']}/{e['run']}/{e['seq']}"
    for e in events(rec, "mission.transition"):
        assert {"mission_id", "run", "seq", "old", "status", "reason"} <= set(e), e
    denied = events(rec, "gateway.denied")
    assert len(denied) == 4 and all(e["mission_id"] == "t" and e["reason"] for e in denied)
    first, recovered = events(rec, "mission.replay_finished")  # started, then recovered
    assert first["replayed"] == 0
    assert recovered["replayed"] > 5 and recovered["status"] == "running"
    for e in events(rec, "actor.lifecycle"):
        assert {"actor_id", "parent", "old", "state", "reason"} <= set(e)


def test_log_json_prints_json_lines_and_the_default_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with aura.Runtime(tmp_path / "quiet", missions=[m.arithmetic]) as rt:
        rt.start(m.arithmetic, 1, mission_id="q").result(timeout=30)
    assert capsys.readouterr().err == ""
    with aura.Runtime(tmp_path / "loud", missions=[m.arithmetic], log="json") as rt:
        rt.start(m.arithmetic, 1, mission_id="l").result(timeout=30)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(e["event"] == "step.completed" and e["mission_id"] == "l" for e in lines)
    assert all("timestamp" in e and "level" in e for e in lines)
    with pytest.raises(aura.AuraError, match="'json' or 'console'"):
        aura.Runtime(tmp_path / "bad", log="xml")
