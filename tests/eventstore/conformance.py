"""The event-store contract as a reusable test class.

Every backend subclasses :class:`EventStoreConformance` and provides
``open_store(tmp_path, clock)`` and ``reopen(store)``. A behaviour one
backend has and the other lacks is a bug in one of them.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventstore import (
    ArchiveError,
    ConcurrencyError,
    InvalidEventError,
    NewEvent,
    SnapshotError,
    StoreClosedError,
    verify_chain,
)

CHAINED = ("audit",)
"""Streams every backend under test is opened to hash-chain."""


def ev(kind: str = "k", data: bytes = b"") -> NewEvent:
    return NewEvent(kind, data)


class FakeClock:
    def __init__(self) -> None:
        self._t = itertools.count(1000)

    def __call__(self) -> float:
        return float(next(self._t))


class EventStoreConformance(abc.ABC):
    @abc.abstractmethod
    def open_store(self, tmp_path: Path, clock: Callable[[], float]) -> Any:
        """A new, empty store of the backend under test."""

    @abc.abstractmethod
    def reopen(self, store: Any) -> Any:
        """Close ``store`` and open the same data again (a restart)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Any]:
        s = self.open_store(tmp_path, FakeClock())
        yield s
        s.close()

    # ------------------------------------------------------------ hash chain

    def test_a_chained_stream_links_every_event_to_the_one_before(self, store: Any) -> None:
        store.append("audit", [ev("a", b"1"), ev("b", b"2")])
        store.append_many([("other", [ev()], None), ("audit", [ev("c", b"3")], None)])
        store.append("plain", [ev()])
        events = list(store.read("audit"))
        assert all(len(e.digest) == 32 for e in events)
        assert len({e.digest for e in events}) == 3
        report = verify_chain(events)
        assert report.ok and report.count == 3 and report.head == events[-1].digest.hex()
        assert [e.digest for e in store.read("plain")] == [b""]

    def test_the_chain_continues_across_reopen_and_archive(self, store: Any) -> None:
        for i in range(5):
            store.append("audit", [ev("x", bytes([i]))])
        store.archive("audit", 3)
        store = self.reopen(store)
        store.append("audit", [ev("y")])
        events = list(store.read("audit", archived=True))
        assert [e.version for e in events] == [1, 2, 3, 4, 5, 6]
        assert verify_chain(events).ok
        store.close()

    def test_verify_names_the_first_bad_entry(self, store: Any) -> None:
        for i in range(4):
            store.append("audit", [ev("x", bytes([i]))])
        events = list(store.read("audit"))
        edited = [*events[:2], msgspec.structs.replace(events[2], data=b"forged"), events[3]]
        report = verify_chain(edited)
        assert (report.ok, report.count, report.bad_version) == (False, 2, 3)
        assert report.head == events[1].digest.hex()
        deleted = [*events[:1], *events[2:]]
        assert verify_chain(deleted).bad_version == 2
        swapped = [events[0], events[2], events[1], events[3]]
        assert verify_chain(swapped).bad_version == 2

    # ------------------------------------------------------------ retention

    def test_purge_deletes_archived_events_for_good(self, store: Any) -> None:
        for i in range(10):
            store.append("s", [ev("e", bytes([i]))])
        store.archive("s", 7)
        assert store.purge_archive("s", 4) == 4
        assert [e.version for e in store.read("s", archived=True)] == [5, 6, 7, 8, 9, 10]
        assert [e.version for e in store.read("s")] == [8, 9, 10]
        info = store.stream_info("s")
        assert (info.version, info.archived_upto, info.purged_upto) == (10, 7, 4)
        assert store.purge_archive("s", 2) == 4  # already purged: a no-op
        store.append("s", [ev("after")])
        assert store.version("s") == 11
        store = self.reopen(store)
        assert [e.version for e in store.read("s", 1, 6, archived=True)] == [5, 6]
        assert store.stream_info("s").purged_upto == 4
        store.close()

    def test_purge_refuses_the_hot_log_and_the_last_event(self, store: Any) -> None:
        for _ in range(3):
            store.append("s", [ev()])
        store.archive("s", 3)
        with pytest.raises(ArchiveError):
            store.purge_archive("s", 3)  # the last event stays
        store.append("s", [ev()])
        with pytest.raises(ArchiveError):
            store.purge_archive("s", 4)  # not archived
        with pytest.raises(ArchiveError):
            store.purge_archive("nope", 1)
        assert [e.version for e in store.read("s", archived=True)] == [1, 2, 3, 4]

    # ------------------------------------------------------------ append/read

    def test_unknown_stream_is_version_zero_and_empty(self, store: Any) -> None:
        assert store.version("nope") == 0
        assert list(store.read("nope")) == []
        assert store.stream_info("nope") is None
        assert store.load_snapshot("nope") is None

    def test_append_returns_new_version_and_read_returns_in_order(self, store: Any) -> None:
        assert store.append("s", [ev("a", b"1"), ev("b", b"2")]) == 2
        assert store.append("s", [ev("c", b"3")]) == 3
        got = list(store.read("s"))
        assert [(e.version, e.kind, e.data) for e in got] == [
            (1, "a", b"1"),
            (2, "b", b"2"),
            (3, "c", b"3"),
        ]
        assert all(e.stream == "s" for e in got)
        positions = [e.position for e in got]
        assert positions == sorted(positions) and len(set(positions)) == 3

    def test_events_of_one_append_share_a_timestamp_from_the_clock(self, store: Any) -> None:
        store.append("s", [ev(), ev()])
        store.append("s", [ev()])
        ts = [e.ts for e in store.read("s")]
        assert ts[0] == ts[1] < ts[2]
        assert ts[0] >= 1000

    def test_read_ranges(self, store: Any) -> None:
        store.append("s", [ev(data=bytes([i])) for i in range(10)])
        assert [e.version for e in store.read("s", 3, 5)] == [3, 4, 5]
        assert [e.version for e in store.read("s", 9)] == [9, 10]
        assert list(store.read("s", 11)) == []
        assert [e.version for e in store.read("s", 1, 100)] == list(range(1, 11))
        assert list(store.read("s", 5, 4)) == []

    def test_streams_are_isolated(self, store: Any) -> None:
        store.append("a", [ev("x")])
        store.append("b", [ev("y"), ev("z")])
        store.append("a", [ev("w")])
        assert [e.kind for e in store.read("a")] == ["x", "w"]
        assert [e.kind for e in store.read("b")] == ["y", "z"]
        assert sorted(store.streams()) == ["a", "b"]

    def test_read_all_is_global_commit_order(self, store: Any) -> None:
        store.append("a", [ev("1")])
        store.append("b", [ev("2"), ev("3")])
        store.append("a", [ev("4")])
        everything = list(store.read_all())
        assert [e.kind for e in everything] == ["1", "2", "3", "4"]
        assert [(e.stream, e.version) for e in everything] == [
            ("a", 1),
            ("b", 1),
            ("b", 2),
            ("a", 2),
        ]
        third = everything[2].position
        assert [e.kind for e in store.read_all(third)] == ["3", "4"]
        assert store.head_position() == everything[-1].position

    def test_binary_and_unicode_payloads_round_trip(self, store: Any) -> None:
        data = bytes(range(256)) * 10
        store.append("流/ü", [ev("kïnd", data)])
        (got,) = store.read("流/ü")
        assert got.data == data and got.kind == "kïnd"

    def test_many_events_read_across_chunks(self, store: Any) -> None:
        for _ in range(5):
            store.append("big", [ev(data=b"x") for _ in range(1000)])
        store.append("other", [ev()])
        assert [e.version for e in store.read("big")] == list(range(1, 5001))
        assert len(list(store.read_all())) == 5001

    # ------------------------------------------------------------ concurrency control

    def test_expected_version(self, store: Any) -> None:
        assert store.append("s", [ev()], expected_version=0) == 1
        assert store.append("s", [ev()], expected_version=1) == 2
        with pytest.raises(ConcurrencyError) as info:
            store.append("s", [ev("bad")], expected_version=1)
        assert info.value.expected == 1 and info.value.actual == 2
        assert "'s'" in str(info.value)
        assert store.version("s") == 2
        assert "bad" not in [e.kind for e in store.read("s")]

    def test_expected_version_zero_means_new(self, store: Any) -> None:
        store.append("s", [ev()])
        with pytest.raises(ConcurrencyError):
            store.append("s", [ev()], expected_version=0)

    def test_empty_append_checks_and_writes_nothing(self, store: Any) -> None:
        assert store.append("s", []) == 0
        assert store.streams() == []
        store.append("s", [ev()])
        assert store.append("s", [], expected_version=1) == 1
        with pytest.raises(ConcurrencyError):
            store.append("s", [], expected_version=0)

    def test_append_many_is_atomic(self, store: Any) -> None:
        store.append("b", [ev()])
        with pytest.raises(ConcurrencyError):
            store.append_many([("a", [ev()], 0), ("b", [ev()], 0)])
        assert store.version("a") == 0 and store.version("b") == 1
        assert store.append_many([("a", [ev(), ev()], 0), ("b", [ev()], 1), ("a", [ev()], 2)]) == [
            2,
            2,
            3,
        ]
        assert [e.stream for e in store.read_all()] == ["b", "a", "a", "b", "a"]

    def test_append_many_tells_its_versions_before_it_commits(self, store: Any) -> None:
        store.append("b", [ev()])
        told: list[list[int]] = []
        with pytest.raises(ConcurrencyError):  # rejected: nothing to tell
            store.append_many([("a", [ev()], 0), ("b", [ev()], 0)], on_applied=told.append)
        assert told == []
        batch = [("a", [ev(), ev()], 0), ("b", [ev()], 1), ("a", [ev()], None)]
        assert store.append_many(batch, on_applied=told.append) == [2, 2, 3]
        assert told == [[2, 2, 3]]

    def test_append_many_refuses_an_on_applied_it_cannot_call(self, store: Any) -> None:
        with pytest.raises(InvalidEventError, match="on_applied must be callable"):
            store.append_many([("a", [ev()], 0)], on_applied="later")
        assert store.version("a") == 0

    def test_append_many_writes_nothing_if_on_applied_raises(self, store: Any) -> None:
        store.append("b", [ev()])

        def refuse(versions: list[int]) -> None:
            raise RuntimeError(f"refused {versions}")

        with pytest.raises(RuntimeError, match=r"refused \[1, 2\]"):
            store.append_many([("a", [ev()], 0), ("b", [ev()], 1)], on_applied=refuse)
        assert store.version("a") == 0 and store.version("b") == 1
        assert store.append_many([("a", [ev()], 0)]) == [1]
        assert [e.stream for e in store.read_all()] == ["b", "a"]

    # ------------------------------------------------------------ snapshots

    def test_snapshots_keep_newest(self, store: Any) -> None:
        store.append("s", [ev() for _ in range(10)])
        for v in (2, 4, 6, 8):
            store.save_snapshot("s", v, f"state@{v}".encode())
        snap = store.load_snapshot("s")
        assert snap is not None and snap.version == 8 and snap.data == b"state@8"
        assert snap.stream == "s"

    def test_snapshot_past_the_end_is_refused(self, store: Any) -> None:
        store.append("s", [ev()])
        with pytest.raises(SnapshotError):
            store.save_snapshot("s", 2, b"x")
        with pytest.raises(SnapshotError):
            store.save_snapshot("missing", 1, b"x")
        assert store.load_snapshot("s") is None

    # ------------------------------------------------------------ archive

    def test_archive_moves_events_out_of_the_hot_log(self, store: Any) -> None:
        store.append("s", [ev(data=bytes([i])) for i in range(10)])
        store.append("t", [ev()])
        assert store.archive("s", 6) == 6
        assert [e.version for e in store.read("s")] == [7, 8, 9, 10]
        full = list(store.read("s", archived=True))
        assert [e.version for e in full] == list(range(1, 11))
        assert [e.data for e in full] == [bytes([i]) for i in range(10)]
        assert [e.version for e in store.read("s", 5, 8, archived=True)] == [5, 6, 7, 8]
        info = store.stream_info("s")
        assert (info.version, info.archived_upto) == (10, 6)
        assert [(e.stream, e.version) for e in store.read_all()] == [
            ("s", 7),
            ("s", 8),
            ("s", 9),
            ("s", 10),
            ("t", 1),
        ]
        # Appends continue the version sequence.
        assert store.append("s", [ev()], expected_version=10) == 11

    def test_archive_is_idempotent_and_incremental(self, store: Any) -> None:
        store.append("s", [ev() for _ in range(10)])
        assert store.archive("s", 3) == 3
        assert store.archive("s", 2) == 3
        assert store.archive("s", 7) == 7
        assert [e.version for e in store.read("s", archived=True)] == list(range(1, 11))
        assert store.archive("s", 10) == 10
        assert list(store.read("s")) == []
        assert len(list(store.read("s", archived=True))) == 10

    def test_archive_past_the_end_is_refused(self, store: Any) -> None:
        store.append("s", [ev()])
        with pytest.raises(ArchiveError):
            store.archive("s", 2)
        with pytest.raises(ArchiveError):
            store.archive("nope", 1)
        assert [e.version for e in store.read("s")] == [1]

    # ------------------------------------------------------------ bad input

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.append("", [ev()]),
            lambda s: s.append(5, [ev()]),
            lambda s: s.append("s", ev()),
            lambda s: s.append("s", ["not an event"]),
            lambda s: s.append("s", [NewEvent("", b"")]),
            lambda s: s.append("s", [NewEvent("k", "text")]),
            lambda s: s.append("s", [ev()], expected_version=-1),
            lambda s: s.append("s", [ev()], expected_version="1"),
            lambda s: s.append("x" * 401, [ev()]),
            lambda s: s.append("\ud800", [ev()]),
            lambda s: s.append_many([("s", [ev()])]),
            lambda s: s.append_many("s"),
            lambda s: s.read("s", 0),
            lambda s: s.save_snapshot("s", 1, "text"),
            lambda s: s.archive("s", 0),
        ],
    )
    def test_bad_arguments_raise_typed_errors_and_write_nothing(
        self, store: Any, call: Callable[[Any], Any]
    ) -> None:
        store.append("s", [ev("keep")])
        with pytest.raises(InvalidEventError):
            call(store)
        assert [e.kind for e in store.read_all()] == ["keep"]

    def test_closed_store_refuses_everything(self, store: Any) -> None:
        store.append("s", [ev()])
        store.close()
        for call in (
            lambda: store.append("s", [ev()]),
            lambda: list(store.read("s")),
            lambda: store.version("s"),
            lambda: list(store.read_all()),
        ):
            with pytest.raises(StoreClosedError):
                call()
        store.close()  # idempotent

    # ------------------------------------------------------------ persistence

    def test_reopen_sees_everything(self, store: Any) -> None:
        store.append("s", [ev("a"), ev("b")])
        store.save_snapshot("s", 1, b"snap")
        store.append("t", [ev("c")])
        store.archive("s", 1)
        before = list(store.read_all())
        again = self.reopen(store)
        try:
            assert list(again.read_all()) == before
            assert [e.kind for e in again.read("s", archived=True)] == ["a", "b"]
            assert again.load_snapshot("s").data == b"snap"
            assert again.append("s", [ev("d")], expected_version=2) == 3
            assert again.read_all().__next__().position == before[0].position
        finally:
            again.close()
