"""`aura worker`: a runtime that serves a data directory until SIGTERM.

It owns the directory (``_ownership``): it recovers every in-flight
mission, runs the missions started through the log (``aura run`` beside
it, or ``start`` commands), and takes signals, cancels and redrives from
other processes. With ``standby`` it waits, fully imported, for the
current owner to exit and takes over at once (the kernel frees the lock of
a dead process, however it died).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core._definitions import MissionDef
from ..engine._ownership import is_owned, read_holder
from ._operate import import_app


def app_missions(modules: Sequence[str]) -> list[Any]:
    """Every ``@aura.mission`` function defined at the top level of ``modules``."""
    found: list[Any] = []
    for name in modules:
        module = import_app(name)
        found.extend(
            fn
            for fn in vars(module).values()
            if isinstance(getattr(fn, "__aura_mission__", None), MissionDef)
        )
    return found


def serve(
    data: Path,
    modules: Sequence[str],
    *,
    standby: bool = False,
    max_workers: int = 8,
    say: Callable[[str], None] = lambda text: print(text, flush=True),
) -> int:
    """Serve ``data`` until SIGTERM or SIGINT (one before the directory is
    taken ends a standby's wait)."""
    from ..engine._runtime import Runtime

    missions = app_missions(modules)
    stop = threading.Event()
    serving = False

    def on_signal(signum: int, frame: object) -> None:
        if not serving:
            raise SystemExit(0)  # a standby still waiting in flock: just leave
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if standby and is_owned(data):
        holder = read_holder(data)
        who = holder.describe() if holder is not None else "another process"
        say(f"standby: {data} is owned by {who}; taking over when it exits")
    with Runtime(data, missions=missions, standby=standby, max_workers=max_workers):
        serving = True
        names = ", ".join(sorted(m.__aura_mission__.name for m in missions)) or "(none)"
        say(f"serving {data} (pid {os.getpid()}): missions {names}; SIGTERM to stop")
        stop.wait()
        say("stopping: in-flight missions resume where they are when the directory reopens")
    return 0
