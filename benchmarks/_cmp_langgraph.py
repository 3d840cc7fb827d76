"""The compare workloads on LangGraph with SqliteSaver, durability="sync"."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict

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


class _Seq(TypedDict):
    i: int
    n: int


class _Blobs(TypedDict):
    i: int
    n: int
    data: str


class _Crashy(TypedDict):
    wf: str
    i: int
    n: int
    go: bool


class _Waiter(TypedDict):
    got: Any


class LangGraphSystem(Probes):
    name = "LangGraph SqliteSaver sync"

    def __init__(self) -> None:
        super().__init__()
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import interrupt

        def loop(state: type, node: Any, more: Any) -> Any:
            g = StateGraph(state)
            g.add_node("step", node)
            g.add_edge(START, "step")
            g.add_conditional_edges("step", lambda s: "step" if more(s) else END)
            return g

        def noop(s: _Seq) -> dict[str, int]:
            self.stamps.append(time.perf_counter())
            return {"i": s["i"] + 1}

        def blob(s: _Blobs) -> dict[str, Any]:
            return {"i": s["i"] + 1, "data": self.blob}

        def tick(s: _Crashy) -> dict[str, Any]:
            return {"i": s["i"] + 1, "go": self.progress.tick(s["wf"])}

        def mark(s: _Waiter) -> dict[str, Any]:
            self.marked.hit()
            return {}

        def wait(s: _Waiter) -> dict[str, Any]:
            return {"got": interrupt("go")}

        self.seq = loop(_Seq, noop, lambda s: s["i"] < s["n"])
        self.blobs = loop(_Blobs, blob, lambda s: s["i"] < s["n"])
        self.crashy = loop(_Crashy, tick, lambda s: s["go"] and s["i"] < s["n"])
        w = StateGraph(_Waiter)
        w.add_node("mark", mark)
        w.add_node("wait", wait)
        w.add_edge(START, "mark")
        w.add_edge("mark", "wait")
        w.add_edge("wait", END)
        self.waiter = w

    def _app(self, graph: Any, d: Path) -> tuple[Any, sqlite3.Connection]:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(d / "lg.sqlite", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        saver = SqliteSaver(conn)
        saver.setup()
        return graph.compile(checkpointer=saver), conn

    @staticmethod
    def _invoke(app: Any, state: Any, thread: str, limit: int = 10_000_000) -> Any:
        config = {"configurable": {"thread_id": thread}, "recursion_limit": limit}
        return app.invoke(state, config=config, durability="sync")

    def one(self, n: int) -> dict[str, float]:
        d = tmp()
        app, conn = self._app(self.seq, d)
        try:
            self.stamps.clear()
            t0 = time.perf_counter()
            self._invoke(app, {"i": 0, "n": n}, "one")
            return {"steps/s": n / (time.perf_counter() - t0), **latencies(list(self.stamps))}
        finally:
            conn.close()
            shutil.rmtree(d)

    def many(self, workflows: int, steps: int) -> dict[str, float]:
        d = tmp()
        app, conn = self._app(self.seq, d)
        try:
            threads = [
                threading.Thread(target=self._invoke, args=(app, {"i": 0, "n": steps}, f"t{i}"))
                for i in range(workflows)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return {"steps/s": workflows * steps / (time.perf_counter() - t0)}
        finally:
            conn.close()
            shutil.rmtree(d)

    def payload(self, n: int, size: int) -> dict[str, float]:
        self.blob = payload(size)

        def run(d: Path, k: int) -> float:
            app, conn = self._app(self.blobs, d)
            try:
                t0 = time.perf_counter()
                self._invoke(app, {"i": 0, "n": k, "data": ""}, "blobs")
                return k / (time.perf_counter() - t0)
            finally:
                conn.close()  # the last connection: SQLite folds the WAL in

        return payload_run(run, n)

    # --- run in child processes by compare.py

    def crash_child(self, d: Path, workflows: int) -> None:
        self.progress = CrashProgress(workflows, "run")
        app, _ = self._app(self.crashy, d)
        for i in range(workflows):
            state = {"wf": f"w{i}", "i": 0, "n": 1_000_000, "go": True}
            threading.Thread(target=self._invoke, args=(app, state, f"w{i}"), daemon=True).start()
        self.progress.started.set()
        self.progress.ready.wait()
        print("ready", flush=True)
        threading.Event().wait()  # until the parent SIGKILLs us

    def recover(self, d: Path, workflows: int) -> dict[str, float]:
        """LangGraph has no recovery of its own: the caller re-invokes every
        thread it knows of (here: all of them, one thread each, which is
        generous, since a real service would first have to find them)."""
        self.progress = CrashProgress(workflows, "recover")
        t0 = time.perf_counter()
        app, conn = self._app(self.crashy, d)
        threads = [
            threading.Thread(target=self._invoke, args=(app, None, f"w{i}"))
            for i in range(workflows)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = time.perf_counter()
        conn.close()
        return {"resumed s": self.progress.t_all_resumed - t0, "finished s": done - t0}

    def waiting(self, workflows: int) -> dict[str, float]:
        from langgraph.types import Command

        d = tmp()
        self.marked = Counter(workflows)
        app, conn = self._app(self.waiter, d)
        mem0 = memory()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda i: self._invoke(app, {"got": None}, f"h{i}"), range(workflows)))
        parked = time.perf_counter() - t0
        used = grown(mem0, workflows)
        assert self._invoke(app, Command(resume=1), "h0")["got"] == 1
        conn.close()
        shutil.rmtree(d)
        return {**used, "park s": parked}
