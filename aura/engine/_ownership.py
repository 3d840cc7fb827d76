"""One runtime owns a data directory at a time: an exclusive OS file lock.

``<data>/runtime.lock`` is locked with ``flock(LOCK_EX)`` for as long as a
runtime has the directory open. The kernel frees the lock when the process
dies, however it dies (SIGKILL included), so there is no stale lock to clean
up and no lease to time out on one host. A second runtime on the same
directory either fails at once (:class:`DirectoryLockedError`, naming the
holder) or, as a hot standby, blocks in ``flock`` and takes over the moment
the holder's descriptor is closed.

The holder writes who it is (pid, host, start time, command line) into the
lock file after taking the lock; it is information for the error message
only, never trusted for the decision, which is the kernel's.

Shared runtimes (``Runtime(path, shared=True)``, ``aura worker``) take the
same lock with ``LOCK_SH``: any number of them at once, none beside a
single owner. Each mission is then run by the one holding its lease (in
the directory's LMDB store). The first shared runtime, finding the lock
free for ``LOCK_EX``, hands the directory over (gives unfinished missions
claimable leases) before it shares it.

Readers (the CLI's inspection verbs, the console) and command senders
(signal, cancel, redrive: they append to ``$commands``) do not take the
lock: LMDB serialises writers across processes, and only mission owners
append to mission streams.

Rejected alternatives: a pid file checked with ``kill(pid, 0)`` (pids are
reused, and a crash leaves the file behind); LMDB's own lock file (it is
shared by design, every reader and writer holds it). Not on NFS: ``flock``
there is not reliable, nor is LMDB.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from ..core._errors import AuraError

LOCK_FILE = "runtime.lock"


class Holder(msgspec.Struct, frozen=True):
    """Who holds a data directory (as the holder wrote it)."""

    pid: int
    host: str
    since: float
    argv: list[str] = []

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        command = " ".join(self.argv)[:120]
        return f"pid {self.pid} on {self.host} (since {started}" + (
            f", {command})" if command else ")"
        )


class DirectoryLockedError(AuraError):
    """Another runtime owns this data directory."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        self.path = path
        self.holder = holder
        who = holder.describe() if holder is not None else "another process"
        super().__init__(
            f"data directory {path} is owned by the runtime of {who}: it runs the missions "
            "there, and a second runtime would run them twice. Send it commands instead "
            "(aura signal/cancel/redrive; the inspection verbs are read-only and safe), stop "
            "it, use another directory, or open with standby=True (aura worker --standby) "
            "to take over when it exits"
        )


def read_holder(path: Path) -> Holder | None:
    """Who last took ``path``'s lock (whether or not it still holds it)."""
    try:
        raw = (Path(path) / LOCK_FILE).read_bytes()
    except OSError:
        return None
    try:
        return msgspec.json.decode(raw, type=Holder)
    except msgspec.DecodeError:
        return None


def is_owned(path: Path) -> bool:
    """Whether a runtime (a single owner or shared ones) holds ``path`` now.
    Probes with ``LOCK_EX`` for an instant: a runtime starting in that
    instant retries (``DirectoryLock.acquire``)."""
    try:
        fd = os.open(Path(path) / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class DirectoryLock:
    """The held lock of one data directory; :meth:`release` (or process
    death) frees it."""

    def __init__(self, path: Path, fd: int, *, alone: bool = True) -> None:
        self.path = path
        self._fd: int | None = fd
        self.alone = alone
        """Held exclusively (a single owner, or the first shared runtime
        until :meth:`share`)."""

    @classmethod
    def acquire(
        cls, path: Path, *, wait: bool = False, on_wait: Any = None, shared: bool = False
    ) -> DirectoryLock:
        """Take ``path``'s lock. Held elsewhere: raise
        :class:`DirectoryLockedError`, or with ``wait`` block until it is
        free (``on_wait(holder)`` is called once first). ``shared``: beside
        other shared runtimes; exclusively (``alone``) if there are none."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise AuraError(f"cannot open the lock file of data directory {path}: {err}") from err
        alone = True
        try:
            modes = [fcntl.LOCK_EX, fcntl.LOCK_SH] if shared else [fcntl.LOCK_EX]
            taken = _take(fd, path, modes)
            if taken is None:
                if not wait:
                    raise DirectoryLockedError(path, read_holder(path))
                if on_wait is not None:
                    on_wait(read_holder(path))
                taken = modes[-1]
                fcntl.flock(fd, taken)  # the kernel wakes us when the holder dies
            alone = taken == fcntl.LOCK_EX
        except BaseException:
            os.close(fd)
            raise
        me = Holder(os.getpid(), socket.gethostname(), time.time(), list(sys.argv))
        with contextlib.suppress(OSError):  # information only
            os.ftruncate(fd, 0)
            os.pwrite(fd, msgspec.json.encode(me), 0)
        return cls(path, fd, alone=alone)

    def share(self) -> None:
        """From exclusive to shared: other shared runtimes may start now."""
        if self._fd is not None and self.alone:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            self.alone = False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor frees the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


_PROBE_RETRIES = 20  # an is_owned probe holds LOCK_EX for an instant


def _take(fd: int, path: Path, modes: list[int]) -> int | None:
    """Take the first of ``modes`` that is free now and return it, else
    None. A miss is retried for a moment: it may be another's probe."""
    for attempt in range(_PROBE_RETRIES):
        for mode in modes:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise AuraError(f"cannot lock data directory {path}: {err}") from err
                continue
            return mode
        if attempt < _PROBE_RETRIES - 1:
            time.sleep(0.01)
    return None
