"""Missions that publish events and answer queries (tests of item 4 of issue 29)."""

from __future__ import annotations

from typing import Any

import aura


@aura.step
def work(i: int) -> int:
    return i * 10


@aura.mission
async def reporter(ctx: aura.MissionContext, n: int) -> list[int]:
    """Publishes its progress after each step, then waits to be told to finish."""
    done: list[int] = []
    ctx.set_query_handler("done", lambda: list(done))
    ctx.set_query_handler("plus", lambda a, b: [len(done), a + b])
    ctx.set_query_handler("boom", lambda: 1 / 0)
    ctx.set_query_handler("writes", lambda: ctx.memory.__setitem__("x", 1))
    ctx.set_query_handler("steps", lambda: ctx.step(work, 99))
    ctx.set_query_handler("unencodable", object)
    ctx.set_event("status", "planning")
    for i in range(n):
        done.append(await ctx.step(work, i))
        ctx.set_event("progress", {"done": i + 1, "of": n})
    ctx.set_event("status", "waiting for go")
    go = await ctx.wait_signal("go")
    ctx.set_event("status", f"finished ({go})")
    ctx.set_event("result", done)
    return done


@aura.mission
async def publish_then_wait(ctx: aura.MissionContext) -> Any:
    ctx.set_event("ready", True)
    return await ctx.wait_signal("go")
