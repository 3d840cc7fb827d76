"""Part of the mission actor: missions a mission starts: children
(``ctx.start_child``) and missions it enqueues (``ctx.enqueue``).

A child is a command of its parent (kind ``child``, fingerprinted by the
child's definition, id and arguments) whose outcome comes back as a
journaled ``StepDone``, like a step's: replay reads it, so a finished child
is never started or awaited again. Starting it and watching for its end
are the runtime's (``ChildJob``, after the message that issued it is
durable, and again after every recovery until the outcome is journaled:
starting is idempotent per id). The parent-close policy is enforced from
both sides: a parent that ends cancels its children that still run, and a
child with policy ``cancel`` checks its parent when it starts and after
every recovery (covering a crash between the parent's end and the cancel).
An enqueue is the same kind of command, answered by the mission id once
the runtime has journaled it on the queue (idempotent per id).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core._budget import Budget
from ..core._definitions import MissionDef
from ..core._errors import DefinitionError
from ._context import (
    ChildFuture,
    ChildStart,
    EnqueueFuture,
    QueuedStart,
    encode_args,
    fingerprint,
)
from ._mission_state import MissionState, _Command


@dataclass(frozen=True)
class ChildJob:
    """What the runtime needs to start a child and tell its parent its outcome."""

    parent: str
    seq: int
    fingerprint: str
    run: int
    mission_id: str
    mission: str
    args: list[object]
    parent_close: str
    budget: Budget | None
    tags: dict[str, str]


@dataclass(frozen=True)
class EnqueueJob:
    """What the runtime needs to enqueue a mission for a mission and tell it the id."""

    parent: str
    seq: int
    fingerprint: str
    run: int
    queue: str
    mission_id: str
    mission: str
    args: list[object]
    priority: int
    dedup_id: str


class ChildrenPart(MissionState):
    def issue_child(self, start: ChildStart) -> ChildFuture:
        self._maybe_auto_continue()
        name = self._know(start.definition)
        seq = len(self.commands)
        child_id = start.mission_id or f"{self.mission_id}.{self.run}.{seq}"
        raw, decoded = encode_args(
            lambda: f"mission {self.mission_id!r} child {name}", [child_id, *start.args]
        )
        command = _Command(
            seq,
            "child",
            fingerprint("child", name, raw),
            args=(name, decoded[1:], start.parent_close, start.budget, start.tags),
            name=child_id,
        )
        self.commands.append(command)
        self.attempts[seq] = 1
        if not self.replaying:
            self._start_child(command)
        return ChildFuture(self, seq, child_id)

    def issue_enqueue(self, start: QueuedStart) -> EnqueueFuture:
        self._maybe_auto_continue()
        name = self._know(start.definition)
        seq = len(self.commands)
        mission_id = start.mission_id or f"{self.mission_id}.{self.run}.{seq}"
        raw, decoded = encode_args(
            lambda: f"mission {self.mission_id!r} enqueue {name}",
            [mission_id, start.priority, start.dedup_id, *start.args],
        )
        command = _Command(
            seq,
            "enqueue",
            fingerprint("enqueue", f"{start.queue}:{name}", raw),
            args=(start.queue, name, decoded[3:], start.priority, start.dedup_id),
            name=mission_id,
        )
        self.commands.append(command)
        self.attempts[seq] = 1
        if not self.replaying:
            self._enqueue(command)
        return EnqueueFuture(self, seq, mission_id)

    def _enqueue(self, command: _Command) -> None:
        assert command.args is not None
        queue, mission, args, priority, dedup_id = command.args
        job = EnqueueJob(
            self.mission_id,
            command.seq,
            command.fingerprint,
            self.run,
            queue,
            command.name,
            mission,
            list(args),
            priority,
            dedup_id,
        )
        self.after_durable(self.runtime._enqueue_for, job)

    def _know(self, definition: MissionDef) -> str:
        """Make ``definition`` known to the runtime (a mission started from code)."""
        name = definition.name
        known = self.runtime._definitions.setdefault(name, definition)
        if known.fn is not definition.fn:
            raise DefinitionError(f"two different missions are named {name!r}")
        return name

    def _start_child(self, command: _Command) -> None:
        """Once durable: start the child (if it is not yet) and watch for its end."""
        assert command.args is not None
        mission, args, parent_close, budget, tags = command.args
        job = ChildJob(
            self.mission_id,
            command.seq,
            command.fingerprint,
            self.run,
            command.name,
            mission,
            list(args),
            parent_close,
            budget,
            tags,
        )
        self.after_durable(self.runtime._start_child, job)

    def _rearm_children(self) -> None:
        """After recovery: children without a journaled outcome are started
        (a no-op if they were) and watched again; a child checks its parent."""
        for command in self.commands:
            if command.kind == "child" and command.seq not in self.results:
                self._start_child(command)
            elif command.kind == "enqueue" and command.seq not in self.results:
                self._enqueue(command)
        self._check_parent()

    def _check_parent(self) -> None:
        if self.parent and self.parent_close == "cancel" and not self.replaying:
            self.after_durable(self.runtime._check_parent, self.mission_id, self.parent)

    def _children_to_close(self) -> list[str]:
        """The children of this run without an outcome, under policy ``cancel``."""
        return [
            c.name
            for c in self.commands
            if c.kind == "child"
            and c.seq not in self.results
            and c.args is not None
            and c.args[2] == "cancel"
        ]

    def _close_children(self, why: str) -> None:
        """This run's end (or continue-as-new) is durable with the message
        being handled: cancel its children that still run under ``cancel``."""
        ids = self._children_to_close()
        if ids and not self.replaying:
            self.after_durable(self.runtime._cancel_children, ids, why)
