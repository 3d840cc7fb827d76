"""aura.testing: virtual time, crash schedules as process deaths, the
checker, strategies and the pytest fixtures (used here as a user would)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import aura
from aura.testing import CrashSafetyError, check_crash_safety, run_mission
from aura.testing.strategies import crash_schedules, failure_patterns, signal_orders

from . import missions as m

# The in-process chaos suite: AURA_CHAOS_EXAMPLES=2000 for thousands of schedules.
SLOW = settings(
    max_examples=int(os.environ.get("AURA_CHAOS_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def test_a_virtual_clock_skips_durable_waits(aura_runtime: Callable[..., aura.Runtime]) -> None:
    rt = aura_runtime(missions=[m.sleeper])
    assert rt.start(m.sleeper, 3600.0, mission_id="s").result(timeout=10) >= 3600.0


def test_a_crash_free_run_and_a_crashed_run_end_the_same() -> None:
    clean = run_mission(m.arithmetic, 3)
    assert clean.status == "completed" and clean.crashes == () and clean.restarts == 0
    crashed = check_crash_safety(
        m.arithmetic, 3, schedule={("after_append", 3), ("step_after", 2), ("in_handler", 1)}
    )
    assert len(crashed.crashes) >= 2 and crashed.restarts >= 2
    assert crashed.result == clean.result and crashed.reruns == ()


@SLOW
@given(crash_schedules())
def test_representative_missions_survive_any_schedule(schedule: frozenset[Any]) -> None:
    check_crash_safety(m.arithmetic, 2, schedule=schedule)
    check_crash_safety(m.auto_loop, 8, schedule=schedule)  # continue-as-new
    check_crash_safety(
        m.approval, None, schedule=schedule, signals=[("approve", True), ("note", "n")]
    )
    check_crash_safety(m.sleeper, 30.0, schedule=schedule)  # a durable timer


@SLOW
@given(crash_schedules())
def test_a_saga_survives_any_schedule(schedule: frozenset[Any]) -> None:
    m.SAGA.clear()
    outcome = check_crash_safety(m.trip, False, schedule=schedule)
    assert outcome.status == "failed"


def test_the_checker_finds_non_deterministic_mission_code() -> None:
    with pytest.raises(CrashSafetyError, match="ended dead"):
        check_crash_safety(m.drifts, schedule={("after_append", 3)})


def test_a_side_effect_outside_a_step_shows_up_after_crashes(
    crash_runtime: Callable[..., Any],
) -> None:
    outcome = crash_runtime(m.charges_outside_a_step, 100, schedule={("after_append", 2)})
    assert outcome.crashes  # the step's outcome was journaled, then the process died
    # Clean run: one charge. Crashed run: charged, then again by every replay.
    assert m.CHARGES.count(100) > 2


def test_a_function_that_is_not_a_mission_is_refused() -> None:
    with pytest.raises(aura.DefinitionError):
        run_mission(m.add, 1, 2)


@SLOW
@given(crash_schedules(["store_append", "store_read", "after_append"], max_hit=30))
def test_store_faults_lose_nothing(schedule: frozenset[Any]) -> None:
    check_crash_safety(m.arithmetic, 3, schedule=schedule)


@SLOW
@given(
    signal_orders([("approve", True), ("note", "n"), ("extra", 1)]),
    crash_schedules(max_crashes=2),
)
def test_any_signal_order_under_crashes(order: list[Any], schedule: frozenset[Any]) -> None:
    outcome = check_crash_safety(m.approval, None, schedule=schedule, signals=order)
    assert outcome.result == {"draft": 2, "verdict": True, "note": "n"}


@SLOW
@given(failure_patterns(4), crash_schedules(max_crashes=2))
def test_any_failure_pattern_under_crashes(pattern: list[bool], schedule: frozenset[Any]) -> None:
    outcome = check_crash_safety(m.follows_pattern, pattern, schedule=schedule)
    first_ok = next((i + 1 for i, fails in enumerate(pattern) if not fails), None)
    assert outcome.result == (first_ok if first_ok is not None else "gave up after 4")
