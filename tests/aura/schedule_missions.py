"""Missions for the schedule tests (tests/aura/test_schedules.py, children/schedule_node.py)."""

from __future__ import annotations

import sys

import aura


@aura.step
def announce(mission_id: str) -> str:
    sys.stdout.write(f"TICK {mission_id}\n")  # one write per line: a watching parent counts them
    sys.stdout.flush()
    return mission_id


@aura.mission(name="on-tick")
async def on_tick(ctx: aura.MissionContext, tick: float, label: str) -> list[object]:
    return [tick, label, await ctx.step(announce, ctx.info.mission_id)]
