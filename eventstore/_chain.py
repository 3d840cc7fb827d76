"""Hash-chained streams: a tamper-evident log inside the event log.

A stream named in ``chained=`` when the store is opened gets a ``digest``
on every event: ``sha256(previous digest + canonical bytes)``, computed by
the writer inside the commit that stores the event, so concurrent
appenders (group commit) still produce one linear chain. The canonical
bytes are the msgpack array ``[stream, version, position, kind, data, ts]``;
the first event chains from 32 zero bytes. Editing, deleting, inserting or
reordering any stored event breaks the chain at that event, which
:func:`verify_chain` finds. (Someone able to rewrite the whole database
can recompute every digest: publish the head digest elsewhere to anchor it.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from ._records import RecordedEvent

GENESIS = bytes(32)
_encoder = msgspec.msgpack.Encoder()


def chain_digest(previous: bytes, event: RecordedEvent) -> bytes:
    """The digest of ``event`` (its own ``digest`` field aside) after ``previous``."""
    return digest_of(
        previous, event.stream, event.version, event.position, event.kind, event.data, event.ts
    )


def digest_of(  # noqa: PLR0917 - the writer's hot path: no struct built twice
    previous: bytes, stream: str, version: int, position: int, kind: str, data: bytes, ts: float
) -> bytes:
    canonical = _encoder.encode([stream, version, position, kind, data, ts])
    return hashlib.sha256(previous + canonical).digest()


class ChainReport(msgspec.Struct, frozen=True):
    """The outcome of :func:`verify_chain`."""

    ok: bool
    count: int
    """Events checked (all of them when ``ok``; the good prefix otherwise)."""
    head: str
    """Hex digest of the last good event (the chain's head when ``ok``)."""
    bad_version: int = 0
    """The first event that is not what the chain recorded (0 when ``ok``)."""
    reason: str = ""


def verify_chain(events: Iterable[RecordedEvent], stream: str | None = None) -> ChainReport:
    """Walk ``events`` (one stream, in version order) and report the first one
    that was edited, deleted, inserted or reordered."""
    previous = GENESIS
    expected_version = 1
    count = 0
    last_position = 0
    for ev in events:
        name = stream if stream is not None else ev.stream
        problem: tuple[int, str] | None = None
        if ev.stream != name:
            problem = ev.version, f"event of stream {ev.stream!r} inside stream {name!r}"
        elif ev.version > expected_version:
            problem = (
                expected_version,
                f"version {expected_version} is missing (next stored is {ev.version}): "
                "an entry was deleted",
            )
        elif ev.version < expected_version:
            problem = (
                ev.version,
                f"version {ev.version} appears again after {expected_version - 1}: "
                "an entry was inserted or reordered",
            )
        elif ev.position <= last_position:
            problem = ev.version, f"position {ev.position} does not follow {last_position}"
        elif not ev.digest:
            problem = ev.version, "no digest: not written as a chained event"
        else:
            digest = chain_digest(previous, ev)
            if digest != ev.digest:
                problem = (
                    ev.version,
                    "content does not match its digest: the entry was edited, or an entry "
                    "before it was deleted, inserted or reordered",
                )
        if problem is not None:
            return ChainReport(False, count, previous.hex(), *problem)
        previous = ev.digest
        last_position = ev.position
        expected_version += 1
        count += 1
    return ChainReport(True, count, previous.hex())
