"""What a shared runtime does beyond a single owner's: take missions,
route commands to their owners, give missions up.

A single-owner runtime runs every mission of its store. A shared one
(``Runtime(store=..., shared=True)``) runs only the missions whose leases
it holds (``_mission_leases``), so:

- **Taking a mission** (claimed from a dead or stopping runtime, taken for
  a start or a command): register its actor, journal a recovery marker
  (the crash-loop count that dead-letters a mission which kills every
  runtime that runs it), replay it, then apply what its ``inbox/<id>``
  holds past what it has applied: a command its last owner never got to
  is applied here, once.
- **Commands** from ``$commands``: for a mission held here, apply; for one
  a live runtime holds, leave it (that runtime applies it, or whoever
  takes the mission over finds it in the inbox); for one nobody holds,
  take it if this runtime is the one the hash prefers (or the command has
  waited ``grace`` seconds) and has room.
- **Settled** missions give their lease up as done; a stopping runtime
  hands its missions back for others to claim at once.
- **Lost** missions (another runtime took the lease: this one was paused
  past it) are stopped here at once; their next write would be refused.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from actors import ActorError

from ..core._errors import AuraError
from ..core._lifecycle import SETTLED, MissionStatus
from ..core._messages import STREAM_PREFIX as PREFIX
from ..core._messages import MissionMessage, Peek, Start, Transition
from ._commands import INBOX_PREFIX, Command, inbox_commands, queue_command
from ._mission_leases import MissionLeases
from ._mission_state import MissionView
from ._store_lease import RESOURCE as RUNTIME_RESOURCE
from ._store_lease import StoreOwnedError

if TYPE_CHECKING:
    from eventstore import Lease


class Sharing:
    def __init__(
        self,
        runtime: Any,  # the Runtime (not imported: it imports this module)
        raw_store: Any,
        *,
        ttl: float,
        heartbeat: float,
        capacity: int,
        grace: float | None = None,
        directory_lock: Any = None,
    ) -> None:
        self._rt = runtime
        self._directory_lock = directory_lock  # LMDB: held shared while this runs
        self._grace = grace if grace is not None else 2 * heartbeat
        self._parked: dict[str, tuple[float, int, Command]] = {}  # nobody's yet
        self._lock = threading.Lock()
        self._ready = threading.Event()  # the runtime is up: claimed missions may start
        self._waiting_claims: list[list[Lease]] = []
        self.leases = MissionLeases(
            raw_store,
            ttl=ttl,
            heartbeat=heartbeat,
            capacity=capacity,
            on_lost=self._lost,
            on_claimed=self._claimed,
        )

    @property
    def owner(self) -> str:
        return self.leases.owner

    def ready(self) -> None:
        """The runtime finished opening: take what was claimed meanwhile."""
        with self._lock:
            self._ready.set()
            waiting, self._waiting_claims = self._waiting_claims, []
        for leases in waiting:
            self._claimed(leases)

    # ------------------------------------------------------------ taking

    def _claimed(self, leases: list[Lease]) -> None:
        """The lease thread claimed these: take them over on a step thread."""
        with self._lock:
            if not self._ready.is_set():
                self._waiting_claims.append(leases)
                return
        ids = [lease.resource[len(PREFIX) :] for lease in leases]
        self._rt._steps.call(lambda: self.take(ids))

    def take(self, mission_ids: list[str]) -> None:
        """Recover missions whose leases this runtime just got, and apply
        what their inboxes hold."""
        rt = self._rt
        if rt._closed:
            return
        unfinished = []
        for mission_id in mission_ids:
            try:
                last = rt._last_event(PREFIX + mission_id)
            except Exception as err:  # a damaged log: contain it to its mission
                rt._mark_damaged(mission_id, err)
                continue
            rt._ensure_actor(mission_id, activate=False)
            if last is not None and rt._verdict(mission_id, last) is None:
                unfinished.append(last)
        rt._mark_recoveries(unfinished)
        for mission_id in mission_ids:
            if mission_id in rt._damaged or not self.leases.holds(mission_id):
                continue
            try:
                view = rt._ask(PREFIX + mission_id, Peek())  # replays it
                self._drain(mission_id, view.last_inbox)
                if self.leases.holds(mission_id) and rt.get(mission_id).status in SETTLED:
                    self.leases.release(mission_id, done=True)
            except (ActorError, AuraError) as err:
                rt.system.log.error("mission.take_failed", mission_id=mission_id, error=repr(err))

    def _drain(self, mission_id: str, applied: int) -> None:
        for command in inbox_commands(self._rt.store, mission_id, applied):
            self._rt._apply_command(0, command)

    def acquire(self, mission_id: str) -> bool:
        """Take ``mission_id`` now (for a start or a command sent here)."""
        if self.leases.holds(mission_id):
            return True
        if not self.leases.acquire(mission_id):
            return False
        self.take([mission_id])
        return self.leases.holds(mission_id)

    # ------------------------------------------------------------ commands

    def route(self, number: int, command: Command) -> None:
        """A command from ``$commands`` (on the poll thread)."""
        mission_id = command.mission_id
        if self.leases.holds(mission_id):
            self._rt._apply_command(number, command)
            return
        if not self._nobodys(mission_id):
            return  # its owner applies it (or whoever takes it over)
        if self.leases.prefers_me(mission_id):
            self._try_take(mission_id)
        else:
            with self._lock:
                self._parked.setdefault(mission_id, (time.monotonic(), number, command))

    def _nobodys(self, mission_id: str) -> bool:
        lease = self._rt.store.lease(PREFIX + mission_id)
        return lease is None or not lease.owner or lease.expires <= self._rt.store.lease_clock()

    def _try_take(self, mission_id: str) -> None:
        if not self.acquire(mission_id):
            return
        with self._lock:
            self._parked.pop(mission_id, None)

    def revisit(self) -> None:
        """Parked commands: dropped once someone took their mission; taken
        here once they waited ``grace`` seconds (the preferred runtime is
        gone or full)."""
        with self._lock:
            parked = list(self._parked.items())
        now = time.monotonic()
        for mission_id, (since, _, _) in parked:
            if not self._nobodys(mission_id):
                with self._lock:
                    self._parked.pop(mission_id, None)
            elif now - since >= self._grace or self.leases.prefers_me(mission_id):
                self._try_take(mission_id)

    def nothing_parked(self) -> bool:
        with self._lock:
            return not self._parked

    def send(self, command: Command) -> None:
        """A command for a mission another runtime holds: through the store."""
        queue_command(self._rt.store, command)

    # ------------------------------------------------------------ giving up

    def settled(self, mission_id: str) -> None:
        if self.leases.holds(mission_id):
            self._rt._steps.call(lambda: self._release_if_settled(mission_id))

    def _release_if_settled(self, mission_id: str) -> None:
        with contextlib.suppress(Exception):
            if self._rt.get(mission_id).status in SETTLED:
                self.leases.release(mission_id, done=True)

    def _lost(self, mission_ids: list[str]) -> None:
        rt = self._rt
        rt.system.log.error(
            "runtime.missions_lost", missions=mission_ids[:20], count=len(mission_ids)
        )

        def stop() -> None:
            for mission_id in mission_ids:
                with contextlib.suppress(ActorError):
                    rt.system.stop(PREFIX + mission_id)

        threading.Thread(target=stop, name="aura-leases-lost", daemon=True).start()

    def close(self) -> None:
        self.leases.close()
        if self._directory_lock is not None:
            self._directory_lock.release()

    release = close  # what the runtime calls on what makes it an owner

    # ------------------------------------------------------------ views

    def remote_view(self, mission_id: str) -> MissionView | None:
        """A mission another runtime runs, as its log shows it (no replay):
        settled ones in full, others by their last transition."""
        rt = self._rt
        settled: MissionView | None = rt._settled_view(mission_id)
        if settled is not None:
            return settled
        stream = PREFIX + mission_id
        version = rt.store.version(stream)
        if not version:
            if rt.store.version(INBOX_PREFIX + mission_id):  # a start sent, not taken yet
                return MissionView(mission_id, None, MissionStatus.PENDING, None, "", 0, 0)
            return None
        first = next(iter(rt.store.read(stream, 1, 1, archived=True)), None)
        name, tags = None, {}
        if first is not None and first.kind == "message":
            with contextlib.suppress(msgspec.DecodeError):
                message = msgspec.msgpack.decode(first.data, type=MissionMessage)
                if isinstance(message, Start):
                    name, tags = message.mission, dict(message.tags)
        last = rt._last_event(stream)
        status = MissionStatus.RUNNING
        if last is not None and last.kind == "transition":
            status = MissionStatus(msgspec.msgpack.decode(last.data, type=Transition).status)
            if status in SETTLED:  # it settled since: read it in full
                settled = rt._settled_view(mission_id)
                return settled
        return MissionView(mission_id, name, status, None, "", 0, version, tags=tags)


def hand_over_single_owner(store: Any, where: str, ttl: float) -> None:
    """A store a single-owner runtime served (its ``$runtime`` lease row)
    becomes shared: refused while that runtime is alive; else every
    unfinished mission gets a claimable lease (a single owner keeps none),
    and the ``$runtime`` lease is retired, all before this runtime claims."""
    row = store.lease(RUNTIME_RESOURCE)
    if row is None or not row.owner:
        return
    handing = f"handing {where} over to shared runtimes"
    if store.acquire_lease(RUNTIME_RESOURCE, handing, ttl) is None:
        raise StoreOwnedError(where, store.lease(RUNTIME_RESOURCE))
    release_unleased(store, handing, ttl)
    store.release_lease(RUNTIME_RESOURCE, handing, done=True)


def release_unleased(store: Any, handing: str, ttl: float) -> None:
    """Give every unfinished mission that no runtime holds or may claim (a
    single owner ran it, or it was finished and has been redriven since) a
    lease anyone may claim."""
    for stream in store.streams():
        if not stream.startswith(PREFIX):
            continue
        row = store.lease(stream)
        if row is not None and row.owner:
            continue  # held, or claimable already
        version = store.version(stream)
        last = next(iter(store.read(stream, version, version)), None) if version else None
        if last is not None and last.kind == "transition":
            status = msgspec.msgpack.decode(last.data, type=Transition).status
            if MissionStatus(status) in SETTLED:
                continue
        if store.acquire_lease(stream, handing, ttl) is not None:
            store.release_lease(stream, handing)
