"""``ask_many`` handling a batch of speculative actors while its commit is in
flight: effects wait for the commit, a failed commit undoes the handling."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from actors import (
    ActorCrashedError,
    ActorNotFoundError,
    ActorSystem,
    ChildSpec,
    CrashAt,
    DurableActor,
    FaultInjector,
    HandlingUndoneError,
    PreparedAsks,
)
from actors._batch_asks import OVERLAP_MIN
from eventstore import EventStore, NewEvent, StoreIOError

from .test_durable import Add, Get, Ledger


class Peek(msgspec.Struct, tag=True, frozen=True):
    """Reply with how many events the store holds for the actor, read as an
    ``effect`` (so: once the message is durable)."""


class Close(msgspec.Struct, tag=True, frozen=True):
    """Append a ``settled`` event after handling (``append_after``)."""


class Tally(DurableActor):
    """Appends values. Handling reads how much of its stream is durable, and
    holds an effect that reads it again."""

    speculative_handling = True
    journal_type: ClassVar[Any] = Add | Get | Peek | Close
    state_type: ClassVar[Any] = list[int]

    def __init__(self, log: list[Any], on_handled: Callable[[], None]) -> None:
        super().__init__()
        self.log = log  # (what, actor, value, events of its stream in the store then)
        self.on_handled = on_handled

    def initial_state(self) -> list[int]:
        return []

    def is_query(self, message: Any) -> bool:
        return isinstance(message, Get)

    def query(self, message: Any) -> Any:
        return list(self.state)

    def durable_events(self) -> int:
        return len(list(self._store().read(self.actor_id)))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Peek):
            return self.effect(self.durable_events)
        if isinstance(message, Close):
            if not self.replaying:
                me = self.actor_id
                settled = [(me, [NewEvent("settled", b"")], self.version)]
                self.append_after(settled, then=lambda: self.log.append(("then", me, 0, 0)))
            return None
        if not isinstance(message, Add):
            return list(self.state)
        self.state.append(message.value)
        if not self.replaying:
            self.log.append(("handled", self.actor_id, message.value, self.durable_events()))
            self.on_handled()
        self.after_durable(
            lambda: self.log.append(("effect", self.actor_id, message.value, self.durable_events()))
        )
        return sum(self.state)


class GatedStore:
    """The real store; an ``append_many`` with ``on_applied`` can be held
    between its apply and its commit until ``release`` is set, or fail there."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.hold = False
        self.fail = False
        self.release = threading.Event()
        self.held: list[bool] = []  # per held commit: was it released (not timed out)
        self.appends = 0

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
    ) -> list[int]:
        self.appends += 1
        if on_applied is None or not (self.hold or self.fail):
            return self._store.append_many(batch, on_applied=on_applied)
        told = on_applied

        def gate(versions: list[int]) -> None:
            told(versions)
            if self.hold:
                self.held.append(self.release.wait(timeout=30))
            if self.fail:
                raise StoreIOError("test", "commit", "the disk went away (simulated)")

        return self._store.append_many(batch, on_applied=gate)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GatedStore]:
    with EventStore.open(tmp_path / "log") as s:
        yield GatedStore(s)


def spawn_tallies(
    system: ActorSystem, n: int, log: list[Any], on_handled: Callable[[], None] = lambda: None
) -> None:
    for i in range(n):
        system.spawn(ChildSpec(f"t{i}", lambda: Tally(log, on_handled)))


def test_a_batch_is_handled_while_it_commits_and_its_effects_wait_for_the_commit(
    store: GatedStore,
) -> None:
    n = OVERLAP_MIN + 1
    log: list[tuple[str, str, int, int]] = []
    handled = iter(range(1, n + 1))

    def on_handled() -> None:
        if next(handled) == n:  # the last one: let the commit go on
            store.release.set()

    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, n, log, on_handled)
        store.hold = True
        replies = system.ask_many([(f"t{i}", Add(i)) for i in range(n)])
    assert replies == list(range(n))
    assert store.held == [True]  # the commit waited for all of them to be handled
    # Handled before its message was durable; its effect ran after.
    assert log[:n] == [("handled", f"t{i}", i, 0) for i in range(n)]
    assert log[n:] == [("effect", f"t{i}", i, 1) for i in range(n)]


def test_an_effect_asked_for_while_speculating_first_waits_for_the_commit(
    store: GatedStore,
) -> None:
    n = OVERLAP_MIN
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, n, [])
        assert system.ask_many([(f"t{i}", Peek()) for i in range(n)]) == [1] * n


def test_a_failed_commit_undoes_the_handling_and_runs_no_effect(store: GatedStore) -> None:
    n = OVERLAP_MIN
    log: list[tuple[str, str, int, int]] = []
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        for i in range(n):  # a restart limit of 1, and the root's is 3 in 5 s
            system.spawn(ChildSpec(f"t{i}", lambda: Tally(log, lambda: None), max_restarts=1))
        store.fail = True
        for _ in range(3):  # a rollback counts against no restart limit
            # Once restarted (a query waits for it), each takes part in the batch again.
            assert [system.ask(f"t{i}", Get()) for i in range(n)] == [[]] * n
            replies = system.ask_many([(f"t{i}", Add(i + 1)) for i in range(n)])
            for reply in replies:
                assert isinstance(reply, ActorCrashedError) and not reply.journaled
                assert isinstance(reply.cause, HandlingUndoneError)
                assert isinstance(reply.cause.cause, StoreIOError)
        assert system.escalation is None
        assert {what for what, *_ in log} == {"handled"}  # and never an effect
        assert all(store.version(f"t{i}") == 0 for i in range(n))
        # The actors restarted from a log without the message: it can come again.
        store.fail = False
        assert [system.ask(f"t{i}", Get()) for i in range(n)] == [[]] * n
        log.clear()
        assert system.ask_many([(f"t{i}", Add(i + 1)) for i in range(n)]) == [
            i + 1 for i in range(n)
        ]
        assert sorted(what for what, *_ in log) == ["effect"] * n + ["handled"] * n


def test_a_handler_crashing_during_the_commit_crashes_once_its_message_is_durable(
    store: GatedStore,
) -> None:
    n = OVERLAP_MIN
    log: list[tuple[str, str, int, int]] = []
    faults = FaultInjector(CrashAt({("after_append", 2)}))  # the second message handled
    with ActorSystem("t", store=store, faults=faults) as system:  # type: ignore[arg-type]
        spawn_tallies(system, n, log)
        replies = system.ask_many([(f"t{i}", Add(10 + i)) for i in range(n)])
        assert isinstance(replies[1], ActorCrashedError) and replies[1].journaled
        assert [r for k, r in enumerate(replies) if k != 1] == [10, 12, 13]
        effects = [actor for what, actor, *_ in log if what == "effect"]
        assert effects == ["t0", "t2", "t3"]
        # Its message was journaled: the restarted actor replayed it.
        assert system.ask("t1", Get()) == [11]
        assert store.version("t1") == 1


def test_small_batches_and_other_actors_are_handled_after_their_commit(
    store: GatedStore,
) -> None:
    log: list[tuple[str, str, int, int]] = []
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, OVERLAP_MIN, log)
        system.spawn(ChildSpec("ledger", lambda: Ledger(effects)))
        store.fail = True  # a commit handed to the journal writer would fail
        few = [(f"t{i}", Add(i)) for i in range(OVERLAP_MIN - 1)]
        assert system.ask_many(few) == [i for i in range(OVERLAP_MIN - 1)]
        mixed = [(f"t{i}", Add(1)) for i in range(OVERLAP_MIN)] + [("ledger", Add(5))]
        assert system.ask_many(mixed) == [1, 2, 3, 1, 5]
    # Every message was durable when it was handled.
    handled = [(actor, value, durable) for what, actor, value, durable in log if what == "handled"]
    assert handled == [
        *[(f"t{i}", i, 1) for i in range(OVERLAP_MIN - 1)],
        *[(f"t{i}", 1, 2) for i in range(OVERLAP_MIN - 1)],
        ("t3", 1, 1),
    ]


def test_meanwhile_runs_while_the_commit_is_in_flight(store: GatedStore) -> None:
    n = OVERLAP_MIN
    seen: list[int] = []

    def meanwhile() -> None:
        seen.append(store.version("t0"))  # what is committed: not the batch yet
        store.release.set()  # now let the commit finish

    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, n, [])
        store.hold = True
        replies = system.ask_many([(f"t{i}", Add(1)) for i in range(n)], meanwhile=meanwhile)
        assert replies == [1] * n
        assert seen == [0] and store.held == [True]
        assert store.version("t0") == 1
        # Not when the batch commits before it is handled (too small), nor
        # when a target is left to be asked one by one after it.
        store.hold = False
        system.ask_many([(f"t{i}", Add(1)) for i in range(n - 1)], meanwhile=meanwhile)
        twice = [(f"t{i}", Add(1)) for i in range(n)] + [("t0", Add(1))]
        system.ask_many(twice, meanwhile=meanwhile)
        assert seen == [0]


def test_prepare_asks_takes_the_leading_run_that_can_commit_together(store: GatedStore) -> None:
    n = OVERLAP_MIN
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, n, [])
        items = [("t0", Add(1)), ("nobody", Add(1)), ("t1", Add(2)), ("t0", Add(3)), ("t2", Add(4))]
        prepared = system.prepare_asks(items)
        assert prepared.items == items[:3]  # t0 again: it must wait for this batch
        assert all(store.version(f"t{i}") == 0 for i in range(n))  # nothing written yet
        replies = system.ask_many(prepared)
        assert replies[0] == 1 and replies[2] == 2
        assert isinstance(replies[1], ActorNotFoundError)
        # A query (never journaled) ends the run too; released claims are free again.
        assert system.prepare_asks([("t3", Get()), ("t0", Add(1))]).items == []
        held = system.prepare_asks([("t2", Add(1)), ("t3", Add(1))])
        assert held.items == [("t2", Add(1)), ("t3", Add(1))]
        held.release()
        assert system.ask_many([("t2", Add(5)), ("t3", Add(6))]) == [5, 6]
        assert store.version("t2") == 1 and store.version("t3") == 1


def test_what_a_batch_defers_commits_with_the_batch_prepared_after_it(store: GatedStore) -> None:
    n = OVERLAP_MIN
    log: list[tuple[str, str, int, int]] = []
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, 2 * n, log)
        closing = [(f"t{i}", Close()) for i in range(n)]
        adding = [(f"t{i}", Add(1)) for i in range(n, 2 * n)]
        following: list[PreparedAsks] = []

        def meanwhile() -> PreparedAsks:
            following.append(system.prepare_asks([*adding, ("t0", Add(1))]))
            return following[0]

        store.appends = 0
        assert system.ask_many(closing, meanwhile=meanwhile) == [None] * n
        assert following[0].items == adding  # t0 is still busy with its batch
        # The settled events wait for the next batch: its actors stay claimed.
        assert [e.kind for e in store.read("t0")] == ["message"]
        assert log == [] and system.prepare_asks([("t0", Add(1))]).items == []
        assert system.ask_many(following[0]) == [1] * n
        assert store.appends == 2  # the deferred appends took no commit of their own
        assert [e.kind for e in store.read("t0")] == ["message", "settled"]
        assert sorted(actor for what, actor, *_ in log if what == "then") == [
            f"t{i}" for i in range(n)
        ]
        assert system.ask_many([("t0", Add(5))]) == [5]


def test_if_the_next_batch_fails_what_it_carried_recovers_by_replay(store: GatedStore) -> None:
    n = OVERLAP_MIN
    log: list[tuple[str, str, int, int]] = []
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_tallies(system, 2 * n, log)
        adding = [(f"t{i}", Add(1)) for i in range(n, 2 * n)]
        following: list[PreparedAsks] = []

        def meanwhile() -> PreparedAsks:
            following.append(system.prepare_asks(adding))
            return following[0]

        system.ask_many([(f"t{i}", Close()) for i in range(n)], meanwhile=meanwhile)
        store.fail = True
        replies = system.ask_many(following[0])
        assert all(isinstance(r, ActorCrashedError) and not r.journaled for r in replies)
        assert [what for what, *_ in log if what == "then"] == []
        store.fail = False
        # The Close messages were journaled; their deferred appends were not.
        for i in range(n):
            assert system.ask(f"t{i}", Get()) == []  # restarted: replayed its Close
            assert [e.kind for e in store.read(f"t{i}")] == ["message"]
        assert system.escalation is None
