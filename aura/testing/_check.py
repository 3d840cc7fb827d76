"""Run a mission through injected crashes, and compare with a clean run."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import CrashAt, FaultInjector
from eventstore import EventStore, EventStoreError

from ..core._definitions import mission_definition
from ..core._errors import AuraError
from ..core._lifecycle import SETTLED
from ..engine._runtime import Runtime
from ..governance._audit import verify_audit
from ..operating._inspect import journaled_results
from ._clock import VirtualClock
from ._faulty_store import FaultyStore

MISSION_ID = "checked"


class CrashSafetyError(AssertionError):
    """A mission did not end the same with and without crashes."""


@dataclass(frozen=True)
class Outcome:
    status: str
    result: Any
    error: str
    steps: dict[str, Any] = field(default_factory=dict)
    """Recorded results of the steps that succeeded, by idempotency key."""
    crashes: tuple[tuple[str, str, int], ...] = ()
    """(point, where, hit) of each crash injected."""
    restarts: int = 0
    reruns: tuple[str, ...] = ()
    """Steps that ran again after their result was journaled (must be empty)."""
    audit_ok: bool = True


class _Deaths:
    """The fault plan: crash on schedule, and say so (a process died)."""

    def __init__(self, schedule: frozenset[tuple[str, int]]) -> None:
        self._crash = CrashAt(set(schedule))
        self.died = threading.Event()
        self.changed = threading.Condition()
        self.executions: list[tuple[str, int]] = []  # (idempotency key, incarnation)
        self.incarnation = 0

    def __call__(self, point: str, where: str, hit: int) -> bool:
        if point == "step_before":
            self.executions.append((where, self.incarnation))
        crash = self._crash(point, where, hit)
        if crash and not point.startswith("store_"):  # a store fault is an error, not a death
            with self.changed:
                self.died.set()
                self.changed.notify_all()
        return crash


def _journaled_keys(path: Path, mission_id: str) -> dict[str, Any]:
    with EventStore.open(path / "events", readonly=True) as store:
        return journaled_results(store, mission_id)


def run_mission(
    mission: Any,
    *args: Any,
    schedule: frozenset[tuple[str, int]] | set[tuple[str, int]] = frozenset(),
    missions: Sequence[Any] = (),
    tools: Sequence[Any] = (),
    path: str | Path | None = None,
    timeout: float = 60.0,
    signals: Sequence[tuple[str, Any]] = (),
) -> Outcome:
    """Run ``mission(*args)`` to its end, dying at every ``(point, hit)`` of
    ``schedule`` and recovering in a new runtime each time. ``signals`` are
    sent, in order, once it has started."""
    mission_definition(mission)  # a clear error for a function that is not a mission
    own = path is None
    where = Path(tempfile.mkdtemp(prefix="aura-check-")) if own else Path(path)  # type: ignore[arg-type]
    deaths = _Deaths(frozenset(schedule))
    faults = FaultInjector(deaths)
    clock = VirtualClock()
    journaled: dict[int, set[str]] = {}
    unsent = list(signals)
    view: Any = None
    try:
        for incarnation in range(len(schedule) + 2):
            deaths.incarnation = incarnation
            deaths.died.clear()
            if (where / "events").exists():
                journaled[incarnation] = set(_journaled_keys(where, MISSION_ID))
            else:
                journaled[incarnation] = set()
            rt = _open(where, [mission, *missions], tools, faults, clock)
            if rt is None:
                continue  # died while recovering: next incarnation
            try:
                settled = threading.Event()
                if not _start(rt, mission, args, unsent):
                    continue
                waiter = threading.Thread(
                    target=_wait_settled, args=(rt, settled, deaths, timeout), daemon=True
                )
                waiter.start()
                with deaths.changed:
                    deaths.changed.wait_for(
                        lambda done=settled: done.is_set() or deaths.died.is_set(),  # type: ignore[misc]
                        timeout,
                    )
                if not deaths.died.is_set() and settled.is_set():
                    view = rt.get(MISSION_ID)
                    break
                if not deaths.died.is_set():
                    raise CrashSafetyError(f"mission did not finish within {timeout}s")
            finally:
                rt.close()  # a death: everything in flight is dropped
        if view is None:
            raise CrashSafetyError("the mission never finished: it kept crashing")
        final = _journaled_keys(where, MISSION_ID)
        reruns = sorted(
            key for key, inc in deaths.executions if inc in journaled and key in journaled[inc]
        )
        with EventStore.open(where / "events", readonly=True) as store:
            audit_ok = verify_audit(store).ok
        return Outcome(
            view.status.value,
            view.result,
            view.error,
            final,
            tuple(faults.crashes),
            incarnation,
            tuple(reruns),
            audit_ok,
        )
    finally:
        if own:
            shutil.rmtree(where, ignore_errors=True)


def _open(
    where: Path, missions: Sequence[Any], tools: Sequence[Any], faults: Any, clock: Any
) -> Runtime | None:
    from actors import ActorError, SimulatedCrash

    try:
        return Runtime(
            where,
            missions=missions,
            tools=tools,
            faults=faults,
            clock=clock,
            archive_completed_after=None,
            store_wrapper=lambda store: FaultyStore(store, faults),
            max_workers=1,  # sync steps run one at a time, in the order issued
        )
    except (SimulatedCrash, AuraError, ActorError, EventStoreError):
        return None  # died, or the log failed, while recovering: open again


def _start(rt: Runtime, mission: Any, args: tuple[Any, ...], signals: list[Any]) -> bool:
    """Start (idempotent) and send the signals not yet delivered; False if a
    crash hit this (the next incarnation goes on from there)."""
    from actors import ActorError

    try:
        rt.start(mission, *args, mission_id=MISSION_ID)
        while signals:
            name, payload = signals[0]
            try:
                rt.signal(MISSION_ID, name, payload)
            except AuraError:
                if rt.get(MISSION_ID).status in SETTLED:
                    signals.clear()  # it finished before wanting them: nothing to send
                    break
                raise
            signals.pop(0)
    except (AuraError, ActorError):
        return False
    return True


def _wait_settled(rt: Runtime, settled: threading.Event, deaths: _Deaths, timeout: float) -> None:
    try:
        rt.wait(MISSION_ID, timeout)
    except Exception:  # the runtime was closed under us (a death), or it timed out
        return
    with deaths.changed:
        settled.set()
        deaths.changed.notify_all()


def check_crash_safety(
    mission: Any,
    *args: Any,
    schedule: frozenset[tuple[str, int]] | set[tuple[str, int]],
    **options: Any,
) -> Outcome:
    """Run ``mission(*args)`` without and with ``schedule``; raise
    ``CrashSafetyError`` unless both end the same, nothing journaled ran
    again, and the audit chain verifies. Returns the crashed run's outcome."""
    clean = run_mission(mission, *args, **options)
    crashed = run_mission(mission, *args, schedule=schedule, **options)
    problems = []
    if (crashed.status, crashed.result) != (clean.status, clean.result):
        problems.append(
            f"ended {crashed.status} with {crashed.result!r} ({crashed.error}) instead of "
            f"{clean.status} with {clean.result!r}"
        )
    # Step by step when the runs line up (history-based continue-as-new may
    # legitimately cut runs elsewhere after crashes: then the results decide).
    changed = (
        {k: (clean.steps[k], v) for k, v in crashed.steps.items() if clean.steps[k] != v}
        if set(crashed.steps) == set(clean.steps)
        else {}
    )
    if changed:
        problems.append(f"recorded step results differ (clean, crashed): {changed}")
    if crashed.reruns:
        problems.append(f"steps ran again after their result was journaled: {crashed.reruns}")
    if not crashed.audit_ok:
        problems.append("the audit chain does not verify")
    if problems:
        raise CrashSafetyError(
            f"crash schedule {sorted(schedule)!r} (crashes {list(crashed.crashes)!r}):\n  "
            + "\n  ".join(problems)
        )
    return crashed
