"""Queues with flow control: ``aura.Queue`` and the records of a queue's stream.

A queue is a stream ``queue/<name>`` in the event log: ``enqueued``
(a mission waiting for a slot), ``dispatched`` (some were given slots:
each then starts as a mission) and ``finished`` (some settled: their slots
are free). Its state (waiting, running, the dispatch times of the rate
window) is a fold of those records, so it survives crashes, and every
append is conditional on the version the decision was made on, so
runtimes sharing one log never hand out more slots than the limits allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec

from ._errors import AuraError

QUEUE_PREFIX = "queue/"
ENQUEUED, DISPATCHED, FINISHED = "enqueued", "dispatched", "finished"


class QueueDeduplicatedError(AuraError):
    """``enqueue(dedup_id=...)`` while a mission with that id waits or runs in the queue."""

    def __init__(self, queue: str, dedup_id: str, mission_id: str) -> None:
        self.queue = queue
        self.dedup_id = dedup_id
        self.mission_id = mission_id
        super().__init__(
            f"queue {queue!r}: deduplication id {dedup_id!r} is taken by mission "
            f"{mission_id!r}, which has not finished"
        )


def _positive(what: str, value: object, kind: type) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not math.isfinite(float(value))  # type: ignore[arg-type]
        or value <= 0  # type: ignore[operator]
    ):
        raise AuraError(f"{what} must be a {kind.__name__} > 0 or None, got {value!r}")


@dataclass(frozen=True)
class Queue:
    """A named queue of missions, started as its limits allow (DBOS queues).

    ``concurrency``: missions of this queue running at once across every
    runtime sharing the log; ``per_runtime``: at once in one runtime;
    ``rate``: ``(n, seconds)``, at most n starts in any window of that many
    seconds. ``None``: no such limit. Waiting missions start in order of
    priority (lower first), then of enqueueing."""

    name: str
    concurrency: int | None = None
    per_runtime: int | None = None
    rate: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise AuraError(f"a queue name is a non-empty str without '/', got {self.name!r}")
        _positive(f"queue {self.name!r} concurrency", self.concurrency, int)
        _positive(f"queue {self.name!r} per_runtime", self.per_runtime, int)
        if self.rate is not None:
            if not isinstance(self.rate, tuple) or len(self.rate) != 2:
                raise AuraError(
                    f"queue {self.name!r} rate must be (starts, seconds), got {self.rate!r}"
                )
            _positive(f"queue {self.name!r} rate starts", self.rate[0], int)
            _positive(f"queue {self.name!r} rate seconds", float(self.rate[1]), float)

    @property
    def stream(self) -> str:
        return QUEUE_PREFIX + self.name


class Enqueued(msgspec.Struct, frozen=True):
    mission_id: str
    mission: str
    args: list[Any]
    at: float
    priority: int = 0
    dedup_id: str = ""
    tags: dict[str, str] = {}
    digest: str = ""
    """``input_digest`` of definition and arguments: enqueueing the id again
    with the same input is a no-op, with other input a conflict."""
    trace: dict[str, str] = {}
    """The enqueuer's trace context (``Start.trace``)."""


class Dispatched(msgspec.Struct, frozen=True):
    mission_ids: list[str]
    at: float


class Finished(msgspec.Struct, frozen=True):
    mission_ids: list[str]
    at: float


@dataclass(frozen=True)
class QueueView:
    """A queue as ``rt.queue(name)`` sees it now."""

    name: str
    waiting: list[str]
    """Mission ids waiting for a slot, in the order they will start."""
    running: list[str]
    """Dispatched and not yet finished (started, or about to be)."""
    concurrency: int | None
    per_runtime: int | None
    rate: tuple[int, float] | None
    dispatched_in_window: int
    """Starts within the last rate window (0 without a rate limit)."""
