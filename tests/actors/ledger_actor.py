"""A durable ledger used by the crash tests (in-process and in child processes)."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from actors import DurableActor


class Add(msgspec.Struct, tag=True, frozen=True):
    value: int


class Get(msgspec.Struct, tag=True, frozen=True):
    pass


Msg = Add | Get


class CrashableLedger(DurableActor):
    """Appends values; checks the 'in_handler' fault point on every handle."""

    journal_type: ClassVar[Any] = Msg
    state_type: ClassVar[Any] = list[int]
    snapshot_every: ClassVar[int | None] = 3

    def initial_state(self) -> list[int]:
        return []

    def handle(self, message: Any) -> Any:
        self.system.faults.check("in_handler", self.actor_id)
        if isinstance(message, Add):
            self.state.append(message.value)
            return len(self.state)
        return list(self.state)
