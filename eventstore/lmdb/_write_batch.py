"""One write transaction's worth of state, and the operations group commit
batches into it. Each operation validates before it writes, so a rejected
operation leaves nothing behind in the shared transaction."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from . import _codec as codec
from ._layout import LAYOUT
from ._rows import _MetaRow, _StreamRow


class Tables(Protocol):
    """What a write batch reads of the store it writes to (the LMDB store):
    its table handles and the rows it keeps. A protocol, so this module sits
    below the store and the store imports it, not the reverse."""

    _db: dict[str, Any]
    _log_db: Any

    def _load_counters(self, txn: Any) -> tuple[int, int]: ...

    def _load_stream(self, txn: Any, name: str) -> StreamState | None: ...

    def _last_digest(self, txn: Any, stream: str, row: StreamState | None) -> bytes: ...


META_KEY = b"meta"
_UNSEEN: Any = object()


class StreamState(NamedTuple):
    sid: int
    version: int
    archived_upto: int
    purged_upto: int = 0
    tail_first: int = 1
    """The first version in the stream's tail row (``_stream_index``)."""
    tail: bytes = b""
    """Packed positions of versions ``tail_first..version``."""


class WriteBatch:
    """State of one write batch: counters read once, written back only when
    they cannot be derived from the log itself (stream creation, archive)."""

    __slots__ = (
        "_cache",
        "_store",
        "digests",
        "dirty_rows",
        "events_cursor",
        "meta_dirty",
        "next_position",
        "next_sid",
        "streams",
        "ts",
        "txn",
    )

    def __init__(
        self,
        store: Tables,
        txn: Any,
        ts: float,
        cache: WriteCache | None = None,
    ) -> None:
        self._store = store
        self.txn = txn
        self.ts = ts
        self._cache = cache
        if cache is not None:
            self.next_position, self.next_sid = cache.counters
        else:
            self.next_position, self.next_sid = store._load_counters(txn)
        self.meta_dirty = False
        self.streams: dict[str, StreamState | None] = {}
        self.digests: dict[str, bytes] = {}  # chained streams: digest of the last event
        self.dirty_rows: set[str] = set()
        self.events_cursor = txn.cursor(db=store._log_db)

    def stream(self, name: str) -> StreamState | None:
        # No KeyError raised: most names are new to a batch.
        seen: StreamState | None = self.streams.get(name, _UNSEEN)
        if seen is not _UNSEEN:
            return seen
        cached = self._cache.streams.get(name) if self._cache is not None else None
        state = cached if cached is not None else self._store._load_stream(self.txn, name)
        self.streams[name] = state
        return state

    def last_digest(self, name: str, state: StreamState | None) -> bytes:
        """The digest a chained stream's next event chains from."""
        digest = self.digests.get(name)
        if digest is None and self._cache is not None:
            digest = self._cache.digests.get(name)
        if digest is None:
            digest = self._store._last_digest(self.txn, name, state)
        return digest

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
            row = _StreamRow(state.sid, state.archived_upto, state.purged_upto)
            self.txn.put(name.encode("utf-8"), codec.encode(row), db=db["catalog"])
        if self.meta_dirty:
            meta = _MetaRow(self.next_position, self.next_sid, LAYOUT)
            self.txn.put(META_KEY, codec.encode(meta), db=db["meta"])


class WriteCache:
    """What this process knows the log looks like after its own last commit.

    Valid only for the write transaction whose id is exactly one past that
    commit's: then no other process wrote in between (LMDB numbers write
    transactions consecutively), and counters and stream states need not be
    read back from the B-trees. Any other id, or a failed batch, drops it;
    so does a commit that wrote nothing (it leaves its number to the next
    writer, which may be another process: the store checks the log's last
    transaction id after each commit).
    """

    MAX_STREAMS = 100_000

    def __init__(self) -> None:
        self.txn_id: int | None = None
        self.counters = (1, 1)
        self.streams: dict[str, StreamState] = {}
        self.digests: dict[str, bytes] = {}

    def valid_for(self, txn_id: int) -> bool:
        return self.txn_id is not None and txn_id == self.txn_id + 1

    def committed(self, txn_id: int, batch: WriteBatch) -> None:
        if self.txn_id is None or txn_id != self.txn_id + 1:
            self.streams.clear()
            self.digests.clear()
        if len(self.streams) > self.MAX_STREAMS:
            self.streams.clear()
            self.digests.clear()
        self.txn_id = txn_id
        self.counters = (batch.next_position, batch.next_sid)
        for name, state in batch.streams.items():
            if state is not None:
                self.streams[name] = state
        self.digests.update(batch.digests)

    def drop(self) -> None:
        self.txn_id = None
        self.streams.clear()
        self.digests.clear()
