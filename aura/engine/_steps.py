"""Running steps off the mission actor.

Sync steps run on a bounded thread pool; async steps on one event-loop
thread owned by the runtime. Each attempt knows its idempotency key
(``mission/run/seq``: the same across re-runs after a crash), its attempt
number and the last heartbeat details of the previous attempt through
``aura.current_step()``. The outcome is delivered to the mission as a
``StepDone`` message, journaled before the mission sees it.

Timeouts: a watchdog on the runtime's scheduler fails an attempt that runs
longer than ``timeout`` or goes ``heartbeat_timeout`` seconds without
``aura.heartbeat``. The first outcome of an attempt wins; an async attempt
is cancelled, a sync one cannot be (Python threads cannot be killed), so its
late result is dropped and the thread is busy until the function returns.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from actors import SimulatedCrash

from ..core._attempts import (
    HeartbeatTimeoutError,
    StepJob,
    StepTimeoutError,
    _Attempt,
    _current,
)
from ..core._messages import StepDone
from ._pool import WorkerPool

_SCALARS = (str, bool, float)  # msgpack gives them back unchanged (ints may overflow)

QUANTUM = 0.002
"""Seconds a step thread may keep running one mission's next steps itself
before it puts the next one in the queue behind everybody else's."""


class StepRunner:
    """Executes step jobs and hands each outcome to ``deliver``.

    Chaining: delivering an outcome runs the mission, which usually issues its
    next step at once. A sync step issued while a step thread delivers is run
    by that same thread right after, instead of being queued for another
    thread: no hand-off (~40 us here, more than a no-op step costs) and the
    thread's cache stays warm. A thread chains for at most ``QUANTUM``
    seconds, then queues the next step like any other, so one long
    sequential mission cannot starve the rest.
    """

    def __init__(
        self,
        deliver: Callable[[str, StepDone], None],
        max_workers: int,
        call_later: Callable[[float, Callable[[], None]], None],
        on_error: Callable[[BaseException], None],
        *,
        clock: Callable[[], float] = time.time,
        faults: Any = None,
        may_start: Callable[..., bool | None] | None = None,
        telemetry: Any = None,
    ) -> None:
        self._clock = clock
        self._telemetry = telemetry  # a Telemetry, or None: no hook is called
        # Shared store: ``may_start(mission_id, wait=...)``, asked just before
        # a step starts: True, False (the mission moved), None (not known
        # without waiting for the next heartbeat, and wait=False).
        self._may_start = may_start
        self._faults = faults  # crash injection around step bodies (aura.testing)
        self._deliver = deliver
        self._call_later = call_later
        self._pool = WorkerPool(max_workers, "aura-step", on_error)
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="aura-async-steps", daemon=True
        )
        self._loop_thread.start()
        self._closed = False
        # Async attempts handed to the loop but not begun: a close can stop the
        # loop first, and they are closed then (their steps run again on recovery).
        self._unstarted: dict[int, Coroutine[Any, Any, None]] = {}  # by id(attempt)
        self._local = threading.local()  # per step thread: the chained next attempt

    def submit(self, job: StepJob) -> None:
        if self._closed:
            return
        now = time.monotonic()
        attempt = _Attempt(job, now, now)
        if job.definition.is_async:
            coro = self._run_async(attempt)
            self._unstarted[id(attempt)] = coro
            attempt.future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        else:
            local = self._local
            if getattr(local, "chaining", False) and local.next is None:
                local.next = attempt  # run by this thread once its delivery is done
            else:
                self._pool.submit(self._run_chain, attempt)
        self._watch(attempt)

    def unchain(self) -> None:
        """On a step thread: queue the step it was going to run next, if any
        (it is about to do other long work, e.g. drain the outbox again)."""
        local = self._local
        chained = getattr(local, "next", None)
        if chained is not None:
            local.next = None
            if not self._closed:
                self._pool.submit(self._run_chain, chained)

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on a step thread (work that may block, off the scheduler)."""
        if not self._closed:
            self._pool.submit(fn)

    def close(self) -> None:
        self._closed = True
        self._pool.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop_thread.is_alive():
            for coro in list(self._unstarted.values()):
                coro.close()  # never scheduled: nothing ran, nothing to clean up

    # ------------------------------------------------------------ attempts

    def _run_chain(self, attempt: _Attempt) -> None:
        local = self._local
        local.chaining = True
        local.next = None
        until = time.monotonic() + QUANTUM
        try:
            while True:
                self._run_sync(attempt)
                chained = local.next
                if chained is None or self._closed:
                    return
                local.next = None
                if time.monotonic() > until:  # quantum used up: back of the queue
                    self._pool.submit(self._run_chain, chained)
                    return
                attempt = chained
        finally:
            local.chaining = False
            leftover, local.next = local.next, None
            if leftover is not None and not self._closed:
                self._pool.submit(self._run_chain, leftover)  # never drop an issued step

    def _fault(self, point: str, attempt: _Attempt) -> None:
        if self._faults is not None:
            self._faults.check(point, attempt.info.idempotency_key)

    def _run_sync(self, attempt: _Attempt) -> None:
        if self._may_start is not None and not self._may_start(attempt.job.mission_id, wait=True):
            return  # the mission moved to another runtime, which runs this step
        token = _current.set(attempt)
        telemetry = self._telemetry
        if telemetry is not None:
            attempt.observed = telemetry.step_began(attempt.job)
        try:
            self._fault("step_before", attempt)
            value = attempt.job.definition.fn(*attempt.job.args)
            self._fault("step_after", attempt)
        except SimulatedCrash:
            self._left(attempt)
            return  # injected "process death" (aura.testing): no outcome is delivered
        except BaseException as err:
            # SystemExit, KeyboardInterrupt, ... too: swallowed by the pool they
            # would leave the mission waiting forever. They are never retried.
            self._left(attempt)
            self._finish(attempt, None, err)
        else:
            self._left(attempt)
            self._finish(attempt, value, None)
        finally:
            _current.reset(token)

    def _left(self, attempt: _Attempt) -> None:
        if self._telemetry is not None:
            self._telemetry.step_left(attempt.observed)

    async def _run_async(self, attempt: _Attempt) -> None:
        self._unstarted.pop(id(attempt), None)
        if self._may_start is not None:
            mission_id = attempt.job.mission_id
            may = self._may_start(mission_id, wait=False)
            if may is None:  # wait for the heartbeat off the event loop
                may = await asyncio.to_thread(self._may_start, mission_id, wait=True)
            if not may:
                return  # the mission moved to another runtime, which runs this step
        token = _current.set(attempt)
        telemetry = self._telemetry
        if telemetry is not None:
            attempt.observed = telemetry.step_began(attempt.job)
        try:
            self._fault("step_before", attempt)
            value = await attempt.job.definition.fn(*attempt.job.args)
            self._fault("step_after", attempt)
        except asyncio.CancelledError:
            self._left(attempt)
            return  # the watchdog gave up on it and reported the timeout
        except SimulatedCrash:
            return
        except BaseException as err:  # as in _run_sync
            outcome: tuple[Any, BaseException | None] = (None, err)
        else:
            outcome = (value, None)
        finally:
            _current.reset(token)
        self._left(attempt)
        # Delivery may block (a durable append): not on the event loop.
        self._pool.submit(self._finish, attempt, *outcome)

    def _watch(self, attempt: _Attempt) -> None:
        definition = attempt.job.definition
        if definition.timeout is None and definition.heartbeat_timeout is None:
            return
        deadlines = []
        if definition.timeout is not None:
            deadlines.append(attempt.started + definition.timeout)
        if definition.heartbeat_timeout is not None:
            deadlines.append(attempt.last_beat + definition.heartbeat_timeout)
        delay = max(0.0, min(deadlines) - time.monotonic())
        self._call_later(delay, lambda: self.call(lambda: self._check(attempt)))

    def _check(self, attempt: _Attempt) -> None:
        definition = attempt.job.definition
        now = time.monotonic()
        with attempt.lock:
            if attempt.done:
                return
            last_beat = attempt.last_beat
        error: BaseException | None = None
        if definition.timeout is not None and now - attempt.started >= definition.timeout:
            error = StepTimeoutError(
                f"step {definition.name} attempt {attempt.job.attempt} ran over its "
                f"timeout of {definition.timeout}s"
            )
        elif (
            definition.heartbeat_timeout is not None
            and now - last_beat >= definition.heartbeat_timeout
        ):
            error = HeartbeatTimeoutError(
                f"step {definition.name} attempt {attempt.job.attempt} sent no heartbeat "
                f"for {definition.heartbeat_timeout}s"
            )
        if error is None:
            self._watch(attempt)  # a heartbeat came in: look again later
            return
        if attempt.future is not None:
            attempt.future.cancel()
        self._finish(attempt, None, error)

    def _finish(self, attempt: _Attempt, value: Any, error: BaseException | None) -> None:
        with attempt.lock:
            if attempt.done:
                return  # the first outcome of an attempt wins (e.g. a timeout)
            attempt.done = True
            details = attempt.details
            cost_usd, cost_tokens = attempt.cost_usd, attempt.cost_tokens
        job = attempt.job
        retry_in = -1.0
        if error is None:
            if not (value is None or type(value) in _SCALARS):
                try:
                    # Hand the mission the value exactly as replay will decode it.
                    value = msgspec.msgpack.decode(msgspec.msgpack.encode(value))
                except (TypeError, msgspec.EncodeError) as err:
                    error = TypeError(f"step result cannot be journaled: {err}")
        else:
            # Retryability is decided here, where the exception is, and
            # journaled with the outcome: replay needs no exception types.
            policy = job.retry
            if policy is not None and policy.should_retry(error, job.attempt):
                retry_in = policy.delay(job.attempt)
        # Positional (field order): the hot path, once per attempt.
        if error is None:
            done = StepDone(
                job.seq, job.fingerprint, True, value, "", "", job.attempt, self._clock(),
                retry_in, details, cost_usd, cost_tokens, job.run,
            )  # fmt: skip
        else:
            done = StepDone(
                job.seq, job.fingerprint, False, None, type(error).__name__, str(error),
                job.attempt, self._clock(), retry_in, details, cost_usd, cost_tokens, job.run,
            )  # fmt: skip
        if self._telemetry is not None:
            self._telemetry.step_ended(attempt.observed, job, done)
        self._deliver(job.mission_id, done)
