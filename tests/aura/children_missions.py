"""Missions with child missions (``ctx.start_child``), for tests/aura/test_children.py."""

from __future__ import annotations

import collections
import threading
from typing import Any

import aura

from .missions import gated


@aura.step
def triple(x: int) -> int:
    return 3 * x


@aura.step
def costly(usd: float) -> str:
    aura.report_cost(usd=usd)
    return "spent"


@aura.mission
async def tripled(ctx: aura.MissionContext, x: int) -> int:
    return int(await ctx.step(triple, x))


@aura.mission
async def fan_out(ctx: aura.MissionContext, n: int) -> list[int]:
    return list(await ctx.gather(*(ctx.start_child(tripled, i) for i in range(n))))


@aura.mission
async def broken(ctx: aura.MissionContext, why: str) -> None:
    raise ValueError(why)


@aura.mission
async def catches(ctx: aura.MissionContext) -> dict[str, Any]:
    try:
        await ctx.start_child(broken, "no luck", mission_id="broken-kid")
    except aura.ChildMissionError as err:
        return {"id": err.mission_id, "status": err.status, "error": err.error}
    return {}


REACHED: collections.defaultdict[str, threading.Event] = collections.defaultdict(threading.Event)
"""Set when a waiter mission has started (its first step ran): a test may
then wait on it by id (a child starts after its parent's command is durable)."""


@aura.step
def reached(mission_id: str) -> None:
    REACHED[mission_id].set()


@aura.mission
async def waiter(ctx: aura.MissionContext) -> Any:
    await ctx.step(reached, ctx.info.mission_id)
    return await ctx.wait_signal("go")


@aura.mission
async def awaits_waiter(ctx: aura.MissionContext, policy: str) -> Any:
    return await ctx.start_child(waiter, mission_id="w", parent_close=policy)


@aura.mission
async def leaves_waiter(ctx: aura.MissionContext, policy: str) -> str:
    """Starts a child and ends without awaiting it."""
    ctx.start_child(waiter, mission_id="w", parent_close=policy)
    return "done"


@aura.mission
async def grandparent(ctx: aura.MissionContext) -> Any:
    return await ctx.start_child(awaits_waiter, "cancel", mission_id="mid")


@aura.mission
async def spends(ctx: aura.MissionContext, usd: float) -> str:
    return str(await ctx.step(costly, usd))


@aura.mission
async def pays_for_children(ctx: aura.MissionContext) -> str:
    kids = [ctx.start_child(spends, 0.4), ctx.start_child(spends, 0.4)]
    await ctx.step(gated, "pay")  # a step keeps it RUNNING while the outcomes come in
    await ctx.gather(*kids)
    return str(await ctx.step(costly, 0.01))


@aura.mission
async def same_id_twice(ctx: aura.MissionContext, second: int) -> Any:
    first = await ctx.start_child(tripled, 1, mission_id="shared-kid")
    try:
        again = await ctx.start_child(tripled, second, mission_id="shared-kid")
    except aura.ChildMissionError as err:
        return [first, err.status]
    return [first, again]


@aura.mission
async def continues_with_child(ctx: aura.MissionContext, round_: int) -> str:
    if round_ == 0:
        ctx.start_child(waiter, mission_id="w")
        ctx.continue_as_new(1)
    return "second run"


ALL = [
    tripled,
    fan_out,
    broken,
    catches,
    waiter,
    awaits_waiter,
    leaves_waiter,
    grandparent,
    spends,
    pays_for_children,
    same_id_twice,
    continues_with_child,
]
