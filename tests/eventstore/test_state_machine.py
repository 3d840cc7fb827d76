"""Every backend against a plain dict model, driven by hypothesis."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from eventstore import ArchiveError, ConcurrencyError, EventStore, NewEvent, SnapshotError
from tests.postgres_server import fresh_schema

STREAMS = st.sampled_from(["a", "b", "c/ü"])
EVENTS = st.lists(
    st.builds(NewEvent, st.sampled_from(["x", "y"]), st.binary(max_size=20)), max_size=4
)


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="aura-sm-"))
        self.store = self.open_store()
        self.model: dict[str, list[tuple[str, bytes]]] = {}
        self.archived: dict[str, int] = {}
        self.snapshots: dict[str, tuple[int, bytes]] = {}
        self.order: list[tuple[str, int]] = []  # global order of (stream, version)

    def open_store(self) -> Any:
        return EventStore.open(self.dir / "s", map_size=1 << 16, keep_snapshots=2)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self, stream: str) -> int:
        return len(self.model.get(stream, []))

    @rule(stream=STREAMS, events=EVENTS)
    def append(self, stream: str, events: list[NewEvent]) -> None:
        new = self.store.append(stream, events)
        if events:
            base = self.version(stream)
            self.model.setdefault(stream, []).extend((e.kind, e.data) for e in events)
            self.order.extend((stream, base + i + 1) for i in range(len(events)))
        assert new == self.version(stream)

    @rule(stream=STREAMS, n=st.integers(10, 150))
    def burst(self, stream: str, n: int) -> None:
        """Long appends: the per-stream index moves its tail into runs."""
        self.append(stream, [NewEvent("b", i.to_bytes(2, "big")) for i in range(n)])

    @rule(stream=STREAMS, events=EVENTS, delta=st.integers(-2, 2))
    def append_expected(self, stream: str, events: list[NewEvent], delta: int) -> None:
        expected = max(0, self.version(stream) + delta)
        if expected == self.version(stream):
            self.append(stream, events)
            return
        try:
            self.store.append(stream, events, expected_version=expected)
        except ConcurrencyError as err:
            assert err.actual == self.version(stream)
        else:
            raise AssertionError("a wrong expected_version was accepted")

    @rule(
        first=st.tuples(STREAMS, EVENTS),
        second=st.tuples(STREAMS, EVENTS),
        conflict=st.booleans(),
    )
    def append_many(
        self,
        first: tuple[str, list[NewEvent]],
        second: tuple[str, list[NewEvent]],
        conflict: bool,
    ) -> None:
        expected_second = None
        if conflict:
            expected_second = self.version(second[0]) + 5
        batch = [(first[0], first[1], None), (second[0], second[1], expected_second)]
        if conflict:
            try:
                self.store.append_many(batch)
            except ConcurrencyError:
                return
            raise AssertionError("append_many accepted a conflicting entry")
        self.store.append_many(batch)
        for stream, events in (first, second):
            base = self.version(stream)
            self.model.setdefault(stream, []).extend((e.kind, e.data) for e in events)
            self.order.extend((stream, base + i + 1) for i in range(len(events)))

    @rule(stream=STREAMS, back=st.integers(-1, 3), data=st.binary(max_size=8))
    def snapshot(self, stream: str, back: int, data: bytes) -> None:
        version = max(1, self.version(stream) - back)
        if version > self.version(stream):
            try:
                self.store.save_snapshot(stream, version, data)
            except SnapshotError:
                return
            raise AssertionError("a snapshot past the end of the stream was accepted")
        self.store.save_snapshot(stream, version, data)
        prev = self.snapshots.get(stream)
        if prev is None or version >= prev[0]:
            self.snapshots[stream] = (version, data)

    @rule(stream=STREAMS, back=st.integers(0, 5) | st.integers(6, 200))
    def archive(self, stream: str, back: int) -> None:
        up_to = self.version(stream) - back
        if up_to < 1:
            try:
                self.store.archive(stream, 1)
            except ArchiveError:
                assert self.version(stream) == 0
            else:
                self.archived[stream] = max(self.archived.get(stream, 0), 1)
            return
        got = self.store.archive(stream, up_to)
        self.archived[stream] = max(self.archived.get(stream, 0), up_to)
        assert got == self.archived[stream]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.open_store()

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def read_range(self, data: st.DataObject) -> None:
        stream = data.draw(st.sampled_from(sorted(self.model)))
        n = self.version(stream)
        lo = data.draw(st.integers(1, n + 1))
        hi = data.draw(st.integers(lo - 1, n + 1))
        got = [(e.kind, e.data) for e in self.store.read(stream, lo, hi, archived=True)]
        assert got == self.model[stream][lo - 1 : hi]

    @invariant()
    def matches_model(self) -> None:
        for stream, events in self.model.items():
            assert self.store.version(stream) == len(events)
            full = list(self.store.read(stream, archived=True))
            assert [(e.kind, e.data) for e in full] == events
            assert [e.version for e in full] == list(range(1, len(events) + 1))
            hot = list(self.store.read(stream))
            assert [e.version for e in hot] == list(
                range(self.archived.get(stream, 0) + 1, len(events) + 1)
            )
            snap = self.store.load_snapshot(stream)
            want = self.snapshots.get(stream)
            assert ((snap.version, snap.data) if snap else None) == want
        hot_order = [(s, v) for s, v in self.order if v > self.archived.get(s, 0)]
        assert [(e.stream, e.version) for e in self.store.read_all()] == hot_order
        assert sorted(self.store.streams()) == sorted(s for s, ev in self.model.items() if ev)


StoreModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestStoreModel = StoreModel.TestCase


def test_the_postgres_store_against_the_model(pg_server_url: str) -> None:
    class PostgresModel(StoreModel):
        def open_store(self) -> Any:
            if not hasattr(self, "_schema"):
                self._schema_cm = fresh_schema(pg_server_url)
                self._schema = self._schema_cm.__enter__()
            return EventStore.open(pg_server_url, schema=self._schema, keep_snapshots=2)

        def teardown(self) -> None:
            super().teardown()
            self._schema_cm.__exit__(None, None, None)

    run_state_machine_as_test(
        PostgresModel, settings=settings(max_examples=40, stateful_step_count=30, deadline=None)
    )
