"""Group commit: many callers, one durable transaction.

Callers queue their operation; the caller at the head of the queue becomes
the *leader*, takes every queued operation (up to ``max_batch``), applies
them in one write transaction and commits once, then releases each caller
with its own outcome and hands leadership to the next head.

Rejected alternative: a dedicated writer thread draining a queue (what
DESIGN.md sketches). It costs two cross-thread hand-offs per append
(~40 µs each here) even when only one caller is writing; with
leader/follower a lone appender commits on its own thread and a crowd of
appenders still shares one fsync, which is the whole point. This is the
scheme LevelDB's and RocksDB's write paths use.

Waking: the leader wakes only the first of its followers; each woken
follower wakes the next before it returns (a chain), and the last wakes the
next leader. Waking all of them at once made a hundred threads stampede for
the GIL, each woken twice (once by its lock, once by the GIL); the chain
hands the GIL from one to the next: 100 threads through a no-op commit went
from 52k to 58k/s here (``benchmarks/eventstore_bench.py``, ceiling row).

A waiting caller interrupted (Ctrl-C in the main thread) still takes its
turn in the chain, and leads if it is next, before the interrupt is raised:
otherwise every caller queued behind it would wait forever.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice, pairwise
from typing import Generic, TypeVar

Op = TypeVar("Op")

_PENDING = object()


class _Request(Generic[Op]):
    __slots__ = ("next", "op", "outcome", "wake", "woken")

    def __init__(self, op: Op) -> None:
        self.op = op
        self.outcome: object = _PENDING
        # For followers only: a plain lock used as a one-shot signal, cheaper
        # to wake than a Condition; the woken thread need not re-take the mutex.
        self.wake: threading.Lock | None = None
        self.woken = False  # set just before ``wake`` is released
        self.next: _Request[Op] | None = None  # whom to wake after this one

    def rouse(self) -> None:
        self.woken = True
        self.wake.release()  # type: ignore[union-attr]

    def await_turn(self) -> BaseException | None:
        """Wait to be roused. An interrupt (Ctrl-C in the main thread) is
        returned, to be raised once this caller has taken its turn."""
        interrupt: BaseException | None = None
        while True:
            try:
                if not self.woken:  # raised after acquire returned: already roused
                    self.wake.acquire()  # type: ignore[union-attr]
                return interrupt
            except BaseException as err:
                interrupt = interrupt or err


class GroupCommitter(Generic[Op]):
    """Batches operations from many threads into calls of ``run_batch``.

    ``run_batch(ops)`` runs on the leader's thread and returns one outcome per
    op, in order: a result, or an exception instance meaning "this op failed,
    the others are unaffected". If ``run_batch`` itself raises, every op of
    the batch fails with that exception (nothing of the batch was committed).
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Op]], Sequence[object]],
        *,
        max_batch: int = 2048,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._mu = threading.Lock()
        self._queue: deque[_Request[Op]] = deque()
        self._idle = threading.Condition(self._mu)
        self._idle_waiters = 0

    def submit(self, op: Op) -> object:
        """Queue ``op``, wait until its batch committed, return its result."""
        req: _Request[Op] = _Request(op)
        mu, queue = self._mu, self._queue
        with mu:
            queue.append(req)
            leader = len(queue) == 1
            if not leader:
                req.wake = threading.Lock()
                req.wake.acquire()
        interrupt = None
        if not leader:
            interrupt = req.await_turn()  # our batch is done, or we are the new head
            if req.next is not None:
                req.next.rouse()
            if req.outcome is not _PENDING:
                if interrupt is not None:
                    raise interrupt
                return self._unwrap(req)
        with mu:
            n = len(queue)
            batch = list(queue) if n <= self._max_batch else list(islice(queue, self._max_batch))
        outcomes: Sequence[object]
        leader_error: BaseException | None = None
        try:
            outcomes = self._run_batch([r.op for r in batch])
            if len(outcomes) != len(batch):  # pragma: no cover - a bug in run_batch
                raise RuntimeError("run_batch returned the wrong number of outcomes")
        except BaseException as err:
            outcomes = [err] * len(batch)
            leader_error = err
        for r, outcome in zip(batch, outcomes, strict=True):
            r.outcome = outcome  # read by its caller only after its wake below
        with mu:
            if len(queue) == len(batch):
                queue.clear()
                head = None
                if self._idle_waiters:
                    self._idle.notify_all()
            else:
                for _ in batch:
                    queue.popleft()
                head = queue[0]
        chain = [r for r in batch if r is not req and r.wake is not None]
        if head is not None:
            chain.append(head)
        for a, b in pairwise(chain):
            a.next = b
        if chain:
            chain[0].rouse()
        if leader_error is not None and not isinstance(leader_error, Exception):
            raise leader_error  # KeyboardInterrupt etc. propagate unchanged on the leader
        if interrupt is not None:
            raise interrupt
        return self._unwrap(req)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no operation is queued or in flight."""
        with self._mu:
            self._idle_waiters += 1
            try:
                return self._idle.wait_for(lambda: not self._queue, timeout)
            finally:
                self._idle_waiters -= 1

    @staticmethod
    def _unwrap(req: _Request[Op]) -> object:
        outcome = req.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
