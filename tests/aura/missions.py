"""Missions used by the runtime tests (importable by child processes too)."""

from __future__ import annotations

import os
import sys
import threading
import time
from itertools import pairwise
from typing import Any

import msgspec

import aura
from aura.core._messages import MissionMessage, StepDone

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


BARRIERS: dict[str, threading.Barrier] = {}


@aura.step
def meet(name: str) -> int:
    """Wait for the other steps meeting at barrier ``name``: it breaks
    unless they all run at once."""
    return BARRIERS[name].wait()


@aura.step
def boom(message: str) -> None:
    record("boom")
    raise ValueError(message)


FLAKY: dict[str, list[int]] = {}


@aura.step(retry=aura.RetryPolicy(initial_interval=0.05, backoff=2.0, max_attempts=4))
def flaky(name: str, fail_times: int) -> str:
    """Fails its first ``fail_times`` attempts, then succeeds."""
    info = aura.current_step()
    record("flaky")
    with _calls:
        FLAKY.setdefault(name, []).append(info.attempt)
        _calls.notify_all()
    if info.attempt <= fail_times:
        raise ConnectionError(f"attempt {info.attempt} failed")
    return f"{name} ok on attempt {info.attempt}"


@aura.step(retry=aura.RetryPolicy(initial_interval=0.01, max_attempts=5))
def rejects(value: int) -> int:
    record("rejects")
    raise aura.NonRetryableError(f"{value} is not acceptable")


@aura.step(timeout=0.2, retry=aura.RetryPolicy(initial_interval=0.01, max_attempts=2))
def slow_then_fast(name: str) -> str:
    """Attempt 1 hangs past its timeout; attempt 2 answers at once."""
    info = aura.current_step()
    record("slow_then_fast")
    if info.attempt == 1:
        GATES.setdefault(name, threading.Event()).wait(10)
    return f"attempt {info.attempt}"


@aura.step(timeout=0.2)
def always_slow(name: str) -> str:
    record("always_slow")
    GATES.setdefault(name, threading.Event()).wait(10)
    return "too late"


@aura.step(timeout=0.2)
async def async_slow(name: str) -> str:
    import asyncio

    record("async_slow")
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        CANCELLED.append(name)
        raise
    return "too late"


CANCELLED: list[str] = []


@aura.step(heartbeat_timeout=0.3, retry=aura.RetryPolicy(initial_interval=0.01, max_attempts=2))
def resumable(name: str, items: int) -> list[Any]:
    """Processes items, heartbeating progress; attempt 1 stalls halfway."""
    info = aura.current_step()
    start = info.heartbeat_details or 0
    done = []
    for i in range(start, items):
        if info.attempt == 1 and i == items // 2:
            GATES.setdefault(name, threading.Event()).wait(10)  # stalls: no heartbeat
        done.append(i)
        aura.heartbeat(i + 1)
    return [info.attempt, start, done]


@aura.mission
async def arithmetic(ctx: aura.MissionContext, n: int) -> dict[str, Any]:
    total = 0
    for i in range(n):
        total = await ctx.step(add, total, i)
    doubled = await ctx.gather(*(ctx.step(double, x) for x in (total, 1, 2)))
    return {"total": total, "doubled": doubled, "key_of": ctx.info.mission_id}


# Steps of ``chain`` check the log: is the result of the step before durable?
LOGS: dict[str, Any] = {}  # tag -> the runtime's event log
FOLLOWED: list[tuple[str, bool]] = []  # (idempotency key, its predecessor was durable)


@aura.step
def follows(tag: str, i: int) -> int:
    key = aura.current_step().idempotency_key  # mission/run/seq; here seq == i
    if i:
        decoder = msgspec.msgpack.Decoder(MissionMessage)
        mission_id = key.rsplit("/", 2)[0]
        done = {
            msg.seq
            for e in LOGS[tag].read(f"mission/{mission_id}")
            if e.kind == "message"
            and isinstance(msg := decoder.decode(e.data), StepDone)
            and msg.ok
        }
        FOLLOWED.append((key, i - 1 in done))
    return i


@aura.mission
async def chain(ctx: aura.MissionContext, tag: str, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(follows, tag, i)
    return total


@aura.mission
async def meets(ctx: aura.MissionContext, name: str, n: int) -> list[int]:
    return sorted(await ctx.gather(*(ctx.step(meet, name) for _ in range(n))))


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
async def retrying(ctx: aura.MissionContext, fail_times: int) -> str:
    result: str = await ctx.step(flaky, ctx.info.mission_id, fail_times)
    return result


@aura.mission
async def non_retryable(ctx: aura.MissionContext) -> int:
    result: int = await ctx.step(rejects, 7)
    return result


@aura.mission
async def timeouts(ctx: aura.MissionContext, which: str) -> Any:
    name = ctx.info.mission_id
    if which == "retry":
        return await ctx.step(slow_then_fast, name)
    if which == "fail":
        return await ctx.step(always_slow, name)
    if which == "async":
        return await ctx.step(async_slow, name)
    return await ctx.step(resumable, name, 6)


@aura.mission
async def sleeper(ctx: aura.MissionContext, seconds: float) -> float:
    before = ctx.now()
    await ctx.sleep(seconds)
    return ctx.now() - before


@aura.mission
async def approval(ctx: aura.MissionContext, timeout: float | None) -> Any:
    draft = await ctx.step(add, 1, 1)
    try:
        verdict = await ctx.wait_signal("approve", timeout=timeout)
    except aura.SignalTimeoutError:
        return {"draft": draft, "verdict": "timed out"}
    second = await ctx.wait_signal("note")
    return {"draft": draft, "verdict": verdict, "note": second}


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


@aura.mission
async def many_steps_published(ctx: aura.MissionContext, n: int) -> int:
    """many_steps that publishes its progress after each step, behind a patch."""
    total = 0
    for i in range(n):
        if ctx.patched("publish-progress"):
            total += await ctx.step(journal_effect, ctx.info.mission_id, i)
        ctx.set_event("progress", i)
    return total


@aura.mission
async def squares(ctx: aura.MissionContext, lo: int, hi: int) -> int:
    """A child mission: the squares of lo..hi-1, one journaled effect each."""
    total = 0
    for i in range(lo, hi):
        total += await ctx.step(journal_effect, ctx.info.mission_id, i)
    return total


@aura.mission
async def many_children(ctx: aura.MissionContext, n: int) -> int:
    """many_steps fanned out: five child missions share the n steps."""
    cut = [n * k // 5 for k in range(6)]
    parts = await ctx.gather(*(ctx.start_child(squares, lo, hi) for lo, hi in pairwise(cut)))
    return sum(parts)


@aura.step
def paced_effect(mission: str, i: int, seconds: float) -> int:
    """journal_effect after ``seconds`` of work: a run lasts long enough
    for a test to kill, pause and restart things in the middle of it."""
    time.sleep(seconds)  # the step's work, not synchronisation
    return journal_effect(mission, i)


@aura.mission
async def paced_steps(ctx: aura.MissionContext, n: int, seconds: float) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(paced_effect, ctx.info.mission_id, i, seconds)
    return total


@aura.step
def slow_effect(mission: str, i: int) -> int:
    """journal_effect after 0.2 s of work: a process can be killed mid-mission."""
    time.sleep(0.2)  # the step's work, not synchronisation
    return journal_effect(mission, i)


@aura.mission
async def slow_steps(ctx: aura.MissionContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += await ctx.step(slow_effect, ctx.info.mission_id, i)
    return total


SAGA: list[str] = []


@aura.step
def book(what: str) -> dict[str, str]:
    record("book")
    SAGA.append(f"book {what}")
    return {"booking": what}


@aura.step
def cancel_booking(booking: dict[str, str]) -> None:
    record("cancel")
    gate = GATES.get("compensation")
    if gate is not None:
        gate.wait(30)
    SAGA.append(f"cancel {booking['booking']}")


@aura.step
def charge(amount: int) -> None:
    record("charge")
    raise ValueError(f"card declined for {amount}")


@aura.mission
async def trip(ctx: aura.MissionContext, wait_for_approval: bool) -> str:
    await ctx.step(book, "flight", compensate=cancel_booking)
    await ctx.step(book, "hotel", compensate=cancel_booking)
    await ctx.step(add, 1, 2)  # completed, but nothing to undo
    if wait_for_approval:
        await ctx.wait_signal("approve")
    await ctx.step(charge, 500)
    return "booked"


def not_a_step(x: int) -> int:
    return x


@aura.mission
async def calls_undecorated(ctx: aura.MissionContext) -> int:
    result: int = await ctx.step(not_a_step, 1)
    return result


@aura.step
def exits(code: int) -> None:
    record("exits")
    raise SystemExit(code)


@aura.step
def kills_its_process(after: str) -> None:
    """Ends the process the way a segfault or the OOM killer would."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


@aura.mission
async def process_killer(ctx: aura.MissionContext) -> str:
    first = await ctx.step(add, 1, 1)
    await ctx.step(kills_its_process, str(first))
    return "unreachable"


@aura.mission
async def base_exception_step(ctx: aura.MissionContext) -> str:
    try:
        await ctx.step(exits, 3)
    except aura.StepFailedError as err:
        return f"caught {err.error_type}"
    return "unreachable"


@aura.mission
async def mixed(ctx: aura.MissionContext, n: int) -> dict[str, Any]:
    """Steps, a durable sleep and a retried step: every kind of journaled message."""
    total = 0
    for i in range(n):
        total = await ctx.step(add, total, i)
    await ctx.sleep(0.01)
    flaky_result = await ctx.step(flaky, ctx.info.mission_id, 1)
    return {"total": total, "flaky": flaky_result}


@aura.mission
async def remembers(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    ctx.memory["topic"] = topic
    total = await ctx.step(add, 1, 2)
    ctx.memory["notes"] = [total, {"source": "add"}]
    ctx.memory["scratch"] = 1
    del ctx.memory["scratch"]
    ctx.memory.delete("never-set")
    try:
        ctx.memory["bad"] = object()
    except aura.MemoryValueError as err:
        ctx.memory["refused"] = str(err).split(":")[0]
    await ctx.step(gated, ctx.info.mission_id)
    return {k: ctx.memory[k] for k in sorted(ctx.memory)}


@aura.step
def priced(i: int, usd: float) -> int:
    record("priced")
    aura.report_cost(usd=usd, tokens=100)
    return i


@aura.mission(budget=aura.Budget(usd=1.0))
async def spender(ctx: aura.MissionContext, steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await ctx.step(priced, i, 0.4)
    return total


TOOL_CALLS: list[tuple[str, Any]] = []


@aura.tool(scopes=["web"])
def search(query: str, limit: int = 3) -> list[str]:
    TOOL_CALLS.append(("search", query))
    return [f"{query} #{i}" for i in range(limit)]


@aura.tool
async def shout(text: str) -> str:
    TOOL_CALLS.append(("shout", text))
    return text.upper()


@aura.tool
def forbidden(x: int) -> int:  # registered, but no mission's identity lists it
    TOOL_CALLS.append(("forbidden", x))
    return x


@aura.mission(agent="researcher", tools=["search", "shout"], scopes=["web"])
async def uses_tools(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    hits = await ctx.tool("search", query=topic, limit=2)
    loud = await ctx.tool("shout", text=hits[0])
    denied = []
    for name, args in (
        ("forbidden", {"x": 1}),
        ("search", {"query": 42}),
        ("search", {"query": "x", "extra": True}),
        ("nowhere", {}),
    ):
        try:
            await ctx.tool(name, **args)
        except aura.ToolDenied as err:
            denied.append(err.reason)
    await ctx.step(gated, ctx.info.mission_id)
    return {"hits": hits, "loud": loud, "denied": denied}


@aura.tool
def reserve_room(room: str) -> dict[str, str]:
    TOOL_CALLS.append(("reserve_room", room))
    SAGA.append(f"book {room}")
    return {"booking": room}


@aura.mission(tools=["reserve_room"])
async def tool_saga(ctx: aura.MissionContext) -> str:
    await ctx.tool("reserve_room", room="suite", compensate=cancel_booking)
    await ctx.step(charge, 900)
    return "booked"


@aura.mission(history_limit=40)
async def looper(ctx: aura.MissionContext, start: int, end: int) -> dict[str, Any]:
    """Sums start..end-1 by steps, continuing as new when the history is long."""
    acc = ctx.memory.get("acc", 0)
    for i in range(start, end):
        acc = await ctx.step(add, acc, i)
        ctx.memory["acc"] = acc
        if ctx.info.continue_as_new_suggested and i + 1 < end:
            ctx.continue_as_new(i + 1, end)
    return {"acc": acc, "run": ctx.info.run}


@aura.mission(history_limit=20, auto_continue=True)
async def auto_loop(ctx: aura.MissionContext, n: int) -> dict[str, Any]:
    """Keeps its progress in memory; the runtime continues it as new."""
    while ctx.memory.get("i", 0) < n:
        i = ctx.memory.get("i", 0)
        ctx.memory["acc"] = await ctx.step(add, ctx.memory.get("acc", 0), i)
        ctx.memory["i"] = i + 1
    return {"acc": ctx.memory.get("acc", 0), "run": ctx.info.run}


@aura.step
def noop_add(a: int, b: int) -> int:
    return a + b


@aura.tool
def slow_lookup(key: str) -> str:
    TOOL_CALLS.append(("slow_lookup", aura.current_step().idempotency_key))
    record("slow_lookup")
    gate = GATES.get(key)
    if gate is not None and len(TOOL_CALLS) == 1:
        gate.wait(30)  # the first call hangs: the runtime goes away meanwhile
    return key.upper()


@aura.mission(tools=["slow_lookup"])
async def looks_up(ctx: aura.MissionContext, key: str) -> str:
    value: str = await ctx.tool("slow_lookup", key=key)
    return value


@aura.mission(history_limit=12)
async def many_steps_can(ctx: aura.MissionContext, n: int, start: int = 0) -> int:
    """many_steps, continuing as new every few steps (its total in memory)."""
    total = ctx.memory.get("total", 0)
    for i in range(start, n):
        total += await ctx.step(journal_effect, ctx.info.mission_id, i)
        ctx.memory["total"] = total
        if ctx.info.continue_as_new_suggested and i + 1 < n:
            ctx.continue_as_new(n, i + 1)
    return int(total)


CHARGES: list[int] = []
_DRIFT = [0]


@aura.mission
async def charges_outside_a_step(ctx: aura.MissionContext, amount: int) -> int:
    """A planted bug: a side effect in mission code, not in a step."""
    CHARGES.append(amount)  # runs again on every replay
    return int(await ctx.step(add, amount, 0))


@aura.mission
async def drifts(ctx: aura.MissionContext) -> int:
    """A planted bug: mission code that is not deterministic."""
    _DRIFT[0] += 1  # differs on replay: a different step argument
    first = await ctx.step(add, _DRIFT[0], 0)
    return int(await ctx.step(add, first, 1))


@aura.step(retry=aura.RetryPolicy(initial_interval=30.0, backoff=2.0, max_attempts=4))
def patterned(pattern: list[bool]) -> int:
    """Fails on the attempts ``pattern`` marks True (long backoffs: virtual time)."""
    attempt = aura.current_step().attempt
    if attempt <= len(pattern) and pattern[attempt - 1]:
        raise ConnectionError(f"attempt {attempt} fails by pattern")
    return attempt


@aura.mission
async def follows_pattern(ctx: aura.MissionContext, pattern: list[bool]) -> Any:
    try:
        return await ctx.step(patterned, pattern)
    except aura.StepFailedError as err:
        return f"gave up after {err.attempt}"
