"""What the CLI does to a data directory from outside a runtime: queue
signals, cancels and redrives for the runtime serving it, run a mission in
the foreground, and count what is there."""

from __future__ import annotations

import importlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from eventstore import EventLog, EventStoreError

from ..core._definitions import mission_definition
from ..core._errors import AuraError
from ..core._lifecycle import SETTLED_VALUES
from ..core._messages import MissionMessage, Signal, Transition
from ..core._schedules import SCHEDULE_PREFIX, ScheduleState, ScheduleView, view_of
from ..engine._commands import COMMANDS, COMMANDS_DONE, Command, delivered_upto, queue_command
from ..engine._fork import fork_commit
from ..engine._ownership import DirectoryLockedError
from ..engine._place import Place
from ..engine._scheduler import pause_in, resume_in
from ..engine._store_lease import StoreOwnedError, StoreSharedError
from ..governance._audit import AUDIT_STREAM, decode_entries
from ._inspect import DAMAGED, PREFIX, open_log, summarize, summarize_or_damaged


def open_writable(place: Place) -> EventLog:
    """The place's log, writable (one clear error if there is no data directory)."""
    open_log(place).close()  # one clear error if there is no data directory
    return place.open(chained=(AUDIT_STREAM,))


def queue(place: Place, command: Command) -> int:
    """Check the command makes sense for the mission as the log shows it,
    then queue it; returns its number."""
    with open_writable(place) as store:
        return queue_in(store, place.describe(), command)


def queue_in(store: EventLog, where: str, command: Command) -> int:
    """``queue`` on an open, writable log (``where`` names it in errors)."""
    exists = store.version(PREFIX + command.mission_id) > 0
    if command.kind == "fork":  # mission_id is the new one; payload [source, position]
        if exists:
            raise AuraError(f"mission {command.mission_id!r} already exists in {where}")
        source, position = command.payload
        fork_commit(store, source, position, command.mission_id)  # checks it, writes nothing
        return _queue_checked(store, command)
    if command.kind == "start":
        if exists:
            raise AuraError(f"mission {command.mission_id!r} already exists in {where}")
        return _queue_checked(store, command)
    if not exists:
        raise AuraError(f"no mission {command.mission_id!r} in {where}")
    status = summarize(store, command.mission_id).status
    if command.kind in ("signal", "cancel", "terminate", "budget") and status in SETTLED_VALUES:
        raise AuraError(f"mission {command.mission_id!r} is {status}: nothing to {command.kind}")
    if command.kind == "redrive" and status != "dead":
        raise AuraError(f"mission {command.mission_id!r} is {status}, not dead")
    if command.kind == "resume" and status != "cancelled":
        raise AuraError(f"mission {command.mission_id!r} is {status}, not cancelled")
    return _queue_checked(store, command)


def _queue_checked(store: EventLog, command: Command) -> int:
    try:
        msgspec.msgpack.encode(command)
    except (TypeError, msgspec.EncodeError) as err:
        raise AuraError(f"the payload cannot be journaled: {err}") from err
    return queue_command(store, command)


def _result_of(store: EventLog, mission_id: str) -> Any:
    """The result in a completed mission's last transition."""
    stream = PREFIX + mission_id
    version = store.version(stream)
    (last,) = store.read(stream, version, version)
    return msgspec.msgpack.decode(last.data, type=Transition).result


def wait_delivered(place: Place, number: int, timeout: float) -> bool:
    """Until a runtime recorded command ``number`` as delivered (or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with open_log(place) as store:
            if delivered_upto(store) >= number:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)  # another process does the work: poll its progress


def signal_journaled(place: Place, mission_id: str, number: int) -> bool:
    decoder = msgspec.msgpack.Decoder(MissionMessage)
    with open_log(place) as store:
        for e in store.read(PREFIX + mission_id, archived=True):
            if e.kind == "message":
                msg = decoder.decode(e.data)
                if isinstance(msg, Signal) and msg.command == number:
                    return True
    return False


def import_app(module_name: str) -> Any:
    """Import the user's module (the current directory is importable)."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(module_name)
    except Exception as err:  # the user's module failed to import, for whatever reason
        raise AuraError(f"cannot import {module_name!r}: {type(err).__name__}: {err}") from err


def load_mission(spec: str) -> Any:
    """``module:function`` (the current directory is importable)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AuraError(f"expected module:mission, got {spec!r}")
    fn: Any = import_app(module_name)
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise AuraError(f"{module_name!r} has no {attr!r}")
    mission_definition(fn)  # a clear error if it is not a mission
    return fn


def run(  # noqa: PLR0917
    place: Place,
    spec: str,
    args: list[Any],
    mission_id: str | None,
    timeout: float,
    say: Any = None,
) -> Any:
    """Run a mission in this process until it finishes. If another runtime
    owns the directory, the mission is not run here: an id it owns is
    refused, a new one is handed to it as a ``start`` command and this
    waits for its result in the log."""
    from ..engine._runtime import Runtime

    fn = load_mission(spec)
    if mission_id is None:
        mission_id = uuid.uuid4().hex
        if say is not None:
            say(f"mission id {mission_id}")
    try:
        rt = Runtime(place.data, store=place.store, schema=place.schema, missions=[fn])
    except (DirectoryLockedError, StoreOwnedError, StoreSharedError) as err:
        return _run_on_owner(place, fn, args, mission_id, timeout, err)
    with rt:
        return rt.start(fn, *args, mission_id=mission_id).result(timeout=timeout)


def _run_on_owner(  # noqa: PLR0917
    place: Place, fn: Any, args: list[Any], mission_id: str, timeout: float, err: Any
) -> Any:
    if isinstance(err, StoreSharedError):
        who = f"the shared workers ({', '.join(err.workers[:3])})"
    elif isinstance(err, StoreOwnedError):
        who = err.lease.owner if err.lease is not None else "another runtime"
    else:
        who = err.holder.describe() if err.holder is not None else "another process"
    with open_log(place) as store:
        exists = store.version(PREFIX + mission_id) > 0
    if exists:
        raise AuraError(
            f"mission {mission_id!r} is owned by the runtime of {who}, which runs it; "
            f"follow it with `aura show {mission_id}` or steer it with aura signal/cancel"
        )
    name = mission_definition(fn).name
    number = queue(place, Command("start", mission_id, time.time(), name=name, payload=args))
    deadline = time.monotonic() + timeout
    while True:  # another process does the work: poll the log for its verdict
        with open_log(place) as store:
            if store.version(PREFIX + mission_id):
                summary = summarize(store, mission_id)
                if summary.status in SETTLED_VALUES:
                    break
        if time.monotonic() >= deadline:
            raise AuraError(
                f"mission {mission_id!r} (start command {number}, run by {who}) did not "
                f"finish within {timeout}s; it goes on there"
            )
        time.sleep(0.05)
    if summary.status != "completed":
        raise AuraError(f"mission {mission_id!r} {summary.status}: {summary.detail}")
    with open_log(place) as store:
        return _result_of(store, mission_id)


@dataclass(frozen=True)
class Stats:
    data: str
    missions: int
    by_status: dict[str, int] = field(default_factory=dict)
    events: int = 0
    hot_events: int = 0
    archived_events: int = 0
    audit_entries: int = 0
    commands: int = 0
    commands_delivered: int = 0
    file_bytes: int = 0


def audit_entries(store: EventLog) -> int:
    """Audit entries in the chain (several per ``$audit`` event: one per
    commit), counted as ``audit verify`` counts them; -1 if unreadable."""
    try:
        return sum(len(decode_entries(e.data)) for e in store.read(AUDIT_STREAM, archived=True))
    except (EventStoreError, msgspec.DecodeError, msgspec.ValidationError):
        return -1


def stats(place: Place) -> Stats:
    by_status: dict[str, int] = {}
    events = hot = archived = missions = 0
    with open_log(place) as store:
        for stream in store.streams():
            try:
                info = store.stream_info(stream)
            except EventStoreError:  # its row is damaged: counted, never fatal
                info = None
                if stream.startswith(PREFIX):
                    missions += 1
                    by_status[DAMAGED] = by_status.get(DAMAGED, 0) + 1
            if info is None:
                continue
            events += info.version
            archived += info.archived_upto
            hot += info.version - info.archived_upto
            if stream.startswith(PREFIX):
                missions += 1
                status = summarize_or_damaged(store, stream[len(PREFIX) :]).status
                by_status[status] = by_status.get(status, 0) + 1
        audit = audit_entries(store)
        commands = store.version(COMMANDS)
        delivered = delivered_upto(store) if store.version(COMMANDS_DONE) else 0
    size = 0
    if not place.is_postgres:
        size = sum(f.stat().st_size for f in place.events.iterdir() if f.is_file())
    return Stats(
        place.describe(),
        missions,
        dict(sorted(by_status.items())),
        events,
        hot,
        archived,
        audit,
        commands,
        delivered,
        size,
    )


def schedules(place: Place) -> list[ScheduleView]:
    """Every schedule a runtime registered in the log, as the log shows it."""
    now = time.time()
    with open_log(place) as store:
        return [
            view_of(stream[len(SCHEDULE_PREFIX) :], ScheduleState.read(store, stream), now)
            for stream in sorted(store.streams())
            if stream.startswith(SCHEDULE_PREFIX)
        ]


def pause_schedule(place: Place, name: str, reason: str) -> bool:
    """Pause schedule ``name`` in the log: every runtime stops its ticks (at
    its next poll); False if it was paused."""
    with open_writable(place) as store:
        return pause_in(store, name, reason, time.time())


def resume_schedule(place: Place, name: str) -> bool:
    """Resume schedule ``name`` from now; False if it was not paused."""
    with open_writable(place) as store:
        return resume_in(store, name, time.time())
