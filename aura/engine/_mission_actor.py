"""The mission actor: a durable actor that drives mission code.

Composed of parts, one module each (see ``_mission_state``): journal and
replay, steps, timers and signals, endings (status, saga, cancel, budget),
runs and memory. This module holds the dispatch of a handled message and
the driving of the mission coroutine.

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

from typing import Any

import msgspec

from ..core._errors import NonDeterminismError, QueryError
from ..core._lifecycle import SETTLED
from ..core._messages import (
    Cancel,
    NewRun,
    Query,
    QueryAnswer,
    RaiseBudget,
    Signal,
    Start,
    StepDone,
    TimerFired,
    inbox_number,
)
from ._context import (
    Awaitable,
    ContinueAsNew,
    StepFuture,
)
from ._mission_children import ChildrenPart
from ._mission_endings import EndingsPart
from ._mission_journal import JournalPart
from ._mission_runs import RunsPart
from ._mission_state import AlreadyStarted, MissionView, S
from ._mission_steps import StepsPart
from ._mission_waits import WaitsPart, _waits_for_the_world

__all__ = ["AlreadyStarted", "MissionActor", "MissionView"]


class MissionActor(JournalPart, StepsPart, WaitsPart, EndingsPart, RunsPart, ChildrenPart):
    def query(self, message: Any) -> Any:
        if isinstance(message, Start):
            return AlreadyStarted(self.view())
        if isinstance(message, Query):
            return self._answer(message)
        return self.view()

    def _answer(self, query: Query) -> QueryAnswer:
        """Run the mission's handler for ``query`` against its current state."""
        handler = self.queries.get(query.name)
        if handler is None:
            known = ", ".join(sorted(self.queries)) or "none"
            return QueryAnswer(
                error=f"mission {self.mission_id!r} ({self.status.value}) has no query "
                f"{query.name!r} (handlers: {known})"
            )
        self.answering = True
        try:
            value = handler(*query.args)
            return QueryAnswer(msgspec.msgpack.decode(msgspec.msgpack.encode(value)))
        except QueryError as err:
            return QueryAnswer(error=str(err))
        except (TypeError, msgspec.EncodeError) as err:
            return QueryAnswer(error=f"query {query.name!r} failed: {type(err).__name__}: {err}")
        except Exception as err:
            return QueryAnswer(error=f"query {query.name!r} raised {type(err).__name__}: {err}")
        finally:
            self.answering = False

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
            self.last_inbox,
            dict(self.tags),
        )

    def stopped(self) -> None:
        """This runtime lets the mission go unsettled (close, passivation,
        a lease handed over): its run ends here, not for good."""
        telemetry = self.runtime._telemetry
        if telemetry is not None and self.status not in SETTLED and self.status is not S.PENDING:
            telemetry.run_ended(self.mission_id, "stopped", "")

    def handle(self, message: Any) -> Any:
        if self._pending_run is not None:
            pending, self._pending_run = self._pending_run, None
            self._begin_run(pending)
        if self.status is S.DEAD and not isinstance(message, Start):
            return self.query(message)
        self.now = message.at
        self.recoveries = 0
        inbox = inbox_number(message)
        self.last_inbox = max(self.last_inbox, inbox)
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

    def _wake(self) -> None:
        if self.status not in (S.RUNNING, S.WAITING) or self.over_budget:
            return
        if self.waiting is not None and self.waiting.ready():
            self.waiting = None
            if self.status is S.WAITING:
                self._transition(S.RUNNING, "resumed")
            self._advance()
