"""A mission whose third step is broken until the test fixes it (fork tests)."""

from __future__ import annotations

from typing import Any

import aura

BROKEN = {"value": True}
RAN: list[str] = []


@aura.step
def gather_facts(topic: str) -> str:
    RAN.append(f"gather {aura.current_step().idempotency_key}")
    return f"facts about {topic}"


@aura.step
def draft(facts: str) -> str:
    RAN.append(f"draft {aura.current_step().idempotency_key}")
    return f"draft from {facts}"


@aura.step(retry=aura.NO_RETRY)
def publish(text: str) -> str:
    RAN.append(f"publish {aura.current_step().idempotency_key}")
    if BROKEN["value"]:
        raise ValueError("the publisher rejects it")
    return f"published: {text}"


@aura.mission
async def article(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    facts = await ctx.step(gather_facts, topic)
    ctx.memory["facts"] = facts
    text = await ctx.step(draft, facts)
    return {"out": await ctx.step(publish, text)}
