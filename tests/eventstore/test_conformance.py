"""Run the store contract against every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


class TestPostgresStore(EventStoreConformance):
    @pytest.fixture(autouse=True)
    def _server(self, pg_server_url: str, pg_schema: str) -> None:
        self._url = pg_server_url
        self._schema = pg_schema

    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> Any:
        self._clock = clock
        return EventStore.open(self._url, schema=self._schema, clock=clock, chained=CHAINED)

    def reopen(self, store: Any) -> Any:
        store.close()
        return EventStore.open(self._url, schema=self._schema, clock=self._clock, chained=CHAINED)


class TestPostgresStoreAsyncDurability(TestPostgresStore):
    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> Any:
        self._clock = clock
        return EventStore.open(
            self._url, schema=self._schema, clock=clock, durability="async", chained=CHAINED
        )
