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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from actors import DurableActor
from eventstore import NewEvent

from ._context import Awaitable, MissionContext, StepFuture, encode_args, fingerprint
from ._definitions import StepDef
from ._errors import DefinitionError, NonDeterminismError
from ._lifecycle import TERMINAL, MissionStatus, check_transition
from ._messages import Cancel, MissionMessage, Peek, Start, StepDone, Transition
from ._steps import StepJob

if TYPE_CHECKING:
    from ._runtime import Runtime

S = MissionStatus
TRANSITION = "transition"


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


@dataclass(frozen=True)
class _Command:
    seq: int
    fingerprint: str
    definition: StepDef
    args: list[Any]


class MissionActor(DurableActor):
    journal_type: ClassVar[Any] = MissionMessage

    def __init__(self, runtime: Runtime, mission_id: str) -> None:
        super().__init__()
        self.runtime = runtime
        self.mission_id = mission_id
        self.run = 1
        self.status = S.PENDING
        self.name: str | None = None
        self.coro: Any = None
        self.ctx: MissionContext | None = None
        self.commands: list[_Command] = []
        self.results: dict[int, StepDone] = {}
        self.logged: dict[int, str] = {}  # fingerprints the log recorded, by seq
        self.waiting: Awaitable | None = None
        self.result_value: Any = None
        self.error = ""
        self.now = 0.0

    # ------------------------------------------------------------ journal

    def stream_name(self) -> str:
        return self.actor_id

    def is_query(self, message: Any) -> bool:
        return isinstance(message, Peek)

    def query(self, message: Any) -> MissionView:
        return MissionView(
            self.mission_id,
            self.name,
            self.status,
            self.result_value,
            self.error,
            len(self.results),
            self.version,
        )

    def handle(self, message: Any) -> Any:
        if self.status is S.DEAD:
            return self.query(message)
        self.now = message.at
        try:
            if isinstance(message, Start):
                self._on_start(message)
            elif isinstance(message, StepDone):
                self._on_step_done(message)
            elif isinstance(message, Cancel):
                self._on_cancel(message)
        except NonDeterminismError as err:
            self._close_coroutine()
            self._transition(S.DEAD, str(err))
        return self.query(message)

    def on_recovery_complete(self) -> None:
        if self.status is S.DEAD or self.status in TERMINAL:
            self._log_status_if_missing()
            self.runtime._settled(self.mission_id)
            return
        if self.status is not S.PENDING:
            for command in self.commands:
                if command.seq not in self.results:
                    self._submit(command)

    # ------------------------------------------------------------ messages

    def _on_start(self, msg: Start) -> None:
        if self.status is not S.PENDING:
            return  # starting twice is a no-op: the reply shows what runs
        self.name = msg.mission
        definition = self.runtime._definitions.get(msg.mission)
        if definition is None:
            self._transition(
                S.DEAD,
                f"no definition of mission {msg.mission!r} in this runtime "
                "(pass it in Runtime(missions=[...]) and redrive)",
            )
            return
        self.ctx = MissionContext(self, self.mission_id, self.run, msg.mission)
        self._transition(S.RUNNING, "started")
        try:
            self.coro = definition.fn(self.ctx, *msg.args)
        except Exception as err:
            self._fail(err)
            return
        self._advance()

    def _on_step_done(self, msg: StepDone) -> None:
        self.logged.setdefault(msg.seq, msg.fingerprint)
        if msg.seq >= len(self.commands) or self.commands[msg.seq].fingerprint != msg.fingerprint:
            issued = [c.fingerprint for c in self.commands]
            expected = [self.logged.get(i, "(no result recorded)") for i in range(msg.seq + 1)]
            raise NonDeterminismError(self.mission_id, msg.seq, expected, issued)
        if msg.seq in self.results or self.status in TERMINAL:
            return  # a re-run after a crash delivered it again: the first one counts
        self.results[msg.seq] = msg
        if self.waiting is not None and self.waiting.ready():
            self.waiting = None
            self._advance()

    def _on_cancel(self, msg: Cancel) -> None:
        if self.status in TERMINAL:
            return
        self._close_coroutine()
        self._transition(S.CANCELLED, msg.reason or "cancelled")

    # ------------------------------------------------------------ driving the code

    def _advance(self) -> None:
        while True:
            try:
                awaited = self.coro.send(None)
            except StopIteration as stop:
                self._complete(stop.value)
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
                return

    def issue_step(self, definition: StepDef, args: tuple[Any, ...]) -> StepFuture:
        if definition.retry is not None or definition.timeout or definition.heartbeat_timeout:
            raise DefinitionError(
                f"step {definition.name}: retry=, timeout= and heartbeat_timeout= are not "
                "supported by this runtime yet"
            )
        raw, decoded = encode_args(f"mission {self.mission_id!r} step {definition.name}", args)
        command = _Command(
            len(self.commands), fingerprint("step", definition.name, raw), definition, decoded
        )
        self.commands.append(command)
        if not self.replaying:
            self._submit(command)
        return StepFuture(self, command.seq, definition.name)

    def _submit(self, command: _Command) -> None:
        self.runtime._steps.submit(
            StepJob(
                self.mission_id,
                command.seq,
                command.fingerprint,
                command.definition,
                command.args,
                1,
                self.run,
            )
        )

    def _complete(self, value: Any) -> None:
        try:
            self.result_value = msgspec.msgpack.decode(msgspec.msgpack.encode(value))
        except (TypeError, msgspec.EncodeError) as err:
            self._fail(TypeError(f"mission result cannot be journaled: {err}"))
            return
        self._transition(S.COMPLETED, "completed")

    def _fail(self, err: BaseException) -> None:
        self.error = f"{type(err).__name__}: {err}"
        self._transition(S.FAILED, self.error)

    def _close_coroutine(self) -> None:
        if self.coro is not None:
            self.coro.close()

    # ------------------------------------------------------------ lifecycle

    def _transition(self, new: MissionStatus, reason: str) -> None:
        old = self.status
        self.status = check_transition(self.mission_id, old, new)
        if new is S.DEAD:
            self.error = reason
        if not self.replaying:
            self.system.log.info(
                "mission.transition",
                mission_id=self.mission_id,
                run=self.run,
                seq=self.version,
                old=old.value,
                status=new.value,
                reason=reason,
            )
            if new is S.RUNNING or new is S.DEAD or new in TERMINAL:
                self._append_transition(new, reason)
            if new is S.DEAD or new in TERMINAL:
                self.runtime._settled(self.mission_id)

    def _append_transition(self, status: MissionStatus, reason: str) -> None:
        data = msgspec.msgpack.encode(Transition(status.value, reason))
        self.version = self.system.store.append(  # type: ignore[union-attr]
            self.stream_name(), [NewEvent(TRANSITION, data)], expected_version=self.version
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
