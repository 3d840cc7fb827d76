"""``aura.Runtime``: the root of a supervision tree of missions over one data
directory. Opening it recovers every in-flight mission; closing it stops
the tree in order and closes the log.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import msgspec

from actors import (
    ActorCrashedError,
    ActorError,
    ActorNotFoundError,
    ActorSystem,
    ChildSpec,
    DuplicateActorError,
    DynamicSupervisor,
    FaultInjector,
    LifecycleState,
    MessageRejectedError,
)
from eventstore import (
    ConcurrencyError,
    Durability,
    EventLog,
    EventStoreError,
    LeaseLostError,
    NewEvent,
    RecordedEvent,
)

from ..core._budget import Budget
from ..core._definitions import MissionDef, mission_definition
from ..core._errors import AuraError, QueryError
from ..core._lifecycle import SETTLED, MissionStatus
from ..core._logging import make_logger
from ..core._messages import (
    RECOVERY,
    RESUMED,
    REUSE_POLICIES,
    STREAM_PREFIX,
    TRANSITION,
    Cancel,
    MissionMessage,
    Peek,
    Query,
    QueryAnswer,
    RaiseBudget,
    Recovery,
    Resumed,
    Signal,
    Start,
    StepDone,
    TimerFired,
    Transition,
    input_digest,
)
from ..core._queues import Enqueued, Queue, QueueDeduplicatedError, QueueView
from ..core._schedules import Schedule, ScheduleView
from ..core._tags import check_tags
from ..core._telemetry import Telemetry
from ..governance._audit import (
    AUDIT_STREAM,
    AuditReport,
    audit_event,
    bundle,
    verify_audit,
    with_audit,
)
from ..governance._gateway import ToolGateway
from ..governance._memory import MEMORY, decode_write, fold
from ..governance._tokens import load_or_create_key, load_or_create_store_key
from ._commands import (
    COMMAND_POLL,
    COMMANDS,
    Command,
    delivered_upto,
    mark_delivered,
    pending_commands,
)
from ._compactor import ArchiveRun, CompactionReport, Compactor, compact
from ._context import encode_args
from ._delivery import Outbox
from ._fork import fork_commit
from ._mission_actor import AlreadyStarted, MissionActor, MissionView
from ._mission_children import ChildJob, EnqueueJob
from ._mission_events import published_events
from ._mission_leases import MissionFencedStore
from ._ownership import DirectoryLock
from ._place import Place
from ._queue_dispatch import QueueDispatcher
from ._scheduler import ScheduleRunner, pause_in, resume_in
from ._sharing import Sharing, hand_over_single_owner, release_unleased
from ._steps import StepRunner
from ._store_lease import FencedStore, StoreLease

PREFIX = STREAM_PREFIX
SUPERVISOR = "missions"
REMOTE_POLL = 0.1  # seconds between reads of a mission another runtime runs
COMPACTOR = "compactor"
MISSION_MAX_RESTARTS = 5
MISSION_RESTART_PERIOD = 30.0


class MissionNotFoundError(AuraError, LookupError):
    def __init__(self, mission_id: str) -> None:
        self.mission_id = mission_id
        super().__init__(f"no mission {mission_id!r} in this data directory")


class MissionConflictError(AuraError):
    """``start`` with an id that already runs (or ran) a different mission or
    other input, and whose reuse policy does not allow a new run."""

    def __init__(  # noqa: PLR0917
        self,
        mission_id: str,
        existing: str,
        existing_digest: str,
        requested: str,
        requested_digest: str,
        status: MissionStatus,
    ) -> None:
        self.mission_id = mission_id
        self.existing = (existing, existing_digest)
        self.requested = (requested, requested_digest)
        super().__init__(
            f"mission id {mission_id!r} is {status.value} with {existing} (input "
            f"{existing_digest or 'unknown'}); this start asks for {requested} (input "
            f"{requested_digest}): use another id, the same input to get that mission back, "
            "or reuse='always' / 'if_failed' to begin a new run of a finished id"
        )


class MissionFailedError(AuraError):
    def __init__(self, view: MissionView) -> None:
        self.view = view
        super().__init__(f"mission {view.mission_id!r} failed: {view.error}")


class MissionCancelledError(AuraError):
    def __init__(self, view: MissionView) -> None:
        self.view = view
        super().__init__(f"mission {view.mission_id!r} was cancelled")


class MissionDeadError(AuraError):
    def __init__(self, view: MissionView) -> None:
        self.view = view
        super().__init__(f"mission {view.mission_id!r} is dead-lettered: {view.error}")


class MissionTimeoutError(AuraError, TimeoutError):
    pass


class MissionDamagedError(AuraError):
    """A mission's log holds a record that cannot be read: the mission is not
    run (its state would differ from its history); every other mission is.
    The message names stream, version and position (``aura doctor`` lists
    all damage)."""

    def __init__(self, mission_id: str, cause: str) -> None:
        self.mission_id = mission_id
        self.cause = cause
        super().__init__(f"mission {mission_id!r} cannot be recovered, its log is damaged: {cause}")


class MissionHandle:
    """A started mission, by id. Cheap; any number may exist."""

    def __init__(self, runtime: Runtime, mission_id: str) -> None:
        self._runtime = runtime
        self.mission_id = mission_id

    def status(self) -> MissionStatus:
        return self._runtime.get(self.mission_id).status

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the mission to finish; return its result or raise why not."""
        view = self._runtime.wait(self.mission_id, timeout)
        if view.status is MissionStatus.COMPLETED:
            return view.result
        if view.status is MissionStatus.CANCELLED:
            raise MissionCancelledError(view)
        if view.status is MissionStatus.DEAD:
            raise MissionDeadError(view)
        raise MissionFailedError(view)

    def cancel(self) -> None:
        self._runtime.cancel(self.mission_id)

    def __repr__(self) -> str:
        return f"MissionHandle({self.mission_id!r})"


class Runtime:
    """Durable missions over ``path``. Use as a context manager.

    ``missions``: the definitions this process can run (and recover).
    ``tools``: the ``@aura.tool`` functions missions may call through the
    gateway; ``key``: the HMAC key signing their tokens (default: kept in
    ``<path>/keys/runtime.key``, 0600); ``token_ttl``: seconds an execution
    token lives (renewed while its run goes on). ``history_limit``: events
    per run past which ``ctx.info.continue_as_new_suggested`` is true (a
    mission's own ``history_limit`` wins). ``archive_completed_after``:
    seconds after which a finished mission's history is archived (``None``:
    only by ``rt.compact()``). ``archive_retention``: seconds after which
    archived mission history is deleted for good (``None``: kept forever;
    the audit chain is always kept). ``clock``: wall-clock seconds stamped
    on journaled messages (``ctx.now()``); ``aura.testing.VirtualClock``
    makes durable timers and retry waits fire at once. ``store_wrapper``:
    wraps the event log (``aura.testing`` injects store faults with it).
    ``log``: ``"json"`` or ``"console"`` to print
    the structured events to stderr (default: silent unless the application
    configures stdlib logging, or passes its own structlog ``logger``).
    ``max_workers``: threads for sync steps. ``passivate_after``: seconds
    before an idle mission gives its thread back. ``faults``: crash
    injection at the missions' journal points (tests). ``standby``: if
    another runtime owns the directory, wait until it exits (however it
    dies) and take over, instead of raising ``DirectoryLockedError``.
    ``max_recovery_attempts``: a mission recovered this many times in a row
    (process restarts included) without journaling any progress is
    dead-lettered instead of resumed again (``rt.redrive`` resets it).
    ``shared``: share the store with other runtimes (PostgreSQL: on this
    host or others; an LMDB directory: processes of this host): each
    mission is run by the one runtime holding its
    lease (``lease_ttl``, renewed every ``heartbeat`` seconds), missions of
    a runtime that dies are claimed and resumed by the others, and commands
    reach whichever runtime runs the mission. ``max_missions``: how many
    unfinished missions a shared runtime takes on (0: none, a client that
    only starts, signals and watches).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: str | None = None,
        schema: str = "aura",
        lease_ttl: float = 10.0,
        heartbeat: float = 2.0,
        missions: Sequence[Any] = (),
        max_workers: int = 8,
        durability: Durability = "sync",
        passivate_after: float = 60.0,
        logger: Any = None,
        faults: FaultInjector | None = None,
        tools: Sequence[Any] = (),
        key: bytes | None = None,
        token_ttl: float = 86_400.0,
        history_limit: int = 10_000,
        archive_completed_after: float | None = 3600.0,
        archive_retention: float | None = None,
        log: str | None = None,
        clock: Callable[[], float] = time.time,
        store_wrapper: Callable[[EventLog], Any] | None = None,
        standby: bool = False,
        max_recovery_attempts: int = 20,
        shared: bool = False,
        max_missions: int = 10_000,
        queues: Sequence[Queue] = (),
        schedules: Sequence[Schedule] = (),
        telemetry: Telemetry | None = None,
    ) -> None:
        self._clock = clock
        if telemetry is not None and not isinstance(telemetry, Telemetry):
            raise AuraError(
                f"telemetry= takes an aura.Telemetry (e.g. aura.integrations.otel"
                f".OpenTelemetry()), got {telemetry!r}"
            )
        self._telemetry = telemetry
        self._definitions: dict[str, MissionDef] = {}
        for fn in missions:
            self._learn(fn)
        self._queues: dict[str, QueueDispatcher] = {}
        for queue in queues:
            if not isinstance(queue, Queue):
                raise AuraError(f"queues= takes aura.Queue objects, got {queue!r}")
            if queue.name in self._queues:
                raise AuraError(f"two queues are named {queue.name!r}")
            self._queues[queue.name] = QueueDispatcher(self, queue)
        self._schedules: dict[str, ScheduleRunner] = {}
        for schedule in schedules:
            if not isinstance(schedule, Schedule):
                raise AuraError(f"schedules= takes aura.Schedule objects, got {schedule!r}")
            if schedule.name in self._schedules:
                raise AuraError(f"two schedules are named {schedule.name!r}")
            self._learn(schedule.mission)
            self._schedules[schedule.name] = ScheduleRunner(self, schedule)
        self._passivate_after = passivate_after
        if (
            isinstance(history_limit, bool)
            or not isinstance(history_limit, int)
            or history_limit < 1
        ):
            raise AuraError(f"history_limit must be an int >= 1, got {history_limit!r}")
        self._history_limit = history_limit
        if (
            isinstance(max_recovery_attempts, bool)
            or not isinstance(max_recovery_attempts, int)
            or max_recovery_attempts < 1
        ):
            raise AuraError(
                f"max_recovery_attempts must be an int >= 1, got {max_recovery_attempts!r}"
            )
        self._max_recovery_attempts = max_recovery_attempts
        self._settled_events: dict[str, threading.Event] = {}
        self._settle_callbacks: dict[str, list[Callable[[], None]]] = {}
        self._damaged: dict[str, str] = {}  # mission id -> what of its log is unreadable
        self._events_lock = threading.Lock()
        self._changed = threading.Condition()  # any mission changed status
        self._changes = 0
        self._closed = False
        self.place = Place.of(path, store, schema)
        self.path = self.place.data
        self._unsubscribe: Callable[[], None] | None = None
        self._sharing: Sharing | None = None
        self.lost: str | None = None
        """Why this runtime stopped on its own (its store lease was taken), or None."""
        store_log, self._lock = self._open_place(
            durability,
            standby,
            lease_ttl=lease_ttl,
            heartbeat=heartbeat,
            shared=shared,
            max_missions=max_missions,
        )
        try:
            if key is None:
                key = (
                    load_or_create_store_key(store_log)
                    if self.place.is_postgres
                    else load_or_create_key(self.place.data / "keys")  # type: ignore[operator]
                )
            self._gateway = ToolGateway(key, tools, execution_ttl=token_ttl)
        except BaseException:
            self._lock.release()
            store_log.close()
            raise
        self.store: Any = store_log if store_wrapper is None else store_wrapper(store_log)
        try:
            extra = [telemetry.add_trace_ids] if telemetry is not None else []
            if logger is None and log is not None:
                logger = make_logger(log, extra=extra)
            self.system = ActorSystem(
                "aura", store=self.store, logger=logger, faults=faults, log_processors=extra
            )
            self._gateway.log = self.system.log
            self.system.spawn(
                ChildSpec(
                    SUPERVISOR,
                    lambda: DynamicSupervisor(max_restarts=100, period=10),
                    shutdown="infinity",  # it stops its missions in order, however long
                )
            )
            sweep_every = min(archive_completed_after or 60.0, archive_retention or 60.0, 60.0)
            self.system.spawn(
                ChildSpec(
                    COMPACTOR,
                    lambda: Compactor(
                        self.store, archive_completed_after, sweep_every, archive_retention
                    ),
                )
            )
            self._steps = StepRunner(
                self._deliver,
                max_workers,
                self.system.call_later,
                lambda err: self.system.log.error("step.thread_error", error=repr(err)),
                clock=clock,
                faults=faults,
                may_start=None if self._sharing is None else self._sharing.leases.current,
                telemetry=telemetry,
            )
            self._outbox = Outbox(
                self.system,
                lambda actor_id, message: self._deliver_any(actor_id[len(PREFIX) :], message),
                self._steps.unchain,
                self.system.log,
                on_batch=None if telemetry is None else telemetry.batch_committed,
            )
            if self._sharing is None:
                self._recover()
            self._polling = threading.Lock()
            self._commands_done = delivered_upto(self.store)
            self._poll_commands()  # what was queued while no runtime served this directory
            for dispatcher in self._queues.values():
                dispatcher.recover()
            for runner in self._schedules.values():
                runner.register()
                runner.run_due()  # what is due since the last tick, by its catch-up policy
            self._schedule_poll()
            # On a shared store, a command another process queues wakes the
            # poll at once (LISTEN/NOTIFY) instead of at its next tick.
            subscribe = getattr(self.store, "subscribe", None)
            if callable(subscribe):
                self._unsubscribe = subscribe(
                    lambda head: self._steps.call(self._poll_commands), streams=(COMMANDS,)
                )
            if self._sharing is not None:
                self._sharing.ready()
            self.system.log.info("runtime.start", path=self.place.describe())
        except BaseException:
            if hasattr(self, "_steps"):
                self._steps.close()
            if hasattr(self, "system"):
                self.system.shutdown()
            self.store.close()
            self._lock.release()
            raise

    # ------------------------------------------------------------ public API

    def start(
        self,
        mission: Any,
        *args: Any,
        mission_id: str | None = None,
        budget: Budget | None = None,
        reuse: str = "never",
        deadline: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> MissionHandle:
        """Start ``mission(ctx, *args)``; idempotent per ``mission_id``: the
        same mission and input again returns the same mission, and journals
        nothing. Other input for an id that exists raises
        ``MissionConflictError``, unless the id has settled and ``reuse``
        allows a new run of it (Temporal's id-reuse policy): ``"never"``
        (default), ``"if_failed"`` (after failed, cancelled or dead),
        ``"always"`` (after any end). A new run gets the next run number and
        starts from nothing; the old runs stay in the mission's history.
        ``budget`` overrides the definition's. ``deadline``: seconds from now
        after which a mission that has not settled times out: it is cancelled
        (completed steps compensated) with reason ``timed out: ...``; the
        deadline is journaled, so it holds across restarts and new runs.
        ``tags``: str -> str the mission is filed under (``rt.missions(tags=)``,
        ``aura ls --tag k=v``, the console), journaled with the start."""
        self._check_open()
        definition = self._learn(mission)
        tags = check_tags(tags)
        trace = self._trace_of(None)
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, (int, float))
            or not math.isfinite(deadline)
            or deadline <= 0
        ):
            raise AuraError(f"deadline= must be seconds > 0, got {deadline!r}")
        if self._sharing is not None:
            if mission_id is None:
                mission_id = uuid.uuid4().hex
            if not isinstance(mission_id, str) or not mission_id or "/" in mission_id:
                raise AuraError(
                    f"mission_id must be a non-empty str without '/', got {mission_id!r}"
                )
            if not self._sharing.acquire(mission_id):
                if deadline is not None:
                    raise AuraError(
                        f"mission {mission_id!r} is run by another runtime (or this one has "
                        "no room): a deadline= cannot be sent with the start yet"
                    )
                if budget is not None:
                    raise AuraError(
                        f"mission {mission_id!r} is run by another runtime (or this one has "
                        "no room): a budget= cannot be sent with the start; give the "
                        "definition its budget"
                    )
                _, decoded = encode_args(f"mission {mission_id!r}", tuple(args))
                self._sharing.send(
                    Command(
                        "start",
                        mission_id,
                        self._clock(),
                        name=definition.name,
                        payload=list(decoded),
                        tags=tags,
                        reuse=reuse,
                        trace=trace,
                    )
                )
                return MissionHandle(self, mission_id)
        return self._start(
            definition.name,
            args,
            mission_id,
            budget,
            reuse,
            deadline=deadline,
            tags=tags,
            trace=trace,
        )

    def _start(
        self,
        name: str,
        args: Sequence[Any],
        mission_id: str | None,
        budget: Budget | None,
        reuse: str,
        *,
        inbox: int = 0,
        deadline: float | None = None,
        tags: dict[str, str] | None = None,
        parent: str = "",
        parent_close: str = "",
        trace: dict[str, str] | None = None,
    ) -> MissionHandle:
        if budget is not None and not isinstance(budget, Budget):
            raise AuraError(f"budget= must be an aura.Budget, got {budget!r}")
        if reuse not in REUSE_POLICIES:
            raise AuraError(f"reuse= must be one of {', '.join(REUSE_POLICIES)}, got {reuse!r}")
        if mission_id is None:
            mission_id = uuid.uuid4().hex
        if not isinstance(mission_id, str) or not mission_id or "/" in mission_id:
            raise AuraError(f"mission_id must be a non-empty str without '/', got {mission_id!r}")
        _, decoded = encode_args(f"mission {mission_id!r}", tuple(args))
        if mission_id in self._damaged:
            raise MissionDamagedError(mission_id, self._damaged[mission_id])
        actor_id = PREFIX + mission_id
        self._ensure_actor(mission_id, activate=True)
        now = self._clock()
        due = now + deadline if deadline is not None else 0.0
        start = Start(
            name, decoded, now, budget, reuse, inbox, due, tags or {}, parent, parent_close,
            trace or {},
        )  # fmt: skip
        reply = self._ask(actor_id, start)
        if isinstance(reply, AlreadyStarted):
            view = reply.view
            digest = input_digest(name, decoded)
            if view.name != name or (view.input_digest and view.input_digest != digest):
                raise MissionConflictError(
                    mission_id, view.name or "?", view.input_digest, name, digest, view.status
                )
        return MissionHandle(self, mission_id)

    def get(self, mission_id: str) -> MissionView:
        self._check_open()
        if not isinstance(mission_id, str):
            raise MissionNotFoundError(repr(mission_id))
        if mission_id in self._damaged:
            raise MissionDamagedError(mission_id, self._damaged[mission_id])
        actor_id = PREFIX + mission_id
        if self._sharing is not None and not self._runs_here(mission_id):
            remote = self._sharing.remote_view(mission_id)
            if remote is None:
                return self._queued_view(mission_id)
            return remote
        if not self.system.exists(actor_id):
            return self._queued_view(mission_id)
        if self.system.state(actor_id) is LifecycleState.PASSIVATED:
            settled = self._settled_view(mission_id)
            if settled is not None:
                return settled  # finished or dead: read from the log, no replay
        view: MissionView = self._ask(actor_id, Peek())
        return view

    def _verdict(
        self, mission_id: str, last: RecordedEvent | None = None
    ) -> tuple[Transition, int] | None:
        """The journaled verdict of a finished or dead mission (its last
        event, read unless given), with its version; None while it may
        still run. One read."""
        if last is None:
            last = self._last_event(PREFIX + mission_id)
        if last is None or last.kind != TRANSITION:
            return None
        t = msgspec.msgpack.decode(last.data, type=Transition)
        return (t, last.version) if MissionStatus(t.status) in SETTLED else None

    def _last_event(self, stream: str) -> RecordedEvent | None:
        version = self.store.version(stream)
        return next(iter(self.store.read(stream, version, version)), None) if version else None

    def _settled_view(self, mission_id: str) -> MissionView | None:
        verdict = self._verdict(mission_id)
        if verdict is None:
            return None
        t, version = verdict
        stream = PREFIX + mission_id
        status = MissionStatus(t.status)
        error = "" if status is MissionStatus.COMPLETED else t.reason
        memory = fold(
            decode_write(e.data) for e in self.store.read(stream, archived=True) if e.kind == MEMORY
        )
        return MissionView(
            mission_id,
            t.name or None,
            status,
            t.result,
            error,
            t.steps,
            version,
            memory,
            t.cost_usd,
            t.cost_tokens,
            run=t.run or 1,
            tags=dict(t.tags),
        )

    def handle(self, mission_id: str) -> MissionHandle:
        self.get(mission_id)
        return MissionHandle(self, mission_id)

    def signal(
        self,
        mission_id: str,
        name: str,
        payload: Any = None,
        *,
        idempotency_key: str | None = None,
        _command: int = 0,
        _inbox: int = 0,
    ) -> None:
        """Deliver signal ``name`` to a mission (journaled; kept until awaited).
        With ``idempotency_key``, a signal with a key this mission already got
        is dropped (nothing journaled): a retried send is delivered once."""
        if not isinstance(name, str) or not name:
            raise AuraError("a signal needs a non-empty name")
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key
        ):
            raise AuraError(f"idempotency_key must be a non-empty str, got {idempotency_key!r}")
        _, decoded = encode_args(f"signal {name!r} to mission {mission_id!r}", [payload])
        sent = Command(
            "signal",
            mission_id,
            self._clock(),
            name=name,
            payload=decoded[0],
            key=idempotency_key or "",
        )
        if not (_command or _inbox) and self._sent_elsewhere(sent):
            return
        view = self.get(mission_id)
        if view.status in SETTLED:
            raise AuraError(
                f"mission {mission_id!r} is {view.status.value}: it takes no more signals"
            )
        message = Signal(name, decoded[0], self._clock(), _command, idempotency_key or "", _inbox)
        self._ask(PREFIX + mission_id, message)

    def get_event(
        self, mission_id: str, key: str, timeout: float | None = None, *, default: Any = None
    ) -> Any:
        """The value ``mission_id`` published under ``key`` with
        ``ctx.set_event`` (the latest, once durable); waits up to ``timeout``
        seconds (None: for ever) for it to be published, then returns
        ``default``. ``MissionNotFoundError`` if there is no such mission."""
        self._check_open()
        if not isinstance(key, str) or not key:
            raise AuraError(f"an event key is a non-empty str, got {key!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise AuraError(f"timeout must be seconds >= 0 or None, got {timeout!r}")
        if not isinstance(mission_id, str) or self.store.version(PREFIX + mission_id) == 0:
            raise MissionNotFoundError(repr(mission_id))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._changes
            found = published_events(self.store, mission_id)
            if key in found:
                return found[key]
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return default
            if self._sharing is not None:  # published by another runtime: look again
                left = REMOTE_POLL if left is None else min(left, REMOTE_POLL)
            with self._changed:
                if self._changes == seen:
                    self._changed.wait(left)
            self._check_open()

    def query(self, mission_id: str, name: str, *args: Any) -> Any:
        """Ask a running or waiting mission's query handler ``name``
        (``ctx.set_query_handler``) with ``args``; its answer is computed from
        the mission's current state and nothing is written to its history.
        Raises :class:`QueryError` (no such handler, it raised, the mission
        has settled or runs on another runtime) or ``MissionNotFoundError``."""
        if not isinstance(name, str) or not name:
            raise QueryError(f"a query needs a non-empty name, got {name!r}")
        view = self.get(mission_id)
        if self._sharing is not None and not self._runs_here(mission_id):
            raise QueryError(f"mission {mission_id!r} runs on another runtime: query it there")
        if view.status in SETTLED:
            raise QueryError(
                f"mission {mission_id!r} is {view.status.value}: only a running or waiting "
                "mission answers queries (its result and events stay readable)"
            )
        _, decoded = encode_args(f"query {name!r} to mission {mission_id!r}", list(args))
        answer: QueryAnswer = self._ask(PREFIX + mission_id, Query(name, decoded))
        if answer.error:
            raise QueryError(answer.error)
        return answer.value

    def cancel(
        self, mission_id: str, reason: str = "cancelled by request", *, _inbox: int = 0
    ) -> None:
        """Cancel: the mission's completed steps with ``compensate=`` are
        undone in reverse order, then it is ``CANCELLED``."""
        if not _inbox and self._sent_elsewhere(
            Command("cancel", mission_id, self._clock(), reason=reason)
        ):
            return
        self.get(mission_id)
        self._ask(PREFIX + mission_id, Cancel(reason, self._clock(), inbox=_inbox))

    def terminate(
        self, mission_id: str, reason: str = "terminated by request", *, _inbox: int = 0
    ) -> None:
        """End a mission now, as ``CANCELLED``, without compensation (also
        one that is compensating): the way out of a mission stuck in its own
        code or saga. Steps in flight are abandoned (their results are
        ignored). Journaled and audited like a cancel."""
        if not _inbox and self._sent_elsewhere(
            Command("terminate", mission_id, self._clock(), reason=reason)
        ):
            return
        view = self.get(mission_id)
        if view.status in SETTLED:
            raise AuraError(f"mission {mission_id!r} is {view.status.value}: nothing to terminate")
        self._ask(PREFIX + mission_id, Cancel(reason, self._clock(), force=True, inbox=_inbox))

    def raise_budget(
        self,
        mission_id: str,
        *,
        usd: float | None = None,
        tokens: int | None = None,
        _inbox: int = 0,
    ) -> MissionView:
        """Set new budget limits (``None`` keeps one); a mission waiting on its
        budget resumes if it is now within it. Journaled and audited. On a
        shared store it goes to the runtime running the mission."""
        new = Budget(usd, tokens)  # validates
        view = self.get(mission_id)
        if view.status in SETTLED:
            raise AuraError(f"mission {mission_id!r} is {view.status.value}: no budget to raise")
        if not _inbox and self._sent_elsewhere(
            Command("budget", mission_id, self._clock(), payload=[new.usd, new.tokens])
        ):
            return self.get(mission_id)
        self._ask(PREFIX + mission_id, RaiseBudget(new.usd, new.tokens, self._clock(), _inbox))
        return self.get(mission_id)

    def dead_letters(self) -> list[MissionView]:
        """Missions that are ``DEAD`` (non-determinism, missing definition)."""
        return self.missions(status=MissionStatus.DEAD)

    def redrive(self, mission_id: str, *, _inbox: int = 0) -> MissionHandle:
        """Resume a ``DEAD`` mission from its log with the current code.

        The mission is replayed from the start; if the cause is gone (the
        definition is now known, the code matches the log again) it continues
        where it was, else it is dead-lettered again with the new reason.
        """
        if not _inbox and self._sent_elsewhere(Command("redrive", mission_id, self._clock())):
            return MissionHandle(self, mission_id)
        view = self.get(mission_id)
        if view.status is not MissionStatus.DEAD:
            raise AuraError(
                f"mission {mission_id!r} is {view.status.value}, not dead: nothing to redrive"
            )
        redriven = Transition(MissionStatus.RUNNING.value, "redriven", inbox=_inbox)
        self._replay_again(
            mission_id, [(TRANSITION, msgspec.msgpack.encode(redriven), "mission.redriven", {})]
        )
        return MissionHandle(self, mission_id)

    def resume(
        self, mission_id: str, reason: str = "resumed by request", *, _inbox: int = 0
    ) -> MissionHandle:
        """Take back a cancel (or terminate): the mission goes on from where
        it stopped, as if it had not been cancelled; step results and timers
        that arrived meanwhile are applied in order, steps in flight run
        again (same idempotency key). Refused when the cancel compensated
        steps (going on would build on undone work: start a new run with
        ``reuse=`` instead). Journaled and audited."""
        if not _inbox and self._sent_elsewhere(
            Command("resume", mission_id, self._clock(), reason=reason)
        ):
            return MissionHandle(self, mission_id)
        view = self.get(mission_id)
        if view.status is not MissionStatus.CANCELLED:
            raise AuraError(
                f"mission {mission_id!r} is {view.status.value}, not cancelled: nothing to resume"
            )
        stream = PREFIX + mission_id
        decoder = msgspec.msgpack.Decoder(MissionMessage)
        cancel_version, compensated = 0, False
        for e in self.store.read(stream, archived=True):
            if e.kind == "message" and isinstance(msg := decoder.decode(e.data), Cancel):
                cancel_version, compensated = e.version, False
            elif e.kind == "message" and isinstance(msg, StepDone):
                compensated |= cancel_version > 0 and msg.fingerprint.startswith("compensate ")
            elif e.kind == TRANSITION and cancel_version:
                status = msgspec.msgpack.decode(e.data, type=Transition).status
                compensated |= status == MissionStatus.COMPENSATING.value
        if not cancel_version:
            raise AuraError(f"mission {mission_id!r} has no cancel in its log to take back")
        if compensated:
            raise AuraError(
                f"mission {mission_id!r}: its cancel compensated steps, so resuming would go on "
                "over undone work; start a new run of the id instead (rt.start(..., "
                "reuse='if_failed'))"
            )
        marker = Resumed(cancel_version, self._clock(), reason)
        running = Transition(MissionStatus.RUNNING.value, reason, run=view.run, inbox=_inbox)
        self._replay_again(
            mission_id,
            [
                (RESUMED, msgspec.msgpack.encode(marker), "mission.resumed", {"reason": reason}),
                (
                    TRANSITION,
                    msgspec.msgpack.encode(running),
                    "mission.transition",
                    {"status": running.status, "reason": reason},
                ),
            ],
        )
        return MissionHandle(self, mission_id)

    def _replay_again(
        self, mission_id: str, journal: list[tuple[str, bytes, str, dict[str, Any]]]
    ) -> None:
        """Journal ``(kind, data, audit kind, audit detail)`` events, each
        with its audit entry (the last a RUNNING transition), then rebuild
        the mission from its log: redrive and resume."""
        actor_id = PREFIX + mission_id
        self.system.stop(actor_id)  # drop the settled incarnation and its state
        version = self.store.version(actor_id)
        at = self._clock()
        events = [NewEvent(kind, data) for kind, data, _, _ in journal]
        entries = [
            audit_event(audit_kind, mission_id, 0, version + i, at, **detail)
            for i, (_, _, audit_kind, detail) in enumerate(journal, start=1)
        ]
        self.store.append_many(with_audit(actor_id, events, version, entries))
        self._unsettled(mission_id)
        self._ensure_actor(mission_id, activate=True)
        self._ask(actor_id, Peek())  # replay now, resubmitting unfinished work
        self._status_changed()

    def fork(
        self, mission_id: str, *, from_position: int, new_id: str | None = None
    ) -> MissionHandle:
        """Start a new mission whose history is ``mission_id``'s up to event
        ``from_position`` (archived runs included), then runs live with the
        code deployed now: what the copy recorded is replayed, the rest runs.
        The way to retry a failed run from the step before it went wrong.
        ``new_id`` defaults to ``<mission_id>-fork-<N>``."""
        self._check_open()
        if self._sharing is not None:
            raise AuraError("fork on a shared store is not supported yet: use an exclusive runtime")
        new_id = new_id if new_id is not None else f"{mission_id}-fork-{from_position}"
        entries, snapshot = fork_commit(
            self.store, mission_id, from_position, new_id, self._clock()
        )
        self.store.append_many(entries)
        if snapshot is not None:
            self.store.save_snapshot(PREFIX + new_id, *snapshot)
        self._unsettled(new_id)
        self._ensure_actor(new_id, activate=True)
        self._ask(PREFIX + new_id, Peek())  # replay the copy, then go on live
        self._status_changed()
        self.system.log.info(
            "mission.forked", mission_id=new_id, source=mission_id, from_position=from_position
        )
        return MissionHandle(self, new_id)

    def compact(
        self, *, completed_after: float | None = 0.0, retention: float | None = None
    ) -> CompactionReport:
        """Archive now what no replay needs (see ``aura.engine._compactor``):
        finished runs, missions finished ``completed_after`` seconds ago or
        more (``None``: leave finished missions alone), old audit entries;
        with ``retention`` (seconds), delete archived history that old."""
        self._check_open()
        return compact(
            self.store, now=time.time(), completed_after=completed_after, retention=retention
        )

    def _compact_later(self, stream: str, up_to: int) -> None:
        """A mission continued as new: archive its finished run (compactor thread)."""
        with contextlib.suppress(ActorError):
            self.system.tell(COMPACTOR, ArchiveRun(stream, up_to))

    @property
    def gateway(self) -> ToolGateway:
        """The tool gateway (register tools, revoke tokens)."""
        return self._gateway

    def verify_audit(self) -> AuditReport:
        """Walk the audit chain and match it against every mission's log."""
        self._check_open()
        return verify_audit(self.store)

    def missions(
        self, status: MissionStatus | None = None, *, tags: dict[str, str] | None = None
    ) -> list[MissionView]:
        """Every mission's view (damaged ones: see :meth:`damaged`); with
        ``tags``, only those carrying every one of them."""
        found = self._all_missions(status)
        if not tags:
            return found
        wanted = check_tags(tags).items()
        return [v for v in found if wanted <= v.tags.items()]

    def _all_missions(self, status: MissionStatus | None) -> list[MissionView]:
        if self._sharing is not None:
            ids = [st[len(PREFIX) :] for st in self.store.streams() if st.startswith(PREFIX)]
            found = [self.get(i) for i in ids if i not in self._damaged]
            return [v for v in found if status is None or v.status is status]
        views = [
            self.get(mission_id)
            for actor_id in self.system.actor_ids()
            if actor_id.startswith(PREFIX)
            and (mission_id := actor_id[len(PREFIX) :]) not in self._damaged
        ]
        return [v for v in views if status is None or v.status is status]

    def damaged(self) -> dict[str, str]:
        """Missions whose log cannot be read, with what is damaged: they are
        not run; restore the directory from a backup (``aura doctor``)."""
        return dict(self._damaged)

    def _mark_damaged(self, mission_id: str, err: BaseException) -> None:
        if mission_id not in self._damaged:
            self._damaged[mission_id] = str(err)
            self.system.log.error("mission.damaged", mission_id=mission_id, error=str(err))
        self._settled(mission_id)  # nothing will change: wake its waiters

    def wait(
        self,
        mission_id: str,
        timeout: float | None = None,
        *,
        until: Collection[MissionStatus] | None = None,
    ) -> MissionView:
        """Block until the mission is terminal or dead (or, with ``until``, in
        one of those statuses); return its view. Raises ``MissionTimeoutError``."""
        if self._sharing is not None and not self._runs_here(mission_id):
            return self._wait_remote(mission_id, timeout, until)
        if until is None:
            view = self.get(mission_id)
            if view.status in SETTLED:
                return view
            if not self._settled_event(mission_id).wait(timeout):
                raise MissionTimeoutError(f"mission {mission_id!r} not finished after {timeout}s")
            return self.get(mission_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._changes
            view = self.get(mission_id)
            if view.status in until:
                return view
            with self._changed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise MissionTimeoutError(
                        f"mission {mission_id!r} not {'/'.join(s.value for s in until)} "
                        f"after {timeout}s (it is {view.status.value})"
                    )
                if self._changes == seen:
                    self._changed.wait(left)

    def _wait_remote(
        self, mission_id: str, timeout: float | None, until: Collection[MissionStatus] | None
    ) -> MissionView:
        """Wait for a mission another runtime runs (or that this one may
        take meanwhile): read its log again every ``REMOTE_POLL`` seconds."""
        wanted = SETTLED if until is None else until
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.get(mission_id)
            if view.status in wanted:
                return view
            if self._sharing is not None and self._runs_here(mission_id):
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                return self.wait(mission_id, left, until=until)
            if deadline is not None and time.monotonic() >= deadline:
                raise MissionTimeoutError(
                    f"mission {mission_id!r} not {'/'.join(s.value for s in wanted)} "
                    f"after {timeout}s (it is {view.status.value})"
                )
            with self._changed:
                self._changed.wait(REMOTE_POLL)
            self._check_open()

    def _status_changed(self) -> None:
        with self._changed:
            self._changes += 1
            self._changed.notify_all()

    def close(self) -> None:
        with self._events_lock:
            if self._closed:
                return
            self._closed = True
        self.system.log.info("runtime.stop", path=self.place.describe())
        self._outbox.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._steps.close()
        self.system.shutdown()
        self._lock.release()
        self.store.close()
        # Wake whoever waits on a mission: it will not change here any more
        # (they see the runtime closed, and why).
        with self._events_lock:
            waiting = list(self._settled_events.values())
            callbacks = [fn for fns in self._settle_callbacks.values() for fn in fns]
            self._settle_callbacks.clear()
        for event in waiting:
            event.set()
        for fn in callbacks:
            fn()
        self._status_changed()

    def _open_place(
        self,
        durability: Durability,
        standby: bool,
        *,
        lease_ttl: float,
        heartbeat: float,
        shared: bool,
        max_missions: int,
    ) -> tuple[Any, Any]:
        """The event log and what makes this runtime its only owner: the
        directory's file lock (LMDB) or the store's lease (PostgreSQL; the
        log returned then fences every write with it)."""
        place = self.place
        if shared:
            return self._open_shared(durability, lease_ttl, heartbeat, max_missions)
        if not place.is_postgres:
            assert place.data is not None
            # One owner per directory: fail now, or (standby) wait for the holder to die.
            lock = DirectoryLock.acquire(place.data, wait=standby)
            try:
                return place.open(durability=durability, chained=(AUDIT_STREAM,)), lock
            except BaseException:
                lock.release()
                raise
        shared_log = place.open(durability=durability, chained=(AUDIT_STREAM,))
        try:
            lease = StoreLease.acquire(
                shared_log,
                place.describe(),
                wait=standby,
                ttl=lease_ttl,
                heartbeat=heartbeat,
                on_lost=self._lease_lost,
            )
        except BaseException:
            shared_log.close()
            raise
        return FencedStore(shared_log, lease), lease

    def _open_shared(
        self, durability: Durability, ttl: float, heartbeat: float, max_missions: int
    ) -> tuple[Any, Any]:
        """A store shared with other runtimes: mission leases, fenced writes.
        An LMDB directory is also locked shared (no single owner beside), and
        the first shared runtime on it hands it over from a single owner."""
        if isinstance(max_missions, bool) or not isinstance(max_missions, int) or max_missions < 0:
            raise AuraError(f"max_missions must be an int >= 0, got {max_missions!r}")
        where = self.place.describe()
        lock = None
        if not self.place.is_postgres:
            assert self.place.data is not None
            lock = DirectoryLock.acquire(self.place.data, shared=True)
        try:
            raw = self.place.open(durability=durability, chained=(AUDIT_STREAM,))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        try:
            if lock is None:
                hand_over_single_owner(raw, where, ttl)
            else:
                if lock.alone:
                    release_unleased(raw, f"handing {where} over to shared runtimes", ttl)
                    lock.share()
                # A worker stopped inside a commit would stall every writer here.
                raw.fence_frozen_writers(ttl, self._frozen_writer_killed)  # type: ignore[attr-defined]
            self._sharing = Sharing(
                self,
                raw,
                ttl=ttl,
                heartbeat=heartbeat,
                capacity=max_missions,
                directory_lock=lock,
            )
        except BaseException:
            raw.close()
            if lock is not None:
                lock.release()
            raise
        return MissionFencedStore(raw, self._sharing.leases), self._sharing

    def _frozen_writer_killed(self, pid: int, held: float) -> None:
        system = getattr(self, "system", None)
        if system is not None:
            system.log.warning("runtime.frozen_writer_killed", pid=pid, held_s=round(held, 1))

    def _lease_lost(self, why: str) -> None:
        """Another runtime owns the store now: stop acting at once (its
        missions are its), and let the embedding program see why."""
        if self.lost is not None:
            return
        self.lost = why
        if hasattr(self, "system"):
            self.system.log.error("runtime.lease_lost", path=self.place.describe(), reason=why)
        threading.Thread(target=self.close, name="aura-lease-lost", daemon=True).start()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            why = f" (its store lease was lost: {self.lost})" if self.lost else ""
            raise AuraError(f"runtime over {self.place.describe()} is closed{why}")

    def _sent_elsewhere(self, command: Command) -> bool:
        """Shared store: a mission this runtime does not run is taken here
        if nobody runs it, else the command goes to its runtime through the
        store (durable before this returns; applied once)."""
        sharing = self._sharing
        self._check_open()
        if sharing is None or sharing.leases.holds(command.mission_id):
            return False
        if sharing.acquire(command.mission_id):
            return False
        view = sharing.remote_view(command.mission_id)
        if view is None:
            raise MissionNotFoundError(command.mission_id)
        if command.kind in ("signal", "cancel", "terminate", "budget") and view.status in SETTLED:
            raise AuraError(
                f"mission {command.mission_id!r} is {view.status.value}: nothing to {command.kind}"
            )
        sharing.send(command)
        return True

    def _learn(self, fn: Any) -> MissionDef:
        definition = mission_definition(fn)
        known = self._definitions.get(definition.name)
        if known is not None and known.fn is not definition.fn:
            raise AuraError(f"two different missions are named {definition.name!r}")
        self._definitions[definition.name] = definition
        return definition

    def _ensure_actor(self, mission_id: str, *, activate: bool) -> None:
        actor_id = PREFIX + mission_id
        if self.system.exists(actor_id):
            return
        spec = self._mission_spec(mission_id)
        with contextlib.suppress(DuplicateActorError):
            self.system.spawn(spec, parent=SUPERVISOR, activate=activate)

    def _mission_spec(self, mission_id: str) -> ChildSpec:
        return ChildSpec(
            PREFIX + mission_id,
            lambda: MissionActor(self, mission_id),
            passivate_after=self._passivate_after,
            max_restarts=MISSION_MAX_RESTARTS,
            period=MISSION_RESTART_PERIOD,
            on_give_up=self._gave_up,
            threaded=False,  # no thread per mission: handlers run on the sending thread
        )

    def _ask(self, actor_id: str, message: object) -> Any:
        """Ask a mission. A crash before the message was journaled is retried
        for as long as the supervisor restarts the mission: one limit decides
        both when a caller gives up and when a mission is dead-lettered."""
        for _ in range(MISSION_MAX_RESTARTS + 1):
            try:
                return self.system.ask(actor_id, message)
            except ActorCrashedError as err:
                if err.journaled:
                    return self.system.ask(actor_id, Peek())
            except ActorNotFoundError:
                break  # the supervisor gave up on it
        raise AuraError(
            f"{actor_id} keeps crashing before it journals this call (nothing of it was "
            "written); see its log"
        )

    def _deliver(self, mission_id: str, done: StepDone) -> None:
        """A step finished (executor thread): journal its outcome in the
        mission, batched with other missions' outcomes."""
        if not self._closed:
            self._outbox.put(PREFIX + mission_id, done)

    def _arm_timer(  # noqa: PLR0917
        self, mission_id: str, seq: int, fingerprint: str, deadline: float, attempt: int, run: int
    ) -> None:
        """Deliver ``TimerFired`` at ``deadline`` (on a step thread: delivery
        may re-activate a passivated mission, which must not block timers)."""

        def fire() -> None:
            if self._closed:
                return
            # A clock that skips waits (aura.testing.VirtualClock) jumps to the deadline.
            reached = getattr(self._clock, "reach", None)
            at = reached(deadline) if reached is not None else self._clock()
            message = TimerFired(seq, fingerprint, at, attempt, run)
            self._steps.call(lambda: self._deliver_any(mission_id, message))

        with contextlib.suppress(ActorError):
            delay_until = getattr(self._clock, "delay_until", None)
            delay = delay_until(deadline) if delay_until is not None else deadline - self._clock()
            self.system.call_later(max(0.0, delay), fire)

    def _deliver_any(self, mission_id: str, message: object, delay: float = 0.25) -> None:
        """Deliver a step outcome or a timer (a step thread). If the store
        refuses to journal it (full disk, I/O error), nothing was recorded:
        try again later, backing off, rather than leave the mission waiting
        for something that is gone."""
        if self._closed or not self._runs_here(mission_id):
            return  # it moved to another runtime, which replays it
        try:
            self._ask(PREFIX + mission_id, message)
        except MessageRejectedError as err:
            if not self._runs_here(mission_id):
                return  # refused because its lease is gone: nothing to retry here
            self.system.log.error("delivery.retrying", mission_id=mission_id, error=str(err))
            again = min(delay * 2, 10.0)
            with contextlib.suppress(ActorError):
                self.system.call_later(
                    delay,
                    lambda: self._steps.call(lambda: self._deliver_any(mission_id, message, again)),
                )
        except ActorError:
            pass  # the mission is gone (stopped, removed): nothing to deliver to

    # ------------------------------------------------------------- queues

    def enqueue(
        self,
        queue: Queue | str,
        mission: Any,
        *args: Any,
        mission_id: str | None = None,
        priority: int = 0,
        dedup_id: str | None = None,
        tags: dict[str, str] | None = None,
        _trace: dict[str, str] | None = None,
    ) -> MissionHandle:
        """Put ``mission(ctx, *args)`` on ``queue`` (one given to
        ``Runtime(queues=[...])``); it starts once the queue's limits allow:
        lower ``priority`` first, then in enqueueing order. Journaled before
        this returns, so it survives a crash; idempotent per ``mission_id``
        (the same input again is a no-op). ``dedup_id``: refused with
        :class:`QueueDeduplicatedError` while another mission enqueued with
        it waits or runs. Until it starts, ``rt.get`` shows it ``pending``."""
        self._check_open()
        name = queue.name if isinstance(queue, Queue) else queue
        dispatcher = self._queues.get(name) if isinstance(name, str) else None
        if dispatcher is None:
            known = ", ".join(sorted(self._queues)) or "none"
            raise AuraError(f"no queue {name!r} in this runtime (queues: {known})")
        definition = self._learn(mission)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise AuraError(f"priority= must be an int, got {priority!r}")
        if dedup_id is not None and (not isinstance(dedup_id, str) or not dedup_id):
            raise AuraError(f"dedup_id= must be a non-empty str, got {dedup_id!r}")
        if mission_id is None:
            mission_id = uuid.uuid4().hex
        if not isinstance(mission_id, str) or not mission_id or "/" in mission_id:
            raise AuraError(f"mission_id must be a non-empty str without '/', got {mission_id!r}")
        _, decoded = encode_args(f"mission {mission_id!r}", tuple(args))
        digest = input_digest(definition.name, decoded)
        entry = Enqueued(
            mission_id,
            definition.name,
            decoded,
            self._clock(),
            priority,
            dedup_id or "",
            check_tags(tags),
            digest,
            self._trace_of(_trace),
        )
        if dispatcher.enqueue(entry):
            dispatcher.dispatch()
        return MissionHandle(self, mission_id)

    def queue(self, name: str) -> QueueView:
        """Queue ``name`` now: who waits (in start order), who runs, its limits."""
        self._check_open()
        dispatcher = self._queues.get(name)
        if dispatcher is None:
            raise AuraError(f"no queue {name!r} in this runtime")
        return dispatcher.view()

    def _enqueue_for(self, job: EnqueueJob) -> None:
        def enqueue() -> None:
            if self._closed:
                return
            definition = self._definitions.get(job.mission)
            try:
                if definition is None:
                    raise AuraError(f"no definition of mission {job.mission!r}")
                self.enqueue(
                    job.queue,
                    definition.fn,
                    *job.args,
                    mission_id=job.mission_id,
                    priority=job.priority,
                    dedup_id=job.dedup_id or None,
                    _trace=self._mission_trace(job.parent),
                )
            except QueueDeduplicatedError as err:
                value = [err.queue, err.dedup_id, err.mission_id]
                self._tell_parent(job, False, value, type(err).__name__, str(err))
                return
            except AuraError as err:
                self._tell_parent(job, False, None, type(err).__name__, str(err))
                return
            self._tell_parent(job, True, job.mission_id, "", "")

        self._steps.call(enqueue)

    def _queued_view(self, mission_id: str) -> MissionView:
        """A mission waiting in a queue for its slot (not started yet), or
        ``MissionNotFoundError``."""
        for dispatcher in self._queues.values():
            entry = dispatcher.state.waiting.get(mission_id)
            if entry is None:
                running = dispatcher.state.running.get(mission_id)
                entry = running[0] if running is not None else None
            if entry is not None:
                return MissionView(
                    mission_id,
                    entry.mission,
                    MissionStatus.PENDING,
                    None,
                    "",
                    0,
                    0,
                    waiting_for=f"queue {dispatcher.queue.name!r}",
                    input_digest=entry.digest,
                    tags=dict(entry.tags),
                )
        raise MissionNotFoundError(mission_id)

    def _start_queued(self, entry: Enqueued) -> None:
        self._start_or_send(
            entry.mission, entry.args, entry.mission_id, None, entry.tags, trace=entry.trace
        )

    def _trace_of(self, given: dict[str, str] | None) -> dict[str, str]:
        """The trace context a start carries: ``given``, else the caller's."""
        if given is not None:
            return given
        return self._telemetry.context() if self._telemetry is not None else {}

    def _mission_trace(self, mission_id: str) -> dict[str, str]:
        """The trace context of a mission's run (its children continue it)."""
        telemetry = self._telemetry
        return telemetry.mission_context(mission_id) if telemetry is not None else {}

    def _start_or_send(  # noqa: PLR0917
        self,
        name: str,
        args: list[Any],
        mission_id: str,
        budget: Budget | None,
        tags: dict[str, str],
        parent: str = "",
        parent_close: str = "",
        *,
        trace: dict[str, str] | None = None,
    ) -> None:
        """Start a mission the runtime itself decided on (a child, a queue's,
        idempotent per id): here, or on a shared store, if another runtime
        holds its lease (or this one has no room), as a start command."""
        sharing = self._sharing
        if sharing is not None and not sharing.acquire(mission_id):
            sharing.send(
                Command(
                    "start",
                    mission_id,
                    self._clock(),
                    name=name,
                    payload=args,
                    tags=tags,
                    parent=parent,
                    parent_close=parent_close,
                    budget=budget,
                    trace=trace or {},
                )
            )
            return
        self._start(
            name,
            args,
            mission_id,
            budget,
            "never",
            tags=tags,
            parent=parent,
            parent_close=parent_close,
            trace=trace,
        )

    def _settled_verdict(self, mission_id: str) -> str | None:
        verdict = self._verdict(mission_id)
        return None if verdict is None else verdict[0].status

    def _poll_queues(self) -> None:
        for dispatcher in self._queues.values():
            if self._closed:
                return
            dispatcher.poll()

    # ---------------------------------------------------------- schedules

    def schedules(self) -> list[ScheduleView]:
        """This runtime's schedules: cron, paused or not, last and next tick."""
        self._check_open()
        return [runner.view() for runner in self._schedules.values()]

    def pause_schedule(self, name: str, reason: str = "") -> bool:
        """Pause schedule ``name`` (durably: every runtime sharing the log
        stops starting its ticks); False if it was paused. Ticks that fall in
        the pause never run."""
        runner = self._schedule(name)
        paused = pause_in(self.store, name, reason, self._clock())
        runner.run_due()
        return paused

    def resume_schedule(self, name: str) -> bool:
        """Resume schedule ``name`` from now (the pause's ticks are skipped);
        False if it was not paused."""
        runner = self._schedule(name)
        resumed = resume_in(self.store, name, self._clock())
        runner.run_due()
        return resumed

    def _schedule(self, name: str) -> ScheduleRunner:
        self._check_open()
        runner = self._schedules.get(name) if isinstance(name, str) else None
        if runner is None:
            known = ", ".join(sorted(self._schedules)) or "none"
            raise AuraError(f"no schedule {name!r} in this runtime (schedules: {known})")
        return runner

    def _poll_schedules(self) -> None:
        for runner in self._schedules.values():
            if self._closed:
                return
            runner.poll()

    # ------------------------------------------------------- child missions

    def _start_child(self, job: ChildJob) -> None:
        """Start child ``job.mission_id`` unless it exists (a step thread: it
        journals), then watch it. One that cannot start (another mission has
        its id, the store refuses) is the parent's typed failure."""

        def start() -> None:
            if self._closed:
                return
            try:
                self._start_or_send(
                    job.mission,
                    job.args,
                    job.mission_id,
                    job.budget,
                    job.tags,
                    job.parent,
                    job.parent_close,
                    trace=self._mission_trace(job.parent),
                )
            except AuraError as err:
                self._tell_parent(job, False, None, type(err).__name__, str(err))
                return
            self._watch_child(job)

        self._steps.call(start)

    def _watch_child(self, job: ChildJob) -> None:
        """Tell the parent the child's outcome once it has one: read from its
        log now, else when it settles here, else (another runtime runs it)
        read again every ``REMOTE_POLL``."""
        if self._closed:
            return
        try:
            verdict = self._verdict(job.mission_id)
        except EventStoreError as err:
            self.system.log.error("child.unreadable", mission_id=job.mission_id, error=str(err))
            verdict = None
        if verdict is not None:
            t, _ = verdict
            ok = t.status == MissionStatus.COMPLETED.value
            self._tell_parent(job, ok, t.result, t.status, t.reason, t.cost_usd, t.cost_tokens)
        elif self._runs_here(job.mission_id):
            self._when_settled(
                job.mission_id, lambda: self._steps.call(lambda: self._watch_child(job))
            )
        else:
            with contextlib.suppress(ActorError):
                self.system.call_later(
                    REMOTE_POLL, lambda: self._steps.call(lambda: self._watch_child(job))
                )

    def _tell_parent(  # noqa: PLR0917
        self,
        job: ChildJob | EnqueueJob,
        ok: bool,
        value: Any,
        status: str,
        error: str,
        cost_usd: float = 0.0,
        cost_tokens: int = 0,
    ) -> None:
        done = StepDone(
            job.seq,
            job.fingerprint,
            ok,
            value,
            status,
            error,
            1,
            self._clock(),
            cost_usd=cost_usd,
            cost_tokens=cost_tokens,
            run=job.run,
        )
        self._deliver(job.parent, done)

    def _check_parent(self, mission_id: str, parent: str) -> None:
        """A child with parent-close policy ``cancel`` whose parent has ended
        (it ended while the child started, or before a crash let it cancel
        its children) is cancelled."""

        def check() -> None:
            if self._closed:
                return
            try:
                verdict = self._verdict(parent)
            except EventStoreError:
                return  # the parent's log is damaged: its own problem, not the child's
            if verdict is not None:
                why = f"its parent {parent!r} {verdict[0].status}"
                self._cancel_children([mission_id], why)

        self._steps.call(check)

    def _cancel_children(self, mission_ids: list[str], why: str) -> None:
        def cancel() -> None:
            for mission_id in mission_ids:
                if self._closed:
                    return
                with contextlib.suppress(AuraError):  # not started yet (it checks), or settled
                    self.cancel(mission_id, why)

        self._steps.call(cancel)

    def _runs_here(self, mission_id: str) -> bool:
        """Whether this runtime may act for ``mission_id`` (shared: holds its lease)."""
        return self._sharing is None or self._sharing.leases.holds(mission_id)

    def _settled_event(self, mission_id: str) -> threading.Event:
        with self._events_lock:
            return self._settled_events.setdefault(mission_id, threading.Event())

    def _settled(self, mission_id: str) -> None:
        if self._sharing is not None:
            self._sharing.settled(mission_id)
        self._settled_event(mission_id).set()
        with self._events_lock:
            callbacks = self._settle_callbacks.pop(mission_id, [])
        for fn in callbacks:
            fn()
        self._status_changed()  # every path to a settled status wakes wait(until=)

    def _when_settled(self, mission_id: str, fn: Callable[[], None]) -> None:
        """Call ``fn`` (from whichever thread settles it) once ``mission_id``
        is settled here, or at once if it is, or when the runtime closes:
        how the asyncio client waits without a thread per waiter."""
        with self._events_lock:
            event = self._settled_events.setdefault(mission_id, threading.Event())
            done = self._closed or event.is_set()
            if not done:
                self._settle_callbacks.setdefault(mission_id, []).append(fn)
        if done:
            fn()

    def _unsettled(self, mission_id: str) -> None:
        """A settled id began a new run (reuse, redrive, resume)."""
        self._settled_event(mission_id).clear()

    def _recover(self) -> None:
        """Register every mission in the log; resume the unfinished ones."""
        specs = []
        unfinished = []
        for stream in self.store.streams():
            if not stream.startswith(PREFIX):
                continue
            mission_id = stream[len(PREFIX) :]
            try:
                last = self._last_event(stream)
                verdict = self._verdict(mission_id, last)
            except EventStoreError as err:  # a damaged log: contain it to its mission
                self._mark_damaged(mission_id, err)
                continue
            specs.append(self._mission_spec(mission_id))
            if verdict is None and last is not None:  # not its memory: no need to read it all
                unfinished.append(last)
        if specs:
            self.system.spawn_many(specs, parent=SUPERVISOR, activate=False)
        self._mark_recoveries(unfinished)
        for actor_id in (last.stream for last in unfinished):
            # Activation replays and resubmits steps. A mission that fails to
            # recover is its supervisor's business (restart, then dead letter):
            # it must not keep the others, or the runtime, from opening.
            with contextlib.suppress(ActorError):
                self.system.ask(actor_id, Peek())

    def _mark_recoveries(self, lasts: list[RecordedEvent]) -> None:
        """Journal a ``recovery`` marker (who recovered it, and how many
        recoveries in a row found no progress since) on every unfinished
        mission, all in one commit. A mission counts them: past
        ``max_recovery_attempts`` in a row with a step to run again, it is
        dead-lettered instead of resumed (it may be what kills the process),
        across process restarts. Waiting alone is no reason: a mission that
        only waits for a signal is resumed however often it was recovered."""
        pid, host, now = os.getpid(), socket.gethostname(), time.time()
        batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
        entries = []
        for last in lasts:  # the last event of each mission to resume
            stream, version = last.stream, last.version
            mission_id = stream[len(PREFIX) :]
            streak = 1  # this recovery; one more than the last if nothing came between
            if last.kind == RECOVERY:
                streak += msgspec.msgpack.decode(last.data, type=Recovery).attempt
            marker = Recovery(pid, host, now, streak)
            batch.append((stream, [NewEvent(RECOVERY, msgspec.msgpack.encode(marker))], version))
            entries.append(
                audit_event(
                    "mission.recovered",
                    mission_id,
                    0,
                    version + 1,
                    now,
                    pid=pid,
                    host=host,
                    attempt=streak,
                )
            )
        while batch:
            try:
                self.store.append_many([*batch, (AUDIT_STREAM, [bundle(entries)], None)])
                return
            except (LeaseLostError, ConcurrencyError) as err:
                # That mission moved on meanwhile (shared: a command ran it,
                # it settled and gave its lease up, or another runtime took
                # it): it needs no marker here. Mark the others.
                gone = err.resource if isinstance(err, LeaseLostError) else err.stream
                keep = [i for i, item in enumerate(batch) if item[0] != gone]
                if len(keep) == len(batch):
                    self.system.log.error("runtime.recovery_marks_failed", error=str(err))
                    return
                batch = [batch[i] for i in keep]
                entries = [entries[i] for i in keep]
            except EventStoreError as err:  # resume them all the same: the log is intact
                self.system.log.error("runtime.recovery_marks_failed", error=str(err))
                return

    def _poll_commands(self) -> None:
        """Deliver commands other processes queued (see ``_commands``)."""
        if self._closed or not self._polling.acquire(blocking=False):
            return
        try:
            if self._sharing is not None:
                self._sharing.revisit()
            if self.store.version(COMMANDS) <= self._commands_done:
                return
            sharing = self._sharing
            for number, command in pending_commands(self.store, self._commands_done):
                if sharing is None:
                    self._apply_command(number, command)
                else:
                    sharing.route(number, command)
                self._commands_done = number
            # Shared: how far every runtime can skip when it opens, which
            # must not pass a start nobody has taken yet.
            if sharing is None or sharing.nothing_parked():
                mark_delivered(self.store, self._commands_done)
        except (AuraError, EventStoreError, ActorError) as err:
            self.system.log.error("command.poll_failed", error=str(err))
        finally:
            self._polling.release()

    def _apply_command(self, number: int, command: Command) -> None:
        """Deliver one command. One with an inbox number the mission has
        applied already (re-read after a crash or a takeover) changes
        nothing: the mission drops a journaled kind itself, and a redrive
        or resume is skipped here."""
        n, mid, why = command.inbox, command.mission_id, command.reason
        try:
            if n and command.kind != "start" and self._applied(mid, n):
                return
            if command.kind == "start":
                args = command.payload if isinstance(command.payload, list) else []
                self._start(
                    command.name,
                    args,
                    mid,
                    command.budget,
                    command.reuse,
                    inbox=n,
                    tags=command.tags,
                    parent=command.parent,
                    parent_close=command.parent_close,
                    trace=command.trace,
                )
            elif command.kind == "signal":
                key = command.key or None
                cmd = 0 if n else number  # older commands: deduplicated by their number
                self.signal(
                    mid, command.name, command.payload, idempotency_key=key, _command=cmd, _inbox=n
                )
            elif command.kind == "cancel":
                self.cancel(mid, why or "cancelled from the CLI", _inbox=n)
            elif command.kind == "terminate":
                self.terminate(mid, why or "terminated from the CLI", _inbox=n)
            elif command.kind == "resume":
                self.resume(mid, why or "resumed from the CLI", _inbox=n)
            elif command.kind == "redrive":
                self.redrive(mid, _inbox=n)
            elif command.kind == "fork":
                source, position = command.payload
                self.fork(source, from_position=position, new_id=mid)
            elif command.kind == "budget":
                usd, tokens = command.payload
                self.raise_budget(mid, usd=usd, tokens=tokens, _inbox=n)
            else:
                raise AuraError(f"unknown command {command.kind!r}")
        except AuraError as err:  # e.g. the mission finished meanwhile: nothing to do
            self.system.log.warning(
                "command.rejected", number=number, kind=command.kind, error=str(err)
            )

    def _applied(self, mission_id: str, inbox: int) -> bool:
        try:
            return self.get(mission_id).last_inbox >= inbox
        except MissionNotFoundError:
            return False

    def _schedule_poll(self) -> None:
        def tick() -> None:
            if self._closed:
                return
            self._steps.call(self._poll_commands)
            if self._queues:
                self._steps.call(self._poll_queues)
            if self._schedules:
                self._steps.call(self._poll_schedules)
            self._schedule_poll()

        with contextlib.suppress(ActorError):
            self.system.call_later(COMMAND_POLL, tick)

    def _gave_up(self, actor_id: str, error: BaseException) -> None:
        """The missions supervisor gave up on a crash-looping mission (its
        thread): record the verdict from a step thread."""
        mission_id = actor_id[len(PREFIX) :]
        reason = (
            f"crashed more than {MISSION_MAX_RESTARTS} times in {MISSION_RESTART_PERIOD}s "
            f"(last: {type(error).__name__}: {error}); fix the cause, then redrive"
        )
        # The log as the crashed incarnation left it: anything appended later
        # is a new incarnation's (a start retried meanwhile), not to be judged.
        try:
            version = self.store.version(actor_id)
        except EventStoreError as err:  # closing, or the disk failed: no verdict now
            self.system.log.error(
                "mission.dead_letter_failed", mission_id=mission_id, error=str(err)
            )
            return
        self._steps.call(lambda: self._mark_dead(mission_id, reason, version))

    def _mark_dead(self, mission_id: str, reason: str, version: int) -> None:
        stream = PREFIX + mission_id
        if mission_id in self._damaged:
            return  # never write to a log that cannot be read back
        if version == 0:
            # Not even its start was journaled: no mission to dead-letter, and
            # the caller of start() got the error.
            self.system.log.error("mission.never_started", mission_id=mission_id, reason=reason)
            return
        first = next(iter(self.store.read(stream, 1, 1)), None)
        name = ""
        if first is not None and first.kind == "message":
            start = msgspec.msgpack.decode(first.data, type=MissionMessage)
            if isinstance(start, Start):
                name = start.mission
        dead = Transition(MissionStatus.DEAD.value, reason, None, name, 0)
        entry = audit_event(
            "mission.transition",
            mission_id,
            0,
            version + 1,
            time.time(),
            status=MissionStatus.DEAD.value,
            reason=reason,
        )
        try:
            self.store.append_many(
                with_audit(
                    stream, [NewEvent(TRANSITION, msgspec.msgpack.encode(dead))], version, [entry]
                )
            )
        except ConcurrencyError:
            self.system.log.warning("mission.recovered_before_dead_letter", mission_id=mission_id)
            return
        self.system.log.error("mission.dead", mission_id=mission_id, reason=reason)
        self._ensure_actor(mission_id, activate=False)  # still addressable, for redrive
        self._settled(mission_id)
