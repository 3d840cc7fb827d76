"""OTP semantics: strategies, restart types, intensity, escalation, order."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from actors import (
    ActorCrashedError,
    ActorNotFoundError,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    Backoff,
    ChildSpec,
    DuplicateActorError,
    RestartLimitError,
    Supervisor,
)

from .helpers import FailingStart, Probe, Recorder, capture_logger


def probe(name: str, rec: Recorder, counts: dict[str, int], **kw: Any) -> ChildSpec:
    return ChildSpec(name, lambda: Probe(name, rec, counts), **kw)


def tree(strategy: str, rec: Recorder, counts: dict[str, int], **kw: Any) -> ChildSpec:
    children = [probe(n, rec, counts) for n in ("a", "b", "c")]
    return ChildSpec(
        "sup",
        lambda: Supervisor(children, strategy=strategy, max_restarts=10, period=60, **kw),  # type: ignore[arg-type]
    )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def counts() -> dict[str, int]:
    return {}


@pytest.fixture
def system() -> Any:
    s = ActorSystem("test")
    yield s
    s.shutdown()


def test_children_start_in_order_and_stop_in_reverse(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(tree("one_for_one", rec, counts))
    assert rec.events == [("start", "a"), ("start", "b"), ("start", "c")]
    assert [cid for cid, _ in system.children("sup")] == ["a", "b", "c"]
    rec.clear()
    system.shutdown()
    assert rec.events == [("stop", "c"), ("stop", "b"), ("stop", "a")]


def test_one_for_one_restarts_only_the_failed_child(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(tree("one_for_one", rec, counts))
    rec.clear()
    with pytest.raises(ActorCrashedError) as info:
        system.ask("b", "crash")
    assert info.value.journaled is False
    assert system.ask("b", "x") == ("b", 2, 1)
    assert system.ask("a", "x") == ("a", 1, 1)
    assert system.ask("c", "x") == ("c", 1, 1)
    assert rec.events == [("start", "b")]


def test_one_for_all_restarts_everyone_stopping_in_reverse(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(tree("one_for_all", rec, counts))
    rec.clear()
    system.tell("b", "crash")
    rec.wait_for(lambda ev: ev.count(("start", "c")) == 1)
    assert rec.events == [
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
    ]
    assert [system.ask(n, "x")[1] for n in "abc"] == [2, 2, 2]


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(tree("rest_for_one", rec, counts))
    rec.clear()
    system.tell("b", "crash")
    rec.wait_for(lambda ev: ("start", "c") in ev)
    assert rec.events == [("stop", "c"), ("start", "b"), ("start", "c")]
    assert [system.ask(n, "x")[1] for n in "abc"] == [1, 2, 2]


def test_restart_types(rec: Recorder, counts: dict[str, int]) -> None:
    log = Recorder()

    def removed(actor_id: str) -> Any:
        return lambda ev: any(
            e.get("event") == "actor.removed" and e["actor_id"] == actor_id for e in ev
        )

    with ActorSystem("t", logger=capture_logger(log)) as system:
        system.spawn(probe("perm", rec, counts, restart="permanent"))
        system.spawn(probe("trans", rec, counts, restart="transient"))
        system.spawn(probe("temp", rec, counts, restart="temporary"))
        for name in ("perm", "trans", "temp"):
            with pytest.raises(ActorCrashedError):
                system.ask(name, "crash")
        assert system.ask("perm", "x")[1] == 2
        assert system.ask("trans", "x")[1] == 2
        log.wait_for(removed("temp"))
        with pytest.raises(ActorNotFoundError):
            system.ask("temp", "x")
        # A normal exit: permanent children come back; transient ones do not,
        # and stay terminated (their spec kept, as OTP keeps it).
        system.tell("perm", "exit")
        system.tell("trans", "exit")
        log.wait_for(
            lambda ev: any(
                e.get("event") == "actor.exited" and e["actor_id"] == "trans" for e in ev
            )
        )
        rec.wait_for(lambda ev: ev.count(("start", "perm")) == 3)
        assert system.ask("perm", "x")[1] == 3
        status = {c.id: c.status for c in system.which_children()}
        assert status == {"perm": "running", "trans": "terminated"}
        with pytest.raises(ActorStoppedError):
            system.ask("trans", "x")


def test_restart_intensity_escalates_to_the_parent(rec: Recorder, counts: dict[str, int]) -> None:
    log = Recorder()
    with ActorSystem("t", logger=capture_logger(log), max_restarts=5, period=60) as system:
        inner = [probe("w", rec, counts)]
        system.spawn(ChildSpec("sup", lambda: Supervisor(inner, max_restarts=2, period=60)))
        for _ in range(2):
            with pytest.raises(ActorCrashedError):
                system.ask("w", "crash")
        assert system.ask("w", "x")[1] == 3  # restarted twice, still under the limit
        with pytest.raises(ActorCrashedError):
            system.ask("w", "crash")  # third crash in the window: the supervisor gives up
        # The root restarts the supervisor, which starts a fresh child.
        rec.wait_for(lambda ev: ev.count(("start", "w")) == 4)
        assert system.ask("w", "x")[1] == 4
        failed = [
            e for e in log.events if e.get("actor_id") == "sup" and e.get("state") == "failed"
        ]
        assert failed and "gave up" in failed[0]["reason"]


def test_restarts_outside_the_window_do_not_escalate(rec: Recorder, counts: dict[str, int]) -> None:
    now = [0.0]
    with ActorSystem("t", clock=lambda: now[0]) as system:
        system.spawn(
            ChildSpec(
                "sup", lambda: Supervisor([probe("w", rec, counts)], max_restarts=1, period=5)
            )
        )
        for i in range(4):
            now[0] += 10  # each crash falls in a fresh window
            with pytest.raises(ActorCrashedError):
                system.ask("w", "crash")
            assert system.ask("w", "x")[1] == i + 2
        assert counts["w"] == 5


def test_root_escalation_is_reported(rec: Recorder, counts: dict[str, int]) -> None:
    seen = Recorder()
    with ActorSystem("t", max_restarts=0, on_escalation=seen.add) as system:
        system.spawn(probe("w", rec, counts))
        system.tell("w", "crash")
        seen.wait_for(lambda ev: len(ev) == 1)
        assert isinstance(seen.events[0].error, RestartLimitError)
        assert system.escalation is seen.events[0]


def test_failed_restarts_count_towards_intensity(rec: Recorder) -> None:
    attempts = Recorder()
    state = {"n": 0}

    def factory() -> Any:
        state["n"] += 1
        if state["n"] == 1:
            return Probe("w", rec, {})
        return FailingStart(attempts)

    seen = Recorder()
    with ActorSystem("t", on_escalation=seen.add) as system:
        system.spawn(
            ChildSpec(
                "sup", lambda: Supervisor([ChildSpec("w", factory)], max_restarts=3, period=60)
            )
        )
        system.tell("w", "crash")
        # 3 failing restart attempts, then the supervisor escalates; the root
        # restarts it and its child fails again, and so on until the root gives up.
        seen.wait_for(lambda ev: len(ev) == 1)
        assert attempts.count("failing start") >= 3


def test_backoff_delays_restarts_and_resets_after_quiet() -> None:
    from actors._backoff import _BackoffState

    state = _BackoffState(Backoff(min=1.0, max=5.0, jitter=0.0, reset_after=100.0))
    rng = random.Random(1)
    delays = [state.next_delay(t, rng) for t in (0, 1, 2, 3, 4, 5)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert state.next_delay(200, rng) == 0.0  # quiet for longer than reset_after
    jittered = _BackoffState(Backoff(min=1.0, max=5.0, jitter=0.5))
    values = [jittered.next_delay(t, random.Random(7)) for t in range(3)]
    again = _BackoffState(Backoff(min=1.0, max=5.0, jitter=0.5))
    assert values == [again.next_delay(t, random.Random(7)) for t in range(3)]  # injected RNG


def test_backoff_defers_the_restart_and_buffers_messages(
    rec: Recorder, counts: dict[str, int]
) -> None:
    log = Recorder()
    backoff = Backoff(min=0.3, max=0.3, jitter=0.0, first_immediate=False)
    with ActorSystem("t", backoff=backoff, logger=capture_logger(log)) as system:
        system.spawn(probe("w", rec, counts))
        system.tell("w", "crash")
        log.wait_for(lambda ev: any(e.get("state") == "failed" for e in ev))
        reply = system.ask("w", "x", timeout=10)  # buffered until the delayed restart
        assert reply == ("w", 2, 1)
    w = [e for e in log.events if e.get("actor_id") == "w" and e["event"] == "actor.lifecycle"]
    failed_at = next(e["at"] for e in w if e["state"] == "failed")
    restarted_at = next(e["at"] for e in w if e["state"] == "starting" and e["at"] > failed_at)
    assert restarted_at - failed_at >= 0.3 * 0.9  # a lower bound: noise only lengthens it


def test_base_exception_crashes_only_that_actor(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(probe("a", rec, counts))
    system.spawn(probe("b", rec, counts))
    with pytest.raises(ActorCrashedError) as info:
        system.ask("a", "base")
    assert isinstance(info.value.cause, KeyboardInterrupt)
    assert system.ask("b", "x") == ("b", 1, 1)  # pykka's stop_all never fired
    assert system.ask("a", "x")[1] == 2


def test_start_failure_is_a_typed_error(system: ActorSystem) -> None:
    rec = Recorder()
    with pytest.raises(ActorStartError, match="cannot start"):
        system.spawn(ChildSpec("bad", lambda: FailingStart(rec), restart="temporary"))
    assert not system.exists("bad")
    with pytest.raises(ActorStartError):
        system.spawn(
            ChildSpec("sup2", lambda: Supervisor([ChildSpec("x", lambda: FailingStart(rec))]))
        )


def test_messages_queued_behind_a_crash_reach_the_next_incarnation(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(probe("w", rec, counts))
    gate = threading.Event()
    crashed = system._cell("w").ask_future(("wait", gate))
    queued = [system._cell("w").ask_future(f"m{i}") for i in range(5)]
    gate.set()
    with pytest.raises(ActorCrashedError):
        crashed.get(timeout=10)
    assert [f.get(timeout=10) for f in queued] == [("w", 2, i) for i in range(1, 6)]


def test_systems_are_isolated(rec: Recorder, counts: dict[str, int]) -> None:
    with ActorSystem("one") as s1, ActorSystem("two") as s2:
        s1.spawn(probe("same", rec, counts))
        with pytest.raises(ActorNotFoundError):
            s2.ask("same", "x")
        s2.spawn(probe("same", rec, {}))
        assert s1.ask("same", "x")[1] == 1
        assert s2.ask("same", "x")[1] == 1


def test_dynamic_children_and_bad_input(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    system.spawn(probe("d", rec, counts))
    with pytest.raises(DuplicateActorError):
        system.spawn(probe("d", rec, counts))
    system.stop("d")
    assert ("stop", "d") in rec.events
    with pytest.raises(ActorNotFoundError):
        system.tell("d", "x")
    with pytest.raises(TypeError):
        system.tell(42, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChildSpec("", lambda: Probe("x", rec, counts))
    with pytest.raises(ValueError):
        ChildSpec("x", lambda: Probe("x", rec, counts), restart="sometimes")  # type: ignore[arg-type]
    system.shutdown()
    with pytest.raises(ActorStoppedError):
        system.tell("anything", "x")


def test_every_lifecycle_change_is_a_structlog_event(rec: Recorder, counts: dict[str, int]) -> None:
    log = Recorder()
    with ActorSystem("t", logger=capture_logger(log)) as system:
        system.spawn(probe("w", rec, counts))
        with pytest.raises(ActorCrashedError):
            system.ask("w", "crash")
        system.ask("w", "x")
    states = [
        (e["old"], e["state"])
        for e in log.events
        if e.get("event") == "actor.lifecycle" and e["actor_id"] == "w"
    ]
    assert states == [
        ("new", "starting"),
        ("starting", "running"),
        ("running", "failed"),
        ("failed", "starting"),
        ("starting", "running"),
        ("running", "stopping"),
        ("stopping", "stopped"),
    ]
    crash = next(e for e in log.events if e.get("state") == "failed")
    assert crash["parent"] == "root" and "crashed on purpose" in crash["reason"]


def test_an_ask_to_a_stuck_actor_times_out_instead_of_hanging(
    system: ActorSystem, rec: Recorder, counts: dict[str, int]
) -> None:
    from actors import AskTimeoutError

    system.spawn(probe("stuck", rec, counts))
    gate = threading.Event()
    system.tell("stuck", ("wait", gate))  # busy until the gate opens
    with pytest.raises(AskTimeoutError, match=r"did not reply within 0\.2s"):
        system.ask("stuck", "x", timeout=0.2)
    gate.set()


def test_a_child_that_will_not_stop_is_killed_after_its_shutdown_timeout(
    rec: Recorder, counts: dict[str, int]
) -> None:
    log = Recorder()
    gate = threading.Event()
    system = ActorSystem("t", logger=capture_logger(log))
    try:
        system.spawn(probe("slow", rec, counts, shutdown=0.2))
        system.spawn(probe("after", rec, counts))
        system.tell("slow", ("wait", gate))
        system.shutdown()  # returns although "slow" never finishes its message
        killed = [
            e["reason"]
            for e in log.events
            if e.get("event") == "actor.killed" and e["actor_id"] == "slow"
        ]
        assert killed and "killed after its 0.2s shutdown" in killed[0]
        assert ("stop", "after") in rec.events  # the others were still stopped
        assert ("stop", "slow") not in rec.events  # a killed actor's stopped() never runs
    finally:
        gate.set()


def test_nested_trees_shut_down_depth_first_in_reverse_order(
    rec: Recorder, counts: dict[str, int]
) -> None:
    inner = [probe(n, rec, counts) for n in ("i1", "i2")]
    with ActorSystem("t") as system:
        system.spawn(probe("first", rec, counts))
        system.spawn(ChildSpec("inner", lambda: Supervisor(inner)))
        system.spawn(probe("last", rec, counts))
        rec.clear()
    assert rec.events == [("stop", "last"), ("stop", "i2"), ("stop", "i1"), ("stop", "first")]


def test_call_later_runs_on_the_scheduler_in_deadline_order(system: ActorSystem) -> None:
    seen = Recorder()
    system.call_later(0.2, lambda: seen.add("late"))
    system.call_later(0.0, lambda: seen.add("soon"))
    seen.wait_for(lambda ev: len(ev) == 2)
    assert seen.events == ["soon", "late"]


def test_the_default_logger_is_quiet_until_logging_wants_it(
    caplog: pytest.LogCaptureFixture, rec: Recorder, counts: dict[str, int]
) -> None:
    import logging

    with ActorSystem("quiet") as system:
        assert system.logging_info() is (logging.getLogger("actors").isEnabledFor(logging.INFO))
        caplog.set_level(logging.INFO, logger="actors")
        assert system.logging_info()
        system.spawn(probe("w", rec, counts))
        assert any('"actor.lifecycle"' in r.getMessage() for r in caplog.records)
    with ActorSystem("mine", logger=capture_logger(Recorder())) as system:
        assert system.logging_info()  # an application's own logger gets everything


def test_a_child_over_its_own_restart_limit_is_given_up_alone(
    rec: Recorder, counts: dict[str, int]
) -> None:
    given_up = Recorder()
    with ActorSystem("t", max_restarts=50, period=60) as system:
        system.spawn(
            probe("loop", rec, counts, max_restarts=2, period=60, on_give_up=given_up.add_pair)
        )
        system.spawn(probe("ok", rec, counts))
        for _ in range(3):
            with pytest.raises(ActorCrashedError):
                system.ask("loop", "crash")
        given_up.wait_for(lambda ev: len(ev) == 1)
        actor_id, error = given_up.events[0]
        assert actor_id == "loop" and "crashed on purpose" in str(error)
        assert not system.exists("loop")
        assert system.ask("ok", "x")[1] == 1  # siblings untouched, no escalation
        assert system.escalation is None
