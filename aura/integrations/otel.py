"""OpenTelemetry traces and metrics of a runtime's work (``pip install 'aura[otel]'``).

    from aura.integrations.otel import OpenTelemetry
    rt = aura.Runtime("./data", missions=[...], telemetry=OpenTelemetry())

Spans (tracer ``aura``):
- ``mission <name>``: one per run of a mission on this runtime, from its
  start (or its resumption after a recovery) to its end: settled,
  continued as new, or let go unsettled (``aura.mission.outcome =
  stopped``: the runtime closed, the mission was passivated or handed
  over). Its parent is the span current where ``rt.start`` was called
  (for a child mission: its parent's run): that context is journaled with
  the start, so a run resumed after a crash continues the same trace.
  Events: ``transition`` (every status change), ``signal``, ``timer``,
  ``compensation``.
- ``step <name>``: one per attempt, a child of its mission's run span,
  current while the step body runs (spans the body opens nest under it).
  Attributes: mission id, seq, attempt, idempotency key, outcome
  (``ok``, ``retrying``, ``failed``), retry delay, cost.

Metrics (meter ``aura``): ``aura.steps.completed``, ``aura.steps.failed``
(final failures), ``aura.steps.retried`` (counters by step);
``aura.step.duration`` (histogram, s); ``aura.missions`` (up-down counter
of this runtime's unsettled missions by status) and
``aura.missions.ended`` (counter by final status); ``aura.commit.batch_size``
(step outcomes per group commit); ``aura.replay.duration`` (s per recovery).

Logs: :meth:`OpenTelemetry.add_trace_ids` is a structlog processor adding
``trace_id`` and ``span_id`` (the current span, else the run span of the
event's ``mission_id``); a runtime that builds its own logger with
telemetry on adds it itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "aura.integrations.otel needs the OpenTelemetry API: pip install 'aura[otel]'"
    ) from err

from ..core._attempts import StepJob
from ..core._messages import StepDone
from ..core._telemetry import Telemetry

__all__ = ["OpenTelemetry"]

_FAILED = frozenset({"failed", "cancelled", "dead"})


@dataclass(slots=True)
class _Run:
    span: Span
    status: str
    steps: int = 0


@dataclass(slots=True)
class _Step:
    span: Span
    token: object
    began: float
    attributes: dict[str, Any] = field(default_factory=dict)


class OpenTelemetry(Telemetry):
    """Emit a runtime's spans and metrics through the OpenTelemetry API.

    ``tracer_provider`` / ``meter_provider``: where to (default: the global
    providers the application set up). ``propagator``: how trace context
    is carried into the log (default: W3C trace context)."""

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self._tracer = trace.get_tracer("aura", tracer_provider=tracer_provider)
        meter = metrics.get_meter("aura", meter_provider=meter_provider)
        self._completed = meter.create_counter(
            "aura.steps.completed", unit="{step}", description="step attempts that succeeded"
        )
        self._failed = meter.create_counter(
            "aura.steps.failed", unit="{step}", description="steps that failed for good"
        )
        self._retried = meter.create_counter(
            "aura.steps.retried", unit="{step}", description="step attempts that will be retried"
        )
        self._duration = meter.create_histogram(
            "aura.step.duration", unit="s", description="how long a step attempt's body ran"
        )
        self._missions = meter.create_up_down_counter(
            "aura.missions", unit="{mission}", description="unsettled missions here, by status"
        )
        self._ended = meter.create_counter(
            "aura.missions.ended", unit="{mission}", description="runs settled, by status"
        )
        self._batch = meter.create_histogram(
            "aura.commit.batch_size", unit="{outcome}", description="step outcomes per commit"
        )
        self._replay = meter.create_histogram(
            "aura.replay.duration", unit="s", description="time to replay a mission's log"
        )
        self._propagator = propagator or TraceContextTextMapPropagator()
        self._runs: dict[str, _Run] = {}  # mission id -> its open run span
        self._lock = threading.Lock()

    # ------------------------------------------------------------ context

    def context(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier

    def mission_context(self, mission_id: str) -> dict[str, str]:
        run = self._runs.get(mission_id)
        if run is None:
            return {}
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(run.span))
        return carrier

    # ------------------------------------------------------------ runs

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
        parent = self._propagator.extract(trace_context) if trace_context else None
        attributes: dict[str, Any] = {
            "aura.mission.id": mission_id,
            "aura.mission.name": name,
            "aura.mission.run": run,
            "aura.mission.resumed": resumed,
        }
        if resumed:
            attributes["aura.replay.messages"] = replayed
            attributes["aura.replay.seconds"] = replay_seconds
            self._replay.record(replay_seconds, {"aura.mission.name": name})
        span = self._tracer.start_span(
            f"mission {name}", context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        )
        with self._lock:
            old = self._runs.pop(mission_id, None)
            self._runs[mission_id] = _Run(span, "running")
        if old is not None:  # a run that ended without telling (should not happen)
            self._close(old, "superseded", "")
        self._missions.add(1, {"aura.status": "running"})

    def transition(self, mission_id: str, old: str, new: str, reason: str) -> None:
        run = self._runs.get(mission_id)
        if run is None:
            return
        run.span.add_event(
            "transition", {"aura.status.old": old, "aura.status": new, "aura.reason": reason}
        )
        if new != run.status:
            self._missions.add(-1, {"aura.status": run.status})
            self._missions.add(1, {"aura.status": new})
            run.status = new

    def run_ended(self, mission_id: str, status: str, reason: str) -> None:
        with self._lock:
            run = self._runs.pop(mission_id, None)
        if run is None:
            return
        self._missions.add(-1, {"aura.status": run.status})
        if status not in ("stopped", "continued"):
            self._ended.add(1, {"aura.status": status})
        self._close(run, status, reason)

    def _close(self, run: _Run, outcome: str, reason: str) -> None:
        span = run.span
        span.set_attribute("aura.mission.outcome", outcome)
        span.set_attribute("aura.mission.steps", run.steps)
        if outcome in _FAILED:
            span.set_status(Status(StatusCode.ERROR, reason or outcome))
        elif outcome == "completed":
            span.set_status(Status(StatusCode.OK))
        span.end()

    def event(self, mission_id: str, name: str, attributes: dict[str, Any]) -> None:
        run = self._runs.get(mission_id)
        if run is not None:
            run.span.add_event(name, attributes)

    # ------------------------------------------------------------ steps

    def step_began(self, job: StepJob) -> _Step:
        run = self._runs.get(job.mission_id)
        parent = trace.set_span_in_context(run.span) if run is not None else None
        name = job.definition.name
        attributes: dict[str, Any] = {
            "aura.mission.id": job.mission_id,
            "aura.mission.run": job.run,
            "aura.step.name": name,
            "aura.step.seq": job.seq,
            "aura.step.attempt": job.attempt,
            "aura.step.idempotency_key": f"{job.mission_id}/{job.run}/{job.seq}",
        }
        if job.tokens is not None:
            attributes["aura.step.tool"] = True
        span = self._tracer.start_span(f"step {name}", context=parent, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        return _Step(span, token, time.perf_counter(), {"aura.step.name": name})

    def step_left(self, handle: Any) -> None:
        if isinstance(handle, _Step) and handle.token is not None:
            otel_context.detach(handle.token)  # type: ignore[arg-type]
            handle.token = None

    def step_ended(self, handle: Any, job: StepJob, done: StepDone) -> None:
        labels = {"aura.step.name": job.definition.name}
        if done.ok:
            outcome = "ok"
            self._completed.add(1, labels)
        elif done.retry_in >= 0:
            outcome = "retrying"
            self._retried.add(1, labels)
        else:
            outcome = "failed"
            self._failed.add(1, labels)
        run = self._runs.get(job.mission_id)
        if run is not None and outcome != "retrying":
            run.steps += 1
        if not isinstance(handle, _Step):
            return  # it timed out before its body began: no span
        self._duration.record(time.perf_counter() - handle.began, labels)
        span = handle.span
        span.set_attribute("aura.step.outcome", outcome)
        if done.cost_usd:
            span.set_attribute("aura.step.cost_usd", done.cost_usd)
        if done.cost_tokens:
            span.set_attribute("aura.step.cost_tokens", done.cost_tokens)
        if done.ok:
            span.set_status(Status(StatusCode.OK))
        else:
            if outcome == "retrying":
                span.set_attribute("aura.step.retry_in", done.retry_in)
            span.add_event(
                "exception",
                {"exception.type": done.error_type, "exception.message": done.error},
            )
            span.set_status(Status(StatusCode.ERROR, f"{done.error_type}: {done.error}"))
        span.end()

    def batch_committed(self, size: int) -> None:
        self._batch.record(size)

    # ------------------------------------------------------------ logs

    def add_trace_ids(self, logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """A structlog processor: ``trace_id`` and ``span_id`` of the current
        span, else of the run span of the event's ``mission_id``."""
        span = trace.get_current_span()
        ctx = span.get_span_context()
        if not ctx.is_valid:
            run = self._runs.get(str(event_dict.get("mission_id", "")))
            if run is None:
                return event_dict
            ctx = run.span.get_span_context()
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
        return event_dict
