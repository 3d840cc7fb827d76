"""What each write operation does inside a write transaction: append
(with its stream index and, for chained streams, the digest chain),
snapshot, archive, purge. ``WriteOps`` holds them; the LMDB store inherits
it and runs them in its group commit. Each validates before it writes, so a
rejected operation leaves nothing in the shared transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._chain import GENESIS, digest_of
from .._errors import (
    ArchiveError,
    ConcurrencyError,
    SnapshotError,
)
from .._records import NewEvent, RecordedEvent
from .._write_ops import AppendOp, ArchiveOp, Op, PurgeOp, SnapshotOp
from . import _codec as codec
from . import _stream_index as stream_index
from ._errors import (
    check_record,
    corrupt_meta,
    missing,
)
from ._leases import LeaseOp, LeaseTable
from ._rows import _ArchiveChunk, _SnapshotRow
from ._write_batch import StreamState, WriteBatch

_ARCHIVE_CHUNK = 4096
"""Events per compressed archive chunk."""


class WriteOps:
    """The write operations of :class:`LmdbEventStore` (see the module docstring)."""

    if TYPE_CHECKING:
        _db: dict[str, Any]
        _log_db: Any
        _path: str
        _chained: frozenset[str]
        _keep_snapshots: int
        _lease_table: LeaseTable

        def _keys_with_sid(self, txn: Any, db: Any, sid: int) -> Iterator[bytes]: ...
        def _positions(
            self, txn: Any, stream: str, row: StreamState, first: int, last: int
        ) -> list[int]: ...
        def _read_hot(
            self, txn: Any, stream: str, row: StreamState, first: int, last: int
        ) -> list[RecordedEvent]: ...
        def _read_archived(
            self, txn: Any, stream: str, sid: int, first: int, last: int
        ) -> list[RecordedEvent]: ...

    def _apply(self, st: WriteBatch, op: Op | LeaseOp) -> Any:
        if isinstance(op, AppendOp):
            if op.fences:  # in the transaction that writes: no other process in between
                self._lease_table.check_fences(st.txn, op.fences, st.ts)
            return self._apply_append(st, op)
        if isinstance(op, LeaseOp):
            return op.run(st.txn, st.ts)
        if isinstance(op, SnapshotOp):
            return self._apply_snapshot(st, op)
        if isinstance(op, PurgeOp):
            return self._apply_purge(st, op)
        return self._apply_archive(st, op)

    def _apply_purge(self, st: WriteBatch, op: PurgeOp) -> int:
        row = st.stream(op.stream)
        if row is None or op.up_to > row.archived_upto or op.up_to >= row.version:
            raise ArchiveError(
                f"stream {op.stream!r}: cannot purge up to version {op.up_to}: only archived "
                f"events ({row.archived_upto if row else 0}) and never the last "
                f"({row.version if row else 0})"
            )
        if op.up_to <= row.purged_upto:
            return row.purged_upto
        db = self._db["archive"]
        where = f"stream {op.stream!r} archive"
        chunks = [
            (key, cur_value)
            for key, cur_value in self._archive_chunks(st.txn, row.sid)
            if codec.from_pair(key)[1] <= op.up_to
        ]
        for key, raw in chunks:
            chunk = codec.decode_compressed(
                raw, _ArchiveChunk, what="archive chunk", where=where, path=self._path
            )
            st.txn.delete(key, db=db)
            kept = [r for r in chunk.rows if r.version > op.up_to]
            if kept:  # the chunk straddles the line: keep its tail, keyed by its new first
                st.txn.put(
                    codec.pair(row.sid, kept[0].version),
                    codec.encode_compressed(_ArchiveChunk(kept)),
                    db=db,
                )
        st.set_stream(op.stream, row._replace(purged_upto=op.up_to), row_changed=True)
        return op.up_to

    def _archive_chunks(self, txn: Any, sid: int) -> list[tuple[bytes, bytes]]:
        cur = txn.cursor(db=self._db["archive"])
        out: list[tuple[bytes, bytes]] = []
        if not cur.set_range(codec.pair(sid, 0)):
            return out
        for key, value in cur.iternext():
            if codec.from_pair(bytes(key))[0] != sid:
                break
            out.append((bytes(key), bytes(value)))
        return out

    def _apply_append(self, st: WriteBatch, op: AppendOp) -> list[int]:
        items = op.items
        if len(items) == 1:  # the common case: one stream, nothing to plan
            stream, events, expected = items[0]
            if expected is not None:
                only = st.stream(stream)
                version = only.version if only is not None else 0
                if expected != version:
                    raise ConcurrencyError(stream, expected, version)
            return [self._write_events(st, stream, events)]
        # Check every expected version first: a rejected op writes nothing.
        planned: dict[str, int] = {}
        for stream, events, expected in op.items:
            current = planned.get(stream)
            if current is None:
                row = st.stream(stream)
                current = row.version if row is not None else 0
            if expected is not None and expected != current:
                raise ConcurrencyError(stream, expected, current)
            planned[stream] = current + len(events)
        return [self._write_events(st, stream, events) for stream, events, _ in op.items]

    def _write_events(self, st: WriteBatch, stream: str, events: list[NewEvent]) -> int:
        row = st.stream(stream)
        if not events:
            return row.version if row is not None else 0
        created = row is None
        if row is None:
            row = StreamState(st.new_sid(), 0, 0)
        first_pos = pos = st.next_position
        put_event = st.events_cursor.put
        event_key, encode, ts = codec.event_key, codec.encode, st.ts
        version = row.version
        chained = stream in self._chained
        digest = st.last_digest(stream, None if created else row) if chained else b""
        for ev in events:
            version += 1
            if chained:
                digest = digest_of(digest, stream, version, pos, ev.kind, ev.data, ts)
            value = encode(RecordedEvent(stream, version, pos, ev.kind, ev.data, ts, digest))
            if not put_event(event_key(pos), value, append=True):
                raise corrupt_meta(self._path, pos)  # pragma: no cover
            pos += 1
        st.next_position = pos
        sid = row.sid
        first, tail = stream_index.extend(
            st.txn, self._log_db, sid, row.tail_first, row.tail, first_pos, pos - first_pos
        )
        st.set_stream(
            stream,
            StreamState(sid, version, row.archived_upto, row.purged_upto, first, tail),
            row_changed=created,
        )
        if chained:
            st.digests[stream] = digest
        return version

    def _last_digest(self, txn: Any, stream: str, row: StreamState | None) -> bytes:
        if row is None or row.version == 0:
            return GENESIS
        v = row.version
        if v > row.archived_upto:
            last = self._read_hot(txn, stream, row, v, v)
        else:
            last = self._read_archived(txn, stream, row.sid, v, v)
        if not last:  # pragma: no cover - the index said it is there
            raise missing(self._path, f"stream {stream!r} version {v}")
        return last[0].digest

    def _apply_snapshot(self, st: WriteBatch, op: SnapshotOp) -> None:
        row = st.stream(op.stream)
        current = row.version if row is not None else 0
        if row is None or op.version > current:
            raise SnapshotError(
                f"stream {op.stream!r}: cannot snapshot version {op.version}, "
                f"the stream is at version {current}"
            )
        db = self._db["checkpoints"]
        st.txn.put(
            codec.pair(row.sid, op.version),
            codec.encode(_SnapshotRow(op.version, op.data, st.ts)),
            db=db,
        )
        keys = list(self._keys_with_sid(st.txn, db, row.sid))
        for key in keys[: max(0, len(keys) - self._keep_snapshots)]:
            st.txn.delete(key, db=db)

    def _apply_archive(self, st: WriteBatch, op: ArchiveOp) -> int:
        row = st.stream(op.stream)
        current = row.version if row is not None else 0
        if row is None or op.up_to > current:
            raise ArchiveError(
                f"stream {op.stream!r}: cannot archive up to version {op.up_to}, "
                f"the stream is at version {current}"
            )
        if op.up_to <= row.archived_upto:
            return row.archived_upto
        txn, log_db = st.txn, self._log_db
        # Read (and decode) everything first: a corrupt record aborts this op
        # before anything was written.
        moving: list[tuple[bytes, RecordedEvent]] = []
        first = row.archived_upto + 1
        for i, position in enumerate(self._positions(txn, op.stream, row, first, op.up_to)):
            version = first + i
            pkey = codec.event_key(position)
            where = f"stream {op.stream!r} version {version}"
            raw = txn.get(pkey, db=log_db)
            if raw is None:
                raise missing(self._path, where)
            ev = codec.decode(raw, RecordedEvent, what="event", where=where, path=self._path)
            check_record(ev, op.stream, version, position, where, self._path)
            moving.append((pkey, ev))
        for start in range(0, len(moving), _ARCHIVE_CHUNK):
            part = moving[start : start + _ARCHIVE_CHUNK]
            txn.put(
                codec.pair(row.sid, part[0][1].version),
                codec.encode_compressed(_ArchiveChunk([m[1] for m in part])),
                db=self._db["archive"],
            )
        for pkey, _ in moving:
            txn.delete(pkey, db=log_db)
        stream_index.trim(txn, log_db, row.sid, min(op.up_to, row.tail_first - 1))
        tail_first, tail = row.tail_first, row.tail
        if op.up_to >= tail_first:  # the tail loses its archived versions too
            tail = tail[(op.up_to + 1 - tail_first) << 3 :]
            tail_first = op.up_to + 1
            stream_index.write(txn, log_db, row.sid, tail_first, tail)
        st.set_stream(
            op.stream,
            row._replace(archived_upto=op.up_to, tail_first=tail_first, tail=tail),
            row_changed=True,
        )
        # The archived events may include the newest one: persist the position
        # counter so it never goes back and reuses a position.
        st.meta_dirty = True
        return op.up_to
