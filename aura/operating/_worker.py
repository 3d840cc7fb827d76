"""`aura worker`: a runtime that serves a data directory until SIGTERM.

On a PostgreSQL store workers share the store by default: start several,
on one host or many; each runs the missions whose leases it holds and
takes over those of a worker that dies (``_mission_leases``).

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
from typing import Any

from ..core._definitions import MissionDef
from ..core._queues import Queue
from ..core._schedules import Schedule
from ..engine._place import Place
from ._operate import import_app


def app_parts(modules: Sequence[str]) -> tuple[list[Any], list[Queue], list[Schedule]]:
    """The ``@aura.mission`` functions, ``aura.Queue`` and ``aura.Schedule``
    objects defined at the top level of ``modules``."""
    missions: list[Any] = []
    queues: list[Queue] = []
    schedules: list[Schedule] = []
    for name in modules:
        for value in vars(import_app(name)).values():
            if isinstance(getattr(value, "__aura_mission__", None), MissionDef):
                missions.append(value)
            elif isinstance(value, Queue):
                queues.append(value)
            elif isinstance(value, Schedule):
                schedules.append(value)
    return missions, queues, schedules


def _owner(place: Place) -> str | None:
    if not place.exists():
        return None
    from ._inspect import owner_of

    with place.open(readonly=True) as store:
        return owner_of(place, store)


def serve(
    place: Place,
    modules: Sequence[str],
    *,
    standby: bool = False,
    max_workers: int = 8,
    lease: float = 10.0,
    shared: bool = False,
    max_missions: int = 10_000,
    log: str | None = None,
    console_port: int | None = None,
    say: Callable[[str], None] = lambda text: print(text, flush=True),
) -> int:
    """Serve ``place`` until SIGTERM or SIGINT (one before the place is
    taken ends a standby's wait). Exits 3 if another runtime took the store's
    lease (this one was paused past it)."""
    from ..engine._runtime import Runtime

    missions, queues, schedules = app_parts(modules)
    stop = threading.Event()
    serving = False

    def on_signal(signum: int, frame: object) -> None:
        if not serving:
            raise SystemExit(0)  # a standby still waiting in flock: just leave
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    where = place.describe()
    if standby:
        who = _owner(place)
        if who is not None:
            say(f"standby: {where} is owned by {who}; taking over when it lets go")
    rt = Runtime(
        place.data,
        store=place.store,
        schema=place.schema,
        missions=missions,
        queues=queues,
        schedules=schedules,
        standby=standby,
        max_workers=max_workers,
        lease_ttl=lease,
        heartbeat=lease / 5,
        shared=shared,
        max_missions=max_missions,
        log=log,
    )
    with rt:
        serving = True
        names = ", ".join(sorted(m.__aura_mission__.name for m in missions)) or "(none)"
        how = f"shared, up to {max_missions} missions" if shared else "alone"
        say(f"serving {where} ({how}, pid {os.getpid()}): missions {names}; SIGTERM to stop")
        console = None
        if console_port is not None:
            from .console import ConsoleServer

            console = ConsoleServer(runtime=rt, port=console_port).start()
            say(f"console: open {console.url}")
        try:
            while not stop.wait(0.5) and rt.lost is None:
                pass
        finally:
            if console is not None:
                console.stop()
        if rt.lost is not None:
            say(f"stopped: {rt.lost}")
            return 3
        if shared:
            say("stopping: in-flight missions are handed to the other workers")
        else:
            say("stopping: in-flight missions resume where they are when the store reopens")
    return 0
