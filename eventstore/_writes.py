"""The public write methods of a group-committing backend (LMDB, PostgreSQL),
written once: each checks its arguments before anything is queued, then
submits one operation to the backend's group commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._errors import InvalidEventError
from ._records import Lease, NewEvent
from ._validate import check_batch, check_data, check_fence, check_item, check_stream, check_version
from ._write_ops import AppendOp, ArchiveOp, PurgeOp, SnapshotOp


class GroupCommitWrites:
    """Mixin: ``append``, ``append_many``, ``save_snapshot``, ``archive``,
    ``purge_archive``. The backend provides ``_check_writable(operation)``,
    ``_submit(op)`` (queue, wait for the commit, return the outcome) and
    ``supports_fencing``."""

    supports_fencing = False

    def _check_writable(self, operation: str) -> None:  # pragma: no cover - the backend's
        raise NotImplementedError

    def _submit(self, op: Any) -> Any:  # pragma: no cover - the backend's
        raise NotImplementedError

    def _fence(self, fence: object) -> tuple[Lease, ...]:
        leases = check_fence(fence)
        if leases and not self.supports_fencing:
            raise InvalidEventError(
                f"{type(self).__name__} has no leases: a fenced write needs a store that "
                "has them (PostgreSQL)"
            )
        return leases

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> int:
        """Append ``events`` to ``stream`` atomically; return the new version.

        ``expected_version=N`` makes the append conditional on the stream being
        at version N (0: the stream must be new), else :class:`ConcurrencyError`
        and nothing is written. An empty ``events`` writes nothing and returns
        the current version (after the same check). ``fence``: commit only
        while that lease (or each of several) is still its owner's
        (:class:`LeaseLostError`).
        Returns once durable.
        """
        item = check_item(stream, events, expected_version)
        leases = self._fence(fence)
        self._check_writable("append")
        versions: list[int] = self._submit(AppendOp([item], fences=leases))
        return versions[0]

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
        fence: Lease | Sequence[Lease] | None = None,
    ) -> list[int]:
        """Append to several streams in one atomic, durable commit.

        ``batch`` holds ``(stream, events, expected_version)`` triples, applied
        in order (a stream may appear more than once). If any expected version
        does not match, :class:`ConcurrencyError` is raised and nothing of the
        batch is written. Returns each triple's resulting stream version.

        ``on_applied(versions)``, if given, is called on the committing thread
        once the batch is written into the transaction and before that
        transaction commits, with the versions this call returns if the commit
        succeeds (it may still fail). It is called again if the transaction is
        retried; it must be quick and must not touch the store.
        """
        items = check_batch(batch, on_applied)
        leases = self._fence(fence)
        self._check_writable("append")
        if not items:
            return []
        result: list[int] = self._submit(AppendOp(items, on_applied, leases))
        return result

    def save_snapshot(self, stream: str, version: int, data: bytes) -> None:
        """Store ``data`` as the state of ``stream`` as of ``version``; keeps
        the newest ``keep_snapshots`` snapshots of the stream."""
        check_stream(stream)
        check_version("version", version, minimum=1)
        check_data("snapshot data", data)
        self._check_writable("save a snapshot")
        self._submit(SnapshotOp(stream, version, data))

    def archive(self, stream: str, up_to_version: int) -> int:
        """Move events ``..up_to_version`` of ``stream`` to the archive.

        They stay readable with ``read(..., archived=True)``; nothing is
        deleted. Returns the stream's new ``archived_upto``. Archiving what is
        already archived is a no-op.
        """
        check_stream(stream)
        check_version("up_to_version", up_to_version, minimum=1)
        self._check_writable("archive")
        archived_upto: int = self._submit(ArchiveOp(stream, up_to_version))
        return archived_upto

    def purge_archive(self, stream: str, up_to_version: int) -> int:
        """Delete archived events ``..up_to_version`` for good (a retention
        policy). Only archived events, never the stream's last; versions do
        not change and ``read(..., archived=True)`` starts after them.
        Returns the stream's new ``purged_upto``."""
        check_stream(stream)
        check_version("up_to_version", up_to_version, minimum=1)
        self._check_writable("purge")
        purged: int = self._submit(PurgeOp(stream, up_to_version))
        return purged
