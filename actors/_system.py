"""The actor system: one registry, one root supervisor, one scheduler.

Nothing here is process-global: two systems in one process never see each
other's actors, which is what lets tests (and tenants) run in isolation.
The system owns the clock, the RNG (restart jitter), the fault injector and
the event store durable actors journal to.

Batched delivery (``ask_many``, ``prepare_asks``) is in ``_batch_asks``;
the protocols actors and cells see the system through in ``_host``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from eventstore import EventLog

from ._batch_asks import BatchAsks
from ._cell import Cell, ChildSpec
from ._errors import (
    ActorCrashedError,
    ActorError,
    ActorNotFoundError,
    ActorStoppedError,
    AskTimeoutError,
    DuplicateActorError,
    SupervisorCallError,
)
from ._faults import FaultInjector
from ._journal_writer import JournalWriter
from ._lifecycle import LifecycleState, Shutdown
from ._supervisor import Backoff, Strategy, Supervisor
from ._supervisor_calls import (
    ChildCall,
    ChildCounts,
    ChildExit,
    ChildInfo,
    CountChildren,
    StartChild,
    StartChildren,
    StartFromTemplate,
    WhichChildren,
)

ROOT = "root"


@dataclass(frozen=True)
class Escalation:
    """The root supervisor gave up: the whole tree is down."""

    error: BaseException
    at: float


def quiet_logger(name: str = "actors", extra: Sequence[Any] = ()) -> Any:
    """A structlog logger that renders JSON into stdlib logging (silent unless
    the embedding application configures logging). ``extra``: processors
    run before rendering (e.g. adding trace ids)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            # Drop events the stdlib logger would not emit before any work is
            # done on them: a step journals two events, rendering them costs.
            structlog.stdlib.filter_by_level,
            structlog.processors.add_log_level,
            *extra,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


class ActorSystem(BatchAsks):
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
        log_processors: Sequence[Any] = (),
    ) -> None:
        from ._scheduler import Scheduler

        self.name = name
        self.store = store
        self.log = logger if logger is not None else quiet_logger(extra=log_processors)
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
        """Start ``spec`` as a dynamic child of supervisor ``parent``
        (``start_child(parent, spec)``).

        ``activate=False`` registers it passivated: no thread until its first
        message (how thousands of waiting durable actors are recovered).
        """
        self.start_child(parent, spec, activate=activate)

    # ------------------------------------------------------------ OTP supervisor calls

    def start_child(
        self, supervisor_id: str, child: ChildSpec | str, *args: object, activate: bool = True
    ) -> None:
        """OTP ``start_child``: start ``child`` (a :class:`ChildSpec`) under
        ``supervisor_id``; or, for a :class:`DynamicSupervisor` with a
        template, the child ``template(child, *args)`` (``child`` is its id).

        Raises :class:`ActorStartError` if it fails to start (nothing is kept:
        the id is free again), :class:`DuplicateActorError` if the id is in
        use (:class:`AlreadyPresentError` if it names a terminated child of
        this supervisor), :class:`MaxChildrenError` past ``max_children``.
        """
        if isinstance(child, ChildSpec):
            if args:
                raise TypeError("start_child with a ChildSpec takes no further arguments")
            message: object = StartChild(child, activate=activate)
        elif isinstance(child, str):
            message = StartFromTemplate(child, args, activate=activate)
        else:
            raise TypeError(f"child must be a ChildSpec or an id, got {type(child).__name__}")
        self._supervisor_call(supervisor_id, message)

    def terminate_child(self, supervisor_id: str, child_id: str) -> None:
        """OTP ``terminate_child``: stop the child (its ``shutdown`` policy
        applies) and keep it terminated (temporary children and those of a
        dynamic supervisor are removed instead). Its restart, if one was
        due, is cancelled."""
        self._supervisor_call(supervisor_id, ChildCall("terminate", child_id))

    def restart_child(self, supervisor_id: str, child_id: str) -> None:
        """OTP ``restart_child``: start a terminated child again. Raises
        :class:`ChildRunningError` if it runs or its restart is due,
        :class:`ActorStartError` if it fails (it stays terminated)."""
        self._supervisor_call(supervisor_id, ChildCall("restart", child_id))

    def delete_child(self, supervisor_id: str, child_id: str) -> None:
        """OTP ``delete_child``: forget a terminated child's spec. Raises
        :class:`ChildRunningError` unless it is terminated."""
        self._supervisor_call(supervisor_id, ChildCall("delete", child_id))

    def which_children(self, supervisor_id: str = ROOT) -> list[ChildInfo]:
        """OTP ``which_children``: each child, in start order."""
        result: list[ChildInfo] = self._supervisor_call(supervisor_id, WhichChildren(detailed=True))
        return result

    def count_children(self, supervisor_id: str = ROOT) -> ChildCounts:
        """OTP ``count_children``."""
        result: ChildCounts = self._supervisor_call(supervisor_id, CountChildren())
        return result

    def _supervisor_call(self, supervisor_id: str, message: object) -> Any:
        self._check_open()
        cell = self._cell(supervisor_id)
        actor = cell.actor
        if actor is not None and not isinstance(actor, Supervisor):
            raise SupervisorCallError(f"actor {supervisor_id!r} is not a supervisor")
        reply = self.ask(supervisor_id, message, timeout=max(self.ask_timeout, 3600.0))
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def spawn_many(
        self, specs: Sequence[ChildSpec], *, parent: str = ROOT, activate: bool = True
    ) -> None:
        """Start several children of ``parent`` in order, in one round-trip.

        Stops at the first failure and raises it; the children before it stay.
        """
        self._supervisor_call(parent, StartChildren(list(specs), activate=activate))

    def stop(self, actor_id: str) -> None:
        """Stop and remove an actor (orderly). Unknown ids raise."""
        cell = self._cell(actor_id)
        if cell.parent is None:
            raise ActorError("stop the root supervisor with shutdown()")
        self._supervisor_call(cell.parent.id, ChildCall("remove", actor_id))

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
        """(id, state) of each child of ``supervisor_id``, in start order;
        :meth:`which_children` tells more."""
        result: list[tuple[str, LifecycleState]] = self._supervisor_call(
            supervisor_id, WhichChildren(detailed=False)
        )
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
            if isinstance(err, Shutdown):
                return
            self.escalation = Escalation(err, self.clock())
            self.log.error("system.escalated", system=self.name, error=repr(err))
            if self._on_escalation is not None:
                self._on_escalation(self.escalation)
            return
        # If the parent is gone too, its own parent handles the restart.
        with contextlib.suppress(ActorError):
            parent.tell(ChildExit(cell.id, generation, err), activity=False)

    def _child_exited(self, cell: Cell, generation: int) -> None:
        if cell.parent is not None:
            with contextlib.suppress(ActorError):
                cell.parent.tell(ChildExit(cell.id, generation, None), activity=False)

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
