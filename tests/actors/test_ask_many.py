"""``ActorSystem.ask_many``: many durable actors' messages in one commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors import (
    ActorCrashedError,
    ActorNotFoundError,
    ActorStoppedError,
    ActorSystem,
    ChildSpec,
    MessageRejectedError,
)
from eventstore import EventStore, NewEvent, StoreFullError

from .helpers import Probe, Recorder
from .test_durable import Add, Get, Ledger, Poison


class CountingStore:
    """The real store, counting the commits made through it."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.commits: list[int] = []  # events per commit
        self.full_for: str | None = None  # an event kind: appends with it fail (disk full)

    def append(self, stream: str, events: Sequence[NewEvent], **kw: Any) -> int:
        self.commits.append(len(events))
        return self._store.append(stream, events, **kw)

    def append_many(self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> Any:
        if any(e.kind == self.full_for for _, events, _ in batch for e in events):
            raise StoreFullError("test", "no space left (simulated)")
        self.commits.append(sum(len(events) for _, events, _ in batch))
        return self._store.append_many(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    with EventStore.open(tmp_path / "log") as s:
        yield CountingStore(s)


def spawn_ledgers(system: ActorSystem, n: int, effects: dict[str, int], **kw: Any) -> None:
    for i in range(n):
        system.spawn(ChildSpec(f"l{i}", lambda: Ledger(effects), **kw))


@pytest.mark.parametrize("threaded", [True, False])
def test_one_commit_for_all_idle_durable_actors(store: CountingStore, threaded: bool) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 20, effects, threaded=threaded)
        store.commits.clear()
        replies = system.ask_many([(f"l{i}", Add(i)) for i in range(20)])
        assert replies == list(range(20))
        assert store.commits == [20]
        assert effects["n"] == 20
        for i in range(20):
            (event,) = store.read(f"l{i}")
            assert msgspec.msgpack.decode(event.data, type=Add) == Add(i)
            assert system.ask(f"l{i}", Get()) == [i]  # the actor's version moved on


def test_other_targets_are_asked_one_by_one_in_order(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    rec, counts = Recorder(), {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 2, effects)
        system.spawn(ChildSpec("probe", lambda: Probe("probe", rec, counts)))
        store.commits.clear()
        replies = system.ask_many(
            [
                ("l0", Add(1)),
                ("probe", "hello"),  # not durable: a plain ask
                ("l0", Add(2)),  # named twice: asked after the batch, in order
                ("nobody", Add(3)),
                ("l1", Add(4)),
            ]
        )
        assert replies[:3] == [1, ("probe", 1, 1), 3]
        assert isinstance(replies[3], ActorNotFoundError)
        assert replies[4] == 4
        assert store.commits == [2, 1]
        assert system.ask("l0", Get()) == [1, 2]


def test_a_crash_in_one_handler_leaves_the_others_handled(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 3, effects, threaded=False)
        replies = system.ask_many([("l0", Add(1)), ("l1", Poison()), ("l2", Add(2))])
        assert replies[0] == 1 and replies[2] == 2
        assert isinstance(replies[1], ActorCrashedError) and replies[1].journaled
        # The poison message was journaled; the restarted actor quarantines it.
        assert system.ask("l1", Add(5)) == 5
        assert store.version("l1") == 3  # poison, quarantine marker, Add(5)


def test_an_unjournalable_message_is_rejected_and_writes_nothing(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 2, effects)
        replies = system.ask_many([("l0", object()), ("l1", Add(1))])
        assert isinstance(replies[0], MessageRejectedError)
        assert replies[1] == 1
        assert store.version("l0") == 0
        assert system.ask("l0", Add(2)) == 2  # not claimed any more


def test_a_stream_written_elsewhere_falls_back_to_single_asks(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 2, effects)
        system.ask("l0", Add(1))
        intruder = msgspec.msgpack.encode(Add(100))
        store.append("l0", [NewEvent("message", intruder)])  # the actor does not know
        replies = system.ask_many([("l0", Add(2)), ("l1", Add(3))])
        assert replies[1] == 3  # unaffected by its neighbour's conflict
        assert isinstance(replies[0], ActorCrashedError)  # ConcurrencyError: restart
        assert system.ask("l0", Get()) == [1, 100]  # recovery caught up with the log


class Witnessed(Ledger):
    """Journals a companion record of every message in a side stream."""

    def journal_companions(self, message: Any) -> list[tuple[str, list[NewEvent]]]:
        note = f"{self.actor_id}@{self.version + 1}".encode()
        return [("side", [NewEvent("witness", note)])]


def test_companions_commit_with_their_message(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        for i in range(3):
            system.spawn(ChildSpec(f"w{i}", lambda: Witnessed(effects), threaded=i != 0))
        store.commits.clear()
        assert system.ask("w0", Add(1)) == 1
        assert system.ask_many([("w1", Add(2)), ("w2", Add(3)), ("w0", object())])[:2] == [2, 3]
        assert store.commits == [2, 4]  # message + witness, in one commit each time
        notes = [e.data for e in store.read("side")]
        assert notes == [b"w0@1", b"w1@1", b"w2@1"]  # nothing for the rejected message


class Countersigned(Witnessed):
    """Folds the batch's witness records into one, with a second companion
    stream left as it is."""

    def journal_companions(self, message: Any) -> list[tuple[str, list[NewEvent]]]:
        return [*super().journal_companions(message), ("other", [NewEvent("o", b"")])]

    @classmethod
    def merge_companions(cls, stream: str, events: list[NewEvent]) -> list[NewEvent]:
        if stream != "side":
            return events
        return [NewEvent("witnesses", b",".join(e.data for e in events))]


def test_a_class_can_merge_the_companions_of_a_batch(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        for i in range(3):
            system.spawn(ChildSpec(f"c{i}", lambda: Countersigned(effects)))
        system.spawn(ChildSpec("w", lambda: Witnessed(effects)))  # another class: not merged
        store.commits.clear()
        replies = system.ask_many([("c0", Add(1)), ("w", Add(5)), ("c1", Add(2)), ("c2", Add(3))])
        assert replies == [1, 5, 2, 3]
        # 4 messages + 1 merged record + 1 witness of w + 3 of "other": one commit
        assert store.commits == [9]
        side = [(e.kind, e.data) for e in store.read("side")]
        assert side == [("witnesses", b"c0@1,c1@1,c2@1"), ("witness", b"w@1")]
        assert len(list(store.read("other"))) == 3


class Receipted(Ledger):
    """Journals a receipt of every Add on its own stream, in the Add's commit."""

    def __init__(self, effects: dict[str, int], seen: list[tuple[int, int]]) -> None:
        super().__init__(effects)
        self.seen = seen  # (version while handling, replaying?) and receipts replayed

    def journal_extras(self, message: Any) -> list[NewEvent]:
        if isinstance(message, Add):
            return [NewEvent("receipt", str(message.value).encode())]
        return []

    def handle(self, message: Any) -> Any:
        if isinstance(message, Add):
            self.seen.append((self.version, int(self.replaying)))
        return super().handle(message)

    def replay_other(self, event: Any) -> None:
        self.seen.append((event.version, int(event.data)))


def test_extras_commit_with_their_message_and_replay_as_other_events(
    store: CountingStore,
) -> None:
    effects: dict[str, int] = {}
    seen: list[tuple[int, int]] = []
    spec = ChildSpec("r", lambda: Receipted(effects, seen), threaded=False)
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        system.spawn(spec)
        store.commits.clear()
        assert system.ask("r", Add(5)) == 5
        assert system.ask_many([("r", Add(7))]) == [12]
        assert store.commits == [2, 2]  # message + receipt, one commit each
        assert [(e.version, e.kind) for e in store.read("r")] == [
            (1, "message"),
            (2, "receipt"),
            (3, "message"),
            (4, "receipt"),
        ]
        assert seen == [(2, 0), (4, 0)]  # live: the version of the last extra
    seen.clear()
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        system.spawn(spec)
        assert system.ask("r", Get()) == [5, 7]
        # Replay: each message at its own version, then its receipt.
        assert seen == [(1, 1), (2, 5), (3, 1), (4, 7)]


class Settling(Ledger):
    """Each Add also appends a ``settled`` event once handled (append_after);
    its callback notes the stream's durable version when it runs."""

    def __init__(self, effects: dict[str, int], notes: list[tuple[str, int]]) -> None:
        super().__init__(effects)
        self.notes = notes

    def handle(self, message: Any) -> Any:
        reply = super().handle(message)
        if isinstance(message, Add) and not self.replaying:
            stream, store = self.stream_name(), self._store()
            self.append_after(
                [(stream, [NewEvent("settled", b"")], self.version)],
                then=lambda: self.notes.append((stream, store.version(stream))),
            )
        return reply


def spawn_settling(system: ActorSystem, n: int, notes: list[tuple[str, int]]) -> None:
    effects: dict[str, int] = {}
    for i in range(n):
        system.spawn(ChildSpec(f"s{i}", lambda: Settling(effects, notes), threaded=False))


def test_appends_after_handling_share_one_commit_after_the_batch(store: CountingStore) -> None:
    notes: list[tuple[str, int]] = []
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_settling(system, 3, notes)
        store.commits.clear()
        assert system.ask_many([(f"s{i}", Add(i)) for i in range(3)]) == [0, 1, 2]
        assert store.commits == [3, 3]  # the messages, then every settled event at once
        assert notes == [("s0", 2), ("s1", 2), ("s2", 2)]  # told once durable
        assert system.ask("s1", Add(5)) == 6  # alone: it commits right away
        assert store.commits == [3, 3, 1, 1]
        assert notes[-1] == ("s1", 4)
        assert [e.kind for e in store.read("s1")] == ["message", "settled"] * 2


class SettlingWitnessed(Settling):
    """Settling, and each settled event has a record in a side stream, which
    a batch's deferred commit folds into one."""

    def handle(self, message: Any) -> Any:
        reply = Ledger.handle(self, message)
        if isinstance(message, Add) and not self.replaying:
            stream = self.stream_name()
            self.append_after(
                [
                    (stream, [NewEvent("settled", b"")], self.version),
                    ("side", [NewEvent("witness", stream.encode())], None),
                ]
            )
        return reply

    @classmethod
    def merge_companions(cls, stream: str, events: list[NewEvent]) -> list[NewEvent]:
        return [NewEvent("witnesses", b",".join(e.data for e in events))]


def test_deferred_companions_are_merged_in_the_batch_commit(store: CountingStore) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        for i in range(3):
            system.spawn(ChildSpec(f"s{i}", lambda: SettlingWitnessed(effects, [])))
        store.commits.clear()
        assert system.ask_many([(f"s{i}", Add(i)) for i in range(3)]) == [0, 1, 2]
        assert store.commits == [3, 4]  # the messages; then 3 settled events + 1 record
        assert [(e.kind, e.data) for e in store.read("side")] == [("witnesses", b"s0,s1,s2")]
        assert [e.kind for e in store.read("s2")] == ["message", "settled"]


def test_a_failed_deferred_commit_crashes_its_actors_and_they_recover(
    store: CountingStore,
) -> None:
    notes: list[tuple[str, int]] = []
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_settling(system, 2, notes)
        store.full_for = "settled"
        replies = system.ask_many([("s0", Add(1)), ("s1", Add(2))])
        assert all(isinstance(r, ActorCrashedError) and r.journaled for r in replies)
        assert notes == []  # nobody was told
        store.full_for = None
        # The messages were journaled: the restarted actors replay them, and
        # their versions match the log again.
        assert system.ask("s0", Get()) == [1]
        assert system.ask("s0", Add(3)) == 4
        kinds = [e.kind for e in store.read("s0")]
        assert kinds == ["message", "message", "message", "settled"]  # Add, Get, Add


def test_a_stopped_target_gets_its_error_and_the_rest_are_still_asked(
    store: CountingStore,
) -> None:
    effects: dict[str, int] = {}
    with ActorSystem("t", store=store) as system:  # type: ignore[arg-type]
        spawn_ledgers(system, 3, effects)
        # Stopped for good but still registered (as a mission its supervisor
        # gave up on): asking it raises ActorStoppedError.
        system._cell("l1").stop(final=True, reason="given up")
        replies = system.ask_many([("l0", Add(1)), ("l1", Add(2)), ("l0", Add(3)), ("l2", Add(4))])
        assert isinstance(replies[1], ActorStoppedError)
        assert replies[0] == 1 and replies[2] == 4 and replies[3] == 4
