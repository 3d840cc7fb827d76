"""A wall clock that skips waits."""

from __future__ import annotations

import threading
import time


class VirtualClock:
    """Real time plus an offset that grows whenever a durable timer fires:
    timers and retry backoffs fire at once and ``ctx.now()`` reads their
    deadline. Time never goes back. Thread-safe."""

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
        """A timer due at ``deadline`` fires: move time up to it; return now."""
        with self._lock:
            now = time.time() + self._offset
            if deadline > now:
                self._offset += deadline - now
                now = deadline
            return now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds
