"""Hypothesis: crashes injected anywhere end in the crash-free state.

A caller sends a sequence of messages; crashes are injected at random
journal points (before/after the append, inside the handler, during
recovery, after a snapshot). The caller resends only what the error says was
not journaled. The final state must equal the crash-free run: every message
applied exactly once, in order, and a fresh system recovers the same state.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from actors import POINTS, ActorCrashedError, ActorSystem, ChildSpec, CrashAt, FaultInjector
from eventstore import EventStore

from .ledger_actor import Add, CrashableLedger, Get

SCHEDULES = st.sets(st.tuples(st.sampled_from(POINTS), st.integers(1, 15)), max_size=8)
MESSAGES = st.lists(st.integers(0, 10_000), min_size=1, max_size=14)


def ask_until_recorded(system: ActorSystem, message: object) -> None:
    while True:
        try:
            system.ask("ledger", message)
            return
        except ActorCrashedError as err:
            if err.journaled:
                return  # recorded: recovery applies it, resending would apply it twice


def ask_until_answered(system: ActorSystem, message: object) -> object:
    while True:
        try:
            return system.ask("ledger", message)
        except ActorCrashedError:
            continue


@settings(max_examples=60, deadline=None)
@given(messages=MESSAGES, schedule=SCHEDULES)
def test_crash_schedule_ends_in_the_crash_free_state(
    messages: list[int], schedule: set[tuple[str, int]]
) -> None:
    path = Path(tempfile.mkdtemp(prefix="aura-crash-"))
    try:
        faults = FaultInjector(CrashAt(schedule))
        with (
            EventStore.open(path) as store,
            ActorSystem("p", store=store, faults=faults, max_restarts=10_000, period=1) as system,
        ):
            system.spawn(ChildSpec("ledger", CrashableLedger))
            for value in messages:
                ask_until_recorded(system, Add(value))
            state = ask_until_answered(system, Get())
        assert state == messages, f"crashes injected: {faults.crashes}"
        with EventStore.open(path) as store, ActorSystem("fresh", store=store) as system:
            system.spawn(ChildSpec("ledger", CrashableLedger))
            assert system.ask("ledger", Get()) == messages
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_property_really_injects_crashes() -> None:
    """Guard against a vacuous property: a fixed schedule hits every point."""
    path = Path(tempfile.mkdtemp(prefix="aura-crash-"))
    try:
        schedule = {(p, 2) for p in POINTS}
        faults = FaultInjector(CrashAt(schedule))
        with (
            EventStore.open(path) as store,
            ActorSystem("p", store=store, faults=faults, max_restarts=10_000, period=1) as system,
        ):
            system.spawn(ChildSpec("ledger", CrashableLedger))
            values = list(range(10))
            for value in values:
                ask_until_recorded(system, Add(value))
            assert ask_until_answered(system, Get()) == values
        assert {point for point, _, _ in faults.crashes} == set(POINTS)
    finally:
        shutil.rmtree(path, ignore_errors=True)
