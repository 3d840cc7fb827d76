"""Read-only views of a data directory or store, for the CLI (and notebooks).

They open the event log read-only and decode it; they never replay mission
code, so they work while a runtime is running and without the missions'
code being importable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from eventstore import CorruptionError, EventLog, EventStoreError, RecordedEvent

from ..core._errors import AuraError
from ..core._lifecycle import SETTLED_VALUES
from ..core._messages import (
    RECOVERY,
    RESUMED,
    STREAM_PREFIX,
    TRANSITION,
    Cancel,
    MissionMessage,
    NewRun,
    Recovery,
    Resumed,
    Signal,
    Start,
    StepDone,
    TimerFired,
    Transition,
)
from ..engine._compactor import CompactionReport
from ..engine._compactor import compact as compact_store
from ..engine._ownership import is_owned, read_holder
from ..engine._place import Place
from ..engine._store_lease import RESOURCE as RUNTIME_LEASE
from ..engine._store_lease import live_workers
from ..governance._audit import (
    AUDIT_STREAM,
    AuditReport,
    decode_entries,
    export_audit,
    verify_audit,
)
from ..governance._memory import MEMORY, decode_write, fold

PREFIX = STREAM_PREFIX
_decoder = msgspec.msgpack.Decoder(MissionMessage)


@dataclass(frozen=True)
class MissionSummary:
    mission_id: str
    name: str
    status: str
    steps_completed: int
    events: int
    detail: str
    memory: dict[str, Any] = field(default_factory=dict)
    run: int = 1
    waiting_for: str = ""
    """What a waiting mission waits on (signal name, timer due, budget), as
    its last transition journaled it."""
    owner: str = ""
    """The runtime that runs it now (pid, host, since), if one owns the directory."""
    recoveries: int = 0
    """Times a runtime recovered it (after a restart or a crash)."""
    tags: dict[str, str] = field(default_factory=dict)


def message_of(event: RecordedEvent) -> Any:
    """The mission message a ``message`` event holds, or a ``CorruptionError``
    naming its stream, version and position."""
    try:
        return _decoder.decode(event.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        where = f"stream {event.stream!r} version {event.version} (position {event.position})"
        raise CorruptionError("journaled message", where, "the event log", str(err)) from err


def open_log(place: Place) -> EventLog:
    """The place's event log, read-only (DataDirError if there is none)."""
    return place.open(readonly=True)


def describe(event: RecordedEvent) -> dict[str, Any]:
    """One journaled event as plain data: what it is, the structured fields
    of what it says (step name, seq, attempt, idempotency key, result or
    error, ...) and a one-line ``summary`` for people."""
    mission_id = event.stream[len(PREFIX) :] if event.stream.startswith(PREFIX) else ""
    out: dict[str, Any] = {
        "version": event.version,
        "position": event.position,
        "at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.ts)),
        "ts": event.ts,
        "kind": event.kind,
    }
    if event.kind == "message":
        msg = message_of(event)
        out["sent_at"] = msg.at
        if isinstance(msg, Start):
            out.update(
                kind="start",
                mission=msg.mission,
                args=msg.args,
                reuse=msg.reuse,
                summary=f"{msg.mission}({', '.join(map(repr, msg.args))})",
            )
        elif isinstance(msg, StepDone):
            out.update(_step_fields(mission_id, msg))
        elif isinstance(msg, TimerFired):
            label = f"retry attempt {msg.attempt}" if msg.attempt else "timer"
            out.update(
                kind="timer_fired",
                seq=msg.seq,
                attempt=msg.attempt,
                fingerprint=msg.fingerprint,
                summary=f"#{msg.seq} {label} ({msg.fingerprint})",
            )
        elif isinstance(msg, Signal):
            out.update(
                kind="signal",
                name=msg.name,
                payload=msg.payload,
                summary=f"{msg.name} = {msg.payload!r}",
            )
        elif isinstance(msg, Cancel):
            kind = "terminate" if msg.force else "cancel"
            out.update(kind=kind, reason=msg.reason, summary=msg.reason)
        else:
            name = type(msg).__name__
            out.update(kind=_snake(name), summary=name)
            if isinstance(msg, NewRun):
                out["run"] = msg.run
    elif event.kind == TRANSITION:
        t = msgspec.msgpack.decode(event.data, type=Transition)
        out.update(status=t.status, reason=t.reason, run=t.run or None)
        if t.status == "completed":
            out["result"] = t.result
        if t.waiting_for:
            out["waiting_for"] = t.waiting_for
        out["summary"] = t.status + (f": {t.reason}" if t.reason else "")
    elif event.kind == MEMORY:
        w = decode_write(event.data)
        if w.patch:
            out.update(kind="patch", summary=f"took the new branch of patch {w.key!r}", key=w.key)
        elif w.event:
            out.update(
                kind="event", summary=f"event {w.key} = {w.value!r}", key=w.key, value=w.value
            )
        else:
            text = f"delete {w.key}" if w.deleted else f"set {w.key} = {w.value!r}"
            out.update(summary=text, key=w.key, value=w.value, deleted=w.deleted)
    elif event.kind == RESUMED:
        back = msgspec.msgpack.decode(event.data, type=Resumed)
        out.update(
            cancel_version=back.cancel_version,
            reason=back.reason,
            summary=f"resumed: the cancel at event {back.cancel_version} is taken back",
        )
    elif event.kind == RECOVERY:
        r = msgspec.msgpack.decode(event.data, type=Recovery)
        out.update(
            pid=r.pid,
            host=r.host,
            attempt=r.attempt,
            summary=f"recovered by pid {r.pid} on {r.host} (recovery {r.attempt} since "
            "the last progress)",
        )
    else:
        out.update(summary=f"{len(event.data)} bytes")
    return out


def _step_fields(mission_id: str, msg: StepDone) -> dict[str, Any]:
    step = msg.fingerprint.split(" ", 1)[-1].split("#", 1)[0]
    fields: dict[str, Any] = {
        "kind": "step_done",
        "step": step,
        "seq": msg.seq,
        "attempt": msg.attempt,
        "run": msg.run or 1,
        "idempotency_key": f"{mission_id}/{msg.run or 1}/{msg.seq}",
        "ok": msg.ok,
        "fingerprint": msg.fingerprint,
    }
    if msg.ok:
        fields["result"] = msg.value
        what = f"ok {msg.value!r}"
    else:
        fields["error_type"], fields["error"] = msg.error_type, msg.error
        if msg.retry_in >= 0:
            fields["retry_in"] = msg.retry_in
            what = f"failed, retry in {msg.retry_in:g}s: {msg.error_type}: {msg.error}"
        else:
            what = f"failed: {msg.error_type}: {msg.error}"
    if msg.cost_usd or msg.cost_tokens:
        fields["cost_usd"], fields["cost_tokens"] = msg.cost_usd, msg.cost_tokens
    fields["summary"] = f"#{msg.seq} {msg.fingerprint} attempt {msg.attempt} {what}"
    return fields


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def journaled_results(store: EventLog, mission_id: str) -> dict[str, Any]:
    """The recorded result of every step of ``mission_id`` that succeeded, by
    idempotency key (``mission/run/seq``); the first record counts."""
    found: dict[str, Any] = {}
    for e in store.read(PREFIX + mission_id, archived=True):
        if e.kind == "message":
            msg = message_of(e)
            if isinstance(msg, StepDone) and msg.ok:
                found.setdefault(f"{mission_id}/{msg.run or 1}/{msg.seq}", msg.value)
    return found


def history(place: Place, mission_id: str, *, archived: bool = False) -> Iterator[dict[str, Any]]:
    """A mission's events, described, in order. A damaged record ends it
    with the ``CorruptionError`` naming it, after every intact event before."""
    with open_log(place) as store:
        yield from history_in(store, place.describe(), mission_id, archived=archived)


def history_in(
    store: EventLog,
    where: str,
    mission_id: str,
    *,
    archived: bool = False,
    audit_versions: list[int] | None = None,
) -> Iterator[dict[str, Any]]:
    """``history`` from an open log (``where`` names it in errors). With
    ``audit_versions`` (the ``$audit`` events holding this mission's entries,
    as an index knows them) only those are read, not the whole chain."""
    stream = PREFIX + mission_id
    if store.version(stream) == 0:
        raise AuraError(f"no mission {mission_id!r} in {where}")
    scheduled = _scheduled_entries(store, mission_id, audit_versions)
    for e in store.read(stream, archived=archived):
        yield from scheduled.get(e.version, ())
        yield describe(e)


def audit_events(store: EventLog, versions: list[int] | None) -> Iterator[RecordedEvent]:
    """The ``$audit`` events at ``versions`` (all of them if None)."""
    if versions is None:
        yield from store.read(AUDIT_STREAM, archived=True)
        return
    for v in versions:
        yield from store.read(AUDIT_STREAM, v, v, archived=True)


def _scheduled_entries(
    store: EventLog, mission_id: str, audit_versions: list[int] | None = None
) -> dict[int, list[dict[str, Any]]]:
    """The step attempts a mission scheduled, from the audit chain, by the
    version of the event they were committed with (the next one the mission
    journaled after scheduling them; scheduling is no event of its own)."""
    found: dict[int, list[dict[str, Any]]] = {}
    for event in audit_events(store, audit_versions):
        for entry in decode_entries(event.data):
            if entry.mission_id != mission_id or not entry.kind.endswith(".scheduled"):
                continue
            d = entry.detail
            found.setdefault(entry.version, []).append(
                {
                    "version": entry.version,
                    "at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.at)),
                    "ts": entry.at,
                    "kind": "scheduled",
                    "what": entry.kind.removesuffix(".scheduled"),
                    "step": d.get("step"),
                    "seq": d.get("seq"),
                    "attempt": d.get("attempt"),
                    "run": entry.run,
                    "idempotency_key": f"{mission_id}/{entry.run}/{d.get('seq')}",
                    "summary": f"#{d.get('seq')} {d.get('step')} attempt {d.get('attempt')}",
                }
            )
    return found


DAMAGED = "damaged"
"""The status ``ls``/``stats`` show for a mission whose log cannot be read."""


def summarize_or_damaged(store: EventLog, mission_id: str) -> MissionSummary:
    """``summarize``, or a ``damaged`` summary whose detail names the bad
    record: one damaged mission never hides the others."""
    try:
        return summarize(store, mission_id)
    except (EventStoreError, msgspec.DecodeError, msgspec.ValidationError) as err:
        return MissionSummary(mission_id, "", DAMAGED, 0, 0, str(err))


def summarize(store: EventLog, mission_id: str) -> MissionSummary:
    stream = PREFIX + mission_id
    name, status, detail, steps, count = "", "pending", "", 0, 0
    run, waiting_for, recoveries = 1, "", 0
    tags: dict[str, str] = {}
    writes = []
    for event in store.read(stream, archived=True):
        count += 1
        if event.kind == MEMORY:
            writes.append(decode_write(event.data))
        elif event.kind == RECOVERY:
            recoveries += 1
        elif event.kind == TRANSITION:
            t = msgspec.msgpack.decode(event.data, type=Transition)
            status, detail, waiting_for = t.status, t.reason, t.waiting_for
            run = t.run or run
            tags = t.tags or tags
            if t.status == "completed":
                detail = repr(t.result)
        elif event.kind == "message":
            msg = message_of(event)
            if isinstance(msg, Start):
                name, tags = msg.mission, msg.tags or tags
            elif isinstance(msg, StepDone) and msg.ok:
                steps += 1
    return MissionSummary(
        mission_id,
        name,
        status,
        steps,
        count,
        detail,
        fold(writes),
        run,
        waiting_for,
        recoveries=recoveries,
        tags=dict(tags),
    )


def owner_of(place: Place, store: EventLog) -> str | None:
    """Who runs the missions of ``place`` now, or None if no runtime does."""
    if place.is_postgres:
        now = store.lease_clock()  # type: ignore[attr-defined]
        lease = store.lease(RUNTIME_LEASE)  # type: ignore[attr-defined]
        if lease is not None and lease.owner and lease.expires > now:
            return str(lease.owner)
        workers = live_workers(store)
        return f"{len(workers)} shared worker(s): {', '.join(workers[:3])}" if workers else None
    assert place.data is not None
    if not is_owned(place.data):
        return None
    workers = live_workers(store) if hasattr(store, "leases") else []
    if workers:
        return f"{len(workers)} shared worker(s): {', '.join(workers[:3])}"
    holder = read_holder(place.data)
    return holder.describe() if holder is not None else "another process"


def with_owner(place: Place, store: EventLog, found: list[MissionSummary]) -> list[MissionSummary]:
    """Name the runtime that owns the place on every unsettled mission."""
    who = owner_of(place, store)
    if who is None:
        return found
    return [
        m if m.status in SETTLED_VALUES or m.status == DAMAGED else replace(m, owner=who)
        for m in found
    ]


def missions(
    place: Place, status: str | None = None, tags: dict[str, str] | None = None
) -> list[MissionSummary]:
    """Every mission's summary; with ``status`` or ``tags``, only those."""
    wanted = (tags or {}).items()
    with open_log(place) as store:
        found = [
            summarize_or_damaged(store, s[len(PREFIX) :])
            for s in store.streams()
            if s.startswith(PREFIX)
        ]
        chosen = [
            m for m in found if (status is None or m.status == status) and wanted <= m.tags.items()
        ]
        return with_owner(place, store, chosen)


def show(place: Place, mission_id: str) -> MissionSummary:
    with open_log(place) as store:
        if store.version(PREFIX + mission_id) == 0:
            raise AuraError(f"no mission {mission_id!r} in {place.describe()}")
        return with_owner(place, store, [summarize(store, mission_id)])[0]


def audit_verify(place: Place) -> AuditReport:
    with open_log(place) as store:
        return verify_audit(store)


def audit_export(place: Place) -> list[dict[str, Any]]:
    with open_log(place) as store:
        return list(export_audit(store))


def compact(
    place: Place, completed_after: float, retention: float | None = None
) -> CompactionReport:
    """Archive what no replay needs (a writer: safe beside a running runtime,
    LMDB serialises writers and the archive op is atomic)."""
    open_log(place).close()  # a clear error if there is no data directory
    from ._progress import Progress

    with place.open(chained=(AUDIT_STREAM,)) as store:
        progress = Progress("compacting", len(store.streams()))
        try:
            return compact_store(
                store,
                now=time.time(),
                completed_after=completed_after,
                progress=progress,
                retention=retention,
            )
        finally:
            progress.close()
