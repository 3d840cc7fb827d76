"""OpenTelemetry (``aura.integrations.otel``): a span per mission run and per
step attempt with their parent links, events, metrics, trace ids in logs,
and a trace that survives a restart and a SIGKILL (the journaled context)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import aura
from aura import MissionStatus as S
from aura.integrations.otel import OpenTelemetry

from . import otel_missions as om

ROOT = Path(__file__).resolve().parent.parent.parent
NODE = Path(__file__).parent / "otel_node.py"


@dataclass
class Observed:
    otel: OpenTelemetry
    tracer: Any
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self, prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith(prefix)]

    def points(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """Metric ``name``'s data points, by their attributes."""
        found = {}
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[tuple(sorted(point.attributes.items()))] = point
        return found


def observed() -> Observed:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    otel = OpenTelemetry(tracer_provider=provider, meter_provider=MeterProvider([reader]))
    om.TELEMETRY["otel"] = otel
    return Observed(otel, provider.get_tracer("caller"), spans, reader)


@pytest.fixture
def obs() -> Iterator[Observed]:
    yield observed()
    om.TELEMETRY.clear()


def test_a_run_and_its_step_attempts_are_spans_under_the_callers_span(
    tmp_path: Path, obs: Observed
) -> None:
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel) as rt:
        with obs.tracer.start_as_current_span("request") as request:
            rt.start(om.agent, "trip", mission_id="m")
        assert om.REACHED["m"].wait(60)
        rt.wait("m", 60, until={S.WAITING})
        rt.signal("m", "approve", "yes")
        assert rt.handle("m").result(timeout=60)["verdict"] == "yes"
    (run,) = obs.finished("mission ")
    assert run.name == "mission agent"
    assert run.parent is not None and run.parent.span_id == request.get_span_context().span_id
    assert run.context.trace_id == request.get_span_context().trace_id
    assert run.attributes is not None
    assert run.attributes["aura.mission.id"] == "m"
    assert run.attributes["aura.mission.outcome"] == "completed"
    assert run.attributes["aura.mission.resumed"] is False
    assert run.status.status_code is StatusCode.OK
    events = [(e.name, dict(e.attributes or {})) for e in run.events]
    assert ("signal", {"aura.signal": "approve"}) in events
    statuses = [a["aura.status"] for name, a in events if name == "transition"]
    assert statuses == ["running", "waiting", "running", "completed"]

    steps = sorted(obs.finished("step "), key=lambda s: s.start_time or 0)
    assert [s.name for s in steps] == ["step plan", "step logs", "step flaky", "step flaky",
                                       "step reached"]  # fmt: skip
    for s in steps:  # each a child of the run, in its trace
        assert s.parent is not None and s.parent.span_id == run.context.span_id
        assert s.context.trace_id == run.context.trace_id
    first, second = steps[2], steps[3]
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["aura.step.attempt"], second.attributes["aura.step.attempt"]) == (1, 2)
    assert first.attributes["aura.step.seq"] == second.attributes["aura.step.seq"] == 2
    assert first.attributes["aura.step.outcome"] == "retrying"
    assert first.status.status_code is StatusCode.ERROR
    assert [e.attributes for e in first.events if e.name == "exception"] == [
        {"exception.type": "ConnectionError", "exception.message": "first attempt fails"}
    ]
    assert second.attributes["aura.step.outcome"] == "ok"
    assert second.attributes["aura.step.cost_usd"] == 0.25
    assert second.attributes["aura.step.cost_tokens"] == 40
    assert first.attributes["aura.step.idempotency_key"] == "m/1/2"
    # The attempt's span is current while its body runs (spans it opens nest under it).
    assert om.INSIDE["plan"] == format(steps[0].context.span_id, "016x")

    completed = obs.points("aura.steps.completed")
    assert completed[(("aura.step.name", "flaky"),)].value == 1
    assert completed[(("aura.step.name", "plan"),)].value == 1
    assert obs.points("aura.steps.retried")[(("aura.step.name", "flaky"),)].value == 1
    assert obs.points("aura.step.duration")[(("aura.step.name", "flaky"),)].count == 2
    assert obs.points("aura.missions.ended")[(("aura.status", "completed"),)].value == 1
    by_status = {k[0][1]: p.value for k, p in obs.points("aura.missions").items()}
    assert set(by_status.values()) == {0}  # nothing unsettled is left here
    (batches,) = obs.points("aura.commit.batch_size").values()
    assert batches.count >= 1 and batches.sum >= 5  # every step outcome was committed


def test_log_lines_carry_the_ids_of_the_step_or_else_the_run(tmp_path: Path, obs: Observed) -> None:
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel) as rt:
        rt.start(om.agent, "trip", mission_id="m")
        rt.wait("m", 60, until={S.WAITING})
        # Outside any span: a line naming a mission gets its run's ids.
        line = obs.otel.add_trace_ids(None, "info", {"mission_id": "m"})
        assert obs.otel.add_trace_ids(None, "info", {"mission_id": "nobody"}) == {
            "mission_id": "nobody"
        }
        rt.signal("m", "approve", "yes")
        result = rt.handle("m").result(timeout=60)
    (logs,) = obs.finished("step logs")
    (run,) = obs.finished("mission ")
    assert result["logged"] == format(logs.context.span_id, "016x")  # inside the step: its span
    assert line["trace_id"] == format(run.context.trace_id, "032x")
    assert line["span_id"] == format(run.context.span_id, "016x")


def test_the_runtimes_own_log_lines_carry_the_mission_trace_id(
    tmp_path: Path, obs: Observed, capsys: pytest.CaptureFixture[str]
) -> None:
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel, log="json") as rt:
        with obs.tracer.start_as_current_span("request") as request:
            rt.start(om.agent, "trip", mission_id="m")
        assert om.REACHED["m"].wait(60)
        rt.wait("m", 60, until={S.WAITING})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    steps = [line for line in lines if line["event"] == "step.completed"]
    assert len(steps) == 4  # plan, logs, flaky (its second attempt), reached
    trace_id = format(request.get_span_context().trace_id, "032x")
    assert {line["trace_id"] for line in steps} == {trace_id}
    assert all(line["mission_id"] == "m" and "seq" in line for line in steps)


def test_a_restart_resumes_the_run_in_the_same_trace(tmp_path: Path) -> None:
    first = observed()
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=first.otel) as rt:
        with first.tracer.start_as_current_span("request") as request:
            rt.start(om.agent, "trip", mission_id="m")
        assert om.REACHED["m"].wait(60)
        rt.wait("m", 60, until={S.WAITING})
    (stopped,) = first.finished("mission ")
    assert stopped.attributes is not None
    assert stopped.attributes["aura.mission.outcome"] == "stopped"  # let go, not ended
    second = observed()
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=second.otel) as rt:
        rt.signal("m", "approve", "later")
        assert rt.handle("m").result(timeout=60)["verdict"] == "later"
    (resumed,) = second.finished("mission ")
    assert resumed.context.trace_id == request.get_span_context().trace_id
    assert resumed.parent is not None
    assert resumed.parent.span_id == request.get_span_context().span_id
    assert resumed.attributes is not None and resumed.attributes["aura.mission.resumed"] is True
    assert resumed.attributes["aura.replay.messages"] >= 5
    assert second.finished("step ") == []  # every step was journaled: none ran again
    (replays,) = second.points("aura.replay.duration").values()
    assert replays.count == 1


def test_a_sigkilled_runs_trace_goes_on_in_the_process_that_resumes_it(
    tmp_path: Path, obs: Observed
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(NODE), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("WAITING"), proc.stderr.read() if proc.stderr else ""
    _, trace_id, span_id = line.split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel) as rt:
        rt.signal("m", "approve", "after the kill")
        assert rt.handle("m").result(timeout=60)["verdict"] == "after the kill"
    (resumed,) = obs.finished("mission ")
    assert format(resumed.context.trace_id, "032x") == trace_id
    assert resumed.parent is not None and format(resumed.parent.span_id, "016x") == span_id
    assert obs.finished("step ") == []


def test_a_childs_run_is_a_child_span_of_its_parents_run(tmp_path: Path, obs: Observed) -> None:
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel) as rt:
        rt.start(om.parent, mission_id="p")
        assert rt.handle("p").result(timeout=60) == [0, 2]
    runs = {s.attributes["aura.mission.id"]: s for s in obs.finished("mission ")}  # type: ignore[index]
    assert len(runs) == 3
    top = runs.pop("p")
    assert top.parent is None  # started outside any span: a new trace
    for kid in runs.values():
        assert kid.name == "mission child"
        assert kid.parent is not None and kid.parent.span_id == top.context.span_id
        assert kid.context.trace_id == top.context.trace_id


def test_a_failed_run_records_its_compensation_and_error(tmp_path: Path, obs: Observed) -> None:
    with aura.Runtime(tmp_path, missions=om.ALL, telemetry=obs.otel) as rt:
        rt.start(om.saga, mission_id="s")
        assert rt.wait("s", 60).status is S.FAILED
    (run,) = obs.finished("mission ")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes is not None and run.attributes["aura.mission.outcome"] == "failed"
    assert ("compensation", {"aura.step": "unbook"}) in [
        (e.name, dict(e.attributes or {})) for e in run.events
    ]
    names = [s.name for s in sorted(obs.finished("step "), key=lambda s: s.start_time or 0)]
    assert names == ["step book", "step refuse", "step unbook"]
    assert obs.points("aura.steps.failed")[(("aura.step.name", "refuse"),)].value == 1
    assert obs.points("aura.missions.ended")[(("aura.status", "failed"),)].value == 1


def test_telemetry_must_be_a_telemetry(tmp_path: Path) -> None:
    with pytest.raises(aura.AuraError, match=r"telemetry= takes an aura\.Telemetry"):
        aura.Runtime(tmp_path, telemetry=object())  # type: ignore[arg-type]
