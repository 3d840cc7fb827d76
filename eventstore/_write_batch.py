"""One write transaction's worth of state, and the operations group commit
batches into it. Each operation validates before it writes, so a rejected
operation leaves nothing behind in the shared transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from . import _codec as codec
from ._records import NewEvent, _MetaRow, _StreamRow

if TYPE_CHECKING:
    from ._lmdb_store import EventStore

META_KEY = b"meta"


class StreamState(NamedTuple):
    sid: int
    version: int
    archived_upto: int


class WriteBatch:
    """State of one write batch: counters read once, written back only when
    they cannot be derived from the log itself (stream creation, archive)."""

    __slots__ = (
        "_store",
        "dirty_rows",
        "events_cursor",
        "meta_dirty",
        "next_position",
        "next_sid",
        "streams",
        "ts",
        "txn",
    )

    def __init__(self, store: EventStore, txn: Any, ts: float) -> None:
        self._store = store
        self.txn = txn
        self.ts = ts
        self.next_position, self.next_sid = store._load_counters(txn)
        self.meta_dirty = False
        self.streams: dict[str, StreamState | None] = {}
        self.dirty_rows: set[str] = set()
        self.events_cursor = txn.cursor(db=store._db["log"])

    def stream(self, name: str) -> StreamState | None:
        try:
            return self.streams[name]
        except KeyError:
            state = self._store._load_stream(self.txn, name)
            self.streams[name] = state
            return state

    def set_stream(self, name: str, state: StreamState, *, row_changed: bool) -> None:
        self.streams[name] = state
        if row_changed:
            self.dirty_rows.add(name)

    def new_sid(self) -> int:
        sid = self.next_sid
        self.next_sid += 1
        self.meta_dirty = True
        return sid

    def flush(self) -> None:
        db = self._store._db
        for name in self.dirty_rows:
            state = self.streams[name]
            assert state is not None
            row = _StreamRow(state.sid, state.archived_upto)
            self.txn.put(name.encode("utf-8"), codec.encode(row), db=db["streams"])
        if self.meta_dirty:
            meta = _MetaRow(self.next_position, self.next_sid)
            self.txn.put(META_KEY, codec.encode(meta), db=db["meta"])


class AppendOp:
    """One or more stream appends committed atomically (all or none)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, list[NewEvent], int | None]]) -> None:
        self.items = items


class SnapshotOp:
    __slots__ = ("data", "stream", "version")

    def __init__(self, stream: str, version: int, data: bytes) -> None:
        self.stream = stream
        self.version = version
        self.data = data


class ArchiveOp:
    __slots__ = ("stream", "up_to")

    def __init__(self, stream: str, up_to: int) -> None:
        self.stream = stream
        self.up_to = up_to


Op = AppendOp | SnapshotOp | ArchiveOp
