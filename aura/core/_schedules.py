"""Schedules: ``aura.Schedule`` (cron, catch-up policy) and the records of
a schedule's stream ``schedule/<name>``.

``registered`` (the cron and mission in effect, from when ticks count),
``tick`` (the latest tick whose mission was started), ``paused`` and
``resumed``. The mission of a tick has the id ``<name>@<tick, UTC>``, so
starting it again (after a crash, from another runtime) is a no-op:
each tick runs once. Cron expressions are croniter's (five fields, or six
with seconds last), evaluated in UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from croniter import croniter  # type: ignore[import-untyped]

from ._errors import AuraError

SCHEDULE_PREFIX = "schedule/"
REGISTERED, TICK, PAUSED, RESUMED = "registered", "tick", "paused", "resumed"
CATCH_UP = ("all", "latest", "none")
ON_TIME = 60.0
"""Seconds after its time a tick still counts as on time (``catch_up="none"``)."""


def tick_id(schedule: str, tick: float) -> str:
    """The mission id of ``schedule``'s tick at ``tick`` (epoch seconds)."""
    return f"{schedule}@{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(tick))}"


def check_cron(name: str, cron: object) -> str:
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise AuraError(
            f"schedule {name!r}: {cron!r} is not a cron expression (five fields "
            "'min hour day month weekday', or six with seconds last)"
        )
    return cron


def ticks_between(cron: str, after: float, upto: float, limit: int) -> list[float]:
    """The cron's ticks in ``(after, upto]``, at most the last ``limit`` of them."""
    it = croniter(cron, after, ret_type=float)
    found: list[float] = []
    while True:
        tick = float(it.get_next())
        if tick > upto:
            return found
        found.append(tick)
        if len(found) > limit:
            del found[0]


def next_tick(cron: str, after: float) -> float:
    return float(croniter(cron, after, ret_type=float).get_next())


@dataclass(frozen=True)
class Schedule:
    """Start ``mission(ctx, tick, *args)`` once per tick of ``cron`` (UTC;
    ``tick`` is its time in epoch seconds), as mission ``<name>@<tick>``.

    ``catch_up``: what to do about ticks that passed while no runtime was
    up (or the schedule was behind): ``"latest"`` (default) starts only the
    most recent one, ``"all"`` every one (at most ``max_catch_up``, the
    latest), ``"none"`` none (a tick runs only if it is on time, within a
    minute). Ticks while the schedule is paused never run."""

    name: str
    mission: Callable[..., Any]
    cron: str
    args: tuple[Any, ...] = field(default=())
    catch_up: str = "latest"
    max_catch_up: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise AuraError(f"a schedule name is a non-empty str without '/', got {self.name!r}")
        check_cron(self.name, self.cron)
        if self.catch_up not in CATCH_UP:
            raise AuraError(
                f"schedule {self.name!r}: catch_up must be one of {', '.join(CATCH_UP)}, "
                f"got {self.catch_up!r}"
            )
        if (
            isinstance(self.max_catch_up, bool)
            or not isinstance(self.max_catch_up, int)
            or self.max_catch_up < 1
        ):
            raise AuraError(
                f"schedule {self.name!r}: max_catch_up must be an int >= 1, "
                f"got {self.max_catch_up!r}"
            )
        if not isinstance(self.args, tuple):
            raise AuraError(f"schedule {self.name!r}: args must be a tuple, got {self.args!r}")

    @property
    def stream(self) -> str:
        return SCHEDULE_PREFIX + self.name


class Registered(msgspec.Struct, frozen=True):
    cron: str
    mission: str
    at: float
    """Ticks after this time count (the first registration, or a new cron)."""


class Tick(msgspec.Struct, frozen=True):
    at: float
    """The tick (its time) whose mission, and every earlier one's, was handled."""


class Paused(msgspec.Struct, frozen=True):
    at: float
    reason: str = ""


class Resumed(msgspec.Struct, frozen=True):
    at: float


class ScheduleState:
    """The fold of a schedule's stream."""

    def __init__(self) -> None:
        self.version = 0
        self.registered: Registered | None = None
        self.since = 0.0  # ticks after this are due
        self.last_tick: float | None = None
        self.paused: Paused | None = None

    def apply(self, kind: str, data: bytes, version: int) -> None:
        self.version = version
        if kind == REGISTERED:
            self.registered = msgspec.msgpack.decode(data, type=Registered)
            self.since = max(self.since, self.registered.at)
        elif kind == TICK:
            tick = msgspec.msgpack.decode(data, type=Tick).at
            self.last_tick = tick
            self.since = max(self.since, tick)
        elif kind == PAUSED:
            self.paused = msgspec.msgpack.decode(data, type=Paused)
        elif kind == RESUMED:
            self.paused = None
            self.since = max(self.since, msgspec.msgpack.decode(data, type=Resumed).at)

    @classmethod
    def read(cls, store: Any, stream: str) -> ScheduleState:
        state = cls()
        for event in store.read(stream):
            state.apply(event.kind, event.data, event.version)
        return state


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as its log shows it (``rt.schedules()``, ``aura schedules``)."""

    name: str
    cron: str
    mission: str
    paused: bool
    pause_reason: str
    last_tick: float | None
    """The latest tick handled (its mission started), epoch seconds."""
    next_tick: float | None
    """When the next tick is due (None while paused)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "mission": self.mission,
            "paused": self.paused,
            "pause_reason": self.pause_reason,
            "last_tick": self.last_tick,
            "next_tick": self.next_tick,
        }


def view_of(name: str, state: ScheduleState, now: float) -> ScheduleView:
    registered = state.registered
    cron = registered.cron if registered else ""
    upcoming = None
    if registered is not None and state.paused is None:
        upcoming = next_tick(cron, max(state.since, now))
    return ScheduleView(
        name,
        cron,
        registered.mission if registered else "",
        state.paused is not None,
        state.paused.reason if state.paused else "",
        state.last_tick,
        upcoming,
    )
