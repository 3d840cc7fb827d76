"""OTP's supervisor rules, one example each (issue: supervision like OTP).

The random walk against a reference model is in ``test_otp_model.py``;
these pin the cases a reader checks first. Clocks are injected, children
that must report before the next call are threadless, nothing sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import (
    ActorNotFoundError,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    AlreadyPresentError,
    ChildRunningError,
    ChildSpec,
    DuplicateActorError,
    DurableActor,
    DynamicSupervisor,
    LifecycleState,
    MaxChildrenError,
    RestartLimitError,
    Supervisor,
    SupervisorCallError,
)
from eventstore import CorruptionError, EventStore, NewEvent

from .helpers import Flaky, Probe, Recorder, capture_logger


class World:
    """One system with an injected clock, a supervisor 'sup' and its events."""

    def __init__(self, **sup: Any) -> None:
        self.now = [0.0]
        self.rec = Recorder()
        self.log = Recorder()
        self.fails: dict[str, int] = {}
        self.escalations = Recorder()
        self.system = ActorSystem(
            "otp",
            clock=lambda: self.now[0],
            logger=capture_logger(self.log),
            on_escalation=self.escalations.add,
            max_restarts=0,
        )
        children = sup.pop("children", ())
        factory = sup.pop("factory", Supervisor)
        restart = sup.pop("restart", "permanent")  # past its intensity the root gives up
        self.system.spawn(
            ChildSpec(
                "sup", lambda: factory(list(children), **sup), shutdown="infinity", restart=restart
            )
        )

    def child(self, name: str, **kw: Any) -> ChildSpec:
        rec, fails = self.rec, self.fails
        kw.setdefault("threaded", False)
        return ChildSpec(name, lambda: Flaky(name, rec, fails), **kw)

    def statuses(self) -> dict[str, str]:
        return {c.id: c.status for c in self.system.which_children("sup")}

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.log.events if e.get("event") == name]

    def close(self) -> None:
        self.system.shutdown()


@pytest.fixture
def world_factory() -> Any:
    worlds: list[World] = []

    def make(**sup: Any) -> World:
        w = World(**sup)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()


def with_children(w: World, names: str, **kw: Any) -> None:
    for n in names:
        w.system.start_child("sup", w.child(n, **kw))


# ---------------------------------------------------------------- 1. intensity


def test_a_restart_exactly_period_seconds_ago_still_counts(world_factory: Any) -> None:
    w = world_factory(max_restarts=1, period=5.0)
    with_children(w, "a")
    w.system.tell("a", "crash")  # restart 1 at t=0 (the call below waits for it)
    assert w.system.count_children("sup").restarts_in_window == 1
    w.now[0] = 5.0  # t=0 is on the boundary of [now - period, now]: inside
    assert w.system.count_children("sup").restarts_in_window == 1
    w.system.tell("a", "crash")  # two restarts in the window > max_restarts=1
    w.escalations.wait_for(lambda ev: len(ev) == 1)
    assert isinstance(w.escalations.events[0].error, RestartLimitError)
    assert [e["supervisor"] for e in w.events("supervisor.gave_up")] == ["sup", "root"]


def test_a_restart_just_older_than_the_window_no_longer_counts(world_factory: Any) -> None:
    w = world_factory(max_restarts=1, period=5.0)
    with_children(w, "a")
    w.system.tell("a", "crash")
    assert w.system.count_children("sup").restarts_in_window == 1  # handled at t=0
    w.now[0] = 5.0 + 1e-6
    assert w.system.count_children("sup").restarts_in_window == 0
    w.system.tell("a", "crash")
    assert w.statuses() == {"a": "running"}
    assert w.system.count_children("sup").restarts_in_window == 1
    assert w.events("supervisor.gave_up") == []


# ---------------------------------------------------------------- 2. failed group restart


def test_a_failed_start_during_one_for_all_restarts_the_whole_group_again(
    world_factory: Any,
) -> None:
    w = world_factory(strategy="one_for_all", max_restarts=5, period=60)
    with_children(w, "abc")
    w.rec.clear()
    w.fails["b"] = 1
    w.system.tell("c", "crash")
    assert w.statuses() == {"a": "running", "b": "running", "c": "running"}
    assert w.rec.events == [
        ("stop", "b"),
        ("stop", "a"),
        ("start", "a"),
        ("fail", "b"),  # b failed: a (already up again) is stopped, all start again
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    ]
    assert w.system.count_children("sup").restarts_in_window == 2  # each attempt counted


def test_a_failed_start_during_rest_for_one_restarts_from_the_failed_child(
    world_factory: Any,
) -> None:
    w = world_factory(strategy="rest_for_one", max_restarts=5, period=60)
    with_children(w, "abcd")
    w.rec.clear()
    w.fails["c"] = 1
    w.system.tell("b", "crash")
    assert set(w.statuses().values()) == {"running"}
    assert w.rec.events == [
        ("stop", "d"),
        ("stop", "c"),
        ("start", "b"),
        ("fail", "c"),
        ("start", "c"),  # the retry's group is c and those after it: b stays up
        ("start", "d"),
    ]
    assert w.system.count_children("sup").restarts_in_window == 2


def test_a_child_that_never_starts_again_exhausts_the_intensity(world_factory: Any) -> None:
    w = world_factory(strategy="one_for_all", max_restarts=3, period=60)
    with_children(w, "ab")
    w.fails["a"] = 100
    w.system.tell("b", "crash")
    w.escalations.wait_for(lambda ev: len(ev) == 1)
    assert w.rec.events.count(("fail", "a")) == 3  # restarts 1..3 failed; the 4th gives up


# ---------------------------------------------------------------- 3. restart types


def test_temporary_siblings_are_removed_not_restarted_by_a_group_restart(
    world_factory: Any,
) -> None:
    w = world_factory(strategy="one_for_all", max_restarts=5, period=60)
    w.system.start_child("sup", w.child("perm"))
    w.system.start_child("sup", w.child("temp", restart="temporary"))
    w.system.start_child("sup", w.child("trans", restart="transient"))
    w.rec.clear()
    w.system.tell("perm", "crash")
    assert w.statuses() == {"perm": "running", "trans": "running"}
    assert ("start", "temp") not in w.rec.events and ("stop", "temp") in w.rec.events
    with pytest.raises(ActorNotFoundError):
        w.system.ask("temp", "x")


def test_transient_children_restart_only_after_an_abnormal_exit(world_factory: Any) -> None:
    w = world_factory(max_restarts=5, period=60)
    with_children(w, "t", restart="transient")
    w.system.tell("t", "crash")
    assert w.statuses() == {"t": "running"}
    w.system.tell("t", "exit")
    assert w.statuses() == {"t": "terminated"}
    with pytest.raises(ActorStoppedError):
        w.system.ask("t", "x")


# ---------------------------------------------------------------- 4. permanent normal exit


@pytest.mark.parametrize(
    ("strategy", "restarted"), [("one_for_all", ["a", "b", "c"]), ("rest_for_one", ["b", "c"])]
)
def test_a_permanent_child_exiting_normally_is_restarted_by_the_strategy(
    world_factory: Any, strategy: str, restarted: list[str]
) -> None:
    w = world_factory(strategy=strategy, max_restarts=5, period=60)
    with_children(w, "abc")
    w.rec.clear()
    w.system.tell("b", "exit")
    assert w.statuses() == {"a": "running", "b": "running", "c": "running"}
    assert [n for kind, n in w.rec.events if kind == "start"] == restarted
    assert w.system.count_children("sup").restarts_in_window == 1
    assert w.events("actor.crashed") == []  # a normal exit is not a crash


# ---------------------------------------------------------------- 5. first start fails


def test_a_child_whose_first_start_fails_leaves_its_id_free(world_factory: Any) -> None:
    w = world_factory()
    w.fails["a"] = 1
    with pytest.raises(ActorStartError, match="refuses to start"):
        w.system.start_child("sup", w.child("a", restart="permanent"))
    assert w.statuses() == {}
    assert not w.system.exists("a")
    w.system.start_child("sup", w.child("a"))  # the same id again, now it starts
    assert w.statuses() == {"a": "running"}
    assert w.system.count_children("sup").restarts_in_window == 0  # not a restart


# ---------------------------------------------------------------- 6. undecodable journal


class Count(DurableActor):
    journal_type: Any = int
    state_type: Any = int

    def initial_state(self) -> int:
        return 0

    def handle(self, message: Any) -> Any:
        self.state += message
        return self.state


def test_recovery_from_an_undecodable_record_fails_the_start_naming_it(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "log") as store:
        with ActorSystem("t", store=store) as system:
            system.spawn(ChildSpec("n", Count))
            assert system.ask("n", 2) == 2
        store.append("n", [NewEvent("message", msgspec.msgpack.encode("not an int"))])
        with ActorSystem("t", store=store) as system:
            with pytest.raises(ActorStartError) as info:
                system.spawn(ChildSpec("n", Count))
            cause = info.value.cause
            assert isinstance(cause, CorruptionError)
            assert "stream 'n' version 2" in str(cause)
            assert not system.exists("n")  # no actor with a state that differs from its log
        assert store.version("n") == 2  # the record was neither skipped nor removed


# ---------------------------------------------------------------- 7. shutdown


class Stubborn(Probe):
    """Its stopped() blocks until the gate opens."""

    def __init__(self, name: str, rec: Recorder, gate: threading.Event) -> None:
        super().__init__(name, rec, {})
        self.gate = gate

    def stopped(self) -> None:
        self.gate.wait(30)
        super().stopped()


@pytest.mark.parametrize("policy", ["brutal_kill", 0.05])
def test_brutal_kill_and_an_overrun_timeout_kill_the_child(policy: Any) -> None:
    rec, log, gate = Recorder(), Recorder(), threading.Event()
    try:
        with ActorSystem("t", logger=capture_logger(log)) as system:
            system.spawn(ChildSpec("first", lambda: Probe("first", rec, {})))
            system.spawn(ChildSpec("s", lambda: Stubborn("s", rec, gate), shutdown=policy))
        killed = [e for e in log.events if e.get("event") == "actor.killed"]
        assert [e["actor_id"] for e in killed] == ["s"]
        assert ("stop", "s") not in rec.events
        assert ("stop", "first") in rec.events  # the rest still stop in order
    finally:
        gate.set()


def test_infinity_waits_for_the_child_to_finish_stopping() -> None:
    rec, gate = Recorder(), threading.Event()
    system = ActorSystem("t")
    system.spawn(ChildSpec("s", lambda: Stubborn("s", rec, gate), shutdown="infinity"))
    stopper = threading.Thread(target=system.shutdown)
    stopper.start()
    rec.wait_for(lambda ev: True)
    assert stopper.is_alive()  # still waiting: nothing kills an 'infinity' child
    gate.set()
    stopper.join(30)
    assert not stopper.is_alive() and ("stop", "s") in rec.events


def test_children_stop_in_reverse_start_order(world_factory: Any) -> None:
    w = world_factory()
    with_children(w, "abcd")
    w.rec.clear()
    w.system.stop("sup")
    assert w.rec.events == [("stop", n) for n in "dcba"]


def test_shutdown_exits_are_not_crashes_and_do_not_restart_transients(world_factory: Any) -> None:
    w = world_factory()
    with_children(w, "t", restart="transient")
    w.system.tell("t", "shutdown")  # raises Shutdown({'drained': True})
    assert w.statuses() == {"t": "terminated"}
    assert w.events("actor.crashed") == []
    exited = w.events("actor.exited")
    assert [e["actor_id"] for e in exited] == ["t"] and "drained" in exited[0]["reason"]


def test_a_permanent_child_exiting_with_shutdown_is_restarted(world_factory: Any) -> None:
    w = world_factory(max_restarts=5, period=60)
    with_children(w, "p")
    w.system.tell("p", "shutdown")
    assert w.statuses() == {"p": "running"}
    assert w.system.ask("p", "x")[0] == "p"


# ---------------------------------------------------------------- OTP calls


def test_terminate_restart_and_delete_follow_otps_rules(world_factory: Any) -> None:
    w = world_factory()
    with_children(w, "ab")
    w.system.start_child("sup", w.child("temp", restart="temporary"))
    with pytest.raises(ChildRunningError, match="running"):
        w.system.restart_child("sup", "a")
    with pytest.raises(ChildRunningError):
        w.system.delete_child("sup", "a")
    w.system.terminate_child("sup", "a")
    assert w.statuses() == {"a": "terminated", "b": "running", "temp": "running"}
    w.system.terminate_child("sup", "a")  # terminating a terminated child is fine
    with pytest.raises(AlreadyPresentError):
        w.system.start_child("sup", w.child("a"))
    with pytest.raises(DuplicateActorError):
        w.system.start_child("sup", w.child("b"))
    w.system.restart_child("sup", "a")
    assert w.statuses()["a"] == "running"
    w.system.terminate_child("sup", "temp")  # temporary: removed, not kept
    assert "temp" not in w.statuses()
    w.system.terminate_child("sup", "b")
    w.system.delete_child("sup", "b")
    assert list(w.statuses()) == ["a"]
    for call in (w.system.terminate_child, w.system.restart_child, w.system.delete_child):
        with pytest.raises(ActorNotFoundError):
            call("sup", "nobody")
    with pytest.raises(SupervisorCallError, match="not a supervisor"):
        w.system.which_children("a")


def test_a_failed_restart_child_leaves_it_terminated_and_uncounted(world_factory: Any) -> None:
    w = world_factory()
    with_children(w, "a")
    w.system.terminate_child("sup", "a")
    w.fails["a"] = 1
    with pytest.raises(ActorStartError):
        w.system.restart_child("sup", "a")
    assert w.statuses() == {"a": "terminated"}
    assert w.system.count_children("sup").restarts_in_window == 0


def test_which_and_count_children_describe_the_tree(world_factory: Any) -> None:
    w = world_factory()
    with_children(w, "a")
    w.system.start_child(
        "sup", ChildSpec("inner", lambda: Supervisor([w.child("x")]), shutdown="infinity")
    )
    infos = w.system.which_children("sup")
    assert [(i.id, i.kind, i.status, i.state) for i in infos] == [
        ("a", "worker", "running", LifecycleState.RUNNING),
        ("inner", "supervisor", "running", LifecycleState.RUNNING),
    ]
    counts = w.system.count_children("sup")
    assert (counts.specs, counts.active, counts.supervisors, counts.workers) == (2, 2, 1, 1)
    assert [i.id for i in w.system.which_children("inner")] == ["x"]


# ---------------------------------------------------------------- dynamic supervisors


def test_a_dynamic_supervisor_starts_children_from_its_template(world_factory: Any) -> None:
    rec = Recorder()

    def template(child_id: str, greeting: str) -> ChildSpec:
        rec.add((child_id, greeting))
        return ChildSpec(child_id, lambda: Probe(child_id, rec, {}), threaded=False)

    w = world_factory(
        factory=lambda _children, **kw: DynamicSupervisor(template, **kw), max_children=2
    )
    w.system.start_child("sup", "m1", "hello")
    w.system.start_child("sup", "m2", "hi")
    assert ("m1", "hello") in rec.events and w.system.ask("m2", "x")[0] == "m2"
    with pytest.raises(MaxChildrenError):
        w.system.start_child("sup", "m3", "hey")
    with pytest.raises(ActorStartError, match="TypeError"):
        w.system.start_child("sup", "m3")  # a bad argument list is the caller's error
    with pytest.raises(SupervisorCallError, match="dynamic"):
        w.system.restart_child("sup", "m1")
    with pytest.raises(SupervisorCallError):
        w.system.delete_child("sup", "m1")
    w.system.terminate_child("sup", "m1")  # removes it: no spec is kept
    assert [i.id for i in w.system.which_children("sup")] == ["m2"]
    w.system.start_child("sup", "m3", "hey")  # room again
    assert w.system.count_children("sup").specs == 2


def test_a_dynamic_supervisors_ended_children_are_removed(world_factory: Any) -> None:
    w = world_factory(factory=lambda _c, **kw: DynamicSupervisor(**kw))
    w.system.start_child("sup", w.child("t", restart="transient"))
    w.system.start_child("sup", w.child("p"))
    w.system.tell("t", "exit")
    w.system.tell("p", "crash")
    assert w.statuses() == {"p": "running"}
    with pytest.raises(SupervisorCallError, match="no child template"):
        w.system.start_child("sup", "x")


# ---------------------------------------------------------------- auto_shutdown


def test_significant_child_combinations_are_checked() -> None:
    with pytest.raises(ValueError, match="significant"):
        ChildSpec("p", lambda: Probe("p", Recorder(), {}), significant=True)
    with pytest.raises(ValueError, match="bad_combination"):
        Supervisor(
            [
                ChildSpec(
                    "t", lambda: Probe("t", Recorder(), {}), restart="transient", significant=True
                )
            ]
        )


def test_any_significant_shuts_the_supervisor_down_when_one_exits(world_factory: Any) -> None:
    w = world_factory(auto_shutdown="any_significant", restart="transient")
    with_children(w, "x")
    w.system.start_child("sup", w.child("s", restart="transient", significant=True))
    w.rec.clear()
    w.system.tell("s", "exit")
    w.log.wait_for(
        lambda ev: any(e.get("actor_id") == "sup" and e.get("event") == "actor.exited" for e in ev)
    )
    assert ("stop", "x") in w.rec.events  # its other children were stopped with it
    assert w.escalations.events == []  # a shutdown, not a failure
    assert [(c.id, c.status) for c in w.system.which_children()] == [("sup", "terminated")]
    assert "auto_shutdown" in w.events("actor.exited")[-1]["reason"]


def test_all_significant_waits_for_the_last_significant_child(world_factory: Any) -> None:
    w = world_factory(auto_shutdown="all_significant", restart="transient")
    for n in "st":
        w.system.start_child("sup", w.child(n, restart="temporary", significant=True))
    w.system.tell("s", "exit")
    assert w.statuses() == {"t": "running"}  # one significant child is still up
    w.system.tell("t", "crash")  # an abnormal exit of a temporary child: not restarted
    w.log.wait_for(
        lambda ev: any(e.get("actor_id") == "sup" and e.get("event") == "actor.exited" for e in ev)
    )
    assert [(c.id, c.status) for c in w.system.which_children()] == [("sup", "terminated")]


# ---------------------------------------------------------------- self-passivation


class Tally(DurableActor):
    journal_type: Any = str
    state_type: Any = list[str]

    def initial_state(self) -> list[str]:
        return []

    def handle(self, message: Any) -> Any:
        self.state.append(message)
        if message == "nap":
            self.passivate()
        return list(self.state)


def test_an_actor_can_passivate_itself_and_wakes_on_its_next_message(tmp_path: Path) -> None:
    log = Recorder()
    with (
        EventStore.open(tmp_path / "log") as store,
        ActorSystem("t", store=store, logger=capture_logger(log)) as system,
    ):
        system.spawn(ChildSpec("m", Tally, threaded=False))
        assert system.ask("m", "nap") == ["nap"]
        assert system.state("m") is LifecycleState.PASSIVATED
        assert [c.status for c in system.which_children()] == ["passivated"]
        assert system.ask("m", "wake") == ["nap", "wake"]  # state recovered from the log
        assert system.state("m") is LifecycleState.RUNNING
        assert not [e for e in log.events if e.get("event") in ("actor.crashed", "actor.exited")]


# ---------------------------------------------------------------- escalation


def test_escalation_climbs_the_tree_to_the_root(world_factory: Any) -> None:
    w = world_factory(max_restarts=0, period=60)
    w.system.start_child(
        "sup",
        ChildSpec(
            "mid",
            lambda: Supervisor([w.child("leaf")], max_restarts=0, period=60),
            shutdown="infinity",
        ),
    )
    w.system.tell("leaf", "crash")  # mid gives up, sup gives up, the root gives up
    w.escalations.wait_for(lambda ev: len(ev) == 1)
    gave_up = [e["supervisor"] for e in w.events("supervisor.gave_up")]
    assert gave_up == ["mid", "sup", "root"]
