"""LMDB-specific behaviour: corruption, growth, read-only, full disk, processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import lmdb
import pytest

from eventstore import (
    CorruptionError,
    EventStore,
    NewEvent,
    StoreIOError,
    StoreReadOnlyError,
)

CHILDREN = Path(__file__).parent / "children"


def run_child(name: str, *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILDREN / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def digest(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


def overwrite_raw(path: Path, db: bytes | None, key: bytes, value: bytes) -> None:
    """Write a value behind the store's back, as a disk fault or a bad tool would."""
    env = lmdb.open(str(path), max_dbs=16)
    handle = env.open_db(db)
    with env.begin(write=True) as txn:
        assert txn.get(key, db=handle) is not None
        txn.put(key, value, db=handle)
    env.close()


@pytest.mark.parametrize("bad", [b"", b"\x01\xff\xfe", b"\x07" + b"junk", b"\x01\x93\x01"])
def test_undecodable_event_names_stream_and_version_and_changes_nothing(
    tmp_path: Path, bad: bytes
) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("orders", [NewEvent("a"), NewEvent("b"), NewEvent("c")])
        position = next(e.position for e in store.read("orders") if e.version == 2)
    overwrite_raw(path, None, b"p" + position.to_bytes(8, "big"), bad)
    before = digest(path)
    with EventStore.open(path) as store:
        with pytest.raises(CorruptionError) as info:
            list(store.read("orders"))
        assert "'orders' version 2" in str(info.value)
        assert str(path) in str(info.value)
        with pytest.raises(CorruptionError) as info_all:
            list(store.read_all())
        assert f"position {position}" in str(info_all.value)
        # An archive over the corrupt record is refused and moves nothing.
        with pytest.raises(CorruptionError):
            store.archive("orders", 3)
        assert store.stream_info("orders").archived_upto == 0
        # Reads before the corrupt record still work.
        assert [e.kind for e in store.read("orders", 1, 1)] == ["a"]
    assert digest(path) == before


def test_corrupt_stream_record_is_reported_on_append_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("orders", [NewEvent("a")])
        store.append("other", [NewEvent("a")])
    overwrite_raw(path, b"catalog", b"orders", b"\x01\xc1")
    with EventStore.open(path) as store:
        with pytest.raises(CorruptionError) as info:
            store.append("orders", [NewEvent("b")])
        assert "stream 'orders'" in str(info.value)
        assert store.append("other", [NewEvent("b")]) == 2
        assert len(list(store.read_all())) == 3


def test_map_grows_when_full(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "s", map_size=1 << 16) as store:
        payload = b"p" * 10_000
        for i in range(300):
            store.append("big", [NewEvent("blob", payload + str(i).encode())])
        assert store.version("big") == 300
        assert [e.data[-3:] for e in store.read("big", 299)] == [b"298", b"299"]


def test_map_grows_while_other_threads_read(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    with EventStore.open(tmp_path / "s", map_size=1 << 16) as store:
        store.append("big", [NewEvent("blob", b"x")])

        def reader() -> None:
            try:
                while not done.is_set():
                    versions = [e.version for e in store.read("big")]
                    assert versions == list(range(1, len(versions) + 1))
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for _ in range(200):
            store.append("big", [NewEvent("blob", b"y" * 20_000)])
        done.set()
        for t in threads:
            t.join()
    assert errors == []


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("s", [NewEvent("a")])
    with EventStore.open(path, readonly=True) as ro:
        assert [e.kind for e in ro.read("s")] == ["a"]
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            ro.append("s", [NewEvent("b")])
        with pytest.raises(StoreReadOnlyError):
            ro.save_snapshot("s", 1, b"")
    with pytest.raises(StoreIOError, match="no event store directory"):
        EventStore.open(tmp_path / "missing", readonly=True)


def test_full_disk_is_a_typed_error_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "s"
    result = run_child("disk_full.py", path, 400_000)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    acked = [int(line.split()[1]) for line in lines if line.startswith("ACK")]
    full = [line for line in lines if line.startswith("FULL")]
    assert acked and acked == list(range(1, len(acked) + 1))
    assert full and full[0].split()[1] == "StoreFullError", full
    assert "rolled back" in full[0]
    assert "AGAIN StoreFullError" in lines
    with EventStore.open(path) as store:
        events = list(store.read("s"))
        # Everything acknowledged is there, nothing unacknowledged became visible.
        assert len(events) == len(acked)
        assert [e.data[4000:] for e in events] == [str(i).encode() for i in range(len(acked))]
        assert store.append("s", [NewEvent("after")]) == len(acked) + 1


def test_another_process_reads_while_this_one_writes(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EventStore.open(path) as store:
        store.append("s", [NewEvent("first")])
        child = subprocess.Popen(
            [sys.executable, str(CHILDREN / "reader.py"), str(path), "s", "500"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        for _ in range(600):
            store.append("s", [NewEvent("e")])
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert int(out.split()[-1]) >= 500


def test_two_writer_processes_share_the_log(tmp_path: Path) -> None:
    path = tmp_path / "s"
    script = (
        "import sys\n"
        "from eventstore import EventStore, NewEvent\n"
        "s = EventStore.open(sys.argv[1])\n"
        "for i in range(300): s.append('shared', [NewEvent('c', str(i).encode())])\n"
        "s.close()\n"
    )
    with EventStore.open(path) as store:
        child = subprocess.Popen([sys.executable, "-c", script, str(path)])
        for i in range(300):
            store.append("shared", [NewEvent("p", str(i).encode())])
        assert child.wait(timeout=120) == 0
        events = list(store.read("shared"))
        assert [e.version for e in events] == list(range(1, 601))
        positions = [e.position for e in events]
        assert positions == sorted(positions)
        for kind in "pc":
            mine = [e.data for e in events if e.kind == kind]
            assert mine == [str(i).encode() for i in range(300)]
        assert [e.position for e in store.read_all()] == positions
