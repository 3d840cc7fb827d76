"""Many missions handle a delivery batch while its commit is in flight
(``MissionActor.speculative_handling``). A step is still only issued once
the result it follows is durable, and a batch whose commit fails is undone
and delivered again: nothing lost, nothing run ahead of the log."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import aura
from actors import CrashAt, FaultInjector, MessageRejectedError
from aura.testing._faulty_store import FaultyStore

from . import missions as m
from .test_crash_injection import recorded_steps


def start(rt: aura.Runtime, mission_id: str, steps: int) -> aura.MissionHandle:
    """Start, again if a failed commit took the Start with it (a group
    commit fails for every caller in it; nothing was written)."""
    for _ in range(5):
        try:
            return rt.start(m.chain, "spec", steps, mission_id=mission_id)
        except MessageRejectedError:
            continue
    raise AssertionError(f"{mission_id} could not be started")


def run_chains(data: Path, schedule: set[tuple[str, int]], missions: int, steps: int) -> list[str]:
    """Run ``missions`` chains of ``steps`` steps with crashes injected at
    ``schedule``, check every invariant, and return the points that fired."""
    faults = FaultInjector(CrashAt(schedule))
    m.FOLLOWED.clear()
    with aura.Runtime(
        data,
        missions=[m.chain],
        faults=faults,
        store_wrapper=lambda store: FaultyStore(store, faults),
        max_workers=4,
    ) as rt:
        m.LOGS["spec"] = rt.store
        handles = [start(rt, f"c{i}", steps) for i in range(missions)]
        results = [h.result(timeout=120) for h in handles]
        assert results == [sum(range(steps))] * missions, faults.crashes
        assert rt.verify_audit().ok
    # Every step after the first checked the log when it ran: the result it
    # follows was always there already.
    assert len(m.FOLLOWED) >= missions * (steps - 1)
    assert [key for key, durable in m.FOLLOWED if not durable] == []
    for i in range(missions):
        assert set(recorded_steps(data, f"c{i}")) == set(range(steps))
    return sorted(point for point, _, _ in faults.crashes)


def test_failed_batch_commits_lose_nothing_and_no_step_runs_ahead_of_the_log(
    tmp_path: Path,
) -> None:
    # Three delivery batches fail to commit after they were handled, and two
    # missions crash right after a message of theirs was journaled.
    schedule = {("store_commit", 1), ("store_commit", 4), ("store_commit", 9)}
    schedule |= {("after_append", 150), ("after_append", 600)}
    fired = run_chains(tmp_path, schedule, missions=40, steps=20)
    assert fired == ["after_append"] * 2 + ["store_commit"] * 3


POINTS = st.sampled_from(["store_commit", "store_append", "before_append", "after_append"])


@settings(max_examples=10, deadline=None)
@given(schedule=st.sets(st.tuples(POINTS, st.integers(1, 120)), max_size=4))
def test_crashes_anywhere_in_concurrent_delivery_change_nothing(
    schedule: set[tuple[str, int]],
) -> None:
    data = Path(tempfile.mkdtemp(prefix="aura-spec-"))
    try:
        run_chains(data, schedule, missions=12, steps=12)
    finally:
        shutil.rmtree(data, ignore_errors=True)
