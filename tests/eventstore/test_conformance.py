"""Run the store contract against every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eventstore import EventStore, MemoryEventStore

from .conformance import CHAINED, EventStoreConformance


class TestLmdbStore(EventStoreConformance):
    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> EventStore:
        self._path = tmp_path / "store"
        self._clock = clock
        return EventStore.open(self._path, clock=clock, chained=CHAINED)

    def reopen(self, store: EventStore) -> EventStore:
        store.close()
        return EventStore.open(self._path, clock=self._clock, chained=CHAINED)


class TestLmdbStoreAsyncDurability(TestLmdbStore):
    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> EventStore:
        self._path = tmp_path / "store"
        self._clock = clock
        return EventStore.open(self._path, clock=clock, durability="async", chained=CHAINED)


class TestMemoryStore(EventStoreConformance):
    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> MemoryEventStore:
        return MemoryEventStore(clock=clock, chained=CHAINED)

    def reopen(self, store: MemoryEventStore) -> MemoryEventStore:
        store.close()
        return store.reopen()
