"""The in-memory reference backend: the contract's executable definition and
the fast store behind ``aura.testing``. Nothing is durable."""

from ._store import MemoryEventStore

__all__ = ["MemoryEventStore"]
