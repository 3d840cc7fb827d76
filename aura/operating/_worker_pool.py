"""`aura worker --processes N`: N shared worker processes under one parent.

The way past the GIL on one host: each worker is a process of its own
(``aura worker`` without ``--processes``) sharing the data directory or
store with the others through mission leases. The parent runs no mission;
it starts the N workers, starts again one that exits on its own (crashed,
killed, lost its store) with a backoff while it keeps crashing soon after
starting, and on SIGTERM or SIGINT stops them all (each hands its missions
back) and exits 0. The parent dying (SIGKILL) leaves its workers serving;
each is a complete worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

_FIRST_DELAY, _MAX_DELAY = 0.5, 30.0
_STABLE = 60.0  # a worker that lived this long gets a quick restart again
_POLL = 0.2  # how often the parent looks at its workers


class _Slot:
    def __init__(self, number: int) -> None:
        self.number = number
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.delay = _FIRST_DELAY
        self.restart_at = 0.0


def supervise(
    worker_argv: Sequence[str],
    processes: int,
    *,
    env: dict[str, str] | None = None,
    say: Callable[[str], None] = lambda text: print(text, flush=True),
) -> int:
    """Run ``processes`` copies of ``python -m aura.operating._cli
    *worker_argv`` (with ``env`` added to the environment) until SIGTERM
    or SIGINT (see the module)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    command = [sys.executable, "-m", "aura.operating._cli", *worker_argv]
    slots = [_Slot(i + 1) for i in range(processes)]

    def start(slot: _Slot) -> None:
        environ = {**os.environ, **(env or {}), "AURA_WORKER_NUMBER": str(slot.number)}
        slot.proc = subprocess.Popen(command, env=environ)
        slot.started = time.monotonic()
        say(f"worker {slot.number} started (pid {slot.proc.pid})")

    for slot in slots:
        start(slot)
    say(f"supervising {processes} worker processes (pid {os.getpid()}); SIGTERM to stop")
    while not stop.wait(_POLL):
        now = time.monotonic()
        for slot in slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                lived = now - slot.started
                slot.delay = _FIRST_DELAY if lived >= _STABLE else slot.delay
                slot.restart_at = now + slot.delay
                say(
                    f"worker {slot.number} (pid {proc.pid}) exited with {_how(proc.returncode)} "
                    f"after {lived:.1f} s; starting it again in {slot.delay:.1f} s"
                )
                slot.delay = min(slot.delay * 2, _MAX_DELAY)
                slot.proc = None
            if slot.proc is None and now >= slot.restart_at:
                start(slot)
    running = [slot.proc for slot in slots if slot.proc is not None and slot.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)  # each hands its missions to the others, then exits
    failed = 0
    for proc in running:
        code = proc.wait()
        failed += code != 0
    say(f"stopped {len(running)} worker processes")
    return 0 if failed == 0 else 1


def _how(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
