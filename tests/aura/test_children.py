"""Child missions (``ctx.start_child``): each child is a mission of its own
whose start and outcome its parent journals once; failures reach the parent
as ``ChildMissionError``; the parent-close policy holds across restarts and
SIGKILLs at the moments in between."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

import aura
from aura import MissionStatus as S
from aura.core._messages import MissionMessage, Start, StepDone
from eventstore import EventStore

from . import children_missions as cm
from . import missions as m

NODE = Path(__file__).parent / "children" / "children_node.py"
ROOT = Path(__file__).resolve().parent.parent.parent


def logged(store: Any, mission_id: str) -> list[object]:
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    events = store.read(f"mission/{mission_id}")
    return [decoder.decode(e.data) for e in events if e.kind == "message"]


def started(rt: aura.Runtime, mission_id: str) -> None:
    """Wait until the waiter child ``mission_id`` has started and waits for its signal."""
    assert cm.REACHED[mission_id].wait(30), f"{mission_id} never started"
    rt.wait(mission_id, until={S.WAITING}, timeout=30)


@pytest.fixture(autouse=True)
def fresh_marks() -> None:
    cm.REACHED.clear()


def messages(rt: aura.Runtime, mission_id: str) -> list[object]:
    return logged(rt.store, mission_id)


def test_a_hundred_children_fan_out_and_gather(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.start(cm.fan_out, 100, mission_id="p").result(timeout=60) == [
            3 * i for i in range(100)
        ]
        # Each child is a mission of its own, with its own history.
        child = rt.get("p.1.42")
        assert (child.status, child.result, child.steps_completed) == (S.COMPLETED, 126, 1)
        starts = [x for x in messages(rt, "p.1.42") if isinstance(x, Start)]
        assert [(s.mission, s.args, s.parent, s.parent_close) for s in starts] == [
            (cm.tripled.__aura_mission__.name, [42], "p", "cancel")
        ]
        # The parent journaled each child's outcome exactly once.
        outcomes = [x for x in messages(rt, "p") if isinstance(x, StepDone)]
        assert sorted(o.seq for o in outcomes) == list(range(100))
        assert all(
            o.ok and o.fingerprint.startswith("child tests.aura.children_missions:tripled#")
            for o in outcomes
        )
    # Replayed from the log on reopen: nothing is started or run again.
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.get("p").result == [3 * i for i in range(100)]
        assert len(messages(rt, "p.1.0")) == 2  # its Start and its step's outcome
    replayed = aura.replay(tmp_path, "p", app=cm.ALL)
    assert replayed.divergence is None
    assert replayed.steps[-1].status == "completed"


def test_a_failed_child_is_a_typed_error_the_parent_catches(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        result = rt.start(cm.catches, mission_id="p").result(timeout=30)
        assert result == {
            "id": "broken-kid",
            "status": "failed",
            "error": "ValueError: no luck",
        }
        assert rt.get("broken-kid").status is S.FAILED


def test_an_uncaught_child_failure_fails_the_parent(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        rt.start(cm.awaits_waiter, "cancel", mission_id="p")
        started(rt, "w")
        assert "child mission 'w'" in rt.get("p").waiting_for
        rt.cancel("w", "changed my mind")
        view = rt.wait("p", timeout=30)
        assert view.status is S.FAILED
        assert "ChildMissionError: child mission 'w' cancelled: changed my mind" in view.error


def test_cancelling_a_parent_cancels_its_children_and_theirs(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        rt.start(cm.grandparent, mission_id="g")
        started(rt, "w")
        rt.cancel("g", "stop everything")
        assert rt.wait("g", timeout=30).status is S.CANCELLED
        mid, w = rt.wait("mid", timeout=30), rt.wait("w", timeout=30)
        assert (mid.status, mid.error) == (S.CANCELLED, "its parent 'g' cancelled")
        assert (w.status, w.error) == (S.CANCELLED, "its parent 'mid' cancelled")


@pytest.mark.parametrize(("policy", "child"), [("cancel", S.CANCELLED), ("abandon", S.WAITING)])
def test_the_parent_close_policy_decides_what_a_parent_that_ends_leaves(
    tmp_path: Path, policy: str, child: S
) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.start(cm.leaves_waiter, policy, mission_id="p").result(timeout=30) == "done"
        assert cm.REACHED["w"].wait(30)
        view = rt.wait("w", until={child}, timeout=30)
        if policy == "abandon":  # it runs on, and finishes on its own
            rt.signal("w", "go", "later")
            assert rt.wait("w", timeout=30).result == "later"
        else:
            assert view.error == "its parent 'p' completed"


def test_continue_as_new_closes_the_runs_children(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.start(cm.continues_with_child, 0, mission_id="p").result(timeout=30) == (
            "second run"
        )
        assert cm.REACHED["w"].wait(30)
        view = rt.wait("w", timeout=30)
        assert (view.status, view.error) == (S.CANCELLED, "its parent 'p' continued as new")


def test_what_a_child_spends_counts_toward_its_parents_budget(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        m.GATES["pay"] = gate = threading.Event()
        rt.start(cm.pays_for_children, mission_id="p", budget=aura.Budget(usd=0.5))
        view = rt.wait("p", until={S.WAITING}, timeout=30)  # both outcomes: 0.8 > 0.5
        assert view.waiting_for == "budget"
        assert view.cost_usd == pytest.approx(0.8)
        gate.set()
        rt.raise_budget("p", usd=1.0)
        done = rt.wait("p", timeout=30)
        assert (done.status, done.cost_usd) == (S.COMPLETED, pytest.approx(0.81))


def test_a_child_id_is_started_once_and_other_input_for_it_is_refused(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.start(cm.same_id_twice, 1, mission_id="a").result(timeout=30) == [3, 3]
        assert len([x for x in messages(rt, "shared-kid") if isinstance(x, Start)]) == 1
        assert rt.start(cm.same_id_twice, 2, mission_id="b").result(timeout=30) == [
            3,
            "MissionConflictError",
        ]


def test_a_parent_waiting_on_children_survives_a_restart(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        rt.start(cm.awaits_waiter, "cancel", mission_id="p")
        started(rt, "w")
    with aura.Runtime(tmp_path, missions=cm.ALL) as rt:
        assert rt.get("p").status is S.WAITING
        rt.signal("w", "go", {"ok": True})
        assert rt.wait("p", timeout=30).result == {"ok": True}
        assert [x.seq for x in messages(rt, "p") if isinstance(x, StepDone)] == [0]


def test_bad_arguments_to_start_child_fail_the_parent_clearly(tmp_path: Path) -> None:
    @aura.mission
    async def bad_policy(ctx: aura.MissionContext) -> None:
        await ctx.start_child(cm.tripled, 1, parent_close="orphan")

    @aura.mission
    async def bad_id(ctx: aura.MissionContext) -> None:
        await ctx.start_child(cm.tripled, 1, mission_id="a/b")

    @aura.mission
    async def not_a_mission(ctx: aura.MissionContext) -> None:
        await ctx.start_child(cm.triple, 1)

    with aura.Runtime(tmp_path, missions=[*cm.ALL, bad_policy, bad_id, not_a_mission]) as rt:
        for fn, words in [
            (bad_policy, "parent_close= must be one of cancel, abandon, got 'orphan'"),
            (bad_id, "mission_id= must be a non-empty str without '/'"),
            (not_a_mission, "is not a mission: decorate it with @aura.mission"),
        ]:
            view = rt.wait(rt.start(fn).mission_id, timeout=30)
            assert view.status is S.FAILED
            assert words in view.error, view.error
        assert [v for v in rt.missions() if v.name == cm.tripled.__aura_mission__.name] == []


def run_node(data: Path, moment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AURA_TEST_EFFECTS": str(data / "effects")}
    return subprocess.run(
        [sys.executable, str(NODE), str(data), moment],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("moment", ["started", "told"])
def test_sigkill_between_a_child_and_its_parent_loses_and_repeats_nothing(
    tmp_path: Path, moment: str
) -> None:
    """Killed after the child's start is journaled but before its parent
    heard of it; or after the child completed but before its outcome was
    journaled in the parent. The restart finishes both, every step once."""
    data = tmp_path / "data"
    data.mkdir()
    killed = run_node(data, moment)
    assert killed.returncode == -9, killed.stderr
    with EventStore.open(data / "events", readonly=True) as store:  # killed where meant
        assert not [x for x in logged(store, "p") if isinstance(x, StepDone)]
        kid = [x for x in logged(store, "kid") if isinstance(x, (Start, StepDone))]
        assert len(kid) == (4 if moment == "told" else 1)  # its Start (and 3 step outcomes)
    finished = run_node(data, "none")
    assert finished.returncode == 0, finished.stderr
    assert "RESULT 5" in finished.stdout  # 0 + 1 + 4
    keys = [line.split()[0] for line in (data / "effects").read_text().splitlines()]
    assert sorted(keys) == ["kid/1/0", "kid/1/1", "kid/1/2"]  # each step ran once
    with EventStore.open(data / "events", readonly=True) as store:
        assert [x.seq for x in logged(store, "p") if isinstance(x, StepDone)] == [0]
        assert len([x for x in logged(store, "kid") if isinstance(x, Start)]) == 1


def test_sigkill_after_the_parent_ended_still_cancels_its_child(tmp_path: Path) -> None:
    """Killed after the parent's cancelled end is durable, before the Cancel
    it sends its child is journaled: the child, recovered, checks its parent."""
    data = tmp_path / "data"
    data.mkdir()
    killed = run_node(data, "cancel")
    assert killed.returncode == -9, killed.stderr
    from .children import children_node as node

    with aura.Runtime(data, missions=[node.parent, node.waits_forever]) as rt:
        kid = rt.wait("kid", timeout=30)
        assert (kid.status, kid.error) == (S.CANCELLED, "its parent 'p' cancelled")
        assert rt.get("p").status is S.CANCELLED
