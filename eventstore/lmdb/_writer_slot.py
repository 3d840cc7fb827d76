"""Who holds the directory's LMDB writer lock, and since when: so a process
frozen inside a commit can be fenced off by the others.

LMDB serialises writers across processes with a robust mutex: a writer
that dies frees it. One that is *stopped* (SIGSTOP, a debugger, a VM
paused) keeps it, and every other process's writes wait, heartbeats and
lease takeovers included, for as long as it stays frozen. Where processes
share a directory as one system (shared runtimes, ``aura worker``), a
writer stopped longer than the mission lease is treated as dead: the
others SIGKILL it (its uncommitted transaction is discarded; the kernel
and LMDB free the lock), exactly as a lease taken over fences a paused
runtime on PostgreSQL.

``writer.slot`` beside the data file holds, while a write transaction is
open: the holder's pid, its process start time (from ``/proc``: a reused
pid is never mistaken for the holder) and when it took the lock
(``CLOCK_MONOTONIC``, shared by the processes of one host). The holder
clears it when the transaction ends. Each write costs two stores into a
shared mapping, no system call.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

_SLOT = struct.Struct("<QQd")  # pid, process start time (clock ticks), since (monotonic)
FILE = "writer.slot"


def _process(pid: int) -> tuple[str, int] | None:
    """State and start time of process ``pid`` (fields 3 and 22 of
    /proc/pid/stat), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


class WriterSlot:
    """This process's view of ``writer.slot`` (see the module)."""

    def __init__(self, path: str) -> None:
        fd = os.open(os.path.join(path, FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if os.fstat(fd).st_size < _SLOT.size:
                os.ftruncate(fd, _SLOT.size)
            self._map = mmap.mmap(fd, _SLOT.size)
        finally:
            os.close(fd)
        self._pid = os.getpid()
        me = _process(self._pid)
        self._me = _SLOT.pack(self._pid, me[1] if me else 0, 0.0)[:16]
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def hold(self) -> None:
        """Right after this process took the writer lock."""
        self._map[:] = self._me + struct.pack("<d", time.monotonic())

    def free(self) -> None:
        """Before this process lets the writer lock go (or right after)."""
        if self._map[:8] == self._me[:8]:
            self._map[:8] = b"\0" * 8

    def holder(self) -> tuple[int, int, float]:
        pid, started, since = _SLOT.unpack(self._map[:])
        return pid, started, since

    def watch(self, stall: float, on_kill: Callable[[int, float], None]) -> None:
        """Start a thread that SIGKILLs another process that holds the
        writer lock, stopped (state T: SIGSTOP, a debugger), for more than
        ``stall`` seconds; ``on_kill(pid, held)`` after. A holder that is
        running (a long commit) is left alone."""
        if self._watcher is not None:
            return

        def run() -> None:
            while not self._stop.wait(min(1.0, stall / 4)):
                with contextlib.suppress(Exception):  # one bad look must not end the watch
                    look()

        def look() -> None:
            pid, started, since = self.holder()
            held = time.monotonic() - since
            if not pid or pid == self._pid or held <= stall:
                return
            found = _process(pid)
            if found is None or found[1] != started or found[0] not in "Tt":
                return  # gone (the lock went with it), or not frozen
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                on_kill(pid, held)

        self._watcher = threading.Thread(target=run, name="eventstore-writer-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._map.close()
