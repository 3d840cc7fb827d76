"""The LMDB backend: the embedded default (one directory, many readers, one
writer at a time, shared fsyncs through group commit).

Modules: ``_codec`` and ``_layout`` (bytes and keys, layout upgrades),
``_rows`` (its own records), ``_stream_index`` (per-stream position runs),
``_write_batch`` (one transaction's state), ``_ops`` (the write
operations), ``_file`` (the file check before mapping), ``_errors`` (lmdb
errors translated), ``_rwlock`` (map resizes against readers), ``_store``.
"""

from ._store import Durability, LmdbEventStore

__all__ = ["Durability", "LmdbEventStore"]
