"""The audit chain: what happened to every mission, tamper-evident.

Every event a mission journals (each mailbox message, each status
transition, each memory write) gets an ``AuditEntry`` in the ``$audit``
stream, appended in the same commit as the event itself: no event without
its entry, no entry without its event. The entries written by one commit
form one chained ``$audit`` event (a list of entries, of every mission the
commit carried when the outbox delivers a batch): one digest and one record
per commit instead of one per entry or per mission. The store hash-chains ``$audit``
(sha256 over the previous entry's digest and the entry), so
:func:`verify_audit` finds the first entry that was edited, deleted,
inserted or reordered, and also checks that entries and mission events
still match one to one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from eventstore import CorruptionError, EventStoreError, NewEvent, verify_chain

from ..core._messages import STREAM_PREFIX, MissionMessage

AUDIT_STREAM = "$audit"
AUDIT = "audit"
AUDITED_KINDS = frozenset({"message", "transition", "memory", "recovery", "resumed"})
"""Kinds of mission-stream events that each have exactly one audit entry."""


class AuditEntry(msgspec.Struct, frozen=True):
    kind: str
    """What happened: ``mission.started``, ``mission.transition``,
    ``step.completed``, ``step.failed``, ``step.retrying``,
    ``compensation.completed``, ``tool.allowed``, ``tool.denied``,
    ``memory.set``, ``memory.delete``, ``signal.received``, ``timer.fired``,
    ``mission.cancel_requested``, ``budget.raised``, ..."""
    mission_id: str
    run: int
    version: int
    """The version, in the mission's stream, of the event this entry records."""
    at: float
    detail: dict[str, Any] = {}


_decoder = msgspec.msgpack.Decoder(list[AuditEntry])
_messages_decoder = msgspec.msgpack.Decoder(MissionMessage)
_encoder = msgspec.msgpack.Encoder()


def audit_event(
    kind: str, mission_id: str, run: int, version: int, at: float, **detail: Any
) -> AuditEntry:
    return AuditEntry(kind, mission_id, run, version, at, detail)


def bundle(entries: Sequence[AuditEntry]) -> NewEvent:
    """One chained ``$audit`` event holding ``entries``."""
    return NewEvent(AUDIT, _encoder.encode(list(entries)))


def merge_bundles(events: list[NewEvent]) -> list[NewEvent]:
    """One ``$audit`` event holding the entries of all of ``events`` (bundles),
    in order: what ``ask_many`` commits for a batch of missions. Joined as
    msgpack bytes (an array is a header with its length, then its items), so
    no entry is decoded and encoded again."""
    if len(events) < 2:
        return events
    count = 0
    bodies: list[bytes] = []
    for event in events:
        n, start = _array_head(event.data)
        count += n
        bodies.append(event.data[start:])
    return [NewEvent(AUDIT, _array_header(count) + b"".join(bodies))]


def _array_head(data: bytes) -> tuple[int, int]:
    """(length, where the items start) of the msgpack array ``data``."""
    first = data[0] if data else 0
    if 0x90 <= first <= 0x9F:  # fixarray
        return first & 0x0F, 1
    if first == 0xDC:  # array 16
        return int.from_bytes(data[1:3], "big"), 3
    if first == 0xDD:  # array 32
        return int.from_bytes(data[1:5], "big"), 5
    raise ValueError(f"an audit bundle is not a msgpack array (first byte {first:#x})")


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def decode_entries(data: bytes) -> list[AuditEntry]:
    return _decoder.decode(data)


def with_audit(
    stream: str, events: Sequence[NewEvent], expected: int, entries: Sequence[AuditEntry]
) -> list[tuple[str, Sequence[NewEvent], int | None]]:
    """An ``append_many`` batch: ``events`` on ``stream`` and their audit entries."""
    return [(stream, events, expected), (AUDIT_STREAM, [bundle(entries)], None)]


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    """Entries checked (those of the good prefix when the chain is broken)."""
    head: str
    """Hex digest of the last good ``$audit`` event: publish it to anchor the chain."""
    bad_version: int = 0
    """The first ``$audit`` event (a commit's entries) that is not what was written."""
    reason: str = ""
    unaudited: tuple[str, ...] = ()
    """Mission events (``stream@version``) with no audit entry."""
    orphaned: tuple[str, ...] = ()
    """Audit entries whose mission event is not in the log."""
    damaged: tuple[str, ...] = ()
    """What could not be read at all (an undecodable record or page), each
    naming stream, version and position: a finding, not a crash."""


def verify_audit(store: Any) -> AuditReport:
    """Walk the audit chain of ``store`` and match it against the missions' logs
    (as of one moment: a writer may go on appending meanwhile)."""
    try:
        horizon = store.head_position()  # an event and its entry share a commit: both or neither
        events = [e for e in store.read(AUDIT_STREAM, archived=True) if e.position <= horizon]
    except EventStoreError as err:
        reason = f"the audit chain cannot be read: {err}"
        return AuditReport(False, 0, "", 0, reason, damaged=(str(err),))
    chain = verify_chain(events, AUDIT_STREAM)
    if not chain.ok:
        good = sum(len(decode_entries(e.data)) for e in events[: chain.count])
        return AuditReport(False, good, chain.head, chain.bad_version, chain.reason)
    recorded: set[tuple[str, int]] = set()
    count = 0
    for event in events:
        for entry in decode_entries(event.data):
            recorded.add((STREAM_PREFIX + entry.mission_id, entry.version))
            count += 1
    journaled: set[tuple[str, int]] = set()
    purged: dict[str, int] = {}  # events up to here were deleted by a retention policy
    damaged: list[str] = []
    unreadable: set[str] = set()
    for stream in store.streams():
        if stream.startswith(STREAM_PREFIX):
            try:
                for e in store.read(stream, archived=True):
                    if e.kind in AUDITED_KINDS and e.position <= horizon:
                        journaled.add((stream, e.version))
                    if e.kind == "message":
                        _check_message(e)
                info = store.stream_info(stream)
            except EventStoreError as err:  # one damaged mission: report it, check the rest
                damaged.append(str(err))
                unreadable.add(stream)
                continue
            if info is not None and info.purged_upto:
                purged[stream] = info.purged_upto
    unaudited = tuple(f"{s}@{v}" for s, v in sorted(journaled - recorded))
    orphaned = tuple(
        f"{s}@{v}"
        for s, v in sorted(recorded - journaled)
        if v > purged.get(s, 0) and s not in unreadable
    )
    ok = not unaudited and not orphaned and not damaged
    reason = ""
    if damaged:
        reason = f"{len(damaged)} mission log(s) cannot be read"
    elif not ok:
        reason = "audit entries and mission events do not match one to one"
    return AuditReport(ok, count, chain.head, 0, reason, unaudited, orphaned, tuple(damaged))


def _check_message(event: Any) -> None:
    """A journaled mission message must decode: one that does not is damage."""
    try:
        _messages_decoder.decode(event.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        where = f"stream {event.stream!r} version {event.version} (position {event.position})"
        raise CorruptionError("journaled message", where, "the event log", str(err)) from err


def export_audit(store: Any) -> Iterator[dict[str, Any]]:
    """Every audit entry, oldest first, as plain data (for JSON lines)."""
    for event in store.read(AUDIT_STREAM, archived=True):
        for i, entry in enumerate(decode_entries(event.data)):
            yield {
                "seq": event.version,
                "index": i,
                "at": entry.at,
                "kind": entry.kind,
                "mission_id": entry.mission_id,
                "run": entry.run,
                "version": entry.version,
                "detail": entry.detail,
                "digest": event.digest.hex(),
            }
