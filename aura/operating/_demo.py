"""`aura demo`: an agent mission survives a SIGKILL without redoing work.

A research agent (plan -> several tool calls through the gateway -> a
compensable booking tool -> a human approval -> summary, with memory
writes and a budget) runs in a child process. The "model" is a scripted
stand-in, said so plainly; the tools are real local functions.
The parent SIGKILLs the child mid-mission, starts a new process on the same
data directory, approves the booking as the human, and shows the mission
finishing from where it stopped: every step whose result had been journaled
before the kill ran exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec

import aura
from eventstore import EventStore

from ..core._messages import STREAM_PREFIX
from ..governance._audit import verify_audit
from ._inspect import journaled_results

MISSION_PREFIX = "demo-research-"
CORPUS = {
    "durable execution": "Journal every step before acting on it; replay to recover.",
    "lmdb": "A memory-mapped B+tree: one writer, many readers, crash-safe commits.",
    "sagas": "Undo completed steps in reverse order when a long transaction fails.",
    "actors": "Isolated state, one message at a time, supervised restarts.",
}


def _effect(name: str) -> None:
    """Record that a step really ran (the side effect the demo checks)."""
    info = aura.current_step()
    with open(os.environ["AURA_DEMO_EFFECTS"], "a") as f:
        f.write(f"{info.idempotency_key} {name} {os.getpid()}\n")
    sys.stdout.write(f"STEP {info.idempotency_key} {name}\n")
    sys.stdout.flush()


@aura.step(name="demo:plan")
def plan(topic: str) -> list[str]:
    """Scripted stand-in for a model call: a fixed plan for any topic."""
    _effect("plan")
    aura.report_cost(usd=0.004, tokens=900)  # what a real model call would report
    return ["durable execution", "lmdb", "sagas", "actors"]


@aura.tool(name="web_search", retry=aura.RetryPolicy(initial_interval=0.05, max_attempts=3))
def search(query: str) -> str:
    _effect(f"tool web_search {query!r}")
    return CORPUS.get(query, "nothing found")


@aura.tool(name="book_gpu", scopes=["billing"])
def book(resource: str) -> dict[str, str]:
    _effect(f"tool book_gpu {resource}")
    return {"booking": f"{resource}-42"}


@aura.step(name="demo:release")
def release(booking: dict[str, str]) -> None:
    _effect(f"release {booking['booking']}")


@aura.step(name="demo:summarize")
def summarize(topic: str, notes: list[str]) -> str:
    """Scripted stand-in for a model call: joins the notes."""
    _effect("summarize")
    aura.report_cost(usd=0.006, tokens=1400)
    return f"{topic}: " + " ".join(notes)


@aura.mission(
    name="demo:research",
    agent="researcher",
    tools=["web_search", "book_gpu"],
    scopes=["billing"],
    budget=aura.Budget(usd=1.0),
)
async def research(ctx: aura.MissionContext, topic: str) -> dict[str, Any]:
    queries = await ctx.step(plan, topic)
    ctx.memory["plan"] = queries
    notes = await ctx.gather(*(ctx.tool("web_search", query=q) for q in queries))
    ctx.memory["notes"] = notes
    booking = await ctx.tool("book_gpu", resource="gpu-hours", compensate=release)
    ctx.memory["booking"] = booking
    approved = await ctx.wait_signal("approve", timeout=600)
    if not approved:
        raise RuntimeError("the human declined the booking")
    summary = await ctx.step(summarize, topic, notes)
    ctx.memory["summary"] = summary
    return {"summary": summary, "booking": booking}


TOOLS = [search, book]


def child(data: str, mode: str, mission_id: str) -> None:
    """Runs in a child process: ``start`` the mission, or ``resume`` it."""
    with aura.Runtime(data, missions=[research], tools=TOOLS) as rt:
        if mode == "start":
            rt.start(research, "durable agents", mission_id=mission_id)
            rt.wait(mission_id)  # never returns: the parent kills us
            return
        # A new process: opening the runtime recovered the mission already.
        view = rt.get(mission_id)
        sys.stdout.write(f"RECOVERED {view.status.value} {view.steps_completed}\n")
        sys.stdout.flush()
        rt.signal(mission_id, "approve", True)  # the human approves the booking
        result = rt.handle(mission_id).result(timeout=60)
        done = rt.get(mission_id)
        result = {**result, "memory": sorted(done.memory), "cost_usd": done.cost_usd}
        sys.stdout.write(f"RESULT {msgspec.json.encode(result).decode()}\n")


def _journaled(data: Path, mission_id: str) -> set[str]:
    with EventStore.open(data / "events", readonly=True) as store:
        return set(journaled_results(store, mission_id))


def _next_mission_id(data: Path) -> str:
    if not (data / "events").exists():
        return f"{MISSION_PREFIX}1"
    with EventStore.open(data / "events", readonly=True) as store:
        runs = sum(1 for s in store.streams() if s.startswith(STREAM_PREFIX + MISSION_PREFIX))
    return f"{MISSION_PREFIX}{runs + 1}"


def _spawn(data: Path, mode: str, effects: Path, mission_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aura.operating._demo", str(data), mode, mission_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "AURA_DEMO_EFFECTS": str(effects)},
    )


def run(data: Path, kill_after_steps: int = 4) -> int:
    data.mkdir(parents=True, exist_ok=True)
    mission_id = _next_mission_id(data)
    effects = data / f"{mission_id}-effects.log"
    print(f"aura demo: research agent, mission {mission_id!r} in {data}")
    print("  (the 'model' is a scripted stand-in; the tools are local functions)")

    first = _spawn(data, "start", effects, mission_id)
    assert first.stdout is not None
    seen = 0
    for line in first.stdout:
        if line.startswith("STEP"):
            seen += 1
            print(f"  process 1 ran  {line.split(maxsplit=2)[2].strip()}")
            if seen >= kill_after_steps:
                break
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _journaled(data, mission_id)
    print(f"  SIGKILL process 1 mid-mission ({len(before)} step results were journaled)")

    second = _spawn(data, "resume", effects, mission_id)
    out, _ = second.communicate(timeout=120)
    result = None
    for line in out.splitlines():
        if line.startswith("STEP"):
            print(f"  process 2 ran  {line.split(maxsplit=2)[2]}")
        elif line.startswith("RECOVERED"):
            _, status, done = line.split()
            print(
                f"  process 2 opened the data directory and resumed the mission ({status}, "
                f"{done} step results recorded)"
            )
            print("  human approves the booking (signal 'approve')")
        elif line.startswith("RESULT"):
            result = msgspec.json.decode(line.split(maxsplit=1)[1])
    if second.returncode != 0 or result is None:
        print("aura demo: FAILED, the resumed mission did not finish", file=sys.stderr)
        return 1

    runs: dict[str, list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in effects.read_text().splitlines():
        parts = line.split(" ")
        key, pid = parts[0], parts[-1]
        names[key] = " ".join(parts[1:-1])
        runs[key].append(pid)
    first_pid = str(first.pid)
    print("  step                                  journaled before kill  runs (process 1 + 2)")
    for key in sorted(runs, key=lambda k: int(k.rsplit("/", 1)[1])):
        in_first = runs[key].count(first_pid)
        in_second = len(runs[key]) - in_first
        journaled = "yes" if key in before else "no"
        print(f"  {names[key][:36]:<38}{journaled:<23}{in_first} + {in_second}")
    rerun = [key for key in before if len(runs[key]) > 1]
    print(f"  result: {result['summary'][:70]}...")
    print(f"  memory keys: {', '.join(result['memory'])}; cost ${result['cost_usd']:.3f}")
    if rerun:
        print(f"aura demo: FAILED, finished steps ran again: {rerun}", file=sys.stderr)
        return 1
    print("  steps killed in flight ran again with the same idempotency key; none whose")
    print("  result was journaled ran twice")
    with EventStore.open(data / "events", readonly=True) as store:
        audit = verify_audit(store)
    if not audit.ok:
        print(f"aura demo: FAILED, audit chain broken: {audit.reason}", file=sys.stderr)
        return 1
    print(f"  audit chain verifies: {audit.entries} entries, head {audit.head[:16]}...")
    print("aura demo: OK - crashed mid-mission, resumed in a new process, nothing finished re-ran")
    print(f"  inspect it: aura --data {data} history {mission_id}")
    print(f"              aura --data {data} audit verify")
    print(f"  or see it:  aura --data {data} console   (needs pip install -e '.[console]')")
    return 0


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3])
