"""The actor system: one registry, one root supervisor, one scheduler.

Nothing here is process-global: two systems in one process never see each
other's actors, which is what lets tests (and tenants) run in isolation.
The system owns the clock, the RNG (restart jitter), the fault injector and
the event store durable actors journal to.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pykka
import structlog

from eventstore import EventLog, EventStoreError, NewEvent

from ._actor import Actor, _WakeUp
from ._cell import Cell, ChildSpec
from ._durable import Batch, DurableActor, fold_deferred, merged_companions, split_deferred
from ._errors import (
    ActorCrashedError,
    ActorError,
    ActorNotFoundError,
    ActorStoppedError,
    AskTimeoutError,
    DuplicateActorError,
    HandlingUndoneError,
    MessageRejectedError,
)
from ._faults import FaultInjector
from ._journal_writer import JournalWriter, PendingCommit
from ._lifecycle import LifecycleState
from ._supervisor import (
    Backoff,
    Strategy,
    Supervisor,
    _ChildExited,
    _ChildFailed,
    _StartChild,
    _StartChildren,
    _StopChild,
)
from ._supervisor import _WhichChildren as _Which

ROOT = "root"
OVERLAP_MIN = 4
"""``ask_many`` hands a batch of at least this many messages to the journal
writer and handles it while it commits; a smaller one it commits itself and
handles after: two thread hand-offs (~40 µs each) would cost more than
handling a few messages during the fsync saves."""


@dataclass(frozen=True)
class Escalation:
    """The root supervisor gave up: the whole tree is down."""

    error: BaseException
    at: float


def quiet_logger(name: str = "actors") -> Any:
    """A structlog logger that renders JSON into stdlib logging (silent unless
    the embedding application configures logging)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            # Drop events the stdlib logger would not emit before any work is
            # done on them: a step journals two events, rendering them costs.
            structlog.stdlib.filter_by_level,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


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

    def __init__(self, system: ActorSystem, items: Sequence[tuple[str, object]]) -> None:
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


class ActorSystem:
    """Owns a supervision tree. Use as a context manager or call :meth:`shutdown`.

    ``store``: the event log durable actors journal to. ``clock``: monotonic
    seconds (restart windows, idleness). ``rng``: restart jitter. ``faults``:
    crash injection for tests. ``on_escalation``: called (on some actor
    thread) if the root supervisor gives up. ``inline_asks``: an ask to an
    idle actor runs its handler on the asking thread (see ``Cell.ask_future``);
    it then runs to completion, so its timeout cannot interrupt it.
    """

    def __init__(
        self,
        name: str = "actors",
        *,
        store: EventLog | None = None,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        faults: FaultInjector | None = None,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        passivation_check: float = 1.0,
        ask_timeout: float = 30.0,
        on_escalation: Callable[[Escalation], None] | None = None,
        inline_asks: bool = True,
    ) -> None:
        from ._scheduler import Scheduler

        self.name = name
        self.store = store
        self.log = logger if logger is not None else quiet_logger()
        self._stdlib_logger = None if logger is not None else logging.getLogger("actors")
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.faults = faults if faults is not None else FaultInjector()
        self.ask_timeout = ask_timeout
        self._inline_asks = inline_asks
        self.escalation: Escalation | None = None
        self._on_escalation = on_escalation
        self._lock = threading.Lock()
        self._cells: dict[str, Cell] = {}
        self._active_passivatable: set[Cell] = set()
        self._shutdown = False
        self._writer: JournalWriter | None = None  # started by the first ask_many that needs it
        self._scheduler = Scheduler(name, clock=time.monotonic)
        self._scheduler.on_error(lambda err: self.log.error("scheduler.error", error=repr(err)))
        self._passivation_check = passivation_check
        root_spec = ChildSpec(
            ROOT,
            lambda: Supervisor(
                strategy=strategy, max_restarts=max_restarts, period=period, backoff=backoff
            ),
        )
        self._root = self._register(root_spec, parent=None)
        self.log.info("system.start", system=name)
        self._root.start()
        self._scheduler.call_later(passivation_check, self._sweep)

    # ------------------------------------------------------------ public API

    def spawn(self, spec: ChildSpec, *, parent: str = ROOT, activate: bool = True) -> None:
        """Start ``spec`` as a dynamic child of supervisor ``parent``.

        ``activate=False`` registers it passivated: no thread until its first
        message (how thousands of waiting durable actors are recovered).
        """
        self._check_open()
        err = self.ask(parent, _StartChild(spec, activate=activate))
        if err is not None:
            raise err

    def spawn_many(
        self, specs: Sequence[ChildSpec], *, parent: str = ROOT, activate: bool = True
    ) -> None:
        """Start several children of ``parent`` in order, in one round-trip.

        Stops at the first failure and raises it; the children before it stay.
        """
        self._check_open()
        err = self.ask(parent, _StartChildren(list(specs), activate=activate), timeout=3600)
        if err is not None:
            raise err

    def stop(self, actor_id: str) -> None:
        """Stop and remove an actor (orderly). Unknown ids raise."""
        cell = self._cell(actor_id)
        if cell.parent is None:
            raise ActorError("stop the root supervisor with shutdown()")
        self.ask(cell.parent.id, _StopChild(actor_id))

    def tell(self, actor_id: str, message: object) -> None:
        """Send without waiting. Buffered while the actor (re)starts."""
        self._check_open()
        self._cell(actor_id).tell(message)

    def ask(self, actor_id: str, message: object, *, timeout: float | None = None) -> Any:
        """Send and wait for the reply (default timeout: ``ask_timeout``).

        Raises :class:`ActorCrashedError` if the actor crashed on it,
        :class:`AskTimeoutError` if no reply came in time, or whatever
        the handler rejected the message with.
        """
        self._check_open()
        wait = self.ask_timeout if timeout is None else timeout
        cell = self._cell(actor_id)
        if self._inline_asks:
            handled, reply = cell.try_inline(message)
            if handled:
                return reply
        future = cell.ask_future(message)
        try:
            return future.get(timeout=wait)
        except pykka.Timeout as err:
            raise AskTimeoutError(actor_id, wait) from err
        except pykka.ActorDeadError as err:  # pragma: no cover - envelopes are rescued
            raise ActorCrashedError(actor_id, err, journaled=False) from err

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

    def schedule(self, delay: float, actor_id: str, message: object) -> None:
        """Tell ``message`` to ``actor_id`` after ``delay`` seconds. A timer is
        not activity: it does not keep an actor from being passivated."""
        self._check_open()
        cell = self._cell(actor_id)

        def fire() -> None:
            try:
                cell.tell(message, activity=False)
            except ActorError as err:
                self.log.warning("timer.undeliverable", actor_id=actor_id, error=str(err))

        self._scheduler.call_later(delay, fire)

    def logging_info(self) -> bool:
        """Whether info events are wanted: hot paths skip building them if not.
        Always true for a logger the application passed in."""
        return self._stdlib_logger is None or self._stdlib_logger.isEnabledFor(logging.INFO)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the system's scheduler thread after ``delay`` seconds.
        ``fn`` must not block: hand real work to another thread."""
        self._check_open()
        self._scheduler.call_later(delay, fn)

    def state(self, actor_id: str) -> LifecycleState:
        return self._cell(actor_id).state

    def exists(self, actor_id: str) -> bool:
        with self._lock:
            return actor_id in self._cells

    def children(self, supervisor_id: str = ROOT) -> list[tuple[str, LifecycleState]]:
        result: list[tuple[str, LifecycleState]] = self.ask(supervisor_id, _Which())
        return result

    def actor_ids(self) -> list[str]:
        with self._lock:
            return list(self._cells)

    def threads_in_use(self) -> int:
        """Actors currently holding a thread (running or stopping)."""
        with self._lock:
            cells = list(self._cells.values())
        return sum(1 for c in cells if c.ref is not None)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the whole tree in reverse start order. Idempotent."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        self._root.stop(final=True, reason="system shutdown")
        self._scheduler.stop()
        with self._lock:
            leftover = list(self._cells.values())
            self._cells.clear()
        for cell in leftover:
            cell.stop(final=True, reason="system shutdown")
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close(timeout)
        self.log.info("system.stop", system=self.name)

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------ internals

    def _journal_writer(self) -> JournalWriter:
        writer = self._writer
        if writer is None:
            with self._lock:
                if self._shutdown:
                    raise ActorStoppedError(self.name, "the actor system is shut down")
                if self._writer is None:
                    self._writer = JournalWriter(self.store, f"{self.name}-journal")
                writer = self._writer
        return writer

    def _check_open(self) -> None:
        if self._shutdown:
            raise ActorStoppedError(self.name, "the actor system is shut down")

    def _cell(self, actor_id: str) -> Cell:
        if not isinstance(actor_id, str):
            raise TypeError(f"actor id must be a str, got {type(actor_id).__name__}")
        with self._lock:
            cell = self._cells.get(actor_id)
        if cell is None:
            raise ActorNotFoundError(actor_id)
        return cell

    def _register(self, spec: ChildSpec, *, parent: Cell | None) -> Cell:
        with self._lock:
            existing = self._cells.get(spec.id)
            if existing is not None:
                if existing.parent is parent and existing.spec == spec and not existing.removed:
                    return existing  # a restarted supervisor re-adopts its initial child
                raise DuplicateActorError(spec.id)
            cell = Cell(self, spec, parent)
            self._cells[spec.id] = cell
            return cell

    def _unregister(self, cell: Cell) -> None:
        with self._lock:
            removed = self._cells.get(cell.id) is cell
            if removed:
                del self._cells[cell.id]
            self._active_passivatable.discard(cell)
        if removed:
            self.log.info(
                "actor.removed",
                actor_id=cell.id,
                parent=cell.parent.id if cell.parent else None,
                state=cell.state.value,
            )

    def _children_of(self, parent: Cell) -> list[Cell]:
        with self._lock:
            return [c for c in self._cells.values() if c.parent is parent]

    def _track(self, cell: Cell) -> None:
        if cell.spec.passivate_after is not None:
            with self._lock:
                self._active_passivatable.add(cell)

    def _untrack(self, cell: Cell) -> None:
        with self._lock:
            self._active_passivatable.discard(cell)

    def _child_failed(self, cell: Cell, generation: int, err: BaseException) -> None:
        parent = cell.parent
        if parent is None:
            self.escalation = Escalation(err, self.clock())
            self.log.error("system.escalated", system=self.name, error=repr(err))
            if self._on_escalation is not None:
                self._on_escalation(self.escalation)
            return
        # If the parent is gone too, its own parent handles the restart.
        with contextlib.suppress(ActorError):
            parent.tell(_ChildFailed(cell.id, generation, err), activity=False)

    def _child_exited(self, cell: Cell, generation: int) -> None:
        if cell.parent is not None:
            with contextlib.suppress(ActorError):
                cell.parent.tell(_ChildExited(cell.id, generation), activity=False)

    def _activate_async(self, cell: Cell) -> None:
        threading.Thread(target=cell.activate, name=f"activate-{cell.id}", daemon=True).start()

    def _sweep(self) -> None:
        """Periodic passivation sweep on the scheduler thread."""
        self.passivate_idle_now()
        self._scheduler.call_later(self._passivation_check, self._sweep)

    def passivate_idle_now(self) -> int:
        """Run one passivation sweep now; returns how many actors it stopped."""
        now = self.clock()
        with self._lock:
            candidates = list(self._active_passivatable)
        count = 0
        for cell in candidates:
            limit = cell.spec.passivate_after
            if limit is not None and now - cell.last_active >= limit and cell.passivate():
                count += 1
        return count

    def _lifecycle(self, cell: Cell, old: LifecycleState, new: LifecycleState, reason: str) -> None:
        if not self.logging_info():
            return  # not wanted: build no event (two per actor start and stop)
        self.log.info(
            "actor.lifecycle",
            actor_id=cell.id,
            parent=cell.parent.id if cell.parent else None,
            old=old.value,
            state=new.value,
            generation=cell.generation,
            reason=reason,
        )
