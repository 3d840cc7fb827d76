"""Missions whose logs are committed under tests/aura/golden/ and replayed in CI.

Regenerate (only when a change to the log format is intended):
    python -m tests.aura.golden_missions
Names are explicit so the logs do not depend on module paths.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

import aura
from eventstore import EventStore

GOLDEN_DIR = Path(__file__).parent / "golden"


class GoldenEvent(msgspec.Struct, frozen=True):
    kind: str
    data: bytes


class GoldenLog(msgspec.Struct, frozen=True):
    mission_id: str
    status: str
    result: Any
    events: list[GoldenEvent]


@aura.step(name="golden:fetch")
def fetch(url: str) -> str:
    return f"<page {url}>"


@aura.step(name="golden:reserve")
def reserve(nights: int) -> dict[str, int]:
    return {"nights": nights}


@aura.step(name="golden:release")
def release(hold: dict[str, int]) -> None:
    return None


@aura.step(name="golden:flaky", retry=aura.RetryPolicy(initial_interval=0.01, max_attempts=3))
def flaky(topic: str) -> str:
    if aura.current_step().attempt < 2:
        raise ConnectionError("first attempt fails")
    return topic.upper()


@aura.mission(name="golden:research")
async def research(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    pages = await ctx.gather(ctx.step(fetch, f"{topic}/a"), ctx.step(fetch, f"{topic}/b"))
    hold = await ctx.step(reserve, 3, compensate=release)
    title = await ctx.step(flaky, topic)
    await ctx.sleep(0.01)
    approved = await ctx.wait_signal("approve", timeout=60)
    return {"pages": pages, "hold": hold, "title": title, "approved": approved}


@aura.mission(name="golden:summary")
async def summary(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    """Today's code: a change made while missions were in flight, behind a patch."""
    page = await ctx.step(fetch, f"{topic}/a")
    if ctx.patched("summary-title-v2"):
        title = await ctx.step(flaky, topic)  # new: a title of its own
    else:
        title = await ctx.step(fetch, f"{topic}/title")  # what the old code did
    return {"page": page, "title": title}


MISSIONS = [research, summary]


def export(store: EventStore, mission_id: str, status: str, result: Any) -> GoldenLog:
    events = [
        GoldenEvent(e.kind, e.data)
        for e in store.read(f"mission/{mission_id}")
        if e.kind != "transition"
    ]
    return GoldenLog(mission_id, status, result, events)


def write_goldens() -> None:
    with tempfile.TemporaryDirectory() as d, aura.Runtime(d, missions=MISSIONS) as rt:
        handle = rt.start(research, "lmdb", mission_id="golden-research")
        rt.signal("golden-research", "approve", True)
        result = handle.result(timeout=30)
        log = export(rt.store, "golden-research", "completed", result)
    GOLDEN_DIR.mkdir(exist_ok=True)
    (GOLDEN_DIR / "research.json").write_bytes(msgspec.json.format(msgspec.json.encode(log)))

    # An older version of the same mission: it fetched other pages. Its log
    # must be refused by today's code as non-deterministic.
    @aura.mission(name="golden:research")
    async def research_v0(ctx: aura.MissionContext, topic: str) -> list[str]:
        pages: list[str] = await ctx.gather(
            ctx.step(fetch, f"{topic}/a"), ctx.step(fetch, f"{topic}/old")
        )
        return pages

    with tempfile.TemporaryDirectory() as d, aura.Runtime(d, missions=[research_v0]) as rt:
        result = rt.start(research_v0, "lmdb", mission_id="golden-old").result(timeout=30)
        log = export(rt.store, "golden-old", "dead", result)
    (GOLDEN_DIR / "research_old_code.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(log))
    )


def write_patch_golden() -> None:
    """The log ``summary`` wrote before ``ctx.patched("summary-title-v2")``
    existed: today's code must replay it through the old branch."""

    @aura.mission(name="golden:summary")
    async def summary_v1(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
        page = await ctx.step(fetch, f"{topic}/a")
        title = await ctx.step(fetch, f"{topic}/title")
        return {"page": page, "title": title}

    with tempfile.TemporaryDirectory() as d, aura.Runtime(d, missions=[summary_v1]) as rt:
        result = rt.start(summary_v1, "lmdb", mission_id="golden-summary").result(timeout=30)
        log = export(rt.store, "golden-summary", "completed", result)
    (GOLDEN_DIR / "summary_before_patch.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(log))
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--patch-only"]:
        write_patch_golden()
        sys.exit(0)
    write_goldens()
    write_patch_golden()
    sys.exit(0)
