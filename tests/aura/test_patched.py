"""ctx.patched / ctx.deprecate_patch: code changes while missions are in
flight. The golden log summary_before_patch.json (written by the old code,
tests/aura/golden_missions.py) replays through the old branch; new missions
take the new branch and record it; a crash never flips a branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import aura
from aura import MissionStatus as S
from aura.testing import run_mission
from eventstore import EventStore

from .golden_missions import GOLDEN_DIR, fetch, flaky
from .golden_missions import summary as summary_v2
from .test_golden_logs import import_log, load


def markers(path: Path, mission_id: str) -> list[str]:
    from aura.governance._memory import MEMORY, decode_write

    with EventStore.open(Path(path) / "events", readonly=True) as log:
        writes = [
            decode_write(e.data) for e in log.read(f"mission/{mission_id}") if e.kind == MEMORY
        ]
    return [w.key for w in writes if w.patch]


def test_an_old_history_replays_the_old_branch_and_a_new_mission_takes_the_new(
    tmp_path: Path,
) -> None:
    old = load(GOLDEN_DIR / "summary_before_patch.json")
    import_log(tmp_path, old)
    with aura.Runtime(tmp_path, missions=[summary_v2]) as rt:
        view = rt.wait("golden-summary", timeout=60)
        assert view.status is S.COMPLETED and view.result == old.result  # the old branch
        new = rt.start(summary_v2, "lmdb", mission_id="fresh").result(timeout=60)
        assert new == {"page": "<page lmdb/a>", "title": "LMDB"}  # the new branch
        # (the chain cannot verify here: the golden log was imported without audit entries)
        kinds = [e["kind"] for e in aura.export_audit(rt.store) if e["mission_id"] == "fresh"]
        assert "patch.recorded" in kinds
    assert markers(tmp_path, "golden-summary") == []
    assert markers(tmp_path, "fresh") == ["summary-title-v2"]
    with aura.Runtime(tmp_path, missions=[summary_v2]) as rt:  # both read back as they were
        assert rt.get("fresh").result["title"] == "LMDB"


@aura.mission(name="golden:summary")
async def summary_v3(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    """Later still: only the new branch is left, the patch deprecated."""
    page = await ctx.step(fetch, f"{topic}/a")
    ctx.deprecate_patch("summary-title-v2")
    title = await ctx.step(flaky, topic)
    return {"page": page, "title": title}


def test_a_deprecated_patch_replays_histories_that_recorded_it(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[summary_v2]) as rt:
        rt.start(summary_v2, "lmdb", mission_id="v2").result(timeout=60)
    with aura.Runtime(tmp_path, missions=[summary_v3]) as rt:
        assert rt.get("v2").result["title"] == "LMDB"
        assert rt.start(summary_v3, "x", mission_id="v3").result(timeout=60)["title"] == "X"
    assert markers(tmp_path, "v3") == []


def test_replaying_the_old_history_against_code_without_the_patch_is_refused(
    tmp_path: Path,
) -> None:
    """Deprecating too early (old histories still in flight) is caught: the
    old log does not match the new-branch-only code, and the diff says where."""
    old = load(GOLDEN_DIR / "summary_before_patch.json")
    import_log(tmp_path, old)
    with aura.Runtime(tmp_path, missions=[summary_v3]) as rt:
        view = rt.wait("golden-summary", timeout=60)
        assert view.status is S.DEAD and "not deterministic" in view.error
        assert "golden:fetch" in view.error and "golden:flaky" in view.error


@pytest.mark.parametrize(
    "schedule",
    [
        frozenset({("before_append", 1)}),
        frozenset({("after_append", 2)}),
        frozenset({("in_handler", 2)}),
        frozenset({("in_handler", 3), ("during_recovery", 1)}),
    ],
)
def test_a_crash_never_flips_the_branch(tmp_path: Path, schedule: frozenset[Any]) -> None:
    outcome = run_mission(summary_v2, "lmdb", schedule=schedule, path=tmp_path)
    assert outcome.status == "completed" and not outcome.reruns
    assert outcome.result == {"page": "<page lmdb/a>", "title": "LMDB"}
    assert markers(tmp_path, "checked") == ["summary-title-v2"]
