"""The write operations a backend's group commit batches, shared by every
backend: appends (with their ``on_applied`` hook), snapshots, archive and
purge requests, each already validated by the public method that made it."""

from __future__ import annotations

from collections.abc import Callable

from ._records import Lease, NewEvent


class AppendOp:
    """One or more stream appends committed atomically (all or none);
    ``fences``: the leases the writer must still hold when it commits."""

    __slots__ = ("fences", "items", "on_applied")

    def __init__(
        self,
        items: list[tuple[str, list[NewEvent], int | None]],
        on_applied: Callable[[list[int]], None] | None = None,
        fences: tuple[Lease, ...] = (),
    ) -> None:
        self.items = items
        self.on_applied = on_applied  # see EventLog.append_many
        self.fences = fences


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


class PurgeOp:
    __slots__ = ("stream", "up_to")

    def __init__(self, stream: str, up_to: int) -> None:
        self.stream = stream
        self.up_to = up_to


Op = AppendOp | SnapshotOp | ArchiveOp | PurgeOp
