"""The runtime's side of queues: enqueue, hand out slots, free them.

One ``QueueDispatcher`` per ``aura.Queue`` a runtime knows. Its state is
the fold of the queue's stream (``aura/core/_queues.py``), read again from
where it stopped before each decision. A decision (enqueue, dispatch,
finish) is one append conditional on the version it was made on: if
another runtime appended meanwhile, the append is refused whole, the new
records are read, and the decision is made again, so runtimes sharing a
log never exceed the limits between them.

Dispatching appends ``dispatched`` first and starts the missions after
(``QueueHost._start_queued``, idempotent per id): a crash in between
leaves slots taken by missions that never started, and whoever opens the
log next starts them (at recovery; or, on a shared log, any runtime's
poll once ``ORPHAN_GRACE`` has passed). A mission that settles gets a
``finished`` record (on the settle here; on the poll if it settled in
another runtime or before a crash), and waiting missions take its slot.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import threading
from collections.abc import Callable
from typing import Protocol

import msgspec

from actors import ActorError
from eventstore import ConcurrencyError, EventStoreError, NewEvent

from ..core._errors import AuraError
from ..core._queues import (
    DISPATCHED,
    ENQUEUED,
    FINISHED,
    Dispatched,
    Enqueued,
    Finished,
    Queue,
    QueueDeduplicatedError,
    QueueView,
)
from ._host import BackgroundHost

ORPHAN_GRACE = 5.0
"""Seconds after which a dispatched mission that never started is started
by whichever runtime polls the queue (its dispatcher died in between)."""


class QueueHost(BackgroundHost, Protocol):
    """What a dispatcher needs of the runtime."""

    def _start_queued(self, entry: Enqueued) -> None:
        """Start the mission of ``entry`` unless it exists (AuraError if it cannot)."""

    def _settled_verdict(self, mission_id: str) -> str | None:
        """The mission's settled status, or None while it may still run."""

    def _runs_here(self, mission_id: str) -> bool: ...

    def _when_settled(self, mission_id: str, fn: Callable[[], None]) -> None: ...


class QueueState:
    """The fold of a queue's stream up to ``version``."""

    def __init__(self) -> None:
        self.version = 0
        self.waiting: dict[str, Enqueued] = {}
        self.order: list[tuple[int, int, str]] = []  # heap: (priority, version, id)
        self.running: dict[str, tuple[Enqueued, float]] = {}  # id -> entry, dispatched at
        self.known: dict[str, str] = {}  # every id ever enqueued -> its input digest
        self.dedup: dict[str, str] = {}  # dedup id -> mission id, while waiting or running
        self.starts: collections.deque[float] = collections.deque()  # dispatch times

    def apply(self, kind: str, data: bytes, version: int) -> None:
        self.version = version
        if kind == ENQUEUED:
            e = msgspec.msgpack.decode(data, type=Enqueued)
            self.known[e.mission_id] = e.digest
            self.waiting[e.mission_id] = e
            heapq.heappush(self.order, (e.priority, version, e.mission_id))
            if e.dedup_id:
                self.dedup[e.dedup_id] = e.mission_id
        elif kind == DISPATCHED:
            d = msgspec.msgpack.decode(data, type=Dispatched)
            for mission_id in d.mission_ids:
                entry = self.waiting.pop(mission_id, None)
                if entry is not None:
                    self.running[mission_id] = (entry, d.at)
                    self.starts.append(d.at)
        elif kind == FINISHED:
            f = msgspec.msgpack.decode(data, type=Finished)
            for mission_id in f.mission_ids:
                done = self.running.pop(mission_id, None)
                if done is not None and done[0].dedup_id:
                    self.dedup.pop(done[0].dedup_id, None)

    def next_waiting(self, n: int) -> list[str]:
        """Up to ``n`` waiting ids in start order (priority, then enqueueing)."""
        picked: list[str] = []
        kept: list[tuple[int, int, str]] = []
        while self.order and len(picked) < n:
            item = heapq.heappop(self.order)
            if item[2] in self.waiting:
                picked.append(item[2])
                kept.append(item)
        for item in kept:  # they leave the heap when a dispatch record is applied
            heapq.heappush(self.order, item)
        return picked

    def in_window(self, now: float, period: float) -> int:
        while self.starts and self.starts[0] <= now - period:
            self.starts.popleft()
        return len(self.starts)


class QueueDispatcher:
    def __init__(self, host: QueueHost, queue: Queue) -> None:
        self.host = host
        self.queue = queue
        self.state = QueueState()
        self._lock = threading.RLock()
        self._timer_armed = False
        self._watched: set[str] = set()

    # ------------------------------------------------------------ the log

    def refresh(self) -> None:
        state = self.state
        for event in self.host.store.read(self.queue.stream, state.version + 1):
            state.apply(event.kind, event.data, event.version)

    def _append(self, kind: str, record: msgspec.Struct) -> None:
        """Append one record at the version decided on (ConcurrencyError if
        another runtime moved the queue), then fold it in."""
        data = msgspec.msgpack.encode(record)
        version = self.host.store.append(
            self.queue.stream, [NewEvent(kind, data)], expected_version=self.state.version
        )
        self.state.apply(kind, data, version)

    # ------------------------------------------------------------ decisions

    def enqueue(self, entry: Enqueued) -> bool:
        """Journal ``entry`` (False: that id is already enqueued with the same input)."""
        with self._lock:
            while True:
                self.refresh()
                state = self.state
                digest = state.known.get(entry.mission_id)
                if digest is not None:
                    if digest != entry.digest:
                        raise AuraError(
                            f"queue {self.queue.name!r}: mission {entry.mission_id!r} was "
                            "enqueued with other input (definition or arguments)"
                        )
                    return False
                holder = state.dedup.get(entry.dedup_id) if entry.dedup_id else None
                if holder is not None:
                    raise QueueDeduplicatedError(self.queue.name, entry.dedup_id, holder)
                try:
                    self._append(ENQUEUED, entry)
                    return True
                except ConcurrencyError:
                    continue  # another runtime appended: decide again on what it wrote

    def dispatch(self) -> None:
        """Give free slots to waiting missions, in order, and start them."""
        host = self.host
        if host._closed:
            return
        with self._lock:
            while True:
                self.refresh()
                picked = self._pick()
                if not picked:
                    return
                try:
                    self._append(DISPATCHED, Dispatched(picked, host._clock()))
                    break
                except ConcurrencyError:
                    continue
        host.system.faults.check("queue_dispatched", self.queue.stream)
        for mission_id in picked:
            self._start(mission_id)

    def _pick(self) -> list[str]:
        queue, state, host = self.queue, self.state, self.host
        free = len(state.waiting)
        if queue.concurrency is not None:
            free = min(free, queue.concurrency - len(state.running))
        if queue.per_runtime is not None:
            here = sum(1 for mission_id in state.running if host._runs_here(mission_id))
            free = min(free, queue.per_runtime - here)
        if queue.rate is not None and free > 0:
            limit, period = queue.rate
            now = host._clock()
            left = limit - state.in_window(now, period)
            if left < free:
                self._arm_rate_timer(state.starts[0] + period - now if state.starts else period)
            free = min(free, left)
        return state.next_waiting(free) if free > 0 else []

    def _arm_rate_timer(self, delay: float) -> None:
        """Dispatch again when the oldest start leaves the rate window."""
        if self._timer_armed:
            return
        self._timer_armed = True
        clock = self.host._clock
        deadline = clock() + max(0.0, delay) + 0.001

        def due() -> None:
            self._timer_armed = False
            reach = getattr(clock, "reach", None)  # a clock that skips waits jumps there
            if reach is not None:
                reach(deadline)
            self.host._steps.call(self.dispatch)

        delay_until = getattr(clock, "delay_until", None)
        wait = delay_until(deadline) if delay_until is not None else deadline - clock()
        with contextlib.suppress(ActorError):  # the runtime is closing: nothing to start
            self.host.system.call_later(max(0.0, wait), due)

    def _start(self, mission_id: str) -> None:
        entry = self.state.running.get(mission_id)
        if entry is None:
            return
        try:
            self.host._start_queued(entry[0])
        except ActorError:
            return  # the runtime is closing: whoever opens the log next starts it
        except AuraError as err:  # it cannot run (its id is another mission's): free the slot
            self.host.system.log.error(
                "queue.start_failed", queue=self.queue.name, mission_id=mission_id, error=str(err)
            )
            self.finish([mission_id])
            return
        self._watch(mission_id)

    def _watch(self, mission_id: str) -> None:
        host = self.host
        if mission_id in self._watched:
            return
        if host._settled_verdict(mission_id) is not None:
            self.finish([mission_id])
        elif host._runs_here(mission_id):
            self._watched.add(mission_id)

            def settled() -> None:
                self._watched.discard(mission_id)
                if not host._closed and host._settled_verdict(mission_id) is not None:
                    self.finish([mission_id])

            host._when_settled(mission_id, lambda: host._steps.call(settled))
        # else another runtime runs it: poll() reads its verdict

    def finish(self, mission_ids: list[str]) -> None:
        """Free the slots of these settled missions, then hand them out."""
        if self.host._closed:
            return
        with self._lock:
            while True:
                self.refresh()
                ids = [i for i in mission_ids if i in self.state.running]
                if not ids:
                    break
                try:
                    self._append(FINISHED, Finished(ids, self.host._clock()))
                    break
                except ConcurrencyError:
                    continue
        self.dispatch()

    # ------------------------------------------------------------ upkeep

    def recover(self) -> None:
        """At open: start what was dispatched and never started, watch what
        runs, free what settled meanwhile, then dispatch."""
        with self._lock:
            self.refresh()
            running = list(self.state.running)
        for mission_id in running:
            if self.host.store.version("mission/" + mission_id) == 0:
                self._start(mission_id)
            else:
                self._watch(mission_id)
        self.dispatch()

    def poll(self) -> None:
        """Now and then: what other runtimes appended; missions another
        runtime ran that settled; dispatched missions nobody started."""
        host = self.host
        try:
            moved = host.store.version(self.queue.stream) != self.state.version
            now = host._clock()
            with self._lock:
                if moved:
                    self.refresh()
                running = list(self.state.running.items())
            settled = []
            for mission_id, (_, at) in running:
                if mission_id in self._watched:
                    continue
                if host.store.version("mission/" + mission_id) == 0:
                    if now - at > ORPHAN_GRACE:
                        self._start(mission_id)
                elif host._settled_verdict(mission_id) is not None:
                    settled.append(mission_id)
                elif host._runs_here(mission_id):
                    self._watch(mission_id)
            if settled:
                self.finish(settled)
            elif moved:
                self.dispatch()
        except EventStoreError as err:
            host.system.log.error("queue.poll_failed", queue=self.queue.name, error=str(err))

    def view(self) -> QueueView:
        queue = self.queue
        with self._lock:
            self.refresh()
            state = self.state
            waiting = state.next_waiting(len(state.waiting))
            window = state.in_window(self.host._clock(), queue.rate[1]) if queue.rate else 0
            return QueueView(
                queue.name,
                waiting,
                list(state.running),
                queue.concurrency,
                queue.per_runtime,
                queue.rate,
                window,
            )
