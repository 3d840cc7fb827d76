"""The LMDB event store.

Layout (see ``_layout`` for why, ``_codec`` for the bytes): LMDB's main
database holds the hot log, keyed by global position and written with
``MDB_APPEND``, and the per-stream index (version -> position; runs and a
tail row, see ``_stream_index``); named tables hold the catalog (stream
name -> sid, archive watermarks), checkpoints (snapshots), the compressed
archive and the meta row. Writes go through :class:`GroupCommitter`, so
concurrent appenders share one durable transaction.

A write transaction re-reads the counters it needs (next position, a
stream's version) from the transaction itself unless it directly follows
this process's own last commit (``WriteCache``), so a second writer process
on the same directory is safe: LMDB serialises writers across processes and
each sees the other's commits.

This module opens the environment, runs the group commit's write
transactions and serves reads. What each write operation does inside a
transaction is in ``_lmdb_ops``, what one transaction keeps in
``_write_batch``, the check of the file before it is mapped in
``_lmdb_file``, the translation of LMDB's errors in ``_lmdb_errors``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import lmdb

from .._errors import (
    CorruptionError,
    EventStoreError,
    InvalidEventError,
    StoreClosedError,
    StoreIOError,
    StoreReadOnlyError,
)
from .._group_commit import GroupCommitter
from .._records import RecordedEvent, Snapshot, StreamInfo
from .._validate import check_stream, check_version
from .._write_ops import AppendOp, Op
from .._writes import GroupCommitWrites
from . import _codec as codec
from . import _stream_index as stream_index
from ._errors import (
    abort,
    at_positions,
    check_record,
    missing,
    translate,
)
from ._file import check_data_file
from ._layout import LAYOUT, LEGACY_TABLES, upgrade
from ._leases import TABLES as LEASE_TABLES
from ._leases import LeaseOp, LeaseOps, LeaseTable
from ._ops import WriteOps
from ._rows import _ArchiveChunk, _MetaRow, _SnapshotRow, _StreamRow
from ._rwlock import ResizeLock
from ._write_batch import META_KEY, StreamState, WriteBatch, WriteCache
from ._writer_slot import WriterSlot

Durability = Literal["sync", "async"]

_READ_CHUNK = 1024
_TABLES = ("catalog", "checkpoints", "archive", "meta")
"""The named LMDB databases of layout 3 (the log itself is the main database)."""


class LmdbEventStore(GroupCommitWrites, WriteOps, LeaseOps):
    """An append-only, crash-safe event log in one LMDB directory.

    Open with :meth:`open`. Thread-safe. Other processes may open the same
    directory at the same time (read-only or as another writer). One process
    must open a given directory only once at a time (an LMDB rule).
    Leases (``acquire_lease`` ...) say which process runs what; fenced
    appends check them in the write transaction.
    """

    supports_fencing = True

    def __init__(
        self,
        env: Any,
        path: str,
        *,
        durability: Durability,
        readonly: bool,
        keep_snapshots: int,
        clock: Callable[[], float],
        max_batch: int,
        chained: Collection[str] = (),
    ) -> None:
        self._env = env
        self._chained = frozenset(chained)
        self._path = path
        self._durability = durability
        self._readonly = readonly
        self._keep_snapshots = keep_snapshots
        self._clock = clock
        self._rw = ResizeLock()
        self._closed = False  # no new operations accepted
        self._env_closed = False  # the LMDB environment is gone
        self._close_lock = threading.Lock()
        self._log_db = env.open_db(None)  # the main database: see _layout
        self._db: dict[str, Any] = {}  # the named tables, opened by _init_meta
        self._cache = WriteCache()  # only touched by the group-commit leader
        self._committer: GroupCommitter[Op | LeaseOp] = GroupCommitter(
            self._run_batch, max_batch=max_batch
        )
        self._lease_table = LeaseTable({}, path)  # the real one once the tables are open
        self._slot = None if readonly else WriterSlot(path)  # who holds the writer lock

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "sync",
        map_size: int = 1 << 30,
        readonly: bool = False,
        keep_snapshots: int = 3,
        clock: Callable[[], float] = time.time,
        max_batch: int = 2048,
        chained: Collection[str] = (),
    ) -> LmdbEventStore:
        """Open (creating if needed, unless ``readonly``) the store at ``path``.

        ``durability="sync"``: an append returns only once it is on disk
        (fsync). ``"async"``: commits skip the fsync; a process crash loses
        nothing, an OS crash or power loss may lose the latest commits; call
        :meth:`flush` to force them out.
        ``map_size`` is the initial LMDB map; it grows by doubling when full.
        ``chained``: streams whose events this writer hash-chains (each
        event's ``digest``; see ``verify_chain``), e.g. an audit log.
        """
        for name in chained:
            check_stream(name)
        if durability not in ("sync", "async"):
            raise InvalidEventError(f"durability must be 'sync' or 'async', got {durability!r}")
        check_version("keep_snapshots", keep_snapshots, minimum=1)
        check_version("map_size", map_size, minimum=1 << 16)
        spath = os.fspath(path)
        if readonly and not os.path.isdir(spath):
            raise StoreIOError(spath, "open read-only", "no event store directory there")
        if not readonly:
            os.makedirs(spath, exist_ok=True)
        check_data_file(spath)  # never map a truncated or foreign file (SIGBUS)
        try:
            env = lmdb.open(
                spath,
                map_size=map_size,
                max_dbs=len(_TABLES) + len(LEASE_TABLES) + len(LEGACY_TABLES),
                max_readers=1024,
                readonly=readonly,
                sync=durability == "sync",
                metasync=durability == "sync",
                lock=True,
                subdir=True,
            )
            # Free the reader slots of processes that died inside a read (SIGKILL):
            # a stale slot pins old pages, and the file grows instead of reusing them.
            env.reader_check()
        except lmdb.Error as err:
            raise translate(err, spath, "open") from err
        store = cls(
            env,
            spath,
            durability=durability,
            readonly=readonly,
            keep_snapshots=keep_snapshots,
            clock=clock,
            max_batch=max_batch,
            chained=chained,
        )
        try:
            store._init_meta()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Finish in-flight writes, flush, and release the directory. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._committer.wait_idle()
        with self._rw.exclusive():
            if not self._readonly:
                with contextlib.suppress(lmdb.Error):  # best effort at close
                    self._env.sync(True)
            self._env_closed = True
            self._env.close()
        if self._slot is not None:
            self._slot.close()

    def __enter__(self) -> LmdbEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def fence_frozen_writers(self, stall: float, on_kill: Callable[[int, float], None]) -> None:
        """Processes sharing this directory as one system (shared runtimes):
        SIGKILL another process stopped for more than ``stall`` seconds while
        it holds LMDB's writer lock, which would make every writer wait for
        it (``_writer_slot``). ``on_kill(pid, seconds_held)`` after each."""
        if self._slot is not None:
            self._slot.watch(stall, on_kill)

    def flush(self) -> None:
        """Force every commit to disk (only needed with ``durability="async"``)."""
        self._check_open()
        with self._rw.shared():
            try:
                self._env.sync(True)
            except lmdb.Error as err:
                raise translate(err, self._path, "flush") from err

    # ------------------------------------------------------------ writes

    def _submit(self, op: Op) -> Any:
        self._check_open()
        return self._committer.submit(op)

    def _run_batch(self, ops: Sequence[Op | LeaseOp]) -> list[object]:
        while True:
            failed: Any = None  # a write txn to abort once no reader is inside LMDB
            failure: BaseException | None = None
            self._rw.acquire_shared()
            try:
                if self._env_closed:
                    return [StoreClosedError(self._path) for _ in ops]
                try:
                    txn = self._env.begin(write=True)
                except lmdb.MapResizedError:
                    txn = None
                except lmdb.Error as err:
                    raise translate(err, self._path, "begin a write") from err
                if txn is not None:
                    if self._slot is not None:
                        self._slot.hold()
                    txn_id = txn.id()
                    cache = self._cache if self._cache.valid_for(txn_id) else None
                    try:
                        state = WriteBatch(self, txn, self._clock(), cache)
                        outcomes: list[object] = []
                        for op in ops:
                            try:
                                outcomes.append(self._apply(state, op))
                            except EventStoreError as err:
                                # Ops validate before they write: a rejected op left nothing.
                                outcomes.append(err)
                        state.flush()
                        for op, outcome in zip(ops, outcomes, strict=True):
                            hook = op.on_applied if isinstance(op, AppendOp) else None
                            if hook is not None and isinstance(outcome, list):
                                hook(outcome)  # the versions it gets if the commit succeeds
                    except BaseException as err:
                        failed, failure = txn, err
                    else:
                        try:
                            txn.commit()
                        except lmdb.MapFullError as err:  # the failed commit freed the txn
                            self._cache.drop()
                            failure = err
                        except lmdb.Error as err:
                            self._cache.drop()
                            raise translate(err, self._path, "commit") from err
                        else:
                            # A commit that wrote nothing does not use its number up:
                            # another process's next commit gets it. Trust the cache
                            # only if the log's last transaction is this one.
                            if self._env.info()["last_txnid"] == txn_id:
                                self._cache.committed(txn_id, state)
                            else:
                                self._cache.drop()
                            return outcomes
            finally:
                if self._slot is not None:
                    self._slot.free()  # a failed txn is aborted below: it wrote nothing
                self._rw.release_shared()
            if failed is None and isinstance(failure, lmdb.MapFullError):
                self._grow(adopt_only=False)
                continue
            if failed is not None:
                self._cache.drop()
                # py-lmdb >= 2 can deadlock aborting a failed write txn while other
                # threads are inside read txns, so abort under the exclusive lock.
                with self._rw.exclusive():
                    abort(failed)
                if isinstance(failure, lmdb.MapFullError):
                    self._grow(adopt_only=False)
                    continue
                if isinstance(failure, lmdb.Error):
                    raise translate(failure, self._path, "write") from failure
                assert failure is not None
                raise failure
            # The map was grown by another process: adopt its size with no txn open.
            self._grow(adopt_only=True)

    # ------------------------------------------------------------ reads

    def version(self, stream: str) -> int:
        """The stream's current version; 0 for a stream never written."""
        check_stream(stream)
        with self._read_txn(f"stream {stream!r}") as txn:
            row = self._load_stream(txn, stream)
        return row.version if row is not None else 0

    def stream_info(self, stream: str) -> StreamInfo | None:
        """Version and archive watermark of ``stream``, or None if it does not exist."""
        check_stream(stream)
        with self._read_txn(f"stream {stream!r}") as txn:
            row = self._load_stream(txn, stream)
        if row is None:
            return None
        return StreamInfo(stream, row.version, row.archived_upto, row.purged_upto)

    def streams(self) -> list[str]:
        """Every stream name, in byte order of the UTF-8 name."""
        with self._read_txn("the stream catalog") as txn:
            cur = txn.cursor(db=self._db["catalog"])
            return [bytes(k).decode("utf-8") for k in cur.iternext(keys=True, values=False)]

    def head_position(self) -> int:
        """The global position of the last event ever appended (0 if none)."""
        with self._read_txn() as txn:
            return self._load_counters(txn)[0] - 1

    def read(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]:
        """Events of ``stream`` with ``from_version <= version <= to_version``.

        Archived events are skipped unless ``archived=True``. Reads in bounded
        chunks: a long read never holds a snapshot of the database for long.
        """
        check_stream(stream)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version, minimum=0)
        self._check_open()
        return self._iter_stream(stream, from_version, to_version, archived)

    def _iter_stream(
        self, stream: str, next_v: int, to_version: int | None, archived: bool
    ) -> Iterator[RecordedEvent]:
        while True:
            with self._read_txn(f"stream {stream!r} from version {next_v}") as txn:
                row = self._load_stream(txn, stream)
                if row is None:
                    return
                end = row.version if to_version is None else min(to_version, row.version)
                if next_v <= row.archived_upto and not archived:
                    next_v = row.archived_upto + 1
                if next_v <= row.purged_upto:
                    next_v = row.purged_upto + 1  # deleted by retention
                if next_v > end:
                    return
                if next_v <= row.archived_upto:
                    chunk = self._read_archived(txn, stream, row.sid, next_v, end)
                else:
                    chunk = self._read_hot(txn, stream, row, next_v, end)
            if not chunk:  # pragma: no cover - index and stream row disagree
                raise missing(self._path, f"stream {stream!r} version {next_v}")
            yield from chunk
            next_v = chunk[-1].version + 1

    def _positions(
        self, txn: Any, stream: str, row: StreamState, first: int, last: int
    ) -> list[int]:
        """Positions of hot versions ``first..last`` of ``stream``, from its index."""
        found = stream_index.positions(
            txn, self._log_db, row.sid, row.tail_first, row.tail, first, last
        )
        if len(found) != last - first + 1:
            raise missing(self._path, f"stream {stream!r} version {first + len(found)}")
        return found

    def _read_hot(
        self, txn: Any, stream: str, row: StreamState, first: int, last: int
    ) -> list[RecordedEvent]:
        positions = self._positions(txn, stream, row, first, min(last, first + _READ_CHUNK - 1))
        events_cur = txn.cursor(db=self._log_db)
        n = len(positions)
        if positions[-1] - positions[0] == n - 1 and events_cur.set_key(
            codec.event_key(positions[0])
        ):
            # One contiguous run (a single writer, or one big append): scan it.
            values = list(itertools.islice(events_cur.iternext(keys=False, values=True), n))
        else:
            pkeys = [codec.event_key(p) for p in positions]
            values = [v for _, v in events_cur.getmulti(pkeys)]
        if len(values) != n:
            raise missing(self._path, f"stream {stream!r} version {first + len(values)}")
        events = codec.decode_events(
            values,
            lambda i: f"stream {stream!r} version {first + i} (position {positions[i]})",
            self._path,
        )
        # The index and the records must agree: same stream, gapless versions.
        if (
            [e.version for e in events] != list(range(first, first + n))
            or [e.position for e in events] != positions
            or any(e.stream != stream for e in events)
        ):
            for i, ev in enumerate(events):
                where = f"stream {stream!r} version {first + i}"
                check_record(ev, stream, first + i, positions[i], where, self._path)
        return events

    def _read_archived(
        self, txn: Any, stream: str, sid: int, first: int, last: int
    ) -> list[RecordedEvent]:
        cur = txn.cursor(db=self._db["archive"])
        # The chunk holding `first` is the last chunk whose first version <= first.
        found = cur.prev() if cur.set_range(codec.pair(sid, first + 1)) else cur.last()
        if not found:
            return []
        ksid, chunk_first = codec.from_pair(cur.key())
        where = f"stream {stream!r} archive chunk from version {chunk_first}"
        if ksid != sid:
            return []
        chunk = codec.decode_compressed(
            cur.value(), _ArchiveChunk, what="archive chunk", where=where, path=self._path
        )
        return [r for r in chunk.rows if first <= r.version <= last]

    def read_all(self, from_position: int = 0) -> Iterator[RecordedEvent]:
        """Every hot (not archived) event with position >= ``from_position``,
        in global commit order."""
        check_version("from_position", from_position, minimum=0)
        self._check_open()
        return self._iter_all(max(1, from_position))

    def _iter_all(self, pos: int) -> Iterator[RecordedEvent]:
        while True:
            with self._read_txn(f"the log from position {pos}") as txn:
                cur = txn.cursor(db=self._log_db)
                if not cur.set_range(codec.event_key(pos)):
                    return
                keys: list[bytes] = []
                values: list[bytes] = []
                for key, raw in cur:
                    keys.append(key)
                    values.append(raw)
                    if len(keys) >= _READ_CHUNK:
                        break
            positions = codec.unpack_positions(keys)
            events = codec.decode_events(values, at_positions(positions), self._path)
            if [e.position for e in events] != positions:
                for ev, p in zip(events, positions, strict=True):
                    if ev.position != p:
                        raise CorruptionError(
                            "event",
                            f"position {p}",
                            self._path,
                            f"the record claims position {ev.position}",
                        )
            yield from events
            pos = positions[-1] + 1

    def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of ``stream``, or None."""
        check_stream(stream)
        with self._read_txn(f"the snapshots of stream {stream!r}") as txn:
            row = self._load_stream(txn, stream)
            if row is None:
                return None
            keys = list(self._keys_with_sid(txn, self._db["checkpoints"], row.sid))
            if not keys:
                return None
            raw = txn.get(keys[-1], db=self._db["checkpoints"])
            _, version = codec.from_pair(keys[-1])
            snap = codec.decode(
                raw,
                _SnapshotRow,
                what="snapshot",
                where=f"stream {stream!r} version {version}",
                path=self._path,
            )
        return Snapshot(stream, snap.version, snap.data, snap.ts)

    # ------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(self._path)

    def _check_writable(self, operation: str) -> None:
        self._check_open()
        if self._readonly:
            raise StoreReadOnlyError(self._path, operation)

    @contextmanager
    def _read_txn(self, where: str = "") -> Iterator[Any]:
        """A read transaction; an LMDB failure inside it is translated, a
        damaged page into :class:`CorruptionError` naming ``where``."""
        self._check_open()
        while True:
            with self._rw.shared():
                if self._env_closed:
                    raise StoreClosedError(self._path)
                try:
                    txn = self._env.begin(buffers=False)
                except lmdb.MapResizedError:
                    txn = None
                except lmdb.Error as err:
                    raise translate(err, self._path, "begin a read") from err
                if txn is not None:
                    try:
                        yield txn
                    except lmdb.Error as err:
                        raise translate(err, self._path, "read", where) from err
                    finally:
                        txn.abort()
                    return
            self._grow(adopt_only=True)

    def _grow(self, *, adopt_only: bool) -> None:
        with self._rw.exclusive():
            if self._env_closed:
                raise StoreClosedError(self._path)
            try:
                if adopt_only:
                    self._env.set_mapsize(0)  # adopt the size another process set
                else:
                    self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except lmdb.Error as err:
                raise translate(err, self._path, "grow the map") from err

    def _init_meta(self) -> None:
        """Open the tables; create the meta row of a new store, or check (and
        if need be upgrade) the key layout of an existing one."""
        if self._readonly:
            try:
                self._db["meta"] = self._env.open_db(b"meta", create=False)
            except lmdb.NotFoundError:
                raise StoreIOError(self._path, "open read-only", "no event store there") from None
            except lmdb.Error as err:
                raise translate(err, self._path, "open its tables", "the table directory") from err
            with self._read_txn() as txn:
                meta = self._load_meta(txn)
            if meta is None:
                raise StoreIOError(self._path, "open read-only", "no event store there")
            self._check_layout(meta.layout)
            self._open_tables(None)
            return
        with self._rw.shared():
            txn = self._env.begin(write=True)
            try:
                self._db["meta"] = self._env.open_db(b"meta", txn=txn)
                meta = self._load_meta(txn)
                if meta is not None:
                    self._check_layout(meta.layout)
                self._open_tables(txn)
                if meta is None:
                    meta = _MetaRow(1, 1, LAYOUT)
                elif meta.layout < LAYOUT:
                    upgrade(
                        txn,
                        self._env,
                        meta.layout,
                        log_db=self._log_db,
                        tables=self._db,
                        path=self._path,
                    )
                    meta = _MetaRow(*self._load_counters(txn), LAYOUT)
                else:
                    meta = None  # current: nothing to write, and LMDB writes nothing
                if meta is not None:
                    txn.put(META_KEY, codec.encode(meta), db=self._db["meta"])
                txn.commit()  # also keeps the table handles opened in it
            except BaseException as err:
                abort(txn)
                if isinstance(err, lmdb.Error):
                    raise translate(err, self._path, "initialise") from err
                raise

    def _check_layout(self, layout: int) -> None:
        if layout > LAYOUT or (layout < LAYOUT and self._readonly):
            raise StoreIOError(
                self._path,
                "open",
                f"the store has key layout {layout}, this eventstore reads layout {LAYOUT}"
                + (" (open it once writable to upgrade it)" if layout < LAYOUT else ""),
            )

    def _open_tables(self, txn: Any) -> None:
        """Open the named tables, creating them in ``txn`` if one is given."""
        for name in _TABLES:
            if name in self._db:
                continue
            try:
                self._db[name] = self._env.open_db(name.encode(), txn=txn, create=txn is not None)
            except lmdb.NotFoundError:
                raise CorruptionError(
                    "table", repr(name), self._path, "missing from a layout-3 store"
                ) from None
            except lmdb.Error as err:
                raise translate(err, self._path, "open its tables", f"table {name!r}") from err
        for name in LEASE_TABLES:  # added to layout 3 later: absent until first written
            if name in self._db:
                continue
            try:
                self._db[name] = self._env.open_db(name.encode(), txn=txn, create=txn is not None)
            except lmdb.NotFoundError:
                continue  # read-only, and no lease was ever taken here
            except lmdb.Error as err:
                raise translate(err, self._path, "open its tables", f"table {name!r}") from err
        self._lease_table = LeaseTable(self._db, self._path)

    def _load_meta(self, txn: Any) -> _MetaRow | None:
        raw = txn.get(META_KEY, db=self._db["meta"])
        if raw is None:
            return None
        return codec.decode(raw, _MetaRow, what="meta record", where="meta", path=self._path)

    def _load_counters(self, txn: Any) -> tuple[int, int]:
        """(next position, next stream id) as of ``txn``."""
        meta = self._load_meta(txn) or _MetaRow(1, 1, LAYOUT)
        cur = txn.cursor(db=self._log_db)
        last = 0
        if cur.last() and cur.key()[:1] == codec.EVENT:
            last = codec.from_event_key(cur.key())
        return max(meta.next_position, last + 1), meta.next_sid

    def _load_stream(self, txn: Any, name: str) -> StreamState | None:
        raw = txn.get(name.encode("utf-8"), db=self._db["catalog"])
        if raw is None:
            return None
        where = f"stream {name!r}"
        row = codec.decode(raw, _StreamRow, what="stream record", where=where, path=self._path)
        # The version is the last one in the stream's tail row.
        raw_tail = txn.get(stream_index.tail_key(row.sid), db=self._log_db)
        tail_first, tail = stream_index.decode_tail(raw_tail, where, self._path)
        version = tail_first - 1 + (len(tail) >> 3)
        return StreamState(row.sid, version, row.archived_upto, row.purged_upto, tail_first, tail)

    @staticmethod
    def _keys_with_sid(txn: Any, db: Any, sid: int) -> Iterator[bytes]:
        cur = txn.cursor(db=db)
        if not cur.set_range(codec.pair(sid, 0)):
            return
        for key in cur.iternext(keys=True, values=False):
            if codec.from_pair(key)[0] != sid:
                return
            yield bytes(key)
