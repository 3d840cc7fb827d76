"""The out-of-process chaos soak with a small budget (benchmarks/soak.py runs
it big): missions of every kind in a child runtime SIGKILLed at random
moments until all finish. No mission lost, no step re-run after its result
was journaled."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from benchmarks.soak import soak


def test_a_small_soak_loses_nothing_and_duplicates_nothing() -> None:
    seed = int(os.environ.get("AURA_CRASH_SEED", "5"))
    result = soak(
        missions=25, kills=int(os.environ.get("AURA_SOAK_KILLS", "10")), seed=seed, budget=120
    )
    assert result["kills"] > 0
    assert result["lost"] == []
    assert result["duplicates"] == []
