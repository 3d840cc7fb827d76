"""Where a runtime's state lives: a data directory, or a PostgreSQL store.

``Place.of(data=..., store=...)`` names it the way users do: a directory
(LMDB in ``<data>/events``, the key in ``<data>/keys``, the owner's lock
file), or ``store="postgresql://..."`` (events, the shared runtime key and
the ownership lease all in the database; ``schema`` picks one store among
several in a database). Every verb (runtime, CLI, console) opens its store
through a Place, so the choice is made once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventstore import EventLog, EventStore, backend_of

from ..core._errors import AuraError

STORE_ENV = "AURA_STORE"
DATA_ENV = "AURA_DATA"
SCHEMA_ENV = "AURA_SCHEMA"


class DataDirError(AuraError):
    """There is no aura data (directory or store) where one was named."""


@dataclass(frozen=True)
class Place:
    data: Path | None
    """The local data directory (always set for LMDB; optional for PostgreSQL)."""
    store: str | None = None
    """A PostgreSQL URL, or None: LMDB in ``data / "events"``."""
    schema: str = "aura"

    @classmethod
    def of(
        cls,
        data: str | os.PathLike[str] | None = None,
        store: str | None = None,
        schema: str = "aura",
    ) -> Place:
        if store is not None:
            if backend_of(store) != "postgres":
                raise AuraError(
                    f"store must be a postgresql:// URL (a directory is given as data=), "
                    f"got {store!r}"
                )
            return cls(Path(data) if data is not None else None, store, schema)
        if data is None:
            raise AuraError("name a data directory (data=...) or a store (store=postgresql://...)")
        return cls(Path(data), None, schema)

    @classmethod
    def from_env(
        cls, data: str | None = None, store: str | None = None, schema: str | None = None
    ) -> Place:
        """What the CLI names: ``--store``/``$AURA_STORE`` (in ``--schema``/
        ``$AURA_SCHEMA``, default ``aura``), else ``--data``/``$AURA_DATA``,
        else ``./aura-data``."""
        store = store or os.environ.get(STORE_ENV) or None
        schema = schema or os.environ.get(SCHEMA_ENV) or "aura"
        if store is not None and data is None:
            return cls.of(None, store, schema)
        return cls.of(data or os.environ.get(DATA_ENV) or "./aura-data", store, schema)

    @property
    def is_postgres(self) -> bool:
        return self.store is not None

    @property
    def events(self) -> Path:
        assert self.data is not None and self.store is None
        return self.data / "events"

    def describe(self) -> str:
        if self.store is not None:
            from eventstore.postgres import describe_url

            return f"{describe_url(self.store)} (schema {self.schema})"
        return str(self.data)

    def exists(self) -> bool:
        """Is there a store here already (without creating one)?"""
        if self.store is None:
            return (self.events / "data.mdb").exists()
        try:
            with self.open(readonly=True):
                return True
        except Exception:
            return False

    def open(self, *, readonly: bool = False, **options: Any) -> EventLog:
        """Open this place's event log. Read-only opens of a place with no
        store raise :class:`DataDirError`."""
        if self.store is not None:
            return EventStore.open(self.store, schema=self.schema, readonly=readonly, **options)
        if readonly and not self.exists():
            raise DataDirError(
                f"no aura data directory at {self.data} (no event log in {self.events})"
            )
        return EventStore.open(self.events, readonly=readonly, **options)
