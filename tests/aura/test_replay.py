"""The replay debugger: from the log alone, through the code, up to an
event, across continue-as-new and archived runs; non-determinism shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aura

from . import missions as m
from .test_cli import aura_cli

APP = "tests.aura.missions"


def completed_arithmetic(path: Path) -> Any:
    with aura.Runtime(path, missions=[m.arithmetic]) as rt:
        return rt.start(m.arithmetic, 2, mission_id="a").result(timeout=30)


def test_from_the_log_alone(tmp_path: Path) -> None:
    completed_arithmetic(tmp_path)
    r = aura.replay(tmp_path, "a")
    assert not r.with_code and r.divergence is None
    assert [s.version for s in r.steps] == list(range(1, len(r.steps) + 1))
    assert r.steps[0].kind == "start" and r.steps[-1].status == "completed"
    assert r.steps[-1].steps_completed == 5  # two adds, three doubles


def test_through_the_code_with_the_commands_at_each_event(tmp_path: Path) -> None:
    completed_arithmetic(tmp_path)
    r = aura.replay(tmp_path, "a", app=APP)
    assert r.with_code and r.divergence is None
    start = r.steps[0]
    assert start.kind == "start" and start.commands[0].startswith("step tests.aura.missions:add#")
    gather = next(s for s in r.steps if len(s.commands) == 3)  # ctx.gather of three doubles
    assert all("double" in c for c in gather.commands)
    assert r.steps[-1].status == "completed"
    upto = aura.replay(tmp_path, "a", to=4, app=APP)
    assert upto.steps[-1].version == 4 and upto.steps[-1].status == "running"


def test_changed_code_is_reported_with_a_diff(tmp_path: Path) -> None:
    completed_arithmetic(tmp_path)

    @aura.mission(name="tests.aura.missions:arithmetic")
    async def arithmetic(ctx: aura.MissionContext, n: int) -> int:
        await ctx.step(m.add, 0, 0)
        await ctx.step(m.double, 7)  # the log recorded another add here
        return n

    r = aura.replay(tmp_path, "a", app=[arithmetic])
    assert r.divergence is not None
    assert "#1" in r.divergence.error and "double" in r.divergence.error
    cli = aura_cli("--data", str(tmp_path), "replay", "a", "--app", APP)
    assert cli.returncode == 0, cli.stderr  # the current code matches its log


def test_cli_timeline_json_and_errors(tmp_path: Path) -> None:
    completed_arithmetic(tmp_path)
    out = aura_cli("--data", str(tmp_path), "replay", "a", "--app", APP)
    assert out.returncode == 0, out.stderr
    assert "state after event" in out.stdout and "through the code" in out.stdout
    rows = aura_cli("--data", str(tmp_path), "replay", "a", "--to", "3", "--json").stdout
    assert [json.loads(line)["version"] for line in rows.splitlines()] == [1, 2, 3]
    bad = aura_cli("--data", str(tmp_path), "replay", "nobody")
    assert bad.returncode == 1 and "no mission 'nobody'" in bad.stderr
    noapp = aura_cli("--data", str(tmp_path), "replay", "a", "--app", "no_such_module_x")
    assert noapp.returncode == 1 and "cannot import" in noapp.stderr


def test_archived_runs_replay_through_the_code(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.looper], archive_completed_after=None) as rt:
        result = rt.start(m.looper, 0, 50, mission_id="l").result(timeout=60)
        rt.compact(completed_after=0)
    r = aura.replay(tmp_path, "l", app=APP)
    assert r.divergence is None
    assert [s.run for s in r.steps][-1] == result["run"] > 1
    assert r.steps[-1].status == "completed"
    assert r.steps[-1].memory == {"acc": sum(range(50))}
