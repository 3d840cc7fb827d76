"""The runtime's side of schedules: start each tick's mission once.

One ``ScheduleRunner`` per ``aura.Schedule`` a runtime knows. At open, at
each tick (a timer armed for the next one) and when its stream changes (a
pause or resume from the CLI, another runtime's tick), it folds the
schedule's stream and starts the missions of the ticks due since the last
one handled, as the catch-up policy says, then records the latest tick.
Starting comes first and is idempotent per id (``<name>@<tick>``): a crash
before the record, or two runtimes doing the same tick, start it once.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Protocol

import msgspec

from actors import ActorError
from eventstore import ConcurrencyError, EventStoreError, NewEvent

from ..core._definitions import mission_definition
from ..core._errors import AuraError
from ..core._schedules import (
    ON_TIME,
    PAUSED,
    REGISTERED,
    RESUMED,
    TICK,
    Paused,
    Registered,
    Resumed,
    Schedule,
    ScheduleState,
    ScheduleView,
    Tick,
    next_tick,
    tick_id,
    ticks_between,
    view_of,
)
from ._host import BackgroundHost


class ScheduleHost(BackgroundHost, Protocol):
    def start(self, mission: Any, *args: Any, mission_id: str | None = None) -> Any: ...


class ScheduleRunner:
    def __init__(self, host: ScheduleHost, schedule: Schedule) -> None:
        self.host = host
        self.schedule = schedule
        self.mission_name = mission_definition(schedule.mission).name
        self.state = ScheduleState()
        self._lock = threading.Lock()
        self._armed_for: float | None = None

    def refresh(self) -> None:
        state = self.state
        for event in self.host.store.read(self.schedule.stream, state.version + 1):
            state.apply(event.kind, event.data, event.version)

    def _append(self, kind: str, record: msgspec.Struct) -> bool:
        """Append at the version decided on; False if another writer moved it."""
        data = msgspec.msgpack.encode(record)
        try:
            version = self.host.store.append(
                self.schedule.stream, [NewEvent(kind, data)], expected_version=self.state.version
            )
        except ConcurrencyError:
            return False
        self.state.apply(kind, data, version)
        return True

    def register(self) -> None:
        """At open: record the cron and mission in effect (once, or when
        changed: ticks count from then)."""
        with self._lock:
            while True:
                self.refresh()
                known = self.state.registered
                if known is not None and (known.cron, known.mission) == (
                    self.schedule.cron,
                    self.mission_name,
                ):
                    return
                if self._append(
                    REGISTERED,
                    Registered(self.schedule.cron, self.mission_name, self.host._clock()),
                ):
                    return

    def run_due(self) -> None:
        """Start what is due, record it, arm the timer for the next tick."""
        host, schedule = self.host, self.schedule
        if host._closed:
            return
        with self._lock:
            self.refresh()
            state = self.state
            if state.paused is not None:
                return  # resume() runs it again
            now = host._clock()
            due = ticks_between(schedule.cron, state.since, now, schedule.max_catch_up)
            if due:
                for tick in self._chosen(due, now):
                    try:
                        host.start(
                            schedule.mission,
                            tick,
                            *schedule.args,
                            mission_id=tick_id(schedule.name, tick),
                        )
                    except ActorError:
                        return  # closing: the next runtime starts it (same id)
                    except AuraError as err:  # e.g. that id is another mission's: skip it
                        host.system.log.error(
                            "schedule.start_failed",
                            schedule=schedule.name,
                            tick=tick,
                            error=str(err),
                        )
                host.system.faults.check("schedule_started", schedule.stream)
                while not self._append(TICK, Tick(due[-1])):
                    self.refresh()  # another runtime recorded a tick: keep the later one
                    if state.last_tick is not None and state.last_tick >= due[-1]:
                        break
            self._arm(next_tick(schedule.cron, max(state.since, now)))

    def _chosen(self, due: list[float], now: float) -> list[float]:
        policy = self.schedule.catch_up
        if policy == "all":
            return due
        if policy == "latest":
            return due[-1:]
        return [t for t in due[-1:] if now - t <= ON_TIME]  # "none": only if on time

    def _arm(self, at: float) -> None:
        if self._armed_for is not None and self._armed_for <= at:
            return  # a timer for then (or earlier) is armed
        self._armed_for = at
        delay = max(0.0, at - self.host._clock()) + 0.001

        def due() -> None:
            if self._armed_for == at:
                self._armed_for = None
            self.host._steps.call(self.run_due)

        with contextlib.suppress(ActorError):
            self.host.system.call_later(delay, due)

    def poll(self) -> None:
        """The stream moved (a pause or resume from elsewhere): act on it."""
        try:
            if self.host.store.version(self.schedule.stream) != self.state.version:
                self.run_due()
        except EventStoreError as err:
            self.host.system.log.error(
                "schedule.poll_failed", schedule=self.schedule.name, error=str(err)
            )

    def view(self) -> ScheduleView:
        with self._lock:
            self.refresh()
            return view_of(self.schedule.name, self.state, self.host._clock())


def pause_in(store: Any, name: str, reason: str, at: float) -> bool:
    """Record a pause of schedule ``name`` (False: it was paused already)."""
    stream = "schedule/" + name
    while True:
        state = ScheduleState.read(store, stream)
        if state.registered is None:
            raise AuraError(f"no schedule {name!r} (none was ever registered by a runtime)")
        if state.paused is not None:
            return False
        data = msgspec.msgpack.encode(Paused(at, reason))
        try:
            store.append(stream, [NewEvent(PAUSED, data)], expected_version=state.version)
            return True
        except ConcurrencyError:
            continue


def resume_in(store: Any, name: str, at: float) -> bool:
    """Record a resume of schedule ``name``: ticks from now on run, none of
    the pause's (False: it was not paused)."""
    stream = "schedule/" + name
    while True:
        state = ScheduleState.read(store, stream)
        if state.registered is None:
            raise AuraError(f"no schedule {name!r} (none was ever registered by a runtime)")
        if state.paused is None:
            return False
        data = msgspec.msgpack.encode(Resumed(at))
        try:
            store.append(stream, [NewEvent(RESUMED, data)], expected_version=state.version)
            return True
        except ConcurrencyError:
            continue
