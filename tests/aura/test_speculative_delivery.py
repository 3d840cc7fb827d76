"""Many missions handle a delivery batch while its commit is in flight
(``MissionActor.speculative_handling``). A step is still only issued once
the result it follows is durable, and a batch whose commit fails is undone
and delivered again: nothing lost, nothing run ahead of the log."""

from __future__ import annotations

from pathlib import Path

import aura
from actors import CrashAt, FaultInjector, MessageRejectedError
from aura.testing._faulty_store import FaultyStore

from . import missions as m
from .test_crash_injection import recorded_steps

MISSIONS, STEPS = 40, 20


def start(rt: aura.Runtime, mission_id: str) -> aura.MissionHandle:
    """Start, again if a failed commit took the Start with it (a group
    commit fails for every caller in it; nothing was written)."""
    for _ in range(3):
        try:
            return rt.start(m.chain, "spec", STEPS, mission_id=mission_id)
        except MessageRejectedError:
            continue
    raise AssertionError(f"{mission_id} could not be started")


def test_failed_batch_commits_lose_nothing_and_no_step_runs_ahead_of_the_log(
    tmp_path: Path,
) -> None:
    # Three delivery batches fail to commit after they were handled, and two
    # missions crash right after a message of theirs was journaled.
    schedule = {("store_commit", 1), ("store_commit", 4), ("store_commit", 9)}
    schedule |= {("after_append", 150), ("after_append", 600)}
    faults = FaultInjector(CrashAt(schedule))
    m.FOLLOWED.clear()
    with aura.Runtime(
        tmp_path,
        missions=[m.chain],
        faults=faults,
        store_wrapper=lambda store: FaultyStore(store, faults),
        max_workers=4,
    ) as rt:
        m.LOGS["spec"] = rt.store
        handles = [start(rt, f"c{i}") for i in range(MISSIONS)]
        results = [h.result(timeout=120) for h in handles]
        assert results == [sum(range(STEPS))] * MISSIONS, faults.crashes
        assert rt.verify_audit().ok
    injected = sorted(point for point, _, _ in faults.crashes)
    assert injected == ["after_append"] * 2 + ["store_commit"] * 3
    # Every step after the first checked the log when it ran: the result it
    # follows was always there already.
    assert len(m.FOLLOWED) >= MISSIONS * (STEPS - 1)
    assert [key for key, durable in m.FOLLOWED if not durable] == []
    for i in range(MISSIONS):
        assert set(recorded_steps(tmp_path, f"c{i}")) == set(range(STEPS))
