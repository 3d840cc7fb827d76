"""Key-layout versions of the LMDB store, and the upgrades between them.

The meta row records the layout a store was written with:

- 1: one index key per event, ``b"i" + sid + version -> b"p" + position``;
- 2: the per-stream index is runs plus a tail row (``_stream_index``);
- 3 (now): the log (events, runs, tail rows) lives in LMDB's main database
  instead of a named one, and the named tables are ``catalog`` (was
  ``streams``), ``checkpoints`` (was ``snapshots``), ``archive`` and ``meta``.

Why 3: every commit that changes a named database also rewrites that
database's record in the main database, one more dirty page to write and
sync per append (measured with raw LMDB here: one put into a named database
1.10x one put into the main database, and 1.23x with a second put such as
the tail row). The log is written by every append, the other tables rarely.

The rule layout 3 rests on: the main database's keys are the named tables'
names and the log's keys (prefixes ``i``, ``n``, ``p``), and events
(``p`` + position, written with ``MDB_APPEND``) must stay its last keys. So
no table name may start with ``i``, ``n`` or ``p`` or sort after ``p``;
that is why ``streams`` and ``snapshots`` were renamed.

A writable open upgrades an older store in one write transaction (all or
nothing: a crash during it leaves the old layout intact). A read-only open
of an older store, or any open of a newer one, raises ``StoreIOError`` and
touches nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .._errors import CorruptionError
from . import _codec as codec
from . import _stream_index as index
from ._rows import _StreamRow

LAYOUT = 3
LEGACY_TABLES = ("log", "streams", "snapshots")
"""Named databases of layouts 1 and 2 that layout 3 replaced."""
_V1_INDEX = struct.Struct(">cQQ")


def upgrade_from_1(txn: Any, log_db: Any, streams_db: Any, path: str) -> None:
    """Rewrite a layout-1 index as runs and tails (meta is the caller's)."""
    by_sid: dict[int, tuple[int, list[int]]] = {}
    cur = txn.cursor(db=log_db)
    old_keys: list[bytes] = []
    if cur.set_range(index.RUN):
        for key, value in cur.iternext():
            if key[:1] != index.RUN:
                break
            _, sid, version = _V1_INDEX.unpack(key)
            first, found = by_sid.setdefault(sid, (version, []))
            if version != first + len(found) or len(value) != 9 or value[:1] != codec.EVENT:
                raise CorruptionError(
                    "layout-1 index entry",
                    f"stream id {sid} version {version}",
                    path,
                    "not a dense run of position keys; cannot upgrade the layout",
                )
            found.append(codec.from_event_key(value))
            old_keys.append(bytes(key))
    for key in old_keys:
        txn.delete(key, db=log_db)
    for name, raw in txn.cursor(db=streams_db).iternext():
        row = codec.decode(
            raw, _StreamRow, what="stream record", where=f"stream {name!r}", path=path
        )
        first, found = by_sid.get(row.sid, (row.archived_upto + 1, []))
        packed = struct.pack(f">{len(found)}Q", *found)
        index.write(txn, log_db, row.sid, first, packed)


def upgrade(
    txn: Any, env: Any, layout: int, *, log_db: Any, tables: dict[str, Any], path: str
) -> None:
    """Bring a layout-1 or -2 store to layout 3 within ``txn`` (the meta row is
    the caller's). ``log_db`` is the main database, ``tables`` the layout-3
    named tables, already open in ``txn``."""
    old = {name: env.open_db(name.encode(), txn=txn, create=False) for name in LEGACY_TABLES}
    if layout == 1:
        upgrade_from_1(txn, old["log"], old["streams"], path)
    for legacy, table in (("streams", "catalog"), ("snapshots", "checkpoints")):
        _move(txn, old[legacy], tables[table], append=lambda key: True)
    # Now no name in the main database sorts after b"p": events go last, with
    # MDB_APPEND as the writer puts them (which also checks that rule).
    _move(txn, old["log"], log_db, append=lambda key: key[:1] == codec.EVENT)


def _move(txn: Any, src: Any, dst: Any, append: Callable[[bytes], bool]) -> None:
    """Copy every row of ``src`` into ``dst`` (in key order), then drop ``src``."""
    put = txn.cursor(db=dst).put
    for key, value in txn.cursor(db=src).iternext():
        if not put(key, value, append=append(key)):  # pragma: no cover - dst was not empty
            raise RuntimeError(f"layout upgrade: key {key!r} already in the target table")
    txn.drop(src, delete=True)
