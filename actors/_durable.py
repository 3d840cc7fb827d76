"""Durable actors: persist before handle, replay on (re)start.

Each message is appended to the actor's stream (durably) and only then
handled; an ask is answered after that. ``started()`` recovers: newest
snapshot, then the journaled messages after it, replayed through the same
``handle`` with ``self.replaying`` set so effects (``self.effect``) and
replies are suppressed. Messages that arrive during recovery wait in the
mailbox and are handled afterwards, in order.

Poison messages: a message whose handler raises again while being replayed
is quarantined: a ``quarantined`` marker is appended to the stream and a
dead letter to ``$dead-letters`` in one atomic commit, and recovery starts
over from the snapshot without it (so no half-applied state survives). A
crash injected by tests (``SimulatedCrash``) is never taken for poison.

Stream events: ``message`` (msgpack of the message), ``quarantined``
(msgpack ``{"version": n, "error": str}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, ClassVar, TypeVar

import msgspec

from eventstore import (
    ConcurrencyError,
    CorruptionError,
    EventStoreError,
    NewEvent,
    RecordedEvent,
)

from ._actor import Actor
from ._errors import ActorError, MessageRejectedError
from ._faults import SimulatedCrash
from ._journal_writer import PendingCommit

DEAD_LETTERS = "$dead-letters"
MESSAGE = "message"
QUARANTINED = "quarantined"

T = TypeVar("T")
Batch = Sequence[tuple[str, Sequence[NewEvent], int | None]]
"""An ``append_many`` argument."""


class DeadLetter(msgspec.Struct, frozen=True):
    """A message that was quarantined instead of being applied."""

    actor_id: str
    stream: str
    version: int
    error: str
    data: bytes


class _Quarantine(msgspec.Struct, frozen=True):
    version: int
    error: str


class DurableActor(Actor):
    """An actor whose state is rebuilt from its journal.

    Override :meth:`handle` (deterministic: same state and message, same
    result) and :meth:`initial_state`. Set ``journal_type`` to the msgspec
    type of your messages (e.g. a union of tagged Structs) so replay decodes
    them to the same types; ``state_type`` likewise for snapshots;
    ``snapshot_every`` to snapshot every N messages.
    """

    journals_messages = True
    speculative_handling: ClassVar[bool] = False
    """True if :meth:`handle` routes every side effect through
    :meth:`after_durable` (or :meth:`effect`) and touches nothing outside
    this actor otherwise: ``ActorSystem.ask_many`` may then handle a batch
    of such actors while the batch's commit is still in flight."""
    journal_type: ClassVar[Any] = Any
    state_type: ClassVar[Any] = Any
    snapshot_every: ClassVar[int | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.state: Any = None
        self.version = 0
        self.replaying = False
        self.recovered_messages = 0
        # Appends deferred to the end of an ask_many batch (see append_after):
        # None when handling alone, a list while ask_many handles a message.
        self._after: list[tuple[Batch, Callable[[], None] | None]] | None = None
        # While ask_many handles the message before its commit is durable:
        # that commit, and the effects held until it is (see after_durable).
        self._pending: PendingCommit | None = None
        self._held: list[Callable[[], None]] = []
        cls = type(self)
        self._decoder = msgspec.msgpack.Decoder(cls.journal_type)
        self._state_decoder = msgspec.msgpack.Decoder(cls.state_type)

    # ------------------------------------------------------------ user hooks

    def initial_state(self) -> Any:
        return None

    def handle(self, message: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must override handle()")

    def on_recovery_complete(self) -> None:
        """Called once recovery replayed the journal, before any new message."""

    def replay_other(self, event: RecordedEvent) -> None:
        """Called during replay for events the subclass appended itself (any
        kind other than journaled messages and quarantine markers)."""

    def replay_skips(self, events: list[RecordedEvent]) -> set[int]:
        """Versions of journaled messages that recovery must not replay (it
        sees the events it is about to replay). Quarantined ones are always
        skipped; a subclass adds its own (an undone cancel, say)."""
        return set()

    def is_query(self, message: Any) -> bool:
        """True for messages that only read state: answered by :meth:`query`
        in mailbox order, never journaled, never replayed."""
        return False

    def query(self, message: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must override query()")

    def stream_name(self) -> str:
        return self.actor_id

    def journal_extras(self, message: Any) -> Sequence[NewEvent]:
        """Events for this actor's own stream, committed right after
        ``message`` in the same commit: what handling it would otherwise
        append in a commit of its own (the handler must not append them
        again). Replay hands them to :meth:`replay_other`. Handling live,
        ``self.version`` is the last extra's version; in replay it is the
        message's, and the extras follow."""
        return ()

    def journal_companions(self, message: Any) -> Sequence[tuple[str, Sequence[NewEvent]]]:
        """Events for other streams, committed atomically with ``message``'s
        own journal entry (e.g. an audit record of it): both or neither.
        Called right before the append, which will give the message version
        ``self.version + 1``."""
        return ()

    @classmethod
    def merge_companions(cls, stream: str, events: list[NewEvent]) -> Sequence[NewEvent]:
        """What ``ActorSystem.ask_many`` appends to ``stream`` for the
        companion events of a whole batch (in message order) of actors of
        this class: by default all of them. An override may fold them into
        fewer events, e.g. one audit record for the batch's commit."""
        return events

    def encode_state(self) -> bytes:
        return msgspec.msgpack.encode(self.state)

    def decode_state(self, data: bytes) -> Any:
        return self._state_decoder.decode(data)

    def effect(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a side effect now, unless replaying (then it already happened).
        Handled speculatively, it first waits until the message is durable."""
        if self.replaying:
            return None
        self.await_durable()
        return fn(*args, **kwargs)

    def after_durable(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run a side effect of handling the current message once that
        message is durable: now, or, while ``ask_many`` handles it with its
        commit in flight (:attr:`speculative_handling`), right after that
        commit succeeds (never, if it fails: the message is delivered again).
        Effects run in the order they were asked for. Nothing when replaying."""
        if self.replaying:
            return
        if self._pending is None:
            fn(*args, **kwargs)
        else:
            self._held.append(partial(fn, *args, **kwargs))

    def await_durable(self) -> None:
        """Block until the message being handled is durable and run the
        effects held so far. Raises the store's error if its commit failed
        (this actor then crashes, and the message is delivered again)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        error = pending.wait_done()
        held, self._held = self._held, []
        if error is not None:
            raise error
        for run in held:
            run()

    def append_after(self, entries: Batch, then: Callable[[], None] | None = None) -> int:
        """Append what handling the current message produced: ``entries`` is
        an ``append_many`` batch whose first item is this actor's stream at
        ``self.version``. Returns the actor's new version.

        Handled alone, this commits now. Handled in ``ActorSystem.ask_many``
        it commits after every handler of the batch ran, in one commit with
        what the others appended so (one fsync instead of one each); the
        actor handles nothing else until then, and if that commit fails it
        crashes (recovery replays the message, which is journaled). ``then``
        runs once the entries are durable.
        """
        if self._after is None:
            self.version = self._store().append_many(entries)[0]
            if then is not None:
                then()
            return self.version
        self._after.append((entries, then))
        self.version += len(entries[0][1])
        return self.version

    def commit_deferred(self) -> None:
        """Commit what :meth:`append_after` deferred, now (before an append
        that must follow it)."""
        self.await_durable()
        deferred, self._after = self._after, ([] if self._after is not None else None)
        if deferred:
            self._store().append_many(fold_deferred([(self, deferred)]))
            for _, then in deferred:
                if then is not None:
                    then()

    def snapshot(self) -> None:
        """Save a snapshot of the current state now."""
        self.commit_deferred()
        if self.version:
            self._store().save_snapshot(self.stream_name(), self.version, self.encode_state())

    # ------------------------------------------------------------ journal

    def _store(self) -> Any:
        store = self.system.store
        if store is None:
            raise ActorError(f"durable actor {self.actor_id!r} needs ActorSystem(store=...)")
        return store

    def started(self) -> None:
        self._recover()
        self.on_recovery_complete()

    def receive(self, message: Any) -> Any:
        if self.is_query(message):
            return self.query(message)
        entries = self._journal_entry(message)
        try:
            if len(entries) == 1:
                stream, events, expected = entries[0]
                version: int = self._store().append(stream, events, expected_version=expected)
            else:
                version = self._store().append_many(entries)[0]
        except ConcurrencyError:
            raise  # someone else wrote our stream: crash, recovery catches up
        except EventStoreError as err:
            raise MessageRejectedError(
                f"actor {self.actor_id!r}: message not journaled, nothing was recorded: {err}"
            ) from err
        return self._handle_journaled(message, version)

    def journal_own(self, message: Any) -> int:
        """Journal a message this actor decided on itself (not received), with
        its companions, durably; it is replayed like a received one. The
        caller applies it (this does not call ``handle``). Returns its version."""
        self.commit_deferred()
        entries = self._journal_entry(message)
        version: int = self._store().append_many(entries)[0]
        self.version = version
        return version

    def _journal_entry(self, message: Any) -> list[tuple[str, Sequence[NewEvent], int | None]]:
        """What journaling ``message`` appends (the first half of ``receive``):
        its own entry first, then its companions."""
        try:
            data = msgspec.msgpack.encode(message)
        except (TypeError, msgspec.EncodeError) as err:
            raise MessageRejectedError(
                f"actor {self.actor_id!r}: message {type(message).__name__} cannot be journaled "
                f"({err}); nothing was recorded"
            ) from err
        faults = self.system.faults
        if faults.armed:
            faults.check("before_append", self.actor_id)
        own = [NewEvent(MESSAGE, data)]
        own.extend(self.journal_extras(message))
        entries: list[tuple[str, Sequence[NewEvent], int | None]] = [
            (self.stream_name(), own, self.version)
        ]
        for stream, events in self.journal_companions(message):
            entries.append((stream, events, None))
        return entries

    def _handle_journaled(self, message: Any, version: int) -> Any:
        """Handle ``message`` now that it is durable at ``version`` (the second half)."""
        self._journaled = True
        self.version = version
        faults = self.system.faults
        if faults.armed:
            faults.check("after_append", self.actor_id)
        reply = self.handle(message)
        every = type(self).snapshot_every
        if every and version % every == 0:
            self.commit_deferred()
            self._store().save_snapshot(self.stream_name(), version, self.encode_state())
            faults.check("after_snapshot", self.actor_id)
        return reply

    def _recover(self) -> None:
        store = self._store()
        stream = self.stream_name()
        while True:
            snap = store.load_snapshot(stream)
            self.state = self.decode_state(snap.data) if snap else self.initial_state()
            self.version = snap.version if snap else 0
            events = list(store.read(stream, self.version + 1, archived=True))
            skip = {
                msgspec.msgpack.decode(e.data, type=_Quarantine).version
                for e in events
                if e.kind == QUARANTINED
            }
            skip |= self.replay_skips(events)
            poison = self._replay(events, skip)
            if poison is None:
                return
            event, error = poison
            last = events[-1].version if events else self.version
            letter = DeadLetter(self.actor_id, stream, event.version, error, event.data)
            marker = _Quarantine(event.version, error)
            store.append_many(
                [
                    (stream, [NewEvent(QUARANTINED, msgspec.msgpack.encode(marker))], last),
                    (DEAD_LETTERS, [NewEvent("dead_letter", msgspec.msgpack.encode(letter))], None),
                ]
            )
            self.system.log.warning(
                "actor.quarantined",
                actor_id=self.actor_id,
                stream=stream,
                version=event.version,
                error=error,
            )

    def _replay(
        self, events: list[RecordedEvent], skip: set[int]
    ) -> tuple[RecordedEvent, str] | None:
        faults = self.system.faults
        self.replaying = True
        self.recovered_messages = 0
        try:
            for event in events:
                if event.kind not in (MESSAGE, QUARANTINED):
                    self.replay_other(event)
                if event.kind == MESSAGE and event.version not in skip:
                    faults.check("during_recovery", self.actor_id)
                    previous, self.version = self.version, event.version  # as when it was live
                    message = self._decode_journaled(event)
                    try:
                        self.handle(message)
                    except SimulatedCrash:
                        raise
                    except Exception as err:
                        self.version = previous
                        return event, f"{type(err).__name__}: {err}"
                    self.recovered_messages += 1
                self.version = event.version
        finally:
            self.replaying = False
        return None

    def _decode_journaled(self, event: RecordedEvent) -> Any:
        """A journaled message, or :class:`eventstore.CorruptionError`: a record
        that does not decode fails recovery loudly, naming it. It is never
        skipped or quarantined (the state would silently differ from the
        history); the actor does not start."""
        try:
            return self._decoder.decode(event.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise CorruptionError(
                "journaled message",
                f"stream {event.stream!r} version {event.version} (position {event.position})",
                str(getattr(self._store(), "path", "the event store")),
                f"{err} (actor {self.actor_id!r} cannot recover past it)",
            ) from err


def read_dead_letters(store: Any) -> list[DeadLetter]:
    """Every dead letter recorded in ``store``, oldest first."""
    decoder = msgspec.msgpack.Decoder(DeadLetter)
    return [decoder.decode(e.data) for e in store.read(DEAD_LETTERS)]


def merged_companions(
    companions: dict[tuple[str, Any], list[NewEvent]],
) -> list[tuple[str, Sequence[NewEvent], int | None]]:
    """``append_many`` items for the companion events gathered from several
    messages, by stream and by the class that merges them
    (:meth:`DurableActor.merge_companions`)."""
    return [(stream, merge(stream, events), None) for (stream, merge), events in companions.items()]


def fold_deferred(
    work: Iterable[tuple[DurableActor, list[tuple[Batch, Callable[[], None] | None]]]],
) -> list[tuple[str, Sequence[NewEvent], int | None]]:
    """One ``append_many`` batch for what actors deferred (``append_after``):
    their own streams' items in order, then their companion items (those
    with no expected version, on another stream) merged by stream."""
    companions: dict[tuple[str, Any], list[NewEvent]] = {}
    return split_deferred(work, companions) + merged_companions(companions)


def split_deferred(
    work: Iterable[tuple[DurableActor, list[tuple[Batch, Callable[[], None] | None]]]],
    companions: dict[tuple[str, Any], list[NewEvent]],
) -> list[tuple[str, Sequence[NewEvent], int | None]]:
    """The own-stream items of what actors deferred, in order; their
    companion events are added to ``companions`` (see :func:`fold_deferred`)."""
    own: list[tuple[str, Sequence[NewEvent], int | None]] = []
    for actor, deferred in work:
        merge, home = type(actor).merge_companions, actor.stream_name()
        for entries, _ in deferred:
            for stream, events, expected in entries:
                if expected is None and stream != home:
                    companions.setdefault((stream, merge), []).extend(events)
                else:
                    own.append((stream, events, expected))
    return own
