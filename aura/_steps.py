"""Running steps off the mission actor.

Sync steps run on a bounded thread pool; async steps on one event-loop
thread owned by the runtime. Each attempt knows its idempotency key
(``mission/run/seq``: the same across re-runs after a crash) through
``aura.current_step()``. The outcome is delivered to the mission as a
``StepDone`` message, journaled before the mission sees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec

from ._definitions import StepDef
from ._messages import StepDone
from ._retry import RetryPolicy


@dataclass(frozen=True)
class StepInfo:
    mission_id: str
    seq: int
    name: str
    attempt: int
    idempotency_key: str


_current: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar(
    "aura_current_step", default=None
)


def current_step() -> StepInfo:
    """Inside a step: which step attempt this is and its idempotency key."""
    info = _current.get()
    if info is None:
        raise RuntimeError("aura.current_step() is only available inside a running step")
    return info


@dataclass(frozen=True)
class StepJob:
    mission_id: str
    seq: int
    fingerprint: str
    definition: StepDef
    args: list[Any]
    attempt: int
    run: int
    retry: RetryPolicy | None = None


class StepRunner:
    """Executes step jobs and hands each outcome to ``deliver``."""

    def __init__(self, deliver: Callable[[str, StepDone], None], max_workers: int) -> None:
        self._deliver = deliver
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aura-step")
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="aura-async-steps", daemon=True
        )
        self._loop_thread.start()
        self._closed = False

    def submit(self, job: StepJob) -> None:
        if self._closed:
            return
        if job.definition.is_async:
            asyncio.run_coroutine_threadsafe(self._run_async(job), self._loop)
        else:
            self._pool.submit(self._run_sync, job)

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on a step thread (work that may block, off the scheduler)."""
        if not self._closed:
            self._pool.submit(fn)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)

    def _info(self, job: StepJob) -> StepInfo:
        key = f"{job.mission_id}/{job.run}/{job.seq}"
        return StepInfo(job.mission_id, job.seq, job.definition.name, job.attempt, key)

    def _run_sync(self, job: StepJob) -> None:
        token = _current.set(self._info(job))
        try:
            value = job.definition.fn(*job.args)
        except Exception as err:
            self._finish(job, None, err)
        else:
            self._finish(job, value, None)
        finally:
            _current.reset(token)

    async def _run_async(self, job: StepJob) -> None:
        token = _current.set(self._info(job))
        try:
            value = await job.definition.fn(*job.args)
        except Exception as err:
            outcome: tuple[Any, BaseException | None] = (None, err)
        else:
            outcome = (value, None)
        finally:
            _current.reset(token)
        # Delivery may block (a durable append): not on the event loop.
        self._pool.submit(self._finish, job, *outcome)

    def _finish(self, job: StepJob, value: Any, error: BaseException | None) -> None:
        retry_in = -1.0
        if error is None:
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
        done = StepDone(
            seq=job.seq,
            fingerprint=job.fingerprint,
            ok=error is None,
            value=value if error is None else None,
            error_type="" if error is None else type(error).__name__,
            error="" if error is None else str(error),
            attempt=job.attempt,
            at=time.time(),
            retry_in=retry_in,
        )
        self._deliver(job.mission_id, done)
