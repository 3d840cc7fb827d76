"""Compaction: keep hot history bounded, archive what no replay needs.

What is archived (moved into the eventstore's compressed archive, still
readable with ``read(..., archived=True)`` and verified by the audit chain):

- a mission's runs before its latest continue-as-new: its snapshot (the
  ``NewRun``) carries what they left, recovery starts from it;
- a finished (completed, failed, cancelled) or dead mission's history once
  it has been finished for ``completed_after`` seconds, except its last
  event (the verdict read without replaying);
- the audit chain except its newest ``keep_audit`` entries.

Retention (``retention`` seconds; ``None``, the default, keeps archives
forever) then deletes archived mission history for good: a finished
mission's once it finished that long ago, a long mission's archived runs
once its current run began that long ago. The audit chain is never
purged (its entries of purged events stay, and still verify).

Archiving is one atomic eventstore operation per stream, and only up to a
version the snapshot covers: a crash before, during or after it loses
nothing and duplicates nothing. The ``Compactor`` actor does this on the
runtime's tree (after each continue-as-new, and periodically);
``rt.compact()`` and ``aura compact`` do it at once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import msgspec

from actors import Actor
from eventstore import EventStoreError

from ..core._lifecycle import SETTLED_VALUES
from ..core._messages import STREAM_PREFIX, TRANSITION, Transition
from ..governance._audit import AUDIT_STREAM


@dataclass(frozen=True)
class CompactionReport:
    streams: int
    """Streams that had something archived."""
    events: int
    """Events moved from the hot log to the archive."""
    purged: int = 0
    """Archived events deleted by the retention policy."""


def archive_run(store: Any, stream: str, up_to: int) -> int:
    """Archive ``stream`` up to ``up_to`` if its snapshot covers that; returns
    how many events moved."""
    info = store.stream_info(stream)
    snap = store.load_snapshot(stream)
    if info is None or snap is None or snap.version <= up_to or up_to <= info.archived_upto:
        return 0
    store.archive(stream, up_to)
    moved: int = up_to - info.archived_upto
    return moved


def compact(
    store: Any,
    *,
    now: float,
    completed_after: float | None,
    keep_audit: int = 10_000,
    progress: Any = None,
    retention: float | None = None,
) -> CompactionReport:
    streams = events = purged = 0
    for stream in store.streams():
        if progress is not None:
            progress.advance()
        info = store.stream_info(stream)
        if info is None:
            continue
        up_to = 0
        if stream.startswith(STREAM_PREFIX):
            snap = store.load_snapshot(stream)
            if snap is not None:
                up_to = snap.version - 1
            if completed_after is not None and info.version > info.archived_upto:
                last = next(iter(store.read(stream, info.version, info.version)), None)
                if last is not None and last.kind == TRANSITION:
                    status = msgspec.msgpack.decode(last.data, type=Transition).status
                    if status in SETTLED_VALUES and now - last.ts >= completed_after:
                        up_to = max(up_to, info.version - 1)
        elif stream == AUDIT_STREAM:
            up_to = info.version - keep_audit
        if up_to > info.archived_upto:
            store.archive(stream, up_to)
            streams += 1
            events += up_to - info.archived_upto
            info = store.stream_info(stream)
        if retention is not None and stream.startswith(STREAM_PREFIX) and info is not None:
            purged += _apply_retention(store, stream, info, now - retention)
    return CompactionReport(streams, events, purged)


def _apply_retention(store: Any, stream: str, info: Any, before: float) -> int:
    """Purge what retention allows of one mission's archive; returns how many."""
    if info.archived_upto <= info.purged_upto:
        return 0
    last = next(iter(store.read(stream, info.version, info.version, archived=True)), None)
    snap = store.load_snapshot(stream)
    up_to = 0
    if last is not None and last.kind == TRANSITION and last.ts < before:
        status = msgspec.msgpack.decode(last.data, type=Transition).status
        if status in SETTLED_VALUES:
            up_to = min(info.archived_upto, info.version - 1)
    if not up_to and snap is not None and snap.ts < before:
        up_to = min(info.archived_upto, snap.version - 1)
    if up_to <= info.purged_upto:
        return 0
    store.purge_archive(stream, up_to)
    gone: int = up_to - info.purged_upto
    return gone


class ArchiveRun(msgspec.Struct, frozen=True):
    stream: str
    up_to: int


class Sweep(msgspec.Struct, frozen=True):
    pass


class Compactor(Actor):
    """Archives finished runs as missions continue-as-new, and sweeps
    periodically for finished missions and old audit entries."""

    def __init__(
        self,
        store: Any,
        completed_after: float | None,
        every: float,
        retention: float | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._completed_after = completed_after
        self._every = every
        self._retention = retention

    def started(self) -> None:
        self._schedule()

    def receive(self, message: Any) -> Any:
        try:
            if isinstance(message, ArchiveRun):
                return archive_run(self._store, message.stream, message.up_to)
            if isinstance(message, Sweep):
                import time

                report = compact(
                    self._store,
                    now=time.time(),
                    completed_after=self._completed_after,
                    retention=self._retention,
                )
                if report.events or report.purged:
                    self.system.log.info(
                        "compaction.done",
                        streams=report.streams,
                        events=report.events,
                        purged=report.purged,
                    )
                self._schedule()
                return report
        except EventStoreError as err:  # e.g. the disk is full: try again next time
            self.system.log.error("compaction.failed", error=str(err))
        return None

    def _schedule(self) -> None:
        if self._completed_after is None and self._retention is None:
            return
        with contextlib.suppress(Exception):
            self.system.schedule(self._every, self.actor_id, Sweep())
