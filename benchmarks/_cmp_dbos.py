"""The compare workloads on DBOS with its SQLite system database."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class DbosSystem(Probes):
    """DBOS is a process-wide singleton: configured and launched once per
    measurement, destroyed after it."""

    name = "DBOS (SQLite)"

    def __init__(self) -> None:
        super().__init__()
        from dbos import DBOS

        self.DBOS = DBOS

        @DBOS.step()
        def noop(i: int) -> int:
            self.stamps.append(time.perf_counter())
            return i

        @DBOS.workflow()
        def sequential(n: int) -> int:
            for i in range(n):
                noop(i)
            return n

        @DBOS.step()
        def blob(i: int) -> str:
            return self.blob

        @DBOS.workflow()
        def blobs(n: int) -> int:
            for i in range(n):
                blob(i)
            return n

        @DBOS.step()
        def tick(wf: str, i: int) -> bool:
            return self.progress.tick(wf)

        @DBOS.workflow()
        def crashy(wf: str, n: int) -> int:
            for i in range(n):
                if not tick(wf, i):
                    return i
            return n

        @DBOS.step()
        def mark() -> None:
            self.marked.hit()

        @DBOS.workflow()
        def waiter() -> Any:
            mark()
            return DBOS.recv("go", timeout_seconds=3600)

        self.sequential, self.blobs, self.crashy, self.waiter = sequential, blobs, crashy, waiter

    def _launch(self, d: Path) -> None:
        self.DBOS(
            config={
                "name": "aura-compare",
                "system_database_url": f"sqlite:///{d}/dbos.sqlite",
                "run_admin_server": False,
                "log_level": "WARNING",
            }
        )
        self.DBOS.launch()

    def _run(self, fn: Callable[[Path], dict[str, float]]) -> dict[str, float]:
        d = tmp()
        self._launch(d)
        try:
            return fn(d)
        finally:
            self.DBOS.destroy(destroy_registry=False)
            shutil.rmtree(d)

    def one(self, n: int) -> dict[str, float]:
        def go(d: Path) -> dict[str, float]:
            self.stamps.clear()
            t0 = time.perf_counter()
            self.sequential(n)
            return {"steps/s": n / (time.perf_counter() - t0), **latencies(list(self.stamps))}

        return self._run(go)

    def many(self, workflows: int, steps: int) -> dict[str, float]:
        def go(d: Path) -> dict[str, float]:
            t0 = time.perf_counter()
            handles = [self.DBOS.start_workflow(self.sequential, steps) for _ in range(workflows)]
            for h in handles:
                h.get_result()
            return {"steps/s": workflows * steps / (time.perf_counter() - t0)}

        return self._run(go)

    def payload(self, n: int, size: int) -> dict[str, float]:
        self.blob = payload(size)

        def run(d: Path, k: int) -> float:
            self._launch(d)
            try:
                t0 = time.perf_counter()
                self.blobs(k)
                return k / (time.perf_counter() - t0)
            finally:
                self.DBOS.destroy(destroy_registry=False)  # closes SQLite: WAL folded in

        return payload_run(run, n)

    # --- run in child processes by compare.py

    def crash_child(self, d: Path, workflows: int) -> None:
        from dbos import SetWorkflowID

        self.progress = CrashProgress(workflows, "run")
        self._launch(d)
        for i in range(workflows):
            with SetWorkflowID(f"w{i}"):
                self.DBOS.start_workflow(self.crashy, f"w{i}", 1_000_000)
        self.progress.started.set()
        self.progress.ready.wait()
        print("ready", flush=True)
        threading.Event().wait()  # until the parent SIGKILLs us

    def recover(self, d: Path, workflows: int) -> dict[str, float]:
        self.progress = CrashProgress(workflows, "recover")
        t0 = time.perf_counter()
        self._launch(d)  # recovers the pending workflows itself
        for i in range(workflows):
            self.DBOS.retrieve_workflow(f"w{i}").get_result()
        done = time.perf_counter()
        self.DBOS.destroy(destroy_registry=False)
        return {"resumed s": self.progress.t_all_resumed - t0, "finished s": done - t0}

    def waiting(self, workflows: int) -> dict[str, float]:
        from dbos import SetWorkflowID

        d = tmp()
        self.marked = Counter(workflows)
        self._launch(d)
        mem0 = memory()
        t0 = time.perf_counter()
        for i in range(workflows):
            with SetWorkflowID(f"h{i}"):
                self.DBOS.start_workflow(self.waiter)
        self.marked.done.wait()
        parked = time.perf_counter() - t0
        used = grown(mem0, workflows)
        self.DBOS.send("h0", 1, "go")
        assert self.DBOS.retrieve_workflow("h0").get_result() == 1
        return {**used, "park s": parked}
