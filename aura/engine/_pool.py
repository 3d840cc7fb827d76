"""A bounded pool of step threads, lighter than ``ThreadPoolExecutor``.

Steps report through the mission log, not through futures, so a job here
is a bare ``(fn, args)`` on a ``SimpleQueue``: no ``Future`` (a Condition
and an RLock per job) on the path the outbox drainer walks for every step.
Threads start lazily, up to ``max_workers``, when no thread is idle.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any


class WorkerPool:
    def __init__(self, max_workers: int, name: str, on_error: Callable[[BaseException], None]):
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._max = max_workers
        self._name = name
        self._on_error = on_error
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()  # starting threads, closing
        self._threads = 0
        # One token per idle thread. deque append and pop are atomic, so the
        # hot path (a thread going idle, a job claiming it) takes no lock: a
        # lock there made the submitting thread and a finishing one hand the
        # GIL to each other whenever they met on it.
        self._idle: deque[None] = deque()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        # An idle thread is claimed here, by the job that will wake it: a
        # thread counted idle until it dequeues would be counted for every job
        # submitted before it wakes, and those jobs would queue behind each
        # other instead of starting threads.
        number = 0  # of the thread to start, if any
        try:
            self._idle.pop()
        except IndexError:
            with self._lock:
                if self._threads < self._max and not self._closed:
                    self._threads += 1
                    number = self._threads
        self._queue.put((fn, args))
        if number:
            threading.Thread(target=self._work, name=f"{self._name}-{number}", daemon=True).start()

    @property
    def idle(self) -> int:
        """Threads waiting for a job."""
        return len(self._idle)

    def close(self) -> None:
        """Drop queued jobs and let every thread finish its current one and exit."""
        with self._lock:
            self._closed = True
            threads = self._threads
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in range(threads):
            self._queue.put(None)

    def _work(self) -> None:
        q, idle = self._queue, self._idle
        while True:
            item = q.get()
            if item is None or self._closed:
                return
            fn, args = item
            try:
                fn(*args)
            except BaseException as err:  # a pool thread must survive any job
                self._on_error(err)
            idle.append(None)  # back for the next job, which claims it
