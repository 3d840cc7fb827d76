"""The store protocol: what every backend implements, written down once.

:mod:`actors` and :mod:`aura` use a store only through :class:`EventLog`.
LMDB, PostgreSQL and the in-memory reference implement it with the same
semantics and the same typed errors; ``tests/eventstore/conformance.py`` is
the executable form of this page, which a third-party backend can run.

Streams and versions
    A stream is named by a non-empty ASCII string (at most 256 bytes). Its
    events have versions 1, 2, ... with no gaps; a stream never written is
    at version 0 and reads as empty. Every event also gets a global
    ``position`` (1, 2, ...), increasing in commit order across all
    streams, so ``read_all(from_position=N)`` is a complete catch-up feed
    for a follower: a later read never finds an event below a position it
    has already passed.
Appends
    ``append`` and ``append_many`` are atomic (all events of the call, or
    none) and durable when they return. ``expected_version=N`` makes one
    triple conditional on its stream being at version N (0: new), else
    :class:`ConcurrencyError` and nothing of the call is written. Events of
    one commit share the timestamp ``ts`` the store's clock gave. Calls
    from many threads share commits (group commit); one rejected call does
    not affect the others. ``on_applied(versions)`` runs on the committing
    thread before the commit, with the versions the call returns if it
    commits; if it raises, nothing of the call is written.
Chains
    Streams named in ``chained=`` at open get a sha256 ``digest`` per
    event, linked to the one before, computed inside the commit (see
    ``_chain``). The chain continues across archive and reopen.
Snapshots
    ``save_snapshot(stream, version, data)`` keeps the newest
    ``keep_snapshots`` per stream; a version past the stream's end raises
    :class:`SnapshotError`. ``load_snapshot`` returns the newest or None.
Archive and retention
    ``archive(stream, n)`` moves versions ``..n`` out of the hot log: they
    leave ``read_all`` and default ``read`` and stay readable with
    ``read(..., archived=True)``. ``purge_archive(stream, n)`` deletes
    archived versions ``..n`` for good (never hot ones, never the last).
    ``stream_info`` reports ``version``, ``archived_upto``, ``purged_upto``.
Leases (backends with ``acquire_lease``: PostgreSQL and memory now)
    ``acquire_lease(resource, owner, ttl)`` takes a free or expired lease
    (another owner's expired one at its epoch + 1) or renews one's own;
    ``renew_leases(owner, ttl)`` extends all of an owner's in one go;
    ``release_lease`` frees one at once for anyone to claim, or
    (``done=True``) marks it as needed by nobody (a finished mission).
    ``claim_leases(prefix, owner, ttl, limit)`` takes up to ``limit``
    expired leases under ``prefix`` (a dead runtime's missions), each at its
    epoch + 1; two claimers never take the same one. ``leases(prefix)``
    lists the rows under ``prefix``. A write with ``fence=lease`` (or a
    sequence of leases) commits only if each is still its owner's at that
    epoch, checked inside the commit; else :class:`LeaseLostError` and
    nothing of the call is written. Expiry is on the store's clock
    (PostgreSQL: the server's).
Errors
    Malformed arguments raise :class:`InvalidEventError` before anything is
    written; undecodable records :class:`CorruptionError` naming where; a
    closed store :class:`StoreClosedError`; a read-only one
    :class:`StoreReadOnlyError`; a full disk :class:`StoreFullError`; a
    server that cannot be reached :class:`StoreUnavailableError`; anything
    else from the engine :class:`StoreIOError`. A failed write left nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, Self

from ._records import Lease, NewEvent, RecordedEvent, Snapshot, StreamInfo


class EventLog(Protocol):
    """What :mod:`actors` and :mod:`aura` need from a store (see the module)."""

    @property
    def path(self) -> str:
        """Where the store is, for messages (a directory, or host/database)."""
        ...

    @property
    def closed(self) -> bool: ...

    def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> int: ...

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
    ) -> list[int]: ...

    def read(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]: ...

    def read_all(self, from_position: int = 0) -> Iterator[RecordedEvent]: ...

    def version(self, stream: str) -> int: ...

    def stream_info(self, stream: str) -> StreamInfo | None: ...

    def streams(self) -> list[str]: ...

    def head_position(self) -> int: ...

    def save_snapshot(self, stream: str, version: int, data: bytes) -> None: ...

    def load_snapshot(self, stream: str) -> Snapshot | None: ...

    def archive(self, stream: str, up_to_version: int) -> int: ...

    def purge_archive(self, stream: str, up_to_version: int) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class LeasedLog(EventLog, Protocol):
    """A store with leases and fenced writes (see the module docstring)."""

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> int: ...

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> list[int]: ...

    def acquire_lease(self, resource: str, owner: str, ttl: float) -> Lease | None: ...

    def renew_leases(self, owner: str, ttl: float) -> list[Lease]: ...

    def release_lease(self, resource: str, owner: str, *, done: bool = False) -> bool: ...

    def claim_leases(self, prefix: str, owner: str, ttl: float, limit: int) -> list[Lease]: ...

    def leases(self, prefix: str) -> list[Lease]: ...

    def lease(self, resource: str) -> Lease | None: ...

    def lease_clock(self) -> float: ...
