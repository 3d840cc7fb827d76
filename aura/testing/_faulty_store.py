"""Store faults for crash tests: an event log whose appends or reads fail on
schedule (points ``store_append`` and ``store_read``), raising the same
typed error a failing disk would (``StoreIOError``); nothing is written by
a failed append. ``store_commit``: an ``append_many`` that fails after its
batch was applied, as its commit would (only appends that ask to be told,
``on_applied``: the delivery batches missions handle during their commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import FaultInjector, SimulatedCrash
from eventstore import StoreIOError


class FaultyStore:
    def __init__(self, store: Any, faults: FaultInjector) -> None:
        self._store = store
        self._faults = faults

    def _fault(self, point: str, operation: str, where: str) -> None:
        try:
            self._faults.check(point, where)
        except SimulatedCrash as crash:
            where_ = str(getattr(self._store, "path", "the event store"))
            raise StoreIOError(where_, operation, f"injected ({crash})") from None

    def append(self, stream: str, events: Any, **kw: Any) -> int:
        self._fault("store_append", "append", stream)
        result: int = self._store.append(stream, events, **kw)
        return result

    def append_many(
        self, batch: Any, *, on_applied: Callable[[list[int]], None] | None = None
    ) -> list[int]:
        self._fault("store_append", "append", "append_many")
        if on_applied is None:
            result: list[int] = self._store.append_many(batch)
            return result
        told = on_applied

        def applied(versions: list[int]) -> None:
            told(versions)
            self._fault("store_commit", "commit", "append_many")  # the whole batch is undone

        result = self._store.append_many(batch, on_applied=applied)
        return result

    def read(self, stream: str, *args: Any, **kw: Any) -> Any:
        self._fault("store_read", "read", stream)
        return self._store.read(stream, *args, **kw)

    def load_snapshot(self, stream: str) -> Any:
        self._fault("store_read", "read", stream)
        return self._store.load_snapshot(stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
