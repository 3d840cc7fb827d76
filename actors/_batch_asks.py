"""Batched delivery: ``ActorSystem.ask_many`` and ``prepare_asks``.

Many durable actors' messages journaled in one commit, handled (for
actors with ``speculative_handling``) while that commit's fsync runs on the
journal writer thread, with what their handlers defer (``append_after``)
committed with the next batch. The mixin ``BatchAsks`` holds it;
``ActorSystem`` inherits it. It declares below what it uses of the system.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from eventstore import EventLog, EventStoreError, NewEvent

from ._actor import Actor, _WakeUp
from ._cell import Cell
from ._durable import Batch, DurableActor, fold_deferred, merged_companions, split_deferred
from ._errors import (
    ActorCrashedError,
    ActorError,
    HandlingUndoneError,
    MessageRejectedError,
)
from ._journal_writer import JournalWriter, PendingCommit

OVERLAP_MIN = 4
"""``ask_many`` hands a batch of at least this many messages to the journal
writer and handles it while it commits; a smaller one it commits itself and
handles after: two thread hand-offs (~40 µs each) would cost more than
handling a few messages during the fsync saves."""

Carried = tuple[Cell, DurableActor, list[tuple[Batch, Callable[[], None] | None]]]
"""An actor whose deferred appends (``append_after``) wait for a commit."""


class PreparedAsks:
    """A batch :meth:`ActorSystem.prepare_asks` made ready for
    :meth:`ActorSystem.ask_many`: its targets are claimed (they handle
    nothing else meanwhile) and nothing is written yet."""

    __slots__ = (
        "_system",
        "batch",
        "carried",
        "companions",
        "entries",
        "items",
        "later",
        "results",
    )

    def __init__(self, system: BatchAsks, items: Sequence[tuple[str, object]]) -> None:
        self._system = system
        self.items = items
        self.results: list[Any] = [None] * len(items)
        self.batch: list[tuple[int, Cell, DurableActor, object, int]] = []  # ..., entry index
        self.entries: list[tuple[str, Sequence[NewEvent], int | None]] = []
        self.later: list[int] = []  # asked one by one after the batch
        # Appended after all own entries, by stream and by the class that
        # merges them (DurableActor.merge_companions).
        self.companions: dict[tuple[str, Any], list[NewEvent]] = {}
        # What the batch before deferred (append_after), to commit with this
        # one: its actors stay claimed until then (see ask_many's meanwhile).
        self.carried: list[Carried] = []

    def take(self, n: int) -> None:
        """Keep only the first ``n`` items."""
        self.items = self.items[:n]
        del self.results[n:]

    def release(self) -> None:
        """Give the claimed targets back, unasked, and commit what it carried
        from the batch before. Idempotent."""
        batch, self.batch = self.batch, []
        for _, cell, _, _, _ in batch:
            cell.release()
        carried, self.carried = self.carried, []
        if carried:
            self._system._commit_carried(carried)


class BatchAsks:
    """``ask_many`` and ``prepare_asks`` of :class:`ActorSystem` (see the module docstring)."""

    if TYPE_CHECKING:
        store: EventLog | None
        _cells: dict[str, Cell]
        _inline_asks: bool

        def _check_open(self) -> None: ...
        def _cell(self, actor_id: str) -> Cell: ...
        def _journal_writer(self) -> JournalWriter: ...
        def ask(self, actor_id: str, message: object, *, timeout: float | None = None) -> Any: ...

    def ask_many(
        self,
        items: Sequence[tuple[str, object]] | PreparedAsks,
        *,
        meanwhile: Callable[[], PreparedAsks | None] | None = None,
    ) -> list[Any]:
        """Ask several actors at once, sharing one durable commit.

        Every durable actor among the targets that is running and idle gets
        its message journaled in a single ``append_many`` with the others
        (one fsync for the lot, instead of one per message) and handled on
        this thread, in order. Any other target (busy, passivated, not
        durable, a query, or named twice) is asked as by :meth:`ask`
        afterwards. Returns each reply or the exception :meth:`ask` would
        have raised for it, in order; raises only if the system is shut down.

        ``items`` may be a batch :meth:`prepare_asks` prepared. ``meanwhile``
        is called once while the commit is in flight, if the batch is handled
        during it (see ``DurableActor.speculative_handling``) and every
        target took part: the time to prepare the next batch. If it returns
        that batch, what this one's handlers deferred (``append_after``)
        commits with it, instead of in a commit of its own.
        """
        if isinstance(items, PreparedAsks):
            prepared = items
            try:
                self._check_open()
            except BaseException:
                prepared.release()
                raise
        else:
            self._check_open()
            prepared = self._prepare(items, whole=True)
        results, later, batch = prepared.results, prepared.later, prepared.batch
        carried = prepared.carried
        prepared.batch, prepared.carried = [], []  # from here on, this call releases them
        companions: dict[tuple[str, Any], list[NewEvent]] = {}
        entries = split_deferred(((a, d) for _, a, d in carried), companions)
        offset = len(entries)  # a batch entry's index k is at offset + k
        entries.extend(prepared.entries)
        for key, events in prepared.companions.items():
            companions.setdefault(key, []).extend(events)
        entries.extend(merged_companions(companions))
        versions: list[int] | None = None
        pending: PendingCommit | None = None
        try:
            if entries:
                assert self.store is not None  # durable actors started, so there is one
                if len(batch) >= OVERLAP_MIN and all(
                    a.speculative_handling for _, _, a, _, _ in batch
                ):
                    pending = self._journal_writer().submit(entries)
                    versions = pending.wait_applied()
                    if versions is None:
                        error = pending.wait_done()
                        pending = None
                        if not isinstance(error, EventStoreError):
                            assert error is not None
                            raise error
                else:
                    try:
                        versions = self.store.append_many(entries)
                    except EventStoreError:
                        versions = None  # e.g. one stream written elsewhere: ask one by one
        except BaseException as err:
            for _, cell, _, _, _ in batch:
                cell.release()
            self._settle_carried(carried, err)
            raise
        if versions is None:
            for i, cell, _, _, _ in batch:
                cell.release()
                later.append(i)
            batch = []
            self._commit_carried(carried)
        elif pending is None:
            self._settle_carried(carried, None)
        handled: list[tuple[int, Cell, DurableActor, BaseException | None]] = []
        deferring: list[tuple[int, Cell, DurableActor]] = []  # see append_after
        for i, cell, actor, message, k in batch:
            actor._after = []
            actor._pending = pending  # effects held until it is durable (after_durable)
            crash: BaseException | None = None
            try:
                version = versions[offset + k]  # type: ignore[index]
                results[i] = actor._handle_journaled(message, version)
            except MessageRejectedError as err:
                results[i] = err
            except BaseException as err:
                actor._after = None  # dropped: replaying the message makes them again
                crash = err
            handled.append((i, cell, actor, crash))
            if pending is None:
                self._settle_handled(handled, results, deferring)
        interrupted: BaseException | None = None
        following: PreparedAsks | None = None
        if pending is not None:
            if meanwhile is not None and not later:
                try:
                    following = meanwhile()
                except BaseException as err:  # raised once this batch is dealt with
                    interrupted = err
            failure = pending.wait_done()
            if failure is not None:
                for i, cell, actor, _ in handled:  # what they handled never happened
                    actor._after, actor._pending, actor._held = None, None, []
                    undone = HandlingUndoneError(actor.actor_id, failure)
                    results[i] = self._crash_claimed(cell, actor, undone, journaled=False)
                self._settle_carried(carried, failure)  # raises a KeyboardInterrupt etc.
                if not isinstance(failure, Exception):
                    raise failure
            else:
                self._settle_carried(carried, None)
                self._settle_handled(handled, results, deferring)
        if deferring and following is not None:
            for _, cell, actor in deferring:  # they commit with the next batch
                following.carried.append((cell, actor, actor._after or []))
                actor._after = None
        elif deferring:
            self._commit_deferred(deferring, results)
        if interrupted is not None:
            raise interrupted
        asked = prepared.items
        for i in sorted(later):
            try:
                results[i] = self.ask(asked[i][0], asked[i][1])
            except Exception as err:  # one stopped or failing target spoils no other
                results[i] = err
        return results

    def prepare_asks(self, items: Sequence[tuple[str, object]]) -> PreparedAsks:
        """Get the longest leading run of ``items`` that :meth:`ask_many` can
        journal in one commit (each an idle durable actor, named once, or a
        target that does not exist) ready for it: targets claimed, journal
        entries built, nothing written. ``.items`` are the items it took;
        the caller keeps the rest. Pass it to :meth:`ask_many`, or
        :meth:`PreparedAsks.release` it. Meant for ``ask_many``'s
        ``meanwhile``: the next batch is ready the moment the last is durable.
        """
        return self._prepare(items, whole=False)

    def _prepare(self, items: Sequence[tuple[str, object]], *, whole: bool) -> PreparedAsks:
        """Claim and build the journal entries of ``items`` (``whole``: all of
        them, the others asked one by one afterwards; else only the leading
        run that needs no such asks)."""
        prepared = PreparedAsks(self, items)
        results, batch, later = prepared.results, prepared.batch, prepared.later
        entries, companions = prepared.entries, prepared.companions
        cells = self._cells
        try:
            for i, (actor_id, message) in enumerate(items):
                # dict.get is atomic: no lock for the common case of a known id
                found = cells.get(actor_id) if type(actor_id) is str else None
                try:
                    cell = found if found is not None else self._cell(actor_id)
                except (ActorError, TypeError) as err:
                    results[i] = err
                    continue
                actor = cell.claim() if self._inline_asks else None
                if actor is None:
                    if not whole:
                        prepared.take(i)
                        break
                    later.append(i)
                    continue
                durable = cast(DurableActor, actor)  # no isinstance: pykka's ABCs are slow
                if not actor.journals_messages or durable.is_query(message):
                    cell.release()
                    if not whole:
                        prepared.take(i)
                        break
                    later.append(i)
                    continue
                try:
                    journal = durable._journal_entry(message)
                except MessageRejectedError as err:
                    cell.release()
                    results[i] = err
                    continue
                except BaseException as err:  # an injected crash before the append
                    results[i] = self._crash_claimed(cell, actor, err, journaled=False)
                    continue
                batch.append((i, cell, durable, message, len(entries)))
                entries.append(journal[0])
                merge = type(durable).merge_companions
                for stream, events, _ in journal[1:]:  # one entry per companion stream
                    companions.setdefault((stream, merge), []).extend(events)
        except BaseException:
            prepared.release()
            raise
        return prepared

    def _settle_handled(
        self,
        handled: list[tuple[int, Cell, DurableActor, BaseException | None]],
        results: list[Any],
        deferring: list[tuple[int, Cell, DurableActor]],
    ) -> None:
        """Once the messages ``handled`` are durable: run the effects they
        held, crash the actors whose handler raised, release the others or
        leave them to the deferred commit (``append_after``). Empties it."""
        for i, cell, actor, raised in handled:
            crash = raised
            actor._pending = None
            held, actor._held = actor._held, []
            try:
                for run in held:
                    run()
            except BaseException as err:
                actor._after = None
                crash = crash or err
            if crash is not None:
                results[i] = self._crash_claimed(cell, actor, crash, journaled=True)
            elif actor._after:
                deferring.append((i, cell, actor))  # released once they are durable
            else:
                actor._after = None
                cell.release()
        handled.clear()

    def _commit_deferred(
        self, deferring: list[tuple[int, Cell, DurableActor]], results: list[Any]
    ) -> None:
        """One commit for what the batch's handlers deferred (``append_after``),
        then release those actors and run their callbacks; if it fails, each
        of them crashes and recovers by replay."""
        carried: list[Carried] = []
        for _, cell, actor in deferring:
            carried.append((cell, actor, actor._after or []))
            actor._after = None
        crashes = self._commit_carried(carried)
        for (i, _, _), crash in zip(deferring, crashes, strict=True):
            if crash is not None:
                results[i] = crash

    def _commit_carried(self, carried: list[Carried]) -> list[ActorCrashedError | None]:
        """Commit what ``carried`` actors deferred, then settle them."""
        if not carried:
            return []
        assert self.store is not None
        failure: BaseException | None = None
        try:
            self.store.append_many(fold_deferred((a, d) for _, a, d in carried))
        except BaseException as err:
            failure = err
        return self._settle_carried(carried, failure)

    def _settle_carried(
        self, carried: list[Carried], failure: BaseException | None
    ) -> list[ActorCrashedError | None]:
        """Once the commit of what ``carried`` actors deferred is over:
        release them and run their callbacks, or, if it failed, crash each
        of them (their messages were journaled: they recover by replay)."""
        crashes: list[ActorCrashedError | None] = []
        for cell, actor, deferred in carried:
            if failure is not None:
                undone = HandlingUndoneError(actor.actor_id, failure)
                crashes.append(self._crash_claimed(cell, actor, undone, journaled=True))
                continue
            crashes.append(None)
            cell.release()
            for _, then in deferred:
                if then is not None:
                    then()
        if failure is not None and not isinstance(failure, Exception):
            raise failure  # KeyboardInterrupt etc.: after every actor was dealt with
        return crashes

    def _crash_claimed(
        self, cell: Cell, actor: Actor, err: BaseException, *, journaled: bool
    ) -> ActorCrashedError:
        try:
            actor._crash(err)
            actor.actor_inbox.put(_WakeUp())  # type: ignore[arg-type]
        finally:
            cell.release()
        return ActorCrashedError(actor.actor_id, err, journaled=journaled)
