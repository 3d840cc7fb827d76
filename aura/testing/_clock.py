"""A wall clock that skips waits."""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Real time plus an offset that grows whenever a durable timer fires:
    timers and retry backoffs fire at once and ``ctx.now()`` reads their
    deadline. The clock itself never goes back. Thread-safe."""

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0 if start is None else start - time.time()

    def __call__(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def delay_until(self, deadline: float) -> float:
        """How long the runtime waits for a timer due at ``deadline``: not at all."""
        return 0.0

    def reach(self, deadline: float) -> float:
        """A timer due at ``deadline`` fires: move time up to it (never back)
        and stamp the firing with the deadline itself, so a timer re-armed
        after a crash fires at the same virtual moment as the first time."""
        with self._lock:
            now = time.time() + self._offset
            if deadline > now:
                self._offset += deadline - now
            return deadline

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
