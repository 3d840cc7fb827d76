"""The state a mission actor keeps, and the views it gives out.

``MissionState`` holds every field of a running mission (its run, commands
issued, outcomes journaled, waits, saga, memory, cost) and the small
helpers all parts share. The behaviour lives in the parts (``_mission_journal``,
``_mission_steps``, ``_mission_waits``, ``_mission_endings``, ``_mission_runs``),
each a class over this state, composed by ``MissionActor``. A part may use
any field here and call another part's methods (declared below for the type
checker); it imports only this module and ``core``/``governance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from actors import DurableActor

from ..core._budget import Budget
from ..core._definitions import StepDef
from ..core._lifecycle import MissionStatus
from ..core._messages import (
    Cancel,
    MissionMessage,
    NewRun,
    RaiseBudget,
    Signal,
    Start,
    StepDone,
    TimerFired,
    Transition,
)
from ..core._retry import RetryPolicy
from ..governance._audit import AuditEntry
from ..governance._memory import MemoryWrite, MissionMemory
from ._context import (
    Awaitable,
    ChildFuture,
    ChildStart,
    EnqueueFuture,
    MissionContext,
    QueuedStart,
    SignalFuture,
    StepFuture,
    TimerFuture,
    ToolFuture,
)
from ._host import MissionHost

S = MissionStatus

STARTED = "started"  # the reason of the RUNNING transition a Start makes


@dataclass(frozen=True)
class MissionView:
    """A mission as seen from outside (``rt.get``)."""

    mission_id: str
    name: str | None
    status: MissionStatus
    result: Any
    error: str
    steps_completed: int
    history_length: int
    memory: dict[str, Any] = field(default_factory=dict)
    """The mission's ``ctx.memory``, as of this view."""
    cost_usd: float = 0.0
    cost_tokens: int = 0
    """What its steps reported with ``aura.report_cost``, all attempts."""
    budget: Budget | None = None
    waiting_for: str = ""
    """Why a ``WAITING`` mission waits: ``budget``, ``timer or signal``."""
    run: int = 1
    """The current run (continue-as-new and id reuse begin new runs)."""
    input_digest: str = ""
    """``input_digest`` (definition and arguments) of the start of this run chain."""
    last_inbox: int = 0
    """The newest command from its ``inbox/<id>`` stream it has applied."""
    tags: dict[str, str] = field(default_factory=dict)
    """What ``rt.start(tags=...)`` filed it under."""


@dataclass(frozen=True)
class AlreadyStarted:
    """The reply to a ``Start`` that started nothing (the id already runs,
    or ran, and its reuse policy does not allow a new run): not journaled."""

    view: MissionView


class _Command(msgspec.Struct, frozen=True, gc=False):
    # A mission keeps every command of its run. Untracked by the garbage
    # collector (gc=False; nothing in one refers back to it, so no cycle),
    # and args a tuple (untracked once it holds only scalars), a long run
    # does not grow what every full collection has to traverse.
    seq: int
    kind: str  # "step" | "compensation" | "timer" | "signal"
    fingerprint: str
    definition: StepDef | None = None
    args: tuple[Any, ...] | None = None
    retry: RetryPolicy | None = None
    deadline: float | None = None  # timers and signal-wait timeouts
    name: str = ""  # the signal name of a signal wait
    compensate: StepDef | None = None  # saga: undoes this step if the mission fails


class MissionState(DurableActor):
    # Every effect of handling (steps, timers, status, tokens, logs) goes
    # through after_durable, so a delivery batch is handled during its commit.
    speculative_handling = True
    journal_type: ClassVar[Any] = MissionMessage
    state_type: ClassVar[Any] = NewRun | None
    """Its snapshot is the ``NewRun`` that began the current run (if any)."""

    def __init__(self, runtime: MissionHost, mission_id: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.mission_id = mission_id
        self.run = 1
        self.status = S.PENDING
        self.name: str | None = None
        self.input_digest = ""
        self.recoveries = 0  # recovery markers in a row at the end of the log
        self.signal_keys: set[str] = set()  # idempotency keys of signals delivered
        self.inbox: dict[str, list[Any]] = {}  # signals nobody waited for yet
        self.last_command = 0  # the newest $commands number applied
        self.last_inbox = 0  # the newest inbox/<id> command applied
        self.last_transition: Transition | None = None  # as journaled
        self._reset_run()
        self._pending_run: NewRun | None = None  # a run to begin, from the snapshot
        self._can_requested: list[Any] | None = None  # continue-as-new seen in replay only
        self.result_value: Any = None
        self.error = ""
        self.now = 0.0
        self.memory = MissionMemory(self._memory_written)
        self.cost_usd = 0.0
        self.cost_tokens = 0
        self.budget: Budget | None = None
        self.over_budget = ""  # why the mission may not advance ('' if it may)
        self._tokens: tuple[bytes, bytes] | None = None  # for tool calls, never journaled
        self._scheduled: list[tuple[_Command, int, float]] = []  # attempts not yet audited
        self._memory_pending: list[MemoryWrite] = []  # made while handling this message
        self.queries: dict[str, Any] = {}  # ctx.set_query_handler, re-registered by replay
        self.answering = False  # a query handler runs
        self.patches: set[str] | None = None  # ctx.patched markers of this run, read lazily
        self._last_message = 0  # the run's last journaled message, as the markers were read
        self._patch_taken: set[str] = set()  # changes this run took (decided once each)
        self.deadline = 0.0  # epoch seconds when the mission times out (0: never)
        self.tags: dict[str, str] = {}  # rt.start(tags=...), journaled with the start
        self.parent = ""  # a child mission's parent (ctx.start_child)
        self.parent_close = ""  # and what its parent's end does to it: cancel, abandon
        self.trace: dict[str, str] = {}  # the starter's trace context (Start.trace)
        self._replay_writes: list[MemoryWrite] = []  # made by replayed code
        self._memory_logged = 0  # memory events the log holds
        self._log_on = False  # whether info events are wanted, per message
        self._replay_began = 0.0  # perf_counter() as recovery began (telemetry)

    def _tell(self, hook: str, *args: Any, **kwargs: Any) -> None:
        """Call ``Runtime(telemetry=)``'s ``hook`` once the message being
        handled is durable (never in replay; nothing without telemetry)."""
        telemetry = self.runtime._telemetry
        if telemetry is not None:
            self.after_durable(getattr(telemetry, hook), *args, **kwargs)

    def _reset_run(self) -> None:
        """Forget everything of the run that ended (not memory, cost, budget)."""
        self.coro: Any = None
        self.ctx: MissionContext | None = None
        self.run_args: list[Any] = []
        self.run_start_version = self.version
        self.commands: list[_Command] = []
        self.results: dict[int, StepDone] = {}  # final step outcomes
        self.attempts: dict[int, int] = {}  # current attempt of each step
        self.retry_due: dict[int, tuple[int, float]] = {}  # seq -> (next attempt, deadline)
        self.beats: dict[int, Any] = {}  # last heartbeat details of a step's failed attempt
        self.fired: set[int] = set()  # timers (sleeps, signal timeouts) that fired
        self.delivered: dict[int, Any] = {}  # signal waits answered, by seq
        self.waits: dict[str, list[int]] = {}  # signal waits not answered, in order
        self.compensable: list[tuple[StepDef, Any]] = []  # in completion order
        self.compensating: int | None = None  # seq of the compensation running
        self.final: tuple[MissionStatus, str] | None = None  # status after compensating
        self.compensation_errors: list[str] = []
        self.logged: dict[int, str] = {}  # fingerprints the log recorded, by seq
        self.waiting: Awaitable | None = None

    def decode_state(self, data: bytes) -> Any:
        run = super().decode_state(data)
        self._pending_run = run  # begun before the first message replayed after it
        return run

    def run_history(self) -> int:
        """Events journaled in this run so far."""
        return self.version - self.run_start_version

    def continue_as_new_suggested(self) -> bool:
        definition = self.runtime._definitions.get(self.name or "")
        limit = definition.history_limit if definition is not None else None
        return self.run_history() >= (limit or self.runtime._history_limit)

    def stream_name(self) -> str:
        return self.actor_id

    def _close_coroutine(self) -> None:
        if self.coro is not None:
            self.coro.close()

    if TYPE_CHECKING:  # what the parts call of each other (see MissionActor)

        def issue_step(
            self,
            definition: StepDef,
            args: tuple[Any, ...],
            retry: RetryPolicy | None,
            compensate: StepDef | None = None,
        ) -> StepFuture: ...

        def issue_tool(
            self, name: str, args: dict[str, Any], compensate: StepDef | None = None
        ) -> ToolFuture: ...

        def issue_timer(self, seconds: float) -> TimerFuture: ...

        def issue_child(self, start: ChildStart) -> ChildFuture: ...

        def issue_enqueue(self, start: QueuedStart) -> EnqueueFuture: ...

        def issue_signal_wait(self, name: str, timeout: float | None) -> SignalFuture: ...

        def _memory_written(self, write: MemoryWrite) -> None: ...

        def _advance(self) -> None: ...
        def _append_transition(self, status: MissionStatus, reason: str) -> None: ...
        def _arm(self, command: _Command, deadline: float, attempt: int = 0) -> None: ...
        def _begin_run(self, new: NewRun) -> None: ...
        def _check_fingerprint(self, seq: int, got: str) -> _Command: ...
        def _compensate_next(self) -> None: ...
        def _check_parent(self) -> None: ...
        def _close_children(self, why: str) -> None: ...
        def _rearm_children(self) -> None: ...
        def _children_to_close(self) -> list[str]: ...
        def _ended(self, status: MissionStatus) -> str: ...
        def _complete(self, value: Any) -> None: ...
        def _continue_as_new(self, args: list[Any]) -> None: ...
        def _fail(self, err: BaseException) -> None: ...
        def _flush_memory(self, writes: list[MemoryWrite]) -> None: ...
        def _issue_run(
            self,
            kind: str,
            definition: StepDef,
            args: list[Any],
            retry: RetryPolicy | None,
            compensate: StepDef | None = None,
        ) -> _Command: ...
        def _log_status_if_missing(self) -> None: ...
        def patched(self, change_id: str) -> bool: ...
        def _arm_deadline(self, *, recovering: bool = False) -> None: ...
        def _maybe_auto_continue(self) -> None: ...
        def _on_cancel(self, msg: Cancel) -> None: ...
        def _on_raise_budget(self, msg: RaiseBudget) -> None: ...
        def _on_signal(self, msg: Signal) -> None: ...
        def _on_start(self, msg: Start) -> None: ...
        def _on_step_done(self, msg: StepDone) -> None: ...
        def _on_timer(self, msg: TimerFired) -> None: ...
        def _rearm(self) -> None: ...
        def _scheduled_entries(self, version: int) -> list[AuditEntry]: ...
        def _spend(self, usd: float, tokens: int) -> None: ...
        def _steps_to_rerun(self) -> bool: ...
        def _submit(self, command: _Command) -> None: ...
        def _transition(
            self, new: MissionStatus, reason: str, *, journaled: bool = False
        ) -> None: ...
        def _transition_audit(
            self, version: int, status: MissionStatus, reason: str, at: float
        ) -> AuditEntry: ...
        def _waiting_for(self) -> str: ...
        def _wake(self) -> None: ...
