"""Mission lifecycle: exactly these states and these transitions.

``PENDING -> RUNNING <-> WAITING``, ``RUNNING|WAITING -> COMPENSATING``,
terminal ``COMPLETED | FAILED | CANCELLED``; ``DEAD`` is dead-lettered
(restart limit, non-determinism, poison message) and ``redrive`` takes it
back to ``RUNNING``. Anything else raises :class:`InvalidTransitionError`.
"""

from __future__ import annotations

import enum

from ._errors import InvalidTransitionError


class MissionStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPENSATING = "compensating"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD = "dead"

    # Members are singletons compared by identity: hash them by identity too,
    # in C (Enum's own __hash__ is Python code, and status checks are on
    # every step's path).
    __hash__ = object.__hash__

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


S = MissionStatus

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
SETTLED = TERMINAL | {S.DEAD}
"""A mission in one of these runs no more code until a redrive (DEAD)."""
SETTLED_VALUES = frozenset(s.value for s in SETTLED)

TRANSITIONS: dict[MissionStatus, frozenset[MissionStatus]] = {
    S.PENDING: frozenset({S.RUNNING, S.CANCELLED, S.DEAD}),
    S.RUNNING: frozenset({S.WAITING, S.COMPENSATING, S.COMPLETED, S.FAILED, S.CANCELLED, S.DEAD}),
    S.WAITING: frozenset({S.RUNNING, S.COMPENSATING, S.CANCELLED, S.DEAD}),
    S.COMPENSATING: frozenset({S.FAILED, S.CANCELLED, S.DEAD}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.DEAD: frozenset({S.RUNNING}),
}
"""For each state, the states it may move to. Terminal states have none."""


def check_transition(mission_id: str, old: MissionStatus, new: MissionStatus) -> MissionStatus:
    """Return ``new`` if ``old -> new`` is allowed, else raise."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransitionError(mission_id, old.value, new.value)
    return new
