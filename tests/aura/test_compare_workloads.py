"""aura's side of benchmarks/compare.py, small, so that the comparison
cannot rot unnoticed (CI does not install DBOS or LangGraph) and because
each checks real behaviour: in-flight missions all resume after a SIGKILL,
waiting missions take a signal, step results really reach the disk."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from benchmarks._cmp_aura import AuraSystem
from benchmarks.compare import crash_recover, waiting


def test_every_in_flight_mission_resumes_and_finishes_after_a_sigkill() -> None:
    # The child is killed once each of 30 missions has begun a step; the
    # recovering process reports a time only once all 30 ran a step again.
    out = crash_recover("aura", 30)
    assert 0 < out["resumed s"] <= out["finished s"]


def test_waiting_missions_are_parked_and_take_a_signal() -> None:
    out = waiting("aura", 40)  # the child asserts one of them answers a signal
    assert out["park s"] > 0


def test_every_step_result_reaches_the_disk() -> None:
    out = AuraSystem().payload(20, 4096)
    assert out["steps/s"] > 0
    assert out["bytes/step"] >= 4096
