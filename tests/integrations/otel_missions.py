"""Missions for the OpenTelemetry tests (tests/integrations/test_otel.py, otel_node.py)."""

from __future__ import annotations

import collections
import threading
from typing import Any

import structlog
from opentelemetry import trace

import aura

FLAKY: collections.Counter[str] = collections.Counter()
INSIDE: dict[str, str] = {}
"""Step name -> the span id current while its body ran (hex)."""
REACHED: collections.defaultdict[str, threading.Event] = collections.defaultdict(threading.Event)


def _note(name: str) -> None:
    INSIDE[name] = format(trace.get_current_span().get_span_context().span_id, "016x")


@aura.step(name="plan")
def plan(goal: str) -> str:
    _note("plan")
    return f"plan for {goal}"


@aura.step(name="flaky", retry=aura.RetryPolicy(initial_interval=0.0, max_attempts=3))
def flaky(key: str) -> str:
    FLAKY[key] += 1
    if FLAKY[key] == 1:
        raise ConnectionError("first attempt fails")
    aura.report_cost(usd=0.25, tokens=40)
    return "ok"


TELEMETRY: dict[str, Any] = {}
"""The test's OpenTelemetry instance (its structlog processor), under "otel"."""


@aura.step(name="logs")
def logs(mission_id: str) -> str:
    """Logs through a structlog logger of its own, with the trace ids processor."""
    lines: list[dict[str, Any]] = []

    def keep(_logger: Any, _method: str, event: dict[str, Any]) -> str:
        lines.append(event)
        return ""

    log = structlog.wrap_logger(
        structlog.ReturnLogger(), processors=[TELEMETRY["otel"].add_trace_ids, keep]
    )
    log.info("inside the step", mission_id=mission_id)
    _note("logs")
    return str(lines[0].get("span_id", ""))


@aura.step(name="reached")
def reached(mission_id: str) -> None:
    REACHED[mission_id].set()


@aura.step(name="book")
def book(what: str) -> str:
    return f"booked {what}"


@aura.step(name="unbook")
def unbook(what: str) -> None:
    return None


@aura.step(name="refuse", retry=aura.RetryPolicy(max_attempts=1))
def refuse(what: str) -> None:
    raise ValueError(f"no {what}")


@aura.mission(name="agent")
async def agent(ctx: aura.MissionContext, goal: str) -> dict[str, Any]:
    planned = await ctx.step(plan, goal)
    logged = await ctx.step(logs, ctx.info.mission_id)
    fetched = await ctx.step(flaky, ctx.info.mission_id)
    await ctx.step(reached, ctx.info.mission_id)
    verdict = await ctx.wait_signal("approve")
    return {"plan": planned, "fetched": fetched, "verdict": verdict, "logged": logged}


@aura.mission(name="child")
async def child(ctx: aura.MissionContext, x: int) -> int:
    await ctx.step(plan, f"child {x}")
    return 2 * x


@aura.mission(name="parent")
async def parent(ctx: aura.MissionContext) -> list[int]:
    return list(await ctx.gather(*(ctx.start_child(child, i) for i in range(2))))


@aura.mission(name="saga")
async def saga(ctx: aura.MissionContext) -> None:
    await ctx.step(book, "flight", compensate=unbook)
    await ctx.step(refuse, "hotel")


ALL = [agent, child, parent, saga]
