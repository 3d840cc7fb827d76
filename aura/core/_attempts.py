"""A step attempt's context, as the code running inside it sees it:
``aura.current_step()``, ``aura.heartbeat()``, ``aura.report_cost()``, and
the ``StepJob`` an attempt runs. Below the step runner (which sets it) and
the tool gateway (which reads it to check a tool call's tokens)."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ._budget import check_cost
from ._definitions import StepDef
from ._errors import AuraError
from ._retry import RetryPolicy


class StepTimeoutError(AuraError, TimeoutError):
    """An attempt ran longer than its step's ``timeout``."""


class HeartbeatTimeoutError(AuraError, TimeoutError):
    """An attempt sent no ``aura.heartbeat`` for ``heartbeat_timeout`` seconds."""


class StepInfo(msgspec.Struct, frozen=True):
    mission_id: str
    seq: int
    name: str
    attempt: int
    idempotency_key: str
    heartbeat_details: Any = None
    """What the previous attempt last passed to ``aura.heartbeat`` (or None)."""


@dataclass(slots=True)
class _Attempt:
    job: StepJob
    started: float
    last_beat: float
    details: Any = None
    done: bool = False
    future: Future[Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    cost_usd: float = 0.0
    cost_tokens: int = 0
    _info: StepInfo | None = None
    observed: Any = None  # the telemetry's handle of this attempt (Runtime(telemetry=))

    @property
    def info(self) -> StepInfo:
        """What ``aura.current_step()`` returns, built when first asked for:
        most steps never ask."""
        info = self._info
        if info is None:
            job = self.job
            key = f"{job.mission_id}/{job.run}/{job.seq}"
            info = self._info = StepInfo(
                job.mission_id,
                job.seq,
                job.definition.name,
                job.attempt,
                key,
                job.heartbeat_details,
            )
        return info


_current: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "aura_current_step", default=None
)


def current_step() -> StepInfo:
    """Inside a step: which step attempt this is and its idempotency key."""
    attempt = _current.get()
    if attempt is None:
        raise RuntimeError("aura.current_step() is only available inside a running step")
    return attempt.info


def heartbeat(details: Any = None) -> None:
    """Inside a step: report progress. Resets the heartbeat timeout; the next
    attempt (after a failure or a crash) sees the last ``details``."""
    attempt = _current.get()
    if attempt is None:
        raise RuntimeError("aura.heartbeat() is only available inside a running step")
    try:
        details = msgspec.msgpack.decode(msgspec.msgpack.encode(details))
    except (TypeError, msgspec.EncodeError) as err:
        raise TypeError(f"heartbeat details cannot be journaled: {err}") from err
    with attempt.lock:
        attempt.last_beat = time.monotonic()
        attempt.details = details


def report_cost(usd: float = 0.0, tokens: int = 0) -> None:
    """Inside a step: add to what this attempt cost (journaled with its
    outcome; a mission over its budget stops advancing)."""
    attempt = _current.get()
    if attempt is None:
        raise RuntimeError("aura.report_cost() is only available inside a running step")
    usd, tokens = check_cost(usd, tokens)
    with attempt.lock:
        attempt.cost_usd += usd
        attempt.cost_tokens += tokens


class StepJob(msgspec.Struct, frozen=True):
    mission_id: str
    seq: int
    fingerprint: str
    definition: StepDef
    args: Sequence[Any]
    attempt: int
    run: int
    retry: RetryPolicy | None = None
    heartbeat_details: Any = None
    tokens: tuple[bytes, bytes] | None = None
    """For a tool call: the identity and execution tokens the gateway checks."""
