"""Part of the mission actor: steps, compensations and tool calls.

Issuing them (a command with its fingerprint), submitting attempts to the
step runner once the message that issued them is durable, their outcomes
(retry, final result, a compensation's end), and resubmitting unfinished
ones after a recovery. Fingerprints are checked here: the first mismatch
raises ``NonDeterminismError``.
"""

from __future__ import annotations

import time
from typing import Any

from ..core._attempts import StepJob
from ..core._definitions import StepDef
from ..core._errors import NonDeterminismError
from ..core._lifecycle import SETTLED, TERMINAL
from ..core._messages import StepDone
from ..core._retry import RetryPolicy
from ._context import (
    StepFuture,
    ToolFuture,
    encode_args,
    fingerprint,
)
from ._mission_state import MissionState, _Command


class StepsPart(MissionState):
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

    def _steps_to_rerun(self) -> bool:
        """Whether recovery resubmits a step (one issued without a final result)."""
        return any(
            c.kind in ("step", "compensation", "tool") and c.seq not in self.results
            for c in self.commands
        )

    def _rearm(self) -> None:
        """After recovery: resubmit unfinished steps, re-arm pending timers
        (a deadline already past fires at once: late rather than never)."""
        if self.status not in SETTLED:
            self._arm_deadline(recovering=True)
            self._rearm_children()
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
            elif command.kind == "child":
                continue  # _rearm_children
            elif command.kind == "timer":
                if seq not in self.fired and command.deadline is not None:
                    self._arm(command, command.deadline)
            elif (
                seq not in self.delivered and seq not in self.fired and command.deadline is not None
            ):
                self._arm(command, command.deadline)

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
