"""What a runtime tells an observer about its work: ``Runtime(telemetry=)``.

``Telemetry`` is the hook surface; each method is a no-op here, so an
observer overrides what it wants. ``aura.integrations.otel`` turns them
into OpenTelemetry spans, events and metrics. With no telemetry the
runtime calls nothing (one ``is None`` test per hook site).

The trace context is a W3C carrier (``{"traceparent": ...}``): captured
from the caller by :meth:`Telemetry.context` at ``rt.start``, journaled
with the start, and handed back with every run of the mission, so a run
resumed after a crash continues the caller's trace.

Calls are made after the work they describe is durable, from the thread
that did it: a mission's actor thread (runs, transitions, events), a step
thread (``step_began``/``step_left``), whichever thread delivered an
outcome (``step_ended``). Hooks must be quick and must not raise.
"""

from __future__ import annotations

from typing import Any

from ._attempts import StepJob
from ._messages import StepDone


class Telemetry:
    """Base observer: override the hooks you need."""

    def context(self) -> dict[str, str]:
        """The caller's trace context, journaled with a start ({}: none)."""
        return {}

    def mission_context(self, mission_id: str) -> dict[str, str]:
        """The trace context of a mission's current run: what its children
        and queued missions continue ({}: none)."""
        return {}

    def run_began(
        self,
        mission_id: str,
        run: int,
        name: str,
        trace_context: dict[str, str],
        *,
        resumed: bool,
        replayed: int = 0,
        replay_seconds: float = 0.0,
    ) -> None:
        """A run of the mission began here: started, continued as new, or
        ``resumed`` after recovery (``replayed`` messages in ``replay_seconds``)."""

    def transition(self, mission_id: str, old: str, new: str, reason: str) -> None:
        """The mission's status changed (durably)."""

    def run_ended(self, mission_id: str, status: str, reason: str) -> None:
        """The run ended here: settled (``completed``, ``failed``, ...),
        ``continued`` as new, or ``stopped`` (this runtime let the mission
        go without ending it: close, passivation, lease handed over)."""

    def event(self, mission_id: str, name: str, attributes: dict[str, Any]) -> None:
        """A signal arrived, a timer fired, a compensation began."""

    def step_began(self, job: StepJob) -> Any:
        """An attempt's body is about to run, on this thread. Returns a
        handle passed to :meth:`step_left` and :meth:`step_ended`."""
        return None

    def step_left(self, handle: Any) -> None:
        """The attempt's body returned or raised (same thread as began)."""

    def step_ended(self, handle: Any, job: StepJob, done: StepDone) -> None:
        """The attempt's outcome (possibly a timeout, on another thread)."""

    def batch_committed(self, size: int) -> None:
        """``size`` step outcomes were journaled in one group commit."""

    def add_trace_ids(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor a runtime that builds its own logger runs on
        every event: here, nothing is added."""
        return event_dict
