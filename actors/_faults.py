"""Crash injection at named points, for tests of this layer and of users'.

A :class:`FaultInjector` is owned by an actor system (never global). Code
calls ``faults.check(point, actor_id)`` at each point; a plan decides whether
to raise :class:`SimulatedCrash` there. ``SimulatedCrash`` is a
``BaseException`` so ``except Exception`` in user code cannot swallow it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

POINTS = ("before_append", "after_append", "in_handler", "during_recovery", "after_snapshot")


class SimulatedCrash(BaseException):
    """An injected crash. Never raised by real failures."""

    def __init__(self, point: str, actor_id: str, hit: int) -> None:
        self.point = point
        self.actor_id = actor_id
        self.hit = hit
        super().__init__(f"simulated crash at {point} in {actor_id!r} (hit {hit})")


class FaultInjector:
    """Raises :class:`SimulatedCrash` when ``plan(point, actor_id, hit)`` says so.

    ``hit`` counts how often ``point`` was reached (all actors together),
    from 1, while a plan is set. Thread-safe. ``crashes`` lists what was
    injected.
    """

    def __init__(self, plan: Callable[[str, str, int], bool] | None = None) -> None:
        self._plan = plan
        self.armed = plan is not None
        """Whether a plan is set: hot paths skip :meth:`check` (and naming
        the actor for it) when not."""
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self.crashes: list[tuple[str, str, int]] = []

    def set_plan(self, plan: Callable[[str, str, int], bool] | None) -> None:
        with self._lock:
            self._plan = plan
            self.armed = plan is not None

    def check(self, point: str, actor_id: str) -> None:
        if self._plan is None:
            return  # the production path: no lock, no counting
        with self._lock:
            hit = self._hits[point] = self._hits.get(point, 0) + 1
            crash = self._plan is not None and self._plan(point, actor_id, hit)
            if crash:
                self.crashes.append((point, actor_id, hit))
        if crash:
            raise SimulatedCrash(point, actor_id, hit)


class CrashAt:
    """A plan: crash at the given (point, hit) pairs."""

    def __init__(self, schedule: set[tuple[str, int]]) -> None:
        self.schedule = schedule

    def __call__(self, point: str, actor_id: str, hit: int) -> bool:
        return (point, hit) in self.schedule

    def __repr__(self) -> str:
        return f"CrashAt({sorted(self.schedule)!r})"
