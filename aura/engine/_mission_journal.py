"""Part of the mission actor: what it journals and how it replays.

The journal hooks of ``DurableActor`` (which messages are queries, what
rides in a message's commit: its RUNNING transition and audit entries),
replay of the events the actor did not receive as messages (transitions,
memory, recovery markers, resumes), and what recovery does once the log is
replayed (keep a journaled verdict, dead-letter a mission recovered too
often, resubmit unfinished work).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from eventstore import CorruptionError, NewEvent, RecordedEvent

from ..core._lifecycle import SETTLED, SETTLED_VALUES
from ..core._messages import (
    RECOVERY,
    RESUMED,
    REUSABLE_IF_FAILED,
    TRANSITION,
    Cancel,
    MissionMessage,
    NewRun,
    Peek,
    Query,
    RaiseBudget,
    Recovery,
    Resumed,
    Signal,
    Start,
    StepDone,
    TimerFired,
    Transition,
    inbox_number,
)
from ..governance._audit import (
    AUDIT_STREAM,
    AuditEntry,
    bundle,
    merge_bundles,
)
from ..governance._memory import MEMORY
from ._mission_state import STARTED, MissionState, S


class JournalPart(MissionState):
    def is_query(self, message: Any) -> bool:
        """Peeks, and Starts that start nothing (answered, never journaled:
        starting an id again with the same input adds nothing to its log)."""
        if isinstance(message, (Peek, Query)):
            return True
        if 0 < inbox_number(message) <= self.last_inbox:
            return True  # a command applied already (sent again, or after a takeover)
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
        record = Transition(
            S.RUNNING.value, STARTED, None, message.mission, run=run, tags=message.tags
        )
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

    def replay_skips(self, events: list[RecordedEvent]) -> set[int]:
        """The Cancel messages that a later ``resumed`` event undid. A
        skipped cancel sent as a command still counts as applied (its inbox
        number), or delivering it again would cancel the resumed mission."""
        undone = {
            msgspec.msgpack.decode(e.data, type=Resumed).cancel_version
            for e in events
            if e.kind == RESUMED
        }
        for e in events:
            if e.version in undone and e.kind == "message":
                sent = inbox_number(msgspec.msgpack.decode(e.data, type=MissionMessage))
                self.last_inbox = max(self.last_inbox, sent)
        return undone

    def replay_other(self, event: RecordedEvent) -> None:
        if event.kind == RECOVERY:
            self.recoveries = msgspec.msgpack.decode(event.data, type=Recovery).attempt
            return
        self.recoveries = 0  # anything else journaled is progress
        if event.kind == MEMORY:
            self._memory_logged += 1
        elif event.kind == TRANSITION:
            self.last_transition = msgspec.msgpack.decode(event.data, type=Transition)
            self.last_inbox = max(self.last_inbox, self.last_transition.inbox)

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
        if self.status is S.WAITING and (logged is None or logged.status != S.WAITING.value):
            # Replay ended waiting where the log says otherwise (a redrive,
            # a resume): readers of the log must see what it waits on.
            self._append_transition(S.WAITING, "waiting for " + self._waiting_for())
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
            telemetry = self.runtime._telemetry
            if telemetry is not None:
                telemetry.run_began(
                    self.mission_id,
                    self.run,
                    self.name or "",
                    self.trace,
                    resumed=True,
                    replayed=self.recovered_messages,
                    replay_seconds=time.perf_counter() - self._replay_began,
                )
            self._rearm()

    def started(self) -> None:
        log = self.system.log if self.system.logging_info() else None
        if log is not None:
            log.info("mission.replay_started", mission_id=self.mission_id)
        self._replay_began = time.perf_counter()
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
