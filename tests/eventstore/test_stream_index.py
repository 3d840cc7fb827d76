"""The per-stream index: runs plus a tail row per stream."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from eventstore import CorruptionError, EventStore, NewEvent


def ev(stream: str, i: int) -> NewEvent:
    return NewEvent("e", f"{stream}:{i}".encode())


def fill(store: EventStore, sizes: dict[str, list[int]]) -> dict[str, list[bytes]]:
    """Interleave appends of the given sizes across streams; return each stream's data."""
    want: dict[str, list[bytes]] = {s: [] for s in sizes}
    for round_ in range(max(len(v) for v in sizes.values())):
        for stream, counts in sizes.items():
            if round_ < len(counts):
                start = len(want[stream])
                events = [ev(stream, start + i) for i in range(counts[round_])]
                store.append(stream, events)
                want[stream].extend(e.data for e in events)
    return want


SIZES = {
    "ones": [1] * 300,
    "sevens": [7] * 45,
    "mixed": [15, 1, 1, 200, 3, 129, 16],
}


def check_reads(store: EventStore, want: dict[str, list[bytes]], archived: dict[str, int]) -> None:
    for stream, data in want.items():
        n = len(data)
        assert store.version(stream) == n
        assert [e.data for e in store.read(stream, archived=True)] == data
        assert [e.version for e in store.read(stream)] == list(
            range(archived.get(stream, 0) + 1, n + 1)
        )
        for lo, hi in [(1, 1), (15, 17), (16, 16), (17, 130), (128, 129), (n, n), (n - 20, n)]:
            got = [e.data for e in store.read(stream, lo, hi, archived=True)]
            assert got == data[lo - 1 : hi], (stream, lo, hi)


def test_reads_across_runs_and_tail_with_interleaved_streams(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "s") as store:
        want = fill(store, SIZES)
        check_reads(store, want, {})
    with EventStore.open(tmp_path / "s") as store:  # from disk, not the writer's cache
        check_reads(store, want, {})


@pytest.mark.parametrize("up_to", [1, 15, 16, 17, 128, 129, 144, 200, 299, 300])
def test_archive_at_any_boundary_keeps_every_version_readable(tmp_path: Path, up_to: int) -> None:
    with EventStore.open(tmp_path / "s") as store:
        want = fill(store, SIZES)
        archived = {}
        for stream, data in want.items():
            cut = min(up_to, len(data))
            assert store.archive(stream, cut) == cut
            archived[stream] = cut
        check_reads(store, want, archived)
        more = fill(store, {"ones": [1] * 20, "mixed": [40]})
        for stream, data in more.items():
            want[stream].extend(data)
        check_reads(store, want, archived)
    with EventStore.open(tmp_path / "s") as store:
        check_reads(store, want, archived)


def test_many_streams_in_one_commit(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "s") as store:
        for round_ in range(40):
            store.append_many([(f"s{i}", [ev(f"s{i}", round_)], None) for i in range(100)])
        for i in (0, 57, 99):
            assert [e.data for e in store.read(f"s{i}")] == [
                f"s{i}:{r}".encode() for r in range(40)
            ]


def test_a_damaged_tail_row_names_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("orders", [NewEvent("e")] * 3)
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:  # the log is LMDB's main database
        tail = [bytes(k) for k, _ in txn.cursor() if k[:1] == b"n" and len(k) == 9]
        assert len(tail) == 1
        txn.put(tail[0], b"\x00" * 5)
    env.close()
    with EventStore.open(path) as store:
        with pytest.raises(CorruptionError, match="stream 'orders'"):
            store.version("orders")
        with pytest.raises(CorruptionError, match="stream 'orders'"):
            store.append("orders", [NewEvent("e")])
        store.append("other", [NewEvent("e")])  # the rest of the store still works
        assert store.version("other") == 1
