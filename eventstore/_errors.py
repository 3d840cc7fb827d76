"""Typed errors of the event store, all under one root.

Each error has one meaning. Messages say what went wrong, where (path,
stream, version or position) and, where there is one, how to fix it.
Errors from the lmdb driver are translated at this boundary with
``raise ... from err`` so the driver's own hint stays in the chain.
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Root of every error raised by :mod:`eventstore`."""


class ConcurrencyError(EventStoreError):
    """``expected_version`` did not match the stream's current version.

    Nothing of the rejected append was written.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r}: expected version {expected}, but it is at version {actual}; "
            "nothing was written (re-read the stream and retry)"
        )


class CorruptionError(EventStoreError):
    """A stored record could not be decoded. Nothing on disk was changed."""

    def __init__(self, what: str, where: str, path: str, reason: str) -> None:
        self.what = what
        self.where = where
        self.path = path
        self.reason = reason
        super().__init__(
            f"undecodable {what} at {where} in {path}: {reason}; the store was left untouched "
            "(restore the directory from a backup or inspect it with `aura history --json`)"
        )


class StoreClosedError(EventStoreError):
    """The store was used after :meth:`close`."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"event store at {path} is closed")


class StoreReadOnlyError(EventStoreError):
    """A write was attempted on a store opened with ``readonly=True``."""

    def __init__(self, path: str, operation: str) -> None:
        self.path = path
        super().__init__(
            f"cannot {operation}: event store at {path} was opened read-only "
            "(open it without readonly=True to write)"
        )


class StoreFullError(EventStoreError):
    """The disk (or a file size limit) is full. The failed write left no trace."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"no space to write the event store at {path}: {detail}; the failed write was "
            "rolled back and everything acknowledged before it is intact (free disk space, "
            "then retry)"
        )


class StoreIOError(EventStoreError):
    """Any other failure of the storage engine. The failed write left no trace."""

    def __init__(self, path: str, operation: str, detail: str) -> None:
        self.path = path
        self.operation = operation
        super().__init__(f"event store at {path} failed to {operation}: {detail}")


class InvalidEventError(EventStoreError, ValueError):
    """An argument was malformed (bad stream name, non-bytes data, ...).

    Raised before anything is written.
    """


class SnapshotError(EventStoreError, ValueError):
    """A snapshot does not fit its stream (e.g. its version is past the stream's end)."""


class ArchiveError(EventStoreError, ValueError):
    """An archive request does not fit its stream."""


class StoreUnavailableError(EventStoreError):
    """The store's server cannot be reached (down, restarting, refusing us, the
    connection broke). Raised to the caller; retrying later is the remedy.

    ``committed`` is False when nothing of the failed call was recorded, None
    when the connection broke during the commit and its outcome could not be
    checked (re-read before retrying a write that has no expected version).
    """

    def __init__(self, where: str, operation: str, detail: str, committed: bool | None = False):
        self.where = where
        self.operation = operation
        self.committed = committed
        outcome = (
            "nothing of it was recorded"
            if committed is False
            else "whether it was recorded is unknown (re-read before retrying)"
        )
        super().__init__(
            f"event store at {where} is unavailable to {operation}: {detail}; {outcome}"
        )


class LeaseLostError(EventStoreError):
    """A fenced write's lease is no longer its writer's: another owner took
    the resource (a higher epoch). Nothing of the write was recorded; the
    writer must stop acting for that resource."""

    def __init__(
        self, resource: str, owner: str, epoch: int, holder: str | None, held_epoch: int
    ) -> None:
        self.resource = resource
        self.owner = owner
        self.epoch = epoch
        self.holder = holder
        self.held_epoch = held_epoch
        now = f"{holder!r} holds epoch {held_epoch}" if holder else "nobody holds it"
        super().__init__(
            f"lease on {resource!r} lost: {owner!r} wrote with epoch {epoch}, but {now}; "
            "nothing was written (stop acting for it: its new owner carries on)"
        )
