"""Missions the console tests run: real code, real runtime, real log."""

from __future__ import annotations

from typing import Any

import aura

XSS = "<script>window.pwned = 1</script><img src=x onerror=window.pwned=2>"


@aura.step
def plan(topic: str) -> list[str]:
    aura.report_cost(usd=0.01, tokens=120)
    return [topic, f"{topic} again"]


@aura.step
def echo(text: str) -> str:
    return text


@aura.step(retry=aura.NO_RETRY)
def explode(why: str) -> str:
    raise ValueError(f"exploded: {why}")


@aura.mission(budget=aura.Budget(usd=1.0, tokens=10_000))
async def approval(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    steps = await ctx.step(plan, topic)
    ctx.memory["plan"] = steps
    approved = await ctx.wait_signal("approve", timeout=3600)
    done = await ctx.step(echo, f"approved={approved}")
    return {"plan": steps, "done": done}


@aura.mission
async def untrusted(ctx: aura.MissionContext) -> str:
    ctx.memory["note"] = XSS
    return await ctx.step(echo, XSS)


@aura.mission
async def idle(ctx: aura.MissionContext) -> Any:
    return await ctx.wait_signal("never", timeout=3600)


@aura.mission
async def broken(ctx: aura.MissionContext) -> str:
    await ctx.step(echo, "first")
    return await ctx.step(explode, "on purpose")


ALL = [approval, untrusted, idle, broken]


@aura.mission
async def napper(ctx: aura.MissionContext) -> str:
    await ctx.sleep(0.01)
    return await ctx.step(echo, "rested")


ALL.append(napper)
