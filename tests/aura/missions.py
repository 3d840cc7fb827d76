"""Missions used by the runtime tests (importable by child processes too)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import aura

# Per-test hooks: tests set these before starting a runtime.
GATES: dict[str, threading.Event] = {}
CALLS: list[tuple[str, str]] = []
_calls = threading.Condition()


def record(name: str) -> None:
    with _calls:
        CALLS.append((name, aura.current_step().idempotency_key))
        _calls.notify_all()


def wait_call(call: tuple[str, str], timeout: float = 30) -> None:
    """Block until a step recorded ``call`` (no sleeping: a condition)."""
    with _calls:
        if not _calls.wait_for(lambda: call in CALLS, timeout):
            raise AssertionError(f"{call} did not happen within {timeout}s: {CALLS}")


@aura.step
def add(a: int, b: int) -> int:
    record("add")
    return a + b


@aura.step
async def double(x: int) -> int:
    record("double")
    return 2 * x


@aura.step
def gated(name: str) -> str:
    record("gated")
    gate = GATES.get(name)
    if gate is not None:
        gate.wait(30)
    return f"passed {name}"


@aura.step
def boom(message: str) -> None:
    record("boom")
    raise ValueError(message)


@aura.step(retry=aura.RetryPolicy(max_attempts=3))
def with_retry() -> int:
    return 1


@aura.mission
async def arithmetic(ctx: aura.MissionContext, n: int) -> dict[str, Any]:
    total = 0
    for i in range(n):
        total = await ctx.step(add, total, i)
    doubled = await ctx.gather(*(ctx.step(double, x) for x in (total, 1, 2)))
    return {"total": total, "doubled": doubled, "key_of": ctx.info.mission_id}


@aura.mission
async def waits_at_gate(ctx: aura.MissionContext, gate: str) -> list[Any]:
    first = await ctx.step(add, 1, 2)
    second = await ctx.step(gated, gate)
    third = await ctx.step(add, first, 10)
    return [first, second, third]


@aura.mission
async def fails(ctx: aura.MissionContext, catch: bool) -> str:
    try:
        await ctx.step(boom, "no luck")
    except aura.StepFailedError as err:
        if not catch:
            raise
        return f"recovered from {err.error_type}: {err.error}"
    return "unreachable"


@aura.mission
async def uses_retry(ctx: aura.MissionContext) -> int:
    result: int = await ctx.step(with_retry)
    return result


@aura.mission
async def awaits_asyncio(ctx: aura.MissionContext) -> None:
    import asyncio

    await asyncio.sleep(0)


def effects_file() -> str:
    return os.environ.get("AURA_TEST_EFFECTS", "")


@aura.step
def journal_effect(mission: str, i: int) -> int:
    """Appends its idempotency key to a file (the side effect), then answers."""
    key = aura.current_step().idempotency_key
    with open(effects_file(), "a") as f:
        f.write(f"{key} {os.environ.get('AURA_TEST_INCARNATION', '0')}\n")
        f.flush()
    sys.stdout.write(f"EFFECT {key}\n")  # one write per line: threads do not interleave
    sys.stdout.flush()  # a watching parent counts these instead of polling
    return i * i


@aura.mission
async def many_steps(ctx: aura.MissionContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(journal_effect, ctx.info.mission_id, i)
    return total
