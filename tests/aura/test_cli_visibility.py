"""What an operator sees: what a mission waits on (live and in the log),
who owns it, where recoveries happened, structured history, and the CLI's
edges (closed pipe, bad --to, generated ids, counts that agree)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec

import aura
from aura import MissionStatus as S

from . import missions as m
from .processes import ROOT, child_env, cli


def test_waiting_for_names_the_signal_the_timer_and_the_step(tmp_path: Path) -> None:
    m.GATES["w-gate"] = __import__("threading").Event()
    with aura.Runtime(tmp_path, missions=[m.approval, m.sleeper, m.waits_at_gate]) as rt:
        rt.start(m.approval, 3600.0, mission_id="sig")
        rt.start(m.sleeper, 3600.0, mission_id="tim")
        rt.start(m.waits_at_gate, "w-gate", mission_id="step")
        assert rt.wait("sig", 30, until={S.WAITING}).waiting_for.startswith(
            "signal 'approve' until "
        )
        assert rt.wait("tim", 30, until={S.WAITING}).waiting_for.startswith("timer #0 due ")
        m.wait_call(("gated", "step/1/1"))
        live = rt.get("step")
        assert live.status is S.RUNNING
        assert live.waiting_for == (
            f"step #1 tests.aura.missions:gated (attempt 1) on pid {os.getpid()}"
        )
        # The log says it too, for readers in other processes, with the owner.
        rows = {
            r["mission_id"]: r
            for r in map(msgspec.json.decode, cli(tmp_path, "ls", "--json").stdout.splitlines())
        }
        assert rows["sig"]["waiting_for"].startswith("signal 'approve'")
        assert rows["tim"]["waiting_for"].startswith("timer #0 due")
        assert f"pid {os.getpid()}" in rows["step"]["owner"]
        shown = msgspec.json.decode(cli(tmp_path, "show", "sig", "--json").stdout)
        assert shown["status"] == "waiting" and f"pid {os.getpid()}" in shown["owner"]
        m.GATES["w-gate"].set()
        rt.handle("step").result(timeout=30)
    closed = msgspec.json.decode(cli(tmp_path, "show", "sig", "--json").stdout)
    assert closed["owner"] == ""  # nobody runs it now


def test_history_marks_recoveries_and_scheduled_steps_with_structured_fields(
    tmp_path: Path,
) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="h")
        rt.wait("h", 30, until={S.WAITING})
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # a recovery
        rt.signal("h", "approve", "yes")
        rt.signal("h", "note", "n")
        rt.handle("h").result(timeout=30)
    rows = [
        msgspec.json.decode(line)
        for line in cli(tmp_path, "history", "h", "--json").stdout.splitlines()
    ]
    kinds = [r["kind"] for r in rows]
    assert kinds[:4] == ["start", "transition", "scheduled", "step_done"]
    scheduled, done = rows[2], rows[3]
    assert (scheduled["step"], scheduled["seq"], scheduled["attempt"]) == (
        "tests.aura.missions:add",
        0,
        1,
    )
    assert done["idempotency_key"] == scheduled["idempotency_key"] == "h/1/0"
    assert (done["step"], done["ok"], done["result"], done["attempt"]) == (
        "tests.aura.missions:add",
        True,
        2,
        1,
    )
    assert isinstance(done["ts"], float) and isinstance(done["sent_at"], float)
    recovery = next(r for r in rows if r["kind"] == "recovery")
    assert recovery["pid"] == os.getpid() and recovery["attempt"] == 1
    signals = [r for r in rows if r["kind"] == "signal"]
    assert [(s["name"], s["payload"]) for s in signals] == [("approve", "yes"), ("note", "n")]
    assert rows[-1]["status"] == "completed" and rows[-1]["result"]["verdict"] == "yes"
    human = cli(tmp_path, "history", "h").stdout
    assert "recovered by pid" in human


def test_cli_edges(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        for i in range(30):
            rt.start(m.arithmetic, 2, mission_id=f"a{i}").result(timeout=30)
    # A closed pipe ends quietly.
    pipe = subprocess.Popen(
        [sys.executable, "-m", "aura.operating._cli", "--data", str(tmp_path), "history", "a1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=child_env(),
    )
    assert pipe.stdout is not None and pipe.stderr is not None
    pipe.stdout.readline()
    pipe.stdout.close()  # like `| head -1`
    err = pipe.stderr.read()
    assert pipe.wait(60) == 0 and b"Traceback" not in err and b"BrokenPipe" not in err
    # --to is an event number the mission has.
    for bad in ("0", "-3", "x"):
        done = cli(tmp_path, "replay", "a1", "--to", bad)
        assert done.returncode == 2 and "--to" in done.stderr
    too_far = cli(tmp_path, "replay", "a1", "--to", "999")
    assert too_far.returncode == 1 and "cannot replay to event 999" in too_far.stderr
    # stats and audit verify count the same entries.
    stats = msgspec.json.decode(cli(tmp_path, "stats", "--json").stdout)
    verify = msgspec.json.decode(cli(tmp_path, "audit", "verify", "--json").stdout)
    assert stats["audit_entries"] == verify["entries"] > 30
    # run without --id says which id it made up.
    (tmp_path / "app").mkdir()
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "aura.operating._cli",
            "--data",
            str(tmp_path / "d2"),
            "run",
            "tests.aura.missions:arithmetic",
            "--input",
            "[2]",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    generated = ran.stderr.split("mission id ", 1)[1].split()[0]
    assert cli(tmp_path / "d2", "show", generated).returncode == 0
