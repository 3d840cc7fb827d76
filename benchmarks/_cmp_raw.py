"""The physical limits: one durable LMDB commit per step, and one SQLite
(WAL, synchronous=FULL) insert + commit per step."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import time
from pathlib import Path

import lmdb

from benchmarks._cmp_common import latencies, payload, payload_run, tmp
from eventstore import EventStore, NewEvent


def _lmdb(d: Path, n: int, value: bytes, stamps: list[float]) -> float:
    env = lmdb.open(str(d), map_size=1 << 32)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            with env.begin(write=True) as txn:
                txn.put(struct.pack(">Q", i), value, append=True)
            stamps.append(time.perf_counter())
        return n / (time.perf_counter() - t0)
    finally:
        env.close()


def _sqlite(d: Path, n: int, value: bytes, stamps: list[float]) -> float:
    conn = sqlite3.connect(d / "raw.sqlite", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, value))
            conn.execute("COMMIT")
            stamps.append(time.perf_counter())
        return n / (time.perf_counter() - t0)
    finally:
        conn.close()  # the last connection: SQLite folds the WAL in


def _eventstore(d: Path, n: int, value: bytes, stamps: list[float]) -> float:
    """What one aura step commits, without the runtime around it: the step's
    record in its mission stream and its audit record in the hash-chained
    ``$audit`` stream, in one durable commit."""
    with EventStore.open(d, chained=("$audit",)) as store:
        t0 = time.perf_counter()
        for _ in range(n):
            store.append_many(
                [
                    ("mission", [NewEvent("step", value)], None),
                    ("$audit", [NewEvent("audit", value[:100])], None),
                ]
            )
            stamps.append(time.perf_counter())
        return n / (time.perf_counter() - t0)


RAW = {"lmdb": _lmdb, "sqlite": _sqlite, "eventstore": _eventstore}


def raw_steps(kind: str, n: int) -> dict[str, float]:
    """Workload 1's limit: ``n`` commits of a 64-byte value, with latencies."""
    d, stamps = tmp(), []
    try:
        return {"steps/s": RAW[kind](d, n, payload(64).encode(), stamps), **latencies(stamps)}
    finally:
        shutil.rmtree(d)


def raw_payload(kind: str, n: int, size: int) -> dict[str, float]:
    """Workload 4's limit: commits of ``size``-byte values, bytes on disk."""
    value = payload(size).encode()
    return payload_run(lambda d, k: RAW[kind](d, k, value, []), n)
