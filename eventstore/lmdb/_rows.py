"""The LMDB backend's own rows (msgpack arrays after the format byte).

Events themselves are :class:`eventstore.RecordedEvent` rows.
"""

from __future__ import annotations

import msgspec

from .._records import RecordedEvent


class _StreamRow(msgspec.Struct, array_like=True, frozen=True):
    """Written when a stream is created or archived, not on every append: the
    stream's version is the version of its last index entry."""

    sid: int
    archived_upto: int = 0
    purged_upto: int = 0


class _SnapshotRow(msgspec.Struct, array_like=True, frozen=True):
    version: int
    data: bytes
    ts: float


class _ArchiveChunk(msgspec.Struct, array_like=True, frozen=True):
    """One archive call's events for one stream, zlib-compressed on disk."""

    rows: list[RecordedEvent]


class _MetaRow(msgspec.Struct, array_like=True, frozen=True):
    """Written when a stream is created or archived, not on every append: the
    next position is also one past the last key of the hot log."""

    next_position: int
    next_sid: int
    layout: int = 1
    """Key layout the store was written with (``_layout``); absent in layout 1."""


class _LeaseRow(msgspec.Struct, array_like=True, frozen=True):
    """A lease (``_leases``): who owns the resource, at which epoch, until when."""

    owner: str
    epoch: int
    expires: float
