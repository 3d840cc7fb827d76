"""Part of the mission actor: runs and memory.

The first start, a new run of a settled id (reuse), continue-as-new (the
``NewRun`` that is also the snapshot recovery starts from), and journaling
``ctx.memory`` writes with their audit entries.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from eventstore import NewEvent

from ..core._errors import QueryError
from ..core._lifecycle import SETTLED
from ..core._messages import (
    DEADLINE_SEQ,
    NewRun,
    Start,
    input_digest,
)
from ..governance._audit import audit_event, with_audit
from ..governance._memory import MEMORY, MemoryWrite, decode_write
from ._context import (
    ArgumentEncodingError,
    ContinueAsNew,
    MissionContext,
    encode_args,
)
from ._mission_state import STARTED, MissionState, S


class RunsPart(MissionState):
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
        self.deadline, self.tags = msg.deadline, dict(msg.tags)
        self.parent, self.parent_close = msg.parent, msg.parent_close
        self.trace = dict(msg.trace)
        self._arm_deadline()
        self._check_parent()
        self.ctx = MissionContext(self, self.mission_id, self.run, msg.mission)
        self.run_args = list(msg.args)
        self._tell("run_began", self.mission_id, self.run, msg.mission, self.trace, resumed=False)
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
            last_inbox=self.last_inbox,
            input_digest=input_digest(msg.mission, msg.args),
            deadline=msg.deadline,
            tags=msg.tags,
            parent=msg.parent,
            parent_close=msg.parent_close,
            trace=msg.trace,
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
        self._close_children(f"its parent {self.mission_id!r} continued as new")
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
            last_inbox=self.last_inbox,
            input_digest=self.input_digest,
            signal_keys=sorted(self.signal_keys),
            deadline=self.deadline,
            tags=self.tags,
            parent=self.parent,
            parent_close=self.parent_close,
            trace=self.trace,
        )
        self._tell("run_ended", self.mission_id, "continued", "continued as new")
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
        self.queries = {}  # the old run's handlers close over its state
        self.patches = None  # markers are per run: the new run's code decides again
        self.memory.replace(new.memory)
        self.cost_usd, self.cost_tokens, self.budget = new.cost_usd, new.cost_tokens, new.budget
        self.deadline, self.tags = new.deadline, dict(new.tags)
        self.parent, self.parent_close = new.parent, new.parent_close
        self.trace = dict(new.trace)
        self._arm_deadline()
        self.over_budget = (
            self.budget.exceeded_by(self.cost_usd, self.cost_tokens) if self.budget else ""
        )
        self.inbox = {name: list(queued) for name, queued in new.inbox.items()}
        self.last_command = max(self.last_command, new.last_command)
        self.last_inbox = max(self.last_inbox, new.last_inbox)
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
        self._tell("run_began", self.mission_id, self.run, new.mission, self.trace, resumed=False)
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

    def _arm_deadline(self, *, recovering: bool = False) -> None:
        """Arm the mission's deadline timer: live when it is set, and again
        after a recovery (a deadline already past fires at once)."""
        if self.deadline and (recovering or not self.replaying):
            self.after_durable(
                self.runtime._arm_timer,
                self.mission_id,
                DEADLINE_SEQ,
                "deadline",
                self.deadline,
                0,
                self.run,
            )

    def patched(self, change_id: str) -> bool:
        """``ctx.patched``: True where this run's log recorded the change,
        or where the code runs live (then it is recorded with the outputs of
        the message being handled); False where a replayed history, written
        by code from before the change, went on past this point without it:
        a later message is journaled, so the code that handled this one ran
        on, and a marker it made would be in the log before that message."""
        store = self.system.store
        assert store is not None
        if self.patches is None:  # once per incarnation: what this run's log holds
            self.patches, self._last_message, self._patch_taken = set(), 0, set()
            for e in store.read(self.stream_name(), self.run_start_version + 1):
                if e.kind == "message":
                    self._last_message = e.version
                elif e.kind == MEMORY and (w := decode_write(e.data)).patch:
                    self.patches.add(w.key)
        if change_id in self._patch_taken:
            return True
        if change_id in self.patches:  # this call is where the log recorded it
            self._patch_taken.add(change_id)
            if self.replaying:  # replayed like every memory write: counts stay aligned
                self.memory.record_patch(change_id)
            return True
        if self.replaying and self.version < self._last_message:
            return False  # the old code went on from here: keep its branch
        self._patch_taken.add(change_id)
        self.memory.record_patch(change_id)
        return True

    def _memory_written(self, write: MemoryWrite) -> None:
        if self.answering:
            raise QueryError(
                f"ctx.memory[{write.key!r}] written inside a query handler: a query reads "
                "the mission's state and never writes to its history"
            )
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
                w.audit_kind(),
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
        if any(w.event for w in writes):  # rt.get_event callers wait for this
            self.after_durable(self.runtime._status_changed)
