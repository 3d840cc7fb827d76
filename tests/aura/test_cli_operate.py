"""CLI verbs that act on missions, through the real entry point, against a
real data directory: with a runtime serving it in another process, and with
no runtime at all (commands wait in the log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import aura

from . import missions as m
from .test_cli import aura_cli

ROOT = Path(__file__).resolve().parent.parent.parent
SERVE = Path(__file__).parent / "children" / "serve.py"


def serve(data: Path, mission: str, mission_id: str, args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), str(data), mission, mission_id, args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def test_signals_reach_a_runtime_in_another_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = serve(data, "approval", "ap", "[null]")
    try:
        sent = aura_cli("--data", str(data), "signal", "ap", "approve", "true", "--wait", "20")
        assert sent.returncode == 0, sent.stderr
        assert "delivered to mission 'ap'" in sent.stdout
        note = aura_cli("--data", str(data), "signal", "ap", "note", '"ship it"', "--wait", "20")
        assert note.returncode == 0, note.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result == {"draft": 2, "verdict": True, "note": "ship it"}, err


def test_commands_queued_while_no_runtime_runs_are_delivered_when_one_opens(
    tmp_path: Path,
) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval, m.waits_at_gate]) as rt:
        rt.start(m.approval, None, mission_id="ap")
        rt.wait("ap", timeout=30, until={aura.MissionStatus.WAITING})
        m.GATES["g"] = __import__("threading").Event()
        rt.start(m.waits_at_gate, "g", mission_id="gw")
        m.wait_call(("gated", "gw/1/1"))
    assert aura_cli("--data", str(tmp_path), "signal", "ap", "approve", "1").returncode == 0
    assert aura_cli("--data", str(tmp_path), "signal", "ap", "note", '{"k": [1]}').returncode == 0
    assert aura_cli("--data", str(tmp_path), "cancel", "gw", "--reason", "no").returncode == 0
    waited = aura_cli("--data", str(tmp_path), "signal", "ap", "x", "--wait", "0.2")
    assert waited.returncode == 1 and "stays queued" in waited.stderr
    with aura.Runtime(tmp_path, missions=[m.approval, m.waits_at_gate]) as rt:
        assert rt.handle("ap").result(timeout=30) == {
            "draft": 2,
            "verdict": 1,
            "note": {"k": [1]},
        }
        view = rt.wait("gw", timeout=30)
        assert view.status is aura.MissionStatus.CANCELLED
    with aura.Runtime(tmp_path, missions=[m.approval, m.waits_at_gate]):
        pass  # reopening does not deliver anything twice
    history = aura_cli("--data", str(tmp_path), "history", "ap").stdout
    assert history.count("approve = 1") == 1


def test_dead_redrive_stats_and_run(tmp_path: Path) -> None:
    m.GATES["d"] = gate = __import__("threading").Event()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:
        rt.start(m.waits_at_gate, "d", mission_id="d")
        m.wait_call(("gated", "d/1/1"))
    with aura.Runtime(tmp_path, missions=[]) as rt:  # recovered without its code: dead
        assert rt.get("d").status is aura.MissionStatus.DEAD
    dead = aura_cli("--data", str(tmp_path), "dead")
    assert (
        dead.returncode == 0 and dead.stdout.startswith("d ") and "1 dead-lettered" in dead.stdout
    )
    assert aura_cli("--data", str(tmp_path), "redrive", "d").returncode == 0
    gate.set()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:  # with the code again
        assert rt.handle("d").result(timeout=30) == [3, "passed d", 13]
    run_it = aura_cli(
        "--data",
        str(tmp_path),
        "run",
        "tests.aura.missions:arithmetic",
        "--input",
        "[3]",
        "--id",
        "r1",
    )
    assert run_it.returncode == 0, run_it.stderr
    assert json.loads(run_it.stdout)["total"] == 3
    stats = json.loads(aura_cli("--data", str(tmp_path), "stats", "--json").stdout)
    assert stats["missions"] == 2 and stats["by_status"] == {"completed": 2}
    assert stats["audit_entries"] > 0 and stats["commands"] == stats["commands_delivered"] == 1


def test_operate_errors_are_one_clear_line(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        rt.start(m.arithmetic, 1, mission_id="done").result(timeout=30)
    cases = [
        (("signal", "nobody", "x"), "no mission 'nobody'"),
        (("signal", "done", "x"), "is completed: nothing to signal"),
        (("signal", "done", "x", "{bad"), "not valid JSON"),
        (("redrive", "done"), "is completed, not dead"),
        (("budget", "done", "--usd", "5"), "is completed: nothing to budget"),
        (("run", "no_such_module:m"), "cannot import 'no_such_module'"),
        (("run", "tests.aura.missions:add"), "is not a mission"),
    ]
    for argv, message in cases:
        out = aura_cli("--data", str(tmp_path), *argv)
        assert out.returncode == 1, (argv, out.stdout, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1, (argv, out.stderr)
    missing = aura_cli("--data", str(tmp_path / "nowhere"), "stats")
    assert missing.returncode == 1 and "no aura data directory" in missing.stderr
