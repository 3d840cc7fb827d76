"""The event-store contract as a typing Protocol, implemented by every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from ._records import NewEvent, RecordedEvent, Snapshot, StreamInfo


class EventLog(Protocol):
    """What :mod:`actors` and :mod:`aura` need from a store."""

    @property
    def path(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> int: ...

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
    ) -> list[int]: ...

    def read(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]: ...

    def read_all(self, from_position: int = 0) -> Iterator[RecordedEvent]: ...

    def version(self, stream: str) -> int: ...

    def stream_info(self, stream: str) -> StreamInfo | None: ...

    def streams(self) -> list[str]: ...

    def head_position(self) -> int: ...

    def save_snapshot(self, stream: str, version: int, data: bytes) -> None: ...

    def load_snapshot(self, stream: str) -> Snapshot | None: ...

    def archive(self, stream: str, up_to_version: int) -> int: ...

    def purge_archive(self, stream: str, up_to_version: int) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
