"""eventstore: a durable, crash-safe append-only event log (LMDB, PostgreSQL).

Streams of events, each event a ``kind`` and opaque ``data`` bytes, with
per-stream versions (1, 2, ...) and a global commit position. Appends are
atomic per call and durable when they return; concurrent appenders share one
fsync (group commit). Snapshots and a compressed archive keep long streams
cheap to replay. See ``EventStore`` for the API and DESIGN.md for the why.

On-disk format and how it may evolve
------------------------------------
Every stored value is one format byte (``FORMAT_VERSION``, now 1) followed by
a msgpack array of the row's fields in declaration order (msgspec
``array_like`` structs in ``_records``); archive chunks are zlib-compressed
after the format byte. Keys are fixed-width big-endian integers (layout in
``_codec``). Rules for changing it:

1. A new field goes at the end of its row and has a default, so old records
   decode unchanged and old readers ignore the extra array element.
2. An existing field never changes type or meaning, and is never removed or
   reordered; retire it by ignoring it (keep the slot).
3. Anything that breaks 1 or 2 bumps ``FORMAT_VERSION``; readers then decode
   each record by its own format byte (old versions must stay readable), and
   a record with an unknown format byte raises ``CorruptionError``.
4. Key layouts are versioned separately: the meta row names the layout a
   store was written with (``_layout``; now 3). A writable open upgrades an
   older layout in one transaction; a read-only open of an older layout, or
   any open of a newer one, raises ``StoreIOError`` and changes nothing.

No pickle: a record can never execute code when read.

Backends
--------
Each backend is a subpackage implementing :class:`EventLog` (``_protocol``)
with the same semantics and typed errors: ``lmdb`` (the embedded default),
``postgres`` (many hosts on one server; needs the ``postgres`` extra) and
``memory`` (the reference). :class:`EventStore` (``_open``) opens the one a
path or URL names. Shared by all: ``_records`` (the typed rows), ``_errors``,
``_validate`` (argument checks), ``_chain`` (hash chains), ``_write_ops``
(what a group commit batches), ``_group_commit``.
"""

from ._chain import ChainReport, chain_digest, verify_chain
from ._errors import (
    ArchiveError,
    ConcurrencyError,
    CorruptionError,
    EventStoreError,
    InvalidEventError,
    LeaseLostError,
    SnapshotError,
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreReadOnlyError,
    StoreUnavailableError,
)
from ._open import EventStore, backend_of
from ._protocol import EventLog, LeasedLog
from ._records import FORMAT_VERSION, Lease, NewEvent, RecordedEvent, Snapshot, StreamInfo
from .lmdb import Durability, LmdbEventStore
from .memory import MemoryEventStore

__all__ = [
    "FORMAT_VERSION",
    "ArchiveError",
    "ChainReport",
    "ConcurrencyError",
    "CorruptionError",
    "Durability",
    "EventLog",
    "EventStore",
    "EventStoreError",
    "InvalidEventError",
    "Lease",
    "LeaseLostError",
    "LeasedLog",
    "LmdbEventStore",
    "MemoryEventStore",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "SnapshotError",
    "StoreClosedError",
    "StoreFullError",
    "StoreIOError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "StreamInfo",
    "backend_of",
    "chain_digest",
    "verify_chain",
]
