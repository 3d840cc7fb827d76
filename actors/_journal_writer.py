"""A thread that commits ``ask_many`` journals, so that the asking thread
can handle the batch while the commit's fsync is in flight.

Why: a batch's commit holds the asking thread for the whole fsync (the GIL
is free meanwhile, and the steps that could use it are the ones being
committed). Handing the commit to this thread lets the asker handle the
batch *speculatively* during it: each actor holds back every effect of
handling (``DurableActor.after_durable``) and stays claimed until the
commit is durable; if the commit fails, each of them crashes and recovers
by replay of a log that lacks the message, which is delivered again.

The asker waits for the batch to be *applied* (written into the write
transaction, ``on_applied``) before it handles anything: the apply releases
the GIL on every put, and a thread competing for the GIL then would make
each put wait for a switch interval. The fsync releases it once.

One thread per actor system, started on first use; not per actor.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from eventstore import NewEvent

Entries = list[tuple[str, Sequence[NewEvent], int | None]]


def _wait(lock: threading.Lock) -> BaseException | None:
    """Acquire ``lock``, even through an interrupt (Ctrl-C in the main
    thread), which is returned to be raised by the caller when it is safe."""
    interrupt: BaseException | None = None
    while True:
        try:
            lock.acquire()
            return interrupt
        except BaseException as err:
            interrupt = interrupt or err


class PendingCommit:
    """One batch handed to the writer: its versions once applied, then the
    commit's outcome. Waited on by one thread (the asker)."""

    __slots__ = ("_applied", "_done", "_finished", "entries", "error", "versions")

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self.versions: list[int] | None = None  # as applied: final if the commit succeeds
        self.error: BaseException | None = None
        self._applied = threading.Lock()
        self._applied.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._finished = False

    def _on_applied(self, versions: list[int]) -> None:
        if self.versions is None:  # called again if the transaction is retried
            self.versions = versions
            self._applied.release()

    def run(self, store: Any) -> None:
        try:
            store.append_many(self.entries, on_applied=self._on_applied)
        except BaseException as err:
            self.error = err
        if self.versions is None:
            self._applied.release()  # rejected before the commit: wake the asker
        self._done.release()

    def wait_applied(self) -> list[int] | None:
        """The versions the batch will have if its commit succeeds, once it
        is written into the transaction; None if it failed before that
        (:meth:`wait_done` says why)."""
        interrupt = _wait(self._applied)
        if interrupt is not None:
            self.wait_done()
            raise interrupt
        return self.versions

    def wait_done(self) -> BaseException | None:
        """Block until the commit finished: None once durable, else why not."""
        if not self._finished:
            interrupt = _wait(self._done)
            self._finished = True
            if interrupt is not None:
                raise interrupt
        return self.error


class JournalWriter:
    def __init__(self, store: Any, name: str) -> None:
        self._store = store
        self._jobs: queue.SimpleQueue[PendingCommit | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, entries: Entries) -> PendingCommit:
        """Start committing ``entries`` (an ``append_many`` batch)."""
        job = PendingCommit(entries)
        with self._lock:
            if not self._closed:
                self._jobs.put(job)
                return job
        job.run(self._store)  # closing: commit on the caller's thread
        return job

    def close(self, timeout: float | None = None) -> None:
        """Let the writer finish what it was given, then stop it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        jobs, store = self._jobs, self._store
        while (job := jobs.get()) is not None:
            job.run(store)
