"""The mission actor: a durable actor that drives mission code.

Its journaled mailbox messages are ``Start``, ``StepDone`` and ``Cancel``.
Handling one advances the mission coroutine with ``send`` until it awaits
something not yet available. Replaying the journal therefore re-runs the
mission code against recorded results: finished steps are never called
again, and a step issued but without a recorded result is submitted again
once recovery is complete (same idempotency key).

Determinism check: each ``StepDone`` carries the fingerprint of the command
that scheduled it. Replay compares it with the command the current code
issued at that sequence number; the first difference raises
``NonDeterminismError`` and the mission becomes ``DEAD`` instead of being
corrupted. This costs no extra commit (rejected alternative: journaling
every command separately, one more fsync per step).

Status changes that recovery must know without replaying (started,
terminal, dead) are appended as ``transition`` events.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec

from actors import DurableActor
from eventstore import CorruptionError, NewEvent, RecordedEvent

from ..core._attempts import StepJob
from ..core._budget import Budget
from ..core._definitions import StepDef
from ..core._errors import NonDeterminismError
from ..core._lifecycle import SETTLED, SETTLED_VALUES, TERMINAL, MissionStatus, check_transition
from ..core._messages import (
    RECOVERY,
    RESUMED,
    REUSABLE_IF_FAILED,
    TRANSITION,
    Cancel,
    MissionMessage,
    NewRun,
    Peek,
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
from ..core._retry import RetryPolicy
from ..governance._audit import (
    AUDIT_STREAM,
    AuditEntry,
    audit_event,
    bundle,
    merge_bundles,
    with_audit,
)
from ..governance._memory import MEMORY, MemoryWrite, MissionMemory
from ._context import (
    ArgumentEncodingError,
    Awaitable,
    ContinueAsNew,
    Gather,
    MissionContext,
    SignalFuture,
    StepFuture,
    TimerFuture,
    ToolFuture,
    encode_args,
    fingerprint,
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


class MissionActor(DurableActor):
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
        self._replay_writes: list[MemoryWrite] = []  # made by replayed code
        self._memory_logged = 0  # memory events the log holds
        self._log_on = False  # whether info events are wanted, per message

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

    # ------------------------------------------------------------ journal

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

    def is_query(self, message: Any) -> bool:
        """Peeks, and Starts that start nothing (answered, never journaled:
        starting an id again with the same input adds nothing to its log)."""
        if isinstance(message, Peek):
            return True
        if isinstance(message, Signal):
            return bool(message.key) and message.key in self.signal_keys
        return isinstance(message, Start) and not (
            (self.status is S.PENDING and self._pending_run is None) or self._reruns(message)
        )

    def _reruns(self, message: Any) -> bool:
        """Whether ``message`` begins a new run of this settled id (its
        reuse policy allows it)."""
        if not isinstance(message, Start) or self.status not in SETTLED:
            return False
        if message.reuse == "always":
            return True
        return message.reuse == "if_failed" and self.status.value in REUSABLE_IF_FAILED

    def _starts_run(self, message: Any) -> bool:
        """Whether handling ``message`` starts this mission's first run (and
        so makes it RUNNING): a Start to a mission never started, whose code
        this runtime knows."""
        return (
            isinstance(message, Start)
            and self.status is S.PENDING
            and self._pending_run is None
            and message.mission in self.runtime._definitions
        )

    def journal_extras(self, message: Any) -> list[NewEvent]:
        """A Start's RUNNING transition rides in the Start's own commit: one
        durable commit per ``rt.start`` instead of two."""
        if not (self._starts_run(message) or self._reruns(message)):
            return []
        run = self.run + 1 if self._reruns(message) else 1
        record = Transition(S.RUNNING.value, STARTED, None, message.mission, run=run)
        return [NewEvent(TRANSITION, msgspec.msgpack.encode(record))]

    def journal_companions(self, message: Any) -> list[tuple[str, list[NewEvent]]]:
        """The audit entry of ``message``, committed with it (after the
        entries of the steps scheduled since the last commit), and that of
        its RUNNING transition if it carries one (``journal_extras``)."""
        version = self.version + 1
        entries = self._scheduled_entries(version) if self._scheduled else []
        kind, detail = self._audit_of(message)
        entries.append(AuditEntry(kind, self.mission_id, self.run, version, message.at, detail))
        if self._starts_run(message) or self._reruns(message):
            entries.append(self._transition_audit(version + 1, S.RUNNING, STARTED, message.at))
        return [(AUDIT_STREAM, [bundle(entries)])]

    @classmethod
    def merge_companions(cls, stream: str, events: list[NewEvent]) -> list[NewEvent]:
        # A batch of missions delivered together commits one audit record.
        return merge_bundles(events) if stream == AUDIT_STREAM else events

    def _scheduled_entries(self, version: int) -> list[AuditEntry]:
        """Audit entries of the step attempts scheduled since the mission's
        last commit. Scheduling is not an event of its own (that would cost a
        commit per step): its entries ride with the next event the mission
        journals, usually that step's outcome, and name that event."""
        scheduled, self._scheduled = self._scheduled, []
        mission_id, run = self.mission_id, self.run
        return [
            AuditEntry(
                "step.scheduled" if c.kind == "step" else f"{c.kind}.scheduled",
                mission_id,
                run,
                version,
                at,
                {
                    "seq": c.seq,
                    "step": c.definition.name if c.definition else c.kind,
                    "attempt": attempt,
                    "fingerprint": c.fingerprint,
                },
            )
            for c, attempt, at in scheduled
        ]

    def _audit_of(self, message: Any) -> tuple[str, dict[str, Any]]:
        if isinstance(message, StepDone):
            command = self.commands[message.seq] if message.seq < len(self.commands) else None
            family = "step" if command is None or command.kind == "step" else command.kind
            if message.ok:
                outcome = "allowed" if family == "tool" else "completed"
            elif family == "tool" and message.error_type == "ToolDenied":
                outcome = "denied"
            elif message.retry_in >= 0:
                outcome = "retrying"
            else:
                outcome = "failed"
            detail: dict[str, Any] = {
                "seq": message.seq,
                "step": message.fingerprint.split(" ", 1)[-1].split("#", 1)[0],
                "attempt": message.attempt,
                "fingerprint": message.fingerprint,
            }
            if not message.ok:
                detail["error"] = f"{message.error_type}: {message.error}"
            if message.cost_usd or message.cost_tokens:
                detail["cost_usd"] = message.cost_usd
                detail["cost_tokens"] = message.cost_tokens
            return f"{family}.{outcome}", detail
        if isinstance(message, Start):
            return "mission.started", {"mission": message.mission}
        if isinstance(message, Signal):
            return "signal.received", {"name": message.name}
        if isinstance(message, Cancel):
            if message.force:
                return "mission.terminate_requested", {"reason": message.reason}
            return "mission.cancel_requested", {"reason": message.reason}
        if isinstance(message, TimerFired):
            return "timer.fired", {"seq": message.seq, "attempt": message.attempt}
        if isinstance(message, RaiseBudget):
            return "budget.raised", {"usd": message.usd, "tokens": message.tokens}
        if isinstance(message, NewRun):
            return "mission.continued_as_new", {
                "next_run": message.run,
                "history": self.run_history(),
            }
        return type(message).__name__.lower(), {}

    def query(self, message: Any) -> Any:
        if isinstance(message, Start):
            return AlreadyStarted(self.view())
        return self.view()

    def view(self) -> MissionView:
        return MissionView(
            self.mission_id,
            self.name,
            self.status,
            self.result_value,
            self.error,
            len(self.results),
            self.version,
            self.memory.snapshot(),
            self.cost_usd,
            self.cost_tokens,
            self.budget,
            self._waiting_for(),
            self.run,
            self.input_digest,
        )

    def _waiting_for(self) -> str:
        """What the mission waits on, for people: ``budget``, ``signal
        'approve'``, ``timer #3 due ...``, ``step #2 fetch (attempt 2) on pid
        N``, ``compensation #5 ...``; several joined by ``; ``."""
        if self.status in SETTLED or self.status is S.PENDING:
            return ""
        if self.over_budget:
            return "budget"  # why: the WAITING transition's reason
        if self.compensating is not None:
            return self._describe_command(self.compensating)
        if self.waiting is None:
            return ""
        return "; ".join(self._describe_wait(self.waiting))

    def _describe_wait(self, awaited: Awaitable) -> list[str]:
        if isinstance(awaited, Gather):
            return [d for p in awaited.parts if not p.ready() for d in self._describe_wait(p)]
        seq = getattr(awaited, "seq", None)
        return [self._describe_command(seq)] if isinstance(seq, int) else []

    def _describe_command(self, seq: int) -> str:
        command = self.commands[seq]
        if command.kind == "timer":
            return f"timer #{seq} due {_when(command.deadline)}"
        if command.kind == "signal":
            until = f" until {_when(command.deadline)}" if command.deadline is not None else ""
            return f"signal {command.name!r}{until}"
        name = command.definition.name if command.definition else command.kind
        attempt = self.attempts.get(seq, 1)
        if seq in self.retry_due:
            next_attempt, due = self.retry_due[seq]
            return f"{command.kind} #{seq} {name}: attempt {next_attempt} due {_when(due)}"
        return f"{command.kind} #{seq} {name} (attempt {attempt}) on pid {os.getpid()}"

    def handle(self, message: Any) -> Any:
        if self._pending_run is not None:
            pending, self._pending_run = self._pending_run, None
            self._begin_run(pending)
        if self.status is S.DEAD and not isinstance(message, Start):
            return self.query(message)
        self.now = message.at
        self.recoveries = 0
        self._log_on = not self.replaying and self.system.logging_info()
        try:
            if isinstance(message, StepDone):  # the common case first
                self._on_step_done(message)
            elif isinstance(message, Start):
                self._on_start(message)
            elif isinstance(message, TimerFired):
                self._on_timer(message)
            elif isinstance(message, Signal):
                self._on_signal(message)
            elif isinstance(message, Cancel):
                self._on_cancel(message)
            elif isinstance(message, RaiseBudget):
                self._on_raise_budget(message)
            elif isinstance(message, NewRun):
                self._begin_run(message)
        except NonDeterminismError as err:
            self._close_coroutine()
            self._transition(S.DEAD, str(err))
        if self._memory_pending:
            self._flush_memory(self._memory_pending)
            self._memory_pending = []
        if isinstance(message, (StepDone, TimerFired)):
            return None  # delivered by the runtime, which wants no view back
        return self.view()

    def replay_skips(self, events: list[RecordedEvent]) -> set[int]:
        """The Cancel messages that a later ``resumed`` event undid."""
        return {
            msgspec.msgpack.decode(e.data, type=Resumed).cancel_version
            for e in events
            if e.kind == RESUMED
        }

    def replay_other(self, event: RecordedEvent) -> None:
        if event.kind == RECOVERY:
            self.recoveries = msgspec.msgpack.decode(event.data, type=Recovery).attempt
            return
        self.recoveries = 0  # anything else journaled is progress
        if event.kind == MEMORY:
            self._memory_logged += 1
        elif event.kind == TRANSITION:
            self.last_transition = msgspec.msgpack.decode(event.data, type=Transition)

    def on_recovery_complete(self) -> None:
        if self._pending_run is not None:  # nothing journaled after the snapshot
            pending, self._pending_run = self._pending_run, None
            self.replaying = True  # begin it like a replay: _rearm submits its steps
            try:
                self._begin_run(pending)
            finally:
                self.replaying = False
        missing = self._replay_writes[self._memory_logged :]
        self._replay_writes = []
        if missing:  # the code wrote them, a crash kept them out of the log
            self._flush_memory(missing)
        if self._can_requested is not None:  # decided, but a crash kept the new run out
            args, self._can_requested = self._can_requested, None
            self._continue_as_new(args)
        logged = self.last_transition
        if logged is not None and logged.status in SETTLED_VALUES:
            # The journaled verdict stands, whatever the current code would do:
            # a finished mission needs no code, a dead one waits for a redrive.
            self.status = S(logged.status)
            if self.status is S.COMPLETED:
                self.result_value = logged.result
            else:
                self.error = logged.reason
        if self.status in SETTLED:
            self._log_status_if_missing()
            self.runtime._settled(self.mission_id)
            return
        if self.status is not S.PENDING:
            self._log_on = self.system.logging_info()
            limit = self.runtime._max_recovery_attempts
            if self.recoveries > limit and self._steps_to_rerun():
                self._transition(
                    S.DEAD,
                    f"recovered {self.recoveries} times in a row with a step to run again and "
                    f"no progress (max_recovery_attempts={limit}): a step may crash its "
                    "process; fix the cause, then redrive",
                )
                return
            self._rearm()

    # ------------------------------------------------------------ messages

    def _on_start(self, msg: Start) -> None:
        if self.status is not S.PENDING:
            # Journaled while settled with a reuse policy: a new run of the id
            # (in replay too: it was accepted live). Older logs may hold a
            # repeated Start (policy "never"): a no-op, as it was then.
            if msg.reuse != "never" and (self.replaying or self.status in SETTLED):
                self._rerun(msg)
            return
        self.name = msg.mission
        self.input_digest = input_digest(msg.mission, msg.args)
        definition = self.runtime._definitions.get(msg.mission)
        if definition is None:
            self._transition(
                S.DEAD,
                f"no definition of mission {msg.mission!r} in this runtime "
                "(pass it in Runtime(missions=[...]) and redrive)",
            )
            return
        self.budget = msg.budget if msg.budget is not None else definition.budget
        self.ctx = MissionContext(self, self.mission_id, self.run, msg.mission)
        self.run_args = list(msg.args)
        self._transition(S.RUNNING, STARTED, journaled=True)  # with the Start (journal_extras)
        try:
            self.coro = definition.fn(self.ctx, *msg.args)
        except Exception as err:
            self._fail(err)
            return
        self._advance()

    def _rerun(self, msg: Start) -> None:
        """Begin a new run of this id from nothing (id reuse): a fresh
        ``NewRun`` (no memory, cost or inbox carried over), saved as the
        snapshot so recovery never replays the old runs, which stay readable
        in the log."""
        definition = self.runtime._definitions.get(msg.mission)
        budget = msg.budget if msg.budget is not None else (definition and definition.budget)
        new = NewRun(
            run=self.run + 1,
            mission=msg.mission,
            args=list(msg.args),
            at=msg.at,
            budget=budget or None,
            last_command=self.last_command,
            input_digest=input_digest(msg.mission, msg.args),
        )
        self._close_coroutine()
        self.waiting = None
        self.status = S.PENDING  # a new run, not a transition of the settled one
        self.result_value, self.error = None, ""
        self.last_transition = None
        self.state = new
        if not self.replaying:
            # Its RUNNING transition rode in the Start's commit (journal_extras).
            self.after_durable(self.runtime._unsettled, self.mission_id)
            self.after_durable(self.runtime._status_changed)
            store, stream, version = self.system.store, self.stream_name(), self.version
            assert store is not None
            self.after_durable(store.save_snapshot, stream, version, msgspec.msgpack.encode(new))
        self._begin_run(new)

    def _check_fingerprint(self, seq: int, got: str) -> _Command:
        self.logged.setdefault(seq, got)
        if seq >= len(self.commands) or self.commands[seq].fingerprint != got:
            issued = [c.fingerprint for c in self.commands]
            expected = [self.logged.get(i, "(nothing recorded)") for i in range(seq + 1)]
            raise NonDeterminismError(self.mission_id, seq, expected, issued)
        return self.commands[seq]

    def _on_step_done(self, msg: StepDone) -> None:
        if msg.run and msg.run != self.run:
            return  # a step of a run that has ended (continue-as-new)
        command = self._check_fingerprint(msg.seq, msg.fingerprint)
        if msg.cost_usd or msg.cost_tokens:
            self._spend(msg.cost_usd, msg.cost_tokens)  # every attempt that ran cost something
        if msg.seq in self.results or self.status in TERMINAL:
            return  # a re-run after a crash delivered it again: the first one counts
        if msg.attempt != self.attempts.get(msg.seq):
            return  # the outcome of an attempt already given up on
        if msg.ok or msg.retry_in < 0:
            if self._log_on:
                self._log_step(
                    "step.completed" if msg.ok else "step.failed",
                    command,
                    msg.attempt,
                    error=f"{msg.error_type}: {msg.error}" if not msg.ok else "",
                )
            self.results[msg.seq] = msg
            if msg.seq == self.compensating:
                if not msg.ok:
                    self.compensation_errors.append(
                        f"{command.fingerprint}: {msg.error_type}: {msg.error}"
                    )
                self._compensate_next()
                return
            if msg.ok and command.compensate is not None:
                self.compensable.append((command.compensate, msg.value))
            self._wake()
            return
        deadline = msg.at + msg.retry_in
        self._log_step(
            "step.retrying",
            command,
            msg.attempt,
            error=f"{msg.error_type}: {msg.error}",
            retry_in=msg.retry_in,
        )
        self.retry_due[msg.seq] = (msg.attempt + 1, deadline)
        if msg.heartbeat is not None:
            self.beats[msg.seq] = msg.heartbeat
        if not self.replaying:
            self._arm(command, deadline, attempt=msg.attempt + 1)

    def _on_timer(self, msg: TimerFired) -> None:
        if msg.run and msg.run != self.run:
            return
        command = self._check_fingerprint(msg.seq, msg.fingerprint)
        if self.status in TERMINAL:
            return
        if msg.attempt:  # the next attempt of a failed step is due
            due = self.retry_due.get(msg.seq)
            if due is None or due[0] != msg.attempt:
                return  # a duplicate (re-armed after a restart): already handled
            del self.retry_due[msg.seq]
            self.attempts[msg.seq] = msg.attempt
            if not self.replaying:
                self._submit(command)
            return
        if msg.seq in self.fired or msg.seq in self.delivered:
            return
        self.fired.add(msg.seq)
        if command.kind == "signal":
            self.waits[command.name].remove(msg.seq)
        self._wake()

    def _on_signal(self, msg: Signal) -> None:
        if msg.key:
            if msg.key in self.signal_keys:
                return  # journaled twice before the first was handled: applied once
            self.signal_keys.add(msg.key)
        if msg.command:
            if msg.command <= self.last_command:
                return  # delivered again after a crash: applied once
            self.last_command = msg.command
        if self.status in TERMINAL:
            return
        waiting = self.waits.get(msg.name)
        if waiting:
            self.delivered[waiting.pop(0)] = msg.payload
            self._wake()
        else:
            self.inbox.setdefault(msg.name, []).append(msg.payload)

    def _spend(self, usd: float, tokens: int) -> None:
        if not usd and not tokens:
            return
        self.cost_usd += usd
        self.cost_tokens += tokens
        if self.budget is not None and not self.over_budget:
            self.over_budget = self.budget.exceeded_by(self.cost_usd, self.cost_tokens)
            if self.over_budget and self.status is S.RUNNING:
                self._transition(S.WAITING, f"budget: {self.over_budget}")

    def _on_raise_budget(self, msg: RaiseBudget) -> None:
        if self.status in TERMINAL or self.status is S.PENDING:
            return
        self.budget = (self.budget or Budget()).raised(msg.usd, msg.tokens)
        self.over_budget = self.budget.exceeded_by(self.cost_usd, self.cost_tokens)
        if self.over_budget:
            return
        if self.waiting is not None and self.waiting.ready():
            self._wake()
        elif self.status is S.WAITING and not (
            self.waiting is not None and _waits_for_the_world(self.waiting)
        ):
            self._transition(S.RUNNING, "budget raised")  # its steps are still running

    def _wake(self) -> None:
        if self.status not in (S.RUNNING, S.WAITING) or self.over_budget:
            return
        if self.waiting is not None and self.waiting.ready():
            self.waiting = None
            if self.status is S.WAITING:
                self._transition(S.RUNNING, "resumed")
            self._advance()

    def _on_cancel(self, msg: Cancel) -> None:
        if self.status in TERMINAL or (self.status is S.COMPENSATING and not msg.force):
            return
        self._close_coroutine()
        self.waiting = None
        if msg.force:  # terminate: nothing is compensated, nothing more runs
            self.compensable = []
            self.compensating = None
            self._transition(S.CANCELLED, f"terminated: {msg.reason or 'by request'}")
            return
        self._settle(S.CANCELLED, msg.reason or "cancelled")

    # ------------------------------------------------------------ driving the code

    def _advance(self) -> None:
        while True:
            try:
                awaited = self.coro.send(None)
            except StopIteration as stop:
                self._complete(stop.value)
                return
            except ContinueAsNew as can:
                self._continue_as_new(list(can.args_for_next_run))
                return
            except Exception as err:
                self._fail(err)
                return
            if not isinstance(awaited, Awaitable):
                self._close_coroutine()
                self._fail(
                    TypeError(
                        f"mission code awaited {awaited!r}; missions may only await what "
                        "ctx.step / ctx.gather return (they are not driven by asyncio)"
                    )
                )
                return
            if not awaited.ready():
                self.waiting = awaited
                if type(awaited) is StepFuture:
                    return  # a step keeps the mission RUNNING
                if _waits_for_the_world(awaited) and self.status is S.RUNNING:
                    self._transition(S.WAITING, "waiting for " + self._waiting_for())
                return

    def issue_step(
        self,
        definition: StepDef,
        args: tuple[Any, ...],
        retry: RetryPolicy | None,
        compensate: StepDef | None = None,
    ) -> StepFuture:
        self._maybe_auto_continue()
        policy = retry if retry is not None else definition.retry
        command = self._issue_run("step", definition, list(args), policy, compensate)
        return StepFuture(self, command.seq, definition.name)

    def _issue_run(
        self,
        kind: str,
        definition: StepDef,
        args: list[Any],
        retry: RetryPolicy | None,
        compensate: StepDef | None = None,
    ) -> _Command:
        """Record a command that runs a step function (a step or a
        compensation) and, unless replaying, submit its first attempt."""
        raw, decoded = encode_args(
            lambda: f"mission {self.mission_id!r} {kind} {definition.name}", args
        )
        command = _Command(
            len(self.commands),
            kind,
            fingerprint("step" if kind == "step" else "compensate", definition.name, raw),
            definition,
            tuple(decoded),
            retry,
            compensate=compensate,
        )
        self.commands.append(command)
        self.attempts[command.seq] = 1
        if not self.replaying:
            self._submit(command)
        return command

    def issue_timer(self, seconds: float) -> TimerFuture:
        self._maybe_auto_continue()
        deadline = self.now + seconds
        command = _Command(len(self.commands), "timer", f"timer {seconds:g}s", deadline=deadline)
        self.commands.append(command)
        if not self.replaying:
            self._arm(command, deadline)
        return TimerFuture(self, command.seq)

    def issue_signal_wait(self, name: str, timeout: float | None) -> SignalFuture:
        deadline = None if timeout is None else self.now + timeout
        command = _Command(
            len(self.commands), "signal", f"signal {name}", deadline=deadline, name=name
        )
        self.commands.append(command)
        queued = self.inbox.get(name)
        if queued:
            self.delivered[command.seq] = queued.pop(0)
        else:
            self.waits.setdefault(name, []).append(command.seq)
            if deadline is not None and not self.replaying:
                self._arm(command, deadline)
        return SignalFuture(self, command.seq, name)

    def _submit(self, command: _Command) -> None:
        assert command.definition is not None and command.args is not None
        attempt = self.attempts[command.seq]
        if self._log_on:
            self._log_step("step.scheduled", command, attempt)
        self._scheduled.append((command, attempt, self.now or time.time()))
        self.after_durable(
            self.runtime._steps.submit,
            StepJob(
                self.mission_id,
                command.seq,
                command.fingerprint,
                command.definition,
                command.args,
                attempt,
                self.run,
                command.retry,
                self.beats.get(command.seq),
                self._tool_tokens() if command.kind == "tool" else None,
            ),
        )

    def _tool_tokens(self) -> tuple[bytes, bytes]:
        """This run's identity and execution tokens, issued (again) when
        missing or past half their life: they are never journaled."""
        gateway = self.runtime._gateway
        definition = self.runtime._definitions.get(self.name or "")
        if definition is None:
            return b"", b""  # the gateway will deny: no identity for unknown code
        tokens = self._tokens
        if tokens is None or gateway.expires_soon(tokens[0]) or gateway.expires_soon(tokens[1]):
            tokens = self._tokens = (
                gateway.identity_token(definition),
                gateway.execution_token(definition, self.mission_id, self.run),
            )
        return tokens

    def issue_tool(
        self, name: str, args: dict[str, Any], compensate: StepDef | None = None
    ) -> ToolFuture:
        self._maybe_auto_continue()
        what = f"mission {self.mission_id!r} tool {name!r}"
        raw, decoded = encode_args(what, [name, args])
        definition = self.runtime._gateway.step_definition(name)
        command = _Command(
            len(self.commands),
            "tool",
            fingerprint("tool", name, raw),
            definition,
            (decoded[1],),
            definition.retry,
            compensate=compensate,
        )
        self.commands.append(command)
        self.attempts[command.seq] = 1
        if not self.replaying:
            self._submit(command)
        return ToolFuture(self, command.seq, name)

    def _arm(self, command: _Command, deadline: float, attempt: int = 0) -> None:
        self.after_durable(
            self.runtime._arm_timer,
            self.mission_id,
            command.seq,
            command.fingerprint,
            deadline,
            attempt,
            self.run,
        )

    def _steps_to_rerun(self) -> bool:
        """Whether recovery resubmits a step (one issued without a final result)."""
        return any(
            c.kind in ("step", "compensation", "tool") and c.seq not in self.results
            for c in self.commands
        )

    def _rearm(self) -> None:
        """After recovery: resubmit unfinished steps, re-arm pending timers
        (a deadline already past fires at once: late rather than never)."""
        for command in self.commands:
            seq = command.seq
            if command.kind in ("step", "compensation", "tool"):
                if seq in self.results:
                    continue
                if seq in self.retry_due:
                    attempt, deadline = self.retry_due[seq]
                    self._arm(command, deadline, attempt)
                else:
                    self._submit(command)
            elif command.kind == "timer":
                if seq not in self.fired and command.deadline is not None:
                    self._arm(command, command.deadline)
            elif (
                seq not in self.delivered and seq not in self.fired and command.deadline is not None
            ):
                self._arm(command, command.deadline)

    def _complete(self, value: Any) -> None:
        try:
            self.result_value = msgspec.msgpack.decode(msgspec.msgpack.encode(value))
        except (TypeError, msgspec.EncodeError) as err:
            self._fail(TypeError(f"mission result cannot be journaled: {err}"))
            return
        self._transition(S.COMPLETED, "completed")

    def _fail(self, err: BaseException) -> None:
        self.error = f"{type(err).__name__}: {err}"
        self._settle(S.FAILED, self.error)

    # ------------------------------------------------------------ saga

    def _settle(self, final: MissionStatus, reason: str) -> None:
        """End in ``final``, compensating completed steps first if any declared it."""
        if not self.compensable:
            self._transition(final, reason)
            return
        self.final = (final, reason)
        self._transition(S.COMPENSATING, f"compensating {len(self.compensable)} step(s)")
        self._compensate_next()

    def _compensate_next(self) -> None:
        if not self.compensable:
            assert self.final is not None
            final, reason = self.final
            self.compensating = None
            if self.compensation_errors:
                reason += "; compensation failed: " + "; ".join(self.compensation_errors)
                self.error = reason
            self._transition(final, reason)
            return
        undo, value = self.compensable.pop()
        # Set before submitting: an inline delivery may already carry its result.
        self.compensating = len(self.commands)
        self._issue_run("compensation", undo, [value], undo.retry)

    # ------------------------------------------------------------ continue-as-new

    def _continue_as_new(self, args: list[Any]) -> None:
        """The code ended its run: journal the next one (``NewRun``, which is
        also the snapshot recovery starts from) and begin it."""
        self._close_coroutine()
        self.waiting = None
        if self.replaying:
            self._can_requested = args  # the NewRun follows in the log, or recovery adds it
            return
        try:
            _, decoded = encode_args(f"mission {self.mission_id!r} continue_as_new", args)
        except ArgumentEncodingError as err:
            self._fail(err)
            return
        if self._memory_pending:
            self._flush_memory(self._memory_pending)
            self._memory_pending = []
        new = NewRun(
            run=self.run + 1,
            mission=self.name or "",
            args=decoded,
            at=self.now or time.time(),
            memory=self.memory.snapshot(),
            cost_usd=self.cost_usd,
            cost_tokens=self.cost_tokens,
            budget=self.budget,
            inbox=self.inbox,
            last_command=self.last_command,
            input_digest=self.input_digest,
            signal_keys=sorted(self.signal_keys),
        )
        self.journal_own(new)  # with its audit entry (journal_companions)
        self.system.faults.check("after_append", self.actor_id)
        store = self.system.store
        assert store is not None
        stream = self.stream_name()
        store.save_snapshot(stream, self.version, msgspec.msgpack.encode(new))
        self.state = new
        self._begin_run(new)
        self.runtime._compact_later(stream, self.version - 1)

    def _begin_run(self, new: NewRun) -> None:
        if self.replaying:  # the run it ends may have tokens out still
            self.runtime._gateway.end_run(self.mission_id, self.run)
        else:
            self.after_durable(self.runtime._gateway.end_run, self.mission_id, self.run)
        self._tokens = None
        self._can_requested = None
        self.run = new.run
        self._reset_run()
        self.name = new.mission
        self.run_args = list(new.args)
        self.memory.replace(new.memory)
        self.cost_usd, self.cost_tokens, self.budget = new.cost_usd, new.cost_tokens, new.budget
        self.over_budget = (
            self.budget.exceeded_by(self.cost_usd, self.cost_tokens) if self.budget else ""
        )
        self.inbox = {name: list(queued) for name, queued in new.inbox.items()}
        self.last_command = max(self.last_command, new.last_command)
        self.input_digest = new.input_digest or self.input_digest
        self.signal_keys.update(new.signal_keys)
        if self.status is S.PENDING:  # recovering from the snapshot
            self.status = S.RUNNING
        definition = self.runtime._definitions.get(new.mission)
        if definition is None:
            self._transition(
                S.DEAD,
                f"no definition of mission {new.mission!r} in this runtime "
                "(pass it in Runtime(missions=[...]) and redrive)",
            )
            return
        self.ctx = MissionContext(self, self.mission_id, self.run, new.mission)
        if self._log_on:
            self.after_durable(
                self.system.log.info,
                "mission.continued_as_new",
                mission_id=self.mission_id,
                run=self.run,
            )
        try:
            self.coro = definition.fn(self.ctx, *new.args)
        except Exception as err:
            self._fail(err)
            return
        self._advance()

    def _maybe_auto_continue(self) -> None:
        """Called as the code issues a command: past the history limit, with
        nothing in flight, an ``auto_continue`` mission continues as new."""
        definition = self.runtime._definitions.get(self.name or "")
        if (
            definition is not None
            and definition.auto_continue
            and len(self.results) == len(self.commands)
            and not self.waits
            and self.continue_as_new_suggested()
        ):
            raise ContinueAsNew(tuple(self.run_args))

    # ------------------------------------------------------------ memory

    def _memory_written(self, write: MemoryWrite) -> None:
        if self.replaying:
            self._replay_writes.append(write)
        else:
            self._memory_pending.append(write)

    def _flush_memory(self, writes: list[MemoryWrite]) -> None:
        """Journal memory writes, each with its audit entry, in one commit."""
        # A crash here (tests inject one) leaves the writes to recovery.
        self.system.faults.check("in_handler", self.actor_id)
        at = self.now or time.time()
        events = [NewEvent(MEMORY, msgspec.msgpack.encode(w)) for w in writes]
        entries = [
            audit_event(
                "memory.delete" if w.deleted else "memory.set",
                self.mission_id,
                self.run,
                self.version + i,
                at,
                key=w.key,
                digest=w.digest(),
            )
            for i, w in enumerate(writes, start=1)
        ]
        self.append_after(
            with_audit(
                self.stream_name(),
                events,
                self.version,
                [*self._scheduled_entries(self.version + 1), *entries],
            )
        )
        self._memory_logged += len(writes)

    def _close_coroutine(self) -> None:
        if self.coro is not None:
            self.coro.close()

    def _log_step(self, event: str, command: _Command, attempt: int, **fields: Any) -> None:
        if self._log_on and not self.replaying:
            self.after_durable(
                self.system.log.info,
                event,
                mission_id=self.mission_id,
                run=self.run,
                seq=command.seq,
                step=command.definition.name if command.definition else command.kind,
                attempt=attempt,
                key=f"{self.mission_id}/{self.run}/{command.seq}",
                **fields,
            )

    def started(self) -> None:
        log = self.system.log if self.system.logging_info() else None
        if log is not None:
            log.info("mission.replay_started", mission_id=self.mission_id)
        try:
            super().started()
        except CorruptionError as err:
            self.runtime._mark_damaged(self.mission_id, err)
            raise  # the mission does not start: its supervisor sees why
        if log is not None:
            log.info(
                "mission.replay_finished",
                mission_id=self.mission_id,
                run=self.run,
                seq=self.version,
                replayed=self.recovered_messages,
                status=self.status.value,
            )

    # ------------------------------------------------------------ lifecycle

    def _transition(self, new: MissionStatus, reason: str, *, journaled: bool = False) -> None:
        """Change status. ``journaled``: its event was committed with the
        message being handled, so it is not appended again."""
        old = self.status
        self.status = check_transition(self.mission_id, old, new)
        if new is S.DEAD or new is S.CANCELLED:
            self.error = reason  # as a view read back from the log says
        if not self.replaying:
            self.after_durable(self.runtime._status_changed)
            if self.system.logging_info():
                self.after_durable(
                    self.system.log.info,
                    "mission.transition",
                    mission_id=self.mission_id,
                    run=self.run,
                    seq=self.version,
                    old=old.value,
                    status=new.value,
                    reason=reason,
                )
            if new in SETTLED:
                self.after_durable(self.runtime._gateway.end_run, self.mission_id, self.run)
            if not journaled:  # every status change is in the log, WAITING too
                self._append_transition(new, reason)
            elif new in SETTLED:
                self.after_durable(self.runtime._settled, self.mission_id)

    def _append_transition(self, status: MissionStatus, reason: str) -> None:
        """Journal a transition (with the memory writes made before it). In a
        delivery batch it commits with the batch's other deferred appends
        (``append_after``); waiters on a settled mission are told once it is
        durable."""
        if self._memory_pending:  # writes made before the status changed come first
            self._flush_memory(self._memory_pending)
            self._memory_pending = []
        result = self.result_value if status is S.COMPLETED else None
        transition = Transition(
            status.value,
            reason,
            result,
            self.name or "",
            len(self.results),
            self.cost_usd,
            self.cost_tokens,
            self.run,
            self._waiting_for() if status is S.WAITING else "",
        )
        data = msgspec.msgpack.encode(transition)
        entry = self._transition_audit(self.version + 1, status, reason, self.now or time.time())
        mission_id, settled = self.mission_id, self.runtime._settled
        self.append_after(
            with_audit(
                self.stream_name(),
                [NewEvent(TRANSITION, data)],
                self.version,
                [*self._scheduled_entries(self.version + 1), entry],
            ),
            then=(lambda: settled(mission_id)) if status in SETTLED else None,
        )

    def _transition_audit(
        self, version: int, status: MissionStatus, reason: str, at: float
    ) -> AuditEntry:
        return audit_event(
            "mission.transition",
            self.mission_id,
            self.run,
            version,
            at,
            status=status.value,
            reason=reason,
        )

    def _log_status_if_missing(self) -> None:
        """After replay: a status reached during replay (e.g. DEAD by
        non-determinism against new code) is journaled if it is not yet."""
        store = self.system.store
        assert store is not None
        last = list(store.read(self.stream_name(), self.version, self.version))
        if last and last[0].kind == TRANSITION:
            logged = msgspec.msgpack.decode(last[0].data, type=Transition)
            if logged.status == self.status.value:
                return
        self._append_transition(self.status, self.error or "recovered")


def _when(at: float | None) -> str:
    if at is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _waits_for_the_world(awaited: Awaitable) -> bool:
    """Timers and signals make a mission WAITING; steps keep it RUNNING."""
    if isinstance(awaited, Gather):
        return any(_waits_for_the_world(p) for p in awaited.parts)
    return isinstance(awaited, (TimerFuture, SignalFuture))
