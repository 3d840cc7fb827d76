"""The replay debugger: rebuild a mission from its log, event by event.

``replay(path, mission_id, to=None, app=None)`` reads the mission's whole
history (archived runs included) and returns one ``ReplayStep`` per event:
what the event was and the mission's state after it (status, memory, cost,
steps completed). Without code it derives that state from the log alone.
With ``app`` (a module that defines the mission, or the missions
themselves) it replays the log through the real mission code in a sandbox
(an in-memory copy of the log; steps, timers and tools are never run) and
adds the commands the code issued at each event; the first time the code
issues something other than what the log recorded, the step carries the
``NonDeterminismError`` diff and ``divergence`` points at it. Usable under
pdb or in a notebook; ``aura replay`` prints it.
"""

from __future__ import annotations

import importlib
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from actors import ActorStartError, ActorSystem, ChildSpec
from eventstore import EventLog, MemoryEventStore, NewEvent, RecordedEvent

from ..core._definitions import MissionDef, mission_definition
from ..core._errors import AuraError
from ..core._messages import TRANSITION, MissionMessage, NewRun, StepDone, Transition
from ..engine._mission_actor import MissionActor
from ..engine._place import Place
from ..governance._audit import AUDIT_STREAM
from ..governance._gateway import ToolGateway
from ..governance._memory import MEMORY, decode_write, fold
from ._inspect import PREFIX, describe, open_log
from ._progress import Progress


@dataclass(frozen=True)
class ReplayStep:
    version: int
    kind: str
    summary: str
    status: str
    memory: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    cost_tokens: int = 0
    steps_completed: int = 0
    run: int = 1
    commands: tuple[str, ...] = ()
    """Commands the code issued while handling this event (code replay only)."""
    error: str = ""


@dataclass(frozen=True)
class Replay:
    mission_id: str
    with_code: bool
    steps: list[ReplayStep]
    divergence: ReplayStep | None = None
    """The first event at which the code did not do what the log recorded."""


_decoder = msgspec.msgpack.Decoder(MissionMessage)


def replay(
    path: str | Path | Place,
    mission_id: str,
    *,
    to: int | None = None,
    app: str | Sequence[Any] | None = None,
) -> Replay:
    """Rebuild ``mission_id`` from the log of data directory ``path`` (or a
    :class:`Place`, e.g. a PostgreSQL store), up to
    event ``to`` (all of it by default); with ``app``, through its code."""
    if to is not None and (isinstance(to, bool) or not isinstance(to, int) or to < 1):
        raise AuraError(f"replay to= must be an event number >= 1, got {to!r}")
    place = path if isinstance(path, Place) else Place.of(path)
    with open_log(place) as store:
        events = replay_events(store, place.describe(), mission_id, to)
    if app is None:
        return Replay(mission_id, False, _from_log(events))
    definitions = _definitions(app)
    progress = Progress(f"replaying {mission_id}", len(events))
    try:
        steps = _with_code(mission_id, events, definitions, progress)
    finally:
        progress.close()
    divergence = next((s for s in steps if s.error), None)
    return Replay(mission_id, True, steps, divergence)


def replay_events(
    store: EventLog, where: str, mission_id: str, to: int | None
) -> list[RecordedEvent]:
    """The events of ``mission_id`` up to event ``to`` (all if None), archived
    runs included, from an open log; ``AuraError`` for an unknown mission or
    a position past its last event."""
    stream = PREFIX + mission_id
    last = store.version(stream)
    if last == 0:
        raise AuraError(f"no mission {mission_id!r} in {where}")
    if to is not None and to > last:
        raise AuraError(f"mission {mission_id!r} has {last} events: cannot replay to event {to}")
    return [e for e in store.read(stream, archived=True) if to is None or e.version <= to]


def replay_from_log(store: EventLog, where: str, mission_id: str, to: int | None = None) -> Replay:
    """``replay`` without code, from an open log."""
    if to is not None and (isinstance(to, bool) or not isinstance(to, int) or to < 1):
        raise AuraError(f"replay to= must be an event number >= 1, got {to!r}")
    return Replay(mission_id, False, _from_log(replay_events(store, where, mission_id, to)))


def _from_log(events: list[RecordedEvent]) -> list[ReplayStep]:
    status, run, steps_done = "pending", 1, 0
    usd, tokens = 0.0, 0
    writes = []
    out = []
    for e in events:
        if e.kind == TRANSITION:
            status = msgspec.msgpack.decode(e.data, type=Transition).status
        elif e.kind == MEMORY:
            writes.append(decode_write(e.data))
        elif e.kind == "message":
            msg = _decoder.decode(e.data)
            if isinstance(msg, StepDone):
                usd, tokens = usd + msg.cost_usd, tokens + msg.cost_tokens
                steps_done += msg.ok
            elif isinstance(msg, NewRun):
                run, steps_done, writes = msg.run, 0, [*_as_writes(msg.memory)]
        d = describe(e)
        out.append(
            ReplayStep(
                e.version,
                d["kind"],
                d.get("summary", ""),
                status,
                fold(writes),
                usd,
                tokens,
                steps_done,
                run,
            )
        )
    return out


def _as_writes(memory: dict[str, Any]) -> list[Any]:
    from ..governance._memory import MemoryWrite

    return [MemoryWrite(k, v) for k, v in memory.items()]


def _definitions(app: str | Sequence[Any]) -> dict[str, MissionDef]:
    found: dict[str, MissionDef] = {}
    items: list[Any]
    if isinstance(app, str):
        if "" not in sys.path:
            sys.path.insert(0, "")
        try:
            module = importlib.import_module(app)
        except Exception as err:
            raise AuraError(f"cannot import {app!r}: {type(err).__name__}: {err}") from err
        items = list(vars(module).values())
    else:
        items = list(app)
    for item in items:
        try:
            definition = mission_definition(item)
        except AuraError:
            continue
        found[definition.name] = definition
    if not found:
        raise AuraError(f"no @aura.mission found in {app!r}")
    return found


class _Sandbox:
    """What a mission actor needs of a runtime, with every effect disabled."""

    def __init__(self, definitions: dict[str, MissionDef]) -> None:
        self._definitions = definitions
        self._gateway = ToolGateway(secrets.token_bytes(32))
        self._history_limit = 10**9
        self._max_recovery_attempts = 10**9
        self._telemetry = None  # a replay tells nobody
        self._steps = self

    def submit(self, job: Any) -> None:
        """Steps never run in a replay."""

    def call(self, fn: Callable[[], None]) -> None:
        """Nor does anything else."""

    def _arm_timer(self, *args: Any) -> None: ...
    def _settled(self, mission_id: str) -> None: ...
    def _unsettled(self, mission_id: str) -> None: ...
    def _mark_damaged(self, mission_id: str, err: BaseException) -> None: ...
    def _status_changed(self) -> None: ...
    def _compact_later(self, stream: str, up_to: int) -> None: ...
    def _start_child(self, job: Any) -> None: ...
    def _check_parent(self, mission_id: str, parent: str) -> None: ...
    def _cancel_children(self, mission_ids: list[str], why: str) -> None: ...
    def _enqueue_for(self, job: Any) -> None: ...


class _Probe(MissionActor):
    """A mission actor that records its state after every replayed event."""

    def __init__(self, sandbox: Any, mission_id: str, events: list[RecordedEvent]) -> None:
        super().__init__(sandbox, mission_id)
        self._described = {e.version: describe(e) for e in events}
        self.timeline: list[ReplayStep] = []
        self.progress: Progress | None = None
        self._seen_commands = 0
        self._seen_error = ""

    def handle(self, message: Any) -> Any:
        try:
            return super().handle(message)
        finally:
            self._record(self.version)

    def replay_other(self, event: RecordedEvent) -> None:
        super().replay_other(event)
        self.version = event.version
        self._record(event.version)

    def _record(self, version: int) -> None:
        d = self._described.get(version)
        if d is None:
            return
        if self.progress is not None:
            self.progress.advance()
        issued = tuple(c.fingerprint for c in self.commands[self._seen_commands :])
        self._seen_commands = len(self.commands)
        error = self.error if self.status.value == "dead" and self.error != self._seen_error else ""
        if error:
            self._seen_error = error
        self.timeline.append(
            ReplayStep(
                version,
                d["kind"],
                d.get("summary", ""),
                self.status.value,
                self.memory.snapshot(),
                self.cost_usd,
                self.cost_tokens,
                len(self.results),
                self.run,
                issued,
                error,
            )
        )

    def _reset_run(self) -> None:
        super()._reset_run()
        self._seen_commands = 0


def _with_code(
    mission_id: str,
    events: list[RecordedEvent],
    definitions: dict[str, MissionDef],
    progress: Progress,
) -> list[ReplayStep]:
    store = MemoryEventStore(chained=(AUDIT_STREAM,))
    stream = PREFIX + mission_id
    for e in events:  # a private copy: the real log is never written
        store.append(stream, [NewEvent(e.kind, e.data)])
    sandbox = _Sandbox(definitions)
    probe = _Probe(sandbox, mission_id, events)
    probe.progress = progress
    with ActorSystem("replay", store=store) as system:
        try:
            system.spawn(ChildSpec(stream, lambda: probe, threaded=False, restart="temporary"))
        except ActorStartError as err:
            raise AuraError(f"replaying mission {mission_id!r} crashed: {err.__cause__}") from err
    return probe.timeline
