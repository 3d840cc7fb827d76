"""Helpers shared by the systems that ``compare.py`` measures side by side."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path


def tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="aura-cmp-"))


def latencies(stamps: list[float]) -> dict[str, float]:
    """p50/p99 of the gaps between consecutive step stamps, in microseconds."""
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    if not gaps:
        return {"p50 us": float("nan"), "p99 us": float("nan")}
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return {"p50 us": gaps[len(gaps) // 2] * 1e6, "p99 us": p99 * 1e6}


def disk_bytes(d: Path) -> int:
    """Bytes the files under ``d`` occupy on disk (allocated blocks, so a
    sparse or pre-sized file counts only what was written)."""
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            with contextlib.suppress(FileNotFoundError):  # a WAL removed as we walk
                total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def memory() -> dict[str, int]:
    """This process's resident memory, from /proc (Linux): all of it
    (``rss``) and its private, anonymous part (``anon``: the heap and thread
    stacks, not file pages such as an mmap'd LMDB file, which the kernel
    can drop and re-read)."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon"}
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            words = line.split()  # "VmRSS:  1234 kB"
            if words and words[0] in fields:
                out[fields[words[0]]] = int(words[1]) * 1024
    return out


def grown(before: dict[str, int], workflows: int) -> dict[str, float]:
    """The memory figures of workload 5: what ``workflows`` waiting cost."""
    after = memory()
    rss, anon = after["rss"] - before["rss"], after["anon"] - before["anon"]
    return {"RSS MB": rss / 2**20, "anon MB": anon / 2**20, "KB/workflow": rss / 1024 / workflows}


def payload(size: int) -> str:
    """A step result of ``size`` bytes that no codec can shrink much."""
    return os.urandom(size // 2).hex()


class CrashProgress:
    """What the crash workload's step records, in its two phases.

    ``run``: every call waits until ``started`` (so that writers already
    running cannot starve the start of the rest) and says "go on"; once
    every workflow has begun a step, ``ready`` is set and the parent kills
    the process. (Not "finished a step": DBOS on SQLite starves some
    workflows' step records for minutes while others run.) ``recover``: every call says "stop" and
    records that its workflow resumed; ``all_resumed`` is set when all have.
    """

    def __init__(self, workflows: int, phase: str) -> None:
        self.workflows, self.phase = workflows, phase
        self._lock = threading.Lock()
        self._begun: set[str] = set()
        self.started = threading.Event()
        self.ready = threading.Event()
        self.resumed: set[str] = set()
        self.all_resumed = threading.Event()
        self.t_all_resumed = 0.0

    def tick(self, wf: str) -> bool:
        if self.phase == "run":
            self.started.wait()
        with self._lock:
            if self.phase == "run":
                self._begun.add(wf)
                if len(self._begun) == self.workflows:
                    self.ready.set()
                return True
            self.resumed.add(wf)
            if len(self.resumed) == self.workflows and not self.all_resumed.is_set():
                self.t_all_resumed = time.perf_counter()
                self.all_resumed.set()
            return False


class Counter:
    """Counts calls from many threads; ``done`` is set at ``target``."""

    def __init__(self, target: int) -> None:
        self.target, self.n = target, 0
        self._lock = threading.Lock()
        self.done = threading.Event()

    def hit(self) -> None:
        with self._lock:
            self.n += 1
            if self.n == self.target:
                self.done.set()


class Probes:
    """What each system's step functions report to the benchmark: step
    timestamps, the payload a step returns, the crash workload's progress,
    and marks from waiting workflows. Every system class starts from these."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.blob = ""
        self.progress = CrashProgress(0, "run")
        self.marked = Counter(0)


def payload_run(run: Callable[[Path, int], float], n: int) -> dict[str, float]:
    """Steps/s and bytes on disk per step of a payload workload.

    ``run(d, k)`` runs one workflow of ``k`` steps in the empty directory
    ``d``, closes everything, and returns its steps/s. It runs twice, for 1
    and for ``n`` steps, so that tables, schemas and key files every store
    writes once do not count as per-step bytes.
    """
    sizes, rate = {}, math.nan
    for k in (1, n):
        d = tmp()
        try:
            rate = run(d, k)
            sizes[k] = disk_bytes(d)
        finally:
            shutil.rmtree(d)
    return {"steps/s": rate, "bytes/step": (sizes[n] - sizes[1]) / (n - 1)}
