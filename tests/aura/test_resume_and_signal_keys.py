"""What DBOS users expect: a cancelled mission can be resumed from where it
stopped (in the same runtime, after a restart, from the CLI), and a signal
sent twice with one idempotency key is delivered once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S

from . import missions as m

ROOT = Path(__file__).resolve().parent.parent.parent


def test_resume_goes_on_from_where_the_cancel_stopped_it(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        h = rt.start(m.approval, None, mission_id="r")
        rt.wait("r", 30, until={S.WAITING})
        rt.cancel("r")
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)
        rt.resume("r")
        view = rt.wait("r", 30, until={S.WAITING})
        assert view.waiting_for == "signal 'approve'"
        assert view.steps_completed == 1  # the step before the cancel is not run again
        rt.signal("r", "approve", "yes")
        rt.signal("r", "note", "n")
        assert h.result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "n"}
        assert [c for c in m.CALLS if c[0] == "add"] == [("add", "r/1/0")]
        assert rt.verify_audit().ok
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # and it replays so
        assert rt.get("r").result == {"draft": 2, "verdict": "yes", "note": "n"}
        with pytest.raises(aura.AuraError, match="not cancelled"):
            rt.resume("r")


def test_a_step_that_finished_while_cancelled_counts_after_resume(tmp_path: Path) -> None:
    m.GATES["held"] = threading.Event()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:
        h = rt.start(m.waits_at_gate, "held", mission_id="g")
        m.wait_call(("gated", "g/1/1"))
        rt.terminate("g")  # the step in flight goes on and reports while cancelled
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)
        m.GATES["held"].set()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:  # resumed after a restart
        rt.resume("g")
        assert rt.handle("g").result(timeout=30) == [3, "passed held", 13]
    gated = [c for c in m.CALLS if c[0] == "gated"]
    assert len(gated) in (1, 2)  # once, or again if its result was not in before the close


def test_resume_is_refused_after_compensation(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        h = rt.start(m.trip, True, mission_id="t")
        rt.wait("t", 30, until={S.WAITING})
        rt.cancel("t")
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)
        with pytest.raises(aura.AuraError, match="compensated"):
            rt.resume("t")
        assert rt.get("t").status is S.CANCELLED


def test_aura_resume_from_the_cli(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="c")
        rt.wait("c", 30, until={S.WAITING})
        rt.cancel("c")
        rt.wait("c", 30, until={S.CANCELLED})
    done = subprocess.run(
        [sys.executable, "-m", "aura.operating._cli", "--data", str(tmp_path), "resume", "c"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # delivers the queued resume
        assert rt.wait("c", 30, until={S.WAITING}).waiting_for == "signal 'approve'"


def test_a_signal_with_one_key_is_delivered_once(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="s")
        rt.wait("s", 30, until={S.WAITING})
        before = rt.store.version("mission/s")
        rt.signal("s", "note", "first", idempotency_key="k1")
        rt.signal("s", "note", "again", idempotency_key="k1")  # a retried send
        assert rt.store.version("mission/s") == before + 1  # the retry journaled nothing
        with pytest.raises(aura.AuraError, match="idempotency_key"):
            rt.signal("s", "note", "x", idempotency_key="")
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # keys survive a restart
        rt.signal("s", "note", "again", idempotency_key="k1")
        rt.signal("s", "approve", "yes", idempotency_key="k2")
        assert rt.handle("s").result(timeout=30) == {"draft": 2, "verdict": "yes", "note": "first"}
