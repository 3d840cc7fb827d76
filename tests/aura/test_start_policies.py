"""Starting an id that exists: idempotent with the same input (nothing
journaled), a typed conflict with other input, a new run under an id-reuse
policy; terminate; and status waiters woken by every status change."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import aura
from aura import MissionStatus as S
from eventstore import EventStore

from . import missions as m


def log_kinds(rt: aura.Runtime, mission_id: str) -> list[str]:
    return [e.kind for e in rt.store.read(f"mission/{mission_id}", archived=True)]


def test_the_same_start_again_is_idempotent_and_journals_nothing(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        first = rt.start(m.arithmetic, 3, mission_id="a").result(timeout=30)
        before = log_kinds(rt, "a")
        again = rt.start(m.arithmetic, 3, mission_id="a")
        assert again.result(timeout=30) == first
        assert log_kinds(rt, "a") == before  # no start, no transition


def test_other_input_for_an_existing_id_is_a_conflict_naming_both(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic, m.sleeper]) as rt:
        rt.start(m.arithmetic, 3, mission_id="a").result(timeout=30)
        before = log_kinds(rt, "a")
        with pytest.raises(aura.MissionConflictError) as caught:
            rt.start(m.arithmetic, 4, mission_id="a")
        err = caught.value
        assert err.mission_id == "a"
        assert err.existing[0] == err.requested[0] == "tests.aura.missions:arithmetic"
        assert err.existing[1] != err.requested[1]
        assert err.existing[1] in str(err) and err.requested[1] in str(err)
        with pytest.raises(aura.MissionConflictError, match="sleeper"):
            rt.start(m.sleeper, 1.0, mission_id="a")  # another definition
        assert log_kinds(rt, "a") == before
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:  # the digest survives a restart
        with pytest.raises(aura.MissionConflictError):
            rt.start(m.arithmetic, 5, mission_id="a")
        assert rt.start(m.arithmetic, 3, mission_id="a").result(timeout=30)["total"] == 3


def test_a_running_mission_is_never_restarted_whatever_the_policy(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="w")
        rt.wait("w", 30, until={S.WAITING})
        assert rt.start(m.approval, None, mission_id="w", reuse="always").mission_id == "w"
        with pytest.raises(aura.MissionConflictError):
            rt.start(m.approval, 5.0, mission_id="w", reuse="always")
        assert rt.get("w").run == 1
        with pytest.raises(aura.AuraError, match="reuse= must be one of"):
            rt.start(m.approval, None, mission_id="w", reuse="sometimes")


def test_reuse_always_begins_a_new_run_and_keeps_the_old_history(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        assert rt.start(m.arithmetic, 3, mission_id="r").result(timeout=30)["total"] == 3
        old = log_kinds(rt, "r")
        h = rt.start(m.arithmetic, 4, mission_id="r", reuse="always")
        assert h.result(timeout=30)["total"] == 6
        view = rt.get("r")
        assert view.run == 2 and view.status is S.COMPLETED
        assert log_kinds(rt, "r")[: len(old)] == old  # the first run is still there
        assert rt.verify_audit().ok
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:  # recovery starts at run 2
        view = rt.get("r")
        assert (view.run, view.result["total"]) == (2, 6)


def test_reuse_if_failed_only_after_a_failure(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.fails, m.arithmetic]) as rt:
        rt.start(m.arithmetic, 2, mission_id="ok").result(timeout=30)
        with pytest.raises(aura.MissionConflictError):
            rt.start(m.arithmetic, 9, mission_id="ok", reuse="if_failed")
        with pytest.raises(aura.MissionFailedError):
            rt.start(m.fails, False, mission_id="bad").result(timeout=30)
        retry = rt.start(m.fails, True, mission_id="bad", reuse="if_failed")
        assert retry.result(timeout=30).startswith("recovered from")
        assert rt.get("bad").run == 2


class NoSnapshots:
    """The store as a crash right after a Start leaves it: the snapshot a
    new run saves once its Start is durable never gets written."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def save_snapshot(self, stream: str, version: int, data: bytes) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_reuse_survives_a_crash_between_the_start_and_its_snapshot(tmp_path: Path) -> None:
    """A new run's Start is journaled; recovery rebuilds the run from the log
    alone when its snapshot is missing."""
    with aura.Runtime(tmp_path, missions=[m.approval], store_wrapper=NoSnapshots) as rt:
        rt.start(m.approval, 0.01, mission_id="s").result(timeout=30)
        rt.start(m.approval, None, mission_id="s", reuse="always")
        rt.wait("s", 30, until={S.WAITING})
    with EventStore.open(tmp_path / "events", readonly=True) as store:
        assert store.load_snapshot("mission/s") is None
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        view = rt.get("s")
        assert (view.run, view.status) == (2, S.WAITING)
        rt.signal("s", "approve", "yes")
        rt.signal("s", "note", "n")
        assert rt.handle("s").result(timeout=30)["verdict"] == "yes"


def test_terminate_ends_now_without_compensating(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        h = rt.start(m.trip, True, mission_id="t")
        rt.wait("t", 30, until={S.WAITING})
        rt.terminate("t", "stuck")
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)
        view = rt.get("t")
        assert view.status is S.CANCELLED and "terminated: stuck" in view.error
        assert m.SAGA == ["book flight", "book hotel"]  # nothing was undone
        with pytest.raises(aura.AuraError, match="nothing to terminate"):
            rt.terminate("t")
        assert rt.verify_audit().ok


def test_terminate_stops_a_compensation_that_hangs(tmp_path: Path) -> None:
    m.GATES["compensation"] = threading.Event()  # the first undo hangs
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        h = rt.start(m.trip, True, mission_id="t")
        rt.wait("t", 30, until={S.WAITING})
        rt.cancel("t")
        rt.wait("t", 30, until={S.COMPENSATING})
        rt.terminate("t")
        with pytest.raises(aura.MissionCancelledError):
            h.result(timeout=30)
        m.GATES["compensation"].set()
    with aura.Runtime(tmp_path, missions=[m.trip]) as rt:
        assert rt.get("t").status is S.CANCELLED


def test_wait_until_dead_wakes_when_the_supervisor_gives_up(tmp_path: Path) -> None:
    from actors import FaultInjector

    faults = FaultInjector(
        lambda point, actor_id, hit: point == "after_append" and actor_id == "mission/loop"
    )
    with aura.Runtime(tmp_path, missions=[m.arithmetic], faults=faults) as rt:
        rt.start(m.arithmetic, 3, mission_id="loop")
        view = rt.wait("loop", timeout=60, until={S.DEAD})  # not the whole timeout
        assert view.status is S.DEAD


@pytest.mark.parametrize(
    ("until", "drive"),
    [
        ({S.WAITING}, lambda rt: None),
        ({S.COMPLETED}, lambda rt: (rt.signal("w", "approve", "y"), rt.signal("w", "note", "n"))),
        ({S.CANCELLED}, lambda rt: rt.cancel("w")),
    ],
)
def test_wait_until_sees_each_status(tmp_path: Path, until: set[S], drive: object) -> None:
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="w")
        rt.wait("w", 30, until={S.WAITING})
        seen: list[S] = []
        waiter = threading.Thread(target=lambda: seen.append(rt.wait("w", 60, until=until).status))
        waiter.start()
        drive(rt)  # type: ignore[operator]
        waiter.join(60)
        assert seen and seen[0] in until


def test_wait_until_failed_and_running(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.fails, m.waits_at_gate]) as rt:
        rt.start(m.fails, False, mission_id="f")
        assert rt.wait("f", 30, until={S.FAILED}).status is S.FAILED
        m.GATES["g"] = threading.Event()
        rt.start(m.waits_at_gate, "g", mission_id="r")
        assert rt.wait("r", 30, until={S.RUNNING}).status is S.RUNNING
        m.GATES["g"].set()
        assert rt.wait("r", 30, until={S.COMPLETED}).status is S.COMPLETED


def test_the_cli_refuses_a_conflicting_start_and_terminates(tmp_path: Path) -> None:
    from .processes import cli

    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:
        rt.start(m.approval, None, mission_id="c")
        rt.wait("c", 30, until={S.WAITING})
    conflict = cli(tmp_path, "run", "tests.aura.missions:approval", "--input", "[5]", "--id", "c")
    assert conflict.returncode == 1
    assert conflict.stderr.startswith("aura: error: mission id 'c' is waiting")
    assert conflict.stderr.count("\n") == 1  # one clear line
    done = cli(tmp_path, "terminate", "c", "--reason", "stuck")
    assert done.returncode == 0, done.stderr
    with aura.Runtime(tmp_path, missions=[m.approval]) as rt:  # delivers the queued terminate
        view = rt.wait("c", 30, until={S.CANCELLED})
        assert "terminated: stuck" in view.error
