"""Many runtimes on one store: each mission is owned by one runtime at a
time, through its own lease (``mission/<id>``, the name of its stream).

A shared runtime (``Runtime(store=..., shared=True)``, ``aura worker``)
holds a ``worker/<id>`` lease that says it is alive, and the leases of the
missions it runs. One heartbeat thread renews them all in one statement
(``renew_leases``) every ``heartbeat`` seconds; a mission lease missing
from the answer was taken by another runtime (this one was paused past
it), and the mission is stopped here at once. Every ``claim_every``
seconds the same thread claims expired mission leases (a dead runtime's
missions, or ones a stopping runtime handed back) with ``claim_leases``
(``FOR UPDATE SKIP LOCKED``: two claimers never take the same one), up to
the runtime's free capacity, and the runtime recovers them by replay.

Every write to a mission stream carries that mission's lease
(:class:`MissionFencedStore`): a runtime that lost a lease, however long
it was paused, cannot append to the mission again.

Which runtime takes a mission nobody owns yet (a new start sent as a
command): the live runtime that a rendezvous hash of the mission id over
the live ``worker/`` leases prefers, or, after ``grace`` seconds, any
runtime with room. Missions spread over runtimes without coordination,
and a start the preferred runtime cannot take (dead, full) is not lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from eventstore import Lease, LeaseLostError, StoreUnavailableError

from ..core._errors import AuraError
from ..core._messages import STREAM_PREFIX as PREFIX
from ._store_lease import WORKER_PREFIX, FencedLog, live_workers, new_owner_id


def preferred(mission_id: str, workers: Sequence[str]) -> str | None:
    """The worker a rendezvous (highest random weight) hash gives
    ``mission_id``: stable while the set of workers stays, and only the
    missions of a worker that leaves move."""

    def weight(worker: str) -> bytes:
        return hashlib.blake2b(f"{worker}\0{mission_id}".encode(), digest_size=8).digest()

    return max(workers, key=weight) if workers else None


class MissionLeases:
    """The leases of one shared runtime, and the thread that keeps them."""

    def __init__(
        self,
        store: Any,
        *,
        ttl: float,
        heartbeat: float,
        capacity: int,
        on_lost: Callable[[list[str]], None],
        on_claimed: Callable[[list[Lease]], None],
        claim_every: float = 0.5,
    ) -> None:
        if not 0 < heartbeat < ttl:
            raise AuraError(f"heartbeat ({heartbeat}s) must be shorter than lease_ttl ({ttl}s)")
        self._store = store
        self.owner = new_owner_id()
        self.worker = WORKER_PREFIX + self.owner
        self._ttl = ttl
        self._heartbeat = heartbeat
        self._claim_every = min(claim_every, heartbeat)
        self.capacity = capacity
        self._on_lost = on_lost
        self._on_claimed = on_claimed
        self._lock = threading.Lock()
        self._beaten = threading.Condition(self._lock)  # a heartbeat answered
        self._held: dict[str, Lease] = {}  # mission id -> its lease
        # When each mission was last taken or given up here: a heartbeat
        # judges only what did not change while its renewal was in flight.
        self._changed: dict[str, float] = {}
        self._workers: list[str] = []  # live workers' owners, as of the last heartbeat
        self._stop = threading.Event()
        started = time.monotonic()
        if store.acquire_lease(self.worker, self.owner, ttl) is None:  # pragma: no cover
            raise AuraError(f"worker lease {self.worker!r} is taken")
        # Until when (this host's monotonic clock) every lease held here is
        # known to be unexpired: the last renewal's start plus the lease.
        self._confirmed_until = started + ttl
        self._workers = live_workers(store)
        self._thread = threading.Thread(target=self._run, name="aura-leases", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ queries

    def holds(self, mission_id: str) -> bool:
        return mission_id in self._held

    def lease_of(self, mission_id: str) -> Lease | None:
        return self._held.get(mission_id)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def current(self, mission_id: str, *, wait: bool = True) -> bool | None:
        """Whether a step of ``mission_id`` may start now: its lease is held
        here and renewed recently enough that it cannot have run out. After
        a pause past that (SIGSTOP, a long GC, a dead network) the answer
        waits for the next heartbeat: still held, or taken by another
        runtime (False: the step is not started, its new owner runs it).
        With ``wait=False``, None instead of waiting."""
        with self._beaten:
            while True:
                if mission_id not in self._held or self._stop.is_set():
                    return False
                if time.monotonic() < self._confirmed_until:
                    return True
                if not wait:
                    return None
                self._beaten.wait(self._heartbeat)

    def room(self) -> int:
        return max(0, self.capacity - len(self._held))

    def prefers_me(self, mission_id: str) -> bool:
        return preferred(mission_id, self._workers) in (self.owner, None)

    # ------------------------------------------------------------ changes

    def acquire(self, mission_id: str) -> bool:
        """Take ``mission_id`` if nobody live owns it (or this runtime does)."""
        if mission_id in self._held:
            return True
        if self.room() <= 0:
            return False
        lease = self._store.acquire_lease(PREFIX + mission_id, self.owner, self._ttl)
        if lease is None:
            return False
        with self._lock:
            self._held[mission_id] = lease
            self._changed[mission_id] = time.monotonic()
        return True

    def release(self, mission_id: str, *, done: bool) -> None:
        """Give a mission up: ``done`` (it settled: nobody needs to run it),
        or for another runtime to claim."""
        with self._lock:
            lease = self._held.pop(mission_id, None)
            self._changed[mission_id] = time.monotonic()
        if lease is not None:
            with contextlib.suppress(Exception):  # best effort: it runs out by itself
                self._store.release_lease(lease.resource, self.owner, done=done)

    def lose(self, mission_ids: list[str], *, epoch: int | None = None) -> None:
        """These leases were taken by another runtime. With ``epoch``: only
        if that is still the epoch held here (a refused write may have been
        made with an older lease that this runtime has since claimed again)."""
        with self._lock:
            held = self._held
            gone = [m for m in mission_ids if m in held and epoch in (None, held[m].epoch)]
            for m in gone:
                held.pop(m, None)
        if gone:
            self._on_lost(gone)

    def close(self, *, hand_back: bool = True) -> None:
        """Stop the heartbeat; hand every mission back (another runtime
        claims it at once) and retire the worker lease."""
        self._stop.set()
        with self._beaten:
            self._beaten.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if not hand_back:
            return
        for mission_id in self.held():
            self.release(mission_id, done=False)
        with contextlib.suppress(Exception):
            self._store.release_lease(self.worker, self.owner, done=True)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        next_beat = time.monotonic() + self._heartbeat
        while not self._stop.wait(self._claim_every):
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._heartbeat
                    self._beat()
                self._claim()
            except StoreUnavailableError:
                continue  # the server is away: keep trying; fenced writes stay safe
            except Exception:
                if self._stop.is_set():
                    return  # the store closed under us
                raise

    def _beat(self) -> None:
        started = time.monotonic()
        renewed = self._store.renew_leases(self.owner, self._ttl)
        mine = {x.resource[len(PREFIX) :]: x for x in renewed if x.resource.startswith(PREFIX)}
        with self._lock:
            self._confirmed_until = started + self._ttl
            self._beaten.notify_all()
            self._changed = {m: at for m, at in self._changed.items() if at >= started}
            lost = []
            for m, lease in list(self._held.items()):
                again = mine.get(m)
                if again is not None and again.epoch == lease.epoch:
                    self._held[m] = again
                elif m not in self._changed:
                    lost.append(m)  # another runtime took it: this one was paused past it
                    del self._held[m]
            # Held by this owner in the store but not known here, and not
            # given up meanwhile: a claim whose answer was lost on the way.
            adopted = [
                lease
                for m, lease in mine.items()
                if m not in self._held and m not in lost and m not in self._changed
            ]
        if lost:
            self._on_lost(lost)
        if adopted:
            self._take(adopted)
        self._workers = live_workers(self._store)

    def _claim(self) -> None:
        room = self.room()
        if room <= 0:
            return
        claimed = self._store.claim_leases(PREFIX, self.owner, self._ttl, min(room, 100))
        if claimed:
            self._take(claimed)

    def _take(self, leases: list[Lease]) -> None:
        now = time.monotonic()
        with self._lock:
            for lease in leases:
                self._held[lease.resource[len(PREFIX) :]] = lease
                self._changed[lease.resource[len(PREFIX) :]] = now
        self._on_claimed(leases)


class MissionFencedStore(FencedLog):
    """Shared: a write to mission streams carries those missions' leases.
    A write for a mission this runtime does not hold is refused before it
    is sent."""

    def __init__(self, store: Any, leases: MissionLeases) -> None:
        super().__init__(store)
        self._leases = leases

    def _fences(self, streams: list[str]) -> list[Lease]:
        fences: list[Lease] = []
        for stream in dict.fromkeys(streams):
            if not stream.startswith(PREFIX):
                continue
            lease = self._leases.lease_of(stream[len(PREFIX) :])
            if lease is None:
                raise LeaseLostError(stream, self._leases.owner, 0, None, 0)
            fences.append(lease)
        return fences

    def _lost(self, err: LeaseLostError) -> None:
        if err.resource.startswith(PREFIX):
            self._leases.lose([err.resource[len(PREFIX) :]], epoch=err.epoch)
