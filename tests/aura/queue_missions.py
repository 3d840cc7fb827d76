"""Missions for the queue tests (tests/aura/test_queues.py, children/queue_node.py)."""

from __future__ import annotations

from typing import Any

import aura


@aura.step
def note(mission_id: str) -> str:
    return f"ran {mission_id}"


@aura.mission(name="queued-gate")
async def gate(ctx: aura.MissionContext) -> str:
    """Runs once it has a slot, then holds it until signalled ``go``."""
    await ctx.wait_signal("go")
    return str(await ctx.step(note, ctx.info.mission_id))


@aura.mission(name="queued-quick")
async def quick(ctx: aura.MissionContext, i: int) -> int:
    await ctx.step(note, ctx.info.mission_id)
    return i


@aura.mission(name="enqueuer")
async def enqueuer(ctx: aura.MissionContext, n: int) -> list[Any]:
    ids = [await ctx.enqueue("q", quick, i) for i in range(n)]
    try:
        await ctx.enqueue("q", gate, dedup_id="once")  # holds the id until released
        await ctx.enqueue("q", gate, dedup_id="once")
    except aura.QueueDeduplicatedError as err:
        ids.append(f"dedup {err.dedup_id} held by {err.mission_id}")
    return ids


ALL = [gate, quick, enqueuer]
