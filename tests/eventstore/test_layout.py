"""Key layouts: older stores are upgraded by a writable open, in one
transaction; newer ones and read-only opens of older ones are refused and
left byte-for-byte alone."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lmdb
import msgspec
import pytest

from eventstore import EventStore, NewEvent, StoreIOError

from .test_stream_index import SIZES, check_reads, fill

TABLES = (b"catalog", b"checkpoints", b"archive", b"meta")
LEGACY = (b"log", b"streams", b"snapshots")


def set_layout(txn: lmdb.Transaction, meta: lmdb._Database, layout: int) -> None:
    raw = txn.get(b"meta", db=meta)
    fields = msgspec.msgpack.decode(raw[1:])
    assert fields[2] == layout + 1
    kept = fields[:2] if layout == 1 else [*fields[:2], layout]  # layout 1 had no field
    txn.put(b"meta", raw[:1] + msgspec.msgpack.encode(kept), db=meta)


def rename(txn: lmdb.Transaction, env: lmdb.Environment, src: bytes, dst: bytes) -> None:
    old, new = env.open_db(src, txn=txn, create=False), env.open_db(dst, txn=txn)
    for key, value in txn.cursor(db=old):
        txn.put(key, value, db=new)
    txn.drop(old, delete=True)


def downgrade_to_layout_2(path: Path) -> None:
    """Store a layout-3 store the way layout 2 did: the log in a named
    database ``log``, the tables under their old names."""
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:
        log = env.open_db(b"log", txn=txn)
        main = txn.cursor()
        rows = [(bytes(k), bytes(v)) for k, v in main if k[:1] in b"inp" and k not in TABLES]
        for key, value in rows:
            txn.delete(key)
            txn.put(key, value, db=log)
        rename(txn, env, b"catalog", b"streams")
        rename(txn, env, b"checkpoints", b"snapshots")
        set_layout(txn, env.open_db(b"meta", txn=txn), 2)
    env.close()


def downgrade_to_layout_1(path: Path) -> None:
    """Then rewrite the index the way layout 1 stored it: one key per event."""
    downgrade_to_layout_2(path)
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:
        log = env.open_db(b"log", txn=txn)
        index = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=log) if k[:1] in b"in"]
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
        set_layout(txn, env.open_db(b"meta", txn=txn), 1)
    env.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


def main_db(path: Path) -> tuple[dict[bytes, bool], dict[str, int]]:
    """Which table names the main database holds, and its page statistics."""
    env = lmdb.open(str(path), max_dbs=16, readonly=True, lock=False)
    with env.begin() as txn:
        names = {name: txn.get(name) is not None for name in TABLES + LEGACY}
        stat = txn.stat(env.open_db(None))
    env.close()
    return names, stat


def make_store(path: Path) -> dict[str, list[bytes]]:
    with EventStore.open(path) as store:
        want = fill(store, SIZES)
        store.archive("mixed", 20)
        store.archive("sevens", 7 * 45)  # every event archived: no index left
        store.save_snapshot("ones", 250, b"state@250")
    return want


@pytest.mark.parametrize("layout", [1, 2])
def test_an_older_store_is_upgraded_when_opened_writable(tmp_path: Path, layout: int) -> None:
    path = tmp_path / "s"
    want = make_store(path)
    fresh_names, fresh = main_db(path)
    (downgrade_to_layout_1 if layout == 1 else downgrade_to_layout_2)(path)
    assert main_db(path)[0] == {
        b"catalog": False,
        b"checkpoints": False,
        b"archive": True,
        b"meta": True,
        b"log": True,
        b"streams": True,
        b"snapshots": True,
    }
    before = file_digest(path)
    with pytest.raises(StoreIOError, match=rf"layout {layout}.*open it once writable"):
        EventStore.open(path, readonly=True)
    assert file_digest(path) == before
    archived = {"mixed": 20, "sevens": 7 * 45}
    with EventStore.open(path) as store:
        check_reads(store, want, archived)
        snap = store.load_snapshot("ones")
        assert snap is not None and (snap.version, snap.data) == (250, b"state@250")
        more = fill(store, {"sevens": [3], "ones": [20]})
        for stream, data in more.items():
            want[stream].extend(data)
        check_reads(store, want, archived)
    names, upgraded = main_db(path)
    assert names == fresh_names  # the legacy tables are gone
    # Moved in key order: the log takes no more pages than a fresh one.
    assert upgraded["leaf_pages"] <= fresh["leaf_pages"]
    with EventStore.open(path, readonly=True) as store:
        check_reads(store, want, archived)


def test_opening_a_current_store_writable_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s"
    make_store(path)
    before = file_digest(path)
    with EventStore.open(path) as store:
        assert store.version("ones") == 300
    assert file_digest(path) == before


def test_a_read_only_open_finds_no_store_where_none_was_written(tmp_path: Path) -> None:
    path = tmp_path / "s"
    lmdb.open(str(path)).close()  # an LMDB environment, but not an event store
    with pytest.raises(StoreIOError, match="no event store there"):
        EventStore.open(path, readonly=True)


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
