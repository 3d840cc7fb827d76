"""The memory engine: ``ctx.memory``, a key -> value map owned by a mission.

Reads see the mission's own writes at once. Each write is journaled as a
``memory`` event of the mission's stream (with its audit entry, in one
commit) at the end of handling the message during which the code made
it, before the mission handles anything else. Mission code is
deterministic, so replay rebuilds the same map; a write the code made but
a crash kept out of the log is appended when recovery completes. Values
must be msgspec-encodable (msgpack): anything else is refused at the write
with ``MemoryValueError``, and the value kept is exactly what a reader of
the log decodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import msgspec

from ..core._errors import AuraError

MEMORY = "memory"
"""Event kind of a journaled memory write."""


class MemoryValueError(AuraError, TypeError):
    """A memory key that is not a non-empty str, or a value that cannot be journaled."""


class MemoryWrite(msgspec.Struct, frozen=True):
    key: str
    value: Any = None
    deleted: bool = False
    event: bool = False
    """A ``ctx.set_event`` (a value published to the outside world), not a
    memory write: journaled, replayed and audited the same way, kept apart."""
    patch: bool = False
    """A ``ctx.patched`` marker: this run took the new branch of change ``key``."""

    def audit_kind(self) -> str:
        """The kind of this write's audit entry."""
        if self.patch:
            return "patch.recorded"
        if self.event:
            return "event.set"
        return "memory.delete" if self.deleted else "memory.set"

    def digest(self) -> str:
        """sha256 of the write (the audit entry records it, not the value)."""
        return hashlib.sha256(msgspec.msgpack.encode(self)).hexdigest()


_decoder = msgspec.msgpack.Decoder(MemoryWrite)


def decode_write(data: bytes) -> MemoryWrite:
    return _decoder.decode(data)


def fold(writes: Iterable[MemoryWrite]) -> dict[str, Any]:
    """The map a sequence of writes leaves behind."""
    out: dict[str, Any] = {}
    for w in writes:
        if w.event or w.patch:
            continue
        if w.deleted:
            out.pop(w.key, None)
        else:
            out[w.key] = w.value
    return out


def fold_events(writes: Iterable[MemoryWrite]) -> dict[str, Any]:
    """The events a sequence of writes published, the latest value per key."""
    return {w.key: w.value for w in writes if w.event}


class MissionMemory(MutableMapping[str, Any]):
    """``ctx.memory``: a mapping whose every write is journaled and audited."""

    def __init__(self, on_write: Callable[[MemoryWrite], None]) -> None:
        self._data: dict[str, Any] = {}
        self._on_write = on_write

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        _check_key(key)
        canonical = _canonical(f"ctx.memory[{key!r}]", value)
        self._on_write(MemoryWrite(key, canonical))  # first: a refused write changes nothing
        self._data[key] = canonical

    def record_patch(self, change_id: str) -> None:
        """``ctx.patched``: journal that this run took change ``change_id``."""
        _check_key(change_id)
        self._on_write(MemoryWrite(change_id, None, patch=True))

    def publish(self, key: str, value: Any) -> None:
        """``ctx.set_event``: journal ``value`` under event ``key``."""
        _check_key(key)
        canonical = _canonical(f"ctx.set_event({key!r})", value)
        self._on_write(MemoryWrite(key, canonical, event=True))

    def __delitem__(self, key: str) -> None:
        _check_key(key)
        if key not in self._data:
            raise KeyError(key)  # like a dict
        self._on_write(MemoryWrite(key, None, deleted=True))
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def delete(self, key: str) -> None:
        """Remove ``key`` if present (no error if it is not)."""
        if key in self._data:
            del self[key]
        else:
            _check_key(key)

    def snapshot(self) -> dict[str, Any]:
        return dict(self._data)

    def replace(self, data: dict[str, Any]) -> None:
        """Take over a previous run's memory (continue-as-new): not a write."""
        self._data = dict(data)

    def __repr__(self) -> str:
        return f"MissionMemory({self._data!r})"


def _canonical(what: str, value: Any) -> Any:
    """``value`` as it reads back from the log (msgpack), or why it cannot be journaled."""
    try:
        return msgspec.msgpack.decode(msgspec.msgpack.encode(value))
    except (TypeError, msgspec.EncodeError) as err:
        raise MemoryValueError(
            f"{what}: {type(value).__name__} value cannot be journaled (msgpack): {err}"
        ) from err


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise MemoryValueError(f"ctx.memory keys are non-empty str, got {key!r}")
