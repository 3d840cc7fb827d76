"""The mission runtime: steps, replay, recovery, failures, cancel, bad input."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S

from ..actors.helpers import Recorder, capture_logger
from . import missions as m


def interrupt_at_gate(tmp_path: Path, gate: str, mission_id: str) -> None:
    """Start waits_at_gate and close the runtime while its second step is
    running: step 1's result is journaled, step 2's never will be."""
    m.GATES[gate] = threading.Event()
    rt = aura.Runtime(tmp_path, missions=[m.waits_at_gate])
    rt.start(m.waits_at_gate, gate, mission_id=mission_id)
    m.wait_call(("gated", f"{mission_id}/1/1"))
    rt.close()


def test_a_mission_runs_its_steps_and_returns(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        handle = rt.start(m.arithmetic, 5, mission_id="a-1")
        assert handle.result(timeout=30) == {"total": 10, "doubled": [20, 2, 4], "key_of": "a-1"}
        view = rt.get("a-1")
        assert view.status is S.COMPLETED and view.steps_completed == 8
    keys = [key for _, key in m.CALLS]
    assert sorted(keys) == sorted(f"a-1/1/{i}" for i in range(8))  # each step ran once


def test_gathered_steps_run_side_by_side(tmp_path: Path) -> None:
    m.BARRIERS["b"] = threading.Barrier(3, timeout=10)  # breaks if they run one by one
    with aura.Runtime(tmp_path, missions=[m.arithmetic, m.meets], max_workers=4) as rt:
        rt.start(m.arithmetic, 1, mission_id="warm").result(timeout=30)  # a step thread idles
        assert rt.start(m.meets, "b", 3, mission_id="meet").result(timeout=30) == [0, 1, 2]


def test_start_is_idempotent_per_mission_id(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic, m.fails]) as rt:
        first = rt.start(m.arithmetic, 3, mission_id="same").result(timeout=30)
        again = rt.start(m.arithmetic, 3, mission_id="same")
        assert again.result(timeout=30) == first
        assert len(m.CALLS) == 6
        with pytest.raises(aura.MissionConflictError):
            rt.start(m.fails, True, mission_id="same")


def test_a_restart_replays_finished_steps_and_reruns_only_the_unfinished_one(
    tmp_path: Path,
) -> None:
    interrupt_at_gate(
        tmp_path, "g", "w-1"
    )  # the gated step never reported back: its result is not journaled
    m.GATES["g"].set()
    m.CALLS.clear()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:
        assert rt.handle("w-1").result(timeout=30) == [3, "passed g", 13]
    # Only the unfinished step ran again, with the same idempotency key.
    assert m.CALLS[0] == ("gated", "w-1/1/1")
    assert Counter(name for name, _ in m.CALLS) == {"gated": 1, "add": 1}


def test_changed_code_on_replay_is_detected_and_the_mission_dead_lettered(
    tmp_path: Path,
) -> None:
    interrupt_at_gate(tmp_path, "nd", "nd-1")
    m.GATES["nd"].set()

    @aura.mission(name=aura.mission_definition(m.waits_at_gate).name)
    async def changed(ctx: aura.MissionContext, gate: str) -> int:
        x: int = await ctx.step(m.add, 100, 200)  # different arguments than the log
        return x

    with aura.Runtime(tmp_path, missions=[changed]) as rt:
        with pytest.raises(aura.MissionDeadError) as info:
            rt.handle("nd-1").result(timeout=30)
        text = str(info.value)
        assert "not deterministic" in text and "command 0" in text
        assert rt.get("nd-1").status is S.DEAD
    # The verdict is journaled: it survives another restart without replay.
    with aura.Runtime(tmp_path, missions=[changed]) as rt:
        assert rt.get("nd-1").status is S.DEAD


def test_a_failed_step_is_a_business_failure_unless_the_code_catches_it(
    tmp_path: Path,
) -> None:
    with aura.Runtime(tmp_path, missions=[m.fails]) as rt:
        with pytest.raises(aura.MissionFailedError, match="no luck") as info:
            rt.start(m.fails, False, mission_id="f-1").result(timeout=30)
        assert info.value.view.status is S.FAILED
        ok = rt.start(m.fails, True, mission_id="f-2").result(timeout=30)
        assert ok == "recovered from ValueError: no luck"
    with aura.Runtime(tmp_path, missions=[m.fails]) as rt:  # failure replays the same
        assert rt.get("f-1").status is S.FAILED
        assert m.CALLS.count(("boom", "f-1/1/0")) == 1


def test_cancel_stops_a_running_mission(tmp_path: Path) -> None:
    m.GATES["c"] = threading.Event()
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:
        handle = rt.start(m.waits_at_gate, "c", mission_id="c-1")
        m.wait_call(("gated", "c-1/1/1"))
        handle.cancel()
        m.GATES["c"].set()  # the late step result is ignored
        with pytest.raises(aura.MissionCancelledError):
            handle.result(timeout=30)
        assert rt.get("c-1").status is S.CANCELLED
        rt.cancel("c-1")  # cancelling again is a no-op


def test_bad_input_gets_one_typed_error_and_writes_nothing(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        with pytest.raises(aura.MissionNotFoundError):
            rt.get("nope")
        with pytest.raises(aura.DefinitionError):
            rt.start(lambda ctx: None)
        with pytest.raises(aura.ArgumentEncodingError):
            rt.start(m.arithmetic, object(), mission_id="enc")
        with pytest.raises(aura.AuraError, match="without '/'"):
            rt.start(m.arithmetic, 1, mission_id="a/b")
        assert rt.store.streams() == []


def test_awaiting_asyncio_in_a_mission_fails_clearly(tmp_path: Path) -> None:
    with (
        aura.Runtime(tmp_path, missions=[m.awaits_asyncio]) as rt,
        pytest.raises(aura.MissionFailedError, match="may only await"),
    ):
        rt.start(m.awaits_asyncio, mission_id="aio").result(timeout=30)


def test_a_mission_without_its_definition_is_dead_lettered_on_recovery(tmp_path: Path) -> None:
    interrupt_at_gate(tmp_path, "u", "u-1")
    with aura.Runtime(tmp_path, missions=[]) as rt:
        view = rt.wait("u-1", timeout=30)
        assert view.status is S.DEAD and "no definition" in view.error


def test_many_missions_in_parallel(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic], max_workers=4) as rt:
        handles = [rt.start(m.arithmetic, i, mission_id=f"p-{i}") for i in range(30)]
        results = [h.result(timeout=60)["total"] for h in handles]
        assert results == [sum(range(i)) for i in range(30)]
        assert len(rt.missions(status=S.COMPLETED)) == 30


def test_a_dead_mission_is_redriven_once_its_definition_is_back(tmp_path: Path) -> None:
    interrupt_at_gate(tmp_path, "rd", "rd-1")
    m.GATES["rd"].set()
    with aura.Runtime(tmp_path, missions=[]) as rt:  # deployed without the definition
        assert rt.wait("rd-1", timeout=30).status is S.DEAD
        assert [v.mission_id for v in rt.dead_letters()] == ["rd-1"]
        rt.start(m.arithmetic, 1, mission_id="other").result(timeout=30)
        with pytest.raises(aura.AuraError, match="not dead"):
            rt.redrive("other")
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:  # fixed deployment
        assert rt.get("rd-1").status is S.DEAD  # still dead until someone redrives it
        handle = rt.redrive("rd-1")
        assert handle.result(timeout=30) == [3, "passed rd", 13]
        assert rt.dead_letters() == []
        # A finished mission reads back without its code being deployed.
        other = rt.get("other")
        assert other.status is S.COMPLETED and other.result["total"] == 0
    with aura.Runtime(tmp_path, missions=[m.waits_at_gate]) as rt:
        assert rt.get("rd-1").status is S.COMPLETED


def test_redriving_still_broken_code_dead_letters_it_again(tmp_path: Path) -> None:
    interrupt_at_gate(tmp_path, "rb", "rb-1")
    with aura.Runtime(tmp_path, missions=[]) as rt:
        rt.wait("rb-1", timeout=30)
        handle = rt.redrive("rb-1")
        with pytest.raises(aura.MissionDeadError, match="no definition"):
            handle.result(timeout=30)


def test_an_undecorated_function_cannot_be_a_step(tmp_path: Path) -> None:
    with (
        aura.Runtime(tmp_path, missions=[m.calls_undecorated]) as rt,
        pytest.raises(aura.MissionFailedError, match="not a step"),
    ):
        rt.start(m.calls_undecorated, mission_id="u").result(timeout=30)


def test_every_step_and_transition_is_a_structured_event(tmp_path: Path) -> None:
    log = Recorder()
    with aura.Runtime(tmp_path, missions=[m.retrying], logger=capture_logger(log)) as rt:
        rt.start(m.retrying, 1, mission_id="ev").result(timeout=30)
    mine = [e for e in log.events if e.get("mission_id") == "ev"]
    assert [(e["event"], e.get("attempt"), e.get("status")) for e in mine] == [
        ("mission.replay_started", None, None),  # a new actor: nothing to replay
        ("mission.replay_finished", None, "pending"),
        ("mission.transition", None, "running"),
        ("step.scheduled", 1, None),
        ("step.retrying", 1, None),
        ("step.scheduled", 2, None),
        ("step.completed", 2, None),
        ("mission.transition", None, "completed"),
    ]
    assert all(e["run"] == 1 and "seq" in e for e in mine[1:])
    assert mine[4]["error"].startswith("ConnectionError")


def test_a_waiting_mission_passivates_and_its_signal_wakes_it(tmp_path: Path) -> None:
    log = Recorder()
    rt = aura.Runtime(
        tmp_path, missions=[m.approval], logger=capture_logger(log), passivate_after=0.05
    )
    with rt:
        handle = rt.start(m.approval, None, mission_id="pz")
        log.wait_for(
            lambda ev: any(
                e.get("actor_id") == "mission/pz" and e.get("state") == "passivated" for e in ev
            )
        )
        assert rt.system.state("mission/pz").value == "passivated"  # no thread held
        rt.signal("pz", "approve", "ok")  # re-activates it by replay
        rt.signal("pz", "note", "n")
        assert handle.result(timeout=30) == {"draft": 2, "verdict": "ok", "note": "n"}


def test_a_mission_id_that_is_not_a_string_is_not_found(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        for bad in (None, 42, b"x"):
            with pytest.raises(aura.MissionNotFoundError):
                rt.get(bad)  # type: ignore[arg-type]
            with pytest.raises(aura.MissionNotFoundError):
                rt.signal(bad, "approve", True)  # type: ignore[arg-type]


def test_users_add_their_own_supervised_actors_to_the_runtime_tree(tmp_path: Path) -> None:
    from actors import ChildSpec, DurableActor

    class Tally(DurableActor):
        def initial_state(self) -> int:
            return 0

        def handle(self, message: int) -> int:
            self.state += message
            return int(self.state)

    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        rt.system.spawn(ChildSpec("app/tally", Tally))  # same tree, same durable log
        assert rt.system.ask("app/tally", 5) == 5
        assert rt.start(m.arithmetic, 2, mission_id="beside").result(timeout=30)["total"] == 1
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        rt.system.spawn(ChildSpec("app/tally", Tally))
        assert rt.system.ask("app/tally", 1) == 6  # recovered from the runtime's log


def test_a_step_raising_a_base_exception_fails_instead_of_hanging(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.base_exception_step]) as rt:
        handle = rt.start(m.base_exception_step, mission_id="be")
        assert handle.result(timeout=10) == "caught SystemExit"
    assert m.CALLS == [("exits", "be/1/0")]  # not retried: not an Exception
