"""`aura doctor`: read everything in a data directory and say what is
damaged and what is intact.

Read-only, safe beside a running runtime. It checks the store file against
its meta pages, then reads every stream in full (archived events and the
newest snapshot included) and decodes every mission message, then the
whole hot log in global order, then the audit chain. Each stream is read
on its own, so one damaged record is reported where it is and every other
stream is still checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventstore import EventLog, EventStoreError

from ..engine._place import Place
from ..governance._audit import verify_audit
from ._inspect import PREFIX, describe, open_log


@dataclass(frozen=True)
class StreamCheck:
    stream: str
    ok: bool
    events: int
    error: str = ""


@dataclass(frozen=True)
class DoctorReport:
    data: str
    store_error: str = ""
    """The store could not be opened at all (a truncated or foreign file)."""
    streams: list[StreamCheck] = field(default_factory=list)
    log_error: str = ""
    """Reading the whole hot log in position order failed here."""
    log_events: int = 0
    audit_ok: bool = False
    audit_reason: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.store_error
            and not self.log_error
            and self.audit_ok
            and all(s.ok for s in self.streams)
        )


def examine(place: Place) -> DoctorReport:
    try:
        store = open_log(place)
    except EventStoreError as err:
        return DoctorReport(place.describe(), store_error=str(err))
    with store:
        try:
            names = store.streams()
        except EventStoreError as err:
            return DoctorReport(place.describe(), store_error=str(err))
        checks = [_check_stream(store, name) for name in names]
        log_events, log_error = 0, ""
        try:
            for _ in store.read_all():
                log_events += 1
        except EventStoreError as err:
            log_error = str(err)
        audit = verify_audit(store)
    reason = audit.reason
    if audit.damaged:
        reason += ": " + "; ".join(audit.damaged)
    return DoctorReport(place.describe(), "", checks, log_error, log_events, audit.ok, reason)


def _check_stream(store: EventLog, name: str) -> StreamCheck:
    count = 0
    try:
        for event in store.read(name, archived=True):
            if name.startswith(PREFIX):
                describe(event)  # decodes the mission message it holds
            count += 1
        store.load_snapshot(name)
    except Exception as err:  # any failure to read is a finding, never a crash
        return StreamCheck(name, False, count, f"{type(err).__name__}: {err}")
    return StreamCheck(name, True, count)
