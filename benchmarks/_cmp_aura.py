"""The compare workloads on aura."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import aura
from benchmarks._cmp_common import (
    Counter,
    CrashProgress,
    Probes,
    grown,
    latencies,
    memory,
    payload,
    payload_run,
    tmp,
)


class AuraSystem(Probes):
    name = "aura"

    def __init__(self) -> None:
        super().__init__()

        @aura.step(name="cmp:noop")
        def noop(i: int) -> int:
            self.stamps.append(time.perf_counter())
            return i

        @aura.mission(name="cmp:sequential")
        async def sequential(ctx: aura.MissionContext, n: int) -> int:
            for i in range(n):
                await ctx.step(noop, i)
            return n

        @aura.step(name="cmp:blob")
        def blob(i: int) -> str:
            return self.blob

        @aura.mission(name="cmp:blobs")
        async def blobs(ctx: aura.MissionContext, n: int) -> int:
            for i in range(n):
                await ctx.step(blob, i)
            return n

        @aura.step(name="cmp:tick")
        def tick(wf: str, i: int) -> bool:
            return self.progress.tick(wf)

        @aura.mission(name="cmp:crashy")
        async def crashy(ctx: aura.MissionContext, wf: str, n: int) -> int:
            for i in range(n):
                if not await ctx.step(tick, wf, i):
                    return i
            return n

        @aura.step(name="cmp:mark")
        def mark() -> None:
            self.marked.hit()

        @aura.mission(name="cmp:waiter")
        async def waiter(ctx: aura.MissionContext) -> Any:
            await ctx.step(mark)
            return await ctx.wait_signal("go")

        self.missions = [sequential, blobs, crashy, waiter]
        self.sequential, self.blobs, self.crashy, self.waiter = self.missions

    def _runtime(self, d: Path) -> aura.Runtime:
        return aura.Runtime(d, missions=self.missions, max_workers=32)

    def one(self, n: int) -> dict[str, float]:
        d = tmp()
        try:
            with self._runtime(d) as rt:
                self.stamps.clear()
                t0 = time.perf_counter()
                rt.start(self.sequential, n, mission_id="one").result(timeout=600)
                return {"steps/s": n / (time.perf_counter() - t0), **latencies(list(self.stamps))}
        finally:
            shutil.rmtree(d)

    def many(self, workflows: int, steps: int) -> dict[str, float]:
        d = tmp()
        try:
            with self._runtime(d) as rt:
                t0 = time.perf_counter()
                hs = [
                    rt.start(self.sequential, steps, mission_id=f"m{i}") for i in range(workflows)
                ]
                for h in hs:
                    h.result(timeout=600)
                return {"steps/s": workflows * steps / (time.perf_counter() - t0)}
        finally:
            shutil.rmtree(d)

    def payload(self, n: int, size: int) -> dict[str, float]:
        self.blob = payload(size)

        def run(d: Path, k: int) -> float:
            with self._runtime(d) as rt:
                t0 = time.perf_counter()
                rt.start(self.blobs, k, mission_id="blobs").result(timeout=600)
                return k / (time.perf_counter() - t0)

        return payload_run(run, n)

    # --- run in child processes by compare.py

    def crash_child(self, d: Path, workflows: int) -> None:
        self.progress = CrashProgress(workflows, "run")
        rt = self._runtime(d)
        for i in range(workflows):
            rt.start(self.crashy, f"w{i}", 1_000_000, mission_id=f"w{i}")
        self.progress.started.set()
        self.progress.ready.wait()
        print("ready", flush=True)
        threading.Event().wait()  # until the parent SIGKILLs us

    def recover(self, d: Path, workflows: int) -> dict[str, float]:
        self.progress = CrashProgress(workflows, "recover")
        t0 = time.perf_counter()
        with self._runtime(d) as rt:
            for i in range(workflows):
                rt.handle(f"w{i}").result(timeout=600)
            done = time.perf_counter()
        return {"resumed s": self.progress.t_all_resumed - t0, "finished s": done - t0}

    def waiting(self, workflows: int) -> dict[str, float]:
        d = tmp()
        self.marked = Counter(workflows)
        with self._runtime(d) as rt:
            mem0 = memory()
            t0 = time.perf_counter()
            for i in range(workflows):
                rt.start(self.waiter, mission_id=f"h{i}")
            self.marked.done.wait()
            for i in range(workflows):
                rt.wait(f"h{i}", timeout=600, until={aura.MissionStatus.WAITING})
            parked = time.perf_counter() - t0
            used = grown(mem0, workflows)
            # One signal back proves they are durable waits, not parked threads.
            rt.signal("h0", "go", 1)
            assert rt.handle("h0").result(timeout=60) == 1
        shutil.rmtree(d)
        return {**used, "park s": parked}
