"""The per-stream index (runs + tail rows) and the key-layout upgrade."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lmdb
import msgspec
import pytest

from eventstore import CorruptionError, EventStore, NewEvent, StoreIOError


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


# ---------------------------------------------------------------- layout 1


def downgrade_to_layout_1(path: Path) -> None:
    """Rewrite a store's index the way layout 1 stored it: one key per event."""
    env = lmdb.open(str(path), max_dbs=16)
    log, meta = env.open_db(b"log"), env.open_db(b"meta")
    with env.begin(write=True) as txn:
        cur = txn.cursor(db=log)
        index = [(bytes(k), bytes(v)) for k, v in cur if k[:1] in (b"i", b"n")]
        entries: list[tuple[int, int, int]] = []
        for key, value in index:
            txn.delete(key, db=log)
            if key[:1] == b"i":
                _, sid, first = struct.unpack(">cQQ", key)
                positions = struct.unpack(f">{len(value) // 8}Q", value)
            else:
                _, sid = struct.unpack(">cQ", key)
                first = struct.unpack_from(">Q", value)[0]
                positions = struct.unpack(f">{len(value) // 8 - 1}Q", value[8:])
            entries += [(sid, first + i, p) for i, p in enumerate(positions)]
        for sid, version, position in entries:
            txn.put(
                b"i" + struct.pack(">QQ", sid, version),
                b"p" + position.to_bytes(8, "big"),
                db=log,
            )
        raw = txn.get(b"meta", db=meta)
        fields = msgspec.msgpack.decode(raw[1:])
        assert fields[2] == 2
        txn.put(b"meta", raw[:1] + msgspec.msgpack.encode(fields[:2]), db=meta)
    env.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


def test_a_layout_1_store_is_upgraded_when_opened_writable(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        want = fill(store, SIZES)
        store.archive("mixed", 20)
        store.archive("sevens", 7 * 45)  # every event archived: no index left
    downgrade_to_layout_1(path)
    before = file_digest(path)
    with pytest.raises(StoreIOError, match=r"layout 1.*open it once writable"):
        EventStore.open(path, readonly=True)
    assert file_digest(path) == before
    archived = {"mixed": 20, "sevens": 7 * 45}
    with EventStore.open(path) as store:
        check_reads(store, want, archived)
        more = fill(store, {"sevens": [3], "ones": [20]})
        for stream, data in more.items():
            want[stream].extend(data)
        check_reads(store, want, archived)
    with EventStore.open(path, readonly=True) as store:
        check_reads(store, want, archived)


def test_a_newer_layout_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("a", [NewEvent("e")])
    env = lmdb.open(str(path), max_dbs=16)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        raw = txn.get(b"meta", db=meta)
        fields = msgspec.msgpack.decode(raw[1:])
        txn.put(b"meta", raw[:1] + msgspec.msgpack.encode([*fields[:2], 99]), db=meta)
    env.close()
    before = file_digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreIOError, match="layout 99"):
            EventStore.open(path, readonly=readonly)
    assert file_digest(path) == before


def test_a_damaged_tail_row_names_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("orders", [NewEvent("e")] * 3)
    env = lmdb.open(str(path), max_dbs=16)
    log = env.open_db(b"log")
    with env.begin(write=True) as txn:
        tail = [bytes(k) for k, _ in txn.cursor(db=log) if k[:1] == b"n"]
        assert len(tail) == 1
        txn.put(tail[0], b"\x00" * 5, db=log)
    env.close()
    with EventStore.open(path) as store:
        with pytest.raises(CorruptionError, match="stream 'orders'"):
            store.version("orders")
        with pytest.raises(CorruptionError, match="stream 'orders'"):
            store.append("orders", [NewEvent("e")])
        store.append("other", [NewEvent("e")])  # the rest of the store still works
        assert store.version("other") == 1
