"""Public record types and the on-disk row formats.

Every value the LMDB store writes is ``FORMAT_VERSION`` (one byte) followed
by a msgpack array produced from one of the ``_...Row`` structs below
(``array_like=True``: field names are not repeated in every record). The
evolution contract is written in the package docstring.
"""

from __future__ import annotations

import msgspec

FORMAT_VERSION = 1
"""Version byte prefixed to every stored value."""


class NewEvent(msgspec.Struct, frozen=True):
    """An event to append: a ``kind`` (what happened) and opaque ``data`` bytes."""

    kind: str
    data: bytes = b""


class RecordedEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event as stored: its stream, 1-based ``version`` in the stream, global
    ``position`` (1-based, increasing in commit order), kind, data and the commit
    wall-clock time ``ts`` (seconds since the epoch).

    It is also the on-disk row of the hot log and the archive (``array_like``:
    a msgpack array in field order), so replay decodes straight into it and
    every record names its own stream, version and position.
    """

    stream: str
    version: int
    position: int
    kind: str
    data: bytes
    ts: float
    digest: bytes = b""
    """For streams the store hash-chains (``chained=``): sha256 over the
    previous event's digest and this event (see ``verify_chain``); else empty."""


class Snapshot(msgspec.Struct, frozen=True):
    """Opaque state of ``stream`` as of (and including) event ``version``."""

    stream: str
    version: int
    data: bytes
    ts: float


class StreamInfo(msgspec.Struct, frozen=True):
    """What the store knows about a stream without reading its events."""

    stream: str
    version: int
    archived_upto: int
    """Events ``1..archived_upto`` live in the archive, not in the hot log."""
    purged_upto: int = 0
    """Events ``1..purged_upto`` were deleted from the archive (retention)."""


class Lease(msgspec.Struct, frozen=True):
    """Ownership of ``resource`` (a mission, a whole store) by ``owner`` until
    ``expires`` (seconds since the epoch, on the store's clock: the database
    server's for PostgreSQL). ``epoch`` grows by one each time another owner
    takes it; a write fenced with an older epoch is refused."""

    resource: str
    owner: str
    epoch: int
    expires: float
