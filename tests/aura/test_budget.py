"""Budgets: costs reported by steps add up in the log; over budget, a mission
waits (nothing new starts) until the budget is raised or it is cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest

import aura
from aura.governance._audit import AUDIT_STREAM, decode_entries
from eventstore import EventStore

from . import missions as m

WAITING = aura.MissionStatus.WAITING


def wait_status(rt: aura.Runtime, mission_id: str, status: aura.MissionStatus) -> aura.MissionView:
    return rt.wait(mission_id, timeout=30, until={status})


def test_over_budget_waits_then_resumes_when_raised(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.spender]) as rt:
        h = rt.start(m.spender, 5, mission_id="s")
        view = wait_status(rt, "s", WAITING)  # after the third step: $1.20 > $1.00
        assert view.waiting_for == "budget"
        assert view.cost_usd == pytest.approx(1.2) and view.cost_tokens == 300
        assert view.steps_completed == 3
        priced = [key for name, key in m.CALLS if name == "priced"]
        assert priced == ["s/1/0", "s/1/1", "s/1/2"]  # nothing new started
        assert h.status() is WAITING
    with aura.Runtime(tmp_path, missions=[m.spender]) as rt:  # still waiting after a restart
        view = rt.get("s")
        assert (view.status, view.waiting_for) == (aura.MissionStatus.WAITING, "budget")
        raised = rt.raise_budget("s", usd=1.5)  # not enough: $1.20 spent, next step to $1.60
        assert raised.budget == aura.Budget(usd=1.5)
        assert wait_status(rt, "s", WAITING).cost_usd == pytest.approx(1.6)
        rt.raise_budget("s", usd=10)
        assert rt.handle("s").result(timeout=30) == sum(range(5))
        done = rt.get("s")
        assert done.cost_usd == pytest.approx(2.0) and done.cost_tokens == 500
        assert rt.verify_audit().ok
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        kinds = [a.kind for e in store.read(AUDIT_STREAM) for a in decode_entries(e.data)]
    assert kinds.count("budget.raised") == 2
    with aura.Runtime(tmp_path, missions=[]) as rt:  # read from the log, no code
        assert rt.get("s").cost_usd == pytest.approx(2.0)


def test_a_mission_over_budget_can_be_cancelled(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.spender]) as rt:
        h = rt.start(m.spender, 5, mission_id="c", budget=aura.Budget(tokens=150))
        assert wait_status(rt, "c", WAITING).waiting_for == "budget"  # 200 tokens > 150
        rt.cancel("c")
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)


def test_bad_budgets_and_costs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(aura.DefinitionError):
        aura.Budget(usd=-1)
    with pytest.raises(aura.DefinitionError):
        aura.Budget(tokens=1.5)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="inside a running step"):
        aura.report_cost(usd=1)

    @aura.step(name="tests:bad_cost")
    def bad_cost() -> None:
        aura.report_cost(usd=float("nan"))

    @aura.mission(name="tests:pays_badly")
    async def pays_badly(ctx: aura.MissionContext) -> None:
        await ctx.step(bad_cost)

    with aura.Runtime(tmp_path, missions=[pays_badly]) as rt:
        with pytest.raises(aura.MissionFailedError, match="finite number"):
            rt.start(pays_badly, mission_id="b").result(timeout=30)
        with pytest.raises(aura.AuraError, match="failed: no budget"):
            rt.raise_budget("b", usd=1)


def test_aura_budget_from_another_process_resumes_a_mission_waiting_on_it(
    tmp_path: Path,
) -> None:
    """``aura budget`` queues the new limits; the runtime that opens the
    directory applies them once (journaled with the command's inbox number)."""
    from .processes import cli

    with aura.Runtime(tmp_path, missions=[m.spender]) as rt:
        rt.start(m.spender, 4, mission_id="s")
        assert wait_status(rt, "s", WAITING).waiting_for == "budget"
    bad = cli(tmp_path, "budget", "s", "--usd", "-1")
    assert bad.returncode == 2 and "finite number >= 0" in bad.stderr
    assert cli(tmp_path, "budget", "s").returncode == 2  # neither limit given
    sent = cli(tmp_path, "budget", "s", "--usd", "10")
    assert sent.returncode == 0, sent.stderr
    with aura.Runtime(tmp_path, missions=[m.spender]) as rt:
        assert rt.handle("s").result(timeout=30) == 0 + 1 + 2 + 3
        assert rt.get("s").budget == aura.Budget(usd=10.0)
