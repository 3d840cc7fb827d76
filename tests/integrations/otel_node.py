"""Child process: start ``agent`` inside a caller's span, with telemetry on,
print that span's trace and span ids once the mission waits for its signal,
then wait to be SIGKILLed (argv: data_dir)."""

import sys

from opentelemetry.sdk.trace import TracerProvider

import aura
from aura.integrations.otel import OpenTelemetry
from tests.integrations import otel_missions as om


def main() -> None:
    provider = TracerProvider()
    otel = om.TELEMETRY["otel"] = OpenTelemetry(tracer_provider=provider)
    with aura.Runtime(sys.argv[1], missions=om.ALL, telemetry=otel) as rt:
        with provider.get_tracer("caller").start_as_current_span("request") as span:
            rt.start(om.agent, "trip", mission_id="m")
        rt.wait("m", 60, until={aura.MissionStatus.WAITING})
        ctx = span.get_span_context()
        sys.stdout.write(f"WAITING {ctx.trace_id:032x} {ctx.span_id:016x}\n")
        sys.stdout.flush()
        sys.stdin.read()  # until killed


if __name__ == "__main__":
    main()
