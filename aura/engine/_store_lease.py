"""One runtime owns a shared store at a time: a lease with a fencing epoch.

On PostgreSQL there is no file lock that dies with the process, and the
owner may be on another host. The runtime takes the store's ``$runtime``
lease (``lease_ttl`` seconds, on the database server's clock), renews it
every ``heartbeat`` seconds from one thread, and every write it makes
carries the lease as a fence, checked inside the commit. If it is paused
past its lease (GC pause, SIGSTOP, a partition) a standby takes the lease
at the next epoch, and the paused runtime's first write after waking is
refused (``LeaseLostError``): it stops its missions and nothing is recorded
twice. A killed runtime's lease simply runs out.

Per-mission leases (many runtimes sharing one store) build on the same
store calls; this module is the whole-store case.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from eventstore import Lease, LeaseLostError, NewEvent, StoreUnavailableError

from ..core._errors import AuraError

RESOURCE = "$runtime"


def new_owner_id() -> str:
    """Unique per runtime incarnation, readable in messages."""
    return f"pid {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex[:8]})"


class StoreOwnedError(AuraError):
    """Another live runtime holds the store's lease."""

    def __init__(self, where: str, lease: Lease | None) -> None:
        self.lease = lease
        who = lease.owner if lease is not None else "another runtime"
        super().__init__(
            f"event store {where} is owned by the runtime of {who}: it runs the missions "
            "there, and a second runtime would run them twice. Send it commands instead "
            "(aura signal/cancel/redrive), stop it, or open with standby=True "
            "(aura worker --standby) to take over when its lease runs out"
        )


class StoreSharedError(AuraError):
    """Shared runtimes (``shared=True``, ``aura worker``) serve the store."""

    def __init__(self, where: str, workers: list[str]) -> None:
        self.workers = workers
        super().__init__(
            f"event store {where} is served by {len(workers)} shared runtime(s) "
            f"({', '.join(workers[:3])}): open it with shared=True (aura worker) to run "
            "missions beside them, or stop them first"
        )


WORKER_PREFIX = "worker/"


def live_workers(store: Any) -> list[str]:
    """The owners of the shared runtimes alive on ``store`` (their
    ``worker/`` leases), sorted."""
    now = store.lease_clock()
    return sorted(x.owner for x in store.leases(WORKER_PREFIX) if x.owner and x.expires > now)


class StoreLease:
    """The held ``$runtime`` lease and its heartbeat thread."""

    def __init__(
        self, store: Any, lease: Lease, ttl: float, heartbeat: float, on_lost: Callable[[str], None]
    ) -> None:
        self._store = store
        self.lease = lease
        self._ttl = ttl
        self._heartbeat = heartbeat
        self._on_lost = on_lost
        self._stop = threading.Event()
        self.lost: str | None = None
        self._thread = threading.Thread(target=self._beat, name="aura-lease", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(
        cls,
        store: Any,
        where: str,
        *,
        wait: bool,
        ttl: float,
        heartbeat: float,
        on_lost: Callable[[str], None],
    ) -> StoreLease:
        if not 0 < heartbeat < ttl:
            raise AuraError(f"heartbeat ({heartbeat}s) must be shorter than lease_ttl ({ttl}s)")
        owner = new_owner_id()
        while True:
            lease = store.acquire_lease(RESOURCE, owner, ttl)
            if lease is not None:
                workers = live_workers(store)
                if not workers:
                    return cls(store, lease, ttl, heartbeat, on_lost)
                store.release_lease(RESOURCE, owner, done=True)
                if not wait:
                    raise StoreSharedError(where, workers)
            if not wait:
                raise StoreOwnedError(where, store.lease(RESOURCE))
            time.sleep(min(heartbeat, 1.0))  # a standby polls for the owner's lease to run out

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat):
            try:
                held = self._store.renew_leases(self.lease.owner, self._ttl)
            except StoreUnavailableError:
                continue  # the server is away: keep trying; fenced writes stay safe
            except Exception as err:  # the store closed under us: nothing more to renew
                if self._stop.is_set():
                    return
                self._lose(f"renewing the lease failed: {err}")
                return
            mine = [x for x in held if x.resource == RESOURCE and x.epoch == self.lease.epoch]
            if not mine:
                self._lose("another runtime took the store's lease")
                return
            self.lease = mine[0]

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            self._on_lost(why)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        if self.lost is None:
            with contextlib.suppress(Exception):  # best effort: it runs out by itself
                self._store.release_lease(RESOURCE, self.lease.owner)


class FencedLog(ABC):
    """A runtime's view of a leased store: every write carries the leases
    it is made under (``_fences``), checked inside the commit. A refused
    write (``LeaseLostError``) is reported (``_lost``) before it raises, so
    the runtime stops acting at once, not at the next heartbeat."""

    def __init__(self, store: Any) -> None:
        self._store = store

    @abstractmethod
    def _fences(self, streams: list[str]) -> list[Lease]:
        """The leases a write to ``streams`` must carry (may raise LeaseLostError)."""

    @abstractmethod
    def _lost(self, err: LeaseLostError) -> None:
        """A write was refused: stop acting for what ``err`` names."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> int:
        try:
            version: int = self._store.append(
                stream, events, expected_version=expected_version, fence=self._fences([stream])
            )
        except LeaseLostError as err:
            self._lost(err)
            raise
        return version

    def append_many(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        on_applied: Callable[[list[int]], None] | None = None,
    ) -> list[int]:
        try:
            fences = self._fences([stream for stream, _, _ in batch])
            versions: list[int] = self._store.append_many(
                batch, on_applied=on_applied, fence=fences
            )
        except LeaseLostError as err:
            self._lost(err)
            raise
        return versions

    def __enter__(self) -> FencedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._store.close()


class FencedStore(FencedLog):
    """Exclusive: every write carries the store's ``$runtime`` lease."""

    def __init__(self, store: Any, lease: StoreLease) -> None:
        super().__init__(store)
        self._lease = lease

    def _fences(self, streams: list[str]) -> list[Lease]:
        return [self._lease.lease]

    def _lost(self, err: LeaseLostError) -> None:
        self._lease._lose(str(err))
