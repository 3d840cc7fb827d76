"""Key-layout versions of the LMDB store, and the upgrade between them.

The meta row records the layout a store was written with:

- 1: one index key per event, ``b"i" + sid + version -> b"p" + position``;
- 2 (now): the per-stream index is runs plus a tail row (``_stream_index``).

A writable open upgrades an older store in one write transaction (all or
nothing: a crash during it leaves layout 1 intact). A read-only open of an
older store, or any open of a newer one, raises ``StoreIOError`` and
touches nothing.
"""

from __future__ import annotations

import struct
from typing import Any

from . import _codec as codec
from . import _stream_index as index
from ._errors import CorruptionError
from ._records import _StreamRow

LAYOUT = 2
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
