"""Threadless actors (``ChildSpec(threaded=False)``): same supervision and
durability contract as threaded ones, but no thread of their own. Messages
run on the sending threads, one at a time, in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorCrashedError,
    ActorStartError,
    ActorStoppedError,
    ActorSystem,
    ChildSpec,
    LifecycleState,
)
from eventstore import EventStore

from .helpers import FailingStart, Probe, Recorder
from .test_durable import Add, Get, Ledger


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore.open(tmp_path / "log") as s:
        yield s


class WhereProbe(Probe):
    """A Probe that also records which thread handled each message."""

    def receive(self, message: Any) -> Any:
        if message == "where":
            return threading.get_ident()
        return super().receive(message)


def threadless(actor_id: str, factory: Any, **kw: Any) -> ChildSpec:
    return ChildSpec(actor_id, factory, threaded=False, **kw)


def test_runs_on_the_sending_thread_and_holds_no_thread() -> None:
    rec, counts = Recorder(), {}
    with ActorSystem("t") as system:
        baseline = system.threads_in_use()
        threads = threading.active_count()
        system.spawn(threadless("w", lambda: WhereProbe("w", rec, counts)))
        assert system.state("w") is LifecycleState.RUNNING
        assert system.threads_in_use() == baseline
        assert threading.active_count() == threads
        assert system.ask("w", "where") == threading.get_ident()
        assert system.ask("w", "hello") == ("w", 1, 1)
        system.tell("w", "hello")  # handled here, before tell returns
        assert system.ask("w", "hello") == ("w", 1, 3)
    assert rec.events == [("start", "w"), ("stop", "w")]


def test_concurrent_senders_are_serialised_and_each_keeps_its_order(store: EventStore) -> None:
    effects: dict[str, int] = {}
    senders, per_sender = 8, 150
    with ActorSystem("t", store=store) as system:
        system.spawn(threadless("l", lambda: Ledger(effects)))

        def send(k: int) -> None:
            for i in range(per_sender):
                if i % 2:
                    system.tell("l", Add(k * 1000 + i))
                else:
                    system.ask("l", Add(k * 1000 + i))

        workers = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        values = system.ask("l", Get())
    assert len(values) == senders * per_sender == effects["n"]
    for k in range(senders):
        mine = [v for v in values if v // 1000 == k]
        assert mine == [k * 1000 + i for i in range(per_sender)]
    assert store.version("l") == senders * per_sender + 1  # and the Get


def test_a_crash_restarts_it_and_messages_behind_the_crash_survive() -> None:
    rec, counts = Recorder(), {}
    with ActorSystem("t", max_restarts=10, period=60) as system:
        system.spawn(threadless("w", lambda: Probe("w", rec, counts)))
        gate = threading.Event()
        cell = system._cell("w")
        crashing = threading.Thread(target=lambda: cell.tell(("wait", gate)))
        crashing.start()  # this thread now holds the actor, waiting on the gate
        rec.wait_for(lambda ev: ("start", "w") in ev)
        queued = [cell.ask_future(f"m{i}") for i in range(5)]
        gate.set()
        crashing.join()
        assert [f.get(timeout=10) for f in queued] == [("w", 2, i) for i in range(1, 6)]
        with pytest.raises(ActorCrashedError):
            system.ask("w", "crash")
        assert system.ask("w", "again") == ("w", 3, 1)


def test_durable_threadless_actor_passivates_and_reactivates_by_replay(
    store: EventStore,
) -> None:
    now = [0.0]
    rec = Recorder()
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store, clock=lambda: now[0]) as system:
        for i in range(50):
            system.spawn(threadless(f"d{i}", lambda: Ledger(effects, rec), passivate_after=5))
            system.ask(f"d{i}", Add(i))
        assert system.threads_in_use() == 1  # the root supervisor only
        now[0] += 10
        assert system.passivate_idle_now() == 50
        assert all(system.state(f"d{i}") is LifecycleState.PASSIVATED for i in range(50))
        assert system.ask("d7", Add(100)) == 107  # re-activated by replay, on this thread
        assert ("recovered", 1, 1) in rec.events
        assert effects["n"] == 51  # replay ran no effect again


def test_an_actor_that_stops_itself_exits_normally() -> None:
    rec, counts = Recorder(), {}
    with ActorSystem("t") as system:
        system.spawn(threadless("t", lambda: Probe("t", rec, counts), restart="transient"))
        system.spawn(threadless("p", lambda: Probe("p", rec, counts)))
        system.tell("t", "exit")
        assert system.state("t") is LifecycleState.STOPPED
        with pytest.raises(ActorStoppedError):
            system.ask("t", "hello")
        system.tell("p", "exit")  # permanent: its supervisor starts it again
        rec.wait_for(lambda ev: ev.count(("start", "p")) == 2)
        assert system.ask("p", "hello") == ("p", 2, 1)
    assert ("stop", "t") in rec.events


def test_a_failing_start_is_a_typed_error() -> None:
    rec = Recorder()
    with ActorSystem("t") as system, pytest.raises(ActorStartError, match="cannot start"):
        system.spawn(threadless("f", lambda: FailingStart(rec), restart="temporary"))
    assert rec.events == ["failing start"]
