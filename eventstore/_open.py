"""One opener for every backend: the target names the backend.

``EventStore.open("./aura-data/events")`` (a path) is LMDB;
``EventStore.open("postgresql://user@host/db")`` (or ``postgres://``) is
PostgreSQL; ``EventStore.open("memory:")`` is the in-memory reference.
Options are the backend's own (``durability``, ``readonly``, ``chained``,
``clock``, ``keep_snapshots`` everywhere they make sense; ``map_size`` for
LMDB; ``schema`` and ``pool_size`` for PostgreSQL).
"""

from __future__ import annotations

import os
from typing import Any

from ._errors import InvalidEventError
from ._protocol import EventLog

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def backend_of(target: object) -> str:
    """``"lmdb"``, ``"postgres"`` or ``"memory"``: what ``target`` names."""
    if is_postgres_url(target):
        return "postgres"
    if target == "memory:":
        return "memory"
    if isinstance(target, str) and "://" in target:
        scheme = target.split("://", 1)[0]
        raise InvalidEventError(
            f"unknown event store URL scheme {scheme!r}: use a directory path (LMDB), "
            "postgresql://... or memory:"
        )
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidEventError(
            f"an event store is named by a path or a URL, got {type(target).__name__}"
        )
    return "lmdb"


class EventStore:
    """Opens the event store ``target`` names (see the module docstring).

    Every backend implements :class:`EventLog` with the same semantics and
    errors (the conformance suite in ``tests/eventstore`` pins them).
    """

    def __init__(self) -> None:
        raise TypeError("open a store with EventStore.open(path_or_url, ...)")

    @staticmethod
    def open(target: str | os.PathLike[str], **options: Any) -> EventLog:
        backend = backend_of(target)
        if backend == "postgres":
            from .postgres import PostgresEventStore

            return PostgresEventStore.open(str(target), **options)
        if backend == "memory":
            from .memory import MemoryEventStore

            return MemoryEventStore.open(**options)
        from .lmdb import LmdbEventStore

        return LmdbEventStore.open(target, **options)
