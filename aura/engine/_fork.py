"""Fork: a new mission whose history is another's up to event N.

``rt.fork(mission_id, from_position=N, new_id=...)`` copies events 1..N of
the source (archived runs included) into ``mission/<new_id>`` in one
commit, each with an audit entry naming where it came from, then recovers
the new mission by replay: every step whose result is in the copy is
replayed, the rest runs live (with the code deployed now: the way to retry
a failed run from the step before it went wrong, with fixed code).

What the copy leaves out: the inbox numbers of commands the source applied
(they number the source's ``inbox/<id>``, not the fork's, and would make
the fork drop its own first commands) and the source's command numbers.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from eventstore import NewEvent

from ..core._errors import AuraError
from ..core._lifecycle import SETTLED_VALUES
from ..core._messages import (
    STREAM_PREFIX,
    TRANSITION,
    MissionMessage,
    NewRun,
    Signal,
    Transition,
)
from ..governance._audit import AUDITED_KINDS, audit_event, with_audit

_messages = msgspec.msgpack.Decoder(MissionMessage)


def fork_commit(
    store: Any, source: str, from_position: Any, new_id: str, at: float | None = None
) -> tuple[list[Any], tuple[int, bytes] | None]:
    """The commit that creates the fork (``append_many`` entries) and its
    snapshot: the last ``NewRun`` copied (version, data), if any."""
    if isinstance(from_position, bool) or not isinstance(from_position, int) or from_position < 1:
        raise AuraError(f"from_position must be an event number >= 1, got {from_position!r}")
    if not isinstance(new_id, str) or not new_id or "/" in new_id:
        raise AuraError(f"new_id must be a non-empty str without '/', got {new_id!r}")
    last = store.version(STREAM_PREFIX + source)
    if last == 0:
        raise AuraError(f"no mission {source!r} to fork")
    if from_position > last:
        raise AuraError(
            f"mission {source!r} has {last} events: cannot fork from event {from_position}"
        )
    if store.version(STREAM_PREFIX + new_id) > 0:
        raise AuraError(f"mission {new_id!r} already exists: pick another new_id")
    copied = list(store.read(STREAM_PREFIX + source, 1, from_position, archived=True))
    events, entries = [], []
    snapshot: tuple[int, bytes] | None = None
    settled: tuple[int, str] | None = None
    when = time.time() if at is None else at
    run = 1
    for e in copied:
        data = e.data
        if e.kind == "message":
            msg = _messages.decode(data)
            data = msgspec.msgpack.encode(_without_numbers(msg))
            if isinstance(msg, NewRun):
                run, snapshot = msg.run, (e.version, data)
        elif e.kind == TRANSITION:
            t = msgspec.msgpack.decode(data, type=Transition)
            settled = (e.version, t.status) if t.status in SETTLED_VALUES else None
            data = msgspec.msgpack.encode(msgspec.structs.replace(t, inbox=0))
        events.append(NewEvent(e.kind, data))
        if e.kind in AUDITED_KINDS:
            entries.append(
                audit_event(
                    "mission.forked",
                    new_id,
                    run,
                    e.version,
                    when,
                    source=source,
                    source_version=e.version,
                    event_kind=e.kind,
                )
            )
    if settled is not None:
        version, status = settled
        raise AuraError(
            f"mission {source!r} is {status} at event {version}: fork from an event before "
            "it settled"
        )
    return with_audit(STREAM_PREFIX + new_id, events, 0, entries), snapshot


def _without_numbers(msg: Any) -> Any:
    """The message as the fork journals it: no inbox or command numbers."""
    fields: dict[str, Any] = {}
    if hasattr(msg, "inbox") and not isinstance(msg, NewRun):
        fields["inbox"] = 0
    if isinstance(msg, Signal):
        fields["command"] = 0
    if isinstance(msg, NewRun):
        fields.update(last_command=0, last_inbox=0)
    return msgspec.structs.replace(msg, **fields) if fields else msg
