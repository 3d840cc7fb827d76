"""Durable actors: journal before handle, replay, snapshots, poison, passivation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pykka
import pytest

from actors import (
    ActorCrashedError,
    ActorSystem,
    ChildSpec,
    DurableActor,
    LifecycleState,
    MessageRejectedError,
    read_dead_letters,
)
from eventstore import EventStore

from .helpers import Recorder, capture_logger


class Add(msgspec.Struct, tag=True, frozen=True):
    value: int


class Get(msgspec.Struct, tag=True, frozen=True):
    pass


class Poison(msgspec.Struct, tag=True, frozen=True):
    pass


Msg = Add | Get | Poison


class Ledger(DurableActor):
    """Sums values; counts effects in a shared dict so tests see re-runs."""

    journal_type: ClassVar[Any] = Msg
    state_type: ClassVar[Any] = list[int]

    def __init__(self, effects: dict[str, int], rec: Recorder | None = None) -> None:
        super().__init__()
        self.effects = effects
        self.rec = rec

    def initial_state(self) -> list[int]:
        return []

    def handle(self, message: Any) -> Any:
        if isinstance(message, Add):
            self.state.append(message.value)
            self.effect(self._bump)
            return sum(self.state)
        if isinstance(message, Poison):
            raise ValueError("this message always fails")
        return list(self.state)

    def _bump(self) -> None:
        self.effects["n"] = self.effects.get("n", 0) + 1

    def on_recovery_complete(self) -> None:
        if self.rec is not None:
            self.rec.add(("recovered", self.version, self.recovered_messages))


class SnapLedger(Ledger):
    snapshot_every: ClassVar[int | None] = 5


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore.open(tmp_path / "log") as s:
        yield s


def ledger(
    actor_id: str, effects: dict[str, int], rec: Recorder | None = None, **kw: Any
) -> ChildSpec:
    return ChildSpec(actor_id, lambda: Ledger(effects, rec), **kw)


def test_message_is_journaled_before_the_ask_returns(store: EventStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:
        system.spawn(ledger("acct/1", effects))
        assert system.ask("acct/1", Add(5)) == 5
        kinds = [(e.kind, msgspec.msgpack.decode(e.data, type=Msg)) for e in store.read("acct/1")]
        assert kinds == [("message", Add(5))]
        system.tell("acct/1", Add(2))
        assert system.ask("acct/1", Get()) == [5, 2]
        assert store.version("acct/1") == 3


def test_restart_replays_without_rerunning_effects(store: EventStore) -> None:
    effects: dict[str, int] = {}
    rec = Recorder()
    with ActorSystem("t", store=store) as system:
        system.spawn(ledger("a", effects, rec))
        for v in range(1, 6):
            system.ask("a", Add(v))
        assert effects["n"] == 5
        with pytest.raises(ActorCrashedError) as info:
            system.ask("a", Poison())
        assert info.value.journaled is True
        # The restarted incarnation replayed 5 adds (effects suppressed) and
        # quarantined the poison message instead of looping on it.
        assert system.ask("a", Get()) == [1, 2, 3, 4, 5]
        assert effects["n"] == 5
        assert ("recovered", 7, 5) in rec.events
        (letter,) = read_dead_letters(store)
        assert (letter.actor_id, letter.version) == ("a", 6)
        assert "always fails" in letter.error
        assert msgspec.msgpack.decode(letter.data, type=Msg) == Poison()
        assert system.ask("a", Add(10)) == 25
        assert effects["n"] == 6
    # A fresh system (a new process, say) recovers the same state, skipping the
    # quarantined message without dead-lettering it twice.
    with ActorSystem("t2", store=store) as system:
        system.spawn(ledger("a", effects, rec))
        assert system.ask("a", Get()) == [1, 2, 3, 4, 5, 10]
        assert len(read_dead_letters(store)) == 1
        assert effects["n"] == 6


def test_snapshots_bound_replay(store: EventStore) -> None:
    rec = Recorder()
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:
        system.spawn(ChildSpec("s", lambda: SnapLedger(effects, rec)))
        for v in range(12):
            system.ask("s", Add(v))
    snap = store.load_snapshot("s")
    assert snap is not None and snap.version == 10
    rec.clear()
    with ActorSystem("t", store=store) as system:
        system.spawn(ChildSpec("s", lambda: SnapLedger(effects, rec)))
        assert system.ask("s", Get()) == list(range(12))
    assert rec.events == [("recovered", 12, 2)]  # only the 2 messages after the snapshot


def test_messages_sent_during_recovery_wait_and_keep_their_order(store: EventStore) -> None:
    gate = threading.Event()
    entered = threading.Event()

    class Slow(Ledger):
        def on_recovery_complete(self) -> None:
            entered.set()
            gate.wait(10)

    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:
        system.spawn(ledger("x", effects))
        system.ask("x", Add(1))
    with ActorSystem("t2", store=store) as system:
        starter = threading.Thread(
            target=system.spawn, args=(ChildSpec("x", lambda: Slow(effects)),)
        )
        starter.start()
        entered.wait(10)
        futures = [system._cell("x").ask_future(Add(v)) for v in (2, 3, 4)]
        for f in futures:  # nothing is answered while recovery is still running
            with pytest.raises(pykka.Timeout):
                f.get(timeout=0)
        gate.set()
        starter.join()
        assert [f.get(timeout=10) for f in futures] == [3, 6, 10]
        assert system.ask("x", Get()) == [1, 2, 3, 4]


def test_unencodable_message_is_rejected_and_nothing_is_written(store: EventStore) -> None:
    with ActorSystem("t", store=store) as system:
        system.spawn(ledger("r", {}))
        system.ask("r", Add(1))
        with pytest.raises(MessageRejectedError, match="cannot be journaled"):
            system.ask("r", object())
        assert store.version("r") == 1
        assert system.state("r") is LifecycleState.RUNNING
        assert system.ask("r", Add(2)) == 3


def test_durable_actor_without_store_fails_to_start() -> None:
    from actors import ActorStartError

    with ActorSystem("t") as system, pytest.raises(ActorStartError, match="needs ActorSystem"):
        system.spawn(ledger("nostore", {}, restart="temporary"))


class NotifyingLedger(Ledger):
    def handle(self, message: Any) -> Any:
        reply = super().handle(message)
        if isinstance(message, Get) and self.rec is not None and not self.replaying:
            self.rec.add("got")
        return reply


def test_passivation_frees_the_thread_and_reactivation_replays(store: EventStore) -> None:
    now = [0.0]
    rec = Recorder()
    log = Recorder()
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store, clock=lambda: now[0], logger=capture_logger(log)) as system:
        system.spawn(ChildSpec("p", lambda: NotifyingLedger(effects, rec), passivate_after=30))
        system.ask("p", Add(7))
        baseline = system.threads_in_use()
        now[0] += 10
        assert system.passivate_idle_now() == 0  # not idle long enough
        system.schedule(0, "p", Get())  # a timer is not activity...
        rec.wait_for(lambda ev: "got" in ev)
        now[0] += 25  # ...so 35 s after the last real message the actor is idle
        assert system.passivate_idle_now() == 1
        log.wait_for(lambda ev: any(e.get("state") == "passivated" for e in ev))
        assert system.threads_in_use() == baseline - 1
        assert system.ask("p", Add(1)) == 8  # re-activated by replay
        assert system.state("p") is LifecycleState.RUNNING
        assert effects["n"] == 2


def test_messages_arriving_while_passivating_are_not_lost(store: EventStore) -> None:
    now = [0.0]
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store, clock=lambda: now[0]) as system:
        system.spawn(ledger("q", effects, passivate_after=1))
        system.ask("q", Add(0))
        for _ in range(20):
            now[0] += 5
            system.passivate_idle_now()
            for _tell in range(5):
                system.tell("q", Add(1))
        assert system.ask("q", Get()) == [0] + [1] * 100
        assert store.version("q") == 102


def test_ten_thousand_passivated_actors_hold_no_threads(store: EventStore) -> None:
    now = [0.0]
    n = 10_000
    effects: dict[str, int] = {}
    threads_before = threading.active_count()
    with ActorSystem("t", store=store, clock=lambda: now[0]) as system:
        for i in range(n):
            system.spawn(ledger(f"m/{i}", effects, passivate_after=60), activate=False)
        assert system.threads_in_use() == 1  # the root supervisor
        for i in range(0, n, 100):  # wake a hundred of them
            system.ask(f"m/{i}", Add(i))
        assert system.threads_in_use() == 101
        now[0] += 120
        assert system.passivate_idle_now() == 100
        for t in threading.enumerate():  # passivated actors' threads really end
            if t.name.startswith("Ledger-"):
                t.join(10)
        assert threading.active_count() <= threads_before + 2  # root supervisor, scheduler
        for i in range(0, n, 1000):
            assert system.ask(f"m/{i}", Get()) == [i]
        assert len(system.actor_ids()) == n + 1


class Peek:
    """A query: not journaled."""


class QueryLedger(Ledger):
    def is_query(self, message: Any) -> bool:
        return isinstance(message, Peek)

    def query(self, message: Any) -> Any:
        return (self.version, list(self.state))


def test_queries_are_answered_in_order_and_never_journaled(store: EventStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:
        system.spawn(ChildSpec("q", lambda: QueryLedger(effects)))
        system.ask("q", Add(3))
        assert system.ask("q", Peek()) == (1, [3])
        system.tell("q", Add(4))
        assert system.ask("q", Peek()) == (2, [3, 4])
        assert store.version("q") == 2
