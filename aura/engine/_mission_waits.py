"""Part of the mission actor: durable timers and signals.

``ctx.sleep`` and ``ctx.wait_signal`` (with their timeouts), retry waits,
signals that arrive before anyone waits (the inbox), idempotency keys of
signals, and ``waiting_for``: what a mission waits on, for people.
"""

from __future__ import annotations

import os
import time

from ..core._lifecycle import SETTLED, TERMINAL
from ..core._messages import DEADLINE_SEQ, Cancel, Signal, TimerFired
from ._context import (
    Awaitable,
    ChildFuture,
    Gather,
    SignalFuture,
    TimerFuture,
)
from ._mission_state import MissionState, S, _Command


class WaitsPart(MissionState):
    def _on_timer(self, msg: TimerFired) -> None:
        if msg.seq == DEADLINE_SEQ:
            self._on_deadline(msg)
            return
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
        self._tell(
            "event", self.mission_id, "timer", {"aura.seq": msg.seq, "aura.kind": command.kind}
        )
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
        self._tell("event", self.mission_id, "signal", {"aura.signal": msg.name})
        waiting = self.waits.get(msg.name)
        if waiting:
            self.delivered[waiting.pop(0)] = msg.payload
            self._wake()
        else:
            self.inbox.setdefault(msg.name, []).append(msg.payload)

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

    def _on_deadline(self, msg: TimerFired) -> None:
        """The mission's deadline passed: it is cancelled (its completed steps
        compensated, in reverse order) with a reason saying it timed out. A
        timer from before a later deadline (a new run of the id) is ignored."""
        if not self.deadline or msg.at < self.deadline:
            return
        if self.status in TERMINAL or self.status is S.COMPENSATING:
            return
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.deadline))
        self._on_cancel(Cancel(f"timed out: its deadline {when} passed", msg.at))

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
        if command.kind == "child":
            return f"child mission {command.name!r}"
        name = command.definition.name if command.definition else command.kind
        attempt = self.attempts.get(seq, 1)
        if seq in self.retry_due:
            next_attempt, due = self.retry_due[seq]
            return f"{command.kind} #{seq} {name}: attempt {next_attempt} due {_when(due)}"
        return f"{command.kind} #{seq} {name} (attempt {attempt}) on pid {os.getpid()}"


def _when(at: float | None) -> str:
    if at is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _waits_for_the_world(awaited: Awaitable) -> bool:
    """Timers, signals and children make a mission WAITING; steps keep it RUNNING."""
    if isinstance(awaited, Gather):
        return any(_waits_for_the_world(p) for p in awaited.parts)
    return isinstance(awaited, (TimerFuture, SignalFuture, ChildFuture))
