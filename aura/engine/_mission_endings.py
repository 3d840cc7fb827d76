"""Part of the mission actor: status changes, saga and cancel, budget.

Every status change goes through ``_transition`` (checked against the
lifecycle table, journaled with its audit entry); completing, failing,
cancelling and terminating; compensating completed steps in reverse order;
spending and raising the budget.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from eventstore import NewEvent

from ..core._budget import Budget
from ..core._lifecycle import SETTLED, TERMINAL, MissionStatus, check_transition
from ..core._messages import (
    TRANSITION,
    Cancel,
    RaiseBudget,
    Transition,
)
from ..governance._audit import (
    AuditEntry,
    audit_event,
    with_audit,
)
from ._mission_state import MissionState, S
from ._mission_waits import _waits_for_the_world


class EndingsPart(MissionState):
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
        self._tell("event", self.mission_id, "compensation", {"aura.step": undo.name})
        # Set before submitting: an inline delivery may already carry its result.
        self.compensating = len(self.commands)
        self._issue_run("compensation", undo, [value], undo.retry)

    def _transition(self, new: MissionStatus, reason: str, *, journaled: bool = False) -> None:
        """Change status. ``journaled``: its event was committed with the
        message being handled, so it is not appended again."""
        old = self.status
        self.status = check_transition(self.mission_id, old, new)
        if new is S.DEAD or new is S.CANCELLED:
            self.error = reason  # as a view read back from the log says
        if not self.replaying:
            self.after_durable(self.runtime._status_changed)
            self._tell("transition", self.mission_id, old.value, new.value, reason)
            if new in SETTLED:
                self._tell("run_ended", self.mission_id, new.value, reason)
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
                self._close_children(self._ended(new))

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
            budget=self.budget,
            tags=self.tags,
        )
        data = msgspec.msgpack.encode(transition)
        entry = self._transition_audit(self.version + 1, status, reason, self.now or time.time())
        mission_id, runtime = self.mission_id, self.runtime
        children, why = self._children_to_close(), self._ended(status)

        def ended() -> None:  # once the end is durable: wake waiters, close children
            runtime._settled(mission_id)
            if children:
                runtime._cancel_children(children, why)

        self.append_after(
            with_audit(
                self.stream_name(),
                [NewEvent(TRANSITION, data)],
                self.version,
                [*self._scheduled_entries(self.version + 1), entry],
            ),
            then=ended if status in SETTLED else None,
        )

    def _ended(self, status: MissionStatus) -> str:
        return f"its parent {self.mission_id!r} {status.value}"

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
