"""An in-memory reference store with the same contract as :class:`EventStore`.

It exists to pin the contract: the conformance suite runs against both, so
a behaviour of the LMDB store that the reference does not share is a bug in
one of them. It is also the fast store behind ``aura.testing``. Nothing is
durable: ``close()`` keeps the data so a "reopen" (``reopen()``) sees it,
which is how tests model a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence

import msgspec

from .._chain import GENESIS, chain_digest
from .._errors import (
    ArchiveError,
    ConcurrencyError,
    SnapshotError,
    StoreClosedError,
)
from .._records import Lease, NewEvent, RecordedEvent, Snapshot, StreamInfo
from .._validate import (
    check_batch,
    check_data,
    check_fence,
    check_held,
    check_item,
    check_lease_args,
    check_limit,
    check_prefix,
    check_stream,
    check_version,
)


class _Stream:
    __slots__ = ("archived", "archived_upto", "hot", "purged_upto", "snapshots")

    def __init__(self) -> None:
        self.hot: list[RecordedEvent] = []
        self.archived: list[RecordedEvent] = []  # purged ones removed
        self.archived_upto = 0
        self.purged_upto = 0
        self.snapshots: list[Snapshot] = []

    @property
    def version(self) -> int:
        return self.archived_upto + len(self.hot)


class MemoryEventStore:
    """Reference implementation of the event-store contract, in memory."""

    def __init__(
        self,
        *,
        keep_snapshots: int = 3,
        clock: Callable[[], float] = time.time,
        chained: Collection[str] = (),
    ) -> None:
        check_version("keep_snapshots", keep_snapshots, minimum=1)
        self._chained = frozenset(check_stream(name) for name in chained)
        self._lock = threading.RLock()
        self._streams: dict[str, _Stream] = {}
        self._log: dict[int, RecordedEvent] = {}
        self._leases: dict[str, Lease] = {}
        self._next_position = 1
        self._keep = keep_snapshots
        self._clock = clock
        self._closed = False
        self.path = ":memory:"

    @classmethod
    def open(
        cls,
        *,
        keep_snapshots: int = 3,
        clock: Callable[[], float] = time.time,
        chained: Collection[str] = (),
    ) -> MemoryEventStore:
        return cls(keep_snapshots=keep_snapshots, clock=clock, chained=chained)

    def reopen(self) -> MemoryEventStore:
        """A new open handle over the same data (models close + open)."""
        with self._lock:
            other = MemoryEventStore(
                keep_snapshots=self._keep, clock=self._clock, chained=self._chained
            )
            other._streams = self._streams
            other._log = self._log
            other._leases = self._leases
            other._next_position = self._next_position
            other._lock = self._lock
            return other

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> MemoryEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(self.path)

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> int:
        stream, evs, expected_version = check_item(stream, events, expected_version)
        fences = check_fence(fence)
        with self._lock:
            self._check_open()
            self._check_fences(fences)
            st = self._streams.get(stream)
            current = st.version if st is not None else 0
            if expected_version is not None and expected_version != current:
                raise ConcurrencyError(stream, expected_version, current)
            if not evs:
                return current
            if st is None:
                st = self._streams[stream] = _Stream()
            ts = self._clock()
            chained = stream in self._chained
            for ev in evs:
                version, position = st.version + 1, self._next_position
                rec = RecordedEvent(stream, version, position, ev.kind, ev.data, ts)
                if chained:
                    last = st.hot[-1] if st.hot else (st.archived[-1] if st.archived else None)
                    previous = last.digest if last is not None else GENESIS
                    rec = msgspec.structs.replace(rec, digest=chain_digest(previous, rec))
                st.hot.append(rec)
                self._log[rec.position] = rec
                self._next_position += 1
            return st.version

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> list[int]:
        items = check_batch(batch, on_applied)
        fences = check_fence(fence)
        with self._lock:
            self._check_open()
            self._check_fences(fences)
            planned: dict[str, int] = {}
            versions: list[int] = []
            for stream, evs, expected in items:
                current = planned.get(stream, self._version(stream))
                if expected is not None and expected != current:
                    raise ConcurrencyError(stream, expected, current)
                planned[stream] = current + len(evs)
                versions.append(planned[stream])
            if on_applied is not None:
                on_applied(versions)  # if it raises, nothing was written
            for stream, evs, _ in items:
                self.append(stream, evs)
            return versions

    def _version(self, stream: str) -> int:
        st = self._streams.get(stream)
        return st.version if st is not None else 0

    def version(self, stream: str) -> int:
        check_stream(stream)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            return st.version if st is not None else 0

    def stream_info(self, stream: str) -> StreamInfo | None:
        check_stream(stream)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            if st is None:
                return None
            return StreamInfo(stream, st.version, st.archived_upto, st.purged_upto)

    def streams(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted(self._streams, key=lambda s: s.encode("utf-8"))

    def head_position(self) -> int:
        with self._lock:
            self._check_open()
            return self._next_position - 1

    def read(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]:
        check_stream(stream)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version, minimum=0)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            if st is None:
                return iter(())
            events = (st.archived if archived else []) + st.hot
            end = st.version if to_version is None else to_version
            return iter([e for e in events if from_version <= e.version <= end])

    def read_all(self, from_position: int = 0) -> Iterator[RecordedEvent]:
        check_version("from_position", from_position, minimum=0)
        with self._lock:
            self._check_open()
            return iter([self._log[p] for p in sorted(self._log) if p >= from_position])

    def save_snapshot(self, stream: str, version: int, data: bytes) -> None:
        check_stream(stream)
        check_version("version", version, minimum=1)
        check_data("snapshot data", data)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            current = st.version if st is not None else 0
            if st is None or version > current:
                raise SnapshotError(
                    f"stream {stream!r}: cannot snapshot version {version}, "
                    f"the stream is at version {current}"
                )
            snaps = [s for s in st.snapshots if s.version != version]
            snaps.append(Snapshot(stream, version, data, self._clock()))
            snaps.sort(key=lambda s: s.version)
            st.snapshots = snaps[-self._keep :]

    def load_snapshot(self, stream: str) -> Snapshot | None:
        check_stream(stream)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            return st.snapshots[-1] if st is not None and st.snapshots else None

    def purge_archive(self, stream: str, up_to_version: int) -> int:
        check_stream(stream)
        check_version("up_to_version", up_to_version, minimum=1)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            if st is None or up_to_version > st.archived_upto or up_to_version >= st.version:
                raise ArchiveError(
                    f"stream {stream!r}: cannot purge up to version {up_to_version}: only "
                    f"archived events ({st.archived_upto if st else 0}) and never the last "
                    f"({st.version if st else 0})"
                )
            if up_to_version > st.purged_upto:
                st.archived = [e for e in st.archived if e.version > up_to_version]
                st.purged_upto = up_to_version
            return st.purged_upto

    def archive(self, stream: str, up_to_version: int) -> int:
        check_stream(stream)
        check_version("up_to_version", up_to_version, minimum=1)
        with self._lock:
            self._check_open()
            st = self._streams.get(stream)
            current = st.version if st is not None else 0
            if st is None or up_to_version > current:
                raise ArchiveError(
                    f"stream {stream!r}: cannot archive up to version {up_to_version}, "
                    f"the stream is at version {current}"
                )
            if up_to_version <= st.archived_upto:
                return st.archived_upto
            n = up_to_version - st.archived_upto
            moved, st.hot = st.hot[:n], st.hot[n:]
            st.archived.extend(moved)
            for rec in moved:
                del self._log[rec.position]
            st.archived_upto = up_to_version
            return up_to_version

    # ------------------------------------------------------------ leases

    def _check_fences(self, fences: tuple[Lease, ...]) -> None:
        for fence in fences:
            check_held(fence, self._leases.get(fence.resource), self._clock())

    def acquire_lease(self, resource: str, owner: str, ttl: float) -> Lease | None:
        resource, owner, ttl = check_lease_args(resource, owner, ttl)
        with self._lock:
            self._check_open()
            now = self._clock()
            held = self._leases.get(resource)
            if held is not None and held.owner != owner and held.expires > now:
                return None
            epoch = 1 if held is None else held.epoch + (held.owner != owner)
            lease = Lease(resource, owner, epoch, now + ttl)
            self._leases[resource] = lease
            return lease

    def renew_leases(self, owner: str, ttl: float) -> list[Lease]:
        _, owner, ttl = check_lease_args("-", owner, ttl)
        with self._lock:
            self._check_open()
            until = self._clock() + ttl
            renewed = []
            for name, held in sorted(self._leases.items()):
                if held.owner == owner:
                    self._leases[name] = msgspec.structs.replace(held, expires=until)
                    renewed.append(self._leases[name])
            return renewed

    def release_lease(self, resource: str, owner: str, *, done: bool = False) -> bool:
        resource, owner, _ = check_lease_args(resource, owner, 1.0)
        with self._lock:
            self._check_open()
            held = self._leases.get(resource)
            if held is None or held.owner != owner:
                return False
            self._leases[resource] = msgspec.structs.replace(
                held, expires=0.0, owner="" if done else owner
            )
            return True

    def claim_leases(self, prefix: str, owner: str, ttl: float, limit: int) -> list[Lease]:
        prefix = check_prefix(prefix)
        _, owner, ttl = check_lease_args("-", owner, ttl)
        limit = check_limit(limit)
        with self._lock:
            self._check_open()
            now = self._clock()
            expired = sorted(
                (held.expires, name)
                for name, held in self._leases.items()
                if name.startswith(prefix) and held.owner and held.expires <= now
            )
            claimed = []
            for _, name in expired[:limit]:
                lease = Lease(name, owner, self._leases[name].epoch + 1, now + ttl)
                self._leases[name] = lease
                claimed.append(lease)
            return sorted(claimed, key=lambda x: x.resource)

    def leases(self, prefix: str) -> list[Lease]:
        prefix = check_prefix(prefix)
        with self._lock:
            self._check_open()
            return [held for name, held in sorted(self._leases.items()) if name.startswith(prefix)]

    def lease(self, resource: str) -> Lease | None:
        check_stream(resource)
        with self._lock:
            self._check_open()
            return self._leases.get(resource)

    def lease_clock(self) -> float:
        """Now, on the clock lease expiry is measured by."""
        return self._clock()
